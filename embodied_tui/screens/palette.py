"""Command palette providers: "Open model...", "Compare with...", "Fit on hardware...", "Sort by...", "Set target...".

Registries hold thousands of models, and Textual's fuzzy matcher tries every way the query's letters fit a text (and
the palette builds a list entry for every hit): scoring every model on every key press took seconds at 10,000 names.
So each model provider keeps its hit texts lower-cased once per palette opening (``NameIndex``), picks at most
``CANDIDATE_LIMIT`` texts per key press with cheap string tests, and scores only those with the matcher.
"""
from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.fuzzy import Matcher
from textual.markup import escape

from embodied_tui import units as fmt
from embodied_tui.data.filters import letters_in_order
from embodied_tui.data.records import ModelRecord
from embodied_tui.errors import UserError

DISCOVER_LIMIT = 20
CANDIDATE_LIMIT = 40  # texts each model provider scores and offers per key press


class NameIndex:
    """Hit texts (``"Open model: resnet18"``) and their model names, lower-cased once.

    ``candidates(query)`` picks the texts the palette's matcher can score above 0 (the query's letters appear in
    order, ignoring case), at most ``limit``, best first by tier: the name is the query, starts with it, contains it;
    the text contains it; the name, then the text, holds its letters in order. Within a tier, registry order.
    Each tier is one pass of C-level string tests, stopped once ``limit`` are found.
    """

    def __init__(self, texts: list[str], names: list[str]) -> None:
        self.texts = [t.lower() for t in texts]
        self.names = [n.lower() for n in names]

    def _tiers(self, q: str) -> Iterator[Iterator[int]]:
        names, texts = self.names, self.texts
        yield (i for i, n in enumerate(names) if n == q)
        yield (i for i, n in enumerate(names) if n.startswith(q))
        yield (i for i, n in enumerate(names) if q in n)
        yield (i for i, t in enumerate(texts) if q in t)
        in_order = letters_in_order(q)
        yield (i for i, n in enumerate(names) if in_order(n))
        yield (i for i, t in enumerate(texts) if in_order(t))

    def candidates(self, query: str, limit: int = CANDIDATE_LIMIT) -> list[int]:
        """Positions of at most ``limit`` texts ``query`` can match, best tier first."""
        chosen: list[int] = []
        seen: set[int] = set()
        for tier in self._tiers(query.lower()):
            for i in tier:
                if i not in seen:
                    seen.add(i)
                    chosen.append(i)
                    if len(chosen) >= limit:
                        return chosen
        return chosen


class _ModelProvider(Provider):
    """Shared: the latest version of every registered model, read once per palette opening."""

    prefix = ""

    async def startup(self) -> None:
        try:
            self.records: list[ModelRecord] = self.app.registry.list_models(latest_only=True)
        except UserError:
            self.records = []
        self.offered = self.candidates()  # the screen under the palette stays put while it is open
        self.index = NameIndex([self.text(r) for r in self.offered], [fmt.safe_text(r.name) for r in self.offered])

    def candidates(self) -> list[ModelRecord]:
        return self.records

    def run(self, record: ModelRecord) -> None:
        raise NotImplementedError

    def help(self, record: ModelRecord) -> str:
        arch = record.architecture
        return f"v{record.version} {arch.type}/{arch.family}"

    def text(self, record: ModelRecord) -> str:
        """The hit's text: the model's name escaped (``units.safe_text``)."""
        return f"{self.prefix} {fmt.safe_text(record.name)}"

    def help_text(self, record: ModelRecord) -> str:
        """``help`` escaped, and as markup (the palette reads help text as markup) that shows it literally."""
        return escape(fmt.safe_text(self.help(record)))

    async def search(self, query: str) -> Hits:
        """Score the few texts ``NameIndex`` picks (not every model) with the palette's matcher."""
        matcher = self.matcher(query)
        for i in self.index.candidates(query):
            record = self.offered[i]
            text = self.text(record)
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, highlight(matcher, text), partial(self.run, record), text=text,
                          help=self.help_text(record))

    async def discover(self) -> Hits:
        for record in self.offered[:DISCOVER_LIMIT]:
            text = self.text(record)
            yield DiscoveryHit(Content(text), partial(self.run, record), text=text, help=self.help_text(record))


def highlight(matcher: Matcher, text: str) -> Content:
    """``matcher.highlight(text)`` without reading ``text`` as markup: a model named '[b]x' shows as it is named."""
    content = Content(text)
    score, offsets = matcher.fuzzy_search.match(matcher.query, text)
    for offset in offsets if score else ():
        if not text[offset].isspace():
            content = content.stylize(matcher.match_style, offset, offset + 1)
    return content


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


class SetTargetProvider(Provider):
    """"Set target: DEVICE/MODE/PRECISION": pin the registry table's target (``services.target``); every device of
    the catalog and the registry, each power mode and precision, or the device or mode left open (the fastest of
    them). "Set target: none" goes back to the fastest of any device."""

    async def startup(self) -> None:
        from embodied_tui.services import target as targets

        try:
            db = self.app.registry
            self.short = targets.device_short_names(db)
            self.choices = targets.choices(db)
            self.names = {e.id: e.name for e in targets.all_devices(db)}
        except UserError:
            self.short, self.choices, self.names = {}, [], {}

    def _hits(self):
        yield "Set target: none (fastest of any device)", None, "forget the pinned target"
        for choice in self.choices:
            open_parts = " (fastest mode and precision)" if choice.mode is None else (
                " (fastest precision)" if choice.precision is None else "")
            text = f"Set target: {fmt.safe_text(choice.label(self.short))}"
            yield text, choice.spec(), fmt.safe_text(f"{self.names.get(choice.device, choice.device)}{open_parts}")

    def _run(self, spec: str | None) -> None:
        self.app.registry_screen.set_target(spec)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, spec, help_text in self._hits():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, highlight(matcher, text), partial(self._run, spec), text=text,
                          help=escape(help_text))

    async def discover(self) -> Hits:
        for text, spec, help_text in self._hits():
            if spec is None or "/" not in spec:  # none, and each device with its mode and precision open
                yield DiscoveryHit(Content(text), partial(self._run, spec), text=text, help=escape(help_text))
