"""Stored pipelines on a device: the list of pipelines (`embodied-ai pipeline register`) and, for the selected one on
the chosen device x power mode x precision, each stage's time with a text bar of its share of the control period, the
total against the period the rate needs, the rate and memory verdicts and the ranked changes that would meet the rate.

Everything comes from ``services.pipelines`` (the list and devices, then ``fit_stored``) in thread workers; this
screen only shows it. Keys: j/k move in the list (the fit follows; in the report pane, reached with tab, j/k/g/G scroll
it), d/D next/previous device, m next power mode, x
next precision, escape back.
"""
from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.worker import Worker, WorkerState

from embodied_tui import units as fmt
from embodied_tui.errors import UserError, app_message
from embodied_tui.screens.widgets.vim_scroll import VimScroll
from embodied_tui.screens.widgets.vim_table import VimTable

PRECISIONS = (None, "fp16", "bf16", "int8", "int4", "fp32")  # None: the pipeline's own (the spec's, else fp16)
BAR = 18  # cells of a stage's share bar


class PipelineList(VimTable):
    HELP_TITLE = "Pipelines"


class PipelineScreen(Screen):
    HELP_TITLE = "Pipelines"
    DEFAULT_CSS = """
    PipelineScreen #pl-title, PipelineScreen #pl-status { height: 1; }
    PipelineScreen #pl-list { height: 6; }
    PipelineScreen #pl-report-box { height: 1fr; }
    """
    BINDINGS = [
        Binding("escape,q", "back", "Back", id="pipeline.back"),
        Binding("d", "device(1)", "Device", id="pipeline.next_device"),
        Binding("D", "device(-1)", "Prev device", show=False, id="pipeline.prev_device"),
        Binding("m", "mode", "Mode", id="pipeline.next_mode"),
        Binding("x", "precision", "Precision", id="pipeline.next_precision"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.pipelines: list = []  # StoredPipeline, latest versions
        self.targets: list = []  # services.pipelines.Target
        self.device_index = 0
        self.mode: str | None = None
        self.precision_index = 0
        self.fit = None  # the PipelineFit shown
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="pl-title")
        yield PipelineList(cursor_type="row", zebra_stripes=False, id="pl-list")
        with VimScroll(id="pl-report-box"):  # tab to it: j/k scroll the report
            yield Static("", id="pl-report")
        yield Static("", id="pl-status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.table
        for header in ("pipeline", "v", "need Hz", "stages"):
            table.add_column(header, key=header)
        table.loading = True
        table.focus()
        self.load_list()

    @property
    def table(self) -> PipelineList:
        return self.query_one(PipelineList)

    # ------------------------------------------------------------------------------------------ what is chosen
    @property
    def target(self):
        return self.targets[self.device_index] if self.targets else None

    @property
    def precision(self) -> str | None:
        return PRECISIONS[self.precision_index]

    def selected(self):
        if not self.pipelines:
            return None
        return self.pipelines[min(max(self.table.cursor_row, 0), len(self.pipelines) - 1)]

    def update_title(self) -> None:
        target = self.target
        where = f"{target.device} | mode {self.mode}" if target else "no device"
        prec = self.precision or "the pipeline's precision"
        self.query_one("#pl-title", Static).update(_text(f"Pipelines on {where} | {prec}"))

    # ------------------------------------------------------------------------------------------ workers
    @work(thread=True, exclusive=True, group="pipeline-list", exit_on_error=False)
    def load_list(self) -> tuple[list, list]:
        from embodied_tui.services.pipelines import list_pipelines, targets

        return list_pipelines(self.app.registry), targets(self.app.registry)

    @work(thread=True, exclusive=True, group="pipeline-fit", exit_on_error=False)
    def load_fit(self, stored, device: str, mode: str | None, precision: str | None):
        from embodied_tui.services.pipelines import fit_stored

        return fit_stored(self.app.registry, stored, device, mode=mode, precision=precision)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        worker = event.worker
        if worker.group == "pipeline-list":
            self.table.loading = False
            if event.state == WorkerState.ERROR:
                self.show_error(worker.error)
                return
            self.pipelines, self.targets = worker.result
            self.mode = self.target.default_mode if self.target else None
            for p in self.pipelines:
                self.table.add_row(_text(p.name), Text(str(p.version), justify="right"),
                                   Text(fmt.number(p.spec.required_rate_hz), justify="right"),
                                   _text(", ".join(s.name for s in p.spec.stages)), key=f"{p.name}@{p.version}")
            self.table.focus()
            if not self.pipelines:
                self.query_one("#pl-report", Static).update(_text(
                    "No pipelines stored in this registry yet. A pipeline lists a robot's model stages and the "
                    "control rate they must meet (a YAML spec, as in examples/pipelines/); once one is stored, its "
                    "per-stage time on each device shows here."))
            self.refit()
        elif worker.group == "pipeline-fit":
            if event.state == WorkerState.ERROR:
                self.show_error(worker.error)
                return
            self.fit, self.error = worker.result, None
            self.query_one("#pl-report", Static).update(report(self.fit))
            self.update_status()

    def show_error(self, error: BaseException | None) -> None:
        self.error = app_message(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
        self.query_one("#pl-report", Static).update(_text(f"error: {self.error}"))
        self.update_status()

    def refit(self) -> None:
        self.update_title()
        stored, target = self.selected(), self.target
        if stored is None or target is None:
            self.update_status()
            return
        self.fit = None
        self.update_status()
        self.load_fit(stored, target.device, self.mode, self.precision)

    def update_status(self) -> None:
        if self.error:
            text = f"error | {self.error}"
        elif self.selected() is not None and self.fit is None:
            text = "fitting ..."
        else:
            text = f"{len(self.pipelines)} pipelines | d device  m mode  x precision  ? keys"
        self.query_one("#pl-status", Static).update(_text(text))

    # ------------------------------------------------------------------------------------------ keys
    @on(DataTable.RowHighlighted, "#pl-list")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.targets:
            self.refit()

    def action_device(self, step: int) -> None:
        if self.targets:
            self.device_index = (self.device_index + step) % len(self.targets)
            self.mode = self.target.default_mode
            self.refit()

    def action_mode(self) -> None:
        target = self.target
        if target and target.modes:
            index = target.modes.index(self.mode) if self.mode in target.modes else -1
            self.mode = target.modes[(index + 1) % len(target.modes)]
            self.refit()

    def action_precision(self) -> None:
        self.precision_index = (self.precision_index + 1) % len(PRECISIONS)
        self.refit()

    def action_back(self) -> None:
        self.app.pop_screen()


def report(fit) -> Text:
    """The fit as text: a row per stage (ms, share, bar, bound), the total against the period, the verdicts and the
    changes. Every number is the fit's (``services.pipeline``); the bar is ``services.pipelines.share_bar``."""
    from embodied_tui.services.pipelines import share_bar

    lines = [f"{'stage':<22} {'ms':>8} {'share':>6}  {'':<{BAR}}  bound"]
    for s in fit.stages:
        runs = f" x{s.repeat}" if s.repeat > 1 else ""
        runs += f" /{s.chunk}" if s.chunk > 1 else ""
        name = fmt.clip(f"{s.name}{runs}", 22)
        lines.append(f"{name:<22} {fmt.ms(s.ms):>8} {fmt.percent(s.share, 1.0):>6}  "
                     f"{share_bar(s.share, BAR):<{BAR}}  {s.bound or fmt.NA}")
    m = fit.memory_fit
    fits = {True: "fits", False: "DOES NOT FIT", None: "unknown"}[m.fits]
    have = fmt.nbytes(m.device_bytes, binary=True) if m.device_bytes is not None else fmt.NA
    memory = f"memory {fmt.nbytes(m.total_bytes, binary=True)} of {have}: {fits}"
    if fit.total_ms is None:
        lines += [f"total: unknown ({fit.reason})", memory]
    else:
        verdict = "MEETS" if fit.meets_rate else "MISSES"
        lines.append(f"total {fmt.ms(fit.total_ms)} ms per period = {fmt.number(fit.rate_hz)} Hz | needs "
                     f"{fmt.number(fit.required_rate_hz)} Hz = {fmt.ms(fit.period_ms)} ms")
        lines.append(f"{verdict} the rate (margin {fmt.percent(fit.margin, 1.0)}); {memory}")
    if fit.changes:
        lines.append("changes that meet the rate (cheapest kind first):")
        lines += [f"  {c.kind:<10} {fmt.clip(c.description, 40)}: {fmt.ms(c.total_ms)} ms" for c in fit.changes]
    elif fit.meets_rate is False:
        lines.append("no single change meets the rate")
    lines.append("x = repeat, / = chunk (runs every chunk steps); ms per period = ms / chunk")
    return _text("\n".join(lines))


def _text(text: str) -> Text:
    """Text for a Static: escaped (pipeline and stage names are the user's), never read as markup."""
    return Text(fmt.safe_text(text, newlines=True))
