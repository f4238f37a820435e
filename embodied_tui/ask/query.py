"""What a question asks, as data (``StructuredQuery``), and the Cypher it renders to. Pure: no I/O.

The fields a query may use are the registry graph's (``embodied_tui.ask.graph``): the part before the dot names the
variable, ``m`` (Model), ``h`` (Hardware, one per device x power mode) or ``r`` (the RUNS_ON edge, one per precision).
``StructuredQuery.to_cypher()`` is the exact query ``services.ask`` runs.
"""
from __future__ import annotations

import json
import math
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

# field -> (kind, what it is)
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
    "r.weight_bytes": ("number", "weight bytes at the row's precision"),
    "r.activation_bytes": ("number", "activation bytes at the row's precision"),
    "h.device": ("text", "device id"),
    "h.name": ("text", "device name"),
    "h.type": ("text", "gpu, soc, cpu, npu, tpu"),
    "h.vendor": ("text", "device vendor"),
    "h.power_mode": ("text", "power mode name"),
    "h.device_mode": ("text", "device id/power mode name: one device's mode"),
    "h.power_w": ("number", "power budget of the mode, W"),
    "h.memory_bytes": ("number", "device memory (DRAM), bytes"),
    "h.memory_bandwidth_gbps": ("number", "memory bandwidth of the mode, GB/s (1e9 bytes/s)"),
    **{f"h.peak_{p}_tflops": ("number", f"dense peak of the mode at {p}, "
                              f"{'TOPS' if p.startswith('int') else 'TFLOPS'}")
       for p in ("fp32", "tf32", "fp16", "bf16", "fp8", "fp4", "int8", "int4")},
    "m.name": ("text", "model name"),
    "m.family": ("text", "architecture family"),
    "m.type": ("text", "architecture type: cnn, transformer, rnn, mlp, hybrid"),
    "m.task": ("text", "task: classification, detection, segmentation, policy ..."),
    "m.format": ("text", "file format: onnx, torchscript, exported_program, state_dict, safetensors ..."),
    "m.dtype": ("text", "the stored weights' dtype: float32, float16, bfloat16, int8, uint8 ..."),
    "m.params": ("number", "parameters"),
    "m.macs": ("number", "multiply-accumulates per inference"),
    "m.flops": ("number", "FLOPs per inference (2 x MACs)"),
    "m.weight_bytes": ("number", "weight bytes as stored"),
    "m.activation_bytes": ("number", "activation bytes as stored (the analyser's peak: the largest live tensors)"),
    "m.input_shape": ("text", "input shapes as written, 'NxCxHxW' (several joined by ', ')"),
    "m.layers": ("number", "layers the analyser counted (leaf modules, or graph nodes of an ONNX file)"),
    "p.name": ("text", "stored pipeline name"),
    "p.rate_hz": ("number", "control rate the pipeline must hold, Hz"),
    "r.total_ms": ("number", "pipeline time per control period on the device, ms (sum of stage ms / chunk)"),
    "r.rate_hz": ("number", "control rate the device holds for the pipeline, Hz (1000 / total_ms)"),
    "r.meets_rate": ("bool", "the device holds the pipeline's rate"),
    "r.margin": ("number", "1 - total_ms / period_ms (negative: short by that share)"),
}
# fields of a Model's RUNS_ON edge -> the same meaning on a Pipeline's (a pipeline question reads 'under 50 ms' and
# '20 Hz' as these); ``PIPELINE_EDGE`` is what a Pipeline's RUNS_ON edge holds
PIPELINE_FIELD = {"r.latency_ms": "r.total_ms", "r.fps": "r.rate_hz"}
PIPELINE_EDGE = frozenset({"r.total_ms", "r.rate_hz", "r.meets_rate", "r.margin", "r.precision", "r.fits_memory"})
Op = Literal["<", "<=", ">", ">=", "=", "<>", "IN", "IS NOT NULL"]
OPS: tuple[str, ...] = get_args(Op)
Subject = Literal["model", "hardware", "pipeline"]
SPEC_KEYS = ("subject", "conditions", "order_by", "limit", "count")  # what decides the rows
# bounds of a query (a question's or an LLM's): its Cypher stays under ask.graph's static limits (AND/OR, length)
MAX_CONDITIONS = 24
MAX_ORDER = 8
MAX_IN_VALUES = 200
MAX_TEXT_VALUE = 500  # characters of one text value
MAX_LIMIT = 1_000_000
MAX_NUMBER = 1e300  # a number past this has no meaning here (and a 401-digit int cannot become a float)

# text fields a condition on adds as a column (an input shape's condition names the shapes, not the models' own)
_SHOWN_TEXT = frozenset({"m.input_shape"})
# the columns an answer lists: (subject, joined with RUNS_ON) -> columns
_SUBJECT_COLUMNS = {
    ("model", True): ["m.name", "h.device", "h.power_mode", "r.precision", "r.latency_ms", "r.bound"],
    ("hardware", True): ["h.device", "h.power_mode", "h.power_w", "r.precision", "m.name", "r.latency_ms", "r.bound"],
    ("model", False): ["m.name", "m.family", "m.task", "m.params", "m.macs"],
    ("hardware", False): ["h.device", "h.power_mode", "h.power_w", "h.type", "h.name"],
    ("pipeline", True): ["p.name", "h.device", "h.power_mode", "r.precision", "r.total_ms", "r.rate_hz", "p.rate_hz",
                         "r.meets_rate", "r.fits_memory"],
    ("pipeline-hardware", True): ["h.device", "h.power_mode", "p.name", "r.precision", "r.total_ms", "r.rate_hz",
                                  "p.rate_hz", "r.meets_rate", "r.fits_memory"],
}

# the returned fields that tell one row from another, by (subject, joined): the last keys of every ORDER BY
_IDENTITY = {
    ("model", True): ["m.name", "h.device", "h.power_mode", "r.precision"],
    ("hardware", True): ["h.device", "h.power_mode", "r.precision", "m.name"],
    ("model", False): ["m.name"],
    ("hardware", False): ["h.device", "h.power_mode"],
    ("pipeline", True): ["p.name", "h.device", "h.power_mode", "r.precision"],
    ("pipeline-hardware", True): ["h.device", "h.power_mode", "p.name", "r.precision"],
}


def is_text(field: str) -> bool:
    return FIELDS[field][0] == "text"


def literal(value: Any) -> str:
    """A value as a Cypher literal: true/false, an integer where the number is whole, a quoted string, a list."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if float(value).is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(float(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return json.dumps(str(value))


class _OnField(BaseModel):
    """A part of a query about one graph field (one of FIELDS)."""

    model_config = ConfigDict(extra="forbid")
    field: str

    @field_validator("field")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in FIELDS:
            raise ValueError(f"unknown field {value!r}; fields: {', '.join(FIELDS)}")
        return value


class Condition(_OnField):
    op: Op
    value: float | int | bool | str | list[str] | None = None
    negate: bool = False

    @field_validator("value")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, (int, float)):  # an int compares with a float exactly, never overflowing
            if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > MAX_NUMBER:
                raise ValueError(f"number out of range (at most {MAX_NUMBER:g} either way)")
            return value
        values = value if isinstance(value, list) else [value]
        if len(values) > MAX_IN_VALUES:
            raise ValueError(f"{len(values)} values (the limit is {MAX_IN_VALUES})")
        if any(len(v) > MAX_TEXT_VALUE for v in values):
            raise ValueError(f"a text value longer than {MAX_TEXT_VALUE} characters")
        return value

    def cypher(self) -> str:
        if self.op == "IS NOT NULL":
            return f"{self.field} IS NULL" if self.negate else f"NOT {self.field} IS NULL"
        text = f"{self.field} {self.op} {literal(self.value)}"
        return f"NOT {text}" if self.negate else text


class Order(_OnField):
    descending: bool = False

    def cypher(self) -> str:
        return f"{self.field} {'DESC' if self.descending else 'ASC'}"


class Reading(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phrase: str  # the words of the question
    meaning: str  # what they were read as (a condition, an ordering, the subject ...)


class Comparison(BaseModel):
    """Two sides compared on predicted latency: two models (``field`` m.name) or two groups of devices (h.device,
    each side the devices one phrase named); ``phrase`` the words that asked it. The rows hold both sides; the
    sentences are ``ask.verdict.comparison``'s."""

    model_config = ConfigDict(extra="forbid")
    field: Literal["m.name", "h.device", "r.precision"]  # two models, two device groups, or two precisions
    sides: list[list[str]] = Field(min_length=2, max_length=2)
    labels: list[str] = Field(min_length=2, max_length=2)  # each side as the question named it
    phrase: str = ""
    yes_no: bool = False  # 'is A faster than B?': the answer starts with yes or no
    # 'is A twice as fast as B', '3x faster than': held where the ratio is at least this; 'slower' asks the other way
    factor: float | None = Field(default=None, gt=0, le=1e6)
    slower: bool = False
    # 'is A bigger than B', 'does A have more MACs than B': two models' sizes (the registry's, read with the
    # question: ``values``, one per side), ``more`` whether the question asks if the first has more
    measure: Literal["r.latency_ms", "r.energy_mj", "m.params", "m.macs"] = "r.latency_ms"  # energy: 'more efficient'
    values: list[float | None] = Field(default_factory=list, max_length=2)
    more: bool = True


class Threshold(BaseModel):
    """The reference model's predicted latency on one device x power mode x precision (``Relative``)."""

    model_config = ConfigDict(extra="forbid")
    device: str
    power_mode: str
    precision: str
    latency_ms: float

    @field_validator("latency_ms")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("a latency must be a finite number")
        return value


class Relative(BaseModel):
    """'faster than <model>' / 'slower than <model>' with no number: a row's predicted latency compared with the
    model's own on the same device, power mode and precision (``op`` "<" faster, ">" slower). ``thresholds`` are
    that model's latencies on the targets the question keeps, filled in by ``services.ask`` from its fit rows
    before the query runs; the query then holds one ``(h.device = .. AND h.power_mode = .. AND r.precision = .. AND
    r.latency_ms < ..)`` per target, ORed."""

    model_config = ConfigDict(extra="forbid")
    model: str
    op: Literal["<", ">"]
    phrase: str = ""
    thresholds: list[Threshold] | None = None

    def cypher(self) -> str:
        """The condition: per device x power mode, ``h.device = .. AND h.power_mode = ..`` and, per precision, ``r.precision
        = .. AND r.latency_ms < ..`` (ORed when several); the device x modes ORed."""
        if self.thresholds is None:  # not resolved yet: shown, never run
            return f"r.latency_ms {self.op} <{self.model}'s r.latency_ms on the same h.device, h.power_mode, r.precision>"
        if not self.thresholds:
            return "false"
        groups: dict[tuple[str, str], list[str]] = {}
        for t in self.thresholds:
            groups.setdefault((t.device, t.power_mode), []).append(
                f"r.precision = {literal(t.precision)} AND r.latency_ms {self.op} {literal(t.latency_ms)}")
        texts = []
        for (device, mode), tests in groups.items():
            which = tests[0] if len(tests) == 1 else "(" + " OR ".join(f"({t})" for t in tests) + ")"
            texts.append(f"h.device = {literal(device)} AND h.power_mode = {literal(mode)} AND {which}")
        return texts[0] if len(texts) == 1 else "(" + " OR ".join(f"({t})" for t in texts) + ")"


class StructuredQuery(BaseModel):
    """What a question asks, as data. ``to_cypher()`` renders the query that runs.

    - ``subject``: what the answer lists (models or device x power modes);
    - ``conditions``: ANDed; ``order_by`` then ``limit``; ``count``: the answer is how many distinct subjects match
      (the query returns them DISTINCT and the count is the number of rows);
    - ``asked_rate_hz``: the rate a yes/no question about a pipeline asks about ("can pi05 run at 20 Hz on ..."): no
      condition, the answer's verdict (``services.ask``) compares each row's ``r.rate_hz`` with it;
    - ``readings``/``unparsed``/``notes``: how the question was read, the words not understood, the assumptions."""

    model_config = ConfigDict(extra="forbid")
    subject: Subject = "model"
    conditions: list[Condition] = Field(default_factory=list, max_length=MAX_CONDITIONS)
    order_by: list[Order] = Field(default_factory=list, max_length=MAX_ORDER)
    limit: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    count: bool = False
    asked_rate_hz: float | None = Field(default=None, gt=0, le=MAX_NUMBER)  # "can p run at 20 Hz?" asks about 20
    readings: list[Reading] = Field(default_factory=list)
    unparsed: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    compare: Comparison | None = None  # "is A faster than B on X", "A vs B", "how much faster on X than on Y"
    reasons: list[str] = Field(default_factory=list)  # why a meaning-carrying word was not understood
    relative: Relative | None = None  # 'faster than resnet18' (on the same target): ANDed with the conditions
    # 'does X fit on Y?', 'are there models under 10k params?': the answer starts with yes or no (``ask.verdict``);
    # 'is X the fastest model on Y?': ``claim`` X, left out of the conditions, is checked against the first row
    yes_no: bool = False
    claim: str | None = None
    # 'the 3 fastest models on Y': one row per model (its first by the ordering), the first ``limit`` models; the
    # query runs without LIMIT and ``first_per_subject`` keeps them (Cypher here has no per-group first row)
    per_subject: bool = False
    ordinal: int | None = Field(default=None, ge=2, le=MAX_LIMIT)  # 'the second fastest': only the row at that place
    # 'models under 5 ms on every jetson': only models with a row on each device the conditions name
    every_device: bool = False
    # 'the fastest model on each jetson', 'the 3 fastest models per device': the ordering's first ``limit`` subjects
    # on each device, each at its first row there (``first_per_device``); the query runs without LIMIT
    per_device: bool = False
    # 'how many models per family': with ``count``, the subjects counted per value of this field (``group_counts``)
    group_by: Literal["m.family", "m.task", "m.type", "m.format", "h.type", "h.vendor"] | None = None
    # 'are all models under 100k params': a yes/no about every subject, not about any (``ask.verdict.every_verdict``)
    universal: bool = False
    # 'how many power modes does the orin nano have': with ``count``, what is counted instead of the subject's name
    count_key: Literal["h.device_mode"] | None = None

    @property
    def understood(self) -> bool:
        """Every word that carries meaning was read (fillers aside): else the answer says so first."""
        return not self.unparsed and not self.reasons

    def variables(self) -> set[str]:
        used = {c.field.split(".")[0] for c in self.conditions} | {o.field.split(".")[0] for o in self.order_by}
        used.add({"model": "m", "hardware": "h", "pipeline": "p"}[self.subject])
        if self.relative is not None:
            used |= {"m", "h", "r"}
        return used

    def about_pipelines(self) -> bool:
        """A question about stored pipelines: the pattern is (p:Pipeline)-[r:RUNS_ON]->(h:Hardware)."""
        return "p" in self.variables()

    def joins(self) -> bool:
        """True when the query needs the Model (or Pipeline) -RUNS_ON-> Hardware pattern (not one kind of node)."""
        used = self.variables()
        return "r" in used or {"m", "h"} <= used or "p" in used

    def pattern(self) -> str:
        if self.about_pipelines():
            return "(p:Pipeline)-[r:RUNS_ON]->(h:Hardware)"
        if self.joins():
            return "(m:Model)-[r:RUNS_ON]->(h:Hardware)"
        return "(m:Model)" if "m" in self.variables() else "(h:Hardware)"

    def columns(self) -> list[str]:
        if self.count:
            key = self.count_key or self.subject_key()
            return [key] + ([self.group_by] if self.group_by and self.group_by[0] == key[0] else [])
        joined = self.joins()
        key = "pipeline-hardware" if self.subject == "hardware" and self.about_pipelines() else self.subject
        cols = list(_SUBJECT_COLUMNS[(key, joined)])
        extra = [c.field for c in self.conditions if c.op not in ("=", "IN") or c.field in _SHOWN_TEXT] + \
            [o.field for o in self.order_by]
        for f in extra:
            if f not in cols and (not is_text(f) or f in _SHOWN_TEXT) and (joined or f.split(".")[0] == cols[0][0]):
                cols.append(f)
        return cols

    def default_order(self) -> list[str]:
        if self.count:
            return [f"{self.columns()[0]} ASC"]
        if self.about_pipelines():
            return ["r.total_ms ASC"]
        if self.joins():
            return ["r.latency_ms ASC"]
        return ["m.name ASC"] if self.subject == "model" else ["h.device ASC", "h.power_w ASC"]

    def order_items(self) -> list[tuple[str, bool]]:
        """The ORDER BY as (field, descending): the question's ordering (else ``default_order``), then the returned
        fields that name a row (``_IDENTITY``) not ordered yet, ascending, so that rows tied on the asked ordering
        ('fastest' among copies of one model) come out in one order whichever engine walks the graph, and 'the 5
        fastest' are always the same 5. A count's DISTINCT names are their own order."""
        if self.count:
            return [(c, False) for c in reversed(self.columns())]  # grouped: by the group's value, then the name
        asked = [(o.field, o.descending) for o in self.order_by] or [
            (text.split()[0], text.split()[1] == "DESC") for text in self.default_order()]
        key = "pipeline-hardware" if self.subject == "hardware" and self.about_pipelines() else self.subject
        returned = set(self.columns())
        ordered = {f for f, _ in asked}
        return asked + [(f, False) for f in _IDENTITY[(key, self.joins())] if f in returned and f not in ordered]

    def subject_key(self) -> str:
        """The column that names the subject: m.name, h.device or p.name."""
        return {"model": "m.name", "hardware": "h.device", "pipeline": "p.name"}[self.subject]

    def kept_rows(self, columns: list[str], rows: list[list[Any]]) -> list[list[Any]]:
        """The answer's rows of the query's: for ``every_device``, those of models with a row on each device named;
        then ``first_per_subject``; then, for an ``ordinal``, only the row at that place (none when there are
        fewer)."""
        if self.every_device and {"m.name", "h.device"} <= set(columns) and "h.device" in self.selections():
            name, device = columns.index("m.name"), columns.index("h.device")
            wanted = set(self.selections()["h.device"])
            seen: dict = {}
            for row in rows:
                seen.setdefault(row[name], set()).add(row[device])
            rows = [row for row in rows if wanted <= seen[row[name]]]
        rows = self.first_per_device(columns, rows) if self.per_device else self.first_per_subject(columns, rows)
        if self.ordinal is not None:
            return rows[self.ordinal - 1:self.ordinal]
        return rows

    def first_per_device(self, columns: list[str], rows: list[list[Any]]) -> list[list[Any]]:
        """``per_device``: on each device (``h.device``), the first row of each of its first ``limit`` subjects (rows
        in the query's order, kept in it)."""
        if "h.device" not in columns or self.subject_key() not in columns:
            return rows
        return self._first_of_each(columns, rows, columns.index("h.device"))

    def first_per_subject(self, columns: list[str], rows: list[list[Any]]) -> list[list[Any]]:
        """``per_subject``: the first row of each subject (rows in the query's order), for the first ``limit``
        subjects; the rows as they are otherwise."""
        if not self.per_subject or self.subject_key() not in columns:
            return rows
        return self._first_of_each(columns, rows, None)

    def _first_of_each(self, columns: list[str], rows: list[list[Any]], group: int | None) -> list[list[Any]]:
        """The first row of each subject, for the first ``limit`` subjects: of all rows, or of each value of the
        column at ``group``."""
        at = columns.index(self.subject_key())
        seen: dict[Any, set] = {}
        out = []
        for row in rows:
            taken = seen.setdefault(None if group is None else row[group], set())
            if self.limit is not None and len(taken) >= self.limit:
                if group is None:
                    break  # every subject taken: no later row is kept
                continue
            if row[at] not in taken:
                taken.add(row[at])
                out.append(row)
        return out

    def to_cypher(self) -> str:
        """The Cypher query: MATCH pattern, WHERE conditions (ANDed; ordered fields must not be null), RETURN columns
        (DISTINCT subject names for a count), ORDER BY (latency, or the name, when the question gives none), LIMIT."""
        where = [c.cypher() for c in self.conditions]
        if self.relative is not None:
            where.append(self.relative.cypher())
        for o in self.order_by:
            null_check = f"NOT {o.field} IS NULL"
            if null_check not in where:
                where.append(null_check)
        parts = [f"MATCH {self.pattern()}"]
        if where:
            parts.append("WHERE " + " AND ".join(where))
        parts.append(("RETURN DISTINCT " if self.count else "RETURN ") + ", ".join(self.columns()))
        # a count returns DISTINCT names, which grand-cypher orders only by what is returned
        parts.append("ORDER BY " + ", ".join(f"{f} {'DESC' if d else 'ASC'}" for f, d in self.order_items()))
        if self.limit is not None and not self.count and not self.per_subject and not self.per_device:
            parts.append(f"LIMIT {self.limit}")
        return "\n".join(parts)

    def spec(self) -> dict[str, Any]:
        """The part that decides the rows (no readings/notes): what a tool call returns and tests compare."""
        spec = self.model_dump(mode="json", include=set(SPEC_KEYS))
        if self.per_subject:  # as relative: only when it applies
            spec["per_subject"] = True
        if self.ordinal is not None:
            spec["ordinal"] = self.ordinal
        if self.every_device:
            spec["every_device"] = True
        if self.per_device:
            spec["per_device"] = True
        if self.count_key is not None and self.count:
            spec["count_key"] = self.count_key
        if self.universal and self.yes_no:
            spec["universal"] = True
        if self.group_by is not None and self.count:  # as relative: only when asked
            spec["group_by"] = self.group_by
        if self.relative is not None:  # only when asked: the other answers' JSON stays as it was
            spec["relative"] = self.relative.model_dump(mode="json", exclude={"phrase", "thresholds"})
        return spec

    def selections(self) -> dict[str, list]:
        """Field -> the values it may take, from the conditions that pin a field to values (``=`` and ``IN``, not
        negated; ANDed, so several on one field intersect). Every row of the query has one of these values in each
        such field, so a graph left without the nodes and edges that have none gives the same rows
        (``ask.graph.keep_scope``)."""
        out: dict[str, list] = {}
        for c in self.conditions:
            if c.negate or c.op not in ("=", "IN") or c.value is None:
                continue
            try:  # the value the Cypher text states (literal() writes 15.0 as 15, for instance)
                values = [json.loads(literal(v)) for v in (c.value if isinstance(c.value, list) else [c.value])]
            except ValueError:  # inf or nan: nothing to select by
                continue
            out[c.field] = [v for v in values if v in out[c.field]] if c.field in out else values
        return out
