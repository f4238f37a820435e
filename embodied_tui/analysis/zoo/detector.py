"""A small YOLO-style detector (after YOLOv8's layout): C2f backbone with SiLU, SPPF, an FPN/PAN neck (upsample +
concat, then strided convs + concat), and a decoupled head with per-scale box and class convs.

``forward`` returns the raw head output ``(batch, 4 * reg_max + num_classes, anchors)`` with no data-dependent step.
With ``postprocess=True`` the model ends in ``postprocess``: DFL box decoding, then score thresholding through
``torch.nonzero``, so the output has a data-dependent number of rows ``(K, 7)``: batch index, x1, y1, x2, y2, score,
class. That last step is what an analyser should mark as post-processing rather than network.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Conv(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> SiLU, with ultralytics' child names conv/bn/act."""

    def __init__(self, cin: int, cout: int, k: int = 1, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001, momentum=0.03)  # ultralytics' BN settings
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c: int, shortcut: bool = True) -> None:
        super().__init__()
        self.cv1 = Conv(c, c, 3)
        self.cv2 = Conv(c, c, 3)
        self.add = shortcut

    def forward(self, x: Tensor) -> Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """Cross-stage partial block: split a 1x1 conv's output in two, chain ``n`` bottlenecks on one half, concat all."""

    def __init__(self, cin: int, cout: int, n: int = 1, shortcut: bool = False) -> None:
        super().__init__()
        self.c = cout // 2
        self.cv1 = Conv(cin, 2 * self.c, 1)
        self.cv2 = Conv((2 + n) * self.c, cout, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

    def forward(self, x: Tensor) -> Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: three chained 5x5 max-pools, concatenated."""

    def __init__(self, cin: int, cout: int, k: int = 5) -> None:
        super().__init__()
        c = cin // 2
        self.cv1 = Conv(cin, c, 1)
        self.cv2 = Conv(c * 4, cout, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: Tensor) -> Tensor:
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(self.m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class Backbone(nn.Module):
    """Stem and four strided stages, each a 3x3/2 conv and a C2f of ``n[i]`` bottlenecks; SPPF after the last."""

    def __init__(self, w: tuple[int, int, int, int, int], n: tuple[int, int, int, int] = (1, 2, 2, 1)) -> None:
        super().__init__()
        self.stem = Conv(3, w[0], 3, 2)  # /2
        self.stage1 = nn.Sequential(Conv(w[0], w[1], 3, 2), C2f(w[1], w[1], n[0], True))  # /4
        self.stage2 = nn.Sequential(Conv(w[1], w[2], 3, 2), C2f(w[2], w[2], n[1], True))  # /8  -> P3
        self.stage3 = nn.Sequential(Conv(w[2], w[3], 3, 2), C2f(w[3], w[3], n[2], True))  # /16 -> P4
        self.stage4 = nn.Sequential(Conv(w[3], w[4], 3, 2), C2f(w[4], w[4], n[3], True),
                                    SPPF(w[4], w[4]))  # /32 -> P5

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        p3 = self.stage2(self.stage1(self.stem(x)))
        p4 = self.stage3(p3)
        p5 = self.stage4(p4)
        return p3, p4, p5


class Neck(nn.Module):
    """FPN top-down (upsample + concat) then PAN bottom-up (strided conv + concat); each C2f has ``n`` bottlenecks."""

    def __init__(self, c3: int, c4: int, c5: int, n: int = 1) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.top_down4 = C2f(c5 + c4, c4, n)
        self.top_down3 = C2f(c4 + c3, c3, n)
        self.down3 = Conv(c3, c3, 3, 2)
        self.bottom_up4 = C2f(c3 + c4, c4, n)
        self.down4 = Conv(c4, c4, 3, 2)
        self.bottom_up5 = C2f(c4 + c5, c5, n)

    def forward(self, feats: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        p3, p4, p5 = feats
        t4 = self.top_down4(torch.cat([self.up(p5), p4], 1))
        n3 = self.top_down3(torch.cat([self.up(t4), p3], 1))
        n4 = self.bottom_up4(torch.cat([self.down3(n3), t4], 1))
        n5 = self.bottom_up5(torch.cat([self.down4(n4), p5], 1))
        return n3, n4, n5


class DetectHead(nn.Module):
    """Per scale: a box branch (``cv2``: 4 x reg_max distance bins) and a class branch (``cv3``: num_classes logits)."""

    def __init__(self, num_classes: int, channels: tuple[int, ...], reg_max: int = 16, c3: int | None = None) -> None:
        super().__init__()
        self.nc = num_classes
        self.reg_max = reg_max
        self.no = 4 * reg_max + num_classes
        c2 = max(16, channels[0] // 4, 4 * reg_max)
        # YOLOv8 widens c3 with the class count (``max(channels[0], min(nc, 100))``); the default keeps it fixed so
        # only the last convs depend on the class count
        c3 = channels[0] if c3 is None else c3
        self.cv2 = nn.ModuleList(
            nn.Sequential(Conv(c, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * reg_max, 1)) for c in channels)
        self.cv3 = nn.ModuleList(
            nn.Sequential(Conv(c, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, num_classes, 1)) for c in channels)

    def init_bias(self, strides: tuple[int, ...]) -> None:
        """YOLOv8's prior: box logits 1.0, class logits log(5 objects / num_classes / cells at 640 px)."""
        for box, cls, s in zip(self.cv2, self.cv3, strides):
            nn.init.constant_(box[-1].bias, 1.0)
            nn.init.constant_(cls[-1].bias, math.log(5 / self.nc / (640 / s) ** 2))

    def forward(self, feats: tuple[Tensor, ...]) -> Tensor:
        outs = [torch.cat([box(f), cls(f)], 1) for f, box, cls in zip(feats, self.cv2, self.cv3)]
        b = outs[0].shape[0]
        return torch.cat([o.reshape(b, self.no, -1) for o in outs], 2)


def anchor_grid(strides: tuple[int, ...], image_hw: tuple[int, int], like: Tensor) -> tuple[Tensor, Tensor]:
    """The anchor points of a head's concatenated outputs, as ultralytics' ``make_anchors``: each scale's cell centres
    (x + 0.5, y + 0.5, in grid units, row-major) ``(2, A)`` and each anchor's stride in pixels ``(1, A)``, scale after
    scale, on ``like``'s device and dtype."""
    points, scales = [], []
    for s in strides:
        h, w = image_hw[0] // s, image_hw[1] // s
        ys = torch.arange(h, device=like.device, dtype=like.dtype) + 0.5
        xs = torch.arange(w, device=like.device, dtype=like.dtype) + 0.5
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((gx, gy), 0).reshape(2, -1))
        scales.append(torch.full((1, h * w), float(s), device=like.device, dtype=like.dtype))
    return torch.cat(points, 1), torch.cat(scales, 1)


class ScoreThreshold(nn.Module):
    """Post-processing: decode DFL boxes against the anchor grid, keep anchors whose best class score passes."""

    def __init__(self, num_classes: int, reg_max: int, strides: tuple[int, ...], conf_threshold: float) -> None:
        super().__init__()
        self.nc = num_classes
        self.reg_max = reg_max
        self.strides = strides
        self.conf_threshold = conf_threshold

    def forward(self, raw: Tensor, image_hw: tuple[int, int]) -> Tensor:
        b, _, a = raw.shape
        anchors, stride = anchor_grid(self.strides, image_hw, raw)  # (2, A), (1, A)
        box, cls = raw.split((4 * self.reg_max, self.nc), 1)
        bins = torch.arange(self.reg_max, device=raw.device, dtype=raw.dtype).view(1, 1, -1, 1)
        dist = (box.view(b, 4, self.reg_max, a).softmax(2) * bins).sum(2)  # (B, 4, A) in grid units
        lt, rb = dist.chunk(2, 1)
        boxes = torch.cat((anchors - lt, anchors + rb), 1) * stride  # (B, 4, A) xyxy in pixels
        conf, label = cls.sigmoid().max(1)  # (B, A)
        keep = torch.nonzero(conf > self.conf_threshold)  # (K, 2): data-dependent K
        bi, ai = keep[:, 0], keep[:, 1]
        return torch.cat([bi[:, None].to(raw.dtype), boxes[bi, :, ai], conf[bi, ai, None],
                          label[bi, ai, None].to(raw.dtype)], 1)


class YoloStyleDetector(nn.Module):
    strides = (8, 16, 32)

    def __init__(self, num_classes: int = 80, widths: tuple[int, int, int, int, int] = (16, 32, 64, 128, 256),
                 postprocess: bool = False, conf_threshold: float = 0.25) -> None:
        super().__init__()
        self.backbone = Backbone(widths)
        self.neck = Neck(widths[2], widths[3], widths[4])
        self.head = DetectHead(num_classes, (widths[2], widths[3], widths[4]))
        self.postprocess = ScoreThreshold(num_classes, self.head.reg_max, self.strides, conf_threshold) \
            if postprocess else None
        self.head.init_bias(self.strides)

    def forward(self, x: Tensor) -> Tensor:
        raw = self.head(self.neck(self.backbone(x)))
        if self.postprocess is None:
            return raw
        return self.postprocess(raw, (x.shape[-2], x.shape[-1]))


def yolo_style_detector(num_classes: int = 80, postprocess: bool = False,
                        conf_threshold: float = 0.25) -> YoloStyleDetector:
    """Input (1, 3, 320, 320) (any multiple of 32); 2100 anchors at 320x320."""
    return YoloStyleDetector(num_classes, postprocess=postprocess, conf_threshold=conf_threshold)
