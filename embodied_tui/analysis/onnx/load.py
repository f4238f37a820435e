"""Opening an .onnx file without reading its weights: the graph only, external data files stat-ed, embedded weight
values dropped before shape inference. Initializers held inside subgraphs (If branches, Loop/Scan bodies) are treated
like the main graph's. onnx is imported inside the functions that need it.

Refused with one line (``load_graph``): a graph with a cycle, an opset newer than the installed onnx knows (its shape
inference would apply older rules), and external data that is not a regular file inside the model's folder (an
absolute location, ``..``, a symlink leading out, a FIFO or a device: what onnxruntime refuses too); such a location is
never stat-ed, read or hashed."""
from __future__ import annotations

import math
import os
import stat
from pathlib import Path

from embodied_tui.analysis.onnx.graph import find_cycle, opset, walk_graphs
from embodied_tui.errors import AnalysisError
from embodied_tui.hashing import within


def load_graph(path: Path):
    """The model with ``load_external_data=False`` and its local functions inlined; AnalysisError when unreadable."""
    import onnx

    from embodied_tui.analysis.loaders import regular_file_problem

    problem = regular_file_problem(path)
    if problem:
        raise AnalysisError(f"{path}: {problem}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise AnalysisError(f"{path}: not a readable ONNX model ({type(exc).__name__}); "
                            "check the file is complete") from exc
    if not model.graph.node and not model.graph.initializer:
        raise AnalysisError(f"{path}: the ONNX graph is empty; check it is a model file")
    version, known = opset(model), onnx.defs.onnx_opset_version()
    if version is not None and version > known:
        raise AnalysisError(f"{path}: ONNX opset {version} is newer than the installed onnx {onnx.__version__} knows "
                            f"(up to opset {known}), so its shapes cannot be inferred reliably: upgrade onnx, or "
                            f"export the model with opset {known} or lower")
    cycle = find_cycle(model.graph)
    if cycle is not None:
        raise AnalysisError(f"{path}: not a valid ONNX model: its graph has a cycle (node '{cycle[:80]}' depends on "
                            "its own output); export it again")
    _check_external_locations(model, path)
    if model.functions:
        try:
            from onnx import inliner

            model = inliner.inline_local_functions(model)
        except Exception:  # noqa: BLE001 - counting goes on without the function bodies
            pass
    return model


def external_data(model, base: Path, notes: list[str]) -> tuple[list[str], int, list[str]]:
    """External weight files the initializers name (relative to ``base``), the bytes of those present, and those
    missing (with a note)."""
    import onnx

    files: list[str] = []
    for t in (t for g in walk_graphs(model.graph) for t in g.initializer):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            loc = next((e.value for e in t.external_data if e.key == "location"), None)
            if loc and loc not in files:
                files.append(loc)
    present = [f for f in files if _regular_inside(base, f)]
    missing = [f for f in files if f not in present]
    size = sum((base / f).stat().st_size for f in present)
    if missing:
        notes.append(f"external weight file(s) missing: {', '.join(missing)}; the weights are missing but all "
                     "counts come from the graph")
    return files, size, missing


def _locations(model):
    """(initializer name, location) of every externally stored initializer, subgraphs included."""
    import onnx

    for t in (t for g in walk_graphs(model.graph) for t in g.initializer):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            yield t.name, next((e.value for e in t.external_data if e.key == "location"), "")


def _check_external_locations(model, path: Path) -> None:
    """Refuse external data outside the model's folder or that is not a regular file (see the module doc)."""
    base = path.parent
    for name, loc in _locations(model):
        if within(base, loc) is None:
            raise AnalysisError(f"{path}: initializer '{name[:80]}' keeps its data at '{loc[:120]}', outside the "
                                "model's folder (an absolute path, '..' or a symlink leading out); onnxruntime "
                                "refuses that too: keep the weight files beside the model")
        try:
            mode = os.stat(base / loc).st_mode
        except OSError:
            continue  # missing: counted without it, with a note (external_data)
        if not stat.S_ISREG(mode):
            raise AnalysisError(f"{path}: external data '{loc[:120]}' of initializer '{name[:80]}' is not a regular "
                                "file (a FIFO, device or folder); keep the weight files beside the model")


def _regular_inside(base: Path, rel: str) -> bool:
    if within(base, rel) is None:
        return False
    try:
        return stat.S_ISREG(os.stat(base / rel).st_mode)
    except OSError:
        return False


def strip_weights(model, keep: int = 1024) -> None:
    """Drop embedded weight values (in place) so shape inference neither copies nor serialises them: each large
    initializer is marked external, exactly as ``load_external_data=False`` leaves an external one."""
    import onnx

    for t in (t for g in walk_graphs(model.graph) for t in g.initializer):
        if t.data_location == onnx.TensorProto.EXTERNAL or math.prod(t.dims) <= keep or \
                t.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32):  # shape data may be needed
            continue
        for name in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data",
                     "string_data"):
            t.ClearField(name)
        t.data_location = onnx.TensorProto.EXTERNAL
        del t.external_data[:]
        t.external_data.add(key="location", value="<embedded>")


def format_detail(model) -> str:
    """The opset and the producer the file names, e.g. "onnx opset 17 (pytorch 2.13.0)"."""
    version = opset(model)
    detail = f"onnx opset {version}" if version is not None else "onnx"
    if model.producer_name:
        detail += f" ({model.producer_name} {model.producer_version})".rstrip()
    return detail
