"""services.export (the app's ctrl+e and Y), services.registration (the register and edit dialogs' fields) and
services.editor ($EDITOR), without the app: real files, real records from the snapshot fixture's analyses."""
from __future__ import annotations

import csv
import json
import os

import pytest
from tui_fixtures import FIXTURE_JSON

from embodied_tui.data.records import Analysis, ModelRecord
from embodied_tui.errors import UserError
from embodied_tui.services import editor, export, registration
from embodied_tui.services.models import parse_tags


def fixture_records() -> list[ModelRecord]:
    out = []
    for entry in json.loads(FIXTURE_JSON.read_text()):
        record, _ = ModelRecord.from_analysis(Analysis.model_validate(entry["analysis"]), name=entry["name"],
                                              version=entry["version"], registered_at=entry["registered_at"],
                                              tags=entry["tags"])
        out.append(record)
    return out


# ------------------------------------------------------------------------------------------------ export
def test_records_csv_holds_exact_numbers_and_round_trips_awkward_text(tmp_path):
    records = fixture_records()
    awkward = records[0].model_copy(update={"tags": {"note": 'say "hi", twice', "robot": ""}})
    path = export.write_records(tmp_path / "m.csv", [awkward, *records[1:]])
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(export.RECORD_HEADERS)
    assert [(r["name"], int(r["version"])) for r in rows] == [(r.name, r.version) for r in records]
    for row, record in zip(rows, records):
        assert int(row["params"]) == record.params and int(row["weight_bytes"]) == record.weight_bytes
        assert row["macs"] == ("" if record.macs is None else str(record.macs))  # unknown: empty, never 0
        assert row["input"] == ";".join("x".join(map(str, s)) for s in record.input_shapes)
        assert row["target_ms"] == row["target_fps"] == ""  # no target computed: empty
    assert rows[0]["tags"] == 'note=say "hi", twice robot'  # commas and quotes survive the CSV quoting


def test_target_cells_are_written_when_known(tmp_path):
    from embodied_tui.services.target import TargetCell

    records = fixture_records()[:2]
    cell = TargetCell(ms=2.5, fps=400.0, note="15W/int8")
    table = export.records_table(records, {f"{records[0].name}@{records[0].version}": cell})
    ms, fps, note = (export.RECORD_HEADERS.index(h) for h in ("target_ms", "target_fps", "target_note"))
    assert (table.rows[0][ms], table.rows[0][fps], table.rows[0][note]) == (2.5, 400.0, "15W/int8")
    assert (table.rows[1][ms], table.rows[1][fps], table.rows[1][note]) == (None, None, None)


def test_records_json_is_the_record_contract(tmp_path):
    from embodied_tui.services.models import record_json

    records = fixture_records()
    path = export.write_records(tmp_path / "m.json", records)
    assert json.loads(path.read_text()) == [record_json(r) for r in records]


def test_any_table_as_csv_or_json_and_the_refusals(tmp_path):
    table = export.Table(("layer", "MACs"), [("conv1", 118013952), ("fc", None)])
    assert export.write_table(tmp_path / "t.json", table) == tmp_path / "t.json"
    assert json.loads((tmp_path / "t.json").read_text()) == [{"layer": "conv1", "MACs": 118013952},
                                                            {"layer": "fc", "MACs": None}]
    export.write_table(tmp_path / "t.csv", table)
    assert (tmp_path / "t.csv").read_text() == "layer,MACs\n" "conv1,118013952\n" "fc,\n"
    with pytest.raises(UserError, match="exists already"):
        export.write_table(tmp_path / "t.csv", table)
    export.write_table(tmp_path / "t.csv", export.Table(("a",), [(1,)]), overwrite=True)
    assert (tmp_path / "t.csv").read_text() == "a\n1\n"
    with pytest.raises(UserError, match=r"must end in \.csv or \.json"):
        export.write_table(tmp_path / "t.xlsx", table)
    with pytest.raises(UserError, match="type the file"):
        export.target_path("  ")


def test_default_path_never_names_an_existing_file(tmp_path):
    assert export.default_path("models", "csv", tmp_path) == tmp_path / "models.csv"
    (tmp_path / "models.csv").write_text("x")
    (tmp_path / "models-2.csv").write_text("x")
    assert export.default_path("models", "csv", tmp_path) == tmp_path / "models-3.csv"


def test_row_text_is_one_line_of_tab_separated_cells():
    assert export.row_text(["a b", 3, None, "x\ty\nz"]) == "a b\t3\t\tx y z"


# ------------------------------------------------------------------------------------------------ registration
@pytest.mark.parametrize(("relative", "expected"), [
    ("resnet.traced.pt", "resnet"),  # up to the first dot, as the CLI's --name default always was
    ("yolo11n.onnx", "yolo11n"),
    ("Qwen2.5-0.5B/", "Qwen2.5-0.5B"),  # a folder keeps its dots
    ("Qwen2.5-0.5B/config.json", "Qwen2.5-0.5B"),
    ("Qwen2.5-0.5B/model.safetensors.index.json", "Qwen2.5-0.5B"),
])
def test_default_name(tmp_path, relative, expected):
    (tmp_path / "Qwen2.5-0.5B").mkdir()
    assert registration.default_name(tmp_path / relative) == expected


@pytest.mark.parametrize("tags", [{}, {"robot": ""}, {"site": "lab", "note": "two words"},
                                  {"q": "it's \"quoted\"", "x": "a=b"}])
def test_tags_text_reads_back_to_the_same_tags(tags):
    assert parse_tags(registration.tag_words(registration.tags_text(tags))) == tags


def test_read_edit_says_what_changed():
    old = {"robot": "", "site": "lab"}
    assert registration.read_edit(old, "line one\nline two", "site=lab robot", "line one line two") is None
    edit = registration.read_edit(old, "d", "site=yard new", "d")
    assert (edit.tags, edit.untag, edit.description) == ({"site": "yard", "new": ""}, ["robot"], None)
    assert registration.read_edit(old, "d", "robot site=lab", "").description == ""  # cleared
    with pytest.raises(UserError, match="close the quote"):
        registration.read_edit(old, None, 'a="b', "")


# ------------------------------------------------------------------------------------------------ editor
def test_editor_command_follows_visual_then_editor(monkeypatch, tmp_path):
    monkeypatch.setenv("VISUAL", "code --wait")
    monkeypatch.setenv("EDITOR", "nano")
    assert editor.editor_command() == ["code", "--wait"]
    monkeypatch.delenv("VISUAL")
    assert editor.editor_command() == ["nano"]
    monkeypatch.delenv("EDITOR")
    monkeypatch.setenv("PATH", str(tmp_path))  # no vi on it
    with pytest.raises(UserError, match=r"set \$EDITOR"):
        editor.editor_command()


def test_edit_text_round_trip_and_a_failing_editor(monkeypatch, tmp_path):
    script = tmp_path / "ed"
    script.write_text('#!/bin/sh\nsed -i "s/old/new/" "$1"\necho "$1" > "' + str(tmp_path / "where") + '"\n')
    script.chmod(0o755)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", str(script))
    assert editor.edit_text("MATCH old", ".cypher") == ("MATCH new", "ed")
    used = (tmp_path / "where").read_text().strip()
    assert used.endswith(".cypher") and not os.path.exists(used)  # the temp file is removed afterwards
    monkeypatch.setenv("EDITOR", "/bin/false")
    with pytest.raises(UserError, match="exited with status 1"):
        editor.edit_text("x")
    monkeypatch.setenv("EDITOR", str(tmp_path / "missing-editor"))
    with pytest.raises(UserError, match="cannot start the editor"):
        editor.edit_text("x")
