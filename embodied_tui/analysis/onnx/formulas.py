"""ONNX op -> (macs, other_flops): one small formula per op, registered next to it with its kind, MAC flag and shape
hook (``onnx.ops.register``, in the style of torch.utils.flop_counter).

This module holds the formulas of the ops that do multiply-accumulates and the shape hooks, and is the registry's
public face: importing it registers every op (those without MACs live in ``onnx.other_flops``), ``lookup`` gives an
op's ``OpSpec`` and ``count`` runs its formula. ``OpCall`` and ``ShapeUnknown`` (from ``onnx.ops``) are re-exported.

Conventions (docs/architecture.md; the per-element constants are ``analysis.conventions``):
- ``macs``: multiply-accumulates of convolution, linear (Gemm/MatMul), einsum, attention and recurrent cells.
- ``other_flops`` of these ops:
  * bias adds folded into Conv/ConvTranspose/Gemm/MatMul variants: 1 per output element (Gemm+bias == MatMul+Add);
  * DeformConv: conv MACs plus 4 flops per sampled kernel tap (bilinear interpolation);
  * attention ops: MACs of Q K^T and P V summed over query heads over the full score matrix, causal or not (as
    torch's FlopCounterMode counts sdpa), + the QKV projection inside com.microsoft Attention; softmax per score;
  * recurrent cells: gate sums, activations and state update per hidden unit per step, + one bias add per gate for
    each of the input and hidden biases when B is given;
  * a one-operand Einsum is a reduction: its index-space size in other_flops, no MACs.
- every other op's formula: ``onnx.other_flops``.

Each formula gets an ``OpCall`` (input/output shapes, attributes, small constant values) and returns
``(macs, other_flops)``. A formula that needs a shape that is unknown raises ``ShapeUnknown``; the caller notes it and
counts the rest. Ops absent from the registry are reported as "not counted". Shape hooks give output shapes of the
com.microsoft ops that ONNX shape inference does not know, so inference can continue past them.
"""
from __future__ import annotations

import math

from embodied_tui.analysis import conventions as cv
from embodied_tui.analysis.onnx import other_flops  # noqa: F401 - registers the formulas of ops without MACs
from embodied_tui.analysis.onnx.ops import OPS, OpCall, OpSpec, Shape, ShapeUnknown, numel, register, register_uncounted  # noqa: F401 - OpCall, ShapeUnknown re-exported
from embodied_tui.analysis.onnx.other_flops import same_as_input0

# --------------------------------------------------------------------------- convolution and linear algebra

def _conv_spatial(x_spatial: Shape, w: Shape, attrs: dict) -> Shape:
    """Output spatial sizes of a convolution (ONNX Conv semantics, auto_pad included)."""
    rank = len(x_spatial)
    kernel = list(attrs.get("kernel_shape") or w[2:])
    strides = list(attrs.get("strides") or [1] * rank)
    dil = list(attrs.get("dilations") or [1] * rank)
    pads = list(attrs.get("pads") or [0] * (2 * rank))
    auto = str(attrs.get("auto_pad", "NOTSET"))
    out = []
    for i, n in enumerate(x_spatial):
        span = (kernel[i] - 1) * dil[i] + 1
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            out.append(-(-n // strides[i]))
        elif auto == "VALID":
            out.append((n - span) // strides[i] + 1)
        else:
            out.append((n + pads[i] + pads[i + rank] - span) // strides[i] + 1)
    return out


def _conv_shape(c: OpCall) -> list[Shape]:
    x, w = c.shape(0), c.shape(1)
    if c.op_type == "NhwcConv":  # channels last: (N, *spatial, C)
        return [[x[0], *_conv_spatial(x[1:-1], w, c.attrs), w[0]]]
    return [[x[0], w[0], *_conv_spatial(x[2:], w, c.attrs)]]


# (data, weight, bias) input positions for each conv-like op
_CONV_SLOTS = {"Conv": (0, 1, 2), "ConvInteger": (0, 1, None), "QLinearConv": (0, 3, 8), "FusedConv": (0, 1, 2),
               "NhwcConv": (0, 1, 2), "DeformConv": (0, 1, 3)}


@register(*_CONV_SLOTS, kind="conv", macs=True, shape={"FusedConv": _conv_shape, "NhwcConv": _conv_shape})
def conv(c: OpCall) -> tuple[int, int]:
    """MACs = N * Cout * prod(out_spatial) * (Cin/groups) * prod(kernel) = out elements * prod(W.shape[1:])."""
    _, w_i, b_i = _CONV_SLOTS[c.op_type]
    y = c.out(0)
    w = c.shape(w_i)
    other = cv.BIAS_ADD * numel(y) if b_i is not None and c.has(b_i) else 0
    if c.op_type == "FusedConv" and c.attrs.get("activation"):
        other += cv.ELEMENTWISE * numel(y)
    if c.op_type == "DeformConv":  # bilinear sampling of every tap of every input channel
        other += cv.BILINEAR_TAP * y[0] * numel(y[2:]) * c.shape(0)[1] * numel(w[2:])
    return numel(y) * numel(w[1:]), other


@register("ConvTranspose", kind="conv_transpose", macs=True)
def conv_transpose(c: OpCall) -> tuple[int, int]:
    """MACs = N * Cin * prod(in_spatial) * (Cout/groups) * prod(kernel) = in elements * prod(W.shape[1:])."""
    x, w = c.shape(0), c.shape(1)
    other = cv.BIAS_ADD * numel(c.out(0)) if c.has(2) else 0
    return numel(x) * numel(w[1:]), other


# (A, B, C) input positions of each Gemm-like op
_GEMM_SLOTS = {"Gemm": (0, 1, 2), "FusedGemm": (0, 1, 2), "QGemm": (0, 3, 6), "GemmFloat8": (0, 1, 2)}


def _gemm_mkn(c: OpCall) -> tuple[int, int, int]:
    a_i, b_i, _ = _GEMM_SLOTS[c.op_type]
    a, b = c.shape(a_i), c.shape(b_i)
    m, k = (a[1], a[0]) if c.attrs.get("transA", 0) else (a[0], a[1])
    n = b[0] if c.attrs.get("transB", 0) else b[1]
    return m, k, n


def _gemm_shape(c: OpCall) -> list[Shape]:
    m, _, n = _gemm_mkn(c)
    return [[m, n]]


@register(*_GEMM_SLOTS, kind="linear", macs=True, shape={op: _gemm_shape for op in ("FusedGemm", "QGemm",
                                                                                    "GemmFloat8")})
def gemm(c: OpCall) -> tuple[int, int]:
    """MACs = M * K * N; the bias C: 1 per output element; FusedGemm's activation: 1 per output element."""
    m, k, n = _gemm_mkn(c)
    other = cv.BIAS_ADD * m * n if c.has(_GEMM_SLOTS[c.op_type][2]) else 0
    if c.op_type == "FusedGemm" and c.attrs.get("activation"):
        other += cv.ELEMENTWISE * m * n
    return m * k * n, other


def broadcast(*shapes: Shape) -> Shape:
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(rank):
        dims = {s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0}
        big = dims - {1}
        if len(big) > 1:
            raise ValueError(f"shapes {shapes} do not broadcast")
        out.append(big.pop() if big else 1)
    return out


def _matmul_operands(a: Shape, b: Shape, trans_a: bool, trans_b: bool) -> tuple[Shape, Shape]:
    """numpy matmul semantics: 1-D operands are promoted; optional transposes of the last two axes."""
    a = [1, a[0]] if len(a) == 1 else list(a)
    b = [b[0], 1] if len(b) == 1 else list(b)
    if trans_a:
        a[-2], a[-1] = a[-1], a[-2]
    if trans_b:
        b[-2], b[-1] = b[-1], b[-2]
    return a, b


def matmul_macs(a: Shape, b: Shape, trans_a: bool = False, trans_b: bool = False) -> int:
    """numpy matmul semantics: 1-D operands are promoted; batch dims broadcast."""
    a, b = _matmul_operands(a, b, trans_a, trans_b)
    m, k, n = a[-2], a[-1], b[-1]
    return numel(broadcast(a[:-2], b[:-2])) * m * k * n


# (A, B, bias) input positions of each MatMul-like op
_MATMUL_SLOTS = {"MatMul": (0, 1, None), "MatMulInteger": (0, 1, None), "QLinearMatMul": (0, 3, None),
                 "FusedMatMul": (0, 1, None), "TransposeMatMul": (0, 1, None), "DynamicQuantizeMatMul": (0, 1, 4),
                 "MatMulIntegerToFloat": (0, 1, 6)}


def _matmul_shape(c: OpCall) -> list[Shape]:
    a_i, b_i, _ = _MATMUL_SLOTS[c.op_type]
    a0, b0 = c.shape(a_i), c.shape(b_i)
    a, b = _matmul_operands(a0, b0, bool(c.attrs.get("transA", 0)), bool(c.attrs.get("transB", 0)))
    out = broadcast(a[:-2], b[:-2]) + ([a[-2]] if len(a0) > 1 else []) + ([b[-1]] if len(b0) > 1 else [])
    return [out]


@register(*_MATMUL_SLOTS, kind="matmul", macs=True,
          shape={op: _matmul_shape for op in ("FusedMatMul", "TransposeMatMul", "DynamicQuantizeMatMul",
                                              "MatMulIntegerToFloat")})
def matmul(c: OpCall) -> tuple[int, int]:
    a_i, b_i, bias_i = _MATMUL_SLOTS[c.op_type]
    macs = matmul_macs(c.shape(a_i), c.shape(b_i), bool(c.attrs.get("transA", 0)), bool(c.attrs.get("transB", 0)))
    other = cv.BIAS_ADD * numel(_matmul_shape(c)[0]) if bias_i is not None and c.has(bias_i) else 0
    return macs, other


def _nbits_shape(c: OpCall) -> list[Shape]:
    return [list(c.shape(0)[:-1]) + [int(c.attrs["N"])]]


@register("MatMulNBits", "MatMulBnb4", kind="matmul", macs=True, shape=_nbits_shape)
def matmul_nbits(c: OpCall) -> tuple[int, int]:
    """com.microsoft block-quantized weight matmul: A (..., K) x W (K, N), K and N given as attributes; MatMulNBits'
    optional bias (input 5): 1 per output element."""
    a = c.shape(0)
    rows, n = numel(a[:-1]), int(c.attrs["N"])
    bias = c.op_type == "MatMulNBits" and c.has(5)
    return rows * int(c.attrs["K"]) * n, (cv.BIAS_ADD * rows * n if bias else 0)


@register("GemmFastGelu", kind="linear", macs=True, shape=lambda c: [list(c.shape(0)[:-1]) + [c.shape(1)[-1]]])
def gemm_fast_gelu(c: OpCall) -> tuple[int, int]:
    """com.microsoft X (..., K) x W (K, N) [+ bias], then FastGelu (the tanh GELU) per output element."""
    x, w = c.shape(0), c.shape(1)
    out = numel(x[:-1]) * w[-1]
    return out * x[-1], out * (cv.GELU_TANH + (cv.BIAS_ADD if c.has(2) else 0))


def einsum_sizes(equation: str, shapes: list[Shape]) -> tuple[dict[str, int], list[str], str]:
    """Index letter -> size ('...' dims become '0', '1', ...), the operand terms and the output term."""
    eq = equation.replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum '{equation}' has {len(terms)} operands, got {len(shapes)} shapes")
    sizes: dict[str, int] = {}
    ell_rank = 0
    expanded = []
    for term, shape in zip(terms, shapes):
        if "..." in term:
            n_ell = len(shape) - (len(term) - 3)
            ell_rank = max(ell_rank, n_ell)
            head, tail = term.split("...")
            letters = list(head) + [f"#{ell_rank - n_ell + j}" for j in range(n_ell)] + list(tail)
        else:
            letters = list(term)
        if len(letters) != len(shape):
            raise ValueError(f"einsum term '{term}' does not match rank {len(shape)}")
        for letter, dim in zip(letters, shape):
            if sizes.get(letter, 1) == 1 or dim != 1:
                sizes[letter] = dim
        expanded.append("".join(letters))
    if "->" not in eq:  # implicit output: letters used once, alphabetical
        once = sorted(ch for ch in set(lhs) if ch.isalpha() and lhs.count(ch) == 1)
        rhs = "..." + "".join(once) if "..." in lhs else "".join(once)
    return sizes, expanded, rhs


@register("Einsum", kind="matmul", macs=True)
def einsum(c: OpCall) -> tuple[int, int]:
    """Two or more operands: MACs = product of the sizes of all indices. One operand: a reduction (other_flops)."""
    shapes = [c.shape(i) for i in range(len(c.inputs)) if c.has(i)]
    sizes, terms, rhs = einsum_sizes(str(c.attrs["equation"]), shapes)
    total = math.prod(sizes.values())
    if len(shapes) >= 2:
        return total, 0
    summed = set(terms[0]) - set(rhs.replace("...", ""))
    summed = {s for s in summed if not s.startswith("#")}
    return 0, (total if summed else 0)


# --------------------------------------------------------------------------- attention

def _mha_core(b: int, s: int, l: int, d_qk: int, d_v: int) -> int:
    """Q K^T and P V summed over query heads (d_qk, d_v: the heads' total widths), full S x L score matrix."""
    return b * s * l * d_qk + b * s * l * d_v


def _attention_shape(c: OpCall) -> list[Shape]:
    if c.op_type == "QAttention" or (c.op_type == "Attention" and c.domain == "com.microsoft"):
        x, w = c.shape(0), c.shape(1)
        sizes = c.attrs.get("qkv_hidden_sizes") or [w[1] // 3] * 3
        return [[x[0], x[1], int(sizes[2])]]
    q = c.shape(0)
    if len(q) == 5:
        return [[q[0], q[1], q[2] * q[4]]]
    if c.has(2) and len(c.shape(2)) == 3:
        return [[q[0], q[1], c.shape(2)[-1]]]
    return [list(q)]


@register("Attention", "QAttention", kind="attention", macs=True, shape=_attention_shape)
def attention(c: OpCall) -> tuple[int, int]:
    """ai.onnx Attention (opset 23), com.microsoft Attention and its quantised form QAttention (the same work on int8
    input and weights: input, weight, bias, input_scale, weight_scale, mask_index, input/weight zero points, past)."""
    heads = int(c.attrs.get("num_heads", c.attrs.get("q_num_heads", 1)) or 1)
    if c.domain == "com.microsoft":
        # input (B, S, Din), weights (Din, Dq + Dk + Dv), bias, mask, past (2, B, H, P, head)
        x, w = c.shape(0), c.shape(1)
        b, s, d_in = x
        sizes = c.attrs.get("qkv_hidden_sizes") or [w[1] // 3] * 3
        dq, dk, dv = (int(v) for v in sizes)
        past_slot = 8 if c.op_type == "QAttention" else 4
        past = c.shape(past_slot)[3] if c.has(past_slot) else 0
        length = s + past
        proj = b * s * d_in * (dq + dk + dv)
        other = cv.BIAS_ADD * b * s * (dq + dk + dv) if c.has(2) else 0
        return proj + _mha_core(b, s, length, dq, dv), other + cv.SOFTMAX * b * heads * s * length
    # ai.onnx Attention (opset 23): Q (B, Hq, S, Dh) or (B, S, Hq*Dh); K (B, Hkv, L, Dh) or (B, L, Hkv*Dh); V alike
    q, k, v = c.shape(0), c.shape(1), c.shape(2)
    if len(q) == 4:
        b, hq, s, dh = q
        length, dv = k[2], v[3]
        d_qk, d_v = hq * dh, hq * dv
    else:
        hkv = int(c.attrs.get("kv_num_heads", heads) or heads)
        b, s, d_qk = q
        length = k[1]
        d_v = v[2] // hkv * heads
        hq = heads
    if c.has(4):  # past_key
        length += c.shape(4)[2]
    return _mha_core(b, s, length, d_qk, d_v), cv.SOFTMAX * b * hq * s * length


@register("MultiHeadAttention", kind="attention", macs=True, shape=_attention_shape)
def multi_head_attention(c: OpCall) -> tuple[int, int]:
    """com.microsoft: query (B, S, D) [or packed (B, S, N, 3, H)], key/value (B, L, D) or (B, N, L, H)."""
    heads = int(c.attrs.get("num_heads", 1))
    q = c.shape(0)
    if len(q) == 5:  # packed QKV
        b, s, n, _, h = q
        d_qk = d_v = n * h
        length = s
    else:
        b, s, d_qk = q
        k = c.shape(1)
        if len(k) == 5:  # packed KV (B, L, N, 2, H)
            length, d_v = k[1], k[2] * k[4]
        elif len(k) == 4:  # (B, N, L, H)
            length = k[2]
            d_v = c.shape(2)[1] * c.shape(2)[3] if c.has(2) else d_qk
        else:
            length = k[1]
            d_v = c.shape(2)[-1] if c.has(2) else d_qk
    if c.has(6):  # past_key (B, N, P, H)
        length += c.shape(6)[2]
    return _mha_core(b, s, length, d_qk, d_v), cv.SOFTMAX * b * heads * s * length


# com.microsoft GroupQueryAttention inputs
_GQA_KEY, _GQA_PAST_KEY, _GQA_TOTAL, _GQA_BIAS, _GQA_Q_NORM, _GQA_K_NORM = 1, 3, 6, 10, 14, 15


def _gqa_dims(c: OpCall) -> tuple[int, int, int, int, int, int]:
    """(B, S, L, Nq, Nkv, H): batch, query length, new key/value length, query and key/value heads, head size."""
    nq, nkv = int(c.attrs["num_heads"]), int(c.attrs["kv_num_heads"])
    b, s, d = c.shape(0)
    if c.has(_GQA_KEY):  # query (B, S, Nq*H), key/value (B, L, Nkv*H)
        return b, s, c.shape(_GQA_KEY)[1], nq, nkv, d // nq
    return b, s, s, nq, nkv, d // (nq + 2 * nkv)  # packed QKV (B, S, (Nq + 2 Nkv) * H)


def _gqa_present(c: OpCall) -> int:
    """Length of present_key/value: the past buffer grown by the new keys, or the total sequence length (a
    constant) when the past buffer is already at least that long (a shared max-length buffer)."""
    _, _, new, *_ = _gqa_dims(c)
    past = c.shape(_GQA_PAST_KEY)[2] if c.has(_GQA_PAST_KEY) else 0
    total = c.value(_GQA_TOTAL)
    if total is not None and len(total) == 1:
        return max(past, int(total[0]))
    return past + new


def _gqa_shape(c: OpCall) -> list[Shape]:
    b, s, _, nq, nkv, h = _gqa_dims(c)
    present = [b, nkv, _gqa_present(c), h]
    return [[b, s, nq * h], present, list(present)]


@register("GroupQueryAttention", kind="attention", macs=True, shape=_gqa_shape)
def group_query_attention(c: OpCall) -> tuple[int, int]:
    """com.microsoft GroupQueryAttention, projection-free: query (B, S, Nq*H) and key/value (B, L, Nkv*H) arrive
    already projected (or packed as (B, S, (Nq + 2 Nkv) * H) with key/value omitted), with an optional KV cache
    past_key/value (B, Nkv, P, H); the Q/K/V and output projections are MatMul nodes of their own.

    MACs = B * Nq * S * T * H (Q K^T) + B * Nq * S * T * H (P V): every query head attends over T keys, and the Nkv
    key/value heads shared by groups of Nq/Nkv query heads change the bytes read, not the MACs. T, the keys attended:
    the total_sequence_length input when it is a constant, else the present_key length (past + new keys; for a
    shared max-length cache buffer its length, an upper bound), else P + L. Causal mask and local window: the full
    S x T score matrix is counted, as FlopCounterMode counts sdpa with is_causal (and as ORT's CPU kernel computes
    it). other_flops per score: softmax, + 1 with attention_bias, + softcap; do_rotary: rotary on Q and the new K;
    q/k_norm_weight: RMS norm with scale on Q and the new K.
    """
    b, s, new, nq, nkv, h = _gqa_dims(c)
    total = c.value(_GQA_TOTAL)
    if total is not None and len(total) == 1:
        t = int(total[0])
    elif len(c.outputs) > 1 and c.outputs[1] is not None:
        t = c.out(1)[2]
    else:
        t = _gqa_present(c)
    scores = b * nq * s * t
    other = cv.SOFTMAX * scores
    if c.has(_GQA_BIAS):
        other += cv.ELEMENTWISE * scores
    if float(c.attrs.get("softcap", 0.0) or 0.0) > 0:
        other += cv.SOFTCAP * scores
    qk = b * s * nq * h + b * new * nkv * h
    if int(c.attrs.get("do_rotary", 0) or 0):
        other += cv.ROTARY * qk
    if c.has(_GQA_Q_NORM) and c.has(_GQA_K_NORM):
        other += cv.NORM_AFFINE * qk
    return 2 * scores * h, other


register_uncounted(
    "PackedAttention", "PackedMultiHeadAttention", "DecoderMaskedMultiHeadAttention", "DecoderMaskedSelfAttention",
    "DecoderAttention", "LongformerAttention", "QOrderedAttention", "QOrderedLongformerAttention",
    "SparseAttention", "PagedAttention", "MoE", "QMoE", "QOrderedMatMul",
    "MatMulFpQ4", "GatedRelativePositionBias", "ConvTransposeWithDynamicPads", "WordConvEmbedding",
    reason="MAC op without a formula: its MACs are not counted")
register_uncounted("BeamSearch", "GreedySearch", "Sampling", "WhisperBeamSearch",
                   reason="generation loop: its decoder subgraph runs a data-dependent number of times")


# --------------------------------------------------------------------------- recurrent

_RECURRENT_KINDS = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn", "DynamicQuantizeLSTM": "lstm"}


def _quantized_lstm_shape(c: OpCall) -> list[Shape]:
    """com.microsoft DynamicQuantizeLSTM: Y (seq, directions, batch, hidden), Y_h and Y_c (directions, batch,
    hidden)."""
    x, w = c.shape(0), c.shape(1)
    hidden = int(c.attrs["hidden_size"])
    state = [w[0], x[1], hidden]
    return [[x[0], w[0], x[1], hidden], state, list(state)]


@register(*_RECURRENT_KINDS, kind=_RECURRENT_KINDS, macs=True,
          shape={"DynamicQuantizeLSTM": _quantized_lstm_shape})
def recurrent(c: OpCall) -> tuple[int, int]:
    """Per time step and direction: gates * hidden * (input + hidden) MACs. X is (seq, batch, input) (layout 0).
    other_flops per hidden unit per step: the cell's gate sums, activations and state update, + 2 bias adds per gate
    (input and hidden bias) when B is given. W is (directions, gates x hidden, input); com.microsoft's
    DynamicQuantizeLSTM stores it transposed, (directions, input, gates x hidden), as int8, and does the same work."""
    x, w = c.shape(0), c.shape(1)
    kind = _RECURRENT_KINDS[c.op_type]
    seq, batch = (x[1], x[0]) if c.attrs.get("layout", 0) else (x[0], x[1])
    if c.op_type == "DynamicQuantizeLSTM":
        dirs, d_in, gh = w
    else:
        dirs, gh, d_in = w
    gates = cv.GATES[kind]
    hidden = int(c.attrs.get("hidden_size") or gh // gates)
    steps = seq * batch * dirs
    macs = steps * gates * hidden * (d_in + hidden)
    per_unit = cv.CELL[kind] + (2 * gates * cv.BIAS_ADD if c.has(3) else 0)
    return macs, steps * hidden * per_unit


# --------------------------------------------------------------------------- lookups

def lookup(op_type: str) -> OpSpec | None:
    """The registered spec of an op type, None when the counter does not know it."""
    return OPS.get(op_type)


def kind_of(op_type: str) -> str:
    spec = OPS.get(op_type)
    return spec.kind if spec is not None else "other"


def carries_macs(op_type: str) -> bool:
    """True for ops whose work is MACs: when one cannot be counted, the model's MACs are incomplete."""
    spec = OPS.get(op_type)
    return spec is not None and spec.macs


def count(call: OpCall) -> tuple[int, int] | None:
    """(macs, other_flops) for one op, or None when the op has no formula (unknown, or registered uncounted)."""
    spec = OPS.get(call.op_type)
    return None if spec is None or spec.formula is None else spec.formula(call)


__all__ = ["OPS", "OpCall", "OpSpec", "ShapeUnknown", "broadcast", "carries_macs", "count", "einsum",
           "einsum_sizes", "kind_of", "lookup", "matmul_macs", "same_as_input0"]
