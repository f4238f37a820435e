"""One model: summary and verdict, census tree, shapes, MACs by layer type, file facts, model card; the convention
line below. The card (``services.card.model_card``: it fits the model on every device) is made in a thread worker."""
from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Markdown, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from embodied_tui import units as fmt
from embodied_tui.data.records import ModelDetails, ModelRecord
from embodied_tui.errors import UserError
from embodied_tui.screens.tab_keys import TabKeys
from embodied_tui.screens.widgets.census_tree import CensusTree
from embodied_tui.screens.widgets.type_bars import TypeBars, macs_by_type

TABS = ("summary", "census", "shapes", "types", "file", "card")


def convention(record: ModelRecord) -> str:
    return f"MACs = multiply-accumulates | FLOPs = 2 x MACs | bytes at {record.dtype} ({record.dtype_bytes} B)"


def _t(text: str, **kwargs) -> Text:
    """Registry or file text (or ours with it) as a Text: escaped (``units.safe_text``), never read as markup."""
    return Text(fmt.safe_text(text), **kwargs)


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
    inputs = Table(title="Inputs", title_justify="left", expand=False, show_edge=False)
    for column in ("name", "shape", "dtype", "source"):
        inputs.add_column(column, overflow="fold")
    for i, dims in enumerate(record.input_shapes):
        name = record.input_names[i] if i < len(record.input_names) else f"input {i}"
        symbols = record.input_symbols[i] if i < len(record.input_symbols) else None
        dtype = record.input_dtypes[i] if i < len(record.input_dtypes) else fmt.NA
        inputs.add_row(_t(name), _t(fmt.shape(dims, symbols)), _t(dtype), _t(record.input_shape_source))
    outputs = Table(title="Outputs", title_justify="left", expand=False, show_edge=False)
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
    table = Table(show_edge=False, expand=False)
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
    history = Table(title="Versions", title_justify="left", show_edge=False)
    for column in ("", "v", "registered", "SHA-256", "GMACs"):
        history.add_column(column)
    for other in versions:
        history.add_row(*(_t(c) for c in ("*" if other.version == record.version else "", str(other.version),
                                           other.registered_at, other.sha256[:12], fmt.gmacs(other.macs))))
    return Group(_facts(rows), Text(""), history)


class DetailScreen(TabKeys, Screen):
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
        Binding("f", "fit", "Fit", show=False, id="detail.fit"),
    ]

    def __init__(self, record: ModelRecord) -> None:
        super().__init__()
        self.record = record
        self.details: ModelDetails | None = None
        self.details_error: str | None = None
        self.versions: list[ModelRecord] = [record]
        self.card_text: str | None = None  # the model card (Markdown) once made

    def compose(self) -> ComposeResult:
        record = self.record
        yield Static(_t(title_line(record)), id="detail-title")
        with TabbedContent(initial="summary", id="tabs"):
            with TabPane("1 Summary", id="summary"):
                yield VerticalScroll(Static(summary_view(record)), id="summary-scroll", classes="pane")
            with TabPane("2 Census", id="census"):
                yield CensusTree(_t(record.name), id="census-tree")
                yield Static("", id="census-empty")
            with TabPane("3 Shapes", id="shapes"):
                yield VerticalScroll(Static(shapes_view(record)), classes="pane")
            with TabPane("4 MACs/type", id="types"):
                with VerticalScroll(classes="pane", id="types-scroll"):
                    yield TypeBars(id="type-bars")
                    yield Static("", id="type-table")
            with TabPane("5 File", id="file"):
                yield VerticalScroll(Static("", id="file-facts"), classes="pane")
            with TabPane("6 Card", id="card"):
                with VerticalScroll(classes="pane", id="card-scroll"):
                    yield Markdown("", id="card-text")
        yield Static(_t(convention(record)), id="convention")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        record = self.record
        try:
            self.details = self.app.registry.details(record)
            self.versions = self.app.registry.versions(record.name) or [record]
        except UserError as exc:
            self.details_error = str(exc)
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
        self._focus_pane("summary")
        self.query_one("#card-scroll").loading = True
        self.make_card()

    @work(thread=True, exclusive=True, group="card", exit_on_error=False)
    def make_card(self) -> str:
        from embodied_tui.services.card import model_card

        return model_card(self.app.registry, self.record.name, self.record.version).to_markdown()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "card" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self.query_one("#card-scroll").loading = False
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            text = str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
            self.card_text = fmt.safe_text(f"No model card: {text}")
        else:
            self.card_text = event.worker.result
        self.query_one("#card-text", Markdown).update(self.card_text)

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
