"""A pipeline question's answer in plain words: for each row of (p:Pipeline)-[r:RUNS_ON]->(h:Hardware), the time per
control period, the rate the device holds, the verdict against the rate asked (``StructuredQuery.asked_rate_hz``) or
the pipeline's own (``p.rate_hz``), and the memory verdict. Pure: rows in, sentences out."""
from __future__ import annotations

import statistics
from typing import Any

from embodied_tui import units as fmt

NEEDED = ("p.name", "h.device", "h.power_mode", "r.precision", "r.total_ms", "r.rate_hz", "p.rate_hz", "r.fits_memory")
MAX_SENTENCES = 10


def sentence(row: dict[str, Any], asked_rate_hz: float | None) -> str:
    where = f"{row['p.name']} on {row['h.device']} ({row['h.power_mode']}, {row['r.precision']})"
    memory = {True: "fits memory", False: "does NOT fit memory", None: "memory unknown"}[row["r.fits_memory"]]
    total, rate = row["r.total_ms"], row["r.rate_hz"]
    need = asked_rate_hz if asked_rate_hz is not None else row["p.rate_hz"]
    if total is None or rate is None:
        return f"{where}: time unknown (a stage could not be fitted; see `embodied-ai pipeline fit`); {memory}"
    period = 1000.0 / need
    if rate >= need:
        verdict = f"yes, it holds {fmt.number(need)} Hz (margin {fmt.percent(1 - total / period, 1.0)})"
    else:
        verdict = (f"no, it does not reach {fmt.number(need)} Hz (the period is {fmt.ms(period)} ms: it takes "
                   f"{fmt.number(total / period)}x that)")
    return f"{where}: {fmt.ms(total)} ms per control period, {fmt.number(rate)} Hz: {verdict}; {memory}"


def verdicts(columns: list[str], rows: list[list[Any]], asked_rate_hz: float | None) -> list[str]:
    """One sentence per row (at most ``MAX_SENTENCES``, then how many more); one sentence when no row matched.
    Empty when the rows lack a needed column (a count)."""
    if not all(c in columns for c in NEEDED):
        return []
    if not rows:
        return ["no pipeline fit matches the question (ask '<pipeline> on <device>' for every fit with its verdict; "
                "devices: `embodied-ai hw list`)"]
    out = [sentence(dict(zip(columns, row)), asked_rate_hz) for row in rows[:MAX_SENTENCES]]
    if len(rows) > MAX_SENTENCES:
        out.append(f"... and {len(rows) - MAX_SENTENCES} more rows")
    return out


# ------------------------------------------------------------------------------------------------ comparisons

COMPARED = ("m.name", "h.device", "h.power_mode", "r.precision", "r.latency_ms")
# the columns a pairing of two models (or two precisions) shares: their values on one of these are compared
_PAIRED_BY = {"m.name": ("h.device", "h.power_mode", "r.precision"),
              "r.precision": ("m.name", "h.device", "h.power_mode")}
MAX_DETAILS = 5


def _pairings(compare, columns: list[str], rows: list[list[Any]], column: str) -> list[tuple[tuple, float, float]]:
    """(the shared identity columns, side A's value, side B's value) of ``column`` for each pairing of two models
    (or two precisions: ``_PAIRED_BY``) where both sides have a value above 0."""
    paired = _PAIRED_BY[compare.field]
    at = {c: columns.index(c) for c in (*paired, compare.field, column)}
    a, b = compare.sides[0][0], compare.sides[1][0]
    by_config: dict[tuple, dict[str, float]] = {}
    for r in rows:
        if r[at[column]] is not None:
            by_config.setdefault(tuple(r[at[c]] for c in paired), {})[r[at[compare.field]]] = r[at[column]]
    return [(k, v[a], v[b]) for k, v in by_config.items() if a in v and b in v and v[a] > 0 and v[b] > 0]


def _more_pairings(pairs: list) -> list[str]:
    return [f"... and {len(pairs) - MAX_DETAILS} more pairings (the rows below)"] if len(pairs) > MAX_DETAILS else []


def _times(ratio: float) -> str:
    return f"{fmt.number(ratio)}x"


def _how(ratio: float) -> str:
    """'1.8x faster' for ratio = the other's time / this one's (>= 1), else '1.3x slower'."""
    return f"{_times(ratio)} faster" if ratio >= 1 else f"{_times(1 / ratio)} slower"


def _faster(a: str, b: str, ratio: float) -> str:
    """'A is 1.8x faster than B' for ratio = time of B / time of A (>= 1), else 'A is 1.3x slower than B'."""
    return f"{a} is {_how(ratio)} than {b}"


def comparison(compare, columns: list[str], rows: list[list[Any]]) -> list[str]:
    """A comparison's answer in words (``query.Comparison``), first the verdict, then the figures it rests on.

    Convention: predicted latency (calibrated roofline, ``r.latency_ms``); a ratio is the slower time over the faster
    one. Two models: each device x power mode x precision where both have a time is one pairing (two precisions:
    each model x device x power mode); the verdict counts
    the pairings where the first model is faster, with the ratios' range and median. Two device groups: for each
    model and precision, each side at its fastest device and mode (named), and their ratio."""
    if compare.measure == "r.energy_mj":
        return energy_comparison(compare, columns, rows)
    if compare.measure != "r.latency_ms":
        return size_comparison(compare)
    if not all(c in columns for c in COMPARED):
        return []
    idx = {c: columns.index(c) for c in COMPARED}
    a_label, b_label = compare.labels
    slower = compare.slower
    factor = compare.factor
    timed = [r for r in rows if r[idx["r.latency_ms"]] is not None]
    if compare.field in _PAIRED_BY:  # two models, or two precisions: paired on the other identity columns
        a, b = compare.sides[0][0], compare.sides[1][0]
        pairs = _pairings(compare, columns, rows, "r.latency_ms")
        if not pairs:
            what = "device, power mode and precision" if compare.field == "m.name" else "model, device and power mode"
            return [f"cannot compare: no {what} has a predicted latency for both {a} and "
                    f"{b}"]
        ratios = sorted(tb / ta for _, ta, tb in pairs)
        if factor is not None:  # 'twice as fast': B's time at least factor x A's (slower: A's at least factor x B's)
            held = sum(1 for _, ta, tb in pairs if (ta >= factor * tb if slower else tb >= factor * ta))
        else:
            wins = sum(1 for x in ratios if x > 1)
            held = len(ratios) - wins - sum(1 for x in ratios if x == 1) if slower else wins
        n = len(ratios)
        word = ("slower" if slower else "faster") if factor is None else \
            f"at least {_times(factor)} {'slower' if slower else 'faster'}"
        verdict = ("yes: " if held == n else "no: " if held == 0 else "partly: ") if compare.yes_no else ""
        med = statistics.median(ratios)
        what = "device x power mode x precision" if compare.field == "m.name" else "model x device x power mode"
        head = (f"{verdict}{a} is {word} than {b} on {held} of {n} {what} pairings "
                f"(predicted latency); median: {_faster(a, b, med)} (from {_how(ratios[0])} to {_how(ratios[-1])})")
        out = [head]
        for key, ta, tb in sorted(pairs, key=lambda p: min(p[1], p[2]))[:MAX_DETAILS]:
            where = (f"{key[0]} ({key[1]}, {key[2]})" if compare.field == "m.name"
                     else f"{key[0]} on {key[1]} ({key[2]})")
            out.append(f"{where}: {a} {fmt.ms(ta)} ms, {b} {fmt.ms(tb)} ms: {_faster(a, b, tb / ta)}")
        return out + _more_pairings(pairs)
    sides = [set(s) for s in compare.sides]
    best: dict[tuple[str, str], list] = {}
    for r in timed:
        for i, side in enumerate(sides):
            if r[idx["h.device"]] in side:
                key = (r[idx["m.name"]], r[idx["r.precision"]])
                slot = best.setdefault(key, [None, None])
                if slot[i] is None or r[idx["r.latency_ms"]] < slot[i][idx["r.latency_ms"]]:
                    slot[i] = r
    out = []
    held = 0  # pairings where side A is what was asked (faster, or slower)
    for (model, prec), (ra, rb) in sorted(best.items()):
        if ra is None or rb is None or not ra[idx["r.latency_ms"]] or not rb[idx["r.latency_ms"]]:
            continue
        ta, tb = ra[idx["r.latency_ms"]], rb[idx["r.latency_ms"]]
        held += (ta >= factor * tb if factor else ta > tb) if slower else (tb >= factor * ta if factor else ta < tb)
        out.append(f"{model} at {prec} is {_how(tb / ta)} on {a_label} ({fmt.ms(ta)} ms on {ra[idx['h.device']]} "
                   f"{ra[idx['h.power_mode']]}) than on {b_label} ({fmt.ms(tb)} ms on {rb[idx['h.device']]} "
                   f"{rb[idx['h.power_mode']]}); each side at its fastest device and mode")
    if not out:
        return [f"cannot compare: no model has a predicted latency on both {a_label} and {b_label} at one precision"]
    more = len(out) - MAX_SENTENCES
    head = []
    if compare.yes_no:  # 'is the t4 faster than the l4 for X?': yes, no or partly first
        n = len(out)
        verdict = "yes" if held == n else "no" if held == 0 else "partly"
        how = f"at least {_times(factor)} " if factor is not None else ""
        head = [f"{verdict}: {a_label} is {how}{'slower' if slower else 'faster'} than {b_label} for {held} of {n} "
                f"model x precision pairings (predicted latency, each side at its fastest device and mode)"]
    return head + out[:MAX_SENTENCES] + ([f"... and {more} more"] if more > 0 else [])


def energy_comparison(compare, columns: list[str], rows: list[list[Any]]) -> list[str]:
    """Two models compared on energy per inference (``r.energy_mj``: power_w x predicted latency): each device x
    power mode x precision where both have one is a pairing; the verdict counts those where the first uses less
    (or, asked 'less efficient', more), with the ratios' median and range (the larger energy over the smaller)."""
    if not all(c in columns for c in ("m.name", "h.device", "h.power_mode", "r.precision", "r.energy_mj")):
        return []
    a, b = compare.sides[0][0], compare.sides[1][0]
    pairs = _pairings(compare, columns, rows, "r.energy_mj")
    if not pairs:
        return [f"cannot compare: no device, power mode and precision has an energy per inference for both {a} and "
                f"{b}"]
    ratios = sorted(eb / ea for _, ea, eb in pairs)  # > 1: a uses less
    held = sum(1 for x in ratios if (x < 1 if compare.slower else x > 1))
    n = len(ratios)
    verdict = ("yes: " if held == n else "no: " if held == 0 else "partly: ") if compare.yes_no else ""

    def uses(ratio: float) -> str:
        return f"{_times(ratio)} less energy" if ratio >= 1 else f"{_times(1 / ratio)} more energy"

    med = statistics.median(ratios)
    out = [f"{verdict}{a} is {'less' if compare.slower else 'more'} efficient than {b} on {held} of {n} device x power "
           f"mode x precision pairings (energy per inference, power x predicted latency); median: {a} uses "
           f"{uses(med)} than {b} (from {uses(ratios[0])} to {uses(ratios[-1])})"]
    for (dev, mode, prec), ea, eb in sorted(pairs, key=lambda p: min(p[1], p[2]))[:MAX_DETAILS]:
        out.append(f"{dev} ({mode}, {prec}): {a} {fmt.number(ea)} mJ, {b} {fmt.number(eb)} mJ: {a} uses "
                   f"{uses(eb / ea)}")
    return out + _more_pairings(pairs)


_SIZE_WORDS = {"m.params": "parameters", "m.macs": "MACs"}


def size_comparison(compare) -> list[str]:
    """Two models' sizes (``compare.values``, the registry's exact counts) in words: whether the first has more (or
    fewer) of them, both counts, and the ratio (the larger over the smaller)."""
    (a,), (b,) = compare.sides
    what = _SIZE_WORDS[compare.measure]
    va, vb = (compare.values + [None, None])[:2]
    if va is None or vb is None:
        unknown = ", ".join(n for n, v in ((a, va), (b, vb)) if v is None)
        return [f"cannot compare: the {what} of {unknown} not known"]
    holds = va > vb if compare.more else va < vb
    verdict = ("yes: " if holds else "no: ") if compare.yes_no else ""
    counts = f"{a} has {fmt.exact(va)} {what}, {b} {fmt.exact(vb)}"
    if va == vb:
        return [f"{verdict}{counts}: the same"]
    ratio = max(va, vb) / min(va, vb) if min(va, vb) > 0 else None
    how = f"{_times(ratio)} " if ratio is not None else ""
    big, small = (a, b) if va > vb else (b, a)
    return [f"{verdict}{counts}: {big} has {how}as many {what} as {small}"]


def refusal(parsed) -> str | None:
    """The first line of an answer to a question not fully understood: which words, and why; None when understood."""
    if parsed.understood:
        return None
    said = [n for n in parsed.notes if any(f"'{w}'" in n for w in parsed.unparsed)]
    unexplained = [w for w in parsed.unparsed if not any(f"'{w}'" in n for n in said + list(parsed.reasons))]
    parts = list(parsed.reasons) + said + [f"'{w}' was not understood" for w in unexplained]
    return "not understood: " + "; ".join(dict.fromkeys(parts))


# ------------------------------------------------------------------------------------------------ yes or no

MAX_NAMED = 5


def yes_no(parsed, columns: list[str], rows: list[list[Any]]) -> str:
    """The first words of the answer to a yes/no question: whether any row matches (and which subjects), or, for
    'is X the fastest ...' (``parsed.claim``), whether X is the first row."""
    key = columns[0] if columns else None
    if parsed.claim is not None:
        if not rows or key is None:
            return f"no: no row matches the question, so {parsed.claim} is not first"
        first = dict(zip(columns, rows[0]))
        top = first.get("m.name", first.get(key))
        measure = parsed.order_by[0].field if parsed.order_by else None
        value = first.get(measure) if measure else None
        said = f" ({measure} {fmt.number(value)})" if isinstance(value, (int, float)) else ""
        if top == parsed.claim:
            return f"yes: {parsed.claim} is first{said}"
        return f"no: {top} is first{said}, not {parsed.claim}"
    if not rows:
        where = " AND ".join(c.cypher() for c in parsed.conditions)
        return f"no: no row matches{f' {where}' if where else ''}"
    names = list(dict.fromkeys(str(row[0]) for row in rows))
    return f"yes: {len(rows)} row{'s' if len(rows) != 1 else ''} match{'es' if len(rows) == 1 else ''} " \
        f"({_first_named(names)})"


def _first_named(names: list[str]) -> str:
    """The first ``MAX_NAMED`` names, and how many more."""
    return ", ".join(names[:MAX_NAMED]) + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


def every_verdict(parsed, columns: list[str], rows: list[list[Any]], all_columns: list[str],
                  all_rows: list[list[Any]]) -> str:
    """The first words of 'are all models under 100k params', 'do all detectors run under 5 ms on the thor': yes
    when every subject the question is about (``all_rows``: its rows without what it claims) has a row meeting the
    claim, else no, naming those that have none."""
    key = parsed.subject_key()
    if key not in columns or key not in all_columns:
        return yes_no(parsed, columns, rows)
    meeting = {row[columns.index(key)] for row in rows}
    everyone = list(dict.fromkeys(row[all_columns.index(key)] for row in all_rows))
    missing = [name for name in everyone if name not in meeting]
    if not everyone:
        return "no: nothing matches the question's subjects"
    if not missing:
        return f"yes: all {len(everyone)} match"
    return f"no: {len(missing)} of {len(everyone)} do not ({_first_named(list(map(str, missing)))})"


def group_counts(group_by: str, columns: list[str], rows: list[list[Any]]) \
        -> tuple[list[str], list[list[Any]], int, str]:
    """A grouped count's (name, group value) rows as (columns, rows, subjects counted, sentence): one row per value
    with how many subjects have it, most first (a value no subject states is 'unknown')."""
    at = columns.index(group_by)
    counts: dict[str, set] = {}
    for row in rows:
        value = row[at] if row[at] is not None else "unknown"
        counts.setdefault(str(value), set()).add(row[0])
    table = sorted(([value, len(names)] for value, names in counts.items()), key=lambda r: (-r[1], r[0]))
    total = len({row[0] for row in rows})
    said = ", ".join(f"{value} {n}" for value, n in table[:MAX_SENTENCES])
    more = f" and {len(table) - MAX_SENTENCES} more" if len(table) > MAX_SENTENCES else ""
    return [group_by, "count"], table, total, f"{total} in all, per {group_by}: {said}{more}"
