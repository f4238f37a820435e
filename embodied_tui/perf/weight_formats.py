"""Bytes per stored weight for the formats models ship in, each with its layout and where the numbers come from.

``weight_bytes(n_params, fmt, group_size=None)`` is the bytes of ``n_params`` weights in one tensor (or many tensors
of the same layout) stored as ``fmt``: the packed values plus every scale / zero point the layout stores beside them,
rounded up to whole bytes once. Layouts (bits per weight, bpw):

- ``fp32`` 32, ``fp16`` / ``bf16`` 16, ``fp8`` 8 (E4M3 or E5M2; the one fp32 scale per tensor that FP8 checkpoints
  carry is left out: 4 bytes per tensor).
- ``int8``: 8 bits, symmetric, one fp16 scale per output channel; ``group_size`` is the channel's length (a Linear's
  in_features). Without it the scales are left out (2 bytes per row: under 0.1% for rows of 2048 or more).
- ``int4`` (AWQ / GPTQ): 4-bit values, one fp16 scale and one 4-bit zero point (packed, as AutoAWQ's and AutoGPTQ's
  ``qzeros`` store it) per group of ``group_size`` (default 128): ``4 + (16 + 4) / 128 = 4.15625`` bpw.
  ``int4_sym``: the same without zero points, ``4 + 16 / 128 = 4.125`` bpw. ``awq`` and ``gptq`` name ``int4``.
- ``q4f16_1`` (MLC LLM's default 4-bit layout, ``mlc_llm/quantization``: ``group_size=32``, int4, fp16 model dtype):
  symmetric 4-bit values, one fp16 scale per group of 32: ``4 + 16 / 32 = 4.5`` bpw.
- ``nvfp4``: 4-bit E2M1 values, one FP8 E4M3 scale per 16 values and one fp32 scale per tensor: ``4 + 8/16 = 4.5``
  bpw + 4 bytes per tensor (NVIDIA ModelOpt's NVFP4 checkpoint: ``weight_scale`` per 16, ``weight_scale_2`` per
  tensor).
- ``mxfp4``: 4-bit E2M1 values, one E8M0 (8-bit power of two) scale per 32 (OCP Microscaling spec v1.0):
  ``4 + 8/32 = 4.25`` bpw.
- GGUF (llama.cpp ``ggml-common.h`` block structs): ``q8_0`` blocks of 32 int8 + one fp16 scale = 34 bytes per 32
  = 8.5 bpw; ``q4_k`` super-blocks of 256: 128 bytes of 4-bit values, 12 bytes of 6-bit sub-block scales and mins, an
  fp16 scale and min = 144 bytes per 256 = 4.5 bpw; ``q6_k`` 256 values: 128 + 64 bytes of 6-bit values, 16 int8
  sub-block scales, one fp16 scale = 210 bytes per 256 = 6.5625 bpw. ``q4_k_m`` is a mix, not a block: llama.cpp
  stores most matrices as Q4_K and some (half the attention V and FFN down matrices, the output head) as Q6_K; its
  quantize README measures 4.84 bpw over all of Llama 2 7B (Q4_K_S: 4.58), which ``q4_k_m`` uses as an average
  (model-dependent: say so where it is shown).

Embeddings, norms and biases usually stay in 16 bits when the linear weights are quantised (AWQ, GPTQ, llama.cpp
keeps norms in f32 and quantises the embedding like the rest); ``split_weight_bytes`` applies the format to the
linear matrices only and 16 bits (32 for fp32) to the rest, and says so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from embodied_tui.errors import UserError


@dataclass(frozen=True)
class WeightFormat:
    """A storage layout: ``value_bits`` per weight plus ``scale_bits`` per group of ``group`` weights (0: none)."""

    name: str
    value_bits: float
    scale_bits: int = 0  # bits stored per group: scales + zero points
    group: int | None = None  # weights per group; None: the caller gives it (a channel) or there is none
    per_tensor_bytes: int = 0  # bytes once per tensor (NVFP4's fp32 global scale)
    average: bool = False  # a measured average over a mix of layouts (q4_k_m), not one block layout
    source: str = ""

    def bits_per_weight(self, group_size: int | None = None) -> float:
        group = group_size or self.group
        return self.value_bits + (self.scale_bits / group if group and self.scale_bits else 0)


FORMATS: dict[str, WeightFormat] = {f.name: f for f in (
    WeightFormat("fp32", 32, source="IEEE 754 binary32"),
    WeightFormat("fp16", 16, source="IEEE 754 binary16"),
    WeightFormat("bf16", 16, source="bfloat16"),
    WeightFormat("fp8", 8, source="FP8 E4M3/E5M2 (per-tensor fp32 scale left out)"),
    WeightFormat("int8", 8, scale_bits=16, source="int8 per output channel, fp16 scale per channel"),
    WeightFormat("int4", 4, scale_bits=16 + 4, group=128,
                 source="AWQ / GPTQ: fp16 scale + packed 4-bit zero point per group (AutoAWQ, AutoGPTQ qzeros)"),
    WeightFormat("int4_sym", 4, scale_bits=16, group=128, source="symmetric int4: fp16 scale per group"),
    WeightFormat("q4f16_1", 4, scale_bits=16, group=32,
                 source="MLC LLM q4f16_1: symmetric int4, fp16 scale per group of 32 (mlc_llm quantization presets)"),
    WeightFormat("nvfp4", 4, scale_bits=8, group=16, per_tensor_bytes=4,
                 source="NVIDIA NVFP4: E2M1 values, E4M3 scale per 16, fp32 scale per tensor (ModelOpt)"),
    WeightFormat("mxfp4", 4, scale_bits=8, group=32, source="OCP Microscaling v1.0 MXFP4: E8M0 scale per 32"),
    WeightFormat("q8_0", 8, scale_bits=16, group=32, source="llama.cpp GGUF block_q8_0: 32 int8 + fp16 scale"),
    WeightFormat("q4_k", 4, scale_bits=12 * 8 + 2 * 16, group=256,
                 source="llama.cpp GGUF block_q4_K: 256 4-bit values, 12 bytes of scales/mins, fp16 d and dmin"),
    WeightFormat("q6_k", 6, scale_bits=16 * 8 + 16, group=256,
                 source="llama.cpp GGUF block_q6_K: 256 6-bit values, 16 int8 scales, fp16 d"),
    WeightFormat("q4_k_m", 4.84, average=True,
                 source="llama.cpp tools/quantize README: Q4_K_M = 4.84 bpw measured on Llama 2 7B (a Q4_K/Q6_K mix)"),
)}


ALIASES = {"awq": "int4", "gptq": "int4"}  # the names runtimes and model cards use for a layout above


def weight_format(fmt: str) -> WeightFormat:
    key = fmt.strip().lower().replace("-", "_")
    found = FORMATS.get(ALIASES.get(key, key))
    if found is None:
        raise UserError(f"unknown weight format '{fmt[:20]}'; use one of {', '.join([*FORMATS, *ALIASES])}")
    return found


def other_bytes_per_param(fmt: str) -> int:
    """Bytes per parameter of what a quantised checkpoint keeps unquantised (embeddings, norms, biases): 4 beside
    fp32 weights, else 2 (16 bits)."""
    return 4 if weight_format(fmt).name == "fp32" else 2


def weight_bytes(n_params: int, fmt: str, group_size: int | None = None, *, tensors: int = 1) -> int:
    """Bytes of ``n_params`` weights stored as ``fmt`` (see the module docstring), in ``tensors`` tensors (for
    per-tensor scales). ``group_size`` overrides the format's group (int4's 128; int8's channel length)."""
    if n_params < 0 or tensors < 0:
        raise UserError("a weight count cannot be negative")
    f = weight_format(fmt)
    if group_size is not None and group_size <= 0:
        raise UserError(f"group size must be a positive integer, not {group_size}")
    group = group_size or f.group
    scale_bits = math.ceil(n_params / group) * f.scale_bits if group and f.scale_bits else 0
    return math.ceil((n_params * f.value_bits + scale_bits) / 8) + f.per_tensor_bytes * tensors


def split_weight_bytes(linear_params: int, other_params: int, fmt: str, group_size: int | None = None) -> int:
    """A model's weight bytes when only its linear matrices are stored as ``fmt`` and the rest (embeddings, norms,
    biases) stays at 16 bits (at 32 bits when ``fmt`` is fp32): the usual AWQ / GPTQ / NVFP4 checkpoint."""
    return weight_bytes(linear_params, fmt, group_size) + other_bytes_per_param(fmt) * other_params
