"""Which glyphs the terminal can show: full Unicode, or ASCII on a console that has no such fonts.

``ascii_only()`` is true on the Linux virtual console (``TERM=linux``: a Jetson's or a server's text console, whose
font has no box-drawing ellipsis) and on ``TERM=dumb``/``vt100``/``vt220``; ``EMBODIED_AI_ASCII=1`` forces it, ``=0``
turns it off. ``NO_COLOR`` is about colour, not glyphs: it does not change this. Read at call time, so a test (or a
user) can set the environment before the app starts.
"""
from __future__ import annotations

import os

from embodied_tui.units import NA

ASCII_TERMS = frozenset({"linux", "dumb", "vt100", "vt102", "vt220", "ansi"})
ELLIPSIS = "…"
ASCII_ELLIPSIS = "~"
ASCII_NA = "-"
# plotext's box-drawing frame and block bars, and the ellipsis, as ASCII (charts on an ASCII console)
ASCII_PLOT = str.maketrans({"─": "-", "│": "|", "┼": "+", "┬": "+", "┴": "+", "├": "+", "┤": "+", "┌": "+",
                            "┐": "+", "└": "+", "┘": "+", "…": "~", **dict.fromkeys("█▉▊▋▌▍▎▏▐▀▄▖▗▘▝▚▞▙▛▜▟", "#")})


def ascii_only() -> bool:
    """True where the terminal should be given ASCII glyphs only (see the module docstring)."""
    forced = os.environ.get("EMBODIED_AI_ASCII")
    if forced is not None and forced.strip() in ("0", "1"):
        return forced.strip() == "1"
    return os.environ.get("TERM", "").strip().lower() in ASCII_TERMS


def ellipsis() -> str:
    """The mark of cut text: '…', or '~' where ``ascii_only()``."""
    return ASCII_ELLIPSIS if ascii_only() else ELLIPSIS


def na() -> str:
    """What an unknown number reads: ``units.NA`` ('—'), or '-' where ``ascii_only()``."""
    return ASCII_NA if ascii_only() else NA


def shown(text: str) -> str:
    """``text`` (made by ``units``: '—' for unknown numbers) as this terminal can show it: every '—' a '-' where
    ``ascii_only()``. The CLI keeps ``units.NA``; the screens pass what they show through here or ``na()``."""
    return text.replace(NA, ASCII_NA) if NA in text and ascii_only() else text


def ascii_plot(text: str) -> str:
    """A plotext drawing's text with its frame, ticks and bars in ASCII (``ASCII_PLOT``)."""
    return text.translate(ASCII_PLOT)
