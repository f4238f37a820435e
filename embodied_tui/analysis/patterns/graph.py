"""The trace as a graph the detectors can walk, the same for every format.

``Graph`` wraps a list of ``TraceOp`` and removes what differs between formats without changing what is computed:
- pass-through ops (Cast, QuantizeLinear/DequantizeLinear pairs, Identity, clone/contiguous copies, Expand) are looked
  through: each op's inputs are rewired to the op that really produced the value, so an fp16 or QDQ int8 file has
  the same graph as its fp32 original;
- ``x * sigmoid(x)`` written as two ops becomes one SiLU (the ONNX counter fuses it unless QDQ nodes sit between);
- each op knows its users, whether its value is constant (computed only from weights, constants and shapes: position
  tables, anchors, masks built from ``arange``) and whether it depends on a model input.
Views and moves (reshape, transpose, slice, split) stay in the graph: some structures are made of them (window
partitions, channel shuffles); ``src`` looks through them when only the value matters.
"""
from __future__ import annotations

from embodied_tui.analysis.trace import TraceOp

# ops that only change dtype, quantisation or memory layout of one value (looked through everywhere)
PASS_OPS = frozenset({
    "cast", "castlike", "quantizelinear", "dequantizelinear", "dynamicquantizelinear", "identity", "dropout",
    "clone", "contiguous", "_to_copy", "to", "copy", "copy_", "lift_fresh_copy", "alias", "detach", "type_as",
    "expand", "expand_as", "expand_copy", "_reshape_copy",
})
# ops whose value depends only on shapes, never on tensor data (a mask from ones_like(input_ids) is a constant)
SHAPE_ONLY = frozenset({
    "arange", "range", "ones_like", "zeros_like", "empty_like", "full_like", "new_ones", "new_zeros", "new_full",
    "new_empty", "full", "ones", "zeros", "empty", "eye", "shape", "size", "constantofshape", "sym_size",
    "scalar_tensor", "_local_scalar_dense", "linspace",
})
# views and data movement of one value: looked through when following where a value comes from
SOFT = frozenset({"reshape", "transpose", "flatten", "slice", "split"})
# ops that keep a value's identity for structural purposes: norms, activations and views
CARRY = SOFT | {"batchnorm", "layernorm", "groupnorm", "relu", "relu6", "gelu", "silu", "sigmoid", "hardsigmoid",
                "hardswish", "tanh"}


def name(op: TraceOp) -> str:
    """The bare lower-case op name: 'aten.clone' -> 'clone', 'Cast' -> 'cast', 'aten.max' -> 'max'."""
    return op.op.rsplit(".", 1)[-1].lower()


class Graph:
    def __init__(self, trace: list[TraceOp]) -> None:
        self.ops = trace
        n = len(trace)
        self.alive = [True] * n
        self.kind = [op.kind for op in trace]
        self.names = [name(op) for op in trace]
        resolved = list(range(n))
        self.ins: list[list[int]] = []
        for op in trace:
            ins = [resolved[i] if 0 <= i < n else i for i in op.inputs]
            self.ins.append(ins)
            if self.names[op.index] in PASS_OPS:
                self.alive[op.index] = False
                resolved[op.index] = ins[0] if ins else -2
            elif self._bias_add(op, ins):  # part of the layer before it (ONNX writes the bias add apart)
                self.alive[op.index] = False
                resolved[op.index] = next(j for j in ins if j >= 0)
        self.resolved = resolved
        self.users: list[list[int]] = [[] for _ in range(n)]
        for i in range(n):
            if self.alive[i]:
                for j in set(self.ins[i]):
                    if j >= 0:
                        self.users[j].append(i)
        self._fuse_silu()
        self.const = [False] * n
        self.from_input = [False] * n
        for i in range(n):
            if not self.alive[i]:
                continue
            ins = self.ins[i]
            if self.names[i] in SHAPE_ONLY or all(j == -2 or (j >= 0 and self.const[j]) for j in ins):
                self.const[i] = True
            else:
                self.from_input[i] = any(j == -1 or (j >= 0 and self.from_input[j]) for j in ins)

    def _bias_add(self, op: TraceOp, ins: list[int]) -> bool:
        if op.kind != "add" or name(op) != "add" or len(ins) != 2 or len(op.in_shapes) != 2:
            return False
        for j, other, shape in ((ins[0], ins[1], op.in_shapes[1]), (ins[1], ins[0], op.in_shapes[0])):
            if j >= 0 and self.kind[j] in ("linear", "matmul", "conv") and other == -2 and len(shape) <= 1:
                return True
        return False

    def _fuse_silu(self) -> None:
        """mul(x, sigmoid(x)) -> one silu (QDQ nodes between the two keep the ONNX counter from fusing them)."""
        for i, op in enumerate(self.ops):
            if not self.alive[i] or self.kind[i] != "mul" or len(self.ins[i]) != 2:
                continue
            a, b = self.ins[i]
            for gate, other in ((a, b), (b, a)):
                if gate >= 0 and self.kind[gate] == "sigmoid" and self.alive[gate] and self.ins[gate][:1] == [other] \
                        and self.users[gate] == [i]:
                    self.kind[i] = "silu"
                    self.alive[gate] = False
                    self.ins[i] = [other]
                    self.users[other] = [u for u in self.users[other] if u != gate]
                    break

    # ---- walking
    def __len__(self) -> int:
        return len(self.ops)

    def live(self):
        """Indices of the ops that remain after looking through pass-throughs, in execution order."""
        return (i for i in range(len(self.ops)) if self.alive[i])

    def data_inputs(self, i: int) -> list[int]:
        """Inputs of op ``i`` that carry activations (producing ops and model inputs, not constants)."""
        return [j for j in self.ins[i] if j == -1 or (j >= 0 and not self.const[j])]

    def first(self, i: int) -> int:
        """The main activation input of ``i``: the first one with the op's own output shape (the stream a gate or a
        scale multiplies), else the first activation input (or the first input, or -2)."""
        op = self.ops[i]
        acts = [(j, s) for j, s in zip(self.ins[i], op.in_shapes) if j == -1 or (j >= 0 and not self.const[j])]
        if not acts:
            acts = [(j, []) for j in self.data_inputs(i)]
        if not acts:
            return self.ins[i][0] if self.ins[i] else -2
        out = op.out_shape or []
        return next((j for j, s in acts if s == out), acts[0][0])

    def src(self, i: int, through: frozenset[str] | set[str] = SOFT, limit: int = 12) -> int:
        """Where the value of ``i`` comes from, following first inputs through ops of the kinds ``through``."""
        for _ in range(limit):
            if i < 0 or self.kind[i] not in through:
                return i
            i = self.first(i)
        return i

    def consumers(self, i: int, through: frozenset[str] | set[str] = SOFT, limit: int = 4) -> list[int]:
        """The ops that use the value of ``i``, looking through ops of the kinds ``through`` (up to ``limit`` deep)."""
        out, todo, seen = [], [(i, 0)], set()
        while todo:
            j, depth = todo.pop()
            for u in self.users[j]:
                if u in seen:
                    continue
                seen.add(u)
                if self.kind[u] in through and depth < limit:
                    todo.append((u, depth + 1))
                else:
                    out.append(u)
        return sorted(out)

    def ancestors(self, i: int, limit: int = 60) -> set[int]:
        seen: set[int] = set()
        todo = [i]
        while todo and len(seen) < limit:
            j = todo.pop()
            if j < 0 or j in seen:
                continue
            seen.add(j)
            todo.extend(self.ins[j])
        return seen

    def chain(self, i: int, through: frozenset[str] | set[str], limit: int = 10) -> list[int]:
        """``i`` and its first-input predecessors while they are of the kinds ``through`` (the last element is the
        first op that is not, or a negative input marker)."""
        out = [i]
        for _ in range(limit):
            if i < 0 or self.kind[i] not in through:
                break
            i = self.first(i)
            out.append(i)
        return out

    def shape(self, i: int) -> list[int]:
        return list(self.ops[i].out_shape or []) if i >= 0 else []

    def attr(self, i: int, key: str, default=None):
        return self.ops[i].attrs.get(key, default) if i >= 0 else default
