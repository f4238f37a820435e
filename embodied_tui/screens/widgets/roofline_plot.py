"""The roofline chart of one fit row: the device's roof, the model's layers as points and the whole model marked.

Plotext 5's log scale breaks on redraw, so the chart plots log10 values on linear axes and labels the ticks with
powers of ten. Every number comes from the fit row (``perf.fit_row.FitRow`` of
``services.fit.fit_rows``; its per-layer ``LayerFit`` rows with ``with_layers=True``), computed by ``perf.roofline``:

- x: arithmetic intensity, FLOP per byte (layers: ``arithmetic_intensity``, the layer's FLOPs over the bytes it is
  charged; the model: ``arithmetic_intensity``, FLOPs over unfused bytes);
- y: GFLOP/s (the rows' TFLOP/s x 1000). The roof is ``min(peak, intensity x bandwidth)``: flat at ``peak_tflops``
  and, left of ``ridge_point``, a line of slope 1 in log-log through the ridge (no DRAM: flat only). A layer sits at
  ``predicted_tflops``, the rate of its MAC work at its predicted time (under the roof); the model sits on the roof
  at ``attainable_tflops``. Layers without MAC work (no FLOPs to place) are counted, not drawn.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from textual_plotext import PlotextPlot

from embodied_tui import units as fmt
from embodied_tui.perf.fit_row import FitRow, LayerFit

LAYER_MARKER = "o"
MODEL_MARKER = "M"
MAX_TICKS = 7
TERA_TO_GIGA = 1e3  # the rows give TFLOP/s; the chart reads GFLOP/s


def _log(value: float | None) -> float | None:
    return math.log10(value) if value is not None and value > 0 and math.isfinite(value) else None


def decade_ticks(lo: int, hi: int) -> tuple[list[int], list[str]]:
    """Integer powers of ten from ``lo`` to ``hi`` (every other one when there are many) and their labels."""
    step = max(1, math.ceil((hi - lo + 1) / MAX_TICKS))
    ticks = list(range(lo, hi + 1, step))
    return ticks, [fmt.decade(t) for t in ticks]


@dataclass
class RooflineChart:
    """What the chart draws, in log10 units. ``reason`` says why there is nothing to draw."""

    title: str
    roof_x: list[float] = field(default_factory=list)
    roof_y: list[float] = field(default_factory=list)
    layer_x: list[float] = field(default_factory=list)
    layer_y: list[float] = field(default_factory=list)
    model: tuple[float, float] | None = None
    xlim: tuple[int, int] = (0, 1)
    ylim: tuple[int, int] = (0, 1)
    layers_not_drawn: int = 0
    reason: str | None = None

    @property
    def x_ticks(self) -> tuple[list[int], list[str]]:
        return decade_ticks(*self.xlim)

    @property
    def y_ticks(self) -> tuple[list[int], list[str]]:
        return decade_ticks(*self.ylim)


def roofline_chart(row: FitRow, layers: Sequence[LayerFit]) -> RooflineChart:
    """The chart of one fit row (``services.fit.fit_rows``) and its per-layer rows."""
    title = f"{row.hardware} {row.power_mode} {row.precision}"
    peak = _log(None if row.peak_tflops is None else row.peak_tflops * TERA_TO_GIGA)
    if peak is None:
        return RooflineChart(title, reason=row.reason or "no peak rate stated for this precision")
    chart = RooflineChart(title)
    for layer in layers:
        rate = layer.predicted_tflops
        x, y = _log(layer.arithmetic_intensity), _log(None if rate is None else rate * TERA_TO_GIGA)
        if x is None or y is None:
            chart.layers_not_drawn += 1
            continue
        chart.layer_x.append(x)
        chart.layer_y.append(y)
    attainable = row.attainable_tflops
    mx, my = _log(row.arithmetic_intensity), _log(None if attainable is None else attainable * TERA_TO_GIGA)
    if mx is not None and my is not None:
        chart.model = (mx, my)
    ridge = _log(row.ridge_point)
    xs = chart.layer_x + ([mx] if chart.model else []) + ([ridge] if ridge is not None else [])
    ys = chart.layer_y + ([my] if chart.model else [])
    xs = xs or [0.0]
    x_lo, x_hi = math.floor(min(xs) - 0.25), math.ceil(max(xs) + 0.25)
    y_lo, y_hi = math.floor(min(ys + [peak]) - 0.25), math.ceil(peak + 0.25)
    chart.xlim, chart.ylim = (x_lo, x_hi), (y_lo, y_hi)
    if ridge is None:  # no DRAM: compute is the only roof
        chart.roof_x, chart.roof_y = [x_lo, x_hi], [peak, peak]
    else:  # slope 1 in log-log up to the ridge, flat after it; the sloped part starts where it enters the chart
        start = max(x_lo, ridge - (peak - y_lo))
        chart.roof_x = [start, ridge, max(ridge, x_hi)]
        chart.roof_y = [peak - (ridge - start), peak, peak]
    return chart


class RooflinePlot(PlotextPlot):
    can_focus = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.chart: RooflineChart | None = None

    def plot(self, chart: RooflineChart | None, message: str = "") -> None:
        """Draw ``chart`` (None: an empty frame titled ``message``). Titles are escaped: plotext's output is read back
        as ANSI, so a control sequence in a device name would act."""
        self.chart = chart
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if chart is None or chart.reason:
            plt.title(fmt.safe_text(message or (chart.reason if chart else "")))
            self.refresh()
            return
        plt.title(fmt.safe_text(chart.title))
        plt.plot(chart.roof_x, chart.roof_y, marker="braille", label="roof")
        if chart.layer_x:
            plt.scatter(chart.layer_x, chart.layer_y, marker=LAYER_MARKER, label="layers at predicted rate")
        if chart.model:
            plt.scatter([chart.model[0]], [chart.model[1]], marker=MODEL_MARKER, label="model at attainable rate")
        plt.xlim(*chart.xlim)
        plt.ylim(*chart.ylim)
        plt.xticks(*chart.x_ticks)
        plt.yticks(*chart.y_ticks)
        plt.xlabel("FLOP/byte")
        plt.ylabel("GFLOP/s")
        self.refresh()
