"""Hostile model files for the tests in this folder: real archives with one member swapped, ONNX graphs that ask
for huge constants, external data pointing where it must not, and a way to run the real CLI in a subprocess."""
from __future__ import annotations

import json
import pathlib
import pickle
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


class Touch:
    """A pickle whose loading creates ``marker``: what a malicious model file does, minus the harm."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


class _Net(nn.Module):
    """A conv, a batch norm (buffers), a plain buffer and a tensor constant: every .pt2 member kind."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.register_buffer("scale", torch.ones(4))
        self.offset = torch.arange(3.0)  # a plain tensor attribute: exported as a lifted tensor constant

    def forward(self, x):
        return self.bn(self.conv(x)).mean() * self.scale.sum() + self.offset.sum()


def benign_pt2(path: Path) -> Path:
    ep = torch.export.export(_Net().eval(), (torch.randn(2, 3, 16, 16),),
                             dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(ep, path)
    return path


def _rewrite(src: Path, dst: Path, edits: dict) -> Path:
    """Copy the zip ``src`` to ``dst`` with each member whose name ends with a key of ``edits`` replaced by
    ``edits[key](old bytes)``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            for suffix, edit in edits.items():
                if info.filename.endswith(suffix):
                    data = edit(data)
            zout.writestr(info.filename, data)
    return dst


def _pickled_entry(config: bytes) -> bytes:
    """A payload config with its first entry switched to ``use_pickle`` (as torch writes tensor subclasses)."""
    cfg = json.loads(config)
    next(iter(cfg["config"].values()))["use_pickle"] = True
    return json.dumps(cfg).encode()


def _edit_program(edit):
    def apply(data: bytes) -> bytes:
        program = json.loads(data)
        edit(program)
        return json.dumps(program).encode()
    return apply


def _sympy_payload(marker: Path):
    def edit(program):
        dim = program["graph_module"]["graph"]["tensor_values"]["x"]["sizes"][0]
        dim["as_expr"]["expr_str"] = f"__import__('pathlib').Path({str(marker)!r}).touch() or Symbol('s0')"
    return edit


def _name_payload(marker: Path):
    def edit(program):  # a placeholder name: torch.fx writes it into the forward() it generates and execs
        text = json.dumps(program).replace('"x"', json.dumps(f"x=__import__('pathlib').Path({str(marker)!r}).touch()"))
        program.clear()
        program.update(json.loads(text))
    return edit


def _guard_payload(marker: Path):
    def edit(program):  # guards_code is written into a function torch execs and the unlifted module calls
        program["guards_code"] = [f"__import__('pathlib').Path({str(marker)!r}).touch() is None"]
    return edit


# member kind -> how to poison a benign archive; each runs Touch(marker) under torch.export.load / .module() / call
PICKLED = ("sample_inputs", "weights", "constants")
PROGRAM = ("sympy", "name")


def hostile_pt2(kind: str, benign: Path, dst: Path, marker: Path) -> Path:
    payload = pickle.dumps(Touch(marker))
    edits = {
        "sample_inputs": {"data/sample_inputs/model.pt": lambda _: payload},
        "weights": {"data/weights/model_weights_config.json": _pickled_entry,
                    "data/weights/weight_0": lambda _: payload},
        "constants": {"data/constants/model_constants_config.json": _pickled_entry,
                      "data/constants/tensor_0": lambda _: payload},
        "sympy": {"models/model.json": _edit_program(_sympy_payload(marker))},
        "name": {"models/model.json": _edit_program(_name_payload(marker))},
        "guards": {"models/model.json": _edit_program(_guard_payload(marker))},
    }[kind]
    return _rewrite(benign, dst, edits)


# ---- ONNX -----------------------------------------------------------------------------------------------------------
def onnx_model(nodes, inputs, outputs, initializers=(), opset: int = 17, extra_opsets=()):
    from onnx import helper

    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                   *(helper.make_opsetid(d, v) for d, v in extra_opsets)])


def fold_bomb(kind: str, path: Path, n: int = 1 << 27) -> Path:
    """A tiny ONNX file whose constant subgraph asks for ``n`` elements (512 MiB and more) when folded. A node of an
    unknown custom op keeps one output unshaped, which is what makes the analysis fold constants at all."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    def const(name, dtype, dims, vals):
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name + "_v", dtype, dims, vals))

    if kind == "constant_of_shape":
        nodes = [const("s", TensorProto.INT64, [1], [n]), helper.make_node("ConstantOfShape", ["s"], ["big"])]
    elif kind == "expand":
        nodes = [const("s", TensorProto.INT64, [1], [n]), const("one", TensorProto.FLOAT, [1], [1.0]),
                 helper.make_node("Expand", ["one", "s"], ["big"])]
    elif kind == "tile":
        nodes = [const("r", TensorProto.INT64, [1], [n]), const("one", TensorProto.FLOAT, [1], [1.0]),
                 helper.make_node("Tile", ["one", "r"], ["big"])]
    elif kind == "range":
        nodes = [const("start", TensorProto.INT64, [], [0]), const("l", TensorProto.INT64, [], [n]),
                 const("d", TensorProto.INT64, [], [1]), helper.make_node("Range", ["start", "l", "d"], ["r"]),
                 helper.make_node("Cast", ["r"], ["big"], to=TensorProto.FLOAT)]
    elif kind == "outer":  # a broadcasting Add of two small constants: 2^13 x 2^14 elements
        a, b = 1 << 13, n >> 13
        nodes = [const("a", TensorProto.FLOAT, [a, 1], np.ones(a).tolist()),
                 const("b", TensorProto.FLOAT, [1, b], np.ones(b).tolist()),
                 helper.make_node("Add", ["a", "b"], ["big"])]
    else:
        raise ValueError(kind)
    nodes += [helper.make_node("ReduceSum", ["big"], ["r_sum"], keepdims=0),
              helper.make_node("Add", ["x", "r_sum"], ["y"]),
              helper.make_node("Mystery", ["y"], ["z"], domain="example.hostile")]
    model = onnx_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                       [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
                       extra_opsets=[("example.hostile", 1)])
    onnx.save(model, path)
    return path


def external_data_model(path: Path, location: str) -> Path:
    """A MatMul whose 4x4 weight is stored externally at ``location`` (relative to the model's folder)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value=location)
    w.external_data.add(key="length", value="64")
    model = onnx_model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    onnx.save(model, path)
    return path


# ---- the real CLI ---------------------------------------------------------------------------------------------------
@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def only_line(run: Run, prefix: str, *words: str) -> str:
    """Exactly one non-blank stderr line, starting with ``prefix`` and holding every word, and no traceback."""
    assert "Traceback" not in run.stderr, run.stderr
    assert len(run.lines) == 1, run.stderr
    line = run.lines[0]
    assert line.startswith(prefix), line
    for word in words:
        assert word in line, line
    return line


def refused(run: Run, *words: str) -> str:
    """Exit non-zero, exactly one stderr line ("error: ..."), no traceback; returns the line."""
    assert run.code != 0, (run.stdout, run.stderr)
    return only_line(run, "error: ", *words)


def warned(run: Run, *words: str) -> str:
    """Exit 0 with exactly one "warning: ..." line on stderr and no traceback; returns the line."""
    assert run.code == 0, (run.stdout, run.stderr)
    return only_line(run, "warning: ", *words)


def cli(db: Path, *args, timeout: float = 120) -> Run:
    """``embodied-ai --db DB ARGS`` in a fresh process (a hang fails the test through ``timeout``)."""
    proc = subprocess.run([sys.executable, "-m", "embodied_tui", "--db", str(db), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    return Run(proc.returncode, proc.stdout, proc.stderr)


_RSS_DRIVER = """
import resource, sys
import numpy, onnx, onnx.reference, torch  # what an analysis imports, so the baseline includes them
import embodied_tui.analysis.api, embodied_tui.cli
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sys.argv = ["embodied-ai", *sys.argv[1:]]
code = 0
try:
    embodied_tui.cli.main()
except SystemExit as exc:
    code = exc.code or 0
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
print(f"RSS_GROWTH_KB={grown} EXIT={code}", file=sys.stderr)
"""


def cli_rss(db: Path, *args, timeout: float = 120) -> tuple[Run, int]:
    """Run the CLI in a fresh process and return (its run, how far its peak RSS grew past the imports, in MiB)."""
    proc = subprocess.run([sys.executable, "-c", _RSS_DRIVER, "--db", str(db), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    last = proc.stderr.strip().splitlines()[-1]
    fields = dict(f.split("=") for f in last.split())
    stderr = "\n".join(proc.stderr.strip().splitlines()[:-1])
    return Run(int(fields["EXIT"]), proc.stdout, stderr), int(fields["RSS_GROWTH_KB"]) // 1024
