"""The PostgreSQL registry backend (data/pg) on a real throwaway server (tests/pg_server.py): concurrent writer
processes, writers killed mid-transaction, SQL metacharacters and unicode, filters pushed down to SQL against the
Python filter, TinyDB -> PostgreSQL -> TinyDB export/import, the CLI on both backends, connection errors, the schema
version, the change marker, details stored once, and the shared fit-edge cache against the SQLite one.

The store tests of test_store.py also run on both backends (its ``any_db`` tests)."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from record_samples import analysis

from embodied_tui.data.backend import RegistryBackend, candidates, open_registry
from embodied_tui.data.filters import compile_filter
from embodied_tui.data.pg import registry as pgreg
from embodied_tui.data.pg import schema
from embodied_tui.data.pg.connect import forget, shown
from embodied_tui.data.pg.registry import PgRegistry
from embodied_tui.data.records import Architecture
from embodied_tui.data.store import Registry
from embodied_tui.errors import RegistryError

TESTS = str(Path(__file__).parent)


def sql(url: str, query: str, params=None) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema.SCHEMA}")
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def state(url: str) -> dict:
    """Everything the database holds, for before/after comparisons."""
    return {table: sql(url, f"SELECT t::text FROM {table} t ORDER BY 1")
            for table in ("models", "details", "model_names", "docs", "change_counter")}


def spawn(script: str, *args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_for(path: Path, child: subprocess.Popen) -> None:
    while not path.exists():
        assert child.poll() is None, child.communicate()
        time.sleep(0.01)


# ------------------------------------------------------------------------------------------------ concurrency
# A child process: wait for the start file, register its own bytes under ONE shared name, add one measurement, and
# take the next number of a counter table in a read-modify-write (table_transaction).
WRITER = r"""
import sys, time
from pathlib import Path
from record_samples import analysis
from embodied_tui.data.backend import open_registry

url, i, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
reg = open_registry(url)
reg.list_models()  # connected and migrated before the start line
while not go.exists():
    time.sleep(0.005)
record, status = reg.add(analysis(100 + i), "shared", {f"w{i}": str(i)})
assert status in ("added", "new_version"), status
reg.table_insert("measurements", {"worker": i, "version": record.version})
with reg.table_transaction("counters") as table:
    taken = [d["n"] for d in table.all()]
    table.insert({"n": max(taken, default=0) + 1, "worker": i})
"""


def test_sixteen_writer_processes_on_one_name_get_versions_1_to_16(pg_url, tmp_path):
    go = tmp_path / "go"
    open_registry(pg_url).list_models()  # the schema exists before the children race
    children = [spawn(WRITER, pg_url, i, go) for i in range(16)]
    time.sleep(1.0)
    go.touch()
    for child in children:
        out, err = child.communicate(timeout=180)
        assert child.returncode == 0, err
    reg = open_registry(pg_url)
    versions = reg.versions("shared")
    assert [r.version for r in versions] == list(range(1, 17))  # none lost, none twice
    assert sorted(r.sha256 for r in versions) == sorted(analysis(100 + i).sha256 for i in range(16))
    measured = reg.table_all("measurements")
    assert sorted(d["worker"] for d in measured) == list(range(16))
    assert sorted(d["version"] for d in measured) == list(range(1, 17))  # each writer saw its own version
    assert sorted(d["n"] for d in reg.table_all("counters")) == list(range(1, 17))  # no lost read-modify-write
    for record in versions:  # each version's tags: what it was given plus every earlier version's (carried over)
        writer = next(d["worker"] for d in measured if d["version"] == record.version)
        assert record.tags[f"w{writer}"] == str(writer) and len(record.tags) == record.version
        assert reg.details(record).census[0].params == record.params
    assert sql(pg_url, "SELECT latest FROM model_names WHERE name = 'shared'") == [(16,)]


# A child that opens a write transaction (a new version of "net": its details and row written, the name locked)
# and stalls in it until it is killed.
STALL_IN_TRANSACTION = r"""
import sys, time
from pathlib import Path
from record_samples import analysis
from embodied_tui.data.backend import open_registry
from embodied_tui.data.pg import registry as pgreg

url, ready = sys.argv[1], Path(sys.argv[2])
original = pgreg._set_latest

def stall(cur, names):
    original(cur, names)  # every write of the transaction is done; the counter row and the name are locked
    ready.touch()
    time.sleep(600)

pgreg._set_latest = stall
open_registry(url).add(analysis(99), "net", {"doomed": ""})
"""

# A child that writes in a loop (new versions and side-table rows) until it is killed.
WRITE_LOOP = r"""
import sys
from record_samples import analysis
from embodied_tui.data.backend import open_registry
reg = open_registry(sys.argv[1])
k = int(sys.argv[2])
n = 0
while True:
    reg.add(analysis(1000 * (k + 1) + n), "loop")
    reg.table_insert("measurements", {"child": k, "n": n})
    n += 1
"""


def test_writer_killed_mid_transaction_leaves_the_database_as_it_was(pg_url, tmp_path):
    reg = open_registry(pg_url)
    reg.add(analysis(1), "net")
    reg.table_insert("measurements", {"kept": True})
    before = state(pg_url)
    ready = tmp_path / "ready"
    child = spawn(STALL_IN_TRANSACTION, pg_url, ready)
    wait_for(ready, child)
    assert state(pg_url) == before  # readers never see the open transaction
    os.kill(child.pid, signal.SIGKILL)
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert state(pg_url) == before  # rolled back: no row, no details, no counter bump
    # its locks went with its connection: the next writer of the same name goes ahead and takes version 2
    record, status = reg.add(analysis(2), "net")
    assert (status, record.version) == ("new_version", 2) and "doomed" not in record.tags
    assert [r.version for r in reg.versions("net")] == [1, 2]


def test_writers_killed_at_random_moments_leave_a_consistent_database(pg_url):
    reg = open_registry(pg_url)
    reg.table_insert("measurements", {"n": -1})
    for k in range(4):
        count = len(reg.versions("loop"))
        child = spawn(WRITE_LOOP, pg_url, k)
        while len(reg.versions("loop")) < count + 1 + k and child.poll() is None:
            time.sleep(0.01)  # a few writes landed: kill it wherever it is now
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=60)
        versions = [r.version for r in reg.versions("loop")]
        assert versions == list(range(1, len(versions) + 1))  # no gap, no duplicate
        mine = [d["n"] for d in reg.table_all("measurements") if d.get("child") == k]
        assert mine == list(range(len(mine)))  # every side-table write that landed, in order
        assert sql(pg_url, "SELECT latest FROM model_names WHERE name = 'loop'") == [(len(versions),)]
        orphans = sql(pg_url, "SELECT count(*) FROM details d WHERE NOT EXISTS "
                              "(SELECT 1 FROM models m WHERE m.details = d.sha256)")
        assert orphans == [(0,)]
        for record in reg.versions("loop"):
            assert reg.details_problem(record) is None


# ------------------------------------------------------------------------------------------------ text round trips
HOSTILE_TAGS = {
    "q'uote": "it's \"quoted\"",
    "semi;colon": "'; DROP TABLE models; --",
    "pct": "%s %(x)s {0} $1",
    "back\\slash": "a\\b\\\\c",
    "like": "50%_off [a-z]* .+",
    "ü日本": "🤖 naïve Ωmega",
    "KELVIN": "\u212a sign",  # K (Kelvin sign) folds to an ASCII k in Python's lower()
}
HOSTILE_DESCRIPTION = "line one\nO'Reilly said \"hi\"; DROP TABLE docs; -- %s %% \\x00? ü 日本 🤖"


def test_sql_metacharacters_quotes_and_unicode_round_trip(pg_url, tmp_path):
    tiny = Registry(tmp_path / "t.json")
    tiny.add(analysis(1, architecture=Architecture(family="fam'ily\"; --", type="cnn", task="détection")),
             "O.Reilly+x_y-z", HOSTILE_TAGS, HOSTILE_DESCRIPTION)
    tiny.table_insert("measurements", {"note": HOSTILE_DESCRIPTION, "tags": HOSTILE_TAGS})
    pg = open_registry(pg_url)
    assert [s for _, s in pg.put_many(tiny.entries())] == ["added"]
    pg.table_insert("measurements", tiny.table_all("measurements")[0])
    (record,) = pg.list_models()
    assert record == tiny.get("O.Reilly+x_y-z")
    assert record.tags == HOSTILE_TAGS and record.description == HOSTILE_DESCRIPTION
    assert record.architecture.family == "fam'ily\"; --"
    assert pg.table_all("measurements") == tiny.table_all("measurements")
    assert sql(pg_url, "SELECT count(*) FROM models") == [(1,)]  # nothing was executed from the text
    # a fresh process reads the same (not the write cache)
    forget(pg_url)
    pgreg.clear_cache()
    assert open_registry(pg_url).get("O.Reilly+x_y-z").model_dump() == record.model_dump()
    # updated in place with more of the same
    (updated,) = pg.update("O.Reilly+x_y-z", {"new'": "'"}, untag=["semi;colon"], description="ß'\"")
    assert updated.tags == {**{k: v for k, v in HOSTILE_TAGS.items() if k != "semi;colon"}, "new'": "'"}
    assert pg.get("O.Reilly+x_y-z").description == "ß'\""
    # filters on that text: the same matches as Python's, with LIKE wildcards and quotes taken literally
    for expr, hits in (('tags ~ "50%_"', 1), ('tags ~ "50x_"', 0), ("tags.pct ~ '%(x)s'", 1),
                       ("family ~ \"'ily\"", 1), ("family ~ 'fam'", 1), ("tags ~ 'k sign'", 1),
                       ('task = DÉTECTION', 1), ("tags = \"new'='\"", 1)):
        found = pg.list_models(filter=expr)
        assert len([r for r in found if compile_filter(expr)(r)]) == hits, expr


# ------------------------------------------------------------------------------------------------ filter pushdown
def varied(i: int):
    families = ["resnet", "yolo", "Yolo", "vit", "gpt", "lstm", "\u212aelvin"]
    tasks = ["classification", "detection", None, "policy"]
    return analysis(i, params=1000 * i if i % 7 else 10_000_000 + i, macs=None if i % 5 == 0 else 10**6 * i * i,
                    format=["onnx", "torchscript", "safetensors"][i % 3],
                    architecture=Architecture(family=families[i % len(families)], type=["cnn", "transformer"][i % 2],
                                              task=tasks[i % len(tasks)]))


# (expression, exact: the SQL alone selects exactly the matches)
FILTERS = [
    ("family = yolo", True), ("family != yolo", True), ("family ~ OL", True), ("family !~ ol", True),
    ("family < m", True), ("family >= Yolo", True), ("family ~ kel", True), ("task = detection", True),
    ("task != detection", True), ("NOT task ~ i", True), ("format = onnx AND params < 10M", True),
    ("params >= 10000000", True), ("params = 3000", True), ("params != 3000", True), ("macs < 1G", True),
    ("macs != 4000000", True), ("NOT macs > 100M", True), ("tags = robot", True), ('tags = "site=lab"', True),
    ("tags != robot", True), ("tags ~ LA", True), ("tags !~ la", True), ("tags.site = LAB", True),
    ("tags.site != lab", True), ("tags.site ~ a", True), ("tags.Site = lab", True), ("version = 2", True),
    ("type = cnn OR (family = gpt AND NOT params > 20K)", True), ("name ~ m1", True), ("name > m3", True),
    ("gmacs <= 1", False), ("gmacs = 0.004", False), ("weight_mb > 0.05", False), ("size_mb != 1", False),
    ("resnet", False), ("yolo OR params < 5000", False), ("NOT yolo", False), ("input = 1x3x32x32", False),
    ("description ~ second", False), ("family = yolo AND description ~ d", False), ("", True),
]


def test_filters_pushed_down_to_sql_match_the_python_filter(pg_url, tmp_path):
    tiny = Registry(tmp_path / "t.json")
    for i in range(1, 36):
        tags = {"robot": ""} if i % 2 else {"site": ["lab", "Lab", "home"][i % 3]}
        tiny.add(varied(i), f"m{i % 12}", tags, "second" if i > 12 else "")
    pg = open_registry(pg_url)
    pg.put_many(tiny.entries())
    for latest_only in (True, False):
        everything = tiny.list_models(latest_only)
        assert pg.list_models(latest_only) == everything
        for expr, exact in FILTERS:
            pred = compile_filter(expr)
            want = [r for r in everything if pred(r)]
            superset = pg.list_models(latest_only, filter=expr)
            assert [r for r in superset if pred(r)] == want, expr
            if exact:
                assert superset == want, expr  # the SQL said it exactly: no extra rows fetched
    assert len(pg.list_models(filter="family = yolo")) < len(pg.list_models())  # it really filtered in SQL
    assert candidates(pg, filter="family = yolo") == pg.list_models(filter="family = yolo")
    assert candidates(tiny, filter="family = yolo") == tiny.list_models()  # TinyDB: all, tested in Python


# ------------------------------------------------------------------------------------------------ moving registries
def test_export_import_round_trip_tinydb_postgresql_tinydb(pg_url, tmp_path):
    from embodied_tui.services.models import export_bundle, import_bundle

    src = tmp_path / "src.json"
    tiny = Registry(src)
    tiny.add(analysis(1, uncounted=[{"module": "head", "op": "nonzero", "reason": "data-dependent"}]), "a",
             {"robot": "", "site": "lab"}, "first")
    tiny.add(analysis(2, macs=None, flops=None, macs_null_reason="data-dependent loop", macs_complete=False,
                      activation_bytes=None), "a", description="second")
    tiny.add(analysis(3, census=[], layer_costs=[]), "bare")
    tiny.add(analysis(4), "u-less.name+1", HOSTILE_TAGS, HOSTILE_DESCRIPTION)
    tiny.remove("a", 1)
    tiny.add(analysis(5), "a")  # versions 2 and 3 of a: numbers kept across the trip
    first, second, third = tmp_path / "1.json", tmp_path / "2.json", tmp_path / "3.json"
    assert export_bundle(first, db=src) == 4
    assert [s for _, s in import_bundle(first, db=pg_url)] == ["added"] * 4
    assert export_bundle(second, db=pg_url) == 4
    back = tmp_path / "back.json"
    assert [s for _, s in import_bundle(second, db=back)] == ["added"] * 4
    assert export_bundle(third, db=back) == 4
    bundles = [json.loads(p.read_text()) for p in (first, second, third)]
    for bundle in bundles:
        bundle.pop("exported_at")
    assert bundles[0] == bundles[1] == bundles[2]  # every field of every record, identity and details
    for reg in (open_registry(pg_url), Registry(back)):
        assert reg.entries() == tiny.entries()
        assert [r.model_dump() for r in reg.list_models(latest_only=False)] == \
               [r.model_dump() for r in tiny.list_models(latest_only=False)]
    assert [s for _, s in import_bundle(first, db=pg_url)] == ["unchanged"] * 4  # idempotent


def test_cli_prints_the_same_json_on_both_backends(pg_url, tmp_path, cli):
    src = tmp_path / "src.json"
    tiny = Registry(src)
    for i in range(1, 6):
        tiny.add(varied(i), f"m{i}", {"site": "lab"} if i % 2 else {})
    open_registry(pg_url).put_many(tiny.entries())
    for args in (("model", "list", "--json"), ("model", "list", "--json", "--filter", "tags.site = lab"),
                 ("model", "list", "--json", "--filter", "params < 3500", "--sort", "-params"),
                 ("model", "show", "m2", "--json")):
        on_file, on_server = cli(*args, registry=src), cli(*args, registry=pg_url)
        assert on_file.exit_code == 0, on_file.output
        assert on_server.exit_code == 0, on_server.output
        assert json.loads(on_server.output) == json.loads(on_file.output), args


def test_env_var_selects_postgresql(pg_url, monkeypatch):
    monkeypatch.setenv("EMBODIED_AI_DB", pg_url)
    reg = open_registry(None)
    assert isinstance(reg, PgRegistry) and isinstance(reg, RegistryBackend)
    tiny = open_registry(str(Path("/tmp/x.json")))
    assert isinstance(tiny, Registry) and isinstance(tiny, RegistryBackend)  # the file backend, unchanged
    assert open_registry(reg) is reg
    from embodied_tui.services import hardware, models

    assert isinstance(models.registry(None), PgRegistry) and isinstance(hardware.registry(pg_url), PgRegistry)


# ------------------------------------------------------------------------------------------------ errors
def test_connection_problems_are_one_line_without_the_password(cli, one_line_error, pg_url):
    base = pg_url.rsplit("/", 1)[0].replace("postgresql://postgres@", "postgresql://postgres:hunter2@")
    host_port = base.rsplit("@", 1)[1]
    cases = [
        ("postgresql://ana:hunter2@127.0.0.1:1/reg", "no server is listening", "start PostgreSQL"),
        (f"{base}/no_such_db", 'database "no_such_db" does not exist', "createdb"),
        (f"postgresql://nobody:hunter2@{host_port}/postgres", 'role "nobody" does not exist', "createuser"),
        ("postgresql://ana:hunter2@/", "names no database", "postgresql://USER@HOST"),
        ("postgres://ana:hunter2@127.0.0.1:1/reg?sslmode=bogus", "sslmode", "postgresql://USER@HOST"),
        ("postgresql://ana:hunter2@127.0.0.1:1/reg?bogus_option=1", "bad PostgreSQL URL", "postgresql://USER@HOST"),
    ]
    for url, *needles in cases:
        text = one_line_error(cli("model", "list", registry=url), *needles)
        assert "hunter2" not in text, text
        assert shown(url) in text
    assert shown("postgresql://a:b@h:5/d?password=x&sslmode=require") == "postgresql://a@h:5/d?sslmode=require"


def test_newer_schema_is_refused_and_not_changed(pg_url):
    reg = open_registry(pg_url)
    reg.add(analysis(1), "net")
    assert sql(pg_url, "SELECT version FROM schema_version") == [(schema.LATEST,)]
    sql(pg_url, "INSERT INTO schema_version (version, what) VALUES (%s, 'from the future')", (schema.LATEST + 1,))
    before = state(pg_url)
    forget(pg_url)  # a new process: it checks the schema when it connects
    with pytest.raises(RegistryError, match="newer than the version") as exc:
        open_registry(pg_url).list_models()
    assert "\n" not in str(exc.value) and "upgrade embodied-ai" in str(exc.value)
    assert state(pg_url) == before


def test_migrations_run_once_even_when_processes_start_together(pg_url, tmp_path):
    go = tmp_path / "go"
    script = ("import sys, time\nfrom pathlib import Path\nfrom embodied_tui.data.backend import open_registry\n"
              "while not Path(sys.argv[2]).exists():\n    time.sleep(0.005)\nopen_registry(sys.argv[1]).list_models()\n")
    children = [spawn(script, pg_url, go) for _ in range(6)]
    time.sleep(0.8)
    go.touch()
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    assert sql(pg_url, "SELECT version FROM schema_version") == [(m[0],) for m in schema.MIGRATIONS]


def test_hand_edited_rows_are_validated(pg_url):
    reg = open_registry(pg_url)
    reg.add(analysis(1), "net")
    reg.add(analysis(2), "other")
    sql(pg_url, "UPDATE models SET record = (record::jsonb || '{\"description\": \"by hand\"}')::json "
                "WHERE name = 'net'")
    assert reg.get("net").description == "by hand" and reg.list_models()[0].description == "by hand"
    sql(pg_url, "UPDATE models SET record = (record::jsonb || '{\"params\": \"lots\"}')::json WHERE name = 'net'")
    with pytest.raises(RegistryError, match=r"net v1 is invalid at params") as exc:
        open_registry(pg_url).list_models()
    assert "\n" not in str(exc.value)


def test_connections_of_ended_threads_are_closed(pg_url):
    import threading

    reg = open_registry(pg_url)
    reg.add(analysis(1), "net")

    def mine() -> int:  # this database's embodied-ai sessions, as the server counts them
        return sql(pg_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND application_name = 'embodied-ai'")[0][0]

    for _ in range(6):  # the app runs work in short-lived threads, each with its own connection
        worker = threading.Thread(target=lambda: open_registry(pg_url).get("net"))
        worker.start()
        worker.join()
    open_registry(pg_url).get("net")
    assert mine() <= 2  # this thread's and the last worker's (closed when the next one is made); not one per thread


# ------------------------------------------------------------------------------------------------ marker, details
def test_change_marker_moves_on_every_write_and_only_then(pg_url):
    reg = open_registry(pg_url)
    seen = [reg.change_marker()]

    def moved() -> bool:
        seen.append(reg.change_marker())
        return seen[-1] != seen[-2]

    reg.add(analysis(1), "net")
    assert moved()
    reg.add(analysis(1), "net")  # unchanged: nothing written
    reg.list_models(), reg.get("net"), reg.table_all("hardware")
    assert not moved()
    for write in (lambda: reg.update("net", {"a": ""}), lambda: reg.table_insert("measurements", {"x": 1}),
                  lambda: reg.table_upsert("hardware", {"id": "b"}, "id"), lambda: reg.remove("net")):
        write()
        assert moved()


def test_details_are_stored_once_and_damage_is_reported(pg_url):
    reg = open_registry(pg_url)
    a = analysis(5)
    rec, _ = reg.add(a, "net")
    twin, _ = reg.add(a, "twin")
    ((digest, body),) = sql(pg_url, "SELECT sha256, body::text FROM details")
    assert digest == hashlib.sha256(body.encode()).hexdigest()
    assert sql(pg_url, "SELECT count(*) FROM models WHERE details = %s", (digest,)) == [(2,)]
    assert reg.details(twin).census == a.census
    reg.remove("net")
    assert reg.details(twin).layer_costs == a.layer_costs  # still referenced by twin
    sql(pg_url, "UPDATE details SET body = replace(body::text, '\"Conv\"', '\"Linear\"')::json")
    with pytest.raises(RegistryError, match="does not match its hash") as exc:
        reg.details(twin)
    assert "model register" in str(exc.value) and "\n" not in str(exc.value)
    assert reg.add(a, "twin")[1] == "repaired"  # registering the same file again restores them
    assert reg.details(twin).census == a.census
    reg.remove("twin")
    assert sql(pg_url, "SELECT count(*) FROM details") == [(0,)]
    empty, _ = reg.add(analysis(6, census=[], layer_costs=[]), "bare")
    assert reg.details(empty) is None


# ------------------------------------------------------------------------------------------------ fit edges
def test_fit_edge_cache_answers_as_the_sqlite_one(pg_url, tmp_path):
    from embodied_tui.ask.graph import FitEdge
    from embodied_tui.data.pg.edges import PgFitStore
    from embodied_tui.services.fit_store import FitStore

    def edge(model: str, mode: str, precision: str, ms: float | None, fits: bool | None) -> FitEdge:
        return FitEdge(model, "orin", ms, 0.5, None, "memory", 12.5, 30.0, precision, mode, 15.0, fits,
                       float("inf") if ms == 0 else (1000 / ms if ms else None), None, "default", 1e6, None)

    rows = [("k1", edge("a", "15W", "fp16", 2.0, True)), ("k1", edge("a", "30W", "fp16", 1.0, False)),
            ("k2", edge("b", "15W", "int8", None, None)), ("k2", edge("b", "15W", "fp16", 0.0, True))]
    stores = [FitStore(tmp_path / "edges.sqlite"), PgFitStore(pg_url, FitEdge)]
    for store in stores:
        store.put("orin", "v1", rows)
        store.put("orin", "v1", [("k1", edge("a", "15W", "fp16", 99.0, True))])  # already stored: kept as it was
        store.put("thor", "v1", [("k3", edge("c", "MAXN", "fp8", 3.0, True))])
    queries = [dict(), dict(keys={"k1": 0}), dict(targets=[("15W", "fp16")]), dict(targets=[]),
               dict(where=[("predicted_latency_ms", "<", 1.5)]), dict(where=[("precision", "IN", ["int8"])]),
               dict(where=[("fits_memory", "=", True)]), dict(skip={"k2"})]
    for query in queries:
        answers = [sorted(s.rows("orin", "v1", **query), key=repr) for s in stores]
        assert answers[0] == answers[1], query
    # sorted by the store: rows without the value left out, the same order on both (no ties among these rows)
    for order in ([("predicted_latency_ms", False)], [("predicted_latency_ms", True)], [("fps", True)]):
        answers = [[r.predicted_latency_ms for _, r in s.rows("orin", "v1", order=order)] for s in stores]
        assert answers[0] == answers[1] == sorted([2.0, 1.0, 0.0], reverse=order[0][1] != (order[0][0] == "fps")), order
    # one row of each model key, meeting the conditions
    for where in ([], [("predicted_latency_ms", "<", 1.5)]):
        answers = [list(s.rows("orin", "v1", where=where, one_per_key=True)) for s in stores]
        for answer in answers:
            keys = [k for k, _ in answer]
            assert len(keys) == len(set(keys)) and set(keys) == {k for k, _ in stores[0].rows("orin", "v1", where=where)}
            assert all((k, r) in rows for k, r in answer)
    assert stores[0].done("orin", "v1") == stores[1].done("orin", "v1") == {
        ("k1", "15W", "fp16"), ("k1", "30W", "fp16"), ("k2", "15W", "int8"), ("k2", "15W", "fp16")}
    for targets in ([("15W", "fp16")], [("15W", "fp16"), ("30W", "fp16")], [("15W", "int8"), ("15W", "fp16")], []):
        assert stores[0].complete("orin", "v1", targets) == stores[1].complete("orin", "v1", targets), targets
    assert stores[1].complete("orin", "v1", [("15W", "fp16"), ("15W", "fp16")]) == {"k1", "k2"}
    for store in stores:
        store.prune({"orin": "v2", "thor": "v1"})
    assert [s.done("orin", "v1") for s in stores] == [set(), set()]
    assert [len(list(s.rows("thor", "v1"))) for s in stores] == [1, 1]
    stores[0].close()


def test_ask_on_postgresql_answers_as_on_tinydb_and_fills_the_shared_edge_cache(pg_url, tmp_path):
    """The same models on both backends: ``ask`` gives the same rows, and on PostgreSQL the fit rows it computed are
    in the server's edge tables (shared by every client), not in a file beside anything."""
    from embodied_tui.services.ask import ask

    tiny, pg = Registry(tmp_path / "r.json"), open_registry(pg_url)
    for reg in (tiny, pg):
        for i in range(1, 6):
            reg.add(analysis(i), f"m{i}")
    question = "models under 1 ms on the orin nano 8gb at 15W in fp16"
    answers = [ask(reg, question) for reg in (tiny, pg)]
    assert answers[0]["rows"] and answers[0]["rows"] == answers[1]["rows"]
    tables = [t for (t,) in sql(pg_url, "SELECT tablename FROM pg_tables WHERE tablename LIKE 'fit_edges_%'")]
    assert tables and sum(sql(pg_url, f"SELECT count(*) FROM {t}")[0][0] for t in tables) > 0
    again = ask(open_registry(pg_url), question)  # a second client reads them back: the same answer
    assert again["rows"] == answers[1]["rows"]
    assert not list(tmp_path.glob("*.edges.sqlite*"))[1:]  # only the TinyDB registry's own store
