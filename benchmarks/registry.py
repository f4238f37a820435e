"""How fast the registry reads at 10,000 records, against a plain ``json.load`` of the same file in the same run.

    .venv/bin/python benchmarks/registry.py [--records 10000] [--repeat 5] [--keep DIR]

Builds a registry of N records (copies of a real analysis of a zoo model, with distinct names and hashes), then times,
in this process with the read cache cleared each time and as fresh subprocesses: list every model, a filtered list and
one `show`. Prints medians and the ratio to ``json.load`` (in-process) or ``python -c 'json.load(...)'`` (subprocess).
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILTER = "family = resnet AND params < 1M AND tags.site = lab"


def _template():
    """A real Analysis: resnet_tiny saved as TorchScript and analysed."""
    import torch

    from embodied_tui.analysis.api import analyze_file
    from embodied_tui.analysis.zoo import BUILDERS

    builder = BUILDERS["resnet_tiny"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "resnet_tiny.pt"
        model = builder.build()
        with torch.no_grad():
            torch.jit.save(torch.jit.trace(model, builder.example_inputs(), check_trace=False), str(path))
        return analyze_file(path, input_shape=[list(s) for s in builder.input_shapes])


def build(db: Path, n: int) -> None:
    from embodied_tui.data.records import ModelRecord
    from embodied_tui.data.store import Registry

    analysis = _template()
    items = []
    sites = ("lab", "field", "home")
    for i in range(n):
        sha = hashlib.sha256(f"model {i}".encode()).hexdigest()
        a = analysis.model_copy(update={"sha256": sha, "params": analysis.params + i, "path": f"/models/m{i}.pt"})
        record, details = ModelRecord.from_analysis(a, name=f"model-{i:05d}", version=1 + i % 3,
                                                    registered_at="2025-01-01T00:00:00+00:00",
                                                    tags={"site": sites[i % 3], "robot": ""}, description="bench")
        items.append((record, sha, details if i < 50 else None))  # details for a few: they live beside the file
    Registry(db).put_many(items)


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(times: dict[str, float]) -> None:
    base = next(iter(times.values()))  # the first entry is the json.load baseline
    for label, t in times.items():
        print(f"  {label:34s} {t * 1000:8.1f} ms   x{t / base:5.2f} json.load")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build the registry here and keep it")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:  # run in a child, so torch (used to make the template) stays out of the measuring process
        build(args.keep / "registry.json", args.records)
        return

    from embodied_tui.data import store
    from embodied_tui.services import models as svc

    tmp = Path(tempfile.mkdtemp(prefix="registry-bench-"))
    root = args.keep or tmp
    db = root / "registry.json"
    if not db.exists():
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--build-only", "--keep", str(root), "--records", str(args.records)],
                       check=True)
        print(f"built {args.records} records in {time.perf_counter() - start:.1f} s: {db} "
              f"({db.stat().st_size / 1e6:.1f} MB)")

    def cold(fn):
        def run():
            store._cache.clear()
            fn()
        return run

    def load_json():
        import json

        with open(db, "rb") as f:
            json.load(f)

    def load_json_gc_paused():
        import gc

        gc.disable()
        try:
            load_json()
        finally:
            gc.enable()

    name = "model-00007"
    in_process = {
        "json.load (baseline)": load_json,
        "json.load, gc paused": load_json_gc_paused,
        "list_models()": cold(lambda: store.Registry(db).list_models()),
        "list --filter": cold(lambda: svc.list_models(db, filter=FILTER)),
        "show NAME": cold(lambda: svc.show(name, None, db)),
        "list, records -> JSON dicts": cold(lambda: [svc.record_json(r) for r in svc.list_models(db)]),
    }
    exe = [sys.executable, "-m", "embodied_tui"]
    subprocesses = {
        "python -c json.load (baseline)": [sys.executable, "-c", f"import json; json.load(open({str(db)!r}, 'rb'))"],
        "model list --json": [*exe, "--db", str(db), "model", "list", "--json"],
        "model list --filter --json": [*exe, "--db", str(db), "model", "list", "--filter", FILTER, "--json"],
        "model show NAME --json": [*exe, "--db", str(db), "model", "show", name, "--json"],
        "python -c 'import embodied_tui.cli'": [sys.executable, "-c", "import embodied_tui.cli"],
    }

    print(f"\nin-process (read cache cleared each time), median of {args.repeat}:")
    report({label: median_time(fn, args.repeat) for label, fn in in_process.items()})

    def run(cmd):
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(f"\nsubprocesses (start-up included), median of {args.repeat}:")
    report({label: median_time(lambda: run(cmd), args.repeat) for label, cmd in subprocesses.items()})
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
