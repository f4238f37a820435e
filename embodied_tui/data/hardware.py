"""The hardware catalog: schema, loading and look-up. No I/O beyond reading YAML; no printing.

Conventions (stated once, shown in the UI):
- **Dense peaks.** ``PowerMode.peak_tflops`` holds *dense* peaks per precision, on the device's main compute engine
  (the GPU on a Jetson, the NPU on Hailo/Coral, all cores on a CPU). Floating-point precisions (``fp32``, ``tf32``,
  ``fp16``, ``bf16``, ``fp8``, ``fp4``) are in **TFLOPS**; integer precisions (``int8``, ``int4``) are in **TOPS** in
  the same dict (tera-operations/s, one multiply-accumulate = 2 ops, like FLOPs = 2 x MACs). ``fp8`` is 1 byte per
  element (E4M3/E5M2), ``fp4`` half a byte (E2M1, with its block scales not counted).
- **Headlines are kept apart.** A vendor's "AI TOPS" figure goes to ``headline_tops``, with ``headline_is_sparse``
  (2:4 structured sparsity doubles it), ``headline_includes_dla`` (Jetson DLAs summed in) and
  ``headline_precision`` (the precision it is quoted at: ``int8`` for "AI TOPS", ``fp4`` for Jetson Thor's
  "2070 FP4 TFLOPS"). Never use it as a peak.
- **Pairs.** An accelerator sold attached to a host (a Hailo-8L on a Raspberry Pi 5) names the host's catalog id in
  ``host``; ``host_link_gbps`` is then the link between the two (PCIe lanes), the limit on what crosses it.
- **Derived peaks.** Where a peak is computed from clocks, ``PowerMode.derived[precision]`` says how, in the form
  ``"<n> SM x <ops> FLOP/clk x <clock> MHz"`` (GPUs; ``core`` for CPUs, ``OP/clk`` for integers), with ``n`` the
  mode's ``active_sms`` (or ``cpu_cores``), ``ops`` the entry's ``ops_per_clock[precision]`` and ``clock`` the
  mode's ``gpu_clock_mhz`` (or ``cpu_clock_mhz``). Peaks without a derivation are datasheet figures (see ``source``).
- **No DRAM is not zero bandwidth.** ``memory_bandwidth_gbps`` is ``None`` for devices that keep weights on chip
  (Hailo, Coral); their limits are ``onchip_memory_bytes`` and ``host_link_gbps``. It is never 0.
- ``default_mode`` is the fastest mode (the one vendors quote), used when no mode is named.
- **Cache, where measured.** ``HardwareEntry.cache_bytes`` (last-level cache size) with a mode's
  ``cache_bandwidth_gbps`` lets the roofline charge traffic that fits the cache at cache speed
  (``perf.roofline``). Both are optional and filled by `embodied-ai calibrate` for the host; a mode may state a
  cache bandwidth only when the entry states the cache size.
- **Origin is not a field.** Catalog devices live in ``catalog/*.yaml``; user devices (``hw add``, ``hw import``, the
  host measured by `embodied-ai calibrate`) in the registry with their origin beside them (``services.hardware``).
- Units are in field names: ``_mhz``, ``_w``, ``_gbps`` (gigabytes/s, 1e9 bytes/s), ``_tops``, ``_tflops``, ``_bytes``.
"""
from __future__ import annotations

import difflib
import functools
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from embodied_tui.data.yaml_file import parse_yaml, read_yaml
from embodied_tui.errors import NotFound, UserError

Precision = Literal["fp32", "tf32", "fp16", "bf16", "fp8", "fp4", "int8", "int4"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
INTEGER_PRECISIONS = ("int8", "int4")  # peaks in TOPS, not TFLOPS; every other precision is floating point (TFLOPS)
DeviceType = Literal["gpu", "soc", "npu", "tpu", "cpu"]
DEVICE_TYPES: tuple[str, ...] = get_args(DeviceType)

_ID_RE = r"^[a-z0-9][a-z0-9._-]*$"


class _Strict(BaseModel):
    """Unknown fields are typos (reported with the field meant); ``.inf`` and ``.nan`` are refused: a peak or an
    efficiency must be a finite number, and JSON (the registry, `--json`) has neither."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Calibration(_Strict):
    """Measured efficiency of a device for one precision x runtime (filled by calibration, not by hand-waving).

    Roofline with calibration, per layer: ``t_i = max((F_i + 2 K N_i) / (eta_compute * P), B_i / (eta_memory * BW))``
    and for the model ``t = overhead_ms + n_ops * op_overhead_ms + sum t_i``, where ``N_i`` is the output elements of a
    MAC layer, ``K = macs_per_output_half`` (each output costs as much as K extra MACs: the Hockney n-half of a
    kernel, so layers with few MACs per output such as depthwise convs run below peak) and ``n_ops`` the operators the
    runtime launches (layers not fused into the one before). Both default to 0 (the plain calibrated roofline); fits
    with at least six measurements fill them. ``fit_error`` is the fit's relative error (e.g. median |pred - meas| / meas)
    over ``n_points`` measurements; ``source`` says where the measurements came from; ``interval_log_low/high`` the
    interval of the prediction (see the fields).
    """

    precision: Precision
    runtime: str  # "pytorch-cpu", "tensorrt", "onnxruntime", "hailort", "tflite-edgetpu", ...
    power_mode: str | None = None  # None: applies to every mode of the device
    eta_compute: float = Field(gt=0, le=1)
    eta_memory: float | None = Field(default=None, gt=0, le=1)  # None where the device has no DRAM
    overhead_ms: float = Field(default=0.0, ge=0)
    op_overhead_ms: float = Field(default=0.0, ge=0)  # per launched operator
    macs_per_output_half: float = Field(default=0.0, ge=0)  # Hockney n-half per output element of a MAC layer
    source: str
    fit_error: float | None = Field(default=None, ge=0)
    n_points: int = Field(default=0, ge=0)
    # the prediction interval: log(low / predicted) <= 0 <= log(high / predicted), from the fit's residuals
    # log(measured / predicted) (10th-90th percentile with 8 or more, else x/÷ 2; perf.calibrate.interval); None: not
    # recorded (a calibration stored before intervals existed: x/÷ 2 is shown)
    interval_log_low: float | None = Field(default=None, le=0)
    interval_log_high: float | None = Field(default=None, ge=0)
    interval_note: str = ""


class PowerMode(_Strict):
    """One operating point: clocks, active units, memory bandwidth and the dense peaks they give."""

    name: str = Field(min_length=1)
    power_w: float | None = Field(default=None, gt=0)  # the mode's power budget; None = not stated (never 0)
    gpu_clock_mhz: float | None = Field(default=None, gt=0)
    active_sms: int | None = Field(default=None, gt=0)
    cpu_cores: int | None = Field(default=None, gt=0)
    cpu_clock_mhz: float | None = Field(default=None, gt=0)
    memory_bandwidth_gbps: float | None = Field(default=None, gt=0)  # None = no DRAM (never 0)
    cache_bandwidth_gbps: float | None = Field(default=None, gt=0)  # last-level cache, where measured (the host)
    peak_tflops: dict[Precision, float] = Field(default_factory=dict)  # dense; int8/int4 in TOPS, the rest TFLOPS
    derived: dict[Precision, str] = Field(default_factory=dict)  # precision -> "8 SM x 2048 FLOP/clk x 612 MHz"
    source: str = Field(min_length=1)
    notes: list[str] = Field(default_factory=list)

    @field_validator("peak_tflops")
    @classmethod
    def _positive_peaks(cls, value: dict[str, float]) -> dict[str, float]:
        for precision, peak in value.items():
            if not peak > 0:
                raise ValueError(f"peak for {precision} must be > 0 (leave a precision out when it is unknown)")
        return value

    @model_validator(mode="after")
    def _derived_has_peak(self) -> "PowerMode":
        missing = [p for p in self.derived if p not in self.peak_tflops]
        if missing:
            raise ValueError(f"derived given for {', '.join(missing)} but peak_tflops has no such precision")
        return self

    def peak_flops(self, precision: str) -> float | None:
        """Dense peak in FLOP/s (OP/s for integer precisions), or None when the device does not state it."""
        value = self.peak_tflops.get(precision)  # type: ignore[call-overload]
        return None if value is None else value * 1e12

    def bandwidth_bytes_per_s(self) -> float | None:
        """DRAM bandwidth in bytes/s, or None for devices without DRAM (never 0)."""
        return None if self.memory_bandwidth_gbps is None else self.memory_bandwidth_gbps * 1e9


class HardwareEntry(_Strict):
    """One device with its power modes. ``id`` is a lowercase slug; ``aliases`` are other names it answers to."""

    id: str = Field(pattern=_ID_RE)
    name: str = Field(min_length=1)
    vendor: str
    type: DeviceType
    aliases: list[str] = Field(default_factory=list)
    architecture: str | None = None  # "ampere", "volta", "hopper", "cortex-a76", "hailo-8", ...
    ops_per_clock: dict[Precision, float] = Field(default_factory=dict)  # dense, per SM (GPU) or per core (CPU)
    memory_bytes: int | None = Field(default=None, gt=0)
    memory_type: str | None = None  # "LPDDR5 128-bit", "HBM3", ...
    onchip_memory_bytes: int | None = Field(default=None, gt=0)  # Hailo/Coral SRAM
    cache_bytes: int | None = Field(default=None, gt=0)  # last-level cache size, where measured (the host)
    host_link_gbps: float | None = Field(default=None, gt=0)  # PCIe/USB to the host, gigabytes/s
    host: str | None = Field(default=None, pattern=_ID_RE)  # catalog id of the host an accelerator is paired with
    headline_tops: float | None = Field(default=None, gt=0)  # the vendor's "AI TOPS" as marketed
    headline_is_sparse: bool = False
    headline_includes_dla: bool = False
    headline_precision: Precision = "int8"  # the precision the headline is quoted at (TOPS, or TFLOPS for fp4/fp8)
    dla_int8_tops: float | None = Field(default=None, gt=0)  # dense INT8 of the DLAs together (Jetson), apart from GPU
    power_modes: list[PowerMode] = Field(min_length=1)
    default_mode: str
    sources: dict[str, str] = Field(default_factory=dict)  # figure -> where it comes from
    notes: list[str] = Field(default_factory=list)
    calibration: list[Calibration] = Field(default_factory=list)

    @model_validator(mode="after")
    def _modes_consistent(self) -> "HardwareEntry":
        seen: set[str] = set()
        for mode in self.power_modes:
            key = mode.name.casefold()
            if key in seen:
                raise ValueError(f"power mode {mode.name!r} appears twice")
            seen.add(key)
        if self.host is not None and self.host_link_gbps is None:
            raise ValueError(f"host {self.host!r} is given without host_link_gbps (the link to it)")
        if self.host is not None and self.host == self.id:
            raise ValueError("host names the device itself")
        if self.default_mode.casefold() not in seen:
            raise ValueError(f"default_mode {self.default_mode!r} is not one of the power modes: {self.mode_names()}")
        cached = [m.name for m in self.power_modes if m.cache_bandwidth_gbps is not None]
        if cached and self.cache_bytes is None:
            raise ValueError(f"power mode {cached[0]!r} states cache_bandwidth_gbps but the device has no cache_bytes")
        for cal in self.calibration:
            if cal.power_mode is not None and cal.power_mode.casefold() not in seen:
                raise ValueError(f"calibration power_mode {cal.power_mode!r} is not one of: {self.mode_names()}")
        return self

    def mode_names(self) -> str:
        return ", ".join(m.name for m in self.power_modes)

    def mode(self, name: str | None = None) -> PowerMode:
        """The power mode called ``name`` (case-insensitive: "15w", "15W", "maxn"); the default mode when None."""
        wanted = (name if name is not None else self.default_mode).strip().casefold()
        for mode in self.power_modes:
            if mode.name.casefold() == wanted:
                return mode
        compact = re.sub(r"[\s_-]", "", wanted)
        for mode in self.power_modes:
            if re.sub(r"[\s_-]", "", mode.name.casefold()) == compact:
                return mode
        raise NotFound(f"{self.id} has no power mode {name!r}; valid modes: {self.mode_names()}")

    @property
    def default(self) -> PowerMode:
        return self.mode(None)

    def calibration_for(self, precision: str, runtime: str | None = None,
                        mode: str | None = None) -> Calibration | None:
        """The most specific calibration for precision (and runtime, power mode), or None."""
        best: Calibration | None = None
        for cal in self.calibration:
            if cal.precision != precision or (runtime is not None and cal.runtime != runtime):
                continue
            if cal.power_mode is not None and (mode is None or cal.power_mode.casefold() != mode.casefold()):
                continue
            if best is None or (best.power_mode is None and cal.power_mode is not None):
                best = cal
        return best


def peak_flops(mode: PowerMode, precision: str) -> float | None:
    """Dense peak of ``mode`` at ``precision`` in FLOP/s (OP/s for int8/int4); None when not stated."""
    return mode.peak_flops(precision)


def bandwidth_bytes_per_s(mode: PowerMode) -> float | None:
    """DRAM bandwidth of ``mode`` in bytes/s; None when the device has no DRAM (Hailo, Coral)."""
    return mode.bandwidth_bytes_per_s()


# ---------------------------------------------------------------------------------------------------- parsing YAML

def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``X``, ``list[X]``, ``X | None`` or ``dict[str, X]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation) if get_origin(annotation) is not None else ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _close_field(loc: tuple[Any, ...]) -> str | None:
    """The field a misspelt name at ``loc`` most likely meant (difflib), or None."""
    model: type[BaseModel] | None = HardwareEntry
    for part in loc[:-1]:
        if model is None:
            return None
        if isinstance(part, str):
            if part not in model.model_fields:
                return None
            model = _inner_model(model.model_fields[part].annotation)
    if model is None or not isinstance(loc[-1], str):
        return None
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1, cutoff=0.6)
    return close[0] if close else None


def _describe_error(err: dict[str, Any]) -> str:
    loc = tuple(err.get("loc", ()))
    where = ".".join(str(p) for p in loc) or "(top level)"  # loc is empty for whole-entry checks
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        close = _close_field(loc)
        return f"{where}: unknown field" + (f" (did you mean {close}?)" if close else "")
    if kind == "missing":
        return f"{where}: missing field"
    if kind == "finite_number":
        return f"{where}: must be a finite number, not {err.get('input')!r}"
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{where}: {msg}" if loc else msg


def validation_message(exc: ValidationError, label: str) -> str:
    """One line: the most useful problem first (a misspelt field, then a missing one), and how many more."""
    errors = exc.errors()
    # a misspelt field also shows up as the field it meant being missing: report it once, as the misspelling
    meant = {(*tuple(e["loc"])[:-1], _close_field(tuple(e["loc"])))
             for e in errors if e.get("type") == "extra_forbidden"}
    errors = [e for e in errors if not (e.get("type") == "missing" and tuple(e["loc"]) in meant)]
    rank = {"extra_forbidden": 0, "missing": 1}
    errors.sort(key=lambda e: rank.get(e.get("type", ""), 2))
    first = _describe_error(errors[0]) if errors else str(exc)
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{label}: {first}{more}"


def parse_entry(data: Any, label: str) -> HardwareEntry:
    """Validate one device from already-loaded YAML/JSON data; one-line UserError naming ``label`` on failure."""
    if not isinstance(data, dict):
        raise UserError(f"{label}: expected a mapping of fields (id, name, vendor, type, power_modes, ...), "
                        f"got {type(data).__name__}")
    try:
        return HardwareEntry.model_validate(data)
    except ValidationError as exc:
        raise UserError(validation_message(exc, label)) from None


def parse_yaml_text(text: str, label: str) -> HardwareEntry:
    """Parse (``data.yaml_file.parse_yaml``) and validate one device's YAML; one-line UserError naming ``label``."""
    return parse_entry(parse_yaml(text, label), label)


def load_entry_file(path: str | Path, label: str | None = None) -> HardwareEntry:
    """Read and validate a user's device YAML; one-line UserError naming the file on any problem."""
    label = label or f"hardware file {path}"
    return parse_entry(read_yaml(path, label), label)


@functools.lru_cache(maxsize=1)
def _catalog() -> tuple[HardwareEntry, ...]:
    folder = resources.files("embodied_tui.data") / "catalog"
    entries: list[HardwareEntry] = []
    for item in folder.iterdir():
        if item.name.endswith((".yaml", ".yml")):
            entries.append(parse_yaml_text(item.read_text(encoding="utf-8"), f"catalog file {item.name}"))
    entries.sort(key=lambda e: e.id)
    _check_unique(entries, "catalog")
    ids = {e.id for e in entries}
    for entry in entries:
        if entry.host is not None and entry.host not in ids:
            raise UserError(f"catalog file {entry.id}.yaml: host {entry.host!r} is not a catalog device")
    return tuple(entries)


def _check_unique(entries: list[HardwareEntry], what: str) -> None:
    owner: dict[str, str] = {}
    for entry in entries:
        for key in [entry.id, *entry.aliases]:
            k = key.casefold()
            if k in owner and owner[k] != entry.id:
                raise UserError(f"{what}: name {key!r} is used by both {owner[k]} and {entry.id}")
            owner[k] = entry.id


def load_catalog() -> list[HardwareEntry]:
    """Every device in the package catalog (embodied_tui/data/catalog/*.yaml), validated, sorted by id."""
    return list(_catalog())


# ---------------------------------------------------------------------------------------------------- look-up

def _tokens(text: str) -> list[str]:
    """'Orin Nano 8GB Super' -> ['orin', 'nano', '8', 'gb', 'super']; 'pi5' -> ['pi', '5']."""
    text = re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])", " ", text.casefold())
    return [t for t in re.split(r"[^a-z0-9.]+", text) if t]


def _names(entry: HardwareEntry) -> list[str]:
    return [entry.id, entry.name, *entry.aliases]


def find_device(query: str, devices: list[HardwareEntry] | None = None) -> HardwareEntry:
    """The device ``query`` names: its id, an alias or its name (case-insensitive), or else the one device whose
    names contain every word of the query ("orin nano super", "pi 5"). NotFound lists the valid ids otherwise."""
    devices = load_catalog() if devices is None else devices
    wanted = query.strip().casefold()
    for entry in devices:  # exact id first, so a user id never shadows through an alias
        if entry.id.casefold() == wanted:
            return entry
    for entry in devices:
        if any(n.casefold() == wanted for n in _names(entry)):
            return entry
    q = _tokens(query)
    if q:
        norm = " ".join(q)
        exact = [e for e in devices if any(" ".join(_tokens(n)) == norm for n in _names(e))]
        if len(exact) == 1:
            return exact[0]
        hits = []
        for entry in devices:
            vocab = {t for n in _names(entry) for t in _tokens(n)}
            if all(t in vocab for t in q):
                hits.append(entry)
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise NotFound(f"{query!r} matches several devices: {', '.join(e.id for e in hits)}; "
                           f"give one of these ids")
    ids = [e.id for e in devices]
    close = difflib.get_close_matches(wanted, [n.casefold() for e in devices for n in _names(e)], n=1, cutoff=0.6)
    hint = ""
    if close:
        match = next(e for e in devices if any(n.casefold() == close[0] for n in _names(e)))
        hint = f" (did you mean {match.id}?)"
    raise NotFound(f"no device {query!r}{hint}; valid ids: {', '.join(ids)}")
