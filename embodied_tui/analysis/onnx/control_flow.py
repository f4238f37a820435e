"""Control flow (If, Loop, Scan): their subgraphs are counted, each node under its control-flow node's scope.

How a subgraph is read:
- Names. ``scope_subgraphs`` renames, in place, every value and node inside a subgraph to
  "<control-flow node>/<then|else|body>/<inner name>" ("/Loop/body/fc/Gemm"), nested ones under their parent's scope,
  so sibling branches that reuse a name stay apart, one tensor table serves every graph, and the census puts the inner
  nodes under the control-flow node ("Loop" -> "Loop.body" -> "Loop.body.fc"). Outer-scope references are kept.
- Shapes. ONNX shape inference shapes subgraphs, but it drops the shapes of a Loop's carried values (they may change
  between iterations) and so of the Loop's outputs. ``seed_shapes`` gives a Loop body's carried inputs the shapes of
  the Loop's initial values (a loop whose state keeps its shape: the usual case), a carried output the body's output
  shape when that equals the initial value's, and a scan output [trip count, *body output shape]. A loop whose state
  grows (a sequence concatenated each step) is counted at its first iteration's shapes and marked incomplete.
- Order. ``flatten`` puts each subgraph's nodes just before their control-flow node; the control-flow node itself
  costs nothing (its inner nodes do the work and the traffic) and stays in the ``layers`` count.

What is counted (``plan``; every node's cost and launches are multiplied by how often it runs per inference):
- Loop: the body x the trip count ``M`` when it is a constant (an initializer, a Constant, or folded from a static
  shape). When the body can end the loop early (its condition output is not a constant or the incoming condition),
  ``M`` is an upper bound and a note says so. When ``M`` is absent, not static, or a "no limit" sentinel (>= 2**31),
  the body is counted once, ``macs_complete`` is false and an ``uncounted`` entry gives the reason. A loop whose
  initial condition is a constant false never runs (counted x0).
- Scan (opset 9+): the body x the length of the first scan input along its scan axis; counted once and marked
  incomplete when that length is unknown.
- If: a constant condition counts only the taken branch, exactly. Otherwise the branch with more MACs is counted
  (an upper bound; ties go to then) and a note names the node and both branches' MACs per run.
- Parameters held inside subgraphs (initializers, weight-like Constants) count once each in ``params`` and
  ``weight_bytes``, those of a branch not counted included; their traffic is charged each time a node reads them.
- SequenceMap stays uncounted: its body runs once per sequence element, a length no shape gives.
onnx is imported inside the functions that need it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from embodied_tui.analysis.onnx.graph import dims, node_name, subgraphs, walk_graphs
from embodied_tui.analysis.onnx.ops import COUNTED_FLOW, SUBGRAPH_LABELS
from embodied_tui.data.records import Uncounted

NO_LIMIT = 1 << 31  # a Loop trip count this large is an exporter's "run until the condition says stop"
_NOTE_LIMIT = 8  # control-flow notes at most; the rest are summarised in one line
CONVENTION = ("control flow: Loop/Scan bodies counted x their trip count, an If counts its taken branch when the "
              "condition is constant, else the branch with more MACs (an upper bound); subgraph nodes are named "
              "<node>/<then|else|body>/<inner> and parameters inside subgraphs count once")


# ----------------------------------------------------------------------------- names

def _scope_prefix(node, label: str) -> str:
    return f"/{node.name.strip('/')}/{label}/"


def scope_subgraphs(graph) -> None:
    """Give every value and node inside a subgraph of ``graph`` a unique name under its control-flow node (in place).
    An unnamed control-flow node is named "<op>_<index>" first."""
    for k, node in enumerate(graph.node):
        subs = subgraphs(node)
        if not subs:
            continue
        if not node.name:
            node.name = f"{node.op_type}_{k}"
        for attr, g in subs:
            _rename(g, _scope_prefix(node, SUBGRAPH_LABELS.get(attr, attr)), {})


def _rename(g, prefix: str, outer: dict[str, str]) -> None:
    names = dict(outer)  # outer-scope locals renamed by an enclosing subgraph
    local = [v.name for v in g.input] + [t.name for t in g.initializer] + [o for n in g.node for o in n.output if o]
    names.update({name: prefix + name.lstrip("/") for name in local})
    for seq in (g.input, g.output, g.value_info, g.initializer):
        for v in seq:
            v.name = names.get(v.name, v.name)
    for k, node in enumerate(g.node):
        node.input[:] = [names.get(i, i) if i else i for i in node.input]
        node.output[:] = [names.get(o, o) if o else o for o in node.output]
        node.name = prefix + (node.name.lstrip("/") or f"{node.op_type}_{k}")
        scoped = [p for p in node.metadata_props if p.key != "pkg.torch.onnx.name_scopes"]  # the name says it now
        del node.metadata_props[:]
        node.metadata_props.extend(scoped)
        for attr, sub in subgraphs(node):
            _rename(sub, _scope_prefix(node, SUBGRAPH_LABELS.get(attr, attr)), names)


# ----------------------------------------------------------------------------- shapes

def _set_shape(vi, shape: list[int]) -> None:
    tt = vi.type.tensor_type
    tt.ClearField("shape")
    tt.shape.SetInParent()
    for v in shape:
        tt.shape.dim.add().dim_value = v


def _known(table, name):
    info = table.get(name) if name else None
    return info.shape if info is not None else None


def clear_carried_shapes(graph) -> None:
    """Drop the shapes a file declares for Loop/Scan body inputs (in place): after the graph inputs change size they
    are stale; ``seed_shapes`` and inference give them again."""
    for g in walk_graphs(graph):
        for node in g.node:
            if node.op_type in ("Loop", "Scan"):
                for _, body in subgraphs(node):
                    for vi in body.input[2 if node.op_type == "Loop" else 0:]:
                        vi.type.tensor_type.ClearField("shape")


def seed_shapes(model, table) -> int:
    """Shapes ONNX inference leaves out around loops (see the module docstring), added in place; the number added."""
    import onnx

    from embodied_tui.analysis.onnx.graph import small_values

    graphs = list(walk_graphs(model.graph))
    loops = [(g, n) for g in graphs for n in g.node if n.op_type in ("Loop", "Scan") and subgraphs(n)]
    if not loops:
        return 0
    values = small_values([t for g in graphs for t in g.initializer], [n for g in graphs for n in g.node])
    added = 0
    for g, node in loops:
        body = subgraphs(node)[0][1]
        if node.op_type == "Loop":
            pairs = [(vi, [] if k < 2 else _known(table, node.input[k] if k < len(node.input) else ""))
                     for k, vi in enumerate(body.input)]
        else:
            pairs = _scan_body_inputs(node, body, table)
        for vi, shape in pairs:
            if shape is not None and _known(table, vi.name) is None and dims(vi) != shape:
                _set_shape(vi, shape)
                added += 1
        outs = _loop_outputs(node, body, table, values) if node.op_type == "Loop" else []
        for name, shape in outs:
            if name and shape is not None and _known(table, name) is None:
                g.value_info.append(onnx.helper.make_tensor_value_info(name, _elem(table, name, body, node), shape))
                table.pop(name, None)
                added += 1
    return added


def _elem(table, name, body, node) -> int:
    k = list(node.output).index(name)
    src = body.output[1 + k].name if 1 + k < len(body.output) else ""
    info = table.get(name) or table.get(src)
    return info.elem if info is not None else 1


def _scan_body_inputs(node, body, table):
    n_scan = _attr(node, "num_scan_inputs", 0)
    n_state = len(node.input) - n_scan
    axes = _attr(node, "scan_input_axes", None) or [0] * n_scan
    out = []
    for k, vi in enumerate(body.input):
        shape = _known(table, node.input[k]) if k < len(node.input) else None
        if shape is not None and k >= n_state:
            j = k - n_state
            axis = axes[j] % len(shape) if j < len(axes) and shape else 0
            shape = shape[:axis] + shape[axis + 1:] if shape else None
        out.append((vi, shape))
    return out


def _loop_outputs(node, body, table, values):
    n_carried = max(len(node.input) - 2, 0)
    trip = _trip(node, values)
    out = []
    for k, name in enumerate(node.output):
        body_out = _known(table, body.output[1 + k].name) if 1 + k < len(body.output) else None
        if k < n_carried:
            initial = _known(table, node.input[2 + k])
            out.append((name, body_out if body_out is not None and body_out == initial else None))
        else:
            out.append((name, [trip, *body_out] if body_out is not None and trip is not None else None))
    return out


def _attr(node, name: str, default):
    from onnx import helper

    a = next((a for a in node.attribute if a.name == name), None)
    return default if a is None else helper.get_attribute_value(a)


def _trip(node, values) -> int | None:
    """A Loop's constant trip count ``M``, None when absent, not static or a no-limit sentinel."""
    m = node.input[0] if node.input else ""
    v = values.get(m) if m else None
    if v is None or len(v) != 1 or not 0 <= v[0] < NO_LIMIT:
        return None
    return int(v[0])


# ----------------------------------------------------------------------------- what runs how often

@dataclass
class Flat:
    """The main graph's nodes with the nodes of every If/Loop/Scan subgraph (all branches, nested ones too) placed
    just before their control-flow node; nodes are referred to by their position in ``nodes``."""

    nodes: list
    top: list[int]  # the main graph's nodes
    subs: dict[int, dict[str, list[int]]]  # control-flow node -> subgraph attribute -> that subgraph's own nodes


def flatten(nodes) -> Flat:
    flat = Flat([], [], {})

    def add(graph_nodes) -> list[int]:
        mine = []
        for node in graph_nodes:
            inner = {attr: add(list(g.node)) for attr, g in subgraphs(node)} if node.op_type in COUNTED_FLOW else {}
            flat.nodes.append(node)
            mine.append(len(flat.nodes) - 1)
            if inner:
                flat.subs[mine[-1]] = inner
        return mine

    flat.top = add(nodes)
    return flat


@dataclass
class Plan:
    """How often each node of a ``Flat`` runs per inference, and what the counter must say about it."""

    runs: list[int]  # per node of Flat.nodes: runs per inference (0: a branch not counted)
    aliases: dict[str, str] = field(default_factory=dict)  # control-flow value -> the value it carries (for the trace)
    notes: list[str] = field(default_factory=list)
    uncounted: list[Uncounted] = field(default_factory=list)
    complete: bool = True  # False when a trip count was not static or loop state changes shape


def plan(flat: Flat, table, values, unit_macs: dict[int, int], opset: int | None) -> Plan:
    """Runs per inference of every node of ``flat``: a subgraph's nodes run (their control-flow node's runs) x (its
    trip count, or 1/0 for an If branch counted/not). ``unit_macs``: node position -> MACs of one run.
    ``values``: small constant values (``onnx.graph.small_values``) for trip counts and conditions."""
    result = Plan(runs=[1] * len(flat.nodes))
    decided: dict[int, list[tuple[list[int], int]]] = {}
    said: list[str] = []

    def macs_of(members: list[int]) -> int:
        total = 0
        for i in members:
            total += unit_macs.get(i, 0)
            if i in flat.subs:
                total += sum(f * macs_of(sub) for sub, f in decide(i))
        return total

    def decide(i: int) -> list[tuple[list[int], int]]:
        if i not in decided:
            decided[i] = _decide(flat.nodes[i], flat.subs[i], table, values, opset, macs_of, result, said)
        return decided[i]

    def assign(members: list[int], runs: int) -> None:
        for i in members:
            result.runs[i] = runs
            if i in flat.subs:
                for sub, f in decide(i):
                    assign(sub, runs * f)

    assign(flat.top, 1)
    result.notes = said[:_NOTE_LIMIT]
    if len(said) > _NOTE_LIMIT:
        result.notes.append(f"... and {len(said) - _NOTE_LIMIT} more control-flow node(s) counted the same way")
    if said:
        result.notes.insert(0, CONVENTION)
    return result


def _decide(node, members: dict[str, list[int]], table, values, opset, macs_of, result: Plan,
            said: list[str]) -> list[tuple[list[int], int]]:
    """(subgraph nodes, runs per run of ``node``) for each subgraph; notes, uncounted entries and trace aliases."""
    subs = dict(subgraphs(node))
    name = node_name(node, 0)
    if node.op_type == "If":
        then_g, else_g = subs.get("then_branch"), subs.get("else_branch")
        if then_g is None or else_g is None:
            return []
        then_n, else_n = members["then_branch"], members["else_branch"]
        cond = values.get(node.input[0]) if node.input else None
        if cond is not None and len(cond) == 1:
            take_then = bool(cond[0])
            said.append(f"If {name}: condition is constant ({str(take_then).lower()}); only the "
                        f"{'then' if take_then else 'else'} branch is counted")
        else:
            then_m, else_m = macs_of(then_n), macs_of(else_n)
            take_then = then_m >= else_m
            said.append(f"If {name}: condition is data-dependent; counted the {'then' if take_then else 'else'} "
                        f"branch, the larger (then {then_m:,} MACs, else {else_m:,} MACs per run): an upper bound")
        taken = then_g if take_then else else_g
        result.aliases.update({o: b.name for o, b in zip(node.output, taken.output) if o})
        return [(then_n, 1 if take_then else 0), (else_n, 0 if take_then else 1)]
    body = subs.get("body")
    if body is None:
        return []
    body_n = members["body"]
    if node.op_type == "Loop":
        runs = _loop_runs(node, body, values, name, result, said)
        grows = [b_in.name for b_in, b_out in zip(body.input[2:], body.output[1:])
                 if None not in (_known(table, b_in.name), _known(table, b_out.name))
                 and _known(table, b_in.name) != _known(table, b_out.name)]
        if grows and runs > 1:
            _incomplete(result, said, node, f"carried value(s) {', '.join(grows)} change shape between iterations; "
                                            "every iteration is counted at the first one's shapes")
        result.aliases.update({b.name: node.input[k] for k, b in enumerate(body.input)
                               if k >= 2 and k < len(node.input) and node.input[k]})
        result.aliases.update({o: body.output[1 + k].name for k, o in enumerate(node.output)
                               if o and 1 + k < len(body.output)})
        return [(body_n, runs)]
    # Scan
    result.aliases.update({b.name: node.input[k] for k, b in enumerate(body.input) if k < len(node.input)})
    result.aliases.update({o: body.output[k].name for k, o in enumerate(node.output) if o and k < len(body.output)})
    length = _scan_length(node, table) if (opset or 9) >= 9 else None
    if length is None:
        why = ("the scanned axis length is unknown" if (opset or 9) >= 9
               else "opset 8 Scan (batched) is not supported")
        _incomplete(result, said, node, f"{why}; body counted once")
        return [(body_n, 1)]
    said.append(f"Scan {name}: body counted x{length} (the scanned axis length)")
    return [(body_n, length)]


def _loop_runs(node, body, values, name, result: Plan, said: list[str]) -> int:
    trip = _trip(node, values)
    cond = node.input[1] if len(node.input) > 1 else ""
    start = values.get(cond) if cond else None
    if start is not None and len(start) == 1 and not start[0]:
        said.append(f"Loop {name}: the condition starts false; the body never runs")
        return 0
    if trip is None:
        _incomplete(result, said, node, "trip count is data-dependent; body counted once")
        return 1
    if cond and not _keeps_going(body, values):
        said.append(f"Loop {name}: trip count at most {trip} (the body may end the loop early); body counted "
                    f"x{trip}, an upper bound")
    else:
        said.append(f"Loop {name}: body counted x{trip} (static trip count)")
    return trip


def _keeps_going(body, values) -> bool:
    """True when a Loop body's condition output is the incoming condition or a constant true (via Identity)."""
    if len(body.output) < 1 or len(body.input) < 2:
        return False
    made_by = {o: n for n in body.node for o in n.output}
    name = body.output[0].name
    for _ in range(len(body.node) + 1):
        if name == body.input[1].name:
            return True
        v = values.get(name)
        if v is not None:
            return len(v) == 1 and bool(v[0])
        producer = made_by.get(name)
        if producer is None or producer.op_type != "Identity":
            return False
        name = producer.input[0]
    return False


def _scan_length(node, table) -> int | None:
    n_scan = _attr(node, "num_scan_inputs", 0)
    n_state = len(node.input) - n_scan
    if n_scan < 1 or n_state < 0:
        return None
    shape = _known(table, node.input[n_state])
    axes = _attr(node, "scan_input_axes", None) or [0]
    if not shape:
        return None
    return shape[axes[0] % len(shape)]


def _incomplete(result: Plan, said: list[str], node, reason: str) -> None:
    name = node_name(node, 0)
    result.complete = False
    result.uncounted.append(Uncounted(module=name, op=node.op_type, reason=reason))
    said.append(f"{node.op_type} {name}: {reason}")
