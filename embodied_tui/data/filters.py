"""The filter language for `model list --filter`, the TUI's `/` box and `--sort`.

    family = yolo AND params < 10M AND gmacs <= 5
    tags.site = lab OR (type = transformer AND NOT format = onnx)
    input = 1x3x224x224
    resnet robot                      # plain words: fuzzy text search over name, family, type, task, format, tags

Grammar: ``expr := term (OR term)*``, ``term := factor ([AND] factor)*`` (adjacent factors are ANDed),
``factor := NOT factor | '(' expr ')' | FIELD OP VALUE | WORD``. Keywords are case-insensitive.
Operators: ``=`` (also ``==``) ``!=`` ``<`` ``<=`` ``>`` ``>=`` ``~`` (contains) ``!~`` (does not contain).
Text compares case-insensitively. Quote values with spaces: ``description ~ "pick and place"``.
An expression is at most ``MAX_FILTER_CHARS`` (2,000) characters, with at most ``MAX_FILTER_DEPTH`` (32) parentheses and
NOTs inside one another; past either, one FilterError line.

Numbers take count units K, M, G, T (1e3 steps; ``params < 10M``); byte fields also take B, KB, MB, GB, TB (1e3 steps)
and KiB, MiB, GiB (1024 steps). A value without a unit is in the field's own unit: ``weight_mb < 20`` is 20 MB,
``gmacs <= 5`` is 5e9 MACs; with a unit it is converted (``weight_mb < 1GB`` is 1000 MB).
A field whose value is unknown (``macs`` of a model we could not count) matches only ``!=`` and ``!~``.
"""
from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from embodied_tui.data.records import ModelRecord
from embodied_tui.errors import UserError

Predicate = Callable[[ModelRecord], bool]


class FilterError(UserError):
    """A filter or sort expression that does not parse; ``column`` is 1-based."""

    def __init__(self, expr: str, column: int, why: str):
        self.expr, self.column, self.why = expr, column, why
        super().__init__(f"bad filter at column {column}: {why}")

    def caret(self) -> str:
        """The expression with a caret under the bad token (two lines), for places with room for it."""
        return f"{self.expr}\n{' ' * (self.column - 1)}^"


# ------------------------------------------------------------------------------------------------------------ fields
def _shape(dims: Sequence[int]) -> str:
    return "x".join(str(d) for d in dims)


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "text" | "number" | "bytes" | "shapes" | "tags"
    get: Callable[[ModelRecord], Any]
    scale: float = 1.0  # field value = raw value / scale ("gmacs" = macs / 1e9)
    help: str = ""


def _div(attr: str, scale: float) -> Callable[[ModelRecord], float | None]:
    def get(r: ModelRecord) -> float | None:
        value = getattr(r, attr)
        return None if value is None else value / scale
    return get


def _attr(attr: str) -> Callable[[ModelRecord], Any]:
    return lambda r: getattr(r, attr)


_FIELD_LIST = [
    Field("name", "text", _attr("name"), help="registered name"),
    Field("family", "text", lambda r: r.architecture.family, help="architecture family (resnet, yolo, vit, lstm ...)"),
    Field("type", "text", lambda r: r.architecture.type, help="cnn, transformer, rnn, mlp, hybrid"),
    Field("task", "text", lambda r: r.architecture.task, help="classification, detection, segmentation, policy ..."),
    Field("format", "text", _attr("format"), help="torchscript, exported_program, onnx, state_dict, safetensors"),
    Field("dtype", "text", _attr("dtype"), help="stored weight dtype"),
    Field("description", "text", _attr("description"), help="free text"),
    Field("path", "text", _attr("path"), help="model file path"),
    Field("sha256", "text", _attr("sha256"), help="model file hash (use ~ for a prefix)"),
    Field("registered_at", "text", _attr("registered_at"), help="ISO 8601 time (compare with < >)"),
    Field("version", "number", _attr("version"), help="version number"),
    Field("params", "number", _attr("params"), help="parameters"),
    Field("macs", "number", _attr("macs"), help="multiply-accumulates (conv, linear, matmul, attention)"),
    Field("gmacs", "number", _div("macs", 1e9), 1e9, help="MACs in billions"),
    Field("flops", "number", _attr("flops"), help="2 x MACs"),
    Field("gflops", "number", _div("flops", 1e9), 1e9, help="FLOPs in billions"),
    Field("other_flops", "number", _attr("other_flops"), help="elementwise and normalisation work"),
    Field("weight_bytes", "bytes", _attr("weight_bytes"), help="parameters + buffers as stored"),
    Field("weight_mb", "bytes", _div("weight_bytes", 1e6), 1e6, help="weight bytes in MB (1e6)"),
    Field("activation_bytes", "bytes", _attr("activation_bytes"), help="peak live activation memory"),
    Field("activation_mb", "bytes", _div("activation_bytes", 1e6), 1e6, help="activation bytes in MB (1e6)"),
    Field("size_bytes", "bytes", _attr("size_bytes"), help="model file size"),
    Field("size_mb", "bytes", _div("size_bytes", 1e6), 1e6, help="model file size in MB (1e6)"),
    Field("input", "shapes", lambda r: [_shape(s) for s in r.input_shapes], help="an input shape, as 1x3x224x224"),
    Field("output", "shapes", lambda r: [_shape(s) for s in r.output_shapes], help="an output shape"),
    Field("tags", "tags", lambda r: [k if not v else f"{k}={v}" for k, v in r.tags.items()],
          help="a tag, as robot or site=lab; tags.KEY for one tag's value"),
]
FIELDS: dict[str, Field] = {f.name: f for f in _FIELD_LIST}
_ALIASES = {"gmac": "gmacs", "param": "params", "tag": "tags", "arch": "type", "fmt": "format", "shape": "input",
            "inputs": "input", "outputs": "output"}


def _tag_field(key: str) -> Field:
    return Field(f"tags.{key}", "text", lambda r: r.tags.get(key), help=f"value of tag {key}")


def field_names() -> list[str]:
    return list(FIELDS) + ["tags.KEY"]


def _lookup(name: str) -> Field | None:
    low = name.lower()
    if low.startswith("tags.") and len(name) > 5:
        return _tag_field(name[5:])
    return FIELDS.get(low) or FIELDS.get(_ALIASES.get(low, ""))


def _did_you_mean(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), list(FIELDS) + list(_ALIASES), n=1, cutoff=0.6)
    if close:
        return f" (did you mean {_ALIASES.get(close[0], close[0])}?)"
    return f" (fields: {', '.join(field_names())})"


# ------------------------------------------------------------------------------------------------------------ values
_UNITS = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
_BYTE_UNITS = {"b": 1.0, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 2.0 ** 10, "mib": 2.0 ** 20,
               "gib": 2.0 ** 30}
_NUMBER = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)([A-Za-z]*)$")  # no nested repeats


def parse_number(text: str, field: Field) -> float:
    """A value for a number or byte field, in the field's own unit. Raises ValueError with the reason."""
    m = _NUMBER.match(text.replace("_", ""))
    if not m:
        raise ValueError(f"{field.name} needs a number (like 10M), got {text!r}")
    value, unit = float(m.group(1)), m.group(2).lower()
    if unit in _UNITS:
        return value if not unit else value * _UNITS[unit] / field.scale
    if unit in _BYTE_UNITS:
        if field.kind != "bytes":
            raise ValueError(f"unit {m.group(2)!r} is for byte fields (weight_bytes, weight_mb, activation_mb ...), "
                             f"not {field.name}")
        return value * _BYTE_UNITS[unit] / field.scale
    raise ValueError(f"unknown unit {m.group(2)!r} in {text!r} (use K, M, G, T or B, KB, MB, GB)")


# ------------------------------------------------------------------------------------------------------------ tokens
_OPS = ("!=", "<=", ">=", "==", "!~", "=", "<", ">", "~")
_KEYWORDS = {"and", "or", "not"}
_WORD_STOP = set(" \t\r\n()=!<>~\"'")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "word" | "string" | "op" | "(" | ")" | "and" | "or" | "not" | "end"
    text: str
    pos: int  # 0-based offset in the expression


def tokenize(expr: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c.isspace():
            i += 1
        elif c in "()":
            tokens.append(Token(c, c, i))
            i += 1
        elif c in "\"'":
            end = expr.find(c, i + 1)
            if end < 0:
                raise FilterError(expr, i + 1, f"unclosed quote {c}")
            tokens.append(Token("string", expr[i + 1:end], i))
            i = end + 1
        else:
            op = next((o for o in _OPS if expr.startswith(o, i)), None)
            if op:
                tokens.append(Token("op", "=" if op == "==" else op, i))
                i += len(op)
                continue
            if c == "!":
                raise FilterError(expr, i + 1, "'!' must be part of != or !~ (use NOT to negate)")
            j = i
            while j < n and expr[j] not in _WORD_STOP:
                j += 1
            word = expr[i:j]
            kind = word.lower() if word.lower() in _KEYWORDS else "word"
            tokens.append(Token(kind, word, i))
            i = j
    tokens.append(Token("end", "", n))
    return tokens


# ------------------------------------------------------------------------------------------------------------ leaves
# A leaf of an expression reads one value of a record (``read``, named by ``column`` so that a RecordIndex computes it
# once per record and keeps it) and tests that value (``test``). Text is folded to lower case when read.
_SEP = "\0"  # joins a record's fuzzy haystack: a word without it can only match inside one of the joined parts


@dataclass(frozen=True, slots=True)
class Leaf:
    column: str
    read: Callable[[ModelRecord], Any]
    test: Callable[[Any], bool]

    def predicate(self) -> Predicate:
        read, test = self.read, self.test
        return lambda r: test(read(r))


def _fuzzy_haystack(r: ModelRecord) -> tuple[str, str, tuple[str, ...]]:
    """(name, the other parts joined by _SEP, the other parts), folded: what a plain word is looked for in."""
    arch = r.architecture
    joined, parts = _folded_parts((arch.family, arch.type, arch.task or "", r.format, *r.tags.keys(),
                                   *r.tags.values()))
    return r.name.lower(), joined, parts


@functools.lru_cache(maxsize=4096)
def _folded_parts(parts: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """Folded and joined once per distinct (family, type, task, format, tags): records share them."""
    folded = tuple(h.lower() for h in parts)
    return _SEP.join(folded), folded


def letters_in_order(needle: str) -> Callable[[str], Any]:
    """A test that the letters of ``needle`` appear in order in a text (truthy when they do): one linear regex match
    (possessive steps, no backtracking), so it can run over thousands of names per key press."""
    pattern = re.compile("".join(f"[^{re.escape(c)}]*+{re.escape(c)}" for c in needle), re.DOTALL)
    return pattern.match


def _text_leaf(word: str) -> Leaf:
    """Fuzzy text: the word is in the name, family, type, task, format or a tag, or its letters appear in order in
    the name (``rsnt`` finds resnet18)."""
    w = word.lower()
    in_order = letters_in_order(w)
    split = _SEP in w  # cannot happen from a typed filter; then look in each part on its own

    def test(hay: tuple[str, str, tuple[str, ...]]) -> bool:
        name, joined, parts = hay
        if w in name or in_order(name):
            return True
        return any(w in h for h in parts) if split else w in joined
    return Leaf("fuzzy", _fuzzy_haystack, test)


def text_match(word: str) -> Predicate:
    """A predicate for one plain word of a filter (see ``_text_leaf``)."""
    return _text_leaf(word).predicate()


def _compare(op: str, have: Any, want: Any) -> bool:
    if op == "=":
        return have == want
    if op == "!=":
        return have != want
    if op == "<":
        return have < want
    if op == "<=":
        return have <= want
    if op == ">":
        return have > want
    if op == ">=":
        return have >= want
    if op == "~":
        return want in have
    return want not in have  # "!~"


def _comparison(field: Field, op: str, value: str) -> Leaf:
    """A leaf for ``field op value``. Raises ValueError (with the reason) for a value the field cannot take."""
    negative = op in ("!=", "!~")
    get = field.get
    if field.kind in ("number", "bytes"):
        if op in ("~", "!~"):
            raise ValueError(f"'{op}' compares text; {field.name} is a number (use = < <= > >=)")
        want = parse_number(value, field)

        def num(have: Any) -> bool:
            return negative if have is None else _compare(op, have, want)
        return Leaf(f"value:{field.name}", get, num)
    want_text = value.lower()
    if field.kind in ("shapes", "tags"):
        if op not in ("=", "!=", "~", "!~"):
            raise ValueError(f"'{op}' does not apply to {field.name} (use = != ~ !~)")
        want_text = want_text.replace(",", "x") if field.kind == "shapes" else want_text
        positive = "=" if op in ("=", "!=") else "~"

        def many(folded: list[str]) -> bool:
            hit = any(_compare(positive, h, want_text) for h in folded)
            return not hit if negative else hit
        return Leaf(f"folded:{field.name}", lambda r: [h.lower() for h in get(r)], many)

    def read_text(r: ModelRecord) -> str | None:
        have = get(r)
        return None if have is None else str(have).lower()

    def text(folded: str | None) -> bool:
        return negative if folded is None else _compare(op, folded, want_text)
    return Leaf(f"folded:{field.name}", read_text, text)


# ------------------------------------------------------------------------------------------------------------ parser
# The parser builds a small tree: ("all",) | ("or", [nodes]) | ("and", [nodes]) | ("not", node) | Leaf.
Node = Any


MAX_FILTER_CHARS = 2_000
MAX_FILTER_DEPTH = 32  # parentheses and NOTs inside one another: each level is a few frames of recursion


class _Parser:
    def __init__(self, expr: str):
        if len(expr) > MAX_FILTER_CHARS:
            raise FilterError(expr[:MAX_FILTER_CHARS + 1], MAX_FILTER_CHARS + 1,
                              f"filter too long ({len(expr):,} characters; the limit is {MAX_FILTER_CHARS:,})")
        self.expr = expr
        self.tokens = tokenize(expr)
        self.i = 0
        self.depth = 0

    def nest(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_FILTER_DEPTH:
            raise self.fail(tok, f"filter nested too deeply (limit {MAX_FILTER_DEPTH} levels of parentheses and NOT)")

    def peek(self, k: int = 0) -> Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def take(self) -> Token:
        tok = self.peek()
        self.i += 1
        return tok

    def fail(self, tok: Token, why: str) -> FilterError:
        return FilterError(self.expr, tok.pos + 1, why)

    def parse(self) -> Node:
        if self.peek().kind == "end":
            return ("all",)
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != "end":
            raise self.fail(tok, f"unexpected {tok.text!r}" + (" (no '(' to close)" if tok.kind == ")" else ""))
        return node

    def parse_or(self) -> Node:
        parts = [self.parse_and()]
        while self.peek().kind == "or":
            self.take()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def parse_and(self) -> Node:
        parts = [self.parse_not()]
        while self.peek().kind in ("and", "not", "(", "word", "string"):
            if self.peek().kind == "and":
                self.take()
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def parse_not(self) -> Node:
        if self.peek().kind == "not":
            self.nest(self.take())
            node = ("not", self.parse_not())
            self.depth -= 1
            return node
        return self.parse_atom()

    def parse_atom(self) -> Node:
        tok = self.take()
        if tok.kind == "(":
            self.nest(tok)
            inner = self.parse_or()
            close = self.take()
            if close.kind != ")":
                raise self.fail(close if close.kind != "end" else tok,
                                "'(' is never closed" if close.kind == "end" else f"expected ')', got {close.text!r}")
            self.depth -= 1
            return inner
        if tok.kind in ("word", "string"):
            if self.peek().kind == "op":
                return self.parse_comparison(tok)
            return _text_leaf(tok.text)
        if tok.kind == "op":
            raise self.fail(tok, f"{tok.text!r} needs a field before it (like params {tok.text} 10M)")
        if tok.kind == "end":
            raise self.fail(tok, "the expression ends too early")
        raise self.fail(tok, f"unexpected {tok.text!r}")

    def parse_comparison(self, field_tok: Token) -> Leaf:
        op = self.take()
        if field_tok.kind == "string":
            raise self.fail(field_tok, "a field name cannot be quoted")
        field = _lookup(field_tok.text)
        if field is None:
            raise self.fail(field_tok, f"unknown field {field_tok.text!r}{_did_you_mean(field_tok.text)}")
        value = self.take()
        if value.kind not in ("word", "string"):
            raise self.fail(value, f"expected a value after {field_tok.text} {op.text}")
        try:
            return _comparison(field, op.text, value.text)
        except ValueError as exc:
            raise self.fail(value, str(exc)) from None


def _predicate(node: Node) -> Predicate:
    if isinstance(node, Leaf):
        return node.predicate()
    kind = node[0]
    if kind == "all":
        return lambda r: True
    if kind == "not":
        inner = _predicate(node[1])
        return lambda r: not inner(r)
    parts = [_predicate(p) for p in node[1]]
    if kind == "or":
        return lambda r: any(p(r) for p in parts)
    return lambda r: all(p(r) for p in parts)


def compile_filter(expr: str | None) -> Predicate:
    """A predicate for a filter expression (empty: everything). Raises FilterError pointing at the bad token."""
    return _predicate(_Parser(expr or "").parse())


def filter_records(records: Iterable[ModelRecord], expr: str | None) -> list[ModelRecord]:
    pred = compile_filter(expr)
    return [r for r in records if pred(r)]


# ------------------------------------------------------------------------------------------------------------ sorting
def _sort_field(key: str) -> tuple[Field, bool]:
    """The field and direction of a sort key (``params``, ``-params``); FilterError for an unknown field."""
    desc = key.startswith("-")
    name = key[1:] if desc or key.startswith("+") else key
    field = _lookup(name)
    if field is None:
        raise FilterError(key, 2 if desc else 1, f"unknown sort field {name!r}{_did_you_mean(name)}")
    return field, desc


def _sort_value(field: Field) -> Callable[[ModelRecord], Any]:
    get = field.get

    def value(r: ModelRecord) -> Any:
        v = get(r)
        if isinstance(v, list):
            return ", ".join(v).lower() if v else None
        return v.lower() if isinstance(v, str) else v
    return value


def _order(values: Sequence[Any], desc: bool) -> list[int]:
    """Positions in sorted order: known values (stable, so ties keep their order), then unknown ones in theirs."""
    known = [i for i, v in enumerate(values) if v is not None]
    known.sort(key=values.__getitem__, reverse=desc)
    return known + [i for i, v in enumerate(values) if v is None]


def sort_records(records: Iterable[ModelRecord], key: str | None) -> list[ModelRecord]:
    """Sort by a field (``params``) or descending (``-params``); unknown values last either way. Ties keep name order."""
    records = list(records)
    if not key:
        return records
    field, desc = _sort_field(key)
    value = _sort_value(field)
    return [records[i] for i in _order([value(r) for r in records], desc)]


# ------------------------------------------------------------------------------------------------------------ index
class RecordIndex:
    """The same records filtered and sorted again and again (the TUI's filter box, once per key press): each value a
    filter or sort reads is computed once per record and kept, and each sort order is computed once; a filter then
    tests cached values column by column and a sort is a pass over a kept order. Same results as ``filter_records``
    and ``sort_records``."""

    def __init__(self, records: Iterable[ModelRecord]):
        self.records = list(records)
        self._columns: dict[str, list[Any]] = {}
        self._orders: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self.records)

    def _column(self, leaf: Leaf) -> list[Any]:
        column = self._columns.get(leaf.column)
        if column is None:
            read = leaf.read
            column = self._columns[leaf.column] = [read(r) for r in self.records]
        return column

    def _matches(self, node: Node) -> set[int]:
        if isinstance(node, Leaf):
            test = node.test
            return {i for i, v in enumerate(self._column(node)) if test(v)}
        kind = node[0]
        if kind == "all":
            return set(range(len(self.records)))
        if kind == "not":
            return set(range(len(self.records))) - self._matches(node[1])
        parts = [self._matches(p) for p in node[1]]
        return set.union(*parts) if kind == "or" else set.intersection(*parts)

    def matches(self, expr: str | None) -> set[int] | None:
        """Positions (in ``records``) of the records ``expr`` matches; None for an empty expression (all of them).
        Raises FilterError pointing at the bad token."""
        node = _Parser(expr or "").parse()
        return None if node == ("all",) else self._matches(node)

    def order(self, key: str) -> list[int]:
        """Positions in the order of sort key ``key`` (as ``sort_records``), computed once per key."""
        order = self._orders.get(key)
        if order is None:
            field, desc = _sort_field(key)
            column = f"sort:{field.name}"
            values = self._columns.get(column)
            if values is None:
                value = _sort_value(field)
                values = self._columns[column] = [value(r) for r in self.records]
            order = self._orders[key] = _order(values, desc)
        return order

    def select(self, matched: set[int] | None, key: str | None) -> list[ModelRecord]:
        """The records at positions ``matched`` (None: all), in the order of sort key ``key`` (None: as given)."""
        records = self.records
        if not key:
            return list(records) if matched is None else [records[i] for i in sorted(matched)]
        order = self.order(key)
        if matched is None:
            return [records[i] for i in order]
        return [records[i] for i in order if i in matched]

    def filter(self, expr: str | None, key: str | None = None) -> list[ModelRecord]:
        """``sort_records(filter_records(records, expr), key)``, from cached values."""
        return self.select(self.matches(expr), key)
