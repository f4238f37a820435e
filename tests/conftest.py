"""Fixtures shared by the test modules: keep them small and generic. What builds them lives in helper modules
(``ask_fixture.py``: the analysed and fitted registry of the ask, Cypher and card tests; ``tui_fixtures.py``: the
registries of the TUI tests), imported here only when a test asks for the fixture."""
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


@pytest.fixture()
def one_line_error():
    """A checker for a refused CLI call: ``one_line_error(cli(...), "needle", ...)`` asserts a nonzero exit and one
    non-blank line starting ``error: `` with no traceback, containing every needle, and returns the text."""
    def check(result, *needles: str) -> str:
        text = result.output.strip()
        assert result.exit_code != 0, text
        assert "Traceback" not in text
        lines = [line for line in text.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), text
        for needle in needles:
            assert needle in text, (needle, text)
        return text
    return check


@pytest.fixture()
def registry(tmp_path: Path, tmp_path_factory):
    """A private copy of a registry of real analyses of ``tui_fixtures.MODEL_SET`` (analysed once per test run)."""
    from tui_fixtures import analysed_registry_copy

    return analysed_registry_copy(tmp_path / "reg", tmp_path_factory)


@pytest.fixture(scope="module")
def fx():
    """The shared analysed and fitted registry of ``ask_fixture`` (built once per process; read-only)."""
    from ask_fixture import registry_fixture

    return registry_fixture()


@pytest.fixture(scope="module")
def graph(fx):
    """The model-hardware graph of the ``fx`` registry."""
    from embodied_tui.services.graph import load_graph

    return load_graph(fx.db)
