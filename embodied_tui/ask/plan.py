"""Plan a question before computing: what of the registry graph its query can match, so that only those models'
and devices' fit edges are read or computed (``services.graph``). Pure: no I/O.

A question's conditions are ANDed and each is on one variable (``m`` Model, ``h`` Hardware, ``r`` RUNS_ON), so a node
or edge that fails one can be in no row: ``plan`` turns every condition into a test that drops it. A test drops only
what the condition surely rejects, with grand-cypher's two-valued logic (a comparison with null is false, ``NOT`` of
it true): a field the node does not carry, a list or map value, an operator it does not know (``<>``), or a
comparison of a number with text keeps the node. Then, for an ordered question with a LIMIT on the Model -RUNS_ON-> Hardware pattern (one row per
edge), ``Top`` keeps only the edges that can be among the first ``limit`` rows: those whose ORDER BY key is at most the
``limit``-th smallest, ties included, so the rows and their order on the smaller graph are the same. For a count
(``RETURN DISTINCT m.name``) it keeps one edge per model (or device): the distinct names are the same; and
``where_decider`` reads the whole WHERE clause on a row, so that a count whose every kept row surely meets it is
answered from those rows (``services.ask``) without grand-cypher walking them. A 'faster than <model>' question
(``query.Relative``, an OR over targets) gets no cut and no decider: grand-cypher reads it.

The query that runs is the one shown (``StructuredQuery.to_cypher()``): planning changes what it walks, not what it
says.
"""
from __future__ import annotations

import json
import operator
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, Callable, Iterable

from embodied_tui.ask.graph import HARDWARE, MODEL, RUNS_ON, Scope, keep_scope, row_column
from embodied_tui.ask.query import FIELDS, StructuredQuery, literal

_LABELS = {"m": MODEL, "h": HARDWARE, "r": RUNS_ON}
_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _stated(value: Any) -> Any:
    """The value as the Cypher text states it (``literal`` writes 15.0 as 15)."""
    return json.loads(literal(value))


def _condition(field: str, op: str, value: Any) -> Callable[[dict], bool | None] | None:
    """The condition (not negated) on a node's or edge's properties: True or False where grand-cypher's answer is
    sure, None where it cannot be said here; None instead of a function when the value cannot be tested at all."""
    key = field.split(".", 1)[1]
    try:
        stated = None if value is None else _stated(value)
    except ValueError:  # inf or nan: not tested
        return None
    if any(isinstance(v, str) and ('"' in v or "\\" in v) for v in (stated if isinstance(stated, list) else [stated])):
        return None  # a text with quotes or escapes: as grand-cypher's grammar reads it, not tested here

    def base(props: dict) -> bool | None:  # the condition on props; None: cannot say
        if key not in props:
            return None
        v = props[key]
        if v is not None and not isinstance(v, (str, int, float)):  # a list or map (tags ...): Cypher's rules, not ours
            return None
        if op == "IS NOT NULL":
            return v is not None
        if op == "=":
            return v is not None and v == stated
        if op == "IN" and isinstance(stated, list):
            return v is not None and v in stated
        if op in _COMPARE and _number(stated):
            if v is None:
                return False
            return _COMPARE[op](v, stated) if _number(v) else None
        return None

    return base


def condition_test(field: str, op: str, value: Any, negate: bool) -> Callable[[dict], bool] | None:
    """A test of a node's or edge's properties that is false only where the condition surely is; None when the
    condition cannot be tested here (the node is kept)."""
    base = _condition(field, op, value)
    if base is None:
        return None

    def test(props: dict) -> bool:
        said = base(props)
        return True if said is None else (not said if negate else said)

    return test


def where_decider(parsed: StructuredQuery) -> Callable[[dict, dict, dict], bool | None] | None:
    """The whole WHERE clause of a question's query (its conditions ANDed, and ``NOT f IS NULL`` for each ordered
    field) on one row's Model, Hardware and RUNS_ON properties: True or False where every condition's answer is
    sure (as ``condition_test`` reads it), None where one cannot be said; None instead of a function when a condition
    cannot be tested at all (on another variable, or an untestable value)."""
    if parsed.relative is not None:  # an OR over targets: grand-cypher reads it
        return None
    parts: list[tuple[str, Callable[[dict], bool | None], bool]] = []
    for field, op, value, negate in [(c.field, c.op, c.value, c.negate) for c in parsed.conditions] + \
            [(o.field, "IS NOT NULL", None, False) for o in parsed.order_by]:
        variable = field.split(".")[0]
        base = _condition(field, op, value) if variable in _LABELS else None
        if base is None:
            return None
        parts.append((variable, base, negate))

    def decide(m: dict, h: dict, r: dict) -> bool | None:
        row = {"m": m, "h": h, "r": r}
        unsure = False
        for variable, base, negate in parts:
            said = base(row[variable])
            if said is None:
                unsure = True
            elif said == negate:  # this condition is surely false: so is the AND
                return False
        return None if unsure else True

    return decide


@dataclass(frozen=True)
class Top:
    """Keep the edges among the first ``limit`` rows of ORDER BY ``keys`` ((variable, property, descending), in
    order), ties at the last place included."""

    keys: tuple[tuple[str, str, bool], ...]
    limit: int
    distinct: tuple[str, str] | None = None  # (variable, property): keep one edge per value (a count's DISTINCT)
    # (variable, property) of the subject ('the 3 fastest models': m.name): the first edge of each of the first
    # ``limit`` subjects (``StructuredQuery.per_subject``); the key ends with the subject's value
    per: tuple[str, str] | None = None
    # 'the fastest model on each jetson' (``StructuredQuery.per_device``): the first ``limit`` subjects of each device
    # (the store's ranked read stops there on each), none cut across devices (``first_per_device`` picks them)
    each_device: bool = False
    # for a count: the WHERE clause on a row's (m, h, r) properties (``where_decider``), None where it cannot be read
    decide: Callable[[dict, dict, dict], bool | None] | None = dc_field(default=None, compare=False)

    def key(self, m: dict, h: dict, r: dict) -> tuple | None:
        """The edge's sort key (descending numbers negated), or its distinct value; None when it cannot be ranked
        (the edge is kept)."""
        if self.distinct is not None:
            v = {"m": m, "h": h, "r": r}[self.distinct[0]].get(self.distinct[1])
            return None if v is None else (v,)
        out = []
        for variable, prop, descending in self.keys:
            v = {"m": m, "h": h, "r": r}[variable].get(prop)
            if v is None or isinstance(v, bool):
                return None
            if descending:
                if not _number(v):
                    return None
                v = -v
            elif not isinstance(v, (int, float, str)):
                return None
            out.append(v)
        if self.per is not None:
            subject = {"m": m, "h": h, "r": r}[self.per[0]].get(self.per[1])
            if subject is None:
                return None
            out.append(subject)
        return tuple(out)


def cut(items: Iterable[tuple[tuple | None, Any]], top: Top | None) -> list[Any]:
    """The items (sort key, item) that ``top`` keeps, in their order, holding a few times ``limit`` of them at a time
    (plus ties). An item without a key (a field the edges do not carry) is always kept; every item when ``top`` is
    None."""
    if top is None or top.each_device:  # each device's first subjects: bounded by the store's read of each device
        return [item for _, item in items]
    if top.distinct is not None:  # the first edge of each distinct value
        seen: set = set()
        out = []
        for key, item in items:
            if key is None or key not in seen:
                out.append(item)
                if key is not None:
                    seen.add(key)
        return out
    if top.per is not None:  # each subject's first edge, for the first ``limit`` subjects (and ties)
        best: dict = {}
        always_kept: list[tuple[int, Any]] = []
        for i, (key, item) in enumerate(items):
            if key is None:
                always_kept.append((i, item))
            elif key[-1] not in best or key < best[key[-1]][0]:
                best[key[-1]] = (key, i, item)
        firsts = _first([(key[:-1], i, item) for key, i, item in best.values()], top.limit)
        return [item for _, item in sorted([(i, item) for _, i, item in firsts] + always_kept, key=lambda t: t[0])]
    kept: list[tuple[tuple, int, Any]] = []
    always: list[tuple[int, Any]] = []
    bound = max(4 * top.limit, 1024)
    for i, (key, item) in enumerate(items):
        if key is None:
            always.append((i, item))
            continue
        kept.append((key, i, item))
        if len(kept) > bound:
            kept = _first(kept, top.limit)
            bound = max(bound, 2 * len(kept))  # many ties at the last place: cut again only when it doubles
    kept = _first(kept, top.limit)
    return [item for _, item in sorted([(i, item) for _, i, item in kept] + always, key=lambda t: t[0])]


def _first(kept: list, limit: int) -> list:
    kept.sort(key=lambda t: t[0])
    if len(kept) <= limit:
        return kept
    last = kept[limit - 1][0]
    end = limit
    while end < len(kept) and kept[end][0] == last:
        end += 1
    return kept[:end]


def _stored(c) -> tuple[str, str, Any] | None:
    """A condition on a RUNS_ON field as (fit row column, op, value) that SQL reads as Cypher does (a comparison with
    null is false), or None: negated conditions, booleans and computed fields are left to the edge tests."""
    column = row_column(c.field) if c.field.startswith("r.") and not c.negate else None
    if column is None:
        return None
    try:
        value = _stated(c.value)
    except ValueError:
        return None
    if c.op in _COMPARE and _number(value):
        return column, c.op, value
    if c.op == "=" and (isinstance(value, str) or _number(value)):
        return column, "=", value
    if c.op == "IN" and isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return column, "IN", tuple(value)
    return None


def plan(parsed: StructuredQuery) -> tuple[Scope, Top | None]:
    """The scope of a parsed question (tests from all its conditions) and the top-k cut of its ordered, limited,
    one-row-per-edge queries. A pipeline question keeps the scope of its ``=``/``IN`` selections (``keep_scope``)."""
    if parsed.about_pipelines():
        return keep_scope(parsed.selections()), None
    tests: dict[str, list] = {}
    for c in parsed.conditions:
        variable = c.field.split(".")[0]
        if variable not in _LABELS:
            continue
        test = condition_test(c.field, c.op, c.value, c.negate)
        if test is not None:
            tests.setdefault(_LABELS[variable], []).append(test)
    for o in parsed.order_by:  # the query adds NOT <field> IS NULL for each ordered field
        variable = o.field.split(".")[0]
        if variable in _LABELS:
            tests.setdefault(_LABELS[variable], []).append(condition_test(o.field, "IS NOT NULL", None, False))

    stored = [(c, _stored(c)) for c in parsed.conditions]  # each condition as the fit store's SQL reads it, or None

    def joined(fns: list) -> Callable[[dict, str], bool]:
        return lambda props, _label, fns=tuple(fns): all(fn(props) for fn in fns)

    scope = Scope(node_tests=tuple((frozenset({label}), joined(fns)) for label, fns in tests.items()
                                   if label != RUNS_ON),
                  edge_tests=((frozenset({RUNS_ON}), joined(tests[RUNS_ON])),) if RUNS_ON in tests else (),
                  precisions=frozenset(map(str, parsed.selections()["r.precision"]))
                  if "r.precision" in parsed.selections() else None,
                  edge_where=tuple(w for _, w in stored if w is not None),
                  edge_where_whole=not any(o.field.startswith("r.") for o in parsed.order_by) and all(
                      w is not None for c, w in stored if c.field.startswith("r.")))
    top = None
    if parsed.relative is not None:  # 'faster than <model>' is not among the tests: every kept edge is walked
        return scope, None
    order = parsed.order_items()  # the asked ordering, then the fields that name a row: one order, fewer ties
    if parsed.joins() and parsed.limit is not None and not parsed.count and parsed.order_by and all(
            f.split(".")[0] in _LABELS and f in FIELDS
            and (FIELDS[f][0] == "number" or (FIELDS[f][0] == "text" and not descending))
            for f, descending in order):
        per = tuple(parsed.subject_key().split(".", 1)) if parsed.per_subject or parsed.per_device else None
        top = Top(tuple((f.split(".")[0], f.split(".", 1)[1], descending) for f, descending in order), parsed.limit,
                  per=per, each_device=parsed.per_device)
    elif parsed.joins() and parsed.count:  # RETURN DISTINCT <subject's name>: one edge per subject gives every row
        column = parsed.columns()[0]
        if column.split(".")[0] in ("m", "h") and len(parsed.columns()) == 1:
            top = Top((), 0, distinct=(column.split(".")[0], column.split(".", 1)[1]), decide=where_decider(parsed))
    return scope, top
