"""Analysis of torch formats: TorchScript, ExportedProgram, eager modules (trusted pickles) and state_dicts.

Each loader gives a module tree and a way to run it; ``_count`` runs it on meta tensors (trying a few sensible input
sizes when the shape had to be inferred) and turns the counter's events into the fields of ``Analysis``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import torch

from embodied_tui.analysis.census import ModuleInfo, build_census, layer_costs, layer_counts, macs_by_kind
from embodied_tui.analysis.torch.counting import CountResult
from embodied_tui.analysis.torch.runners import run_eager, run_exported, run_torchscript
from embodied_tui.data.records import Uncounted
from embodied_tui.errors import AnalysisError

_IMAGE_SIZES = (224, 256, 32, 64, 96, 128, 160, 192, 288, 299, 320, 384, 416, 448, 512, 640, 28)
_DATA_DEPENDENT = ("meta tensor", "data-independent", "Cannot copy out of meta", "data-dependent", "nonzero")
BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


# ---- module trees -------------------------------------------------------------------------------------------------
def tensor_key(t: torch.Tensor) -> tuple:
    """One key per distinct tensor: the same storage, offset, shape and stride is the same tensor however many
    names or objects reach it (tied weights: ``lm_head.weight = wte.weight``, a .pt2's FQNs of one record)."""
    return (t.untyped_storage()._cdata, t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)


def _module_infos(module: torch.nn.Module, type_of: Callable[[torch.nn.Module], str]) -> list[ModuleInfo]:
    """The module tree; a tied tensor counts in the first module that holds it only."""
    infos = []
    seen: set[tuple] = set()
    for name, m in module.named_modules():
        own = 0
        for p in m.parameters(recurse=False):
            key = tensor_key(p)
            if key not in seen:
                seen.add(key)
                own += p.numel()
        infos.append(ModuleInfo(name, type_of(m), own, has_children=any(True for _ in m.children())))
    return infos


def _script_type(m) -> str:
    return getattr(m, "original_name", None) or type(m).__name__


def _weights(module: torch.nn.Module) -> tuple[int, int, str, int]:
    """(params, weight bytes incl. buffers, dominant float dtype, its element size); shared tensors counted once (by
    storage, not by object: a loaded archive may hold one tensor under several names)."""
    seen: set[tuple] = set()
    params = nbytes = 0
    by_dtype: dict[torch.dtype, int] = {}
    for kind, tensors in (("p", module.parameters()), ("b", module.buffers())):
        for t in tensors:
            key = tensor_key(t)
            if key in seen:
                continue
            seen.add(key)
            if kind == "p":
                params += t.numel()
            nbytes += t.numel() * t.element_size()
            if t.is_floating_point():
                by_dtype[t.dtype] = by_dtype.get(t.dtype, 0) + t.numel()
    dtype = max(by_dtype, key=by_dtype.get) if by_dtype else torch.float32
    return params, nbytes, str(dtype).removeprefix("torch."), torch.empty((), dtype=dtype).element_size()


# ---- input shapes -------------------------------------------------------------------------------------------------
def infer_inputs(module: torch.nn.Module) -> list[tuple[list[int], torch.dtype, str]]:
    """Guess one input from the first layer that reveals it: (shape, dtype, reason). Image sizes are tried later."""
    for name, m in module.named_modules():
        kind = _script_type(m)
        w = getattr(m, "weight", None) if not isinstance(m, torch.jit.ScriptModule) or hasattr(m, "weight") else None
        if kind in ("Conv2d", "Conv1d", "Conv3d") and isinstance(w, torch.Tensor):
            groups = int(getattr(m, "groups", 1))
            cin = w.shape[1] * groups
            spatial = {"Conv1d": 1, "Conv2d": 2, "Conv3d": 3}[kind]
            return [([1, cin] + [224] * spatial, torch.float32, f"{cin} channels from {name or 'root'} ({kind})")]
        if kind == "Embedding" and isinstance(w, torch.Tensor):
            return [([1, 128], torch.long, f"128 token ids for {name} (Embedding of {w.shape[0]})")]
        if kind in ("LSTM", "GRU", "RNN") and isinstance(getattr(m, "weight_ih_l0", None), torch.Tensor):
            size = int(m.weight_ih_l0.shape[1])  # (gates x hidden, input): TorchScript may drop `input_size`
            first = bool(getattr(m, "batch_first", False)) if hasattr(m, "batch_first") else True
            shape = [1, 16, size] if first else [16, 1, size]
            return [(shape, torch.float32, f"16 steps of {size} features for {name} ({kind})")]
        if kind == "Linear" and isinstance(w, torch.Tensor):
            return [([1, w.shape[1]], torch.float32, f"{w.shape[1]} features from {name} (Linear)")]
        if kind == "MultiheadAttention" and hasattr(m, "embed_dim"):
            dim = int(m.embed_dim)
            return [([1, 16, dim], torch.float32, f"16 tokens of {dim} for {name}")]
    raise AnalysisError("cannot infer the input shape (no conv, embedding, recurrent or linear layer found first); "
                        "give it with --input-shape, e.g. --input-shape 1,3,224,224")


def _candidates(shape: list[int]) -> list[list[int]]:
    """The inferred shape with each common image size, for image models; else just the shape."""
    if len(shape) >= 3 and shape[2:] == [224] * (len(shape) - 2):
        return [shape[:2] + [s] * (len(shape) - 2) for s in _IMAGE_SIZES]
    if len(shape) == 3 and shape[1] == 16:  # sequence: a fixed-length model may need another length
        return [shape] + [[shape[0], n, shape[2]] for n in (1, 8, 32, 50, 64, 128, 197, 256)]
    return [shape]


def _is_data_dependent(exc: BaseException) -> bool:
    return any(marker in str(exc) for marker in _DATA_DEPENDENT)


# ops whose tensor argument is a list of indices: an unstated float input that reaches one is really token ids
_INDEX_OPS = {"embedding", "embedding_bag", "_embedding_bag", "_embedding_bag_forward_only", "index_select", "gather",
              "one_hot", "take"}


def _run_inferring_ids(run, shapes, dtypes, stated) -> tuple[CountResult, list[torch.dtype], list[str]]:
    """Run; when an input whose dtype nobody stated (assumed float32) fails as the indices of an embedding, it holds
    token ids: run again with it as int64 - and with every other unstated input of its shape (the attention mask and
    token types of a BERT-like model come with the ids) - and say so."""
    dtypes, ids = list(dtypes), []
    for _ in range(len(dtypes) + 1):
        result = run(shapes, dtypes)
        bad = [i for i in result.failed_inputs if i < len(dtypes) and not stated[i] and dtypes[i].is_floating_point] \
            if result.failure is not None and result.failed_op in _INDEX_OPS else []
        if not bad:
            break
        like = {tuple(shapes[i]) for i in bad}
        for i, shape in enumerate(shapes):
            if not stated[i] and dtypes[i].is_floating_point and (i in bad or tuple(shape) in like):
                dtypes[i] = torch.int64
                ids.append(i)
    notes = [f"input(s) {', '.join(map(str, sorted(ids)))}: int64 assumed (token ids feed an embedding; inputs of "
             "the same shape taken as masks / token types); state dtypes as in --input-shape '1,128:int64'"] \
        if ids else []
    return result, dtypes, notes


def _count(run: Callable[[list[list[int]], list[torch.dtype]], CountResult], shapes, dtypes, source: str,
           what: str, stated: list[bool] | None = None):
    """Run the counter; with inferred shapes, try common sizes until one runs. Returns (result, shapes, dtypes,
    notes)."""
    stated = stated if stated is not None else [True] * len(dtypes)
    tries = [[s] for s in _candidates(shapes[0])] if source == "inferred" and len(shapes) == 1 else [shapes]
    first_error = None
    for attempt in tries:
        result, used, notes = _run_inferring_ids(run, attempt, dtypes, stated)
        if result.failure is None or _is_data_dependent(result.failure):
            if attempt is not tries[0]:
                notes.append(f"input size {attempt[0]} was the first common size that ran")
            return result, attempt, used, notes
        first_error = first_error or (result, attempt)
    result, attempt = first_error
    where = f"module '{result.failed_owner}'" if result.failed_owner else "the model's top level"
    shape_text = ", ".join("x".join(map(str, s)) for s in attempt)
    msg = str(result.failure).strip().splitlines()[0][:160] if str(result.failure).strip() else type(
        result.failure).__name__
    hint = "give the right one with --input-shape" if source != "user" else "check --input-shape"
    raise AnalysisError(f"{what}: forward failed in {where} (op {result.failed_op}) with input {shape_text}: "
                        f"{msg}; {hint}")


_RECURRENT = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn"}


def _fold_recurrent(trace, types: dict[str, str]) -> None:
    """On meta, nn.LSTM/GRU/RNN decompose into per-step matmuls, adds and stacks; in the trace they are one recurrent
    layer's work (as ONNX's LSTM op is), so the gate adds are not mistaken for residual connections."""
    for op in trace:
        kind = _RECURRENT.get(types.get(op.owner, ""))
        if kind:
            op.kind = kind


def _fields(result: CountResult, infos: list[ModuleInfo], params: int, weight_bytes: int, dtype: str,
            dtype_bytes: int, shapes, dtypes, source: str, names: list[str]) -> dict:
    types = {m.path: m.type for m in infos}
    _fold_recurrent(result.trace, types)
    _fold_recurrent(result.events, types)
    uncounted = []
    notes = []
    if result.failure is not None:
        owner = result.failed_owner or "(top level)"
        uncounted.append(Uncounted(module=owner, op=result.failed_op,
                                   reason="data-dependent, not counted: the output size depends on the values "
                                          f"({str(result.failure).splitlines()[0][:100]})"))
        notes.append(f"counted up to {owner}; the data-dependent rest (e.g. thresholding / NMS) is not counted")
    for owner, op in result.missing_macs:
        uncounted.append(Uncounted(module=owner, op=op, reason="no formula for this op, whose work is "
                                                               "multiply-accumulates: its MACs are not counted"))
    if result.missing_macs:
        ops = sorted({op for _, op in result.missing_macs})
        notes.append(f"MACs incomplete: {len(result.missing_macs)} call(s) of {', '.join(ops)[:120]} have no formula")
    if result.nested_dense:
        notes.append(f"fallback: {result.nested_dense} nested-tensor op(s) (the fused encoder's padding removal) ran "
                     "on the dense padded batch: every position is counted, as with no padding")
    if result.scalars_substituted:
        notes.append(f"fallback: {result.scalars_substituted} data-dependent scalar(s) (.item() of a tensor whose "
                     "values a meta run does not have) were taken as 1 (True for a condition); the count assumes "
                     "that value")
    if result.moved_to_meta:
        ops = ", ".join(f"{op} x{n}" for op, n in sorted(result.moved_to_meta.items()))
        notes.append(f"fallback: {sum(result.moved_to_meta.values())} op(s) ({ops}) mixed meta tensors with real CPU "
                     "ones (constants the model builds at run time or stores in the file, such as anchor grids and "
                     "strides, or values computed from integer inputs); the CPU operands were moved to meta")
    macs = result.macs
    unfused = sum((e.read_elems + e.write_elems + e.weight_elems) for e in result.events)
    return {
        "params": params, "macs": macs, "flops": 2 * macs, "other_flops": result.other_flops,
        "macs_complete": result.failure is None and not result.missing_macs, "macs_by_kind": macs_by_kind(result.events),
        "dtype": dtype, "dtype_bytes": dtype_bytes, "weight_bytes": weight_bytes,
        "activation_bytes": result.peak_activation_bytes,
        "activation_bytes_total": result.total_activation_bytes,
        "unfused_bytes": unfused * dtype_bytes,
        "fused_bytes": weight_bytes + result.input_bytes + result.output_bytes,
        "input_names": names, "input_shapes": shapes, "input_symbols": [[None] * len(s) for s in shapes],
        "input_dtypes": [str(d).removeprefix("torch.") for d in dtypes], "input_shape_source": source,
        "output_names": [f"output_{i}" for i in range(len(result.output_shapes))],
        "output_shapes": result.output_shapes,
        "layers": layer_counts(infos),
        "census": build_census(infos, result.events, result.last_shape),
        "layer_costs": layer_costs(result.events, types),
        "uncounted": uncounted, "notes": notes, "trace": result.trace, "counter": "meta-dispatch",
    }


def _choose_inputs(module, user_shape, file_shapes=None, file_dtypes=None):
    """(shapes, dtypes, which dtypes were stated, source, notes). A user's shape takes the dtype written after it
    (``1,128:int64``), else the file's, else float32 (int64 if it turns out to feed an embedding)."""
    if user_shape:
        dtypes, stated = [], []
        for i, shape in enumerate(user_shape):
            named = getattr(shape, "dtype", None)
            if named:
                dtypes.append(getattr(torch, named))
            elif file_dtypes and i < len(file_dtypes):
                dtypes.append(file_dtypes[i])
            else:
                dtypes.append(torch.float32)
            stated.append(bool(named) or bool(file_dtypes and i < len(file_dtypes)))
        return [list(s) for s in user_shape], dtypes, stated, "user", []
    if file_shapes:
        return file_shapes, file_dtypes, [True] * len(file_shapes), "file", []
    guesses = infer_inputs(module)
    return [g[0] for g in guesses], [g[1] for g in guesses], [not g[1].is_floating_point for g in guesses], \
        "inferred", [f"input shape inferred: {g[2]}" for g in guesses]


def _forward_arity(module) -> int | None:
    try:
        schema = module.forward.schema  # TorchScript
        return sum(1 for a in schema.arguments[1:] if a.default_value is None)
    except (AttributeError, RuntimeError):
        pass
    import inspect

    try:
        sig = inspect.signature(module.forward)
    except (TypeError, ValueError):
        return None
    return sum(1 for p in sig.parameters.values()
               if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _generic(module, run, infos, user_shape, what, fmt, detail, file_shapes=None, file_dtypes=None,
             names=None) -> dict:
    shapes, dtypes, stated, source, notes = _choose_inputs(module, user_shape, file_shapes, file_dtypes)
    arity = _forward_arity(module)
    if source == "inferred" and arity is not None and arity > 1:
        raise AnalysisError(f"{what}: the model takes {arity} inputs and the file does not say their shapes; give "
                            "each with --input-shape, separated by ';' (e.g. --input-shape '1,3,224,224;1,10')")
    result, shapes, dtypes, more = _count(run, shapes, dtypes, source, what, stated)
    params, weight_bytes, dtype, dtype_bytes = _weights(module)
    fields = _fields(result, infos, params, weight_bytes, dtype, dtype_bytes, shapes, dtypes, source,
                     names or [f"input_{i}" for i in range(len(shapes))])
    fields["notes"] = notes + more + fields["notes"]
    fields.update(format=fmt, format_detail=detail)
    return fields


# ---- formats ------------------------------------------------------------------------------------------------------
def analyze_module(module: torch.nn.Module, user_shape, *, fmt: str, detail: str, what: str = "model") -> dict:
    module = module.eval()
    infos = _module_infos(module, lambda m: type(m).__name__)
    return _generic(module, lambda s, d: run_eager(module, s, d), infos, user_shape, what, fmt, detail)


_META_EQUAL: list = []  # the torch.library registration, kept alive for the process


def _allow_meta_load() -> None:
    """Loading an archive on meta runs ``aten::equal`` on its tensor constants (to pool equal ones), which has no
    meta kernel, so every archive with tensor constants (a traced ViT, YOLO anchors, tied weights) fell back to a
    full CPU load. This meta kernel answers True only for one and the same tensor: nothing is pooled that was not
    already shared, and values, which meta tensors lack, are never guessed."""
    if _META_EQUAL:
        return

    def equal(a, b):
        return (a.untyped_storage()._cdata == b.untyped_storage()._cdata and a.storage_offset() == b.storage_offset()
                and a.shape == b.shape and a.stride() == b.stride() and a.dtype == b.dtype)

    try:
        lib = torch.library.Library("aten", "IMPL")
        lib.impl("equal", equal, "Meta")
    except RuntimeError:  # this torch already has one: fine
        return
    _META_EQUAL.append(lib)


def analyze_torchscript(path: Path, user_shape) -> dict:
    notes = []
    on_meta = True
    _allow_meta_load()
    try:
        module = torch.jit.load(str(path), map_location="meta")
    except Exception:  # noqa: BLE001 - some archives refuse meta; load on CPU, then move to meta
        module = _load_script_on_cpu(path)
        on_meta = False
        notes.append("archive refused the meta device; loaded on CPU, then moved to meta")
    module.eval()
    if on_meta:
        _restore_constants(module, path)
    if retargeted := _retarget_devices(module):
        notes.append(f"{retargeted} device constant(s) baked into the archive were pointed at meta to count it")
    infos = _module_infos(module, _script_type)
    state = {"module": module, "on_meta": on_meta}

    def run(shapes, dtypes):
        # on meta, the archive's tensor constants and buffers have no values; a model that reads one (``int(c)`` in
        # a traced channel shuffle, a stride buffer) stops at its .item(): put the small buffers' values back and
        # rerun; if that is not enough, load it on CPU, where everything holds its value, and rerun
        result = run_torchscript(state["module"], shapes, dtypes, substitute_scalars=not state["on_meta"])
        if state["on_meta"] and result.failure is not None and result.failed_op == "_local_scalar_dense" \
                and not state.get("buffers_read") and _restore_small_buffers(state["module"], path):
            state["buffers_read"] = True
            notes.append("the model reads a buffer's value (.item()): its small buffers (strides, scales) were read "
                         "from the archive with their values")
            result = run_torchscript(state["module"], shapes, dtypes, substitute_scalars=False)
        if state["on_meta"] and result.failure is not None and result.failed_op == "_local_scalar_dense":
            state["module"], state["on_meta"] = _load_script_on_cpu(path), False
            state["module"].eval()
            _retarget_devices(state["module"])
            notes.append("the model reads a tensor's value (.item()): reloaded on CPU so the archive's tensor "
                         "constants hold their values, weights moved to meta")
            result = run_torchscript(state["module"], shapes, dtypes)
        return result

    fields = _generic(module, run, infos, user_shape, str(path), "torchscript", "TorchScript archive")
    fields["notes"] = notes + fields["notes"] + [
        "TorchScript runs inside its interpreter: ops are charged to the module whose weights they read"]
    return fields


_CONSTANTS_LIMIT = 16 << 20  # bytes of tensor constants read back with their values after a meta load


def _script_constants(path: Path) -> list[torch.Tensor] | None:
    """The archive's tensor constants (``CONSTANTS.cN`` of its code) with their values, read with the weights-only
    unpickler (nothing from the file runs); None when they cannot be read so or are too large to be worth it."""
    import io

    import torch._weights_only_unpickler as weights_only

    try:
        reader = torch._C.PyTorchFileReader(str(path))
        if not reader.has_record("constants.pkl"):
            return []
        total = 0

        def persistent_load(saved_id):
            nonlocal total
            _, storage_type, key, _, numel = saved_id
            dtype = storage_type.dtype
            total += numel * torch.empty((), dtype=dtype).element_size()
            if total > _CONSTANTS_LIMIT:
                raise ValueError("tensor constants too large to read")
            data = reader.get_storage_from_record(f"constants/{key}", numel, dtype)
            return torch.storage.TypedStorage(wrap_storage=data.untyped_storage(), dtype=dtype, _internal=True)

        unpickler = weights_only.Unpickler(io.BytesIO(reader.get_record("constants.pkl")), encoding="utf-8")
        unpickler.persistent_load = persistent_load
        table = unpickler.load()
    except Exception:  # noqa: BLE001 - anything unusual: the caller falls back to a CPU load when values are needed
        return None
    if not isinstance(table, (tuple, list)):
        return None
    return [t for t in table if isinstance(t, torch.Tensor) and not t.is_quantized]


def _restore_constants(module, path: Path) -> int:
    """After a meta load the graphs' tensor constants are meta tensors without values; a traced model may read one
    (``int(size // CONSTANTS.c0)`` in a channel shuffle or a ViT's patch count). Put the real ones back where the
    archive says unambiguously which it is: among the constants a method's code names (``CONSTANTS.cN`` in its
    ``code/`` source; all of them when that cannot be read), exactly one value with the node's shape, stride and
    dtype. Returns how many were restored."""
    table = _script_constants(path)
    if not table:
        return 0
    named = _constants_by_method(path)
    restored = 0
    for sub in module.modules():
        qualified = sub._c._type().qualified_name()
        for name in sub._c._method_names():
            nodes = [n for n in sub._c._get_method(name).graph.findAllNodes("prim::Constant")
                     if n.output().type().kind() == "TensorType" and n.hasAttribute("value")
                     and n.t("value").device.type == "meta"]
            if not nodes:
                continue
            indices = named.get((qualified, name)) if named is not None else None
            candidates = [table[i] for i in indices if i < len(table)] if indices is not None else table
            by_layout: dict[tuple, list[torch.Tensor]] = {}
            for t in candidates:
                by_layout.setdefault((tuple(t.shape), tuple(t.stride()), t.dtype), []).append(t)
            for node in nodes:
                value = node.t("value")
                same = by_layout.get((tuple(value.shape), tuple(value.stride()), value.dtype), [])
                if same and all(torch.equal(same[0], t) for t in same[1:]):
                    node.t_("value", same[0])
                    restored += 1
    return restored


_CLASS_RE = re.compile(r"^class (\w+)\(", re.MULTILINE)
_DEF_RE = re.compile(r"^  def (\w+)\(", re.MULTILINE)
_CONSTANT_RE = re.compile(r"CONSTANTS\.c(\d+)")


def _constants_by_method(path: Path) -> dict[tuple[str, str], list[int]] | None:
    """(class qualified name, method) -> the indices of the ``CONSTANTS.cN`` its serialized source names, read from
    the archive's ``code/`` files (text only: nothing is run); None when they cannot be read."""
    try:
        reader = torch._C.PyTorchFileReader(str(path))
        records = [r for r in reader.get_all_records() if r.startswith("code/__torch__/") and r.endswith(".py")]
        out: dict[tuple[str, str], list[int]] = {}
        for record in records:
            text = bytes(reader.get_record(record)).decode("utf-8", "replace")
            module_name = record.removeprefix("code/").removesuffix(".py").replace("/", ".")
            classes = list(_CLASS_RE.finditer(text))
            for k, cls in enumerate(classes):
                body = text[cls.end():classes[k + 1].start() if k + 1 < len(classes) else len(text)]
                defs = list(_DEF_RE.finditer(body))
                for j, d in enumerate(defs):
                    method = body[d.end():defs[j + 1].start() if j + 1 < len(defs) else len(body)]
                    out[(f"{module_name}.{cls.group(1)}", d.group(1))] = sorted(
                        {int(i) for i in _CONSTANT_RE.findall(method)})
    except Exception:  # noqa: BLE001 - unreadable: every constant is a candidate, as before
        return None
    return out


_NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")


def _restore_small_buffers(module, path: Path) -> int:
    """Give the meta-loaded module's small buffers their values from the archive (``torch.script_buffers``); the
    number restored (0 when there is none to restore or the archive cannot be read so)."""
    from embodied_tui.analysis.torch.script_buffers import small_buffers

    metas = {name: t for name, t in module.named_buffers() if t.device.type == "meta"
             and not name.endswith(_NORM_STATS)}  # per-channel statistics are never read as a value
    values = small_buffers(path, set(metas)) if metas else None
    subs = dict(module.named_modules()) if values else {}
    restored = 0
    for name, value in (values or {}).items():
        old = metas[name]
        owner, _, attr = name.rpartition(".")
        if value.shape != old.shape or value.dtype != old.dtype or owner not in subs:
            continue
        subs[owner]._c.setattr(attr, value)
        restored += 1
    return restored


def _load_script_on_cpu(path: Path):
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001
        raise AnalysisError(f"{path}: TorchScript archive cannot be loaded ({str(exc).splitlines()[0][:160]}); "
                            "it may be truncated or from a newer torch") from None
    _script_to_meta(module)
    return module


def _retarget_devices(module) -> int:
    """Traces bake the tracing device into constants (``torch.zeros(..., device=cpu)``); point them at meta so the
    run stays on meta tensors. Done before the first call, so the interpreter compiles the edited graphs."""
    changed = 0
    for sub in module.modules():
        for name in sub._c._method_names():
            for node in sub._c._get_method(name).graph.findAllNodes("prim::Constant"):
                if node.output().type().kind() == "DeviceObjType" and node.s("value") != "meta":
                    node.s_("value", "meta")
                    changed += 1
    return changed


def _script_to_meta(module) -> None:
    """Replace each weight of a loaded ScriptModule with a meta tensor, one at a time (``.to`` refuses
    ScriptModules whose parameters are plain attributes). Tensors that share a storage (tied weights) get views of
    one meta storage, so they stay one tensor."""
    bases: dict[tuple, torch.Tensor] = {}
    for sub in module.modules():
        for name, t in list(sub.named_parameters(recurse=False)) + list(sub.named_buffers(recurse=False)):
            storage = t.untyped_storage()
            key = (storage.data_ptr(), storage.nbytes(), t.dtype)
            if key not in bases or storage.nbytes() == 0:
                bases[key] = torch.empty(storage.nbytes() // t.element_size(), dtype=t.dtype, device="meta")
            sub._c.setattr(name, bases[key].as_strided(t.shape, t.stride(), t.storage_offset()))


def analyze_exported(path: Path, user_shape, *, trust_code: bool = False) -> dict:
    from embodied_tui.analysis.loaders import load_exported_program

    ep = load_exported_program(path, trust_code=trust_code)  # never torch.export.load: it runs code from the file
    try:
        gm = ep.module()
    except Exception as exc:  # noqa: BLE001
        raise AnalysisError(f"{path}: ExportedProgram cannot be loaded ({str(exc).splitlines()[0][:160]}); it may be "
                            "truncated or from a newer torch") from None
    infos, placeholders = _exported_tree(ep, gm)
    file_shapes, file_dtypes, names, symbols = [], [], [], []
    for node in placeholders:
        val = node.meta.get("val")
        if not isinstance(val, torch.Tensor):
            continue
        dims, syms = [], []
        for d in val.shape:
            if isinstance(d, int):
                dims.append(d)
                syms.append(None)
            else:
                syms.append(str(d))
                dims.append(1 if not dims else _hint(d))
        file_shapes.append(dims)
        symbols.append(syms)
        file_dtypes.append(val.dtype)
        names.append(node.name)
    gm = gm.to("meta")
    retargeted = _retarget_fx_devices(gm)
    fields = _generic(gm, lambda s, d: run_exported(gm, s, d), infos, user_shape, str(path), "exported_program",
                      "torch.export ExportedProgram", file_shapes or None, file_dtypes or None, names)
    if symbols and not user_shape:
        fields["input_symbols"] = symbols
    scaling = _exported_scaling(ep, gm, names, symbols, fields) if symbols and fields["macs_complete"] else None
    if scaling:
        fields["scaling"] = scaling
    if retargeted:
        fields["notes"].append(f"{retargeted} op(s) with a device baked into the graph were pointed at meta to count it")
    return fields


def _retarget_fx_devices(gm) -> int:
    meta = torch.device("meta")
    changed = 0
    for node in gm.graph.nodes:
        if node.op != "call_function":
            continue
        if isinstance(node.kwargs.get("device"), torch.device) and node.kwargs["device"] != meta:
            node.kwargs = {**node.kwargs, "device": meta}
            changed += 1
        if any(isinstance(a, torch.device) and a != meta for a in node.args):
            node.args = tuple(meta if isinstance(a, torch.device) else a for a in node.args)
            changed += 1
    return changed


def _exported_scaling(ep, gm, names: list[str], symbols: list[list[str | None]], fields: dict):
    """MACs vs the program's sequence-like symbolic sizes (``analysis.scaling``): the meta run again at other
    lengths, within the program's range constraints; an error or an incomplete count at one length means no entry."""
    from embodied_tui.analysis.scaling import fit_scaling

    dtypes = [getattr(torch, d) for d in fields["input_dtypes"]]
    ranges = {}
    for sym, bounds in (getattr(ep, "range_constraints", None) or {}).items():
        try:
            ranges[str(sym)] = (int(bounds.lower), int(bounds.upper) if bounds.upper.is_finite else 1 << 62)
        except (AttributeError, TypeError, ValueError):
            continue

    def count_at(shapes: list[list[int]]) -> int | None:
        try:
            result = run_exported(gm, shapes, dtypes)
        except Exception:  # noqa: BLE001 - a length the program refuses: no entry
            return None
        return result.macs if result.failure is None and not result.missing_macs else None

    return fit_scaling(names, symbols, fields["input_dtypes"], fields["input_shapes"], fields["macs"], count_at, ranges)


def _hint(sym) -> int:
    try:
        return int(sym.node.hint)
    except (AttributeError, TypeError, ValueError):
        return 1


def _exported_tree(ep, gm) -> tuple[list[ModuleInfo], list]:
    types: dict[str, str] = {"": "Model"}
    placeholders = []
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            placeholders.append(node)
        for path, type_name in (node.meta.get("nn_module_stack") or {}).values():
            types.setdefault(path, str(type_name).rsplit(".", 1)[-1])
    own: dict[str, int] = {}
    seen: set[tuple] = set()
    for name, p in gm.named_parameters():
        if tensor_key(p) in seen:  # a tied weight: counted at its first name
            continue
        seen.add(tensor_key(p))
        own[name.rpartition(".")[0]] = own.get(name.rpartition(".")[0], 0) + p.numel()
    for path in own:
        types.setdefault(path, "Module")
    paths = set(types)
    infos = [ModuleInfo(p, t, own.get(p, 0), has_children=any(q.startswith(p + ".") or (p == "" and q)
                                                               for q in paths if q != p))
             for p, t in types.items()]
    return infos, placeholders


def analyze_state_dict(path: Path, tensors: dict[str, tuple[list[int], str, int]], user_shape, *, fmt: str,
                       detail: str) -> dict:
    """Exact params and a census from names and shapes; MACs only when the keys match an architecture we can rebuild."""
    from embodied_tui.analysis import zoo

    shapes = {k: tuple(v[0]) for k, v in tensors.items()}
    match = zoo.identify_state_dict(shapes)
    if match is not None:
        builder = zoo.BUILDERS[match.name]
        kwargs = {"num_classes": match.num_classes} if match.num_classes not in (None, -1) else {}
        with torch.device("meta"):
            module = builder.build(**kwargs)
        shape = user_shape or [list(s) for s in builder.input_shapes]
        fields = analyze_module(module, shape, fmt=fmt, detail=detail, what=str(path))
        fields["input_shape_source"] = "user" if user_shape else "inferred"
        classes = f" with {match.num_classes} classes" if kwargs else ""
        fields["notes"].insert(0, f"keys and shapes match {match.name}{classes}: rebuilt on the meta device to count "
                                  f"MACs; input {'given' if user_shape else 'assumed'} "
                                  f"{'x'.join(map(str, shape[0]))}")
        fields["weight_bytes"] = sum(_numel(s) * size for s, _, size in tensors.values())
        fields["counter"] = "state-dict -> zoo rebuild -> meta-dispatch"
        return fields
    infos, params, weight_bytes, dtype, dtype_bytes = _state_dict_tree(tensors)
    reason = ("a state_dict holds weights but not the computation; its keys match no architecture we can rebuild, "
              "so MACs are unknown: register the TorchScript, ExportedProgram or ONNX export of the model instead")
    return {
        "format": fmt, "format_detail": detail, "params": params, "macs": None, "flops": None, "other_flops": None,
        "macs_null_reason": reason, "dtype": dtype, "dtype_bytes": dtype_bytes, "weight_bytes": weight_bytes,
        "activation_bytes": None, "input_shape_source": "none", "layers": layer_counts(infos),
        "census": build_census(infos, macs_known=False), "counter": "state-dict",
        "notes": [f"params exclude BatchNorm statistics ({', '.join(BUFFER_SUFFIXES)}), which are buffers"],
    }


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _state_dict_tree(tensors) -> tuple[list[ModuleInfo], int, int, str, int]:
    own: dict[str, int] = {}
    kinds: dict[str, set[str]] = {}
    params = weight_bytes = 0
    by_dtype: dict[str, tuple[int, int]] = {}
    for name, (shape, dtype, size) in tensors.items():
        n = _numel(shape)
        weight_bytes += n * size
        module, _, leaf = name.rpartition(".")
        kinds.setdefault(module, set()).add(f"{leaf}:{len(shape)}")
        if leaf in BUFFER_SUFFIXES:
            continue
        params += n
        own[module] = own.get(module, 0) + n
        if dtype.startswith(("float", "bfloat")):
            count, _ = by_dtype.get(dtype, (0, size))
            by_dtype[dtype] = (count + n, size)
    dtype, (_, dtype_bytes) = max(by_dtype.items(), key=lambda kv: kv[1][0]) if by_dtype else ("float32", (0, 4))
    paths = set(kinds)
    infos = [ModuleInfo(p, _guess_type(kinds[p]), own.get(p, 0),
                        has_children=any(q.startswith(p + ".") for q in paths if q != p)) for p in sorted(paths)]
    return infos, params, weight_bytes, dtype, dtype_bytes


def _guess_type(leaves: set[str]) -> str:
    """A layer's kind from the names and ranks of its tensors (no class names in a state_dict)."""
    if "running_mean:1" in leaves:
        return "BatchNorm"
    if "in_proj_weight:2" in leaves:
        return "MultiheadAttention"
    if any(leaf.startswith("weight_ih_l0") for leaf in leaves):
        return "Recurrent"
    ranks = {leaf for leaf in leaves if leaf.startswith("weight:")}
    if "weight:4" in ranks:
        return "Conv2d"
    if "weight:3" in ranks:
        return "Conv1d"
    if "weight:5" in ranks:
        return "Conv3d"
    if "weight:2" in ranks:
        return "Linear"
    if "weight:1" in ranks:
        return "Norm"
    return "Module"
