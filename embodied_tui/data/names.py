"""What a name, a tag or a description may hold: one rule, checked wherever something new enters the registry.

- **Names** (model names; the ids of devices added with `hw add`): 1 to 64 characters of ASCII letters, digits and
  ``.`` ``_`` ``-`` ``+``, not starting with ``-`` (it would read as an option) or ``.`` (a hidden file name). No
  spaces, no ``=`` (tags use it), no ``@`` (reserved for ``NAME@version`` and aliases), no ``/`` and no control
  characters: a name is typed in shells, used in filters and Cypher, and printed in tables.
- **Tags**: a key is 1 to 64 printable characters without spaces, ``=`` or ``,``; a value is up to 256 printable
  characters (spaces allowed).
- **Descriptions**: up to 4,096 characters; line breaks (``\\n``) are allowed, no other control character is.
- **Text shown in tables** (a device's name and aliases): no control characters.

"Control character" means Unicode category Cc (C0, DEL, C1) plus the bidirectional overrides and isolates
(U+202A-U+202E, U+2066-U+2069), which reorder what a terminal shows.

- **References** (what a command takes where it takes a model): ``NAME``, ``NAME@3`` or ``NAME@v3`` (version 3),
  ``NAME@latest`` or ``NAME@ALIAS`` (``split_ref``, ``parse_selector``).
- **Aliases** (``model alias set NAME@3 production``): the name rule, and not all digits (``NAME@3`` is a version),
  not ``v`` + digits and not ``latest`` (both read as versions too), checked by ``check_alias``.

The rule is checked when a name is created (register, the app's register dialog, `model import`, `hw add`) and never
when reading: records stored earlier under names it now refuses still load, print and can be removed.
"""
from __future__ import annotations

import re
import unicodedata

from embodied_tui.errors import UserError

NAME_MAX = 64
TAG_KEY_MAX = 64
TAG_VALUE_MAX = 256
DESCRIPTION_MAX = 4096
NAME_RULE = ("1-64 characters of ASCII letters, digits, '.', '_', '-' and '+', not starting with '-' or '.' "
             "(no spaces, '=', '@' or '/')")
_NAME_RE = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9._+-]{0,63}")
_VERSION_RE = re.compile(r"[vV]?[0-9]+")
LATEST = "latest"
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def shown(text: str, limit: int = 80) -> str:
    """``text`` quoted for an error line: control characters escaped (``repr``), long text cut."""
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def control_char(text: str, allow: str = "") -> str | None:
    """The first control character of ``text`` (see the module doc) not in ``allow``, or None."""
    for ch in text:
        if ch in allow:
            continue
        if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs"):
            return ch
    return None


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a valid name (None when it is)."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    if len(name) > NAME_MAX:
        return f"it is {len(name)} characters long"
    if _NAME_RE.fullmatch(name):
        return None
    if name[0] in "-.":
        return f"it starts with {name[0]!r}"
    bad = control_char(name)
    if bad is not None:
        return f"it holds the control character {bad!r}"
    bad = next(ch for ch in name if not re.fullmatch(r"[A-Za-z0-9._+-]", ch))
    return "it holds a space" if bad == " " else f"it holds {bad!r}"


def check_name(name: object, what: str = "model name", hint: str = "choose another name, e.g. yolo-v8n") -> str:
    """``name`` when it follows the rule; else UserError: what is wrong, the rule, and ``hint``."""
    problem = name_problem(name)
    if problem:
        raise UserError(f"{what} {shown(name)} is not allowed ({problem}): use {NAME_RULE}; {hint}")
    return name  # type: ignore[return-value]


def check_text(text: object, what: str, *, limit: int, allow: str = "") -> str:
    """``text`` when it is a string of at most ``limit`` characters without control characters (but those in
    ``allow``); else UserError naming ``what``."""
    if not isinstance(text, str):
        raise UserError(f"{what} must be text, not {type(text).__name__}")
    if len(text) > limit:
        raise UserError(f"{what} {shown(text, 40)} is {len(text)} characters long; at most {limit} are allowed")
    bad = control_char(text, allow)
    if bad is not None:
        extra = " (line breaks are)" if "\n" in allow else ""
        raise UserError(f"{what} {shown(text)} holds the control character {bad!r}, which is not allowed{extra}; "
                        f"remove it")
    return text


def check_tags(tags: dict[str, str] | None) -> dict[str, str]:
    """Tags as ``{key: value}`` checked against the rule in the module doc (UserError naming the first bad one)."""
    for key, value in (tags or {}).items():
        if not isinstance(key, str) or not key.strip():
            raise UserError("a tag key is empty: use a word (robot) or key=value (site=lab)")
        check_text(key, "tag key", limit=TAG_KEY_MAX)
        if any(ch.isspace() or ch in "=," for ch in key):
            raise UserError(f"tag key {shown(key)} holds a space, '=' or ',': use a word (robot) or key=value "
                            f"(site=lab)")
        check_text(value, f"the value of tag {shown(key)}", limit=TAG_VALUE_MAX)
    return dict(tags or {})


def check_description(text: str | None) -> str | None:
    """A description (None passes): up to 4,096 characters, line breaks allowed, no other control character."""
    if text is None:
        return None
    return check_text(text, "description", limit=DESCRIPTION_MAX, allow="\n")


def check_alias(alias: object) -> str:
    """``alias`` when it is a valid alias name: the name rule, and not a word that reads as a version (all digits,
    ``v`` + digits, ``latest``); else UserError saying which and what to use."""
    check_name(alias, what="alias name", hint="choose another alias, e.g. production")
    assert isinstance(alias, str)
    if _VERSION_RE.fullmatch(alias) or alias.casefold() == LATEST:
        raise UserError(f"alias name {shown(alias)} is not allowed: NAME@{alias} already means "
                        f"{'the latest version' if alias.casefold() == LATEST else 'a version number'}; choose a "
                        f"word such as production or staging")
    return alias


def split_ref(ref: str) -> tuple[str, str | None]:
    """``"yolo@production"`` -> ``("yolo", "production")``; ``"yolo"`` -> ``("yolo", None)``. Names hold no ``@``,
    so the first one separates. UserError for an empty name or an empty part after ``@``."""
    name, at, selector = str(ref).partition("@")
    if at and (not name or not selector):
        raise UserError(f"model reference {shown(ref)} is incomplete: use NAME, NAME@VERSION (NAME@3) or NAME@ALIAS "
                        f"(NAME@production)")
    return name, (selector if at else None)


def parse_selector(selector: str) -> int | str:
    """What follows ``@``: a version number (``3`` or ``v3``, from 1 up) as an int, else the text (``latest`` or an
    alias). UserError for version 0."""
    if _VERSION_RE.fullmatch(selector):
        version = int(selector.lstrip("vV"))
        if version < 1:
            raise UserError(f"version {shown(selector)} does not exist: versions count from 1")
        return version
    return LATEST if selector.casefold() == LATEST else selector
