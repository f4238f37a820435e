"""The history behind the numbers: calibrations as they were made, and what `model show` lists about a model.

A device's calibration lives in its hardware entry, which `calibrate` replaces each time; so that the history is kept,
every calibration is also appended to the registry table ``calibration_log``, one document each:
``{"device", "calibration" (the stored ``Calibration``), "lineage"}`` (``records.Lineage``: who, when, which host,
the runtime, its version and the execution provider). Nothing there is changed or removed.

``model_lineage`` gathers, for one model version, its registration lineage, its measurements (each with its lineage)
and the aliases that point at it (with the event that set each), for `model show` in text and JSON.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from embodied_tui.data.records import Lineage, ModelRecord, read_as
from embodied_tui.data.store import Registry, error_text, warn

CALIBRATION_LOG = "calibration_log"


class CalibrationEvent(BaseModel):
    """One calibration as `calibrate` stored it on ``device``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    device: str
    calibration: dict[str, Any]  # data.hardware.Calibration as JSON (kept as stored, whatever its version)
    lineage: Lineage


def _registry(db: Registry | str | Path | None) -> Registry:
    from embodied_tui.services.models import registry

    return registry(db)


def log_calibration(db: Registry | str | Path | None, device: str, calibration: dict[str, Any],
                    lineage: Lineage) -> CalibrationEvent:
    """Append one calibration of ``device`` (as JSON) with its lineage to the log."""
    event = CalibrationEvent(device=device, calibration=calibration, lineage=lineage)
    _registry(db).table_insert(CALIBRATION_LOG, event.model_dump(mode="json"))
    return event


def calibrations(db: Registry | str | Path | None = None, device: str | None = None) -> list[CalibrationEvent]:
    """Every logged calibration (of ``device``), oldest first; an invalid document is skipped with a warning."""
    reg = _registry(db)
    out = []
    for doc_id, doc in reg.table_items(CALIBRATION_LOG):
        try:
            event = read_as(CalibrationEvent, doc)
        except ValidationError as exc:
            warn(f"skipped calibration log document {doc_id} in {reg.path}: invalid at "
                 f"{error_text(exc.errors(include_url=False)[0])}; fix or remove it in the file")
            continue
        if device is None or event.device == device:
            out.append(event)
    return out


def model_lineage(db: Registry | str | Path | None, record: ModelRecord) -> dict[str, Any]:
    """For `model show`: ``{"registered": Lineage | None, "measurements": [Measurement of this version, oldest
    first], "aliases": [AliasEvent in force on this version]}``. A measurement stored without a version counts for
    the version whose file hash it names."""
    from embodied_tui.services.aliases import current
    from embodied_tui.services.fit import list_measurements

    reg = _registry(db)
    mine = [m for m in list_measurements(reg, model=record.name)
            if m.model_version == record.version
            or (m.model_version is None and m.model_sha256 == record.sha256)]
    mine.sort(key=lambda m: m.measured_at)
    return {"registered": record.lineage, "measurements": mine,
            "aliases": [e for e in current(reg, record.name) if e.version == record.version]}
