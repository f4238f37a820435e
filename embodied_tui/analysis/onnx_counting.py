"""Count an ONNX graph exactly from shapes: params, MACs, bytes, peak live memory, census tree and a trace.

Weights are never read: the file is loaded with ``load_external_data=False`` and initializer sizes come from the
TensorProto dims, so a model whose external weight files are missing is still counted (with a note). Shapes come from
``onnx.shape_inference`` (``data_prop=True``) after fixing the graph inputs: symbolic dims become 1 (a user's
``input_shapes`` override the file's), and a few com.microsoft ops the ONNX checker does not know are given shapes by
``onnx_formulas.SHAPE_HOOKS``. Per-op formulas and their conventions live in ``onnx_formulas``.

Conventions of this counter:
- ``params``/``weight_bytes``: elements/bytes (each at its own dtype) of every initializer except int64 and bool ones
  (shape, axis and index data, not weights; reported in a note), plus Constant-node tensors that look like weights:
  floating point, more than one element, not all equal (a zero initial state is not a weight).
- ``dtype``: the dtype holding the most parameter elements (float32, float16, int8 for a quantised model ...).
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
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from embodied_tui.analysis import onnx_formulas as F
from embodied_tui.analysis.trace import TraceOp
from embodied_tui.data.records import CensusNode, LayerCost, Uncounted
from embodied_tui.errors import AnalysisError

# bits per element by ONNX TensorProto.DataType name; string tensors have no fixed size
_BITS = {"FLOAT": 32, "UINT8": 8, "INT8": 8, "UINT16": 16, "INT16": 16, "INT32": 32, "INT64": 64, "BOOL": 8,
         "FLOAT16": 16, "DOUBLE": 64, "UINT32": 32, "UINT64": 64, "COMPLEX64": 64, "COMPLEX128": 128,
         "BFLOAT16": 16, "FLOAT8E4M3FN": 8, "FLOAT8E4M3FNUZ": 8, "FLOAT8E5M2": 8, "FLOAT8E5M2FNUZ": 8,
         "FLOAT8E8M0": 8, "UINT4": 4, "INT4": 4, "FLOAT4E2M1": 4, "UINT2": 2, "INT2": 2}
_NAMES = {"FLOAT": "float32", "FLOAT16": "float16", "DOUBLE": "float64", "BFLOAT16": "bfloat16"}
_NOT_PARAMS = {"INT64", "BOOL", "STRING"}
MAC_OPS = frozenset({"Conv", "ConvInteger", "QLinearConv", "FusedConv", "NhwcConv", "ConvTranspose", "Gemm",
                     "MatMul", "MatMulInteger", "QLinearMatMul", "FusedMatMul", "MatMulNBits", "Einsum",
                     "Attention", "MultiHeadAttention", "LSTM", "GRU", "RNN"})


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


@dataclass
class _Tensor:
    shape: list[int] | None
    elem: int  # TensorProto.DataType

    @property
    def type_name(self) -> str:
        return _type_name(self.elem)

    def nbytes(self) -> int | None:
        if self.shape is None:
            return None
        bits = _BITS.get(self.type_name, 0)
        return math.ceil(math.prod(self.shape) * bits / 8)

    def numel(self) -> int | None:
        return None if self.shape is None else math.prod(self.shape)


def _type_name(elem: int) -> str:
    import onnx

    try:
        return onnx.TensorProto.DataType.Name(elem)
    except ValueError:
        return "UNDEFINED"


def dtype_name(elem: int) -> str:
    name = _type_name(elem)
    return _NAMES.get(name, name.lower())


# --------------------------------------------------------------------------- loading

def _load(path: Path):
    import onnx

    if not path.is_file():
        raise AnalysisError(f"{path}: no such file; check the path")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise AnalysisError(f"{path}: not a readable ONNX model ({type(exc).__name__}); "
                            "check the file is complete") from exc
    if not model.graph.node and not model.graph.initializer:
        raise AnalysisError(f"{path}: the ONNX graph is empty; check it is a model file")
    if model.functions:
        try:
            from onnx import inliner

            model = inliner.inline_local_functions(model)
        except Exception:  # noqa: BLE001 - counting goes on without the function bodies
            pass
    return model


def _external_data(model, base: Path, notes: list[str]) -> tuple[list[str], int, list[str]]:
    import onnx

    files: list[str] = []
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            loc = next((e.value for e in t.external_data if e.key == "location"), None)
            if loc and loc not in files:
                files.append(loc)
    present = [f for f in files if (base / f).is_file()]
    missing = [f for f in files if f not in present]
    size = sum((base / f).stat().st_size for f in present)
    if missing:
        notes.append(f"external weight file(s) missing: {', '.join(missing)}; the weights are missing but all "
                     "counts come from the graph")
    return files, size, missing


def _strip_weights(model, keep: int = 1024) -> None:
    """Drop embedded weight values (in place) so shape inference neither copies nor serialises them: each large
    initializer is marked external, exactly as ``load_external_data=False`` leaves an external one."""
    import onnx

    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL or math.prod(t.dims) <= keep or \
                t.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32):  # shape data may be needed
            continue
        for name in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data",
                     "string_data"):
            t.ClearField(name)
        t.data_location = onnx.TensorProto.EXTERNAL
        del t.external_data[:]
        t.external_data.add(key="location", value="<embedded>")


# --------------------------------------------------------------------------- input shapes and inference

def _dims(vi) -> list | None:
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


def _fix_inputs(graph_inputs, user: list[list[int]] | None, path: Path, notes: list[str]):
    """Concrete input shapes, the file's symbols, and the shape source."""
    if user is not None and len(user) != len(graph_inputs):
        names = ", ".join(i.name for i in graph_inputs)
        raise AnalysisError(f"{path}: got {len(user)} input shape(s) for {len(graph_inputs)} input(s) ({names}); "
                            "give one --input-shape per input")
    shapes, symbols, source = [], [], ("user" if user is not None else "file")
    for k, vi in enumerate(graph_inputs):
        dims = _dims(vi)
        symbols.append([None if isinstance(d, int) else (d or "?") for d in dims] if dims is not None else [])
        if user is not None:
            shape = [int(v) for v in user[k]]
            if any(v <= 0 for v in shape) or (dims is not None and len(dims) != len(shape)):
                want = f"rank {len(dims)}" if dims is not None else "positive dims"
                raise AnalysisError(f"{path}: input shape {shape} for '{vi.name}' does not fit the file ({want}, "
                                    f"file shape {[d if isinstance(d, int) else (d or '?') for d in dims or []]}); "
                                    "fix --input-shape")
            shapes.append(shape)
            continue
        if dims is None:
            notes.append(f"input '{vi.name}' has no shape in the file; counts that depend on it are missing "
                         "(pass --input-shape)")
            shapes.append(None)
            source = "none" if len(graph_inputs) == 1 else source
            continue
        shape = []
        for axis, d in enumerate(dims):
            if isinstance(d, int):
                shape.append(d)
                continue
            shape.append(1)
            if not F.is_batch_like(d, axis):
                source = "inferred"
                notes.append(f"input '{vi.name}' dim {axis} ('{d or '?'}') is symbolic; counted at 1 "
                             "(pass --input-shape for a real size)")
        shapes.append(shape)
    return shapes, symbols, source


def _set_shape(vi, shape: list[int]) -> None:
    tt = vi.type.tensor_type
    tt.ClearField("shape")
    for v in shape:
        tt.shape.dim.add().dim_value = v


def _infer(model, path: Path, notes: list[str]):
    """Shape inference, continued past com.microsoft ops (SHAPE_HOOKS) and past shape arithmetic that ONNX data
    propagation does not follow (constant folding of shape-only nodes), for a few rounds at most.
    Returns the inferred model and the names of tensors made constant by folding."""
    import onnx

    folded: set[str] = set()
    opset = _opset(model) or 17
    for _ in range(6):
        try:
            model = onnx.shape_inference.infer_shapes(model, data_prop=True)
        except Exception as exc:  # noqa: BLE001 - keep what the file declares, and say so
            first = (str(exc).splitlines() or [""])[0][:160]
            if "2GB" in first:  # in-memory model over the protobuf limit: infer from the file itself
                return _infer_from_file(model, path, notes), folded
            notes.append(f"shape inference failed ({type(exc).__name__}: {first}); using the shapes the file "
                         "declares")
            return model, folded
        table = _tensor_table(model)
        progress = _apply_shape_hooks(model, table)
        if any(o and (o not in table or table[o].shape is None) for n in model.graph.node for o in n.output):
            progress += _fold_static(model, table, folded, opset)
        if not progress:
            break
    return model, folded


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


_FOLD_LIMIT = 1 << 16  # elements: shape arithmetic is small; never materialise activations or weights
_NO_FOLD = ("Random", "Bernoulli", "Multinomial")


def _fold_static(model, table: dict[str, "_Tensor"], folded: set[str], opset: int) -> int:
    """Replace nodes that compute only from small constants and known shapes by Constant nodes (in place).

    Runtimes fold these at load time; doing it here lets shape inference see through e.g. Mod in a shape chain."""
    import numpy as np
    import onnx
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    values: dict = {}
    for t in model.graph.initializer:
        if t.data_location != onnx.TensorProto.EXTERNAL and math.prod(t.dims) <= _FOLD_LIMIT:
            try:
                values[t.name] = numpy_helper.to_array(t)
            except Exception:  # noqa: BLE001
                pass
    count = 0
    nodes = list(model.graph.node)
    for k, node in enumerate(nodes):
        outs = [o for o in node.output if o]
        ins = [i for i in node.input if i]
        if node.op_type == "Constant":
            const = _constant_tensor(node)
            if const is not None and math.prod(const.dims) <= _FOLD_LIMIT and outs:
                try:
                    values[outs[0]] = numpy_helper.to_array(const)
                except Exception:  # noqa: BLE001
                    pass
            continue
        if node.domain not in ("", "ai.onnx") or node.op_type in F.CONTROL_FLOW or \
                node.op_type.startswith(_NO_FOLD) or not outs:
            continue
        result = None
        if node.op_type in F.METADATA_OPS:
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
            try:
                result = ReferenceEvaluator(node, opsets={"": opset}).run(
                    None, {i: values[i] for i in ins})
            except Exception:  # noqa: BLE001 - an op the reference evaluator cannot run: leave it
                result = None
        if result is None or any(np.asarray(r).size > _FOLD_LIMIT for r in result):
            continue
        for name, arr in zip(node.output, result):
            if name:
                values[name] = np.asarray(arr)
        if all(o in table and table[o].shape is not None for o in outs) and all(o in folded for o in outs):
            continue
        const_nodes = [onnx.helper.make_node("Constant", [], [name], name=f"{node.name or node.op_type}/folded",
                                             value=numpy_helper.from_array(np.asarray(arr), name))
                       for name, arr in zip(node.output, result) if name]
        nodes[k] = const_nodes
        folded |= set(outs)
        count += 1
    if count:
        flat = []
        for n in nodes:
            flat.extend(n if isinstance(n, list) else [n])
        del model.graph.node[:]
        model.graph.node.extend(flat)
    return count


def _apply_shape_hooks(model, table: dict[str, _Tensor]) -> int:
    import onnx

    added = 0
    for node in model.graph.node:
        hook = F.SHAPE_HOOKS.get(node.op_type)
        if hook is None or not node.domain or all(o in table and table[o].shape is not None
                                                   for o in node.output[:1] if o):
            continue
        try:
            shapes = hook(_call(node, table))
        except (F.ShapeUnknown, KeyError, ValueError, IndexError, TypeError):
            continue
        elem = table[node.input[0]].elem if node.input and node.input[0] in table else onnx.TensorProto.FLOAT
        for name, shape in zip(node.output, shapes):
            if name and (name not in table or table[name].shape is None):
                model.graph.value_info.append(onnx.helper.make_tensor_value_info(name, elem, shape))
                added += 1
    return added


def _tensor_table(model) -> dict[str, _Tensor]:
    import onnx

    table: dict[str, _Tensor] = {}
    g = model.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = _dims(vi)
        shape = dims if dims is not None and all(isinstance(d, int) for d in dims) else None
        if vi.name not in table or table[vi.name].shape is None:
            table[vi.name] = _Tensor(shape, vi.type.tensor_type.elem_type)
    for t in g.initializer:
        table[t.name] = _Tensor([int(d) for d in t.dims], t.data_type)
    for node in g.node:
        if node.op_type == "Constant" and node.output:
            const = _constant_tensor(node)
            if const is not None:
                table[node.output[0]] = _Tensor([int(d) for d in const.dims], const.data_type)
            elif node.output[0] not in table:
                table[node.output[0]] = _Tensor(None, onnx.TensorProto.UNDEFINED)
    return table


def _constant_tensor(node):
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


def _attrs(node) -> dict:
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


def _call(node, table: dict[str, _Tensor]) -> F.OpCall:
    ins = [table[n].shape if n and n in table else None for n in node.input]
    outs = [table[n].shape if n and n in table else None for n in node.output]
    return F.OpCall(node.op_type, node.domain, _attrs(node), ins, [bool(n) for n in node.input], outs)


# --------------------------------------------------------------------------- graph structure

def _subgraph_refs(node) -> set[str]:
    """Outer-scope tensors a control-flow node's subgraphs read (implicit inputs)."""
    refs: set[str] = set()
    for a in node.attribute:
        graphs = [a.g] if a.type == a.GRAPH else list(a.graphs) if a.type == a.GRAPHS else []
        for g in graphs:
            local = {i.name for i in g.input} | {t.name for t in g.initializer}
            for n in g.node:
                refs |= {i for i in n.input if i and i not in local} | _subgraph_refs(n)
                local |= set(n.output)
    return refs


def _node_inputs(node) -> list[str]:
    ins = [n for n in node.input if n]
    if node.op_type in F.CONTROL_FLOW:
        ins += sorted(_subgraph_refs(node) - set(ins))
    return ins


def _topo(nodes, available: set[str]) -> list:
    """The nodes in an order where each input exists before use (ONNX requires it; repair it when not)."""
    have = set(available)
    ok = True
    for n in nodes:
        if any(i not in have for i in _node_inputs(n)):
            ok = False
            break
        have |= set(n.output)
    if ok:
        return list(nodes)
    produced = {o for n in nodes for o in n.output}
    pending, order, have = list(nodes), [], set(available)
    while pending:
        rest = []
        for n in pending:
            if all(i in have or i not in produced for i in _node_inputs(n)):
                order.append(n)
                have |= set(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):  # a cycle: keep file order for the remainder
            order += rest
            break
        pending = rest
    return order


def _scope(node) -> tuple[list[str], list[str], str]:
    """Module paths (outermost first), their class names ("" when unknown) and the root's class for one node."""
    meta = {p.key: p.value for p in node.metadata_props}
    if "pkg.torch.onnx.name_scopes" in meta:
        try:
            import ast

            names = ast.literal_eval(meta["pkg.torch.onnx.name_scopes"])
            classes = ast.literal_eval(meta.get("pkg.torch.onnx.class_hierarchy", "[]"))
        except (ValueError, SyntaxError):
            names, classes = None, []
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


# --------------------------------------------------------------------------- the counter

@dataclass
class _Cost:
    macs: int = 0
    other: int = 0
    weight_elems: int = 0
    weight_bytes: int = 0
    read_elems: int = 0
    read_bytes: int = 0
    write_elems: int = 0
    write_bytes: int = 0
    mac_unknown: bool = False


def count_onnx(path: str | Path, *, input_shapes: list[list[int]] | None = None) -> OnnxCount:
    """Count one .onnx file (external data files beside it are stat-ed, never read)."""
    path = Path(path)
    model = _load(path)
    notes: list[str] = []
    ext_files, ext_bytes, ext_missing = _external_data(model, path.parent, notes)
    g = model.graph
    init_names = {t.name for t in g.initializer}
    graph_inputs = [vi for vi in g.input if vi.name not in init_names]

    shapes, symbols, source = _fix_inputs(graph_inputs, input_shapes, path, notes)
    _strip_weights(model)  # the model is edited in place from here on: only its metadata is read afterwards
    wg = model.graph
    changed = False
    for vi, shape in zip([vi for vi in wg.input if vi.name not in init_names], shapes):
        if shape is not None and _dims(vi) != shape:
            _set_shape(vi, shape)
            changed = True
    if changed:  # shapes the file declares at other sizes would win over the new ones: let inference redo them,
        # except outputs of custom-domain ops, which ONNX inference cannot redo
        custom = {o for n in wg.node if n.domain not in ("", "ai.onnx") for o in n.output}
        keep = [vi for vi in wg.value_info if vi.name in custom]
        del wg.value_info[:]
        wg.value_info.extend(keep)
        for out in wg.output:
            if out.name not in custom:
                out.type.tensor_type.ClearField("shape")
    inferred, folded = _infer(model, path, notes)
    table = _tensor_table(inferred)
    nodes = _topo(list(inferred.graph.node), {vi.name for vi in inferred.graph.input} | init_names)

    consts, params = _constants(inferred, nodes, table, folded)
    static = _static_tensors(nodes, consts)
    sources = _weight_sources(nodes, params, static, table)
    counted = [n for n in nodes if n.op_type != "Constant" and not all(o in static for o in n.output if o)]
    costs, unknown_ops, shape_unknown = _node_costs(counted, table, sources, static)

    out_names = [o.name for o in inferred.graph.output]
    in_names = [vi.name for vi in graph_inputs]
    param_bytes = sum(table[p].nbytes() or 0 for p in params)
    param_elems = sum(table[p].numel() or 0 for p in params)
    io_bytes = [table[n].nbytes() for n in in_names + out_names if n in table]
    unknown_tensors = _unknown_tensors(counted, table)
    dtype, dtype_bytes = _dominant_dtype(params, table, graph_inputs)
    peak, total = _live_memory(counted, table, in_names, out_names, static)

    result = OnnxCount(
        params=param_elems, weight_bytes=param_bytes, dtype=dtype, dtype_bytes=dtype_bytes,
        macs=sum(c.macs for c in costs.values()), other_flops=sum(c.other for c in costs.values()),
        unfused_bytes=sum(c.read_bytes + c.write_bytes + c.weight_bytes for c in costs.values()),
        fused_bytes=param_bytes + sum(b or 0 for b in io_bytes),
        activation_bytes=peak, activation_bytes_total=total,
        macs_complete=not any(c.mac_unknown for c in costs.values()) and not (set(unknown_ops) & MAC_OPS),
        format_detail=_format_detail(model), opset=_opset(model),
        input_names=in_names, input_shapes=[s or [] for s in shapes], input_symbols=symbols,
        input_dtypes=[dtype_name(vi.type.tensor_type.elem_type) for vi in graph_inputs],
        input_shape_source=source, output_names=out_names,
        output_shapes=[table[n].shape or [] if n in table else [] for n in out_names],
        layers=dict(Counter(n.op_type for n in counted)),
        bn_folded=_bn_folded(nodes, table, params),
        external_data=ext_files, external_data_bytes=ext_bytes, external_data_missing=ext_missing,
        notes=notes,
    )
    result.layer_costs = _layer_costs(counted, costs, table)
    result.census = _census(counted, costs, table, sources, param_elems)
    result.trace = _trace(counted, table, static, set(in_names), sources, _small_values(inferred))
    result.uncounted = _uncounted(counted, unknown_ops, shape_unknown)
    notes.extend(_shape_conflicts(counted, table))
    _summary_notes(result, unknown_ops, shape_unknown, unknown_tensors, table, params, init_names)
    return result


def _constants(model, nodes, table, folded) -> tuple[set[str], set[str]]:
    """Constant tensors and the subset that are parameters. Tensors made constant by folding shape arithmetic
    (``folded``) are never parameters."""
    from onnx import numpy_helper

    consts = {t.name for t in model.graph.initializer}
    params = {t.name for t in model.graph.initializer if table[t.name].type_name not in _NOT_PARAMS}
    for node in nodes:
        if node.op_type != "Constant" or not node.output:
            continue
        consts.add(node.output[0])
        if node.output[0] in folded:
            continue
        const = _constant_tensor(node)
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


def _static_tensors(nodes, consts: set[str]) -> set[str]:
    """Tensors computed only from constants and shapes (constant-folded by runtimes), constants included."""
    static = set(consts)
    for node in nodes:
        ins = _node_inputs(node)
        if node.op_type in F.METADATA_OPS or node.op_type == "Constant" or (ins and all(i in static for i in ins)):
            if node.op_type not in F.CONTROL_FLOW and node.domain in ("", "ai.onnx"):
                static |= {o for o in node.output if o}
    return static


def _weight_sources(nodes, params: set[str], static: set[str], table) -> dict[str, tuple[str, ...]]:
    """For every tensor derived from parameters by folded nodes (Identity, DequantizeLinear of an int8 weight, a
    Transpose or Cast of a weight ...), the parameters it comes from: reading it costs reading them, as stored."""
    sources: dict[str, tuple[str, ...]] = {p: (p,) for p in params}
    for node in nodes:
        outs = [o for o in node.output if o]
        if not outs or not all(o in static for o in outs) or node.op_type in F.METADATA_OPS:
            continue
        srcs = tuple(dict.fromkeys(s for i in node.input if i for s in sources.get(i, ())))
        if srcs:
            for o in outs:
                sources[o] = srcs
            if node.op_type in F.VIEW_OPS and outs[0] not in table and node.input[0] in table:
                table[outs[0]] = table[node.input[0]]
    return sources


def _node_costs(nodes, table, sources, static):
    costs: dict[int, _Cost] = {}
    unknown_ops: Counter = Counter()
    shape_unknown: Counter = Counter()
    for idx, node in enumerate(nodes):
        c = _Cost()
        costs[idx] = c
        if node.op_type in F.CONTROL_FLOW:
            unknown_ops[node.op_type] += 1
        else:
            try:
                res = F.count(_call(node, table))
                if res is None:
                    unknown_ops[node.op_type] += 1
                else:
                    c.macs, c.other = (int(v) for v in res)
            except (F.ShapeUnknown, KeyError, ValueError, IndexError, TypeError, ZeroDivisionError):
                shape_unknown[node.op_type] += 1
                c.mac_unknown = node.op_type in MAC_OPS
        if node.op_type in F.VIEW_OPS:
            continue
        gathered = None  # a Gather from a weight table reads only the rows it gathers
        if node.op_type in ("Gather", "GatherElements", "GatherND") and node.input[0] in sources and node.output:
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
                    elems = info.numel() or 0
                    nbytes = info.nbytes() or 0
                    if k == 0 and gathered is not None:
                        elems = gathered.numel() or 0
                        nbytes = math.ceil(elems * _BITS.get(info.type_name, 0) / 8)
                    c.weight_elems += elems
                    c.weight_bytes += nbytes
                continue
            info = table.get(name)
            if name in static or name in read or node.op_type in F.METADATA_OPS:
                continue
            read.add(name)
            if info is not None and info.shape is not None:
                c.read_elems += info.numel()
                c.read_bytes += info.nbytes()
        for name in node.output:
            info = table.get(name)
            if name and info is not None and info.shape is not None:
                c.write_elems += info.numel()
                c.write_bytes += info.nbytes()
    return costs, unknown_ops, shape_unknown


def _unknown_tensors(nodes, table) -> Counter:
    """Producer op type of every activation whose shape stayed unknown."""
    out: Counter = Counter()
    for node in nodes:
        for name in node.output:
            if name and (name not in table or table[name].shape is None):
                out[node.op_type] += 1
    return out


def _dominant_dtype(params, table, graph_inputs) -> tuple[str, int]:
    by_type: Counter = Counter()
    for p in params:
        info = table[p]
        if info.type_name not in ("INT32", "UINT32"):  # int32 tensors are quantised biases, not the weight dtype
            by_type[info.type_name] += info.numel() or 0
    if by_type:
        name = by_type.most_common(1)[0][0]
    else:
        name = next((_type_name(vi.type.tensor_type.elem_type) for vi in graph_inputs
                     if _type_name(vi.type.tensor_type.elem_type) in ("FLOAT", "FLOAT16", "BFLOAT16", "DOUBLE")),
                    "FLOAT")
    return _NAMES.get(name, name.lower()), max(1, _BITS.get(name, 32) // 8)


def _live_memory(nodes, table, in_names, out_names, static) -> tuple[int, int]:
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
        for name in _node_inputs(node):
            r = root.get(name)
            if r is not None:
                end[r] = max(end[r], i)
        view = node.op_type in F.VIEW_OPS and node.input and node.input[0] in root
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


def _bn_folded(nodes, table, params) -> bool:
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


def _format_detail(model) -> str:
    opset = _opset(model)
    detail = f"onnx opset {opset}" if opset is not None else "onnx"
    if model.producer_name:
        detail += f" ({model.producer_name} {model.producer_version})".rstrip()
    return detail


def _opset(model) -> int | None:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _node_name(node, idx: int) -> str:
    return node.name or f"{node.op_type}_{idx}"


def _layer_costs(nodes, costs, table) -> list[LayerCost]:
    out = []
    for i, node in enumerate(nodes):
        c = costs[i]
        if not (c.macs or c.other or c.weight_elems or c.read_elems or c.write_elems):
            continue
        first = node.output[0] if node.output else ""
        shape = table[first].shape if first in table else None
        out.append(LayerCost(name=_node_name(node, i), type=node.op_type, macs=c.macs, other_flops=c.other,
                             weight_elems=c.weight_elems, read_elems=c.read_elems, write_elems=c.write_elems,
                             output_shape=list(shape) if shape is not None else None))
    return out


def _census(nodes, costs, table, sources, total_params) -> list[CensusNode]:
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
        mine = {s for n in node.input if n for s in sources.get(n, ())} - charged
        weight = sum(table[src].numel() or 0 for src in mine)
        charged |= mine
        first = node.output[0] if node.output else ""
        shape = table[first].shape if first in table else None
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


# --------------------------------------------------------------------------- trace

_KIND = {"Conv": "conv", "ConvInteger": "conv", "QLinearConv": "conv", "FusedConv": "conv", "NhwcConv": "conv",
         "ConvTranspose": "conv_transpose", "Gemm": "linear", "Einsum": "matmul",
         "Attention": "attention", "MultiHeadAttention": "attention", "GroupQueryAttention": "attention",
         "LSTM": "lstm", "GRU": "gru", "RNN": "rnn", "BatchNormalization": "batchnorm",
         "LayerNormalization": "layernorm", "SimplifiedLayerNormalization": "layernorm",
         "SkipLayerNormalization": "layernorm", "SkipSimplifiedLayerNormalization": "layernorm",
         "RMSNormalization": "layernorm", "GroupNormalization": "groupnorm", "GroupNorm": "groupnorm",
         "InstanceNormalization": "groupnorm", "Relu": "relu", "Gelu": "gelu", "FastGelu": "gelu",
         "BiasGelu": "gelu", "QuickGelu": "gelu", "Erf": "gelu", "Sigmoid": "sigmoid", "HardSigmoid": "hardsigmoid",
         "HardSwish": "hardswish", "Tanh": "tanh", "Softmax": "softmax", "LogSoftmax": "softmax", "Swish": "silu",
         "Add": "add", "Sum": "add", "Mul": "mul", "Concat": "concat", "Split": "split", "Pad": "pad",
         "MaxPool": "maxpool", "AveragePool": "avgpool", "GlobalAveragePool": "global_pool",
         "GlobalMaxPool": "global_pool", "Resize": "upsample", "Upsample": "upsample", "Flatten": "flatten",
         "Reshape": "reshape", "Squeeze": "reshape", "Unsqueeze": "reshape", "Transpose": "transpose",
         "Slice": "slice"}
_MATMULS = ("MatMul", "MatMulInteger", "QLinearMatMul", "FusedMatMul", "MatMulNBits")


def _kind(node, table, consts, sources, attrs, values) -> str:
    op = node.op_type

    def const(i):
        v = values.get(node.input[i]) if len(node.input) > i and node.input[i] else None
        return v

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
    return _KIND.get(op, "other")


def _small_values(model, limit: int = 16) -> dict[str, list[float]]:
    """Values of small constants held in the file (Clip bounds, reduction axes and the like)."""
    import onnx
    from onnx import numpy_helper

    tensors = [(t.name, t) for t in model.graph.initializer if t.data_location != onnx.TensorProto.EXTERNAL]
    tensors += [(n.output[0], _constant_tensor(n)) for n in model.graph.node if n.op_type == "Constant" and n.output]
    out = {}
    for name, t in tensors:
        if t is None or math.prod(t.dims) > limit:
            continue
        try:
            out[name] = [float(v) for v in numpy_helper.to_array(t).reshape(-1)]
        except Exception:  # noqa: BLE001 - strings and odd types are not bounds
            continue
    return out


def _trace(nodes, table, static, graph_inputs, sources, values) -> list[TraceOp]:
    """One TraceOp per counted node; x * sigmoid(x) becomes one 'silu', Identity/Dropout pass through."""
    made_by = {o: node for node in nodes for o in node.output if o}
    uses = Counter(name for node in nodes for name in node.input if name)
    fused: set[str] = set()  # outputs of Sigmoids folded into the Mul that follows
    for node in nodes:
        if node.op_type == "Mul":
            for name in node.input:
                sig = made_by.get(name)
                if sig is not None and sig.op_type == "Sigmoid" and uses[name] == 1 and sig.input[0] in node.input:
                    fused.add(name)
    producer: dict[str, int] = {}
    passthrough: dict[str, str] = {}
    ops: list[TraceOp] = []

    def source(name: str) -> int:
        name = passthrough.get(name, name)
        return producer.get(name, -1 if name in graph_inputs else -2)

    for i, node in enumerate(nodes):
        if node.op_type in ("Identity", "Dropout") or (node.output and node.output[0] in fused):
            passthrough[node.output[0]] = passthrough.get(node.input[0], node.input[0])
            continue
        attrs = _attrs(node)
        kind, op_name = _kind(node, table, static, sources, attrs, values), node.op_type
        ins = [n for n in node.input if n]
        if any(n in fused for n in ins):
            kind, op_name = "silu", "Sigmoid*Mul"
            ins = [n for n in ins if n not in fused]
        shape = table[node.output[0]].shape if node.output and node.output[0] in table else None
        try:
            res = F.count(_call(node, table))
        except (F.ShapeUnknown, KeyError, ValueError, IndexError, TypeError, ZeroDivisionError):
            res = None
        op = TraceOp(index=len(ops), kind=kind, op=op_name, owner=_node_name(node, i),
                     inputs=[source(n) for n in ins],
                     in_shapes=[list(table[n].shape) if n in table and table[n].shape is not None else []
                                for n in ins],
                     out_shape=list(shape) if shape is not None else None,
                     macs=int(res[0]) if res else 0,
                     attrs=_trace_attrs(node, kind, table, attrs))
        for o in node.output:
            if o:
                producer[o] = op.index
        ops.append(op)
    return ops


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


# --------------------------------------------------------------------------- notes

def _shape_conflicts(nodes, table) -> list[str]:
    """Reshapes whose element counts disagree: the graph cannot run at these input shapes (typically an export that
    baked the example's sizes into constants), so the counts describe a graph that does not exist."""
    bad = []
    for i, node in enumerate(nodes):
        if node.op_type in ("Reshape", "Flatten", "Squeeze", "Unsqueeze") and node.input and node.output:
            src, dst = table.get(node.input[0]), table.get(node.output[0])
            if src and dst and src.numel() is not None and dst.numel() is not None and src.numel() != dst.numel():
                bad.append(f"{_node_name(node, i)} ({src.shape} -> {dst.shape})")
    if not bad:
        return []
    return [f"shape conflict: {len(bad)} reshape(s) change the element count, e.g. {bad[0]}; the graph does not run "
            "at these input shapes (sizes were likely fixed at export): give the shapes it was exported with"]


def _uncounted(nodes, unknown_ops, shape_unknown) -> list[Uncounted]:
    out = []
    for i, node in enumerate(nodes):
        if node.op_type in unknown_ops:
            reason = ("control flow: its subgraphs are not counted" if node.op_type in F.CONTROL_FLOW
                      else "op missing from the ONNX formula table")
            out.append(Uncounted(module=_node_name(node, i), op=node.op_type, reason=reason))
    return out


def _summary_notes(result: OnnxCount, unknown_ops, shape_unknown, unknown_tensors, table, params, init_names):
    notes = result.notes
    if unknown_ops:
        notes.append("not counted: " + ", ".join(f"{op} x{n}" for op, n in sorted(unknown_ops.items())))
    if shape_unknown:
        notes.append("shape unknown after inference, work left out for: "
                     + ", ".join(f"{op} x{n}" for op, n in sorted(shape_unknown.items())))
    if unknown_tensors:
        notes.append(f"{sum(unknown_tensors.values())} activation shape(s) unknown after inference (outputs of "
                     + ", ".join(f"{op} x{n}" for op, n in sorted(unknown_tensors.items()))
                     + "); their bytes are not counted")
    skipped = [n for n in init_names if n not in params]
    if skipped:
        elems = sum(table[n].numel() or 0 for n in skipped)
        notes.append(f"{len(skipped)} int64/bool initializer(s) ({elems} elements of shape/index data) are not "
                     "counted as parameters")
