"""A small U-Net (Ronneberger et al. 2015) for segmentation or depth: three downsamplings, skip concatenations."""
from __future__ import annotations

import torch
from torch import Tensor, nn


class DoubleConv(nn.Sequential):
    """(3x3 conv -> BN -> ReLU) twice."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )


def _up(cin: int, cout: int, mode: str) -> nn.Module:
    if mode == "transpose":
        return nn.ConvTranspose2d(cin, cout, kernel_size=2, stride=2)
    if mode == "bilinear":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                             nn.Conv2d(cin, cout, kernel_size=1))
    raise ValueError(f"unknown upsampling {mode!r}: use 'transpose' or 'bilinear'")


class UNetSmall(nn.Module):
    """Encoder widths 16-32-64, bottleneck 128, decoder with skip concatenations, 1x1 ``head`` to ``num_classes``.

    The input's height and width must be multiples of 8.
    """

    def __init__(self, num_classes: int = 21, in_channels: int = 3, upsample: str = "transpose") -> None:
        super().__init__()
        self.enc1 = DoubleConv(in_channels, 16)
        self.enc2 = DoubleConv(16, 32)
        self.enc3 = DoubleConv(32, 64)
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = DoubleConv(64, 128)
        self.up3 = _up(128, 64, upsample)
        self.dec3 = DoubleConv(128, 64)
        self.up2 = _up(64, 32, upsample)
        self.dec2 = DoubleConv(64, 32)
        self.up1 = _up(32, 16, upsample)
        self.dec1 = DoubleConv(32, 16)
        self.head = nn.Conv2d(16, num_classes, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        b = self.bottleneck(self.pool(e3))
        d3 = self.dec3(torch.cat([self.up3(b), e3], dim=1))
        d2 = self.dec2(torch.cat([self.up2(d3), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.head(d1)


def unet_small(num_classes: int = 21, upsample: str = "transpose") -> UNetSmall:
    return UNetSmall(num_classes, upsample=upsample)
