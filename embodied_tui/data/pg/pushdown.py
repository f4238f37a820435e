"""The filter language (``data/filters.py``) as an SQL ``WHERE`` clause on the ``models`` table.

The SQL never decides alone: it selects a *superset* of the records the filter matches, and the caller still tests
each record with ``filters.compile_filter`` (``services.models.list_models`` does). So a filter part SQL cannot say
exactly only makes the query return more rows, never other results than the TinyDB backend.

What goes down, exactly (same answer as the Python test, NULL for "unknown" handled as the language says: an unknown
value matches only ``!=`` and ``!~``):

- text fields ``name``, ``family``, ``type``, ``task``, ``format``, ``dtype`` and ``tags.KEY``, every operator: they are
  compared with the lower-cased copies stored beside each record (``*_lc``, ``tag_values_lc``), folded by Python's
  ``str.lower`` when written, so case folding is the filter language's own; ``<`` ``>`` compare with ``COLLATE "C"``
  (UTF-8 byte order = code point order = Python's); ``~`` is ``strpos`` (no LIKE pattern to escape);
- ``tags`` (``robot``, ``site=lab``): ``=`` ``!=`` on the ``tags_lc`` array (GIN index), ``~`` ``!~`` over its items;
- counts and byte sizes in their own unit (``params``, ``macs``, ``flops``, ``other_flops``, ``version``,
  ``weight_bytes``, ``activation_bytes``, ``size_bytes``): ``numeric`` columns against the exact decimal value of the
  parsed float, so ``params < 10M`` is exact as Python's int/float comparison is.

What goes down as a wider range (a superset, so never under NOT): the scaled fields ``gmacs``, ``gflops``,
``weight_mb``, ``activation_mb``, ``size_mb`` (Python divides, then compares a rounded float), widened by 1e-9
relative + 1. What stays in Python (``TRUE`` in SQL): plain words (fuzzy search), shapes, ``description``, ``path``,
``sha256``, ``registered_at``, and any OR or NOT over one of those.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from embodied_tui.data import filters

_TEXT = {"name": "name_lc", "family": "family_lc", "type": "type_lc", "task": "task_lc", "format": "format_lc",
         "dtype": "dtype_lc"}
_NUMBER = {"params": "params", "macs": "macs", "flops": "flops", "other_flops": "other_flops", "version": "version",
           "weight_bytes": "weight_bytes", "activation_bytes": "activation_bytes", "size_bytes": "size_bytes"}
_SCALED = {"gmacs": "macs", "gflops": "flops", "weight_mb": "weight_bytes", "activation_mb": "activation_bytes",
           "size_mb": "size_bytes"}
_SQL_OPS = {"=": "=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

Clause = tuple[str, list[Any], bool]  # (SQL, parameters, exact: selects exactly what the Python test matches)
_ANY: Clause = ("TRUE", [], False)


class _Comparison:
    __slots__ = ("field", "op", "value")

    def __init__(self, field: filters.Field, op: str, value: str):
        self.field, self.op, self.value = field, op, value


class _Parser(filters._Parser):
    """The filter language's own parser (same grammar, same errors), keeping each comparison's field, operator and
    value for translation."""

    def parse_comparison(self, field_tok: filters.Token) -> Any:
        start = self.i
        super().parse_comparison(field_tok)  # validates: a bad field or value is the same FilterError
        field = filters._lookup(field_tok.text)
        return _Comparison(field, self.tokens[start].text, self.tokens[start + 1].text)


def where(expr: str | None) -> tuple[str, list[Any]]:
    """A ``WHERE`` condition (with ``%s`` parameters) selecting a superset of what ``expr`` matches; FilterError for
    a bad expression."""
    sql, params, _ = _clause(_Parser(expr or "").parse())
    return sql, params


def _clause(node: Any) -> Clause:
    if isinstance(node, _Comparison):
        return _comparison(node)
    if isinstance(node, filters.Leaf):  # a plain word: fuzzy search stays in Python
        return _ANY
    kind = node[0]
    if kind == "all":
        return "TRUE", [], True
    if kind == "not":
        sql, params, exact = _clause(node[1])
        return (f"NOT ({sql})", params, True) if exact else _ANY
    parts = [_clause(p) for p in node[1]]
    exact = all(p[2] for p in parts)
    if kind == "or":
        if any(p[0] == "TRUE" for p in parts):
            return "TRUE", [], exact
        return " OR ".join(f"({p[0]})" for p in parts), [x for p in parts for x in p[1]], exact
    kept = [p for p in parts if p[0] != "TRUE"]
    if not kept:
        return "TRUE", [], exact
    return " AND ".join(f"({p[0]})" for p in kept), [x for p in kept for x in p[1]], exact


def _comparison(c: _Comparison) -> Clause:
    field, op = c.field, c.op
    if "\x00" in c.value or "\x00" in field.name:  # PostgreSQL text cannot hold NUL: leave it to Python
        return _ANY
    if field.kind in ("number", "bytes"):
        want = filters.parse_number(c.value, field)
        if field.name in _NUMBER:
            return _exact_number(_NUMBER[field.name], op, Decimal(want))
        if field.name in _SCALED:
            return _widened(_SCALED[field.name], op, want * field.scale)
        return _ANY
    want_text = c.value.lower()
    if field.kind == "tags":
        has = "tags_lc @> ARRAY[%s]::text[]" if op in ("=", "!=") else \
            "EXISTS (SELECT 1 FROM unnest(tags_lc) AS t WHERE strpos(t, %s) > 0)"
        return (f"NOT ({has})" if op in ("!=", "!~") else has), [want_text], True
    if field.kind != "text":
        return _ANY
    if field.name.startswith("tags."):
        column, params = "(tag_values_lc ->> %s)", [field.name[5:]]
    elif field.name in _TEXT:
        column, params = _TEXT[field.name], []
    else:
        return _ANY
    if op == "!=":
        return f"({column} IS NULL OR {column} <> %s)", params * 2 + [want_text], True
    if op == "!~":
        return f"({column} IS NULL OR strpos({column}, %s) = 0)", params * 2 + [want_text], True
    if op == "~":
        return f"COALESCE(strpos({column}, %s) > 0, false)", params + [want_text], True
    collate = "" if op == "=" else ' COLLATE "C"'
    return f"COALESCE({column}{collate} {_SQL_OPS[op]} %s, false)", params + [want_text], True


def _exact_number(column: str, op: str, want: Decimal) -> Clause:
    if op == "!=":
        return f"({column} IS NULL OR {column} <> %s)", [want], True
    return f"COALESCE({column} {_SQL_OPS[op]} %s, false)", [want], True


def _widened(column: str, op: str, raw: float) -> Clause:
    if op == "!=" or raw != raw or raw in (float("inf"), float("-inf")):
        return _ANY
    slack = Decimal(abs(raw) * 1e-9 + 1)
    low, high = Decimal(raw) - slack, Decimal(raw) + slack
    if op in ("<", "<="):
        return f"{column} <= %s", [high], False
    if op in (">", ">="):
        return f"{column} >= %s", [low], False
    return f"{column} BETWEEN %s AND %s", [low, high], False
