"""Which registry a ``--db`` value opens, and what every registry backend offers.

- ``open_registry(db)``: ``postgresql://...`` or ``postgres://...`` (given, or in ``$EMBODIED_AI_DB``) opens the
  PostgreSQL backend (``data/pg``, psycopg imported only then); anything else (a path, None for the default) the
  TinyDB file (``data/store.py``). A registry object passed in is returned as it is.
- ``RegistryBackend``: the methods the services call, which ``store.Registry`` and ``pg.registry.PgRegistry`` both
  have, with the same results. ``path`` is where the registry is, for messages: the file path, or the URL without its
  password (``str(reg.path)`` prints either).
"""
from __future__ import annotations

import os
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from embodied_tui.data.pg.connect import is_url as is_server_url
from embodied_tui.data.records import Analysis, ModelDetails, ModelRecord
from embodied_tui.data.store import Registry

Entry = tuple[ModelRecord, str, ModelDetails | None]  # (record, identity, details), as export and import carry them


@runtime_checkable
class RegistryBackend(Protocol):
    path: Any

    def change_marker(self) -> Any: ...
    def list_models(self, latest_only: bool = True) -> list[ModelRecord]: ...
    def names(self) -> list[str]: ...
    def versions(self, name: str) -> list[ModelRecord]: ...
    def get(self, name: str, version: int | None = None) -> ModelRecord: ...
    def identity(self, record: ModelRecord) -> str | None: ...
    def details(self, record: ModelRecord, *, strict: bool = True) -> ModelDetails | None: ...
    def details_problem(self, record: ModelRecord) -> str | None: ...
    def entries(self, names: set[str] | None = None) -> list[Entry]: ...
    def export_entries(self, names: set[str] | None = None) -> tuple[list[Entry], list[str]]: ...
    def find_same(self, name: str, path: str | Path) -> ModelRecord | None: ...
    def add(self, analysis: Analysis, name: str, tags: dict[str, str] | None = None,
            description: str | None = None) -> tuple[ModelRecord, str]: ...
    def remove(self, name: str, version: int | None = None) -> int: ...
    def update(self, name: str, tags: dict[str, str] | None = None, description: str | None = None, *,
               untag: list[str] | tuple[str, ...] = (), version: int | None = None) -> list[ModelRecord]: ...
    def put_many(self, items: list[Entry]) -> list[tuple[ModelRecord, str]]: ...
    def plain(self, doc: dict[str, Any]) -> dict[str, Any]: ...
    def table_items(self, name: str) -> list[tuple[int, dict[str, Any]]]: ...
    def table_all(self, name: str) -> list[dict[str, Any]]: ...
    def table_insert(self, name: str, doc: dict[str, Any]) -> int: ...
    def table_upsert(self, name: str, doc: dict[str, Any], key_field: str) -> int: ...
    def table_remove(self, name: str, key_field: str, value: Any) -> int: ...
    def table_transaction(self, name: str) -> AbstractContextManager[Any]: ...


def open_registry(db: Any = None) -> Any:
    """The registry ``db`` names (see the module docstring): a ``RegistryBackend``."""
    if db is not None and not isinstance(db, (str, os.PathLike)):
        return db  # a registry object already
    if db is None or db == "":
        env = os.environ.get("EMBODIED_AI_DB", "")
        if is_server_url(env):
            db = env
    if is_server_url(db):
        from embodied_tui.data.pg.registry import PgRegistry  # imported only for a server: ~0.1 s of app startup

        return PgRegistry(str(db))
    return Registry(db)


def is_server_registry(reg: Any) -> bool:
    """Whether ``reg`` is a PostgreSQL registry (``data.pg.registry.PgRegistry``), without importing that module
    when no server registry was ever opened (it costs app startup ~0.1 s)."""
    module = sys.modules.get("embodied_tui.data.pg.registry")
    return module is not None and isinstance(reg, module.PgRegistry)


def candidates(reg: Any, *, latest_only: bool = True, filter: str | None = None) -> list[ModelRecord]:
    """The records ``filter`` may match (latest versions unless ``latest_only`` is False), sorted by name then version:
    a backend that pushes filters down to its database (PostgreSQL) returns fewer than all; the caller still tests
    each record with ``filters.compile_filter`` (the one definition of a match), so every backend gives the same
    result."""
    if filter and is_server_registry(reg):
        return reg.list_models(latest_only, filter=filter)
    return reg.list_models(latest_only)
