"""The fit verbs: devices and their roofline targets, stored measurements, and the fit rows of a model
(``perf.fit_row.FitRow``). The host's own calibration and benchmarks are ``services.host``'s.

Where the efficiencies of a row come from, most specific first:
1. measurements in this registry for the device x precision (x runtime): fitted on top of (2) or (3) — one point
   scales them, two or three fit a common scale and t0, four or more fit eta_compute, eta_memory and t0
   (``perf.calibrate.fit_efficiency``);
2. a calibration stored with the device (catalog entries fitted to published measurements; the host's own calibration
   from `embodied-ai calibrate`);
3. on a GPU/SoC (runtime unset or TensorRT): the TensorRT engine model of its family fitted to published latencies
   (``perf.published_fit``, ``data/published/calibration.yaml``), marked ``published``;
4. the documented default of the device type (``perf.roofline.DEFAULT_EFFICIENCY``), marked ``default``.
Every row carries an interval (``interval_low_ms``/``interval_high_ms``) and a ``basis`` (exact, sibling, defaults).

A decoder transformer asked with ``prompt_tokens`` and ``new_tokens`` gets generation rows instead (prefill + K decode
steps, ``services.fit_llm``, which states their conventions); without them, one forward pass at its registered shape.

Table this area owns in the registry: ``measurements`` (one ``bench.Measurement`` per document).
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from pydantic import ValidationError

from embodied_tui.data.hardware import HardwareEntry, PowerMode, find_device
from embodied_tui.data.lineage import here, now_utc
from embodied_tui.data.records import ModelRecord, read_as
from embodied_tui.data.store import Registry, error_text, warn
from embodied_tui.errors import NotFound, UserError
from embodied_tui.perf.bench import Measurement, default_runtime
from embodied_tui.perf.calibrate import Point, fit_efficiency, interval
from embodied_tui.perf.fit_row import FitRow
from embodied_tui.perf.published_fit import ENGINE_TYPES, published_efficiency
from embodied_tui.perf.roofline import (
    PRECISIONS,
    TOP_LAYERS,
    Efficiency,
    Target,
    default_efficiency,
    empty_fit,
    fit_model,
    fusion_for,
    io_bytes_of,
    layer_times,
    model_work,
    scaled_bytes,
    target_of,
    work_totals,
)
from embodied_tui.services.aliases import resolve
from embodied_tui.services.fit_llm import check_tokens, decoder_tower, generation_precisions, generation_row
from embodied_tui.services.hardware import all_devices, registry

if TYPE_CHECKING:
    from embodied_tui.perf.roofline_many import Works
    from embodied_tui.services.layer_store import LayerSource

MEASUREMENTS = "measurements"
DETAILS_KEPT = 256  # models whose per-layer costs a FitContext keeps (FitContext.layer_costs)


# ---------------------------------------------------------------------------------------------------- devices

def devices(db) -> list[HardwareEntry]:
    """Every device a fit may use: the catalog and the user's devices, the host measured here among them."""
    return all_devices(registry(db))


def target_for(entry: HardwareEntry, mode: PowerMode, precision: str) -> tuple[Target | None, str | None]:
    """The roofline target of a device x mode x precision, or None with the reason (``perf.roofline.target_of``)."""
    return target_of(entry, mode, precision)


def _check_precision(precision: str | None) -> None:
    if precision is not None and precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")


# ---------------------------------------------------------------------------------------------------- measurements

def list_measurements(db, *, model: str | None = None, hw: str | None = None) -> list[Measurement]:
    """The stored measurements (of ``model``, on ``hw``). Keys a newer embodied-ai added are ignored; a document that
    is invalid (a hand edit, a NaN) is skipped with a warning line naming it, so one bad document does not stop
    `measurement list`, `fit`, `ask` or `query`."""
    reg = registry(db)
    out = []
    for doc_id, doc in reg.table_items(MEASUREMENTS):
        try:
            out.append(read_as(Measurement, doc))
        except ValidationError as exc:
            what = ", ".join(f"{k} {str(doc.get(k))[:40]!r}" for k in ("model", "hardware") if isinstance(doc, dict)
                             and k in doc)
            warn(f"skipped measurement document {doc_id} in {reg.path}{f' ({what})' if what else ''}: invalid at "
                 f"{error_text(exc.errors(include_url=False)[0])}; fix or remove it in the file")
    if model is not None:
        out = [m for m in out if m.model == model]
    if hw is not None:
        out = [m for m in out if m.hardware.casefold() == hw.casefold()]
    return out


def add_measurement(db, *, model: str, hw: str, mode: str | None, precision: str, latency_ms: float, source: str,
                    runtime: str = "unknown", batch: int = 1, timed: str = "", version: int | None = None,
                    p90_ms: float | None = None, threads: int | None = None,
                    runtime_version: str | None = None) -> Measurement:
    """Store a latency of a registered model (any reference: NAME, NAME@3, NAME@ALIAS) on a device (checked: model,
    device, mode, precision, positivity), with its lineage (who, from which host, now). Stored once and never
    changed: a correction is another measurement. The registry's summary for questions is written again
    (``services.summary.summarise``)."""
    reg = registry(db)
    record = resolve(reg, model, version)
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
                    threads=threads, source=source.strip(), timed=timed, measured_at=(now := now_utc()),
                    lineage=here(at=now))
    reg.table_insert(MEASUREMENTS, m.model_dump(mode="json"))
    from embodied_tui.services.summary import summarise

    summarise(reg)  # the registry changed: summarised again for the next question (best effort)
    return m


def record_batch(record: ModelRecord) -> int:
    """The batch size a record was analysed at (its first input's first dimension; 1 without shapes)."""
    return record.input_shapes[0][0] if record.input_shapes and record.input_shapes[0] else 1


# ---------------------------------------------------------------------------------------------------- efficiencies

def _stored_efficiency(entry: HardwareEntry, mode: str, precision: str, runtime: str | None) -> Efficiency | None:
    cal = entry.calibration_for(precision, runtime, mode) if entry.calibration else None
    if cal is None:
        return None
    base = default_efficiency(entry.type)
    kind = "host" if entry.id.startswith("host-") else "catalog"
    if cal.interval_log_low is not None and cal.interval_log_high is not None:
        span, how = (cal.interval_log_low, cal.interval_log_high), cal.interval_note or "the fit's residuals"
    else:
        lo, hi, how = interval([])
        span, how = (lo, hi), f"no residuals stored with the calibration (calibrate again): {how}"
    return Efficiency(cal.eta_compute, cal.eta_memory or base.eta_memory, cal.overhead_ms, kind, cal.source,
                      runtime=cal.runtime, fit_error=cal.fit_error, n_points=cal.n_points,
                      op_overhead_ms=cal.op_overhead_ms, macs_per_output_half=cal.macs_per_output_half,
                      basis="exact", basis_detail=f"calibrated on {entry.id}; interval: {how}", interval_log=span)


def _documented_efficiency(entry: HardwareEntry, mode: str, runtime: str | None) -> Efficiency:
    """Without a calibration of the device: the TensorRT engine model fitted to published latencies on a GPU/SoC
    (runtime unset or TensorRT), else the type's documented default; both with a basis and interval
    (``perf.published_fit.published_efficiency``)."""
    if entry.type in ENGINE_TYPES and runtime is not None and "tensorrt" not in runtime:
        lo, hi, how = interval([])
        return replace(default_efficiency(entry.type), basis="defaults", interval_log=(lo, hi),
                       basis_detail=f"documented {entry.type} defaults for {runtime}; interval: {how}")
    return published_efficiency(entry, mode)


@dataclass
class FitContext:
    """What one fit call reads once: the registry, devices, measurements and fitted efficiencies."""

    reg: Registry
    entries: list[HardwareEntry]
    measurements: list[Measurement]
    efficiencies: dict[tuple, Efficiency] = field(default_factory=dict)
    details: dict[tuple[str, str], list] = field(default_factory=dict)  # (sha256, input shapes) -> layer costs
    asked: dict[tuple, Efficiency] = field(default_factory=dict)  # (device, mode, precision, runtime) -> efficiency
    works: dict[tuple, tuple] = field(default_factory=dict)  # (precision, fusion) -> model_work of ``worked``
    worked: ModelRecord | None = None  # the one record whose work ``works`` holds (the last one fitted)
    targets: dict[tuple, tuple] = field(default_factory=dict)  # (device, mode, precision) -> target_for's answer
    arrays: dict[tuple, Works] = field(default_factory=dict)  # (precision, fusion) -> ``works`` as arrays
    layers: LayerSource | None = None  # the layer columns of details (services.layer_store); made when first asked

    @classmethod
    def open(cls, db) -> "FitContext":
        reg = registry(db)
        return cls(reg, devices(reg), list_measurements(reg))

    def target(self, entry: HardwareEntry, mode: PowerMode, precision: str) -> tuple[Target | None, str | None]:
        """``target_for``, made once per device x mode x precision (it depends on nothing else; a Target is
        frozen)."""
        key = (entry.id, mode.name, precision)
        found = self.targets.get(key)
        if found is None or found[0] is not entry or found[1] is not mode:
            found = self.targets[key] = (entry, mode, target_for(entry, mode, precision))
        return found[2]

    def entry(self, hw_id: str) -> HardwareEntry | None:
        return next((e for e in self.entries if e.id == hw_id), None)

    def layer_costs(self, record: ModelRecord) -> list:
        """The record's per-layer costs, read once per analysis (file content and the input shapes it was analysed
        at: one file registered at two --input-shape values has two sets of layer costs); the last ``DETAILS_KEPT``
        are kept, so a fit over 10,000 models holds a few models' layers, not the registry's."""
        key = (record.sha256, repr(record.input_shapes))
        found = self.details.get(key)
        if found is None:
            details = self.reg.details(record, strict=False)  # gone or damaged: a warning, the totals' fallback
            if len(self.details) >= DETAILS_KEPT:
                del self.details[next(iter(self.details))]
            found = self.details[key] = details.layer_costs if details else []
        return found

    def work(self, record: ModelRecord, precision: str, fusion: str) -> tuple:
        """``model_work`` of ``record`` at precision x fusion (with its ``work_totals``), computed once while the same record is fitted: the
        graph's edge store asks one (device, mode, precision) at a time, and a model's work does not depend on the
        device. Only the last record's work is kept (memory stays one model's layers, not the registry's)."""
        if self.worked is not record:
            self.works.clear()
            self.arrays.clear()
            self.worked = record
        key = (precision, fusion)
        if key not in self.works:
            work, notes = model_work(record, self.layer_costs(record), precision, fusion)
            self.works[key] = (work, notes, work_totals(work))
        return self.works[key]

    def layer_columns_of(self, records: list[ModelRecord]) -> list:
        """The layer columns of each record's details (``layers``: read from the fit store, or made from the parsed
        details once per content; ``services.layer_store``), None for a record without (no details, or layer costs
        that cannot be encoded exactly)."""
        from embodied_tui.services.layer_store import LayerSource

        if self.layers is None:
            self.layers = LayerSource(self.reg)
        return [self.layers.columns(record, self.layer_costs) for record in records]

    def work_arrays(self, records: list[ModelRecord], precision: str, fusion: str, columns: list | None = None):
        """``work`` of each record as numpy columns with its totals, one ``perf.roofline_many.Works`` in the order
        given: from the record's layer columns (``columns``: ``layer_columns_of`` the records, looked up here when not
        given; the records' work made together, ``perf.layer_columns.work_arrays_many``), else from ``work``, kept
        like ``works``."""
        from embodied_tui.perf.layer_columns import work_arrays_many  # numpy: only where fits are computed
        from embodied_tui.perf.roofline_many import LayerArrays, Works

        if columns is None:
            columns = self.layer_columns_of(records)
        found = [c for c in columns if c is not None]
        if len(found) == len(records):
            return work_arrays_many(found, precision, fusion)
        made = work_arrays_many(found, precision, fusion) if found else None
        parts, at = [], 0
        for record, column in zip(records, columns):
            if column is not None:
                parts.append((made, at))
                at += 1
                continue
            work, _notes, totals = self.work(record, precision, fusion)
            if (precision, fusion) not in self.arrays:
                self.arrays[(precision, fusion)] = Works.of([(LayerArrays.of(work), totals)])
            parts.append((self.arrays[(precision, fusion)], 0))
        return Works.joined(parts)

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
        # per mode even where measurements are pooled across modes: the fit starts from the mode's own stored or
        # documented efficiency, so one key for every mode gave whichever mode asked first
        key = (entry.id, mode.casefold(), precision, runtime)
        if key in self.efficiencies:
            return self.efficiencies[key]
        base = (_stored_efficiency(entry, mode, precision, runtime) or _stored_efficiency(entry, mode, precision, None)
                or _documented_efficiency(entry, mode, runtime))
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
            if record is None or record.macs is None or m.batch != record_batch(record):
                continue
            try:
                pm = entry.mode(m.power_mode)
            except NotFound:
                continue
            target, _ = self.target(entry, pm, m.precision)
            if target is None:
                continue
            work, _ = model_work(record, self.layer_costs(record), m.precision, fusion_for(m.runtime))
            times = layer_times(work, target, scaled_bytes(record, "weight_bytes", m.precision) or 0.0,
                                io_bytes_of(record, m.precision))
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
                and m.batch == record_batch(record)]
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


def _sort_key(row: FitRow):
    pred = row.predicted_latency_ms
    return (pred is None, pred if pred is not None else 0.0, row.hardware, row.power_mode, row.precision)


def _complete(row: FitRow, **fields) -> FitRow:
    """``row``, made by ``fit_model``/``empty_fit`` a moment ago and not yet shared, with the fields this module fills
    in (model version, device name and type, stored measurements). Set in place: a copy (``dataclasses.replace``)
    would cost twice the row itself, on every row of every fit."""
    for name, value in fields.items():
        object.__setattr__(row, name, value)
    return row


def fit_record(ctx: FitContext, record: ModelRecord, *, hw: str | None = None, mode: str | None = None,
               precision: str | None = None, runtime: str | None = None, with_layers: bool = False,
               prompt_tokens: int | None = None, new_tokens: int | None = None,
               top: int = TOP_LAYERS) -> list[FitRow]:
    """Roofline rows of one record on the devices x modes x precisions asked (all by default), fastest first.
    ``top``: the slowest layers each row lists (``fit_model``; 0 where only the row's totals are read: the graph).

    With ``prompt_tokens`` P and ``new_tokens`` K (both, or neither): a decoder transformer's generation rows instead
    (``services.fit_llm``: prefill of P tokens + K decode steps); UserError for any other record.

    The model's per-layer work depends on the precision and fusion only: it is computed once for each and shared by
    every device x mode (``FitContext.work``, also across calls on the same record: ``fit_model(work=)``); the times
    on a target are computed once, in ``fit_model``."""
    _check_precision(precision)
    tokens = check_tokens(prompt_tokens, new_tokens)
    if tokens is not None:
        return _generation_rows(ctx, record, tokens, hw=hw, mode=mode, precision=precision)
    costs = ctx.layer_costs(record)
    mine = ctx.of_model(record)
    fusion = fusion_for(runtime) if runtime else None
    prefer = f"{default_runtime(record.format)}-cpu"  # how `bench` files this model's own measurements
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
                    work = None if record.macs is None else ctx.work(record, prec, fusion or fusion_for(eff.runtime))
                    fit = fit_model(record, costs, target, eff, with_layers=with_layers, fusion=fusion, work=work,
                                    top=top)
                meas, n, meas_rt = ctx.measured(record, entry.id, pm.name, prec, fit.runtime or runtime, mine)
                pred = fit.predicted_latency_ms
                rows.append(_complete(
                    fit, model_version=record.version, hardware_name=entry.name, device_type=entry.type,
                    measured_latency_ms=meas, measured_n=n, measured_runtime=meas_rt,
                    measured_over_predicted=None if meas is None or not pred else round(meas / pred, 4)))
    rows.sort(key=_sort_key)
    return rows


def fit_edges(ctx: FitContext, record: ModelRecord, calls: Iterable[tuple[str, str, str | None]],
              make: Callable[..., Any]) -> list:
    """The graph's edges (``make(**fields)``, ``ask.graph.FitEdge``) of ``fit_record(ctx, record, hw=, mode=,
    precision=, top=0)`` for each (device, mode, precision) call, in the same order (each call's rows fastest
    first), with the same numbers to the last bit: ``fit_edges_many`` of the one record. ``record`` must have MACs."""
    return fit_edges_many(ctx, [record], calls, make)[0]


# what a graph edge reads of a fit row: the call's own fields and ``perf.roofline_many.EDGE_FIELDS`` (named here, so
# importing this module does not import numpy)
EDGE_ROW = ("model", "hardware", "precision", "power_mode", "measured_latency_ms", "predicted_latency_ms",
            "roofline_latency_ms", "bound", "arithmetic_intensity", "ridge_point", "power_w", "fits_memory", "fps",
            "energy_mj", "calibration", "weight_bytes", "activation_bytes")


def fit_edges_many(ctx: FitContext, records: list[ModelRecord], calls: Iterable[tuple[str, str, str | None]],
                   make: Callable[..., Any]) -> list[list]:
    """``fit_edges`` of each record (all with MACs) on the same calls: ``fit_columns_many``'s rows as
    ``make(**fields)``, each call's rows fastest first, as ``fit_record`` sorts them."""
    from embodied_tui.perf.grids import listed

    calls = list(calls)
    by_call: list[list[list]] = [[[] for _ in calls] for _ in records]
    for block in fit_columns_many(ctx, records, calls, EDGE_ROW):
        n = len(block.records)
        columns = [listed(column) for column in block.columns]
        for j, k in enumerate(block.records):
            rows = zip(*(column[j::n] for column in columns))
            for call, values in zip(block.calls, rows):
                by_call[k][call].append(make(**dict(zip(EDGE_ROW, values))))
    return [[edge for rows in mine for edge in sorted(rows, key=_sort_key)] for mine in by_call]


@dataclass
class FitBlock:
    """Fit rows of some records on some targets of one device, column by column (``fit_columns_many``): ``columns``
    one per field, target-major (target i, record j at ``i * len(records) + j``): a (targets x records) grid of
    ``perf.grids`` or a list; ``records`` the records' indices in the list fitted; ``calls`` each target's call
    index."""

    device: str
    records: list[int]
    columns: list
    calls: list[int]

    def of(self, j: int) -> list:
        """The columns of the j-th of ``records`` alone."""
        from embodied_tui.perf.grids import model_of

        n = len(self.records)
        return [model_of(column, j, n) for column in self.columns]


def fit_columns_many(ctx: FitContext, records: list[ModelRecord], calls: Iterable[tuple[str, str, str | None]],
                     fields: Sequence[str]) -> list[FitBlock]:
    """The rows of ``fit_record(ctx, record, hw=, mode=, precision=, top=0)`` of each record (all with MACs) on each
    (device, mode, precision) call, as ``FitBlock``s: columns named by ``fields`` (of ``EDGE_ROW``: the graph passes
    its ``FitEdge`` fields), every value the same to the last bit as ``fit_record``'s; a call's rows in any block and
    order (``fit_edges_many`` sorts them).

    The targets of one precision x fusion are fitted together, for every record at once, over (targets x records x
    layers) arrays (``perf.roofline_many.edge_columns``), each record's work made from its layer columns
    (``FitContext.work_arrays``), and their values handed over as (targets x records) grids (``perf.grids``), never
    as a row object, a dict per edge or a Python object per value (a question at 10,000 models makes 470,000 rows);
    the rest (a target with a cache level, one stating no peak) by ``fit_record`` itself, record by record, as
    lists."""
    calls = list(calls)
    out: list[FitBlock] = []
    by_runtime: dict[str, list[int]] = {}  # the runtime each record's own measurements are filed under
    for i, record in enumerate(records):
        by_runtime.setdefault(f"{default_runtime(record.format)}-cpu", []).append(i)
    for prefer, picked in by_runtime.items():
        for block in _fit_columns(ctx, [records[i] for i in picked], calls, fields, prefer):
            block.records = [picked[j] for j in block.records]
            out.append(block)
    return out


def _fit_columns(ctx: FitContext, records: list[ModelRecord], calls: list[tuple[str, str, str | None]],
                 fields: Sequence[str], prefer: str) -> list[FitBlock]:
    from embodied_tui.perf.grids import per_model, per_target  # numpy: only where fits are computed
    from embodied_tui.perf.roofline_many import ModelBytes, edge_columns, supported

    alone: list[tuple[int, str, str, str]] = []  # (call, device, mode, precision) fitted by fit_record
    groups: dict[tuple[str, str], list] = {}  # (precision, fusion) -> [(call, target, eff)]
    for call, (device, mode, precision) in enumerate(calls):
        for entry, modes in _select(ctx, device, mode):
            for pm in modes:
                for prec in [precision] if precision else [p for p in PRECISIONS if p in pm.peak_tflops]:
                    target, _ = ctx.target(entry, pm, prec)
                    if target is None or not supported(target):
                        alone.append((call, entry.id, pm.name, prec))
                        continue
                    eff = ctx.efficiency(entry, pm.name, prec, None, prefer)
                    groups.setdefault((prec, fusion_for(eff.runtime)), []).append((call, target, eff))
    mine = [ctx.of_model(record) for record in records]
    columns = ctx.layer_columns_of(records) if groups else []  # looked up once for every precision x fusion
    sizes = ModelBytes(records)
    out: list[FitBlock] = []
    for (prec, fusion), items in groups.items():
        items.sort(key=lambda item: item[1].hardware)  # each device's targets together (a stable sort)
        runs: list[list] = []  # (device, first item, end)
        for i, (_, target, _) in enumerate(items):
            if runs and runs[-1][0] == target.hardware:
                runs[-1][2] = i + 1
            else:
                runs.append([target.hardware, i, i + 1])
        works = ctx.work_arrays(records, prec, fusion, columns)
        for some, values_of in edge_columns(sizes, works, prec, [t for _, t, _ in items], [e for _, _, e in items]):
            n = len(some)
            measured = [None] * (n * len(items))
            for j, k in enumerate(some):
                if mine[k]:
                    for i, (_, t, e) in enumerate(items):
                        measured[i * n + j] = ctx.measured(records[k], t.hardware, t.power_mode, prec, e.runtime,
                                                           mine[k])[0]
            names = [records[k].name for k in some]
            for device, a, b in runs:
                values = {name: column.targets(a, b) for name, column in values_of.items()}
                values.update(model=per_model(names, b - a), hardware=per_target([device] * (b - a), n),
                              precision=per_target([prec] * (b - a), n),
                              measured_latency_ms=_measured(measured[a * n:b * n], b - a, n),
                              power_mode=per_target([t.power_mode for _, t, _ in items[a:b]], n))
                out.append(FitBlock(device, list(some), [values[name] for name in fields],
                                    [call for call, _, _ in items[a:b]]))
    for call, device, mode, prec in alone:
        for k, record in enumerate(records):
            rows = [_edge_fields(row) for row in fit_record(ctx, record, hw=device, mode=mode, precision=prec, top=0)]
            out.append(FitBlock(device, [k], [[row[name] for row in rows] for name in fields], [call] * len(rows)))
    return out


def _measured(values: list, targets: int, models: int):
    """The measured latencies of a (targets x models) block: one code for all where none is measured (most)."""
    import numpy as np

    from embodied_tui.perf.grids import Coded

    if values.count(None) == len(values):
        return Coded(np.zeros((targets, models), dtype=np.int64), [None])
    return Coded(np.arange(targets * models).reshape(targets, models), values)


def _edge_fields(row: FitRow) -> dict:
    return {name: getattr(row, name) for name in EDGE_ROW}


def _generation_rows(ctx: FitContext, record: ModelRecord, tokens: tuple[int, int], *, hw: str | None,
                     mode: str | None, precision: str | None) -> list[FitRow]:
    tower = decoder_tower(record)  # UserError for a record that is not a decoder transformer
    rows = []
    for entry, modes in _select(ctx, hw, mode):
        for pm in modes:
            for prec in [precision] if precision else generation_precisions(pm):
                rows.append(generation_row(record, tower, entry, pm, prec, *tokens))
    rows.sort(key=_sort_key)
    return rows


def fit_rows(db, model_name: str, hw: str | None = None, mode: str | None = None, precision: str | None = None,
             *, runtime: str | None = None, version: int | None = None, with_layers: bool = False,
             prompt_tokens: int | None = None, new_tokens: int | None = None) -> list[FitRow]:
    """Roofline rows of one model on every device x power mode x precision (or those asked), fastest first; with
    ``prompt_tokens`` and ``new_tokens``, a decoder transformer's generation rows (``fit_record``).

    Raises NotFound for an unknown model, device or mode (listing the valid ones), UserError for an unknown precision
    or a model whose MACs could not be counted (with the analyser's reason)."""
    ctx = FitContext.open(db)
    record = resolve(ctx.reg, model_name, version)
    if check_tokens(prompt_tokens, new_tokens) is not None:
        if runtime is not None or with_layers:
            raise UserError(f"{'--runtime' if runtime is not None else '--layers'} does not apply to a generation fit "
                            "(--prompt-tokens/--new-tokens): its phase efficiencies are fitted to published LLM rows "
                            "and it has no per-layer rows; drop one or the other")
        return fit_record(ctx, record, hw=hw, mode=mode, precision=precision, prompt_tokens=prompt_tokens,
                          new_tokens=new_tokens)
    if record.macs is None:
        why = record.macs_null_reason or "the analysis could not count them"
        raise UserError(f"no prediction for {record.name} v{record.version}: its MACs are unknown ({why}); "
                        f"re-register it with --input-shape, or as TorchScript/ONNX")
    return fit_record(ctx, record, hw=hw, mode=mode, precision=precision, runtime=runtime, with_layers=with_layers)


def fit_all(db, *, hw: str | None = None, mode: str | None = None, precision: str | None = None) -> list[FitRow]:
    """Rows for every registered model with MACs (latest versions), for graph building and comparisons."""
    ctx = FitContext.open(db)
    rows = []
    for record in ctx.reg.list_models():
        if record.macs is not None:
            rows.extend(fit_record(ctx, record, hw=hw, mode=mode, precision=precision))
    return rows
