"""Register a model: a dialog that registers through ``services.models.register`` (the CLI's own verb) in a separate
process, with progress and cancel.

The fields are read by ``services.registration.read_form`` (the default name, the name rule, tags as the CLI's
``--tag`` values, the path's quick checks) before any process starts. The registration (which imports torch to
analyse) runs in a spawned child process driven from a thread worker; `escape` during it terminates the child and
leaves the registry untouched; a second `escape` closes the dialog. Errors are one line in the dialog. On success the
dialog returns the record.
"""
from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Label, ProgressBar, Static
from textual.worker import Worker, WorkerState

from embodied_tui import units as fmt
from embodied_tui.data.records import ModelRecord
from embodied_tui.errors import UserError, app_message
from embodied_tui.screens.form_keys import FIELD_KEYS
from embodied_tui.screens.widgets.path_input import PathInput
from embodied_tui.screens.widgets.text_checkbox import TextCheckbox
from embodied_tui.services.registration import RegisterRequest, read_form
from embodied_tui.services.worker import Cancelled, ProcessJob

REGISTER = "embodied_tui.services.models:register"  # the CLI's verb, run in the child process only
STATUS_LINES = {  # services.models.register's status -> the line the app shows
    "added": "registered {name} v{version}",
    "new_version": "registered {name} v{version}: a new version (the bytes differ from the last one)",
    "unchanged": "{name} v{version} is already registered with these bytes; nothing changed",
    "repaired": "repaired the details of {name} v{version}",
}


class RegisterDialog(ModalScreen[ModelRecord | None]):
    HELP_TITLE = "Register a model"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel / close", id="register.cancel"),
        *FIELD_KEYS,
    ]

    def __init__(self, path: str = "") -> None:
        super().__init__()
        self.initial_path = path
        self.job: ProcessJob | None = None
        self.request: RegisterRequest | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="register-box") as box:
            box.border_title = "Register a model"
            with Horizontal(classes="field"):
                yield Label("path ", classes="field-label")
                yield PathInput(value=self.initial_path, placeholder="model file (right arrow completes)",
                                id="path", compact=True)
            with Horizontal(classes="field"):
                yield Label("name ", classes="field-label")
                yield Input(placeholder="default: the file name up to its first dot", id="name", compact=True)
            with Horizontal(classes="field"):
                yield Label("shape", classes="field-label")
                yield Input(placeholder="optional: 1,3,224,224 (';' between inputs)", id="shape", compact=True)
            with Horizontal(classes="field"):
                yield Label("tags ", classes="field-label")
                yield Input(placeholder='optional: robot site=lab note="two words"', id="tags", compact=True)
            with Horizontal(classes="field"):
                yield Label("about", classes="field-label")
                yield Input(placeholder="optional: a description", id="description", compact=True)
            yield TextCheckbox("trust code (full pickles run code from the file)", id="trust", compact=True)
            yield Static("", id="register-error")
            with Horizontal(id="register-progress"):
                yield ProgressBar(total=1.0, show_eta=False, id="progress")
                yield Label("", id="stage")
            yield Static("enter: analyse and register | escape: cancel | tab: next field", id="register-hint")

    def on_mount(self) -> None:
        self.query_one("#register-progress").display = False
        self.query_one("#register-error").display = False
        self.query_one("#path", Input).focus()

    # ---------------------------------------------------------------------------------------- state
    @property
    def running(self) -> bool:
        return self.job is not None

    def show_error(self, message: str | None) -> None:
        widget = self.query_one("#register-error", Static)
        widget.update(Text(fmt.safe_text(f"error: {message}" if message else "")))
        widget.display = bool(message)

    def _set_running(self, running: bool) -> None:
        for widget in self.query(Input):
            widget.disabled = running
        self.query_one("#trust", Checkbox).disabled = running
        self.query_one("#register-progress").display = running
        if running:
            self.query_one("#progress", ProgressBar).update(progress=0)
            self.query_one("#stage", Label).update("starting analysis process")

    # ---------------------------------------------------------------------------------------- submit
    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def validate_request(self) -> RegisterRequest:
        """The fields as a checked request (``services.registration.read_form``); UserError with one line."""
        def field(name: str) -> str:
            return self.query_one(f"#{name}", Input).value

        return read_form(field("path"), name=field("name"), shape=field("shape"), tags=field("tags"),
                         description=field("description"), trust_code=self.query_one("#trust", Checkbox).value)

    def action_submit(self) -> None:
        if self.running:
            return
        try:
            self.request = self.validate_request()
        except UserError as exc:
            self.show_error(app_message(exc))
            return
        self.show_error(None)
        self.job = ProcessJob(REGISTER, (self.request.path,), {**self.request.kwargs(), "db": self.app.registry})
        self._set_running(True)
        self.analyse(self.job)

    @work(thread=True, exclusive=True, group="analysis", exit_on_error=False)
    def analyse(self, job: ProcessJob) -> tuple[ModelRecord, str]:
        return job.run(on_progress=lambda args, kwargs: self.app.call_from_thread(self._progress, *args))

    def _progress(self, stage: str = "", fraction: float = 0.0, *_) -> None:
        if self.job is None:
            return
        self.query_one("#progress", ProgressBar).update(progress=float(fraction))
        self.query_one("#stage", Label).update(Text(fmt.safe_text(stage)))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "analysis" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        job, self.job = self.job, None
        self._set_running(False)
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            if isinstance(error, Cancelled) or (job is not None and job.cancelled):
                self.show_error("analysis cancelled; nothing was registered")
            elif isinstance(error, UserError):
                self.show_error(str(error))
            else:
                self.show_error(f"analysis failed: {type(error).__name__}: {error}")
            self.query_one("#path", Input).focus()
            return
        self._registered(event.worker.result)

    def _registered(self, result: tuple[ModelRecord, str]) -> None:
        record, status = result
        line = STATUS_LINES.get(status, "registered {name} v{version}")
        self.notify(fmt.safe_text(line.format(name=record.name, version=record.version)), markup=False)
        self.dismiss(record)

    # ---------------------------------------------------------------------------------------- cancel
    def action_cancel(self) -> None:
        """First escape stops a running analysis (the dialog stays, to fix and retry); the next one closes it."""
        if self.job is not None and not self.job.cancelled:
            self.job.cancel()  # terminates the child; the worker then ends with Cancelled
            self.query_one("#stage", Label).update("cancelling")
            return
        self.dismiss(None)

    def on_unmount(self) -> None:
        if self.job is not None:
            self.job.cancel()
