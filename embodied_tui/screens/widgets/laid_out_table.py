"""A small table (fit rows, answers) whose columns are sized to its width by ``services.columns``: numbers whole or
their column hidden, text cut with an ellipsis, abbreviable columns abbreviated first. ``show`` takes every cell;
the table lays them out again when it is resized and posts ``LaidOutTable.LayoutChanged`` when the hidden columns
change, so the screen can name them (``hidden_text``)."""
from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.message import Message

from embodied_tui.screens import glyphs
from embodied_tui.screens.glyphs import ascii_only, ellipsis
from embodied_tui.screens.widgets.vim_table import VimTable
from embodied_tui.services.columns import ColumnDef, Layout, headers, laid_out, plan

PADDING = 2  # DataTable's cell padding: one cell each side


class LaidOutTable(VimTable):
    class LayoutChanged(Message):
        """The columns the table hides changed."""

        def __init__(self, table: "LaidOutTable") -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> "LaidOutTable":
            return self.table

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.defs: list[ColumnDef] = []
        self.full_rows: list[tuple[str, list[str]]] = []  # (row key, every cell)
        self.column_layout = Layout(widths={})
        self._laid_width = -1

    def available_width(self) -> int:
        """The cells the columns may take: the widget's width less a vertical scrollbar's."""
        width = self.size.width or (self.app.size.width if self.is_attached else 80)
        return max(width - self.styles.scrollbar_size_vertical, 1)

    def show(self, defs: Sequence[ColumnDef], rows: Sequence[tuple[str, list[str]]]) -> None:
        """Replace columns and rows (each row: its key and one cell per column); the cursor stays on the same key
        where it is still there."""
        self.defs = list(defs)
        self.full_rows = [(key, list(cells)) for key, cells in rows]
        self._lay_out()

    def _lay_out(self) -> None:
        current = None
        if self.row_count and 0 <= self.cursor_row < self.row_count:
            current = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        width = self.available_width()
        old = self.column_layout.hidden
        out = plan(self.defs, [cells for _, cells in self.full_rows], width, PADDING)
        self.column_layout, self._laid_width = out, width
        mark = ellipsis()
        self.clear(columns=True)
        shown = [d for d in self.defs if out.shows(d.key)]
        for d, header in zip(shown, headers(self.defs, out, mark)):
            self.add_column(Text(header, justify="right" if d.numeric else "left"), key=d.key,
                            width=out.widths[d.key])
        for key, cells in self.full_rows:
            texts = laid_out(self.defs, cells, out, mark)
            self.add_row(*(Text(glyphs.shown(t), justify="right" if d.numeric else "left", no_wrap=True, overflow="crop")
                           for d, t in zip(shown, texts)), key=key)
        if current is not None and current in {key for key, _ in self.full_rows}:
            self.move_cursor(row=self.get_row_index(current))
        if out.hidden != old:
            self.post_message(self.LayoutChanged(self))

    def on_resize(self) -> None:
        if self.defs and self.available_width() != self._laid_width:
            self._lay_out()

    def hidden_text(self) -> str:
        """'hidden: fps, meas ms — widen the terminal', or ''."""
        return self.column_layout.hidden_text("-" if ascii_only() else "—")
