"""What we store and print about a model: plain pydantic models, no I/O.

Conventions (stated once, shown in the UI):
- ``macs``: multiply-accumulates of convolution, linear, matmul/bmm/einsum and attention. ``flops = 2 * macs``.
- ``other_flops``: elementwise, normalisation, pooling and softmax work, counted apart and never mixed into ``macs``.
- bytes are at the model's stored dtype (``dtype``, ``dtype_bytes``) unless a field says otherwise; per-layer costs keep
  element counts so any precision can be re-computed (``bytes = elems * bytes_per_element``).
- a number we could not compute is ``None`` with the reason in ``*_null_reason`` or ``notes``, never 0.

The fields are declared once, in parts, and combined by inheritance:

- ``ModelFile``: which file (path, format, hash, bytes). ``ModelCounts``: what the counters found in it.
- ``ModelSummary`` = ``ModelFile`` + ``ModelCounts``: the light half of an analysis, the part every record stores.
- ``Details``: the heavy half (census tree and per-layer costs).
- ``Analysis`` = ``ModelSummary`` + ``Details``: what `model analyze` returns.
- ``ModelRecord`` = ``ModelSummary`` + ``Identity`` (name, version) + ``Registration`` (registered_at, tags,
  description): a registered version, small, in the registry table. Its ``Details`` are a ``ModelDetails`` stored
  beside it by content hash, so listing 10,000 models stays fast.

Key order is part of the record contract (docs/architecture.md): JSON output and the registry file list keys in field
order, and pydantic orders a class's fields by its reversed MRO: the LAST base's first, then the others', then its own.
The base lists below are written for that order, which tests/test_records.py and the golden files of
tests/test_json_contract.py check.
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


class ModelFile(_Strict):
    """Which file was analysed: where, its format and its bytes."""

    path: str
    format: str  # one of FORMATS
    format_detail: str = ""  # "torchscript (traced)", "onnx opset 17", ...
    sha256: str
    size_bytes: int
    external_data: list[str] = Field(default_factory=list)  # ONNX external data files (relative to the model)
    external_data_bytes: int = 0


class ModelCounts(_Strict):
    """What the counters found in the file (the conventions at the top of this module)."""

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


class ModelSummary(ModelCounts, ModelFile):
    """The light half of an analysis: ``ModelFile``'s fields, then ``ModelCounts``'."""

    @property
    def gmacs(self) -> float | None:
        return None if self.macs is None else self.macs / 1e9

    def summary_fields(self) -> dict:
        """The summary's fields as plain data, without a subclass's own (an analysis's details, a record's name ...):
        ``ModelRecord(**analysis.summary_fields(), name=..., ...)``."""
        return self.model_dump(include=_SUMMARY_KEYS)


_SUMMARY_KEYS = frozenset(ModelSummary.model_fields)


class Details(_Strict):
    """The heavy half of an analysis: the census tree and the per-layer costs."""

    census: list[CensusNode] = Field(default_factory=list)
    layer_costs: list[LayerCost] = Field(default_factory=list)


HEAVY_FIELDS = tuple(Details.model_fields)  # ("census", "layer_costs")


class Analysis(Details, ModelSummary):
    """Everything `model analyze` finds in one file: the summary, then the details. Registration adds identity fields
    (ModelRecord) and stores the details apart (ModelDetails)."""

    def details(self) -> ModelDetails:
        """The heavy half keyed by the file's hash, as the registry stores it (the same nodes and costs, not copies)."""
        return ModelDetails(sha256=self.sha256, **{name: getattr(self, name) for name in HEAVY_FIELDS})


class _DetailsKey(_Strict):
    sha256: str  # the model file's hash: the records these details belong to


class ModelDetails(Details, _DetailsKey):
    """``Details`` as stored beside the registry: ``sha256``, then the details."""


class Identity(_Strict):
    """Which registered model version: the registry's key."""

    name: str
    version: int


class Registration(_Strict):
    """When and how a version was registered; tags and description can be changed later."""

    registered_at: str  # ISO 8601, UTC
    tags: dict[str, str] = Field(default_factory=dict)  # "--tag robot" -> {"robot": ""}; "--tag site=lab" -> {"site": "lab"}
    description: str = ""


class ModelRecord(ModelSummary, Registration, ModelFile, Identity):
    """A registered model version: the record contract of docs/architecture.md (add keys freely, never rename).

    A ``ModelSummary`` with an ``Identity`` and a ``Registration``. Keys in order: name, version (Identity), the file
    fields (ModelFile), registered_at, tags, description (Registration), the counts (ModelCounts). ``ModelFile`` is
    named again only to put ``Registration`` after it."""

    @classmethod
    def from_analysis(cls, analysis: Analysis, *, name: str, version: int, registered_at: str,
                      tags: dict[str, str] | None = None, description: str = "") -> tuple[ModelRecord, ModelDetails]:
        record = cls(**analysis.summary_fields(), name=name, version=version, registered_at=registered_at,
                     tags=tags or {}, description=description)
        return record, analysis.details()
