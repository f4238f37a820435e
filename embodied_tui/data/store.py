"""The model registry: one TinyDB JSON file, locked and atomically replaced on every write.

File layout (``registry.json``)::

    {"_meta":  {"1": {"schema_version": 1, "app": "embodied-ai", "created_at": "..."}},
     "models": {"1": {"record": {...ModelRecord...}, "identity": "<sha256>", "details": "<sha256>" | null}, ...},
     "hardware": {...}, "measurements": {...}}   # generic tables other areas own

- ``identity``: what "the same model" means. The model file's SHA-256, or, when the model has external data files
  (ONNX), the SHA-256 of the model hash and every external file's hash. Same identity under a name = no-op.
- ``details``: the heavy parts (census tree, per-layer costs) live beside the registry, content-addressed:
  ``<registry>.d/<sha256 of the details JSON>.json``, so the main table stays small and listing stays fast.

Writes: every read-modify-write holds ``filelock.FileLock(<registry>.lock)`` for the whole transaction; the new file is
written to a temp file in the same directory, fsynced and moved over the old one with ``os.replace``. A process killed
at any point leaves either the old or the new file, never a torn one.

Reads take no lock (replacement is atomic). The whole file is parsed and validated by pydantic in one pass
(``model_validate_json``) with the garbage collector paused, and cached per process until the file changes. A file that
is not valid JSON, has another schema version or holds a record that fails validation raises ``RegistryError`` with
one line, and is never written over.

Records returned by ``list_models``/``get``/``versions`` are shared with the read cache: treat them as read-only.
"""
from __future__ import annotations

import difflib
import gc
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document

from embodied_tui.data import fast_records
from embodied_tui.data.records import Analysis, ModelDetails, ModelRecord
from embodied_tui.errors import NotFound, RegistryError
from embodied_tui.hashing import sha256_file

SCHEMA_VERSION = 1
MODELS = "models"
META = "_meta"
RESERVED_TABLES = frozenset({MODELS, META, "_default"})
LOCK_TIMEOUT_S = 60.0
_FREEZE_BYTES = 2_000_000  # ~1,500 records: below this, parsing is quick and collections are cheap


def default_path() -> Path:
    """``$EMBODIED_AI_DB`` or ``<user data dir>/embodied-ai/registry.json``."""
    env = os.environ.get("EMBODIED_AI_DB")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("embodied-ai")) / "registry.json"


def identity_for(path: str | Path, sha256: str, external_data: list[str] | tuple[str, ...] = ()) -> str:
    """A model's identity: its file hash, folded with its external data files' hashes when it has any."""
    if not external_data:
        return sha256
    base = Path(path).parent
    h = hashlib.sha256(f"model {sha256}\n".encode())
    for rel in sorted(external_data):
        ext = base / rel
        try:
            digest = sha256_file(ext)
        except OSError as exc:
            raise RegistryError(f"cannot read external data file {ext} of {path}: {exc.strerror or exc}; "
                                f"keep it beside the model file") from None
        h.update(f"external {rel} {digest}\n".encode())
    return h.hexdigest()


def identity_of(analysis: Analysis) -> str:
    return identity_for(analysis.path, analysis.sha256, analysis.external_data)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------------------------- file schema (pydantic)
class StoredModel(BaseModel):
    """One document of the ``models`` table."""

    model_config = ConfigDict(extra="forbid")
    record: ModelRecord
    identity: str
    details: str | None = None  # sha256 of the details file, None when there are none


class _RegistryFile(BaseModel):
    """The whole file, for full validation. Other tables are checked for shape only (table -> id -> object)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, dict[str, dict[str, Any]]]
    meta: dict[str, dict[str, Any]] = Field(default_factory=dict, alias="_meta")
    models: dict[str, StoredModel] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Doc:
    record: ModelRecord
    identity: str
    details: str | None


@dataclass(frozen=True, slots=True)
class _View:
    """What one read of the file gives: the model documents in file order and the generic tables."""

    models: list[_Doc]
    tables: dict[str, dict[str, dict[str, Any]]]


_EMPTY = _View(models=[], tables={})
_cache: dict[Path, tuple[tuple, _View]] = {}
_cache_lock = threading.Lock()


def _signature(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class _Corrupt(Exception):
    pass


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    return f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}"


# ----------------------------------------------------------------------------------------------- the seal
# The writer puts the SHA-256 of everything after it at a fixed place at the start of the file. A file whose seal
# matches is exactly what a validated write produced, so its records are built without re-validating them (fast path);
# a hand-edited file (seal absent or stale) is validated in full, field by field.
_HEAD = b'{"_meta":{"1":{"body_sha256":"'
_DIGEST_LEN = 64


def _serialize(data: dict[str, dict[str, Any]]) -> bytes:
    meta_docs = data.get(META) or {}
    meta = {k: v for k, v in next(iter(meta_docs.values()), {}).items() if k != "body_sha256"}
    ordered: dict[str, Any] = {META: {"1": {"body_sha256": "0" * _DIGEST_LEN, **meta}}}
    ordered.update((k, v) for k, v in data.items() if k != META)
    payload = bytearray(json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode())
    start = len(_HEAD)
    payload[start:start + _DIGEST_LEN] = hashlib.sha256(memoryview(payload)[start + _DIGEST_LEN:]).hexdigest().encode()
    return bytes(payload)


def _sealed(raw: bytes) -> bool:
    start = len(_HEAD)
    if not raw.startswith(_HEAD) or len(raw) < start + _DIGEST_LEN:
        return False
    digest = hashlib.sha256(memoryview(raw)[start + _DIGEST_LEN:]).hexdigest().encode()
    return raw[start:start + _DIGEST_LEN] == digest


# ----------------------------------------------------------------------------------------------- parsing
def _check_plain(data: Any) -> None:
    """The file's outline: a JSON object of tables with this schema version. Version first, so a file from a newer
    embodied-ai says so instead of failing on its records."""
    if not isinstance(data, dict):
        raise _Corrupt(f"the top level is a JSON {type(data).__name__}, not an object")
    meta = data.get(META)
    if not isinstance(meta, dict) or not meta:
        if any(data.values()):
            raise _Corrupt("it has no schema version (no _meta table), so it is not an embodied-ai registry")
        return
    versions = {doc.get("schema_version") if isinstance(doc, dict) else None for doc in meta.values()}
    if versions != {SCHEMA_VERSION}:
        shown = ", ".join(sorted(map(str, versions)))
        raise _Corrupt(f"it has schema version {shown} but this embodied-ai reads version {SCHEMA_VERSION} "
                       f"(upgrade embodied-ai or use another --db)")


def _validated(data: dict[str, Any]) -> _View:
    try:
        parsed = _RegistryFile.model_validate(data)
    except ValidationError as exc:
        raise _Corrupt(f"invalid entry at {_first_error(exc)}") from None
    docs = [_Doc(doc.record, doc.identity, doc.details) for doc in parsed.models.values()]
    return _View(models=docs, tables=dict(parsed.__pydantic_extra__ or {}))


def _trusted(data: dict[str, Any]) -> _View:
    """A sealed file's view. Its records are built without validation by ``fast_records`` (the one module that writes
    pydantic's private attributes; ``EMBODIED_AI_NO_FASTPATH=1`` validates them instead); a record whose keys are not
    exactly its class's fields (an older or newer layout) is validated either way."""
    try:
        stored = list((data.get(MODELS) or {}).values())
        records = fast_records.build_many(ModelRecord, [doc["record"] for doc in stored])
        docs = [_Doc(record, doc["identity"], doc["details"]) for record, doc in zip(records, stored)]
    except (ValidationError, KeyError, TypeError, AttributeError):
        return _validated(data)  # sealed but not our layout after all: let full validation say what is wrong
    tables = {k: v for k, v in data.items() if k not in (META, MODELS)}
    return _View(models=docs, tables=tables)


def _parse(raw: bytes) -> _View:
    """Parse and validate a registry file. The garbage collector is paused while its objects are built. A large file's
    objects are then frozen (``gc.freeze``): 10,000 records are ~1M long-lived acyclic objects, and letting later
    collections walk them costs more than the parse. The next large parse first unfreezes and collects once, so what
    died since (in a long-running app) is still reclaimed."""
    if not raw.strip():
        return _EMPTY
    freeze = len(raw) >= _FREEZE_BYTES
    if freeze and gc.get_freeze_count():
        gc.unfreeze()
        gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _Corrupt(f"it is not valid JSON ({exc})") from None
        _check_plain(data)
        view = _trusted(data) if _sealed(raw) else _validated(data)
        if freeze:
            gc.freeze()
    finally:
        if enabled:
            gc.enable()
    return view


def _corrupt_message(path: Path, why: str) -> str:
    return (f"registry {path} is unreadable: {why}; fix or move the file aside (it was not changed), "
            f"or pass another --db")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, payload: bytes) -> None:
    """Write ``payload`` to a temp file in ``path``'s directory, fsync it and move it over ``path``."""
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


# ------------------------------------------------------------------------------------------------ TinyDB storage
class AtomicJSONStorage(Storage):
    """A TinyDB storage for one transaction: reads the validated file once, keeps writes in memory, and ``commit``
    replaces the file atomically. The caller holds the inter-process lock for the storage's whole life."""

    def __init__(self, path: Path, data: dict[str, dict[str, Any]]):
        self.path = path
        self._data = data
        self.dirty = False

    def read(self) -> dict[str, dict[str, Any]] | None:
        return self._data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        self._data = data
        self.dirty = True

    def commit(self) -> None:
        if not self.dirty:
            return
        atomic_write(self.path, _serialize(self._data))
        self.dirty = False


def _suggest(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    low = name.lower()
    close += [n for n in names if low and low in n.lower() and n not in close][: 3 - len(close)]
    return f" (did you mean {', '.join(close)}?)" if close else ""


# ------------------------------------------------------------------------------------------------ the registry
class Registry:
    """The model registry file and its helpers. Cheap to create; reads are cached per process until the file changes."""

    def __init__(self, path: str | Path | None = None):
        self.path = (Path(path).expanduser() if path else default_path()).absolute()
        self.details_dir = self.path.with_name(self.path.name + ".d")
        self.lock_path = Path(str(self.path) + ".lock")

    def __repr__(self) -> str:
        return f"Registry({str(self.path)!r})"

    # ---------------------------------------------------------------------------------------- reading
    def _read(self, want_raw: bool = False) -> tuple[_View, bytes]:
        """The validated view of the file (cached until the file changes) and, when asked, the bytes it came from."""
        try:
            f = open(self.path, "rb")
        except (FileNotFoundError, NotADirectoryError):  # nothing there yet (writing says if it cannot be made)
            return _EMPTY, b""
        except IsADirectoryError:
            raise RegistryError(f"registry path {self.path} is a directory; pass a file path with --db") from None
        except OSError as exc:
            raise RegistryError(f"cannot read registry {self.path}: {exc.strerror or exc}; pass another --db") from None
        with f:
            sig = _signature(os.fstat(f.fileno()))
            with _cache_lock:
                hit = _cache.get(self.path)
            if hit and hit[0] == sig and not want_raw:
                return hit[1], b""
            try:
                raw = f.read()
            except OSError as exc:
                raise RegistryError(f"cannot read registry {self.path}: {exc.strerror or exc}") from None
        if hit and hit[0] == sig:
            return hit[1], raw
        try:
            view = _parse(raw)
        except _Corrupt as exc:
            raise RegistryError(_corrupt_message(self.path, str(exc))) from None
        with _cache_lock:
            _cache[self.path] = (sig, view)
        return view, raw

    def _view(self) -> _View:
        return self._read()[0]

    def _docs(self) -> list[_Doc]:
        return self._view().models

    def list_models(self, latest_only: bool = True) -> list[ModelRecord]:
        """Every model (latest version of each name, or all versions), sorted by name then version."""
        docs = self._docs()
        if latest_only:
            latest: dict[str, ModelRecord] = {}
            for doc in docs:
                rec = doc.record
                cur = latest.get(rec.name)
                if cur is None or rec.version > cur.version:
                    latest[rec.name] = rec
            records = list(latest.values())
        else:
            records = [doc.record for doc in docs]
        records.sort(key=lambda r: (r.name, r.version))
        return records

    def names(self) -> list[str]:
        return sorted({doc.record.name for doc in self._docs()})

    def versions(self, name: str) -> list[ModelRecord]:
        """All versions of ``name``, oldest first (empty if there is no such model)."""
        return sorted((d.record for d in self._docs() if d.record.name == name), key=lambda r: r.version)

    def _not_found(self, name: str) -> NotFound:
        return NotFound(f"no model named {name!r} in {self.path}{_suggest(name, self.names())}; "
                        f"see `embodied-ai model list`")

    def get(self, name: str, version: int | None = None) -> ModelRecord:
        """One version of a model (the latest when ``version`` is None); NotFound with close names otherwise."""
        found = self.versions(name)
        if not found:
            raise self._not_found(name)
        if version is None:
            return found[-1]
        for rec in found:
            if rec.version == version:
                return rec
        have = ", ".join(str(r.version) for r in found)
        raise NotFound(f"model {name!r} has no version {version} (versions: {have})")

    def _doc_of(self, record: ModelRecord) -> _Doc | None:
        for doc in self._docs():
            rec = doc.record
            if rec.name == record.name and rec.version == record.version and rec.sha256 == record.sha256:
                return doc
        return None

    def details(self, record: ModelRecord) -> ModelDetails | None:
        """The census tree and per-layer costs of a registered record (None when none were stored or the file is gone)."""
        doc = self._doc_of(record)
        if doc is None or doc.details is None:
            return None
        return self._read_details(doc.details)

    def _details_path(self, digest: str) -> Path:
        return self.details_dir / f"{digest}.json"

    def _read_details(self, digest: str) -> ModelDetails | None:
        path = self._details_path(digest)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RegistryError(f"cannot read model details {path}: {exc.strerror or exc}") from None
        if hashlib.sha256(raw).hexdigest() != digest:
            raise RegistryError(f"model details file {path} does not match its hash (edited or damaged); "
                                f"delete it and register the model again")
        try:
            return ModelDetails.model_validate_json(raw)
        except ValidationError as exc:
            raise RegistryError(f"model details file {path} is invalid at {_first_error(exc)}; "
                                f"delete it and register the model again") from None

    def entries(self, names: set[str] | None = None) -> list[tuple[ModelRecord, str, ModelDetails | None]]:
        """(record, identity, details) of every version of ``names`` (all models when None), for export."""
        return [(d.record, d.identity, self._read_details(d.details) if d.details else None)
                for d in sorted(self._docs(), key=lambda d: (d.record.name, d.record.version))
                if names is None or d.record.name in names]

    def table_all(self, name: str) -> list[dict[str, Any]]:
        """Every document of a generic table (copies), in insertion order."""
        self._check_table(name)
        table = self._view().tables.get(name, {})
        return [json.loads(json.dumps(doc)) for doc in table.values()]

    # ---------------------------------------------------------------------------------------- writing
    @contextmanager
    def _transaction(self) -> Iterator[TinyDB]:
        """Hold the lock, read the validated file once, let the caller change it through TinyDB, write it once."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryError(f"cannot create the registry directory {self.path.parent}: {exc.strerror or exc}; "
                                f"pass a writable --db PATH or set EMBODIED_AI_DB") from None
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.lock_path), timeout=LOCK_TIMEOUT_S)
        try:
            lock.acquire()
        except Timeout:
            raise RegistryError(f"registry {self.path} is still locked by another process after {LOCK_TIMEOUT_S:.0f} s "
                                f"({self.lock_path}); try again") from None
        except OSError as exc:
            raise RegistryError(f"cannot lock registry {self.path}: {exc.strerror or exc}; "
                                f"pass a writable --db PATH") from None
        try:
            _, raw = self._read(want_raw=True)  # RegistryError on a corrupt file, before anything is written
            data = json.loads(raw) if raw.strip() else {}
            if not data.get(META):
                data[META] = {"1": {"schema_version": SCHEMA_VERSION, "app": "embodied-ai", "created_at": now_iso()}}
            storage = AtomicJSONStorage(self.path, data)
            db = TinyDB(storage=lambda: storage)
            yield db
            try:
                storage.commit()
            except OSError as exc:
                raise RegistryError(f"cannot write registry {self.path}: {exc.strerror or exc}; "
                                    f"pass a writable --db PATH (the old file was kept)") from None
        finally:
            lock.release()

    def _write_details(self, details: ModelDetails) -> str | None:
        if not details.census and not details.layer_costs:
            return None
        payload = details.model_dump_json().encode()
        digest = hashlib.sha256(payload).hexdigest()
        path = self._details_path(digest)
        if not path.exists():
            try:
                self.details_dir.mkdir(parents=True, exist_ok=True)
                atomic_write(path, payload)
            except OSError as exc:
                raise RegistryError(f"cannot write model details to {self.details_dir}: {exc.strerror or exc}; "
                                    f"pass a writable --db PATH") from None
        return digest

    def _drop_unreferenced(self, digests: set[str], db: TinyDB) -> None:
        used = {doc.get("details") for doc in db.table(MODELS).all()}
        for digest in digests - used:
            try:
                self._details_path(digest).unlink()
            except OSError:
                pass

    def find_same(self, name: str, path: str | Path) -> ModelRecord | None:
        """The version of ``name`` whose identity the file at ``path`` has now (same model and external data bytes),
        or None. Lets `register` skip analysing a file it already holds."""
        mine = [d for d in self._docs() if d.record.name == name]
        if not mine:
            return None
        digest = sha256_file(path)
        for doc in mine:
            if doc.record.sha256 == digest:
                try:
                    if identity_for(path, digest, doc.record.external_data) == doc.identity:
                        return doc.record
                except RegistryError:
                    continue
        return None

    def add(self, analysis: Analysis, name: str, tags: dict[str, str] | None = None,
            description: str | None = None) -> tuple[ModelRecord, str]:
        """Register an analysis under ``name``. Returns the record and "added" (first version), "new_version" (other
        bytes than every existing version) or "unchanged" (same identity as an existing version: nothing written).
        A new version keeps the previous version's tags (merged with ``tags``) and description (unless given)."""
        name = name.strip()
        if not name:
            raise RegistryError("a model needs a non-empty --name")
        identity = identity_of(analysis)
        with self._transaction() as db:
            table = db.table(MODELS)
            mine = sorted((doc for doc in table.all() if doc["record"]["name"] == name),
                          key=lambda d: d["record"]["version"])
            for doc in mine:
                if doc["identity"] == identity:
                    return ModelRecord.model_validate(doc["record"]), "unchanged"
            prev = mine[-1]["record"] if mine else None
            merged = dict(prev["tags"]) if prev else {}
            merged.update(tags or {})
            desc = description if description is not None else (prev["description"] if prev else "")
            record, details = ModelRecord.from_analysis(
                analysis, name=name, version=(prev["version"] + 1) if prev else 1, registered_at=now_iso(),
                tags=merged, description=desc)
            digest = self._write_details(details)
            table.insert({"record": record.model_dump(mode="json"), "identity": identity, "details": digest})
        return record, ("new_version" if prev else "added")

    def _docs_of(self, table, name: str, version: int | None) -> list[Document]:
        """The stored documents of every version of ``name``, or of one version; NotFound naming what exists."""
        docs = [d for d in table.all() if d["record"]["name"] == name]
        if not docs:
            raise self._not_found(name)
        if version is None:
            return docs
        chosen = [d for d in docs if d["record"]["version"] == version]
        if not chosen:
            have = ", ".join(str(v) for v in sorted(d["record"]["version"] for d in docs))
            raise NotFound(f"model {name!r} has no version {version} (versions: {have})")
        return chosen

    def remove(self, name: str, version: int | None = None) -> int:
        """Remove one version, or every version of ``name``. Returns how many were removed; NotFound if none."""
        with self._transaction() as db:
            table = db.table(MODELS)
            docs = self._docs_of(table, name, version)
            table.remove(doc_ids=[d.doc_id for d in docs])
            self._drop_unreferenced({d["details"] for d in docs if d.get("details")}, db)
        return len(docs)

    def update(self, name: str, tags: dict[str, str] | None = None, description: str | None = None, *,
               untag: list[str] | tuple[str, ...] = (), version: int | None = None) -> list[ModelRecord]:
        """Merge ``tags`` into, remove ``untag`` keys from and set ``description`` on every version of ``name``
        (or one version). Returns the changed records, oldest first."""
        with self._transaction() as db:
            table = db.table(MODELS)
            docs = self._docs_of(table, name, version)
            missing = [k for k in untag if not any(k in d["record"]["tags"] for d in docs)]
            if missing:
                raise NotFound(f"model {name!r} has no tag {', '.join(map(repr, missing))}")
            out = []
            for doc in docs:
                rec = dict(doc["record"])
                new_tags = dict(rec["tags"])
                for key in untag:
                    new_tags.pop(key, None)
                new_tags.update(tags or {})
                rec["tags"] = new_tags
                if description is not None:
                    rec["description"] = description
                record = ModelRecord.model_validate(rec)
                table.update({"record": record.model_dump(mode="json")}, doc_ids=[doc.doc_id])
                out.append(record)
        return sorted(out, key=lambda r: r.version)

    def put_many(self, items: list[tuple[ModelRecord, str, ModelDetails | None]]) -> list[tuple[ModelRecord, str]]:
        """Insert (record, identity, details) triples exactly as given, in one transaction (import). Each gets
        "unchanged" if its name already has its identity, else "added" keeping its version number, or "renumbered"
        to the next free version of its name when that number is taken."""
        out: list[tuple[ModelRecord, str]] = []
        with self._transaction() as db:
            table = db.table(MODELS)
            by_name: dict[str, list[dict[str, Any]]] = {}
            for doc in table.all():
                by_name.setdefault(doc["record"]["name"], []).append(doc)
            new_docs = []
            for record, identity, details in items:
                mine = by_name.setdefault(record.name, [])
                same = next((d for d in mine if d["identity"] == identity), None)
                if same is not None:
                    out.append((ModelRecord.model_validate(same["record"]), "unchanged"))
                    continue
                status = "added"
                if any(d["record"]["version"] == record.version for d in mine):
                    record = record.model_copy(update={"version": max(d["record"]["version"] for d in mine) + 1})
                    status = "renumbered"
                digest = self._write_details(details) if details is not None else None
                doc = {"record": record.model_dump(mode="json"), "identity": identity, "details": digest}
                mine.append(doc)
                new_docs.append(doc)
                out.append((record, status))
            if new_docs:
                table.insert_multiple(new_docs)
        return out

    # ---------------------------------------------------------------------------------------- generic tables
    @staticmethod
    def _check_table(name: str) -> None:
        if name in RESERVED_TABLES or not name or name.startswith("_"):
            raise ValueError(f"table {name!r} is reserved by the registry")

    @staticmethod
    def _plain(doc: dict[str, Any]) -> dict[str, Any]:
        try:
            return json.loads(json.dumps(doc))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"document is not JSON-serialisable: {exc}") from None

    def table_insert(self, name: str, doc: dict[str, Any]) -> int:
        self._check_table(name)
        doc = self._plain(doc)
        with self._transaction() as db:
            return db.table(name).insert(doc)

    def table_upsert(self, name: str, doc: dict[str, Any], key_field: str) -> int:
        """Replace the document whose ``key_field`` equals ``doc[key_field]``, or insert it. Returns its id."""
        self._check_table(name)
        doc = self._plain(doc)
        if key_field not in doc:
            raise ValueError(f"document has no key field {key_field!r}")
        with self._transaction() as db:
            table = db.table(name)
            hits = [d.doc_id for d in table.all() if d.get(key_field) == doc[key_field]]
            if not hits:
                return table.insert(doc)
            table.remove(doc_ids=hits)
            return table.insert(Document(doc, doc_id=hits[0]))

    def table_remove(self, name: str, key_field: str, value: Any) -> int:
        """Remove every document whose ``key_field`` equals ``value``; returns how many."""
        self._check_table(name)
        with self._transaction() as db:
            table = db.table(name)
            hits = [d.doc_id for d in table.all() if d.get(key_field) == value]
            if hits:
                table.remove(doc_ids=hits)
            return len(hits)
