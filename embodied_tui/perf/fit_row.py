"""The fit row: one model x device x power mode x precision, as ``perf.roofline.fit_model`` computes it and
``services.fit`` completes it (model version, device name and type, stored measurements).

Every face reads a row by attribute. ``to_dict()`` gives the JSON object of `embodied-ai fit --json` (the field order
below is its key order); nothing else turns a row into a dict, except the graph, which copies the fields it needs
into its edges (``ask.graph.FitEdge``). Values are stored as computed, never converted: a field annotated ``float``
may hold an int where the sum it comes from is one, and the JSON shows it so.

A number we could not compute is None (never 0), and ``reason`` says why. The generation fields (``prompt_tokens`` ...
``kv_cache_bytes``, ``GENERATION_FIELDS``) appear in the JSON only on generation rows (``prompt_tokens`` set), as the
records' added keys do.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, NamedTuple

BASIS_MARK = {"exact": "E", "sibling": "S", "defaults": "D"}  # one letter per basis, for narrow tables


class LayerFit(NamedTuple):
    """One layer of a fit row (``FitRow.top_layers``, and ``FitRow.layers`` when asked for): its work at the row's
    precision and its predicted time on the row's target. A named tuple, immutable like the row: a model has
    thousands of them on a full fit with layers, and a tuple is made three times faster than a frozen dataclass."""

    name: str
    type: str
    flops: float  # 2 x MACs
    other_flops: float
    bytes: float  # what the prediction charges (weights + activation traffic after fusion)
    unfused_bytes: float
    fused_into_previous: bool  # an epilogue folded into the MAC layer before it (pays no launch)
    arithmetic_intensity: float | None  # flops / bytes
    predicted_ms: float | None  # calibrated, with the launch cost
    roofline_ms: float | None  # pure roofline
    share: float | None  # of the model's predicted time
    bound: str  # compute | memory | overhead
    launches: int
    predicted_tflops: float | None  # achieved rate of its MAC work at the predicted time: a point under the roof

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


@dataclass(frozen=True, slots=True)
class FitRow:
    """One model x device x power mode x precision: the roofline, the calibrated prediction and where it came from."""

    model: str
    hardware: str  # device id
    power_mode: str
    precision: str
    power_w: float | None
    macs: int | None
    flops: float | None
    other_flops: float | None
    bytes: float | None  # unfused, at the precision
    fused_bytes: float | None  # lower bound, at the precision
    traffic_bytes: float | None  # what the roofline charges: unfused, less epilogues folded into MAC layers (`fusion`)
    fusion: str | None  # "none" (eager torch) | "epilogue" (optimising runtimes; see roofline.layer_work)
    weight_bytes: float | None  # at the precision
    activation_bytes: float | None  # peak live, at the precision
    arithmetic_intensity: float | None  # flops / unfused bytes
    arithmetic_intensity_fused: float | None
    peak_tflops: float | None
    bandwidth_gbps: float | None
    ridge_point: float | None
    attainable_tflops: float | None  # min(P, intensity x BW)
    bound: str | None  # compute | memory | overhead | host-link
    roofline_latency_ms: float | None  # pure roofline: a lower bound
    predicted_latency_ms: float | None  # calibrated roofline
    measured_latency_ms: float | None = None  # median of the stored measurements (services.fit)
    fps: float | None = None
    energy_mj: float | None = None
    fits_memory: bool | None = None
    memory_note: str = ""
    calibration: str = "none"  # none | default | catalog | host | scaled | measured ...
    calibration_source: str = ""
    runtime: str | None = None
    eta_compute: float | None = None
    eta_memory: float | None = None
    overhead_ms: float | None = None  # t0, per call
    op_overhead_ms: float | None = None  # t_op, per launched operator
    macs_per_output_half: float | None = None  # K
    n_ops: int | None = None  # launched operators (layers not fused into the one before)
    fit_error: float | None = None
    time_compute_ms: float | None = None  # summed time of compute-bound layers (calibrated)
    time_memory_ms: float | None = None  # summed time of memory-bound layers (calibrated)
    time_host_link_ms: float | None = None
    time_overhead_ms: float | None = None  # t0 + n_ops x t_op
    top_layers: tuple[LayerFit, ...] = ()  # the slowest layers, slowest first
    layers: tuple[LayerFit, ...] = ()  # every layer, in model order (only when asked for)
    reason: str | None = None  # why a number is missing
    notes: tuple[str, ...] = ()
    # filled in by services.fit
    model_version: int | None = None
    hardware_name: str | None = None
    device_type: str | None = None
    measured_n: int = 0  # stored measurements behind measured_latency_ms
    measured_runtime: str | None = None
    measured_over_predicted: float | None = None
    # how far off the prediction is likely to be, and what it rests on (perf.published_fit, services.fit)
    interval_low_ms: float | None = None  # predicted x exp(low quantile of the calibration's log residuals)
    interval_high_ms: float | None = None  # predicted x exp(high quantile)
    basis: str | None = None  # exact (this device and mode) | sibling (a device of its family) | defaults
    basis_detail: str = ""  # which device, and which quantiles of how many residuals
    # a decoder transformer's generation (services.fit_llm; `fit --prompt-tokens P --new-tokens K`): None otherwise,
    # and then left out of ``to_dict()`` (``GENERATION_FIELDS``), so rows of other fits keep their JSON keys
    prompt_tokens: int | None = None  # P: prompt tokens prefilled from an empty KV cache
    new_tokens: int | None = None  # K: tokens decoded one at a time after the prompt
    prefill_ms: float | None = None  # one pass over the P prompt tokens (calibrated phase roofline)
    decode_ms_per_token: float | None = None  # mean over the K decode passes (context P .. P+K-1)
    kv_cache_bytes: int | None = None  # fp16 K and V of every layer at context P + K

    def interval_text(self, digits: int = 2) -> str:
        """The interval as 'low-high' in ms, ``digits`` significant digits each ('9.8-15'); '—' without one."""
        from embodied_tui import units

        if self.interval_low_ms is None or self.interval_high_ms is None:
            return units.NA
        return (f"{units.significant(self.interval_low_ms, digits, plain=True)}-"
                f"{units.significant(self.interval_high_ms, digits, plain=True)}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of `embodied-ai fit --json`: every field, in order; layers as objects, tuples as lists."""
        generation = self.prompt_tokens is not None  # the generation keys only on generation rows
        row = {name: getattr(self, name) for name in _ROW_FIELDS if generation or name not in GENERATION_FIELDS}
        row["top_layers"] = [layer.to_dict() for layer in self.top_layers]
        row["layers"] = [layer.to_dict() for layer in self.layers]
        row["notes"] = list(self.notes)
        return row


_ROW_FIELDS = tuple(f.name for f in fields(FitRow))
GENERATION_FIELDS = frozenset(("prompt_tokens", "new_tokens", "prefill_ms", "decode_ms_per_token", "kv_cache_bytes"))
