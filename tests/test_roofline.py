"""The roofline arithmetic against hand-computed cases, and the efficiency fit against known efficiencies."""
from __future__ import annotations

import math
import random

import pytest

from embodied_tui.data.records import LayerCost
from embodied_tui.perf.calibrate import Point, fit_efficiency
from embodied_tui.perf.roofline import (
    DEFAULT_EFFICIENCY,
    PURE,
    Efficiency,
    Target,
    fit_model,
    layer_times,
    layer_work,
    predicted_seconds,
    scale_efficiency,
)

# A 3x3 conv, 64 -> 64 channels, 56x56 output, no bias, batch 1.
CONV = LayerCost(name="conv", type="Conv2d", macs=64 * 64 * 9 * 56 * 56, weight_elems=64 * 64 * 9,
                 read_elems=64 * 56 * 56, write_elems=64 * 56 * 56, output_shape=[1, 64, 56, 56])
# A 3x3 depthwise conv, 256 channels, 28x28 output.
DW = LayerCost(name="dw", type="Conv2d", macs=256 * 9 * 28 * 28, weight_elems=256 * 9,
               read_elems=256 * 28 * 28, write_elems=256 * 28 * 28, output_shape=[1, 256, 28, 28])


def record(costs, *, macs=None, weight_bytes=None, activation_bytes=1_000_000, name="m", **extra):
    macs = sum(c.macs for c in costs) if macs is None else macs
    weights = sum(c.weight_elems for c in costs) * 4 if weight_bytes is None else weight_bytes
    return {"name": name, "macs": macs, "other_flops": 0, "dtype": "float32", "dtype_bytes": 4,
            "weight_bytes": weights, "activation_bytes": activation_bytes, "fused_bytes": None, **extra}


def gpu(precision="fp32", peak=1e12, bw=100e9, power=10.0, memory=8_000_000_000) -> Target:
    return Target("test-gpu", "10W", precision, "gpu", peak_flops=peak, vector_flops=peak, bandwidth=bw,
                  power_w=power, memory_bytes=memory)


def test_compute_bound_conv_by_hand():
    flops = 2 * 64 * 64 * 9 * 56 * 56  # 231,211,008
    nbytes = (36864 + 200704 + 200704) * 4  # 1,753,088
    fit = fit_model(record([CONV]), [CONV], gpu(), PURE)
    assert fit.flops == flops and fit.bytes == nbytes
    assert fit.arithmetic_intensity == pytest.approx(flops / nbytes, rel=1e-5)  # ~131.9 FLOP/B > ridge 10
    assert fit.ridge_point == pytest.approx(10.0)
    assert fit.bound == "compute"
    assert fit.roofline_latency_ms == pytest.approx(flops / 1e12 * 1e3, rel=1e-5)  # 0.2312 ms
    assert fit.attainable_tflops == pytest.approx(1.0)
    eff = Efficiency(0.5, 0.25, 1.0, "measured", "hand")
    fit = fit_model(record([CONV]), [CONV], gpu(), eff)
    # t0 + max(F / (0.5 P), B / (0.25 BW)) = 1 ms + max(0.4624 ms, 0.0701 ms)
    assert fit.predicted_latency_ms == pytest.approx(1.0 + flops / 0.5e12 * 1e3, rel=1e-5)
    assert fit.top_layers[0].bound == "compute"
    assert fit.bound == "overhead"  # 1 ms of t0 outweighs 0.46 ms of compute
    assert fit.fps == pytest.approx(1e3 / fit.predicted_latency_ms, rel=1e-5)


def test_memory_bound_depthwise_by_hand():
    flops = 2 * 256 * 9 * 28 * 28  # 3,612,672
    nbytes = (2304 + 200704 + 200704) * 4  # 1,614,848
    fit = fit_model(record([DW]), [DW], gpu(), PURE)
    assert fit.arithmetic_intensity == pytest.approx(flops / nbytes, rel=1e-5)  # ~2.24 FLOP/B < ridge 10
    assert fit.bound == "memory"
    assert fit.roofline_latency_ms == pytest.approx(nbytes / 100e9 * 1e3, rel=1e-5)  # 0.01615 ms
    assert fit.attainable_tflops == pytest.approx(flops / nbytes * 100e9 / 1e12, rel=1e-5)
    assert fit.top_layers[0].bound == "memory"


def test_model_sums_layers_and_ranks_top_layers():
    costs = [CONV, DW]
    fit = fit_model(record(costs), costs, gpu(), PURE)
    conv_s = 2 * CONV.macs / 1e12
    dw_s = (DW.weight_elems + DW.read_elems + DW.write_elems) * 4 / 100e9
    assert fit.roofline_latency_ms == pytest.approx((conv_s + dw_s) * 1e3, rel=1e-5)
    assert [layer.name for layer in fit.top_layers] == ["conv", "dw"]
    assert fit.time_compute_ms == pytest.approx(conv_s * 1e3, rel=1e-5)
    assert fit.time_memory_ms == pytest.approx(dw_s * 1e3, rel=1e-5)
    assert fit.bound == "compute"
    detailed = fit_model(record(costs), costs, gpu(), Efficiency(0.5, 0.5, 0.0, "measured", "t"), with_layers=True)
    assert [layer.name for layer in detailed.layers] == ["conv", "dw"]
    assert sum(layer.share for layer in detailed.layers) == pytest.approx(1.0, abs=1e-3)
    assert all(layer.predicted_tflops <= 0.5 * 1.0 + 1e-9 for layer in detailed.layers)  # under eta_c x peak


def test_small_kernel_terms_by_hand():
    """t_op per launched operator and K MACs per output, on a conv + fused ReLU + depthwise conv + 4-step LSTM."""
    relu = LayerCost(name="relu", type="ReLU", other_flops=64 * 56 * 56, read_elems=64 * 56 * 56,
                     write_elems=64 * 56 * 56)
    lstm = LayerCost(name="lstm", type="LSTM", macs=4 * 16 * (8 + 16) * 4, weight_elems=4 * 16 * 24,
                     read_elems=4 * 8, write_elems=4 * 16, launches=4)
    costs = [CONV, relu, DW, lstm]
    eff = Efficiency(0.5, 0.25, 0.1, "measured", "hand", runtime="onnxruntime-cpu", op_overhead_ms=0.002,
                     macs_per_output_half=16)
    fit = fit_model(record(costs), costs, gpu(), eff, with_layers=True)
    assert fit.n_ops == 1 + 1 + 4  # conv (ReLU folded into it), depthwise, 4 LSTM steps
    P, BW = 1e12, 100e9
    conv_c = (2 * CONV.macs + 2 * 16 * CONV.write_elems) / P / 0.5  # 0.4624 ms + 2 x 16 x 200,704 / P / 0.5
    conv_m = (CONV.weight_elems + CONV.read_elems + CONV.write_elems) * 4 / BW / 0.25
    dw_c = (2 * DW.macs + 2 * 16 * DW.write_elems) / P / 0.5  # K = 16 on 9 MACs per output: 2.8x the MACs
    dw_m = (DW.weight_elems + DW.read_elems + DW.write_elems) * 4 / BW / 0.25
    lstm_c = (2 * lstm.macs + 2 * 16 * lstm.write_elems) / P / 0.5
    lstm_m = (lstm.weight_elems + lstm.read_elems + lstm.write_elems) * 4 / BW / 0.25
    relu_m = 0.0  # folded: its input and output are the conv's output, kept in registers
    expected = 0.1e-3 + 6 * 0.002e-3 + max(conv_c, conv_m) + max(dw_c, dw_m) + max(lstm_c, lstm_m) + relu_m + \
        relu.other_flops / P / 0.5
    assert fit.predicted_latency_ms == pytest.approx(expected * 1e3, rel=1e-5)
    assert fit.time_overhead_ms == pytest.approx(0.1 + 6 * 0.002, rel=1e-5)
    assert fit.op_overhead_ms == 0.002 and fit.macs_per_output_half == 16
    by_name = {layer.name: layer for layer in fit.layers}
    assert by_name["lstm"].launches == 4 and by_name["lstm"].bound == "overhead"  # 8 us of launches
    assert by_name["lstm"].predicted_ms == pytest.approx((max(lstm_c, lstm_m) + 4 * 0.002e-3) * 1e3, rel=1e-5)
    assert sum(layer.predicted_ms for layer in fit.layers) + 0.1 == pytest.approx(fit.predicted_latency_ms,
                                                                                      rel=1e-5)
    # the pure roofline ignores both terms, and zero terms give back the plain calibrated roofline
    assert fit.roofline_latency_ms == fit_model(record(costs), costs, gpu(), PURE).roofline_latency_ms
    plain = Efficiency(0.5, 0.25, 0.1, "measured", "hand", runtime="onnxruntime-cpu")
    no_terms = fit_model(record(costs), costs, gpu(), plain).predicted_latency_ms
    assert no_terms == pytest.approx((0.1e-3 + max(2 * CONV.macs / P / 0.5, conv_m)
                                      + max(2 * DW.macs / P / 0.5, dw_m) + max(2 * lstm.macs / P / 0.5, lstm_m)
                                      + relu.other_flops / P / 0.5) * 1e3, rel=1e-5)
    assert dw_c == pytest.approx(2 * DW.macs / P / 0.5 * (9 + 16) / 9)  # 9 MACs per output pay for 25


def test_eager_runtime_launches_every_layer():
    relu = LayerCost(name="relu", type="ReLU", read_elems=10, write_elems=10)
    costs = [CONV, relu]
    eff = Efficiency(1, 1, 0, "measured", "t", op_overhead_ms=1.0)
    assert fit_model(record(costs), costs, gpu(), Efficiency(1, 1, 0, "m", "t", runtime="torch-cpu",
                                                             op_overhead_ms=1.0)).n_ops == 2
    assert fit_model(record(costs), costs, gpu(), eff).n_ops == 1  # onnxruntime-style epilogue fusion


def test_precision_changes_bytes_and_peak():
    fp32 = fit_model(record([DW]), [DW], gpu("fp32", peak=1e12), PURE)
    fp16 = fit_model(record([DW]), [DW], gpu("fp16", peak=4e12), PURE)
    int8 = fit_model(record([DW]), [DW], gpu("int8", peak=8e12), PURE)
    assert fp16.bytes == fp32.bytes / 2 and int8.bytes == fp32.bytes / 4
    assert fp16.weight_bytes == DW.weight_elems * 2
    assert fp16.ridge_point == pytest.approx(40.0) and int8.ridge_point == pytest.approx(80.0)
    # memory-bound at every precision: time scales with bytes per element
    assert fp16.roofline_latency_ms == pytest.approx(fp32.roofline_latency_ms / 2, rel=1e-5)
    conv16 = fit_model(record([CONV]), [CONV], gpu("fp16", peak=4e12), PURE)
    assert conv16.roofline_latency_ms == pytest.approx(2 * CONV.macs / 4e12 * 1e3, rel=1e-5)


def test_energy_is_power_times_latency():
    eff = Efficiency(0.4, 0.6, 2.0, "default", "test")
    fit = fit_model(record([CONV, DW]), [CONV, DW], gpu(power=15.0), eff)
    assert fit.energy_mj == pytest.approx(15.0 * fit.predicted_latency_ms, rel=1e-5)
    no_power = Target("h", "default", "fp32", "cpu", 1e11, bandwidth=1e10, power_w=None)
    assert fit_model(record([CONV]), [CONV], no_power, eff).energy_mj is None


def test_pure_roofline_never_above_prediction():
    rng = random.Random(1)
    costs = [LayerCost(name=f"l{i}", type="x", macs=rng.randint(0, 10**8), other_flops=rng.randint(0, 10**6),
                       weight_elems=rng.randint(0, 10**6), read_elems=rng.randint(0, 10**6),
                       write_elems=rng.randint(0, 10**6)) for i in range(50)]
    effs = list(DEFAULT_EFFICIENCY.values()) + [Efficiency(rng.uniform(0.01, 1), rng.uniform(0.01, 1),
                                                           rng.uniform(0, 3), "measured", "r") for _ in range(20)]
    for eff in effs:
        fit = fit_model(record(costs), costs, gpu(), eff)
        assert fit.roofline_latency_ms <= fit.predicted_latency_ms * (1 + 1e-9)


def test_other_flops_run_at_the_vector_rate():
    act = LayerCost(name="gelu", type="GELU", other_flops=8_000_000, read_elems=1000, write_elems=1000)
    t = Target("g", "m", "fp16", "gpu", peak_flops=100e12, vector_flops=10e12, bandwidth=1e12)
    assert fit_model(record([act], macs=0), [act], t, PURE).time_compute_ms == pytest.approx(8e6 / 10e12 * 1e3)
    npu = Target("n", "m", "int8", "npu", peak_flops=100e12, vector_flops=10e12, bandwidth=None,
                 onchip_memory_bytes=10**8)
    assert fit_model(record([act], macs=0), [act], npu, PURE).roofline_latency_ms == pytest.approx(8e6 / 100e12 * 1e3)


def hailo(onchip=None, link=None) -> Target:
    return Target("hailo-8", "default", "int8", "npu", peak_flops=26e12, bandwidth=None, power_w=2.5,
                  onchip_memory_bytes=onchip, host_link_bytes_per_s=link)


def test_accelerator_without_dram_never_divides_by_bandwidth():
    rec = record([CONV, DW])
    fit = fit_model(rec, [CONV, DW], hailo(onchip=8_000_000), PURE)
    # no DRAM: activations stay on chip, every layer is compute
    assert fit.bandwidth_gbps is None and fit.ridge_point is None
    assert fit.roofline_latency_ms == pytest.approx((2 * CONV.macs + 2 * DW.macs) / 26e12 * 1e3, rel=1e-5)
    assert fit.bound == "compute" and fit.fits_memory is True
    assert fit.attainable_tflops == pytest.approx(26.0)


def test_accelerator_weights_beyond_chip_stream_over_the_link():
    big = record([CONV], weight_bytes=20_000_000)  # 20 MB at fp32 -> 5 MB at int8
    eff = Efficiency(0.5, 0.5, 1.0, "default", "test")
    fits = fit_model(big, [CONV], hailo(onchip=8_000_000, link=1e9), eff)
    assert fits.fits_memory is True and fits.time_host_link_ms == 0
    small_chip = fit_model(big, [CONV], hailo(onchip=2_000_000, link=1e9), eff)
    assert small_chip.fits_memory is False and "stream" in small_chip.memory_note
    stream_ms = (5_000_000 - 2_000_000) / 1e9 / 0.5 * 1e3  # 6 ms at half the link speed
    assert small_chip.time_host_link_ms == pytest.approx(stream_ms)
    assert small_chip.predicted_latency_ms == pytest.approx(1.0 + 2 * CONV.macs / 13e12 * 1e3 + stream_ms, rel=1e-5)
    assert small_chip.bound == "host-link"
    unknown = fit_model(big, [CONV], hailo(onchip=2_000_000, link=None), eff)
    assert unknown.predicted_latency_ms is None and "host link" in unknown.reason
    assert unknown.roofline_latency_ms == pytest.approx(2 * CONV.macs / 26e12 * 1e3, rel=1e-5)


def test_a_paired_accelerator_moves_inputs_and_outputs_over_the_host_link_by_hand():
    """Pi 5 + Hailo-8L style pair (``host_io``): each inference's input and output cross the link; the standalone
    chip (same numbers, no host) does not pay it."""
    # a 1x64x56x56 input and output (CONV's), fp32 in the record -> int8 on the NPU: 1 byte per element
    elems = 64 * 56 * 56
    rec = record([CONV], fused_bytes=CONV.weight_elems * 4 + 2 * elems * 4)  # weights + input + output at fp32
    pair = Target("pi-hailo", "typical", "int8", "npu", peak_flops=13e12, bandwidth=None,
                  onchip_memory_bytes=8_000_000, host_link_bytes_per_s=0.985e9, host_io=True)
    alone = Target("hailo-8l", "typical", "int8", "npu", peak_flops=13e12, bandwidth=None,
                   onchip_memory_bytes=8_000_000, host_link_bytes_per_s=0.985e9)
    io_ms = 2 * elems * 1 / 0.985e9 * 1e3  # 401,408 bytes over 0.985 GB/s = 0.4075 ms
    compute_ms = 2 * CONV.macs / 13e12 * 1e3
    with_io = fit_model(rec, [CONV], pair, PURE)
    without = fit_model(rec, [CONV], alone, PURE)
    assert io_ms == pytest.approx(0.40752, rel=1e-4)
    assert without.roofline_latency_ms == pytest.approx(compute_ms, rel=1e-5)
    assert with_io.roofline_latency_ms == pytest.approx(compute_ms + io_ms, rel=1e-5)
    assert with_io.time_host_link_ms == pytest.approx(io_ms, rel=1e-5)
    # with a calibration the link runs at eta_memory: at least io_ms, never less
    eff = Efficiency(0.5, 0.5, 1.0, "default", "test")
    assert fit_model(rec, [CONV], pair, eff).time_host_link_ms == pytest.approx(io_ms / 0.5, rel=1e-5)
    # weights beyond the chip stream over the same link, added to the I/O
    big = record([CONV], weight_bytes=20_000_000, fused_bytes=20_000_000 + 2 * elems * 4)
    small = Target("pi-hailo", "typical", "int8", "npu", peak_flops=13e12, bandwidth=None,
                   onchip_memory_bytes=2_000_000, host_link_bytes_per_s=0.985e9, host_io=True)
    assert fit_model(big, [CONV], small, PURE).time_host_link_ms == pytest.approx(
        (5_000_000 - 2_000_000 + 2 * elems) / 0.985e9 * 1e3, rel=1e-5)


def test_the_catalog_pair_charges_its_link_and_the_bare_npu_does_not():
    from embodied_tui.data.hardware import load_catalog
    from embodied_tui.perf.roofline import target_of

    catalog = {e.id: e for e in load_catalog()}
    pair = catalog["raspberry-pi-5-hailo-8l"]
    target, _ = target_of(pair, pair.mode(None), "int8")
    assert target.host_io and target.host_link_bytes_per_s == pair.host_link_gbps * 1e9
    for entry in catalog.values():
        if entry.host is None:
            for mode in entry.power_modes:
                t, _ = target_of(entry, mode, "int8")
                assert t is None or not t.host_io, entry.id


def test_memory_capacity_counts_weights_and_peak_activations():
    rec = record([CONV], weight_bytes=3_000_000_000, activation_bytes=2_000_000_000)
    assert fit_model(rec, [CONV], gpu(memory=8_000_000_000), PURE).fits_memory is True
    assert fit_model(rec, [CONV], gpu(memory=4_000_000_000), PURE).fits_memory is False
    # at fp16 both halve: 2.5 GB fits in 4 GB
    assert fit_model(rec, [CONV], gpu("fp16", memory=4_000_000_000), PURE).fits_memory is True


def test_model_without_macs_gives_a_reason_not_a_number():
    rec = record([CONV], macs=None, macs_null_reason="state_dict without an input shape")
    rec["macs"] = None
    fit = fit_model(rec, [], gpu(), PURE)
    assert fit.predicted_latency_ms is None and fit.roofline_latency_ms is None
    assert "state_dict without an input shape" in fit.reason


def test_model_without_layer_costs_uses_totals():
    rec = record([CONV], unfused_bytes=1_753_088)
    fit = fit_model(rec, [], gpu(), PURE)
    assert fit.roofline_latency_ms == pytest.approx(2 * CONV.macs / 1e12 * 1e3, rel=1e-5)
    assert any("one layer" in n for n in fit.notes)


def test_efficiency_bounds_are_enforced():
    with pytest.raises(ValueError):
        Efficiency(1.5, 0.5, 0, "x", "x")
    with pytest.raises(ValueError):
        Target("x", "m", "fp32", "gpu", peak_flops=1e12, bandwidth=0.0)


# ---------------------------------------------------------------------------------------------------- fitting

def _points(true: Efficiency, n: int, seed: int = 0, mixed: bool = False) -> list[Point]:
    """``n`` random models timed by ``true``; ``mixed``: each layer is pointwise, memory- or compute-bound at random
    (so every term of the model is seen), else MACs grow with the model's index."""
    rng = random.Random(seed)
    pts = []
    for k in range(n):
        layers = rng.randint(5, 80)
        costs = [LayerCost(name=str(i), type="x", macs=(int(rng.choice([0, 10**4, 10**7]) * rng.random()) if mixed
                                                        else rng.randint(0, 10**7) * (k + 1)),
                           weight_elems=rng.randint(0, 10**5), read_elems=rng.randint(0, 10**5),
                           write_elems=rng.randint(0, 10**5)) for i in range(layers)]
        times = layer_times(layer_work(costs, "fp32"), gpu())
        pts.append(Point(f"m{k}", times, predicted_seconds(times, true) * 1e3))
    return pts


def test_fit_recovers_known_efficiencies():
    true = Efficiency(0.6, 0.3, 0.05, "x", "truth")
    eff = fit_efficiency(_points(true, 8), DEFAULT_EFFICIENCY["cpu"], source="synthetic")
    assert eff.calibration == "measured" and eff.n_points == 8
    assert eff.eta_compute == pytest.approx(0.6, rel=0.05)
    assert eff.eta_memory == pytest.approx(0.3, rel=0.05)
    assert eff.overhead_ms == pytest.approx(0.05, rel=0.1)
    assert eff.fit_error < 0.01


def test_fit_recovers_small_kernel_terms():
    """Eight synthetic models whose layers have varied MACs per output and op counts: t_op and K come back."""
    true = Efficiency(0.7, 0.4, 0.02, "x", "truth", op_overhead_ms=0.003, macs_per_output_half=24)
    eff = fit_efficiency(_points(true, 8, mixed=True), DEFAULT_EFFICIENCY["cpu"], source="synthetic")
    assert eff.n_points == 8 and "t_op" in eff.source
    assert eff.eta_compute == pytest.approx(0.7, rel=0.05)
    assert eff.eta_memory == pytest.approx(0.4, rel=0.05)
    assert eff.macs_per_output_half == pytest.approx(24, rel=0.1)
    assert eff.op_overhead_ms == pytest.approx(0.003, rel=0.1)
    assert eff.overhead_ms == pytest.approx(0.02, rel=0.2)
    assert eff.fit_error < 0.01


def test_five_points_fit_no_small_kernel_terms():
    eff = fit_efficiency(_points(Efficiency(0.6, 0.3, 0.05, "x", "truth"), 5), DEFAULT_EFFICIENCY["cpu"],
                         source="five")
    assert eff.op_overhead_ms == 0 and eff.macs_per_output_half == 0
    assert eff.eta_compute == pytest.approx(0.6, rel=0.05) and eff.eta_memory == pytest.approx(0.3, rel=0.05)


def test_fewer_points_keep_the_base_small_kernel_terms():
    """A host calibrated with t_op and K, then one or three measurements of its own: the terms stay (t_op scaled with
    every other time for one point, as they are for three), and one point is matched exactly."""
    base = Efficiency(0.7, 0.4, 0.02, "host", "calibrate", op_overhead_ms=0.003, macs_per_output_half=24)
    truth = Efficiency(0.5, 0.3, 0.03, "x", "truth", op_overhead_ms=0.003, macs_per_output_half=24)
    one = fit_efficiency(_points(truth, 1, mixed=True), base, source="one")
    assert one.calibration == "scaled" and one.macs_per_output_half == 24
    scale = one.overhead_ms / base.overhead_ms
    assert one.op_overhead_ms == pytest.approx(0.003 * scale) and one.fit_error < 1e-9
    three = fit_efficiency(_points(truth, 3, mixed=True), base, source="three")
    assert (three.op_overhead_ms, three.macs_per_output_half) == (0.003, 24)
    assert "t_op and K kept from host" in three.source
    assert three.fit_error < 0.05


def test_scaling_keeps_k_and_scales_op_overhead():
    eff = Efficiency(0.4, 0.2, 1.0, "measured", "x", op_overhead_ms=0.01, macs_per_output_half=12)
    scaled = scale_efficiency(eff, 2.0, source="s")
    assert scaled.op_overhead_ms == pytest.approx(0.02) and scaled.macs_per_output_half == 12
    assert scaled.eta_compute == pytest.approx(0.2)


def test_one_point_fits_only_a_scale():
    pts = _points(Efficiency(0.2, 0.2, 0.3, "x", "truth"), 1)
    base = DEFAULT_EFFICIENCY["gpu"]
    eff = fit_efficiency(pts, base, source="one")
    assert eff.calibration == "scaled" and "scale factor" in eff.source
    assert predicted_seconds(pts[0].times, eff) * 1e3 == pytest.approx(pts[0].measured_ms, rel=1e-6)
    s = pts[0].measured_ms / (predicted_seconds(pts[0].times, base) * 1e3)
    assert eff.overhead_ms == pytest.approx(base.overhead_ms * s)
    assert eff.eta_compute / eff.eta_memory == pytest.approx(base.eta_compute / base.eta_memory)


def test_a_measurement_faster_than_the_roofline_is_not_fitted_below_it():
    pts = _points(PURE, 1)
    fast = Point("fast", pts[0].times, pts[0].measured_ms / 3)
    eff = fit_efficiency([fast], DEFAULT_EFFICIENCY["gpu"], source="fast")
    assert eff.eta_compute <= 1 and eff.eta_memory <= 1
    assert predicted_seconds(fast.times, eff) * 1e3 >= pts[0].measured_ms * (1 - 1e-9)
    assert eff.fit_error == pytest.approx(2.0, rel=1e-3)


def test_few_points_fit_scale_and_overhead():
    pts = _points(Efficiency(0.35, 0.7, 0.2, "x", "truth"), 3)
    eff = fit_efficiency(pts, Efficiency(0.5, 1.0, 0.0, "default", "base"), source="three")
    assert "3 measurements" in eff.source
    assert eff.eta_memory / eff.eta_compute == pytest.approx(2.0, rel=0.01)
    assert eff.fit_error < 0.05
    assert math.isfinite(eff.overhead_ms)


# ---------------------------------------------------------------------------------------------------- fusion, cache

def _lc(name, kind, macs=0, w=0, r=0, o=0):
    return LayerCost(name=name, type=kind, macs=macs, weight_elems=w, read_elems=r, write_elems=o)


def test_epilogue_fusion_charges_only_extra_operands():
    costs = [_lc("conv", "Conv", macs=1000, w=50, r=100, o=100),
             _lc("relu", "Relu", r=100, o=100),  # reads the conv output: free
             _lc("add", "Add", r=200, o=100),  # residual: the skip operand (100) is still read
             _lc("pool", "MaxPool", r=100, o=25),  # not pointwise: ends the chain, charged in full
             _lc("sig", "Sigmoid", r=25, o=25),  # no MAC layer before it in the chain: charged in full
             _lc("se", "Conv", macs=10, w=10, r=25, o=10),
             _lc("gate", "Sigmoid", r=10, o=10),
             _lc("scale", "Mul", r=1010, o=1000)]  # squeeze-excitation: reads the big tensor, writes a bigger output
    unfused = layer_work(costs, "fp32", "none")
    fused = layer_work(costs, "fp32", "epilogue")
    assert [w.bytes for w in unfused] == [w.unfused_bytes for w in fused]
    assert [w.act_bytes / 4 for w in fused] == [200, 0, 100, 125, 50, 35, 0, 1000 + 990]
    assert [w.fused for w in fused] == [False, True, True, False, False, False, True, True]
    assert [w.weight_bytes for w in fused] == [w.weight_bytes for w in unfused]
    assert [w.other_flops for w in fused] == [w.other_flops for w in unfused]


def test_fusion_follows_the_runtime():
    costs = [_lc("conv", "Conv2d", macs=1000, r=100, o=100), _lc("bn", "BatchNorm2d", w=4, r=100, o=100)]
    eager = fit_model(record(costs), costs, gpu(), Efficiency(1, 1, 0, "measured", "t", runtime="torch-cpu"))
    fused = fit_model(record(costs), costs, gpu(), Efficiency(1, 1, 0, "measured", "t", runtime="onnxruntime-cpu"))
    assert eager.fusion == "none" and fused.fusion == "epilogue"
    assert eager.bytes == fused.bytes == (100 + 100 + 4 + 100 + 100) * 4  # reported unfused either way
    assert eager.traffic_bytes == eager.bytes and fused.traffic_bytes == (100 + 100 + 4) * 4


def test_cache_level_speeds_up_what_fits_it():
    costs = [_lc("small", "Conv", macs=1, w=10, r=100, o=100), _lc("big", "Conv", macs=1, w=10, r=1000, o=1000)]
    work = layer_work(costs, "fp32")
    cached = Target("host", "d", "fp32", "cpu", peak_flops=1e12, bandwidth=1e9, cache_bytes=1000,
                    cache_bandwidth=1e10)
    times = layer_times(work, cached)
    # small: 800 B of activations and its 40 B of weights in cache; big: 8000 B of activations from DRAM
    assert times.tm[0] == pytest.approx(40 / 1e10 + 800 / 1e10)
    assert times.tm[1] == pytest.approx(40 / 1e10 + 8000 / 1e9)
    heavy = layer_times(work, cached, weight_bytes=5000)  # weights beyond the cache stream from DRAM
    assert heavy.tm[0] == pytest.approx(40 / 1e9 + 800 / 1e10)
    plain = layer_times(work, Target("g", "d", "fp32", "gpu", peak_flops=1e12, bandwidth=1e9))
    assert plain.tm == pytest.approx([840 / 1e9, 8040 / 1e9])


def test_a_device_that_states_a_cache_level_gives_it_to_the_target():
    from embodied_tui.data.hardware import parse_entry
    from embodied_tui.services.fit import target_for

    mode = {"name": "default", "cpu_cores": 4, "memory_bandwidth_gbps": 20.0, "cache_bandwidth_gbps": 90.0,
            "peak_tflops": {"fp32": 0.5}, "source": "test"}
    base = {"id": "cached-cpu", "name": "Cached CPU", "vendor": "Me", "type": "cpu", "power_modes": [mode],
            "default_mode": "default"}
    entry = parse_entry({**base, "cache_bytes": 1000}, "cached")
    target, why = target_for(entry, entry.default, "fp32")
    assert why is None and target.cache_bytes == 1000 and target.cache_bandwidth == pytest.approx(90e9)
    assert target.peak_flops == pytest.approx(0.5e12) and target.bandwidth == pytest.approx(20e9)
    assert target.power_w is None
    # the same hand-computed case as above: what fits the cache moves at its speed
    costs = [_lc("small", "Conv", macs=1, w=10, r=100, o=100), _lc("big", "Conv", macs=1, w=10, r=1000, o=1000)]
    times = layer_times(layer_work(costs, "fp32"), target)
    assert times.tm[0] == pytest.approx(840 / 90e9) and times.tm[1] == pytest.approx(40 / 90e9 + 8000 / 20e9)
    no_cache = {**mode, "cache_bandwidth_gbps": None}
    uncached = parse_entry({**base, "cache_bytes": 1000, "power_modes": [no_cache]}, "plain")
    plain, _ = target_for(uncached, uncached.default, "fp32")  # a size without a measured speed: no cache rule
    assert plain.cache_bytes is None and plain.cache_bandwidth is None


def test_io_bytes_of_a_real_model_by_hand():
    """ResNet-18 at 1x3x224x224: input 3 x 224 x 224 = 150,528 elements, output 1,000 logits; at int8 one byte each."""
    import torch

    from embodied_tui.analysis.torch.analyze import analyze_module
    from embodied_tui.analysis.zoo import BUILDERS
    from embodied_tui.perf.roofline import io_bytes_of

    with torch.device("meta"):
        module = BUILDERS["resnet18"].build()
    analysis = analyze_module(module, [[1, 3, 224, 224]], fmt="torch", detail="zoo resnet18")
    assert io_bytes_of(analysis, "int8") == pytest.approx(3 * 224 * 224 + 1000)
    assert io_bytes_of(analysis, "fp16") == pytest.approx(2 * (3 * 224 * 224 + 1000))
    assert io_bytes_of({"weight_bytes": 10, "fused_bytes": None, "dtype_bytes": 4}, "int8") is None
