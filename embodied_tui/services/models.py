"""The model registry's verbs, for the CLI (`embodied-ai model ...`) and the TUI alike. Plain data in and out.

``db`` everywhere is a registry path, a ``Registry`` or None (``$EMBODIED_AI_DB`` or the user data dir).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from embodied_tui.data.backend import RegistryBackend, candidates, open_registry
from embodied_tui.data.filters import compile_filter, sort_records
from embodied_tui.data.names import check_description, check_name, check_tags, check_text, shown, split_ref
from embodied_tui.data.records import SHA256_PATTERN, Analysis, ModelDetails, ModelRecord, known_keys
from embodied_tui.data.store import Registry, atomic_write, error_text, now_iso
from embodied_tui.errors import UserError

Progress = Callable[[str, float], None]  # (stage, fraction done), as analyze_file reports it
BUNDLE_FORMAT = "embodied-ai-bundle"
BUNDLE_VERSION = 1


def registry(db: Registry | RegistryBackend | str | Path | None = None) -> RegistryBackend:
    """The registry ``db`` names: a TinyDB file, or a PostgreSQL database for a ``postgresql://`` URL."""
    return open_registry(db)


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
                raise UserError(f"bad tag {shown(item)}: use a word (robot) or key=value (site=lab)")
            tags[key] = val
    return check_tags(tags)


def parse_input_shapes(values: Sequence[str], what: str = "--input-shape") -> list[list[int]] | None:
    """``--input-shape`` values (repeatable; ';' also separates inputs) -> one shape per model input; ``what`` names
    the field in errors."""
    from embodied_tui.analysis.api import parse_shapes

    shapes: list[list[int]] = []
    for value in values:
        shapes += parse_shapes(value, what) or []
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
    """Analyse ``path`` and store it under ``name``. Returns the record and "added" | "new_version" | "unchanged" |
    "repaired" (the same bytes, whose missing or damaged details file was written again from a fresh analysis).
    The name, tags and registry are checked before the (slow) analysis, so a bad name or a broken registry fails at
    once."""
    name = _checked_name(name)
    tags, description = check_tags(tags), check_description(description)
    reg = registry(db)
    try:
        same = reg.find_same(name, Path(path).expanduser())  # also: a corrupt registry fails before the analysis
    except OSError:
        same = None  # unreadable file: let the analyser say what is wrong with it
    if same is not None and reg.details_problem(same) is None:
        return same, "unchanged"
    analysis = analyze(path, input_shape=input_shape, trust_code=trust_code, progress=progress)
    return add_analysis(analysis, name=name, tags=tags, description=description, db=reg)


def add_analysis(analysis: Analysis, *, name: str, tags: dict[str, str] | None = None,
                 description: str | None = None, db: Registry | str | Path | None = None) -> tuple[ModelRecord, str]:
    """Store an analysis made elsewhere (the TUI analyses in a child process) under ``name``. Returns the record and
    "added" | "new_version" | "unchanged", as ``register`` does. A stored model's layer columns go to the fit store
    (``services.layer_store.remember``: best effort, never failing the registration), and the registry's summary for
    questions is written (``services.summary.summarise``, best effort too)."""
    reg = registry(db)
    record, status = reg.add(analysis, _checked_name(name), tags or {}, description)
    if status != "unchanged":
        from embodied_tui.services.layer_store import remember
        from embodied_tui.services.summary import summarise

        remember(reg, [(record, None)])
        summarise(reg)  # for the next question (best effort too)
    return record, status


def _checked_name(name: str | None) -> str:
    if not name or not name.strip():
        raise UserError("a model needs a name: pass --name NAME")
    return check_name(name.strip(), hint="pass another --name NAME")


# ------------------------------------------------------------------------------------------------ reading
def list_models(db: Registry | str | Path | None = None, *, filter: str | None = None, sort: str | None = None,
                all_versions: bool = False) -> list[ModelRecord]:
    """Registered models (latest versions unless ``all_versions``), filtered and sorted (see data/filters.py)."""
    pred = compile_filter(filter)  # a bad expression fails before the registry is read
    if sort:
        sort_records([], sort)
    # a backend may narrow the rows with the filter first (PostgreSQL: in SQL, a superset); the predicate decides
    records = [r for r in candidates(registry(db), latest_only=not all_versions, filter=filter) if pred(r)]
    return sort_records(records, sort)


def get(ref: str, version: int | None = None, db: Registry | str | Path | None = None) -> ModelRecord:
    """The record a model reference names: NAME (latest, or ``version``), NAME@3, NAME@latest or NAME@ALIAS. The
    one resolver of names (``services.aliases.resolve``); NotFound/UserError in one line otherwise."""
    from embodied_tui.services.aliases import resolve

    return resolve(registry(db), ref, version)


def show(name: str, version: int | None = None, db: Registry | str | Path | None = None
         ) -> tuple[ModelRecord, ModelDetails | None]:
    """``name`` is any model reference (``get``)."""
    reg = registry(db)
    record = get(name, version, reg)
    return record, reg.details(record, strict=False)  # missing or damaged details: a warning line, the record shown


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
def remove(name: str, version: int | None = None, db: Registry | str | Path | None = None, *,
           force: bool = False) -> int:
    """Remove every version of model ``name`` (or one: ``version``, or a reference such as NAME@3 / NAME@ALIAS).
    Refused (UserError naming the aliases) while an alias points at a version to be removed, unless ``force``: then
    each such alias gets an ``rm`` event first (``services.aliases``). Returns how many versions were removed."""
    from embodied_tui.services.aliases import guard_removal

    reg = registry(db)
    if split_ref(name)[1] is not None or version is not None:
        record = get(name, version, reg)
        name, gone = record.name, [record.version]
        version = record.version
    else:
        gone = [r.version for r in reg.versions(name)] or [reg.get(name).version]  # NotFound, with close names
    guard_removal(reg, name, gone, force=force)
    return reg.remove(name, version)


def update(name: str, *, tags: dict[str, str] | None = None, untag: Sequence[str] = (), description: str | None = None,
           version: int | None = None, db: Registry | str | Path | None = None) -> list[ModelRecord]:
    if not tags and not untag and description is None:
        raise UserError("nothing to update: pass --tag, --untag or --description")
    tags, description = check_tags(tags), check_description(description)
    return registry(db).update(name, tags, description, untag=list(untag), version=version)


# ------------------------------------------------------------------------------------------------ bundles
class BundleEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    record: ModelRecord
    identity: str = Field(pattern=SHA256_PATTERN)
    details: ModelDetails | None = None


class Bundle(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    format: str = BUNDLE_FORMAT
    bundle_version: int = BUNDLE_VERSION
    exported_at: str = ""
    models: list[BundleEntry] = Field(default_factory=list)


def export_bundle(out: str | Path, names: Sequence[str] = (), db: Registry | str | Path | None = None) -> int:
    """Write every version of ``names`` (all models when empty), with hashes and details, to a JSON bundle.

    A version whose stored details file is missing or damaged is left out (the others are written) and the call then
    raises UserError naming it and how to restore it, so a script sees the bundle is incomplete."""
    reg = registry(db)
    whole, picked = set(), set()  # NAME: every version; NAME@3 / NAME@ALIAS: that version
    for ref in names:
        if split_ref(ref)[1] is None:
            reg.get(ref)  # NotFound, with close names, before anything is written
            whole.add(ref)
        else:
            record = get(ref, None, reg)
            picked.add((record.name, record.version))
    found, skipped = reg.export_entries((whole | {n for n, _ in picked}) or None)
    if picked:
        found = [f for f in found if f[0].name in whole or (f[0].name, f[0].version) in picked]
    entries = [BundleEntry(record=rec, identity=identity, details=details) for rec, identity, details in found]
    out = Path(out).expanduser()
    if entries or not skipped:
        bundle = Bundle(exported_at=now_iso(), models=entries)
        try:
            atomic_write(out.absolute(), bundle.model_dump_json(indent=1).encode())
        except OSError as exc:
            raise UserError(f"cannot write bundle {out}: {exc.strerror or exc}; choose another -o path") from None
    if skipped:
        wrote = f"wrote {len(entries)} model version{'s' * (len(entries) != 1)} to {out}" if entries else \
            f"wrote nothing to {out}"
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        raise UserError(f"{wrote} but left out {len(skipped)}: {skipped[0]}{more}; then export again")
    return len(entries)


def _bundle_entry_problem(entry: BundleEntry) -> str | None:
    """What registration guarantees and validation of the fields alone cannot see: the name rule, tags and
    description, external data inside the model's folder, and hashes that agree with each other."""
    record = entry.record
    try:
        check_name(record.name, hint="rename it in the bundle")
        check_tags(record.tags)
        check_description(record.description)
        for rel in record.external_data:
            check_text(rel, "external data path", limit=4096)
            parts = rel.replace("\\", "/").split("/")
            if not rel or rel.startswith(("/", "\\")) or (len(rel) > 1 and rel[1] == ":") or ".." in parts:
                return f"external data path {shown(rel)} is not a relative path inside the model's folder"
    except UserError as exc:
        return str(exc)
    if not record.external_data and entry.identity != record.sha256:
        return "identity differs from sha256 although the model has no external data"
    if entry.details is not None and entry.details.sha256 != record.sha256:
        return "details.sha256 differs from record.sha256"
    return None


def read_bundle(path: str | Path) -> Bundle:
    """A bundle, validated as strictly as registration: every record's fields (hashes, versions, counts, shapes,
    paths, finite numbers) and the name rule. Keys a newer embodied-ai added are ignored. UserError with one line
    naming the bundle and the bad record otherwise."""
    path = Path(path).expanduser()
    from embodied_tui.data.store import not_regular

    try:
        kind = not_regular(path.stat().st_mode)
        if kind:
            raise UserError(f"cannot read bundle {path}: it is {kind}, not a bundle file; nothing was imported")
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read bundle {path}: {exc.strerror or exc}") from None
    try:
        head = json.loads(raw, parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"bundle {path} is not valid JSON ({exc}); export it again with `model export`") from None
    if not isinstance(head, dict) or head.get("format") != BUNDLE_FORMAT:
        raise UserError(f"{path} is not an embodied-ai bundle (no \"format\": \"{BUNDLE_FORMAT}\"); "
                        f"make one with `embodied-ai model export -o FILE`")
    version = head.get("bundle_version")
    if type(version) is not int:  # True is an int to isinstance
        raise UserError(f"bundle {path} has an unreadable bundle_version {shown(version, 40)} (a "
                        f"{type(version).__name__}), where this embodied-ai expects the number {BUNDLE_VERSION}; "
                        f"nothing was imported")
    if version != BUNDLE_VERSION:
        raise UserError(f"bundle {path} has version {version}, this embodied-ai reads {BUNDLE_VERSION}; "
                        f"upgrade embodied-ai")
    models = head.get("models")
    if isinstance(models, list):
        for i, item in enumerate(models):
            label = _entry_label(i, item)
            try:
                entry = BundleEntry.model_validate(known_keys(BundleEntry, item))
            except ValidationError as exc:
                where = error_text(exc.errors(include_url=False)[0])
                raise UserError(f"bundle {path}: {label} is invalid at {where}; nothing was imported") from None
            problem = _bundle_entry_problem(entry)
            if problem:
                raise UserError(f"bundle {path}: {label}: {problem}; nothing was imported")
    try:
        return Bundle.model_validate(known_keys(Bundle, head))
    except ValidationError as exc:
        where = error_text(exc.errors(include_url=False)[0])
        raise UserError(f"bundle {path} is invalid at {where}; nothing was imported") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _entry_label(index: int, item: Any) -> str:
    record = item.get("record") if isinstance(item, dict) else None
    name = record.get("name") if isinstance(record, dict) else None
    version = record.get("version") if isinstance(record, dict) else None
    what = f" ({shown(name, 40)} v{shown(version, 12) if type(version) is not int else version})" if name else ""
    return f"model {index}{what}"


def import_bundle(path: str | Path, db: Registry | str | Path | None = None) -> list[tuple[ModelRecord, str]]:
    """Add a bundle's models keeping versions, tags, hashes and details. Idempotent: a model whose name already has
    that identity is "unchanged"; a taken version number is "renumbered" to the next free one. Nothing is written
    unless every record in the bundle is valid."""
    bundle = read_bundle(path)
    reg = registry(db)
    out = reg.put_many([(e.record, e.identity, e.details) for e in bundle.models])
    from embodied_tui.services.layer_store import remember  # their layer columns (best effort, as registering)

    remember(reg, [(record, e.details) for (record, status), e in zip(out, bundle.models) if status != "unchanged"])
    if any(status != "unchanged" for _, status in out):
        from embodied_tui.services.summary import summarise

        summarise(reg)
    return out


# ------------------------------------------------------------------------------------------------ demo
def demo_dir(db: Registry | str | Path | None = None) -> Path:
    """Where `demo` writes its model files by default: ``demo-models`` beside the registry file."""
    return registry(db).path.parent / "demo-models"


DEMO_TARGET = "jetson-orin-nano-8gb/15W/fp16"  # the target a demo registry pins when it has none (a TensorRT-style fp16)


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
    from embodied_tui.services import target

    if target.pinned(reg) is None:  # the app's ms column then answers "how fast on a Jetson", not "on anything"
        target.pin(reg, DEMO_TARGET)
    return out
