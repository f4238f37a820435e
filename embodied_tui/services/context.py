"""Where the user is: the registry's location and the breadcrumb of the app's header line.

Pure functions on plain values (no textual): the app builds the crumbs from its screen stack and shows
``header_line`` on one line at the top of every screen.
"""
from __future__ import annotations

from pathlib import Path

SEPARATOR = " > "


def registry_location(registry) -> str:
    """The registry as the user named it: a TinyDB registry's file path, a server registry's URL without its password
    (``data.pg.connect.shown``). Never the password: a URL is always passed through ``shown``."""
    url = getattr(registry, "url", None)
    if url:
        from embodied_tui.data.pg.connect import shown

        return shown(str(url))
    return short_path(Path(str(getattr(registry, "path", registry))))


def short_path(path: Path) -> str:
    """A file path as a user would type it: relative to the current folder when inside it, else with ``~`` for the
    home folder, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except (ValueError, OSError):
        pass
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except (ValueError, RuntimeError):
        return str(path)


def breadcrumb(crumbs: list[str]) -> str:
    """'Registry > resnet18 > Fit > Roofline': the crumbs in order, a crumb equal to the one before it said once (the
    model's name when its fit is opened from its detail screen)."""
    kept: list[str] = []
    for crumb in crumbs:
        if crumb and (not kept or kept[-1] != crumb):
            kept.append(crumb)
    return SEPARATOR.join(kept)


def header_line(location: str, trail: str, width: int, ellipsis: str = "…") -> str:
    """The header in ``width`` cells: the breadcrumb on the left, the registry on the right. The breadcrumb is kept
    whole as long as it fits (where you are matters more than where the file is); the location is cut at its start
    (the file name and its folder are the informative end), and dropped when fewer than 12 cells are left for it;
    a breadcrumb wider than the line is cut at its start too, keeping the innermost crumbs."""
    width = max(width, 0)
    if len(trail) >= width:
        return _cut_start(trail, width, ellipsis)
    room = width - len(trail) - 2  # two spaces between
    place = "registry " + location
    if room < 12 + len("registry "):
        return trail
    if len(place) > room:
        place = "registry " + _cut_start(location, room - len("registry "), ellipsis)
    return trail + " " * (width - len(trail) - len(place)) + place


def _cut_start(text: str, width: int, ellipsis: str) -> str:
    if len(text) <= width:
        return text
    if width <= len(ellipsis):
        return text[len(text) - width:]
    return ellipsis + text[len(text) - width + len(ellipsis):]


def removed_text(record) -> str:
    """The one line a screen shows once its model was removed from the registry (by another process, or between a
    key and the screen's first read): what is gone and the way back; no CLI flag."""
    return (f"{record.name} v{record.version} is no longer in the registry (removed elsewhere); what is shown is "
            f"from before; escape goes back")
