"""The answer of a question or Cypher query: one column per RETURN item."""
from __future__ import annotations

from embodied_tui.screens.widgets.vim_table import VimTable


class AnswerTable(VimTable):
    HELP_TITLE = "Answer table"
