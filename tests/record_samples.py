"""Analyses built in a test (no model file behind them): what the registry tests store, read back and damage."""
from __future__ import annotations

import hashlib

from embodied_tui.data.records import Analysis, Architecture, CensusNode, LayerCost


def analysis(i: int, **overrides) -> Analysis:
    fields = dict(
        path=f"/models/m{i}.onnx", format="onnx", sha256=hashlib.sha256(f"model {i}".encode()).hexdigest(),
        size_bytes=1000 + i, params=1000 * i, macs=10**6 * i, flops=2 * 10**6 * i, other_flops=7 * i,
        weight_bytes=4000 * i, activation_bytes=512 * i, input_shapes=[[1, 3, 32, 32]], input_shape_source="file",
        output_shapes=[[1, 10]], layers={"Conv": 2, "Gemm": 1},
        architecture=Architecture(type="cnn", family="resnet", task="classification", evidence=["2 convs"]),
        census=[CensusNode(path="", type="Net", params=1000 * i, macs=10**6 * i),
                CensusNode(path="conv", type="Conv", params=900 * i, macs=10**6 * i - 5)],
        layer_costs=[LayerCost(name="conv", type="Conv", macs=10**6 * i - 5, weight_elems=900 * i),
                     LayerCost(name="fc", type="Gemm", macs=5)],
    )
    fields.update(overrides)
    return Analysis(**fields)
