"""Connections to a PostgreSQL registry: URLs, one connection per process and thread, transactions with retries, and
every server problem as one ``RegistryError`` line that names the URL without its password and says what to do.

- A URL is ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME[?param=value...]`` (``postgres://`` too), as libpq reads
  it; a password is better kept in ``~/.pgpass`` or ``$PGPASSWORD`` than in the URL. ``shown(url)`` is the URL with
  the password (in the user part or a ``password=`` parameter) left out: what every message prints.
- Connections run in autocommit mode: a read is one statement; a write is one explicit transaction (``transaction``)
  that holds its locks until it commits. A transaction that meets a serialization failure, a deadlock or a constraint
  a concurrent writer made it break is run again from the start (up to ``RETRIES`` times): callers pass a function of
  the cursor, never a half-done state.
- A connection is kept per (URL, process, thread) and made again when the server dropped it; those of threads that
  have ended are closed when the next one is made. A forked child never uses its parent's connection (the key holds
  the process id), nor closes it (that would end the parent's session).
- Waiting for a lock longer than ``LOCK_TIMEOUT_S`` (60 s, as the TinyDB file lock) is an error line, not a hang.
"""
from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from embodied_tui.errors import RegistryError

LOCK_TIMEOUT_S = 60
CONNECT_TIMEOUT_S = 10
RETRIES = 8
SCHEMES = ("postgresql://", "postgres://")
URL_FORM = "postgresql://USER@HOST[:PORT]/DBNAME"
T = TypeVar("T")

_conns: dict[tuple[str, int, int], Any] = {}
_conns_lock = threading.Lock()


def is_url(db: object) -> bool:
    """Whether ``db`` (a ``--db`` value) names a PostgreSQL database rather than a TinyDB file."""
    return isinstance(db, str) and db.strip().lower().startswith(SCHEMES)


def shown(url: str) -> str:
    """``url`` without its password: ``postgresql://ana:secret@db/reg?password=x`` -> ``postgresql://ana@db/reg``."""
    try:
        parts = urlsplit(url.strip())
        netloc = parts.netloc
        if "@" in netloc:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.partition(':')[0]}@{host}"
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                           if k.lower() != "password"])
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return url.split("://", 1)[0] + "://..."  # not even a URL: show no part of it


def _password(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        found = parts.password or dict(parse_qsl(parts.query)).get("password")
    except ValueError:
        return None
    return found or None


def _clean(text: str, url: str) -> str:
    """A libpq message on one line, with the password (if the message quotes it) replaced by ``***``."""
    line = " ".join(str(text).split())
    secret = _password(url)
    return line.replace(secret, "***") if secret else line


def check_url(url: str) -> dict[str, Any]:
    """The connection parameters of ``url``; RegistryError (one line) when libpq cannot read it or it names no
    database."""
    from psycopg import conninfo

    try:
        params = conninfo.conninfo_to_dict(url.strip())
    except Exception as exc:  # psycopg.ProgrammingError with libpq's reason
        raise RegistryError(f"bad PostgreSQL URL {shown(url)}: {_clean(exc, url)}; use {URL_FORM}") from None
    if not params.get("dbname") and not urlsplit(url.strip()).path.strip("/"):
        raise RegistryError(f"PostgreSQL URL {shown(url)} names no database; use {URL_FORM}")
    return params


_HINTS = (  # (what libpq says, what we say, what to do)
    ("password authentication failed", "authentication failed",
     "check the user and password (~/.pgpass or PGPASSWORD)"),
    ("no password supplied", "the server asks for a password", "put it in ~/.pgpass or PGPASSWORD"),
    ("no pg_hba.conf entry", "the server does not accept this user from this host",
     "ask its administrator to allow it in pg_hba.conf"),
    ('role "', "", "create that user on the server (createuser NAME) or fix the user in the URL"),
    ("does not exist", "", "create it (createdb -E UTF8 NAME) or fix the database name in the URL"),
    ("connection refused", "no server is listening there",
     "start PostgreSQL (pg_ctl start) or fix the host and port"),
    ("could not translate host name", "unknown host", "fix the host name"),
    ("failed to resolve host", "unknown host", "fix the host name"),
    ("timeout expired", "the server did not answer in time", "check the host, port and network"),
    ("no such file or directory", "no server socket there", "start PostgreSQL or give a host in the URL"),
)


def connect_error(url: str, exc: BaseException) -> RegistryError:
    """One line for a failed connection: the URL without its password, what went wrong, what to do."""
    text = _clean(exc, url)
    low = text.lower()
    for needle, said, todo in _HINTS:
        if needle in low:
            what = said or _fatal(text)
            return RegistryError(f"cannot open the PostgreSQL registry {shown(url)}: {what}; {todo}")
    return RegistryError(f"cannot open the PostgreSQL registry {shown(url)}: {_fatal(text)}; check the URL "
                         f"({URL_FORM}) and that the server runs")


def _fatal(text: str) -> str:
    """The server's own words from a libpq message (after ``FATAL:``), else the message."""
    return text.split("FATAL:", 1)[-1].strip() if "FATAL:" in text else text


def server_error(url: str, exc: BaseException) -> RegistryError:
    """One line for an error while talking to the server."""
    import psycopg

    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return RegistryError(f"PostgreSQL registry {shown(url)} is still locked by another writer after "
                             f"{LOCK_TIMEOUT_S} s; try again")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return RegistryError(f"PostgreSQL registry {shown(url)}: {_clean(exc, url)}; ask for write access to the "
                             f"database, or use another --db")
    if isinstance(exc, psycopg.OperationalError):
        return RegistryError(f"lost the connection to the PostgreSQL registry {shown(url)}: {_clean(exc, url)}; "
                             f"try again (nothing half-done was kept)")
    return RegistryError(f"PostgreSQL registry {shown(url)}: {_clean(exc, url)} (nothing was changed)")


def connection(url: str):
    """This process's and thread's connection to ``url``, set up (search path, lock timeout) and migrated on first
    use; RegistryError when it cannot be opened."""
    import psycopg

    key = (url, os.getpid(), threading.get_ident())
    with _conns_lock:
        conn = _conns.get(key)
    if conn is not None and not conn.closed and not conn.broken:
        return conn
    check_url(url)
    try:
        conn = psycopg.connect(url.strip(), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                               application_name="embodied-ai")
    except psycopg.Error as exc:
        raise connect_error(url, exc) from None
    try:
        encoding = conn.execute("SHOW server_encoding").fetchone()[0]
        if encoding.upper() not in ("UTF8", "UTF-8"):
            conn.close()
            raise RegistryError(f"PostgreSQL registry {shown(url)} has the encoding {encoding}; embodied-ai needs a "
                                f"UTF8 database (createdb -E UTF8 -T template0 NAME)")
        conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT_S}s'")
        from embodied_tui.data.pg import schema

        schema.migrate(conn, url)
        conn.execute(f"SET search_path TO {schema.SCHEMA}")
    except psycopg.Error as exc:
        conn.close()
        raise server_error(url, exc) from None
    except BaseException:
        conn.close()
        raise
    with _conns_lock:
        _conns[key] = conn
        stale = _dead_threads_connections()
    for old in stale:
        try:
            old.close()
        except Exception:  # noqa: BLE001 - closing a connection nobody uses any more
            pass
    return conn


def _dead_threads_connections() -> list:
    """Take this process's connections of threads that have ended out of the pool (the app runs work in short-lived
    threads: without this each would leave a server connection open until the app quits). Holds ``_conns_lock``."""
    pid, alive = os.getpid(), {t.ident for t in threading.enumerate()}
    dead = [k for k in _conns if k[1] == pid and k[2] not in alive]
    return [_conns.pop(k) for k in dead]


def forget(url: str) -> None:
    """Close this process's connections to ``url`` (tests, and a server that went away)."""
    pid = os.getpid()
    with _conns_lock:
        keys = [k for k in _conns if k[0] == url and k[1] == pid]
        conns = [_conns.pop(k) for k in keys]
    for conn in conns:
        try:
            conn.close()
        except Exception:
            pass


def read(url: str, sql: str, params: Any = None) -> list[tuple]:
    """Every row of one statement (autocommit: its own snapshot)."""
    import psycopg

    conn = connection(url)
    try:
        return conn.execute(sql, params).fetchall()
    except psycopg.Error as exc:
        raise server_error(url, exc) from None


def transaction(url: str, work: Callable[[Any], T]) -> T:
    """Run ``work(cursor)`` in one transaction and commit it; run it again from the start when a concurrent writer
    made it fail (see the module docstring). A UserError raised by ``work`` rolls back and goes through."""
    import psycopg
    import psycopg.errors as e

    retry = (e.SerializationFailure, e.DeadlockDetected, e.UniqueViolation, e.ForeignKeyViolation)
    for attempt in range(RETRIES):
        conn = connection(url)
        try:
            with conn.transaction(), conn.cursor() as cur:
                return work(cur)
        except retry as exc:
            if attempt == RETRIES - 1:
                raise server_error(url, exc) from None
            time.sleep(random.uniform(0.001, 0.02) * (attempt + 1))
        except psycopg.Error as exc:
            raise server_error(url, exc) from None
    raise AssertionError("unreachable")  # pragma: no cover
