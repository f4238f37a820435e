"""What we store and print about a model: plain pydantic models, no I/O.

Conventions (stated once, shown in the UI):
- ``macs``: multiply-accumulates of convolution, linear, matmul/bmm/einsum and attention. ``flops = 2 * macs``.
- ``other_flops``: elementwise, normalisation, pooling and softmax work, counted apart and never mixed into ``macs``.
- bytes are at the model's stored dtype (``dtype``, ``dtype_bytes``) unless a field says otherwise; per-layer costs keep
  element counts so any precision can be re-computed (``bytes = elems * bytes_per_element``).
- a number we could not compute is ``None`` with the reason in ``*_null_reason`` or ``notes``, never 0.

The summary (``ModelRecord``) is small and lives in the registry table. The heavy parts (census tree and per-layer costs)
are ``ModelDetails``, stored beside it by content hash, so listing 10,000 models stays fast.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FORMATS = ("torchscript", "exported_program", "onnx", "state_dict", "safetensors", "pickle")
ShapeSource = Literal["file", "user", "inferred", "none"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Architecture(_Strict):
    type: str = "unknown"  # cnn | transformer | rnn | mlp | hybrid | unknown
    family: str = "unknown"  # resnet | mobilenet | efficientnet | vit | yolo | lstm | ...
    task: str | None = None  # classification | detection | segmentation | depth | policy | language | None
    evidence: list[str] = Field(default_factory=list)


class Uncounted(_Strict):
    """Part of a model whose work could not be counted, and why (e.g. data-dependent post-processing)."""

    module: str
    op: str | None = None
    reason: str


class LayerCost(_Strict):
    """Work of one layer: a leaf module (torch formats) or one node (ONNX). Ops without weights are charged to the
    module that ran them. Element counts, so bytes can be re-computed at any precision."""

    name: str  # module path ("layer1.0.conv1") or ONNX node name
    type: str  # module class ("Conv2d") or op type ("Conv")
    macs: int = 0
    other_flops: int = 0
    weight_elems: int = 0  # parameters and buffers this layer reads
    read_elems: int = 0  # activation elements read (each input once; views are free)
    write_elems: int = 0  # activation elements written
    output_shape: list[int] | None = None
    # matrix kernels the layer runs per inference: 1, except recurrent layers, which run one per time step (and per
    # direction and stacked layer), each dispatched on its own; the roofline charges a per-operator cost per launch
    launches: int = Field(default=1, ge=1)


class CensusNode(_Strict):
    """One node of the module tree. ``path`` is dotted ('' is the root); the tree is rebuilt from the paths."""

    path: str
    type: str
    params: int = 0  # parameters in this subtree
    macs: int | None = 0  # MACs in this subtree (None where not computable)
    output_shape: list[int] | None = None
    children: int = 0


class Analysis(_Strict):
    """Everything `model analyze` finds in one file. Registration adds identity fields (ModelRecord)."""

    path: str
    format: str  # one of FORMATS
    format_detail: str = ""  # "torchscript (traced)", "onnx opset 17", ...
    sha256: str
    size_bytes: int
    external_data: list[str] = Field(default_factory=list)  # ONNX external data files (relative to the model)
    external_data_bytes: int = 0

    params: int
    macs: int | None
    flops: int | None
    other_flops: int | None
    macs_null_reason: str | None = None
    macs_complete: bool = True  # False when some part was not counted (see `uncounted`)
    macs_by_kind: dict[str, int] = Field(default_factory=dict)  # conv / linear / matmul / attention ... -> MACs

    dtype: str = "float32"
    dtype_bytes: int = 4
    weight_bytes: int  # parameters + buffers as stored
    activation_bytes: int | None  # peak live activation memory from tensor lifetimes, at `dtype`
    activation_bytes_total: int | None = None  # every intermediate output summed (no reuse), at `dtype`
    unfused_bytes: int | None = None  # sum over ops of inputs read + outputs written (+ weights), views free
    fused_bytes: int | None = None  # lower bound: weights + model inputs + model outputs

    input_names: list[str] = Field(default_factory=list)
    input_shapes: list[list[int]] = Field(default_factory=list)
    input_symbols: list[list[str | None]] = Field(default_factory=list)  # symbolic dims as named in the file
    input_dtypes: list[str] = Field(default_factory=list)
    input_shape_source: ShapeSource = "none"
    output_names: list[str] = Field(default_factory=list)
    output_shapes: list[list[int]] = Field(default_factory=list)

    layers: dict[str, int] = Field(default_factory=dict)  # layer type -> count
    architecture: Architecture = Field(default_factory=Architecture)
    bn_folded: bool = False
    uncounted: list[Uncounted] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    counter: str = ""  # how the counts were made: "meta-dispatch", "onnx-shape-inference", "state-dict", ...
    analysis_seconds: float | None = None

    # heavy parts; moved to ModelDetails when stored
    census: list[CensusNode] = Field(default_factory=list)
    layer_costs: list[LayerCost] = Field(default_factory=list)


HEAVY_FIELDS = ("census", "layer_costs")


class ModelDetails(_Strict):
    sha256: str
    census: list[CensusNode] = Field(default_factory=list)
    layer_costs: list[LayerCost] = Field(default_factory=list)


class ModelRecord(_Strict):
    """A registered model version: the record contract of design.md (add keys freely, never rename)."""

    name: str
    version: int
    path: str
    format: str
    format_detail: str = ""
    sha256: str
    size_bytes: int
    external_data: list[str] = Field(default_factory=list)
    external_data_bytes: int = 0
    registered_at: str  # ISO 8601, UTC
    tags: dict[str, str] = Field(default_factory=dict)  # "--tag robot" -> {"robot": ""}; "--tag site=lab" -> {"site": "lab"}
    description: str = ""

    params: int
    macs: int | None
    flops: int | None
    other_flops: int | None
    macs_null_reason: str | None = None
    macs_complete: bool = True
    macs_by_kind: dict[str, int] = Field(default_factory=dict)
    dtype: str = "float32"
    dtype_bytes: int = 4
    weight_bytes: int
    activation_bytes: int | None
    activation_bytes_total: int | None = None
    unfused_bytes: int | None = None
    fused_bytes: int | None = None
    input_names: list[str] = Field(default_factory=list)
    input_shapes: list[list[int]] = Field(default_factory=list)
    input_symbols: list[list[str | None]] = Field(default_factory=list)
    input_dtypes: list[str] = Field(default_factory=list)
    input_shape_source: ShapeSource = "none"
    output_names: list[str] = Field(default_factory=list)
    output_shapes: list[list[int]] = Field(default_factory=list)
    layers: dict[str, int] = Field(default_factory=dict)
    architecture: Architecture = Field(default_factory=Architecture)
    bn_folded: bool = False
    uncounted: list[Uncounted] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    counter: str = ""
    analysis_seconds: float | None = None

    @property
    def gmacs(self) -> float | None:
        return None if self.macs is None else self.macs / 1e9

    @classmethod
    def from_analysis(cls, analysis: Analysis, *, name: str, version: int, registered_at: str,
                      tags: dict[str, str] | None = None, description: str = "") -> tuple["ModelRecord", ModelDetails]:
        data = analysis.model_dump(exclude=set(HEAVY_FIELDS))
        record = cls(name=name, version=version, registered_at=registered_at, tags=tags or {},
                     description=description, **data)
        details = ModelDetails(sha256=analysis.sha256, census=analysis.census, layer_costs=analysis.layer_costs)
        return record, details
