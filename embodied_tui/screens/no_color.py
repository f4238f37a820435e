"""NO_COLOR: the app emits no colour codes at all.

Textual 8 honours ``NO_COLOR`` by turning every colour into a grey (its ``Monochrome`` line filter): the screen is
grey, but the terminal still receives a 24-bit colour code for every cell. The NO_COLOR convention (no-color.org) asks
for no colour at all, so the app swaps that filter for ``StripColor``, which removes foreground and background colours
and keeps bold, underline and reverse. The cues the app needs without colour (cursor rows, active tabs, focused
widgets) are drawn with those attributes and borders (app.tcss).
"""
from __future__ import annotations

from functools import lru_cache

from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.filter import LineFilter, Monochrome


@lru_cache(1024)
def _plain(style: Style) -> Style:
    return style.without_color


class StripColor(LineFilter):
    """Remove every colour from the segments; keep the other attributes."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [Segment(text, None if style is None else _plain(style), control) for text, style, control in segments]


def strip_colors(filters: list[LineFilter]) -> None:
    """Replace Textual's NO_COLOR filter (greys) in ``filters`` (an App's ``_filters``) by ``StripColor``."""
    for i, line_filter in enumerate(filters):
        if isinstance(line_filter, Monochrome) or type(line_filter).__name__ == "NoColor":
            filters[i] = StripColor()
            return
    filters.append(StripColor())
