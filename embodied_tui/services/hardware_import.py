"""`hw import embodied-schemas`: bring the embodied-schemas catalog's devices into the user registry, and flag every
figure of theirs that disagrees with ours for a device we both have.

What is read: ``embodied_schemas.loaders.load_hardware()`` (platforms: Jetson modules, Hailo cards, boards, systems)
and ``load_gpus()`` (GPU chips: datacenter, desktop, Jetson iGPUs). Their ids become aliases.

- A device the catalog already has (one of its aliases is the embodied-schemas id) is not imported; its figures are
  compared with our dense peaks and bandwidth, and each disagreement becomes a flag, stored in the registry
  (``hardware_flags``) and shown by `hw show`.
- Any other device is converted and stored as a user device (origin ``embodied-schemas``), honestly: their INT8 figure
  for a GPU/SoC platform is the vendor's "AI TOPS" (sparse on NVIDIA since Ampere), so it goes to ``headline_tops``,
  not to a dense peak; a 0 bandwidth or 0 peak means "unknown" there and becomes None here.
"""
from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embodied_tui.data.hardware import PRECISIONS, HardwareEntry, parse_entry
from embodied_tui.data.store import Registry
from embodied_tui.errors import UserError
from embodied_tui.services.hardware import (
    add_user_device,
    load_catalog,
    names_of,
    record_flags,
    registry,
    top_peak,
    user_devices,
)

SOURCE = "embodied-schemas"
TOLERANCE = 0.05  # relative difference below which two figures agree
GiB = 1024 ** 3
_UNIT = {"int8": "TOPS", "int4": "TOPS"}


@dataclass
class ImportReport:
    source: str
    version: str
    imported: list[str] = field(default_factory=list)  # our ids of new user devices
    updated: list[str] = field(default_factory=list)  # ids that were already imported and were replaced
    matched: dict[str, str] = field(default_factory=dict)  # embodied-schemas id -> our catalog id
    merged: dict[str, str] = field(default_factory=dict)  # GPU id folded into a platform -> our id of the platform
    skipped: dict[str, str] = field(default_factory=dict)  # embodied-schemas id -> reason
    flags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what their loader printed

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "version": self.version, "imported": self.imported, "updated": self.updated,
                "matched": self.matched, "merged": self.merged, "skipped": self.skipped, "flags": self.flags,
                "warnings": self.warnings}


# ---------------------------------------------------------------------------------------------------- reading theirs

def _load() -> tuple[dict[str, Any], dict[str, Any], str, list[str]]:
    try:
        import embodied_schemas
        from embodied_schemas.loaders import load_gpus, load_hardware
    except ImportError:
        raise UserError("embodied-schemas is not installed; install it with `pip install 'embodied-ai[schemas]'`") \
            from None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # their loader prints a warning per file it cannot read
        hardware = load_hardware()
        gpus = load_gpus()
    warnings = [line.strip() for line in out.getvalue().splitlines() if line.strip()]
    return hardware, gpus, getattr(embodied_schemas, "__version__", "unknown"), warnings


def _figures_platform(hw: Any) -> dict[str, float | None]:
    c = hw.capabilities
    return {"fp32": c.peak_tflops_fp32, "fp16": c.peak_tflops_fp16, "bf16": c.peak_tflops_bf16,
            "int8": c.peak_tops_int8, "bandwidth": c.memory_bandwidth_gbps, "sms": None}


def _figures_gpu(gpu: Any) -> dict[str, float | None]:
    p = gpu.performance
    return {"fp32": p.fp32_tflops, "fp16": p.tensor_tflops_fp16 or p.fp16_tflops, "bf16": None,
            "int8": p.tensor_tflops_int8 or p.int8_tops, "int4": p.int4_tops,
            "bandwidth": gpu.memory.memory_bandwidth_gbps, "sms": gpu.compute.streaming_multiprocessors}


# ---------------------------------------------------------------------------------------------------- flags

def _near(a: float, b: float, tol: float = TOLERANCE) -> bool:
    return abs(a - b) <= tol * max(abs(a), abs(b))


def _fmt(x: float) -> str:
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def _explain(precision: str, theirs: float, ours: float, entry: HardwareEntry) -> str:
    head = entry.headline_tops
    if head:
        what = "sparse" if entry.headline_is_sparse else "dense"
        what += ", GPU+DLA" if entry.headline_includes_dla else ""
        for factor, label in ((1, ""), (2, " / 2"), (4, " / 4")):
            if _near(theirs, head / factor, 0.03):
                return f" = headline int8{label} ({_fmt(head)} TOPS, {what})"
    ratio = theirs / ours
    if _near(ratio, 2.0, 0.06):
        return " = 2 x our dense (a 2:4-sparse or FP16-accumulate figure)"
    if _near(ratio, 0.5, 0.06):
        return " = half our dense"
    return f" ({ratio:.2f} x ours)"


def compare(entry: HardwareEntry, figures: dict[str, float | None], their_id: str) -> list[str]:
    """One line per figure of theirs that disagrees with ours (beyond 5 %), explained where the ratio says why."""
    flags = []
    name = entry.id
    for precision in PRECISIONS:
        theirs = figures.get(precision)
        if theirs is None:
            continue
        unit = _UNIT.get(precision, "TFLOPS")
        best = top_peak(entry, precision)
        if theirs <= 0:
            flags.append(f"{name}: {SOURCE} {precision} {_fmt(theirs)} {unit} ({their_id}): 0 is not a peak "
                         f"(unknown); ours " + (f"{_fmt(best[0])} at {best[1]}" if best else "not stated"))
            continue
        if best is None:
            if precision == "int8" and entry.headline_tops and _near(theirs, entry.headline_tops, 0.03):
                continue  # they list the headline as "peak INT8" and we keep it as the headline: agreed
            flags.append(f"{name}: {SOURCE} {precision} {_fmt(theirs)} {unit} ({their_id}); "
                         f"we state no dense {precision} peak")
            continue
        ours, mode_name = best
        if _near(theirs, ours):
            continue
        mode = entry.mode(mode_name)
        kind = "derived" if precision in mode.derived else "datasheet"
        flags.append(f"{name}: {SOURCE} {precision} {_fmt(theirs)} {unit} ({their_id})"
                     f"{_explain(precision, theirs, ours, entry)}; our dense {kind} {_fmt(ours)} at {mode_name}")
    bw = figures.get("bandwidth")
    bws = [m.memory_bandwidth_gbps for m in entry.power_modes if m.memory_bandwidth_gbps is not None]
    if bw is not None:
        if bw <= 0:
            ours_bw = f"{_fmt(max(bws))} GB/s" if bws else "no DRAM (None)"
            flags.append(f"{name}: {SOURCE} memory bandwidth 0 GB/s ({their_id}): zero is not a bandwidth; "
                         f"ours {ours_bw}")
        elif not bws:
            flags.append(f"{name}: {SOURCE} memory bandwidth {_fmt(bw)} GB/s ({their_id}); ours: no DRAM (None)")
        elif not _near(bw, max(bws)):
            flags.append(f"{name}: {SOURCE} memory bandwidth {_fmt(bw)} GB/s ({their_id}); ours {_fmt(max(bws))} GB/s")
    sms = figures.get("sms")
    our_sms = max((m.active_sms for m in entry.power_modes if m.active_sms), default=None)
    if sms and our_sms and sms != our_sms:
        flags.append(f"{name}: {SOURCE} lists {sms} SMs ({their_id}); ours {our_sms}")
    return flags


# ---------------------------------------------------------------------------------------------------- converting

def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _positive(x: float | None) -> float | None:
    return x if x is not None and x > 0 else None


def _mem_bytes(gb: float | None) -> int | None:
    return int(gb * GiB) if gb and gb > 0 else None


def _platform_entry(hw: Any, aliases: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    """Our entry (as plain data) for an embodied-schemas platform, or None with the reason."""
    c = hw.capabilities
    hw_type = hw.hardware_type.value
    form = getattr(getattr(hw, "physical", None), "form_factor", None)
    soc = hw_type == "gpu" and (getattr(form, "value", None) == "som" or "jetson" in hw.name.lower())
    our_type = {"cpu": "cpu", "gpu": "soc" if soc else "gpu", "tpu": "tpu"}.get(hw_type, "npu")
    notes = [f"imported from {SOURCE} ({hw.id}); peaks are theirs, given for the top power mode only"]
    if our_type != hw_type:
        notes.append(f"{SOURCE} type {hw_type!r} stored as {our_type!r}")
    bw = _positive(c.memory_bandwidth_gbps)
    if c.memory_bandwidth_gbps is not None and bw is None:
        notes.append(f"{SOURCE} lists 0 GB/s memory bandwidth: stored as None (unknown / no DRAM), never 0")
    peaks = {p: v for p, v in (("fp32", c.peak_tflops_fp32), ("fp16", c.peak_tflops_fp16),
                               ("bf16", c.peak_tflops_bf16)) if _positive(v)}
    headline = _positive(c.peak_tops_int8)
    if headline and our_type in ("gpu", "soc"):
        notes.append(f"{SOURCE} peak INT8 {headline:g} TOPS kept as the headline only (GPU 'AI TOPS' are often "
                     f"sparse and include accelerators)")
    elif headline:
        peaks["int8"] = headline
    power = hw.power
    raw_modes = list(power.power_modes) if power else []
    fallback_w = _positive(power.tdp_watts) if power else None
    if not raw_modes:
        if fallback_w is None and not peaks and bw is None:
            return None, "no power mode, peak or bandwidth to import"
        raw_modes = [None]
    top = max(range(len(raw_modes)), key=lambda i: (raw_modes[i].power_watts or 0) if raw_modes[i] else 0)
    modes = []
    for i, m in enumerate(raw_modes):
        mode = {"name": m.name if m else "default", "power_w": _positive(m.power_watts) if m else fallback_w,
                "gpu_clock_mhz": _positive(m.gpu_freq_mhz) if m else None,
                "cpu_clock_mhz": _positive(m.cpu_freq_mhz) if m else None,
                "memory_bandwidth_gbps": bw, "peak_tflops": peaks if i == top else {},
                "source": f"{SOURCE} {hw.id}" + (f": {m.description}" if m and m.description else "")}
        modes.append(mode)
    names = [m["name"] for m in modes]
    if len({n.casefold() for n in names}) != len(names):
        return None, f"duplicate power mode names {names}"
    data = {"id": _slug(hw.id), "name": hw.name, "vendor": hw.vendor, "type": our_type, "aliases": aliases,
            "memory_bytes": _mem_bytes(c.memory_gb), "memory_type": c.memory_type,
            "headline_tops": headline, "headline_is_sparse": bool(c.sparse_acceleration),
            "power_modes": modes, "default_mode": modes[top]["name"],
            "sources": {"all figures": f"{SOURCE} {hw.id} (last updated {hw.last_updated})"}, "notes": notes}
    return data, None


def _gpu_entry(gpu: Any) -> tuple[dict[str, Any] | None, str | None]:
    f = _figures_gpu(gpu)
    embedded = getattr(gpu.market.target_market, "value", "") == "embedded"
    peaks = {p: f[p] for p in ("fp32", "fp16", "int8", "int4") if _positive(f[p])}
    if embedded:
        peaks.pop("int8", None)
        peaks.pop("int4", None)
    mode = {"name": "default", "power_w": _positive(gpu.power.tdp_watts),
            "gpu_clock_mhz": _positive(gpu.clocks.boost_clock_mhz), "active_sms": f["sms"] or None,
            "memory_bandwidth_gbps": _positive(f["bandwidth"]), "peak_tflops": peaks,
            "source": f"{SOURCE} {gpu.id} (boost clock, TDP)"}
    notes = [f"imported from {SOURCE} ({gpu.id}); fp16 is their tensor FP16 figure"]
    if embedded:
        notes.append("their INT8 figure for an embedded GPU is the module's headline (sparse, GPU+DLA): not used")
    data = {"id": _slug(gpu.id), "name": gpu.name, "vendor": getattr(gpu.vendor, "value", str(gpu.vendor)),
            "type": "soc" if embedded else "gpu", "aliases": [gpu.id],
            "memory_bytes": _mem_bytes(gpu.memory.memory_size_gb),
            "memory_type": f"{getattr(gpu.memory.memory_type, 'value', gpu.memory.memory_type)} "
                           f"{gpu.memory.memory_bus_bits}-bit",
            "power_modes": [mode], "default_mode": "default",
            "sources": {"all figures": f"{SOURCE} {gpu.id} (last updated {gpu.last_updated})"}, "notes": notes}
    return data, None


# ---------------------------------------------------------------------------------------------------- the verb

def import_embodied_schemas(db: Registry | str | Path | None) -> ImportReport:
    """Import embodied-schemas' platforms and GPUs into the registry; compare the ones we have. Re-running replaces
    the devices it imported before (same ids) and never touches devices the user added by hand."""
    hardware, gpus, version, warnings = _load()
    reg = registry(db)
    report = ImportReport(source=SOURCE, version=version, warnings=warnings)
    catalog = load_catalog()
    by_alias = {a.casefold(): e for e in catalog for a in (e.id, *e.aliases)}
    ours = {e.id: e for e in catalog}
    existing = {doc.get("id"): doc.get("origin") for doc in reg.table_all("hardware")}
    user_names = names_of([e for e in user_devices(reg) if existing.get(e.id) != SOURCE])
    flags_by_id: dict[str, list[str]] = {}

    def compare_into(entry: HardwareEntry, figures: dict[str, float | None], their_id: str) -> None:
        report.matched[their_id] = entry.id
        found = compare(entry, figures, their_id)
        flags_by_id.setdefault(entry.id, []).extend(found)
        report.flags.extend(found)

    gpu_owner: dict[str, str] = {}  # GPU id -> the platform that names it (when that platform is imported)
    to_add: list[dict[str, Any]] = []
    for hw_id, hw in sorted(hardware.items()):
        match = by_alias.get(hw_id.casefold())
        if match is not None:
            compare_into(match, _figures_platform(hw), hw_id)
            continue
        aliases = [hw_id]
        if hw.gpu_id and hw.gpu_id in gpus and hw.gpu_id.casefold() not in by_alias:
            aliases.append(hw.gpu_id)
            gpu_owner[hw.gpu_id] = _slug(hw_id)
        data, why = _platform_entry(hw, aliases)
        if data is None:
            report.skipped[hw_id] = why or "not convertible"
            continue
        to_add.append(data)
    for gpu_id, gpu in sorted(gpus.items()):
        match = by_alias.get(gpu_id.casefold())
        if match is not None:
            compare_into(match, _figures_gpu(gpu), gpu_id)
            continue
        if gpu_id in gpu_owner:
            report.merged[gpu_id] = gpu_owner[gpu_id]
            continue
        data, why = _gpu_entry(gpu)
        if data is None:
            report.skipped[gpu_id] = why or "not convertible"
            continue
        to_add.append(data)

    for data in to_add:
        their_id = data["aliases"][0]
        if data["id"] in ours or any(n.casefold() in user_names for n in (data["id"], *data["aliases"])):
            report.skipped[their_id] = f"the name {data['id']!r} is already taken by a device you added"
            continue
        try:
            entry = parse_entry(data, f"{SOURCE} entry {their_id}")
        except UserError as exc:
            report.skipped[their_id] = str(exc)
            continue
        add_user_device(reg, entry, origin=SOURCE, replace=True)
        (report.updated if existing.get(entry.id) == SOURCE else report.imported).append(entry.id)
    for device_id, found in flags_by_id.items():
        record_flags(reg, device_id, SOURCE, found)
    return report
