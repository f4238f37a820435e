"""A format-neutral trace of what a model computes, for pattern recognition.

Both counters (torch formats and ONNX) emit one ``TraceOp`` per counted operation, in execution order, with the ids of
the ops that produced its inputs. ``patterns.classify`` reads only this trace plus the layer-type counts, so an ONNX file
and the PyTorch module it came from are judged on the same evidence.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# The op kinds a counter may emit. Anything else is "other".
KINDS = frozenset({
    "conv", "conv_transpose", "linear", "matmul", "attention", "embedding",
    "lstm", "gru", "rnn",
    "batchnorm", "layernorm", "groupnorm",
    "relu", "relu6", "gelu", "silu", "sigmoid", "hardsigmoid", "hardswish", "tanh", "softmax",
    "add", "mul", "concat", "split", "roll", "pad",
    "maxpool", "avgpool", "global_pool", "upsample", "flatten", "reshape", "transpose", "slice",
    "other",
})


@dataclass(slots=True)
class TraceOp:
    index: int  # position in execution order
    kind: str  # one of KINDS
    op: str  # the raw op name ("aten.convolution", "Conv")
    owner: str  # module path or ONNX node name that ran it ("" for the root)
    inputs: list[int] = field(default_factory=list)  # indices of producing TraceOps; -1: model input, -2: weight/constant
    in_shapes: list[list[int]] = field(default_factory=list)
    out_shape: list[int] | None = None
    macs: int = 0
    # conv: groups, kernel (list), stride (list), in_channels, out_channels; embedding: num; attention: heads, window ...
    attrs: dict = field(default_factory=dict)
    # the coverage ledger (analysis/coverage.py): the formula that counted the op (None: none did), the bytes it reads
    # and writes (weights included; None: the counter does not say), whether its work is multiply-accumulates
    formula: str | None = None
    bytes: int | None = None
    mac_op: bool = False
