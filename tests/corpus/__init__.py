"""A corpus of small, structurally faithful models, one builder per architecture family, for the tests that check
what the analyser says about a file (family, type, task, evidence) and for exactness work that needs the same
structures (attention forms, DFL heads, window partitions, recurrent cells ...) in every format.

Every model is written here in plain ``torch.nn`` from the architecture's public description (paper, reference code
layout): nothing is downloaded and nothing outside torch is needed. Each builder is a function with no arguments that
returns a ``Built``: the module in eval mode, its example inputs, and the family, type and task the analyser should
report. ``export.write`` saves one as TorchScript (traced), ``.pt2`` (torch.export), ONNX, ONNX fp16 (float16
weights and activations, Casts around the ops kept in float32) and ONNX QDQ int8 (onnxruntime static quantisation).

    from corpus import CORPUS
    built = CORPUS["yolov8"]()
"""
from __future__ import annotations

from collections.abc import Callable

from . import cnn, detection, language, policies, vision
from .common import Built

CORPUS: dict[str, Callable[[], Built]] = {
    # detection
    "yolov8": detection.yolov8,
    "yolo11": detection.yolo11,
    "detr": detection.detr,
    "rtdetr": detection.rtdetr,
    # language and speech
    "bert": language.bert,
    "distilbert": language.distilbert,
    "gpt2": language.gpt2,
    "t5": language.t5,
    "whisper": language.whisper,
    # vision transformers and hybrids
    "vit": vision.vit,
    "deit": vision.deit,
    "swin": vision.swin,
    "maxvit": vision.maxvit,
    "mobilevit": vision.mobilevit,
    "efficientformer": vision.efficientformer,
    "levit": vision.levit,
    "segformer": vision.segformer,
    # convolutional networks
    "unet": cnn.unet,
    "pointnet": cnn.pointnet,
    "pointnet_mlp": cnn.pointnet_mlp,
    "squeezenet": cnn.squeezenet,
    "shufflenet": cnn.shufflenet,
    "googlenet": cnn.googlenet,
    "alexnet": cnn.alexnet,
    "densenet": cnn.densenet,
    "resnet": cnn.resnet,
    "mobilenet_v2": cnn.mobilenet_v2,
    "mobilenet_v3": cnn.mobilenet_v3,
    "efficientnet": cnn.efficientnet,
    "convnext": cnn.convnext,
    "regnet": cnn.regnet,
    "vgg": cnn.vgg,
    # policies
    "diffusion_policy": policies.diffusion_policy,
    "lstm_policy": policies.lstm_policy,
    "gru_policy": policies.gru_policy,
    "mlp_policy": policies.mlp_policy,
}

__all__ = ["CORPUS", "Built"]
