"""The record schema (data/records.py): one summary, extended by the analysis and by the registered record.

tests/data/registry_7f59339.json was written by embodied-ai at commit 7f59339, before the schema was split into parts
(a state_dict with unknown MACs, a pickle with an uncounted data-dependent op, an ONNX model). Its records must load
unchanged and come back with the same keys in the same order, and a record built now must look the same.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from embodied_tui.data.records import Analysis, CensusNode, LayerCost, ModelDetails, ModelRecord, ModelSummary
from embodied_tui.data.store import Registry
from embodied_tui.services.models import record_json, records_json_bytes

FIXTURE = Path(__file__).parent / "data" / "registry_7f59339.json"
REGISTRATION_KEYS = ("name", "version", "registered_at", "tags", "description")


def stored_records() -> list[dict]:
    return [doc["record"] for doc in json.loads(FIXTURE.read_bytes())["models"].values()]


def text(value) -> str:
    """JSON text that keeps key order, to compare order as well as content."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def copy_fixture(tmp_path: Path) -> Path:
    db = tmp_path / "registry.json"
    shutil.copy(FIXTURE, db)
    return db


@pytest.mark.parametrize("layout", ["as written", "hand edited"])
def test_a_registry_written_before_the_split_loads_unchanged(tmp_path, layout):
    db = copy_fixture(tmp_path)
    if layout == "hand edited":  # re-indenting breaks the seal: the file is then validated in full, not constructed
        db.write_text(json.dumps(json.loads(db.read_bytes()), indent=1))
    records = Registry(db).list_models(latest_only=False)
    stored = stored_records()
    assert [type(r) for r in records] == [ModelRecord] * len(stored)
    assert [text(record_json(r)) for r in records] == [text(s) for s in stored]
    assert records_json_bytes(records) == (text(stored) + "\n").encode()  # `model list --json`, byte for byte


def test_rewriting_the_file_keeps_the_other_records_byte_for_byte(tmp_path):
    db = copy_fixture(tmp_path)
    Registry(db).update("gate", description="changed")
    before, after = stored_records(), [doc["record"] for doc in json.loads(db.read_bytes())["models"].values()]
    assert after[1]["description"] == "changed"
    after[1]["description"] = before[1]["description"]
    assert [text(r) for r in after] == [text(r) for r in before]


@pytest.mark.parametrize("index", range(3))
def test_a_record_registered_now_has_the_stored_keys_in_the_stored_order(index):
    stored = stored_records()[index]
    analysis = Analysis.model_validate({k: v for k, v in stored.items() if k in ModelSummary.model_fields})
    record, details = ModelRecord.from_analysis(
        analysis, name=stored["name"], version=stored["version"], registered_at=stored["registered_at"],
        tags=stored["tags"], description=stored["description"])
    # a record registered now also carries who/where/when (lineage), last, after the stored keys
    assert list(record.model_dump())[-1] == "lineage" and record.lineage is not None
    assert text(record.model_dump(mode="json", exclude={"lineage"})) == text(stored)
    assert record.model_dump_json(exclude={"lineage"}) == json.dumps(stored, separators=(",", ":"), ensure_ascii=False)
    assert details == ModelDetails(sha256=stored["sha256"])


# summary keys added after the fixture was written: at the end, and left out of the JSON while None
ADDED_SINCE = ("constant_elems", "constant_bytes", "coverage", "scaling", "transformer")


def test_analysis_is_the_summary_then_the_details():
    summary = [k for k in stored_records()[0] if k not in REGISTRATION_KEYS] + list(ADDED_SINCE)
    assert list(ModelSummary.model_fields) == summary
    assert list(Analysis.model_fields) == [*summary, "census", "layer_costs"]
    assert list(ModelDetails.model_fields) == ["sha256", "census", "layer_costs"]  # its JSON's hash names its file
    assert issubclass(Analysis, ModelSummary) and issubclass(ModelRecord, ModelSummary)
    assert not issubclass(ModelRecord, Analysis)  # a record never carries the heavy parts


def test_summary_fields_and_details_split_an_analysis():
    stored = stored_records()[2]
    census = [CensusNode(path="", type="Net", params=3), CensusNode(path="conv", type="Conv", params=3)]
    costs = [LayerCost(name="conv", type="Conv", macs=9)]
    analysis = Analysis(**{k: v for k, v in stored.items() if k in ModelSummary.model_fields},
                        census=census, layer_costs=costs)
    fields = analysis.summary_fields()
    assert list(fields) == [k for k in ModelSummary.model_fields if k not in ADDED_SINCE]  # None: left out
    assert fields["architecture"] == stored["architecture"] and fields["path"] == stored["path"]
    details = analysis.details()
    assert (details.sha256, details.census, details.layer_costs) == (stored["sha256"], census, costs)
    record, stored_details = ModelRecord.from_analysis(analysis, name="n", version=1, registered_at="t")
    assert stored_details == details
    assert record.summary_fields() == fields  # a record's summary is the analysis's summary
    assert (record.tags, record.description) == ({}, "")


@pytest.mark.parametrize("cls", [ModelSummary, Analysis, ModelRecord, ModelDetails])
def test_unknown_keys_are_refused(cls):
    stored = stored_records()[0]
    data = {k: v for k, v in stored.items() if k in cls.model_fields}
    cls.model_validate(data)
    with pytest.raises(ValidationError) as exc:
        cls.model_validate({**data, "colour": "red"})
    assert [(e["type"], e["loc"]) for e in exc.value.errors()] == [("extra_forbidden", ("colour",))]


def test_a_record_stored_before_a_key_was_added_still_takes_the_fast_path(monkeypatch):
    """A key added later is left out of the JSON while None; a stored dict without it is built without validation,
    equal to what validation builds, and prints as it was stored."""
    from embodied_tui.data import fast_records

    stored = stored_records()[2]
    validated = ModelRecord.model_validate(stored)

    def refuse(*args, **kwargs):
        raise AssertionError("validated instead of built")

    monkeypatch.setattr(ModelRecord, "model_validate", refuse)
    built = fast_records.build(ModelRecord, json.loads(json.dumps(stored)), fast=True)
    assert built == validated and built.model_fields_set == validated.model_fields_set
    assert built.coverage is None and "coverage" not in built.model_fields_set
    assert text(record_json(built)) == text(stored)
