"""`analyze_file`: one model file in, one ``Analysis`` (its ``ModelSummary`` and ``Details``) out. The only entry point
the faces need.

Flow: detect the format from content -> open it safely -> choose input shapes (user > file > inferred) -> count on
the meta device (torch formats) or from the graph (ONNX) -> census, layer costs, byte metrics -> architecture.
Hugging Face models (a folder, its config.json or shard index; weights whose tensor names are a known transformer)
are counted from the architecture instead (analysis/hf/): nothing runs.
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
    """Analyse ``path``. ``input_shape`` is a list of shapes, one per model input. Raises AnalysisError, also for
    what no reader catches: a model nested past Python's recursion limit, memory running out, the file vanishing or
    being replaced while it is read."""
    try:
        return _analyze_file(path, input_shape=input_shape, trust_code=trust_code, progress=progress)
    except RecursionError:
        raise AnalysisError(f"{path}: the model is nested too deeply to analyse (Python's recursion limit was "
                            "reached while reading or running it)") from None
    except MemoryError:
        raise AnalysisError(f"{path}: memory ran out while analysing it; close other programs or give a smaller "
                            "--input-shape") from None
    except OSError as exc:
        raise AnalysisError(f"{path}: the file could not be read to the end ({exc.strerror or exc}); it may have "
                            "been moved, replaced or removed while it was analysed: analyse it again") from None


def _analyze_file(path: str | Path, *, input_shape: list[list[int]] | None, trust_code: bool,
                  progress: Progress | None) -> Analysis:
    start = time.perf_counter()
    path = Path(path).expanduser()
    report = progress or (lambda stage, frac: None)
    check_shapes(input_shape)
    report("detecting format", 0.0)
    hf = _hf_source(path)
    if hf is not None:
        return _analyze_hf(hf, input_shape, trust_code, report, start)
    detected = detect(path)
    digest = _start_hash(path)  # while the model loads and runs
    report(f"analysing {detected.format.replace('_', ' ')}", 0.2)
    if detected.format == "onnx":
        from embodied_tui.analysis.onnx.analyze import analyze_onnx

        fields = analyze_onnx(path, input_shape)
    elif detected.format == "safetensors":
        from embodied_tui.analysis.torch.analyze import analyze_state_dict

        tensors, meta = read_safetensors_header(path)
        fields = _hf_by_names(tensors, input_shape, fmt="safetensors", detail="safetensors") or \
            analyze_state_dict(path, tensors, input_shape, fmt="safetensors", detail="safetensors")
    else:
        fields = _analyze_torch(path, detected, input_shape, trust_code)
    report("classifying architecture", 0.9)
    from embodied_tui.analysis.patterns import classify

    trace = fields.pop("trace", [])
    if "transformer" not in fields:  # counted from a config: the architecture comes from it
        fields["architecture"] = classify(trace, fields.get("layers", {}), input_shapes=fields.get("input_shapes", []),
                                          output_shapes=fields.get("output_shapes", []))
    fields.setdefault("bn_folded", False)
    _coverage(fields, trace, torch_trace=detected.format != "onnx")
    base = {"path": str(path.resolve()), "sha256": digest(), "size_bytes": path.stat().st_size}
    analysis = Analysis(**base, **fields, analysis_seconds=round(time.perf_counter() - start, 4))
    report("done", 1.0)
    return analysis


def _hf_source(path: Path):
    """A Hugging Face folder, config.json or shard index at ``path`` (None for any other model file). A folder holding
    one weight file and no config is that file."""
    from embodied_tui.analysis.hf.folder import find

    hf = find(path)
    if hf is not None and hf.config is None and hf.index is None:
        return find(hf.main)  # the single weight file: analysed as any safetensors file
    return hf


def _analyze_hf(hf, input_shape, trust_code: bool, report: Progress, start: float) -> Analysis:
    """A Hugging Face model counted from its config (or from tensor names): no code runs, nothing is classified from
    a trace; the hash covers the config and every weight file (``HfSource.digest``)."""
    from embodied_tui.analysis.hf.analyze import analyze_source

    digest = _start_hash(hf.main, hf.digest)
    report(f"analysing {hf.format.replace('_', ' ')}", 0.2)
    fields = analyze_source(hf, input_shape, trust_code=trust_code)
    base = {"path": str(hf.record_path), "sha256": digest(), "size_bytes": hf.size_bytes()}
    analysis = Analysis(**base, **fields, analysis_seconds=round(time.perf_counter() - start, 4))
    report("done", 1.0)
    return analysis


def _hf_by_names(tensors, input_shape, *, fmt: str, detail: str) -> dict | None:
    """A state_dict or safetensors file whose tensor names and shapes are a known Hugging Face architecture (gpt2,
    bert, llama-style, vit), counted from the config those imply; None otherwise."""
    from embodied_tui.analysis.hf.infer import infer_tower

    tower = infer_tower({name: entry[0] for name, entry in tensors.items()})
    if tower is None:
        return None
    from embodied_tui.analysis.hf.analyze import tower_fields

    note = "config inferred from tensor names (no config.json): " + "; ".join(tower.evidence[1:])
    fields = tower_fields(tower, input_shape, tensors=tensors, method="config inferred from tensor names",
                          notes=[note])
    fields.update(format=fmt, format_detail=detail)
    return fields


def _start_hash(path: Path, hasher: Callable[[], str] | None = None) -> Callable[[], str]:
    """Start hashing ``path`` in a thread while the model loads and runs (hashlib and file reads release the GIL);
    the returned call waits for the hex digest and raises OSError when the file could not be read to the end."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
    digest = pool.submit(hasher) if hasher is not None else pool.submit(sha256_file, path)
    pool.shutdown(wait=False)
    return digest.result


def _coverage(fields: dict, trace, *, torch_trace: bool) -> None:
    """The coverage ledger (``analysis.coverage``) over the counter's trace; none when nothing was traced."""
    from embodied_tui.analysis import coverage

    if not trace:
        return
    if torch_trace:
        _torch_ledger(trace, int(fields.get("dtype_bytes") or 4))
    coverage.apply(fields, trace)


def _torch_ledger(trace, dtype_bytes: int) -> None:
    """Fill the ledger fields the torch counter leaves unset (in place): the aten formula registry's entry for each
    op (None when it has none) and its bytes, from the shapes it read and wrote at the model's dtype."""
    import math

    from embodied_tui.analysis.torch.formulas import FORMULAS

    names: dict[str, str] = {}
    for overload, fn in FORMULAS.items():
        packet = getattr(getattr(overload, "overloadpacket", None), "__name__", None)
        if packet:
            label = getattr(fn, "__name__", "") or packet
            names.setdefault(packet, packet if label in ("formula", "<lambda>") else label)
    for op in trace:
        if op.bytes is not None:
            continue  # the counter said itself
        op.formula = names.get(op.op.removeprefix("aten."))
        elems = sum(math.prod(s) for s in op.in_shapes) + (math.prod(op.out_shape) if op.out_shape else 0)
        op.bytes = elems * dtype_bytes


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
    return _hf_by_names(shapes, input_shape, fmt="state_dict", detail=detail) or \
        ta.analyze_state_dict(path, shapes, input_shape, fmt="state_dict", detail=detail)


class InputShape(list):
    """One input's dims (a plain list of ints to every reader) with the dtype the user stated, or None: unstated
    inputs take the file's dtype, else float32, else int64 where the input turns out to feed an embedding."""

    def __init__(self, dims=(), dtype: str | None = None):
        super().__init__(dims)
        self.dtype = dtype

    def __reduce__(self):  # pickles (to the analysis worker process) with its dtype
        return InputShape, (list(self), self.dtype)


# names a user may give -> torch dtype names (the torch names themselves are accepted too)
INPUT_DTYPES = {"float32": "float32", "float": "float32", "fp32": "float32", "float16": "float16", "half": "float16",
                "fp16": "float16", "bfloat16": "bfloat16", "bf16": "bfloat16", "float64": "float64",
                "double": "float64", "int64": "int64", "long": "int64", "int32": "int32", "int": "int32",
                "int16": "int16", "int8": "int8", "uint8": "uint8", "bool": "bool"}


def parse_dtype(text: str, what: str) -> str:
    name = INPUT_DTYPES.get(text.strip().lower().removeprefix("torch."))
    if name is None:
        raise AnalysisError(f"bad {what}: unknown dtype '{text.strip()[:20]}'; use one of "
                            "float32, float16, bfloat16, int64, int32, int8, uint8, bool")
    return name


def parse_shapes(text: str | None, what: str = "--input-shape") -> list[list[int]] | None:
    """'1,3,224,224' or '1,3,224,224;1,10' or '1x3x224x224' -> [[1,3,224,224], ...]. A shape may end in ':dtype'
    ('1,128:int64') to state that input's dtype. ``what`` names the field in errors (the CLI's flag, the app's
    field)."""
    if not text:
        return None
    shapes = []
    for part in text.replace(" ", "").split(";"):
        if not part:
            continue
        part, colon, dtype_text = part.partition(":")
        dtype = parse_dtype(dtype_text, f"{what} '{text}'") if colon else None
        try:
            dims = [int(d) for d in part.replace("x", ",").split(",") if d]
        except ValueError:
            raise AnalysisError(f"bad {what} '{text}': use comma-separated integers like 1,3,224,224 "
                                "(separate several inputs with ';'; state a dtype with ':int64')") from None
        if not dims or any(d <= 0 for d in dims):
            raise AnalysisError(f"bad {what} '{text}': every dimension must be a positive integer")
        shapes.append(InputShape(dims, dtype))
    check_shapes(shapes, f"{what} '{text}'")
    return shapes or None


def with_dtypes(shapes: list[list[int]] | None, dtypes: list[str] | tuple[str, ...]) -> list[list[int]] | None:
    """``--input-dtype`` values (one per input, in order) applied to the parsed shapes; a dtype already given after
    ':' in ``--input-shape`` must agree."""
    if not dtypes:
        return shapes
    names = [parse_dtype(d, f"--input-dtype '{d}'") for d in dtypes]
    if not shapes:
        raise AnalysisError("--input-dtype needs --input-shape: give each input's shape too (or write the dtype after "
                            "the shape, e.g. --input-shape 1,128:int64)")
    if len(names) > len(shapes):
        raise AnalysisError(f"--input-dtype was given {len(names)} times for {len(shapes)} input shape(s)")
    out = []
    for i, shape in enumerate(shapes):
        stated = getattr(shape, "dtype", None)
        if i < len(names) and stated and stated != names[i]:
            raise AnalysisError(f"input {i}: --input-shape says {stated} but --input-dtype says {names[i]}")
        out.append(InputShape(shape, names[i] if i < len(names) else stated))
    return out


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
