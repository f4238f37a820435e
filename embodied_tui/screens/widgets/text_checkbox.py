"""A checkbox whose state reads without colour: "[X] label" when checked, "[ ] label" when not."""
from __future__ import annotations

from textual.widgets import Checkbox


class TextCheckbox(Checkbox):
    BUTTON_LEFT = "["
    BUTTON_RIGHT = "]"

    @property
    def BUTTON_INNER(self) -> str:  # noqa: N802 - overrides the class attribute Checkbox renders
        return "X" if self.value else " "
