"""Fixtures shared by every test module: keep them small and generic."""
from __future__ import annotations

from pathlib import Path

import pytest


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "slow: takes more than a few seconds; deselect with -m 'not slow'")


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    """A registry path in a fresh directory (the file does not exist yet)."""
    return tmp_path / "registry" / "registry.json"


@pytest.fixture()
def cli(db: Path):
    """Run the real CLI against ``db``: ``cli("model", "list", input="y\\n")`` -> click's Result."""
    from click.testing import CliRunner

    from embodied_tui.cli import main

    def run(*args, input: str | None = None, registry: Path | None = None):
        return CliRunner().invoke(main, ["--db", str(registry or db), *map(str, args)], input=input)
    return run
