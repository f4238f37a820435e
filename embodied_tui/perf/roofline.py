"""Roofline arithmetic: a model's per-layer work on one device x power mode x precision -> predicted latency.

Pure functions on plain numbers (no I/O, no catalog, no registry). The formula, per layer ``i``::

    t_i = max(C_i / eta_c, M_i / eta_m)        C_i = (F_i + 2 K N_i) / P  +  O_i / P_vec      M_i = B_i / BW
    t   = t0 + n_ops t_op + sum_i t_i  (+ S / eta_m on devices without DRAM whose weights do not fit on chip, see below)

Conventions (stated once, shown in the UI):
- ``F_i = 2 x macs_i`` run at ``P``, the dense peak of the precision (tensor cores on a GPU, the NPU's MAC array).
- ``O_i = other_flops_i`` (elementwise, normalisation, pooling, softmax) is counted, not folded into bytes: it runs at
  ``P_vec``, the device's fp32 (non-tensor) rate on CPUs, GPUs and SoCs, and at ``P`` on NPUs/TPUs, whose
  activation units sit in the dataflow. Elementwise layers are nearly always memory-bound either way.
- ``B_i`` is the layer's memory traffic at the precision's bytes per element. ``bytes`` (reported) is the unfused sum
  ``(weight_elems + read_elems + write_elems) x bytes_per_element``: every op reading its inputs and weights and
  writing its outputs once. ``fused_bytes`` (weights + model inputs + outputs) is the lower bound a single fused kernel
  would move. What the roofline charges (``traffic_bytes``) depends on the runtime (``fusion``): ``none`` for eager
  torch (the unfused bytes), ``epilogue`` for optimising runtimes (TensorRT, onnxruntime, TFLite, Hailo, Edge TPU),
  where pointwise layers right after a convolution/matmul (activation, bias, batch norm, residual add) are folded into
  it and charged only their extra operands (``layer_work``). Defaults and catalog CPUs/NPUs use ``epilogue``;
  ``tensorrt`` (GPUs and Jetsons: TensorRT, or runtime unset there) is the execution model of ``perf.engine``: kernels
  counted per fused kernel, concat/reshape eliminated, tensor-core padding (``LayerWork.pad``), depthwise layers on
  CUDA cores at the fp32 vector rate, and INT8/FP8/FP4 engines charging only their MAC layers at the low width.
- Bytes per element: fp32/tf32 4, fp16/bf16 2, fp8/int8 1, fp4/int4 0.5 (two per byte).
- Where a cache level is known (``Target.cache_bytes``/``cache_bandwidth``: measured on the host only), activation
  traffic of a layer that fits the cache, and weights when all of the model's weights fit it, move at cache
  bandwidth; everything else at DRAM bandwidth ``BW``.
- Devices without DRAM (Hailo, Coral: ``BW`` is None) keep activations on chip: ``t_i`` is the compute term alone.
  Their weights must fit ``onchip_memory_bytes``; what does not fit streams over the host link each inference,
  ``S = excess weight bytes / host link bytes/s``. A missing bandwidth is never divided by: when the link speed is
  unknown the prediction is None with the reason.
- An accelerator paired with a host (catalog ``host`` set, e.g. a Hailo-8L on a Raspberry Pi 5's PCIe x1) also moves
  every inference's model inputs and outputs over that link (``Target.host_io``): ``S`` gains
  ``(input + output bytes at the precision) / host link bytes/s``, serial with the compute at batch 1 (the frame
  arrives before the first layer, the result leaves after the last).
- Small-kernel terms, 0 unless a calibration with enough measurements fitted them (``Efficiency``): ``t_op`` is the
  fixed cost of launching one operator (``n_ops``: layers not fused into the one before, a recurrent layer once per
  time step; a tiny model pays mostly this), and ``K`` (``macs_per_output_half``) charges each of a MAC layer's
  ``N_i`` output elements as much as ``K`` more MACs: Hockney's n-half, so a depthwise conv (9 MACs per output) runs
  far below peak and a dense 3x3 conv (hundreds per output) near it.
- ``roofline_latency_ms`` is the pure roofline (``eta = 1, t0 = 0``): a lower bound under these byte counts.
  ``predicted_latency_ms`` uses the calibrated efficiencies (``0 < eta <= 1``, ``t0 >= 0``), so it is never below it.
- Bound per layer: ``compute`` or ``memory`` (the larger term), or ``overhead`` where ``t_op`` exceeds both. For the
  model: the largest of ``t0 + n_ops t_op`` (``overhead``),
  the summed time of compute-bound layers (``compute``), of memory-bound layers (``memory``) and of weight streaming
  (``host-link``).
- Energy per inference ``energy_mj = power_w x predicted latency`` (W x ms = mJ), at the power mode's rated power.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from embodied_tui.data.hardware import PRECISIONS as hardware_precisions
from embodied_tui.data.records import LayerCost
from embodied_tui.perf.fit_row import FitRow, LayerFit

# bytes per element at each precision (tf32 is stored as fp32; int4 packs two per byte)
BYTES_PER_ELEMENT: dict[str, float] = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1, "fp4": 0.5,
                                       "int4": 0.5}
PRECISIONS: tuple[str, ...] = hardware_precisions  # the one list, in data/hardware.py
assert set(PRECISIONS) <= set(BYTES_PER_ELEMENT), "every precision needs its bytes per element"
TOP_LAYERS = 5


def bytes_per_element(precision: str) -> float:
    try:
        return BYTES_PER_ELEMENT[precision]
    except KeyError:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}") from None


@dataclass(frozen=True)
class Target:
    """One device x power mode x precision, as plain numbers. Rates in ops/s and bytes/s; None = not stated."""

    hardware: str
    power_mode: str
    precision: str
    device_type: str  # gpu | soc | cpu | npu | tpu
    peak_flops: float  # dense peak at `precision` (FLOP/s, or OP/s for integers)
    vector_flops: float | None = None  # fp32 non-tensor rate for other_flops (CPU/GPU/SoC); None = peak_flops
    bandwidth: float | None = None  # DRAM bytes/s; None: no DRAM (never 0)
    power_w: float | None = None
    memory_bytes: int | None = None
    onchip_memory_bytes: int | None = None
    host_link_bytes_per_s: float | None = None
    host_io: bool = False  # a paired accelerator: inputs and outputs cross the host link every inference
    cache_bytes: int | None = None  # last-level cache, where measured (the host); None: every byte is DRAM traffic
    cache_bandwidth: float | None = None  # bytes/s of that cache

    def __post_init__(self) -> None:
        if not self.peak_flops > 0:
            raise ValueError(f"{self.hardware}/{self.power_mode}: peak at {self.precision} must be > 0")
        if self.bandwidth is not None and not self.bandwidth > 0:
            raise ValueError(f"{self.hardware}/{self.power_mode}: bandwidth must be > 0 or None (no DRAM)")
        bytes_per_element(self.precision)

    @property
    def other_rate(self) -> float:
        if self.device_type in ("npu", "tpu") or self.vector_flops is None:
            return self.peak_flops
        return self.vector_flops

    @property
    def ridge_point(self) -> float | None:
        """FLOP per byte where the roof bends: P / BW (None without DRAM)."""
        return None if self.bandwidth is None else self.peak_flops / self.bandwidth


def target_of(entry, mode, precision: str) -> tuple[Target | None, str | None]:
    """The roofline target of a ``HardwareEntry`` x ``PowerMode`` x precision, or None with the reason (no peak
    stated). The cache level counts where the device states one (``cache_bytes`` and the mode's ``cache_bandwidth_gbps``: the host)."""
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
                  host_io=getattr(entry, "host", None) is not None,
                  cache_bytes=entry.cache_bytes if cache_bw is not None else None,
                  cache_bandwidth=None if cache_bw is None else cache_bw * 1e9), None


@dataclass(frozen=True)
class Efficiency:
    """Calibrated (or default) efficiencies of one device x precision x runtime.

    ``calibration``: ``default`` (documented per device type), ``catalog`` (fitted to published measurements and
    stored in the catalog), ``published`` (the TensorRT engine model fitted to ``data/published``, see
    ``perf.published_fit``), ``measured`` (fitted to this registry's measurements), ``scaled`` (one measurement:
    only a scale factor on the defaults) or ``none`` (pure roofline).

    ``basis``: ``exact`` (calibrated on this device and mode), ``sibling`` (a device of the same family, scaled by
    clocks and bandwidth; ``basis_detail`` names it) or ``defaults``. ``interval_log``: ``(log(low / predicted),
    log(high / predicted))`` from the calibration's residuals (``basis_detail`` states the quantiles); None: no
    interval."""

    eta_compute: float
    eta_memory: float
    overhead_ms: float
    calibration: str
    source: str
    runtime: str | None = None
    fit_error: float | None = None
    n_points: int = 0
    op_overhead_ms: float = 0.0  # t_op: per launched operator
    macs_per_output_half: float = 0.0  # K: MACs each output element of a MAC layer costs on top of its own
    basis: str = "defaults"
    basis_detail: str = ""
    interval_log: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not (0 < self.eta_compute <= 1 and 0 < self.eta_memory <= 1):
            raise ValueError(f"efficiencies must be in (0, 1]: eta_compute={self.eta_compute}, "
                             f"eta_memory={self.eta_memory}")
        if self.overhead_ms < 0 or self.op_overhead_ms < 0 or self.macs_per_output_half < 0:
            raise ValueError(f"overheads must be >= 0: t0={self.overhead_ms} ms, t_op={self.op_overhead_ms} ms, "
                             f"K={self.macs_per_output_half}")


PURE = Efficiency(1.0, 1.0, 0.0, "none", "pure roofline: eta = 1, t0 = 0")

# Defaults per device type, used when a device has no calibration. Each was fitted by hand to the published batch-1
# latencies named in its source (FLOPs = 2 x MACs of the published models); see docs/architecture.md "Roofline".
_JETSON_SOURCE = (
    "default for Jetson-class SoC GPUs (TensorRT, batch 1): 10-40 % of dense peak (docs/hardware.md); a line "
    "through published Orin Nano TensorRT latencies of YOLOv8n/s/m (the0807/YOLOv8-ONNX-TensorRT: "
    "FP16 7.3/11.4/23.6 ms, INT8 5.8/8.2/17.1 ms at 8.7/28.6/78.9 GFLOPs) gives eta_compute 0.28-0.40 and "
    "t0 3-4 ms; trtexec GPU-only times (Idein/aicast_jetson_benchmark, YOLOX-S) give 0.15-0.25 with no t0")
DEFAULT_EFFICIENCY: dict[str, Efficiency] = {
    "soc": Efficiency(0.3, 0.6, 2.0, "default", _JETSON_SOURCE),
    "gpu": Efficiency(0.3, 0.7, 0.5, "default",
                      "default for discrete GPUs (batch 1): the Jetson efficiency (0.3 of dense peak) with a smaller "
                      "launch overhead (0.5 ms); no published fit, calibrate with `measurement add`"),
    "cpu": Efficiency(0.5, 0.7, 0.1, "default",
                      "default for CPUs (onnxruntime/ncnn, batch 1): 50 % of the fp32 vector peak, 70 % of "
                      "stream bandwidth, 0.1 ms per call; rough, calibrate with `embodied-ai calibrate` or "
                      "`measurement add`"),
    "npu": Efficiency(0.4, 0.65, 2.0, "default",
                      "default for Hailo-class NPUs: ResNet-50 (8.2 GOPs) on Hailo-8 (26 TOPS) runs 1330 FPS "
                      "pipelined (eta 0.42) with 2.9 ms latency (t0 ~2 ms), docs/hardware.md; eta_memory applies "
                      "to weights streamed over the host link"),
    "tpu": Efficiency(0.45, 0.65, 1.8, "default",
                      "default for the Coral Edge TPU: a line through coral.ai's published USB 3.0 latencies of "
                      "MobileNet v1 (2.4 ms, 1.14 GOPs) and Inception v1 (3.4 ms, 3.0 GOPs) gives eta 0.46, "
                      "t0 1.8 ms; ResNet-50 (49 ms) is matched when weights beyond 8 MB stream at 65 % of USB 3.0"),
}


def default_efficiency(device_type: str) -> Efficiency:
    return DEFAULT_EFFICIENCY.get(device_type, DEFAULT_EFFICIENCY["gpu"])


# Pointwise ops an optimising runtime (TensorRT, onnxruntime, TFLite/XNNPACK, Hailo, Edge TPU) folds into the
# epilogue of the convolution/matmul before them. Names are ONNX op types and torch module classes, lower-cased.
POINTWISE = frozenset({
    "relu", "relu6", "clip", "sigmoid", "hardsigmoid", "hardswish", "silu", "swish", "gelu", "erf", "tanh",
    "leakyrelu", "prelu", "elu", "selu", "celu", "softplus", "mish", "add", "sub", "mul", "div", "identity",
    "dropout", "batchnormalization", "batchnorm1d", "batchnorm2d", "batchnorm3d", "frozenbatchnorm2d",
})
FUSIONS = ("none", "epilogue", "tensorrt")


def fusion_for(runtime: str | None) -> str:
    """``none`` for eager torch (every op reads and writes memory), ``tensorrt`` for TensorRT engines on a GPU (the
    execution model of ``perf.engine``), ``epilogue`` for the other optimising runtimes."""
    if runtime and runtime.startswith("torch"):
        return "none"
    return "tensorrt" if runtime and "tensorrt" in runtime else "epilogue"


@dataclass(frozen=True)
class LayerWork:
    """One layer's work at a precision: flops (2 x MACs), other_flops, and the bytes it moves.

    ``unfused_bytes`` = (weights + reads + writes) x bytes per element, every op on its own. ``act_bytes`` is the
    activation traffic the prediction charges: the same, unless ``fused`` (see ``layer_work``). ``out_elems``: the
    output elements of a MAC layer (0 for others), for the per-output charge ``K``; ``launches``: the kernels it
    dispatches (time steps of a recurrent layer, else 1), each paying ``t_op`` unless ``fused``; ``cuda_core``: a MAC
    layer a GPU engine runs on its vector units, not its tensor cores (``perf.engine``), at the fp32 vector rate."""

    name: str
    type: str
    flops: float
    other_flops: float
    weight_bytes: float
    act_bytes: float
    unfused_bytes: float
    fused: bool = False
    out_elems: float = 0.0
    launches: int = 1
    cuda_core: bool = False
    pad: float = 1.0  # MACs a tensor core computes per counted MAC (channels padded to its alignment; perf.engine)

    @property
    def bytes(self) -> float:
        return self.weight_bytes + self.act_bytes


def _get(obj, key: str, default=0):
    value = obj.get(key, default) if isinstance(obj, dict) else getattr(obj, key, default)
    return default if value is None else value


def layer_work(layer_costs: Iterable, precision: str, fusion: str = "none") -> list[LayerWork]:
    """LayerCost records (or dicts with the same keys) -> work at ``precision`` (elements x bytes per element).

    ``fusion="epilogue"``: a pointwise layer (``POINTWISE``, no MACs) that directly follows a MAC layer, or a chain of
    such layers after one, reads the chain's output from registers: it is charged only the reads beyond that output
    (a residual's other operand, a squeeze-excitation's large input) and the writes beyond it (an output that grew).
    Its other_flops still count. Layers are taken in the analyser's execution order.

    ``fusion="tensorrt"``: the execution model of a TensorRT engine (``perf.engine.engine_work``): kernels, tensor-core
    padding and CUDA-core layers, and the precision mix of low-precision engines."""
    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}; valid: {', '.join(FUSIONS)}")
    if fusion == "tensorrt":
        from embodied_tui.perf.engine import engine_work

        return engine_work(layer_costs, precision, POINTWISE, bytes_per_element)
    bpe = bytes_per_element(precision)
    out = []
    chain_out = None  # elements the current MAC layer + fused epilogue keeps in registers
    for cost in layer_costs:
        if type(cost) is LayerCost:  # its fields are always there (a count is 0, never None): read directly
            macs, kind, weights = cost.macs, cost.type, cost.weight_elems
            reads, writes, name, other, launches = (cost.read_elems, cost.write_elems, cost.name, cost.other_flops,
                                                    cost.launches)
        else:
            macs, kind = _get(cost, "macs"), str(_get(cost, "type", ""))
            weights, reads, writes = _get(cost, "weight_elems"), _get(cost, "read_elems"), _get(cost, "write_elems")
            name, other, launches = str(_get(cost, "name", "")), _get(cost, "other_flops"), _get(cost, "launches", 1)
        fused = False
        acts = reads + writes
        if macs > 0:
            chain_out = writes
        elif fusion == "epilogue" and chain_out is not None and kind.lower() in POINTWISE:
            fused = True
            acts = max(0, reads - chain_out) + max(0, writes - chain_out)
            chain_out = max(chain_out, writes)
        else:
            chain_out = None
        out.append(LayerWork(name, kind, 2.0 * macs, float(other), weights * bpe, acts * bpe,
                             (weights + reads + writes) * bpe, fused, float(writes) if macs > 0 else 0.0,
                             int(launches or 1)))
    return out


def model_work(record, layer_costs: Sequence | None, precision: str,
               fusion: str = "none") -> tuple[list[LayerWork], list[str]]:
    """Per-layer work of a model; without per-layer costs, one pseudo-layer from the record's totals (with a note)."""
    if layer_costs:
        return layer_work(layer_costs, precision, fusion), []
    macs = _get(record, "macs", None)
    dtype_bytes = _get(record, "dtype_bytes", 4) or 4
    unfused = _get(record, "unfused_bytes", None)
    if unfused is None:
        unfused = (_get(record, "weight_bytes") + (_get(record, "activation_bytes_total", None) or 0))
        note = "no per-layer costs or unfused bytes: the model is one layer moving weights + all activations once"
    else:
        note = "no per-layer costs: the model is treated as one layer with its total MACs and unfused bytes"
    scale = bytes_per_element(precision) / dtype_bytes
    weights = min(unfused, _get(record, "weight_bytes")) * scale
    work = LayerWork("(model)", "model", 2.0 * (macs or 0), float(_get(record, "other_flops", 0)), weights,
                     unfused * scale - weights, unfused * scale)
    return [work], [note]


@dataclass(frozen=True)
class LayerTimes:
    """Per-layer times in seconds at eta = 1: compute (``tc``), memory (``tm``; 0 without DRAM) and the per-output
    charge per unit of ``K`` (``tk = 2 N_i / P``); ``n_ops`` launched operators (layers not fused into the one
    before)."""

    tc: list[float]
    tm: list[float]
    stream_bytes: float  # bytes over the host link each inference: weights that do not fit on chip, a pair's I/O
    stream_s: float | None  # their time at eta = 1 (None: link speed unknown)
    tk: list[float]
    n_ops: int


def layer_times(work: Sequence[LayerWork], target: Target, weight_bytes: float | None = None,
                io_bytes: float | None = None) -> LayerTimes:
    """Times at eta = 1 for each layer on ``target``. ``weight_bytes`` (the model's, at the precision; default the
    sum over layers) decides weight streaming on devices without DRAM and, where the target states a cache, whether
    weights stay in it between inferences. ``io_bytes`` (the model's inputs + outputs at the precision) cross the
    host link each inference on a paired accelerator (``target.host_io``); unknown (None) there, nothing is charged
    for them.

    With a cache level (``cache_bytes``, ``cache_bandwidth``; measured on the host): a layer's activation traffic
    moves at cache bandwidth when it fits the cache, and weights do when the whole model's weights fit it; the
    rest moves at DRAM bandwidth."""
    if weight_bytes is None:
        weight_bytes = sum(w.weight_bytes for w in work)
    peak, other_rate = target.peak_flops, target.other_rate
    vector = min(peak, other_rate)  # MAC layers on CUDA cores (perf.engine)
    tc = [w.flops * w.pad / (vector if w.cuda_core else peak) + w.other_flops / other_rate for w in work]
    extra = {"tk": [2.0 * w.out_elems / peak for w in work],
             "n_ops": sum(w.launches for w in work if not w.fused)}
    if target.bandwidth is not None:
        bw_act = bw_w = target.bandwidth
        cache, cache_bw = target.cache_bytes, target.cache_bandwidth
        if cache and cache_bw:
            bw_w = cache_bw if weight_bytes <= cache else target.bandwidth
            tm = [w.weight_bytes / bw_w + w.act_bytes / (cache_bw if w.act_bytes <= cache else bw_act)
                  for w in work]
        else:
            tm = [w.bytes / target.bandwidth for w in work]
        excess = 0.0
    else:
        tm = [0.0] * len(work)
        excess = 0.0
        if target.onchip_memory_bytes is not None:
            excess = max(0.0, weight_bytes - target.onchip_memory_bytes)
    stream = excess + ((io_bytes or 0.0) if target.host_io else 0.0)
    if stream == 0:
        return LayerTimes(tc, tm, 0.0, 0.0, **extra)
    link = target.host_link_bytes_per_s
    return LayerTimes(tc, tm, stream, None if not link else stream / link, **extra)


def layer_seconds(times: LayerTimes, eff: Efficiency) -> list[tuple[float, float]]:
    """(compute, memory) seconds of each layer under ``eff``: ``(tc + K tk) / eta_c`` and ``tm / eta_m``."""
    k_half = eff.macs_per_output_half
    return [((c + k_half * k) / eff.eta_compute, m / eff.eta_memory) for c, m, k in zip(times.tc, times.tm, times.tk)]


def overhead_seconds(times: LayerTimes, eff: Efficiency) -> float:
    """``t0 + n_ops t_op``: the model's fixed costs in seconds."""
    return (eff.overhead_ms + times.n_ops * eff.op_overhead_ms) / 1e3


def predicted_seconds(times: LayerTimes, eff: Efficiency) -> float | None:
    """``t0 + n_ops t_op + sum max((tc + K tk)/eta_c, tm/eta_m) (+ streaming/eta_m)`` in seconds; None when
    streaming time is unknown."""
    if times.stream_s is None:
        return None
    return _total_seconds(times, eff, [max(c, m) for c, m in layer_seconds(times, eff)])


def _total_seconds(times: LayerTimes, eff: Efficiency, layer_s: Sequence[float]) -> float | None:
    """``predicted_seconds`` given each layer's ``max(compute, memory)`` seconds under ``eff`` (summed in order)."""
    if times.stream_s is None:
        return None
    total = overhead_seconds(times, eff) + times.stream_s / eff.eta_memory
    for t in layer_s:
        total += t
    return total


def work_totals(work: Sequence[LayerWork]) -> tuple[float, float, float, float]:
    """(flops, other_flops, unfused bytes, charged bytes) of a model's work, each summed over its layers in order."""
    return (sum(w.flops for w in work), sum(w.other_flops for w in work), sum(w.unfused_bytes for w in work),
            sum(w.bytes for w in work))


def _round(x: float | None, digits: int = 6) -> float | None:
    if x is None:
        return None
    if digits == 6:  # the same format with a constant spec: 40% faster (a first question rounds 2 million numbers)
        return float(f"{x:.6g}")
    return float(f"{x:.{digits}g}")


def empty_fit(model: str, target_hw: str, mode: str, precision: str, power_w: float | None, macs: int | None,
              reason: str) -> FitRow:
    """A row with no numbers and the reason (model without MACs, device without a peak at the precision)."""
    return FitRow(model=model, hardware=target_hw, power_mode=mode, precision=precision, power_w=power_w,
                  macs=macs, flops=None, other_flops=None, bytes=None, fused_bytes=None, traffic_bytes=None,
                  fusion=None, weight_bytes=None, activation_bytes=None, arithmetic_intensity=None,
                  arithmetic_intensity_fused=None, peak_tflops=None, bandwidth_gbps=None, ridge_point=None,
                  attainable_tflops=None, bound=None, roofline_latency_ms=None, predicted_latency_ms=None,
                  reason=reason)


def scaled_bytes(record, key: str, precision: str) -> float | None:
    """A record's byte field (at its stored dtype) re-computed at ``precision``."""
    value = _get(record, key, None)
    if value is None:
        return None
    return value * bytes_per_element(precision) / (_get(record, "dtype_bytes", 4) or 4)


def io_bytes_of(record, precision: str) -> float | None:
    """A record's model inputs + outputs in bytes at ``precision`` (``fused_bytes`` less ``weight_bytes``): what a
    paired accelerator moves over its host link each inference (``layer_times(io_bytes=...)``); None when unknown."""
    fused = scaled_bytes(record, "fused_bytes", precision)
    if fused is None:
        return None
    return max(0.0, fused - (scaled_bytes(record, "weight_bytes", precision) or 0.0))


def fit_model(record, layer_costs: Sequence | None, target: Target, eff: Efficiency | None = None, *,
              fusion: str | None = None, top: int = TOP_LAYERS, with_layers: bool = False,
              work: tuple[list[LayerWork], list[str]] | None = None) -> FitRow:
    """The roofline of one model (a ModelRecord/Analysis or dict with its keys) on one target. ``fusion`` (default:
    ``fusion_for(eff.runtime)``) decides the activation traffic both the pure roofline and the prediction charge.
    ``top``: how many of the slowest layers ``top_layers`` lists (0: none, and no per-layer rows are made).

    ``work``: ``model_work(record, layer_costs, target.precision, fusion)`` when the caller already has it (one model
    on many targets: it depends on the precision and fusion only); it is read, not changed. A third element, where
    given, is ``work_totals(work[0])``, likewise computed once."""
    eff = eff or default_efficiency(target.device_type)
    fusion = fusion or fusion_for(eff.runtime)
    name = str(_get(record, "name", "") or _get(record, "path", ""))
    macs = _get(record, "macs", None)
    prec = target.precision
    if macs is None:
        why = _get(record, "macs_null_reason", None) or "the analysis could not count its MACs"
        return empty_fit(name, target.hardware, target.power_mode, prec, target.power_w, None,
                         f"no prediction: {name} has no MAC count ({why})")
    totals = work[2] if work is not None and len(work) > 2 else None
    work, notes = model_work(record, layer_costs, prec, fusion) if work is None else (work[0], list(work[1]))
    if not _get(record, "macs_complete", True):
        notes.append("MACs are incomplete (some parts were not counted): the prediction is a lower estimate")
    weight_bytes = scaled_bytes(record, "weight_bytes", prec) or 0.0
    activation = scaled_bytes(record, "activation_bytes", prec)
    fused = scaled_bytes(record, "fused_bytes", prec)
    flops, other, unfused, traffic = totals or work_totals(work)
    times = layer_times(work, target, weight_bytes, io_bytes_of(record, prec))

    # memory capacity
    if target.bandwidth is None:
        fits, memory_note = _onchip_fit(target, weight_bytes)
    elif target.memory_bytes is None:
        fits, memory_note = None, "device memory not stated"
    else:
        need = weight_bytes + (activation or 0.0)
        fits = need <= target.memory_bytes
        memory_note = (f"weights {weight_bytes / 1e6:.1f} MB + peak activations "
                       f"{'unknown' if activation is None else f'{activation / 1e6:.1f} MB'} "
                       f"{'<=' if fits else '>'} {target.memory_bytes / 1e9:.1f} GB")

    pure = predicted_seconds(times, PURE)
    # per-layer bounds (calibrated times); a launched layer also pays t_op
    secs = layer_seconds(times, eff)
    t_roof = [max(c, m) for c, m in secs]
    pred = _total_seconds(times, eff, t_roof)  # predicted_seconds(times, eff), from the layer times just made
    reason = None
    if pred is None:
        reason = (f"weights ({weight_bytes / 1e6:.1f} MB at {prec}) exceed on-chip memory and the host link speed "
                  f"of {target.hardware} is not stated: the time to stream them is unknown")
        pure_ms = sum(times.tc) * 1e3  # compute alone is still a lower bound
    else:
        pure_ms = pure * 1e3

    t_op = eff.op_overhead_ms / 1e3
    t_layer: list[float] = []
    bound_layer: list[str] = []
    if top > 0 or with_layers:  # per-layer rows asked for (the graph's edges ask none: top=0)
        t_layer = [t + (0.0 if w.fused else t_op * w.launches) for t, w in zip(t_roof, work)]
        bound_layer = ["overhead" if not w.fused and t_op * w.launches > max(c, m)
                       else "compute" if c >= m else "memory" for (c, m), w in zip(secs, work)]
    t_comp = sum(t for t, (c, m) in zip(t_roof, secs) if c >= m)
    t_mem = sum(t for t, (c, m) in zip(t_roof, secs) if c < m)
    t_link = None if times.stream_s is None else times.stream_s / eff.eta_memory
    parts = {"overhead": overhead_seconds(times, eff), "compute": t_comp, "memory": t_mem, "host-link": t_link or 0.0}
    if times.stream_s is None:
        parts["host-link"] = math.inf
    bound = max(parts, key=lambda k: parts[k])

    intensity = flops / unfused if unfused > 0 else None
    intensity_fused = flops / fused if fused else None
    if target.bandwidth is not None and intensity is not None:
        attainable = min(target.peak_flops, intensity * target.bandwidth)
    else:
        attainable = target.peak_flops
    order = sorted(range(len(work)), key=lambda i: t_layer[i], reverse=True) if top > 0 else []

    def layer_row(i: int) -> LayerFit:
        w = work[i]
        return LayerFit(name=w.name, type=w.type, flops=w.flops, other_flops=w.other_flops, bytes=w.bytes,
                        unfused_bytes=w.unfused_bytes, fused_into_previous=w.fused,
                        arithmetic_intensity=_round(w.flops / w.bytes) if w.bytes else None,
                        predicted_ms=_round(t_layer[i] * 1e3),
                        roofline_ms=_round(max(times.tc[i], times.tm[i]) * 1e3),
                        share=_round(t_layer[i] / pred, 4) if pred else None, bound=bound_layer[i],
                        launches=w.launches,
                        predicted_tflops=_round(w.flops / t_layer[i] / 1e12) if t_layer[i] > 0 else None)

    pred_ms = None if pred is None else pred * 1e3
    return FitRow(
        model=name, hardware=target.hardware, power_mode=target.power_mode, precision=prec, power_w=target.power_w,
        macs=int(macs), flops=flops, other_flops=other, bytes=unfused, fused_bytes=fused, traffic_bytes=traffic,
        fusion=fusion, weight_bytes=weight_bytes,
        activation_bytes=activation, arithmetic_intensity=_round(intensity),
        arithmetic_intensity_fused=_round(intensity_fused), peak_tflops=_round(target.peak_flops / 1e12),
        bandwidth_gbps=None if target.bandwidth is None else _round(target.bandwidth / 1e9),
        ridge_point=_round(target.ridge_point), attainable_tflops=_round(attainable / 1e12), bound=bound,
        roofline_latency_ms=_round(pure_ms), predicted_latency_ms=_round(pred_ms),
        fps=None if not pred_ms else _round(1e3 / pred_ms),
        energy_mj=None if pred_ms is None or target.power_w is None else _round(target.power_w * pred_ms),
        fits_memory=fits, memory_note=memory_note, calibration=eff.calibration, calibration_source=eff.source,
        runtime=eff.runtime, eta_compute=eff.eta_compute, eta_memory=eff.eta_memory, overhead_ms=eff.overhead_ms,
        op_overhead_ms=eff.op_overhead_ms, macs_per_output_half=eff.macs_per_output_half, n_ops=times.n_ops,
        fit_error=eff.fit_error,
        time_compute_ms=_round(t_comp * 1e3), time_memory_ms=_round(t_mem * 1e3),
        time_host_link_ms=None if t_link is None else _round(t_link * 1e3),
        time_overhead_ms=_round(parts["overhead"] * 1e3),
        top_layers=tuple(layer_row(i) for i in order[:top] if t_layer[i] > 0),
        layers=tuple(layer_row(i) for i in range(len(work))) if with_layers else (),
        reason=reason, notes=tuple(notes),
        interval_low_ms=None if pred_ms is None or eff.interval_log is None
        else _round(pred_ms * math.exp(eff.interval_log[0]), 4),
        interval_high_ms=None if pred_ms is None or eff.interval_log is None
        else _round(pred_ms * math.exp(eff.interval_log[1]), 4),
        basis=eff.basis if eff.calibration != "none" else None, basis_detail=eff.basis_detail)


def _onchip_fit(target: Target, weight_bytes: float) -> tuple[bool | None, str]:
    cap = target.onchip_memory_bytes
    if cap is None:
        return None, "no DRAM and on-chip memory not stated"
    if weight_bytes <= cap:
        return True, f"weights {weight_bytes / 1e6:.1f} MB fit on-chip memory ({cap / 1e6:.0f} MB)"
    link = ("an unstated host link" if target.host_link_bytes_per_s is None
            else f"the host link ({target.host_link_bytes_per_s / 1e9:.2f} GB/s)")
    return False, (f"weights {weight_bytes / 1e6:.1f} MB exceed on-chip memory ({cap / 1e6:.0f} MB): "
                   f"{(weight_bytes - cap) / 1e6:.1f} MB stream over {link} every inference")


def scale_efficiency(eff: Efficiency, scale: float, *, source: str, runtime: str | None = None,
                     fit_error: float | None = None) -> Efficiency:
    """``eff`` with every predicted time multiplied by ``scale`` (etas / scale, t0 and t_op x scale), etas capped at 1
    (K is in MACs, so it scales with eta_compute)."""
    ec = min(1.0, eff.eta_compute / scale)
    em = min(1.0, eff.eta_memory / scale)
    return Efficiency(ec, em, eff.overhead_ms * scale, "scaled", source, runtime=runtime, fit_error=fit_error,
                      n_points=1, op_overhead_ms=eff.op_overhead_ms * scale,
                      macs_per_output_half=eff.macs_per_output_half)
