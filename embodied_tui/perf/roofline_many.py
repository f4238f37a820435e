"""Many models' rooflines on many targets at once: the numbers of ``roofline.fit_model`` that a graph edge reads
(``ask.graph.FitEdge``), computed with numpy over a (targets x models x layers) array instead of one Python loop per
model and target (one model on many targets is the same computation with one model). Each model's layers are padded
with zero layers at the end to the longest of its slab: every term of a zero layer is 0.0, and ``x + 0.0 == x``, so
the running sums are the model's own.

The same formula and the same floating-point operations in the same order as ``fit_model``, so every number is the
same to the last bit (tests/test_fit_fast_path.py compares them on real models, every device x mode x precision):

- element-wise terms (``tc``, ``tk``, ``tm``, the calibrated per-layer seconds) are the IEEE operations of
  ``layer_times``/``layer_seconds`` on float64, operand for operand;
- every sum over layers is ``numpy.cumsum`` (a running sum, left to right, as Python's ``sum`` and ``+=``), never
  ``numpy.sum`` (pairwise summation, which rounds differently);
- the per-(model, target) scalars: weight streaming is the same IEEE operations on arrays (``max(0, x)``, one sum,
  one division); the memory fit, the model's bound (the first of the largest part, as ``max(parts, key=)``) and the
  rounding (``_round``) are the Python of ``fit_model``, per edge.

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
    """A model's per-layer work (``roofline.model_work``) as numpy columns, made once per precision x fusion: from its
    ``LayerWork`` list (``of``) or straight from its layer columns (``perf.layer_columns``)."""

    __slots__ = ("flops_pad", "cuda_core", "other", "two_out", "bytes", "n_ops")

    def __init__(self, flops_pad: np.ndarray, cuda_core: np.ndarray, other: np.ndarray, two_out: np.ndarray,
                 traffic: np.ndarray, n_ops: int) -> None:
        self.flops_pad, self.cuda_core, self.other, self.two_out, self.bytes, self.n_ops = (
            flops_pad, cuda_core, other, two_out, traffic, n_ops)

    @classmethod
    def of(cls, work: Sequence[LayerWork]) -> "LayerArrays":
        return cls(np.array([w.flops * w.pad for w in work], dtype=float),
                   np.array([w.cuda_core for w in work], dtype=bool),
                   np.array([w.other_flops for w in work], dtype=float),
                   np.array([2.0 * w.out_elems for w in work], dtype=float),
                   np.array([w.bytes for w in work], dtype=float),
                   sum(w.launches for w in work if not w.fused))


def supported(target: Target) -> bool:
    """Whether ``edge_numbers`` computes this target (not one with a cache level: ``fit_model`` does)."""
    return not (target.bandwidth is not None and target.cache_bytes and target.cache_bandwidth)


def _running_total(start: np.ndarray, terms: np.ndarray) -> np.ndarray:
    """``start[...] + terms[..., 0] + terms[..., 1] + ...`` summed left to right, as ``fit_model``'s loops do."""
    return np.cumsum(np.concatenate([start[..., None], terms], axis=-1), axis=-1)[..., -1]


def _left_sum(terms: np.ndarray) -> np.ndarray:
    """Python's ``sum`` over the last axis, left to right (every row has at least one term)."""
    return np.cumsum(terms, axis=-1)[..., -1]


ELEMENTS = 1 << 19  # targets x models x layers computed at once: each temporary array a few MB


class _Targets:
    """The (target, eff) pairs' numbers as arrays: (T, 1, 1) against a (1, models, layers) array, (T, 1) against a
    (1, models) one."""

    def __init__(self, targets: Sequence[Target], effs: Sequence[Efficiency]) -> None:
        def col(values, dtype=float):
            return np.array(values, dtype=dtype)[:, None]

        self.targets, self.effs = targets, effs
        self.peak = col([t.peak_flops for t in targets])
        self.other_rate = col([t.other_rate for t in targets])
        self.vector = np.minimum(self.peak, self.other_rate)
        self.has_dram = col([t.bandwidth is not None for t in targets], bool)
        self.bandwidth = col([t.bandwidth if t.bandwidth is not None else 1.0 for t in targets])
        self.eta_c = col([e.eta_compute for e in effs])
        self.eta_m = col([e.eta_memory for e in effs])
        self.k_half = col([e.macs_per_output_half for e in effs])
        self.overhead_ms = col([e.overhead_ms for e in effs])
        self.op_ms = col([e.op_overhead_ms for e in effs])
        self.onchip = col([t.onchip_memory_bytes or 0 for t in targets])  # layer_times' streaming term
        self.excess = col([t.bandwidth is None and t.onchip_memory_bytes is not None for t in targets], bool)
        self.host_io = col([t.host_io for t in targets], bool)
        self.link = col([t.host_link_bytes_per_s or 0.0 for t in targets])
        self.ridge = [_round(t.ridge_point) for t in targets]


def edge_numbers(records: Sequence, arrays: Sequence[LayerArrays], totals: Sequence[tuple[float, float, float, float]],
                 precision: str, targets: Sequence[Target], effs: Sequence[Efficiency]) -> list[list[dict]]:
    """``EDGE_FIELDS`` of ``fit_model(record, ..., target, eff)`` for each record x each (target, eff) pair:
    ``out[record][pair]``. Each record comes with its work at ``precision`` and the fusion the effs' runtime implies
    (``arrays``) and ``work_totals`` of that work (``totals``); the pairs are all at ``precision`` and ``supported``.
    Every record must have MACs.

    Computed over (pairs x records x layers) arrays, ``ELEMENTS`` at most at a time: records of similar layer counts
    together (sorted by it), each padded with zero layers at the end (``x + 0.0 == x``: the running sums are those of
    the record alone)."""
    pairs = _Targets(targets, effs)
    order = sorted(range(len(records)), key=lambda i: len(arrays[i].bytes))
    out: list[list[dict]] = [[] for _ in records]
    start = 0
    while start < len(order):
        end = start + 1
        while end < len(order) and len(targets) * (end + 1 - start) * len(arrays[order[end]].bytes) <= ELEMENTS:
            end += 1
        some = order[start:end]
        for i, numbers in zip(some, _numbers([records[i] for i in some], [arrays[i] for i in some],
                                             [totals[i] for i in some], precision, pairs)):
            out[i] = numbers
        start = end
    return out


def _stacked(arrays: Sequence[LayerArrays], name: str, width: int, dtype=float) -> np.ndarray:
    """One column of each record's work, a (1, records, width) array padded with zeros (False)."""
    out = np.zeros((len(arrays), width), dtype=dtype)
    for i, a in enumerate(arrays):
        column = getattr(a, name)
        out[i, :len(column)] = column
    return out[None]


def _numbers(records: Sequence, arrays: Sequence[LayerArrays], totals: Sequence[tuple], precision: str,
             p: _Targets) -> list[list[dict]]:
    width = max(len(a.bytes) for a in arrays)
    peak = p.peak[:, :, None]

    # layer_times
    denom = np.where(_stacked(arrays, "cuda_core", width, bool), p.vector[:, :, None], peak)
    tc = _stacked(arrays, "flops_pad", width) / denom + _stacked(arrays, "other", width) / p.other_rate[:, :, None]
    tk = _stacked(arrays, "two_out", width) / peak
    tm = np.where(p.has_dram[:, :, None], _stacked(arrays, "bytes", width) / p.bandwidth[:, :, None], 0.0)

    weight_bytes = [scaled_bytes(r, "weight_bytes", precision) or 0.0 for r in records]
    activation = [scaled_bytes(r, "activation_bytes", precision) for r in records]
    io = np.array([io_bytes_of(r, precision) or 0.0 for r in records])[None, :]
    excess = np.where(p.excess, np.maximum(0.0, np.array(weight_bytes)[None, :] - p.onchip), 0.0)
    stream = excess + np.where(p.host_io, io, 0.0)
    known = (stream == 0) | (p.link != 0)
    stream_s = np.where(stream == 0, 0.0, stream / np.where(p.link != 0, p.link, 1.0))

    # layer_seconds, and the sums of fit_model
    c = (tc + p.k_half[:, :, None] * tk) / p.eta_c[:, :, None]
    m = tm / p.eta_m[:, :, None]
    t_roof = np.maximum(c, m)
    compute_bound = c >= m
    n_ops = np.array([a.n_ops for a in arrays], dtype=float)[None, :]
    overhead = (p.overhead_ms + n_ops * p.op_ms) / 1e3
    pred = _running_total(overhead + stream_s / p.eta_m, t_roof).tolist()
    pure = _running_total(0.0 + stream_s, np.maximum(tc + 0.0 * tk, tm)).tolist()
    pure_compute = _left_sum(tc).tolist()
    t_comp = _left_sum(np.where(compute_bound, t_roof, 0.0)).tolist()
    t_mem = _left_sum(np.where(compute_bound, 0.0, t_roof)).tolist()
    known, stream_s, overhead = known.tolist(), stream_s.tolist(), overhead.tolist()

    out = []
    for k, r in enumerate(records):
        flops, _other, unfused, _traffic = totals[k]
        intensity = _round(flops / unfused if unfused > 0 else None)
        wb, act = weight_bytes[k], activation[k]
        row = []
        for i, (t, e) in enumerate(zip(p.targets, p.effs)):
            if t.bandwidth is None:
                fits, _ = _onchip_fit(t, wb)
            elif t.memory_bytes is None:
                fits = None
            else:
                fits = wb + (act or 0.0) <= t.memory_bytes
            if known[i][k]:
                pred_ms, pure_ms = pred[i][k] * 1e3, pure[i][k] * 1e3
                link = stream_s[i][k] / e.eta_memory or 0.0
            else:
                pred_ms, pure_ms, link = None, pure_compute[i][k] * 1e3, math.inf
            bound, most = "overhead", overhead[i][k]  # max(parts, key=...): the first of the largest
            if t_comp[i][k] > most:
                bound, most = "compute", t_comp[i][k]
            if t_mem[i][k] > most:
                bound, most = "memory", t_mem[i][k]
            if link > most:
                bound = "host-link"
            row.append({
                "predicted_latency_ms": _round(pred_ms), "roofline_latency_ms": _round(pure_ms), "bound": bound,
                "arithmetic_intensity": intensity, "ridge_point": p.ridge[i], "power_w": t.power_w,
                "fits_memory": fits, "fps": None if not pred_ms else _round(1e3 / pred_ms),
                "energy_mj": None if pred_ms is None or t.power_w is None else _round(t.power_w * pred_ms),
                "calibration": e.calibration, "weight_bytes": wb, "activation_bytes": act,
            })
        out.append(row)
    return out
