"""How a model's MACs grow with a sequence length its file leaves symbolic: ``records.Scaling`` entries, the same way
for every format that carries symbolic dims (ONNX ``dim_param``s: ``analysis/onnx/scaling.py``; a ``.pt2`` program's
symbolic sizes: ``analysis/torch/analyze.py``).

The rule for a sequence-like dim: the file names it with a symbol ("sequence", "seq_len", torch.export's "s0" ...), it
is not a batch (``onnx.shapes.is_batch_like``: "batch", "N", "bsz" ... or an anonymous leading dim), and it is axis 1
of either an integer or bool input of rank 2 ([batch, seq]: token ids, attention masks, positions) or a floating input
of rank 3 whose last dim is a number ([batch, seq, hidden]: embeddings). Every input dim carrying the same symbol
changes with it; every other dim stays at the shape the counts were made for (a user's --input-shape, else the
file's). Image sizes, a spectrogram's frames ([batch, mels, frames]) and batch dims get no entry.

How: the format's own counter counts again at n = 16, 32 and 64; ``macs(n) = const + per_token*n + per_token_sq*n**2``
is solved from those three counts in exact arithmetic and checked against a fourth count: the analysis's own, at the
length it used, when that is not one of the three (no extra count), else a count at n = 128. A symbol gets no entry
when a count is incomplete, a term is not an integer or the check fails (the model is not quadratic in n): never a
guessed polynomial.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction

from embodied_tui.data.records import Scaling

LENGTHS = (16, 32, 64)  # solved from
CHECK = 128  # checked at, when the length the analysis used is one of LENGTHS
_BATCH_RE = re.compile(r"(batch|^n$|^b$|^bs$|^bsz$|^N$|^B$)", re.IGNORECASE)


def is_batch_like(symbol: str | None, axis: int) -> bool:
    """A symbolic dim that names a batch (or an anonymous leading dim)."""
    if not symbol:
        return axis == 0
    return bool(_BATCH_RE.search(symbol)) or (axis == 0 and symbol.startswith("unk__"))


def sequence_dims(names: list[str], symbols: list[list[str | None]], dtypes: list[str]) -> dict[str, str]:
    """Sequence-like symbols (the rule above) -> the first input that carries one. ``dtypes``: "int64", "float32" ..."""
    found: dict[str, str] = {}
    for name, syms, dtype in zip(names, symbols, dtypes):
        if len(syms) < 2 or not syms[1] or syms[1] == "?" or is_batch_like(syms[1], 1):
            continue
        tokens = len(syms) == 2 and dtype.startswith(("int", "uint", "bool"))
        hidden = len(syms) == 3 and syms[2] is None and dtype.startswith(("float", "bfloat"))
        if tokens or hidden:
            found.setdefault(syms[1], name)
    return found


def quadratic(count_at: Callable[[int], int | None], lengths: tuple[int, int, int] = LENGTHS,
              check: tuple[int, int | None] | None = None) -> tuple[int, int, int] | None:
    """(const, per_token, per_token_sq) of the quadratic through ``count_at`` at ``lengths``, in exact arithmetic;
    None when a count is missing, a term is not an integer or the polynomial misses the check: ``check`` = (n, MACs
    counted at n; None to count it), by default ``count_at(CHECK)``."""
    counts = []
    for n in lengths:
        m = count_at(n)
        if m is None:
            return None
        counts.append(m)
    (n1, n2, n3), (m1, m2, m3) = lengths, counts
    s12, s13 = Fraction(m2 - m1, n2 - n1), Fraction(m3 - m1, n3 - n1)
    sq = (s13 - s12) / (n3 - n2)
    lin = s12 - sq * (n1 + n2)
    const = m1 - lin * n1 - sq * n1 * n1
    if any(t.denominator != 1 for t in (sq, lin, const)):
        return None
    n4, m4 = check or (CHECK, None)
    if m4 is None:
        m4 = count_at(n4)
    if m4 is None or const + lin * n4 + sq * n4 * n4 != m4:
        return None
    return int(const), int(lin), int(sq)


def fit_scaling(names: list[str], symbols: list[list[str | None]], dtypes: list[str], shapes: list[list[int]],
                macs: int | None, count_at: Callable[[list[list[int]]], int | None],
                ranges: dict[str, tuple[int, int]] | None = None) -> list[Scaling] | None:
    """One ``Scaling`` per sequence-like symbol of the inputs, or None. ``shapes``/``macs``: the shapes the analysis
    counted at and its MACs (None when incomplete: no entry); ``count_at(shapes)``: the format's MACs at other input
    shapes, None when incomplete. ``ranges``: symbol -> (min, max) the file allows (a ``.pt2``'s range constraints):
    a symbol whose range holds fewer than the lengths needed gets no entry; with max under ``CHECK`` the check is made
    at max."""
    if macs is None:
        return None
    out = []
    for sym, carrier in sequence_dims(names, symbols, dtypes).items():
        used = shapes[names.index(carrier)][1]
        low, high = (ranges or {}).get(sym, (0, CHECK))
        if low > LENGTHS[0] or high <= LENGTHS[-1]:
            continue

        def at(n: int, sym: str = sym) -> int | None:
            return count_at([[n if s == sym else d for s, d in zip(syms, shape)] if len(syms) == len(shape) else
                             list(shape) for syms, shape in zip(symbols, shapes)])

        check = (min(CHECK, high), None) if used in LENGTHS else (used, macs)  # the analysis's own count checks
        terms = quadratic(at, LENGTHS, check)
        if terms is None:
            continue
        const, lin, sq = terms
        out.append(Scaling(dim=sym, input=carrier, used=used, macs_const=const, macs_per_token=lin,
                           macs_per_token_sq=sq, method=f"counted at n = {', '.join(map(str, LENGTHS))}; "
                                                        f"checked at {check[0]}"))
    return out or None
