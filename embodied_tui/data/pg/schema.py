"""The PostgreSQL registry's tables, made and upgraded by numbered forward migrations.

Everything lives in the schema ``embodied_ai`` of the database the URL names (so the registry can share a database
with other things). ``schema_version`` lists the migrations applied. On a connection's first use ``migrate`` applies
the missing ones in order, each in its own transaction under an advisory lock, so two processes starting at once on an
empty database do not both create the tables; a database whose version is newer than this embodied-ai knows is refused
with one line (upgrade embodied-ai) and never changed.

Tables (migration 1):

- ``models``: one row per model version. ``record`` is the ``ModelRecord`` as JSON text, exactly as written (type
  ``json``, which keeps the text: key order, and ``seal``, its SHA-256, tells a row written by embodied-ai from one
  edited by hand, which is validated in full on reading). The columns people filter by are copied out of it when it is
  written: ``family``, ``task``, ``format``, ``params``, ``macs`` ... (``numeric``: exact for any count), ``tags``
  (``jsonb``), and lower-cased copies (``*_lc``, ``tags_lc``: ``key`` or ``key=value`` per tag, as the filter
  language folds them with Python's ``str.lower``) that filters are pushed down to (``pushdown``). Unique
  (``name``, ``version``) and (``name``, ``identity``): concurrent writers can never give one name a version twice,
  nor store the same model bytes twice under a name.
- ``model_names``: one row per name ever registered, with its latest version: the row a writer locks
  (``SELECT ... FOR UPDATE``) to number the next version, and the join that lists latest versions.
- ``details``: census and per-layer costs, one row per SHA-256 of their JSON text (``body``, type ``json``): stored
  once however many versions share them, and dropped with the last version that refers to them.
- ``docs``: the generic side tables (hardware, measurements, pipelines, settings ...): one row per document, keyed by
  (table name, document id), in insertion order (``seq``), the document as JSON text.
- ``change_counter``: one row, bumped once per transaction (``last_tx``) by a statement trigger on every write to
  ``models``, ``details`` and ``docs`` (embodied-ai's or a hand edit in psql): the app's cheap "did anything change" poll, and what tells a process that
  its cached listing is stale. The counter row stays locked from a transaction's first write to its commit, so a
  reader that sees the new number also sees the rows (writers take their name and table locks before it, so this
  cannot deadlock).
"""
from __future__ import annotations

from typing import Any

from embodied_tui.errors import RegistryError

SCHEMA = "embodied_ai"
_LOCK = 0x656D6264  # pg_advisory_xact_lock key of migrations ("embd")

_TEXT_LC = ("name_lc", "family_lc", "type_lc", "task_lc", "format_lc", "dtype_lc")
_NUMBERS = ("params", "macs", "flops", "other_flops", "weight_bytes", "activation_bytes", "size_bytes")

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "models, details, generic tables, change counter", [
        "CREATE TABLE embodied_ai.change_counter (id int PRIMARY KEY CHECK (id = 1), n bigint NOT NULL, "
        "last_tx bigint)",
        "INSERT INTO embodied_ai.change_counter (id, n) VALUES (1, 0)",
        "CREATE TABLE embodied_ai.details (sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'), "
        "body json NOT NULL)",
        "CREATE TABLE embodied_ai.model_names (name text PRIMARY KEY, latest int NOT NULL DEFAULT 0)",
        "CREATE TABLE embodied_ai.models ("
        " name text NOT NULL REFERENCES embodied_ai.model_names (name),"
        " version int NOT NULL CHECK (version >= 1),"
        " identity text NOT NULL,"
        " details text REFERENCES embodied_ai.details (sha256),"
        " sha256 text NOT NULL, format text, family text, type text, task text, dtype text,"
        + "".join(f" {n} numeric," for n in _NUMBERS)
        + " registered_at text NOT NULL, description text NOT NULL, tags jsonb NOT NULL,"
        + "".join(f" {c} text," for c in _TEXT_LC)
        + " tags_lc text[] NOT NULL, tag_values_lc jsonb NOT NULL,"
        " record json NOT NULL, seal text NOT NULL,"
        " PRIMARY KEY (name, version), UNIQUE (name, identity))",
        "CREATE INDEX models_family ON embodied_ai.models (family_lc)",
        "CREATE INDEX models_task ON embodied_ai.models (task_lc)",
        "CREATE INDEX models_format ON embodied_ai.models (format_lc)",
        "CREATE INDEX models_type ON embodied_ai.models (type_lc)",
        "CREATE INDEX models_params ON embodied_ai.models (params)",
        "CREATE INDEX models_macs ON embodied_ai.models (macs)",
        "CREATE INDEX models_sha256 ON embodied_ai.models (sha256)",
        "CREATE INDEX models_details ON embodied_ai.models (details)",
        "CREATE INDEX models_tags ON embodied_ai.models USING gin (tags_lc)",
        "CREATE INDEX models_tag_values ON embodied_ai.models USING gin (tag_values_lc)",
        "CREATE SEQUENCE embodied_ai.docs_seq",
        "CREATE TABLE embodied_ai.docs (tbl text NOT NULL, id int NOT NULL CHECK (id >= 1),"
        " seq bigint NOT NULL DEFAULT nextval('embodied_ai.docs_seq'), doc json NOT NULL, PRIMARY KEY (tbl, id))",
        "CREATE INDEX docs_order ON embodied_ai.docs (tbl, seq)",
        "CREATE FUNCTION embodied_ai.bump_change_counter() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN UPDATE embodied_ai.change_counter SET n = n + 1, last_tx = txid_current() "
        "WHERE id = 1 AND last_tx IS DISTINCT FROM txid_current(); RETURN NULL; END $$",
        *(f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON embodied_ai.{table} "
          f"FOR EACH STATEMENT EXECUTE FUNCTION embodied_ai.bump_change_counter()"
          for table in ("models", "details", "docs")),
    ]),
]
LATEST = MIGRATIONS[-1][0]


def _current(conn: Any) -> int | None:
    """The schema version applied, or None when the tables are not there yet."""
    import psycopg

    try:
        row = conn.execute("SELECT max(version) FROM embodied_ai.schema_version").fetchone()
    except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
        return None
    return row[0]


def _refuse_newer(version: int | None, shown_url: str) -> None:
    if version is not None and version > LATEST:
        raise RegistryError(f"PostgreSQL registry {shown_url} has schema version {version}, newer than the version "
                            f"{LATEST} this embodied-ai reads; upgrade embodied-ai (the database was not changed)")


def migrate(conn: Any, url: str) -> int:
    """Bring the database at ``conn`` (autocommit) to ``LATEST``; the version it had. Each migration runs in its own
    transaction holding the advisory lock, and re-reads the version under it (another process may have just applied
    it)."""
    from embodied_tui.data.pg.connect import shown

    before = _current(conn)
    _refuse_newer(before, shown(url))
    if before == LATEST:
        return before
    for number, what, statements in MIGRATIONS:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            conn.execute("CREATE TABLE IF NOT EXISTS embodied_ai.schema_version (version int PRIMARY KEY, "
                         "what text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
            now = _current(conn) or 0
            _refuse_newer(now, shown(url))
            if now >= number:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO embodied_ai.schema_version (version, what) VALUES (%s, %s)", (number, what))
    return before or 0
