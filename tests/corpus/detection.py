"""Detectors: YOLOv8 and YOLO11 (ultralytics' published layouts: C2f / C3k2 blocks, SPPF, C2PSA, FPN/PAN neck,
anchor-free decoupled head with DFL and box decoding), DETR (CNN backbone, transformer encoder-decoder over learned
object queries) and RT-DETR (hybrid encoder, query selection, deformable cross-attention)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common import Built, ConvBNAct, built, image, seeded


# ------------------------------------------------------------------------------------------------ ultralytics blocks
class Conv(nn.Module):
    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, g: int = 1, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=0.001, momentum=0.03)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class DWConv(Conv):
    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, act: bool = True) -> None:
        super().__init__(c1, c2, k, s, g=math.gcd(c1, c2), act=act)


class Bottleneck(nn.Module):
    def __init__(self, c1: int, c2: int, shortcut: bool = True, k=(3, 3), e: float = 0.5) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1, self.cv2 = Conv(c1, c_, k[0]), Conv(c_, c2, k[1])
        self.add = shortcut and c1 == c2

    def forward(self, x: Tensor) -> Tensor:
        return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))


class C2f(nn.Module):
    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, e: float = 0.5) -> None:
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut, e=1.0) for _ in range(n))

    def forward(self, x: Tensor) -> Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class C3k(nn.Module):
    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, e: float = 0.5) -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1, self.cv2, self.cv3 = Conv(c1, c_), Conv(c1, c_), Conv(2 * c_, c2)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, k=(3, 3), e=1.0) for _ in range(n)))

    def forward(self, x: Tensor) -> Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class C3k2(C2f):
    def __init__(self, c1: int, c2: int, n: int = 1, c3k: bool = False, e: float = 0.5, shortcut: bool = True):
        super().__init__(c1, c2, n, shortcut, e)
        self.m = nn.ModuleList(C3k(self.c, self.c, 2, shortcut) if c3k else Bottleneck(self.c, self.c, shortcut)
                               for _ in range(n))


class SPPF(nn.Module):
    def __init__(self, c1: int, c2: int, k: int = 5) -> None:
        super().__init__()
        c_ = c1 // 2
        self.cv1, self.cv2 = Conv(c1, c_), Conv(c_ * 4, c2)
        self.m = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x: Tensor) -> Tensor:
        y = [self.cv1(x)]
        y.extend(self.m(y[-1]) for _ in range(3))
        return self.cv2(torch.cat(y, 1))


class PSAAttention(nn.Module):
    """YOLO11's position-sensitive attention: 1x1 qkv conv, softmax attention over H*W, depthwise positional conv."""

    def __init__(self, dim: int, num_heads: int = 1, attn_ratio: float = 0.5) -> None:
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.key_dim = int(self.head_dim * attn_ratio)
        self.scale = self.key_dim ** -0.5
        self.qkv = Conv(dim, dim + self.key_dim * num_heads * 2, 1, act=False)
        self.proj = Conv(dim, dim, 1, act=False)
        self.pe = Conv(dim, dim, 3, 1, g=dim, act=False)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        n = h * w
        q, k, v = self.qkv(x).view(b, self.num_heads, self.key_dim * 2 + self.head_dim, n).split(
            [self.key_dim, self.key_dim, self.head_dim], dim=2)
        attn = ((q.transpose(-2, -1) @ k) * self.scale).softmax(dim=-1)
        x = (v @ attn.transpose(-2, -1)).view(b, c, h, w) + self.pe(v.reshape(b, c, h, w))
        return self.proj(x)


class C2PSA(nn.Module):
    def __init__(self, c1: int, c2: int, n: int = 1, e: float = 0.5) -> None:
        super().__init__()
        self.c = int(c1 * e)
        self.cv1, self.cv2 = Conv(c1, 2 * self.c, 1), Conv(2 * self.c, c1, 1)
        self.attn = nn.ModuleList(PSAAttention(self.c, num_heads=max(1, self.c // 64)) for _ in range(n))
        self.ffn = nn.ModuleList(nn.Sequential(Conv(self.c, self.c * 2, 1), Conv(self.c * 2, self.c, 1, act=False))
                                 for _ in range(n))

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.cv1(x).split((self.c, self.c), dim=1)
        for attn, ffn in zip(self.attn, self.ffn):
            b = b + attn(b)
            b = b + ffn(b)
        return self.cv2(torch.cat((a, b), 1))


class DFL(nn.Module):
    """Distribution focal loss decoding: softmax over reg_max bins, expectation by a fixed 1x1 conv (0..reg_max-1)."""

    def __init__(self, c1: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1)
        self.c1 = c1

    def forward(self, x: Tensor) -> Tensor:
        b, _, a = x.shape
        return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)


def make_anchors(feats: list[Tensor], strides: Tensor, offset: float = 0.5) -> tuple[Tensor, Tensor]:
    points, stride_tensor = [], []
    dtype, device = feats[0].dtype, feats[0].device
    for i, stride in enumerate(strides):
        h, w = feats[i].shape[2:]
        sx = torch.arange(w, device=device, dtype=dtype) + offset
        sy = torch.arange(h, device=device, dtype=dtype) + offset
        sy, sx = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((sx, sy), -1).view(-1, 2))
        stride_tensor.append(torch.full((h * w, 1), stride, dtype=dtype, device=device))
    return torch.cat(points), torch.cat(stride_tensor)


def dist2bbox(distance: Tensor, anchor_points: Tensor, dim: int = 1) -> Tensor:
    lt, rb = distance.chunk(2, dim)
    x1y1, x2y2 = anchor_points - lt, anchor_points + rb
    return torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), dim)


class Detect(nn.Module):
    """Anchor-free decoupled head: per scale a box branch (4 x reg_max bins) and a class branch, then DFL and box
    decoding against anchor points built from the feature-map sizes at run time."""

    def __init__(self, nc: int, ch: tuple[int, ...], strides=(8.0, 16.0, 32.0), dw_cls: bool = False) -> None:
        super().__init__()
        self.nc, self.nl, self.reg_max = nc, len(ch), 16
        self.no = nc + 4 * self.reg_max
        self.register_buffer("stride", torch.tensor(strides))  # ultralytics keeps the strides as a tensor
        c2, c3 = max(16, ch[0] // 4, 4 * self.reg_max), max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * self.reg_max, 1))
                                 for x in ch)
        if dw_cls:  # YOLO11: depthwise-separable class branch
            self.cv3 = nn.ModuleList(nn.Sequential(nn.Sequential(DWConv(x, x, 3), Conv(x, c3, 1)),
                                                   nn.Sequential(DWConv(c3, c3, 3), Conv(c3, c3, 1)),
                                                   nn.Conv2d(c3, nc, 1)) for x in ch)
        else:
            self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1)) for x in ch)
        self.dfl = DFL(self.reg_max)

    def forward(self, x: list[Tensor]) -> Tensor:
        x = [torch.cat((self.cv2[i](x[i]), self.cv3[i](x[i])), 1) for i in range(self.nl)]
        b = x[0].shape[0]
        anchors, strides = (t.transpose(0, 1) for t in make_anchors(x, self.stride, 0.5))
        x_cat = torch.cat([xi.view(b, self.no, -1) for xi in x], 2)
        box, cls = x_cat.split((self.reg_max * 4, self.nc), 1)
        dbox = dist2bbox(self.dfl(box), anchors.unsqueeze(0), dim=1) * strides
        return torch.cat((dbox, cls.sigmoid()), 1)


class YOLOv8(nn.Module):
    """yolov8n's layer list at half width: backbone 0-9, PAN head 10-21, Detect."""

    def __init__(self, nc: int = 8, w=(8, 16, 32, 64, 128)) -> None:
        super().__init__()
        self.b0, self.b1, self.b2 = Conv(3, w[0], 3, 2), Conv(w[0], w[1], 3, 2), C2f(w[1], w[1], 1, True)
        self.b3, self.b4 = Conv(w[1], w[2], 3, 2), C2f(w[2], w[2], 2, True)
        self.b5, self.b6 = Conv(w[2], w[3], 3, 2), C2f(w[3], w[3], 2, True)
        self.b7, self.b8, self.b9 = Conv(w[3], w[4], 3, 2), C2f(w[4], w[4], 1, True), SPPF(w[4], w[4])
        self.up = nn.Upsample(None, 2, "nearest")
        self.h12 = C2f(w[4] + w[3], w[3], 1)
        self.h15 = C2f(w[3] + w[2], w[2], 1)
        self.h16, self.h18 = Conv(w[2], w[2], 3, 2), C2f(w[2] + w[3], w[3], 1)
        self.h19, self.h21 = Conv(w[3], w[3], 3, 2), C2f(w[3] + w[4], w[4], 1)
        self.detect = Detect(nc, (w[2], w[3], w[4]))

    def forward(self, x: Tensor) -> Tensor:
        p3 = self.b4(self.b3(self.b2(self.b1(self.b0(x)))))
        p4 = self.b6(self.b5(p3))
        p5 = self.b9(self.b8(self.b7(p4)))
        t4 = self.h12(torch.cat((self.up(p5), p4), 1))
        n3 = self.h15(torch.cat((self.up(t4), p3), 1))
        n4 = self.h18(torch.cat((self.h16(n3), t4), 1))
        n5 = self.h21(torch.cat((self.h19(n4), p5), 1))
        return self.detect([n3, n4, n5])


class YOLO11(nn.Module):
    """yolo11n's layer list: C3k2 blocks, SPPF, C2PSA, PAN head, Detect with depthwise class branches."""

    def __init__(self, nc: int = 8, w=(8, 16, 32, 64, 128)) -> None:
        super().__init__()
        self.b0, self.b1 = Conv(3, w[0], 3, 2), Conv(w[0], w[1], 3, 2)
        self.b2 = C3k2(w[1], w[2], 1, False, 0.25)
        self.b3, self.b4 = Conv(w[2], w[2], 3, 2), C3k2(w[2], w[3], 1, False, 0.25)
        self.b5, self.b6 = Conv(w[3], w[3], 3, 2), C3k2(w[3], w[3], 1, True)
        self.b7, self.b8 = Conv(w[3], w[4], 3, 2), C3k2(w[4], w[4], 1, True)
        self.b9, self.b10 = SPPF(w[4], w[4]), C2PSA(w[4], w[4], 1)
        self.up = nn.Upsample(None, 2, "nearest")
        self.h13 = C3k2(w[4] + w[3], w[3], 1, False)
        self.h16 = C3k2(w[3] + w[3], w[2], 1, False)
        self.h17, self.h19 = Conv(w[2], w[2], 3, 2), C3k2(w[2] + w[3], w[3], 1, False)
        self.h20, self.h22 = Conv(w[3], w[3], 3, 2), C3k2(w[3] + w[4], w[4], 1, True)
        self.detect = Detect(nc, (w[2], w[3], w[4]), dw_cls=True)

    def forward(self, x: Tensor) -> Tensor:
        p3 = self.b4(self.b3(self.b2(self.b1(self.b0(x)))))
        p4 = self.b6(self.b5(p3))
        p5 = self.b10(self.b9(self.b8(self.b7(p4))))
        t4 = self.h13(torch.cat((self.up(p5), p4), 1))
        n3 = self.h16(torch.cat((self.up(t4), p3), 1))
        n4 = self.h19(torch.cat((self.h17(n3), t4), 1))
        n5 = self.h22(torch.cat((self.h20(n4), p5), 1))
        return self.detect([n3, n4, n5])


def yolov8() -> Built:
    seeded()
    return built(YOLOv8(), image(128), "yolo", "cnn", "detection")


def yolo11() -> Built:
    seeded()
    return built(YOLO11(), image(128), "yolo", "cnn", "detection")


# ----------------------------------------------------------------------------------------------------------- DETR
class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = ConvBNAct(cin, cout, 3, stride), ConvBNAct(cout, cout, 3, act=None)
        self.down = ConvBNAct(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.down(x))


class Backbone(nn.Module):
    """A ResNet-style backbone returning the /8, /16 and /32 maps."""

    def __init__(self, w=(16, 32, 64, 128)) -> None:
        super().__init__()
        self.stem = nn.Sequential(ConvBNAct(3, w[0], 7, 2), nn.MaxPool2d(3, 2, 1))
        self.layer1 = BasicBlock(w[0], w[0], 1)
        self.layer2 = BasicBlock(w[0], w[1], 2)
        self.layer3 = BasicBlock(w[1], w[2], 2)
        self.layer4 = BasicBlock(w[2], w[3], 2)

    def forward(self, x: Tensor) -> list[Tensor]:
        c3 = self.layer2(self.layer1(self.stem(x)))
        c4 = self.layer3(c3)
        return [c3, c4, self.layer4(c4)]


def sine_position_embedding(h: int, w: int, dim: int, like: Tensor, temperature: float = 10000.0) -> Tensor:
    """DETR's PositionEmbeddingSine: cumulative sums of a mask of ones, normalised, through sin/cos: (1, dim, h, w)."""
    not_mask = torch.ones(1, h, w, device=like.device, dtype=like.dtype)
    y_embed = not_mask.cumsum(1, dtype=like.dtype)
    x_embed = not_mask.cumsum(2, dtype=like.dtype)
    eps, scale = 1e-6, 2 * math.pi
    y_embed = y_embed / (y_embed[:, -1:, :] + eps) * scale
    x_embed = x_embed / (x_embed[:, :, -1:] + eps) * scale
    npf = dim // 2
    dim_t = torch.arange(npf, dtype=like.dtype, device=like.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / npf)
    pos_x, pos_y = x_embed[:, :, :, None] / dim_t, y_embed[:, :, :, None] / dim_t
    pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
    pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
    return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)


class DetrEncoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, ff: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads)
        self.linear1, self.linear2 = nn.Linear(d, ff), nn.Linear(ff, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, src: Tensor, pos: Tensor) -> Tensor:  # post-norm, (L, B, d)
        q = k = src + pos
        src = self.norm1(src + self.self_attn(q, k, value=src)[0])
        return self.norm2(src + self.linear2(F.relu(self.linear1(src))))


class DetrDecoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, ff: int) -> None:
        super().__init__()
        self.self_attn, self.cross_attn = nn.MultiheadAttention(d, heads), nn.MultiheadAttention(d, heads)
        self.linear1, self.linear2 = nn.Linear(d, ff), nn.Linear(ff, d)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, tgt: Tensor, memory: Tensor, pos: Tensor, query_pos: Tensor) -> Tensor:
        q = k = tgt + query_pos
        tgt = self.norm1(tgt + self.self_attn(q, k, value=tgt)[0])
        tgt = self.norm2(tgt + self.cross_attn(tgt + query_pos, memory + pos, value=memory)[0])
        return self.norm3(tgt + self.linear2(F.relu(self.linear1(tgt))))


class DETR(nn.Module):
    """Carion et al. 2020: backbone -> 1x1 input projection -> encoder (sine positions) -> decoder over learned object
    queries -> class logits (num_classes + no-object) and sigmoid boxes."""

    def __init__(self, num_classes: int = 8, d: int = 64, heads: int = 4, queries: int = 20, layers: int = 2):
        super().__init__()
        self.backbone = Backbone()
        self.input_proj = nn.Conv2d(128, d, 1)
        self.encoder = nn.ModuleList(DetrEncoderLayer(d, heads, 2 * d) for _ in range(layers))
        self.decoder = nn.ModuleList(DetrDecoderLayer(d, heads, 2 * d) for _ in range(layers))
        self.decoder_norm = nn.LayerNorm(d)
        self.query_embed = nn.Embedding(queries, d)
        self.class_embed = nn.Linear(d, num_classes + 1)
        self.bbox_embed = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 4))
        self.d = d

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        src = self.input_proj(self.backbone(x)[-1])
        b, _, h, w = src.shape
        pos = sine_position_embedding(h, w, self.d, src).flatten(2).permute(2, 0, 1)
        memory = src.flatten(2).permute(2, 0, 1)  # (HW, B, d)
        for layer in self.encoder:
            memory = layer(memory, pos)
        query_pos = self.query_embed.weight.unsqueeze(1).repeat(1, b, 1)
        tgt = torch.zeros_like(query_pos)
        for layer in self.decoder:
            tgt = layer(tgt, memory, pos, query_pos)
        hs = self.decoder_norm(tgt).transpose(0, 1)  # (B, queries, d)
        return self.class_embed(hs), self.bbox_embed(hs).sigmoid()


def detr() -> Built:
    seeded()
    return built(DETR(), image(128), "detr", "hybrid", "detection")


# -------------------------------------------------------------------------------------------------------- RT-DETR
class RepC3(nn.Module):
    def __init__(self, c1: int, c2: int, n: int = 1) -> None:
        super().__init__()
        self.cv1, self.cv2 = ConvBNAct(c1, c2, 1, act=nn.SiLU), ConvBNAct(c1, c2, 1, act=nn.SiLU)
        self.m = nn.Sequential(*(ConvBNAct(c2, c2, 3, act=nn.SiLU) for _ in range(n)))

    def forward(self, x: Tensor) -> Tensor:
        return self.m(self.cv1(x)) + self.cv2(x)


def sincos_2d(w: int, h: int, dim: int, like: Tensor, temperature: float = 10000.0) -> Tensor:
    grid_w = torch.arange(w, dtype=like.dtype, device=like.device)
    grid_h = torch.arange(h, dtype=like.dtype, device=like.device)
    grid_w, grid_h = torch.meshgrid(grid_w, grid_h, indexing="ij")
    pos_dim = dim // 4
    omega = 1.0 / temperature ** (torch.arange(pos_dim, dtype=like.dtype, device=like.device) / pos_dim)
    out_w, out_h = grid_w.flatten()[..., None] @ omega[None], grid_h.flatten()[..., None] @ omega[None]
    return torch.cat([out_w.sin(), out_w.cos(), out_h.sin(), out_h.cos()], 1)[None]


class AIFI(nn.Module):
    """Attention-based intra-scale feature interaction: one transformer encoder layer on the /32 map."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.fc1, self.fc2 = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        pos = sincos_2d(w, h, c, x)
        x = x.flatten(2).permute(0, 2, 1)
        q = k = x + pos
        x = self.norm1(x + self.attn(q, k, value=x, need_weights=False)[0])
        x = self.norm2(x + self.fc2(F.gelu(self.fc1(x))))
        return x.permute(0, 2, 1).view(b, c, h, w)


class MSDeformableAttention(nn.Module):
    """Multi-scale deformable attention: each query samples n_points per head and level around its reference point
    (grid_sample on the value maps), weighted by a softmax over levels x points."""

    def __init__(self, d: int, heads: int = 4, levels: int = 3, points: int = 4) -> None:
        super().__init__()
        self.heads, self.levels, self.points, self.hd = heads, levels, points, d // heads
        self.sampling_offsets = nn.Linear(d, heads * levels * points * 2)
        self.attention_weights = nn.Linear(d, heads * levels * points)
        self.value_proj, self.output_proj = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, query: Tensor, ref: Tensor, value: Tensor, shapes: list[tuple[int, int]]) -> Tensor:
        b, nq, _ = query.shape
        v = self.value_proj(value).view(b, -1, self.heads, self.hd)
        off = self.sampling_offsets(query).view(b, nq, self.heads, self.levels, self.points, 2)
        aw = self.attention_weights(query).view(b, nq, self.heads, self.levels * self.points).softmax(-1)
        aw = aw.view(b, nq, self.heads, self.levels, self.points)
        # ref: (B, Q, 4) boxes cx, cy, w, h in [0, 1]
        loc = ref[:, :, None, None, None, :2] + off / self.points * ref[:, :, None, None, None, 2:] * 0.5
        grids = 2 * loc - 1
        sampled = []
        start = 0
        for lvl, (h, w) in enumerate(shapes):
            v_l = v[:, start:start + h * w].permute(0, 2, 3, 1).reshape(b * self.heads, self.hd, h, w)
            g_l = grids[:, :, :, lvl].permute(0, 2, 1, 3, 4).flatten(0, 1)  # (B*heads, Q, points, 2)
            sampled.append(F.grid_sample(v_l, g_l, mode="bilinear", padding_mode="zeros", align_corners=False))
            start += h * w
        aw = aw.permute(0, 2, 1, 3, 4).reshape(b * self.heads, 1, nq, self.levels * self.points)
        out = (torch.stack(sampled, dim=-2).flatten(-2) * aw).sum(-1).view(b, self.heads * self.hd, nq)
        return self.output_proj(out.permute(0, 2, 1))


class RTDETRDecoderLayer(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.cross_attn = MSDeformableAttention(d, heads)
        self.fc1, self.fc2 = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, x: Tensor, ref: Tensor, memory: Tensor, shapes, query_pos: Tensor) -> Tensor:
        q = k = x + query_pos
        x = self.norm1(x + self.self_attn(q, k, value=x, need_weights=False)[0])
        x = self.norm2(x + self.cross_attn(x + query_pos, ref, memory, shapes))
        return self.norm3(x + self.fc2(F.relu(self.fc1(x))))


class RTDETR(nn.Module):
    """Zhao et al. 2023: backbone (/8, /16, /32) -> hybrid encoder (AIFI on /32, CCFM top-down and bottom-up fusion
    with upsample + concat) -> top-k query selection from the encoder memory -> deformable decoder refining boxes."""

    def __init__(self, num_classes: int = 8, d: int = 64, heads: int = 4, queries: int = 20, layers: int = 2):
        super().__init__()
        self.backbone = Backbone()
        self.input_proj = nn.ModuleList(ConvBNAct(c, d, 1, act=None) for c in (32, 64, 128))
        self.aifi = AIFI(d, heads)
        self.lateral = nn.ModuleList(ConvBNAct(d, d, 1, act=nn.SiLU) for _ in range(2))
        self.fpn = nn.ModuleList(RepC3(2 * d, d) for _ in range(2))
        self.down = nn.ModuleList(ConvBNAct(d, d, 3, 2, act=nn.SiLU) for _ in range(2))
        self.pan = nn.ModuleList(RepC3(2 * d, d) for _ in range(2))
        self.enc_output = nn.Sequential(nn.Linear(d, d), nn.LayerNorm(d))
        self.enc_score_head = nn.Linear(d, num_classes)
        self.enc_bbox_head = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 4))
        self.query_pos_head = nn.Sequential(nn.Linear(4, 2 * d), nn.ReLU(), nn.Linear(2 * d, d))
        self.layers = nn.ModuleList(RTDETRDecoderLayer(d, heads) for _ in range(layers))
        self.score_head = nn.ModuleList(nn.Linear(d, num_classes) for _ in range(layers))
        self.bbox_head = nn.ModuleList(nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 4)) for _ in range(layers))
        self.queries = queries

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        s3, s4, s5 = (proj(f) for proj, f in zip(self.input_proj, self.backbone(x)))
        s5 = self.aifi(s5)
        # CCFM: top-down (upsample + concat), then bottom-up (strided conv + concat)
        l5 = self.lateral[0](s5)
        t4 = self.fpn[0](torch.cat([F.interpolate(l5, scale_factor=2.0, mode="nearest"), s4], 1))
        l4 = self.lateral[1](t4)
        o3 = self.fpn[1](torch.cat([F.interpolate(l4, scale_factor=2.0, mode="nearest"), s3], 1))
        o4 = self.pan[0](torch.cat([self.down[0](o3), l4], 1))
        o5 = self.pan[1](torch.cat([self.down[1](o4), l5], 1))
        feats = [o3, o4, o5]
        shapes = [(f.shape[2], f.shape[3]) for f in feats]
        memory = torch.cat([f.flatten(2).permute(0, 2, 1) for f in feats], 1)  # (B, sum HW, d)
        # anchors: a box per cell, its size growing with the level, in logit space
        anchors = []
        for lvl, (h, w) in enumerate(shapes):
            gy, gx = torch.meshgrid(torch.arange(h, dtype=x.dtype, device=x.device),
                                    torch.arange(w, dtype=x.dtype, device=x.device), indexing="ij")
            xy = (torch.stack([gx, gy], -1) + 0.5) / torch.tensor([w, h], dtype=x.dtype, device=x.device)
            wh = torch.ones_like(xy) * 0.05 * (2.0 ** lvl)
            anchors.append(torch.cat([xy, wh], -1).view(1, h * w, 4))
        anchors = torch.cat(anchors, 1)
        anchors = torch.log(anchors / (1 - anchors))
        out = self.enc_output(memory)
        enc_scores = self.enc_score_head(out)
        topk = torch.topk(enc_scores.max(-1).values, self.queries, dim=1).indices  # (B, Q)
        ref_logit = self.enc_bbox_head(out).gather(1, topk.unsqueeze(-1).repeat(1, 1, 4)) + anchors.gather(
            1, topk.unsqueeze(-1).repeat(1, 1, 4))
        target = out.gather(1, topk.unsqueeze(-1).repeat(1, 1, out.shape[-1]))
        ref = ref_logit.sigmoid()
        logits = boxes = target
        for layer, score_head, bbox_head in zip(self.layers, self.score_head, self.bbox_head):
            target = layer(target, ref, memory, shapes, self.query_pos_head(ref))
            boxes = torch.sigmoid(bbox_head(target) + torch.log(ref / (1 - ref)))
            logits = score_head(target)
            ref = boxes
        return logits, boxes


def rtdetr() -> Built:
    seeded()
    return built(RTDETR(), image(128), "rt-detr", "hybrid", "detection")
