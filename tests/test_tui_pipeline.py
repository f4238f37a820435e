"""The pipeline screen at 80x24, keyboard only: reached by `p` from the registry and from the palette, lists the stored
pipelines, and shows the selected one's fit (services.pipelines.fit_stored, computed here again) with a share bar per
stage, the verdicts and the changes; d/m/x change the device, mode and precision."""
from __future__ import annotations

from pathlib import Path

from textual.widgets import Static
from tui_fixtures import run_command, settle, static_text, sync

from embodied_tui import units as fmt
from embodied_tui.app import EmbodiedApp
from embodied_tui.data.store import Registry
from embodied_tui.screens.pipeline import BAR, PipelineScreen
from embodied_tui.screens.registry import RegistryScreen
from embodied_tui.services.pipelines import fit_stored, register, show, targets

SIZE = (80, 24)
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "pipelines"


def _registry(tmp_path) -> Registry:
    db = tmp_path / "registry.json"
    for spec in ("pi05.yaml", "openvla-7b.yaml"):
        register(db, EXAMPLES / spec)
    return Registry(db)


def _report(screen) -> str:
    return static_text(screen.query_one("#pl-report", Static), width=80)


@sync
async def test_pipeline_screen_shows_the_fit_of_the_selected_pipeline(tmp_path):
    reg = _registry(tmp_path)
    first = targets(reg)[0]
    app = EmbodiedApp(registry=reg)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, PipelineScreen)
        assert [row.key.value for row in screen.table.ordered_rows] == ["openvla-7b@1", "pi05@1"]  # by name
        expected = fit_stored(reg, show(reg, "openvla-7b"), first.device, mode=first.default_mode)
        text = _report(screen)
        for stage in expected.stages:  # each stage: its ms, its share and a bar as long as its share
            line = next(ln for ln in text.splitlines() if ln.startswith(stage.name))
            assert fmt.ms(stage.ms) in line and fmt.percent(stage.share, 1.0) in line
            assert line.count("#") == round(stage.share * BAR)
        assert f"total {fmt.ms(expected.total_ms)} ms per period" in text
        assert ("MEETS" if expected.meets_rate else "MISSES") in text
        assert "memory " in text and ("fits" in text or "DOES NOT FIT" in text)
        if not expected.meets_rate:
            assert expected.changes and expected.changes[0].description[:20] in text
        assert all(len(ln) <= 80 for ln in text.splitlines())
        # j: the next pipeline; d: the next device; m: its next mode; x: another precision. Each is re-fitted.
        await pilot.press("j")
        await settle(pilot)
        assert screen.selected().name == "pi05"
        await pilot.press("d")
        await settle(pilot)
        second = targets(reg)[1]
        await pilot.press("m")
        await settle(pilot)
        mode = second.modes[(second.modes.index(second.default_mode) + 1) % len(second.modes)]
        await pilot.press("x")
        await settle(pilot)
        assert (screen.target.device, screen.mode, screen.precision) == (second.device, mode, "fp16")
        expected = fit_stored(reg, show(reg, "pi05"), second.device, mode=mode, precision="fp16")
        text = _report(screen)
        assert f"total {fmt.ms(expected.total_ms)} ms per period" in text
        title = static_text(screen.query_one("#pl-title", Static), width=80)
        assert second.device in title and mode in title and "fp16" in title
        await pilot.press("question_mark")  # help: the screen's keys and what its numbers mean
        await settle(pilot)
        shown = static_text(app.screen.query_one("#help-text", Static), width=80)
        assert "Pipeline numbers" in shown and "Device" in shown and "Precision" in shown
        await pilot.press("escape")
        await pilot.press("escape")
        assert isinstance(app.screen, RegistryScreen)


@sync
async def test_pipeline_screen_from_the_palette_and_empty(tmp_path):
    app = EmbodiedApp(registry=Registry(tmp_path / "empty.json"))
    async with app.run_test(size=SIZE) as pilot:
        await run_command(pilot, "Pipelines")
        await settle(pilot)
        assert isinstance(app.screen, PipelineScreen)
        text = _report(app.screen)
        assert "No pipelines stored" in text and "examples/pipelines/" in text
        assert "embodied-ai" not in text and "`" not in text and "--" not in text  # no CLI command inside the app


@sync
async def test_pipeline_report_scrolls_with_j_and_k(tmp_path):
    """The report pane scrolls a line with j/k, to its end with G, once focused (80x16: the report is taller than
    its pane)."""
    reg = _registry(tmp_path)
    app = EmbodiedApp(registry=reg)
    async with app.run_test(size=(80, 16)) as pilot:
        await pilot.press("p")
        await settle(pilot)
        box = app.screen.query_one("#pl-report-box")
        assert box.max_scroll_y > 1  # the report does not fit: there is something to scroll
        box.focus()
        await pilot.pause()
        await pilot.press("j", "j")
        await pilot.pause()
        assert box.scroll_y == 2
        await pilot.press("k")
        await pilot.pause()
        assert box.scroll_y == 1
        await pilot.press("G")
        await pilot.pause()
        assert box.scroll_y == box.max_scroll_y
        assert app.screen.selected().name == "openvla-7b"  # the keys scrolled the pane, not the list
