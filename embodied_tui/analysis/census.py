"""The module tree with per-node params, MACs and output shape; layer-type counts; per-layer costs.

Input is format-neutral: a list of ``ModuleInfo`` (path, type, parameters owned directly) and the counter's events, so
TorchScript, ExportedProgram, eager modules and state_dicts all produce the same census.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from embodied_tui.data.records import CensusNode, LayerCost

RECURRENT_KINDS = frozenset({"lstm", "gru", "rnn"})  # op kinds of recurrent layers (both analysers)


@dataclass(slots=True)
class ModuleInfo:
    path: str  # "" for the root
    type: str
    own_params: int = 0  # parameters registered directly on this module (not its children)
    has_children: bool = False


def _parent(path: str) -> str | None:
    if path == "":
        return None
    return path.rpartition(".")[0]


def _complete(modules: list[ModuleInfo]) -> dict[str, ModuleInfo]:
    """Index by path, adding missing ancestors (e.g. from parameter names) so every node has a parent."""
    by_path = {m.path: m for m in modules}
    if "" not in by_path:
        by_path[""] = ModuleInfo("", "Model")
    for path in list(by_path):
        parent = _parent(path)
        while parent is not None:
            if parent not in by_path:
                by_path[parent] = ModuleInfo(parent, "Module")
            by_path[parent].has_children = True
            parent = _parent(parent)
    return by_path


def _ancestors(path: str):
    yield path
    while path:
        path = path.rpartition(".")[0]
        yield path


def build_census(modules: list[ModuleInfo], events=(), last_shape: dict | None = None,
                 macs_known: bool = True) -> list[CensusNode]:
    by_path = _complete(modules)
    params = dict.fromkeys(by_path, 0)
    macs = dict.fromkeys(by_path, 0)
    shape_seq: dict[str, tuple[int, list[int]]] = {}
    children = Counter(_parent(p) for p in by_path if p != "")
    for m in by_path.values():
        for anc in _ancestors(m.path):
            params[anc] += m.own_params
    for e in events:
        owner = e.owner if e.owner in by_path else _nearest(e.owner, by_path)
        for anc in _ancestors(owner):
            macs[anc] += e.macs
    for owner, (seq, shape) in (last_shape or {}).items():
        owner = owner if owner in by_path else _nearest(owner, by_path)
        for anc in _ancestors(owner):
            if anc not in shape_seq or shape_seq[anc][0] < seq:
                shape_seq[anc] = (seq, shape)
    nodes = []
    for path in _tree_order(by_path):
        m = by_path[path]
        nodes.append(CensusNode(path=path, type=m.type, params=params[path],
                                macs=macs[path] if macs_known else None,
                                output_shape=shape_seq[path][1] if path in shape_seq else None,
                                children=children.get(path, 0)))
    return nodes


def _tree_order(by_path: dict[str, ModuleInfo]) -> list[str]:
    """Depth-first, children in the order the model defines them (the order of ``modules``), not alphabetical."""
    kids: dict[str, list[str]] = {}
    for path in by_path:
        if path:
            kids.setdefault(_parent(path), []).append(path)
    order, todo = [], [""]
    while todo:
        path = todo.pop()
        order.append(path)
        todo.extend(reversed(kids.get(path, [])))
    return order


def _nearest(owner: str, by_path: dict) -> str:
    for anc in _ancestors(owner):
        if anc in by_path:
            return anc
    return ""


def layer_counts(modules: list[ModuleInfo]) -> dict[str, int]:
    """Type -> count of the modules that do work themselves: leaves and modules owning parameters directly."""
    counts = Counter(m.type for m in modules if m.path and (not m.has_children or m.own_params))
    return dict(counts.most_common())


def layer_costs(events, types: dict[str, str]) -> list[LayerCost]:
    """Aggregate op events per owning module, in first-execution order."""
    rows: dict[str, LayerCost] = {}
    steps: dict[str, int] = {}
    for e in events:
        row = rows.get(e.owner)
        if row is None:
            row = rows[e.owner] = LayerCost(name=e.owner, type=types.get(e.owner, "Module"))
        row.macs += e.macs
        row.other_flops += e.other_flops
        row.weight_elems += e.weight_elems
        row.read_elems += e.read_elems
        row.write_elems += e.write_elems
        if e.out_shape is not None:
            row.output_shape = e.out_shape
        if e.macs and e.kind in RECURRENT_KINDS:  # a recurrent layer decomposed into per-step matmuls
            steps[e.owner] = steps.get(e.owner, 0) + 1
    for owner, n in steps.items():  # on meta each step runs an input and a hidden matmul: steps = matmuls / 2,
        rows[owner].launches = max(1, n // 2)  # as ONNX's LSTM/GRU/RNN count them (time steps x directions x layers)
    return list(rows.values())


def macs_by_kind(ops) -> dict[str, int]:
    """MACs per op kind (conv, linear, matmul, attention ...), largest first; ``ops`` are counter events or trace ops."""
    kinds: dict[str, int] = {}
    for op in ops:
        if op.macs:
            kinds[op.kind] = kinds.get(op.kind, 0) + op.macs
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]))
