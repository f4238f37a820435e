"""Errors a user can act on. Each carries one line: what was wrong, which file, what to do."""


class UserError(Exception):
    """A problem with the user's input or environment; the CLI prints ``error: <message>`` and exits 2."""

    exit_code = 2


class AnalysisError(UserError):
    """The model file could not be analysed (unreadable, unsafe, not a model, forward failed)."""


class NotFound(UserError):
    """No such model, version, device or power mode."""


class RegistryError(UserError):
    """The registry file is unreadable, corrupt, from a newer schema, or cannot be written."""
