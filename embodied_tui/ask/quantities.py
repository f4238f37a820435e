"""Numbers with units in a question: thresholds ('under 30 ms', '30 fps or more', 'between 1 and 5 M params') and
bare quantities ('at 30 fps', '30 ms budget'), converted to the graph's fields and units.

ms/s/us -> ``r.latency_ms``; fps/Hz -> ``r.fps``; W -> ``h.power_w``; mJ/J -> ``r.energy_mj``; k/M/B params ->
``m.params``; MMACs/GMACs -> ``m.macs``; MFLOPs/GFLOPs/TFLOPs -> ``m.flops``; KB/MB/GB/MiB -> ``m.weight_bytes``
(1 MB = 1e6 bytes, 1 MiB = 2^20).
"""
from __future__ import annotations

import re

from embodied_tui.ask.query import Condition
from embodied_tui.ask.text import QuestionText

NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|\.\d+)"
# units that take no multiplier, longest first; value -> (field, factor)
_PLAIN_UNITS: list[tuple[str, str, float]] = [
    (r"milliseconds?|millisecs?|msecs?|ms", "r.latency_ms", 1.0),
    (r"microseconds?|µs|us", "r.latency_ms", 1e-3),
    (r"seconds?|secs?|s", "r.latency_ms", 1e3),
    (r"frames?\s+per\s+second|frames?/s|fps|hz|hertz", "r.fps", 1.0),
    (r"millijoules?|mj", "r.energy_mj", 1.0),
    (r"joules?|j", "r.energy_mj", 1e3),
    (r"watts?|w", "h.power_w", 1.0),
    (r"kilobytes?|megabytes?|gigabytes?|bytes?", "m.weight_bytes", 1.0),
]
_WORD_BYTES = {"kilobyte": 1e3, "megabyte": 1e6, "gigabyte": 1e9}
_MULT = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "mega": 1e6, "million": 1e6, "g": 1e9, "giga": 1e9,
         "b": 1e9, "bn": 1e9, "billion": 1e9, "t": 1e12, "tera": 1e12, "trillion": 1e12,
         "ki": 2.0 ** 10, "mi": 2.0 ** 20, "gi": 2.0 ** 30}
_MULT_RE = r"thousand|million|billion|trillion|mega|giga|tera|mn|bn|ki|mi|gi|k|m|g|b|t"
_MULT_UNITS: list[tuple[str, str]] = [
    (r"param(?:eter)?s?", "m.params"),
    (r"macs?", "m.macs"),
    (r"flops?", "m.flops"),
    (r"b(?:ytes?)?", "m.weight_bytes"),
]
QTY = (rf"(?P<num>{NUM})\s*(?:(?P<unit>{'|'.join(u for u, _, _ in _PLAIN_UNITS)})"
       rf"|(?P<mult>{_MULT_RE})?\s*-?\s*(?P<munit>{'|'.join(u for u, _ in _MULT_UNITS)}))(?![a-z0-9])")

_CMP_WORDS: list[tuple[str, str]] = [
    (r"no more than|not more than|no larger than|no bigger than|no higher than|no longer than|at most|up to|"
     r"at or (?:below|under)|within|maximum of|max(?:imum)?|<=|≤|=<", "<="),
    (r"no less than|not less than|no fewer than|at least|at or (?:above|over)|minimum of|min(?:imum)?|>=|≥|=>",
     ">="),
    (r"less than|lower than|fewer than|smaller than|shorter than|under|below|beneath|sub|<", "<"),
    (r"more than|greater than|higher than|larger than|bigger than|longer than|over|above|exceeding|>", ">"),
    (r"faster than|quicker than|better than", "better"),
    (r"slower than|worse than", "worse"),
    (r"exactly|equal to|==|=", "="),
]
_CMP_RE = "|".join(f"(?P<c{i}>{words})" for i, (words, _) in enumerate(_CMP_WORDS))
_SUFFIX_LE = r"or\s+(?:less|fewer|lower|under|below|smaller|faster|better|so)"
_SUFFIX_GE = r"or\s+(?:more|greater|higher|above|over|larger|bigger)"
_HIGHER_IS_BETTER = {"r.fps", "r.memory_headroom_bytes"}
# fields whose bare quantities are read first: 'at 30 fps' is a rate, '30 M params' needs a comparison
RATES = ("r.latency_ms", "r.energy_mj", "r.fps", "h.power_w")


def number(text: str) -> float:
    return float(text.replace(",", ""))


def clean(value: float) -> float | int:
    value = float(f"{value:.12g}")
    return int(value) if value.is_integer() else value


def quantity(m: re.Match) -> tuple[str, float]:
    """(field, value in the field's unit) of a ``QTY`` match."""
    num = number(m.group("num"))
    if m.group("unit") is not None:
        unit = re.sub(r"\s+", " ", m.group("unit"))
        for pattern, fld, factor in _PLAIN_UNITS:
            if re.fullmatch(pattern, unit):
                if fld == "m.weight_bytes":
                    factor = next((v for k, v in _WORD_BYTES.items() if unit.startswith(k)), 1.0)
                return fld, num * factor
    munit, mult = m.group("munit"), m.group("mult") or ""
    fld = next(f for pattern, f in _MULT_UNITS if re.fullmatch(pattern, munit))
    if fld != "m.weight_bytes" and mult in ("ki", "mi", "gi"):
        mult = mult[0]
    if fld == "m.weight_bytes" and mult in ("b", "bn"):  # "5 bb" is no unit; read as bytes
        mult = ""
    return fld, num * _MULT.get(mult, 1.0)


def _resolve_op(op: str, fld: str) -> str:
    if op == "better":
        return ">" if fld in _HIGHER_IS_BETTER else "<"
    if op == "worse":
        return "<" if fld in _HIGHER_IS_BETTER else ">"
    return op


def _cmp_op(m: re.Match) -> str:
    for i, (_, op) in enumerate(_CMP_WORDS):
        if m.group(f"c{i}") is not None:
            return op
    raise AssertionError("no comparison group matched")


def read_thresholds(st: QuestionText) -> None:
    """Comparisons with a number and a unit: 'under 30 ms', '30 fps or more', 'between 1 and 5 M params'."""
    for m in list(st.finditer(rf"between\s+(?P<lo>{NUM})(?P<lorest>\s*[a-z]+(?:\s+[a-z]+)?)?\s+and\s+{QTY}")):
        fld, hi = quantity(m)
        own = re.fullmatch(QTY, m.group("lo") + (m.group("lorest") or ""))
        if own is None or quantity(own)[0] != fld:  # '50 and 200k params': the unit of the upper bound
            own = re.fullmatch(QTY, f"{m.group('lo')} {m.group('mult') or ''}{m.group('unit') or m.group('munit')}")
        lo = quantity(own)[1] if own else number(m.group("lo"))
        phrase = st.take(m.start(), m.end())
        st.add(Condition(field=fld, op=">=", value=clean(lo)), phrase)
        st.add(Condition(field=fld, op="<=", value=clean(hi)), phrase)
    for m in list(st.finditer(rf"(?:{_CMP_RE})\s*(?:(?:a|an|the)\s+)?{QTY}")):
        fld, value = quantity(m)
        op = _resolve_op(_cmp_op(m), fld)
        st.add(Condition(field=fld, op=op, value=clean(value)), st.take(m.start(), m.end()))
    for m in list(st.finditer(rf"{QTY}\s*(?:(?P<le>{_SUFFIX_LE})|(?P<ge>{_SUFFIX_GE})|(?P<plus>\+))")):
        fld, value = quantity(m)
        op = "<=" if m.group("le") else ">="
        if m.group("le") and fld in _HIGHER_IS_BETTER and re.search(r"faster|better", m.group("le")):
            op = ">="
        st.add(Condition(field=fld, op=op, value=clean(value)), st.take(m.start(), m.end()))


def read_bare_quantities(st: QuestionText, fields: tuple[str, ...]) -> None:
    """Quantities with no comparison: 'at 30 fps' (at least), 'in 30 ms' / '30 ms budget' (at most); a size or count
    with no comparison is not guessed at."""
    for m in list(st.finditer(rf"(?:(?:at|in|with|within|for|of|a|an)\s+)?{QTY}(?:\s+(?:budget|target|limit|"
                              rf"latency|deadline|loop|control\s+loop))?")):
        fld, value = quantity(m)
        if fld not in fields:
            continue
        phrase = st.take(m.start(), m.end())
        if fld in ("r.latency_ms", "r.energy_mj"):
            st.add(Condition(field=fld, op="<=", value=clean(value)), phrase)
            st.notes.append(f"'{phrase}' has no comparison: read as at most {clean(value)}")
        elif fld == "r.fps":
            st.add(Condition(field=fld, op=">=", value=clean(value)), phrase)
            st.notes.append(f"'{phrase}' has no comparison: read as at least {clean(value)} fps")
        elif fld == "h.power_w":
            st.add(Condition(field=fld, op="=", value=clean(value)), phrase)
        else:
            qty = st.raw[m.start("num"):m.end()].strip()
            st.ignored.append(qty)
            st.notes.append(f"'{qty}' has no comparison (under, over, at least ...): ignored")
