"""Architecture type and family from structural evidence in the op trace (never from class names alone).

The trace (``analysis.trace.TraceOp``, the same from every counter) is first turned into a format-neutral graph
(``graph``: Casts, Quantize/Dequantize pairs and copies looked through), then each detector (``detectors``) looks for
one structure - a residual add, an inverted residual, attention and what feeds it (cross-attention, object queries,
a learned position bias, a causal mask, spatial reduction), window partitions, a DFL box decoder, fire modules,
channel shuffles, parallel branches, a global max over points, a sinusoidal time embedding ... - and reports what it
found as a sentence of evidence. The rules (``rules``) decide type and family from the evidence; layer-type names
(from the census) are only used as a supporting clue for recurrent layers, which ONNX and TorchScript both name.
"""
from __future__ import annotations

from embodied_tui.analysis.patterns.rules import Evidence, decide_family, decide_type, gather
from embodied_tui.analysis.trace import TraceOp
from embodied_tui.data.records import Architecture

__all__ = ["Evidence", "classify", "gather"]


def classify(trace: list[TraceOp], layers: dict[str, int], *, input_shapes=(), output_shapes=()) -> Architecture:
    if not trace:
        return _from_layers(layers)
    ev = gather(trace, layers, list(input_shapes), list(output_shapes))
    arch_type = decide_type(ev.counts)
    family, task, why = decide_family(arch_type, ev.counts, list(input_shapes), list(output_shapes))
    evidence = ev.facts + ([f"=> {why}"] if why else [])
    return Architecture(type=arch_type, family=family, task=task, evidence=evidence)


def _from_layers(layers: dict[str, int]) -> Architecture:
    """No trace (state_dict without a matching architecture): say only what the layer kinds show."""
    kinds = {k.lower(): v for k, v in layers.items()}
    evidence = [f"{v} {k} layers (from tensor names and shapes)" for k, v in layers.items()]
    if kinds.get("multiheadattention"):
        return Architecture(type="transformer", family="transformer", evidence=evidence)
    if kinds.get("recurrent"):
        return Architecture(type="rnn", family="rnn", evidence=evidence)
    if any(k.startswith("conv") for k in kinds):
        return Architecture(type="cnn", family="cnn", evidence=evidence)
    if kinds.get("linear"):
        return Architecture(type="mlp", family="mlp", evidence=evidence)
    return Architecture(evidence=evidence)
