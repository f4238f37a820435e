"""Errors a user can act on. Each carries one line: what was wrong, which file, what to do.

What to do can depend on the face: the CLI says "pass another --db", the app has no flags. A ``UserError`` may carry
that part apart, as ``hint`` (written after the message with ``hint_sep``): ``str(error)``, what the CLI prints, is
the whole line, message and hint; ``app_message(error)``, what the app shows, is the message with the ``app_hint``
instead (or alone), so no message inside the app points at a CLI flag or command line.
"""
from __future__ import annotations


def _rebuild(cls: type, args: tuple, hint: str | None, app_hint: str | None, hint_sep: str) -> "UserError":
    error = cls(*args)
    error.hint, error.app_hint, error.hint_sep = hint, app_hint, hint_sep
    return error


class UserError(Exception):
    """A problem with the user's input or environment; the CLI prints ``error: <message>`` and exits 2.

    ``hint``: the CLI's advice (flags, command lines), printed after the message; ``app_hint``: the app's advice, shown
    instead of it (none: the message alone)."""

    exit_code = 2

    def __init__(self, *args: object, hint: str | None = None, app_hint: str | None = None,
                 hint_sep: str = "; ") -> None:
        super().__init__(*args)
        self.hint = hint
        self.app_hint = app_hint
        self.hint_sep = hint_sep

    @property
    def message(self) -> str:
        """The message without any hint."""
        return super().__str__()

    def __str__(self) -> str:
        hint = getattr(self, "hint", None)
        return f"{self.message}{self.hint_sep}{hint}" if hint else self.message

    def __reduce__(self):  # the hints survive a pickle (an error raised in a worker process)
        return _rebuild, (type(self), self.args, self.hint, self.app_hint, self.hint_sep)


def app_message(error: BaseException) -> str:
    """What the app shows of ``error``: a ``UserError``'s message with its ``app_hint`` (never its CLI ``hint``), or
    ``str(error)`` of any other exception."""
    if not isinstance(error, UserError):
        return str(error)
    app_hint = getattr(error, "app_hint", None)
    return f"{error.message}{error.hint_sep}{app_hint}" if app_hint else error.message


class AnalysisError(UserError):
    """The model file could not be analysed (unreadable, unsafe, not a model, forward failed)."""


class NotFound(UserError):
    """No such model, version, device or power mode."""


class RegistryError(UserError):
    """The registry file is unreadable, corrupt, from a newer schema, or cannot be written."""
