"""The persistent fit-edge cache: what the registry graph reads of each fit row (``ask.graph.FitEdge``), in an SQLite
file beside the registry (``<registry>.edges.sqlite``).

**Key.** A row is stored under (model key, device id, device version, power mode, precision): one row each. The *model key* is the sha256 of the model's record (its file's sha256, name, version, shapes and counts:
everything a fit reads of it). The *device version* is the sha256 of what a fit on that device depends on besides
the model: the code that computes rows (size and mtime of the analysis, data, perf and services modules), the columns
stored, the device's catalog entry (modes, peaks, calibrations), the stored measurements on that device and the
records of the models they were taken on (a measurement fitted on one model moves the efficiency of every model on
that device, and nothing else: ``services.fit.FitContext._efficiency`` reads only the device's own measurements).
So adding a model computes only its rows, adding a measurement on one device recomputes only that device's rows, and
a changed catalog or code recomputes what it touches when it is next asked about.

**Granularity.** A question computes only the (model, device, mode, precision) targets it can match
(``services.fit.fit_record(hw=, mode=, precision=)``: about 0.1 ms a row once a model's work is shared by its targets
(``FitContext.work``); measured 3,600 -> 9,100 rows/s on 300 models x 6 Jetsons, 2 shared cores) and marks each done in the ``done`` table. Rows of
device versions no longer current stay until ``prune`` removes them (when something is computed).

A store that cannot be opened or written is replaced by an in-memory one: the cache only saves time.

**Public API** (what ``services.graph`` calls; another backend, a team registry's, offers the same):
``FitStore(path)``, ``close()``; ``complete(device, version, targets)`` -> the model keys stored for every (mode,
precision) of ``targets``; ``done(device, version)`` -> every stored (model key, mode, precision); ``put(device,
version, [(model key, FitEdge)])``; ``rows(device, version, keys=, targets=, where=, skip=)`` -> (model key,
FitEdge) streamed, ``where`` being (column, op, value) with op in ``<, <=, >, >=, =, IN`` on ``ROW_KEYS`` columns,
read as Cypher reads them (a comparison with null is false); ``prune(versions)``. Nothing else of SQLite leaves
this module.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Container, Iterable, Iterator

from embodied_tui.ask.graph import ROW_KEYS, FitEdge

STORE_FORMAT = "3"
_COLUMNS = ", ".join(ROW_KEYS)
_BOOLS = [i for i, key in enumerate(ROW_KEYS) if "bool" in str(FitEdge.__annotations__[key])]
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)",
    "CREATE TABLE IF NOT EXISTS done (model_key TEXT, device TEXT, version TEXT, mode TEXT, precision TEXT, "
    "PRIMARY KEY (device, version, model_key, mode, precision)) WITHOUT ROWID",
    f"CREATE TABLE IF NOT EXISTS edges (model_key TEXT, device TEXT, version TEXT, {_COLUMNS})",
    "CREATE UNIQUE INDEX IF NOT EXISTS edges_key ON edges (device, version, model_key, power_mode, precision)",
)


class FitStore:
    """The fit-edge cache of one registry (see the module docstring)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.db = self._open(path)

    @staticmethod
    def _open(path: Path | None) -> sqlite3.Connection:
        for target in ([str(path)] if path is not None else []) + [":memory:"]:
            try:
                db = sqlite3.connect(target, timeout=30, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL" if target != ":memory:" else "PRAGMA journal_mode=MEMORY")
                db.execute("PRAGMA synchronous=NORMAL")
                for statement in _SCHEMA:
                    db.execute(statement)
                found = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
                if found is None or found[0] != STORE_FORMAT + ":" + _COLUMNS:
                    db.execute("DELETE FROM edges")
                    db.execute("DELETE FROM done")
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (STORE_FORMAT + ":" + _COLUMNS,))
                db.commit()
                return db
            except sqlite3.Error:
                continue
        raise RuntimeError("sqlite3 cannot open an in-memory database")  # pragma: no cover

    def close(self) -> None:
        self.db.close()

    def done(self, device: str, version: str) -> set[tuple[str, str, str]]:
        """The (model key, mode, precision) whose row on ``device`` at ``version`` is stored."""
        try:
            cursor = self.db.execute("SELECT model_key, mode, precision FROM done WHERE device = ? AND version = ?",
                                     (device, version))
            return set(cursor)
        except sqlite3.Error:
            return set()

    def complete(self, device: str, version: str, targets: list[tuple[str, str]]) -> set[str]:
        """The model keys whose rows on ``device`` at ``version`` are stored for every (mode, precision) of
        ``targets``: counted by SQLite, so a question over 10,000 models x 47 targets reads 10,000 keys, not 470,000
        marks (``done`` then tells, for the others only, which targets are missing)."""
        if not targets:
            return set()
        sql = ("SELECT model_key FROM done WHERE device = ? AND version = ? AND (mode, precision) IN (VALUES "
               + ", ".join("(?, ?)" for _ in targets) + ") GROUP BY model_key HAVING COUNT(*) = ?")
        try:
            cursor = self.db.execute(sql, [device, version, *(v for pair in targets for v in pair),
                                           len(set(targets))])
            return {key for (key,) in cursor}
        except sqlite3.Error:
            return set()

    def put(self, device: str, version: str, computed: Iterable[tuple[str, FitEdge]]) -> None:
        """Store each (model key, row) on ``device`` at ``version`` and mark its target done; a target already stored
        (by another process meanwhile) is left as it is: no row is stored twice."""
        marks = ", ".join("?" * (len(ROW_KEYS) + 3))
        computed = list(computed)
        try:
            with self.db:
                self.db.executemany("INSERT OR IGNORE INTO done VALUES (?, ?, ?, ?, ?)",
                                    [(key, device, version, row.power_mode, row.precision) for key, row in computed])
                self.db.executemany(f"INSERT OR IGNORE INTO edges VALUES ({marks})",
                                    [(key, device, version, *row) for key, row in computed])
        except sqlite3.Error:
            pass

    def rows(self, device: str, version: str, keys: dict[str, object] | None = None,
             targets: list[tuple[str, str]] | None = None,
             where: Iterable[tuple[str, str, object]] = (), skip: Container[str] = ()) \
            -> Iterator[tuple[str, FitEdge]]:
        """(model key, row) of the stored rows on ``device`` at ``version``, streamed: of the model keys in ``keys``,
        the (mode, precision) in ``targets`` and meeting each (column, op, value) of ``where`` only, when given. A key
        in ``skip`` (read as the rows stream: it may grow meanwhile) is passed over before its row is made."""
        sql = f"SELECT model_key, {_COLUMNS} FROM edges WHERE device = ? AND version = ?"
        args: list = [device, version]
        if targets is not None:
            sql += " AND (power_mode, precision) IN (VALUES " + ", ".join("(?, ?)" for _ in targets) + ")"
            args += [v for pair in targets for v in pair]
        for column, op, value in where:
            if column not in ROW_KEYS or op not in ("<", "<=", ">", ">=", "=", "IN"):
                continue
            if op == "IN":
                sql += f" AND {column} IN ({', '.join('?' for _ in value)})"
                args += list(value)
            else:
                sql += f" AND {column} {op} ?"
                args.append(value)
        try:
            cursor = self.db.execute(sql, args)
            for item in cursor:
                key = item[0]
                if (keys is None or key in keys) and key not in skip:
                    row = list(item[1:])
                    for i in _BOOLS:  # SQLite stores a bool as 0/1
                        if row[i] is not None:
                            row[i] = bool(row[i])
                    yield key, FitEdge(*row)
        except sqlite3.Error:
            return

    def prune(self, versions: dict[str, str]) -> None:
        """Forget the rows of every device whose version is not ``versions[device]`` (and of devices not listed)."""
        try:
            with self.db:
                for table in ("edges", "done"):
                    stale = self.db.execute(f"SELECT DISTINCT device, version FROM {table}").fetchall()
                    self.db.executemany(f"DELETE FROM {table} WHERE device = ? AND version = ?",
                                        [(d, v) for d, v in stale if versions.get(d) != v])
        except sqlite3.Error:
            pass
