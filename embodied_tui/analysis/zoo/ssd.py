"""SSD-MobileNet-V1 at 300x300 as in the TensorFlow Object Detection API (``ssd_mobilenet_v1_coco``), architecture only.

Backbone: MobileNetV1 (``mobilenet.py``) up to conv13; heads on conv11 (512 channels, 19x19) and conv13 (1024, 10x10)
and on four extra layers (1x1 conv to half depth, then 3x3 stride-2 conv to 512, 256, 256, 128 channels; BN + ReLU6),
giving 19, 10, 5, 3, 2 and 1 cells a side. Each map has a 1x1 box conv (4 per anchor) and a 1x1 class conv
(91 classes per anchor: 90 COCO classes + background), 3 anchors on the first map and 6 on the others: 1917 anchors.

The output is the raw head: box encodings ``(batch, 1917, 4)`` and class logits ``(batch, 1917, 91)``; anchor
decoding and NMS are post-processing and not built. Counts at 300x300: 6,819,839 parameters (BN scale and shift
included) and 1.237 GMACs (convolutions); Hailo's model zoo lists this network as 6.79 M parameters, 2.5 GOPs.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import ConvNormAct
from .mobilenet import MobileNetV1

EXTRA_DEPTHS = (512, 256, 256, 128)
HEAD_CHANNELS = (512, 1024, *EXTRA_DEPTHS)
ANCHORS = (3, 6, 6, 6, 6, 6)
CONV11 = 11  # index in MobileNetV1.features of the 11th depthwise-separable block (TF's Conv2d_11_pointwise)


class SSDMobileNetV1(nn.Module):
    def __init__(self, num_classes: int = 91) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone = MobileNetV1().features
        extras, cin = [], 1024
        for depth in EXTRA_DEPTHS:
            extras.append(nn.Sequential(ConvNormAct(cin, depth // 2, kernel_size=1, activation_layer=nn.ReLU6),
                                        ConvNormAct(depth // 2, depth, stride=2, activation_layer=nn.ReLU6)))
            cin = depth
        self.extras = nn.ModuleList(extras)
        self.box = nn.ModuleList(nn.Conv2d(c, a * 4, 1) for c, a in zip(HEAD_CHANNELS, ANCHORS))
        self.cls = nn.ModuleList(nn.Conv2d(c, a * num_classes, 1) for c, a in zip(HEAD_CHANNELS, ANCHORS))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feats = []
        for i, layer in enumerate(self.backbone):
            x = layer(x)
            if i == CONV11:
                feats.append(x)
        feats.append(x)
        for extra in self.extras:
            x = extra(x)
            feats.append(x)
        b = x.shape[0]
        boxes = [head(f).permute(0, 2, 3, 1).reshape(b, -1, 4) for head, f in zip(self.box, feats)]
        scores = [head(f).permute(0, 2, 3, 1).reshape(b, -1, self.num_classes) for head, f in zip(self.cls, feats)]
        return torch.cat(boxes, 1), torch.cat(scores, 1)


def ssd_mobilenet_v1(num_classes: int = 91) -> SSDMobileNetV1:
    """Input (1, 3, 300, 300)."""
    return SSDMobileNetV1(num_classes)
