"""Fit one model on hardware: a table of device x power mode x precision rows and the roofline of the selected row.

Rows come from ``services.fit.fit_rows`` (computed in a thread worker; pure Python, a fraction of a second); the
per-layer rows of the selected device x mode x precision (``with_layers=True``) are fetched when the chart tab shows
them. Tab 1 is the table (`/` filters by device or precision words, `s`/`S` sort, enter shows the roofline), tab 2 the
chart (j/k move to the next/previous row of the table).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Label, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from embodied_tui import units as fmt
from embodied_tui.data.records import ModelRecord
from embodied_tui.errors import NotFound, UserError
from embodied_tui.perf.fit_row import BASIS_MARK, FitRow
from embodied_tui.screens.tab_keys import TabKeys
from embodied_tui.screens.widgets.context_bar import ContextBar
from embodied_tui.screens.widgets.fit_table import FitTable, fit_key
from embodied_tui.screens.widgets.laid_out_table import LaidOutTable
from embodied_tui.screens.widgets.roofline_plot import (
    ChartLimits,
    RooflinePlot,
    chart_limits,
    rate_unit,
    roofline_chart,
    work_unit,
)
from embodied_tui.services.columns import ALWAYS, WHOLE, ColumnDef
from embodied_tui.services.context import removed_text

TABS = ("fit-table-pane", "fit-chart-pane")
CHART_DELAY = 0.1  # s: j/k held down on the chart redraws once the cursor rests

# (header, cell of a fit row), left to right
COLUMNS: tuple[tuple[str, Callable[[FitRow], str]], ...] = (
    ("device", lambda r: fmt.safe_text(r.hardware)),
    ("mode", lambda r: fmt.safe_text(r.power_mode)),
    ("prec", lambda r: fmt.safe_text(r.precision)),
    ("W", lambda r: fmt.number(r.power_w)),
    ("pred ms", lambda r: fmt.ms(r.predicted_latency_ms)),
    ("range ms", lambda r: r.interval_text()),
    ("b", lambda r: BASIS_MARK.get(r.basis or "", "")),
    ("meas ms", lambda r: fmt.ms(r.measured_latency_ms)),
    ("roof ms", lambda r: fmt.ms(r.roofline_latency_ms)),
    ("fps", lambda r: fmt.significant(r.fps)),
    ("bound", lambda r: fmt.safe_text(r.bound or fmt.NA)),
    ("mem", lambda r: fmt.yes_no(r.fits_memory)),
)
RIGHT = frozenset({"W", "pred ms", "range ms", "meas ms", "roof ms", "fps"})
# header -> (rank: hidden largest first, ALWAYS never; least width of a text column). device, mode and precision are
# always shown (the device abbreviated to its short name first); then predicted ms, fps, bound ...
RANKS: dict[str, tuple[int, int]] = {
    "device": (ALWAYS, WHOLE), "mode": (ALWAYS, WHOLE), "prec": (ALWAYS, WHOLE), "W": (7, 0), "pred ms": (1, 0),
    "range ms": (5, 0), "b": (8, WHOLE), "meas ms": (4, 0), "roof ms": (6, 0), "fps": (2, 0), "bound": (3, WHOLE),
    "mem": (9, WHOLE),
}


def column_defs(short: dict[str, str]) -> list[ColumnDef]:
    """The fit table's columns for ``services.columns``: device ids abbreviate to ``short`` (catalog short names)."""
    return [ColumnDef(header, header, rank=RANKS[header][0], numeric=header in RIGHT, least=RANKS[header][1],
                      short=short if header == "device" else None) for header, _ in COLUMNS]

# sort name -> the value of a fit row it sorts on; `s` cycles in this order. Unknown values stay last either way.
SORTS: dict[str, Callable[[FitRow], Any]] = {
    "predicted": lambda r: r.predicted_latency_ms,
    "measured": lambda r: r.measured_latency_ms,
    "roofline": lambda r: r.roofline_latency_ms,
    "fps": lambda r: r.fps,
    "power": lambda r: r.power_w,
    "device": lambda r: r.hardware,
    "precision": lambda r: r.precision,
}


def _matched(r: FitRow) -> tuple[str | None, ...]:
    """What the filter words are looked for in: the device id and name, power mode, precision and device type."""
    return r.hardware, r.hardware_name, r.power_mode, r.precision, r.device_type


def sort_rows(rows: list[FitRow], key: str, reverse: bool = False) -> list[FitRow]:
    """Sorted copy on ``SORTS[key]``; stable, so ties keep the service's order; None last either way."""
    value = SORTS[key]
    known = [r for r in rows if value(r) is not None]
    unknown = [r for r in rows if value(r) is None]
    return sorted(known, key=value, reverse=reverse) + unknown


def filter_rows(rows: list[FitRow], text: str) -> list[FitRow]:
    """Rows where every word of ``text`` is part of the device id or name, the power mode, precision or type."""
    words = text.casefold().split()
    if not words:
        return list(rows)
    return [r for r in rows
            if all(any(w in (f or "").casefold() for f in _matched(r)) for w in words)]


def row_cells(row: FitRow) -> list[str]:
    return [cell(row) for _, cell in COLUMNS]


def calibration_text(row: FitRow) -> str:
    """The efficiencies and overheads behind the row's prediction, and where they came from (its calibration)."""
    if row.eta_compute is None:
        return f"calibration {row.calibration or fmt.NA}"
    return f"calibration {row.calibration}: {fmt.calibration_numbers(row)}"


def caption(row: FitRow, index: int, total: int, layers_not_drawn: int, fixed_over: int | None = None) -> str:
    """Three lines under the chart: the roof and the model in numbers (from the fit row), the calibration behind the
    prediction, and where the cursor is with the row's predicted latency and bound (``fixed_over``: the number of
    rows the axes were fixed over)."""
    peak = row.peak_tflops
    bw = row.bandwidth_gbps
    numbers = [f"peak {fmt.significant(None if peak is None else peak * 1e3)} {rate_unit(row.precision)}",
               f"BW {fmt.significant(bw)} GB/s" if bw is not None else "no DRAM: compute roof only",
               f"ridge {fmt.significant(row.ridge_point)} {work_unit(row.precision)}/B",
               f"model {fmt.significant(row.arithmetic_intensity)} {work_unit(row.precision)}/B"]
    place = [f"row {index}/{total} (j/k)", f"pred {fmt.ms(row.predicted_latency_ms)} ms", f"{row.bound or fmt.NA}-bound"]
    if fixed_over:
        place.append(f"axes fixed over {fixed_over} rows")
    if layers_not_drawn:
        place.append(f"{layers_not_drawn} layers without MACs not drawn")
    return " | ".join(numbers) + "\n" + calibration_text(row) + "\n" + " | ".join(place)


class FitScreen(TabKeys, Screen):
    TABS = TABS

    HELP_TITLE = "Fit on hardware"
    BINDINGS = [
        Binding("escape,q", "back", "Back", id="fit.back"),
        Binding("1", "tab('fit-table-pane')", "Table", show=False, id="fit.tab1"),
        Binding("2", "tab('fit-chart-pane')", "Roofline", show=False, id="fit.tab2"),
        Binding("right_square_bracket", "next_tab(1)", "Next tab", id="fit.next_tab"),
        Binding("left_square_bracket", "next_tab(-1)", "Prev tab", show=False, id="fit.prev_tab"),
        Binding("slash", "filter", "Filter", id="fit.filter"),
        Binding("s", "sort", "Sort", id="fit.sort"),
        Binding("S", "reverse", "Reverse", show=False, id="fit.reverse"),
        Binding("j,down", "row(1)", "Row", key_display="j/k", id="fit.next_row"),
        Binding("k,up", "row(-1)", "Previous row", show=False, id="fit.prev_row"),
    ]

    def __init__(self, record: ModelRecord) -> None:
        super().__init__()
        self.record = record
        self.rows: list[FitRow] = []
        self.shown: list[FitRow] = []
        self.error: str | None = None
        self.sort_key = "predicted"
        self.reverse = False
        self.filter_text = ""
        self.layer_rows: dict[str, FitRow] = {}  # row key -> the row with its per-layer rows
        self.charted: str | None = None  # row key the chart shows
        self._chart_timer: Timer | None = None
        self.short_names: dict[str, str] = {}  # device id -> short name, for a narrow table (load_rows)
        self.limits: ChartLimits | None = None  # the chart's axes, fixed over every row (load_limits)
        self.limits_state = "none"  # none | loading | done
        self.removed = False  # the model was removed from the registry while this screen was open

    def compose(self) -> ComposeResult:
        record = self.record
        yield ContextBar()
        yield Static(_text(f"Fit: {record.name} v{record.version} | {fmt.gmacs(record.macs)} GMACs | "
                           f"device x power mode x precision"), id="fit-title")
        with TabbedContent(initial="fit-table-pane", id="fit-tabs"):
            with TabPane("1 Table", id="fit-table-pane"):
                with Horizontal(id="fit-filter-bar"):
                    yield Label("/", id="fit-filter-prompt")
                    yield Input(placeholder="words in device, mode or precision: orin fp16", id="fit-filter",
                                compact=True)
                yield FitTable(cursor_type="row", zebra_stripes=False, id="fit-table")
                yield Static("", id="fit-error")
            with TabPane("2 Roofline", id="fit-chart-pane"):
                yield RooflinePlot(id="roofline")
                yield Static("", id="roofline-caption")
        yield Static("", id="status")
        yield Static("ms at batch 1 | pred: calibrated roofline | roof: lower bound | meas: measured",
                     id="convention")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.table
        table.fixed_columns = 1
        table.loading = True
        self.query_one("#fit-error").display = False
        self.query_one("#fit-filter-bar").display = False
        self.update_status()
        table.focus()
        self.load_rows()

    @property
    def table(self) -> FitTable:
        return self.query_one(FitTable)

    @property
    def plot(self) -> RooflinePlot:
        return self.query_one(RooflinePlot)

    # ------------------------------------------------------------------------------------------ workers
    @work(thread=True, exclusive=True, group="fit-rows", exit_on_error=False)
    def load_rows(self) -> list[FitRow]:
        from embodied_tui.services.fit import fit_rows
        from embodied_tui.services.target import device_short_names

        rows = fit_rows(self.app.registry, self.record.name, version=self.record.version)
        self.short_names = device_short_names(self.app.registry)
        return rows

    @work(thread=True, exclusive=True, group="fit-layers", exit_on_error=False)
    def load_layers(self, row: FitRow) -> FitRow:
        from embodied_tui.services.fit import fit_rows

        rows = fit_rows(self.app.registry, self.record.name, hw=row.hardware, mode=row.power_mode,
                        precision=row.precision, version=self.record.version, with_layers=True)
        return rows[0]

    @work(thread=True, exclusive=True, group="fit-limits", exit_on_error=False)
    def load_limits(self) -> tuple[ChartLimits | None, list[FitRow]]:
        """The chart's axis limits over every row of the table, computed once from the rows with their layers (kept:
        j/k then draw at once), so stepping through the rows keeps the axes."""
        from embodied_tui.services.fit import fit_rows

        rows = fit_rows(self.app.registry, self.record.name, version=self.record.version, with_layers=True)
        return chart_limits(rows), rows

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        group, worker = event.worker.group, event.worker
        if group == "fit-rows":
            self.table.loading = False
            if event.state == WorkerState.ERROR and isinstance(worker.error, NotFound):
                self.show_removed()  # removed between the key and this read: say so, not the CLI's hint
                self.show_error(UserError("no rows: the model is no longer in the registry"))
            elif event.state == WorkerState.ERROR:
                self.show_error(worker.error)
            else:
                self.rows = worker.result
                self.refresh_rows()
                if not self.chart_visible and not self.query_one("#fit-filter", Input).has_focus:
                    self.table.focus()  # the loading indicator took the focus away
        elif group == "fit-layers":
            self.plot.loading = False
            if event.state == WorkerState.ERROR:
                self.plot.plot(None, f"no chart: {_message(worker.error)}")
                return
            row = worker.result
            self.layer_rows[fit_key(row)] = row
            self.draw_chart()
        elif group == "fit-limits":
            self.limits_state = "done"  # on error: each row on its own axes
            if event.state == WorkerState.SUCCESS:
                self.limits, rows = worker.result
                self.layer_rows.update((fit_key(row), row) for row in rows)
            self.draw_chart()

    def show_error(self, error: BaseException | None) -> None:
        self.error = _message(error)
        widget = self.query_one("#fit-error", Static)
        widget.update(_text(f"error: {self.error}"))
        widget.display = True
        self.table.display = False
        self.plot.plot(None, "no rows to chart")
        self.update_status()

    # ------------------------------------------------------------------------------------------ table
    def refresh_rows(self) -> None:
        table = self.table
        current = self.current_row()
        self.shown = sort_rows(filter_rows(self.rows, self.filter_text), self.sort_key, self.reverse)
        table.show(column_defs(self.short_names), [(fit_key(row), row_cells(row)) for row in self.shown])
        if current is not None and fit_key(current) in {fit_key(r) for r in self.shown}:
            table.move_cursor(row=table.get_row_index(fit_key(current)))
        self.update_status()
        self.schedule_chart()

    def current_row(self) -> FitRow | None:
        if not self.shown:
            return None
        index = min(max(self.table.cursor_row, 0), len(self.shown) - 1)
        return self.shown[index]

    def update_status(self) -> None:
        arrow = "v" if self.reverse else "^"
        if self.error:
            text = f"no rows | {self.error}"
        elif self.table.loading:
            text = "computing the fit rows ..."
        else:
            text = f"{len(self.shown)} of {len(self.rows)} rows | sort: {self.sort_key} {arrow}"
            if self.filter_text.strip():
                text += f" | filter: {self.filter_text.strip()} (escape clears)"
            if self.table.hidden_text():
                text += f" | {self.table.hidden_text()}"
        self.query_one("#status", Static).update(_text(text))

    @on(LaidOutTable.LayoutChanged, "#fit-table")
    def _layout_changed(self, event: LaidOutTable.LayoutChanged) -> None:
        event.stop()
        self.update_status()

    @on(FitTable.RowHighlighted, "#fit-table")
    def _highlighted(self, event: FitTable.RowHighlighted) -> None:
        self.schedule_chart()

    @on(FitTable.RowSelected, "#fit-table")
    def _selected(self, event: FitTable.RowSelected) -> None:
        self.action_tab("fit-chart-pane")

    # ------------------------------------------------------------------------------------------ filter and sort
    def action_filter(self) -> None:
        if self.error:
            return
        self.action_tab("fit-table-pane")
        self.query_one("#fit-filter-bar").display = True
        self.query_one("#fit-filter", Input).focus()

    @on(Input.Changed, "#fit-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self.refresh_rows()

    @on(Input.Submitted, "#fit-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self.query_one("#fit-filter-bar").display = False
        self.table.focus()

    def action_back(self) -> None:
        """escape: from the chart, back to the table; there, clear the filter first (while one is set or typed), then
        leave."""
        if self.chart_visible:
            self.action_tab("fit-table-pane")
            return
        filter_input = self.query_one("#fit-filter", Input)
        if self.query_one("#fit-filter-bar").display:
            self.query_one("#fit-filter-bar").display = False
            self.table.focus()
            if self.filter_text:
                self.filter_text = ""
                with filter_input.prevent(Input.Changed):
                    filter_input.value = ""
                self.refresh_rows()
            return
        self.app.action_back()

    def action_sort(self) -> None:
        keys = list(SORTS)
        self.sort_key = keys[(keys.index(self.sort_key) + 1) % len(keys)]
        self.refresh_rows()

    def action_reverse(self) -> None:
        self.reverse = not self.reverse
        self.refresh_rows()

    # ------------------------------------------------------------------------------------------ tabs and chart
    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "fit-table-pane" and self.table.display:
            self.table.focus()
            # j/k on the chart moved the cursor while the table was hidden: bring its row into view now
            self.call_after_refresh(self.table.move_cursor, row=self.table.cursor_row)
        elif event.pane.id == "fit-chart-pane":
            self.set_focus(None)  # j/k reach the screen: they step through the table's rows
            self.schedule_chart()

    def action_row(self, step: int) -> None:
        if not self.shown:
            return
        table = self.table
        table.move_cursor(row=min(max(table.cursor_row + step, 0), len(self.shown) - 1))

    @property
    def chart_visible(self) -> bool:
        return self.query_one(TabbedContent).active == "fit-chart-pane"

    def schedule_chart(self) -> None:
        """Redraw the chart for the current row once the cursor rests (only while the chart tab shows)."""
        if self._chart_timer is not None:
            self._chart_timer.stop()
        self._chart_timer = self.set_timer(CHART_DELAY, self.draw_chart) if self.chart_visible else None

    def draw_chart(self) -> None:
        self._chart_timer = None
        row = self.current_row()
        caption_widget = self.query_one("#roofline-caption", Static)
        if row is None:
            self.plot.plot(None, self.error or "no rows to chart")
            caption_widget.update("")
            return
        key = fit_key(row)
        full = self.layer_rows.get(key)
        if self.chart_visible and self.limits_state == "none":  # the axes, once for every row
            self.limits_state = "loading"
            self.load_limits()
        if full is None and self.chart_visible:
            self.load_layers(row)
        if full is None or self.limits_state != "done":
            if self.chart_visible:
                self.plot.loading = True
            return
        self.plot.loading = False
        chart = roofline_chart(full, full.layers, self.limits)
        self.plot.plot(chart)
        self.charted = key
        index = self.shown.index(row) + 1
        fixed = self.limits.rows if self.limits is not None else None
        caption_widget.update(_text(f"row {index} of {len(self.shown)}: {chart.reason}" if chart.reason
                                    else caption(full, index, len(self.shown), chart.layers_not_drawn, fixed)))

    def current_record(self) -> ModelRecord:
        return self.record

    def crumbs(self) -> list[str]:
        return [self.record.name, "Fit", "Roofline" if self.chart_visible else "Table"]

    def removed_line(self) -> str:
        """The line the title shows once the model was removed elsewhere ('' while it is registered)."""
        return removed_text(self.record) if self.removed else ""

    def show_removed(self) -> None:
        """The model was removed by another process: say so in the title line; the rows shown stay readable."""
        self.removed = True
        title = self.query_one("#fit-title", Static)
        title.update(_text(self.removed_line()))
        title.add_class("removed")


def _text(text: str) -> Text:
    """Text for a Static: escaped (fit rows carry device YAML and registry text), never read as markup."""
    return Text(fmt.safe_text(text, newlines=True))


def _message(error: BaseException | None) -> str:
    if isinstance(error, UserError):
        return str(error)
    return f"{type(error).__name__}: {error}" if error is not None else "unknown error"
