"""Fixtures shared by the test modules: keep them small and generic. What builds them lives in helper modules
(``ask_fixture.py``: the analysed and fitted registry of the ask, Cypher and card tests; ``tui_fixtures.py``: the
registries of the TUI tests; ``pg_server.py``: the throwaway PostgreSQL cluster behind ``pg_url`` and ``any_db``),
imported here only when a test asks for the fixture."""
from __future__ import annotations

from pathlib import Path

import pytest


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "slow: takes more than a few seconds; deselect with -m 'not slow'")
    config.addinivalue_line("markers", "postgresql: runs against a throwaway PostgreSQL cluster (tests/pg_server.py)")


def pytest_collection_modifyitems(items) -> None:
    for item in items:  # `-m postgresql` selects every test that talks to the server
        if "pg_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgresql)


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


@pytest.fixture(scope="session")
def pg_server():
    """This worker's throwaway PostgreSQL cluster (``pg_server.PgServer``), started on first use and stopped and
    deleted at the end of the session. No binaries: the test fails under CI (``CI`` or ``EMBODIED_AI_REQUIRE_PG``
    set), and is skipped with the reason otherwise; binaries that fail to start a cluster are an error."""
    from pg_server import PgMissing, PgServer, required

    try:
        server = PgServer.start()
    except PgMissing as exc:
        if required():
            pytest.fail(f"PostgreSQL is required here (CI / EMBODIED_AI_REQUIRE_PG): {exc}", pytrace=False)
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture()
def pg_url(pg_server) -> str:
    """A fresh empty database on ``pg_server``, as a ``postgresql://`` URL; dropped after the test."""
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url)


@pytest.fixture(params=["tinydb", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def any_db(request, tmp_path: Path) -> str:
    """A registry location on each backend, for ``--db``: a fresh TinyDB file path, then a fresh PostgreSQL URL."""
    if request.param == "tinydb":
        return str(tmp_path / "registry" / "registry.json")
    return request.getfixturevalue("pg_url")
