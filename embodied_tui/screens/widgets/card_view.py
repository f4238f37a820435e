"""The model card as one pre-rendered block of text.

Textual's Markdown widget builds a widget per block (a card held about 350: headings, bullets, table cells), and laying
them out blocked the UI thread for 0.2-0.9 s on opening the card tab and again on leaving it (every node's styles were
updated on blur). Here the card's Markdown is rendered by rich into lines of styled text at the pane's width, in the
detail screen's thread worker (``render_card``), and shown by one Static: switching tabs costs a repaint only. A new
width renders it again (in the worker).
"""
from __future__ import annotations

import io

from rich.console import Console
from rich.markdown import Markdown
from rich.text import Text

ASCII_BULLET = (" • ", " - ")


def render_card(markdown: str, width: int, ascii_only: bool = False) -> Text:
    """``markdown`` rendered by rich at ``width`` cells into one Text (a line per rendered line). ``ascii_only``: ASCII
    boxes, rules and bullets (``screens.glyphs.ascii_only``)."""
    width = max(width, 20)
    console = Console(width=width, file=io.StringIO(), force_terminal=True, color_system="truecolor",
                      legacy_windows=False, safe_box=True)
    options = console.options.update_width(width)
    if ascii_only:
        options = options.copy()
        options.encoding = "ascii"  # rich draws boxes and rules in ASCII when the encoding is not UTF
    out = Text(no_wrap=True, overflow="crop", end="")
    lines = console.render_lines(Markdown(markdown, hyperlinks=False), options, pad=False)
    for i, line in enumerate(lines):
        if i:
            out.append("\n")
        for segment in line:
            if segment.control:
                continue
            text = segment.text
            if ascii_only:
                text = text.replace(*ASCII_BULLET).encode("ascii", "replace").decode("ascii")
            out.append(text, segment.style)
    return out
