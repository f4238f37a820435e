"""The analyser on real files in every format: counts agree across formats and with independent counts."""
from __future__ import annotations

import warnings
from math import prod

import pytest
import torch
import torch.nn as nn

from embodied_tui.analysis import zoo
from embodied_tui.analysis.api import analyze_file
from embodied_tui.analysis.torch.analyze import analyze_module

SMALL = ["resnet_tiny", "mobilenet_tiny", "small_vit", "lstm_policy", "yolo_style_detector"]
FAMILY = {"resnet_tiny": "resnet", "mobilenet_tiny": "mobilenet", "small_vit": "vit", "lstm_policy": "lstm",
          "yolo_style_detector": "yolo"}


def independent_macs(model: nn.Module, inputs) -> int:
    """Hand count with forward hooks on a real CPU run: conv = out elems x (Cin/groups x kernel), linear = out elems x
    in_features, attention = B x L x L x 2E per nn.MultiheadAttention, LSTM = steps x 4H x (In + H). Written from
    the layer definitions, independent of our formula table."""
    total = 0

    def hook(mod, args, out):
        nonlocal total
        o = out[0] if isinstance(out, tuple) else out
        if isinstance(mod, nn.Conv2d):
            total += o.numel() * (mod.in_channels // mod.groups) * prod(mod.kernel_size)
        elif isinstance(mod, nn.ConvTranspose2d):
            total += args[0].numel() * (mod.out_channels // mod.groups) * prod(mod.kernel_size)
        elif isinstance(mod, nn.Linear) and not isinstance(mod, nn.modules.linear.NonDynamicallyQuantizableLinear):
            total += o.numel() * mod.in_features
        elif isinstance(mod, nn.MultiheadAttention):
            x = args[0]
            b, length, e = (x.shape if mod.batch_first else (x.shape[1], x.shape[0], x.shape[2]))
            total += b * length * 3 * e * e + b * length * e * e  # in-projection (q, k, v) + out-projection
            total += b * length * length * 2 * e  # QK^T and AV over all heads
        elif isinstance(mod, nn.LSTM):
            x = args[0]
            steps = x.shape[1] if mod.batch_first else x.shape[0]
            total += steps * 4 * mod.hidden_size * (mod.input_size + mod.hidden_size)

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(*inputs)
    for h in handles:
        h.remove()
    return total


def _save_all(name: str, tmp_path):
    builder = zoo.BUILDERS[name]
    torch.manual_seed(0)
    model = builder.build()
    inputs = builder.example_inputs()
    files = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        files["torchscript_traced"] = tmp_path / f"{name}.traced.pt"
        torch.jit.trace(model, inputs, check_trace=False).save(files["torchscript_traced"])
        try:
            scripted = torch.jit.script(model)
        except Exception:  # noqa: BLE001 - not every model is scriptable; traced covers TorchScript then
            scripted = None
        if scripted is not None:
            files["torchscript_scripted"] = tmp_path / f"{name}.scripted.pt"
            scripted.save(files["torchscript_scripted"])
        files["exported_program"] = tmp_path / f"{name}.pt2"
        torch.export.save(torch.export.export(model, inputs), files["exported_program"])
        files["onnx"] = tmp_path / f"{name}.onnx"
        torch.onnx.export(model, inputs, files["onnx"], dynamo=False)
    files["state_dict"] = tmp_path / f"{name}.ckpt"  # suffix says nothing: content decides
    torch.save({"epoch": 3, "model_state_dict": model.state_dict()}, files["state_dict"])
    from safetensors.torch import save_file

    files["safetensors"] = tmp_path / f"{name}.bin"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, files["safetensors"])
    return model, inputs, files


@pytest.mark.parametrize("name", SMALL)
def test_counts_agree_across_formats_and_with_hand_count(name, tmp_path):
    model, inputs, files = _save_all(name, tmp_path)
    shapes = [list(t.shape) for t in inputs]
    expected_params = sum(p.numel() for p in model.parameters())
    expected_macs = independent_macs(model, inputs)
    results = {fmt: analyze_file(path, input_shape=shapes if fmt.startswith("torchscript") else None)
               for fmt, path in files.items()}
    for fmt, a in results.items():
        assert a.macs == expected_macs, (fmt, a.macs, expected_macs)
        assert a.flops == 2 * a.macs
        assert a.input_shapes == shapes, fmt
        assert a.architecture.family == FAMILY[name], (fmt, a.architecture)
        if fmt == "onnx" and a.bn_folded:
            assert a.params < expected_params  # the file holds what is left after folding, and says so
            assert any("folded" in n for n in a.notes)
        elif fmt != "onnx":
            assert a.params == expected_params, (fmt, a.params)
    assert results["exported_program"].input_shape_source == "file"
    assert results["state_dict"].format == "state_dict" and results["safetensors"].format == "safetensors"
    # same model, same census leaves and output shapes whichever torch format it came from
    ref = results["exported_program"]
    assert results["torchscript_traced"].output_shapes == ref.output_shapes


# Published references (torchvision, 224x224): params exact, MACs within 0.1%.
REFERENCES = {"resnet18": (11_689_512, 1.814e9), "resnet50": (25_557_032, 4.089e9),
              "mobilenet_v2": (3_504_872, 0.301e9), "efficientnet_b0": (5_288_548, 0.386e9),
              "vit_b_16": (86_567_656, 17.564e9)}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_published_references(name):
    params, macs = REFERENCES[name]
    with torch.device("meta"):
        model = zoo.BUILDERS[name].build()
    fields = analyze_module(model, [[1, 3, 224, 224]], fmt="pickle", detail="")
    assert fields["params"] == params
    assert abs(fields["macs"] - macs) / macs < 0.001 + 0.0005 / (macs / 1e9)  # published to 3 decimals of GMACs


def test_vit_attention_is_counted_where_peers_miss_it():
    with torch.device("meta"):
        model = zoo.BUILDERS["vit_b_16"].build()
    fields = analyze_module(model, [[1, 3, 224, 224]], fmt="pickle", detail="")
    # 12 layers x 12 heads x (197 x 197 x 64) x 2 (QK^T and AV)
    attention = 12 * 12 * 197 * 197 * 64 * 2
    assert fields["macs_by_kind"].get("matmul", 0) + fields["macs_by_kind"].get("attention", 0) == attention


def test_sdpa_attention_counted(tmp_path):
    torch.manual_seed(0)
    mha = zoo.BUILDERS["small_vit"].build()
    sdpa = zoo.small_vit(sdpa=True).eval()
    sdpa.load_state_dict(mha.state_dict())
    x = torch.randn(1, 3, 32, 32)
    path = tmp_path / "sdpa.pt2"
    torch.export.save(torch.export.export(sdpa, (x,)), path)
    a = analyze_file(path)
    assert a.macs == independent_macs(mha, (x,))
    # depth 4, 17 tokens (16 patches + class token), dim 64: QK^T and AV
    assert a.macs_by_kind.get("attention", 0) + a.macs_by_kind.get("matmul", 0) == 4 * 17 * 17 * 2 * 64


def test_data_dependent_postprocess_is_marked_not_counted(tmp_path):
    plain = zoo.BUILDERS["yolo_style_detector"].build()
    post = zoo.yolo_style_detector(postprocess=True).eval()
    post.load_state_dict(plain.state_dict())
    x = zoo.BUILDERS["yolo_style_detector"].example_inputs()
    path = tmp_path / "detector_full.pt"
    torch.save(post, path)
    a = analyze_file(path, trust_code=True, input_shape=[list(x[0].shape)])
    assert not a.macs_complete
    assert a.uncounted and "data-dependent" in a.uncounted[0].reason
    assert a.uncounted[0].module.startswith("postprocess")
    assert a.macs == independent_macs(plain, x)  # backbone, neck and head all counted


def test_state_dict_without_known_architecture_has_exact_params_and_null_macs(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 7, 5), nn.BatchNorm2d(7), nn.Flatten(), nn.Linear(7 * 4, 3))
    path = tmp_path / "odd.pt"
    torch.save(model.state_dict(), path)
    a = analyze_file(path)
    assert a.params == sum(p.numel() for p in model.parameters())
    assert a.macs is None and a.flops is None and "state_dict" in a.macs_null_reason
    assert a.layers == {"Conv2d": 1, "BatchNorm": 1, "Linear": 1}


def test_inferred_input_shape_is_marked(tmp_path):
    model = zoo.BUILDERS["resnet_tiny"].build()
    path = tmp_path / "r.pt"
    torch.jit.trace(model, zoo.BUILDERS["resnet_tiny"].example_inputs()).save(path)
    a = analyze_file(path)
    assert a.input_shape_source == "inferred"
    assert a.input_shapes[0][:2] == [1, 3]
    assert any("inferred" in n for n in a.notes)


def test_peak_activation_memory_on_a_chain(tmp_path):
    # x(1x1000) -> linear 2000 -> relu -> linear 10: the largest live pair is the 2000-wide hidden in and out of relu
    model = nn.Sequential(nn.Linear(1000, 2000), nn.ReLU(), nn.Linear(2000, 10)).eval()
    path = tmp_path / "chain.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros(1, 1000),)), path)
    a = analyze_file(path)
    assert a.activation_bytes == (2000 + 2000) * 4
    assert a.fused_bytes == a.weight_bytes + (1000 + 10) * 4
    # unfused: each op reads its inputs and weights and writes its outputs once
    assert a.unfused_bytes == 4 * ((1000 + 1000 * 2000 + 2000 + 2000) + (2000 + 2000) + (2000 + 2000 * 10 + 10 + 10))


def test_inferred_input_for_recurrent_torchscript(tmp_path):
    builder = zoo.BUILDERS["lstm_policy"]
    model = builder.build()
    path = tmp_path / "policy.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(model, builder.example_inputs(), check_trace=False).save(path)
    a = analyze_file(path)
    assert a.input_shape_source == "inferred"
    steps, features = a.input_shapes[0][1], a.input_shapes[0][2]
    assert features == model.rnn.input_size
    x = torch.zeros(a.input_shapes[0])
    assert a.macs == independent_macs(model, (x,))
    assert steps == 16


def test_bytes_at_another_precision_through_the_cli(tmp_path):
    import json

    from click.testing import CliRunner

    from embodied_tui.cli import main

    model = nn.Sequential(nn.Linear(100, 200), nn.ReLU(), nn.Linear(200, 10)).eval()
    path = tmp_path / "mlp.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros(1, 100),)), path)
    result = CliRunner().invoke(main, ["model", "analyze", str(path), "--precision", "fp16", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    params = sum(p.numel() for p in model.parameters())
    assert out["weight_bytes"] == 4 * params
    at = out["bytes_at_precision"]
    assert at["weight_bytes"] == 2 * params
    assert at["activation_bytes"] == out["activation_bytes"] // 2 == (200 + 200) * 2
    assert at["fused_bytes"] == 2 * (params + 100 + 10)


def test_recurrent_gates_are_not_read_as_residual_connections(tmp_path):
    _, inputs, files = _save_all("lstm_policy", tmp_path)
    shapes = [list(t.shape) for t in inputs]
    for fmt in ("torchscript_traced", "exported_program", "onnx"):
        a = analyze_file(files[fmt], input_shape=shapes if fmt.startswith("torchscript") else None)
        assert not any("residual" in e for e in a.architecture.evidence), (fmt, a.architecture.evidence)
        # the LSTM's MACs are one recurrent layer's in every format: steps x 4H x (In + H)
        assert a.macs_by_kind["lstm"] == 16 * 4 * 128 * (32 + 128), (fmt, a.macs_by_kind)
        # and it launches one step kernel per time step (the roofline charges t_op for each)
        assert [c.launches for c in a.layer_costs if c.type == "LSTM"] == [16], (fmt, a.layer_costs)
        assert all(c.launches == 1 for c in a.layer_costs if c.type != "LSTM")


def test_stacked_bidirectional_lstm_launches_agree_across_formats(tmp_path):
    """2 layers x 2 directions x 7 steps = 28 step kernels, from meta decomposition (torch) and from X and W (ONNX)."""
    net = nn.LSTM(6, 5, num_layers=2, bidirectional=True).eval()
    x = torch.randn(7, 2, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(net, (x,), check_trace=False).save(tmp_path / "lstm.pt")
        torch.onnx.export(net, (x,), tmp_path / "lstm.onnx", dynamo=False)
    traced = analyze_file(tmp_path / "lstm.pt", input_shape=[[7, 2, 6]])
    onnx = analyze_file(tmp_path / "lstm.onnx")
    assert sum(c.launches for c in traced.layer_costs) - (len(traced.layer_costs) - 1) == 28
    assert sorted(c.launches for c in onnx.layer_costs if c.type == "LSTM") == [14, 14]
    assert traced.macs == onnx.macs
