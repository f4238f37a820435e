"""The question being read by ``analysis.ask.parse_question``: the text not yet read, matching on it, negation.

Each reader (``ask.quantities``, ``ask.vocab``, ``ask.phrases``) takes the phrases it understands out of the text
(``take``), so a phrase is read once, and records each condition with the words it came from (a ``Reading``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dc_field

from embodied_tui.ask.query import Condition, Reading, Relative
from embodied_tui.ask.words import NEGATION, YES_NO


@dataclass
class QuestionText:
    """The question being read: its text (``raw``; ``low`` lower-cased, same positions), which characters are still
    ``free`` (each phrase is read once), and what the readers found so far."""

    raw: str
    low: str
    free: list[bool]
    readings: list[Reading] = dc_field(default_factory=list)
    conditions: list[Condition] = dc_field(default_factory=list)
    notes: list[str] = dc_field(default_factory=list)
    order: list[tuple[str, bool, str]] = dc_field(default_factory=list)  # (field, desc, phrase)
    limit: int | None = None
    limit_phrase: str = ""
    every_device: bool = False  # 'on every jetson', 'on both the pi 4 and the pi 5'
    mode_extreme: tuple[str, str] | None = None  # ('lowest' or 'highest', the phrase): 'in its lowest power mode'
    ordinal: int | None = None  # 'the second fastest': the answer is the row (or subject) at that place
    plural_superlative: bool = False
    count: bool = False
    group_by: str | None = None  # a count split by this field ('how many models per family')
    subject_votes: list[tuple[int, str]] = dc_field(default_factory=list)  # (position, "model"/"hardware")
    ignored: list[str] = dc_field(default_factory=list)  # phrases recognised but not usable
    reasons: list[str] = dc_field(default_factory=list)  # why a phrase that carries meaning cannot be answered
    relative: Relative | None = None  # 'faster than <model>' with no number (vocab.read_comparison)

    def __post_init__(self) -> None:
        # the text with what was read blanked out, kept up to date by ``take``: rebuilding it per match made reading
        # a long question of repeated names quadratic in Python steps
        self._chars = [c if f else "\x00" for c, f in zip(self.low, self.free)]
        self._masked: str | None = None

    @property
    def yes_no(self) -> bool:
        """The question asks yes or no ('is ...', 'does ...', 'can ...')."""
        return re.match(YES_NO, self.low) is not None

    def masked(self) -> str:
        if self._masked is None:
            self._masked = "".join(self._chars)
        return self._masked

    def take(self, start: int, end: int) -> str:
        span = range(len(self.free))[start:end]  # the positions the slice names, never past the text's end
        self.free[start:end] = [False] * len(span)
        self._chars[start:end] = ["\x00"] * len(span)
        self._masked = None
        return self.raw[start:end].strip()

    def finditer(self, pattern: str):
        """Matches of ``pattern`` (word-bounded) on the text not yet read, left to right; each over free text only."""
        regex = re.compile(rf"(?<![a-z0-9_])(?:{pattern})(?![a-z0-9_])")
        pos = 0
        while True:
            text = self.masked()
            match = regex.search(text, pos)
            if match is None:
                return
            if all(self.free[match.start():match.end()]) and match.end() > match.start():
                yield match
                pos = match.end()
            else:
                pos = match.start() + 1

    def negated_before(self, start: int) -> tuple[bool, int]:
        """Whether a negation word directly precedes ``start`` (fillers allowed), and where it starts."""
        before = self.masked()[:start]
        fillers = (r"on|in|for|from|of|to|part|belong\w*|the|a|an|any|run\w*|take|takes|need|needs|get|gets|have|has|carry|carries|with|hit|hits|"
                   r"reach|reaches|achieve|achieves|manage|manages|sustain|sustains|do|does|make|makes")
        m = re.search(rf"(?<![a-z0-9_])(?:{NEGATION}\s+|non-)(?:(?:{fillers})\s+)*$", before)
        return (True, m.start()) if m else (False, start)

    def reread(self, old: str, new: str) -> None:
        """Each reading that meant ``old`` now means ``new`` (a condition a later step changed or dropped)."""
        self.readings[:] = [r.model_copy(update={"meaning": new}) if r.meaning == old else r for r in self.readings]

    def add(self, cond: Condition, phrase: str) -> None:
        self.conditions.append(cond)
        self.readings.append(Reading(phrase=phrase, meaning=cond.cypher()))

    def read_entities(self, patterns: list[tuple[str, str]], fld: str, what: str = "") -> None:
        """Each (pattern, value) match, negatable ('not on hailo'), becomes ``fld = value``; ``what`` ("model" or
        "hardware"), when given, is a vote for the subject at the match."""
        for pattern, value in patterns:
            for m in list(self.finditer(pattern)):
                negated, start = self.negated_before(m.start())
                phrase = self.take(start, m.end())
                self.add(Condition(field=fld, op="=", value=value, negate=negated), phrase)
                if what:
                    self.subject_votes.append((m.start(), what))
