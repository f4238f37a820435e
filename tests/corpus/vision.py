"""Vision transformers and CNN-transformer hybrids: ViT (the zoo's), DeiT, Swin, MaxViT, MobileViT, EfficientFormer,
LeViT and SegFormer, after their papers and reference code layouts."""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from embodied_tui.analysis import zoo

from .common import Built, ConvBNAct, Mlp, PreNormBlock, built, image, seeded


# ------------------------------------------------------------------------------------------------------ ViT, DeiT
def vit() -> Built:
    seeded()
    return built(zoo.small_vit(), image(32), "vit", "transformer", "classification")


class DeiT(nn.Module):
    """Touvron et al. 2021: ViT with class and distillation tokens, two heads averaged at inference."""

    def __init__(self, image_size: int = 32, patch: int = 4, dim: int = 64, depth: int = 2, heads: int = 4,
                 num_classes: int = 10) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        n = (image_size // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, n + 2, dim) * 0.02)
        self.blocks = nn.Sequential(*(PreNormBlock(dim, heads, 4.0) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head, self.head_dist = nn.Linear(dim, num_classes), nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        b = x.shape[0]
        x = torch.cat((self.cls_token.expand(b, -1, -1), self.dist_token.expand(b, -1, -1), x), dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return (self.head(x[:, 0]) + self.head_dist(x[:, 1])) / 2


def deit() -> Built:
    seeded()
    return built(DeiT(), image(32), "vit", "transformer", "classification")


# ----------------------------------------------------------------------------------------------------------- Swin
def window_partition(x: Tensor, ws: int) -> Tensor:
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws * ws, c)


def window_reverse(windows: Tensor, ws: int, h: int, w: int) -> Tensor:
    c = windows.shape[-1]
    x = windows.view(-1, h // ws, w // ws, ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, h, w, c)


def relative_position_index(ws: int) -> Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)
    return rel[:, :, 0] * (2 * ws - 1) + rel[:, :, 1]


class WindowAttention(nn.Module):
    """Attention inside each window with a learned relative position bias (a table indexed by offsets)."""

    def __init__(self, dim: int, ws: int, heads: int) -> None:
        super().__init__()
        self.ws, self.heads, self.scale = ws, heads, (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.randn((2 * ws - 1) ** 2, heads) * 0.02)
        self.register_buffer("relative_position_index", relative_position_index(ws))
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        b_, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b_, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(b_ // nw, nw, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.heads, n, n)
        attn = attn.softmax(-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b_, n, c))


class SwinBlock(nn.Module):
    def __init__(self, dim: int, res: int, heads: int, ws: int, shift: int) -> None:
        super().__init__()
        self.res, self.ws, self.shift = res, ws, shift
        self.norm1, self.attn = nn.LayerNorm(dim), WindowAttention(dim, ws, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, 4 * dim)
        if shift:
            img = torch.zeros(1, res, res, 1)
            cnt = 0
            for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
                for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
                    img[:, hs, wsl, :] = cnt
                    cnt += 1
            win = window_partition(img, ws).squeeze(-1)
            mask = win.unsqueeze(1) - win.unsqueeze(2)
            self.register_buffer("attn_mask", mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0))
        else:
            self.attn_mask = None

    def forward(self, x: Tensor) -> Tensor:
        b, _, c = x.shape
        h = w = self.res
        shortcut = x
        x = self.norm1(x).view(b, h, w, c)
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        x = window_reverse(self.attn(window_partition(x, self.ws), self.attn_mask), self.ws, h, w)
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        x = shortcut + x.reshape(b, h * w, c)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """Concatenate each 2x2 neighbourhood (4C), normalise, project to 2C."""

    def __init__(self, dim: int, res: int) -> None:
        super().__init__()
        self.res = res
        self.norm, self.reduction = nn.LayerNorm(4 * dim), nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        b, _, c = x.shape
        x = x.view(b, self.res, self.res, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class Swin(nn.Module):
    """Liu et al. 2021: 4x4 patch embedding, stages of (window, shifted-window) blocks, patch merging between."""

    def __init__(self, image_size: int = 64, dim: int = 32, heads=(2, 4), ws: int = 4, num_classes: int = 10):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, 4, 4)
        self.embed_norm = nn.LayerNorm(dim)
        res = image_size // 4
        self.stage1 = nn.Sequential(SwinBlock(dim, res, heads[0], ws, 0), SwinBlock(dim, res, heads[0], ws, ws // 2))
        self.merge = PatchMerging(dim, res)
        self.stage2 = nn.Sequential(SwinBlock(2 * dim, res // 2, heads[1], ws, 0),
                                    SwinBlock(2 * dim, res // 2, heads[1], ws, ws // 2))
        self.norm, self.head = nn.LayerNorm(2 * dim), nn.Linear(2 * dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.embed_norm(self.patch_embed(x).flatten(2).transpose(1, 2))
        x = self.norm(self.stage2(self.merge(self.stage1(x))))
        return self.head(x.mean(1))


def swin() -> Built:
    seeded()
    return built(Swin(), image(64), "swin", "transformer", "classification")


# --------------------------------------------------------------------------------------------------------- MaxViT
class SqueezeExcite(nn.Module):
    def __init__(self, c: int, r: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, r, 1), nn.Conv2d(r, c, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(self.fc2(F.silu(self.fc1(x.mean((2, 3), keepdim=True)))))


class MBConv(nn.Module):
    """Pre-norm MBConv of MaxViT: BN -> 1x1 expand -> 3x3 depthwise -> SE -> 1x1 project; strided shortcut pools."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int = 4) -> None:
        super().__init__()
        mid = cout * expand
        self.pre_norm = nn.BatchNorm2d(cin)
        self.expand = ConvBNAct(cin, mid, 1, act=nn.GELU)
        self.dw = ConvBNAct(mid, mid, 3, stride, groups=mid, act=nn.GELU)
        self.se = SqueezeExcite(mid, max(1, cin // 4))
        self.project = nn.Conv2d(mid, cout, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(stride, stride), nn.Conv2d(cin, cout, 1)) if stride > 1 or \
            cin != cout else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + self.project(self.se(self.dw(self.expand(self.pre_norm(x)))))


class PartitionAttention(nn.Module):
    """Block (local window) or grid (dilated, global) attention with relative position bias, pre-LN + MLP."""

    def __init__(self, dim: int, heads: int, p: int, grid: bool) -> None:
        super().__init__()
        self.p, self.grid = p, grid
        self.norm1, self.attn = nn.LayerNorm(dim), WindowAttention(dim, p, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, 4 * dim)

    def partition(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        p = self.p
        if self.grid:
            x = x.view(b, c, p, h // p, p, w // p).permute(0, 3, 5, 2, 4, 1)
        else:
            x = x.view(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(-1, p * p, c)

    def unpartition(self, x: Tensor, b: int, c: int, h: int, w: int) -> Tensor:
        p = self.p
        if self.grid:
            x = x.view(b, h // p, w // p, p, p, c).permute(0, 5, 3, 1, 4, 2)
        else:
            x = x.view(b, h // p, w // p, p, p, c).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(b, c, h, w)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        t = self.partition(x)
        t = t + self.attn(self.norm1(t))
        t = t + self.mlp(self.norm2(t))
        return self.unpartition(t, b, c, h, w)


class MaxViT(nn.Module):
    """Tu et al. 2022: conv stem, stages of MBConv -> block attention -> grid attention, pooled head with tanh."""

    def __init__(self, dims=(32, 64), heads=(2, 4), p: int = 4, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(ConvBNAct(3, dims[0], 3, 2, act=nn.GELU), nn.Conv2d(dims[0], dims[0], 3, 1, 1))
        stages, cin = [], dims[0]
        for dim, h in zip(dims, heads):
            stages.append(nn.Sequential(MBConv(cin, dim, 2), PartitionAttention(dim, h, p, False),
                                        PartitionAttention(dim, h, p, True)))
            cin = dim
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(cin)
        self.pre_logits = nn.Sequential(nn.Linear(cin, cin), nn.Tanh())
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stages(self.stem(x)).mean((2, 3))
        return self.head(self.pre_logits(self.norm(x)))


def maxvit() -> Built:
    seeded()
    return built(MaxViT(), image(64), "maxvit", "hybrid", "classification")


# ------------------------------------------------------------------------------------------------------ MobileViT
class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int = 2) -> None:
        super().__init__()
        mid = cin * expand
        self.block = nn.Sequential(ConvBNAct(cin, mid, 1, act=nn.SiLU), ConvBNAct(mid, mid, 3, stride, mid, nn.SiLU),
                                   ConvBNAct(mid, cout, 1, act=None))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class MobileViTBlock(nn.Module):
    """Mehta & Rastegari 2022: local 3x3 conv, 1x1 to d, unfold into 2x2 patches (pixels at one patch position form
    a sequence), transformer, fold back, 1x1 back to C, concat with the input, 3x3 fusion conv."""

    def __init__(self, c: int, d: int, depth: int = 1, heads: int = 2, patch: int = 2) -> None:
        super().__init__()
        self.patch = patch
        self.local = nn.Sequential(ConvBNAct(c, c, 3, act=nn.SiLU), nn.Conv2d(c, d, 1, bias=False))
        self.transformer = nn.Sequential(*(PreNormBlock(d, heads, 2.0, nn.SiLU) for _ in range(depth)),
                                         nn.LayerNorm(d))
        self.proj = ConvBNAct(d, c, 1, act=nn.SiLU)
        self.fusion = ConvBNAct(2 * c, c, 3, act=nn.SiLU)

    def forward(self, x: Tensor) -> Tensor:
        res = x
        fm = self.local(x)
        b, d, h, w = fm.shape
        p = self.patch
        nh, nw = h // p, w // p
        t = fm.reshape(b * d * nh, p, nw, p).transpose(1, 2).reshape(b, d, nh * nw, p * p)
        t = t.transpose(1, 3).reshape(b * p * p, nh * nw, d)
        t = self.transformer(t)
        t = t.contiguous().view(b, p * p, nh * nw, d).transpose(1, 3).reshape(b * d * nh, nw, p, p)
        fm = t.transpose(1, 2).reshape(b, d, h, w)
        return self.fusion(torch.cat((res, self.proj(fm)), 1))


class MobileViT(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = ConvBNAct(3, 16, 3, 2, act=nn.SiLU)
        self.layer1 = InvertedResidual(16, 16, 1)
        self.layer2 = nn.Sequential(InvertedResidual(16, 24, 2), InvertedResidual(24, 24, 1))
        self.layer3 = nn.Sequential(InvertedResidual(24, 32, 2), MobileViTBlock(32, 48, 1))
        self.layer4 = nn.Sequential(InvertedResidual(32, 48, 2), MobileViTBlock(48, 64, 2))
        self.conv_1x1_exp = ConvBNAct(48, 192, 1, act=nn.SiLU)
        self.fc = nn.Linear(192, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(self.conv_1x1_exp(x).mean((2, 3)))


def mobilevit() -> Built:
    seeded()
    return built(MobileViT(), image(64), "mobilevit", "hybrid", "classification")


# ---------------------------------------------------------------------------------------------------- EfficientFormer
class Meta4D(nn.Module):
    """Pooling token mixer (avgpool(x) - x) and a conv MLP with batch norm, each residual with layer scale."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.mlp = nn.Sequential(nn.Conv2d(dim, 4 * dim, 1), nn.BatchNorm2d(4 * dim), nn.GELU(),
                                 nn.Conv2d(4 * dim, dim, 1), nn.BatchNorm2d(dim))
        self.ls1, self.ls2 = nn.Parameter(1e-5 * torch.ones(dim, 1, 1)), nn.Parameter(1e-5 * torch.ones(dim, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1 * (self.pool(x) - x)
        return x + self.ls2 * self.mlp(x)


class BiasedAttention(nn.Module):
    """LeViT / EfficientFormer attention: per-head learned biases indexed by the (|dy|, |dx|) offset of each pair."""

    def __init__(self, dim: int, key_dim: int, heads: int, res: int, attn_ratio: int = 2, stride: int = 1,
                 out_dim: int | None = None, linear_bn: bool = False) -> None:
        super().__init__()
        self.heads, self.key_dim, self.d, self.stride, self.res = heads, key_dim, attn_ratio * key_dim, stride, res
        self.scale = key_dim ** -0.5
        lin = (lambda i, o: LinearBN(i, o)) if linear_bn else (lambda i, o: nn.Linear(i, o))
        if stride == 1:
            self.qkv = lin(dim, heads * (2 * key_dim + self.d))
        else:
            self.kv, self.q = lin(dim, heads * (key_dim + self.d)), lin(dim, heads * key_dim)
        self.proj = nn.Sequential(nn.Hardswish(), lin(heads * self.d, out_dim or dim))
        res_q = (res - 1) // stride + 1
        kp = list(itertools.product(range(res), range(res)))
        qp = list(itertools.product(range(0, res, stride), range(0, res, stride)))
        offsets, idxs = {}, []
        for p1 in qp:
            for p2 in kp:
                off = (abs(p1[0] - p2[0]), abs(p1[1] - p2[1]))
                idxs.append(offsets.setdefault(off, len(offsets)))
        self.attention_biases = nn.Parameter(torch.zeros(heads, len(offsets)))
        self.register_buffer("attention_bias_idxs", torch.LongTensor(idxs).view(res_q * res_q, res * res),
                             persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        if self.stride == 1:
            q, k, v = self.qkv(x).view(b, n, self.heads, -1).split([self.key_dim, self.key_dim, self.d], dim=3)
        else:
            k, v = self.kv(x).view(b, n, self.heads, -1).split([self.key_dim, self.d], dim=3)
            sub = x.view(b, self.res, self.res, -1)[:, ::self.stride, ::self.stride].reshape(b, -1, x.shape[-1])
            q = self.q(sub).view(b, -1, self.heads, self.key_dim)
        q, k, v = q.permute(0, 2, 1, 3), k.permute(0, 2, 1, 3), v.permute(0, 2, 1, 3)
        attn = q @ k.transpose(-2, -1) * self.scale + self.attention_biases[:, self.attention_bias_idxs]
        x = (attn.softmax(-1) @ v).transpose(1, 2).reshape(b, -1, self.heads * self.d)
        return self.proj(x)


class Meta3D(nn.Module):
    def __init__(self, dim: int, res: int) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), BiasedAttention(dim, 16, 2, res)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, 4 * dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class EfficientFormer(nn.Module):
    """Li et al. 2022 (L1 layout, small): conv stem to 1/4, Meta4D (pool mixer) stages with strided conv embeddings,
    the last stage flattened into Meta3D (attention) blocks."""

    def __init__(self, dims=(16, 32, 64), num_classes: int = 10, image_size: int = 64) -> None:
        super().__init__()
        self.stem = nn.Sequential(ConvBNAct(3, dims[0] // 2, 3, 2), ConvBNAct(dims[0] // 2, dims[0], 3, 2))
        self.stage1 = nn.Sequential(Meta4D(dims[0]), Meta4D(dims[0]))
        self.embed2 = ConvBNAct(dims[0], dims[1], 3, 2, act=None)
        self.stage2 = nn.Sequential(Meta4D(dims[1]), Meta4D(dims[1]))
        self.embed3 = ConvBNAct(dims[1], dims[2], 3, 2, act=None)
        self.stage3 = Meta4D(dims[2])
        self.last = nn.Sequential(Meta3D(dims[2], image_size // 16))
        self.norm = nn.LayerNorm(dims[2])
        self.head, self.dist_head = nn.Linear(dims[2], num_classes), nn.Linear(dims[2], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stage3(self.embed3(self.stage2(self.embed2(self.stage1(self.stem(x))))))
        x = self.norm(self.last(x.flatten(2).transpose(1, 2))).mean(1)
        return (self.head(x) + self.dist_head(x)) / 2


def efficientformer() -> Built:
    seeded()
    return built(EfficientFormer(), image(64), "efficientformer", "hybrid", "classification")


# ---------------------------------------------------------------------------------------------------------- LeViT
class LinearBN(nn.Sequential):
    """LeViT's Linear (no bias) + BatchNorm1d over the flattened tokens."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Linear(cin, cout, bias=False), nn.BatchNorm1d(cout))

    def forward(self, x: Tensor) -> Tensor:
        lin, bn = self[0], self[1]
        x = lin(x)
        return bn(x.flatten(0, 1)).reshape_as(x)


class Residual(nn.Module):
    def __init__(self, m: nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, x: Tensor) -> Tensor:
        return x + self.m(x)


class LeViT(nn.Module):
    """Graham et al. 2021: four stride-2 3x3 convs (hardswish) as the stem, attention with learned biases, a
    shrinking attention (queries subsampled 2x) between stages, MLPs of Linear+BN, distilled heads."""

    def __init__(self, image_size: int = 128, dims=(64, 96), num_classes: int = 10) -> None:
        super().__init__()
        d = dims[0]
        self.stem = nn.Sequential(ConvBNAct(3, d // 8, 3, 2, act=nn.Hardswish), ConvBNAct(d // 8, d // 4, 3, 2,
                                  act=nn.Hardswish), ConvBNAct(d // 4, d // 2, 3, 2, act=nn.Hardswish),
                                  ConvBNAct(d // 2, d, 3, 2, act=None))
        res = image_size // 16
        mlp = lambda c: Residual(nn.Sequential(LinearBN(c, 2 * c), nn.Hardswish(), LinearBN(2 * c, c)))
        self.stage1 = nn.Sequential(Residual(BiasedAttention(d, 16, 2, res, linear_bn=True)), mlp(d))
        self.shrink = BiasedAttention(d, 16, 4, res, attn_ratio=4, stride=2, out_dim=dims[1], linear_bn=True)
        self.stage2 = nn.Sequential(mlp(dims[1]), Residual(BiasedAttention(dims[1], 16, 3, res // 2, linear_bn=True)),
                                    mlp(dims[1]))
        self.head_bn, self.head = nn.BatchNorm1d(dims[1]), nn.Linear(dims[1], num_classes)
        self.dist_bn, self.head_dist = nn.BatchNorm1d(dims[1]), nn.Linear(dims[1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x).flatten(2).transpose(1, 2)
        x = self.stage2(self.shrink(self.stage1(x))).mean(1)
        return (self.head(self.head_bn(x)) + self.head_dist(self.dist_bn(x))) / 2


def levit() -> Built:
    seeded()
    return built(LeViT(), image(128), "levit", "hybrid", "classification")


# ------------------------------------------------------------------------------------------------------ SegFormer
class EfficientSelfAttention(nn.Module):
    """Attention whose keys and values come from the tokens reduced by a strided conv (ratio R)."""

    def __init__(self, dim: int, heads: int, sr: int) -> None:
        super().__init__()
        self.heads, self.scale, self.sr_ratio = heads, (dim // heads) ** -0.5, sr
        self.q, self.kv, self.proj = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)
        if sr > 1:
            self.sr, self.norm = nn.Conv2d(dim, dim, sr, sr), nn.LayerNorm(dim)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        b, n, c = x.shape
        q = self.q(x).reshape(b, n, self.heads, c // self.heads).permute(0, 2, 1, 3)
        if self.sr_ratio > 1:
            x_ = self.sr(x.permute(0, 2, 1).reshape(b, c, h, w)).reshape(b, c, -1).permute(0, 2, 1)
            x_ = self.norm(x_)
        else:
            x_ = x
        k, v = self.kv(x_).reshape(b, -1, 2, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class MixFFN(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.dwconv, self.fc2 = nn.Linear(dim, hidden), nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden), \
            nn.Linear(hidden, dim)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        b = x.shape[0]
        x = self.fc1(x)
        x = self.dwconv(x.transpose(1, 2).reshape(b, -1, h, w)).flatten(2).transpose(1, 2)
        return self.fc2(F.gelu(x))


class SegFormerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, sr: int) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), EfficientSelfAttention(dim, heads, sr)
        self.norm2, self.mlp = nn.LayerNorm(dim), MixFFN(dim, 4 * dim)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        x = x + self.attn(self.norm1(x), h, w)
        return x + self.mlp(self.norm2(x), h, w)


class SegFormer(nn.Module):
    """Xie et al. 2021 (MiT-B0 layout, small): overlapping patch embeddings (7x7/4, then 3x3/2), efficient
    self-attention with spatial reduction, Mix-FFN, and the all-MLP decoder (per-scale linear, upsample to 1/4,
    concat, 1x1 fuse, 1x1 classifier)."""

    def __init__(self, dims=(16, 32, 48, 64), heads=(1, 1, 2, 2), srs=(8, 4, 2, 1), embed: int = 64,
                 num_classes: int = 5) -> None:
        super().__init__()
        cin = 3
        self.patch_embeds, self.blocks, self.norms = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for i, (dim, h, sr) in enumerate(zip(dims, heads, srs)):
            k, s = (7, 4) if i == 0 else (3, 2)
            self.patch_embeds.append(nn.ModuleList([nn.Conv2d(cin, dim, k, s, k // 2), nn.LayerNorm(dim)]))
            self.blocks.append(SegFormerBlock(dim, h, sr))
            self.norms.append(nn.LayerNorm(dim))
            cin = dim
        self.linear_c = nn.ModuleList(nn.Linear(d, embed) for d in dims)
        self.linear_fuse = ConvBNAct(4 * embed, embed, 1)
        self.linear_pred = nn.Conv2d(embed, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        feats = []
        for (proj, pnorm), block, norm in zip(self.patch_embeds, self.blocks, self.norms):
            x = proj(x)
            b, c, h, w = x.shape
            t = norm(block(pnorm(x.flatten(2).transpose(1, 2)), h, w))
            x = t.reshape(b, h, w, c).permute(0, 3, 1, 2).contiguous()
            feats.append(x)
        size = feats[0].shape[2:]
        outs = []
        for f, lin in zip(feats, self.linear_c):
            b, c, h, w = f.shape
            m = lin(f.flatten(2).transpose(1, 2)).permute(0, 2, 1).reshape(b, -1, h, w)
            outs.append(F.interpolate(m, size=size, mode="bilinear", align_corners=False))
        return self.linear_pred(self.linear_fuse(torch.cat(outs[::-1], 1)))


def segformer() -> Built:
    seeded()
    return built(SegFormer(), image(64), "segformer", "hybrid", "segmentation")
