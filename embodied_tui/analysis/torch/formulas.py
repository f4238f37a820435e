"""Per-op cost formulas for torch (aten) ops: shapes in, ``Cost`` out.

Conventions (docs/architecture.md): ``macs`` are multiply-accumulates of convolution, linear, matmul/bmm/einsum and
attention; FLOPs = 2 x MACs. Bias adds are not MACs (torchvision's and FlopCounterMode's convention). Everything
elementwise, normalisation, softmax and pooling goes to ``other_flops``, with the per-element constants the ONNX
table uses too (``analysis.conventions``), so a ``.pt`` and its ``.onnx`` agree:
- unary/binary elementwise and activations: 1 per output element; gelu 5 (tanh approximation 9), silu 2, mish 3
  (the ops of their formula, as an exporter writes them)
- bias adds of conv, addmm/linear and baddbmm: 1 per output element
- batch norm (inference): 2 per element (scale and shift); layer/group/instance/RMS norm: 5 per element with an
  affine weight, 4 without (mean, subtract, variance, normalise, + scale)
- softmax / log_softmax: 5 per element (max, subtract, exp, sum, divide); attention: softmax per score
- pooling: one per window element per output element; adaptive average pooling: one per input element
Data movement (copy, cat, index, pad) is 0 flops; its cost is bytes.

Like torch.utils.flop_counter, each formula is registered next to its definition for every overload of the aten ops
it covers (``register``); an overload registered twice raises.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Callable

import torch

from embodied_tui.analysis import conventions as cv

aten = torch.ops.aten


@dataclass(frozen=True, slots=True)
class Cost:
    macs: int = 0
    other_flops: int = 0
    kind: str = "other"  # a trace.KINDS entry


Formula = Callable[..., Cost]
FORMULAS: dict[object, Formula] = {}


def register(*names: str) -> Callable[[Formula], Formula]:
    """Register ``fn`` for every overload of each named aten op (names this torch build lacks are skipped). An
    overload that already has a formula raises ValueError: each aten op has one formula."""

    def wrap(fn: Formula) -> Formula:
        for name in names:
            try:
                packet = getattr(aten, name)
            except (AttributeError, RuntimeError):
                continue
            for overload in packet.overloads():
                op = getattr(packet, overload)
                if op in FORMULAS:
                    raise ValueError(f"aten op {op} is registered twice")
                FORMULAS[op] = fn
        return fn

    return wrap


def _shape(t) -> list[int]:
    return list(t.shape) if isinstance(t, torch.Tensor) else []


def _numel(t) -> int:
    return t.numel() if isinstance(t, torch.Tensor) else 0


def _arg(args, kwargs, index: int, name: str):
    """An argument given by position or by name (None when absent)."""
    return args[index] if len(args) > index else kwargs.get(name)


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


# ---- matrix products -------------------------------------------------------------------------------------------
@register("mm")
def _mm(args, kwargs, out) -> Cost:
    (m, k), n = _shape(args[0]), _shape(args[1])[-1]
    return Cost(m * k * n, kind="matmul")


@register("addmm")
def _addmm(args, kwargs, out) -> Cost:
    (m, k), n = _shape(args[1]), _shape(args[2])[-1]
    return Cost(m * k * n, cv.BIAS_ADD * m * n, kind="linear")


@register("bmm")
def _bmm(args, kwargs, out) -> Cost:
    b, m, k = _shape(args[0])
    return Cost(b * m * k * _shape(args[1])[-1], kind="matmul")


@register("baddbmm")
def _baddbmm(args, kwargs, out) -> Cost:
    b, m, k = _shape(args[1])
    n = _shape(args[2])[-1]
    return Cost(b * m * k * n, cv.BIAS_ADD * b * m * n, kind="matmul")


@register("mv")
def _mv(args, kwargs, out) -> Cost:
    m, k = _shape(args[0])
    return Cost(m * k, kind="matmul")


@register("dot", "vdot")
def _dot(args, kwargs, out) -> Cost:
    return Cost(_numel(args[0]), kind="matmul")


# ---- convolution -----------------------------------------------------------------------------------------------
def conv_macs(x_shape: list[int], w_shape: list[int], out_shape: list[int], transposed: bool) -> int:
    """Conv: N * Cout * prod(out_spatial) * (Cin/groups) * prod(kernel) = out elems * weight elems per output channel.
    Transposed conv: every input element is scattered through Cout/groups x kernel weights:
    N * Cin * prod(in_spatial) * (Cout/groups) * prod(kernel)."""
    if transposed:
        # weight is (Cin, Cout/groups, *k)
        return prod(x_shape) * prod(w_shape[1:])
    return prod(out_shape) * prod(w_shape[1:])


def _conv_formula(bias_at: int | None, transposed_at: int | None = None, always_transposed: bool = False) -> Formula:
    """A conv formula for an aten signature: where its bias and its ``transposed`` flag are (None: absent)."""

    def formula(args, kwargs, out) -> Cost:
        x, w = args[0], args[1]
        flag = args[transposed_at] if transposed_at is not None and len(args) > transposed_at else False
        transposed = always_transposed or (isinstance(flag, bool) and flag)
        out_t = _first(out)
        bias = _arg(args, kwargs, bias_at, "bias") if bias_at is not None else None
        return Cost(conv_macs(_shape(x), _shape(w), _shape(out_t), transposed),
                    cv.BIAS_ADD * _numel(out_t) if isinstance(bias, torch.Tensor) else 0,
                    kind="conv_transpose" if transposed else "conv")

    return formula


register("convolution", "_convolution", "convolution_overrideable")(_conv_formula(2, transposed_at=6))
register("mkldnn_convolution")(_conv_formula(2))
register("_slow_conv2d_forward", "thnn_conv2d")(_conv_formula(3))
register("cudnn_convolution")(_conv_formula(None))
# composite forms, seen only when not decomposed
register("conv1d", "conv2d", "conv3d")(_conv_formula(2))
register("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")(_conv_formula(2, always_transposed=True))


@register("linear")
def _linear(args, kwargs, out) -> Cost:  # composite form: (..., in) x (out, in)^T
    bias = _arg(args, kwargs, 2, "bias")
    return Cost(_numel(out) * _shape(args[1])[-1], cv.BIAS_ADD * _numel(out) if isinstance(bias, torch.Tensor) else 0,
                kind="linear")


# ---- attention -------------------------------------------------------------------------------------------------
def attention_macs(q_shape: list[int], k_shape: list[int], v_shape: list[int]) -> int:
    """softmax(Q K^T) V for (..., Lq, E) x (..., Lk, E) x (..., Lk, Ev): batch * Lq * Lk * (E + Ev)."""
    *batch, lq, e = q_shape
    lk, ev = k_shape[-2], v_shape[-1]
    return prod(batch) * lq * lk * (e + ev)


def _attn_mask(args, kwargs, index: int = 3):
    """The additive mask / bias of an attention op (position ``index`` or by name), or None."""
    for value in (args[index] if len(args) > index else None, kwargs.get("attn_mask"), kwargs.get("attn_bias")):
        if isinstance(value, torch.Tensor):
            return value
    return None


def _scores_cost(q_shape: list[int], k_shape: list[int], v_shape: list[int], masked: bool) -> Cost:
    """Q K^T and attention x V over the full score matrix (causal or not, as FlopCounterMode counts), softmax per score
    and, with an additive mask, one add per score."""
    *batch, lq, _ = q_shape
    scores = prod(batch) * lq * k_shape[-2]
    return Cost(attention_macs(q_shape, k_shape, v_shape),
                (cv.SOFTMAX + (cv.ELEMENTWISE if masked else 0)) * scores, kind="attention")


@register("scaled_dot_product_attention", "_scaled_dot_product_flash_attention_for_cpu",
          "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
          "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_attention_math",
          "_scaled_dot_product_attention_math_for_mps", "_scaled_dot_product_fused_attention_overrideable")
def _sdpa(args, kwargs, out) -> Cost:
    """(B, H, L, E) layouts. A fused kernel's scale multiply is inside it and not counted (analysis.conventions)."""
    q, k, v = args[0], args[1], args[2]
    masked = _attn_mask(args, kwargs) is not None
    return _scores_cost(_shape(q), _shape(k), _shape(v), masked)


def _sdpa_blhe(bias_at: int | None, cu_at: int, max_at: int) -> Formula:
    """The kernels under the fused SDPA ops take (B, L, H, E). A packed variable-length batch ((total, H, E) with
    cumulative sequence lengths, values a meta run does not have) is counted as sequences x longest query x longest
    key, an upper bound; the dense layout is exact."""

    def formula(args, kwargs, out) -> Cost:
        q, k, v = _shape(args[0]), _shape(args[1]), _shape(args[2])
        cu = args[cu_at] if len(args) > cu_at and isinstance(args[cu_at], torch.Tensor) else None
        masked = bias_at is not None and len(args) > bias_at and isinstance(args[bias_at], torch.Tensor)
        if len(q) == 3 and cu is not None:
            seqs = max(_numel(cu) - 1, 1)
            lq = int(args[max_at]) if len(args) > max_at and args[max_at] is not None else q[0]
            lk = int(args[max_at + 1]) if len(args) > max_at + 1 and args[max_at + 1] is not None else k[0]
            q, k, v = [seqs, lq, *q[1:]], [seqs, lk, *k[1:]], [seqs, lk, *v[1:]]
        if len(q) == 4:  # (B, L, H, E) -> (B, H, L, E)
            q, k, v = ([s[0], s[2], s[1], s[3]] for s in (q, k, v))
        return _scores_cost(q, k, v, masked)

    return formula


register("_efficient_attention_forward")(_sdpa_blhe(bias_at=3, cu_at=4, max_at=6))
register("_flash_attention_forward")(_sdpa_blhe(bias_at=None, cu_at=3, max_at=5))


def _mha_cost(b: int, lq: int, lk: int, embed: int, heads: int, qkv_bias: bool, proj_bias: bool,
              masked: bool) -> Cost:
    """nn.MultiheadAttention's work: q from the query, k and v from the key/value (one (3E, E) weight), Q K^T and
    A V over all heads (heads x head_dim = E), the output projection; bias adds and softmax to other_flops."""
    proj = b * lq * embed * embed + 2 * b * lk * embed * embed + b * lq * embed * embed
    attn = b * lq * lk * 2 * embed
    scores = b * heads * lq * lk
    biases = (b * (lq + 2 * lk) * embed if qkv_bias else 0) + (b * lq * embed if proj_bias else 0)
    return Cost(proj + attn, (cv.SOFTMAX + (cv.ELEMENTWISE if masked else 0)) * scores + cv.BIAS_ADD * biases,
                kind="attention")


@register("_native_multi_head_attention")
def _native_mha(args, kwargs, out) -> Cost:
    # (query, key, value, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias, mask, ...), (B, L, E)
    q, k = _shape(args[0]), _shape(args[1])
    embed, heads = int(args[3]), int(args[4])
    b = prod(q[:-2]) if len(q) > 2 else 1
    mask = _arg(args, kwargs, 9, "mask")
    return _mha_cost(b, q[-2], k[-2], embed, heads, isinstance(args[6], torch.Tensor),
                     isinstance(args[8], torch.Tensor), isinstance(mask, torch.Tensor))


@register("_transformer_encoder_layer_fwd")
def _encoder_layer(args, kwargs, out) -> Cost:
    """nn.TransformerEncoderLayer's fused inference path: self-attention (``_mha_cost``), two layer norms (affine),
    two residual adds and the feed-forward block (two linears with biases, relu or gelu between)."""
    # (src, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias, use_gelu, norm_first, eps,
    #  norm_weight_1, norm_bias_1, norm_weight_2, norm_bias_2, ffn_weight_1, ffn_bias_1, ffn_weight_2, ffn_bias_2, mask)
    src = _shape(args[0])
    embed, heads = int(args[1]), int(args[2])
    b = prod(src[:-2]) if len(src) > 2 else 1
    length = src[-2] if len(src) > 1 else 1
    ffn = _shape(args[14])[0]
    mask = _arg(args, kwargs, 18, "mask")
    attn = _mha_cost(b, length, length, embed, heads, isinstance(args[4], torch.Tensor),
                     isinstance(args[6], torch.Tensor), isinstance(mask, torch.Tensor))
    tokens = b * length
    ffn_macs = 2 * tokens * embed * ffn
    activation = cv.GELU if bool(args[7]) else cv.ELEMENTWISE
    other = (2 * cv.NORM_AFFINE * tokens * embed + 2 * cv.ELEMENTWISE * tokens * embed  # norms, residual adds
             + cv.BIAS_ADD * tokens * (ffn + embed) + activation * tokens * ffn)
    return Cost(attn.macs + ffn_macs, attn.other_flops + other, kind="attention")


@register("_fused_sdp_choice")
def _sdp_choice(args, kwargs, out) -> Cost:  # picks a backend (returns an int): no work
    return Cost(0, 0, kind="other")


# ops with no formula whose work may be multiply-accumulates: counted as uncounted MACs, never as a silent 0
_MAC_TOKENS = ("conv", "matmul", "linear", "einsum", "attention", "attn", "transformer", "lstm", "gru", "rnn", "gemm",
               "qlinear", "qconv", "tensordot", "bilinear", "mha", "gemv", "baddbmm")


def may_carry_macs(name: str) -> bool:
    """True for an aten op name that reads like multiply-accumulate work (a conv, a matrix product, attention, a
    recurrent cell) - used only for ops with no formula, so their MACs are reported missing instead of 0."""
    tokens = [t for t in name.lower().split("_") if t]
    for t in tokens:
        if t.startswith("convert"):
            continue
        if t.endswith("mm") or t in ("mv", "addmv", "dot", "vdot", "addr") or t.startswith(_MAC_TOKENS):
            return True
    return False


# ---- element-wise, normalisation, pooling ---------------------------------------------------------------------
_ACTIVATION_KINDS = {
    "relu": "relu", "relu6": "relu6", "hardtanh": "relu6", "gelu": "gelu", "silu": "silu", "sigmoid": "sigmoid",
    "hardsigmoid": "hardsigmoid", "hardswish": "hardswish", "tanh": "tanh", "elu": "other", "leaky_relu": "relu",
    "mish": "silu", "softplus": "other", "prelu": "relu", "_prelu_kernel": "relu",
}
_ELEMENTWISE = {
    "add": "add", "sub": "add", "rsub": "add", "mul": "mul", "div": "mul", "pow": "other", "sqrt": "other",
    "rsqrt": "other", "exp": "other", "log": "other", "neg": "other", "abs": "other", "clamp": "other",
    "clamp_min": "other", "clamp_max": "other", "where": "other", "maximum": "other", "minimum": "other",
    "erf": "other", "sin": "other", "cos": "other", "reciprocal": "other", "addcmul": "mul", "lerp": "other",
    "masked_fill": "other", "eq": "other", "ne": "other", "gt": "other", "lt": "other", "ge": "other", "le": "other",
    "logical_and": "other", "logical_not": "other", "sign": "other", "floor": "other", "ceil": "other",
    "round": "other", "remainder": "other", "fmod": "other", "atan2": "other", "sum": "other", "mean": "other",
    "amax": "other", "amin": "other", "var": "other", "std": "other", "norm": "other", "linalg_vector_norm": "other",
    "cumsum": "other", "floor_divide": "other", "bitwise_and": "other",
}
_ELEMENTWISE.update({"max": "other", "min": "other", "argmax": "other", "argmin": "other", "any": "other",
                     "all": "other", "logical_or": "other", "logical_xor": "other", "bitwise_or": "other",
                     "bitwise_not": "other", "isinf": "other", "isnan": "other"})
_REDUCTIONS = {"sum", "mean", "amax", "amin", "var", "std", "norm", "linalg_vector_norm", "cumsum", "argmax", "argmin",
               "any", "all", "max", "min"}


# fused activations: the primitive ops of their formula per element (analysis.conventions); the rest count 1
_PER_ELEMENT = {"silu": lambda kwargs: cv.SILU, "mish": lambda kwargs: cv.MISH,
                "gelu": lambda kwargs: cv.gelu(kwargs.get("approximate"))}


def _elementwise(name: str, kind: str, reduction: bool = False) -> Formula:
    per = _PER_ELEMENT.get(name, lambda kwargs: cv.ELEMENTWISE)

    def formula(args, kwargs, out) -> Cost:
        # reductions touch every input element; the rest produce one result per output element
        n = _numel(args[0]) if reduction else _numel(_first(out))
        return Cost(0, per(kwargs) * n, kind=kind)

    return formula


def _register_by_name(names: dict[str, str]) -> None:
    for name, kind in names.items():
        register(name, name + "_")(_elementwise(name, kind, reduction=name in _REDUCTIONS))


_register_by_name(_ACTIVATION_KINDS)
_register_by_name(_ELEMENTWISE)


@register("_native_batch_norm_legit_no_training", "_native_batch_norm_legit", "native_batch_norm",
          "batch_norm", "_batch_norm_impl_index", "cudnn_batch_norm", "_batch_norm_no_update")
def _batch_norm(args, kwargs, out) -> Cost:
    return Cost(0, cv.BATCHNORM * _numel(args[0]), kind="batchnorm")


def _norm(kind: str, weight_at: int) -> Formula:
    """Layer/group/instance/RMS norm: 5 per element with an affine weight (argument ``weight_at``), 4 without."""

    def formula(args, kwargs, out) -> Cost:
        affine = isinstance(_arg(args, kwargs, weight_at, "weight"), torch.Tensor)
        return Cost(0, cv.norm(affine) * _numel(args[0]), kind=kind)

    return formula


register("native_layer_norm", "layer_norm", "rms_norm", "_fused_rms_norm")(_norm("layernorm", 2))
register("native_group_norm", "instance_norm")(_norm("groupnorm", 1))
register("group_norm")(_norm("groupnorm", 2))


@register("_softmax", "softmax", "_log_softmax", "log_softmax", "_safe_softmax")
def _softmax(args, kwargs, out) -> Cost:
    return Cost(0, cv.SOFTMAX * _numel(args[0]), kind="softmax")


def _window(args, index: int, dims: int) -> int:
    k = list(args[index]) if len(args) > index else []
    if len(k) == 1:
        k = k * dims
    return prod(k) if k else 1


def _pool(kind: str, dims: int) -> Formula:
    def formula(args, kwargs, out) -> Cost:
        o = out[0] if isinstance(out, (tuple, list)) else out
        return Cost(0, _numel(o) * _window(args, 1, dims), kind=kind)

    return formula


register("max_pool2d_with_indices", "max_pool2d")(_pool("maxpool", 2))
register("max_pool1d", "max_pool1d_with_indices")(_pool("maxpool", 1))
register("max_pool3d_with_indices", "max_pool3d")(_pool("maxpool", 3))
register("avg_pool2d")(_pool("avgpool", 2))
register("avg_pool1d")(_pool("avgpool", 1))
register("avg_pool3d")(_pool("avgpool", 3))


@register("_adaptive_avg_pool2d", "adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_avg_pool1d",
          "adaptive_max_pool2d", "adaptive_max_pool1d")
def _adaptive_pool(args, kwargs, out) -> Cost:
    o = out[0] if isinstance(out, (tuple, list)) else out
    spatial = _shape(o)[2:] if len(_shape(o)) > 2 else _shape(o)[1:]
    kind = "global_pool" if spatial and prod(spatial) == 1 else "avgpool"
    return Cost(0, _numel(args[0]), kind=kind)


def _kind_only(kind: str) -> Formula:
    def formula(args, kwargs, out) -> Cost:
        return Cost(0, 0, kind=kind)

    return formula


register("cat", "stack", "concat")(_kind_only("concat"))
register("embedding")(_kind_only("embedding"))
register("upsample_nearest2d", "upsample_nearest1d", "upsample_nearest3d", "_upsample_nearest_exact2d",
         "upsample_bilinear2d", "upsample_bicubic2d", "_upsample_bilinear2d_aa", "upsample_linear1d",
         "upsample_trilinear3d")(_kind_only("upsample"))
register("roll")(_kind_only("roll"))
register("constant_pad_nd", "reflection_pad2d", "replication_pad2d", "pad")(_kind_only("pad"))
register("split", "split_with_sizes", "unsafe_split", "chunk", "unbind")(_kind_only("split"))
register("view", "_unsafe_view", "reshape", "flatten")(_kind_only("reshape"))
register("permute", "transpose", "t", "transpose_", "t_")(_kind_only("transpose"))
register("squeeze_", "unsqueeze_", "resize_", "as_strided_")(_kind_only("reshape"))
register("slice", "select", "narrow")(_kind_only("slice"))
# data movement and tensor creation: 0 FLOPs by convention, their cost is bytes
register("clone", "copy", "contiguous", "repeat", "tile", "flip", "index", "_unsafe_index", "index_select", "gather",
         "index_put", "scatter", "lift_fresh_copy", "zeros", "ones", "full", "zeros_like", "ones_like", "full_like",
         "new_zeros", "new_ones", "new_full", "arange", "linspace", "scalar_tensor", "fill", "triu", "tril",
         "masked_scatter", "copy_", "fill_", "zero_", "index_put_", "scatter_", "masked_scatter_", "triu_",
         "tril_")(_kind_only("other"))


def cost_of(func, args, kwargs, out) -> Cost:
    """The op's cost; zero for an op no formula covers (``func in FORMULAS`` tells them apart)."""
    formula = FORMULAS.get(func)
    if formula is None:
        return Cost()
    return formula(args, kwargs or {}, out)
