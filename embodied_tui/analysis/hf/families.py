"""Each supported family's config keys and transformers' defaults for them -> the fields of a ``Tower``.

Defaults are transformers' own config defaults (tests/test_hf_config.py compares them with transformers 4.57's config
classes). A key with a value no model can have is one line naming the key.
"""
from __future__ import annotations

import math
from typing import Any

from embodied_tui.analysis.hf.tower import Tower
from embodied_tui.errors import AnalysisError


def brief(value: Any) -> str:
    """A config value (or any text from the file) as at most 80 printable characters, for an error line."""
    text = ", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
    return "".join(c if c.isprintable() else "?" for c in text)[:80]


def build(config: dict[str, Any], model_type: str, where: str) -> Tower:
    reader = _Reader(config, where)
    fields = BUILDERS[model_type](reader)
    fields.setdefault("model_type", model_type)
    dtype = config.get("torch_dtype") or config.get("dtype")
    fields["torch_dtype"] = dtype if isinstance(dtype, str) else None
    fields["evidence"] = tuple([f"config.json model_type '{model_type}'"] + reader.evidence(fields))
    try:
        return Tower(**fields)
    except ValueError as exc:
        first = exc.errors()[0] if hasattr(exc, "errors") else {"loc": (), "msg": str(exc)}
        key = ".".join(map(str, first["loc"]))
        raise AnalysisError(f"{where}: {key + ': ' if key else ''}{first['msg']}; the config is not one a model can "
                            "have") from None


class _Reader:
    """Typed reads of config keys with transformers' defaults; one line naming the key when a value is wrong."""

    def __init__(self, config: dict[str, Any], where: str):
        self.c, self.where = config, where

    def int(self, *keys: str, default: int | None = None, minimum: int = 1) -> int:
        for key in keys:
            value = self.c.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum or value > 1 << 40:
                raise AnalysisError(f"{self.where}: '{key}' must be an integer >= {minimum}, not "
                                    f"{brief(value)}; fix the config")
            return value
        if default is None:
            raise AnalysisError(f"{self.where}: '{keys[0]}' is missing; a config for this model_type needs it")
        return default

    def flag(self, key: str, default: bool) -> bool:
        value = self.c.get(key, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise AnalysisError(f"{self.where}: '{key}' must be true or false, not {brief(value)}")
        return value

    def text(self, key: str, default: str) -> str:
        value = self.c.get(key)
        return value if isinstance(value, str) else default

    def number(self, key: str, default: float) -> float:
        value = self.c.get(key, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise AnalysisError(f"{self.where}: '{key}' must be a positive number, not {brief(value)}")
        return float(value)

    def ints(self, key: str) -> tuple[int, ...]:
        value = self.c.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise AnalysisError(f"{self.where}: '{key}' must be a list of layer numbers")
        return tuple(value)

    def evidence(self, fields: dict) -> list[str]:
        out = [f"hidden {fields['hidden']}, {fields['layers']} layers, {fields['heads']} heads"]
        if fields["kv_heads"] < fields["heads"]:
            out.append(f"{fields['kv_heads']} KV heads ({'multi' if fields['kv_heads'] == 1 else 'grouped'}-query "
                       "attention)")
        if fields.get("experts"):
            out.append(f"{fields['experts']} experts, top-{fields['experts_per_token']} per token")
        return out


# ---- decoders -----------------------------------------------------------------------------------------------------
def _decoder(r: _Reader, *, family: str, hidden: int, inter: int, layers: int, heads: int, kv: int | None,
             vocab: int, positions: int, tied: bool, act: str, head_dim: int | None = None, qkv_bias: bool = False,
             o_bias: bool = False, mlp_bias: bool = False, qk_norm: bool = False, norms: int = 2,
             min_vocab: int = 1) -> dict:
    hidden = r.int("hidden_size", default=hidden)
    heads = r.int("num_attention_heads", default=heads)
    kv_heads = r.int("num_key_value_heads", default=kv if kv is not None else heads)
    if heads % kv_heads:
        raise AnalysisError(f"{r.where}: {heads} attention heads cannot share {kv_heads} KV heads evenly")
    dim = r.int("head_dim", default=head_dim or hidden // heads)
    rope = int(dim * r.number("partial_rotary_factor", 1.0))
    return dict(kind="decoder", family=family, hidden=hidden, layers=r.int("num_hidden_layers", default=layers),
                heads=heads, kv_heads=kv_heads, head_dim=dim, intermediate=r.int("intermediate_size", default=inter),
                gated=True, activation=r.text("hidden_activation", r.text("hidden_act", act)),
                vocab=r.int("vocab_size", default=vocab, minimum=min_vocab), tied=r.flag("tie_word_embeddings", tied),
                qkv_bias=qkv_bias, o_bias=o_bias, mlp_bias=mlp_bias, qk_norm=qk_norm, norm="rms",
                norms_per_layer=norms, max_positions=r.int("max_position_embeddings", default=positions),
                rope_dim=rope - rope % 2, rope_modules=1, lm_head=True)


def _llama(r: _Reader) -> dict:
    bias = r.flag("attention_bias", False)
    return _decoder(r, family="llama", hidden=4096, inter=11008, layers=32, heads=32, kv=None, vocab=32000,
                    positions=2048, tied=False, act="silu", qkv_bias=bias, o_bias=bias,
                    mlp_bias=r.flag("mlp_bias", False))


def _mistral(r: _Reader) -> dict:
    return _decoder(r, family="mistral", hidden=4096, inter=14336, layers=32, heads=32, kv=8, vocab=32000,
                    positions=4096 * 32, tied=False, act="silu")


def _qwen2(r: _Reader) -> dict:
    return _decoder(r, family="qwen", hidden=4096, inter=22016, layers=32, heads=32, kv=32, vocab=151936,
                    positions=32768, tied=False, act="silu", qkv_bias=True)


def _qwen3(r: _Reader) -> dict:
    bias = r.flag("attention_bias", False)
    return _decoder(r, family="qwen", hidden=4096, inter=22016, layers=32, heads=32, kv=32, vocab=151936,
                    positions=32768, tied=False, act="silu", head_dim=128, qkv_bias=bias, o_bias=bias, qk_norm=True)


def _gemma(r: _Reader) -> dict:
    bias = r.flag("attention_bias", False)
    return _decoder(r, family="gemma", hidden=3072, inter=24576, layers=28, heads=16, kv=16, vocab=256000,
                    positions=8192, tied=True, act="gelu_pytorch_tanh", head_dim=256, qkv_bias=bias, o_bias=bias)


def _gemma2(r: _Reader) -> dict:
    bias = r.flag("attention_bias", False)
    return _decoder(r, family="gemma", hidden=2304, inter=9216, layers=26, heads=8, kv=4, vocab=256000,
                    positions=8192, tied=True, act="gelu_pytorch_tanh", head_dim=256, qkv_bias=bias, o_bias=bias,
                    norms=4)


def _gemma3(r: _Reader) -> dict:
    bias = r.flag("attention_bias", False)
    fields = _decoder(r, family="gemma", hidden=2304, inter=9216, layers=26, heads=8, kv=4, vocab=262208,
                      positions=131072, tied=True, act="gelu_pytorch_tanh", head_dim=256, qkv_bias=bias, o_bias=bias,
                      qk_norm=True, norms=4)
    return {**fields, "rope_modules": 2, "model_type": "gemma3_text"}


def _openpi_gemma(r: _Reader) -> dict:
    """openpi's action expert (pi0 / pi0.5 "gemma_300m": width 1024, depth 18, MLP 4096, 8 heads sharing one KV head of
    256): a Gemma decoder stack with its own sizes and no token embedding or LM head of its own (``vocab_size`` 0; it
    reads the VLM's prefix through the KV cache). No transformers defaults: every size is required."""
    if not r.flag("gated_mlp", True):
        raise AnalysisError(f"{r.where}: 'gated_mlp' false, but openpi's Gemma experts use a gated (GeGLU) MLP")
    sizes = {key: r.int(key) for key in ("hidden_size", "num_hidden_layers", "intermediate_size",
                                          "num_attention_heads", "head_dim")}
    fields = _decoder(r, family="gemma", hidden=sizes["hidden_size"], inter=sizes["intermediate_size"],
                      layers=sizes["num_hidden_layers"], heads=sizes["num_attention_heads"], kv=None,
                      vocab=0, positions=8192, tied=True, act="gelu_pytorch_tanh", head_dim=sizes["head_dim"],
                      min_vocab=0)
    return {**fields, "lm_head": fields["vocab"] > 0}


def _phi3(r: _Reader) -> dict:
    return _decoder(r, family="phi", hidden=3072, inter=8192, layers=32, heads=32, kv=None, vocab=32064,
                    positions=4096, tied=False, act="silu")


def _mixtral(r: _Reader) -> dict:
    fields = _decoder(r, family="mistral", hidden=4096, inter=14336, layers=32, heads=32, kv=8, vocab=32000,
                      positions=4096 * 32, tied=False, act="silu")
    return {**fields, "experts": r.int("num_local_experts", default=8),
            "experts_per_token": r.int("num_experts_per_tok", default=2),
            "expert_intermediate": fields["intermediate"]}


def _moe_layers(r: _Reader, layers: int) -> tuple[int, ...]:
    """Layers without experts: listed in ``mlp_only_layers``, or off the ``decoder_sparse_step`` stride."""
    step = r.int("decoder_sparse_step", default=1)
    only = set(r.ints("mlp_only_layers"))
    return tuple(i for i in range(layers) if i in only or (i + 1) % step)


def _qwen2_moe(r: _Reader) -> dict:
    fields = _decoder(r, family="qwen", hidden=2048, inter=5632, layers=24, heads=16, kv=16, vocab=151936,
                      positions=32768, tied=False, act="silu", qkv_bias=r.flag("qkv_bias", True))
    return {**fields, "experts": r.int("num_experts", default=60), "experts_per_token": r.int("num_experts_per_tok",
                                                                                              default=4),
            "expert_intermediate": r.int("moe_intermediate_size", default=1408),
            "shared_intermediate": r.int("shared_expert_intermediate_size", default=5632, minimum=0),
            "shared_gate": True, "dense_layers": _moe_layers(r, fields["layers"])}


def _qwen3_moe(r: _Reader) -> dict:
    bias = r.flag("attention_bias", False)
    fields = _decoder(r, family="qwen", hidden=2048, inter=6144, layers=24, heads=32, kv=4, vocab=151936,
                      positions=32768, tied=False, act="silu", head_dim=None, qkv_bias=bias, o_bias=bias,
                      qk_norm=True)
    return {**fields, "experts": r.int("num_experts", default=128),
            "experts_per_token": r.int("num_experts_per_tok", default=8),
            "expert_intermediate": r.int("moe_intermediate_size", default=768),
            "dense_layers": _moe_layers(r, fields["layers"])}


def _gpt2(r: _Reader) -> dict:
    hidden = r.int("n_embd", "hidden_size", default=768)
    heads = r.int("n_head", "num_attention_heads", default=12)
    positions = r.int("n_positions", "max_position_embeddings", default=1024)
    return dict(kind="decoder", family="gpt", hidden=hidden, layers=r.int("n_layer", "num_hidden_layers", default=12),
                heads=heads, kv_heads=heads, head_dim=hidden // heads, intermediate=r.int("n_inner", default=4 * hidden),
                gated=False, activation=r.text("activation_function", "gelu_new"), vocab=r.int("vocab_size",
                                                                                               default=50257),
                tied=r.flag("tie_word_embeddings", True), qkv_bias=True, o_bias=True, mlp_bias=True, norm="layer",
                max_positions=positions, learned_positions=positions, lm_head=True)


# ---- encoders -----------------------------------------------------------------------------------------------------
def _encoder(r: _Reader, family: str, *, vocab: int, positions: int, token_types: int, pooler: bool) -> dict:
    hidden = r.int("hidden_size", default=768)
    heads = r.int("num_attention_heads", default=12)
    positions = r.int("max_position_embeddings", default=positions)
    return dict(kind="encoder", family=family, hidden=hidden, layers=r.int("num_hidden_layers", default=12),
                heads=heads, kv_heads=heads, head_dim=hidden // heads,
                intermediate=r.int("intermediate_size", default=3072), gated=False,
                activation=r.text("hidden_act", "gelu"), vocab=r.int("vocab_size", default=vocab), tied=False,
                qkv_bias=True, o_bias=True, mlp_bias=True, norm="layer", max_positions=positions,
                learned_positions=positions, token_types=r.int("type_vocab_size", default=token_types, minimum=0),
                pooler=pooler, embed_norm=True, final_norm=False)


def _bert(r: _Reader) -> dict:
    return _encoder(r, "bert", vocab=30522, positions=512, token_types=2, pooler=True)


def _roberta(r: _Reader) -> dict:
    return _encoder(r, "bert", vocab=50265, positions=512, token_types=2, pooler=True)


def _distilbert(r: _Reader) -> dict:
    hidden = r.int("dim", default=768)
    heads = r.int("n_heads", default=12)
    positions = r.int("max_position_embeddings", default=512)
    return dict(kind="encoder", family="bert", hidden=hidden, layers=r.int("n_layers", default=6), heads=heads,
                kv_heads=heads, head_dim=hidden // heads, intermediate=r.int("hidden_dim", default=4 * 768),
                gated=False, activation=r.text("activation", "gelu"), vocab=r.int("vocab_size", default=30522),
                tied=False, qkv_bias=True, o_bias=True, mlp_bias=True, norm="layer", max_positions=positions,
                learned_positions=positions, embed_norm=True, final_norm=False)


def _vision(r: _Reader, family: str, *, patch: int, act: str, cls: bool, patch_bias: bool, pooler: bool = False,
            pre_norm: bool = False, head: bool = False, qkv_bias: bool = True) -> dict:
    hidden = r.int("hidden_size", default=768)
    heads = r.int("num_attention_heads", default=12)
    image, patch = r.int("image_size", default=224), r.int("patch_size", default=patch)
    tokens = (image // patch) ** 2 + (1 if cls else 0)
    return dict(kind="vision", family=family, hidden=hidden, layers=r.int("num_hidden_layers", default=12),
                heads=heads, kv_heads=heads, head_dim=hidden // heads,
                intermediate=r.int("intermediate_size", default=3072), gated=False,
                activation=r.text("hidden_act", act), vocab=0, tied=False, qkv_bias=qkv_bias, o_bias=True,
                mlp_bias=True, norm="layer", max_positions=tokens, learned_positions=tokens, pooler=pooler,
                image_size=image, patch_size=patch, channels=r.int("num_channels", default=3), cls_token=cls,
                patch_bias=patch_bias, pre_norm=pre_norm, attn_pool_head=head)


def _dinov2(r: _Reader, registers: int = 0, mask: bool | None = None) -> dict:
    """DINOv2 (``Dinov2Model``): a ViT with a class token, a mask token, two LayerScale vectors per layer, no pooler,
    and an MLP of ``mlp_ratio x hidden`` (plain fc1/fc2, or SwiGLU with ``use_swiglu_ffn``: 2/3 of it, rounded up to
    a multiple of 8, as transformers' ``Dinov2SwiGLUFFN``)."""
    hidden = r.int("hidden_size", default=768)
    width = int(hidden * r.number("mlp_ratio", 4))
    swiglu = r.flag("use_swiglu_ffn", False)
    if swiglu:
        width = (int(width * 2 / 3) + 7) // 8 * 8
    fields = _vision(r, "vit", patch=14, act="gelu", cls=True, patch_bias=True, qkv_bias=r.flag("qkv_bias", True))
    return {**fields, "intermediate": width, "gated": swiglu, "activation": "silu" if swiglu else fields["activation"],
            "mask_token": r.flag("use_mask_token", True) if mask is None else mask, "layer_scales": 2,
            "register_tokens": registers}


def _dinov2_registers(r: _Reader) -> dict:
    return {**_dinov2(r, registers=r.int("num_register_tokens", default=4, minimum=0), mask=True),
            "model_type": "dinov2_with_registers"}


def _vit(r: _Reader) -> dict:
    return _vision(r, "vit", patch=16, act="gelu", cls=True, patch_bias=True, pooler=True,
                   qkv_bias=r.flag("qkv_bias", True))


def _siglip(r: _Reader) -> dict:
    return {**_vision(r, "siglip", patch=16, act="gelu_pytorch_tanh", cls=False, patch_bias=True,
                      head=r.flag("vision_use_head", True)), "model_type": "siglip_vision_model"}


def _clip(r: _Reader) -> dict:
    return {**_vision(r, "clip", patch=32, act="quick_gelu", cls=True, patch_bias=False, pre_norm=True),
            "model_type": "clip_vision_model"}


BUILDERS = {"llama": _llama, "mistral": _mistral, "qwen2": _qwen2, "qwen3": _qwen3, "gemma": _gemma,
             "gemma2": _gemma2, "gemma3_text": _gemma3, "phi3": _phi3, "gpt2": _gpt2, "mixtral": _mixtral,
             "qwen2_moe": _qwen2_moe, "qwen3_moe": _qwen3_moe, "bert": _bert, "roberta": _roberta,
             "distilbert": _distilbert, "vit": _vit, "siglip_vision_model": _siglip, "clip_vision_model": _clip,
             "dinov2": _dinov2, "dinov2_with_registers": _dinov2_registers, "openpi_gemma": _openpi_gemma}
