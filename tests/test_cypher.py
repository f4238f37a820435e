"""The registry graph and Cypher on it (grand-cypher), checked against the fit rows and records it is built from.

The registry is real: small zoo models saved as TorchScript, analysed, registered and fitted (tests/ask_fixture.py).
The fit-row cache of services.graph is checked against fits computed afresh (``services.fit.fit_all``) on copies of it.
"""
from __future__ import annotations

import json
from collections import Counter

import pytest
from ask_fixture import copy_registry
from click.testing import CliRunner
from store_probe import stored_targets

from embodied_tui.ask.graph import CypherError, build_graph, model_node_id, run_cypher
from embodied_tui.cli import main

SEED = ("MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE r.latency_ms < 30 AND h.power_w < 15 "
        "RETURN m.name, h.name, r.latency_ms")


def _mode(fx, device_id: str, mode: str):
    entry = next(d for d in fx.devices if d.id == device_id)
    return entry, entry.mode(mode)


def test_seed_query_gives_the_rows_of_the_fit_table(fx, graph):
    columns, rows = run_cypher(graph, SEED)
    assert columns == ["m.name", "h.name", "r.latency_ms"]
    expected = []
    for row in fx.rows:
        entry, mode = _mode(fx, row.hardware, row.power_mode)
        lat = row.predicted_latency_ms
        if lat is not None and lat < 30 and mode.power_w is not None and mode.power_w < 15:
            expected.append((row.model, entry.name, lat))
    assert expected, "the fixture should have fast rows on low-power devices"
    assert Counter(map(tuple, rows)) == Counter(expected)


def test_one_edge_per_fit_row_and_one_hardware_node_per_power_mode(fx, graph):
    runs_on = [(u, v, d) for u, v, d in graph.edges(data=True) if "RUNS_ON" in d["__labels__"]]
    assert len(runs_on) == len(fx.rows)
    hardware = [d for _, d in graph.nodes(data=True) if "Hardware" in d["__labels__"]]
    assert len(hardware) == sum(len(e.power_modes) for e in fx.devices)
    # parallel edges: one per precision between a model and a device x mode
    per_pair = Counter((u, v) for u, v, _ in runs_on)
    for (u, v), n in per_pair.items():
        device, mode = v.removeprefix("hw:").split("@", 1)
        _, pm = _mode(fx, device, mode)
        assert n == len(pm.peak_tflops)


def test_edge_properties_come_from_the_fit_rows(fx, graph):
    row = next(r for r in fx.rows if r.model == "resnet_tiny" and r.hardware == "jetson-orin-nano-8gb"
               and r.power_mode == "15W" and r.precision == "fp16")
    data = graph.get_edge_data("model:resnet_tiny", "hw:jetson-orin-nano-8gb@15W")["fp16"]
    assert data["latency_ms"] == row.predicted_latency_ms
    assert data["measured_latency_ms"] == 2.5  # the fixture's stored measurement
    assert data["bound"] == row.bound and data["fps"] == row.fps
    entry, _ = _mode(fx, "jetson-orin-nano-8gb", "15W")
    assert data["memory_headroom_bytes"] == pytest.approx(
        entry.memory_bytes - row.weight_bytes - row.activation_bytes)


def test_count_and_min_aggregations(fx, graph):
    columns, rows = run_cypher(graph, "MATCH (m:Model) RETURN COUNT(m)")
    assert rows == [[len(fx.records)]]
    columns, rows = run_cypher(graph, 'MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE h.device = "raspberry-pi-5" '
                                      'RETURN m.name, MIN(r.latency_ms), COUNT(r)')
    assert columns == ["m.name", "MIN(r.latency_ms)", "COUNT(r)"]
    pi5 = [r for r in fx.rows if r.hardware == "raspberry-pi-5"]
    expected = {name: (min(r.predicted_latency_ms for r in pi5 if r.model == name),
                       sum(1 for r in pi5 if r.model == name)) for name in {r.model for r in pi5}}
    assert {name: (low, n) for name, low, n in rows} == expected


def test_order_by_and_limit(fx, graph):
    _, rows = run_cypher(graph, "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE r.precision = 'int8' "
                                "RETURN m.name, h.device, r.latency_ms ORDER BY r.latency_ms DESC LIMIT 3")
    values = sorted((r.predicted_latency_ms for r in fx.rows
                     if r.precision == "int8" and r.predicted_latency_ms is not None), reverse=True)
    assert [r[2] for r in rows] == values[:3]
    _, rows = run_cypher(graph, "MATCH (m:Model) RETURN m.name ORDER BY m.params ASC LIMIT 2")
    assert [r[0] for r in rows] == [r.name for r in sorted(fx.records, key=lambda r: r.params)[:2]]


def test_measurement_nodes_link_models_and_devices(fx, graph):
    _, rows = run_cypher(graph, "MATCH (z:Measurement)-[:OF]->(m:Model) MATCH (z)-[:ON]->(h:Hardware) "
                                "RETURN m.name, h.device, h.power_mode, z.precision, z.latency_ms")
    expected = [(m.model, m.hardware, m.power_mode, m.precision, m.latency_ms) for m in fx.measurements]
    assert Counter(map(tuple, rows)) == Counter(expected)


def test_single_quoted_strings_and_return_order(graph):
    columns, rows = run_cypher(graph, "MATCH (m:Model) WHERE m.name = 'mlp_policy' RETURN id(m), m.name, m.params")
    assert columns == ["ID(m)", "m.name", "m.params"]  # grand-cypher lists functions first; we keep RETURN order
    assert rows[0][:2] == ["model:mlp_policy", "mlp_policy"]


@pytest.mark.parametrize("text, column, word", [
    ("MATCH (m:Model) WHER m.name = 'x' RETURN m.name", 17, "WHER"),
    ("MATCH (m:Model RETURN m", 16, "RETURN"),
])
def test_syntax_error_is_one_line_with_the_position(graph, text, column, word):
    with pytest.raises(CypherError) as err:
        run_cypher(graph, text)
    message = str(err.value)
    assert "\n" not in message
    assert f"at column {column} near {word!r}" in message and message.endswith(text)


def test_unfinished_query_and_unknown_variable_are_one_line(graph):
    with pytest.raises(CypherError, match="at the end of the query") as err:
        run_cypher(graph, "MATCH (m:Model) RETURN")
    assert "\n" not in str(err.value)
    with pytest.raises(CypherError, match="cannot run") as err:
        run_cypher(graph, "MATCH (m:Model) RETURN q.name")
    assert "\n" not in str(err.value)


def test_cli_query_runs_the_seed_query(fx, graph):
    result = CliRunner().invoke(main, ["--db", str(fx.db), "query", SEED, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["columns"] == ["m.name", "h.name", "r.latency_ms"]
    assert Counter(map(tuple, data["rows"])) == Counter(map(tuple, run_cypher(graph, SEED)[1]))
    table = CliRunner().invoke(main, ["--db", str(fx.db), "query", SEED])
    assert table.exit_code == 0 and f"{len(data['rows'])} rows" in table.output


def test_cli_query_syntax_error_exits_2_with_one_line(fx):
    result = CliRunner().invoke(main, ["--db", str(fx.db), "query", "MATCH (m:Model RETURN m"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: Cypher syntax error at column 16")


# ------------------------------------------------------------------------------------------------ the fit-row cache

def runs_on(graph) -> dict:
    """(model node, hardware node, precision) -> the RUNS_ON edge's properties, in the graph's order."""
    return {(u, v, k): {p: x for p, x in d.items() if p != "__labels__"}
            for u, v, k, d in graph.edges(keys=True, data=True) if "RUNS_ON" in d["__labels__"]}


def fresh_graph(db):
    """The graph from fits computed now, not from the cache."""
    from embodied_tui.data.store import Registry
    from embodied_tui.services.fit import devices, fit_all, list_measurements

    reg = Registry(db)
    return build_graph(reg.list_models(), devices(reg), fit_all(reg), list_measurements(reg))


def poison(db, model: str) -> None:
    """Make the store say every latency of ``model`` is 12345 ms (so a graph showing it was read from the store)."""
    from store_probe import set_latency

    set_latency(db, model, 12345.0)


def stored_models(db) -> int:
    from store_probe import stored_models as held

    return held(db)


def latencies(graph, model: str) -> set:
    return {d["latency_ms"] for (u, _, _), d in runs_on(graph).items() if u == model_node_id(model)}


def test_graph_from_the_fit_cache_equals_fresh_fits(tmp_path):
    from embodied_tui.data.store import Registry
    from embodied_tui.services.graph import fit_cache_path, load_graph

    db = copy_registry(tmp_path)
    assert not fit_cache_path(db).exists()
    cold = load_graph(db)
    assert stored_models(db) == sum(1 for r in Registry(db).list_models() if r.macs is not None)
    warm = load_graph(db)
    fresh = runs_on(fresh_graph(db))
    assert runs_on(cold) == fresh and runs_on(warm) == fresh
    assert list(runs_on(warm)) == list(fresh)  # same order too: ties in ORDER BY come out the same
    assert sorted(warm.nodes) == sorted(fresh_graph(db).nodes)


def test_fit_cache_is_read_and_recomputed_when_models_measurements_or_devices_change(tmp_path):
    from embodied_tui.data.hardware import load_catalog
    from embodied_tui.data.store import Registry
    from embodied_tui.services.fit import add_measurement
    from embodied_tui.services.graph import load_graph
    from embodied_tui.services.hardware import add_user_device

    db = copy_registry(tmp_path)
    reg = Registry(db)
    load_graph(db)
    poison(db, "mlp_policy")
    assert latencies(load_graph(db), "mlp_policy") == {12345.0}  # read, not computed

    record, identity, details = reg.entries({"resnet_tiny"})[0]
    reg.put_many([(record.model_copy(update={"name": "resnet_copy"}), identity, details)])
    graph = load_graph(db)
    assert latencies(graph, "mlp_policy") == {12345.0}  # a new model: only its rows are computed
    edges = runs_on(graph)
    copy = {(v, k): d["latency_ms"] for (u, v, k), d in edges.items() if u == model_node_id("resnet_copy")}
    original = {(v, k): d["latency_ms"] for (u, v, k), d in edges.items() if u == model_node_id("resnet_tiny")}
    assert copy and copy == original  # the same record under another name fits the same

    reg.update("mlp_policy", tags={"site": "lab"})  # another record: its rows are computed again
    assert 12345.0 not in latencies(load_graph(db), "mlp_policy")
    reg.remove("resnet_copy")
    assert runs_on(load_graph(db)) == runs_on(fresh_graph(db))

    add_measurement(reg, model="small_vit", hw="raspberry-pi-5", mode=None, precision="fp32", latency_ms=3.0,
                    source="test", runtime="test")
    graph = load_graph(db)  # a measurement moves fitted efficiencies: every row on that device again
    assert runs_on(graph) == runs_on(fresh_graph(db))
    assert graph.get_edge_data(model_node_id("small_vit"), "hw:raspberry-pi-5@default")["fp32"][
        "measured_latency_ms"] == 3.0

    poison(db, "mlp_policy")
    board = load_catalog()[0].model_copy(update={"id": "test-board-9000", "name": "Test Board 9000", "aliases": []})
    add_user_device(reg, board)
    graph = load_graph(db)  # a new device: its rows are computed (the others' are read)
    fresh = runs_on(fresh_graph(db))
    assert {k: d for k, d in runs_on(graph).items() if not k[0] == model_node_id("mlp_policy")} == \
        {k: d for k, d in fresh.items() if not k[0] == model_node_id("mlp_policy")}
    assert latencies(graph, "mlp_policy") - {12345.0} == {d["latency_ms"] for k, d in fresh.items()
                                                          if k[0] == model_node_id("mlp_policy")
                                                          and k[1].startswith("hw:test-board-9000@")}
    assert any(v.startswith("hw:test-board-9000@") for _, v, _ in runs_on(graph))


@pytest.mark.parametrize("content", [b"not a database {", b""])
def test_unreadable_fit_store_is_ignored(tmp_path, content):
    from embodied_tui.services.graph import fit_cache_path, load_graph

    db = copy_registry(tmp_path)
    fit_cache_path(db).write_bytes(content)
    assert runs_on(load_graph(db)) == runs_on(fresh_graph(db))
    assert runs_on(load_graph(db)) == runs_on(fresh_graph(db))


def test_a_measurement_recomputes_only_its_devices_rows(tmp_path):
    from embodied_tui.data.store import Registry
    from embodied_tui.services.fit import add_measurement
    from embodied_tui.services.graph import load_graph

    db = copy_registry(tmp_path)
    load_graph(db)
    poison(db, "mlp_policy")
    add_measurement(Registry(db), model="small_vit", hw="raspberry-pi-5", mode=None, precision="fp32",
                    latency_ms=3.0, source="test", runtime="test")
    graph = load_graph(db)
    pi = {k: d["latency_ms"] for k, d in runs_on(graph).items()
          if k[0] == model_node_id("mlp_policy") and k[1].startswith("hw:raspberry-pi-5@")}
    others = {k: d["latency_ms"] for k, d in runs_on(graph).items()
              if k[0] == model_node_id("mlp_policy") and not k[1].startswith("hw:raspberry-pi-5@")}
    assert pi and 12345.0 not in pi.values()  # the measured device's rows: computed again
    assert others and set(others.values()) == {12345.0}  # every other device's: read from the store


# ------------------------------------------------------------------------------------------------ query scope

SCOPED = [
    SEED,
    "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE m.name = 'resnet_tiny' RETURN h.device, r.precision, "
    "r.latency_ms ORDER BY r.latency_ms LIMIT 5",
    "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE h.device = 'jetson-orin-nano-8gb' AND r.precision = 'int8' "
    "RETURN COUNT(r)",
    "MATCH (m:Model) WHERE m.params < 200000 RETURN m.name, m.params ORDER BY m.params",
    "MATCH (z:Measurement)-[:OF]->(m:Model) MATCH (z)-[:ON]->(h:Hardware) RETURN m.name, h.device, ID(z)",
    "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE NOT h.type = 'gpu' AND r.fits_memory = true "
    "RETURN m.name, h.device, r.precision LIMIT 7",
    "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE (h.power_w < 15 OR h.power_w > 100) AND r.latency_ms < 1 "
    "RETURN m.name, h.device, r.precision LIMIT 50",
    "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE h.power_w < 15 OR r.latency_ms < 0.1 RETURN m.name, h.device",
    "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE h.device IN ['raspberry-pi-5', 'hailo-8'] "
    "RETURN m.name, h.device, r.latency_ms",
    "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE r.latency_ms < 1 AND h.power_w < 20 RETURN m, r, h LIMIT 3",
    "MATCH (m:Model)-[r:RUNS_ON]->(h) WHERE h.power_w < 15 RETURN m.name, h.device LIMIT 20",
    "MATCH (m)-[r]->(h) WHERE r.latency_ms < 0.05 RETURN ID(m), ID(h), r.precision",
    "MATCH (h:Hardware) WHERE h.power_w <= 15 RETURN h.device, h.power_mode",
    "MATCH (m:Model) MATCH (h:Hardware) WHERE m.params < 50000 AND h.power_w < 8 RETURN m.name, h.device",
    "MATCH (a:Model)-[r:RUNS_ON]->(h:Hardware)<-[s:RUNS_ON]-(b:Model) WHERE a.params < 50000 AND "
    "r.latency_ms < 0.2 RETURN a.name, b.name, h.device LIMIT 20",
    "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE toLower(m.family) = 'resnet' AND h.power_w < 10 "
    "RETURN m.name, h.device",
    "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE r.latency_ms < 2 RETURN m.name, MIN(r.latency_ms), COUNT(r)",
    "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE r.energy_mj < 5 RETURN DISTINCT h.device ORDER BY h.device",
    "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE r.bound = 'memory' AND m.params > 100000 "
    "RETURN m.name, r.latency_ms ORDER BY r.latency_ms DESC LIMIT 4",
    "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE m.name = 5 RETURN m.name",
    "MATCH (m:Model)-[r:RUNS_ON*1..2]->(h:Hardware) WHERE m.params < 50000 RETURN m.name LIMIT 3",
    "MATCH (m:Model {name: 'mlp_policy'})-[r:RUNS_ON]->(h:Hardware) WHERE r.latency_ms < 1 RETURN h.device",
    "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE r.latency_ms < 3 AND q.x = 1 RETURN m.name",
    "MATCH (m:Model) WHER m.name = 'x' RETURN m.name",
    "MATCH (m:Model) RETURN q.name",
    # RUNS_ON conditions the fit store's SQL applies, and precisions no fit is computed outside of
    "MATCH (m:Model)-[f:RUNS_ON]->(h:Hardware) WHERE h.device = 'jetson-orin-nano-8gb' AND f.precision = 'fp16' "
    "RETURN m.name, h.power_mode, f.latency_ms ORDER BY f.latency_ms",
    "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE r.precision IN ['int8', 'fp16'] AND r.fps >= 1000 "
    "AND r.bound = 'memory' RETURN m.name, h.device, r.precision, r.fps",
    "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE r.precision = 'fp16' AND r.precision = 'int8' RETURN m.name",
    "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE r.latency_ms <= 0.5 AND r.energy_mj > 0.01 "
    "AND NOT r.precision = 'fp32' RETURN m.name, h.device, r.precision",
    "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE r.power_mode = '15W' AND r.bound < 3 RETURN m.name, h.device",
    "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE r.latency_ms = 'x' OR r.precision = 'int8' RETURN m.name LIMIT 5",
]


def _rows_or_error(run):
    try:
        return run()
    except CypherError as exc:
        return str(exc)


@pytest.mark.parametrize("text", SCOPED)
def test_query_on_its_scoped_graph_gives_the_whole_graphs_rows_in_order(fx, graph, text):
    from embodied_tui.services.ask import query

    whole = _rows_or_error(lambda: run_cypher(graph, text))
    scoped = _rows_or_error(lambda: (lambda r: (r["columns"], r["rows"]))(query(fx.db, text)))
    assert scoped == whole  # same rows in the same order, or the same error


def test_query_scope_keeps_only_what_the_query_can_match(fx, graph, tmp_path):
    from embodied_tui.ask.graph import WHOLE, query_scope
    from embodied_tui.services.graph import fit_cache_path, load_graph

    scope = query_scope(SEED)
    assert scope.labels == {"Model", "Hardware"} and scope.edge_labels == {"RUNS_ON"}
    small = load_graph(fx.db, scope=scope)
    hardware = [d for _, d in small.nodes(data=True) if "Hardware" in d["__labels__"]]
    assert hardware and all(d["power_w"] < 15 for d in hardware)
    kept = runs_on(small)
    assert kept and all(d["latency_ms"] < 30 for d in kept.values())
    expected = {k for k, d in runs_on(graph).items()
                if d["latency_ms"] is not None and d["latency_ms"] < 30 and (graph.nodes[k[1]]["power_w"] or 99) < 15}
    assert set(kept) == expected
    assert not any("Measurement" in d["__labels__"] for _, d in small.nodes(data=True))
    # nodes alone: no edges, and no fit rows read or computed (none stored on a fresh copy: the store holds only the
    # registry's summary, services.summary)
    import sqlite3

    db = copy_registry(tmp_path)
    models = load_graph(db, scope=query_scope("MATCH (m:Model) WHERE m.params < 200000 RETURN m.name"))
    assert models.number_of_edges() == 0
    assert stored_targets(db) == []
    with sqlite3.connect(fit_cache_path(db)) as store:
        assert store.execute("SELECT COUNT(*) FROM summary").fetchone() == (1,)
    assert {d["name"] for _, d in models.nodes(data=True)} == {r.name for r in fx.records if r.params < 200_000}
    # what it cannot read safely runs on the whole graph
    for text in ("MATCH (m:Model) WHER m.name = 'x' RETURN m.name",
                 "MATCH (m:Model)-[r:RUNS_ON*1..2]->(h:Hardware) RETURN m.name",
                 "MATCH (m)-[r:RUNS_ON]-(h:Hardware) WHERE r.latency_ms < 1 RETURN m.name"):
        assert query_scope(text) == WHOLE, text
    # a function in WHERE may raise on any row: labels are cut, rows are not
    unsafe = query_scope("MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE toLower(m.family) = 'x' "
                         "AND r.latency_ms < 1 RETURN m.name")
    assert unsafe.labels == {"Model", "Hardware"} and not unsafe.node_tests and not unsafe.edge_tests


# ------------------------------------------------------------------------------------------------- the fast path switch
# query_scope reads grand-cypher's parsed query (private attributes, ask/cypher_scope.py); the public path is the whole
# graph. Both must give the same rows, and a grand-cypher without that structure must get the public path.
def _rows_on(fx, text, scope):
    from embodied_tui.services.graph import load_graph

    return _rows_or_error(lambda: run_cypher(load_graph(fx.db, scope=scope), text))


@pytest.mark.parametrize("text", SCOPED)
def test_fast_and_public_query_scope_give_the_same_rows(fx, text):
    from embodied_tui.ask.graph import WHOLE, query_scope

    public = query_scope(text, fast=False)
    assert public == WHOLE
    assert _rows_on(fx, text, query_scope(text, fast=True)) == _rows_on(fx, text, public)


def test_fast_path_cuts_the_graph_and_the_switch_turns_it_off(monkeypatch):
    from embodied_tui.ask.graph import WHOLE, query_scope

    monkeypatch.delenv("EMBODIED_AI_NO_FASTPATH", raising=False)
    cut = [text for text in SCOPED if query_scope(text) != WHOLE]
    assert len(cut) >= len(SCOPED) - 4  # only the unreadable ones (paths, unlabelled, syntax errors) are whole
    monkeypatch.setenv("EMBODIED_AI_NO_FASTPATH", "1")
    assert all(query_scope(text) == WHOLE for text in SCOPED)
    monkeypatch.setenv("EMBODIED_AI_NO_FASTPATH", "0")
    assert all(query_scope(text) != WHOLE for text in cut)


def _hidden(module: str, cls: str, attribute: str):
    """(class, property): the attribute of a real grand-cypher class as a newer release might keep it: under another
    name (writes land there), so reading the old name raises AttributeError."""
    import importlib

    owner = getattr(importlib.import_module(module), cls)
    store = f"_renamed{attribute}"

    def read(self):
        raise AttributeError(f"{cls!r} object has no attribute {attribute!r}")

    return owner, property(read, lambda self, value: object.__setattr__(self, store, value))


RENAMED = [("grandcypher", "GrandCypherTransformer", "_executors"), ("grandcypher", "GrandCypherExecutor", "_paths"),
           ("grandcypher", "GrandCypherExecutor", "_child_executors"),
           ("grandcypher", "GrandCypherExecutor", "_where_condition"), ("grandcypher", "AND", "_condition_b"),
           ("grandcypher", "CompoundCondition", "_operator"), ("grandcypher", "CompoundCondition", "_should_be"),
           ("grandcypher.types", "AttributeRef", "attribute")]


@pytest.mark.parametrize("module,cls,attribute", RENAMED, ids=[f"{c}.{a}" for _, c, a in RENAMED])
def test_query_scope_falls_back_to_the_whole_graph_when_grand_cyphers_structure_differs(fx, module, cls, attribute):
    from embodied_tui.ask.graph import WHOLE, query_scope

    text = ("MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE m.params > 1000 AND (h.power_w < 15 OR h.power_w > 100) "
            "AND r.latency_ms < 1 RETURN m.name, h.device, r.precision")
    fast = query_scope(text, fast=True)
    assert fast != WHOLE and fast.node_tests and fast.edge_tests
    with pytest.MonkeyPatch.context() as patch:
        owner, hidden = _hidden(module, cls, attribute)
        patch.setattr(owner, attribute, hidden, raising=False)
        fallback = query_scope(text, fast=True)  # no exception: the public path
    assert fallback == WHOLE
    assert _rows_on(fx, text, fast) == _rows_on(fx, text, fallback)


# ------------------------------------------------------------------------------------------------- stored pipelines

def _pipeline_registry(tmp_path):
    """A copy of the fixture registry with one stored pipeline: its registered detector, then a tiny transformer
    prefill from a config (tests/test_pipeline.py's)."""
    import yaml
    from test_pipeline import write_spec

    db = copy_registry(tmp_path)
    spec = write_spec(tmp_path / "spec", 4.0)
    data = yaml.safe_load(spec.read_text())
    data["stages"] = [{"name": "det", "model": "yolo_style_detector"}, data["stages"][1]]
    spec.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(main, ["--db", str(db), "pipeline", "register", str(spec), "--name", "det-lm"])
    assert result.exit_code == 0, result.output
    return db, spec


def _query(db, text):
    result = CliRunner().invoke(main, ["--db", str(db), "query", text, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_pipeline_runs_on_edges_are_the_pipeline_fits(tmp_path, fx):
    """Every RUNS_ON edge of the Pipeline node against `pipeline fit` of the spec file on that device x mode."""
    from embodied_tui.services.pipeline import fit_pipeline

    db, spec = _pipeline_registry(tmp_path)
    out = _query(db, "MATCH (p:Pipeline)-[r:RUNS_ON]->(h:Hardware) RETURN p.name, p.version, p.rate_hz, h.device, "
                     "h.power_mode, r.total_ms, r.rate_hz, r.meets_rate, r.margin, r.mode, r.precision, "
                     "r.fits_memory")
    rows = [dict(zip(out["columns"], row)) for row in out["rows"]]
    assert rows and {r["p.name"] for r in rows} == {"det-lm"} and {r["p.version"] for r in rows} == {1}
    expected = {}
    for entry in fx.devices:
        for mode in entry.power_modes:
            try:
                fit = fit_pipeline(db, spec, entry.id, mode=mode.name, with_changes=False)
            except Exception:  # the device states no peak at fp16: no edge
                continue
            expected[(entry.id, mode.name)] = fit
    assert {(r["h.device"], r["h.power_mode"]) for r in rows} == set(expected)
    for r in rows:
        fit = expected[(r["h.device"], r["h.power_mode"])]
        if fit.total_ms is None:  # a stage without a time (the detector on a device that states no peak for it)
            assert r["r.total_ms"] is None and r["r.meets_rate"] is None and fit.reason
            continue
        assert r["r.total_ms"] == pytest.approx(fit.total_ms) and r["r.rate_hz"] == pytest.approx(fit.rate_hz)
        assert r["r.meets_rate"] == fit.meets_rate == (1000 / fit.total_ms >= 4.0)
        assert r["r.margin"] == pytest.approx(1 - fit.total_ms / 250.0)  # period 1000 / 4 Hz = 250 ms
        assert r["r.mode"] == r["h.power_mode"] and r["r.precision"] == "fp16" and r["p.rate_hz"] == 4.0
        assert r["r.fits_memory"] == fit.memory_fit.fits
    assert any(r["r.meets_rate"] for r in rows) and not all(r["r.meets_rate"] for r in rows), "both verdicts occur"
    # a WHERE on the edge keeps exactly the rows that hold it (the scoped graph agrees with the whole one)
    fast = _query(db, "MATCH (p:Pipeline)-[r:RUNS_ON]->(h:Hardware) WHERE r.meets_rate = true AND h.power_w < 20 "
                      "RETURN h.device, h.power_mode")
    assert sorted(map(tuple, fast["rows"])) == sorted(
        (d, m) for (d, m), fit in expected.items() if fit.meets_rate
        and next(e for e in fx.devices if e.id == d).mode(m).power_w is not None
        and next(e for e in fx.devices if e.id == d).mode(m).power_w < 20)


def test_pipeline_uses_its_registered_models(tmp_path):
    db, _ = _pipeline_registry(tmp_path)
    out = _query(db, "MATCH (p:Pipeline)-[u:USES]->(m:Model) RETURN p.name, u.stage, m.name, m.family")
    assert out["rows"] == [["det-lm", "det", "yolo_style_detector", "yolo"]]  # the config stage runs no model
    nodes = _query(db, "MATCH (p:Pipeline) RETURN p.name, p.stages, p.models, p.stage_count")
    assert nodes["rows"] == [["det-lm", ["det", "prompt"], ["yolo_style_detector"], 2]]


def test_an_engine_error_is_one_line_never_a_traceback(fx, graph):
    """The query the parser once made of "what's our smallest model by parameter count?" (DISTINCT names ordered
    by a field not returned): grand-cypher raises AssertionError; we say it in one CypherError line."""
    from embodied_tui.services.ask import query

    crash = "MATCH (m:Model) WHERE NOT m.params IS NULL RETURN DISTINCT m.name ORDER BY m.params ASC LIMIT 1"
    for run in (lambda: run_cypher(graph, crash), lambda: query(fx.db, crash)):
        with pytest.raises(CypherError) as caught:
            run()
        message = str(caught.value)
        assert "\n" not in message and message.startswith("Cypher query cannot run") and "m.params" in message


def test_a_raw_query_fits_only_the_devices_and_precisions_its_where_clause_allows(fx, graph, tmp_path):
    """`query` pushes h.device, r.precision and RUNS_ON comparisons down to the planner: only the fits of that device
    at that precision are computed, and the rows are the whole graph's."""
    from embodied_tui.ask.graph import query_scope
    from embodied_tui.data.store import Registry
    from embodied_tui.services.ask import query
    from embodied_tui.services.fit import fit_all

    text = ("MATCH (m:Model)-[f:RUNS_ON]->(h:Hardware) WHERE h.device = 'jetson-orin-nano-8gb' AND f.precision = 'fp16' "
            "AND f.latency_ms < 5 RETURN m.name, h.power_mode, f.latency_ms ORDER BY f.latency_ms")
    scope = query_scope(text)
    assert scope.precisions == {"fp16"}
    assert scope.edge_where == (("precision", "=", "fp16"), ("predicted_latency_ms", "<", 5))
    db = copy_registry(tmp_path)
    answer = query(db, text)
    assert (answer["columns"], answer["rows"]) == run_cypher(graph, text)  # the whole graph's rows, in order
    assert answer["rows"]
    targets = [(device, precision) for _, device, _, precision in stored_targets(db)]
    assert set(targets) == {("jetson-orin-nano-8gb", "fp16")}  # nothing else fitted
    assert len(targets) == len(fit_all(Registry(db), hw="jetson-orin-nano-8gb", precision="fp16"))
