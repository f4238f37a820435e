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
- the per-(model, target) scalars are the same IEEE operations on (targets x models) arrays: weight streaming
  (``max(0, x)``, one sum, one division), milliseconds (``x * 1e3``), fps (``1e3 / ms``), energy (``W * ms``), the
  model's bound (the first of the largest part, as ``max(parts, key=)``: each part replaces it only where strictly
  larger); the memory fit is the Python of ``fit_model`` (a float sum compared with the device's bytes); the rounding
  is ``_round``'s own format (``'.6g'``), mapped over the values in C. The values go out as lists, one per field
  (``edge_columns``), never as a dict per edge: a question at 10,000 models makes 470,000 edges.

Targets with a cache level (``Target.cache_bytes``: the calibrated host) are not handled here (``supported``): their
memory term depends on each layer's size, and the caller fits them one at a time with ``fit_model``.
"""
from __future__ import annotations

import math
from itertools import chain, repeat
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
    """Whether ``edge_columns`` computes this target (not one with a cache level: ``fit_model`` does)."""
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


def edge_columns(records: Sequence, arrays: Sequence[LayerArrays], totals: Sequence[tuple[float, float, float, float]],
                 precision: str, targets: Sequence[Target], effs: Sequence[Efficiency]) -> list[tuple[list[int], dict]]:
    """``EDGE_FIELDS`` of ``fit_model(record, ..., target, eff)`` for each record x each (target, eff) pair, in slabs:
    (the slab's record indices, one list per field, target-major: the value of the slab's j-th record on pair i at
    ``i * len(slab) + j``). Each record comes with its work at ``precision`` and the fusion the effs' runtime implies
    (``arrays``) and ``work_totals`` of that work (``totals``); the pairs are all at ``precision`` and
    ``supported``. Every record must have MACs.

    Computed over (pairs x records x layers) arrays, ``ELEMENTS`` at most at a time: records of similar layer counts
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


def _rounded(values: list, keep: list[bool] | None = None) -> list:
    """``_round`` of each value (a float), None where ``keep`` says no: the same ``'.6g'`` format, mapped in C."""
    out = list(map(float, map(format, values, repeat(".6g"))))
    if keep is not None:
        out = [v if k else None for v, k in zip(out, keep)]
    return out


def _by_target(values: Sequence, n: int) -> list:
    """Each of a per-target list's values repeated for the ``n`` records (target-major)."""
    return list(chain.from_iterable(repeat(v, n) for v in values))


def _stacked(arrays: Sequence[LayerArrays], name: str, width: int, dtype=float) -> np.ndarray:
    """One column of each record's work, a (1, records, width) array padded with zeros (False)."""
    out = np.zeros((len(arrays), width), dtype=dtype)
    for i, a in enumerate(arrays):
        column = getattr(a, name)
        out[i, :len(column)] = column
    return out[None]


def _columns(records: Sequence, arrays: Sequence[LayerArrays], totals: Sequence[tuple], precision: str,
             p: _Targets) -> dict[str, list]:
    """``edge_columns`` of one slab of records: one target-major list per field (pair i, record j at i * n + j)."""
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
    pred = _running_total(overhead + stream_s / p.eta_m, t_roof)
    pure = _running_total(0.0 + stream_s, np.maximum(tc + 0.0 * tk, tm))
    pure_compute = _left_sum(tc)
    t_comp = _left_sum(np.where(compute_bound, t_roof, 0.0))
    t_mem = _left_sum(np.where(compute_bound, 0.0, t_roof))

    # the per-edge scalars of fit_model, as (targets x records) arrays of the same IEEE operations
    pred_ms = pred * 1e3
    pure_ms = np.where(known, pure * 1e3, pure_compute * 1e3)
    link = np.where(known, stream_s / p.eta_m, math.inf)  # 'x / eta or 0.0' is x / eta for a finite x
    bound = np.zeros(pred.shape, dtype=np.int8)  # max(parts, key=...): the first of the largest
    most = np.broadcast_to(overhead, pred.shape)
    for code, part in ((1, t_comp), (2, t_mem), (3, link)):
        larger = part > most
        bound[larger] = code
        most = np.where(larger, part, most)
    with np.errstate(divide="ignore", invalid="ignore"):
        fps = 1e3 / pred_ms
        energy = np.array([t.power_w if t.power_w is not None else math.nan for t in p.targets])[:, None] * pred_ms

    # target-major flat lists (pair i, record j at i * n + j)
    def flat(a: np.ndarray) -> list:
        return a.ravel().tolist()

    every = bool(known.all())
    known_flat = None if every else flat(known)
    with_fps = flat(known & (pred_ms != 0))
    n = len(records)
    has_power = _by_target([t.power_w is not None for t in p.targets], n)
    fits = []
    for t in p.targets:
        if t.bandwidth is None:
            fits += [_onchip_fit(t, wb)[0] for wb in weight_bytes]
        elif t.memory_bytes is None:
            fits += [None] * n
        else:
            fits += [wb + (act or 0.0) <= t.memory_bytes for wb, act in zip(weight_bytes, activation)]
    intensity = [_round(flops / unfused if unfused > 0 else None) for flops, _other, unfused, _ in totals]
    names = ("overhead", "compute", "memory", "host-link")
    return {
        "predicted_latency_ms": _rounded(flat(pred_ms), known_flat),
        "roofline_latency_ms": _rounded(flat(pure_ms)),
        "bound": [names[b] for b in flat(bound)],
        "arithmetic_intensity": intensity * len(p.targets),
        "ridge_point": _by_target(p.ridge, n),
        "power_w": _by_target([t.power_w for t in p.targets], n),
        "fits_memory": fits,
        "fps": _rounded(flat(np.where(known & (pred_ms != 0), fps, 1.0)), with_fps),
        "energy_mj": _rounded(flat(np.where(known & ~np.isnan(energy), energy, 1.0)),
                              [k and h for k, h in zip(known_flat or repeat(True), has_power)]),
        "calibration": _by_target([e.calibration for e in p.effs], n),
        "weight_bytes": weight_bytes * len(p.targets),
        "activation_bytes": activation * len(p.targets),
    }
