"""Opening an .onnx file without reading its weights: the graph only, external data files stat-ed, embedded weight
values dropped before shape inference. Initializers held inside subgraphs (If branches, Loop/Scan bodies) are treated
like the main graph's. onnx is imported inside the functions that need it."""
from __future__ import annotations

import math
from pathlib import Path

from embodied_tui.analysis.onnx.graph import opset, walk_graphs
from embodied_tui.errors import AnalysisError


def load_graph(path: Path):
    """The model with ``load_external_data=False`` and its local functions inlined; AnalysisError when unreadable."""
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
    present = [f for f in files if (base / f).is_file()]
    missing = [f for f in files if f not in present]
    size = sum((base / f).stat().st_size for f in present)
    if missing:
        notes.append(f"external weight file(s) missing: {', '.join(missing)}; the weights are missing but all "
                     "counts come from the graph")
    return files, size, missing


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
