"""Public batch-1 latency measurements with their provenance (``data/published/latency.csv``), typed and validated.

One row is one figure a source printed, never a number we made up: ``notes`` quotes the source's own figure and any
conversion (e.g. "FPS 290 -> 3.45 ms"). Conventions:
- ``gmacs`` is multiply-accumulates / 1e9 (FLOPs / 2) as the source (or the model's own publisher) states it; empty
  when nobody published it. ``params`` is a plain count (3.2M -> 3200000).
- ``scope`` says what the latency covers: ``gpu_compute`` (the accelerator's kernels only, e.g. trtexec "GPU Compute
  Time"), ``engine`` (one inference call of the runtime, input already on the host; may include copies),
  ``end_to_end`` (pre- and post-processing or a multi-model pipeline included), ``throughput_derived`` (1000 / FPS
  of a pipelined or batched run: a lower bound on latency), ``decode_per_token`` (1000 / tokens-per-second of LLM
  decoding), ``prefill`` (time to process the prompt).
- ``power_mode`` is a mode name of the catalog device, or None when the source does not say; ``precision`` is None
  when the source does not say.
- ``model_ref`` names a zoo builder (``analysis/zoo/registry.py``) that builds exactly the measured architecture, or
  None; only rows with a builder and a non-LLM scope are ``usable`` for fitting a roofline.
"""
from __future__ import annotations

import csv
import datetime as dt
import functools
import io
from importlib import resources
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from embodied_tui.data.hardware import HardwareEntry, load_catalog
from embodied_tui.errors import UserError

DATA_VERSION = "2026.12.06-6"  # bump with every change to latency.csv

PublishedPrecision = Literal["fp32", "fp16", "bf16", "int8", "int4", "fp8", "fp4", "mixed"]
PRECISIONS: tuple[str, ...] = get_args(PublishedPrecision)
Scope = Literal["gpu_compute", "engine", "end_to_end", "throughput_derived", "decode_per_token", "prefill"]
SCOPES: tuple[str, ...] = get_args(Scope)
LLM_SCOPES = ("decode_per_token", "prefill")
COLUMNS = ("id", "model", "model_ref", "input_shape", "params", "gmacs", "device", "power_mode", "precision",
           "runtime", "runtime_version", "batch", "latency_ms", "scope", "source_url", "source_title", "retrieved",
           "notes")
CSV_NAME = "latency.csv"
_LABEL = f"embodied_tui/data/published/{CSV_NAME}"


class PublishedLatency(BaseModel):
    """One published measurement (see the module docstring for the conventions of each field)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    model: str = Field(min_length=1)
    model_ref: str | None = None
    input_shape: tuple[int, ...] | None = None  # "1x3x640x640"; None for LLM rows
    params: int | None = Field(default=None, gt=0)
    gmacs: float | None = Field(default=None, gt=0)
    device: str = Field(min_length=1)
    power_mode: str | None = None
    precision: PublishedPrecision | None = None
    runtime: str = Field(min_length=1)
    runtime_version: str | None = None
    batch: int = Field(ge=1)
    latency_ms: float = Field(gt=0)
    scope: Scope
    source_url: str = Field(pattern=r"^https?://\S+$")
    source_title: str = Field(min_length=1)
    retrieved: dt.date
    notes: str | None = None

    @field_validator("input_shape", mode="before")
    @classmethod
    def _shape(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return tuple(int(part) for part in value.lower().split("x"))
            except ValueError:
                raise ValueError(f"input_shape {value!r} is not like 1x3x640x640") from None
        return value

    @property
    def usable(self) -> bool:
        """A row a roofline fit can use: we can build the model and the latency is one forward pass."""
        return self.model_ref is not None and self.scope not in LLM_SCOPES and self.precision is not None


def parse_csv(text: str, label: str = _LABEL) -> list[PublishedLatency]:
    """Rows of a published-latency CSV, each validated on its own (an error names the row id and the file)."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise UserError(f"{label}: columns must be exactly {', '.join(COLUMNS)} (got {reader.fieldnames})")
    rows: list[PublishedLatency] = []
    seen: set[str] = set()
    for number, raw in enumerate(reader, start=2):
        row_id = raw.get("id") or f"line {number}"
        if None in raw or any(value is None for value in raw.values()):
            raise UserError(f"{label}: row {row_id} has the wrong number of fields; quote fields that hold commas")
        values = {key: (value.strip() or None) for key, value in raw.items()}
        try:
            row = PublishedLatency(**values)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise UserError(f"{label}: row {row_id}: {problems}") from None
        if row.id in seen:
            raise UserError(f"{label}: id {row.id} is used twice; ids must be unique")
        seen.add(row.id)
        rows.append(row)
    return rows


def check_devices(rows: list[PublishedLatency], catalog: list[HardwareEntry], label: str = _LABEL) -> None:
    """Every row's device is a catalog id and its power mode (when given) a mode of that device."""
    devices = {entry.id: entry for entry in catalog}
    for row in rows:
        entry = devices.get(row.device)
        if entry is None:
            raise UserError(f"{label}: row {row.id}: device {row.device!r} is not in the hardware catalog "
                            f"(add embodied_tui/data/catalog/{row.device}.yaml or fix the id)")
        modes = [mode.name for mode in entry.power_modes]
        if row.power_mode is not None and row.power_mode not in modes:
            raise UserError(f"{label}: row {row.id}: {row.device} has no power mode {row.power_mode!r} "
                            f"(its modes: {', '.join(modes)})")


@functools.lru_cache(maxsize=1)
def _published() -> tuple[PublishedLatency, ...]:
    text = (resources.files("embodied_tui.data") / "published" / CSV_NAME).read_text(encoding="utf-8")
    rows = parse_csv(text)
    check_devices(rows, load_catalog())
    return tuple(rows)


def load_published() -> list[PublishedLatency]:
    """Every published measurement shipped with the package, validated against the hardware catalog (cached)."""
    return list(_published())


def rows_for(device: str | None = None, scope: str | None = None, usable: bool = True) -> list[PublishedLatency]:
    """Published rows for one device id and/or scope; ``usable`` keeps only rows a roofline fit can use."""
    if scope is not None and scope not in SCOPES:
        raise UserError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")
    return [row for row in _published()
            if (device is None or row.device == device)
            and (scope is None or row.scope == scope)
            and (not usable or row.usable)]
