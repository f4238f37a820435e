"""Where a fit reads a model's per-layer costs from: the layer columns of its details (``perf.layer_columns``), kept
by details content in the fit store beside a TinyDB registry (``services.fit_store``, table ``layers``), so a fit over
10,000 models reads their layers in one query per chunk of models instead of parsing 10,000 details files (pydantic,
about 0.4 ms each).

**Key.** The details digest (``Registry._details_digest``: the sha256 of the details file, its content) and
``layer_columns.CODE_VERSION``: columns made by other rules are made again. A row also holds the details file's size:
a file gone or of another size since (moved, damaged) is not read from the cache but parsed as before, which warns
and falls back to the record's totals. A file damaged in place at the same size is not noticed (that would take
reading and hashing every file): its cached columns, those of the registered content, are used.

**Filled** lazily (a fit that parses a model's details stores its columns: ``LayerSource.flush``) and at registration
(``remember``: ``services.models`` calls it after a model is stored; it never makes registration fail). A record
without details (its fit uses the totals' pseudo-layer, ``roofline.model_work``) or whose layers cannot be encoded
exactly (``layer_columns.encode``) has no columns: its fit reads the layer costs as before.

**Local only.** A PostgreSQL registry's edge store (``data.pg.edges.PgFitStore``) has no ``layers`` table: there the
columns are made from the parsed details in each process (kept for ``KEPT`` details while it runs), and nothing is
persisted. Rows of details no longer registered stay (a few KB each) until the store is rebuilt.
"""
from __future__ import annotations

import logging
import os
from collections import OrderedDict
from typing import Any, Callable, Iterable

from embodied_tui.perf.layer_columns import CODE_VERSION, LayerColumns, encode, from_bytes, to_bytes

KEPT = 1024  # details whose columns one process keeps (a chunk of models: services.graph.FIT_CHUNK)
_log = logging.getLogger(__name__)


class LayerSource:
    """The layer columns of records' details: kept here, else read from ``store`` (when it keeps them), else made
    from the parsed details (and stored by ``flush``)."""

    def __init__(self, reg, store=None) -> None:
        self.reg = reg
        self.store = store if store is not None and hasattr(store, "layer_columns") else None
        # kept in the order read: the oldest goes first (an OrderedDict: a dict's first key after 10,000 deletions
        # from its front takes a scan past them, 0.1 s over a question at 10,000 models)
        self.kept: OrderedDict[str, LayerColumns] = OrderedDict()
        self.asked: set[str] = set()  # digests looked up in the store already (found or not)
        self.pending: dict[str, tuple[int, bytes]] = {}  # made here, to be stored
        self.digests: dict[tuple, str | None] | None = None  # (name, version, sha256) -> details digest
        self.folder: str | None = None  # of the details files

    def digest(self, record) -> str | None:
        """The digest of the record's details (None: none stored), from one index of the registry's documents (a
        TinyDB registry's ``_details_digest`` checks the file on every call: 40 us, 0.4 s at 10,000 models)."""
        if self.digests is None:
            docs = getattr(self.reg, "_docs", None)
            self.digests = {(d.record.name, d.record.version, d.record.sha256): d.details
                            for d in (docs() if docs is not None else ()) if hasattr(d, "record")}
        key = (record.name, record.version, record.sha256)
        if key in self.digests:
            return self.digests[key]
        found = getattr(self.reg, "_details_digest", None)
        return None if found is None else found(record)

    def _size(self, digest: str) -> int | None:
        """The size of the details file (None: gone, or a registry without files)."""
        if self.folder is None:
            path_of = getattr(self.reg, "_details_path", None)
            if path_of is None:
                return None
            self.folder = os.path.dirname(path_of(digest))  # <registry>.d, the folder of every details file
        try:
            return os.stat(os.path.join(self.folder, digest + ".json")).st_size
        except OSError:
            return None

    def prefetch(self, records: Iterable) -> None:
        """Read the stored columns of the records' details in one query (those not kept or looked up already)."""
        if self.store is None:
            return
        wanted = list(dict.fromkeys(d for r in records if (d := self.digest(r)) is not None
                                    and d not in self.kept and d not in self.asked))
        if not wanted:
            return
        self.asked.update(wanted)
        for digest, (size, blob) in self.store.layer_columns(CODE_VERSION, wanted).items():
            table = from_bytes(blob)
            if table is not None and size == self._size(digest):
                self._keep(digest, LayerColumns(table))

    def columns(self, record, parse: Callable[[Any], list]) -> LayerColumns | None:
        """The columns of ``record``'s details; None for a record without details, or whose layer costs (``parse``:
        ``FitContext.layer_costs``) are gone, damaged or cannot be encoded: its caller reads them as before."""
        digest = self.digest(record)
        if digest is None:
            return None
        found = self.kept.get(digest)
        if found is None and digest not in self.asked:
            self.prefetch([record])
            found = self.kept.get(digest)
        if found is None:
            table = encode(parse(record))
            if table is None:
                return None
            found = self._keep(digest, LayerColumns(table))
            size = self._size(digest)
            if self.store is not None and size is not None:
                self.pending[digest] = (size, to_bytes(table))
        return found

    def _keep(self, digest: str, columns: LayerColumns) -> LayerColumns:
        if len(self.kept) >= KEPT:
            gone, _ = self.kept.popitem(last=False)
            self.asked.discard(gone)  # read from the store again if asked again
        self.kept[digest] = columns
        return columns

    def flush(self) -> None:
        """Store the columns made since the last flush."""
        if self.store is not None and self.pending:
            self.store.put_layer_columns(CODE_VERSION, [(d, size, blob) for d, (size, blob) in self.pending.items()])
        self.pending.clear()


def remember(reg, entries: Iterable[tuple[Any, Any]]) -> None:
    """Store the layer columns of newly registered models ((record, its ``ModelDetails`` or None: read from the
    registry then) pairs) in the registry's fit store, so the first fit over them reads no details file. Best effort:
    never raises (a warning is logged); nothing for a PostgreSQL registry (see the module docstring)."""
    try:
        from embodied_tui.data.backend import is_server_registry
        from embodied_tui.services.fit_store import FitStore
        from embodied_tui.services.graph import fit_cache_path

        if is_server_registry(reg):
            return
        rows = []
        seen: set[str] = set()
        for record, details in entries:
            digest = reg._details_digest(record)
            if digest is None or digest in seen:
                continue
            seen.add(digest)
            if details is None:
                details = reg.details(record, strict=False)
            table = encode(details.layer_costs) if details is not None else None
            if table is not None:
                rows.append((digest, os.stat(reg._details_path(digest)).st_size, to_bytes(table)))
        if rows:
            store = FitStore(fit_cache_path(reg))
            try:
                store.put_layer_columns(CODE_VERSION, rows)
            finally:
                store.close()
    except Exception as exc:  # noqa: BLE001 - a cache: registration goes on without it
        _log.warning("layer columns of the registered models not stored (the first fit parses them): %s", exc)
