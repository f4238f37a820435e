"""A model's per-layer costs (``data.records.LayerCost``) as compact numpy columns, and its work at any precision x
fusion from them (``roofline_many.Works``: the ``LayerArrays`` and ``roofline.work_totals`` of many models) with numpy,
the same numbers as ``roofline.layer_work``/``engine.engine_work`` to the last bit.

**Columns** (``LayerColumns.table``: int64, one row per layer, ``WIDTH`` columns): the counts a fit reads (MACs, other
FLOPs, weight/read/write elements, launches), the output channels (``engine.out_channels``; 0 for none: ``engine``
pads only a truthy count) and the fusion chains, which are sequential but independent of the precision, so they are
made once, when the columns are: the activation elements a layer fused as an epilogue moves (``EPI_ACTS``; -1 where it
is not fused) and, for a TensorRT engine, what the layer becomes (``TRT_KIND``: a MAC kernel, an epilogue, eliminated,
a kernel of its own) with the elements an epilogue moves (``TRT_ACTS``). The layer names and types are not kept: the
type matters only through those chains, and the name only in per-layer rows, which ``fit_model`` makes.
``to_bytes``/``from_bytes``: the table as little-endian bytes (``services.layer_store`` persists them).

**Exact.** Every count is an integer and every bytes-per-element a power of two, so while the counts stay below
``EXACT`` (and their sums too: ``encode`` refuses a model otherwise, and the caller fits it from its layer costs as
before) every product and sum of counts is an integer a float holds exactly, in any order: the float64 arithmetic here
gives what Python's int arithmetic then ``float()`` gives there. The tensor-core pad factors are the same IEEE
operations as ``engine._pad`` (``ceil(n / a) * a / n``, channels then depth, multiplied in that order from 1.0).

``FORMAT`` (with a digest of the rules the chains read: ``roofline.POINTWISE``, ``engine.KERNEL_TYPES``,
``engine.POINTWISE_FLOPS``, ``engine.TENSOR_CORE_MIN_DEPTH``) is ``CODE_VERSION``: stored columns of another version
are made again.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from embodied_tui.data.records import LayerCost
from embodied_tui.perf import engine
from embodied_tui.perf.roofline import BYTES_PER_ELEMENT, POINTWISE
from embodied_tui.perf.roofline_many import LayerArrays, Works

FORMAT = "1"
CODE_VERSION = FORMAT + ":" + hashlib.sha256(repr((
    sorted(POINTWISE), engine.KERNEL_TYPES, engine.POINTWISE_FLOPS, engine.TENSOR_CORE_MIN_DEPTH,
    engine.ALIGN_BYTES, sorted(engine.TENSOR_PRECISIONS), sorted(engine.LOW_PRECISIONS))).encode()).hexdigest()[:16]
MACS, OTHER, WEIGHTS, READS, WRITES, LAUNCHES, CHANS, EPI_ACTS, TRT_KIND, TRT_ACTS = range(10)
WIDTH = 10
TRT_MAC, TRT_EPILOGUE, TRT_ELIMINATED, TRT_KERNEL = range(4)
EXACT = 2 ** 48  # counts (and their sums over a model) below this stay exact in float64 after x 2, x 4 and sums


def _counts(cost) -> tuple:
    """(macs, other_flops, weight, read, write elements, launches, type) as ``layer_work`` reads them."""
    if type(cost) is LayerCost:  # its fields are always there (a count is 0, never None)
        return (cost.macs, cost.other_flops, cost.weight_elems, cost.read_elems, cost.write_elems,
                int(cost.launches or 1), cost.type)
    values = tuple(engine._get(cost, key) for key in ("macs", "other_flops", "weight_elems", "read_elems",
                                                        "write_elems"))
    return (*values, int(engine._get(cost, "launches", 1) or 1), str(engine._get(cost, "type", "")))


def encode(layer_costs: Sequence) -> np.ndarray | None:
    """The column table of a model's layer costs (see the module docstring); None for no layers, a count that is not
    an integer or counts too large to stay exact (``EXACT``)."""
    rows = []
    epi_chain = trt_chain = None  # elements the current MAC layer (and its epilogue) keeps in registers
    for cost in layer_costs:
        macs, other, weights, reads, writes, launches, kind = _counts(cost)
        chans = epi = trt_acts = 0
        if macs > 0:  # a MAC layer: both chains start at its output
            chans = engine.out_channels(engine._get(cost, "output_shape", None)) or 0
            epi_chain = trt_chain = writes
            epi, trt = -1, TRT_MAC
        else:
            if epi_chain is not None and kind.lower() in POINTWISE:  # roofline.layer_work(fusion="epilogue")
                epi = max(0, reads - epi_chain) + max(0, writes - epi_chain)
                epi_chain = max(epi_chain, writes)
            else:
                epi, epi_chain = -1, None
            if trt_chain is not None and engine.is_pointwise(cost, POINTWISE):  # engine.engine_work
                trt_acts = max(0, reads - trt_chain) + max(0, writes - trt_chain)
                trt_chain, trt = max(trt_chain, writes), TRT_EPILOGUE
            elif engine.is_eliminated(cost):
                trt = TRT_ELIMINATED
            else:
                trt_chain, trt = None, TRT_KERNEL
        rows.append((macs, other, weights, reads, writes, launches, chans, epi, trt, trt_acts))
    if not rows:
        return None
    table = np.array(rows)
    if table.dtype != np.int64 or np.abs(table[:, :CHANS]).sum(dtype=np.float64) >= EXACT \
            or np.abs(table[:, CHANS]).max() >= EXACT:
        return None  # a count that is not an integer (a float, or one beyond int64), or too large to stay exact
    return table


def to_bytes(table: np.ndarray) -> bytes:
    return table.astype("<i8", copy=False).tobytes()


def from_bytes(blob: bytes) -> np.ndarray | None:
    """The table ``to_bytes`` wrote; None for bytes that cannot be one (a damaged row)."""
    if not isinstance(blob, bytes) or not blob or len(blob) % (8 * WIDTH):
        return None
    table = np.frombuffer(blob, dtype="<i8").reshape(-1, WIDTH)
    kinds = table[:, TRT_KIND]
    if ((kinds < 0) | (kinds > TRT_KERNEL)).any() or (table[:, LAUNCHES] < 1).any():
        return None
    return table


class LayerColumns:
    """One model's column table, and its work at each precision x fusion asked (made once each, kept here as the
    ``Works`` it was made in and its index there)."""

    __slots__ = ("table", "made")

    def __init__(self, table: np.ndarray) -> None:
        self.table = table
        self.made: dict[tuple[str, str], tuple[Works, int]] = {}

    def __len__(self) -> int:
        return len(self.table)

    def work_arrays(self, precision: str, fusion: str) -> tuple[LayerArrays, tuple[float, float, float, float]]:
        """``LayerArrays(model_work(...))`` and ``work_totals`` of it, at precision x fusion."""
        return work_arrays_many([self], precision, fusion).model(0)


def work_arrays_many(models: Sequence[LayerColumns], precision: str, fusion: str) -> Works:
    """``LayerColumns.work_arrays`` of each model, as one ``Works`` (in the order given): those not made yet computed
    together, over their tables one after the other (the per-layer terms do not depend on the neighbouring model;
    the per-model sums are of integers a float holds exactly, ``EXACT``, so any order of summing gives Python's
    left-to-right sums)."""
    key = (precision, fusion)
    todo = list({id(m): m for m in models if key not in m.made}.values())
    if todo:
        table = np.concatenate([m.table for m in todo]) if len(todo) > 1 else todo[0].table
        lengths = np.array([len(m.table) for m in todo], dtype=np.int64)
        starts = np.cumsum(lengths) - lengths
        columns = (_trt if fusion == "tensorrt" else _plain)(table, precision, fusion)
        flops, pad, cuda_core, other, two_out, weight_bytes, act_bytes, unfused, launched = columns
        traffic = weight_bytes + act_bytes
        flops_pad = flops * pad
        totals = np.add.reduceat(np.stack([flops, other, unfused, traffic], axis=1), starts, axis=0)
        n_ops = np.add.reduceat(np.where(launched, table[:, LAUNCHES], 0), starts)
        made = Works([flops_pad, cuda_core, other, two_out, traffic], starts, lengths, n_ops, totals)
        for i, m in enumerate(todo):
            m.made[key] = (made, i)
    return Works.joined([m.made[key] for m in models])


def _plain(table: np.ndarray, precision: str, fusion: str) -> tuple:
    """``roofline.layer_work`` with fusion none or epilogue: per-layer (flops, pad, cuda_core, other, 2 x outputs,
    weight bytes, activation bytes, unfused bytes, launched)."""
    macs, reads, writes = table[:, MACS], table[:, READS], table[:, WRITES]
    bpe = float(BYTES_PER_ELEMENT[precision])
    fused = table[:, EPI_ACTS] >= 0 if fusion == "epilogue" else np.zeros(len(table), dtype=bool)
    acts = np.where(fused, table[:, EPI_ACTS], reads + writes)
    return (2.0 * macs, 1.0, np.zeros(len(table), dtype=bool), table[:, OTHER].astype(float),
            2.0 * np.where(macs > 0, writes, 0).astype(float), table[:, WEIGHTS] * bpe, acts * bpe,
            (table[:, WEIGHTS] + reads + writes) * bpe, ~fused)


def _trt(table: np.ndarray, precision: str, _fusion: str) -> tuple:
    """``engine.engine_work``: kernels, tensor-core padding, CUDA-core layers and the low-precision mix."""
    macs, weights, reads, writes = table[:, MACS], table[:, WEIGHTS], table[:, READS], table[:, WRITES]
    kind, chans = table[:, TRT_KIND], table[:, CHANS]
    low = float(BYTES_PER_ELEMENT[precision])
    io = float(BYTES_PER_ELEMENT[engine.io_precision(precision)])
    align = engine.align_elems(precision, BYTES_PER_ELEMENT[precision])
    mac = kind == TRT_MAC
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(writes != 0, macs / np.where(writes != 0, writes, 1), 0.0)
        cuda_core = mac & ((precision not in engine.TENSOR_PRECISIONS) | (depth < engine.TENSOR_CORE_MIN_DEPTH))
        tensor = mac & ~cuda_core
        pad = np.ones(len(table))
        if tensor.any():
            c = chans.astype(float)
            by_chans = np.where(c > 0, np.ceil(c / align) * align, c) / c
            by_depth = np.where(depth > 0, np.ceil(depth / align) * align, depth) / depth
            pad = np.where(tensor, np.where(chans != 0, by_chans, 1.0) * by_depth, 1.0)
    gone = kind == TRT_ELIMINATED
    per = np.where(kind == TRT_KERNEL, io, low)
    acts = np.where(kind == TRT_EPILOGUE, table[:, TRT_ACTS], reads + writes)
    return (np.where(mac, 2.0 * macs, 0.0), pad, cuda_core, np.where(gone, 0.0, table[:, OTHER].astype(float)),
            2.0 * np.where(tensor, writes, 0).astype(float), np.where(gone, 0.0, weights * per),
            np.where(gone, 0.0, acts * per), (weights + reads + writes) * low, mac | (kind == TRT_KERNEL))
