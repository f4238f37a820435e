"""The SQLite fit-edge store alone (services.fit_store): put, complete, done and rows at 10,000 models.

    .venv/bin/python benchmarks/fit_store_speed.py [--models 10000] [--module PATH]

Rows as ``services.graph`` writes them: 1,024 models per device per ``put`` (one transaction each), over 8 made-up
devices of 2-4 power modes x 3 precisions (69 targets), 64-hex model keys and device version, random latencies.
Then, per device: ``complete`` of every target, ``done``, every row streamed and a narrow read (100 keys, one
target, a ``where``). ``--module`` times another copy of the module instead (e.g. the previous layout:
``git show HEAD~1:embodied_tui/services/fit_store.py > /tmp/old_fit_store.py``). Prints seconds, the file's size
(with its WAL) and the peak RSS. Wall-clock on a shared machine: compare ratios.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from embodied_tui.ask.graph import FitEdge  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--module", default=str(ROOT / "embodied_tui/services/fit_store.py"))
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("timed_fit_store", args.module)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rnd = random.Random(1)
    devices = {f"dev-{d}": [(f"{w}W", p) for w in (7, 15, 25, 40)[:2 + d % 3] for p in ("fp32", "fp16", "int8")]
               for d in range(8)}
    keys = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(args.models)]
    version = hashlib.sha256(b"version").hexdigest()

    def edge(i: int, device: str, mode: str, precision: str) -> FitEdge:
        ms = 0.01 + rnd.random() * 100
        return FitEdge(f"model_{i:05d}", device, ms, ms / 2, None, "memory", rnd.random() * 50, 30.0, precision,
                       mode, 15.0, rnd.random() < 0.5, 1000 / ms, ms * 15, "default", 1e6 * rnd.random(), 2e5)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "edges.sqlite"
        store = mod.FitStore(path)
        put = 0.0
        for start in range(0, args.models, 1024):
            for device, pairs in devices.items():
                items = [(keys[i], edge(i, device, m, p)) for i in range(start, min(args.models, start + 1024))
                         for m, p in pairs]
                t = time.perf_counter()
                store.put(device, version, items)
                put += time.perf_counter() - t
        times = {}
        t = time.perf_counter()
        complete = sum(len(store.complete(d, version, pairs)) for d, pairs in devices.items())
        times["complete"] = time.perf_counter() - t
        t = time.perf_counter()
        done = sum(len(store.done(d, version)) for d in devices)
        times["done"] = time.perf_counter() - t
        t = time.perf_counter()
        rows = sum(1 for d, pairs in devices.items() for _ in store.rows(d, version, None, pairs))
        times["rows"] = time.perf_counter() - t
        few = {k: 0 for k in keys[:100]}
        t = time.perf_counter()
        narrow = sum(1 for d, pairs in devices.items()
                     for _ in store.rows(d, version, few, pairs[:1], [("predicted_latency_ms", "<", 50)]))
        times["narrow rows"] = time.perf_counter() - t
        store.close()
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    print(f"{args.module}: {rows:,} rows ({args.models:,} models x {rows // args.models} targets)")
    print(f"put {put:.2f} s; complete {times['complete']:.2f} s ({complete:,} keys); done {times['done']:.2f} s "
          f"({done:,}); rows {times['rows']:.2f} s; narrow rows {times['narrow rows']:.2f} s ({narrow}); "
          f"file {size / 1e6:.0f} MB; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
