"""Hostile queries, questions, filters and LLM answers: Cypher that explodes grand-cypher (hundreds of ANDs, unconnected
MATCH parts, long variable-length edges, negative SKIP/LIMIT), questions of 100 KB, filters nested 10,000 deep, and an
LLM endpoint that drips, floods or answers nonsense. Each gets one line (``error: ...``), a non-zero exit, no traceback,
within a time bound that the test enforces itself (``subprocess.run(timeout=...)``), with bounded memory.

The registry is real (tests/ask_fixture.py: zoo models analysed, registered, fitted); the CLI runs in a subprocess; the
graph is the registry's. The machine may be shared and slow: time bounds are generous, but far below what the unbounded
cases took (150 ANDs: 15 s; 400: > 120 s; four MATCH clauses: killed at 60 s).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from embodied_tui.ask.budget import BudgetExceeded, Cancelled
from embodied_tui.ask.graph import QueryLimitError, run_cypher
from embodied_tui.errors import UserError
from tests.hostile.craft import Run, refused

ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT = 120  # a hang fails the test; the real bounds are the asserts on elapsed time below
CARTESIAN = "MATCH (a)-[]->(b) MATCH (c)-[]->(d) RETURN a.name, d.name"  # a million rows on the fixture's graph


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """A private copy of the fitted fixture registry (its fit cache filled once)."""
    from ask_fixture import copy_registry

    from embodied_tui.services.graph import load_graph

    path = copy_registry(tmp_path_factory.mktemp("queries"))
    load_graph(path)
    return path


def run_cli(db: Path, *args: str, env: dict | None = None, timeout: float = CLI_TIMEOUT) -> tuple[Run, float]:
    """``embodied-ai --db DB ARGS`` in a fresh process: (its run, seconds it took)."""
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "embodied_tui", "--db", str(db), *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False, cwd=ROOT,
                          env={**os.environ, **(env or {})})
    return Run(proc.returncode, proc.stdout, proc.stderr), time.monotonic() - start


def raises_one_line(call, error=UserError, *words: str) -> str:
    with pytest.raises(error) as err:
        call()
    message = str(err.value)
    assert "\n" not in message and message.strip(), message
    for word in words:
        assert word in message, message
    return message


# ---- Cypher: static limits, before anything parses ----------------------------------------------------------------
def _and_chain(n: int) -> str:
    return "MATCH (m:Model) WHERE " + " AND ".join(f"m.params > {i}" for i in range(n)) + " RETURN m.name"


LIMITED = {
    "150 ANDs": (_and_chain(150), "AND/OR"),
    "400 ANDs": (_and_chain(400), "too long"),
    "300 ORs": ("MATCH (m:Model) WHERE " + " OR ".join(f"m.a = {i}" for i in range(300)) + " RETURN m", "AND/OR"),
    "too long": ("MATCH (m:Model) WHERE m.name IN [" + ", ".join(['"x"'] * 2000) + "] RETURN m.name", "too long"),
    "nested parentheses": ("MATCH (m:Model) WHERE " + "(" * 60 + "m.params" + ")" * 60 + " > 1 RETURN m.name",
                           "nested too deeply"),
    "100 hops": ("MATCH (a)-[*1..99]->(b) RETURN a.name", "hops"),
    "SKIP -1": ("MATCH (m:Model) RETURN m.name SKIP -1", "SKIP takes a whole number"),
    "LIMIT -5": ("MATCH (m:Model) RETURN m.name LIMIT -5", "LIMIT takes a whole number"),
    "LIMIT 1.5": ("MATCH (m:Model) RETURN m.name LIMIT 1.5", "LIMIT takes a whole number"),
    "LIMIT 1e3": ("MATCH (m:Model) RETURN m.name LIMIT 1e3", "LIMIT takes a whole number"),
    "LIMIT 4301 digits": ("MATCH (m:Model) RETURN m.name LIMIT " + "9" * 4301, "too large"),
}


@pytest.mark.parametrize("text, words", LIMITED.values(), ids=LIMITED.keys())
def test_a_query_past_a_static_limit_is_refused_at_once(db, text, words):
    from embodied_tui.services.ask import query

    raises_one_line(lambda: query(db, text), QueryLimitError, words)  # the static check's error: nothing ran


def test_the_limits_leave_ordinary_queries_alone(db, graph):
    from embodied_tui.services.ask import query

    forty = query(db, _and_chain(40))  # the limit itself: parsed and run
    assert len(forty["rows"]) == len(run_cypher(graph, "MATCH (m:Model) WHERE m.params > 39 RETURN m.name")[1])
    assert query(db, "MATCH (m:Model) RETURN m.name ORDER BY m.name SKIP 0 LIMIT 2")["rows"] == [["lstm_policy"],
                                                                                             ["mlp_policy"]]
    assert query(db, "MATCH (m:Model) RETURN m.name ORDER BY m.name SKIP 6 LIMIT 5")["rows"] == [
        ["yolo_style_detector"]]
    # keywords inside strings and property names are not counted as conditions or paging
    text = "MATCH (m:Model) WHERE m.name = 'a and b or c limit -1 skip -2' RETURN m.name"
    assert query(db, text)["rows"] == []


@pytest.mark.parametrize("text", [_and_chain(400), "MATCH (m:Model) RETURN m.name SKIP -1",
                                  "MATCH (m:Model) RETURN m.name LIMIT -5"], ids=["400 ANDs", "SKIP -1", "LIMIT -5"])
def test_cli_query_past_a_limit_is_one_line(db, text):
    run, took = run_cli(db, "query", text)
    refused(run)
    assert took < 60


# ---- Cypher: the time and memory budget ----------------------------------------------------------------------------
def test_an_exploding_query_stops_at_the_time_budget_with_one_line(db):
    run, took = run_cli(db, "query", CARTESIAN, env={"EMBODIED_AI_QUERY_SECONDS": "2",
                                                     "EMBODIED_AI_QUERY_MEMORY_MB": "3000"})
    refused(run, "stopped after 2 s", "EMBODIED_AI_QUERY_SECONDS")
    assert took < 60  # unbounded: minutes and gigabytes


def test_four_chained_match_clauses_stop_at_the_budget(db, monkeypatch):
    from embodied_tui.services.ask import query

    text = "MATCH (a)-[]->(b) MATCH (c)-[]->(d) MATCH (e)-[]->(f) MATCH (g)-[]->(h) RETURN a.name"
    monkeypatch.setenv("EMBODIED_AI_QUERY_SECONDS", "2")
    start = time.monotonic()
    raises_one_line(lambda: query(db, text), BudgetExceeded, "query stopped")  # after 2 s, or at 1 GB
    assert time.monotonic() - start < 30


_RSS_DRIVER = """
import resource, sys
from embodied_tui.cli import main
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
code = 0
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code or 0
own = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024
child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
print(f"OWN_MB={own} CHILD_MB={child} EXIT={code}", file=sys.stderr)
"""


def test_an_exploding_query_stops_at_the_memory_budget_and_the_cli_stays_small(db):
    proc = subprocess.run([sys.executable, "-c", _RSS_DRIVER, "--db", str(db), "query", CARTESIAN],
                          capture_output=True, text=True, timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
                          env={**os.environ, "EMBODIED_AI_QUERY_SECONDS": "100", "EMBODIED_AI_QUERY_MEMORY_MB": "120"})
    *lines, last = proc.stderr.strip().splitlines()
    fields = dict(f.split("=") for f in last.split())
    run = Run(int(fields["EXIT"]), proc.stdout, "\n".join(lines))
    refused(run, "more than 120 MB", "EMBODIED_AI_QUERY_MEMORY_MB")
    assert int(fields["OWN_MB"]) < 100  # the CLI itself did not grow: the query ran in the child
    assert int(fields["CHILD_MB"]) < 120 + 400  # the child: what it inherited (< 400 MB) plus its budget


def test_a_running_query_can_be_cancelled_from_another_thread(graph):
    from embodied_tui.ask import budget
    from embodied_tui.services.ask import cancel_queries

    outcome = {}

    def work():
        try:
            run_cypher(graph, CARTESIAN)
        except UserError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while budget.running() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    assert cancel_queries() == 1
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), Cancelled) and "cancelled" in str(outcome["error"])
    assert budget.running() == 0


_ORPHAN_DRIVER = """
import sys, threading, time
from embodied_tui.ask import budget
from embodied_tui.ask.graph import run_cypher
from embodied_tui.services.graph import load_graph
graph = load_graph(sys.argv[1])
threading.Thread(target=lambda: run_cypher(graph, sys.argv[2]), daemon=True).start()  # forks from a thread
while not budget._running:
    time.sleep(0.01)
print(next(iter(budget._running)), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_query_process_dies_with_its_parent(db):
    driver = subprocess.Popen([sys.executable, "-c", _ORPHAN_DRIVER, str(db), CARTESIAN], stdout=subprocess.PIPE,
                              text=True, cwd=ROOT, env={**os.environ, "EMBODIED_AI_QUERY_SECONDS": "300"})
    try:
        child = int(driver.stdout.readline())
        assert _alive(child)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _crash():
    os.kill(os.getpid(), signal.SIGSEGV)


def _unsendable():
    return lambda: None


def _odd_error():
    from embodied_tui.data.filters import FilterError

    raise FilterError("a b", 2, "what was wrong")  # its __init__ takes three arguments: it does not unpickle


def _hog():
    return [0] * 10 ** 9


@pytest.mark.parametrize("fn, error, words", [
    (_crash, UserError, "stopped unexpectedly (signal SIGSEGV)"),
    (_unsendable, UserError, "could not be sent back"),
    (_odd_error, UserError, "bad filter at column 2: what was wrong"),
    (_hog, BudgetExceeded, "more than 100 MB"),
], ids=["crash", "unsendable", "odd error", "memory"])
def test_whatever_happens_in_the_child_is_one_line(fn, error, words):
    from embodied_tui.ask.budget import run_within_budget

    raises_one_line(lambda: run_within_budget(fn, megabytes=100), error, words)


# ---- Cypher: whatever grand-cypher raises is one line --------------------------------------------------------------
ODD = [
    "MATCH (m:Model) WHERE m.params / 0 > 1 RETURN m.name",
    "MATCH (a)-[r*1..2]-(b) RETURN a.name",  # grand-cypher: TypeError (no hops on undirected edges)
    "MATCH (m:Model) RETURN m.name ORDER BY x.y",
    "MATCH (m:Model) RETURN COUNT(m), SUM(m.name)",
    "MATCH (m:Model) RETURN m.name AS a, m.family AS a",
    "MATCH (m:Model) WHERE m.name IN m.family RETURN m.name",
    "MATCH (m:Model) WHERE size(m.params) > 1 RETURN m.name",
    "MATCH (m:Model) WHERE EXISTS { MATCH (m)-[:RUNS_ON]->(h) WHERE h.x > 1 } RETURN m.name",
    "MATCH p = (m:Model)-[r:RUNS_ON]->(h) RETURN p LIMIT 1",
    "MATCH (m:Model) WHERE all(x IN relationships(m) WHERE x.a > 1) RETURN m",
    "MATCH (m:Model {name: 1}) RETURN id(m), type(m), toLower(m.params), coalesce(m.q, m.p)",
    "MATCH (m:Model) RETURN m.name ORDER BY m.name LIMIT 99999999999999",
    "MATCH (m)-[]->(m) RETURN m",
    "MATCH (m:Model) WHERE m.params > 1 + 'x' RETURN m.name",
    "match (m:Model) return m.name; ; ;",
    "MATCH (m:Model) RETURN m.name // a comment",
    'MATCH (m:Model) WHERE m.name = "\\\\u0000\\\\" RETURN m.name',
    "MATCH () RETURN 1",
    "MATCH (n) RETURN n.__labels__, n",
]


@pytest.mark.parametrize("text", ODD)
def test_odd_queries_answer_or_fail_in_one_line(graph, text):
    try:
        columns, rows = run_cypher(graph, text)
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc).strip()
    else:
        assert isinstance(columns, list) and isinstance(rows, list)


# ---- questions -----------------------------------------------------------------------------------------------------
def test_a_100_kb_question_is_refused_at_once(db):
    run, took = run_cli(db, "ask", "which models run fast on a jetson " * 3000)
    refused(run, "question too long", "2,000")
    assert took < 60


ADVERSARIAL = {
    "devices": "jetson orin nano " * 118,
    "digits": "1" * 2000,
    "spaced digits": "1 " * 1000,
    "units": "under 30 ms " * 166,
    "between": "between 1 and " * 142,
    "negations": "not " * 500,
    "superlatives": "fastest " * 250,
    "numbers with commas": "1,000," * 333,
    "count": "count of of of " * 142,
    "model names": "resnet_tiny mobilenet_tiny " * 74,
    "huge number": "under " + "9" * 1990 + " ms",
    "huge limit": "top " + "9" * 1990,
    "thresholds": " ".join(f"under {i} ms" for i in range(150))[:2000],
}


@pytest.mark.parametrize("question", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_long_adversarial_questions_answer_or_fail_in_one_line_quickly(db, question):
    from embodied_tui.services.ask import ask

    question = question[:2000]
    start = time.monotonic()
    try:
        answer = ask(db, question)
    except UserError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(answer["rows"], list)
    assert time.monotonic() - start < 20


# ---- filters -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("expr, words", [
    ("(" * 10_000 + "yolo" + ")" * 10_000, "too long"),
    ("NOT " * 10_000 + "yolo", "too long"),
    ("(" * 40 + "yolo" + ")" * 40, "nested too deeply (limit 32"),
    ("NOT " * 40 + "yolo", "nested too deeply (limit 32"),
], ids=["10,000 parentheses", "10,000 NOTs", "40 parentheses", "40 NOTs"])
def test_deeply_nested_filters_are_one_line(db, expr, words):
    from embodied_tui.data.filters import FilterError, RecordIndex, compile_filter
    from embodied_tui.services.models import list_models

    raises_one_line(lambda: compile_filter(expr), FilterError, words)
    raises_one_line(lambda: RecordIndex([]).matches(expr), FilterError, words)
    raises_one_line(lambda: list_models(db, filter=expr), FilterError, words)


def test_cli_deeply_nested_filter_is_one_line(db):
    run, took = run_cli(db, "model", "list", "--filter", "(" * 10_000 + "yolo" + ")" * 10_000)
    refused(run, "filter too long")
    run, took = run_cli(db, "model", "list", "--filter", "NOT " * 100 + "yolo")
    refused(run, "nested too deeply")


def test_the_deepest_allowed_filter_still_works():
    from embodied_tui.data.filters import MAX_FILTER_DEPTH, compile_filter
    from tests.test_filters import RECORDS

    pred = compile_filter("(" * MAX_FILTER_DEPTH + "yolo" + ")" * MAX_FILTER_DEPTH)
    assert [r.name for r in RECORDS if pred(r)] == ["yolov8n", "yolov8x"]
    pred = compile_filter("NOT " * MAX_FILTER_DEPTH + "yolo")  # an even number of NOTs
    assert [r.name for r in RECORDS if pred(r)] == ["yolov8n", "yolov8x"]


# ---- the LLM endpoint ----------------------------------------------------------------------------------------------
def _completion(arguments=None, message=None, **call) -> bytes:
    if message is None:
        function = {"name": "structured_query", "arguments": arguments, **call}
        message = {"role": "assistant", "content": "", "tool_calls": [{"id": "c", "type": "function",
                                                                       "function": function}]}
    return json.dumps({"choices": [{"index": 0, "message": message}]}).encode()


def _deep(n: int) -> str:
    return "[" * n + "]" * n


ANSWERS = {  # name -> (status, body bytes or a callable behaviour, words in the line)
    "message is a string": (200, json.dumps({"choices": [{"message": "call the tool"}]}).encode(), "message"),
    "tool_calls is a string": (200, _completion(message={"tool_calls": "structured_query"}), "tool_calls"),
    "tool_calls holds strings": (200, _completion(message={"tool_calls": ["structured_query"]}), "did not call"),
    "function is a string": (200, _completion(message={"tool_calls": [{"function": "structured_query"}]}),
                             "did not call"),
    "content is a list": (200, _completion(message={"content": ["x"]}), "did not call"),
    "choices empty": (200, json.dumps({"choices": []}).encode(), "choices"),
    "body is a list": (200, b"[1, 2, 3]", "choices"),
    "body not JSON": (200, b"<html>hello</html>", "did not answer JSON"),
    "body 100,000 deep": (200, _deep(100_000).encode(), "nested too deeply"),
    "body 5,000-digit number": (200, b'{"choices": ' + b"9" * 5000 + b"}", "did not answer JSON"),
    "arguments a 401-digit number": (200, _completion(arguments="9" * 401), "JSON object"),
    "arguments a 401-digit value": (200, _completion(arguments=json.dumps(
        {"subject": "model", "conditions": [{"field": "m.params", "op": "<", "value": int("9" * 401)}]})),
        "out of range"),
    "arguments 100,000 deep": (200, _completion(arguments=_deep(100_000)), "structured query is too long"),
    "arguments 40,000 deep": (200, _completion(arguments=_deep(40_000)), "nested too deeply"),
    "arguments deep in a field": (200, _completion(arguments='{"conditions": ' + _deep(500) + "}"), "invalid"),
    "arguments an object of junk": (200, _completion(arguments={"subject": 5, "conditions": "x"}), "invalid"),
    "limit a 401-digit number": (200, _completion(arguments=json.dumps(
        {"subject": "model", "conditions": [], "limit": int("9" * 401)})), "limit"),
    "500 conditions": (200, _completion(arguments=json.dumps(
        {"subject": "model", "conditions": [{"field": "m.params", "op": ">", "value": i} for i in range(500)]})),
        "conditions"),
    "HTTP 500": (500, b"oops", "HTTP 500"),
    "drip": (200, "drip", "did not answer within 3 s"),
    "huge body": (200, "flood", "more than 4 MB"),
    "slow headers": (200, "drip-headers", "did not answer within 3 s"),
    "hang up": (200, "hang-up", "cannot reach"),
}


class _Stub:
    """An endpoint on 127.0.0.1 (ephemeral port) answering every POST with ``self.answer``; at most ``max_requests``
    requests, each behaviour bounded in time, the server thread stopped at the end."""

    def __init__(self, max_requests: int = 64):
        self.answer = (200, b"{}")
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                outer.left -= 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body = outer.answer
                try:
                    if body == "drip":  # a byte every 0.5 s of a body that claims 1 KB: at most 20 s
                        self._head(200, 1000)
                        for _ in range(40):
                            self.wfile.write(b" ")
                            self.wfile.flush()
                            time.sleep(0.5)
                    elif body == "drip-headers":
                        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                        for _ in range(40):
                            self.wfile.write(b"X-Slow: 1\r\n")
                            self.wfile.flush()
                            time.sleep(0.5)
                    elif body == "flood":  # 64 MB, as fast as the client reads it
                        self._head(200, 64 << 20)
                        block = b" " * (1 << 20)
                        for _ in range(64):
                            self.wfile.write(block)
                    elif body == "hang-up":
                        self.close_connection = True
                    else:
                        self._head(status, len(body))
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _head(self, status, length):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(length))
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.server.timeout = 1
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.left = max_requests
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.left > 0 and not self.stop.is_set():
            self.server.handle_request()  # returns after server.timeout without a request

    def close(self):
        self.stop.set()
        self.thread.join(30)
        self.server.server_close()


@pytest.fixture(scope="module")
def stub():
    server = _Stub()
    yield server
    server.close()


@pytest.mark.parametrize("name", ANSWERS)
def test_cli_ask_llm_with_a_hostile_endpoint_is_one_line_in_time(db, stub, name):
    status, body, words = ANSWERS[name]
    stub.answer = (status, body)
    run, took = run_cli(db, "ask", "--llm", "fastest model on the pi 5",
                        env={"EMBODIED_AI_LLM_URL": stub.url, "EMBODIED_AI_LLM_TIMEOUT_S": "3"})
    refused(run, words)
    assert took < 60  # the drip alone would hold a per-read timeout for 20 s, a real one forever


def test_llm_deadline_covers_the_whole_call(graph, stub, monkeypatch):
    from embodied_tui.services.ask import ask

    stub.answer = (200, "drip")
    monkeypatch.setenv("EMBODIED_AI_LLM_URL", stub.url)
    monkeypatch.setenv("EMBODIED_AI_LLM_TIMEOUT_S", "1.5")
    start = time.monotonic()
    raises_one_line(lambda: ask(None, "fastest model", llm=True, graph=graph), UserError, "within 1.5 s")
    assert time.monotonic() - start < 10
    monkeypatch.setenv("EMBODIED_AI_LLM_TIMEOUT_S", "soon")
    raises_one_line(lambda: ask(None, "fastest model", llm=True, graph=graph), UserError, "EMBODIED_AI_LLM_TIMEOUT_S")


def test_a_good_llm_answer_still_works_through_the_stub(graph, stub, monkeypatch):
    from embodied_tui.services.ask import ask

    spec = {"subject": "model", "conditions": [{"field": "m.name", "op": "=", "value": "mlp_policy"}]}
    stub.answer = (200, _completion(arguments=json.dumps(spec)))
    monkeypatch.setenv("EMBODIED_AI_LLM_URL", stub.url)
    answer = ask(None, "the mlp policy", llm=True, graph=graph)
    assert answer["source"] == "llm" and answer["rows"] and {r[0] for r in answer["rows"]} == {"mlp_policy"}


def test_bad_budget_settings_are_one_line(db):
    run, _ = run_cli(db, "query", "MATCH (m:Model) RETURN m.name", env={"EMBODIED_AI_QUERY_SECONDS": "-1"})
    refused(run, "EMBODIED_AI_QUERY_SECONDS")
    run, _ = run_cli(db, "query", "MATCH (m:Model) RETURN m.name", env={"EMBODIED_AI_QUERY_MEMORY_MB": "lots"})
    refused(run, "EMBODIED_AI_QUERY_MEMORY_MB")

