"""Architecture type and family from structural evidence in the op trace (never from class names alone).

Each detector looks for one structure (a residual add, an inverted residual, squeeze-excite, attention, a patch
embedding, windowed attention, recurrence, an FPN neck with multi-scale heads ...) and reports what it found as a
sentence of evidence. The rules then decide type and family from the evidence; layer-type names (from the census)
are only used as a supporting clue for recurrent layers, which ONNX and TorchScript both name.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from embodied_tui.analysis.trace import TraceOp
from embodied_tui.data.records import Architecture

_ACT = {"relu", "relu6", "gelu", "silu", "sigmoid", "hardsigmoid", "hardswish", "tanh"}
_PASS = {"batchnorm", "layernorm", "groupnorm", "reshape", "transpose", "slice", "other", "flatten"} | _ACT


@dataclass
class Evidence:
    counts: Counter = field(default_factory=Counter)
    facts: list[str] = field(default_factory=list)

    def add(self, key: str, n: int, text: str) -> None:
        if n:
            self.counts[key] += n
            self.facts.append(_singular(text).format(n=n) if n == 1 else text.format(n=n))


def _singular(text: str) -> str:
    """'{n} residual additions (skip ...)' -> '{n} residual addition (skip ...)': the noun before any bracket."""
    head, sep, tail = text.partition(" (")
    if head.endswith("s"):
        head = head[:-1]
    return head + sep + tail


def _is_dw(op: TraceOp) -> bool:
    g = op.attrs.get("groups", 1)
    return op.kind == "conv" and g > 1 and g == op.attrs.get("in_channels") == op.attrs.get("out_channels")


def _is_pw(op: TraceOp) -> bool:
    return op.kind == "conv" and all(k == 1 for k in op.attrs.get("kernel", [0])) and op.attrs.get("groups", 1) == 1


def _producer(trace: list[TraceOp], op: TraceOp, skip: set[str] = _PASS) -> TraceOp | None:
    """The first producer of op's first activation input, looking through norms, activations and reshapes."""
    seen = 0
    cur = op
    while seen < 8:
        srcs = [i for i in cur.inputs if i >= 0]
        if not srcs:
            return None
        cur = trace[srcs[0]]
        if cur.kind not in skip:
            return cur
        seen += 1
    return None


def _ancestors(trace: list[TraceOp], start: int, limit: int = 40) -> set[int]:
    seen: set[int] = set()
    todo = [start]
    while todo and len(seen) < limit:
        i = todo.pop()
        if i < 0 or i in seen:
            continue
        seen.add(i)
        todo.extend(trace[i].inputs)
    return seen


def _residual_adds(trace: list[TraceOp]) -> int:
    """Adds of two equal-shape activations that fork from one op, with at least two weighted ops (or attention)
    between the fork and the add: a skip connection around a block."""
    n = 0
    for op in trace:
        srcs = [i for i in op.inputs if i >= 0]
        if op.kind != "add" or len(srcs) < 2:
            continue
        if len(op.in_shapes) >= 2 and op.in_shapes[0] != op.in_shapes[1]:
            continue
        common = _ancestors(trace, srcs[0]) & _ancestors(trace, srcs[1])
        fork = max(common) if common else min(srcs)
        span = trace[fork + 1:op.index]
        if sum(1 for t in span if t.kind in ("conv", "linear", "matmul")) >= 2 or any(
                t.kind == "attention" for t in span):
            n += 1
    return n


def _inverted_residuals(trace: list[TraceOp]) -> int:
    """Pointwise expand -> depthwise -> pointwise project (MobileNetV2 / EfficientNet MBConv)."""
    n = 0
    for op in trace:
        if not _is_pw(op) or op.attrs.get("out_channels", 0) >= op.attrs.get("in_channels", 0):
            continue
        prev = _producer(trace, op, _PASS | {"mul", "global_pool"})  # SE sits between dw and project
        while prev is not None and prev.kind == "mul":
            prev = _producer(trace, prev, _PASS)
        if prev is not None and _is_dw(prev):
            n += 1
    return n


def _squeeze_excite(trace: list[TraceOp]) -> int:
    """A channel gate: mul by a sigmoid/hardsigmoid of a (1x1-spatial) tensor computed from a global pool."""
    n = 0
    for op in trace:
        if op.kind != "mul" or len(op.in_shapes) < 2:
            continue
        for i in op.inputs:
            if i < 0:
                continue
            gate = trace[i]
            if gate.kind in ("sigmoid", "hardsigmoid") and gate.out_shape and len(gate.out_shape) == 4 and \
                    gate.out_shape[2:] == [1, 1]:
                n += 1
                break
    return n


def _attention(trace: list[TraceOp]) -> int:
    """Fused attention ops, or matmul -> softmax -> matmul on activations (Q K^T, softmax, x V)."""
    n = sum(1 for op in trace if op.kind == "attention")
    for op in trace:
        if op.kind == "softmax":
            src = _producer(trace, op, {"mul", "add", "reshape", "transpose", "other"})
            users = [t for t in trace[op.index + 1: op.index + 6] if op.index in t.inputs and t.kind == "matmul"]
            if src is not None and src.kind == "matmul" and users:
                n += 1
    return n


def _patch_embedding(trace: list[TraceOp]) -> bool:
    convs = [op for op in trace if op.kind == "conv"]
    if not convs:
        return False
    first = convs[0]
    k, s = first.attrs.get("kernel", []), first.attrs.get("stride", [])
    return bool(k) and k == s and min(k) >= 4


def _head_scales(trace: list[TraceOp]) -> int:
    """Most feature-map sizes whose conv outputs are flattened and joined by one concat (a multi-scale head)."""
    best = 0
    skip = {"reshape", "transpose", "concat", "slice", "other", "flatten"}
    for op in trace:
        if op.kind != "concat" or not op.out_shape or len(op.out_shape) == 4:
            continue
        sizes = set()
        for i in op.inputs:
            cur = trace[i] if i >= 0 else None
            while cur is not None and cur.kind in skip:
                srcs = [j for j in cur.inputs if j >= 0]
                cur = trace[srcs[0]] if srcs else None
            if cur is not None and cur.kind == "conv" and cur.out_shape and len(cur.out_shape) == 4:
                sizes.add(tuple(cur.out_shape[2:]))
        best = max(best, len(sizes))
    return best


def _upsample_concat(trace: list[TraceOp]) -> int:
    """Upsampled maps joined with earlier, finer features (FPN/PAN necks and U-Net decoders)."""
    return sum(1 for op in trace if op.kind == "concat" and any(
        i >= 0 and trace[i].kind == "upsample" for i in op.inputs))


def _multi_scale_outputs(output_shapes: list[list[int]]) -> int:
    spatial = {tuple(s[2:]) for s in output_shapes if len(s) == 4}
    return len(spatial)


def gather(trace: list[TraceOp], layers: dict[str, int], input_shapes, output_shapes) -> Evidence:
    ev = Evidence()
    kinds = Counter(op.kind for op in trace)
    macs = Counter()
    for op in trace:
        macs[op.kind] += op.macs
    total = sum(macs.values()) or 1
    conv_share = (macs["conv"] + macs["conv_transpose"]) / total
    attn_share = (macs["attention"] + sum(op.macs for op in trace if op.kind == "matmul")) / total
    ev.counts["conv_share"] = round(100 * conv_share)
    ev.counts["attn_share"] = round(100 * attn_share)
    ev.add("conv", kinds["conv"], "{n} convolutions (" + f"{100 * conv_share:.0f}% of MACs)")
    ev.add("dwconv", sum(1 for op in trace if _is_dw(op)), "{n} depthwise convolutions")
    ev.add("grouped", sum(1 for op in trace if op.kind == "conv" and 1 < op.attrs.get("groups", 1) and not _is_dw(op)),
           "{n} grouped (non-depthwise) convolutions")
    ev.add("residual", _residual_adds(trace), "{n} residual additions (skip connections around weighted layers)")
    ev.add("inverted", _inverted_residuals(trace), "{n} inverted residual blocks (expand 1x1 -> depthwise -> project 1x1)")
    ev.add("se", _squeeze_excite(trace), "{n} squeeze-excite gates (global pool -> sigmoid -> channel multiply)")
    ev.add("attention", _attention(trace), "{n} attention blocks (" + f"{100 * attn_share:.0f}% of MACs)")
    ev.add("roll", kinds["roll"], "{n} cyclic shifts (shifted-window attention)")
    ev.add("embedding", kinds["embedding"], "{n} token embedding lookups")
    ev.add("layernorm", kinds["layernorm"], "{n} layer norms")
    ev.add("batchnorm", kinds["batchnorm"], "{n} batch norms")
    ev.add("concat", kinds["concat"], "{n} concatenations")
    ev.add("upsample", kinds["upsample"] + kinds["conv_transpose"], "{n} upsampling layers")
    ev.add("silu", kinds["silu"], "{n} SiLU activations")
    ev.add("hardswish", kinds["hardswish"], "{n} hard-swish activations")
    ev.add("relu6", kinds["relu6"], "{n} ReLU6 activations")
    ev.add("gelu", kinds["gelu"], "{n} GELU activations")
    ev.add("linear", kinds["linear"], "{n} linear layers")
    recurrent = kinds["lstm"] + kinds["gru"] + kinds["rnn"]
    rec_layers = {k: v for k, v in layers.items() if k.upper() in ("LSTM", "GRU", "RNN", "LSTMCELL", "GRUCELL")}
    ev.add("recurrent", sum(rec_layers.values()) or recurrent,
           "{n} recurrent layers (" + (", ".join(rec_layers) or "LSTM/GRU ops") + ")")
    if _patch_embedding(trace):
        ev.add("patch_embed", 1, "patch embedding (first conv has kernel = stride >= 4)")
    causal = sum(1 for op in trace if op.op.split(".")[-1].lower() in ("triu", "tril", "trilu"))
    ev.add("causal", causal, "{n} causal masks (triu/tril)")
    ev.add("up_concat", _upsample_concat(trace), "{n} upsample + concat merges (FPN/PAN neck or U-Net decoder)")
    heads = _head_scales(trace)
    if heads >= 2:
        ev.add("head_scales", heads, "a head that joins conv outputs from {n} feature-map sizes (multi-scale detection)")
    scales = _multi_scale_outputs(output_shapes)
    if scales >= 2:
        ev.add("multiscale_out", scales, "{n} output scales (multi-scale detection head)")
    if input_shapes and output_shapes and len(input_shapes[0]) == 4 and any(
            len(o) == 4 and o[2:] == input_shapes[0][2:] for o in output_shapes):
        ev.add("dense_out", 1, "output has the input's spatial size (dense prediction)")
    if "lstm" in {k.lower() for k in layers} or kinds["lstm"]:
        ev.counts["lstm"] = 1
    if "gru" in {k.lower() for k in layers} or kinds["gru"]:
        ev.counts["gru"] = 1
    return ev


def classify(trace: list[TraceOp], layers: dict[str, int], *, input_shapes=(), output_shapes=()) -> Architecture:
    if not trace:
        return _from_layers(layers)
    ev = gather(trace, layers, list(input_shapes), list(output_shapes))
    c = ev.counts
    arch_type = _type(c)
    family, task, why = _family(arch_type, c, list(input_shapes), list(output_shapes))
    evidence = ev.facts + ([f"=> {why}"] if why else [])
    return Architecture(type=arch_type, family=family, task=task, evidence=evidence)


def _type(c: Counter) -> str:
    if c["recurrent"]:
        return "rnn" if not c["conv"] and not c["attention"] else "hybrid"
    if c["attention"]:
        conv_heavy = c["conv_share"] >= 20 and not (c["patch_embed"] and c["conv"] <= 2)
        return "hybrid" if conv_heavy else "transformer"
    if c["conv"]:
        return "cnn"
    if c["linear"]:
        return "mlp"
    return "unknown"


def _family(arch_type: str, c: Counter, inputs, outputs) -> tuple[str, str | None, str]:
    if arch_type == "rnn" or c["recurrent"]:
        fam = "lstm" if c["lstm"] else "gru" if c["gru"] else "rnn"
        return fam, "policy" if _small_vector_out(outputs) else "sequence", f"recurrence decides: {fam}"
    if arch_type == "transformer":
        if c["roll"] or (c["patch_embed"] and c["attention"] and c["roll"]):
            return "swin", "classification", "shifted windows + attention: Swin"
        if c["patch_embed"]:
            return "vit", "classification", "patch embedding + attention: ViT"
        if c["embedding"]:
            if c["causal"]:
                return "gpt", "language", "token embedding + causally masked attention: GPT-style decoder"
            return "bert", "language", "token embedding + unmasked attention: BERT-style encoder"
        return "transformer", None, "attention without patch or token embedding"
    if arch_type == "mlp":
        return "mlp", "policy" if _small_vector_out(outputs) else None, "only linear layers and activations"
    if arch_type in ("cnn", "hybrid"):
        if (c["multiscale_out"] >= 2 or c["head_scales"] >= 2) and c["up_concat"] and not c["dense_out"]:
            fam = "yolo" if c["silu"] else "detector"
            return fam, "detection", "upsample + concat neck feeding multi-scale heads" + (" with SiLU: YOLO-style"
                                                                                          if c["silu"] else "")
        if c["dense_out"] and c["upsample"]:
            return "unet" if c["concat"] else "encoder-decoder", "segmentation", \
                "encoder-decoder back to input resolution" + (" with skip concatenations: U-Net" if c["concat"] else "")
        if c["inverted"]:
            if c["se"] and c["silu"]:
                return "efficientnet", "classification", "inverted residuals + squeeze-excite + SiLU: EfficientNet"
            if c["hardswish"]:
                return "mobilenet", "classification", "inverted residuals + hard-swish: MobileNetV3"
            return "mobilenet", "classification", "inverted residual blocks: MobileNetV2-style"
        if c["dwconv"] and c["layernorm"] and c["residual"]:
            return "convnext", "classification", "depthwise conv + layer norm + residual: ConvNeXt"
        if c["grouped"] and c["residual"]:
            return "regnet" if c["se"] else "resnext", "classification", "grouped convs in residual blocks"
        if c["concat"] >= 10 and not c["residual"]:
            return "densenet", "classification", "dense concatenation of every layer's features: DenseNet"
        if c["residual"]:
            return "resnet", "classification", "residual blocks of convolutions: ResNet-style"
        if c["dwconv"]:
            return "mobilenet", "classification", "depthwise separable convolutions: MobileNetV1-style"
        if c["conv"] >= 8:
            return "vgg", "classification", "plain stack of convolutions without skips: VGG-style"
        return "cnn", None, "convolutions"
    return "unknown", None, ""


def _small_vector_out(outputs) -> bool:
    return bool(outputs) and all(len(o) <= 3 and (o[-1] if o else 0) <= 64 for o in outputs)


def _from_layers(layers: dict[str, int]) -> Architecture:
    """No trace (state_dict without a matching architecture): say only what the layer kinds show."""
    kinds = {k.lower(): v for k, v in layers.items()}
    evidence = [f"{v} {k} layers (from tensor names and shapes)" for k, v in layers.items()]
    if kinds.get("multiheadattention"):
        return Architecture(type="transformer", family="transformer", evidence=evidence)
    if kinds.get("recurrent"):
        return Architecture(type="rnn", family="rnn", evidence=evidence)
    if any(k.startswith("conv") for k in kinds):
        return Architecture(type="cnn", family="cnn", evidence=evidence)
    if kinds.get("linear"):
        return Architecture(type="mlp", family="mlp", evidence=evidence)
    return Architecture(evidence=evidence)
