"""Terminals (issue 16, item 10): NO_COLOR gives no colour codes at all; TERM=linux (a Jetson's text console) gets
ASCII borders, trees, tables, scroll bars, key names and card.

The screen is read as the terminal would receive it: the compositor's full update rendered by the app's own console
(what ``App._display`` writes), so the checks see the escape codes and characters actually sent."""
from __future__ import annotations

import re

import pytest
from tui_fixtures import settle, sync

from embodied_tui.app import EmbodiedApp

SGR = re.compile(r"\x1b\[([0-9;:]*)m")
COLOUR_PARAMS = {*range(30, 40), *range(40, 50), *range(90, 98), *range(100, 108)}  # fg, bg, default fg/bg, bright
REVERSE = 7


def terminal_output(app) -> str:
    """The bytes (as text) a full repaint of the screen sends to the terminal."""
    update = app.screen._compositor.render_update(full=True)
    return update.render_segments(app.console)


def sgr_params(output: str) -> set[int]:
    """Every SGR parameter sent; a 38/48 colour's own arguments (5;n or 2;r;g;b) count as the 38/48 only."""
    found: set[int] = set()
    for match in SGR.finditer(output):
        params = [int(p) for p in re.split("[;:]", match.group(1)) if p]
        i = 0
        while i < len(params):
            found.add(params[i])
            if params[i] in (38, 48, 58) and i + 1 < len(params):
                i += 3 if params[i + 1] == 5 else 5
            else:
                i += 1
    return found


def visible_text(output: str) -> str:
    """The characters sent, escape sequences removed."""
    return re.sub(r"\x1b\[[0-9;:?]*[A-Za-z]", "", output)


@pytest.fixture()
def no_color(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture()
def linux_console(monkeypatch):
    monkeypatch.setenv("TERM", "linux")
    monkeypatch.delenv("EMBODIED_AI_ASCII", raising=False)
    from textual.scrollbar import ScrollBar
    from textual.widgets import Tree

    saved = ScrollBar.renderer, Tree.ICON_NODE, Tree.ICON_NODE_EXPANDED, Tree.LINES
    yield
    ScrollBar.renderer, Tree.ICON_NODE, Tree.ICON_NODE_EXPANDED, Tree.LINES = saved  # the app sets them per process


@sync
async def test_no_color_sends_no_colour_codes_and_keeps_the_cursor_visible(registry, no_color):
    """Textual's own NO_COLOR handling sends greys (38;2;r;g;b for every cell); the app sends no colour at all, and
    the cursor row and the active tab still stand out (reverse video, underline)."""
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screens = {}
        screens["registry"] = terminal_output(app)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("6")  # the card: rich's Markdown styles carry colours of their own
        await settle(pilot)
        screens["card"] = terminal_output(app)
        await pilot.press("f")
        await settle(pilot)
        await pilot.press("2")  # the roofline chart: plotext's colours
        await settle(pilot)
        screens["chart"] = terminal_output(app)
        for name, output in screens.items():
            params = sgr_params(output)
            assert not params & COLOUR_PARAMS, (name, sorted(params & COLOUR_PARAMS))
        assert REVERSE in sgr_params(screens["registry"])  # the cursor row


@sync
async def test_colours_are_sent_without_no_color(registry, monkeypatch):
    """The check above can fail: without NO_COLOR the same screen sends colour codes."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert sgr_params(terminal_output(app)) & COLOUR_PARAMS


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
@sync
async def test_linux_console_gets_ascii_only(registry, linux_console, size):
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert app.has_class("-ascii")
        seen = {}  # the registry table's own cells are the column helper's (model_table.py): checked there
        app.registry_screen.table.move_to("detector@1")  # the longest summary and a deep census tree
        await pilot.press("enter")
        await settle(pilot)
        for tab, name in (("1", "summary"), ("2", "census"), ("3", "shapes"), ("6", "card")):
            await pilot.press(tab)
            await settle(pilot)
            seen[name] = visible_text(terminal_output(app))
        await pilot.press("question_mark")
        await settle(pilot)
        seen["help"] = visible_text(terminal_output(app))
        for name, text in seen.items():
            assert text.isascii(), (name, sorted({c for c in text if not c.isascii()}))
        assert "+--" in seen["help"] or "+-" in seen["help"]  # the help box's ASCII border
        assert "- detector" in seen["census"] and "| + backbone" in seen["census"]  # ASCII guides and marks
        assert "detector v1" in seen["card"]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
@sync
async def test_linux_console_gets_ascii_in_tables_charts_compare_and_pipelines(registry, linux_console, size,
                                                                                monkeypatch, tmp_path):
    """Every screen with numbers that can be unknown: the registry table while its target cells are not yet computed
    ("-" where a Unicode terminal reads an em dash), the MACs/type bars (plotext), the File tab, the fit table and
    roofline, compare, and the pipeline screen (its empty state and a fitted pipeline)."""
    from pathlib import Path

    from embodied_tui.screens import registry as registry_screen
    from embodied_tui.services.pipelines import register

    examples = Path(__file__).resolve().parents[1] / "examples" / "pipelines"
    register(registry.path, examples / "pi05.yaml")
    monkeypatch.setattr(registry_screen, "BEST_FIT_DELAY", 3600.0)  # the target cells stay unknown ("—" or "-")
    app = EmbodiedApp(registry=registry)
    seen = {}
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        table = app.registry_screen.table
        assert not any(table.has_best_fit(k) for k in table.visible_keys())
        seen["registry with unknown cells"] = visible_text(terminal_output(app))
        await pilot.press("space", "space", "c")
        await settle(pilot)
        seen["compare"] = visible_text(terminal_output(app))
        await pilot.press("escape")
        table.move_to("detector@1")
        await pilot.press("enter")
        await settle(pilot)
        for tab, name in (("4", "MACs/type"), ("5", "file")):
            await pilot.press(tab)
            await settle(pilot)
            seen[name] = visible_text(terminal_output(app))
        await pilot.press("f")
        await settle(pilot)
        seen["fit table"] = visible_text(terminal_output(app))
        await pilot.press("2")
        await settle(pilot)
        seen["roofline"] = visible_text(terminal_output(app))
        while len(app.screen_stack) > 1:
            await pilot.press("escape")
            await pilot.pause()
        await pilot.press("p")
        await settle(pilot)
        seen["pipeline"] = visible_text(terminal_output(app))
    assert "-" in seen["registry with unknown cells"]
    assert {name: sorted({c for c in text if not c.isascii()}) for name, text in seen.items()
            if not text.isascii()} == {}


@sync
async def test_an_app_started_after_one_on_a_linux_console_draws_unicode_again(registry, monkeypatch):
    """Scroll-bar and tree glyphs are class attributes of Textual's widgets: an app opened on TERM=linux set them to
    ASCII for the whole process, and the next app (another test; a second app in one process) drew ASCII too."""
    from textual.scrollbar import ScrollBar, ScrollBarRender
    from textual.widgets import Tree

    unicode = ScrollBar.renderer, Tree.ICON_NODE
    monkeypatch.delenv("EMBODIED_AI_ASCII", raising=False)
    monkeypatch.setenv("TERM", "linux")
    async with EmbodiedApp(registry=registry).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert ScrollBar.renderer is not ScrollBarRender and Tree.ICON_NODE.isascii()
    monkeypatch.setenv("TERM", "xterm-256color")
    async with EmbodiedApp(registry=registry).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert (ScrollBar.renderer, Tree.ICON_NODE) == unicode
