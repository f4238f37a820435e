"""Recognise a zoo architecture from a checkpoint's state_dict key names and shapes alone.

Signatures (key -> shape) are taken from models built on the meta device, so no weights are allocated, and cached.
``num_batches_tracked`` buffers are ignored on both sides (older checkpoints lack them), and a ``module.`` prefix on
every key (DataParallel / DDP checkpoints) is removed. A checkpoint with a different class count matches when only the
entry's ``class_keys`` differ, all in their first dimension and all by the same count.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from .registry import BUILDERS

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Match:
    name: str
    num_classes: int | None  # read from the class head; None when the entry has no class head


@lru_cache(maxsize=None)
def signature(name: str) -> Mapping[str, Shape]:
    """The state_dict shapes of zoo entry ``name`` (without ``num_batches_tracked``), built on the meta device."""
    import torch

    with torch.device("meta"):
        model = BUILDERS[name].build()
    return MappingProxyType({k: tuple(v.shape) for k, v in model.state_dict().items()
                             if not k.endswith("num_batches_tracked")})


def normalise(state: Mapping[str, Any]) -> dict[str, Shape]:
    """Keys -> shapes from a mapping of tensors or of shapes; drops ``num_batches_tracked`` and a shared ``module.``."""
    shapes = {k: tuple(int(d) for d in (v.shape if hasattr(v, "shape") else v)) for k, v in state.items()
              if not k.endswith("num_batches_tracked")}
    if shapes and all(k.startswith("module.") for k in shapes):
        shapes = {k[len("module."):]: v for k, v in shapes.items()}
    return shapes


def _class_count(shapes: Mapping[str, Shape], sig: Mapping[str, Shape], class_keys: Sequence[str]) -> int | None:
    """The class count if ``shapes`` equals ``sig`` apart from a consistent first dim of ``class_keys``; else None."""
    if shapes.keys() != sig.keys():
        return None
    counts = set()
    for key, shape in shapes.items():
        ref = sig[key]
        if key in class_keys:
            if len(shape) != len(ref) or not shape or shape[1:] != ref[1:] or shape[0] < 1:
                return None
            counts.add(shape[0])
        elif shape != ref:
            return None
    if len(counts) > 1:
        return None
    return counts.pop() if counts else -1  # -1: matched, no class head


def identify_state_dict(state: Mapping[str, Any]) -> Match | None:
    """The first zoo entry whose state_dict has exactly these keys and shapes (class count free), or None."""
    shapes = normalise(state)
    if not shapes:
        return None
    for name, builder in BUILDERS.items():
        if builder.same_weights_as is not None:
            continue
        if builder.class_keys and not all(k in shapes for k in builder.class_keys):
            continue  # cheap pre-check: the head is missing, so skip building this signature
        count = _class_count(shapes, signature(name), builder.class_keys)
        if count is not None:
            return Match(name, count if builder.class_keys else None)
    return None


def match_state_dict(shapes: Mapping[str, Any]) -> str | None:
    """The BUILDERS name whose state_dict has exactly these keys and shapes (any class count), or None."""
    found = identify_state_dict(shapes)
    return found.name if found else None
