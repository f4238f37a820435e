"""ONNX op -> (0, other_flops): the formulas of ops without multiply-accumulates (see ``onnx.formulas``).

Conventions (see design.md):
- elementwise unary and binary ops: 1 per output element (a transcendental such as Exp or Erf counts as 1);
  BiasGelu 2 (bias add + gelu); variadic Sum/Max/Min: (inputs - 1) per output element, Mean one more;
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

from embodied_tui.analysis.onnx.ops import OpCall, numel, register


# --------------------------------------------------------------------------- normalisation, softmax, pooling

@register("BatchNormalization")
def batchnorm(c: OpCall) -> tuple[int, int]:
    return 0, 2 * numel(c.shape(0))


@register("LayerNormalization", "InstanceNormalization", "GroupNormalization", "GroupNorm", "RMSNormalization",
          "SimplifiedLayerNormalization", "SkipLayerNormalization", "SkipSimplifiedLayerNormalization",
          "MeanVarianceNormalization", "LpNormalization")
def norm(c: OpCall) -> tuple[int, int]:
    n = numel(c.shape(0))
    scale_slot = {"SkipLayerNormalization": 2, "SkipSimplifiedLayerNormalization": 2, "GroupNorm": 1}.get(c.op_type, 1)
    per = 5 if c.has(scale_slot) else 4
    if c.op_type.startswith("Skip"):
        per += 1
    return 0, per * n


@register("LRN")
def lrn(c: OpCall) -> tuple[int, int]:
    """Sum of squares over `size` channels, then scale: size + 2 per element."""
    return 0, (int(c.attrs.get("size", 1)) + 2) * numel(c.shape(0))


@register("RotaryEmbedding")
def rotary(c: OpCall) -> tuple[int, int]:
    """x * cos + rotate(x) * sin: 3 per element."""
    return 0, 3 * numel(c.shape(0))


@register("Softmax", "LogSoftmax")
def softmax(c: OpCall) -> tuple[int, int]:
    return 0, 5 * numel(c.shape(0))


@register("MaxPool", "AveragePool", "LpPool", "MaxRoiPool")
def pool(c: OpCall) -> tuple[int, int]:
    kernel = c.attrs.get("kernel_shape") or c.attrs.get("pooled_shape") or [1]
    return 0, numel(c.out(0)) * numel(kernel)


@register("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
          "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
          "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin", "CumSum", "CumProd", "TopK")
def reduce_input(c: OpCall) -> tuple[int, int]:
    return 0, numel(c.shape(0))


@register("Resize", "Upsample")
def resize(c: OpCall) -> tuple[int, int]:
    x, y = c.shape(0), c.out(0)
    mode = str(c.attrs.get("mode", "nearest"))
    resized = sum(1 for a, b in zip(x, y) if a != b)
    taps = {"linear": 2, "bilinear": 2, "cubic": 4}.get(mode, 0) ** resized if mode != "nearest" else 0
    return 0, numel(y) * taps


# --------------------------------------------------------------------------- elementwise

UNARY = ("Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu", "Celu", "Gelu",
         "FastGelu", "QuickGelu", "Mish", "Softplus", "Softsign", "ThresholdedRelu", "Swish", "Erf", "Exp", "Log",
         "Sqrt", "Reciprocal", "Neg", "Abs", "Ceil", "Floor", "Round", "Sign", "Sin", "Cos", "Tan", "Asin", "Acos",
         "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Not", "IsNaN", "IsInf", "Clip", "Shrink",
         "BitwiseNot", "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Hardmax")
BINARY = ("Add", "Sub", "Mul", "Div", "Pow", "Mod", "PRelu", "Equal", "Greater", "GreaterOrEqual", "Less",
          "LessOrEqual", "And", "Or", "Xor", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "Where",
          "BiasAdd", "BiasGelu")
VARIADIC = ("Sum", "Max", "Min", "Mean")


@register(*UNARY, *BINARY)
def elementwise(c: OpCall) -> tuple[int, int]:
    extra = 1 if c.op_type in ("BiasGelu",) else 0  # bias add + gelu
    return 0, (1 + extra) * numel(c.out(0))


@register(*VARIADIC)
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


@register(*ZERO_FLOP)
def data_movement(c: OpCall) -> tuple[int, int]:
    return 0, 0
