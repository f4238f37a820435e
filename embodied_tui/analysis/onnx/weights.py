"""Which tensors of an ONNX graph are constants, which are parameters, and what follows from them.

- parameters: every initializer except int64/bool/string ones (shape, axis and index data), plus Constant-node tensors
  that look like weights: floating point, more than one element, not all equal (a zero initial state is not a weight).
  Tensors made constant by folding shape arithmetic are never parameters. Those held inside subgraphs (If branches,
  Loop/Scan bodies) count too, once each.
- static tensors: computed only from constants and shapes (runtimes constant-fold them at load time).
- weight sources: for a static tensor derived from parameters (a DequantizeLinear of an int8 weight, a Transpose or
  Cast of a weight ...), the parameters it comes from: reading it costs reading them, as stored.
- the dominant dtype and whether batch norms were folded into the convolutions at export.
"""
from __future__ import annotations

from collections import Counter

from embodied_tui.analysis.onnx.graph import BITS, constant_tensor, dtype_label, dtype_name, node_inputs, type_name
from embodied_tui.analysis.onnx.ops import CONTROL_FLOW, METADATA_OPS, VIEW_OPS

NOT_PARAMS = frozenset({"INT64", "BOOL", "STRING"})


def constants(initializers, nodes, table, folded: set[str]) -> tuple[set[str], set[str]]:
    """Constant tensors and the subset that are parameters, from ``initializers`` (those of the main graph and of
    every subgraph) and the Constant nodes among ``nodes``."""
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
