"""What the fit-edge store beside a TinyDB registry holds, read and changed through its own API
(``services.fit_store.FitStore``): the tests that check what a question computed or read use these instead of the
store's SQL layout."""
from __future__ import annotations

from embodied_tui.services.fit_store import FitStore
from embodied_tui.services.graph import fit_cache_path


def _open(db) -> FitStore | None:
    path = fit_cache_path(db)
    return FitStore(path) if path.exists() else None


def stored_targets(db) -> list[tuple[str, str, str, str]]:
    """(model key, device, mode, precision) of every row the store holds, sorted by device, version, key, target."""
    store = _open(db)
    if store is None:
        return []
    try:
        out = []
        for device, version in sorted(store.versions()):
            out += sorted((key, device, mode, precision) for key, mode, precision in store.done(device, version))
        return out
    finally:
        store.close()


def stored_models(db) -> int:
    """How many model keys the store holds rows of."""
    return len({key for key, *_ in stored_targets(db)})


def forget_rows(db) -> None:
    """Every fit row and mark gone (the registry's summary and layer columns kept)."""
    store = _open(db)
    if store is not None:
        store.prune({})
        store.close()


def set_latency(db, model: str, value: float) -> None:
    """Make the store say every predicted latency of ``model`` is ``value`` ms (a value only the store can hold: a
    question showing it read the store). The rows are put back under their own keys and versions."""
    store = _open(db)
    if store is None:
        return
    try:
        held = [(device, version, list(store.rows(device, version))) for device, version in store.versions()]
        store.prune({})
        for device, version, rows in held:
            store.put(device, version, [(key, row._replace(predicted_latency_ms=value) if row.model == model else row)
                                        for key, row in rows])
    finally:
        store.close()
