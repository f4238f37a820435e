"""The SQLite fit-edge store (services.fit_store): rows come back exactly as put, each 64-hex digest is stored once
(behind an integer id), a store of an older layout is rebuilt rather than misread, and processes writing one store
at once never attach a row to another model's key."""
from __future__ import annotations

import hashlib
import multiprocessing
import sqlite3

from embodied_tui.ask.graph import ROW_KEYS, FitEdge
from embodied_tui.services.fit_store import FitStore


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def edge(model: str, device: str, mode: str, precision: str, ms: float | None, fits: bool | None) -> FitEdge:
    return FitEdge(model, device, ms, None if ms is None else ms / 2, None, "memory", 12.5, 30.0, precision, mode,
                   15.0, fits, float("inf") if ms == 0 else (1000 / ms if ms else None), None, "default", 1e6, None)


def test_rows_come_back_as_put_and_a_target_is_stored_once(tmp_path):
    a, b = digest("a"), digest("b")
    rows = [(a, edge("a", "orin", "15W", "fp16", 2.0, True)), (a, edge("a", "orin", "30W", "fp16", 1.0, False)),
            (b, edge("b", "orin", "15W", "int8", None, None)), (b, edge("b", "orin", "15W", "fp16", 0.0, True))]
    store = FitStore(tmp_path / "edges.sqlite")
    store.put("orin", "v1", rows)
    store.put("orin", "v1", [(a, edge("a", "orin", "15W", "fp16", 99.0, True))])  # stored already: kept as it was
    store.put("orin", "v2", [(a, edge("a", "orin", "15W", "fp16", 5.0, True))])  # another version: its own row
    got = sorted(store.rows("orin", "v1"), key=repr)
    assert got == sorted(rows, key=repr)
    assert all(type(x) is type(y) for (_, r), (_, s) in zip(got, sorted(rows, key=repr)) for x, y in zip(r, s))
    assert store.done("orin", "v1") == {(a, "15W", "fp16"), (a, "30W", "fp16"), (b, "15W", "int8"), (b, "15W", "fp16")}
    assert store.complete("orin", "v1", [("15W", "fp16"), ("30W", "fp16")]) == {a}
    assert store.complete("orin", "v1", [("15W", "fp16"), ("15W", "fp16")]) == {a, b}  # a target named twice counts once
    assert [r.predicted_latency_ms for _, r in store.rows("orin", "v2")] == [5.0]
    assert list(store.rows("orin", "v3")) == [] and store.done("thor", "v1") == set()
    store.close()

    with sqlite3.connect(tmp_path / "edges.sqlite") as db:  # 2 model keys and 2 device versions: each digest once
        assert db.execute("SELECT COUNT(*) FROM keys").fetchone()[0] == 2
        assert db.execute("SELECT COUNT(*) FROM versions").fetchone()[0] == 2
        assert db.execute("SELECT COUNT(*) FROM edges").fetchone()[0] == len(rows) + 1
        columns = [c[1] for c in db.execute("PRAGMA table_info(edges)")]
        assert columns == ["version_id", "key_id", *ROW_KEYS]  # no digest in a row

    again = FitStore(tmp_path / "edges.sqlite")  # reopened: kept, not rebuilt
    assert sorted(again.rows("orin", "v1"), key=repr) == sorted(rows, key=repr)
    again.prune({"orin": "v2"})
    assert again.done("orin", "v1") == set() and len(list(again.rows("orin", "v2"))) == 1
    again.close()


def test_a_mark_names_its_set_at_its_device_version_and_goes_with_that_version(tmp_path):
    store = FitStore(tmp_path / "edges.sqlite")
    store.put("orin", "v1", [(digest("a"), edge("a", "orin", "15W", "fp16", 2.0, True))])
    assert not store.marked("orin", "v1", "set-1")
    store.mark("orin", "v1", "set-1")
    store.mark("orin", "v1", "set-1")  # twice: one mark
    assert store.marked("orin", "v1", "set-1")
    assert not store.marked("orin", "v1", "set-2") and not store.marked("orin", "v2", "set-1")
    assert not store.marked("thor", "v1", "set-1")
    store.mark("thor", "v1", "set-1")  # a device with no rows yet: its version is made for the mark
    store.prune({"orin": "v2", "thor": "v1"})  # orin's v1 rows go, and their mark with them
    assert not store.marked("orin", "v1", "set-1") and store.marked("thor", "v1", "set-1")
    store.put("orin", "v2", [(digest(n), edge(n, "orin", "15W", "fp16", 2.0, True)) for n in "abc"])
    store.mark("orin", "v2", "set-3")
    assert store.marked("orin", "v2", "set-3")
    store.close()
    with sqlite3.connect(tmp_path / "edges.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM complete_sets").fetchone()[0] == 2
        # rows deleted by another hand (an older embodied-ai pruning this version, an edit): the mark no longer holds
        db.execute("DELETE FROM edges WHERE rowid IN (SELECT MAX(rowid) FROM edges)")
    again = FitStore(tmp_path / "edges.sqlite")
    assert not again.marked("orin", "v2", "set-3") and again.marked("thor", "v1", "set-1")
    again.close()


def test_a_store_of_the_previous_layout_is_rebuilt_not_misread(tmp_path):
    """Format 3 (64-hex keys in every row and a ``done`` table), written here as that code wrote it."""
    path = tmp_path / "edges.sqlite"
    columns = ", ".join(ROW_KEYS)
    key, version = digest("a"), digest("v1")
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        db.execute("CREATE TABLE done (model_key TEXT, device TEXT, version TEXT, mode TEXT, precision TEXT, "
                   "PRIMARY KEY (device, version, model_key, mode, precision)) WITHOUT ROWID")
        db.execute(f"CREATE TABLE edges (model_key TEXT, device TEXT, version TEXT, {columns})")
        db.execute("INSERT INTO meta VALUES ('format', ?)", ("3:" + columns,))
        db.execute("INSERT INTO done VALUES (?, 'orin', ?, '15W', 'fp16')", (key, version))
        db.execute(f"INSERT INTO edges VALUES ({', '.join('?' * (len(ROW_KEYS) + 3))})",
                   (key, "orin", version, *edge("a", "orin", "15W", "fp16", 2.0, True)))
    db.close()
    store = FitStore(path)
    assert store.path == path  # the file itself, not the in-memory stand-in
    assert store.done("orin", version) == set() and list(store.rows("orin", version)) == []
    row = edge("a", "orin", "15W", "fp16", 3.0, True)
    store.put("orin", version, [(key, row)])
    assert list(store.rows("orin", version)) == [(key, row)]
    store.close()
    with sqlite3.connect(path) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert "done" not in tables and {"keys", "versions", "edges"} <= tables


def _writer(path: str, me: int, keys: list[str], rounds: int) -> None:
    """One process's puts: every row's model name is ``name(key)``, so a row read under another key shows."""
    store = FitStore(path)
    for r in range(rounds):
        for device in ("orin", "thor"):
            store.put(device, "v1", [(k, edge(f"name-{k[:8]}", device, f"{me}-{r}", "fp16", 1.0 + me, True))
                                     for k in keys])
    store.close()


def test_processes_writing_at_once_never_mix_model_keys(tmp_path):
    path = str(tmp_path / "edges.sqlite")
    keys = [digest(str(i)) for i in range(60)]
    FitStore(path).close()
    context = multiprocessing.get_context("spawn")
    # overlapping key sets, in different orders: each process meets keys the other has just given ids
    workers = [context.Process(target=_writer, args=(path, me, mine, 5))
               for me, mine in enumerate([keys[:40], keys[20:][::-1], keys[::3]])]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    store = FitStore(path)
    for device in ("orin", "thor"):
        got = list(store.rows(device, "v1"))
        assert {(key, row.power_mode) for key, row in got} == {
            (k, f"{me}-{r}") for me, mine in enumerate([keys[:40], keys[20:][::-1], keys[::3]]) for k in mine
            for r in range(5)}
        assert all(row.model == f"name-{key[:8]}" for key, row in got)  # each row under its own key
    store.close()


def test_a_format_4_store_gains_the_latency_index_in_place_and_reads_in_order(tmp_path):
    """The latency index (ordered and range reads without a sort) is added to a store written before it, which keeps
    its rows; rows come back sorted by the store, without those lacking the value."""
    path = tmp_path / "edges.sqlite"
    a, b, c = digest("a"), digest("b"), digest("c")
    store = FitStore(path)
    store.put("orin", "v1", [(a, edge("a", "orin", "15W", "fp16", 2.0, True)),
                             (b, edge("b", "orin", "15W", "fp16", None, None)),
                             (c, edge("c", "orin", "15W", "fp16", 0.5, True)),
                             (c, edge("c", "orin", "30W", "fp16", 0.25, True))])
    store.close()
    with sqlite3.connect(path) as db:  # as a store written before the index, with the index it had then
        db.execute("DROP INDEX edges_latency_key")
        db.execute("CREATE INDEX edges_latency ON edges (version_id, predicted_latency_ms)")
    store = FitStore(path)
    with sqlite3.connect(path) as db:
        names = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "edges_latency_key" in names and "edges_latency" not in names  # replaced
        plan = " ".join(str(r) for r in db.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM edges WHERE version_id = 1 ORDER BY predicted_latency_ms"))
        assert "edges_latency_key" in plan and "TEMP B-TREE" not in plan  # read in index order, no sort
        plan = " ".join(str(r) for r in db.execute(  # a count's grouping by model: from the index alone
            "EXPLAIN QUERY PLAN SELECT MIN(rowid) FROM edges WHERE version_id = 1 AND predicted_latency_ms < 1 "
            "GROUP BY key_id"))
        assert "COVERING INDEX edges_latency_key" in plan, plan
    ordered = [(k, r.power_mode, r.predicted_latency_ms) for k, r in store.rows(
        "orin", "v1", order=[("predicted_latency_ms", False)])]
    assert ordered == [(c, "30W", 0.25), (c, "15W", 0.5), (a, "15W", 2.0)]
    backwards = [r.predicted_latency_ms for _, r in store.rows("orin", "v1", order=[("predicted_latency_ms", True)])]
    assert backwards == [2.0, 0.5, 0.25]
    one = list(store.rows("orin", "v1", one_per_key=True))
    assert sorted(k for k, _ in one) == sorted([a, b, c])
    store.close()
