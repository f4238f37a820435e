"""Keys of the focused widget, the screen and the app, built from the bindings active when help was asked for."""
from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import Static

_TITLES = {"VerticalScroll": "Scrolling pane", "Input": "Text input", "PathInput": "Path input",
           "EmbodiedApp": "Everywhere"}


def node_title(node: DOMNode) -> str:
    title = getattr(node, "HELP_TITLE", None)
    return title or _TITLES.get(type(node).__name__, type(node).__name__)


def _describe(binding: Binding) -> str:
    if binding.description:
        return binding.description
    return binding.action.split(".")[-1].split("(")[0].replace("_", " ")


def help_sections(active: dict[str, ActiveBinding], key_display) -> list[tuple[str, list[tuple[str, str]]]]:
    """Group active bindings by the node that defines them (innermost first) into (title, [(keys, what)])."""
    by_node: dict[int, tuple[DOMNode, dict[tuple[str, str], list[str]]]] = {}
    for key, item in active.items():
        if not item.enabled and not item.binding.show:
            continue
        node_entry = by_node.setdefault(id(item.node), (item.node, {}))
        what = _describe(item.binding)
        node_entry[1].setdefault((item.binding.action, what), []).append(key_display(item.binding))
    sections = []
    # innermost first: a widget before its screen before the app
    for node, actions in sorted(by_node.values(), key=lambda pair: -len(pair[0].ancestors_with_self)):
        rows = [(" ".join(dict.fromkeys(keys)), what) for (_, what), keys in actions.items()]
        sections.append((node_title(node), rows))
    return sections


PIPELINE_NUMBERS = [("ms", "one run of the stage x repeat (a flow/diffusion head's steps)"),
                    ("share", "of the time per control period; a stage with chunk H counts ms / H"),
                    ("total", "sum of stage ms / chunk; rate held = 1000 / total ms, against the rate needed"),
                    ("memory", "weights + largest activations + KV caches + runtime reserve")]


class HelpScreen(ModalScreen):
    HELP_TITLE = "Help"
    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close", id="help.close"),
        Binding("j", "scroll('down')", "Down", show=False),
        Binding("k", "scroll('up')", "Up", show=False),
    ]

    def __init__(self, active: dict[str, ActiveBinding], focused: str | None) -> None:
        super().__init__()
        self.active = active
        self.focused_title = focused

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box") as box:
            box.border_title = "Keys  (escape closes)"
            yield Static(self._render_help(), id="help-text")

    def _render_help(self) -> Group:
        sections = help_sections(self.active, self.app.get_key_display)
        sections.append(("Numbers", [("MACs", "multiply-accumulates of conv, linear, matmul, attention"),
                                     ("FLOPs", "2 x MACs; other FLOPs = elementwise and normalisation")]))
        if any(str(item.binding.id or "").startswith("pipeline.") for item in self.active.values()):
            sections.append(("Pipeline numbers", PIPELINE_NUMBERS))
        width = max(len(keys) for _, rows in sections for keys, _ in rows)
        parts = []
        for title, rows in sections:
            label = title + ("  (focused)" if title == self.focused_title else "")
            parts.append(Text(label, style="bold underline"))
            grid = Table.grid(padding=(0, 2))
            grid.add_column(no_wrap=True, style="bold", min_width=min(width, 16))
            grid.add_column()
            for keys, what in rows:
                grid.add_row(keys, what)
            parts += [grid, Text("")]
        return Group(*parts)

    def action_scroll(self, direction: str) -> None:
        box = self.query_one("#help-box", VerticalScroll)
        box.scroll_down() if direction == "down" else box.scroll_up()
