"""Hugging Face configs counted analytically (analysis/hf/count.py), against hand arithmetic written out here, against
transformers' own models (parameter numel, torch's FlopCounterMode) and against our torch counter on the meta device.
Weight formats (perf/weight_formats.py) against their block layouts, by hand."""
from __future__ import annotations

import json

import pytest

from embodied_tui.analysis.hf import count
from embodied_tui.analysis.hf.config import parse_config_text, towers
from embodied_tui.errors import AnalysisError, UserError
from embodied_tui.perf.weight_formats import FORMATS, split_weight_bytes, weight_bytes

# hidden 64, 4 query heads and 2 KV heads of 16 (grouped-query), gated MLP 96, 2 layers, vocab 128
SMALL = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             vocab_size=128, max_position_embeddings=64)


def tower(**config):
    return towers(config)[0]


# ------------------------------------------------------------------------------------------------ by hand
def test_llama_params_by_hand():
    t = tower(model_type="llama", **SMALL)
    embed = 128 * 64
    attention = 64 * (4 * 16) + 2 * 64 * (2 * 16) + (4 * 16) * 64  # q, k, v (2 KV heads), o = 12288
    mlp = 3 * 64 * 96  # gate, up, down = 18432
    norms = 2 * 64  # input and post-attention RMSNorm weights
    per_layer = attention + mlp + norms
    assert count.params(t) == embed + 2 * per_layer + 64 + 128 * 64  # + final norm + untied LM head = 78144
    tied = tower(model_type="llama", tie_word_embeddings=True, **SMALL)
    assert count.params(tied) == count.params(t) - 128 * 64  # the LM head shares the embedding: counted once
    assert count.active_params_per_token(t) == count.params(t)  # dense: every parameter is active


def test_llama_macs_prefill_decode_and_kv_by_hand():
    t = tower(model_type="llama", **SMALL)
    per_token = 2 * (12288 + 18432) + 128 * 64 + 16 // 2  # projections + MLP per layer, LM head, rotary angles
    per_pair = 2 * (2 * 4 * 16)  # Q.K^T and A.V, every query head, in each of 2 layers
    poly = count.forward_macs(t)
    assert (poly.const, poly.per_token, poly.per_token_sq) == (0, per_token, per_pair)
    assert count.prefill_macs(t, 10) == per_token * 10 + per_pair * 10 * 10
    assert count.decode_macs(t, 10) == per_token + per_pair * 10  # one query over 10 keys
    kv = 2 * 2 * 2 * 16  # K and V, 2 layers, 2 KV heads, head_dim 16
    assert count.kv_cache_bytes_per_token(t, 2) == kv * 2
    assert count.kv_cache_bytes(t, 1000, 2) == kv * 2 * 1000
    # decode bytes at bf16 weights and fp16 cache: the weights read once (one embedding row, not the table) plus the
    # KV cache read for 10 tokens and written for 1
    read = count.params(t) - (128 - 1) * 64
    assert count.decode_weight_params(t) == read
    assert count.decode_bytes(t, 10) == read * 2 + kv * 2 * 11


def test_gqa_and_mqa_change_only_k_v():
    mha = tower(model_type="llama", **{**SMALL, "num_key_value_heads": 4})
    mqa = tower(model_type="llama", **{**SMALL, "num_key_value_heads": 1})
    # k and v projections are hidden x (kv_heads x head_dim): 2 x 64 x 16 per KV head per layer
    assert count.params(mha) - count.params(mqa) == 2 * 2 * 64 * 16 * (4 - 1)
    assert count.kv_cache_bytes_per_token(mha, 2) == 4 * count.kv_cache_bytes_per_token(mqa, 2)
    # every query head's scores count whatever the KV sharing
    assert count.forward_macs(mha).per_token_sq == count.forward_macs(mqa).per_token_sq


def test_moe_total_and_active_by_hand():
    t = tower(model_type="mixtral", num_local_experts=4, num_experts_per_tok=2, **SMALL)
    expert = 3 * 64 * 96
    router = 64 * 4
    per_layer = 12288 + 4 * expert + router + 2 * 64
    assert count.params(t) == 128 * 64 + 2 * per_layer + 64 + 128 * 64  # 189248
    assert count.active_params_per_token(t) == count.params(t) - 2 * (4 - 2) * expert  # 2 layers x 2 idle experts
    assert count.forward_macs(t).per_token == 2 * (12288 + router + 2 * expert) + 128 * 64 + 8


def test_qwen2_moe_shared_expert_and_dense_layers_by_hand():
    t = tower(model_type="qwen2_moe", num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
              shared_expert_intermediate_size=48, mlp_only_layers=[1], **SMALL)
    assert t.dense_layers == (1,)
    qkv_bias = 4 * 16 + 2 * 2 * 16  # q, k, v biases; o has none
    attention = 12288 + qkv_bias
    moe = 4 * 3 * 64 * 32 + 64 * 4 + 3 * 64 * 48 + 64  # experts, router, shared expert, its gate
    dense = 3 * 64 * 96
    assert count.params(t) == 128 * 64 + 2 * attention + moe + dense + 2 * 2 * 64 + 64 + 128 * 64
    assert count.forward_macs(t).per_token == 2 * 12288 + (64 * 4 + 2 * 3 * 64 * 32 + 3 * 64 * 48 + 64) + dense + \
        128 * 64 + 8


def test_encoder_pooler_is_a_constant_term():
    t = tower(model_type="bert", **SMALL)
    assert count.forward_macs(t).const == 64 * 64  # the pooler's dense layer on the first token
    assert count.forward_macs(t).per_token == 2 * (4 * 64 * 64 + 2 * 64 * 96)  # q, k, v, o; up, down (no LM head)


# ------------------------------------------------------------------------------------------------ weight formats
def test_weight_format_bytes_by_hand():
    n = 4096 * 4096
    assert weight_bytes(n, "bf16") == 2 * n
    assert weight_bytes(n, "fp8") == n
    # AWQ/GPTQ int4, groups of 128: 4-bit values, one fp16 scale and one packed 4-bit zero point per group
    assert weight_bytes(n, "int4") == n // 2 + (n // 128) * (16 + 4) // 8
    assert weight_bytes(n, "int4", group_size=64) == n // 2 + (n // 64) * 20 // 8
    assert weight_bytes(n, "int4_sym") == n // 2 + (n // 128) * 2
    assert weight_bytes(n, "nvfp4") == n // 2 + n // 16 + 4  # E4M3 byte per 16, one fp32 per tensor
    assert weight_bytes(n, "mxfp4") == n // 2 + n // 32  # E8M0 byte per 32
    assert weight_bytes(n, "q8_0") == (n // 32) * (32 + 2)  # 8.5 bits per weight
    assert weight_bytes(n, "q4_k") == (n // 256) * (128 + 12 + 2 + 2)  # 4.5 bits per weight
    assert weight_bytes(n, "q6_k") == (n // 256) * (128 + 64 + 16 + 2)  # 6.5625 bits per weight
    assert FORMATS["q4_k"].bits_per_weight() == 4.5 and FORMATS["q6_k"].bits_per_weight() == 6.5625
    assert FORMATS["q4_k_m"].average and "4.84" in FORMATS["q4_k_m"].source
    assert weight_bytes(n, "int8", group_size=4096) == n + 4096 * 2  # one fp16 scale per row of 4096
    assert split_weight_bytes(1000, 10, "int4_sym", group_size=100) == 500 + 10 * 2 + 10 * 2
    with pytest.raises(UserError, match="unknown weight format"):
        weight_bytes(10, "int3")


# ------------------------------------------------------------------------------------------------ hostile configs
def test_hostile_configs_are_one_line():
    with pytest.raises(AnalysisError, match="remote code"):
        parse_config_text(json.dumps({"model_type": "x", "auto_map": {"AutoModel": "m.Model"}}).encode(), "c.json")
    assert parse_config_text(json.dumps({"auto_map": {"AutoModel": "m.M"}}).encode(), "c.json", trust_code=True)
    for raw in (b"{", b"[1, 2]", b'{"a": NaN}', b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000):
        with pytest.raises(AnalysisError) as err:
            parse_config_text(raw, "c.json")
        assert "\n" not in str(err.value) and "c.json" in str(err.value)
    with pytest.raises(AnalysisError, match="not one we count.*supported: bert"):
        towers({"model_type": "nonsense"})
    with pytest.raises(AnalysisError, match="'hidden_size' must be an integer"):
        towers({"model_type": "llama", "hidden_size": -5})
    with pytest.raises(AnalysisError, match="layers.*less than or equal to 10000"):
        towers({"model_type": "llama", "num_hidden_layers": 10**9})  # refused before any per-layer loop
    with pytest.raises(AnalysisError, match="experts per token"):
        towers({"model_type": "mixtral", "num_local_experts": 2, "num_experts_per_tok": 3})
    with pytest.raises(AnalysisError, match="cannot share"):
        towers({"model_type": "llama", **{**SMALL, "num_key_value_heads": 3}})


# ------------------------------------------------------------------------------------------------ against transformers
FAMILIES = [
    {"model_type": "llama", **SMALL},
    {"model_type": "llama", **SMALL, "tie_word_embeddings": True, "attention_bias": True, "mlp_bias": True},
    {"model_type": "mistral", **SMALL},
    {"model_type": "qwen2", **SMALL},
    {"model_type": "qwen3", **SMALL, "head_dim": 32},
    {"model_type": "gemma", **SMALL, "head_dim": 16},
    {"model_type": "gemma2", **SMALL, "head_dim": 16},
    {"model_type": "gemma3_text", **SMALL, "head_dim": 16},
    {"model_type": "phi3", **SMALL, "pad_token_id": 0},
    {"model_type": "mixtral", **SMALL, "num_local_experts": 4, "num_experts_per_tok": 2},
    {"model_type": "qwen2_moe", **SMALL, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32,
     "shared_expert_intermediate_size": 48, "mlp_only_layers": [1]},
    {"model_type": "qwen3_moe", **SMALL, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32,
     "head_dim": 16},
    {"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 128, "n_positions": 32},
    {"model_type": "bert", **SMALL},
    {"model_type": "roberta", **SMALL, "pad_token_id": 1},
    {"model_type": "distilbert", "dim": 64, "n_layers": 2, "n_heads": 4, "hidden_dim": 96, "vocab_size": 128,
     "max_position_embeddings": 64},
]
VISION = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96, image_size=32,
              patch_size=8)
VISION_FAMILIES = [{"model_type": "vit", **VISION}, {"model_type": "siglip_vision_model", **VISION},
                   {"model_type": "clip_vision_model", **VISION}, {"model_type": "dinov2", **VISION},
                   {"model_type": "dinov2", **VISION, "use_swiglu_ffn": True, "mlp_ratio": 3},
                   {"model_type": "dinov2_with_registers", **VISION, "num_register_tokens": 2}]


def _real_model(config: dict):
    """The model transformers builds from ``config`` (random weights, CPU, eager attention)."""
    transformers = pytest.importorskip("transformers")
    import torch

    conf = transformers.AutoConfig.for_model(**config)
    torch.manual_seed(0)
    kind = towers(config)[0].kind
    cls = transformers.AutoModelForCausalLM if kind == "decoder" else transformers.AutoModel
    return cls.from_config(conf, attn_implementation="eager").eval()


def _flop_counter_macs(model, **inputs) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(**inputs)
    return counter.get_total_flops() // 2  # FLOPs = 2 x MACs in FlopCounterMode's table


@pytest.mark.parametrize("config", FAMILIES, ids=lambda c: c["model_type"])
def test_config_count_equals_transformers(config):
    import torch

    model = _real_model(config)
    t = towers(config)[0]
    assert count.params(t) == sum(p.numel() for p in model.parameters())
    n = 7
    ids = torch.randint(0, t.vocab, (1, n))
    # MoE: real routing sends each token to top-k experts, so the total is exact whatever the weights
    assert count.forward_macs(t).at(n) == _flop_counter_macs(model, input_ids=ids)


@pytest.mark.parametrize("config", VISION_FAMILIES, ids=lambda c: c["model_type"] + ("-swiglu" if
                                                                        c.get("use_swiglu_ffn") else ""))
def test_vision_tower_count_equals_transformers(config):
    import torch

    model = _real_model(config)
    t = towers(config)[0]
    assert count.params(t) == sum(p.numel() for p in model.parameters())
    assert count.vision_macs(t) == _flop_counter_macs(model, pixel_values=torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("config", [FAMILIES[0], FAMILIES[4], FAMILIES[9]], ids=lambda c: c["model_type"])
def test_decode_macs_equal_a_cached_forward(config):
    """decode_macs(L): one new token whose attention reads L keys, as HF's forward with a KV cache of L - 1 runs it."""
    import torch

    model = _real_model(config)
    t = towers(config)[0]
    with torch.no_grad():
        cache = model(input_ids=torch.randint(0, t.vocab, (1, 9)), use_cache=True).past_key_values
    macs = _flop_counter_macs(model, input_ids=torch.randint(0, t.vocab, (1, 1)), past_key_values=cache)
    assert macs == count.decode_macs(t, 10)


@pytest.mark.parametrize("config", [FAMILIES[0], FAMILIES[7]], ids=lambda c: c["model_type"])
def test_prefill_with_a_cached_context_equals_a_cached_forward(config):
    """prefill_macs(P, context): P new tokens attending to a cache of ``context`` and themselves, as HF's forward over
    P tokens with a KV cache of ``context`` runs it ("forward" convention). "runtime" drops the logits of all but the
    last position and the rotary angle matmul: (P - 1) x vocab x hidden + P x rope_dim/2 fewer, written out here."""
    import torch

    model = _real_model(config)
    t = towers(config)[0]
    with torch.no_grad():
        cache = model(input_ids=torch.randint(0, t.vocab, (1, 9)), use_cache=True).past_key_values
    macs = _flop_counter_macs(model, input_ids=torch.randint(0, t.vocab, (1, 5)), past_key_values=cache)
    assert macs == count.prefill_macs(t, 5, context=9)
    rope = t.rope_modules * 16 // 2  # head_dim 16, full rotary; Gemma3 computes two tables (global and local)
    assert count.prefill_macs(t, 5, context=9, convention="runtime") == macs - 4 * 128 * 64 - 5 * rope
    assert count.decode_macs(t, 10, convention="runtime") == count.decode_macs(t, 10) - rope


def test_dinov2_encode_at_another_resolution_by_hand():
    """DINOv2 at 224 px instead of its config's 518: (224 / 14)^2 = 256 patches + the class token, the patch
    convolution on the 256 patches only; the position table is interpolated (no MACs)."""
    t = tower(model_type="dinov2", hidden_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=518)
    assert (t.patches_at(224) + t.extra_tokens, t.intermediate, t.gated) == (257, 4 * 64, False)
    per_token = 2 * (4 * 64 * 64 + 2 * 64 * 256)  # q, k, v, o + fc1, fc2 in each of 2 layers
    per_pair = 2 * (2 * 4 * 16)
    patch = 256 * 3 * 14 * 14 * 64
    assert count.encode_macs(t, 257) == patch + per_token * 257 + per_pair * 257 ** 2
    # 4 register tokens given by a pipeline stage: attention over 261 tokens, the convolution still on 256 patches
    assert count.encode_macs(t, 261, patches=256) == patch + per_token * 261 + per_pair * 261 ** 2


def test_openpi_gemma_is_a_gemma_stack_without_vocabulary():
    t = tower(model_type="openpi_gemma", hidden_size=64, num_hidden_layers=2, intermediate_size=96,
              num_attention_heads=4, num_key_value_heads=1, head_dim=16, vocab_size=0)
    gemma = tower(model_type="gemma", hidden_size=64, num_hidden_layers=2, intermediate_size=96,
                  num_attention_heads=4, num_key_value_heads=1, head_dim=16, vocab_size=128)
    assert count.params(t) == count.params(gemma) - 128 * 64  # the same stack less the (tied) embedding table
    assert not t.lm_head and count.lm_head_macs_per_token(t) == 0
    with pytest.raises(AnalysisError, match="gated"):
        tower(model_type="openpi_gemma", hidden_size=64, num_hidden_layers=2, intermediate_size=96,
              num_attention_heads=4, head_dim=16, gated_mlp=False)


def test_vlm_config_has_text_and_vision_towers():
    config = {"model_type": "gemma3", "text_config": {"model_type": "gemma3_text", **SMALL, "head_dim": 16},
              "vision_config": {"model_type": "siglip_vision_model", **VISION, "vision_use_head": False}}
    text, vision = towers(config)
    assert (text.kind, vision.kind, vision.attn_pool_head) == ("decoder", "vision", False)


@pytest.mark.parametrize("model_type", ["llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text",
                                        "phi3", "mixtral", "qwen2_moe", "qwen3_moe", "gpt2", "bert", "roberta",
                                        "distilbert", "vit", "siglip_vision_model", "clip_vision_model", "dinov2",
                                        "dinov2_with_registers"])
def test_defaults_are_transformers_defaults(model_type):
    """A config that leaves keys out gets transformers' own defaults (compared with its config classes)."""
    transformers = pytest.importorskip("transformers")
    conf = transformers.AutoConfig.for_model(model_type)
    t = towers({"model_type": model_type})[0]
    get = lambda *names: next(getattr(conf, n) for n in names if getattr(conf, n, None) is not None)  # noqa: E731
    assert t.hidden == get("hidden_size", "n_embd", "dim")
    assert t.layers == get("num_hidden_layers", "n_layer", "n_layers")
    assert t.heads == get("num_attention_heads", "n_head", "n_heads")
    assert t.kv_heads == (getattr(conf, "num_key_value_heads", None) or t.heads)
    if t.kind != "vision":
        assert t.vocab == conf.vocab_size
        assert t.tied == conf.tie_word_embeddings or t.kind == "encoder"


@pytest.mark.parametrize("config", [FAMILIES[0], FAMILIES[7], FAMILIES[12], FAMILIES[13]],
                         ids=lambda c: c["model_type"])
def test_meta_build_counts_the_same(config):
    """transformers on the meta device, counted by our torch counter: the same params and MACs (dense models; MoE
    routing is data-dependent and cannot run on meta)."""
    pytest.importorskip("transformers")
    from embodied_tui.analysis.api import InputShape
    from embodied_tui.analysis.hf import meta

    t = towers(config)[0]
    model = meta.build_on_meta(config, causal_lm=t.kind == "decoder")
    fields = meta.count_on_meta(model, [InputShape([1, 7], "int64")])
    assert fields["params"] == count.params(t)
    assert fields["macs"] == count.forward_macs(t).at(7)


# ------------------------------------------------------------------------------------------------ published numbers
def test_published_parameter_counts():
    """Full-size configs (numbers from each model's config.json) against the counts their makers publish:
    Mixtral 8x7B "46.7B total, 12.9B per token" (Mistral AI's announcement); Qwen3-30B-A3B "30.5B in total and 3.3B
    activated" and Qwen3-0.6B "0.6B, 0.44B non-embedding" (the Qwen3 model cards); Llama 3 8B's 8,030,261,248 (the
    total its safetensors index on the Hub states)."""
    mixtral = tower(model_type="mixtral", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                    num_attention_heads=32, num_key_value_heads=8, vocab_size=32000, num_local_experts=8,
                    num_experts_per_tok=2)
    assert round(count.params(mixtral) / 1e9, 1) == 46.7
    assert round(count.active_params_per_token(mixtral) / 1e9, 1) == 12.9
    qwen_moe = tower(model_type="qwen3_moe", hidden_size=2048, intermediate_size=6144, num_hidden_layers=48,
                     num_attention_heads=32, num_key_value_heads=4, head_dim=128, vocab_size=151936, num_experts=128,
                     num_experts_per_tok=8, moe_intermediate_size=768)
    assert round(count.params(qwen_moe) / 1e9, 1) == 30.5
    assert 3.3e9 <= count.active_params_per_token(qwen_moe) < 3.4e9  # "3.3B" truncates: 3.35B with the embeddings
    qwen = tower(model_type="qwen3", hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                 num_attention_heads=16, num_key_value_heads=8, head_dim=128, vocab_size=151936,
                 tie_word_embeddings=True)
    assert round(count.params(qwen) / 1e9, 1) == 0.6
    assert round((count.params(qwen) - count.params_by_part(qwen)["embeddings"]) / 1e9, 2) == 0.44
    llama3 = tower(model_type="llama", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                   num_attention_heads=32, num_key_value_heads=8, vocab_size=128256)
    assert count.params(llama3) == 8_030_261_248
    assert count.kv_cache_bytes_per_token(llama3, 2) == 2 * 32 * 8 * 128 * 2  # 128 KiB per token in fp16
