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
@click.option("--device", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True,
              help="gpu: measure CUDA GPU 0 (fp32/fp16 matmul, copy bandwidth), time the models on it and store it "
                   "as your device gpu-<name>; without a CUDA GPU it says so and calibrates the CPU.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def calibrate(ctx: click.Context, threads, models, device, as_json) -> None:
    """Measure this machine (matmul FLOP/s, copy/triad and cache bandwidth), time a few zoo models with onnxruntime
    and fit the roofline's efficiencies; stores the host as your device host-<cpu> (alias `host`), which `hw list`,
    `hw show` and `fit` then show. Running it again replaces that device. With --device gpu the same for CUDA GPU 0
    (device gpu-<name>, alias `this-gpu`; models timed with onnxruntime's CUDA provider, else torch CUDA)."""
    from embodied_tui.errors import UserError
    from embodied_tui.services.host import CALIBRATION_SET, calibrate_host

    names = CALIBRATION_SET if models is None else [m.strip() for m in models.split(",") if m.strip()]
    if not names:
        raise UserError(f"--models names no model; give zoo names such as {', '.join(CALIBRATION_SET[:3])}")

    def progress(stage: str, frac: float) -> None:
        if not as_json and stage != "done":
            echo(f"  {stage}...", err=True)

    if device == "gpu":
        from embodied_tui.perf.gpu import probe

        available = probe()
        if available.torch_cuda:
            _calibrate_gpu(ctx, names, available, progress, as_json)
            return
        from embodied_tui.perf.gpu import choose_device

        echo(choose_device("gpu", "torch", available).reason, err=True)
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
    _echo_fitted(result, "CPU")


def _calibrate_gpu(ctx: click.Context, names, available, progress, as_json: bool) -> None:
    from embodied_tui.services.host import calibrate_gpu

    result = calibrate_gpu(ctx.obj["db"], models=names, available=available, progress=progress)
    if as_json:
        print_json(result)
        return
    dev, peaks = result["device"], result["peak_tflops"]
    echo(f"{dev['id']}: {result['gpu']} ({result['sm_count']} SMs)")
    echo(f"  matmul peak fp32 {fmt.number(peaks.get('fp32'))} TFLOPS (TF32 off), fp16 "
         f"{fmt.number(peaks.get('fp16'))} TFLOPS; device copy {fmt.number(result['bandwidth_gbps'])} GB/s")
    _echo_fitted(result, "GPU", runtime=result["runtime"], provider=result["provider"])


def _echo_fitted(result: dict, kind: str, *, runtime: str = "", provider: str = "") -> None:
    """The part of `calibrate`'s text the CPU and the GPU share: skipped models, the fitted calibration (named with
    ``runtime`` and ``provider`` where given) with each model's measured (fastest run) and predicted ms, and where
    the device is stored."""
    dev = result["device"]
    for name, why in result["skipped"].items():
        echo(f"  skipped {name}: {why}")
    cal = result["calibration"]
    if cal is None:
        echo(f"  no calibration models available: efficiencies stay at the {kind} defaults")
    else:
        named = f" for {runtime}" if runtime else ""
        within = f"{provider}; " if provider else ""
        echo(f"  fitted {fmt.calibration_numbers(cal)}{named} ({within}median error over {cal['n_points']} models)")
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
@click.option("--device", type=click.Choice(["auto", "gpu", "cpu"]), default="auto", show_default=True,
              help="auto: the CUDA GPU when the runtime can reach one (onnxruntime's CUDA/TensorRT provider, "
                   "torch.cuda), else the CPU; gpu: the GPU, or the CPU with a one-line notice.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def bench(ctx: click.Context, name, runtime, threads, version, trust_code, no_save, device, as_json) -> None:
    """Time NAME on this machine (warm-up, repeated runs; median and p90) and store it as a measurement: on the GPU
    with CUDA events (torch) or IO binding (onnxruntime), else on the CPU."""
    from embodied_tui.services.host import bench_model

    result = bench_model(ctx.obj["db"], name, runtime, version=version, threads=threads, trust_code=trust_code,
                         save=not no_save, device=device)
    notice = result["device_choice"]["notice"]
    if notice:
        echo(notice, err=True)
    if as_json:
        print_json(result)
        return
    m, b = result["measurement"], result["bench"]
    where = (f"{b['provider']} on {b['gpu_name'] or 'the GPU'}" if b["device"] == "gpu"
             else f"{b['threads']} threads")
    echo(f"{m['model']} v{m['model_version']} on {m['hardware']}: median {fmt.ms(b['median_ms'])} ms, "
         f"p90 {fmt.ms(b['p90_ms'])} ms, min {fmt.ms(b['min_ms'])} ms over {b['runs']} runs "
         f"({b['runtime']} {b['runtime_version']}, {where})"
         + ("" if result["saved"] else " [not saved]"))


COMMANDS = [calibrate, bench]
