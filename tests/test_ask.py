"""Plain-language questions: the parser's readings (tests/ask_questions.yaml), the answers they give on a real registry
(computed here again by filtering the fit rows in Python), the CLI, and the optional LLM path against a local HTTP
server started by the test."""
from __future__ import annotations

import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from embodied_tui.ask.parse import FIELDS, parse_question, query_from_spec, tool_schema
from embodied_tui.cli import main
from embodied_tui.errors import UserError

SPEC = yaml.safe_load((Path(__file__).parent / "ask_questions.yaml").read_text())
QUESTIONS = SPEC["questions"]
ALL_PHRASINGS = [(q["q"], q) for q in QUESTIONS] + [(p, q) for q in QUESTIONS for p in q.get("paraphrases", [])]


@pytest.fixture(scope="module")
def vocab(graph):
    from embodied_tui.services.graph import vocabulary

    return vocabulary(graph)


def expected_spec(entry: dict) -> dict:
    return {"subject": entry.get("subject", "model"), "where": sorted(entry.get("where", [])),
            "order": entry.get("order", []), "limit": entry.get("limit"), "count": entry.get("count", False),
            "unparsed": sorted(entry.get("unparsed", []))}


def parsed_spec(text: str, vocab) -> dict:
    q = parse_question(text, vocab)
    return {"subject": q.subject, "where": sorted(c.cypher() for c in q.conditions),
            "order": [o.cypher() for o in q.order_by], "limit": q.limit, "count": q.count,
            "unparsed": sorted(q.unparsed)}


# ------------------------------------------------------------------------------------------------ the question set

def test_the_set_covers_every_kind_of_phrase():
    assert len(QUESTIONS) >= 40
    text = " ".join(c for q in QUESTIONS for c in q.get("where", []) + q.get("order", []))
    for needle in ("r.latency_ms <", "r.latency_ms <=", "r.latency_ms >", "r.fps >=", "r.fps >", "h.power_w =",
                   "h.power_w <", "h.power_mode =", "r.precision", "m.params <", "m.params >", "m.macs",
                   "m.flops", "m.weight_bytes", "m.family", "m.task", "m.type", "m.name", "h.device IN",
                   "h.type", "NOT h.device", "NOT m.family", "r.fits_memory = true", "r.fits_memory = false",
                   "r.bound", "r.measured_latency_ms", "r.latency_ms ASC", "r.latency_ms DESC", "m.params ASC",
                   "m.params DESC", "r.memory_headroom_bytes DESC", "r.energy_mj ASC", "m.macs ASC",
                   "h.power_w ASC"):
        assert needle in text, needle
    assert any(q.get("count") for q in QUESTIONS) and any(q.get("unparsed") for q in QUESTIONS)
    assert any(q.get("subject") == "hardware" for q in QUESTIONS)
    assert sum(len(q.get("paraphrases", [])) for q in QUESTIONS) >= 15


@pytest.mark.parametrize("text, entry", ALL_PHRASINGS, ids=[t for t, _ in ALL_PHRASINGS])
def test_question_reads_as_expected(text, entry, vocab):
    assert parsed_spec(text, vocab) == expected_spec(entry)


# ------------------------------------------------------------------------------------------------ answers, by hand

def _headroom(entry, mode, row):
    if row.weight_bytes is None:
        return None
    if mode.memory_bandwidth_gbps is None:
        return None if entry.onchip_memory_bytes is None else entry.onchip_memory_bytes - row.weight_bytes
    if entry.memory_bytes is None:
        return None
    return entry.memory_bytes - (row.weight_bytes + (row.activation_bytes or 0))


def _model_env(rec) -> dict:
    a = rec.architecture
    return {"m.name": rec.name, "m.family": a.family, "m.type": a.type, "m.task": a.task, "m.params": rec.params,
            "m.macs": rec.macs, "m.flops": rec.flops, "m.weight_bytes": rec.weight_bytes}


def _hw_env(entry, mode) -> dict:
    return {"h.device": entry.id, "h.name": entry.name, "h.type": entry.type, "h.vendor": entry.vendor,
            "h.power_mode": mode.name, "h.power_w": mode.power_w}


def universe(fx, joined: bool, subject: str) -> list[dict]:
    records = {r.name: r for r in fx.records}
    if joined:
        out = []
        for row in fx.rows:
            entry = next(d for d in fx.devices if d.id == row.hardware)
            mode = entry.mode(row.power_mode)
            out.append({**_model_env(records[row.model]), **_hw_env(entry, mode),
                        "r.latency_ms": row.predicted_latency_ms, "r.fps": row.fps,
                        "r.energy_mj": row.energy_mj, "r.precision": row.precision, "r.bound": row.bound,
                        "r.fits_memory": row.fits_memory, "r.measured_latency_ms": row.measured_latency_ms,
                        "r.memory_headroom_bytes": _headroom(entry, mode, row)})
        return out
    if subject == "model":
        return [_model_env(r) for r in fx.records]
    return [_hw_env(e, m) for e in fx.devices for m in e.power_modes]


_COND = re.compile(r"^(?P<neg>NOT )?(?P<f>[mhr]\.\w+) (?P<op><=|>=|<>|<|>|=|IN) (?P<v>.+)$")
_NULL = re.compile(r"^(?P<neg>NOT )?(?P<f>[mhr]\.\w+) IS NULL$")


def holds(condition: str, env: dict) -> bool:
    """A condition string of the question set on one row, with grand-cypher's logic: a comparison with a null value
    is false, and NOT of it true."""
    m = _NULL.match(condition)
    if m:
        return (env[m["f"]] is None) != bool(m["neg"])
    m = _COND.match(condition)
    assert m, condition
    have, want, op = env[m["f"]], json.loads(m["v"]), m["op"]
    if have is None:
        result = False
    else:
        result = {"<": lambda: have < want, "<=": lambda: have <= want, ">": lambda: have > want,
                  ">=": lambda: have >= want, "=": lambda: have == want, "<>": lambda: have != want,
                  "IN": lambda: have in want}[op]()
    return not result if m["neg"] else result


def _norm(value):
    return float(f"{value:.9g}") if isinstance(value, float) else value


def expected_rows(fx, entry: dict, columns: list[str], joined: bool):
    rows = [env for env in universe(fx, joined, entry.get("subject", "model"))
            if all(holds(c, env) for c in entry.get("where", []))]
    order = [o.split() for o in entry.get("order", [])]
    for fld, _ in order:
        rows = [env for env in rows if env[fld] is not None]
    return rows, order


@pytest.mark.parametrize("entry", QUESTIONS, ids=[q["q"] for q in QUESTIONS])
def test_answer_equals_the_fit_rows_filtered_by_hand(entry, fx, graph):
    from embodied_tui.services.ask import ask

    answer = ask(fx.db, entry["q"], graph=graph)
    parsed = parse_question(entry["q"], __import__("embodied_tui.services.graph", fromlist=["x"]).vocabulary(graph))
    assert answer["cypher"] == parsed.to_cypher()  # the Cypher shown is the one that ran
    columns = answer["columns"]
    joined = "r." in answer["cypher"] or "RUNS_ON" in answer["cypher"]
    envs, order = expected_rows(fx, entry, columns, joined)
    got = [tuple(_norm(v) for v in row) for row in answer["rows"]]
    want = [tuple(_norm(env[c]) for c in columns) for env in envs]
    if entry.get("count"):
        assert sorted(got) == sorted(set(want))
        assert answer["count"] == len(set(want))
        return
    if order:
        fld, direction = order[0]
        i = columns.index(fld)
        values = sorted((w[i] for w in want), reverse=direction == "DESC")
        limit = entry.get("limit") or len(values)
        assert [g[i] for g in got] == values[:limit]
        assert not Counter(got) - Counter(want)  # every row returned qualifies
        return
    assert Counter(got) == Counter(want)
    if "r.latency_ms" in columns:  # unordered questions list the fastest first
        lat = [g[columns.index("r.latency_ms")] for g in got if g[columns.index("r.latency_ms")] is not None]
        assert lat == sorted(lat)


def test_most_questions_have_an_answer_on_the_fixture(fx, graph):
    from embodied_tui.services.ask import ask

    answered = sum(1 for q in QUESTIONS if ask(fx.db, q["q"], graph=graph)["rows"])
    assert answered >= len(QUESTIONS) * 0.6


@pytest.mark.parametrize("entry", QUESTIONS, ids=[q["q"] for q in QUESTIONS])
def test_ask_on_the_cut_down_graph_answers_as_on_the_whole_graph(entry, fx, graph):
    from embodied_tui.services.ask import ask

    assert ask(fx.db, entry["q"]) == ask(fx.db, entry["q"], graph=graph)


@pytest.mark.parametrize("text", [t for t, _ in ALL_PHRASINGS])
def test_raw_cypher_of_each_question_gives_the_same_rows_on_its_scoped_graph(text, fx, graph, vocab):
    """`embodied-ai query` runs raw Cypher on a graph cut to what the query can match (data.graph.query_scope): the
    Cypher of every question of the set gives the rows, in the order, it gives on the whole graph."""
    from embodied_tui.ask.graph import run_cypher
    from embodied_tui.services.ask import query

    cypher = parse_question(text, vocab).to_cypher()
    result = query(fx.db, cypher)
    assert (result["columns"], result["rows"]) == run_cypher(graph, cypher)


def test_selections_keep_only_what_the_conditions_allow(fx, vocab):
    from embodied_tui.ask.graph import keep_scope
    from embodied_tui.services.graph import load_graph

    spec = {"subject": "model", "conditions": [
        {"field": "h.device", "op": "IN", "value": ["raspberry-pi-5", "jetson-orin-nano-8gb"]},
        {"field": "h.device", "op": "=", "value": "raspberry-pi-5"},
        {"field": "m.family", "op": "=", "value": "yolo", "negate": True},
        {"field": "h.power_w", "op": "=", "value": 15.0}, {"field": "r.latency_ms", "op": "<", "value": 3}]}
    assert query_from_spec(spec).selections() == {"h.device": ["raspberry-pi-5"], "h.power_w": [15]}
    keep = parse_question("fastest model on the agx orin in int8", vocab).selections()
    agx = ["jetson-agx-orin-32gb", "jetson-agx-orin-64gb"]
    assert keep == {"r.precision": ["int8"], "h.device": agx}
    small = load_graph(fx.db, scope=keep_scope(keep))
    devices = {d["device"] for _, d in small.nodes(data=True) if "Hardware" in d["__labels__"]}
    edges = [d for *_, d in small.edges(data=True) if "RUNS_ON" in d["__labels__"]]
    assert devices == set(agx)
    assert edges and len(edges) == sum(1 for r in fx.rows if r.hardware in agx and r.precision == "int8")
    assert {d["name"] for _, d in small.nodes(data=True) if "Model" in d["__labels__"]} == {r.name for r in fx.records}


# ------------------------------------------------------------------------------------------------ readings

def test_vocabulary_comes_from_the_graph(fx, vocab):
    assert set(vocab.models) == {r.name for r in fx.records}
    assert {d.id for d in vocab.devices} == {d.id for d in fx.devices}
    orin = next(d for d in vocab.devices if d.id == "jetson-agx-orin-64gb")
    assert "MAXN" in orin.modes and "agx orin" in orin.aliases
    assert set(SPEC["vocabulary"]["models"]) == set(vocab.models)


def test_unknown_words_are_reported_with_a_hint_not_guessed(vocab):
    q = parse_question("models under 30 ms on a jetsen", vocab)
    assert q.unparsed == ["jetsen"]
    assert not any(c.field == "h.device" for c in q.conditions)
    assert any("did you mean 'jetson'" in n for n in q.notes)
    q = parse_question("models under 30 on the pi 5", vocab)
    assert "30" in q.unparsed and any("no unit" in n for n in q.notes)


def test_assumptions_are_stated(vocab):
    q = parse_question("detectors at 30 fps on the pi 5", vocab)
    assert any("at least 30 fps" in n for n in q.notes)
    q = parse_question("fastest model on the pi 5", vocab)
    assert q.limit == 1 and any("singular superlative" in n for n in q.notes)
    q = parse_question("fastest models on the pi 5", vocab)
    assert q.limit is None and q.order_by[0].field == "r.latency_ms"


def test_readings_name_each_phrase(vocab):
    q = parse_question("Which models run under 30 ms on a Jetson at 15 W?", vocab)
    meanings = {r.phrase: r.meaning for r in q.readings}
    assert meanings["under 30 ms"] == "r.latency_ms < 30"
    assert meanings["at 15 W"] == "h.power_w = 15"
    assert meanings["Jetson"].startswith("h.device IN [")


def test_empty_question_is_a_user_error(vocab):
    with pytest.raises(UserError, match="empty question"):
        parse_question("   ", vocab)


def test_tool_schema_and_spec_validation():
    schema = tool_schema()
    assert schema["properties"]["conditions"]["items"]["properties"]["field"]["enum"] == list(FIELDS)
    q = query_from_spec({"subject": "model", "conditions": [{"field": "r.latency_ms", "op": "<", "value": 5}]})
    assert q.to_cypher().startswith("MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware)\nWHERE r.latency_ms < 5")
    with pytest.raises(UserError, match="unknown field 'm.password'") as err:
        query_from_spec({"subject": "model", "conditions": [{"field": "m.password", "op": "=", "value": 1}]})
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="not valid JSON"):
        query_from_spec("{not json")


# ------------------------------------------------------------------------------------------------ the CLI

def test_cli_ask_prints_readings_answer_cypher_and_what_it_ignored(fx):
    q = "which models run under 5 ms on the orin nano at 7W when it rains"
    result = CliRunner().invoke(main, ["--db", str(fx.db), "ask", q])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("read as: ") and "under 5 ms -> r.latency_ms < 5;" in out
    assert "not understood (ignored): rains" in out
    assert "cypher:\n  MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware)" in out
    assert "jetson-orin-nano" in out


def test_cli_ask_json_rows_are_the_cyphers_rows(fx, graph):
    from embodied_tui.ask.graph import run_cypher

    result = CliRunner().invoke(main, ["--db", str(fx.db), "ask", "how many models have fewer than 200k params",
                                       "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["source"] == "parser" and data["query"]["count"] is True
    columns, rows = run_cypher(graph, data["cypher"])
    assert data["columns"] == columns and data["rows"] == rows
    assert data["count"] == len({r.name for r in fx.records if r.params < 200_000})


def test_cli_ask_empty_question_exits_2(fx):
    result = CliRunner().invoke(main, ["--db", str(fx.db), "ask", " "])
    assert result.exit_code == 2 and result.output.startswith("error: empty question")


# ------------------------------------------------------------------------------------------------ the optional LLM

class _LLMServer:
    """An OpenAI-compatible endpoint on 127.0.0.1 that records each request and answers with ``reply``."""

    def __init__(self):
        self.requests: list[dict] = []
        self.reply: dict = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append({"path": self.path, "body": json.loads(body),
                                       "auth": self.headers.get("Authorization")})
                payload = json.dumps(outer.reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def answer_with(self, arguments: dict | None, content: str = "") -> None:
        message = {"role": "assistant", "content": content}
        if arguments is not None:
            message["tool_calls"] = [{"id": "call_1", "type": "function", "function": {
                "name": "structured_query", "arguments": json.dumps(arguments)}}]
        self.reply = {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": message}]}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def llm(monkeypatch):
    server = _LLMServer()
    monkeypatch.setenv("EMBODIED_AI_LLM_URL", server.url)
    monkeypatch.setenv("EMBODIED_AI_LLM_KEY", "sk-test")
    yield server
    server.close()


def test_llm_request_carries_the_question_vocabulary_and_tool(fx, graph, llm):
    from embodied_tui.services.ask import ask

    spec = {"subject": "model", "conditions": [{"field": "r.latency_ms", "op": "<", "value": 3},
                                               {"field": "h.device", "op": "=", "value": "raspberry-pi-5"}],
            "order_by": [{"field": "r.latency_ms", "descending": False}], "limit": 2}
    llm.answer_with(spec)
    answer = ask(fx.db, "two quickest things on my pi", llm=True, graph=graph)
    (request,) = llm.requests
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-test"
    body = request["body"]
    assert body["messages"][-1] == {"role": "user", "content": "two quickest things on my pi"}
    assert "raspberry-pi-5" in body["messages"][0]["content"] and "resnet_tiny" in body["messages"][0]["content"]
    (tool,) = body["tools"]
    assert tool["function"]["name"] == "structured_query" and tool["function"]["parameters"] == tool_schema()
    assert body["tool_choice"] == {"type": "function", "function": {"name": "structured_query"}}
    assert answer["source"] == "llm"
    assert answer["cypher"] == query_from_spec(spec).to_cypher()
    pi5 = sorted(r.predicted_latency_ms for r in fx.rows
                 if r.hardware == "raspberry-pi-5" and r.predicted_latency_ms < 3)
    assert [row[answer["columns"].index("r.latency_ms")] for row in answer["rows"]] == pi5[:2]


def test_llm_without_a_tool_call_or_with_a_bad_one_is_one_line(fx, graph, llm):
    from embodied_tui.services.ask import ask

    llm.answer_with(None, content="I think the Pi is fast.")
    with pytest.raises(UserError, match="did not call the structured_query tool") as err:
        ask(fx.db, "what is fast", llm=True, graph=graph)
    assert "\n" not in str(err.value)
    llm.answer_with({"subject": "model", "conditions": [{"field": "m.name", "op": "DROP", "value": "x"}]})
    with pytest.raises(UserError, match="structured query is invalid at conditions.0.op"):
        ask(fx.db, "what is fast", llm=True, graph=graph)


def test_cli_ask_llm_and_missing_endpoint(fx, llm, monkeypatch):
    llm.answer_with({"subject": "hardware", "conditions": [{"field": "m.name", "op": "=", "value": "mlp_policy"}],
                     "order_by": [{"field": "r.latency_ms"}], "limit": 1})
    result = CliRunner().invoke(main, ["--db", str(fx.db), "ask", "--llm", "where is mlp_policy fastest", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    best = min((r for r in data["rows"]), key=lambda r: r[data["columns"].index("r.latency_ms")])
    assert data["source"] == "llm" and len(data["rows"]) == 1 and data["rows"][0] == best
    monkeypatch.delenv("EMBODIED_AI_LLM_URL")
    result = CliRunner().invoke(main, ["--db", str(fx.db), "ask", "--llm", "anything"])
    assert result.exit_code == 2 and "EMBODIED_AI_LLM_URL" in result.output
