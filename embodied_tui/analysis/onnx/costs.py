"""Per-node cost of an ONNX graph (MACs, other FLOPs, elements and bytes read and written) and its live memory.

Bytes use each tensor's own dtype. Per node: activation inputs are read once, outputs written once, parameters read
as stored (through their weight sources); views (``onnx.ops.VIEW_OPS``) and Shape/Size reads are free; a Gather
from a weight table reads only the gathered rows; non-parameter constants (axes, scalars) are free.
Live memory: a tensor lives from its producer to its last consumer, graph inputs from the start, graph outputs to the
end, views share their source's buffer, static (constant-folded) tensors are excluded.
Control flow (If, Loop, Scan) costs nothing itself: its subgraph nodes are counted as nodes of their own, and
``Cost.scale`` multiplies a node's cost by the times it runs per inference (``onnx.control_flow``).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from embodied_tui.analysis.onnx.formulas import carries_macs, count, lookup
from embodied_tui.analysis.onnx.graph import node_inputs, op_call
from embodied_tui.analysis.onnx.ops import CONTROL_FLOW, COUNTED_FLOW, FORMULA_ERRORS, METADATA_OPS, VIEW_OPS

_GATHERS = ("Gather", "GatherElements", "GatherND")


@dataclass
class Cost:
    macs: int = 0
    other: int = 0
    weight_elems: int = 0
    weight_bytes: int = 0
    read_elems: int = 0
    read_bytes: int = 0
    write_elems: int = 0
    write_bytes: int = 0
    mac_unknown: bool = False  # a MAC op whose formula lacked a shape, or that has no formula
    formula: str | None = None  # the registered formula that counted the node (the coverage ledger); None: none did

    @property
    def bytes(self) -> int:
        """Everything the node reads and writes, weights included (its share of ``unfused_bytes``)."""
        return self.read_bytes + self.write_bytes + self.weight_bytes

    def scale(self, runs: int) -> None:
        """Multiply every count by ``runs`` (a node inside a loop body runs once per iteration)."""
        for name in ("macs", "other", "weight_elems", "weight_bytes", "read_elems", "read_bytes", "write_elems",
                     "write_bytes"):
            setattr(self, name, getattr(self, name) * runs)


def node_costs(nodes, table, sources, static, values=None) -> tuple[list[Cost], Counter, Counter]:
    """One Cost per node, the op types without a formula (unknown ones, MAC ops registered uncounted and uncounted
    control flow) and those whose formula lacked a shape. If/Loop/Scan nodes cost nothing: their subgraph nodes carry
    the work. ``values``: small constant values some formulas read (``onnx.graph.small_values``)."""
    costs: list[Cost] = []
    unknown_ops: Counter = Counter()
    shape_unknown: Counter = Counter()
    for node in nodes:
        c = Cost()
        costs.append(c)
        if node.op_type in COUNTED_FLOW:
            continue
        if node.op_type in CONTROL_FLOW:
            unknown_ops[node.op_type] += 1
        else:
            try:
                res = count(op_call(node, table, values))
                if res is None:
                    unknown_ops[node.op_type] += 1
                    c.mac_unknown = carries_macs(node.op_type)
                else:
                    c.macs, c.other = (int(v) for v in res)
                    c.formula = lookup(node.op_type).formula.__name__
            except FORMULA_ERRORS:
                shape_unknown[node.op_type] += 1
                c.mac_unknown = carries_macs(node.op_type)
        if node.op_type not in VIEW_OPS:
            _add_traffic(c, node, table, sources, static)
    return costs, unknown_ops, shape_unknown


def _add_traffic(c: Cost, node, table, sources, static) -> None:
    gathered = None  # a Gather from a weight table reads only the rows it gathers
    if node.op_type in _GATHERS and node.input[0] in sources and node.output:
        gathered = table.get(node.output[0])
    read: set[str] = set()
    for k, name in enumerate(node.input):
        if not name:
            continue
        if name in sources:
            for src in sources[name]:
                if src in read:
                    continue
                read.add(src)
                info = table[src]
                if k == 0 and gathered is not None:
                    elems = gathered.numel() or 0
                    c.weight_elems += elems
                    c.weight_bytes += info.nbytes(elems)
                else:
                    c.weight_elems += info.numel() or 0
                    c.weight_bytes += info.nbytes() or 0
            continue
        if name in static or name in read or node.op_type in METADATA_OPS:
            continue
        read.add(name)
        info = table.get(name)
        if info is not None and info.shape is not None:
            c.read_elems += info.numel()
            c.read_bytes += info.nbytes()
    for name in node.output:
        info = table.get(name)
        if name and info is not None and info.shape is not None:
            c.write_elems += info.numel()
            c.write_bytes += info.nbytes()


def unknown_tensors(nodes, table) -> Counter:
    """Producer op type of every activation whose shape stayed unknown."""
    out: Counter = Counter()
    for node in nodes:
        for name in node.output:
            if name and (name not in table or table[name].shape is None):
                out[node.op_type] += 1
    return out


def live_memory(nodes, table, in_names, out_names, static) -> tuple[int, int]:
    """Peak live activation bytes over the node order, and the sum of all buffers nodes write."""
    root: dict[str, str] = {}
    start: dict[str, int] = {}
    end: dict[str, int] = {}
    last = max(len(nodes) - 1, 0)
    for name in in_names:
        root[name] = name
        start[name] = end[name] = 0
    total = 0
    for i, node in enumerate(nodes):
        for name in node_inputs(node):
            r = root.get(name)
            if r is not None:
                end[r] = max(end[r], i)
        view = node.op_type in VIEW_OPS and node.input and node.input[0] in root
        for k, name in enumerate(n for n in node.output if n):
            if name in static:
                continue
            if view and k == 0:
                root[name] = root[node.input[0]]
                continue
            root[name] = name
            start[name] = end[name] = i
            if name in table:
                total += table[name].nbytes() or 0
    for name in out_names:
        if name in root:
            end[root[name]] = last
    delta = [0] * (last + 2)
    for r, s in start.items():
        size = table[r].nbytes() if r in table else None
        if size:
            delta[s] += size
            delta[end[r] + 1] -= size
    peak = live = 0
    for d in delta:
        live += d
        peak = max(peak, live)
    return peak, total
