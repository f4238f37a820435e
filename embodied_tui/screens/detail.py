"""One model: summary and verdict, census tree, shapes, MACs by layer type, file facts, model card; the convention
line below. Nothing slow runs on the UI thread: the stored details (census, per-layer costs, versions) are read in a
thread worker while the census, MACs/type and file tabs show a loading placeholder, and the card
(``services.card.model_card``: it fits the model on every device) is made and rendered to text in another
(``widgets.card_view``), so switching to the card tab costs a repaint."""
from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from embodied_tui import units as fmt
from embodied_tui.data.records import ModelDetails, ModelRecord
from embodied_tui.errors import NotFound, UserError, app_message
from embodied_tui.screens.glyphs import ascii_only, ellipsis, shown
from embodied_tui.screens.record_actions import RecordActions, record_keys
from embodied_tui.screens.tab_keys import TabKeys
from embodied_tui.screens.widgets.card_view import render_card
from embodied_tui.screens.widgets.census_tree import CensusTree
from embodied_tui.screens.widgets.context_bar import ContextBar
from embodied_tui.screens.widgets.type_bars import TypeBars, macs_by_type
from embodied_tui.screens.widgets.vim_scroll import VimScroll
from embodied_tui.services.context import removed_text

TABS = ("summary", "census", "shapes", "types", "file", "card")
TAB_NAMES = {"summary": "Summary", "census": "Census", "shapes": "Shapes", "types": "MACs/type", "file": "File",
             "card": "Card"}
LOADING_TABS = ("census", "types", "file")  # filled from the stored details, read in a worker


def convention(record: ModelRecord) -> str:
    return f"MACs = multiply-accumulates | FLOPs = 2 x MACs | bytes at {record.dtype} ({record.dtype_bytes} B)"


def _box() -> box.Box:
    """Table lines: rich's default, or ASCII where the terminal has no line glyphs (``glyphs.ascii_only``)."""
    return box.ASCII if ascii_only() else box.HEAVY_HEAD


def _t(text: str, **kwargs) -> Text:
    """Registry or file text (or ours with it) as a Text: escaped (``units.safe_text``), never read as markup; an
    unknown number's '—' as this terminal shows it (``glyphs.shown``)."""
    return Text(shown(fmt.safe_text(text)), **kwargs)


def title_line(record: ModelRecord) -> str:
    arch = record.architecture
    return (f"{record.name} v{record.version} | {arch.type}/{arch.family} | {fmt.count(record.params)} params | "
            f"{fmt.gmacs(record.macs)} GMACs")


def _facts(rows: list[tuple[str, str | Text]]) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in rows:
        grid.add_row(key, value if isinstance(value, Text) else _t(value))
    return grid


def summary_view(record: ModelRecord) -> Group:
    arch = record.architecture
    macs = fmt.count(record.macs)
    if record.macs is None:
        macs += f"  (not computed: {record.macs_null_reason or 'no reason given'})"
    elif not record.macs_complete:
        macs += "  (partial: some parts not counted, see below)"
    rows = [
        ("type", arch.type),
        ("family", arch.family),
        ("task", arch.task or fmt.NA),
        ("params", f"{fmt.count(record.params)}  ({fmt.exact(record.params)})"),
        ("MACs", macs + "  (conv, linear, matmul, attention)"),
        ("FLOPs", fmt.count(record.flops)),
        ("other FLOPs", fmt.count(record.other_flops) + "  (elementwise, normalisation; not in MACs)"),
        ("weights", fmt.nbytes(record.weight_bytes)),
        ("activations", f"{fmt.nbytes(record.activation_bytes)} peak, "
                        f"{fmt.nbytes(record.activation_bytes_total)} all outputs"),
        ("traffic", f"{fmt.nbytes(record.unfused_bytes)} unfused, {fmt.nbytes(record.fused_bytes)} fused"),
        ("counted by", record.counter or fmt.NA),
    ]
    parts: list = [_facts(rows), Text("")]
    parts.append(Text("Why this verdict", style="bold underline"))
    if arch.evidence:
        parts.extend(_t(f"- {line}") for line in arch.evidence)
    else:
        parts.append(Text("- no structural evidence recorded"))
    if record.uncounted:
        parts += [Text(""), Text("Not counted", style="bold underline")]
        parts.extend(_t(f"- {u.module}{' ' + u.op if u.op else ''}: {u.reason}") for u in record.uncounted)
    if record.notes:
        parts += [Text(""), Text("Notes", style="bold underline")]
        parts.extend(_t(f"- {note}") for note in record.notes)
    return Group(*parts)


def shapes_view(record: ModelRecord) -> Group:
    inputs = Table(title="Inputs", title_justify="left", expand=False, show_edge=False, box=_box())
    for column in ("name", "shape", "dtype", "source"):
        inputs.add_column(column, overflow="fold")
    for i, dims in enumerate(record.input_shapes):
        name = record.input_names[i] if i < len(record.input_names) else f"input {i}"
        symbols = record.input_symbols[i] if i < len(record.input_symbols) else None
        dtype = record.input_dtypes[i] if i < len(record.input_dtypes) else fmt.NA
        inputs.add_row(_t(name), _t(fmt.shape(dims, symbols)), _t(dtype), _t(record.input_shape_source))
    outputs = Table(title="Outputs", title_justify="left", expand=False, show_edge=False, box=_box())
    for column in ("name", "shape"):
        outputs.add_column(column, overflow="fold")
    for i, dims in enumerate(record.output_shapes):
        name = record.output_names[i] if i < len(record.output_names) else f"output {i}"
        outputs.add_row(_t(name), _t(fmt.shape(dims)))
    parts: list = [inputs if record.input_shapes else Text("Inputs: none recorded"), Text("")]
    parts.append(outputs if record.output_shapes else Text("Outputs: none recorded"))
    parts += [Text(""), Text("source: file = stored in the model file, user = given at registration, "
                             "inferred = guessed from the first layer (check it)", style="italic")]
    return Group(*parts)


def types_view(totals: list[tuple[str, int]], model_macs: int | None, layers: dict[str, int]) -> Table:
    table = Table(show_edge=False, expand=False, box=_box())
    table.add_column("layer type")
    table.add_column("count", justify="right")
    table.add_column("MACs", justify="right")
    table.add_column("share", justify="right")
    for name, macs in totals:
        table.add_row(_t(name), _t(str(layers.get(name, fmt.NA))), _t(fmt.count(macs)),
                      _t(fmt.percent(macs, model_macs)))
    return table


def file_view(record: ModelRecord, versions: list[ModelRecord]) -> Group:
    fmt_text = record.format + (f" ({record.format_detail})" if record.format_detail else "")
    external = fmt.NA
    if record.external_data:
        external = f"{', '.join(record.external_data)} ({fmt.nbytes(record.external_data_bytes)})"
    rows = [
        ("path", record.path),
        ("format", fmt_text),
        ("size", f"{fmt.nbytes(record.size_bytes)}  ({fmt.exact(record.size_bytes)} bytes)"),
        ("external data", external),
        ("SHA-256", record.sha256),
        ("dtype", f"{record.dtype} ({record.dtype_bytes} bytes/element)"),
        ("registered", record.registered_at),
        ("tags", fmt.tags(record.tags) or fmt.NA),
        ("description", record.description or fmt.NA),
    ]
    history = Table(title="Versions", title_justify="left", show_edge=False, box=_box())
    for column in ("", "v", "registered", "SHA-256", "GMACs"):
        history.add_column(column)
    for other in versions:
        history.add_row(*(_t(c) for c in ("*" if other.version == record.version else "", str(other.version),
                                           other.registered_at, other.sha256[:12], fmt.gmacs(other.macs))))
    return Group(_facts(rows), Text(""), history)


class DetailScreen(RecordActions, TabKeys, Screen):
    TABS = TABS

    HELP_TITLE = "Model detail"
    BINDINGS = [
        Binding("escape,q", "app.back", "Back", id="detail.back"),
        Binding("1", "tab('summary')", "Summary", show=False, id="detail.tab1"),
        Binding("2", "tab('census')", "Census", show=False, id="detail.tab2"),
        Binding("3", "tab('shapes')", "Shapes", show=False, id="detail.tab3"),
        Binding("4", "tab('types')", "MACs/type", show=False, id="detail.tab4"),
        Binding("5", "tab('file')", "File", show=False, id="detail.tab5"),
        Binding("6", "tab('card')", "Card", show=False, id="detail.tab6"),
        Binding("right_square_bracket", "next_tab(1)", "Next tab", id="detail.next_tab"),
        Binding("left_square_bracket", "next_tab(-1)", "Prev tab", show=False, id="detail.prev_tab"),
        Binding("f", "fit", "Fit", id="detail.fit"),
        *record_keys("detail"),
    ]

    def __init__(self, record: ModelRecord) -> None:
        super().__init__()
        self.record = record
        self.details: ModelDetails | None = None
        self.details_error: str | None = None
        self.versions: list[ModelRecord] = [record]
        self.card_text: str | None = None  # the model card (Markdown) once made
        self.card_model = None  # the services.card.Card once made (its tables are laid out again on a resize)
        self.card_width = 0  # the width the card was rendered at
        self.removed = False  # the model was removed from the registry while this screen was open

    def compose(self) -> ComposeResult:
        record = self.record
        yield ContextBar()
        yield Static(_t(title_line(record)), id="detail-title")
        with TabbedContent(initial="summary", id="tabs"):
            with TabPane("1 Summary", id="summary"):
                yield VimScroll(Static(summary_view(record)), id="summary-scroll", classes="pane")
            with TabPane("2 Census", id="census"):
                yield CensusTree(_t(record.name), id="census-tree")
                yield Static("", id="census-empty")
            with TabPane("3 Shapes", id="shapes"):
                yield VimScroll(Static(shapes_view(record)), classes="pane")
            with TabPane("4 MACs/type", id="types"):
                with VimScroll(classes="pane", id="types-scroll"):
                    yield TypeBars(id="type-bars")
                    yield Static("", id="type-table")
            with TabPane("5 File", id="file"):
                yield VimScroll(Static("", id="file-facts"), classes="pane")
            with TabPane("6 Card", id="card"):
                with VimScroll(classes="pane", id="card-scroll"):
                    yield Static("", id="card-text")
        yield Static(_t(convention(record)), id="convention")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        for tab in LOADING_TABS:
            self.query_one(f"#{tab}", TabPane).loading = True
        self.query_one("#card-scroll").loading = True
        self._focus_pane("summary")
        self.load_details()
        self.make_card(self._card_width())

    @work(thread=True, exclusive=True, group="details", exit_on_error=False)
    def load_details(self) -> tuple[ModelDetails | None, list[ModelRecord], str | None]:
        """The stored details and the versions of the model (a file read, a hash and a validation: off the UI
        thread), and why they could not be read."""
        try:
            details = self.app.registry.details(self.record)
            versions = self.app.registry.versions(self.record.name) or [self.record]
        except UserError as exc:
            return None, [self.record], app_message(exc)
        return details, versions, None

    def show_details(self, details: ModelDetails | None, versions: list[ModelRecord], error: str | None) -> None:
        record = self.record
        self.details, self.versions, self.details_error = details, versions, error
        self.query_one("#file-facts", Static).update(file_view(record, self.versions))
        tree = self.query_one(CensusTree)
        empty = self.query_one("#census-empty", Static)
        census = self.details.census if self.details else []
        if census:
            tree.load(census, record.macs, record.name)
            empty.display = False
        else:
            tree.display = False
            empty.update(_t(f"No census: {self.details_error}" if self.details_error else
                            "No census stored for this model (its format has no module tree)."))
        totals = macs_by_type(self.details.layer_costs) if self.details else []
        bars = self.query_one(TypeBars)
        if totals:
            bars.plot(totals)
            bars.styles.height = min(len(totals), 11) * 2 + 4
            self.query_one("#type-table", Static).update(types_view(totals, record.macs, record.layers))
        else:
            bars.display = False
            self.query_one("#type-table", Static).update(
                _t(f"No per-layer costs: {self.details_error}" if self.details_error else
                   "No per-layer costs stored for this model."))
        for tab in LOADING_TABS:
            self.query_one(f"#{tab}", TabPane).loading = False
        active = self.query_one(TabbedContent).active
        if active in LOADING_TABS:
            self._focus_pane(active)

    def _card_width(self) -> int:
        """The card pane's text width: the screen less the pane's padding (2) and its scrollbar (2), and a cell."""
        return max(self.size.width - 5, 20)

    @work(thread=True, exclusive=True, group="card", exit_on_error=False)
    def make_card(self, width: int) -> tuple[str, Text, int]:
        """The card (Markdown) and its rendering at ``width`` (made once; rendered again on a resize), its tables laid
        out for the width (``Card.to_markdown(width=)``: numbers whole or their column hidden, and said so)."""
        card = self.card_model
        if card is None:
            from embodied_tui.services.card import model_card

            card = self.card_model = model_card(self.app.registry, self.record.name, self.record.version)
        ascii = ascii_only()
        shown = card.to_markdown(width=width, ellipsis=ellipsis(), dash="-" if ascii else "—")
        return card.to_markdown(), render_card(shown, width, ascii), width

    def on_resize(self) -> None:
        if self.card_text is not None and self._card_width() != self.card_width:
            self.make_card(self._card_width())

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        if event.worker.group == "details":
            if event.state == WorkerState.SUCCESS:
                self.show_details(*event.worker.result)
            else:
                self.show_details(None, [self.record], _error_text(event.worker.error))
            return
        if event.worker.group != "card":
            return
        self.query_one("#card-scroll").loading = False
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            if isinstance(error, NotFound):
                self.show_removed()
            why = self.removed_line() if isinstance(error, NotFound) else _error_text(error)
            text = fmt.safe_text(f"No model card: {why}")
            self.card_text = None
            self.query_one("#card-text", Static).update(Text(text))
        else:
            self.card_text, rendered, self.card_width = event.worker.result
            self.query_one("#card-text", Static).update(rendered)
        if self.query_one(TabbedContent).active == "card":
            self._focus_pane("card")

    def crumbs(self) -> list[str]:
        return [self.record.name, TAB_NAMES.get(self.query_one(TabbedContent).active, "")]

    def removed_line(self) -> str:
        """The line the title shows once the model was removed elsewhere ('' while it is registered)."""
        return removed_text(self.record) if self.removed else ""

    def show_removed(self) -> None:
        """The model was removed by another process: say so in the title line; what is shown stays readable."""
        self.removed = True
        title = self.query_one("#detail-title", Static)
        title.update(_t(self.removed_line()))
        title.add_class("removed")

    def _focus_pane(self, tab: str) -> None:
        pane = self.query_one(f"#{tab}", TabPane)
        for widget in pane.query("*"):
            if widget.focusable and widget.display:
                widget.focus()
                return

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id:
            self._focus_pane(event.pane.id)

    def action_fit(self) -> None:
        self.app.open_fit(self.record)

    def current_record(self) -> ModelRecord:
        return self.record

    def focused_item(self) -> tuple[str, str, tuple] | None:
        """The census node under the tree's cursor, when the tree has the focus: its dotted path (the model's name
        for the root) and its row (path, type, params, MACs, output shape as 1x64x56x56; exact numbers)."""
        tree = self.focused
        if not isinstance(tree, CensusTree) or tree.cursor_node is None or tree.cursor_node.data is None:
            return None
        node = tree.cursor_node.data
        shape = "x".join(map(str, node.output_shape)) if node.output_shape is not None else None
        return "census node", node.path or self.record.name, (node.path, node.type, node.params, node.macs, shape)

    def records_changed(self, select: ModelRecord | None = None, removed: ModelRecord | None = None) -> None:
        """After an edit: show the edited record (its tags and description); after a removal: back to the table.
        The registry table underneath reads the registry again either way."""
        registry_screen = self.app.registry_screen
        if removed is not None:
            self.app.pop_screen()
            registry_screen.records_changed()
            return
        if select is not None:
            self.record = select
            self.query_one("#summary-scroll", VerticalScroll).query_one(Static).update(summary_view(select))
            self.query_one("#file-facts", Static).update(file_view(select, self.versions))
        registry_screen.records_changed(select=select)


def _error_text(error: BaseException | None) -> str:
    if isinstance(error, UserError):
        return str(error)
    return f"{type(error).__name__}: {error}" if error is not None else "unknown error"
