"""Hostile model files that are not code: memory bombs, files that block, paths that escape, broken graphs and
absurd shapes. Each gets one line (what was wrong, which file, what to do), a non-zero exit, no traceback, quickly
and with little memory, and leaves the registry alone."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from embodied_tui.analysis.api import parse_shapes
from embodied_tui.errors import AnalysisError
from embodied_tui.hashing import sha256_file, within
from tests.hostile.craft import cli, cli_rss, external_data_model, fold_bomb, onnx_model

RSS_LIMIT_MB = 400


def _one_line(run, *words: str) -> None:
    assert run.code != 0, run.stdout
    assert "Traceback" not in run.stderr
    assert len(run.lines) == 1, run.stderr
    assert run.lines[0].startswith("error: ")
    for word in words:
        assert word in run.lines[0], run.lines[0]


# ---- memory bombs -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("head", [b"", b"\x08\x07", b"PK\x03\x04", b"\x80\x02",
                                  struct.pack("<Q", 1_400_000_000) + b"{"],
                         ids=["zeros", "onnx-like", "zip-like", "pickle-like", "safetensors-like"])
def test_a_big_file_that_is_no_model_is_refused_fast_with_little_memory(head, tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(head)
    os.truncate(path, 1_500_000_000)  # sparse: costs no disk
    run, grown = cli_rss(tmp_path / "db.json", "model", "analyze", path, timeout=60)
    _one_line(run, str(path))
    assert grown < RSS_LIMIT_MB


@pytest.mark.parametrize("kind", ["constant_of_shape", "expand", "tile", "range", "outer"])
def test_a_tiny_onnx_asking_for_a_huge_constant_is_not_folded(kind, tmp_path):
    path = fold_bomb(kind, tmp_path / f"{kind}.onnx")
    assert path.stat().st_size < 200_000
    run, grown = cli_rss(tmp_path / "db.json", "model", "analyze", path, "--json", timeout=120)
    assert run.code == 0, run.stderr
    assert grown < RSS_LIMIT_MB


def test_fold_bound_is_computed_before_evaluating():
    import numpy as np
    from onnx import helper

    from embodied_tui.analysis.onnx.graph import fold_bound

    node = helper.make_node("ConstantOfShape", ["s"], ["o"])
    assert fold_bound(node, {"s": np.array([1 << 40], np.int64)}) == 1 << 40
    node = helper.make_node("Add", ["a", "b"], ["o"])
    assert fold_bound(node, {"a": np.ones((3, 1)), "b": np.ones((1, 5))}) == 15
    assert fold_bound(helper.make_node("Conv", ["a", "b"], ["o"]), {"a": np.ones(1), "b": np.ones(1)}) is None
    assert fold_bound(helper.make_node("Range", ["a", "b", "c"], ["o"]),
                      {"a": np.array(0), "b": np.array(10), "c": np.array(0)}) is None  # delta 0: never ends


def test_a_zip_declaring_millions_of_members_is_refused(tmp_path):
    path = tmp_path / "many.pt"
    eocd = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 0xFFFF, 0xFFFF, 0, 0, 0)
    locator = b"PK\x06\x07" + struct.pack("<IQI", 0, 0, 1)
    zip64 = b"PK\x06\x06" + struct.pack("<QHHIIQQQQ", 44, 45, 45, 0, 0, 50_000_000, 50_000_000, 0, 0)
    path.write_bytes(b"PK\x03\x04" + b"\0" * 26 + zip64 + locator + eocd)
    # the zip64 record sits at offset 30; point the locator at it
    data = bytearray(path.read_bytes())
    at = data.rfind(b"PK\x06\x07")
    data[at + 8: at + 16] = struct.pack("<Q", 30)
    path.write_bytes(bytes(data))
    _one_line(cli(tmp_path / "db.json", "model", "analyze", path), "50000000 members")


# ---- regular files only -------------------------------------------------------------------------------------------------
@pytest.fixture()
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe.onnx"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("command", [("model", "analyze"), ("model", "register", "--name", "x")])
def test_a_fifo_or_device_as_the_model_is_refused_without_blocking(command, fifo, tmp_path):
    for path in (fifo, Path("/dev/zero")):
        run = cli(tmp_path / "db.json", *command[:2], path, *command[2:], timeout=20)
        _one_line(run, str(path), "not a regular file")
    assert not (tmp_path / "db.json").exists()


@pytest.mark.parametrize("target", ["fifo", "/dev/zero", "zero_link"])
def test_external_data_that_is_a_fifo_or_device_is_refused_without_blocking(target, tmp_path):
    os.mkfifo(tmp_path / "fifo")
    os.symlink("/dev/zero", tmp_path / "zero_link")
    path = external_data_model(tmp_path / "m.onnx", target)
    for command in (("model", "analyze", path), ("model", "register", path, "--name", "x")):
        _one_line(cli(tmp_path / "db.json", *command, timeout=20), str(path), target)


def test_hashing_refuses_what_is_not_a_regular_file(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    code = ("import sys\nfrom embodied_tui.hashing import sha256_file\n"
            "for p in sys.argv[1:]:\n    try:\n        sha256_file(p)\n    except OSError:\n        print('refused')\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "fifo"), "/dev/zero"], capture_output=True,
                          text=True, timeout=20, check=False)
    assert proc.stdout.split() == ["refused", "refused"]
    (tmp_path / "ok").write_bytes(b"abc")
    assert sha256_file(tmp_path / "ok") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# ---- external data outside the model's folder -----------------------------------------------------------------------
@pytest.mark.parametrize("location", ["/etc/shadow", "../../../../etc/passwd", "sub/../../outside.bin", "out_link"])
def test_external_data_outside_the_folder_is_refused_and_never_read(location, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "outside.bin").write_bytes(b"\0" * 64)
    os.symlink(tmp_path / "outside.bin", folder / "out_link")
    path = external_data_model(folder / "m.onnx", location)
    db = tmp_path / "db.json"
    assert cli(db, "model", "register", external_data_model(tmp_path / "good.onnx", "outside.bin"),
               "--name", "good").code == 0
    before = db.read_bytes()
    _one_line(cli(db, "model", "analyze", path), str(path), "outside the model's folder")
    _one_line(cli(db, "model", "register", path, "--name", "evil"), "outside the model's folder")
    assert db.read_bytes() == before


def test_external_data_inside_the_folder_still_counts(tmp_path):
    (tmp_path / "w.bin").write_bytes(b"\0" * 64)
    run = cli(tmp_path / "db.json", "model", "analyze", external_data_model(tmp_path / "m.onnx", "w.bin"), "--json")
    assert run.code == 0, run.stderr
    assert '"external_data_bytes": 64' in run.stdout


@pytest.mark.parametrize("rel, inside", [("w.bin", True), ("sub/w.bin", True), ("/etc/passwd", False),
                                         ("../x", False), ("a/../../x", False), ("", False)])
def test_within(rel, inside, tmp_path):
    assert (within(tmp_path, rel) is not None) == inside


# ---- smaller items -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["state_dict", "exported_program"])
def test_a_torch_file_named_safetensors_is_read_by_its_content(how, tmp_path):
    path = tmp_path / "weights.safetensors"
    if how == "state_dict":
        torch.save(nn.Linear(4, 2).state_dict(), path)
    else:
        torch.export.save(torch.export.export(nn.Linear(4, 2), (torch.zeros(1, 4),)), path)
    run = cli(tmp_path / "db.json", "model", "analyze", path, "--json")
    assert run.code == 0, run.stderr
    assert f'"format": "{how}"' in run.stdout


def test_an_onnx_graph_with_a_cycle_is_invalid(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node("Add", ["x", "c"], ["a"], name="add"), helper.make_node("Relu", ["a"], ["c"]),
             helper.make_node("Identity", ["c"], ["y"])]
    path = tmp_path / "cycle.onnx"
    onnx.save(onnx_model(nodes, [x], [y]), path)
    _one_line(cli(tmp_path / "db.json", "model", "analyze", path), str(path), "cycle", "add")


def test_an_opset_newer_than_onnx_knows_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    path = tmp_path / "future.onnx"
    onnx.save(onnx_model([helper.make_node("Relu", ["x"], ["y"])], [x], [y], opset=99), path)
    _one_line(cli(tmp_path / "db.json", "model", "analyze", path), str(path), "opset 99", "upgrade onnx")


@pytest.mark.parametrize("text", ["1,99999999999999999999", "1,9223372036854775807", "1,3,1000000,1000000,1000000",
                                  "1,-3", "0,3", "1,3;0"])
def test_input_shapes_no_tensor_can_have_are_one_line(text, tmp_path):
    path = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(nn.Linear(4, 2), (torch.zeros(1, 4),)), path)
    run = cli(tmp_path / "db.json", "model", "analyze", path, f"--input-shape={text}")
    _one_line(run, "--input-shape")
    with pytest.raises(AnalysisError):
        parse_shapes(text)
