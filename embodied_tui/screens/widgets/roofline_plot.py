"""The roofline chart of one fit row: the device's roof, the model's layers as points and the whole model marked.

Plotext 5's log scale breaks on redraw, so the chart plots log10 values on linear axes and labels the ticks with
powers of ten. Every number comes from the fit row (``perf.fit_row.FitRow`` of
``services.fit.fit_rows``; its per-layer ``LayerFit`` rows with ``with_layers=True``), computed by ``perf.roofline``:

- x: arithmetic intensity, FLOP per byte (layers: ``arithmetic_intensity``, the layer's FLOPs over the bytes it is
  charged; the model: ``arithmetic_intensity``, FLOPs over unfused bytes);
- y: GFLOP/s (the rows' TFLOP/s x 1000). The roof is ``min(peak, intensity x bandwidth)``: flat at ``peak_tflops``
  and, left of ``ridge_point``, a line of slope 1 in log-log through the ridge (no DRAM: flat only). A layer sits at
  ``predicted_tflops``, the rate of its MAC work at its predicted time (under the roof); the model sits on the roof
  at ``attainable_tflops``. Layers without MAC work (no FLOPs to place) are counted, not drawn. Integer precisions
  (int8, int4) count operations, not floating-point ones: the axis reads GOP/s there.

The axes can be fixed over many rows (``chart_limits``: every row's layers, model point, ridge and peak), so stepping
through a fit table's rows keeps the scale and rows compare by eye. The title names the row, its predicted latency and
its bound. Where ``screens.glyphs.ascii_only()`` (TERM=linux, a Jetson's console) the chart is drawn in ASCII: the roof
with '.', and plotext's box-drawing frame translated to '-', '|' and '+'.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.text import Text
from textual_plotext import PlotextPlot

from embodied_tui import units as fmt
from embodied_tui.data.hardware import INTEGER_PRECISIONS
from embodied_tui.perf.fit_row import FitRow, LayerFit
from embodied_tui.screens.glyphs import ascii_only, ascii_plot

LAYER_MARKER = "o"
MODEL_MARKER = "M"
ROOF_MARKER, ASCII_ROOF_MARKER = "braille", "."
TITLE_MARGIN = 12  # cells of the widget's width plotext's centred title cannot use (y tick labels, frame); a longer
# title is dropped whole, so it is clipped to fit
MAX_TICKS = 7
TERA_TO_GIGA = 1e3  # the rows give TFLOP/s; the chart reads GFLOP/s


def _log(value: float | None) -> float | None:
    return math.log10(value) if value is not None and value > 0 and math.isfinite(value) else None


def work_unit(precision: str) -> str:
    """What the chart counts: OP for integer precisions (int8, int4: operations), FLOP for the rest."""
    return "OP" if precision in INTEGER_PRECISIONS else "FLOP"


def rate_unit(precision: str) -> str:
    """The chart's rate unit: GOP/s for integer precisions, GFLOP/s for the rest."""
    return f"G{work_unit(precision)}/s"


def decade_ticks(lo: int, hi: int) -> tuple[list[int], list[str]]:
    """Integer powers of ten from ``lo`` to ``hi`` (every other one when there are many) and their labels."""
    step = max(1, math.ceil((hi - lo + 1) / MAX_TICKS))
    ticks = list(range(lo, hi + 1, step))
    return ticks, [fmt.decade(t) for t in ticks]


@dataclass
class RooflineChart:
    """What the chart draws, in log10 units. ``reason`` says why there is nothing to draw."""

    title: str  # device, power mode and precision
    heading: str = ""  # what the chart shows on top: the title, the predicted latency and the bound
    y_label: str = "attainable GFLOP/s"
    x_label: str = "FLOP/byte"
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


@dataclass(frozen=True)
class ChartLimits:
    """Axis limits (log10, whole decades) shared by the charts of several rows, and how many rows they cover."""

    xlim: tuple[int, int]
    ylim: tuple[int, int]
    rows: int


def _limits(xs: list[float], ys: list[float]) -> tuple[tuple[int, int], tuple[int, int]]:
    """Whole decades around the points with at least a quarter decade of margin."""
    xs = xs or [0.0]
    return ((math.floor(min(xs) - 0.25), math.ceil(max(xs) + 0.25)),
            (math.floor(min(ys) - 0.25), math.ceil(max(ys) + 0.25)))


def _layer_points(layers: Sequence[LayerFit]) -> tuple[list[float], list[float], int]:
    """Log10 intensity and rate of the layers that have MAC work to place, and how many have none."""
    xs, ys, skipped = [], [], 0
    for layer in layers:
        rate = layer.predicted_tflops
        x, y = _log(layer.arithmetic_intensity), _log(None if rate is None else rate * TERA_TO_GIGA)
        if x is None or y is None:
            skipped += 1
            continue
        xs.append(x)
        ys.append(y)
    return xs, ys, skipped


def _model_point(row: FitRow) -> tuple[float, float] | None:
    attainable = row.attainable_tflops
    mx, my = _log(row.arithmetic_intensity), _log(None if attainable is None else attainable * TERA_TO_GIGA)
    return None if mx is None or my is None else (mx, my)


def _extent(row: FitRow, layers: Sequence[LayerFit]) -> tuple[list[float], list[float]] | None:
    """Every x and y the row's chart must show (layers, model, ridge, peak); None: the row has no chart."""
    peak = _log(None if row.peak_tflops is None else row.peak_tflops * TERA_TO_GIGA)
    if peak is None:
        return None
    xs, ys, _ = _layer_points(layers)
    model, ridge = _model_point(row), _log(row.ridge_point)
    if model:
        xs, ys = xs + [model[0]], ys + [model[1]]
    return xs + ([ridge] if ridge is not None else []), ys + [peak]


def chart_limits(rows: Sequence[FitRow]) -> ChartLimits | None:
    """Axis limits holding every row's chart (each row with its per-layer rows, ``with_layers=True``), so stepping
    through the rows keeps the axes; None when no row has a chart."""
    xs: list[float] = []
    ys: list[float] = []
    n = 0
    for row in rows:
        extent = _extent(row, row.layers)
        if extent is not None:
            xs += extent[0]
            ys += extent[1]
            n += 1
    if not n:
        return None
    xlim, ylim = _limits(xs, ys)
    return ChartLimits(xlim, ylim, n)


def roofline_chart(row: FitRow, layers: Sequence[LayerFit], limits: ChartLimits | None = None) -> RooflineChart:
    """The chart of one fit row (``services.fit.fit_rows``) and its per-layer rows; on ``limits`` (``chart_limits``
    of the rows it is compared with) or, without them, on axes fitted to this row alone."""
    title = f"{row.hardware} {row.power_mode} {row.precision}"
    predicted = row.predicted_latency_ms
    heading = (f"{title}: {fmt.ms(predicted)} ms predicted, {row.bound or fmt.NA}-bound" if predicted is not None
               else f"{title}: no prediction")
    extent = _extent(row, layers)
    if extent is None:
        return RooflineChart(title, heading, reason=row.reason or "no peak rate stated for this precision")
    chart = RooflineChart(title, heading, y_label=f"attainable {rate_unit(row.precision)}",
                          x_label=f"{work_unit(row.precision)}/byte")
    chart.layer_x, chart.layer_y, chart.layers_not_drawn = _layer_points(layers)
    chart.model = _model_point(row)
    peak = math.log10(row.peak_tflops * TERA_TO_GIGA)
    ridge = _log(row.ridge_point)
    chart.xlim, chart.ylim = (limits.xlim, limits.ylim) if limits is not None else _limits(*extent)
    (x_lo, x_hi), (y_lo, _) = chart.xlim, chart.ylim
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
        self.title_text = ""  # set by plot(), clipped to the width at each render

    def plot(self, chart: RooflineChart | None, message: str = "") -> None:
        """Draw ``chart`` (None: an empty frame titled ``message``). Titles are escaped: plotext's output is read back
        as ANSI, so a control sequence in a device name would act."""
        self.chart = chart
        self.title_text = ""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if chart is None or chart.reason:
            self.title_text = fmt.safe_text(message or (chart.reason if chart else ""))
            self.refresh()
            return
        self.title_text = fmt.safe_text(chart.heading or chart.title)
        roof_marker = ASCII_ROOF_MARKER if ascii_only() else ROOF_MARKER
        plt.plot(chart.roof_x, chart.roof_y, marker=roof_marker, label="roof")
        if chart.layer_x:
            plt.scatter(chart.layer_x, chart.layer_y, marker=LAYER_MARKER, label="layers at predicted rate")
        if chart.model:
            plt.scatter([chart.model[0]], [chart.model[1]], marker=MODEL_MARKER, label="model at attainable rate")
        plt.xlim(*chart.xlim)
        plt.ylim(*chart.ylim)
        plt.xticks(*chart.x_ticks)
        plt.yticks(*chart.y_ticks)
        plt.xlabel(chart.x_label)
        plt.ylabel(chart.y_label)
        self.refresh()

    def render(self):
        """plotext's drawing; its box-drawing frame in ASCII where the terminal has no such glyphs."""
        self.plt.title(fmt.clip(self.title_text, max(self.size.width - TITLE_MARGIN, 8)))
        text = super().render()
        if not ascii_only() or not isinstance(text, Text):
            return text
        return Text(ascii_plot(text.plain), style=text.style, justify=text.justify,
                    no_wrap=text.no_wrap, end=text.end, spans=list(text.spans))
