"""The ask verbs: the registry as a graph, plain-language questions, Cypher queries and model cards. Plain data out.

- ``load_graph(db)``: models (latest versions), every device x power mode, their fit rows (those of
  ``services.fit.fit_all``) and stored measurements, as ``ask.graph.build_graph`` lays them out.
- ``ask(db, question)``: ``analysis.ask.parse_question`` -> ``StructuredQuery.to_cypher()`` -> ``run_cypher``: the
  Cypher shown is the query that ran. The graph it runs on holds only the models, device x modes and precisions the
  question's ``=``/``IN`` conditions allow (``StructuredQuery.selections()``), and no fits when the query does not
  join models to devices: the same rows, fewer edges to walk and no fit rows to read.
- ``ask(db, question, llm=True)``: the question goes to an OpenAI-compatible ``/v1/chat/completions`` endpoint
  (``$EMBODIED_AI_LLM_URL``; ``$EMBODIED_AI_LLM_MODEL``, ``$EMBODIED_AI_LLM_KEY`` optional) with one tool, the
  structured query's schema (``analysis.ask_tool``); the tool call it returns is validated and run the same way.
  Nothing leaves the machine unless both the variable and ``llm=True`` are given.
- ``query(db, cypher)``: any Cypher, on a graph holding what its MATCH pattern and WHERE conditions can match
  (``ask.graph.query_scope``): the rows of the whole graph, in the same order.
- ``model_card(db, name)``: ``services.card.build_card`` on the record, its details and its fit rows.

**Fit rows are cached** in a file beside the registry (``<registry>.fits.json``, ``fit_cache_path``), per model
(a digest of its record) under one *environment* digest: the devices (catalog, user and host devices with their
calibrations), the stored measurements and the versions of the models they were taken on, and the code that computes
rows (size and mtime of the analysis, data and services modules). A model's rows are computed when its record is not
in the cache; every row is computed again when the environment changes (a measurement fitted on one model moves the
efficiency of every model on that device, so nothing finer is safe). A cache that cannot be read or written is
ignored: it only saves time.
"""
from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embodied_tui.ask.parse import DeviceTerm, StructuredQuery, Vocabulary, parse_question
from embodied_tui.ask.tool import query_from_response, tool_request
from embodied_tui.ask.graph import (HARDWARE, MODEL, ROW_KEYS, RUNS_ON, WHOLE, Scope, build_graph, keep_scope,
                                     model_properties, query_scope, run_cypher)
from embodied_tui.data.store import Registry, atomic_write
from embodied_tui.errors import UserError

LLM_URL_ENV = "EMBODIED_AI_LLM_URL"
LLM_MODEL_ENV = "EMBODIED_AI_LLM_MODEL"
LLM_KEY_ENV = "EMBODIED_AI_LLM_KEY"
LLM_TIMEOUT_S = 60.0
FIT_CACHE_FORMAT = 1
_PACKAGE = Path(__file__).resolve().parents[1]


def _registry(db) -> Registry:
    return db if isinstance(db, Registry) else Registry(db)


# ------------------------------------------------------------------------------------------------ the graph

@dataclass
class _Registered:
    """What the graph is built from, read once."""

    reg: Registry
    records: list  # ModelRecord, latest versions
    devices: list  # HardwareEntry
    measurements: list  # Measurement

    @classmethod
    def read(cls, db) -> "_Registered":
        from embodied_tui.services.fit import devices, list_measurements

        reg = _registry(db)
        return cls(reg, reg.list_models(), devices(reg), list_measurements(reg))

    def graph(self, scope: Scope = WHOLE, *, fits: bool = True):
        """The graph; with ``scope``, only what a query can match (``ask.graph.query_scope`` for raw Cypher,
        ``keep_scope`` for a question's selections). Only the kept models' fit rows are looked up or computed, and
        none when the graph holds no RUNS_ON edges (``fits=False``, or a scope without them)."""
        records = [r for r in self.records if scope.has(MODEL) and scope.keeps(MODEL, model_properties(r))]
        fits = fits and scope.has_edge(RUNS_ON, MODEL, HARDWARE)
        rows = _cached_fit_rows(self, records) if fits else []
        return build_graph(records, self.devices, rows, self.measurements, scope=scope)


def load_graph(db, *, scope: Scope = WHOLE):
    """The registry graph (networkx MultiDiGraph) of ``ask.graph``; ``scope``: see ``build_graph``."""
    return _Registered.read(db).graph(scope)


def fit_cache_path(db) -> Path:
    reg = _registry(db)
    return reg.path.with_name(reg.path.name + ".fits.json")


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _code_signature() -> list:
    files = sorted(p for part in ("analysis", "data", "services") for p in (_PACKAGE / part).glob("*.py"))
    return [(p.name, st.st_size, st.st_mtime_ns) for p in files for st in (p.stat(),)]


def _environment(src: _Registered) -> str:
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


def _cached_fit_rows(src: _Registered, records: list) -> list[dict]:
    """The fit rows of ``records`` (each model's in ``fit_record``'s order), from the cache where it holds them; the
    others are computed (``services.fit``) and the cache rewritten without the models no longer registered."""
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
            table = [[row.get(k) for k in ROW_KEYS] for row in fit_record(ctx, record)]
            added[key] = table
        rows.extend(dict(zip(ROW_KEYS, row)) for row in table)
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
    models, families, tasks, types = set(), set(), set(), set()
    devices: dict[str, dict[str, Any]] = {}
    for _, data in graph.nodes(data=True):
        labels = data.get("__labels__", set())
        if MODEL in labels:
            models.add(data["name"])
            for bucket, key in ((families, "family"), (tasks, "task"), (types, "type")):
                if data.get(key) and data[key] != "unknown":
                    bucket.add(data[key])
        elif HARDWARE in labels:
            d = devices.setdefault(data["device"], {"name": data["name"], "vendor": data.get("vendor") or "",
                                                    "type": data.get("type") or "", "modes": [],
                                                    "aliases": tuple(data.get("aliases") or ())})
            d["modes"].append(data["power_mode"])
    terms = tuple(DeviceTerm(id=i, name=d["name"], vendor=d["vendor"], type=d["type"], aliases=d["aliases"],
                             modes=tuple(d["modes"])) for i, d in sorted(devices.items()))
    return Vocabulary(models=tuple(sorted(models)), families=tuple(sorted(families)), tasks=tuple(sorted(tasks)),
                      types=tuple(sorted(types)), devices=terms)


# ------------------------------------------------------------------------------------------------ the verbs

def _answer(question: str, parsed: StructuredQuery, graph, source: str) -> dict[str, Any]:
    cypher = parsed.to_cypher()
    columns, rows = run_cypher(graph, cypher)
    return {"question": question, "source": source, "query": parsed.spec(), "cypher": cypher, "columns": columns,
            "rows": rows, "count": len(rows) if parsed.count else None,
            "readings": [r.model_dump() for r in parsed.readings], "unparsed": parsed.unparsed,
            "notes": parsed.notes}


def ask(db, question: str, *, llm: bool = False, graph=None) -> dict[str, Any]:
    """Answer a plain-language question: ``{question, source, query, cypher, columns, rows, count, readings,
    unparsed, notes}``; ``source`` is "parser" or "llm". With ``graph`` given, the query runs on it as it is."""
    if not question or not question.strip():
        parse_question(question, Vocabulary())  # the one-line error for an empty question, before any work
    src = None
    if graph is None:
        src = _Registered.read(db)
        vocab = vocabulary(build_graph(src.records, src.devices, ()))  # the names: nodes only, no fits
    else:
        vocab = vocabulary(graph)
    parsed = ask_llm(question, vocab) if llm else parse_question(question, vocab)
    if src is not None:  # only the fits the question can see; none when it asks about models or devices alone
        graph = src.graph(keep_scope(parsed.selections()), fits=parsed.joins())
    return _answer(question, parsed, graph, "llm" if llm else "parser")


def query(db, cypher: str, *, graph=None) -> dict[str, Any]:
    """Run Cypher on the registry graph: ``{cypher, columns, rows}``. CypherError (a UserError) when it fails.

    Without ``graph``, the graph holds only what the query can match (``ask.graph.query_scope``): the same rows, in
    the same order, as on the whole graph, without building and walking the rest of it."""
    graph = load_graph(db, scope=query_scope(cypher)) if graph is None else graph
    columns, rows = run_cypher(graph, cypher)
    return {"cypher": cypher, "columns": columns, "rows": rows}


def model_card(db, name: str, version: int | None = None):
    """The grounded model card of a registered model (``services.card.Card``)."""
    from embodied_tui.services.card import build_card
    from embodied_tui.services.fit import fit_rows

    reg = _registry(db)
    record = reg.get(name, version)
    details = reg.details(record)
    fits = fit_rows(reg, record.name, version=record.version) if record.macs is not None else []
    return build_card(record, details, fits)


# ------------------------------------------------------------------------------------------------ optional LLM

def llm_endpoint(url: str) -> str:
    """The chat-completions URL for a base URL ('http://host:8000', '.../v1' or the full path)."""
    url = url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if url.endswith("/v1"):
        return url + "/chat/completions"
    return url + "/v1/chat/completions"


def build_llm_request(question: str, vocab: Vocabulary, model: str | None = None) -> dict[str, Any]:
    """The chat-completions request body (``analysis.ask_tool.tool_request``) for ``model``, else
    ``$EMBODIED_AI_LLM_MODEL``, else "default"."""
    return tool_request(question, vocab, model or os.environ.get(LLM_MODEL_ENV) or "default")


parse_llm_response = query_from_response  # the StructuredQuery of a chat-completions response's tool call


def ask_llm(question: str, vocab: Vocabulary, *, url: str | None = None, timeout: float = LLM_TIMEOUT_S) \
        -> StructuredQuery:
    """Send the question to ``$EMBODIED_AI_LLM_URL`` and return the structured query of its tool call."""
    url = url or os.environ.get(LLM_URL_ENV)
    if not url:
        raise UserError(f"--llm needs ${LLM_URL_ENV} (an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1); "
                        f"without it, ask without --llm")
    endpoint = llm_endpoint(url)
    payload = json.dumps(build_llm_request(question, vocab)).encode()
    headers = {"Content-Type": "application/json"}
    if os.environ.get(LLM_KEY_ENV):
        headers["Authorization"] = f"Bearer {os.environ[LLM_KEY_ENV]}"
    request = urllib.request.Request(endpoint, data=payload, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (user-configured URL)
            body = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise UserError(f"the LLM endpoint {endpoint} answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"cannot reach the LLM endpoint {endpoint}: {reason}; check ${LLM_URL_ENV}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"the LLM endpoint {endpoint} did not answer JSON") from None
    return query_from_response(body, question)
