"""``PgRegistry``: the model registry on a PostgreSQL database, with the interface and the behaviour of the TinyDB
``store.Registry`` (same statuses, version numbers, errors and ordering), for a team sharing one server.

Tables: see ``schema``. Concurrency: a write is one transaction (``connect.transaction``). Writers of a model name
first lock that name's row in ``model_names`` (``SELECT ... FOR UPDATE``, made on first use), then read its versions:
two machines registering the same name at once get versions n+1 and n+2, in either order, never the same number (the
unique constraints would refuse it, and the transaction would run again) and never a lost record. A writer killed
mid-transaction leaves nothing: PostgreSQL rolls its transaction back when the connection drops.

Reading: the whole ``models`` table is read in one statement when something lists it, and kept per process until
``change_marker`` (a counter every write transaction bumps) moves. A row's ``record`` text whose SHA-256 is its
``seal`` was written by embodied-ai from a validated record, and is built without validation (``fast_records``, as the
TinyDB backend's sealed file); a row edited by hand is validated in full, and an invalid one is one error line naming
it. One version (``get``, ``versions``, ``details``) is read by name from the primary key without listing the rest.

``path`` is the URL without its password (a ``ServerPath``: prints as the URL, ``.parent`` is this user's local data
folder, for files the tool keeps beside a registry, such as demo models); ``location`` is the same text.
"""
from __future__ import annotations

import gc
import hashlib
import json
import shlex
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from embodied_tui.data import fast_records
from embodied_tui.data.lookup import RecordLookup, edited_record, next_version
from embodied_tui.data.names import check_description, check_name, check_tags
from embodied_tui.data.pg import tables
from embodied_tui.data.pg.connect import check_url, connection, read, server_error, shown, transaction
from embodied_tui.data.records import MAX_VERSION, Analysis, ModelDetails, ModelRecord, read_as
from embodied_tui.data.store import Registry, _first_error, identity_for, identity_of
from embodied_tui.errors import NotFound, RegistryError
from embodied_tui.hashing import sha256_file

_COLUMNS = ("name", "version", "identity", "details", "sha256", "format", "family", "type", "task", "dtype",
            "params", "macs", "flops", "other_flops", "weight_bytes", "activation_bytes", "size_bytes",
            "registered_at", "description", "tags", "name_lc", "family_lc", "type_lc", "task_lc", "format_lc",
            "dtype_lc", "tags_lc", "tag_values_lc", "record", "seal")
_INSERT = (f"INSERT INTO models ({', '.join(_COLUMNS)}) VALUES ("
           + ", ".join("%s::json" if c == "record" else "%s" for c in _COLUMNS) + ")")
_SELECT = "SELECT name, version, identity, details, record::text, seal FROM models"

_DETAILS = ("INSERT INTO details (sha256, body) VALUES (%s, %s::json) ON CONFLICT (sha256) DO UPDATE "
            "SET body = EXCLUDED.body WHERE details.body::text <> EXCLUDED.body::text")
_ORDER = 'm.name COLLATE "C", m.version'  # Python's order of (name, version): code points, then the number
_FREEZE_ROWS = 1_500  # store._FREEZE_BYTES in records: below this, collections are cheap
_cache: dict[str, tuple[int, list[tuple[ModelRecord, str, str | None]]]] = {}  # url -> (marker, docs)
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every listing this process keeps (benchmarks timing a cold read; the next read fetches the table)."""
    with _cache_lock:
        _cache.clear()


class ServerPath(str):
    """Where a PostgreSQL registry is, for messages: its URL without the password. ``parent`` is this user's local
    data folder (files a registry keeps beside itself on disk go there); ``with_name`` a file in it, named for this
    database (a local fit-edge cache until the shared one is wired in)."""

    @property
    def parent(self) -> Path:
        import platformdirs

        return Path(platformdirs.user_data_dir("embodied-ai"))

    @property
    def name(self) -> str:
        return self.rsplit("/", 1)[-1].split("?", 1)[0]

    def with_name(self, name: str) -> Path:
        return self.parent / "postgresql" / f"{hashlib.sha256(self.encode()).hexdigest()[:16]}-{name}"


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _row(record_json: dict[str, Any], record: ModelRecord, identity: str, digest: str | None) -> tuple:
    """The column values of one version: the record text (``record_json`` as stored, keys of a newer embodied-ai
    included) and what filters read, copied out of the validated ``record``."""
    from psycopg.types.json import Jsonb

    text = dumps(record_json)
    arch = record.architecture
    lowered = [None if v is None else str(v).lower()
               for v in (record.name, arch.family, arch.type, arch.task, record.format, record.dtype)]
    tags_lc = [(k if not v else f"{k}={v}").lower() for k, v in record.tags.items()]
    return (record.name, record.version, identity, digest, record.sha256, record.format, arch.family, arch.type,
            arch.task, record.dtype, record.params, record.macs, record.flops, record.other_flops,
            record.weight_bytes, record.activation_bytes, record.size_bytes, record.registered_at,
            record.description, Jsonb(record.tags), *lowered, tags_lc,
            Jsonb({k: v.lower() for k, v in record.tags.items()}), text,
            hashlib.sha256(text.encode()).hexdigest())


def _lock_names(cur: Any, names: list[str], *, create: bool) -> set[str]:
    """Lock the rows of ``names`` in ``model_names`` (made first when ``create``), in one order; the names found."""
    names = sorted(set(names))
    if create:
        cur.executemany("INSERT INTO model_names (name) VALUES (%s) ON CONFLICT (name) DO NOTHING",
                        [(n,) for n in names])
    rows = cur.execute("SELECT name FROM model_names WHERE name = ANY(%s) ORDER BY name FOR UPDATE",
                       (names,)).fetchall()
    return {r[0] for r in rows}


def _set_latest(cur: Any, names: list[str]) -> None:
    cur.execute("UPDATE model_names n SET latest = coalesce((SELECT max(version) FROM models m WHERE m.name = n.name),"
                " 0) WHERE n.name = ANY(%s)", (sorted(set(names)),))


class PgRegistry(RecordLookup):
    """The model registry in a PostgreSQL database (see the module docstring). Cheap to create: it connects on first
    use, once per process and thread."""

    def __init__(self, url: str):
        self.url = url.strip()
        check_url(self.url)
        self.path = ServerPath(shown(self.url))  # ``location`` (RecordLookup): this, the URL without its password

    def __repr__(self) -> str:
        return f"PgRegistry({self.location!r})"

    plain = staticmethod(Registry.plain)
    _check_table = staticmethod(Registry._check_table)

    # ---------------------------------------------------------------------------------------- reading
    def change_marker(self) -> int:
        """A number that changes whenever a write to this registry commits (one indexed row read)."""
        return read(self.url, "SELECT n FROM change_counter WHERE id = 1")[0][0]

    def _problem(self, name: str, version: int, why: str) -> RegistryError:
        return RegistryError(f"PostgreSQL registry {self.location}: the stored record of {name} v{version} is invalid "
                             f"at {why}; fix or delete that row (nothing was changed)")

    def _build(self, rows: list[tuple]) -> list[tuple[ModelRecord, str, str | None]]:
        """(record, identity, details digest) of rows (name, version, identity, details, record text, seal)."""
        sealed = [r for r in rows if hashlib.sha256(r[4].encode()).hexdigest() == r[5]]
        freeze = len(rows) >= _FREEZE_ROWS  # as store._parse: a large listing's objects are frozen once built
        if freeze and gc.get_freeze_count():
            gc.unfreeze()
            gc.collect()
        enabled = gc.isenabled()
        gc.disable()
        try:
            records: list[ModelRecord] = []
            if sealed:
                dicts = json.loads("[" + ",".join(r[4] for r in sealed) + "]")
                try:
                    records = fast_records.build_many(ModelRecord, dicts)
                except (ValidationError, KeyError, TypeError, AttributeError):
                    records = []  # not this version's layout after all: validated one by one below
            built = {id(row): rec for row, rec in zip(sealed, records)}
            out = []
            for row in rows:
                rec = built.get(id(row))
                if rec is None:
                    try:
                        rec = read_as(ModelRecord, json.loads(row[4]))
                    except ValidationError as exc:
                        raise self._problem(row[0], row[1], _first_error(exc)) from None
                    except ValueError as exc:
                        raise self._problem(row[0], row[1], f"its JSON ({exc})") from None
                out.append((rec, row[2], row[3]))
            if freeze:
                gc.freeze()
            return out
        finally:
            if enabled:
                gc.enable()

    def _docs(self) -> list[tuple[ModelRecord, str, str | None]]:
        """Every version as (record, identity, details digest), by name then version; kept until the marker moves."""
        marker = self.change_marker()
        with _cache_lock:
            hit = _cache.get(self.url)
        if hit is not None and hit[0] == marker:
            return hit[1]
        rows = read(self.url, "SELECT m.name, m.version, m.identity, m.details, m.record::text, m.seal, c.n "
                              f"FROM models m, change_counter c WHERE c.id = 1 ORDER BY {_ORDER}")
        marker_now = rows[0][6] if rows else marker  # the counter read in the same snapshot as the rows
        docs = self._build(rows)
        with _cache_lock:
            _cache[self.url] = (marker_now, docs)
        return docs

    def list_models(self, latest_only: bool = True, filter: str | None = None) -> list[ModelRecord]:
        """Every model (latest version of each name, or all versions), sorted by name then version. ``filter``: a
        filter expression pushed down to SQL (``pushdown``): the result is a superset of what it matches, which
        the caller still tests (``filters.compile_filter``)."""
        if filter:
            from embodied_tui.data.pg.pushdown import where

            condition, params = where(filter)
            if condition != "TRUE":
                latest = " AND m.version = n.latest" if latest_only else ""
                rows = read(self.url, f"SELECT m.name, m.version, m.identity, m.details, m.record::text, m.seal "
                                      f"FROM models m JOIN model_names n ON n.name = m.name WHERE ({condition})"
                                      f"{latest} ORDER BY {_ORDER}", params)
                return [d[0] for d in self._build(rows)]
        docs = self._docs()
        if not latest_only:
            return [d[0] for d in docs]
        latest: dict[str, ModelRecord] = {}
        for rec, _, _ in docs:
            latest[rec.name] = rec  # ordered by name then version: the last one wins
        return list(latest.values())

    def names(self) -> list[str]:
        return sorted(r[0] for r in read(self.url, "SELECT DISTINCT name FROM models"))

    def _rows_of(self, name: str) -> list[tuple[ModelRecord, str, str | None]]:
        return self._build(read(self.url, f"{_SELECT} WHERE name = %s ORDER BY version", (name,)))

    def versions(self, name: str) -> list[ModelRecord]:
        """All versions of ``name``, oldest first (empty if there is no such model)."""
        return [d[0] for d in self._rows_of(name)]

    def _doc_of(self, record: ModelRecord) -> tuple[ModelRecord, str, str | None] | None:
        rows = read(self.url, f"{_SELECT} WHERE name = %s AND version = %s AND sha256 = %s",
                    (record.name, record.version, record.sha256))
        return self._build(rows)[0] if rows else None

    def identity(self, record: ModelRecord) -> str | None:
        doc = self._doc_of(record)
        return None if doc is None else doc[1]

    def _load_details(self, digest: str) -> tuple[ModelDetails | None, str | None]:
        rows = read(self.url, "SELECT body::text FROM details WHERE sha256 = %s", (digest,))
        return self._details_of(digest, rows[0][0] if rows else None)

    @staticmethod
    def _details_of(digest: str, body: str | None) -> tuple[ModelDetails | None, str | None]:
        if body is None:
            return None, "is missing (its row was deleted)"
        if hashlib.sha256(body.encode()).hexdigest() != digest:
            return None, "does not match its hash (edited or damaged)"
        try:
            return read_as(ModelDetails, json.loads(body)), None
        except ValueError:
            return None, "is not valid JSON"
        except ValidationError as exc:
            return None, f"is invalid at {_first_error(exc)}"

    def _details_digest(self, record: ModelRecord) -> str | None:
        doc = self._doc_of(record)
        return None if doc is None else doc[2]

    def _details_parts(self, record: ModelRecord, digest: str, problem: str) -> tuple[str, str]:
        """The message (what is wrong) and the CLI's hint (the command line that restores the details)."""
        return (f"model details {digest[:12]} of {record.name} v{record.version} in {self.location} {problem}; its "
                f"census and per-layer costs are unavailable until you register the same model file again",
                f"which restores them: embodied-ai --db {shlex.quote(self.location)} model register "
                f"{shlex.quote(record.path)} --name {shlex.quote(record.name)}")

    def export_entries(self, names: set[str] | None = None
                       ) -> tuple[list[tuple[ModelRecord, str, ModelDetails | None]], list[str]]:
        """As ``Registry.export_entries``: (record, identity, details) by name then version, and a line for each
        version left out because its details are missing or damaged."""
        docs = [d for d in self._docs() if names is None or d[0].name in names]
        digests = sorted({d[2] for d in docs if d[2]})
        bodies = dict(read(self.url, "SELECT sha256, body::text FROM details WHERE sha256 = ANY(%s)", (digests,))) \
            if digests else {}
        out, skipped = [], []
        for record, identity, digest in docs:
            details = None
            if digest:
                details, problem = self._details_of(digest, bodies.get(digest))
                if problem is not None:
                    skipped.append(self._details_message(record, digest, problem))
                    continue
            out.append((record, identity, details))
        return out, skipped

    def find_same(self, name: str, path: str | Path) -> ModelRecord | None:
        """The version of ``name`` whose identity the file at ``path`` has now, or None (as ``Registry.find_same``)."""
        mine = self._rows_of(name)
        if not mine:
            return None
        digest = sha256_file(path)
        for record, identity, _ in mine:
            if record.sha256 == digest:
                try:
                    if identity_for(path, digest, record.external_data) == identity:
                        return record
                except RegistryError:
                    continue
        return None

    # ---------------------------------------------------------------------------------------- writing
    @staticmethod
    def _payload(details: ModelDetails | None) -> tuple[str, str] | None:
        if details is None or (not details.census and not details.layer_costs):
            return None
        body = details.model_dump_json()
        return hashlib.sha256(body.encode()).hexdigest(), body

    @staticmethod
    def _write_details(cur: Any, payload: tuple[str, str] | None) -> str | None:
        """Store the details (again, when the row was damaged); their digest, or None when there are none."""
        if payload is None:
            return None
        cur.executemany(_DETAILS, [payload])
        return payload[0]

    @staticmethod
    def _drop_unreferenced(cur: Any, digests: set[str]) -> None:
        if digests:
            cur.execute("DELETE FROM details d WHERE d.sha256 = ANY(%s) AND NOT EXISTS "
                        "(SELECT 1 FROM models m WHERE m.details = d.sha256)", (sorted(digests),))

    @staticmethod
    def _stored(cur: Any, names: list[str]) -> list[dict[str, Any]]:
        """The stored versions of ``names`` (locked by the caller): name, version, identity, details, record dict."""
        rows = cur.execute("SELECT name, version, identity, details, record::text FROM models WHERE name = ANY(%s) "
                           "ORDER BY name, version", (sorted(set(names)),)).fetchall()
        return [{"name": n, "version": v, "identity": i, "details": d, "record": json.loads(t)}
                for n, v, i, d, t in rows]

    def _intact(self, cur: Any, digest: str) -> bool:
        row = cur.execute("SELECT body::text FROM details WHERE sha256 = %s", (digest,)).fetchone()
        return row is not None and hashlib.sha256(row[0].encode()).hexdigest() == digest

    def add(self, analysis: Analysis, name: str, tags: dict[str, str] | None = None,
            description: str | None = None) -> tuple[ModelRecord, str]:
        """As ``Registry.add``: "added", "new_version", "unchanged" or "repaired"."""
        name = check_name(name.strip())
        tags = check_tags(tags)
        description = check_description(description)
        identity = identity_of(analysis)
        payload = self._payload(analysis.details())

        def work(cur: Any) -> tuple[ModelRecord, str]:
            _lock_names(cur, [name], create=True)
            mine = self._stored(cur, [name])
            for doc in mine:
                if doc["identity"] == identity:
                    record = read_as(ModelRecord, doc["record"])
                    old = doc["details"]
                    if not old or self._intact(cur, old):
                        return record, "unchanged"
                    digest = self._write_details(cur, payload)
                    if digest != old:
                        cur.execute("UPDATE models SET details = %s WHERE name = %s AND version = %s",
                                    (digest, name, doc["version"]))
                        self._drop_unreferenced(cur, {old})
                    return record, "repaired"
            prev = mine[-1]["record"] if mine else None
            record, details = next_version(analysis, name, prev, tags, description)
            digest = self._write_details(cur, self._payload(details))
            cur.execute(_INSERT, _row(record.model_dump(mode="json"), record, identity, digest))
            _set_latest(cur, [name])
            return record, ("new_version" if prev else "added")

        return transaction(self.url, work)

    def _chosen(self, docs: list[dict[str, Any]], name: str, version: int | None) -> list[dict[str, Any]]:
        if not docs:
            raise self._not_found(name)
        if version is None:
            return docs
        chosen = [d for d in docs if d["version"] == version]
        if not chosen:
            have = ", ".join(str(d["version"]) for d in docs)
            raise NotFound(f"model {name!r} has no version {version} (versions: {have})")
        return chosen

    def remove(self, name: str, version: int | None = None) -> int:
        """Remove one version, or every version of ``name``. Returns how many were removed; NotFound if none."""
        def work(cur: Any) -> int:
            _lock_names(cur, [name], create=False)
            docs = self._chosen(self._stored(cur, [name]), name, version)
            cur.execute("DELETE FROM models WHERE name = %s AND version = ANY(%s)",
                        (name, [d["version"] for d in docs]))
            self._drop_unreferenced(cur, {d["details"] for d in docs if d["details"]})
            _set_latest(cur, [name])
            return len(docs)

        return transaction(self.url, work)

    def update(self, name: str, tags: dict[str, str] | None = None, description: str | None = None, *,
               untag: list[str] | tuple[str, ...] = (), version: int | None = None) -> list[ModelRecord]:
        """As ``Registry.update``: merge ``tags``, remove ``untag`` keys, set ``description``; the changed records."""
        def work(cur: Any) -> list[ModelRecord]:
            _lock_names(cur, [name], create=False)
            docs = self._chosen(self._stored(cur, [name]), name, version)
            missing = [k for k in untag if not any(k in d["record"]["tags"] for d in docs)]
            if missing:
                raise NotFound(f"model {name!r} has no tag {', '.join(map(repr, missing))}")
            new_tags_in, desc = check_tags(tags), check_description(description)
            out = []
            for doc in docs:
                rec, record = edited_record(doc["record"], new_tags_in, untag, desc)
                cur.execute("DELETE FROM models WHERE name = %s AND version = %s", (name, doc["version"]))
                cur.execute(_INSERT, _row(rec, record, doc["identity"], doc["details"]))
                out.append(record)
            return sorted(out, key=lambda r: r.version)

        return transaction(self.url, work)

    def put_many(self, items: list[tuple[ModelRecord, str, ModelDetails | None]]) -> list[tuple[ModelRecord, str]]:
        """As ``Registry.put_many`` (import): each item "added" keeping its version, "renumbered" to the next free
        version of its name, or "unchanged" when its name already has its identity; one transaction."""
        for record, _, _ in items:
            check_name(record.name), check_tags(record.tags), check_description(record.description)
        payloads = [self._payload(details) for _, _, details in items]

        def work(cur: Any) -> list[tuple[ModelRecord, str]]:
            names = [record.name for record, _, _ in items]
            if not names:
                return []
            _lock_names(cur, names, create=True)
            by_name: dict[str, list[dict[str, Any]]] = {}
            for doc in self._stored(cur, names):
                by_name.setdefault(doc["name"], []).append(doc)
            out: list[tuple[ModelRecord, str]] = []
            rows, bodies = [], {}
            for (record, identity, _), payload in zip(items, payloads):
                mine = by_name.setdefault(record.name, [])
                same = next((d for d in mine if d["identity"] == identity), None)
                if same is not None:
                    out.append((read_as(ModelRecord, same["record"]), "unchanged"))
                    continue
                status = "added"
                if any(d["version"] == record.version for d in mine):
                    free = max(d["version"] for d in mine) + 1
                    if free > MAX_VERSION:
                        raise RegistryError(f"model {record.name!r} has no free version number above "
                                            f"{free - 1}; nothing was imported")
                    record = record.model_copy(update={"version": free})
                    status = "renumbered"
                digest = payload[0] if payload else None
                if payload:
                    bodies[payload[0]] = payload
                dumped = record.model_dump(mode="json")
                mine.append({"version": record.version, "identity": identity, "record": dumped})
                rows.append(_row(dumped, record, identity, digest))
                out.append((record, status))
            if rows:
                cur.executemany(_DETAILS, sorted(bodies.values()))  # one order: concurrent imports cannot deadlock
                cur.executemany(_INSERT, rows)
                _set_latest(cur, names)
            return out

        return transaction(self.url, work)

    # ---------------------------------------------------------------------------------------- generic tables
    def table_items(self, name: str) -> list[tuple[int, dict[str, Any]]]:
        """(document id, document copy) of every document of a generic table, in insertion order."""
        self._check_table(name)
        import psycopg

        try:
            return tables.items(connection(self.url), name)
        except psycopg.Error as exc:
            raise server_error(self.url, exc) from None

    def table_all(self, name: str) -> list[dict[str, Any]]:
        return [doc for _, doc in self.table_items(name)]

    def _table_write(self, name: str, work: Any) -> Any:
        def run(cur: Any) -> Any:
            tables.lock(cur, name)
            return work(cur)
        return transaction(self.url, run)

    def table_insert(self, name: str, doc: dict[str, Any]) -> int:
        self._check_table(name)
        doc = self.plain(doc)
        return self._table_write(name, lambda cur: tables.insert(cur, name, doc))

    def table_upsert(self, name: str, doc: dict[str, Any], key_field: str) -> int:
        """Replace the document whose ``key_field`` equals ``doc[key_field]`` (keeping its id, moved to the end, as
        TinyDB does), or insert it. Returns its id."""
        self._check_table(name)
        doc = self.plain(doc)
        if key_field not in doc:
            raise ValueError(f"document has no key field {key_field!r}")

        def work(cur: Any) -> int:
            hits = [i for i, d in tables.items(cur, name) if d.get(key_field) == doc[key_field]]
            if not hits:
                return tables.insert(cur, name, doc)
            tables.remove(cur, name, hits)
            return tables.insert(cur, name, doc, hits[0])
        return self._table_write(name, work)

    def table_remove(self, name: str, key_field: str, value: Any) -> int:
        """Remove every document whose ``key_field`` equals ``value``; returns how many."""
        self._check_table(name)

        def work(cur: Any) -> int:
            hits = [i for i, d in tables.items(cur, name) if d.get(key_field) == value]
            if hits:
                tables.remove(cur, name, hits)
            return len(hits)
        return self._table_write(name, work)

    @contextmanager
    def table_transaction(self, name: str) -> Iterator[tables.PgTable]:
        """One read-modify-write of a generic table, holding its lock from the first read to the commit (nothing is
        written if the block raises). For a write that depends on what is stored."""
        import psycopg

        self._check_table(name)
        conn = connection(self.url)
        try:
            with conn.transaction(), conn.cursor() as cur:
                tables.lock(cur, name)
                yield tables.PgTable(cur, name, self.plain)
        except psycopg.Error as exc:
            raise server_error(self.url, exc) from None
