"""Bad input to `model analyze`: one clear line, a non-zero exit, no traceback, and nothing ever unpickled unsafely."""
from __future__ import annotations

import os
import pickle
import random
import zipfile

import onnx
import pytest
import torch
import torch.nn as nn
from click.testing import CliRunner

from embodied_tui.cli import main


def analyze(*args):
    result = CliRunner().invoke(main, ["model", "analyze", *map(str, args)])
    return result, result.output.strip()


def assert_one_line_error(result, text, *needles):
    assert result.exit_code != 0, text
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), text
    for needle in needles:
        assert needle.lower() in text.lower(), (needle, text)


def test_missing_file(tmp_path):
    assert_one_line_error(*analyze(tmp_path / "nope.pt"), "no such file")


def test_directory(tmp_path):
    assert_one_line_error(*analyze(tmp_path), "directory")


def test_empty_file(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    assert_one_line_error(*analyze(tmp_path / "empty.pt"), "empty")


def test_random_bytes(tmp_path):
    # fixed noise: os.urandom began with 0x80 (a pickle's first byte) one run in 256, and the file read as a pickle
    (tmp_path / "noise.onnx").write_bytes(random.Random(20261206).randbytes(4096))
    assert_one_line_error(*analyze(tmp_path / "noise.onnx"), "not a model file")


def test_truncated_archive(tmp_path):
    model = nn.Linear(64, 64)
    path = tmp_path / "full.pt"
    torch.jit.script(model).save(path)
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    assert_one_line_error(*analyze(tmp_path / "cut.pt"), "truncated")


class Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('EVIL_MARKER', '/tmp/never')}",))


def test_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("EVIL_MARKER", str(marker))
    path = tmp_path / "evil.pt"
    with path.open("wb") as fh:
        pickle.dump({"state_dict": Evil()}, fh, protocol=2)
    result, text = analyze(path)
    assert_one_line_error(result, text, "--trust-code")
    assert not marker.exists()


def test_full_module_pickle_needs_trust_code(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(nn.Sequential(nn.Linear(8, 4)), path)
    assert_one_line_error(*analyze(path), "full python pickle", "--trust-code")
    result, text = analyze(path, "--trust-code", "--json")
    assert result.exit_code == 0, text


def test_checkpoint_that_is_not_a_model(tmp_path):
    path = tmp_path / "opt.pt"
    torch.save({"epoch": 4, "lr": 0.1, "history": [1.0, 0.5]}, path)
    assert_one_line_error(*analyze(path), "without model weights")


def test_forward_failing_on_the_given_shape_names_module_and_shape(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 30 * 30, 10))
    path = tmp_path / "fixed.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros(1, 3, 32, 32),)), path)
    result, text = analyze(path, "--input-shape", "1,3,64,64")
    assert_one_line_error(result, text, "1x3x64x64", "module '2'")


def test_onnx_with_missing_external_data_still_analyses(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 4, 1))
    path = tmp_path / "ext.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 32, 32),), path, dynamo=False)
    proto = onnx.load(str(path))
    onnx.save_model(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.weights", size_threshold=0)
    result, full = analyze(path, "--json")
    assert result.exit_code == 0, full
    (tmp_path / "ext.weights").unlink()
    result, text = analyze(path, "--json")
    assert result.exit_code == 0, text
    import json

    before, after = json.loads(full), json.loads(text)
    assert after["macs"] == before["macs"] == 16 * 30 * 30 * 3 * 9 + 4 * 30 * 30 * 16
    assert after["params"] == before["params"]
    assert any("missing" in n.lower() for n in after["notes"])


def test_zip_that_is_not_torch(tmp_path):
    path = tmp_path / "docs.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    assert_one_line_error(*analyze(path), "not a torch model")


@pytest.mark.parametrize("shape", ["1,3,x", "0,3,4"])
def test_bad_input_shape_text(tmp_path, shape):
    path = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(nn.Linear(4, 2), (torch.zeros(1, 4),)), path)
    assert_one_line_error(*analyze(path, "--input-shape", shape), "--input-shape")
