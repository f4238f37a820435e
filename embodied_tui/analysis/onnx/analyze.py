"""ONNX files: the counter's result (``onnx.counting``) as the fields of an ``Analysis``."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from embodied_tui.analysis.census import macs_by_kind
from embodied_tui.analysis.onnx.counting import count_onnx
from embodied_tui.analysis.onnx.scaling import onnx_scaling


def analyze_onnx(path: Path, input_shape: list[list[int]] | None) -> dict:
    count = count_onnx(path, input_shapes=input_shape, keep_graph=True)
    scaling = onnx_scaling(count, path)  # MACs vs a symbolic sequence length (``onnx.scaling``)
    fields = {f.name: getattr(count, f.name) for f in dataclasses.fields(count)}
    fields.pop("stripped", None)
    if scaling:
        fields["scaling"] = scaling
    fields.pop("opset", None)
    fields.pop("external_data_missing", None)  # count_onnx already says so in its notes
    fields["format"] = "onnx"
    fields["flops"] = 2 * count.macs
    fields["macs_by_kind"] = macs_by_kind(count.trace)
    if count.bn_folded:
        fields["notes"] = [*fields["notes"], "BatchNorm was folded into the convolutions by the exporter: the file "
                                              "holds fewer weights than the PyTorch module (its running statistics "
                                              "and affine terms are gone)"]
    return fields
