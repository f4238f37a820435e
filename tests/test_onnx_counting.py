"""ONNX counter: real torch models exported to .onnx in tmp dirs, counted, and checked against hand formulas written
here from the layer hyper-parameters (not from the counter's table)."""
from __future__ import annotations

import math
import warnings

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
nn = torch.nn

from onnx import TensorProto, helper  # noqa: E402

from embodied_tui.analysis.onnx.census import scope_paths  # noqa: E402
from embodied_tui.analysis.onnx.counting import count_onnx  # noqa: E402
from embodied_tui.analysis.onnx.formulas import OpCall, count, einsum  # noqa: E402
from embodied_tui.analysis.trace import KINDS  # noqa: E402
from embodied_tui.errors import AnalysisError  # noqa: E402

# ----------------------------------------------------------------------------- hand formulas (independent)

def out_size(n, k, s=1, p=0, d=1):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def conv2d_macs(n, cin, cout, k, h_out, w_out, groups=1):
    return n * cout * h_out * w_out * (cin // groups) * k * k


def linear_macs(rows, fin, fout):
    return rows * fin * fout


def export(model, args, path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), args, str(path), dynamo=False, **kw)
    return path


# ----------------------------------------------------------------------------- models

class Block(nn.Module):
    """Residual basic block (conv-bn-relu-conv-bn + skip)."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.layer1 = nn.Sequential(Block(16))
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
        self.dw_bn = nn.BatchNorm2d(16)
        self.pw = nn.Conv2d(16, 32, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)
        for m in self.modules():  # distinct statistics: the exporter would merge identical folded biases
            if isinstance(m, nn.BatchNorm2d):
                for t in (m.weight.data, m.bias.data, m.running_mean, m.running_var):
                    t.uniform_(0.5, 1.5)

    def forward(self, x):
        x = self.layer1(self.stem(x))
        x = self.pw(torch.relu(self.dw_bn(self.dw(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def convnet_hand(n=1, hw=32):
    h = out_size(hw, 3, 2, 1)  # stem output 16x16
    macs = conv2d_macs(n, 3, 16, 3, h, h)
    macs += 2 * conv2d_macs(n, 16, 16, 3, h, h)  # block
    macs += conv2d_macs(n, 16, 16, 3, h, h, groups=16)  # depthwise
    macs += conv2d_macs(n, 16, 32, 1, h, h)  # pointwise
    macs += linear_macs(n, 32, 10)
    # BN folded into every bias-free conv: each conv gains a bias of cout
    params = (16 * 3 * 9 + 16) + 2 * (16 * 16 * 9 + 16) + (16 * 9 + 16) + (32 * 16 + 32) + (32 * 10 + 10)
    return macs, params


class TransformerBlock(nn.Module):
    def __init__(self, e=32, heads=4, ff=64):
        super().__init__()
        self.attn = nn.MultiheadAttention(e, heads, batch_first=True)
        self.ln = nn.LayerNorm(e)
        self.ff = nn.Sequential(nn.Linear(e, ff), nn.GELU(), nn.Linear(ff, e))

    def forward(self, x):
        a, _ = self.attn(x, x, x, need_weights=False)
        x = self.ln(x + a)
        return x + self.ff(x)


def transformer_hand(b, s, e=32, ff=64):
    return (linear_macs(b * s, e, 3 * e)  # in_proj (q, k, v)
            + b * s * s * e  # q @ k^T over all heads
            + b * s * s * e  # attn @ v
            + linear_macs(b * s, e, e)  # out_proj
            + linear_macs(b * s, e, ff) + linear_macs(b * s, ff, e))


@pytest.fixture(scope="module")
def convnet_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("convnet") / "convnet.onnx"
    torch.manual_seed(0)
    return export(ConvNet(), (torch.randn(1, 3, 32, 32),), path, input_names=["image"], output_names=["logits"])


# ----------------------------------------------------------------------------- MACs against hand counts

def test_convnet_macs_params_and_bn_folding(convnet_file):
    r = count_onnx(convnet_file)
    macs, params = convnet_hand()
    assert r.macs == macs
    assert r.macs_complete
    assert r.params == params
    assert r.weight_bytes == 4 * params and r.dtype == "float32" and r.dtype_bytes == 4
    assert r.bn_folded  # the legacy exporter folds eval-mode BatchNorm into the convs
    assert "BatchNormalization" not in r.layers and r.layers["Conv"] == 5 and r.layers["Gemm"] == 1
    assert r.input_names == ["image"] and r.input_shapes == [[1, 3, 32, 32]] and r.input_symbols == [[None] * 4]
    assert r.input_dtypes == ["float32"] and r.output_names == ["logits"] and r.output_shapes == [[1, 10]]
    # the torch module agrees too (FlopCounterMode counts 2 FLOPs per MAC of conv/linear)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        ConvNet().eval()(torch.randn(1, 3, 32, 32))
    assert r.macs == counter.get_total_flops() // 2
    # fused lower bound: weights + input + output, all float32
    assert r.fused_bytes == 4 * (params + 3 * 32 * 32 + 10)
    assert r.unfused_bytes > r.fused_bytes and r.activation_bytes_total > r.activation_bytes > 0


def test_convnet_trace_and_layer_costs(convnet_file):
    r = count_onnx(convnet_file)
    assert {op.kind for op in r.trace} <= KINDS
    convs = [op for op in r.trace if op.kind == "conv"]
    assert [(c.attrs["in_channels"], c.attrs["out_channels"], c.attrs["groups"]) for c in convs] == [
        (3, 16, 1), (16, 16, 1), (16, 16, 1), (16, 16, 16), (16, 32, 1)]
    assert convs[0].attrs["stride"] == [2, 2] and convs[0].attrs["kernel"] == [3, 3]
    assert convs[0].inputs[0] == -1 and convs[0].inputs[1] == -2
    for op in r.trace:
        assert op.index == r.trace.index(op)
        assert all(-2 <= i < op.index for i in op.inputs)
    adds = [op for op in r.trace if op.kind == "add"]
    assert len(adds) == 1 and len([i for i in adds[0].inputs if i >= 0]) == 2  # the residual joins two branches
    assert sum(op.macs for op in r.trace) == r.macs
    assert sum(lc.macs for lc in r.layer_costs) == r.macs
    assert sum(lc.other_flops for lc in r.layer_costs) == r.other_flops
    dw = next(lc for lc in r.layer_costs if lc.type == "Conv" and lc.weight_elems == 16 * 9 + 16)
    assert dw.macs == conv2d_macs(1, 16, 16, 3, 16, 16, groups=16)
    assert dw.read_elems == 16 * 16 * 16 and dw.write_elems == 16 * 16 * 16 and dw.output_shape == [1, 16, 16, 16]


def test_census_tree_from_name_scopes(convnet_file):
    r = count_onnx(convnet_file)
    by_path = {c.path: c for c in r.census}
    for p in ("", "stem", "stem.0", "layer1", "layer1.0", "layer1.0.conv1", "layer1.0.conv2", "dw", "pw", "fc"):
        assert p in by_path, p
    h = 16
    assert by_path["layer1.0.conv1"].macs == conv2d_macs(1, 16, 16, 3, h, h)
    assert by_path["layer1.0.conv1"].params == 16 * 16 * 9 + 16
    assert by_path["layer1"].macs == by_path["layer1.0"].macs == 2 * conv2d_macs(1, 16, 16, 3, h, h)
    assert by_path["layer1"].params == 2 * (16 * 16 * 9 + 16)
    assert by_path[""].params == r.params and by_path[""].macs == r.macs
    assert by_path["fc"].output_shape == [1, 10]
    assert by_path["layer1"].children == 1 and by_path["layer1.0"].children >= 2
    assert scope_paths(["enc.0", "seq", "seq.0", "seq.0.0"]) == ["enc.0", "enc.0.seq", "enc.0.seq.0", "enc.0.seq.0.0"]


def test_transformer_block_macs(tmp_path):
    b, s, e = 2, 10, 32
    r = count_onnx(export(TransformerBlock(e), (torch.randn(b, s, e),), tmp_path / "tf.onnx", input_names=["x"]))
    assert r.macs == transformer_hand(b, s, e) and r.macs_complete
    assert r.output_shapes == [[b, s, e]] and r.input_shape_source == "file"
    assert r.layers["Softmax"] == 1 and r.layers["LayerNormalization"] == 1
    kinds = [op.kind for op in r.trace]
    assert kinds.count("softmax") == 1 and kinds.count("layernorm") == 1 and "gelu" in kinds
    assert [op.macs for op in r.trace if op.kind == "matmul"] == [b * s * s * e, b * s * s * e]
    assert not any("unknown" in n or "conflict" in n for n in r.notes)


class SelfAttention(nn.Module):
    """Attention whose reshapes follow the input's shape, so a legacy export stays dynamic in batch and sequence."""

    def __init__(self, e=32, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(e, 3 * e)
        self.out = nn.Linear(e, e)

    def forward(self, x):
        b, s, e = x.shape
        q, k, v = self.qkv(x).reshape(b, s, 3, self.heads, e // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(e // self.heads), dim=-1)
        return self.out((att @ v).transpose(1, 2).reshape(b, s, e))


def test_symbolic_sequence_and_user_override_redo_inference(tmp_path):
    e = 32
    path = export(SelfAttention(e), (torch.randn(2, 10, e),), tmp_path / "sa.onnx", input_names=["x"],
                  dynamic_axes={"x": {0: "batch", 1: "seq"}})

    def hand(b, s):
        return linear_macs(b * s, e, 3 * e) + 2 * b * s * s * e + linear_macs(b * s, e, e)

    r = count_onnx(path)
    assert r.input_shapes == [[1, 1, e]] and r.input_symbols == [["batch", "seq", None]]
    assert r.input_shape_source == "inferred"  # 'seq' is not a batch dim: counted at 1, and said so
    assert any("'seq'" in n for n in r.notes)
    assert r.macs == hand(1, 1)
    r = count_onnx(path, input_shapes=[[3, 7, e]])
    assert r.input_shape_source == "user" and r.output_shapes == [[3, 7, e]]
    assert r.macs == hand(3, 7) and r.macs_complete  # the s^2 attention term needs shapes re-inferred
    assert not any("unknown" in n or "conflict" in n for n in r.notes)


def test_fixed_size_export_counted_at_other_size_is_flagged(tmp_path):
    """nn.MultiheadAttention's legacy export bakes the example's sizes into reshape constants."""
    path = export(TransformerBlock(32), (torch.randn(2, 10, 32),), tmp_path / "tf.onnx", input_names=["x"],
                  dynamic_axes={"x": {0: "batch", 1: "seq"}})
    r = count_onnx(path)
    assert any(n.startswith("shape conflict") for n in r.notes)
    assert not any(n.startswith("shape conflict") for n in count_onnx(path, input_shapes=[[2, 10, 32]]).notes)


def test_lstm_macs(tmp_path):
    seq, batch, d_in, hidden = 7, 2, 6, 5

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(d_in, hidden, num_layers=2, bidirectional=True)
            self.head = nn.Linear(2 * hidden, 3)

        def forward(self, x):
            return self.head(self.rnn(x)[0])

    r = count_onnx(export(Net(), (torch.randn(seq, batch, d_in),), tmp_path / "lstm.onnx"))
    per_dir = [4 * hidden * (d_in + hidden), 4 * hidden * (2 * hidden + hidden)]  # 4 gates, layer 2 reads 2H
    assert r.macs == seq * batch * 2 * sum(per_dir) + linear_macs(seq * batch, 2 * hidden, 3)
    assert r.layers["LSTM"] == 2
    lstm = [op for op in r.trace if op.kind == "lstm"]
    assert len(lstm) == 2 and lstm[0].attrs == {"hidden": hidden, "bidirectional": True}
    assert r.params == sum(p.numel() for p in Net().parameters())


def test_conv_transpose_decoder_macs(tmp_path):
    dec = nn.Sequential(nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1), nn.SiLU(),
                        nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, groups=2))
    r = count_onnx(export(dec, (torch.randn(1, 8, 5, 5),), tmp_path / "dec.onnx"))
    # per input element: (Cout / groups) * k * k
    assert r.macs == 1 * 8 * 5 * 5 * 4 * 16 + 1 * 4 * 10 * 10 * (2 // 2) * 9
    assert r.output_shapes == [[1, 2, 20, 20]]
    ct = [op for op in r.trace if op.kind == "conv_transpose"]
    assert [(o.attrs["in_channels"], o.attrs["out_channels"], o.attrs["groups"]) for o in ct] == [(8, 4, 1), (4, 2, 2)]
    assert r.params == sum(p.numel() for p in dec.parameters())
    kinds = [op.kind for op in r.trace]
    assert kinds == ["conv_transpose", "silu", "conv_transpose"]  # x * sigmoid(x) is one silu
    assert r.trace[2].inputs[0] == 1 and r.trace[1].inputs == [0]


def test_grouped_dilated_and_1d_3d_convs(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c2 = nn.Conv2d(8, 16, 3, dilation=2, groups=4, padding=1, stride=2)
            self.c1 = nn.Conv1d(4, 6, 5, dilation=3, groups=2)
            self.c3 = nn.Conv3d(2, 4, (2, 3, 3), stride=(1, 2, 2))

        def forward(self, x, y, z):
            return self.c2(x), self.c1(y), self.c3(z)

    r = count_onnx(export(Net(), (torch.randn(2, 8, 19, 19), torch.randn(1, 4, 40), torch.randn(1, 2, 6, 9, 9)),
                          tmp_path / "g.onnx"))
    h = out_size(19, 3, 2, 1, 2)
    l1 = out_size(40, 5, 1, 0, 3)
    d3, h3 = out_size(6, 2), out_size(9, 3, 2)
    want = conv2d_macs(2, 8, 16, 3, h, h, groups=4) + 1 * 6 * l1 * (4 // 2) * 5 + 1 * 4 * d3 * h3 * h3 * 2 * 2 * 3 * 3
    assert r.macs == want
    assert r.output_shapes == [[2, 16, h, h], [1, 6, l1], [1, 4, d3, h3, h3]]


def test_einsum_and_matmul_broadcast(tmp_path):
    class Net(nn.Module):
        def forward(self, a, b, c, d, v):
            return (torch.einsum("bij,bjk->bik", a, b), torch.matmul(c, d), torch.matmul(c[0, 0], v),
                    torch.einsum("bhqd,bhkd->bhqk", a.unsqueeze(1), a.unsqueeze(1)))

    a, b = torch.randn(3, 4, 5), torch.randn(3, 5, 6)
    c, d, v = torch.randn(2, 1, 4, 5), torch.randn(3, 5, 7), torch.randn(5)
    r = count_onnx(export(Net(), (a, b, c, d, v), tmp_path / "e.onnx"))
    assert r.layers.get("Einsum") == 2
    want = (3 * 4 * 5 * 6  # b i j k
            + 2 * 3 * 4 * 5 * 7  # broadcast batch (2, 3) x M 4 x K 5 x N 7
            + 4 * 5  # matrix @ vector
            + 3 * 1 * 4 * 4 * 5)  # b h q k d
    assert r.macs == want
    assert r.output_shapes[1] == [2, 3, 4, 7]
    # ellipsis and implicit output, straight through the formula
    call = OpCall("Einsum", attrs={"equation": "...ij,...jk"}, inputs=[[2, 3, 4, 5], [3, 5, 6]], present=[True] * 2)
    assert einsum(call) == (2 * 3 * 4 * 5 * 6, 0)


# ----------------------------------------------------------------------------- shapes: symbols, user override

def test_symbolic_batch_and_user_override(tmp_path):
    torch.manual_seed(0)
    path = export(ConvNet(), (torch.randn(2, 3, 32, 32),), tmp_path / "dyn.onnx", input_names=["image"],
                  dynamic_axes={"image": {0: "batch"}})
    r = count_onnx(path)
    macs, params = convnet_hand(1)
    assert r.input_shapes == [[1, 3, 32, 32]] and r.input_symbols == [["batch", None, None, None]]
    assert r.input_shape_source == "file" and r.macs == macs and r.params == params
    assert r.output_shapes == [[1, 10]]
    r4 = count_onnx(path, input_shapes=[[4, 3, 64, 64]])
    assert r4.input_shape_source == "user" and r4.input_shapes == [[4, 3, 64, 64]]
    assert r4.macs == convnet_hand(4, 64)[0] and r4.output_shapes == [[4, 10]]
    # a fixed file shape is overridden too (value_info of the old size must not win)
    fixed = export(ConvNet(), (torch.randn(1, 3, 32, 32),), tmp_path / "fixed.onnx")
    assert count_onnx(fixed, input_shapes=[[2, 3, 48, 48]]).macs == convnet_hand(2, 48)[0]
    with pytest.raises(AnalysisError, match="input shape"):
        count_onnx(path, input_shapes=[[1, 3, 32, 32], [1]])
    with pytest.raises(AnalysisError, match="rank 4"):
        count_onnx(path, input_shapes=[[1, 3, 32]])


# ----------------------------------------------------------------------------- external data

def test_external_data_present_and_missing(convnet_file, tmp_path):
    m = onnx.load(str(convnet_file))
    ext = tmp_path / "ext.onnx"
    onnx.save_model(m, str(ext), save_as_external_data=True, all_tensors_to_one_file=True, location="w.bin",
                    size_threshold=0)
    base = count_onnx(convnet_file)
    r = count_onnx(ext)
    assert r.external_data == ["w.bin"] and r.external_data_missing == []
    assert r.external_data_bytes == (tmp_path / "w.bin").stat().st_size > 0
    (tmp_path / "w.bin").unlink()
    gone = count_onnx(ext)
    assert gone.external_data_missing == ["w.bin"] and gone.external_data_bytes == 0
    assert any("missing" in n and "w.bin" in n for n in gone.notes)
    for field in ("params", "weight_bytes", "macs", "other_flops", "unfused_bytes", "fused_bytes",
                  "activation_bytes", "activation_bytes_total", "output_shapes", "layers", "bn_folded"):
        assert getattr(gone, field) == getattr(base, field) == getattr(r, field), field
    assert [c.model_dump() for c in gone.census] == [c.model_dump() for c in base.census]


# ----------------------------------------------------------------------------- bytes and live memory (hand graph)

def _save(graph, path, opset=17, extra=()):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), *extra])
    onnx.save_model(model, str(path))
    return path


def test_live_memory_and_bytes_on_a_chain(tmp_path):
    """x -> MatMul(W1) -> a -> Relu -> b -> Reshape (view) -> b2 -> MatMul(W2) -> y, all float16."""
    f16 = TensorProto.FLOAT16
    w1 = helper.make_tensor("W1", f16, [100, 300], [0.0] * 30000)
    w2 = helper.make_tensor("W2", f16, [300, 50], [0.0] * 15000)
    shape = helper.make_tensor("shp", TensorProto.INT64, [2], [1, 300])
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["a"], name="/l1/MatMul"),
             helper.make_node("Relu", ["a"], ["b"], name="/act/Relu"),
             helper.make_node("Reshape", ["b", "shp"], ["b2"], name="/Reshape"),
             helper.make_node("MatMul", ["b2", "W2"], ["y"], name="/l2/MatMul")]
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", f16, [1, 100])],
                          [helper.make_tensor_value_info("y", f16, None)], initializer=[w1, w2, shape])
    r = count_onnx(_save(g, tmp_path / "chain.onnx"))
    x, a, b, y = 100 * 2, 300 * 2, 300 * 2, 50 * 2  # bytes at float16
    assert r.dtype == "float16" and r.dtype_bytes == 2
    assert r.params == 30000 + 15000 and r.weight_bytes == 2 * 45000
    assert r.macs == 100 * 300 + 300 * 50 and r.other_flops == 300  # Relu: one per element
    assert r.activation_bytes == max(x + a, a + b, b + y)  # the view shares b's buffer
    assert r.activation_bytes_total == a + b + y
    assert r.unfused_bytes == (x + 60000 + a) + (a + b) + 0 + (b + 30000 + y)
    assert r.fused_bytes == 90000 + x + y
    assert r.output_shapes == [[1, 50]]
    assert [lc.name for lc in r.layer_costs] == ["/l1/MatMul", "/act/Relu", "/l2/MatMul"]  # the view costs nothing
    assert any("int64" in n for n in r.notes)  # the reshape target is shape data, not a parameter
    assert [op.kind for op in r.trace] == ["linear", "relu", "reshape", "linear"]
    assert [op.inputs for op in r.trace] == [[-1, -2], [0], [1, -2], [2, -2]]


def test_quantized_weight_dequantized_in_graph(tmp_path):
    """QDQ: an int8 weight feeds DequantizeLinear; the MatMul reads the int8 bytes, the DQ is folded."""
    f = TensorProto.FLOAT
    inits = [helper.make_tensor("Wq", TensorProto.INT8, [8, 4], [1] * 32),
             helper.make_tensor("s", f, [], [0.1]), helper.make_tensor("zp", TensorProto.INT8, [], [0])]
    nodes = [helper.make_node("DequantizeLinear", ["Wq", "s", "zp"], ["W"]),
             helper.make_node("MatMul", ["x", "W"], ["y"], name="/fc/MatMul")]
    g = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", f, [3, 8])],
                          [helper.make_tensor_value_info("y", f, None)], initializer=inits)
    r = count_onnx(_save(g, tmp_path / "qdq.onnx"))
    # the scale and zero point are quantisation data: stored (weight_bytes), not parameters
    assert r.params == 32 and r.weight_bytes == 32 + 4 + 1 and (r.constant_elems, r.constant_bytes) == (2, 5)
    assert r.dtype == "int8" and r.dtype_bytes == 1
    assert r.macs == 3 * 8 * 4 and r.layers == {"MatMul": 1}
    (lc,) = r.layer_costs
    assert (lc.weight_elems, lc.read_elems, lc.write_elems) == (34, 24, 12)
    assert r.unfused_bytes == 37 + 4 * (24 + 12)
    assert [op.kind for op in r.trace] == ["linear"] and r.census[0].params == 32
    assert lc.precision == "int8"


def test_gemm_transposes_and_unknown_op(tmp_path):
    f = TensorProto.FLOAT
    nodes = [helper.make_node("Gemm", ["a", "B", "C"], ["g"], transA=1, transB=1, name="/fc/Gemm"),
             helper.make_node("Foo", ["g"], ["h"], domain="my.ops", name="/foo/Foo"),
             helper.make_node("Relu", ["h"], ["y"], name="/Relu")]
    inits = [helper.make_tensor("B", f, [6, 8], [0.0] * 48), helper.make_tensor("C", f, [6], [0.0] * 6)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", f, [8, 4])],
                          [helper.make_tensor_value_info("y", f, None)], initializer=inits)
    r = count_onnx(_save(g, tmp_path / "u.onnx", extra=[helper.make_opsetid("my.ops", 1)]))
    assert r.macs == 4 * 8 * 6  # M=4 (A^T), K=8, N=6 (B^T)
    assert r.other_flops == 4 * 6  # the bias add; Foo and the Relu behind it are not counted
    assert "not counted: Foo x1" in r.notes
    assert any("unknown" in n and "Foo x1" in n for n in r.notes)
    # Foo has no formula; the Relu behind it has one but no shape: both are listed, with their bytes
    assert [(u.op, u.bytes) for u in r.uncounted] == [("Foo", 4 * 6 * 4), ("Relu", 0)]
    assert "shape unknown" in r.uncounted[1].reason
    assert r.trace[0].attrs == {"in_features": 8, "out_features": 6}


def test_microsoft_multihead_attention_shapes_flow_on(tmp_path):
    f = TensorProto.FLOAT
    b, s, length, d = 2, 10, 12, 32
    nodes = [helper.make_node("MultiHeadAttention", ["q", "k", "v"], ["att"], domain="com.microsoft", num_heads=4),
             helper.make_node("MatMul", ["att", "W"], ["y"])]
    g = helper.make_graph(nodes, "mha", [helper.make_tensor_value_info("q", f, [b, s, d]),
                                         helper.make_tensor_value_info("k", f, [b, length, d]),
                                         helper.make_tensor_value_info("v", f, [b, length, d])],
                          [helper.make_tensor_value_info("y", f, None)],
                          initializer=[helper.make_tensor("W", f, [d, 16], [0.0] * d * 16)])
    r = count_onnx(_save(g, tmp_path / "mha.onnx", extra=[helper.make_opsetid("com.microsoft", 1)]))
    assert r.macs == b * s * length * d * 2 + b * s * d * 16
    assert r.output_shapes == [[b, s, 16]] and r.macs_complete
    assert [op.kind for op in r.trace] == ["attention", "linear"] and r.trace[0].attrs == {"heads": 4}


def test_onnx_attention_op_grouped_query(tmp_path):
    """ai.onnx Attention (opset 23), 4-D, 4 query heads sharing 2 key/value heads."""
    f = TensorProto.FLOAT
    b, hq, hkv, s, length, dh, dv = 2, 4, 2, 10, 12, 8, 16
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"])
    g = helper.make_graph([node], "att", [helper.make_tensor_value_info("q", f, [b, hq, s, dh]),
                                          helper.make_tensor_value_info("k", f, [b, hkv, length, dh]),
                                          helper.make_tensor_value_info("v", f, [b, hkv, length, dv])],
                          [helper.make_tensor_value_info("y", f, None)])
    r = count_onnx(_save(g, tmp_path / "att.onnx", opset=23))
    assert r.macs == b * hq * s * length * dh + b * hq * s * length * dv
    assert r.output_shapes == [[b, hq, s, dv]]


def test_other_flops_conventions():
    """The stated per-element conventions of onnx_formulas (documented there)."""
    def call(op, ins, outs, **attrs):
        return OpCall(op, attrs=attrs, inputs=ins, present=[True] * len(ins), outputs=outs)

    x = [2, 8, 6, 6]
    assert count(call("MaxPool", [x], [[2, 8, 3, 3]], kernel_shape=[2, 2])) == (0, 2 * 8 * 3 * 3 * 4)
    assert count(call("GlobalAveragePool", [x], [[2, 8, 1, 1]])) == (0, 2 * 8 * 36)
    assert count(call("BatchNormalization", [x, [8], [8], [8], [8]], [x])) == (0, 2 * 576)
    assert count(call("LayerNormalization", [x, [6]], [x])) == (0, 5 * 576)
    assert count(call("Softmax", [x], [x])) == (0, 5 * 576)
    assert count(call("Add", [x, [6]], [x])) == (0, 576)
    assert count(call("Sum", [x, x, x], [x])) == (0, 2 * 576)
    assert count(call("Resize", [x], [[2, 8, 12, 12]], mode="linear")) == (0, 2 * 8 * 144 * 4)
    assert count(call("Resize", [x], [[2, 8, 12, 12]], mode="nearest")) == (0, 0)
    assert count(call("Transpose", [x], [x])) == (0, 0)
    assert count(call("NoSuchOp", [x], [x])) is None
    # GRU: 3 gates * hidden * (input + hidden) per step and direction
    assert count(call("GRU", [[5, 2, 4], [1, 9, 4], [1, 9, 3]], [None], hidden_size=3))[0] == 5 * 2 * 3 * 3 * (4 + 3)


@pytest.mark.slow
def test_dynamo_exporter_convnet(tmp_path):
    """torch's default (dynamo) exporter: fused conv+bn, name_scopes metadata, external data by default."""
    torch.manual_seed(0)
    path = tmp_path / "dyn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(ConvNet().eval(), (torch.randn(2, 3, 32, 32),), str(path), dynamo=True,
                          dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, verbose=False)
    r = count_onnx(path)
    macs, params = convnet_hand(1)
    assert r.macs == macs and r.params == params and r.bn_folded
    assert r.input_shapes == [[1, 3, 32, 32]] and r.input_symbols[0][0] == "batch"
    by_path = {c.path: c for c in r.census}
    assert by_path[""].type == "ConvNet" and by_path["layer1.0"].type == "Block" and by_path["fc"].type == "Linear"
    assert by_path["layer1.0.conv1"].macs == conv2d_macs(1, 16, 16, 3, 16, 16)
    assert "global_pool" in [op.kind for op in r.trace]


def test_bad_files(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a model at all" * 10)
    with pytest.raises(AnalysisError, match="junk.onnx"):
        count_onnx(junk)
    with pytest.raises(AnalysisError, match="no such file"):
        count_onnx(tmp_path / "absent.onnx")
