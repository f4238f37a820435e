"""Reading an ONNX graph without its weights: the tensor table, dtypes, node attributes and the node order.

The tensor table maps every named tensor to its shape (None when unknown or symbolic) and element type, from the graph's
inputs, value_info and outputs, its initializers' dims and its Constant nodes, and the same of every subgraph (If
branches, Loop and Scan bodies, nested): ``onnx.control_flow.scope_subgraphs`` first gives subgraph values unique names,
so one flat table serves them all. ``op_call`` turns one node into the
``onnx.ops.OpCall`` a formula or shape hook reads. ``topo_order`` repairs a file whose nodes are out of order.
onnx is imported inside the functions that need it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from embodied_tui.analysis.onnx.ops import CONTROL_FLOW, OpCall

# bits per element by ONNX TensorProto.DataType name; string tensors have no fixed size
BITS = {"FLOAT": 32, "UINT8": 8, "INT8": 8, "UINT16": 16, "INT16": 16, "INT32": 32, "INT64": 64, "BOOL": 8,
        "FLOAT16": 16, "DOUBLE": 64, "UINT32": 32, "UINT64": 64, "COMPLEX64": 64, "COMPLEX128": 128,
        "BFLOAT16": 16, "FLOAT8E4M3FN": 8, "FLOAT8E4M3FNUZ": 8, "FLOAT8E5M2": 8, "FLOAT8E5M2FNUZ": 8,
        "FLOAT8E8M0": 8, "UINT4": 4, "INT4": 4, "FLOAT4E2M1": 4, "UINT2": 2, "INT2": 2}
_DTYPE_NAMES = {"FLOAT": "float32", "FLOAT16": "float16", "DOUBLE": "float64", "BFLOAT16": "bfloat16"}


@dataclass
class Tensor:
    shape: list[int] | None
    elem: int  # TensorProto.DataType

    @property
    def type_name(self) -> str:
        return type_name(self.elem)

    def nbytes(self, elems: int | None = None) -> int | None:
        """Bytes of the whole tensor (None when its shape is unknown), or of ``elems`` of its elements."""
        if elems is None:
            if self.shape is None:
                return None
            elems = math.prod(self.shape)
        return math.ceil(elems * BITS.get(self.type_name, 0) / 8)

    def numel(self) -> int | None:
        return None if self.shape is None else math.prod(self.shape)


def type_name(elem: int) -> str:
    """The TensorProto.DataType name ("FLOAT", "INT64" ...), "UNDEFINED" for an unknown code."""
    import onnx

    try:
        return onnx.TensorProto.DataType.Name(elem)
    except ValueError:
        return "UNDEFINED"


def dtype_label(name: str) -> str:
    """A DataType name as the records spell dtypes: "FLOAT" -> "float32", "INT8" -> "int8"."""
    return _DTYPE_NAMES.get(name, name.lower())


def dtype_name(elem: int) -> str:
    return dtype_label(type_name(elem))


def dims(vi) -> list | None:
    """Dims of a ValueInfoProto: int, str (symbol) or None (anonymous); None when the shape is absent."""
    if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
        return None
    out = []
    for d in vi.type.tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value >= 0:
            out.append(int(d.dim_value))
        else:
            out.append(d.dim_param or None)
    return out


def subgraphs(node) -> list[tuple[str, object]]:
    """(attribute name, GraphProto) of each subgraph a node holds (If branches, Loop/Scan bodies ...)."""
    out = []
    for a in node.attribute:
        kind = a.type
        if kind == _GRAPH:
            out.append((a.name, a.g))
        elif kind == _GRAPHS:
            out.extend((a.name, g) for g in a.graphs)
    return out


_GRAPH, _GRAPHS = 5, 10  # onnx.AttributeProto.GRAPH / GRAPHS (read per attribute of every node: kept as ints)


def walk_graphs(graph):
    """The graph and every subgraph inside it, nested ones included, outermost first."""
    yield graph
    for node in graph.node:
        for _, g in subgraphs(node):
            yield from walk_graphs(g)


def tensor_table(model) -> dict[str, Tensor]:
    import onnx

    table: dict[str, Tensor] = {}
    graphs = list(walk_graphs(model.graph))
    for g in graphs:
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            d = dims(vi)
            shape = d if d is not None and all(isinstance(v, int) for v in d) else None
            if vi.name not in table or table[vi.name].shape is None:
                table[vi.name] = Tensor(shape, vi.type.tensor_type.elem_type)
    for g in graphs:
        for t in g.initializer:
            table[t.name] = Tensor([int(d) for d in t.dims], t.data_type)
        for node in g.node:
            if node.op_type == "Constant" and node.output:
                const = constant_tensor(node)
                if const is not None:
                    table[node.output[0]] = Tensor([int(d) for d in const.dims], const.data_type)
                elif node.output[0] not in table:
                    table[node.output[0]] = Tensor(None, onnx.TensorProto.UNDEFINED)
    return table


def small_values(initializers, nodes, limit: int = 16) -> dict[str, list[float]]:
    """Values of small constants held in the file (Clip bounds, reduction axes, trip counts, If conditions ...), from
    ``initializers`` (TensorProtos; external ones skipped) and the Constant nodes among ``nodes``."""
    import onnx
    from onnx import numpy_helper

    tensors = [(t.name, t) for t in initializers if t.data_location != onnx.TensorProto.EXTERNAL]
    tensors += [(n.output[0], constant_tensor(n)) for n in nodes if n.op_type == "Constant" and n.output]
    out = {}
    for name, t in tensors:
        if t is None or math.prod(t.dims) > limit:
            continue
        try:
            out[name] = [float(v) for v in numpy_helper.to_array(t).reshape(-1)]
        except Exception:  # noqa: BLE001 - strings and odd types are not bounds
            continue
    return out


def constant_tensor(node):
    """The TensorProto a Constant node holds (scalars and lists converted), or None."""
    import onnx
    from onnx import helper

    for a in node.attribute:
        if a.name == "value":
            return a.t
        if a.name == "sparse_value":
            return onnx.TensorProto(dims=a.sparse_tensor.dims, data_type=a.sparse_tensor.values.data_type)
        if a.name in ("value_float", "value_int"):
            kind = onnx.TensorProto.FLOAT if a.name == "value_float" else onnx.TensorProto.INT64
            return helper.make_tensor("c", kind, [], [helper.get_attribute_value(a)])
        if a.name in ("value_floats", "value_ints"):
            vals = list(helper.get_attribute_value(a))
            kind = onnx.TensorProto.FLOAT if a.name == "value_floats" else onnx.TensorProto.INT64
            return helper.make_tensor("c", kind, [len(vals)], vals)
    return None


def attrs(node) -> dict:
    """A node's plain attributes (ints, floats, strings and lists of them); graphs and tensors are left out."""
    from onnx import helper

    out = {}
    for a in node.attribute:
        if a.type in (a.GRAPH, a.GRAPHS, a.TENSOR, a.SPARSE_TENSOR, a.TYPE_PROTO, a.TYPE_PROTOS):
            continue
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, list):
            v = [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in v]
        out[a.name] = v
    return out


def op_call(node, table: dict[str, Tensor], values: dict[str, list[float]] | None = None) -> OpCall:
    """The ``OpCall`` a formula or shape hook reads; ``values``: small constant values (``small_values``)."""
    ins = [table[n].shape if n and n in table else None for n in node.input]
    outs = [table[n].shape if n and n in table else None for n in node.output]
    vals = [values.get(n) if n and values else None for n in node.input]
    return OpCall(node.op_type, node.domain, attrs(node), ins, [bool(n) for n in node.input], outs, vals)


def out_shape(node, table: dict[str, Tensor]) -> list[int] | None:
    """The shape of a node's first output, None when unknown."""
    info = table.get(node.output[0]) if node.output else None
    return list(info.shape) if info is not None and info.shape is not None else None


def node_name(node, idx: int) -> str:
    return node.name or f"{node.op_type}_{idx}"


def opset(model) -> int | None:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _subgraph_refs(node) -> set[str]:
    """Outer-scope tensors a control-flow node's subgraphs read (implicit inputs)."""
    refs: set[str] = set()
    for _, g in subgraphs(node):
        local = {i.name for i in g.input} | {t.name for t in g.initializer}
        for n in g.node:
            refs |= {i for i in [*n.input, *_subgraph_refs(n)] if i and i not in local}
            local |= set(n.output)
        refs |= {o.name for o in g.output if o.name not in local}  # a branch may return an outer value as is
    return refs


def node_inputs(node) -> list[str]:
    """The tensors a node reads: its named inputs, and for control flow the outer tensors its subgraphs read."""
    ins = [n for n in node.input if n]
    if node.op_type in CONTROL_FLOW:
        ins += sorted(_subgraph_refs(node) - set(ins))
    return ins


def topo_order(nodes, available: set[str]) -> list:
    """The nodes in an order where each input exists before use (ONNX requires it; repair it when not)."""
    have = set(available)
    for n in nodes:
        if any(i not in have for i in node_inputs(n)):
            break
        have |= set(n.output)
    else:
        return list(nodes)
    produced = {o for n in nodes for o in n.output}
    pending, order, have = list(nodes), [], set(available)
    while pending:
        rest = []
        for n in pending:
            if all(i in have or i not in produced for i in node_inputs(n)):
                order.append(n)
                have |= set(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):  # a cycle: keep file order for the remainder
            order += rest
            break
        pending = rest
    return order


def find_cycle(graph) -> str | None:
    """The name of a node that (indirectly) consumes its own output in ``graph`` or one of its subgraphs, or None.
    ONNX graphs are acyclic; a cycle makes the file invalid (no runtime can order it). Kahn's algorithm over the
    tensors each graph produces; names a graph does not produce come from outside it (inputs, initializers, outer
    scope)."""
    for g in walk_graphs(graph):
        nodes = list(g.node)
        producer: dict[str, int] = {}
        for k, n in enumerate(nodes):
            for o in n.output:
                if o:
                    producer.setdefault(o, k)
        users: dict[int, list[int]] = {}
        waiting = []
        for k, n in enumerate(nodes):
            deps = {producer[i] for i in node_inputs(n) if i in producer}
            waiting.append(len(deps))
            for d in deps:
                users.setdefault(d, []).append(k)
        ready = [k for k, w in enumerate(waiting) if w == 0]
        done = 0
        while ready:
            k = ready.pop()
            done += 1
            for u in users.get(k, []):
                waiting[u] -= 1
                if waiting[u] == 0:
                    ready.append(u)
        if done < len(nodes):
            k = next(k for k, w in enumerate(waiting) if w > 0)
            return node_name(nodes[k], k)
    return None


# Ops whose output holds at most as many elements as their inputs together (or their broadcast): folding them from
# small constants stays small. NonZero's output is rank x nonzeros.
_NON_GROWING = {
    "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh", "BitShift",
    "BitwiseAnd", "BitwiseNot", "BitwiseOr", "BitwiseXor", "Cast", "CastLike", "Ceil", "Celu", "Clip", "Compress",
    "Concat", "Cos", "Cosh", "CumSum", "DepthToSpace", "Div", "Dropout", "Elu", "Equal", "Erf", "Exp", "Flatten",
    "Floor", "GatherElements", "Gelu", "Greater", "GreaterOrEqual", "HardSigmoid", "HardSwish", "Identity", "IsInf",
    "IsNaN", "LeakyRelu", "Less", "LessOrEqual", "Log", "LogSoftmax", "Max", "Mean", "Min", "Mish", "Mod", "Mul",
    "Neg", "NonZero", "Not", "Or", "Pow", "PRelu", "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum",
    "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "Relu",
    "Reshape", "ReverseSequence", "Round", "ScatterElements", "ScatterND", "Selu", "Shape", "Shrink", "Sigmoid", "Sign",
    "Sin", "Sinh", "Size", "Slice", "Softmax", "Softplus", "Softsign", "SpaceToDepth", "Split", "Sqrt", "Squeeze",
    "Sub", "Sum", "Tan", "Tanh", "ThresholdedRelu", "TopK", "Transpose", "Trilu", "Unique", "Unsqueeze", "Where",
    "Xor"}


def fold_bound(node, values: dict) -> int | None:
    """An upper bound on the elements a node's outputs hold when it is evaluated on the constant ``values`` of its
    inputs (numpy arrays), computed from shapes and those values without running it; None when unknown (then it must
    not be folded). Constant folding checks it before evaluating: a 200-byte file whose ConstantOfShape, Expand, Tile
    or Range asks for 2^30 elements must not allocate them."""
    import numpy as np

    ins = [values.get(i) if i else None for i in node.input]
    arrays = [np.asarray(v) for v in ins if v is not None]
    shapes = [a.shape for a in arrays]
    a = {x.name: x for x in node.attribute}
    try:
        return _fold_bound(node.op_type, ins, arrays, shapes, a)
    except (TypeError, ValueError, IndexError, KeyError, OverflowError, ZeroDivisionError):
        return None


def _numel(shape) -> int:
    return math.prod(int(d) for d in shape)


def _broadcast(*shapes) -> list[int]:
    rank = max((len(s) for s in shapes), default=0)
    padded = [[1] * (rank - len(s)) + [int(d) for d in s] for s in shapes]
    return [max(col) for col in zip(*padded)] if padded else []


def _ints(v) -> list[int]:
    import numpy as np

    out = [int(x) for x in np.asarray(v).reshape(-1)]
    if any(x < 0 for x in out):
        raise ValueError("negative size")
    return out


def _fold_bound(op: str, ins, arrays, shapes, a) -> int | None:
    import numpy as np

    if op in _NON_GROWING:
        bound = max(sum(arr.size for arr in arrays), _numel(_broadcast(*shapes)) if shapes else 0)
        return bound * max(1, max((len(s) for s in shapes), default=1)) if op == "NonZero" else bound
    if op == "ConstantOfShape":
        return _numel(_ints(ins[0]))
    if op == "Expand":
        return _numel(_broadcast(np.shape(ins[0]), _ints(ins[1])))
    if op == "Tile":
        return _numel([d * r for d, r in zip(np.shape(ins[0]), _ints(ins[1]))])
    if op == "Range":
        start, limit, delta = (float(np.asarray(v).reshape(-1)[0]) for v in ins[:3])
        return max(math.ceil((limit - start) / delta), 0)
    if op == "EyeLike":
        return int(np.asarray(ins[0]).size)
    if op == "OneHot":
        return int(np.asarray(ins[0]).size) * _ints(ins[1])[0]
    if op == "Gather":
        data, idx = np.shape(ins[0]), np.shape(ins[1])
        axis = a["axis"].i if "axis" in a else 0
        axis += len(data) if axis < 0 else 0
        return _numel(list(data[:axis]) + list(idx) + list(data[axis + 1:]))
    if op == "Pad":
        pads = _ints(ins[1]) if len(ins) > 1 and ins[1] is not None else [max(p, 0) for p in a["pads"].ints]
        return _numel([d + sum(pads) for d in np.shape(ins[0])])
    if op == "MatMul":
        x, y = np.shape(ins[0]), np.shape(ins[1])
        if len(x) < 2 or len(y) < 2:
            return max(arr.size for arr in arrays) * 2
        return _numel(_broadcast(x[:-2], y[:-2])) * x[-2] * y[-1]
    return None
