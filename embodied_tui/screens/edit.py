"""Edit a model's tags and description: ``services.registration.read_edit`` reads the fields (the CLI's tag syntax)
and ``services.models.update`` (the CLI's ``model update``) stores them. Dismisses with the changed records, or None
when nothing was changed."""
from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from embodied_tui import units as fmt
from embodied_tui.data.records import ModelRecord
from embodied_tui.errors import UserError, app_message
from embodied_tui.screens.form_keys import FIELD_KEYS
from embodied_tui.screens.widgets.text_checkbox import TextCheckbox
from embodied_tui.services.models import update
from embodied_tui.services.registration import one_line, read_edit, tags_text


class EditDialog(ModalScreen[list[ModelRecord] | None]):
    HELP_TITLE = "Edit tags and description"
    DEFAULT_CSS = """
    EditDialog { align: center middle; }
    #edit-box { width: 76; max-width: 100%; height: auto; border: round $accent; padding: 0 1; }
    #edit-box .field { height: 1; margin: 0 0 1 0; }
    #edit-box .field-label { width: 7; text-style: bold; }
    #edit-box Input { width: 1fr; }
    #edit-box #only-version { margin: 0 0 1 0; }
    #edit-error { height: auto; color: $error; text-style: bold; margin: 0 0 1 0; }
    #edit-hint { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="edit.cancel"), *FIELD_KEYS]

    def __init__(self, record: ModelRecord, versions: int = 1) -> None:
        super().__init__()
        self.record = record
        self.versions = versions

    def compose(self) -> ComposeResult:
        record = self.record
        with Vertical(id="edit-box") as box:
            box.border_title = fmt.safe_text(f"Edit {record.name} v{record.version}")
            with Horizontal(classes="field"):
                yield Label("tags ", classes="field-label")
                yield Input(value=tags_text(record.tags), placeholder='robot site=lab note="two words"', id="tags",
                            compact=True)
            with Horizontal(classes="field"):
                yield Label("about", classes="field-label")
                yield Input(value=one_line(record.description), placeholder="a description", id="description",
                            compact=True)
            every = f"every version ({self.versions})" if self.versions > 1 else "every version"
            yield TextCheckbox(f"only v{record.version} (else {every})", id="only-version", compact=True)
            yield Static("", id="edit-error")
            yield Static("enter: save | escape: cancel | a tag removed from the line is removed", id="edit-hint")

    def on_mount(self) -> None:
        self.query_one("#edit-error").display = False
        self.query_one("#tags", Input).focus()

    def show_error(self, message: str | None) -> None:
        widget = self.query_one("#edit-error", Static)
        widget.update(Text(fmt.safe_text(f"error: {message}" if message else "")))
        widget.display = bool(message)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        record = self.record
        try:
            request = read_edit(record.tags, record.description, self.query_one("#tags", Input).value,
                                self.query_one("#description", Input).value)
            if request is None:
                self.notify(fmt.safe_text(f"{record.name}: nothing changed"), markup=False)
                self.dismiss(None)
                return
            only = self.query_one("#only-version", TextCheckbox).value
            changed = update(record.name, **request.kwargs(), version=record.version if only else None,
                             db=self.app.registry)
        except UserError as exc:
            self.show_error(app_message(exc))
            return
        latest = changed[-1]
        what = f"v{record.version}" if only else f"{len(changed)} version{'s' * (len(changed) != 1)}"
        self.notify(fmt.safe_text(f"updated {record.name} ({what}): tags {fmt.tags(latest.tags) or '(none)'}"),
                    markup=False)
        self.dismiss(changed)

    def action_cancel(self) -> None:
        self.dismiss(None)
