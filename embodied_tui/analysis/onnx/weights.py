"""Which tensors of an ONNX graph are constants, which are parameters, and what follows from them.

- stored tensors (``weight_bytes``): every initializer except int64/bool/string ones (shape, axis and index data),
  plus Constant-node tensors that look like weights: floating point, more than one element, not all equal (a zero
  initial state is not a weight). Tensors made constant by folding shape arithmetic are never stored tensors. Those
  held inside subgraphs (If branches, Loop/Scan bodies) count too, once each.
- parameters (``params``): the stored tensors a PyTorch module would hold as ``nn.Parameter``; the rest are constants
  (``constant_elems``/``constant_bytes``: buffers and values the exporter computed, still in ``weight_bytes``, as torch
  counts buffers there). ``classify`` decides from the graph as the file gives it, before any folding. In order:
  1. read as a weight (``WEIGHT_SLOTS``: any input of a conv/linear/matmul/attention/recurrent op, the scale and bias
     of a normalisation, an embedding Gather's table, PRelu's slope; directly or through Q/DQ, Cast, Transpose,
     Reshape and other pass-through ops) -> parameter;
  2. a Constant node -> constant (a grid, mask or table computed in ``forward`` and folded by the exporter);
  3. read only as quantisation data (the scales and zero points of Q/DQ and quantised ops, a weight scale multiplied
     with DynamicQuantizeLinear's input scale) or as BatchNorm running statistics -> constant;
  4. an initializer whose values lie on a half-integer lattice other than 0/1 (``arange`` grids, anchors and strides
     in pixels, -100/-inf masks: a registered buffer, or a grid the exporter folded) -> constant; learned values never
     do, and a freshly initialised affine (all ones or zeros) stays a parameter. The values are read for these
     candidates only, and from an external data file only when small (``_EXTERNAL_MAX``);
  5. anything else (a module tensor read by elementwise ops: a position embedding, a class token, a layer scale, an
     affine applied by Mul/Add, also when the exporter folded it under a name of its own such as ``onnx::Mul_1061``,
     and a gathered relative-position bias, which holds the parameter table's values) -> parameter.
  Limits: a buffer whose values are not on the lattice (a sinusoidal position table) counts as a parameter, as a
  position embedding does; a tensor computed in ``forward`` counts as a parameter when the exporter stored it as an
  initializer with learned-looking values (the dynamo exporter's lifted constants).
- static tensors: computed only from constants and shapes (runtimes constant-fold them at load time).
- weight sources: for a static tensor derived from parameters (a DequantizeLinear of an int8 weight, a Transpose or
  Cast of a weight ...), the parameters it comes from: reading it costs reading them, as stored.
- the dominant dtype and whether batch norms were folded into the convolutions at export.
"""
from __future__ import annotations

import math
import os
import stat
from collections import Counter
from pathlib import Path

from embodied_tui.analysis.onnx.formulas import carries_macs
from embodied_tui.analysis.onnx.graph import (
    BITS,
    constant_tensor,
    dtype_label,
    dtype_name,
    node_inputs,
    subgraphs,
    type_name,
)
from embodied_tui.analysis.onnx.ops import CONTROL_FLOW, METADATA_OPS, VIEW_OPS

NOT_PARAMS = frozenset({"INT64", "BOOL", "STRING"})

# input slots that hold weights, for ops where not every input does; any other op registered with MACs: every input
WEIGHT_SLOTS: dict[str, tuple[int, ...]] = {
    "LSTM": (1, 2, 3, 7), "GRU": (1, 2, 3), "RNN": (1, 2, 3), "DynamicQuantizeLSTM": (1, 2, 3, 7),
    "QLinearConv": (3, 8), "QLinearMatMul": (0, 3), "QGemm": (0, 3, 6), "MatMulInteger": (0, 1), "ConvInteger": (0, 1),
    "DynamicQuantizeMatMul": (0, 1, 4), "MatMulIntegerToFloat": (0, 1, 6), "QAttention": (1, 2),
    "MatMulNBits": (1, 5), "MatMulBnb4": (1,), "Attention": (1, 2), "MultiHeadAttention": (3,),
    "GroupQueryAttention": (14, 15),
    "BatchNormalization": (1, 2), "LayerNormalization": (1, 2), "InstanceNormalization": (1, 2),
    "GroupNormalization": (1, 2), "GroupNorm": (1, 2), "SimplifiedLayerNormalization": (1,), "RMSNormalization": (1,),
    "SkipLayerNormalization": (2, 3, 4), "SkipSimplifiedLayerNormalization": (2, 3),
    "PRelu": (1,), "Gather": (0,),
}
# ops that pass a weight through to their output (input 0; Concat: every input), so what feeds them is a weight when
# what they make is one
PASS_THROUGH = frozenset({"DequantizeLinear", "QuantizeLinear", "Cast", "CastLike", "Transpose", "Reshape",
                          "Squeeze", "Unsqueeze", "Flatten", "Identity", "Dropout", "Expand", "Concat", "Slice",
                          "Split", "Tile", "Gather"})
_LATTICE_MAX = 1 << 22  # elements: larger stored tensors are not read for rule 4 (they stay parameters)
_EXTERNAL_MAX = 1 << 20  # elements of one externally stored candidate read for rule 4, and 64 MiB in all
_EXTERNAL_BUDGET = 64 << 20
_FLOATS = frozenset({"FLOAT", "FLOAT16", "BFLOAT16", "DOUBLE"})


def _all_nodes(graph):
    """Every node, subgraph nodes before their control-flow node (a consumer always after its producer)."""
    for node in graph.node:
        for _, sub in subgraphs(node):
            yield from _all_nodes(sub)
        yield node


def _weight_slots(node) -> tuple[int, ...] | None:
    """The input slots ``node`` reads weights from, None when it reads none."""
    slots = WEIGHT_SLOTS.get(node.op_type)
    if slots is not None:
        return slots
    return tuple(range(len(node.input))) if carries_macs(node.op_type) else None


def _reads(nodes) -> tuple[set[str], set[str]]:
    """Tensors read as weights (rule 1) and tensors read as quantisation data or statistics (rule 3), each followed
    back through pass-through ops."""
    weights: set[str] = set()
    data: set[str] = set()
    dq_scales = {n.output[1] for n in nodes if n.op_type == "DynamicQuantizeLinear" and len(n.output) > 1}
    for _ in range(4):  # one pass suffices for a sorted graph; a few more repair an unsorted one
        before = (len(weights), len(data))
        for node in reversed(nodes):
            ins = list(node.input)
            if node.op_type in PASS_THROUGH and any(o in weights for o in node.output if o):
                passed = range(len(ins)) if node.op_type == "Concat" else (0,)
                weights |= {ins[k] for k in passed if k < len(ins) and ins[k]}
            if node.op_type in PASS_THROUGH and any(o in data for o in node.output if o) and ins and ins[0]:
                data.add(ins[0])
            if node.op_type in ("DequantizeLinear", "QuantizeLinear"):
                data |= {i for i in ins[1:] if i}
            elif node.op_type == "Gather":
                weights |= {ins[0]} if ins and ins[0] else set()
            elif node.op_type == "Mul" and any(i in dq_scales for i in ins):  # input scale x weight scale
                data |= {i for i in ins if i and i not in dq_scales}
            elif (slots := _weight_slots(node)) is not None:
                weights |= {ins[k] for k in slots if k < len(ins) and ins[k]}
                data |= {i for k, i in enumerate(ins) if i and k not in slots and k > 0}
        if (len(weights), len(data)) == before:
            break
    return weights, data


def _lattice(arr) -> bool:
    """Values of a registered buffer rather than learned weights: all on the half-integer lattice (or infinite),
    and not all in {0, 1} (a freshly initialised affine)."""
    import numpy as np

    a = np.asarray(arr, dtype=np.float64).reshape(-1)
    if a.size == 0:
        return False
    finite = a[np.isfinite(a)]
    if finite.size and not np.all(2 * finite == np.round(2 * finite)):
        return False
    return not np.all((a == 0) | (a == 1))


def classify(model, base: Path | None = None) -> set[str]:
    """The names of the stored tensors (initializers and Constant-node outputs, subgraphs included) that are
    constants, not parameters (rules 2-4 of the module doc). Reads the values of rule 4's candidates only, so call it
    before the weights are stripped; ``base``: the model's folder, where small external candidates are read."""
    import onnx
    from onnx import numpy_helper

    from embodied_tui.analysis.onnx.graph import walk_graphs

    nodes = list(_all_nodes(model.graph))
    weights, data = _reads(nodes)
    out = {n.output[0] for n in nodes if n.op_type == "Constant" and n.output and n.output[0] not in weights}
    budget = [_EXTERNAL_BUDGET]
    for t in (t for g in walk_graphs(model.graph) for t in g.initializer):
        if t.name in weights:
            continue
        if t.name in data:  # rule 3
            out.add(t.name)
            continue
        if type_name(t.data_type) not in _FLOATS or math.prod(t.dims) > _LATTICE_MAX:
            continue
        try:
            if t.data_location == onnx.TensorProto.EXTERNAL:
                arr = _external_values(t, base, budget)
            else:
                arr = numpy_helper.to_array(t)
            if arr is not None and _lattice(arr):  # rule 4
                out.add(t.name)
        except Exception:  # noqa: BLE001 - unreadable values: keep it a parameter
            continue
    return out


def _external_values(t, base: Path | None, budget: list[int]):
    """The values of a small externally stored float tensor, read from its regular file inside ``base`` (load_graph
    has refused any other location), or None (too large, over the budget, missing, or of another dtype)."""
    import numpy as np

    from embodied_tui.hashing import within

    kinds = {"FLOAT": np.float32, "FLOAT16": np.float16, "DOUBLE": np.float64}
    dtype = kinds.get(type_name(t.data_type))
    n = math.prod(t.dims)
    if base is None or dtype is None or n > _EXTERNAL_MAX:
        return None
    info = {e.key: e.value for e in t.external_data}
    size = n * np.dtype(dtype).itemsize
    path = within(base, info.get("location", ""))
    if size > budget[0] or int(info.get("length", size)) != size or path is None:
        return None
    if not stat.S_ISREG(os.stat(path).st_mode):
        return None
    budget[0] -= size
    with open(path, "rb") as fh:
        fh.seek(int(info.get("offset", 0)))
        raw = fh.read(size)
    return np.frombuffer(raw, dtype=dtype).astype(np.float64) if len(raw) == size else None


def constants(initializers, nodes, table, folded: set[str]) -> tuple[set[str], set[str]]:
    """Constant tensors and the subset that is stored (read like weights: ``weight_bytes``), from ``initializers``
    (those of the main graph and of every subgraph) and the Constant nodes among ``nodes``. Which stored tensors are
    parameters: ``classify``."""
    from onnx import numpy_helper

    consts = {t.name for t in initializers}
    params = {t.name for t in initializers if table[t.name].type_name not in NOT_PARAMS}
    for node in nodes:
        if node.op_type != "Constant" or not node.output:
            continue
        consts.add(node.output[0])
        if node.output[0] in folded:
            continue
        const = constant_tensor(node)
        info = table.get(node.output[0])
        if const is None or info is None or info.numel() is None or info.numel() < 2:
            continue
        if dtype_name(const.data_type).startswith(("float", "bfloat")):
            try:
                arr = numpy_helper.to_array(const)
                filled = arr.size > 0 and bool((arr == arr.flat[0]).all())
            except Exception:  # noqa: BLE001 - external or unusual data: count it
                filled = False
            if not filled:
                params.add(node.output[0])
    return consts, params


def static_tensors(nodes, consts: set[str]) -> set[str]:
    """Tensors computed only from constants and shapes (constant-folded by runtimes), constants included."""
    static = set(consts)
    for node in nodes:
        ins = node_inputs(node)
        if node.op_type in METADATA_OPS or node.op_type == "Constant" or (ins and all(i in static for i in ins)):
            if node.op_type not in CONTROL_FLOW and node.domain in ("", "ai.onnx"):
                static |= {o for o in node.output if o}
    return static


def weight_sources(nodes, params: set[str], static: set[str], table) -> dict[str, tuple[str, ...]]:
    """Parameter -> itself, and every static tensor derived from parameters -> the parameters it comes from. A view
    of a weight missing from ``table`` is added to it (in place) with its source's shape."""
    sources: dict[str, tuple[str, ...]] = {p: (p,) for p in params}
    for node in nodes:
        outs = [o for o in node.output if o]
        if not outs or not all(o in static for o in outs) or node.op_type in METADATA_OPS:
            continue
        srcs = tuple(dict.fromkeys(s for i in node.input if i for s in sources.get(i, ())))
        if srcs:
            for o in outs:
                sources[o] = srcs
            if node.op_type in VIEW_OPS and outs[0] not in table and node.input[0] in table:
                table[outs[0]] = table[node.input[0]]
    return sources


def dominant_dtype(params, table, graph_inputs) -> tuple[str, int]:
    """The dtype holding the most parameter elements and its bytes per element (the first floating-point graph input's
    dtype, else float32, when there are no parameters)."""
    by_type: Counter = Counter()
    for p in params:
        info = table[p]
        if info.type_name not in ("INT32", "UINT32"):  # int32 tensors are quantised biases, not the weight dtype
            by_type[info.type_name] += info.numel() or 0
    if by_type:
        name = by_type.most_common(1)[0][0]
    else:
        floats = ("FLOAT", "FLOAT16", "BFLOAT16", "DOUBLE")
        name = next((n for n in (type_name(vi.type.tensor_type.elem_type) for vi in graph_inputs) if n in floats),
                    "FLOAT")
    return dtype_label(name), max(1, BITS.get(name, 32) // 8)


def bn_folded(nodes, params) -> bool:
    """True when batch norms were folded into the convs at export. Rule: Conv nodes and no BatchNormalization node,
    and either an exporter rewrite says so (``pkg.onnxscript.rewriter.rule_name`` mentions BatchNorm), or at least
    half of the Convs carry a bias and a biased Conv's weight or bias is not named like a module parameter
    (``<module>.weight`` / ``<module>.bias``: folding makes new tensors, e.g. ``onnx::Conv_16``, ``x.weight_bias``),
    or a parameter is named like a batch norm."""
    convs = [n for n in nodes if n.op_type == "Conv"]
    if not convs or any(n.op_type == "BatchNormalization" for n in nodes):
        return False
    if any("BatchNorm" in p.value for n in convs for p in n.metadata_props
           if p.key == "pkg.onnxscript.rewriter.rule_name"):
        return True
    biased = [n for n in convs if len(n.input) > 2 and n.input[2]]
    if len(biased) * 2 < len(convs):
        return False
    renamed = any(not n.input[1].endswith(".weight") or not n.input[2].endswith(".bias") for n in biased)
    bn_named = any(any(k in p.lower() for k in ("bn", "batchnorm", "running_")) for p in params)
    return renamed or bn_named


# precision labels of the roofline (perf/roofline.py) by ONNX DataType name
_PRECISIONS = {"FLOAT": "fp32", "FLOAT16": "fp16", "BFLOAT16": "bf16", "DOUBLE": "fp64", "INT8": "int8",
               "UINT8": "int8", "INT4": "int4", "UINT4": "int4", "INT16": "int16", "UINT16": "int16",
               "INT32": "int32", "UINT32": "int32", "INT64": "int64", "UINT64": "int64", "BOOL": "bool",
               "FLOAT4E2M1": "fp4"}
_INTEGER_OPS = frozenset({"QGemm", "QAttention", "MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul",
                          "MatMulIntegerToFloat", "DynamicQuantizeLSTM", "DynamicQuantizeLinear"})


def precision_label(name: str) -> str:
    """A DataType name as a precision: "FLOAT" -> "fp32", "INT8"/"UINT8" -> "int8", "FLOAT8E4M3FN" -> "fp8"."""
    return _PRECISIONS.get(name, "fp8" if name.startswith("FLOAT8") else name.lower())


def layer_precisions(nodes, table, sources, params: set[str]) -> list[str | None]:
    """The precision each node computes in: its parameters' stored dtype (int32 biases aside; the one holding the
    most elements); for a node without parameters, int8 when it is a quantised op or its input comes from a
    DequantizeLinear of 8-bit data (the QDQ pattern a runtime fuses into an int8 kernel), else its first input's
    dtype. MatMulNBits: int<bits>. None where no dtype is known."""
    made_by = {o: n for n in nodes for o in n.output if o}
    out: list[str | None] = []
    for node in nodes:
        if node.op_type in ("MatMulNBits", "MatMulBnb4"):
            bits = next((a.i for a in node.attribute if a.name == "bits"), 4)
            out.append(f"int{bits}")
            continue
        held: Counter = Counter()
        for name in (i for i in node.input if i):
            for src in sources.get(name, ()):
                info = table.get(src)
                if src in params and info is not None and info.type_name not in ("INT32", "UINT32", "INT64"):
                    held[info.type_name] += info.numel() or 0
        if held:
            out.append(precision_label(held.most_common(1)[0][0]))
        elif node.op_type.startswith("QLinear") or node.op_type in _INTEGER_OPS:
            out.append("int8")
        else:
            out.append(_activation_precision(node, table, sources, made_by))
    return out


def _activation_precision(node, table, sources, made_by) -> str | None:
    for name in (i for i in node.input if i and i not in sources):
        src = made_by.get(name)
        if src is not None and src.op_type == "DequantizeLinear" and src.input:
            info = table.get(src.input[0])
            if info is not None and info.type_name in ("INT8", "UINT8"):
                return "int8"
        info = table.get(name)
        if info is not None and info.elem:
            return precision_label(info.type_name)
    info = table.get(node.output[0]) if node.output else None
    return precision_label(info.type_name) if info is not None and info.elem else None
