"""Fit row columns as numpy grids, from the array fit (``perf.roofline_many.edge_columns``) to the fit store's chunks
(``services.fit_store``) without a Python object per value on the way.

A question at 10,000 models computes 470,000 rows of 17 fields. As lists, every value became a Python object three
times over (``tolist``, gathered per device, then typed and packed by ``services.fit_store._encode``): 2.4 of a cold
count's 7 s. A column here is a (targets x models) grid, target-major as the lists were (target i, model j at
``i * models + j``):

- ``Floats``: float64 values, with a mask of the nulls (a value the fit leaves None);
- ``Coded``: integer codes into a list of values (the labels): a bound's names, a memory fit's None/False/True, a
  value per target (a power mode, a ridge point: ``per_target``) or per model (a name, weight bytes: ``per_model``).
  The labels keep each value's exact type (an int stays an int).

Both give what the list gave (``tolist``: the same values, types and bits) and pack themselves as the store's
``_encode`` packs that list (``packed``: the same kind, read back as the same values), or say they cannot (None: a
NaN of its own, an int among floats), and the store packs ``tolist()``. Columns of other kinds (a plain list: rows
``fit_record`` made one by one) are joined with these as lists (``joined``).

The store's kinds, as ``_encode`` writes them: ``none`` (no bytes), ``f8`` (native float64, NaN for None; extra:
whether any is None), ``b1`` (int8: 1, 0, -1 for True, False, None), ``txt`` (native int32 codes into extra, the
texts).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


class Floats:
    """A grid of floats; ``none`` (a bool grid, or None for no nulls): where the value is None."""

    __slots__ = ("values", "none")

    def __init__(self, values: np.ndarray, none: np.ndarray | None = None) -> None:
        self.values = values if values.ndim == 2 else values.reshape(1, -1)
        self.none = None if none is None or not none.any() else np.broadcast_to(none, self.values.shape)

    def __len__(self) -> int:
        return self.values.size

    def __iter__(self):
        return iter(self.tolist())

    def tolist(self) -> list:
        out = self.values.ravel().tolist()
        if self.none is not None:
            out = [None if gone else v for v, gone in zip(out, self.none.ravel().tolist())]
        return out

    def targets(self, a: int, b: int) -> "Floats":
        return Floats(self.values[a:b], None if self.none is None else self.none[a:b])

    def model(self, j: int) -> "Floats":
        return Floats(self.values[:, j:j + 1], None if self.none is None else self.none[:, j:j + 1])

    def flat(self) -> tuple[np.ndarray, np.ndarray | None]:
        return self.values.ravel(), None if self.none is None else self.none.ravel()

    def packed(self) -> tuple[list, bytes] | None:
        """The store's [kind, extra] and bytes of ``tolist()``; None for a NaN of its own (the store keeps it
        exactly, as ``py``)."""
        values, none = self.flat()
        if none is None:
            if np.isnan(values).any():
                return None
            return ["f8", False], values.astype("=f8", copy=False).tobytes()
        if none.all():
            return ["none", None], b""
        if np.isnan(values[~none]).any():
            return None
        return ["f8", True], np.where(none, math.nan, values).astype("=f8", copy=False).tobytes()


class Coded:
    """A grid of codes into ``labels`` (any values, each kept as it is)."""

    __slots__ = ("codes", "labels")

    def __init__(self, codes: np.ndarray, labels: Sequence) -> None:
        self.codes = codes if codes.ndim == 2 else codes.reshape(1, -1)
        self.labels = list(labels)

    def __len__(self) -> int:
        return self.codes.size

    def __iter__(self):
        return iter(self.tolist())

    def tolist(self) -> list:
        table = np.empty(len(self.labels), dtype=object)
        table[:] = self.labels
        return table[self.codes.ravel()].tolist()

    def targets(self, a: int, b: int) -> "Coded":
        return Coded(self.codes[a:b], self.labels)

    def model(self, j: int) -> "Coded":
        return Coded(self.codes[:, j:j + 1], self.labels)

    def paired(self, other) -> tuple[list[int], list[tuple]] | None:
        """Each row's (this value, ``other``'s value) as a code into a list of the distinct pairs: what the store
        reads of a row's power mode and precision, without a tuple per row. None when ``other`` is no ``Coded``."""
        if not isinstance(other, Coded):
            return None
        width = len(other.labels)
        joint = self.codes.ravel().astype(np.int64) * width + other.codes.ravel()
        distinct, codes = np.unique(joint, return_inverse=True)
        return codes.ravel().tolist(), [(self.labels[j // width], other.labels[j % width]) for j in distinct.tolist()]

    def packed(self) -> tuple[list, bytes] | None:
        """The store's [kind, extra] and bytes of ``tolist()``, made from the labels: a column is of one kind when
        the labels its rows use are; None for any other (an int, a NaN: the store packs the list)."""
        used = np.flatnonzero(np.bincount(self.codes.ravel(), minlength=len(self.labels)))
        labels = [self.labels[i] for i in used.tolist()]
        kinds = set(map(type, labels))
        if kinds <= {type(None)}:
            return ["none", None], b""
        if kinds <= {float, type(None)} and not any(v is not None and math.isnan(v) for v in labels):
            table = np.array([math.nan if not isinstance(v, float) else v for v in self.labels])
            return ["f8", type(None) in kinds], table[self.codes.ravel()].astype("=f8", copy=False).tobytes()
        if kinds <= {bool, type(None)}:
            table = np.array([-1 if v is None else int(v) if isinstance(v, bool) else 0 for v in self.labels],
                             dtype=np.int8)
            return ["b1", None], table[self.codes.ravel()].tobytes()
        if kinds <= {str, type(None)}:
            texts = list(dict.fromkeys(labels))
            where = {text: i for i, text in enumerate(texts)}
            remap = np.zeros(len(self.labels), dtype=np.int64)  # a label's code -> its text's
            remap[used] = [where[v] for v in labels]
            return ["txt", texts], remap[self.codes.ravel()].astype("=i4").tobytes()
        return None


def per_target(values: Sequence, models: int) -> Coded:
    """Each of a per-target list's values for each of ``models`` models."""
    return Coded(np.repeat(np.arange(len(values)), models).reshape(len(values), models), values)


def per_model(values: Sequence, targets: int) -> Coded:
    """A per-model list's values on each of ``targets`` targets."""
    return Coded(np.tile(np.arange(len(values)), (targets, 1)), values)


FLAGS = (False, True, None)  # a bool-or-None grid's labels: codes 0, 1, 2


def is_grid(column) -> bool:
    return isinstance(column, (Floats, Coded))


def listed(column) -> list:
    """A column's values: a grid's list, a list as it is."""
    return column.tolist() if is_grid(column) else column


def model_of(column, j: int, n: int):
    """The values of the j-th of a block's ``n`` models alone: a grid's column, a list's slice."""
    return column.model(j) if is_grid(column) else column[j::n]


def tiled(column, k: int):
    """A column's values ``k`` times over, one after the other (the same rows under ``k`` copies' names)."""
    if isinstance(column, Floats):
        values, none = column.flat()
        return Floats(np.tile(values, k), None if none is None else np.tile(none, k))
    if isinstance(column, Coded):
        return Coded(np.tile(column.codes.ravel(), k), column.labels)
    return list(column) * k


def joined(parts: list):
    """Columns of one field, one after the other (target-major grids flattened in turn): one grid where every part
    is one of the same class, else a list."""
    if parts and all(isinstance(p, Floats) for p in parts):
        if len(parts) == 1:
            return parts[0]
        values = np.concatenate([p.values.ravel() for p in parts])
        nulls = [p.none for p in parts]
        none = None if all(x is None for x in nulls) else np.concatenate([
            np.zeros(p.values.size, dtype=bool) if x is None else x.ravel() for p, x in zip(parts, nulls)])
        return Floats(values, none)
    if parts and all(isinstance(p, Coded) for p in parts):
        if len(parts) == 1:
            return parts[0]
        labels: list = []
        codes = []
        for p in parts:
            codes.append(p.codes.ravel().astype(np.int64) + len(labels))
            labels += p.labels
        return Coded(np.concatenate(codes), labels)
    out: list = []
    for p in parts:
        out += listed(p)
    return out
