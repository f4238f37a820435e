"""The registry screen: every registered model in a table; filter, sort, mark, open, compare, register, fit.

The target columns hold each model's predicted latency (ms) and fps on the pinned target (``services.target``: set
from the palette, "Set target...", or `embodied-ai --target`), or, with none pinned, its fastest row over every device
(labelled "fastest"). They are computed in a thread worker for the rows on screen only, when they are first painted
(for every row shown while the table is sorted by target), and kept in memory for the session (a reload of the
registry or a new target forgets them); "—" until known.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

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
from embodied_tui.errors import UserError, app_message
from embodied_tui.screens.record_actions import RecordActions, record_keys
from embodied_tui.screens.widgets.context_bar import ContextBar
from embodied_tui.screens.widgets.model_table import ModelTable, record_key

if TYPE_CHECKING:
    from embodied_tui.services import target as targets

MAX_COMPARE = 4
# records; below this the table follows every key. Filter + sort + table rebuild read cached values (see
# filters.RecordIndex), so a key costs about as much at 10,000 records as at 10 (benchmarks/tui_startup.py); larger
# registries, not measured, are still filtered once typing pauses.
DEBOUNCE_FROM = 10_001
DEBOUNCE_SECONDS = 0.15
BEST_FIT_DELAY = 0.2  # s the table must rest before the best fits of the rows on screen are computed
# ``services.target.SORT`` (a test checks they agree): that module (device catalog, YAML, roofline rows) is imported
# when a target cell is first computed, after the first frame, not with this screen
TARGET_SORT = "target"


def _targets():
    from embodied_tui.services import target

    return target


# sort name shown -> field of the filter language; `s` cycles through them in this order
SORTS: dict[str, str] = {
    "name": "name",
    "params": "params",
    "GMACs": "macs",
    "family": "family",
    "type": "type",
    "format": "format",
    "registered": "registered_at",
    TARGET_SORT: "name",  # by name, then by the target's ms (``services.target.sort_by_ms``) once every row's is known
}


def sort_expression(key: str, reverse: bool) -> str:
    """The filter language's sort key for a sort shown as ``key``; unknown values (MACs we could not count) stay last
    either way."""
    return ("-" if reverse else "") + SORTS[key]


class RegistryScreen(RecordActions, Screen):
    HELP_TITLE = "Registry"
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="registry.filter"),
        Binding("s", "sort", "Sort", id="registry.sort"),
        Binding("S", "reverse", "Reverse", show=False, id="registry.reverse"),
        Binding("space", "mark", "Mark", id="registry.mark"),
        Binding("c", "compare", "Compare", id="registry.compare"),
        Binding("r", "register", "Register", id="registry.register"),
        Binding("f", "fit", "Fit", id="registry.fit"),
        Binding("A", "all_versions", "All versions", show=False, id="registry.all_versions"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="registry.clear_filter"),
        Binding("q", "app.quit", "Quit", show=False, id="registry.quit"),
        Binding("ctrl+r", "refresh_registry", "Refresh", show=False, id="registry.refresh"),
        *record_keys("registry"),
        Binding("M", "clear_marks", "Clear marks", show=False, id="registry.clear_marks"),
        Binding("ctrl+e", "export", "Export rows (CSV/JSON)", show=False, id="registry.export"),
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
        self.reading = False  # a large registry is being read in a worker (the table is empty until it is)
        self._last_good: set[int] | None = None  # positions (in all_records) of the last filter that parsed
        self._filter_timer: Timer | None = None
        self.best_fit: dict[str, targets.TargetCell] = {}  # record key -> target cell, for rows shown so far
        self._best_fit_pending: set[str] = set()  # keys the latest best-fit worker was asked for
        self._best_fit_worker: Worker | None = None
        self._best_fit_timer: Timer | None = None
        self._target_generation = 0  # bumped by a new target: cells of an older one are dropped

    def compose(self) -> ComposeResult:
        yield ContextBar()
        yield ModelTable(id="models")
        with Horizontal(id="filter-bar"):
            yield Label("/", id="filter-prompt")
            yield Input(placeholder="family = yolo AND params < 10M, or any text", id="filter", compact=True)
        yield Static("", id="filter-error")
        yield Static("", id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        if self.app.reads_in_background():  # a large registry: the first frame first, the rows when read
            self.reading = True
            self.update_status()
            self.app.refresh_registry()
        else:
            self.reload()
        self.query_one(ModelTable).focus()

    def crumbs(self) -> list[str]:
        return ["Registry"]

    def action_refresh_registry(self) -> None:
        """ctrl+r: read the registry again now (it is also watched: changes show within about a second)."""
        self.app.refresh_registry()
        self.notify("registry read again", timeout=2)

    # ------------------------------------------------------------------------------------------- data
    @property
    def table(self) -> ModelTable:
        return self.query_one(ModelTable)

    def reload(self, select: ModelRecord | None = None) -> None:
        """Read the registry again and repaint the table; keep (or move) the cursor."""
        self.show_records(*self.read_records(), select=select)

    def read_records(self) -> tuple[list[ModelRecord], str | None]:
        """The records the table lists (latest versions, or every version after `A`) and, when the registry could not
        be read, why. Reads only: the app's registry watcher calls it from a thread worker."""
        try:
            return self.app.registry.list_models(latest_only=not self.all_versions), None
        except UserError as exc:
            return [], app_message(exc)

    def show_records(self, records: list[ModelRecord], error: str | None, select: ModelRecord | None = None) -> None:
        """Show records read from the registry: the filter, the sort, the cursor (on the same model while it is
        listed) and the marks (of models still listed) are kept."""
        self.all_records = records
        self.load_error = error
        self.reading = False
        self._index = filters.RecordIndex(self.all_records)
        self._last_good = None
        self.best_fit = {}
        if self.marked:  # marks of models still listed (no pass over 10,000 records when nothing is marked)
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
                error = app_message(exc)
                matched = self._last_good
        self._last_good = matched
        self._show_filter_error(error)
        self.shown = self._index.select(matched, sort_expression(self.sort_key, self.reverse))
        if self.sort_key == TARGET_SORT:
            order = _targets().sort_by_ms([record_key(r) for r in self.shown], self.best_fit, self.reverse)
            by_key = {record_key(r): r for r in self.shown}
            self.shown = [by_key[k] for k in order]
            if len(self.best_fit) < len(order) and any(k not in self.best_fit for k in order):
                self.call_after_refresh(self._start_best_fits)  # every shown row's cell, then sorted again
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
        if self.table.layout_note():
            parts.append(self.table.layout_note())
        text = " | ".join(parts)
        if self.load_error:
            text = f"error: {self.load_error}"
        elif self.reading:
            text = "reading the registry ..."
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

    # ------------------------------------------------------------------------------------------- doing things
    def records_changed(self, select: ModelRecord | None = None, removed: ModelRecord | None = None) -> None:
        """An edit or a removal from this screen or the detail screen: read the registry again."""
        self.reload(select=select)

    def target_cells(self) -> dict:
        return self.best_fit

    def action_clear_marks(self) -> None:
        count = len(self.marked)
        self.marked = {}
        self.refresh_rows()
        self.notify(f"cleared {count} mark{'s' * (count != 1)}" if count else "no marks to clear", markup=False)

    def action_export(self) -> None:
        """Write the rows shown (filter and sort applied) to a CSV or JSON file (``services.export``)."""
        from embodied_tui.screens.export import ExportDialog
        from embodied_tui.services.export import default_path, write_records

        records, cells = list(self.shown), dict(self.best_fit)
        if not records:
            self.notify("nothing to export: no rows are shown", severity="warning", markup=False)
            return
        what = f"{len(records)} row{'s' * (len(records) != 1)} as shown" + (
            f" (filter: {self.filter_text.strip()})" if self.filter_text.strip() else "")

        def done(path) -> None:
            if path is not None:
                self.notify(fmt.safe_text(f"exported {what} to {path}"), markup=False)

        self.app.push_screen(ExportDialog(f"{what}; CSV: exact numbers, JSON: whole records", default_path("models"),
                                          lambda path, overwrite: write_records(path, records, cells,
                                                                                overwrite=overwrite)), done)

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

    @on(ModelTable.LayoutChanged, "#models")
    def _layout_changed(self, event: ModelTable.LayoutChanged) -> None:
        event.stop()
        if self.is_attached and self.query("#status"):  # not while the screen is being taken down
            self.update_status()

    @property
    def shows_table(self) -> bool:
        """On top, or under dialogs only (help, register)."""
        for screen in reversed(self.app.screen_stack):
            if screen is self:
                return True
            if not screen.is_modal:
                return False
        return False

    def set_target(self, spec: str | None) -> None:
        """Pin ``spec`` (DEVICE[/MODE[/PRECISION]]) as the target, or forget it (None), then recompute the column."""
        self.pin_target(spec)

    @work(thread=True, exclusive=True, group="set-target", exit_on_error=False)
    def pin_target(self, spec: str | None) -> None:
        """Store the target in the registry's settings (a registry write: off the UI thread)."""
        db = self.app.registry
        try:
            pinned = _targets().pin(db, spec) if spec is not None else None
            if spec is None:
                _targets().unpin(db)
        except UserError as exc:
            self.app.call_from_thread(self.notify, fmt.safe_text(str(exc)), severity="error", markup=False)
            return
        what = pinned.spec() if pinned else "none: the fastest of any device"
        self.app.call_from_thread(self.notify, fmt.safe_text(f"target: {what}"), markup=False)
        self.app.call_from_thread(self.retarget)

    def retarget(self) -> None:
        """The pinned target changed: forget every target cell; the rows on screen are computed again."""
        self._target_generation += 1
        self.best_fit = {}
        self._best_fit_pending = set()
        self.table.forget_best_fits()
        if self._best_fit_worker is not None:
            self._best_fit_worker.cancel()
        self._start_best_fits()

    def _start_best_fits(self) -> None:
        self._best_fit_timer = None
        if not self.shows_table:  # covered by detail, fit...: the table asks again when it is painted next
            return
        table = self.table
        wanted = table.keys if self.sort_key == TARGET_SORT else table.visible_keys()  # a sort needs every row
        keys = [k for k in wanted if k not in self.best_fit]
        running = self._best_fit_worker is not None and not self._best_fit_worker.is_finished
        if not keys or (running and set(keys) <= self._best_fit_pending):
            return
        self._best_fit_pending = set(keys)
        self._best_fit_worker = self.compute_best_fits([table.records[k] for k in keys])

    @work(thread=True, exclusive=True, group="best-fit", exit_on_error=False)
    def compute_best_fits(self, records: list[ModelRecord]) -> None:
        """The target cell of each record (``services.target.cells``: one read of devices and measurements for all),
        posted one by one; the column headers first."""
        worker = get_current_worker()
        generation = self._target_generation
        db = self.app.registry
        try:
            pinned = _targets().pinned(db)
            headers = _targets().headers(pinned, _targets().device_short_names(db))
        except UserError as exc:
            pinned, headers = None, ("ms fastest", f"error: {app_message(exc)}")
        self.app.call_from_thread(self._set_target_headers, generation, headers)
        for record, cell in _targets().cells(db, records, pinned, lambda: worker.is_cancelled):
            if worker.is_cancelled:
                return
            self.app.call_from_thread(self._set_target_cell, generation, record_key(record), cell)
        self.app.call_from_thread(self._target_cells_done, generation)

    def cells_wanted_after_read(self) -> tuple[int, list[str]]:
        """What a read of the registry may compute with it (``services.live_read``): the target generation and the
        keys of the rows on screen without a cell (none while sorted by target: that sort needs every row's)."""
        tables = self.query(ModelTable)  # none while the screen is still being built or already taken down
        if self.sort_key == TARGET_SORT or not self.is_mounted or not tables:
            return self._target_generation, []
        return self._target_generation, tables.first().visible_keys()

    def show_target_cells(self, generation: int, headers: tuple[str, str], cells: dict) -> None:
        """Target cells computed with a read of the registry (after ``show_records``): shown as the worker's are."""
        self._set_target_headers(generation, headers)
        for key, cell in cells.items():
            self._set_target_cell(generation, key, cell)

    def _set_target_headers(self, generation: int, headers: tuple[str, str]) -> None:
        if generation == self._target_generation:
            self.table.set_target_header(*headers)

    def _set_target_cell(self, generation: int, key: str, cell: targets.TargetCell) -> None:
        if generation == self._target_generation:  # not a cell of a target since replaced
            self._set_best_fit(key, cell)

    def _target_cells_done(self, generation: int) -> None:
        """Sorted by target: once every shown row has its cell, sort them (the cursor stays on its record)."""
        if generation == self._target_generation and self.sort_key == TARGET_SORT:
            self.refresh_rows()

    def _set_best_fit(self, key: str, cell: targets.TargetCell) -> None:
        self.best_fit[key] = cell
        self._best_fit_pending.discard(key)
        self.table.set_best_fit(key, cell)
