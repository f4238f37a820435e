"""The zoo's registry: every builder with its default input, task, family and where its class count lives.

Importing this module does not import torch; ``Builder.build`` imports the model's module when called.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor, nn

TASKS = ("classification", "detection", "segmentation", "policy")


@dataclass(frozen=True)
class Builder:
    name: str
    target: str  # "module:function", the module relative to this package
    input_shapes: tuple[tuple[int, ...], ...]  # default inputs, float32
    task: str  # one of TASKS
    family: str  # resnet, mobilenet, efficientnet, vit, convnext, regnet, densenet, vgg, yolo, unet, lstm, gru, mlp
    arch_type: str  # cnn, transformer, rnn, mlp
    description: str
    reference: bool = False  # True: layout and parameter names identical to torchvision's model of this name
    kwargs: dict[str, Any] = field(default_factory=dict, hash=False)  # fixed arguments to the constructor
    class_keys: tuple[str, ...] = ()  # state_dict keys whose first dim is the class count
    num_classes: int | None = None  # the default class count (None: no class head)
    same_weights_as: str | None = None  # a variant whose state_dict equals another entry's (never a match result)
    source: str | None = None  # where a published architecture is defined (not torchvision); None for our demo models

    @property
    def constructor(self) -> Callable[..., nn.Module]:
        module, func = self.target.split(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), func)

    def build(self, **overrides: Any) -> nn.Module:
        """A fresh model in eval mode (built on the current default device: use ``with torch.device("meta")``)."""
        return self.constructor(**{**self.kwargs, **overrides}).eval()

    def example_inputs(self, device: str = "cpu") -> tuple[Tensor, ...]:
        import torch

        gen = torch.Generator().manual_seed(0)
        return tuple(torch.randn(shape, generator=gen).to(device) for shape in self.input_shapes)


def _head(prefix: str) -> tuple[str, str]:
    return f"{prefix}.weight", f"{prefix}.bias"


_IMAGENET = ((1, 3, 224, 224),)
_YOLOV8_YAML = "https://github.com/ultralytics/ultralytics/blob/main/ultralytics/cfg/models/v8/yolov8.yaml"
_REF = dict(task="classification", reference=True, num_classes=1000)

_ENTRIES = [
    # ---- torchvision-exact reference architectures
    Builder("resnet18", "resnet:resnet18", _IMAGENET, family="resnet", arch_type="cnn",
            description="ResNet-18, BasicBlock [2,2,2,2] (torchvision)", class_keys=_head("fc"), **_REF),
    Builder("resnet34", "resnet:resnet34", _IMAGENET, family="resnet", arch_type="cnn",
            description="ResNet-34, BasicBlock [3,4,6,3] (torchvision)", class_keys=_head("fc"), **_REF),
    Builder("resnet50", "resnet:resnet50", _IMAGENET, family="resnet", arch_type="cnn",
            description="ResNet-50 v1.5, Bottleneck [3,4,6,3] (torchvision)", class_keys=_head("fc"), **_REF),
    Builder("resnet101", "resnet:resnet101", _IMAGENET, family="resnet", arch_type="cnn",
            description="ResNet-101 v1.5, Bottleneck [3,4,23,3] (torchvision)", class_keys=_head("fc"), **_REF),
    Builder("mobilenet_v2", "mobilenet:mobilenet_v2", _IMAGENET, family="mobilenet", arch_type="cnn",
            description="MobileNetV2, inverted residuals with ReLU6 (torchvision)",
            class_keys=_head("classifier.1"), **_REF),
    Builder("mobilenet_v3_small", "mobilenet:mobilenet_v3_small", _IMAGENET, family="mobilenet", arch_type="cnn",
            description="MobileNetV3-Small, SE + hardswish (torchvision)", class_keys=_head("classifier.3"), **_REF),
    Builder("mobilenet_v3_large", "mobilenet:mobilenet_v3_large", _IMAGENET, family="mobilenet", arch_type="cnn",
            description="MobileNetV3-Large, SE + hardswish (torchvision)", class_keys=_head("classifier.3"), **_REF),
    Builder("efficientnet_b0", "efficientnet:efficientnet_b0", _IMAGENET, family="efficientnet", arch_type="cnn",
            description="EfficientNet-B0, MBConv + SE + SiLU (torchvision)", class_keys=_head("classifier.1"), **_REF),
    Builder("vit_b_16", "vision_transformer:vit_b_16", _IMAGENET, family="vit", arch_type="transformer",
            description="ViT-B/16: 12 layers, 12 heads, dim 768 (torchvision)", class_keys=_head("heads.head"), **_REF),
    Builder("convnext_tiny", "convnext:convnext_tiny", _IMAGENET, family="convnext", arch_type="cnn",
            description="ConvNeXt-Tiny, 7x7 depthwise + LayerNorm + GELU (torchvision)",
            class_keys=_head("classifier.2"), **_REF),
    Builder("regnet_y_400mf", "regnet:regnet_y_400mf", _IMAGENET, family="regnet", arch_type="cnn",
            description="RegNetY-400MF, grouped bottlenecks + SE (torchvision)", class_keys=_head("fc"), **_REF),
    Builder("densenet121", "densenet:densenet121", _IMAGENET, family="densenet", arch_type="cnn",
            description="DenseNet-121, growth 32, blocks [6,12,24,16] (torchvision)",
            class_keys=_head("classifier"), **_REF),
    Builder("vgg16", "vgg:vgg16", _IMAGENET, family="vgg", arch_type="cnn",
            description="VGG-16 (configuration D, no batch norm) (torchvision)",
            class_keys=_head("classifier.6"), **_REF),
    Builder("vgg19", "vgg:vgg19", _IMAGENET, family="vgg", arch_type="cnn",
            description="VGG-19 (configuration E, no batch norm) (torchvision)",
            class_keys=_head("classifier.6"), **_REF),
    # ---- small demo and test models (well under a second on a CPU)
    Builder("resnet_tiny", "resnet:resnet_tiny", ((1, 3, 64, 64),), task="classification", family="resnet",
            arch_type="cnn", description="ResNet-style classifier, one BasicBlock per stage, widths 16-128, 10 classes",
            class_keys=_head("fc"), num_classes=10),
    Builder("mobilenet_tiny", "mobilenet:mobilenet_tiny", ((1, 3, 96, 96),), task="classification",
            family="mobilenet", arch_type="cnn",
            description="MobileNetV2-style classifier, half width, four stages, 10 classes",
            class_keys=_head("classifier.1"), num_classes=10),
    Builder("small_vit", "vision_transformer:small_vit", ((1, 3, 32, 32),), task="classification", family="vit",
            arch_type="transformer",
            description="ViT for 32x32 images: patch 8, dim 64, depth 4, 4 heads (nn.MultiheadAttention), 10 classes",
            class_keys=_head("heads.head"), num_classes=10),
    Builder("small_vit_sdpa", "vision_transformer:small_vit", ((1, 3, 32, 32),), task="classification", family="vit",
            arch_type="transformer", kwargs={"sdpa": True},
            description="small_vit with attention calling F.scaled_dot_product_attention directly",
            class_keys=_head("heads.head"), num_classes=10, same_weights_as="small_vit"),
    Builder("lstm_policy", "policies:lstm_policy", ((1, 16, 32),), task="policy", family="lstm", arch_type="rnn",
            description="Recurrent policy: 32-d observations x 16 steps -> LSTM(128) -> MLP -> 8 actions per step"),
    Builder("gru_policy", "policies:gru_policy", ((1, 16, 32),), task="policy", family="gru", arch_type="rnn",
            description="Recurrent policy: 32-d observations x 16 steps -> GRU(128) -> MLP -> 8 actions per step"),
    Builder("mlp_policy", "policies:mlp_policy", ((1, 32),), task="policy", family="mlp", arch_type="mlp",
            description="Feed-forward policy: 32-d observation -> 256 -> 256 (tanh) -> 8 actions"),
    Builder("yolo_style_detector", "detector:yolo_style_detector", ((1, 3, 320, 320),), task="detection",
            family="yolo", arch_type="cnn",
            description="YOLO-style detector: C2f backbone, SPPF, FPN/PAN neck, decoupled head; raw output "
                        "(1, 144, 2100), no post-processing",
            class_keys=tuple(f"head.cv3.{i}.2.{p}" for i in range(3) for p in ("weight", "bias")), num_classes=80),
    Builder("yolo_style_detector_postprocess", "detector:yolo_style_detector", ((1, 3, 320, 320),),
            task="detection", family="yolo", arch_type="cnn", kwargs={"postprocess": True},
            description="yolo_style_detector ending in box decoding and score thresholding (torch.nonzero): "
                        "a data-dependent number of detections",
            class_keys=tuple(f"head.cv3.{i}.2.{p}" for i in range(3) for p in ("weight", "bias")), num_classes=80,
            same_weights_as="yolo_style_detector"),
    Builder("unet_small", "unet:unet_small", ((1, 3, 128, 128),), task="segmentation", family="unet",
            arch_type="cnn",
            description="U-Net encoder-decoder: widths 16-128, ConvTranspose2d upsampling, skip concatenations, "
                        "21 classes per pixel",
            class_keys=_head("head"), num_classes=21),
    # ---- published architectures the measurements in data/published/latency.csv use (counts match their publisher)
    Builder("mobilenet_v1", "mobilenet:mobilenet_v1", _IMAGENET, task="classification", family="mobilenet",
            arch_type="cnn", num_classes=1000, source="https://arxiv.org/abs/1704.04861",
            description="MobileNetV1 1.0 (paper Table 1, TF-slim layout): 13 depthwise-separable blocks, ReLU6, "
                        "4.2M parameters, 569M multiply-adds at 224",
            class_keys=_head("classifier.1")),
    Builder("ssd_mobilenet_v1", "ssd:ssd_mobilenet_v1", ((1, 3, 300, 300),), task="detection", family="ssd",
            arch_type="cnn",  # class convs are anchors x classes wide, so no class_keys / num_classes to read
            source="https://github.com/tensorflow/models/blob/master/research/object_detection/samples/configs/"
                   "ssd_mobilenet_v1_coco.config",
            description="SSD-MobileNet-V1 300x300 (TF Object Detection API): MobileNetV1 to conv13, four extra "
                        "layers, 1x1 box/class heads on six maps, 1917 anchors x 91 classes; raw head, no NMS"),
    *(Builder(f"yolov8{scale}", f"yolov8:yolov8{scale}", ((1, 3, 640, 640),), task="detection", family="yolo",
              arch_type="cnn", num_classes=80, source=_YOLOV8_YAML,
              description=f"Ultralytics YOLOv8{scale} detection ({params} parameters, {gflops} GFLOPs fused at 640): "
                          "C2f, SPPF, FPN/PAN, DFL head; decoded output (1, 84, 8400), no NMS",
              class_keys=tuple(f"head.cv3.{i}.2.{p}" for i in range(3) for p in ("weight", "bias")))
      for scale, params, gflops in (("n", "3.2M", 8.7), ("s", "11.2M", 28.6), ("m", "25.9M", 78.9),
                                    ("l", "43.7M", 165.2), ("x", "68.2M", 257.8))),
]

BUILDERS: dict[str, Builder] = {b.name: b for b in _ENTRIES}
assert len(BUILDERS) == len(_ENTRIES), "duplicate builder names"
assert all(b.task in TASKS for b in _ENTRIES)
