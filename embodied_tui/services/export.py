"""Writing what a table shows to a file (the app's ``ctrl+e``) and a row as one line of text (the app's ``Y``).

The format comes from the file's suffix: ``.csv`` (RFC 4180, a header row, UTF-8) or ``.json``.

- **Registry rows** (``write_records``): the JSON is the CLI's ``model list --json`` (``models.records_json_bytes``:
  the record contract of docs/architecture.md, one object per row shown, in the order shown). The CSV has one row per
  record with exact numbers, not the table's abbreviations: ``params`` (parameters), ``macs`` (multiply-accumulates of
  conv, linear, matmul and attention at batch 1; FLOPs = 2 x MACs), ``weight_bytes`` at the stored dtype,
  ``input`` (shapes as ``1x3x224x224``, inputs separated by ``;``), and the target columns as the table has them:
  ``target_ms`` (the calibrated roofline prediction at batch 1), ``target_fps`` (1000 / ms) and ``target_note``. A
  number we do not have (MACs not counted, a target not computed yet) is an empty cell in CSV and ``null`` in JSON.
- **Any other table** (``write_table``): the headers and cells as shown, as CSV or as a JSON list of objects keyed by
  header.

Files are written whole (temp file, then renamed over the path); an existing file is replaced only when asked.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from embodied_tui.data.records import ModelRecord
from embodied_tui.data.store import atomic_write
from embodied_tui.errors import UserError
from embodied_tui.services.models import records_json_bytes

FORMATS = {".csv": "csv", ".json": "json"}
Cell = str | int | float | None


@dataclass(frozen=True)
class Table:
    """A table to write: its headers and rows of cells (None: no value)."""

    headers: tuple[str, ...]
    rows: list[tuple[Cell, ...]]


def format_of(path: str | Path) -> str:
    """'csv' or 'json', from the suffix; else UserError."""
    kind = FORMATS.get(Path(path).suffix.lower())
    if kind is None:
        raise UserError(f"cannot export to {path}: the file name must end in .csv or .json")
    return kind


def default_path(stem: str, kind: str = "csv", directory: str | Path | None = None) -> Path:
    """``<directory or the current one>/<stem>.<kind>``, or ``<stem>-2.<kind>``... when that file exists already."""
    base = Path(directory) if directory is not None else Path.cwd()
    path = base / f"{stem}.{kind}"
    n = 2
    while path.exists():
        path = base / f"{stem}-{n}.{kind}"
        n += 1
    return path


def target_path(text: str) -> Path:
    """The file a user typed (``~`` expanded): UserError when it is blank, a folder, or in a folder that does not
    exist, so the dialog can say so before anything is written."""
    if not text.strip():
        raise UserError("type the file to write, ending in .csv or .json")
    path = Path(text.strip()).expanduser()
    format_of(path)
    if path.is_dir():
        raise UserError(f"cannot export to {path}: it is a folder; add a file name ending in .csv or .json")
    if not path.parent.is_dir():
        raise UserError(f"cannot export to {path}: the folder {path.parent} does not exist")
    return path


def csv_text(headers: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if c is None else c for c in row])
    return out.getvalue()


def row_text(cells: Sequence[Cell]) -> str:
    """One row as a line of tab-separated cells (what ``Y`` copies; a spreadsheet pastes it into cells)."""
    return "\t".join("" if c is None else str(c).replace("\t", " ").replace("\n", " ") for c in cells)


def _write(path: Path, payload: bytes, overwrite: bool) -> Path:
    if path.exists() and not overwrite:
        raise UserError(f"{path} exists already: press enter again to replace it, or type another name")
    try:
        atomic_write(path, payload)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def write_table(path: str | Path, table: Table, *, overwrite: bool = False) -> Path:
    """Write ``table`` as CSV or JSON (by suffix). Returns the path written."""
    path = Path(path)
    if format_of(path) == "csv":
        payload = csv_text(table.headers, table.rows).encode("utf-8")
    else:
        objects = [dict(zip(table.headers, row)) for row in table.rows]
        payload = (json.dumps(objects, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    return _write(path, payload, overwrite)


RECORD_HEADERS = ("name", "version", "family", "type", "params", "macs", "weight_bytes", "input", "format", "tags",
                  "target_ms", "target_fps", "target_note", "registered_at", "sha256", "path")


def _input_text(record: ModelRecord) -> str:
    return ";".join("x".join(str(d) for d in shape) for shape in record.input_shapes)


def records_table(records: Sequence[ModelRecord], targets: Mapping[str, object] | None = None) -> Table:
    """The CSV table of registry rows (see the module doc). ``targets`` maps ``NAME@VERSION`` to the table's target
    cell (anything with ``ms``, ``fps`` and ``note``); a row without one has empty target cells."""
    targets = targets or {}
    rows = []
    for r in records:
        cell = targets.get(f"{r.name}@{r.version}")
        tags = " ".join(k if not v else f"{k}={v}" for k, v in sorted(r.tags.items()))
        rows.append((r.name, r.version, r.architecture.family, r.architecture.type, r.params, r.macs, r.weight_bytes,
                     _input_text(r), r.format, tags, getattr(cell, "ms", None), getattr(cell, "fps", None),
                     getattr(cell, "note", None) or None, r.registered_at, r.sha256, r.path))
    return Table(RECORD_HEADERS, rows)


def write_records(path: str | Path, records: Sequence[ModelRecord], targets: Mapping[str, object] | None = None, *,
                  overwrite: bool = False) -> Path:
    """Registry rows to ``path``: JSON as ``model list --json`` prints it, or the CSV of ``records_table``."""
    path = Path(path)
    if format_of(path) == "json":
        return _write(path, records_json_bytes(list(records)), overwrite)
    return write_table(path, records_table(records, targets), overwrite=overwrite)
