"""Registry-wide settings: a generic side table ``settings`` of ``{"key": ..., "value": ...}`` documents, one per key.

Several parts of the tool keep a setting here (the pinned fit target under ``"target"``, ...); each reads and writes
its own key only, and keys a newer embodied-ai added are left as they are. Values are plain JSON.
"""
from __future__ import annotations

from typing import Any

from embodied_tui.services.hardware import registry

TABLE = "settings"
KEY = "key"


def get(db, key: str, default: Any = None) -> Any:
    """The value stored under ``key``, or ``default`` when none is."""
    for doc in registry(db).table_all(TABLE):
        if doc.get(KEY) == key:
            return doc.get("value", default)
    return default


def put(db, key: str, value: Any) -> None:
    """Store ``value`` under ``key`` (replacing what was there); other keys are left alone."""
    registry(db).table_upsert(TABLE, {KEY: key, "value": value}, KEY)


def remove(db, key: str) -> bool:
    """Forget ``key``; whether it was set."""
    return registry(db).table_remove(TABLE, KEY, key) > 0
