"""Counts and speed: embodied-ai against thop, fvcore, torchinfo and torch's FlopCounterMode, in the same run.

    .venv/bin/python benchmarks/analysis.py [--models resnet18,vit_b_16] [--repeat 3]

For each reference model (real CPU weights, 1x3x224x224) every tool counts the same in-memory model; the table shows
each tool's MACs (FlopCounterMode's FLOPs / 2), its error against the published reference, and its best-of-N time as a
ratio to ours. Then, from files: our analysis of a TorchScript and an ExportedProgram file against merely loading it.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from embodied_tui.analysis import zoo  # noqa: E402
from embodied_tui.analysis.api import analyze_file  # noqa: E402
from embodied_tui.analysis.torch.analyze import analyze_module  # noqa: E402

PUBLISHED = {"resnet18": 1.814e9, "resnet50": 4.089e9, "mobilenet_v2": 0.301e9, "efficientnet_b0": 0.386e9,
             "vit_b_16": 17.564e9}


def best(fn, repeat: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
    return min(times), value


def ours(model, x):
    return analyze_module(model, [list(x.shape)], fmt="pickle", detail="")["macs"]


def thop_count(model, x):
    import thop

    with contextlib.redirect_stdout(io.StringIO()):
        return thop.profile(model, inputs=(x,), verbose=False)[0]


def fvcore_count(model, x):
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return analysis.total()


def torchinfo_count(model, x):
    import torchinfo

    return torchinfo.summary(model, input_data=x, verbose=0).total_mult_adds


def flop_counter_count(model, x):
    from torch.utils.flop_counter import FlopCounterMode

    mode = FlopCounterMode(display=False)
    with mode, torch.no_grad():
        model(x)
    return mode.get_total_flops() / 2


PEERS = {"thop": thop_count, "fvcore": fvcore_count, "torchinfo": torchinfo_count,
         "FlopCounterMode": flop_counter_count}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=",".join(PUBLISHED))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    names = args.models.split(",")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; MACs in G; error vs published; "
          "time ratio = tool time / our time\n")
    header = f"{'model':16s} {'tool':16s} {'GMACs':>9s} {'error':>8s} {'time s':>8s} {'ratio':>7s}"
    print(header)
    print("-" * len(header))
    worst_ratio = float("inf")
    for name in names:
        model = zoo.BUILDERS[name].build()
        x = torch.randn(1, 3, 224, 224)
        t_ours, m_ours = best(lambda: ours(model, x), args.repeat)
        rows = [("embodied-ai", t_ours, m_ours)]
        for peer, fn in PEERS.items():
            try:
                t, m = best(lambda: fn(model, x), args.repeat)
            except Exception as exc:  # noqa: BLE001 - a peer failing is a result to print
                rows.append((peer, None, f"failed: {type(exc).__name__}"))
                continue
            rows.append((peer, t, m))
        for tool, t, m in rows:
            if isinstance(m, str):
                print(f"{name:16s} {tool:16s} {m}")
                continue
            err = 100 * (m - PUBLISHED[name]) / PUBLISHED[name]
            ratio = t / t_ours
            if tool != "embodied-ai":
                worst_ratio = min(worst_ratio, ratio)
            print(f"{name:16s} {tool:16s} {m / 1e9:9.3f} {err:+7.1f}% {t:8.3f} {ratio:6.1f}x")
        print()
    print(f"fastest peer relative to us (lowest ratio over all models): {worst_ratio:.2f}x "
          f"({'we are faster' if worst_ratio >= 1 else 'a peer is faster'})\n")

    print("from a file: our whole analysis vs only loading the file")
    print(f"{'model':16s} {'format':18s} {'load s':>8s} {'analyse s':>10s} {'ratio':>7s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            model = zoo.BUILDERS[name].build()
            x = torch.randn(1, 3, 224, 224)
            ts = Path(tmp) / f"{name}.pt"
            torch.jit.trace(model, x, check_trace=False).save(ts)
            ep = Path(tmp) / f"{name}.pt2"
            torch.export.save(torch.export.export(model, (x,)), ep)
            for fmt, path, load in (("torchscript", ts, lambda p=ts: torch.jit.load(str(p), map_location="cpu")),
                                    ("exported_program", ep, lambda p=ep: torch.export.load(str(p)))):
                t_load, _ = best(load, args.repeat)
                t_an, _ = best(lambda p=path: analyze_file(p, input_shape=[[1, 3, 224, 224]]), args.repeat)
                print(f"{name:16s} {fmt:18s} {t_load:8.3f} {t_an:10.3f} {t_an / t_load:6.2f}x")


if __name__ == "__main__":
    main()
