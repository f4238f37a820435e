"""Screenshots of every screen at 80x24 and 120x40 on the FIXED registry (snapshots/tui_fixture.json).

Baselines live in __snapshots__/test_tui_snapshots/; after a deliberate change run
`pytest tests/test_tui_snapshots.py --snapshot-update` and look at the new SVGs before committing them.
"""
from __future__ import annotations

import pytest
from tui_fixtures import fixed_registry

from embodied_tui.app import EmbodiedApp

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}

# screen -> keys pressed from the registry table (rows sorted by name: detector, lstm_policy, mlp_policy, ...)
SCREENS = {
    "registry": [],
    "registry_filtered_marked": ["slash", *"type = cnn", "enter", "space", "space"],
    "registry_bad_filter": ["slash", *"type = cnn AND (params <"],  # the last good rows stay
    "detail_summary": ["j", "j", "j", "j", "enter"],
    "detail_census": ["j", "j", "j", "j", "enter", "2", "j", "j", "j", "j", "j", "l"],
    "detail_shapes": ["j", "j", "j", "j", "enter", "3"],
    "detail_types": ["j", "j", "j", "j", "enter", "4"],
    "detail_file": ["j", "j", "j", "j", "enter", "5"],
    "compare": ["j", "j", "j", "space", "space", "space", "c"],
    "compare_differences": ["j", "j", "j", "space", "space", "space", "c", "d"],
    "register_dialog": ["r"],
    "register_error": ["r", *"/nope.pt", "enter"],
    "help": ["question_mark"],
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("screen", SCREENS)
def test_screen(snap_compare, tmp_path, screen, size):
    app = EmbodiedApp(registry=fixed_registry(tmp_path / "registry.json"))
    assert snap_compare(app, press=SCREENS[screen], terminal_size=SIZES[size])


def test_registry_without_colour(snap_compare, tmp_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = EmbodiedApp(registry=fixed_registry(tmp_path / "registry.json"))
    assert snap_compare(app, press=["space", "j"], terminal_size=(80, 24))
