"""Plan before computing (ask.plan, services.graph, services.fit_store): a question's answer on the planned graph
equals its answer on the whole graph, only the targets it can match are fitted, the fit store is keyed so that a
repeated question computes nothing and one more model computes only its own rows, and every generated question
either answers or says why in one line."""
from __future__ import annotations

import itertools
import threading

import pytest
from ask_fixture import copy_registry
from store_probe import set_latency, stored_targets

from embodied_tui.errors import UserError

# questions of every shape the planner cuts: ranges on models, devices and edges, precision and mode pinned,
# superlatives with a LIMIT (top-k), counts (one edge per subject), negation, hardware alone
PLANNED = [
    "fastest model on the raspberry pi 5",
    "the 3 fastest models on a jetson at 15 W in fp16",
    "slowest model on the orin nano",
    "which models run under 2 ms on the orin nano in int8?",
    "how many models run under 1 ms on a jetson?",
    "how many models have fewer than 200k params?",
    "fastest 2 models with more than 100k params on the pi 5",
    "which devices run resnet_tiny under 1 ms?",
    "models that are not cnn on the pi 5",
    "fastest device for small_vit",
    "cheapest energy for mlp_policy",
    "which models fit in memory on the hailo-8?",
    # each device's first models: the store's ranked read stops on each device, none cut across them
    "the fastest model on each jetson",
    "the 2 fastest models per device in int8",
    # models alone, answered from the records without a graph (services.graph.decided_model_rows)
    "the 2 largest models by MACs",
    "models lighter than resnet_tiny",
    "smallest models by parameter count",
]


def rows_of(answer: dict) -> tuple:
    return answer["columns"], answer["rows"], answer["count"]


def stored(db) -> list[tuple]:
    """(model_key, device, mode, precision) of every target the store holds, sorted by device, version, model key,
    mode and precision."""
    return stored_targets(db)


@pytest.mark.parametrize("question", PLANNED)
def test_the_planned_answer_equals_the_answer_on_the_whole_graph(fx, graph, question):
    from embodied_tui.services.ask import ask

    planned = ask(fx.db, question)
    whole = ask(fx.db, question, graph=graph)  # the question's query on every model x device x mode x precision
    assert planned["cypher"] == whole["cypher"]
    assert rows_of(planned) == rows_of(whole)  # same rows, same order


def test_only_the_targets_a_question_can_match_are_fitted(tmp_path):
    from embodied_tui.data.store import Registry
    from embodied_tui.services.ask import ask
    from embodied_tui.services.fit import fit_all

    db = copy_registry(tmp_path)
    reg = Registry(db)
    ask(db, "which models have fewer than 200k params?")
    assert stored(db) == []  # models alone: no fit computed
    ask(db, "fastest model on the raspberry pi 5")
    targets = stored(db)
    expected = fit_all(reg, hw="raspberry-pi-5")  # the pi 5's rows of every model, counted by services.fit
    assert {t[1] for t in targets} == {"raspberry-pi-5"}
    assert len(targets) == len(expected)
    ask(db, "fastest model on the orin nano 8gb in int8")
    nano = [t for t in stored(db) if t[1] == "jetson-orin-nano-8gb"]
    assert {t[3] for t in nano} == {"int8"}  # only the precision asked
    assert len(nano) == len(fit_all(reg, hw="jetson-orin-nano-8gb", precision="int8"))


def test_a_repeated_question_reads_the_store_and_one_more_model_computes_only_its_rows(tmp_path):
    from embodied_tui.data.store import Registry
    from embodied_tui.services.ask import ask
    from embodied_tui.services.fit import fit_all

    db = copy_registry(tmp_path)
    reg = Registry(db)
    question = "which models run under 1000 ms on the raspberry pi 5?"
    first = ask(db, question)
    before = stored(db)
    set_latency(db, "mlp_policy", 999.5)  # a value only the store can hold
    again = ask(db, question)
    assert stored(db) == before  # nothing computed
    assert {row[4] for row in again["rows"] if row[0] == "mlp_policy"} == {999.5}
    assert len(again["rows"]) == len(first["rows"])

    record, identity, details = reg.entries({"small_vit"})[0]
    reg.put_many([(record.model_copy(update={"name": "small_vit_copy"}), identity, details)])
    ask(db, question)
    added = set(stored(db)) - set(before)
    assert len(added) == len(fit_all(reg, hw="raspberry-pi-5", precision=None)) // len(reg.list_models())
    assert len({t[0] for t in added}) == 1  # one model's rows, no other model's again
    assert {row[4] for row in ask(db, question)["rows"] if row[0] == "mlp_policy"} == {999.5}


# the pieces questions are made of: every combination either answers (the same rows as on the whole graph) or is
# refused in one line
SUBJECTS = ["fastest model", "the 2 slowest models", "how many models", "which models", "cheapest energy model"]
WHERE = ["", "on the raspberry pi 5", "on a jetson at 15 W", "on the orin nano in int8", "on gpus",
         "under 3 ms", "with more than 1 million params", "that are not cnn", "for mobilenet_tiny", "on mobilnet_tiny"]
EXTRA = ["", "in fp16", "under 50 watts"]


@pytest.mark.parametrize("subject, where, extra", [
    combo for i, combo in enumerate(itertools.product(SUBJECTS, WHERE, EXTRA)) if i % 3 == 0])
def test_generated_questions_answer_as_on_the_whole_graph_or_refuse_in_one_line(fx, graph, subject, where, extra):
    from embodied_tui.services.ask import ask

    question = " ".join(p for p in (subject, where, extra) if p)
    try:
        planned = ask(fx.db, question)
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc).strip()
        with pytest.raises(UserError):
            ask(fx.db, question, graph=graph)
        return
    assert rows_of(planned) == rows_of(ask(fx.db, question, graph=graph))


def test_cancel_fits_stops_a_computation_and_keeps_what_was_stored(tmp_path):
    from embodied_tui.ask.budget import Cancelled
    from embodied_tui.services.graph import FIT_CHUNK, Registered, cancel_fits

    db = copy_registry(tmp_path)
    src = Registered.read(db)
    seen = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done:  # the first call (0 done) only announces the work
            cancel_fits()  # as escape does, from another thread

    src.records = [r.model_copy(update={"name": f"{r.name}_{i}"}) for i in range(3 * FIT_CHUNK // 7 + 1)
                   for r in src.records]
    raised = []

    def worker() -> None:  # as the app asks: from a thread worker (so the fits are computed in this process alone)
        try:
            src.fit_edges(src.records, progress=progress)
        except Cancelled as exc:
            raised.append(exc)

    asking = threading.Thread(target=worker)
    asking.start()
    asking.join()
    assert raised, "the fits must have been cancelled"
    total = len([r for r in src.records if r.macs is not None])
    assert seen == [(0, total), (FIT_CHUNK, total)]
    assert len({t[0] for t in stored(db)}) == FIT_CHUNK  # the first chunk was stored, nothing after it


def test_a_limited_question_keeps_only_the_edges_of_its_first_rows(fx):
    from embodied_tui.ask.graph import RUNS_ON
    from embodied_tui.ask.parse import parse_question
    from embodied_tui.ask.plan import plan
    from embodied_tui.services.graph import Registered
    from embodied_tui.services.vocabulary import vocabulary

    src = Registered.read(fx.db)
    vocab = vocabulary(src.graph(fits=False))
    parsed = parse_question("the fastest model on a jetson at 15 W in fp16", vocab)
    assert parsed.limit == 1
    scope, top = plan(parsed)
    small = src.graph(scope, top=top, edges_only=True)
    whole = [d for *_, d in src.graph(scope).edges(data=True) if RUNS_ON in d["__labels__"]]
    kept = sorted(d["latency_ms"] for *_, d in small.edges(data=True) if RUNS_ON in d["__labels__"])
    assert len(whole) > len(kept) >= 1
    first = min(d["latency_ms"] for d in whole)
    assert kept == sorted(d["latency_ms"] for d in whole if d["latency_ms"] <= first)  # the first row and ties
    # 'the 3 fastest models' are 3 models, each at its fastest row: the cut keeps those 3 models' first edges
    parsed = parse_question("the 3 fastest models on a jetson at 15 W in fp16", vocab)
    assert parsed.limit == 3 and parsed.per_subject
    scope, top = plan(parsed)
    assert top is not None and top.per == ("m", "name")
    small = src.graph(scope, top=top, edges_only=True)
    names = {d["id"]: d["name"] for _, d in small.nodes(data=True) if "name" in d and "id" in d}
    whole = src.graph(scope)
    best: dict = {}
    for u, _, d in whole.edges(data=True):
        if RUNS_ON in d["__labels__"]:
            best[u] = min(best.get(u, float("inf")), d["latency_ms"])
    first3 = sorted(best.values())[:3]
    kept = sorted(d["latency_ms"] for *_, d in small.edges(data=True) if RUNS_ON in d["__labels__"])
    assert kept == first3, (kept, first3, names)


# counts the planner answers without building the graph: models and devices, conditions on every variable, negation
COUNTS = [
    "how many models run under 1 ms on a jetson?",
    "how many models run under 0.2 ms on the orin nano in int8?",
    "how many models run under 0.5 ms on the raspberry pi 5?",
    "how many models fit in memory on the raspberry pi 5?",
    "how many models that are not cnn run under 5 ms on gpus?",
    "how many models with more than 100k params are memory-bound on the pi 4?",
    "how many devices run small_vit under 1 ms?",
    "how many devices run resnet_tiny under 2 ms in fp16?",
]


@pytest.mark.parametrize("question", COUNTS)
def test_a_count_decided_by_the_planner_equals_the_cypher_on_the_whole_graph(fx, graph, question):
    from embodied_tui.ask.graph import run_cypher
    from embodied_tui.ask.parse import parse_question
    from embodied_tui.ask.plan import plan
    from embodied_tui.services.ask import ask
    from embodied_tui.services.graph import Registered
    from embodied_tui.services.vocabulary import vocabulary_of

    src = Registered.read(fx.db)
    parsed = parse_question(question, vocabulary_of(src))
    assert parsed.count and parsed.joins() and parsed.understood, parsed.unparsed
    scope, top = plan(parsed)
    values = src.count(scope, top)
    assert values is not None  # every row decided: the planner answers, grand-cypher does not run
    columns, rows = run_cypher(graph, parsed.to_cypher())  # the shown query on every model x target
    assert [[v] for v in values] == rows
    assert columns == parsed.columns()
    answer = ask(fx.db, question)
    assert (answer["columns"], answer["rows"], answer["count"]) == (columns, rows, len(rows))


def test_a_count_the_planner_cannot_decide_is_left_to_the_cypher(fx):
    from embodied_tui.ask.parse import parse_question
    from embodied_tui.ask.plan import plan, where_decider
    from embodied_tui.services.graph import Registered
    from embodied_tui.services.vocabulary import vocabulary_of

    src = Registered.read(fx.db)
    parsed = parse_question("how many models run under 1 ms on a jetson?", vocabulary_of(src))
    decide = where_decider(parsed)
    # a row whose latency is unknown fails 'under 1 ms' (a comparison with null is false); one without the field
    # cannot be said here
    row = {"h": {"device": "jetson-orin-nano-8gb"}, "m": {}}
    assert decide(row["m"], row["h"], {"latency_ms": None}) is False
    assert decide(row["m"], row["h"], {"latency_ms": 0.5}) is True
    assert decide(row["m"], row["h"], {}) is None
    negated = parsed.model_copy(update={"conditions": [*parsed.conditions,
                                                       parsed.conditions[0].model_copy(update={"op": "<>"})]})
    scope, top = plan(negated)
    assert top.decide is not None and src.count(scope, top) is None  # '<>' is not decided here: grand-cypher answers


def test_the_vocabulary_read_from_the_registry_equals_the_graphs(tmp_path):
    from embodied_tui.ask.graph import MODEL
    from embodied_tui.data.store import Registry
    from embodied_tui.services.graph import Registered
    from embodied_tui.services.vocabulary import vocabulary, vocabulary_of

    db = copy_registry(tmp_path)
    Registry(db).update("small_vit", tags={"robot": "", "site": "lab"})
    src = Registered.read(db)
    whole = src.graph(fits=False)
    vocab = vocabulary_of(src)
    assert vocab == vocabulary(whole)  # models, families, tasks, types, devices and modes, pipelines
    assert dict(vocab.sizes) == {d["name"]: {"m.params": d["params"], "m.macs": d["macs"],
                                             "m.weight_bytes": d["weight_bytes"], "m.input_shape": d["input_shape"]}
                                 for _, d in whole.nodes(data=True) if MODEL in d["__labels__"]}
    assert dict(vocab.tags) == {"small_vit": {"robot": "", "site": "lab"}}
    assert vocabulary_of(Registered.read(db)) is not vocab and vocabulary_of(Registered.read(db)) == vocab
    Registry(db).update("small_vit", untag=["robot"])  # a changed registry: its names again, not the kept ones
    assert dict(vocabulary_of(Registered.read(db)).tags) == {"small_vit": {"site": "lab"}}


def test_the_cli_prints_at_most_limit_rows_and_says_how_many_there_are(fx):
    import json

    from click.testing import CliRunner

    from embodied_tui.cli import main

    question = "which models run under 100 ms on a jetson?"
    every = json.loads(CliRunner().invoke(main, ["--db", str(fx.db), "ask", question, "--json"]).output)["rows"]
    assert len(every) > 3
    result = CliRunner().invoke(main, ["--db", str(fx.db), "ask", question, "--limit", "3"])
    assert result.exit_code == 0, result.output
    assert f"{len(every):,} rows (showing the first 3; --limit 0 for all" in result.output
    table = result.output.split("cypher:")[0]
    assert sum(table.count(name) for name in {r[0] for r in every}) == 3  # three rows printed, of the first ones
    assert every[0][0] in table
    whole = CliRunner().invoke(main, ["--db", str(fx.db), "ask", question, "--limit", "0"])
    assert "showing the first" not in whole.output and f"{len(every):,} rows" in whole.output
