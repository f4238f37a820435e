"""Thread workers that never hold up quitting.

Textual runs a thread worker through the event loop's default executor, a ThreadPoolExecutor: when the app exits,
``asyncio.run`` waits for that executor to finish (``shutdown_default_executor``) and the interpreter joins its threads
again at exit, so quitting while a fit or a card is being computed waited for it (3 s for a 3 s worker). Here each
task gets its own daemon thread instead: ``shutdown`` returns at once and the interpreter does not wait for daemon
threads, so ctrl+q exits at once. A worker stopped that way loses only what it was computing: the registry is written
by atomic replacement (data/store.py), so a write cut short leaves the old file whole.

A daemon thread still inside a C extension while the interpreter shuts down can abort the process (numpy's C++ code
did: "terminate called without an active exception", exit status 134), so ``run_app`` ends the process at once
(``os._exit``) when ``busy()`` says a worker is still running after the app has quit.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor


class DaemonExecutor(ThreadPoolExecutor):
    """One daemon thread per submitted call; ``shutdown`` never waits. A ThreadPoolExecutor only in name (asyncio
    accepts nothing else as a loop's default executor): its pool is never used."""

    def __init__(self, name: str = "embodied-ai-worker") -> None:
        super().__init__(max_workers=1, thread_name_prefix=name)  # no thread is started by this
        self._name = name
        self._count = 0
        self._lock = threading.Lock()
        self._closed = False
        self._running: set[threading.Thread] = set()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown")
            self._count += 1
            name = f"{self._name}-{self._count}"

        def run() -> None:
            try:
                if not future.set_running_or_notify_cancel():
                    return
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # noqa: BLE001 - handed to whoever awaits the future
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            finally:
                with self._lock:
                    self._running.discard(thread)

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._lock:
            self._running.add(thread)
        thread.start()
        return future

    def busy(self) -> bool:
        """Whether a submitted call is still running."""
        with self._lock:
            return any(thread.is_alive() for thread in self._running)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new work; never wait for the running threads (they are daemons)."""
        with self._lock:
            self._closed = True
