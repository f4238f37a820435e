"""Reading a large registry file again for the app's live table, in a child process, sending back only what changed.

Parsing a 10,000-model registry (19 MB of JSON) takes one ``json.loads`` call and one garbage collection, each of
which holds the interpreter's lock for hundreds of milliseconds: in a thread of the app that freezes the screen. Here
a child process (``python -m embodied_tui.services.live_read``) reads the file through the registry's own
``list_models`` and answers, for each record in order, its ``digest`` (sha256 of the record's JSON) and, only for
records whose digest the app does not hold yet, the record's JSON. The app reuses the record objects it has for
every unchanged digest and validates the few new ones one by one (short calls: the screen keeps painting between
them). It also says which of the app's open records (name, version, sha256) are no longer stored, and computes the
target cells (``services.target``) of the rows the app shows: reading the registry in the app's process after a
change would parse the whole file there (and collect its garbage), the stall this module exists to avoid.

Protocol: the request is one JSON object on stdin (``path``, ``latest_only``, ``known``: digests, ``probes``:
[name, version, sha256] triples, ``cells_for``: row keys ``name@version``); the answer on stdout is one JSON header
line (``error``: null or {"message", "app_message"}; ``gone``: indices into probes; ``count``; ``headers`` and
``cells``: the target column's headers and {key: TargetCell fields}) then one line per record: ``DIGEST`` or
``DIGEST<tab>JSON``.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field

from embodied_tui.data.records import ModelRecord


def digest(record: ModelRecord) -> str:
    """The identity of a record's content: sha256 of its JSON (every field, as stored)."""
    return hashlib.sha256(record.model_dump_json().encode()).hexdigest()


@dataclass
class LiveRead:
    records: list[ModelRecord] = field(default_factory=list)
    error: str | None = None  # what the app shows when the registry could not be read
    gone: list[int] = field(default_factory=list)  # indices of the probes no longer stored
    sent: int = 0  # records whose JSON came over (new or changed)
    known: dict[str, ModelRecord] = field(default_factory=dict)  # digest -> record of the records read
    headers: tuple[str, str] | None = None  # the target column's headers (``services.target.headers``)
    cells: dict = field(default_factory=dict)  # row key -> services.target.TargetCell, for ``cells_for``


def read(path: str, latest_only: bool, known: dict[str, ModelRecord],
         probes: list[tuple[str, int, str]] = (), cells_for: list[str] = ()) -> LiveRead:
    """The records of the registry file at ``path`` (as ``list_models(latest_only)``), reusing the objects of
    ``known`` (digest -> record, not changed) for unchanged ones; ``gone``: which ``probes`` are no longer stored;
    ``cells``: the target cells of the rows ``cells_for`` (keys ``name@version``). Runs a child process; call it from
    a worker thread."""
    request = json.dumps({"path": path, "latest_only": latest_only, "known": list(known),
                          "probes": [list(p) for p in probes], "cells_for": list(cells_for)})
    try:
        out = subprocess.run([sys.executable, "-m", __name__], input=request.encode(), capture_output=True,
                             check=False).stdout
        head, _, body = out.partition(b"\n")
        header = json.loads(head)
    except (OSError, ValueError) as exc:
        return LiveRead(error=f"could not read the registry {path} in a child process ({exc})")
    if header.get("error"):
        return LiveRead(error=header["error"]["app_message"])
    records, now, sent = [], {}, 0
    for line in body.splitlines():
        key, _, text = line.partition(b"\t")
        name = key.decode()
        record = now[name] = ModelRecord.model_validate_json(text) if text else known[name]
        sent += bool(text)
        records.append(record)
    cells = {}
    if header.get("cells"):
        from embodied_tui.services.target import TargetCell

        cells = {key: TargetCell(**fields) for key, fields in header["cells"].items()}
    headers = tuple(header["headers"]) if header.get("headers") else None
    return LiveRead(records=records, gone=list(header.get("gone", [])), sent=sent, known=now, headers=headers,
                    cells=cells)


def _answer(request: dict) -> bytes:
    from embodied_tui.data.backend import open_registry
    from embodied_tui.errors import UserError, app_message

    try:
        registry = open_registry(request["path"])
        records = registry.list_models(latest_only=request["latest_only"])
        gone = []
        for i, (name, version, sha) in enumerate(request.get("probes", [])):
            if not any(r.version == version and r.sha256 == sha for r in registry.versions(name)):
                gone.append(i)
    except UserError as exc:
        return json.dumps({"error": {"message": str(exc), "app_message": app_message(exc)}}).encode() + b"\n"
    headers, cells = _target_cells(registry, records, request.get("cells_for", []))
    known = set(request.get("known", []))
    lines = [json.dumps({"error": None, "gone": gone, "count": len(records), "headers": headers,
                         "cells": cells}).encode()]
    for record in records:
        text = record.model_dump_json().encode()
        key = hashlib.sha256(text).hexdigest().encode()
        lines.append(key if key.decode() in known else key + b"\t" + text)
    return b"\n".join(lines) + b"\n"


def _target_cells(registry, records: list[ModelRecord], keys: list[str]) -> tuple[list[str] | None, dict]:
    """The target column's headers and the cells of the records keyed ``keys`` (as the registry screen computes
    them); none asked, none computed (nor ``services.target`` imported)."""
    if not keys:
        return None, {}
    from embodied_tui.errors import UserError, app_message
    from embodied_tui.services import target as targets

    by_key = {f"{r.name}@{r.version}": r for r in records}
    wanted = [by_key[k] for k in keys if k in by_key]
    try:
        pinned = targets.pinned(registry)
        headers = list(targets.headers(pinned, targets.device_short_names(registry)))
    except UserError as exc:
        return ["ms fastest", f"error: {app_message(exc)}"], {}
    return headers, {f"{r.name}@{r.version}": asdict(cell) for r, cell in targets.cells(registry, wanted, pinned)}


def main() -> None:
    sys.stdout.buffer.write(_answer(json.loads(sys.stdin.buffer.read())))


if __name__ == "__main__":
    main()
