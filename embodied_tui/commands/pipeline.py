"""`embodied-ai pipeline ...`: will a multi-stage policy (vision encoder, LLM prefill and decode, action head) hold its
control rate on a device? The arithmetic is ``services.pipeline``'s, the stored pipelines ``services.pipelines``';
this module parses and prints."""
from __future__ import annotations

import click

from embodied_tui import units as fmt
from embodied_tui.commands.output import console, plain, print_json, say
from embodied_tui.data.hardware import PRECISIONS


@click.group("pipeline")
def pipeline() -> None:
    """Multi-stage policies (YAML specs): per-stage time, total, control rate, memory. Store specs with
    `register` (versions like models'), then `list`, `show`, `fit NAME` and `remove`."""


@pipeline.command("fit")
@click.argument("ref")
@click.option("--hw", "hw", required=True, help="Device id or name.")
@click.option("--mode", help="Power mode (default: the spec's power_mode, else the device's default).")
@click.option("--precision", help=f"Default weight format of the stages: {', '.join(PRECISIONS)} (default: the "
                                  "spec's, else fp16; a stage's own precision wins).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def fit_cmd(ctx: click.Context, ref: str, hw: str, mode, precision, as_json: bool) -> None:
    """Fit a pipeline on a device: REF is a spec file (YAML) or a stored pipeline NAME or NAME@V. Prints each stage's
    ms, bound and share, the total per control period, the rate it holds against the rate it needs, the memory
    verdict, and the cheapest single changes that would meet the rate.

    total_ms = sum of stage ms / chunk (a stage with chunk H runs every H control steps); rate_hz = 1000 / total_ms.
    Config stages: prefill/encode compute-bound, decode bandwidth-bound rooflines; registered models: `fit`'s."""
    from embodied_tui.services.pipelines import fit

    result = fit(ctx.obj["db"], ref, hw, mode=mode, precision=precision)
    if as_json:
        print_json(result.to_dict())
        return
    from rich import box
    from rich.table import Table

    out = console()
    table = Table(title=plain(f"{result.name} on {result.hardware} ({result.power_mode}, {result.precision})"),
                  title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for col, right in (("stage", False), ("phase", False), ("prec", False), ("tokens", True), ("x", True),
                       ("ms", True), ("floor", True), ("share", True), ("bound", False)):
        table.add_column(col, justify="right" if right else "left", no_wrap=True, overflow="ellipsis",
                         max_width=22 if col == "stage" else None)
    for s in result.stages:
        runs = f"{s.repeat}" + (f"/{s.chunk}" if s.chunk > 1 else "")
        table.add_row(*(plain(c) for c in (
            s.name, s.phase, s.precision, fmt.exact(s.tokens), runs, fmt.ms(s.ms), fmt.ms(s.roofline_ms),
            fmt.percent(s.share, 1.0), s.bound or fmt.NA)))
    out.print(table)
    say(out, "x = repeat (/chunk: runs once every chunk control steps); floor = pure roofline (a lower bound)")
    if result.total_ms is None:
        say(out, f"total: unknown ({result.reason})")
    else:
        verdict = "meets" if result.meets_rate else "MISSES"
        say(out, f"total {fmt.ms(result.total_ms)} ms per control period -> {fmt.number(result.rate_hz)} Hz; needs "
                 f"{fmt.number(result.required_rate_hz)} Hz: {verdict} (margin {fmt.percent(result.margin, 1.0)}); "
                 f"one run of every stage {fmt.ms(result.latency_ms)} ms")
    m = result.memory_fit
    fits = {True: "fits", False: "DOES NOT FIT", None: "unknown"}[m.fits]
    def size(n) -> str:
        return fmt.nbytes(n, binary=True) if n is not None else fmt.NA

    say(out, f"memory: weights {size(m.weight_bytes)} + activations {size(m.activation_bytes)} + KV "
             f"{size(m.kv_cache_bytes)} + reserve {size(m.reserve_bytes)} = {size(m.total_bytes)} of "
             f"{size(m.device_bytes)} ({m.note}): {fits}")
    if result.changes:
        say(out, "changes that meet the rate (each re-fitted), cheapest kind first:")
        for c in result.changes:
            say(out, f"  {c.kind:<10} {c.description}: {fmt.ms(c.total_ms)} ms, {fmt.number(c.rate_hz)} Hz")
    elif result.meets_rate is False:
        say(out, "no single change (precision, steps, tokens, resolution, power mode, device) meets the rate")


@pipeline.command("register")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--name", "-n", help="Registry name (default: the spec's name).")
@click.option("--json", "as_json", is_flag=True, help="Print {status, pipeline} as JSON.")
@click.pass_context
def register_cmd(ctx: click.Context, spec: str, name, as_json: bool) -> None:
    """Store the pipeline SPEC as the next version of its name. Config stages' config.json files are stored by
    content (the stored pipeline no longer needs them); registered-model stages must name a registered model and use
    its latest version when fitted."""
    from embodied_tui.services.pipelines import register

    stored, status = register(ctx.obj["db"], spec, name=name)
    if as_json:
        print_json({"status": status, "pipeline": _summary(stored)})
        return
    words = {"added": "registered", "new_version": "registered a new version of", "unchanged": "unchanged:"}
    say(console(), f"{words[status]} {stored.name} v{stored.version} ({len(stored.spec.stages)} stages, "
                   f"{fmt.number(stored.spec.required_rate_hz)} Hz)")


def _summary(p) -> dict:
    return {"name": p.name, "version": p.version, "rate_hz": p.spec.required_rate_hz, "registered_at": p.registered_at,
            "source": p.source, "stages": [s.name for s in p.spec.stages]}


@pipeline.command("list")
@click.option("--all-versions", "-a", is_flag=True, help="Every version, not only the latest of each name.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def list_cmd(ctx: click.Context, all_versions: bool, as_json: bool) -> None:
    """Stored pipelines (latest version of each): name, version, required rate, stages."""
    from embodied_tui.services.pipelines import list_pipelines

    found = list_pipelines(ctx.obj["db"], all_versions=all_versions)
    if as_json:
        print_json([_summary(p) for p in found])
        return
    out = console()
    if not found:
        say(out, "no pipelines stored; add one with `embodied-ai pipeline register SPEC`")
        return
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for col, right in (("name", False), ("v", True), ("rate Hz", True), ("stages", False)):
        table.add_column(col, justify="right" if right else "left", no_wrap=True, overflow="ellipsis")
    for p in found:
        table.add_row(*(plain(c) for c in (p.name, str(p.version), fmt.number(p.spec.required_rate_hz),
                                           ", ".join(s.name for s in p.spec.stages))))
    out.print(table)


@pipeline.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the stored pipeline (spec and configs) as JSON.")
@click.pass_context
def show_cmd(ctx: click.Context, ref: str, as_json: bool) -> None:
    """One stored pipeline, NAME or NAME@V: its stages and where they come from."""
    from embodied_tui.services.pipelines import show, versions_of

    p = show(ctx.obj["db"], ref)
    if as_json:
        print_json(p.to_dict())
        return
    out = console()
    versions = ", ".join(map(str, versions_of(ctx.obj["db"], p.name)))
    say(out, f"{p.name} v{p.version} of {versions}; registered {p.registered_at} from {p.source}")
    say(out, f"rate {fmt.number(p.spec.required_rate_hz)} Hz (period {fmt.ms(1000 / p.spec.required_rate_hz)} ms), "
             f"precision {p.spec.precision or 'fp16 (default)'}")
    for s in p.spec.stages:
        source = f"model {s.model} (latest version)" if s.model else f"config {s.config} (stored)"
        extra = "".join(f", {k} {v}" for k, v in (("tokens", s.tokens), ("context", s.context or None),
                                                    ("repeat", s.repeat if s.repeat > 1 else None),
                                                    ("chunk", s.chunk if s.chunk > 1 else None)) if v is not None)
        say(out, f"  {s.name}: {source}, {s.phase}{extra}")


@pipeline.command("remove")
@click.argument("ref")
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
@click.pass_context
def remove_cmd(ctx: click.Context, ref: str, yes: bool) -> None:
    """Remove a stored pipeline (every version), or one version with NAME@V."""
    from embodied_tui.commands.output import confirm
    from embodied_tui.errors import UserError
    from embodied_tui.services.pipelines import check_stored, remove

    check_stored(ctx.obj["db"], ref)  # NotFound before asking
    if not yes:
        answer = confirm(f"remove pipeline {ref}?")
        if answer is None:
            raise UserError(f"not removing pipeline {ref}: no answer on standard input; pass --yes to remove without "
                            f"asking")
        if not answer:
            say(console(), "nothing removed")
            ctx.exit(1)
    count = remove(ctx.obj["db"], ref)
    say(console(), f"removed {count} version{'s' * (count != 1)} of pipeline {ref.rpartition('@')[0] or ref}")


COMMANDS = [pipeline]
