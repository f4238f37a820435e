"""The fit verbs: roofline rows for a model, measurements, host calibration and host benchmarks.

Where the efficiencies of a row come from, most specific first:
1. measurements in this registry for the device x precision (x runtime): fitted on top of (2) or (3) — one point
   scales them, two or three fit a common scale and t0, four or more fit eta_compute, eta_memory and t0
   (``perf.calibrate.fit_efficiency``);
2. a calibration stored with the device (catalog entries fitted to published measurements; the host's own calibration
   from `embodied-ai calibrate`);
3. the documented default of the device type (``perf.roofline.DEFAULT_EFFICIENCY``), marked ``default``.

The host is an ordinary user device (``services.hardware``, origin ``calibrate``, id ``host-<cpu>``, aliases
``host`` and ``this-machine``): `hw list`, `hw show`, `fit` and ``all_devices`` see the same entry, with its measured
peak, bandwidth, last-level cache (``cache_bytes``, ``cache_bandwidth_gbps``) and fitted ``calibration``.
Calibrating again replaces it. Table this area owns in the registry: ``measurements`` (one ``bench.Measurement`` per
document).
"""
from __future__ import annotations

import math
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from embodied_tui.perf.bench import BenchResult, Measurement, bench_file, default_runtime, runtime_label
from embodied_tui.perf.calibrate import (HOST_ALIASES, Point, default_threads, fit_efficiency, host_device,
                                             host_slug, measure_host)
from embodied_tui.perf.roofline import (PRECISIONS, Efficiency, Target, default_efficiency, empty_fit, fit_model,
                                             fusion_for, layer_times, model_work, scaled_bytes)
from embodied_tui.data.hardware import Calibration, HardwareEntry, PowerMode, find_device, load_catalog, parse_entry
from embodied_tui.data.records import ModelRecord
from embodied_tui.data.store import Registry
from embodied_tui.errors import NotFound, UserError
from embodied_tui.services.hardware import (CALIBRATE, add_user_device, all_devices, names_of, origins, registry,
                                            user_devices)

MEASUREMENTS = "measurements"
# zoo models (embodied_tui.analysis.zoo BUILDERS) timed by `calibrate`: from 0.1 to 1000 MMACs, dense, depthwise,
# attention and recurrent, so eta_compute, eta_memory and t0 are all pinned
CALIBRATION_SET = ("mlp_policy", "lstm_policy", "small_vit", "resnet_tiny", "mobilenet_tiny", "mobilenet_v3_small",
                   "unet_small", "yolo_style_detector")

Progress = Callable[[str, float], None]


# ---------------------------------------------------------------------------------------------------- devices

def devices(db) -> list[HardwareEntry]:
    """Every device a fit may use: the catalog and the user's devices, the host measured here among them."""
    return all_devices(registry(db))


def target_for(entry: HardwareEntry, mode: PowerMode, precision: str) -> tuple[Target | None, str | None]:
    """The roofline target of a device x mode x precision, or None with the reason (no peak stated). The cache level
    counts where the device states one (``cache_bytes`` and the mode's ``cache_bandwidth_gbps``: the host)."""
    peak = mode.peak_flops(precision)
    if peak is None:
        stated = ", ".join(mode.peak_tflops) or "none"
        return None, f"{entry.id} ({mode.name}) states no {precision} peak (stated: {stated})"
    link, cache_bw = entry.host_link_gbps, mode.cache_bandwidth_gbps
    return Target(hardware=entry.id, power_mode=mode.name, precision=precision, device_type=entry.type,
                  peak_flops=peak, vector_flops=mode.peak_flops("fp32"), bandwidth=mode.bandwidth_bytes_per_s(),
                  power_w=mode.power_w, memory_bytes=entry.memory_bytes,
                  onchip_memory_bytes=entry.onchip_memory_bytes,
                  host_link_bytes_per_s=None if link is None else link * 1e9,
                  cache_bytes=entry.cache_bytes if cache_bw is not None else None,
                  cache_bandwidth=None if cache_bw is None else cache_bw * 1e9), None


def _check_precision(precision: str | None) -> None:
    if precision is not None and precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")


# ---------------------------------------------------------------------------------------------------- measurements

def list_measurements(db, *, model: str | None = None, hw: str | None = None) -> list[Measurement]:
    out = [Measurement.model_validate(d) for d in registry(db).table_all(MEASUREMENTS)]
    if model is not None:
        out = [m for m in out if m.model == model]
    if hw is not None:
        out = [m for m in out if m.hardware.casefold() == hw.casefold()]
    return out


def add_measurement(db, *, model: str, hw: str, mode: str | None, precision: str, latency_ms: float, source: str,
                    runtime: str = "unknown", batch: int = 1, timed: str = "", version: int | None = None,
                    p90_ms: float | None = None, threads: int | None = None,
                    runtime_version: str | None = None) -> Measurement:
    """Store a latency of a registered model on a device (checked: model, device, mode, precision, positivity)."""
    reg = registry(db)
    record = reg.get(model, version)
    entry = find_device(hw, devices(reg))
    pm = entry.mode(mode)
    _check_precision(precision)
    if not latency_ms > 0 or not math.isfinite(latency_ms):
        raise UserError(f"--latency-ms must be a positive number of milliseconds, got {latency_ms}")
    if batch < 1:
        raise UserError(f"--batch must be >= 1, got {batch}")
    if not source.strip():
        raise UserError("--source must say where the number comes from (a URL, a paper, 'my bench 2024-05-01')")
    m = Measurement(model=record.name, model_version=record.version, model_sha256=record.sha256,
                    hardware=entry.id, power_mode=pm.name, precision=precision, runtime=runtime,
                    runtime_version=runtime_version, batch=batch, latency_ms=float(latency_ms), p90_ms=p90_ms,
                    threads=threads, source=source.strip(), timed=timed)
    reg.table_insert(MEASUREMENTS, m.model_dump(mode="json"))
    return m


_DTYPE_PRECISION = {"float32": "fp32", "float": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16",
                    "int8": "int8", "qint8": "int8", "uint8": "int8", "quint8": "int8"}


def precision_of(dtype: str) -> str:
    """The roofline precision a model stored as ``dtype`` runs at ("float32" -> "fp32"; unknown -> "fp32")."""
    return _DTYPE_PRECISION.get(dtype.removeprefix("torch."), "fp32")


def _record_batch(record: ModelRecord) -> int:
    return record.input_shapes[0][0] if record.input_shapes and record.input_shapes[0] else 1


# ---------------------------------------------------------------------------------------------------- efficiencies

def _stored_efficiency(entry: HardwareEntry, mode: str, precision: str, runtime: str | None) -> Efficiency | None:
    cal = entry.calibration_for(precision, runtime, mode) if entry.calibration else None
    if cal is None:
        return None
    base = default_efficiency(entry.type)
    kind = "host" if entry.id.startswith("host-") else "catalog"
    return Efficiency(cal.eta_compute, cal.eta_memory or base.eta_memory, cal.overhead_ms, kind, cal.source,
                      runtime=cal.runtime, fit_error=cal.fit_error, n_points=cal.n_points,
                      op_overhead_ms=cal.op_overhead_ms, macs_per_output_half=cal.macs_per_output_half)


@dataclass
class FitContext:
    """What one fit call reads once: the registry, devices, measurements and fitted efficiencies."""

    reg: Registry
    entries: list[HardwareEntry]
    measurements: list[Measurement]
    efficiencies: dict[tuple, Efficiency] = field(default_factory=dict)
    details: dict[str, list] = field(default_factory=dict)
    asked: dict[tuple, Efficiency] = field(default_factory=dict)  # (device, mode, precision, runtime) -> efficiency

    @classmethod
    def open(cls, db) -> "FitContext":
        reg = registry(db)
        return cls(reg, devices(reg), list_measurements(reg))

    def target(self, entry: HardwareEntry, mode: PowerMode, precision: str) -> tuple[Target | None, str | None]:
        return target_for(entry, mode, precision)

    def entry(self, hw_id: str) -> HardwareEntry | None:
        return next((e for e in self.entries if e.id == hw_id), None)

    def layer_costs(self, record: ModelRecord) -> list:
        if record.sha256 not in self.details:
            details = self.reg.details(record)
            self.details[record.sha256] = details.layer_costs if details else []
        return self.details[record.sha256]

    def record_of(self, m: Measurement) -> ModelRecord | None:
        versions = self.reg.versions(m.model)
        for rec in versions:
            if m.model_sha256 and rec.sha256 == m.model_sha256:
                return rec
        if m.model_sha256:
            return None  # the measured bytes are no longer registered
        return next((r for r in versions if r.version == m.model_version), versions[-1] if versions else None)

    def efficiency(self, entry: HardwareEntry, mode: str, precision: str, runtime: str | None,
                   prefer: str | None = None) -> Efficiency:
        """The efficiency of ``runtime`` on entry x mode x precision. Without one: ``prefer`` (the model's own runtime,
        e.g. onnxruntime-cpu for an ONNX file) where the device has measurements or a calibration of it, else the
        runtime with most measurements there."""
        asked = (entry.id, mode.casefold(), precision, runtime, prefer)  # every model asking this gets one answer
        if asked not in self.asked:
            self.asked[asked] = self._efficiency(entry, mode, precision, runtime, prefer)
        return self.asked[asked]

    def _efficiency(self, entry: HardwareEntry, mode: str, precision: str, runtime: str | None,
                    prefer: str | None) -> Efficiency:
        mine = [m for m in self.measurements if m.hardware == entry.id and m.precision == precision]
        if runtime is None and prefer is not None and (
                any(m.runtime == prefer for m in mine)
                or any(c.runtime == prefer and c.precision == precision for c in entry.calibration)):
            runtime = prefer
        if runtime is None and mine:  # the runtime with most measurements on this device x precision
            counts: dict[str, int] = {}
            for m in mine:
                counts[m.runtime] = counts.get(m.runtime, 0) + 1
            runtime = max(counts, key=lambda r: (counts[r], r))
        if runtime is not None:
            mine = [m for m in mine if m.runtime == runtime]
        key = (entry.id, mode.casefold() if not mine else "*", precision, runtime)
        if key in self.efficiencies:
            return self.efficiencies[key]
        base = (_stored_efficiency(entry, mode, precision, runtime) or _stored_efficiency(entry, mode, precision, None)
                or default_efficiency(entry.type))
        eff = base
        points = self._points(entry, mine)
        if points:
            src = (f"{len(points)} measurement{'s' if len(points) > 1 else ''} on {entry.id} ({precision}, "
                   f"{runtime}): {', '.join(sorted({p.label for p in points}))}")
            eff = fit_efficiency(points, base, source=src, runtime=runtime)
        self.efficiencies[key] = eff
        return eff

    def _points(self, entry: HardwareEntry, mine: Iterable[Measurement]) -> list[Point]:
        points = []
        for m in mine:
            record = self.record_of(m)
            if record is None or record.macs is None or m.batch != _record_batch(record):
                continue
            try:
                pm = entry.mode(m.power_mode)
            except NotFound:
                continue
            target, _ = self.target(entry, pm, m.precision)
            if target is None:
                continue
            work, _ = model_work(record, self.layer_costs(record), m.precision, fusion_for(m.runtime))
            times = layer_times(work, target, scaled_bytes(record, "weight_bytes", m.precision) or 0.0)
            if times.stream_s is None:
                continue
            points.append(Point(f"{record.name}@{pm.name}", times, m.latency_ms))
        return points

    def of_model(self, record: ModelRecord) -> list[Measurement]:
        """The stored measurements of this record (its name, and its bytes where the measurement names them)."""
        return [m for m in self.measurements if m.model == record.name and m.model_sha256 in (None, record.sha256)]

    def measured(self, record: ModelRecord, hw: str, mode: str, precision: str, runtime: str | None,
                 mine: list[Measurement] | None = None) -> tuple[float | None, int, str | None]:
        """The median stored latency of the record on hw x mode x precision (``mine``: ``of_model(record)``)."""
        hits = [m for m in (self.of_model(record) if mine is None else mine) if m.hardware == hw
                and m.power_mode.casefold() == mode.casefold() and m.precision == precision
                and m.batch == _record_batch(record)]
        same = [m for m in hits if m.runtime == runtime]
        hits = same or hits
        if not hits:
            return None, 0, None
        return statistics.median(m.latency_ms for m in hits), len(hits), hits[-1].runtime


# ---------------------------------------------------------------------------------------------------- fit

def _select(ctx: FitContext, hw: str | None, mode: str | None) -> list[tuple[HardwareEntry, list[PowerMode]]]:
    entries = [find_device(hw, ctx.entries)] if hw else ctx.entries
    out = []
    for entry in entries:
        if mode is None:
            out.append((entry, list(entry.power_modes)))
        elif hw:
            out.append((entry, [entry.mode(mode)]))  # NotFound lists the valid modes
        else:
            try:
                out.append((entry, [entry.mode(mode)]))
            except NotFound:
                continue
    if not out:
        raise NotFound(f"no device has a power mode {mode!r}; give --hw to see a device's modes "
                       f"(`embodied-ai hw show ID`)")
    return out


def _sort_key(row: dict):
    pred = row.get("predicted_latency_ms")
    return (pred is None, pred if pred is not None else 0.0, row["hardware"], row["power_mode"], row["precision"])


def fit_record(ctx: FitContext, record: ModelRecord, *, hw: str | None = None, mode: str | None = None,
               precision: str | None = None, runtime: str | None = None, with_layers: bool = False) -> list[dict]:
    """Roofline rows of one record on the devices x modes x precisions asked (all by default), fastest first.

    The model's per-layer work depends on the precision and fusion only: it is computed once for each and shared by
    every device x mode (``fit_model(work=)``); the times on a target are computed once, in ``fit_model``."""
    _check_precision(precision)
    costs = ctx.layer_costs(record)
    mine = ctx.of_model(record)
    fusion = fusion_for(runtime) if runtime else None
    prefer = f"{default_runtime(record.format)}-cpu"  # how `bench` files this model's own measurements
    works: dict[tuple[str, str], tuple] = {}  # (precision, fusion) -> model_work(...)
    rows = []
    for entry, modes in _select(ctx, hw, mode):
        for pm in modes:
            precisions = [precision] if precision else [p for p in PRECISIONS if p in pm.peak_tflops]
            for prec in precisions:
                target, why = ctx.target(entry, pm, prec)
                if target is None:
                    fit = empty_fit(record.name, entry.id, pm.name, prec, pm.power_w, record.macs, why)
                else:
                    eff = ctx.efficiency(entry, pm.name, prec, runtime, prefer)
                    key = (prec, fusion or fusion_for(eff.runtime))
                    if key not in works and record.macs is not None:
                        works[key] = model_work(record, costs, *key)
                    fit = fit_model(record, costs, target, eff, with_layers=with_layers, fusion=fusion,
                                    work=works.get(key))
                row = fit.as_row()
                meas, n, meas_rt = ctx.measured(record, entry.id, pm.name, prec, row.get("runtime") or runtime, mine)
                row.update(model_version=record.version, hardware_name=entry.name, device_type=entry.type,
                           measured_latency_ms=meas, measured_n=n, measured_runtime=meas_rt,
                           measured_over_predicted=(None if meas is None or not row["predicted_latency_ms"]
                                                    else round(meas / row["predicted_latency_ms"], 4)))
                rows.append(row)
    rows.sort(key=_sort_key)
    return rows


def fit_rows(db, model_name: str, hw: str | None = None, mode: str | None = None, precision: str | None = None,
             *, runtime: str | None = None, version: int | None = None, with_layers: bool = False) -> list[dict]:
    """Roofline rows of one model on every device x power mode x precision (or those asked), fastest first.

    Raises NotFound for an unknown model, device or mode (listing the valid ones), UserError for an unknown precision
    or a model whose MACs could not be counted (with the analyser's reason)."""
    ctx = FitContext.open(db)
    record = ctx.reg.get(model_name, version)
    if record.macs is None:
        why = record.macs_null_reason or "the analysis could not count them"
        raise UserError(f"no prediction for {record.name} v{record.version}: its MACs are unknown ({why}); "
                        f"re-register it with --input-shape, or as TorchScript/ONNX")
    return fit_record(ctx, record, hw=hw, mode=mode, precision=precision, runtime=runtime, with_layers=with_layers)


def fit_all(db, *, hw: str | None = None, mode: str | None = None, precision: str | None = None) -> list[dict]:
    """Rows for every registered model with MACs (latest versions), for graph building and comparisons."""
    ctx = FitContext.open(db)
    rows = []
    for record in ctx.reg.list_models():
        if record.macs is not None:
            rows.extend(fit_record(ctx, record, hw=hw, mode=mode, precision=precision))
    return rows


# ---------------------------------------------------------------------------------------------------- the host

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
    from embodied_tui.analysis.api import analyze_file

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
    points, analysed, version = [], [], ""
    skipped = {n: "not in the zoo" for n in models if n not in {b[0] for b in built}}
    files = []
    with tempfile.TemporaryDirectory(prefix="embodied-ai-calibrate-") as tmp:
        for i, (name, module, example) in enumerate(built):
            report(f"exporting and analysing {name}", 0.15 + 0.15 * i / max(1, len(built)))
            try:
                path, fmt = save_model_file(module, example, Path(tmp), name, runtime)
                analysis = analyze_file(path, input_shape=[list(x.shape) for x in example])
            except Exception as exc:  # one model the exporter or analyser cannot take must not stop calibration
                skipped[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
                continue
            if analysis.macs is None:
                skipped[name] = f"no MAC count ({analysis.macs_null_reason})"
                continue
            files.append((name, path, fmt, analysis))
        # interleaved rounds (every model once, then again): a busy moment on a shared machine spoils one round of
        # one model, not its fastest run; with five fitted numbers a single disturbed time moves all of them
        best: dict[str, BenchResult] = {}
        for rnd in range(rounds):
            for i, (name, path, fmt, analysis) in enumerate(files):
                report(f"timing {name} (round {rnd + 1} of {rounds})",
                       0.3 + 0.65 * (rnd * len(files) + i) / max(1, rounds * len(files)))
                result = bench_file(path, fmt, analysis.input_shapes, analysis.input_dtypes, runtime=runtime,
                                    threads=threads, min_seconds=min_seconds / rounds, min_runs=5)
                if name not in best or result.min_ms < best[name].min_ms:
                    best[name] = result
        for name, path, fmt, analysis in files:
            result = best[name]
            version = result.runtime_version
            times = layer_times(model_work(analysis, analysis.layer_costs, "fp32", fusion_for(label))[0], target)
            points.append(Point(name, times, result.min_ms))  # the run least disturbed by other work
            analysed.append((name, analysis, result))
    kept = [c for c in (previous.calibration if previous and previous.id == entry.id else [])
            if not (c.precision == "fp32" and c.runtime == label)]
    calibration, rows = None, []
    if points:
        eff = fit_efficiency(points, default_efficiency("cpu"), runtime=label,
                             source=f"`embodied-ai calibrate`: {len(points)} zoo models timed with {runtime} "
                                    f"{version}, {threads} threads")
        calibration = Calibration(precision="fp32", runtime=label, eta_compute=eff.eta_compute,
                                  eta_memory=eff.eta_memory, overhead_ms=eff.overhead_ms,
                                  op_overhead_ms=eff.op_overhead_ms,
                                  macs_per_output_half=eff.macs_per_output_half, source=eff.source,
                                  fit_error=eff.fit_error, n_points=eff.n_points)
        kept.append(calibration)
        for name, analysis, result in analysed:
            pred = fit_model(analysis, analysis.layer_costs, target, eff)
            rows.append({"model": name, "macs": analysis.macs, "measured_ms": round(result.min_ms, 4),
                         "median_ms": round(result.median_ms, 4), "cpu_pressure": result.cpu_pressure,
                         "predicted_ms": pred.predicted_latency_ms, "roofline_ms": pred.roofline_latency_ms,
                         "bound": pred.bound, "error": round(pred.predicted_latency_ms / result.min_ms - 1, 4)})
    data = {**entry.model_dump(mode="json"), "calibration": [c.model_dump(mode="json") for c in kept]}
    entry = save_host(reg, parse_entry(data, f"host device {entry.id}"))
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
            "skipped": skipped}


def bench_model(db, name: str, runtime: str | None = None, *, version: int | None = None,
                threads: int | None = None, trust_code: bool = False, save: bool = True,
                min_seconds: float = 1.0) -> dict:
    """Time a registered model on this machine; store the median as a measurement on the host device."""
    reg = registry(db)
    record = reg.get(name, version)
    path = Path(record.path)
    if not path.exists():
        raise NotFound(f"model file {path} of {record.name} v{record.version} is gone; register it again")
    threads = threads or default_threads()
    host = ensure_host(reg, threads=threads)
    result = bench_file(path, record.format, record.input_shapes, record.input_dtypes,
                        runtime=runtime or default_runtime(record.format), threads=threads, trust_code=trust_code,
                        min_seconds=min_seconds)
    m = Measurement(model=record.name, model_version=record.version, model_sha256=record.sha256, hardware=host.id,
                    power_mode=host.default.name, precision=precision_of(record.dtype),
                    runtime=runtime_label(result), runtime_version=result.runtime_version,
                    batch=_record_batch(record), latency_ms=result.median_ms, p90_ms=result.p90_ms,
                    min_ms=result.min_ms, runs=result.runs, threads=result.threads,
                    source=f"embodied-ai bench on {host.id}", timed=result.timed)
    if save:
        reg.table_insert(MEASUREMENTS, m.model_dump(mode="json"))
    return {"measurement": m.model_dump(mode="json"), "bench": result.model_dump(mode="json"), "saved": save}
