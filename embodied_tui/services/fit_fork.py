"""A second process for the fits of a cold question, where that is safe: a forked copy of this process computes and
stores chunks of the missing fits while this one computes the others (``services.graph``: a first question at
10,000 models spends most of its time computing 470,000 fits, and these machines have two cores).

**When.** Only in a process with one thread (``may_fork``): the CLI, a script, a test worker. The app runs its
questions in a worker thread, beside Textual's own: a fork there could copy a lock another thread holds, so the app
computes every fit itself. Only for a local SQLite edge store (a PostgreSQL registry's rows go through a server
connection, which a child must not share), with at least two usable CPUs, and not when
``EMBODIED_AI_FIT_PROCESSES=1``.

**How.** The chunks of models go into a ``ChunkQueue``; both processes take the next one until none is left. No
SQLite connection crosses the fork (SQLite: "do not open a database connection, then fork"): the store's
connection is closed before it, the child opens its own and writes its rows itself (SQLite serialises the two
writers: each put is one short transaction; readers never block them in WAL mode), and this process opens its
connection again. The child leaves with ``os._exit``: no atexit handler, no flushed buffer of this process, no
finaliser runs there twice. Its exit status says whether every row it computed was stored; on anything else (an
error, a signal, a store that refused rows) this process computes every chunk it did not do itself (rows stored
already are skipped by the store). If this process stops first (an error, ctrl+c), the child is stopped and reaped.

The child's rows are the same numbers: the same code on the same records (a copy of this process's memory).
"""
from __future__ import annotations

import os
import signal
import struct
import threading
from typing import Callable, Iterator

FORK_MODELS = 2048  # models missing fits from which the second process pays (a fork and a connection: ~20 ms)
ENV = "EMBODIED_AI_FIT_PROCESSES"  # "1": never fork


def may_fork(store) -> bool:
    """Whether a second process may compute fits for ``store`` (see the module docstring)."""
    if os.environ.get(ENV, "").strip() == "1" or not hasattr(os, "fork"):
        return False
    if threading.active_count() != 1:
        return False
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return cpus >= 2 and getattr(store, "on_disk", False)


class ChunkQueue:
    """The chunks of a computation, shared by this process and its helper: each taken by whichever asks first, so
    neither waits while the other still has chunks to do (the helper starts later and pays for its copy of this
    process's memory as it touches it). The chunks' starts are written, 8 bytes each, into a pipe whose write end
    is closed before the fork; each process reads 8 bytes at a time (the kernel serialises reads of one pipe: no two
    get the same chunk) until it is empty."""

    MOST = 4096  # chunks a pipe holds (32 KB: written whole before anyone reads, under the kernel's 64 KB buffer)

    def __init__(self, starts: list[int]) -> None:
        if len(starts) > self.MOST:
            raise ValueError(f"at most {self.MOST} chunks")
        self.fd, write = os.pipe()
        try:
            data = memoryview(b"".join(struct.pack("<q", start) for start in starts))
            while data:
                data = data[os.write(write, data):]
        finally:
            os.close(write)

    def __iter__(self) -> Iterator[int]:
        while True:
            got = os.read(self.fd, 8)
            if len(got) < 8:
                return
            yield struct.unpack("<q", got)[0]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Helper:
    """The forked child computing chunks beside this process."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def wait(self) -> bool:
        """Wait for it; whether it stored every row it computed (exit status 0)."""
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status) == 0

    def stop(self) -> None:
        """Stop it and reap it (this process is stopping first)."""
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except OSError:
            pass


def fork(store, work: Callable[[object], None]) -> Helper | None:
    """Run ``work(its own store)`` in a forked child (``store``'s connection closed across the fork and opened again
    here); None where the fork failed (then nothing runs there, and this process does the work)."""
    from embodied_tui.services.fit_store import FitStore

    store.close()
    try:
        pid = os.fork()
    except OSError:
        store.reopen()
        return None
    if pid == 0:  # the child: its own connection, its own exit
        code = 1
        try:
            own = FitStore(store.path)
            try:
                work(own)
            finally:
                own.close()
            code = 0
        except BaseException:  # noqa: BLE001 - any failure (code 1): the parent computes its chunks itself
            pass
        finally:
            os._exit(code)
    store.reopen()
    return Helper(pid)
