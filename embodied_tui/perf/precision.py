"""Byte figures of an analysis re-computed at another precision.

Counts are kept at the stored dtype (``dtype_bytes`` per element). At precision P every floating-point tensor takes
``bytes_per_element(P)``: weights, activations and traffic scale by ``P / dtype_bytes``. Integer index tensors (token
ids, BatchNorm's step counter) are scaled too, which overstates or understates them by a few bytes; said in the output.
"""
from __future__ import annotations

from embodied_tui.perf.roofline import bytes_per_element

BYTE_FIELDS = ("weight_bytes", "activation_bytes", "activation_bytes_total", "unfused_bytes", "fused_bytes")


def bytes_at_precision(record, precision: str) -> dict:
    """{field: bytes or None} for the byte fields of an Analysis / ModelRecord at ``precision``."""
    scale = bytes_per_element(precision) / (record.dtype_bytes or 4)
    out = {"precision": precision, "bytes_per_element": bytes_per_element(precision)}
    for name in BYTE_FIELDS:
        value = getattr(record, name, None)
        out[name] = None if value is None else int(round(value * scale))
    return out
