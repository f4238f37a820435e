"""ONNX op -> (macs, other_flops): one small formula per op, registered next to it (like torch.utils.flop_counter).

This module holds the formulas of the ops that do multiply-accumulates and the shape hooks, and is the table's public
face: importing it registers every formula (those without MACs live in ``onnx.other_flops``) and every shape
hook, and ``count`` looks one op up. ``OpCall``, ``ShapeUnknown`` and ``SHAPE_HOOKS`` (from ``onnx.ops``) are
re-exported here; the op classes (views, control flow, MAC ops) are in ``onnx.ops``.

Conventions (see design.md):
- ``macs``: multiply-accumulates of convolution, linear (Gemm/MatMul), einsum, attention and recurrent cells.
- ``other_flops`` of these ops:
  * bias adds folded into Conv/ConvTranspose/Gemm: 1 per output element (so Gemm+bias == MatMul+Add);
  * DeformConv: conv MACs plus 4 flops per sampled kernel tap (bilinear interpolation);
  * attention ops: MACs of Q K^T and P V summed over heads (+ the QKV projection inside com.microsoft Attention),
    softmax at 5 per score in other_flops;
  * recurrent cells: bias adds, gate activations and the state update per hidden unit per step;
  * a one-operand Einsum is a reduction: its index-space size in other_flops, no MACs.
- every other op's formula and convention: ``onnx.other_flops``.

Each formula gets an ``OpCall`` (input/output shapes and attributes) and returns ``(macs, other_flops)``. A formula that
needs a shape that is unknown raises ``ShapeUnknown``; the caller notes it and counts the rest. Ops absent from the
table are reported as "not counted". ``SHAPE_HOOKS`` give output shapes of a few com.microsoft ops that ONNX shape
inference does not know, so inference can continue past them.
"""
from __future__ import annotations

import math

from embodied_tui.analysis.onnx import other_flops  # noqa: F401 - registers the formulas of ops without MACs
from embodied_tui.analysis.onnx.ops import (  # noqa: F401 - OpCall, ShapeUnknown, SHAPE_HOOKS re-exported
    FORMULAS, SHAPE_HOOKS, OpCall, Shape, ShapeUnknown, numel, register, shape_hook)


# --------------------------------------------------------------------------- convolution and linear algebra

# (data, weight, bias) input positions for each conv-like op
_CONV_SLOTS = {"Conv": (0, 1, 2), "ConvInteger": (0, 1, None), "QLinearConv": (0, 3, 8), "FusedConv": (0, 1, 2),
               "NhwcConv": (0, 1, 2), "DeformConv": (0, 1, 3)}


@register(*_CONV_SLOTS)
def conv(c: OpCall) -> tuple[int, int]:
    """MACs = N * Cout * prod(out_spatial) * (Cin/groups) * prod(kernel) = out elements * prod(W.shape[1:])."""
    _, w_i, b_i = _CONV_SLOTS[c.op_type]
    y = c.out(0)
    w = c.shape(w_i)
    other = numel(y) if b_i is not None and c.has(b_i) else 0
    if c.op_type == "FusedConv" and c.attrs.get("activation"):
        other += numel(y)
    if c.op_type == "DeformConv":  # bilinear sampling of every tap of every input channel: 4 flops each
        other += 4 * y[0] * numel(y[2:]) * c.shape(0)[1] * numel(w[2:])
    return numel(y) * numel(w[1:]), other


@register("ConvTranspose")
def conv_transpose(c: OpCall) -> tuple[int, int]:
    """MACs = N * Cin * prod(in_spatial) * (Cout/groups) * prod(kernel) = in elements * prod(W.shape[1:])."""
    x, w = c.shape(0), c.shape(1)
    other = numel(c.out(0)) if c.has(2) else 0
    return numel(x) * numel(w[1:]), other


@register("Gemm")
def gemm(c: OpCall) -> tuple[int, int]:
    a, b = c.shape(0), c.shape(1)
    m, k = (a[1], a[0]) if c.attrs.get("transA", 0) else (a[0], a[1])
    n = b[0] if c.attrs.get("transB", 0) else b[1]
    return m * k * n, (m * n if c.has(2) else 0)


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


def matmul_macs(a: Shape, b: Shape, trans_a: bool = False, trans_b: bool = False) -> int:
    """numpy matmul semantics: 1-D operands are promoted; batch dims broadcast."""
    a = [1, a[0]] if len(a) == 1 else list(a)
    b = [b[0], 1] if len(b) == 1 else list(b)
    if trans_a:
        a[-2], a[-1] = a[-1], a[-2]
    if trans_b:
        b[-2], b[-1] = b[-1], b[-2]
    m, k, n = a[-2], a[-1], b[-1]
    return numel(broadcast(a[:-2], b[:-2])) * m * k * n


_MATMUL_SLOTS = {"MatMul": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3), "FusedMatMul": (0, 1)}


@register(*_MATMUL_SLOTS)
def matmul(c: OpCall) -> tuple[int, int]:
    a_i, b_i = _MATMUL_SLOTS[c.op_type]
    return matmul_macs(c.shape(a_i), c.shape(b_i), bool(c.attrs.get("transA", 0)), bool(c.attrs.get("transB", 0))), 0


@register("MatMulNBits")
def matmul_nbits(c: OpCall) -> tuple[int, int]:
    """com.microsoft 4-bit weight matmul: A (..., K) x W (K, N) with K, N given as attributes."""
    a = c.shape(0)
    return numel(a[:-1]) * int(c.attrs["K"]) * int(c.attrs["N"]), (numel(a[:-1]) * int(c.attrs["N"]) if c.has(5) else 0)


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


@register("Einsum")
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

def _mha_core(b: int, s: int, l: int, d_qk: int, d_v: int) -> tuple[int, int]:
    """Q K^T and P V summed over heads; softmax over (B, S, L) per head is counted by the caller."""
    return b * s * l * d_qk + b * s * l * d_v, 0


@register("Attention")
def attention(c: OpCall) -> tuple[int, int]:
    heads = int(c.attrs.get("num_heads", c.attrs.get("q_num_heads", 1)) or 1)
    if c.domain == "com.microsoft":
        # input (B, S, Din), weights (Din, Dq + Dk + Dv), bias, mask, past (2, B, H, P, head)
        x, w = c.shape(0), c.shape(1)
        b, s, d_in = x
        sizes = c.attrs.get("qkv_hidden_sizes") or [w[1] // 3] * 3
        dq, dk, dv = (int(v) for v in sizes)
        past = c.shape(4)[3] if c.has(4) else 0
        length = s + past
        proj = b * s * d_in * (dq + dk + dv)
        core, _ = _mha_core(b, s, length, dq, dv)
        other = b * s * (dq + dk + dv) if c.has(2) else 0
        return proj + core, other + 5 * b * heads * s * length
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
    macs, _ = _mha_core(b, s, length, d_qk, d_v)
    return macs, 5 * b * hq * s * length


@register("MultiHeadAttention")
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
    macs, _ = _mha_core(b, s, length, d_qk, d_v)
    return macs, 5 * b * heads * s * length


@shape_hook("Attention", "MultiHeadAttention")
def _attention_shape(c: OpCall) -> list[Shape]:
    if c.op_type == "Attention" and c.domain == "com.microsoft":
        x, w = c.shape(0), c.shape(1)
        sizes = c.attrs.get("qkv_hidden_sizes") or [w[1] // 3] * 3
        return [[x[0], x[1], int(sizes[2])]]
    q = c.shape(0)
    if len(q) == 5:
        return [[q[0], q[1], q[2] * q[4]]]
    if c.has(2) and len(c.shape(2)) == 3:
        return [[q[0], q[1], c.shape(2)[-1]]]
    return [list(q)]


@shape_hook("FastGelu", "BiasGelu", "Gelu", "QuickGelu", "BiasAdd", "SkipLayerNormalization",
            "SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization", "RotaryEmbedding", "FusedConv",
            "GroupQueryAttention")
def _same_as_input0(c: OpCall) -> list[Shape]:
    return [list(c.shape(0))]


@shape_hook("MatMulNBits")
def _matmul_nbits_shape(c: OpCall) -> list[Shape]:
    return [list(c.shape(0)[:-1]) + [int(c.attrs["N"])]]


# --------------------------------------------------------------------------- recurrent

_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
# elementwise work per hidden unit per step besides the gate matmuls: biases + gate activations + state update
_CELL_OTHER = {"LSTM": 4 + 4 + 5, "GRU": 3 + 3 + 4, "RNN": 1 + 1}


@register("LSTM", "GRU", "RNN")
def recurrent(c: OpCall) -> tuple[int, int]:
    """Per time step and direction: gates * hidden * (input + hidden) MACs. X is (seq, batch, input) (layout 0)."""
    x, w = c.shape(0), c.shape(1)
    seq, batch = (x[1], x[0]) if c.attrs.get("layout", 0) else (x[0], x[1])
    dirs, gh, d_in = w
    hidden = int(c.attrs.get("hidden_size") or gh // _GATES[c.op_type])
    steps = seq * batch * dirs
    macs = steps * _GATES[c.op_type] * hidden * (d_in + hidden)
    return macs, steps * hidden * _CELL_OTHER[c.op_type]


def count(call: OpCall) -> tuple[int, int] | None:
    """(macs, other_flops) for one op, or None when the op is not in the table."""
    fn = FORMULAS.get(call.op_type)
    return None if fn is None else fn(call)
