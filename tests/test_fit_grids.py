"""Fit row columns as numpy grids (``perf.grids``) go into the fit store as the same rows put as lists: each value
read back equal, of its type and bits, whatever the grid packs itself as (floats with nulls, a NaN of its own, an
int among floats, bools with nulls, texts with nulls, nulls only, labels a row does not use) or leaves to the store;
and they are joined, tiled and cut per target or per model as the lists were."""
from __future__ import annotations

import hashlib
import math
import struct

import numpy as np

from embodied_tui.ask.graph import ROW_KEYS
from embodied_tui.perf.grids import FLAGS, Coded, Floats, joined, listed, model_of, per_model, per_target, tiled
from embodied_tui.services.fit_store import FitStore


def _same(x, y) -> bool:
    if type(x) is not type(y):
        return False
    if isinstance(x, float):
        return struct.pack("<d", x) == struct.pack("<d", y) or (x != x and y != y)
    return x == y


def _columns(targets: int, models: int, variant: int) -> list:
    """One grid per ROW_KEYS field over (targets x models), each kind the store knows, and odd ones."""
    shape = (targets, models)
    rng = np.random.default_rng(variant)
    floats = rng.lognormal(0.0, 3.0, shape)
    nulls = rng.random(shape) < 0.3
    columns = {
        "model": per_model([f"m{variant}-{j}" for j in range(models)], targets),
        "hardware": per_target(["orin"] * targets, models),
        "precision": per_target([("fp16", "int8")[i % 2] for i in range(targets)], models),
        "power_mode": per_target([f"{i}W" for i in range(targets)], models),
        "measured_latency_ms": Coded(np.zeros(shape, dtype=np.int64), [None]),
        "predicted_latency_ms": Floats(floats, nulls),
        "roofline_latency_ms": Floats(floats / 2),
        "bound": Coded(rng.integers(0, 4, shape).astype(np.int8), ("overhead", "compute", "memory", "host-link")),
        # an int among floats (a catalog's 15 W) and a float NaN of its own: the store keeps both exactly
        "power_w": per_target([15 if i == 0 else 7.5 for i in range(targets)], models),
        "ridge_point": Floats(np.where(nulls, math.nan, floats)) if variant % 2 else per_target(
            [None] * targets, models),
        "fits_memory": Coded(rng.integers(0, 3, shape).astype(np.int8), FLAGS),
        "fps": Floats(floats, np.ones(shape, dtype=bool)),  # every value null
        "energy_mj": Coded(np.ones(shape, dtype=np.int64), [math.nan, 5e-324]),  # an unused NaN label
        "calibration": per_target([None if i == 1 else "x" * (i + 1) for i in range(targets)], models),
        "weight_bytes": Floats(np.tile(rng.random(models), (targets, 1))),
        "activation_bytes": Floats(np.tile(rng.random(models), (targets, 1)), np.zeros(shape, dtype=bool)),
        "arithmetic_intensity": Coded(np.zeros(shape, dtype=np.int64), [True]),
    }
    assert set(columns) == set(ROW_KEYS)
    return [columns[name] for name in ROW_KEYS]


def _keys(targets: int, models: int, variant: int) -> list[str]:
    return [hashlib.sha256(f"{variant}/{j}".encode()).hexdigest() for j in range(models)] * targets


def test_grids_read_back_as_the_same_rows_put_as_lists(tmp_path):
    for variant in (0, 1):
        targets, models = 3, 5
        grids = _columns(targets, models, variant)
        keys = _keys(targets, models, variant)
        as_grids, as_lists = FitStore(tmp_path / f"g{variant}.sqlite"), FitStore(tmp_path / f"l{variant}.sqlite")
        assert as_grids.put_columns("orin", "v1", keys, grids)
        assert as_lists.put_columns("orin", "v1", keys, [listed(column) for column in grids])
        got, want = list(as_grids.rows("orin", "v1")), list(as_lists.rows("orin", "v1"))
        assert len(got) == len(want) == targets * models
        for (k1, r1), (k2, r2) in zip(got, want):
            assert k1 == k2
            assert all(_same(x, y) for x, y in zip(r1, r2)), (r1, r2)
        # the types as put: an int stays an int, a null a null, a NaN a NaN
        row = dict(zip(ROW_KEYS, got[0][1]))
        assert row["power_w"] == 15 and type(row["power_w"]) is int
        assert row["fps"] is None and row["measured_latency_ms"] is None and row["arithmetic_intensity"] is True
        assert row["energy_mj"] == 5e-324
        as_grids.close()
        as_lists.close()
        # packed by the grid but where the store must keep a value exactly (an int among floats, a NaN of its own)
        packed = {name: column.packed() for name, column in zip(ROW_KEYS, grids)}
        assert packed["power_w"] is None and (packed["ridge_point"] is None) == bool(variant % 2)
        assert {name: p[0][0] for name, p in packed.items() if p is not None} == {
            "model": "txt", "hardware": "txt", "precision": "txt", "power_mode": "txt", "bound": "txt",
            "calibration": "txt", "measured_latency_ms": "none", "fps": "none", "predicted_latency_ms": "f8",
            "roofline_latency_ms": "f8", "energy_mj": "f8", "weight_bytes": "f8", "activation_bytes": "f8",
            "fits_memory": "b1", "arithmetic_intensity": "b1", **({} if variant % 2 else {"ridge_point": "none"})}


def test_joined_tiled_and_cut_grids_are_the_lists_joined_tiled_and_cut():
    a, b = _columns(2, 3, 0), _columns(4, 2, 1)
    for x, y in zip(a, b):
        assert all(_same(p, q) for p, q in zip(listed(joined([x, y])), listed(x) + listed(y)))
        both = listed(joined([x, y, listed(y)]))  # a list among grids: joined as lists
        assert len(both) == len(x) + 2 * len(y)
        assert all(_same(p, q) for p, q in zip(listed(tiled(x, 3)), listed(x) * 3))
        for j in range(3):
            assert all(_same(p, q) for p, q in zip(listed(model_of(x, j, 3)), listed(x)[j::3]))
        assert all(_same(p, q) for p, q in zip(listed(x.targets(1, 2)), listed(x)[3:6]))
