"""The ask verbs: plain-language questions and Cypher queries on the registry graph (``services.graph``), and the
optional LLM reading of a question. Plain data out.

- ``ask(db, question)``: ``ask.parse.parse_question`` -> ``StructuredQuery.to_cypher()`` -> ``run_cypher``: the
  Cypher shown is the query that ran. The graph it runs on holds only the models, device x modes and precisions the
  question's ``=``/``IN`` conditions allow (``StructuredQuery.selections()``), and no fits when the query does not
  join models to devices: the same rows, fewer edges to walk and no fit rows to read. The names a question may use
  come from the records directly (``services.graph.vocabulary_of``, kept while the registry is unchanged).
- A count of models (or devices) joined to fits ("how many models run under 1 ms on the orin nano?") is answered by
  the planner when every condition is decided on every row it keeps (``ask.plan.where_decider``): the distinct names,
  sorted, which is what the shown query (``RETURN DISTINCT ... ORDER BY``) returns on the whole graph (the tests
  compare both); where one row cannot be decided, the query runs as usual. grand-cypher's matching costs about
  0.2-0.7 ms a row, so a count over 7,000 models took seconds.
- "faster than <model>" / "slower than <model>" with no number: that model's own predicted latency on each device x
  mode x precision the question keeps is read first (its fit rows only), and the query compares each row with the
  one on its target (``ask.query.Relative``); the notes list the latencies used. No device named, or more targets
  than one query's AND/OR limit holds: refused, with the reason.
- ``ask(db, question, llm=True)``: the question goes to an OpenAI-compatible ``/v1/chat/completions`` endpoint
  (``$EMBODIED_AI_LLM_URL``; ``$EMBODIED_AI_LLM_MODEL``, ``$EMBODIED_AI_LLM_KEY`` optional) with one tool, the
  structured query's schema (``ask.tool``); the tool call it returns is validated and run the same way.
  Nothing leaves the machine unless both the variable and ``llm=True`` are given.
- A question naming a stored pipeline runs on its RUNS_ON edges (``ask.pipeline_graph``) and its answer adds
  ``answer``: the verdict of each row in words (``ask.verdict``), and ``asked_rate_hz``.
- ``query(db, cypher)``: any Cypher, on a graph holding what its MATCH pattern and WHERE conditions can match
  (``ask.graph.query_scope``): the rows of the whole graph, in the same order. ``h.device``/``h.power_mode``
  conditions keep only those devices' fits, ``r.precision = / IN`` only those precisions', and comparisons of a
  RUNS_ON property with a constant are read by the fit store's SQL (``ask.cypher_scope``).

Bounds: a question is at most ``ask.parse.MAX_QUESTION_CHARS`` characters; a Cypher query passes ``ask.graph``'s
static limits (length, AND/OR, nesting, hops, SKIP/LIMIT), then parses and runs in a forked child within a time and
memory budget (``ask.budget``: 10 s and 1 GB unless ``$EMBODIED_AI_QUERY_SECONDS``/``$EMBODIED_AI_QUERY_MEMORY_MB``
say otherwise); ``cancel_queries()`` stops the running ones. The LLM call has one deadline for connect, send and read
(``LLM_TIMEOUT_S``, ``$EMBODIED_AI_LLM_TIMEOUT_S``) and reads at most ``LLM_MAX_BYTES``. Every failure is one
UserError line.
"""
from __future__ import annotations

import json
import os
import re
import socket
import threading
import urllib.parse
from dataclasses import replace
from typing import Any, Callable

from embodied_tui.ask.budget import cancel_all, env_number
from embodied_tui.ask.graph import HARDWARE, MODEL, CypherError, check_query, parse_cypher, query_scope, run_cypher
from embodied_tui.ask.parse import MAX_QUESTION_CHARS, StructuredQuery, Vocabulary, parse_question
from embodied_tui.ask.pipeline_graph import PIPELINE
from embodied_tui.ask.plan import plan, where_decider
from embodied_tui.ask.query import Condition, Order, Threshold
from embodied_tui.ask.tool import query_from_response, tool_request
from embodied_tui.ask.verdict import comparison, every_verdict, group_counts, refusal, verdicts, yes_no
from embodied_tui.errors import UserError
from embodied_tui.services.graph import Registered, cancel_fits, load_graph
from embodied_tui.services.vocabulary import model_sizes, vocabulary, vocabulary_of

LLM_URL_ENV = "EMBODIED_AI_LLM_URL"
LLM_MODEL_ENV = "EMBODIED_AI_LLM_MODEL"
LLM_KEY_ENV = "EMBODIED_AI_LLM_KEY"
LLM_TIMEOUT_S = 60.0  # the whole call: connect, send and read (not per read)
LLM_TIMEOUT_ENV = "EMBODIED_AI_LLM_TIMEOUT_S"
LLM_MAX_BYTES = 4_000_000  # a chat completion with one tool call is a few KB


# ------------------------------------------------------------------------------------------------ the verbs

def determined(parsed: StructuredQuery) -> bool:
    """Whether the rows answer the question: every word understood, or the words left over carry no number, are close
    to no known name (no misspelling), gave no reason to refuse, and the rest of the question still asks something
    (a condition, an ordering, a count or a comparison): else no table is shown, only why."""
    if parsed.understood:
        return True
    if parsed.reasons or any(re.search(r"\d", w) for w in parsed.unparsed):
        return False
    if any("did you mean" in n or n.endswith("was not understood here") for n in parsed.notes):
        return False
    return bool(parsed.conditions or parsed.order_by or parsed.count or parsed.compare)


def _answer(question: str, parsed: StructuredQuery, graph, source: str,
            result: tuple[list[str], list[list[Any]]] | None = None) -> dict[str, Any]:
    """The answer's keys (stable; the CLI and the app read them): question, source, query, cypher, columns, rows,
    count, readings, unparsed, notes, understood (every meaning-carrying word read), reasons (why not, one line
    each), refused (no rows were computed because of it), answer (sentences to show first: the refusal, a
    comparison's verdict and ratio, a pipeline's verdicts); asked_rate_hz for a pipeline question. ``result``:
    (columns, rows) already known (a count the planner decided), else the query runs on ``graph``."""
    cypher = parsed.to_cypher()
    refused = not determined(parsed)
    columns, rows = ([], []) if refused else result if result is not None else run_cypher(graph, cypher)
    rows = parsed.kept_rows(columns, rows)  # 'the 3 fastest models': each model's first row; 'the 2nd': one row
    lead = refusal(parsed)
    reasons = [lead.removeprefix("not understood: ")] if lead else []
    out = {"question": question, "source": source, "query": parsed.spec(), "cypher": cypher, "columns": columns,
           "rows": rows, "count": None if refused or not parsed.count else len(rows),
           "readings": [r.model_dump() for r in parsed.readings], "unparsed": parsed.unparsed,
           "notes": parsed.notes, "understood": parsed.understood, "reasons": reasons, "refused": refused,
           "answer": []}
    if lead:
        out["answer"].append(lead + ("; no answer is shown: rephrase, or write the Cypher for `embodied-ai query`"
                                     if refused else "; the rows below answer the rest of the question"))
    if parsed.compare is not None and not refused:  # the verdict and the ratio in words (ask.verdict)
        out["answer"] += comparison(parsed.compare, columns, rows)
    if parsed.group_by is not None and parsed.count and not refused:  # 'how many models per family'
        out["columns"], out["rows"], out["count"], said = group_counts(parsed.group_by, columns, rows)
        out["answer"].append(said)
    if parsed.yes_no and parsed.understood and not parsed.count and not parsed.about_pipelines():
        out["answer"].append(yes_no(parsed, columns, rows))  # 'does X fit on Y?': yes or no first (ask.verdict)
    if parsed.about_pipelines():  # a pipeline question: the verdict in words (ask.verdict)
        out["asked_rate_hz"] = parsed.asked_rate_hz
        if not refused:
            out["answer"] += verdicts(columns, rows, parsed.asked_rate_hz)
    return out


def _with_sizes_and_tags(vocab: Vocabulary, graph, records) -> Vocabulary:
    """The vocabulary of a given graph plus each model's sizes and input shape (from its Model node: 'lighter than
    resnet50', 'taking 224x224 inputs') and
    tags (from its record: 'the robot tag')."""
    sizes = {d["name"]: model_sizes(d) for _, d in graph.nodes(data=True)
             if MODEL in d.get("__labels__", ()) and d.get("name")}
    tags = {r.name: dict(r.tags) for r in records or () if getattr(r, "tags", None)}
    return replace(vocab, sizes=sizes, tags=tags)


def ask(db, question: str, *, llm: bool = False, graph=None, progress=None) -> dict[str, Any]:
    """Answer a plain-language question: ``{question, source, query, cypher, columns, rows, count, readings,
    unparsed, notes}``; ``source`` is "parser" or "llm". With ``graph`` given, the query runs on it as it is.
    ``progress(done, total)``: called as fit rows are computed (``services.graph``)."""
    if not isinstance(question, str) or not question.strip() or len(question) > MAX_QUESTION_CHARS:
        parse_question(question, Vocabulary())  # the one-line error (empty, too long), before any work
    source = "llm" if llm else "parser"
    src = None
    if graph is None:
        src = Registered.read(db)
        vocab = vocabulary_of(src)  # the names, sizes and tags, without a graph (kept while the registry is unchanged)
    else:
        vocab = _with_sizes_and_tags(vocabulary(graph), graph, _records(db))
    parsed = ask_llm(question, vocab) if llm else parse_question(question, vocab)
    if parsed.relative is not None and parsed.relative.thresholds is None and determined(parsed):
        parsed = _with_thresholds(parsed, src, graph)
    out = _answer_parsed(question, parsed, src, graph, source, progress)
    if parsed.universal and parsed.yes_no and out["answer"] and determined(parsed):
        universe = _universe(parsed)
        everyone = _answer_parsed(question, universe, src, graph, source, None)
        out["answer"][-1] = every_verdict(parsed, out["columns"], out["rows"], everyone["columns"], everyone["rows"])
    return out


def _universe(parsed: StructuredQuery) -> StructuredQuery:
    """'are all models under 100k params': the subjects the claim is about, without what it claims of them (its
    measures, thresholds and flags): the question's '='/'IN' conditions only (family, task, device, precision ...)."""
    kept = [c for c in parsed.conditions if c.op in ("=", "IN") and not c.negate and not isinstance(c.value, bool)]
    return parsed.model_copy(update={"conditions": kept, "yes_no": False, "universal": False, "order_by": [],
                                     "limit": None, "count": True})  # their names, DISTINCT


def _answer_parsed(question: str, parsed: StructuredQuery, src: Registered | None, graph, source: str,
                   progress: Callable[[int, int], None] | None) -> dict:
    """The answer to a parsed question: planned and computed from ``src`` (only what the question can see), or run
    on ``graph`` as it is."""
    if src is not None and not determined(parsed):  # refused: nothing is computed, the names graph answers nothing
        return _answer(question, parsed, None, source)
    if src is not None:
        parsed = _with_stated_peak(parsed, src.devices)
        parsed = _with_memory_note(_with_precision_note(parsed, src.devices), src.devices)
    if src is not None and parsed.count and parsed.every_device and not parsed.group_by:
        return _every_device_count(question, parsed, src, source, progress)
    if src is not None:  # plan first (ask.plan): only the fits the question can see, none for models or devices alone
        scope, top = plan(parsed)
        if parsed.about_pipelines():  # the pipelines' edges only: no model fits to read
            scope = replace(scope, labels=frozenset({PIPELINE, HARDWARE}))
        elif parsed.count and parsed.joins() and top is not None and top.decide is not None and not parsed.group_by:
            values = src.count(scope, top, progress=progress)  # the distinct names, where every row is decided
            if values is not None:
                return _answer(question, parsed, None, source,
                               result=(parsed.columns(), [[v] for v in values]))
        elif parsed.joins() and not parsed.count and (decide := where_decider(parsed)) is not None:
            rows = src.decided_rows(scope, top, decide, parsed.columns(), parsed.order_items(),
                                    None if parsed.per_subject or parsed.per_device else parsed.limit,
                                    progress=progress)  # the rows without a graph, where every row is decided
            if rows is not None:
                return _answer(question, parsed, None, source, result=(parsed.columns(), rows))
        elif parsed.pattern() == "(m:Model)" and (decide := where_decider(parsed)) is not None:
            rows = src.decided_model_rows(scope, decide, parsed.columns(), parsed.order_items(),
                                          None if parsed.count else parsed.limit)
            if rows is not None:  # models alone, decided on each: no graph either (a count: DISTINCT, sorted)
                if parsed.count:
                    rows = [row for i, row in enumerate(rows) if i == 0 or row != rows[i - 1]]
                return _answer(question, parsed, None, source, result=(parsed.columns(), rows))
        graph = src.graph(scope, fits=parsed.joins(), top=top, edges_only=parsed.joins() and not parsed.about_pipelines(),
                          progress=progress)
    return _answer(question, parsed, graph, source)


def _every_device_count(question: str, parsed: StructuredQuery, src: Registered, source: str,
                        progress: Callable[[int, int], None] | None) -> dict:
    """'how many models run under 1 ms on every jetson': the models listed with a row on each device named
    (``StructuredQuery.kept_rows``), counted; a count's own DISTINCT names would take a row on any one of them."""
    listing = parsed.model_copy(update={"count": False, "limit": None, "order_by": []})
    listed = _answer_parsed(question, listing, src, None, source, progress)  # kept_rows: those on every device
    at = listed["columns"].index("m.name")
    names = sorted({row[at] for row in listed["rows"]})
    return _answer(question, parsed, None, source, result=(parsed.columns(), [[name] for name in names]))


def _named(parsed: StructuredQuery, fld: str) -> set:
    """The values the question names of ``fld`` ('=' or 'IN', not negated): its devices, its precisions."""
    out: set = set()
    for c in parsed.conditions:
        if c.field == fld and not c.negate and c.op in ("=", "IN"):
            out |= set(c.value) if isinstance(c.value, list) else {c.value}
    return out


def _stated_precisions(devices: list, ids: set) -> set[str]:
    """The precisions at which any mode of the devices ``ids`` states a peak."""
    return {p for entry in devices if entry.id in ids for mode in entry.power_modes for p in mode.peak_tflops}


def _with_stated_peak(parsed: StructuredQuery, devices: list) -> StructuredQuery:
    """'the peak compute of the pi 5': a peak asked with no precision is read at fp16 (TFLOPS) or int8 (TOPS); where
    the devices named state a peak at none of those but at exactly one other precision (the pi 5: fp32 only), it is
    that peak that is asked for, said in a note instead of the assumption's."""
    from embodied_tui.ask.phrases import assumed_peak

    assumed = {found[1] for note in parsed.notes if (found := assumed_peak(note)) is not None}
    ids = _named(parsed, "h.device")
    if not assumed or not ids:
        return parsed
    stated = _stated_precisions(devices, ids)
    if len(stated) != 1 or stated & assumed:
        return parsed
    (only,) = stated
    fields = {f"h.peak_{prec}_tflops": f"h.peak_{only}_tflops" for prec in assumed}
    conditions = [c.model_copy(update={"field": fields[c.field]}) if c.field in fields else c
                  for c in parsed.conditions]
    order_by = [o.model_copy(update={"field": fields[o.field]}) if o.field in fields else o for o in parsed.order_by]
    readings = [r.model_copy(update={"meaning": _renamed(r.meaning, fields)}) for r in parsed.readings]
    names = ", ".join(sorted(ids))
    notes = [note if (found := assumed_peak(note)) is None else
             f"'{found[0]}': no precision named, and {names} {'states' if len(ids) == 1 else 'state'} a peak only at "
             f"{only}: read as the {only} peak" for note in parsed.notes]
    return parsed.model_copy(update={"conditions": conditions, "order_by": order_by, "readings": readings,
                                     "notes": notes})


def _renamed(text: str, fields: dict[str, str]) -> str:
    for old, new in fields.items():
        text = re.sub(rf"\b{re.escape(old)}\b", new, text)
    return text


def _with_precision_note(parsed: StructuredQuery, devices: list) -> StructuredQuery:
    """``parsed`` with a note when no device it names states a peak at a precision it asks for ('mlp on the pi 5 in
    int8', 'the int8 peak of the thor'): those devices have no row at that precision, so the answer is empty for that
    reason, not because no model is fast enough."""
    asked, ids = _named(parsed, "r.precision"), _named(parsed, "h.device")
    asked |= {m.group(1) for c in parsed.conditions if (m := re.fullmatch(r"h\.peak_(\w+)_tflops", c.field))}
    if not asked or not ids:
        return parsed
    stated = _stated_precisions(devices, ids)
    lacking = sorted(asked - stated)  # stated by none of them ('orin nano' names its CPU entry too: fp32 only)
    if not lacking or not stated:
        return parsed
    names = ", ".join(sorted(ids))
    lacked = "/".join(lacking)
    notes = [*parsed.notes, f"{names} {'states' if len(ids) == 1 else 'state'} no {lacked} peak (precisions stated: "
                            f"{', '.join(sorted(stated))}): no {lacked} peak or fit rows to show there"]
    return parsed.model_copy(update={"notes": notes})


def _with_memory_note(parsed: StructuredQuery, devices: list) -> StructuredQuery:
    """``parsed`` with a note when it asks whether models fit on devices that state no memory size ('how many models
    fit on the hailo-8l'): their fit rows hold no fits-memory verdict (null: unknown), so no row says a model fits or
    does not, and the empty answer is for that reason."""
    if not any(c.field == "r.fits_memory" for c in parsed.conditions):
        return parsed
    ids = _named(parsed, "h.device")
    unknown = sorted(e.id for e in devices if e.id in ids and e.memory_bytes is None and e.onchip_memory_bytes is None)
    if not unknown:
        return parsed
    said = ", ".join(unknown)
    notes = [*parsed.notes, f"{said} {'states' if len(unknown) == 1 else 'state'} no memory size (DRAM or on-chip): "
                            f"whether a model fits there is unknown (fits_memory is null), so no row says it fits or "
                            f"not"]
    return parsed.model_copy(update={"notes": notes})


def _fits_limits(parsed: StructuredQuery) -> bool:
    """Whether the query passes ``ask.graph``'s static limits (AND/OR, length)."""
    try:
        check_query(parsed.to_cypher())
    except CypherError:
        return False
    return True


def _with_thresholds(parsed: StructuredQuery, src: Registered | None, graph) -> StructuredQuery:
    """``parsed`` with its 'faster than <model>' resolved: that model's predicted latency on each device x mode x
    precision the question's device, mode and precision conditions keep, read by a query of its own rows (on
    ``graph`` when given, else on the graph planned for it: only its fits). No latency there, or more targets than
    one query can hold (``ask.graph.check_query``'s AND/OR limit): a reason to refuse, in words."""
    relative = parsed.relative
    kept = [c for c in parsed.conditions if c.field.startswith("h.") or c.field == "r.precision"]
    ref = StructuredQuery(conditions=[*kept, Condition(field="m.name", op="=", value=relative.model)],
                          order_by=[Order(field="r.latency_ms")])
    if graph is None:
        scope, _ = plan(ref)
        graph = src.graph(scope, top=None, edges_only=True)
    columns, rows = run_cypher(graph, ref.to_cypher())
    at = {c: i for i, c in enumerate(columns)}
    thresholds = sorted((Threshold(device=row[at["h.device"]], power_mode=row[at["h.power_mode"]],
                                   precision=row[at["r.precision"]], latency_ms=row[at["r.latency_ms"]])
                         for row in rows), key=lambda t: (t.device, t.power_mode, t.precision))
    reasons, notes = list(parsed.reasons), list(parsed.notes)
    if not thresholds:
        reasons.append(f"'{relative.phrase}': {relative.model} has no predicted latency on the devices asked")
    elif not _fits_limits(parsed.model_copy(update={"relative": relative.model_copy(
            update={"thresholds": thresholds})})):
        reasons.append(f"'{relative.phrase}': {relative.model} runs on {len(thresholds)} device x mode x precision "
                       f"targets here, too many to compare in one query; name one device and power mode, or a "
                       f"precision")
    else:
        notes.append(f"'{relative.phrase}' read as below {relative.model}'s own predicted latency on each target: "
                     if relative.op == "<" else
                     f"'{relative.phrase}' read as above {relative.model}'s own predicted latency on each target: ")
        notes[-1] += "; ".join(f"{t.device} {t.power_mode} {t.precision} {t.latency_ms:g} ms" for t in thresholds)
    if reasons != parsed.reasons:  # refused: the query is shown as read, with the model's latency unresolved
        return parsed.model_copy(update={"reasons": reasons})
    return parsed.model_copy(update={"relative": relative.model_copy(update={"thresholds": thresholds}),
                                     "notes": notes})


def _records(db) -> list:
    """The registry's latest records (for their tags), or none when there is no registry to read."""
    if db is None:
        return []
    from embodied_tui.services.hardware import registry

    return registry(db).list_models()


def query(db, cypher: str, *, graph=None) -> dict[str, Any]:
    """Run Cypher on the registry graph: ``{cypher, columns, rows}``. CypherError (a UserError) when it fails.

    Without ``graph``, the graph holds only what the query can match (``ask.graph.query_scope``): the same rows, in
    the same order, as on the whole graph, without building and walking the rest of it."""
    tree = None
    if graph is None:
        tree = parse_cypher(cypher)  # a syntax error or a limit says so before the registry is read
        graph = load_graph(db, scope=query_scope(cypher, tree=tree))
    columns, rows = run_cypher(graph, cypher, tree=tree)
    return {"cypher": cypher, "columns": columns, "rows": rows}


def cancel_queries() -> int:
    """Stop every query running now (from any thread: the app calls it when a new question replaces one, or on
    leaving the screen); the ``ask``/``query`` calls waiting on them raise ``ask.budget.Cancelled`` (a UserError).
    Returns how many were stopped."""
    cancel_fits()
    return cancel_all()


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


def _llm_seconds(timeout: float | None) -> float:
    return timeout if timeout is not None else env_number(LLM_TIMEOUT_ENV, LLM_TIMEOUT_S, "number of seconds")


def _post(endpoint: str, payload: bytes, headers: dict[str, str], seconds: float) -> bytes:
    """POST ``payload`` and return the response body: connect, send and read all within ``seconds`` in total (a
    watchdog shuts the socket down at the deadline, so a server that drips a byte at a time cannot hold us), at most
    ``LLM_MAX_BYTES``. UserError (one line) for anything else than a 2xx answer in time."""
    import http.client  # here: a question without --llm does not pay for http, ssl and email (~50 ms)

    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"${LLM_URL_ENV} must be an http:// or https:// URL, got {endpoint!r}")
    try:
        port = parts.port
    except ValueError:
        raise UserError(f"${LLM_URL_ENV} has a bad port: {endpoint!r}") from None
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, port, timeout=seconds)
    expired = threading.Event()

    def stop() -> None:  # the deadline: unblock whatever the call waits on
        expired.set()
        sock = connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    watchdog = threading.Timer(seconds, stop)
    watchdog.daemon = True
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    status, reason, chunks, size = 0, "", [], 0
    try:
        watchdog.start()
        connection.request("POST", path, body=payload, headers=headers)
        response = connection.getresponse()
        status, reason = response.status, response.reason
        if 200 <= status < 300:
            while not expired.is_set():
                chunk = response.read1(65536) if hasattr(response, "read1") else response.read(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > LLM_MAX_BYTES:
                    raise UserError(f"the LLM endpoint {endpoint} answered more than {LLM_MAX_BYTES // 1_000_000} MB; "
                                    f"is it OpenAI-compatible?")
                chunks.append(chunk)
    except UserError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if expired.is_set():
            raise UserError(f"the LLM endpoint {endpoint} did not answer within {seconds:g} s "
                            f"(${LLM_TIMEOUT_ENV})") from None
        reason_text = str(getattr(exc, "reason", "") or exc).splitlines()
        detail = reason_text[0] if reason_text and reason_text[0] else type(exc).__name__
        raise UserError(f"cannot reach the LLM endpoint {endpoint}: {detail}; check ${LLM_URL_ENV}") from None
    finally:
        watchdog.cancel()
        connection.close()
    if expired.is_set():
        raise UserError(f"the LLM endpoint {endpoint} did not answer within {seconds:g} s ({LLM_TIMEOUT_ENV})")
    if not 200 <= status < 300:
        said = " ".join(str(reason).split())[:80]
        raise UserError(f"the LLM endpoint {endpoint} answered HTTP {status} {said}".rstrip())
    return b"".join(chunks)


def ask_llm(question: str, vocab: Vocabulary, *, url: str | None = None, timeout: float | None = None) \
        -> StructuredQuery:
    """Send the question to ``$EMBODIED_AI_LLM_URL`` and return the structured query of its tool call.

    The whole call (connect, send, read) has ``timeout`` seconds (else ``$EMBODIED_AI_LLM_TIMEOUT_S``, else
    ``LLM_TIMEOUT_S``), the answer at most ``LLM_MAX_BYTES``; an answer that is not JSON, nested too deeply, or not
    a chat completion with a valid tool call is one UserError line."""
    url = url or os.environ.get(LLM_URL_ENV)
    if not url:
        raise UserError(f"--llm needs ${LLM_URL_ENV} (an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1); "
                        f"without it, ask without --llm")
    seconds = _llm_seconds(timeout)
    endpoint = llm_endpoint(url.strip())
    payload = json.dumps(build_llm_request(question, vocab)).encode()
    headers = {"Content-Type": "application/json"}
    if os.environ.get(LLM_KEY_ENV):
        headers["Authorization"] = f"Bearer {os.environ[LLM_KEY_ENV].strip()}"
    raw = _post(endpoint, payload, headers, seconds)
    try:
        body = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise UserError(f"the LLM endpoint {endpoint} answered JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError):  # not JSON, or a number too long for int()
        raise UserError(f"the LLM endpoint {endpoint} did not answer JSON") from None
    return query_from_response(body, question)
