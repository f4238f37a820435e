"""Run one heavy call (an analysis) in a separate, spawned process that can be stopped at once.

The TUI must never import torch, so analysis runs in a child process started with the "spawn" context. The parent
blocks in ``ProcessJob.run`` (called from a thread worker), forwards progress reports to a callback and returns the
child's result. ``cancel()`` terminates the child from any thread; ``run`` then raises ``Cancelled``.

The target is named as ``"package.module:function"`` so the parent never imports it. The child writes nothing to the
terminal (its stdout and stderr go to /dev/null) so it cannot scribble over a full-screen app.
"""
from __future__ import annotations

import importlib
import multiprocessing
import os
import queue as queue_mod
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from embodied_tui import errors

POLL_SECONDS = 0.05
EXIT_GRACE_SECONDS = 5.0


class Cancelled(Exception):
    """The job was cancelled and its process terminated."""


def _safe(value: Any) -> Any:
    """Progress arguments as plain data the queue can always pickle."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _safe(v) for k, v in value.items()}
    return repr(value)


@contextmanager
def _stderr_with_fd() -> Iterator[None]:
    """Spawning starts multiprocessing's resource tracker, which hands ``sys.stderr.fileno()`` to its process. A
    full-screen app replaces sys.stderr with a capture whose fileno() is -1 ("bad value(s) in fds_to_keep"): lend it
    /dev/null for the start so nothing is written over the screen either."""
    try:
        usable = sys.stderr is not None and sys.stderr.fileno() >= 0
    except (AttributeError, OSError, ValueError):
        usable = False
    if usable:
        yield
        return
    saved = sys.stderr
    with open(os.devnull, "w") as devnull:
        sys.stderr = devnull
        try:
            yield
        finally:
            sys.stderr = saved


def _child_main(out: Any, target: str, args: tuple, kwargs: dict, progress_kw: str | None) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        module_name, func_name = target.split(":")
        func = getattr(importlib.import_module(module_name), func_name)
        if progress_kw:
            kwargs = {**kwargs, progress_kw: lambda *a, **k: out.put(("progress", _safe(a), _safe(k)))}
        result = func(*args, **kwargs)
    except errors.UserError as exc:
        out.put(("user_error", type(exc).__name__, str(exc)))
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent as one line
        out.put(("error", type(exc).__name__, str(exc)))
    else:
        try:
            out.put(("ok", result))
        except Exception as exc:  # noqa: BLE001 - an unpicklable result
            out.put(("error", type(exc).__name__, f"result could not be sent back: {exc}"))


def _rebuild_error(kind: str, type_name: str, message: str) -> Exception:
    if kind == "user_error":
        cls = getattr(errors, type_name, None)
        if isinstance(cls, type) and issubclass(cls, errors.UserError):
            return cls(message)
        return errors.AnalysisError(message)
    return errors.AnalysisError(f"{type_name}: {message}" if message else type_name)


class ProcessJob:
    """One call of ``target(*args, **kwargs)`` in a spawned child process.

    ``progress_kw`` names the keyword through which the target reports progress; each report reaches the
    ``on_progress`` callback of ``run`` as ``(args, kwargs)`` in the parent.
    """

    def __init__(self, target: str, args: tuple = (), kwargs: dict | None = None, *,
                 progress_kw: str | None = "progress") -> None:
        self.target = target
        self.args = args
        self.kwargs = kwargs or {}
        self.progress_kw = progress_kw
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._cancelled = False
        self.started = threading.Event()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def exitcode(self) -> int | None:
        return None if self._process is None else self._process.exitcode

    def is_alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        """Terminate the child (if running). Safe from any thread, any number of times."""
        with self._lock:
            self._cancelled = True
            process = self._process
        if process is not None and process.is_alive():
            process.terminate()
            process.join(2)
            if process.is_alive():
                process.kill()
                process.join(2)

    def run(self, on_progress: Callable[[tuple, dict], None] | None = None) -> Any:
        """Start the child, wait for its result and return it; raise its error, or ``Cancelled``."""
        ctx = multiprocessing.get_context("spawn")
        with _stderr_with_fd():
            out = ctx.Queue()
            process = ctx.Process(target=_child_main, daemon=True, name="embodied-ai-job",
                                  args=(out, self.target, self.args, self.kwargs, self.progress_kw))
            with self._lock:
                if self._cancelled:
                    raise Cancelled()
                self._process = process
                process.start()
        self.started.set()
        try:
            result = self._wait(process, out, on_progress)
            process.join(EXIT_GRACE_SECONDS)  # let it exit by itself once it has answered
            return result
        finally:
            if process.is_alive():
                process.terminate()
            process.join(2)
            out.close()
            out.join_thread()

    def _wait(self, process, out, on_progress) -> Any:
        while True:
            if self._cancelled:
                raise Cancelled()
            try:
                message = out.get(timeout=POLL_SECONDS)
            except queue_mod.Empty:
                if not process.is_alive():
                    # the child may have put its last message just before exiting
                    try:
                        message = out.get(timeout=POLL_SECONDS)
                    except queue_mod.Empty:
                        if self._cancelled:
                            raise Cancelled() from None
                        raise errors.AnalysisError(
                            f"the analysis process stopped unexpectedly (exit code {process.exitcode}); "
                            "the file may need more memory than is free") from None
                else:
                    continue
            kind = message[0]
            if kind == "progress":
                if on_progress is not None:
                    on_progress(message[1], message[2])
            elif kind == "ok":
                return message[1]
            else:
                raise _rebuild_error(*message)
