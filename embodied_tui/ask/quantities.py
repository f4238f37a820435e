"""Numbers with units in a question: thresholds ('under 30 ms', '30 fps or more', 'between 1 and 5 M params') and
bare quantities ('at 30 fps', '30 ms budget'), converted to the graph's fields and units.

ms/s/us -> ``r.latency_ms``; fps/Hz -> ``r.fps``; W -> ``h.power_w``; mJ/J -> ``r.energy_mj``; k/M/B params ->
``m.params``; MMACs/GMACs -> ``m.macs``; MFLOPs/GFLOPs/TFLOPs -> ``m.flops``; KB/MB/GB/MiB -> ``m.weight_bytes``
(1 MB = 1e6 bytes, 1 MiB = 2^20).
"""
from __future__ import annotations

import re

from embodied_tui.ask.query import Condition, Reading
from embodied_tui.ask.text import QuestionText

PER_JOULE = "r.energy_mj"  # the field a rate per watt is read into (inverted: see ``per_joule``)
_PER_JOULE_UNIT = (r"(?:fps|frames?\s+per\s+second|inferences?\s+per\s+second)\s*(?:per|/)\s*(?:watt|w)|"
                   r"(?:frames?|inferences?)\s+per\s+joule")

NUM = r"(?:\d{1,3}(?:,\d{3})+|(?:\d+(?:\.\d+)?|\.\d+)(?:e[+-]?\d{1,2}(?![\d.]))?)"  # '1e6 params' too
# 'a billion MACs', 'one million params', 'less than a millisecond', 'five million weights': a number word, only
# where a multiplier or a unit follows (never 'a' alone)
_WORD_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10, "twenty": 20, "fifty": 50, "hundred": 100, "half a": 0.5}
_NUM_WORD = (r"(?:(?:an?|one|two|three|four|five|six|seven|eight|nine)\s+hundred|half\s+a|an?|one|two|three|four|five|"
             r"six|seven|eight|nine|ten|twenty|fifty|hundred)"
             r"(?=\s+(?:thousand|million|billion|trillion|milliseconds?|microseconds?|seconds?|megabytes?|"
             r"gigabytes?|kilobytes?|megs?|gigs?|watts?|millijoules?|joules?|"
             r"(?:giga|mega|kilo|[gmk])(?:macs?|flops?)|[kmg]b)(?![a-z]))")  # 'half a GMAC', 'a GFLOP', 'half a MB'
AMOUNT = rf"(?:{NUM}|{_NUM_WORD})"
# a number word with nothing after it: the lower bound of a range ('between five and 10 million MACs')
_BARE_WORD = r"(?:one|two|three|four|five|six|seven|eight|nine|ten|twenty|fifty|a\s+hundred|one\s+hundred|half\s+a)"
# units that take no multiplier, longest first; value -> (field, factor)
_PLAIN_UNITS: list[tuple[str, str, float]] = [
    (r"milliseconds?|millisecs?|msecs?|ms", "r.latency_ms", 1.0),
    (r"microseconds?|µs|us", "r.latency_ms", 1e-3),
    (r"seconds?|secs?|s", "r.latency_ms", 1e3),
    # frames per joule = fps per watt = 1000 / (energy per inference in mJ): read as r.energy_mj, inverted
    (_PER_JOULE_UNIT, PER_JOULE, 1.0),
    (r"khz|kilohertz", "r.fps", 1e3),
    (r"(?:frames?|inferences?|images?|predictions?)\s+(?:per|a|/)\s*(?:second|sec|s)|frames?/s|fps|hz|hertz", "r.fps",
     1.0),
    (r"millijoules?|mj", "r.energy_mj", 1.0),
    (r"joules?|j", "r.energy_mj", 1e3),
    (r"watts?|w", "h.power_w", 1.0),
    (r"(?:kilobytes?|megabytes?|gigabytes?|megs?|gigs?|bytes?)(?:\s+of\s+weights?)?", "m.weight_bytes", 1.0),
]
_WORD_BYTES = {"kilobyte": 1e3, "megabyte": 1e6, "gigabyte": 1e9, "meg": 1e6, "gig": 1e9}
_MULT = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "mega": 1e6, "million": 1e6, "g": 1e9, "giga": 1e9,
         "b": 1e9, "bn": 1e9, "billion": 1e9, "t": 1e12, "tera": 1e12, "trillion": 1e12,
         "ki": 2.0 ** 10, "mi": 2.0 ** 20, "gi": 2.0 ** 30}
_MULT_RE = r"thousand|million|billion|trillion|mega|giga|tera|mn|bn|ki|mi|gi|k|m|g|b|t"
_MULT_UNITS: list[tuple[str, str]] = [
    (r"param(?:eter)?s?|weights", "m.params"),  # '5 million weights': weights counted, not their bytes
    (r"macs?|multiply[\s-]+accumulates?|multiply[\s-]+adds?|mult[\s-]+adds?", "m.macs"),
    (r"flops?", "m.flops"),
    (r"b(?:ytes?)?(?:\s+of\s+weights?)?", "m.weight_bytes"),
    (r"layers?", "m.layers"),
]
QTY = (rf"(?P<num>{AMOUNT})\s*(?:(?P<unit>{'|'.join(u for u, _, _ in _PLAIN_UNITS)})"
       rf"|(?P<mult>{_MULT_RE})?\s*-?\s*(?P<munit>{'|'.join(u for u, _ in _MULT_UNITS)}))(?![a-z0-9])")

_SUFFIX_LE = r"or\s+(?:less|fewer|lower|under|below|smaller|faster|better|so)"
_SUFFIX_GE = r"or\s+(?:more|greater|higher|above|over|larger|bigger)"
# '30+ fps', '1,000,000+ params', '1M+ params', '2.5e8 or more MACs': the comparison between number and unit (a
# multiplier with a plain unit, '5k or more ms', is no quantity: skipped)
QTY_INFIX = (rf"(?P<num>{AMOUNT})\s*(?P<mult>{_MULT_RE})?\s*(?:(?P<plus>\+)|(?P<le>{_SUFFIX_LE})|(?P<ge>{_SUFFIX_GE}))"
             rf"\s*(?:(?P<unit>{'|'.join(u for u, _, _ in _PLAIN_UNITS)})|(?P<munit>{'|'.join(u for u, _ in _MULT_UNITS)}))"
             rf"(?![a-z0-9])")

_CMP_WORDS: list[tuple[str, str]] = [
    (r"no more than|not more than|no larger than|no bigger than|no higher than|no longer than|at most|up to|"
     r"at or (?:below|under)|within|maximum of|max(?:imum)?|<=|≤|=<|"
     r"fit(?:s|ting)?\s+(?:in(?:to)?|within|under)", "<="),  # 'models that fit in 4 GB': at most
    (r"no less than|not less than|no fewer than|at least|at or (?:above|over)|minimum of|min(?:imum)?|>=|≥|=>",
     ">="),
    (r"less than|lower than|fewer than|smaller than|shorter than|lighter than|cheaper than|under|below|beneath|sub|"
     r"<", "<"),
    (r"more than|greater than|higher than|larger than|bigger than|heavier than|longer than|over|above|exceeding|"
     r"exceeds?|beyond|>", ">"),
    (r"faster than|quicker than|better than|beats?|beating|outperforms?|outperforming", "better"),
    (r"slower than|worse than", "worse"),
    (r"exactly|equal to|==|=", "="),
]
_CMP_RE = "|".join(f"(?P<c{i}>{words})" for i, (words, _) in enumerate(_CMP_WORDS))
_HIGHER_IS_BETTER = {"r.fps", "r.memory_headroom_bytes"}
# fields whose bare quantities are read first: 'at 30 fps' is a rate, '30 M params' needs a comparison
RATES = ("r.latency_ms", "r.energy_mj", "r.fps", "h.power_w")
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}


def number(text: str) -> float:
    word = re.sub(r"\s+", " ", text.strip().lower())
    if word.endswith(" hundred") and word[:-8] in _WORD_NUMBERS:  # 'two hundred thousand'
        return float(_WORD_NUMBERS[word[:-8]] * 100)
    if word in _WORD_NUMBERS:
        return float(_WORD_NUMBERS[word])
    return float(text.replace(",", ""))


def clean(value: float) -> float | int:
    value = float(f"{value:.12g}")
    return int(value) if value.is_integer() else value


def per_joule(m: re.Match) -> bool:
    """The match is a rate per watt (frames per joule): its value is 1000 / r.energy_mj, so comparisons flip."""
    unit = m.group("unit")
    return unit is not None and re.fullmatch(_PER_JOULE_UNIT, re.sub(r"\s+", " ", unit)) is not None


def quantity(m: re.Match) -> tuple[str, float]:
    """(field, value in the field's unit) of a ``QTY`` match. A rate per watt (``per_joule``) is given as the energy
    per inference it stands for: 20 fps/W = 1000 / 20 = 50 mJ per inference."""
    num = number(m.group("num"))
    if m.group("unit") is not None:
        unit = re.sub(r"\s+", " ", m.group("unit"))
        if per_joule(m):
            if num == 0:
                return "r.energy_mj", float("inf")
            return "r.energy_mj", 1000.0 / num
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


def _resolve_op(op: str, fld: str, m: re.Match | None = None) -> str:
    """The comparison on the field: 'faster/better' by which way is better; a rate per watt flips (more fps/W is less
    energy per inference)."""
    if m is not None and per_joule(m) and op not in ("better", "worse"):
        return _FLIP[op]
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


CMP_RE = _CMP_RE


def hardware_op(m: re.Match) -> str:
    """The comparison of a ``CMP_RE`` match on a device measure (peak, bandwidth, memory): more is better."""
    return {"better": ">", "worse": "<"}.get(_cmp_op(m), _cmp_op(m))


def read_thresholds(st: QuestionText) -> None:
    """Comparisons with a number and a unit: 'under 30 ms', '30 fps or more', 'between 1 and 5 M params'."""
    for m in list(st.finditer(rf"(?:(?:between|from)\s+(?P<lo>{AMOUNT}|{_BARE_WORD})"
                              rf"(?P<lorest>\s*[a-z]+(?:\s+[a-z]+)?)?\s+(?:and|to|-)|"
                              rf"(?P<lo2>{NUM})(?P<lo2mult>{_MULT_RE})?\s*(?:to|-)(?=\s*{NUM}))\s*{QTY}"
                              rf"(?:\s+(?:range|bracket|band))?")):
        if m.group("lo") is None:  # '1 to 10 million parameters': the unit is the upper bound's
            fld, hi = quantity(m)
            lo = number(m.group("lo2")) * (hi / number(m.group("num")) if number(m.group("num")) else 1.0)
            if m.group("lo2mult") and m.group("munit"):  # '50k-200k params': the lower bound's own multiplier
                lo = number(m.group("lo2")) * _MULT[m.group("lo2mult")]
            if per_joule(m):
                lo = 1000.0 / number(m.group("lo2")) if number(m.group("lo2")) else float("inf")
            lo, hi = min(lo, hi), max(lo, hi)
            phrase = st.take(m.start(), m.end())
            st.add(Condition(field=fld, op=">=", value=clean(lo)), phrase)
            st.add(Condition(field=fld, op="<=", value=clean(hi)), phrase)
            continue
        fld, hi = quantity(m)
        unit = m.group("unit") or m.group("munit")
        lo = None
        # the lower bound's own words ('5 ms and 2 s'), its multiplier with the upper bound's unit ('half a million
        # and 2 million params'), or the upper bound's multiplier and unit ('50 and 200k params', 'five and 10
        # million MACs')
        rest = m.group("lorest") or ""
        for said in (m.group("lo") + rest, f"{m.group('lo')}{rest} {unit}" if rest.strip() else "",
                     f"{m.group('lo')} {m.group('mult') or ''} {unit}"):
            own = re.fullmatch(QTY, re.sub(r"\s+", " ", said.strip()))
            if own is not None and quantity(own)[0] == fld:
                lo = quantity(own)[1]
                break
        if lo is None:  # a bare number: in the upper bound's unit
            top = number(m.group("num"))
            lo = number(m.group("lo")) * (hi / top if top else 1.0)
        lo, hi = min(lo, hi), max(lo, hi)  # a rate per watt's range is inverted in mJ
        phrase = st.take(m.start(), m.end())
        st.add(Condition(field=fld, op=">=", value=clean(lo)), phrase)
        st.add(Condition(field=fld, op="<=", value=clean(hi)), phrase)
    compared = rf"(?:{_CMP_RE})[\s-]*(?:(?:a|an|the)\s+)?{QTY}"
    units: list[tuple[int, str, str]] = []  # (end, multiplier, unit) of each comparison read
    for m in list(st.finditer(compared)):  # 'sub-1M-parameter' too
        fld, value = quantity(m)
        op = _resolve_op(_cmp_op(m), fld, m)
        negated, start = st.negated_before(m.start())  # 'does not run under 1 ms', 'not over 5 M params'
        phrase = st.take(start, m.end())
        st.add(Condition(field=fld, op=op, value=clean(value), negate=negated), phrase)
        units.append((m.end(), m.group("mult") or "", m.group("unit") or m.group("munit")))
        if fld == "m.weight_bytes" and re.match(r"(?:\w+\W+)?fit", phrase.lower()):
            st.notes.append(f"'{phrase}' read as the weights at most that size (activations not counted; name a device "
                            f"for the memory fit: weights and activations against its memory)")
    # '... no more than 100k params but at least 50k', 'under 10 ms and over 2': a bare second bound right after one
    # read takes its unit (and its multiplier, when it has none of its own)
    for m in list(st.finditer(rf"(?:but|and|yet)\s+(?:also\s+)?(?P<cmp>{_CMP_RE})[\s-]*(?P<n>{NUM})"
                              rf"(?P<x>{_MULT_RE})?(?![a-z0-9.])(?=\s*(?:$|[?!,;]|\.(?![0-9])|(?:on|in|at|for|with|and|or|but|"
                              rf"that|which|when|while)(?![a-z])))")):  # no other word after: 'over 2 devices' is not
        before = [u for u in units if not st.low[u[0]:m.start()].strip(" ,")]
        if not before:
            continue
        _, mult, unit = before[-1]
        own = re.fullmatch(compared, f"{m.group('cmp')} {m.group('n')}{m.group('x') or mult} {unit}")
        if own is None:
            continue
        fld, value = quantity(own)
        phrase = st.take(m.start(), m.end())
        st.add(Condition(field=fld, op=_resolve_op(_cmp_op(own), fld, own), value=clean(value)), phrase)
    for pattern in (rf"{QTY}\s*(?:(?P<le>{_SUFFIX_LE})|(?P<ge>{_SUFFIX_GE})|(?P<plus>\+))", QTY_INFIX):
        for m in list(st.finditer(pattern)):
            if m.group("unit") is not None and m.group("mult"):
                continue
            fld, value = quantity(m)
            op = "<=" if m.group("le") else ">="
            if m.group("le") and fld in _HIGHER_IS_BETTER and re.search(r"faster|better", m.group("le")):
                op = ">="
            op = _resolve_op(op, fld, m)
            st.add(Condition(field=fld, op=op, value=clean(value)), st.take(m.start(), m.end()))


_LINK = r"(?:(?:is|are|of|be|being|that\s+(?:is|are)|which\s+(?:is|are))\s+)*"
_ACTIVATIONS = r"(?:peak\s+)?activations?(?:\s+(?:memory|bytes|sizes?|footprint))?"


def read_activation_sizes(st: QuestionText) -> None:
    """A size in bytes said of the activations ('activations over 10 MB', 'activation memory of at most 2 MB', 'more
    than 5 MB of activations'): ``m.activation_bytes`` (read before ``read_thresholds``, which gives a bare size
    to the weights)."""
    for pattern in (rf"{_ACTIVATIONS}\s+{_LINK}(?:{_CMP_RE})\s*(?:(?:a|an|the)\s+)?{QTY}",
                    rf"(?:{_CMP_RE})\s*(?:(?:a|an|the)\s+)?{QTY}\s+(?:of\s+|in\s+)?{_ACTIVATIONS}"):
        for m in list(st.finditer(pattern)):
            fld, value = quantity(m)
            if fld != "m.weight_bytes":  # a size in bytes only
                continue
            negated, start = st.negated_before(m.start())
            st.add(Condition(field="m.activation_bytes", op=_resolve_op(_cmp_op(m), fld), value=clean(value),
                             negate=negated), st.take(start, m.end()))


# 'MACs over 500 million', 'param count between 50k and 200k', 'parameter count is below 100k', 'MACs > 5e8': the
# measure named first, then the comparison and a bare number (a multiplier at most); counts only (a time or a size in
# bytes takes its unit, read above)
_MEASURE_FIRST: list[tuple[str, str]] = [
    (r"param(?:eter)?s?(?:\s+counts?)?|weights?\s+counts?|(?:number|count)\s+of\s+(?:param(?:eter)?s|weights)",
     "m.params"),
    (r"(?:g|m)?macs?(?:\s+counts?)?|multiply[\s-]+accumulates?|mult[\s-]+adds?|(?:number|count)\s+of\s+macs",
     "m.macs"),
    (r"(?:g|m)?flops?(?:\s+counts?)?", "m.flops"),
    (r"layers?(?:\s+counts?)?|(?:number|count)\s+of\s+layers", "m.layers"),
    (r"(?:arithmetic|operational)\s+intensity", "r.arithmetic_intensity"),  # FLOPs per byte: a bare number
]
_BARE = rf"(?P<num>{AMOUNT})\s*(?P<mult>{_MULT_RE})?"


def _bare_value(num: str, mult: str | None, measure: str) -> float:
    """A bare number after a measure word: '500 million', '100k', '5e8'; 'GMACs over 1' is 1 G."""
    scale = _MULT.get((mult or "").lower(), 1.0)
    if not mult and re.match(r"[gm](?=macs?|flops?)", measure):
        scale = _MULT[measure[0]]
    return number(num) * scale


_ORDERS = {"tens": 10.0, "hundreds": 100.0}


def read_orders_of_magnitude(st: QuestionText) -> None:
    """'params in the hundreds of thousands', 'tens of millions of MACs': [100k, 1M), [10M, 100M) of that count (the
    measure named before or after; parameters when none is)."""
    words = "|".join(w for w, _ in _MEASURE_FIRST)
    for m in list(st.finditer(rf"(?:(?P<before>{words})\s+)?(?:(?:is|are|in)\s+)?(?:the\s+)?"
                              rf"(?P<o>tens|hundreds)\s+of\s+(?P<u>thousands|millions|billions)"
                              rf"(?:\s+of\s+(?P<after>{words}))?")):
        said = m.group("before") or m.group("after") or "params"
        fld = next(f for w, f in _MEASURE_FIRST if re.fullmatch(w, said))
        lo = _ORDERS[m.group("o")] * _MULT[m.group("u")[:-1]]
        phrase = st.take(m.start(), m.end())
        st.add(Condition(field=fld, op=">=", value=clean(lo)), phrase)
        st.add(Condition(field=fld, op="<", value=clean(lo * 10)), phrase)


def read_measure_first(st: QuestionText) -> None:
    """A count measure named before its comparison ('models whose MACs exceed 500 million', 'param count between
    50k and 200k'): what ``read_thresholds`` leaves, as the number then has no unit of its own."""
    for words, fld in _MEASURE_FIRST:
        pattern = (rf"(?P<measure>{words})\s+{_LINK}(?:(?:between|from)\s+(?P<lo>{AMOUNT})\s*(?P<lomult>{_MULT_RE})?"
                   rf"\s*(?:and|to|-)\s*|(?:{_CMP_RE})\s*){_BARE}(?:\s*(?:{words}))?")
        for m in list(st.finditer(pattern)):
            measure = re.sub(r"\s+", " ", m.group("measure"))
            hi = _bare_value(m.group("num"), m.group("mult"), measure)
            if m.group("lo") is not None:
                lo = _bare_value(m.group("lo"), m.group("lomult") or m.group("mult"), measure)
                phrase = st.take(m.start(), m.end())
                st.add(Condition(field=fld, op=">=", value=clean(min(lo, hi))), phrase)
                st.add(Condition(field=fld, op="<=", value=clean(max(lo, hi))), phrase)
                continue
            op = _resolve_op(_cmp_op(m), fld)
            st.add(Condition(field=fld, op=op, value=clean(hi)), st.take(m.start(), m.end()))


def read_bare_quantities(st: QuestionText, fields: tuple[str, ...]) -> None:
    """Quantities with no comparison: 'at 30 fps' (at least), 'in 30 ms' / '30 ms budget' (at most); a size or count
    with no comparison is not guessed at."""
    for m in list(st.finditer(rf"(?:(?:at|in|with|within|for|of|a|an)\s+)?{QTY}(?:\s+(?:budget|target|limit|"
                              rf"latency|deadline|loop|control\s+loop))?")):
        fld, value = quantity(m)
        if fld not in fields:
            continue
        # "can't hit 30 fps", "doesn't reach 100 fps": the rate (or budget) negated
        negated, start = st.negated_before(m.start()) if fld in RATES else (False, m.start())
        phrase = st.take(start, m.end())
        if fld == "r.energy_mj" and per_joule(m):  # 'at 20 fps per watt': at least that
            st.add(Condition(field=fld, op="<=", value=clean(value), negate=negated), phrase)
            st.notes.append(f"'{phrase}' has no comparison: read as at least {clean(number(m.group('num')))} "
                            f"frames per joule (energy per inference at most {clean(value)} mJ)")
        elif fld in ("r.latency_ms", "r.energy_mj"):
            st.add(Condition(field=fld, op="<=", value=clean(value), negate=negated), phrase)
            st.notes.append(f"'{phrase}' has no comparison: read as at most {clean(value)}")
        elif fld == "r.fps":
            st.add(Condition(field=fld, op=">=", value=clean(value), negate=negated), phrase)
            st.notes.append(f"'{phrase}' has no comparison: read as at least {clean(value)} fps")
        elif fld == "h.power_w":
            st.add(Condition(field=fld, op="=", value=clean(value)), phrase)
        else:
            qty = st.raw[m.start("num"):m.end()].strip()
            st.ignored.append(qty)
            st.notes.append(f"'{qty}' has no comparison (under, over, at least ...): ignored")


def read_display_units(st: QuestionText) -> None:
    """'how much memory does the pi 5 have in GB', 'the smallest model in KB': a unit to show a byte count in, when
    the question asks about one (the answer's columns hold bytes; the table shows them readably)."""
    asked = {c.field for c in st.conditions} | {field for field, _, _ in st.order}
    if not any(f.endswith("_bytes") for f in asked):
        return
    for m in list(st.finditer(r"(?:in|as)\s+(?:gb|gib|mb|mib|kb|kib|tb|gigabytes|megabytes|kilobytes|bytes)"
                              r"(?![a-z0-9])")):
        st.readings.append(Reading(phrase=st.take(m.start(), m.end()), meaning="the unit to show (counts are bytes)"))


def read_restated_units(st: QuestionText) -> None:
    """A unit or measure word left over that names a field the question already asks about ('over one billion
    multiply-accumulates? I mean MACs', '5M params, I mean parameters') restates it: taken, with a note, rather than
    left as a word not understood. A unit of a field not asked about stays a leftover (it carries meaning)."""
    asked = {c.field for c in st.conditions} | {field for field, _, _ in st.order}
    units = [(pattern, field) for pattern, field, _ in _PLAIN_UNITS] + list(_MULT_UNITS)
    for pattern, field in units:
        if field not in asked:
            continue
        for m in list(st.finditer(pattern)):
            if m.end() - m.start() < 2:  # 's', 'w', 'j', 'b': too short to be a restatement
                continue
            phrase = st.take(m.start(), m.end())
            st.notes.append(f"'{phrase}' restates {field}, already asked about")


# the noun of a model field whose value a question names ('models whose task is detection', 'of family yolo')
_FIELD_NOUNS = {"m.task": r"tasks?", "m.family": r"famil(?:y|ies)|architecture\s+famil(?:y|ies)",
                "m.format": r"(?:file\s+)?formats?", "m.type": r"(?:model\s+|architecture\s+)?types?"}


def read_field_nouns(st: QuestionText) -> None:
    """'models whose task is detection', 'models of family yolo', 'with format onnx', 'family = yolo': the field's
    noun beside the value read as that field restates it (taken). Without a value of that field the noun is left
    unread ('which family is fastest' is not guessed)."""
    for fld, noun in _FIELD_NOUNS.items():
        if not any(c.field == fld for c in st.conditions):
            continue
        for m in list(st.finditer(rf"(?:whose\s+|with\s+(?:the\s+|a\s+)?|of\s+(?:the\s+)?)?(?:{noun})"
                                  rf"(?:\s*(?:=|:|is|was|of)(?![a-z]))?")):
            st.take(m.start(), m.end())


_SIZE_WORDS = (r"tiny|small|smaller|little|light|lighter|lightweight|compact|heavy|heavier|big|bigger|large|larger|"
               r"huge|massive")
_SIZE_FIELDS = ("m.params", "m.macs", "m.flops", "m.weight_bytes")


def read_size_adjectives(st: QuestionText) -> None:
    """'tiny models (under 1M params)', 'heavy models over 50M params': a size word before the models, said with a
    size threshold that defines it, restates it: taken with a note. Without one ('small models') it stays a word not
    understood: how small is not guessed."""
    if not any(c.field in _SIZE_FIELDS for c in st.conditions):
        return
    for m in list(st.finditer(_SIZE_WORDS)):
        if not re.match(r"\s+(?:models?|nets?|networks?|ones|detectors?|classifiers?|segmenters?|policies)(?![a-z])",
                        st.low[m.end():]):  # the noun read already: looked up in the question as written
            continue
        phrase = st.take(m.start(), m.end())
        st.notes.append(f"'{phrase}' read as the size threshold the question states")


# how weights are kept: 'stored in fp16', 'fp32 weights', 'in fp16 format', 'an int8 checkpoint'
STORAGE_WORDS = (r"(?:stored|saved|kept|serialized|serialised|exported|shipped)(?:\s+(?:as|in|at))?|"
                 r"(?:in\s+)?(?:the\s+)?(?:weights?|checkpoints?|files?)(?:\s+(?:format|d?type))?|"
                 r"(?:in\s+)?(?:the\s+)?(?:format|dtype)")


def read_storage_words(st: QuestionText) -> None:
    """'models stored in fp16', 'which models have fp32 weights', 'in fp16 format': beside the one precision a
    question names, a word about how weights are kept restates it (``parse._stored_quantized`` then reads the stored
    type, ``m.dtype``, where no device or fit condition is named)."""
    named = [c for c in st.conditions if c.field == "r.precision" and c.op == "=" and not c.negate]
    if len(named) != 1:
        return
    for m in list(st.finditer(STORAGE_WORDS)):
        st.readings.append(Reading(phrase=st.take(m.start(), m.end()), meaning="restates " + named[0].cypher()))


def read_quantization_words(st: QuestionText) -> None:
    """'quantized to int8', 'int8 quantization': said with the precision it names, the word restates it (the fit rows
    at that precision are the quantized model's)."""
    if not any(c.field == "r.precision" and not c.negate for c in st.conditions):
        return
    for m in list(st.finditer(r"(?:quanti[sz](?:ed|able|ation|ing|e))(?:\s+(?:to|at|in|for))?")):
        st.take(m.start(), m.end())
