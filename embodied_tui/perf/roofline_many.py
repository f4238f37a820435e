"""Many models' rooflines on many targets at once: the numbers of ``roofline.fit_model`` that a graph edge reads
(``ask.graph.FitEdge``), computed with numpy over a (layers x targets x models) array instead of one Python loop per
model and target (one model on many targets is the same computation with one model). Each model's layers are padded
with zero layers at the end to the longest of its slab: every term of a zero layer is 0.0, and ``x + 0.0 == x``, so
the running sums are the model's own.

The same formula and the same floating-point operations in the same order as ``fit_model``, so every number is the
same to the last bit (tests/test_fit_fast_path.py compares them on real models, every device x mode x precision):

- element-wise terms (``tc``, ``tk``, ``tm``, the calibrated per-layer seconds) are the IEEE operations of
  ``layer_times``/``layer_seconds`` on float64, operand for operand;
- every sum over layers is ``layer_sum``: ``numpy.add.reduce`` over the layer axis, the first of a C-contiguous
  array, which adds one layer after the other (left to right, as Python's ``sum`` and ``+=``), never ``numpy.sum``
  along the fastest axis (pairwise summation, which rounds differently); 30 times faster than the ``cumsum`` along
  the last axis it replaced;
- the per-(model, target) scalars are the same IEEE operations on (targets x models) arrays: weight streaming
  (``max(0, x)``, one sum, one division), milliseconds (``x * 1e3``), fps (``1e3 / ms``), energy (``W * ms``), the
  model's bound (the first of the largest part, as ``max(parts, key=)``: each part replaces it only where strictly
  larger); the memory fit is the comparison of ``fit_model`` (a float sum against the device's bytes; on an
  accelerator without DRAM, ``_onchip_fit``'s weights against its on-chip bytes); the rounding is ``_round``'s to the
  bit (``perf.rounding.round6``). The values go out as (targets x models) grids, one per field (``perf.grids``:
  ``edge_columns``), never as a dict per edge nor a Python object per value: a question at 10,000 models makes
  470,000 edges.

Targets with a cache level (``Target.cache_bytes``: the calibrated host) are not handled here (``supported``): their
memory term depends on each layer's size, and the caller fits them one at a time with ``fit_model``.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from embodied_tui.perf.grids import FLAGS, Coded, Floats, per_target
from embodied_tui.perf.roofline import (
    Efficiency,
    LayerWork,
    Target,
    _get,
    _round,
    bytes_per_element,
    scaled_bytes,
)
from embodied_tui.perf.rounding import round6

BOUNDS = ("overhead", "compute", "memory", "host-link")  # fit_model's bound, by code here
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
    """Whether ``edge_columns`` computes this target (not one with a cache level: ``fit_model`` does)."""
    return not (target.bandwidth is not None and target.cache_bytes and target.cache_bandwidth)


def layer_sum(terms: np.ndarray) -> np.ndarray:
    """``terms[0] + terms[1] + ...`` summed left to right, as Python's ``sum`` and ``fit_model``'s ``+=`` do, over a
    (layers x ...) array: ``numpy.add.reduce`` over the first axis of a C-contiguous array adds each layer's row in
    turn into the running sums (its pairwise summation is only for a reduction along the fastest axis in memory, which
    is what a single sum, one element per row, would be: there the running sum is ``cumsum``'s). Tested against
    Python's ``sum`` (tests/test_layer_sum.py)."""
    terms = np.ascontiguousarray(terms)
    if terms.ndim < 2 or terms[0].size < 2:
        return np.cumsum(terms, axis=0)[-1]
    return np.add.reduce(terms, axis=0)


def _running_total(start: np.ndarray, terms: np.ndarray, mine: bool = False) -> np.ndarray:
    """``start + terms[0] + terms[1] + ...`` summed left to right (``layer_sum`` with ``start`` added to the first
    layer: IEEE addition commutes exactly). ``mine``: ``terms`` is a temporary the caller no longer needs (changed)."""
    terms = np.array(terms, copy=not mine)
    terms[0] += start
    return layer_sum(terms)


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


def edge_columns(records: Sequence, arrays: Sequence[LayerArrays], totals: Sequence[tuple[float, float, float, float]],
                 precision: str, targets: Sequence[Target], effs: Sequence[Efficiency]) -> list[tuple[list[int], dict]]:
    """``EDGE_FIELDS`` of ``fit_model(record, ..., target, eff)`` for each record x each (target, eff) pair, in slabs:
    (the slab's record indices, one (pairs x slab) grid per field, ``perf.grids``: the value of the slab's j-th record
    on pair i at ``i * len(slab) + j``). Each record comes with its work at ``precision`` and the fusion the effs' runtime implies
    (``arrays``) and ``work_totals`` of that work (``totals``); the pairs are all at ``precision`` and
    ``supported``. Every record must have MACs.

    Computed over (layers x pairs x records) arrays, ``ELEMENTS`` at most at a time: records of similar layer counts
    together (sorted by it), each padded with zero layers at the end (``x + 0.0 == x``: the running sums are those of
    the record alone)."""
    pairs = _Targets(targets, effs)
    order = sorted(range(len(records)), key=lambda i: len(arrays[i].bytes))
    out = []
    start = 0
    while start < len(order):
        end = start + 1
        while end < len(order) and len(targets) * (end + 1 - start) * len(arrays[order[end]].bytes) <= ELEMENTS:
            end += 1
        some = order[start:end]
        out.append((some, _columns([records[i] for i in some], [arrays[i] for i in some], [totals[i] for i in some],
                                   precision, pairs)))
        start = end
    return out


def _scaled(records: Sequence, key: str, precision: str) -> tuple[np.ndarray, np.ndarray]:
    """``scaled_bytes(record, key, precision)`` of each record as an array (the same IEEE operations: the stored
    value times the bytes per element, divided by the stored dtype's), with a mask of those that are None."""
    raw = [_get(r, key, None) for r in records]
    none = np.array([v is None for v in raw])
    per = [_get(r, "dtype_bytes", 4) or 4 for r in records]
    if any(isinstance(v, int) and abs(v) >= 2 ** 53 for v in raw) or not all(isinstance(d, int) for d in per):
        return (np.array([scaled_bytes(r, key, precision) or 0.0 for r in records], dtype=float), none)
    values = np.array([0 if v is None else v for v in raw], dtype=float)
    return values * bytes_per_element(precision) / np.array(per, dtype=float), none


def _stacked(arrays: Sequence[LayerArrays], name: str, width: int, dtype=float) -> np.ndarray:
    """One column of each record's work, a C-contiguous (width, 1, records) array padded with zeros (False): layers
    first, so that every sum over them is ``layer_sum``'s."""
    out = np.zeros((len(arrays), width), dtype=dtype)
    for i, a in enumerate(arrays):
        column = getattr(a, name)
        out[i, :len(column)] = column
    return np.ascontiguousarray(out.T)[:, None, :]


def _columns(records: Sequence, arrays: Sequence[LayerArrays], totals: Sequence[tuple], precision: str,
             p: _Targets) -> dict:
    """``edge_columns`` of one slab of records: one (pairs x records) grid per field."""
    width = max(len(a.bytes) for a in arrays)
    peak = p.peak[None]  # (1, pairs, 1) against a (layers, 1, records) array

    # layer_times, (layers x pairs x records)
    denom = np.where(_stacked(arrays, "cuda_core", width, bool), p.vector[None], peak)
    tc = _stacked(arrays, "flops_pad", width) / denom + _stacked(arrays, "other", width) / p.other_rate[None]
    tk = _stacked(arrays, "two_out", width) / peak
    tm = np.where(p.has_dram[None], _stacked(arrays, "bytes", width) / p.bandwidth[None], 0.0)

    wb, wb_none = _scaled(records, "weight_bytes", precision)
    wb = np.where(wb_none, 0.0, wb)  # scaled_bytes(...) or 0.0 (a 0.0 stays 0.0)
    act, act_none = _scaled(records, "activation_bytes", precision)
    act = np.where(act_none, 0.0, act)  # 0.0 where None: summed with the weights, and the nulls masked
    fused, fused_none = _scaled(records, "fused_bytes", precision)
    io = np.where(fused_none, 0.0, np.maximum(0.0, fused - wb))[None, :]  # io_bytes_of(...) or 0.0
    excess = np.where(p.excess, np.maximum(0.0, wb[None, :] - p.onchip), 0.0)
    stream = excess + np.where(p.host_io, io, 0.0)
    known = (stream == 0) | (p.link != 0)
    stream_s = np.where(stream == 0, 0.0, stream / np.where(p.link != 0, p.link, 1.0))

    # layer_seconds, and the sums of fit_model
    c = (tc + p.k_half[None] * tk) / p.eta_c[None]
    m = tm / p.eta_m[None]
    t_roof = np.maximum(c, m)
    compute_bound = c >= m
    n_ops = np.array([a.n_ops for a in arrays], dtype=float)[None, :]
    overhead = (p.overhead_ms + n_ops * p.op_ms) / 1e3
    pred = _running_total(overhead + stream_s / p.eta_m, t_roof)
    pure = _running_total(0.0 + stream_s, np.maximum(tc + 0.0 * tk, tm), mine=True)
    pure_compute = layer_sum(tc)
    t_comp = layer_sum(np.where(compute_bound, t_roof, 0.0))
    t_mem = layer_sum(np.where(compute_bound, 0.0, t_roof))

    # the per-edge scalars of fit_model, as (targets x records) arrays of the same IEEE operations
    pred_ms = pred * 1e3
    pure_ms = np.where(known, pure * 1e3, pure_compute * 1e3)
    link = np.where(known, stream_s / p.eta_m, math.inf)  # 'x / eta or 0.0' is x / eta for a finite x
    bound = np.zeros(pred.shape, dtype=np.int8)  # codes into BOUNDS; max(parts, key=...): the first of the largest
    most = np.broadcast_to(overhead, pred.shape)
    for code, part in ((1, t_comp), (2, t_mem), (3, link)):
        larger = part > most
        bound[larger] = code
        most = np.where(larger, part, most)
    with np.errstate(divide="ignore", invalid="ignore"):
        fps = 1e3 / pred_ms
        energy = np.array([t.power_w if t.power_w is not None else math.nan for t in p.targets])[:, None] * pred_ms

    # target-major grids (pair i, record j at i * n + j): perf.grids, no Python object per value
    n, pairs_n = len(records), len(p.targets)
    has_power = np.array([t.power_w is not None for t in p.targets])[:, None]
    held = wb + act  # fit_model's float sum (activations or 0.0), then compared
    fits = np.full(pred.shape, 2, dtype=np.int8)  # codes into (False, True, None)
    for i, t in enumerate(p.targets):
        if t.bandwidth is None:  # _onchip_fit: the weights against the on-chip memory, None where it is not stated
            if t.onchip_memory_bytes is not None:
                fits[i] = wb <= t.onchip_memory_bytes
        elif t.memory_bytes is not None:
            fits[i] = held <= t.memory_bytes
    intensity = [_round(flops / unfused if unfused > 0 else None) for flops, _other, unfused, _ in totals]
    every = np.ones((pairs_n, 1), dtype=bool)  # a per-model row on every pair
    with_fps = known & (pred_ms != 0)
    with_energy = known & has_power
    return {
        "predicted_latency_ms": Floats(round6(pred_ms), ~known),
        "roofline_latency_ms": Floats(round6(pure_ms)),
        "bound": Coded(bound, BOUNDS),
        "arithmetic_intensity": Floats(every * np.array([v if v is not None else 0.0 for v in intensity]),
                                       every & np.array([v is None for v in intensity])),
        "ridge_point": per_target(p.ridge, n),
        "power_w": per_target([t.power_w for t in p.targets], n),
        "fits_memory": Coded(fits, FLAGS),
        "fps": Floats(round6(np.where(with_fps, fps, 1.0)), ~with_fps),
        "energy_mj": Floats(round6(np.where(with_energy & ~np.isnan(energy), energy, 1.0)), ~with_energy),
        "calibration": per_target([e.calibration for e in p.effs], n),
        "weight_bytes": Floats(every * wb),
        "activation_bytes": Floats(every * act, every & act_none),
    }
