"""Exact counts from torch files where meta-device counting used to stop short or count wrong (issue 12).

Every model is built here, small, and written as TorchScript (traced, and scripted where the model allows) and as a
``.pt2`` (torch.export). Truth is independent of our formula table: params from the module (each tensor once), MACs
from ``torch.utils.flop_counter.FlopCounterMode`` on the in-memory module, plus a hand count of the attention it does
not see on CPU (Q·Kᵀ and A·V over the full score matrix, FlopCounterMode's own convention).

- ultralytics-style YOLO heads (Detect with DFL, Segment, Pose) and an RT-DETR-style decoder: anchors made at run
  time from the feature shapes, a DFL conv with arange weights, constants baked into traces;
- fused fast paths: a traced ``nn.TransformerEncoder`` (``_transformer_encoder_layer_fwd``, nested tensors for a
  padding mask) and ``nn.MultiheadAttention`` (``_native_multi_head_attention``), self and cross attention;
- tied weights (GPT-2's ``lm_head.weight = wte.weight``, an encoder-decoder sharing its embedding);
- token-id inputs: ``--input-shape 1,16:int64``, ``--input-dtype``, int64 inferred for inputs that feed an embedding,
  a BERT-like model that reads ``mask.sum().item()``; a ShuffleNet-v2 channel shuffle traced with a scalar constant;
- one-line errors for RecursionError, MemoryError and a file that changes while it is hashed.
"""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from embodied_tui.analysis.api import analyze_file, parse_shapes, with_dtypes
from embodied_tui.errors import AnalysisError


# ---- truth and files ----------------------------------------------------------------------------------------------
def counter_macs(model: nn.Module, inputs) -> int:
    """FlopCounterMode's MACs on a real CPU run, without any attention op it may or may not count (the attention is
    added by hand, the same way whether or not this torch build counts it)."""
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(*inputs)
    counts = fc.get_flop_counts()["Global"]
    return sum(v for k, v in counts.items() if "attention" not in str(k)) // 2


def attention_macs(batch: int, queries: int, keys: int, dim: int) -> int:
    """Q·Kᵀ and A·V over all heads (heads x head_dim = dim), full score matrix."""
    return batch * queries * keys * 2 * dim


def unique_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # parameters() yields a tied tensor once


def write(model: nn.Module, inputs, tmp_path, name: str, *, script: bool = False, export: bool = True) -> dict:
    files = {}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        files["traced"] = tmp_path / f"{name}.traced.pt"
        torch.jit.trace(model, inputs, check_trace=False).save(files["traced"])
        if script:
            files["scripted"] = tmp_path / f"{name}.scripted.pt"
            torch.jit.script(model).save(files["scripted"])
        if export:
            files["pt2"] = tmp_path / f"{name}.pt2"
            torch.export.save(torch.export.export(model, inputs), files["pt2"])
    return files


def shape_text(inputs, dtypes: bool = False) -> str:
    return ";".join(",".join(map(str, t.shape)) + (f":{str(t.dtype).removeprefix('torch.')}" if dtypes else "")
                    for t in inputs)


def analyse(path, inputs=None, *, dtypes: bool = True):
    """Our analysis of a file: TorchScript needs its shapes (and, stated here, dtypes); a .pt2 carries them."""
    shapes = None if str(path).endswith(".pt2") or inputs is None else parse_shapes(shape_text(inputs, dtypes))
    return analyze_file(path, input_shape=shapes)


# ---- ultralytics-style YOLO ---------------------------------------------------------------------------------------
class Conv(nn.Module):
    def __init__(self, c1, c2, k=1, s=1, g=1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c1, c2, shortcut=True):
        super().__init__()
        self.cv1 = Conv(c1, c2, 3)
        self.cv2 = Conv(c2, c2, 3)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))


class C2f(nn.Module):
    def __init__(self, c1, c2, n=1, shortcut=False, e=0.5):
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut) for _ in range(n))

    def forward(self, x):
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, c1, c2, k=5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x):
        y = [self.cv1(x)]
        y.extend(self.m(y[-1]) for _ in range(3))
        return self.cv2(torch.cat(y, 1))


class DFL(nn.Module):
    """Distribution focal loss integral: softmax over reg_max bins, then a fixed 1x1 conv with weights 0..reg_max-1."""

    def __init__(self, c1=16):
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = nn.Parameter(torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1))
        self.c1 = c1

    def forward(self, x):
        b, _, a = x.shape
        return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)


def make_anchors(feats, strides, grid_cell_offset=0.5):
    """Anchor points and strides from the feature maps' shapes, on their device (ultralytics.utils.tal)."""
    anchor_points, stride_tensor = [], []
    dtype, device = feats[0].dtype, feats[0].device
    for i, stride in enumerate(strides):
        h, w = feats[i].shape[2:]
        sx = torch.arange(end=w, device=device, dtype=dtype) + grid_cell_offset
        sy = torch.arange(end=h, device=device, dtype=dtype) + grid_cell_offset
        sy, sx = torch.meshgrid(sy, sx, indexing="ij")
        anchor_points.append(torch.stack((sx, sy), -1).view(-1, 2))
        stride_tensor.append(torch.full((h * w, 1), stride, dtype=dtype, device=device))
    return torch.cat(anchor_points), torch.cat(stride_tensor)


def dist2bbox(distance, anchor_points, xywh=True, dim=-1):
    lt, rb = distance.chunk(2, dim)
    x1y1 = anchor_points - lt
    x2y2 = anchor_points + rb
    if xywh:
        return torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), dim)
    return torch.cat((x1y1, x2y2), dim)


class Detect(nn.Module):
    dynamic = False  # ultralytics: rebuild the anchors on every call (export with dynamic shapes)
    export = False
    shape = None
    anchors = torch.empty(0)
    strides = torch.empty(0)

    def __init__(self, nc=80, ch=()):
        super().__init__()
        self.nc, self.nl, self.reg_max = nc, len(ch), 16
        self.no = nc + self.reg_max * 4
        self.stride = torch.tensor([8.0, 16.0, 32.0][: self.nl])  # a plain tensor attribute, as in ultralytics
        c2, c3 = max((16, ch[0] // 4, self.reg_max * 4)), max(ch[0], min(self.nc, 100))
        self.cv2 = nn.ModuleList(
            nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * self.reg_max, 1)) for x in ch)
        self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, self.nc, 1)) for x in ch)
        self.dfl = DFL(self.reg_max)

    def forward(self, x):
        for i in range(self.nl):
            x[i] = torch.cat((self.cv2[i](x[i]), self.cv3[i](x[i])), 1)
        y = self._inference(x)
        return y if self.export else (y, x)

    def _inference(self, x):
        shape = x[0].shape
        x_cat = torch.cat([xi.view(shape[0], self.no, -1) for xi in x], 2)
        if self.dynamic or self.shape != shape:
            self.anchors, self.strides = (a.transpose(0, 1) for a in make_anchors(x, self.stride, 0.5))
            self.shape = shape
        box, cls = x_cat.split((self.reg_max * 4, self.nc), 1)
        dbox = dist2bbox(self.dfl(box), self.anchors.unsqueeze(0), xywh=True, dim=1) * self.strides
        return torch.cat((dbox, cls.sigmoid()), 1)


class Proto(nn.Module):
    def __init__(self, c1, c_=16, c2=8):
        super().__init__()
        self.cv1 = Conv(c1, c_, 3)
        self.upsample = nn.ConvTranspose2d(c_, c_, 2, 2, 0, bias=True)
        self.cv2 = Conv(c_, c_, 3)
        self.cv3 = Conv(c_, c2)

    def forward(self, x):
        return self.cv3(self.cv2(self.upsample(self.cv1(x))))


class Segment(Detect):
    def __init__(self, nc=80, nm=8, npr=16, ch=()):
        super().__init__(nc, ch)
        self.nm = nm
        self.proto = Proto(ch[0], npr, nm)
        c4 = max(ch[0] // 4, nm)
        self.cv4 = nn.ModuleList(nn.Sequential(Conv(x, c4, 3), Conv(c4, c4, 3), nn.Conv2d(c4, nm, 1)) for x in ch)

    def forward(self, x):
        p = self.proto(x[0])
        bs = p.shape[0]
        mc = torch.cat([self.cv4[i](x[i]).view(bs, self.nm, -1) for i in range(self.nl)], 2)  # mask coefficients
        x = Detect.forward(self, x)
        return (torch.cat([x, mc], 1), p) if self.export else (torch.cat([x[0], mc], 1), (x[1], mc, p))


class Pose(Detect):
    def __init__(self, nc=1, kpt_shape=(5, 3), ch=()):
        super().__init__(nc, ch)
        self.kpt_shape = kpt_shape
        self.nk = kpt_shape[0] * kpt_shape[1]
        c4 = max(ch[0] // 4, self.nk)
        self.cv4 = nn.ModuleList(nn.Sequential(Conv(x, c4, 3), Conv(c4, c4, 3), nn.Conv2d(c4, self.nk, 1)) for x in ch)

    def forward(self, x):
        bs = x[0].shape[0]
        kpt = torch.cat([self.cv4[i](x[i]).view(bs, self.nk, -1) for i in range(self.nl)], -1)
        x = Detect.forward(self, x)
        pred_kpt = self.kpts_decode(bs, kpt)
        return torch.cat([x, pred_kpt], 1) if self.export else (torch.cat([x[0], pred_kpt], 1), (x[1], kpt))

    def kpts_decode(self, bs, kpts):
        y = kpts.view(bs, *self.kpt_shape, -1)
        a = (y[:, :, :2] * 2.0 + (self.anchors - 0.5)) * self.strides  # keypoints decoded against the anchors
        a = torch.cat((a, y[:, :, 2:3].sigmoid()), 2)
        return a.view(bs, self.nk, -1)


class TinyYOLO(nn.Module):
    """Backbone (Conv, C2f, SPPF), a PAN neck and one head, in ultralytics' layer order (``model.N``)."""

    def __init__(self, head="detect", nc=4, w=8):
        super().__init__()
        self.model = nn.ModuleList([
            Conv(3, w, 3, 2), Conv(w, 2 * w, 3, 2), C2f(2 * w, 2 * w, 1, True),  # 0-2
            Conv(2 * w, 4 * w, 3, 2), C2f(4 * w, 4 * w, 1, True),  # 3-4: P3
            Conv(4 * w, 8 * w, 3, 2), C2f(8 * w, 8 * w, 1, True),  # 5-6: P4
            Conv(8 * w, 8 * w, 3, 2), C2f(8 * w, 8 * w, 1, True), SPPF(8 * w, 8 * w, 5),  # 7-9: P5
            nn.Upsample(None, 2, "nearest"), C2f(16 * w, 4 * w, 1),  # 10-11
            nn.Upsample(None, 2, "nearest"), C2f(8 * w, 4 * w, 1),  # 12-13: P3 out
            Conv(4 * w, 4 * w, 3, 2), C2f(8 * w, 4 * w, 1),  # 14-15: P4 out
            Conv(4 * w, 8 * w, 3, 2), C2f(16 * w, 8 * w, 1),  # 16-17: P5 out
        ])
        ch = (4 * w, 4 * w, 8 * w)
        self.model.append({"detect": lambda: Detect(nc, ch), "segment": lambda: Segment(nc, 8, 16, ch),
                           "pose": lambda: Pose(1, (5, 3), ch)}[head]())

    def forward(self, x):
        m = self.model
        x = m[2](m[1](m[0](x)))
        p3 = m[4](m[3](x))
        p4 = m[6](m[5](p3))
        p5 = m[9](m[8](m[7](p4)))
        n4 = m[11](torch.cat([m[10](p5), p4], 1))
        n3 = m[13](torch.cat([m[12](n4), p3], 1))
        o4 = m[15](torch.cat([m[14](n3), n4], 1))
        o5 = m[17](torch.cat([m[16](o4), p5], 1))
        return m[18]([n3, o4, o5])


# the ways ultralytics leaves a head when it is saved: anchors built in the call (first call), cached from a warm-up
# call (constants in the file), rebuilt on every call (dynamic: the stride is read with .item() in a .pt2)
YOLO_CASES = [("detect", "first"), ("segment", "first"), ("pose", "first"), ("detect", "warm"), ("pose", "dynamic")]


@pytest.mark.parametrize("head,variant", YOLO_CASES)
def test_ultralytics_yolo_heads_count_exactly(head, variant, tmp_path):
    """Before: TorchScript failed in model.N.dfl.conv (op sub: the trace's anchors are CPU constants); .pt2 failed on
    the stride's .item() or on 'Tensor on device meta is not on the expected device cpu'."""
    torch.manual_seed(0)
    model = TinyYOLO(head).eval()
    x = (torch.randn(1, 3, 64, 64),)
    if variant == "warm":
        with torch.no_grad():
            model(*x)
    model.model[-1].dynamic = variant == "dynamic"
    expected_macs, expected_params = counter_macs(model, x), unique_params(model)
    for fmt, path in write(model, x, tmp_path, f"yolo_{head}_{variant}").items():
        a = analyse(path, x)
        assert a.macs == expected_macs, (fmt, a.macs, expected_macs)
        assert a.params == expected_params, (fmt, a.params)
        assert a.macs_complete, (fmt, a.uncounted, a.notes)
        assert a.output_shapes[0][-1] == 8 * 8 + 4 * 4 + 2 * 2, fmt  # every anchor decoded
        moved = [n for n in a.notes if n.startswith("fallback:") and "moved to meta" in n]
        if moved:  # a fallback that ran is named, with the ops it ran for
            assert "(" in moved[0] and " x" in moved[0], moved


# ---- RT-DETR-style decoder ----------------------------------------------------------------------------------------
class MLP(nn.Module):
    def __init__(self, i, h, o, n):
        super().__init__()
        dims = [i] + [h] * (n - 1)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:] + [o]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < len(self.layers) - 1 else layer(x)
        return x


def multi_scale_deformable_attn(value, value_shapes, sampling_locations, attention_weights):
    bs, _, num_heads, embed_dims = value.shape
    _, num_queries, num_heads, num_levels, num_points, _ = sampling_locations.shape
    value_list = value.split([h * w for h, w in value_shapes], dim=1)
    sampling_grids = 2 * sampling_locations - 1
    sampled = []
    for level, (h, w) in enumerate(value_shapes):
        value_l = value_list[level].flatten(2).transpose(1, 2).reshape(bs * num_heads, embed_dims, h, w)
        grid_l = sampling_grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampled.append(F.grid_sample(value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=False))
    attention_weights = attention_weights.transpose(1, 2).reshape(bs * num_heads, 1, num_queries,
                                                                  num_levels * num_points)
    out = (torch.stack(sampled, dim=-2).flatten(-2) * attention_weights).sum(-1)
    return out.view(bs, num_heads * embed_dims, num_queries).transpose(1, 2).contiguous()


class MSDeformAttn(nn.Module):
    def __init__(self, d=32, n_levels=3, n_heads=4, n_points=2):
        super().__init__()
        self.d, self.n_levels, self.n_heads, self.n_points = d, n_levels, n_heads, n_points
        self.sampling_offsets = nn.Linear(d, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d, d)
        self.output_proj = nn.Linear(d, d)

    def forward(self, query, refer_bbox, value, value_shapes):
        bs, len_q = query.shape[:2]
        value = self.value_proj(value).view(bs, value.shape[1], self.n_heads, self.d // self.n_heads)
        off = self.sampling_offsets(query).view(bs, len_q, self.n_heads, self.n_levels, self.n_points, 2)
        aw = self.attention_weights(query).view(bs, len_q, self.n_heads, self.n_levels * self.n_points)
        aw = F.softmax(aw, -1).view(bs, len_q, self.n_heads, self.n_levels, self.n_points)
        loc = refer_bbox[:, :, None, :, None, :2] + off / self.n_points * refer_bbox[:, :, None, :, None, 2:] * 0.5
        return self.output_proj(multi_scale_deformable_attn(value, value_shapes, loc, aw))


class DecoderLayer(nn.Module):
    def __init__(self, d=32, heads=4, ffn=64, n_levels=3):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(d)
        self.cross_attn = MSDeformAttn(d, n_levels, heads, 2)
        self.norm2 = nn.LayerNorm(d)
        self.linear1, self.linear2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.norm3 = nn.LayerNorm(d)

    def forward(self, embed, refer_bbox, feats, shapes, query_pos):
        q = k = embed + query_pos
        embed = self.norm1(embed + self.self_attn(q, k, embed, need_weights=False)[0])
        embed = self.norm2(embed + self.cross_attn(embed + query_pos, refer_bbox.unsqueeze(2), feats, shapes))
        return self.norm3(embed + self.linear2(F.relu(self.linear1(embed))))


class RTDETRDecoder(nn.Module):
    """Input projection, anchors generated at run time, top-k query selection, deformable decoder layers."""

    def __init__(self, nc=4, ch=(32, 32, 32), hd=32, nq=20, layers=2):
        super().__init__()
        self.hd, self.nl, self.num_queries = hd, len(ch), nq
        self.input_proj = nn.ModuleList(nn.Sequential(nn.Conv2d(x, hd, 1, bias=False), nn.BatchNorm2d(hd)) for x in ch)
        self.enc_output = nn.Sequential(nn.Linear(hd, hd), nn.LayerNorm(hd))
        self.enc_score_head = nn.Linear(hd, nc)
        self.enc_bbox_head = MLP(hd, hd, 4, 3)
        self.query_pos_head = MLP(4, 2 * hd, hd, 2)
        self.layers = nn.ModuleList(DecoderLayer(hd, 4, 2 * hd, self.nl) for _ in range(layers))
        self.dec_score_head = nn.ModuleList(nn.Linear(hd, nc) for _ in range(layers))  # eval: the last one runs
        self.dec_bbox_head = nn.ModuleList(MLP(hd, hd, 4, 3) for _ in range(layers))

    @staticmethod
    def _generate_anchors(shapes, grid_size=0.05, dtype=torch.float32, device="cpu", eps=1e-2):
        anchors = []
        for i, (h, w) in enumerate(shapes):
            sy = torch.arange(end=h, dtype=dtype, device=device)
            sx = torch.arange(end=w, dtype=dtype, device=device)
            grid_y, grid_x = torch.meshgrid(sy, sx, indexing="ij")
            grid_xy = torch.stack([grid_x, grid_y], -1)
            valid_wh = torch.tensor([w, h], dtype=dtype, device=device)
            grid_xy = (grid_xy.unsqueeze(0) + 0.5) / valid_wh
            wh = torch.ones_like(grid_xy, dtype=dtype, device=device) * grid_size * (2.0 ** i)
            anchors.append(torch.cat([grid_xy, wh], -1).view(-1, h * w, 4))
        anchors = torch.cat(anchors, 1)
        valid_mask = ((anchors > eps) & (anchors < 1 - eps)).all(-1, keepdim=True)
        anchors = torch.log(anchors / (1 - anchors))
        return anchors.masked_fill(~valid_mask, float("inf")), valid_mask

    def forward(self, x):
        x = [self.input_proj[i](feat) for i, feat in enumerate(x)]
        shapes = [list(feat.shape[2:]) for feat in x]
        feats = torch.cat([feat.flatten(2).permute(0, 2, 1) for feat in x], 1)
        bs = feats.shape[0]
        anchors, valid_mask = self._generate_anchors(shapes, dtype=feats.dtype, device=feats.device)
        features = self.enc_output(valid_mask * feats)
        enc_scores = self.enc_score_head(features)
        topk_ind = torch.topk(enc_scores.max(-1).values, self.num_queries, dim=1).indices.view(-1)
        batch_ind = torch.arange(end=bs, dtype=topk_ind.dtype).unsqueeze(-1).repeat(1, self.num_queries).view(-1)
        top_k_features = features[batch_ind, topk_ind].view(bs, self.num_queries, -1)
        top_k_anchors = anchors[:, topk_ind].view(bs, self.num_queries, -1)
        refer_bbox = (self.enc_bbox_head(top_k_features) + top_k_anchors).sigmoid()
        embed = top_k_features
        for i, layer in enumerate(self.layers):
            embed = layer(embed, refer_bbox, feats, shapes, self.query_pos_head(refer_bbox))
            refer_bbox = torch.sigmoid(self.dec_bbox_head[i](embed) + torch.log(refer_bbox / (1 - refer_bbox)))
        return torch.cat([refer_bbox, self.dec_score_head[-1](embed).sigmoid()], -1)


class TinyRTDETR(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.ModuleList([Conv(3, 16, 3, 2), Conv(16, 32, 3, 2), C2f(32, 32, 1, True),
                                       Conv(32, 32, 3, 2), Conv(32, 32, 3, 2), Conv(32, 32, 3, 2)])
        self.head = RTDETRDecoder()

    def forward(self, x):
        b = self.backbone
        p3 = b[3](b[2](b[1](b[0](x))))
        p4 = b[4](p3)
        return self.head([p3, p4, b[5](p4)])


def test_rtdetr_decoder_counts_exactly(tmp_path):
    """Anchors from the feature shapes, a CPU index (torch.arange(bs)) into meta features, top-k queries.
    Before: the .pt2 was refused by our reader (aten.__and__ read as not an operator)."""
    torch.manual_seed(0)
    model = TinyRTDETR().eval()
    x = (torch.randn(1, 3, 64, 64),)
    # self-attention of the 20 queries in each of 2 layers (width 32): FlopCounterMode sees the projections only
    expected = counter_macs(model, x) + 2 * attention_macs(1, 20, 20, 32)
    for fmt, path in write(model, x, tmp_path, "rtdetr").items():
        a = analyse(path, x)
        assert a.macs == expected, (fmt, a.macs, expected)
        assert a.params == unique_params(model) and a.macs_complete, (fmt, a.params, a.uncounted)
        assert a.output_shapes == [[1, 20, 8]], fmt


# ---- fused attention fast paths -----------------------------------------------------------------------------------
def encoder_macs(b: int, length: int, d: int, ff: int, layers: int) -> int:
    """Per layer: q, k, v projections, Q·Kᵀ and A·V over the full (causal or padded alike) score matrix, the output
    projection and the feed-forward block."""
    return layers * (3 * b * length * d * d + attention_macs(b, length, length, d) + b * length * d * d
                     + 2 * b * length * d * ff)


class Encoder(nn.Module):
    def __init__(self, norm_first=False, mask=None, nested=True, d=32, heads=4, ff=64, layers=2):
        super().__init__()
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, batch_first=True, norm_first=norm_first)
        self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=nested and not norm_first)
        self.mask = mask

    def forward(self, x, padding: Tensor | None = None):
        if self.mask == "causal":
            causal = nn.Transformer.generate_square_subsequent_mask(x.shape[1], device=x.device)
            return self.enc(x, mask=causal, is_causal=True)
        if self.mask == "padding":
            return self.enc(x, src_key_padding_mask=padding)
        return self.enc(x)


ENCODERS = {"post-norm": dict(), "pre-norm": dict(norm_first=True), "causal": dict(mask="causal"),
            "padding": dict(mask="padding")}


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_transformer_encoder_fast_path_is_counted(name, tmp_path):
    """A traced nn.TransformerEncoder in eval runs aten._transformer_encoder_layer_fwd (and nested tensors for a
    padding mask). Before: 0 MACs for the whole encoder, complete, no note."""
    torch.manual_seed(0)
    model = Encoder(**ENCODERS[name]).eval()
    x = torch.randn(2, 10, 32)
    inputs = (x,)
    if name == "padding":
        padding = torch.zeros(2, 10, dtype=torch.bool)
        padding[1, 7:] = True
        inputs = (x, padding)
    expected = encoder_macs(2, 10, 32, 64, 2)
    for fmt, path in write(model, inputs, tmp_path, f"encoder_{name}").items():
        a = analyse(path, inputs)
        assert a.macs == expected, (fmt, a.macs, expected)
        assert a.macs_complete and a.params == unique_params(model), (fmt, a.uncounted)
        assert a.macs_by_kind.get("attention", 0) + a.macs_by_kind.get("matmul", 0) >= 2 * attention_macs(
            1, 10, 10, 32), (fmt, a.macs_by_kind)
        if fmt == "traced" and name == "padding":  # the padding removal ran dense, and the notes say so
            assert any("nested-tensor" in n for n in a.notes), a.notes


def test_scripted_transformer_encoder(tmp_path):
    torch.manual_seed(0)
    model = nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64, 0.0, batch_first=True), 2).eval()
    path = tmp_path / "encoder.scripted.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(model).save(path)
    assert analyze_file(path, input_shape=[[2, 10, 32]]).macs == encoder_macs(2, 10, 32, 64, 2)


class Attention(nn.Module):
    def __init__(self, cross: bool, d=32, heads=4):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.cross = cross

    def forward(self, x, memory: Tensor | None = None):
        if self.cross:
            return self.attn(x, memory, memory, need_weights=False)[0]
        return self.attn(x, x, x, need_weights=False)[0]


@pytest.mark.parametrize("cross", [False, True], ids=["self", "cross"])
def test_multihead_attention_self_and_cross(cross, tmp_path):
    """Self-attention takes the fused _native_multi_head_attention when traced; cross attention the composite."""
    torch.manual_seed(0)
    model = Attention(cross).eval()
    x, memory = torch.randn(2, 10, 32), torch.randn(2, 7, 32)
    inputs = (x, memory) if cross else (x,)
    keys = 7 if cross else 10
    expected = 2 * 10 * 32 * 32 + 2 * (2 * keys * 32 * 32) + 2 * 10 * 32 * 32 + attention_macs(2, 10, keys, 32)
    for fmt, path in write(model, inputs, tmp_path, f"mha_{cross}").items():
        a = analyse(path, inputs)
        assert a.macs == expected and a.macs_complete, (fmt, a.macs, expected)


def test_fused_formulas_match_their_decomposition():
    """The fused encoder layer and MHA formulas give the MACs the slow path's own ops give (eager, meta)."""
    from embodied_tui.analysis.torch import formulas

    aten = torch.ops.aten
    src = torch.empty(2, 10, 32, device="meta")
    w = lambda *s: torch.empty(*s, device="meta")  # noqa: E731
    args = (src, 32, 4, w(96, 32), w(96), w(32, 32), w(32), False, False, 1e-5, w(32), w(32), w(32), w(32),
            w(64, 32), w(64), w(32, 64), w(32))
    layer = formulas.FORMULAS[aten._transformer_encoder_layer_fwd.default](args, {}, src)
    assert layer.macs == encoder_macs(2, 10, 32, 64, 1) and layer.kind == "attention"
    mha = formulas.FORMULAS[aten._native_multi_head_attention.default](
        (src, w(2, 7, 32), w(2, 7, 32), 32, 4, w(96, 32), w(96), w(32, 32), w(32)), {}, (src, None))
    assert mha.macs == 2 * 10 * 32 * 32 * 2 + 2 * 2 * 7 * 32 * 32 + attention_macs(2, 10, 7, 32)
    # the kernels under fused SDPA take (B, L, H, E)
    q = w(2, 10, 4, 8)
    eff = formulas.FORMULAS[aten._efficient_attention_forward.default]((q, q, q, None, None, None, None, None, 0.0, 0),
                                                                      {}, None)
    assert eff.macs == attention_macs(2, 10, 10, 32)


def test_an_op_with_no_formula_that_does_macs_is_never_a_silent_zero(monkeypatch, tmp_path):
    from embodied_tui.analysis.torch import formulas

    assert formulas.may_carry_macs("_scaled_mm") and formulas.may_carry_macs("cudnn_convolution_relu")
    assert formulas.may_carry_macs("_cudnn_attention_forward") and formulas.may_carry_macs("mkldnn_rnn_layer")
    assert not formulas.may_carry_macs("_convert_indices_from_coo_to_csr") and not formulas.may_carry_macs("topk")
    monkeypatch.delitem(formulas.FORMULAS, torch.ops.aten.addmm.default)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    path = tmp_path / "mlp.pt2"
    torch.export.save(torch.export.export(model, (torch.randn(1, 8),)), path)
    a = analyze_file(path)
    assert not a.macs_complete
    assert [u.op for u in a.uncounted if "multiply-accumulates" in u.reason] == ["aten.addmm", "aten.addmm"]
    assert any(n.startswith("MACs incomplete") for n in a.notes)


# ---- tied weights --------------------------------------------------------------------------------------------------
class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.h = h

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, 2)
        q = q.view(b, t, self.h, d // self.h).transpose(1, 2)
        k = k.view(b, t, self.h, d // self.h).transpose(1, 2)
        v = v.view(b, t, self.h, d // self.h).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class TinyGPT2(nn.Module):
    def __init__(self, vocab=100, d=32, h=4, n=2, ctx=64):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
        self.h = nn.ModuleList(Block(d, h) for _ in range(n))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1], device=ids.device))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


class TinySeq2Seq(nn.Module):
    """An encoder-decoder sharing one embedding between encoder, decoder and the tied output head (T5's layout)."""

    def __init__(self, vocab=100, d=32, h=4):
        super().__init__()
        self.shared = nn.Embedding(vocab, d)
        self.encoder = nn.ModuleDict({"embed_tokens": self.shared, "block": Block(d, h)})
        self.decoder = nn.ModuleDict({"embed_tokens": self.shared, "block": Block(d, h),
                                      "cross": nn.MultiheadAttention(d, h, batch_first=True)})
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.shared.weight

    def forward(self, src, tgt):
        memory = self.encoder["block"](self.encoder["embed_tokens"](src))
        y = self.decoder["block"](self.decoder["embed_tokens"](tgt))
        y = y + self.decoder["cross"](y, memory, memory, need_weights=False)[0]
        return self.lm_head(y)


def test_tied_weights_are_counted_once(tmp_path):
    """Before: GPT-2-like 1.10x params from a trace and a .pt2 (lm_head counted beside wte), seq2seq 1.29x."""
    torch.manual_seed(0)
    ids = torch.ones(1, 16, dtype=torch.long)
    gpt = TinyGPT2().eval()
    gpt_macs = counter_macs(gpt, (ids,)) + 2 * attention_macs(1, 16, 16, 32)
    src, tgt = torch.ones(1, 12, dtype=torch.long), torch.ones(1, 8, dtype=torch.long)
    s2s = TinySeq2Seq().eval()
    s2s_macs = counter_macs(s2s, (src, tgt)) + attention_macs(1, 12, 12, 32) + attention_macs(1, 8, 8, 32) + \
        attention_macs(1, 8, 12, 32)
    for model, inputs, macs, name in ((gpt, (ids,), gpt_macs, "gpt2"), (s2s, (src, tgt), s2s_macs, "seq2seq")):
        weight_bytes = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
        for fmt, path in write(model, inputs, tmp_path, name, script=True).items():
            a = analyse(path, inputs)
            assert a.params == unique_params(model), (name, fmt, a.params, unique_params(model))
            assert a.weight_bytes == weight_bytes, (name, fmt, a.weight_bytes)
            assert a.macs == macs, (name, fmt, a.macs, macs)
            root = next(node for node in a.census if node.path == "")
            assert root.params == a.params, (name, fmt, root.params)  # the tree holds the tied tensor once too


# ---- token ids, .item(), channel shuffle --------------------------------------------------------------------------
def test_input_dtype_syntax():
    shapes = parse_shapes("1,128:int64;1,128:long;1,3,8,8")
    assert shapes == [[1, 128], [1, 128], [1, 3, 8, 8]]
    assert [s.dtype for s in shapes] == ["int64", "int64", None]
    assert [s.dtype for s in with_dtypes(parse_shapes("1,16;1,16"), ("int32", "bool"))] == ["int32", "bool"]
    assert with_dtypes(shapes, ()) is shapes
    for bad in ("1,128:int65", "1,128:"):
        with pytest.raises(AnalysisError, match="dtype"):
            parse_shapes(bad)
    with pytest.raises(AnalysisError, match="needs --input-shape"):
        with_dtypes(None, ("int64",))
    with pytest.raises(AnalysisError, match="says int64"):
        with_dtypes(parse_shapes("1,16:int64"), ("float32",))
    import pickle

    again = pickle.loads(pickle.dumps(shapes))  # to the analysis worker process and back
    assert again == shapes and [s.dtype for s in again] == ["int64", "int64", None]


def test_token_ids_through_the_cli(cli, tmp_path):
    """Before: a TorchScript language model with --input-shape failed in op embedding (the shape was fed as float)."""
    torch.manual_seed(0)
    model = TinyGPT2().eval()
    ids = torch.ones(1, 16, dtype=torch.long)
    path = write(model, (ids,), tmp_path, "gpt2", export=False)["traced"]
    expected = counter_macs(model, (ids,)) + 2 * attention_macs(1, 16, 16, 32)
    import json

    for args in (("--input-shape", "1,16"), ("--input-shape", "1,16:int64"),
                 ("--input-shape", "1,16", "--input-dtype", "int64")):
        result = cli("model", "analyze", path, *args, "--json")
        assert result.exit_code == 0, result.output
        out = json.loads(result.output)
        assert out["macs"] == expected and out["input_dtypes"] == ["int64"], (args, out["macs"])
        assert any("int64 assumed" in n for n in out["notes"]) == (len(args) == 2 and ":" not in args[1]), args
    result = cli("model", "analyze", path, "--input-dtype", "int64")
    assert result.exit_code != 0 and "needs --input-shape" in result.output


class BertLayer(nn.Module):
    def __init__(self, d, h, ff):
        super().__init__()
        self.h = h
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.attn_out, self.ln1 = nn.Linear(d, d), nn.LayerNorm(d)
        self.inter, self.out, self.ln2 = nn.Linear(d, ff), nn.Linear(ff, d), nn.LayerNorm(d)

    def forward(self, x, ext_mask):
        b, t, d = x.shape
        q = self.query(x).view(b, t, self.h, d // self.h).transpose(1, 2)
        k = self.key(x).view(b, t, self.h, d // self.h).transpose(1, 2)
        v = self.value(x).view(b, t, self.h, d // self.h).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / (d // self.h) ** 0.5 + ext_mask
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = self.ln1(x + self.attn_out(ctx))
        return self.ln2(x + self.out(F.gelu(self.inter(x))))


class TinyBert(nn.Module):
    """BERT-like, with a data-dependent scalar: the batch is trimmed to its longest sequence (``mask.sum().item()``)."""

    def __init__(self, vocab=100, d=32, h=4, n=2, ff=64, maxlen=64):
        super().__init__()
        self.word, self.position, self.token_type = nn.Embedding(vocab, d), nn.Embedding(maxlen, d), nn.Embedding(2, d)
        self.register_buffer("position_ids", torch.arange(maxlen).expand(1, -1), persistent=False)
        self.ln = nn.LayerNorm(d)
        self.layers = nn.ModuleList(BertLayer(d, h, ff) for _ in range(n))
        self.pooler = nn.Linear(d, d)

    def forward(self, input_ids, attention_mask, token_type_ids):
        peak = attention_mask.sum(1).max()
        if torch.jit.is_scripting():
            length = int(peak.item())
        else:
            length = peak.item()
            if not torch.jit.is_tracing():  # torch.export: bound the unbacked size
                torch._check(length >= 1)
                torch._check(length <= input_ids.shape[1])
        input_ids, attention_mask = input_ids[:, :length], attention_mask[:, :length]
        x = self.word(input_ids) + self.position(self.position_ids[:, :length]) + self.token_type(
            token_type_ids[:, :length])
        x = self.ln(x)
        ext = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, ext)
        return torch.tanh(self.pooler(x[:, 0]))


def test_bert_like_model_that_reads_an_item(tmp_path):
    """Integer inputs hold real values (ones: every token attended), so ``mask.sum().item()`` answers the full length;
    before, TorchScript failed ('.item() cannot be called on meta tensors') and with a shape the ids were floats."""
    torch.manual_seed(0)
    model = TinyBert().eval()
    inputs = (torch.ones(1, 16, dtype=torch.long), torch.ones(1, 16, dtype=torch.long),
              torch.zeros(1, 16, dtype=torch.long))
    expected = counter_macs(model, inputs)  # the attention is explicit matmuls here: the counter sees it
    for fmt, path in write(model, inputs, tmp_path, "bert", script=True).items():
        for dtypes in (True, False):
            if fmt == "pt2" and not dtypes:
                continue
            a = analyse(path, inputs, dtypes=dtypes)
            assert a.macs == expected and a.macs_complete, (fmt, dtypes, a.macs, expected, a.notes)
            assert a.input_dtypes == ["int64"] * 3, (fmt, dtypes)
            assert not any("taken as 1" in n for n in a.notes), a.notes


class ItemScale(nn.Module):
    """Reads a float scalar from a meta tensor: the run goes on with a representative value, and says so."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return self.fc(x) * float(x.abs().mean().item())


def test_item_of_a_meta_tensor_takes_a_representative_value(tmp_path):
    model = ItemScale().eval()
    x = (torch.randn(2, 8),)
    for fmt, path in write(model, x, tmp_path, "item", script=True, export=False).items():
        a = analyse(path, x)
        assert a.macs == 2 * 8 * 8 and a.macs_complete, fmt
        if fmt == "scripted":  # a trace bakes the value in; a script reads it at run time
            assert any("taken as 1" in n for n in a.notes), a.notes


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, num_channels, height, width)


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int):
        super().__init__()
        self.stride = stride
        bf = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(inp, inp, 3, stride, 1, bias=False, groups=inp), nn.BatchNorm2d(inp),
                nn.Conv2d(inp, bf, 1, 1, 0, bias=False), nn.BatchNorm2d(bf), nn.ReLU(inplace=True))
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else bf, bf, 1, 1, 0, bias=False), nn.BatchNorm2d(bf), nn.ReLU(inplace=True),
            nn.Conv2d(bf, bf, 3, stride, 1, bias=False, groups=bf), nn.BatchNorm2d(bf),
            nn.Conv2d(bf, bf, 1, 1, 0, bias=False), nn.BatchNorm2d(bf), nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """torchvision's shufflenet_v2_x0_5 layout (stages 4, 8, 4; widths 24, 48, 96, 192, 1024)."""

    def __init__(self, repeats=(4, 8, 4), outs=(24, 48, 96, 192, 1024), num_classes=1000):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, outs[0], 3, 2, 1, bias=False), nn.BatchNorm2d(outs[0]),
                                   nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = outs[0]
        for name, r, cout in zip(["stage2", "stage3", "stage4"], repeats, outs[1:]):
            setattr(self, name, nn.Sequential(InvertedResidual(cin, cout, 2),
                                              *[InvertedResidual(cout, cout, 1) for _ in range(r - 1)]))
            cin = cout
        self.conv5 = nn.Sequential(nn.Conv2d(cin, outs[-1], 1, 1, 0, bias=False), nn.BatchNorm2d(outs[-1]),
                                   nn.ReLU(inplace=True))
        self.fc = nn.Linear(outs[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stage4(self.stage3(self.stage2(self.maxpool(self.conv1(x)))))
        return self.fc(self.conv5(x).mean([2, 3]))


def test_shufflenet_v2_traced_channel_shuffle(tmp_path):
    """The trace computes ``channels // CONSTANTS.c0`` from a tensor constant; before, loaded on meta it had no value
    and the count stopped at the first .item()."""
    torch.manual_seed(0)
    model = ShuffleNetV2().eval()
    x = (torch.randn(1, 3, 64, 64),)
    expected = counter_macs(model, x)
    for fmt, path in write(model, x, tmp_path, "shufflenet", script=True).items():
        for shape in (x, None):
            if shape is None and fmt == "pt2":
                continue
            a = analyse(path, shape) if shape is not None else analyze_file(path)
            if shape is None:  # inferred: 224x224 first
                assert a.input_shapes == [[1, 3, 224, 224]] and a.macs_complete, (fmt, a.notes)
                continue
            assert a.macs == expected and a.macs_complete and a.params == unique_params(model), (fmt, a.macs)


# ---- robustness -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("error,needle", [(RecursionError, "nested too deeply"), (MemoryError, "memory ran out"),
                                          (FileNotFoundError(2, "No such file or directory"), "could not be read")])
def test_errors_no_reader_catches_are_one_line(error, needle, cli, monkeypatch, tmp_path):
    from embodied_tui.analysis.torch import analyze as torch_analyze

    path = tmp_path / "mlp.pt"
    torch.jit.script(nn.Linear(4, 4)).save(path)

    def boom(*args, **kwargs):
        raise error

    monkeypatch.setattr(torch_analyze, "_generic", boom)
    result = cli("model", "analyze", path)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    assert len(lines) == 1 and needle in lines[0], result.output


def test_hash_of_a_file_that_vanishes_is_one_line(cli, monkeypatch, tmp_path):
    from embodied_tui.analysis import api

    path = tmp_path / "mlp.pt"
    torch.jit.script(nn.Linear(4, 4)).save(path)

    def vanished(p):
        def result():
            raise FileNotFoundError(2, "No such file or directory")
        return result

    monkeypatch.setattr(api, "_start_hash", vanished)
    result = cli("model", "analyze", path)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "could not be read to the end" in result.output and len(result.output.strip().splitlines()) == 1


def test_background_hash_matches_hashlib(tmp_path):
    from embodied_tui.analysis.api import _start_hash
    from embodied_tui.hashing import sha256_file

    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 5000)
    assert _start_hash(path)() == sha256_file(path)


# ---- shape-only fast paths of the counter --------------------------------------------------------------------------
def _fast_cases():
    aten = torch.ops.aten
    m = dict(device="meta")
    conv_cases = [
        ((1, 3, 17, 23), (8, 3, 3, 3), (8,), [2, 2], [1, 1], [1, 1], False, [0, 0], 1),
        ((2, 8, 9, 9), (8, 1, 5, 5), None, [1], [2], [2], False, [0], 8),  # depthwise, dilated, 1-element lists
        ((1, 4, 16), (6, 2, 3), (6,), [3], [0], [1], False, [0], 2),  # 1-D, grouped
        ((1, 4, 7, 7), (4, 3, 4, 4), (3,), [2, 2], [1, 1], [1, 1], True, [1, 1], 1),  # transposed, output padding
        ((1, 2, 3, 4, 5), (3, 2, 1, 2, 3), None, [1, 1, 1], [0, 1, 1], [1, 1, 1], False, [0, 0, 0], 1),  # 3-D
    ]
    for x, w, b, *rest in conv_cases:
        args = (torch.empty(x, **m), torch.empty(w, **m), None if b is None else torch.empty(b, **m), *rest)
        yield aten.convolution.default, args
        yield aten._convolution.default, (*args, False, False, True, True)
    yield aten.cat.default, ([torch.empty(2, 3, **m), torch.empty(5, 3, **m)], 0)
    yield aten.cat.default, ([torch.empty(1, 2, 4, **m), torch.empty(0, **m), torch.empty(1, 3, 4, **m)], -2)
    yield aten.cat.default, ([torch.empty(2, 3, dtype=torch.float16, **m)] * 3, 1)
    yield aten.upsample_bilinear2d.default, (torch.empty(1, 3, 5, 7, **m), [10, 13], False)
    yield aten.upsample_nearest2d.default, (torch.empty(2, 4, 3, 3, **m), [6, 9])
    yield aten.upsample_nearest2d.vec, (torch.empty(2, 4, 3, 3, **m), [6, 9], None)
    yield aten.upsample_bicubic2d.default, (torch.empty(1, 1, 4, 4, **m), [8, 8], True)


@pytest.mark.parametrize("op,args", list(_fast_cases()), ids=lambda v: str(v)[:40] if not isinstance(v, tuple) else "")
def test_fast_paths_give_what_torch_meta_kernels_give(op, args):
    """Each shape-only fast path (``torch.counting._fast_paths``) returns a tensor of the same shape, dtype and strides
    as torch's own meta kernel; its MACs follow from that shape."""
    from embodied_tui.analysis.torch.counting import _FAST

    fast = _FAST[op](args, {})
    ref = op(*args)
    assert fast is not None
    assert (fast.shape, fast.dtype, fast.stride()) == (ref.shape, ref.dtype, ref.stride())


def test_fast_paths_leave_what_they_do_not_cover_to_torch():
    """Channels-last inputs, channel mismatches and mixed dtypes return None, so torch's kernel runs (and raises)."""
    from embodied_tui.analysis.torch.counting import _FAST

    aten, m = torch.ops.aten, dict(device="meta")
    x = torch.empty(1, 3, 8, 8, **m)
    w = torch.empty(4, 3, 3, 3, **m)
    conv = _FAST[aten.convolution.default]
    assert conv((x.to(memory_format=torch.channels_last), w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1), {}) \
        is None
    assert conv((x, torch.empty(4, 2, 3, 3, **m), None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1), {}) is None
    assert conv((x, w.half(), None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1), {}) is None
    assert _FAST[aten.cat.default](([torch.empty(2, 3, **m), torch.empty(2, 4, **m)], 0), {}) is None
    assert _FAST[aten.cat.default](([torch.empty(2, 3, **m), torch.empty(2, 3, dtype=torch.half, **m)], 0), {}) is None
    assert _FAST[aten.upsample_nearest2d.vec]((x, None, [2.0, 2.0]), {}) is None


# ---- TorchScript values read back after a meta load ------------------------------------------------------------------
@pytest.mark.parametrize("name,note", [
    ("vit", None),  # nn.MultiheadAttention's head count and the patch count: two int64 scalar constants, one per method
    ("swin", None),  # window sizes as scalar constants in several methods
    ("yolov8", "small buffers"),  # the Detect head's stride buffer is the fill value of its anchor strides
])
def test_torchscript_values_come_back_without_a_cpu_reload(tmp_path, name, note):
    """A traced model that reads a tensor constant or a small buffer (``.item()``) is counted on meta: constants are
    matched per method from the archive's code, small buffers read from ``data.pkl`` without running it; the count
    equals the in-memory module's under FlopCounterMode (autograd on, math SDPA: it sees all the work)."""
    from corpus import CORPUS
    from corpus.export import write
    from torch.nn.attention import SDPBackend, sdpa_kernel

    built = CORPUS[name]()
    path = write(built, "torchscript", tmp_path / f"{name}.pt")
    a = analyze_file(path, input_shape=[list(t.shape) for t in built.inputs])
    assert not any("reloaded on CPU" in n for n in a.notes), a.notes
    assert note is None or any(note in n for n in a.notes), a.notes
    mode = FlopCounterMode(display=False)
    with mode, sdpa_kernel(SDPBackend.MATH):
        built.module(*built.inputs)
    assert a.macs == mode.get_total_flops() // 2
