"""What every registry backend answers the same way, written once on top of each backend's primitives.

``store.Registry`` (TinyDB) and ``pg.registry.PgRegistry`` (PostgreSQL) both inherit ``RecordLookup``; each gives
``versions(name)``, ``names()``, ``location`` (the registry as messages name it: a path, or a URL without its
password), ``_details_digest(record)`` (the content hash of its stored details, or None), ``_load_details(digest)``
(-> (details, None) or (None, what is wrong)) and ``_details_parts(record, digest, problem)`` (-> the message and the
CLI's hint that restores them). So a missing model, a missing version and damaged details read the same on both.
"""
from __future__ import annotations

import difflib
from typing import Any

from embodied_tui.data.records import Analysis, ModelDetails, ModelRecord
from embodied_tui.errors import NotFound, RegistryError

APP_DETAILS_HINT = "register the same model file again (r) to restore them"


def suggest(name: str, names: list[str]) -> str:
    """' (did you mean a, b?)' with up to three close names, or ''."""
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    low = name.lower()
    close += [n for n in names if low and low in n.lower() and n not in close][: 3 - len(close)]
    return f" (did you mean {', '.join(close)}?)" if close else ""


def next_version(analysis: Analysis, name: str, prev: dict[str, Any] | None, tags: dict[str, str] | None,
                 description: str | None) -> tuple[ModelRecord, ModelDetails]:
    """The record (and details) of ``analysis`` stored as the next version of ``name`` after the stored record
    ``prev`` (a plain dict, None for the first): version n+1, the previous tags updated by ``tags``, the previous
    description unless ``description`` is given, registered now."""
    from embodied_tui.data.store import now_iso

    merged = dict(prev["tags"]) if prev else {}
    merged.update(tags or {})
    desc = description if description is not None else (prev["description"] if prev else "")
    return ModelRecord.from_analysis(analysis, name=name, version=(prev["version"] + 1) if prev else 1,
                                     registered_at=now_iso(), tags=merged, description=desc)


def edited_record(stored: dict[str, Any], tags: dict[str, str] | None, untag: list[str] | tuple[str, ...],
                  description: str | None) -> tuple[dict[str, Any], ModelRecord]:
    """A stored record (plain dict) with ``untag`` removed, ``tags`` set and ``description`` replaced when given (tags
    and description already checked): the dict to store (keys a newer embodied-ai wrote are kept) and its record."""
    from embodied_tui.data.records import read_as

    rec = dict(stored)
    new_tags = dict(rec["tags"])
    for key in untag:
        new_tags.pop(key, None)
    new_tags.update(tags or {})
    rec["tags"] = new_tags
    if description is not None:
        rec["description"] = description
    return rec, read_as(ModelRecord, rec)


class RecordLookup:
    """Model lookups and stored-details reads shared by the registry backends (see the module docstring)."""

    @property
    def location(self) -> str:  # overridden where the registry is not a path
        return str(self.path)

    def _not_found(self, name: str) -> NotFound:
        return NotFound(f"no model named {name!r} in {self.location}{suggest(name, self.names())}",
                        hint="see `embodied-ai model list`")

    def get(self, name: str, version: int | None = None) -> ModelRecord:
        """One version of a model (the latest when ``version`` is None); NotFound with close names otherwise."""
        found = self.versions(name)
        if not found:
            raise self._not_found(name)
        if version is None:
            return found[-1]
        for rec in found:
            if rec.version == version:
                return rec
        have = ", ".join(str(r.version) for r in found)
        raise NotFound(f"model {name!r} has no version {version} (versions: {have})")

    def _details_message(self, record: ModelRecord, digest: str, problem: str) -> str:
        """The CLI's whole line for details that cannot be read: what is wrong, then how to restore them."""
        message, hint = self._details_parts(record, digest, problem)
        return f"{message}, {hint}"

    def details(self, record: ModelRecord, *, strict: bool = True) -> ModelDetails | None:
        """The census tree and per-layer costs of a registered record; None when none were stored. When they were
        stored but are gone or damaged: RegistryError saying how to restore them, or, with ``strict=False``, a
        ``RegistryWarning`` with that line and None (for commands that can go on without them)."""
        from embodied_tui.data.store import warn

        digest = self._details_digest(record)
        if digest is None:
            return None
        details, problem = self._load_details(digest)
        if problem is None:
            return details
        message, hint = self._details_parts(record, digest, problem)
        if strict:
            raise RegistryError(message, hint=hint, hint_sep=", ", app_hint=APP_DETAILS_HINT)
        warn(f"{message}, {hint}")
        return None

    def details_problem(self, record: ModelRecord) -> str | None:
        """Why the stored details of ``record`` cannot be read (one line with the fix), or None when they can (or
        when none were stored)."""
        digest = self._details_digest(record)
        if digest is None:
            return None
        _, problem = self._load_details(digest)
        return None if problem is None else self._details_message(record, digest, problem)

    def entries(self, names: set[str] | None = None) -> list[tuple[ModelRecord, str, ModelDetails | None]]:
        """(record, identity, details) of every version of ``names`` (all models when None); RegistryError when a
        version's stored details are missing or damaged (``export_entries`` leaves it out instead)."""
        found, skipped = self.export_entries(names)
        if skipped:
            raise RegistryError(skipped[0])
        return found
