"""MobileNetV2 (Sandler et al. 2018) and MobileNetV3 small/large (Howard et al. 2019), named as torchvision's, and
MobileNetV1 (Howard et al. 2017; torchvision has none: layout as the paper's Table 1 and TF-slim's mobilenet_v1)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .layers import ConvNormAct, SqueezeExcitation, init_conv_norm_linear, make_divisible


def _init_linear(m: nn.Linear) -> None:
    nn.init.normal_(m.weight, 0, 0.01)
    nn.init.zeros_(m.bias)


def init_mobile_weights(model: nn.Module) -> None:
    """torchvision's init for the MobileNets: kaiming fan_out convs, unit norms, N(0, 0.01) linears."""
    init_conv_norm_linear(model, _init_linear)


# ---------------------------------------------------------------------------------------------------------- V2
class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (ReLU6) -> 3x3 depthwise (ReLU6) -> 1x1 linear projection [+ residual]."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        self.stride = stride
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvNormAct(inp, hidden_dim, kernel_size=1, activation_layer=nn.ReLU6))
        layers += [
            ConvNormAct(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim, activation_layer=nn.ReLU6),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup
        self._is_cn = stride > 1

    def forward(self, x: Tensor) -> Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


V2_SETTING = [  # t (expansion), c (channels), n (repeats), s (first stride)
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
]


class MobileNetV2(nn.Module):
    def __init__(
        self,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        inverted_residual_setting: list[list[int]] | None = None,
        round_nearest: int = 8,
        dropout: float = 0.2,
        last_channel: int = 1280,
    ) -> None:
        super().__init__()
        setting = inverted_residual_setting or V2_SETTING
        input_channel = make_divisible(32 * width_mult, round_nearest)
        self.last_channel = make_divisible(last_channel * max(1.0, width_mult), round_nearest)
        features: list[nn.Module] = [ConvNormAct(3, input_channel, stride=2, activation_layer=nn.ReLU6)]
        for t, c, n, s in setting:
            output_channel = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, expand_ratio=t))
                input_channel = output_channel
        features.append(ConvNormAct(input_channel, self.last_channel, kernel_size=1, activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        init_mobile_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        return self.classifier(x)


def mobilenet_v2(num_classes: int = 1000) -> MobileNetV2:
    return MobileNetV2(num_classes)


def mobilenet_tiny(num_classes: int = 10) -> MobileNetV2:
    """A small MobileNetV2-style classifier (half width, four stages, 256-wide last conv) for 96x96 images."""
    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2], [6, 64, 2, 2]]
    return MobileNetV2(num_classes, width_mult=0.5, inverted_residual_setting=setting, last_channel=256)


# ---------------------------------------------------------------------------------------------------------- V3
@dataclass
class V3BlockConfig:
    input_channels: int
    kernel: int
    expanded_channels: int
    out_channels: int
    use_se: bool
    use_hs: bool  # hardswish ("HS") rather than ReLU ("RE")
    stride: int
    dilation: int = 1


class V3InvertedResidual(nn.Module):
    """MobileNetV3 block: [1x1 expand] -> kxk depthwise -> [SE, hardsigmoid] -> 1x1 projection (``block``)."""

    def __init__(self, cnf: V3BlockConfig, norm_layer) -> None:
        super().__init__()
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        act = nn.Hardswish if cnf.use_hs else nn.ReLU
        layers: list[nn.Module] = []
        if cnf.expanded_channels != cnf.input_channels:
            layers.append(ConvNormAct(cnf.input_channels, cnf.expanded_channels, kernel_size=1,
                                      norm_layer=norm_layer, activation_layer=act))
        stride = 1 if cnf.dilation > 1 else cnf.stride
        layers.append(ConvNormAct(cnf.expanded_channels, cnf.expanded_channels, kernel_size=cnf.kernel, stride=stride,
                                  dilation=cnf.dilation, groups=cnf.expanded_channels, norm_layer=norm_layer,
                                  activation_layer=act))
        if cnf.use_se:
            squeeze = make_divisible(cnf.expanded_channels // 4, 8)
            layers.append(SqueezeExcitation(cnf.expanded_channels, squeeze, scale_activation=nn.Hardsigmoid))
        layers.append(ConvNormAct(cnf.expanded_channels, cnf.out_channels, kernel_size=1, norm_layer=norm_layer,
                                  activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.out_channels = cnf.out_channels
        self._is_cn = cnf.stride > 1

    def forward(self, x: Tensor) -> Tensor:
        result = self.block(x)
        if self.use_res_connect:
            result += x
        return result


def _v3_config(arch: str) -> tuple[list[V3BlockConfig], int]:
    c = V3BlockConfig
    re, hs = False, True
    if arch == "large":
        return [
            c(16, 3, 16, 16, False, re, 1), c(16, 3, 64, 24, False, re, 2), c(24, 3, 72, 24, False, re, 1),
            c(24, 5, 72, 40, True, re, 2), c(40, 5, 120, 40, True, re, 1), c(40, 5, 120, 40, True, re, 1),
            c(40, 3, 240, 80, False, hs, 2), c(80, 3, 200, 80, False, hs, 1), c(80, 3, 184, 80, False, hs, 1),
            c(80, 3, 184, 80, False, hs, 1), c(80, 3, 480, 112, True, hs, 1), c(112, 3, 672, 112, True, hs, 1),
            c(112, 5, 672, 160, True, hs, 2), c(160, 5, 960, 160, True, hs, 1), c(160, 5, 960, 160, True, hs, 1),
        ], 1280
    return [
        c(16, 3, 16, 16, True, re, 2), c(16, 3, 72, 24, False, re, 2), c(24, 3, 88, 24, False, re, 1),
        c(24, 5, 96, 40, True, hs, 2), c(40, 5, 240, 40, True, hs, 1), c(40, 5, 240, 40, True, hs, 1),
        c(40, 5, 120, 48, True, hs, 1), c(48, 5, 144, 48, True, hs, 1), c(48, 5, 288, 96, True, hs, 2),
        c(96, 5, 576, 96, True, hs, 1), c(96, 5, 576, 96, True, hs, 1),
    ], 1024


class MobileNetV3(nn.Module):
    def __init__(self, setting: list[V3BlockConfig], last_channel: int, num_classes: int = 1000,
                 dropout: float = 0.2) -> None:
        super().__init__()
        norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        layers: list[nn.Module] = [ConvNormAct(3, setting[0].input_channels, kernel_size=3, stride=2,
                                               norm_layer=norm_layer, activation_layer=nn.Hardswish)]
        layers += [V3InvertedResidual(cnf, norm_layer) for cnf in setting]
        last_in = setting[-1].out_channels
        last_out = 6 * last_in
        layers.append(ConvNormAct(last_in, last_out, kernel_size=1, norm_layer=norm_layer,
                                  activation_layer=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(last_out, last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(last_channel, num_classes),
        )
        init_mobile_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        x = torch.flatten(x, 1)
        return self.classifier(x)


def mobilenet_v3_large(num_classes: int = 1000) -> MobileNetV3:
    return MobileNetV3(*_v3_config("large"), num_classes=num_classes)


def mobilenet_v3_small(num_classes: int = 1000) -> MobileNetV3:
    return MobileNetV3(*_v3_config("small"), num_classes=num_classes)


# ---------------------------------------------------------------------------------------------------------- V1
# (output channels, stride) of the 13 depthwise-separable blocks after the 3x3/2 stem conv (32 channels): Table 1
V1_SETTING = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5, (1024, 2), (1024, 1)]


class MobileNetV1(nn.Module):
    """Stem 3x3/2 conv, then 13 blocks of 3x3 depthwise + 1x1 pointwise conv (each BN + ReLU6), avgpool, classifier.

    1.0 width at 224x224: 4,231,976 parameters with 1000 classes (the paper: 4.2 M) and 568.7 M multiply-adds (569 M)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.001) -> None:
        super().__init__()
        features: list[nn.Module] = [ConvNormAct(3, 32, stride=2, activation_layer=nn.ReLU6)]
        cin = 32
        for cout, stride in V1_SETTING:
            features.append(nn.Sequential(
                ConvNormAct(cin, cin, stride=stride, groups=cin, activation_layer=nn.ReLU6),
                ConvNormAct(cin, cout, kernel_size=1, activation_layer=nn.ReLU6)))
            cin = cout
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(cin, num_classes))  # TF-slim keep 0.999
        init_mobile_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def mobilenet_v1(num_classes: int = 1000) -> MobileNetV1:
    return MobileNetV1(num_classes)
