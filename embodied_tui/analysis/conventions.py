"""The per-element FLOP constants of ``other_flops``, shared by the torch (aten) and ONNX formula tables.

Both counters read these numbers, so a ``.pt`` and the ``.onnx`` exported from it report the same ``other_flops``
(docs/architecture.md, "Conventions"). MACs are not here: they are multiply-accumulates of convolution, linear,
matmul/einsum and attention, counted by the formulas themselves.

One rule decides every constant: **a primitive elementwise op counts 1 per output element** (a transcendental such
as exp, erf, tanh or sigmoid included), and **a fused op counts the primitive ops of its standard formula**, the ones
an exporter writes when the opset has no fused op, so the fused op and its decomposition count the same. Reductions
and normalisations count a fixed number of passes over their input.

| operation              | per element | why                                                                     |
|------------------------|-------------|-------------------------------------------------------------------------|
| elementwise            | 1           | add, mul, relu, sigmoid, tanh, exp, erf, clip, hardswish, hardsigmoid,  |
|                        |             | elu, leaky/p-relu, softplus, (de)quantize ...: one ONNX op, one aten op |
| bias add               | 1           | per output element of a conv, linear/Gemm/addmm and baddbmm, and per    |
|                        |             | recurrent gate bias (Gemm + bias == MatMul + Add, as 3-D linears export)|
| GELU (erf)             | 5           | x / sqrt(2), erf, + 1, x *, * 0.5 (a GELU exported below opset 20)      |
| GELU (tanh)            | 9           | x*x*x (2), * 0.044715, + x, * sqrt(2/pi), tanh, + 1, x *, * 0.5         |
| SiLU / Swish           | 2           | sigmoid, x *                                                            |
| Mish                   | 3           | softplus, tanh, x *                                                     |
| QuickGELU              | 3           | * 1.702, sigmoid, x *                                                   |
| softmax, log_softmax   | 5           | max, subtract, exp, sum, divide (log_softmax: log, subtract last)       |
| batch norm (inference) | 2           | scale and shift (the statistics fold into one per-channel affine)       |
| layer/group/instance/  | 5 or 4      | mean, subtract, variance, normalise, + 1 for the affine scale when the  |
| RMS norm               |             | op has one (the fvcore convention); SkipLayerNorm's skip add: + 1       |
| rotary embedding       | 3           | x * cos + rotate(x) * sin                                               |
| attention scores       | softmax     | per score of Q K^T (batch x heads x queries x keys, the full matrix);   |
|                        |             | + 1 for an additive mask/bias input, + 3 for a softcap (/, tanh, *)     |
| pooling                | window      | output elements x window size; global/adaptive average pooling and      |
|                        |             | reductions: input elements                                              |
| data movement          | 0           | reshape, transpose, concat, slice, gather, pad, copy, cast: bytes only  |

Recurrent cells (ONNX LSTM/GRU/RNN and the aten ops nn.LSTM/GRU/RNN decompose into) count per hidden unit per time
step: the gate sums and activations and the state update (``LSTM_CELL``, ``GRU_CELL``, ``RNN_CELL``) plus one bias
add per gate for each of the input and hidden biases (``BIAS_ADD``).

Where a ``.pt`` and its ``.onnx`` still differ, the graph itself differs:
- BatchNorm folded into the convolution by the exporter: the BN's 2 per element are gone and the conv's bias add
  (1 per element) appears when the conv had no bias;
- GroupNorm, which the TorchScript exporter writes (opsets 17-21) as InstanceNormalization with a scale of ones
  + Mul + Add: 2 more per element;
- LayerNorm without affine parameters, exported with a constant scale of ones: 5 instead of 4 per element;
- scaled_dot_product_attention where torch runs a fused kernel (its formula counts the softmax only): the export's
  MatMul/Mul/Softmax/MatMul adds the scale multiplies, 1 per element of Q and K (on the meta device TorchScript
  takes the math path, whose ops match the export).
"""
from __future__ import annotations

ELEMENTWISE = 1
BIAS_ADD = 1
GELU = 5
GELU_TANH = 9
SILU = 2
MISH = 3
QUICK_GELU = 3
SOFTMAX = 5
BATCHNORM = 2
NORM = 4
NORM_AFFINE = 5
SKIP_ADD = 1
ROTARY = 3
SOFTCAP = 3
LSTM_CELL = 13  # 4 gate sums (W x + R h), 5 activations (3 sigmoid, tanh g, tanh c), f*c + i*g (3), o * tanh(c)
GRU_CELL = 10  # r, z: sum + sigmoid (4); n: sum, r * (R h), tanh (3); h = n + z * (h - n) (3)
RNN_CELL = 2  # sum + tanh
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
CELL = {"lstm": LSTM_CELL, "gru": GRU_CELL, "rnn": RNN_CELL}
BILINEAR_TAP = 4  # DeformConv: bilinear interpolation of one sampled kernel tap
RESIZE_TAPS = {"linear": 2, "bilinear": 2, "cubic": 4}  # per resized axis and output element; nearest: 0


def norm(affine: bool) -> int:
    """Layer/group/instance/RMS normalisation per element, with or without the affine scale."""
    return NORM_AFFINE if affine else NORM


def gelu(approximate: str | None) -> int:
    """GELU per element: the erf form, or the tanh approximation (``approximate='tanh'``)."""
    return GELU_TANH if str(approximate or "none") == "tanh" else GELU
