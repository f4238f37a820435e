"""The compare table: a DataTable (few rows) with hidden vim motion; the first column (labels) stays put."""
from __future__ import annotations

from embodied_tui.screens.widgets.vim_table import VimTable


class CompareTable(VimTable):
    HELP_TITLE = "Compare table"
