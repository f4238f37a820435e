"""The format-neutral trace (``trace.TraceOp``) of an ONNX graph, for pattern recognition.

One TraceOp per counted node, in node order, with its kind (a ``trace.KINDS`` entry: the op registry's, refined by
context below), the ids of the ops that produced its inputs, shapes, MACs and the attributes patterns read (conv
groups and kernel, linear features, heads ...).
x * sigmoid(x) becomes one 'silu'; Identity and Dropout pass their input through, and so do If/Loop/Scan nodes: their
subgraph nodes are traced (before them), a subgraph's inputs read the values the control-flow node passes in and its
outputs are what the control-flow node returns (``aliases``). A MatMul with a constant operand is
'linear'; a Gather from a weight table is 'embedding'; a mean or max over every spatial axis is 'global_pool'.
"""
from __future__ import annotations

from collections import Counter

from embodied_tui.analysis.onnx.formulas import carries_macs, kind_of
from embodied_tui.analysis.onnx.graph import attrs as node_attrs
from embodied_tui.analysis.onnx.graph import node_name, out_shape
from embodied_tui.analysis.onnx.ops import COUNTED_FLOW
from embodied_tui.analysis.trace import TraceOp

_MATMULS = ("MatMul", "MatMulInteger", "QLinearMatMul", "FusedMatMul", "TransposeMatMul", "MatMulNBits",
            "MatMulBnb4", "DynamicQuantizeMatMul", "MatMulIntegerToFloat")


def trace(nodes, costs, table, static, graph_inputs: set[str], sources, values,
          aliases: dict[str, str] | None = None) -> list[TraceOp]:
    """One TraceOp per node of ``nodes`` (``costs`` aligned with them) except pass-throughs and fused sigmoids.
    ``aliases``: value -> the value it carries (control-flow inputs and outputs)."""
    made_by = {o: node for node in nodes for o in node.output if o}
    index = {o: k for k, node in enumerate(nodes) for o in node.output if o}
    uses = Counter(name for node in nodes for name in node.input if name)
    fused: set[str] = set()  # outputs of Sigmoids folded into the Mul that follows
    for node in nodes:
        if node.op_type == "Mul":
            for name in node.input:
                sig = made_by.get(name)
                if sig is not None and sig.op_type == "Sigmoid" and uses[name] == 1 and sig.input[0] in node.input:
                    fused.add(name)
    producer: dict[str, int] = {}
    passthrough: dict[str, str] = dict(aliases or {})
    ops: list[TraceOp] = []

    def source(name: str) -> int:
        for _ in range(len(passthrough) + 1):  # aliases may chain (nested control flow)
            if name in producer or name not in passthrough:
                break
            name = passthrough[name]
        return producer.get(name, -1 if name in graph_inputs else -2)

    for i, node in enumerate(nodes):
        if node.op_type in COUNTED_FLOW:
            continue
        if node.op_type in ("Identity", "Dropout") or (node.output and node.output[0] in fused):
            passthrough[node.output[0]] = passthrough.get(node.input[0], node.input[0])
            continue
        attrs = node_attrs(node)
        kind, op_name = _kind(node, table, static, sources, attrs, values), node.op_type
        ins = [n for n in node.input if n]
        formula, nbytes = costs[i].formula, costs[i].bytes
        if any(n in fused for n in ins):
            kind, op_name = "silu", "Sigmoid*Mul"
            for sig in (index[n] for n in ins if n in fused):  # the Sigmoid's work and bytes join the Mul's
                formula = formula if costs[sig].formula is not None else None
                nbytes += costs[sig].bytes
            ins = [n for n in ins if n not in fused]
        op = TraceOp(index=len(ops), kind=kind, op=op_name, owner=node_name(node, i),
                     inputs=[source(n) for n in ins],
                     in_shapes=[list(table[n].shape) if n in table and table[n].shape is not None else []
                                for n in ins],
                     out_shape=out_shape(node, table), macs=costs[i].macs,
                     attrs=_trace_attrs(node, kind, table, attrs),
                     formula=formula, bytes=nbytes, mac_op=carries_macs(node.op_type))
        for o in node.output:
            if o:
                producer[o] = op.index
        ops.append(op)
    return ops


def _kind(node, table, consts, sources, attrs, values) -> str:
    op = node.op_type

    def const(i):
        return values.get(node.input[i]) if len(node.input) > i and node.input[i] else None

    if op in _MATMULS:
        b = node.input[3] if op == "QLinearMatMul" else node.input[1]
        return "linear" if b in consts else "matmul"
    if op == "Gather":
        return "embedding" if node.input[0] in sources else "slice"
    if op == "Clip":
        if "min" in attrs or "max" in attrs:
            lo, hi = attrs.get("min"), attrs.get("max")
        else:
            lo, hi = ((v[0] if v else None) for v in (const(1), const(2)))
        return "relu6" if (lo, hi) == (0.0, 6.0) else "relu" if lo == 0.0 and hi is None else "other"
    if op in ("ReduceMean", "ReduceMax"):  # a mean/max over every spatial axis is a global pool
        x = table.get(node.input[0])
        axes = attrs.get("axes") or const(1)
        if x is not None and x.shape is not None and len(x.shape) >= 3 and axes:
            rank = len(x.shape)
            if sorted(int(a) % rank for a in axes) == list(range(2, rank)):
                return "global_pool"
        return "other"
    return kind_of(op)


def _trace_attrs(node, kind, table, attrs) -> dict:
    def shape(i):
        return table[node.input[i]].shape if len(node.input) > i and node.input[i] in table else None

    if kind in ("conv", "conv_transpose"):
        w = shape(3 if node.op_type == "QLinearConv" else 1)
        groups = int(attrs.get("group", 1))
        kernel = list(attrs.get("kernel_shape") or (w[2:] if w else []))
        rank = len(kernel)
        out = {"groups": groups, "kernel": kernel, "stride": list(attrs.get("strides") or [1] * rank),
               "dilation": list(attrs.get("dilations") or [1] * rank)}
        if w:
            if kind == "conv":
                out.update(in_channels=w[1] * groups, out_channels=w[0])
            else:
                out.update(in_channels=w[0], out_channels=w[1] * groups)
        return out
    if kind == "linear":
        w = shape(1)
        if w and len(w) == 2:
            trans = node.op_type == "Gemm" and attrs.get("transB", 0)
            return {"in_features": w[1] if trans else w[0], "out_features": w[0] if trans else w[1]}
        return {}
    if kind == "attention":
        return {"heads": int(attrs.get("num_heads", attrs.get("q_num_heads", 0)) or 0)}
    if kind == "embedding":
        w = shape(0)
        return {"num": w[0], "dim": w[1] if len(w) > 1 else 1} if w else {}
    if kind in ("lstm", "gru", "rnn"):
        return {"hidden": int(attrs.get("hidden_size", 0)),
                "bidirectional": attrs.get("direction", "forward") == "bidirectional"}
    if kind in ("maxpool", "avgpool"):
        return {"kernel": list(attrs.get("kernel_shape", [])), "stride": list(attrs.get("strides", []))}
    return {}
