"""Which glyphs the terminal can show: full Unicode, or ASCII on a console that has no such fonts.

``ascii_only()`` is true on the Linux virtual console (``TERM=linux``: a Jetson's or a server's text console, whose
font has no box-drawing ellipsis) and on ``TERM=dumb``/``vt100``/``vt220``; ``EMBODIED_AI_ASCII=1`` forces it, ``=0``
turns it off. ``NO_COLOR`` is about colour, not glyphs: it does not change this. Read at call time, so a test (or a
user) can set the environment before the app starts.
"""
from __future__ import annotations

import os

ASCII_TERMS = frozenset({"linux", "dumb", "vt100", "vt102", "vt220", "ansi"})
ELLIPSIS = "…"
ASCII_ELLIPSIS = "~"


def ascii_only() -> bool:
    """True where the terminal should be given ASCII glyphs only (see the module docstring)."""
    forced = os.environ.get("EMBODIED_AI_ASCII")
    if forced is not None and forced.strip() in ("0", "1"):
        return forced.strip() == "1"
    return os.environ.get("TERM", "").strip().lower() in ASCII_TERMS


def ellipsis() -> str:
    """The mark of cut text: '…', or '~' where ``ascii_only()``."""
    return ASCII_ELLIPSIS if ascii_only() else ELLIPSIS
