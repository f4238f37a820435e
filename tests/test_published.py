"""Published batch-1 measurements (embodied_tui/data/published/latency.csv): the file loads, every row names a catalog
device and mode, every model_ref builds the measured architecture with the published GMACs, no held-out source."""
from __future__ import annotations

import datetime as dt
import re
from importlib import resources

import pytest

from embodied_tui.data.hardware import load_catalog
from embodied_tui.data.published import (
    COLUMNS,
    DATA_VERSION,
    LLM_SCOPES,
    check_devices,
    load_published,
    parse_csv,
    rows_for,
)
from embodied_tui.errors import UserError


def _csv_text() -> str:
    return (resources.files("embodied_tui.data") / "published" / "latency.csv").read_text(encoding="utf-8")


def _rows():
    return parse_csv(_csv_text())  # the file as shipped, parsed afresh (devices are checked in their own test)


def _raw_rows():
    import csv
    import io

    return list(csv.DictReader(io.StringIO(_csv_text())))


def test_the_csv_loads_with_a_version():
    rows = load_published()
    assert rows and re.fullmatch(r"\d{4}\.\d{2}\.\d{2}-\d+", DATA_VERSION)
    assert len({r.id for r in rows}) == len(rows)


def test_every_device_and_power_mode_is_in_the_catalog():
    catalog = {entry.id: entry for entry in load_catalog()}
    raw = _raw_rows()
    missing = sorted({r["device"] for r in raw if r["device"] not in catalog})
    assert not missing, f"rows name devices the catalog lacks (add their YAML first): {', '.join(missing)}"
    bad_modes = [(r["id"], r["device"], r["power_mode"]) for r in raw if r["power_mode"]
                 and r["power_mode"] not in [m.name for m in catalog[r["device"]].power_modes]]
    assert not bad_modes, f"power modes the device does not have: {bad_modes}"


def test_every_row_has_provenance_and_quotes_its_figure():
    for row in _rows():
        assert row.source_url.startswith(("https://", "http://")) and row.source_title, row.id
        assert dt.date(2024, 1, 1) <= row.retrieved <= dt.date.today(), row.id  # read, so not in the future
        # the notes quote the figure as published: the latency itself, or the FPS / tokens/s it was converted from
        quoted = (row.notes or "").replace(",", "")  # "1,384.1 ms" as the source prints it
        assert f"{row.latency_ms:g}" in quoted or "->" in quoted, row.id


def test_no_held_out_source():
    for row in _rows():
        url = row.source_url.lower()
        assert not ("docs.ultralytics.com" in url and "yolo11" in url), row.id
        assert "mlcommons" not in url and "mlperf" not in url, row.id
        assert "mlperf" not in (row.notes or "").lower(), row.id


def test_llm_rows_have_no_image_shape_and_usable_rows_do():
    for row in _rows():
        if row.scope in LLM_SCOPES:
            assert row.input_shape is None and row.model_ref is None, row.id
        if row.usable:
            assert row.input_shape is not None and row.input_shape[0] == row.batch == 1, row.id


def _builds() -> dict[tuple[str, tuple[int, ...]], list]:
    """Rows with a model_ref, grouped by (builder, input shape): each pair is built and counted once."""
    groups: dict[tuple[str, tuple[int, ...]], list] = {}
    for row in _rows():
        if row.model_ref:
            groups.setdefault((row.model_ref, row.input_shape), []).append(row)
    return groups


@pytest.mark.parametrize("key", sorted(_builds()), ids=lambda k: f"{k[0]}@{'x'.join(map(str, k[1]))}")
def test_model_ref_builds_and_counts_the_published_gmacs(key):
    import torch

    from embodied_tui.analysis.torch.analyze import analyze_module
    from embodied_tui.analysis.zoo import BUILDERS

    name, shape = key
    rows = _builds()[key]
    assert name in BUILDERS, f"{rows[0].id}: no zoo builder {name!r}"
    (default,) = BUILDERS[name].input_shapes
    assert shape[:2] == default[:2], rows[0].id  # same batch and channels; the size may differ (YOLO at 320)
    with torch.device("meta"):
        model = BUILDERS[name].build()
    fields = analyze_module(model, [list(shape)], fmt="pickle", detail="")
    for row in rows:
        if row.params is not None:  # published to 2-3 significant digits (3.2M)
            assert abs(fields["params"] - row.params) / row.params < 0.02, row.id
        if row.gmacs is not None:
            assert abs(fields["macs"] / 1e9 - row.gmacs) / row.gmacs < 0.03, row.id


def test_rows_for_filters_by_device_scope_and_usability():
    rows = _rows()
    usable = [r for r in rows if r.model_ref and r.scope not in LLM_SCOPES and r.precision]
    assert rows_for() == usable and usable
    device = usable[0].device
    assert rows_for(device=device) == [r for r in usable if r.device == device]
    assert rows_for(scope="decode_per_token", usable=False) == [r for r in rows if r.scope == "decode_per_token"]
    assert rows_for(scope="decode_per_token") == []  # LLM rows are never usable for an image-model fit
    with pytest.raises(UserError, match="unknown scope"):
        rows_for(scope="wall")


# ---- the loader refuses bad rows, naming the row and the file

GOOD = {"id": "x-1", "model": "YOLOv8n", "model_ref": "yolov8n", "input_shape": "1x3x640x640", "params": "3200000",
        "gmacs": "4.35", "device": "nvidia-t4", "power_mode": "", "precision": "fp16", "runtime": "tensorrt",
        "runtime_version": "", "batch": "1", "latency_ms": "2.5", "scope": "engine",
        "source_url": "https://example.org/page", "source_title": "a page", "retrieved": "2026-01-02",
        "notes": "2.5 ms"}


def _text(*rows: dict) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def test_a_good_row_parses_to_typed_fields():
    (row,) = parse_csv(_text(GOOD))
    assert row.input_shape == (1, 3, 640, 640) and row.params == 3_200_000 and row.power_mode is None
    assert row.usable
    check_devices([row], load_catalog())


@pytest.mark.parametrize("change, message", [
    ({"precision": "fp12"}, "row x-1: precision"),
    ({"scope": "wall"}, "row x-1: scope"),
    ({"latency_ms": "0"}, "row x-1: latency_ms"),
    ({"input_shape": "640 by 640"}, "row x-1: input_shape"),
    ({"source_url": "example.org"}, "row x-1: source_url"),
    ({"retrieved": "last week"}, "row x-1: retrieved"),
])
def test_a_bad_field_names_the_row_and_the_field(change, message):
    with pytest.raises(UserError, match=re.escape(message)):
        parse_csv(_text(GOOD | change))


def test_duplicate_ids_wrong_columns_unknown_devices_and_modes_are_refused():
    with pytest.raises(UserError, match="x-1 is used twice"):
        parse_csv(_text(GOOD, GOOD))
    with pytest.raises(UserError, match="columns must be exactly"):
        parse_csv("id,model\nx,y\n")
    catalog = load_catalog()
    with pytest.raises(UserError, match="row x-1: device 'nvidia-t5' is not in the hardware catalog"):
        check_devices(parse_csv(_text(GOOD | {"device": "nvidia-t5"})), catalog)
    with pytest.raises(UserError, match="row x-1: nvidia-t4 has no power mode 'MAXN'"):
        check_devices(parse_csv(_text(GOOD | {"power_mode": "MAXN"})), catalog)
