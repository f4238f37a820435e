"""Printing helpers shared by every command: JSON for scripts, rich tables for people.

Text from outside (registry names, tags, descriptions, device YAML, model files, Cypher results, an LLM) reaches the
terminal only through ``units.safe_text``: ``plain`` makes it a ``rich.text.Text`` (never read as Rich markup or
emoji codes), ``say`` prints a line of it, ``echo`` writes one without Rich. JSON output escapes control characters
itself (``json.dumps`` writes ASCII only; ``json_bytes`` escapes what pydantic writes raw).
"""
from __future__ import annotations

import json
import re
import sys
from typing import Any

import click
from pydantic import BaseModel

from embodied_tui.errors import UserError
from embodied_tui.units import safe_text, unsafe


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    """Standard JSON only: a NaN or infinity is refused in one line instead of printing ``NaN``/``Infinity``."""
    try:
        text = json.dumps(to_jsonable(value), indent=2, allow_nan=False)
    except ValueError as exc:
        raise UserError(f"the result holds a number that is not finite ({exc}); nothing printed") from None
    sys.stdout.write(text + "\n")


def _json_escape(match: re.Match) -> str:
    run = match.group(0)
    if run.isprintable():
        return run
    out = []
    for ch in run:
        if not unsafe(ch):
            out.append(ch)
            continue
        code = ord(ch)
        if code > 0xFFFF:  # JSON writes a code point beyond the BMP as a surrogate pair
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)


def json_bytes(data: bytes) -> bytes:
    """JSON text (UTF-8) in which the characters ``units.safe_text`` escapes and JSON may carry raw (DEL, C1 controls,
    bidi and other format characters, line separators: pydantic writes them as is, json.dumps as escapes) are written
    as ``\\uXXXX``: the same JSON value, safe on a terminal. Everything else is left byte for byte."""
    if data.isascii() and b"\x7f" not in data:
        return data
    text = data.decode("utf-8", "surrogatepass")
    return re.sub("[^\x00-\x7e]+", _json_escape, text).encode("utf-8", "surrogatepass")


def console():
    from rich.console import Console

    return Console(highlight=False)


def plain(value: Any, *, newlines: bool = False, **kwargs):
    """``value`` as escaped text for a rich table or ``Console.print``: no markup, no emoji codes, no controls
    (``newlines``: a multi-line block keeps its line breaks)."""
    from rich.text import Text

    return Text(safe_text(value, newlines=newlines), **kwargs)


def say(out, line: str, **kwargs) -> None:
    """Print one line of text (ours with foreign text in it) on the console ``out``, escaped."""
    out.print(plain(line), **kwargs)


def echo(line: str, **kwargs) -> None:
    """``click.echo`` of one line, escaped."""
    import click

    click.echo(safe_text(line), **kwargs)


def confirm(question: str) -> bool | None:
    """Ask on a terminal; read one answer line from piped input without prompting; None when there is no input."""
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        return None
    if stdin.isatty():
        return click.confirm(safe_text(question), default=False)
    line = stdin.readline()
    return line.strip().lower() in ("y", "yes") if line else None
