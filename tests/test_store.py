"""The registry file: versions and identity, details beside it, generic tables, corrupt files, path resolution.
The tests taking ``any_db`` run on both backends (a TinyDB file, a PostgreSQL database: tests/pg_server.py).

Records here are built from Analysis objects constructed in the test (no model files needed); test_model_cli.py covers
real files through the CLI.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, field_validator
from record_samples import analysis

from embodied_tui.data import fast_records, store
from embodied_tui.data.backend import open_registry
from embodied_tui.data.records import ModelRecord
from embodied_tui.data.store import Registry, identity_of
from embodied_tui.errors import NotFound, RegistryError


def file_bytes(path: Path) -> bytes:
    return path.read_bytes()


def written(reg) -> object:
    """What changes when a registry is written: the TinyDB file's bytes, the PostgreSQL change counter."""
    return reg.path.read_bytes() if isinstance(reg, Registry) else reg.change_marker()


# ------------------------------------------------------------------------------------------------ versions, identity
def test_add_versions_and_identity(any_db):
    reg = open_registry(any_db)
    rec, status = reg.add(analysis(1), "net", {"robot": ""}, "first")
    assert (status, rec.version, rec.tags, rec.description) == ("added", 1, {"robot": ""}, "first")

    before = written(reg)
    same, status = reg.add(analysis(1), "net", {"other": ""}, "ignored")
    assert status == "unchanged" and same.version == 1 and same.tags == {"robot": ""}
    assert written(reg) == before  # a no-op writes nothing

    rec2, status = reg.add(analysis(2), "net", {"site": "lab"})
    assert (status, rec2.version) == ("new_version", 2)
    assert rec2.tags == {"robot": "", "site": "lab"} and rec2.description == "first"  # carried from v1

    # the same bytes under another name are another model
    other, status = reg.add(analysis(1), "copy")
    assert (status, other.version) == ("added", 1)

    assert [(r.name, r.version) for r in reg.list_models()] == [("copy", 1), ("net", 2)]
    assert [(r.name, r.version) for r in reg.list_models(latest_only=False)] == [("copy", 1), ("net", 1), ("net", 2)]
    assert [r.version for r in reg.versions("net")] == [1, 2]
    assert reg.get("net").version == 2 and reg.get("net", 1).params == 1000
    assert reg.versions("nothing") == []


def test_record_fields_come_from_the_analysis(any_db):
    a = analysis(3)
    rec, _ = open_registry(any_db).add(a, "net")
    dumped = rec.model_dump()
    for key, value in a.model_dump(exclude={"census", "layer_costs"}).items():
        assert dumped[key] == value, key
    assert rec.registered_at.endswith("+00:00")


def test_not_found_suggests_close_names(any_db):
    reg = open_registry(any_db)
    reg.add(analysis(1), "resnet18")
    reg.add(analysis(2), "resnet50")
    with pytest.raises(NotFound) as exc:
        reg.get("resnet19")
    assert "resnet18" in str(exc.value) and str(reg.path) in str(exc.value)
    with pytest.raises(NotFound, match=r"no version 4 \(versions: 1\)"):
        reg.get("resnet18", 4)
    with pytest.raises(NotFound):
        reg.remove("resnt")
    with pytest.raises(NotFound):
        reg.update("resnt", {"a": ""})


def test_external_data_is_part_of_identity(any_db, tmp_path):
    model = tmp_path / "m" / "net.onnx"
    model.parent.mkdir()
    model.write_bytes(b"graph")
    weights = model.parent / "net.onnx.data"
    weights.write_bytes(b"weights v1")
    a = analysis(1, path=str(model), sha256=hashlib.sha256(b"graph").hexdigest(), external_data=["net.onnx.data"])
    reg = open_registry(any_db)
    assert identity_of(a) != a.sha256
    assert reg.add(a, "ext")[1] == "added"
    assert reg.add(a, "ext")[1] == "unchanged"
    assert reg.find_same("ext", model).version == 1

    weights.write_bytes(b"weights v2")  # same graph file, other weights: another model version
    assert reg.find_same("ext", model) is None
    rec, status = reg.add(a, "ext")
    assert (status, rec.version, rec.sha256) == ("new_version", 2, a.sha256)

    weights.unlink()
    with pytest.raises(RegistryError, match="net.onnx.data"):
        reg.add(a, "ext")


# ------------------------------------------------------------------------------------------------ details
def test_details_are_content_addressed_beside_the_registry(db):
    reg = Registry(db)
    a = analysis(5)
    rec, _ = reg.add(a, "net")
    details = reg.details(rec)
    assert details.census == a.census and details.layer_costs == a.layer_costs

    files = list((db.parent / "registry.json.d").iterdir())
    assert len(files) == 1
    assert files[0].name == hashlib.sha256(files[0].read_bytes()).hexdigest() + ".json"
    assert b"layer_costs" not in db.read_bytes()  # the main table stays small

    twin, _ = reg.add(a, "twin")  # identical details are stored once
    assert len(list(files[0].parent.iterdir())) == 1
    reg.remove("net")
    assert reg.details(twin).census == a.census  # still referenced by twin
    reg.remove("twin")
    assert list(files[0].parent.iterdir()) == []

    empty, _ = reg.add(analysis(6, census=[], layer_costs=[]), "bare")
    assert reg.details(empty) is None


def test_damaged_details_file_is_reported(db):
    reg = Registry(db)
    rec, _ = reg.add(analysis(1), "net")
    (path,) = (db.parent / "registry.json.d").iterdir()
    path.write_text(path.read_text().replace('"Conv"', '"Linear"'))
    with pytest.raises(RegistryError, match="does not match its hash"):
        reg.details(rec)


# ------------------------------------------------------------------------------------------------ remove, update
def test_remove_and_update(any_db):
    reg = open_registry(any_db)
    reg.add(analysis(1), "net", {"robot": "", "site": "lab"}, "d")
    reg.add(analysis(2), "net")
    reg.add(analysis(3), "other")

    changed = reg.update("net", {"site": "home", "new": ""}, untag=["robot"])
    assert [r.tags for r in changed] == [{"site": "home", "new": ""}] * 2
    assert reg.get("net", 1).tags == {"site": "home", "new": ""}
    (one,) = reg.update("net", description="only v2", version=2)
    assert (one.version, reg.get("net", 2).description, reg.get("net", 1).description) == (2, "only v2", "d")
    with pytest.raises(NotFound, match="no tag 'robot'"):
        reg.update("net", untag=["robot"])

    assert reg.remove("net", 1) == 1
    assert [r.version for r in reg.versions("net")] == [2]
    with pytest.raises(NotFound, match="no version 7"):
        reg.remove("net", 7)
    assert reg.remove("net") == 1
    assert [r.name for r in reg.list_models()] == ["other"]


def test_put_many_keeps_versions_and_is_idempotent(any_db, tmp_path):
    src = Registry(tmp_path / "src.json")
    src.add(analysis(1), "a")
    src.add(analysis(2), "a")
    items = src.entries()
    dst = open_registry(any_db)
    dst.add(analysis(9), "a")  # takes version 1 with other bytes
    out = dst.put_many(items)
    assert [(r.version, s) for r, s in out] == [(2, "renumbered"), (3, "renumbered")]
    versions = {r.sha256: r.version for r in dst.versions("a")}
    assert versions == {analysis(9).sha256: 1, analysis(1).sha256: 2, analysis(2).sha256: 3}
    assert [s for _, s in dst.put_many(items)] == ["unchanged", "unchanged"]
    fresh = Registry(tmp_path / "fresh.json")
    assert [(r.version, s) for r, s in fresh.put_many(items)] == [(1, "added"), (2, "added")]
    assert fresh.details(fresh.get("a", 2)) == src.details(src.get("a", 2))
    assert len(dst.list_models(latest_only=False)) == 3


# ------------------------------------------------------------------------------------------------ generic tables
def test_generic_tables(any_db):
    reg = open_registry(any_db)
    assert reg.table_all("hardware") == []
    reg.table_insert("measurements", {"model": "a", "ms": 1.5})
    reg.table_insert("measurements", {"model": "a", "ms": 1.7})
    reg.table_upsert("hardware", {"id": "board", "w": 5}, "id")
    reg.table_upsert("hardware", {"id": "board", "w": 7}, "id")
    reg.table_upsert("hardware", {"id": "other", "w": 1}, "id")
    assert reg.table_all("hardware") == [{"id": "board", "w": 7}, {"id": "other", "w": 1}]
    reg.table_upsert("hardware", {"id": "board", "w": 8}, "id")  # replaced: same id, moved to the end
    assert reg.table_items("hardware") == [(2, {"id": "other", "w": 1}), (1, {"id": "board", "w": 8})]
    reg.table_upsert("hardware", {"id": "board", "w": 7}, "id")
    assert [d["ms"] for d in reg.table_all("measurements")] == [1.5, 1.7]
    assert reg.table_remove("measurements", "model", "a") == 2
    assert reg.table_remove("measurements", "model", "a") == 0
    copy = reg.table_all("hardware")
    copy[-1]["w"] = 99  # callers get copies
    assert reg.table_all("hardware")[-1]["w"] == 7
    with pytest.raises(ValueError):
        reg.table_insert("models", {"x": 1})
    with pytest.raises(ValueError):
        reg.table_insert("calibrations", {"x": object()})


# ------------------------------------------------------------------------------------------------ file format
def test_file_is_sealed_json_and_hand_edits_are_validated(db):
    reg = Registry(db)
    reg.add(analysis(1), "net", {"robot": ""})
    reg.add(analysis(2), "other")
    data = json.loads(db.read_bytes())
    assert data["_meta"]["1"]["schema_version"] == store.SCHEMA_VERSION
    assert store._sealed(db.read_bytes())
    fast = [r.model_dump() for r in reg.list_models(latest_only=False)]

    # a hand edit (pretty-printed, one description changed) breaks the seal: the file is validated in full and read
    data["models"]["1"]["record"]["description"] = "edited by hand"
    db.write_text(json.dumps(data, indent=2))
    assert not store._sealed(db.read_bytes())
    slow = [r.model_dump() for r in Registry(db).list_models(latest_only=False)]
    assert slow[0]["description"] == "edited by hand"
    slow[0]["description"] = fast[0]["description"]
    assert slow == fast

    reg.add(analysis(3), "third")  # the next write seals it again
    assert store._sealed(db.read_bytes())
    assert Registry(db).get("net").description == "edited by hand"


# ------------------------------------------------------------------------------------------------ fast records
# A sealed file's records are built without validation (data/fast_records.py writes pydantic's private attributes);
# EMBODIED_AI_NO_FASTPATH=1 validates them (the public API). Both must give the same records.
def identical(a: BaseModel, b: BaseModel) -> None:
    """The same record: classes, fields (with their value types), fields set, extras, private state and dump."""
    assert type(a) is type(b)
    assert a == b and a.model_dump_json() == b.model_dump_json()
    assert a.model_fields_set == b.model_fields_set
    assert (a.__pydantic_extra__, a.__pydantic_private__) == (b.__pydantic_extra__, b.__pydantic_private__)
    for name in type(a).model_fields:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, BaseModel):
            identical(x, y)
        elif isinstance(x, list) and any(isinstance(item, BaseModel) for item in x):
            assert len(x) == len(y)
            for p, q in zip(x, y):
                identical(p, q)
        else:
            assert repr(x) == repr(y), name  # 1 and 1.0 differ here


def sample_registry(db: Path) -> Registry:
    reg = Registry(db)
    for i in range(1, 6):
        reg.add(analysis(i, uncounted=[{"module": "head", "op": "nonzero", "reason": "data-dependent"}]
                         if i == 3 else [], analysis_seconds=0.25 * i), f"m{i}", {"k": str(i)})
    reg.add(analysis(6, macs=None, flops=None, macs_null_reason="data-dependent loop", macs_complete=False,
                     activation_bytes=None), "m1", description="second version")
    return reg


def read_records(db: Path, monkeypatch, *, fast: bool) -> tuple[list[ModelRecord], int]:
    """The registry's records read afresh with the fast path on or off, and how many were validated."""
    validated = []
    original = ModelRecord.model_validate.__func__

    def spy(cls, *args, **kwargs):
        validated.append(cls)
        return original(cls, *args, **kwargs)

    store._cache.clear()
    with monkeypatch.context() as patch:
        patch.setattr(ModelRecord, "model_validate", classmethod(spy))
        if fast:
            patch.delenv(fast_records.NO_FASTPATH_ENV, raising=False)
        else:
            patch.setenv(fast_records.NO_FASTPATH_ENV, "1")
        records = Registry(db).list_models(latest_only=False)
    store._cache.clear()
    return records, len(validated)


def test_fast_path_equals_validation(db, monkeypatch):
    assert fast_records.qualifies(ModelRecord)  # records qualify for the fast path (else listing 10k gets slow)
    sample_registry(db)
    assert store._sealed(db.read_bytes())
    fast, fast_validated = read_records(db, monkeypatch, fast=True)
    public, public_validated = read_records(db, monkeypatch, fast=False)
    assert (fast_validated, public_validated) == (0, 6)  # the switch chose the path
    data = json.loads(db.read_bytes())
    order = {(r.name, r.version): i for i, r in enumerate(fast)}  # listing order
    validated = sorted((ModelRecord.model_validate(doc["record"]) for doc in data["models"].values()),
                       key=lambda r: order[r.name, r.version])
    assert len(fast) == len(public) == len(validated) == 6
    for a, b, c in zip(fast, public, validated):
        identical(a, b)
        identical(a, c)
    assert type(fast[3].uncounted[0]).__name__ == "Uncounted" and fast[1].macs is None
    assert [r.model_dump_json() for r in fast] == [r.model_dump_json() for r in public]


def test_fast_records_follow_model_inheritance():
    """Any pydantic model qualifies by its fields, inherited ones included; one with a validator, alias or a
    field of another type is validated; a dict of another layout is validated."""
    class Part(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: str
        size: float | None = None
        dims: list[list[int]] = []

    class Base(BaseModel):
        model_config = ConfigDict(extra="forbid")
        id: int
        kind: Literal["a", "b"] = "a"
        parts: list[Part] = []

    class Mixin(BaseModel):
        model_config = ConfigDict(extra="forbid")
        notes: dict[str, list[str | None]] = {}
        ratio: float = 1.0

    class Derived(Base, Mixin):
        main: Part
        label: str | None = None

    class Checked(Derived):
        @field_validator("label")
        @classmethod
        def lower(cls, value):
            return value.lower() if value else value

    class Dated(Derived):
        when: tuple[int, int] = (0, 0)

    class Aliased(Derived):
        title: str = Field(default="", alias="Title")

    assert fast_records.qualifies(Derived)
    assert not any(fast_records.qualifies(c) for c in (Checked, Dated, Aliased))
    value = Derived(id=3, kind="b", parts=[Part(name="p", size=2.5, dims=[[1, 2]]), Part(name="q")],
                    notes={"x": ["y", None]}, ratio=0.5, main=Part(name="main", size=1.0), label="Mixed")
    text = value.model_dump_json()
    for cls in (Derived, Checked, Dated):
        fast = fast_records.build(cls, json.loads(text), fast=True)
        identical(fast, fast_records.build(cls, json.loads(text), fast=False))
        identical(fast, cls.model_validate_json(text))
    older = json.loads(text)
    del older["ratio"]  # an older layout: validated (the default fills it in)
    identical(fast_records.build(Derived, older, fast=True), Derived.model_validate_json(json.dumps(older)))


@pytest.mark.parametrize("slots", [
    ("__dict__", "__pydantic_fields_set_v3__", "__pydantic_extra__", "__pydantic_private__"),  # one renamed
    ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__", "__pydantic_frozen__"),
    ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__"),  # one dropped
], ids=["renamed", "added", "dropped"])
def test_fast_path_falls_back_to_validation_when_pydantic_keeps_other_state(db, monkeypatch, slots):
    sample_registry(db)
    public, _ = read_records(db, monkeypatch, fast=False)
    assert fast_records.layout_known()
    with monkeypatch.context() as patch:
        patch.setattr(BaseModel, "__slots__", slots)  # pydantic's real BaseModel, as another release declares it
        assert not fast_records.layout_known()
        fallback, validated = read_records(db, monkeypatch, fast=True)
    assert validated == 6  # every record went through model_validate
    for a, b in zip(fallback, public, strict=True):
        identical(a, b)


CORRUPTIONS = {
    "bad json": (lambda text: text[: len(text) // 2], "not valid JSON"),
    "newer schema": (lambda text: text.replace('"schema_version":1', '"schema_version":7'), "schema version 7"),
    "bad record": (lambda text: text.replace('"params":1000,', '"params":"lots",'), "models.1.record.params"),
    "string schema version": (lambda text: text.replace('"schema_version":1', '"schema_version":"1"'),
                              "schema version is unreadable: '1' (a string)"),
    "negative version": (lambda text: text.replace('"version":1,', '"version":-7,'), "models.1.record.version"),
    "top-level list": (lambda text: "[]", "not an object"),
    "not ours": (lambda text: '{"stuff": {"1": {"a": 1}}}', "no schema version"),
}


def test_keys_of_a_newer_version_are_ignored_and_kept(db):
    """A newer embodied-ai adds keys (the record contract: added freely, never renamed): this one reads the records,
    ignores the new keys and keeps them when it writes the file again."""
    reg = Registry(db)
    reg.add(analysis(1), "net")
    text = db.read_text().replace('"params":1000,', '"params":1000,"colour":"red",')
    text = text.replace('"evidence":["2 convs"]', '"evidence":["2 convs"],"confidence":0.9')
    text = text.replace('"details":', '"origin":"newer","details":')
    for sealed, fast in ((False, "0"), (True, "0"), (True, "1")):  # as a newer version wrote it, or hand-edited
        db.write_bytes(store._serialize(json.loads(text)) if sealed else text.encode())
        assert store._sealed(db.read_bytes()) == sealed
        os.environ[fast_records.NO_FASTPATH_ENV] = fast
        try:
            store._cache.clear()
            (rec,) = Registry(db).list_models()
        finally:
            os.environ.pop(fast_records.NO_FASTPATH_ENV)
        assert rec.params == 1000 and rec.architecture.evidence == ["2 convs"]
        assert "colour" not in rec.model_dump()
    Registry(db).update("net", {"site": "lab"})
    Registry(db).add(analysis(2), "other")
    doc = json.loads(db.read_bytes())["models"]["1"]
    assert doc["record"]["colour"] == "red" and doc["origin"] == "newer"
    assert doc["record"]["architecture"]["confidence"] == 0.9 and doc["record"]["tags"] == {"site": "lab"}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_corrupt_file_raises_one_line_and_is_never_written(db, kind):
    reg = Registry(db)
    reg.add(analysis(1), "net")
    edit, needle = CORRUPTIONS[kind]
    db.write_text(edit(db.read_text()))
    before = db.read_bytes()
    for attempt in (lambda: Registry(db).list_models(), lambda: Registry(db).add(analysis(2), "x"),
                    lambda: Registry(db).table_insert("hardware", {"id": 1}), lambda: Registry(db).remove("net")):
        with pytest.raises(RegistryError) as exc:
            attempt()
        message = str(exc.value)
        assert "\n" not in message and needle in message and str(db) in message, message
        assert "was not changed" in message
    assert db.read_bytes() == before


def test_missing_file_reads_empty_and_is_not_created(db):
    reg = Registry(db)
    assert reg.list_models() == [] and reg.table_all("hardware") == []
    assert not db.exists() and not db.parent.exists()
    db.parent.mkdir()
    db.write_bytes(b"")
    assert reg.list_models() == []  # an empty file is an empty registry


def test_unusable_paths(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    with pytest.raises(RegistryError, match="cannot create the registry directory") as exc:
        Registry(blocker / "registry.json").add(analysis(1), "net")
    assert "\n" not in str(exc.value)
    assert blocker.read_text() == "not a directory"
    with pytest.raises(RegistryError, match="is a directory"):
        Registry(tmp_path).list_models()


def test_writes_leave_no_temp_files_and_keep_the_mode(db):
    reg = Registry(db)
    reg.add(analysis(1), "net")
    os.chmod(db, 0o640)
    reg.add(analysis(2), "net")
    assert sorted(p.name for p in db.parent.iterdir()) == ["registry.json", "registry.json.d", "registry.json.lock"]
    assert db.stat().st_mode & 0o777 == 0o640


def test_path_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBODIED_AI_DB", str(tmp_path / "env.json"))
    assert Registry().path == tmp_path / "env.json"
    assert Registry(tmp_path / "explicit.json").path == tmp_path / "explicit.json"
    monkeypatch.delenv("EMBODIED_AI_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert Registry().path == tmp_path / "xdg" / "embodied-ai" / "registry.json"
