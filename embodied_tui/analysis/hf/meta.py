"""Build a Hugging Face model from its config on the meta device (optional: needs ``transformers``) and count it with
our torch counter: the cross-check of the analytical count (tests/test_hf_config.py) and the fallback for a
``model_type`` that analysis/hf/config.py does not know.

Never imported by the default paths or at app import; never ``trust_remote_code``: a config naming remote code
(``auto_map``) is refused before transformers sees it. Building on meta allocates no weights; the forward runs on meta
tensors under the counting dispatch mode (analysis/torch/counting.py), so nothing is computed.
"""
from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path
from typing import Any

from embodied_tui.errors import AnalysisError


class UnknownType(AnalysisError):
    """transformers does not know the config's model_type either."""


def available() -> bool:
    return importlib.util.find_spec("transformers") is not None


def build_on_meta(config: dict[str, Any], *, causal_lm: bool = True):
    """The model a config describes, its parameters on the meta device (``AutoModelForCausalLM`` for a decoder when
    ``causal_lm``, else ``AutoModel``), eager attention (plain matmuls, which every counter sees)."""
    if config.get("auto_map"):
        raise AnalysisError("config.json names remote code (auto_map); it is never run, not even on the meta device")
    for key in ("num_hidden_layers", "n_layer", "num_layers", "n_layers"):
        value = config.get(key)
        if isinstance(value, int) and value > 10_000:
            raise AnalysisError(f"config.json: {key} = {value} is beyond any model; the config is not one to build")
    for key in ("hidden_size", "intermediate_size", "n_embd", "d_model"):
        value = config.get(key)
        if isinstance(value, int) and value > 1 << 20:
            raise AnalysisError(f"config.json: {key} = {value} is beyond any model; the config is not one to build")
    import torch
    import transformers

    fields = {k: v for k, v in config.items() if k != "model_type"}
    try:
        conf = transformers.AutoConfig.for_model(str(config.get("model_type")), **fields)
    except (ValueError, KeyError, TypeError) as exc:
        raise UnknownType(f"config.json: transformers cannot read it either ({str(exc).splitlines()[0][:120]})") \
            from None
    conf._attn_implementation = "eager"
    with torch.device("meta"):
        if causal_lm:
            try:
                return transformers.AutoModelForCausalLM.from_config(conf, trust_remote_code=False)
            except ValueError:
                pass
        return transformers.AutoModel.from_config(conf, trust_remote_code=False)


@contextlib.contextmanager
def meta_autocast():
    """HF rotary embeddings open ``torch.autocast(device_type=x.device.type, enabled=False)``, which torch refuses for
    the meta device ("unsupported scalarType"). While counting, ``torch.autocast`` takes "meta" as "cpu" (autocast is
    disabled there anyway, so nothing else changes); restored on exit."""
    import torch

    original = torch.autocast

    class _Autocast(original):
        def __init__(self, device_type, *args, **kwargs):
            super().__init__("cpu" if device_type == "meta" else device_type, *args, **kwargs)

    torch.autocast = _Autocast
    try:
        yield
    finally:
        torch.autocast = original


def count_on_meta(model, shape, *, fmt: str = "hf_config", detail: str = "", what: str = "model") -> dict:
    """``analyze_module`` of a model built on meta, with ``meta_autocast``."""
    from embodied_tui.analysis.torch.analyze import analyze_module

    with meta_autocast():
        return analyze_module(model, shape, fmt=fmt, detail=detail, what=what)


def analyze_config(config: dict[str, Any], user_shape, *, path: Path | str = "config.json") -> dict:
    """The analysis fields of a config no analytical counter knows: built on meta, run once on meta token ids
    (1 x 128 by default), counted by the torch counter."""
    from embodied_tui.analysis.api import InputShape
    from embodied_tui.analysis.patterns import classify
    model = build_on_meta(config)
    shape = user_shape or [InputShape([1, 128], "int64")]
    if user_shape and not getattr(user_shape[0], "dtype", None):
        shape = [InputShape(list(user_shape[0]), "int64"), *user_shape[1:]]
    fields = count_on_meta(model, shape, detail=f"Hugging Face config.json ({config.get('model_type')})",
                           what=str(path))
    trace = fields.pop("trace", [])
    fields["architecture"] = classify(trace, fields.get("layers", {}), input_shapes=fields.get("input_shapes", []),
                                      output_shapes=fields.get("output_shapes", []))
    fields["input_shape_source"] = "user" if user_shape else "inferred"
    fields["notes"].insert(0, f"model_type '{config.get('model_type')}' is not counted analytically: built from the "
                              "config with transformers on the meta device (no weights, no remote code) and counted "
                              "by running it on meta tensors")
    fields["counter"] = "transformers on meta -> meta-dispatch"
    return fields
