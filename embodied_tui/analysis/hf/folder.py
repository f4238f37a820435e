"""What a Hugging Face model path holds: a folder (``config.json`` + ``model.safetensors`` or shards listed in
``model.safetensors.index.json``), a bare ``config.json`` or a shard index. Found from names inside the folder and
from content (a JSON object), never from the suffix of the path the user gave. Shard names from an index must stay
inside the folder: an index naming ``../secret`` or an absolute path is refused. Symlinks inside the folder are
followed (the Hugging Face cache links every file of a snapshot to its blob), to regular files only.

Identity: a bare config is its own file (path, sha256, size). A folder's ``path`` is the folder, its ``size_bytes``
every file it reads (config, index, weights) and its ``sha256`` the SHA-256 of a manifest of those files, one line
each, ``<name> <sha256 of the file>\n`` in sorted order (``folder_digest``): a changed shard or config changes it."""
from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from embodied_tui.analysis.hf.config import CONFIG_LIMIT, brief
from embodied_tui.errors import AnalysisError
from embodied_tui.hashing import sha256_file

CONFIG = "config.json"
SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"
MAX_SHARDS = 10_000


@dataclass
class HfSource:
    """The files of one Hugging Face model in ``root``: ``main`` is config.json when there is one (else the index or
    the single weight file), ``weights`` the safetensors files (relative to ``root``)."""

    root: Path
    main: Path
    config: Path | None
    weights: list[str] = field(default_factory=list)  # safetensors files, relative to root
    index: str | None = None

    @property
    def format(self) -> str:
        return "hf_folder" if self.weights else "hf_config"

    @property
    def files(self) -> list[str]:
        """Every file the analysis reads, relative to ``root``, sorted: what the folder's hash covers."""
        return sorted({*self.weights, *([self.index] if self.index else []), *([CONFIG] if self.config else [])})

    @property
    def record_path(self) -> Path:
        """What the record's ``path`` names: the config for a bare config, else the folder. The folder's own path is
        resolved, its files' links are not (in the Hugging Face cache they lead to blobs named by hash)."""
        return self.root.resolve() / self.main.name if not self.weights else self.root.resolve()

    def size_bytes(self) -> int:
        return self.main.stat().st_size if not self.weights else sum((self.root / f).stat().st_size for f in self.files)

    def digest(self) -> str:
        """SHA-256 of the config alone (no weights), else of the manifest of every file (module docstring)."""
        if not self.weights:
            return sha256_file(self.main)
        import hashlib

        h = hashlib.sha256()
        for rel in self.files:
            h.update(f"{rel} {sha256_file(self.root / rel)}\n".encode())
        return h.hexdigest()

    def detail(self) -> str:
        if not self.weights:
            return "Hugging Face config.json (architecture only, no weights)"
        shards = f"{len(self.weights)} safetensors shards ({INDEX})" if self.index else "model.safetensors"
        return f"Hugging Face folder: {'config.json + ' if self.config else ''}{shards}"


def _is_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def looks_like_json(path: Path) -> bool:
    """A regular file whose first byte is '{' and that is not a safetensors file (whose first 8 bytes are a length):
    read 16 bytes, nothing more."""
    if not _is_file(path):
        return False
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    return head.lstrip()[:1] == b"{" and b"\x00" not in head[:8]


def find(path: Path) -> HfSource | None:
    """The Hugging Face model at ``path`` (a folder, a config.json or a shard index), or None when ``path`` is some
    other model file. AnalysisError for a folder with neither config.json nor safetensors weights."""
    if path.is_dir():
        return _folder(path, None)
    if not looks_like_json(path):
        return None
    data = _read_json(path)
    if isinstance(data, dict) and "weight_map" in data:
        return _folder(path.parent, path.name)
    if isinstance(data, dict):
        return HfSource(root=path.parent, main=path, config=path)
    raise AnalysisError(f"{path}: a JSON file, but not a Hugging Face config.json (a JSON object)")


def _folder(root: Path, index_name: str | None) -> HfSource:
    config = root / CONFIG if _is_file(root / CONFIG) else None
    index = index_name or (INDEX if _is_file(root / INDEX) else None)
    if index:
        weights = _shards(root, index)
    elif _is_file(root / SINGLE):
        weights = [SINGLE]
    else:
        weights = sorted(p.name for p in root.glob("*.safetensors") if _is_file(p))[:MAX_SHARDS]
        if len(weights) > 1:
            raise AnalysisError(f"{root}: {len(weights)} safetensors files but no {INDEX} saying they are one model; "
                                "give one file, or the folder with its index")
    if config is None and not weights:
        raise AnalysisError(f"{root}: a folder without config.json or safetensors weights; give the model file "
                            "itself, or a Hugging Face model folder")
    main = config or (root / index if index else root / weights[0])
    return HfSource(root=root, main=main, config=config, weights=weights, index=index)


def _shards(root: Path, index: str) -> list[str]:
    data = _read_json(root / index)
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise AnalysisError(f"{root / index}: no 'weight_map' of tensor -> shard file; the index is not a "
                            "safetensors shard index")
    if not all(isinstance(v, str) for v in weight_map.values()):
        raise AnalysisError(f"{root / index}: 'weight_map' must map tensor names to shard file names")
    names = sorted(set(weight_map.values()))
    if len(names) > MAX_SHARDS:
        raise AnalysisError(f"{root / index}: 'weight_map' must map tensor names to at most {MAX_SHARDS} file names")
    for name in names:
        parts = name.replace("\\", "/").split("/")
        if not name or "\x00" in name or os.path.isabs(name) or name.startswith(("/", "\\")) or ".." in parts:
            raise AnalysisError(f"{root / index}: shard '{brief(name)}' is outside the model's folder; refused")
        if not _is_file(root / name):
            raise AnalysisError(f"{root / index}: shard '{brief(name)}' is missing from {root}; finish the "
                                "download (every shard the index names)")
    return names


def _read_json(path: Path):
    try:
        size = path.stat().st_size
        if size > CONFIG_LIMIT * 16:
            raise AnalysisError(f"{path}: {size} bytes is far larger than any Hugging Face JSON file")
        raw = path.read_bytes()
    except OSError as exc:
        raise AnalysisError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=lambda name: None)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise AnalysisError(f"{path}: not valid JSON ({str(exc).splitlines()[0][:80]}); re-download it") from None
