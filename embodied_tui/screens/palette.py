"""Command palette providers: "Open model...", "Compare with...", "Fit on hardware...", "Sort by..."."""
from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from embodied_tui.data.records import ModelRecord
from embodied_tui.errors import UserError

DISCOVER_LIMIT = 20


class _ModelProvider(Provider):
    """Shared: the latest version of every registered model, read once per palette opening."""

    prefix = ""

    async def startup(self) -> None:
        try:
            self.records: list[ModelRecord] = self.app.registry.list_models(latest_only=True)
        except UserError:
            self.records = []

    def candidates(self) -> list[ModelRecord]:
        return self.records

    def run(self, record: ModelRecord) -> None:
        raise NotImplementedError

    def help(self, record: ModelRecord) -> str:
        arch = record.architecture
        return f"v{record.version} {arch.type}/{arch.family}"

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for record in self.candidates():
            text = f"{self.prefix} {record.name}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), partial(self.run, record), text=text, help=self.help(record))

    async def discover(self) -> Hits:
        for record in self.candidates()[:DISCOVER_LIMIT]:
            text = f"{self.prefix} {record.name}"
            yield DiscoveryHit(text, partial(self.run, record), text=text, help=self.help(record))


class OpenModelProvider(_ModelProvider):
    prefix = "Open model:"

    def run(self, record: ModelRecord) -> None:
        self.app.open_detail(record)


class FitModelProvider(_ModelProvider):
    prefix = "Fit on hardware:"

    def run(self, record: ModelRecord) -> None:
        self.app.open_fit(record)


class CompareWithProvider(_ModelProvider):
    """Compare the model under the cursor (registry) or on screen (detail) with another one."""

    prefix = "Compare with:"

    def current(self) -> ModelRecord | None:
        getter = getattr(self.screen, "current_record", None)
        return getter() if getter else None

    def candidates(self) -> list[ModelRecord]:
        current = self.current()
        if current is None:
            return []
        return [r for r in self.records if (r.name, r.version) != (current.name, current.version)]

    def help(self, record: ModelRecord) -> str:
        current = self.current()
        return f"{current.name if current else '?'} vs {record.name} v{record.version}"

    def run(self, record: ModelRecord) -> None:
        current = self.current()
        if current is not None:
            self.app.open_compare([current, record])


class SortByProvider(Provider):
    async def _hits(self):
        from embodied_tui.screens.registry import SORTS

        for key in SORTS:
            for reverse in (False, True):
                text = f"Sort by: {key}{' (reversed)' if reverse else ''}"
                yield text, partial(self.app.sort_registry, key, reverse)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        async for text, command in self._hits():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), command, text=text, help="registry table order")

    async def discover(self) -> Hits:
        async for text, command in self._hits():
            if "reversed" not in text:
                yield DiscoveryHit(text, command, text=text, help="registry table order")
