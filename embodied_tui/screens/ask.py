"""Ask the registry: a plain question or a Cypher query, the answer as a table, and the Cypher that ran, editable.

A question goes to ``services.ask.ask`` (the offline parser -> a structured query -> Cypher); text starting with
MATCH is Cypher and goes to ``services.ask.query``. Both run in a thread worker; while one runs, the status line
says what it is doing (fits computed so far, read from the worker every ``PROGRESS_S``), ``escape`` cancels it (the
fit computation stops at its next chunk and the forked query child is killed: ``services.ask.cancel_queries``) and a
second ``escape`` goes back. Leaving the screen or quitting cancels it too. The Cypher that ran lands in the editor
below the answer: change it and press ctrl+r (or F5) to run it again. What the parser read, the words it did not
understand and any error are shown inline; an error keeps the last answer on screen.
"""
from __future__ import annotations

import re

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Static, TextArea
from textual.worker import Worker, WorkerState

from embodied_tui import units as fmt
from embodied_tui.errors import UserError, app_message
from embodied_tui.screens.widgets.answer_table import AnswerTable, show_answer
from embodied_tui.services.target import device_short_names

PROGRESS_S = 0.25  # how often the status line reads the worker's progress
PLACEHOLDER = "a question (fastest models on a jetson at 15 W) or Cypher (MATCH ...)"


_CYPHER = re.compile(r"\s*(optional\s+)?match\b", re.IGNORECASE)


def is_cypher(text: str) -> bool:
    """Text whose first word is MATCH (any case; OPTIONAL MATCH too) is a Cypher query; anything else a question."""
    return _CYPHER.match(text) is not None


def explanation(result: dict) -> str:
    """The answer's sentences first (a refusal, a comparison's verdict, a pipeline's verdict), then the words the
    parser did not understand when no sentence already said so, what it read and its notes (the box is short)."""
    lines = list(result.get("answer") or [])
    if result.get("unparsed") and not any(line.startswith("not understood") for line in lines):
        lines.append("not understood: " + ", ".join(result["unparsed"]))
    readings = result.get("readings") or []
    if readings:
        lines.append("read: " + "; ".join(f"{r['phrase']!r} -> {r['meaning']}" for r in readings))
    lines += [f"note: {note}" for note in result.get("notes") or []]
    return "\n".join(lines)


class AskScreen(Screen):
    HELP_TITLE = "Ask"
    BINDINGS = [
        Binding("escape", "cancel_or_back", "Cancel/Back", id="ask.back"),
        Binding("ctrl+r,f5", "run_cypher", "Run Cypher", id="ask.run_cypher"),
        Binding("ctrl+l", "focus_question", "Question", id="ask.question"),
        Binding("ctrl+o", "edit_cypher", "Editor", id="ask.edit_cypher"),
    ]

    def __init__(self, question: str = "") -> None:
        super().__init__()
        self.initial_question = question
        self.result: dict | None = None  # the last answer shown
        self._status = ""  # the last answer's status line, before the hidden columns
        self._short: dict[str, str] | None = None
        self.error: str | None = None
        self.busy: str | None = None  # what the running worker does ("asking", "running the Cypher"), else None
        self.progress: tuple[int, int] | None = None  # fits computed / to compute, written by the worker thread

    def compose(self) -> ComposeResult:
        with Horizontal(id="question-bar"):
            yield Label("ask", id="question-prompt")
            yield Input(value=self.initial_question, placeholder=PLACEHOLDER, id="question", compact=True)
        yield Static("", id="ask-error")
        yield Static("", id="ask-info")
        yield AnswerTable(cursor_type="row", id="answer")
        editor = TextArea("", id="cypher", soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
        editor.border_title = "Cypher that ran (edit; ctrl+r or F5 runs it)"
        yield editor
        yield Static("type a question and press enter", id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#ask-error").display = False
        self.query_one("#ask-info").display = False
        self.query_one("#question", Input).focus()
        self.set_interval(PROGRESS_S, self._show_progress)
        if self.initial_question.strip():
            self.run_text(self.initial_question)

    # ------------------------------------------------------------------------------------------ running
    @on(Input.Submitted, "#question")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.run_text(event.value)

    def run_text(self, text: str) -> None:
        """Ask the question, or run it as Cypher when it starts with MATCH."""
        if not text.strip():
            self.show_error("type a question, or a Cypher query starting with MATCH")
            return
        self.start("query" if is_cypher(text) else "ask", text)

    def action_run_cypher(self) -> None:
        text = self.query_one("#cypher", TextArea).text
        if not text.strip():
            self.show_error("no Cypher to run: ask a question first, or type a query starting with MATCH")
            return
        self.start("query", text)

    def action_focus_question(self) -> None:
        self.query_one("#question", Input).focus()

    def action_edit_cypher(self) -> None:
        """Edit the Cypher box in $VISUAL/$EDITOR (``services.editor``): the app hands the terminal over while the
        editor runs, then the edited text replaces the box's (ctrl+r runs it)."""
        from textual.app import SuspendNotSupported

        from embodied_tui.services.editor import edit_text

        box = self.query_one("#cypher", TextArea)
        try:
            if self.app.is_headless:  # no terminal to hand over (tests): the editor runs as it is
                text, editor = edit_text(box.text, suffix=".cypher")
            else:
                with self.app.suspend():
                    text, editor = edit_text(box.text, suffix=".cypher")
        except SuspendNotSupported:
            self.notify("this terminal cannot be handed to an editor: edit the Cypher in the box", severity="warning",
                        markup=False)
            return
        except UserError as exc:
            self.notify(fmt.safe_text(app_message(exc)), severity="error", markup=False)
            return
        text = text.rstrip("\n")
        if text == box.text:
            self.notify(fmt.safe_text(f"{editor}: the Cypher is unchanged"), markup=False)
            return
        box.text = text
        box.focus()
        self.notify(fmt.safe_text(f"{editor}: the Cypher was edited; ctrl+r runs it"), markup=False)

    def start(self, verb: str, text: str) -> None:
        _cancel_queries()  # a replaced question's work is stopped, not left to run out its budget
        self.query_one(AnswerTable).loading = True
        self.busy = "asking" if verb == "ask" else "running the Cypher"
        self.progress = None
        self._show_progress()
        self.answer(verb, text)

    def _show_progress(self) -> None:
        if self.busy is None:
            return
        text = f"{self.busy} ..."
        if self.progress is not None:
            done, total = self.progress
            text += f" computing fits: {done:,} of {total:,} models"
        self.query_one("#status", Static).update(text + " | escape cancels")

    def action_cancel_or_back(self) -> None:
        """Cancel the running question; with none running, go back."""
        if self.busy is None:
            self.app.action_back()
            return
        self.busy = None
        _cancel_queries()
        self.workers.cancel_group(self, "ask")
        self.query_one(AnswerTable).loading = False
        self.query_one("#status", Static).update("cancelled | escape goes back")

    def on_unmount(self) -> None:
        _cancel_queries()

    @work(thread=True, exclusive=True, group="ask", exit_on_error=False)
    def answer(self, verb: str, text: str) -> dict:
        from embodied_tui.services import ask as svc

        def progress(done: int, total: int) -> None:  # from the worker thread: read by the timer
            self.progress = (done, total)

        if verb == "ask":
            return svc.ask(self.app.registry, text, progress=progress)
        return svc.query(self.app.registry, text)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "ask" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        if event.worker.is_cancelled:  # cancelled with escape, or replaced by a newer question
            return
        self.busy = None
        self.query_one(AnswerTable).loading = False
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.show_error(str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}")
            return
        self.show_result(event.worker.result)

    # ------------------------------------------------------------------------------------------ showing
    def show_error(self, message: str | None) -> None:
        self.error = message
        widget = self.query_one("#ask-error", Static)
        widget.update(_t(f"error: {message}" if message else ""))
        widget.display = bool(message)
        if message:
            shown = "the last answer is still shown" if self.result is not None else "no answer yet"
            self.query_one("#status", Static).update(f"error | {shown}")

    def show_result(self, result: dict) -> None:
        self.show_error(None)
        self.result = result
        table = self.query_one(AnswerTable)
        # cells as plain strings laid out as Text: an answer's strings are registry text, never markup
        show_answer(table, [fmt.safe_text(c) for c in result["columns"]],
                    [[fmt.cell(value) for value in row] for row in result["rows"]], self.short_names())
        editor = self.query_one("#cypher", TextArea)
        cypher = fmt.safe_text(result["cypher"], newlines=True)
        if editor.text != cypher:
            editor.load_text(cypher)
        info = explanation(result)
        info_widget = self.query_one("#ask-info", Static)
        info_widget.update(_t(info))
        info_widget.display = bool(info)
        count = result.get("count")
        rows = len(result["rows"])
        text = f"{rows} row{'s' if rows != 1 else ''}"
        if result.get("refused"):
            text = "not answered: see why above"
        if count is not None:
            text = f"count {count} | " + text
        source = result.get("source")
        text += f" | answered by the {source}" if source else " | Cypher"
        self._status = text
        self._show_status()

    def short_names(self) -> dict[str, str]:
        """Device id -> short name (services.target), read once per screen: answer columns of device ids use them
        when the terminal is narrow."""
        if self._short is None:
            self._short = device_short_names(self.app.registry)
        return self._short

    @on(AnswerTable.LayoutChanged)
    def _show_status(self) -> None:
        """The answer's status line, naming the columns the terminal is too narrow for."""
        hidden = self.query_one(AnswerTable).hidden_text()
        text = self._status
        self.query_one("#status", Static).update(_t(f"{text} | {hidden}" if hidden else text))


def _t(text: str) -> Text:
    """Text for a widget: escaped (answers, parser readings and errors carry registry and LLM text), never markup."""
    return Text(fmt.safe_text(text, newlines=True))


def _cancel_queries() -> None:
    """Kill the budgeted query children still running (services.ask); imported late like the rest of the service."""
    from embodied_tui.services.ask import cancel_queries

    cancel_queries()
