"""The cases of tests/test_fit_fork.py, run by it in a fresh pytest (a process with one thread: a test worker may hold
threads that earlier tests left, and ``services.fit_fork`` forks no process with another thread).

A cold question's fits computed in two processes (``services.fit_fork``) are the fits of one: a forked helper
computes and stores the later chunks while this process computes the first ones, every stored row is ``fit_record``'s
to the last bit, and each (model, target) is stored once; a helper that fails (before or after storing its rows) has
its chunks computed here; no fork where another thread runs or it is turned off; a helper stopped first is reaped.
Real registries, real SQLite stores, real forks."""
from __future__ import annotations

import os
import threading
import time

import pytest
from test_fit_batch import _exact, _plain, _varied

from embodied_tui.services import fit_fork, graph
from embodied_tui.services.fit_store import FitStore
from embodied_tui.services.graph import Registered, fit_cache_path

pytestmark = pytest.mark.skipif(threading.active_count() != 1, reason="run by tests/test_fit_fork.py alone")


def _small_chunks(monkeypatch) -> None:
    monkeypatch.setattr(graph, "FIT_CHUNK", 4)  # several chunks, taken by whichever process is free
    monkeypatch.setattr(graph, "FIT_BATCH", 3)
    monkeypatch.setattr(fit_fork, "FORK_MODELS", 1)


def _forks(monkeypatch, tmp_path, work=None) -> list:
    """Record each helper forked (and run ``work(store, the graph's work)`` there instead, where given), each
    helper's outcome (``Helper.wait``) in ``ended``, and in ``putters`` the processes that stored rows (each put is
    noted in a file; this process pauses after each of its puts, so the helper takes chunks too)."""
    made = []
    parent = os.getpid()
    log = tmp_path / "puts.log"
    real_put = FitStore.put_columns

    def put(store, *args, **kwargs):
        with open(log, "a") as out:
            out.write(f"{os.getpid()}\n")
        done = real_put(store, *args, **kwargs)
        if os.getpid() == parent:
            time.sleep(0.01)
        return done

    monkeypatch.setattr(FitStore, "put_columns", put)
    real = fit_fork.fork
    real_wait = fit_fork.Helper.wait

    def wait(helper):
        ok = real_wait(helper)
        helper.ended = ok
        helper.putters = set(log.read_text().split()) if log.exists() else set()
        return ok

    monkeypatch.setattr(fit_fork.Helper, "wait", wait)

    def spy(store, job):
        helper = real(store, job if work is None else (lambda own: work(own, job)))
        made.append(helper)
        return helper

    monkeypatch.setattr(fit_fork, "fork", spy)
    return made


def _stored(reg, records) -> dict[str, list]:
    """Every stored row of each record, read by a fresh process state (a new Registered, the store's marks)."""
    src = Registered.read(reg.path)
    by_model: dict[str, list] = {}
    for edge in src.fit_edges([r for r in src.records if r.macs is not None]):
        by_model.setdefault(edge.model, []).append(edge)
    return by_model


def _check_all(reg, records) -> None:
    by_model = _stored(reg, records)
    for record in records:
        assert _exact(by_model[record.name]) == _exact(_plain(reg.path, record)), record.name


def _each_once(reg) -> None:
    """Each (model key, mode, precision) of each device stored once (nothing put twice by the two processes)."""
    store = FitStore(fit_cache_path(reg))
    try:
        src = Registered.read(reg.path)
        versions = src.device_versions()
        keys = {graph._record_key(r): 0 for r in src.records}
        for device, version in versions.items():
            rows = [(key, row.power_mode, row.precision) for key, row in store.rows(device, version, keys)]
            assert rows and len(rows) == len(set(rows)) == len(store.done(device, version)), device
    finally:
        store.close()


def test_two_processes_store_the_fits_of_one(tmp_path, monkeypatch):
    reg = _varied(tmp_path)
    _small_chunks(monkeypatch)
    made = _forks(monkeypatch, tmp_path)
    src = Registered.read(reg.path)
    records = [r for r in src.records if r.macs is not None]
    assert len(records) > 3 * graph.FIT_CHUNK
    done = []
    edges = src.fit_edges(records, progress=lambda n, total: done.append((n, total)))
    assert len(made) == 1 and made[0] is not None, "the fits must have been shared with a forked helper"
    assert made[0].ended is True and made[0].putters == {str(os.getpid()), str(made[0].pid)}, \
        "both processes must have stored chunks"
    assert done[0] == (0, len(records)) and done[-1] == (len(records), len(records))
    by_model: dict[str, list] = {}
    for edge in edges:
        by_model.setdefault(edge.model, []).append(edge)
    for record in records:  # what the question read: the helper's rows among them
        assert _exact(by_model[record.name]) == _exact(_plain(reg.path, record)), record.name
    monkeypatch.setattr(graph, "FIT_CHUNK", 10_000)  # read back: nothing is computed again
    monkeypatch.setattr("embodied_tui.services.fit.fit_columns_many",
                        lambda *a, **k: pytest.fail("a stored row was computed again"))
    _check_all(reg, records)
    _each_once(reg)


@pytest.mark.parametrize("after_storing", [False, True])
def test_a_failed_helper_has_its_chunks_computed_here(tmp_path, monkeypatch, after_storing):
    reg = _varied(tmp_path)
    _small_chunks(monkeypatch)

    def fail(own, job):
        if after_storing:
            job(own)  # its rows stored, then a failure: they must not be put twice
        raise RuntimeError("the helper failed")

    made = _forks(monkeypatch, tmp_path, fail)
    src = Registered.read(reg.path)
    records = [r for r in src.records if r.macs is not None]
    src.fit_edges(records)
    assert len(made) == 1 and made[0] is not None and made[0].ended is False
    assert (str(made[0].pid) in made[0].putters) is after_storing
    monkeypatch.setattr("embodied_tui.services.fit.fit_columns_many",
                        lambda *a, **k: pytest.fail("a stored row was computed again"))
    _check_all(reg, records)
    _each_once(reg)


def test_no_fork_beside_another_thread_or_when_turned_off(tmp_path, monkeypatch):
    reg = _varied(tmp_path)
    store = FitStore(fit_cache_path(reg))
    try:
        assert fit_fork.may_fork(store)
        monkeypatch.setenv(fit_fork.ENV, "1")
        assert not fit_fork.may_fork(store)
        monkeypatch.delenv(fit_fork.ENV)
        release = threading.Event()
        other = threading.Thread(target=release.wait)  # the app's threads: Textual's and the ask worker
        other.start()
        try:
            assert not fit_fork.may_fork(store)
        finally:
            release.set()
            other.join()
        assert fit_fork.may_fork(store)
        assert not fit_fork.may_fork(FitStore(None)), "an in-memory store is this process's alone"
    finally:
        store.close()
    _small_chunks(monkeypatch)
    made = _forks(monkeypatch, tmp_path)
    monkeypatch.setenv(fit_fork.ENV, "1")
    src = Registered.read(reg.path)
    src.fit_edges([r for r in src.records if r.macs is not None])
    assert made == []


def test_a_helper_stopped_first_is_reaped(tmp_path):
    reg = _varied(tmp_path)
    store = FitStore(fit_cache_path(reg))
    try:
        helper = fit_fork.fork(store, lambda own: time.sleep(60))
        assert helper is not None
        assert store.db.execute("SELECT COUNT(*) FROM meta").fetchone()[0] >= 1  # the connection opened again
        started = time.monotonic()
        helper.stop()
        assert time.monotonic() - started < 30
        with pytest.raises(ChildProcessError):
            os.waitpid(helper.pid, os.WNOHANG)  # reaped: no such child any more
    finally:
        store.close()
