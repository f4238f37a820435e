"""The registry as a graph: models (latest versions), every device x power mode, their fit rows and the stored
measurements, laid out by ``ask.graph.build_graph``; and the names a question may use (``vocabulary``).

**Fit rows are cached** in a file beside the registry (``<registry>.fits.json``, ``fit_cache_path``): only the
fields the graph reads (``ask.graph.ROW_KEYS``, one list of values per row), per model (a digest of its record) under
one *environment* digest: the devices (catalog, user and host devices with their calibrations), the stored
measurements and the versions of the models they were taken on, and the code that computes rows (size and mtime of
the analysis, data, perf and services modules). A model's rows are computed (``services.fit.fit_record``) when its
record is not in the cache; every row is computed again when the environment changes (a measurement fitted on one
model moves the efficiency of every model on that device, so nothing finer is safe). A cache that cannot be read or
written is ignored: it only saves time.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embodied_tui.ask.graph import (
    HARDWARE,
    MODEL,
    ROW_KEYS,
    RUNS_ON,
    WHOLE,
    FitEdge,
    Scope,
    build_graph,
    model_properties,
)
from embodied_tui.ask.parse import DeviceTerm, Vocabulary
from embodied_tui.ask.pipeline_graph import PIPELINE, PipelineEdge
from embodied_tui.data.store import Registry, atomic_write
from embodied_tui.services.hardware import registry

FIT_CACHE_FORMAT = 2  # 2: rows are FitRow fields (ROW_KEYS), read back as ask.graph.FitEdge
_PACKAGE = Path(__file__).resolve().parents[1]
_CODE = ("analysis", "data", "perf", "services")  # the modules whose code a fit row depends on


@dataclass
class Registered:
    """What the graph is built from, read once."""

    reg: Registry
    records: list  # ModelRecord, latest versions
    devices: list  # HardwareEntry
    measurements: list  # Measurement
    pipelines: list = field(default_factory=list)  # StoredPipeline, latest versions

    @classmethod
    def read(cls, db) -> "Registered":
        from embodied_tui.data.pipeline_store import latest
        from embodied_tui.services.fit import devices, list_measurements

        reg = registry(db)
        return cls(reg, reg.list_models(), devices(reg), list_measurements(reg), latest(reg, strict=False))

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

    def graph(self, scope: Scope = WHOLE, *, fits: bool = True):
        """The graph; with ``scope``, only what a query can match (``ask.graph.query_scope`` for raw Cypher,
        ``keep_scope`` for a question's selections). Only the kept models' fit rows are looked up or computed, and
        none when the graph holds no RUNS_ON edges (``fits=False``, or a scope without them)."""
        records = [r for r in self.records if scope.has(MODEL) and scope.keeps(MODEL, model_properties(r))]
        model_fits = fits and scope.has_edge(RUNS_ON, MODEL, HARDWARE)
        rows = _cached_fit_rows(self, records) if model_fits else []
        return build_graph(records, self.devices, rows, self.measurements, scope=scope, pipelines=self.pipelines,
                           pipeline_fits=self.pipeline_fits if fits else None)


def load_graph(db, *, scope: Scope = WHOLE):
    """The registry graph (networkx MultiDiGraph) of ``ask.graph``; ``scope``: see ``build_graph``."""
    return Registered.read(db).graph(scope)


def fit_cache_path(db) -> Path:
    reg = registry(db)
    return reg.path.with_name(reg.path.name + ".fits.json")


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _code_signature() -> list:
    files = sorted(p for part in _CODE for p in (_PACKAGE / part).glob("*.py"))
    return [(p.name, st.st_size, st.st_mtime_ns) for p in files for st in (p.stat(),)]


def _environment(src: Registered) -> str:
    """The digest of what every fit row depends on besides its own model (see the module docstring)."""
    measured = sorted({m.model for m in src.measurements})
    return _digest({
        "format": FIT_CACHE_FORMAT, "code": _code_signature(), "columns": ROW_KEYS,
        "devices": [e.model_dump(mode="json") for e in src.devices],
        "measurements": [m.model_dump(mode="json") for m in src.measurements],
        "measured_versions": {n: [r.model_dump(mode="json") for r in src.reg.versions(n)] for n in measured},
    })


def _read_cache(path: Path, environment: str) -> dict[str, list]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("environment") != environment:
        return {}
    models = data.get("models")
    return models if isinstance(models, dict) else {}


def _cached_fit_rows(src: Registered, records: list) -> list[FitEdge]:
    """What the graph reads of the fit rows of ``records`` (each model's in ``fit_record``'s order), from the cache
    where it holds them; the others are computed (``services.fit``) and the cache rewritten without the models no
    longer registered."""
    from embodied_tui.services.fit import FitContext, fit_record

    records = [r for r in records if r.macs is not None]
    if not records:
        return []
    path, environment = fit_cache_path(src.reg), _environment(src)
    cached = _read_cache(path, environment)
    keys = {r.name: _digest(r.model_dump(mode="json")) for r in src.records}
    ctx, rows, added = None, [], {}
    for record in records:
        key = keys[record.name]
        table = cached.get(key)
        if not isinstance(table, list) or any(not isinstance(row, list) or len(row) != len(ROW_KEYS)
                                              for row in table):
            ctx = ctx or FitContext.open(src.reg)
            table = [list(FitEdge.of(row)) for row in fit_record(ctx, record)]
            added[key] = table
        rows.extend(FitEdge(*row) for row in table)
    current = set(keys.values())
    if added or set(cached) - current:
        models = {k: v for k, v in cached.items() if k in current} | added
        payload = {"format": FIT_CACHE_FORMAT, "environment": environment, "columns": ROW_KEYS, "models": models}
        try:
            atomic_write(path, json.dumps(payload, separators=(",", ":")).encode())
        except OSError:
            pass
    return rows


def vocabulary(graph) -> Vocabulary:
    """The names a question may use, read from the graph's nodes."""
    models, families, tasks, types, pipelines = set(), set(), set(), set(), set()
    devices: dict[str, dict[str, Any]] = {}
    for _, data in graph.nodes(data=True):
        labels = data.get("__labels__", set())
        if MODEL in labels:
            models.add(data["name"])
            for bucket, key in ((families, "family"), (tasks, "task"), (types, "type")):
                if data.get(key) and data[key] != "unknown":
                    bucket.add(data[key])
        elif PIPELINE in labels:
            pipelines.add(data["name"])
        elif HARDWARE in labels:
            d = devices.setdefault(data["device"], {"name": data["name"], "vendor": data.get("vendor") or "",
                                                    "type": data.get("type") or "", "modes": [],
                                                    "aliases": tuple(data.get("aliases") or ()),
                                                    "host": data.get("host")})
            d["modes"].append(data["power_mode"])
    terms = tuple(DeviceTerm(id=i, name=d["name"], vendor=d["vendor"], type=d["type"], aliases=d["aliases"],
                             modes=tuple(d["modes"]), host=d["host"]) for i, d in sorted(devices.items()))
    return Vocabulary(models=tuple(sorted(models)), families=tuple(sorted(families)), tasks=tuple(sorted(tasks)),
                      types=tuple(sorted(types)), devices=terms, pipelines=tuple(sorted(pipelines)))
