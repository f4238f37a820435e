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

**Layout.** The two 64-hex digests are stored once each: ``keys`` maps a model key to a small integer (``key_id``,
never reused: a key stays, a few dozen bytes, after its rows are pruned) and ``versions`` a (device id, device
version) to one (``version_id``). ``edges`` holds ``version_id``, ``key_id`` and the ``ROW_KEYS`` columns, with a
unique index on (``version_id``, ``key_id``, ``power_mode``, ``precision``): that index is also the record of what
is stored (``done`` and ``complete`` read it, not the rows, and the keys they name), so a new model's rows are
appended at the end of the index rather than inserted at a random 64-hex place of it and of a second table of marks.
Every digest lookup happens in the same statement or transaction as the rows it names, so two processes sharing a
store never mix ids.

**Cost** (2 shared cores; wall-clock on a busy machine, so read the ratios). The store alone
(``benchmarks/fit_store_speed.py``: 10,000 models x 69 targets, 690,000 rows put 1,024 models per device per
transaction as ``services.graph`` does): 14.0 s and a 448 MB file with the previous layout (format 3: 64-hex digests
in every row and a second ``done`` table, each written at random places of its index) -> 4.0 s and 117 MB with this
one; ``complete`` 0.33 -> 0.21 s; ``done`` (0.9 s) and streaming every row (3.2 -> 2.8 s) about as before; a larger
page cache does not help. A first question at 10,000 models (``benchmarks/ask_speed.py --scale 10000 --questions
3,4``, app path / CLI): "how many models run under 1 ms on the orin nano?" (7,144 rows) 13.1 / 13.8 s -> 6.4 / 6.7 s,
asked again 1.6 / 3.1 s -> 1.1 / 2.4 s; with ``--distinct`` (every copy its own fit) 53.9 / 55.2 s -> 41.8 / 42.0 s.
Peak RSS is unchanged (app 300-390 MB, CLI 190-290 MB: the registry and the graph, not the store).

**Granularity.** A question computes only the (model, device, mode, precision) targets it can match
(``services.fit.fit_record(hw=, mode=, precision=)``: about 0.1 ms a row once a model's work is shared by its targets
(``FitContext.work``); measured 3,600 -> 9,100 rows/s on 300 models x 6 Jetsons, 2 shared cores); each ``put`` is
one transaction. Rows of device versions no longer current stay until ``prune`` removes them (when something is
computed).

A store that cannot be opened or written is replaced by an in-memory one, and a store written by another layout
(``STORE_FORMAT``, the columns) is emptied and rebuilt on open, never misread: the cache only saves time.

**Public API** (what ``services.graph`` calls; another backend, a team registry's, offers the same):
``FitStore(path)``, ``close()``; ``complete(device, version, targets)`` -> the model keys stored for every (mode,
precision) of ``targets``; ``mark(device, version, digest)`` and ``marked(...)``: a set of model keys x targets the
caller names by a digest is all stored (a repeated question skips ``complete``); ``done(device, version)`` -> every
stored (model key, mode, precision); ``put(device, version, [(model key, FitEdge)])`` -> whether it was written;
``rows(device, version, keys=, targets=, where=, skip=)`` -> (model key, FitEdge) streamed, ``where`` being (column,
op, value) with op in ``<, <=, >, >=, =, IN`` on ``ROW_KEYS`` columns, read as Cypher reads them (a comparison with
null is false); ``prune(versions)``; ``summary(key)`` and ``put_summary(key, body)`` (the registry's summary for
questions, ``services.summary``: TinyDB registries only); ``layer_columns(version, digests)`` and
``put_layer_columns(version, rows)`` (each details file's per-layer columns, ``services.layer_store``: this store
only; another backend may lack them, and fits then parse the details).
Nothing else of SQLite leaves this module.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Container, Iterable, Iterator, Sequence

from embodied_tui.ask.graph import BOOL_COLUMNS, ROW_KEYS, FitEdge

STORE_FORMAT = "4"  # 4: integer ids for model keys and device versions, no done table; 3: 64-hex keys in every row
_FORMAT = STORE_FORMAT + ":" + ", ".join(ROW_KEYS)
_COLUMNS = ", ".join(ROW_KEYS)
_BOOLS = [i for i, key in enumerate(ROW_KEYS) if key in BOOL_COLUMNS]
# every table a layout of this store has had (but meta)
_TABLES = ("edges", "done", "keys", "versions", "layers", "complete_sets")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS keys (key_id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE)",
    "CREATE TABLE IF NOT EXISTS versions (version_id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, "
    "version TEXT NOT NULL, UNIQUE (device, version))",
    f"CREATE TABLE IF NOT EXISTS edges (version_id INTEGER NOT NULL, key_id INTEGER NOT NULL, {_COLUMNS})",
    "CREATE UNIQUE INDEX IF NOT EXISTS edges_key ON edges (version_id, key_id, power_mode, precision)",
)
# the fastest/slowest first rows and latency ranges are read from this index, not sorted: 'the 3 slowest on the orin
# nano' at 10,000 models spent 0.48 s sorting 200,000 rows, 0.01-0.07 s with it (it costs ~10% more to write). With
# the model key last it also covers a count's grouping by model ('how many models run under 1 ms on the orin nano':
# 0.15 -> 0.05 s over 470,000 rows, the rows no longer read to find their keys). Added to format 4 stores in place
# on open, replacing the index without the key (a no-op once there; 0.7 s for 470,000 rows the first time)
_ADDED = ("CREATE INDEX IF NOT EXISTS edges_latency_key ON edges (version_id, predicted_latency_ms, key_id)",
          "DROP INDEX IF EXISTS edges_latency",
          # the registry's summary for questions (``services.summary``): one row, the latest registry file's
          "CREATE TABLE IF NOT EXISTS summary (key TEXT PRIMARY KEY, body TEXT NOT NULL)",
          # each details file's per-layer columns (``services.layer_store``), by its content digest
          "CREATE TABLE IF NOT EXISTS layers (digest TEXT PRIMARY KEY, version TEXT NOT NULL, size INTEGER NOT NULL, "
          "body BLOB NOT NULL)",
          # a set of (model keys x targets) whose rows are all stored at a device version (``marked``/``mark``),
          # with how many rows that version held then
          "CREATE TABLE IF NOT EXISTS complete_sets (version_id INTEGER NOT NULL, digest TEXT NOT NULL, "
          "rows INTEGER NOT NULL, PRIMARY KEY (version_id, digest))")
_VERSION = "(SELECT version_id FROM versions WHERE device = ? AND version = ?)"  # one statement: one snapshot
_OPS = ("<", "<=", ">", ">=", "=", "IN")


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
                db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
                if _format(db) != _FORMAT:
                    db.execute("BEGIN IMMEDIATE")  # one process rebuilds; another waits, then finds it done
                    if _format(db) != _FORMAT:
                        for table in _TABLES:
                            db.execute(f"DROP TABLE IF EXISTS {table}")
                        for statement in _SCHEMA:
                            db.execute(statement)
                        db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (_FORMAT,))
                    db.commit()
                for statement in _ADDED:
                    try:
                        db.execute(statement)
                    except sqlite3.Error:  # a store this process may only read: read it without
                        pass
                return db
            except sqlite3.Error:
                continue
        raise RuntimeError("sqlite3 cannot open an in-memory database")  # pragma: no cover

    def close(self) -> None:
        self.db.close()

    def done(self, device: str, version: str) -> set[tuple[str, str, str]]:
        """The (model key, mode, precision) whose row on ``device`` at ``version`` is stored."""
        try:
            cursor = self.db.execute("SELECT k.key, e.power_mode, e.precision FROM edges e JOIN keys k USING (key_id) "
                                     f"WHERE e.version_id = {_VERSION}", (device, version))
            return set(cursor)
        except sqlite3.Error:
            return set()

    def complete(self, device: str, version: str, targets: list[tuple[str, str]]) -> set[str]:
        """The model keys whose rows on ``device`` at ``version`` are stored for every (mode, precision) of
        ``targets``: counted by SQLite on the edges' index, so a question over 10,000 models x 47 targets reads
        10,000 keys, not 470,000 marks (``done`` then tells, for the others only, which targets are missing)."""
        if not targets:
            return set()
        sql = (f"SELECT k.key FROM (SELECT key_id FROM edges WHERE version_id = {_VERSION} AND (power_mode, precision) "
               "IN (VALUES " + ", ".join("(?, ?)" for _ in targets) + ") GROUP BY key_id HAVING COUNT(*) = ?) "
               "JOIN keys k USING (key_id)")
        try:
            cursor = self.db.execute(sql, [device, version, *(v for pair in targets for v in pair),
                                           len(set(targets))])
            return {key for (key,) in cursor}
        except sqlite3.Error:
            return set()

    def marked(self, device: str, version: str, digest: str) -> bool:
        """Whether ``mark(device, version, digest)`` was called and the version still holds as many rows as it did
        then: every row of that set is stored (a count on the index, where ``complete`` groups the rows of every
        model key). Rows deleted since by another hand (an older embodied-ai pruning this version as stale, an edit)
        undo the mark."""
        try:
            found = self.db.execute(
                f"SELECT c.rows, (SELECT COUNT(*) FROM edges e WHERE e.version_id = c.version_id) FROM complete_sets c "
                f"WHERE c.version_id = {_VERSION} AND c.digest = ?", (device, version, digest)).fetchone()
        except sqlite3.Error:
            return False
        return found is not None and found[1] >= found[0]

    def mark(self, device: str, version: str, digest: str) -> None:
        """Note that every row of the set ``digest`` names (the caller's digest of its model keys and targets) is
        stored on ``device`` at ``version``, with the version's row count now. Its rows go with their version
        (``prune``), and the mark with them."""
        try:
            with self.db:
                self.db.execute("INSERT OR IGNORE INTO versions (device, version) VALUES (?, ?)", (device, version))
                self.db.execute("INSERT OR REPLACE INTO complete_sets SELECT v.version_id, ?, (SELECT COUNT(*) FROM "
                                "edges e WHERE e.version_id = v.version_id) FROM versions v WHERE v.device = ? AND "
                                "v.version = ?", (digest, device, version))
        except sqlite3.Error:
            pass

    def put(self, device: str, version: str, computed: Iterable[tuple[str, FitEdge]]) -> bool:
        """Store each (model key, row) on ``device`` at ``version``, in one transaction; a target already stored (by
        another process meanwhile) is left as it is: no row is stored twice. False when the store could not be
        written (the rows are then computed again when next asked for)."""
        computed = list(computed)
        if not computed:
            return True
        marks = ", ".join("?" * (len(ROW_KEYS) + 2))
        try:
            with self.db:
                db = self.db
                db.execute("INSERT OR IGNORE INTO versions (device, version) VALUES (?, ?)", (device, version))
                (version_id,) = db.execute(_VERSION[1:-1], (device, version)).fetchone()
                wanted = list(dict.fromkeys(key for key, _ in computed))
                db.executemany("INSERT OR IGNORE INTO keys (key) VALUES (?)", [(key,) for key in wanted])
                ids: dict[str, int] = {}
                for start in range(0, len(wanted), 500):  # under SQLite's limit on bound values
                    chunk = wanted[start:start + 500]
                    ids.update((key, i) for i, key in db.execute(
                        f"SELECT key_id, key FROM keys WHERE key IN ({', '.join('?' * len(chunk))})", chunk))
                db.executemany(f"INSERT OR IGNORE INTO edges VALUES ({marks})",
                               [(version_id, ids[key], *row) for key, row in computed])
        except sqlite3.Error:
            return False
        return True

    def rows(self, device: str, version: str, keys: dict[str, object] | None = None,
             targets: list[tuple[str, str]] | None = None,
             where: Iterable[tuple[str, str, object]] = (), skip: Container[str] = (),
             order: Sequence[tuple[str, bool]] = (), one_per_key: bool = False) -> Iterator[tuple[str, FitEdge]]:
        """(model key, row) of the stored rows on ``device`` at ``version``, streamed: of the model keys in ``keys``,
        the (mode, precision) in ``targets`` and meeting each (column, op, value) of ``where`` only, when given. A key
        in ``skip`` (read as the rows stream: it may grow meanwhile) is passed over before its row is made.
        ``order``: (column, descending) pairs: rows with a value in each, sorted by them (by SQLite, so a top-k
        question reads its first rows and stops). ``one_per_key``: one row of each model key (any one: for a count of
        models whose conditions are all in ``where``)."""
        columns = ", ".join("e." + key for key in ROW_KEYS)
        tests = [f"e.version_id = {_VERSION}"]
        args: list = [device, version]
        if targets is not None:
            tests.append("(e.power_mode, e.precision) IN (VALUES " + ", ".join("(?, ?)" for _ in targets) + ")")
            args += [v for pair in targets for v in pair]
        for column, op, value in where:
            if column not in ROW_KEYS or op not in _OPS:
                continue
            if op == "IN":
                tests.append(f"e.{column} IN ({', '.join('?' for _ in value)})")
                args += list(value)
            else:
                tests.append(f"e.{column} {op} ?")
                args.append(value)
        order = [(column, desc) for column, desc in order if column in ROW_KEYS]
        tests += [f"e.{column} IS NOT NULL" for column, _ in order]
        kept = " AND ".join(tests)
        sql = f"SELECT k.key, {columns} FROM edges e JOIN keys k USING (key_id) WHERE "
        if one_per_key:  # the first row of each key, grouped on (rowid, key) alone: a GROUP BY of whole rows
            # sorted every column of ~57,000 rows per device at 10,000 models (0.35 s; this way 0.08 s)
            sql += f"e.rowid IN (SELECT MIN(e.rowid) FROM edges e WHERE {kept} GROUP BY e.key_id)"
        else:
            sql += kept
            if order:
                sql += " ORDER BY " + ", ".join(f"e.{column}{' DESC' if desc else ''}" for column, desc in order)
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

    def summary(self, key: str) -> str | None:
        """The registry summary stored under ``key`` (``services.summary``), or None."""
        try:
            found = self.db.execute("SELECT body FROM summary WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error:
            return None
        return found[0] if found else None

    def put_summary(self, key: str, body: str) -> None:
        """Keep ``body`` as the one registry summary, under ``key``."""
        try:
            with self.db:
                self.db.execute("DELETE FROM summary")
                self.db.execute("INSERT INTO summary VALUES (?, ?)", (key, body))
        except sqlite3.Error:
            pass

    def layer_columns(self, version: str, digests: list[str]) -> dict[str, tuple[int, bytes]]:
        """(details file size, column bytes) stored at ``version`` for each of ``digests`` (details content digests,
        ``services.layer_store``) that has them: one query, whatever the number of digests."""
        try:
            cursor = self.db.execute("SELECT digest, size, body FROM layers WHERE version = ? AND digest IN "
                                     "(SELECT value FROM json_each(?))", (version, json.dumps(list(digests))))
            return {digest: (size, body) for digest, size, body in cursor}
        except sqlite3.Error:
            return {}

    def put_layer_columns(self, version: str, rows: Iterable[tuple[str, int, bytes]]) -> None:
        """Store (digest, details file size, column bytes) rows at ``version``, replacing what a digest had."""
        rows = list(rows)
        if not rows:
            return
        try:
            with self.db:
                self.db.executemany("INSERT OR REPLACE INTO layers VALUES (?, ?, ?, ?)",
                                    [(digest, version, size, body) for digest, size, body in rows])
        except sqlite3.Error:
            pass

    def prune(self, versions: dict[str, str]) -> None:
        """Forget the rows of every device whose version is not ``versions[device]`` (and of devices not listed)."""
        try:
            with self.db:
                stale = [(i,) for i, device, version in self.db.execute("SELECT version_id, device, version FROM versions")
                         if versions.get(device) != version]
                self.db.executemany("DELETE FROM edges WHERE version_id = ?", stale)
                self.db.executemany("DELETE FROM complete_sets WHERE version_id = ?", stale)
                self.db.executemany("DELETE FROM versions WHERE version_id = ?", stale)
        except sqlite3.Error:
            pass

def _format(db: sqlite3.Connection) -> str | None:
    found = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
    return found[0] if found else None
