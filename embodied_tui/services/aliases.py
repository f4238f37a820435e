"""Model aliases (``model alias set NAME@3 production``) and the one resolver of model references.

A reference is ``NAME``, ``NAME@3`` / ``NAME@v3`` (a version), ``NAME@latest`` or ``NAME@ALIAS`` (``data/names.py``).
``resolve`` turns one into a stored ``ModelRecord``; every verb that takes a model name (show, fit, bench, card,
measurement add, remove, export, ...) goes through it, so an alias works wherever a name does.

Aliases are kept in the registry's generic table ``model_aliases`` as append-only events, one document each:
``{"seq", "event": "set"|"rm", "model", "alias", "version", "from_version", "reason", "lineage"}``. Nothing is
updated or deleted: the alias's current target is its latest event (highest ``seq``; a ``rm`` means it points
nowhere), and the events are its history. An event is written inside ``table_transaction``, which reads the table,
works out ``seq`` and the previous target and inserts under the registry's lock, so two people moving the same alias
at once get two events in a definite order and the alias ends on the later one.

An alias whose version was removed (``model remove NAME --version 3 --force``) gets an ``rm`` event with the reason
at the removal; one left pointing at a missing version (a registry edited by hand, a race with a removal) is
reported in one line when resolved, naming the alias, the version and how to move it.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from embodied_tui.data.lineage import here
from embodied_tui.data.names import LATEST, check_alias, parse_selector, shown, split_ref
from embodied_tui.data.records import MAX_VERSION, Lineage, ModelRecord, read_as
from embodied_tui.data.store import Registry, error_text, warn
from embodied_tui.errors import NotFound, UserError

TABLE = "model_aliases"


class AliasEvent(BaseModel):
    """One move of an alias: ``set`` (to ``version``, from ``from_version`` or None when it was new) or ``rm``
    (``version`` None; ``from_version`` the version it left). ``seq`` orders the events of a registry (1, 2, ...)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    seq: int = Field(ge=1)
    event: Literal["set", "rm"]
    model: str
    alias: str
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION)
    from_version: int | None = Field(default=None, ge=1, le=MAX_VERSION)
    reason: str = ""  # why an alias was removed other than by `model alias rm` ("v3 removed with --force")
    lineage: Lineage


def _registry(db: Registry | str | Path | None) -> Registry:
    from embodied_tui.services.models import registry

    return registry(db)


# ------------------------------------------------------------------------------------------------ reading
def _parse(docs: Iterable[dict], where: str) -> list[AliasEvent]:
    """Alias events ordered by ``seq``; an invalid document (a hand edit) is skipped with a warning naming it."""
    out = []
    for doc in docs:
        try:
            out.append(read_as(AliasEvent, doc))
        except ValidationError as exc:
            seq = doc.get("seq") if isinstance(doc, dict) else None
            warn(f"skipped alias event {seq!r} in {where}: invalid at {error_text(exc.errors(include_url=False)[0])}; "
                 f"fix or remove it in the file")
    return sorted(out, key=lambda e: e.seq)


def history(db: Registry | str | Path | None = None, model: str | None = None,
            alias: str | None = None) -> list[AliasEvent]:
    """Every alias event (of ``model``, of ``alias``), oldest first."""
    reg = _registry(db)
    events = _parse(reg.table_all(TABLE), str(reg.path))
    return [e for e in events if (model is None or e.model == model) and (alias is None or e.alias == alias)]


def _current(events: Iterable[AliasEvent]) -> dict[tuple[str, str], AliasEvent]:
    """(model, alias) -> its latest ``set`` event, for the aliases whose latest event is not ``rm``."""
    last: dict[tuple[str, str], AliasEvent] = {}
    for event in events:  # ordered by seq
        last[(event.model, event.alias)] = event
    return {key: e for key, e in last.items() if e.event == "set"}


def current(db: Registry | str | Path | None = None, model: str | None = None) -> list[AliasEvent]:
    """The aliases in force (of ``model``) as their latest ``set`` events, by model then alias."""
    found = _current(history(db, model))
    return [found[key] for key in sorted(found)]


def aliases_of(db: Registry | str | Path | None, record: ModelRecord) -> list[str]:
    """The aliases that point at this version of its model now."""
    return [e.alias for e in current(db, record.name) if e.version == record.version]


# ------------------------------------------------------------------------------------------------ resolving
def resolve(db: Registry | str | Path | None, ref: str, version: int | None = None) -> ModelRecord:
    """The stored record ``ref`` names: ``NAME`` (the latest version, or ``version``), ``NAME@3``, ``NAME@v3``,
    ``NAME@latest`` or ``NAME@ALIAS``. NotFound (with close names, versions or aliases) when there is none; UserError
    when ``version`` contradicts the reference or the alias points at a removed version."""
    reg = _registry(db)
    name, selector = split_ref(ref)
    if selector is None:
        return reg.get(name, version)
    if reg.versions(ref):  # a record stored before '@' was refused in names ("old name@1") is still found by its name
        return reg.get(ref, version)
    target = parse_selector(selector)
    if isinstance(target, int):
        if version is not None and version != target:
            raise UserError(f"{shown(ref)} names version {target} but --version says {version}: give the version "
                            f"once")
        return reg.get(name, target)
    if target == LATEST:
        if version is not None:
            raise UserError(f"{shown(ref)} names the latest version but --version says {version}: give one of them")
        return reg.get(name)
    versions = reg.versions(name)
    if not versions:
        reg.get(name)  # NotFound, with close names
    event = _current(history(reg, name)).get((name, target))
    if event is None:
        have = [e.alias for e in current(reg, name)]
        listed = f" (its aliases: {', '.join(have)})" if have else " (it has none)"
        raise NotFound(f"model {name!r} has no alias {shown(target)}{listed}; set one with "
                       f"`embodied-ai model alias set {name}@VERSION {target}`")
    if version is not None and version != event.version:
        raise UserError(f"{shown(ref)} is version {event.version} but --version says {version}: give the version "
                        f"once")
    found = next((r for r in versions if r.version == event.version), None)
    if found is None:
        have = ", ".join(str(r.version) for r in versions)
        raise NotFound(f"alias {target!r} of model {name!r} points at v{event.version}, which was removed (versions: "
                       f"{have}); move it with `embodied-ai model alias set {name}@VERSION {target}` or remove it "
                       f"with `embodied-ai model alias rm {name} {target}`")
    return found


# ------------------------------------------------------------------------------------------------ changing
def _append(reg: Registry, table, events: list[AliasEvent], **fields) -> AliasEvent:
    seq = max((e.seq for e in events), default=0) + 1
    event = AliasEvent(seq=seq, lineage=here(), **fields)
    table.insert(Registry.plain(event.model_dump(mode="json")))
    return event


def set_alias(db: Registry | str | Path | None, ref: str, alias: str) -> tuple[AliasEvent, str]:
    """Point ``alias`` at the version ``ref`` names (``NAME@3``; ``NAME`` is its latest version; ``NAME@staging``
    the version another alias points at). Returns the event and "set" (new alias), "moved" or "unchanged" (it
    already pointed there: nothing is written). The read of the alias's current target and the new event are one
    transaction."""
    alias = check_alias(alias)
    reg = _registry(db)
    record = resolve(reg, ref)
    with reg.table_transaction(TABLE) as table:
        events = _parse(table.all(), str(reg.path))
        before = _current(events).get((record.name, alias))
        if before is not None and before.version == record.version:
            return before, "unchanged"
        if not any(r.version == record.version for r in reg.versions(record.name)):  # removed meanwhile
            raise NotFound(f"model {record.name!r} v{record.version} was removed while the alias was being set; "
                           f"nothing was changed")
        event = _append(reg, table, events, event="set", model=record.name, alias=alias, version=record.version,
                        from_version=before.version if before else None)
    return event, ("moved" if before is not None else "set")


def remove_alias(db: Registry | str | Path | None, name: str, alias: str, *, reason: str = "") -> AliasEvent:
    """Record that ``alias`` of model ``name`` points nowhere now (its history is kept). NotFound when it is not
    set."""
    reg = _registry(db)
    with reg.table_transaction(TABLE) as table:
        events = _parse(table.all(), str(reg.path))
        before = _current(events).get((name, alias))
        if before is None:
            if not reg.versions(name):
                reg.get(name)  # NotFound, with close names
            have = sorted(a for (m, a) in _current(events) if m == name)
            listed = f"its aliases: {', '.join(have)}" if have else "it has none"
            raise NotFound(f"model {name!r} has no alias {shown(alias)} ({listed}); nothing was removed")
        return _append(reg, table, events, event="rm", model=name, alias=alias, from_version=before.version,
                       reason=reason)


def guard_removal(db: Registry | str | Path | None, name: str, versions: Iterable[int], *, force: bool
                  ) -> list[AliasEvent]:
    """Before removing ``versions`` of ``name``: UserError naming the aliases that point at them, unless ``force``;
    with ``force``, an ``rm`` event for each (reason: the removal). Returns those events."""
    gone = set(versions)
    hit = [e for e in current(db, name) if e.version in gone]
    if not hit:
        return []
    if not force:
        what = ", ".join(f"{e.alias} -> v{e.version}" for e in hit)
        plural = "es" * (len(hit) > 1)
        raise UserError(f"model {name!r} is still aliased ({what})", hint_sep=": ",
                        hint=f"move the alias{plural} with `embodied-ai model alias set`, or pass --force to remove "
                             f"the alias{plural} with the version; nothing was removed",
                        app_hint=f"nothing was removed; move or remove the alias{plural} first")
    return [remove_alias(db, name, e.alias, reason=f"v{e.version} removed with --force") for e in hit]
