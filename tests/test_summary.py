"""The registry summary for questions (services.summary): a question read through it answers exactly as one that
parses the registry, never from a stale summary, and a damaged summary only costs the parse."""
from __future__ import annotations

import sqlite3

from click.testing import CliRunner
from store_probe import forget_rows

from embodied_tui.cli import main
from embodied_tui.data import store
from embodied_tui.services.ask import ask
from embodied_tui.services.graph import Registered, fit_cache_path
from embodied_tui.services.summary import SummaryRecord

QUESTIONS = [
    "fastest model on the raspberry pi 5",  # rows decided without a graph
    "which models have fewer than 200k params?",  # models alone
    "how many models run under 1 ms on the orin nano?",  # a count
    "the 3 slowest models on the orin nano in fp16",  # top-k from the store's order
    "which models are faster than resnet_tiny on the pi 5?",  # a relative threshold: a graph of whole records
    "is resnet_tiny faster than mobilenet_tiny on the AGX Orin?",  # a comparison
    "which devices have more than 100 TOPS",  # hardware alone
    "models with a measured latency",
]


def _forget_parse(db) -> None:
    """What a new process holds of the registry: nothing (the store's parse is kept per process)."""
    store._cache.pop(Registered.read(db).reg.path, None)


def _answers(db) -> list[tuple]:
    out = []
    for question in QUESTIONS:
        a = ask(db, question)
        out.append((question, a["understood"], a["columns"], a["rows"], a["answer"], a["cypher"]))
    return out


def test_a_summary_answers_exactly_as_the_parsed_registry(tmp_path):
    from ask_fixture import copy_registry

    db = copy_registry(tmp_path)
    parsed = _answers(db)  # parses the registry, fills the fit store, writes the summary
    _forget_parse(db)
    src = Registered.read(db)
    assert all(type(r) is SummaryRecord for r in src.records)
    assert not store._cache[src.reg.path][1].parsed  # the tables were primed from the summary, the models not read
    summarised = []
    for question in QUESTIONS:  # each as a new process asks it: from the summary
        _forget_parse(db)
        a = ask(db, question)
        summarised.append((question, a["understood"], a["columns"], a["rows"], a["answer"], a["cypher"]))
    assert summarised == parsed
    # what the fit store's device versions digest (the measured models' records) is the same from either
    _forget_parse(db)
    from_summary = Registered.read(db)
    assert from_summary.measured  # the fixture has measurements: their models' versions are in the summary
    versions = from_summary.device_versions()
    store._cache.pop(from_summary.reg.path, None)
    whole = Registered(from_summary.reg, from_summary.reg.list_models(), from_summary.devices,
                       from_summary.measurements, from_summary.pipelines)
    assert whole.device_versions() == versions


def test_a_changed_registry_is_never_answered_from_the_old_summary(tmp_path):
    from ask_fixture import copy_registry

    db = copy_registry(tmp_path)
    question = "which models carry the robot tag?"
    assert not ask(db, question)["rows"]
    result = CliRunner().invoke(main, ["--db", str(db), "model", "update", "resnet_tiny", "--tag", "robot"])
    assert result.exit_code == 0, result.output
    _forget_parse(db)
    a = ask(db, question)
    assert a["understood"] and [row[0] for row in a["rows"]] == ["resnet_tiny"], a["reasons"]
    # the same again from the new summary
    _forget_parse(db)
    assert all(type(r) is SummaryRecord for r in Registered.read(db).records)
    _forget_parse(db)
    assert [row[0] for row in ask(db, question)["rows"]] == ["resnet_tiny"]


def test_a_cold_question_through_a_summary_computes_fits_from_whole_records(tmp_path):
    from ask_fixture import copy_registry

    db = copy_registry(tmp_path)
    question = "which models run under 5 ms on the orin nano in int8?"
    expected = ask(db, question)["rows"]
    forget_rows(db)  # the fits gone, the summary kept
    with sqlite3.connect(fit_cache_path(db)) as cache:
        assert cache.execute("SELECT COUNT(*) FROM summary").fetchone() == (1,)
    _forget_parse(db)
    assert ask(db, question)["rows"] == expected and expected


def test_a_damaged_summary_costs_only_the_parse(tmp_path):
    from ask_fixture import copy_registry

    db = copy_registry(tmp_path)
    expected = ask(db, QUESTIONS[0])["rows"]
    for body in ('{"records": [[1, 2]]', '{"records": [["a", 1, "k", 5, {}]], "tables": {}, "measured": {}}',
                 '{"records": [], "tables": {"measurements": [1]}, "measured": {}}', '[]'):
        with sqlite3.connect(fit_cache_path(db)) as cache:
            cache.execute("UPDATE summary SET body = ?", (body,))
        _forget_parse(db)
        assert not any(type(r) is SummaryRecord for r in Registered.read(db).records), body
        with sqlite3.connect(fit_cache_path(db)) as cache:
            cache.execute("UPDATE summary SET body = ?", (body,))
        _forget_parse(db)
        assert ask(db, QUESTIONS[0])["rows"] == expected, body


def test_a_record_changed_after_its_summary_was_read_is_never_taken_for_it(tmp_path):
    """The file changes between reading its summary and needing whole records (a fit to compute): a record that is
    no longer as summarised is left out (and a cold question says to ask again), never fitted under the old key."""
    from ask_fixture import copy_registry

    from embodied_tui.errors import RegistryError

    db = copy_registry(tmp_path)
    ask(db, QUESTIONS[0])
    _forget_parse(db)
    src = Registered.read(db)
    assert all(type(r) is SummaryRecord for r in src.records)
    result = CliRunner().invoke(main, ["--db", str(db), "model", "update", "resnet_tiny", "--tag", "robot"])
    assert result.exit_code == 0, result.output
    names = [r.name for r in src.whole(src.records)]
    assert "resnet_tiny" not in names and len(names) == len(src.records) - 1
    forget_rows(db)
    try:
        src.decided_rows(*_planned(src, "which models run under 5 ms on the pi 5?"))
    except RegistryError as exc:
        assert "changed while it was read; ask again" in str(exc)
    else:
        raise AssertionError("a cold question on a changed registry was answered from the old summary")


def _planned(src, question):
    from embodied_tui.ask.parse import parse_question
    from embodied_tui.ask.plan import plan, where_decider
    from embodied_tui.services.vocabulary import vocabulary_of

    parsed = parse_question(question, vocabulary_of(src))
    scope, top = plan(parsed)
    return scope, top, where_decider(parsed), parsed.columns(), parsed.order_items(), parsed.limit


def test_registering_and_measuring_leave_a_summary_of_the_file_they_wrote(tmp_path):
    """A model registered through the CLI (a real TorchScript file, analysed) and a measurement added: each write
    leaves the registry summarised, so the next process reads the summary (no parse) and answers as the parsed file
    does. A write that does not summarise (a tag changed) leaves no usable summary: the file is parsed again."""
    import torch

    from embodied_tui.services import summary

    db = tmp_path / "registry.json"
    path = tmp_path / "policy.pt"
    torch.jit.trace(torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU()).eval(), torch.randn(1, 8)).save(path)
    runner = CliRunner()
    def new_process() -> store.Registry:  # nothing parsed (not _forget_parse: reading the registry summarises it)
        reg = store.Registry(db)
        store._cache.pop(reg.path, None)
        return reg

    result = runner.invoke(main, ["--db", str(db), "model", "register", str(path), "--name", "policy"])
    assert result.exit_code == 0, result.output
    found = summary.read(new_process())
    assert found is not None and [(type(r), r.name) for r in found.records] == [(SummaryRecord, "policy")]
    result = runner.invoke(main, ["--db", str(db), "measurement", "add", "--model", "policy", "--hw", "raspberry-pi-5",
                                  "--precision", "fp32", "--latency-ms", "0.5", "--source", "a test"])
    assert result.exit_code == 0, result.output
    found = summary.read(new_process())
    assert found is not None and len(found.measurements) == 1
    new_process()
    from_summary = ask(db, "models with a measured latency")
    assert [row[0] for row in from_summary["rows"]] == ["policy"]
    result = runner.invoke(main, ["--db", str(db), "model", "update", "policy", "--tag", "robot"])
    assert result.exit_code == 0, result.output
    assert summary.read(new_process()) is None  # the file changed since: parsed, never the old summary


def test_whole_records_read_through_a_summary_carry_their_own_digests(tmp_path):
    """Whole records parsed from the very file summarised take the summary's fit-store and content keys (not made
    again per record): each is the digest of that record's own JSON, as ``_record_key``/``_content_key`` make it."""
    import hashlib

    from ask_fixture import copy_registry

    from embodied_tui.services import graph

    db = copy_registry(tmp_path)
    ask(db, QUESTIONS[0])
    _forget_parse(db)
    src = Registered.read(db)
    assert all(type(r) is SummaryRecord for r in src.records) and src.signature is not None
    wholes = src.whole(src.records)
    assert len(wholes) == len(src.records)
    for record in wholes:
        own = hashlib.sha256(record.model_dump_json().encode()).hexdigest()
        content = hashlib.sha256(record.model_dump_json(exclude=set(graph._REGISTRATION)).encode()).hexdigest()
        assert graph._KEYS[id(record)] == (record, own) and graph._CONTENT[id(record)] == (record, content)


def test_a_parsed_registry_takes_its_summary_keys_and_properties_for_its_own_records(tmp_path):
    """A process that holds the registry parsed (the app) and finds that very file summarised gives its records the
    summary's fit-store keys, content keys and Model node properties instead of deriving them: each equal to what
    ``_record_key``/``_content_key``/``model_properties`` make of the record; a damaged summary gives nothing."""
    import hashlib

    from ask_fixture import copy_registry

    from embodied_tui.ask.graph import model_properties
    from embodied_tui.services import graph, summary

    db = copy_registry(tmp_path)
    ask(db, QUESTIONS[0])  # summarised (by the question's process)
    for damaged in (False, True):
        _forget_parse(db)
        summary._SAVED.clear()  # a new process: it has not looked for the summary yet
        for cache in (graph._KEYS, graph._CONTENT, graph._PROPS):
            cache.clear()
        reg = Registered.read(db).reg
        reg.list_models()  # parsed, as the app holds it
        if damaged:
            with sqlite3.connect(fit_cache_path(reg)) as con:
                con.execute("UPDATE summary SET body = '{\"records\": 7}'")
        src = Registered.read(db)
        assert src.records and all(type(r) is not SummaryRecord for r in src.records)
        for record in src.records:
            seeded = [cache.get(id(record)) for cache in (graph._KEYS, graph._CONTENT, graph._PROPS)]
            if damaged:
                assert seeded == [None, None, None]
                continue
            own = hashlib.sha256(record.model_dump_json().encode()).hexdigest()
            content = hashlib.sha256(record.model_dump_json(exclude=set(graph._REGISTRATION)).encode()).hexdigest()
            assert seeded == [(record, own), (record, content), (record, model_properties(record))]
