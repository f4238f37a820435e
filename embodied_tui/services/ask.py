"""The ask verbs: plain-language questions and Cypher queries on the registry graph (``services.graph``), and the
optional LLM reading of a question. Plain data out.

- ``ask(db, question)``: ``ask.parse.parse_question`` -> ``StructuredQuery.to_cypher()`` -> ``run_cypher``: the
  Cypher shown is the query that ran. The graph it runs on holds only the models, device x modes and precisions the
  question's ``=``/``IN`` conditions allow (``StructuredQuery.selections()``), and no fits when the query does not
  join models to devices: the same rows, fewer edges to walk and no fit rows to read.
- ``ask(db, question, llm=True)``: the question goes to an OpenAI-compatible ``/v1/chat/completions`` endpoint
  (``$EMBODIED_AI_LLM_URL``; ``$EMBODIED_AI_LLM_MODEL``, ``$EMBODIED_AI_LLM_KEY`` optional) with one tool, the
  structured query's schema (``ask.tool``); the tool call it returns is validated and run the same way.
  Nothing leaves the machine unless both the variable and ``llm=True`` are given.
- ``query(db, cypher)``: any Cypher, on a graph holding what its MATCH pattern and WHERE conditions can match
  (``ask.graph.query_scope``): the rows of the whole graph, in the same order.
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from embodied_tui.ask.graph import build_graph, keep_scope, query_scope, run_cypher
from embodied_tui.ask.parse import StructuredQuery, Vocabulary, parse_question
from embodied_tui.ask.tool import query_from_response, tool_request
from embodied_tui.errors import UserError
from embodied_tui.services.graph import Registered, load_graph, vocabulary

LLM_URL_ENV = "EMBODIED_AI_LLM_URL"
LLM_MODEL_ENV = "EMBODIED_AI_LLM_MODEL"
LLM_KEY_ENV = "EMBODIED_AI_LLM_KEY"
LLM_TIMEOUT_S = 60.0


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
        src = Registered.read(db)
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
    """The chat-completions request body (``ask.tool.tool_request``) for ``model``, else
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
