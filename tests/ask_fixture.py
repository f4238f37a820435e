"""A real registry for the ask / Cypher / card tests: small zoo models saved as TorchScript, analysed with
``analyze_file``, registered, with two stored measurements, fitted with ``services.fit``.

Built once per test process (about 10 s) and shared by tests/test_ask.py, test_cypher.py and test_card.py (the
``fx`` and ``graph`` fixtures of conftest.py); the directory is removed when the process exits. Treat it as read-only:
``copy_registry`` gives a copy to change.
"""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

MODELS = ("resnet_tiny", "mobilenet_tiny", "small_vit", "lstm_policy", "mlp_policy", "yolo_style_detector",
          "unet_small")
# most are registered with the shape the user would give (--input-shape); these convolutional ones with the shape the
# analyser infers, so both sources appear in the records
INFERRED = ("resnet_tiny", "mobilenet_tiny", "unet_small")
MEASURED = (  # model, device, mode, precision, latency_ms
    ("resnet_tiny", "jetson-orin-nano-8gb", "15W", "fp16", 2.5),
    ("mobilenet_tiny", "raspberry-pi-5", "default", "fp32", 7.0),
)


@dataclass(frozen=True)
class Fixture:
    db: Path
    records: list  # ModelRecord, latest versions
    details: dict  # name -> ModelDetails
    devices: list  # HardwareEntry
    rows: list  # FitRow of every model (services.fit.fit_all)
    measurements: list


@functools.lru_cache(maxsize=1)
def registry_fixture() -> Fixture:
    import torch

    from embodied_tui.analysis.api import analyze_file
    from embodied_tui.analysis.zoo import BUILDERS
    from embodied_tui.data.store import Registry
    from embodied_tui.services.fit import add_measurement, devices, fit_all, list_measurements

    tmp = Path(tempfile.mkdtemp(prefix="embodied-ai-ask-"))
    atexit.register(shutil.rmtree, tmp, True)
    reg = Registry(tmp / "registry.json")
    for name in MODELS:
        builder = BUILDERS[name]
        path = tmp / f"{name}.pt"
        with torch.no_grad():
            torch.jit.trace(builder.build(), builder.example_inputs(), check_trace=False).save(str(path))
        shape = None if name in INFERRED else [list(s) for s in builder.input_shapes]
        reg.add(analyze_file(path, input_shape=shape), name)
    for model, hw, mode, precision, ms in MEASURED:
        add_measurement(reg, model=model, hw=hw, mode=mode, precision=precision, latency_ms=ms,
                        source="test fixture", runtime="test")
    records = reg.list_models()
    return Fixture(db=reg.path, records=records, details={r.name: reg.details(r) for r in records},
                   devices=devices(reg), rows=fit_all(reg), measurements=list_measurements(reg))


def copy_registry(folder: Path) -> Path:
    """A copy of the fixture registry (file and model details, not the fit cache) in ``folder``; its path."""
    db = registry_fixture().db
    target = folder / db.name
    shutil.copy2(db, target)
    shutil.copytree(db.with_name(db.name + ".d"), target.with_name(target.name + ".d"))
    return target
