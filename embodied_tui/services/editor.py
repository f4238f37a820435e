"""Editing a text in the user's own editor, as git does: ``$VISUAL``, else ``$EDITOR``, else ``vi`` when it is on the
PATH. The text goes to a temporary file (removed afterwards), the editor runs on it with the terminal to itself (the
caller hands the terminal over: the app suspends), and the file's text comes back."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from embodied_tui.errors import UserError


def editor_command() -> list[str]:
    """The editor's command line (``$VISUAL``/``$EDITOR`` may hold arguments: ``code --wait``)."""
    for var in ("VISUAL", "EDITOR"):
        value = os.environ.get(var, "").strip()
        if value:
            try:
                words = shlex.split(value)
            except ValueError as exc:
                raise UserError(f"${var} ({value!r}) cannot be read as a command: {exc}") from None
            if words:
                return words
    if shutil.which("vi"):
        return ["vi"]
    raise UserError("no editor: set $EDITOR (or $VISUAL) to your editor's command, e.g. EDITOR=nano")


def edit_text(text: str, suffix: str = ".txt") -> tuple[str, str]:
    """Run the editor on ``text``; return (the edited text, the editor's name). UserError when the editor cannot be
    started or exits with an error (the text is then not taken)."""
    command = editor_command()
    fd, name = tempfile.mkstemp(prefix="embodied-ai-", suffix=suffix)
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        try:
            done = subprocess.run([*command, str(path)], check=False)
        except OSError as exc:
            raise UserError(f"cannot start the editor {command[0]!r}: {exc.strerror or exc}; check $EDITOR") from None
        if done.returncode != 0:
            raise UserError(f"the editor {command[0]!r} exited with status {done.returncode}; the text was not "
                            f"changed")
        return path.read_text(encoding="utf-8", errors="replace"), Path(command[0]).name
    finally:
        path.unlink(missing_ok=True)
