"""A time and memory budget for work whose cost the input decides (parsing and running a Cypher query).

grand-cypher's cost is not bounded by the size of a query: its Earley parser is about cubic in a chain of AND/OR
conditions (150 of them: 5 s and 250 MB, 300: 45 s and 1.5 GB), a pattern of unconnected parts materialises the
product of their matches (two ``MATCH (a)-->(b)`` clauses on a 1,000-edge graph: a million rows), and every
variable-length edge multiplies the patterns it tries. Static limits (``ask.graph.check_query``) refuse the shapes
we know with a precise message; ``run_within_budget`` bounds the rest.

``run_within_budget(fn, *args)`` runs ``fn(*args)`` in a **forked** child process (Linux, macOS): the child sees the
parent's objects (the graph) copy-on-write, so nothing is pickled on the way in; only the result comes back, pickled
through a pipe. In the child, before ``fn`` runs:

- ``RLIMIT_AS`` is set to the address space it inherited plus the memory budget, so an allocation past the budget
  raises MemoryError there (a one-line error here), never in the parent;
- ``RLIMIT_CPU`` is set a little past the time budget, and on Linux the child asks to be killed when the thread that
  forked it goes away (``PR_SET_PDEATHSIG``): a child outlives neither its budget nor its parent;
- the collector leaves the inherited objects alone (``gc.freeze``), so it does not copy the parent's pages.

The parent waits on the pipe until the deadline, then kills the child (SIGKILL) and raises ``BudgetExceeded``: one
line, "query stopped after 10 s; narrow it ...". ``cancel_all()`` kills every child running now, from any thread
(the app calls it when a new question replaces a running one); their callers raise ``Cancelled``.

Budgets: ``QUERY_SECONDS`` (``$EMBODIED_AI_QUERY_SECONDS``) and ``QUERY_MEMORY_MB`` (``$EMBODIED_AI_QUERY_MEMORY_MB``).
Without ``os.fork`` (Windows) the work runs in this process, without a budget, behind the static limits only.
Overhead (a fork, the copy-on-write faults on the pages the query touches, the exit; ``query`` forks twice: parse,
then run): measured per call in a fresh process, about +15-20 ms at 10 models (of 150-200 ms) and +20-110 ms at
10,000 (of 0.6-1.8 s; noise beside 13 s calls). A join over every fit row at 10,000 models ran faster in the child
than inline, where the collector kept walking the graph (``gc.freeze`` in the child).
"""
from __future__ import annotations

import gc
import math
import os
import pickle
import selectors
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from embodied_tui.errors import UserError

QUERY_SECONDS = 10.0
QUERY_MEMORY_MB = 1024
SECONDS_ENV = "EMBODIED_AI_QUERY_SECONDS"
MEMORY_ENV = "EMBODIED_AI_QUERY_MEMORY_MB"
_POLL_S = 0.1  # how often a waiting parent looks at cancel_all's flag
_CHUNK = 1 << 20


class BudgetExceeded(UserError):
    """The work ran past its time or memory budget and was stopped."""


class Cancelled(UserError):
    """The work was cancelled (``cancel_all``) and its process killed."""


def env_number(name: str, default: float, what: str = "number") -> float:
    """A positive finite number from ``$name`` (``default`` when unset); one line naming the variable otherwise."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UserError(f"${name} must be a positive {what}, got {raw!r}")
    return value


def budget() -> tuple[float, float]:
    """(seconds, megabytes) a query may use: the module constants, or the environment's."""
    return env_number(SECONDS_ENV, QUERY_SECONDS), env_number(MEMORY_ENV, QUERY_MEMORY_MB)


_ADVICE = "narrow it (name a model, a device or a precision, add conditions or a LIMIT)"


def _too_slow(what: str, seconds: float) -> BudgetExceeded:
    return BudgetExceeded(f"{what} stopped after {seconds:g} s; {_ADVICE}, or raise ${SECONDS_ENV}")


def _too_big(what: str, megabytes: float) -> BudgetExceeded:
    return BudgetExceeded(f"{what} stopped: it needed more than {megabytes:g} MB of memory; {_ADVICE}, "
                          f"or raise ${MEMORY_ENV}")


# ------------------------------------------------------------------------------------------------ running children

class _Child:
    def __init__(self, pid: int):
        self.pid = pid
        self.cancelled = False


_running: dict[int, _Child] = {}
_lock = threading.Lock()
_fork_lock = threading.Lock()


def cancel_all() -> int:
    """Kill every budgeted child running now (any thread); their callers raise ``Cancelled``. Returns how many."""
    with _lock:  # killed under the lock: a child in _running is not reaped yet, so its pid is still its own
        children = list(_running.values())
        for child in children:
            child.cancelled = True
            _kill(child.pid)
    return len(children)


def running() -> int:
    """How many budgeted children are running now."""
    with _lock:
        return len(_running)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


_prctl = None


def _prepare_parent() -> None:
    """What the child must not pay for (or cannot do) after the fork: import resource, look up prctl, once; and reap
    the children that answered earlier (``_reap_later``)."""
    global _prctl
    import resource  # noqa: F401 (imported here, once, not in every child)

    _reap_answered()
    if _prctl is None:
        try:
            import ctypes

            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            _prctl = False


def _address_space() -> int:
    """This process's mapped address space, bytes (0 when unknown)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # an underestimate off Linux
    except (ImportError, OSError):
        return 0


def _limit_child(seconds: float, megabytes: float, parent: int) -> None:
    import resource

    if _prctl:
        _prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the thread that forked us
    if os.getppid() != parent:
        os._exit(1)
    gc.freeze()  # the inherited objects stay out of every collection: their pages are not copied
    for kind, value in ((resource.RLIMIT_AS, _address_space() + int(megabytes * 2 ** 20)),
                        (resource.RLIMIT_CPU, int(math.ceil(seconds)) + 2)):
        try:
            _, hard = resource.getrlimit(kind)
            resource.setrlimit(kind, (value if hard == resource.RLIM_INFINITY else min(value, hard), hard))
        except (ValueError, OSError):
            pass


def _child_main(write_fd: int, fn: Callable, args: tuple, seconds: float, megabytes: float, parent: int) -> None:
    """In the child: limits, the call, its result (or its error) pickled to the pipe. Never returns."""
    code = 0
    try:
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it kills us
        except ValueError:
            pass
        devnull = os.open(os.devnull, os.O_WRONLY)  # nothing of the child's reaches the terminal (or the app)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)
        _limit_child(seconds, megabytes, parent)
        try:
            message = ("ok", fn(*args))
        except MemoryError:
            message = ("memory", None)
        except UserError as exc:
            message = ("user", exc) if _round_trips(exc) else ("user_text", str(exc))
        except RecursionError:
            message = ("error", "RecursionError: nested too deeply")
        except BaseException as exc:  # noqa: BLE001 (every failure goes back as one line)
            detail = str(exc).splitlines()[0] if str(exc).strip() else ""
            message = ("error", f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__)
        try:
            data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            data = pickle.dumps(("memory", None))
        except BaseException:  # noqa: BLE001 (an unpicklable result or error)
            if message[0] == "user":
                data = pickle.dumps(("user_text", str(message[1])))
            else:
                data = pickle.dumps(("unsendable", None))
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view[:_CHUNK]):]
        os.close(write_fd)  # the parent reads the end now, not after this process's memory is torn down
    except BaseException:  # noqa: BLE001 (the parent reports a child that ends without an answer)
        code = 1
    finally:
        os._exit(code)


def _round_trips(exc: BaseException) -> bool:
    """Whether the exception comes back from pickle as itself (one whose __init__ takes other arguments does not)."""
    try:
        back = pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001
        return False
    return type(back) is type(exc) and str(back) == str(exc)


class Unsendable(UserError):
    """The child's result could not be pickled back (a caller may then do without it)."""


def run_within_budget(fn: Callable[..., Any], *args: Any, what: str = "query", error: type[UserError] = UserError,
                      seconds: float | None = None, megabytes: float | None = None) -> Any:
    """``fn(*args)`` in a forked child within the time and memory budget (``budget()`` unless given); its result,
    or its UserError raised here. ``BudgetExceeded`` past the budget, ``Cancelled`` after ``cancel_all``, ``error``
    (one line naming the exception) for any other failure in ``fn`` or of the child. ``what`` names the work."""
    default_s, default_mb = budget()
    seconds = default_s if seconds is None else seconds
    megabytes = default_mb if megabytes is None else megabytes
    if not hasattr(os, "fork"):  # no budget here: the static limits alone, and the same one-line errors
        try:
            return fn(*args)
        except MemoryError:
            raise _too_big(what, megabytes) from None
        except RecursionError:
            raise error(f"{what} failed: nested too deeply") from None
    _prepare_parent()
    parent = os.getpid()
    with _fork_lock:  # no other budgeted child may inherit this pipe's write end (its EOF would wait for that one)
        read_fd, write_fd = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(read_fd)
            os.close(write_fd)
            raise UserError(f"cannot start a process for the {what}: {exc.strerror or exc}") from None
        if pid == 0:  # the child
            os.close(read_fd)
            _child_main(write_fd, fn, args, seconds, megabytes, parent)
        os.close(write_fd)
        child = _Child(pid)
        with _lock:
            _running[pid] = child
    message, status, timed_out = None, 0, False
    try:
        data, timed_out = _read_until(read_fd, time.monotonic() + seconds, child)
        message = None if timed_out or child.cancelled else _load(data)
    finally:
        os.close(read_fd)
        with _lock:
            _running.pop(pid, None)
        if message is None:  # no answer: stop it, and read how it ended
            _kill(pid)
            status = _reap(pid)
        else:  # it answered and is exiting: collect it later instead of waiting for its memory to be freed
            _reap_later(pid)
    if child.cancelled:
        raise Cancelled(f"{what} cancelled")
    if timed_out:
        raise _too_slow(what, seconds)
    return _answer(message, status, what, megabytes, error)


def _read_until(fd: int, deadline: float, child: _Child) -> tuple[bytes, bool]:
    """Everything the child writes until it closes the pipe; (bytes, True) at the deadline or on cancel."""
    chunks: list[bytes] = []
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or child.cancelled:
                return b"".join(chunks), not child.cancelled
            if not sel.select(min(left, _POLL_S)):
                continue
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)


def _reap(pid: int) -> int:
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return 0


_answered: list[int] = []  # children that answered and were not collected yet


def _reap_later(pid: int) -> None:
    with _lock:
        _answered.append(pid)
    _reap_answered()


def _reap_answered() -> None:
    """Collect the children that answered and have exited since (never blocks)."""
    with _lock:
        pending = list(_answered)
    done = []
    for pid in pending:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                continue
        except ChildProcessError:
            pass
        done.append(pid)
    if done:
        with _lock:
            _answered[:] = [p for p in _answered if p not in done]


def _load(data: bytes) -> tuple | None:
    """The child's message, or None when it is missing or cut short (the child died while writing)."""
    if not data:
        return None
    try:
        message = pickle.loads(data)
    except Exception:  # noqa: BLE001
        return None
    return message if isinstance(message, tuple) and len(message) == 2 else None


def _answer(message: tuple | None, status: int, what: str, megabytes: float, error: type[UserError]) -> Any:
    kind, value = message if message is not None else (None, None)
    if kind == "ok":
        return value
    if kind == "user":
        raise value
    if kind == "user_text":
        raise error(value)
    if kind == "memory":
        raise _too_big(what, megabytes)
    if kind == "error":
        raise error(f"{what} failed: {value}")
    if kind == "unsendable":
        raise Unsendable(f"the {what}'s result could not be sent back")
    how = (f"signal {signal.Signals(os.WTERMSIG(status)).name}" if os.WIFSIGNALED(status)
           else f"exit code {os.WEXITSTATUS(status)}")
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXCPU:
        raise BudgetExceeded(f"{what} stopped: it used its CPU time budget; {_ADVICE}, or raise ${SECONDS_ENV}")
    raise error(f"{what} stopped unexpectedly ({how}), perhaps out of memory (budget {megabytes:g} MB); "
                f"{_ADVICE}, or raise ${MEMORY_ENV}")
