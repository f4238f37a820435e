"""Ultralytics YOLOv8 detection n/s/m/l/x, architecture only (no ultralytics import): the scales of ultralytics'
``yolov8.yaml`` (depth, width, max_channels) applied to the C2f backbone, SPPF, FPN/PAN neck and decoupled DFL head
of ``detector.py``.

The output is what an exported YOLOv8 (ONNX, TensorRT) returns: ``(batch, 4 + num_classes, anchors)``, boxes as
centre-x, centre-y, width, height in pixels (DFL: softmax over 16 bins, then the fixed 1x1 conv with weights 0..15)
and class scores after a sigmoid; no NMS (8400 anchors at 640x640).

Counts: parameters equal ultralytics' unfused summary (``yolov8n: 3157200 parameters``, BatchNorm weights and biases
included, the 16 fixed DFL weights too). MACs are the convolutions' multiply-accumulates, so 2 x MACs matches
ultralytics' published GFLOPs of the BN-folded ("fused") model (8.7 / 28.6 / 78.9 / 165.2 / 257.8 at 640) to within
1%; its unfused summary (8.9 GFLOPs for n) also counts BatchNorm, which we put in other_flops.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .detector import Backbone, DetectHead, Neck, anchor_grid

# depth multiple, width multiple, max channels: ultralytics/cfg/models/v8/yolov8.yaml
SCALES = {
    "n": (0.33, 0.25, 1024),
    "s": (0.33, 0.50, 1024),
    "m": (0.67, 0.75, 768),
    "l": (1.00, 1.00, 512),
    "x": (1.00, 1.25, 512),
}
_BASE_WIDTHS = (64, 128, 256, 512, 1024)
_BASE_DEPTHS = (3, 6, 6, 3)  # backbone C2f repeats; every neck C2f has 3


def _width(c: int, width: float, max_channels: int) -> int:
    return int(math.ceil(min(c, max_channels) * width / 8) * 8)  # ultralytics' make_divisible(..., 8)


def _depth(n: int, depth: float) -> int:
    return max(round(n * depth), 1)


class DFLDecode(nn.Module):
    """Distribution focal loss decoding and ``dist2bbox`` (xywh) against the anchor grid, as in the exported head."""

    def __init__(self, num_classes: int, reg_max: int, strides: tuple[int, ...]) -> None:
        super().__init__()
        self.nc, self.reg_max, self.strides = num_classes, reg_max, strides
        self.conv = nn.Conv2d(reg_max, 1, 1, bias=False).requires_grad_(False)  # weights 0..reg_max-1, fixed
        with torch.no_grad():
            self.conv.weight.copy_(torch.arange(reg_max, dtype=torch.float32).view(1, reg_max, 1, 1))

    def forward(self, raw: Tensor, image_hw: tuple[int, int]) -> Tensor:
        b, _, a = raw.shape
        anchors, stride = anchor_grid(self.strides, image_hw, raw)  # (2, A), (1, A)
        box, cls = raw.split((4 * self.reg_max, self.nc), 1)
        bins = box.view(b, 4, self.reg_max, a).transpose(2, 1).softmax(1)  # (B, reg_max, 4, A)
        lt, rb = self.conv(bins).view(b, 4, a).chunk(2, 1)
        xy, wh = anchors + (rb - lt) / 2, lt + rb
        return torch.cat((torch.cat((xy, wh), 1) * stride, cls.sigmoid()), 1)


class YOLOv8(nn.Module):
    strides = (8, 16, 32)

    def __init__(self, scale: str = "n", num_classes: int = 80) -> None:
        super().__init__()
        depth, width, max_channels = SCALES[scale]
        w = tuple(_width(c, width, max_channels) for c in _BASE_WIDTHS)
        self.backbone = Backbone(w, tuple(_depth(n, depth) for n in _BASE_DEPTHS))  # type: ignore[arg-type]
        self.neck = Neck(w[2], w[3], w[4], _depth(3, depth))
        self.head = DetectHead(num_classes, (w[2], w[3], w[4]), c3=max(w[2], min(num_classes, 100)))
        self.head.init_bias(self.strides)
        self.decode = DFLDecode(num_classes, self.head.reg_max, self.strides)

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.head(self.neck(self.backbone(x))), (x.shape[-2], x.shape[-1]))


def yolov8n(num_classes: int = 80) -> YOLOv8:
    return YOLOv8("n", num_classes)


def yolov8s(num_classes: int = 80) -> YOLOv8:
    return YOLOv8("s", num_classes)


def yolov8m(num_classes: int = 80) -> YOLOv8:
    return YOLOv8("m", num_classes)


def yolov8l(num_classes: int = 80) -> YOLOv8:
    return YOLOv8("l", num_classes)


def yolov8x(num_classes: int = 80) -> YOLOv8:
    return YOLOv8("x", num_classes)
