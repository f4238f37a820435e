"""Property tests (hypothesis) of the languages a user types: the filter language, questions, Cypher and the LLM's
answers. Whatever the text, the answer is a result or one UserError line, never another exception, never a hang.

Inputs come from random text and from the languages' own pieces (field names, operators, numbers with units, words of
the real vocabulary, parentheses, quotes) so that the fuzzing reaches past the first token. Bounded and deterministic:
``derandomize=True``, no example database, a fixed number of examples each.
"""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embodied_tui.errors import UserError

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
FUZZ_SLOW = settings(FUZZ, max_examples=60)  # each example forks a query process


def one_line(exc: UserError) -> None:
    assert str(exc).strip() and "\n" not in str(exc), repr(str(exc))


def phrases(pieces, *, max_size: int = 12, joiners=(" ", " ", " ", "", "  ")):
    """Text made of ``pieces`` (a strategy of strings) joined by spaces or nothing, or random text, or both."""
    grammar = st.lists(st.tuples(pieces, st.sampled_from(joiners)), max_size=max_size).map(
        lambda parts: "".join(p + j for p, j in parts))
    noise = st.text(max_size=40)
    return st.one_of(grammar, noise, st.tuples(grammar, noise, grammar).map("".join))


# ---- the filter language ---------------------------------------------------------------------------------------------
def _filter_pieces():
    from embodied_tui.data.filters import _ALIASES, FIELDS

    fields = list(FIELDS) + list(_ALIASES) + ["tags.site", "tags.", "tags.robot", "parms", "Params", "NAME"]
    ops = ["=", "==", "!=", "<", "<=", ">", ">=", "~", "!~", "!", "=<", "<>"]
    numbers = ["10M", "1.5GB", "1e3", "-3", "+2.5k", "0", ".5", "5.", "1KiB", "3MiB", "7T", "2G", "1e999", "1e-999",
               "12abc", "1_000", "0x10", "nan", "inf", "99999999999999999999999"]
    words = ["yolo", "resnet", "robot", "lab", "rsnt", "1x3x224x224", "640", "1,3,224,224", "onnx", "cnn", "policy",
             "\"pick and place\"", "'lab'", "\"", "'", "\\", "\x00", "ß", "İ", "é"]
    return st.one_of(st.sampled_from(fields), st.sampled_from(ops), st.sampled_from(numbers), st.sampled_from(words),
                     st.sampled_from(["AND", "OR", "NOT", "and", "or", "not", "(", ")", "((", "))"]))


@FUZZ
@given(expr=phrases(_filter_pieces()), key=st.sampled_from([None, "params", "-macs", "name", "-tags", "weight_mb",
                                                            "nope", "-", "+version", "input"]))
def test_any_filter_text_filters_or_is_one_line(expr, key):
    from embodied_tui.data.filters import FilterError, RecordIndex, filter_records, sort_records
    from tests.test_filters import RECORDS

    try:
        direct = [r.name for r in sort_records(filter_records(RECORDS, expr), key)]
    except FilterError as exc:
        one_line(exc)
        with pytest.raises(FilterError):  # the app's cached index refuses it the same way
            RecordIndex(RECORDS).filter(expr, key)
        return
    assert [r.name for r in RecordIndex(RECORDS).filter(expr, key)] == direct  # and agrees with it


@FUZZ
@given(depth=st.integers(0, 200), kind=st.sampled_from(["(", "NOT ", "NOT (", "( NOT "]))
def test_nesting_is_refused_past_the_limit_and_answered_below_it(depth, kind):
    from embodied_tui.data.filters import MAX_FILTER_DEPTH, FilterError, compile_filter
    from tests.test_filters import RECORDS

    closing = ")" * (kind.count("(") * depth)
    expr = kind * depth + "yolo" + closing
    levels = depth * (kind.count("(") + kind.count("NOT"))
    if levels > MAX_FILTER_DEPTH:
        with pytest.raises(FilterError, match="nested too deeply"):
            compile_filter(expr)
    else:
        pred = compile_filter(expr)
        assert all(isinstance(pred(r), bool) for r in RECORDS)


# ---- questions -------------------------------------------------------------------------------------------------------
def _question_pieces(vocab):
    names = list(vocab.models) + list(vocab.families) + list(vocab.tasks) + list(vocab.types)
    devices = [t for d in vocab.devices for t in (d.id, d.name, *d.aliases, *d.modes)]
    comparisons = ["under", "below", "over", "at least", "at most", "less than", "more than", "between", "and", "or",
                   "no more than", "faster than", "<", "<=", ">", ">=", "=", "==", "≤", "≥", "within", "up to"]
    quantities = ["30 ms", "30ms", "0.5 s", "200 us", "30 fps", "60 hz", "15 W", "15W", "10 watts", "5 mJ", "2 J",
                  "5M params", "200k parameters", "1.5 B params", "2 GMACs", "500 MMACs", "3 GFLOPs", "1 TFLOPs",
                  "20 MB", "4 GiB", "1,000", "1,000,000", ".5", "3", "99999999999999999999999999", "1e9", "0",
                  "a billion MACs", "5 million weights", "2 megs of weights", "1.5k params", "1 to 10 million",
                  "from 1M to 10M params", "20 fps per watt", "0 fps/W", "50 TOPS int8", "100 GB/s", "16 GB of RAM",
                  "a millisecond", "half a second"]
    words = ["best fps per watt", "highest memory bandwidth", "most memory", "highest int8 TOPS", "power modes",
             "parameter count", "by parameter count", "by MACs", "lighter than", "heavier than", "fewer MACs than",
             "vs", "versus", "is", "how much faster is", "than on", "compare", "tagged", "robot tag", "site", "lab",
             "tags.site = lab", "mobilnet", "resnt_tiny", "jetsen",
             "fastest", "slowest", "smallest", "largest", "cheapest in energy", "most headroom", "fewest macs",
             "top 3", "the 2", "three", "not", "except", "without", "how many", "count of", "fits in memory",
             "doesn't fit", "memory-bound", "compute bound", "measured", "real-time", "models", "devices", "gpus",
             "cpus", "npus", "int8", "fp16", "half precision", "4-bit", "maxn", "mode", "on the", "in", "at", "?",
             "!", ",", "'", "\"", "(", ")", "-", "ß", "İstanbul", "\u2019", "\x00", "\n"]
    runs = [" " * 300, "\t\n " * 100, "the " * 60, "not the " * 30, "1" * 200, "1," * 100, "." * 200, "-" * 200,
            "x " * 100, "gpus " * 60]  # long runs: what made the readers slow (whitespace after a number: 45 s)
    return st.one_of(st.sampled_from(names), st.sampled_from(devices), st.sampled_from(comparisons),
                     st.sampled_from(quantities), st.sampled_from(words), st.sampled_from(runs))


@pytest.fixture(scope="module")
def vocab(graph):
    from embodied_tui.services.vocabulary import vocabulary

    return vocabulary(graph)


def test_question_fuzz(vocab):
    """parse_question on any text: a StructuredQuery whose Cypher passes the static limits, or one UserError line."""
    from embodied_tui.ask.graph import check_query
    from embodied_tui.ask.parse import parse_question

    @FUZZ
    @given(text=phrases(_question_pieces(vocab), max_size=30))
    def run(text):
        try:
            parsed = parse_question(text, vocab)
        except UserError as exc:
            one_line(exc)
            return
        cypher = parsed.to_cypher()
        check_query(cypher)
        parsed.selections()
        json.dumps(parsed.spec())

    run()


def _calls(fn) -> int:
    """The Python function calls (ours, the library's and builtins') made while ``fn()`` runs: a count of work that
    does not depend on how loaded the machine is."""
    import sys

    count = 0

    def profile(frame, event, arg):
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


def test_question_fuzz_long(vocab):
    """Long questions (up to the limit) made of the pieces that repeat in readers: one reading of a question is about
    linear in its length. Work is counted in function calls, not seconds: a question 4x as long makes at most 6x the
    calls (a reader that tries every start with every end makes 16x or 64x). The whole question is read at most
    ``MAX_CORRECTIONS + 1`` times (a close name corrected, then read again), so one reading (``_read``) is what is
    counted. 'x x x ...' took 3.3 s on a loaded CI host when the device reader re-tokenised each word for each phrase
    it tried; 'lstm_policy lstm_policy ...' rebuilt the unread text once per match."""
    from embodied_tui.ask.parse import MAX_QUESTION_CHARS, _read

    def read(text):
        def go():
            try:
                _read(text, vocab)
            except UserError as exc:
                one_line(exc)
        return go

    @settings(FUZZ, max_examples=40)
    @given(piece=phrases(_question_pieces(vocab), max_size=4), sep=st.sampled_from([" ", "", ", "]))
    def run(piece, sep):
        unit = ((piece or "x") + sep)[:MAX_QUESTION_CHARS // 4]
        repeats = MAX_QUESTION_CHARS // 4 // len(unit)  # the same pattern, 4x as many times
        quarter, text = unit * repeats, unit * repeats * 4
        read(quarter)()  # first reads compile patterns and fill caches: not counted
        part, full = _calls(read(quarter)), _calls(read(text))
        assert full <= 6 * part + 5_000, (full, part, text[:80])

    run()


def test_ask_fuzz(fx, graph, vocab):
    """The whole of services.ask.ask on the real registry (``fx``): an answer or one UserError line."""
    from embodied_tui.services.ask import ask

    @FUZZ_SLOW
    @given(text=phrases(_question_pieces(vocab), max_size=20))
    def run(text):
        try:
            answer = ask(fx.db, text, graph=graph)
        except UserError as exc:
            one_line(exc)
            return
        assert isinstance(answer["rows"], list) and answer["cypher"]

    run()


def _grammar_questions(vocab):
    """Well-formed questions, built from the grammar's pieces (an opener, then any of: a family or task, size and
    latency thresholds in several units and number words, a device, a precision, a power mode, a superlative, a
    measure): each must be understood and run."""
    models = sorted(vocab.models)
    opener = st.sampled_from(["which models", "what models", "list the models", "how many models", "models",
                              "which devices", "where", "show me models"])
    family = st.sampled_from(["", "detectors", "classifiers", "cnns", "transformers", "policies", "resnets", "yolo"])
    size = st.sampled_from(["", "with fewer than 5 million weights", "under 2 megs of weights",
                            "with more than a billion MACs", "in the 1 to 10 million parameter range",
                            "between 100k and 2M params", "over 1.5k params", "lighter than " + models[0],
                            "with fewer MACs than " + models[-1], "under 3 GFLOPs", "not yolo"])
    latency = st.sampled_from(["", "under 30 ms", "in less than a millisecond", "at 30 fps", "at least 20 fps per watt",
                               "under 5 mJ per inference", "between 1 and 3 ms", "that fit in memory", "memory-bound"])
    where = st.sampled_from(["", "on a jetson", "on the orin nano", "on the pi 5", "on hailo", "on gpus",
                             "not on the pi 4"])
    precision = st.sampled_from(["", "in int8", "at fp16", "in full precision"])
    mode = st.sampled_from(["", "at 15 W", "in MAXN mode"])
    ordering = st.sampled_from(["", "fastest first", "the 3 smallest", "by parameter count", "with the best fps per watt",
                                "cheapest in energy"])
    return st.tuples(opener, family, size, latency, where, precision, mode, ordering).map(
        lambda parts: " ".join(p for p in parts if p))


def test_questions_from_the_grammar_are_understood_and_run(fx, graph, vocab):
    """Every question the grammar can build plans into Cypher that grand-cypher runs: understood, no refusal, no
    error of any kind (not even a UserError line)."""
    from embodied_tui.ask.graph import check_query
    from embodied_tui.services.ask import ask

    @settings(FUZZ, max_examples=25)  # each example forks a query process
    @given(text=_grammar_questions(vocab))
    def run(text):
        answer = ask(fx.db, text, graph=graph)
        assert answer["understood"] and not answer["refused"], (text, answer["answer"], answer["unparsed"])
        check_query(answer["cypher"])
        assert isinstance(answer["rows"], list)

    run()


def test_ask_fuzz_reads_the_registry(fx, vocab):
    """A few through the registry itself (no graph given): the path the CLI takes."""
    from embodied_tui.services.ask import ask

    @settings(FUZZ, max_examples=15)
    @given(text=phrases(_question_pieces(vocab), max_size=10))
    def run(text):
        try:
            ask(fx.db, text)
        except UserError as exc:
            one_line(exc)

    run()


# ---- Cypher ----------------------------------------------------------------------------------------------------------
def _cypher_pieces():
    return st.one_of(
        st.sampled_from(["MATCH", "match", "WHERE", "RETURN", "ORDER BY", "SKIP", "LIMIT", "DISTINCT", "AS", "AND",
                         "OR", "NOT", "IN", "IS", "NULL", "true", "CONTAINS", "STARTS WITH", "EXISTS", "ASC", "DESC",
                         "COUNT(", "SUM(", "MIN(", "collect(", "id(", "toLower(", "size(", "coalesce(", "type(",
                         "relationships(", "any(", "all("]),
        st.sampled_from(["(m:Model)", "(h:Hardware)", "(z:Measurement)", "(m)", "()", "(m:Model {name: 'x'})",
                         "-[r:RUNS_ON]->", "-[:OF]->", "-[r]-", "<-[r]-", "-->", "--", "-[*1..2]->", "-[r*0..3]->",
                         "-[*5]->", "{", "}", "[", "]", "(", ")", ",", ".", ":", "|", ";"]),
        st.sampled_from(["m.name", "m.params", "m.family", "h.power_w", "h.device", "r.latency_ms", "r.precision",
                         "z.latency_ms", "m", "r", "h", "m.__labels__", "q.x"]),
        st.sampled_from(["=", "<>", "<", "<=", ">", ">=", "==", "+", "-", "*", "/", "%"]),
        st.sampled_from(["1", "-1", "0", "1.5", "1e3", "30", "'x'", '"y"', "'resnet_tiny'", "[1, 2]", "['a']", "'",
                         '"', "99999999999999999999", "-5"]),
    )


def test_cypher_fuzz(graph, monkeypatch):
    """run_cypher on any text: rows, or one UserError line (syntax, limits, grand-cypher's own errors, budget)."""
    from embodied_tui.ask.graph import run_cypher

    monkeypatch.setenv("EMBODIED_AI_QUERY_SECONDS", "5")
    prefix = st.sampled_from(["", "MATCH (m:Model) ", "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE ",
                              "MATCH (m:Model) WHERE ", "MATCH (m:Model) RETURN "])

    @FUZZ_SLOW
    @given(head=prefix, body=phrases(_cypher_pieces(), max_size=14))
    def run(head, body):
        try:
            columns, rows = run_cypher(graph, head + body)
        except UserError as exc:
            one_line(exc)
            return
        assert isinstance(columns, list) and isinstance(rows, list)

    run()


# ---- the LLM's answer ------------------------------------------------------------------------------------------------
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    | st.sampled_from(["structured_query", "model", "hardware", "m.params", "<", "IN", "r.latency_ms", "=", "{}",
                       '{"subject": "model"}', "[]", "9" * 401]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["choices", "message", "tool_calls", "function", "name", "arguments", "content", "subject",
                         "conditions", "field", "op", "value", "negate", "order_by", "limit", "count", "x"]),
        inner, max_size=5),
    max_leaves=25)


def _tool_call(arguments):
    return {"choices": [{"message": {"tool_calls": [{"function": {"name": "structured_query",
                                                                   "arguments": arguments}}]}}]}


@FUZZ
@given(body=_JSON | _JSON.map(_tool_call) | _JSON.map(json.dumps).map(_tool_call))
def test_any_llm_answer_is_a_query_or_one_line(body):
    from embodied_tui.ask.graph import check_query
    from embodied_tui.ask.tool import query_from_response

    try:
        parsed = query_from_response(body, "q")
    except UserError as exc:
        one_line(exc)
        return
    try:
        check_query(parsed.to_cypher())
    except UserError as exc:  # a valid spec may still make a query past the static limits: one line too
        one_line(exc)
