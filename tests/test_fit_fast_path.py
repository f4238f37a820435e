"""The graph's fast fit path changes no number: ``services.fit.fit_edges`` (targets of one precision fitted together
over a numpy array, ``perf.roofline_many``) gives the edges of ``fit_record`` (one ``fit_model`` per target) bit for
bit, on the fixture's real analysed models (TorchScript files, measured ones among them) on every catalog device x
power mode x precision; and copies of a model (same content, other names) get their original's edges under their own
names, while a model with its own measurements keeps them."""
from __future__ import annotations

import json

from ask_fixture import copy_registry, registry_fixture

from embodied_tui.ask.graph import FitEdge
from embodied_tui.data.store import Registry
from embodied_tui.perf.roofline_many import supported
from embodied_tui.services.fit import FitContext, fit_edges, fit_record
from embodied_tui.services.graph import Registered


def _exact(edges) -> list[str]:
    """Edges as text that tells 1 from 1.0 and shows every bit of a float (repr is round-trip exact)."""
    return [json.dumps([repr(v) for v in e]) for e in edges]


def _plain(db, record, hw=None, mode=None, precision=None) -> list[FitEdge]:
    return [FitEdge.of(row) for row in fit_record(FitContext.open(db), record, hw=hw, mode=mode, precision=precision,
                                                  top=0)]


def test_fast_edges_equal_plain_fits_on_every_target():
    fx = registry_fixture()
    records = [r for r in fx.records if r.macs is not None]
    ctx = FitContext.open(fx.db)
    vectorised = compared = 0
    for entry in fx.devices:
        for record in records:  # switching model on a shared context: its caches must follow
            fast = fit_edges(ctx, record, [(entry.id, None, None)], FitEdge)
            assert _exact(fast) == _exact(_plain(fx.db, record, hw=entry.id)), (record.name, entry.id)
            compared += len(fast)
        for mode in entry.power_modes:
            for precision in mode.peak_tflops:
                target, _ = ctx.target(entry, mode, precision)
                vectorised += target is not None and supported(target)
                record = records[(vectorised + compared) % len(records)]
                fast = fit_edges(ctx, record, [(entry.id, mode.name, precision)], FitEdge)
                assert _exact(fast) == _exact(_plain(fx.db, record, entry.id, mode.name, precision)), \
                    (record.name, entry.id, mode.name, precision)
    assert vectorised > 100 and compared > 1000, "the catalog must give many targets the fast path computes"


def test_several_calls_keep_fit_records_order():
    fx = registry_fixture()
    record = max((r for r in fx.records if r.macs is not None), key=lambda r: r.macs)
    ctx = FitContext.open(fx.db)
    calls = [("jetson-orin-nano-8gb", "15W", None), ("raspberry-pi-5", None, "fp32"), ("hailo-8l", None, None)]
    fast = fit_edges(ctx, record, calls, FitEdge)
    plain = [edge for hw, mode, precision in calls for edge in _plain(fx.db, record, hw, mode, precision)]
    assert len(fast) >= 4 and _exact(fast) == _exact(plain)


def test_copies_share_their_originals_numbers_but_not_its_measurements(tmp_path):
    fx = registry_fixture()
    reg = Registry(copy_registry(tmp_path))
    measured = {m.model for m in fx.measurements}
    entries = reg.entries()
    copies = [(record.model_copy(update={"name": f"{record.name}_copy"}), identity, details)
              for record, identity, details in entries]
    reg.put_many(copies)
    src = Registered.read(reg.path)
    records = [r for r in src.records if r.macs is not None]
    assert len(records) == 2 * len([r for r in fx.records if r.macs is not None])
    edges = src.fit_edges(records)  # an empty edge store: every edge computed (copies from their originals)
    by_model: dict[str, list] = {}
    for edge in edges:
        by_model.setdefault(edge.model, []).append(edge)
    for record in records:
        plain = _plain(reg.path, record)
        assert _exact(by_model[record.name]) == _exact(plain), record.name
    original = next(iter(measured))
    has = [e for e in by_model[original] if e.measured_latency_ms is not None]
    assert has, "the measured original must carry its measurement"
    assert all(e.measured_latency_ms is None for e in by_model[f"{original}_copy"])
