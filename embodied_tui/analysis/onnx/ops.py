"""The ONNX op registry: everything the counter knows about an op type, registered once, next to its formula.

Each op type has one ``OpSpec``: its formula (``OpCall`` -> ``(macs, other_flops)``), its kind (a ``trace.KINDS``
entry: conv, linear, matmul, attention, softmax ...), whether its work is MACs, and its shape hook (output shapes of
a com.microsoft op that ONNX shape inference does not know). ``register`` adds them with the formula it decorates;
``register_uncounted`` adds an op known to carry MACs for which there is no formula yet, so the counter reports it as
uncounted and ``macs_complete`` false instead of silently counting 0. Registering an op type twice raises.

The formulas themselves live in ``onnx.formulas`` (ops with MACs, shape hooks) and ``onnx.other_flops`` (the rest);
importing ``onnx.formulas`` fills the registry, and its ``lookup``/``count`` are the way in. The classes of ops the
counter treats apart (views, metadata reads, control flow) are the frozensets below.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

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
    values: list[list[float] | None] = field(default_factory=list)  # small constant inputs' values, else None

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

    def value(self, i: int) -> list[float] | None:
        """The values of input ``i`` when it is a small constant (an initializer, a Constant, folded), else None."""
        return self.values[i] if self.has(i) and i < len(self.values) else None


Formula = Callable[[OpCall], tuple[int, int]]
ShapeHook = Callable[[OpCall], list[Shape]]


@dataclass(frozen=True)
class OpSpec:
    """One ONNX op type as the counter knows it."""

    op_type: str
    formula: Formula | None  # None: registered by ``register_uncounted`` (MACs known to exist, not counted)
    kind: str = "other"  # a trace.KINDS entry; the trace refines a few by context (MatMul with a weight -> linear)
    macs: bool = False  # its work is multiply-accumulates: when it cannot be counted, macs_complete is false
    shape: ShapeHook | None = None  # output shapes for custom-domain nodes ONNX inference cannot shape
    reason: str = ""  # why a formula-less op is not counted


OPS: dict[str, OpSpec] = {}
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


def _per_op(op_types: tuple[str, ...], value, default, what: str) -> dict:
    """``value`` for every op type: one value for all, or a mapping naming some of them (the rest get ``default``)."""
    if not isinstance(value, Mapping):
        return dict.fromkeys(op_types, value)
    stray = set(value) - set(op_types)
    if stray:
        raise ValueError(f"{what} given for op types not registered here: {sorted(stray)}")
    return {op: value.get(op, default) for op in op_types}


def _add(spec: OpSpec) -> None:
    if spec.op_type in OPS:
        raise ValueError(f"ONNX op {spec.op_type!r} is registered twice")
    OPS[spec.op_type] = spec


def register(*op_types: str, kind: str | Mapping[str, str] = "other", macs: bool = False,
             shape: ShapeHook | Mapping[str, ShapeHook] | None = None) -> Callable[[Formula], Formula]:
    """Register the decorated formula for ``op_types``, with their kind (one for all, or a mapping op -> kind; ops
    left out are "other"), whether their work is MACs and their shape hook (one for all, or a mapping op -> hook)."""
    kinds = _per_op(op_types, kind, "other", "kind")
    hooks = _per_op(op_types, shape, None, "shape hook")

    def deco(fn: Formula) -> Formula:
        for op in op_types:
            _add(OpSpec(op, fn, kinds[op], macs, hooks[op]))
        return fn
    return deco


def register_uncounted(*op_types: str, reason: str) -> None:
    """Ops that carry MACs but have no formula: each node is listed in ``uncounted`` and makes ``macs_complete``
    false. They get no kind and no shape hook: an op with either must have a formula (tests check it)."""
    for op in op_types:
        _add(OpSpec(op, None, "other", True, None, reason))


def numel(shape: Shape) -> int:
    return math.prod(shape)
