"""The op registries (ONNX: formula + kind + MAC flag + shape hook per op; aten: one formula per overload), the
GroupQueryAttention formula checked by hand on graphs onnxruntime runs, and the shared per-element conventions: a
model saved as TorchScript and exported to ONNX reports the same other_flops."""
from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
np = pytest.importorskip("numpy")
nn = torch.nn
F = torch.nn.functional

from onnx import TensorProto, helper  # noqa: E402

from embodied_tui.analysis import conventions as cv  # noqa: E402
from embodied_tui.analysis.api import analyze_file  # noqa: E402
from embodied_tui.analysis.onnx import trace as onnx_trace  # noqa: E402
from embodied_tui.analysis.onnx.counting import count_onnx  # noqa: E402
from embodied_tui.analysis.onnx.formulas import OPS, OpCall, count, kind_of  # noqa: E402
from embodied_tui.analysis.onnx.ops import METADATA_OPS, VIEW_OPS, OpSpec, register, register_uncounted  # noqa: E402
from embodied_tui.analysis.torch import formulas as aten_formulas  # noqa: E402
from embodied_tui.analysis.trace import KINDS  # noqa: E402

aten = torch.ops.aten


# ----------------------------------------------------------------------------- ONNX registry

def registry_problems(ops: dict[str, OpSpec]) -> list[str]:
    """What makes a registry incomplete: a kind or shape hook without a formula, a formula-less op that is not a MAC
    op with a reason, a kind outside trace.KINDS."""
    problems = []
    for op, spec in ops.items():
        if spec.formula is None and (spec.kind != "other" or spec.shape is not None):
            problems.append(f"{op}: kind {spec.kind!r} or a shape hook but no formula")
        if spec.formula is None and not (spec.macs and spec.reason):
            problems.append(f"{op}: no formula, and not a MAC op registered uncounted with a reason")
        if spec.kind not in KINDS:
            problems.append(f"{op}: kind {spec.kind!r} is not a trace kind")
    return problems


def test_onnx_registry_is_complete():
    assert registry_problems(OPS) == []
    for op in VIEW_OPS | METADATA_OPS:  # the op classes the counter treats apart are registered ops
        assert OPS[op].formula is not None, op
    for op in onnx_trace._MATMULS:
        assert OPS[op].macs and OPS[op].formula is not None, op
    # the check catches what it is meant to catch: GroupQueryAttention as it was (a kind and a shape hook, no formula)
    bad = {"GroupQueryAttention": OpSpec("GroupQueryAttention", None, "attention", True, lambda c: [], "")}
    assert len(registry_problems(bad)) == 2


def test_onnx_registry_api():
    spec = OPS["GroupQueryAttention"]
    assert spec.formula is not None and spec.kind == "attention" and spec.macs and spec.shape is not None
    assert kind_of("Conv") == "conv" and kind_of("Softmax") == "softmax" and kind_of("NoSuchOp") == "other"
    assert OPS["Relu"].macs is False and OPS["MatMul"].macs is True
    assert OPS["PackedAttention"].formula is None and OPS["PackedAttention"].macs
    assert len(OPS) > 200


def test_onnx_duplicate_registration_raises():
    relu = OPS["Relu"]
    with pytest.raises(ValueError, match="registered twice"):
        register("Relu")(lambda c: (0, 0))
    with pytest.raises(ValueError, match="registered twice"):
        register_uncounted("Conv", reason="x")
    with pytest.raises(ValueError, match="not registered here"):
        register("ZzNever", kind={"ZzOther": "conv"})(lambda c: (0, 0))
    assert OPS["Relu"] is relu and "ZzNever" not in OPS


def test_mac_op_without_a_formula_is_uncounted_not_zero(tmp_path):
    """A registered MAC op with no formula: macs_complete false and an uncounted entry, never a silent 0."""
    f = TensorProto.FLOAT
    nodes = [helper.make_node("PackedAttention", ["x", "W", "b", "tok", "cum"], ["att"], domain="com.microsoft",
                              num_heads=2, name="/attn/PackedAttention"),
             helper.make_node("Relu", ["x"], ["y"], name="/Relu")]
    g = helper.make_graph(nodes, "packed", [helper.make_tensor_value_info("x", f, [6, 8]),
                                            helper.make_tensor_value_info("tok", TensorProto.INT32, [1, 6]),
                                            helper.make_tensor_value_info("cum", TensorProto.INT32, [2])],
                          [helper.make_tensor_value_info("att", f, None), helper.make_tensor_value_info("y", f, None)],
                          initializer=[helper.make_tensor("W", f, [8, 24], [0.0] * 192),
                                       helper.make_tensor("b", f, [24], [0.0] * 24)])
    path = tmp_path / "packed.onnx"
    onnx.save_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                                        helper.make_opsetid("com.microsoft", 1)]), str(path))
    r = count_onnx(path)
    assert not r.macs_complete and r.macs == 0 and r.other_flops == 6 * 8
    assert [(u.module, u.op) for u in r.uncounted] == [("/attn/PackedAttention", "PackedAttention")]
    assert "MAC op without a formula" in r.uncounted[0].reason
    assert "not counted: PackedAttention x1" in r.notes


# ----------------------------------------------------------------------------- aten registry

def test_aten_registry_one_formula_per_overload():
    assert aten_formulas.FORMULAS[aten.mm.default] is aten_formulas.FORMULAS[aten.mm.out]
    before = dict(aten_formulas.FORMULAS)
    with pytest.raises(ValueError, match="registered twice"):
        aten_formulas.register("mm")(lambda args, kwargs, out: aten_formulas.Cost())
    assert aten_formulas.FORMULAS == before
    assert len({op.overloadpacket for op in aten_formulas.FORMULAS}) > 150


def test_aten_conventions():
    """Per-element constants of the aten table, on meta tensors (conventions shared with ONNX)."""
    x = torch.empty(2, 3, 4, device="meta")
    w = torch.empty(4, device="meta")

    def other(op, *args, **kwargs):
        return aten_formulas.cost_of(op, args, kwargs, op(*args, **kwargs)).other_flops

    assert other(aten._softmax.default, x, -1, False) == 5 * 24
    assert other(aten.gelu.default, x) == 5 * 24
    assert other(aten.gelu.default, x, approximate="tanh") == 9 * 24
    assert other(aten.silu.default, x) == 2 * 24
    assert other(aten.mish.default, x) == 3 * 24
    assert other(aten.sigmoid.default, x) == 24
    assert other(aten.native_layer_norm.default, x, [4], w, w, 1e-5) == 5 * 24
    assert other(aten.native_layer_norm.default, x, [4], None, None, 1e-5) == 4 * 24
    a, b = torch.empty(3, 5, device="meta"), torch.empty(5, 7, device="meta")
    cost = aten_formulas.cost_of(aten.addmm.default, (torch.empty(7, device="meta"), a, b), {}, None)
    assert (cost.macs, cost.other_flops) == (3 * 5 * 7, 3 * 7)  # bias add: 1 per output element
    y = torch.empty(1, 8, 6, 6, device="meta")
    conv = aten_formulas.FORMULAS[aten.convolution.default]
    xin, wt = torch.empty(1, 3, 8, 8, device="meta"), torch.empty(8, 3, 3, 3, device="meta")
    args = [xin, wt, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1]
    assert conv(args, {}, y).other_flops == 0
    args[2] = torch.empty(8, device="meta")
    assert conv(args, {}, y).other_flops == 8 * 36


def test_onnx_fused_activations_count_their_decomposition():
    def other(op, **attrs):
        x = [2, 3, 4]
        n = 2 + (1 if op in ("FastGelu", "BiasGelu") else 0)
        return count(OpCall(op, attrs=attrs, inputs=[x] * n, present=[True] * n, outputs=[x]))[1]

    assert other("Gelu") == cv.GELU * 24 == 5 * 24
    assert other("Gelu", approximate="tanh") == 9 * 24
    assert other("FastGelu") == (9 + 1) * 24
    assert other("BiasGelu") == (5 + 1) * 24
    assert other("QuickGelu") == 3 * 24 and other("Mish") == 3 * 24 and other("Swish") == 2 * 24


# ----------------------------------------------------------------------------- GroupQueryAttention

def gqa_model(b, s, past, nq, nkv, h, *, packed=False, total_input=False, buffer=None):
    """com.microsoft GroupQueryAttention with a KV cache of ``past`` tokens (in a buffer of ``buffer`` rows when the
    cache is a shared max-length buffer), ``s`` new tokens; total_sequence_length a constant or a graph input."""
    f, i32 = TensorProto.FLOAT, TensorProto.INT32
    rows = past if buffer is None else buffer
    qkv = ["q", "", ""] if packed else ["q", "k", "v"]
    ins = [*qkv, "past_k", "past_v", "seqlens_k", "total"]
    node = helper.make_node("GroupQueryAttention", ins, ["y", "present_k", "present_v"], domain="com.microsoft",
                            num_heads=nq, kv_num_heads=nkv, name="/attn/GroupQueryAttention")
    inputs = [helper.make_tensor_value_info("q", f, [b, s, (nq + 2 * nkv) * h if packed else nq * h])]
    if not packed:
        inputs += [helper.make_tensor_value_info(n, f, [b, s, nkv * h]) for n in ("k", "v")]
    inputs += [helper.make_tensor_value_info(n, f, [b, nkv, rows, h]) for n in ("past_k", "past_v")]
    inits = [helper.make_tensor("seqlens_k", i32, [b], [past + s - 1] * b)]
    if total_input:
        inputs.append(helper.make_tensor_value_info("total", i32, []))
    else:
        inits.append(helper.make_tensor("total", i32, [], [past + s]))
    outputs = [helper.make_tensor_value_info("y", f, ["B", "S", "D"])]
    outputs += [helper.make_tensor_value_info(n, f, ["B", "N", "T", "H"]) for n in ("present_k", "present_v")]
    model = helper.make_model(helper.make_graph([node], "gqa", inputs, outputs, initializer=inits),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    onnx.checker.check_model(model)
    feeds = {vi.name: (np.array(past + s, np.int32) if vi.name == "total" else
                       np.random.default_rng(0).random([d.dim_value for d in vi.type.tensor_type.shape.dim],
                                                       dtype=np.float32))
             for vi in inputs}
    return model, feeds


@pytest.mark.parametrize("b, s, past, nq, nkv, h, packed, total_input, buffer", [
    (1, 3, 5, 4, 2, 8, False, False, None),  # prefill of 3 tokens after 5 cached, 2 query heads per KV head
    (1, 3, 5, 4, 2, 8, True, True, None),  # packed QKV, total_sequence_length a runtime input
    (2, 1, 6, 8, 2, 16, False, False, None),  # decode step, batch 2
    (2, 4, 0, 4, 1, 8, False, False, None),  # prompt, empty cache, multi-query (one KV head)
    (1, 3, 5, 4, 2, 8, False, False, 16),  # shared max-length cache buffer of 16 rows holding 5 tokens
])
def test_group_query_attention_by_hand(tmp_path, b, s, past, nq, nkv, h, packed, total_input, buffer):
    """MACs = Q K^T + P V over every query head and the T = past + s keys: 2 * B * Nq * S * T * H, whatever the
    number of KV heads; the causal mask is not subtracted (the full S x T matrix, as FlopCounterMode counts sdpa).
    Shapes match what onnxruntime's CPU kernel returns."""
    ort = pytest.importorskip("onnxruntime")
    model, feeds = gqa_model(b, s, past, nq, nkv, h, packed=packed, total_input=total_input, buffer=buffer)
    path = tmp_path / "gqa.onnx"
    onnx.save_model(model, str(path))
    ran = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
    r = count_onnx(path)
    t = past + s  # keys each query attends (uncached: the causal mask hides some, the kernel computes all)
    assert r.macs == 2 * b * nq * s * t * h and r.macs_complete
    assert r.other_flops == 5 * b * nq * s * t  # softmax over the scores
    assert r.output_shapes == [list(o.shape) for o in ran]
    assert r.uncounted == [] and [op.kind for op in r.trace] == ["attention"]
    assert r.trace[0].attrs == {"heads": nq}


def test_group_query_attention_extras_and_projections(tmp_path):
    """Projection-free: Q/K/V projections are MatMuls of their own; rotary, attention_bias and softcap go to
    other_flops."""
    f = TensorProto.FLOAT
    b, s, d, nq, nkv, h = 1, 4, 64, 4, 2, 16  # rotary needs head_size % 16 == 0
    ins = ["q", "k", "v", "", "", "seqlens_k", "total", "cos", "sin", "", "bias"]
    nodes = [helper.make_node("MatMul", ["x", "Wq"], ["q"], name="/q_proj/MatMul"),
             helper.make_node("MatMul", ["x", "Wk"], ["k"], name="/k_proj/MatMul"),
             helper.make_node("MatMul", ["x", "Wv"], ["v"], name="/v_proj/MatMul"),
             helper.make_node("GroupQueryAttention", ins, ["att"], domain="com.microsoft", num_heads=nq,
                              kv_num_heads=nkv, do_rotary=1, softcap=30.0, name="/attn/GroupQueryAttention"),
             helper.make_node("MatMul", ["att", "Wo"], ["y"], name="/o_proj/MatMul")]
    inits = [helper.make_tensor("Wq", f, [d, nq * h], [0.0] * d * nq * h),
             helper.make_tensor("Wk", f, [d, nkv * h], [0.0] * d * nkv * h),
             helper.make_tensor("Wv", f, [d, nkv * h], [0.0] * d * nkv * h),
             helper.make_tensor("Wo", f, [nq * h, d], [0.0] * nq * h * d),
             helper.make_tensor("seqlens_k", TensorProto.INT32, [b], [s - 1]),
             helper.make_tensor("total", TensorProto.INT32, [], [s]),
             helper.make_tensor("cos", f, [16, h // 2], [1.0] * (16 * h // 2)),
             helper.make_tensor("sin", f, [16, h // 2], [0.0] * (16 * h // 2))]
    g = helper.make_graph(nodes, "gqa", [helper.make_tensor_value_info("x", f, [b, s, d]),
                                         helper.make_tensor_value_info("bias", f, [b, nq, s, s])],
                          [helper.make_tensor_value_info("y", f, ["B", "S", "D"])], initializer=inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    onnx.checker.check_model(model)
    path = tmp_path / "gqa_block.onnx"
    onnx.save_model(model, str(path))
    ort = pytest.importorskip("onnxruntime")
    feeds = {"x": np.ones((b, s, d), np.float32), "bias": np.zeros((b, nq, s, s), np.float32)}
    (ran,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
    r = count_onnx(path)
    proj = b * s * d * (nq * h + 2 * nkv * h) + b * s * nq * h * d
    scores = b * nq * s * s
    assert r.macs == proj + 2 * scores * h and r.macs_complete
    assert r.other_flops == (5 + 1 + 3) * scores + 3 * (b * s * nq * h + b * s * nkv * h)
    assert r.output_shapes == [list(ran.shape)] == [[b, s, d]]


# ----------------------------------------------------------------------------- one convention for torch and ONNX

class Mixed(nn.Module):
    """conv + bias, hardswish, max pool, linear on 3-D tokens (exported as MatMul + Add), layer norm, GELU (erf and
    tanh), softmax attention, sigmoid, tanh, SiLU, Mish, mean, log_softmax, ReLU, global pooling."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc1 = nn.Linear(8, 16)
        self.ln = nn.LayerNorm(16)
        self.fc2 = nn.Linear(16, 16, bias=False)

    def forward(self, img):
        x = F.max_pool2d(F.hardswish(self.conv(img)), 2)
        t = x.flatten(2).transpose(1, 2)
        h = self.ln(F.gelu(self.fc1(t)))
        a = torch.softmax(h @ h.transpose(1, 2), dim=-1) @ h
        y = torch.sigmoid(self.fc2(a)) + torch.tanh(a) + F.silu(a) + F.gelu(a, approximate="tanh") + F.mish(a)
        return F.log_softmax(y.mean(dim=1), dim=-1) + F.adaptive_avg_pool2d(torch.relu(x), 1).flatten(1).sum()


class Folded(nn.Module):
    """The graphs differ: BatchNorm folded into the conv, GroupNorm written as InstanceNormalization + Mul + Add,
    LayerNorm without affine given a scale of ones."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.gn = nn.GroupNorm(2, 8)
        self.ln = nn.LayerNorm(8, elementwise_affine=False)

    def forward(self, img):
        return self.ln(self.gn(self.bn(self.conv(img))))


def both_formats(model, tmp_path, shape):
    torch.manual_seed(0)
    model = model.eval()
    x = torch.randn(*shape)
    pt, ox = tmp_path / "m.pt", tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(model, (x,)).save(str(pt))
        torch.onnx.export(model, (x,), str(ox), dynamo=False, opset_version=17)
    return analyze_file(pt, input_shape=[list(shape)]), analyze_file(ox)


def test_torchscript_and_onnx_report_the_same_other_flops(tmp_path):
    a, b = both_formats(Mixed(), tmp_path, (2, 3, 8, 8))
    assert a.format != b.format
    assert a.macs == b.macs
    assert a.other_flops == b.other_flops
    assert {"Erf", "Softplus", "LayerNormalization", "Softmax", "LogSoftmax"} <= set(b.layers)  # decomposed in ONNX


def test_torchscript_and_onnx_differ_only_where_the_graph_does(tmp_path):
    """The differences analysis.conventions lists, exactly: BN folded (its 2 per element gone, the folded conv's
    bias add, 1, appears); GroupNorm exported as InstanceNormalization (5, its scale of ones) + Mul + Add: 2 more
    per element than torch's group_norm (5); LayerNorm without affine exported with a scale of ones: 5, not 4."""
    a, b = both_formats(Folded(), tmp_path, (2, 3, 8, 8))
    n = 2 * 8 * 8 * 8
    assert a.macs == b.macs and b.bn_folded
    assert b.other_flops - a.other_flops == (-cv.BATCHNORM + cv.BIAS_ADD) * n + 2 * n + (cv.NORM_AFFINE - cv.NORM) * n


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
def test_recurrent_cells_agree_with_and_without_bias(tmp_path, cell):
    for bias in (True, False):
        a, b = both_formats(getattr(nn, cell)(6, 5, batch_first=True, bias=bias), tmp_path, (2, 7, 6))
        gates = cv.GATES[cell.lower()]
        per_unit = cv.CELL[cell.lower()] + (2 * gates if bias else 0)
        assert a.macs == b.macs and a.other_flops == b.other_flops == 2 * 7 * 5 * per_unit
