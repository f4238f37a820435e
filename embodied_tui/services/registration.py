"""What a user typed to register a model, read the same way by both faces, as the arguments of
``services.models.register``.

- ``default_name(path)``: the registry name when none is given (the CLI's ``--name`` default and the app's blank name
  field): a file's name up to its first dot (``resnet.traced.pt`` -> ``resnet``); a model folder's own name, dots kept
  (``Qwen2.5-0.5B``); for a Hugging Face ``config.json`` or shard index, its folder's name.
- ``tag_words(text)``: one line of tags as the shell would split it (``robot site=lab note="two words"``), for
  ``services.models.parse_tags`` (the parser of the CLI's ``--tag`` values).
- ``read_form(...)``: the register dialog's fields -> a checked ``RegisterRequest``. Names, tags and descriptions are
  checked by ``data.names`` (the one rule); only the hint at the end of a refused name differs per face (no CLI flags
  in the app).
- ``tags_text(tags)`` / ``read_edit(...)``: the app's edit dialog: a record's tags as one editable line (the inverse
  of ``tag_words`` + ``parse_tags``) and what was typed as the arguments of ``services.models.update`` (the CLI's
  ``model update``), or None when nothing changed.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from embodied_tui.data.names import check_description, check_name
from embodied_tui.errors import UserError
from embodied_tui.services.models import parse_input_shapes, parse_tags

APP_NAME_HINT = "type another name, e.g. yolo-v8n"


def default_name(path: Path) -> str:
    """The registry name when none is given (see the module doc)."""
    path = Path(path).expanduser()
    if path.is_dir():
        return path.resolve().name
    if path.name == "config.json" or path.name.endswith(".index.json"):
        return path.resolve().parent.name
    return path.name.split(".")[0]


def tag_words(text: str) -> list[str]:
    """``robot site=lab note="two words"`` -> ``["robot", "site=lab", "note=two words"]`` (shell quoting)."""
    try:
        return shlex.split(text)
    except ValueError as exc:  # an unclosed quote
        raise UserError(f"tags {text!r}: {exc}; close the quote (note=\"two words\")") from None


@dataclass(frozen=True)
class RegisterRequest:
    """The arguments of ``services.models.register`` (less the registry and progress)."""

    path: str
    name: str
    input_shape: list[list[int]] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    trust_code: bool = False

    def kwargs(self) -> dict:
        return {"name": self.name, "input_shape": self.input_shape, "tags": self.tags,
                "description": self.description, "trust_code": self.trust_code}


def check_source(path: Path) -> None:
    """The quick checks the analysis starts with (the path exists and is a readable model file, or a folder holding a
    Hugging Face model), made before a process is started for it: the same one-line errors, at once."""
    from embodied_tui.analysis.hf.folder import find  # headers and JSON only; no torch
    from embodied_tui.analysis.loaders import check_path

    if find(path) is None:
        check_path(path)


def read_form(path: str, *, name: str = "", shape: str = "", tags: str = "", description: str = "",
              trust_code: bool = False, name_hint: str = APP_NAME_HINT) -> RegisterRequest:
    """The register dialog's fields as a checked request (UserError with one line on the first bad field, in the
    order they are shown). A blank name is ``default_name(path)``; a blank description is none."""
    raw = path.strip()
    if not raw:
        raise UserError("type the path of a model file")
    source = Path(raw).expanduser()
    check_source(source)
    shapes = parse_input_shapes([shape], "shape") if shape.strip() else None
    final_name = check_name(name.strip() or default_name(source), hint=name_hint)
    return RegisterRequest(path=str(source.resolve()), name=final_name, input_shape=shapes,
                           tags=parse_tags(tag_words(tags)), description=check_description(description.strip() or None),
                           trust_code=trust_code)


def tags_text(tags: dict[str, str]) -> str:
    """``{"robot": "", "note": "two words"}`` -> ``note="two words" robot`` (sorted; quoted where the shell would need
    it), which ``tag_words`` + ``parse_tags`` read back to the same dict."""
    return " ".join(key if not value else f"{key}={shlex.quote(value)}" for key, value in sorted(tags.items()))


def one_line(text: str | None) -> str:
    """A description as the edit dialog's one-line field shows it (line breaks as spaces)."""
    return (text or "").replace("\n", " ")


@dataclass(frozen=True)
class EditRequest:
    """The arguments of ``services.models.update``: tags to add or change, keys to remove, the new description
    (None: unchanged)."""

    tags: dict[str, str]
    untag: list[str]
    description: str | None

    def kwargs(self) -> dict:
        return {"tags": self.tags, "untag": self.untag, "description": self.description}


def read_edit(old_tags: dict[str, str], old_description: str | None, tags: str, description: str
              ) -> EditRequest | None:
    """What the edit dialog's fields change, against the record's tags and description; None when nothing does. A
    description left as shown (``one_line``) is unchanged, so line breaks in a stored one survive an edit of the
    tags; a cleared field clears it."""
    new_tags = parse_tags(tag_words(tags))
    changed = {k: v for k, v in new_tags.items() if old_tags.get(k) != v}
    removed = sorted(k for k in old_tags if k not in new_tags)
    text = description.strip()
    new_description = None if text == one_line(old_description).strip() else check_description(text)
    if not changed and not removed and new_description is None:
        return None
    return EditRequest(changed, removed, new_description)
