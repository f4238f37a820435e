"""This machine as a device: calibrate it (`embodied-ai calibrate`) and time registered models on it (`bench`).

The host is an ordinary user device (``services.hardware``, origin ``calibrate``, id ``host-<cpu>``, aliases
``host`` and ``this-machine``): `hw list`, `hw show`, `fit` and ``all_devices`` see the same entry, with its measured
peak, bandwidth, last-level cache (``cache_bytes``, ``cache_bandwidth_gbps``) and fitted ``calibration``.
Calibrating again replaces it. A `bench` result is stored as a measurement (``services.fit``) on it.
"""
from __future__ import annotations

import shlex
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Iterable

from embodied_tui.data.hardware import Calibration, HardwareEntry, load_catalog, parse_entry
from embodied_tui.data.lineage import here, now_utc
from embodied_tui.data.store import Registry
from embodied_tui.errors import NotFound, UserError
from embodied_tui.perf.bench import BenchResult, Measurement, bench_file, default_runtime, runtime_label
from embodied_tui.perf.calibrate import (
    HOST_ALIASES,
    Point,
    default_threads,
    fit_efficiency,
    host_device,
    host_slug,
    measure_host,
)
from embodied_tui.perf.gpu import (
    GPU_ALIASES,
    Available,
    GpuPeaks,
    choose_device,
    gpu_device,
    gpu_name,
    gpu_slug,
    measure_gpu,
    probe,
)
from embodied_tui.perf.roofline import default_efficiency, fit_model, fusion_for, layer_times, model_work
from embodied_tui.services.aliases import resolve
from embodied_tui.services.fit import MEASUREMENTS, record_batch, target_for
from embodied_tui.services.hardware import CALIBRATE, add_user_device, names_of, origins, registry, user_devices
from embodied_tui.services.lineage import log_calibration

# zoo models (embodied_tui.analysis.zoo BUILDERS) timed by `calibrate`: from 0.1 to 1000 MMACs, dense, depthwise,
# attention and recurrent, so eta_compute, eta_memory and t0 are all pinned
CALIBRATION_SET = ("mlp_policy", "lstm_policy", "small_vit", "resnet_tiny", "mobilenet_tiny", "mobilenet_v3_small",
                   "unet_small", "yolo_style_detector")

Progress = Callable[[str, float], None]

_DTYPE_PRECISION = {"float32": "fp32", "float": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16",
                    "int8": "int8", "qint8": "int8", "uint8": "int8", "quint8": "int8",
                    "float8_e4m3fn": "fp8", "float8_e5m2": "fp8", "float8_e4m3fnuz": "fp8", "float8_e5m2fnuz": "fp8",
                    "float4_e2m1fn_x2": "fp4"}


def precision_of(dtype: str) -> str:
    """The roofline precision a model stored as ``dtype`` runs at ("float32" -> "fp32"; unknown -> "fp32")."""
    return _DTYPE_PRECISION.get(dtype.removeprefix("torch."), "fp32")


def host_entry(db) -> HardwareEntry | None:
    """This machine's device (id ``host-<cpu>``) as `calibrate` or a first `bench` stored it, or None."""
    reg = registry(db)
    slug, where = host_slug(), origins(reg)
    return next((e for e in user_devices(reg) if e.id == slug and where.get(e.id) == CALIBRATE), None)


def _check_host_id(reg: Registry, host_id: str) -> dict[str, str]:
    """Device id -> origin; UserError when ``host_id`` is taken by a device `calibrate` did not store."""
    where = origins(reg)
    if where.get(host_id, CALIBRATE) != CALIBRATE:
        raise UserError(f"{host_id!r} is already a {where[host_id]} device in {reg.path}, not one `calibrate` "
                        f"stored; remove it (`embodied-ai hw remove {host_id}`) and calibrate again")
    return where


def save_host(db, entry: HardwareEntry) -> HardwareEntry:
    """Store the measured host as a user device of origin ``calibrate``, replacing an earlier one of the same id.

    The generic names (``host``, ``this-machine``) follow the machine calibrated last: another host in the same
    registry (one shared between machines) gives them up, and a device the user named so keeps them."""
    reg = registry(db)
    where = _check_host_id(reg, entry.id)
    others = [e for e in user_devices(reg) if e.id != entry.id]
    for other in others:
        if where.get(other.id) == CALIBRATE and set(other.aliases) & set(HOST_ALIASES):
            kept = [a for a in other.aliases if a not in HOST_ALIASES]
            add_user_device(reg, other.model_copy(update={"aliases": kept}), origin=CALIBRATE, replace=True)
    taken = names_of([*load_catalog(), *(o for o in others if where.get(o.id) != CALIBRATE)])
    aliases = [a for a in entry.aliases if a.casefold() not in taken]
    return add_user_device(reg, entry.model_copy(update={"aliases": aliases}), origin=CALIBRATE, replace=True)


def _host_from(peaks, calibration: Iterable[Calibration] = ()) -> HardwareEntry:
    data = host_device(peaks, [c.model_dump(mode="json") for c in calibration])
    return parse_entry(data, f"host device {data['id']}")


def ensure_host(db, *, threads: int | None = None) -> HardwareEntry:
    """The host device, measuring its peaks (a few seconds) the first time."""
    reg = registry(db)
    return host_entry(reg) or save_host(reg, _host_from(measure_host(threads)))


def save_model_file(module, example: tuple, folder: Path, name: str, runtime: str = "onnxruntime") -> tuple[Path, str]:
    """Write ``module`` where ``runtime`` can run it: ONNX (legacy exporter, opset 17) for onnxruntime, a traced
    TorchScript file for torch. Returns (path, format)."""
    import torch

    if runtime == "onnxruntime":
        path = Path(folder) / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, example, str(path), dynamo=False, opset_version=17)
        return path, "onnx"
    path = Path(folder) / f"{name}.pt"
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(module, example), str(path))
    return path, "torchscript"


def calibration_models(names: Iterable[str] = CALIBRATION_SET) -> list[tuple[str, object, tuple]]:
    """(name, module, example inputs) for the zoo builders in ``names`` (unknown names are skipped)."""
    from embodied_tui.analysis.zoo import BUILDERS

    return [(name, BUILDERS[name].build(), BUILDERS[name].example_inputs()) for name in names if name in BUILDERS]


def interval_fields(eff) -> dict:
    """The prediction interval of a fitted efficiency (``perf.calibrate.fit_efficiency``: the 10th-90th percentile
    of its own residuals on the timed models, x/÷ 2 with fewer than 8) as ``Calibration`` fields."""
    if eff.interval_log is None:
        return {}
    return {"interval_log_low": round(eff.interval_log[0], 4), "interval_log_high": round(eff.interval_log[1], 4),
            "interval_note": eff.basis_detail.split("interval: ", 1)[-1]}


def _export_models(built, folder: Path, runtime: str, report: Progress, skipped: dict[str, str]) -> list[tuple]:
    """Export each ``(name, module, example)`` of ``calibration_models`` into ``folder`` in ``runtime``'s format and
    analyse it at its example's shapes: ``[(name, path, format, analysis)]``. A model the exporter or analyser cannot
    take, or without a MAC count, is left out with its reason in ``skipped`` (it must not stop a calibration)."""
    from embodied_tui.analysis.api import analyze_file

    files = []
    for i, (name, module, example) in enumerate(built):
        report(f"exporting and analysing {name}", 0.15 + 0.15 * i / max(1, len(built)))
        try:
            path, fmt = save_model_file(module, example, folder, name, runtime)
            analysis = analyze_file(path, input_shape=[list(x.shape) for x in example])
        except Exception as exc:  # one model the exporter or analyser cannot take must not stop calibration
            skipped[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
            continue
        if analysis.macs is None:
            skipped[name] = f"no MAC count ({analysis.macs_null_reason})"
            continue
        files.append((name, path, fmt, analysis))
    return files


def _fastest_runs(files: list[tuple], rounds: int, min_seconds: float, report: Progress, where: str,
                  **bench) -> dict[str, BenchResult]:
    """Each model's fastest ``bench_file`` result (``bench``: runtime, threads, device choice) over ``rounds``
    interleaved rounds of ``min_seconds / rounds`` and at least 5 runs each. Interleaved (every model once, then
    again): a busy moment on a shared machine spoils one round of one model, not its fastest run; with five fitted
    numbers a single disturbed time moves all of them. ``where`` goes into the progress text (" on the GPU")."""
    best: dict[str, BenchResult] = {}
    for rnd in range(rounds):
        for i, (name, path, fmt, analysis) in enumerate(files):
            report(f"timing {name}{where} (round {rnd + 1} of {rounds})",
                   0.3 + 0.65 * (rnd * len(files) + i) / max(1, rounds * len(files)))
            result = bench_file(path, fmt, analysis.input_shapes, analysis.input_dtypes,
                                min_seconds=min_seconds / rounds, min_runs=5, **bench)
            if name not in best or result.min_ms < best[name].min_ms:
                best[name] = result
    return best


def _fit_points(files: list[tuple], best: dict[str, BenchResult], label: str, target) -> tuple[list, list]:
    """The fit's points (each model's fp32 layer times on ``target`` at eta = 1, with ``label``'s fusion, against its
    fastest run: the run least disturbed by other work) and ``[(name, analysis, result)]`` for the result rows."""
    points, analysed = [], []
    for name, _path, _fmt, analysis in files:
        times = layer_times(model_work(analysis, analysis.layer_costs, "fp32", fusion_for(label))[0], target)
        points.append(Point(name, times, best[name].min_ms))
        analysed.append((name, analysis, best[name]))
    return points, analysed


def _calibration(eff, label: str) -> Calibration:
    """The fp32 ``Calibration`` of runtime ``label`` that a fitted efficiency (``perf.calibrate.fit_efficiency``)
    stores."""
    return Calibration(precision="fp32", runtime=label, eta_compute=eff.eta_compute, eta_memory=eff.eta_memory,
                       overhead_ms=eff.overhead_ms, op_overhead_ms=eff.op_overhead_ms,
                       macs_per_output_half=eff.macs_per_output_half, source=eff.source, fit_error=eff.fit_error,
                       n_points=eff.n_points, **interval_fields(eff))


def _point_row(name: str, analysis, result: BenchResult, target, eff, **timing) -> dict:
    """One calibration model's result row: measured (fastest run) and median ms, ``timing``'s extra fields, the
    calibrated prediction and pure roofline on ``target``, the bound, and ``error = predicted / measured - 1``."""
    pred = fit_model(analysis, analysis.layer_costs, target, eff)
    return {"model": name, "macs": analysis.macs, "measured_ms": round(result.min_ms, 4),
            "median_ms": round(result.median_ms, 4), **timing,
            "predicted_ms": pred.predicted_latency_ms, "roofline_ms": pred.roofline_latency_ms,
            "bound": pred.bound, "error": round(pred.predicted_latency_ms / result.min_ms - 1, 4)}


def calibrate_host(db, *, threads: int | None = None, models: Iterable[str] = CALIBRATION_SET,
                   runtime: str = "onnxruntime", progress: Progress | None = None,
                   min_seconds: float = 0.45, rounds: int = 3) -> dict:
    """Measure this machine's peaks, time a set of zoo models with ``runtime`` (onnxruntime or torch), fit eta and
    t0 (and, from six models on, t_op and K) and store the host device with that calibration (other runtimes'
    calibrations are kept).

    Each model is timed for ``min_seconds`` in all, split over ``rounds`` interleaved rounds. The fit uses each
    model's fastest run (``min_ms``): the time without interference from other work on the
    machine, which is what a calibration of the machine itself should see. Predictions for the host are therefore
    for an otherwise idle machine; `bench` medians on a busy one come out higher.

    Returns ``{"device", "calibration", "points": [{model, measured_ms, predicted_ms, error, bound}], ...}``."""
    report = progress or (lambda stage, frac: None)
    reg = registry(db)
    _check_host_id(reg, host_slug())  # before minutes of measuring, not after
    threads = threads or default_threads()
    models = list(models)
    start = time.perf_counter()
    report("measuring peak FLOP/s and memory bandwidth", 0.0)
    peaks = measure_host(threads)
    previous = host_entry(reg)
    entry = _host_from(peaks)
    target, _ = target_for(entry, entry.default, "fp32")
    label = f"{runtime}-cpu"
    built = calibration_models(models)
    skipped = {n: "not in the zoo" for n in models if n not in {b[0] for b in built}}
    with tempfile.TemporaryDirectory(prefix="embodied-ai-calibrate-") as tmp:
        files = _export_models(built, Path(tmp), runtime, report, skipped)
        best = _fastest_runs(files, rounds, min_seconds, report, "", runtime=runtime, threads=threads)
    points, analysed = _fit_points(files, best, label, target)
    kept = [c for c in (previous.calibration if previous and previous.id == entry.id else [])
            if not (c.precision == "fp32" and c.runtime == label)]
    calibration, rows = None, []
    if points:
        version = analysed[-1][2].runtime_version
        eff = fit_efficiency(points, default_efficiency("cpu"), runtime=label,
                             source=f"`embodied-ai calibrate`: {len(points)} zoo models timed with {runtime} "
                                    f"{version}, {threads} threads")
        calibration = _calibration(eff, label)
        kept.append(calibration)
        rows = [_point_row(name, analysis, result, target, eff, cpu_pressure=result.cpu_pressure)
                for name, analysis, result in analysed]
    data = {**entry.model_dump(mode="json"), "calibration": [c.model_dump(mode="json") for c in kept]}
    entry = save_host(reg, parse_entry(data, f"host device {entry.id}"))
    lineage = None
    if calibration is not None:
        last = analysed[-1][2]
        lineage = log_calibration(reg, entry.id, calibration.model_dump(mode="json"), here(
            runtime=last.runtime, runtime_version=last.runtime_version, provider=last.provider)).lineage
    report("done", 1.0)
    mode = entry.default
    cache = (None if mode.cache_bandwidth_gbps is None else {"bytes": entry.cache_bytes,
             "bandwidth_gbps": mode.cache_bandwidth_gbps, "source": entry.sources.get("cache")})
    return {"device": entry.model_dump(mode="json"),
            "calibration": None if calibration is None else calibration.model_dump(mode="json"),
            "points": rows, "threads": threads, "runtime": label, "seconds": round(time.perf_counter() - start, 2),
            "peak_gflops": round(peaks.peak_flops / 1e9, 2), "bandwidth_gbps": round(peaks.bandwidth / 1e9, 2),
            "copy_gbps": round(peaks.copy_bytes_per_s / 1e9, 2), "cache": cache,
            "triad_gbps": round(peaks.triad_bytes_per_s / 1e9, 2),
            "skipped": skipped, "lineage": None if lineage is None else lineage.model_dump(mode="json")}


def check_unchanged(reg: Registry, record) -> None:
    """Refuse (one line) unless ``record``'s file is still the regular file it was when registered: same size, same
    SHA-256 and, for a model with external data, the same identity (its data files' hashes). Nothing but ``stat`` runs
    on a path that is not a regular file (a FIFO, a device), and a file of another size is never read: a record
    imported from elsewhere may name any path."""
    from embodied_tui.data.store import identity_for, not_regular
    from embodied_tui.hashing import sha256_file

    path = Path(record.path)
    who = f"{record.name} v{record.version}"
    try:
        st = path.stat()
    except FileNotFoundError:
        raise NotFound(f"model file {path} of {who} is gone; register it again") from None
    except OSError as exc:
        raise UserError(f"cannot read model file {path} of {who}: {exc.strerror or exc}") from None
    kind = not_regular(st.st_mode)
    if kind:
        raise UserError(f"model file {path} of {who} is {kind}, not a model file; nothing was run (register the "
                        f"real file again)")
    changed = (f"model file {path} of {who} changed on disk since it was registered; register it again "
               f"(`embodied-ai model register {shlex.quote(str(path))} --name {shlex.quote(record.name)}`) and "
               f"bench the new version")
    if st.st_size != record.size_bytes:
        raise UserError(changed)
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise UserError(f"cannot read model file {path} of {who}: {exc.strerror or exc}") from None
    if digest != record.sha256:
        raise UserError(changed)
    stored = reg.identity(record)
    if record.external_data and stored is not None:
        try:
            now = identity_for(path, digest, record.external_data)
        except UserError as exc:
            raise UserError(f"{who}: {exc}") from None
        if now != stored:
            raise UserError(f"the external data of model file {path} of {who} changed on disk since it was "
                            f"registered; register it again and bench the new version")


def bench_model(db, name: str, runtime: str | None = None, *, version: int | None = None,
                threads: int | None = None, trust_code: bool = False, save: bool = True,
                min_seconds: float = 1.0, device: str = "cpu", available: Available | None = None) -> dict:
    """Time a registered model on this machine; store the median as a measurement on the host device, or on the
    GPU's device (``gpu-<name>``) when ``device`` ("auto", "gpu", "cpu") chooses the GPU (``perf.gpu``).
    ``available``: what the machine offers (probed when None). The result's ``device_choice`` says where it ran and
    why; its ``notice`` is the one line to show when a GPU was asked for and none is usable."""
    reg = registry(db)
    record = resolve(reg, name, version)  # NAME, NAME@3, NAME@ALIAS
    if record.format == "hf_config":  # analysis.hf.folder: an architecture alone, nothing to time
        raise UserError(f"{record.name} v{record.version} is a Hugging Face config.json only: an architecture with "
                        f"no weights, so there is nothing to run. `embodied-ai fit {record.name}` predicts its latency "
                        "from the architecture; to measure it, register a runnable file of the model (ONNX, "
                        "TorchScript or ExportedProgram) and bench that")
    path = Path(record.path)
    check_unchanged(reg, record)  # the bytes timed are the bytes the measurement is filed under
    threads = threads or default_threads()
    runtime = runtime or default_runtime(record.format)
    available = available if available is not None else (probe() if device != "cpu" else Available())
    choice = choose_device(device, runtime, available)
    name_of_gpu = gpu_name(available) if choice.on_gpu else None
    host = ensure_gpu(reg, available) if choice.on_gpu else ensure_host(reg, threads=threads)
    result = bench_file(path, record.format, record.input_shapes, record.input_dtypes, runtime=runtime,
                        threads=threads, trust_code=trust_code, min_seconds=min_seconds, choice=choice,
                        gpu_name=name_of_gpu)
    m = Measurement(model=record.name, model_version=record.version, model_sha256=record.sha256, hardware=host.id,
                    power_mode=host.default.name, precision=precision_of(record.dtype),
                    runtime=runtime_label(result), runtime_version=result.runtime_version,
                    batch=record_batch(record), latency_ms=result.median_ms, p90_ms=result.p90_ms,
                    min_ms=result.min_ms, runs=result.runs, threads=result.threads,
                    source=f"embodied-ai bench on {host.id}", timed=result.timed, measured_at=(now := now_utc()),
                    lineage=here(at=now, runtime=result.runtime, runtime_version=result.runtime_version,
                                 provider=result.provider))
    if save:
        reg.table_insert(MEASUREMENTS, m.model_dump(mode="json"))
    return {"measurement": m.model_dump(mode="json"), "bench": result.model_dump(mode="json"), "saved": save,
            "device_choice": {"device": choice.device, "provider": choice.provider, "reason": choice.reason,
                              "notice": choice.notice}}


# ---------------------------------------------------------------------------------------------------- the GPU

def gpu_entry(db, name: str) -> HardwareEntry | None:
    """The GPU called ``name`` as `calibrate --device gpu` or a first GPU `bench` stored it (id ``gpu-<name>``)."""
    reg = registry(db)
    slug, where = gpu_slug(name), origins(reg)
    return next((e for e in user_devices(reg) if e.id == slug and where.get(e.id) == CALIBRATE), None)


def save_gpu(db, entry: HardwareEntry) -> HardwareEntry:
    """Store a measured GPU as a user device of origin ``calibrate`` (replacing an earlier one of its id); the
    generic name ``this-gpu`` follows the GPU measured last, as ``host`` does for the CPU (``save_host``)."""
    reg = registry(db)
    where = _check_host_id(reg, entry.id)
    for other in user_devices(reg):
        if other.id != entry.id and where.get(other.id) == CALIBRATE and set(other.aliases) & set(GPU_ALIASES):
            kept = [a for a in other.aliases if a not in GPU_ALIASES]
            add_user_device(reg, other.model_copy(update={"aliases": kept}), origin=CALIBRATE, replace=True)
    taken = names_of([*load_catalog(), *(o for o in user_devices(reg)
                                         if o.id != entry.id and where.get(o.id) != CALIBRATE)])
    aliases = [a for a in entry.aliases if a.casefold() not in taken]
    return add_user_device(reg, entry.model_copy(update={"aliases": aliases}), origin=CALIBRATE, replace=True)


def _gpu_from(name: str, peaks: GpuPeaks | None, calibration: Iterable[Calibration] = ()) -> HardwareEntry:
    data = gpu_device(name, peaks, [c.model_dump(mode="json") for c in calibration])
    return parse_entry(data, f"GPU device {data['id']}")


def ensure_gpu(db, available: Available) -> HardwareEntry:
    """This machine's GPU as a device, measuring its peaks (seconds, torch CUDA) the first time; without torch CUDA
    the device is stored with its name and no peaks."""
    reg = registry(db)
    name = gpu_name(available) or "CUDA GPU"
    found = gpu_entry(reg, name)
    if found is not None:
        return found
    return save_gpu(reg, _gpu_from(name, measure_gpu() if available.torch_cuda else None))


def calibrate_gpu(db, *, models: Iterable[str] = CALIBRATION_SET, available: Available | None = None,
                  progress: Progress | None = None, min_seconds: float = 0.45, rounds: int = 3) -> dict:
    """`calibrate --device gpu`: measure GPU 0 (fp32/fp16 matmul, copy bandwidth; ``perf.gpu.measure_gpu``), time
    the calibration models on it (onnxruntime with its CUDA provider, else torch CUDA), fit eta and t0 (and from six
    models t_op and K) with ``perf.calibrate.fit_efficiency`` against the measured fp32 peak, and store the device
    ``gpu-<name>`` with that calibration (other runtimes' calibrations are kept). As for the host, each model's
    fastest run of ``rounds`` interleaved rounds is fitted.

    Raises UserError when torch cannot reach a CUDA GPU (the peaks need it); the CLI then calibrates the CPU."""
    report = progress or (lambda stage, frac: None)
    available = available if available is not None else probe()
    if not available.torch_cuda:
        raise UserError(choose_device("gpu", "torch", available).reason)
    reg = registry(db)
    name = gpu_name(available) or "CUDA GPU"
    _check_host_id(reg, gpu_slug(name))
    runtime = "onnxruntime" if choose_device("gpu", "onnxruntime", available).on_gpu else "torch"
    choice = choose_device("gpu", runtime, available)
    start = time.perf_counter()
    report("measuring GPU matmul FLOP/s and copy bandwidth", 0.0)
    peaks = measure_gpu()
    previous = gpu_entry(reg, name)
    entry = _gpu_from(name, peaks)
    target, _ = target_for(entry, entry.default, "fp32")
    built = calibration_models(models)
    skipped = {n: "not in the zoo" for n in models if n not in {b[0] for b in built}}
    with tempfile.TemporaryDirectory(prefix="embodied-ai-calibrate-gpu-") as tmp:
        files = _export_models(built, Path(tmp), runtime, report, skipped)
        best = _fastest_runs(files, rounds, min_seconds, report, " on the GPU", runtime=runtime,
                             threads=default_threads(), choice=choice, gpu_name=name)
    label = runtime_label(next(iter(best.values()))) if best else f"{runtime}-cuda"
    points, analysed = _fit_points(files, best, label, target)
    kept = [c for c in (previous.calibration if previous else []) if not (c.precision == "fp32" and c.runtime == label)]
    calibration, rows = None, []
    if points:
        version = best[points[0].label].runtime_version
        eff = fit_efficiency(points, default_efficiency("gpu"), runtime=label,
                             source=f"`embodied-ai calibrate --device gpu`: {len(points)} zoo models timed on "
                                    f"{name} with {runtime} {version} ({choice.provider})")
        calibration = _calibration(eff, label)
        kept.append(calibration)
        rows = [_point_row(model, analysis, result, target, eff, p90_ms=round(result.p90_ms, 4))
                for model, analysis, result in analysed]
    entry = save_gpu(reg, _gpu_from(name, peaks, kept))
    lineage = None
    if calibration is not None:
        first = best[points[0].label]
        lineage = log_calibration(reg, entry.id, calibration.model_dump(mode="json"), here(
            runtime=first.runtime, runtime_version=first.runtime_version, provider=first.provider)).lineage
    report("done", 1.0)
    return {"device": entry.model_dump(mode="json"), "gpu": name, "provider": choice.provider, "runtime": label,
            "calibration": None if calibration is None else calibration.model_dump(mode="json"), "points": rows,
            "peak_tflops": {p: round(peaks.peak(p) / 1e12, 3) for p in ("fp32", "fp16") if peaks.peak(p)},
            "matmul_tflops": {p: {str(n): round(r / 1e12, 3) for n, r in sizes.items()}
                              for p, sizes in peaks.matmul_flops.items()},
            "bandwidth_gbps": round(peaks.copy_bytes_per_s / 1e9, 2), "sm_count": peaks.sm_count,
            "seconds": round(time.perf_counter() - start, 2), "skipped": skipped,
            "lineage": None if lineage is None else lineage.model_dump(mode="json")}
