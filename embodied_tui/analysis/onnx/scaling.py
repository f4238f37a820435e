"""ONNX files: ``records.Scaling`` entries for the sequence-like symbolic dims of the graph inputs (the rule and the
fit: ``analysis.scaling``). Each extra count reshapes and recosts the weightless graph ``count_onnx`` kept
(``keep_graph=True``) by the counter's own pipeline (``onnx.counting.macs_at``): three counts, a fourth only when the
length the analysis used is one of the three."""
from __future__ import annotations

from pathlib import Path

from embodied_tui.analysis.onnx.counting import OnnxCount, macs_at
from embodied_tui.analysis.scaling import fit_scaling
from embodied_tui.data.records import Scaling


def onnx_scaling(count: OnnxCount, path: Path) -> list[Scaling] | None:
    """One ``Scaling`` per sequence-like symbol of the file's inputs; None when there is none, or none fits."""
    if count.stripped is None:
        return None
    return fit_scaling(count.input_names, count.input_symbols, count.input_dtypes, count.input_shapes,
                       count.macs if count.macs_complete else None,
                       lambda shapes: macs_at(count.stripped, shapes, path))
