"""The generic side tables on PostgreSQL (hardware, measurements, pipelines, settings ...): rows of ``docs``.

They behave as the TinyDB file's tables do (``store.Registry.table_*``): document ids start at 1 and a new one is the
largest id + 1; documents come back in insertion order, and a replaced document (``table_upsert``) keeps its id and
moves to the end, as TinyDB's remove-then-insert does; every document comes back as a copy.

Every write to a table holds a transaction-scoped advisory lock on that table (``pg_advisory_xact_lock(key, hash of
the name)``), so a read-modify-write (``PgTable`` inside ``table_transaction``: the next version number of a pipeline)
sees every write committed before it and no concurrent writer of the same table can slip in between: none loses a
version or takes the same number.
"""
from __future__ import annotations

import json
from typing import Any

from tinydb.table import Document

_LOCK = 0x646F6373  # first key of the per-table advisory lock ("docs")


def lock(cur: Any, name: str) -> None:
    cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK, name))


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def items(cur_or_conn: Any, name: str) -> list[tuple[int, dict[str, Any]]]:
    rows = cur_or_conn.execute("SELECT id, doc::text FROM docs WHERE tbl = %s ORDER BY seq", (name,)).fetchall()
    return [(doc_id, json.loads(text)) for doc_id, text in rows]


def next_id(cur: Any, name: str) -> int:
    return cur.execute("SELECT coalesce(max(id), 0) + 1 FROM docs WHERE tbl = %s", (name,)).fetchone()[0]


def insert(cur: Any, name: str, doc: dict[str, Any], doc_id: int | None = None) -> int:
    """Insert ``doc`` (plain JSON) under ``doc_id`` or the next id; the caller holds the table's lock."""
    doc_id = doc_id if doc_id is not None else next_id(cur, name)
    cur.execute("INSERT INTO docs (tbl, id, doc) VALUES (%s, %s, %s::json)", (name, doc_id, dumps(doc)))
    return doc_id


def remove(cur: Any, name: str, doc_ids: list[int]) -> None:
    cur.execute("DELETE FROM docs WHERE tbl = %s AND id = ANY(%s)", (name, list(doc_ids)))


class PgTable:
    """What ``table_transaction`` yields: the subset of a TinyDB ``Table`` the services use (``all``, ``insert``,
    ``insert_multiple``, ``remove(doc_ids=)``, ``update(fields, doc_ids=)``, ``get(doc_id=)``, ``len``), working
    inside the open transaction that holds the table's lock."""

    def __init__(self, cur: Any, name: str, plain: Any):
        self._cur, self.name, self._plain = cur, name, plain

    def all(self) -> list[Document]:
        return [Document(doc, doc_id=doc_id) for doc_id, doc in items(self._cur, self.name)]

    def __iter__(self):
        return iter(self.all())

    def __len__(self) -> int:
        return self._cur.execute("SELECT count(*) FROM docs WHERE tbl = %s", (self.name,)).fetchone()[0]

    def get(self, doc_id: int) -> Document | None:
        row = self._cur.execute("SELECT doc::text FROM docs WHERE tbl = %s AND id = %s",
                                (self.name, doc_id)).fetchone()
        return None if row is None else Document(json.loads(row[0]), doc_id=doc_id)

    def insert(self, doc: dict[str, Any]) -> int:
        doc_id = doc.doc_id if isinstance(doc, Document) else None
        return insert(self._cur, self.name, self._plain(dict(doc)), doc_id)

    def insert_multiple(self, docs: list[dict[str, Any]]) -> list[int]:
        return [self.insert(doc) for doc in docs]

    def remove(self, *, doc_ids: list[int]) -> list[int]:
        remove(self._cur, self.name, list(doc_ids))
        return list(doc_ids)

    def update(self, fields: dict[str, Any], *, doc_ids: list[int]) -> list[int]:
        for doc_id in doc_ids:
            found = self.get(doc_id)
            if found is not None:
                found.update(fields)
                self._cur.execute("UPDATE docs SET doc = %s::json WHERE tbl = %s AND id = %s",
                                  (dumps(self._plain(dict(found))), self.name, doc_id))
        return list(doc_ids)
