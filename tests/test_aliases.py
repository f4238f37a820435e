"""Model aliases (`model alias set|rm|list`) and NAME@ALIAS wherever a model name is taken, through the real CLI on
real registries (TinyDB, and PostgreSQL through ``any_db`` where a server is available).

The registry under test holds three versions of one small traced policy (three different seeds), registered once per
module and carried into each test's registry with `model export` / `model import`. What an alias resolves to is
checked against the same command run with the version number, not against numbers written here.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
USER = "alias-tester"


def policy(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).eval()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A bundle of ``policy`` v1, v2, v3 (three seeds), registered through the CLI into a scratch registry."""
    from click.testing import CliRunner

    from embodied_tui.cli import main

    work = tmp_path_factory.mktemp("alias-models")
    scratch = work / "scratch.json"
    for seed in (1, 2, 3):
        path = work / f"policy_{seed}.pt"
        with torch.no_grad():
            torch.jit.save(torch.jit.trace(policy(seed), torch.zeros(1, 8), check_trace=False), str(path))
        result = CliRunner().invoke(main, ["--db", str(scratch), "model", "register", str(path), "--name", "policy",
                                           "--input-shape", "1,8"])
        assert result.exit_code == 0, result.output
    out = work / "policy.bundle.json"
    result = CliRunner().invoke(main, ["--db", str(scratch), "model", "export", "policy", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture()
def run(cli, any_db, bundle, monkeypatch):
    """The CLI on this test's registry (``any_db``), holding policy v1..v3; ``run(..., json=True)`` parses stdout."""
    monkeypatch.setenv("EMBODIED_AI_USER", USER)
    imported = cli("model", "import", bundle, registry=any_db)
    assert imported.exit_code == 0, imported.output

    def call(*args, as_json: bool = False):
        result = cli(*args, *(("--json",) if as_json else ()), registry=any_db)
        if as_json:
            assert result.exit_code == 0, result.output
            return json.loads(result.output)
        return result
    call.db = any_db
    return call


def utc(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    assert value.utcoffset() == dt.timedelta(0), text
    return value


# ------------------------------------------------------------------------------------------------ set / move / rm
def test_set_move_remove_and_history(run):
    import socket

    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    first = run("model", "alias", "set", "policy@1", "production", as_json=True)
    assert first["status"] == "set" and first["event"]["version"] == 1 and first["event"]["from_version"] is None
    same = run("model", "alias", "set", "policy@v1", "production", as_json=True)  # v1 is version 1 too
    assert same["status"] == "unchanged"
    moved = run("model", "alias", "set", "policy@3", "production", as_json=True)
    assert moved["status"] == "moved" and (moved["event"]["from_version"], moved["event"]["version"]) == (1, 3)
    run("model", "alias", "set", "policy", "staging", as_json=True)  # NAME alone: its latest version
    assert [(e["alias"], e["version"]) for e in run("model", "alias", "list", "policy", as_json=True)] == \
        [("production", 3), ("staging", 3)]
    removed = run("model", "alias", "rm", "policy", "staging", as_json=True)
    assert (removed["event"], removed["from_version"], removed["version"]) == ("rm", 3, None)
    assert [e["alias"] for e in run("model", "alias", "list", as_json=True)] == ["production"]

    history = run("model", "alias", "list", "policy", "--history", as_json=True)
    end = dt.datetime.now(dt.timezone.utc)
    # the "unchanged" call wrote nothing: four events, numbered in order
    assert [(e["seq"], e["event"], e["alias"], e["from_version"], e["version"]) for e in history] == [
        (1, "set", "production", None, 1), (2, "set", "production", 1, 3), (3, "set", "staging", None, 3),
        (4, "rm", "staging", 3, None)]
    for event in history:
        lineage = event["lineage"]
        assert lineage["user"] == USER and lineage["host"] == socket.gethostname()
        assert start <= utc(lineage["at"]) <= end
    text = run("model", "alias", "list", "--history")
    assert text.exit_code == 0 and "v1 -> v3" in text.output and "v3 -> (removed)" in text.output
    assert USER in text.output


def test_a_new_version_does_not_move_an_alias(run, bundle, tmp_path):
    run("model", "alias", "set", "policy@2", "production", as_json=True)
    path = tmp_path / "policy_4.pt"
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(policy(4), torch.zeros(1, 8), check_trace=False), str(path))
    added = run("model", "register", path, "--name", "policy", "--input-shape", "1,8", as_json=True)
    assert added["record"]["version"] == 4
    assert run("model", "show", "policy@production", as_json=True)["version"] == 2
    assert run("model", "show", "policy@latest", as_json=True)["version"] == 4
    copied = run("model", "alias", "set", "policy@production", "canary", as_json=True)  # where production points
    assert (copied["status"], copied["event"]["version"]) == ("set", 2)


# ------------------------------------------------------------------------------------------------ NAME@ALIAS everywhere
def test_alias_works_in_show_fit_measurement_and_export(run, tmp_path):
    run("model", "alias", "set", "policy@2", "production", as_json=True)
    by_alias = run("model", "show", "policy@production", as_json=True)
    by_version = run("model", "show", "policy", "--version", "2", as_json=True)
    assert by_alias == by_version and by_alias["version"] == 2
    assert [a["alias"] for a in by_alias["aliases"]] == ["production"]
    assert run("model", "show", "policy@2", as_json=True) == by_version
    text = run("model", "show", "policy@production")
    assert text.exit_code == 0 and "v2 of 1, 2, 3" in text.output and "production" in text.output

    fit = ("--hw", "raspberry-pi-5", "--precision", "fp32")
    assert run("fit", "policy@production", *fit, as_json=True) == run("fit", "policy", "--version", "2", *fit,
                                                                      as_json=True)

    added = run("measurement", "add", "--model", "policy@production", "--hw", "raspberry-pi-5", "--precision", "fp32",
                "--latency-ms", "0.5", "--source", "alias test", as_json=True)
    assert (added["model"], added["model_version"], added["model_sha256"]) == ("policy", 2, by_version["sha256"])

    out = tmp_path / "production.json"
    assert run("model", "export", "policy@production", "-o", out).exit_code == 0
    exported = json.loads(out.read_text())["models"]
    assert [(m["record"]["name"], m["record"]["version"]) for m in exported] == [("policy", 2)]


def test_alias_works_in_card(run):
    run("model", "alias", "set", "policy@2", "production", as_json=True)
    assert run("card", "policy@production", as_json=True) == run("card", "policy", "--version", "2", as_json=True)


# ------------------------------------------------------------------------------------------------ refusals
@pytest.mark.parametrize("alias, needle", [("3", "version number"), ("v12", "version number"),
                                           ("latest", "latest version"), ("prod uction", "space"),
                                           (".prod", "starts with"), ("a@b", "'@'")])
def test_bad_alias_names_are_refused(run, one_line_error, alias, needle):
    one_line_error(run("model", "alias", "set", "policy@1", alias), "alias name", needle)
    assert run("model", "alias", "list", "--history", as_json=True) == []


def test_unknown_references_are_one_line(run, one_line_error):
    run("model", "alias", "set", "policy@1", "production", as_json=True)
    one_line_error(run("model", "show", "policy@staging"), "no alias 'staging'", "production")
    one_line_error(run("model", "show", "polcy@production"), "no model named 'polcy'", "policy")
    one_line_error(run("model", "show", "policy@9"), "no version 9")
    one_line_error(run("model", "show", "policy@0"), "versions count from 1")
    one_line_error(run("model", "show", "policy@"), "incomplete")
    one_line_error(run("model", "show", "policy@production", "--version", "3"), "version 1", "--version says 3")
    one_line_error(run("fit", "policy@staging"), "no alias 'staging'")
    one_line_error(run("model", "alias", "rm", "policy", "staging"), "no alias 'staging'", "production")
    one_line_error(run("model", "alias", "set", "policy@7", "staging"), "no version 7")


# ------------------------------------------------------------------------------------------------ removal
def test_removing_an_aliased_version_is_refused_unless_forced(run, one_line_error):
    run("model", "alias", "set", "policy@2", "production", as_json=True)
    one_line_error(run("model", "remove", "policy", "--version", "2", "--yes"), "production -> v2", "--force")
    one_line_error(run("model", "remove", "policy", "--yes"), "production -> v2")
    assert [r["version"] for r in run("model", "list", "--all-versions", as_json=True)] == [1, 2, 3]
    assert run("model", "remove", "policy", "--version", "1", "--yes").exit_code == 0  # not aliased

    forced = run("model", "remove", "policy@production", "--yes", "--force")
    assert forced.exit_code == 0, forced.output
    assert [r["version"] for r in run("model", "list", "--all-versions", as_json=True)] == [3]
    last = run("model", "alias", "list", "--history", as_json=True)[-1]
    assert (last["event"], last["alias"], last["from_version"]) == ("rm", "production", 2)
    assert "removed with --force" in last["reason"]
    one_line_error(run("model", "show", "policy@production"), "no alias 'production'")


def test_an_alias_left_on_a_removed_version_says_so(run, one_line_error):
    """A version removed without the alias check (an older embodied-ai, a writer racing the alias): resolving the
    alias names the alias, the missing version and how to move it."""
    from embodied_tui.data.backend import open_registry

    run("model", "alias", "set", "policy@2", "production", as_json=True)
    open_registry(run.db).remove("policy", 2)  # the data layer, below the alias check
    one_line_error(run("model", "show", "policy@production"), "points at v2, which was removed", "alias set")
    one_line_error(run("fit", "policy@production"), "points at v2, which was removed")
    moved = run("model", "alias", "set", "policy@3", "production", as_json=True)
    assert (moved["status"], moved["event"]["from_version"]) == ("moved", 2)
    assert run("model", "show", "policy@production", as_json=True)["version"] == 3


# ------------------------------------------------------------------------------------------------ concurrency
def test_concurrent_moves_from_several_processes_keep_every_event(run):
    """Eight processes move one alias at once, each to one of the three versions. Every move that reported a change
    is one event; the events are numbered without gaps; each starts where the one before ended (no move read a stale
    target); the alias ends where the last event put it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = []
    for k in range(8):
        env_k = {**env, "EMBODIED_AI_USER": f"worker-{k}"}
        args = [sys.executable, "-m", "embodied_tui", "--db", run.db, "model", "alias", "set",
                f"policy@{k % 3 + 1}", "production", "--json"]
        procs.append(subprocess.Popen(args, env=env_k, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    changed = set()
    for k, proc in enumerate(procs):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        if json.loads(out)["status"] != "unchanged":
            changed.add(f"worker-{k}")
    history = run("model", "alias", "list", "--history", as_json=True)
    assert len(history) >= 3  # 8 moves over three versions, each used: at least the first and two changes
    assert {e["lineage"]["user"] for e in history} == changed and len(history) == len(changed)
    assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
    for before, after in zip([None, *history], history):
        assert after["from_version"] == (before["version"] if before else None)
    assert run("model", "alias", "list", as_json=True)[0]["version"] == history[-1]["version"]
    assert run("model", "show", "policy@production", as_json=True)["version"] == history[-1]["version"]
