"""Model zoo: torchvision-exact re-implementations (torchvision is not a dependency) and small demo models.

``BUILDERS`` lists every model with its default input, task and family; ``match_state_dict`` names the architecture of
a checkpoint from its key shapes. Importing this package does not import torch; the builder functions
(``zoo.resnet50``, ``zoo.small_vit`` ...) are loaded on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

from .match import Match, identify_state_dict, match_state_dict, signature
from .registry import BUILDERS, TASKS, Builder

_FUNCTIONS = {
    "resnet": ("resnet18", "resnet34", "resnet50", "resnet101", "resnet_tiny"),
    "mobilenet": ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "mobilenet_tiny"),
    "efficientnet": ("efficientnet_b0",),
    "vision_transformer": ("vit", "vit_b_16", "small_vit"),
    "convnext": ("convnext_tiny",),
    "regnet": ("regnet_y_400mf",),
    "densenet": ("densenet121",),
    "vgg": ("vgg16", "vgg19"),
    "policies": ("lstm_policy", "gru_policy", "mlp_policy"),
    "detector": ("yolo_style_detector",),
    "unet": ("unet_small",),
    "ssd": ("ssd_mobilenet_v1",),
    "yolov8": ("yolov8n", "yolov8s", "yolov8m", "yolov8l", "yolov8x"),
}
_MODULE_OF = {fn: module for module, fns in _FUNCTIONS.items() for fn in fns}

__all__ = ["BUILDERS", "TASKS", "Builder", "Match", "identify_state_dict", "match_state_dict", "signature",
           *_MODULE_OF]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
