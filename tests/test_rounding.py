"""``perf.rounding.round6`` is ``roofline._round`` (``float(f"{x:.6g}")``) to the last bit: on hypothesis' floats
(every magnitude, subnormals, signed zeros, infinities, NaN), on decimal ties (``d.ddddd5 x 10**e``, where the
binary value lies a hair above or below the half), at and beside every power of ten, and on the magnitudes fits
produce. Bits compared, not values: -0.0 and 0.0 differ here."""
from __future__ import annotations

import math
import random
import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from embodied_tui.perf.roofline import _round
from embodied_tui.perf.rounding import round6

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _same(values: list[float]) -> None:
    got = round6(np.array(values, dtype=float)).tolist()
    for x, g in zip(values, got):
        want = _round(x)
        if math.isnan(x):
            assert math.isnan(g), x
        else:
            assert _bits(g) == _bits(want), (x, g, want)


@PROPERTY
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True), min_size=1, max_size=64))
def test_any_floats(values):
    _same(values)


@PROPERTY
@given(st.lists(st.floats(min_value=1e-6, max_value=1e7), min_size=1, max_size=64))
def test_the_magnitudes_fits_produce(values):
    _same(values + [-v for v in values])


def test_decimal_ties_and_their_neighbours():
    rng = random.Random(7)
    values = []
    for _ in range(20_000):
        tie = float(f"{rng.randint(100_000, 999_999)}5e{rng.randint(-30, 30)}")  # seven digits ending in 5
        values += [tie, math.nextafter(tie, 0.0), math.nextafter(tie, math.inf)]
    _same(values)


def test_powers_of_ten_and_their_neighbours():
    values = []
    for e in range(-320, 309):
        p = float(f"1e{e}")
        values += [p, math.nextafter(p, 0.0), math.nextafter(p, math.inf), 9.999995 * p, 9.9999949 * p]
    _same(values)


def test_the_values_the_fallback_takes_and_the_rest():
    """Zeros, infinities, NaN, the smallest subnormal, the largest double and values of more than 22 decimal digits
    either way (outside the exact powers of ten) among ordinary ones: each keeps its place."""
    odd = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308, 1.23456789e-40, 9.87654321e30]
    rng = np.random.default_rng(3)
    ordinary = rng.lognormal(0.0, 4.0, 500).tolist()
    values = ordinary[:250] + odd + ordinary[250:]
    _same(values)
    assert round6(np.array(values)).shape == (len(values),)
