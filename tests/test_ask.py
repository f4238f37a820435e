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

from embodied_tui import units as fmt
from embodied_tui.ask.parse import FIELDS, parse_question, query_from_spec, tool_schema
from embodied_tui.cli import main
from embodied_tui.errors import UserError

SPEC = yaml.safe_load((Path(__file__).parent / "ask_questions.yaml").read_text())
QUESTIONS = SPEC["questions"]
ALL_PHRASINGS = [(q["q"], q) for q in QUESTIONS] + [(p, q) for q in QUESTIONS for p in q.get("paraphrases", [])]


@pytest.fixture(scope="module")
def vocab(graph):
    from embodied_tui.services.vocabulary import vocabulary

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
            "m.macs": rec.macs, "m.flops": rec.flops, "m.weight_bytes": rec.weight_bytes, "m.format": rec.format,
            "m.layers": sum(rec.layers.values()), "m.activation_bytes": rec.activation_bytes,
            "m.input_shape": ", ".join("x".join(str(d) for d in s) for s in rec.input_shapes), "m.dtype": rec.dtype}


def _hw_env(entry, mode) -> dict:
    """A device x mode as the catalog states it (HardwareEntry / PowerMode fields, read here directly)."""
    peaks = {f"h.peak_{p}_tflops": mode.peak_tflops.get(p)
             for p in ("fp32", "tf32", "fp16", "bf16", "fp8", "fp4", "int8", "int4")}
    return {"h.device": entry.id, "h.name": entry.name, "h.type": entry.type, "h.vendor": entry.vendor,
            "h.power_mode": mode.name, "h.power_w": mode.power_w, "h.memory_bytes": entry.memory_bytes,
            "h.memory_bandwidth_gbps": mode.memory_bandwidth_gbps, "h.device_mode": f"{entry.id}/{mode.name}", **peaks}


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
                        "r.weight_bytes": row.weight_bytes, "r.activation_bytes": row.activation_bytes,
                        "r.arithmetic_intensity": row.arithmetic_intensity,
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
    parsed = parse_question(entry["q"], __import__("embodied_tui.services.vocabulary", fromlist=["x"]).vocabulary(graph))
    assert answer["cypher"] == parsed.to_cypher()  # the Cypher shown is the one that ran
    if any(re.search(r"\d", w) for w in entry.get("unparsed", [])):  # a quantity it could not use: no table
        assert answer["refused"] and answer["rows"] == [] and not answer["understood"]
        assert answer["answer"][0].startswith("not understood: ")
        return
    assert not answer["refused"]
    columns = answer["columns"]
    joined = "r." in answer["cypher"] or "RUNS_ON" in answer["cypher"]
    envs, order = expected_rows(fx, entry, columns, joined)
    if answer["query"].get("every_device"):  # 'on both the pi 4 and the pi 5': models with a row on each
        wanted = set(parsed.selections()["h.device"])
        on: dict = {}
        for env in envs:
            on.setdefault(env["m.name"], set()).add(env["h.device"])
        envs = [env for env in envs if wanted <= on[env["m.name"]]]
    got = [tuple(_norm(v) for v in row) for row in answer["rows"]]
    want = [tuple(_norm(env[c]) for c in columns) for env in envs]
    if entry.get("count"):
        assert sorted(got) == sorted(set(want))
        assert answer["count"] == len(set(want))
        return
    if order and answer["query"].get("per_subject"):  # 'the 3 fastest models': each model's best row, 3 models
        fld, direction = order[0]
        i, key = columns.index(fld), columns.index(parsed.subject_key())
        best: dict = {}
        for w in want:
            if w[key] not in best or (w[i] > best[w[key]] if direction == "DESC" else w[i] < best[w[key]]):
                best[w[key]] = w[i]
        values = sorted(best.values(), reverse=direction == "DESC")[:entry["limit"]]
        if answer["query"].get("ordinal"):  # 'the 2nd fastest': the subject at that place only
            values = values[-1:] if len(values) == entry["limit"] else []
        assert [g[i] for g in got] == values and len({g[key] for g in got}) == len(got)
        assert not Counter(got) - Counter(want)
        return
    if order:
        fld, direction = order[0]
        i = columns.index(fld)
        values = sorted((w[i] for w in want), reverse=direction == "DESC")
        limit = entry.get("limit") or len(values)
        if answer["query"].get("ordinal"):  # 'the second largest': the row at that place only
            values = values[limit - 1:limit]
            limit = len(values)
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


def test_a_misspelt_name_close_to_one_name_is_corrected_and_said(vocab):
    q = parse_question("models under 30 ms on a jetsen", vocab)
    assert q.unparsed == [] and q.understood
    assert q.conditions == parse_question("models under 30 ms on a jetson", vocab).conditions
    assert "'jetsen' read as 'jetson' (the one close name)" in q.notes
    q = parse_question("fastest on the pi 5 for mobilenet_tiyn", vocab)
    assert any(c.field == "m.name" and c.value == "mobilenet_tiny" for c in q.conditions)
    q = parse_question("models under 30 on the pi 5", vocab)
    assert "30" in q.unparsed and any("no unit" in n for n in q.notes)


def test_a_unit_restating_what_was_asked_is_read_and_one_that_adds_a_measure_is_not(vocab):
    for text, field in [("any models over one billion multiply-accumulates? I mean MACs", "m.macs"),
                        ("models under 5M params, I mean parameters", "m.params"),
                        ("fastest models on the pi 5, in ms", "r.latency_ms")]:
        q = parse_question(text, vocab)
        assert q.understood, (text, q.unparsed)
        assert any(f"restates {field}" in n for n in q.notes), q.notes
    q = parse_question("models with over 1M params and MACs", vocab)  # MACs with no number: not asked about yet
    assert q.unparsed == ["MACs"] and not q.understood
    q = parse_question("models with parameters", vocab)  # a known word nothing reads here: never 'did you mean' it
    assert q.unparsed == ["parameters"] and "'parameters' was not understood here" in q.notes
    assert not any("did you mean 'parameters'" in n for n in q.notes)


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
    assert out.startswith("not understood: 'rains' was not understood; the rows below answer the rest")
    assert "read as: " in out and "under 5 ms -> r.latency_ms < 5;" in out
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


# ------------------------------------------------------------------------------------------------ family words

def _rule_families() -> set[str]:
    """Every family name ``analysis/patterns/rules.py`` can return: in ``decide_family`` and the functions it calls,
    the string literals of each returned (family, task, why) tuple's first element (both arms of an ``x if c else
    y``) and of ``fam = ...``, read from the source so a new rule is seen at once."""
    import ast

    from embodied_tui.analysis.patterns import rules

    defs = {n.name: n for n in ast.parse(Path(rules.__file__).read_text()).body if isinstance(n, ast.FunctionDef)}
    reached = {"decide_family"} | {c.func.id for c in ast.walk(defs["decide_family"])
                                   if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in defs}

    def literals(node) -> set[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.IfExp):
            return literals(node.body) | literals(node.orelse)
        return set()

    names: set[str] = set()
    for fn in reached:
        for node in ast.walk(defs[fn]):
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple) and len(node.value.elts) == 3:
                names |= literals(node.value.elts[0])
            elif isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == ["fam"]:
                names |= literals(node.value)
    return names


# what the type and task readers take instead (a type word, or the detection task), and what never asks
NOT_FAMILY_WORDS = {"transformer": ("m.type", "transformer"), "cnn": ("m.type", "cnn"), "rnn": ("m.type", "rnn"),
                    "hybrid": ("m.type", "hybrid"), "detector": ("m.task", "detection")}


def test_every_family_the_analyser_names_can_be_asked_for():
    from embodied_tui.ask.vocab import Vocabulary

    families = _rule_families() - {"unknown"}
    assert {"swin", "rt-detr", "whisper", "diffusion-policy", "pointnet"} <= families  # the AST walk sees the rules
    empty = Vocabulary()  # an empty registry: the words must be known without any model of that family
    for fam in sorted(families):
        q = parse_question(f"list {fam} models", empty)
        got = [(c.field, c.value) for c in q.conditions]
        assert got == [NOT_FAMILY_WORDS.get(fam, ("m.family", fam))], (fam, got, q.unparsed)
        assert not q.unparsed, (fam, q.unparsed)


@pytest.mark.parametrize("words,family", [
    ("swin", "swin"), ("rt-detr", "rt-detr"), ("RT DETR", "rt-detr"), ("rtdetr", "rt-detr"),
    ("detr", "detr"), ("yolov8", "yolo"), ("gpt-2", "gpt"), ("GPT2", "gpt"), ("distilbert", "bert"),
    ("t5", "t5"), ("whisper", "whisper"), ("segformer", "segformer"), ("pointnet", "pointnet"),
    ("point net", "pointnet"), ("u-net", "unet"), ("diffusion policy", "diffusion-policy"),
    ("diffusion policies", "diffusion-policy"), ("lstm", "lstm"), ("deit", "vit"), ("googlenet", "inception"),
])
def test_the_words_people_use_for_a_family(words, family):
    from embodied_tui.ask.vocab import Vocabulary

    q = parse_question(f"which {words} models are there", Vocabulary())
    assert [(c.field, c.value, c.negate) for c in q.conditions] == [("m.family", family, False)], q.readings
    q = parse_question(f"models except {words}", Vocabulary())
    assert [(c.field, c.value, c.negate) for c in q.conditions] == [("m.family", family, True)], q.readings


def test_policy_alone_is_still_the_task():
    from embodied_tui.ask.vocab import Vocabulary

    q = parse_question("list policy models", Vocabulary())
    assert [(c.field, c.value) for c in q.conditions] == [("m.task", "policy")]


def test_cli_ask_for_swin_models_on_a_real_registry(tmp_path):
    """Corpus models (tests/corpus) written as ONNX, registered through the CLI and analysed for real: asking for
    swin models answers with the registered Swin and nothing else; its family comes from the analysis, not a name."""
    from corpus import CORPUS
    from corpus.export import write

    db = tmp_path / "registry.json"
    for name in ("swin", "pointnet", "diffusion_policy"):
        path = write(CORPUS[name](), "onnx", tmp_path / f"net{len(name)}.onnx")  # names that give nothing away
        result = CliRunner().invoke(main, ["--db", str(db), "model", "register", str(path), "--name", name])
        assert result.exit_code == 0, result.output
    shown = {name: json.loads(CliRunner().invoke(main, ["--db", str(db), "model", "show", name, "--json"]).output)
             for name in ("swin", "pointnet", "diffusion_policy")}
    by_family = {rec["architecture"]["family"]: name for name, rec in shown.items()}
    assert set(by_family) == {"swin", "pointnet", "diffusion-policy"}
    for question, family in (("list swin models", "swin"), ("which diffusion policies are registered",
                                                             "diffusion-policy"), ("pointnet models", "pointnet")):
        result = CliRunner().invoke(main, ["--db", str(db), "ask", question, "--json"])
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        names = {row[data["columns"].index("m.name")] for row in data["rows"]}
        assert names == {by_family[family]}, (question, data["cypher"], data["rows"])


# ------------------------------------------------------------------------------------------------ stored pipelines

PIPELINES = Path(__file__).resolve().parents[1] / "examples" / "pipelines"


@pytest.fixture()
def pipeline_db(db, cli):
    """A real registry holding the shipped pi05 and openvla-7b pipelines (config stages only: no model needed)."""
    for spec in ("pi05.yaml", "openvla-7b.yaml"):
        assert cli("pipeline", "register", PIPELINES / spec).exit_code == 0
    return db


def _fits(db, spec: str) -> dict:
    """``pipeline fit`` of the spec file on every catalog device x mode, computed here independently of the graph."""
    from embodied_tui.services.fit import FitContext
    from embodied_tui.services.pipeline import fit_pipeline

    out = {}
    for entry in FitContext.open(db).entries:
        for mode in entry.power_modes:
            try:
                out[(entry.id, mode.name)] = (fit_pipeline(db, PIPELINES / spec, entry.id, mode=mode.name,
                                                           with_changes=False), mode.power_w)
            except UserError:  # no peak at the pipeline's precision: no edge either
                continue
    return out


def _ask(cli, question: str) -> dict:
    result = cli("ask", question, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_can_a_pipeline_run_at_a_rate_on_a_device_at_a_power(pipeline_db, cli):
    answer = _ask(cli, "can pi0.5 run at 20 Hz on an Orin NX at 25 W?")
    assert answer["asked_rate_hz"] == 20 and answer["unparsed"] == []
    assert "p.name = \"pi05\"" in answer["cypher"] and "rate_hz >=" not in answer["cypher"]  # the rate is the verdict
    expected = {key: fit for key, (fit, power_w) in _fits(pipeline_db, "pi05.yaml").items()
                if key[0].startswith("jetson-orin-nx") and power_w == 25}
    assert expected, "the catalog has an Orin NX mode of 25 W"
    rows = [dict(zip(answer["columns"], row)) for row in answer["rows"]]
    assert {(r["h.device"], r["h.power_mode"]) for r in rows} == set(expected)
    assert len(answer["answer"]) == len(rows)
    for row, sentence in zip(rows, answer["answer"]):
        fit = expected[(row["h.device"], row["h.power_mode"])]
        assert row["r.total_ms"] == pytest.approx(fit.total_ms) and row["r.rate_hz"] == pytest.approx(fit.rate_hz)
        holds = 1000 / fit.total_ms >= 20
        assert sentence.startswith(f"pi05 on {row['h.device']} ({row['h.power_mode']}, bf16)")
        assert (": yes, it holds 20 Hz" in sentence) == holds and (": no, it does not reach 20 Hz" in sentence) \
            == (not holds)
        assert "fits memory" in sentence if fit.memory_fit.fits else "memory" in sentence


def test_which_devices_can_run_a_pipeline_at_a_rate(pipeline_db, cli):
    answer = _ask(cli, "which devices can run openvla at 5 Hz?")
    assert answer["query"]["subject"] == "hardware" and answer["unparsed"] == []
    expected = {key for key, (fit, _) in _fits(pipeline_db, "openvla-7b.yaml").items()
                if fit.rate_hz is not None and fit.rate_hz >= 5 and fit.memory_fit.fits is not False}
    got = {(row[0], row[1]) for row in answer["rows"]}
    assert got == expected and expected, "some devices hold 5 Hz"
    totals = [row[answer["columns"].index("r.total_ms")] for row in answer["rows"]]
    assert totals == sorted(totals)  # fastest first
    assert all(": yes, it holds 5 Hz" in s for s in answer["answer"][:10])


def test_the_word_pipelines_asks_about_every_stored_pipeline(pipeline_db, cli):
    nano = {"jetson-orin-nano-4gb", "jetson-orin-nano-8gb", "jetson-orin-nano-8gb-super", "jetson-orin-nano-cpu"}
    answer = _ask(cli, "which pipelines run on the orin nano at its control rate?")
    assert answer["understood"] and answer["unparsed"] == [], answer["reasons"]
    expected = {(spec.removesuffix(".yaml"), *key) for spec in ("pi05.yaml", "openvla-7b.yaml")
                for key, (fit, _) in _fits(pipeline_db, spec).items() if key[0] in nano}
    assert {(row[0], row[1], row[2]) for row in answer["rows"]} == expected and expected
    assert {row[0] for row in _ask(cli, "list pipelines")["rows"]} == {"pi05", "openvla-7b"}


def test_pipelines_that_meet_or_miss_their_own_rate(pipeline_db, cli):
    """'which pipelines meet their rate on X' / 'don't hit their control rate': the fits that hold (or miss) each
    pipeline's own rate, computed here with ``pipeline fit``; 'what control rate does X get' is its rows."""
    agx = {"jetson-agx-orin-32gb", "jetson-agx-orin-64gb", "jetson-agx-thor"}
    fits = {(spec.removesuffix(".yaml"), *key): fit for spec in ("pi05.yaml", "openvla-7b.yaml")
            for key, (fit, _) in _fits(pipeline_db, spec).items() if key[0] in agx}
    for question, held in (("which pipelines meet their rate on the agx?", True),
                           ("which pipelines don't hit their control rate on the agx?", False),
                           ("which pipelines miss their rate on the agx?", False),
                           ("which pipelines fall short of their control rate on the agx?", False)):
        answer = _ask(cli, question)
        assert answer["understood"] and answer["unparsed"] == [], (question, answer["reasons"])
        expected = {key for key, fit in fits.items() if fit.meets_rate is held}
        assert {(row[0], row[1], row[2]) for row in answer["rows"]} == expected and expected, question
    answer = _ask(cli, "what control rate does pi05 get on the agx?")
    assert answer["understood"] and {(row[0], row[1], row[2]) for row in answer["rows"]} == \
        {key for key in fits if key[0] == "pi05"}
    # asked yes or no: every fit with its verdict, the words read
    answer = _ask(cli, "does pi05 meet its rate on the agx?")
    assert answer["understood"] and answer["unparsed"] == [], answer["reasons"]
    assert {(row[0], row[1], row[2]) for row in answer["rows"]} == {key for key in fits if key[0] == "pi05"}
    for row, sentence in zip(answer["rows"], answer["answer"]):  # each verdict is its fit's, computed here
        held = fits[(row[0], row[1], row[2])].meets_rate
        assert sentence.startswith(f"pi05 on {row[1]} ({row[2]}") and ("yes, it holds" in sentence) is held, sentence


def test_fastest_device_for_a_pipeline(pipeline_db, cli):
    answer = _ask(cli, "fastest device for pi05")
    fits = _fits(pipeline_db, "pi05.yaml")
    best = min((fit.total_ms, key) for key, (fit, _) in fits.items() if fit.total_ms is not None)
    assert len(answer["rows"]) == 1 and tuple(answer["rows"][0][:2]) == best[1]
    assert answer["rows"][0][answer["columns"].index("r.total_ms")] == pytest.approx(best[0])
    text = cli("ask", "fastest device for pi05")
    assert text.exit_code == 0 and "MATCH (p:Pipeline)-[r:RUNS_ON]->(h:Hardware)" in text.output


def test_pipeline_names_as_people_write_them():
    from embodied_tui.ask.parse import Vocabulary

    vocab = Vocabulary(pipelines=("openvla-7b", "pi05", "yolo-depth", "yolo-track"))
    for text, name in (("pi0.5", "pi05"), ("pi 05", "pi05"), ("PI-05", "pi05"), ("openvla", "openvla-7b"),
                       ("openvla 7b", "openvla-7b"), ("yolo-depth", "yolo-depth")):
        q = parse_question(f"fastest device for {text}", vocab)
        assert [c.cypher() for c in q.conditions if c.field == "p.name"] == [f'p.name = "{name}"'], text
    # 'yolo' leads two pipelines: it names neither (it is the family word)
    assert not [c for c in parse_question("fastest device for yolo", vocab).conditions if c.field == "p.name"]


def test_a_yes_answer_states_the_margin(pipeline_db, cli):
    answer = _ask(cli, "could openvla run at 2 Hz on an H100?")
    fits = {key: fit for key, (fit, _) in _fits(pipeline_db, "openvla-7b.yaml").items() if key[0] == "nvidia-h100-sxm"}
    assert answer["asked_rate_hz"] == 2 and fits
    rows = [dict(zip(answer["columns"], row)) for row in answer["rows"]]
    assert {(r["h.device"], r["h.power_mode"]) for r in rows} == set(fits)
    for row, sentence in zip(rows, answer["answer"]):
        fit = fits[(row["h.device"], row["h.power_mode"])]
        assert fit.rate_hz >= 2  # an H100 holds 2 Hz easily: the yes branch
        margin = fmt.percent(1 - fit.total_ms / 500.0, 1.0)  # period 1000 / 2 Hz = 500 ms
        assert f": yes, it holds 2 Hz (margin {margin})" in sentence


# ------------------------------------------------------------------------------------------------ the words of issue 15

def _torch_params() -> dict[str, int]:
    """Each fixture model's parameter count as torch counts it (sum of numel over parameters): independent of the
    analyser."""
    from ask_fixture import MODELS

    from embodied_tui.analysis.zoo import BUILDERS

    return {name: sum(p.numel() for p in BUILDERS[name].build().parameters()) for name in MODELS}


def _ask_json(db, question: str) -> dict:
    result = CliRunner().invoke(main, ["--db", str(db), "ask", question, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_smallest_by_parameter_count_is_a_measure_not_a_count(fx):
    """The crash of issue 15: 'count' in 'parameter count' switched on count mode and the Cypher was invalid."""
    params = _torch_params()
    for question in ("what's our smallest model by parameter count?", "which model has the lowest param count",
                     "smallest model by number of parameters"):
        result = CliRunner().invoke(main, ["--db", str(fx.db), "ask", question])
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output
        data = _ask_json(fx.db, question)
        assert data["count"] is None and data["understood"], data
        assert [row[0] for row in data["rows"]] == [min(params, key=params.get)]
    data = _ask_json(fx.db, "largest model by MAC count")
    assert [row[0] for row in data["rows"]] == [max(fx.records, key=lambda r: r.macs).name]


def test_lighter_and_heavier_than_a_model(fx, graph):
    from embodied_tui.services.ask import ask

    params = _torch_params()
    for question, keep in (("anything lighter than resnet_tiny?", lambda n: params[n] < params["resnet_tiny"]),
                           ("models with more parameters than mlp_policy",
                            lambda n: params[n] > params["mlp_policy"]),
                           ("which models are smaller than small vit", lambda n: params[n] < params["small_vit"])):
        answer = ask(fx.db, question, graph=graph)
        assert answer["understood"], answer
        assert {row[0] for row in answer["rows"]} == {n for n in params if keep(n)}, question
    macs = {r.name: r.macs for r in fx.records}
    answer = ask(fx.db, "models with fewer MACs than unet_small", graph=graph)
    assert {row[0] for row in answer["rows"]} == {n for n, m in macs.items() if m < macs["unet_small"]}
    # the reference said once for two measures: 'more MACs than X but fewer params'
    for question, ref, more_macs in (("which models have more MACs than small_vit but fewer params?", "small_vit", True),
                                     ("models with fewer MACs than mobilenet_tiny and more params", "mobilenet_tiny",
                                      False)):
        answer = ask(fx.db, question, graph=graph)
        assert answer["understood"], answer
        want = {n for n in params if (macs[n] > macs[ref] and params[n] < params[ref] if more_macs
                                      else macs[n] < macs[ref] and params[n] > params[ref])}
        assert want and {row[0] for row in answer["rows"]} == want, question


def test_input_shapes_and_activation_sizes_can_be_asked_about(fx, graph):
    """'models taking 64x64 inputs' finds the records whose input shape holds 64, 64 side by side (checked on the
    records' own shape lists); 'activations over N MB' compares the records' activation bytes, not their weights."""
    from embodied_tui.services.ask import ask

    def holds(record, dims):
        return any(list(shape[i:i + len(dims)]) == dims for shape in record.input_shapes
                   for i in range(len(shape) - len(dims) + 1))

    for question, dims, negate in (("which models take 224x224 inputs?", [224, 224], False),
                                   ("models with 3 x 224 x 224 input resolution", [3, 224, 224], False),
                                   ("models not taking 224x224 images", [224, 224], True),
                                   ("models with 32x32 input", [32, 32], False)):
        answer = ask(fx.db, question, graph=graph)
        assert answer["understood"], answer
        want = {r.name for r in fx.records if holds(r, dims) != negate}
        assert want and {row[0] for row in answer["rows"]} == want, question
        assert "m.input_shape" in answer["columns"]
    answer = ask(fx.db, "which models take 4321x4321 inputs?", graph=graph)
    assert answer["understood"] and answer["rows"] == []  # a shape nobody takes: an empty answer, not a refusal
    sizes = sorted(r.activation_bytes for r in fx.records if r.activation_bytes)
    cut = (sizes[len(sizes) // 2] + sizes[len(sizes) // 2 - 1]) / 2 / 1e6  # between two models' sizes, in MB
    for question, keep in ((f"which models have activations over {cut:.6f} MB?", lambda b: b > cut * 1e6),
                           (f"models with at most {cut:.6f} MB of activations", lambda b: b <= cut * 1e6),
                           (f"activation memory under {cut:.6f} megabytes", lambda b: b < cut * 1e6)):
        answer = ask(fx.db, question, graph=graph)
        assert answer["understood"], answer
        assert {row[0] for row in answer["rows"]} == {r.name for r in fx.records
                                                      if r.activation_bytes is not None and keep(r.activation_bytes)}
        assert "m.weight_bytes" not in answer["cypher"], question


def test_tags_and_tag_values_can_be_asked_about(tmp_path):
    from ask_fixture import copy_registry

    db = copy_registry(tmp_path)
    for args in (("resnet_tiny", "--tag", "robot", "--tag", "site=lab"), ("small_vit", "--tag", "site=hq"),
                 ("lstm_policy", "--tag", "robot")):
        result = CliRunner().invoke(main, ["--db", str(db), "model", "update", *args])
        assert result.exit_code == 0, result.output
    cases = {"which models carry the robot tag?": {"resnet_tiny", "lstm_policy"},
             "models tagged robot": {"resnet_tiny", "lstm_policy"},
             "list the models for robots": {"resnet_tiny", "lstm_policy"},
             "models tagged robot or site=hq": {"resnet_tiny", "lstm_policy", "small_vit"},
             "which models don't have the robot tag?": {"mobilenet_tiny", "small_vit", "mlp_policy",
                                                       "yolo_style_detector", "unet_small"},
             "untagged models": {"mobilenet_tiny", "mlp_policy", "yolo_style_detector", "unet_small"},
             "which models are robot-tagged?": {"resnet_tiny", "lstm_policy"},
             "lab tagged models": {"resnet_tiny"},
             "robot models that aren't policies": {"resnet_tiny"},
             "what's deployed at the lab site?": {"resnet_tiny"},
             "models with tags.site = hq": {"small_vit"},
             "which models are not tagged robot": {"mobilenet_tiny", "small_vit", "mlp_policy", "yolo_style_detector",
                                                    "unet_small"},
             "models tagged robot but not lab": {"lstm_policy"},
             "robot models that are not hq": {"resnet_tiny", "lstm_policy"},
             # the tag as --tag writes it, bare; and any tag at all
             "models with site=lab": {"resnet_tiny"},
             "which models have tags.site = hq": {"small_vit"},
             "models that have tags": {"resnet_tiny", "small_vit", "lstm_policy"},
             "which models have any tags?": {"resnet_tiny", "small_vit", "lstm_policy"},
             # 'tagged with', 'tagged as', and a key then its value after a space
             "models tagged with robot": {"resnet_tiny", "lstm_policy"},
             "models tagged as robot": {"resnet_tiny", "lstm_policy"},
             "models tagged with site lab": {"resnet_tiny"},
             "which models are tagged with the tag site hq": {"small_vit"},
             "models tagged site that run on the pi 5": {"resnet_tiny", "small_vit"}}
    for question, names in cases.items():
        data = _ask_json(db, question)
        assert data["understood"] and not data["refused"], (question, data["answer"])
        assert {row[data["columns"].index("m.name")] for row in data["rows"]} == names, (question, data["cypher"])
    data = _ask_json(db, "which models carry the drone tag?")
    assert data["refused"] and not data["understood"] and data["rows"] == []
    assert "no registered model has the tag drone" in data["reasons"][0]
    data = _ask_json(db, "models with fleet=north")  # a key=value nobody carries: that said, not 'not understood'
    assert data["refused"] and "no registered model has the tag fleet=north" in data["reasons"][0]
    data = _ask_json(db, "models with family = yolo")  # a field before '=': the field's value, not a tag
    assert data["understood"] and 'm.family = "yolo"' in data["cypher"]


def test_a_field_named_beside_its_value_restates_it(fx):
    """'models whose task is detection', 'of family yolo', 'with format torchscript': the field's noun is read with the
    value (understood, the same rows as the value alone); without a value of that field it is not guessed."""
    from embodied_tui.services.ask import ask

    for question, alone in (("models whose task is detection", "detection models"),
                            ("models of family yolo", "yolo models"),
                            ("models with format torchscript", "torchscript models"),
                            ("models with family = resnet", "resnet models")):
        said, plain = ask(fx.db, question), ask(fx.db, alone)
        assert said["understood"] and not said["refused"], (question, said["answer"])
        assert said["cypher"] == plain["cypher"] and said["rows"] == plain["rows"] and said["rows"], question
    assert not ask(fx.db, "which format is the best")["understood"]


def test_a_comparison_of_two_models_states_the_verdict_and_the_ratio(fx, graph):
    """The verdict and ratios, computed again here from the fit rows (FitRow.predicted_latency_ms)."""
    import statistics

    from embodied_tui.services.ask import ask

    agx = {"jetson-agx-orin-32gb", "jetson-agx-orin-64gb"}
    times: dict = {}
    for row in fx.rows:
        if row.hardware in agx and row.predicted_latency_ms:
            times.setdefault((row.hardware, row.power_mode, row.precision), {})[row.model] = row.predicted_latency_ms
    ratios = [t["mobilenet_tiny"] / t["resnet_tiny"] for t in times.values() if len(t.keys() & {"resnet_tiny",
                                                                                             "mobilenet_tiny"}) == 2]
    wins = sum(1 for r in ratios if r > 1)
    answer = ask(fx.db, "is resnet_tiny faster than mobilenet_tiny on the AGX Orin?", graph=graph)
    head = answer["answer"][0]
    verdict = "yes" if wins == len(ratios) else "no" if wins == 0 else "partly"
    assert head.startswith(f"{verdict}: resnet_tiny is faster than mobilenet_tiny on {wins} of {len(ratios)} ")
    def how(r):  # the other's time over this one's, in words
        return f"{fmt.number(r)}x faster" if r >= 1 else f"{fmt.number(1 / r)}x slower"

    assert f"median: resnet_tiny is {how(statistics.median(ratios))} than mobilenet_tiny" in head
    assert f"(from {how(min(ratios))} to {how(max(ratios))})" in head
    vs = ask(fx.db, "mobilenet_tiny vs resnet_tiny on the agx orin", graph=graph)["answer"][0]
    assert vs.startswith(f"mobilenet_tiny is faster than resnet_tiny on {len(ratios) - wins} of {len(ratios)} ")
    for text in ("what's the difference between mobilenet_tiny and resnet_tiny on the agx orin?",
                 "how does mobilenet_tiny differ from resnet_tiny on the agx orin"):  # not a params range
        said = ask(fx.db, text, graph=graph)
        assert said["understood"] and "m.params" not in said["cypher"], (text, said["cypher"])
        assert said["answer"][0].startswith(f"mobilenet_tiny is faster than resnet_tiny on {len(ratios) - wins} of ")


def test_a_size_comparison_of_two_models_states_the_verdict_and_the_ratio(fx):
    """'is A bigger than B', 'does A have fewer MACs than B': both models' own rows, the verdict and the ratio,
    computed again here from the records' exact counts; no row of where they run."""
    from embodied_tui.services.ask import ask

    params = {r.name: r.params for r in fx.records}
    macs = {r.name: r.macs for r in fx.records}
    for question, a, b, sizes, more, what in (
            ("is yolo_style_detector bigger than unet_small?", "yolo_style_detector", "unet_small", params, True,
             "parameters"),
            ("is mobilenet_tiny lighter than resnet_tiny", "mobilenet_tiny", "resnet_tiny", params, False, "parameters"),
            ("does resnet_tiny have fewer MACs than small_vit?", "resnet_tiny", "small_vit", macs, False, "MACs")):
        answer = ask(fx.db, question)
        assert answer["understood"] and answer["columns"][0] == "m.name", answer
        assert sorted(row[0] for row in answer["rows"]) == sorted([a, b])  # the two models' own rows
        holds = sizes[a] > sizes[b] if more else sizes[a] < sizes[b]
        big, small = (a, b) if sizes[a] > sizes[b] else (b, a)
        assert answer["answer"] == [
            f"{'yes' if holds else 'no'}: {a} has {sizes[a]:,} {what}, {b} {sizes[b]:,}: {big} has "
            f"{fmt.number(sizes[big] / sizes[small])}x as many {what} as {small}"], question
    between = ask(fx.db, "between mobilenet_tiny and resnet_tiny, which has fewer params?")
    assert between["understood"] and between["answer"][0].startswith("mobilenet_tiny has "), between["answer"]
    how = ask(fx.db, "how much bigger is unet_small than mlp_policy")["answer"]
    assert len(how) == 1 and not how[0].startswith(("yes", "no")) and "unet_small has" in how[0]
    # 'between A and B in size': a range from one's count to the other's, both ends kept
    for question, sizes in (("models between mlp_policy and resnet_tiny in size", params),
                            ("which models are between small_vit and unet_small in MACs", macs)):
        a, b = re.findall(r"between (\w+) and (\w+)", question)[0]
        lo, hi = sorted((sizes[a], sizes[b]))
        answer = ask(fx.db, question)
        assert answer["understood"], (question, answer["reasons"])
        assert {row[0] for row in answer["rows"]} == {n for n, v in sizes.items() if lo <= v <= hi}, question
    # one model named: still a threshold at its size, every other model compared with it
    answer = ask(fx.db, "which models are bigger than unet_small")
    assert {row[0] for row in answer["rows"]} == {n for n, p in params.items() if p > params["unet_small"]}


def test_a_model_property_asked_of_a_named_model_gives_its_own_row(fx):
    from embodied_tui.services.ask import ask

    for question in ("how many params does small_vit have", "what family is small_vit", "how many MACs does "
                     "small_vit need", "what is the parameter count of small_vit"):
        answer = ask(fx.db, question)
        assert answer["understood"] and answer["count"] is None, (question, answer["reasons"])
        assert answer["columns"][:4] == ["m.name", "m.family", "m.task", "m.params"], question
        record = next(r for r in fx.records if r.name == "small_vit")
        arch = record.architecture
        assert answer["rows"] == [["small_vit", arch.family, arch.task, record.params, record.macs]], question


def test_a_comparison_by_a_factor_counts_the_pairings_that_reach_it(fx, graph):
    """'is A twice as fast as B', '3x faster than', 'twice as slow as': the pairings where the ratio reaches the
    factor, counted here from the fit rows; the factor picked between two of the pairings' own ratios, so the
    verdict is 'partly' unless every ratio is on one side of it (then each reading is checked the same way)."""
    from embodied_tui.services.ask import ask

    agx = {"jetson-agx-orin-32gb", "jetson-agx-orin-64gb"}
    times: dict = {}
    for row in fx.rows:
        if row.hardware in agx and row.predicted_latency_ms:
            times.setdefault((row.hardware, row.power_mode, row.precision), {})[row.model] = row.predicted_latency_ms
    pairs = [(t["unet_small"], t["mlp_policy"]) for t in times.values() if {"unet_small", "mlp_policy"} <= t.keys()]
    ratios = sorted(a / b for a, b in pairs)  # how many times faster mlp_policy is
    factor = round((ratios[0] + ratios[-1]) / 2, 2)
    held = sum(1 for a, b in pairs if a >= factor * b)
    verdict = "yes" if held == len(pairs) else "no" if held == 0 else "partly"
    answer = ask(fx.db, f"is mlp_policy {factor}x faster than unet_small on the agx orin?", graph=graph)
    assert answer["understood"], answer
    assert answer["answer"][0].startswith(f"{verdict}: mlp_policy is at least {fmt.number(factor)}x faster than "
                                          f"unet_small on {held} of {len(pairs)} "), answer["answer"][0]
    for question, side, f in (("is mlp_policy twice as fast as unet_small on the agx orin?", "faster", 2.0),
                              ("is unet_small twice as slow as mlp_policy on the agx orin?", "slower", 2.0),
                              ("is unet_small three times faster than mlp_policy on the agx orin?", "faster", 3.0)):
        first = "unet_small" if question.startswith("is unet") else "mlp_policy"
        if first == "mlp_policy":
            held = sum(1 for a, b in pairs if a >= f * b)
        else:
            held = sum(1 for a, b in pairs if (a >= f * b if side == "slower" else b >= f * a))
        verdict = "yes" if held == len(pairs) else "no" if held == 0 else "partly"
        head = ask(fx.db, question, graph=graph)["answer"][0]
        assert head.startswith(f"{verdict}: {first} is at least {fmt.number(f)}x {side} than "), (question, head)
        assert f" on {held} of {len(pairs)} " in head, (question, head)


def test_two_precisions_compared_pair_each_model_device_and_mode(fx, graph):
    """'is int8 faster than fp16 for X on Y': each model x device x power mode with both precisions is a pairing,
    counted here from the fit rows."""
    from embodied_tui.services.ask import ask

    nx = {"jetson-orin-nx-8gb", "jetson-orin-nx-16gb"}
    times: dict = {}
    for row in fx.rows:
        if row.hardware in nx and row.model == "resnet_tiny" and row.predicted_latency_ms:
            times.setdefault((row.hardware, row.power_mode), {})[row.precision] = row.predicted_latency_ms
    pairs = [(t["int8"], t["fp16"]) for t in times.values() if {"int8", "fp16"} <= t.keys()]
    assert pairs
    wins = sum(1 for i8, f16 in pairs if i8 < f16)
    verdict = "yes" if wins == len(pairs) else "no" if wins == 0 else "partly"
    for question in ("is int8 faster than fp16 for resnet_tiny on the orin nx?",
                     "is resnet_tiny faster in int8 than in fp16 on the orin nx?"):
        answer = ask(fx.db, question, graph=graph)
        assert answer["understood"], answer
        assert answer["answer"][0].startswith(f"{verdict}: int8 is faster than fp16 on {wins} of {len(pairs)} model x "
                                              f"device x power mode pairings"), answer["answer"][0]
    vs = ask(fx.db, "resnet_tiny fp16 vs int8 on the orin nx", graph=graph)["answer"][0]
    assert vs.startswith(f"fp16 is faster than int8 on {sum(1 for i8, f16 in pairs if f16 < i8)} of {len(pairs)} ")


def test_which_of_two_models_is_more_efficient_counts_energy_per_inference(fx, graph):
    """'which is more efficient, A or B' / 'is B less efficient than A': energy per inference (FitRow.energy_mj) on
    each device x mode x precision both have, counted here from the fit rows."""
    from embodied_tui.services.ask import ask

    nano = {"jetson-orin-nano-4gb", "jetson-orin-nano-8gb", "jetson-orin-nano-8gb-super", "jetson-orin-nano-cpu"}
    energy: dict = {}
    for row in fx.rows:
        if row.hardware in nano and row.energy_mj:
            energy.setdefault((row.hardware, row.power_mode, row.precision), {})[row.model] = row.energy_mj
    pairs = [(e["small_vit"], e["resnet_tiny"]) for e in energy.values() if {"small_vit", "resnet_tiny"} <= e.keys()]
    assert pairs
    less = sum(1 for a, b in pairs if a < b)
    answer = ask(fx.db, "which is more efficient on the orin nano, small_vit or resnet_tiny?", graph=graph)
    assert answer["understood"], answer
    assert answer["answer"][0].startswith(f"small_vit is more efficient than resnet_tiny on {less} of {len(pairs)} "),\
        answer["answer"][0]
    more = sum(1 for a, b in pairs if b > a)
    verdict = "yes" if more == len(pairs) else "no" if more == 0 else "partly"
    head = ask(fx.db, "is resnet_tiny less efficient than small_vit on the orin nano?", graph=graph)["answer"][0]
    assert head.startswith(f"{verdict}: resnet_tiny is less efficient than small_vit on {more} of {len(pairs)} "), head
    assert ask(fx.db, "efficient models", graph=graph)["refused"]  # 'efficient' is no misspelt 'efficientnet'


def test_how_much_faster_on_one_device_than_another(fx, graph):
    from embodied_tui.services.ask import ask

    nx = {"jetson-orin-nx-8gb", "jetson-orin-nx-16gb"}
    nano = {"jetson-orin-nano-4gb", "jetson-orin-nano-8gb", "jetson-orin-nano-8gb-super", "jetson-orin-nano-cpu"}
    best = {}
    for row in fx.rows:
        for side, ids in (("nx", nx), ("nano", nano)):
            if row.model == "resnet_tiny" and row.hardware in ids and row.predicted_latency_ms:
                key = (side, row.precision)
                best[key] = min(best.get(key, float("inf")), row.predicted_latency_ms)
    answer = ask(fx.db, "how much faster is resnet_tiny on the Orin NX than on the Orin Nano?", graph=graph)
    assert answer["understood"] and answer["answer"], answer
    for line in answer["answer"]:
        prec = re.match(r"resnet_tiny at (\w+) is", line).group(1)
        ratio = best[("nano", prec)] / best[("nx", prec)]
        how = f"{fmt.number(ratio)}x faster" if ratio >= 1 else f"{fmt.number(1 / ratio)}x slower"
        assert f"is {how} on Orin NX ({fmt.ms(best[('nx', prec)])} ms" in line, line
    for said in ("what's the speedup of resnet_tiny on the Orin NX over the Orin Nano?",
                 "speedup of resnet_tiny on the Orin NX relative to the Orin Nano"):  # the same sentences
        speedup = ask(fx.db, said, graph=graph)
        assert speedup["understood"] and speedup["answer"] == answer["answer"], (said, speedup)
    # asked yes or no: the verdict first, over the precisions both sides have, counted here
    both = [p for (side, p) in best if side == "nx" and ("nano", p) in best]
    faster = sum(best[("nx", p)] < best[("nano", p)] for p in both)
    head = ask(fx.db, "is the Orin NX faster than the Orin Nano for resnet_tiny?", graph=graph)["answer"][0]
    verdict = "yes" if faster == len(both) else "no" if faster == 0 else "partly"
    assert head.startswith(f"{verdict}: Orin NX is faster than Orin Nano for {faster} of {len(both)} "), head


def test_a_question_not_understood_says_so_first_and_shows_no_table(fx):
    result = CliRunner().invoke(main, ["--db", str(fx.db), "ask", "what is deployed at the lab site"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("not understood: 'lab' was not understood; 'site' was not understood; no answer")
    assert "No rows match" not in result.output and "model " not in result.output.split("cypher")[0]
    data = _ask_json(fx.db, "what is deployed at the lab site")
    assert data["understood"] is False and data["refused"] is True and data["rows"] == [] and data["reasons"]
    data = _ask_json(fx.db, "models with 5M params")  # a quantity with no comparison: not guessed, not widened
    assert data["refused"] and "'5M params' has no comparison" in data["reasons"][0]
    data = _ask_json(fx.db, "how much faster is resnet_tiny")  # a comparison with one side
    assert data["refused"] and "compares two models or two devices" in data["reasons"][0]
    data = _ask_json(fx.db, "models faster than resnet_tiny")  # no device: no one number to compare with
    assert data["refused"] and data["rows"] == [] and "compares latencies on one device" in data["reasons"][0]


def test_close_names_are_every_name_within_the_cutoff_of_a_misspelt_word():
    """``close_names`` rules names out by difflib's cheap bounds before their ratio: the names it gives are those a
    ratio against every name gives (computed here one by one), on 2,000 model names and misspelt words."""
    import difflib
    import random

    from embodied_tui.ask.parse import Vocabulary
    from embodied_tui.ask.vocab import CORRECTION_CUTOFF, _names, close_names

    rng = random.Random(3)
    stems = ["resnet", "mobilenet", "efficientnet", "yolov8", "rtdetr", "convnext", "squeezenet", "regnet"]
    models = tuple(sorted({f"{rng.choice(stems)}_{rng.choice(['tiny', 's', 'm', 'b0', 'x1'])}{rng.randrange(200)}"
                           for _ in range(2000)}))
    vocab = Vocabulary(models=models, families=("resnet", "yolo"), tasks=("detection",))
    names = _names(vocab)[0]
    words = []
    for _ in range(60):
        word = list(rng.choice(models))
        for _ in range(rng.randrange(1, 3)):  # a letter dropped, swapped or changed
            i = rng.randrange(len(word))
            word[i] = rng.choice("abcdefghijklmnopqrstuvwxyz") if rng.random() < 0.5 else ""
        words.append("".join(word))
    words += ["fastst", "detectr", "mobilnet", "yolov8n", "resnt"]
    found = 0
    for word in words:
        low = word.lower()
        if len(low) < 4 or low in names:
            continue
        scored = sorted((-difflib.SequenceMatcher(None, low, n).ratio(), n) for n in names)
        best = -scored[0][0]
        want = [n for r, n in scored if -r >= max(CORRECTION_CUTOFF, best - 0.05)][:3]
        assert close_names(word, vocab) == want, word
        found += bool(want)
    assert found >= 30  # most words are close to some name: the cut is tested, not only the empty answer


def test_a_misspelt_name_close_to_several_is_refused_not_widened():
    from embodied_tui.ask.vocab import Vocabulary

    vocab = Vocabulary(models=("resnet_aa", "resnet_ab"))
    q = parse_question("fastest model: resnet_ac", vocab)
    assert not q.understood and q.unparsed == ["resnet_ac"]
    assert q.reasons == ["'resnet_ac' is close to several names (resnet_aa, resnet_ab): say which"]
    q = parse_question("fastest model: resnet_aaa", vocab)  # one close name: corrected, and said
    assert q.understood and q.conditions[0].value == "resnet_aa"
    assert "'resnet_aaa' read as 'resnet_aa' (the one close name)" in q.notes


def test_a_device_size_or_number_no_catalog_device_has_is_refused_not_read_as_the_nearest(vocab):
    """'jetson nano 2gb' (a board the catalog lacks) was read as the Orin Nano 8GB Super, whose name holds a 2 (from
    'JetPack 6.2') and 'gb': a word that joins a number and letters must be said in one of the device's names as
    written. Sizes and model numbers the catalog has still name their device."""
    for text, phrase in (("which models run under 5 ms on the jetson nano 2gb?", "jetson nano 2gb"),
                         ("models under 10 ms on the orin nano 16gb", "orin nano 16gb"),
                         ("models under 5 ms on the jetson agx xavier", "jetson agx xavier")):  # AGX + Xavier NX
        q = parse_question(text, vocab)
        assert not q.understood and not any(c.field == "h.device" for c in q.conditions), (text, q.conditions)
        assert q.reasons[0].startswith(f"'{phrase}': no device of that name in the catalog"), q.reasons
    for text, ids in (("models on the orin nano 8gb", {"jetson-orin-nano-8gb", "jetson-orin-nano-8gb-super"}),
                      ("models on the agx orin 64gb", {"jetson-agx-orin-64gb"}),
                      ("fastest on the pi5", {"raspberry-pi-5"}), ("models on the rtx4090", {"nvidia-rtx-4090"}),
                      ("models on the h100", {"nvidia-h100-sxm"})):
        q = parse_question(text, vocab)
        said = [c for c in q.conditions if c.field == "h.device"]
        assert q.understood and len(said) == 1, (text, q.reasons)
        assert set(said[0].value if isinstance(said[0].value, list) else [said[0].value]) == ids, text


def test_a_model_name_of_a_known_family_that_is_not_registered_is_refused_not_widened_to_the_family(vocab):
    """'resnet50' with only resnet_tiny registered was 'corrected' to the family resnet and answered with
    resnet_tiny's rows: a family name with a variant after it is a model asked for by name."""
    for text, word in (("how fast is resnet50 on the pi 5?", "resnet50"), ("models lighter than mobilenet_v3",
                                                                           "mobilenet_v3")):
        q = parse_question(text, vocab)
        assert not q.understood and not any(c.field == "m.family" for c in q.conditions), (text, q.conditions)
        assert q.reasons[0].startswith(f"'{word}': no model of that name is registered"), q.reasons
        assert not any(n.startswith(f"'{word}' read as") for n in q.notes)
    q = parse_question("resnett models", vocab)  # a misspelt family is still corrected, and said
    assert q.understood and [c.value for c in q.conditions if c.field == "m.family"] == ["resnet"]

    # a sibling of a registered model (another size, other numbers) is another model, not a misspelling of it
    from embodied_tui.ask.vocab import Vocabulary, close_names

    names = Vocabulary(models=("yolov8n", "efficientnet_b0", "mobilenet_v3_small", "resnet50"),
                       families=("yolo", "efficientnet", "mobilenet", "resnet"))
    for text, word, close in (("how fast is yolov8s", "yolov8s", "yolov8n"),
                              ("efficientnet_b3 params", "efficientnet_b3", None),
                              ("mobilenet_v3_large latency", "mobilenet_v3_large", "mobilenet_v3_small")):
        q = parse_question(text, names)
        assert not q.understood and not any(c.field in ("m.name", "m.family") for c in q.conditions), (text, q)
        assert word in q.unparsed, (text, q.unparsed)
        if close and close_names(word, names) == [close]:  # one close name: said why it is not read as that one
            assert q.reasons[0] == f"'{word}': no model of that name is registered (close: {close}; " \
                                   f"`embodied-ai model list`)", q.reasons
    q = parse_question("how fast is resnt50", names)  # a typo of a registered name: corrected, and said
    assert [c.value for c in q.conditions if c.field == "m.name"] == ["resnet50"]
    assert "'resnt50' read as 'resnet50' (the one close name)" in q.notes
    assert [c.value for c in parse_question("yolos under 5 ms", names).conditions if c.field == "m.family"] == ["yolo"]


def test_a_misspelt_dashed_name_is_corrected_whole():
    """'yolo-styel': 'yolo' alone is a family, so the reader takes it and leaves '-styel'; the correction is of the
    whole dashed token, never the family (which would widen the answer to every yolo)."""
    from embodied_tui.ask.vocab import Vocabulary

    vocab = Vocabulary(models=("yolo-style", "yolo-big"), families=("yolo",))
    q = parse_question("is yolo-styel a detector?", vocab)
    assert q.understood, q.reasons
    assert [c.cypher() for c in q.conditions if c.field == "m.name"] == ['m.name = "yolo-style"']
    assert "'yolo-styel' read as 'yolo-style' (the one close name)" in q.notes
    q = parse_question("params of yolo-bgi", vocab)
    assert [c.cypher() for c in q.conditions if c.field == "m.name"] == ['m.name = "yolo-big"']


def test_a_request_to_change_something_is_refused_with_where_to_do_it(fx):
    """ask reads the registry: 'delete all models' is refused in words (no rows, the registry as it was), never read
    as 'list all models'."""
    from embodied_tui.services.ask import ask

    before = fx.db.read_bytes()
    for question in ("delete all models", "please remove resnet_tiny", "how do I register a model?",
                     "can you quantize yolo_style_detector to int8", "Drop the registry"):
        answer = ask(fx.db, question)
        assert answer["refused"] and answer["rows"] == [] and not answer["understood"], question
        assert "ask only answers questions about the registry" in answer["reasons"][0], question
    assert fx.db.read_bytes() == before


def test_what_ask_holds_no_data_on_is_refused_not_answered_with_other_rows(fx):
    """Accuracy, prices, training data, who/when, and a device that is not in the catalog: no row could answer these,
    and dropping the word would have printed every row of what remains (a model's 190 fits, every device)."""
    from embodied_tui.services.ask import ask

    for question, said in (("what's the accuracy of resnet_tiny on imagenet?", "ask holds no data on accuracy"),
                           ("which model has the best mAP", "ask holds no data on accuracy"),
                           ("how much does a jetson orin nano cost", "ask holds no data on accuracy"),
                           ("how many fps does small_vit get on an iphone", "'iphone': no device or model"),
                           ("which models run on the moon", "'moon': no device or model"),
                           ("who registered resnet_tiny", "not who or when"),
                           ("when was small_vit added", "not who or when"),
                           ("what's the weather on the orin nano", "'weather' is not a measure ask knows"),
                           ("how hot does the orin nano get", "'hot' is not a measure ask knows"),
                           ("is resnet_tiny better than small_vit", "'better': say which measure"),
                           ("which is the best device under $500", "ask holds no data on prices"),
                           ("which models are memory bound on the pi 5 but compute bound on the orin nano",
                            "each on its own device"),
                           ("models that don't fit on the coral usb but fit on the hailo-8", "each on its own device"),
                           ("models that fit on the coral but not on the hailo-8", "beside another device"),
                           ("which devices can't run unet_small in under 10 ms?", "'can't run unet_small' with")):
        answer = ask(fx.db, question)
        assert answer["refused"] and answer["rows"] == [] and not answer["understood"], question
        assert said in answer["reasons"][0], (question, answer["reasons"])
    # a word not understood elsewhere still leaves the rest answered, said first
    answer = ask(fx.db, "fastest model for my drone on the pi 5")
    assert not answer["refused"] and answer["rows"] and answer["answer"][0].startswith("not understood: 'drone'")


def test_a_yes_no_question_starts_with_yes_or_no(fx, graph):
    """'does X fit ...', 'are there models under ...': yes with the rows that match, or no with the conditions none
    met; the rows by hand from the fixture's fit rows and records."""
    from embodied_tui.services.ask import ask

    fits = [r for r in fx.rows if r.model == "mlp_policy" and r.hardware == "raspberry-pi-5" and r.fits_memory]
    answer = ask(fx.db, "does mlp_policy fit in memory on the pi 5?", graph=graph)
    assert answer["answer"] == [f"yes: {len(fits)} row{'s' if len(fits) != 1 else ''} match"
                                f"{'es' if len(fits) == 1 else ''} (mlp_policy)"] and fits
    smallest = min(r.params for r in fx.records)
    answer = ask(fx.db, f"are there any models with fewer than {smallest} params?", graph=graph)
    assert answer["rows"] == [] and answer["answer"] == [f"no: no row matches m.params < {smallest}"]
    detectors = sorted(r.name for r in fx.records if r.architecture.task == "detection")
    answer = ask(fx.db, "do we have any detectors?", graph=graph)
    assert detectors and answer["answer"][0].startswith("yes: ") and ", ".join(detectors) in answer["answer"][0]
    # a word not understood: the rows answer the rest, and no yes or no is claimed from them
    partly = ask(fx.db, "do we have any detectors for my drone?", graph=graph)
    assert partly["rows"] and not partly["understood"] and not any(a.startswith(("yes:", "no:")) for a in partly["answer"])
    listed = ask(fx.db, "which models are detectors", graph=graph)  # not a yes/no question: no verdict
    assert listed["answer"] == [] and listed["rows"] == answer["rows"]


def test_is_x_the_fastest_checks_x_against_the_first_row(fx, graph):
    """'is X the fastest model on Y?' answers the superlative without X's condition, then compares its first row with
    X: yes for the model that is fastest by hand, no (naming it) for another."""
    from embodied_tui.services.ask import ask

    pi5 = [r for r in fx.rows if r.hardware == "raspberry-pi-5" and r.predicted_latency_ms is not None]
    best = min(pi5, key=lambda r: (r.predicted_latency_ms, r.model)).model
    other = next(r.name for r in fx.records if r.name != best and r.macs is not None)
    yes = ask(fx.db, f"is {best} the fastest model on the pi 5?", graph=graph)
    assert yes["answer"][0].startswith(f"yes: {best} is first") and yes["rows"][0][0] == best
    no = ask(fx.db, f"is {other} the fastest model on the pi 5?", graph=graph)
    assert no["answer"][0].startswith(f"no: {best} is first") and no["answer"][0].endswith(f"not {other}")
    assert 'm.name' not in no["cypher"].split("RETURN")[0]  # the claim is not a condition
    biggest = max(fx.records, key=lambda r: r.params).name
    assert ask(fx.db, f"is {biggest} the largest model?", graph=graph)["answer"][0].startswith("yes: ")


def test_a_count_per_group_gives_each_groups_count(fx):
    """'how many models per family / task / format', 'how many devices per type / vendor', and the listings 'what
    formats do we have', 'list the families': one row per value with the number of subjects, counted here from the
    records and the catalog; a split the count cannot make is refused."""
    from embodied_tui.services.ask import ask

    for question, values, field in (
            ("how many models per family", [r.architecture.family for r in fx.records], "m.family"),
            ("count models by task", [r.architecture.task for r in fx.records], "m.task"),
            ("number of models of each format", [r.format for r in fx.records], "m.format"),
            ("how many devices per type", [d.type for d in fx.devices], "h.type"),
            ("how many devices by vendor", [d.vendor for d in fx.devices], "h.vendor"),
            # a listing of the values is the same count: each value with its number of subjects
            ("what formats do we have?", [r.format for r in fx.records], "m.format"),
            ("which tasks are covered", [r.architecture.task for r in fx.records], "m.task"),
            ("list the model families", [r.architecture.family for r in fx.records], "m.family"),
            ("what device types are there?", [d.type for d in fx.devices], "h.type"),
            ("which vendors are in the catalog", [d.vendor for d in fx.devices], "h.vendor")):
        answer = ask(fx.db, question)
        want = Counter(values)
        assert answer["understood"] and answer["columns"] == [field, "count"], (question, answer["reasons"])
        assert {v: n for v, n in answer["rows"]} == dict(want), question
        assert [n for _, n in answer["rows"]] == sorted(want.values(), reverse=True)
        assert answer["count"] == len(values) and answer["query"]["group_by"] == field
    refused = ask(fx.db, "how many models per device")
    assert refused["refused"] and "'per device'" in refused["reasons"][0]


def test_averages_sums_and_peak_per_watt_are_refused_in_words(fx):
    """What ask does not compute is refused with why, not answered with other rows."""
    from embodied_tui.services.ask import ask

    for question, said in (("average latency of resnet_tiny on jetsons", "does not compute averages"),
                           ("what's the median latency on the pi 5", "does not compute averages"),
                           ("which device has the most int8 tops per watt", "peak per watt is not a stored measure"),
                           ("what's the mean latency on the pi 5?", "does not compute averages"),
                           ("what's the total number of parameters across all models?", "or sums"),
                           ("sum of MACs of all detectors", "or sums"),
                           ("which model should I use?", "asks for a recommendation")):
        answer = ask(fx.db, question)
        assert answer["refused"] and answer["rows"] == [] and said in answer["reasons"][0], (question, answer)
    # a size word with no size: not guessed, and not corrected into a superlative ('large' is 0.83 of 'largest')
    answer = ask(fx.db, "large models")
    assert answer["refused"] and answer["unparsed"] == ["large"] and "LIMIT" not in answer["cypher"], answer
    # the same words where they are no average, sum or bare recommendation: answered
    for question in ("how many models are there in total?", "which model should I use on the pi 5 under 1 ms?",
                     "over one billion multiply-accumulates? I mean MACs"):
        answer = ask(fx.db, question)
        assert answer["understood"] and not answer["reasons"], (question, answer)


def test_on_both_devices_keeps_only_models_with_a_row_on_each(fx, graph):
    """'under T ms on both the pi 4 and the pi 5': a model under T on one of them only is left out; T is picked here
    from the fit rows so that some model is (the answer then differs from 'on the pi 4 or the pi 5')."""
    from embodied_tui.services.ask import ask

    best: dict = {}
    for row in fx.rows:
        if row.hardware in ("raspberry-pi-4", "raspberry-pi-5") and row.predicted_latency_ms is not None:
            key = (row.model, row.hardware)
            best[key] = min(best.get(key, float("inf")), row.predicted_latency_ms)
    models = {m for m, _ in best}
    split = [(m, sorted((best[(m, "raspberry-pi-4")], best[(m, "raspberry-pi-5")]))) for m in models
             if (m, "raspberry-pi-4") in best and (m, "raspberry-pi-5") in best]
    lo, hi = next(pair for _, pair in split if pair[0] < pair[1])
    t = round((lo + hi) / 2, 6)
    both = {m for m in models if all(best.get((m, d), float("inf")) < t for d in ("raspberry-pi-4", "raspberry-pi-5"))}
    either = {m for m in models if any(best.get((m, d), float("inf")) < t for d in ("raspberry-pi-4", "raspberry-pi-5"))}
    assert both < either
    answer = ask(fx.db, f"which models run under {t} ms on both the pi 4 and the pi 5", graph=graph)
    assert answer["query"]["every_device"] and {row[0] for row in answer["rows"]} == both
    answer = ask(fx.db, f"which models run under {t} ms on the pi 4 or the pi 5", graph=graph)
    assert {row[0] for row in answer["rows"]} == either


def test_a_device_without_a_peak_at_the_asked_precision_says_so(fx):
    """'on the pi 5 in int8': the catalog's pi 5 states no int8 peak, so the empty answer says why; where a named
    device states the precision (the orin nano's GPU entries state fp16, its CPU entry does not), no such note."""
    from embodied_tui.data.store import Registry
    from embodied_tui.services.ask import ask
    from embodied_tui.services.fit import devices

    stated = {entry.id: {p for mode in entry.power_modes for p in mode.peak_tflops} for entry in devices(Registry(fx.db))}
    assert "int8" not in stated["raspberry-pi-5"]
    answer = ask(fx.db, "what is the latency of mlp_policy on the pi 5 in int8?")
    assert answer["understood"] and answer["rows"] == []
    assert any(n.startswith("raspberry-pi-5 states no int8 peak") for n in answer["notes"]), answer["notes"]
    assert "int8" not in stated["jetson-agx-thor"]  # a device question too: the peak asked for is not stated
    answer = ask(fx.db, "what is the int8 peak of the thor?")
    assert answer["rows"] == [] and any(n.startswith("jetson-agx-thor states no int8 peak") for n in answer["notes"])
    answer = ask(fx.db, "which models run under 50 ms on the orin nano in fp16?")
    assert "fp16" in stated["jetson-orin-nano-8gb"] and "fp16" not in stated["jetson-orin-nano-cpu"]
    assert answer["rows"] and not any("states no" in n for n in answer["notes"])


def test_quantized_models_are_those_stored_quantized(tmp_path):
    """'which models are quantized?': a float ONNX file and its int8 quantization (onnxruntime's, real files),
    registered through the CLI: the quantized one only (its analysed dtype), and 'aren't quantized' the other; beside
    a device, 'quantized' still reads the int8 fit rows. A precision named with it ('quantized to int4') is the one
    read, stored or fitted."""
    import warnings

    import torch

    quant = pytest.importorskip("onnxruntime.quantization")
    db = tmp_path / "registry.json"
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 16)).eval()
    float_path = tmp_path / "policy.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(4, 32),), str(float_path), dynamo=False, input_names=["x"])
    int8_path = tmp_path / "policy_int8.onnx"
    quant.quantize_dynamic(str(float_path), str(int8_path), weight_type=quant.QuantType.QInt8)
    dtypes = {}
    for name, path in (("policy_fp32", float_path), ("policy_int8", int8_path)):
        result = CliRunner().invoke(main, ["--db", str(db), "model", "register", str(path), "--name", name, "--json"])
        assert result.exit_code == 0, result.output
        dtypes[name] = json.loads(result.output)["record"]["dtype"]
    assert dtypes == {"policy_fp32": "float32", "policy_int8": "int8"}

    def names(question):
        result = CliRunner().invoke(main, ["--db", str(db), "ask", question, "--json"])
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        return data, {row[data["columns"].index("m.name")] for row in data["rows"]}

    data, got = names("which models are quantized?")
    assert got == {"policy_int8"} and "m.dtype IN" in data["cypher"]
    assert names("which models aren't quantized?")[1] == {"policy_fp32"}
    data, got = names("quantized models on the pi 5")
    assert 'r.precision = "int8"' in data["cypher"] and "m.dtype" not in data["cypher"]
    # the precision named beside 'quantized' is the stored one's: one condition, not int8 and int4 at once
    assert names("which models are quantized to int8?")[1] == {"policy_int8"}
    assert names("int8-quantized models")[1] == {"policy_int8"}
    data, got = names("models quantized to int4")
    assert got == set() and 'm.dtype IN ["int4", "uint4"]' in data["cypher"] and not data.get("refused")
    assert names("which models are not quantized to int8")[1] == {"policy_fp32"}
    data, got = names("models quantized to int4 on the pi 5")  # beside a device: the fit rows at int4 only
    assert 'r.precision = "int4"' in data["cypher"] and "int8" not in data["cypher"]


def test_a_fit_question_on_a_device_stating_no_memory_says_why_it_is_empty(fx):
    """'how many models fit on X' where X states no memory size (DRAM or on-chip): every fit row's fits_memory is
    null there, so the empty answer carries that reason; a device with a memory size gets no such note."""
    from embodied_tui.services.ask import ask
    from embodied_tui.services.fit import devices

    entries = devices(fx.db)
    unknown = [e.id for e in entries if e.memory_bytes is None and e.onchip_memory_bytes is None]
    known = [e.id for e in entries if e.memory_bytes is not None]
    assert unknown and known  # the catalog has both kinds
    answer = ask(fx.db, f"how many models fit on the {unknown[0]}")
    assert answer["rows"] == [] and any(f"{unknown[0]} states no memory size" in n for n in answer["notes"])
    answer = ask(fx.db, f"how many models fit on the {known[0]}")
    assert not any("states no memory size" in n for n in answer["notes"])


def test_how_many_on_every_device_counts_the_models_fast_on_each(fx):
    """'how many models run under X ms on both the pi 4 and the pi 5': the models with a row under X ms on each
    device, counted from the fit rows here (a count's DISTINCT names alone would take a row on either; X is picked
    from the rows so that the two differ); the same models the listing question keeps."""
    from embodied_tui.services.ask import ask

    for said, devices in (("both the pi 4 and the pi 5", ("raspberry-pi-4", "raspberry-pi-5")),
                          ("every agx orin", ("jetson-agx-orin-32gb", "jetson-agx-orin-64gb"))):
        best: dict = {}
        for row in fx.rows:
            if row.hardware in devices and row.predicted_latency_ms is not None:
                key = (row.model, row.hardware)
                best[key] = min(best.get(key, float("inf")), row.predicted_latency_ms)
        # a limit between one model's best on the two devices: it is fast on one only
        gaps = [(abs(best[(m, devices[0])] - best[(m, devices[1])]), m) for m, d in best if d == devices[0]
                and (m, devices[1]) in best]
        _, model = max(gaps)
        limit = float(f"{(best[(model, devices[0])] + best[(model, devices[1])]) / 2:.3g}")
        fast = {key for key, ms in best.items() if ms < limit}
        want = sorted({m for m, _ in fast if all((m, d) in fast for d in devices)})
        either = sorted({m for m, _ in fast})
        assert want != either and model in either and model not in want
        question = f"how many models run under {limit} ms on {said}"
        answer = ask(fx.db, question)
        assert answer["understood"] and answer["count"] == len(want), (question, answer["rows"], want)
        assert [row[0] for row in answer["rows"]] == want, question
        listed = ask(fx.db, question.replace("how many models", "which models"))
        assert sorted({row[listed["columns"].index("m.name")] for row in listed["rows"]}) == want, question


def test_not_meeting_a_condition_anywhere_is_refused_with_the_question_that_lists_those_that_do(vocab):
    """'models that don't run under 1 ms anywhere': a negated row condition keeps each slow row, of models fast
    elsewhere too; the models fast nowhere are not one query's rows. Refused in words; with a device named the
    negation is the rows' own and answered."""
    for text, cond in (("models that don't run under 1ms anywhere", "r.latency_ms < 1"),
                       ("which models can't hit 30 fps on any device", "r.fps >= 30")):
        q = parse_question(text, vocab)
        assert not q.understood and any(f"no row meeting {cond} on any device" in r for r in q.reasons), q.reasons
    q = parse_question("which models can't hit 30 fps on the pi 5", vocab)
    assert q.understood and "NOT r.fps >= 30" in [c.cypher() for c in q.conditions]


def test_how_many_power_modes_counts_each_device_x_mode(fx):
    """'how many power modes does X have': X's modes in the catalog (each device x mode, h.device_mode), not the one
    device; over several devices, every device's modes."""
    from embodied_tui.services.ask import ask
    from embodied_tui.services.fit import devices

    entries = {e.id: e for e in devices(fx.db)}
    answer = ask(fx.db, "how many power modes does the orin nano super have")
    assert answer["count"] == len(entries["jetson-orin-nano-8gb-super"].power_modes) > 1, answer["rows"]
    agx = [e for e in entries.values() if e.id.startswith("jetson-agx-orin")]
    answer = ask(fx.db, "how many modes do the agx orins have")
    assert answer["count"] == sum(len(e.power_modes) for e in agx), answer["rows"]
    assert ask(fx.db, "how many jetsons are there")["count"] == sum(1 for i in entries if i.startswith("jetson-"))


def test_or_between_two_conditions_is_refused_not_read_as_and(vocab):
    """'over 2 GMACs or over 1M params' was answered as both at once; refused in words. 'or' between values of one
    field stays one condition on either ('fp16 or int8', 'the pi 4 or the pi 5')."""
    for text, phrase in (("which models have more than 2 GMACs or more than 1M params",
                          "more than 2 GMACs or more than 1M params"),
                         ("models under 1 ms or over 100 fps on the pi 5", "under 1 ms or over 100 fps")):
        q = parse_question(text, vocab)
        assert not q.understood and any(r.startswith(f"'{phrase}': a question's conditions all hold together")
                                        for r in q.reasons), q.reasons
    for text, cypher in (("models in fp16 or int8 on the thor", 'r.precision IN ["fp16", "int8"]'),
                         ("models on the pi 4 or the pi 5 under 1 ms",
                          'h.device IN ["raspberry-pi-4", "raspberry-pi-5"]')):
        q = parse_question(text, vocab)
        assert q.understood and cypher in [c.cypher() for c in q.conditions], (text, q.conditions)


def test_a_yes_no_question_about_all_models_checks_every_one(fx):
    """'are all models under N params', 'do all models run under L ms on the pi 5': yes only when every model is
    (was 'yes' when any one was); no names those that are not. Counted here from the records and fit rows."""
    from embodied_tui.services.ask import ask

    params = sorted(r.params for r in fx.records)
    limit = params[len(params) // 2] + 1  # some above, some below
    over = sorted(r.name for r in fx.records if r.params >= limit)
    answer = ask(fx.db, f"are all models under {limit} params")
    assert answer["answer"][0].startswith(f"no: {len(over)} of {len(fx.records)} do not ({over[0]}"), answer["answer"]
    assert ask(fx.db, f"are all models under {params[-1] + 1} params")["answer"][0] == \
        f"yes: all {len(fx.records)} match"
    best: dict = {}
    for row in fx.rows:
        if row.hardware == "raspberry-pi-5" and row.predicted_latency_ms is not None:
            best[row.model] = min(best.get(row.model, float("inf")), row.predicted_latency_ms)
    times = sorted(best.values())
    ms = float(f"{(times[1] + times[2]) / 2:.3g}")  # two models under it, the rest not
    slow = sorted(m for m, t in best.items() if t >= ms)
    answer = ask(fx.db, f"do all models run under {ms} ms on the pi 5")
    assert answer["answer"][0].startswith(f"no: {len(slow)} of {len(best)} do not"), answer["answer"]
    assert ask(fx.db, f"do all models run under {ms} ms on the pi 5")["rows"] == answer["rows"]
    assert ask(fx.db, "is there a model under 1000000000 params")["answer"][0].startswith("yes: ")


def test_a_peak_with_no_precision_is_the_one_a_named_device_states(fx):
    """'the peak compute of the pi 5': a peak asked with no precision is read at fp16 (TFLOPS) or int8 (TOPS); the
    catalog's pi 5 states only an fp32 peak, so that is the answer, and the note says so; a precision named ('the
    int8 peak of the pi 5') is kept (and the empty answer says why), as is fp16 where the device states it."""
    from embodied_tui.data.store import Registry
    from embodied_tui.services.ask import ask
    from embodied_tui.services.fit import devices

    entries = {entry.id: entry for entry in devices(Registry(fx.db))}
    pi5 = entries["raspberry-pi-5"]
    stated = {p for mode in pi5.power_modes for p in mode.peak_tflops}
    assert stated == {"fp32"}
    peaks = sorted(mode.peak_tflops["fp32"] for mode in pi5.power_modes)
    for question in ("what is the peak compute of the raspberry pi 5?", "how many TOPS does the pi 5 have"):
        answer = ask(fx.db, question)
        at = answer["columns"].index("h.peak_fp32_tflops")
        assert sorted(row[at] for row in answer["rows"]) == peaks, question
        assert any("states a peak only at fp32: read as the fp32 peak" in n for n in answer["notes"]), answer["notes"]
        assert not any("read as the fp16 peak" in n or "read as the int8 peak" in n for n in answer["notes"])
    answer = ask(fx.db, "the int8 peak of the pi 5")
    assert answer["rows"] == [] and any(n.startswith("raspberry-pi-5 states no int8 peak") for n in answer["notes"])
    super_ = entries["jetson-orin-nano-8gb-super"]
    answer = ask(fx.db, "peak compute of the orin nano super")
    at = answer["columns"].index("h.peak_fp16_tflops")
    assert sorted(row[at] for row in answer["rows"]) == sorted(m.peak_tflops["fp16"] for m in super_.power_modes)


def test_a_superlative_on_each_device_is_answered_per_device(fx, graph):
    """'the fastest model on each jetson', 'the 2 fastest models per device': the first models on each device in
    turn (each at its fastest row there), as the fit rows rank them; not one row overall ('per device' was dropped)
    and not nothing (a model fastest on every jetson at once: 'each' read as 'every')."""
    from embodied_tui.services.ask import ask

    best: dict = {}
    for row in fx.rows:
        if row.predicted_latency_ms is not None:
            key = (row.hardware, row.model)
            best[key] = min(best.get(key, float("inf")), row.predicted_latency_ms)

    def first(devices, n):
        out = {}
        for device in devices:
            ranked = sorted((ms, model) for (d, model), ms in best.items() if d == device)
            out[device] = [model for _, model in ranked[:n]]
        return out

    jetsons = sorted({d for d, _ in best if d.startswith("jetson-")})
    for question, devices, n in (("what is the fastest model on each jetson?", jetsons, 1),
                                 ("fastest model per device", sorted({d for d, _ in best}), 1),
                                 ("the 2 fastest models on each pi", ["raspberry-pi-4", "raspberry-pi-5"], 2)):
        answer = ask(fx.db, question, graph=graph)
        assert answer["query"].get("per_device") and not answer["query"].get("every_device"), question
        name, device = answer["columns"].index("m.name"), answer["columns"].index("h.device")
        got: dict = {}
        for row in answer["rows"]:
            got.setdefault(row[device], []).append(row[name])
        assert got == first(devices, n), question
        assert not any(n.startswith("a singular superlative") for n in answer["notes"])
        assert ask(fx.db, question)["rows"] == answer["rows"], question  # planned: fits from the store, no graph
    answer = ask(fx.db, "which models run under 5 ms on every jetson", graph=graph)
    assert answer["query"].get("every_device") and not answer["query"].get("per_device")
