"""The fit screen on real analyses: rows from services.fit, filter, sort, measured latency, the roofline chart."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
from textual.widgets import Input, Static, TabbedContent
from tui_fixtures import run_command, settle, static_text, sync, until

from embodied_tui import units as fmt
from embodied_tui.app import EmbodiedApp
from embodied_tui.perf.fit_row import FitRow, LayerFit
from embodied_tui.screens.detail import DetailScreen
from embodied_tui.screens.fit import FitScreen
from embodied_tui.screens.registry import RegistryScreen
from embodied_tui.screens.widgets.model_table import ModelTable
from embodied_tui.screens.widgets.roofline_plot import RooflinePlot, decade_ticks, rate_unit, roofline_chart
from embodied_tui.services.fit import add_measurement, fit_rows

SIZE = (80, 24)


def key(row: FitRow) -> str:
    return f"{row.hardware}|{row.power_mode}|{row.precision}"


def table_keys(screen: FitScreen) -> list[str]:
    return [row.key.value for row in screen.table.ordered_rows]


def column(screen: FitScreen, header: str) -> list[str]:
    return [str(cell) for cell in screen.table.get_column(header)]


async def open_fit_from_table(pilot, app: EmbodiedApp, name: str) -> FitScreen:
    table = app.screen.query_one(ModelTable)
    table.move_to(next(k for k in table.keys if k.startswith(f"{name}@")))
    await pilot.press("f")
    await settle(pilot)
    assert isinstance(app.screen, FitScreen)
    return app.screen


@sync
async def test_fit_from_the_table_lists_the_rows_of_services_fit(registry):
    record = registry.get("resnet_tiny")
    add_measurement(registry, model="resnet_tiny", hw="raspberry-pi-5", mode=None, precision="fp32", latency_ms=2.5,
                    source="a test bench")
    expected = fit_rows(registry, record.name, version=record.version)
    measured = [r for r in expected if r.measured_latency_ms is not None]
    assert len(measured) == 1 and measured[0].measured_latency_ms == 2.5
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fit_from_table(pilot, app, "resnet_tiny")
        assert screen.record.version == record.version
        assert app.focused is screen.table
        # same rows, same order (fastest predicted first), one per device x mode x precision
        assert table_keys(screen) == [key(r) for r in expected]
        assert column(screen, "pred ms") == [fmt.significant(r.predicted_latency_ms) for r in expected]
        assert column(screen, "roof ms") == [fmt.significant(r.roofline_latency_ms) for r in expected]
        assert column(screen, "bound") == [r.bound for r in expected]
        meas = dict(zip(table_keys(screen), column(screen, "meas ms")))
        assert meas[key(measured[0])] == "2.50"
        assert {v for k, v in meas.items() if k != key(measured[0])} == {fmt.NA}
        assert f"{len(expected)} of {len(expected)} rows" in static_text(screen.query_one("#status", Static))
        await pilot.press("escape")
        assert isinstance(app.screen, RegistryScreen)


@sync
async def test_fit_from_detail_and_palette(registry):
    record = registry.get("small_vit")
    expected = [key(r) for r in fit_rows(registry, record.name, version=record.version)]
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        app.open_detail(record)
        await pilot.pause()
        await pilot.press("f")
        await settle(pilot)
        assert isinstance(app.screen, FitScreen) and table_keys(app.screen) == expected
        await pilot.press("q")
        assert isinstance(app.screen, DetailScreen)
        await pilot.press("escape")
        await run_command(pilot, "Fit on hardware: mlp_policy")
        await settle(pilot)
        assert isinstance(app.screen, FitScreen) and app.screen.record.name == "mlp_policy"
        assert table_keys(app.screen) == [key(r) for r in fit_rows(registry, "mlp_policy")]


@sync
async def test_filter_by_device_and_precision_and_sort(registry):
    record = registry.get("mobilenet_tiny")
    rows = fit_rows(registry, record.name)
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fit_from_table(pilot, app, "mobilenet_tiny")
        await pilot.press("slash")
        filter_input = screen.query_one("#fit-filter", Input)
        assert app.focused is filter_input
        filter_input.value = "orin FP16"
        await pilot.pause()
        wanted = [key(r) for r in rows if r.precision == "fp16" and "orin" in r.hardware]
        assert wanted and len(wanted) < len(rows)
        assert table_keys(screen) == wanted
        await pilot.press("enter")
        assert app.focused is screen.table
        await pilot.press("escape")  # clears the filter (the first escape), the screen stays
        assert isinstance(app.screen, FitScreen) and len(table_keys(screen)) == len(rows)

        await pilot.press("s")  # predicted -> measured: nothing measured, so the service's order stays
        assert table_keys(screen) == [key(r) for r in rows]
        await pilot.press("s")  # -> roofline lower bound
        by_roof = sorted((r for r in rows if r.roofline_latency_ms is not None),
                         key=lambda r: r.roofline_latency_ms)
        assert table_keys(screen)[:len(by_roof)] == [key(r) for r in by_roof]
        await pilot.press("S")
        assert table_keys(screen)[:len(by_roof)] == [key(r) for r in sorted(
            by_roof, key=lambda r: r.roofline_latency_ms, reverse=True)]
        assert "sort: roofline v" in static_text(screen.query_one("#status", Static))


@sync
async def test_select_a_row_and_the_roofline_redraws(registry):
    record = registry.get("resnet_tiny")
    rows = fit_rows(registry, record.name, version=record.version)
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_fit_from_table(pilot, app, "resnet_tiny")
        plot = screen.query_one(RooflinePlot)
        await pilot.press("j", "enter")  # the second row, shown as a roofline
        assert screen.query_one(TabbedContent).active == "fit-chart-pane"
        await until(pilot, lambda: screen.charted == key(rows[1]))
        await settle(pilot)
        full = fit_rows(registry, record.name, hw=rows[1].hardware, mode=rows[1].power_mode,
                        precision=rows[1].precision, version=record.version, with_layers=True)[0]
        chart = plot.chart
        drawable = [l for l in full.layers if l.arithmetic_intensity and l.predicted_tflops]
        assert drawable and len(chart.layer_x) == len(drawable)
        assert chart.layers_not_drawn == len(full.layers) - len(drawable)
        assert chart.layer_x[0] == pytest.approx(math.log10(drawable[0].arithmetic_intensity))
        assert chart.layer_y[0] == pytest.approx(math.log10(drawable[0].predicted_tflops * 1e3))
        assert chart.model == pytest.approx((math.log10(full.arithmetic_intensity),
                                             math.log10(full.attainable_tflops * 1e3)))
        # the roof bends at the ridge point, at the peak
        assert (math.log10(full.ridge_point), math.log10(full.peak_tflops * 1e3)) in [
            pytest.approx(p) for p in zip(chart.roof_x, chart.roof_y)]
        assert f"attainable {rate_unit(rows[1].precision)}" in str(plot.render())
        caption = static_text(screen.query_one("#roofline-caption", Static))
        assert f"row 2/{len(rows)}" in caption and f"{full.bound}-bound" in caption

        await pilot.press("j")  # on the chart tab, j moves to the next row and the chart follows
        await until(pilot, lambda: screen.charted == key(rows[2]))
        await settle(pilot)
        assert plot.chart.title == f"{rows[2].hardware} {rows[2].power_mode} {rows[2].precision}"
        assert f"attainable {rate_unit(rows[2].precision)}" in str(plot.render())
        await pilot.press("1")
        assert screen.query_one(TabbedContent).active == "fit-table-pane" and screen.table.cursor_row == 2


@sync
async def test_a_model_without_macs_shows_why_inline(registry, tmp_path):
    record = registry.get("mlp_policy")
    broken = record.model_copy(update={"name": "no_macs", "macs": None, "flops": None,
                                       "macs_null_reason": "the input shape is unknown"})
    registry.put_many([(broken, "identity-no-macs", registry.details(record))])
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        app.open_fit(registry.get("no_macs"))
        await settle(pilot)
        screen = app.screen
        error = screen.query_one("#fit-error", Static)
        assert error.display and "the input shape is unknown" in static_text(error)
        assert not screen.table.display
        await pilot.press("2")  # the chart tab says there is nothing to draw, without an error
        await pilot.pause(0.2)
        assert screen.query_one(RooflinePlot).chart is None


def test_roofline_chart_geometry():
    """Log10 values on linear axes: the roof rises with slope 1 up to the ridge, then stays at the peak."""
    from embodied_tui.perf.roofline import empty_fit

    row = replace(empty_fit("net", "dev", "m", "fp16", None, None, ""), reason=None, peak_tflops=10.0,
                  bandwidth_gbps=100.0, ridge_point=100.0, arithmetic_intensity=5.0, attainable_tflops=0.5)

    def layer(intensity: float | None, tflops: float) -> LayerFit:
        return LayerFit(name="l", type="Conv", flops=0.0, other_flops=0.0, bytes=0.0, unfused_bytes=0.0,
                        fused_into_previous=False, arithmetic_intensity=intensity, predicted_ms=None, roofline_ms=None,
                        share=None, bound="compute", launches=1, predicted_tflops=tflops)

    layers = [layer(2.0, 0.1), layer(0.0, 0.0),  # elementwise: no MACs to place
              layer(None, 0.0)]
    chart = roofline_chart(row, layers)
    assert chart.layers_not_drawn == 2 and chart.layer_x == [pytest.approx(math.log10(2.0))]
    assert chart.layer_y == [pytest.approx(2.0)]  # 0.1 TFLOP/s = 100 GFLOP/s
    assert chart.model == pytest.approx((math.log10(5.0), math.log10(500.0)))
    (x0, x1, x2), (y0, y1, y2) = chart.roof_x, chart.roof_y
    assert (x1, y1) == pytest.approx((2.0, 4.0))  # ridge 100 FLOP/B, peak 10,000 GFLOP/s
    assert y2 == y1 and x2 >= x1 and y1 - y0 == pytest.approx(x1 - x0)
    # the model's attainable rate lies on the sloped roof: y = x + log10(bandwidth GB/s)
    assert chart.model[1] == pytest.approx(chart.model[0] + math.log10(100.0))
    assert chart.xlim[0] <= min(chart.layer_x) and chart.xlim[1] >= x1 and chart.ylim[1] >= y1
    flat = roofline_chart(replace(row, bandwidth_gbps=None, ridge_point=None), layers)
    assert flat.roof_y == [pytest.approx(4.0)] * 2
    assert roofline_chart(replace(row, peak_tflops=None, reason="no int4 peak"), layers).reason == "no int4 peak"
    assert decade_ticks(-1, 2) == ([-1, 0, 1, 2], ["0.1", "1", "10", "100"])
    assert len(decade_ticks(-6, 12)[0]) <= 7


def test_chart_caption_states_the_calibration_behind_the_prediction():
    """The roofline caption names the row's calibration and every number it used, t_op and K when fitted."""
    from embodied_tui.data.records import LayerCost
    from embodied_tui.perf.roofline import Efficiency, Target, fit_model
    from embodied_tui.screens.fit import caption

    costs = [LayerCost(name="conv", type="Conv", macs=10 ** 6, weight_elems=100, read_elems=1000, write_elems=1000),
             LayerCost(name="relu", type="Relu", read_elems=1000, write_elems=1000)]
    record = {"name": "m", "macs": 10 ** 6, "weight_bytes": 400, "dtype_bytes": 4}
    target = Target("host-x", "default", "fp32", "cpu", peak_flops=2e11, bandwidth=3e10)
    eff = Efficiency(0.95, 0.78, 0.003, "host", "test", fit_error=0.076, n_points=8, op_overhead_ms=0.00144,
                     macs_per_output_half=13)
    row = fit_model(record, costs, target, eff)
    lines = caption(row, 1, 3, 0).splitlines()
    assert lines[1] == "calibration host: eta_c/eta_m 0.95/0.78, t0 0.003 ms, t_op 1.44 us x 1, K 13, err 7.6%"
    plain = fit_model(record, costs, target, Efficiency(0.5, 0.7, 0.1, "default", "d"))
    assert caption(plain, 1, 3, 0).splitlines()[1] == "calibration default: eta_c/eta_m 0.5/0.7, t0 0.1 ms"
