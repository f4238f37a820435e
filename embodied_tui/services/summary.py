"""A summary of a TinyDB registry for questions: what ``services.graph.Registered`` needs of it without parsing it.

**What it holds.** For each latest record: its name, version, fit-store key (``services.graph._record_key``), Model
node properties (``ask.graph.model_properties``) and tags; the registry's generic tables (devices, measurements,
pipelines, settings: small); and the record versions of the measured models (what ``device_versions`` digests).

**Where and when.** In the fit-edge store beside the registry (``services.fit_store``: one row), written after a
registration (``summarise``) or a question parsed the registry whole, keyed by the registry file's stat signature
(device, inode, size, mtime, ctime: every write replaces the file) and by the code that derives it (the modules of
``_CODE``). ``read`` gives a ``Registered`` from it only while the file is still that one: its records are
``SummaryRecord``s, the tables are primed into the store (``data.store.Registry.prime``) and the file is parsed only
if something asks for a whole record (a fit to compute, a graph to build).

**Why.** A CLI question on an unchanged registry of 10,000 models spent ~0.5 s parsing and validating the 19 MB file
and ~0.3 s re-deriving 10,000 property dicts and digests before reading one stored fit row; the summary is one JSON
text read in ~0.1 s. A process that already holds the parsed registry (the app) uses it instead.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from embodied_tui.services.graph import Registered

SUMMARY_FORMAT = 2  # 2: each record's content key too
_CODE = ("analysis", "ask", "data", "perf", "services")  # what the properties, keys and tables are read by
_SAVED: dict[Path, tuple] = {}  # registry path -> the file signature this process summarised or found summarised


class SummaryRecord:
    """A latest record as a summary holds it: what questions read of it (``props`` are its Model node properties,
    ``key`` its fit-store key, ``content`` the digest of what a fit reads of it: ``services.graph._content_key``).
    ``Registered`` swaps it for the whole record where one is needed."""

    __slots__ = ("name", "version", "key", "props", "tags", "content")

    def __init__(self, name: str, version: int, key: str, props: dict[str, Any], tags: dict[str, str],
                 content: str) -> None:
        self.name, self.version, self.key, self.props, self.tags, self.content = name, version, key, props, tags, content

    @property
    def macs(self) -> int | None:
        return self.props.get("macs")


def _key(sig: tuple) -> str:
    from embodied_tui.services.graph import code_signature

    return hashlib.sha256(json.dumps([SUMMARY_FORMAT, list(sig), code_signature(_CODE)]).encode()).hexdigest()


def read(reg) -> "Registered | None":
    """The registry as its summary says, while the file is the one summarised; None when there is no such summary,
    or when this process holds the file parsed already (then reading it is cheaper)."""
    from embodied_tui.data.pipeline_store import latest
    from embodied_tui.services.fit import devices, list_measurements
    from embodied_tui.services.graph import Registered, open_fit_store

    sig = reg.signature()
    if sig is None or reg.parsed_state() is not None:
        return None
    store = open_fit_store(reg)
    try:
        body = store.summary(_key(sig))
    finally:
        store.close()
    if body is None:
        return None
    try:
        data = json.loads(body)
        records = _records(data)
        tables, measured = data["tables"], data["measured"]
    except (ValueError, KeyError, TypeError):
        return None  # not ours after all: the registry is read as usual
    if not (records is not None and isinstance(measured, dict) and isinstance(tables, dict)
            and all(isinstance(t, dict) and all(isinstance(d, dict) for d in t.values()) for t in tables.values())):
        return None
    if not reg.prime(tuple(sig), tables):
        return None
    return Registered(reg, records, devices(reg), list_measurements(reg), latest(reg, strict=False),
                      measured=measured, signature=tuple(sig))


def summarise(reg) -> None:
    """Summarise the registry now, after a registration wrote it: the next question's process reads the summary instead
    of parsing the file and deriving every record's properties and fit-store key (0.6-0.8 s of a first question at
    10,000 models). TinyDB registries only; best effort, as the layer columns are (``layer_store.remember``): the
    model is registered whatever happens here, and a question summarises the file itself when it finds none."""
    from embodied_tui.data.backend import is_server_registry
    from embodied_tui.services.graph import Registered

    if is_server_registry(reg):
        return
    try:
        Registered.read(reg)  # read from a summary of this very file, or parsed and summarised
    except Exception:  # noqa: BLE001 - a summary only saves time; the registration itself is done
        pass


def _records(data) -> list[SummaryRecord] | None:
    """The records of a summary's parsed JSON; None where they are not as ``save`` writes them (a damaged or foreign
    summary is not read)."""
    try:
        records = [SummaryRecord(*row) for row in data["records"]]
    except (KeyError, TypeError):
        return None
    return records if _shaped(records) else None


def _shaped(records: list[SummaryRecord]) -> bool:
    """Whether every record is as ``save`` writes them (a damaged or foreign summary is not read)."""
    return all(isinstance(r.name, str) and type(r.version) is int and isinstance(r.key, str)
               and isinstance(r.props, dict) and isinstance(r.tags, dict) and isinstance(r.content, str)
               for r in records)


def save(src: "Registered") -> None:
    """Summarise ``src`` (read by parsing the registry) for the next process, unless the file changed since or its
    summary is stored already."""
    from embodied_tui.services.graph import _content_key, _record_key, model_node_properties, open_fit_store

    state = src.reg.parsed_state()
    if state is None or _SAVED.get(src.reg.path) == state[0]:
        return  # changed since, or summarised (or found stored) by this process already: the app asks often
    sig, tables = state
    key = _key(sig)
    store = open_fit_store(src.reg)
    try:
        body = store.summary(key)
        if body is not None:
            _seed(src, body)
            _SAVED[src.reg.path] = sig
            return
        measured = {name: src.measured_versions(name) for name in sorted({m.model for m in src.measurements})}
        records = [[r.name, r.version, _record_key(r), model_node_properties(r), dict(r.tags or {}),
                    _content_key(r)] for r in src.records]
        if (src.reg.parsed_state() or (None,))[0] != sig:
            return  # written meanwhile: the next read summarises the new file
        store.put_summary(key, json.dumps({"records": records, "tables": tables, "measured": measured}))
        _SAVED[src.reg.path] = sig
    finally:
        store.close()


def _seed(src: "Registered", body: str) -> None:
    """Give ``src``'s records (parsed from the very file ``body`` summarises: its key is that file's signature) the
    fit-store keys, content keys and Model node properties the summary holds for them, so they are not derived again
    (10,000 records: 20,000 JSON dumps and digests and 10,000 property dicts, about 0.4 s of the app's first
    question). Records the summary does not name as they are (a damaged summary) are left to be derived."""
    from embodied_tui.services.graph import take_summarised

    try:
        rows = _records(json.loads(body))
    except ValueError:
        return
    by_name = {(r.name, r.version): r for r in rows or ()}
    for record in src.records:
        row = by_name.get((record.name, record.version))
        if row is not None:
            take_summarised(record, row)
