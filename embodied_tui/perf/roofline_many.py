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


class Works:
    """Many models' per-layer work at one precision x fusion as flat numpy columns (those of ``LayerArrays``), so a
    slab of models is laid out for ``edge_columns`` with one gather per column instead of a Python step per model:
    model i's layers are rows ``starts[i]:starts[i] + lengths[i]`` (models may share rows: copies of one content);
    ``n_ops[i]`` is its kernel launches and ``intensity[i]`` the rounded arithmetic intensity ``fit_model`` gives
    it (``_round(flops / unfused)`` of ``work_totals``; None where ``intensity_none[i]``: no unfused bytes);
    ``totals[i]`` its ``work_totals``."""

    __slots__ = ("flops_pad", "cuda_core", "other", "two_out", "bytes", "starts", "lengths", "n_ops", "totals",
                 "intensity", "intensity_none")

    def __init__(self, flat: Sequence[np.ndarray], starts: np.ndarray, lengths: np.ndarray, n_ops: np.ndarray,
                 totals: np.ndarray, intensity: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.flops_pad, self.cuda_core, self.other, self.two_out, self.bytes = flat
        self.starts, self.lengths, self.n_ops, self.totals = starts, lengths, n_ops, totals
        if intensity is None:  # float64 totals of integer counts (perf.layer_columns): the division fit_model does
            flops, unfused = totals[:, 0], totals[:, 2]
            none = ~(unfused > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                intensity = (np.where(none, 0.0, round6(np.where(none, 1.0, flops / np.where(none, 1.0, unfused)))),
                             none)
        self.intensity, self.intensity_none = intensity

    @classmethod
    def of(cls, models: Sequence[tuple[LayerArrays, tuple]]) -> "Works":
        """Models given one by one ((``LayerArrays``, ``work_totals``) each), their columns concatenated; the
        intensity is ``fit_model``'s Python division of the totals as they are (ints or floats)."""
        lengths = np.array([len(a.bytes) for a, _ in models], dtype=np.int64)
        flat = [np.concatenate([getattr(a, name) for a, _ in models]) for name in LayerArrays.__slots__[:-1]]
        intensity = [_round(t[0] / t[2] if t[2] > 0 else None) for _, t in models]
        return cls(flat, np.cumsum(lengths) - lengths, lengths, np.array([a.n_ops for a, _ in models], dtype=np.int64),
                   np.array([t for _, t in models], dtype=float).reshape(len(models), 4),
                   (np.array([0.0 if v is None else v for v in intensity]), np.array([v is None for v in intensity])))

    def _flat(self) -> list[np.ndarray]:
        return [self.flops_pad, self.cuda_core, self.other, self.two_out, self.bytes]

    def select(self, picked: Sequence[int] | np.ndarray) -> "Works":
        """The models ``picked`` (indices, in that order) over the same rows."""
        picked = np.asarray(picked, dtype=np.int64)
        return Works(self._flat(), self.starts[picked], self.lengths[picked], self.n_ops[picked],
                     self.totals[picked], (self.intensity[picked], self.intensity_none[picked]))

    @staticmethod
    def joined(parts: Sequence[tuple["Works", int]]) -> "Works":
        """Models each given as (the ``Works`` holding it, its index there), in that order: over the rows of the one
        ``Works`` they all come from (no copy), else over those of each concatenated."""
        bases = list({id(w): w for w, _ in parts}.values())
        if len(bases) == 1:
            base = bases[0]
            picked = [i for _, i in parts]
            if picked == list(range(len(base.starts))):
                return base
            return base.select(picked)
        offsets, at = {}, 0
        for w in bases:
            offsets[id(w)] = at
            at += len(w.bytes)
        flat = [np.concatenate(columns) for columns in zip(*(w._flat() for w in bases))]
        return Works(flat, np.array([offsets[id(w)] + int(w.starts[i]) for w, i in parts], dtype=np.int64),
                     np.array([w.lengths[i] for w, i in parts], dtype=np.int64),
                     np.array([w.n_ops[i] for w, i in parts], dtype=np.int64),
                     np.array([w.totals[i] for w, i in parts], dtype=float).reshape(len(parts), 4),
                     (np.array([w.intensity[i] for w, i in parts], dtype=float),
                      np.array([w.intensity_none[i] for w, i in parts], dtype=bool)))

    def model(self, i: int) -> tuple[LayerArrays, tuple[float, ...]]:
        """Model i's ``LayerArrays`` and totals (its rows, as views)."""
        rows = slice(int(self.starts[i]), int(self.starts[i] + self.lengths[i]))
        return (LayerArrays(*(column[rows] for column in self._flat()), int(self.n_ops[i])),
                tuple(self.totals[i].tolist()))


class ModelBytes:
    """The byte counts ``fit_model`` reads of each record and scales to a precision (``scaled_bytes``: weights,
    activations, fused bytes), read from the records once for every precision a fit asks."""

    KEYS = ("weight_bytes", "activation_bytes", "fused_bytes")

    def __init__(self, records: Sequence) -> None:
        self.records = records
        raw = {key: [_get(r, key, None) for r in records] for key in self.KEYS}
        per = [_get(r, "dtype_bytes", 4) or 4 for r in records]
        # what numpy cannot do with the same IEEE operations (an int beyond 2**53, a dtype size that is no int):
        # scaled_bytes itself, record by record
        self.exact = all(isinstance(d, int) for d in per) and not any(
            isinstance(v, int) and abs(v) >= 2 ** 53 for values in raw.values() for v in values)
        self.none = {key: np.array([v is None for v in values], dtype=bool) for key, values in raw.items()}
        self.values = {key: np.array([0 if v is None else v for v in values], dtype=float) for key, values in raw.items()}
        self.per = np.array(per, dtype=float) if self.exact else None

    def scaled(self, key: str, precision: str, picked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``scaled_bytes(record, key, precision)`` of the records ``picked`` (indices) as an array (the stored value
        times the bytes per element, divided by the stored dtype's), with a mask of those that are None."""
        if not self.exact:
            return (np.array([scaled_bytes(self.records[i], key, precision) or 0.0 for i in picked], dtype=float),
                    self.none[key][picked])
        return self.values[key][picked] * bytes_per_element(precision) / self.per[picked], self.none[key][picked]


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


def edge_columns(sizes: ModelBytes, works: Works, precision: str, targets: Sequence[Target],
                 effs: Sequence[Efficiency]) -> list[tuple[list[int], dict]]:
    """``EDGE_FIELDS`` of ``fit_model(record, ..., target, eff)`` for each record x each (target, eff) pair, in slabs:
    (the slab's record indices, one (pairs x slab) grid per field, ``perf.grids``: the value of the slab's j-th record
    on pair i at ``i * len(slab) + j``). The records' byte counts come as ``sizes`` and their work at ``precision``
    and the fusion the effs' runtime implies as ``works`` (one model each, in the same order); the pairs are all at
    ``precision`` and ``supported``. Every record must have MACs.

    Computed over (layers x pairs x records) arrays, ``ELEMENTS`` at most at a time: records of similar layer counts
    together (sorted by it, stably), each padded with zero layers at the end (``x + 0.0 == x``: the running sums are
    those of the record alone)."""
    pairs = _Targets(targets, effs)
    lengths = works.lengths.tolist()
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    out = []
    start = 0
    while start < len(order):
        end = start + 1
        while end < len(order) and len(targets) * (end + 1 - start) * lengths[order[end]] <= ELEMENTS:
            end += 1
        some = order[start:end]
        out.append((some, _columns(sizes, works, np.array(some, dtype=np.int64), precision, pairs)))
        start = end
    return out


class _Slab:
    """Where each layer of the models ``picked`` goes in a (width, 1, models) array, layers first (C-contiguous, so
    that every sum over them is ``layer_sum``'s), padded with zeros (False) past each model's own layers."""

    def __init__(self, works: Works, picked: np.ndarray) -> None:
        lengths = works.lengths[picked]
        self.works, self.n = works, len(picked)
        self.width = int(lengths.max())
        first = np.cumsum(lengths) - lengths
        within = np.arange(int(lengths.sum())) - np.repeat(first, lengths)  # each row's layer within its model
        self.src = np.repeat(works.starts[picked], lengths) + within  # its row in the flat columns
        self.dst = within * self.n + np.repeat(np.arange(self.n), lengths)  # its place in the (width, models) array

    def stacked(self, name: str, dtype=float) -> np.ndarray:
        out = np.zeros(self.width * self.n, dtype=dtype)
        out[self.dst] = getattr(self.works, name)[self.src]
        return out.reshape(self.width, 1, self.n)


def _columns(sizes: ModelBytes, works: Works, picked: np.ndarray, precision: str, p: _Targets) -> dict:
    """``edge_columns`` of one slab of records (``picked``: their indices): one (pairs x records) grid per field."""
    slab = _Slab(works, picked)
    peak = p.peak[None]  # (1, pairs, 1) against a (layers, 1, records) array

    # layer_times, (layers x pairs x records)
    denom = np.where(slab.stacked("cuda_core", bool), p.vector[None], peak)
    tc = slab.stacked("flops_pad") / denom + slab.stacked("other") / p.other_rate[None]
    tk = slab.stacked("two_out") / peak
    tm = np.where(p.has_dram[None], slab.stacked("bytes") / p.bandwidth[None], 0.0)

    wb, wb_none = sizes.scaled("weight_bytes", precision, picked)
    wb = np.where(wb_none, 0.0, wb)  # scaled_bytes(...) or 0.0 (a 0.0 stays 0.0)
    act, act_none = sizes.scaled("activation_bytes", precision, picked)
    act = np.where(act_none, 0.0, act)  # 0.0 where None: summed with the weights, and the nulls masked
    fused, fused_none = sizes.scaled("fused_bytes", precision, picked)
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
    n_ops = works.n_ops[picked].astype(float)[None, :]
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
    n, pairs_n = len(picked), len(p.targets)
    has_power = np.array([t.power_w is not None for t in p.targets])[:, None]
    held = wb + act  # fit_model's float sum (activations or 0.0), then compared
    fits = np.full(pred.shape, 2, dtype=np.int8)  # codes into (False, True, None)
    for i, t in enumerate(p.targets):
        if t.bandwidth is None:  # _onchip_fit: the weights against the on-chip memory, None where it is not stated
            if t.onchip_memory_bytes is not None:
                fits[i] = wb <= t.onchip_memory_bytes
        elif t.memory_bytes is not None:
            fits[i] = held <= t.memory_bytes
    every = np.ones((pairs_n, 1), dtype=bool)  # a per-model row on every pair
    with_fps = known & (pred_ms != 0)
    with_energy = known & has_power
    return {
        "predicted_latency_ms": Floats(round6(pred_ms), ~known),
        "roofline_latency_ms": Floats(round6(pure_ms)),
        "bound": Coded(bound, BOUNDS),
        "arithmetic_intensity": Floats(every * works.intensity[picked], every & works.intensity_none[picked]),
        "ridge_point": per_target(p.ridge, n),
        "power_w": per_target([t.power_w for t in p.targets], n),
        "fits_memory": Coded(fits, FLAGS),
        "fps": Floats(round6(np.where(with_fps, fps, 1.0)), ~with_fps),
        "energy_mj": Floats(round6(np.where(with_energy & ~np.isnan(energy), energy, 1.0)), ~with_energy),
        "calibration": per_target([e.calibration for e in p.effs], n),
        "weight_bytes": Floats(every * wb),
        "activation_bytes": Floats(every * act, every & act_none),
    }
