"""Fits of many models at once change no number: the layer columns (``perf.layer_columns``) give the work of
``roofline.model_work`` bit for bit at every precision x fusion; ``services.fit.fit_edges_many`` (models x targets x
layers arrays) gives the edges of ``fit_record(top=0)`` for each model, on the fixture's real analysed models and on
models with other layer counts (their details cut short) or none (the totals' pseudo-layer), on every catalog device x
mode x precision; and the layer columns stored in the fit store (``services.layer_store``) round-trip, while a damaged
or stale row, or a details file gone since, is read from the details as before. Real files, real SQLite."""
from __future__ import annotations

import hashlib
import json
import warnings

import numpy as np
import pytest
from ask_fixture import copy_registry, registry_fixture

from embodied_tui.ask.graph import FitEdge
from embodied_tui.data.store import Registry
from embodied_tui.perf import roofline_many
from embodied_tui.perf.layer_columns import CODE_VERSION, LayerColumns, encode, from_bytes, to_bytes
from embodied_tui.perf.roofline import BYTES_PER_ELEMENT, FUSIONS, model_work, work_totals
from embodied_tui.perf.roofline_many import LayerArrays
from embodied_tui.services import graph
from embodied_tui.services.fit import FitContext, fit_edges_many, fit_record
from embodied_tui.services.fit_store import FitStore
from embodied_tui.services.graph import Registered, fit_cache_path
from embodied_tui.services.layer_store import LayerSource, remember


def _exact(edges) -> list[str]:
    """Edges as text that tells 1 from 1.0 and shows every bit of a float (repr is round-trip exact)."""
    return [json.dumps([repr(v) for v in e]) for e in edges]


def _plain(db, record, hw=None) -> list[FitEdge]:
    return [FitEdge.of(row) for row in fit_record(FitContext.open(db), record, hw=hw, top=0)]


def _varied(tmp_path) -> Registry:
    """A copy of the fixture registry with more models: each fixture model cut to its first 1, 2 and half its layers
    (other layer counts, other details contents) and one without details (the totals' pseudo-layer)."""
    reg = Registry(copy_registry(tmp_path))
    items = []
    for record, identity, details in reg.entries():
        if details is None or len(details.layer_costs) < 3:
            continue
        n = len(details.layer_costs)
        for keep in sorted({1, 2, n // 2}):
            tag = f"{identity}/{keep}"
            items.append((record.model_copy(update={"name": f"{record.name}_first{keep}",
                                                    "sha256": hashlib.sha256(tag.encode()).hexdigest()}),
                          hashlib.sha256(tag.encode()).hexdigest(),
                          details.model_copy(update={"layer_costs": details.layer_costs[:keep]})))
    record, _, _ = reg.entries()[0]
    bare = hashlib.sha256(b"bare").hexdigest()
    items.append((record.model_copy(update={"name": f"{record.name}_bare", "sha256": bare}), bare, None))
    reg.put_many(items)
    return reg


def test_columns_give_model_work_at_every_precision_and_fusion():
    fx = registry_fixture()
    compared = 0
    for details in fx.details.values():
        if not details or not details.layer_costs:
            continue
        columns = LayerColumns(from_bytes(to_bytes(encode(details.layer_costs))))
        for precision in BYTES_PER_ELEMENT:
            for fusion in FUSIONS:
                arrays, totals = columns.work_arrays(precision, fusion)
                work, _ = model_work(None, details.layer_costs, precision, fusion)
                plain = LayerArrays.of(work)
                for name in LayerArrays.__slots__[:-1]:
                    mine, theirs = getattr(arrays, name), getattr(plain, name)
                    assert mine.dtype == theirs.dtype and mine.tobytes() == theirs.tobytes(), (precision, fusion, name)
                assert arrays.n_ops == plain.n_ops
                assert [float(t).hex() for t in totals] == [float(t).hex() for t in work_totals(work)]
                compared += 1
    assert compared >= 5 * len(BYTES_PER_ELEMENT) * len(FUSIONS)


def test_many_models_at_once_equal_plain_fits_on_every_target(tmp_path, monkeypatch):
    reg = _varied(tmp_path)
    records = [r for r in reg.list_models() if r.macs is not None]
    assert len(records) >= 15 and len({len(d.layer_costs) for _, _, d in reg.entries() if d}) >= 10
    ctx = FitContext.open(reg)
    devices = [entry.id for entry in ctx.entries]
    calls = [(device, None, None) for device in devices]  # every device x mode x precision
    monkeypatch.setattr(roofline_many, "ELEMENTS", 5_000)  # several slabs of models, of unequal layer counts
    fast = fit_edges_many(ctx, records, calls, FitEdge)
    compared = 0
    for record, edges in zip(records, fast):
        plain = [edge for device in devices for edge in _plain(reg, record, device)]
        assert _exact(edges) == _exact(plain), record.name
        compared += len(edges)
    assert compared > 5_000


def test_graph_chunks_copies_and_layer_counts_give_plain_fits(tmp_path, monkeypatch):
    reg = _varied(tmp_path)
    reg.put_many([(record.model_copy(update={"name": f"{record.name}_copy"}), identity, details)
                  for record, identity, details in reg.entries()])  # copies share their original's edges
    monkeypatch.setattr(graph, "FIT_CHUNK", 7)  # copies in other chunks than their originals
    monkeypatch.setattr(graph, "FIT_BATCH", 3)
    src = Registered.read(reg.path)
    records = [r for r in src.records if r.macs is not None]
    done = []
    edges = src.fit_edges(records, progress=lambda n, total: done.append((n, total)))
    assert done[0] == (0, len(records)) and done[-1] == (len(records), len(records))
    by_model: dict[str, list] = {}
    for edge in edges:
        by_model.setdefault(edge.model, []).append(edge)
    for record in records:
        assert _exact(by_model[record.name]) == _exact(_plain(reg.path, record)), record.name


def _digests(reg: Registry) -> dict[str, list]:
    """details digest -> layer costs of every stored model with some."""
    return {reg._details_digest(record): details.layer_costs for record, _, details in reg.entries()
            if details is not None and details.layer_costs}


def test_layer_columns_round_trip_through_the_store(tmp_path):
    reg = Registry(copy_registry(tmp_path))
    src = Registered.read(reg.path)
    src.fit_edges([r for r in src.records if r.macs is not None][:3])  # fills lazily what it parsed
    wanted = _digests(reg)
    store = FitStore(fit_cache_path(reg))  # a fresh store on the same file
    stored = store.layer_columns(CODE_VERSION, list(wanted))
    assert 1 <= len(stored) <= 3 and len(wanted) > 3
    remember(reg, [(record, None) for record in reg.list_models()])  # what registration does: the others too
    stored = store.layer_columns(CODE_VERSION, list(wanted))
    assert set(stored) == set(wanted)
    for digest, (size, blob) in stored.items():
        assert size == reg._details_path(digest).stat().st_size
        assert np.array_equal(from_bytes(blob), encode(wanted[digest]))
    store.close()


def _source_with(reg: Registry, rows) -> tuple[LayerSource, FitStore]:
    store = FitStore(fit_cache_path(reg))
    store.put_layer_columns(*rows)
    return LayerSource(reg, store), store


def test_a_damaged_or_stale_row_is_made_again_from_the_details(tmp_path):
    reg = Registry(copy_registry(tmp_path))
    record = next(r for r in reg.list_models() if r.macs is not None and reg.details(r))
    digest = reg._details_digest(record)
    costs = reg.details(record).layer_costs
    size = reg._details_path(digest).stat().st_size
    zeros = to_bytes(np.zeros((len(costs), 10), dtype=np.int64) + np.array([0] * 5 + [1] + [0] * 4))
    for version, blob in ((CODE_VERSION, b"not columns"), (CODE_VERSION, b"\x00" * 7), ("0:stale", zeros)):
        source, store = _source_with(reg, (version, [(digest, size, blob)]))
        parsed = []
        columns = source.columns(record, lambda r: parsed.append(r) or reg.details(r).layer_costs)
        assert parsed == [record], "the row must not be read"
        assert np.array_equal(columns.table, encode(costs))
        source.flush()  # the row made again replaces the bad one
        (found_size, found), = store.layer_columns(CODE_VERSION, [digest]).values()
        assert found_size == size and np.array_equal(from_bytes(found), encode(costs))
        store.close()
    source, store = _source_with(reg, (CODE_VERSION, []))
    assert np.array_equal(source.columns(record, lambda r: pytest.fail("read from the store")).table, encode(costs))
    store.close()


def test_a_details_file_gone_since_is_not_read_from_the_cache(tmp_path):
    reg = Registry(copy_registry(tmp_path))
    remember(reg, [(record, None) for record in reg.list_models()])
    record = max((r for r in reg.list_models() if r.macs is not None), key=lambda r: r.macs)
    digest = reg._details_digest(record)
    store = FitStore(fit_cache_path(reg))
    assert store.layer_columns(CODE_VERSION, [digest]), "the cache must hold the columns for the test to mean much"
    reg._details_path(digest).unlink()
    ctx = FitContext.open(reg)
    ctx.layers = LayerSource(reg, store)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")  # the missing details file's warning, as any fit of it gives
        fast = fit_edges_many(ctx, [record], [(None, None, None)], FitEdge)[0]
    assert any("is missing" in str(w.message) for w in said)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = _plain(reg.path, record)
    assert plain and _exact(fast) == _exact(plain)
    store.close()
