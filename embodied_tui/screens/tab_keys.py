"""Tab switching by key for a screen holding one TabbedContent (detail, fit)."""
from __future__ import annotations

from textual.widgets import TabbedContent


class TabKeys:
    """Mixin: ``action_tab(id)`` jumps to a pane, ``action_next_tab(step)`` cycles through ``TABS`` in order."""

    TABS: tuple[str, ...] = ()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_next_tab(self, step: int) -> None:
        tabs = self.query_one(TabbedContent)
        index = self.TABS.index(tabs.active) if tabs.active in self.TABS else 0
        tabs.active = self.TABS[(index + step) % len(self.TABS)]
