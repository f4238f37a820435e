"""The SQLite fit-edge store (services.fit_store): rows come back exactly as put (every value with its type and
bits, whatever the column holds), each 64-hex digest is stored once (behind an integer id), its filters, orders and
one-row-per-model read as SQL over the rows would, a store of an older layout is rebuilt rather than misread, and
processes writing one store at once never attach a row to another model's key."""
from __future__ import annotations

import hashlib
import multiprocessing
import sqlite3

import pytest

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
        # one chunk per put that stored something (the second stored nothing), its rows counted
        assert db.execute("SELECT COUNT(*), SUM(n) FROM chunks").fetchone() == (2, len(rows) + 1)
        assert not any(a in str(h) for (h,) in db.execute("SELECT header FROM chunks"))  # no digest in a chunk

    again = FitStore(tmp_path / "edges.sqlite")  # reopened: kept, not rebuilt
    assert sorted(again.rows("orin", "v1"), key=repr) == sorted(rows, key=repr)
    again.prune({"orin": "v2"})
    assert again.done("orin", "v1") == set() and len(list(again.rows("orin", "v2"))) == 1
    again.close()


def test_key_ids_kept_between_puts_are_read_again_after_another_connection_wrote(tmp_path):
    a, b = digest("a"), digest("b")
    store = FitStore(tmp_path / "edges.sqlite")
    store.put("orin", "v1", [(a, edge("a", "orin", "15W", "fp16", 2.0, True))])
    store.put("orin", "v1", [(b, edge("b", "orin", "15W", "fp16", 3.0, True))])  # a's id kept from the first put
    assert sorted(k for k, _ in store.rows("orin", "v1")) == sorted([a, b])
    with sqlite3.connect(tmp_path / "edges.sqlite") as other:  # what a clean-up does (ask_speed's empty store)
        for table in ("chunks", "keys", "versions"):
            other.execute(f"DELETE FROM {table}")
    store.put("thor", "v1", [(a, edge("a", "thor", "MAXN", "fp16", 1.0, True)),
                             (b, edge("b", "thor", "MAXN", "fp16", 1.5, True))])
    got = dict(store.rows("thor", "v1"))  # each row under its own key: no id kept from before the clean-up
    assert set(got) == {a, b} and got[a].model == "a" and got[b].model == "b"
    store.close()


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
        db.execute("DELETE FROM chunks WHERE chunk_id IN (SELECT MAX(chunk_id) FROM chunks)")
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
    assert not {"done", "edges"} & tables and {"keys", "versions", "chunks"} <= tables


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


def test_a_format_4_store_is_rebuilt_and_reads_in_order(tmp_path):
    """A store of the previous layout (one SQLite row per fit row) is emptied and rebuilt; rows come back sorted by
    the columns asked for, without those lacking the value, and one per model key when asked."""
    path = tmp_path / "edges.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        db.execute(f"CREATE TABLE edges (version_id INTEGER, key_id INTEGER, {', '.join(ROW_KEYS)})")
        db.execute("INSERT INTO meta VALUES ('format', ?)", ("4:" + ", ".join(ROW_KEYS),))
    db.close()
    a, b, c = digest("a"), digest("b"), digest("c")
    store = FitStore(path)
    store.put("orin", "v1", [(a, edge("a", "orin", "15W", "fp16", 2.0, True)),
                             (b, edge("b", "orin", "15W", "fp16", None, None)),
                             (c, edge("c", "orin", "15W", "fp16", 0.5, True))])
    store.put("orin", "v1", [(c, edge("c", "orin", "30W", "fp16", 0.25, True))])  # a second chunk
    store.close()
    with sqlite3.connect(path) as db:
        assert "edges" not in {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    store = FitStore(path)
    ordered = [(k, r.power_mode, r.predicted_latency_ms) for k, r in store.rows(
        "orin", "v1", order=[("predicted_latency_ms", False)])]
    assert ordered == [(c, "30W", 0.25), (c, "15W", 0.5), (a, "15W", 2.0)]
    backwards = [r.predicted_latency_ms for _, r in store.rows("orin", "v1", order=[("predicted_latency_ms", True)])]
    assert backwards == [2.0, 0.5, 0.25]
    one = list(store.rows("orin", "v1", one_per_key=True))
    assert sorted(k for k, _ in one) == sorted([a, b, c])
    assert [(k, r.power_mode) for k, r in one if k == c] == [(c, "15W")]  # the first stored of its rows
    store.close()


def _sql_rows(rows: list[tuple[str, FitEdge]], where: list, order: list, keys=None, targets=None,
              one_per_key: bool = False) -> list:
    """The same read as SQL over one table of the rows (an independent reading of ``FitStore.rows``): SQLite's
    comparisons, its ORDER BY (ties by put order) and one row of each key (the first put)."""
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE TABLE r (seq INTEGER, key TEXT, {', '.join(ROW_KEYS)})")
    db.executemany(f"INSERT INTO r VALUES ({', '.join('?' * (len(ROW_KEYS) + 2))})",
                   [(i, k, *row) for i, (k, row) in enumerate(rows)])
    tests, args = ["1"], []
    for column, op, value in where:
        if op == "IN":
            tests.append(f"{column} IN ({', '.join('?' * len(value))})")
            args += list(value)
        else:
            tests.append(f"{column} {op} ?")
            args.append(value)
    if keys is not None:
        tests.append(f"key IN ({', '.join('?' * len(keys))})")
        args += list(keys)
    if targets is not None:
        tests.append("(power_mode, precision) IN (VALUES " + ", ".join("(?, ?)" for _ in targets) + ")")
        args += [v for pair in targets for v in pair]
    tests += [f"{column} IS NOT NULL" for column, _ in order]
    sql = f"SELECT seq FROM r WHERE {' AND '.join(tests)}"
    if one_per_key:
        sql = f"SELECT MIN(seq) FROM r WHERE {' AND '.join(tests)} GROUP BY key"
    sql += " ORDER BY " + ", ".join([f"{c}{' DESC' if d else ''}" for c, d in order] + ["1"])
    seqs = [s for (s,) in db.execute(sql, args)]
    db.close()
    return [rows[s] for s in seqs]


def test_rows_filter_order_and_group_as_sql_over_the_rows_does(tmp_path):
    """Many rows over three chunks (one of them past CHUNK_ROWS, so split), with nulls, ties and texts: every
    where/keys/targets/order/one_per_key read equals SQLite's over one table of the same rows. Rows are put in key
    order, as a question stores them, so ties come back in put order in both."""
    import random

    from embodied_tui.services import fit_store

    rnd = random.Random(7)
    keys = [digest(str(i)) for i in range(40)]
    modes = ["7W", "15W", "MAXN"]
    rows = []
    for k, key in enumerate(keys):
        for mode in modes:
            for precision in ("fp16", "int8"):
                ms = rnd.choice([None, 0.5, 1.0, 1.0, 2.5, rnd.random() * 10])
                rows.append((key, edge(f"m{k}", "orin", mode, precision, ms, rnd.choice([True, False, None]))))
    store = FitStore(tmp_path / "edges.sqlite")
    old = fit_store.CHUNK_ROWS
    fit_store.CHUNK_ROWS = 50  # the first put is split into chunks of 50 rows
    try:
        store.put("orin", "v1", rows[:120])
    finally:
        fit_store.CHUNK_ROWS = old
    store.put("orin", "v1", rows[120:200])
    store.put("orin", "v1", rows[200:])
    reads = [
        ([("predicted_latency_ms", "<", 1.0)], [], None, None, False),
        ([("predicted_latency_ms", "<=", 1)], [("predicted_latency_ms", False)], None, None, False),
        ([("predicted_latency_ms", ">=", 2.5), ("precision", "=", "int8")], [], None, None, False),
        ([("power_mode", "IN", ("7W", "MAXN"))], [("predicted_latency_ms", True)], None, None, False),
        ([("bound", "=", "compute")], [], None, None, False),  # no row has it
        ([("predicted_latency_ms", "=", 1.0)], [], None, None, True),
        ([], [("power_mode", False), ("predicted_latency_ms", True)], None, None, False),
        ([], [], set(keys[5:15]), [("15W", "int8"), ("7W", "fp16")], False),
        ([("predicted_latency_ms", "<", 3)], [], None, [("MAXN", "fp16")], True),
    ]
    for where, order, wanted, targets, one in reads:
        got = list(store.rows("orin", "v1", {k: 0 for k in wanted} if wanted is not None else None, targets, where,
                              order=order, one_per_key=one))
        assert got == _sql_rows(rows, where, order, wanted, targets, one), (where, order, targets, one)
    assert sum(1 for _ in store.rows("orin", "v1")) == len(rows)
    skip: set[str] = set()
    seen = []
    for key, _row in store.rows("orin", "v1", skip=skip):  # a key added to skip while streaming is passed over
        seen.append(key)
        skip.add(key)
    assert seen == keys
    store.close()


def test_every_value_comes_back_with_its_type_and_bits(tmp_path):
    """A column of floats with nulls, of a float NaN of its own, of ints where floats are expected, of bools with
    nulls, of texts with nulls, and of nulls only: each value comes back equal and of its type (NaN as NaN)."""
    import math

    a, b, c = digest("a"), digest("b"), digest("c")
    rows = [(a, edge("a", "orin", "15W", "fp16", 0.1 + 0.2, True)),
            (b, edge("b", "orin", "15W", "fp16", None, None)._replace(power_w=15, bound=None, fps=math.nan)),
            (c, edge("c", "orin", "15W", "fp16", 5e-324, False)._replace(power_w=7.5, calibration="x" * 300))]
    store = FitStore(tmp_path / "edges.sqlite")
    store.put("orin", "v1", rows)
    got = list(store.rows("orin", "v1"))
    for (k, r), (key, row) in zip(got, rows):
        assert k == key
        for x, y in zip(r, row):
            assert type(x) is type(y) and (x == y or (x != x and y != y)), (x, y)
    # a NaN meets no comparison, as SQLite's NULL and Cypher's null do not
    assert [k for k, _ in store.rows("orin", "v1", where=[("fps", ">", 0)])] == [a, c]
    assert [k for k, _ in store.rows("orin", "v1", where=[("power_w", "=", 15)])] == [a, b]  # 15.0 and 15
    assert [k for k, _ in store.rows("orin", "v1", where=[("predicted_latency_ms", "<", "x")])] == []
    store.close()


def test_an_ordered_read_of_a_large_chunk_gives_the_same_rows_read_item_by_item_or_whole(tmp_path):
    """A chunk of 6,000 rows read in latency order: its first rows (a top-k stops there; their columns read item by
    item from the blob) and all of them (the columns read whole once many rows were asked) are SQLite's rows."""
    import itertools
    import random

    rnd = random.Random(3)
    rows = [(digest(str(i)), edge(f"m{i}", "orin", "15W", rnd.choice(["fp16", "int8"]),
                                  rnd.choice([None, rnd.random() * 10]), rnd.choice([True, False, None])))
            for i in range(6000)]
    store = FitStore(tmp_path / "edges.sqlite")
    store.put("orin", "v1", rows)
    order = [("predicted_latency_ms", False)]
    want = _sql_rows(rows, [], order)
    assert list(itertools.islice(store.rows("orin", "v1", order=order), 5)) == want[:5]
    assert list(store.rows("orin", "v1", order=order)) == want
    where = [("precision", "=", "int8")]
    assert list(itertools.islice(store.rows("orin", "v1", where=where, order=[("fps", True)]), 3)) == \
        _sql_rows(rows, where, [("fps", True)])[:3]
    store.close()


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_read_stopped_early_and_outlived_by_its_store_closes_quietly(tmp_path, capfd):
    """A top-k stops reading (its generator still open) and the store is closed before the generator goes: nothing
    is printed when it is collected (its blob handles went with the connection)."""
    import gc

    store = FitStore(tmp_path / "edges.sqlite")
    store.put("orin", "v1", [(digest(str(i)), edge(f"m{i}", "orin", "15W", "fp16", float(i), True))
                             for i in range(5000)])
    reader = store.rows("orin", "v1", order=[("predicted_latency_ms", False)])
    assert next(reader)[1].model == "m0"
    store.close()
    del reader
    gc.collect()
    assert capfd.readouterr().err == ""
