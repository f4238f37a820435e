"""The roofline chart of the fit screen: fixed axes while j/k step through rows, the row's predicted latency and bound
on top, the y axis named (GOP/s for integer precisions), escape back to the table with the row in view, ASCII on a
console without box-drawing glyphs. Driven through the real app on a registry of real analyses; every expected value
comes from services.fit's own rows (with their per-layer rows), in log10 as the chart plots them."""
from __future__ import annotations

import math

import pytest
from textual.widgets import Static, TabbedContent
from tui_fixtures import settle, static_text, sync, until

from embodied_tui import units as fmt
from embodied_tui.app import EmbodiedApp
from embodied_tui.data.hardware import INTEGER_PRECISIONS
from embodied_tui.perf.fit_row import FitRow
from embodied_tui.screens.fit import FitScreen
from embodied_tui.screens.widgets.fit_table import fit_key
from embodied_tui.screens.widgets.roofline_plot import RooflinePlot, chart_limits, roofline_chart
from embodied_tui.services.fit import fit_rows

SIZES = [(80, 24), (120, 40)]
MODEL = "resnet_tiny"


def points(row: FitRow) -> tuple[list[float], list[float]]:
    """Every x and y (log10) the chart of ``row`` must hold: its drawable layers, the model, the ridge and the peak,
    from the fit row's own fields."""
    xs = [math.log10(l.arithmetic_intensity) for l in row.layers if l.arithmetic_intensity and l.predicted_tflops]
    ys = [math.log10(l.predicted_tflops * 1e3) for l in row.layers if l.arithmetic_intensity and l.predicted_tflops]
    xs += [math.log10(row.arithmetic_intensity), math.log10(row.ridge_point)] if row.ridge_point else []
    ys += [math.log10(row.attainable_tflops * 1e3), math.log10(row.peak_tflops * 1e3)]
    return xs, ys


async def open_chart(pilot, app: EmbodiedApp, record) -> FitScreen:
    app.open_fit(record)
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, FitScreen)
    await pilot.press("enter")
    await until(pilot, lambda: screen.charted == fit_key(screen.shown[screen.table.cursor_row]))
    return screen


async def chart_of(pilot, screen: FitScreen, index: int):
    await until(pilot, lambda: screen.charted == fit_key(screen.shown[index]))
    await settle(pilot)
    return screen.query_one(RooflinePlot).chart


@pytest.mark.parametrize("size", SIZES)
@sync
async def test_axes_stay_fixed_while_j_and_k_step_through_rows(registry, size):
    record = registry.get(MODEL)
    full = [r for r in fit_rows(registry, MODEL, version=record.version, with_layers=True) if r.peak_tflops]
    own = {(c.xlim, c.ylim) for c in (roofline_chart(r, r.layers) for r in full)}
    assert len(own) > 1  # each row on its own axes would move them
    by_key = {fit_key(r): r for r in full}
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=size) as pilot:
        screen = await open_chart(pilot, app, record)

        def own_axes(index: int):
            row = by_key[fit_key(screen.shown[index])]
            chart = roofline_chart(row, row.layers)
            return chart.xlim, chart.ylim

        # the first row down the table whose own axes differ from the first row's: the chart must not change there
        other = next(i for i in range(len(screen.shown)) if own_axes(i) != own_axes(0))
        seen = [(screen.query_one(RooflinePlot).chart.xlim, screen.query_one(RooflinePlot).chart.ylim)]
        for _ in range(other):
            await pilot.press("j")
        chart = await chart_of(pilot, screen, other)
        seen.append((chart.xlim, chart.ylim))
        await pilot.press("k")
        chart = await chart_of(pilot, screen, other - 1)
        seen.append((chart.xlim, chart.ylim))
        assert len(set(seen)) == 1
        (x_lo, x_hi), (y_lo, y_hi) = seen[0]
        for row in full:  # every row's chart fits these axes
            xs, ys = points(row)
            assert x_lo <= min(xs) and max(xs) <= x_hi and y_lo <= min(ys) and max(ys) <= y_hi, fit_key(row)
        caption = static_text(screen.query_one("#roofline-caption", Static), width=size[0])
        assert f"axes fixed over {len(full)} rows" in caption


@sync
async def test_title_and_caption_give_the_rows_prediction_and_bound_and_the_axis_unit(registry):
    record = registry.get(MODEL)
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_chart(pilot, app, record)
        plot = screen.query_one(RooflinePlot)
        integer = next(i for i, r in enumerate(screen.shown) if r.precision in INTEGER_PRECISIONS)
        floating = next(i for i, r in enumerate(screen.shown) if r.precision not in INTEGER_PRECISIONS)
        for index, unit in ((integer, "GOP/s"), (floating, "GFLOP/s")):
            screen.table.move_cursor(row=index)
            await chart_of(pilot, screen, index)
            row = screen.shown[index]
            drawn = plot.render().plain
            heading = (f"{row.hardware} {row.power_mode} {row.precision}: "
                       f"{fmt.ms(row.predicted_latency_ms)} ms predicted, {row.bound}-bound")
            assert heading in drawn
            assert f"attainable {unit}" in drawn and plot.chart.y_label == f"attainable {unit}"
            other = "GFLOP/s" if unit == "GOP/s" else "GOP/s"
            assert other not in drawn
            caption = static_text(screen.query_one("#roofline-caption", Static))
            assert f"pred {fmt.ms(row.predicted_latency_ms)} ms" in caption and f"{row.bound}-bound" in caption
            assert f" {unit} |" in caption  # the peak in the same unit


@pytest.mark.parametrize("size", SIZES)
@sync
async def test_escape_returns_to_the_table_with_the_cursor_row_in_view(registry, size):
    record = registry.get(MODEL)
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=size) as pilot:
        screen = await open_chart(pilot, app, record)
        table = screen.table
        target = min(len(screen.shown) - 1, size[1] + 10)  # past the first screenful of the table
        assert target > size[1]
        for _ in range(target):
            await pilot.press("j")
        await chart_of(pilot, screen, target)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.pause()
        assert app.screen is screen and screen.query_one(TabbedContent).active == "fit-table-pane"
        assert app.focused is table and table.cursor_row == target
        visible = table.scrollable_content_region.height - table.header_height
        assert table.scroll_y <= target < table.scroll_y + visible
        await pilot.press("escape")  # from the table, escape leaves as before
        await pilot.pause()
        assert app.screen is not screen


@pytest.mark.parametrize("env", [{"TERM": "linux"}, {"EMBODIED_AI_ASCII": "1"}])
@sync
async def test_ascii_console_gets_an_ascii_chart(registry, monkeypatch, env):
    record = registry.get(MODEL)
    monkeypatch.delenv("EMBODIED_AI_ASCII", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_chart(pilot, app, record)
        plot = screen.query_one(RooflinePlot)
        assert any(ord(ch) > 127 for ch in plot.render().plain)  # box drawing and braille elsewhere
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        plot.plot(plot.chart)
        drawn = plot.render().plain
        assert all(ord(ch) < 128 for ch in drawn), sorted({ch for ch in drawn if ord(ch) > 127})
        assert "attainable" in drawn and "+" in drawn and "|" in drawn


def test_chart_limits_hold_each_rows_own_axes(registry):
    record = registry.get(MODEL)
    full = fit_rows(registry, MODEL, version=record.version, with_layers=True)
    limits = chart_limits(full)
    charted = [r for r in full if r.peak_tflops]
    assert limits is not None and limits.rows == len(charted)
    for row in charted:
        (x0, x1), (y0, y1) = roofline_chart(row, row.layers).xlim, roofline_chart(row, row.layers).ylim
        assert limits.xlim[0] <= x0 and x1 <= limits.xlim[1] and limits.ylim[0] <= y0 and y1 <= limits.ylim[1]
        fixed = roofline_chart(row, row.layers, limits)
        assert (fixed.xlim, fixed.ylim) == (limits.xlim, limits.ylim)
    assert chart_limits([r for r in full if not r.peak_tflops]) is None


@sync
async def test_a_long_title_is_clipped_not_dropped_at_80_columns(registry):
    """plotext drops a centred title that does not fit; the chart clips it with an ellipsis instead."""
    record = registry.get(MODEL)
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_chart(pilot, app, record)
        index = max(range(len(screen.shown)), key=lambda i: len(roofline_chart(screen.shown[i], ()).heading))
        row = screen.shown[index]
        heading = roofline_chart(row, ()).heading
        assert len(heading) > 80 - 12  # the longest heading of the catalog does not fit whole
        screen.table.move_cursor(row=index)
        await chart_of(pilot, screen, index)
        first_line = screen.query_one(RooflinePlot).render().plain.splitlines()[0].strip()
        assert first_line.endswith("…") and heading.startswith(first_line[:-1])
