"""`embodied-ai hw ...`: the hardware catalog and the user's own devices.

Peaks are dense (int8/int4 in TOPS); a vendor's "AI TOPS" headline is shown apart, marked sparse / +DLA.
"""
from __future__ import annotations

import click

from embodied_tui import units as fmt
from embodied_tui.commands.output import console, echo, plain, print_json, say
from embodied_tui.data.hardware import INTEGER_PRECISIONS, PRECISIONS

_SHOWN = ("fp32", "fp16", "int8")  # the precisions `hw list` has room for (of PRECISIONS)


def _table(title: str):
    from rich import box
    from rich.table import Table

    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=0, pad_edge=False,
                 show_edge=False)


def _memory(n: int | None) -> str:
    """A memory capacity, binary units: 8 GiB (the "8GB" of a datasheet)."""
    return fmt.nbytes(n, binary=True) if n else fmt.NA


def _headline(entry) -> str:
    if entry.headline_tops is None:
        return fmt.NA
    marks = [m for m, on in (("sparse", entry.headline_is_sparse), ("+DLA", entry.headline_includes_dla)) if on]
    at = entry.headline_precision  # "AI TOPS" are int8; Thor's headline is FP4 TFLOPS
    unit = "TOPS" if at == "int8" else f"TOPS {at}" if at in INTEGER_PRECISIONS else f"TFLOPS {at}"
    return f"{fmt.number(entry.headline_tops)} {unit}" + (f" ({', '.join(marks)})" if marks else "")


@click.group("hw")
def hw() -> None:
    """Devices to fit models to: list, show, add your own, import embodied-schemas."""


@hw.command("list")
@click.option("--type", "device_type", help="Only devices of this type: gpu, soc, npu, tpu or cpu.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (every field, plus the default mode's peaks).")
@click.pass_context
def list_cmd(ctx: click.Context, device_type: str | None, as_json: bool) -> None:
    """Every device: catalog first, then yours. Peaks are dense, at the default (fastest) power mode."""
    from embodied_tui.services.hardware import device_summary, list_devices

    rows = list_devices(ctx.obj["db"], device_type)
    if as_json:
        print_json([device_summary(entry, origin) for entry, origin in rows])
        return
    table = _table("devices: dense peaks at the default mode (TFLOPS; int8 TOPS)")
    # every catalog id (26 characters at most) stays whole at 80 columns; longer user ids fold onto a second line
    table.add_column("id", overflow="fold", min_width=26, max_width=28)
    table.add_column("type", no_wrap=True)
    table.add_column("mode", no_wrap=True, overflow="ellipsis", max_width=10)
    for col in ("W", "fp32", "fp16", "int8", "GB/s", "mem"):
        table.add_column(col, justify="right", no_wrap=True)
    for entry, origin in rows:
        mode = entry.default
        ident = entry.id if origin == "catalog" else f"{entry.id}*"
        table.add_row(*(plain(c) for c in (
            ident, entry.type, mode.name, fmt.number(mode.power_w),
            *(fmt.number(mode.peak_tflops.get(p)) for p in _SHOWN),
            fmt.number(mode.memory_bandwidth_gbps) if mode.memory_bandwidth_gbps else "none",
            _memory(entry.memory_bytes or entry.onchip_memory_bytes))))
    out = console()
    out.print(table)
    if any(origin != "catalog" for _, origin in rows):
        say(out, "* your devices (hw add / hw import / calibrate).  GB/s none: no DRAM.")
    elif rows:
        say(out, "GB/s none: no DRAM (on-chip memory only).  `embodied-ai hw show ID` for every mode.")


@hw.command("show")
@click.argument("device")
@click.option("--json", "as_json", is_flag=True, help="Print the device as JSON.")
@click.pass_context
def show(ctx: click.Context, device: str, as_json: bool) -> None:
    """One device with every power mode, how each peak was derived and where each figure comes from."""
    from embodied_tui.services.hardware import device_flags, device_summary, get_device, origins

    db = ctx.obj["db"]
    entry = get_device(db, device)
    origin = origins(db).get(entry.id, "user")
    flags = device_flags(db, entry.id)
    if as_json:
        data = device_summary(entry, origin)
        data["flags"] = flags
        print_json(data)
        return
    out = console()
    title = plain(entry.name, style="bold")
    title.append(plain(f"  ({entry.id}, {entry.type}, {entry.vendor}; {origin})"))
    out.print(title)
    if entry.memory_bytes:
        facts = [f"memory {_memory(entry.memory_bytes)}" + (f" {entry.memory_type}" if entry.memory_type else "")]
    else:
        facts = ["memory: no DRAM" + (f" ({entry.memory_type})" if entry.memory_type else "")]
    if entry.onchip_memory_bytes:
        facts.append(f"on-chip {_memory(entry.onchip_memory_bytes)}")
    if entry.cache_bytes:
        cache_bw = entry.default.cache_bandwidth_gbps
        facts.append(f"last-level cache {_memory(entry.cache_bytes)}"
                     + (f" at {fmt.number(cache_bw)} GB/s ({entry.default.name})" if cache_bw else ""))
    if entry.host:
        facts.append(f"paired with host {entry.host} over {fmt.number(entry.host_link_gbps)} GB/s (the link "
                     f"limits what crosses it)")
    elif entry.host_link_gbps:
        facts.append(f"host link {fmt.number(entry.host_link_gbps)} GB/s")
    facts.append(f"headline {_headline(entry)}")
    if entry.dla_int8_tops:
        facts.append(f"DLA {fmt.number(entry.dla_int8_tops)} TOPS dense")
    if entry.aliases:
        facts.append("aliases: " + ", ".join(entry.aliases))
    for line in facts:
        say(out, line)
    precisions = [p for p in PRECISIONS if any(p in m.peak_tflops for m in entry.power_modes)]
    table = _table("power modes, dense peaks (TFLOPS; int TOPS)")
    table.add_column("mode", no_wrap=True)
    for col in ("W", "MHz", "SMs", "GB/s", *precisions):
        table.add_column(col, justify="right")
    for m in entry.power_modes:
        name = m.name + (" *" if m.name == entry.default_mode else "")
        units = m.active_sms if m.active_sms is not None else m.cpu_cores
        clock = m.gpu_clock_mhz if m.gpu_clock_mhz is not None else m.cpu_clock_mhz
        table.add_row(*(plain(c) for c in (
            name, fmt.number(m.power_w), fmt.number(clock), fmt.NA if units is None else str(units),
            fmt.number(m.memory_bandwidth_gbps) if m.memory_bandwidth_gbps else "none",
            *(fmt.number(m.peak_tflops.get(p)) for p in precisions))))
    out.print(table)
    say(out, "* default mode.  SMs/MHz are cores/CPU MHz on CPUs.  GB/s none: no DRAM.")
    default = entry.default
    for p, how in default.derived.items():
        say(out, f"  {p} at {default.name} = {how}")
    for m in entry.power_modes:
        say(out, f"  {m.name} source: {m.source}")
        for note in m.notes:
            say(out, f"  {m.name} note: {note}")
    for key, text in entry.sources.items():
        say(out, f"source {key}: {text}")
    for note in entry.notes:
        say(out, f"note: {note}")
    for cal in entry.calibration:
        say(out, f"calibration {cal.precision}/{cal.runtime}: {fmt.calibration_numbers(cal.model_dump())} "
                 f"({cal.source})")
    for flag in flags:
        say(out, f"disagrees: {flag}")


@hw.command("add")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--replace", is_flag=True, help="Overwrite a device you added before with the same id.")
@click.pass_context
def add(ctx: click.Context, file: str, replace: bool) -> None:
    """Validate a device YAML (same schema as the catalog) and store it in your registry."""
    from embodied_tui.services.hardware import add_device_file, registry

    entry = add_device_file(ctx.obj["db"], file, replace=replace)
    echo(f"added {entry.id} ({entry.name}, {len(entry.power_modes)} power mode"
         f"{'s' if len(entry.power_modes) != 1 else ''}) to {registry(ctx.obj['db']).path}")


@hw.command("remove")
@click.argument("device_id")
@click.pass_context
def remove(ctx: click.Context, device_id: str) -> None:
    """Remove a device you added (catalog devices cannot be removed)."""
    from embodied_tui.services.hardware import remove_user_device

    remove_user_device(ctx.obj["db"], device_id)
    echo(f"removed {device_id}")


@hw.command("import")
@click.argument("source", type=click.Choice(["embodied-schemas"]))
@click.option("--json", "as_json", is_flag=True, help="Print the import report as JSON.")
@click.pass_context
def import_cmd(ctx: click.Context, source: str, as_json: bool) -> None:
    """Import another catalog's devices into your registry (their ids become aliases) and flag every figure of
    theirs that disagrees with our dense peaks for a device we also have."""
    from embodied_tui.services.hardware_import import import_embodied_schemas

    report = import_embodied_schemas(ctx.obj["db"])
    if as_json:
        print_json(report.as_dict())
        return
    out = console()
    say(out, f"{report.source} {report.version}: imported {len(report.imported)}, updated {len(report.updated)}, "
             f"matched {len(report.matched)} to the catalog, merged {len(report.merged)}, "
             f"skipped {len(report.skipped)}")
    for their, ours in report.matched.items():
        say(out, f"  same device: {their} = {ours}")
    for their, why in report.skipped.items():
        say(out, f"  skipped {their}: {why}")
    for line in report.warnings:
        say(out, f"  their loader: {line}")
    if report.flags:
        say(out, f"{len(report.flags)} figures disagree with ours (recorded; `hw show ID` lists them):")
        for flag in report.flags:
            say(out, f"  flag: {flag}")


COMMANDS = [hw]
