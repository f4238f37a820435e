"""Keys of a dialog with text fields (register, edit, export).

``tab`` and ``shift+tab`` are the screen's *priority* bindings here: Textual's own ``tab`` binding is checked only
after the key has reached the focused field and bubbled back up, and keys typed meanwhile (a fast typist, a paste, a
slow SSH link delivering a burst) were already sent to the old field. A priority binding moves the focus before the
next key is delivered.
"""
from __future__ import annotations

from textual.binding import Binding

FIELD_KEYS = [
    Binding("tab", "app.focus_next", "Next field", show=False, priority=True),
    Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True),
]
