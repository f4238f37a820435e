"""Stored pipelines in the registry graph (``ask.graph.build_graph`` calls ``add_pipelines``)::

    (:Pipeline {name, version, rate_hz, period_ms, precision, stages, stage_count, models})
      -[:RUNS_ON {total_ms, latency_ms, rate_hz, required_rate_hz, meets_rate, margin, fits_memory, memory_bytes,
                  slowest_stage, power_mode, mode, precision}]-> (:Hardware)
    (:Pipeline) -[:USES {stage}]-> (:Model)

- One Pipeline node per stored name (its latest version), node id ``pipeline:<name>``. ``p.rate_hz`` is the rate the
  pipeline must hold; ``p.stages`` its stage names in order; ``p.models`` the registered models its stages run.
- One RUNS_ON edge per Hardware node (device x power mode), at the pipeline's own precision (the spec's, else fp16;
  a stage's own precision wins): ``services.pipeline.fit_pipeline`` with no changes searched. ``r.total_ms`` is the
  time per control period, ``r.rate_hz`` the rate the device holds (``1000 / total_ms``), ``r.meets_rate`` whether it
  holds ``p.rate_hz``, ``r.margin`` ``1 - total_ms / period_ms`` (negative: short by that share), ``r.fits_memory``
  the memory verdict (None where the device states no memory), ``r.memory_bytes`` what the pipeline needs.
  ``r.mode`` is ``r.power_mode`` (both names work). A pair that cannot be fitted (the device states no peak at the
  precision) has no edge; a stage whose time is unknown leaves the times None.
- USES edges join a pipeline to the Model nodes of its registered-model stages (config stages run no registered
  model and have none).
- Fits are lazy: computed only when the graph may hold these RUNS_ON edges (the query's scope names them, or names no
  labels), and only for the Pipeline and Hardware nodes the scope keeps.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, NamedTuple

PIPELINE, USES = "Pipeline", "USES"


def pipeline_node_id(name: str) -> str:
    return f"pipeline:{name}"


class PipelineEdge(NamedTuple):
    """What the graph reads of a ``services.pipeline.PipelineFit`` (``of``)."""

    pipeline: str
    hardware: str
    power_mode: str
    precision: str
    total_ms: float | None
    latency_ms: float | None
    rate_hz: float | None
    required_rate_hz: float
    meets_rate: bool | None
    margin: float | None
    fits_memory: bool | None
    memory_bytes: float | None
    slowest_stage: str | None

    @classmethod
    def of(cls, fit: Any) -> "PipelineEdge":
        timed = [s for s in fit.stages if s.ms_per_period is not None]
        slowest = max(timed, key=lambda s: s.ms_per_period).name if timed and fit.total_ms is not None else None
        return cls(fit.name, fit.hardware, fit.power_mode, fit.precision, fit.total_ms, fit.latency_ms, fit.rate_hz,
                   fit.required_rate_hz, fit.meets_rate, fit.margin, fit.memory_fit.fits,
                   fit.memory_fit.total_bytes, slowest)


def pipeline_properties(stored: Any) -> dict[str, Any]:
    """The Pipeline node's properties of a stored pipeline (``data.pipeline_store.StoredPipeline``)."""
    spec = stored.spec
    rate = spec.required_rate_hz
    return {"name": stored.name, "version": stored.version, "rate_hz": rate, "period_ms": 1000.0 / rate,
            "precision": spec.precision or "fp16", "stages": [s.name for s in spec.stages],
            "stage_count": len(spec.stages), "models": sorted({s.model for s in spec.stages if s.model})}


PipelineFits = Callable[[list[str], list[tuple[str, str]]], Iterable[PipelineEdge]]


def add_pipelines(g, pipelines: Iterable[Any], fits: PipelineFits | None, scope, hardware_nodes: dict,
                  model_node_id: Callable[[str], str], labels: tuple[str, str, str]) -> None:
    """Add Pipeline nodes, their RUNS_ON edges (``fits(pipeline names, [(device, mode)])``, called once, only when
    the scope can hold such edges) and USES edges to ``g``. ``hardware_nodes``: (device, casefolded mode) -> node id
    of the Hardware nodes in ``g``; ``labels``: (RUNS_ON, HARDWARE, MODEL)."""
    runs_on, hardware, model = labels
    if not scope.has(PIPELINE):
        return
    kept: list[dict[str, Any]] = []
    for stored in pipelines:
        props = pipeline_properties(stored)
        if scope.keeps(PIPELINE, props):
            g.add_node(pipeline_node_id(props["name"]), __labels__={PIPELINE}, **props)
            kept.append(props)
    if fits is not None and kept and hardware_nodes and scope.has_edge(runs_on, PIPELINE, hardware):
        pairs = [(node_key[0], g.nodes[node]["power_mode"]) for node_key, node in hardware_nodes.items()]
        for edge in fits([p["name"] for p in kept], pairs):
            src = pipeline_node_id(edge.pipeline)
            dst = hardware_nodes.get((edge.hardware, str(edge.power_mode).casefold()))
            if src not in g or dst is None:
                continue
            props = dict(edge._asdict())
            del props["pipeline"], props["hardware"]
            props["mode"] = edge.power_mode
            if scope.keeps_edge(runs_on, props):
                g.add_edge(src, dst, key=edge.precision, __labels__={runs_on}, **props)
    if scope.has_edge(USES, PIPELINE, model):
        for stored in pipelines:
            src = pipeline_node_id(stored.name)
            for stage in stored.spec.stages if src in g else ():
                dst = model_node_id(stage.model) if stage.model else None
                if dst in g and scope.keeps_edge(USES, {"stage": stage.name}):
                    g.add_edge(src, dst, __labels__={USES}, stage=stage.name)
