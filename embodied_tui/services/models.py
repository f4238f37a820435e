"""The model registry's verbs, for the CLI (`embodied-ai model ...`) and the TUI alike. Plain data in and out.

``db`` everywhere is a registry path, a ``Registry`` or None (``$EMBODIED_AI_DB`` or the user data dir).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from embodied_tui.data.filters import compile_filter, sort_records
from embodied_tui.data.records import Analysis, ModelDetails, ModelRecord
from embodied_tui.data.store import Registry, atomic_write, now_iso
from embodied_tui.errors import UserError

Progress = Callable[[str, float], None]  # (stage, fraction done), as analyze_file reports it
BUNDLE_FORMAT = "embodied-ai-bundle"
BUNDLE_VERSION = 1


def registry(db: Registry | str | Path | None = None) -> Registry:
    return db if isinstance(db, Registry) else Registry(db)


# ------------------------------------------------------------------------------------------------ parsing user input
def parse_tags(values: Iterable[str]) -> dict[str, str]:
    """``["robot", "site=lab"]`` -> ``{"robot": "", "site": "lab"}``. Commas also separate tags."""
    tags: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            key, _, val = item.partition("=")
            key, val = key.strip(), val.strip()
            if not key or any(c.isspace() for c in key):
                raise UserError(f"bad tag {item!r}: use a word (robot) or key=value (site=lab)")
            tags[key] = val
    return tags


def parse_input_shapes(values: Sequence[str]) -> list[list[int]] | None:
    """``--input-shape`` values (repeatable; ';' also separates inputs) -> one shape per model input."""
    from embodied_tui.analysis.api import parse_shapes

    shapes: list[list[int]] = []
    for value in values:
        shapes += parse_shapes(value) or []
    return shapes or None


# ------------------------------------------------------------------------------------------------ analyse / register
def analyze(path: str | Path, *, input_shape: list[list[int]] | None = None, trust_code: bool = False,
            progress: Progress | None = None) -> Analysis:
    """Analyse one model file without registering it (AnalysisError on a bad file)."""
    from embodied_tui.analysis.api import analyze_file

    return analyze_file(Path(path).expanduser(), input_shape=input_shape, trust_code=trust_code, progress=progress)


def register(path: str | Path, *, name: str, input_shape: list[list[int]] | None = None,
             tags: dict[str, str] | None = None, description: str | None = None, trust_code: bool = False,
             db: Registry | str | Path | None = None, progress: Progress | None = None) -> tuple[ModelRecord, str]:
    """Analyse ``path`` and store it under ``name``. Returns the record and "added" | "new_version" | "unchanged".
    The registry is checked before the (slow) analysis, so a broken registry fails at once."""
    name = _checked_name(name)
    reg = registry(db)
    try:
        same = reg.find_same(name, Path(path).expanduser())  # also: a corrupt registry fails before the analysis
    except OSError:
        same = None  # unreadable file: let the analyser say what is wrong with it
    if same is not None:
        return same, "unchanged"
    analysis = analyze(path, input_shape=input_shape, trust_code=trust_code, progress=progress)
    return add_analysis(analysis, name=name, tags=tags, description=description, db=reg)


def add_analysis(analysis: Analysis, *, name: str, tags: dict[str, str] | None = None,
                 description: str | None = None, db: Registry | str | Path | None = None) -> tuple[ModelRecord, str]:
    """Store an analysis made elsewhere (the TUI analyses in a child process) under ``name``. Returns the record and
    "added" | "new_version" | "unchanged", as ``register`` does."""
    return registry(db).add(analysis, _checked_name(name), tags or {}, description)


def _checked_name(name: str | None) -> str:
    if not name or not name.strip():
        raise UserError("a model needs a name: pass --name NAME")
    return name.strip()


# ------------------------------------------------------------------------------------------------ reading
def list_models(db: Registry | str | Path | None = None, *, filter: str | None = None, sort: str | None = None,
                all_versions: bool = False) -> list[ModelRecord]:
    """Registered models (latest versions unless ``all_versions``), filtered and sorted (see data/filters.py)."""
    pred = compile_filter(filter)  # a bad expression fails before the registry is read
    if sort:
        sort_records([], sort)
    records = [r for r in registry(db).list_models(latest_only=not all_versions) if pred(r)]
    return sort_records(records, sort)


def show(name: str, version: int | None = None, db: Registry | str | Path | None = None
         ) -> tuple[ModelRecord, ModelDetails | None]:
    reg = registry(db)
    record = reg.get(name, version)
    return record, reg.details(record)


def record_json(record: ModelRecord, details: ModelDetails | None = None, *, with_details: bool = False
                ) -> dict[str, Any]:
    """The record contract (docs/architecture.md). ``with_details`` adds ``census`` and ``layer_costs`` (empty lists
    when the registry holds none for this record)."""
    out = record.model_dump(mode="json")
    if with_details:
        out["census"] = [n.model_dump(mode="json") for n in details.census] if details else []
        out["layer_costs"] = [c.model_dump(mode="json") for c in details.layer_costs] if details else []
    return out


def records_json_bytes(records: list[ModelRecord]) -> bytes:
    """``[record_json(r) for r in records]`` as indented JSON, serialised in one pass (fast for 10,000 records)."""
    from pydantic import TypeAdapter

    return TypeAdapter(list[ModelRecord]).dump_json(records, indent=2) + b"\n"


# ------------------------------------------------------------------------------------------------ changing
def remove(name: str, version: int | None = None, db: Registry | str | Path | None = None) -> int:
    return registry(db).remove(name, version)


def update(name: str, *, tags: dict[str, str] | None = None, untag: Sequence[str] = (), description: str | None = None,
           version: int | None = None, db: Registry | str | Path | None = None) -> list[ModelRecord]:
    if not tags and not untag and description is None:
        raise UserError("nothing to update: pass --tag, --untag or --description")
    return registry(db).update(name, tags, description, untag=list(untag), version=version)


# ------------------------------------------------------------------------------------------------ bundles
class BundleEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    record: ModelRecord
    identity: str
    details: ModelDetails | None = None


class Bundle(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: str = BUNDLE_FORMAT
    bundle_version: int = BUNDLE_VERSION
    exported_at: str = ""
    models: list[BundleEntry] = Field(default_factory=list)


def export_bundle(out: str | Path, names: Sequence[str] = (), db: Registry | str | Path | None = None) -> int:
    """Write every version of ``names`` (all models when empty), with hashes and details, to a JSON bundle."""
    reg = registry(db)
    for name in names:
        reg.get(name)  # NotFound, with close names, before anything is written
    entries = [BundleEntry(record=rec, identity=identity, details=details)
               for rec, identity, details in reg.entries(set(names) or None)]
    bundle = Bundle(exported_at=now_iso(), models=entries)
    out = Path(out).expanduser()
    try:
        atomic_write(out.absolute(), bundle.model_dump_json(indent=1).encode())
    except OSError as exc:
        raise UserError(f"cannot write bundle {out}: {exc.strerror or exc}; choose another -o path") from None
    return len(entries)


def read_bundle(path: str | Path) -> Bundle:
    path = Path(path).expanduser()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read bundle {path}: {exc.strerror or exc}") from None
    try:
        head = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"bundle {path} is not valid JSON ({exc}); export it again with `model export`") from None
    if not isinstance(head, dict) or head.get("format") != BUNDLE_FORMAT:
        raise UserError(f"{path} is not an embodied-ai bundle (no \"format\": \"{BUNDLE_FORMAT}\"); "
                        f"make one with `embodied-ai model export -o FILE`")
    if head.get("bundle_version") != BUNDLE_VERSION:
        raise UserError(f"bundle {path} has version {head.get('bundle_version')}, this embodied-ai reads "
                        f"{BUNDLE_VERSION}; upgrade embodied-ai")
    try:
        return Bundle.model_validate(head)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise UserError(f"bundle {path} is invalid at {where}: {err['msg']}; nothing was imported") from None


def import_bundle(path: str | Path, db: Registry | str | Path | None = None) -> list[tuple[ModelRecord, str]]:
    """Add a bundle's models keeping versions, tags, hashes and details. Idempotent: a model whose name already has
    that identity is "unchanged"; a taken version number is "renumbered" to the next free one."""
    bundle = read_bundle(path)
    return registry(db).put_many([(e.record, e.identity, e.details) for e in bundle.models])


# ------------------------------------------------------------------------------------------------ demo
def demo_dir(db: Registry | str | Path | None = None) -> Path:
    """Where `demo` writes its model files by default: ``demo-models`` beside the registry file."""
    return registry(db).path.parent / "demo-models"


def install_demo(db: Registry | str | Path | None = None, directory: str | Path | None = None,
                 on_sample: Callable[[str], None] | None = None) -> list[tuple[ModelRecord, str]]:
    """Write the sample models (data/samples.py) and register them. Idempotent: a second run reports "unchanged"."""
    from embodied_tui.analysis.zoo import samples

    reg = registry(db)
    reg.list_models()  # a broken registry fails before minutes of work
    directory = Path(directory).expanduser() if directory else demo_dir(reg)
    out = []
    for sample in samples.SAMPLES:
        if on_sample:
            on_sample(sample.name)
        path = samples.write_sample(sample, directory)
        shapes = samples.input_shapes(sample) if sample.pass_shape else None
        out.append(register(path, name=sample.name, input_shape=shapes, tags=dict(sample.tags),
                            description=sample.description, db=reg))
    return out
