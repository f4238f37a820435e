"""`embodied-ai ask` (plain-language questions) and `embodied-ai card` (grounded model card).

`card` could move under the `model` group (`model card NAME`); it lives here so the `model` module stays its owner's.
"""
from __future__ import annotations

from typing import Any

import click

from embodied_tui import units as fmt
from embodied_tui.commands.output import console, plain, print_json

# short headers for the columns `ask` returns (JSON keeps the Cypher names)
LABELS = {"m.name": "model", "h.device": "device", "h.name": "device name", "h.power_mode": "mode",
          "h.power_w": "W", "h.type": "type", "r.precision": "prec", "r.latency_ms": "pred ms", "r.fps": "fps",
          "r.bound": "bound", "m.family": "family", "m.task": "task", "m.type": "type", "m.params": "params",
          "m.macs": "MACs", "m.flops": "FLOPs", "m.weight_bytes": "weights MB", "r.energy_mj": "mJ",
          "r.memory_headroom_bytes": "headroom MB", "r.fits_memory": "fits", "r.measured_latency_ms": "meas ms",
          "r.roofline_latency_ms": "roofline ms", "r.arithmetic_intensity": "FLOP/B",
          "p.name": "pipeline", "r.total_ms": "ms/period", "r.rate_hz": "Hz", "p.rate_hz": "need Hz",
          "r.meets_rate": "meets", "r.margin": "margin", "h.memory_bytes": "memory MB",
          "h.memory_bandwidth_gbps": "GB/s",
          **{f"h.peak_{p}_tflops": f"{p} {'TOPS' if p.startswith('int') else 'TFLOPS'}"
             for p in ("fp32", "tf32", "fp16", "bf16", "fp8", "fp4", "int8", "int4")}}


SHOWN_ROWS = 50  # rows `ask` prints unless --limit says otherwise (a table of 7,000 rows answers nobody)


def print_answer(columns: list[str], rows: list[list[Any]], labels: dict[str, str] | None = None) -> None:
    """The rows as a table of ``units.cell`` texts (escaped; no rich markup is interpreted), as the app shows them."""
    from rich import box
    from rich.table import Table

    out = console()
    if not rows:
        out.print(plain("No rows match."))
        return
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False)
    for col in columns:
        table.add_column(plain((labels or {}).get(col, col)), overflow="fold")
    in_mb = [bool(labels) and col.endswith("_bytes") for col in columns]  # labelled "... MB"
    for row in rows:
        table.add_row(*(plain(fmt.cell(v / 1e6 if mb and isinstance(v, (int, float)) and not isinstance(v, bool)
                                       else v))
                        for v, mb in zip(row, in_mb)))
    out.print(table)


@click.command("ask")
@click.argument("question")
@click.option("--llm", is_flag=True,
              help="Read the question with the LLM at $EMBODIED_AI_LLM_URL (OpenAI-compatible) instead of the "
                   "offline parser.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer, the query and how it was read as JSON.")
@click.option("--limit", "limit", type=click.IntRange(min=0), default=SHOWN_ROWS, show_default=True,
              help="Rows printed at most (0: all); the count and --json always cover every row.")
@click.pass_context
def ask(ctx: click.Context, question: str, llm: bool, as_json: bool, limit: int) -> None:
    """Answer a plain-language QUESTION about the registered models and the hardware catalog.

    \b
    Examples:
      embodied-ai ask "which models run under 30 ms on a jetson at 15 W?"
      embodied-ai ask "fastest detector on the orin nano in int8"
      embodied-ai ask "how many models have fewer than 5M params?"

    Prints the answer, the Cypher query that produced it and any words it did not understand. A question with a
    word that carries meaning but was not understood starts with that line; when the rest does not settle the
    answer, no rows are printed (``--json``: ``understood: false``, ``reasons``, ``refused: true``)."""
    from embodied_tui.services.ask import ask as ask_service

    result = ask_service(ctx.obj["db"], question, llm=llm)
    if as_json:
        print_json(result)
        return
    out = console()
    answer = list(result.get("answer", []))
    if not result.get("understood", True) and answer:  # what was not understood comes first, before anything else
        out.print(plain(answer.pop(0)), soft_wrap=True)
    if result["readings"]:
        out.print(plain("read as: " + "; ".join(f"{r['phrase']} -> {r['meaning']}" for r in result["readings"])),
                  soft_wrap=True)
    if result["unparsed"]:
        out.print(plain("not understood (ignored): " + ", ".join(result["unparsed"])), soft_wrap=True)
    for note in result["notes"]:
        out.print(plain(f"note: {note}"), soft_wrap=True)
    for line in answer:  # a comparison's verdict and ratio, a pipeline's verdicts: in words, before the rows
        out.print(plain(line), soft_wrap=True)
    if result.get("refused"):
        out.print(plain("cypher (as read, not run):\n  " + result["cypher"].replace("\n", "\n  "), newlines=True),
                  soft_wrap=True)
        return
    rows = result["rows"]
    shown = rows if not limit else rows[:limit]
    print_answer(result["columns"], shown, LABELS)
    n = len(rows)
    what = "model" if result["query"]["subject"] == "model" else "device"
    counted = result["count"] if result["count"] is not None else n  # a grouped count: the rows are its groups
    summary = (f"{counted:,} {what}{'s' if counted != 1 else ''}" + (f" in {n:,} groups" if counted != n else "")
               if result["count"] is not None else
               f"{n:,} row{'s' if n != 1 else ''}")
    if len(shown) < n:  # the answer is every row: only the printing stops
        summary += f" (showing the first {len(shown):,}; --limit 0 for all, --json for every row)"
    out.print(plain(summary))
    out.print(plain("cypher:\n  " + result["cypher"].replace("\n", "\n  "), newlines=True), soft_wrap=True)


@click.command("card")
@click.argument("name")
@click.option("--version", "version", type=int, help="Model version (default: latest).")
@click.option("--markdown", is_flag=True, help="Markdown instead of plain text.")
@click.option("--hf", is_flag=True, help="A Hugging Face style model card: YAML front matter + Markdown.")
@click.option("--json", "as_json", is_flag=True, help="The card's sections as JSON.")
@click.pass_context
def card(ctx: click.Context, name: str, version: int | None, markdown: bool, hf: bool, as_json: bool) -> None:
    """A model card for NAME grounded in its record and fit rows: every figure comes from them, and each conclusion
    names its evidence."""
    from embodied_tui.services.card import model_card

    result = model_card(ctx.obj["db"], name, version)
    if as_json:
        print_json(result.to_dict())
        return
    text = result.to_huggingface() if hf else result.to_markdown() if markdown else result.to_text()
    click.echo(text, nl=False)


COMMANDS = [ask, card]
