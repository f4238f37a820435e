"""RegNetY-400MF (Radosavovic et al. 2020), named exactly as torchvision's: stem / trunk_output / avgpool / fc."""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .layers import ConvNormAct, SqueezeExcitation, make_divisible


class BottleneckTransform(nn.Sequential):
    """a: 1x1 -> b: 3x3 grouped (stride) -> se -> c: 1x1 linear (torchvision's children names a/b/se/c)."""

    def __init__(self, width_in: int, width_out: int, stride: int, group_width: int, bottleneck_multiplier: float,
                 se_ratio: float | None) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        w_b = int(round(width_out * bottleneck_multiplier))
        g = w_b // group_width
        layers["a"] = ConvNormAct(width_in, w_b, kernel_size=1, stride=1)
        layers["b"] = ConvNormAct(w_b, w_b, kernel_size=3, stride=stride, groups=g)
        if se_ratio:
            layers["se"] = SqueezeExcitation(w_b, int(round(se_ratio * width_in)), activation=nn.ReLU)
        layers["c"] = ConvNormAct(w_b, width_out, kernel_size=1, stride=1, activation_layer=None)
        super().__init__(layers)


class ResBottleneckBlock(nn.Module):
    def __init__(self, width_in: int, width_out: int, stride: int, group_width: int = 1,
                 bottleneck_multiplier: float = 1.0, se_ratio: float | None = None) -> None:
        super().__init__()
        self.proj = None
        if width_in != width_out or stride != 1:
            self.proj = ConvNormAct(width_in, width_out, kernel_size=1, stride=stride, activation_layer=None)
        self.f = BottleneckTransform(width_in, width_out, stride, group_width, bottleneck_multiplier, se_ratio)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        if self.proj is not None:
            x = self.proj(x) + self.f(x)
        else:
            x = x + self.f(x)
        return self.activation(x)


class AnyStage(nn.Sequential):
    def __init__(self, width_in: int, width_out: int, stride: int, depth: int, group_width: int,
                 bottleneck_multiplier: float, se_ratio: float | None, stage_index: int) -> None:
        super().__init__()
        for i in range(depth):
            block = ResBottleneckBlock(width_in if i == 0 else width_out, width_out, stride if i == 0 else 1,
                                       group_width, bottleneck_multiplier, se_ratio)
            self.add_module(f"block{stage_index}-{i}", block)


@dataclass
class BlockParams:
    depths: list[int]
    widths: list[int]
    group_widths: list[int]
    bottleneck_multipliers: list[float]
    strides: list[int]
    se_ratio: float | None = None

    @classmethod
    def from_init_params(cls, depth: int, w_0: int, w_a: float, w_m: float, group_width: int,
                         bottleneck_multiplier: float = 1.0, se_ratio: float | None = None) -> BlockParams:
        """torchvision's quantised linear width rule, in float32 torch arithmetic exactly as torchvision does it.

        The tensors are pinned to the CPU so that building under ``with torch.device("meta")`` still gets numbers.
        """
        quant, stride = 8, 2
        cpu = torch.device("cpu")
        widths_cont = torch.arange(depth, device=cpu) * w_a + w_0
        block_capacity = torch.round(torch.log(widths_cont / w_0) / math.log(w_m))
        block_widths = (torch.round(torch.divide(w_0 * torch.pow(w_m, block_capacity), quant)) * quant).int().tolist()
        num_stages = len(set(block_widths))
        split_helper = zip(block_widths + [0], [0] + block_widths, block_widths + [0], [0] + block_widths)
        splits = [w != wp or r != rp for w, wp, r, rp in split_helper]
        stage_widths = [w for w, t in zip(block_widths, splits[:-1]) if t]
        stage_depths = torch.diff(torch.tensor([d for d, t in enumerate(splits) if t], device=cpu)).int().tolist()
        multipliers = [bottleneck_multiplier] * num_stages
        # make stage widths and group widths compatible
        bottleneck_widths = [int(w * b) for w, b in zip(stage_widths, multipliers)]
        group_widths = [min(group_width, w_bot) for w_bot in bottleneck_widths]
        ws_bot = [make_divisible(w_bot, g) for w_bot, g in zip(bottleneck_widths, group_widths)]
        stage_widths = [int(w_bot / b) for w_bot, b in zip(ws_bot, multipliers)]
        return cls(stage_depths, stage_widths, group_widths, multipliers, [stride] * num_stages, se_ratio)


class RegNet(nn.Module):
    def __init__(self, block_params: BlockParams, num_classes: int = 1000, stem_width: int = 32) -> None:
        super().__init__()
        self.stem = ConvNormAct(3, stem_width, kernel_size=3, stride=2)
        current = stem_width
        blocks = []
        params = zip(block_params.widths, block_params.strides, block_params.depths, block_params.group_widths,
                     block_params.bottleneck_multipliers)
        for i, (width_out, stride, depth, group_width, multiplier) in enumerate(params):
            blocks.append((f"block{i + 1}", AnyStage(current, width_out, stride, depth, group_width, multiplier,
                                                     block_params.se_ratio, stage_index=i + 1)))
            current = width_out
        self.trunk_output = nn.Sequential(OrderedDict(blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(current, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, mean=0.0, std=math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0.0, std=0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.trunk_output(self.stem(x))
        x = self.avgpool(x).flatten(start_dim=1)
        return self.fc(x)


def regnet_y_400mf(num_classes: int = 1000) -> RegNet:
    params = BlockParams.from_init_params(depth=16, w_0=48, w_a=27.89, w_m=2.09, group_width=8, se_ratio=0.25)
    return RegNet(params, num_classes)
