"""Write a corpus model in each format the analyser reads.

- ``torchscript``: ``torch.jit.trace`` (no input shapes in the file);
- ``pt2``: ``torch.export.export`` + ``torch.export.save``;
- ``onnx``: ``torch.onnx.export(dynamo=False)``, opset 17 (the TorchScript-based exporter: fast, and what most
  files in the wild were written with);
- ``onnx_dynamo``: ``torch.onnx.export(dynamo=True)``, torch's default exporter (slower: not in ``FORMATS``);
- ``onnx_fp16``: the ONNX file converted to float16 (``to_fp16``): weights and activations in half precision, the
  ops that are numerically fragile in half (softmax, normalisations, reductions, exp/log/sin/cos, resize, grid sample)
  kept in float32 between Cast nodes, float32 model inputs and outputs (Casts at the edges), as converters do;
- ``onnx_qdq``: onnxruntime static quantisation in the QDQ format (int8 weights, uint8 activations, calibrated on the
  example inputs), QuantizeLinear/DequantizeLinear pairs around every quantised op.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from .common import Built

FORMATS = ("torchscript", "pt2", "onnx", "onnx_fp16", "onnx_qdq")
EXTRA_FORMATS = ("onnx_dynamo",)
SUFFIX = {"torchscript": ".pt", "pt2": ".pt2", "onnx": ".onnx", "onnx_fp16": ".fp16.onnx", "onnx_qdq": ".qdq.onnx",
          "onnx_dynamo": ".dynamo.onnx"}


def write(built: Built, fmt: str, path: Path, onnx_path: Path | None = None) -> Path:
    """Write ``built`` as ``fmt`` to ``path``. The fp16 and QDQ variants start from an fp32 ONNX file
    (``onnx_path``; written beside ``path`` when not given)."""
    model, inputs = built.module, built.inputs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "torchscript":
            torch.jit.trace(model, inputs, check_trace=False, strict=False).save(str(path))
        elif fmt == "pt2":
            torch.export.save(torch.export.export(model, inputs, strict=False), str(path))
        elif fmt == "onnx":
            torch.onnx.export(model, inputs, str(path), dynamo=False, opset_version=17)
        elif fmt == "onnx_dynamo":
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its progress
                torch.onnx.export(model, inputs, str(path), dynamo=True)
        elif fmt in ("onnx_fp16", "onnx_qdq"):
            if onnx_path is None:
                onnx_path = path.with_name(path.name.split(".")[0] + ".onnx")
                write(built, "onnx", onnx_path)
            if fmt == "onnx_fp16":
                import onnx

                onnx.save(to_fp16(onnx.load(str(onnx_path))), str(path))
            else:
                to_qdq(onnx_path, path, inputs)
        else:
            raise ValueError(f"unknown format {fmt!r}")
    return path


# ------------------------------------------------------------------------------------------------------------ fp16
KEEP_FP32 = frozenset({"Softmax", "LogSoftmax", "LayerNormalization", "GroupNormalization", "InstanceNormalization",
                       "ReduceMean", "ReduceSum", "ReduceMax", "Pow", "Sqrt", "Reciprocal", "Exp", "Log", "Erf",
                       "Sin", "Cos", "Resize", "Upsample", "GridSample", "Range", "CumSum", "TopK",
                       "RandomNormalLike", "RandomUniformLike"})


def to_fp16(model, keep: frozenset[str] = KEEP_FP32):
    """A float16 copy of ``model`` (an fp32 ModelProto): float initializers, Constant tensors, Cast targets and
    ConstantOfShape values become float16; nodes in ``keep`` run in float32 between Casts; the model's float inputs
    and outputs stay float32 with a Cast at each edge. Checked with strict shape inference."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16
    model = onnx.shape_inference.infer_shapes(model)
    g = model.graph
    types = {vi.name: vi.type.tensor_type.elem_type for vi in [*g.value_info, *g.input, *g.output]}
    for t in g.initializer:
        types[t.name] = t.data_type
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    types[n.output[0]] = a.t.data_type
    init_names = {t.name for t in g.initializer}
    for t in g.initializer:
        if t.data_type == FLOAT:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name))
    new_nodes = []
    counter = [0]

    def cast(src: str, to: int) -> str:
        counter[0] += 1
        out = f"{src}__cast{counter[0]}"
        new_nodes.append(helper.make_node("Cast", [src], [out], to=to, name=f"fp16_cast_{counter[0]}"))
        return out

    # model inputs: keep float32 at the edge, cast to half inside
    renamed_inputs = {}
    for vi in g.input:
        if vi.name not in init_names and types.get(vi.name) == FLOAT:
            renamed_inputs[vi.name] = cast(vi.name, HALF)
    out_names = {o.name for o in g.output if types.get(o.name) == FLOAT}
    renamed_outputs = {name: f"{name}__half" for name in out_names}
    for n in g.node:
        for i, name in enumerate(n.input):
            if name in renamed_inputs:
                n.input[i] = renamed_inputs[name]
            elif name in renamed_outputs:
                n.input[i] = renamed_outputs[name]
        for i, name in enumerate(n.output):
            if name in renamed_outputs:
                n.output[i] = renamed_outputs[name]
        if n.op_type == "Constant" or n.op_type == "ConstantOfShape":
            for a in n.attribute:
                if a.name == "value" and a.t.data_type == FLOAT:
                    a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16)))
        elif n.op_type == "Cast":
            for a in n.attribute:
                if a.name == "to" and a.i == FLOAT:
                    a.i = HALF
        if n.op_type in keep:
            for i, name in enumerate(n.input):
                original = _original(name, renamed_inputs, renamed_outputs)
                if name and types.get(original) == FLOAT:
                    n.input[i] = cast(name, FLOAT)
            outs = list(n.output)
            for i, name in enumerate(outs):
                if name and types.get(_original(name, renamed_inputs, renamed_outputs)) == FLOAT:
                    n.output[i] = f"{name}__fp32"
            new_nodes.append(n)
            for i, name in enumerate(outs):
                if name and n.output[i] != name:
                    new_nodes.append(helper.make_node("Cast", [n.output[i]], [name], to=HALF,
                                                      name=f"fp16_cast_back_{name}"))
            continue
        new_nodes.append(n)
    for name, half in renamed_outputs.items():
        new_nodes.append(helper.make_node("Cast", [half], [name], to=FLOAT, name=f"fp16_cast_out_{name}"))
    del g.node[:]
    g.node.extend(new_nodes)
    del g.value_info[:]
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model)
    return model


def _original(name: str, renamed_inputs: dict, renamed_outputs: dict) -> str:
    for orig, new in (*renamed_inputs.items(), *renamed_outputs.items()):
        if new == name:
            return orig
    return name


# ------------------------------------------------------------------------------------------------------------- QDQ
def to_qdq(src: Path, dst: Path, inputs) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    names = [i.name for i in onnx.load(str(src), load_external_data=False).graph.input]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            feeds = [{n: t.numpy() for n, t in zip(names, inputs)}]
            self.it = iter(feeds)

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=False)
