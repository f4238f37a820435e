"""An Input that completes filesystem paths as you type (right arrow or end accepts the suggestion)."""
from __future__ import annotations

import os

from textual.suggester import Suggester
from textual.widgets import Input

MODEL_SUFFIXES = (".pt", ".pth", ".pt2", ".onnx", ".safetensors", ".bin", ".ckpt")


class PathSuggester(Suggester):
    """Suggest the first entry of the typed directory that starts with the typed name: directories (with a trailing
    '/') and model files first, then anything else. Hidden entries only when the name starts with '.'."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        directory, prefix = os.path.split(os.path.expanduser(value))
        try:
            with os.scandir(directory or ".") as it:
                entries = [(e.name, e.is_dir()) for e in it if e.name.startswith(prefix)]
        except OSError:
            return None
        if not prefix.startswith("."):
            entries = [(name, is_dir) for name, is_dir in entries if not name.startswith(".")]
        if not entries:
            return None

        def rank(entry: tuple[str, bool]) -> tuple[int, str]:
            name, is_dir = entry
            return (0 if is_dir or name.lower().endswith(MODEL_SUFFIXES) else 1, name)

        name, is_dir = min(entries, key=rank)
        completed = value + name[len(prefix):] + ("/" if is_dir else "")
        return completed if completed != value else None


class PathInput(Input):
    def __init__(self, **kwargs) -> None:
        super().__init__(suggester=PathSuggester(), **kwargs)
