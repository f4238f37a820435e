"""Register a model: a dialog that analyses the file in a separate process, with progress and cancel.

The analysis (which imports torch) runs in a spawned child process driven from a thread worker; `escape` during an
analysis terminates the child and leaves the registry untouched; a second `escape` closes the dialog. Errors are shown
in the dialog. On success the analysis is stored (``services.models.add_analysis``) and the dialog returns the record.
"""
from __future__ import annotations

import os
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Label, ProgressBar, Static
from textual.worker import Worker, WorkerState

from embodied_tui import units as fmt
from embodied_tui.data.names import check_name
from embodied_tui.data.records import Analysis, ModelRecord
from embodied_tui.errors import UserError
from embodied_tui.screens.widgets.path_input import PathInput
from embodied_tui.screens.widgets.text_checkbox import TextCheckbox
from embodied_tui.services.models import add_analysis, parse_input_shapes, parse_tags
from embodied_tui.services.worker import Cancelled, ProcessJob

ANALYZE = "embodied_tui.services.models:analyze"  # run in the child process only


def _check_model_folder(path: Path) -> None:
    """A directory is registered when it holds a Hugging Face model (config.json and/or safetensors weights, read by
    ``analysis.hf.folder.find``: headers and JSON only, no torch); otherwise its one-line reason is the error."""
    from embodied_tui.analysis.hf.folder import find  # imported on use: the app starts without it

    if find(path) is None:
        raise UserError(f"{path} is a directory without a Hugging Face model: pick a model file inside it")


class RegisterDialog(ModalScreen[ModelRecord | None]):
    HELP_TITLE = "Register a model"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel / close", id="register.cancel"),
    ]

    def __init__(self, path: str = "") -> None:
        super().__init__()
        self.initial_path = path
        self.job: ProcessJob | None = None
        self.request: dict | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="register-box") as box:
            box.border_title = "Register a model"
            with Horizontal(classes="field"):
                yield Label("path ", classes="field-label")
                yield PathInput(value=self.initial_path, placeholder="model file (right arrow completes)",
                                id="path", compact=True)
            with Horizontal(classes="field"):
                yield Label("name ", classes="field-label")
                yield Input(placeholder="default: the file name", id="name", compact=True)
            with Horizontal(classes="field"):
                yield Label("shape", classes="field-label")
                yield Input(placeholder="optional: 1,3,224,224 (';' between inputs)", id="shape", compact=True)
            with Horizontal(classes="field"):
                yield Label("tags ", classes="field-label")
                yield Input(placeholder="optional: robot site=lab", id="tags", compact=True)
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

    def validate_request(self) -> dict:
        """Check the fields here (no analysis yet); raise UserError with one line."""
        raw_path = self.query_one("#path", Input).value.strip()
        if not raw_path:
            raise UserError("type the path of a model file")
        path = Path(os.path.expanduser(raw_path))
        if not path.exists():
            raise UserError(f"no such file: {raw_path}")
        if path.is_dir():
            _check_model_folder(path)
        if not os.access(path, os.R_OK):
            raise UserError(f"cannot read {raw_path}: permission denied")
        shape_text = self.query_one("#shape", Input).value.strip()
        shape = parse_input_shapes([shape_text]) if shape_text else None
        tags = parse_tags(self.query_one("#tags", Input).value.split())
        name = check_name(self.query_one("#name", Input).value.strip() or path.stem)
        return {"path": str(path.resolve()), "name": name, "input_shape": shape, "tags": tags,
                "trust_code": self.query_one("#trust", Checkbox).value}

    def action_submit(self) -> None:
        if self.running:
            return
        try:
            self.request = self.validate_request()
        except UserError as exc:
            self.show_error(str(exc))
            return
        self.show_error(None)
        request = self.request
        self.job = ProcessJob(ANALYZE, (request["path"],),
                              {"input_shape": request["input_shape"], "trust_code": request["trust_code"]})
        self._set_running(True)
        self.analyse(self.job)

    @work(thread=True, exclusive=True, group="analysis", exit_on_error=False)
    def analyse(self, job: ProcessJob) -> Analysis:
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
        self._store(event.worker.result)

    def _store(self, analysis: Analysis) -> None:
        request = self.request or {}
        try:
            record, status = add_analysis(analysis, name=request["name"], tags=request["tags"], db=self.app.registry)
        except UserError as exc:
            self.show_error(str(exc))
            return
        if status == "repaired":
            self.notify(fmt.safe_text(f"repaired the details of {record.name} v{record.version}"), markup=False)
        elif status == "unchanged":
            self.notify(fmt.safe_text(f"{record.name} v{record.version} is already registered with these bytes"),
                        markup=False)
        else:
            self.notify(fmt.safe_text(f"registered {record.name} v{record.version}"), markup=False)
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
