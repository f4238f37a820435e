"""ONNX control flow (If, Loop, Scan): real models built with onnx.helper (and one torch.jit.script export), checked to
run in onnxruntime, counted, and compared with MACs and parameters worked out here by hand from the shapes."""
from __future__ import annotations

import math
import warnings

import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
np = pytest.importorskip("numpy")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

from embodied_tui.analysis.onnx.counting import count_onnx  # noqa: E402

RNG = np.random.default_rng(0)


# ----------------------------------------------------------------------------- hand formulas and builders

def matmul_macs(m, k, n):
    return m * k * n


def conv_macs(n, cin, cout, k, h_out, w_out):
    return n * cout * h_out * w_out * cin * k * k


def weight(name, *shape):
    return numpy_helper.from_array(RNG.standard_normal(shape).astype(np.float32), name)


def const(name, value, dtype):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(value, dtype=dtype)))


def vi(name, elem=T.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def save(tmp_path, name, nodes, inputs, outputs, inits=()):
    model = helper.make_model(helper.make_graph(nodes, name, inputs, outputs, list(inits)),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def run(path, feeds):
    """Run the model in onnxruntime (proving it is a valid model); the output shapes."""
    return [list(o.shape) for o in ort.InferenceSession(str(path)).run(None, feeds)]


def by_name(items, attr="name"):
    return {getattr(i, attr): i for i in items}


def loop_body_cond():
    """A Loop body's iteration number and condition inputs, and the condition passed straight on."""
    return ([vi("i", T.INT64, []), vi("cond_in", T.BOOL, [])],
            helper.make_node("Identity", ["cond_in"], ["cond_out"]), vi("cond_out", T.BOOL, []))


# ----------------------------------------------------------------------------- Loop

def conv_loop(tmp_path, name, trip_input: bool):
    """x (1,4,8,8) -> Loop[ h = Relu(Conv3x3(h) + b) ; scan out h ] -> GlobalAveragePool -> Flatten -> Gemm(4->10).
    The conv weights live in the body; the trip count is an initializer (4) or a graph input. The body's carried input
    is declared at the export size (1,4,8,8), as exporters do."""
    ins, cond_node, cond_out = loop_body_cond()
    body = helper.make_graph(
        [cond_node,
         helper.make_node("Conv", ["h", "cw", "cb"], ["c"], name="conv", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
         helper.make_node("Relu", ["c"], ["h2"], name="relu"),
         helper.make_node("Identity", ["h2"], ["y"], name="emit")],
        "body", ins + [vi("h", T.FLOAT, [1, 4, 8, 8])], [cond_out, vi("h2"), vi("y")],
        [weight("cw", 4, 4, 3, 3), weight("cb", 4)])
    nodes = [const("cond", True, np.bool_),
             helper.make_node("Loop", ["M", "cond", "x"], ["hN", "ys"], name="loop", body=body),
             helper.make_node("GlobalAveragePool", ["hN"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "fw"], ["out"], name="fc")]
    inputs = [vi("x", T.FLOAT, ["batch", 4, 8, 8])]
    inits = [weight("fw", 4, 10)]
    if trip_input:
        inputs.append(vi("M", T.INT64, []))
    else:
        inits.append(numpy_helper.from_array(np.array(4, dtype=np.int64), "M"))
    return save(tmp_path, name, nodes, inputs, [vi("out", T.FLOAT, ["n", "k"]), vi("ys", T.FLOAT, list("abcde"))],
                inits)


def test_loop_with_constant_trip_count_counts_the_body_per_iteration(tmp_path):
    path = conv_loop(tmp_path, "loop_const", trip_input=False)
    shapes = run(path, {"x": np.ones((1, 4, 8, 8), np.float32)})
    c = count_onnx(path)

    body = conv_macs(1, 4, 4, 3, 8, 8)  # one iteration
    fc = matmul_macs(1, 4, 10)
    assert c.macs == 4 * body + fc  # the Gemm after the loop is counted too: the loop's output shape was given
    assert c.macs_complete and not c.uncounted
    assert c.params == 4 * 4 * 3 * 3 + 4 + 4 * 10  # inner conv weight and bias count once
    assert c.output_shapes == shapes == [[1, 10], [4, 1, 4, 8, 8]]
    assert any("Loop loop: body counted x4" in n for n in c.notes)
    assert any(n.startswith("control flow:") for n in c.notes)

    layers = by_name(c.layer_costs)
    conv = layers["/loop/body/conv"]
    assert (conv.macs, conv.launches, conv.output_shape) == (4 * body, 4, [1, 4, 8, 8])
    relu = layers["/loop/body/relu"]
    assert (relu.launches, relu.write_elems) == (4, 4 * (1 * 4 * 8 * 8))  # each iteration writes its output
    assert layers["fc"].launches == 1 and layers["fc"].macs == fc
    census = by_name(c.census, "path")
    assert census["loop"].macs == census["loop.body"].macs == 4 * body
    assert census["loop.body"].params == 4 * 4 * 3 * 3 + 4
    assert census[""].macs == c.macs
    assert sum(lc.macs for lc in c.layer_costs) == c.macs
    assert c.layers["Conv"] == 1 and c.layers["Loop"] == 1  # a layer is counted once, not per iteration
    conv_op = next(t for t in c.trace if t.owner == "/loop/body/conv")
    assert conv_op.kind == "conv" and conv_op.inputs[0] == -1  # the body's state reads the loop's input x


def test_user_input_shape_reaches_the_loop_body(tmp_path):
    path = conv_loop(tmp_path, "loop_batch", trip_input=False)
    shapes = run(path, {"x": np.ones((3, 4, 8, 8), np.float32)})
    c = count_onnx(path, input_shapes=[[3, 4, 8, 8]])
    assert c.macs == 4 * conv_macs(3, 4, 4, 3, 8, 8) + matmul_macs(3, 4, 10)
    assert c.output_shapes == shapes


def test_loop_with_data_dependent_trip_count_counts_the_body_once(tmp_path):
    path = conv_loop(tmp_path, "loop_dyn", trip_input=True)
    shapes = run(path, {"x": np.ones((1, 4, 8, 8), np.float32), "M": np.array(3, np.int64)})
    c = count_onnx(path)
    assert c.macs == conv_macs(1, 4, 4, 3, 8, 8) + matmul_macs(1, 4, 10)
    assert not c.macs_complete
    assert [(u.module, u.op) for u in c.uncounted] == [("loop", "Loop")]
    assert "trip count is data-dependent; body counted once" in c.uncounted[0].reason
    assert any(n == "Loop loop: trip count is data-dependent; body counted once" for n in c.notes)
    assert c.output_shapes[0] == shapes[0]
    assert by_name(c.layer_costs)["/loop/body/conv"].launches == 1


def test_torch_scripted_loops(tmp_path):
    """torch.jit.script + torch.onnx.export: a loop over a tensor input (data-dependent) and one over x.size(0)
    (a trip count the counter derives from the static shape)."""
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(8, 8)

        def forward(self, x, steps: torch.Tensor):
            for _ in range(int(steps)):
                x = torch.relu(self.fc(x))
            for _ in range(x.size(0)):
                x = x + self.fc(x)
            return x

    x, steps = torch.randn(2, 8), torch.tensor(3)
    path = tmp_path / "scripted.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = torch.jit.script(Net().eval())
        torch.onnx.export(net, (x, steps), str(path), dynamo=False, input_names=["x", "steps"])
    got = ort.InferenceSession(str(path)).run(None, {"x": x.numpy(), "steps": steps.numpy()})[0]
    np.testing.assert_allclose(got, net(x, steps).detach().numpy(), rtol=1e-4, atol=1e-5)
    loops = [n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Loop"]
    assert len(loops) == 2

    c = count_onnx(path)
    linear = matmul_macs(2, 8, 8)
    assert c.macs == linear + 2 * linear  # first loop once (trip count unknown), second x2 (x.size(0))
    assert c.params == 8 * 8 + 8
    assert not c.macs_complete and [u.module for u in c.uncounted] == [loops[0]]
    assert any(f"Loop {loops[1]}: body counted x2" in n for n in c.notes)
    assert c.output_shapes == [[2, 8]]
    wide = count_onnx(path, input_shapes=[[5, 8], []])  # x.size(0) follows the user's shape
    assert wide.macs == matmul_macs(5, 8, 8) + 5 * matmul_macs(5, 8, 8)


# ----------------------------------------------------------------------------- If

def if_model(tmp_path, name, cond_node):
    """then: x(2,8) @ W1(8,16) @ W2(16,16); else: x @ W3(8,16). Each branch holds its own weights."""
    then_g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["t1"], name="mm1"),
         helper.make_node("MatMul", ["t1", "w2"], ["t2"], name="mm2")],
        "then", [], [vi("t2", T.FLOAT, [2, 16])], [weight("w1", 8, 16), weight("w2", 16, 16)])
    else_g = helper.make_graph([helper.make_node("MatMul", ["x", "w3"], ["e1"], name="mm")],
                               "else", [], [vi("e1", T.FLOAT, [2, 16])], [weight("w3", 8, 16)])
    nodes = [cond_node, helper.make_node("If", ["c"], ["y"], name="if", then_branch=then_g, else_branch=else_g),
             helper.make_node("Relu", ["y"], ["out"], name="relu")]
    inputs = [vi("x", T.FLOAT, [2, 8])]
    if cond_node.op_type != "Constant":
        inputs.append(vi("flag", T.FLOAT, []))
    return save(tmp_path, name, nodes, inputs, [vi("out", T.FLOAT, [2, 16])])


def test_if_with_data_dependent_condition_counts_the_larger_branch(tmp_path):
    path = if_model(tmp_path, "if_dyn", helper.make_node("Cast", ["flag"], ["c"], name="cast", to=T.BOOL))
    x = np.ones((2, 8), np.float32)
    for flag in (0.0, 1.0):
        assert run(path, {"x": x, "flag": np.array(flag, np.float32)}) == [[2, 16]]
    c = count_onnx(path)

    then_macs = matmul_macs(2, 8, 16) + matmul_macs(2, 16, 16)
    else_macs = matmul_macs(2, 8, 16)
    assert then_macs > else_macs
    assert c.macs == then_macs and c.macs_complete and not c.uncounted
    assert c.params == 8 * 16 + 16 * 16 + 8 * 16  # both branches' weights are in the file
    note = next(n for n in c.notes if n.startswith("If if:"))
    assert "data-dependent" in note and "then branch" in note and "upper bound" in note
    assert f"then {then_macs:,} MACs" in note and f"else {else_macs:,} MACs" in note
    census = by_name(c.census, "path")
    assert census["if.then"].macs == census["if"].macs == then_macs
    assert "if.else" not in census  # the branch not counted has no nodes in the tree
    assert {lc.name for lc in c.layer_costs if lc.macs} == {"/if/then/mm1", "/if/then/mm2"}
    relu = next(t for t in c.trace if t.kind == "relu")
    assert c.trace[relu.inputs[0]].owner == "/if/then/mm2"  # the If passes its branch's output on


def test_if_with_constant_condition_counts_only_the_taken_branch(tmp_path):
    path = if_model(tmp_path, "if_const", const("c", False, np.bool_))
    assert run(path, {"x": np.ones((2, 8), np.float32)}) == [[2, 16]]
    c = count_onnx(path)
    assert c.macs == matmul_macs(2, 8, 16)
    assert c.params == 8 * 16 + 16 * 16 + 8 * 16
    assert any(n == "If if: condition is constant (false); only the else branch is counted" for n in c.notes)
    census = by_name(c.census, "path")
    assert census["if.else"].macs == c.macs and census["if.else"].params == 8 * 16
    assert "if.then" not in census


def test_if_with_constant_condition_costs_what_the_plain_graph_costs(tmp_path):
    """x -> MatMul(W) -> Relu, once plain and once wrapped in If(true){...} else {Identity}: same counts."""
    w = weight("w", 8, 16)
    plain = save(tmp_path, "plain", [helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
                                     helper.make_node("Relu", ["m"], ["y"], name="relu")],
                 [vi("x", T.FLOAT, [2, 8])], [vi("y", T.FLOAT, [2, 16])], [w])
    then_g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
                                helper.make_node("Relu", ["m"], ["r"], name="relu")],
                               "then", [], [vi("r", T.FLOAT, [2, 16])])
    else_g = helper.make_graph([helper.make_node("Tile", ["x", "reps"], ["t"], name="tile")], "else", [],
                               [vi("t", T.FLOAT, [2, 16])])
    wrapped = save(tmp_path, "wrapped",
                   [const("c", True, np.bool_), const("reps", [1, 2], np.int64),
                    helper.make_node("If", ["c"], ["y"], name="if", then_branch=then_g, else_branch=else_g)],
                   [vi("x", T.FLOAT, [2, 8])], [vi("y", T.FLOAT, [2, 16])], [w])
    x = np.ones((2, 8), np.float32)
    assert run(plain, {"x": x}) == run(wrapped, {"x": x}) == [[2, 16]]
    a, b = count_onnx(plain), count_onnx(wrapped)
    assert a.macs == b.macs == matmul_macs(2, 8, 16)
    assert (a.params, a.other_flops, a.unfused_bytes, a.fused_bytes) == \
        (b.params, b.other_flops, b.unfused_bytes, b.fused_bytes)
    assert not any("control flow" in n for n in a.notes)


# ----------------------------------------------------------------------------- Scan

def rnn_cell():
    """The Scan body of the tests below: h' = Tanh(h @ Wh + x_t @ Wx), h (1, 8), x_t (1, 16); emits h' each step."""
    return helper.make_graph(
        [helper.make_node("MatMul", ["h", "wh"], ["a"], name="hh"),
         helper.make_node("MatMul", ["xt", "wx"], ["b"], name="xh"),
         helper.make_node("Add", ["a", "b"], ["s"], name="add"),
         helper.make_node("Tanh", ["s"], ["h2"], name="tanh"),
         helper.make_node("Identity", ["h2"], ["yt"], name="emit")],
        "cell", [vi("h", T.FLOAT, None), vi("xt", T.FLOAT, None)], [vi("h2"), vi("yt")],
        [weight("wh", 8, 8), weight("wx", 16, 8)])


def test_scan_counts_the_body_per_step_along_the_scan_axis(tmp_path):
    """An RNN cell as a Scan: h' = Tanh(h @ Wh + x_t @ Wx), scanning x (1, 5, 16) along axis 1."""
    body = rnn_cell()
    path = save(tmp_path, "scan", [helper.make_node("Scan", ["h0", "x"], ["hN", "ys"], name="rnn", body=body,
                                                    num_scan_inputs=1, scan_input_axes=[1])],
                [vi("h0", T.FLOAT, [1, 8]), vi("x", T.FLOAT, [1, 5, 16])],
                [vi("hN", T.FLOAT, ["b", "h"]), vi("ys", T.FLOAT, ["s", "b", "h"])])
    shapes = run(path, {"h0": np.zeros((1, 8), np.float32), "x": np.ones((1, 5, 16), np.float32)})
    c = count_onnx(path)
    step = matmul_macs(1, 8, 8) + matmul_macs(1, 16, 8)
    assert c.macs == 5 * step and c.macs_complete
    assert c.params == 8 * 8 + 16 * 8
    assert c.output_shapes == shapes == [[1, 8], [5, 1, 8]]
    assert any(n == "Scan rnn: body counted x5 (the scanned axis length)" for n in c.notes)
    xh = by_name(c.layer_costs)["/rnn/body/xh"]
    assert (xh.macs, xh.launches) == (5 * matmul_macs(1, 16, 8), 5)


# ----------------------------------------------------------------------------- nesting

def test_nested_loops_and_an_if_inside_a_loop(tmp_path):
    """outer Loop (x3) { inner Loop (x2, trip count a Constant of the outer body) { h @ W } ;
    If (sum(h) > 0, data-dependent) { h @ W } else { h } }. W is a main-graph initializer read from inside."""
    ins, cond_node, cond_out = loop_body_cond()
    inner = helper.make_graph(
        [helper.make_node("Identity", ["icond"], ["icond_out"]),
         helper.make_node("MatMul", ["g", "w"], ["g2"], name="mm")],
        "inner", [vi("j", T.INT64, []), vi("icond", T.BOOL, []), vi("g", T.FLOAT, None)],
        [vi("icond_out", T.BOOL, []), vi("g2")])
    then_g = helper.make_graph([helper.make_node("MatMul", ["k", "w"], ["t"], name="mm")], "then", [], [vi("t")])
    else_g = helper.make_graph([helper.make_node("Identity", ["k"], ["e"], name="same")], "else", [], [vi("e")])
    outer = helper.make_graph(
        [cond_node, const("two", 2, np.int64),
         helper.make_node("Loop", ["two", "cond_in", "h"], ["k"], name="inner", body=inner),
         helper.make_node("ReduceSum", ["k"], ["s"], name="sum", keepdims=0),
         helper.make_node("Greater", ["s", "zero"], ["pos"], name="gt"),
         helper.make_node("If", ["pos"], ["h2"], name="if", then_branch=then_g, else_branch=else_g)],
        "outer", ins + [vi("h", T.FLOAT, None)], [cond_out, vi("h2")])
    path = save(tmp_path, "nested",
                [const("cond", True, np.bool_), const("zero", 0.0, np.float32), const("three", 3, np.int64),
                 helper.make_node("Loop", ["three", "cond", "x"], ["y"], name="outer", body=outer)],
                [vi("x", T.FLOAT, [2, 8])], [vi("y", T.FLOAT, ["b", "h"])], [weight("w", 8, 8)])
    shapes = run(path, {"x": np.ones((2, 8), np.float32)})
    c = count_onnx(path)

    mm = matmul_macs(2, 8, 8)
    assert c.macs == 3 * 2 * mm + 3 * mm and c.macs_complete
    assert c.params == 8 * 8
    assert c.output_shapes == shapes == [[2, 8]]
    layers = by_name(c.layer_costs)
    deep = layers["/outer/body/inner/body/mm"]
    assert (deep.macs, deep.launches) == (6 * mm, 6)
    assert (layers["/outer/body/if/then/mm"].macs, layers["/outer/body/if/then/mm"].launches) == (3 * mm, 3)
    census = by_name(c.census, "path")
    assert census["outer"].macs == c.macs
    assert census["outer.body.inner.body"].macs == 6 * mm
    assert census["outer.body.if.then"].macs == 3 * mm
    assert any(n.startswith("If /outer/body/if: condition is data-dependent") and f"then {mm:,} MACs" in n
               and "else 0 MACs" in n for n in c.notes)
    assert math.isclose(sum(lc.macs for lc in c.layer_costs), c.macs)


def test_loop_whose_state_grows_is_marked_incomplete(tmp_path):
    """h (1,4) -> Loop x3 { h = Concat(h, h) along axis 0 ; y = h @ W }: the state doubles every iteration, so the
    count at the first iteration's shapes is a lower bound and says so."""
    ins, cond_node, cond_out = loop_body_cond()
    body = helper.make_graph(
        [cond_node, helper.make_node("MatMul", ["h", "w"], ["m"], name="mm"),
         helper.make_node("Concat", ["m", "m"], ["h2"], name="cat", axis=0)],
        "body", ins + [vi("h", T.FLOAT, None)], [cond_out, vi("h2")])
    path = save(tmp_path, "grow", [const("cond", True, np.bool_), const("M", 3, np.int64),
                                   helper.make_node("Loop", ["M", "cond", "x"], ["y"], name="loop", body=body)],
                [vi("x", T.FLOAT, [1, 4])], [vi("y", T.FLOAT, ["n", 4])], [weight("w", 4, 4)])
    assert run(path, {"x": np.ones((1, 4), np.float32)}) == [[8, 4]]
    c = count_onnx(path)
    assert c.macs == 3 * matmul_macs(1, 4, 4)  # every iteration at the first one's shapes (the truth: 1+2+4 rows)
    assert not c.macs_complete
    assert [(u.module, u.op) for u in c.uncounted] == [("loop", "Loop")]
    assert "change shape between iterations" in c.uncounted[0].reason


# ----------------------------------------------------------------------------- Loop and Scan edge cases

NO_LIMIT_TRIP = 2**63 - 1  # what exporters write as a while-loop's trip count (torch: INT64_MAX)


def matmul_loop(tmp_path, name, trip, start=True, stop_below=None, trip_as="init", fc=False):
    """x (2,8) -> Loop[trip, start]{ h = h @ Wb (Wb (8,8) held in the body) ; scan out h } (-> Gemm(8->4) when ``fc``).
    The body's condition output is the incoming condition, or ``i + 1 < stop_below`` when ``stop_below`` is set (a body
    that ends the loop early: it runs min(trip, stop_below) times). ``trip_as``: "init" (an initializer) or "const"
    (a Constant node)."""
    ins = [vi("i", T.INT64, []), vi("cond_in", T.BOOL, [])]
    if stop_below is None:
        cond = [helper.make_node("Identity", ["cond_in"], ["cond_out"])]
    else:
        cond = [const("one", 1, np.int64), const("lim", stop_below, np.int64),
                helper.make_node("Add", ["i", "one"], ["next_i"], name="next"),
                helper.make_node("Less", ["next_i", "lim"], ["cond_out"], name="more")]
    body = helper.make_graph(
        cond + [helper.make_node("MatMul", ["h", "wb"], ["h2"], name="mm"),
                helper.make_node("Identity", ["h2"], ["y"], name="emit")],
        "body", ins + [vi("h", T.FLOAT, [2, 8])], [vi("cond_out", T.BOOL, []), vi("h2"), vi("y")],
        [weight("wb", 8, 8)])
    nodes = [const("cond", start, np.bool_),
             helper.make_node("Loop", ["M", "cond", "x"], ["hN", "ys"], name="loop", body=body)]
    inits = [weight("fw", 8, 4)] if fc else []
    if trip_as == "const":
        nodes.insert(0, const("M", trip, np.int64))
    else:
        inits.append(numpy_helper.from_array(np.array(trip, dtype=np.int64), "M"))
    outputs = [vi("hN", T.FLOAT, ["b", "h"]), vi("ys", T.FLOAT, ["n", "b", "h"])]
    if fc:
        nodes.append(helper.make_node("Gemm", ["hN", "fw"], ["out"], name="fc"))
        outputs = [vi("out", T.FLOAT, ["b", "k"])]
    return save(tmp_path, name, nodes, [vi("x", T.FLOAT, [2, 8])], outputs, inits)


def test_loop_whose_body_can_end_early_counts_the_trip_count_as_an_upper_bound(tmp_path):
    path = matmul_loop(tmp_path, "loop_early", trip=5, stop_below=3)
    shapes = run(path, {"x": np.ones((2, 8), np.float32)})
    assert shapes == [[2, 8], [3, 2, 8]]  # onnxruntime: the body ended the loop after 3 of the 5 iterations
    c = count_onnx(path)

    mm = matmul_macs(2, 8, 8)
    assert c.macs == 5 * mm  # M x the body: an upper bound on the 3 that actually run
    assert c.macs > shapes[1][0] * mm
    assert c.params == 8 * 8
    assert "Loop loop: trip count at most 5 (the body may end the loop early); body counted x5, an upper bound" \
        in c.notes
    assert not any("body counted x5 (static trip count)" in n for n in c.notes)
    assert c.macs_complete and not c.uncounted  # a bound, like an If's larger branch: said in a note, not uncounted
    layer = by_name(c.layer_costs)["/loop/body/mm"]
    assert (layer.macs, layer.launches) == (5 * mm, 5)


def test_loop_whose_condition_starts_false_never_runs_its_body(tmp_path):
    path = matmul_loop(tmp_path, "loop_never", trip=4, start=False, fc=True)
    x = RNG.standard_normal((2, 8)).astype(np.float32)
    got = ort.InferenceSession(str(path)).run(None, {"x": x})[0]
    fw = numpy_helper.to_array(next(t for t in onnx.load(str(path)).graph.initializer if t.name == "fw"))
    np.testing.assert_allclose(got, x @ fw, rtol=1e-5, atol=1e-5)  # onnxruntime: the body never touched x
    c = count_onnx(path)

    assert c.macs == matmul_macs(2, 8, 4)  # only the Gemm after the loop: the body's MatMul x0
    assert c.params == 8 * 8 + 8 * 4  # the body's weight still counts once
    assert "Loop loop: the condition starts false; the body never runs" in c.notes
    assert c.macs_complete and not c.uncounted
    assert c.output_shapes == [[2, 4]]
    assert {lc.name for lc in c.layer_costs if lc.macs} == {"fc"}
    assert sum(lc.macs for lc in c.layer_costs) == c.macs


def scan_rnn(tmp_path, name):
    """h' = Tanh(h @ Wh + x_t @ Wx), Scan over x ("seq", 1, 16) along axis 0: the length is a symbolic dim."""
    body = rnn_cell()
    return save(tmp_path, name, [helper.make_node("Scan", ["h0", "x"], ["hN", "ys"], name="rnn", body=body,
                                                  num_scan_inputs=1, scan_input_axes=[0])],
                [vi("h0", T.FLOAT, [1, 8]), vi("x", T.FLOAT, ["seq", 1, 16])],
                [vi("hN", T.FLOAT, ["b", "h"]), vi("ys", T.FLOAT, ["s", "b", "h"])])


def test_scan_of_symbolic_length_without_an_input_shape_follows_the_symbol_convention(tmp_path):
    """A scanned length given by a symbolic input dim is counted like every non-batch symbol: at 1, with a note
    naming the symbol and --input-shape (the next test gives the real length); the Scan note says x1."""
    path = scan_rnn(tmp_path, "scan_sym")
    run(path, {"h0": np.zeros((1, 8), np.float32), "x": np.ones((7, 1, 16), np.float32)})
    c = count_onnx(path)
    assert c.macs == matmul_macs(1, 8, 8) + matmul_macs(1, 16, 8)  # one step
    assert c.params == 8 * 8 + 16 * 8
    assert c.input_symbols == [[None, None], ["seq", None, None]]
    assert "input 'x' dim 0 ('seq') is symbolic; counted at 1 (pass --input-shape for a real size)" in c.notes
    assert "Scan rnn: body counted x1 (the scanned axis length)" in c.notes


def test_scan_of_symbolic_length_with_an_input_shape_counts_the_body_per_step(tmp_path):
    path = scan_rnn(tmp_path, "scan_sym_fixed")
    shapes = run(path, {"h0": np.zeros((1, 8), np.float32), "x": np.ones((7, 1, 16), np.float32)})
    c = count_onnx(path, input_shapes=[[1, 8], [7, 1, 16]])
    step = matmul_macs(1, 8, 8) + matmul_macs(1, 16, 8)
    assert c.macs == 7 * step
    assert c.macs_complete and not c.uncounted
    assert "Scan rnn: body counted x7 (the scanned axis length)" in c.notes
    assert c.output_shapes == shapes == [[1, 8], [7, 1, 8]]
    xh = by_name(c.layer_costs)["/rnn/body/xh"]
    assert (xh.macs, xh.launches) == (7 * matmul_macs(1, 16, 8), 7)


def test_scan_over_a_data_dependent_slice_counts_the_body_once_and_incomplete(tmp_path):
    """The same cell scanning x[:n] with n a graph input: the scanned length is unknown after inference."""
    body = rnn_cell()
    path = save(tmp_path, "scan_slice",
                [const("zero", [0], np.int64), const("ax", [0], np.int64),
                 helper.make_node("Slice", ["x", "zero", "n", "ax"], ["xs"], name="take"),
                 helper.make_node("Scan", ["h0", "xs"], ["hN", "ys"], name="rnn", body=body,
                                  num_scan_inputs=1, scan_input_axes=[0])],
                [vi("h0", T.FLOAT, [1, 8]), vi("x", T.FLOAT, [9, 1, 16]), vi("n", T.INT64, [1])],
                [vi("hN", T.FLOAT, ["b", "h"]), vi("ys", T.FLOAT, ["s", "b", "h"])])
    feeds = {"h0": np.zeros((1, 8), np.float32), "x": np.ones((9, 1, 16), np.float32)}
    assert run(path, {**feeds, "n": np.array([5], np.int64)}) == [[1, 8], [5, 1, 8]]
    c = count_onnx(path)
    # once; x_t's shape is unknown too (the Slice has no shape after inference), so only h @ Wh is counted
    assert c.macs == matmul_macs(1, 8, 8)
    assert not c.macs_complete
    flow = [u for u in c.uncounted if u.op == "Scan"]
    assert [(u.module, u.op) for u in flow] == [("rnn", "Scan")]
    assert flow[0].reason == "the scanned axis length is unknown; body counted once"
    # the body nodes left without a shape (x_t's MatMul and what follows it) are listed too, with their bytes
    rest = [u for u in c.uncounted if u.op != "Scan"]
    assert ("/rnn/body/xh", "MatMul") in [(u.module, u.op) for u in rest]
    assert all("shape unknown" in u.reason and u.bytes is not None for u in rest)
    assert "Scan rnn: the scanned axis length is unknown; body counted once" in c.notes
    assert by_name(c.layer_costs)["/rnn/body/hh"].launches == 1


@pytest.mark.parametrize("trip_as", ["const", "init"])
def test_loop_with_no_limit_trip_count_counts_the_body_once(tmp_path, trip_as):
    """A while loop as exporters write it: M = INT64_MAX, the body's condition decides when to stop."""
    path = matmul_loop(tmp_path, f"loop_while_{trip_as}", trip=NO_LIMIT_TRIP, stop_below=4, trip_as=trip_as)
    shapes = run(path, {"x": np.ones((2, 8), np.float32)})
    assert shapes == [[2, 8], [4, 2, 8]]  # onnxruntime ran it 4 times
    c = count_onnx(path)

    mm = matmul_macs(2, 8, 8)
    assert c.macs == mm  # the body once
    assert not c.macs_complete
    assert [(u.module, u.op) for u in c.uncounted] == [("loop", "Loop")]
    assert "body counted once" in c.uncounted[0].reason
    assert not any("at most" in n or "static trip count" in n for n in c.notes)  # the sentinel is not a bound
    layer = by_name(c.layer_costs)["/loop/body/mm"]
    assert (layer.macs, layer.launches) == (mm, 1)
