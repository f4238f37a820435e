"""2 to 4 registered models side by side: the rows the compare screen shows and whether the models differ on each.

Conventions (the screen's status line repeats the census one):
- **Differs** means the exact values differ (an unknown value, None, differs from a known one). A numeric cell shows
  the short form (``11.7M``, ``46.8 MB``); where two models' short forms are equal but their exact values are not,
  every cell of that row shows the exact number instead (``11,689,512``; ``46,796,608 B``), so a row listed as a
  difference never shows equal cells. Rows equal in exact value are not differences.
- **Census rows** count layers per shared kind (``analysis.layer_kinds``: ``Conv2d`` and ``Conv`` are both ``conv``,
  ``Linear`` and ``Gemm`` both ``linear``), and ``MACs <kind>`` rows give each kind's MACs (the records'
  ``macs_by_kind``). With ``raw_names`` the census rows use each format's own names instead.
- Torch formats count modules and ONNX counts graph nodes; they agree one to one only for layers whose work is MACs.
  When the models mix the two units, census rows of other kinds (activations, adds, norms an export folded) are
  shown but marked not compared (``comparable`` false): they never count as differences.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from embodied_tui import units as fmt
from embodied_tui.analysis.layer_kinds import census_unit, kind_counts, mac_kinds
from embodied_tui.data.records import ModelRecord

SUMMARY, MACS, CENSUS = "summary", "macs", "census"


@dataclass(frozen=True)
class CompareRow:
    """One row: a label, each model's cell text, and the values "same" is judged on (numbers for numeric rows)."""

    label: str
    cells: tuple[str, ...]
    values: tuple[object, ...]
    numeric: bool
    section: str = SUMMARY  # summary | macs | census
    comparable: bool = True  # False: the models' formats count this differently; shown, never a difference
    exact: bool = False  # the cells show exact numbers because the short forms of different values agree

    @property
    def differs(self) -> bool:
        return self.comparable and len(set(self.values)) > 1

    def extremes(self) -> tuple[set[int], set[int]]:
        """Columns holding the largest and the smallest known value (empty when all equal, not compared or not
        numeric)."""
        if not self.numeric or not self.differs:
            return set(), set()
        known = [v for v in self.values if v is not None]
        if len(set(known)) < 2:
            return set(), set()
        hi, lo = max(known), min(known)
        return ({i for i, v in enumerate(self.values) if v == hi}, {i for i, v in enumerate(self.values) if v == lo})


@dataclass(frozen=True)
class Comparison:
    rows: tuple[CompareRow, ...]
    raw_names: bool
    mixed_units: bool  # the models mix module counts (torch formats) and node counts (ONNX)

    def visible(self, differences_only: bool) -> list[CompareRow]:
        return [row for row in self.rows if row.differs] if differences_only else list(self.rows)

    @property
    def equal(self) -> int:
        """Rows compared and found equal."""
        return sum(row.comparable and not row.differs for row in self.rows)

    @property
    def not_compared(self) -> int:
        return sum(not row.comparable for row in self.rows)

    @property
    def census_note(self) -> str:
        """What the census rows are keyed on."""
        return "census by each format's names" if self.raw_names else "census by layer kind"


def _exact_bytes(n: int | None) -> str:
    return fmt.exact(n) if n is None else f"{fmt.exact(n)} B"


def _numeric(label: str, values: Sequence[int | None], short: Callable[[int | None], str],
             exact: Callable[[int | None], str] = fmt.exact, **kw) -> CompareRow:
    """Short cells, or exact ones where two different values would show the same short text."""
    values = tuple(values)
    cells = tuple(short(v) for v in values)
    seen: dict[str, object] = {}
    clash = False
    for cell, value in zip(cells, values):
        clash |= cell in seen and seen[cell] != value
        seen.setdefault(cell, value)
    if clash:
        cells = tuple(exact(v) for v in values)
    return CompareRow(label, cells, values, True, exact=clash, **kw)


def _text(label: str, records: Sequence[ModelRecord], get: Callable[[ModelRecord], object]) -> CompareRow:
    values = tuple(fmt.safe_text(get(r)) for r in records)
    return CompareRow(label, values, values, False)


def _summary(records: Sequence[ModelRecord]) -> list[CompareRow]:
    def each(get):
        return [get(r) for r in records]

    return [
        _text("family", records, lambda r: r.architecture.family),
        _text("type", records, lambda r: r.architecture.type),
        _text("format", records, lambda r: r.format),
        _numeric("params", each(lambda r: r.params), fmt.count),
        _numeric("MACs", each(lambda r: r.macs), fmt.count),
        _numeric("FLOPs", each(lambda r: r.flops), fmt.count),
        _numeric("other FLOPs", each(lambda r: r.other_flops), fmt.count),
        _numeric("weights", each(lambda r: r.weight_bytes), fmt.nbytes, _exact_bytes),
        _numeric("activations", each(lambda r: r.activation_bytes), fmt.nbytes, _exact_bytes),
        _numeric("file size", each(lambda r: r.size_bytes), fmt.nbytes, _exact_bytes),
        _text("dtype", records, lambda r: r.dtype),
        _text("inputs", records, lambda r: fmt.shapes(r.input_shapes, r.input_symbols)),
        _text("input source", records, lambda r: r.input_shape_source),
        _text("outputs", records, lambda r: fmt.shapes(r.output_shapes)),
    ]


def _largest_first(totals: dict[str, int]) -> list[str]:
    return sorted(totals, key=lambda k: (-totals[k], k))


def _macs_by_kind(records: Sequence[ModelRecord]) -> list[CompareRow]:
    """MACs per kind; a model whose MACs are unknown has no per-kind MACs either (None, not 0)."""
    totals: dict[str, int] = {}
    for record in records:
        for kind, macs in record.macs_by_kind.items():
            totals[kind] = totals.get(kind, 0) + macs
    return [_numeric(f"MACs {fmt.safe_text(kind)}",
                     [None if r.macs is None else r.macs_by_kind.get(kind, 0) for r in records], fmt.count,
                     section=MACS)
            for kind in _largest_first(totals)]


def _census(records: Sequence[ModelRecord], raw_names: bool, mixed: bool) -> list[CompareRow]:
    counts = [dict(r.layers) if raw_names else kind_counts(r.layers) for r in records]
    totals: dict[str, int] = {}
    for per_model in counts:
        for name, n in per_model.items():
            totals[name] = totals.get(name, 0) + n
    macs = mac_kinds()
    rows = []
    for name in _largest_first(totals):
        # mixed units: only MAC kinds compare; each format's own names never do (a Conv2d row and a Conv row hold
        # the same layers)
        comparable = not mixed or (not raw_names and name in macs)
        rows.append(_numeric(f"# {fmt.safe_text(name)}", [c.get(name, 0) for c in counts], str, section=CENSUS,
                             comparable=comparable))
    return rows


def compare(records: Sequence[ModelRecord], *, raw_names: bool = False) -> Comparison:
    """The rows comparing ``records`` (2 to 4 models, in the order given); see the module docstring."""
    mixed = len({census_unit(r.format) for r in records}) > 1
    rows = _summary(records) + _macs_by_kind(records) + _census(records, raw_names, mixed)
    return Comparison(tuple(rows), raw_names, mixed)
