"""The answer of a question or Cypher query: one column per RETURN item; columns sized to the terminal
(``LaidOutTable``: a column of numbers is shown whole or hidden, text is cut with an ellipsis)."""
from __future__ import annotations

from embodied_tui.screens.widgets.laid_out_table import LaidOutTable
from embodied_tui.services.columns import answer_columns


class AnswerTable(LaidOutTable):
    HELP_TITLE = "Answer table"


def show_answer(table: AnswerTable, names: list[str], rows: list[list[str]],
                short: dict[str, str] | None = None) -> None:
    """Show an answer: ``names`` the RETURN items, ``rows`` their formatted cells (``units.cell``), row keys by
    position; ``short``: device id -> short name, for columns of device ids when the terminal is narrow."""
    table.show(answer_columns(names, rows, short), [(str(i), list(r)) for i, r in enumerate(rows)])
