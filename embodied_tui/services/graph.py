"""The registry as a graph: models (latest versions), every device x power mode, their fit rows and the stored
measurements, laid out by ``ask.graph.build_graph``; or, where every row of a question is decided, its rows without a
graph (``Registered.decided_rows``). The names a question may use are ``services.vocabulary``'s.

**Plan before computing.** ``Registered.graph(scope, top=)`` keeps the models and device x modes the scope keeps (a
question's conditions: ``ask.plan``; a raw query's WHERE clause: ``ask.graph.query_scope``) *before* any fit row is
read, reads or computes fit rows only for those models on those devices, streams them through the scope's edge tests
and, for an ordered question with a LIMIT, keeps only the edges that can be among its first rows (``ask.plan.Top``).
So memory holds the answer's edges, not every model x target.

**Fit rows are cached** in an SQLite file beside the registry (``<registry>.edges.sqlite``, ``fit_cache_path``;
``services.fit_store``), keyed by (model record digest, device id, device version): adding a model computes only its
rows, a measurement on one device recomputes only that device's rows (when next asked about), and a repeated question
reads what it needs. A store that cannot be opened is replaced by an in-memory one: it only saves time.

**Cancelling.** ``cancel_fits()`` (``services.ask.cancel_queries`` calls it) stops every fit computation running now
before its next batch of ``FIT_BATCH`` models, fitted together (what was computed is stored in chunks of
``FIT_CHUNK`` models): the call raises
``ask.budget.Cancelled``. ``progress(done, total)`` is called before the first chunk and after each chunk computed.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, repeat
from pathlib import Path
from typing import Any, Callable

from embodied_tui.ask.graph import (
    HARDWARE,
    MODEL,
    NUMBER_COLUMNS,
    ROW_KEYS,
    RUNS_ON,
    TEXT_COLUMNS,
    WHOLE,
    FitEdge,
    Scope,
    build_graph,
    edge_properties,
    hardware_properties,
    model_properties,
    row_column,
)
from embodied_tui.ask.pipeline_graph import PipelineEdge
from embodied_tui.ask.plan import Top, cut
from embodied_tui.data.backend import is_server_registry
from embodied_tui.data.store import Registry
from embodied_tui.perf.roofline import PRECISIONS
from embodied_tui.services.fit_store import FitStore
from embodied_tui.services.hardware import registry
from embodied_tui.services.summary import SummaryRecord

FIT_CACHE_FORMAT = 4  # 4: model keys from pydantic JSON; 3: keyed rows in SQLite; 2: JSON files
SHARED_CONTENTS = 512  # distinct model contents whose edges one computation keeps for copies (then forgets)
FIT_CHUNK = 1024  # models computed and stored at a time
FIT_BATCH = 256  # models fitted together over one array (cancelling is checked before each batch)
_PACKAGE = Path(__file__).resolve().parents[1]
_CODE = ("analysis", "data", "perf", "services")  # the modules whose code a fit row depends on


@dataclass
class Registered:
    """What the graph is built from, read once."""

    reg: Registry
    records: list  # ModelRecord, latest versions (or their services.summary.SummaryRecord)
    devices: list  # HardwareEntry
    measurements: list  # Measurement
    pipelines: list = field(default_factory=list)  # StoredPipeline, latest versions
    measured: dict | None = None  # model name -> its versions' JSON, of measured models (a summary's, or read once)
    signature: tuple | None = None  # the registry file's stat signature a summary was read for (None: parsed)

    @classmethod
    def read(cls, db) -> "Registered":
        """The registry's latest records, devices, measurements and pipelines: from its summary while the file is
        the one summarised (``services.summary``: nothing parsed), else parsed (and summarised for the next
        process)."""
        from embodied_tui.data.pipeline_store import latest
        from embodied_tui.services import summary
        from embodied_tui.services.fit import devices, list_measurements

        reg = registry(db)
        server = is_server_registry(reg)
        if not server and (src := summary.read(reg)) is not None:
            return src
        src = cls(reg, reg.list_models(), devices(reg), list_measurements(reg), latest(reg, strict=False))
        if not server:
            summary.save(src)
        return src

    def whole(self, records: list) -> list:
        """``records`` as whole ModelRecords: a summary's records are read from the registry (parsed now, once);
        one no longer there as it was summarised (another key: the file changed since) is left out."""
        if not any(type(r) is SummaryRecord for r in records):
            return records
        latest = {(r.name, r.version): r for r in self.reg.list_models()}
        # parsed from the very file summarised (every write replaces the file: another signature): each record is the
        # one its summary describes, and the summary's digests are its own (10,000 of each made again took 0.2 s)
        state = self.reg.parsed_state()
        same = self.signature is not None and state is not None and tuple(state[0]) == self.signature
        out = []
        for r in records:
            if type(r) is SummaryRecord:
                found = latest.get((r.name, r.version))
                if found is not None and same:
                    take_summarised(found, r)
                r = found if found is not None and (same or _record_key(found) == r.key) else None
            if r is not None:
                out.append(r)
        return out

    def pipeline_fits(self, names: list[str], pairs: list[tuple[str, str]]) -> list[PipelineEdge]:
        """The RUNS_ON edges of the stored pipelines ``names`` on each (device, mode) of ``pairs``, at each
        pipeline's own precision (``ask.pipeline_graph``). Computed lazily, not cached: measured with 10 stored
        pipelines (pi05 and openvla-7b variants) on every catalog device x mode (480 edges), a query over all of them
        takes 0.37 s, over one pipeline 0.09 s, one pipeline on one device 0.06 s (in-process, 2 shared cores;
        ``query`` only builds what its MATCH and WHERE can match)."""
        from embodied_tui.errors import UserError
        from embodied_tui.services.fit import FitContext
        from embodied_tui.services.pipelines import fit_stored

        ctx = FitContext(self.reg, self.devices, self.measurements)
        wanted = set(names)
        out = []
        for stored in self.pipelines:
            if stored.name not in wanted:
                continue
            for device, mode in pairs:
                try:
                    fit = fit_stored(self.reg, stored, device, mode=mode, with_changes=False, ctx=ctx)
                except UserError:
                    continue  # no peak at the precision, a model gone since: no edge
                out.append(PipelineEdge.of(fit))
        return out

    def graph(self, scope: Scope = WHOLE, *, fits: bool = True, top: Top | None = None, edges_only: bool = False,
              progress: Callable[[int, int], None] | None = None):
        """The graph; with ``scope``, only what a query can match (``ask.graph.query_scope`` for raw Cypher,
        ``ask.plan.plan`` for a question). Only the kept models' fit rows on the kept devices are read or computed,
        and none when the graph holds no RUNS_ON edges (``fits=False``, or a scope without them). ``top``: keep only
        the edges among a LIMIT's first rows; ``edges_only``: leave out the models without a kept edge (for a query
        whose only pattern is Model -RUNS_ON-> Hardware)."""
        generation = _generation[0]
        kept, props = self._kept_models(scope)
        records = self.whole(kept)  # the graph's Model nodes are made from whole records
        if records is not kept:
            props = {id(r): model_node_properties(r) for r in records}
        rows = []
        if fits and scope.has_edge(RUNS_ON, MODEL, HARDWARE):
            rows = self.fit_edges(records, scope, top, progress, generation, props)
            if edges_only:
                names = {row.model for row in rows}
                records = [r for r in records if r.name in names]
        return build_graph(records, self.devices, rows, self.measurements, scope=scope, pipelines=self.pipelines,
                           pipeline_fits=self.pipeline_fits if fits else None)

    def _kept_models(self, scope: Scope) -> tuple[list, dict[int, dict]]:
        """The records whose Model node the scope keeps, and id(record) -> Model node properties."""
        props = {id(r): model_node_properties(r) for r in self.records} if scope.has(MODEL) else {}
        return [r for r in self.records if id(r) in props and scope.keeps(MODEL, props[id(r)])], props

    def count(self, scope: Scope, top: Top, progress: Callable[[int, int], None] | None = None) -> list | None:
        """A count question's rows without building the graph: ``distinct_values`` of the models the scope keeps
        (None where the graph must answer)."""
        records, props = self._kept_models(scope)
        if not (scope.has_edge(RUNS_ON, MODEL, HARDWARE)):
            return None
        return self.distinct_values(records, scope, top, progress, props)

    def fit_edges(self, records: list, scope: Scope = WHOLE, top: Top | None = None,
                  progress: Callable[[int, int], None] | None = None, generation: int | None = None,
                  props: dict[int, dict] | None = None) -> list[FitEdge]:
        """The fit rows of ``records`` on the devices with a power mode the scope keeps, that pass its RUNS_ON tests
        (and ``top``): from the store where it holds them, computed (and stored) otherwise. In the order of
        ``services.fit.fit_all``: by model, then fastest first. ``props``: id(record) -> its Model node properties,
        where already made."""
        from embodied_tui.services.fit import _sort_key

        mprops: dict[int, dict] = {}
        with self._stream(records, scope, progress, generation, props, mprops if top is not None else None) \
                as stream:
            kept = cut(((top.key(mprops[i], hardware, edge) if top is not None else None, (i, row))
                        for i, row, hardware, edge in stream(top if top is not None and top.distinct else None,
                                                             ranked=top)),
                       top)
        kept.sort(key=lambda item: (item[0], _sort_key(item[1])))
        return [row for _, row in kept]

    def decided_rows(self, scope: Scope, top: Top | None, decide: Callable[[dict, dict, dict], bool | None],
                     columns: list[str], order: list[tuple[str, bool]], limit: int | None,
                     progress: Callable[[int, int], None] | None = None) -> list[list] | None:
        """A question's rows over Model -RUNS_ON-> Hardware without building the graph or walking it with
        grand-cypher (about 0.15 ms a row there: 30,000 rows took 4.8 s): the edges the scope keeps (and ``top``
        cuts), each row's WHERE clause read by ``decide`` (``ask.plan.where_decider``), ``columns``
        ('variable.property') of those that meet it, sorted by ``order`` ((field, descending), which names every row
        apart: ``StructuredQuery.order_items``), the first ``limit``. None, and the graph answers, where one row
        cannot be decided or a sort key is missing or of mixed types (Cypher's rules for those are not ours)."""
        records, props = self._kept_models(scope)
        if not scope.has_edge(RUNS_ON, MODEL, HARDWARE):
            return None
        mprops: dict[int, dict] = {}
        kept: list[dict[str, dict]] = []
        with self._stream(records, scope, progress, None, props, mprops) as stream:
            items = ((top.key(mprops[i], hardware, edge) if top is not None else None, (i, hardware, edge))
                     for i, _row, hardware, edge in stream(None, ranked=top))
            for i, hardware, edge in cut(items, top):
                said = decide(mprops[i], hardware, edge)
                if said is None:
                    return None
                if said:
                    kept.append({"m": mprops[i], "h": hardware, "r": edge})
        return _projected(kept, columns, order, limit)

    def decided_model_rows(self, scope: Scope, decide: Callable[[dict, dict, dict], bool | None],
                           columns: list[str], order: list[tuple[str, bool]], limit: int | None) -> list[list] | None:
        """``decided_rows`` of a question on models alone (``MATCH (m:Model)``): the Model properties of the records
        the scope keeps, without a graph. None where a row cannot be decided."""
        records, props = self._kept_models(scope)
        if not scope.has(MODEL):
            return None
        kept = []
        for record in records:
            said = decide(props[id(record)], {}, {})
            if said is None:
                return None
            if said:
                kept.append({"m": props[id(record)]})
        return _projected(kept, columns, order, limit)

    def distinct_values(self, records: list, scope: Scope, top: Top,
                        progress: Callable[[int, int], None] | None = None,
                        props: dict[int, dict] | None = None) -> list | None:
        """A count's answer without a graph: the sorted distinct values of ``top.distinct`` ((variable, property):
        ``m.name`` or ``h.device``) over the rows the question's WHERE clause surely keeps (``top.decide``). The
        rows are the planned graph's, so they are the values its ``RETURN DISTINCT ... ORDER BY`` gives; None when
        one kept row cannot be decided (then the graph and grand-cypher answer)."""
        if top.distinct is None or top.decide is None:
            return None
        mprops: dict[int, dict] = {}
        variable, prop = top.distinct
        values: set = set()
        with self._stream(records, scope, progress, None, props, mprops) as stream:
            for i, _row, hardware, edge in stream(top):
                # every kept row must surely meet the WHERE clause (the scope's tests dropped those that surely
                # fail): one that cannot be said, or a doubt, and grand-cypher answers
                if top.decide(mprops[i], hardware, edge) is not True:
                    return None
                value = {"m": mprops[i], "h": hardware, "r": edge}[variable].get(prop)
                if not isinstance(value, str):  # sorted as grand-cypher sorts: texts only here
                    return None
                values.add(value)
        return sorted(values)

    @contextmanager
    def _stream(self, records: list, scope: Scope, progress: Callable[[int, int], None] | None,
                generation: int | None, props: dict[int, dict] | None, mprops: dict[int, dict] | None):
        """A function ``stream(distinct)`` over the kept rows of ``records`` as (record index, row, Hardware node
        properties, RUNS_ON edge properties): their fits computed and stored first where the store lacks them.
        ``mprops`` (when given) is filled with record index -> Model node properties. ``distinct``: a ``Top`` with
        ``distinct`` set: a row whose distinct value was already yielded is skipped before its properties are made
        (``cut`` keeps only the first one of each)."""
        generation = _generation[0] if generation is None else generation
        records = [r for r in records if r.macs is not None]
        nodes: dict[tuple[str, str], dict] = {}  # (device, mode) -> Hardware node properties, for kept modes
        targets: dict[str, list[tuple[str, str]]] = {}  # device -> the (mode, precision) an edge may be kept on
        every_mode: set[str] = set()  # devices all of whose modes the scope keeps
        for entry in self.devices if scope.has(HARDWARE) and records else ():
            kept_all = True
            for mode in entry.power_modes:
                hprops = hardware_properties(entry, mode)
                if not scope.keeps(HARDWARE, hprops):
                    kept_all = False
                    continue
                nodes[(entry.id, mode.name)] = hprops
                for precision in PRECISIONS:  # as fit_record: the precisions the mode states a peak for
                    if precision in mode.peak_tflops and (scope.precisions is None or precision in scope.precisions):
                        targets.setdefault(entry.id, []).append((mode.name, precision))
            if kept_all:
                every_mode.add(entry.id)
        # a device whose every mode is kept, at every precision (or at those an edge condition already asks for), has
        # no stored row off its targets: its rows are read without naming them ('how many models run under 1 ms on
        # the orin nano': 47 targets named made the count's grouping read every row, 0.52 -> 0.23 s)
        unnamed = every_mode if scope.precisions is None or _asks_precisions(scope) else set()
        if not targets:
            yield lambda distinct=None, ranked=None: iter(())
            return
        versions = self.device_versions()
        keys = {_record_key(r): i for i, r in enumerate(records)}
        if mprops is not None:
            mprops.update({i: (props or {}).get(id(r)) or model_node_properties(r) for i, r in enumerate(records)})
        store = open_fit_store(self.reg)
        try:
            self._compute_missing(store, records, targets, versions, progress, generation)

            def stream(distinct: Top | None = None, ranked: Top | None = None):
                """``ranked`` (a Top whose keys are stored columns, ``_stored_order``): each device's rows are read
                in that order, and reading a device stops after its first ``limit`` kept rows (ties at the last place
                included): the question's first rows are among those of all devices."""
                seen: set = set()
                seen_keys: set[str] = set()  # a model counted already: the store passes over its other rows
                variable, prop = distinct.distinct if distinct is not None and mprops is not None else (None, None)
                order = _stored_order(ranked) or ()
                whole = scope.edge_where_whole and bool(scope.edge_where)
                n = 0
                for device, pairs in targets.items():
                    taken = 0
                    last = None  # the key of this device's limit-th kept row (of its limit-th subject: Top.per)
                    subjects: set = set()
                    for key, row in store.rows(device, versions[device], keys,
                                               None if device in unnamed else pairs, scope.edge_where,
                                               skip=seen_keys, order=order,
                                               one_per_key=variable == "m" and scope.edge_where_whole):
                        n += 1
                        if n % 20_000 == 0:
                            _check(generation)
                        hardware = nodes.get((row.hardware, row.power_mode))
                        if hardware is None:
                            continue
                        i = keys[key]
                        if variable is not None:
                            value = {"m": mprops.get(i), "h": hardware}.get(variable) or {}
                            value = value.get(prop)
                            if value is not None and value in seen:
                                continue
                        edge = edge_properties(row, hardware)
                        if not whole and not scope.keeps_edge(RUNS_ON, edge):  # whole: the SQL applied the tests
                            continue
                        if variable is not None and value is not None:
                            seen.add(value)
                            if variable == "m":
                                seen_keys.add(key)
                        if order:  # sorted by the store on the first len(order) keys: compared on those
                            full = ranked.key(mprops[i], hardware, edge)
                            rank = full[:len(order)] if full is not None else None
                            if last is not None and rank is not None and rank > last:
                                break  # every later row ranks lower still
                            if ranked.per is None:
                                taken += 1
                            elif full is not None and full[-1] not in subjects:  # a subject's first row here
                                subjects.add(full[-1])
                                taken += 1
                            if taken == ranked.limit and last is None:
                                last = rank
                        yield i, row, hardware, edge

            yield stream
        finally:
            store.close()

    def measured_versions(self, name: str) -> list[dict]:
        """The JSON of every version of the measured model ``name`` (what a device version digests): from the
        summary when read from one, else from the registry (once)."""
        if self.measured is None:
            self.measured = {}
        if name not in self.measured:
            self.measured[name] = [r.model_dump(mode="json") for r in self.reg.versions(name)]
        return self.measured[name]

    def device_versions(self) -> dict[str, str]:
        """Device id -> the digest of what its fit rows depend on besides the model (``services.fit_store``)."""
        code = code_signature()
        by_device: dict[str, list] = {}
        for m in self.measurements:
            by_device.setdefault(m.hardware, []).append(m)
        out = {}
        for entry in self.devices:
            mine = by_device.get(entry.id, [])
            measured = sorted({m.model for m in mine})
            out[entry.id] = _digest({
                "format": FIT_CACHE_FORMAT, "code": code, "columns": ROW_KEYS, "device": entry.model_dump(mode="json"),
                "measurements": [m.model_dump(mode="json") for m in mine],
                "measured_versions": {n: self.measured_versions(n) for n in measured},
            })
        return out

    def _compute_missing(self, store: "FitStore", records: list, targets: dict[str, list[tuple[str, str]]],
                         versions: dict[str, str], progress: Callable[[int, int], None] | None,
                         generation: int) -> None:
        """Compute and store the row of every (record, device, mode, precision) of ``targets`` (device id -> [(mode,
        precision)]) the store lacks, ``FIT_CHUNK`` models at a time (one store transaction per device and chunk,
        its rows handed over column by column: ``FitStore.put_columns``).

        The models' rows come from ``services.fit.fit_columns_many``, ``FIT_BATCH`` models missing the same targets
        at a time: their work at a precision x fusion is made from their layer columns (``services.layer_store``:
        read from the store in one query per chunk, or made from the parsed details once per content and stored), the
        targets of one precision x fusion are fitted for all of them together over a numpy array
        (``perf.roofline_many``, the same numbers as ``fit_record(top=0)`` to the last bit), and no per-layer rows are
        made (an edge stores only ``ROW_KEYS``). Models with the same content (``_content_key``: the record less its
        name, version, registration time, tags, description and lineage) and no measurements of their own have the
        same rows but for the model name: they are computed once per content and copied under each name."""
        marks = _set_marks(store, records, targets)  # device -> the digest naming its (records x targets)
        targets = {device: pairs for device, pairs in targets.items()
                   if device not in marks or not store.marked(device, versions[device], marks[device])}
        if not targets:  # a repeated question: each device's rows were all stored by an earlier one
            return
        complete = {device: store.complete(device, versions[device], pairs) for device, pairs in targets.items()}
        done: dict[str, set] = {}  # device -> its stored marks, read only when a model lacks some there
        begun: dict[str, set] = {}  # device -> the model keys with some of its marks (the others lack every pair)
        every_pair = {device: [(device, mode, precision) for mode, precision in pairs]
                      for device, pairs in targets.items()}
        todo = []
        for record in records:
            key = _record_key(record)
            missing = []
            for device, pairs in targets.items():
                if key in complete[device]:
                    continue
                if device not in done:
                    done[device] = store.done(device, versions[device])
                    begun[device] = {k for k, _, _ in done[device]}
                if key not in begun[device]:  # nothing stored: every pair (the list shared, not rebuilt)
                    missing += every_pair[device]
                else:
                    missing += [(device, mode, precision) for mode, precision in pairs
                                if (key, mode, precision) not in done[device]]
            if missing:
                todo.append((record, key, missing))
        if not todo:
            for device in targets.keys() & marks.keys():
                store.mark(device, versions[device], marks[device])
            return
        from embodied_tui.perf.grids import joined, per_target, tiled  # numpy: only where fits are computed
        from embodied_tui.services.fit import FitContext, fit_columns_many
        from embodied_tui.services.fit_fork import FORK_MODELS, ChunkQueue, fork, may_fork
        from embodied_tui.services.layer_store import LayerSource

        wholes = self.whole([record for record, _, _ in todo])  # a summary's records: their fits need all of them
        if len(wholes) != len(todo):
            from embodied_tui.errors import RegistryError

            raise RegistryError(f"registry {self.reg.path} changed while it was read; ask again")
        todo = [(whole, key, missing) for whole, (_, key, missing) in zip(wholes, todo)]
        store.prune(versions)
        ctx = FitContext(self.reg, self.devices, self.measurements, layers=LayerSource(self.reg, store))
        every = {(entry.id, mode.name): frozenset(p for p in PRECISIONS if p in mode.peak_tflops)
                 for entry in self.devices for mode in entry.power_modes}
        shared: dict[tuple, dict] = {}  # (content, calls) -> device -> the columns of a model with that content
        planned: dict[tuple, tuple] = {}  # missing targets -> their fit calls (most models miss the same ones)
        same_of: list[tuple | None] = []  # per model of todo: its (content, calls), None for one copied by none
        for record, _key, missing in todo:
            wanted = tuple(missing)
            if wanted not in planned:
                planned[wanted] = tuple(_calls(missing, every))
            # one with its own measurements has them on its rows: copied by none
            same_of.append(None if ctx.of_model(record) else (_content_key(record), planned[wanted]))
        copies = Counter(same for same in same_of if same is not None)  # a content fitted once for all its models
        if progress is not None:
            progress(0, len(todo))  # the app says "computing fits" from the start, not after the first chunk

        def fit_chunk(start: int, store) -> set[str]:
            """Compute and store the rows of the chunk of ``todo`` at ``start``; the devices whose rows the store did
            not take (then they are not marked all stored)."""
            failed: set[str] = set()
            chunk = todo[start:start + FIT_CHUNK]
            _check(generation)
            ctx.layers.prefetch(record for record, _, _ in chunk)  # the chunk's layer columns: one query
            batches: dict[tuple, list[int]] = {}  # calls -> the models fitted together on them
            first: dict[tuple, int] = {}  # (content, calls) -> the model of this chunk computing it
            later: list[tuple[int, tuple]] = []  # (model, its content): copies of one computed before, or soon
            for i, (_record, _key, missing) in enumerate(chunk):
                same = same_of[start + i]
                if same is not None:
                    if same in shared or same in first:
                        later.append((i, same))
                        continue
                    first[same] = i
                batches.setdefault(planned[tuple(missing)], []).append(i)
            # each device's rows of the chunk, column by column (``FitStore.put_columns``): a content's columns are
            # made once and extended into every copy's, under the copy's own name
            computed: dict[str, tuple[list, list[list]]] = {}  # device -> (keys, each field's parts)
            kept: dict[int, dict[str, list[list]]] = {}  # model -> device -> each field's parts, for a content with copies

            def gather(device: str, keys: list, columns: list) -> None:
                held_keys, gathered = computed.setdefault(device, ([], [[] for _ in ROW_KEYS]))
                held_keys.extend(keys)
                for into, column in zip(gathered, columns):
                    into.append(column)

            for calls, picked in batches.items():
                for at in range(0, len(picked), FIT_BATCH):
                    time.sleep(0)  # the GIL to a waiting thread (the app's, with a cancel) between batches
                    _check(generation)  # at most FIT_BATCH models' fits after a cancel
                    some = picked[at:at + FIT_BATCH]
                    for block in fit_columns_many(ctx, [chunk[i][0] for i in some], calls, ROW_KEYS):
                        if block.device not in versions or not block.columns[0]:
                            continue
                        models = [some[j] for j in block.records]
                        gather(block.device, [chunk[i][1] for i in models] * (len(block.columns[0]) // len(models)),
                               block.columns)  # target-major: each target's rows of the models in turn
                        for j, i in enumerate(models):
                            if copies.get(same_of[start + i], 0) > 1:  # one device's columns, for the copies
                                held = kept.setdefault(i, {}).setdefault(block.device, [[] for _ in ROW_KEYS])
                                for into, column in zip(held, block.of(j)):
                                    into.append(column)
            kept = {i: {device: [joined(parts) for parts in held] for device, held in devices.items()}
                    for i, devices in kept.items()}  # now model -> device -> its columns, each one grid
            copied: dict[tuple[int, str], tuple[list, list]] = {}  # (source, device) -> (its columns, copies)
            for i, same in later:
                record, key, _ = chunk[i]
                for device, columns in (shared[same] if same in shared else kept.get(first[same], {})).items():
                    copied.setdefault((id(columns), device), (columns, []))[1].append((key, record.name))
            for (_, device), (columns, copies_of) in copied.items():  # each source's copies as one grid per field
                n = len(columns[0])
                gather(device, list(chain.from_iterable(repeat(key, n) for key, _ in copies_of)),
                       [per_target([name for _, name in copies_of], n),
                        *(tiled(column, len(copies_of)) for column in columns[1:])])
            for same, i in first.items():
                if copies[same] > 1:
                    if len(shared) >= SHARED_CONTENTS:
                        shared.clear()
                    shared[same] = kept.get(i, {})
            ctx.layers.flush()
            for device, (keys, parts) in computed.items():
                if store.put_columns(device, versions[device], keys, [joined(p) for p in parts]) is False:
                    failed.add(device)
            return failed

        starts = list(range(0, len(todo), FIT_CHUNK))
        helper = queue = None
        if len(todo) >= FORK_MODELS and len(starts) <= ChunkQueue.MOST and may_fork(store):
            # a second process (fit_fork: where that is safe) takes chunks from the same queue as this one, and
            # stores them itself: whichever is free takes the next
            queue = ChunkQueue(starts)

            def helped(own_store) -> None:
                ctx.layers = LayerSource(self.reg, own_store)
                for start in queue:
                    if fit_chunk(start, own_store):
                        raise RuntimeError("the fit store did not take some rows")  # then this process puts them

            helper = fork(store, helped)
            if helper is None:
                queue.close()
                queue = None
        def fit_here(start: int) -> None:
            for device in fit_chunk(start, store):
                marks.pop(device, None)  # not written: not all stored

        ours: list[int] = []  # the chunks this process computed
        try:
            for start in (queue if queue is not None else starts):
                ours.append(start)
                fit_here(start)
                if progress is not None:
                    progress(min(len(ours) * FIT_CHUNK, len(todo)), len(todo))
            if helper is not None and not helper.wait():
                for start in sorted(set(starts) - set(ours)):  # the helper failed: its chunks computed here (what
                    fit_here(start)  # it stored is not put again)
            if helper is not None and progress is not None:
                progress(len(todo), len(todo))
            helper = None
        finally:
            if helper is not None:
                helper.stop()  # this process stopped first (an error, a cancel, ctrl+c): so does the helper
            if queue is not None:
                queue.close()
        for device in targets.keys() & marks.keys():
            store.mark(device, versions[device], marks[device])


def _set_marks(store, records: list, targets: dict[str, list[tuple[str, str]]]) -> dict[str, str]:
    """Device -> a digest of (the records' keys, the device's targets): the set ``FitStore.mark`` notes as all
    stored once computed, so the same question again reads one mark per device instead of counting every model's
    rows (``complete``: 0.13 s for 10,000 models x 47 targets). Empty for a store without marks."""
    if not hasattr(store, "marked"):
        return {}
    keys = hashlib.sha256("\n".join(sorted(_record_key(r) for r in records)).encode()).hexdigest()
    return {device: _digest([keys, sorted(set(pairs))]) for device, pairs in targets.items()}


def _asks_precisions(scope: Scope) -> bool:
    """Whether the scope's edge conditions read by the store keep exactly its precisions (``r.precision = 'fp16'``
    or ``IN [...]``), so that naming the targets would add nothing."""
    for column, op, value in scope.edge_where:
        if column == "precision" and ((op == "=" and {value} == set(scope.precisions))
                                      or (op == "IN" and set(value) == set(scope.precisions))):
            return True
    return False


def _calls(missing: list[tuple[str, str, str]], every: dict[tuple[str, str], frozenset[str]]) \
        -> list[tuple[str, str, str | None]]:
    """The ``fit_record`` calls that compute ``missing`` (device, mode, precision): one call per device x mode when
    every precision it states a peak for is missing (``precision=None``: those precisions, the same rows), else one
    per precision."""
    by_mode: dict[tuple[str, str], list[str]] = {}
    for device, mode, precision in missing:
        by_mode.setdefault((device, mode), []).append(precision)
    out: list[tuple[str, str, str | None]] = []
    for (device, mode), precisions in by_mode.items():
        if len(precisions) > 1 and frozenset(precisions) == every.get((device, mode)):
            out.append((device, mode, None))
        else:
            out += [(device, mode, p) for p in precisions]
    return out


def _projected(kept: list[dict[str, dict]], columns: list[str], order: list[tuple[str, bool]],
               limit: int | None) -> list[list] | None:
    """Rows ({variable: properties}) sorted by ``order`` ((field, descending): stable sorts, the last key first, so
    the first key decides), cut to ``limit``, as the values of ``columns``; None where a sort key is missing or of
    mixed types in some row (Cypher's ordering of those is grand-cypher's to say)."""
    keys = [(*name.split(".", 1), descending) for name, descending in order]
    columns_of_keys = []
    for variable, prop, _ in keys:
        values = [row[variable].get(prop) for row in kept]
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if not (numbers or all(isinstance(v, str) for v in values)):
            return None
        columns_of_keys.append(values)
    if keys and len({descending for _, _, descending in keys}) == 1:  # one way: one stable sort on the keys' tuples
        tuples = list(zip(*columns_of_keys))
        kept = [kept[i] for i in sorted(range(len(kept)), key=tuples.__getitem__, reverse=keys[0][2])]
    else:
        for variable, prop, descending in reversed(keys):
            kept.sort(key=lambda row: row[variable][prop], reverse=descending)
    wanted = [name.split(".", 1) for name in columns]
    return [[row[variable].get(prop) for variable, prop in wanted] for row in kept[:limit]]


def _stored_order(top: Top | None) -> list[tuple[str, bool]] | None:
    """The leading keys of a top-k's ORDER BY that are numbers stored in the fit row, as (fit row column,
    descending): the store sorts rows by them as the query does (``r.latency_ms`` is ``predicted_latency_ms``); the
    keys after them (a model's name breaking ties) are compared in Python. None when the first key is not one."""
    if top is None or top.distinct is not None or not top.keys or top.limit < 1:
        return None
    out = []
    for variable, prop, descending in top.keys:
        column = row_column(f"{variable}.{prop}")
        if column in NUMBER_COLUMNS:
            out.append((column, descending))
        elif out and not descending and column in TEXT_COLUMNS:  # a row's names, breaking ties (by code point)
            out.append((column, False))
        else:
            break
    return out or None


_generation = [0]  # bumped by cancel_fits: a computation started under an older number stops
_generation_lock = threading.Lock()


def cancel_fits() -> None:
    """Stop every fit computation running now (from any thread) at its next chunk: it raises Cancelled."""
    with _generation_lock:
        _generation[0] += 1


def _check(generation: int) -> None:
    if _generation[0] != generation:
        from embodied_tui.ask.budget import Cancelled

        raise Cancelled("cancelled while computing fits")


_KEYS: dict[int, tuple[Any, str]] = {}  # id(record) -> (record, key): a record's digest, once per record object
_CONTENT: dict[int, tuple[Any, str]] = {}  # id(record) -> (record, _content_key)
_PROPS: dict[int, tuple[Any, dict]] = {}  # id(record) -> (record, its Model node properties)


_KEPT = 200_000  # record objects each of those caches holds at most (then it starts again)


def _per_record(cache: dict[int, tuple[Any, Any]], record, make: Callable[[Any], Any]):
    """``make(record)``, once per record object while it lives in ``cache``."""
    found = cache.get(id(record))
    if found is None or found[0] is not record:
        found = _cache_put(cache, record, make(record))
    return found[1]


def _cache_put(cache: dict[int, tuple[Any, Any]], record, value) -> tuple[Any, Any]:
    """Keep ``value`` for ``record`` (by the object: its id, and the object itself so a reused id is not taken for
    it), the cache started again past ``_KEPT`` entries."""
    if len(cache) > _KEPT:
        cache.clear()
    found = cache[id(record)] = (record, value)
    return found


def take_summarised(record, summarised: SummaryRecord) -> None:
    """Give ``record`` (whole, parsed from the very file that was summarised) the fit-store key, content key and Model
    node properties its summary's record holds, so they are not derived again."""
    _cache_put(_KEYS, record, summarised.key)
    _cache_put(_CONTENT, record, summarised.content)
    _cache_put(_PROPS, record, summarised.props)


def _record_key(record) -> str:
    """The digest of a model's record: everything a fit reads of it (``services.fit_store``'s model key): the sha256
    of its JSON (pydantic's, fields in declaration order). A summary's record carries it."""
    if type(record) is SummaryRecord:
        return record.key
    return _per_record(_KEYS, record, lambda r: hashlib.sha256(r.model_dump_json().encode()).hexdigest())


_REGISTRATION = frozenset({"name", "version", "registered_at", "tags", "description", "lineage"})


def _content_key(record) -> str:
    """The digest of what a fit reads of a record: its JSON less the registration (name, version, time, tags,
    description, lineage). Two records with the same content key and no measurements of their own have the same fit
    rows but for the model name (the per-layer costs are read by the record's sha256, which the key holds)."""
    return _per_record(_CONTENT, record,
                 lambda r: hashlib.sha256(r.model_dump_json(exclude=set(_REGISTRATION)).encode()).hexdigest())


def model_node_properties(record) -> dict:
    """``ask.graph.model_properties`` of a record, once per record object (the vocabulary and every question's plan
    read them; the store keeps the same record objects while the registry file is unchanged). Not to be changed.
    A summary's record carries them."""
    if type(record) is SummaryRecord:
        return record.props
    return _per_record(_PROPS, record, model_properties)


def load_graph(db, *, scope: Scope = WHOLE):
    """The registry graph (networkx MultiDiGraph) of ``ask.graph``; ``scope``: see ``build_graph``."""
    return Registered.read(db).graph(scope)


def open_fit_store(reg):
    """The fit-edge store of a registry: the team's shared table on a PostgreSQL registry (``data.pg.edges``, the
    same interface), else the SQLite file beside the TinyDB registry (``fit_cache_path``)."""
    if is_server_registry(reg):
        from embodied_tui.data.pg.edges import PgFitStore

        return PgFitStore(reg.url, FitEdge)
    return FitStore(fit_cache_path(reg))


def fit_cache_path(db) -> Path:
    """The fit-edge store of the registry ``db`` (``services.fit_store``)."""
    reg = registry(db)
    return reg.path.with_name(reg.path.name + ".edges.sqlite")


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def code_signature(parts: tuple[str, ...] = _CODE) -> list:
    """(file name, size, mtime) of every module of the package folders ``parts``: what derived data is keyed by, so
    that editing that code recomputes it (the fit store's device versions; ``services.summary``'s key)."""
    files = sorted(p for part in parts for p in (_PACKAGE / part).glob("*.py"))
    return [(p.name, st.st_size, st.st_mtime_ns) for p in files for st in (p.stat(),)]
