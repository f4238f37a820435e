"""The throwaway PostgreSQL cluster the registry tests run on (tests/pg_server.py, fixtures in conftest.py)."""
from __future__ import annotations

import os
import pwd

import pytest

pytestmark = pytest.mark.postgresql


def _tables(server, url: str) -> int:
    return int(server.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", url.rsplit("/", 1)[1]))


def test_each_test_gets_a_fresh_empty_database(pg_server, pg_url):
    name = pg_url.rsplit("/", 1)[1]
    assert pg_url == f"postgresql://postgres@127.0.0.1:{pg_server.port}/{name}"
    assert pg_server.psql("SELECT current_database()", name).strip() == name
    assert _tables(pg_server, pg_url) == 0
    pg_server.psql("CREATE TABLE leftover (i int)", name)
    assert _tables(pg_server, pg_url) == 1
    other = pg_server.create_database()  # a second database is separate and empty
    assert other != pg_url and _tables(pg_server, other) == 0
    pg_server.drop_database(other)
    assert other.rsplit("/", 1)[1] not in pg_server.psql("SELECT datname FROM pg_database")


def test_server_runs_unprivileged_on_loopback(pg_server):
    uid = os.stat(pg_server.data_dir).st_uid
    assert uid != 0  # PostgreSQL refuses root; as root we run it as embodiedai-pg
    if os.geteuid() == 0:
        assert pwd.getpwuid(uid).pw_name == "embodiedai-pg"
    assert pg_server.psql("SHOW listen_addresses").strip() == "127.0.0.1"
    assert pg_server.psql("SHOW port").strip() == str(pg_server.port)
