"""The header line of every screen: where you are (Registry > resnet18 > Fit > Roofline) and which registry is open.

The app sets ``trail`` and ``location`` (``EmbodiedApp.update_context``); the line is laid out for the widget's width
by ``services.context.header_line`` when it is painted, so a resize never clips it silently.
"""
from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from embodied_tui import units as fmt
from embodied_tui.screens.glyphs import ellipsis
from embodied_tui.services.context import header_line


class ContextBar(Widget):
    DEFAULT_CSS = """
    ContextBar {
        dock: top;
        height: 1;
        padding: 0 1;
        background: $panel;
        text-style: bold;
    }
    """

    trail: reactive[str] = reactive("")
    location: reactive[str] = reactive("")

    def on_mount(self) -> None:
        update = getattr(self.app, "update_context", None)
        if callable(update):
            update()

    def render(self) -> Text:
        width = self.content_region.width or self.size.width
        line = header_line(fmt.safe_text(self.location), fmt.safe_text(self.trail), width, ellipsis())
        return Text(line, no_wrap=True, overflow="crop")
