"""LLM phases (perf/phases.py, on analysis/hf/count.py's "runtime" convention): the work of encode, prefill and
decode written out by hand, the time on a catalog device by the formula, GQA's KV cache, published parameter counts,
weight formats named by a stage, and the efficiency fit."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from embodied_tui.analysis.hf import count
from embodied_tui.data.hardware import find_device
from embodied_tui.errors import UserError
from embodied_tui.perf import phases

CONFIGS = Path(__file__).resolve().parents[1] / "examples" / "configs"

# a tiny Llama-style decoder: 2 layers, hidden 64, 4 query heads sharing 2 KV heads of 16, gated MLP 128, vocab 100
TINY = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 128, "vocab_size": 100,
        "tie_word_embeddings": False}
# per layer: q 64x64, k 64x32, v 64x32, o 64x64, gate/up/down 3 x 64x128
LINEAR = 2 * (64 * 64 + 64 * 32 + 64 * 32 + 64 * 64 + 3 * 64 * 128)  # 73728
HEAD = 100 * 64  # LM head, 6400
NORMS = (2 * 2 + 1) * 64  # RMSNorm weights: 2 per layer + the final one, 320
ROW = 64  # one embedding row: a pass over n tokens looks up n rows of the (untied) table, not all 100
KV_PER_TOKEN = 2 * 2 * 2 * 16 * 2  # K and V x 2 layers x 2 KV heads x 16 dims x 2 bytes = 256


def attention(queries: int, keys: int) -> int:
    """Q.K^T and A.V: 2 x queries x keys x 4 heads x 16 dims, in each of 2 layers."""
    return 2 * (2 * queries * keys * 4 * 16)


@pytest.fixture(scope="module")
def tiny() -> phases.TransformerShape:
    return phases.shape_from_config(TINY, "tiny", "tiny config")


@pytest.fixture(scope="module")
def orin():
    mode = find_device("jetson-orin-nano-8gb-super").mode("MAXN_SUPER")
    return mode.peak_flops("fp16"), mode.bandwidth_bytes_per_s()


def test_tiny_counts(tiny):
    assert count.quantizable_params(tiny.tower) == LINEAR + HEAD == 73728 + 6400  # what a weight format quantises
    assert tiny.params == LINEAR + 100 * 64 + HEAD + NORMS  # + token embedding + untied head + norm scales
    assert tiny.kv_bytes_per_token == KV_PER_TOKEN


def test_prefill_work_and_time(tiny, orin):
    peak, bw = orin
    assert peak == 16.712e12 and bw == 102e9  # 8 SM x 2048 FLOP/clk x 1020 MHz; 102 GB/s (catalog)
    p = phases.prefill_pass(tiny, 8, "fp16")
    # logits for the last token only; rotary angles from a table (no MACs): the "runtime" convention
    assert p.macs == 8 * LINEAR + attention(8, 8) + HEAD
    assert count.prefill_macs(tiny.tower, 8) == p.macs + 7 * HEAD + 8 * 16 // 2  # "forward": every logit, angles
    # weights read once: linear matrices, norm scales, and the 8 embedding rows looked up
    assert p.weight_bytes == (LINEAR + HEAD + NORMS + 8 * ROW) * 2
    assert p.kv_read_bytes == 0 and p.kv_write_bytes == 8 * KV_PER_TOKEN
    eff = phases.PhaseEfficiency(eta_compute=0.5, eta_memory=0.8, per_call_ms=0.1, source="test")
    fit = phases.fit_phase(tiny, "prefill", 8, "fp16", peak_flops=peak, bandwidth=bw, eff=eff)
    compute_s = 2 * (8 * 73728 + 2 * 2 * 8 * 8 * 4 * 16 + 6400) / 16.712e12
    memory_s = ((73728 + 6400 + 320 + 8 * 64) * 2 + 8 * 256) / 102e9
    assert fit.compute_ms == pytest.approx(compute_s * 1e3)
    assert fit.memory_ms == pytest.approx(memory_s * 1e3)
    assert fit.roofline_ms == pytest.approx(max(compute_s, memory_s) * 1e3)
    assert fit.predicted_ms == pytest.approx(max(compute_s / 0.5, memory_s / 0.8) * 1e3 + 0.1)
    assert fit.bound == "overhead"  # a tiny model: 0.1 ms of overhead dwarfs microseconds of work


def test_prefill_with_context_attends_to_the_cache(tiny):
    p = phases.prefill_pass(tiny, 10, "fp16", context=30)
    assert p.macs == 10 * LINEAR + attention(10, 40) + HEAD
    assert p.kv_read_bytes == 30 * KV_PER_TOKEN and p.kv_write_bytes == 10 * KV_PER_TOKEN


def test_decode_work_and_time(tiny, orin):
    peak, bw = orin
    passes = phases.decode_passes(tiny, 3, "int4", context=8)
    int4 = (4 + 16 / 32) / 8  # bytes per weight: 4-bit values + an fp16 scale per 32 (MLC q4f16_1)
    for j, p in enumerate(passes):
        attended = 8 + j + 1  # 9, 10, 11
        assert p.macs == LINEAR + attention(1, attended) + HEAD
        # the matrices at int4; norm scales and the one embedding row looked up stay 16-bit
        assert p.weight_bytes == pytest.approx((LINEAR + HEAD) * int4 + (NORMS + ROW) * 2)
        assert p.kv_read_bytes == (attended - 1) * KV_PER_TOKEN and p.kv_write_bytes == KV_PER_TOKEN
    eff = phases.PhaseEfficiency(eta_compute=0.5, eta_memory=0.8, per_call_ms=0.2, source="test")
    fit = phases.fit_phase(tiny, "decode", 3, "int4", peak_flops=peak, bandwidth=bw, context=8, eff=eff)
    assert fit.compute_precision == "fp16"  # int4 is weight-only: the matmuls run at the fp16 peak
    expected = 0.0
    for attended in (9, 10, 11):
        c = 2 * (73728 + 2 * 2 * attended * 4 * 16 + 6400) / 16.712e12
        m = ((73728 + 6400) * 4.5 / 8 + (320 + 64) * 2 + (attended - 1) * 256 + 256) / 102e9
        expected += max(c / 0.5, m / 0.8) + 0.2e-3
    assert fit.predicted_ms == pytest.approx(expected * 1e3)
    assert fit.passes == 3 and fit.macs == sum(p.macs for p in passes)


def test_encode_of_a_vision_tower():
    vit = phases.shape_from_config({"model_type": "dinov2", "hidden_size": 32, "num_hidden_layers": 1,
                                    "num_attention_heads": 2, "mlp_ratio": 4, "image_size": 56, "patch_size": 14},
                                   "vit", "vit config")
    assert vit.image_tokens() == 4 * 4 + 1  # (56 / 14)^2 patches + class token
    p = phases.encode_pass(vit, 17, "fp16")
    linear = 4 * 32 * 32 + 2 * 32 * 128  # q, k, v, o + plain MLP (up, down)
    patch = 16 * 3 * 14 * 14 * 32  # 16 patches x (3 x 14 x 14) x 32
    assert p.macs == 17 * linear + 2 * 17 * 17 * 2 * 16 + patch
    # a vision tower reads every parameter once: the matrices, their biases (q, k, v, o, fc1 128, fc2), 2 LayerNorms
    # per layer + the final one (weight + bias), 2 LayerScale vectors, the patch conv + bias, class token, mask token
    # and 17 position rows
    params = linear + (4 * 32 + 128 + 32) + 3 * 2 * 32 + 2 * 32 + (3 * 14 * 14 * 32 + 32) + 32 + 32 + 17 * 32
    assert vit.params == params
    assert p.kv_write_bytes == 0 and p.weight_bytes == params * 2
    # 4 register tokens on top: attention over 21 tokens, the patch convolution still on 16 patches
    assert phases.encode_pass(vit, 21, "fp16", patches=16).macs == 21 * linear + 2 * 21 * 21 * 2 * 16 + patch


def test_a_stage_may_name_its_weight_format(tiny):
    """``weights:`` replaces the precision's format for the linear matrices: AWQ's int4 (groups of 128 with an fp16
    scale and a 4-bit zero point: 4 + 20/128 bits) and llama.cpp's Q4_K_M average (4.84 bits); the rest stays 16-bit.
    The compute precision stays the stage's (fp16 here)."""
    awq = phases.decode_passes(tiny, 1, "fp16", context=8, weights="awq")[0]
    assert awq.weight_bytes == pytest.approx((LINEAR + HEAD) * (4 + 20 / 128) / 8 + (NORMS + ROW) * 2)
    q4km = phases.decode_passes(tiny, 1, "fp16", context=8, weights="q4_k_m")[0]
    assert q4km.weight_bytes == pytest.approx((LINEAR + HEAD) * 4.84 / 8 + (NORMS + ROW) * 2)
    assert awq.macs == q4km.macs == LINEAR + attention(1, 9) + HEAD  # the format changes bytes, not work
    assert phases.WEIGHT_BITS["int4"] == 4.5 and phases.PRECISION_FORMAT["int4"] == "q4f16_1"
    # stored: the matrices at the format (one fp16 scale + 4-bit zero per 128), the embedding and norms at 16 bits
    assert phases.stored_weight_bytes(tiny, "fp16", weights="awq") == \
        (LINEAR + HEAD) // 2 + -(-(LINEAR + HEAD) // 128) * 20 // 8 + (100 * 64 + NORMS) * 2
    assert phases.stored_weight_bytes(tiny, "fp16") == tiny.params * 2


def test_openpi_action_expert_attends_to_a_cached_prefix():
    """openpi's Gemma-300M action expert (examples/configs/openpi-gemma-300m: width 1024, 18 layers, MLP 4096, 8 query
    heads sharing 1 KV head of 256, no vocabulary): its parameters by hand, and a 50-token action chunk prefilled
    against an 800-token VLM prefix in its cache (no LM head)."""
    expert = phases.shape_from_config(json.loads((CONFIGS / "openpi-gemma-300m" / "config.json").read_text()), "ae",
                                      "ae")
    attn = 1024 * 8 * 256 + 2 * 1024 * 1 * 256 + 8 * 256 * 1024  # q, k, v (one KV head), o = 4,718,592
    mlp = 3 * 1024 * 4096  # gate, up, down = 12,582,912
    norms = 2 * 1024  # two RMSNorm weights per layer
    assert expert.params == 18 * (attn + mlp + norms) + 1024 == 311_464_960  # + final norm: the "300M" expert
    p = phases.prefill_pass(expert, 50, "bf16", context=800)
    assert p.macs == 50 * 18 * (attn + mlp) + 18 * 2 * 50 * (800 + 50) * 8 * 256
    assert p.kv_read_bytes == 800 * 2 * 18 * 1 * 256 * 2 and p.kv_write_bytes == 50 * 2 * 18 * 256 * 2


def test_gqa_kv_cache_bytes():
    """Llama 3.1 8B (32 query heads share 8 KV heads) holds 128 KiB per token in fp16; Llama 2 7B (MHA) 512 KiB."""
    gqa = phases.shape_from_config(json.loads((CONFIGS / "llama-3.1-8b" / "config.json").read_text()), "l3", "l3")
    mha = phases.shape_from_config(json.loads((CONFIGS / "llama-2-7b" / "config.json").read_text()), "l2", "l2")
    assert gqa.kv_bytes_per_token == 2 * 32 * 8 * 128 * 2 == 128 * 1024
    assert mha.kv_bytes_per_token == 2 * 32 * 32 * 128 * 2 == 512 * 1024


@pytest.mark.parametrize(("folder", "published"), [
    ("llama-2-7b", 6_738_415_616),  # transformers' num_parameters() of meta-llama/Llama-2-7b-hf
    ("llama-3.1-8b", 8_030_261_248),  # the model card's 8.03B
    ("llama-3.2-3b", 3_212_749_824),  # 3.21B, tied embeddings
    ("smollm2-135m", 134_515_008),  # 135M, tied embeddings
])
def test_params_match_published_counts(folder, published):
    """Every parameter, norm scales included (analysis.hf.count.params), gives the published count exactly."""
    shape = phases.shape_from_config(json.loads((CONFIGS / folder / "config.json").read_text()), folder, folder)
    assert shape.params == published


def test_fit_overhead_line_by_hand():
    # measured = roof / eta + t: points on 2 x + 5 give eta 0.5 and t 5 ms
    fit = phases.fit_overhead_line([(10.0, 25.0), (20.0, 45.0), (30.0, 65.0)], source="t")
    assert fit.eta_memory == pytest.approx(0.5) and fit.per_call_ms == pytest.approx(5.0)
    assert fit.fit_error == pytest.approx(0.0, abs=1e-12) and fit.n_points == 3
    # faster than the roof is impossible: eta stays 1 and the excess goes to the overhead
    fit = phases.fit_overhead_line([(10.0, 11.0), (20.0, 20.5)], source="t")
    assert fit.eta_memory == 1.0 and fit.per_call_ms == pytest.approx(0.75)


def test_efficiencies_are_what_the_benchmark_fits():
    """DECODE_EFFICIENCY, PREFILL_EFFICIENCY and PREFILL_ETA_BY_DEVICE hold the fits of benchmarks/llm_accuracy.py
    over the published rows: a new row changes a fit and this test says to copy the new numbers."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "llm_accuracy.py"
    spec = importlib.util.spec_from_file_location("llm_accuracy", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    decode = bench.evaluate("decode_per_token")
    eff = phases.DECODE_EFFICIENCY
    assert (decode["fit"]["eta_memory"], decode["fit"]["per_call_ms"], decode["fit"]["n_points"]) == (
        pytest.approx(eff.eta_memory, abs=5e-4), pytest.approx(eff.per_call_ms, abs=5e-3), eff.n_points)
    prefill = bench.evaluate("prefill")
    assert prefill["fit"]["eta_compute"] == pytest.approx(phases.PREFILL_EFFICIENCY.eta_compute, abs=5e-4)
    assert prefill["fit"]["n_points"] == phases.PREFILL_EFFICIENCY.n_points
    assert prefill["by_device"] == pytest.approx(phases.PREFILL_ETA_BY_DEVICE, abs=5e-4)


def test_bad_configs_say_what_is_wrong():
    with pytest.raises(UserError, match="cfg.json: 4 attention heads cannot share 3 KV heads evenly"):
        phases.shape_from_config({**TINY, "num_key_value_heads": 3}, "x", "cfg.json")
    with pytest.raises(UserError, match="cfg.json: model_type 'mamba' is not one we count from a config"):
        phases.shape_from_config({"model_type": "mamba", "hidden_size": 64}, "x", "cfg.json")
    with pytest.raises(UserError, match="cfg.json: 'hidden_size' is missing"):
        phases.shape_from_config({"model_type": "openpi_gemma"}, "x", "cfg.json")  # no defaults to fall back on
    with pytest.raises(UserError, match="unknown precision 'fp7'"):
        phases.weight_format_of("fp7")
    with pytest.raises(UserError, match="unknown weight format 'int3'"):
        phases.fit_phase(phases.shape_from_config(TINY, "x", "x"), "decode", 1, "fp16", peak_flops=1e12,
                         bandwidth=1e9, weights="int3")


def test_no_peak_is_none_with_a_reason(tiny):
    fit = phases.fit_phase(tiny, "prefill", 4, "fp16", peak_flops=None, bandwidth=1e9)
    assert fit.predicted_ms is None and fit.roofline_ms is None and "no fp16 peak" in fit.reason
