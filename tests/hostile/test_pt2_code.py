"""A .pt2 archive must never run code from the file without --trust-code.

``torch.export.load`` unpickles ``sample_inputs`` (falling back to ``weights_only=False``) and ``use_pickle`` weights
and constants, evals symbolic shape expressions through sympy, writes placeholder names into Python source it execs,
and execs guard code when the module is called. Each archive here is a real ``torch.export.save`` output with one
member poisoned by a payload that creates a marker file; ``model analyze``, ``model register`` and ``bench`` must
refuse it in one line (or, for guard code, ignore it) and the marker must never appear.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from embodied_tui.analysis import loaders
from embodied_tui.errors import AnalysisError
from tests.hostile.craft import PICKLED, PROGRAM, benign_pt2, cli, hostile_pt2


@pytest.fixture(scope="module")
def benign(tmp_path_factory) -> Path:
    return benign_pt2(tmp_path_factory.mktemp("pt2") / "net.pt2")


def _refused_in_one_line(run, marker: Path, member: str) -> None:
    assert not marker.exists(), "code from the file ran"
    assert run.code != 0
    assert "Traceback" not in run.stderr
    assert len(run.lines) == 1, run.stderr
    assert run.lines[0].startswith("error: ") and member in run.lines[0] and "--trust-code" in run.lines[0]


_MEMBER = {"sample_inputs": "sample_inputs/model.pt", "weights": "weights/weight_0",
           "constants": "constants/tensor_0", "sympy": "models/model.json", "name": "models/model.json"}


@pytest.mark.parametrize("kind", PICKLED + PROGRAM)
def test_analyze_refuses_without_running_code(kind, benign, tmp_path):
    marker = tmp_path / "ran"
    path = hostile_pt2(kind, benign, tmp_path / f"{kind}.pt2", marker)
    _refused_in_one_line(cli(tmp_path / "db.json", "model", "analyze", path), marker, _MEMBER[kind])


def test_register_refuses_and_leaves_the_registry_alone(benign, tmp_path):
    db = tmp_path / "db.json"
    assert cli(db, "model", "register", benign, "--name", "good").code == 0
    before = db.read_bytes()
    for kind in PICKLED:
        marker = tmp_path / f"ran_{kind}"
        path = hostile_pt2(kind, benign, tmp_path / f"{kind}.pt2", marker)
        _refused_in_one_line(cli(db, "model", "register", path, "--name", "evil"), marker, _MEMBER[kind])
        assert db.read_bytes() == before


def test_bench_refuses_a_registered_file_swapped_for_a_hostile_one(benign, tmp_path):
    db, path = tmp_path / "db.json", tmp_path / "net.pt2"
    path.write_bytes(benign.read_bytes())
    assert cli(db, "model", "register", path, "--name", "net").code == 0
    for kind in PICKLED:
        marker = tmp_path / f"ran_{kind}"
        path.write_bytes(hostile_pt2(kind, benign, tmp_path / f"{kind}.pt2", marker).read_bytes())
        run = cli(db, "bench", "net", "--no-save")  # refused by the hash check before the archive is opened
        assert not marker.exists(), "code from the file ran"
        assert run.code != 0 and "Traceback" not in run.stderr and len(run.lines) == 1, run.stderr
        assert "changed on disk" in run.lines[0]


def test_guard_code_is_dropped_not_run(benign, tmp_path):
    """Guard code only checks input shapes; it is never needed to count or time a model, so it is dropped."""
    db, path = tmp_path / "db.json", tmp_path / "net.pt2"
    marker = tmp_path / "ran"
    path.write_bytes(hostile_pt2("guards", benign, tmp_path / "g.pt2", marker).read_bytes())
    assert cli(db, "model", "register", path, "--name", "net").code == 0
    run = cli(db, "bench", "net", "--no-save")
    assert run.code == 0, run.stderr
    assert not marker.exists()


def test_trust_code_runs_it_with_a_warning(benign, tmp_path):
    marker = tmp_path / "ran"
    path = hostile_pt2("weights", benign, tmp_path / "w.pt2", marker)
    run = cli(tmp_path / "db.json", "model", "analyze", path, "--trust-code")
    assert marker.exists()  # the user asked for it
    assert run.lines[0] == f"warning: --trust-code: running code from {path}"
    assert "Traceback" not in run.stderr


def test_a_benign_archive_with_trust_code_gives_no_warning(benign, tmp_path):
    run = cli(tmp_path / "db.json", "model", "analyze", benign, "--trust-code", "--json")
    assert run.code == 0 and "warning" not in run.stderr
    assert json.loads(run.stdout)["params"] == 4 * 3 * 3 * 3 + 4 + 4 + 4


def test_safe_reader_gives_the_program_torch_gives(benign):
    ours, theirs = loaders.load_exported_program(benign, weights=True), torch.export.load(str(benign))
    assert str(ours.graph) == str(theirs.graph)
    assert ours.graph_signature == theirs.graph_signature
    assert ours.state_dict.keys() == theirs.state_dict.keys()
    assert all(torch.equal(ours.state_dict[k], theirs.state_dict[k]) for k in ours.state_dict)
    assert all(torch.equal(ours.constants[k], theirs.constants[k]) for k in ours.constants)
    x = torch.randn(2, 3, 16, 16)
    assert torch.allclose(ours.module()(x), theirs.module()(x))
    meta = loaders.load_exported_program(benign)  # analysis: no weight bytes read
    assert all(t.device.type == "meta" for t in meta.state_dict.values())


@pytest.mark.parametrize("target", ["torch.hub.os.system", "torch.ops.load_library", "torch.save",
                                    "builtins.exec", "_operator.methodcaller", "torch.ops.aten.__class__"])
def test_operators_must_be_registered_torch_ops(target):
    with pytest.raises(loaders._NeedsCode):
        loaders._check_operator(target, "/x", "models/model.json")


@pytest.mark.parametrize("target", ["torch.ops.aten.conv2d.default", "torch.ops.higher_order.cond",
                                    "_operator.getitem", "_operator.mul", "torch.sym_max"])
def test_registered_operators_pass(target):
    loaders._check_operator(target, "/x", "models/model.json")


@pytest.mark.parametrize("expr", ["Symbol('s77', positive=True, integer=True)",
                                  "Mul(Integer(2), Symbol('s77', positive=True, integer=True))",
                                  "Add(Symbol('s1', integer=True), Integer(-1))", "FloorDiv(Symbol('s0'), 2)"])
def test_shape_expressions_torch_writes_pass(expr):
    loaders._check_expr(expr, "/x", "models/model.json")


@pytest.mark.parametrize("expr", ["__import__('os').system('true')", "Symbol('s0').__class__", "1.real",
                                  "Symbol('__import__(\"os\")')", "lambda: 0", "S('exec')", "Symbol(s0)[0]"])
def test_shape_expressions_that_could_run_code_are_refused(expr):
    with pytest.raises(loaders._NeedsCode):
        loaders._check_expr(expr, "/x", "models/model.json")


def test_aotinductor_archive_is_refused(benign, tmp_path):
    import zipfile

    path = tmp_path / "aoti.pt2"
    path.write_bytes(benign.read_bytes())
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("net/data/aotinductor/model/model.so", b"\x7fELF")
    with pytest.raises(AnalysisError, match="native code"):
        loaders.load_exported_program(path)


def test_the_apps_register_dialog_job_refuses_too(benign, tmp_path):
    """The dialog runs the CLI's ``services.models.register`` in a spawned child (``ProcessJob``): same loader, same
    refusal, and the registry is not created."""
    from embodied_tui.data.store import Registry
    from embodied_tui.screens.register import REGISTER
    from embodied_tui.services.worker import ProcessJob

    marker = tmp_path / "ran"
    path = hostile_pt2("sample_inputs", benign, tmp_path / "s.pt2", marker)
    db = tmp_path / "reg" / "registry.json"
    with pytest.raises(AnalysisError, match="sample_inputs"):
        ProcessJob(REGISTER, (str(path),), {"name": "s", "input_shape": None, "trust_code": False,
                                            "db": Registry(db)}).run()
    assert not marker.exists() and not db.exists()
