"""``perf.roofline_many.layer_sum`` and ``_running_total`` sum over layers left to right, bit for bit as Python's
``sum`` and ``fit_model``'s ``+=`` do: for every shape a slab can take, a single sum (one target, one model: where
numpy's ``add.reduce`` would sum pairwise) included, and for arrays numpy did not lay out in C order."""
from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from embodied_tui.perf.roofline_many import _running_total, layer_sum

PROPERTY = settings(max_examples=120, deadline=None, derandomize=True, database=None)


def _bits(values) -> list[bytes]:
    return [struct.pack("<d", v) for v in np.asarray(values, dtype=float).ravel().tolist()]


def _python_sums(terms: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
    flat = terms.reshape(terms.shape[0], -1)
    out = []
    for j in range(flat.shape[1]):
        total = 0.0 if start is None else float(start.ravel()[j])
        first = start is None
        for v in flat[:, j].tolist():
            total = v if first else total + v
            first = False
        out.append(total)
    return np.array(out).reshape(terms.shape[1:])


@PROPERTY
@given(st.integers(1, 300), st.integers(1, 5), st.integers(1, 9), st.integers(0, 2 ** 32 - 1))
def test_sums_over_layers_are_pythons_left_to_right(layers, pairs, models, seed):
    rng = np.random.default_rng(seed)
    terms = rng.lognormal(0.0, 12.0, (layers, pairs, models)) * rng.choice([-1.0, 1.0], (layers, pairs, models))
    assert _bits(layer_sum(terms)) == _bits(_python_sums(terms))
    start = rng.lognormal(0.0, 12.0, (pairs, models))
    assert _bits(_running_total(start, terms)) == _bits(_python_sums(terms, start))
    # laid out otherwise (a transposed view): summed the same
    view = np.asfortranarray(terms)
    assert _bits(layer_sum(view)) == _bits(_python_sums(terms))


def test_a_single_sum_of_many_layers():
    """One target and one model: a reduction along the only axis, which numpy sums pairwise."""
    rng = np.random.default_rng(5)
    terms = rng.lognormal(0.0, 12.0, (4096, 1, 1))
    assert _bits(layer_sum(terms)) == _bits(_python_sums(terms))
