"""The Textual app: the registry table first; detail, compare, fit, ask, register and help on top of it.

Importing this module (and running the app) never imports torch, onnx or onnxruntime: analysis runs in a child process
(``embodied_tui.services.worker``); fits, questions and cards are pure Python and run in thread workers. Keys follow
the README's key table: ctrl+q quits, q/escape go back, ?/f1 help, ctrl+p palette, f fit, a ask, p pipelines.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen

from embodied_tui.data.records import ModelRecord
from embodied_tui.data.store import Registry
from embodied_tui.screens.palette import CompareWithProvider, FitModelProvider, OpenModelProvider, SortByProvider
from embodied_tui.screens.registry import RegistryScreen

# The other screens are imported when first opened: startup pays only for the registry table.


class EmbodiedApp(App[None]):
    TITLE = "embodied-ai"
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses elsewhere keep the styles
    COMMANDS = App.COMMANDS | {OpenModelProvider, CompareWithProvider, FitModelProvider, SortByProvider}
    BINDINGS = [
        Binding("question_mark,f1", "help", "Help", id="app.help"),
        Binding("a", "ask", "Ask", id="app.ask"),
        Binding("p", "pipelines", "Pipelines", show=False, id="app.pipelines"),
    ]

    def __init__(self, db: str | None = None, *, registry: Registry | None = None) -> None:
        super().__init__()
        self.registry = registry if registry is not None else Registry(db)

    def get_default_screen(self) -> Screen:
        return RegistryScreen()

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
    EmbodiedApp(db).run()
