"""Context and keys (issue 16, item 8): the header line (where you are, which registry), focus you can see without
colour, j/k in every scrolling pane, the most used keys in the footer."""
from __future__ import annotations

import pytest
from textual.widgets import Footer, TabbedContent
from tui_fixtures import settle, sync

from embodied_tui.app import EmbodiedApp
from embodied_tui.screens.detail import DetailScreen
from embodied_tui.screens.fit import FitScreen
from embodied_tui.screens.widgets.context_bar import ContextBar
from embodied_tui.screens.widgets.model_table import ModelTable
from embodied_tui.services.context import breadcrumb, header_line, registry_location

SIZES = [(80, 24), (120, 40)]


def header(app) -> str:
    """The header line as painted (its one rendered line)."""
    bar = app.screen.query_one(ContextBar)
    return str(bar.render())


def footer_text(app) -> str:
    """The footer's keys and labels as shown (each key's rendered text, left to right)."""
    footer = app.screen.query_one(Footer)
    return " ".join(str(key.render()).strip() for key in footer.query("FooterKey"))


# ------------------------------------------------------------------------------------------------ pure functions
def test_breadcrumb_says_a_repeated_crumb_once():
    assert breadcrumb(["Registry", "resnet18", "resnet18", "Fit", "Roofline"]) == "Registry > resnet18 > Fit > Roofline"
    assert breadcrumb(["Registry", "", "Ask"]) == "Registry > Ask"


def test_header_line_keeps_the_trail_and_cuts_the_location_at_its_start():
    trail = "Registry > resnet18 > Fit > Roofline"  # 36 cells
    location = "/home/ana/projects/robots/registry.json"  # 39 cells
    wide = header_line(location, trail, 100)
    assert len(wide) == 100 and wide.startswith(trail) and wide.endswith("registry " + location)
    narrow = header_line(location, trail, 70)
    assert len(narrow) == 70 and narrow.startswith(trail)
    # 70 - 36 - 2 spaces = 32 cells for "registry " + the end of the path with the ellipsis in front
    assert narrow.endswith("registry …" + location[-(32 - len("registry …")):])
    assert header_line(location, trail, 40) == trail  # no room for a useful location: left out
    assert header_line(location, trail, 20) == "…" + trail[-19:]  # the innermost crumbs are kept


def test_registry_location_never_shows_a_password():
    class Server:
        url = "postgresql://ana:s3cret@db.lab:5432/models?password=other&sslmode=require"

    shown = registry_location(Server())
    assert "s3cret" not in shown and "other" not in shown
    assert shown.startswith("postgresql://ana@db.lab:5432/models")


# ------------------------------------------------------------------------------------------------ the app
@pytest.mark.parametrize("size", SIZES)
@sync
async def test_header_shows_where_you_are_and_the_registry(registry, size):
    app = EmbodiedApp(registry=registry)
    width = size[0]
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        line = header(app)
        assert line.startswith("Registry ") and line.rstrip().endswith("registry.json")
        assert len(line) <= width
        app.registry_screen.table.move_to("resnet_tiny@2")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        assert header(app).startswith("Registry > resnet_tiny > Summary ")
        await pilot.press("6")
        assert header(app).startswith("Registry > resnet_tiny > Card ")
        await pilot.press("f")
        await settle(pilot)
        assert isinstance(app.screen, FitScreen)
        assert header(app).startswith("Registry > resnet_tiny > Fit > Table ")
        await pilot.press("2")
        await pilot.pause()
        assert header(app).startswith("Registry > resnet_tiny > Fit > Roofline")
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert header(app).startswith("Registry > resnet_tiny > Card")  # back where it was
        await pilot.press("a")
        await pilot.pause()
        assert header(app).startswith("Registry > resnet_tiny > Ask")  # a screen without its own crumbs
        assert len(header(app)) <= width


@sync
async def test_focus_is_visible_without_colour_and_not_by_bold_alone(registry):
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(ModelTable)
        focused = table.get_component_rich_style("model-table--cursor")
        await pilot.press("slash")  # the filter takes the focus
        await pilot.pause()
        assert not table.has_focus
        blurred = table.get_component_rich_style("model-table--cursor")
        assert (focused.reverse, focused.underline) != (blurred.reverse, blurred.underline)


@sync
async def test_j_and_k_scroll_the_detail_panes_and_the_card(registry):
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_detail(registry.get("detector"))  # the longest summary: it scrolls at 24 rows
        await settle(pilot)
        screen = app.screen
        for tab, pane in (("1", "#summary-scroll"), ("6", "#card-scroll")):
            await pilot.press(tab)
            await settle(pilot)
            scroll = screen.query_one(pane)
            assert app.focused is scroll and scroll.max_scroll_y > 0
            await pilot.press("j", "j", "j")
            await pilot.pause()
            assert scroll.scroll_y == 3
            await pilot.press("k")
            await pilot.pause()
            assert scroll.scroll_y == 2
            await pilot.press("G")
            await pilot.pause()
            assert scroll.scroll_y == scroll.max_scroll_y
        assert screen.query_one(TabbedContent).active == "card"


@sync
async def test_footer_shows_the_keys_used_most(registry):
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        keys = footer_text(app)
        for shown in ("Filter", "Mark", "Compare", "Fit"):
            assert shown in keys
        await pilot.press("enter")
        await settle(pilot)
        assert "Fit" in footer_text(app) and "Back" in footer_text(app)
        await pilot.press("f")
        await settle(pilot)
        await pilot.press("2")
        await pilot.pause()
        assert "j/k" in footer_text(app)  # on the chart, j/k step through the table's rows
