"""What a corpus builder returns, and the few layers several families share."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn


class Built(NamedTuple):
    module: nn.Module  # in eval mode, seeded weights
    inputs: tuple[Tensor, ...]  # example inputs (float images, token ids ...)
    family: str  # what patterns.classify should name
    type: str  # cnn | transformer | hybrid | rnn | mlp
    task: str | None  # classification | detection | segmentation | language | speech | policy | None


def built(module: nn.Module, inputs: tuple[Tensor, ...], family: str, arch_type: str, task: str | None) -> Built:
    return Built(module.eval(), inputs, family, arch_type, task)


def seeded(seed: int = 0) -> torch.Generator:
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def image(size: int, channels: int = 3) -> tuple[Tensor]:
    return (torch.randn(1, channels, size, size, generator=torch.Generator().manual_seed(1)),)


def tokens(length: int, vocab: int, seed: int = 2) -> Tensor:
    return torch.randint(0, vocab, (1, length), generator=torch.Generator().manual_seed(seed))


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> activation (None: no activation)."""

    def __init__(self, cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: type | None = nn.ReLU,
                 padding: int | None = None) -> None:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, k // 2 if padding is None else padding, groups=groups,
                                             bias=False), nn.BatchNorm2d(cout)]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class MultiHeadSelfAttention(nn.Module):
    """Fused qkv projection, explicit Q K^T -> softmax -> x V (the form timm and HF eager code write)."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        if bias is not None:
            attn = attn + bias
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Sequential):
    def __init__(self, dim: int, hidden: int, act: type = nn.GELU) -> None:
        super().__init__(nn.Linear(dim, hidden), act(), nn.Linear(hidden, dim))


class PreNormBlock(nn.Module):
    """x + attn(LN(x)); x + mlp(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0, act: type = nn.GELU) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), MultiHeadSelfAttention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, int(dim * mlp_ratio), act)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))
