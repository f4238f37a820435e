"""Export a table to a file: the dialog asks for the path (a free name in the current directory by default; the
suffix, .csv or .json, picks the format) and calls ``write(path, overwrite)``, a ``services.export`` writer. An
existing file is replaced only after a second ``enter``. The file is written in a thread worker (10,000 registry rows
take about 0.1 s as CSV and 0.3 s as JSON), the dialog saying so meanwhile. Dismisses with the path written, or
None."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static
from textual.worker import Worker, WorkerState

from embodied_tui import units as fmt
from embodied_tui.errors import UserError, app_message
from embodied_tui.screens.form_keys import FIELD_KEYS
from embodied_tui.screens.widgets.path_input import PathInput
from embodied_tui.services.export import target_path

Writer = Callable[[Path, bool], Path]
HINT = "enter: write | escape: cancel | .csv or .json picks the format"


class ExportDialog(ModalScreen[Path | None]):
    HELP_TITLE = "Export"
    DEFAULT_CSS = """
    ExportDialog { align: center middle; }
    #export-box { width: 76; max-width: 100%; height: auto; border: round $accent; padding: 0 1; }
    #export-box .field { height: 1; margin: 0 0 1 0; }
    #export-box .field-label { width: 7; text-style: bold; }
    #export-box Input { width: 1fr; }
    #export-what { margin: 0 0 1 0; }
    #export-error { height: auto; color: $error; text-style: bold; margin: 0 0 1 0; }
    #export-hint { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="export.cancel"), *FIELD_KEYS]

    def __init__(self, what: str, default: Path, write: Writer) -> None:
        super().__init__()
        self.what = what
        self.default = default
        self.write = write
        self._replace: Path | None = None  # the existing file a second enter replaces

    def compose(self) -> ComposeResult:
        with Vertical(id="export-box") as box:
            box.border_title = "Export"
            yield Static(Text(fmt.safe_text(self.what)), id="export-what")
            with Horizontal(classes="field"):
                yield Label("file ", classes="field-label")
                yield PathInput(value=str(self.default), placeholder="models.csv or models.json", id="path",
                                compact=True)
            yield Static("", id="export-error")
            yield Static(HINT, id="export-hint")

    def on_mount(self) -> None:
        self.query_one("#export-error").display = False
        path_input = self.query_one("#path", Input)
        path_input.focus()
        path_input.cursor_position = len(path_input.value)

    def show_error(self, message: str | None) -> None:
        widget = self.query_one("#export-error", Static)
        widget.update(Text(fmt.safe_text(f"error: {message}" if message else "")))
        widget.display = bool(message)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_write()

    def action_write(self) -> None:
        try:
            path = target_path(self.query_one("#path", Input).value)
            if path.exists() and self._replace != path:
                self._replace = path
                self.show_error(f"{path} exists already: press enter again to replace it, or type another name")
                return
        except UserError as exc:
            self.show_error(app_message(exc))
            return
        self.show_error(None)
        self.query_one("#path", Input).disabled = True
        self.query_one("#export-hint", Static).update(Text(fmt.safe_text(f"writing {path}...")))
        self.write_file(path, self._replace == path)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def write_file(self, path: Path, overwrite: bool) -> Path:
        return self.write(path, overwrite)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "export" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        if event.state == WorkerState.SUCCESS:
            self.dismiss(event.worker.result)
            return
        error = event.worker.error
        self.show_error(str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}")
        self.query_one("#export-hint", Static).update(HINT)
        path_input = self.query_one("#path", Input)
        path_input.disabled = False
        path_input.focus()

    def action_cancel(self) -> None:
        self.dismiss(None)
