"""Lineage: who stored a registration, a measurement or a calibration, when, from which host and with which runtime,
through the real CLI on real registries and real onnxruntime sessions.

Expected values come from independent calls: ``socket.gethostname()``, ``getpass.getuser()``, ``onnxruntime.__version__``,
the installed package's version, and the times read around each command.
"""
from __future__ import annotations

import datetime as dt
import getpass
import json
import shutil
import socket
from importlib.metadata import version
from pathlib import Path

import pytest
import torch
import torch.nn as nn

FIXTURE = Path(__file__).parent / "data" / "registry_7f59339.json"  # written before lineage existed


def policy(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).eval()


def traced(path: Path, seed: int) -> Path:
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(policy(seed), torch.zeros(1, 8), check_trace=False), str(path))
    return path


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def utc(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    assert value.utcoffset() == dt.timedelta(0), text
    return value


def words(result) -> str:
    """The output with its line breaks and padding folded into single spaces (tables wrap long cells)."""
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def ok_json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_registration_records_who_where_and_when(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("EMBODIED_AI_USER", raising=False)
    monkeypatch.delenv("EMBODIED_AI_HOST", raising=False)
    start = now()
    first = ok_json(cli("model", "register", traced(tmp_path / "a.pt", 1), "--name", "policy", "--input-shape",
                        "1,8", "--json"))["record"]
    lineage = first["lineage"]
    assert (lineage["user"], lineage["host"]) == (getpass.getuser(), socket.gethostname())
    assert lineage["tool"] == f"embodied-ai {version('embodied-ai')}"
    assert lineage["at"] == first["registered_at"] and start <= utc(lineage["at"]) <= now()
    assert "runtime" not in lineage  # nothing ran the model: the key is left out, not filled with a guess

    monkeypatch.setenv("EMBODIED_AI_USER", "alice")
    monkeypatch.setenv("EMBODIED_AI_HOST", "robot-07")
    second = ok_json(cli("model", "register", traced(tmp_path / "b.pt", 2), "--name", "policy", "--input-shape",
                         "1,8", "--json"))["record"]
    assert (second["version"], second["lineage"]["user"], second["lineage"]["host"]) == (2, "alice", "robot-07")
    shown = ok_json(cli("model", "show", "policy", "--version", "1", "--json"))
    assert shown["lineage"] == lineage  # stored, not recomputed when read
    assert "by alice on robot-07" in words(cli("model", "show", "policy"))


def test_measurements_are_appended_never_edited_and_shown(cli, db, tmp_path, monkeypatch):
    monkeypatch.setenv("EMBODIED_AI_USER", "bob")
    for seed in (1, 2):
        ok_json(cli("model", "register", traced(tmp_path / f"p{seed}.pt", seed), "--name", "policy",
                    "--input-shape", "1,8", "--json"))
    common = ("--hw", "raspberry-pi-5", "--precision", "fp32", "--runtime", "onnxruntime-cpu")
    start = now()
    first = ok_json(cli("measurement", "add", "--model", "policy", *common, "--latency-ms", "0.5", "--source",
                        "bench notebook", "--json"))
    stored_first = json.loads(db.read_text())["measurements"]
    monkeypatch.setenv("EMBODIED_AI_USER", "carol")
    fixed = ok_json(cli("measurement", "add", "--model", "policy", *common, "--latency-ms", "0.42", "--source",
                        "bench notebook, corrected", "--json"))
    ok_json(cli("measurement", "add", "--model", "policy@1", *common, "--latency-ms", "0.7", "--source", "v1",
                "--json"))
    end = now()
    table = json.loads(db.read_text())["measurements"]
    assert {k: table[k] for k in stored_first} == stored_first  # the first document is untouched by the correction
    assert len(table) == 3

    for m, who in ((first, "bob"), (fixed, "carol")):
        assert (m["lineage"]["user"], m["lineage"]["host"]) == (who, socket.gethostname())
        assert m["lineage"]["at"] == m["measured_at"] and start <= utc(m["measured_at"]) <= end

    show = ok_json(cli("model", "show", "policy", "--json"))
    assert [(m["latency_ms"], m["source"]) for m in show["measurements"]] == [
        (0.5, "bench notebook"), (0.42, "bench notebook, corrected")]  # v2's, oldest first; v1's is not there
    assert [m["latency_ms"] for m in ok_json(cli("model", "show", "policy@1", "--json"))["measurements"]] == [0.7]
    text = words(cli("model", "show", "policy"))
    assert f"by bob on {socket.gethostname()}" in text and f"by carol on {socket.gethostname()}" in text
    assert "bench notebook, corrected" in text
    assert len(ok_json(cli("measurement", "list", "--json"))) == 3
    assert [m["source"] for m in ok_json(cli("measurement", "list", "--model", "policy@1", "--json"))] == ["v1"]
    listed = words(cli("measurement", "list", "--model", "policy"))
    assert f"by bob on {socket.gethostname()}" in listed and f"by carol on {socket.gethostname()}" in listed


def test_bench_records_the_runtime_its_version_and_provider(cli, tmp_path, monkeypatch):
    import onnxruntime

    monkeypatch.setenv("EMBODIED_AI_USER", "dora")
    path = tmp_path / "policy.onnx"
    torch.onnx.export(policy(3), (torch.zeros(1, 8),), str(path), dynamo=False)
    ok_json(cli("model", "register", path, "--name", "policy-onnx", "--json"))
    ok_json(cli("model", "alias", "set", "policy-onnx@1", "field", "--json"))
    result = ok_json(cli("bench", "policy-onnx@field", "--device", "cpu", "--threads", "1", "--json"))
    lineage = result["measurement"]["lineage"]
    assert (lineage["user"], lineage["host"]) == ("dora", socket.gethostname())
    assert (lineage["runtime"], lineage["runtime_version"], lineage["provider"]) == (
        "onnxruntime", onnxruntime.__version__, "CPUExecutionProvider")
    shown = ok_json(cli("model", "show", "policy-onnx", "--json"))["measurements"]
    assert [m["lineage"] for m in shown] == [lineage]
    text = words(cli("model", "show", "policy-onnx"))
    assert f"by dora on {socket.gethostname()} with onnxruntime {onnxruntime.__version__} (CPUExecutionProvider)" \
        in text


def test_records_and_measurements_stored_before_lineage_still_load(cli, tmp_path):
    db = tmp_path / "old.json"
    shutil.copy(FIXTURE, db)
    name = json.loads(FIXTURE.read_text())["models"]["1"]["record"]["name"]
    shown = ok_json(cli("model", "show", name, "--json", registry=db))
    assert "lineage" not in shown and shown["measurements"] == [] and shown["aliases"] == []
    from embodied_tui.data.store import Registry

    old = {"model": name, "model_version": shown["version"], "model_sha256": shown["sha256"],  # as 0.1 wrote it
           "hardware": "raspberry-pi-5", "power_mode": "default", "precision": "fp32", "runtime": "tensorrt",
           "latency_ms": 3.0, "source": "an older embodied-ai", "measured_at": "2025-01-01T00:00:00+00:00"}
    Registry(db).table_insert("measurements", old)
    listed = ok_json(cli("measurement", "list", "--json", registry=db))
    assert len(listed) == 1 and "lineage" not in listed[0]
    assert "by (not recorded)" in words(cli("model", "show", name, registry=db))


@pytest.mark.slow
def test_calibration_is_logged_with_its_lineage(cli, db, monkeypatch):
    import onnxruntime

    from embodied_tui.services.lineage import calibrations

    monkeypatch.setenv("EMBODIED_AI_USER", "erin")
    runs = [ok_json(cli("calibrate", "--models", "mlp_policy", "--threads", "1", "--json")) for _ in range(2)]
    logged = calibrations(db)
    assert [e.calibration for e in logged] == [r["calibration"] for r in runs]  # both kept, the first unchanged
    for event, result in zip(logged, runs):
        assert event.device == result["device"]["id"]
        assert event.lineage.model_dump(mode="json") == result["lineage"]
        assert (event.lineage.user, event.lineage.host) == ("erin", socket.gethostname())
        assert (event.lineage.runtime, event.lineage.runtime_version, event.lineage.provider) == (
            "onnxruntime", onnxruntime.__version__, "CPUExecutionProvider")
