"""services.compare and analysis.layer_kinds on real files: resnet18 traced to TorchScript and exported to ONNX,
registered through services.models into a real registry.

Independent counts: resnet18 has 20 convolutions (the stem, 2 per BasicBlock x 8 blocks, 3 downsample 1x1s) and one
linear layer; its 9 ReLU modules (the stem's and one per block, each block calling its own twice) run 17 times, as 17
ONNX Relu nodes; its 8 residual additions are functional (no module) and 8 ONNX Add nodes. Parameters come from torch's
own count of the module, torchvision's published 11,689,512 for resnet18.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from embodied_tui import units as fmt
from embodied_tui.analysis.layer_kinds import MODULE_KINDS, kind_counts, layer_kind, mac_kinds
from embodied_tui.analysis.trace import KINDS
from embodied_tui.data.store import Registry
from embodied_tui.services.compare import CENSUS, MACS, compare
from embodied_tui.services.models import register

TORCHVISION_RESNET18_PARAMS = 11_689_512  # torchvision's model card (ResNet18_Weights.IMAGENET1K_V1 num_params)


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory):
    """(registry, TorchScript record, ONNX record, torch's parameter count) of one resnet18, written two ways."""
    import torch

    from embodied_tui.analysis import zoo

    directory = tmp_path_factory.mktemp("resnet18")
    builder = zoo.BUILDERS["resnet18"]
    torch.manual_seed(0)
    model = builder.build().eval()
    x = builder.example_inputs()
    torch.jit.trace(model, x).save(directory / "resnet18.pt")
    torch.onnx.export(model, x, directory / "resnet18.onnx", dynamo=False)
    db = Registry(directory / "registry.json")
    ts, _ = register(directory / "resnet18.pt", name="resnet18-ts", db=db)
    onnx, _ = register(directory / "resnet18.onnx", name="resnet18-onnx", db=db)
    return db, ts, onnx, sum(p.numel() for p in model.parameters())


def by_label(comparison):
    return {row.label: row for row in comparison.rows}


def test_module_kinds_are_trace_kinds_and_formats_share_them():
    assert set(MODULE_KINDS.values()) <= KINDS
    pairs = [("Conv2d", "Conv"), ("Linear", "Gemm"), ("ReLU", "Relu"), ("BatchNorm2d", "BatchNormalization"),
             ("MaxPool2d", "MaxPool"), ("AdaptiveAvgPool2d", "GlobalAveragePool"), ("LSTM", "LSTM"),
             ("ConvTranspose2d", "ConvTranspose"), ("LayerNorm", "LayerNormalization"), ("Flatten", "Flatten")]
    for module, op in pairs:
        assert layer_kind(module) == layer_kind(op) != module, (module, op)
    assert layer_kind("Gather") == "Gather" and layer_kind("MyBlock") == "MyBlock"  # "other" is not lumped
    assert {"conv", "linear", "matmul", "attention", "lstm"} <= mac_kinds() and "relu" not in mac_kinds()
    assert kind_counts({"Conv2d": 2, "Conv1d": 1, "ReLU": 3}) == {"conv": 3, "relu": 3}


def test_resnet18_as_torchscript_and_onnx_has_no_census_differences(resnet18):
    _, ts, onnx, torch_params = resnet18
    assert torch_params == TORCHVISION_RESNET18_PARAMS == ts.params
    comparison = compare([ts, onnx])
    census = [row for row in comparison.rows if row.section == CENSUS]
    assert census and not [row.label for row in census if row.differs]
    rows = by_label(comparison)
    assert rows["# conv"].values == (20, 20) and rows["# conv"].comparable
    assert rows["# linear"].values == (1, 1) and rows["# linear"].comparable
    # module counts vs node counts: shown, marked, never a difference
    assert rows["# relu"].values == (9, 17) and not rows["# relu"].comparable and not rows["# relu"].differs
    assert rows["# add"].values == (0, 8)
    assert comparison.mixed_units and comparison.not_compared == len([r for r in census if not r.comparable]) == 6
    macs = {row.label: row for row in comparison.rows if row.section == MACS}
    assert set(macs) == {"MACs conv", "MACs linear"} and not any(row.differs for row in macs.values())
    assert macs["MACs linear"].values == (512 * 1000, 512 * 1000)  # fc: 512 inputs x 1000 classes


def test_equal_short_forms_show_exact_numbers(resnet18):
    """The export folds BatchNorm into the convolutions: both read 11.7M params, the exact counts differ."""
    _, ts, onnx, _ = resnet18
    rows = by_label(compare([ts, onnx]))
    params = rows["params"]
    assert fmt.count(ts.params) == fmt.count(onnx.params) and ts.params != onnx.params
    assert params.differs and params.exact
    assert params.cells == (fmt.exact(ts.params), fmt.exact(onnx.params)) and params.cells[0] != params.cells[1]
    assert params.cells[0] == f"{ts.params:,}"
    weights = rows["weights"]  # 46.8 MB vs 46.7 MB: the short forms already differ, so they stay
    assert fmt.nbytes(ts.weight_bytes) != fmt.nbytes(onnx.weight_bytes)
    assert weights.differs and not weights.exact and weights.cells == (fmt.nbytes(ts.weight_bytes),
                                                                         fmt.nbytes(onnx.weight_bytes))
    one_byte_more = compare([ts, ts.model_copy(update={"weight_bytes": ts.weight_bytes + 1})])
    weights = by_label(one_byte_more)["weights"]
    assert weights.exact and weights.cells == (f"{ts.weight_bytes:,} B", f"{ts.weight_bytes + 1:,} B")
    # equal exact values: short cells, not a difference
    macs = rows["MACs"]
    assert ts.macs == onnx.macs and not macs.differs and not macs.exact and macs.cells[0] == fmt.count(ts.macs)


def test_raw_names_across_formats_are_shown_not_compared(resnet18):
    _, ts, onnx, _ = resnet18
    raw = compare([ts, onnx], raw_names=True)
    census = {row.label: row for row in raw.rows if row.section == CENSUS}
    assert census["# Conv2d"].values == (20, 0) and census["# Conv"].values == (0, 20)
    assert not any(row.differs or row.comparable for row in census.values())
    assert set(ts.layers) | set(onnx.layers) == {label[2:] for label in census}


def test_same_format_census_compares_every_kind(resnet18, tmp_path):
    """Two TorchScript files: module counts on both sides, so a ReLU count difference is a real difference."""
    import torch

    db, ts, _, _ = resnet18

    class Small(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3)
            self.act = torch.nn.ReLU()

        def forward(self, x):
            return self.act(self.conv(x))

    torch.jit.trace(Small().eval(), torch.zeros(1, 3, 16, 16)).save(tmp_path / "small.pt")
    small, _ = register(tmp_path / "small.pt", name="small", db=db)
    comparison = compare([ts, small])
    rows = by_label(comparison)
    assert not comparison.mixed_units and comparison.not_compared == 0
    assert rows["# relu"].values == (9, 1) and rows["# relu"].differs
    assert rows["# batchnorm"].values == (20, 0) and rows["# batchnorm"].extremes() == ({0}, {1})
    assert rows["# conv"].values == (20, 1)


def test_unknown_macs_are_none_not_zero(resnet18):
    _, ts, onnx, _ = resnet18
    unknown = onnx.model_copy(update={"macs": None, "flops": None, "macs_by_kind": {}})
    rows = by_label(compare([ts, unknown]))
    assert rows["MACs conv"].values == (ts.macs_by_kind["conv"], None) and rows["MACs conv"].differs
    assert rows["MACs"].cells[1] == fmt.NA


def test_registry_path_is_real(resnet18):
    db, ts, onnx, _ = resnet18
    assert Path(db.path).exists() and db.get("resnet18-onnx").sha256 == onnx.sha256
