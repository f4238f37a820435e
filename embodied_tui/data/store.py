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

Reads take no lock (replacement is atomic). The whole file is parsed and validated by pydantic in one pass with the
garbage collector paused, and cached per process until the file changes. A file that is not valid JSON, has another
schema version or holds a record that fails validation raises ``RegistryError`` with one line, and is never written
over. Keys a newer embodied-ai added (to a record, its nested parts or a document) are ignored when reading and kept
in the file when it is written again (``records.read_as``); what this version creates is validated strictly.

The path: ``--db``, ``$EMBODIED_AI_DB`` or the user data dir. A symlink is followed to the real file once, when the
``Registry`` is made: reads, the atomic replacement, the lock (``<real file>.lock``) and the details folder
(``<real file>.d``) all work on the target, so the link stays a link and every path to one registry shares one lock.
Anything that is not a regular file (a directory, a FIFO, a device such as ``/dev/null``, a socket) is refused with
one line before it is opened, locked or replaced.

JSON is written with ``allow_nan=False``: a NaN or an infinity can never reach the file (records and hardware refuse
them when validated; a document that still holds one is named in the error instead of being written).

Records returned by ``list_models``/``get``/``versions`` are shared with the read cache: treat them as read-only.
"""
from __future__ import annotations

import errno
import gc
import hashlib
import json
import math
import os
import shlex
import stat
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
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
from embodied_tui.data.lookup import RecordLookup, edited_record, next_version
from embodied_tui.data.names import check_description, check_name, check_tags
from embodied_tui.data.records import MAX_VERSION, PATTERN_RULES, Analysis, ModelDetails, ModelRecord, read_as
from embodied_tui.errors import NotFound, RegistryError
from embodied_tui.hashing import sha256_file, sha256_inside

SCHEMA_VERSION = 1
MODELS = "models"
META = "_meta"
RESERVED_TABLES = frozenset({MODELS, META, "_default"})
LOCK_TIMEOUT_S = 60.0
_FREEZE_BYTES = 2_000_000  # ~1,500 records: below this, parsing is quick and collections are cheap


class RegistryWarning(UserWarning):
    """Something in the registry was skipped or is incomplete, but the command can go on (a damaged details file, an
    invalid measurement document). The CLI prints it as one ``warning:`` line on stderr."""


def warn(message: str) -> None:
    warnings.warn(message, RegistryWarning, stacklevel=2)


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
            digest = sha256_inside(base, rel)  # never outside the model's folder, never a FIFO or a device
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

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    record: ModelRecord
    identity: str
    details: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")  # sha256 of the details file, or None


class _RegistryFile(BaseModel):
    """The whole file, for full validation. Other tables are checked for shape only (table -> id -> object)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, dict[str, dict[str, Any]]]
    meta: dict[str, dict[str, Any]] = Field(default_factory=dict, alias="_meta")
    models: dict[str, StoredModel] = Field(default_factory=dict)


_DOC_KEYS = frozenset(StoredModel.model_fields)


@dataclass(frozen=True, slots=True)
class _Doc:
    record: ModelRecord
    identity: str
    details: str | None


class _View:
    """What one read of the file gives: the model documents in file order and the generic tables. A view primed
    from a summary (``Registry.prime``) holds the tables only and parses the file for its models when first asked."""

    __slots__ = ("_models", "_load", "tables", "by_key")

    def __init__(self, models: list[_Doc] | None = None, tables: dict[str, dict[str, dict[str, Any]]] | None = None,
                 load: Callable[[], list[_Doc]] | None = None) -> None:
        self._models = models
        self._load = load
        self.tables = tables if tables is not None else {}
        # (name, version, sha256) -> the first such document, built on first use (a fit over 10,000 models asks for
        # every model's details: a scan each was quadratic, 28 s at 10,000 distinct models)
        self.by_key: dict[tuple[str, int, str], _Doc] = {}

    @property
    def models(self) -> list[_Doc]:
        if self._models is None:
            self._models = self._load() if self._load is not None else []
        return self._models

    @property
    def parsed(self) -> bool:
        return self._models is not None


_EMPTY = _View(models=[], tables={})
_cache: dict[Path, tuple[tuple, _View]] = {}
_cache_lock = threading.Lock()


def _signature(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _path_signature(path: Path) -> tuple | None:
    """``_signature`` of what is at ``path``; None where nothing is (or it cannot be stat'ed)."""
    try:
        return _signature(os.stat(path))
    except OSError:
        return None


class _Corrupt(Exception):
    pass


def error_text(err: dict[str, Any], prefix: tuple = ()) -> str:
    """One pydantic error as ``where: what`` (a pattern said in words)."""
    where = ".".join(str(part) for part in (*prefix, *err["loc"]))
    msg = err["msg"]
    if err.get("type") == "string_pattern_mismatch":
        rule = PATTERN_RULES.get((err.get("ctx") or {}).get("pattern", ""))
        if rule:
            msg = f"must be {rule}, not {str(err.get('input'))[:80]!r}"
    elif err.get("type") == "finite_number":
        msg = f"must be a finite number, not {err.get('input')!r}"
    return f"{where}: {msg}" if where else msg


def _first_error(exc: ValidationError, prefix: tuple = ()) -> str:
    return error_text(exc.errors(include_url=False)[0], prefix)


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
    try:
        text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise RegistryError(f"the registry would hold a non-finite number (NaN or infinity) at "
                            f"{_non_finite_at(ordered) or '?'}, which JSON does not allow; remove that entry "
                            f"(nothing was written)") from None
    payload = bytearray(text.encode())
    start = len(_HEAD)
    payload[start:start + _DIGEST_LEN] = hashlib.sha256(memoryview(payload)[start + _DIGEST_LEN:]).hexdigest().encode()
    return bytes(payload)


def _non_finite_at(value: Any, where: str = "") -> str | None:
    """Where in ``value`` the first NaN or infinity is ("hardware.3.entry.power_modes.0.peak_tflops.fp16")."""
    if isinstance(value, float):
        return None if math.isfinite(value) else where
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite_at(item, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


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
    versions = [doc.get("schema_version") if isinstance(doc, dict) else None for doc in meta.values()]
    for version in versions:
        if type(version) is not int:  # True is an int to isinstance
            what = "missing" if version is None else f"{str(version)[:40]!r} (a {_json_type(version)})"
            raise _Corrupt(f"its schema version is unreadable: {what}, where this embodied-ai expects the number "
                           f"{SCHEMA_VERSION}")
    if set(versions) != {SCHEMA_VERSION}:
        shown = ", ".join(str(v) for v in sorted(set(versions)))
        if max(versions) > SCHEMA_VERSION:
            raise _Corrupt(f"it has schema version {shown}, newer than the version {SCHEMA_VERSION} this "
                           f"embodied-ai reads (upgrade embodied-ai or use another --db)")
        raise _Corrupt(f"it has schema version {shown}, but this embodied-ai reads version {SCHEMA_VERSION} only")


def _json_type(value: Any) -> str:
    return {str: "string", bool: "boolean", float: "number", list: "list", dict: "object"}.get(type(value),
                                                                                            type(value).__name__)


def _validated(data: dict[str, Any]) -> _View:
    """Full validation. Model documents are read with ``read_as``: keys a newer embodied-ai added are ignored."""
    models = data.get(MODELS) or {}
    try:
        parsed = _RegistryFile.model_validate({k: v for k, v in data.items() if k != MODELS})
        if not isinstance(models, dict):
            _RegistryFile.model_validate({MODELS: models})  # says what is wrong with the table
    except ValidationError as exc:
        raise _Corrupt(f"invalid entry at {_first_error(exc)}") from None
    docs = []
    for key, doc in models.items():
        try:
            stored = read_as(StoredModel, doc)
        except ValidationError as exc:
            raise _Corrupt(f"invalid entry at {_first_error(exc, (MODELS, key))}") from None
        docs.append(_Doc(stored.record, stored.identity, stored.details))
    return _View(models=docs, tables=dict(parsed.__pydantic_extra__ or {}))


def _trusted(data: dict[str, Any], raw: bytes) -> _View:
    """A sealed file's view. Its records are built without validation by ``fast_records`` (the one module that writes
    pydantic's private attributes; ``EMBODIED_AI_NO_FASTPATH=1`` validates them instead); a record whose keys are not
    exactly its class's fields (an older or newer layout) is validated either way."""
    try:
        stored = list((data.get(MODELS) or {}).values())
        if any(doc.keys() != _DOC_KEYS for doc in stored):
            raise KeyError("layout")
        records = fast_records.build_many(ModelRecord, [doc["record"] for doc in stored])
        docs = [_Doc(record, doc["identity"], doc["details"]) for record, doc in zip(records, stored)]
    except (ValidationError, KeyError, TypeError, AttributeError):
        # sealed but not our layout after all (a newer embodied-ai's keys, say): validate afresh, from the bytes,
        # since building may have replaced some nested dicts already
        return _validated(json.loads(raw))
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
        view = _trusted(data, raw) if _sealed(raw) else _validated(data)
        if freeze:
            gc.freeze()
    finally:
        if enabled:
            gc.enable()
    return view


def _corrupt_message(path: Path, why: str) -> str:
    return f"registry {path} is unreadable: {why}; fix or move the file aside (it was not changed)"


def fsync_dir(directory: Path, *, strict: bool = False) -> None:
    """Flush a directory's entries (a rename into it) to disk. A directory that cannot be opened is skipped; a failed
    fsync is ignored, or with ``strict`` raised unless the file system cannot fsync directories (EINVAL, EBADF)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if strict and exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def not_regular(mode: int) -> str | None:
    """What a file of this ``st_mode`` is when it is not a regular file ("a FIFO (named pipe)"), else None."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def atomic_write(path: Path, payload: bytes) -> None:
    """Write ``payload`` to a temp file in ``path``'s directory, fsync it and move it over ``path``. A symlink is
    written through (its target is replaced, the link stays); a ``path`` that is not a regular file (a directory, a
    FIFO, a device) raises OSError and is left alone."""
    path = Path(os.path.realpath(path))
    try:
        st = os.stat(path)
        kind = not_regular(st.st_mode)
        if kind:
            raise OSError(errno.EINVAL, f"{path} is {kind}, not a regular file")
        mode = st.st_mode & 0o777
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
        kind = not_regular(os.lstat(path).st_mode) if os.path.lexists(path) else None
        if kind or os.path.islink(path):  # swapped since the check above: replace nothing but a regular file
            raise OSError(errno.EINVAL, f"{path} changed into {kind or 'a symlink'} while it was being written")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


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


# ------------------------------------------------------------------------------------------------ the registry
class Registry(RecordLookup):
    """The model registry file and its helpers. Cheap to create; reads are cached per process until the file changes."""

    def __init__(self, path: str | Path | None = None):
        given = (Path(path).expanduser() if path else default_path()).absolute()
        # a symlink is followed to the real file: the lock and the details folder sit beside it, and the atomic
        # replacement replaces it rather than the link (which would leave the real registry without the change)
        self.path = Path(os.path.realpath(given))
        self.link = given if given != self.path and os.path.islink(given) else None
        self.details_dir = self.path.with_name(self.path.name + ".d")
        self.lock_path = Path(str(self.path) + ".lock")

    def __repr__(self) -> str:
        return f"Registry({str(self.path)!r})"

    def change_marker(self) -> tuple:
        """A value that changes whenever the registry is written, by this process or another: the stat signature of
        the registry file (device, inode, size, mtime and ctime in ns: every write replaces the file atomically, so
        its inode changes even within one mtime tick) and of the details folder (a details file restored without a
        registry change). Two ``stat`` calls, nothing read or parsed: cheap enough to poll from a UI timer. Equal
        values mean nothing changed; ``None`` in a place means that path does not exist (or cannot be stat'ed)."""
        return _path_signature(self.path), _path_signature(self.details_dir)

    # ---------------------------------------------------------------------------------------- reading
    def _not_a_file(self, kind: str) -> RegistryError:
        via = f" (where the link {self.link} points)" if self.link else ""
        return RegistryError(f"registry path {self.path}{via} is {kind}, not a registry file",
                             hint="pass a file path with --db or EMBODIED_AI_DB (it was not opened or changed)",
                             app_hint="open a registry file instead (it was not opened or changed)")

    def _check_path(self) -> bool:
        """Whether the registry file exists; RegistryError when the path is something else than a regular file (a
        directory, a FIFO, a device, a socket). Only ``stat``s it: a FIFO is never opened, so this cannot block."""
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):  # nothing there yet (writing says if it cannot be made)
            return False
        except OSError as exc:
            raise RegistryError(f"cannot read registry {self.path}: {exc.strerror or exc}",
                                hint="pass another --db") from None
        kind = not_regular(st.st_mode)
        if kind:
            raise self._not_a_file(kind)
        return True

    def _read(self, want_raw: bool = False) -> tuple[_View, bytes]:
        """The validated view of the file (cached until the file changes) and, when asked, the bytes it came from."""
        if not self._check_path():
            return _EMPTY, b""
        try:  # O_NONBLOCK: a FIFO swapped in after the check does not block the open; fstat below refuses it
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        except (FileNotFoundError, NotADirectoryError):
            return _EMPTY, b""
        except OSError as exc:
            raise RegistryError(f"cannot read registry {self.path}: {exc.strerror or exc}",
                                hint="pass another --db") from None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            kind = not_regular(st.st_mode)
            if kind:
                raise self._not_a_file(kind)
            sig = _signature(st)
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
            raise RegistryError(_corrupt_message(self.path, str(exc)), hint="or pass another --db",
                                hint_sep=", ") from None
        with _cache_lock:
            _cache[self.path] = (sig, view)
        return view, raw

    def _view(self) -> _View:
        return self._read()[0]

    # ---------------------------------------------------------------------------------------- summaries
    def parsed_state(self) -> tuple[tuple, dict[str, dict[str, Any]]] | None:
        """(stat signature, generic tables) of the file as this process last parsed it whole, while the file is
        still that one; None otherwise (``services.summary`` saves a summary of that parse)."""
        with _cache_lock:
            hit = _cache.get(self.path)
        if hit is None or not hit[1].parsed or self.signature() != hit[0]:
            return None
        return hit[0], hit[1].tables

    def signature(self) -> tuple | None:
        """The registry file's stat signature (device, inode, size, mtime, ctime), or None where there is none."""
        return _path_signature(self.path)

    def prime(self, sig: tuple, tables: dict[str, dict[str, dict[str, Any]]]) -> bool:
        """Read the file's generic tables from a summary of it (``services.summary``) while its signature is still
        ``sig``: the models are parsed only when something asks for them. False (nothing primed) when the file is
        no longer that one."""
        if self.signature() != sig:
            return False
        with _cache_lock:
            hit = _cache.get(self.path)
            if hit is not None and hit[0] == sig:
                return True
            _cache[self.path] = (sig, _View(tables=tables, load=self._parsed_models))
        return True

    def _parsed_models(self) -> list[_Doc]:
        """The models of a primed view: the file read and parsed now (and cached whole)."""
        with _cache_lock:
            _cache.pop(self.path, None)
        return self._view().models

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

    def _doc_of(self, record: ModelRecord) -> _Doc | None:
        view = self._view()
        index = view.by_key
        if not index and view.models:
            for doc in view.models:
                index.setdefault((doc.record.name, doc.record.version, doc.record.sha256), doc)
        return index.get((record.name, record.version, record.sha256))

    def _details_digest(self, record: ModelRecord) -> str | None:
        doc = self._doc_of(record)
        return None if doc is None else doc.details

    def identity(self, record: ModelRecord) -> str | None:
        """The stored identity of this record (file hash, folded with its external data's hashes), or None."""
        doc = self._doc_of(record)
        return None if doc is None else doc.identity

    def _details_path(self, digest: str) -> Path:
        return self.details_dir / f"{digest}.json"

    def _load_details(self, digest: str) -> tuple[ModelDetails | None, str | None]:
        """(details, None), or (None, what is wrong with the file)."""
        path = self._details_path(digest)
        try:
            st = os.stat(path)
            kind = not_regular(st.st_mode)
            if kind:
                return None, f"is {kind}, not a details file"
            raw = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            gone = "the folder " + str(self.details_dir) if not self.details_dir.exists() else "the file"
            return None, f"is missing ({gone} was moved or deleted)"
        except OSError as exc:
            return None, f"cannot be read ({exc.strerror or exc})"
        if hashlib.sha256(raw).hexdigest() != digest:
            return None, "does not match its hash (edited or damaged)"
        try:  # parsed and validated in one pass (2-3x faster: a fit over 10,000 models reads 10,000 of these);
            return ModelDetails.model_validate_json(raw), None  # anything it refuses is read as before, below
        except ValidationError:
            pass
        try:
            return read_as(ModelDetails, json.loads(raw)), None
        except (ValueError, UnicodeDecodeError):
            return None, "is not valid JSON"
        except ValidationError as exc:
            return None, f"is invalid at {_first_error(exc)}"

    def _details_parts(self, record: ModelRecord, digest: str, problem: str) -> tuple[str, str]:
        """The message (what is wrong) and the CLI's hint (the command line that restores the details)."""
        db = ""
        try:
            if Path(os.path.realpath(default_path().absolute())) != self.path:
                db = f" --db {shlex.quote(str(self.link or self.path))}"
        except (OSError, RuntimeError, ImportError):  # no user data dir: say the path
            db = f" --db {shlex.quote(str(self.link or self.path))}"
        return (f"model details file {self._details_path(digest)} of {record.name} v{record.version} {problem}; "
                f"its census and per-layer costs are unavailable until you register the same model file again",
                f"which restores them: embodied-ai{db} model register {shlex.quote(record.path)} "
                f"--name {shlex.quote(record.name)}")

    def export_entries(self, names: set[str] | None = None
                       ) -> tuple[list[tuple[ModelRecord, str, ModelDetails | None]], list[str]]:
        """(record, identity, details) of every version of ``names`` (all models when None), for export; and one
        line for each version left out because its stored details are missing or damaged."""
        out, skipped = [], []
        for d in sorted(self._docs(), key=lambda d: (d.record.name, d.record.version)):
            if names is not None and d.record.name not in names:
                continue
            details = None
            if d.details:
                details, problem = self._load_details(d.details)
                if problem is not None:
                    skipped.append(self._details_message(d.record, d.details, problem))
                    continue
            out.append((d.record, d.identity, details))
        return out, skipped

    def table_items(self, name: str) -> list[tuple[int, dict[str, Any]]]:
        """(document id, document copy) of every document of a generic table, in insertion order."""
        self._check_table(name)
        table = self._view().tables.get(name, {})
        return [(int(key) if str(key).isdigit() else key, json.loads(json.dumps(doc)))  # type: ignore[misc]
                for key, doc in table.items()]

    def table_all(self, name: str) -> list[dict[str, Any]]:
        """Every document of a generic table (copies), in insertion order."""
        self._check_table(name)
        table = self._view().tables.get(name, {})
        return [json.loads(json.dumps(doc)) for doc in table.values()]

    # ---------------------------------------------------------------------------------------- writing
    @contextmanager
    def _transaction(self) -> Iterator[TinyDB]:
        """Hold the lock, read the validated file once, let the caller change it through TinyDB, write it once."""
        self._check_path()  # a directory, FIFO or device: refused before anything is created, locked or opened
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryError(f"cannot create the registry directory {self.path.parent}: {exc.strerror or exc}",
                                hint="pass a writable --db PATH or set EMBODIED_AI_DB") from None
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.lock_path), timeout=LOCK_TIMEOUT_S)
        try:
            lock.acquire()
        except Timeout:
            raise RegistryError(f"registry {self.path} is still locked by another process after {LOCK_TIMEOUT_S:.0f} s "
                                f"({self.lock_path}); try again") from None
        except OSError as exc:
            raise RegistryError(f"cannot lock registry {self.path}: {exc.strerror or exc}",
                                hint="pass a writable --db PATH") from None
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
                raise RegistryError(f"cannot write registry {self.path}: {exc.strerror or exc}",
                                    hint="pass a writable --db PATH (the old file was kept)",
                                    app_hint="the old file was kept") from None
        finally:
            lock.release()

    def _write_details(self, details: ModelDetails) -> str | None:
        if not details.census and not details.layer_costs:
            return None
        payload = details.model_dump_json().encode()
        digest = hashlib.sha256(payload).hexdigest()
        path = self._details_path(digest)
        if not self._details_intact(digest):  # missing, or damaged: (re)write it
            try:
                self.details_dir.mkdir(parents=True, exist_ok=True)
                atomic_write(path, payload)
            except OSError as exc:
                raise RegistryError(f"cannot write model details to {self.details_dir}: {exc.strerror or exc}",
                                    hint="pass a writable --db PATH") from None
        return digest

    def _details_intact(self, digest: str) -> bool:
        try:
            return hashlib.sha256(self._details_path(digest).read_bytes()).hexdigest() == digest
        except OSError:
            return False

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
        A new version keeps the previous version's tags (merged with ``tags``) and description (unless given).
        "repaired": the same identity, whose details file was missing or damaged and is written again from
        ``analysis`` (the record itself is kept)."""
        name = check_name(name.strip())
        tags = check_tags(tags)
        description = check_description(description)
        identity = identity_of(analysis)
        with self._transaction() as db:
            table = db.table(MODELS)
            mine = sorted((doc for doc in table.all() if doc["record"]["name"] == name),
                          key=lambda d: d["record"]["version"])
            for doc in mine:
                if doc["identity"] == identity:
                    record = read_as(ModelRecord, doc["record"])
                    old = doc.get("details")
                    if not old or self._details_intact(old):
                        return record, "unchanged"
                    digest = self._write_details(analysis.details())
                    if digest != old:
                        table.update({"details": digest}, doc_ids=[doc.doc_id])
                        self._drop_unreferenced({old}, db)
                    return record, "repaired"
            prev = mine[-1]["record"] if mine else None
            record, details = next_version(analysis, name, prev, tags, description)
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
            tags, description = check_tags(tags), check_description(description)
            out = []
            for doc in docs:
                rec, record = edited_record(doc["record"], tags, untag, description)
                table.update({"record": rec}, doc_ids=[doc.doc_id])
                out.append(record)
        return sorted(out, key=lambda r: r.version)

    def put_many(self, items: list[tuple[ModelRecord, str, ModelDetails | None]]) -> list[tuple[ModelRecord, str]]:
        """Insert (record, identity, details) triples exactly as given, in one transaction (import). Each gets
        "unchanged" if its name already has its identity, else "added" keeping its version number, or "renumbered"
        to the next free version of its name when that number is taken. Names, tags and descriptions are held to
        the rule of ``data/names.py`` (the records' own fields were validated when they were made)."""
        for record, _, _ in items:
            check_name(record.name), check_tags(record.tags), check_description(record.description)
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
                    out.append((read_as(ModelRecord, same["record"]), "unchanged"))
                    continue
                status = "added"
                if any(d["record"]["version"] == record.version for d in mine):
                    free = max(d["record"]["version"] for d in mine) + 1
                    if free > MAX_VERSION:
                        raise RegistryError(f"model {record.name!r} has no free version number above "
                                            f"{free - 1}; nothing was imported")
                    record = record.model_copy(update={"version": free})
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
            return json.loads(json.dumps(doc, allow_nan=False))
        except (TypeError, ValueError) as exc:
            where = _non_finite_at(doc)
            if where is not None:
                raise RegistryError(f"cannot store a non-finite number (NaN or infinity) at {where}: JSON does not "
                                    f"allow it (nothing was written)") from None
            raise ValueError(f"document is not JSON-serialisable: {exc}") from None

    @contextmanager
    def table_transaction(self, name: str) -> Iterator[Any]:
        """One read-modify-write of a generic table under the registry's lock: the TinyDB table of ``name`` as the
        file holds it now, written once, atomically, when the block ends (nothing is written if it raises). For a
        write that depends on what is stored (the next version number of a name). Insert plain JSON documents
        (``plain``)."""
        self._check_table(name)
        with self._transaction() as db:
            yield db.table(name)

    @classmethod
    def plain(cls, doc: dict[str, Any]) -> dict[str, Any]:
        """``doc`` as plain JSON (a copy); RegistryError, one line, for a NaN or an infinity."""
        return cls._plain(doc)

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
