"""Exact counts of a transformer ``Tower`` (analysis/hf/config.py) from its numbers alone, and the LLM phases.

Conventions (the project's, docs/architecture.md):
- **params**: every learned tensor of the HF base model (``AutoModelForCausalLM`` for decoders: embeddings, attention
  q/k/v/o with grouped-query KV heads, biases where the family has them, MLP or experts + router, norms, final norm,
  LM head unless tied to the embeddings; ``AutoModel`` for encoders: BERT/RoBERTa/ViT with their pooler, DistilBERT
  without; vision towers as ``SiglipVisionModel`` / ``CLIPVisionModel``).
- **MACs**: multiply-accumulates of linear layers, convolutions and matmuls (torch's FlopCounterMode convention;
  FLOPs = 2 x MACs). Attention scores (Q.K^T) and context (A.V) count the full n x n matrix, causal or not, every
  query head (``2 x heads x head_dim x n^2`` per layer). The LM head computes logits for every position, as the HF
  forward does. Rotary positions: HF computes the angles as a matmul of ``rope_dim/2`` inverse frequencies by the n
  positions (``rope_dim/2 x n`` MACs per rotary table, once per forward), counted because FlopCounterMode counts it.
  Elementwise work (norms, activations, softmax, residual adds) is not MACs. MoE: each token runs its top-k experts
  (and the shared expert), the router scores all experts.
- ``forward over n tokens``: ``macs(n) = const + per_token * n + per_token_sq * n^2`` (records.Scaling), batch 1.
- **decode**: one new token whose attention reads ``context`` keys (the cached tokens plus itself).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from embodied_tui.analysis.hf.config import Tower


# ------------------------------------------------------------------------------------------------ parameters
def _norm(t: Tower, width: int) -> int:
    return width if t.norm == "rms" else 2 * width  # RMSNorm: weight; LayerNorm: weight + bias


def attention_params(t: Tower) -> int:
    """One layer's q, k, v, o projections (+ biases, + per-head q/k norms)."""
    q, kv = t.heads * t.head_dim, t.kv_heads * t.head_dim
    weights = t.hidden * q + 2 * t.hidden * kv + q * t.hidden
    biases = (q + 2 * kv if t.qkv_bias else 0) + (t.hidden if t.o_bias else 0)
    return weights + biases + (2 * t.head_dim if t.qk_norm else 0)


def mlp_params(t: Tower, width: int | None = None, bias: bool | None = None) -> int:
    """One MLP of ``width`` (the dense intermediate size by default): 3 matrices if gated, else 2."""
    width = t.intermediate if width is None else width
    bias = t.mlp_bias if bias is None else bias
    if t.gated:
        return 3 * t.hidden * width + ((2 * width + t.hidden) if bias else 0)
    return 2 * t.hidden * width + ((width + t.hidden) if bias else 0)


def expert_params(t: Tower) -> int:
    """One routed expert (a gated MLP of ``expert_intermediate``, no biases)."""
    return mlp_params(t, t.expert_intermediate, bias=False)


def _shared_params(t: Tower) -> int:
    return (mlp_params(t, t.shared_intermediate, bias=False) if t.shared_intermediate else 0) + \
        (t.hidden if t.shared_gate else 0)


def params_by_part(t: Tower) -> dict[str, int]:
    """Parameters by part: embeddings, attention, mlp, experts, router, shared_expert, norms, lm_head, head (pooler
    or attention-pooling head), patch_embed. Parts a tower lacks are left out; the values sum to ``params(t)``."""
    h = t.hidden
    moe_layers = sum(1 for i in range(t.layers) if t.moe_layer(i))
    parts = {
        "embeddings": t.vocab * h + t.learned_positions * h + t.token_types * h + (h if t.cls_token else 0),
        "patch_embed": (t.channels * t.patch_size ** 2 * h + (h if t.patch_bias else 0)) if t.patch_size else 0,
        "attention": t.layers * attention_params(t),
        "mlp": (t.layers - moe_layers) * mlp_params(t),
        "experts": moe_layers * t.experts * expert_params(t),
        "router": moe_layers * h * t.experts,
        "shared_expert": moe_layers * _shared_params(t),
        "norms": t.layers * t.norms_per_layer * _norm(t, h) + (_norm(t, h) if t.final_norm else 0) +
        (_norm(t, h) if t.embed_norm else 0) + (_norm(t, h) if t.pre_norm else 0),
        "lm_head": t.vocab * h if t.lm_head and not t.tied else 0,
        "head": _head_params(t),
    }
    return {k: v for k, v in parts.items() if v}


def _head_params(t: Tower) -> int:
    h = t.hidden
    pooler = h * h + h if t.pooler else 0
    if not t.attn_pool_head:
        return pooler
    # SigLIP: probe, nn.MultiheadAttention (packed in_proj 3h x h + bias, out_proj), LayerNorm, MLP
    return pooler + h + (3 * h * h + 3 * h) + (h * h + h) + 2 * h + (2 * h * t.intermediate + t.intermediate + h)


def params(t: Tower) -> int:
    """All parameters (tied LM head counted once)."""
    return sum(params_by_part(t).values())


def active_params_per_token(t: Tower) -> int:
    """Parameters one token's forward uses: all of them, except that an MoE layer uses only its top-k routed experts
    (the router and a shared expert always run). The usual "active parameters" of an MoE model (embeddings counted in
    full); equals ``params(t)`` for a dense model."""
    moe_layers = sum(1 for i in range(t.layers) if t.moe_layer(i))
    return params(t) - moe_layers * (t.experts - t.experts_per_token) * expert_params(t)


def decode_weight_params(t: Tower) -> int:
    """Parameters a decode step reads from memory (batch 1): ``active_params_per_token`` less the embedding rows it
    does not look up (one token row, one position row are read; a tied LM head reads the whole table anyway)."""
    h = t.hidden
    unread = (0 if t.tied else (t.vocab - 1) * h) + (max(t.learned_positions - 1, 0) * h) + \
        (max(t.token_types - 1, 0) * h)
    return active_params_per_token(t) - unread


# ------------------------------------------------------------------------------------------------ MACs
@dataclass(frozen=True)
class Polynomial:
    """``macs(n) = const + per_token * n + per_token_sq * n^2`` (records.Scaling's terms)."""

    const: int
    per_token: int
    per_token_sq: int

    def at(self, n: int) -> int:
        return self.const + self.per_token * n + self.per_token_sq * n * n


def projection_macs_per_token(t: Tower) -> int:
    """One layer's q, k, v, o projections for one token (K/V at the KV-head width)."""
    q, kv = t.heads * t.head_dim, t.kv_heads * t.head_dim
    return t.hidden * q + 2 * t.hidden * kv + q * t.hidden


def mlp_macs_per_token(t: Tower, layer: int) -> int:
    """Layer ``layer``'s MLP for one token: the dense MLP, or router + top-k experts + shared expert (and its gate)."""
    h = t.hidden
    if not t.moe_layer(layer):
        return (3 if t.gated else 2) * h * t.intermediate
    shared = (3 * h * t.shared_intermediate if t.shared_intermediate else 0) + (h if t.shared_gate else 0)
    return h * t.experts + t.experts_per_token * 3 * h * t.expert_intermediate + shared


def attention_macs_per_pair(t: Tower) -> int:
    """Q.K^T and A.V for one (query, key) pair in one layer, all query heads."""
    return 2 * t.heads * t.head_dim


def lm_head_macs_per_token(t: Tower) -> int:
    return t.vocab * t.hidden if t.lm_head else 0


def rope_macs_per_token(t: Tower) -> int:
    return t.rope_modules * (t.rope_dim // 2)


def forward_macs(t: Tower) -> Polynomial:
    """MACs of one forward over n tokens (batch 1) as a polynomial in n. Decoders and text encoders; a vision tower's
    n is its patch tokens (+ class token), fixed by the image size (``vision_macs``)."""
    per_token = sum(projection_macs_per_token(t) + mlp_macs_per_token(t, i) for i in range(t.layers))
    per_token += lm_head_macs_per_token(t) + rope_macs_per_token(t)
    const = t.hidden * t.hidden if t.pooler else 0  # pooler: dense on the first token only
    return Polynomial(const=const, per_token=per_token, per_token_sq=t.layers * attention_macs_per_pair(t))


def vision_macs(t: Tower) -> int:
    """One image at the config's ``image_size``: patch convolution, the encoder over its tokens, and the head."""
    n, h = t.vision_tokens, t.hidden
    macs = t.patches * t.channels * t.patch_size ** 2 * h + forward_macs(t).at(n)
    if t.attn_pool_head:  # one probe query attends over the n tokens: q (1 token), k and v (n), scores, out, MLP
        macs += h * h + 2 * n * h * h + 2 * n * h + h * h + 2 * h * t.intermediate
    return macs


def prefill_macs(t: Tower, prompt_tokens: int) -> int:
    """MACs to prefill a prompt of ``prompt_tokens`` (batch 1): one forward over them, logits at every position as the
    HF forward computes them (a serving engine that keeps only the last position's logits saves
    ``(P - 1) x vocab x hidden``)."""
    return forward_macs(t).at(prompt_tokens)


def decode_macs(t: Tower, context: int) -> int:
    """MACs to decode one token whose attention reads ``context`` keys (the cache plus itself), batch 1: every
    per-token linear (top-k experts for MoE), attention over ``context`` in each layer, the LM head for one position
    and one rotary angle row."""
    return forward_macs(t).per_token + t.layers * attention_macs_per_pair(t) * context


# ------------------------------------------------------------------------------------------------ bytes
def kv_cache_elems_per_token(t: Tower) -> int:
    """K and V elements one token adds to the cache: ``2 x layers x kv_heads x head_dim``."""
    return 2 * t.layers * t.kv_heads * t.head_dim


def kv_cache_bytes_per_token(t: Tower, dtype_bytes: float = 2) -> int:
    """KV-cache bytes per token at ``dtype_bytes`` per element (2: fp16/bf16 cache)."""
    return math.ceil(kv_cache_elems_per_token(t) * dtype_bytes)


def kv_cache_bytes(t: Tower, context: int, dtype_bytes: float = 2) -> int:
    """The KV cache holding ``context`` tokens (batch 1), no sliding-window savings (every layer keeps all)."""
    return math.ceil(kv_cache_elems_per_token(t) * context * dtype_bytes)


def quantizable_params(t: Tower) -> int:
    """Parameters in linear-layer matrices a weight format quantises (attention, MLP, experts, shared expert, LM head
    when untied; biases excluded). The rest (embeddings, norms, biases, router, tied head) is kept in 16 bits by the
    usual int4/int8/fp8 recipes."""
    h, moe_layers = t.hidden, sum(1 for i in range(t.layers) if t.moe_layer(i))
    q, kv = t.heads * t.head_dim, t.kv_heads * t.head_dim
    attn = t.layers * (2 * h * q + 2 * h * kv)
    dense = (t.layers - moe_layers) * (3 if t.gated else 2) * h * t.intermediate
    experts = moe_layers * (t.experts * 3 * h * t.expert_intermediate + 3 * h * t.shared_intermediate)
    head = t.vocab * h if t.lm_head and not t.tied else 0
    return attn + dense + experts + head


def decode_bytes(t: Tower, context: int, *, linear_bytes_per_param: float = 2, other_bytes_per_param: float = 2,
                 kv_bytes_per_elem: float = 2) -> int:
    """Bytes one decode step moves (batch 1): the weights it uses read once (``decode_weight_params``: quantisable
    matrices at ``linear_bytes_per_param``, the rest at ``other_bytes_per_param``; MoE: the top-k experts only),
    the KV cache read for all ``context`` tokens attention reads and written once for the new token (``context + 1``
    token rows in all). Activations are not counted (a few vectors of ``hidden``)."""
    moe_layers = sum(1 for i in range(t.layers) if t.moe_layer(i))
    unused = moe_layers * (t.experts - t.experts_per_token) * 3 * t.hidden * t.expert_intermediate
    linear = quantizable_params(t) - unused
    other = decode_weight_params(t) - linear
    return math.ceil(linear * linear_bytes_per_param + other * other_bytes_per_param +
                     kv_cache_elems_per_token(t) * (context + 1) * kv_bytes_per_elem)
