"""The model store's verbs: push a registered model's files into a content-addressed store, pull them out anywhere.

The store (``data/blob_store.py``) is chosen per call: ``store=`` (the ``--store DIR`` option), else the registry's
setting ``model_store`` (``model store set DIR``, in the ``settings`` side table, so every user of a shared
registry uses the same store). A model is filed in the store under its registry identity (its file's SHA-256, folded
with its ONNX external data's hashes), so any registry holding the record (the same PostgreSQL server, or a TinyDB
file that imported a bundle) can pull it.

- ``push``: re-hash the file on disk and refuse if it no longer has the bytes the registry holds; then store the
  model file, each external data file and a manifest, each verified as it is written.
- ``pull``: copy the files out under the record's file name and external data names, every blob re-hashed on the way
  and the restored set checked against the registry's identity; nothing is written unless every file is good, and an
  existing file with other bytes is never overwritten.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from embodied_tui.data.blob_store import DirStore, Manifest, StoredFile, StoreError, open_store
from embodied_tui.data.records import ModelRecord
from embodied_tui.data.store import Registry, identity_for
from embodied_tui.errors import RegistryError, UserError
from embodied_tui.hashing import sha256_file, sha256_inside, within
from embodied_tui.services import settings
from embodied_tui.services.models import get, registry

SETTING = "model_store"
_SET_HINT = "pass --store DIR, or set the registry's store once with `embodied-ai model store set DIR`"


@dataclass
class FileResult:
    """One file of a push or pull: its name (relative to the model's folder), hash, size and what happened
    ("stored" | "already stored" on push; "written" | "already there" on pull)."""
    name: str
    sha256: str
    size_bytes: int
    status: str


@dataclass
class Transfer:
    record: ModelRecord
    store: str
    manifest: str  # SHA-256 of the manifest blob
    files: list[FileResult] = field(default_factory=list)
    folder: str = ""  # pull: where the files are

    def as_json(self) -> dict:
        return {"name": self.record.name, "version": self.record.version, "sha256": self.record.sha256,
                "store": self.store, "manifest": self.manifest, "folder": self.folder or None,
                "files": [vars(f) for f in self.files]}


# ------------------------------------------------------------------------------------------------ the store setting
def configured(db: Registry | str | Path | None = None) -> str | None:
    """The registry's store location (``model store set``), or None."""
    value = settings.get(db, SETTING)
    return value if isinstance(value, str) and value else None


def set_store(db: Registry | str | Path | None, location: str | Path) -> DirStore:
    """Make ``location`` the registry's model store (created and checked writable first)."""
    store = open_store(location)
    store.check_writable()
    settings.put(db, SETTING, store.location)
    return store


def unset_store(db: Registry | str | Path | None = None) -> bool:
    return settings.remove(db, SETTING)


def store_for(db: Registry | str | Path | None, store: str | Path | None = None) -> DirStore:
    """``store`` when given, else the registry's setting; UserError saying how to choose one when neither is."""
    if store:
        return open_store(store)
    location = configured(db)
    if location is None:
        raise UserError(f"no model store chosen: {_SET_HINT}")
    return open_store(location)


def store_for_register(db: Registry | str | Path | None, store: str | None, skip: bool) -> DirStore | None:
    """Where `model register` copies the file: nowhere with ``skip``; ``store`` ("" = the registry's setting, which
    must exist) when given; else the registry's setting when there is one. Checked writable before the analysis."""
    if skip:
        if store is not None:
            raise UserError("--store and --no-store contradict each other: pass one")
        return None
    if store is None and configured(db) is None:
        return None
    chosen = store_for(db, store or None)
    chosen.check_writable()
    return chosen


# ------------------------------------------------------------------------------------------------ push
def _label(record: ModelRecord) -> str:
    return f"{record.name} v{record.version}"


def _file_name(record: ModelRecord) -> str:
    """The model file's own name, from the record's path (POSIX or Windows)."""
    return re.split(r"[\\/]", record.path.rstrip("\\/"))[-1]


def _identity(reg: Registry, record: ModelRecord) -> str:
    identity = reg.identity(record)
    if identity is None:
        if record.external_data:
            raise RegistryError(f"the registry holds no identity for {_label(record)}; register it again")
        identity = record.sha256
    return identity


def push(ref: str, db: Registry | str | Path | None = None, store: str | Path | None = None) -> Transfer:
    """Store the files of the registered model ``ref`` (NAME, NAME@3, NAME@ALIAS) in the model store. Refused in one
    line when the file on disk (or an external data file) no longer has the bytes it was registered with."""
    reg = registry(db)
    record = get(ref, None, reg)
    target = store_for(reg, store)
    path = Path(record.path)
    if record.format == "hf_folder" or path.is_dir():
        raise UserError(f"{_label(record)} is a folder ({path}): the model store holds model files (with their ONNX "
                        f"external data); copy the folder itself")
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise UserError(f"cannot read {path}, the file of {_label(record)}: {exc.strerror or exc}; push from the "
                        f"machine that has it") from None
    if digest != record.sha256:
        raise UserError(f"{path} has changed since {_label(record)} was registered (sha256 now {digest[:12]}, "
                        f"registered {record.sha256[:12]}); nothing was stored; register it again (a new version) "
                        f"and push that")
    identity = _identity(reg, record)
    if identity_for(path, digest, record.external_data) != identity:
        raise UserError(f"the external data of {_label(record)} ({', '.join(record.external_data)}, beside {path}) "
                        f"has changed since it was registered; nothing was stored; register it again and push that")
    target.check_writable()
    files = [_put(target, path, "", digest)]
    for rel in sorted(record.external_data):
        ext_digest = sha256_inside(path.parent, rel)
        files.append(_put(target, within(path.parent, rel), rel, ext_digest))
    manifest = Manifest(model=StoredFile(sha256=digest, size_bytes=files[0].size_bytes),
                        external_data=[StoredFile(path=f.name, sha256=f.sha256, size_bytes=f.size_bytes)
                                       for f in files[1:]])
    manifest_digest = target.put_manifest(identity, manifest)
    files[0].name = _file_name(record)
    return Transfer(record=record, store=target.location, manifest=manifest_digest, files=files)


def _put(target: DirStore, path: Path, name: str, digest: str) -> FileResult:
    present = target.has(digest)
    target.put(path, expect=digest)  # re-verified while copied: a file changing under us is refused
    return FileResult(name=name, sha256=digest, size_bytes=os.path.getsize(path),
                      status="already stored" if present else "stored")


# ------------------------------------------------------------------------------------------------ pull
def pull(ref: str, db: Registry | str | Path | None = None, to: str | Path | None = None,
         store: str | Path | None = None) -> Transfer:
    """Copy the files of the registered model ``ref`` from the model store into ``to`` (default: the current
    directory) under their original names, every byte verified. Refused in one line, with nothing written, when a
    blob is missing or corrupt, or a file of that name with other bytes is already there."""
    reg = registry(db)
    record = get(ref, None, reg)
    source = store_for(reg, store)
    identity = _identity(reg, record)
    manifest = source.manifest(identity)
    if manifest is None:
        raise UserError(f"{_label(record)} is not in model store {source.location}; push it first from a machine "
                        f"that has the file: `embodied-ai model push {record.name}@{record.version}`")
    if manifest.model.sha256 != record.sha256 or \
            sorted(f.path for f in manifest.external_data) != sorted(record.external_data):
        raise StoreError(f"the entry of {_label(record)} in model store {source.location} lists other files than "
                         f"the registry holds; push the model again")
    folder = Path(to).expanduser() if to else Path.cwd()
    wanted = [(_file_name(record), manifest.model)] + [(f.path, f) for f in manifest.external_data]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {folder}: {exc.strerror or exc}; choose another --to DIR") from None
    files, todo = [], []
    for name, item in wanted:
        dest = within(folder, name)
        if dest is None:
            raise StoreError(f"{_label(record)} names a file outside its folder ({name}); nothing was written")
        status = _existing(dest, item.sha256, record)
        files.append(FileResult(name=name, sha256=item.sha256, size_bytes=item.size_bytes, status=status))
        if status == "written":
            todo.append((dest, item.sha256))
    _restore(source, folder, todo)
    model_path = folder / _file_name(record)
    if identity_for(model_path, record.sha256, record.external_data) != identity:
        raise StoreError(f"the files pulled into {folder} do not have the identity of {_label(record)}; "
                         f"push the model again")
    return Transfer(record=record, store=source.location, manifest=source.get_ref(identity) or "", files=files,
                    folder=str(folder.absolute()))


def _existing(dest: Path, digest: str, record: ModelRecord) -> str:
    """"written" when ``dest`` is free, "already there" when it holds these bytes; refused otherwise."""
    if not os.path.lexists(dest):
        return "written"
    try:
        same = sha256_file(dest) == digest
    except OSError:
        same = False
    if not same:
        raise UserError(f"{dest} already exists with other bytes than {_label(record)}; nothing was written; move "
                        f"it away or pull with --to another DIR")
    return "already there"


def _restore(source: DirStore, folder: Path, todo: list[tuple[Path, str]]) -> None:
    """Copy every blob into a staging folder inside ``folder`` (each verified), then move them into place: a bad
    blob leaves ``folder`` as it was."""
    if not todo:
        return
    try:
        staging = Path(tempfile.mkdtemp(dir=folder, prefix=".embodied-ai-pull-"))
    except OSError as exc:
        raise UserError(f"cannot write to {folder}: {exc.strerror or exc}; choose another --to DIR") from None
    try:
        staged = []
        for i, (dest, digest) in enumerate(todo):
            part = staging / str(i)
            source.copy_to(digest, part)
            staged.append((part, dest))
        for part, dest in staged:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, dest)
    except OSError as exc:
        raise UserError(f"cannot write into {folder}: {exc.strerror or exc}; choose another --to DIR") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
