"""2 to 4 models side by side: totals, shapes, family and type, layer-type counts.

In each numeric row the largest value reads "▲" and the smallest "▼" (styled too, but readable without colour);
`d` hides rows whose values are all equal.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from embodied_tui import units as fmt
from embodied_tui.data.records import ModelRecord
from embodied_tui.screens.widgets.compare_table import CompareTable

UP, DOWN = "▲", "▼"
CELL_WIDTH = 15  # text cells are clipped so 3 models fit 80 columns (4 scroll sideways, the labels stay)
LABEL_WIDTH = 18


@dataclass(frozen=True)
class CompareRow:
    label: str
    cells: tuple[str, ...]
    values: tuple[object, ...]  # what "same" is judged on; numbers for numeric rows
    numeric: bool

    @property
    def differs(self) -> bool:
        return len(set(self.values)) > 1

    def extremes(self) -> tuple[set[int], set[int]]:
        """Columns holding the largest and the smallest known value (empty when all equal or not numeric)."""
        if not self.numeric or not self.differs:
            return set(), set()
        known = [v for v in self.values if v is not None]
        if len(set(known)) < 2:
            return set(), set()
        hi, lo = max(known), min(known)
        return ({i for i, v in enumerate(self.values) if v == hi}, {i for i, v in enumerate(self.values) if v == lo})


def _numeric(label: str, records: list[ModelRecord], get: Callable[[ModelRecord], int | None],
             show: Callable[[int | None], str]) -> CompareRow:
    values = tuple(get(r) for r in records)
    return CompareRow(label, tuple(show(v) for v in values), values, True)


def _text(label: str, records: list[ModelRecord], get: Callable[[ModelRecord], str]) -> CompareRow:
    values = tuple(fmt.safe_text(get(r)) for r in records)
    return CompareRow(label, values, values, False)


def compare_rows(records: list[ModelRecord]) -> list[CompareRow]:
    rows = [
        _text("family", records, lambda r: r.architecture.family),
        _text("type", records, lambda r: r.architecture.type),
        _text("format", records, lambda r: fmt.clip(r.format, CELL_WIDTH)),
        _numeric("params", records, lambda r: r.params, fmt.count),
        _numeric("MACs", records, lambda r: r.macs, fmt.count),
        _numeric("FLOPs", records, lambda r: r.flops, fmt.count),
        _numeric("other FLOPs", records, lambda r: r.other_flops, fmt.count),
        _numeric("weights", records, lambda r: r.weight_bytes, fmt.nbytes),
        _numeric("activations", records, lambda r: r.activation_bytes, fmt.nbytes),
        _numeric("file size", records, lambda r: r.size_bytes, fmt.nbytes),
        _text("dtype", records, lambda r: r.dtype),
        _text("inputs", records, lambda r: fmt.clip(fmt.shapes(r.input_shapes, r.input_symbols), CELL_WIDTH)),
        _text("input source", records, lambda r: r.input_shape_source),
        _text("outputs", records, lambda r: fmt.clip(fmt.shapes(r.output_shapes), CELL_WIDTH)),
    ]
    layer_types: dict[str, int] = {}
    for record in records:
        for layer, n in record.layers.items():
            layer_types[layer] = layer_types.get(layer, 0) + n
    for layer in sorted(layer_types, key=lambda t: (-layer_types[t], t)):
        rows.append(_numeric(f"# {fmt.safe_text(layer)}", records, lambda r, t=layer: r.layers.get(t, 0), str))
    return rows


def styled_cells(row: CompareRow) -> list[Text]:
    high, low = row.extremes()
    cells = []
    for i, cell in enumerate(row.cells):
        if i in high:
            cells.append(Text(f"{cell} {UP}", style="bold", justify="right" if row.numeric else "left"))
        elif i in low:
            cells.append(Text(f"{cell} {DOWN}", style="dim", justify="right" if row.numeric else "left"))
        else:
            pad = "  " if row.numeric and (high or low) else ""
            cells.append(Text(f"{cell}{pad}", justify="right" if row.numeric else "left"))
    return cells


class CompareScreen(Screen):
    HELP_TITLE = "Compare"
    BINDINGS = [
        Binding("escape,q", "app.back", "Back", id="compare.back"),
        Binding("d", "toggle_differences", "Differences only", id="compare.differences"),
    ]

    def __init__(self, records: list[ModelRecord]) -> None:
        super().__init__()
        self.records = records
        self.rows = compare_rows(records)
        self.differences_only = False

    def compose(self) -> ComposeResult:
        yield Static(f"Comparing {len(self.records)} models: {UP} largest, {DOWN} smallest", id="compare-title")
        yield CompareTable(cursor_type="row", id="compare-table")
        yield Static("", id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(CompareTable)
        table.fixed_columns = 1
        table.add_column("", key="label")
        for i, record in enumerate(self.records):
            table.add_column(Text(f"{fmt.clip(fmt.safe_text(record.name), CELL_WIDTH - 3)} v{record.version}"),
                             key=f"m{i}")
        self.refresh_rows()
        table.focus()

    def visible_rows(self) -> list[CompareRow]:
        return [row for row in self.rows if row.differs] if self.differences_only else self.rows

    def refresh_rows(self) -> None:
        table = self.query_one(CompareTable)
        table.clear()
        for row in self.visible_rows():
            table.add_row(Text(fmt.clip(row.label, LABEL_WIDTH), style="bold"), *styled_cells(row), key=row.label)
        same = sum(not row.differs for row in self.rows)
        mode = "differences only (d: show all)" if self.differences_only else "all rows (d: differences only)"
        self.query_one("#status", Static).update(
            f"{len(self.visible_rows())} of {len(self.rows)} rows | {same} equal | {mode}")

    def action_toggle_differences(self) -> None:
        self.differences_only = not self.differences_only
        self.refresh_rows()
