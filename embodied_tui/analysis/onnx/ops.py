"""What the ONNX formula table is made of: ``OpCall`` (one node's shapes and attributes), the registries a formula or
shape hook is added to, and the classes of ops the counter treats apart. The formulas themselves live in
``onnx.formulas`` (MAC ops, shape hooks, ``count``) and ``onnx.other_flops`` (everything without MACs)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

Shape = list[int]


class ShapeUnknown(Exception):
    """A formula needed a shape that shape inference could not give."""


@dataclass
class OpCall:
    op_type: str
    domain: str = ""
    attrs: dict = field(default_factory=dict)
    inputs: list[Shape | None] = field(default_factory=list)  # None: unknown shape (or absent; see `present`)
    present: list[bool] = field(default_factory=list)  # False for an omitted optional input ("")
    outputs: list[Shape | None] = field(default_factory=list)

    def has(self, i: int) -> bool:
        return i < len(self.present) and self.present[i]

    def shape(self, i: int) -> Shape:
        if not self.has(i) or self.inputs[i] is None:
            raise ShapeUnknown(f"{self.op_type} input {i}")
        return self.inputs[i]

    def out(self, i: int = 0) -> Shape:
        if i >= len(self.outputs) or self.outputs[i] is None:
            raise ShapeUnknown(f"{self.op_type} output {i}")
        return self.outputs[i]


Formula = Callable[[OpCall], tuple[int, int]]
FORMULAS: dict[str, Formula] = {}
SHAPE_HOOKS: dict[str, Callable[[OpCall], list[Shape]]] = {}
# What a formula or shape hook raises when the call does not fit it (an unknown shape, a missing attribute ...).
FORMULA_ERRORS = (ShapeUnknown, KeyError, ValueError, IndexError, TypeError, ZeroDivisionError)

# Ops whose output is a view of input 0 (no data moved): zero traffic in the byte counts.
VIEW_OPS = frozenset({"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Dropout"})
# Ops that read only metadata of their input.
METADATA_OPS = frozenset({"Shape", "Size"})
# Control flow: ops holding subgraphs (GraphProto attributes).
CONTROL_FLOW = frozenset({"If", "Loop", "Scan", "SequenceMap"})
# Control flow whose subgraphs are counted (``onnx.control_flow``); SequenceMap's body runs once per sequence element,
# a length no shape gives, so it stays uncounted.
COUNTED_FLOW = frozenset({"If", "Loop", "Scan"})
# The short label of each counted subgraph attribute, used in scoped names ("/loop/body/mm").
SUBGRAPH_LABELS = {"then_branch": "then", "else_branch": "else", "body": "body"}
# Ops whose formula gives MACs: when one of them cannot be counted, the model's MACs are incomplete.
MAC_OPS = frozenset({"Conv", "ConvInteger", "QLinearConv", "FusedConv", "NhwcConv", "ConvTranspose", "Gemm",
                     "MatMul", "MatMulInteger", "QLinearMatMul", "FusedMatMul", "MatMulNBits", "Einsum",
                     "Attention", "MultiHeadAttention", "LSTM", "GRU", "RNN"})


def register(*op_types: str) -> Callable[[Formula], Formula]:
    def deco(fn: Formula) -> Formula:
        for op in op_types:
            FORMULAS[op] = fn
        return fn
    return deco


def shape_hook(*op_types: str):
    def deco(fn):
        for op in op_types:
            SHAPE_HOOKS[op] = fn
        return fn
    return deco


def numel(shape: Shape) -> int:
    return math.prod(shape)
