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

``--scale 10,1000,10000`` instead: for a registry of each size, each of ``SCALE_QUESTIONS`` asked

- through the app's path: ``services.ask.ask`` in a fresh process, from a worker thread (the ask screen's thread
  worker calls it in the app's process: there every fit is computed in the one process, ``services.fit_fork``)
  once the registry is read (timed apart, "reading the registry": the app reads it once, at start, for its
  models table, and keeps it parsed; before this change the read was counted in the first question), the
  first time on an empty edge store (every fit it reads is computed) and then again (``--repeat``, median; read from
  the store);
- through the CLI: `embodied-ai ask` in a new process (wall time, start-up included), on an empty store and again
  (a first question at 10,000 models there shares its fits with a forked second process:
  ``services.fit_fork``);
- with the peak memory of each of those processes (VmHWM; while the CLI has its forked helper, the Pss of both
  summed where that is more: the pages they share counted once), and the time reading the registry alone takes.

Every child runs this tree's package (``PYTHONPATH``). The edge store's rows are keyed by the code's file mtimes
(``services.graph``): run it on a tree nobody edits meanwhile (a snapshot), or "again" recomputes.

``--distinct`` makes every copy a distinct model for the fit (``build``): copies of one model share their fit rows
(computed once per record content, ``services.graph``), which flatters a registry of copies; ``--questions 3,4``
asks only those of ``SCALE_QUESTIONS``.

``--distinct-details`` also gives every copy its own details file (a real registry of distinct models has one per
model; ``--distinct`` alone shares the fixture's 7, and layer columns are made per details content). The registry is
built as registration fills it (``services.layer_store.remember``: each details file's layer columns in the fit
store), and "1st" empties the edge store but keeps those columns and the registry's summary (as registration and
`measurement add` leave them: ``services.summary.summarise``); ``--cold-layers`` empties them too (every details
file is parsed by the first question).

``--only-query`` skips the first part (its "before" timings recompute every fit and are slow at 200 models).

Medians of ``--repeat`` runs (cold and invalidated loads are run once each). Wall-clock on a shared machine: compare
the ratios, not the absolute numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
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
    "which models run under 1 ms on the orin nano in fp16?",
]


def _child(argv: list[str]) -> None:
    """``--app-child REGISTRY QUESTION REPEAT``: the app's path in a fresh process (the ask screen's worker calls
    ``services.ask.ask`` in the app's process): the registry read (timed on its own: the app reads it once, at start,
    for its models table, and keeps it parsed), the first question, the same question again; prints one JSON line
    with the times (s), the rows and this process's peak RSS (MB)."""
    import json

    from embodied_tui.services.ask import ask
    from embodied_tui.services.hardware import registry

    reg_path, question, repeat = argv[0], argv[1], int(argv[2])
    # what the app's start reads (its models table: the latest records), then kept parsed as there; the question's
    # own reading of the rest (devices, measurements, the summary it writes for the next process) is in "first"
    t_load, _ = timed(lambda: registry(reg_path).list_models())
    # asked from a worker thread, as the app's ask screen does (a thread worker beside Textual's): there the fits
    # are computed in this process alone (services.fit_fork forks only a process with one thread)
    t_first, a = timed(lambda: _in_thread(lambda: ask(reg_path, question)))
    t_again, _ = timed(lambda: _in_thread(lambda: ask(reg_path, question)), repeat)
    print(json.dumps({"load": t_load, "first": t_first, "again": t_again, "rows": len(a["rows"]),
                      "shown": a.get("count") if a.get("count") is not None else len(a["rows"]),
                      "peak_mb": _high_water(os.getpid())}))


def _in_thread(fn):
    """``fn()`` in a thread of its own (the app's thread worker), its result or its error here."""
    import threading

    out: dict = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller
            out["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def _run_child(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """Wall time (s), peak memory (MB: its VmHWM, or the Pss of it and its own children together where more, read
    while it runs) and stdout of a child process (written to a file: a pipe nobody reads while it runs would stop a child
    that prints a long answer)."""
    env = dict(env, PYTHONPATH=str(ROOT))  # this tree's package, whatever is installed
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=err, text=True)
        peak = 0.0
        while child.poll() is None:
            peak = max(peak, _high_water(child.pid), _tree_pss(child.pid))
            time.sleep(0.01)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        said, problem = out.read(), err.read().strip()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[-2:])} failed: {problem.splitlines()[-1:] if problem else ''}")
    return wall, peak, said


def scale_section(sizes: list[int], repeat: int, distinct: bool = False, questions: list[str] | None = None,
                  layers: bool = False, details: bool = False) -> None:
    """First (cold edge store) and repeated questions on registries of each size, app path and CLI, each in a fresh
    process, with each process's peak RSS."""
    from embodied_tui.services.graph import fit_cache_path

    print("app: services.ask.ask in a fresh process (as the ask screen's worker runs it), the registry read first (as "
          "the app's start reads it; timed apart below): the first question on an "
          "empty edge store, then the same question again (median of --repeat); CLI: `embodied-ai ask` wall time, "
          "start-up included, on an empty store (1st) and a filled one (again). Peak: VmHWM of each process, MB (the "
          "CLI's with its forked fit helper: their Pss summed where that is more).")
    print(f"{'models':>7} {'question':46} {'app 1st':>8} {'again':>7} {'CLI 1st':>8} {'again':>7} {'rows':>6} "
          f"{'app MB':>7} {'CLI MB':>7}")
    for n in sizes:
        folder = Path(tempfile.mkdtemp(prefix="embodied-ai-ask-scale-"))
        loads = []
        try:
            reg, _ = build(folder, n, distinct, details)
            store = fit_cache_path(reg)
            env = dict(os.environ, EMBODIED_AI_DB=str(reg.path))
            for q in questions or SCALE_QUESTIONS:
                _forget(store, layers)
                _, app_peak, out = _run_child([sys.executable, __file__, "--app-child", str(reg.path), q,
                                               str(repeat)], env)
                app = json.loads(out.strip().splitlines()[-1])
                loads.append(app["load"])
                _forget(store, layers)
                cli_first, peak1, _ = _run_child([sys.executable, "-m", "embodied_tui", "ask", q], env)
                cli_again, peak2, _ = _run_child([sys.executable, "-m", "embodied_tui", "ask", q], env)
                print(f"{n:>7} {q[:46]:46} {app['first']:7.2f}s {app['again']:6.2f}s {cli_first:7.2f}s "
                      f"{cli_again:6.2f}s {app['shown']:>6} {app_peak:7.0f} {max(peak1, peak2):7.0f}", flush=True)
            print(f"{n:>7} reading the registry (the app start's list_models, fresh process): {statistics.median(loads):.2f} s",
                  flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _forget(store: Path, layers: bool = False) -> None:
    """An empty edge store: the next question computes every fit it reads. What registration stored there stays
    (the layer columns, ``services.layer_store``; the registry's summary, ``services.summary.summarise``), unless
    ``layers``: then the first fit of each details content parses it, and the first question parses the registry."""
    if not layers and store.exists():
        import sqlite3

        db = sqlite3.connect(store)
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            if table not in ("layers", "summary", "meta", "sqlite_sequence"):
                db.execute(f"DELETE FROM {table}")
        db.commit()
        db.execute("VACUUM")
        db.close()
        return
    for p in store.parent.glob(store.name + "*"):
        p.unlink()


def _proc_mb(pid: int, name: str, field: str) -> float:
    """A kB line (``field``) of a running process's /proc file ``name``, MB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def _high_water(pid: int) -> float:
    """VmHWM of a running process, MB (0 once it is gone)."""
    return _proc_mb(pid, "status", "VmHWM")


def _tree_pss(pid: int) -> float:
    """The memory of a running process and its children now (the CLI's forked fit helper, ``services.fit_fork``),
    MB: the sum of their proportional set sizes (Pss: a page they share counted half in each), so pages the helper
    shares with the CLI after the fork are counted once; 0 while it has no child."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    if not children:
        return 0.0
    return sum(_proc_mb(p, "smaps_rollup", "Pss") for p in [pid, *map(int, children)])


def build(folder: Path, n: int, distinct: bool = False, distinct_details: bool = False):
    """A registry of ``n`` models: the fixture's models copied under distinct names, with its measurements.

    ``distinct``: every copy after the first of each model is made a different model for the fit (another sha256,
    params, MACs and weight bytes: its own record content, its details looked up on their own), so no two copies
    share fit rows (``services.graph`` computes the rows of identical contents once). Their details files are still
    the fixture's 7 (stored by content), so layer columns are made once per content: ``distinct_details`` gives each
    copy its own details file too (a layer renamed: the same numbers, another content), as a real registry of
    distinct models has."""
    import hashlib

    from ask_fixture import registry_fixture

    from embodied_tui.data.store import Registry

    source = Registry(registry_fixture().db)
    entries = source.entries()
    reg = Registry(folder / "registry.json")
    items = []
    for i in range(n):
        record, identity, details = entries[i % len(entries)]
        update: dict = {"name": f"{record.name}_{i:03d}"}
        if distinct and i >= len(entries):
            update.update(sha256=hashlib.sha256(f"{record.sha256}/{i}".encode()).hexdigest(),
                          params=record.params + i, macs=record.macs + i if record.macs is not None else None,
                          weight_bytes=record.weight_bytes + i)
            identity = hashlib.sha256(f"{identity}/{i}".encode()).hexdigest()
            if distinct_details and details is not None and details.layer_costs:
                costs = list(details.layer_costs)
                costs[0] = costs[0].model_copy(update={"name": f"{costs[0].name}/{i}"})
                details = details.model_copy(update={"layer_costs": costs})
        items.append((record.model_copy(update=update), identity, details))
    from embodied_tui.services.layer_store import remember

    for start in range(0, len(items), 2000):  # a few writes, not one per model
        reg.put_many(items[start:start + 2000])
        # what registration (services.models.add_analysis, import_bundle) does after storing models: their layer
        # columns go to the fit store, so the first fit reads them in one query instead of parsing each details file
        remember(reg, [(record, details) for record, _, details in items[start:start + 2000]])
    names = [record.name for record, _, _ in entries]
    for m in source.table_all("measurements"):  # on the first copy of the measured model
        reg.table_insert("measurements", {**m, "model": f"{m['model']}_{names.index(m['model']):03d}"})
    from embodied_tui.services.summary import summarise

    summarise(reg)  # as registration (services.models) and `measurement add` (services.fit.add_measurement) leave it
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
    parser.add_argument("--distinct", action="store_true",
                        help="with --scale: every copy a distinct model (no two share fit rows; see build)")
    parser.add_argument("--distinct-details", action="store_true",
                        help="with --distinct: every copy its own details file too (see build)")
    parser.add_argument("--cold-layers", action="store_true",
                        help="with --scale: the first question also finds no layer columns (every details parsed)")
    parser.add_argument("--questions", help="with --scale: which SCALE_QUESTIONS (1-based, e.g. 3,4; default all)")
    if sys.argv[1:2] == ["--app-child"]:
        _child(sys.argv[2:])
        return 0
    args = parser.parse_args()
    if args.scale:
        picked = [SCALE_QUESTIONS[int(i) - 1] for i in args.questions.split(",")] if args.questions else None
        print(f"registry: the fixture's 7 models copied; {'each copy a distinct model' if args.distinct else 'copies share content (their fit rows are computed once per content)'}")
        scale_section([int(n) for n in args.scale.split(",")], args.repeat, args.distinct, picked, args.cold_layers,
                      args.distinct_details)
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
