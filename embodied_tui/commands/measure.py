"""`embodied-ai calibrate` and `bench`: this machine's own numbers (peaks, efficiencies, timed models)."""
from __future__ import annotations

import click

from embodied_tui import units as fmt
from embodied_tui.commands.output import echo, print_json


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


COMMANDS = [calibrate, bench]
