"""Exact counts of a transformer ``Tower`` (analysis/hf/config.py) from its numbers alone, and the LLM phases.

The one home of transformer arithmetic: ``model analyze`` of a config or a Hugging Face folder and the encode /
prefill / decode rooflines of ``perf.phases`` (pipelines, ``benchmarks/llm_accuracy.py``) both call these functions.

Conventions (the project's, docs/architecture.md):
- **params**: every learned tensor of the HF base model (``AutoModelForCausalLM`` for decoders: embeddings, attention
  q/k/v/o with grouped-query KV heads, biases where the family has them, MLP or experts + router, norms, final norm,
  LM head unless tied to the embeddings; ``AutoModel`` for encoders: BERT/RoBERTa/ViT with their pooler, DistilBERT
  without, DINOv2 with its mask token and LayerScale vectors; vision towers as ``SiglipVisionModel`` /
  ``CLIPVisionModel``; openpi's action expert as its Gemma stack without embedding or LM head).
- **MACs**: multiply-accumulates of linear layers, convolutions and matmuls (torch's FlopCounterMode convention;
  FLOPs = 2 x MACs). Attention scores (Q.K^T) and context (A.V) count the full n x n matrix, causal or not, every
  query head (``2 x heads x head_dim x n^2`` per layer). Elementwise work (norms, activations, softmax, residual adds,
  LayerScale) is not MACs. MoE: each token runs its top-k experts (and the shared expert), the router scores all
  experts. Biases are not MACs.
- **Two conventions for the LM head and rotary angles**, one parameter (``convention``) of the same functions:
  - ``"forward"`` (the default; ``model analyze``, checked against FlopCounterMode on transformers' forward): the LM
    head computes logits for **every** position, and rotary angles are computed per forward as a matmul of
    ``rope_dim/2`` inverse frequencies by the positions (``rope_dim/2`` MACs per position per rotary table).
  - ``"runtime"`` (inference engines: ``perf.phases``, pipelines, the LLM benchmark): logits for the **last**
    position of a prefill only (vLLM, TensorRT-LLM, llama.cpp, MLC keep one row), and rotary angles read from a
    cos/sin table computed once at load (no MACs). A decode step computes its one row of logits either way.
- ``forward over n tokens``: ``macs(n) = const + per_token * n + per_token_sq * n^2`` (records.Scaling), batch 1.
- **Phases**, batch 1: ``encode`` is one bidirectional pass over ``tokens`` (a vision tower: its patches + class and
  register tokens, the patch convolution on the patches), no KV cache and no LM head; ``prefill`` is ``P`` new tokens
  attending to ``context`` cached tokens and themselves (``P x (context + P)`` score pairs; an action expert attending
  to a VLM's prefix is a prefill with a context); ``decode`` is one new token whose attention reads ``context`` keys
  (the cached tokens plus itself).
- **Bytes** of one pass (``pass_traffic``): the weights it reads, once (``weights_read``: quantisable linear matrices
  at the weight format's bytes, everything else at 16 bits (32 for fp32 weights); an MoE layer reads only the experts
  its tokens can route to, at most ``tokens x top-k``; a text tower reads one embedding row per token, a tied LM head
  reads the whole table; a vision tower reads all its parameters), the KV cache of the ``cached`` tokens it attends to
  (read once) and its own tokens' K and V (written once). Activations are not charged (a few hidden-wide vectors per
  decoded token; a prefill or encode is compute-bound).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from embodied_tui.analysis.hf.config import Tower

Convention = Literal["forward", "runtime"]
CONVENTIONS: tuple[str, ...] = ("forward", "runtime")


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
    """Parameters by part: embeddings, attention, mlp, experts, router, shared_expert, norms, layer_scale, lm_head,
    head (pooler or attention-pooling head), patch_embed. Parts a tower lacks are left out; the values sum to ``params(t)``."""
    h = t.hidden
    moe_layers = sum(1 for i in range(t.layers) if t.moe_layer(i))
    parts = {
        "embeddings": t.vocab * h + t.learned_positions * h + t.token_types * h + (h if t.cls_token else 0) +
        (h if t.mask_token else 0) + t.register_tokens * h,
        "patch_embed": (t.channels * t.patch_size ** 2 * h + (h if t.patch_bias else 0)) if t.patch_size else 0,
        "attention": t.layers * attention_params(t),
        "mlp": (t.layers - moe_layers) * mlp_params(t),
        "experts": moe_layers * t.experts * expert_params(t),
        "router": moe_layers * h * t.experts,
        "shared_expert": moe_layers * _shared_params(t),
        "norms": t.layers * t.norms_per_layer * _norm(t, h) + (_norm(t, h) if t.final_norm else 0) +
        (_norm(t, h) if t.embed_norm else 0) + (_norm(t, h) if t.pre_norm else 0),
        "layer_scale": t.layers * t.layer_scales * h,
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
    return sum(weights_read(t, 1))


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


def body_macs_per_token(t: Tower) -> int:
    """Every layer's projections and MLP (top-k experts for MoE) for one token: no LM head, no rotary angles."""
    return sum(projection_macs_per_token(t) + mlp_macs_per_token(t, i) for i in range(t.layers))


def _check(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, not {convention!r}")


def forward_macs(t: Tower) -> Polynomial:
    """MACs of one forward over n tokens (batch 1) as a polynomial in n, ``"forward"`` convention (logits and rotary
    angles at every position). Decoders and text encoders; a vision tower's n is its patch tokens (+ class token),
    fixed by the image size (``vision_macs``)."""
    per_token = body_macs_per_token(t) + lm_head_macs_per_token(t) + rope_macs_per_token(t)
    const = t.hidden * t.hidden if t.pooler else 0  # pooler: dense on the first token only
    return Polynomial(const=const, per_token=per_token, per_token_sq=t.layers * attention_macs_per_pair(t))


def _attention_pool_macs(t: Tower, tokens: int) -> int:
    """SigLIP's pooling head: one probe query attends over the tokens: q (1 token), k and v (n), scores, out, MLP."""
    h = t.hidden
    return h * h + 2 * tokens * h * h + 2 * tokens * h + h * h + 2 * h * t.intermediate if t.attn_pool_head else 0


def encode_macs(t: Tower, tokens: int | None = None, *, patches: int | None = None,
                convention: Convention = "forward") -> int:
    """One bidirectional pass over ``tokens`` (a vision tower: its config's patches + class/register tokens by
    default), no LM head: the patch convolution on ``patches`` (default ``tokens`` less the class and register
    tokens), every layer, the pooler or attention-pooling head, rotary angles under ``"forward"``."""
    _check(convention)
    n = t.vision_tokens if tokens is None else tokens
    if patches is None:
        patches = max(n - t.extra_tokens, 0) if t.patch_size else 0
    f = forward_macs(t)
    rope = rope_macs_per_token(t) if convention == "forward" else 0
    return patches * t.channels * t.patch_size ** 2 * t.hidden + f.const + (body_macs_per_token(t) + rope) * n + \
        f.per_token_sq * n * n + _attention_pool_macs(t, n)


def vision_macs(t: Tower) -> int:
    """One image at the config's ``image_size``: patch convolution, the encoder over its tokens, and the head."""
    return encode_macs(t)


def prefill_macs(t: Tower, prompt_tokens: int, context: int = 0, *, convention: Convention = "forward") -> int:
    """MACs to prefill ``prompt_tokens`` new tokens attending to ``context`` cached tokens and themselves (batch 1).
    ``"forward"``: logits at every new position and rotary angles computed, as the HF forward runs (with
    ``context`` 0, ``forward_macs(t).at(P)``); ``"runtime"``: logits for the last position only, rotary angles from a
    table (``(P - 1) x vocab x hidden + P x rope_dim/2`` fewer)."""
    _check(convention)
    if prompt_tokens < 0 or context < 0:
        raise ValueError("token counts cannot be negative")
    f = forward_macs(t)
    if convention == "forward":
        per_token, head = f.per_token, 0
    else:
        per_token, head = body_macs_per_token(t), lm_head_macs_per_token(t) * min(prompt_tokens, 1)
    return f.const + per_token * prompt_tokens + head + f.per_token_sq * prompt_tokens * (context + prompt_tokens)


def decode_macs(t: Tower, context: int, *, convention: Convention = "forward") -> int:
    """MACs to decode one token whose attention reads ``context`` keys (the cache plus itself), batch 1: every
    per-token linear (top-k experts for MoE), attention over ``context`` in each layer, the LM head for one position,
    and (``"forward"``) one rotary angle row."""
    _check(convention)
    rope = rope_macs_per_token(t) if convention == "forward" else 0
    return body_macs_per_token(t) + lm_head_macs_per_token(t) + rope + \
        t.layers * attention_macs_per_pair(t) * context


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


def weights_read(t: Tower, tokens: int) -> tuple[int, int]:
    """(linear, other): the parameters one pass over ``tokens`` new tokens reads, split into the quantisable linear
    matrices (``quantizable_params``) and the rest. An MoE layer reads the experts its tokens can route to (at most
    ``tokens x top-k`` of them); a text tower reads one row per token of its embedding, position and (one) token-type
    tables, unless the LM head is tied to the embedding (then the whole table); a vision tower reads everything."""
    h, moe_layers = t.hidden, sum(1 for i in range(t.layers) if t.moe_layer(i))
    idle = moe_layers * max(t.experts - t.experts_per_token * tokens, 0) if t.moe else 0
    linear = quantizable_params(t) - idle * 3 * h * t.expert_intermediate
    unread = 0
    if t.kind != "vision":
        unread = (0 if t.tied else (t.vocab - min(tokens, t.vocab)) * h) + \
            max(t.learned_positions - tokens, 0) * h + max(t.token_types - 1, 0) * h
    return linear, params(t) - idle * expert_params(t) - unread - linear


@dataclass(frozen=True)
class Traffic:
    """Bytes one pass moves: weights read, KV cache read (the cached tokens attended to), KV cache written."""

    weight_bytes: float
    kv_read_bytes: float
    kv_write_bytes: float

    @property
    def total(self) -> float:
        return self.weight_bytes + self.kv_read_bytes + self.kv_write_bytes


def pass_traffic(t: Tower, tokens: int, cached: int = 0, *, kv: bool = True, linear_bytes_per_param: float = 2,
                 other_bytes_per_param: float = 2, kv_bytes_per_elem: float = 2) -> Traffic:
    """One pass over ``tokens`` new tokens that attends to ``cached`` tokens already in the KV cache: the weights it
    reads (``weights_read``: linear matrices at ``linear_bytes_per_param``, the rest at ``other_bytes_per_param``),
    the ``cached`` tokens' K and V read and its own ``tokens`` written (``kv=False``: an encoder, no cache)."""
    linear, other = weights_read(t, tokens)
    row = kv_cache_elems_per_token(t) * kv_bytes_per_elem if kv else 0
    return Traffic(linear * linear_bytes_per_param + other * other_bytes_per_param, cached * row, tokens * row)


def decode_bytes(t: Tower, context: int, *, linear_bytes_per_param: float = 2, other_bytes_per_param: float = 2,
                 kv_bytes_per_elem: float = 2) -> int:
    """Bytes one decode step moves (batch 1) with ``context`` tokens already cached: ``pass_traffic`` of one token
    (the weights it uses read once, MoE: the top-k experts only; the ``context`` cached K/V rows read and its own
    written: ``context + 1`` token rows in all). Its attention reads ``context + 1`` keys (``decode_macs``)."""
    return math.ceil(pass_traffic(t, 1, context, linear_bytes_per_param=linear_bytes_per_param,
                                  other_bytes_per_param=other_bytes_per_param,
                                  kv_bytes_per_elem=kv_bytes_per_elem).total)
