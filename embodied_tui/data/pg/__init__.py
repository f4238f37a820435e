"""The PostgreSQL registry backend: the same interface as ``data.store.Registry`` (``data.backend.RegistryBackend``) on
a server database, for a team. ``--db postgresql://user@host/dbname`` (or ``$EMBODIED_AI_DB``) selects it.

- ``connect``: URLs (parsing, the password left out of every message), one connection per process and thread,
  transactions retried on a serialization failure, server errors as one ``RegistryError`` line.
- ``schema``: the tables, created and upgraded by numbered forward migrations under an advisory lock.
- ``registry``: ``PgRegistry``, the model registry; ``tables``: the generic side tables; ``pushdown``: the filter
  language as SQL; ``edges``: the shared fit-edge cache.

psycopg 3 is imported only when a PostgreSQL URL is used: the TinyDB default never loads it.
"""
