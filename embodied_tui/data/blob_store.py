"""The model store: file bytes addressed by their SHA-256, so a registry entry can be fetched on any machine.

Layout of a directory store (a local folder or a shared mount)::

    <store>/sha256/ab/cdef0123...     one blob: the exact bytes whose SHA-256 is "abcdef0123..." (model files, ONNX
                                      external data files and manifests alike; read-only once written)
    <store>/models/ab/cdef0123...     the SHA-256 of a model's manifest blob, filed under the model's registry
                                      identity (data/store.py: its file hash, folded with its external data's hashes)
    <store>/tmp/                      writes in progress (a blob appears under sha256/ only complete, by rename)

A manifest (``Manifest``) lists the model file's and each external data file's hash and size; the registry record
supplies the names to restore (the model's file name, the external data paths). Every read is verified: a blob is
re-hashed as it is copied out and a manifest must hash to its name; the restored files must then have the identity
the registry holds (``services/model_store.py``). A missing or corrupt blob is one ``UserError`` line naming the hash
and the store, never a silently wrong file.

The interface is small so that an object store can sit behind it later: ``open_store(location)`` chooses the
implementation by the location's URL scheme (a plain path or ``file://`` today), and a store has ``put(path) ->
digest``, ``put_bytes``, ``has``, ``read_bytes`` and ``copy_to(digest, dest)``, plus ``set_ref``/``get_ref`` for the
identity -> manifest pointers.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from embodied_tui.data.records import SHA256_PATTERN
from embodied_tui.data.store import fsync_dir
from embodied_tui.errors import UserError

_CHUNK = 1 << 20
_DIGEST = re.compile(r"[0-9a-f]{64}")
MANIFEST_FORMAT = "embodied-ai-manifest"
MANIFEST_VERSION = 1


class StoreError(UserError):
    """The model store is missing, unwritable, or holds a missing or corrupt blob; one line says which and where."""


class StoredFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = ""  # relative to the model file's folder; "" for the model file itself (its name is the record's)
    sha256: str = Field(pattern=SHA256_PATTERN)
    size_bytes: int = Field(ge=0)


class Manifest(BaseModel):
    """What a stored model consists of: its model file and its ONNX external data files, each by hash."""

    model_config = ConfigDict(extra="forbid")
    format: str = MANIFEST_FORMAT
    manifest_version: int = MANIFEST_VERSION
    model: StoredFile
    external_data: list[StoredFile] = Field(default_factory=list)  # sorted by path

    def payload(self) -> bytes:
        return self.model_dump_json(indent=1).encode() + b"\n"


def check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise ValueError(f"not a SHA-256 hex digest: {digest!r}")
    return digest


class DirStore:
    """A content-addressed store in a directory (see the module docstring for the layout)."""

    scheme = "file"

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().absolute()

    def __repr__(self) -> str:
        return f"DirStore({str(self.root)!r})"

    @property
    def location(self) -> str:
        return str(self.root)

    # ---------------------------------------------------------------------------------------------- paths
    def _under(self, kind: str, digest: str) -> Path:
        check_digest(digest)
        return self.root / kind / digest[:2] / digest[2:]

    def blob_path(self, digest: str) -> Path:
        return self._under("sha256", digest)

    def _fail(self, what: str, exc: OSError | None = None, todo: str = "") -> StoreError:
        why = f": {exc.strerror or exc}" if exc is not None else ""
        return StoreError(f"{what} in model store {self.root}{why}{'; ' + todo if todo else ''}")

    def check_writable(self) -> None:
        """StoreError (one line) unless blobs can be written here: checked before slow work, so it fails at once."""
        try:
            (self.root / "tmp").mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix=".probe-")
            os.close(fd)
            os.unlink(tmp)
        except OSError as exc:
            raise StoreError(f"cannot write to model store {self.root}: {exc.strerror or exc}; choose a writable "
                             f"--store DIR (or `embodied-ai model store set DIR`)") from None

    # ---------------------------------------------------------------------------------------------- writing
    def _stage(self, chunks, expect: str | None = None) -> str:
        """Write ``chunks`` to a temp file under tmp/ while hashing them, then rename it to its blob path (kept as it
        is when a good copy is there already; a damaged one is replaced). Returns the digest."""
        tmpdir = self.root / "tmp"
        try:
            tmpdir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=tmpdir, prefix=".blob-")
        except OSError as exc:
            raise self._fail("cannot write", exc, "choose a writable --store DIR") from None
        try:
            h = hashlib.sha256()
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    h.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            digest = h.hexdigest()
            if expect is not None and digest != expect:
                raise StoreError(f"the bytes changed while they were being stored (sha256 {digest[:12]}, expected "
                                 f"{expect[:12]}) in model store {self.root}; nothing was stored, try again")
            final = self.blob_path(digest)
            if not self._intact(final, digest):
                final.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp, 0o444)
                os.replace(tmp, final)
                fsync_dir(final.parent, strict=True)
            return digest
        except OSError as exc:
            raise self._fail("cannot write", exc, "choose a writable --store DIR") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def put(self, path: str | Path, expect: str | None = None) -> str:
        """Store the bytes of the file at ``path``; its SHA-256. ``expect``: refuse (StoreError) unless the bytes
        read hash to it (the file changed since it was hashed)."""
        try:
            f = open(path, "rb")
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}; nothing was stored") from None
        with f:
            return self._stage(iter(lambda: f.read(_CHUNK), b""), expect)

    def put_bytes(self, data: bytes) -> str:
        return self._stage([data])

    # ---------------------------------------------------------------------------------------------- reading
    @staticmethod
    def _intact(path: Path, digest: str) -> bool:
        try:
            with open(path, "rb") as f:
                h = hashlib.sha256()
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
            return h.hexdigest() == digest
        except OSError:
            return False

    def has(self, digest: str) -> bool:
        """Whether a blob of that digest is present (not re-hashed: reading it verifies it)."""
        return self.blob_path(digest).is_file()

    def _open(self, digest: str):
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise StoreError(f"blob sha256:{digest} is missing from model store {self.root}; push the model again "
                             f"(`embodied-ai model push NAME@VERSION`) from a machine that has the file") from None
        except OSError as exc:
            raise self._fail(f"cannot read blob sha256:{digest}", exc) from None

    def _corrupt(self, digest: str, got: str) -> StoreError:
        return StoreError(f"blob sha256:{digest} in model store {self.root} is corrupt (its bytes hash to "
                          f"{got[:12]}...); nothing was written; push the model again from a machine that has the file "
                          f"(`embodied-ai model push NAME@VERSION` replaces the damaged copy)")

    def read_bytes(self, digest: str, limit: int = 1 << 24) -> bytes:
        """A small blob (a manifest), verified. StoreError when missing, corrupt or larger than ``limit``."""
        with self._open(digest) as f:
            data = f.read(limit + 1)
        got = hashlib.sha256(data).hexdigest()
        if len(data) > limit or got != digest:
            raise self._corrupt(digest, got)
        return data

    def copy_to(self, digest: str, dest: str | Path) -> None:
        """Copy a blob to the file ``dest`` (replaced atomically), verifying its hash on the way: a corrupt blob
        leaves ``dest`` untouched and raises StoreError."""
        dest = Path(dest)
        with self._open(digest) as src:
            try:
                fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
            except OSError as exc:
                raise UserError(f"cannot write to {dest.parent}: {exc.strerror or exc}; choose another --to DIR") \
                    from None
            try:
                h = hashlib.sha256()
                with os.fdopen(fd, "wb") as out:
                    while chunk := src.read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                if h.hexdigest() != digest:
                    raise self._corrupt(digest, h.hexdigest())
                os.chmod(tmp, 0o644 & ~_umask())
                os.replace(tmp, dest)
            except OSError as exc:
                raise UserError(f"cannot write {dest}: {exc.strerror or exc}; choose another --to DIR") from None
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)

    # ---------------------------------------------------------------------------------------------- manifests
    def set_ref(self, identity: str, manifest_digest: str) -> None:
        """File a manifest under a model identity (atomically; the pointer is verified whenever it is read)."""
        check_digest(manifest_digest)
        ref = self._under("models", identity)
        try:
            ref.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=ref.parent, prefix=".ref-")
            with os.fdopen(fd, "w") as f:
                f.write(manifest_digest + "\n")
            os.replace(tmp, ref)
        except OSError as exc:
            raise self._fail("cannot write", exc, "choose a writable --store DIR") from None

    def get_ref(self, identity: str) -> str | None:
        """The manifest digest filed under ``identity``, or None when this store has no such model."""
        try:
            text = self._under("models", identity).read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._fail(f"cannot read the entry of model {identity[:12]}", exc) from None
        if not _DIGEST.fullmatch(text):
            raise StoreError(f"the entry of model {identity[:12]} in model store {self.root} is damaged "
                             f"({self._under('models', identity)}); push the model again")
        return text

    def put_manifest(self, identity: str, manifest: Manifest) -> str:
        """Store a manifest and file it under the model's registry ``identity``; the manifest's digest."""
        digest = self.put_bytes(manifest.payload())
        self.set_ref(identity, digest)
        return digest

    def manifest(self, identity: str) -> Manifest | None:
        """The manifest filed under ``identity`` (its blob verified), or None when this store has no such model. The
        files it lists are checked against the identity by whoever restores them (``services/model_store.py``)."""
        digest = self.get_ref(identity)
        if digest is None:
            return None
        raw = self.read_bytes(digest)
        try:
            manifest = Manifest.model_validate_json(raw)
        except ValidationError:
            raise StoreError(f"blob sha256:{digest} in model store {self.root} is not a model manifest; push the "
                             f"model again") from None
        return manifest


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def open_store(location: str | Path) -> DirStore:
    """The store at ``location``: a directory path or a ``file://`` URL. Other schemes (s3://, gs://, ...) are
    refused in one line until an implementation for them exists."""
    text = str(location).strip()
    if not text:
        raise UserError("empty model store location: pass --store DIR")
    scheme = urlsplit(text).scheme.lower()
    if scheme == "file":
        return DirStore(unquote(urlsplit(text).path))
    if scheme and len(scheme) > 1:  # "C:" is a Windows drive, not a scheme
        raise UserError(f"model store {text}: the {scheme}:// scheme is not supported yet; use a directory "
                        f"(local or a shared mount)")
    return DirStore(text)
