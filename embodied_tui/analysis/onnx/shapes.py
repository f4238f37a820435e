"""Shapes for every tensor of an ONNX graph: fix the graph inputs, then run shape inference until nothing new is learnt.

Inputs: a user's ``input_shapes`` override the file's; a symbolic dim becomes 1 (and the source ``inferred`` unless it
names a batch). Inference: ``onnx.shape_inference`` with ``data_prop=True``, continued past com.microsoft ops the
checker does not know (their registered shape hooks, ``onnx.ops``) and past shape arithmetic data propagation does
not follow
(nodes computing only from small constants and known shapes are folded into Constant nodes, as runtimes do at load
time; a node left unshaped whose inputs are now shaped is shaped on the spot by its own ONNX inference function, so
a chain of reshapes computed from ``Shape`` ops, one per block as in Swin's window attention, is followed in one
pass instead of one block per round). A node not folded because its result would exceed ``_FOLD_LIMIT`` elements is
named in a note when a shape stays unknown. ONNX's data propagation runs only while every size is small
(``_PROP_DIM``). Subgraphs (If branches, Loop/Scan bodies) are shaped by the same inference, and their own shape
arithmetic folded the same way; ``onnx.control_flow.seed_shapes`` adds the loop-carried shapes inference leaves out. onnx and
numpy are imported inside the functions that need them.
"""
from __future__ import annotations

import math
from pathlib import Path

from embodied_tui.analysis.onnx.control_flow import clear_carried_shapes, seed_shapes
from embodied_tui.analysis.onnx.formulas import lookup
from embodied_tui.analysis.onnx.graph import (
    Tensor,
    constant_tensor,
    dims,
    op_call,
    opset,
    small_values,
    subgraphs,
    tensor_table,
    walk_graphs,
)
from embodied_tui.analysis.onnx.ops import CONTROL_FLOW, FORMULA_ERRORS, METADATA_OPS
from embodied_tui.analysis.scaling import is_batch_like
from embodied_tui.errors import AnalysisError

_ROUNDS = 6  # inference + hooks + folding rounds at most
_FOLD_LIMIT = 1 << 16  # elements: shape arithmetic is small; never materialise activations or weights
# ONNX's data propagation (``data_prop``) keeps the values of 1-D integer tensors as shape data, ~150 bytes per element,
# even for a Cast of a graph input: it runs only while no dimension or small integer constant exceeds this
_PROP_DIM = 1 << 18
_NO_FOLD = ("Random", "Bernoulli", "Multinomial")
def fix_inputs(graph_inputs, user: list[list[int]] | None, path: Path, notes: list[str]):
    """Concrete input shapes (None where the file gives none), the file's symbols, and the shape source."""
    if user is not None and len(user) != len(graph_inputs):
        names = ", ".join(i.name for i in graph_inputs)
        raise AnalysisError(f"{path}: got {len(user)} input shape(s) for {len(graph_inputs)} input(s) ({names}); "
                            "give one --input-shape per input")
    shapes, symbols, source = [], [], ("user" if user is not None else "file")
    for k, vi in enumerate(graph_inputs):
        file_dims = dims(vi)
        symbols.append([None if isinstance(d, int) else (d or "?") for d in file_dims]
                       if file_dims is not None else [])
        if user is not None:
            shape = [int(v) for v in user[k]]
            if any(v <= 0 for v in shape) or (file_dims is not None and len(file_dims) != len(shape)):
                want = f"rank {len(file_dims)}" if file_dims is not None else "positive dims"
                shown = [d if isinstance(d, int) else (d or "?") for d in file_dims or []]
                raise AnalysisError(f"{path}: input shape {shape} for '{vi.name}' does not fit the file ({want}, "
                                    f"file shape {shown}); fix --input-shape")
            shapes.append(shape)
            continue
        if file_dims is None:
            notes.append(f"input '{vi.name}' has no shape in the file; counts that depend on it are missing "
                         "(pass --input-shape)")
            shapes.append(None)
            source = "none" if len(graph_inputs) == 1 else source
            continue
        shape = []
        for axis, d in enumerate(file_dims):
            if isinstance(d, int):
                shape.append(d)
                continue
            shape.append(1)
            if not is_batch_like(d, axis):
                source = "inferred"
                notes.append(f"input '{vi.name}' dim {axis} ('{d or '?'}') is symbolic; counted at 1 "
                             "(pass --input-shape for a real size)")
        shapes.append(shape)
    return shapes, symbols, source


def set_input_shapes(model, graph_inputs, shapes: list[list[int] | None]) -> None:
    """Write the fixed shapes into the graph inputs (in place). When one changes, shapes the file declares at other
    sizes would win over the new ones: they are dropped so inference redoes them, except outputs of custom-domain ops,
    which ONNX inference cannot redo."""
    changed = False
    for vi, shape in zip(graph_inputs, shapes):
        if shape is not None and dims(vi) != shape:
            tt = vi.type.tensor_type
            tt.ClearField("shape")
            for v in shape:
                tt.shape.dim.add().dim_value = v
            changed = True
    if not changed:
        return
    graphs = list(walk_graphs(model.graph))
    custom = {o for g in graphs for n in g.node if n.domain not in ("", "ai.onnx") for o in n.output}
    for g in graphs:
        keep = [vi for vi in g.value_info if vi.name in custom]
        del g.value_info[:]
        g.value_info.extend(keep)
        for out in g.output:
            if out.name not in custom:
                out.type.tensor_type.ClearField("shape")
    clear_carried_shapes(model.graph)


def infer(model, path: Path, notes: list[str]):
    """Shape inference, continued past ops with a shape hook and folded shape arithmetic for a few rounds at most.
    Returns the inferred model and the names of tensors made constant by folding."""
    inferred, folded, _ = infer_with_table(model, path, notes)
    return inferred, folded


def infer_with_table(model, path: Path, notes: list[str]):
    """``infer``, and the inferred model's ``tensor_table`` when the last round left it current (None otherwise)."""
    import onnx

    folded: set[str] = set()
    skipped: dict[str, None] = {}  # nodes not folded because of the element bound (ordered, unique)
    table = current = None
    version = opset(model) or 17
    for _ in range(_ROUNDS):
        try:
            model = onnx.shape_inference.infer_shapes(model, data_prop=_data_prop_safe(model, table))
        except Exception as exc:  # noqa: BLE001 - keep what the file declares, and say so
            first = (str(exc).splitlines() or [""])[0][:160]
            if "2GB" in first:  # in-memory model over the protobuf limit: infer from the file itself
                return _infer_from_file(model, path, notes), folded, None
            notes.append(f"shape inference failed ({type(exc).__name__}: {first}); using the shapes the file "
                         "declares")
            break
        table = tensor_table(model)
        progress = _apply_shape_hooks(model, table) + seed_shapes(model, table)
        if any(o and (o not in table or table[o].shape is None)
               for g in walk_graphs(model.graph) for n in g.node for o in n.output):
            progress += _fold_static(model, table, folded, version, skipped)
        if not progress:
            current = table  # nothing changed the model since the table was read
            break
    if skipped and (table is None or any(o and (o not in table or table[o].shape is None)
                                         for g in walk_graphs(model.graph) for n in g.node for o in n.output)):
        names = list(skipped)  # said only when a shape stayed unknown: it may be computed from their values
        notes.append(f"constant folding skipped {len(names)} node(s) whose result would hold more than {_FOLD_LIMIT} "
                     f"elements (e.g. '{names[0][:80]}'); shapes computed from their values stay unknown")
    return model, folded, current


def _data_prop_safe(model, table: dict[str, Tensor] | None) -> bool:
    """Whether ONNX's data propagation stays small: no known dimension and no small integer constant over
    ``_PROP_DIM`` (a 200-byte file whose Range or input asks for 2^27 elements would otherwise take gigabytes)."""
    import onnx
    from onnx import numpy_helper

    table = table if table is not None else tensor_table(model)
    if any(t.shape and max(t.shape) > _PROP_DIM for t in table.values()):
        return False
    ints = {onnx.TensorProto.INT64, onnx.TensorProto.INT32, onnx.TensorProto.UINT64, onnx.TensorProto.UINT32}
    for g in walk_graphs(model.graph):
        tensors = list(g.initializer) + [constant_tensor(n) for n in g.node if n.op_type == "Constant"]
        for t in tensors:
            if t is None or t.data_type not in ints or math.prod(t.dims) > 16 or \
                    t.data_location == onnx.TensorProto.EXTERNAL:
                continue
            try:
                if any(abs(int(v)) > _PROP_DIM for v in numpy_helper.to_array(t).reshape(-1)):
                    return False
            except Exception:  # noqa: BLE001 - unreadable: not a size
                continue
    return True


def _infer_from_file(model, path: Path, notes: list[str]):
    import tempfile

    import onnx

    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "inferred.onnx"
            onnx.shape_inference.infer_shapes_path(str(path), str(out), data_prop=True)
            inferred = onnx.load(str(out), load_external_data=False)
    except Exception as exc:  # noqa: BLE001
        notes.append(f"shape inference failed ({type(exc).__name__}); using the shapes the file declares")
        return model
    notes.append("shape inference ran on the file (model over 2 GB); input shapes were taken as the file gives them")
    return inferred


def _apply_shape_hooks(model, table: dict[str, Tensor]) -> int:
    """Add value_info for the outputs of custom-domain ops that their shape hook can shape; the number added."""
    import onnx

    added = 0
    values = None
    for g, node in ((g, n) for g in walk_graphs(model.graph) for n in g.node):
        spec = lookup(node.op_type)
        hook = spec.shape if spec is not None else None
        if hook is None or not node.domain or all(o in table and table[o].shape is not None
                                                   for o in node.output[:1] if o):
            continue
        if values is None:
            graphs = list(walk_graphs(model.graph))
            values = small_values([t for gr in graphs for t in gr.initializer], [n for gr in graphs for n in gr.node])
        try:
            shapes = hook(op_call(node, table, values))
        except FORMULA_ERRORS:
            continue
        elem = table[node.input[0]].elem if node.input and node.input[0] in table else onnx.TensorProto.FLOAT
        for name, shape in zip(node.output, shapes):
            if name and (name not in table or table[name].shape is None):
                g.value_info.append(onnx.helper.make_tensor_value_info(name, elem, shape))
                added += 1
    return added


def _small_array(t):
    """A TensorProto's values as a numpy array when it holds at most _FOLD_LIMIT elements, else None."""
    from onnx import numpy_helper

    if math.prod(t.dims) > _FOLD_LIMIT:
        return None
    try:
        return numpy_helper.to_array(t)
    except Exception:  # noqa: BLE001
        return None


def _fold_static(model, table: dict[str, Tensor], folded: set[str], version: int,
                 skipped: dict[str, None] | None = None) -> int:
    """Replace nodes that compute only from small constants and known shapes by Constant nodes (in place); the number
    replaced. Runtimes fold these at load time; doing it here lets shape inference see through e.g. Mod in a shape
    chain (or give a Loop its trip count). ``folded`` gains the names of the tensors made constant. Subgraphs are
    folded too, seeing the values of their enclosing graphs. Nodes left unshaped whose inputs are shaped get their
    output shapes from their ONNX inference function (``_shape_node``), so the folding further down sees them.
    ``skipped`` gains the names of nodes not folded because of the element bound."""
    count, skips = _fold_graph(model.graph, table, folded, version, {})
    if skipped is not None:
        skipped.update(dict.fromkeys(skips))
    return count


def _fold_graph(graph, table: dict[str, Tensor], folded: set[str], version: int,
                outer: dict) -> tuple[int, list[str]]:
    """Fold ``graph`` (in place): the number of nodes replaced or shaped, and the nodes skipped by the bound."""
    import numpy as np
    import onnx
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    values: dict = dict(outer)
    for t in graph.initializer:
        arr = _small_array(t) if t.data_location != onnx.TensorProto.EXTERNAL else None
        if arr is not None:
            values[t.name] = arr
    count = 0
    skipped: list[str] = []
    shaped: dict = {}  # value_info learnt by _shape_node
    nodes = list(graph.node)
    for k, node in enumerate(nodes):
        outs = [o for o in node.output if o]
        ins = [i for i in node.input if i]
        if node.op_type == "Constant":
            const = constant_tensor(node)
            arr = _small_array(const) if const is not None and outs else None
            if arr is not None:
                values[outs[0]] = arr
            continue
        if node.op_type in CONTROL_FLOW:
            for _, sub in subgraphs(node):
                n, skips = _fold_graph(sub, table, folded, version, values)
                count += n
                skipped += skips
            continue
        if node.domain not in ("", "ai.onnx") or node.op_type.startswith(_NO_FOLD) or not outs:
            continue
        result = None
        if node.op_type in METADATA_OPS:
            info = table.get(node.input[0])
            if info is not None and info.shape is not None:
                shape = np.array(info.shape, dtype=np.int64)
                if node.op_type == "Size":
                    result = [np.array(shape.prod(), dtype=np.int64)]
                else:
                    a = {x.name: x.i for x in node.attribute}
                    result = [shape[a.get("start", 0): a.get("end", len(shape)) or None]
                              if "end" in a else shape[a.get("start", 0):]]
        elif ins and all(i in values for i in ins):
            from embodied_tui.analysis.onnx.graph import fold_bound

            bound = fold_bound(node, values)  # from shapes and values, before anything is allocated
            if bound is not None and bound > _FOLD_LIMIT:
                skipped.append(node.name or f"{node.op_type}_{k}")
            if bound is None or bound > _FOLD_LIMIT:
                count += _shape_node(node, table, values, version, shaped)
                continue
            try:
                result = ReferenceEvaluator(node, opsets={"": version}).run(None, {i: values[i] for i in ins})
            except Exception:  # noqa: BLE001 - an op the reference evaluator cannot run: leave it
                result = None
        if result is not None and any(np.asarray(r).size > _FOLD_LIMIT for r in result):
            skipped.append(node.name or f"{node.op_type}_{k}")
            result = None
        if result is None:
            count += _shape_node(node, table, values, version, shaped)
            continue
        for name, arr in zip(node.output, result):
            if name:
                values[name] = np.asarray(arr)
                if name not in table or table[name].shape is None:  # shaped for the nodes further down
                    try:
                        elem = onnx.helper.np_dtype_to_tensor_dtype(values[name].dtype)
                    except Exception:  # noqa: BLE001 - a dtype ONNX has no name for
                        elem = onnx.TensorProto.UNDEFINED
                    table[name] = Tensor(list(values[name].shape), elem)
        if all(o in table and table[o].shape is not None for o in outs) and all(o in folded for o in outs):
            continue
        nodes[k] = [onnx.helper.make_node("Constant", [], [name], name=f"{node.name or node.op_type}/folded",
                                          value=numpy_helper.from_array(np.asarray(arr), name))
                    for name, arr in zip(node.output, result) if name]
        folded |= set(outs)
        count += 1
    if any(isinstance(n, list) for n in nodes):
        flat = []
        for n in nodes:
            flat.extend(n if isinstance(n, list) else [n])
        del graph.node[:]
        graph.node.extend(flat)
    if shaped:
        keep = [vi for vi in graph.value_info if vi.name not in shaped]
        del graph.value_info[:]
        graph.value_info.extend(keep + list(shaped.values()))
    return count, skipped


_DATA_LIMIT = 1024  # elements of a constant input handed to an inference function (shape data is small)


def _shape_node(node, table: dict[str, Tensor], values: dict, version: int, shaped: dict) -> int:
    """Shape the outputs of one standard-domain node whose inputs are shaped (or small constants) with the node's
    own ONNX inference function, constant inputs given as data (a Reshape's target shape); record them in ``table``
    and in ``shaped`` (name -> ValueInfoProto). The number of outputs shaped."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    outs = [o for o in node.output if o]
    if not outs or all(o in table and table[o].shape is not None for o in outs) or node.op_type in CONTROL_FLOW:
        return 0
    ins = [i for i in node.input if i]
    if any(i not in table or table[i].shape is None or not table[i].elem for i in ins):
        return 0
    try:
        schema = onnx.defs.get_schema(node.op_type, version, "")
        types = {i: helper.make_tensor_type_proto(table[i].elem, table[i].shape) for i in ins}
        data = {i: numpy_helper.from_array(np.asarray(values[i]), i) for i in ins
                if i in values and np.asarray(values[i]).size <= _DATA_LIMIT}
        res = onnx.shape_inference.infer_node_outputs(schema, node, types, data,
                                                      opset_imports=[helper.make_opsetid("", version)])
    except Exception:  # noqa: BLE001 - no schema, or inference refused: leave it to the next round
        return 0
    added = 0
    for name, tp in res.items():
        if not name or not tp.HasField("tensor_type") or not tp.tensor_type.HasField("shape"):
            continue
        dim_list = [d.dim_value if d.HasField("dim_value") else None for d in tp.tensor_type.shape.dim]
        if any(d is None for d in dim_list) or (name in table and table[name].shape is not None):
            continue
        table[name] = Tensor(dim_list, tp.tensor_type.elem_type)
        shaped[name] = helper.make_value_info(name, tp)
        added += 1
    return added
