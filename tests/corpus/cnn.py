"""Convolutional families: the torchvision-style ones (from the zoo's classes at small sizes) and SqueezeNet,
ShuffleNetV2, GoogLeNet, AlexNet, DenseNet, U-Net and PointNet written from their papers."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from embodied_tui.analysis import zoo

from .common import Built, ConvBNAct, built, image, seeded


# ---------------------------------------------------------------------------------------------------- SqueezeNet
class Fire(nn.Module):
    """squeeze 1x1 -> (expand 1x1 | expand 3x3) concatenated (Iandola et al. 2016)."""

    def __init__(self, cin: int, squeeze: int, e1: int, e3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, e1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, e3, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


class SqueezeNet(nn.Module):
    """SqueezeNet 1.1 layout at quarter width."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2), nn.ReLU(inplace=True), pool(),
            Fire(16, 4, 16, 16), Fire(32, 4, 16, 16), pool(),
            Fire(32, 8, 32, 32), Fire(64, 8, 32, 32), pool(),
            Fire(64, 12, 48, 48), Fire(96, 12, 48, 48), Fire(96, 16, 64, 64), Fire(128, 16, 64, 64))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(128, num_classes, 1), nn.ReLU(inplace=True),
                                        nn.AdaptiveAvgPool2d(1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.flatten(self.classifier(self.features(x)), 1)


def squeezenet() -> Built:
    seeded()
    return built(SqueezeNet(), image(64), "squeezenet", "cnn", "classification")


# --------------------------------------------------------------------------------------------------- ShuffleNetV2
def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    b, c, h, w = x.shape
    x = x.view(b, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(b, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit: channel split (stride 1) or two strided branches, concat, channel shuffle."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = cout // 2
        if stride > 1:
            self.branch1 = nn.Sequential(ConvBNAct(cin, cin, 3, stride, groups=cin, act=None),
                                         ConvBNAct(cin, half, 1))
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(ConvBNAct(cin if stride > 1 else half, half, 1),
                                     ConvBNAct(half, half, 3, stride, groups=half, act=None), ConvBNAct(half, half, 1))

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, widths=(24, 48, 96, 192), repeats=(2, 3, 2), last: int = 256, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(3, widths[0], 3, 2)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, cin = [], widths[0]
        for cout, n in zip(widths[1:], repeats):
            stages.append(nn.Sequential(ShuffleUnit(cin, cout, 2), *[ShuffleUnit(cout, cout, 1) for _ in range(n - 1)]))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.conv5 = ConvBNAct(cin, last, 1)
        self.fc = nn.Linear(last, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv5(self.stages(self.maxpool(self.conv1(x))))
        return self.fc(x.mean([2, 3]))


def shufflenet() -> Built:
    seeded()
    return built(ShuffleNetV2(), image(64), "shufflenet", "cnn", "classification")


# ------------------------------------------------------------------------------------------------------ GoogLeNet
class Inception(nn.Module):
    """Four parallel branches from one input, concatenated: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 | maxpool -> 1x1."""

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool: int) -> None:
        super().__init__()
        self.branch1 = ConvBNAct(cin, c1, 1)
        self.branch2 = nn.Sequential(ConvBNAct(cin, c3r, 1), ConvBNAct(c3r, c3, 3))
        self.branch3 = nn.Sequential(ConvBNAct(cin, c5r, 1), ConvBNAct(c5r, c5, 3))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), ConvBNAct(cin, pool, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(ConvBNAct(3, 16, 7, 2), nn.MaxPool2d(3, 2, ceil_mode=True), ConvBNAct(16, 16, 1),
                                  ConvBNAct(16, 48, 3), nn.MaxPool2d(3, 2, ceil_mode=True))
        self.inception3a = Inception(48, 16, 24, 32, 4, 8, 8)
        self.inception3b = Inception(64, 32, 32, 48, 8, 24, 16)
        self.maxpool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception4a = Inception(120, 48, 24, 52, 4, 12, 16)
        self.fc = nn.Linear(128, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.inception4a(self.maxpool3(self.inception3b(self.inception3a(self.stem(x)))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def googlenet() -> Built:
    seeded()
    return built(GoogLeNet(), image(64), "inception", "cnn", "classification")


# -------------------------------------------------------------------------------------------------------- AlexNet
class AlexNet(nn.Module):
    """Krizhevsky et al. 2012 (torchvision's single-tower layout) at quarter width: 11x11 stride-4 stem, five convs,
    three fully connected layers."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(16, 48, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(48, 96, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(96, 64, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(nn.Dropout(), nn.Linear(64 * 36, 256), nn.ReLU(inplace=True), nn.Dropout(),
                                        nn.Linear(256, 256), nn.ReLU(inplace=True), nn.Linear(256, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def alexnet() -> Built:
    seeded()
    return built(AlexNet(), image(224), "alexnet", "cnn", "classification")


# ------------------------------------------------------------------------------------------- torchvision families
def densenet() -> Built:
    seeded()
    from embodied_tui.analysis.zoo.densenet import DenseNet

    model = DenseNet(growth_rate=8, block_config=(4, 4), num_init_features=16, bn_size=2, num_classes=10)
    return built(model, image(64), "densenet", "cnn", "classification")


def resnet() -> Built:
    seeded()
    return built(zoo.resnet_tiny(), image(64), "resnet", "cnn", "classification")


def mobilenet_v2() -> Built:
    seeded()
    return built(zoo.mobilenet_tiny(), image(96), "mobilenet", "cnn", "classification")


def mobilenet_v3() -> Built:
    seeded()
    from embodied_tui.analysis.zoo.mobilenet import MobileNetV3
    from embodied_tui.analysis.zoo.mobilenet import V3BlockConfig as C

    setting = [C(16, 3, 16, 16, True, False, 2), C(16, 3, 48, 24, False, False, 2), C(24, 5, 64, 24, True, True, 1),
               C(24, 5, 96, 40, True, True, 2), C(40, 5, 120, 40, True, True, 1)]
    return built(MobileNetV3(setting, 256, num_classes=10), image(64), "mobilenet", "cnn", "classification")


def efficientnet() -> Built:
    seeded()
    from embodied_tui.analysis.zoo.efficientnet import EfficientNet
    from embodied_tui.analysis.zoo.efficientnet import MBConvConfig as M

    setting = [M(1, 3, 1, 16, 8, 1), M(4, 3, 2, 8, 16, 2), M(4, 5, 2, 16, 24, 2), M(4, 3, 2, 24, 40, 1)]
    return built(EfficientNet(setting, dropout=0.2, num_classes=10), image(64), "efficientnet", "cnn",
                 "classification")


def convnext() -> Built:
    seeded()
    from embodied_tui.analysis.zoo.convnext import CNBlockConfig as C
    from embodied_tui.analysis.zoo.convnext import ConvNeXt

    model = ConvNeXt([C(16, 32, 1), C(32, 64, 2), C(64, None, 1)], num_classes=10)
    return built(model, image(64), "convnext", "cnn", "classification")


def regnet() -> Built:
    seeded()
    from embodied_tui.analysis.zoo.regnet import BlockParams, RegNet

    params = BlockParams(depths=[1, 2, 1], widths=[16, 32, 64], group_widths=[8, 8, 8],
                         bottleneck_multipliers=[1.0, 1.0, 1.0], strides=[2, 2, 2], se_ratio=0.25)
    return built(RegNet(params, num_classes=10, stem_width=16), image(64), "regnet", "cnn", "classification")


class SmallVGG(nn.Module):
    """VGG-16's configuration D at 1/16 width: 13 3x3 convs in five pooled stages, three FC layers."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        from embodied_tui.analysis.zoo.vgg import make_layers

        self.features = make_layers([8, 8, "M", 16, 16, "M", 32, 32, 32, "M", 32, 32, 32, "M", 32, 32, 32, "M"])
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(32 * 49, 256), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(256, 256), nn.ReLU(True), nn.Dropout(), nn.Linear(256, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def vgg() -> Built:
    seeded()
    return built(SmallVGG(), image(224), "vgg", "cnn", "classification")


def unet() -> Built:
    seeded()
    return built(zoo.unet_small(num_classes=5, upsample="bilinear"), image(64), "unet", "cnn", "segmentation")


# ------------------------------------------------------------------------------------------------------- PointNet
class TNet(nn.Module):
    """The input transform: a mini-PointNet predicting a k x k matrix, added to the identity."""

    def __init__(self, k: int = 3) -> None:
        super().__init__()
        self.k = k
        self.convs = nn.Sequential(nn.Conv1d(k, 32, 1), nn.BatchNorm1d(32), nn.ReLU(), nn.Conv1d(32, 64, 1),
                                   nn.BatchNorm1d(64), nn.ReLU(), nn.Conv1d(64, 128, 1), nn.BatchNorm1d(128), nn.ReLU())
        self.fc = nn.Sequential(nn.Linear(128, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 32),
                                nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, k * k))
        self.register_buffer("identity", torch.eye(k).flatten())

    def forward(self, x: Tensor) -> Tensor:
        x = torch.max(self.convs(x), 2)[0]
        return (self.fc(x) + self.identity).view(-1, self.k, self.k)


class PointNet(nn.Module):
    """PointNet classification (Qi et al. 2017): T-Net, shared per-point MLPs as kernel-1 Conv1d, global max pool."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stn = TNet(3)
        self.conv1 = nn.Sequential(nn.Conv1d(3, 32, 1), nn.BatchNorm1d(32), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv1d(32, 64, 1), nn.BatchNorm1d(64), nn.ReLU())
        self.conv3 = nn.Sequential(nn.Conv1d(64, 256, 1), nn.BatchNorm1d(256))
        self.head = nn.Sequential(nn.Linear(256, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, 64),
                                  nn.Dropout(0.4), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, num_classes))

    def forward(self, x: Tensor) -> Tensor:  # (B, 3, N)
        trans = self.stn(x)
        x = torch.bmm(x.transpose(2, 1), trans).transpose(2, 1)
        x = self.conv3(self.conv2(self.conv1(x)))
        x = torch.max(x, 2, keepdim=True)[0].view(-1, 256)
        return F.log_softmax(self.head(x), dim=1)


class PointMLP(nn.Module):
    """PointNet with the shared MLP written as per-point Linear layers on (B, N, 3) and a max over the points axis."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.point_mlp = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 256))
        self.head = nn.Sequential(nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, num_classes))

    def forward(self, x: Tensor) -> Tensor:  # (B, N, 3)
        return self.head(self.point_mlp(x).amax(dim=1))


def pointnet() -> Built:
    seeded()
    x = torch.randn(1, 3, 256, generator=torch.Generator().manual_seed(1))
    return built(PointNet(), (x,), "pointnet", "mlp", "classification")


def pointnet_mlp() -> Built:
    seeded()
    x = torch.randn(1, 256, 3, generator=torch.Generator().manual_seed(1))
    return built(PointMLP(), (x,), "pointnet", "mlp", "classification")
