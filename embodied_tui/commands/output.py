"""Printing helpers shared by every command: JSON for scripts, rich tables for people."""
from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2) + "\n")


def console():
    from rich.console import Console

    return Console(highlight=False)


def small_kernels(cal: dict) -> str:
    """The small-kernel terms of a stored calibration, as ", t_op X us per operator, K Y MACs per output" (empty
    where both are 0)."""
    top, k = cal.get("op_overhead_ms") or 0.0, cal.get("macs_per_output_half") or 0.0
    if not top and not k:
        return ""
    return f", t_op {top * 1e3:.2f} us per operator, K {k:.3g} MACs per output"
