"""Plain-language questions -> a structured query -> the Cypher that runs on the registry graph. Pure: no I/O.

``parse_question(text, vocabulary)`` reads a question a phrase at a time; each phrase it understands becomes a
condition, an ordering or a limit, recorded as a *reading* (``"under 30 ms" -> r.latency_ms < 30``). Words it does
not understand are returned in ``unparsed`` (with a "did you mean" when one is close), never guessed at silently; an
assumption it has to make (``"30 fps"`` with no comparison read as *at least*) is stated in ``notes``.

What it understands (units are converted to the graph's fields, see ``embodied_tui.data.graph``):

- thresholds with units and a comparison: ``under/below/less than/fewer than/faster than/within/at most/up to/over/
  above/more than/at least/no more than/between .. and ..``, ``<``, ``<=``, ``or less``, ``or more`` on
  ms/s/us (``r.latency_ms``), fps/Hz (``r.fps``), W (``h.power_w``), mJ/J (``r.energy_mj``), k/M/B params
  (``m.params``), MMACs/GMACs (``m.macs``), MFLOPs/GFLOPs/TFLOPs (``m.flops``), KB/MB/GB/MiB (``m.weight_bytes``,
  1 MB = 1e6 bytes, 1 MiB = 2^20);
- devices by id, name, alias or a few words of them (``jetson``, ``orin nano``, ``pi 5``, ``hailo``, ``rtx 4090``),
  device types (``gpus``, ``cpus``, ``npus``); power modes (``at 15 W``, ``15W mode`` -> ``h.power_w = 15``; ``MAXN``,
  ``maxn super``, ``<mode name> mode`` -> ``h.power_mode``); precisions (``fp16``, ``int8``, ``half precision``);
- model names, families (``yolo``, ``resnets``, ``vision transformers``), architecture types (``cnns``,
  ``transformers``) and tasks (``detectors``, ``classifiers``, ``segmentation``, ``policies``), each negatable
  (``not on hailo``, ``except yolo``);
- ``fits in memory``, ``memory-bound``/``compute-bound``, ``measured``, ``how many``;
- superlatives: fastest/slowest, smallest/largest, cheapest in energy, most headroom, fewest MACs, lowest power, with
  ``top 3``/``3 fastest``; a singular superlative (``the fastest model``) keeps one row, a plural one orders them all.

``StructuredQuery.to_cypher()`` is the exact query ``services.ask`` runs on the graph.
"""
from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field as dc_field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from embodied_tui.errors import UserError

# ------------------------------------------------------------------------------------------------ the query model

# field -> (kind, what it is); the variable is the part before the dot: m (Model), h (Hardware), r (RUNS_ON)
FIELDS: dict[str, tuple[str, str]] = {
    "r.latency_ms": ("number", "predicted latency, ms (calibrated roofline)"),
    "r.roofline_latency_ms": ("number", "pure roofline latency, ms (lower bound)"),
    "r.measured_latency_ms": ("number", "measured latency, ms (median of stored measurements)"),
    "r.fps": ("number", "predicted frames per second"),
    "r.energy_mj": ("number", "energy per inference, mJ (power_w x latency)"),
    "r.memory_headroom_bytes": ("number", "device memory left after weights + peak activations, bytes"),
    "r.arithmetic_intensity": ("number", "FLOPs per byte moved"),
    "r.precision": ("text", "fp32, tf32, fp16, bf16, int8, int4"),
    "r.bound": ("text", "compute, memory, overhead or host-link"),
    "r.fits_memory": ("bool", "the model fits the device's memory"),
    "h.device": ("text", "device id"),
    "h.name": ("text", "device name"),
    "h.type": ("text", "gpu, soc, cpu, npu, tpu"),
    "h.vendor": ("text", "device vendor"),
    "h.power_mode": ("text", "power mode name"),
    "h.power_w": ("number", "power budget of the mode, W"),
    "m.name": ("text", "model name"),
    "m.family": ("text", "architecture family"),
    "m.type": ("text", "architecture type: cnn, transformer, rnn, mlp, hybrid"),
    "m.task": ("text", "task: classification, detection, segmentation, policy ..."),
    "m.params": ("number", "parameters"),
    "m.macs": ("number", "multiply-accumulates per inference"),
    "m.flops": ("number", "FLOPs per inference (2 x MACs)"),
    "m.weight_bytes": ("number", "weight bytes as stored"),
}
Op = Literal["<", "<=", ">", ">=", "=", "<>", "IN", "IS NOT NULL"]
Subject = Literal["model", "hardware"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if float(value).is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(float(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return json.dumps(str(value))


class Condition(_Strict):
    field: str
    op: Op
    value: float | int | bool | str | list[str] | None = None
    negate: bool = False

    @field_validator("field")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in FIELDS:
            raise ValueError(f"unknown field {value!r}; fields: {', '.join(FIELDS)}")
        return value

    def cypher(self) -> str:
        if self.op == "IS NOT NULL":
            return f"{self.field} IS NULL" if self.negate else f"NOT {self.field} IS NULL"
        text = f"{self.field} {self.op} {_literal(self.value)}"
        return f"NOT {text}" if self.negate else text


class Order(_Strict):
    field: str
    descending: bool = False

    @field_validator("field")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in FIELDS:
            raise ValueError(f"unknown field {value!r}; fields: {', '.join(FIELDS)}")
        return value

    def cypher(self) -> str:
        return f"{self.field} {'DESC' if self.descending else 'ASC'}"


class Reading(_Strict):
    phrase: str  # the words of the question
    meaning: str  # what they were read as (a condition, an ordering, the subject ...)


_SUBJECT_COLUMNS = {
    ("model", True): ["m.name", "h.device", "h.power_mode", "r.precision", "r.latency_ms", "r.bound"],
    ("hardware", True): ["h.device", "h.power_mode", "h.power_w", "r.precision", "m.name", "r.latency_ms", "r.bound"],
    ("model", False): ["m.name", "m.family", "m.task", "m.params", "m.macs"],
    ("hardware", False): ["h.device", "h.power_mode", "h.power_w", "h.type", "h.name"],
}


class StructuredQuery(_Strict):
    """What a question asks, as data. ``to_cypher()`` renders the query that runs.

    - ``subject``: what the answer lists (models or device x power modes);
    - ``conditions``: ANDed; ``order_by`` then ``limit``; ``count``: the answer is how many distinct subjects match
      (the query returns them DISTINCT and the count is the number of rows);
    - ``readings``/``unparsed``/``notes``: how the question was read, the words not understood, the assumptions."""

    subject: Subject = "model"
    conditions: list[Condition] = Field(default_factory=list)
    order_by: list[Order] = Field(default_factory=list)
    limit: int | None = Field(default=None, ge=1)
    count: bool = False
    readings: list[Reading] = Field(default_factory=list)
    unparsed: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    def variables(self) -> set[str]:
        used = {c.field.split(".")[0] for c in self.conditions} | {o.field.split(".")[0] for o in self.order_by}
        used.add("m" if self.subject == "model" else "h")
        return used

    def joins(self) -> bool:
        """True when the query needs the Model-RUNS_ON->Hardware pattern (not just one kind of node)."""
        used = self.variables()
        return "r" in used or {"m", "h"} <= used

    def pattern(self) -> str:
        if self.joins():
            return "(m:Model)-[r:RUNS_ON]->(h:Hardware)"
        return "(m:Model)" if "m" in self.variables() else "(h:Hardware)"

    def columns(self) -> list[str]:
        if self.count:
            return ["m.name" if self.subject == "model" else "h.device"]
        joined = self.joins()
        cols = list(_SUBJECT_COLUMNS[(self.subject, joined)])
        extra = [c.field for c in self.conditions if c.op not in ("=", "IN")] + [o.field for o in self.order_by]
        for f in extra:
            if f not in cols and FIELDS[f][0] != "text" and (joined or f.split(".")[0] == cols[0][0]):
                cols.append(f)
        return cols

    def default_order(self) -> list[str]:
        if self.count:
            return [f"{self.columns()[0]} ASC"]
        if self.joins():
            return ["r.latency_ms ASC"]
        return ["m.name ASC"] if self.subject == "model" else ["h.device ASC", "h.power_w ASC"]

    def to_cypher(self) -> str:
        """The Cypher query: MATCH pattern, WHERE conditions (ANDed; ordered fields must not be null), RETURN columns
        (DISTINCT subject names for a count), ORDER BY (latency, or the name, when the question gives none), LIMIT."""
        where = [c.cypher() for c in self.conditions]
        for o in self.order_by:
            null_check = f"NOT {o.field} IS NULL"
            if null_check not in where:
                where.append(null_check)
        parts = [f"MATCH {self.pattern()}"]
        if where:
            parts.append("WHERE " + " AND ".join(where))
        parts.append(("RETURN DISTINCT " if self.count else "RETURN ") + ", ".join(self.columns()))
        order = [o.cypher() for o in self.order_by] or self.default_order()
        parts.append("ORDER BY " + ", ".join(order))
        if self.limit is not None and not self.count:
            parts.append(f"LIMIT {self.limit}")
        return "\n".join(parts)

    def spec(self) -> dict[str, Any]:
        """The part that decides the rows (no readings/notes): what a tool call returns and tests compare."""
        return self.model_dump(mode="json", include={"subject", "conditions", "order_by", "limit", "count"})


def query_from_spec(data: Any) -> StructuredQuery:
    """A StructuredQuery from a spec dict (an LLM tool call's arguments), validated; UserError with one line."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise UserError(f"the structured query is not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise UserError(f"the structured query must be a JSON object, got {type(data).__name__}")
    allowed = {"subject", "conditions", "order_by", "limit", "count"}
    try:
        return StructuredQuery.model_validate({k: v for k, v in data.items() if k in allowed})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise UserError(f"the structured query is invalid at {where}: {err['msg'].removeprefix('Value error, ')}") \
            from None


def tool_schema() -> dict[str, Any]:
    """JSON schema of a query spec, for an LLM tool (OpenAI function-calling format's ``parameters``)."""
    fields = list(FIELDS)
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "subject": {"type": "string", "enum": ["model", "hardware"],
                        "description": "what the answer lists: models, or devices (one row per power mode)"},
            "conditions": {"type": "array", "items": {
                "type": "object", "additionalProperties": False, "required": ["field", "op"],
                "properties": {
                    "field": {"type": "string", "enum": fields,
                              "description": "; ".join(f"{k}: {v[1]}" for k, v in FIELDS.items())},
                    "op": {"type": "string", "enum": ["<", "<=", ">", ">=", "=", "<>", "IN", "IS NOT NULL"]},
                    "value": {"description": "number in the field's unit, text, true/false, or a list for IN"},
                    "negate": {"type": "boolean"}}}},
            "order_by": {"type": "array", "items": {
                "type": "object", "additionalProperties": False, "required": ["field"],
                "properties": {"field": {"type": "string", "enum": fields}, "descending": {"type": "boolean"}}}},
            "limit": {"type": ["integer", "null"], "minimum": 1},
            "count": {"type": "boolean", "description": "the question asks how many"},
        },
        "required": ["subject", "conditions"],
    }


# ------------------------------------------------------------------------------------------------ vocabulary

@dataclass(frozen=True)
class DeviceTerm:
    id: str
    name: str
    vendor: str = ""
    type: str = ""
    aliases: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Vocabulary:
    """The names a question may use: from the registry graph (``services.ask.vocabulary``)."""

    models: tuple[str, ...] = ()
    families: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    devices: tuple[DeviceTerm, ...] = ()

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(sorted({m for d in self.devices for m in d.modes}))


# ------------------------------------------------------------------------------------------------ the parser

_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|\.\d+)"
# units that take no multiplier, longest first; value -> (field, factor)
_PLAIN_UNITS: list[tuple[str, str, float]] = [
    (r"milliseconds?|millisecs?|msecs?|ms", "r.latency_ms", 1.0),
    (r"microseconds?|µs|us", "r.latency_ms", 1e-3),
    (r"seconds?|secs?|s", "r.latency_ms", 1e3),
    (r"frames?\s+per\s+second|frames?/s|fps|hz|hertz", "r.fps", 1.0),
    (r"millijoules?|mj", "r.energy_mj", 1.0),
    (r"joules?|j", "r.energy_mj", 1e3),
    (r"watts?|w", "h.power_w", 1.0),
    (r"kilobytes?|megabytes?|gigabytes?|bytes?", "m.weight_bytes", 1.0),
]
_WORD_BYTES = {"kilobyte": 1e3, "megabyte": 1e6, "gigabyte": 1e9}
_MULT = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "mega": 1e6, "million": 1e6, "g": 1e9, "giga": 1e9,
         "b": 1e9, "bn": 1e9, "billion": 1e9, "t": 1e12, "tera": 1e12, "trillion": 1e12,
         "ki": 2.0 ** 10, "mi": 2.0 ** 20, "gi": 2.0 ** 30}
_MULT_RE = r"thousand|million|billion|trillion|mega|giga|tera|mn|bn|ki|mi|gi|k|m|g|b|t"
_MULT_UNITS: list[tuple[str, str]] = [
    (r"param(?:eter)?s?", "m.params"),
    (r"macs?", "m.macs"),
    (r"flops?", "m.flops"),
    (r"b(?:ytes?)?", "m.weight_bytes"),
]
_QTY = (rf"(?P<num>{_NUM})\s*(?:(?P<unit>{'|'.join(u for u, _, _ in _PLAIN_UNITS)})"
        rf"|(?P<mult>{_MULT_RE})?\s*-?\s*(?P<munit>{'|'.join(u for u, _ in _MULT_UNITS)}))(?![a-z0-9])")

_CMP_WORDS: list[tuple[str, str]] = [
    (r"no more than|not more than|no larger than|no bigger than|no higher than|no longer than|at most|up to|"
     r"at or (?:below|under)|within|maximum of|max(?:imum)?|<=|≤|=<", "<="),
    (r"no less than|not less than|no fewer than|at least|at or (?:above|over)|minimum of|min(?:imum)?|>=|≥|=>",
     ">="),
    (r"less than|lower than|fewer than|smaller than|shorter than|under|below|beneath|sub|<", "<"),
    (r"more than|greater than|higher than|larger than|bigger than|longer than|over|above|exceeding|>", ">"),
    (r"faster than|quicker than|better than", "better"),
    (r"slower than|worse than", "worse"),
    (r"exactly|equal to|==|=", "="),
]
_CMP_RE = "|".join(f"(?P<c{i}>{words})" for i, (words, _) in enumerate(_CMP_WORDS))
_SUFFIX_LE = r"or\s+(?:less|fewer|lower|under|below|smaller|faster|better|so)"
_SUFFIX_GE = r"or\s+(?:more|greater|higher|above|over|larger|bigger)"
_HIGHER_IS_BETTER = {"r.fps", "r.memory_headroom_bytes"}

_PRECISIONS: list[tuple[str, str]] = [
    (r"fp32|float32|full[- ]precision|single[- ]precision", "fp32"),
    (r"tf32|tensorfloat(?:-?32)?", "tf32"),
    (r"fp16|float16|half[- ]precision|half", "fp16"),
    (r"bf16|bfloat16", "bf16"),
    (r"int8|int-8|8[- ]bit(?: integers?)?|quanti[sz]ed", "int8"),
    (r"int4|int-4|4[- ]bit(?: integers?)?", "int4"),
]

_TASK_WORDS: list[tuple[str, str]] = [
    (r"object\s+detectors?|object\s+detection|detectors?|detection(?:\s+models?)?|detect", "detection"),
    (r"image\s+classifiers?|classifiers?|classification(?:\s+models?)?|classify", "classification"),
    (r"segmentation(?:\s+models?)?|segmenters?|segment", "segmentation"),
    (r"depth\s+estimators?|depth(?:\s+estimation)?", "depth"),
    (r"polic(?:y|ies)|controllers?", "policy"),
    (r"language\s+models?|llms?", "language"),
]
_TYPE_WORDS: list[tuple[str, str]] = [
    (r"cnns?|convnets?|convolutional(?:\s+(?:networks?|models?|nets?))?", "cnn"),
    (r"transformers?", "transformer"),
    (r"rnns?|recurrent(?:\s+(?:networks?|models?|nets?))?", "rnn"),
    (r"hybrids?", "hybrid"),
]
_FAMILY_ALIASES: dict[str, str] = {
    "vision transformer": "vit", "u-net": "unet", "u net": "unet", "effnet": "efficientnet", "yolov": "yolo",
}
_KNOWN_FAMILIES = ("resnet", "mobilenet", "efficientnet", "vit", "swin", "convnext", "regnet", "densenet", "vgg",
                   "yolo", "detr", "unet", "bert", "gpt", "lstm", "gru", "mlp")
_DEVICE_TYPES: list[tuple[str, str]] = [
    (r"gpus?|graphics\s+cards?", "gpu"),
    (r"cpus?|processors?", "cpu"),
    (r"npus?|ai\s+accelerators?", "npu"),
    (r"tpus?", "tpu"),
    (r"socs?|systems?[- ]on[- ](?:a[- ])?chips?", "soc"),
]
_SUPERLATIVES: list[tuple[str, str, bool]] = [  # pattern, field ("headroom": memory or latency slack), descending
    (r"(?:cheapest|lowest|least|smallest|minimum|best)[\s-]+(?:in[\s-]+)?(?:energy|joules)"
     r"(?:[\s-]+per[\s-]+inference)?|most[\s-]+energy[- ]efficient|most[\s-]+efficient|"
     r"cheapest[\s-]+in[\s-]+energy|cheapest", "r.energy_mj", False),
    (r"(?:fewest|least|lowest|smallest)[\s-]+(?:g?macs|g?flops|compute)|(?:cheapest|lightest)[\s-]+compute",
     "m.macs", False),
    (r"(?:most|highest|largest)[\s-]+(?:g?macs|g?flops|compute)|heaviest[\s-]+compute", "m.macs", True),
    (r"most[\s-]+(?:memory[\s-]+)?(?:headroom|room|spare[\s-]+memory|free[\s-]+memory|slack)", "headroom", True),
    (r"(?:least|lowest|smallest)[\s-]+(?:memory[\s-]+)?(?:headroom|room|slack)", "headroom", False),
    (r"(?:lowest|least|smallest|shortest|best|minimum|min)[\s-]+(?:predicted[\s-]+)?latency|fastest|quickest|"
     r"(?:highest|most|best|max(?:imum)?)[\s-]+(?:fps|frame\s*rate|throughput)", "r.latency_ms", False),
    (r"(?:highest|longest|worst|maximum|max)[\s-]+(?:predicted[\s-]+)?latency|slowest|"
     r"(?:lowest|least|worst)[\s-]+(?:fps|frame\s*rate|throughput)", "r.latency_ms", True),
    (r"(?:lowest|least|smallest)[\s-]+power(?:[\s-]+(?:draw|budget|consumption))?|most[\s-]+frugal",
     "h.power_w", False),
    (r"(?:highest|most|largest)[\s-]+power(?:[\s-]+(?:draw|budget|consumption))?|most[\s-]+power[- ]hungry",
     "h.power_w", True),
    (r"smallest|tiniest|lightest|fewest[\s-]+param(?:eter)?s|least[\s-]+param(?:eter)?s|"
     r"lowest[\s-]+param(?:eter)?[\s-]+count", "m.params", False),
    (r"largest|biggest|heaviest|most[\s-]+param(?:eter)?s|highest[\s-]+param(?:eter)?[\s-]+count", "m.params", True),
]
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                 "ten": 10, "twenty": 20}
_NEGATION = r"(?:not|except(?:\s+for)?|excluding|exclude|other\s+than|apart\s+from|besides|without|no|but\s+not)"
_MODEL_WORDS = r"models?|networks?|nets?|architectures?|ones?"
_HW_WORDS = r"devices?|hardware|boards?|chips?|accelerators?|targets?|platforms?|where"
_PLURAL_NOUNS = {"models", "networks", "nets", "ones", "devices", "boards", "chips", "accelerators", "targets",
                 "platforms", "configs", "configurations", "options", "detectors", "classifiers", "policies",
                 "transformers", "cnns", "rnns", "gpus", "cpus", "npus", "tpus", "segmenters", "controllers"}
_STOPWORDS = set("""
a an the of on in at for to with that this these those is are be been being was were can could would will should
shall may might must do does did done run runs running ran execute executes executed go goes get gets got there
their its it it's than then and or i we you me my our your us please which what whats what's who whom whose how
when show list give gives find tell all any some each every both either by per from into onto as if about so
fast quick speed latency latencies time times inference inferences predicted prediction estimated expected mode
modes power precision setting settings config configs configuration configurations option options one ones
have has having under over among across same also just only really very fine ok okay need needs want wants like
work works working handle handles handling support supports supported deploy deployed deploying use using used
frame frames image images second per budget rate result results answer model-wise here now still yet
compare comparing versus vs single way ways kind kinds type types take takes taking reach reaches reaching hit hits
achieve achieves manage manages draw draws drawing consume consumes consuming sustain sustains uses available exist exists
""".split())
_GENERIC_DEVICE_WORDS = {"model", "models", "gb", "tb", "mb", "x", "b", "m", "cpu", "gpu", "tpu", "npu", "soc",
                         "usb", "pcie", "original", "firmware", "jetpack", "super", "core", "sxm", "accelerator",
                         "ai", "kit", "the", "a", "an", "and", "or", "of", "pcie", "edge", "lpddr", "hbm",
                         "gddr", "dev", "developer", "typical", "default", "max", "with", "on", "in", "for", "to",
                         "at", "is", "it"}


_TYPE_TOKENS = {"gpu", "cpu", "npu", "tpu", "soc"}


def _tokens(text: str) -> list[str]:
    """Letter runs and digit runs: 'Orin Nano 8GB' -> ['orin', 'nano', '8', 'gb']; 'pi5' -> ['pi', '5']."""
    return re.findall(r"[a-z]+|\d+", text.lower())


@dataclass
class _Device:
    term: DeviceTerm
    primary: frozenset[str]  # tokens of id + name + vendor
    every: frozenset[str]  # and of the aliases


@dataclass
class _State:
    raw: str
    low: str
    free: list[bool]
    readings: list[Reading] = dc_field(default_factory=list)
    conditions: list[Condition] = dc_field(default_factory=list)
    notes: list[str] = dc_field(default_factory=list)
    order: list[tuple[str, bool, str]] = dc_field(default_factory=list)  # (field, desc, phrase)
    limit: int | None = None
    limit_phrase: str = ""
    plural_superlative: bool = False
    count: bool = False
    subject_votes: list[tuple[int, str]] = dc_field(default_factory=list)  # (position, "model"/"hardware")
    ignored: list[str] = dc_field(default_factory=list)  # phrases recognised but not usable

    def masked(self) -> str:
        return "".join(c if f else "\x00" for c, f in zip(self.low, self.free))

    def take(self, start: int, end: int) -> str:
        for i in range(start, end):
            self.free[i] = False
        return self.raw[start:end].strip()

    def finditer(self, pattern: str):
        """Matches of ``pattern`` (word-bounded) on the text not yet read, left to right; each over free text only."""
        regex = re.compile(rf"(?<![a-z0-9_])(?:{pattern})(?![a-z0-9_])")
        pos = 0
        while True:
            text = self.masked()
            match = regex.search(text, pos)
            if match is None:
                return
            if all(self.free[match.start():match.end()]) and match.end() > match.start():
                yield match
                pos = match.end()
            else:
                pos = match.start() + 1

    def negated_before(self, start: int) -> tuple[bool, int]:
        """Whether a negation word directly precedes ``start`` (fillers allowed), and where it starts."""
        before = self.masked()[:start]
        m = re.search(rf"(?<![a-z0-9_]){_NEGATION}\s+(?:(?:on|in|for|the|a|an|any|run\w*)\s+)*$", before)
        return (True, m.start()) if m else (False, start)

    def add(self, cond: Condition, phrase: str) -> None:
        self.conditions.append(cond)
        self.readings.append(Reading(phrase=phrase, meaning=cond.cypher()))


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _clean(value: float) -> float | int:
    value = float(f"{value:.12g}")
    return int(value) if value.is_integer() else value


def _quantity(m: re.Match) -> tuple[str, float]:
    """(field, value in the field's unit) of a _QTY match."""
    num = _number(m.group("num"))
    if m.group("unit") is not None:
        unit = re.sub(r"\s+", " ", m.group("unit"))
        for pattern, fld, factor in _PLAIN_UNITS:
            if re.fullmatch(pattern, unit):
                if fld == "m.weight_bytes":
                    factor = next((v for k, v in _WORD_BYTES.items() if unit.startswith(k)), 1.0)
                return fld, num * factor
    munit, mult = m.group("munit"), m.group("mult") or ""
    fld = next(f for pattern, f in _MULT_UNITS if re.fullmatch(pattern, munit))
    if fld != "m.weight_bytes" and mult in ("ki", "mi", "gi"):
        mult = mult[0]
    if fld == "m.weight_bytes" and mult in ("b", "bn"):  # "5 bb" is no unit; read as bytes
        mult = ""
    return fld, num * _MULT.get(mult, 1.0)


def _resolve_op(op: str, fld: str) -> str:
    if op == "better":
        return ">" if fld in _HIGHER_IS_BETTER else "<"
    if op == "worse":
        return "<" if fld in _HIGHER_IS_BETTER else ">"
    return op


def _cmp_op(m: re.Match) -> str:
    for i, (_, op) in enumerate(_CMP_WORDS):
        if m.group(f"c{i}") is not None:
            return op
    raise AssertionError("no comparison group matched")


def _thresholds(st: _State) -> None:
    """Comparisons with a number and a unit: 'under 30 ms', '30 fps or more', 'between 1 and 5 M params'."""
    for m in list(st.finditer(rf"between\s+(?P<lo>{_NUM})(?P<lorest>\s*[a-z]+(?:\s+[a-z]+)?)?\s+and\s+{_QTY}")):
        fld, hi = _quantity(m)
        own = re.fullmatch(_QTY, m.group("lo") + (m.group("lorest") or ""))
        if own is None or _quantity(own)[0] != fld:  # '50 and 200k params': the unit of the upper bound
            own = re.fullmatch(_QTY, f"{m.group('lo')} {m.group('mult') or ''}{m.group('unit') or m.group('munit')}")
        lo = _quantity(own)[1] if own else _number(m.group("lo"))
        phrase = st.take(m.start(), m.end())
        st.add(Condition(field=fld, op=">=", value=_clean(lo)), phrase)
        st.add(Condition(field=fld, op="<=", value=_clean(hi)), phrase)
    for m in list(st.finditer(rf"(?:{_CMP_RE})\s*(?:(?:a|an|the)\s+)?{_QTY}")):
        fld, value = _quantity(m)
        op = _resolve_op(_cmp_op(m), fld)
        st.add(Condition(field=fld, op=op, value=_clean(value)), st.take(m.start(), m.end()))
    for m in list(st.finditer(rf"{_QTY}\s*(?:(?P<le>{_SUFFIX_LE})|(?P<ge>{_SUFFIX_GE})|(?P<plus>\+))")):
        fld, value = _quantity(m)
        op = "<=" if m.group("le") else ">="
        if m.group("le") and fld in _HIGHER_IS_BETTER and re.search(r"faster|better", m.group("le")):
            op = ">="
        st.add(Condition(field=fld, op=op, value=_clean(value)), st.take(m.start(), m.end()))


def _power_modes(st: _State, vocab: Vocabulary) -> None:
    """'at 15 W', '15W mode', 'in the 15 watt mode' -> h.power_w = 15; 'MAXN', 'maxn super', '<name> mode'."""
    for m in list(st.finditer(rf"(?:(?:at|in|on)\s+(?:the\s+)?)?(?P<num>{_NUM})\s*-?\s*(?:w|watts?)"
                              rf"(?:\s+(?:power\s+)?mode)?|(?:at|in|on)\s+(?:the\s+)?(?P<num2>{_NUM})\s*-?\s*"
                              rf"(?:w|watts?)")):
        value = _number(m.group("num") or m.group("num2"))
        st.add(Condition(field="h.power_w", op="=", value=_clean(value)), st.take(m.start(), m.end()))
    modes = {re.sub(r"[\s_-]", "", mode.lower()): mode for mode in vocab.modes}
    names = sorted(modes, key=len, reverse=True)
    distinctive = [n for n in names if n.startswith("maxn") or re.search(r"\d", n) and not re.fullmatch(r"\d+w", n)]
    for key in distinctive:
        parts = re.findall(r"[a-z]+|\d+(?:\.\d+)?", modes[key].lower())
        spelled = r"[\s_-]*".join(re.escape(part) for part in parts)
        for m in list(st.finditer(rf"(?:(?:at|in)\s+(?:the\s+)?)?{spelled}(?:\s+(?:power\s+)?mode)?")):
            st.add(Condition(field="h.power_mode", op="=", value=modes[key]), st.take(m.start(), m.end()))
    for m in list(st.finditer(r"(?:(?:at|in)\s+(?:the\s+)?)?(?P<name>[a-z0-9_.]+)\s+(?:power\s+)?mode")):
        key = re.sub(r"[\s_-]", "", m.group("name"))
        if key in modes:
            st.add(Condition(field="h.power_mode", op="=", value=modes[key]), st.take(m.start(), m.end()))


def _entities(st: _State, patterns: list[tuple[str, str]], fld: str, what: str) -> None:
    for pattern, value in patterns:
        for m in list(st.finditer(pattern)):
            negated, start = st.negated_before(m.start())
            phrase = st.take(start, m.end())
            st.add(Condition(field=fld, op="=", value=value, negate=negated), phrase)
            if what:
                st.subject_votes.append((m.start(), what))


def _name_pattern(name: str) -> str:
    parts = re.findall(r"[a-z]+|\d+", name.lower())
    return r"[\s_.-]?".join(re.escape(p) for p in parts) if parts else re.escape(name.lower())


def _devices(st: _State, vocab: Vocabulary) -> None:
    """Device phrases: runs of words whose letter/digit tokens all belong to one device's names, with at least one
    distinctive word ('jetson', 'orin nano', 'pi 5', 'rtx 4090', 'a100'). Several devices may match: all are kept."""
    devices = [_Device(d, frozenset(_tokens(" ".join((d.id, d.name, d.vendor)))),
                       frozenset(_tokens(" ".join((d.id, d.name, d.vendor, *d.aliases))))) for d in vocab.devices]
    if not devices:
        return
    known = set().union(*(d.every for d in devices))
    text = st.masked()
    words = [(m.start(), m.end(), m.group(0)) for m in re.finditer(r"[a-z0-9]+(?:[-.][a-z0-9]+)*", text)]

    def toks(word: str) -> list[str]:
        t = _tokens(word)
        if t and t[-1] not in known and t[-1].endswith("s") and t[-1][:-1] in known:  # jetsons, hailos
            t[-1] = t[-1][:-1]
        return t

    def anchor(word: str) -> bool:
        t = toks(word)
        if any(x.isalpha() and len(x) >= 2 and x not in _GENERIC_DEVICE_WORDS for x in t):
            return True
        if any(x.isdigit() and len(x) >= 3 for x in t):
            return True
        return len(t) >= 2 and any(x.isdigit() for x in t) and any(x.isalpha() and x not in _GENERIC_DEVICE_WORDS
                                                                   for x in t)

    i = 0
    while i < len(words):
        best = None
        for j in range(i + 1, len(words) + 1):
            if j > i + 1 and text[words[j - 2][1]:words[j - 1][0]].strip():  # words must be adjacent
                break
            phrase = [t for w in words[i:j] for t in toks(w[2])]
            if not phrase or any(t not in known for t in phrase) or any(w[2] in _STOPWORDS for w in words[i:j]):
                break
            if not any(anchor(w[2]) for w in words[i:j]):
                continue
            hits = [d for d in devices if set(phrase) <= d.every]
            typed = [t for t in phrase if t in _TYPE_TOKENS]
            if typed:  # 'nvidia gpus' is a vendor and a type; 'orin nano cpu' is a device's name
                hits = [d for d in hits if set(typed) <= d.primary]
            if not hits:
                break
            primary = [d for d in hits if set(phrase) <= d.primary]
            best = (j, primary or hits)
        if best is None:
            i += 1
            continue
        j, hits = best
        negated, start = st.negated_before(words[i][0])
        phrase = st.take(start, words[j - 1][1])
        ids = sorted(d.term.id for d in hits)
        cond = Condition(field="h.device", op="IN" if len(ids) > 1 else "=", value=ids if len(ids) > 1 else ids[0],
                         negate=negated)
        st.add(cond, phrase)
        i = j


def _families(st: _State, vocab: Vocabulary) -> None:
    families = sorted(set(vocab.families) | set(_KNOWN_FAMILIES), key=len, reverse=True)
    patterns = [(rf"{re.escape(alias)}s?", fam) for alias, fam in _FAMILY_ALIASES.items() if alias != "yolov"]
    patterns.append((r"yolo(?:v\d+|-?v?\d+)?s?", "yolo"))
    patterns += [(rf"{_name_pattern(f)}(?:e?s)?", f) for f in families if f not in ("unknown", "yolo")]
    patterns = [(rf"(?:{p})(?:[\s-]+(?:family|families|style|like|based))?", f) for p, f in patterns]
    _entities(st, patterns, "m.family", "model")


def _superlatives(st: _State) -> None:
    for pattern, fld, desc in _SUPERLATIVES:
        for m in list(st.finditer(pattern)):
            start, end = m.start(), m.end()
            text = st.masked()
            before = re.search(rf"(?:top|the|best)?\s*(?P<n>\d+|{'|'.join(_NUMBER_WORDS)})\s+$", text[:start])
            after = re.match(rf"\s+(?P<n>\d+|{'|'.join(_NUMBER_WORDS)})(?![a-z0-9])(?!\s*(?:ms|fps|w|mb|gb)\b)",
                             text[end:])
            n = before or after
            if before:
                start = before.start()
            if after:
                end = end + after.end()
            phrase = st.take(start, end)
            if n:
                word = n.group("n")
                st.limit = int(word) if word.isdigit() else _NUMBER_WORDS[word]
                st.limit_phrase = phrase
            else:  # 'the fastest models', 'smallest yolo detectors': plural -> every row, ordered
                nouns = re.findall(r"[a-z]+", text[end:end + 40])[:3]
                if any(w in _PLURAL_NOUNS for w in nouns):
                    st.plural_superlative = True
            st.order.append((fld, desc, phrase))
    if st.order and st.limit is None:  # 'the 2 models with the fewest MACs'
        nouns = "|".join(sorted(_PLURAL_NOUNS))
        for m in list(st.finditer(rf"(?:the|first)\s+(?P<n>\d+|{'|'.join(_NUMBER_WORDS)})(?=\s+(?:{nouns}))")):
            word = m.group("n")
            st.limit = int(word) if word.isdigit() else _NUMBER_WORDS[word]
            st.limit_phrase = st.take(m.start(), m.end())
    for m in list(st.finditer(rf"top\s+(?P<n>\d+|{'|'.join(_NUMBER_WORDS)})")):
        word = m.group("n")
        st.limit = int(word) if word.isdigit() else _NUMBER_WORDS[word]
        st.limit_phrase = st.take(m.start(), m.end())


def _bounds(st: _State) -> None:
    """'memory-bound', 'compute bound': read before the words 'memory' and 'compute' mean anything else."""
    for m in list(st.finditer(r"(?P<b>memory|compute|overhead|host[- ]link)[- ]bound")):
        value = "host-link" if m.group("b").startswith("host") else m.group("b")
        st.add(Condition(field="r.bound", op="=", value=value), st.take(m.start(), m.end()))


def _flags(st: _State) -> None:
    """fits in memory, memory-/compute-bound, measured, how many, real-time, the subject words."""
    neg_fit = (r"(?:does\s+not|doesn't|do\s+not|don't|won't|will\s+not|cannot|can't|not)\s+fit(?:s|ting)?"
               r"(?:\s+(?:in(?:to)?|within)\s+(?:the\s+)?(?:device(?:'s)?\s+)?memory)?")
    for m in list(st.finditer(neg_fit)):
        st.add(Condition(field="r.fits_memory", op="=", value=False), st.take(m.start(), m.end()))
    for m in list(st.finditer(r"fit(?:s|ting)?(?:\s+(?:in(?:to)?|within)\s+(?:the\s+)?(?:device(?:'s)?\s+)?"
                              r"(?:memory|ram))?|(?:in|within)\s+memory")):
        st.add(Condition(field="r.fits_memory", op="=", value=True), st.take(m.start(), m.end()))
    for m in list(st.finditer(r"(?:with\s+(?:a\s+)?)?(?:measured|benchmarked|measurements?)(?:\s+latency)?")):
        st.add(Condition(field="r.measured_latency_ms", op="IS NOT NULL"), st.take(m.start(), m.end()))
    for m in list(st.finditer(r"how\s+many|(?:the\s+)?number\s+of|count(?:\s+(?:of|the|all))*")):
        st.count = True
        st.readings.append(Reading(phrase=st.take(m.start(), m.end()), meaning="count the distinct answers"))
    for m in list(st.finditer(r"(?:in\s+)?real[- ]?time")):
        phrase = st.take(m.start(), m.end())
        st.add(Condition(field="r.fps", op=">=", value=30), phrase)
        st.notes.append(f"'{phrase}' read as at least 30 fps (say '60 fps' for another rate)")
    for pattern, kind, meaning in ((_HW_WORDS, "hardware", "list devices x power modes"),
                                   (_MODEL_WORDS, "model", "list models")):
        for m in list(st.finditer(pattern)):
            st.subject_votes.append((m.start(), kind))
            st.readings.append(Reading(phrase=st.take(m.start(), m.end()), meaning=meaning))


_RATES = ("r.latency_ms", "r.energy_mj", "r.fps", "h.power_w")


def _bare_quantities(st: _State, fields: tuple[str, ...]) -> None:
    """Quantities with no comparison: 'at 30 fps' (at least), 'in 30 ms' / '30 ms budget' (at most); a size or count
    with no comparison is not guessed at."""
    for m in list(st.finditer(rf"(?:(?:at|in|with|within|for|of|a|an)\s+)?{_QTY}(?:\s+(?:budget|target|limit|"
                              rf"latency|deadline|loop|control\s+loop))?")):
        fld, value = _quantity(m)
        if fld not in fields:
            continue
        phrase = st.take(m.start(), m.end())
        if fld in ("r.latency_ms", "r.energy_mj"):
            st.add(Condition(field=fld, op="<=", value=_clean(value)), phrase)
            st.notes.append(f"'{phrase}' has no comparison: read as at most {_clean(value)}")
        elif fld == "r.fps":
            st.add(Condition(field=fld, op=">=", value=_clean(value)), phrase)
            st.notes.append(f"'{phrase}' has no comparison: read as at least {_clean(value)} fps")
        elif fld == "h.power_w":
            st.add(Condition(field=fld, op="=", value=_clean(value)), phrase)
        else:
            qty = st.raw[m.start("num"):m.end()].strip()
            st.ignored.append(qty)
            st.notes.append(f"'{qty}' has no comparison (under, over, at least ...): ignored")


def _leftovers(st: _State, vocab: Vocabulary) -> list[str]:
    words = []
    for m in re.finditer(r"[^\s\x00?!,;:()\"]+", st.masked()):
        word = m.group(0).strip(".'")
        if not word or word in _STOPWORDS or not re.search(r"[a-z0-9]", word):
            continue
        words.append(st.raw[m.start():m.end()].strip(".'\"?!,;:"))
    terms = (list(vocab.models) + list(vocab.families) + list(_KNOWN_FAMILIES) + list(vocab.tasks)
             + [t for d in vocab.devices for t in _tokens(f"{d.name} {' '.join(d.aliases)}")
                if len(t) >= 3 and t not in _GENERIC_DEVICE_WORDS]
             + ["fastest", "slowest", "smallest", "largest", "cheapest", "headroom", "detectors", "classifiers",
                "segmentation", "policies", "params", "parameters", "memory", "measured", "transformers"])
    for word in words:
        close = difflib.get_close_matches(word.lower(), sorted(set(terms)), n=1, cutoff=0.75)
        if close:
            st.notes.append(f"'{word}' was not understood (did you mean '{close[0]}'?)")
        elif re.fullmatch(r"[\d.,]+", word):
            st.notes.append(f"'{word}' has no unit (ms, fps, W, MB, M params, GMACs ...): ignored")
    return words


def _merge(conditions: list[Condition]) -> list[Condition]:
    """Equalities on the same field, not negated, become one IN; negated ones one NOT IN; duplicates drop."""
    out: list[Condition] = []
    groups: dict[tuple[str, bool], list] = {}
    for c in conditions:
        if c.op in ("=", "IN") and FIELDS[c.field][0] == "text":
            values = c.value if isinstance(c.value, list) else [c.value]
            key = (c.field, c.negate)
            if key not in groups:
                groups[key] = []
                out.append(c)
            groups[key].extend(v for v in values if v not in groups[key])
        elif c not in out:
            out.append(c)
    merged = []
    for c in out:
        key = (c.field, c.negate)
        if key in groups and c.op in ("=", "IN") and FIELDS[c.field][0] == "text":
            values = sorted(groups[key])
            merged.append(Condition(field=c.field, op="IN" if len(values) > 1 else "=",
                                    value=values if len(values) > 1 else values[0], negate=c.negate))
        else:
            merged.append(c)
    return merged


def parse_question(text: str, vocabulary: Vocabulary) -> StructuredQuery:
    """Read ``text`` into a StructuredQuery (see the module docstring). Pure; raises UserError for an empty text."""
    if not text or not text.strip():
        raise UserError('empty question; try: embodied-ai ask "which models run under 30 ms on a jetson at 15 W?"')
    raw = text.replace("\u2019", "'").replace("\u2264", "<=").replace("\u2265", ">=")
    low = raw.lower()
    if len(low) != len(raw):  # a character whose lower case is longer: keep positions aligned
        low = "".join(c.lower() if len(c.lower()) == 1 else c for c in raw)
    st = _State(raw=raw, low=low, free=[True] * len(raw))

    names = sorted(vocabulary.models, key=len, reverse=True)
    _entities(st, [(_name_pattern(n), n) for n in names], "m.name", "")
    _entities(st, _PRECISIONS, "r.precision", "")
    _bounds(st)
    _thresholds(st)
    _power_modes(st, vocabulary)
    _bare_quantities(st, _RATES)
    _devices(st, vocabulary)
    _superlatives(st)
    _entities(st, _DEVICE_TYPES, "h.type", "hardware")
    _entities(st, _TASK_WORDS, "m.task", "model")
    _families(st, vocabulary)
    _entities(st, _TYPE_WORDS, "m.type", "model")
    _flags(st)
    _bare_quantities(st, tuple(f for f in FIELDS if f not in _RATES))
    unparsed = st.ignored + _leftovers(st, vocabulary)

    conditions = _merge(st.conditions)
    has_model_name = any(c.field == "m.name" and not c.negate for c in conditions)
    has_device = any(c.field.startswith("h.") for c in conditions)
    if st.subject_votes:  # the first subject word decides: "which devices run models under 5 ms" lists devices
        subject = min(st.subject_votes)[1]
    else:
        subject = "hardware" if has_model_name and not has_device else "model"

    order: list[Order] = []
    for fld, desc, phrase in st.order:
        if fld == "headroom":
            budget = any(c.field == "r.latency_ms" and c.op in ("<", "<=") for c in conditions)
            if budget:
                fld, desc = "r.latency_ms", False
                st.notes.append(f"'{phrase}' with a latency budget: read as the most time left under it (lowest "
                                f"latency)")
            else:
                fld = "r.memory_headroom_bytes"
        item = Order(field=fld, descending=desc)
        if item not in order:
            order.append(item)
            st.readings.append(Reading(phrase=phrase, meaning=f"ORDER BY {item.cypher()}"))
    limit = st.limit
    if limit is None and order and not st.plural_superlative and not st.count:
        limit = 1
        st.notes.append("a singular superlative keeps the first row (ask for 'the 3 fastest' or 'fastest models' "
                        "for more)")
    if st.limit is not None:
        st.readings.append(Reading(phrase=st.limit_phrase, meaning=f"LIMIT {st.limit}"))
    lowered = raw.lower()
    readings = sorted(st.readings, key=lambda r: lowered.find(r.phrase.lower()))  # in the question's order
    return StructuredQuery(subject=subject, conditions=conditions, order_by=order, limit=limit, count=st.count,
                           readings=readings, unparsed=unparsed, notes=st.notes)
