"""ONNX counts that must be exact, checked against the torch module each file came from: params from the module,
MACs from ``torch.utils.flop_counter.FlopCounterMode`` on the module in memory (FLOPs / 2), or a hand count where it
misses work (LSTM). Every model is built here, small, with random weights (the TorchScript exporter merges
identical initializers, so freshly initialised ones-and-zeros would hide parameters).

Covered: the coverage ledger; quantised files (QDQ, QOperator, dynamic, DynamicQuantizeLSTM, QAttention) and fp16 /
bf16 files count the float model's MACs and params, with weights at their stored bytes; constants (grids, buffers,
quantisation data, BatchNorm statistics) are not parameters; Swin's window attention and a diffusion-policy 1-D
U-Net keep their shapes; invalid graphs are refused in one line; folding skipped by its bound is said; odd metadata.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
nn = torch.nn
F = torch.nn.functional

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from embodied_tui.analysis.api import analyze_file  # noqa: E402
from embodied_tui.analysis.coverage import apply as apply_coverage  # noqa: E402
from embodied_tui.analysis.coverage import describe, ledger  # noqa: E402
from embodied_tui.analysis.onnx.counting import count_onnx  # noqa: E402
from embodied_tui.analysis.trace import TraceOp  # noqa: E402
from embodied_tui.data.records import Coverage, Uncounted  # noqa: E402
from embodied_tui.errors import AnalysisError  # noqa: E402

# ----------------------------------------------------------------------------- helpers

def export(model, args, path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), args, str(path), dynamo=False, **kw)
    return path


def flop_macs(model, *args) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(*args)
    return counter.get_total_flops() // 2


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def randomize(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in list(model.parameters()):
            t.copy_(torch.rand(t.shape, generator=gen) - 0.5)
    return model.eval()


def save(nodes, inputs, outputs, path, inits=(), opsets=(("", 17),)):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets]), str(path))
    return path


FLOAT = TensorProto.FLOAT


# ----------------------------------------------------------------------------- models

class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.c2(F.relu(self.c1(x))))
        return self.fc(x.mean((2, 3)))


class SmallMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(32, 64), nn.Linear(64, 16)

    def forward(self, x):
        return self.b(F.relu(self.a(x)))


class LSTMPolicy(nn.Module):
    def __init__(self, d_in=16, hidden=32):
        super().__init__()
        self.lstm, self.fc = nn.LSTM(d_in, hidden), nn.Linear(hidden, 4)

    def forward(self, x):
        return self.fc(self.lstm(x)[0])


def lstm_hand(seq, batch, d_in, hidden, out):
    return seq * batch * 4 * hidden * (d_in + hidden) + seq * batch * hidden * out


# ----------------------------------------------------------------------------- 1. coverage ledger

def test_ledger_on_an_unknown_op_and_an_op_left_unshaped(tmp_path):
    nodes = [helper.make_node("Gemm", ["a", "B"], ["g"], name="/fc/Gemm"),
             helper.make_node("Foo", ["g"], ["h"], domain="my.ops", name="/foo/Foo"),
             helper.make_node("Relu", ["h"], ["y"], name="/Relu")]
    path = save(nodes, [helper.make_tensor_value_info("a", FLOAT, [4, 8])], [helper.make_tensor_value_info("y", FLOAT,
                                                                                                          None)],
                tmp_path / "u.onnx", [helper.make_tensor("B", FLOAT, [8, 6], np.arange(48.0) / 7)],
                opsets=(("", 17), ("my.ops", 1)))
    a = analyze_file(path)
    gemm_bytes = 4 * (4 * 8 + 8 * 6 + 4 * 6)  # reads a and B, writes g (float32)
    foo_bytes = 4 * 4 * 6  # reads g; its output has no shape
    assert a.coverage == Coverage(total_ops=3, uncounted_ops=2, total_bytes=gemm_bytes + foo_bytes,
                                  uncounted_bytes=foo_bytes)
    assert a.coverage.total_bytes == a.unfused_bytes
    assert [(u.module, u.op, u.bytes) for u in a.uncounted] == [("/foo/Foo", "Foo", foo_bytes), ("/Relu", "Relu", 0)]
    assert f"uncounted: 2 of 3 ops, {100 * foo_bytes / (gemm_bytes + foo_bytes):.1f}% of bytes" in a.notes
    assert a.macs_complete  # neither op's work is MACs


def test_ledger_bytes_add_up_to_the_unfused_traffic(tmp_path):
    path = export(randomize(SmallCNN()), (torch.randn(1, 3, 16, 16),), tmp_path / "cnn.onnx")
    r = count_onnx(path)
    assert all(op.formula for op in r.trace) and sum(op.bytes for op in r.trace) == r.unfused_bytes
    a = analyze_file(path)
    assert a.coverage == Coverage(total_ops=len(r.trace), uncounted_ops=0, total_bytes=r.unfused_bytes,
                                  uncounted_bytes=0)
    assert not any(n.startswith("uncounted:") for n in a.notes)


def test_an_uncounted_mac_op_makes_macs_incomplete_whatever_the_counter_said():
    trace = [TraceOp(0, "conv", "Conv", "/c", macs=10, formula="conv", bytes=100, mac_op=True),
             TraceOp(1, "other", "DynamicQuantizeLSTM", "/l", formula=None, bytes=50, mac_op=True),
             TraceOp(2, "other", "aten.weird", "m", formula=None, bytes=None)]
    fields = {"macs_complete": True, "uncounted": [Uncounted(module="/l", op="DynamicQuantizeLSTM", reason="r")],
              "notes": []}
    apply_coverage(fields, trace)
    assert fields["macs_complete"] is False
    assert fields["coverage"] == Coverage(total_ops=3, uncounted_ops=2, total_bytes=150, uncounted_bytes=50)
    assert [(u.op, u.bytes, u.reason) for u in fields["uncounted"]] == [
        ("DynamicQuantizeLSTM", 50, "r"), ("aten.weird", 0, "no formula for this op: its work is not counted")]
    assert fields["notes"] == ["uncounted: 2 of 3 ops, 33.3% of bytes"]
    assert [e.counted for e in ledger(trace)] == [True, False, False]
    assert describe(Coverage(total_ops=412, uncounted_ops=3, total_bytes=10_000, uncounted_bytes=40)) == \
        "uncounted: 3 of 412 ops, 0.4% of bytes"


def test_a_registered_mac_op_without_formula_is_incomplete_in_the_summary(tmp_path):
    nodes = [helper.make_node("PackedAttention", ["x", "W", "b", "tok", "cum"], ["att"], domain="com.microsoft",
                              num_heads=2, name="/attn/PackedAttention")]
    ins = [helper.make_tensor_value_info("x", FLOAT, [6, 8]),
           helper.make_tensor_value_info("tok", TensorProto.INT32, [1, 6]),
           helper.make_tensor_value_info("cum", TensorProto.INT32, [2])]
    inits = [helper.make_tensor("W", FLOAT, [8, 24], np.arange(192.0) / 9),
             helper.make_tensor("b", FLOAT, [24], np.arange(24.0) / 5)]
    a = analyze_file(save(nodes, ins, [helper.make_tensor_value_info("att", FLOAT, None)], tmp_path / "p.onnx", inits,
                          opsets=(("", 17), ("com.microsoft", 1))))
    assert not a.macs_complete and a.coverage.uncounted_ops == 1
    assert a.uncounted[0].bytes == a.coverage.uncounted_bytes > 0


def test_torch_formats_get_a_ledger_too(tmp_path):
    path = tmp_path / "mlp.pt"
    torch.jit.trace(randomize(SmallMLP()), torch.randn(2, 32)).save(str(path))
    a = analyze_file(path)
    assert a.coverage is not None and a.coverage.total_ops >= 3 and a.coverage.total_bytes > 0
    assert a.coverage.uncounted_ops == len([u for u in a.uncounted if u.bytes is not None])


# ----------------------------------------------------------------------------- 2. quantised and fp16/bf16 files

class _Reader:
    """A tiny calibration data reader for quantize_static."""

    def __init__(self, name, shape, n=4):
        rng = np.random.default_rng(0)
        self.batches = iter([{name: rng.random(shape, dtype=np.float32)} for _ in range(n)])

    def get_next(self):
        return next(self.batches, None)


def _quantize(float_path, shape, tmp_path, stem):
    quant = pytest.importorskip("onnxruntime.quantization")
    reader = type("Reader", (_Reader, quant.CalibrationDataReader), {})
    out = {}
    for fmt in ("QDQ", "QOperator"):
        out[fmt] = tmp_path / f"{stem}_{fmt}.onnx"
        quant.quantize_static(str(float_path), str(out[fmt]), reader("x", shape),
                              quant_format=getattr(quant.QuantFormat, fmt), weight_type=quant.QuantType.QInt8,
                              activation_type=quant.QuantType.QUInt8)
    out["dynamic"] = tmp_path / f"{stem}_dynamic.onnx"
    quant.quantize_dynamic(str(float_path), str(out["dynamic"]), weight_type=quant.QuantType.QInt8)
    return out


def _stored(path):
    """(bytes of every stored tensor, bytes of the quantisation scales and zero points) as the file holds them."""
    total = quant = 0
    for t in onnx.load(str(path)).graph.initializer:
        if t.data_type in (TensorProto.INT64, TensorProto.BOOL):
            continue
        nbytes = numpy_helper.to_array(t).nbytes
        total += nbytes
        quant += nbytes if t.name.endswith(("_scale", "_zero_point")) else 0
    return total, quant


@pytest.mark.parametrize("build,shape", [(SmallCNN, (1, 3, 16, 16)), (SmallMLP, (4, 32))], ids=["cnn", "mlp"])
def test_quantized_files_count_the_float_model(tmp_path, build, shape):
    model = randomize(build())
    x = torch.randn(*shape)
    float_path = export(model, (x,), tmp_path / "float.onnx", input_names=["x"])
    macs, params = flop_macs(model, x), n_params(model)
    base = count_onnx(float_path)
    assert (base.macs, base.params, base.weight_bytes) == (macs, params, 4 * params)
    ops = {"QDQ": {"QuantizeLinear", "DequantizeLinear"}, "QOperator": {"QLinearMatMul", "QGemm", "QLinearConv"},
           "dynamic": {"MatMulInteger", "ConvInteger"}}
    for fmt, path in _quantize(float_path, shape, tmp_path, build.__name__).items():
        types = {n.op_type for n in onnx.load(str(path)).graph.node}
        assert types & ops[fmt], (fmt, types)
        r = count_onnx(path)
        assert (r.macs, r.macs_complete, r.params) == (macs, True, params), fmt
        stored, quant = _stored(path)
        # convention: weight_bytes = every stored tensor at its stored dtype (int8 weights, int32 or float biases)
        # + the scales and zero points, which are constants, not parameters
        assert (r.weight_bytes, r.constant_bytes) == (stored, quant), fmt
        assert r.weight_bytes < 2 * params, fmt  # about a byte a weight
        assert r.dtype == "int8", fmt
        heavy = [lc for lc in r.layer_costs if lc.macs]
        assert heavy and all(lc.precision == "int8" for lc in heavy), (fmt, [(lc.type, lc.precision) for lc in heavy])


def test_dynamic_quantized_lstm(tmp_path):
    quant = pytest.importorskip("onnxruntime.quantization")
    seq, batch, d_in, hidden = 5, 1, 16, 32
    model = randomize(LSTMPolicy(d_in, hidden))
    x = torch.randn(seq, batch, d_in)
    float_path = export(model, (x,), tmp_path / "lstm.onnx", input_names=["x"])
    q_path = tmp_path / "lstm_q.onnx"
    quant.quantize_dynamic(str(float_path), str(q_path), weight_type=quant.QuantType.QInt8)
    assert "DynamicQuantizeLSTM" in {n.op_type for n in onnx.load(str(q_path)).graph.node}
    hand = lstm_hand(seq, batch, d_in, hidden, 4)
    assert flop_macs(model, x) < hand  # FlopCounterMode misses the LSTM: counted by hand
    f, q = count_onnx(float_path), count_onnx(q_path)
    assert (f.macs, q.macs) == (hand, hand) and q.macs_complete and not q.uncounted
    assert f.params == q.params == n_params(model)
    assert [op.kind for op in q.trace if op.op == "DynamicQuantizeLSTM"] == ["lstm"]
    (layer,) = [lc for lc in q.layer_costs if lc.type == "DynamicQuantizeLSTM"]
    assert (layer.launches, layer.precision) == (seq, "int8")
    a = analyze_file(q_path)
    assert a.macs_complete and a.coverage.uncounted_ops == 0


def test_qattention_counts_as_attention(tmp_path):
    b, s, d, heads = 1, 8, 16, 2
    ms = ("com.microsoft", 1)
    float_nodes = [helper.make_node("Attention", ["x", "W", "bias"], ["y"], domain="com.microsoft", num_heads=heads)]
    float_inits = [numpy_helper.from_array(np.random.default_rng(0).random((d, 3 * d), dtype=np.float32), "W"),
                   numpy_helper.from_array(np.arange(3 * d, dtype=np.float32), "bias")]
    q_nodes = [helper.make_node("QAttention", ["xq", "Wq", "bias", "xs", "ws", "", "xz", "wz"], ["y"],
                                domain="com.microsoft", num_heads=heads)]
    q_inits = [numpy_helper.from_array(np.arange(d * 3 * d, dtype=np.int8).reshape(d, 3 * d), "Wq"),
               float_inits[1], numpy_helper.from_array(np.array(0.1, np.float32), "xs"),
               numpy_helper.from_array(np.array(0.2, np.float32), "ws"),
               numpy_helper.from_array(np.array(3, np.uint8), "xz"),
               numpy_helper.from_array(np.array(0, np.int8), "wz")]
    y = [helper.make_tensor_value_info("y", FLOAT, None)]
    f = count_onnx(save(float_nodes, [helper.make_tensor_value_info("x", FLOAT, [b, s, d])], y, tmp_path / "f.onnx",
                        float_inits, (("", 17), ms)))
    q = count_onnx(save(q_nodes, [helper.make_tensor_value_info("xq", TensorProto.UINT8, [b, s, d])], y,
                        tmp_path / "q.onnx", q_inits, (("", 17), ms)))
    hand = b * s * d * 3 * d + 2 * b * s * s * d  # QKV projection, Q K^T and P V
    assert f.macs == q.macs == hand and q.macs_complete and not q.uncounted
    assert q.params == d * 3 * d + 3 * d and q.constant_elems == 4  # scales and zero points
    assert q.output_shapes == [[b, s, d]]


def _to_fp16(src, dst, *, bf16=False, stray_cast=False):
    """An fp16 copy made by hand: float initializers and Constants to fp16, Casts to float retargeted, a Cast at the
    input and the output (keep_io_types). ``bf16``: weights to bfloat16 each followed by a Cast to float instead.
    ``stray_cast``: leave one Cast to float in the middle, the type error a careless conversion makes."""
    m = onnx.load(str(src))
    g = m.graph
    half = TensorProto.BFLOAT16 if bf16 else TensorProto.FLOAT16
    inits = []
    for t in g.initializer:
        if t.data_type == FLOAT:
            arr = numpy_helper.to_array(t)
            if bf16:
                new = helper.make_tensor(t.name + "_bf16", TensorProto.BFLOAT16, arr.shape, arr.reshape(-1).tolist())
                inits.append(new)
                g.node.insert(0, helper.make_node("Cast", [new.name], [t.name], to=FLOAT))
            else:
                inits.append(numpy_helper.from_array(arr.astype(np.float16), t.name))
        else:
            inits.append(t)
    del g.initializer[:]
    g.initializer.extend(inits)
    if bf16:
        return onnx.save(m, str(dst)) or dst
    for n in g.node:
        for a in n.attribute:
            if n.op_type == "Constant" and a.name == "value" and a.t.data_type == FLOAT:
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16), a.t.name))
            if n.op_type == "Cast" and a.name == "to" and a.i == FLOAT:
                a.i = TensorProto.FLOAT16
    x, y = g.input[0].name, g.output[0].name
    for n in g.node:
        n.input[:] = [x + "_h" if i == x else i for i in n.input]
        n.output[:] = [y + "_h" if o == y else o for o in n.output]
    g.node.insert(0, helper.make_node("Cast", [x], [x + "_h"], to=half))
    g.node.append(helper.make_node("Cast", [y + "_h"], [y], to=FLOAT))
    if stray_cast:
        relu = next(n for n in g.node if n.op_type == "Relu")
        g.node.append(helper.make_node("Cast", [relu.output[0]], ["stray"], to=FLOAT))
        user = next(n for n in g.node if relu.output[0] in n.input and n.op_type != "Cast")
        user.input[:] = ["stray" if i == relu.output[0] else i for i in user.input]
        nodes = sorted(g.node, key=lambda n: 0 if n.op_type == "Cast" and n.output[0] == "stray" else 1)
        del g.node[:]
        g.node.extend(nodes)
    del g.value_info[:]
    onnx.save(m, str(dst))
    return dst


@pytest.mark.parametrize("build,shape", [(SmallCNN, (1, 3, 16, 16)), (SmallMLP, (4, 32))], ids=["cnn", "mlp"])
def test_fp16_and_bf16_files_count_the_float_model(tmp_path, build, shape):
    model = randomize(build())
    x = torch.randn(*shape)
    float_path = export(model, (x,), tmp_path / "float.onnx", input_names=["x"])
    macs, params = flop_macs(model, x), n_params(model)
    for label, path in (("fp16", _to_fp16(float_path, tmp_path / "h.onnx")),
                        ("bf16", _to_fp16(float_path, tmp_path / "b.onnx", bf16=True))):
        r = count_onnx(path)
        assert (r.macs, r.macs_complete, r.params, r.weight_bytes) == (macs, True, params, 2 * params), label
        assert r.dtype == {"fp16": "float16", "bf16": "bfloat16"}[label] and r.dtype_bytes == 2
        heavy = [lc for lc in r.layer_costs if lc.macs]
        assert heavy and all(lc.precision == label for lc in heavy), label


# ----------------------------------------------------------------------------- 3. constants are not parameters

class DetectHead(nn.Module):
    """A YOLO-style head: anchors and strides as registered buffers (pixels), one grid computed in forward, one kept
    as a registered buffer, and a learned offset parameter read by an Add (a parameter like a position embedding)."""

    def __init__(self, nc=3, chans=(8, 16), ny=4, na=3):
        super().__init__()
        self.na, self.no = na, nc + 5
        self.stem = nn.Conv2d(3, chans[0], 3, 2, 1)
        self.down = nn.Conv2d(chans[0], chans[1], 3, 2, 1)
        self.m = nn.ModuleList(nn.Conv2d(c, na * self.no, 1) for c in chans)
        self.register_buffer("anchors", torch.tensor([[[10, 13], [16, 30], [33, 23]],
                                                      [[30, 61], [62, 45], [59, 119]]], dtype=torch.float32))
        self.register_buffer("stride", torch.tensor([8.0, 16.0]))
        yv, xv = torch.meshgrid(torch.arange(ny), torch.arange(ny), indexing="ij")
        self.register_buffer("grid1", torch.stack((xv, yv), 2).view(1, 1, ny, ny, 2).float())
        self.offset = nn.Parameter(torch.zeros(1, 1, 1, 1, 2))

    def forward(self, x):
        feats = [F.silu(self.stem(x))]
        feats.append(F.silu(self.down(feats[0])))
        out = []
        for i, f in enumerate(feats):
            y = self.m[i](f)
            bs, _, ny, nx = y.shape
            y = y.view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).sigmoid()
            if i == 0:
                yv, xv = torch.meshgrid(torch.arange(ny, dtype=torch.float32), torch.arange(nx, dtype=torch.float32),
                                        indexing="ij")
                grid = torch.stack((xv, yv), 2).view(1, 1, ny, nx, 2)
            else:
                grid = self.grid1
            xy = (y[..., :2] * 2 - 0.5 + grid + self.offset) * self.stride[i]
            wh = (y[..., 2:4] * 2) ** 2 * (self.anchors[i] * self.stride[i]).view(1, self.na, 1, 1, 2)
            out.append(torch.cat((xy, wh, y[..., 4:]), -1).view(bs, -1, self.no))
        return torch.cat(out, 1)


def test_anchor_and_stride_grids_are_constants_not_params(tmp_path):
    model = randomize(DetectHead())
    x = torch.randn(1, 3, 16, 16)  # feature maps 8x8 and 4x4
    buffers = sum(b.numel() for b in model.buffers())
    path = export(model, (x,), tmp_path / "det.onnx")
    r = count_onnx(path)
    assert r.params == n_params(model)  # torch counts buffers in weight_bytes, not in params; so do we
    assert r.constant_elems >= buffers - 6  # the grid computed in forward is stored too (the anchors x stride fold)
    assert r.weight_bytes == 4 * (r.params + r.constant_elems) and r.constant_bytes == 4 * r.constant_elems
    assert r.macs == flop_macs(model, x)
    assert any("not parameters" in n for n in r.notes)


def test_batchnorm_statistics_are_constants(tmp_path):
    c = 4
    inits = [numpy_helper.from_array(np.linspace(0.5, 1.5, c, dtype=np.float32) + k, name)
             for k, name in enumerate(("scale", "B", "mean", "var"))]
    path = save([helper.make_node("BatchNormalization", ["x", "scale", "B", "mean", "var"], ["y"])],
                [helper.make_tensor_value_info("x", FLOAT, [1, c, 5, 5])],
                [helper.make_tensor_value_info("y", FLOAT, [1, c, 5, 5])], tmp_path / "bn.onnx", inits)
    r = count_onnx(path)
    assert (r.params, r.constant_elems, r.weight_bytes) == (2 * c, 2 * c, 4 * 4 * c)  # as nn.BatchNorm2d counts


def test_constant_node_grids_and_lattice_initializers(tmp_path):
    """A Constant grid read by an Add is a constant; a float initializer on the integer lattice read by an Add (a
    registered buffer) is one too; an initializer of learned-looking values read by an Add stays a parameter, and so
    does a freshly initialised all-ones one."""
    grid = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(1, 12), "grid_v")
    inits = [numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(1, 12) * 8, "buf"),
             numpy_helper.from_array(np.random.default_rng(1).random((1, 12), dtype=np.float32), "pos"),
             numpy_helper.from_array(np.ones((1, 12), np.float32), "gamma")]
    nodes = [helper.make_node("Constant", [], ["grid"], value=grid), helper.make_node("Add", ["x", "grid"], ["a"]),
             helper.make_node("Add", ["a", "buf"], ["b"]), helper.make_node("Add", ["b", "pos"], ["c"]),
             helper.make_node("Mul", ["c", "gamma"], ["y"])]
    r = count_onnx(save(nodes, [helper.make_tensor_value_info("x", FLOAT, [2, 12])],
                        [helper.make_tensor_value_info("y", FLOAT, [2, 12])], tmp_path / "c.onnx", inits))
    assert (r.params, r.constant_elems, r.weight_bytes) == (24, 24, 4 * 48)


# ----------------------------------------------------------------------------- 4. Swin and the 1-D U-Net

class WindowAttention(nn.Module):
    """torchvision's ShiftedWindowAttention (shifted_window_attention), faithfully: pad, roll, window partition
    computed from the input's shape, relative position bias gathered from its table, the shift mask."""

    def __init__(self, dim, window, shift, heads):
        super().__init__()
        self.window, self.shift, self.heads = [window, window], [shift, shift], heads
        self.qkv, self.proj = nn.Linear(dim, dim * 3), nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
        rel[:, :, 0] += window - 1
        rel[:, :, 1] += window - 1
        rel[:, :, 0] *= 2 * window - 1
        self.register_buffer("relative_position_index", rel.sum(-1).flatten())

    def forward(self, x):
        ws, heads = self.window, self.heads
        n = ws[0] * ws[1]
        bias = self.relative_position_bias_table[self.relative_position_index].view(n, n, -1)
        bias = bias.permute(2, 0, 1).contiguous().unsqueeze(0)
        B, H, W, C = x.shape
        pad_r, pad_b = (ws[1] - W % ws[1]) % ws[1], (ws[0] - H % ws[0]) % ws[0]
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        _, pH, pW, _ = x.shape
        shift = list(self.shift)
        if ws[0] >= pH:
            shift[0] = 0
        if ws[1] >= pW:
            shift[1] = 0
        if sum(shift) > 0:
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        nw = (pH // ws[0]) * (pW // ws[1])
        x = x.view(B, pH // ws[0], ws[0], pW // ws[1], ws[1], C).permute(0, 1, 3, 2, 4, 5).reshape(B * nw, n, C)
        qkv = self.qkv(x).reshape(x.size(0), x.size(1), 3, heads, C // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * (C // heads) ** -0.5).matmul(k.transpose(-2, -1)) + bias
        if sum(shift) > 0:
            mask = x.new_zeros((pH, pW))
            hs = ((0, -ws[0]), (-ws[0], -shift[0]), (-shift[0], None))
            wsl = ((0, -ws[1]), (-ws[1], -shift[1]), (-shift[1], None))
            count = 0
            for h in hs:
                for w in wsl:
                    mask[h[0]:h[1], w[0]:w[1]] = count
                    count += 1
            mask = mask.view(pH // ws[0], ws[0], pW // ws[1], ws[1]).permute(0, 2, 1, 3).reshape(nw, n)
            mask = mask.unsqueeze(1) - mask.unsqueeze(2)
            mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
            attn = attn.view(x.size(0) // nw, nw, heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, heads, n, n)
        x = F.softmax(attn, dim=-1).matmul(v).transpose(1, 2).reshape(x.size(0), x.size(1), C)
        x = self.proj(x)
        x = x.view(B, pH // ws[0], pW // ws[1], ws[0], ws[1], C).permute(0, 1, 3, 2, 4, 5).reshape(B, pH, pW, C)
        if sum(shift) > 0:
            x = torch.roll(x, shifts=(shift[0], shift[1]), dims=(1, 2))
        return x[:, :H, :W, :].contiguous()


class SwinBlock(nn.Module):
    def __init__(self, dim, heads, window, shift):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, shift, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.reduction, self.norm = nn.Linear(4 * dim, 2 * dim, bias=False), nn.LayerNorm(4 * dim)

    def forward(self, x):
        H, W = x.shape[-3:-1]
        x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
        x = torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]], -1)
        return self.reduction(self.norm(x))


class TinySwin(nn.Module):
    """A Swin transformer as torchvision builds it (patch embedding, stages of shifted-window blocks, patch merging),
    small: 8 blocks, one more than the old folding rounds followed, each computing its windows from Shape ops."""

    def __init__(self, dim=8, depths=(2, 6), heads=(1, 2), window=4, classes=5):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(3, dim, 2, 2)), nn.LayerNorm(dim)]
        for i, depth in enumerate(depths):
            d = dim * 2 ** i
            layers += [SwinBlock(d, heads[i], window, 0 if k % 2 == 0 else window // 2) for k in range(depth)]
            if i < len(depths) - 1:
                layers.append(PatchMerging(d))
        self.stem, self.features = layers[0], nn.Sequential(*layers[1:])
        self.norm, self.head = nn.LayerNorm(dim * 2 ** (len(depths) - 1)), nn.Linear(dim * 2 ** (len(depths) - 1),
                                                                                     classes)

    def forward(self, x):
        x = self.features(self.stem(x).permute(0, 2, 3, 1))
        return self.head(self.norm(x).mean((1, 2)))


def test_swin_window_attention_keeps_its_shapes(tmp_path):
    model = randomize(TinySwin())
    x = torch.randn(1, 3, 32, 32)
    r = count_onnx(export(model, (x,), tmp_path / "swin.onnx", opset_version=17))
    assert r.macs == flop_macs(model, x) and r.macs_complete
    assert not any("shape unknown" in n for n in r.notes)
    matmuls = [op for op in r.trace if op.op == "MatMul"]
    assert len(matmuls) == 8 * 6 + 1 and all(op.out_shape for op in matmuls)  # qkv, q k^T, p v, proj, fc1, fc2
    # the gathered relative-position bias is stored instead of its table: the table's parameters are missing, the
    # gathered copies (window^2 x window^2 per head) are counted
    tables = sum(b.attn.relative_position_bias_table.numel() for b in model.modules() if isinstance(b, SwinBlock))
    gathered = sum(16 * 16 * b.attn.heads for b in model.modules() if isinstance(b, SwinBlock))
    assert r.params == n_params(model) - tables + gathered


def test_torchvision_swin_t(tmp_path):
    """The reported case, when torchvision is installed: swin_t as ONNX counted 1.60 of 4.49 GMACs."""
    models = pytest.importorskip("torchvision.models")
    model = models.swin_t(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    r = count_onnx(export(model, (x,), tmp_path / "swin_t.onnx", opset_version=17))
    assert r.macs == flop_macs(model, x) == 4_490_566_656 and r.macs_complete


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        half = self.dim // 2
        freq = torch.exp(torch.arange(half, device=t.device) * -(math.log(10000) / (half - 1)))
        emb = t[:, None] * freq[None, :]
        return torch.cat((emb.sin(), emb.cos()), dim=-1)


class Conv1dBlock(nn.Module):
    def __init__(self, c_in, c_out, k, groups=8):
        super().__init__()
        self.block = nn.Sequential(nn.Conv1d(c_in, c_out, k, padding=k // 2), nn.GroupNorm(groups, c_out), nn.Mish())

    def forward(self, x):
        return self.block(x)


class CondResBlock(nn.Module):
    """diffusion_policy's ConditionalResidualBlock1D: two conv blocks, FiLM from the condition in between."""

    def __init__(self, c_in, c_out, cond_dim, k=5):
        super().__init__()
        self.blocks = nn.ModuleList([Conv1dBlock(c_in, c_out, k), Conv1dBlock(c_out, c_out, k)])
        self.c_out = c_out
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out), nn.Unflatten(-1, (-1, 1)))
        self.residual_conv = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, cond):
        out = self.blocks[0](x)
        embed = self.cond_encoder(cond).reshape(x.shape[0], 2, self.c_out, 1)
        out = self.blocks[1](embed[:, 0] * out + embed[:, 1])
        return out + self.residual_conv(x)


class ConditionalUnet1D(nn.Module):
    """diffusion_policy's ConditionalUnet1D, small: sinusoidal step embedding + MLP, FiLM-conditioned residual
    blocks, GroupNorm, Mish, strided-conv downsampling and transposed-conv upsampling. ``moveaxis``: turn the
    (batch, horizon, action) input around as the original does (exported with negative axes)."""

    def __init__(self, action_dim=2, cond_dim=16, step_dim=32, dims=(32, 64, 128), moveaxis=False):
        super().__init__()
        self.moveaxis = moveaxis
        self.step = nn.Sequential(SinusoidalPosEmb(step_dim), nn.Linear(step_dim, 4 * step_dim), nn.Mish(),
                                  nn.Linear(4 * step_dim, step_dim))
        cd = step_dim + cond_dim
        all_dims = [action_dim, *dims]
        pairs = list(zip(all_dims[:-1], all_dims[1:]))
        self.down = nn.ModuleList(nn.ModuleList([CondResBlock(a, b, cd), CondResBlock(b, b, cd),
                                                 nn.Conv1d(b, b, 3, 2, 1) if i < len(pairs) - 1 else nn.Identity()])
                                  for i, (a, b) in enumerate(pairs))
        self.mid = nn.ModuleList([CondResBlock(dims[-1], dims[-1], cd), CondResBlock(dims[-1], dims[-1], cd)])
        self.up = nn.ModuleList(nn.ModuleList([CondResBlock(2 * b, a, cd), CondResBlock(a, a, cd),
                                               nn.ConvTranspose1d(a, a, 4, 2, 1) if i < len(pairs) - 1
                                               else nn.Identity()])
                                for i, (a, b) in enumerate(reversed(pairs[1:])))
        self.final = nn.Sequential(Conv1dBlock(dims[0], dims[0], 5), nn.Conv1d(dims[0], action_dim, 1))

    def forward(self, sample, timestep, cond):
        x = sample.moveaxis(-1, -2) if self.moveaxis else sample.transpose(1, 2)
        g = torch.cat([self.step(timestep.expand(x.shape[0])), cond], dim=-1)
        skips = []
        for r1, r2, down in self.down:
            x = r2(r1(x, g), g)
            skips.append(x)
            x = down(x)
        for m in self.mid:
            x = m(x, g)
        for r1, r2, up in self.up:
            x = up(r2(r1(torch.cat((x, skips.pop()), dim=1), g), g))
        x = self.final(x)
        return x.moveaxis(-1, -2) if self.moveaxis else x.transpose(1, 2)


UNET_ARGS = (torch.randn(1, 16, 2), torch.tensor([10.0]), torch.randn(1, 16))


def test_diffusion_policy_unet1d_is_counted_exactly(tmp_path):
    model = randomize(ConditionalUnet1D())
    r = count_onnx(export(model, UNET_ARGS, tmp_path / "unet.onnx", opset_version=17))
    assert r.macs == flop_macs(model, *UNET_ARGS) and r.macs_complete
    assert r.params == n_params(model)  # GroupNorm's affine, applied by Mul/Add after InstanceNorm, included
    assert r.constant_elems == 16  # the sinusoidal frequencies, computed in forward


def test_diffusion_policy_unet1d_exported_with_negative_transpose_axes_is_refused(tmp_path):
    """The 0.02x report: moveaxis(-1, -2) exports as Transpose perm=[0, -1, 1], which no runtime loads."""
    path = export(randomize(ConditionalUnet1D(moveaxis=True)), UNET_ARGS, tmp_path / "unet_neg.onnx",
                  opset_version=17)
    with pytest.raises(AnalysisError) as err:
        count_onnx(path)
    text = str(err.value)
    assert "not a valid ONNX model: Transpose '/Transpose' has perm [0, -1, 1]" in text and "\n" not in text
    assert "moveaxis" in text
    ort = pytest.importorskip("onnxruntime")
    with pytest.raises(Exception, match="perm"):
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


# ----------------------------------------------------------------------------- 5. invalid files

def test_an_fp16_conversion_with_a_cast_type_error_is_refused(tmp_path):
    model = randomize(SmallMLP())
    float_path = export(model, (torch.randn(4, 32),), tmp_path / "mlp.onnx", input_names=["x"])
    good = count_onnx(_to_fp16(float_path, tmp_path / "h.onnx"))
    assert good.macs == flop_macs(model, torch.randn(4, 32))
    bad = _to_fp16(float_path, tmp_path / "bad.onnx", stray_cast=True)
    with pytest.raises(AnalysisError) as err:
        analyze_file(bad)
    text = str(err.value)
    assert "not a valid ONNX model: " in text and "Gemm" in text and "type" in text.lower() and "\n" not in text
    ort = pytest.importorskip("onnxruntime")
    with pytest.raises(Exception, match="(?i)type"):
        ort.InferenceSession(str(bad), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("case", ["perm", "cast_to", "attribute", "twice"])
def test_invalid_graphs_are_refused_in_one_line(tmp_path, case):
    x = helper.make_tensor_value_info("x", FLOAT, None)  # no shape: the attribute alone makes it invalid
    node = {"perm": helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 2], name="t"),
            "cast_to": helper.make_node("Cast", ["x"], ["y"], to=99, name="c"),
            "attribute": helper.make_node("Relu", ["x"], ["y"], alpha=1.0, name="r")}.get(case)
    nodes = [node] if node is not None else [helper.make_node("Relu", ["x"], ["y"]),
                                             helper.make_node("Neg", ["x"], ["y"])]
    path = save(nodes, [x], [helper.make_tensor_value_info("y", FLOAT, None)], tmp_path / f"{case}.onnx")
    with pytest.raises(AnalysisError) as err:
        count_onnx(path)
    text = str(err.value)
    assert text.startswith(f"{path}: not a valid ONNX model: ") and "\n" not in text
    assert {"perm": "not a permutation", "cast_to": "data type 99", "attribute": "Unrecognized attribute: alpha",
            "twice": "produces 'y'"}[case] in text


def test_files_a_runtime_loads_are_not_refused(tmp_path):
    """An output declared without a shape (the ONNX checker objects, onnxruntime does not) and a custom-domain op."""
    nodes = [helper.make_node("Gemm", ["a", "B"], ["g"]), helper.make_node("Relu", ["g"], ["y"])]
    path = save(nodes, [helper.make_tensor_value_info("a", FLOAT, [4, 8])],
                [helper.make_tensor_value_info("y", FLOAT, None)], tmp_path / "ok.onnx",
                [helper.make_tensor("B", FLOAT, [8, 6], np.arange(48.0))])
    assert count_onnx(path).macs == 4 * 8 * 6
    ort = pytest.importorskip("onnxruntime")
    ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


# ----------------------------------------------------------------------------- 6. robustness leftovers

def test_folding_skipped_by_the_bound_is_said(tmp_path):
    from tests.hostile.craft import fold_bomb

    r = count_onnx(fold_bomb("constant_of_shape", tmp_path / "bomb.onnx", n=1 << 17))
    assert any(n.startswith("constant folding skipped 1 node(s)") for n in r.notes), r.notes


@pytest.mark.parametrize("meta", ["[" * 100_000, "[" * 3000 + "]" * 3000, "5", "{'a': 1}", "[1, 2]", "'x'",
                                  "['', 1]", "['', 'fc'" + ", 'x'" * 20_000 + "]"])
def test_odd_name_scope_metadata_never_raises(tmp_path, meta):
    node = helper.make_node("Relu", ["x"], ["y"], name="r")
    node.metadata_props.add(key="pkg.torch.onnx.name_scopes", value=meta)
    node.metadata_props.add(key="pkg.torch.onnx.class_hierarchy", value=meta)
    r = count_onnx(save([node], [helper.make_tensor_value_info("x", FLOAT, [2, 3])],
                        [helper.make_tensor_value_info("y", FLOAT, [2, 3])], tmp_path / "m.onnx"))
    assert r.other_flops == 6 and r.census[0].path == ""


def test_small_external_buffers_are_read_to_tell_them_from_parameters(tmp_path):
    """The dynamo exporter stores tensors over 1 KB in a .data file beside the model: a grid buffer there is still
    a constant (its values are read, it being small and no op's weight); a missing file leaves it a parameter."""
    from onnx.external_data_helper import convert_model_to_external_data

    grid = numpy_helper.from_array(np.arange(512, dtype=np.float32).reshape(1, 512), "grid")
    pos = numpy_helper.from_array(np.random.default_rng(2).random((1, 512), dtype=np.float32), "pos")
    nodes = [helper.make_node("Add", ["x", "grid"], ["a"]), helper.make_node("Add", ["a", "pos"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", FLOAT, [1, 512])],
                          [helper.make_tensor_value_info("y", FLOAT, [1, 512])], [grid, pos])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    convert_model_to_external_data(m, location="m.onnx.data", size_threshold=0)
    onnx.save(m, str(tmp_path / "m.onnx"))
    r = count_onnx(tmp_path / "m.onnx")
    assert (r.params, r.constant_elems, r.weight_bytes) == (512, 512, 4 * 1024)
    (tmp_path / "m.onnx.data").unlink()
    r = count_onnx(tmp_path / "m.onnx")
    assert (r.params, r.constant_elems) == (1024, 0)
