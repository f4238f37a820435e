"""The persistent fit-edge cache: what the registry graph reads of each fit row (``ask.graph.FitEdge``), in an SQLite
file beside the registry (``<registry>.edges.sqlite``).

**Key.** A row is stored under (model key, device id, device version, power mode, precision): one row each. The
*model key* is the sha256 of the model's record (its file's sha256, name, version, shapes and counts: everything a fit
reads of it). The *device version* is the sha256 of what a fit on that device depends on besides the model: the code
that computes rows (size and mtime of the analysis, data, perf and services modules), the columns stored, the
device's catalog entry (modes, peaks, calibrations), the stored measurements on that device and the records of the
models they were taken on (a measurement fitted on one model moves the efficiency of every model on that device, and
nothing else: ``services.fit.FitContext._efficiency`` reads only the device's own measurements). So adding a model
computes only its rows, adding a measurement on one device recomputes only that device's rows, and a changed catalog
or code recomputes what it touches when it is next asked about.

**Layout: rows in column chunks.** The two 64-hex digests are stored once each: ``keys`` maps a model key to a small
integer (``key_id``, never reused) and ``versions`` a (device id, device version) to one (``version_id``); ``targets``
maps a (power mode, precision) to a ``target_id``. The rows of one ``put`` (one device version; up to ``CHUNK_ROWS``)
are one row of ``chunks``: their key ids and target ids as two packed integer arrays (all ``put`` and ``done`` read),
and the ``ROW_KEYS`` columns column by column in one blob (``_encode``: a float column as packed float64, a bool
column as packed bytes, a text column as codes into the chunk's own list of texts, a column of Nones as nothing; any
other value, an int where floats are expected, keeps its exact type through ``marshal``), so every value comes back
with its type and bits. Filtering, ordering and grouping (``rows``) run over those columns in this process, each
column read from the blob when first needed (SQLite's incremental blob I/O): a count over latencies reads the ids and
the latency column; a top-k's first rows are read item by item.

Why not one SQLite row per fit row (formats 3 and 4): a cold question at 10,000 models x 47 targets wrote 470,000 rows
into a table and two indexes, 3.9-5.0 s of its 6-14 s (``executemany`` alone 2.4-2.7 s). As chunks the same rows are
ten blobs; reading them back for a question decodes the columns it tests (a few array copies) and makes row tuples only
of the rows it keeps. ``benchmarks/fit_store_speed.py`` times this layout against another module (the previous one:
``git show <commit>:embodied_tui/services/fit_store.py``).

**Cost** (2 shared cores, the same minutes, so read the ratios). ``benchmarks/fit_store_speed.py`` (10,000 models x
69 targets, 690,000 rows put 1,024 models per device per transaction): format 4 -> this layout: put 6.47 -> 2.59 s,
every row streamed 4.98 -> 1.08 s, a narrow read (100 keys, one target, a ``where``) 0.87 -> 0.17 s, ``done`` 1.01 ->
0.35 s, ``complete`` 0.27 -> 0.50 s (counted here, not by SQLite), file 134 -> 83 MB (64 KiB pages: a 5 MB chunk is 80
of them to walk; with 4 KiB pages the narrow read took 0.40 s). ``benchmarks/ask_speed.py --scale 10000``, first
question on an empty store, app path / CLI: "how many models run under 1 ms on the orin nano?" 6.27 / 7.23 s -> 2.89
/ 3.79 s; "which models run under 1 ms on the orin nano in fp16?" (30,004 rows) 2.75 / 3.87 s -> 2.26 / 3.09 s; asked
again 0.38 / 1.00 s -> 0.38 / 1.02 s and 0.72 / 1.38 s -> 0.58 / 1.19 s.

**Granularity.** A question computes only the (model, device, mode, precision) targets it can match; each ``put`` is
one transaction that takes the write lock first (``BEGIN IMMEDIATE``) and stores only the targets no process stored
meanwhile. Rows of device versions no longer current stay until ``prune`` removes them (when something is computed).

A store that cannot be opened or written is replaced by an in-memory one, and a store written by another layout
(``STORE_FORMAT``, the columns) is emptied and rebuilt on open, never misread: the cache only saves time.

**Public API** (what ``services.graph`` calls; another backend, a team registry's, offers the same):
``FitStore(path)``, ``close()``; ``complete(device, version, targets)`` -> the model keys stored for every (mode,
precision) of ``targets``; ``mark(device, version, digest)`` and ``marked(...)``: a set of model keys x targets the
caller names by a digest is all stored (a repeated question skips ``complete``); ``done(device, version)`` -> every
stored (model key, mode, precision); ``put(device, version, [(model key, FitEdge)])`` -> whether it was written;
``rows(device, version, keys=, targets=, where=, skip=, order=, one_per_key=)`` -> (model key, FitEdge) streamed,
``where`` being (column, op, value) with op in ``<, <=, >, >=, =, IN`` on ``ROW_KEYS`` columns, read as Cypher reads
them (a comparison with null is false); ``versions()`` -> the stored (device, version) pairs; ``prune(versions)``;
``summary(key)`` and ``put_summary(key, body)`` (the registry's summary for questions, ``services.summary``: TinyDB
registries only); ``layer_columns(version, digests)`` and ``put_layer_columns(version, rows)`` (each details file's
per-layer columns, ``services.layer_store``: this store only; another backend may lack them, and fits then parse the
details). Nothing else of SQLite leaves this module.
"""
from __future__ import annotations

import json
import marshal
import math
import operator
import sqlite3
from array import array
from collections import Counter
from functools import partial
from itertools import compress, repeat
from operator import itemgetter
from pathlib import Path
from typing import Callable, Container, Iterable, Iterator, Sequence

from embodied_tui.ask.graph import ROW_KEYS, FitEdge

STORE_FORMAT = "5"  # 5: rows in column chunks; 4: one SQLite row per fit row, integer ids; 3: 64-hex keys in rows
_FORMAT = STORE_FORMAT + ":" + ", ".join(ROW_KEYS)
# every table a layout of this store has had (but meta)
_TABLES = ("edges", "done", "keys", "versions", "layers", "complete_sets", "targets", "chunks")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS keys (key_id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE)",
    "CREATE TABLE IF NOT EXISTS versions (version_id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, "
    "version TEXT NOT NULL, UNIQUE (device, version))",
    "CREATE TABLE IF NOT EXISTS targets (target_id INTEGER PRIMARY KEY AUTOINCREMENT, power_mode TEXT NOT NULL, "
    "precision TEXT NOT NULL, UNIQUE (power_mode, precision))",
    # min_key/max_key: the chunk's key id range, so a put of new models reads no earlier chunk to find its targets
    # already stored
    "CREATE TABLE IF NOT EXISTS chunks (chunk_id INTEGER PRIMARY KEY AUTOINCREMENT, version_id INTEGER NOT NULL, "
    "n INTEGER NOT NULL, min_key INTEGER NOT NULL, max_key INTEGER NOT NULL, key_ids BLOB NOT NULL, "
    "target_ids BLOB NOT NULL, header TEXT NOT NULL, body BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS chunks_version ON chunks (version_id, min_key, max_key)",
)
_ADDED = (
    # the registry's summary for questions (``services.summary``): one row, the latest registry file's
    "CREATE TABLE IF NOT EXISTS summary (key TEXT PRIMARY KEY, body TEXT NOT NULL)",
    # each details file's per-layer columns (``services.layer_store``), by its content digest
    "CREATE TABLE IF NOT EXISTS layers (digest TEXT PRIMARY KEY, version TEXT NOT NULL, size INTEGER NOT NULL, "
    "body BLOB NOT NULL)",
    # a set of (model keys x targets) whose rows are all stored at a device version (``marked``/``mark``), with how
    # many rows that version held then
    "CREATE TABLE IF NOT EXISTS complete_sets (version_id INTEGER NOT NULL, digest TEXT NOT NULL, "
    "rows INTEGER NOT NULL, PRIMARY KEY (version_id, digest))")
_VERSION = "(SELECT version_id FROM versions WHERE device = ? AND version = ?)"  # one statement: one snapshot
_OPS = ("<", "<=", ">", ">=", "=", "IN")
_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "=": operator.eq}
PAGE_SIZE = 1 << 16  # SQLite's largest: a chunk of 47,000 rows (~5 MB) is 80 pages to walk, not 1,300
CHUNK_ROWS = 1 << 16  # rows per chunk at most (a put of more writes several)
_IDS = "q"  # array typecode of key and target ids (int64)
_TYPECODE = {"f8": "d", "b1": "b", "txt": "i"}  # a packed column kind's array typecode
_WIDTH = {"f8": 8, "b1": 1, "txt": 4}
_FEW = 16  # rows asked of a column below n / _FEW are read item by item, else the column whole
_BOOL_CODE = {True: 1, False: 0, None: -1}
_BOOL_VALUE = (None, False, True)  # by code + 1
_not_none = partial(operator.is_not, None)
_MODE, _PRECISION = ROW_KEYS.index("power_mode"), ROW_KEYS.index("precision")


def _encode(values: Sequence) -> tuple[list, bytes]:
    """One column of a chunk: its header entry [kind, extra] and its bytes. Kinds: ``none`` (every value None: no
    bytes), ``f8`` (floats, None as NaN: ``extra`` says whether any is None; a column holding a NaN of its own is
    kept exactly as ``py``), ``b1`` (bools and None as 1/0/-1), ``txt`` (texts and None as int32 codes into
    ``extra``, the chunk's own list of them) and ``py`` (anything else, exactly: ``marshal``)."""
    kinds = set(map(type, values))
    if kinds <= {type(None)}:
        return ["none", None], b""
    if kinds <= {float, type(None)}:
        present = values if type(None) not in kinds else list(filter(_not_none, values))
        if not any(map(math.isnan, present)):
            if type(None) in kinds:
                values = [math.nan if v is None else v for v in values]
            return ["f8", type(None) in kinds], array("d", values).tobytes()
    elif kinds <= {bool, type(None)}:
        return ["b1", None], array("b", map(_BOOL_CODE.__getitem__, values)).tobytes()
    elif kinds <= {str, type(None)}:
        texts = list(dict.fromkeys(values))
        code = {text: i for i, text in enumerate(texts)}
        return ["txt", texts], array("i", map(code.__getitem__, values)).tobytes()
    return ["py", None], marshal.dumps(list(values))


def _listed(column) -> Sequence:
    """A column as a sequence of its values: a grid (``perf.grids``: it has ``packed``) as its list."""
    return column.tolist() if hasattr(column, "packed") else column


def _packed(column) -> tuple[list, bytes]:
    """``_encode`` of a column: a grid packs itself where it can."""
    packed = column.packed() if hasattr(column, "packed") else None
    return packed or _encode(_listed(column))


def _pick(seq: Sequence, picked: Sequence[int]) -> list:
    """``[seq[i] for i in picked]``, in C where there are several."""
    if len(picked) > 1:
        return list(itemgetter(*picked)(seq))
    return [seq[i] for i in picked]


def _float_test(op: str, value) -> Callable[[float], bool] | None:
    """``x op value`` as one C call per float x (False for NaN, a null), or None where ``value`` is no number a float
    compares to exactly."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != value:
        return None
    v = float(value)
    return {"<": v.__gt__, "<=": v.__ge__, ">": v.__lt__, ">=": v.__le__, "=": v.__eq__}.get(op)


class _Chunk:
    """One stored chunk: its ids and header read, its body read a column at a time when first asked for (through an
    incremental blob handle: a question testing the latency reads that column, not the other 16), or only the rows
    asked for of a column not read whole (the first rows of an ordered read)."""

    __slots__ = ("n", "key_ids", "target_ids", "header", "open", "blob", "decoded", "asked")

    def __init__(self, n: int, key_ids: bytes, target_ids: bytes, header: str, open_body: Callable[[], object]) -> None:
        self.n = n
        self.key_ids, self.target_ids = array(_IDS), array(_IDS)
        self.key_ids.frombytes(key_ids)
        self.target_ids.frombytes(target_ids)
        self.header = json.loads(header)  # {column: [kind, extra, offset, length]}
        self.open, self.blob = open_body, None
        self.decoded: dict[str, Sequence] = {}
        self.asked: dict[str, int] = {}  # rows of a column read item by item so far

    def _read(self, at: int, size: int) -> bytes:
        if self.blob is None:
            self.blob = self.open()
        self.blob.seek(at)
        return self.blob.read(size)

    def close(self) -> None:
        if self.blob is not None:
            try:
                self.blob.close()
            except sqlite3.Error:  # the store closed first (a reader that stopped early): the blob went with it
                pass
            self.blob = None

    def column(self, name: str) -> Sequence:
        """A column as stored: floats (NaN for None), bool codes (-1 for None), text codes, or the values."""
        if name not in self.decoded:
            kind, _extra, at, size = self.header[name]
            if kind == "none":
                values: Sequence = [None] * self.n
            elif kind == "py":
                values = marshal.loads(self._read(at, size))
            else:
                values = array(_TYPECODE[kind])
                values.frombytes(self._read(at, size))
            self.decoded[name] = values
        return self.decoded[name]

    def items(self, name: str, picked: Sequence[int]) -> Sequence:
        """``column(name)``'s values of rows ``picked`` only: read item by item while the rows asked of the column so
        far are few (a top-k's first rows), else the whole column."""
        kind, _extra, at, _size = self.header[name]
        self.asked[name] = self.asked.get(name, 0) + len(picked)  # many rows asked in batches: the column whole
        if name in self.decoded or kind not in _TYPECODE or self.asked[name] * _FEW > self.n:
            return _pick(self.column(name), picked)
        width = _WIDTH[kind]
        got = array(_TYPECODE[kind])
        got.frombytes(b"".join(self._read(at + i * width, width) for i in picked))
        return got

    def keep(self, picked: Sequence[int] | None, test: Callable[[object], bool], column: Sequence) -> list[int]:
        """The rows of ``picked`` (every row when None) whose ``column`` value meets ``test``."""
        if picked is None:
            return list(compress(range(self.n), map(test, column)))
        return list(compress(picked, map(test, _pick(column, picked))))

    def where(self, picked: Sequence[int] | None, name: str, op: str, value) -> list[int]:
        """The rows of ``picked`` meeting ``name op value`` as Cypher reads it: null meets nothing, nor does a value of
        another kind than the column's."""
        kind, extra, _, _ = self.header[name]
        if kind == "none":
            return []
        values = self.column(name)
        if kind == "f8":
            test = _float_test(op, value)
            return self.keep(picked, test, values) if test is not None else []
        if kind == "txt":
            wanted = [value] if op == "=" else list(value) if op == "IN" and isinstance(value, (list, tuple)) else []
            codes = {i for i, text in enumerate(extra) if text is not None and any(
                isinstance(w, str) and text == w for w in wanted)}
            return self.keep(picked, codes.__contains__, values)
        if kind == "b1":
            if op != "=" or not isinstance(value, bool):
                return []
            return self.keep(picked, _BOOL_CODE[value].__eq__, values)

        def test(v) -> bool:  # exact values of mixed types: compared as Python compares them
            if v is None:
                return False
            try:
                return v in value if op == "IN" else bool(_COMPARE[op](v, value))
            except TypeError:
                return False
        return self.keep(picked, test, values)

    def present(self, picked: Sequence[int] | None, name: str) -> list[int]:
        """The rows of ``picked`` with a value of ``name`` (not null)."""
        kind, extra, _, _ = self.header[name]
        if kind == "none":
            return []
        values = self.column(name)
        if kind == "f8":
            return self.keep(picked, lambda v: v == v, values) if extra else list(
                range(self.n) if picked is None else picked)
        if kind == "b1":
            return self.keep(picked, (-1).__ne__, values)
        if kind == "txt":
            nulls = {i for i, text in enumerate(extra) if text is None}
            return self.keep(picked, lambda c: c not in nulls, values)
        return self.keep(picked, _not_none, values)

    def values(self, name: str, picked: Sequence[int]) -> list:
        """The values of rows ``picked``, as they were put."""
        kind, extra, _, _ = self.header[name]
        if kind == "none":
            return [None] * len(picked)
        got = self.items(name, picked)
        if kind == "f8":
            return [None if v != v else v for v in got] if extra else got
        if kind == "b1":
            return [_BOOL_VALUE[c + 1] for c in got]
        if kind == "txt":
            return list(map(extra.__getitem__, got))
        return got


class FitStore:
    """The fit-edge cache of one registry (see the module docstring)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.db = self._open(path)
        # model key -> key id, as this connection committed or read them while no other connection wrote (a question
        # puts each chunk's keys once per device: 10,000 keys looked up four times)
        self.known_keys: dict[str, int] = {}
        self.known_version: int | None = None  # PRAGMA data_version when they were read: changed by others' commits

    @staticmethod
    def _open(path: Path | None) -> sqlite3.Connection:
        for target in ([str(path)] if path is not None else []) + [":memory:"]:
            try:
                db = sqlite3.connect(target, timeout=30, check_same_thread=False)
                db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # a new file's pages (a chunk spans fewer of them)
                db.execute("PRAGMA journal_mode=WAL" if target != ":memory:" else "PRAGMA journal_mode=MEMORY")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
                if _format(db) != _FORMAT:
                    db.execute("BEGIN IMMEDIATE")  # one process rebuilds; another waits, then finds it done
                    if _format(db) != _FORMAT:
                        for table in _TABLES:
                            db.execute(f"DROP TABLE IF EXISTS {table}")
                        for statement in _SCHEMA:
                            db.execute(statement)
                        db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (_FORMAT,))
                    db.commit()
                for statement in _ADDED:
                    try:
                        db.execute(statement)
                    except sqlite3.Error:  # a store this process may only read: read it without
                        pass
                return db
            except sqlite3.Error:
                continue
        raise RuntimeError("sqlite3 cannot open an in-memory database")  # pragma: no cover

    def close(self) -> None:
        self.db.close()

    def reopen(self) -> None:
        """A new connection to the same file after ``close`` (``services.fit_fork``)."""
        self.db = self._open(self.path)
        self.known_version = None  # another connection's data_version: what was read is read again

    @property
    def on_disk(self) -> bool:
        """Whether the connection is to the store's file (not the in-memory store of one it could not open)."""
        try:
            return self.path is not None and bool(self.db.execute("PRAGMA database_list").fetchone()[2])
        except sqlite3.Error:
            return False

    # reading

    def _version_id(self, device: str, version: str) -> int | None:
        found = self.db.execute(_VERSION[1:-1], (device, version)).fetchone()
        return found[0] if found else None

    def _ids(self, version_id: int, low: int | None = None, high: int | None = None) -> list[tuple[array, array]]:
        """(key ids, target ids) of each chunk of a version (of those that may hold key ids low..high)."""
        sql, args = "SELECT key_ids, target_ids FROM chunks WHERE version_id = ?", [version_id]
        if low is not None:
            sql += " AND max_key >= ? AND min_key <= ?"
            args += [low, high]
        out = []
        for key_blob, target_blob in self.db.execute(sql, args):
            keys, targets = array(_IDS), array(_IDS)
            keys.frombytes(key_blob)
            targets.frombytes(target_blob)
            out.append((keys, targets))
        return out

    def _names(self) -> tuple[dict[int, str], dict[int, tuple[str, str]]]:
        """key id -> model key, target id -> (power mode, precision): read after the chunks that name them (a key or
        target is stored before any chunk naming it, in the same transaction)."""
        keys = dict(self.db.execute("SELECT key_id, key FROM keys"))
        targets = {i: (mode, precision) for i, mode, precision in self.db.execute("SELECT * FROM targets")}
        return keys, targets

    def versions(self) -> list[tuple[str, str]]:
        """The (device, version) pairs the store has rows or marks of."""
        try:
            return [tuple(r) for r in self.db.execute("SELECT device, version FROM versions ORDER BY version_id")]
        except sqlite3.Error:
            return []

    def done(self, device: str, version: str) -> set[tuple[str, str, str]]:
        """The (model key, mode, precision) whose row on ``device`` at ``version`` is stored."""
        try:
            version_id = self._version_id(device, version)
            if version_id is None:
                return set()
            ids = self._ids(version_id)
            keys, targets = self._names()
        except sqlite3.Error:
            return set()
        out: set[tuple[str, str, str]] = set()
        for key_ids, target_ids in ids:
            out.update((keys[k], *targets[t]) for k, t in zip(key_ids, target_ids))
        return out

    def complete(self, device: str, version: str, targets: list[tuple[str, str]]) -> set[str]:
        """The model keys whose rows on ``device`` at ``version`` are stored for every (mode, precision) of
        ``targets`` (a target named twice counts once)."""
        wanted = set(targets)
        if not wanted:
            return set()
        try:
            version_id = self._version_id(device, version)
            if version_id is None:
                return set()
            ids = self._ids(version_id)
            keys, names = self._names()
        except sqlite3.Error:
            return set()
        target_ids = {i for i, pair in names.items() if pair in wanted}
        if len(target_ids) < len(wanted):  # a target no row was ever stored for
            return set()
        pairs: set[tuple[int, int]] = set()
        for key_ids, stored in ids:
            pairs.update(compress(zip(key_ids, stored), map(target_ids.__contains__, stored)))
        counts = Counter(k for k, _ in pairs)
        return {keys[k] for k, n in counts.items() if n == len(wanted)}

    def marked(self, device: str, version: str, digest: str) -> bool:
        """Whether ``mark(device, version, digest)`` was called and the version still holds as many rows as it did
        then: every row of that set is stored. Rows deleted since by another hand (an older embodied-ai pruning this
        version as stale, an edit) undo the mark."""
        try:
            found = self.db.execute(
                "SELECT c.rows, (SELECT COALESCE(SUM(n), 0) FROM chunks e WHERE e.version_id = c.version_id) "
                f"FROM complete_sets c WHERE c.version_id = {_VERSION} AND c.digest = ?",
                (device, version, digest)).fetchone()
        except sqlite3.Error:
            return False
        return found is not None and found[1] >= found[0]

    def mark(self, device: str, version: str, digest: str) -> None:
        """Note that every row of the set ``digest`` names (the caller's digest of its model keys and targets) is
        stored on ``device`` at ``version``, with the version's row count now. Its rows go with their version
        (``prune``), and the mark with them."""
        try:
            with self.db:
                self.db.execute("INSERT OR IGNORE INTO versions (device, version) VALUES (?, ?)", (device, version))
                self.db.execute("INSERT OR REPLACE INTO complete_sets SELECT v.version_id, ?, (SELECT "
                                "COALESCE(SUM(n), 0) FROM chunks e WHERE e.version_id = v.version_id) FROM versions v "
                                "WHERE v.device = ? AND v.version = ?", (digest, device, version))
        except sqlite3.Error:
            pass

    # writing

    def put(self, device: str, version: str, computed: Iterable[tuple[str, Sequence]]) -> bool:
        """Store each (model key, row) on ``device`` at ``version``, in one transaction; a row is a ``FitEdge`` or a
        plain tuple of its fields in ``ROW_KEYS`` order (a copy's rows under its own name are made that way). A target
        already stored (by another process meanwhile, or twice in ``computed``) is left as it is: no row is stored
        twice. False when the store could not be written (the rows are then computed again when next asked for)."""
        computed = list(computed)
        if not computed:
            return True
        return self.put_columns(device, version, list(map(itemgetter(0), computed)),
                                list(zip(*map(itemgetter(1), computed))))

    def put_columns(self, device: str, version: str, keys: Sequence[str], columns: Sequence[Sequence]) -> bool:
        """``put`` of rows given column by column: ``columns`` in ``ROW_KEYS`` order, each as long as ``keys`` (one
        model key per row): a question's rows are gathered so, a copy's columns extended from its original's. A
        column is a sequence of values or a grid of ``perf.grids`` (packed by itself: no object per value)."""
        if not keys:
            return True
        paired = getattr(columns[_MODE], "paired", None)  # a grid's (mode, precision) as codes: no tuple per row
        found = paired(columns[_PRECISION]) if paired is not None else None
        if found is not None:
            codes, distinct = found
        else:
            codes = None
            pairs = list(zip(columns[_MODE], columns[_PRECISION]))
            distinct = list(dict.fromkeys(pairs))
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")  # the write lock before reading what is stored
            try:
                db.execute("INSERT OR IGNORE INTO versions (device, version) VALUES (?, ?)", (device, version))
                version_id = self._version_id(device, version)
                key_ids = self._key_ids(list(dict.fromkeys(keys)))
                db.executemany("INSERT OR IGNORE INTO targets (power_mode, precision) VALUES (?, ?)", distinct)
                target_ids = {(mode, precision): i for i, mode, precision in db.execute("SELECT * FROM targets")}
                kids = list(map(key_ids.__getitem__, keys))
                if codes is not None:
                    tids = list(map([target_ids[pair] for pair in distinct].__getitem__, codes))
                else:
                    tids = list(map(target_ids.__getitem__, pairs))
                stored: set[tuple[int, int]] = set()
                for held_keys, held_targets in self._ids(version_id, min(kids), max(kids)):
                    stored.update(zip(held_keys, held_targets))
                stride = max(tids) + 1  # (key id, target id) as one int: a set of them twice as fast as of tuples
                if stored or len(set(map(operator.add, map(operator.mul, kids, repeat(stride)), tids))) < len(kids):
                    # some stored already, or twice here
                    kept = []
                    for i, pair in enumerate(zip(kids, tids)):
                        if pair not in stored:
                            stored.add(pair)
                            kept.append(i)
                    kids, tids = _pick(kids, kept), _pick(tids, kept)
                    columns = [_pick(_listed(column), kept) for column in columns]
                if len(kids) <= CHUNK_ROWS:
                    self._write_chunk(version_id, kids, tids, columns)
                else:
                    columns = list(map(_listed, columns))
                    for start in range(0, len(kids), CHUNK_ROWS):
                        end = start + CHUNK_ROWS
                        self._write_chunk(version_id, kids[start:end], tids[start:end],
                                          [column[start:end] for column in columns])
                db.commit()
                self.known_keys.update(key_ids)
            except BaseException:
                db.rollback()
                raise
        except sqlite3.Error:
            return False
        return True

    def _key_ids(self, wanted: list[str]) -> dict[str, int]:
        """Model key -> key id for each of ``wanted``, inserting those not there (the caller adds what it read to
        ``known_keys`` once its transaction is committed: an id inserted by one rolled back is no id)."""
        seen = self.db.execute("PRAGMA data_version").fetchone()[0]
        if seen != self.known_version:  # another connection wrote since (keys removed, the tables made again): read
            self.known_keys.clear()
            self.known_version = seen
        known = self.known_keys
        ids = {key: known[key] for key in wanted if key in known}
        if len(ids) == len(wanted):
            return ids
        wanted = [key for key in wanted if key not in ids]
        db = self.db
        db.executemany("INSERT OR IGNORE INTO keys (key) VALUES (?)", [(key,) for key in wanted])
        for start in range(0, len(wanted), 500):  # under SQLite's limit on bound values
            some = wanted[start:start + 500]
            ids.update((key, i) for i, key in db.execute(
                f"SELECT key_id, key FROM keys WHERE key IN ({', '.join('?' * len(some))})", some))
        return ids

    def _write_chunk(self, version_id: int, kids: list[int], tids: list[int], columns: list[Sequence]) -> None:
        if not kids:
            return
        header: dict[str, list] = {}
        parts: list[bytes] = []
        at = 0
        for name, values in zip(ROW_KEYS, columns):
            entry, data = _packed(values)
            header[name] = [*entry, at, len(data)]
            parts.append(data)
            at += len(data)
        self.db.execute("INSERT INTO chunks (version_id, n, min_key, max_key, key_ids, target_ids, header, body) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (version_id, len(kids), min(kids), max(kids), array(_IDS, kids).tobytes(),
                         array(_IDS, tids).tobytes(), json.dumps(header), b"".join(parts)))

    def rows(self, device: str, version: str, keys: dict[str, object] | None = None,
             targets: list[tuple[str, str]] | None = None,
             where: Iterable[tuple[str, str, object]] = (), skip: Container[str] = (),
             order: Sequence[tuple[str, bool]] = (), one_per_key: bool = False) -> Iterator[tuple[str, FitEdge]]:
        """(model key, row) of the stored rows on ``device`` at ``version``, streamed: of the model keys in ``keys``,
        the (mode, precision) in ``targets`` and meeting each (column, op, value) of ``where`` only, when given. A key
        in ``skip`` (read as the rows stream: it may grow meanwhile) is passed over. ``order``: (column, descending)
        pairs: rows with a value in each, sorted by them (then by model key id: the order of the rows' storing), so a
        top-k question makes the rows of its first ones only. ``one_per_key``: one row of each model key (the first
        stored: for a count of models whose conditions are all in ``where``)."""
        try:
            version_id = self._version_id(device, version)
            if version_id is None:
                return
            chunks = [_Chunk(n, kids, tids, header, partial(self.db.blobopen, "chunks", "body", chunk, readonly=True))
                      for chunk, n, kids, tids, header in self.db.execute(
                          "SELECT chunk_id, n, key_ids, target_ids, header FROM chunks WHERE version_id = ? "
                          "ORDER BY chunk_id", (version_id,))]
            names, target_names = self._names()
        except sqlite3.Error:
            return
        try:
            yield from self._rows(chunks, names, target_names, keys, targets, where, skip, order, one_per_key)
        except sqlite3.Error:  # a chunk pruned by another process meanwhile: what was read is all
            return
        finally:
            for chunk in chunks:
                chunk.close()

    def _rows(self, chunks: list[_Chunk], names: dict[int, str], target_names: dict[int, tuple[str, str]],
              keys: dict[str, object] | None, targets: list[tuple[str, str]] | None,
              where: Iterable[tuple[str, str, object]], skip: Container[str], order: Sequence[tuple[str, bool]],
              one_per_key: bool) -> Iterator[tuple[str, FitEdge]]:
        wanted_targets = None if targets is None else set(targets)
        target_ids = None if targets is None else {i for i, p in target_names.items() if p in wanted_targets}
        key_ids = None if keys is None else {i for i, key in names.items() if key in keys}
        tests = [(c, op, v) for c, op, v in where if c in ROW_KEYS and op in _OPS]
        order = [(c, desc) for c, desc in order if c in ROW_KEYS]
        seen: set[int] = set()  # one_per_key: the key ids given a row
        picks: list[list[int]] = []
        for chunk in chunks:
            picked: list[int] | None = None
            if target_ids is not None:
                picked = chunk.keep(None, target_ids.__contains__, chunk.target_ids)
            if key_ids is not None:
                picked = chunk.keep(picked, key_ids.__contains__, chunk.key_ids)
            for column, op, value in tests:
                picked = chunk.where(picked, column, op, value)
            for column, _ in order:
                picked = chunk.present(picked, column)
            if picked is None:
                picked = list(range(chunk.n))
            if one_per_key:
                first = []
                ids = chunk.key_ids
                for i in picked:
                    if ids[i] not in seen:
                        seen.add(ids[i])
                        first.append(i)
                picked = first
            picks.append(picked)
        if not order:
            for chunk, picked in zip(chunks, picks):
                yield from _made(chunk, picked, names, skip)
            return
        items = sorted(((c, i) for c, picked in enumerate(picks) for i in picked),
                       key=lambda item: chunks[item[0]].key_ids[item[1]])
        for column, desc in reversed(order):  # stable sorts, the last key first
            values = [_sort_values(chunk, column) for chunk in chunks]
            try:
                items.sort(key=lambda item: values[item[0]][item[1]], reverse=desc)
            except TypeError:  # numbers and texts in one column: numbers first, as SQLite orders them
                items.sort(key=lambda item: _ranked(values[item[0]][item[1]]), reverse=desc)
        for start in range(0, len(items), 256):  # rows made a batch at a time: a top-k stops after its first
            batch = items[start:start + 256]
            made: dict[tuple[int, int], tuple[str, FitEdge]] = {}
            by_chunk: dict[int, list[int]] = {}
            for c, i in batch:
                by_chunk.setdefault(c, []).append(i)
            for c, picked in by_chunk.items():
                made.update(zip(((c, i) for i in picked), _made(chunks[c], picked, names, (), checked=False)))
            for item in batch:
                key, row = made[item]
                if key not in skip:
                    yield key, row

    def summary(self, key: str) -> str | None:
        """The registry summary stored under ``key`` (``services.summary``), or None."""
        try:
            found = self.db.execute("SELECT body FROM summary WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error:
            return None
        return found[0] if found else None

    def put_summary(self, key: str, body: str) -> None:
        """Keep ``body`` as the one registry summary, under ``key``."""
        try:
            with self.db:
                self.db.execute("DELETE FROM summary")
                self.db.execute("INSERT INTO summary VALUES (?, ?)", (key, body))
        except sqlite3.Error:
            pass

    def layer_columns(self, version: str, digests: list[str]) -> dict[str, tuple[int, bytes]]:
        """(details file size, column bytes) stored at ``version`` for each of ``digests`` (details content digests,
        ``services.layer_store``) that has them: one query, whatever the number of digests."""
        try:
            cursor = self.db.execute("SELECT digest, size, body FROM layers WHERE version = ? AND digest IN "
                                     "(SELECT value FROM json_each(?))", (version, json.dumps(list(digests))))
            return {digest: (size, body) for digest, size, body in cursor}
        except sqlite3.Error:
            return {}

    def put_layer_columns(self, version: str, rows: Iterable[tuple[str, int, bytes]]) -> None:
        """Store (digest, details file size, column bytes) rows at ``version``, replacing what a digest had."""
        rows = list(rows)
        if not rows:
            return
        try:
            with self.db:
                self.db.executemany("INSERT OR REPLACE INTO layers VALUES (?, ?, ?, ?)",
                                    [(digest, version, size, body) for digest, size, body in rows])
        except sqlite3.Error:
            pass

    def prune(self, versions: dict[str, str]) -> None:
        """Forget the rows of every device whose version is not ``versions[device]`` (and of devices not listed)."""
        try:
            with self.db:
                held = self.db.execute("SELECT version_id, device, version FROM versions")
                stale = [(i,) for i, device, version in held if versions.get(device) != version]
                self.db.executemany("DELETE FROM chunks WHERE version_id = ?", stale)
                self.db.executemany("DELETE FROM complete_sets WHERE version_id = ?", stale)
                self.db.executemany("DELETE FROM versions WHERE version_id = ?", stale)
        except sqlite3.Error:
            pass


def _made(chunk: _Chunk, picked: Sequence[int], names: dict[int, str], skip: Container[str],
          checked: bool = True) -> Iterator[tuple[str, FitEdge]]:
    """(model key, row) of rows ``picked`` of a chunk, made ``_BATCH`` at a time; ``checked``: those of a key in
    ``skip`` (which may grow meanwhile) passed over, before their row is made; else every one, in order."""
    ids = chunk.key_ids
    for start in range(0, len(picked), _BATCH):
        some = picked[start:start + _BATCH]
        if checked:
            some = [i for i in some if names[ids[i]] not in skip]
            if not some:
                continue
        keys = [names[ids[i]] for i in some]
        for key, row in zip(keys, map(FitEdge._make, zip(*[chunk.values(name, some) for name in ROW_KEYS]))):
            if not checked or key not in skip:
                yield key, row


_BATCH = 1024


def _sort_values(chunk: _Chunk, name: str) -> Sequence:
    """A chunk's values of ``name`` to sort rows by (its rows with a value: ``present``): floats, texts, bool codes
    or the values themselves."""
    kind, extra, _, _ = chunk.header[name]
    values = chunk.column(name)
    if kind == "txt":
        return [extra[c] for c in values]
    return values


def _ranked(value) -> tuple:
    """A sort key ordering numbers before texts before anything else (SQLite's order of kinds)."""
    if isinstance(value, (int, float)):
        return 0, value, ""
    if isinstance(value, str):
        return 1, 0, value
    return 2, 0, repr(value)


def _format(db: sqlite3.Connection) -> str | None:
    found = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
    return found[0] if found else None
