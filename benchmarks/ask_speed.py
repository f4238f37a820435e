"""How fast `ask` and `query` answer on a registry of N models, before and after the fit-row cache and the cut-down
graph (services.graph).

    .venv/bin/python benchmarks/ask_speed.py [--models 50] [--repeat 3]

The registry: the 7 zoo models of the tests (tests/ask_fixture.py: TorchScript files, analysed, two measurements),
copied under N names (the copies are fitted separately, as N distinct models would be). Times, in this process:

- **before**: the graph as ``load_graph`` built it before the cache: ``services.fit.fit_all`` for every model on every
  call, then ``build_graph``; a question answered on that whole graph;
- **after**: ``load_graph`` with an empty cache (cold: every fit computed and stored), with the cache (warm), after a
  measurement is added (every fit computed again: measurements move the fitted efficiencies), and after one model is
  registered (only its fits computed); ``ask`` as the CLI runs it (names from the nodes, then a graph holding only
  what the question's ``=``/``IN`` conditions allow, with fits only when it joins models to devices).

Then, on a registry of ``--query-models`` (default 200) models, with the fit cache filled:

- **fit one model**: ``services.fit.fit_rows`` of one model on every catalog device x power mode x precision (what
  `embodied-ai fit NAME` and the TUI's fit screen compute), and ``fit_all`` over the whole registry (what an empty
  fit cache costs);
- **query**: raw Cypher through ``services.ask.query`` (what `embodied-ai query "..."` runs) for a few shapes of query:
  the seed query (models joined to devices, two range conditions), an equality on one model, one on nodes alone and
  one on measurements.

``--scale 10,1000,10000`` instead: for a registry of each size (a fresh fit store), each of ``SCALE_QUESTIONS``
asked through the app's path (``services.ask.ask`` in this process, as the ask screen's worker calls it) the first
time (fits computed for the models and devices the question keeps) and again (read from the store), and through the
CLI (`embodied-ai ask`, a new process: its wall time, start-up included, with the store filled); the peak RSS of this
process (the registries built and the app path) and of a CLI run (its VmHWM, read while it runs).

``--only-query`` skips the first part (its "before" timings recompute every fit and are slow at 200 models).

Medians of ``--repeat`` runs (cold and invalidated loads are run once each). Wall-clock on a shared machine: compare
the ratios, not the absolute numbers.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

QUESTIONS = [
    "which models run under 30 ms on a jetson at 15 W?",
    "fastest model on the raspberry pi 5",
    "which models fit in memory on the orin nano in int8?",
    "how many models have fewer than 200k params?",
    "fastest models",
]


SCALE_QUESTIONS = [
    "fastest model on the raspberry pi 5",
    "which models have fewer than 200k params?",
    "fastest 5 models on a jetson at 15 W in int8",
    "how many models run under 1 ms on the orin nano?",
]


def scale_section(sizes: list[int]) -> None:
    """First and repeated questions on registries of each size (app path and CLI), with peak memory."""
    import os
    import resource
    import subprocess

    from embodied_tui.services.ask import ask

    print(f"{'models':>7} {'question':48} {'app 1st':>8} {'app again':>9} {'CLI again':>9}  rows")
    for n in sizes:
        folder = Path(tempfile.mkdtemp(prefix="embodied-ai-ask-scale-"))
        cli_peak = 0.0
        try:
            reg, _ = build(folder, n)
            for q in SCALE_QUESTIONS:
                t_first, a = timed(lambda: ask(reg, q))
                t_again, _ = timed(lambda: ask(reg, q), 3)
                env = dict(os.environ, EMBODIED_AI_DB=str(reg.path))
                start = time.perf_counter()
                child = subprocess.Popen([sys.executable, "-m", "embodied_tui", "ask", q], env=env,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                while child.poll() is None:  # the CLI's own high-water mark (a child's ru_maxrss counts ours)
                    cli_peak = max(cli_peak, _high_water(child.pid))
                    time.sleep(0.02)
                t_cli = time.perf_counter() - start
                assert child.returncode == 0, f"`ask {q}` failed"
                print(f"{n:>7} {q[:48]:48} {t_first:7.2f}s {t_again:8.2f}s {t_cli:8.2f}s  {len(a['rows'])}",
                      flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            print(f"{n:>7} peak RSS: this process so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
                  f" MB (every registry built so far, and the app path); one CLI `ask` {cli_peak:.0f} MB", flush=True)


def _high_water(pid: int) -> float:
    """VmHWM of a running process, MB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def build(folder: Path, n: int):
    """A registry of ``n`` models: the fixture's models copied under distinct names, with its measurements."""
    from ask_fixture import registry_fixture

    from embodied_tui.data.store import Registry

    source = Registry(registry_fixture().db)
    entries = source.entries()
    reg = Registry(folder / "registry.json")
    items = []
    for i in range(n):
        record, identity, details = entries[i % len(entries)]
        items.append((record.model_copy(update={"name": f"{record.name}_{i:03d}"}), identity, details))
    for start in range(0, len(items), 2000):  # a few writes, not one per model
        reg.put_many(items[start:start + 2000])
    names = [record.name for record, _, _ in entries]
    for m in source.table_all("measurements"):  # on the first copy of the measured model
        reg.table_insert("measurements", {**m, "model": f"{m['model']}_{names.index(m['model']):03d}"})
    return reg, entries


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def old_load_graph(reg):
    """load_graph before the cache: every fit computed on every call."""
    from embodied_tui.ask.graph import build_graph
    from embodied_tui.services.fit import devices, fit_all, list_measurements

    return build_graph(reg.list_models(), devices(reg), fit_all(reg), list_measurements(reg))


CYPHER = {
    "seed (join, r/h ranges)": "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE r.latency_ms < 30 AND h.power_w < 15 "
                               "RETURN m.name, h.name, r.latency_ms",
    "one model, fastest 5": "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE m.name = '{name}' "
                            "RETURN h.device, h.power_mode, r.precision, r.latency_ms ORDER BY r.latency_ms LIMIT 5",
    "one device, int8 count": "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE h.device = 'jetson-orin-nano-8gb' "
                              "AND r.precision = 'int8' RETURN COUNT(r)",
    "models only": "MATCH (m:Model) WHERE m.params < 200000 RETURN m.name, m.params ORDER BY m.params",
    "measurements": "MATCH (z:Measurement)-[:OF]->(m:Model) MATCH (z)-[:ON]->(h:Hardware) "
                    "RETURN m.name, h.device, z.latency_ms",
}


def query_section(n: int, repeat: int) -> None:
    """Fit and raw-Cypher timings on a registry of ``n`` models with a filled fit cache."""
    from embodied_tui.services.ask import query
    from embodied_tui.services.fit import fit_all, fit_rows
    from embodied_tui.services.graph import load_graph

    folder = Path(tempfile.mkdtemp(prefix="embodied-ai-query-speed-"))
    try:
        reg, entries = build(folder, n)
        t_cold, _ = timed(lambda: load_graph(reg))
        print(f"\nregistry: {n} models; load_graph with an empty fit cache {t_cold:7.3f} s")
        name = reg.list_models()[0].name
        t_one, rows = timed(lambda: fit_rows(reg, name), repeat)
        print(f"fit one model on every device x mode x precision   {t_one:7.3f} s   {len(rows)} rows")
        t_all, rows = timed(lambda: fit_all(reg), 1)
        print(f"fit_all over {n} models                            {t_all:7.3f} s   {len(rows)} rows")
        print(f"\n{'query (warm fit cache)':40} {'time':>8}  rows")
        total = 0.0
        for label, text in CYPHER.items():
            text = text.replace("{name}", name)
            t, result = timed(lambda: query(reg, text), repeat)
            total += t
            print(f"{label:40} {t:7.3f}s  {len(result['rows'])}")
        print(f"{'all queries':40} {total:7.3f}s")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=50, help="registered models (default 50)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (median; default 3)")
    parser.add_argument("--query-models", type=int, default=200,
                        help="models in the registry of the fit and query timings (default 200)")
    parser.add_argument("--only-query", action="store_true", help="only the fit and query timings")
    parser.add_argument("--scale", help="registry sizes for first/repeated questions, e.g. 10,1000,10000")
    args = parser.parse_args()
    if args.scale:
        scale_section([int(n) for n in args.scale.split(",")])
        return 0
    if args.only_query:
        query_section(args.query_models, args.repeat)
        return 0

    from embodied_tui.services.ask import ask
    from embodied_tui.services.fit import add_measurement
    from embodied_tui.services.graph import fit_cache_path, load_graph

    folder = Path(tempfile.mkdtemp(prefix="embodied-ai-ask-speed-"))
    try:
        reg, entries = build(folder, args.models)
        t_old, old = timed(lambda: old_load_graph(reg), args.repeat)
        edges = sum(1 for *_, d in old.edges(data=True) if "RUNS_ON" in d["__labels__"])
        print(f"registry: {args.models} models, {edges} fit rows (RUNS_ON edges)")
        print(f"before  load_graph (fit_all + build_graph, every call)   {t_old:7.3f} s")
        t_cold, _ = timed(lambda: load_graph(reg))
        size = fit_cache_path(reg).stat().st_size  # the SQLite store (services.fit_store)
        t_warm, new = timed(lambda: load_graph(reg), args.repeat)
        same = sorted((u, v, k, sorted(d.items(), key=str)) for u, v, k, d in new.edges(keys=True, data=True)) == \
            sorted((u, v, k, sorted(d.items(), key=str)) for u, v, k, d in old.edges(keys=True, data=True))
        print(f"after   load_graph, empty cache (computes and stores)    {t_cold:7.3f} s   cache {size / 1e6:.1f} MB")
        print(f"after   load_graph, cache filled                         {t_warm:7.3f} s   "
              f"{t_old / t_warm:5.1f}x faster; same edges as before: {same}")
        record = reg.list_models()[0]
        add_measurement(reg, model=record.name, hw="raspberry-pi-5", mode=None, precision="fp32", latency_ms=9.0,
                        source="ask_speed benchmark", runtime="bench")
        t_meas, _ = timed(lambda: load_graph(reg))
        print(f"after   load_graph, after a new measurement (all again)  {t_meas:7.3f} s")
        first, identity, details = entries[0]
        reg.put_many([(first.model_copy(update={"name": "one_more_model"}), identity, details)])
        t_one, _ = timed(lambda: load_graph(reg))
        print(f"after   load_graph, after one new model (its fits only)  {t_one:7.3f} s")

        print(f"\n{'question':52} {'before':>8} {'after':>8}  rows")
        totals = [0.0, 0.0]
        for q in QUESTIONS:
            t_before, a = timed(lambda: ask(reg, q, graph=old_load_graph(reg)), 1)
            t_after, b = timed(lambda: ask(reg, q), args.repeat)
            totals[0] += t_before
            totals[1] += t_after
            agree = "same" if sorted(map(str, a["rows"])) == sorted(map(str, b["rows"])) else "DIFFERENT"
            print(f"{q[:52]:52} {t_before:7.3f}s {t_after:7.3f}s  {len(b['rows'])} ({agree})")
        print(f"{'all questions':52} {totals[0]:7.3f}s {totals[1]:7.3f}s  {totals[0] / totals[1]:.1f}x faster")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    query_section(args.query_models, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
