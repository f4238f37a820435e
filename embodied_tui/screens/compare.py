"""2 to 4 models side by side: totals, shapes, family and type, MACs per kind and the layer census.

The rows and whether the models differ on each come from ``services.compare`` (exact numbers where the short forms
agree, the census on shared layer kinds). In each numeric row the largest value reads "▲" and the smallest "▼" (styled
too, but readable without colour); `d` hides rows whose values are all equal, `n` shows the census under each format's
own layer names. A census row marked "*" is shown but not compared: torch formats count modules and ONNX counts graph
nodes, which agree only for layers with MACs (one ReLU module run twice is two Relu nodes).
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from embodied_tui import units as fmt
from embodied_tui.data.records import ModelRecord
from embodied_tui.screens.glyphs import ascii_only, ellipsis
from embodied_tui.screens.widgets.compare_table import CompareTable
from embodied_tui.services.compare import CompareRow, Comparison, compare

UP, DOWN = "▲", "▼"
ASCII_UP, ASCII_DOWN = "^", "v"  # where screens.glyphs.ascii_only() (TERM=linux: a Jetson's console)
CELL_WIDTH = 15  # text cells are clipped so 3 models fit 80 columns (4 scroll sideways, the labels stay)
LABEL_WIDTH = 18
NOT_COMPARED = " *"  # label mark of a census row the formats count differently (module vs ONNX node)


def label_cell(row: CompareRow) -> Text:
    """The row's label, bold; a row shown but not compared ends in NOT_COMPARED (kept when the label is clipped)."""
    if row.comparable:
        return Text(clip(row.label, LABEL_WIDTH), style="bold")
    return Text(f"{clip(row.label, LABEL_WIDTH - len(NOT_COMPARED))}{NOT_COMPARED}", style="bold")


def clip(text: str, width: int) -> str:
    """``units.clip`` with the terminal's ellipsis (``~`` where ASCII only)."""
    return text if len(text) <= width else fmt.clip(text, width)[:-1] + ellipsis()


def markers() -> tuple[str, str]:
    """The marks of the largest and the smallest value: ▲ ▼, or ^ v on an ASCII-only terminal."""
    return (ASCII_UP, ASCII_DOWN) if ascii_only() else (UP, DOWN)


def styled_cells(row: CompareRow) -> list[Text]:
    high, low = row.extremes()
    up, down = markers()
    justify = "right" if row.numeric else "left"
    cells = []
    shown = list(row.cells)
    if not row.numeric:  # clipped, unless clipping would make different values read the same
        clipped = [clip(cell, CELL_WIDTH) for cell in shown]
        shown = clipped if len(set(clipped)) == len(set(shown)) else shown
    for i, cell in enumerate(shown):
        if i in high:
            cells.append(Text(f"{cell} {up}", style="bold", justify=justify))
        elif i in low:
            cells.append(Text(f"{cell} {down}", style="dim", justify=justify))
        else:
            pad = "  " if row.numeric and (high or low) else ""
            cells.append(Text(f"{cell}{pad}", style="" if row.comparable else "dim", justify=justify))
    return cells


class CompareScreen(Screen):
    HELP_TITLE = "Compare"
    BINDINGS = [
        Binding("escape,q", "app.back", "Back", id="compare.back"),
        Binding("d", "toggle_differences", "Differences only", id="compare.differences"),
        Binding("n", "toggle_names", "Raw names", id="compare.raw_names"),
    ]

    def __init__(self, records: list[ModelRecord]) -> None:
        super().__init__()
        self.records = records
        self.comparison: Comparison = compare(records)
        self.differences_only = False

    @property
    def rows(self) -> tuple[CompareRow, ...]:
        return self.comparison.rows

    def compose(self) -> ComposeResult:
        yield Static(self.title_text(), id="compare-title")
        yield CompareTable(cursor_type="row", id="compare-table")
        yield Static("", id="status")
        yield Footer(compact=True)

    def title_text(self) -> str:
        other = "kinds" if self.comparison.raw_names else "raw names"
        up, down = markers()
        return f"{len(self.records)} models: {up} largest {down} smallest | {self.comparison.census_note} (n: {other})"

    def on_mount(self) -> None:
        table = self.query_one(CompareTable)
        table.fixed_columns = 1
        table.add_column("", key="label")
        for i, record in enumerate(self.records):
            table.add_column(Text(f"{clip(fmt.safe_text(record.name), CELL_WIDTH - 3)} v{record.version}"),
                             key=f"m{i}")
        self.refresh_rows()
        table.focus()

    def visible_rows(self) -> list[CompareRow]:
        return self.comparison.visible(self.differences_only)

    def refresh_rows(self) -> None:
        table = self.query_one(CompareTable)
        cursor = table.cursor_row
        table.clear()
        for row in self.visible_rows():
            table.add_row(label_cell(row), *styled_cells(row), key=row.label)
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))
        c = self.comparison
        rows = (f"differences only: {len(self.visible_rows())} of {len(self.rows)} rows" if self.differences_only
                else f"all {len(self.rows)} rows")
        counts = f"{c.equal} equal" + (f", {c.not_compared}* not compared (module vs node)" if c.not_compared else "")
        self.query_one("#status", Static).update(f"{rows} | {counts}")
        self.query_one("#compare-title", Static).update(self.title_text())

    def action_toggle_differences(self) -> None:
        self.differences_only = not self.differences_only
        self.refresh_rows()

    def action_toggle_names(self) -> None:
        self.comparison = compare(self.records, raw_names=not self.comparison.raw_names)
        self.refresh_rows()
