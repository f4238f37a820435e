"""Where a stored record comes from: this user, this host, now, this embodied-ai (``records.Lineage``).

``user`` is ``$EMBODIED_AI_USER`` when set (a shared service account can name the person), else the login name
(``getpass.getuser``, "unknown" when the system has none); ``host`` is ``$EMBODIED_AI_HOST`` when set, else
``socket.gethostname()``; ``at`` is UTC, ISO 8601 to the second, as ``registered_at`` and ``measured_at`` are.
"""
from __future__ import annotations

import datetime as _dt
import getpass
import os
import socket
from functools import lru_cache

from embodied_tui.data.records import Lineage

USER_ENV = "EMBODIED_AI_USER"
HOST_ENV = "EMBODIED_AI_HOST"


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def user() -> str:
    named = os.environ.get(USER_ENV, "").strip()
    if named:
        return named
    try:
        return getpass.getuser() or "unknown"
    except (KeyError, OSError):  # no login name and no passwd entry (a container with an arbitrary uid)
        return "unknown"


def host() -> str:
    return os.environ.get(HOST_ENV, "").strip() or socket.gethostname() or "unknown"


@lru_cache(maxsize=1)
def tool() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"embodied-ai {version('embodied-ai')}"
    except PackageNotFoundError:
        return "embodied-ai"


def here(*, at: str | None = None, runtime: str | None = None, runtime_version: str | None = None,
         provider: str | None = None) -> Lineage:
    """The lineage of a record made now by this process (``at`` overrides the time, to match a record's own)."""
    return Lineage(user=user(), host=host(), at=at or now_utc(), tool=tool(), runtime=runtime,
                   runtime_version=runtime_version, provider=provider)
