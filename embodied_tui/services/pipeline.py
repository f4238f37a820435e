"""Will this policy hold its control rate? A pipeline spec (``data.pipeline_spec``) fitted on one device x power mode x
precision: every stage's time, the total per control period, the rate it can hold, the memory it needs, and the
cheapest changes that would meet the rate, each re-fitted.

Conventions (shown with the result, ``CONVENTIONS``):
- A stage's ``ms`` is one run of it, ``repeat`` times (an action head's flow or diffusion steps). A stage with
  ``chunk: H`` yields H actions per run and runs once every H control steps: it costs ``ms / H`` per control period.
- ``total_ms`` is the time the stages take per control period (``sum ms / chunk``), run one after another on one
  device; ``rate_hz = 1000 / total_ms`` is the control rate the device can hold; ``meets_rate`` is
  ``rate_hz >= required_rate_hz``; ``margin`` is ``1 - total_ms / period_ms`` (negative: short by that share).
  ``latency_ms`` is one run of every stage (``sum ms``): the delay from an observation to its first action.
- ``share`` is a stage's part of ``total_ms``.
- Registered models run as one inference each (``services.fit``'s calibrated roofline of the record at its
  registered input shape). Config stages use ``perf.phases`` (encode, prefill, decode rooflines).
- Memory: weights (each model once, however many stages use it) + the largest stage's activations (stages run one
  at a time) + the KV cache of every language model at its longest context + a runtime reserve
  (``RESERVE_BYTES``: CUDA context, runtime workspace, and on a Jetson the OS, which shares the memory) against the
  device's memory (unified on a Jetson). Config stages' activations are an estimate: the widest layer's input and
  output (``tokens x (2 hidden + intermediate (x2 if gated))``) plus one layer's attention scores
  (``heads x tokens x keys``), at the activation precision.
- Precision: ``--precision`` replaces the spec's default; a stage's own ``precision`` wins over both. Without
  either, fp16.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from embodied_tui.analysis.hf.config import read_config
from embodied_tui.data.hardware import HardwareEntry, PowerMode, find_device
from embodied_tui.data.pipeline_spec import PipelineSpec, StageSpec, load_spec
from embodied_tui.errors import UserError
from embodied_tui.perf import phases
from embodied_tui.perf.precision import bytes_at_precision
from embodied_tui.services.aliases import resolve
from embodied_tui.services.fit import FitContext, fit_record
from embodied_tui.services.fit_llm import phase_on

GIB = 1 << 30
RESERVE_BYTES = {"soc": 2 * GIB, "gpu": 1 * GIB}  # others: 0.5 GiB
DEFAULT_RESERVE = GIB // 2
DEFAULT_PRECISION = "fp16"
CONVENTIONS = (
    "stage ms = one run x repeat; per control period a stage costs ms / chunk",
    "total_ms = sum of stage ms / chunk (stages run one after another); rate_hz = 1000 / total_ms",
    "latency_ms = sum of stage ms (one run of every stage)",
    "config stages: encode/prefill compute-bound, decode bandwidth-bound rooflines (perf.phases); registered "
    "models: the calibrated roofline of `embodied-ai fit`",
    "memory = weights (each model once) + largest stage's activations + KV caches + runtime reserve",
)


@dataclass(frozen=True)
class StageFit:
    """One stage on the device: its time and where the number comes from. ``ms`` is None when it could not be
    computed (``reason`` says why)."""

    name: str
    source: str  # "model NAME" | "config PATH"
    phase: str
    precision: str
    tokens: int | None
    context: int
    repeat: int
    chunk: int
    ms: float | None  # one run x repeat
    ms_per_period: float | None  # ms / chunk
    share: float | None  # of total_ms
    bound: str | None
    roofline_ms: float | None  # pure roofline x repeat: a lower bound
    macs: int | None  # one run
    bytes: float | None  # one run
    weight_bytes: float | None
    activation_bytes: float | None
    kv_cache_bytes: float  # the KV cache this stage leaves at its longest context (0 for encoders)
    efficiency_source: str
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MemoryFit:
    """Bytes the pipeline needs against the device's memory. ``fits`` is None when the device states no memory."""

    weight_bytes: float
    activation_bytes: float
    kv_cache_bytes: float
    reserve_bytes: float
    total_bytes: float
    device_bytes: int | None
    fits: bool | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Change:
    """One change to the spec or the target, re-fitted: what it is and what it gives."""

    kind: str  # precision | steps | tokens | resolution | power_mode | device
    description: str
    total_ms: float | None
    rate_hz: float | None
    meets_rate: bool | None
    fits_memory: bool | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PipelineFit:
    """A pipeline on one device x power mode x precision (see the module docstring for every convention)."""

    name: str
    version: int
    hardware: str
    power_mode: str
    precision: str
    required_rate_hz: float
    period_ms: float
    stages: tuple[StageFit, ...]
    total_ms: float | None
    latency_ms: float | None
    rate_hz: float | None
    meets_rate: bool | None
    margin: float | None
    memory_fit: MemoryFit
    changes: tuple[Change, ...] = ()
    conventions: tuple[str, ...] = CONVENTIONS
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["stages"] = [s.to_dict() for s in self.stages]
        out["memory_fit"] = self.memory_fit.to_dict()
        out["changes"] = [c.to_dict() for c in self.changes]
        out["conventions"] = list(self.conventions)
        return out


# ---------------------------------------------------------------------------------------------------- configs

def load_shape(path: Path, name: str, *, phase: str, part: str | None = None) -> phases.TransformerShape:
    """The architecture of a config.json for ``phase``: read by ``analysis.hf.config`` (JSON only, transformers'
    defaults) where it knows the model_type, else by ``perf.phases.shape_from_config`` (DINOv2, openpi's action
    expert). Encoders take the vision tower of a composite config, prefill/decode the language tower; ``part``
    overrides."""
    return shape_of(read_config(path), str(path), name, phase=phase, part=part)


def shape_of(data: dict, path: str, name: str, *, phase: str, part: str | None = None) -> phases.TransformerShape:
    """``load_shape`` of an already-parsed config (a stored pipeline's configs are kept by content); ``path`` names
    it in errors."""
    want = part or ("vision" if phase == "encode" and "vision_config" in data else "text")
    return phases.shape_from_config(data, name, f"config {path}", part=want)


# ---------------------------------------------------------------------------------------------------- fitting

@dataclass
class _Run:
    """What one fit reads once and shares with every re-fit of the changes."""

    ctx: FitContext
    base_dir: Path
    configs: dict[str, dict] = field(default_factory=dict)  # config path as the spec gives it -> parsed content
    shapes: dict[tuple, phases.TransformerShape] = field(default_factory=dict)

    def shape(self, stage: StageSpec) -> phases.TransformerShape:
        key = (stage.config, stage.part, stage.phase == "encode")
        if key not in self.shapes and stage.config in self.configs:
            self.shapes[key] = shape_of(self.configs[stage.config], f"{stage.config} (stored)", stage.name,
                                        phase=stage.phase, part=stage.part)
        if key not in self.shapes:
            path = Path(stage.config).expanduser()  # type: ignore[arg-type]
            path = path if path.is_absolute() else self.base_dir / path
            if not path.is_file():
                raise UserError(f"stage {stage.name}: config {path} does not exist; give a config.json path relative "
                                f"to the spec file")
            self.shapes[key] = load_shape(path, stage.name, phase=stage.phase, part=stage.part)
        return self.shapes[key]


def _tokens(stage: StageSpec, shape: phases.TransformerShape) -> int:
    if stage.tokens is not None:
        return stage.tokens
    if shape.patch_size is None:
        raise UserError(f"stage {stage.name}: an encode stage of a text model needs tokens:")
    return shape.image_tokens(stage.image_size) + stage.register_tokens


def _patches(stage: StageSpec, shape: phases.TransformerShape) -> int | None:
    """The image patches of an encode stage sized by ``image_size`` (its register and class tokens are not patches:
    they get no patch-embedding MACs); None where the stage gives its tokens itself."""
    if stage.tokens is None and shape.patch_size:
        return shape.tower.patches_at(stage.image_size)
    return None


def _config_stage(run: _Run, stage: StageSpec, entry: HardwareEntry, mode: PowerMode, precision: str) -> StageFit:
    shape = run.shape(stage)
    tokens = _tokens(stage, shape)
    fit = phase_on(shape, stage.phase, tokens, precision, entry, mode, context=stage.context,
                   weights=stage.weights, patches=_patches(stage, shape))
    act = phases.activation_bytes_per_element(precision)
    keys = tokens + (stage.context if stage.phase != "encode" else 0)
    width = 2 * shape.hidden + shape.intermediate * (2 if shape.gated_mlp else 1)
    queries = 1 if stage.phase == "decode" else tokens
    activations = float((queries * width + shape.heads * queries * keys) * act)
    kv = 0.0 if stage.phase == "encode" else float((stage.context + tokens) * shape.kv_bytes_per_token)
    ms = None if fit.predicted_ms is None else fit.predicted_ms * stage.repeat
    return StageFit(
        name=stage.name, source=f"config {stage.config}", phase=stage.phase, precision=precision, tokens=tokens,
        context=stage.context, repeat=stage.repeat, chunk=stage.chunk, ms=ms,
        ms_per_period=None if ms is None else ms / stage.chunk, share=None, bound=fit.bound,
        roofline_ms=None if fit.roofline_ms is None else fit.roofline_ms * stage.repeat, macs=fit.macs,
        bytes=fit.bytes, weight_bytes=phases.stored_weight_bytes(shape, precision, stage.weights),
        activation_bytes=activations, kv_cache_bytes=kv, efficiency_source=fit.efficiency_source,
        reason=fit.reason)


def _model_stage(run: _Run, stage: StageSpec, entry: HardwareEntry, mode: PowerMode, precision: str) -> StageFit:
    record = resolve(run.ctx.reg, stage.model)  # NAME, NAME@3 or NAME@alias; NotFound names the registered models
    base = dict(name=stage.name, source=f"model {record.name} v{record.version}", phase="encode", precision=precision,
                tokens=None, context=0, repeat=stage.repeat, chunk=stage.chunk, share=None, kv_cache_bytes=0.0)
    if record.macs is None:
        why = f"{record.name}'s MACs are unknown ({record.macs_null_reason or 'not counted'})"
        return StageFit(**base, ms=None, ms_per_period=None, bound=None, roofline_ms=None, macs=None, bytes=None,
                        weight_bytes=None, activation_bytes=None, efficiency_source="", reason=why)
    row = fit_record(run.ctx, record, hw=entry.id, mode=mode.name, precision=precision)[0]
    pred = row.predicted_latency_ms
    ms = None if pred is None else pred * stage.repeat
    scaled = bytes_at_precision(record, precision)
    return StageFit(**base, ms=ms, ms_per_period=None if ms is None else ms / stage.chunk, bound=row.bound,
                    roofline_ms=None if row.roofline_latency_ms is None else row.roofline_latency_ms * stage.repeat,
                    macs=row.macs, bytes=row.traffic_bytes, weight_bytes=scaled["weight_bytes"],
                    activation_bytes=scaled["activation_bytes"],
                    efficiency_source=f"{row.calibration}: {row.calibration_source}", reason=row.reason or "")


def _memory(stages: list[StageFit], spec: PipelineSpec, entry: HardwareEntry) -> MemoryFit:
    weights: dict[tuple, float] = {}
    kv: dict[tuple, float] = {}
    for stage_spec, stage in zip(spec.stages, stages):
        key = (stage.source, stage_spec.part, stage.phase == "encode", stage.precision)
        weights[key] = max(weights.get(key, 0.0), stage.weight_bytes or 0.0)
        kv[key] = max(kv.get(key, 0.0), stage.kv_cache_bytes)
    activations = max((s.activation_bytes or 0.0 for s in stages), default=0.0)
    reserve = float(RESERVE_BYTES.get(entry.type, DEFAULT_RESERVE))
    total = sum(weights.values()) + activations + sum(kv.values()) + reserve
    unknown = [s.name for s in stages if s.weight_bytes is None]
    note = "unified memory shared with the CPU and OS" if entry.type == "soc" else "device memory"
    if unknown:
        note += f"; weights of {', '.join(unknown)} unknown (not counted)"
    if entry.memory_bytes is None:
        return MemoryFit(sum(weights.values()), activations, sum(kv.values()), reserve, total, None, None,
                         f"{entry.id} states no memory size")
    return MemoryFit(sum(weights.values()), activations, sum(kv.values()), reserve, total, entry.memory_bytes,
                     total <= entry.memory_bytes, note)


def _evaluate(run: _Run, spec: PipelineSpec, entry: HardwareEntry, mode: PowerMode, precision: str) -> PipelineFit:
    stages = []
    for stage in spec.stages:
        prec = stage.precision or precision
        fit = (_model_stage if stage.model is not None else _config_stage)(run, stage, entry, mode, prec)
        stages.append(fit)
    missing = [s for s in stages if s.ms_per_period is None]
    period = 1000.0 / spec.required_rate_hz
    total = latency = rate = margin = meets = None
    reason = ""
    if missing:
        reason = "; ".join(f"stage {s.name}: {s.reason or 'no time'}" for s in missing)
    else:
        total = sum(s.ms_per_period for s in stages)  # type: ignore[misc]
        latency = sum(s.ms for s in stages)  # type: ignore[misc]
        rate = 1000.0 / total if total > 0 else None
        meets = rate is not None and rate >= spec.required_rate_hz
        margin = 1.0 - total / period
        stages = [replace(s, share=s.ms_per_period / total if total else None) for s in stages]  # type: ignore[operator]
    return PipelineFit(name=spec.name, version=spec.version, hardware=entry.id, power_mode=mode.name,
                       precision=precision, required_rate_hz=spec.required_rate_hz, period_ms=period,
                       stages=tuple(stages), total_ms=total, latency_ms=latency, rate_hz=rate, meets_rate=meets,
                       margin=margin, memory_fit=_memory(stages, spec, entry), reason=reason)


# ---------------------------------------------------------------------------------------------------- changes

def _with_stages(spec: PipelineSpec, **updates_by_name: dict) -> PipelineSpec:
    stages = [s.model_copy(update=updates_by_name.get(s.name, {})) for s in spec.stages]
    return spec.model_copy(update={"stages": stages})


def _change(kind: str, description: str, fit: PipelineFit) -> Change:
    return Change(kind, description, fit.total_ms, fit.rate_hz, fit.meets_rate, fit.memory_fit.fits)


def _changes(run: _Run, spec: PipelineSpec, entry: HardwareEntry, mode: PowerMode, precision: str,
             devices: list[HardwareEntry], limit: int = 8) -> tuple[Change, ...]:
    """Single changes that meet the rate (and fit memory where that is known), cheapest kind first: precision,
    steps, tokens, resolution, power mode, device. Within a kind: precisions that keep the most bits first, power
    modes and devices of the least rated power first (a robot's budget), the rest fastest first."""
    found: list[Change] = []

    def keep(change: Change) -> None:
        if change.meets_rate and change.fits_memory is not False:
            found.append(change)

    def safe(fn):
        try:
            return fn()
        except UserError:
            return None

    kinds: dict[str, list[Change]] = {}
    cost: dict[str, float] = {}  # description -> how much it gives up, within its kind (lower first)
    for prec in ("int4", "int8", "fp16"):
        if prec != precision and mode.peak_flops(phases.COMPUTE_PRECISION[prec]) is not None:
            fit = safe(lambda p=prec: _evaluate(run, spec, entry, mode, p))
            if fit:
                kinds.setdefault("precision", []).append(_change("precision", f"--precision {prec}", fit))
                cost[f"--precision {prec}"] = phases.WEIGHT_BITS[precision] / phases.WEIGHT_BITS[prec]
    for stage in spec.stages:
        if stage.repeat > 1:
            steps = max(1, stage.repeat // 2)
            fit = safe(lambda s=stage, k=steps: _evaluate(run, _with_stages(spec, **{s.name: {"repeat": k}}), entry,
                                                          mode, precision))
            if fit:
                kinds.setdefault("steps", []).append(
                    _change("steps", f"{stage.name}: repeat {stage.repeat} -> {steps}", fit))
        if stage.phase in ("prefill", "decode") and stage.tokens and stage.tokens > 1:
            fewer = max(1, stage.tokens // 2)
            fit = safe(lambda s=stage, n=fewer: _evaluate(run, _with_stages(spec, **{s.name: {"tokens": n}}), entry,
                                                          mode, precision))
            if fit:
                kinds.setdefault("tokens", []).append(
                    _change("tokens", f"{stage.name}: tokens {stage.tokens} -> {fewer}", fit))
        if stage.config is not None and stage.phase == "encode" and stage.tokens is None:
            shape = safe(lambda s=stage: run.shape(s))
            size = stage.image_size or (shape.image_size if shape else None)
            if shape and shape.patch_size and size:
                smaller = max(shape.patch_size, int(size * 0.75) // shape.patch_size * shape.patch_size)
                fit = safe(lambda s=stage, z=smaller: _evaluate(run, _with_stages(spec, **{s.name: {"image_size": z}}),
                                                                entry, mode, precision))
                if fit:
                    kinds.setdefault("resolution", []).append(
                        _change("resolution", f"{stage.name}: image {size} -> {smaller} px", fit))
    for other in entry.power_modes:
        if other.name != mode.name:
            fit = safe(lambda m=other: _evaluate(run, spec, entry, m, precision))
            if fit:
                kinds.setdefault("power_mode", []).append(_change("power_mode", f"--mode {other.name}", fit))
                cost[f"--mode {other.name}"] = other.power_w or float("inf")
    for device in devices:
        if device.id != entry.id and device.type in ("soc", "gpu"):
            fit = safe(lambda d=device: _evaluate(run, spec, d, d.default, precision))
            if fit:
                description = f"--hw {device.id} (mode {device.default.name})"
                kinds.setdefault("device", []).append(_change("device", description, fit))
                cost[description] = device.default.power_w or float("inf")
    for kind in ("precision", "steps", "tokens", "resolution", "power_mode", "device"):
        for change in sorted(kinds.get(kind, []), key=lambda c: (cost.get(c.description, 0.0), c.total_ms or 0.0)):
            keep(change)
    return tuple(found[:limit])


# ---------------------------------------------------------------------------------------------------- the verb

def fit_pipeline(db, spec: PipelineSpec | str | Path, hw: str, *, mode: str | None = None,
                 precision: str | None = None, base_dir: str | Path | None = None,
                 with_changes: bool = True, configs: dict[str, dict] | None = None,
                 ctx: FitContext | None = None) -> PipelineFit:
    """Fit a pipeline spec (a file, or a parsed spec with ``base_dir`` for its relative config paths) on ``hw`` in
    ``mode`` (the spec's ``power_mode``, else the device's default) at ``precision`` (the spec's, else fp16).
    ``configs``: config contents by the path the spec gives (a stored pipeline's), read instead of the files.
    ``ctx``: a FitContext already open on ``db`` (fitting many devices reads the registry once).
    NotFound for an unknown device, mode or registered model; UserError, one line, for a bad spec or config."""
    if not isinstance(spec, PipelineSpec):
        path = Path(spec)
        spec, base_dir = load_spec(path), path.parent
    if precision is not None and precision not in phases.WEIGHT_BITS:
        raise UserError(f"unknown precision {precision!r}; valid: {', '.join(phases.WEIGHT_BITS)}")
    ctx = ctx or FitContext.open(db)
    entry = find_device(hw, ctx.entries)
    pm = entry.mode(mode or spec.power_mode)
    prec = precision or spec.precision or DEFAULT_PRECISION
    run = _Run(ctx, Path(base_dir or "."), dict(configs or {}))
    result = _evaluate(run, spec, entry, pm, prec)
    if with_changes and not result.meets_rate:
        result = replace(result, changes=_changes(run, spec, entry, pm, prec, ctx.entries))
    return result
