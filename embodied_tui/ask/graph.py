"""The registry as a property graph, queried in Cypher with grand-cypher.

Shape of the graph (a ``networkx.MultiDiGraph``; grand-cypher reads a node's or edge's labels from the set in its
``__labels__`` attribute)::

    (:Model {name, version, family, type, task, params, macs, gmacs, flops, gflops, other_flops, weight_bytes,
             weight_mb, activation_bytes, dtype, format, input_shape, input_shape_source, macs_complete, layers})
      -[:RUNS_ON {latency_ms, predicted_latency_ms, roofline_latency_ms, measured_latency_ms, bound,
                  arithmetic_intensity, ridge_point, precision, power_mode, power_w, fits_memory,
                  memory_headroom_bytes, fps, energy_mj, calibration}]->
    (:Hardware {device, name, aliases, vendor, type, power_mode, power_w, default_mode, memory_bytes, memory_gb,
                memory_bandwidth_gbps, peak_<precision>_tflops ...})
    (:Measurement {model, model_version, hardware, power_mode, precision, runtime, batch, latency_ms, source,
                   measured_at}) -[:OF]-> (:Model),  (:Measurement) -[:ON]-> (:Hardware)
    (:Pipeline {name, version, rate_hz, stages ...}) -[:RUNS_ON {total_ms, meets_rate, margin ...}]-> (:Hardware),
    (:Pipeline) -[:USES]-> (:Model)            (stored pipelines: ``ask.pipeline_graph``)

- **One Hardware node per device x power mode** (node id ``hw:<device id>@<mode>``), because a power budget belongs to
  the mode: ``h.power_w < 15`` has one answer per node only this way. ``h.device`` is the catalog id, ``h.name`` the
  device's name and ``h.power_mode`` the mode's name.
- **One RUNS_ON edge per precision**: a Model and a Hardware node are joined by parallel edges (one per precision the
  mode states a peak for). grand-cypher 1.2 matches each parallel edge as its own row, so no precision is lost.
- ``r.latency_ms`` is the calibrated roofline prediction (``predicted_latency_ms`` of ``services.fit``); the pure
  roofline lower bound is ``r.roofline_latency_ms`` and a stored measurement's median ``r.measured_latency_ms``.
- ``r.memory_headroom_bytes``: device memory (on-chip memory on devices without DRAM) minus what the model needs at
  the precision (weights + peak activations; weights alone on chip). None where the device states no capacity.
- A value we could not compute is None (never 0); a comparison with None is false, so such rows simply do not match.

grand-cypher 1.2.0's experimental index hints (``auto_where_hints``, ``auto_node_jsondata_hints``) are switched off:
on the registry graph they made ``WHERE m.name = "resnet_tiny" AND h.power_mode = "MAXN"`` return no rows while each
condition alone matched (tests/test_ask.py caught it). Without them a query walks every RUNS_ON edge: about 0.06 s for
1,000 edges, 0.6 s for 7,000 on one core. So ``services.ask.ask`` runs a question on a graph built with only the
nodes and edges its conditions allow, and for a LIMIT only the edges of its first rows (``ask.plan``), and ``query``
runs raw Cypher on a graph built with only what its MATCH pattern and WHERE clause can match (``query_scope``,
``build_graph(..., scope=)``): the node and edge labels the pattern names, less the nodes and edges that fail a condition of the WHERE
clause's top-level AND on one variable; the fit store reads only the precisions and RUNS_ON comparisons the WHERE
clause allows (``ask.cypher_scope``). Both keep the order in which grand-cypher walks the graph (node insertion
order; a model's devices x modes in the graph's order, whichever rows were computed), so the rows come out as on the
whole graph, in the same order.

Logic is grand-cypher's, two-valued: a comparison with a null value is false and ``NOT`` of it is true.

``run_cypher`` accepts single-quoted strings (grand-cypher's grammar takes only double quotes), keeps the column order
of the RETURN clause and turns lark's syntax errors into one ``CypherError`` line pointing at the column; any other
failure of grand-cypher is one CypherError line too.

**Bounds.** grand-cypher's cost is not bounded by a query's size (its Earley parser is about cubic in a chain of
AND/OR; unconnected MATCH parts multiply their matches; each variable-length edge multiplies the patterns tried).
``check_query`` refuses, before anything parses, a query over ``MAX_QUERY_CHARS``, with more than
``MAX_QUERY_CONDITIONS`` AND/OR, nested deeper than ``MAX_QUERY_DEPTH``, with an edge of more than ``MAX_HOPS`` hops,
or a SKIP/LIMIT that is not a whole number from 0 up (grand-cypher takes ``SKIP -1`` as "the last row"). Then the
query is parsed (``parse_cypher``) and run (``run_cypher``) in a forked child within a time and memory budget
(``ask.budget``): past it, one line ("query stopped after 10 s; narrow it ...").
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, NamedTuple

if TYPE_CHECKING:  # networkx is imported where a graph is built: a question answered without one never loads it
    import networkx as nx

from embodied_tui.ask.pipeline_graph import PIPELINE, PipelineFits, add_pipelines
from embodied_tui.errors import UserError

MODEL, HARDWARE, MEASUREMENT = "Model", "Hardware", "Measurement"
RUNS_ON, OF, ON = "RUNS_ON", "OF", "ON"



class FitEdge(NamedTuple):
    """What the graph reads of a fit row (``perf.fit_row.FitRow``, same field names): ``build_graph`` takes FitRows
    or these and builds the same graph. Every field after ``hardware`` is copied into the RUNS_ON edge, in this
    order (then ``latency_ms`` and ``memory_headroom_bytes``)."""

    model: str
    hardware: str
    predicted_latency_ms: float | None
    roofline_latency_ms: float | None
    measured_latency_ms: float | None
    bound: str | None
    arithmetic_intensity: float | None
    ridge_point: float | None
    precision: str
    power_mode: str
    power_w: float | None
    fits_memory: bool | None
    fps: float | None
    energy_mj: float | None
    calibration: str
    weight_bytes: float | None
    activation_bytes: float | None

    @classmethod
    def of(cls, row: Any) -> "FitEdge":
        """The fields of a FitRow (or another FitEdge) the graph reads."""
        return cls(*(getattr(row, key) for key in cls._fields))


ROW_KEYS = FitEdge._fields  # the fit row fields the graph reads: rows cut down to these build the same graph
_EDGE_KEYS = ROW_KEYS[2:]  # RUNS_ON edge properties copied from a fit row
_KINDS = {k: str(getattr(a, "__forward_arg__", a)) for k, a in FitEdge.__annotations__.items()}  # 'float | None'
NUMBER_COLUMNS = frozenset(k for k, kind in _KINDS.items() if kind in ("float", "float | None"))
TEXT_COLUMNS = frozenset(k for k, kind in _KINDS.items() if kind in ("str", "str | None"))
BOOL_COLUMNS = frozenset(k for k, kind in _KINDS.items() if kind in ("bool", "bool | None"))
_NAME_COLUMNS = {"m.name": "model", "h.device": "hardware", "h.power_mode": "power_mode"}


def row_column(field: str) -> str | None:
    """The fit row column that holds a query's ``field`` on a Model -RUNS_ON-> Hardware row: ``r.latency_ms`` is
    ``predicted_latency_ms`` (``edge_properties``), another RUNS_ON property its own column, and the row's model
    name, device and power mode (``m.name``, ``h.device``, ``h.power_mode``) theirs; None for any other field."""
    if field in _NAME_COLUMNS:
        return _NAME_COLUMNS[field]
    variable, _, prop = field.partition(".")
    if variable != "r":
        return None
    return "predicted_latency_ms" if prop == "latency_ms" else prop if prop in _EDGE_KEYS else None


class CypherError(UserError):
    """A Cypher query that does not parse or cannot run on the graph."""


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def model_node_id(name: str) -> str:
    return f"model:{name}"


def hardware_node_id(device: str, mode: str) -> str:
    return f"hw:{device}@{mode}"


def _shape_text(shapes: list[list[int]]) -> str:
    return ", ".join("x".join(str(d) for d in shape) for shape in shapes)


def model_properties(record: Any) -> dict[str, Any]:
    """The properties of a record's Model node (``m.name``, ``m.family`` ...)."""
    arch = _get(record, "architecture") or {}
    macs = _get(record, "macs")
    flops = _get(record, "flops")
    weight_bytes = _get(record, "weight_bytes")
    return {
        "name": _get(record, "name"), "version": _get(record, "version"),
        "family": _get(arch, "family"), "type": _get(arch, "type"), "task": _get(arch, "task"),
        "params": _get(record, "params"), "macs": macs, "gmacs": None if macs is None else macs / 1e9,
        "flops": flops, "gflops": None if flops is None else flops / 1e9, "other_flops": _get(record, "other_flops"),
        "weight_bytes": weight_bytes, "weight_mb": None if weight_bytes is None else weight_bytes / 1e6,
        "activation_bytes": _get(record, "activation_bytes"), "dtype": _get(record, "dtype"),
        "format": _get(record, "format"), "input_shape": _shape_text(_get(record, "input_shapes") or []),
        "input_shape_source": _get(record, "input_shape_source"), "macs_complete": _get(record, "macs_complete"),
        "layers": sum((_get(record, "layers") or {}).values()),
    }


def hardware_properties(entry: Any, mode: Any) -> dict[str, Any]:
    """The properties of a device x power mode's Hardware node."""
    memory = _get(entry, "memory_bytes")
    props = {
        "device": _get(entry, "id"), "name": _get(entry, "name"), "aliases": list(_get(entry, "aliases") or []),
        "vendor": _get(entry, "vendor"),
        "type": _get(entry, "type"), "power_mode": _get(mode, "name"), "power_w": _get(mode, "power_w"),
        "device_mode": f"{_get(entry, 'id')}/{_get(mode, 'name')}",  # one device's mode ('its lowest power mode')
        "default_mode": _get(mode, "name") == _get(entry, "default_mode"),
        "memory_bytes": memory, "memory_gb": None if memory is None else memory / 1e9,
        "onchip_memory_bytes": _get(entry, "onchip_memory_bytes"),
        "memory_bandwidth_gbps": _get(mode, "memory_bandwidth_gbps"),
        "host": _get(entry, "host"),  # the device an accelerator is paired with (a Hailo-8L on a Pi 5), else None
    }
    for precision, peak in (_get(mode, "peak_tflops") or {}).items():
        props[f"peak_{precision}_tflops"] = peak
    return props


def edge_properties(row: FitEdge, hardware: dict) -> dict[str, Any]:
    """The properties of a fit row's RUNS_ON edge to the Hardware node with properties ``hardware``."""
    if isinstance(row, tuple):  # a FitEdge: its fields after model and hardware, in order
        props = dict(zip(_EDGE_KEYS, row[2:]))
    else:  # a FitRow
        props = {key: getattr(row, key) for key in _EDGE_KEYS}
    props["latency_ms"] = row.predicted_latency_ms
    props["memory_headroom_bytes"] = memory_headroom(row, hardware)
    return props


def memory_headroom(row: FitEdge, hardware: dict) -> float | None:
    """Device memory minus what the model needs at the row's precision (bytes); None without a stated capacity.

    On devices with DRAM: ``memory_bytes - (weight_bytes + activation_bytes)``; on devices without DRAM (no
    bandwidth stated): ``onchip_memory_bytes - weight_bytes``."""
    weights = row.weight_bytes
    if weights is None:
        return None
    if hardware.get("memory_bandwidth_gbps") is None:
        cap = hardware.get("onchip_memory_bytes")
        return None if cap is None else float(cap - weights)
    cap = hardware.get("memory_bytes")
    if cap is None:
        return None
    return float(cap - weights - (row.activation_bytes or 0.0))


@dataclass(frozen=True)
class Scope:
    """What of the graph a query can match (``query_scope``). ``labels``/``edge_labels``: the node and edge labels
    kept (None: all); ``node_tests``/``edge_tests``: (labels, test) pairs, a node or edge carrying one of the labels
    is kept only when ``test(properties)`` holds; ``precisions``: what the edge tests allow of ``r.precision``, so
    that fits at other precisions are not computed; ``edge_where``: conditions on the stored fit row columns
    (``ROW_KEYS``) that every kept edge meets, read by the fit store before the edge tests run. ``Scope()`` keeps
    the whole graph."""

    labels: frozenset[str] | None = None
    edge_labels: frozenset[str] | None = None
    node_tests: tuple[tuple[frozenset[str], Callable[[dict, str], bool]], ...] = ()
    edge_tests: tuple[tuple[frozenset[str], Callable[[dict, str], bool]], ...] = ()
    precisions: frozenset[str] | None = None  # the precisions a Model's RUNS_ON edge may have (None: any)
    edge_where: tuple[tuple[str, str, Any], ...] = ()  # (fit row column, op, value) every kept edge meets (SQL-safe)
    edge_where_whole: bool = False  # ``edge_where`` says all the edge tests say: a stored row that meets it is kept

    def has(self, label: str) -> bool:
        return self.labels is None or label in self.labels

    def has_edge(self, label: str, source: str, target: str) -> bool:
        """Whether edges of ``label`` from ``source`` to ``target`` nodes can be in the graph."""
        return (self.edge_labels is None or label in self.edge_labels) and self.has(source) and self.has(target)

    def keeps(self, label: str, props: dict[str, Any]) -> bool:
        return self.has(label) and all(test(props, label) for labels, test in self.node_tests if label in labels)

    def keeps_edge(self, label: str, props: dict[str, Any]) -> bool:
        return all(test(props, label) for labels, test in self.edge_tests if label in labels)


WHOLE = Scope()
_VARIABLES = {MODEL: "m", HARDWARE: "h", RUNS_ON: "r", PIPELINE: "p"}  # the variables of ``ask``'s queries


def keep_scope(keep: Mapping[str, list] | None) -> Scope:
    """A question's selections (``StructuredQuery.selections()``: ``{"h.device": ["raspberry-pi-5"]}``) as a Scope:
    the Model, Hardware nodes and RUNS_ON edges its variable (m, h, r) binds are kept only when each of their fields
    in ``keep`` has one of its values (compared with ``==``, as Cypher's ``=`` and ``IN`` are on this graph; a null
    matches nothing)."""
    tests = {}
    for label, variable in _VARIABLES.items():
        fields = {f[len(variable) + 1:]: values for f, values in (keep or {}).items() if f.startswith(variable + ".")}
        if fields:
            tests[label] = (frozenset({label}),
                            lambda props, _label, fields=fields: all(props.get(f) in v for f, v in fields.items()))
    return Scope(node_tests=tuple(t for label, t in tests.items() if label != RUNS_ON),
                 edge_tests=(tests[RUNS_ON],) if RUNS_ON in tests else ())


def build_graph(records: Iterable[Any], devices: Iterable[Any], fit_rows: Iterable[FitEdge],
                measurements: Iterable[Any] = (), *, scope: Scope = WHOLE, pipelines: Iterable[Any] = (),
                pipeline_fits: PipelineFits | None = None) -> nx.MultiDiGraph:
    """The property graph of models, device x power modes, their fits and measurements (see the module docstring).

    ``records``: ModelRecords (or dicts with their keys); ``devices``: HardwareEntries; ``fit_rows``: the
    ``FitRow``s of ``services.fit`` or their ``FitEdge``s (the fields read); ``measurements``:
    ``perf.bench.Measurement`` objects or dicts. A fit row or measurement naming a model or device x mode that is not
    in the graph adds no edge (it is not invented).

    ``scope``: leave out the labels and the nodes and edges a query cannot match (``query_scope`` for raw Cypher,
    ``keep_scope`` for a question's selections). A query returns the same rows on the smaller graph, and walks fewer
    edges.

    The RUNS_ON edges of a model x device x mode go in together, models in the order of ``records``, then devices x
    modes in the order of ``devices`` (the parallel edges of a pair in the order of their rows): a node's neighbours
    then come in the same order whichever edges or rows are left out, computed or not (grand-cypher walks them in that
    order), so a query planned to fewer precisions or fit rows gives the whole graph's rows in the same order.

    ``pipelines``: stored pipelines (``data.pipeline_store.StoredPipeline``), added last with their RUNS_ON edges
    from ``pipeline_fits`` and USES edges (``ask.pipeline_graph``)."""
    import networkx as nx

    g = nx.MultiDiGraph()
    for record in records if scope.has(MODEL) else ():
        props = model_properties(record)
        if not scope.keeps(MODEL, props):
            continue
        g.add_node(model_node_id(props["name"]), __labels__={MODEL}, **props)
    modes: dict[tuple[str, str], str] = {}  # (device id, casefolded mode) -> node id
    for entry in devices if scope.has(HARDWARE) else ():
        for mode in _get(entry, "power_modes") or []:
            node, props = hardware_node_id(_get(entry, "id"), _get(mode, "name")), hardware_properties(entry, mode)
            if not scope.keeps(HARDWARE, props):
                continue
            g.add_node(node, __labels__={HARDWARE}, **props)
            modes[(_get(entry, "id"), str(_get(mode, "name")).casefold())] = node
    pairs: dict[tuple[str, str], list[tuple[str, dict]]] = {}  # in the order of each pair's first row
    for row in fit_rows if scope.has_edge(RUNS_ON, MODEL, HARDWARE) else ():
        src, dst = model_node_id(row.model), hardware_node_id(row.hardware, row.power_mode)
        if src not in g or dst not in g:
            continue
        edges = pairs.setdefault((src, dst), [])
        props = edge_properties(row, g.nodes[dst])
        if not scope.keeps_edge(RUNS_ON, props):
            continue
        edges.append((row.precision, props))
    place = {node: i for i, node in enumerate(g)}  # a model's devices in the graph's order, whatever rows came
    for (src, dst), edges in sorted(pairs.items(), key=lambda item: (place[item[0][0]], place[item[0][1]])):
        for precision, props in edges:
            g.add_edge(src, dst, key=precision, __labels__={RUNS_ON}, **props)
    for i, m in enumerate(measurements if scope.has(MEASUREMENT) else ()):
        data = m.model_dump(mode="json") if hasattr(m, "model_dump") else dict(m)
        props = {k: data.get(k) for k in ("model", "model_version", "hardware", "power_mode", "precision", "runtime",
                                          "batch", "latency_ms", "p90_ms", "source", "measured_at")}
        if not scope.keeps(MEASUREMENT, props):
            continue
        node = f"measurement:{i}"
        g.add_node(node, __labels__={MEASUREMENT}, **props)
        model = model_node_id(data["model"])
        if model in g and scope.has_edge(OF, MEASUREMENT, MODEL) and scope.keeps_edge(OF, {}):
            g.add_edge(node, model, __labels__={OF})
        hw = modes.get((data["hardware"], str(data["power_mode"]).casefold()))
        if hw is not None and scope.has_edge(ON, MEASUREMENT, HARDWARE) and scope.keeps_edge(ON, {}):
            g.add_edge(node, hw, __labels__={ON})
    add_pipelines(g, list(pipelines), pipeline_fits, scope, modes, model_node_id, (RUNS_ON, HARDWARE, MODEL))
    return g


# ------------------------------------------------------------------------------------------------- query scope

def query_scope(text: str, *, fast: bool | None = None, tree: Any = None) -> Scope:
    """What of the graph a Cypher query can match: the node and edge labels its MATCH pattern names (when every node
    and edge of the pattern has a label) and, from its WHERE clause's top-level AND, the conditions that compare one
    node's or edge's properties with constants (when no other variable of the pattern can bind that node or edge).

    A query this cannot read safely gets ``WHOLE``: one that does not parse (``run_cypher`` reports it), with
    variable-length or undirected edges, a cycle, paths, subqueries, list predicates or functions in its WHERE clause
    (which may raise on a row the scope would drop: the error must stay). Leaving out what a query cannot match keeps
    every row it returns, in the same order (see ``build_graph``).

    The query is read from grand-cypher's parsed form (private attributes) in ``ask.cypher_scope``; with
    ``EMBODIED_AI_NO_FASTPATH=1`` (or ``fast=False``), or a grand-cypher whose parsed form is not the one that module
    knows, the scope is ``WHOLE``. ``tree``: the query's parse tree (``parse_cypher``), else it is parsed here (within
    the query budget)."""
    from embodied_tui.ask.cypher_scope import read_scope

    return read_scope(text, fast=fast, tree=tree)


# ------------------------------------------------------------------------------------------------- running Cypher

_SINGLE_QUOTED = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'((?:[^'\\]|\\.)*)'")


def _double_quotes(text: str) -> str:
    """'text' -> "text" outside double-quoted strings (same length, so error columns stay right)."""

    def swap(match: re.Match) -> str:
        if match.group(1) is None or '"' in match.group(1):
            return match.group(0)
        return f'"{match.group(1)}"'

    return _SINGLE_QUOTED.sub(swap, text)


_TERMINALS = {"CNAME": "a name", "ESTRING": 'a "string"', "NUMBER": "a number", "LPAR": "(", "RPAR": ")",
              "LSQB": "[", "RSQB": "]", "LBRACE": "{", "RBRACE": "}", "COMMA": ",", "DOT": ".", "COLON": ":",
              "VBAR": "|", "EQUAL": "=", "MORETHAN": ">", "LESSTHAN": "<", "LEFT_ANGLE": "<", "RIGHT_ANGLE": ">",
              "MINUS": "-", "PLUS": "+", "STAR": "*", "SLASH": "/", "PERCENT": "%", "AGGREGATE_FUNC": "COUNT/MIN/...",
              "ID": "id(", "TOLOWER": "toLower(", "TOUPPER": "toUpper(", "TRIM": "trim(", "SIZE": "size(",
              "COALESCE": "coalesce("}


def _shown(text: str, limit: int = 300) -> str:
    """The query as an error message quotes it: on one line, cut at ``limit`` characters."""
    one = re.sub(r"\s*[\r\n]+\s*", " ", str(text).strip())
    return one if len(one) <= limit else one[:limit] + " ..."


def _syntax_message(exc: Exception, text: str) -> str:
    """One line: where the query stops parsing, the word there and what could come instead."""
    line, column = getattr(exc, "line", -1), getattr(exc, "column", -1)
    token = getattr(exc, "token", None)
    if line is None or line < 1 or (token is not None and getattr(token, "type", "") in ("$END", "<EOF>")):
        where, near = "at the end of the query", ""
    else:
        where = f"at column {column}" if line == 1 else f"at line {line}, column {column}"
        rest = text.splitlines()[line - 1][column - 1:] if line <= len(text.splitlines()) else ""
        word = re.match(r"\w+|\S", rest)
        near = f" near {word.group(0)!r}" if word else ""
    expected = getattr(exc, "expected", None) or getattr(exc, "allowed", None) or []
    shown = sorted({_TERMINALS.get(e, e) for e in expected if not e.startswith("__")})[:8]
    hint = f" (expected {', '.join(shown)})" if shown else ""
    return f"Cypher syntax error {where}{near}{hint}: {_shown(text)}"


def _split_top(text: str, sep: str = ",") -> list[str]:
    parts, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _return_items(text: str) -> list[str]:
    """The column names the RETURN clause asks for, in order (alias where given)."""
    blanked = re.sub(r"\"(?:[^\"\\]|\\.)*\"", lambda m: "_" * len(m.group(0)), text)
    found = list(re.finditer(r"\breturn\b", blanked, re.IGNORECASE))
    if not found:
        return []
    start = found[-1].end()
    end_match = re.search(r"\b(order\s+by|skip|limit)\b", blanked[start:], re.IGNORECASE)
    clause = text[start:start + end_match.start()] if end_match else text[start:]
    clause = re.sub(r"^\s*distinct\b", "", clause, flags=re.IGNORECASE)
    items = []
    for item in _split_top(clause):
        alias = re.search(r"\bas\s+(\w+)\s*$", item, re.IGNORECASE)
        items.append(alias.group(1) if alias else item)
    return items


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", str(text)).casefold()


def _plain(value: Any) -> Any:
    if isinstance(value, set):
        return sorted(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if k != "__labels__"} | (
            {"labels": sorted(value["__labels__"])} if "__labels__" in value else {})
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ------------------------------------------------------------------------------------------------- limits
# Static limits, checked on the text before anything parses it. grand-cypher's Earley parser is about cubic in a chain
# of AND/OR conditions (40: 0.2 s; 150: 5 s and 250 MB; 300: 45 s and 1.5 GB) and superlinear in nesting; each
# variable-length edge multiplies the patterns matched (``*1..99``: 20 s on a 50-node graph). What they do not
# bound (a pattern of unconnected parts multiplies their matches) the time and memory budget does (``ask.budget``).
MAX_QUERY_CHARS = 5_000
MAX_QUERY_CONDITIONS = 40  # AND / OR in the whole query
MAX_QUERY_DEPTH = 40  # nesting of ( [ {
MAX_HOPS = 10  # the longest variable-length edge, *1..10 (the registry graph's longest path has 2 edges)
MAX_SKIP_LIMIT_DIGITS = 15


class QueryLimitError(CypherError):
    """A query past a static limit (size, conditions, nesting, hops, SKIP/LIMIT)."""


_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"?|'(?:[^'\\]|\\.)*'?")
_BOOLEAN = re.compile(r"(?<![\w.$])(?:and|or)(?![\w$])", re.IGNORECASE)
_HOPS = re.compile(r"-\[[^\]\[*]*\*\s*(\d+)\s*(?:\.\.\s*(\d+))?")
_PAGING = re.compile(r"(?<![\w.$])(skip|limit)\s+([-+.\d][\w.+-]*)", re.IGNORECASE)


def _blank_strings(text: str) -> str:
    """The text with the inside of every string literal blanked (same length): keywords in strings are not seen."""
    return _STRING.sub(lambda m: m.group(0)[0] + "_" * (len(m.group(0)) - 1), text)


def _depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth = max(depth - 1, 0)
    return deepest


def check_query(text: str) -> str:
    """The query grand-cypher is given (single quotes made double, no trailing ';'), after the static limits: one
    QueryLimitError line for a query too long, with too many AND/OR, nested too deeply, with a variable-length edge
    too long, or a SKIP/LIMIT that is not a whole number from 0 up."""
    if not isinstance(text, str) or not text.strip():
        raise CypherError("empty Cypher query; try: MATCH (m:Model) RETURN m.name")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryLimitError(f"Cypher query too long ({len(text):,} characters; the limit is {MAX_QUERY_CHARS:,})")
    query = _double_quotes(text).strip().rstrip(";").strip()
    if not query:
        raise CypherError("empty Cypher query; try: MATCH (m:Model) RETURN m.name")
    blank = _blank_strings(query)
    conditions = len(_BOOLEAN.findall(blank))
    if conditions > MAX_QUERY_CONDITIONS:
        raise QueryLimitError(f"Cypher query has {conditions} AND/OR (the limit is {MAX_QUERY_CONDITIONS}): use "
                              f"IN [...] for the values of one field, or split it into several queries")
    depth = _depth(blank)
    if depth > MAX_QUERY_DEPTH:
        raise QueryLimitError(f"Cypher query nested too deeply (depth {depth}; the limit is {MAX_QUERY_DEPTH})")
    for match in _HOPS.finditer(blank):
        hops = max(int(h) for h in match.groups() if h is not None)
        if hops > MAX_HOPS:
            raise QueryLimitError(f"variable-length edge of up to {hops} hops (the limit is {MAX_HOPS}; the "
                                  f"registry graph's longest path has 2 edges)")
    for match in _PAGING.finditer(blank):
        word, value = match.group(1).upper(), match.group(2)
        if not value.isdigit() or not value.isascii():
            raise QueryLimitError(f"{word} takes a whole number of rows from 0 up, got {value}")
        if len(value.lstrip("0")) > MAX_SKIP_LIMIT_DIGITS:
            raise QueryLimitError(f"{word} {value[:20]}... is too large (at most {MAX_SKIP_LIMIT_DIGITS} digits)")
    return query


# ------------------------------------------------------------------------------------------------- parsing and running

def _syntax_error(exc: Exception, text: str) -> CypherError:
    from lark.exceptions import UnexpectedInput

    if isinstance(exc, UnexpectedInput):
        return CypherError(_syntax_message(exc, text))
    detail = str(getattr(exc, "orig_exc", exc)).splitlines()
    return CypherError(f"Cypher query cannot run: {detail[0] if detail else type(exc).__name__}: {_shown(text)}")


def _parse(query: str, text: str) -> Any:
    """grand-cypher's parse tree of ``query`` (in the budgeted child); CypherError for a syntax error."""
    from grandcypher import _GrandCypherGrammar
    from lark.exceptions import LarkError

    try:
        return _GrandCypherGrammar.parse(query)
    except LarkError as exc:
        raise _syntax_error(exc, text) from None
    except RecursionError:
        raise CypherError(f"Cypher query nested too deeply to parse: {_shown(text)}") from None


def parse_cypher(text: str) -> Any:
    """The parse tree of a Cypher query (grand-cypher's grammar, a lark Tree), parsed within the query budget
    (``ask.budget``) after the static limits (``check_query``). CypherError (one line) for a query that does not
    parse or breaks a limit, BudgetExceeded past the budget; None when the tree cannot be sent back (deeply nested):
    ``run_cypher`` then parses it again."""
    from embodied_tui.ask.budget import Unsendable, run_within_budget

    query = check_query(text)
    _import_engine()
    try:
        return run_within_budget(_parse, query, text, what="query", error=CypherError)
    except Unsendable:
        return None


def _import_engine() -> None:
    """grand-cypher (and its grammar) and what runs it imported here, once, so a forked child does not import them
    again (for each query)."""
    import grandcypher  # noqa: F401

    import embodied_tui.ask.cypher_scope  # noqa: F401


_CANNOT_RUN = (NotImplementedError, KeyError, TypeError, ValueError, AttributeError, IndexError, AssertionError,
               ArithmeticError, LookupError)


def _run(graph: nx.MultiDiGraph, query: str, text: str, tree: Any) -> tuple[list[str], list[list[Any]]]:
    """The query on the graph, in this process: ``(columns, rows)``; CypherError (one line) for any failure."""
    from grandcypher import GrandCypher
    from lark.exceptions import LarkError

    from embodied_tui.ask.cypher_scope import run_parsed

    engine = GrandCypher(graph)
    engine.auto_where_hints = False  # see the module docstring: the experimental index hints lose rows
    engine.auto_node_jsondata_hints = False
    try:
        result = engine.run(query) if tree is None else run_parsed(engine, tree, query)
    except LarkError as exc:
        raise _syntax_error(exc, text) from None
    except RecursionError:
        raise CypherError(f"Cypher query nested too deeply to run: {_shown(text)}") from None
    except MemoryError:
        raise
    except _CANNOT_RUN as exc:
        detail = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CypherError(f"Cypher query cannot run: {detail} (labels: Model, Hardware, Measurement; "
                          f"edges: RUNS_ON, OF, ON): {_shown(text)}") from None
    except Exception as exc:  # noqa: BLE001 (grand-cypher may raise anything on a query it cannot run)
        detail = str(exc).splitlines()[0] if str(exc).strip() else ""
        raise CypherError(f"Cypher query cannot run: {type(exc).__name__}{': ' + detail if detail else ''}: "
                          f"{_shown(text)}") from None
    try:
        keys = list(result.keys())
        names = {_norm(k): k for k in keys}
        ordered = [names.pop(_norm(item)) for item in _return_items(query) if _norm(item) in names]
        ordered += [k for k in keys if k not in ordered]
        columns = [str(k) for k in ordered]
        length = max((len(result[k]) for k in ordered), default=0)
        rows = [[_plain(result[k][i]) if i < len(result[k]) else None for k in ordered] for i in range(length)]
    except (TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise CypherError(f"Cypher query gave a result that cannot be shown ({type(exc).__name__}): "
                          f"{_shown(text)}") from None
    return columns, rows


def run_cypher(graph: nx.MultiDiGraph, text: str, *, tree: Any = None) -> tuple[list[str], list[list[Any]]]:
    """Run a Cypher query on the graph: ``(columns, rows)`` in the RETURN clause's order.

    The static limits first (``check_query``), then the query runs in a forked child within the time and memory
    budget (``ask.budget``: BudgetExceeded past it). ``tree``: the query's parse tree (``parse_cypher``), not parsed
    again. Every failure is one line: CypherError (a UserError) or BudgetExceeded."""
    from embodied_tui.ask.budget import run_within_budget

    query = check_query(text)
    _import_engine()
    return run_within_budget(_run, graph, query, text, tree, what="query", error=CypherError)
