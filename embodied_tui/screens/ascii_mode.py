"""ASCII glyphs for consoles without Unicode fonts (``glyphs.ascii_only()``: TERM=linux, a Jetson's text console).

What Textual draws itself is switched here: scroll bars without the eighth-block glyphs (the thumb is its colour on
blank cells), trees with ASCII guides and expand marks (the census tree) and key names in words where Textual shows a
symbol (enter, not the return arrow). The app's own borders
and the tabs' underline bar are switched by the ``-ascii`` class in app.tcss; cut text takes ``glyphs.ellipsis()``.
"""
from __future__ import annotations

from typing import ClassVar

from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.widgets import Tree

TREE_LINES = ("  ", "| ", "`-", "|-")  # Tree.LINES order: space, vertical, last branch, branch


class AsciiScrollBarRender(ScrollBarRender):
    VERTICAL_BARS: ClassVar[list[str]] = [" "] * 8
    HORIZONTAL_BARS: ClassVar[list[str]] = [" "] * 8


# Textual's own glyphs, kept so that an app started later in the same process on a Unicode terminal gets them back
_UNICODE = (ScrollBar.renderer, Tree.ICON_NODE, Tree.ICON_NODE_EXPANDED, dict(Tree.LINES))


def use_ascii_glyphs(on: bool = True) -> None:
    """Every scroll bar and tree of this process drawn with ASCII (``on``), or with Textual's own glyphs again: these
    are class attributes, so the app sets them each time it starts, either way (an app opened on TERM=linux must not
    leave ASCII scroll bars to the next one in the process)."""
    if not on:
        ScrollBar.renderer, Tree.ICON_NODE, Tree.ICON_NODE_EXPANDED, lines = _UNICODE
        Tree.LINES = dict(lines)
        return
    ScrollBar.renderer = AsciiScrollBarRender
    Tree.ICON_NODE = "+ "
    Tree.ICON_NODE_EXPANDED = "- "
    Tree.LINES = {**_UNICODE[3], "default": TREE_LINES, "bold": TREE_LINES, "double": TREE_LINES}


def ascii_key(display: str, key: str) -> str:
    """A key's display (Textual's, e.g. the return arrow for enter) in ASCII: the display when it is ASCII already,
    else the key's own name ('enter', 'ctrl+r')."""
    return display if display.isascii() else key
