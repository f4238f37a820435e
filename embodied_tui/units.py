"""How numbers, shapes, tags and foreign text read, in the terminal app and the CLI alike: the one home of display
formatting. Text only; no arithmetic beyond scaling for display. Every face (the CLI commands, the model card, the
screens) calls these; none formats a number of its own.

One function per kind of value:

- ``count`` abbreviated count (11.7M), ``exact`` count with thousands separators (11,689,512), ``gmacs`` MACs in G;
- ``significant`` a figure to N significant digits, ``number`` the same without trailing zeros (25 W, 7.5 W);
- ``ms`` a latency in milliseconds; ``nbytes`` a byte size (decimal kB/MB/GB, or binary KiB/MiB/GiB for memories);
- ``shape``/``shapes`` tensor shapes; ``tags`` a tag set; ``percent`` a share of a whole; ``yes_no`` a flag;
- ``cell`` one value of arbitrary type as table text (query answers);
- ``safe_text`` any text that came from outside (registry, bundle, model file, device YAML, LLM) made safe to print.

Units: counts use k/M/G/T (1e3 steps); bytes use decimal kB/MB/GB (1e3 steps, like the `_gbps` catalog fields);
times and rates keep the unit of their field name (``_ms``, ``_w``) and three significant digits.
A value we could not compute is shown as "—", never 0.

``plain=True`` (``significant``, ``ms``, ``percent``) asks for the bare rounded decimal figure: never an exponent, a
thousands separator or a "<0.1%" bound, so a reader (the model card's checker) finds the figure again.

Escaping (``safe_text``): C0 controls (ESC, BEL, NUL ...), DEL and C1 controls (CSI U+009B ...), Unicode format
characters (category Cf: bidi embeddings, overrides and isolates U+202A-202E and U+2066-2069, LRM/RLM, zero-width
space, joiners and non-joiners, word joiner, BOM, soft hyphen, tag characters), line and paragraph separators
(U+2028/9) and lone surrogates are replaced by a visible escape as Python writes it (``\\x1b``, ``\\u202e``,
``\\U000e0001``); newline, carriage return and tab read ``\\n``, ``\\r``, ``\\t`` (a multi-line block may keep its
newlines: ``newlines=True``). Joiners are escaped too: a registry name must not look like another one, and an emoji
sequence in a name is worth less than that. Backslashes are not doubled (a Windows path stays readable), so the
escaped form is for reading, not for parsing back. Everything else, other scripts and spaces included, is kept.
"""
from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping, Sequence

NA = "—"
_COUNT_UNITS = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_BYTE_UNITS = ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB"))
_BINARY_UNITS = ((2.0 ** 40, "TiB"), (2.0 ** 30, "GiB"), (2.0 ** 20, "MiB"), (2.0 ** 10, "KiB"))
_GROUP_FROM = 1000  # figures of this size and more read as grouped integers: 1,234 ms


# ------------------------------------------------------------------------------------------------ foreign text
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def unsafe(ch: str) -> bool:
    """Whether ``safe_text`` escapes the character ``ch`` (a control, format or separator character)."""
    return ch in _NAMED or (not ch.isprintable() and unicodedata.category(ch) in _UNSAFE_CATEGORIES)


def _escape(ch: str) -> str:
    """What shows instead of a character ``str.isprintable`` refuses: a visible escape, or the character itself where
    it is harmless (a space other than ' ', a private-use or unassigned code point)."""
    if ch in _NAMED:
        return _NAMED[ch]
    if unicodedata.category(ch) not in _UNSAFE_CATEGORIES:
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def safe_text(text: object, *, newlines: bool = False) -> str:
    """``text`` (anything; ``str()`` of it) with every control and format character replaced by a visible escape
    (see the module's docstring): 'a\\x1b[2Jb' -> 'a\\\\x1b[2Jb', 'x\\ny' -> 'x\\\\ny'. ``newlines=True`` keeps the
    line breaks of a multi-line block (each line escaped). Text that is printable already comes back as is, at the
    cost of one ``str.isprintable`` call."""
    s = text if isinstance(text, str) else str(text)
    if s.isprintable():
        return s
    if newlines:
        return "\n".join(safe_text(line) for line in s.split("\n"))
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in s)


# ------------------------------------------------------------------------------------------------ numbers
def _three_digits(x: float) -> str:
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def count(n: int | float | None) -> str:
    """An abbreviated count: 11689512 -> '11.7M'; 0 -> '0'; None -> '—'."""
    if n is None:
        return NA
    for scale, unit in _COUNT_UNITS:
        if abs(n) >= scale:
            return _three_digits(n / scale) + unit
    return f"{n:g}" if isinstance(n, float) else str(n)


def exact(n: int | float | None, missing: str = NA) -> str:
    """An exact count with thousands separators: 11689512 -> '11,689,512' (a float is rounded to an integer)."""
    if n is None:
        return missing
    return f"{n:,}" if isinstance(n, int) else f"{n:,.0f}"


def quadratic(const: int, linear: int, square: int, var: str = "n") -> str:
    """An exact polynomial in ``var``: (4096, 98304, 256) -> '4,096 + 98,304 n + 256 n^2'; zero terms left out."""
    terms = [(const, ""), (linear, f" {var}"), (square, f" {var}^2")]
    shown = [(c, v) for c, v in terms if c] or [(0, "")]
    text = f"{shown[0][0]:,}{shown[0][1]}"
    for c, v in shown[1:]:
        text += f" {'-' if c < 0 else '+'} {abs(c):,}{v}"
    return text


def count_scale(largest: int | float) -> tuple[float, str]:
    """The unit to plot counts whose largest is `largest` in: (1e6, 'M') for 2.4e6."""
    for scale, unit in _COUNT_UNITS:
        if abs(largest) >= scale:
            return scale, unit
    return 1.0, ""


def gmacs(macs: int | None) -> str:
    """MACs as GMACs with about three significant digits: 1818554368 -> '1.82'."""
    if macs is None:
        return NA
    g = macs / 1e9
    if g == 0:
        return "0"
    if g < 0.001:
        return "<0.001"
    if g < 1:
        return f"{g:.3f}"
    return _three_digits(g)


def significant(x: float | None, digits: int = 3, *, plain: bool = False, missing: str = NA) -> str:
    """``x`` to ``digits`` significant digits: 0.141891 -> '0.142', 2.00253 -> '2.00', 1234.5 -> '1234';
    below 0.001 in short exponent form, 0.0000948 -> '9.48e-5' (``plain``: '0.0000948'); None -> '—'."""
    if x is None:
        return missing
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    if abs(x) < 1e-3 and not plain:
        mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{round(x, decimals):.{decimals}f}"


def number(x: float | None, digits: int = 3) -> str:
    """Up to ``digits`` significant digits without trailing zeros: 25.0 -> '25', 7.5 -> '7.5', 12.34 -> '12.3'."""
    if x is None:
        return NA
    text = significant(x, digits)
    return text.rstrip("0").rstrip(".") if "." in text and "e" not in text else text


def ms(x: float | None, *, plain: bool = False, missing: str = NA) -> str:
    """A latency in milliseconds, three significant digits: 0.0312 -> '0.0312', 1.63e-5 -> '1.63e-5' (at most 7
    characters below 1000 ms), 12345.6 -> '12,346'; ``plain`` never uses an exponent or separators."""
    if x is None:
        return missing
    if plain or not math.isfinite(x) or abs(x) < _GROUP_FROM:
        return significant(x, plain=plain)
    return f"{x:,.0f}"


def nbytes(n: int | float | None, *, binary: bool = False) -> str:
    """A byte size: 46827520 -> '46.8 MB'; ``binary`` for memory capacities, 8 * 2**30 -> '8 GiB' (three significant
    digits, trailing zeros dropped); None -> '—'."""
    if n is None:
        return NA
    if binary:
        for scale, unit in _BINARY_UNITS:
            if abs(n) >= scale:
                return f"{number(n / scale)} {unit}"
        return f"{number(n)} B"
    for scale, unit in _BYTE_UNITS:
        if abs(n) >= scale:
            return f"{_three_digits(n / scale)} {unit}"
    return f"{n} B"


def shape(dims: Sequence[int] | None, symbols: Sequence[str | None] | None = None) -> str:
    """[1, 3, 224, 224] -> '1x3x224x224'; a symbolic dim shows its symbol ('batch', escaped: it comes from the
    model file)."""
    if dims is None:
        return NA
    if not dims:
        return "scalar"
    names = list(symbols or [])
    parts = [safe_text(names[i]) if i < len(names) and names[i] else str(d) for i, d in enumerate(dims)]
    return "x".join(parts)


def shapes(all_dims: Sequence[Sequence[int]], all_symbols: Sequence[Sequence[str | None]] | None = None) -> str:
    """Several inputs or outputs, separated by ', '."""
    if not all_dims:
        return NA
    syms = list(all_symbols or [])
    return ", ".join(shape(d, syms[i] if i < len(syms) else None) for i, d in enumerate(all_dims))


def tags(t: Mapping[str, str]) -> str:
    """{'robot': '', 'site': 'lab'} -> 'robot site=lab' (escaped: tags are registry text)."""
    return safe_text(" ".join(k if not v else f"{k}={v}" for k, v in sorted(t.items())))


def percent(part: float | None, whole: float | None, *, plain: bool = False, missing: str = NA) -> str:
    """Share of a whole to one decimal, e.g. a node's MACs of the model's: '6.3%'; a share below 0.1% reads '<0.1%'
    (``plain``: '0.0%'); no whole -> '—'."""
    if part is None or not whole:
        return missing
    share = 100 * part / whole
    if not plain:
        if share == 0:
            return "0%"
        if 0 < share < 0.1:
            return "<0.1%"
    return f"{share:.1f}%"


def clip(text: str, width: int) -> str:
    """Cut text to `width` cells with an ellipsis."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def yes_no(flag: bool | None) -> str:
    """True -> 'yes', False -> 'no', None (not known) -> '—'."""
    return NA if flag is None else ("yes" if flag else "no")


def decade(exponent: int) -> str:
    """The label of a power-of-ten tick: 0 -> '1', 3 -> '1k', 6 -> '1M', -2 -> '0.01', -4 -> '1e-4'."""
    if exponent >= 0:
        for step, unit in ((12, "T"), (9, "G"), (6, "M"), (3, "k")):
            if exponent >= step:
                return f"1{'0' * (exponent - step)}{unit}"
        return "1" + "0" * exponent
    if exponent >= -3:
        return f"{10.0 ** exponent:.{-exponent}f}"
    return f"1e{exponent}"


def cell(value: object) -> str:
    """One value of a query answer as (escaped) table text: None -> '—', flags yes/no, integers (and whole floats)
    with thousands separators, other floats to 4 significant digits without trailing zeros (2.001, 2.5; 1,000 and
    more as grouped integers), lists joined with ', ', mappings as 'key=value, ...'; text through ``safe_text``."""
    if value is None:
        return NA
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, int):
        return exact(value)
    if isinstance(value, float):
        if math.isfinite(value) and (value.is_integer() or abs(value) >= _GROUP_FROM):
            return exact(value)
        return number(value, 4)
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{safe_text(k)}={cell(v)}" for k, v in value.items())
    return safe_text(value)


def calibration_numbers(c: Mapping | object, *, launches: bool = True) -> str:
    """The efficiencies and overheads of a calibration (a ``FitRow``, a stored ``Calibration`` or its dict), one
    line: "eta_c/eta_m 0.95/0.78, t0 0.003 ms, t_op 1.44 us x 23, K 13, err 7.6%". t_op and K only where fitted
    (non-zero), the launch count only where the row states it (and ``launches``), the fit error only where known."""
    get = c.get if isinstance(c, Mapping) else (lambda key: getattr(c, key, None))
    eta_m = get("eta_memory")
    parts = [f"eta_c/eta_m {number(get('eta_compute'))}/{number(eta_m) if eta_m is not None else NA}",
             f"t0 {number(get('overhead_ms'))} ms"]
    if get("op_overhead_ms"):
        n_ops = get("n_ops") if launches else None
        parts.append(f"t_op {number(get('op_overhead_ms') * 1e3)} us{f' x {n_ops}' if n_ops is not None else ''}")
    if get("macs_per_output_half"):
        parts.append(f"K {number(get('macs_per_output_half'))}")
    if get("fit_error") is not None:
        parts.append(f"err {number(round(get('fit_error') * 100, 1))}%")
    return ", ".join(parts)
