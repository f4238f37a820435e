"""How numbers, shapes and tags read, in the terminal app and the CLI alike. Text only; no arithmetic beyond scaling
for display.

Units: counts use k/M/G/T (1e3 steps); bytes use decimal kB/MB/GB (1e3 steps, like the `_gbps` catalog fields);
times and rates keep the unit of their field name (``_ms``, ``_w``) and three significant digits.
A value we could not compute is shown as "—", never 0.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

NA = "—"
_COUNT_UNITS = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_BYTE_UNITS = ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB"))


def _three_digits(x: float) -> str:
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def count(n: int | float | None) -> str:
    """11689512 -> '11.7M'; 0 -> '0'; None -> '—'."""
    if n is None:
        return NA
    for scale, unit in _COUNT_UNITS:
        if abs(n) >= scale:
            return _three_digits(n / scale) + unit
    return f"{n:g}" if isinstance(n, float) else str(n)


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


def nbytes(n: int | None) -> str:
    """46827520 -> '46.8 MB'."""
    if n is None:
        return NA
    for scale, unit in _BYTE_UNITS:
        if abs(n) >= scale:
            return f"{_three_digits(n / scale)} {unit}"
    return f"{n} B"


def shape(dims: Sequence[int] | None, symbols: Sequence[str | None] | None = None) -> str:
    """[1, 3, 224, 224] -> '1x3x224x224'; a symbolic dim shows its symbol ('batch')."""
    if dims is None:
        return NA
    if not dims:
        return "scalar"
    names = list(symbols or [])
    parts = [names[i] if i < len(names) and names[i] else str(d) for i, d in enumerate(dims)]
    return "x".join(parts)


def shapes(all_dims: Sequence[Sequence[int]], all_symbols: Sequence[Sequence[str | None]] | None = None) -> str:
    """Several inputs or outputs, separated by ', '."""
    if not all_dims:
        return NA
    syms = list(all_symbols or [])
    return ", ".join(shape(d, syms[i] if i < len(syms) else None) for i, d in enumerate(all_dims))


def tags(t: Mapping[str, str]) -> str:
    """{'robot': '', 'site': 'lab'} -> 'robot site=lab'."""
    return " ".join(k if not v else f"{k}={v}" for k, v in sorted(t.items()))


def percent(part: int | None, whole: int | None) -> str:
    """Share of a whole, e.g. a node's MACs of the model's: '6.3%'."""
    if part is None or not whole:
        return NA
    share = 100 * part / whole
    if share == 0:
        return "0%"
    if share < 0.1:
        return "<0.1%"
    return f"{share:.1f}%"


def clip(text: str, width: int) -> str:
    """Cut text to `width` cells with an ellipsis."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def significant(x: float | None, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits: 0.141891 -> '0.142', 2.00253 -> '2.00', 1234.5 -> '1234';
    below 0.001 in short exponent form, 0.0000948 -> '9.48e-5'; None -> '—'."""
    if x is None:
        return NA
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    if abs(x) < 1e-3:
        mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def number(x: float | None) -> str:
    """Up to three significant digits without trailing zeros: 25.0 -> '25', 7.5 -> '7.5', 12.34 -> '12.3'."""
    if x is None:
        return NA
    text = significant(x)
    return text.rstrip("0").rstrip(".") if "." in text and "e" not in text else text


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
    """One value of a query answer as table text: None -> '—', floats to 4 significant digits, integers with
    thousands separators, lists joined."""
    if value is None:
        return NA
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return significant(value, 4)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple, set)):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    return str(value)


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
