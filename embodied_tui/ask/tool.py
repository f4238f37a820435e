"""The structured query as an LLM tool: its JSON schema, the chat-completions request that offers it, and the
validation of the tool call that comes back. Pure: the HTTP call is ``services.ask.ask_llm``'s.

A tool call's arguments are a query *spec* (``StructuredQuery.spec()``): only known fields and operators pass
validation, so a model cannot run arbitrary Cypher.
"""
from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from embodied_tui.ask.query import FIELDS, OPS, SPEC_KEYS, Reading, StructuredQuery
from embodied_tui.ask.vocab import Vocabulary
from embodied_tui.errors import UserError

TOOL_NAME = "structured_query"
MAX_SPEC_CHARS = 100_000  # the arguments of one tool call (a query spec is a few hundred characters)


def query_from_spec(data: Any) -> StructuredQuery:
    """A StructuredQuery from a spec dict (an LLM tool call's arguments), validated; UserError with one line."""
    if isinstance(data, str):
        if len(data) > MAX_SPEC_CHARS:
            raise UserError(f"the structured query is too long ({len(data):,} characters; the limit is "
                            f"{MAX_SPEC_CHARS:,})")
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise UserError(f"the structured query is not valid JSON ({exc.msg} at column {exc.colno})") from None
        except RecursionError:
            raise UserError("the structured query is nested too deeply") from None
        except ValueError as exc:  # a number of more than 4,300 digits, for one
            raise UserError(f"the structured query is not valid JSON ({_one_line(exc, 80)})") from None
    if not isinstance(data, dict):
        raise UserError(f"the structured query must be a JSON object, got {type(data).__name__}")
    try:
        return StructuredQuery.model_validate({k: v for k, v in data.items() if k in SPEC_KEYS})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise UserError(f"the structured query is invalid at {where or 'the top'}: "
                        f"{_one_line(err['msg'].removeprefix('Value error, '), 200)}") from None
    except (RecursionError, ValueError, TypeError, OverflowError) as exc:  # what validators may raise past pydantic
        raise UserError(f"the structured query is invalid ({type(exc).__name__}: {_one_line(exc, 80)})") from None


def tool_schema() -> dict[str, Any]:
    """JSON schema of a query spec, for an LLM tool (OpenAI function-calling format's ``parameters``)."""
    fields = list(FIELDS)
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "subject": {"type": "string", "enum": ["model", "hardware"],
                        "description": "what the answer lists: models, or devices (one row per power mode)"},
            "conditions": {"type": "array", "items": {
                "type": "object", "additionalProperties": False, "required": ["field", "op"],
                "properties": {
                    "field": {"type": "string", "enum": fields,
                              "description": "; ".join(f"{k}: {v[1]}" for k, v in FIELDS.items())},
                    "op": {"type": "string", "enum": list(OPS)},
                    "value": {"description": "number in the field's unit, text, true/false, or a list for IN"},
                    "negate": {"type": "boolean"}}}},
            "order_by": {"type": "array", "items": {
                "type": "object", "additionalProperties": False, "required": ["field"],
                "properties": {"field": {"type": "string", "enum": fields}, "descending": {"type": "boolean"}}}},
            "limit": {"type": ["integer", "null"], "minimum": 1},
            "count": {"type": "boolean", "description": "the question asks how many"},
        },
        "required": ["subject", "conditions"],
    }


def system_prompt(vocab: Vocabulary) -> str:
    """What the model is told: its job, the units, and the names it may use (the vocabulary)."""
    devices = "; ".join(f"{d.id} ({d.name}; modes {', '.join(d.modes)})" for d in vocab.devices)
    return ("You turn questions about neural-network models and the hardware they run on into one call of the "
            f"`{TOOL_NAME}` tool. Units: latency in ms, power in W, energy in mJ, params as a count, MACs and FLOPs "
            "as counts, bytes as bytes. Use only these names. "
            f"Models: {', '.join(vocab.models) or 'none'}. Families: {', '.join(vocab.families) or 'none'}. "
            f"Tasks: {', '.join(vocab.tasks) or 'none'}. Types: {', '.join(vocab.types) or 'none'}. "
            f"Devices (h.device values): {devices or 'none'}.")


def tool_request(question: str, vocab: Vocabulary, model: str) -> dict[str, Any]:
    """The chat-completions request body: the question, the vocabulary and one tool whose arguments are a query
    spec (``tool_schema``), with that tool forced."""
    return {
        "model": model,
        "temperature": 0,
        "messages": [{"role": "system", "content": system_prompt(vocab)},
                     {"role": "user", "content": question}],
        "tools": [{"type": "function", "function": {
            "name": TOOL_NAME, "description": "Query the registry graph of models and devices.",
            "parameters": tool_schema()}}],
        "tool_choice": {"type": "function", "function": {"name": TOOL_NAME}},
    }


def _one_line(text: Any, limit: int = 120) -> str:
    return " ".join(str(text).split())[:limit]


def query_from_response(body: Any, question: str = "") -> StructuredQuery:
    """The StructuredQuery in a chat-completions response's tool call (validated: only known fields and operators,
    so the model cannot run arbitrary Cypher). UserError with one line when there is none or it is invalid, whatever
    the shape of ``body`` (a string where an object belongs, a list of strings, arguments nested too deeply ...)."""
    choices = body.get("choices") if isinstance(body, dict) else None
    message = choices[0].get("message") if isinstance(choices, list) and choices and isinstance(choices[0], dict) \
        else None
    if not isinstance(message, dict):
        raise UserError("the LLM's answer has no choices[0].message object; is the endpoint OpenAI-compatible?")
    calls = message.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        raise UserError(f"the LLM's tool_calls is a {type(calls).__name__}, not a list; is the endpoint "
                        f"OpenAI-compatible?")
    call = next((c for c in calls or () if isinstance(c, dict) and isinstance(c.get("function"), dict)
                 and c["function"].get("name") == TOOL_NAME), None)
    if call is None:
        content = message.get("content")
        said = _one_line(content) if isinstance(content, str) else ""
        raise UserError(f"the LLM did not call the {TOOL_NAME} tool" + (f" (it said: {said!r})" if said else "")
                        + "; ask without --llm to use the offline parser")
    arguments = call["function"].get("arguments")
    parsed = query_from_spec("{}" if arguments is None or arguments == "" else arguments)
    parsed.readings.append(Reading(phrase=question, meaning="read by the LLM (tool call)"))
    return parsed
