"""The fit-edge cache on the PostgreSQL registry: the same public API as ``services.fit_store.FitStore`` (``done``,
``complete``, ``put``, ``put_columns``, ``rows``, ``prune``, ``close``), in tables of the registry's database, so one
team computes each fit row once and everyone's ``ask`` reads it.

**Key.** As in ``fit_store``: (model key, device id, device version, power mode, precision), where the model key is the
digest of the model's record (its content hash, name, version and counts) and the device version the digest of what a
fit on that device depends on besides the model (code, catalog entry, calibrations and measurements: the calibration
version is folded into it). One row each; ``put`` never stores a target twice (``ON CONFLICT DO NOTHING``), so
concurrent writers of the same targets are harmless.

**Columns.** ``data/`` may not import the row class (``ask.graph.FitEdge``), so the caller passes it: a NamedTuple
whose annotations give each column's SQL type (``bool`` -> boolean, ``float``/``int`` -> double precision, else text;
double precision keeps an infinite fps). The tables are named for a digest of the columns and their types
(``fit_edges_<digest>``, ``fit_done_<digest>``): a new row layout starts empty tables, as ``fit_store``'s format check
empties its file.

A database error in the cache is not the user's problem: ``done`` then says nothing is done, ``put`` stores nothing
and ``rows`` yields nothing more, as ``fit_store`` does with an SQLite error. The cache only saves time.
"""
from __future__ import annotations

import hashlib
from collections.abc import Container, Iterable, Iterator, Sequence
from typing import Any

from embodied_tui.data.pg.connect import connection

_LOCK = 0x65646765  # advisory lock key for creating the tables ("edge")
_OPS = ("<", "<=", ">", ">=", "=", "IN")


def _sql_type(annotation: Any) -> str:
    text = str(annotation)
    if "bool" in text:
        return "boolean"
    if "float" in text or "int" in text:
        return "double precision"
    return "text"


class PgFitStore:
    """The fit-edge cache of one PostgreSQL registry (see the module docstring)."""

    def __init__(self, url: str, row_type: type) -> None:
        self.url = url
        self.row_type = row_type
        self.columns: tuple[str, ...] = tuple(row_type._fields)
        annotations = getattr(row_type, "__annotations__", {})
        self.types = tuple(_sql_type(annotations.get(c, "")) for c in self.columns)
        digest = hashlib.sha256(repr(list(zip(self.columns, self.types))).encode()).hexdigest()[:12]
        self.edges, self.done_table = f"fit_edges_{digest}", f"fit_done_{digest}"
        self._ok = self._create()

    def _create(self) -> bool:
        try:
            conn = connection(self.url)
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
                conn.execute(f"CREATE TABLE IF NOT EXISTS {self.done_table} (model_key text, device text, "
                             f"version text, mode text, precision text, "
                             f"PRIMARY KEY (device, version, model_key, mode, precision))")
                columns = ", ".join(f'"{c}" {t}' for c, t in zip(self.columns, self.types))
                conn.execute(f"CREATE TABLE IF NOT EXISTS {self.edges} (model_key text NOT NULL, device text NOT NULL, "
                             f"version text NOT NULL, {columns}, "
                             f"PRIMARY KEY (device, version, model_key, power_mode, precision))")
            return True
        except Exception:  # noqa: BLE001 - an unusable cache (no rights, no server) is only slower
            return False

    def close(self) -> None:
        """Nothing to close: the connection is the registry's, kept for the process."""

    def done(self, device: str, version: str) -> set[tuple[str, str, str]]:
        """The (model key, mode, precision) whose row on ``device`` at ``version`` is stored."""
        if not self._ok:
            return set()
        import psycopg

        try:
            rows = connection(self.url).execute(
                f"SELECT model_key, mode, precision FROM {self.done_table} WHERE device = %s AND version = %s",
                (device, version)).fetchall()
            return {tuple(r) for r in rows}
        except psycopg.Error:
            return set()

    def complete(self, device: str, version: str, targets: list[tuple[str, str]]) -> set[str]:
        """The model keys whose rows on ``device`` at ``version`` are stored for every (mode, precision) of
        ``targets``, counted by the server (``done`` then tells, for the others only, which targets are missing)."""
        if not self._ok or not targets:
            return set()
        import psycopg

        pairs = sorted(set(targets))
        sql = (f"SELECT model_key FROM {self.done_table} WHERE device = %s AND version = %s AND (mode, precision) IN ("
               + ", ".join("(%s, %s)" for _ in pairs) + ") GROUP BY model_key HAVING count(*) = %s")
        try:
            rows = connection(self.url).execute(sql, [device, version, *(v for p in pairs for v in p),
                                                      len(pairs)]).fetchall()
            return {key for (key,) in rows}
        except psycopg.Error:
            return set()

    def put(self, device: str, version: str, computed: Iterable[tuple[str, Any]]) -> None:
        """Store each (model key, row) on ``device`` at ``version`` and mark its target done; a target already stored
        (by another process meanwhile) is left as it is."""
        if not self._ok:
            return
        import psycopg

        computed = list(computed)
        mode, precision = self.columns.index("power_mode"), self.columns.index("precision")  # rows may be plain tuples
        quoted = ", ".join(f'"{c}"' for c in self.columns)
        marks = ", ".join(["%s"] * (len(self.columns) + 3))
        try:
            conn = connection(self.url)
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {self.done_table} VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                                [(key, device, version, row[mode], row[precision]) for key, row in computed])
                cur.executemany(f"INSERT INTO {self.edges} (model_key, device, version, {quoted}) VALUES ({marks}) "
                                f"ON CONFLICT DO NOTHING", [(key, device, version, *row) for key, row in computed])
        except psycopg.Error:
            pass

    def put_columns(self, device: str, version: str, keys: Sequence[str], columns: Sequence[Sequence]) -> None:
        """``put`` of rows given column by column (``self.columns`` order), one model key per row."""
        self.put(device, version, zip(keys, zip(*columns)))

    def rows(self, device: str, version: str, keys: dict[str, object] | None = None,
             targets: list[tuple[str, str]] | None = None,
             where: Iterable[tuple[str, str, object]] = (), skip: Container[str] = (),
             order: Sequence[tuple[str, bool]] = (), one_per_key: bool = False) -> Iterator[tuple[str, Any]]:
        """(model key, row) of the stored rows on ``device`` at ``version``, streamed: of the model keys in ``keys``,
        the (mode, precision) in ``targets`` and meeting each (column, op, value) of ``where`` only, when given. A key
        in ``skip`` (read as the rows stream: it may grow meanwhile) is passed over before its row is made.
        ``order``: (column, descending) pairs: rows with a value in each, sorted by them (by the server).
        ``one_per_key``: one row of each model key (any one: for a count of models whose conditions are all in
        ``where``)."""
        if not self._ok:
            return
        import psycopg

        quoted = ", ".join(f'"{c}"' for c in self.columns)
        sql = (f"SELECT {'DISTINCT ON (model_key) ' if one_per_key else ''}model_key, {quoted} FROM {self.edges} "
               "WHERE device = %s AND version = %s")
        args: list = [device, version]
        if keys is not None:
            sql += " AND model_key = ANY(%s)"
            args.append(list(keys))
        if targets is not None:
            if not targets:
                return
            sql += " AND (power_mode, precision) IN (" + ", ".join("(%s, %s)" for _ in targets) + ")"
            args += [v for pair in targets for v in pair]
        for column, op, value in where:
            if column not in self.columns or op not in _OPS:
                continue
            if op == "IN":
                sql += f' AND "{column}" = ANY(%s)'
                args.append(list(value))
            else:
                sql += f' AND "{column}" {op} %s'
                args.append(value)
        order = [(column, desc) for column, desc in order if column in self.columns]
        for column, _ in order:
            sql += f' AND "{column}" IS NOT NULL'
        if order and not one_per_key:  # texts by code point (COLLATE "C"), as Python sorts them
            collate = {c: ' COLLATE "C"' for c, kind in zip(self.columns, self.types) if kind == "text"}
            sql += " ORDER BY " + ", ".join(f'"{column}"{collate.get(column, "")}{" DESC" if desc else ""}'
                                            for column, desc in order)
        make = self.row_type
        try:
            with connection(self.url).cursor() as cur:
                for key, *row in cur.stream(sql, args):
                    if key not in skip:
                        yield key, make(*row)
        except psycopg.Error:
            return

    def prune(self, versions: dict[str, str]) -> None:
        """Forget the rows of every device whose version is not ``versions[device]`` (and of devices not listed)."""
        if not self._ok:
            return
        import psycopg

        try:
            conn = connection(self.url)
            with conn.transaction():
                for table in (self.edges, self.done_table):
                    stale = conn.execute(f"SELECT DISTINCT device, version FROM {table}").fetchall()
                    gone = [(d, v) for d, v in stale if versions.get(d) != v]
                    if gone:
                        conn.cursor().executemany(f"DELETE FROM {table} WHERE device = %s AND version = %s", gone)
        except psycopg.Error:
            pass
