"""``Tower``: one transformer stack's architecture numbers, normalised from a Hugging Face config
(analysis/hf/config.py reads the file, analysis/hf/families.py knows each family's keys and defaults)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Kind = Literal["decoder", "encoder", "vision"]
MAX_LAYERS = 10_000  # far above any model (the largest have ~200): a config beyond is hostile, not a model
MAX_WIDTH = 1 << 20  # hidden / intermediate widths


class Tower(BaseModel):
    """One transformer stack's architecture numbers, as the count needs them. Dimensions are elements, not bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_type: str  # as in config.json ("llama", "qwen3_moe", "siglip_vision_model" ...)
    kind: Kind
    family: str  # llama | mistral | qwen | gemma | phi | gpt | bert | vit | siglip | clip (DINOv2 is a vit)
    hidden: int = Field(gt=0, le=MAX_WIDTH)
    layers: int = Field(gt=0, le=MAX_LAYERS)
    heads: int = Field(gt=0)
    kv_heads: int = Field(gt=0)  # < heads: grouped-query attention; 1: multi-query
    head_dim: int = Field(gt=0)
    intermediate: int = Field(ge=0, le=MAX_WIDTH)  # dense MLP width (layers without experts)
    gated: bool  # gate, up and down projections (3 matrices) instead of up and down (2)
    activation: str
    vocab: int = Field(ge=0)  # 0 for vision towers
    tied: bool  # LM head shares the embedding matrix
    qkv_bias: bool
    o_bias: bool
    mlp_bias: bool
    qk_norm: bool = False  # per-head RMSNorm of q and k (Qwen3, Gemma3)
    norm: Literal["rms", "layer"]
    norms_per_layer: int = 2
    max_positions: int = Field(ge=0)
    learned_positions: int = 0  # rows of a learned position table (GPT-2, BERT, ViT ...); 0 with rotary positions
    token_types: int = 0  # BERT's token-type (segment) embeddings
    rope_dim: int = 0  # rotary dims (head_dim x partial_rotary_factor); 0 without rotary positions
    rope_modules: int = 0  # rotary tables the HF forward computes (Gemma3: global and local)
    lm_head: bool = False  # a decoder's LM head (counted; tied or not)
    pooler: bool = False  # BERT/RoBERTa/ViT base model's pooler: dense h x h on the first token
    embed_norm: bool = False  # LayerNorm after the embeddings (BERT family)
    final_norm: bool = True
    pre_norm: bool = False  # CLIP vision's pre_layrnorm
    experts: int = Field(default=0, ge=0, le=1 << 16)
    experts_per_token: int = Field(default=0, ge=0)
    expert_intermediate: int = Field(default=0, ge=0, le=MAX_WIDTH)
    shared_intermediate: int = Field(default=0, ge=0, le=MAX_WIDTH)  # Qwen2-MoE's always-on shared expert
    shared_gate: bool = False  # its sigmoid gate (hidden x 1)
    dense_layers: tuple[int, ...] = ()  # MoE models: layers that use the dense MLP instead of experts
    image_size: int = 0
    patch_size: int = 0
    channels: int = 0
    cls_token: bool = False
    register_tokens: int = Field(default=0, ge=0)  # DINOv2-with-registers' learned extra tokens
    mask_token: bool = False  # DINOv2's mask token (a hidden-wide vector, used in pretraining only)
    layer_scales: int = Field(default=0, ge=0)  # hidden-wide LayerScale vectors per layer (DINOv2: 2)
    patch_bias: bool = True
    attn_pool_head: bool = False  # SigLIP's multihead attention pooling head
    torch_dtype: str | None = None
    evidence: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self):
        if self.experts_per_token > self.experts:
            raise ValueError(f"{self.experts_per_token} experts per token but only {self.experts} experts")
        if self.patch_size and self.image_size < self.patch_size:
            raise ValueError(f"image_size {self.image_size} is smaller than patch_size {self.patch_size}")
        return self

    @property
    def moe(self) -> bool:
        return self.experts > 0

    @property
    def patches(self) -> int:
        return self.patches_at()

    @property
    def extra_tokens(self) -> int:
        """Tokens a vision tower adds to its patches: the class token and any register tokens."""
        return (1 if self.cls_token else 0) + self.register_tokens

    @property
    def vision_tokens(self) -> int:
        return self.patches + self.extra_tokens

    def patches_at(self, image_size: int | None = None) -> int:
        """Patches of a square image of ``image_size`` pixels (the config's size by default): ``(size // patch)^2``;
        0 for a tower without patches."""
        size = image_size or self.image_size
        return (size // self.patch_size) ** 2 if self.patch_size else 0

    def moe_layer(self, i: int) -> bool:
        return self.moe and i not in self.dense_layers
