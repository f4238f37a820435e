"""Transformer phases on a roofline: encode, prefill and decode of LLM/VLA stages, from the architecture alone.

Pure arithmetic on plain numbers (no I/O, no catalog, no registry). A stage's work (MACs, bytes) is
``analysis.hf.count``'s, for a ``Tower`` read from a Hugging Face ``config.json`` by ``analysis.hf.config`` (every
family it knows: Llama ... Gemma, SigLIP, DINOv2, openpi's Gemma action expert), under its ``"runtime"``
convention; its time is a roofline on a device's dense peak and memory bandwidth. The conventions are stated once,
in ``analysis/hf/count.py``'s docstring: MACs (logits for the last prompt position only, rotary angles from a table,
attention over the full score matrix), the three phases (encode, prefill with a cached context, decode), and the
bytes of a pass (weights read once, the cached K/V read, its own K/V written, fp16 cache). Shown in
`embodied-ai pipeline fit`. What this module adds:

- **Weight format.** A stage's ``precision`` names a weight format of ``perf.weight_formats`` (``PRECISION_FORMAT``):
  fp32/tf32 -> ``fp32``, fp16, bf16, int8 -> ``int8`` (8 bits, per-channel scales left out), int4 -> ``q4f16_1``
  (MLC LLM's layout: 4-bit values, one fp16 scale per 32, 4.5 bits; the published int4 rows the efficiencies are
  fitted to are MLC and TensorRT Edge-LLM AWQ). A stage may name the format itself (``weights=``: ``awq``,
  ``q4_k_m``, ``nvfp4`` ...): its bits replace the precision's. Linear matrices are stored at the format,
  everything else at 16 bits (32 beside fp32).
- **Compute precision.** int4 and int8 weights are weight-only quantisation, as LLM runtimes use them (W4A16 / W8A16:
  MLC q4f16 and q8f16, AWQ, GGUF Q4/Q8): the matmuls run at the fp16 peak (``COMPUTE_PRECISION``). Other precisions
  run at their own peak. (A registered model in a pipeline runs at its precision's own peak, as `fit` does.)
- **Time** of one pass ``= max(2 MACs / (eta_c P), bytes / (eta_m BW)) + t_call``; a phase sums its passes.
  ``roofline_ms`` is the pure roofline (eta = 1, no overhead), a lower bound. The bound is the largest of the summed
  compute-bound time, memory-bound time and overhead (``compute`` / ``memory`` / ``overhead``).
- **Efficiencies per phase** (``phase_efficiency``), fitted by `benchmarks/llm_accuracy.py` to the published rows
  of scope ``decode_per_token`` and ``prefill`` (``data/published/latency.csv``), which also prints the leave-one-out
  error: decode, one bandwidth efficiency for every device (``DECODE_EFFICIENCY``); prefill, a compute efficiency per
  Jetson (``PREFILL_ETA_BY_DEVICE``: W4A16 GEMM efficiency differs by device far more than by model), the median of
  all rows on other Jetsons. Encode stages, and prefill off Jetsons, use the documented default of the device type
  (``perf.roofline.DEFAULT_EFFICIENCY``): no published encoder-stage row fits them yet.
"""
from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

from embodied_tui.analysis.hf import count
from embodied_tui.analysis.hf.config import Tower, towers
from embodied_tui.errors import UserError
from embodied_tui.perf.roofline import DEFAULT_EFFICIENCY, default_efficiency
from embodied_tui.perf.weight_formats import WeightFormat, other_bytes_per_param, split_weight_bytes, weight_format

# the weight format each precision names (see the module docstring)
PRECISION_FORMAT: dict[str, str] = {"fp32": "fp32", "tf32": "fp32", "fp16": "fp16", "bf16": "bf16", "int8": "int8",
                                    "int4": "q4f16_1"}
WEIGHT_BITS: dict[str, float] = {p: weight_format(f).bits_per_weight() for p, f in PRECISION_FORMAT.items()}
# the peak the matmuls run at for each weight format (int8 and int4 are weight-only: W8A16, W4A16)
COMPUTE_PRECISION: dict[str, str] = {"fp32": "fp32", "tf32": "tf32", "fp16": "fp16", "bf16": "bf16",
                                     "int8": "fp16", "int4": "fp16"}
KV_BYTES_PER_ELEMENT = 2  # fp16 KV cache
PHASES = ("encode", "prefill", "decode")
CONVENTION = "runtime"  # analysis.hf.count's inference convention: last-position logits, tabled rotary angles


def weight_format_of(precision: str, weights: str | None = None) -> WeightFormat:
    """The weight format a stage stores its linear matrices in: ``weights`` when named, else its precision's."""
    if weights is not None:
        return weight_format(weights)
    try:
        return weight_format(PRECISION_FORMAT[precision])
    except KeyError:
        raise UserError(f"unknown precision {precision!r}; valid: {', '.join(PRECISION_FORMAT)}") from None


def stored_weight_bytes(shape: Tower | TransformerShape, precision: str, weights: str | None = None) -> int:
    """Bytes the stage's weights occupy in memory: the quantisable linear matrices at the weight format (scales
    included), everything else at 16 bits (32 beside fp32): ``perf.weight_formats.split_weight_bytes``."""
    t = _tower(shape)
    linear = count.quantizable_params(t)
    return split_weight_bytes(linear, count.params(t) - linear, weight_format_of(precision, weights).name)


def activation_bytes_per_element(precision: str) -> int:
    """Activations are fp32 for fp32/tf32 weights and fp16 otherwise (int8 and int4 keep fp16 activations here)."""
    return 4 if precision in ("fp32", "tf32") else 2


# ---------------------------------------------------------------------------------------------------- architecture

@dataclass(frozen=True)
class TransformerShape:
    """A named ``Tower`` as a pipeline stage sees it (the names services/pipeline.py reads). No arithmetic of its own:
    every number is the tower's or ``analysis.hf.count``'s."""

    name: str
    tower: Tower

    hidden = property(lambda self: self.tower.hidden)
    layers = property(lambda self: self.tower.layers)
    heads = property(lambda self: self.tower.heads)
    kv_heads = property(lambda self: self.tower.kv_heads)
    head_dim = property(lambda self: self.tower.head_dim)
    intermediate = property(lambda self: self.tower.intermediate)
    gated_mlp = property(lambda self: self.tower.gated)
    vocab = property(lambda self: self.tower.vocab if self.tower.lm_head else 0)
    tied_embeddings = property(lambda self: self.tower.tied)

    @property
    def patch_size(self) -> int | None:
        return self.tower.patch_size if self.tower.kind == "vision" and self.tower.patch_size else None

    @property
    def image_size(self) -> int | None:
        return self.tower.image_size if self.patch_size else None

    @property
    def params(self) -> int:
        """Every parameter (``analysis.hf.count.params``: norms, biases, embeddings and an untied LM head included)."""
        return count.params(self.tower)

    @property
    def kv_bytes_per_token(self) -> int:
        """K and V of one token in every layer at fp16: 2 x layers x kv_heads x head_dim x 2 bytes."""
        return count.kv_cache_bytes_per_token(self.tower, KV_BYTES_PER_ELEMENT)

    def image_tokens(self, image_size: int | None = None) -> int:
        """Patches of a square image ((size // patch)^2) plus the class/register tokens."""
        if self.patch_size is None:
            raise UserError(f"{self.name}: not a vision encoder (no patch_size/image_size in its config); give the "
                            f"stage `tokens:` instead")
        return self.tower.patches_at(image_size) + self.tower.extra_tokens


def shape_from_tower(tower: Tower, name: str) -> TransformerShape:
    """The stage view of a tower read by ``analysis.hf.config``."""
    return TransformerShape(name=name, tower=tower)


def shape_from_config(data: Any, name: str, label: str, *, part: str | None = None) -> TransformerShape:
    """The ``TransformerShape`` of a Hugging Face config.json (already parsed), read by ``analysis.hf.config``
    (transformers' defaults for missing keys; one line naming ``label`` and the key when it is wrong). ``part``:
    ``"vision"`` or ``"text"`` picks that tower of a composite config (PaliGemma); by default the language tower."""
    if not isinstance(data, dict):
        raise UserError(f"{label}: expected a JSON object of config fields, got {type(data).__name__}")
    if part == "vision" and isinstance(data.get("vision_config"), dict):
        data = {k: v for k, v in data.items() if k != "text_config"}  # SigLIP: its text tower is not needed here
    found = towers(data, label)
    kinds = ("vision",) if part == "vision" else ("decoder", "encoder") if part == "text" else ()
    return shape_from_tower(next((t for t in found if t.kind in kinds), found[0]), name)


def _tower(shape: Tower | TransformerShape) -> Tower:
    return shape.tower if isinstance(shape, TransformerShape) else shape


# ---------------------------------------------------------------------------------------------------- work

@dataclass(frozen=True)
class Pass(count.Traffic):
    """One forward pass: its MACs and the bytes it moves (``count.Traffic``: weights + KV cache read + KV cache
    written)."""

    macs: int

    @property
    def bytes(self) -> float:
        return self.total


def _pass(t: Tower, macs: int, tokens: int, cached: int, precision: str, weights: str | None, kv: bool) -> Pass:
    fmt = weight_format_of(precision, weights)
    traffic = count.pass_traffic(t, tokens, cached, kv=kv, linear_bytes_per_param=fmt.bits_per_weight() / 8,
                                 other_bytes_per_param=other_bytes_per_param(fmt.name),
                                 kv_bytes_per_elem=KV_BYTES_PER_ELEMENT)
    return Pass(weight_bytes=traffic.weight_bytes, kv_read_bytes=traffic.kv_read_bytes,
                kv_write_bytes=traffic.kv_write_bytes, macs=macs)


def encode_pass(shape: Tower | TransformerShape, tokens: int, precision: str, *, patches: int | None = None,
                weights: str | None = None) -> Pass:
    """One bidirectional pass over ``tokens`` (``count.encode_macs``; a vision tower's patch convolution on
    ``patches``, by default ``tokens`` less its class/register tokens): no KV cache, no LM head."""
    t = _tower(shape)
    macs = count.encode_macs(t, tokens, patches=patches, convention=CONVENTION)
    return _pass(t, macs, tokens, 0, precision, weights, kv=False)


def prefill_pass(shape: Tower | TransformerShape, tokens: int, precision: str, context: int = 0, *,
                 weights: str | None = None) -> Pass:
    """``tokens`` new tokens attending to ``context`` cached ones and themselves; logits for the last token only."""
    t = _tower(shape)
    macs = count.prefill_macs(t, tokens, context, convention=CONVENTION)
    return _pass(t, macs, tokens, context, precision, weights, kv=True)


def decode_passes(shape: Tower | TransformerShape, tokens: int, precision: str, context: int = 0, *,
                  weights: str | None = None) -> list[Pass]:
    """``tokens`` passes of one token; token ``j`` attends to ``context + j + 1`` positions and reads the KV cache of
    the ``context + j`` before it."""
    t = _tower(shape)
    return [_pass(t, count.decode_macs(t, context + j + 1, convention=CONVENTION), 1, context + j, precision,
                  weights, kv=True) for j in range(tokens)]


def phase_passes(shape: Tower | TransformerShape, phase: str, tokens: int, precision: str, context: int = 0, *,
                 weights: str | None = None, patches: int | None = None) -> list[Pass]:
    if phase == "encode":
        return [encode_pass(shape, tokens, precision, patches=patches, weights=weights)]
    if phase == "prefill":
        return [prefill_pass(shape, tokens, precision, context, weights=weights)]
    if phase == "decode":
        return decode_passes(shape, tokens, precision, context, weights=weights)
    raise UserError(f"unknown phase {phase!r}; valid: {', '.join(PHASES)}")


# ---------------------------------------------------------------------------------------------------- time

@dataclass(frozen=True)
class PhaseEfficiency:
    """Efficiencies of one phase: ``t = max(C / eta_compute, M / eta_memory) + per_call_ms`` per pass."""

    eta_compute: float
    eta_memory: float
    per_call_ms: float
    source: str
    n_points: int = 0
    fit_error: float | None = None  # median |pred - meas| / meas over the fitted points

    def __post_init__(self) -> None:
        if not (0 < self.eta_compute <= 1 and 0 < self.eta_memory <= 1) or self.per_call_ms < 0:
            raise ValueError(f"bad phase efficiency: {self}")


_SOC = DEFAULT_EFFICIENCY["soc"]
_BENCH = "benchmarks/llm_accuracy.py (rerun it after adding published rows and copy its numbers here)"
# Fitted by benchmarks/llm_accuracy.py to the published decode_per_token rows of data/published/latency.csv that
# have a config in examples/configs and a stated precision (int4: MLC on Orin Nano / Orin Nano Super, TensorRT
# Edge-LLM on AGX Thor, AGX Orin, Orin NX, Orin Nano Super).
DECODE_EFFICIENCY = PhaseEfficiency(
    eta_compute=_SOC.eta_compute, eta_memory=0.747, per_call_ms=0.0,
    source="decode: eta_memory fitted to 27 published int4 decode rows on 6 Jetsons (MLC, TensorRT Edge-LLM; "
           f"leave-one-out median |error| 9.8 %); {_BENCH}",
    n_points=27, fit_error=0.086)
# Prefill efficiency differs by device far more than by model (W4A16 GEMMs): eta_compute per device, each the median
# of measured / roofline over that device's published prefill rows (TensorRT Edge-LLM int4 AWQ, 2,048-token prompts;
# Llama 3.1 8B at 383 tokens on Thor); PREFILL_EFFICIENCY (all rows) for other Jetsons.
PREFILL_ETA_BY_DEVICE: dict[str, float] = {
    "jetson-agx-thor": 0.181, "jetson-agx-orin-64gb": 0.530, "jetson-orin-nx-16gb": 0.528,
    "jetson-orin-nano-8gb-super": 0.383}
PREFILL_EFFICIENCY = PhaseEfficiency(
    eta_compute=0.480, eta_memory=_SOC.eta_memory, per_call_ms=0.0,
    source="prefill: eta_compute fitted to 15 published int4 prefill rows on 4 Jetsons (TensorRT Edge-LLM; per "
           f"device, leave-one-out median |error| 4.1 %); {_BENCH}",
    n_points=15, fit_error=0.141)


def phase_efficiency(phase: str, device_type: str, device: str | None = None) -> PhaseEfficiency:
    """The efficiency of ``phase`` on ``device`` (an id) of ``device_type``:
    - decode: ``DECODE_EFFICIENCY`` on every device (fitted on Jetsons; a bandwidth efficiency);
    - prefill on a Jetsons (``soc``): the device's own fitted ``PREFILL_ETA_BY_DEVICE``, else ``PREFILL_EFFICIENCY``;
    - encode, and prefill elsewhere: the documented default of the device type (``perf.roofline.DEFAULT_EFFICIENCY``),
      no overhead (no published encoder-stage or non-Jetson LLM row to fit yet)."""
    if phase not in PHASES:
        raise UserError(f"unknown phase {phase!r}; valid: {', '.join(PHASES)}")
    if phase == "decode":
        return DECODE_EFFICIENCY
    if phase == "prefill" and device in PREFILL_ETA_BY_DEVICE:
        eta = PREFILL_ETA_BY_DEVICE[device]
        return replace(PREFILL_EFFICIENCY, eta_compute=eta,
                       source=f"prefill on {device}: eta_compute {eta} fitted to its published int4 prefill rows; "
                              f"{_BENCH}")
    if phase == "prefill" and device_type == "soc":
        return PREFILL_EFFICIENCY
    base = default_efficiency(device_type)
    return PhaseEfficiency(base.eta_compute, base.eta_memory, 0.0,
                           f"{phase}: the {device_type} default efficiencies (eta_compute {base.eta_compute}, "
                           f"eta_memory {base.eta_memory}; perf.roofline.DEFAULT_EFFICIENCY), no overhead")


@dataclass(frozen=True)
class PhaseFit:
    """A phase's work and time on one device x mode x precision. Times in ms; None only where the device states no
    peak or bandwidth (``reason`` says which)."""

    phase: str
    tokens: int
    context: int
    passes: int
    macs: int
    bytes: float
    compute_ms: float | None  # pure: 2 MACs / P, summed over passes
    memory_ms: float | None  # pure: bytes / BW, summed over passes
    roofline_ms: float | None  # pure roofline: sum of max(compute, memory) per pass
    predicted_ms: float | None
    bound: str | None  # compute | memory | overhead
    compute_precision: str
    efficiency_source: str
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_passes(passes: Sequence[Pass], *, phase: str, tokens: int, context: int, peak_flops: float | None,
               bandwidth: float | None, compute_precision: str, eff: PhaseEfficiency) -> PhaseFit:
    """The time of ``passes`` at ``peak_flops`` (FLOP/s of the compute precision) and ``bandwidth`` (bytes/s)."""
    macs = sum(p.macs for p in passes)
    moved = sum(p.bytes for p in passes)
    base = dict(phase=phase, tokens=tokens, context=context, passes=len(passes), macs=macs, bytes=moved,
                compute_precision=compute_precision, efficiency_source=eff.source)
    if not peak_flops or not bandwidth:
        why = "no " + (f"{compute_precision} peak" if not peak_flops else "memory bandwidth") + " stated"
        return PhaseFit(**base, compute_ms=None, memory_ms=None, roofline_ms=None, predicted_ms=None, bound=None,
                        reason=why)
    compute = memory = roof = pred = 0.0
    by_bound = {"compute": 0.0, "memory": 0.0, "overhead": 0.0}
    for p in passes:
        c, m = 2 * p.macs / peak_flops, p.bytes / bandwidth
        compute, memory, roof = compute + c, memory + m, roof + max(c, m)
        ce, me = c / eff.eta_compute, m / eff.eta_memory
        by_bound["compute" if ce >= me else "memory"] += max(ce, me)
        by_bound["overhead"] += eff.per_call_ms / 1e3
        pred += max(ce, me) + eff.per_call_ms / 1e3
    bound = max(by_bound, key=lambda k: by_bound[k])
    return PhaseFit(**base, compute_ms=compute * 1e3, memory_ms=memory * 1e3, roofline_ms=roof * 1e3,
                    predicted_ms=pred * 1e3, bound=bound)


def fit_phase(shape: Tower | TransformerShape, phase: str, tokens: int, precision: str, *, peak_flops: float | None,
              bandwidth: float | None, context: int = 0, eff: PhaseEfficiency | None = None,
              weights: str | None = None, patches: int | None = None) -> PhaseFit:
    """``phase`` of ``shape`` over ``tokens`` at ``precision`` (its weight format, or the named ``weights`` format)
    on a device with the given peak (of ``COMPUTE_PRECISION[precision]``) and bandwidth."""
    if precision not in COMPUTE_PRECISION:
        raise UserError(f"unknown precision {precision!r}; valid: {', '.join(COMPUTE_PRECISION)}")
    passes = phase_passes(shape, phase, tokens, precision, context, weights=weights, patches=patches)
    return fit_passes(passes, phase=phase, tokens=tokens, context=context, peak_flops=peak_flops,
                      bandwidth=bandwidth, compute_precision=COMPUTE_PRECISION[precision],
                      eff=eff or phase_efficiency(phase, "soc"))


# ---------------------------------------------------------------------------------------------------- fitting

def fit_ratio(points: Sequence[tuple[float, float]], *, source: str, compute: bool = True,
              base: PhaseEfficiency = PREFILL_EFFICIENCY) -> PhaseEfficiency:
    """Fit ``measured_ms = roof_ms / eta`` (no overhead) as the median of ``measured / roof`` over ``(roof_ms,
    measured_ms)`` points, ``eta <= 1``: robust to one odd row where a line would bend to it."""
    if not points:
        raise ValueError("no points to fit")
    eta = min(1.0, 1.0 / statistics.median(y / x for x, y in points))
    errors = [abs(x / eta - y) / y for x, y in points]
    fields = dict(eta_compute=eta, eta_memory=base.eta_memory) if compute else dict(
        eta_compute=base.eta_compute, eta_memory=eta)
    return PhaseEfficiency(**fields, per_call_ms=0.0, source=source, n_points=len(points),
                           fit_error=statistics.median(errors))


def fit_overhead_line(points: Sequence[tuple[float, float]], *, source: str,
                      base: PhaseEfficiency = DECODE_EFFICIENCY, compute: bool = False) -> PhaseEfficiency:
    """Fit ``measured_ms = roof_ms / eta + t_call`` by least squares over ``(roof_ms, measured_ms)`` per pass, with
    ``0 < eta <= 1`` and ``t_call >= 0``: ``roof_ms`` is the pure memory time (decode) or compute time (prefill,
    ``compute=True``). One point (or points with one x) fits eta alone."""
    if not points:
        raise ValueError("no points to fit")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    n, mx, my = len(points), sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope, intercept = (sum(ys) / sum(xs), 0.0) if n == 1 or sxx == 0 else (
        sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx, 0.0)
    if n > 1 and sxx > 0:
        intercept = my - slope * mx
        if intercept < 0:  # no negative overhead: through the origin
            slope, intercept = sum(x * y for x, y in zip(xs, ys)) / sum(x * x for x in xs), 0.0
    eta = min(1.0, 1.0 / slope) if slope > 0 else 1.0
    if eta == 1.0 and n > 1:  # faster than the roof: keep eta = 1 and fit the overhead alone
        intercept = max(0.0, my - mx)
    errors = [abs(x / eta + intercept - y) / y for x, y in zip(xs, ys)]
    fields = dict(eta_compute=eta, eta_memory=base.eta_memory) if compute else dict(
        eta_compute=base.eta_compute, eta_memory=eta)
    return PhaseEfficiency(**fields, per_call_ms=intercept, source=source, n_points=n,
                           fit_error=statistics.median(errors))
