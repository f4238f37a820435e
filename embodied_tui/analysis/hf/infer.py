"""A config rebuilt from a checkpoint's tensor names and shapes, for weights that come without their config.json:
GPT-2, BERT / RoBERTa, ViT and Llama-style decoders (Llama, Mistral, Qwen2, Qwen3, Gemma2/3 norms).

What shapes cannot say is assumed and stated in the tower's evidence: the split of the attention width into heads
(head_dim 64 for GPT-2/BERT/ViT, else the first of 128, 64, 256, 96, 80 that divides both the q and k widths, unless
a per-head q_norm gives it; else their greatest common divisor). Params, linear and attention MACs and KV-cache bytes do not depend on that split; only
``heads`` / ``head_dim`` and the rotary-angle MACs (head_dim / 2 per token) do. A rotary model's max_positions is not
stored in its weights: 0 (unknown). MoE checkpoints are not inferred (top-k is not in the weights).
"""
from __future__ import annotations

import math
import re

from embodied_tui.analysis.hf.config import Tower, towers

Shapes = dict[str, list[int]]


def infer_tower(shapes: Shapes) -> Tower | None:
    """The tower these tensors are the weights of, or None when they match none of the known layouts."""
    for infer in (_llama_style, _gpt2, _bert, _vit):
        found = infer(shapes)
        if found is not None:
            return found
    return None


def _prefix(shapes: Shapes, suffix: str) -> str | None:
    """The prefix before ``suffix`` of the first tensor name that ends with it ('' when the name is the suffix)."""
    for name in shapes:
        if name == suffix or name.endswith("." + suffix):
            return name[: len(name) - len(suffix)]
    return None


def _layers(shapes: Shapes, pattern: str) -> int:
    found = [int(m.group(1)) for name in shapes if (m := re.match(pattern, name))]
    return max(found) + 1 if found else 0


def _tower(config: dict, evidence: list[str], **overrides) -> Tower | None:
    try:
        tower = towers(config, "tensor names")[0]
    except Exception:  # shapes that make no model: not this layout
        return None
    return tower.model_copy(update={**overrides, "evidence": (tower.evidence[0].replace("config.json", "inferred"),
                                                              *evidence)})


def _llama_style(s: Shapes) -> Tower | None:
    p = _prefix(s, "embed_tokens.weight")
    if p is None or f"{p}layers.0.self_attn.q_proj.weight" not in s:
        return None
    if any(".experts." in n for n in s):
        return None
    vocab, hidden = s[f"{p}embed_tokens.weight"]
    layer = f"{p}layers.0."
    q_out, k_out = s[layer + "self_attn.q_proj.weight"][0], s[layer + "self_attn.k_proj.weight"][0]
    gate = s.get(layer + "mlp.gate_proj.weight")
    if gate is None:
        return None
    qk_norm = layer + "self_attn.q_norm.weight" in s
    head_dim = s[layer + "self_attn.q_norm.weight"][0] if qk_norm else \
        next((d for d in (128, 64, 256, 96, 80) if q_out % d == 0 and k_out % d == 0), math.gcd(q_out, k_out))
    q_bias, o_bias = layer + "self_attn.q_proj.bias" in s, layer + "self_attn.o_proj.bias" in s
    four_norms = layer + "pre_feedforward_layernorm.weight" in s
    if four_norms:
        model_type = "gemma3_text" if qk_norm else "gemma2"
    elif qk_norm:
        model_type = "qwen3"
    elif q_bias and not o_bias:
        model_type = "qwen2"
    else:
        model_type = "llama"
    untied = "lm_head.weight" in s
    config = {"model_type": model_type, "vocab_size": vocab, "hidden_size": hidden, "intermediate_size": gate[0],
              "num_hidden_layers": _layers(s, re.escape(p) + r"layers\.(\d+)\."),
              "num_attention_heads": q_out // head_dim, "num_key_value_heads": k_out // head_dim,
              "head_dim": head_dim, "tie_word_embeddings": not untied, "attention_bias": o_bias,
              "mlp_bias": layer + "mlp.gate_proj.bias" in s, "max_position_embeddings": 1}
    evidence = [f"{p}embed_tokens {vocab}x{hidden}, q {q_out}, k {k_out}, gate {gate[0]}",
                f"head_dim {head_dim} {'from q_norm' if qk_norm else 'assumed (heads split only)'}",
                "LM head " + ("stored" if untied else "tied to the embedding" if p else "absent (base model)")]
    return _tower(config, evidence, max_positions=0, lm_head=untied or bool(p))


def _gpt2(s: Shapes) -> Tower | None:
    p = _prefix(s, "wte.weight")
    if p is None or f"{p}h.0.attn.c_attn.weight" not in s or f"{p}wpe.weight" not in s:
        return None
    vocab, hidden = s[f"{p}wte.weight"]
    config = {"model_type": "gpt2", "vocab_size": vocab, "n_embd": hidden, "n_positions": s[f"{p}wpe.weight"][0],
              "n_layer": _layers(s, re.escape(p) + r"h\.(\d+)\."), "n_head": max(hidden // 64, 1),
              "n_inner": s[f"{p}h.0.mlp.c_fc.weight"][1] if f"{p}h.0.mlp.c_fc.weight" in s else None}
    if hidden % 64:
        config["n_head"] = 1
    return _tower(config, [f"wte {vocab}x{hidden}, c_attn, wpe: GPT-2 layout", "head_dim 64 assumed (heads split "
                           "only)", "LM head tied to wte (GPT2LMHeadModel)"])


def _bert(s: Shapes) -> Tower | None:
    p = _prefix(s, "embeddings.word_embeddings.weight")
    if p is None or f"{p}encoder.layer.0.attention.self.query.weight" not in s:
        return None
    vocab, hidden = s[f"{p}embeddings.word_embeddings.weight"]
    types = s.get(f"{p}embeddings.token_type_embeddings.weight", [0])[0]
    config = {"model_type": "roberta" if p.startswith("roberta") else "bert", "vocab_size": vocab,
              "hidden_size": hidden, "num_attention_heads": max(hidden // 64, 1) if hidden % 64 == 0 else 1,
              "num_hidden_layers": _layers(s, re.escape(p) + r"encoder\.layer\.(\d+)\."),
              "intermediate_size": s[f"{p}encoder.layer.0.intermediate.dense.weight"][0],
              "max_position_embeddings": s[f"{p}embeddings.position_embeddings.weight"][0], "type_vocab_size": types}
    pooler = f"{p}pooler.dense.weight" in s
    return _tower(config, [f"word_embeddings {vocab}x{hidden}, encoder.layer.*.attention.self: BERT layout",
                           "head_dim 64 assumed (heads split only)", f"pooler {'stored' if pooler else 'absent'}"],
                  pooler=pooler)


def _vit(s: Shapes) -> Tower | None:
    p = _prefix(s, "embeddings.patch_embeddings.projection.weight")
    if p is None or f"{p}encoder.layer.0.attention.attention.query.weight" not in s:
        return None
    hidden, channels, patch, _ = s[f"{p}embeddings.patch_embeddings.projection.weight"]
    positions = s[f"{p}embeddings.position_embeddings"][1]
    side = round((positions - 1) ** 0.5)
    if side * side != positions - 1:
        return None
    config = {"model_type": "vit", "hidden_size": hidden, "num_channels": channels, "patch_size": patch,
              "image_size": side * patch, "num_attention_heads": max(hidden // 64, 1) if hidden % 64 == 0 else 1,
              "num_hidden_layers": _layers(s, re.escape(p) + r"encoder\.layer\.(\d+)\."),
              "intermediate_size": s[f"{p}encoder.layer.0.intermediate.dense.weight"][0],
              "qkv_bias": f"{p}encoder.layer.0.attention.attention.query.bias" in s}
    pooler = f"{p}pooler.dense.weight" in s
    return _tower(config, [f"patch_embeddings {hidden}x{channels}x{patch}x{patch}, {positions} positions: ViT "
                           f"layout at {side * patch}x{side * patch}", "head_dim 64 assumed (heads split only)",
                           f"pooler {'stored' if pooler else 'absent'}"], pooler=pooler)
