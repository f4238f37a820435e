"""Screenshots of every screen at 80x24 and 120x40 on the FIXED registry (snapshots/tui_fixture.json).

Keys are pressed and the app's workers (best-fit column, fit rows, roofline, answers, card) are waited for before the
screenshot, so what they fill in is part of it. The fit, best-fit and ask screens also depend on the hardware catalog
(embodied_tui/data/catalog): a catalog change changes them.

Baselines live in __snapshots__/test_tui_snapshots/; after a deliberate change run
`pytest tests/test_tui_snapshots.py --snapshot-update` and look at the new SVGs before committing them.
"""
from __future__ import annotations

import pytest
from tui_fixtures import fixed_registry, settle

from embodied_tui.app import EmbodiedApp

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}
RESNET = ["j", "j", "j", "j"]  # rows sorted by name: detector, lstm_policy, mlp_policy, mobilenet_tiny, resnet_tiny

# screen -> keys pressed from the registry table
SCREENS = {
    "registry": [],
    "registry_filtered_marked": ["slash", *"type = cnn", "enter", "space", "space"],
    "registry_bad_filter": ["slash", *"type = cnn AND (params <"],  # the last good rows stay
    "detail_summary": [*RESNET, "enter"],
    "detail_census": [*RESNET, "enter", "2", "j", "j", "j", "j", "j", "l"],
    "detail_shapes": [*RESNET, "enter", "3"],
    "detail_types": [*RESNET, "enter", "4"],
    "detail_file": [*RESNET, "enter", "5"],
    "detail_card": [*RESNET, "enter", "6"],
    "compare": ["j", "j", "j", "space", "space", "space", "c"],
    "compare_differences": ["j", "j", "j", "space", "space", "space", "c", "d"],
    "fit_table": [*RESNET, "f"],
    "fit_filtered": [*RESNET, "f", "slash", "=orin fp16", "enter"],
    "fit_chart": [*RESNET, "f", "j", "enter"],
    "ask_answer": ["a", "=fastest models on a jetson at 15 W", "enter"],
    "ask_error": ["a", "=MATCH (m:Model RETURN m.name", "enter"],
    "register_dialog": ["r"],
    "register_error": ["r", *"/nope.pt", "enter"],
    "help": ["question_mark"],
}


async def first_screen_done(pilot) -> None:
    """The registry table's target cells of the rows on screen are computed and shown (a timer starts their worker
    after the first paint, so waiting for workers alone could come before it; the cells set the "ms" header's
    text), and everything they caused has settled."""
    await settle(pilot)
    tables = pilot.app.screen.query("ModelTable")
    if tables:
        table = tables.first()
        for _ in range(500):
            if all(table.has_best_fit(k) for k in table.visible_keys()):
                break
            await pilot.pause(0.02)
        await settle(pilot)


def driver(keys: list[str]):
    """Press ``keys``; a key "=TEXT" sets the focused input to TEXT at once (typing each key is slow)."""
    async def run_before(pilot) -> None:
        await first_screen_done(pilot)  # the first screen's own work (target cells, layout) is done before any key
        for key in keys:
            if key.startswith("=") and len(key) > 1:
                pilot.app.focused.value = key[1:]
                await pilot.pause()
            else:
                await pilot.press(key)
        await pilot.pause(0.3)  # the fit chart waits for the cursor to rest before it asks for the layers
        await settle(pilot)
        for editor in pilot.app.screen.query("Input, TextArea"):
            editor.cursor_blink = False  # a steady cursor: the waits above must not land on a blink
        # scroll bars are placed by a later layout pass: ask for that pass and wait for it
        await pilot.wait_for_scheduled_animations()
        pilot.app.screen.refresh(layout=True)
        await pilot.pause()
        await settle(pilot)  # a repaint may ask for cells (the target column's): wait for them too
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_screen(snap_compare, tmp_path, monkeypatch, screen, size):
    monkeypatch.chdir(tmp_path)  # the header names the registry relative to here: 'registry.json', the same every run
    app = EmbodiedApp(registry=fixed_registry(tmp_path / "registry.json"))
    assert snap_compare(app, run_before=driver(SCREENS[screen]), terminal_size=SIZES[size])


def test_registry_without_colour(snap_compare, tmp_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    app = EmbodiedApp(registry=fixed_registry(tmp_path / "registry.json"))
    assert snap_compare(app, run_before=driver(["space", "j"]), terminal_size=(80, 24))
