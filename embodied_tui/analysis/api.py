"""`analyze_file`: one model file in, one ``Analysis`` (its ``ModelSummary`` and ``Details``) out. The only entry point
the faces need.

Flow: detect the format from content -> open it safely -> choose input shapes (user > file > inferred) -> count on
the meta device (torch formats) or from the graph (ONNX) -> census, layer costs, byte metrics -> architecture.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from embodied_tui.analysis.loaders import detect, load_torch_pickle, read_safetensors_header
from embodied_tui.data.records import Analysis
from embodied_tui.errors import AnalysisError
from embodied_tui.hashing import sha256_file

Progress = Callable[[str, float], None]  # (stage, fraction done)


def analyze_file(path: str | Path, *, input_shape: list[list[int]] | None = None, trust_code: bool = False,
                 progress: Progress | None = None) -> Analysis:
    """Analyse ``path``. ``input_shape`` is a list of shapes, one per model input. Raises AnalysisError."""
    start = time.perf_counter()
    path = Path(path).expanduser()
    report = progress or (lambda stage, frac: None)
    check_shapes(input_shape)
    report("detecting format", 0.0)
    detected = detect(path)
    # hash in a thread while the model loads and runs: hashlib releases the GIL on large reads
    hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
    digest = hasher.submit(sha256_file, path)
    hasher.shutdown(wait=False)
    report(f"analysing {detected.format.replace('_', ' ')}", 0.2)
    if detected.format == "onnx":
        from embodied_tui.analysis.onnx.analyze import analyze_onnx

        fields = analyze_onnx(path, input_shape)
    elif detected.format == "safetensors":
        from embodied_tui.analysis.torch.analyze import analyze_state_dict

        tensors, meta = read_safetensors_header(path)
        fields = analyze_state_dict(path, tensors, input_shape, fmt="safetensors", detail="safetensors")
    else:
        fields = _analyze_torch(path, detected, input_shape, trust_code)
    report("classifying architecture", 0.9)
    from embodied_tui.analysis.patterns import classify

    trace = fields.pop("trace", [])
    fields["architecture"] = classify(trace, fields.get("layers", {}), input_shapes=fields.get("input_shapes", []),
                                      output_shapes=fields.get("output_shapes", []))
    fields.setdefault("bn_folded", False)
    base = {"path": str(path.resolve()), "sha256": digest.result(), "size_bytes": path.stat().st_size}
    analysis = Analysis(**base, **fields, analysis_seconds=round(time.perf_counter() - start, 4))
    report("done", 1.0)
    return analysis


def _analyze_torch(path: Path, detected, input_shape, trust_code: bool) -> dict:
    from embodied_tui.analysis.torch import analyze as ta

    if detected.format == "torchscript":
        return ta.analyze_torchscript(path, input_shape)
    if detected.format == "exported_program":
        return ta.analyze_exported(path, input_shape, trust_code=trust_code)
    kind, obj, key = load_torch_pickle(path, trust_code)
    if kind == "module":
        return ta.analyze_module(obj, input_shape, fmt="pickle", detail="full pickle (--trust-code)")
    shapes = {name: (list(t.shape), str(t.dtype).removeprefix("torch."), t.element_size()) for name, t in obj.items()}
    detail = "state_dict" + (f" under '{key}'" if key else "")
    return ta.analyze_state_dict(path, shapes, input_shape, fmt="state_dict", detail=detail)


def parse_shapes(text: str | None) -> list[list[int]] | None:
    """'1,3,224,224' or '1,3,224,224;1,10' or '1x3x224x224' -> [[1,3,224,224], ...]."""
    if not text:
        return None
    shapes = []
    for part in text.replace(" ", "").split(";"):
        if not part:
            continue
        try:
            dims = [int(d) for d in part.replace("x", ",").split(",") if d]
        except ValueError:
            raise AnalysisError(f"bad --input-shape '{text}': use comma-separated integers like 1,3,224,224 "
                                "(separate several inputs with ';')") from None
        if not dims or any(d <= 0 for d in dims):
            raise AnalysisError(f"bad --input-shape '{text}': every dimension must be a positive integer")
        shapes.append(dims)
    check_shapes(shapes, f"--input-shape '{text}'")
    return shapes or None


MAX_INPUT_BYTES = 1 << 62  # no input tensor can hold more (sizes are int64 in torch and ONNX): above, say so


def check_shapes(shapes: list[list[int]] | None, what: str = "input shape") -> None:
    """Refuse shapes no tensor can have: dims that are not positive integers, or a size over 2^62 bytes (torch and
    onnx would overflow their int64 size arithmetic) - one line instead of an overflow deep inside a runtime."""
    for shape in shapes or []:
        if not isinstance(shape, (list, tuple)) or \
                not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            raise AnalysisError(f"bad {what}: every dimension must be a positive integer")
        total = 8
        for d in shape:
            total *= d
            if total > MAX_INPUT_BYTES:
                raise AnalysisError(f"bad {what}: {'x'.join(map(str, shape))[:80]} is too large for any tensor "
                                    "(over 2^62 bytes); give the real input size")
