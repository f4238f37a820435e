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

from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError

# hf_config: a bare Hugging Face config.json (architecture only, no weights); hf_folder: a Hugging Face model folder
# (config.json + safetensors weights, one file or shards with their index)
FORMATS = ("torchscript", "exported_program", "onnx", "state_dict", "safetensors", "pickle", "hf_config", "hf_folder")
ShapeSource = Literal["file", "user", "inferred", "none"]

# the constraints every stored number and key obeys, whoever made the record (register, import, a hand edit): checked
# by validation, so a bundle or an edited registry is held to what registration produces
SHA256_PATTERN = r"^[0-9a-f]{64}$"
# an absolute path (POSIX, a Windows drive or a UNC share) without control characters
PATH_PATTERN = r"^(/|[A-Za-z]:[\\/]|\\\\)[^\x00-\x1f\x7f]*$"
MAX_VERSION = 2**31 - 1
PATTERN_RULES = {SHA256_PATTERN: "64 lowercase hexadecimal digits (a SHA-256)",
                 PATH_PATTERN: "an absolute path without control characters"}
Count = Annotated[int, Field(ge=0)]
Shape = list[NonNegativeInt]


def _is_none(value) -> bool:
    return value is None


def _added() -> Any:
    """A key added after records were first stored, None by default and left out of the JSON while None, so a record
    stored before it reads back and prints byte for byte (pydantic's ``exclude_if``; an older pydantic prints the
    None)."""
    import inspect

    if "exclude_if" in inspect.signature(Field).parameters:
        return Field(default=None, exclude_if=_is_none)
    return Field(default=None)


class _Strict(BaseModel):
    """What we create is checked strictly: an unknown key is a typo, a non-finite float (``inf``, ``NaN``) is refused
    (JSON has neither). Reading what a newer embodied-ai wrote goes through ``read_as``, which drops unknown keys
    first."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, defer_build=True)


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
    bytes: Count | None = _added()  # what the op reads and writes (weights included); None when not known


class LayerCost(_Strict):
    """Work of one layer: a leaf module (torch formats) or one node (ONNX). Ops without weights are charged to the
    module that ran them. Element counts, so bytes can be re-computed at any precision."""

    name: str  # module path ("layer1.0.conv1") or ONNX node name
    type: str  # module class ("Conv2d") or op type ("Conv")
    macs: Count = 0
    other_flops: Count = 0
    weight_elems: Count = 0  # parameters and buffers this layer reads
    read_elems: Count = 0  # activation elements read (each input once; views are free)
    write_elems: Count = 0  # activation elements written
    output_shape: Shape | None = None
    # matrix kernels the layer runs per inference: 1, except recurrent layers, which run one per time step (and per
    # direction and stacked layer), each dispatched on its own; the roofline charges a per-operator cost per launch
    launches: int = Field(default=1, ge=1)
    # the precision the layer computes in, from its stored weights (or, for a layer without weights, its input):
    # fp32 | fp16 | bf16 | int8 | int4 ...; None where the counter does not say
    precision: str | None = _added()


class CensusNode(_Strict):
    """One node of the module tree. ``path`` is dotted ('' is the root); the tree is rebuilt from the paths."""

    path: str
    type: str
    params: Count = 0  # parameters in this subtree
    macs: Count | None = 0  # MACs in this subtree (None where not computable)
    output_shape: Shape | None = None
    children: Count = 0


class ModelFile(_Strict):
    """Which file was analysed: where, its format and its bytes."""

    path: str = Field(pattern=PATH_PATTERN)
    format: str  # one of FORMATS
    format_detail: str = ""  # "torchscript (traced)", "onnx opset 17", ...
    sha256: str = Field(pattern=SHA256_PATTERN)
    size_bytes: Count
    external_data: list[str] = Field(default_factory=list)  # ONNX external data files (relative to the model)
    external_data_bytes: Count = 0


class ModelCounts(_Strict):
    """What the counters found in the file (the conventions at the top of this module)."""

    params: Count
    macs: Count | None
    flops: Count | None
    other_flops: Count | None
    macs_null_reason: str | None = None
    macs_complete: bool = True  # False when some part was not counted (see `uncounted`)
    macs_by_kind: dict[str, Count] = Field(default_factory=dict)  # conv / linear / matmul / attention ... -> MACs

    dtype: str = "float32"
    dtype_bytes: Count = 4
    weight_bytes: Count  # parameters + buffers as stored
    activation_bytes: Count | None  # peak live activation memory from tensor lifetimes, at `dtype`
    activation_bytes_total: Count | None = None  # every intermediate output summed (no reuse), at `dtype`
    unfused_bytes: Count | None = None  # sum over ops of inputs read + outputs written (+ weights), views free
    fused_bytes: Count | None = None  # lower bound: weights + model inputs + model outputs

    input_names: list[str] = Field(default_factory=list)
    input_shapes: list[Shape] = Field(default_factory=list)
    input_symbols: list[list[str | None]] = Field(default_factory=list)  # symbolic dims as named in the file
    input_dtypes: list[str] = Field(default_factory=list)
    input_shape_source: ShapeSource = "none"
    output_names: list[str] = Field(default_factory=list)
    output_shapes: list[Shape] = Field(default_factory=list)

    layers: dict[str, Count] = Field(default_factory=dict)  # layer type -> count
    architecture: Architecture = Field(default_factory=Architecture)
    bn_folded: bool = False
    uncounted: list[Uncounted] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    counter: str = ""  # how the counts were made: "meta-dispatch", "onnx-shape-inference", "state-dict", ...
    analysis_seconds: float | None = Field(default=None, ge=0)
    # stored tensors that are not parameters (buffers, anchor and stride grids, masks, quantisation scales and zero
    # points, BatchNorm statistics): their elements and bytes, counted in weight_bytes but not in params; None where
    # the counter does not tell them apart
    constant_elems: Count | None = _added()
    constant_bytes: Count | None = _added()
    coverage: Coverage | None = _added()  # which ops a formula counted (analysis/coverage.py); None: not computed
    # how MACs grow with each named dynamic length (sequence, tokens) of the inputs; None: no such dim, or not computed
    scaling: list[Scaling] | None = _added()
    # a transformer's architecture numbers (from config.json, or inferred from tensor names); None: not a transformer
    # we read a config for
    transformer: Transformer | None = _added()


class Coverage(_Strict):
    """The coverage ledger's totals: every op of the counter's trace is counted by a named formula or uncounted."""

    total_ops: Count = 0
    uncounted_ops: Count = 0
    total_bytes: Count = 0  # bytes the ops read and write, weights included (ONNX: exactly unfused_bytes)
    uncounted_bytes: Count = 0  # the part of total_bytes that belongs to uncounted ops


class Scaling(_Strict):
    """How the MACs grow with one dynamic length ``n`` (a sequence or token dim named in the file or the config), the
    other dims held at the shape used: ``macs(n) = macs_const + macs_per_token * n + macs_per_token_sq * n**2``.

    Exact for models whose work is polynomial of degree <= 2 in ``n`` (linear layers per token, attention scores and
    context per token pair): the three terms are solved from counts at three lengths and checked at a fourth
    (``method`` says which); a model that is not quadratic in ``n`` gets no entry, never a guessed one. Attention over a
    causal mask counts the full ``n x n`` matrix (FlopCounterMode's convention), so ``macs_per_token_sq`` is not halved.
    """

    dim: str  # the symbol ("sequence_length", "tokens")
    input: str | None = None  # the input that carries it, where it comes from a file
    used: Count  # n at the shape the counts above were made for
    macs_const: int  # may be negative: only the whole polynomial is a count
    macs_per_token: int
    macs_per_token_sq: int
    method: str  # "counted at n = 16, 32, 64; checked at 128", "from config.json"


class Transformer(_Strict):
    """The numbers a transformer's fit needs (analysis/hf/count.py states the conventions): from its config.json, or
    inferred from its tensor names and shapes (``source`` says which)."""

    model_type: str  # config.json's model_type ("llama", "qwen3_moe", "bert" ...)
    source: str = "config.json"  # "config.json" | "tensor names"
    layers: Count
    hidden: Count
    heads: Count
    kv_heads: Count  # < heads: grouped-query attention, 1: multi-query
    head_dim: Count
    intermediate: Count  # dense MLP width
    gated_mlp: bool  # gate, up, down (3 matrices)
    vocab: Count
    tied: bool  # LM head shares the embedding matrix (counted once)
    experts: Count = 0  # MoE: routed experts per layer (0: dense)
    experts_per_token: Count = 0
    max_positions: Count
    kv_cache_bytes_per_token: Count  # 2 x layers x kv_heads x head_dim x dtype_bytes (the record's dtype)
    params_active_per_token: Count  # params less the routed experts a token does not use (= params when dense)


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
    sha256: str = Field(pattern=SHA256_PATTERN)  # the model file's hash: the records these details belong to


class ModelDetails(Details, _DetailsKey):
    """``Details`` as stored beside the registry: ``sha256``, then the details."""


class Identity(_Strict):
    """Which registered model version: the registry's key."""

    name: str  # new names follow data/names.py; stored ones are read whatever they are
    version: int = Field(ge=1, le=MAX_VERSION)


class Registration(_Strict):
    """When and how a version was registered; tags and description can be changed later."""

    registered_at: str  # ISO 8601, UTC
    tags: dict[str, str] = Field(default_factory=dict)  # "--tag robot" -> {"robot": ""}; "--tag site=lab" -> {"site": "lab"}
    description: str = ""


class Lineage(_Strict):
    """Who made a stored record, when, on which machine and with what (``data/lineage.py`` fills it).

    ``user``: ``$EMBODIED_AI_USER``, else the login name (``getpass.getuser``); ``host``: ``socket.gethostname()``;
    ``at``: ISO 8601 UTC, seconds; ``tool``: ``embodied-ai <version>``. ``runtime``, ``runtime_version`` and
    ``provider`` say what ran the model when something timed it (``onnxruntime`` 1.20.1 ``CPUExecutionProvider``,
    ``torch`` 2.5.1 ``cuda``); None where nothing ran (a typed-in measurement, a registration)."""

    user: str
    host: str
    at: str
    tool: str
    runtime: str | None = _added()
    runtime_version: str | None = _added()
    provider: str | None = _added()


class ModelRecord(ModelSummary, Registration, ModelFile, Identity):
    """A registered model version: the record contract of docs/architecture.md (add keys freely, never rename).

    A ``ModelSummary`` with an ``Identity`` and a ``Registration``. Keys in order: name, version (Identity), the file
    fields (ModelFile), registered_at, tags, description (Registration), the counts (ModelCounts), then ``lineage``
    (who registered it, from which host; None on records stored before it existed). ``ModelFile`` is named again
    only to put ``Registration`` after it."""

    lineage: Lineage | None = _added()

    @classmethod
    def from_analysis(cls, analysis: Analysis, *, name: str, version: int, registered_at: str,
                      tags: dict[str, str] | None = None, description: str = "",
                      lineage: Lineage | None = None) -> tuple[ModelRecord, ModelDetails]:
        """A new record of ``analysis``; ``lineage`` defaults to this user and host now (``data/lineage.here``)."""
        if lineage is None:
            from embodied_tui.data.lineage import here

            lineage = here(at=registered_at)
        record = cls(**analysis.summary_fields(), name=name, version=version, registered_at=registered_at,
                     tags=tags or {}, description=description, lineage=lineage)
        return record, analysis.details()


# ------------------------------------------------------------------------------------------------ reading leniently
M = TypeVar("M", bound=BaseModel)


def known_keys(cls: type[BaseModel], data: Any) -> Any:
    """``data`` (parsed JSON meant for ``cls``) without the keys ``cls`` and its nested models do not declare: what a
    newer embodied-ai added. New dicts and lists are made where something is dropped or nested; ``data`` itself is
    never changed, so the stored document keeps every key. Anything that is not shaped like ``cls`` is returned as it
    is, for validation to report."""
    return _strip(cls, data)


def _strip(annotation: Any, value: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if not isinstance(value, dict) or annotation.model_config.get("extra") == "allow":
            return value
        fields = {(f.alias or name): f.annotation for name, f in annotation.model_fields.items()}
        return {key: _strip(fields[key], item) for key, item in value.items() if key in fields}
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _strip(args[0], value)
    if origin in (list, tuple, set, frozenset) and isinstance(value, list) and args:
        return [_strip(args[0], item) for item in value]
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return {key: _strip(args[1], item) for key, item in value.items()}
    if origin in (Union, UnionType) and isinstance(value, (dict, list)):
        shaped = [a for a in args if a is not type(None)]
        if len(shaped) == 1:
            return _strip(shaped[0], value)
    return value


def read_as(cls: type[M], data: Any) -> M:
    """``cls`` from stored data that a newer embodied-ai may have written: unknown keys are ignored (and stay in the
    stored document), everything else is validated as strictly as what we create. Raises ValidationError.
    Our own layout (the usual case) is validated once; the keys are walked only when validation finds unknown ones."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        if not any(err["type"] == "extra_forbidden" for err in exc.errors(include_url=False)):
            raise
    return cls.model_validate(known_keys(cls, data))
