"""The pinned fit target (device, power mode, precision) and each model's latency on it: the registry table's target
column.

A target is written ``DEVICE[/MODE[/PRECISION]]`` (``orin-nano-8gb/15W/int8``); the device is any name ``hw show``
accepts (id, alias, name), the mode and precision must be the device's. A missing mode or precision means "the fastest
of the device's modes / precisions", and the cell says which one it used. The target is kept in the registry's
settings (``services.settings``, key ``"target"``) as ``{"device": id, "mode": name|None, "precision": p|None}``.

With no pinned target the column falls back, labelled so, to the fastest row over every device ("fastest, any
device"): pinning one is how it answers "how fast on *my* device".

Convention of the cells: ``ms`` is the calibrated roofline prediction at batch 1 (``FitRow.predicted_latency_ms``),
``fps`` = 1000 / ms (``FitRow.fps``); a model without a row there reads "—" with the reason (no MACs, the device has
no peak at that precision, the weights do not fit its memory).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from embodied_tui.data.hardware import PRECISIONS, HardwareEntry, find_device
from embodied_tui.data.records import ModelRecord
from embodied_tui.errors import NotFound, UserError, app_message
from embodied_tui.perf.fit_row import FitRow
from embodied_tui.services import settings
from embodied_tui.services.columns import short_names
from embodied_tui.services.hardware import all_devices

KEY = "target"
SORT = "target"  # the registry table's sort on the target's ms


def headers(target: "Pinned | None", short: dict[str, str]) -> tuple[str, str]:
    """The headers of the target's ms and note columns: ('ms @ orin-nano-8gb/15W/int8', 'note'), or, with no pinned
    target, ('ms fastest', 'on') (the note then says on which device, mode and precision)."""
    if target is None:
        return "ms fastest", "on"
    return f"ms @ {target.label(short)}", "note"


@dataclass(frozen=True)
class Pinned:
    """A device id and, optionally, its power mode and precision (None: the fastest of them)."""

    device: str
    mode: str | None = None
    precision: str | None = None

    def spec(self) -> str:
        """'jetson-orin-nano-8gb/15W/int8', or shorter when a part is open."""
        return "/".join(p for p in (self.device, self.mode, self.precision) if p)

    def label(self, short: dict[str, str]) -> str:
        """The spec with the device's short name: 'orin-nano-8gb/15W/int8'."""
        return "/".join(p for p in (short.get(self.device, self.device), self.mode, self.precision) if p)


@dataclass(frozen=True)
class TargetCell:
    """A model on the target: ms and fps (None with ``note`` saying why), and ``note``: where the row ran (the mode and
    precision chosen when the target leaves them open; the device in the fallback) or why there is no number."""

    ms: float | None
    fps: float | None
    note: str
    fits_memory: bool | None = None


def parse(spec: str, devices: list[HardwareEntry]) -> Pinned:
    """``DEVICE[/MODE[/PRECISION]]`` checked against ``devices``; UserError (one line naming the valid choices)."""
    parts = [p.strip() for p in spec.strip().split("/")]
    if not spec.strip() or len(parts) > 3 or not all(parts):
        raise UserError(f"target {spec!r} is not DEVICE[/MODE[/PRECISION]] (e.g. orin-nano-8gb/15W/int8)")
    try:
        entry = find_device(parts[0], devices)
        mode = entry.mode(parts[1]) if len(parts) > 1 else None
    except NotFound as exc:
        raise UserError(f"target {spec!r}: {exc}") from None
    precision = parts[2].lower() if len(parts) > 2 else None
    if precision is not None:
        offered = [p for p in PRECISIONS if any(p in m.peak_tflops for m in ([mode] if mode else entry.power_modes))]
        if precision not in offered:
            raise UserError(f"target {spec!r}: {entry.id} has no {precision!r} peak"
                            f"{' in mode ' + mode.name if mode else ''}; valid: {', '.join(offered) or 'none'}")
    return Pinned(entry.id, mode.name if mode else None, precision)


def choices(db) -> list[Pinned]:
    """Every device x mode x precision a target can be, and each device and device x mode left open (for pickers)."""
    out = []
    for entry in all_devices(db):
        out.append(Pinned(entry.id))
        for mode in entry.power_modes:
            out.append(Pinned(entry.id, mode.name))
            out += [Pinned(entry.id, mode.name, p) for p in PRECISIONS if p in mode.peak_tflops]
    return out


def device_short_names(db) -> dict[str, str]:
    """Device id -> short name (its shortest slug alias: ``columns.short_names``), for every device a fit may use."""
    entries = all_devices(db)
    return short_names([e.id for e in entries], {e.id: list(e.aliases) for e in entries})


def pinned(db) -> Pinned | None:
    """The stored target, or None when none is pinned or the stored device is gone (removed from the registry)."""
    value = settings.get(db, KEY)
    if not isinstance(value, dict) or not isinstance(value.get("device"), str):
        return None
    try:
        return parse(Pinned(value["device"], value.get("mode"), value.get("precision")).spec(), all_devices(db))
    except UserError:
        return None


def pin(db, spec: str) -> Pinned:
    """Check ``spec`` against every device a fit may use and store it as the target."""
    target = parse(spec, all_devices(db))
    settings.put(db, KEY, {"device": target.device, "mode": target.mode, "precision": target.precision})
    return target


def unpin(db) -> bool:
    return settings.remove(db, KEY)


def cell_of(rows: list[FitRow], target: Pinned | None, short: dict[str, str]) -> TargetCell:
    """The target cell from a model's fit rows (on the target's device, or on every device for the fallback): the
    fastest predicted row whose weights fit memory (or whose memory is unknown); "—" with the reason without one (no
    prediction, or it fits no memory there)."""
    if target is not None:
        rows = [r for r in rows if r.hardware == target.device and (target.mode is None or r.power_mode == target.mode)
                and (target.precision is None or r.precision == target.precision)]
    predicted = [r for r in rows if r.predicted_latency_ms is not None]
    if not predicted:
        reasons = sorted({r.reason for r in rows if r.reason})
        return TargetCell(None, None, "; ".join(reasons) or "no prediction")
    fitting = [r for r in predicted if r.fits_memory is not False]
    if not fitting:  # a time for a model that cannot be loaded there answers nothing
        notes = sorted({r.memory_note for r in predicted if r.memory_note})
        return TargetCell(None, None, "does not fit in memory" + (f" ({'; '.join(notes)})" if notes else ""), False)
    best = min(fitting, key=lambda r: r.predicted_latency_ms)
    where = [] if target is not None else [short.get(best.hardware, best.hardware)]
    if target is None or target.mode is None:
        where.append(best.power_mode)
    if target is None or target.precision is None:
        where.append(best.precision)
    note = "/".join(where)
    return TargetCell(best.predicted_latency_ms, best.fps, note, best.fits_memory)


def cells(db, records: Iterable[ModelRecord], target: Pinned | None, cancelled=lambda: False):
    """(record, TargetCell) for each record, fitted on the target's device only (on every device without a target);
    one read of devices and measurements for all. A generator: the caller shows each cell as it comes and may stop."""
    from embodied_tui.services.fit import FitContext, fit_record

    short = device_short_names(db)
    try:
        ctx = FitContext.open(db)
    except UserError as exc:
        for record in records:
            yield record, TargetCell(None, None, f"error: {app_message(exc)}")
        return
    for record in records:
        if cancelled():
            return
        if record.macs is None:
            yield record, TargetCell(None, None, "no MACs")
            continue
        try:
            rows = fit_record(ctx, record, hw=None if target is None else target.device,
                              mode=None if target is None else target.mode,
                              precision=None if target is None else target.precision, top=0)
        except UserError as exc:
            yield record, TargetCell(None, None, f"error: {app_message(exc)}")
            continue
        yield record, cell_of(rows, target, short)


def sort_by_ms(keys: list[str], known: dict[str, TargetCell], reverse: bool = False) -> list[str]:
    """``keys`` ordered by their cell's ms (stable; keys with no number, or not computed yet, last either way)."""
    with_ms = [k for k in keys if k in known and known[k].ms is not None]
    rest = [k for k in keys if k not in known or known[k].ms is None]
    return sorted(with_ms, key=lambda k: known[k].ms, reverse=reverse) + rest
