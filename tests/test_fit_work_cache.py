"""The per-model work cache of a fit (``FitContext.work``) and the graph's rows without per-layer lists (``top=0``)
change no number: rows computed one target at a time on a shared context, switching between models, equal rows
computed on a fresh context per target (nothing cached), field for field."""
from __future__ import annotations

from dataclasses import asdict, replace

from ask_fixture import registry_fixture

from embodied_tui.ask.graph import ROW_KEYS, FitEdge
from embodied_tui.services.fit import FitContext, fit_record

DEVICES = ("jetson-orin-nano-8gb", "raspberry-pi-5", "hailo-8l")


def _targets(fx):
    for entry in fx.devices:
        if entry.id in DEVICES:
            for mode in entry.power_modes:
                for precision in mode.peak_tflops:
                    yield entry.id, mode.name, precision


def test_shared_work_gives_the_rows_of_a_fresh_context():
    fx = registry_fixture()
    records = [r for r in fx.records if r.macs is not None]
    targets = list(_targets(fx))
    assert len(records) >= 2 and len(targets) >= 3, "the fixture must give models and targets to compare"
    shared = FitContext.open(fx.db)
    compared = 0
    for hw, mode, precision in targets:
        for record in records:  # the cached record changes on every call: the cache must follow it
            cached = fit_record(shared, record, hw=hw, mode=mode, precision=precision)
            fresh = fit_record(FitContext.open(fx.db), record, hw=hw, mode=mode, precision=precision)
            assert [asdict(r) for r in cached] == [asdict(r) for r in fresh], (record.name, hw, mode, precision)
            compared += len(cached)
    assert compared >= len(targets) * len(records)


def test_rows_without_layers_keep_every_other_field():
    fx = registry_fixture()
    ctx = FitContext.open(fx.db)
    record = max((r for r in fx.records if r.macs is not None), key=lambda r: r.macs)
    full = fit_record(ctx, record, hw="jetson-orin-nano-8gb")
    bare = fit_record(ctx, record, hw="jetson-orin-nano-8gb", top=0)
    assert full and any(r.top_layers for r in full), "the full rows must list layers for the comparison to mean much"
    assert all(r.top_layers == () for r in bare)
    assert [asdict(replace(r, top_layers=())) for r in full] == [asdict(r) for r in bare]
    assert [FitEdge.of(r) for r in full] == [FitEdge.of(r) for r in bare]
    assert "top_layers" not in ROW_KEYS  # what the graph's edge store keeps of a row
