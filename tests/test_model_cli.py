"""`embodied-ai model ...` and `embodied-ai demo` through the real CLI, on real model files and a real registry file.

Expected counts are derived independently from the torch modules (parameter numel, in*out of each Linear).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn

CONTRACT = ("name", "version", "path", "format", "sha256", "size_bytes", "registered_at", "params", "macs", "flops",
            "input_shapes", "output_shapes", "input_shape_source", "layers", "architecture", "weight_bytes",
            "activation_bytes")


def policy(seed: int, hidden: int = 16) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, 4)).eval()


def expected_counts(module: nn.Module, batch: int = 1) -> tuple[int, int]:
    params = sum(p.numel() for p in module.parameters())
    macs = sum(batch * m.in_features * m.out_features for m in module.modules() if isinstance(m, nn.Linear))
    return params, macs


def save_traced(module: nn.Module, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(module, torch.zeros(1, 8), check_trace=False), str(path))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    out = {"v1": save_traced(policy(0), d / "policy_v1.pt"), "v2": save_traced(policy(1), d / "policy_v2.pt"),
           "wide": save_traced(policy(2, hidden=64), d / "wide.pt")}
    torch.manual_seed(0)
    torch.save(policy(0).state_dict(), d / "policy_sd.pt")
    out["state_dict"] = d / "policy_sd.pt"
    return out


def register(cli, path, name, *extra):
    return cli("model", "register", path, "--name", name, "--input-shape", "1,8", *extra)


# ------------------------------------------------------------------------------------------------ register / analyze
def test_register_then_same_bytes_then_new_version(cli, db, files):
    result = register(cli, files["v1"], "policy", "--tag", "robot", "--tag", "site=lab", "--description", "arm")
    assert result.exit_code == 0, result.output
    params, macs = expected_counts(policy(0))
    assert "added: policy v1" in result.output
    assert f"{params} params, {macs} MACs, input 1x8 (user), torchscript" in result.output  # 212 params, 192 MACs

    data = json.loads(cli("model", "show", "policy", "--json").output)
    assert all(key in data for key in CONTRACT)
    assert (data["params"], data["macs"], data["flops"]) == (params, macs, 2 * macs)
    assert data["input_shapes"] == [[1, 8]] and data["input_shape_source"] == "user"
    assert data["tags"] == {"robot": "", "site": "lab"} and data["description"] == "arm"
    assert data["format"] == "torchscript" and data["path"] == str(files["v1"].resolve())

    before = db.read_bytes()
    again = register(cli, files["v1"], "policy")
    assert again.exit_code == 0 and "unchanged: policy v1 already has these exact bytes" in again.output
    assert db.read_bytes() == before

    v2 = register(cli, files["v2"], "policy", "--json")
    assert v2.exit_code == 0, v2.output
    out = json.loads(v2.output)
    assert out["status"] == "new_version" and out["record"]["version"] == 2
    assert out["record"]["tags"] == {"robot": "", "site": "lab"}  # carried over from v1
    human = register(cli, files["v2"], "policy")
    assert "unchanged: policy v2" in human.output


def test_register_without_name_uses_the_file_name(cli, files):
    result = cli("model", "register", files["wide"], "--input-shape", "1x8")
    assert result.exit_code == 0, result.output
    assert "added: wide v1" in result.output
    params, macs = expected_counts(policy(2, hidden=64))
    record = json.loads(cli("model", "show", "wide", "--json").output)
    assert (record["params"], record["macs"]) == (params, macs)


def test_register_bad_input(cli, db, files, tmp_path, one_line_error):
    register(cli, files["v1"], "policy")
    before = db.read_bytes()
    one_line_error(cli("model", "register", tmp_path / "missing.pt", "--name", "x"), "no such file")
    one_line_error(cli("model", "register", files["v2"], "--name", "x", "--input-shape", "1,eight"), "--input-shape")
    one_line_error(cli("model", "register", files["v2"], "--name", "x", "--tag", "bad key"), "bad tag")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model at all")
    one_line_error(cli("model", "register", junk, "--name", "junk"))
    assert db.read_bytes() == before


def test_analyze_prints_without_registering(cli, db, files):
    result = cli("model", "analyze", files["v1"], "--input-shape", "1,8", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    params, macs = expected_counts(policy(0))
    assert (data["params"], data["macs"]) == (params, macs)
    assert data["census"] and data["layer_costs"]
    assert not db.exists()
    human = cli("model", "analyze", files["v1"], "--input-shape", "1,8")
    assert human.exit_code == 0 and "not registered" in human.output and "MACs" in human.output


def test_analyze_also_thop(cli, files):
    ts = json.loads(cli("model", "analyze", files["v1"], "--input-shape", "1,8", "--also-thop", "--json").output)
    assert "unavailable" in ts["thop"]  # TorchScript has no nn.Module layers for thop to hook
    human = cli("model", "analyze", files["v1"], "--input-shape", "1,8", "--also-thop")
    assert "thop" in human.output and "not run" in human.output


# ------------------------------------------------------------------------------------------------ list / show
@pytest.fixture()
def three(cli, files):
    for path, name, tags in ((files["v1"], "small", ["robot"]), (files["v2"], "small", []),
                             (files["wide"], "wide", ["site=lab"])):
        assert register(cli, path, name, *[a for t in tags for a in ("--tag", t)]).exit_code == 0
    return cli


def test_list_human_and_json(three):
    human = three("model", "list")
    assert human.exit_code == 0
    lines = human.output.splitlines()
    assert lines[0].split()[:3] == ["name", "v", "family"]
    assert [line.split()[0] for line in lines[2:]] == ["small", "wide"]
    assert all(len(line) <= 80 for line in lines)

    rows = json.loads(three("model", "list", "--json").output)
    assert [(r["name"], r["version"]) for r in rows] == [("small", 2), ("wide", 1)]
    assert all(all(k in r for k in CONTRACT) for r in rows)
    every = json.loads(three("model", "list", "--all-versions", "--json").output)
    assert [(r["name"], r["version"]) for r in every] == [("small", 1), ("small", 2), ("wide", 1)]


def test_list_filter_and_sort(three):
    wide_params = expected_counts(policy(2, hidden=64))[0]
    small_params = expected_counts(policy(0))[0]
    assert small_params < 500 < wide_params
    got = json.loads(three("model", "list", "--filter", "params > 0.5K", "--json").output)
    assert [r["name"] for r in got] == ["wide"]
    got = json.loads(three("model", "list", "--filter", "tags.site = lab OR robot", "--all-versions",
                           "--json").output)
    assert [(r["name"], r["version"]) for r in got] == [("small", 1), ("small", 2), ("wide", 1)]
    got = json.loads(three("model", "list", "--sort", "-params", "--json").output)
    assert [r["name"] for r in got] == ["wide", "small"]
    empty = three("model", "list", "--filter", "family = nothing")
    assert empty.exit_code == 0 and "no models match" in empty.output


def test_bad_filter_and_sort_are_one_line(three, db, one_line_error):
    before = db.read_bytes()
    expr = "family = mlp AND parms < 10M"
    text = one_line_error(three("model", "list", "--filter", expr))
    column = expr.index("parms") + 1
    assert text == f"error: bad filter at column {column}: unknown field 'parms' (did you mean params?)"
    one_line_error(three("model", "list", "--sort", "-parms"), "did you mean params?")
    assert db.read_bytes() == before


def test_show(three):
    human = three("model", "show", "small")
    assert human.exit_code == 0
    assert "v2 of 1, 2" in human.output and "conv/linear/matmul/attention" in human.output
    census = three("model", "show", "small", "--version", "1", "--census")
    assert "census (module tree)" in census.output and "Linear" in census.output
    data = json.loads(three("model", "show", "small", "--version", "1", "--json").output)
    assert data["version"] == 1 and data["tags"] == {"robot": ""}
    assert {c["name"] for c in data["layer_costs"]} >= {"0", "2"}  # the two Linear layers of the Sequential
    assert sum(c["macs"] for c in data["layer_costs"]) == data["macs"]
    root = next(n for n in data["census"] if n["path"] == "")
    assert root["params"] == data["params"]


def test_unknown_name_suggests_close_names(three, db, one_line_error):
    before = db.read_bytes()
    one_line_error(three("model", "show", "smal"), "no model named 'smal'", "did you mean small")
    one_line_error(three("model", "show", "small", "--version", "9"), "no version 9", "versions: 1, 2")
    one_line_error(three("model", "remove", "wid", "--yes"), "did you mean wide")
    assert db.read_bytes() == before


# ------------------------------------------------------------------------------------------------ remove / update
def test_remove_asks(three, db, one_line_error):
    before = db.read_bytes()
    refused = three("model", "remove", "small")  # no --yes and nothing on stdin
    one_line_error(refused, "pass --yes")
    declined = three("model", "remove", "small", input="n\n")
    assert declined.exit_code == 1 and "nothing removed" in declined.output
    assert db.read_bytes() == before
    ok = three("model", "remove", "small", "--version", "1", input="y\n")
    assert ok.exit_code == 0 and "removed 1 version of small" in ok.output
    assert three("model", "remove", "small", "--yes").exit_code == 0
    assert [r["name"] for r in json.loads(three("model", "list", "--json", "--all-versions").output)] == ["wide"]


def test_update(three, one_line_error):
    result = three("model", "update", "small", "--tag", "site=home", "--untag", "robot", "--description", "arm v2")
    assert result.exit_code == 0, result.output
    for version in (1, 2):
        data = json.loads(three("model", "show", "small", "--version", str(version), "--json").output)
        assert (data["tags"], data["description"]) == ({"site": "home"}, "arm v2")
    one_line_error(three("model", "update", "small"), "nothing to update")
    one_line_error(three("model", "update", "small", "--untag", "robot"), "no tag 'robot'")


# ------------------------------------------------------------------------------------------------ export / import
def test_export_import_round_trip(three, cli, tmp_path, one_line_error):
    bundle = tmp_path / "bundle.json"
    result = three("model", "export", "-o", bundle)
    assert result.exit_code == 0 and "exported 3 model versions" in result.output
    other = tmp_path / "other" / "registry.json"
    imported = cli("model", "import", bundle, registry=other)
    assert imported.exit_code == 0, imported.output
    assert "imported 3 model version(s)" in imported.output
    source = json.loads(three("model", "list", "--all-versions", "--json").output)
    copied = json.loads(cli("model", "list", "--all-versions", "--json", registry=other).output)
    assert copied == source  # versions, tags, hashes, registration times: all kept
    for version in (1, 2):
        a = json.loads(three("model", "show", "small", "--version", str(version), "--json").output)
        b = json.loads(cli("model", "show", "small", "--version", str(version), "--json", registry=other).output)
        assert a["census"] and a == b
    before = other.read_bytes()
    again = cli("model", "import", bundle, registry=other)
    assert again.exit_code == 0 and "imported 0 model version(s)" in again.output and "3 already present" in again.output
    assert other.read_bytes() == before

    only = tmp_path / "only.json"
    assert three("model", "export", "wide", "-o", only).exit_code == 0
    assert [m["record"]["name"] for m in json.loads(only.read_text())["models"]] == ["wide"]
    one_line_error(three("model", "export", "wid", "-o", tmp_path / "x.json"), "did you mean wide")
    one_line_error(cli("model", "import", tmp_path / "nope.json", registry=other), "cannot read bundle")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    one_line_error(cli("model", "import", bad, registry=other), "not an embodied-ai bundle")


# ------------------------------------------------------------------------------------------------ broken registries
def test_corrupt_registry_is_one_line_and_untouched(three, db, files, one_line_error):
    db.write_text(db.read_text()[:-20])
    before = db.read_bytes()
    for args in (("model", "list"), ("model", "show", "small"), ("model", "remove", "small", "--yes"),
                 ("model", "register", files["v1"], "--name", "again", "--input-shape", "1,8"),
                 ("model", "update", "small", "--tag", "x")):
        one_line_error(three(*args), str(db), "not valid JSON", "was not changed")
    assert db.read_bytes() == before


def test_unwritable_registry_path(cli, files, tmp_path, one_line_error):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a directory")
    result = cli("model", "register", files["v1"], "--name", "p", "--input-shape", "1,8",
                 registry=blocker / "registry.json")
    one_line_error(result, "cannot create the registry directory", "writable --db")
    assert blocker.read_text() == "a file, not a directory"
    empty = cli("model", "list", registry=blocker / "registry.json")
    assert empty.exit_code == 0 and "no models in" in empty.output


# ------------------------------------------------------------------------------------------------ demo
def test_demo_registers_every_format_once(cli, db, tmp_path):
    models = tmp_path / "demo-models"
    first = cli("demo", "--dir", models)
    assert first.exit_code == 0, first.output
    records = json.loads(cli("model", "list", "--json").output)
    assert len(records) == 7 and "7 registered, 0 already there" in first.output
    assert {r["format"] for r in records} == {"torchscript", "exported_program", "onnx", "state_dict", "safetensors"}
    assert {r["architecture"]["family"] for r in records} >= {"resnet", "mobilenet", "yolo", "vit", "lstm", "mlp"}
    assert all(r["macs"] and r["params"] and "demo" in r["tags"] for r in records)
    before = db.read_bytes()
    second = cli("demo", "--dir", models)
    assert second.exit_code == 0 and "0 registered, 7 already there" in second.output
    assert db.read_bytes() == before
