"""How fast the registry is at 10,000 records, on TinyDB (against a plain ``json.load`` of the same file) and on
PostgreSQL (against TinyDB).

    .venv/bin/python benchmarks/registry.py [--records 10000] [--repeat 5] [--keep DIR] [--backends tinydb,postgresql]

Builds a registry of N records on each backend (copies of a real analysis of a zoo model, with distinct names and
hashes; the same records on both), then times, median of ``--repeat`` runs:

- TinyDB in this process with the read cache cleared each time, and as fresh subprocesses, against ``json.load``;
- each backend, cold (every read cache cleared, so each call reads the whole registry as a fresh process would; the
  PostgreSQL connection is kept, its cost shows in the subprocess rows): list every model, a filtered list, one
  `show`, and registering one new model (``Registry.add`` of an analysis made beforehand: the backend's share of
  `model register`, whose analysis costs the same on both); and the CLI as fresh subprocesses (start-up and, for
  PostgreSQL, connecting included).

The backends take turns within each repeat (a shared machine's load falls on both). Prints the ratio PostgreSQL /
TinyDB per operation beside the goals of issue 17 (list and filter within 2x, register
within 1.2x). PostgreSQL runs on a throwaway cluster started by ``tests/pg_server.py`` (its binaries must be
installed; it is stopped and deleted at the end) with fsync off, as in the tests: the numbers are for the registry's
queries, not for a durable server's commit latency.
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILTER = "family = resnet AND params < 1M AND tags.site = lab"
GOALS = {"list": 2.0, "filter": 2.0, "filter, pushed down to SQL": 2.0, "register": 1.2}  # PostgreSQL / TinyDB, issue 17
TESTS = Path(__file__).resolve().parent.parent / "tests"


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


def build(db: str, n: int, template: Path) -> None:
    """N records into the registry ``db`` (a TinyDB path or a postgresql:// URL), in one put_many; the analysis they
    are copied from is written to ``template`` (JSON) for the register timings."""
    from embodied_tui.data.backend import open_registry
    from embodied_tui.data.records import Analysis, ModelRecord

    if template.exists():
        analysis = Analysis.model_validate_json(template.read_bytes())
    else:
        analysis = _template()
        template.write_text(analysis.model_dump_json())
    items = []
    sites = ("lab", "field", "home")
    for i in range(n):
        sha = hashlib.sha256(f"model {i}".encode()).hexdigest()
        a = analysis.model_copy(update={"sha256": sha, "params": analysis.params + i, "path": f"/models/m{i}.pt"})
        record, details = ModelRecord.from_analysis(a, name=f"model-{i:05d}", version=1 + i % 3,
                                                    registered_at="2025-01-01T00:00:00+00:00",
                                                    tags={"site": sites[i % 3], "robot": ""}, description="bench")
        items.append((record, sha, details if i < 50 else None))  # details for a few: they live beside the file
    open_registry(db).put_many(items)


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


def clear_caches() -> None:
    """Forget every registry read cache of this process (TinyDB's and PostgreSQL's), so the next read is cold."""
    from embodied_tui.data import store

    store._cache.clear()
    if "embodied_tui.data.pg.registry" in sys.modules:
        sys.modules["embodied_tui.data.pg.registry"]._cache.clear()


def tinydb_vs_json(db: Path, repeat: int) -> None:
    """TinyDB against ``json.load`` of the same file, in process and as subprocesses."""
    from embodied_tui.data import store
    from embodied_tui.services import models as svc

    def cold(fn):
        def run():
            clear_caches()
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
    print(f"\nTinyDB in-process (read cache cleared each time), median of {repeat}:")
    report({label: median_time(fn, repeat) for label, fn in in_process.items()})
    print(f"\nTinyDB subprocesses (start-up included), median of {repeat}:")
    report({label: median_time(lambda: _run(cmd), repeat) for label, cmd in subprocesses.items()})


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def backend_ops(db: str, template: Path) -> dict:
    """The timed operations on the registry ``db``, by label; see the module docstring."""
    from embodied_tui.data.backend import open_registry
    from embodied_tui.data.filters import compile_filter
    from embodied_tui.data.records import Analysis
    from embodied_tui.services import models as svc

    analysis = Analysis.model_validate_json(template.read_bytes())
    reg = open_registry(db)
    name = "model-00007"
    added = iter(range(10 ** 6))

    def cold(fn):
        def run():
            clear_caches()
            fn()
        return run

    def register():
        i = next(added)
        sha = hashlib.sha256(f"new model {i}".encode()).hexdigest()
        reg.add(analysis.model_copy(update={"sha256": sha, "path": f"/models/new{i}.pt"}), f"new-{i:04d}")

    def pushed_down():
        """The filter handed to a backend that takes one (PostgreSQL: SQL WHERE, a superset the predicate then
        narrows); on TinyDB the same as ``filter``. Shows what wiring the pushdown into services.list_models gives."""
        pred = compile_filter(FILTER)
        if "filter" in inspect.signature(reg.list_models).parameters:
            return [r for r in reg.list_models(filter=FILTER) if pred(r)]
        return svc.list_models(reg, filter=FILTER)

    reg.list_models()  # connect (PostgreSQL) before timing
    exe = [sys.executable, "-m", "embodied_tui", "--db", db, "model"]
    ops = {
        "list": cold(lambda: svc.list_models(reg)),
        "filter": cold(lambda: svc.list_models(reg, filter=FILTER)),
        "filter, pushed down to SQL": cold(pushed_down),
        "show": cold(lambda: svc.show(name, None, reg)),
        "register": cold(register),
        "cli: model list --json": lambda: _run([*exe, "list", "--json"]),
        "cli: model list --filter --json": lambda: _run([*exe, "list", "--filter", FILTER, "--json"]),
        "cli: model show NAME --json": lambda: _run([*exe, "show", name, "--json"]),
    }
    return ops


def interleaved(ops: dict[str, dict], repeat: int) -> dict[str, dict[str, float]]:
    """Median seconds per backend and operation, the backends taking turns within each repeat, so a load change on
    a shared machine falls on both rather than on one."""
    times: dict[str, dict[str, list[float]]] = {b: {op: [] for op in o} for b, o in ops.items()}
    for op in next(iter(ops.values())):
        for _ in range(repeat):
            for backend, fns in ops.items():
                start = time.perf_counter()
                fns[op]()
                times[backend][op].append(time.perf_counter() - start)
    return {b: {op: statistics.median(t) for op, t in per.items()} for b, per in times.items()}


def compare(times: dict[str, dict[str, float]]) -> None:
    backends = list(times)
    print("\nper backend, cold reads, median (ms):")
    print(f"  {'operation':34s}" + "".join(f"{b:>12s}" for b in backends)
          + ("   PG/TinyDB  goal" if len(backends) == 2 else ""))
    for op in times[backends[0]]:
        row = f"  {op:34s}" + "".join(f"{times[b][op] * 1000:12.1f}" for b in backends)
        if len(backends) == 2:
            ratio = times[backends[1]][op] / times[backends[0]][op]
            goal = GOALS.get(op)
            verdict = "" if goal is None else f"  <= {goal:.1f}x {'met' if ratio <= goal else 'MISSED'}"
            row += f"   x{ratio:8.2f}{verdict}"
        print(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build the TinyDB registry here and keep it")
    parser.add_argument("--backends", default="tinydb,postgresql", help="comma-separated: tinydb, postgresql")
    parser.add_argument("--build-only", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="registry-bench-"))
    template = root / "template.json"
    if args.build_only:  # run in a child, so torch (used to make the template) stays out of the measuring process
        build(args.build_only, args.records, template)
        return
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"tinydb", "postgresql"}
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(sorted(unknown))}: use tinydb, postgresql")

    server = None
    try:
        locations: dict[str, str] = {}
        if "tinydb" in backends:
            locations["tinydb"] = str(root / "registry.json")
        if "postgresql" in backends:
            sys.path.insert(0, str(TESTS))
            from pg_server import PgServer

            server = PgServer.start()
            locations["postgresql"] = server.create_database("bench")
        for backend, db in locations.items():
            if backend == "tinydb" and Path(db).exists():
                continue
            start = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--build-only", db, "--keep", str(root), "--records",
                            str(args.records)], check=True)
            print(f"built {args.records} records on {backend} in {time.perf_counter() - start:.1f} s")
        if "tinydb" in locations:
            tinydb_vs_json(Path(locations["tinydb"]), args.repeat)
        compare(interleaved({backend: backend_ops(db, template) for backend, db in locations.items()}, args.repeat))
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
