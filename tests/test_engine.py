"""The TensorRT execution model (perf/engine.py): kernels, tensor-core padding, CUDA-core layers and the precision mix
of INT8 engines, checked against hand arithmetic and against the torch modules of real zoo models."""
from __future__ import annotations

import math

import pytest
import torch

from embodied_tui.analysis.torch.analyze import analyze_module
from embodied_tui.analysis.zoo import BUILDERS
from embodied_tui.data.records import LayerCost
from embodied_tui.perf.roofline import Target, fusion_for, layer_times, layer_work

P16, VEC, BW = 16e12, 2e12, 100e9


def gpu(precision: str = "fp16") -> Target:
    return Target("gpu-x", "max", precision, "soc", peak_flops=P16 * (2 if precision == "int8" else 1),
                  vector_flops=VEC, bandwidth=BW)


def conv_block(cout: int = 64, cin: int = 64, hw: int = 32) -> list[LayerCost]:
    """conv 3x3 (cin -> cout, hw x hw, stride 1) + BatchNorm + ReLU + residual add: one TensorRT kernel."""
    out = cout * hw * hw
    return [LayerCost(name="conv", type="Conv", macs=out * cin * 9, weight_elems=cout * cin * 9,
                      read_elems=cin * hw * hw, write_elems=out, output_shape=[1, cout, hw, hw]),
            LayerCost(name="bn", type="BatchNormalization", other_flops=2 * out, weight_elems=2 * cout,
                      read_elems=out, write_elems=out, output_shape=[1, cout, hw, hw]),
            LayerCost(name="relu", type="Relu", other_flops=out, read_elems=out, write_elems=out),
            LayerCost(name="block", type="Bottleneck", other_flops=out, read_elems=2 * out, write_elems=out)]


def test_runtimes_choose_their_execution_model():
    assert fusion_for("tensorrt") == fusion_for("onnxruntime-tensorrt") == "tensorrt"
    assert fusion_for("onnxruntime-cpu") == fusion_for(None) == "epilogue"
    assert fusion_for("torch-cpu") == "none"


def test_a_conv_and_its_epilogue_are_one_kernel():
    work = layer_work(conv_block(), "fp16", "tensorrt")
    assert [w.fused for w in work] == [False, True, True, True]
    times = layer_times(work, gpu())
    assert times.n_ops == 1
    # the residual add reads one operand beyond the conv's output: 64 x 32 x 32 elements at 2 bytes
    assert work[3].act_bytes == 64 * 32 * 32 * 2
    assert work[1].act_bytes == 0 and work[2].act_bytes == 0
    # 64 channels and depth 576 are multiples of 8: no padding; the conv runs at the tensor peak
    assert work[0].pad == 1 and not work[0].cuda_core
    assert times.tc[0] == pytest.approx(2 * 64 * 32 * 32 * 64 * 9 / P16)


def test_channels_are_padded_to_the_tensor_core_alignment():
    """3 output channels and depth 3 x 9 = 27 at fp16 (alignment 8): 8/3 x 32/27 of the MACs are computed;
    at int8 (alignment 16) 16/3 x 32/27."""
    first = conv_block(cout=3, cin=3)[:1]
    fp16 = layer_work(first, "fp16", "tensorrt")[0]
    assert fp16.pad == pytest.approx((8 / 3) * (32 / 27))
    assert fp16.flops == 2 * first[0].macs  # the reported FLOPs stay 2 x MACs
    int8 = layer_work(first, "int8", "tensorrt")[0]
    assert int8.pad == pytest.approx((16 / 3) * (32 / 27))
    times = layer_times([fp16], gpu())
    assert times.tc[0] == pytest.approx(2 * first[0].macs * fp16.pad / P16)


def test_depthwise_convolutions_run_on_cuda_cores():
    """A depthwise 3x3 conv has 9 MACs per output (< 16): the fp32 vector rate, no per-output tensor-core term."""
    c, hw = 32, 56
    dw = LayerCost(name="dw", type="Conv", macs=c * hw * hw * 9, weight_elems=c * 9, read_elems=c * hw * hw,
                   write_elems=c * hw * hw, output_shape=[1, c, hw, hw])
    work = layer_work([dw], "fp16", "tensorrt")[0]
    assert work.cuda_core and work.out_elems == 0
    times = layer_times([work], gpu())
    assert times.tc[0] == pytest.approx(2 * c * hw * hw * 9 / VEC)
    assert times.tk[0] == 0


def test_concat_is_eliminated_and_pooling_is_its_own_kernel():
    costs = conv_block() + [
        LayerCost(name="cat", type="Concat", read_elems=2 * 64 * 32 * 32, write_elems=2 * 64 * 32 * 32),
        LayerCost(name="pool", type="MaxPool", other_flops=4 * 64 * 16 * 16, read_elems=64 * 32 * 32,
                  write_elems=64 * 16 * 16)]
    work = layer_work(costs, "fp16", "tensorrt")
    cat, pool = work[4], work[5]
    assert cat.fused and cat.bytes == 0
    assert not pool.fused and pool.act_bytes == (64 * 32 * 32 + 64 * 16 * 16) * 2
    assert layer_times(work, gpu()).n_ops == 2  # the conv kernel and the pool kernel


def test_int8_engines_shrink_only_the_conv_layers():
    """At int8 the conv's weights and activations take 1 byte, the pooling kernel's still 2 (fp16): the traffic is
    not half of the fp16 engine's."""
    costs = conv_block() + [LayerCost(name="pool", type="MaxPool", other_flops=4 * 64 * 16 * 16,
                                      read_elems=64 * 32 * 32, write_elems=64 * 16 * 16)]
    w16 = layer_work(costs, "fp16", "tensorrt")
    w8 = layer_work(costs, "int8", "tensorrt")
    assert w8[0].bytes == pytest.approx(w16[0].bytes / 2)
    assert w8[-1].bytes == w16[-1].bytes
    total16, total8 = sum(w.bytes for w in w16), sum(w.bytes for w in w8)
    pool = w16[-1].bytes
    assert total8 == pytest.approx((total16 - pool) / 2 + pool)


def _modules(name: str, shape: list[int]):
    with torch.device("meta"):
        module = BUILDERS[name].build()
    return module, analyze_module(module, [shape], fmt="torch", detail="test")["layer_costs"]


def test_resnet18_kernels_are_its_convs_linear_and_pools():
    """TensorRT runs ResNet-18 as one kernel per conv (BN, ReLU and the residual add fused), the linear layer and
    the two pools: counted here from torch's own module list."""
    module, costs = _modules("resnet18", [1, 3, 224, 224])
    kinds = [type(m).__name__ for m in module.modules()]
    expected = sum(kinds.count(k) for k in ("Conv2d", "Linear", "MaxPool2d", "AdaptiveAvgPool2d"))
    work = layer_work(costs, "fp16", "tensorrt")
    assert layer_times(work, gpu()).n_ops == expected
    assert not any(w.cuda_core for w in work)  # every conv has >= 27 MACs per output
    # the reported FLOPs are still 2 x torch's MAC count
    assert sum(w.flops for w in work) == 2 * sum(c.macs for c in costs)


def test_mobilenet_v2_depthwise_layers_are_the_cuda_core_ones():
    module, costs = _modules("mobilenet_v2", [1, 3, 224, 224])
    depthwise = sum(1 for m in module.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1
                    and m.groups == m.in_channels)
    work = layer_work(costs, "fp16", "tensorrt")
    assert sum(w.cuda_core for w in work) == depthwise > 0
    # at fp32 there are no tensor cores: every MAC layer is on the vector units
    assert all(w.cuda_core for w in layer_work(costs, "fp32", "tensorrt") if w.flops > 0)


def test_fp8_and_fp4_have_their_byte_widths():
    from embodied_tui.perf.roofline import bytes_per_element

    assert bytes_per_element("fp8") == 1 and bytes_per_element("fp4") == 0.5
    assert math.isclose(bytes_per_element("int4"), bytes_per_element("fp4"))
