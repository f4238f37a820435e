"""The registry graph and Cypher on it (grand-cypher), checked against the fit rows and records it is built from.

The registry is real: small zoo models saved as TorchScript, analysed, registered and fitted (tests/ask_fixture.py).
"""
from __future__ import annotations

import json
from collections import Counter

import pytest
from click.testing import CliRunner

from ask_fixture import registry_fixture
from embodied_tui.cli import main
from embodied_tui.data.graph import CypherError, run_cypher

SEED = ("MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE r.latency_ms < 30 AND h.power_w < 15 "
        "RETURN m.name, h.name, r.latency_ms")


@pytest.fixture(scope="module")
def fx():
    return registry_fixture()


@pytest.fixture(scope="module")
def graph(fx):
    from embodied_tui.services.ask import load_graph

    return load_graph(fx.db)


def _mode(fx, device_id: str, mode: str):
    entry = next(d for d in fx.devices if d.id == device_id)
    return entry, entry.mode(mode)


def test_seed_query_gives_the_rows_of_the_fit_table(fx, graph):
    columns, rows = run_cypher(graph, SEED)
    assert columns == ["m.name", "h.name", "r.latency_ms"]
    expected = []
    for row in fx.rows:
        entry, mode = _mode(fx, row["hardware"], row["power_mode"])
        lat = row["predicted_latency_ms"]
        if lat is not None and lat < 30 and mode.power_w is not None and mode.power_w < 15:
            expected.append((row["model"], entry.name, lat))
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
    row = next(r for r in fx.rows if r["model"] == "resnet_tiny" and r["hardware"] == "jetson-orin-nano-8gb"
               and r["power_mode"] == "15W" and r["precision"] == "fp16")
    data = graph.get_edge_data("model:resnet_tiny", "hw:jetson-orin-nano-8gb@15W")["fp16"]
    assert data["latency_ms"] == row["predicted_latency_ms"]
    assert data["measured_latency_ms"] == 2.5  # the fixture's stored measurement
    assert data["bound"] == row["bound"] and data["fps"] == row["fps"]
    entry, _ = _mode(fx, "jetson-orin-nano-8gb", "15W")
    assert data["memory_headroom_bytes"] == pytest.approx(
        entry.memory_bytes - row["weight_bytes"] - row["activation_bytes"])


def test_count_and_min_aggregations(fx, graph):
    columns, rows = run_cypher(graph, "MATCH (m:Model) RETURN COUNT(m)")
    assert rows == [[len(fx.records)]]
    columns, rows = run_cypher(graph, 'MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE h.device = "raspberry-pi-5" '
                                      'RETURN m.name, MIN(r.latency_ms), COUNT(r)')
    assert columns == ["m.name", "MIN(r.latency_ms)", "COUNT(r)"]
    pi5 = [r for r in fx.rows if r["hardware"] == "raspberry-pi-5"]
    expected = {name: (min(r["predicted_latency_ms"] for r in pi5 if r["model"] == name),
                       sum(1 for r in pi5 if r["model"] == name)) for name in {r["model"] for r in pi5}}
    assert {name: (low, n) for name, low, n in rows} == expected


def test_order_by_and_limit(fx, graph):
    _, rows = run_cypher(graph, "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE r.precision = 'int8' "
                                "RETURN m.name, h.device, r.latency_ms ORDER BY r.latency_ms DESC LIMIT 3")
    values = sorted((r["predicted_latency_ms"] for r in fx.rows
                     if r["precision"] == "int8" and r["predicted_latency_ms"] is not None), reverse=True)
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
