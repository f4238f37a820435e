"""Stored pipelines (data/pipeline_store.py, services/pipelines.py, `embodied-ai pipeline register/list/show/fit/
remove`): versions like models', configs stored by content, models by name, one-line errors, and concurrent writers
that never lose a version."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
import yaml
from test_pipeline import DEVICE, write_spec

from embodied_tui.data.store import Registry


def _json(result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_register_versions_and_unchanged(tmp_path, cli):
    spec = write_spec(tmp_path / "a", 5.0)
    first = _json(cli("pipeline", "register", spec, "--json"))
    assert first["status"] == "added" and first["pipeline"]["version"] == 1
    again = _json(cli("pipeline", "register", spec, "--json"))
    assert again["status"] == "unchanged" and again["pipeline"]["version"] == 1
    # a different rate is a new version; so is a changed config (same spec text, other config content)
    data = yaml.safe_load(spec.read_text())
    spec.write_text(yaml.safe_dump({**data, "rate_hz": 7.0}))
    assert _json(cli("pipeline", "register", spec, "--json"))["pipeline"]["version"] == 2
    config = tmp_path / "a" / "lm" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "num_hidden_layers": 3}))
    third = _json(cli("pipeline", "register", spec, "--json"))
    assert third["status"] == "new_version" and third["pipeline"]["version"] == 3
    listed = _json(cli("pipeline", "list", "--json"))
    assert [(p["name"], p["version"]) for p in listed] == [("tiny-policy", 3)]
    every = _json(cli("pipeline", "list", "--all-versions", "--json"))
    assert [p["version"] for p in every] == [1, 2, 3] and [p["rate_hz"] for p in every] == [5.0, 7.0, 7.0]
    shown = _json(cli("pipeline", "show", "tiny-policy@1", "--json"))
    assert shown["version"] == 1 and shown["spec"]["rate_hz"] == 5.0
    assert shown["configs"]["lm/config.json"]["num_hidden_layers"] == 2  # version 1 keeps the config it was given
    assert _json(cli("pipeline", "show", "tiny-policy", "--json"))["configs"]["lm/config.json"][
        "num_hidden_layers"] == 3
    text = cli("pipeline", "show", "tiny-policy")
    assert text.exit_code == 0 and "v3 of 1, 2, 3" in text.output and "(stored)" in text.output


def test_stored_pipeline_fits_like_its_file_and_without_it(tmp_path, cli):
    spec = write_spec(tmp_path / "a", 5.0)
    cli("pipeline", "register", spec, "--name", "tiny")
    from_file = _json(cli("pipeline", "fit", spec, "--hw", DEVICE, "--json"))
    shutil.rmtree(tmp_path / "a")  # the spec and its configs are gone: the stored content is enough
    stored = _json(cli("pipeline", "fit", "tiny", "--hw", DEVICE, "--json"))
    assert stored["total_ms"] == from_file["total_ms"] and stored["rate_hz"] == from_file["rate_hz"]
    assert [s["ms"] for s in stored["stages"]] == [s["ms"] for s in from_file["stages"]]
    assert stored["memory_fit"] == from_file["memory_fit"] and stored["name"] == "tiny"
    assert _json(cli("pipeline", "fit", "tiny@1", "--hw", DEVICE, "--json"))["total_ms"] == stored["total_ms"]


def test_remove_one_version_or_all(tmp_path, cli):
    spec = write_spec(tmp_path / "a", 5.0)
    cli("pipeline", "register", spec)
    data = yaml.safe_load(spec.read_text())
    spec.write_text(yaml.safe_dump({**data, "rate_hz": 9.0}))
    cli("pipeline", "register", spec)
    assert cli("pipeline", "remove", "tiny-policy@1", "--yes").exit_code == 0
    assert [p["version"] for p in _json(cli("pipeline", "list", "-a", "--json"))] == [2]
    declined = cli("pipeline", "remove", "tiny-policy", input="n\n")
    assert declined.exit_code == 1 and len(_json(cli("pipeline", "list", "--json"))) == 1
    assert cli("pipeline", "remove", "tiny-policy", "--yes").exit_code == 0
    assert _json(cli("pipeline", "list", "--json")) == []


@pytest.mark.parametrize(("args", "message"), [
    (("show", "nothing-here"), "no pipeline 'nothing-here'"),
    (("show", "tiny-policy@9"), "has no version 9 (versions: 1)"),
    (("show", "tiny-policy@x"), "must be a whole number"),
    (("fit", "nothing-here", "--hw", DEVICE), "no pipeline 'nothing-here'"),
    (("remove", "nothing-here", "--yes"), "no pipeline 'nothing-here'"),
    (("register", "SPEC", "--name", "bad name"), "pipeline name 'bad name' is not allowed"),
])
def test_errors_are_one_line(tmp_path, cli, args, message):
    spec = write_spec(tmp_path / "a", 5.0)
    assert cli("pipeline", "register", spec).exit_code == 0
    result = cli("pipeline", *(str(spec) if a == "SPEC" else a for a in args))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_register_checks_models_and_configs(tmp_path, cli, db):
    spec = write_spec(tmp_path / "a", 5.0, stages=[{"name": "det", "model": "not-registered"}])
    result = cli("pipeline", "register", spec)
    assert result.exit_code == 2 and "not-registered" in result.output
    broken = write_spec(tmp_path / "b", 5.0)
    (tmp_path / "b" / "lm" / "config.json").write_text("{not json")
    result = cli("pipeline", "register", broken)
    assert result.exit_code == 2 and "not valid JSON" in result.output and "Traceback" not in result.output
    assert not db.exists() or Registry(db).table_all("pipelines") == []  # nothing was stored


# A child: wait for the start file, then register its own variant of one spec under one shared name.
WRITER = r"""
import sys, time
from pathlib import Path
from embodied_tui.services.pipelines import register

db, spec, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
while not go.exists():
    time.sleep(0.005)
stored, status = register(db, spec, name="shared")
assert status in ("added", "new_version"), status
print(stored.version)
"""


def test_concurrent_registrations_lose_no_version(tmp_path, db):
    specs = []
    for i in range(8):  # 8 different rates: 8 different contents under one name
        spec = write_spec(tmp_path / f"s{i}", 1.0 + i)
        specs.append(spec)
    go = tmp_path / "go"
    children = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(s), str(go)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for s in specs]
    time.sleep(0.5)
    go.touch()
    versions = []
    for child in children:
        out, err = child.communicate(timeout=180)
        assert child.returncode == 0, err
        versions.append(int(out.strip()))
    assert sorted(versions) == list(range(1, 9))  # each writer got its own number
    stored = Registry(db).table_all("pipelines")
    assert sorted(d["version"] for d in stored) == list(range(1, 9))
    assert sorted(d["spec"]["rate_hz"] for d in stored) == [1.0 + i for i in range(8)]  # no write was lost


def test_a_damaged_stored_pipeline_is_one_line_and_does_not_stop_queries(tmp_path, cli, db):
    cli("pipeline", "register", write_spec(tmp_path / "a", 5.0))
    cli("pipeline", "register", write_spec(tmp_path / "b", 6.0), "--name", "other")
    with Registry(db).table_transaction("pipelines") as table:  # a hand edit: a rate that is not a number
        doc = next(d for d in table.all() if d["name"] == "other")
        table.update({"spec": {**doc["spec"], "rate_hz": "fast"}}, doc_ids=[doc.doc_id])
    shown = cli("pipeline", "show", "other")
    assert shown.exit_code == 2 and "stored pipeline 'other' v1 is invalid at spec.rate_hz" in shown.output
    assert "Traceback" not in shown.output
    query = cli("query", "MATCH (p:Pipeline) RETURN p.name", "--json")
    assert query.exit_code == 0 and json.loads(query.stdout)["rows"] == [["tiny-policy"]]
    assert "warning: stored pipeline 'other' v1 is invalid" in query.stderr
    listed = cli("pipeline", "list", "--json")
    assert [p["name"] for p in json.loads(listed.stdout)] == ["tiny-policy"] and "warning:" in listed.stderr
    assert cli("pipeline", "remove", "other", "--yes").exit_code == 0  # what the error line says to do works
    assert _json(cli("pipeline", "list", "--json"))[0]["name"] == "tiny-policy"
