"""Content identity: a streaming SHA-256 of a whole file, shared by the analyser and the registry."""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Streaming SHA-256 of a whole file (1 MiB reads, constant memory). Regular files only: a FIFO or a device
    (``/dev/zero``) would block or never end, so anything else raises ``OSError`` without being read."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(f"{path} is not a regular file")
    # O_NONBLOCK: should the path be swapped for a FIFO after the check, opening it still does not wait for a writer;
    # the fstat below then refuses it before any read
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError(f"{path} is not a regular file")
        h = hashlib.sha256()
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def within(base: str | Path, rel: str) -> Path | None:
    """``base / rel`` when ``rel`` names a file inside the folder ``base``, else None: what onnxruntime accepts as an
    ONNX external data location (relative, no ``..``, no symlink leading out). Symlinks are followed one link at a
    time from ``base``, reading each link's text, so nothing outside ``base`` is ever stat-ed or read."""
    if not rel or "\x00" in rel or os.path.isabs(rel) or rel.startswith(("/", "\\")):
        return None
    if ".." in rel.replace("\\", "/").split("/"):
        return None
    root = os.path.realpath(base)
    todo = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")]
    current, hops = root, 0
    while todo:
        part = todo.pop(0)
        if part == "..":  # only from a link's text
            if current == root:
                return None
            current = os.path.dirname(current)
            continue
        step = os.path.join(current, part)
        if not os.path.islink(step):  # an lstat inside base
            current = step
            continue
        hops += 1
        link = os.readlink(step)
        if hops > 40:
            return None
        if os.path.isabs(link):
            link = os.path.normpath(link)
            if link != root and not link.startswith(root + os.sep):
                return None
            current, link = root, os.path.relpath(link, root)
        todo = [p for p in link.replace("\\", "/").split("/") if p not in ("", ".")] + todo
    return Path(base) / rel


def sha256_inside(base: str | Path, rel: str) -> str:
    """``sha256_file(base / rel)`` for an external data file of a model in ``base``; ``OSError`` without reading
    anything when ``rel`` leads outside ``base`` (see ``within``) or is not a regular file."""
    target = within(base, rel)
    if target is None:
        raise OSError(f"{rel} is outside the model's folder {base}")
    return sha256_file(target)
