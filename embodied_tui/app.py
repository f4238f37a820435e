"""The Textual app: the registry table first; detail, compare, fit, ask, register and help on top of it.

Importing this module (and running the app) never imports torch, onnx or onnxruntime: analysis runs in a child process
(``embodied_tui.services.worker``); fits, questions and cards are pure Python and run in thread workers. Keys follow
the README's key table: ctrl+q quits, q/escape go back, ?/f1 help, ctrl+p palette, f fit, a ask, p pipelines.

The app keeps up with the registry: every ``WATCH_S`` a timer compares the registry's ``change_marker()`` (a stat of
its file, or a server's change counter: nothing read or parsed on the UI thread) with the last one seen; when it moved,
the records are read again in a thread worker (a registry file over ``LARGE_REGISTRY_BYTES``: in a child process that
sends back only the records that changed and the target cells of the rows on screen, ``services.live_read``, so no
parse of the whole file holds the screen) and the table is refreshed with its cursor, marks and filter kept, and
a detail or fit screen whose model was removed says so. Thread workers run on daemon threads
(``screens.daemon_executor``), so quitting never waits for one. Every screen has a header line
(``screens.widgets.context_bar``): where you are and which registry is open. ``NO_COLOR`` removes every colour code
(``screens.no_color``).
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widgets import TabbedContent
from textual.worker import Worker, WorkerState

from embodied_tui.data.backend import RegistryBackend, open_registry
from embodied_tui.data.records import ModelRecord
from embodied_tui.errors import UserError
from embodied_tui.screens.daemon_executor import DaemonExecutor
from embodied_tui.screens.glyphs import ascii_only
from embodied_tui.screens.palette import (
    CompareWithProvider,
    FitModelProvider,
    OpenModelProvider,
    SetTargetProvider,
    SortByProvider,
)
from embodied_tui.screens.registry import RegistryScreen
from embodied_tui.screens.widgets.context_bar import ContextBar
from embodied_tui.services.context import breadcrumb, registry_location

WATCH_S = 0.5  # s between two looks at the registry's change marker
# A registry file larger than this (about 500 models: its parse takes over ~50 ms) is read after the first frame, in a
# worker, with "reading the registry ..." in the status line; smaller ones before it (the table is full at once).
LARGE_REGISTRY_BYTES = 1_000_000

# The other screens are imported when first opened: startup pays only for the registry table.


class EmbodiedApp(App[None]):
    TITLE = "embodied-ai"
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses elsewhere keep the styles
    COMMANDS = App.COMMANDS | {OpenModelProvider, CompareWithProvider, FitModelProvider, SortByProvider,
                               SetTargetProvider}
    BINDINGS = [
        Binding("question_mark,f1", "help", "Help", id="app.help"),
        Binding("a", "ask", "Ask", id="app.ask"),
        Binding("p", "pipelines", "Pipelines", show=False, id="app.pipelines"),
    ]

    def __init__(self, db: str | None = None, *, registry: RegistryBackend | None = None) -> None:
        super().__init__()
        self.registry = registry if registry is not None else open_registry(db)
        self._marker: object = None
        self.executor = DaemonExecutor()  # the thread workers' threads (on_load)
        self._marker = self._change_marker()  # before the first read: a write during that read is seen next
        self._live_known: dict = {}  # digest -> record of a large registry's records (``services.live_read``)
        if self.no_color:  # NO_COLOR: no colour codes at all, not Textual's greys
            from embodied_tui.screens.no_color import strip_colors

            strip_colors(self._filters)
        self.ascii = ascii_only()
        from embodied_tui.screens.ascii_mode import use_ascii_glyphs

        use_ascii_glyphs(self.ascii)  # process-wide glyphs: set either way, so no earlier app's choice lingers
        if self.ascii:  # TERM=linux and the like: ASCII borders (app.tcss), scroll bars and key names
            self.add_class("-ascii")

    def get_key_display(self, binding: Binding) -> str:
        display = super().get_key_display(binding)
        if self.ascii:
            from embodied_tui.screens.ascii_mode import ascii_key

            return ascii_key(display, binding.key)
        return display

    def get_default_screen(self) -> Screen:
        return RegistryScreen()

    def on_load(self) -> None:
        import asyncio

        asyncio.get_running_loop().set_default_executor(self.executor)  # quitting never waits for a worker

    def on_mount(self) -> None:
        self.set_interval(WATCH_S, self._watch_registry)
        self.screen_change_signal.subscribe(self, self._screen_changed)
        self.update_context()

    # ------------------------------------------------------------------------------------------ keeping up
    def reads_in_background(self) -> bool:
        """Whether the registry is read after the first frame: a registry file over ``LARGE_REGISTRY_BYTES`` (a
        server's registry, or a path that is no file, is read at once)."""
        import os

        try:
            return os.stat(self.registry.path).st_size > LARGE_REGISTRY_BYTES
        except (OSError, TypeError, ValueError):
            return False

    def _change_marker(self) -> object:
        try:
            return self.registry.change_marker()
        except (UserError, OSError):  # unreachable server: keep what is shown, look again next time
            return self._marker

    def _watch_registry(self) -> None:
        if any(w.group == "registry-watch" and not w.is_finished for w in self.workers):
            return  # still reading: a burst of writes is read once more when this read is shown, not once per write
        marker = self._change_marker()
        if marker != self._marker:
            self._marker = marker
            self.refresh_registry()

    def refresh_registry(self) -> None:
        """Read the registry again in a worker; the table and the open screens follow when it is read."""
        screen = self.registry_screen
        watched = [s for s in self.screen_stack[1:] if callable(getattr(s, "current_record", None))]
        self._read_registry(screen, [(s, s.current_record()) for s in watched], screen.cells_wanted_after_read())

    @work(thread=True, exclusive=True, group="registry-watch", exit_on_error=False)
    def _read_registry(self, screen: RegistryScreen, open_records: list, cells_wanted: tuple) -> tuple:
        if screen.all_records and self.reads_in_background():  # a large file read again: the changes only
            return self._read_changes(screen, open_records, cells_wanted)
        records, error = screen.read_records()
        gone = []
        for other, record in open_records:
            if record is None:
                continue
            try:
                versions = self.registry.versions(record.name)
            except UserError:
                continue  # unreadable now: the table says why
            if not any(v.version == record.version and v.sha256 == record.sha256 for v in versions):
                gone.append(other)
        return records, error, gone, None

    def _read_changes(self, screen: RegistryScreen, open_records: list, cells_wanted: tuple) -> tuple:
        """Read a large registry file again in a child process (``services.live_read``: parsing 19 MB here would
        hold the interpreter's lock, and so the screen, for up to a second): records whose content did not change
        keep their objects, so the table redoes nothing for them; the target cells of the rows on screen come with
        them (``cells_wanted``: the screen's target generation and row keys), computed there too."""
        from embodied_tui.services import live_read

        if not self._live_known:  # the records shown were read here: their digests, once (short calls each)
            self._live_known = {live_read.digest(r): r for r in screen.all_records}
        probes = [(other, record) for other, record in open_records if record is not None]
        generation, keys = cells_wanted
        result = live_read.read(str(self.registry.path), not screen.all_versions, self._live_known,
                                [(r.name, r.version, r.sha256) for _, r in probes], keys)
        if result.error is None:
            self._live_known = result.known
        cells = (generation, result.headers, result.cells) if result.headers else None
        return result.records, result.error, [probes[i][0] for i in result.gone], cells

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "registry-watch" or event.state != WorkerState.SUCCESS:
            return
        if not self.screen_stack or not self.is_running:  # a read that finished as the app was closing
            return
        records, error, gone, cells = event.worker.result
        self.registry_screen.show_records(records, error)
        if cells is not None:  # the target cells of the rows on screen, computed with the read
            self.registry_screen.show_target_cells(*cells)
        for screen in gone:
            if screen in self.screen_stack and callable(getattr(screen, "show_removed", None)):
                screen.show_removed()

    # ------------------------------------------------------------------------------------------ header line
    def _screen_changed(self, screen: Screen) -> None:
        if not screen.is_modal and not screen.query(ContextBar):
            self.call_after_refresh(self._add_context_bar, screen)
        self.update_context()

    def _add_context_bar(self, screen: Screen) -> None:
        if screen.is_attached and not screen.query(ContextBar):
            screen.mount(ContextBar())
            self.update_context()

    def crumbs(self) -> list[str]:
        """Where the user is: each screen of the stack (dialogs left out) adds its crumbs, the one on top all of them
        (its tab too), those under it their first (the model's name)."""
        screens = [screen for screen in self.screen_stack if not screen.is_modal]
        out: list[str] = []
        for i, screen in enumerate(screens):
            own = getattr(screen, "crumbs", None)
            try:
                crumbs = own() if callable(own) else []
            except NoMatches:  # asked while the screen is still being built: its title for now
                crumbs = []
            crumbs = crumbs or [getattr(screen, "HELP_TITLE", None) or type(screen).__name__]
            out += crumbs if i == len(screens) - 1 else crumbs[:1]
        return out

    def update_context(self) -> None:
        """Refresh the header line of the screen on top (the others are refreshed when they come back)."""
        trail, location = breadcrumb(self.crumbs()), registry_location(self.registry)
        for screen in self.screen_stack:
            for bar in screen.query(ContextBar):
                bar.trail, bar.location = trail, location

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.update_context()  # the tab is the last crumb

    @property
    def registry_screen(self) -> RegistryScreen:
        return self.screen_stack[0]  # the default screen

    # ------------------------------------------------------------------------------------------ navigation
    def open_detail(self, record: ModelRecord) -> None:
        from embodied_tui.screens.detail import DetailScreen

        self.push_screen(DetailScreen(record))

    def open_compare(self, records: list[ModelRecord]) -> None:
        from embodied_tui.screens.compare import CompareScreen

        self.push_screen(CompareScreen(records))

    def open_register(self, path: str = "") -> None:
        from embodied_tui.screens.register import RegisterDialog

        def registered(record: ModelRecord | None) -> None:
            if record is not None:
                self.registry_screen.reload(select=record)

        self.push_screen(RegisterDialog(path), registered)

    def open_fit(self, record: ModelRecord) -> None:
        from embodied_tui.screens.fit import FitScreen

        self.push_screen(FitScreen(record))

    def open_ask(self, question: str = "") -> None:
        from embodied_tui.screens.ask import AskScreen

        if isinstance(self.screen, AskScreen):
            self.screen.action_focus_question()
            return
        self.push_screen(AskScreen(question))

    def action_ask(self) -> None:
        if not isinstance(self.screen, ModalScreen):  # not over a dialog or help
            self.open_ask()

    def open_pipelines(self) -> None:
        from embodied_tui.screens.pipeline import PipelineScreen

        if not isinstance(self.screen, PipelineScreen):
            self.push_screen(PipelineScreen())

    def action_pipelines(self) -> None:
        if not isinstance(self.screen, ModalScreen):  # not over a dialog or help
            self.open_pipelines()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Ask...", "a plain question or a Cypher query on the registry", self.open_ask)
        yield SystemCommand("Pipelines", "stored pipelines: per-stage time and the control-rate verdict on a device",
                            self.open_pipelines)

    def sort_registry(self, key: str, reverse: bool = False) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.registry_screen.set_sort(key, reverse)

    async def action_quit(self) -> None:
        """Quit at once, even mid-question: the running questions' fit computation and query children are stopped
        first, so no worker thread holds the exit."""
        import sys

        if "embodied_tui.services.ask" in sys.modules:  # a question was asked: stop its work
            sys.modules["embodied_tui.services.ask"].cancel_queries()
        self.exit()

    def action_back(self) -> None:
        if len(self.screen_stack) > 1:
            self.pop_screen()

    def action_help(self) -> None:
        from embodied_tui.screens.help import HelpScreen, node_title

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        focused = self.screen.focused
        self.push_screen(HelpScreen(self.screen.active_bindings, node_title(focused) if focused else None))


def run_app(db: str | None = None) -> None:
    run_to_exit(EmbodiedApp(db))


def run_to_exit(app: EmbodiedApp) -> None:
    """Run the app; once it has quit, end the process at once if a worker thread is still computing (a fit, a card):
    nothing waits for it, and the interpreter is not left to shut down around a thread inside a C extension (which
    can abort the process; see ``screens.daemon_executor``). Otherwise return as usual."""
    import os
    import sys

    app.run()
    if app.executor.busy():
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(app.return_code or 0)
