"""Policies: a Diffusion Policy 1-D conditional U-Net (Chi et al. 2023) and the zoo's recurrent and MLP policies."""
from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn

from embodied_tui.analysis import zoo

from .common import Built, built, seeded


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: Tensor) -> Tensor:
        half = self.dim // 2
        freq = torch.exp(torch.arange(half, device=t.device) * -(math.log(10000) / (half - 1)))
        emb = t[:, None] * freq[None, :]
        return torch.cat((emb.sin(), emb.cos()), dim=-1)


class Conv1dBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int, groups: int = 8) -> None:
        super().__init__(nn.Conv1d(cin, cout, k, padding=k // 2), nn.GroupNorm(groups, cout), nn.Mish())


class ConditionalResidualBlock1D(nn.Module):
    """Two Conv1d blocks with FiLM in between: a linear of the conditioning vector gives a per-channel scale and
    shift; a 1x1 residual conv when the width changes."""

    def __init__(self, cin: int, cout: int, cond_dim: int, k: int = 5) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([Conv1dBlock(cin, cout, k), Conv1dBlock(cout, cout, k)])
        self.out_channels = cout
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * cout), nn.Unflatten(-1, (-1, 1)))
        self.residual_conv = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        out = self.blocks[0](x)
        embed = self.cond_encoder(cond).reshape(cond.shape[0], 2, self.out_channels, 1)
        out = embed[:, 0] * out + embed[:, 1]
        out = self.blocks[1](out)
        return out + self.residual_conv(x)


class ConditionalUnet1D(nn.Module):
    def __init__(self, action_dim: int = 4, cond_dim: int = 20, step_dim: int = 32, dims=(32, 64), k: int = 5):
        super().__init__()
        self.step_encoder = nn.Sequential(SinusoidalPosEmb(step_dim), nn.Linear(step_dim, 4 * step_dim), nn.Mish(),
                                          nn.Linear(4 * step_dim, step_dim))
        c = step_dim + cond_dim
        all_dims = [action_dim, *dims]
        pairs = list(itertools.pairwise(all_dims))
        self.down = nn.ModuleList()
        for i, (cin, cout) in enumerate(pairs):
            last = i == len(pairs) - 1
            self.down.append(nn.ModuleList([ConditionalResidualBlock1D(cin, cout, c, k),
                                            ConditionalResidualBlock1D(cout, cout, c, k),
                                            nn.Conv1d(cout, cout, 3, 2, 1) if not last else nn.Identity()]))
        mid = all_dims[-1]
        self.mid = nn.ModuleList([ConditionalResidualBlock1D(mid, mid, c, k), ConditionalResidualBlock1D(mid, mid, c, k)])
        self.up = nn.ModuleList()
        for i, (cin, cout) in enumerate(reversed(pairs[1:])):
            last = i >= len(pairs) - 1
            self.up.append(nn.ModuleList([ConditionalResidualBlock1D(cout * 2, cin, c, k),
                                          ConditionalResidualBlock1D(cin, cin, c, k),
                                          nn.ConvTranspose1d(cin, cin, 4, 2, 1) if not last else nn.Identity()]))
        self.final = nn.Sequential(Conv1dBlock(dims[0], dims[0], k), nn.Conv1d(dims[0], action_dim, 1))

    def forward(self, sample: Tensor, timestep: Tensor, global_cond: Tensor) -> Tensor:
        x = sample.transpose(1, 2)  # (B, T, A) -> (B, A, T)
        feature = torch.cat([self.step_encoder(timestep), global_cond], dim=-1)
        skips = []
        for res1, res2, down in self.down:
            x = res2(res1(x, feature), feature)
            skips.append(x)
            x = down(x)
        for block in self.mid:
            x = block(x, feature)
        for res1, res2, up in self.up:
            x = torch.cat((x, skips.pop()), dim=1)
            x = up(res2(res1(x, feature), feature))
        return self.final(x).transpose(1, 2)


def diffusion_policy() -> Built:
    seeded()
    g = torch.Generator().manual_seed(1)
    inputs = (torch.randn(1, 16, 4, generator=g), torch.tensor([10.0]), torch.randn(1, 20, generator=g))
    return built(ConditionalUnet1D(), inputs, "diffusion-policy", "cnn", "policy")


def lstm_policy() -> Built:
    seeded()
    return built(zoo.lstm_policy(), (torch.randn(1, 16, 32),), "lstm", "rnn", "policy")


def gru_policy() -> Built:
    seeded()
    return built(zoo.gru_policy(), (torch.randn(1, 16, 32),), "gru", "rnn", "policy")


def mlp_policy() -> Built:
    seeded()
    return built(zoo.mlp_policy(), (torch.randn(1, 32),), "mlp", "mlp", "policy")
