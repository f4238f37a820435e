"""The shared layer vocabulary: every format's layer-type names mapped to one kind, so a model's layer census reads
the same whichever file it came from.

A record's ``layers`` (layer type -> count) uses its format's own names: torch formats (TorchScript, ExportedProgram,
state_dict, pickle) count modules by class ("Conv2d", "Linear", "BatchNorm2d"; a state_dict's guessed types
"BatchNorm", "Norm", "Recurrent"), ONNX counts graph nodes by op type ("Conv", "Gemm", "Relu"). ``layer_kind`` maps
both onto the op kinds of ``analysis.trace.KINDS`` ("conv", "linear", "relu" ...):

- ONNX op types take the kind the ONNX op registry gives them (``analysis/onnx/ops.py``: formula + kind per op, the
  one table; importing ``onnx.formulas`` fills it without importing onnx or torch);
- torch module classes take theirs from ``MODULE_KINDS`` below (there is no other table of module classes);
- a name neither table knows, or one the registry calls "other" (Gather, Clip, Shape ...), keeps its own name: it is
  not lumped with unrelated ops.

Conventions for comparing counts across formats (``census_unit``): modules and nodes agree one to one for layers
whose work is multiply-accumulates (``MAC_KINDS``: one Conv2d module is one Conv node), but not for the rest: a torch
module can run several times (resnet's one ReLU per block runs twice: 9 modules, 17 Relu nodes), functional calls
have no module (``out += identity`` is 8 ONNX Add nodes and no module), and an ONNX export folds BatchNorm into the
convolution before it. Counts of those kinds are comparable only between files of the same unit.
``AdaptiveAvgPool*`` maps to "global_pool", the kind of ONNX's GlobalAveragePool it exports to at output size 1 (the
usual classifier head; other output sizes export as AveragePool, "avgpool").
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import cache


def _same(kind: str, *names: str) -> dict[str, str]:
    return dict.fromkeys(names, kind)


# torch module class (or the state_dict counter's guessed type) -> trace.KINDS entry
MODULE_KINDS: dict[str, str] = {
    **_same("conv", "Conv1d", "Conv2d", "Conv3d", "LazyConv1d", "LazyConv2d", "LazyConv3d"),
    **_same("conv_transpose", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"),
    **_same("linear", "Linear", "LazyLinear", "NonDynamicallyQuantizableLinear"),
    **_same("embedding", "Embedding", "EmbeddingBag"),
    **_same("attention", "MultiheadAttention"),
    **_same("lstm", "LSTM", "LSTMCell"),
    **_same("gru", "GRU", "GRUCell"),
    **_same("rnn", "RNN", "RNNCell"),
    **_same("batchnorm", "BatchNorm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm"),
    **_same("layernorm", "LayerNorm", "RMSNorm"),
    **_same("groupnorm", "GroupNorm"),
    "ReLU": "relu", "ReLU6": "relu6", "GELU": "gelu", "SiLU": "silu", "Sigmoid": "sigmoid",
    "Hardsigmoid": "hardsigmoid", "Hardswish": "hardswish", "Tanh": "tanh", "Softmax": "softmax",
    **_same("maxpool", "MaxPool1d", "MaxPool2d", "MaxPool3d"),
    **_same("avgpool", "AvgPool1d", "AvgPool2d", "AvgPool3d"),
    **_same("global_pool", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d"),
    **_same("upsample", "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"),
    "Flatten": "flatten",
    **_same("pad", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d", "ReflectionPad2d",
            "ReplicationPad2d"),
}


@cache
def _onnx_kinds() -> tuple[dict[str, str], frozenset[str]]:
    """ONNX op type -> kind from the op registry, and the kinds of ops whose work is MACs."""
    from embodied_tui.analysis.onnx.formulas import OPS

    kinds = {op: spec.kind for op, spec in OPS.items() if spec.kind != "other"}
    macs = frozenset(spec.kind for spec in OPS.values() if spec.macs and spec.kind != "other")
    return kinds, macs


def layer_kind(name: str) -> str:
    """The shared kind of a layer-type name of any format ('Conv2d' and 'Conv' -> 'conv'); unknown names as they are."""
    return MODULE_KINDS.get(name) or _onnx_kinds()[0].get(name) or name


def mac_kinds() -> frozenset[str]:
    """Kinds whose work is multiply-accumulates (conv, linear, matmul, attention, recurrent ...): one module is one
    node, so their counts compare across formats."""
    return _onnx_kinds()[1]


def kind_counts(layers: Mapping[str, int]) -> dict[str, int]:
    """A record's ``layers`` (format names -> count) summed per shared kind."""
    counts: dict[str, int] = {}
    for name, n in layers.items():
        kind = layer_kind(name)
        counts[kind] = counts.get(kind, 0) + n
    return counts


def census_unit(fmt: str) -> str:
    """What a format's ``layers`` counts: ONNX graph 'node's, every other format 'module's (classes or guessed
    types)."""
    return "node" if fmt == "onnx" else "module"
