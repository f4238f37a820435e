"""Count an ONNX graph exactly from shapes: params, MACs, bytes, peak live memory, census tree and a trace.

Weights are never read: the file is loaded with ``load_external_data=False`` and initializer sizes come from the
TensorProto dims, so a model whose external weight files are missing is still counted (with a note); the only values
read are those of the few small float tensors that no op reads as a weight, to tell a registered buffer from a
parameter (``onnx.weights.classify``). Before counting, the graph is validated at the file's own shapes
(``onnx.validate``): one that no runtime would load is refused with "not a valid ONNX model: <reason>". Shapes come from
``onnx.shape_inference`` (``data_prop=True``) after fixing the graph inputs: symbolic dims become 1 (a user's
``input_shapes`` override the file's), and a few com.microsoft ops the ONNX checker does not know are given shapes by
their registered shape hooks. Per-op formulas and their conventions live in ``onnx.formulas`` (ops with MACs) and
``onnx.other_flops`` (the rest), registered once each in the op registry ``onnx.ops`` (formula, kind, MAC flag,
shape hook); the per-element constants are ``analysis.conventions``.

The steps, one module each: ``onnx.load`` (open the graph, stat external data), ``onnx.validate`` (refuse an invalid
graph), ``onnx.shapes`` (input shapes,
inference, static folding), ``onnx.graph`` (tensor table, node order), ``onnx.weights`` (constants, parameters,
dtype, BN folding), ``onnx.costs`` (per-node MACs and bytes, live memory), ``onnx.census`` (name scopes -> module
tree), ``onnx.trace`` (TraceOps for patterns). This module runs them and writes the notes.

Conventions of this counter:
- ``weight_bytes``: bytes (each at its own dtype) of every stored tensor: every initializer except int64 and bool ones
  (shape, axis and index data, not weights; reported in a note), plus Constant-node tensors that look like weights:
  floating point, more than one element, not all equal (a zero initial state is not a weight). ``params``: the
  elements of those that are parameters; the others (buffers and grids, quantisation scales and zero points,
  BatchNorm statistics) are ``constant_elems``/``constant_bytes`` (the rule: ``onnx.weights``). So a quantised file
  has the float model's params, and ``weight_bytes`` = params at their stored dtype (int8 weights, int32 biases) +
  the scales and zero points.
- ``dtype``: the dtype holding the most parameter elements (float32, float16, int8 for a quantised model ...); each
  layer's ``precision`` (fp32, fp16, bf16, int8 ...): its parameters' stored dtype, or for a layer without any, int8
  in a QDQ pattern, else its input's dtype (``onnx.weights.layer_precisions``).
- Constant folding: nodes that compute only from constants and shapes (Shape -> Gather -> Concat -> Reshape chains,
  an Expand of a zero state) are folded by every runtime at load time, so they carry no cost, no trace entry and no
  ``layers`` count; their outputs act as constants. Constant nodes are not counted in ``layers``.
- Bytes use each tensor's own dtype. ``unfused_bytes``: per op, activation inputs read once + outputs written once +
  parameters read; views (Reshape, Squeeze, Unsqueeze, Flatten, Identity, Dropout) and Shape/Size reads are free;
  a Gather from a weight table reads only the gathered rows; non-parameter constants (axes, scalars) are free.
  ``fused_bytes``: parameters + graph inputs + graph outputs. ``activation_bytes``: peak of live activation memory
  over the node order (a tensor lives from its producer to its last consumer, graph inputs from the start, graph
  outputs to the end, views share their source's buffer, constants excluded). ``activation_bytes_total``: every
  node output that owns a buffer, summed.
- ``bn_folded``: Conv nodes, no BatchNormalization node, at least half the Convs carry a bias, and either a Conv
  weight whose name is not a module parameter name (``*.weight``; exporters rename folded weights, e.g.
  ``onnx::Conv_16``) or a parameter named like a batch norm.
- ``census``: the module tree rebuilt from node name scopes ("/layer1/layer1.0/conv1/Conv" -> "layer1",
  "layer1.0", "layer1.0.conv1") or from the torch dynamo exporter's ``pkg.torch.onnx.name_scopes`` metadata.
  A parameter is charged to the scope of its first consumer.
- ``macs_complete`` is false when an op that carries MACs (a registered MAC op) could not be counted: its formula
  lacked a shape, or it is registered without a formula. Every node no formula counted is listed in ``uncounted``
  with its bytes (an op missing from the registry, one whose formula lacked a shape ...) and summed in the notes;
  each trace op names the formula that counted it, for the coverage ledger (``analysis.coverage``).
- Control flow (``onnx.control_flow``): If/Loop/Scan subgraph nodes are counted as nodes named
  "<node>/<then|else|body>/<inner>", each cost x the times it runs: a Loop body x its constant trip count (counted
  once, ``macs_complete`` false and an ``uncounted`` entry when the count is data-dependent), a Scan body x its
  scanned length, an If's taken branch when the condition is constant, else its branch with more MACs (an upper
  bound, with a note giving both). Parameters inside subgraphs count once. SequenceMap stays uncounted.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from embodied_tui.analysis.onnx.census import census, layer_costs
from embodied_tui.analysis.onnx.control_flow import Flat, Plan, flatten, plan, scope_subgraphs
from embodied_tui.analysis.onnx.costs import live_memory, node_costs, unknown_tensors
from embodied_tui.analysis.onnx.formulas import lookup
from embodied_tui.analysis.onnx.graph import (
    dtype_name,
    node_name,
    opset,
    small_values,
    tensor_table,
    topo_order,
    walk_graphs,
)
from embodied_tui.analysis.onnx.load import external_data, format_detail, load_graph, strip_weights
from embodied_tui.analysis.onnx.ops import CONTROL_FLOW, COUNTED_FLOW
from embodied_tui.analysis.onnx.shapes import fix_inputs, infer_with_table, set_input_shapes
from embodied_tui.analysis.onnx.trace import trace
from embodied_tui.analysis.onnx.validate import validate
from embodied_tui.analysis.onnx.weights import (
    bn_folded,
    classify,
    constants,
    dominant_dtype,
    layer_precisions,
    static_tensors,
    weight_sources,
)
from embodied_tui.analysis.scaling import sequence_dims
from embodied_tui.analysis.trace import TraceOp
from embodied_tui.data.records import CensusNode, LayerCost, Uncounted


@dataclass
class OnnxCount:
    """What the graph says; the fields mirror ``records.Analysis`` (plus ``trace`` and ``external_data_missing``)."""

    params: int
    weight_bytes: int
    dtype: str
    dtype_bytes: int
    macs: int  # of the ops that could be counted; ``macs_complete`` says whether that is all of them
    other_flops: int
    unfused_bytes: int
    fused_bytes: int
    activation_bytes: int
    activation_bytes_total: int
    macs_complete: bool = True
    format_detail: str = ""
    opset: int | None = None
    input_names: list[str] = field(default_factory=list)
    input_shapes: list[list[int]] = field(default_factory=list)
    input_symbols: list[list[str | None]] = field(default_factory=list)
    input_dtypes: list[str] = field(default_factory=list)
    input_shape_source: str = "file"  # file | user | inferred (a non-batch symbol was set to 1) | none
    output_names: list[str] = field(default_factory=list)
    output_shapes: list[list[int]] = field(default_factory=list)
    layers: dict[str, int] = field(default_factory=dict)
    census: list[CensusNode] = field(default_factory=list)
    layer_costs: list[LayerCost] = field(default_factory=list)
    bn_folded: bool = False
    external_data: list[str] = field(default_factory=list)
    external_data_bytes: int = 0
    external_data_missing: list[str] = field(default_factory=list)
    uncounted: list[Uncounted] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    trace: list[TraceOp] = field(default_factory=list)
    counter: str = "onnx-shape-inference"
    constant_elems: int = 0  # stored tensors that are not parameters (``onnx.weights``): in weight_bytes, not params
    constant_bytes: int = 0
    stripped: object = None  # with ``keep_graph``: the weightless ModelProto at the file's shapes (``macs_at``)


def count_onnx(path: str | Path, *, input_shapes: list[list[int]] | None = None, keep_graph: bool = False) -> OnnxCount:
    """Count one .onnx file (external data files beside it are stat-ed; of their contents, only small tensors no op
    reads as a weight are read, see ``onnx.weights.classify``). ``keep_graph``: when an input has a sequence-like
    symbolic dim (``analysis.scaling``), keep the weightless graph at the file's own shapes in ``stripped``, for
    ``macs_at`` (counting again at other lengths)."""
    path = Path(path)
    model = load_graph(path)
    notes: list[str] = []
    ext_files, ext_bytes, ext_missing = external_data(model, path.parent, notes)
    init_names = {t.name for t in model.graph.initializer}
    graph_inputs = [vi for vi in model.graph.input if vi.name not in init_names]
    in_names = [vi.name for vi in graph_inputs]
    input_dtypes = [dtype_name(vi.type.tensor_type.elem_type) for vi in graph_inputs]

    shapes, symbols, source = fix_inputs(graph_inputs, input_shapes, path, notes)
    scope_subgraphs(model.graph)
    not_params = classify(model, path.parent)  # the graph as the file gives it: before folding, with weights
    strip_weights(model)  # the model is edited in place from here on: only its metadata is read afterwards
    validate(model, path, notes)  # at the file's own shapes: refuse a graph no runtime would load
    stripped = None
    if keep_graph and sequence_dims(in_names, symbols, input_dtypes):  # a copy at the file's own shapes, to count
        stripped = type(model)()  # again at other sequence lengths (``onnx.scaling``)
        stripped.CopyFrom(model)
    g = _cost_graph(model, graph_inputs, shapes, path, notes, init_names)
    inferred, table, nodes, stored = g.inferred, g.table, g.nodes, g.stored
    counted, runs, costs, unknown_ops, shape_unknown, flow = g.counted, g.runs, g.costs, g.unknown_ops, \
        g.shape_unknown, g.flow
    static, sources, values = g.static, g.sources, g.values
    params = stored - not_params
    all_init_names = {t.name for t in g.inits}

    out_names = [o.name for o in inferred.graph.output]
    stored_bytes = sum(table[p].nbytes() or 0 for p in stored)
    param_elems = sum(table[p].numel() or 0 for p in params)
    const_elems = sum(table[p].numel() or 0 for p in stored - params)
    io_bytes = [table[n].nbytes() for n in in_names + out_names if n in table]
    dtype, dtype_bytes = dominant_dtype(params, table, graph_inputs)
    peak, total = live_memory(counted, table, in_names, out_names, static)

    result = OnnxCount(
        params=param_elems, weight_bytes=stored_bytes, dtype=dtype, dtype_bytes=dtype_bytes,
        macs=sum(c.macs for c in costs), other_flops=sum(c.other for c in costs),
        unfused_bytes=sum(c.read_bytes + c.write_bytes + c.weight_bytes for c in costs),
        fused_bytes=stored_bytes + sum(b or 0 for b in io_bytes),
        activation_bytes=peak, activation_bytes_total=total,
        macs_complete=not any(c.mac_unknown for c in costs) and flow.complete,
        format_detail=format_detail(model), opset=opset(model),
        input_names=in_names, input_shapes=[s or [] for s in shapes], input_symbols=symbols,
        input_dtypes=input_dtypes, input_shape_source=source, output_names=out_names,
        output_shapes=[table[n].shape or [] if n in table else [] for n in out_names],
        layers=dict(Counter(n.op_type for n in counted)),
        bn_folded=bn_folded(nodes, stored),
        external_data=ext_files, external_data_bytes=ext_bytes, external_data_missing=ext_missing,
        layer_costs=layer_costs(counted, costs, table, runs, layer_precisions(counted, table, sources, params)),
        census=census(counted, costs, table, sources, param_elems, params),
        trace=trace(counted, costs, table, static, set(in_names), sources, values, flow.aliases),
        uncounted=_uncounted(counted, costs, unknown_ops) + flow.uncounted,
        notes=notes,
        constant_elems=const_elems, constant_bytes=stored_bytes - sum(table[p].nbytes() or 0 for p in params),
        stripped=stripped,
    )
    notes.extend(flow.notes)
    notes.extend(_shape_conflicts(counted, table))
    notes.extend(_summary_notes(unknown_ops, shape_unknown, unknown_tensors(counted, table), table, stored,
                                all_init_names))
    if const_elems * 1000 >= max(param_elems, 1):  # worth a word from 0.1% of the parameters on
        notes.append(f"{len(stored - params)} stored tensor(s) that are not parameters ({const_elems} elements: "
                     "grids, masks, quantisation scales and zero points, BatchNorm statistics ...) are counted in "
                     "weight_bytes and constant_elems, not in params")
    return result


@dataclass
class _Costed:
    """The graph shaped at one set of input sizes and costed node by node (``_cost_graph``)."""

    inferred: object
    table: dict
    nodes: list
    inits: list
    stored: set
    folded: set
    static: set
    sources: dict
    values: dict
    flow: Plan
    counted: list
    runs: list
    costs: list
    unknown_ops: Counter
    shape_unknown: Counter


def _cost_graph(model, graph_inputs, shapes, path: Path, notes: list[str], init_names: set[str]) -> _Costed:
    """Shape ``model`` (weightless, edited in place) at ``shapes`` and cost every node that runs: the one costing
    pipeline, for ``count_onnx`` and ``macs_at`` alike."""
    set_input_shapes(model, graph_inputs, shapes)
    inferred, folded, table = infer_with_table(model, path, notes)
    table = table if table is not None else tensor_table(inferred)
    main = topo_order(list(inferred.graph.node), {vi.name for vi in inferred.graph.input} | init_names)
    flat = flatten(main)  # subgraph nodes (every branch) just before their control-flow node
    nodes = flat.nodes
    inits = [t for g in walk_graphs(inferred.graph) for t in g.initializer]
    consts, stored = constants(inits, nodes, table, folded)
    static = static_tensors(nodes, consts)
    sources = weight_sources(nodes, stored, static, table)
    values = small_values(inits, nodes)
    work = [i for i, n in enumerate(nodes) if n.op_type != "Constant" and not all(o in static for o in n.output if o)]
    flow = _plan_flow(flat, work, table, sources, static, values, opset(inferred))
    counted = [nodes[i] for i in work if flow.runs[i] > 0]
    runs = [flow.runs[i] for i in work if flow.runs[i] > 0]
    costs, unknown_ops, shape_unknown = node_costs(counted, table, sources, static, values)
    for c, r in zip(costs, runs):
        if r != 1:
            c.scale(r)
    return _Costed(inferred, table, nodes, inits, stored, folded, static, sources, values, flow, counted, runs, costs,
                   unknown_ops, shape_unknown)


def macs_at(stripped, shapes: list[list[int]], path: Path) -> int | None:
    """MACs of a weightless graph (``OnnxCount.stripped``) at other input ``shapes`` (one per graph input), by the same
    pipeline as ``count_onnx``; None when a MAC op could not be counted or a reshape conflicts at these sizes (the
    graph would not run at them). ``stripped`` is left as it was."""
    model = type(stripped)()
    model.CopyFrom(stripped)
    init_names = {t.name for t in model.graph.initializer}
    graph_inputs = [vi for vi in model.graph.input if vi.name not in init_names]
    g = _cost_graph(model, graph_inputs, shapes, path, [], init_names)
    if any(c.mac_unknown for c in g.costs) or not g.flow.complete or _shape_conflicts(g.counted, g.table):
        return None
    return sum(c.macs for c in g.costs)


def _plan_flow(flat: Flat, work: list[int], table, sources, static, values, version) -> Plan:
    """How often each node runs (``onnx.control_flow.plan``); every node once when there is no If/Loop/Scan."""
    if not flat.subs:
        return Plan(runs=[1] * len(flat.nodes))
    unit, _, _ = node_costs([flat.nodes[i] for i in work], table, sources, static, values)  # one run (If branches)
    return plan(flat, table, values, {i: c.macs for i, c in zip(work, unit)}, version)


def _shape_conflicts(nodes, table) -> list[str]:
    """Reshapes whose element counts disagree: the graph cannot run at these input shapes (typically an export that
    baked the example's sizes into constants), so the counts describe a graph that does not exist."""
    bad = []
    for i, node in enumerate(nodes):
        if node.op_type in ("Reshape", "Flatten", "Squeeze", "Unsqueeze") and node.input and node.output:
            src, dst = table.get(node.input[0]), table.get(node.output[0])
            if src and dst and src.numel() is not None and dst.numel() is not None and src.numel() != dst.numel():
                bad.append(f"{node_name(node, i)} ({src.shape} -> {dst.shape})")
    if not bad:
        return []
    return [f"shape conflict: {len(bad)} reshape(s) change the element count, e.g. {bad[0]}; the graph does not run "
            "at these input shapes (sizes were likely fixed at export): give the shapes it was exported with"]


def _uncounted(nodes, costs, unknown_ops) -> list[Uncounted]:
    """Nodes no formula counted, with their bytes: unknown ops, MAC ops registered without a formula, uncounted
    control flow, and nodes whose formula lacked a shape (a MAC op among them also makes ``macs_complete`` false)."""
    out = []
    for i, node in enumerate(nodes):
        if costs[i].formula is not None or node.op_type in COUNTED_FLOW:
            continue
        spec = lookup(node.op_type)
        if node.op_type not in unknown_ops:
            reason = "shape unknown after inference: its work is not counted"
        elif node.op_type in CONTROL_FLOW:
            reason = "control flow: its subgraphs are not counted"
        elif spec is not None and spec.reason:
            reason = spec.reason
        else:
            reason = "op missing from the ONNX formula table"
        out.append(Uncounted(module=node_name(node, i), op=node.op_type, reason=reason, bytes=costs[i].bytes))
    return out


def _summary_notes(unknown_ops, shape_unknown, unshaped, table, params, init_names) -> list[str]:
    def listing(counts: Counter) -> str:
        return ", ".join(f"{op} x{n}" for op, n in sorted(counts.items()))

    notes = []
    if unknown_ops:
        notes.append("not counted: " + listing(unknown_ops))
    if shape_unknown:
        notes.append("shape unknown after inference, work left out for: " + listing(shape_unknown))
    if unshaped:
        notes.append(f"{sum(unshaped.values())} activation shape(s) unknown after inference (outputs of "
                     + listing(unshaped) + "); their bytes are not counted")
    skipped = [n for n in init_names if n not in params]
    if skipped:
        elems = sum(table[n].numel() or 0 for n in skipped)
        notes.append(f"{len(skipped)} int64/bool initializer(s) ({elems} elements of shape/index data) are not "
                     "counted as parameters")
    return notes
