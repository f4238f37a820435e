"""The content-addressed model store through the real CLI: register --store, push, pull, on real model files (an ONNX
model with external data in a subfolder, a TorchScript file), on both registry backends (``any_db``).

What is checked against independent facts: the store's blob names are ``hashlib.sha256`` of the files' bytes
(computed here), pulled files are byte-identical to the originals (``filecmp``-style byte comparison) and the pulled
ONNX model runs in onnxruntime with its external data found under the restored name, giving the same output as the
original file."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from embodied_tui.cli import main

EXT = "data/weights.bin"  # ONNX external data in a subfolder: the restored name must keep the folder


def _cli(db: str):
    def run(*args, cwd: Path | None = None):
        old = Path.cwd()
        if cwd is not None:
            os.chdir(cwd)
        try:
            return CliRunner().invoke(main, ["--db", db, *map(str, args)])
        finally:
            os.chdir(old)
    return run


def _ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _blob(store: Path, path: Path) -> Path:
    digest = _sha(path)
    return store / "sha256" / digest[:2] / digest[2:]


@pytest.fixture()
def onnx_model(tmp_path: Path) -> Path:
    """A MatMul + Add model whose two initializers live in ``data/weights.bin`` (external data)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "B")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["T"]), helper.make_node("Add", ["T", "B"], ["Y"])], "mlp",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 3])], [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    folder = tmp_path / "src-onnx"
    (folder / "data").mkdir(parents=True)
    path = folder / "net.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=EXT,
                    size_threshold=0)
    assert (folder / EXT).stat().st_size == (12 + 3) * 4  # both initializers went to the external file
    return path


def _torchscript(path: Path, seed: int) -> Path:
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.trace(net, torch.zeros(1, 4)), str(path))
    return path


def _second_registry(first: str, tmp_path: Path) -> str:
    """Another registry holding the same records: for PostgreSQL the same server database (another machine would
    use the same URL); for TinyDB another directory that imported the first one's bundle."""
    if first.startswith("postgresql"):
        return first
    bundle = tmp_path / "bundle.json"
    _ok(_cli(first)("model", "export", "-o", bundle))
    second = str(tmp_path / "elsewhere" / "registry.json")
    _ok(_cli(second)("model", "import", bundle))
    return second


def _run_onnx(path: Path) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"X": np.arange(4, dtype=np.float32).reshape(1, 4)})[0]


# ------------------------------------------------------------------------------------------------ round trip
def test_pull_on_a_second_registry_gives_byte_identical_files(any_db, tmp_path, onnx_model):
    store = tmp_path / "store"
    cli = _cli(any_db)
    ts = _torchscript(tmp_path / "src-ts" / "policy.pt", seed=1)
    out = _ok(cli("model", "register", onnx_model, "--store", store))
    assert "stored: net v1" in out and "2 files" in out
    _ok(cli("model", "store", "set", store))  # the registry's store: registering now copies by itself
    assert "stored: policy v1" in _ok(cli("model", "register", ts))
    # blobs are named by the SHA-256 of their bytes (computed here), read-only
    for original in (onnx_model, onnx_model.parent / EXT, ts):
        blob = _blob(store, original)
        assert blob.read_bytes() == original.read_bytes()
        assert not os.access(blob, os.W_OK) or os.geteuid() == 0

    second = _cli(_second_registry(any_db, tmp_path))
    dest = tmp_path / "robot"
    pulled = json.loads(_ok(second("model", "pull", "net", "--to", dest, "--store", store, "--json")))
    assert [(f["name"], f["status"]) for f in pulled["files"]] == [("net.onnx", "written"), (EXT, "written")]
    assert (dest / "net.onnx").read_bytes() == onnx_model.read_bytes()
    assert (dest / EXT).read_bytes() == (onnx_model.parent / EXT).read_bytes()
    np.testing.assert_array_equal(_run_onnx(dest / "net.onnx"), _run_onnx(onnx_model))
    # the TorchScript file, pulled into the current directory
    _ok(second("model", "pull", "policy", "--store", store, cwd=dest))
    assert (dest / "policy.pt").read_bytes() == ts.read_bytes()
    # the pulled file is the registered model: registering it in the second registry changes nothing
    assert "unchanged: policy v1" in _ok(second("model", "register", dest / "policy.pt", "--name", "policy",
                                                "--no-store"))
    # pulling again: everything already there, nothing rewritten
    again = json.loads(_ok(second("model", "pull", "net", "--to", dest, "--store", store, "--json")))
    assert {f["status"] for f in again["files"]} == {"already there"}


def test_versions_and_aliases_pull_their_own_bytes(any_db, tmp_path):
    store = tmp_path / "store"
    cli = _cli(any_db)
    _ok(cli("model", "store", "set", store))
    src = tmp_path / "src" / "policy.pt"
    v1 = _torchscript(src, seed=1).read_bytes()
    _ok(cli("model", "register", src))
    v2 = _torchscript(src, seed=2).read_bytes()
    assert v1 != v2
    assert "new version: policy v2" in _ok(cli("model", "register", src))
    _ok(cli("model", "alias", "set", "policy@1", "production"))
    for ref, want in (("policy@1", v1), ("policy", v2), ("policy@production", v1), ("policy@latest", v2)):
        dest = tmp_path / ref.replace("@", "-")
        _ok(cli("model", "pull", ref, "--to", dest))
        assert (dest / "policy.pt").read_bytes() == want, ref


# ------------------------------------------------------------------------------------------------ refusals
def test_tampered_blob_is_refused_and_nothing_is_written(any_db, tmp_path, onnx_model, one_line_error):
    store = tmp_path / "store"
    cli = _cli(any_db)
    _ok(cli("model", "register", onnx_model, "--store", store))
    blob = _blob(store, onnx_model.parent / EXT)  # the external data: the model file itself is fine
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[7] ^= 0x01  # one flipped bit
    blob.write_bytes(bytes(data))
    dest = tmp_path / "robot"
    digest = _sha(onnx_model.parent / EXT)
    one_line_error(cli("model", "pull", "net", "--to", dest, "--store", store), f"sha256:{digest}", str(store),
                   "corrupt", "nothing was written")
    assert not dest.exists() or not any(dest.rglob("*"))  # not even the (good) model file
    # pushing again from the machine that has the file repairs the blob
    _ok(cli("model", "push", "net", "--store", store))
    assert blob.read_bytes() == (onnx_model.parent / EXT).read_bytes()
    _ok(cli("model", "pull", "net", "--to", dest, "--store", store))
    assert (dest / EXT).read_bytes() == (onnx_model.parent / EXT).read_bytes()


def test_missing_blob_is_refused(any_db, tmp_path, one_line_error):
    store = tmp_path / "store"
    cli = _cli(any_db)
    ts = _torchscript(tmp_path / "src" / "policy.pt", seed=3)
    _ok(cli("model", "register", ts, "--store", store))
    blob = _blob(store, ts)
    blob.unlink()
    one_line_error(cli("model", "pull", "policy", "--to", tmp_path / "out", "--store", store),
                   f"sha256:{_sha(ts)}", "missing", str(store))
    assert not (tmp_path / "out" / "policy.pt").exists()


def test_push_of_a_changed_file_is_refused(any_db, tmp_path, onnx_model, one_line_error):
    store = tmp_path / "store"
    cli = _cli(any_db)
    ts = _torchscript(tmp_path / "src" / "policy.pt", seed=4)
    _ok(cli("model", "register", ts))
    _ok(cli("model", "register", onnx_model))
    registered = _sha(ts)
    with open(ts, "ab") as f:
        f.write(b"\0")
    one_line_error(cli("model", "push", "policy", "--store", store), "has changed", registered[:12], "nothing")
    assert not _blob(store, ts).exists() and not (store / "sha256" / registered[:2] / registered[2:]).exists()
    # the external data changed, the .onnx did not
    ext = onnx_model.parent / EXT
    ext.write_bytes(ext.read_bytes()[::-1])
    one_line_error(cli("model", "push", "net", "--store", store), "external data", EXT, "nothing was stored")
    assert not (store / "sha256").exists() or not any(p.is_file() for p in (store / "sha256").rglob("*"))


def test_pull_never_overwrites_another_file(any_db, tmp_path, one_line_error):
    store = tmp_path / "store"
    cli = _cli(any_db)
    ts = _torchscript(tmp_path / "src" / "policy.pt", seed=5)
    _ok(cli("model", "register", ts, "--store", store))
    dest = tmp_path / "robot"
    dest.mkdir()
    (dest / "policy.pt").write_bytes(b"someone else's file")
    one_line_error(cli("model", "pull", "policy", "--to", dest, "--store", store), str(dest / "policy.pt"),
                   "other bytes", "--to")
    assert (dest / "policy.pt").read_bytes() == b"someone else's file"


def test_store_choice_and_unstored_models(any_db, tmp_path, one_line_error):
    cli = _cli(any_db)
    ts = _torchscript(tmp_path / "src" / "policy.pt", seed=6)
    _ok(cli("model", "register", ts))  # no store set: registering copies nothing
    one_line_error(cli("model", "pull", "policy"), "no model store", "model store set")
    one_line_error(cli("model", "push", "policy", "--store", "s3://bucket/models"), "s3://", "not supported")
    store = tmp_path / "store"
    one_line_error(cli("model", "pull", "policy", "--store", store), "not in model store", "model push policy@1")
    assert "no model store set" in _ok(cli("model", "store", "show"))
    _ok(cli("model", "store", "set", store))
    assert str(store) in _ok(cli("model", "store", "show"))
    assert "stored: policy v1" in _ok(cli("model", "push", "policy@1"))
    assert "stored" not in _ok(cli("model", "register", ts, "--no-store", "--name", "other"))
    _ok(cli("model", "store", "unset"))
    one_line_error(cli("model", "register", ts, "--store"), "no model store", "model store set")
    # an unwritable store is refused before the analysis
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    one_line_error(cli("model", "register", ts, "--store", blocker / "store"), "cannot write to model store",
                   str(blocker / "store"))
