"""How well does the calibrated roofline predict real latency on this machine?

    .venv/bin/python benchmarks/fit_accuracy.py [--models resnet_tiny,resnet18] [--rounds 3] [--threads N]
                                                [--runtime onnxruntime|torch] [--json]

1. Writes each zoo model (small demo models and torchvision-exact references at 224) to a file the runtime can run
   (ONNX for onnxruntime, TorchScript for torch) and registers it in a throw-away registry (the real analyser).
2. Calibrates the host exactly as `embodied-ai calibrate` does: matmul/copy/triad microbenchmarks, then eta and t0
   fitted to the calibration set (``services.host.CALIBRATION_SET``, timed separately from step 3).
3. Times every model ``--rounds`` times, interleaved (round 1 of every model, then round 2 ...), and keeps the fastest
   run of all rounds: on a machine shared with other work it is the closest to the model's own time (calibration
   fits fastest runs too). The CPU pressure (Linux PSI) of each round is printed; well above 0 means other work
   shared the machine, and medians (also in --json) are inflated.
4. Predicts each model with `fit` on the host (host calibration only: no measurement of the model itself is used),
   and again leave-one-out: the efficiencies, t0, t_op and K fitted to every *other* model's measured time.
Prints per model: MACs, measured, predicted, ratio and bound; then median |error|, worst ratio and Spearman rank
correlation for both predictions. Goal: median error < 25 %, Spearman >= 0.9.

``--part published`` (or ``both``, the default) scores the TensorRT engine model against the published latencies
(``data/published/latency.csv``, ``perf.published_fit``), leave-one-source-out: every row of one source_url is held
out, the model is fitted on the rest and predicts the held-out rows. Per device family and overall: median and 90th
percentile of |predicted / measured - 1|, the worst ratio, and the share within +-10 % and +-25 %, for the documented
defaults (what `fit` used before: eta 0.3/0.6, t0 2 ms on Jetson, epilogue fusion) and for the fitted engine model,
then the ``WORST_ROWS`` held-out rows farthest off. No timing: seconds, on any machine.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from embodied_tui.data.store import Registry  # noqa: E402
from embodied_tui.perf.bench import bench_file, default_runtime  # noqa: E402
from embodied_tui.perf.calibrate import Point, default_threads, fit_efficiency  # noqa: E402
from embodied_tui.perf.roofline import default_efficiency, fusion_for, layer_times, model_work, predicted_seconds  # noqa: E402
from embodied_tui.services import fit as fit_service  # noqa: E402
from embodied_tui.services import host as host_service  # noqa: E402
from embodied_tui.services.models import register  # noqa: E402

MODELS = ("mlp_policy", "lstm_policy", "gru_policy", "small_vit", "resnet_tiny", "mobilenet_tiny", "unet_small",
          "yolo_style_detector", "mobilenet_v3_small", "mobilenet_v2", "efficientnet_b0", "regnet_y_400mf",
          "resnet18")


def ranks(values: list[float]) -> list[float]:
    """Ranks from 1, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    var = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / var if var else float("nan")


def summary(measured: list[float], predicted: list[float]) -> dict:
    ratios = [p / m for p, m in zip(predicted, measured)]
    errors = [abs(r - 1) for r in ratios]
    worst = max(ratios, key=lambda r: max(r, 1 / r))
    return {"median_abs_error": statistics.median(errors), "worst_ratio": worst,
            "spearman": spearman(measured, predicted), "n": len(ratios)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--runtime", choices=("onnxruntime", "torch"), default="onnxruntime")
    parser.add_argument("--min-seconds", type=float, default=0.3, help="timed seconds per model per round")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--part", choices=("host", "published", "both"), default="both")
    args = parser.parse_args()
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    published = published_report(say) if args.part in ("published", "both") else None
    if args.part == "published":
        if args.json:
            print(json.dumps({"published": published}, indent=2))
        return 0
    names = [n for n in args.models.split(",") if n]
    threads = args.threads or default_threads()
    from embodied_tui.analysis.zoo import BUILDERS

    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        print(f"unknown zoo models: {', '.join(unknown)}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="embodied-ai-fit-accuracy-") as tmp:
        db = Registry(Path(tmp) / "registry.json")
        records = {}
        for name in names:
            builder = BUILDERS[name]
            path, _ = host_service.save_model_file(builder.build(), builder.example_inputs(), Path(tmp), name,
                                                   args.runtime)
            record, _ = register(path, name=name, db=db, input_shape=[list(s) for s in builder.input_shapes])
            records[name] = record
        say(f"registered {len(records)} models ({time.perf_counter() - start:.1f} s); calibrating the host ...")
        cal = host_service.calibrate_host(db, threads=threads, runtime=args.runtime)
        host = cal["device"]["id"]
        c = cal["calibration"]
        say(f"{host}: {cal['peak_gflops']:.0f} GFLOP/s fp32, {cal['bandwidth_gbps']:.1f} GB/s DRAM, cache "
            f"{(cal['cache'] or {}).get('bandwidth_gbps', 0):.0f} GB/s; eta_c {c['eta_compute']:.3f}, eta_m "
            f"{c['eta_memory']:.3f}, t0 {c['overhead_ms']:.3f} ms, t_op {c['op_overhead_ms'] * 1e3:.2f} us, "
            f"K {c['macs_per_output_half']:.3g} (calibration-set error {c['fit_error']:.1%})")

        measured: dict[str, list[float]] = {n: [] for n in names}
        medians: dict[str, list[float]] = {n: [] for n in names}
        pressures = []
        for rnd in range(args.rounds):
            before = _pressure()
            t_round = time.perf_counter()
            for name, record in records.items():
                result = bench_file(record.path, record.format, record.input_shapes, record.input_dtypes,
                                    runtime=args.runtime or default_runtime(record.format), threads=threads,
                                    warmup=2, min_runs=5, min_seconds=args.min_seconds)
                measured[name].append(result.min_ms)
                medians[name].append(result.median_ms)
            after = _pressure()
            wall = time.perf_counter() - t_round
            pressures.append(None if before is None or after is None else (after - before) / 1e6 / wall)
            say(f"round {rnd + 1}: {wall:.1f} s, CPU pressure {_fmt_pressure(pressures[-1])}")
        best = {n: min(v) for n, v in measured.items()}

        # predictions from the host calibration alone
        rows = {}
        for name in names:
            row = fit_service.fit_rows(db, name, hw=host, precision="fp32")[0]
            rows[name] = row
        # leave-one-out: eta and t0 fitted to every other model's time
        ctx = fit_service.FitContext.open(db)
        entry = ctx.entry(host)
        target, _ = ctx.target(entry, entry.default, "fp32")
        label = f"{args.runtime}-cpu"
        points = {}
        for name, record in records.items():
            work, _ = model_work(record, ctx.layer_costs(record), "fp32", fusion_for(label))
            points[name] = Point(name, layer_times(work, target), best[name])
        loo = {}
        for name in names:
            eff = fit_efficiency([p for n, p in points.items() if n != name], default_efficiency("cpu"),
                                 source="leave-one-out", runtime=label)
            loo[name] = predicted_seconds(points[name].times, eff) * 1e3
        all_eff = fit_efficiency(list(points.values()), default_efficiency("cpu"), source="all", runtime=label)

    table = []
    for name in names:
        r = rows[name]
        table.append({"model": name, "macs": r.macs, "measured_ms": round(best[name], 4),
                      "rounds_min_ms": [round(v, 4) for v in measured[name]],
                      "rounds_median_ms": [round(v, 4) for v in medians[name]],
                      "predicted_ms": r.predicted_latency_ms, "roofline_ms": r.roofline_latency_ms,
                      "ratio": round(r.predicted_latency_ms / best[name], 3), "bound": r.bound,
                      "loo_ms": round(loo[name], 4), "loo_ratio": round(loo[name] / best[name], 3),
                      "in_calibration_set": name in host_service.CALIBRATION_SET})
    meas = [t["measured_ms"] for t in table]
    # the same models timed by calibrate and by this script: a ratio far from 1 means the machine ran at another
    # speed during calibration than during these rounds (other work, clocks), which no model can predict
    at_calibration = {p["model"]: p["measured_ms"] for p in cal["points"]}
    drift = [best[n] / at_calibration[n] for n in names if n in at_calibration]
    result = {"host": host, "threads": threads, "runtime": args.runtime, "rounds": args.rounds,
              "cpu_pressure": pressures, "calibration": cal["calibration"],
              "speed_drift": {"median": statistics.median(drift), "min": min(drift), "max": max(drift)}
              if drift else None,
              "all_models_fit": {"eta_compute": all_eff.eta_compute, "eta_memory": all_eff.eta_memory,
                                 "overhead_ms": all_eff.overhead_ms, "op_overhead_ms": all_eff.op_overhead_ms,
                                 "macs_per_output_half": all_eff.macs_per_output_half, "fit_error": all_eff.fit_error},
              "calibrated": summary(meas, [t["predicted_ms"] for t in table]),
              "leave_one_out": summary(meas, [t["loo_ms"] for t in table]),
              "held_out_calibrated": summary([t["measured_ms"] for t in table if not t["in_calibration_set"]],
                                             [t["predicted_ms"] for t in table if not t["in_calibration_set"]])
              if sum(not t["in_calibration_set"] for t in table) >= 2 else None,
              "models": table, "seconds": round(time.perf_counter() - start, 1), "published": published}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"\n{'model':<22}{'GMACs':>8}{'meas ms':>10}{'pred ms':>10}{'ratio':>7}{'LOO ms':>10}{'ratio':>7}  bound")
    for t in table:
        mark = "*" if t["in_calibration_set"] else " "
        print(f"{t['model'] + mark:<22}{t['macs'] / 1e9:>8.3f}{t['measured_ms']:>10.3f}{t['predicted_ms']:>10.3f}"
              f"{t['ratio']:>7.2f}{t['loo_ms']:>10.3f}{t['loo_ratio']:>7.2f}  {t['bound']}")
    print("* in the calibration set of `embodied-ai calibrate`")
    for key, label_ in (("calibrated", "host calibration"), ("held_out_calibrated", "  held-out models only"),
                        ("leave_one_out", "leave-one-out")):
        s = result[key]
        if s:
            print(f"{label_:<24} median |error| {s['median_abs_error']:.1%}, worst ratio {s['worst_ratio']:.2f}, "
                  f"Spearman {s['spearman']:.3f} (n={s['n']})")
    if drift:
        print(f"speed drift: the calibration set timed here / timed by calibrate = median {statistics.median(drift):.2f}"
              f" (min {min(drift):.2f}, max {max(drift):.2f}); far from 1, the machine changed speed in between")
    print(f"CPU pressure per round: {', '.join(_fmt_pressure(p) for p in pressures)}; {result['seconds']} s in all")
    return 0


WORST_ROWS = 8  # held-out rows listed by how far their prediction is off


def published_report(say) -> dict:
    """Leave-one-source-out scores of the defaults and of the engine model on the published rows (module doc)."""
    from embodied_tui.perf.published_fit import build_cases, error_summary, leave_out

    cases, skipped = build_cases()
    held_out = leave_out(cases, lambda c: c.source)
    groups = sorted({c.family if c.engine else c.device_type for c in cases})
    out = {"rows": len(cases), "skipped": len(skipped), "families": {}}
    say(f"\npublished latencies: {len(cases)} usable rows ({len(skipped)} skipped), "
        f"{len({c.source for c in cases})} sources; leave-one-source-out")
    say(f"{'family':<14}{'n':>4}  {'model':<9}{'median':>8}{'p90':>8}{'worst':>8}{'<=10%':>7}{'<=25%':>7}")
    for group in [*groups, "all"]:
        mine = [c for c in cases if group == "all" or (c.family if c.engine else c.device_type) == group]
        meas = [c.measured_ms for c in mine]
        scores = {"defaults": error_summary(meas, [c.default_ms for c in mine]),
                  "engine_model": error_summary(meas, [held_out[c.id] for c in mine])}
        out["families"][group] = scores
        for name, sc in scores.items():
            worst = "n/a" if sc["worst_ratio"] is None else f"{sc['worst_ratio']:.2f}"
            say(f"{group if name == 'defaults' else '':<14}{sc['n'] if name == 'defaults' else '':>4}  {name[:9]:<9}"
                f"{sc['median_abs_error']:>8.1%}{sc['p90_abs_error']:>8.1%}{worst:>8}{sc['within_10pct']:>7.0%}"
                f"{sc['within_25pct']:>7.0%}")
    worst = sorted((c for c in cases if held_out.get(c.id)),
                   key=lambda c: -abs(math.log(held_out[c.id] / c.measured_ms)))[:WORST_ROWS]
    say(f"worst {len(worst)} held-out rows (predicted / measured):")
    for c in worst:
        say(f"  {held_out[c.id] / c.measured_ms:5.2f}  {c.id} ({c.scope}, measured {c.measured_ms:g} ms, "
            f"predicted {held_out[c.id]:.3g} ms)")
    out["worst_rows"] = [{"id": c.id, "scope": c.scope, "measured_ms": c.measured_ms,
                          "predicted_ms": held_out[c.id]} for c in worst]
    return out


def _pressure() -> int | None:
    from embodied_tui.perf.bench import cpu_pressure_us

    return cpu_pressure_us()


def _fmt_pressure(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.0%}"


if __name__ == "__main__":
    sys.exit(main())
