"""A pipeline question's answer in plain words: for each row of (p:Pipeline)-[r:RUNS_ON]->(h:Hardware), the time per
control period, the rate the device holds, the verdict against the rate asked (``StructuredQuery.asked_rate_hz``) or
the pipeline's own (``p.rate_hz``), and the memory verdict. Pure: rows in, sentences out."""
from __future__ import annotations

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
        return ["no fit of the pipeline matches (check the device and power mode: `embodied-ai hw list`)"]
    out = [sentence(dict(zip(columns, row)), asked_rate_hz) for row in rows[:MAX_SENTENCES]]
    if len(rows) > MAX_SENTENCES:
        out.append(f"... and {len(rows) - MAX_SENTENCES} more rows")
    return out
