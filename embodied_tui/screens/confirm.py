"""A question answered with one key: ``ConfirmDialog(question, choices)`` dismisses with the chosen answer's value,
or None on ``escape`` / ``n``. Nothing is changed by the dialog itself: the screen that asked acts on the answer."""
from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from embodied_tui import units as fmt


class ConfirmDialog(ModalScreen[str | None]):
    """``choices``: (key, what it does, value) for each answer; ``n`` and ``escape`` always answer None (keep)."""

    HELP_TITLE = "Confirm"
    DEFAULT_CSS = """
    ConfirmDialog { align: center middle; }
    #confirm-box { width: 72; max-width: 100%; height: auto; border: round $warning; padding: 0 1; }
    #confirm-question { margin: 0 0 1 0; }
    #confirm-keys { color: $text-muted; }
    """
    BINDINGS = [Binding("escape,n", "keep", "Keep", id="confirm.keep")]

    def __init__(self, question: str, choices: list[tuple[str, str, str]], title: str = "Confirm") -> None:
        super().__init__()
        self.question = question
        self.choices = choices
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box") as box:
            box.border_title = self.title_text
            yield Static(Text(fmt.safe_text(self.question)), id="confirm-question")
            keys = " | ".join([f"{key}: {label}" for key, label, _ in self.choices] + ["n/escape: keep"])
            yield Static(Text(fmt.safe_text(keys)), id="confirm-keys")

    def on_key(self, event: events.Key) -> None:
        for key, _, value in self.choices:
            if event.key == key:
                event.stop()
                self.dismiss(value)
                return

    def action_keep(self) -> None:
        self.dismiss(None)
