"""``roofline._round`` (six significant digits: ``float(f"{x:.6g}")``) over a numpy array at once, the same value to
the last bit.

``'.6g'`` rounds the binary value to its six leading decimal digits ``d`` (correctly, ties to even) and ``float``
reads ``d x 10**(e - 5)`` back as the nearest double. Here: ``e`` from ``log10``, ``p = |x| x 10**(5 - e)`` (one
correctly rounded operation, so ``p`` is the exact scaled value within half an ulp: 1.2e-10 at ``p < 1e6``), ``d =
rint(p)``, and the result ``d / 10**k`` (or ``d x 10**-k``): both operands exact (``d < 2**53``, ``10**k`` for ``k <=
22``), so IEEE division (multiplication) gives the double nearest the exact decimal, as ``float`` does. Where that
reasoning could fail, the element is formatted as ``_round`` does instead: a ``p`` within ``_MARGIN`` of a half
(where ``rint`` of the inexact ``p`` could round the other way), a ``p`` outside ``[1e5, 1e6)`` (``e`` from ``log10`` off by
one near a power of ten; a computed ``p`` inside it is one whose exact value rounds to the same ``d x 10**-k``), ``|k| > 22``, and zeros, infinities and NaNs (kept as they are: ``-0.0`` too).

Why: a question at 10,000 models rounds 1.9 million numbers, 0.9 s through ``format``.
"""
from __future__ import annotations

import numpy as np

_POW10 = 10.0 ** np.arange(23)  # exact in float64
_MARGIN = 1e-6  # far above p's error (half an ulp of 1e6 is 5.8e-11), so rint rounds p as the exact value rounds


def round6(values: np.ndarray) -> np.ndarray:
    """``_round`` of each element of a float64 array (a new array)."""
    a = np.asarray(values, dtype=np.float64)
    mag = np.abs(a)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        finite = np.isfinite(a) & (mag != 0)
        e = np.floor(np.log10(np.where(finite, mag, 1.0))).astype(np.int64)
        k = 5 - e
        scale = _POW10[np.minimum(np.abs(k), 22)]
        up = k >= 0
        p = np.where(up, mag * scale, mag / scale)
        frac = p - np.floor(p)
        d = np.rint(p)
        ok = (finite & (np.abs(k) <= 22) & (p >= 1e5) & (p < 1e6)
              & (np.abs(frac - 0.5) > _MARGIN))
        out = np.copysign(np.where(up, d / scale, d * scale), a)
    out = np.where(ok, out, a)  # zeros, inf and NaN as they are
    for i in np.flatnonzero(finite & ~ok).tolist():  # the few left: as _round does
        out.flat[i] = float(f"{a.flat[i]:.6g}")
    return out
