"""The module tree of an ONNX graph, rebuilt from node name scopes, and its per-node layer costs.

Scopes come from node names ("/layer1/layer1.0/conv1/Conv" -> "layer1", "layer1.0", "layer1.0.conv1") or from the
torch dynamo exporter's ``pkg.torch.onnx.name_scopes`` / ``class_hierarchy`` metadata. A node's MACs and output shape
go to every scope that holds it; a parameter is charged to the scope of its first consumer. Nodes inside If/Loop/Scan
subgraphs are named "<node>/<then|else|body>/<inner>" (``onnx.control_flow``), so they sit under their control-flow
node's scope with their MACs already multiplied by the times they run.
"""
from __future__ import annotations

import ast

from embodied_tui.analysis.onnx.graph import node_name, out_shape
from embodied_tui.data.records import CensusNode, LayerCost


def scope_paths(parts: list[str]) -> list[str]:
    """Dotted paths of nested scope components: ["layer1", "layer1.0", "conv1"] -> layer1, layer1.0, layer1.0.conv1.

    Exporters name a child of a container relative to the container's own parent ("seq" then "seq.0"), so a component
    that extends the previous one replaces it rather than being appended."""
    paths, path, prev = [], "", None
    for part in parts:
        if prev is not None and part.startswith(prev + "."):
            path = path[: len(path) - len(prev)] + part
        else:
            path = f"{path}.{part}" if path else part
        paths.append(path)
        prev = part
    return paths


_META_LIMIT = 1 << 16  # characters of one metadata value parsed; a module path list is far shorter


def _str_list(text: str) -> list[str] | None:
    """A metadata value holding a Python list of strings ("['', 'layer1', 'layer1.0']"), or None when it is anything
    else: too long, deeply nested (RecursionError), not a literal, not a list, or a list of something else."""
    if not isinstance(text, str) or len(text) > _META_LIMIT:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        return None
    return list(value)


def _scope(node) -> tuple[list[str], list[str], str]:
    """Module paths (outermost first), their class names ("" when unknown) and the root's class for one node."""
    meta = {p.key: p.value for p in node.metadata_props}
    if "pkg.torch.onnx.name_scopes" in meta:
        names = _str_list(meta["pkg.torch.onnx.name_scopes"])
        classes = _str_list(meta.get("pkg.torch.onnx.class_hierarchy", "[]")) or []
        if names is not None:
            short = [c.rsplit(".", 1)[-1] for c in classes]
            paths = scope_paths(list(names[1:-1]))
            kinds = dict(zip(paths, short[1:-1]))
            weight = node.input[1] if len(node.input) > 1 else ""
            if "BatchNorm" in meta.get("pkg.onnxscript.rewriter.rule_name", "") and weight.endswith(".weight"):
                # a conv the exporter fused with its batch norm keeps the norm's scope; its weight names the conv
                module = weight[: -len(".weight")].split(".")
                paths = [".".join(module[: i + 1]) for i in range(len(module))]
            return paths, [kinds.get(p, "") for p in paths], (short[0] if short else "")
    if node.name.startswith("/"):
        return scope_paths([p for p in node.name.split("/") if p][:-1]), [], ""
    return [], [], ""


def census(nodes, costs, table, sources, total_params: int, params: set[str] | None = None) -> list[CensusNode]:
    """One CensusNode per scope (the root "" first) with its params (of the stored tensors it reads, those in
    ``params`` when given), MACs (None when one of its ops' MACs is unknown), last output shape and number of child
    scopes."""
    entries: dict[str, dict] = {"": {"type": "Model", "params": 0, "macs": 0, "shape": None, "ops": [],
                                     "children": 0}}
    charged: set[str] = set()
    for i, node in enumerate(nodes):
        paths, classes, root_cls = _scope(node)
        if root_cls and entries[""]["type"] == "Model":
            entries[""]["type"] = root_cls
        for j, p in enumerate(paths):
            if p not in entries:
                parent = paths[j - 1] if j else ""
                entries[parent]["children"] += 1
                entries[p] = {"type": classes[j] if j < len(classes) else "", "params": 0, "macs": 0,
                              "shape": None, "ops": [], "children": 0}
        own = [""] + paths
        c = costs[i]
        mine = {s for n in node.input if n for s in sources.get(n, ()) if params is None or s in params} - charged
        weight = sum(table[src].numel() or 0 for src in mine)
        charged |= mine
        shape = out_shape(node, table)
        for p in own:
            e = entries[p]
            e["params"] += weight
            e["macs"] = None if e["macs"] is None or c.mac_unknown else e["macs"] + c.macs
            if shape is not None:
                e["shape"] = list(shape)
        entries[own[-1]]["ops"].append(node.op_type)
    entries[""]["params"] = total_params  # includes parameters no node reads
    out = []
    for path, e in entries.items():
        kind = e["type"] or (e["ops"][0] if len(e["ops"]) == 1 and not e["children"] else "Module")
        out.append(CensusNode(path=path, type=kind, params=e["params"], macs=e["macs"], output_shape=e["shape"],
                              children=e["children"]))
    return out


def launches(node, table) -> int:
    """Matrix kernels a node runs per inference: time steps x directions for LSTM/GRU/RNN (X is (seq, batch, input),
    or (batch, seq, input) with layout 1; W is (directions, gates x hidden, input)), 1 for every other node."""
    if node.op_type not in ("LSTM", "GRU", "RNN", "DynamicQuantizeLSTM") or len(node.input) < 2:
        return 1
    x, w = table.get(node.input[0]), table.get(node.input[1])
    if x is None or w is None or x.shape is None or w.shape is None or len(x.shape) != 3 or not w.shape:
        return 1
    layout = next((a.i for a in node.attribute if a.name == "layout"), 0)
    seq, dirs = x.shape[1] if layout else x.shape[0], w.shape[0]
    return seq * dirs if isinstance(seq, int) and isinstance(dirs, int) and seq * dirs > 0 else 1


def layer_costs(nodes, costs, table, runs: list[int] | None = None,
                precisions: list[str | None] | None = None) -> list[LayerCost]:
    """One LayerCost per node that computes or moves data. ``runs``: times each node runs per inference (a loop
    body's nodes run once per iteration; their costs are already multiplied), which multiplies its launches;
    ``precisions``: the precision each node computes in (``onnx.weights.layer_precisions``)."""
    out = []
    for i, node in enumerate(nodes):
        c = costs[i]
        if not (c.macs or c.other or c.weight_elems or c.read_elems or c.write_elems):
            continue
        out.append(LayerCost(name=node_name(node, i), type=node.op_type, macs=c.macs, other_flops=c.other,
                             weight_elems=c.weight_elems, read_elems=c.read_elems, write_elems=c.write_elems,
                             output_shape=out_shape(node, table),
                             launches=launches(node, table) * (runs[i] if runs else 1),
                             precision=precisions[i] if precisions else None))
    return out
