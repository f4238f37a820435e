"""One model's roofline on many targets at once: the numbers of ``roofline.fit_model`` that a graph edge reads
(``ask.graph.FitEdge``), computed with numpy over a (targets x layers) array instead of one Python loop per target.

The same formula and the same floating-point operations in the same order as ``fit_model``, so every number is the
same to the last bit (tests/test_fit_fast_path.py compares them on real models, every device x mode x precision):

- element-wise terms (``tc``, ``tk``, ``tm``, the calibrated per-layer seconds) are the IEEE operations of
  ``layer_times``/``layer_seconds`` on float64, operand for operand;
- every sum over layers is ``numpy.cumsum`` (a running sum, left to right, as Python's ``sum`` and ``+=``), never
  ``numpy.sum`` (pairwise summation, which rounds differently);
- the per-target scalars (weight streaming, memory fit, the model's bound, rounding) are the Python of ``fit_model``.

Targets with a cache level (``Target.cache_bytes``: the calibrated host) are not handled here (``supported``): their
memory term depends on each layer's size, and the caller fits them one at a time with ``fit_model``.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from embodied_tui.perf.roofline import (
    Efficiency,
    LayerWork,
    Target,
    _onchip_fit,
    _round,
    io_bytes_of,
    scaled_bytes,
)

EDGE_FIELDS = ("predicted_latency_ms", "roofline_latency_ms", "bound", "arithmetic_intensity", "ridge_point",
               "power_w", "fits_memory", "fps", "energy_mj", "calibration", "weight_bytes", "activation_bytes")


class LayerArrays:
    """A model's per-layer work (``roofline.model_work``) as numpy columns, made once per precision x fusion."""

    __slots__ = ("flops_pad", "cuda_core", "other", "two_out", "weight_bytes", "bytes", "n_ops")

    def __init__(self, work: Sequence[LayerWork]) -> None:
        self.flops_pad = np.array([w.flops * w.pad for w in work], dtype=float)
        self.cuda_core = np.array([w.cuda_core for w in work], dtype=bool)
        self.other = np.array([w.other_flops for w in work], dtype=float)
        self.two_out = np.array([2.0 * w.out_elems for w in work], dtype=float)
        self.weight_bytes = np.array([w.weight_bytes for w in work], dtype=float)
        self.bytes = np.array([w.bytes for w in work], dtype=float)
        self.n_ops = sum(w.launches for w in work if not w.fused)


def supported(target: Target) -> bool:
    """Whether ``edge_numbers`` computes this target (not one with a cache level: ``fit_model`` does)."""
    return not (target.bandwidth is not None and target.cache_bytes and target.cache_bandwidth)


def _running_total(start: np.ndarray, terms: np.ndarray) -> np.ndarray:
    """``start[t] + terms[t, 0] + terms[t, 1] + ...`` summed left to right, as ``fit_model``'s loops do."""
    return np.cumsum(np.concatenate([start[:, None], terms], axis=1), axis=1)[:, -1]


def _left_sum(terms: np.ndarray) -> np.ndarray:
    """Python's ``sum`` of each row, left to right (an empty row: 0)."""
    if terms.shape[1] == 0:
        return np.zeros(terms.shape[0])
    return np.cumsum(terms, axis=1)[:, -1]


def edge_numbers(record, arrays: LayerArrays, totals: tuple[float, float, float, float], precision: str,
                 targets: Sequence[Target], effs: Sequence[Efficiency]) -> list[dict]:
    """``EDGE_FIELDS`` of ``fit_model(record, ..., target, eff)`` for each (target, eff) pair (all at ``precision``,
    all ``supported``, and the work ``arrays`` made at the fusion each eff's runtime implies). ``totals``:
    ``work_totals`` of that work. The record must have MACs."""
    peak = np.array([t.peak_flops for t in targets], dtype=float)
    other_rate = np.array([t.other_rate for t in targets], dtype=float)
    vector = np.minimum(peak, other_rate)
    eta_c = np.array([e.eta_compute for e in effs], dtype=float)
    eta_m = np.array([e.eta_memory for e in effs], dtype=float)
    k_half = np.array([e.macs_per_output_half for e in effs], dtype=float)

    # layer_times
    denom = np.where(arrays.cuda_core[None, :], vector[:, None], peak[:, None])
    tc = arrays.flops_pad[None, :] / denom + arrays.other[None, :] / other_rate[:, None]
    tk = arrays.two_out[None, :] / peak[:, None]
    has_dram = np.array([t.bandwidth is not None for t in targets], dtype=bool)
    bandwidth = np.array([t.bandwidth if t.bandwidth is not None else 1.0 for t in targets], dtype=float)
    tm = np.where(has_dram[:, None], arrays.bytes[None, :] / bandwidth[:, None], 0.0)

    weight_bytes = scaled_bytes(record, "weight_bytes", precision) or 0.0
    activation = scaled_bytes(record, "activation_bytes", precision)
    io = io_bytes_of(record, precision)
    stream_s: list[float | None] = []
    for t in targets:  # layer_times' streaming term
        excess = 0.0
        if t.bandwidth is None and t.onchip_memory_bytes is not None:
            excess = max(0.0, weight_bytes - t.onchip_memory_bytes)
        stream = excess + ((io or 0.0) if t.host_io else 0.0)
        link = t.host_link_bytes_per_s
        stream_s.append(0.0 if stream == 0 else None if not link else stream / link)

    # layer_seconds, and the sums of fit_model
    c = (tc + k_half[:, None] * tk) / eta_c[:, None]
    m = tm / eta_m[:, None]
    t_roof = np.maximum(c, m)
    compute_bound = c >= m
    overhead = np.array([(e.overhead_ms + arrays.n_ops * e.op_overhead_ms) / 1e3 for e in effs], dtype=float)
    known = np.array([s is not None for s in stream_s], dtype=bool)
    stream = np.array([s if s is not None else 0.0 for s in stream_s], dtype=float)
    pred = _running_total(overhead + stream / eta_m, t_roof)
    pure = _running_total(0.0 + stream, np.maximum(tc + 0.0 * tk, tm))
    pure_compute = _left_sum(tc)
    t_comp = _left_sum(np.where(compute_bound, t_roof, 0.0))
    t_mem = _left_sum(np.where(compute_bound, 0.0, t_roof))

    flops, _other, unfused, _traffic = totals
    intensity = flops / unfused if unfused > 0 else None
    out = []
    for i, (t, e) in enumerate(zip(targets, effs)):
        if t.bandwidth is None:
            fits, _ = _onchip_fit(t, weight_bytes)
        elif t.memory_bytes is None:
            fits = None
        else:
            fits = weight_bytes + (activation or 0.0) <= t.memory_bytes
        if known[i]:
            p, pure_ms = float(pred[i]), float(pure[i]) * 1e3
            t_link = float(stream[i]) / e.eta_memory
        else:
            p, pure_ms, t_link = None, float(pure_compute[i]) * 1e3, None
        parts = {"overhead": float(overhead[i]), "compute": float(t_comp[i]), "memory": float(t_mem[i]),
                 "host-link": math.inf if not known[i] else t_link or 0.0}
        pred_ms = None if p is None else p * 1e3
        out.append({
            "predicted_latency_ms": _round(pred_ms), "roofline_latency_ms": _round(pure_ms),
            "bound": max(parts, key=lambda k: parts[k]), "arithmetic_intensity": _round(intensity),
            "ridge_point": _round(t.ridge_point), "power_w": t.power_w, "fits_memory": fits,
            "fps": None if not pred_ms else _round(1e3 / pred_ms),
            "energy_mj": None if pred_ms is None or t.power_w is None else _round(t.power_w * pred_ms),
            "calibration": e.calibration, "weight_bytes": weight_bytes, "activation_bytes": activation,
        })
    return out
