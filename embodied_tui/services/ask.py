"""The ask verbs: the registry as a graph, plain-language questions, Cypher queries and model cards. Plain data out.

- ``load_graph(db)``: models (latest versions), every device x power mode, the fit rows of ``services.fit.fit_all``
  and stored measurements, as ``data.graph.build_graph`` lays them out.
- ``ask(db, question)``: ``analysis.ask.parse_question`` -> ``StructuredQuery.to_cypher()`` -> ``run_cypher``: the
  Cypher shown is the query that ran.
- ``ask(db, question, llm=True)``: the question goes to an OpenAI-compatible ``/v1/chat/completions`` endpoint
  (``$EMBODIED_AI_LLM_URL``; ``$EMBODIED_AI_LLM_MODEL``, ``$EMBODIED_AI_LLM_KEY`` optional) with one tool, the
  structured query's schema; the tool call it returns is validated and run the same way. Nothing leaves the machine
  unless both the variable and ``llm=True`` are given.
- ``query(db, cypher)``: any Cypher, on the same graph.
- ``model_card(db, name)``: ``analysis.card.build_card`` on the record, its details and its fit rows.
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from embodied_tui.analysis.ask import (DeviceTerm, Reading, StructuredQuery, Vocabulary, parse_question,
                                       query_from_spec, tool_schema)
from embodied_tui.data.graph import HARDWARE, MODEL, build_graph, run_cypher
from embodied_tui.data.store import Registry
from embodied_tui.errors import UserError

LLM_URL_ENV = "EMBODIED_AI_LLM_URL"
LLM_MODEL_ENV = "EMBODIED_AI_LLM_MODEL"
LLM_KEY_ENV = "EMBODIED_AI_LLM_KEY"
LLM_TIMEOUT_S = 60.0
TOOL_NAME = "structured_query"


def _registry(db) -> Registry:
    return db if isinstance(db, Registry) else Registry(db)


def load_graph(db):
    """The registry graph (networkx MultiDiGraph) of ``data.graph``."""
    from embodied_tui.services.fit import devices, fit_all, list_measurements

    reg = _registry(db)
    return build_graph(reg.list_models(), devices(reg), fit_all(reg), list_measurements(reg))


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


def _answer(question: str, parsed: StructuredQuery, graph, source: str) -> dict[str, Any]:
    cypher = parsed.to_cypher()
    columns, rows = run_cypher(graph, cypher)
    return {"question": question, "source": source, "query": parsed.spec(), "cypher": cypher, "columns": columns,
            "rows": rows, "count": len(rows) if parsed.count else None,
            "readings": [r.model_dump() for r in parsed.readings], "unparsed": parsed.unparsed,
            "notes": parsed.notes}


def ask(db, question: str, *, llm: bool = False, graph=None) -> dict[str, Any]:
    """Answer a plain-language question: ``{question, source, query, cypher, columns, rows, count, readings,
    unparsed, notes}``; ``source`` is "parser" or "llm"."""
    if not question or not question.strip():
        parse_question(question, Vocabulary())  # the one-line error for an empty question, before any work
    graph = load_graph(db) if graph is None else graph
    vocab = vocabulary(graph)
    if llm:
        parsed = ask_llm(question, vocab)
        return _answer(question, parsed, graph, "llm")
    return _answer(question, parse_question(question, vocab), graph, "parser")


def query(db, cypher: str, *, graph=None) -> dict[str, Any]:
    """Run Cypher on the registry graph: ``{cypher, columns, rows}``. CypherError (a UserError) when it fails."""
    graph = load_graph(db) if graph is None else graph
    columns, rows = run_cypher(graph, cypher)
    return {"cypher": cypher, "columns": columns, "rows": rows}


def model_card(db, name: str, version: int | None = None):
    """The grounded model card of a registered model (``analysis.card.Card``)."""
    from embodied_tui.analysis.card import build_card
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


def _system_prompt(vocab: Vocabulary) -> str:
    devices = "; ".join(f"{d.id} ({d.name}; modes {', '.join(d.modes)})" for d in vocab.devices)
    return ("You turn questions about neural-network models and the hardware they run on into one call of the "
            f"`{TOOL_NAME}` tool. Units: latency in ms, power in W, energy in mJ, params as a count, MACs and FLOPs "
            "as counts, bytes as bytes. Use only these names. "
            f"Models: {', '.join(vocab.models) or 'none'}. Families: {', '.join(vocab.families) or 'none'}. "
            f"Tasks: {', '.join(vocab.tasks) or 'none'}. Types: {', '.join(vocab.types) or 'none'}. "
            f"Devices (h.device values): {devices or 'none'}.")


def build_llm_request(question: str, vocab: Vocabulary, model: str | None = None) -> dict[str, Any]:
    """The chat-completions request body: the question, the vocabulary and one tool whose arguments are a query
    spec (``analysis.ask.tool_schema``), with that tool forced."""
    return {
        "model": model or os.environ.get(LLM_MODEL_ENV) or "default",
        "temperature": 0,
        "messages": [{"role": "system", "content": _system_prompt(vocab)},
                     {"role": "user", "content": question}],
        "tools": [{"type": "function", "function": {
            "name": TOOL_NAME, "description": "Query the registry graph of models and devices.",
            "parameters": tool_schema()}}],
        "tool_choice": {"type": "function", "function": {"name": TOOL_NAME}},
    }


def parse_llm_response(body: Any, question: str = "") -> StructuredQuery:
    """The StructuredQuery in a chat-completions response's tool call (validated: only known fields and operators,
    so the model cannot run arbitrary Cypher). UserError with one line when there is none or it is invalid."""
    try:
        message = body["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        raise UserError("the LLM's answer has no choices[0].message; is the endpoint OpenAI-compatible?") from None
    calls = message.get("tool_calls") or []
    call = next((c for c in calls if (c.get("function") or {}).get("name") == TOOL_NAME), None)
    if call is None:
        said = (message.get("content") or "").strip().replace("\n", " ")[:120]
        raise UserError(f"the LLM did not call the {TOOL_NAME} tool" + (f" (it said: {said!r})" if said else "")
                        + "; ask without --llm to use the offline parser")
    parsed = query_from_spec(call["function"].get("arguments") or "{}")
    parsed.readings.append(Reading(phrase=question, meaning="read by the LLM (tool call)"))
    return parsed


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
    return parse_llm_response(body, question)
