"""The fit table: one row per device x power mode x precision, keyed ``hardware|mode|precision``; columns sized to
the terminal (``LaidOutTable``)."""
from __future__ import annotations

from embodied_tui.perf.fit_row import FitRow
from embodied_tui.screens.widgets.laid_out_table import LaidOutTable


def fit_key(row: FitRow) -> str:
    """The row key of a fit row."""
    return f"{row.hardware}|{row.power_mode}|{row.precision}"


class FitTable(LaidOutTable):
    HELP_TITLE = "Fit table"
