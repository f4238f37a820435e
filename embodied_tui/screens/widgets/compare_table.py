"""The compare table: a DataTable (few rows) with hidden vim motion; the first column (labels) stays put."""
from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable


class CompareTable(DataTable):
    HELP_TITLE = "Compare table"
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "scroll_top", "First row", show=False),
        Binding("G", "scroll_bottom", "Last row", show=False),
        Binding("h", "scroll_left", "Scroll left", show=False),
        Binding("l", "scroll_right", "Scroll right", show=False),
    ]
