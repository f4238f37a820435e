"""Registries for the TUI tests, built from real analyses of small real model files.

- ``write_models(dir)``: small zoo models saved as real files (ExportedProgram .pt2 and state_dict .pt).
- ``analysed_registry(dir)``: analyses each file with ``analyze_file`` and registers it (real TinyDB file).
- ``fixed_registry(db)``: the FIXED registry of the snapshot tests, from ``snapshots/tui_fixture.json`` (real analyses
  made once by ``python tests/tui_fixtures.py``, with fixed paths and timestamps) so screenshots are deterministic.
"""
from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
from pathlib import Path

from embodied_tui.data.records import Analysis, ModelRecord
from embodied_tui.data.store import Registry, identity_of

FIXTURE_JSON = Path(__file__).parent / "snapshots" / "tui_fixture.json"
FIXED_TIME = "2025-01-0{day}T09:00:00+00:00"

# (registry name, zoo builder, file format, tags); the second resnet_tiny entry is version 2 (other weights).
# Two ExportedPrograms (input shapes from the file) and state_dicts (shapes inferred); torch.export is the slow part.
MODEL_SET = (
    ("resnet_tiny", "resnet_tiny", "state_dict", {"robot": "", "site": "lab"}),
    ("mobilenet_tiny", "mobilenet_tiny", "state_dict", {"edge": ""}),
    ("small_vit", "small_vit", "pt2", {}),
    ("mlp_policy", "mlp_policy", "pt2", {"robot": ""}),
    ("lstm_policy", "lstm_policy", "state_dict", {}),
    ("detector", "yolo_style_detector", "state_dict", {"site": "yard"}),
    ("resnet_tiny", "resnet_tiny", "state_dict", {}),
)


def write_model(directory: Path, builder_name: str, fmt: str, seed: int = 0) -> Path:
    import torch

    from embodied_tui.analysis import zoo

    builder = zoo.BUILDERS[builder_name]
    torch.manual_seed(seed)
    model = builder.build()
    if fmt == "pt2":
        path = directory / f"{builder_name}.pt2"
        torch.export.save(torch.export.export(model, builder.example_inputs()), path)
    else:
        path = directory / f"{builder_name}_sd{seed}.pt"
        torch.save(model.state_dict(), path)
    return path


def write_models(directory: Path) -> list[tuple[str, Path, dict[str, str]]]:
    directory.mkdir(parents=True, exist_ok=True)
    return [(name, write_model(directory, builder, fmt, seed=i), tags)
            for i, (name, builder, fmt, tags) in enumerate(MODEL_SET)]


def analyse(path: Path) -> Analysis:
    from embodied_tui.analysis.api import analyze_file

    return analyze_file(path)


def analysed_registry(directory: Path) -> Registry:
    """A real registry file in ``directory`` holding real analyses of ``MODEL_SET`` (added through Registry.add)."""
    registry = Registry(directory / "registry.json")
    for name, path, tags in write_models(directory / "models"):
        registry.add(analyse(path), name, tags=tags)
    return registry


def sync(test):
    """Run an async test function with asyncio (no async pytest plugin is installed)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


def static_text(widget, width: int = 120) -> str:
    """The plain text a Static shows (rich renderables rendered at ``width``)."""
    from rich.console import Console

    content = widget.content
    if isinstance(content, str):
        return content
    console = Console(width=width, record=True, file=open(os.devnull, "w"), color_system=None)
    console.print(content)
    return console.export_text()


async def run_command(pilot, text: str) -> None:
    """Open the command palette, type ``text`` and run the first hit once it is the command asked for."""
    from textual.command import CommandList
    from textual.widgets import Input

    await pilot.press("ctrl+p")
    await pilot.pause()
    palette = pilot.app.screen
    palette.query_one(Input).value = text
    commands = palette.query_one(CommandList)
    for _ in range(400):  # the palette searches in the background; wait for the hit (not a timing assertion)
        await pilot.pause(0.05)
        if commands.option_count and commands.get_option_at_index(0).hit.text.lower() == text.lower():
            break
    else:
        raise AssertionError(f"the palette never offered {text!r}")
    await pilot.press("enter")
    await pilot.pause()


WAIT_STEPS = 1200  # x 0.05 s: generous; a wait, not a timing assertion


async def until(pilot, condition) -> None:
    """Pause until ``condition()`` holds (a wait, not a timing assertion)."""
    for _ in range(WAIT_STEPS):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition never became true")


def watcher_caught_up(app) -> bool:
    """Whether the app's registry watcher has seen the registry's last write (its read of it may still run: settle
    waits for that)."""
    return app._marker == app.registry.change_marker()  # noqa: SLF001 (the watcher's own record of what it saw)


async def settle(pilot, rounds: int = 50) -> None:
    """Wait until the app's workers are done and what they posted back has been handled (a wait, not a timing
    assertion): fits, answers and cards run in thread workers."""
    app = pilot.app
    for _ in range(rounds):
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running or w.state.name == "PENDING" for w in app.workers):
            return
    raise AssertionError("the app's workers never finished")


def analysed_registry_copy(directory: Path, tmp_path_factory) -> Registry:
    """A private copy (in ``directory``) of a registry of real analyses of ``MODEL_SET``, analysed once per test run
    (shared by pytest-xdist workers through a lock in the run's base temp directory)."""
    import shutil

    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # common to every worker of this run
    source = root / "tui-analysed"
    with FileLock(str(root / "tui-analysed.lock")):
        if not (source / "registry.json").exists():
            building = root / "tui-analysed.building"
            shutil.rmtree(building, ignore_errors=True)
            analysed_registry(building)
            building.rename(source)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / "registry.json", directory / "registry.json")
    shutil.copytree(source / "registry.json.d", directory / "registry.json.d", dirs_exist_ok=True)
    return Registry(directory / "registry.json")


def model_file(directory: Path, builder_name: str = "mlp_policy", fmt: str = "pt2", seed: int = 0) -> Path:
    """One small real model file for registration tests."""
    directory.mkdir(parents=True, exist_ok=True)
    return write_model(directory, builder_name, fmt, seed)


def fixed_registry(db: Path) -> Registry:
    """The snapshot registry: fixed records (paths, timestamps, hashes) from ``tui_fixture.json``."""
    registry = Registry(db)
    items = []
    for entry in json.loads(FIXTURE_JSON.read_text()):
        analysis = Analysis.model_validate(entry["analysis"])
        record, details = ModelRecord.from_analysis(analysis, name=entry["name"], version=entry["version"],
                                                    registered_at=entry["registered_at"], tags=entry["tags"])
        items.append((record, identity_of(analysis), details))
    registry.put_many(items)
    return registry


def regenerate(tmp: Path) -> None:
    """Analyse MODEL_SET for real and write ``tui_fixture.json`` with paths under /models and fixed times."""
    entries, versions = [], {}
    for i, (name, path, tags) in enumerate(write_models(tmp)):
        analysis = analyse(path)
        analysis = analysis.model_copy(update={"path": f"/models/{path.name}", "analysis_seconds": 0.5})
        versions[name] = versions.get(name, 0) + 1
        entries.append({"name": name, "version": versions[name], "tags": tags,
                        "registered_at": FIXED_TIME.format(day=i + 1), "analysis": analysis.model_dump(mode="json")})
    FIXTURE_JSON.write_text(json.dumps(entries, indent=1) + "\n")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        regenerate(Path(tmp))
    print(f"wrote {FIXTURE_JSON}", file=sys.stderr)
