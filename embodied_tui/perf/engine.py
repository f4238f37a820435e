"""Execution model of a TensorRT-style GPU engine at batch 1: which layers become kernels, which run on tensor cores,
and what each moves. Pure functions on layer costs; ``roofline.layer_work(fusion="tensorrt")`` calls ``engine_work``
and ``roofline.layer_times`` charges the result, so the formula of ``roofline`` is unchanged:

    t = t_scope + n_kernels t_kernel + sum_i max((C_i + K 2 N_i / P) / eta_tensor, B_i / eta_memory)

Kernels (what TensorRT's builder does to a conv/matmul network, stated as rules on our layer costs):
- a MAC layer (conv, linear, matmul, attention) is one kernel;
- pointwise layers after it (activation, batch norm, bias, residual add, a container's add such as a ResNet
  ``Bottleneck`` or any layer with no MACs, at most ``POINTWISE_FLOPS`` FLOPs per output and no more outputs than
  inputs) are fused into its epilogue: no kernel, only their extra operands move (``roofline.layer_work``);
- layers with no MACs and no FLOPs that write no more than they read (concat, reshape, slice, flatten) are
  eliminated: TensorRT writes concatenated outputs in place; no kernel, no traffic;
- everything else (pooling, upsampling, softmax, normalisation not after a MAC layer) is a kernel of its own.
``n_kernels`` counts them; each pays ``t_kernel`` (launch and tail of one kernel under CUDA graphs).

Tensor cores (at fp16/bf16/tf32/int8/fp8/fp4):
- a MAC layer with a reduction depth ``d`` (MACs per output element) of at least ``TENSOR_CORE_MIN_DEPTH`` runs on
  tensor cores at the precision's dense peak ``P``; its output channels (dim 1 of an NCHW output, the last dim of a
  matrix) and ``d`` are padded up to the 16-byte alignment tensor cores need (8 elements at 16 bits, 16 at 8 bits, 32
  at 4 bits): the padded MACs are charged (``LayerWork.pad``; the reported FLOPs stay 2 x the counted MACs). The per-output term ``K`` (``macs_per_output_half``) makes a shallow
  reduction run below peak: a layer with ``d`` MACs per output reaches ``d / (d + K)`` of ``eta_tensor``;
- depthwise and narrow grouped convolutions (``d`` below the minimum) run on CUDA cores at the device's fp32 vector
  rate (the catalog's fp32 peak), with the same ``eta``, and pay no ``K``.

Precision mix (INT8/FP8/FP4 engines): only MAC layers and the epilogues fused into them compute and store at the low
precision; the other kernels (pooling, upsampling, softmax ...) run and move their tensors at fp16, so an INT8 engine
is not a flat 2x of FP16: its memory-bound and non-MAC parts shrink less or not at all.

Not modelled (stated simplifications): the DLA (Jetson Orin NX/AGX, Xavier): every layer runs on the GPU; wave
quantisation on the SMs; kernel auto-tuning choices; data-dependent post-processing (NMS) outside the network.
"""
from __future__ import annotations

import math
from typing import Iterable

TENSOR_PRECISIONS = frozenset({"fp16", "bf16", "tf32", "int8", "fp8", "fp4", "int4"})
LOW_PRECISIONS = frozenset({"int8", "fp8", "fp4", "int4"})  # MAC layers only; other kernels run at fp16
TENSOR_CORE_MIN_DEPTH = 16  # MACs per output below which a layer (depthwise, narrow groups) runs on CUDA cores
POINTWISE_FLOPS = 8  # most FLOPs per output element of a layer still fused as an epilogue
ALIGN_BYTES = 16  # tensor cores want channel counts that are multiples of 16 bytes
KERNEL_TYPES = ("pool", "upsample", "interpolate", "softmax", "layernorm", "groupnorm", "resize")


def _get(obj, key: str, default=0):
    value = obj.get(key, default) if isinstance(obj, dict) else getattr(obj, key, default)
    return default if value is None else value


def align_elems(precision: str, bytes_per_element: float) -> int:
    """Channel alignment of tensor cores in elements: 16 bytes (8 at fp16, 16 at int8, 32 at fp4)."""
    return max(1, int(round(ALIGN_BYTES / bytes_per_element)))


def _pad(n: float, a: int) -> float:
    return math.ceil(n / a) * a if n > 0 else n


def out_channels(shape) -> int | None:
    """Output channels of a MAC layer: dim 1 of a 4-D/5-D (NCHW) output, else the last dim."""
    if not shape:
        return None
    return int(shape[1]) if len(shape) >= 4 else int(shape[-1])


def io_precision(precision: str) -> str:
    """The precision non-MAC kernels run and store at: fp16 in low-precision engines, else the engine's own."""
    return "fp16" if precision in LOW_PRECISIONS else precision


def is_pointwise(cost, pointwise_types: frozenset[str]) -> bool:
    """A no-MAC layer TensorRT folds into the kernel before it: a named pointwise op, or any layer with at most
    ``POINTWISE_FLOPS`` FLOPs per output that writes no more than it reads (a container's residual add)."""
    kind = str(_get(cost, "type", "")).lower()
    if kind in pointwise_types:
        return True
    if any(word in kind for word in KERNEL_TYPES):
        return False
    reads, writes, other = _get(cost, "read_elems"), _get(cost, "write_elems"), _get(cost, "other_flops")
    return 0 < writes <= reads and other <= POINTWISE_FLOPS * writes and other > 0


def is_eliminated(cost) -> bool:
    """A layer with no MACs and no FLOPs that writes no more than it reads: concat/reshape/slice, done in place."""
    kind = str(_get(cost, "type", "")).lower()
    if any(word in kind for word in KERNEL_TYPES):
        return False
    return (_get(cost, "macs") == 0 and _get(cost, "other_flops") == 0
            and _get(cost, "write_elems") <= _get(cost, "read_elems"))


def engine_work(layer_costs: Iterable, precision: str, pointwise_types: frozenset[str], bpe_of) -> list:
    """LayerCost records -> ``roofline.LayerWork`` under the TensorRT rules above (``bpe_of``: bytes per element of a
    precision; passed in so this module does not import roofline)."""
    from embodied_tui.perf.roofline import LayerWork

    low, io = bpe_of(precision), bpe_of(io_precision(precision))
    tensor = precision in TENSOR_PRECISIONS
    align = align_elems(precision, low)
    out = []
    chain_out = None  # elements the current MAC kernel keeps in registers (its output)
    for cost in layer_costs:
        macs, kind = _get(cost, "macs"), str(_get(cost, "type", ""))
        weights, reads, writes = _get(cost, "weight_elems"), _get(cost, "read_elems"), _get(cost, "write_elems")
        name, other = str(_get(cost, "name", "")), float(_get(cost, "other_flops"))
        launches = int(_get(cost, "launches", 1) or 1)
        unfused = (weights + reads + writes) * low  # reported at the engine's precision, as for other runtimes
        if macs > 0:
            chain_out = writes
            depth = macs / writes if writes else 0.0
            cuda_core = not tensor or depth < TENSOR_CORE_MIN_DEPTH
            pad = 1.0
            if not cuda_core:
                chans = out_channels(_get(cost, "output_shape", None))
                if chans:
                    pad *= _pad(chans, align) / chans
                pad *= _pad(depth, align) / depth
            out.append(LayerWork(name, kind, 2.0 * macs, other, weights * low, (reads + writes) * low, unfused,
                                 False, 0.0 if cuda_core else float(writes), launches, cuda_core, pad))
        elif chain_out is not None and is_pointwise(cost, pointwise_types):
            acts = max(0, reads - chain_out) + max(0, writes - chain_out)
            chain_out = max(chain_out, writes)
            out.append(LayerWork(name, kind, 0.0, other, weights * low, acts * low, unfused, True, 0.0, launches))
        elif is_eliminated(cost):
            out.append(LayerWork(name, kind, 0.0, 0.0, 0.0, 0.0, unfused, True, 0.0, launches))
        else:
            chain_out = None
            out.append(LayerWork(name, kind, 0.0, other, weights * io, (reads + writes) * io, unfused, False, 0.0,
                                 launches))
    return out
