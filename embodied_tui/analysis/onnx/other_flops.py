"""ONNX op -> (0, other_flops): the formulas of ops without multiply-accumulates (see ``onnx.formulas``), each
registered with its kind and, for com.microsoft ops, its shape hook.

Conventions (docs/architecture.md; the constants and the rule behind them are ``analysis.conventions``, shared with
the torch table):
- elementwise unary and binary ops: 1 per output element (a transcendental such as Exp, Erf or Sigmoid counts as 1);
  variadic Sum/Max/Min: (inputs - 1) per output element, Mean one more;
- fused activations count the ops of their standard formula: Gelu 5 (erf) or 9 (approximate='tanh'), FastGelu 9
  (+1 with its bias), BiasGelu 6, QuickGelu 3, Swish 2, Mish 3;
- BatchNormalization (inference): 2 per element; Layer/Instance/Group/RMS normalisation: 5 per element with a
  scale input, 4 without (the fvcore convention); SkipLayerNormalization adds 1 for the skip add;
- Softmax/LogSoftmax: 5 per element (max, subtract, exp, sum, divide);
- pooling: output elements x kernel size; global pooling, Reduce*, ArgMax/ArgMin, CumSum and TopK: input elements;
- Resize: nearest 0 (a copy), linear 2^r and cubic 4^r taps per output element (r = resized axes);
- QuantizeLinear/DequantizeLinear: 1 per element; LRN: size + 2 per element; RotaryEmbedding: 3 per element;
- exceptions (0 flops): data movement and views (Reshape, Transpose, Concat, Slice, Gather, Pad, Expand, Cast ...),
  Dropout/Identity (inference) and random generation.
"""
from __future__ import annotations

from embodied_tui.analysis import conventions as cv
from embodied_tui.analysis.onnx.ops import OpCall, Shape, numel, register


def same_as_input0(c: OpCall) -> list[Shape]:
    """Shape hook of a com.microsoft op whose output has its first input's shape."""
    return [list(c.shape(0))]


# --------------------------------------------------------------------------- normalisation, softmax, pooling

@register("BatchNormalization", kind="batchnorm")
def batchnorm(c: OpCall) -> tuple[int, int]:
    return 0, cv.BATCHNORM * numel(c.shape(0))


_NORM_KINDS = {"LayerNormalization": "layernorm", "SimplifiedLayerNormalization": "layernorm",
               "SkipLayerNormalization": "layernorm", "SkipSimplifiedLayerNormalization": "layernorm",
               "RMSNormalization": "layernorm", "GroupNormalization": "groupnorm", "GroupNorm": "groupnorm",
               "InstanceNormalization": "groupnorm", "MeanVarianceNormalization": "other",
               "LpNormalization": "other"}
_NORM_SHAPED = ("SimplifiedLayerNormalization", "SkipLayerNormalization", "SkipSimplifiedLayerNormalization")


@register(*_NORM_KINDS, kind=_NORM_KINDS, shape={op: same_as_input0 for op in _NORM_SHAPED})
def norm(c: OpCall) -> tuple[int, int]:
    n = numel(c.shape(0))
    scale_slot = {"SkipLayerNormalization": 2, "SkipSimplifiedLayerNormalization": 2, "GroupNorm": 1}.get(c.op_type, 1)
    per = cv.norm(c.has(scale_slot))
    if c.op_type.startswith("Skip"):
        per += cv.SKIP_ADD
    return 0, per * n


@register("LRN")
def lrn(c: OpCall) -> tuple[int, int]:
    """Sum of squares over `size` channels, then scale: size + 2 per element."""
    return 0, (int(c.attrs.get("size", 1)) + 2) * numel(c.shape(0))


@register("RotaryEmbedding", shape=same_as_input0)
def rotary(c: OpCall) -> tuple[int, int]:
    """x * cos + rotate(x) * sin: 3 per element."""
    return 0, cv.ROTARY * numel(c.shape(0))


@register("Softmax", "LogSoftmax", kind="softmax")
def softmax(c: OpCall) -> tuple[int, int]:
    return 0, cv.SOFTMAX * numel(c.shape(0))


@register("MaxPool", "AveragePool", "LpPool", "MaxRoiPool", kind={"MaxPool": "maxpool", "AveragePool": "avgpool"})
def pool(c: OpCall) -> tuple[int, int]:
    kernel = c.attrs.get("kernel_shape") or c.attrs.get("pooled_shape") or [1]
    return 0, numel(c.out(0)) * numel(kernel)


@register("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
          "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
          "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin", "CumSum", "CumProd", "TopK",
          kind={"GlobalAveragePool": "global_pool", "GlobalMaxPool": "global_pool"})
def reduce_input(c: OpCall) -> tuple[int, int]:
    return 0, numel(c.shape(0))


@register("Resize", "Upsample", kind="upsample")
def resize(c: OpCall) -> tuple[int, int]:
    x, y = c.shape(0), c.out(0)
    mode = str(c.attrs.get("mode", "nearest"))
    resized = sum(1 for a, b in zip(x, y) if a != b)
    taps = cv.RESIZE_TAPS.get(mode, 0) ** resized if mode != "nearest" else 0
    return 0, numel(y) * taps


# --------------------------------------------------------------------------- elementwise

UNARY = ("Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu", "Celu",
         "Softplus", "Softsign", "ThresholdedRelu", "Erf", "Exp", "Log",
         "Sqrt", "Reciprocal", "Neg", "Abs", "Ceil", "Floor", "Round", "Sign", "Sin", "Cos", "Tan", "Asin", "Acos",
         "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Not", "IsNaN", "IsInf", "Clip", "Shrink",
         "BitwiseNot", "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Hardmax")
BINARY = ("Add", "Sub", "Mul", "Div", "Pow", "Mod", "PRelu", "Equal", "Greater", "GreaterOrEqual", "Less",
          "LessOrEqual", "And", "Or", "Xor", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "Where",
          "BiasAdd")
_ELEMENTWISE_KINDS = {"Relu": "relu", "Erf": "gelu", "Sigmoid": "sigmoid", "HardSigmoid": "hardsigmoid",
                      "HardSwish": "hardswish", "Tanh": "tanh", "Add": "add", "Mul": "mul"}


@register(*UNARY, *BINARY, kind=_ELEMENTWISE_KINDS, shape={"BiasAdd": same_as_input0})
def elementwise(c: OpCall) -> tuple[int, int]:
    return 0, cv.ELEMENTWISE * numel(c.out(0))


# fused activations: the ops of their standard formula per element (analysis.conventions)
_ACTIVATIONS = {"Gelu": "gelu", "FastGelu": "gelu", "BiasGelu": "gelu", "QuickGelu": "gelu", "Swish": "silu",
                "Mish": "other"}


@register(*_ACTIVATIONS, kind=_ACTIVATIONS,
          shape={op: same_as_input0 for op in ("Gelu", "FastGelu", "BiasGelu", "QuickGelu")})
def activation(c: OpCall) -> tuple[int, int]:
    op = c.op_type
    if op == "Gelu":  # ai.onnx (opset 20, approximate attribute) and com.microsoft (erf)
        per = cv.gelu(c.attrs.get("approximate"))
    elif op == "FastGelu":  # tanh approximation, optional bias input
        per = cv.GELU_TANH + (cv.BIAS_ADD if c.has(1) else 0)
    elif op == "BiasGelu":
        per = cv.BIAS_ADD + cv.GELU
    else:
        per = {"QuickGelu": cv.QUICK_GELU, "Swish": cv.SILU, "Mish": cv.MISH}[op]
    return 0, per * numel(c.out(0))


_VARIADIC = ("Sum", "Max", "Min", "Mean")


@register(*_VARIADIC, kind={"Sum": "add"})
def variadic(c: OpCall) -> tuple[int, int]:
    k = sum(c.present)
    return 0, (max(k - 1, 1) + (1 if c.op_type == "Mean" else 0)) * numel(c.out(0))


# --------------------------------------------------------------------------- data movement: counted, 0 flops

ZERO_FLOP = ("Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Concat", "Slice", "Gather",
             "GatherElements", "GatherND", "Split", "Shape", "Size", "Constant", "ConstantOfShape", "Identity",
             "Cast", "CastLike", "Expand", "Tile", "Pad", "Range", "NonZero", "ScatterND", "ScatterElements",
             "Scatter", "DepthToSpace", "SpaceToDepth", "Dropout", "EyeLike", "OneHot", "ReverseSequence",
             "Compress", "SequenceConstruct", "SplitToSequence", "ConcatFromSequence", "SequenceAt",
             "SequenceEmpty", "SequenceInsert", "SequenceLength", "NonMaxSuppression", "Col2Im", "GridSample",
             "RoiAlign", "Unique", "Trilu", "BitCast", "CenterCropPad", "MaxUnpool", "OptionalGetElement",
             "OptionalHasElement", "Optional",
             # random generation: counted as data movement
             "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Bernoulli", "Multinomial")
_MOVE_KINDS = {"Concat": "concat", "Split": "split", "Pad": "pad", "Flatten": "flatten", "Reshape": "reshape",
               "Squeeze": "reshape", "Unsqueeze": "reshape", "Transpose": "transpose", "Slice": "slice"}


@register(*ZERO_FLOP, kind=_MOVE_KINDS)
def data_movement(c: OpCall) -> tuple[int, int]:
    return 0, 0
