"""`embodied-ai fit`, `calibrate` and `bench`: where a model will run, how fast, and this machine's own numbers."""
from __future__ import annotations

import click

from embodied_tui import units as fmt
from embodied_tui.commands.output import console, echo, plain, print_json, say
from embodied_tui.data.hardware import PRECISIONS
from embodied_tui.perf.fit_row import FitRow

_PRECISION_WORDS = f"{', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}"


@click.command("fit")
@click.argument("name")
@click.option("--hw", "hw", help="Device id or name (default: every device).")
@click.option("--mode", help="Power mode (default: every mode).")
@click.option("--precision", help=f"{_PRECISION_WORDS} (default: every precision the device states).")
@click.option("--runtime", help="Use the calibration of this runtime (e.g. onnxruntime-cpu, tensorrt).")
@click.option("--version", "version", type=int, help="Model version (default: latest).")
@click.option("--all", "show_all", is_flag=True, help="Show every precision, not only each mode's fastest.")
@click.option("--layers", is_flag=True, help="Include every layer's roofline in the JSON rows.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of rows.")
@click.pass_context
def fit(ctx: click.Context, name: str, hw, mode, precision, runtime, version, show_all, layers, as_json) -> None:
    """Predict NAME's latency on devices with a calibrated roofline, fastest first.

    Per layer t = max(2 (MACs + K outputs) / (eta_c P), bytes / (eta_m BW)); model t = t0 + n_ops t_op + sum.
    t_op (per operator launch) and K (MACs per output) are 0 unless fitted from six or more measurements. The pure
    roofline (eta = 1, no overheads) is shown as a lower bound. Bytes are unfused, at the row's precision; the
    prediction charges optimising runtimes only what epilogue fusion leaves."""
    from embodied_tui.services.fit import fit_rows

    rows = fit_rows(ctx.obj["db"], name, hw, mode, precision, runtime=runtime, version=version, with_layers=layers)
    if as_json:
        print_json([r.to_dict() for r in rows])
        return
    from rich import box
    from rich.table import Table

    shown = rows if (show_all or precision) else _fastest_per_mode(rows)
    out = console()
    table = Table(title=plain(f"{name}: latency per inference in ms, fastest first"), title_justify="left",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=0)
    # fmt.ms: 7 characters at most below 1000 ms (0.00177, 1.63e-5)
    widths = {"mode": 8, "prec": 4, "W": 3, "pred": 7, "floor": 7, "meas": 7, "bound": 9, "fit": 3}
    longest = max((len(fmt.safe_text(r.hardware)) for r in shown), default=8)
    widths = {"hardware": max(12, min(longest, out.width - sum(widths.values()) - len(widths) - 1)), **widths}
    for col, width in widths.items():
        table.add_column(col, justify="right" if col in ("W", "pred", "floor", "meas") else "left", no_wrap=True,
                         overflow="ellipsis", width=width)
    for r in shown:
        table.add_row(*(plain(c) for c in (
            r.hardware, r.power_mode, r.precision, fmt.number(r.power_w),
            fmt.ms(r.predicted_latency_ms), fmt.ms(r.roofline_latency_ms), fmt.ms(r.measured_latency_ms),
            r.bound or fmt.NA, {True: "yes", False: "NO", None: "?"}[r.fits_memory])))
    out.print(table)
    hidden = len(rows) - len(shown)
    if hidden:
        say(out, f"{hidden} slower precision rows hidden (--all shows them; --json gives every field)")
    say(out, "pred = calibrated roofline; floor = pure roofline (eta = 1, no overheads), a lower bound; meas = "
             "measured median; fit = weights + peak activations fit the device memory (on-chip for NPUs)")
    for r in rows:
        if r.predicted_latency_ms is None and r.reason and (precision or hw):
            say(out, f"{r.hardware} {r.power_mode} {r.precision}: {r.reason}")
    best = next((r for r in rows if r.predicted_latency_ms is not None), None)
    if best and best.top_layers:
        say(out, f"slowest layers on {best.hardware} ({best.power_mode}, {best.precision}): " + "; ".join(
            f"{layer.name} {fmt.ms(layer.predicted_ms)} ms ({layer.bound})" for layer in best.top_layers[:3]))
    kinds = sorted({(r.calibration, fmt.calibration_numbers(r, launches=False), r.calibration_source)
                    for r in shown if r.calibration != "none"})
    for kind, numbers, source in kinds[:4]:
        say(out, f"[{kind}] {numbers}: {source}")


def _fastest_per_mode(rows: list[FitRow]) -> list[FitRow]:
    """One row per device x power mode: its fastest precision (rows are already sorted fastest first)."""
    seen, out = set(), []
    for r in rows:
        key = (r.hardware, r.power_mode)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


@click.command("calibrate")
@click.option("--threads", type=click.IntRange(min=1),
              help="Threads for the microbenchmarks and onnxruntime (default: all allowed).")
@click.option("--models", help="Comma-separated zoo models to time (default: the calibration set, "
                               "mlp_policy ... yolo_style_detector; fewer is faster but pins eta and t0 less, and "
                               "below six only eta and t0 are fitted, without t_op and K).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def calibrate(ctx: click.Context, threads, models, as_json) -> None:
    """Measure this machine (matmul FLOP/s, copy/triad and cache bandwidth), time a few zoo models with onnxruntime
    and fit the roofline's efficiencies; stores the host as your device host-<cpu> (alias `host`), which `hw list`,
    `hw show` and `fit` then show. Running it again replaces that device."""
    from embodied_tui.errors import UserError
    from embodied_tui.services.host import CALIBRATION_SET, calibrate_host

    names = CALIBRATION_SET if models is None else [m.strip() for m in models.split(",") if m.strip()]
    if not names:
        raise UserError(f"--models names no model; give zoo names such as {', '.join(CALIBRATION_SET[:3])}")

    def progress(stage: str, frac: float) -> None:
        if not as_json and stage != "done":
            echo(f"  {stage}...", err=True)

    result = calibrate_host(ctx.obj["db"], threads=threads, models=names, progress=progress)
    if as_json:
        print_json(result)
        return
    dev = result["device"]
    echo(f"{dev['id']}: {dev['name']}")
    echo(f"  fp32 peak {fmt.number(result['peak_gflops'])} GFLOP/s (best matmul), memory "
         f"{fmt.number(result['bandwidth_gbps'])} GB/s (copy {fmt.number(result['copy_gbps'])}, triad "
         f"{fmt.number(result['triad_gbps'])}), {result['threads']} threads")
    if result["cache"]:
        echo(f"  last-level cache {fmt.nbytes(result['cache']['bytes'], binary=True)} at "
             f"{fmt.number(result['cache']['bandwidth_gbps'])} GB/s (triad within it)")
    for name, why in result["skipped"].items():
        echo(f"  skipped {name}: {why}")
    cal = result["calibration"]
    if cal is None:
        echo("  no calibration models available: efficiencies stay at the CPU defaults")
    else:
        echo(f"  fitted {fmt.calibration_numbers(cal)} (median error over {cal['n_points']} models)")
        for p in result["points"]:
            echo(f"    {p['model']:<22} measured {fmt.ms(p['measured_ms']):>7} ms  predicted "
                 f"{fmt.ms(p['predicted_ms']):>7} ms  ({p['error']:+.0%}, {p['bound']})")
    echo(f"  took {fmt.number(result['seconds'])} s; stored as your device {dev['id']}:")
    echo(f"  `embodied-ai hw show {dev['id']}` shows it, `embodied-ai fit NAME --hw {dev['id']}` uses it")


@click.command("bench")
@click.argument("name")
@click.option("--runtime", type=click.Choice(["onnxruntime", "torch"]),
              help="Default: onnxruntime for ONNX files, torch otherwise.")
@click.option("--threads", type=int, help="Intra-op threads (default: all allowed).")
@click.option("--version", "version", type=int, help="Model version (default: latest).")
@click.option("--trust-code", is_flag=True, help="Allow loading a full pickle (runs its code).")
@click.option("--no-save", is_flag=True, help="Do not store the result as a measurement.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def bench(ctx: click.Context, name, runtime, threads, version, trust_code, no_save, as_json) -> None:
    """Time NAME on this machine's CPU (warm-up, repeated runs; median and p90) and store it as a measurement."""
    from embodied_tui.services.host import bench_model

    result = bench_model(ctx.obj["db"], name, runtime, version=version, threads=threads, trust_code=trust_code,
                         save=not no_save)
    if as_json:
        print_json(result)
        return
    m, b = result["measurement"], result["bench"]
    echo(f"{m['model']} v{m['model_version']} on {m['hardware']}: median {fmt.ms(b['median_ms'])} ms, "
         f"p90 {fmt.ms(b['p90_ms'])} ms, min {fmt.ms(b['min_ms'])} ms over {b['runs']} runs "
         f"({b['runtime']} {b['runtime_version']}, {b['threads']} threads)"
         + ("" if result["saved"] else " [not saved]"))


COMMANDS = [fit, calibrate, bench]
