"""`embodied-ai measurement add|list`: measured latencies that calibrate the roofline of a device."""
from __future__ import annotations

import click

from embodied_tui import units as fmt
from embodied_tui.commands.output import echo, print_json
from embodied_tui.data.hardware import PRECISIONS


@click.group("measurement")
def measurement() -> None:
    """Measured latencies (yours or published) that calibrate `fit` for a device."""


@measurement.command("add")
@click.option("--model", "model", required=True, help="Registered model: NAME, NAME@VERSION or NAME@ALIAS.")
@click.option("--version", "version", type=int, help="Model version (default: latest).")
@click.option("--hw", "hw", required=True, help="Device id or name.")
@click.option("--mode", help="Power mode (default: the device's default mode).")
@click.option("--precision", required=True, help=f"{', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}.")
@click.option("--latency-ms", "latency_ms", type=float, required=True, help="Latency of one inference, ms.")
@click.option("--source", required=True, help="Where the number comes from (URL, paper, 'my bench 2024-05-01').")
@click.option("--runtime", default="unknown", show_default=True, help="tensorrt, onnxruntime-cpu, hailort, ...")
@click.option("--batch", type=int, default=1, show_default=True, help="Batch size of the measurement.")
@click.option("--timed", default="", help="What the time covers, e.g. 'GPU compute only' or 'end to end'.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored measurement as JSON.")
@click.pass_context
def add(ctx: click.Context, model, version, hw, mode, precision, latency_ms, source, runtime, batch, timed,
        as_json) -> None:
    """Store a measured latency of MODEL on a device; `fit` calibrates that device from it. Stored with who added it,
    from which host and when; never changed afterwards (a correction is another `measurement add`)."""
    from embodied_tui.services.fit import add_measurement

    m = add_measurement(ctx.obj["db"], model=model, version=version, hw=hw, mode=mode, precision=precision,
                        latency_ms=latency_ms, source=source, runtime=runtime, batch=batch, timed=timed)
    if as_json:
        print_json(m)
        return
    echo(f"added: {m.model} v{m.model_version} on {m.hardware} ({m.power_mode}, {m.precision}, {m.runtime}) "
         f"{fmt.number(m.latency_ms, 4)} ms")


@measurement.command("list")
@click.option("--model", "model", help="Only this model (NAME; NAME@VERSION or NAME@ALIAS: only that version).")
@click.option("--hw", "hw", help="Only this device id.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def list_(ctx: click.Context, model, hw, as_json) -> None:
    """Every stored measurement, oldest first, with who stored it and from which host."""
    from embodied_tui.data.names import split_ref
    from embodied_tui.services.fit import list_measurements
    from embodied_tui.services.models import get

    version = None
    if model is not None and split_ref(model)[1] is not None:
        record = get(model, None, ctx.obj["db"])
        model, version = record.name, record.version
    rows = list_measurements(ctx.obj["db"], model=model, hw=hw)
    if version is not None:
        rows = [m for m in rows if m.model_version == version]
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no measurements; add one with `embodied-ai measurement add` or `embodied-ai bench NAME`")
        return
    for m in rows:  # a measured latency reads as it was given (4 significant digits at most), not padded: 3 ms
        model = f"{m.model} v{m.model_version}" if m.model_version else m.model
        batch = f", batch {m.batch}" if m.batch != 1 else ""
        echo(f"{model} on {m.hardware} ({m.power_mode}, {m.precision}, {m.runtime}{batch}): "
             f"{fmt.number(m.latency_ms, 4)} ms")
        by = f"; by {m.lineage.user} on {m.lineage.host}" if m.lineage else ""
        echo(f"    source: {m.source}" + (f"; timed: {m.timed}" if m.timed else "") + f"; {m.measured_at}{by}")


COMMANDS = [measurement]
