"""MACs by layer type: a horizontal plotext bar chart (largest at the top) of the model's per-layer costs. Where
``screens.glyphs.ascii_only()`` (TERM=linux) its frame and bars are drawn in ASCII ('-', '|', '+', '#')."""
from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual_plotext import PlotextPlot

from embodied_tui import units as fmt
from embodied_tui.data.records import LayerCost
from embodied_tui.screens.glyphs import ascii_only, ascii_plot

MAX_BARS = 10
UNIT_WORDS = {"": "count", "k": "thousands", "M": "millions", "G": "billions", "T": "trillions"}


def macs_by_type(layer_costs: Sequence[LayerCost]) -> list[tuple[str, int]]:
    """Per layer type, the MACs of its layers; types with no MACs are left out; largest first."""
    totals: dict[str, int] = {}
    for cost in layer_costs:
        if cost.macs:
            totals[cost.type] = totals.get(cost.type, 0) + cost.macs
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))


class TypeBars(PlotextPlot):
    can_focus = False

    def plot(self, totals: Sequence[tuple[str, int]]) -> None:
        """Bars for the largest MAX_BARS types (the rest summed into 'N other types'), in k/M/G MACs by size."""
        shown = list(totals[:MAX_BARS])
        rest = sum(m for _, m in totals[MAX_BARS:])
        if rest:
            shown.append((f"{len(totals) - MAX_BARS} other types", rest))
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        scale, unit = fmt.count_scale(max((m for _, m in shown), default=0))
        if shown:
            # plotext draws the first bar at the bottom; its output is read back as ANSI: layer types are escaped
            names = [fmt.safe_text(name) for name, _ in reversed(shown)]
            values = [macs / scale for _, macs in reversed(shown)]
            plt.bar(names, values, orientation="horizontal", width=0.6)
        plt.title(f"MACs by layer type ({UNIT_WORDS[unit]})")
        self.refresh()

    def render(self):
        """plotext's drawing; frame and bars in ASCII where the terminal has no box-drawing or block glyphs."""
        text = super().render()
        if not ascii_only() or not isinstance(text, Text):
            return text
        return Text(ascii_plot(text.plain), style=text.style, justify=text.justify, no_wrap=text.no_wrap,
                    end=text.end, spans=list(text.spans))
