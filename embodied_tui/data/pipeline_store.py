"""Stored pipelines: the ``pipelines`` table of the registry file, one document per name x version.

Document layout::

    {"name": "pi05", "version": 2, "identity": "<sha256>", "registered_at": "...", "source": "/path/spec.yaml",
     "spec": {...PipelineSpec, its version set to the stored one...},
     "configs": {"../configs/paligemma/config.json": {...the parsed config.json...}}}

- **Self-contained.** A config stage's ``config.json`` is stored *by content* (the parsed JSON, keyed by the path the
  spec gives), so a stored pipeline fits the same way after the spec's folder has moved or changed. A registered-model
  stage is stored *by name*: the model must be in the registry when the pipeline is registered, and a fit uses the
  model's latest version (as `pipeline fit SPEC` does; the stage's source says which version was used).
- **Versions** work as models' do: the first registration of a name is version 1; a spec or config that differs from
  every stored version of the name becomes the next version; the same content again is "unchanged" (``identity``: the
  SHA-256 of the spec without its version and name, plus its configs).
- **Names** follow ``data/names.py``'s rule. Every write holds the registry's lock for the whole read-modify-write
  (``Registry.table_transaction``), so concurrent writers never lose a version or take the same number.

No arithmetic and no file reading here (``services.pipeline`` reads the configs and fits).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from embodied_tui.data.names import check_name
from embodied_tui.data.pipeline_spec import PipelineSpec
from embodied_tui.data.records import MAX_VERSION
from embodied_tui.data.store import Registry, error_text, now_iso, warn
from embodied_tui.errors import NotFound, RegistryError, UserError

TABLE = "pipelines"


@dataclass(frozen=True)
class StoredPipeline:
    """One stored version of a pipeline."""

    name: str
    version: int
    spec: PipelineSpec
    configs: dict[str, dict[str, Any]]
    identity: str
    registered_at: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "registered_at": self.registered_at,
                "source": self.source, "identity": self.identity,
                "spec": self.spec.model_dump(mode="json", exclude_none=True), "configs": self.configs}


def identity_of(spec: PipelineSpec, configs: dict[str, dict[str, Any]]) -> str:
    """What "the same pipeline" means: its spec (name and version left out) and its configs' content."""
    body = spec.model_dump(mode="json", exclude={"name", "version"})
    text = json.dumps({"spec": body, "configs": configs}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _read(doc: dict[str, Any]) -> StoredPipeline:
    where = f"{doc.get('name')!r} v{doc.get('version')}"
    try:
        spec = PipelineSpec.model_validate(doc["spec"])
        return StoredPipeline(name=str(doc["name"]), version=int(doc["version"]), spec=spec,
                              configs=dict(doc.get("configs") or {}), identity=str(doc["identity"]),
                              registered_at=str(doc.get("registered_at", "")), source=str(doc.get("source", "")))
    except ValidationError as exc:
        raise RegistryError(f"stored pipeline {where} is invalid at "
                            f"{error_text(exc.errors(include_url=False)[0], ('spec',))}; remove it with "
                            f"`embodied-ai pipeline remove`") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise RegistryError(f"stored pipeline {where} is damaged ({exc.__class__.__name__}: {exc}); remove it with "
                            f"`embodied-ai pipeline remove`") from None


def all_versions(reg: Registry, *, strict: bool = True) -> list[StoredPipeline]:
    """Every stored version, by name then version. A damaged document raises RegistryError, or with ``strict=False``
    is left out with a ``RegistryWarning`` (the graph, so that one bad pipeline does not stop every question)."""
    out = []
    for doc in reg.table_all(TABLE):
        try:
            out.append(_read(doc))
        except RegistryError as exc:
            if strict:
                raise
            warn(str(exc))
    return sorted(out, key=lambda p: (p.name, p.version))


def latest(reg: Registry, *, strict: bool = True) -> list[StoredPipeline]:
    """The latest version of each name, by name (``strict``: see ``all_versions``)."""
    out: dict[str, StoredPipeline] = {}
    for p in all_versions(reg, strict=strict):
        out[p.name] = p
    return list(out.values())


def _not_found(name: str, names: list[str]) -> NotFound:
    have = f" (stored: {', '.join(sorted(set(names))[:12])})" if names else " (none stored yet)"
    return NotFound(f"no pipeline {name!r}{have}; store one with `embodied-ai pipeline register SPEC`")


def get(reg: Registry, name: str, version: int | None = None) -> StoredPipeline:
    """One version (the latest when ``version`` is None); NotFound naming what is stored."""
    every = all_versions(reg)
    mine = [p for p in every if p.name == name]
    if not mine:
        raise _not_found(name, [p.name for p in every])
    if version is None:
        return mine[-1]
    for p in mine:
        if p.version == version:
            return p
    raise NotFound(f"pipeline {name!r} has no version {version} (versions: {', '.join(str(p.version) for p in mine)})")


def add(reg: Registry, spec: PipelineSpec, configs: dict[str, dict[str, Any]], *, name: str | None = None,
        source: str = "") -> tuple[StoredPipeline, str]:
    """Store ``spec`` (with its configs' content) under ``name`` (default: the spec's). Returns the stored version and
    "added" (version 1), "new_version" or "unchanged" (the same content as a stored version: nothing written)."""
    name = check_name((name or spec.name).strip(), "pipeline name", "choose another name, e.g. pi05-orin")
    identity = identity_of(spec, configs)
    with reg.table_transaction(TABLE) as table:
        mine = sorted((d for d in table.all() if d.get("name") == name), key=lambda d: d.get("version", 0))
        for doc in mine:
            if doc.get("identity") == identity:
                return _read(doc), "unchanged"
        version = (mine[-1]["version"] + 1) if mine else 1
        if version > MAX_VERSION:
            raise RegistryError(f"pipeline {name!r} has no free version number above {version - 1}")
        stored = StoredPipeline(name=name, version=version, spec=spec.model_copy(update={"name": name,
                                                                                         "version": version}),
                                configs=configs, identity=identity, registered_at=now_iso(), source=source)
        doc = Registry.plain(stored.to_dict())
        table.insert(doc)
    return stored, ("new_version" if mine else "added")


def _chosen(docs: list, name: str, version: int | None) -> list:
    """The stored documents of ``name`` (one version, or all), read as they are (a damaged one too); NotFound."""
    mine = [d for d in docs if d.get("name") == name]
    if not mine:
        raise _not_found(name, [str(d.get("name")) for d in docs])
    if version is None:
        return mine
    chosen = [d for d in mine if d.get("version") == version]
    if not chosen:
        have = ", ".join(str(d.get("version")) for d in sorted(mine, key=lambda d: d.get("version", 0)))
        raise NotFound(f"pipeline {name!r} has no version {version} (versions: {have})")
    return chosen


def check_stored(reg: Registry, name: str, version: int | None = None) -> int:
    """How many documents ``remove`` would remove (NotFound when none); damaged ones count."""
    return len(_chosen(reg.table_all(TABLE), name, version))


def remove(reg: Registry, name: str, version: int | None = None) -> int:
    """Remove one version or every version of ``name`` (damaged ones too); how many were removed. NotFound when
    none is stored."""
    with reg.table_transaction(TABLE) as table:
        docs = _chosen(table.all(), name, version)
        table.remove(doc_ids=[d.doc_id for d in docs])
    return len(docs)


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME@V`` -> (name, version or None); a bad ``V`` is a UserError line."""
    name, sep, version = ref.rpartition("@")
    if not sep:
        return ref, None
    if not version.isdigit() or int(version) < 1:
        raise UserError(f"pipeline {ref!r}: the version after '@' must be a whole number from 1 up, e.g. {name}@2")
    return name, int(version)
