"""The package boundaries of docs/architecture.md, read from the source's import statements (including imports inside
functions), so a forbidden dependency fails here instead of growing unnoticed."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "embodied_tui"

# room -> rooms (and outside packages) it must never import
FORBIDDEN = {
    "data": ("embodied_tui.analysis", "embodied_tui.perf", "embodied_tui.ask", "embodied_tui.services",
             "embodied_tui.commands", "embodied_tui.screens", "embodied_tui.app", "textual"),
    "analysis": ("embodied_tui.data.store", "embodied_tui.perf", "embodied_tui.ask", "embodied_tui.services",
                 "embodied_tui.commands", "embodied_tui.screens", "embodied_tui.app", "textual"),
    "perf": ("embodied_tui.data.store", "embodied_tui.ask", "embodied_tui.services", "embodied_tui.commands",
             "embodied_tui.screens", "embodied_tui.app", "textual"),
    "ask": ("embodied_tui.analysis", "embodied_tui.services", "embodied_tui.commands", "embodied_tui.screens",
            "embodied_tui.app", "textual", "torch"),
    "services": ("embodied_tui.commands", "embodied_tui.screens", "embodied_tui.app", "textual"),
    "commands": ("embodied_tui.screens", "textual"),
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _violations(room: str) -> list[str]:
    found = []
    for path in sorted((PACKAGE / room).rglob("*.py")):
        for name in imported_modules(path):
            for banned in FORBIDDEN[room]:
                if name == banned or name.startswith(banned + "."):
                    found.append(f"{path.relative_to(PACKAGE)} imports {name}")
    return found


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_room_imports_only_what_its_boundary_allows(room):
    assert (PACKAGE / room).is_dir(), room
    assert _violations(room) == []


def test_the_check_sees_a_forbidden_import(tmp_path):
    """The scanner itself: an import inside a function is seen, and a relative import is resolved."""
    module = PACKAGE / "data" / "records.py"
    names = imported_modules(module)
    assert "pydantic" in names or any(n.startswith("pydantic") for n in names)
    sample = PACKAGE / "services" / "models.py"
    assert any(n.startswith("embodied_tui.data") for n in imported_modules(sample))


def test_no_module_refers_to_design_notes_outside_the_repo():
    """Code points at docs/ in this repository, never at notes that are not shipped with it."""
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if "design.md" in p.read_text() or "hardware-facts.md" in p.read_text()]
    assert offenders == []
