"""A scrolling pane with vim motion: j/k a line, g/G the top and the end (the detail tabs, the card, help)."""
from __future__ import annotations

from textual.binding import Binding
from textual.containers import VerticalScroll


class VimScroll(VerticalScroll):
    HELP_TITLE = "Scrolling pane"
    BINDINGS = [
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
        Binding("g", "scroll_home", "Top", show=False),
        Binding("G", "scroll_end", "End", show=False),
    ]
