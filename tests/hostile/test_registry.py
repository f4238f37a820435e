"""Hostile registries, names, bundles and paths, through the real CLI in a subprocess (``.venv/bin/embodied-ai``).

Each bad input gets one line on stderr (what was wrong, which file, what to do), a non-zero exit and no traceback, and
the registry file keeps its bytes. What goes on despite something skipped (a damaged details file, an invalid
measurement document) prints one ``warning:`` line and exits 0.
"""
from __future__ import annotations

import json
import os
import shlex
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from record_samples import analysis

from embodied_tui.data.store import Registry
from embodied_tui.errors import RegistryError, UserError
from tests.hostile.craft import Run, refused, warned

EXE = Path(sys.executable).with_name("embodied-ai")
BOARD = {
    "id": "my-board", "name": "My Board", "vendor": "Me", "type": "soc", "aliases": ["myboard"],
    "power_modes": [{"name": "10W", "power_w": 10, "memory_bandwidth_gbps": 25.6, "peak_tflops": {"fp16": 2.0},
                     "source": "my measurements"}],
    "default_mode": "10W",
}


# ---- running the CLI ------------------------------------------------------------------------------------------------
def cli(db: Path | None, *args, timeout: float = 60, env: dict[str, str] | None = None) -> Run:
    """``embodied-ai [--db DB] ARGS`` in a fresh process; a hang fails the test through ``timeout``."""
    environ = {k: v for k, v in os.environ.items() if k != "EMBODIED_AI_DB"}
    environ.update(env or {})
    argv = [str(EXE), *(["--db", str(db)] if db is not None else []), *map(str, args)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=environ,
                          stdin=subprocess.DEVNULL, check=False)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def ok(run: Run) -> Run:
    assert run.code == 0 and not run.lines, (run.stdout, run.stderr)
    return run


def strict_json(text: str):
    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


# ---- registries and model files -------------------------------------------------------------------------------------
@pytest.fixture()
def db(tmp_path: Path) -> Path:
    """A registry with two models ("net", "other"), their details beside it."""
    path = tmp_path / "reg" / "registry.json"
    reg = Registry(path)
    reg.add(analysis(1), "net")
    reg.add(analysis(2), "other")
    return path


def matmul_onnx(path: Path, *, external: bool = False) -> Path:
    """A 1x4 @ 4x4 MatMul; with ``external`` its weight lives in ``w.bin`` beside it."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(16, dtype=np.float32).reshape(4, 4), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location="w.bin", size_threshold=0)
    else:
        onnx.save(model, str(path))
    return path


def register_real(db: Path, path: Path, name: str):
    from embodied_tui.services.models import register

    record, status = register(path, name=name, db=db)
    assert status == "added"
    return record


def details_files(db: Path) -> list[Path]:
    return sorted((db.parent / (db.name + ".d")).iterdir())


# ==== 1. one name rule =================================================================================================
BAD_NAMES = ["a b", "a=b", "a@b", "a/b", "-a", ".a", "a\x1bb", "x" * 65, "modèle", "a\u202eb", "a\tb"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=["space", "equals", "at", "slash", "dash", "dot", "escape", "long",
                                                 "non-ascii", "bidi", "tab"])
def test_register_refuses_a_bad_name_before_analysing(db, tmp_path, name):
    before = db.read_bytes()
    run = cli(db, "model", "register", tmp_path / "never-read.onnx", f"--name={name}")
    line = refused(run, "is not allowed", "1-64 characters", "--name")
    assert "\x1b" not in line and "\u202e" not in line  # shown escaped
    assert db.read_bytes() == before


def test_good_names_pass_and_the_app_dialog_uses_the_same_rule(db):
    from embodied_tui.data.names import check_name
    from embodied_tui.services.models import add_analysis

    for name in ("yolo-v8n", "a.b_c+d", "A1", "_x", "9" * 64):
        assert check_name(name) == name
    before = db.read_bytes()
    for name in ("a b", "a@b", "-x"):
        with pytest.raises(UserError, match="1-64 characters"):
            add_analysis(analysis(3), name=name, db=db)  # the names the CLI and the register dialog both refuse (data.names.check_name)
    assert db.read_bytes() == before


@pytest.mark.parametrize("args, words", [
    (("--tag", "k=v\x07"), ("tag", "control character")),
    (("--tag", "k\x01"), ("tag key", "control character")),
    (("--description", "\x1b[2Jgone"), ("description", "control character")),
    (("--description", "a\rb"), ("description", "control character")),
])
def test_update_refuses_control_characters_in_tags_and_descriptions(db, args, words):
    before = db.read_bytes()
    refused(cli(db, "model", "update", "net", *args), *words)
    assert db.read_bytes() == before


def test_a_description_may_hold_line_breaks(db):
    ok(cli(db, "model", "update", "net", "--description", "line one\nline two"))
    assert Registry(db).get("net").description == "line one\nline two"


def test_records_stored_under_names_the_rule_now_refuses_still_load(db):
    data = json.loads(db.read_bytes())
    data["models"]["1"]["record"]["name"] = "old name@1"
    db.write_text(json.dumps(data))  # an older embodied-ai stored it (unsealed now: validated in full)
    assert "old name@1" in ok(cli(db, "model", "list")).stdout
    assert ok(cli(db, "model", "show", "old name@1", "--json")).stdout
    ok(cli(db, "model", "update", "old name@1", "--tag", "legacy"))
    ok(cli(db, "model", "remove", "old name@1", "--yes"))
    assert [r.name for r in Registry(db).list_models()] == ["other"]


@pytest.mark.parametrize("change, words", [
    ({"id": "a" * 65}, ("device id", "1-64 characters")),
    ({"aliases": ["my\x1bboard"]}, ("alias", "control character")),
    ({"name": "My\x07Board"}, ("device name", "control character")),
])
def test_hw_add_holds_device_ids_to_the_name_rule(db, tmp_path, change, words):
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump({**BOARD, **change}))
    before = db.read_bytes()
    refused(cli(db, "hw", "add", path), str(path), *words)
    assert db.read_bytes() == before


# ==== 2. --db that is a symlink, FIFO, device, directory or socket =====================================================
def test_a_symlinked_registry_is_written_through_to_its_target(db, tmp_path):
    elsewhere = tmp_path / "links"
    elsewhere.mkdir()
    link = elsewhere / "registry.json"
    link.symlink_to(db)
    ok(cli(link, "model", "update", "net", "--tag", "via-link"))
    assert link.is_symlink() and os.readlink(link) == str(db)  # still the link, to the same file
    assert Registry(db).get("net").tags == {"via-link": ""}  # the real registry got the change
    assert sorted(p.name for p in elsewhere.iterdir()) == ["registry.json"]  # no lock or details beside the link
    assert len(details_files(db)) == 2
    shown = json.loads(ok(cli(link, "model", "show", "net", "--json")).stdout)
    assert shown["census"] and shown["tags"] == {"via-link": ""}  # the details beside the real file are found

    dangling = elsewhere / "new.json"
    dangling.symlink_to(tmp_path / "target" / "new.json")
    (tmp_path / "target").mkdir()
    board = tmp_path / "board.yaml"
    board.write_text(yaml.safe_dump(BOARD))
    ok(cli(dangling, "hw", "add", board))
    assert dangling.is_symlink() and (tmp_path / "target" / "new.json").is_file()


def test_a_fifo_registry_is_refused_at_once_and_left_alone(tmp_path):
    fifo = tmp_path / "registry.json"
    os.mkfifo(fifo)
    board = tmp_path / "board.yaml"
    board.write_text(yaml.safe_dump(BOARD))
    for args in (("model", "list"), ("model", "update", "net", "--tag", "x"), ("hw", "add", board),
                 ("measurement", "list")):
        refused(cli(fifo, *args, timeout=30), str(fifo), "FIFO", "not a registry file")
    link = tmp_path / "link.json"
    link.symlink_to(fifo)
    refused(cli(link, "model", "list", timeout=30), "FIFO", f"the link {link}")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["board.yaml", "link.json", "registry.json"]  # no lock


def test_a_directory_or_socket_registry_is_one_line(tmp_path):
    refused(cli(tmp_path, "model", "list"), "is a directory")
    refused(cli(tmp_path, "model", "remove", "x", "--yes"), "is a directory")
    sock_path = tmp_path / "s.sock"
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(sock_path))
        refused(cli(sock_path, "model", "list"), "a socket")
        refused(cli(sock_path, "model", "update", "x", "--tag", "y"), "a socket")
    finally:
        sock.close()


def test_export_never_replaces_a_fifo(db, tmp_path):
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    link = tmp_path / "out-link.json"
    link.symlink_to(fifo)
    for out in (fifo, link):
        refused(cli(db, "model", "export", "-o", out, timeout=30), "FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink()


def test_dev_null_as_the_registry_is_refused_and_not_replaced(tmp_path):
    """Last in this group: the FIFO and symlink cases above prove the check first; here it is checked in-process
    (a ``stat`` only) before any command that would write is run."""
    null = Path("/dev/null")
    before = os.stat(null)
    assert stat.S_ISCHR(before.st_mode)
    with pytest.raises(RegistryError, match="character device"):
        Registry(null)._check_path()
    link = tmp_path / "null-link.json"
    link.symlink_to(null)
    with pytest.raises(RegistryError, match="character device"):
        Registry(link)._check_path()
    board = tmp_path / "board.yaml"
    board.write_text(yaml.safe_dump(BOARD))
    for run in (cli(null, "model", "list"), cli(null, "hw", "add", board), cli(link, "hw", "add", board),
                cli(None, "hw", "add", board, env={"EMBODIED_AI_DB": "/dev/null"}),
                cli(None, "model", "list", env={"EMBODIED_AI_DB": "/dev/null"})):
        refused(run, "/dev/null", "character device")
    after = os.stat(null)
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_rdev, after.st_dev, after.st_mode) == \
        (before.st_ino, before.st_rdev, before.st_dev, before.st_mode)
    assert not Path("/dev/null.lock").exists() and not Path("/dev/null.d").exists()


# ==== 3. records and measurements from a newer version =================================================================
def _newer(db: Path, *, sealed: bool) -> None:
    from embodied_tui.data import store

    data = json.loads(db.read_bytes())
    doc = data["models"]["1"]
    doc["record"]["colour"] = "red"
    doc["record"]["architecture"]["confidence"] = 0.9
    doc["origin"] = "newer"
    db.write_bytes(store._serialize(data) if sealed else json.dumps(data).encode())


@pytest.mark.parametrize("sealed", [False, True], ids=["hand-edited", "written-by-newer"])
def test_records_with_keys_of_a_newer_version_are_read_and_keep_them(db, sealed):
    _newer(db, sealed=sealed)
    listed = json.loads(ok(cli(db, "model", "list", "--json")).stdout)
    assert [r["name"] for r in listed] == ["net", "other"]
    ok(cli(db, "model", "show", "net"))
    ok(cli(db, "fit", "net", "--hw", "raspberry-pi-5", "--json"))
    ok(cli(db, "model", "update", "net", "--tag", "kept"))
    doc = json.loads(db.read_bytes())["models"]["1"]
    assert doc["record"]["colour"] == "red" and doc["record"]["architecture"]["confidence"] == 0.9
    assert doc["origin"] == "newer" and doc["record"]["tags"] == {"kept": ""}


def _measurements(db: Path, docs: dict[str, dict]) -> None:
    data = json.loads(db.read_bytes())
    data["measurements"] = docs
    db.write_text(json.dumps(data))  # json's default allow_nan: what an older embodied-ai could write


def _measurement(**extra) -> dict:
    return {"model": "net", "model_version": 1, "hardware": "raspberry-pi-5", "power_mode": "default",
            "precision": "fp32", "runtime": "onnxruntime-cpu", "latency_ms": 12.5, "source": "test", **extra}


def test_an_invalid_measurement_is_skipped_with_one_warning_and_newer_keys_are_ignored(db):
    from embodied_tui.data.hardware import find_device

    default = find_device("raspberry-pi-5").default_mode
    bad = _measurement(power_mode=default)
    del bad["latency_ms"]
    _measurements(db, {"1": _measurement(power_mode=default), "2": bad,
                       "3": _measurement(power_mode=default, lux=7, latency_ms=14.0)})
    run = cli(db, "measurement", "list")
    warned(run, "measurement document 2", str(db), "latency_ms", "skipped")
    assert run.stdout.count("raspberry-pi-5") == 2
    warned(cli(db, "fit", "net", "--hw", "raspberry-pi-5"), "measurement document 2")
    rows = strict_json(cli(db, "fit", "net", "--hw", "raspberry-pi-5", "--json").stdout)
    assert rows and all(r["measured_n"] == 2 for r in rows if r["power_mode"] == default and
                        r["precision"] == "fp32")
    warned(cli(db, "query", "MATCH (m:Model) RETURN m.name"), "measurement document 2")
    warned(cli(db, "ask", "fastest model on the raspberry pi 5"), "measurement document 2")


@pytest.mark.parametrize("version, words", [
    ('"1"', ("unreadable", "'1' (a string)")), ("1.0", ("unreadable", "(a number)")),
    ("null", ("unreadable", "missing")), ("7", ("schema version 7", "newer", "upgrade")),
    ("0", ("schema version 0",)),
])
def test_a_schema_version_of_another_type_is_said_so(db, version, words):
    text = db.read_text().replace('"schema_version":1', f'"schema_version":{version}')
    db.write_text(text)
    line = refused(cli(db, "model", "list"), str(db), *words)
    assert "reads version 1" not in line or "'1'" not in line
    assert db.read_text() == text


# ==== 4. damaged or missing details ===================================================================================
def test_damaged_details_warn_and_registering_again_restores_them(tmp_path):
    db = tmp_path / "registry.json"
    model = matmul_onnx(tmp_path / "tiny.onnx")
    register_real(db, model, "tiny")
    (details,) = details_files(db)
    good = details.read_bytes()
    details.write_bytes(good.replace(b'"MatMul"', b'"Matmul"'))
    line = warned(cli(db, "model", "show", "tiny"), str(details), "does not match its hash", "register")
    advice = line[line.index("embodied-ai"):]  # the command it gives
    argv = shlex.split(advice)
    assert argv[0] == "embodied-ai" and "--name" in argv
    run = cli(None, *argv[1:])
    assert run.code == 0 and not run.lines, run.stderr
    assert details.read_bytes() == good  # restored, byte for byte
    shown = json.loads(ok(cli(db, "model", "show", "tiny", "--json")).stdout)
    assert shown["layer_costs"] and shown["census"]


def test_a_deleted_details_folder_is_said_and_fit_goes_on(db):
    folder = db.parent / "registry.json.d"
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    warned(cli(db, "model", "show", "net"), "missing", str(folder), "moved or deleted", "model register")
    warned(cli(db, "fit", "net", "--hw", "raspberry-pi-5"), "missing")


def test_one_damaged_details_file_does_not_block_exporting_the_others(db, tmp_path):
    reg = Registry(db)
    damaged = reg._details_path(reg._doc_of(reg.get("net")).details)
    damaged.write_text("{}")
    out = tmp_path / "bundle.json"
    refused(cli(db, "model", "export", "-o", out), "wrote 1 model version", "left out 1", "net v1", "register")
    bundle = json.loads(out.read_text())
    assert [m["record"]["name"] for m in bundle["models"]] == ["other"]
    assert bundle["models"][0]["details"]["layer_costs"]


# ==== 5. model import is as strict as register ========================================================================
def _bundle(db: Path, tmp_path: Path) -> dict:
    out = tmp_path / "good.json"
    ok(cli(db, "model", "export", "net", "-o", out))
    return json.loads(out.read_text())


def _set(path: str, value):
    def edit(bundle):
        target = bundle["models"][0]
        *parents, last = path.split(".")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value
    return edit


IMPORTS = {
    "sha256 not hex": (_set("record.sha256", "z" * 64), "record.sha256", "hexadecimal"),
    "sha256 upper": (_set("record.sha256", "A" * 64), "record.sha256", "hexadecimal"),
    "sha256 short": (_set("record.sha256", "abc"), "record.sha256", "hexadecimal"),
    "relative path": (_set("record.path", "models/m.onnx"), "record.path", "absolute path"),
    "control in path": (_set("record.path", "/m/\x1b.onnx"), "record.path", "absolute path"),
    "version 0": (_set("record.version", 0), "record.version", "greater than or equal to 1"),
    "version -7": (_set("record.version", -7), "record.version", "greater than or equal to 1"),
    "version 10^30": (_set("record.version", 10**30), "record.version", ""),
    "negative params": (_set("record.params", -5), "record.params", "greater than or equal to 0"),
    "negative macs": (_set("record.macs", -1), "record.macs", "greater than or equal to 0"),
    "empty name": (_set("record.name", ""), "model name ''", "1-64 characters"),
    "name with space": (_set("record.name", "a b"), "model name 'a b'", "1-64 characters"),
    "shape -1": (_set("record.input_shapes", [[-1, 0]]), "record.input_shapes.0.0", "greater than or equal to 0"),
    "layer shape": (_set("details.layer_costs.0.output_shape", [-2]), "output_shape", ""),
    "identity not hex": (_set("identity", "identity-1"), "identity", "hexadecimal"),
    "identity differs": (_set("identity", "0" * 64), "identity differs", ""),
    "details of other bytes": (_set("details.sha256", "1" * 64), "details.sha256 differs", ""),
    "external data escapes": (_set("record.external_data", ["../../etc/passwd"]), "external data path", "inside"),
    "control in tag": (_set("record.tags", {"k": "v\x1b"}), "control character", ""),
}


@pytest.mark.parametrize("kind", list(IMPORTS))
def test_import_refuses_what_register_could_not_make(db, tmp_path, kind):
    bundle = _bundle(db, tmp_path)
    edit, *words = IMPORTS[kind]
    bundle["models"][0]["record"]["name"] = "imported"
    edit(bundle)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bundle))
    before = db.read_bytes()
    refused(cli(db, "model", "import", path), f"bundle {path}", "model 0", "nothing was imported",
            *[w for w in words if w])
    assert db.read_bytes() == before


def test_import_refuses_nan_and_infinity(db, tmp_path):
    bundle = _bundle(db, tmp_path)
    bundle["models"][0]["record"]["name"] = "imported"
    before = db.read_bytes()
    for value, word in ((float("inf"), "Infinity"), (float("nan"), "NaN")):
        bundle["models"][0]["record"]["analysis_seconds"] = value
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(bundle))  # what json writes by default
        refused(cli(db, "model", "import", path), f"bundle {path}", "not valid JSON", word)
    assert db.read_bytes() == before


def test_import_says_a_string_bundle_version_is_unreadable_and_takes_newer_keys(db, tmp_path):
    bundle = _bundle(db, tmp_path)
    path = tmp_path / "b.json"
    path.write_text(json.dumps({**bundle, "bundle_version": "1"}))
    before = db.read_bytes()
    refused(cli(db, "model", "import", path), "unreadable bundle_version '1'")
    assert db.read_bytes() == before
    bundle["models"][0]["record"]["name"] = "from-newer"
    bundle["models"][0]["record"]["colour"] = "red"
    bundle["models"][0]["provenance"] = "elsewhere"
    bundle["signed_by"] = "someone"
    path.write_text(json.dumps(bundle))
    ok(cli(db, "model", "import", path))
    assert Registry(db).get("from-newer").params == 1000


# ==== 6. bench times only the bytes that were registered ==============================================================
def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("change", ["same size", "appended"])
def test_bench_refuses_a_model_file_that_changed_on_disk(tmp_path, change):
    db = tmp_path / "registry.json"
    model = matmul_onnx(tmp_path / "tiny.onnx")
    register_real(db, model, "tiny")
    if change == "same size":
        _flip_last_byte(model)
    else:
        with model.open("ab") as fh:
            fh.write(b"\0")
    before = db.read_bytes()
    refused(cli(db, "bench", "tiny", "--no-save"), str(model), "changed on disk", "register it again")
    refused(cli(db, "bench", "tiny"), "changed on disk")
    assert db.read_bytes() == before  # no host device, no measurement under the old hash


def test_bench_refuses_changed_external_data(tmp_path):
    db = tmp_path / "registry.json"
    model = matmul_onnx(tmp_path / "ext.onnx", external=True)
    register_real(db, model, "ext")
    _flip_last_byte(tmp_path / "w.bin")
    before = db.read_bytes()
    refused(cli(db, "bench", "ext"), "external data", "changed on disk")
    assert db.read_bytes() == before


def _imported_pointing_at(tmp_path: Path, target: Path) -> Path:
    """A registry holding an imported record whose path is ``target`` (the bundle is otherwise genuine)."""
    src = tmp_path / "src.json"
    register_real(src, matmul_onnx(tmp_path / "tiny.onnx"), "tiny")
    out = tmp_path / "bundle.json"
    ok(cli(src, "model", "export", "-o", out))
    bundle = json.loads(out.read_text())
    bundle["models"][0]["record"]["path"] = str(target)
    out.write_text(json.dumps(bundle))
    db = tmp_path / "imported.json"
    ok(cli(db, "model", "import", out))
    return db


def test_bench_of_an_imported_record_naming_a_fifo_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    db = _imported_pointing_at(tmp_path, fifo)
    before = db.read_bytes()
    refused(cli(db, "bench", "tiny", timeout=30), str(fifo), "FIFO", "nothing was run")
    assert db.read_bytes() == before and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_bench_of_an_imported_record_naming_another_file_is_refused(tmp_path):
    crafted = tmp_path / "crafted.onnx"
    genuine = matmul_onnx(tmp_path / "genuine.onnx")
    crafted.write_bytes(b"\0" * genuine.stat().st_size)  # the registered size, other bytes
    db = _imported_pointing_at(tmp_path, crafted)
    before = db.read_bytes()
    refused(cli(db, "bench", "tiny"), str(crafted), "changed on disk")
    assert db.read_bytes() == before


def test_bench_of_an_imported_record_naming_etc_shadow_is_refused(tmp_path):
    shadow = Path("/etc/shadow")
    if not os.path.lexists(shadow):
        pytest.skip("no /etc/shadow here")
    db = _imported_pointing_at(tmp_path, shadow)
    before = db.read_bytes()
    run = cli(db, "bench", "tiny")
    refused(run, str(shadow))  # another size: refused from stat alone; unreadable: said so
    assert "changed on disk" in run.stderr or "cannot read" in run.stderr
    assert db.read_bytes() == before


# ==== 7. no NaN or infinity ===========================================================================================
@pytest.mark.parametrize("field, value", [("peak_tflops", {"fp16": float("inf")}), ("power_w", float("nan")),
                                          ("memory_bandwidth_gbps", float("inf"))])
def test_hw_add_refuses_non_finite_numbers(db, tmp_path, field, value):
    mode = {**BOARD["power_modes"][0], field: value}
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump({**BOARD, "power_modes": [mode]}, sort_keys=False))
    assert ".inf" in path.read_text() or ".nan" in path.read_text()
    before = db.read_bytes()
    refused(cli(db, "hw", "add", path), str(path), field, "finite number")
    assert db.read_bytes() == before


def test_a_calibration_with_an_infinite_overhead_is_refused(db, tmp_path):
    cal = {"precision": "fp16", "runtime": "tensorrt", "eta_compute": 0.5, "overhead_ms": float("inf"), "source": "me"}
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump({**BOARD, "calibration": [cal]}, sort_keys=False))
    before = db.read_bytes()
    refused(cli(db, "hw", "add", path), "calibration.0.overhead_ms", "finite number")
    assert db.read_bytes() == before


def test_a_nan_already_in_the_file_is_skipped_when_read_and_never_written_back(db):
    from embodied_tui.data.hardware import find_device

    default = find_device("raspberry-pi-5").default_mode
    _measurements(db, {"1": _measurement(power_mode=default, latency_ms=float("nan"))})
    assert b"NaN" in db.read_bytes()
    warned(cli(db, "measurement", "list"), "measurement document 1", "finite number")
    before = db.read_bytes()
    refused(cli(db, "model", "update", "net", "--tag", "x"), "non-finite", "measurements.1.latency_ms")
    assert db.read_bytes() == before


def test_a_record_with_nan_is_reported_in_one_line(db):
    data = json.loads(db.read_bytes())
    data["models"]["1"]["record"]["analysis_seconds"] = float("nan")
    db.write_text(json.dumps(data))
    before = db.read_bytes()
    refused(cli(db, "model", "list"), str(db), "analysis_seconds", "finite number")
    assert db.read_bytes() == before


def test_fit_json_is_standard_json(db):
    rows = strict_json(ok(cli(db, "fit", "net", "--json")).stdout)
    assert rows and all(r["model"] == "net" for r in rows)
