"""The registry screen: every registered model in a table; filter, sort, mark, open, compare, register, fit.

The "best fit" column holds each model's fastest predicted device x power mode x precision (``services.fit``). It is
computed in a thread worker for the rows on screen only, when they are first painted, and kept in memory for the
session (a reload of the registry forgets it); "—" until known.
"""
from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Label, Static
from textual.worker import Worker, get_current_worker

from embodied_tui import units as fmt
from embodied_tui.data import filters
from embodied_tui.data.records import ModelRecord
from embodied_tui.errors import UserError
from embodied_tui.perf.fit_row import FitRow
from embodied_tui.screens.widgets.model_table import ModelTable, record_key

MAX_COMPARE = 4
# records; below this the table follows every key. Filter + sort + table rebuild read cached values (see
# filters.RecordIndex), so a key costs about as much at 10,000 records as at 10 (benchmarks/tui_startup.py); larger
# registries, not measured, are still filtered once typing pauses.
DEBOUNCE_FROM = 10_001
DEBOUNCE_SECONDS = 0.15
BEST_FIT_DELAY = 0.2  # s the table must rest before the best fits of the rows on screen are computed


# sort name shown -> field of the filter language; `s` cycles through them in this order
SORTS: dict[str, str] = {
    "name": "name",
    "params": "params",
    "GMACs": "macs",
    "family": "family",
    "type": "type",
    "format": "format",
    "registered": "registered_at",
}


def fastest(rows: list[FitRow]) -> FitRow | None:
    """The fit row with the lowest predicted latency (None when no row has a prediction)."""
    known = [r for r in rows if r.predicted_latency_ms is not None]
    return min(known, key=lambda r: r.predicted_latency_ms) if known else None


def best_fit_text(row: FitRow | None) -> str:
    """'0.0312 ms nvidia-h100-sxm/700W/fp16'; 'no prediction' when no device has one."""
    if row is None:
        return "no prediction"
    return f"{fmt.ms(row.predicted_latency_ms)} ms {row.hardware}/{row.power_mode}/{row.precision}"


def sort_expression(key: str, reverse: bool) -> str:
    """The filter language's sort key for a sort shown as ``key``; unknown values (MACs we could not count) stay last
    either way."""
    return ("-" if reverse else "") + SORTS[key]


class RegistryScreen(Screen):
    HELP_TITLE = "Registry"
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="registry.filter"),
        Binding("s", "sort", "Sort", id="registry.sort"),
        Binding("S", "reverse", "Reverse", show=False, id="registry.reverse"),
        Binding("space", "mark", "Mark", id="registry.mark"),
        Binding("c", "compare", "Compare", id="registry.compare"),
        Binding("r", "register", "Register", id="registry.register"),
        Binding("f", "fit", "Fit", show=False, id="registry.fit"),
        Binding("A", "all_versions", "All versions", show=False, id="registry.all_versions"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="registry.clear_filter"),
        Binding("q", "app.quit", "Quit", show=False, id="registry.quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.all_records: list[ModelRecord] = []
        self._index = filters.RecordIndex([])  # all_records with the values filters and sorts read, kept
        self.shown: list[ModelRecord] = []
        self.marked: dict[str, ModelRecord] = {}  # in marking order
        self.sort_key = "name"
        self.reverse = False
        self.filter_text = ""
        self.all_versions = False
        self.load_error: str | None = None
        self._last_good: set[int] | None = None  # positions (in all_records) of the last filter that parsed
        self._filter_timer: Timer | None = None
        self.best_fit: dict[str, str] = {}  # record key -> best-fit cell, computed for rows shown so far
        self._best_fit_pending: set[str] = set()  # keys the latest best-fit worker was asked for
        self._best_fit_worker: Worker | None = None
        self._best_fit_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield ModelTable(id="models")
        with Horizontal(id="filter-bar"):
            yield Label("/", id="filter-prompt")
            yield Input(placeholder="family = yolo AND params < 10M, or any text", id="filter", compact=True)
        yield Static("", id="filter-error")
        yield Static("", id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.reload()
        self.query_one(ModelTable).focus()

    # ------------------------------------------------------------------------------------------- data
    @property
    def table(self) -> ModelTable:
        return self.query_one(ModelTable)

    def reload(self, select: ModelRecord | None = None) -> None:
        """Read the registry again and repaint the table; keep (or move) the cursor."""
        try:
            self.all_records = self.app.registry.list_models(latest_only=not self.all_versions)
            self.load_error = None
        except UserError as exc:
            self.all_records = []
            self.load_error = str(exc)
        self._index = filters.RecordIndex(self.all_records)
        self._last_good = None
        self.best_fit = {}
        known = {record_key(r): r for r in self.all_records}
        self.marked = {k: known[k] for k in self.marked if k in known}
        self.refresh_rows()
        if select is not None:
            self.table.move_to(record_key(select))

    def refresh_rows(self) -> None:
        """Filter and sort the loaded records into the table. A bad filter keeps the last good rows and says why.
        Filter and sort read the values cached by the index: a key press costs a pass over cached columns."""
        matched = None
        error = None
        if self.filter_text.strip():
            try:
                matched = self._index.matches(self.filter_text)
            except UserError as exc:
                error = str(exc)
                matched = self._last_good
        self._last_good = matched
        self._show_filter_error(error)
        self.shown = self._index.select(matched, sort_expression(self.sort_key, self.reverse))
        self.table.show(self.shown, set(self.marked), self.best_fit)
        self.update_status()

    def _show_filter_error(self, error: str | None) -> None:
        widget = self.query_one("#filter-error", Static)
        widget.update(Text(fmt.safe_text(f"filter: {error}" if error else "")))
        widget.display = bool(error)

    def update_status(self) -> None:
        arrow = "v" if self.reverse else "^"
        parts = [f"{len(self.shown)} of {len(self.all_records)} models"]
        if self.all_versions:
            parts[0] += " (all versions)"
        parts.append(f"{len(self.marked)} marked")
        parts.append(f"sort: {self.sort_key} {arrow}")
        if self.filter_text.strip():
            parts.append("filtered (escape clears)")
        text = " | ".join(parts)
        if self.load_error:
            text = f"error: {self.load_error}"
        elif not self.all_records:
            text += " | press r to register a model file, or run `embodied-ai demo`"
        self.query_one("#status", Static).update(Text(fmt.safe_text(text)))

    # ------------------------------------------------------------------------------------------- filter
    def action_filter(self) -> None:
        self.query_one("#filter-bar").display = True
        self.query_one("#filter", Input).focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self._stop_filter_timer()
        if len(self.all_records) < DEBOUNCE_FROM:
            self.refresh_rows()
        else:  # big registries: filter once typing pauses, not on every key
            self._filter_timer = self.set_timer(DEBOUNCE_SECONDS, self._apply_typed_filter)

    def _apply_typed_filter(self) -> None:
        self._filter_timer = None
        self.refresh_rows()

    def _stop_filter_timer(self) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
            self._filter_timer = None

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        if self._filter_timer is not None:
            self._apply_typed_filter()
        if not event.value.strip():
            self.query_one("#filter-bar").display = False
        self.table.focus()

    def action_clear_filter(self) -> None:
        filter_input = self.query_one("#filter", Input)
        had_filter = bool(self.filter_text)
        self.query_one("#filter-bar").display = False
        self.table.focus()
        self._stop_filter_timer()
        if had_filter:
            self.filter_text = ""
            with filter_input.prevent(Input.Changed):
                filter_input.value = ""
            self.refresh_rows()

    # ------------------------------------------------------------------------------------------- sort
    def set_sort(self, key: str, reverse: bool | None = None) -> None:
        self.sort_key = key
        if reverse is not None:
            self.reverse = reverse
        self.refresh_rows()

    def action_sort(self) -> None:
        keys = list(SORTS)
        self.set_sort(keys[(keys.index(self.sort_key) + 1) % len(keys)])

    def action_reverse(self) -> None:
        self.set_sort(self.sort_key, not self.reverse)

    def action_all_versions(self) -> None:
        self.all_versions = not self.all_versions
        self.reload()

    # ------------------------------------------------------------------------------------------- rows
    def current_record(self) -> ModelRecord | None:
        return self.table.current_record()

    @on(ModelTable.Selected, "#models")
    def _row_selected(self, event: ModelTable.Selected) -> None:
        event.stop()
        self.app.open_detail(event.record)

    def action_mark(self) -> None:
        record = self.current_record()
        if record is None:
            return
        key = record_key(record)
        if key in self.marked:
            del self.marked[key]
        else:
            self.marked[key] = record
        self.table.set_mark(key, key in self.marked)
        self.update_status()
        self.table.action_cursor(1)

    def action_compare(self) -> None:
        records = list(self.marked.values())
        if not 2 <= len(records) <= MAX_COMPARE:
            self.notify(f"compare takes 2 to {MAX_COMPARE} models: mark them with space ({len(records)} marked)",
                        severity="warning", markup=False)
            return
        self.app.open_compare(records)

    def action_register(self) -> None:
        self.app.open_register()

    def action_fit(self) -> None:
        record = self.current_record()
        if record is not None:
            self.app.open_fit(record)

    # ------------------------------------------------------------------------------------------- best fit
    @on(ModelTable.FitsWanted, "#models")
    def _fits_wanted(self, event: ModelTable.FitsWanted) -> None:
        """Rows without a best fit were painted: compute those on screen once the table has been still for a moment
        (not on every step of a scroll, and not while the first frame is being made)."""
        event.stop()
        self.table.fits_wanted_seen()
        if self._best_fit_timer is not None:
            self._best_fit_timer.stop()
        self._best_fit_timer = self.set_timer(BEST_FIT_DELAY, self._start_best_fits)

    @property
    def shows_table(self) -> bool:
        """On top, or under dialogs only (help, register)."""
        for screen in reversed(self.app.screen_stack):
            if screen is self:
                return True
            if not screen.is_modal:
                return False
        return False

    def _start_best_fits(self) -> None:
        self._best_fit_timer = None
        if not self.shows_table:  # covered by detail, fit...: the table asks again when it is painted next
            return
        table = self.table
        keys = [k for k in table.visible_keys() if k not in self.best_fit]
        running = self._best_fit_worker is not None and not self._best_fit_worker.is_finished
        if not keys or (running and set(keys) <= self._best_fit_pending):
            return
        self._best_fit_pending = set(keys)
        self._best_fit_worker = self.compute_best_fits([table.records[k] for k in keys])

    @work(thread=True, exclusive=True, group="best-fit", exit_on_error=False)
    def compute_best_fits(self, records: list[ModelRecord]) -> None:
        """Fit each record on every device (one read of devices and measurements for all) and post its best row."""
        from embodied_tui.services.fit import FitContext, fit_record

        worker = get_current_worker()
        ctx, failed = None, "error"
        try:
            ctx = FitContext.open(self.app.registry)
        except Exception as exc:  # noqa: BLE001 - say so in the cells rather than leave them unknown
            failed = _error_cell(exc)
        for record in records:
            if worker.is_cancelled:
                return
            if ctx is None:
                text = failed
            elif record.macs is None:
                text = "no MACs"
            else:
                try:
                    text = best_fit_text(fastest(fit_record(ctx, record)))
                except Exception as exc:  # noqa: BLE001 - one bad record must not stop the column
                    text = _error_cell(exc)
            self.app.call_from_thread(self._set_best_fit, record_key(record), text)

    def _set_best_fit(self, key: str, text: str) -> None:
        self.best_fit[key] = text
        self._best_fit_pending.discard(key)
        self.table.set_best_fit(key, text)


def _error_cell(exc: BaseException) -> str:
    """A best-fit cell for a failure: the one-line message of a UserError, else the exception's type."""
    return f"error: {exc}" if isinstance(exc, UserError) else f"error: {type(exc).__name__}"
