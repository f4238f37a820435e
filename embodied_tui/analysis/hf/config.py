"""Read a Hugging Face ``config.json`` safely and normalise it into ``Tower``s: one typed record per transformer stack.

Safety: the file is read as JSON only (never imported, never executed), at most ``CONFIG_LIMIT`` bytes, and must be a
JSON object. A config with ``auto_map`` names remote Python code (``trust_remote_code`` in transformers): it is
refused unless the user passes ``--trust-code``, and even then no code runs here: a known ``model_type`` is counted
from its numbers alone.

Families: decoders Llama (and SmolLM, which is ``llama``), Mistral, Qwen2, Qwen3, Gemma, Gemma2, Gemma3 (text),
Phi-3, GPT-2, and the MoE decoders Mixtral, Qwen2-MoE, Qwen3-MoE; encoders BERT, DistilBERT, RoBERTa, ViT, DINOv2
(with or without registers) and the SigLIP / CLIP vision towers; openpi's Gemma action expert (``openpi_gemma``: a
Gemma stack with its own sizes and no vocabulary, every size required). A VLM config's ``text_config`` and ``vision_config`` are read as towers of their own.
Defaults for missing keys are transformers' own config defaults (tests/test_hf_config.py compares them with
transformers 4.57's config classes).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from embodied_tui.analysis.hf.families import BUILDERS, brief, build
from embodied_tui.analysis.hf.tower import Tower
from embodied_tui.errors import AnalysisError

__all__ = ["CONFIG_LIMIT", "Tower", "brief", "parse_config_text", "read_config", "supported", "towers"]
CONFIG_LIMIT = 4 << 20  # bytes: real configs are a few KB; anything larger is not a config


# ------------------------------------------------------------------------------------------------ reading the file
def read_config(path: Path, *, trust_code: bool = False) -> dict[str, Any]:
    """The parsed ``config.json``: a JSON object of at most ``CONFIG_LIMIT`` bytes. AnalysisError (one line) for
    anything else, and for a config naming remote code (``auto_map``) unless ``trust_code``."""
    try:
        size = path.stat().st_size
        if size > CONFIG_LIMIT:
            raise AnalysisError(f"{path}: {size} bytes is far larger than any config.json (limit {CONFIG_LIMIT}); "
                                "give the model's real config.json")
        with path.open("rb") as fh:
            raw = fh.read(CONFIG_LIMIT + 1)
    except OSError as exc:
        raise AnalysisError(f"{path}: cannot be read ({exc.strerror or exc}); check the path") from None
    return parse_config_text(raw, path, trust_code=trust_code)


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_config_text(raw: bytes, path: Path | str, *, trust_code: bool = False) -> dict[str, Any]:
    if len(raw) > CONFIG_LIMIT:
        raise AnalysisError(f"{path}: larger than any config.json (limit {CONFIG_LIMIT} bytes)")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        raise AnalysisError(f"{path}: not valid JSON ({why}); re-download config.json or fix it") from None
    if not isinstance(data, dict):
        raise AnalysisError(f"{path}: config.json must hold a JSON object, not a {type(data).__name__}")
    if data.get("auto_map") and not trust_code:
        raise AnalysisError(f"{path}: config.json names remote code (auto_map: {brief(data['auto_map'])}); "
                            "embodied-ai never runs it. Pass --trust-code to count the architecture from the config's "
                            "numbers alone (no code is run)")
    return data


# ------------------------------------------------------------------------------------------------ normalising
def towers(config: dict[str, Any], where: str = "config.json") -> list[Tower]:
    """The config's towers, the language tower first. AnalysisError for an unknown ``model_type`` (naming the supported
    ones) or for numbers no model can have."""
    model_type = config.get("model_type")
    out: list[Tower] = []
    text = config.get("text_config")
    vision = config.get("vision_config")
    if model_type in BUILDERS:
        out.append(build(config, str(model_type), where))
    elif isinstance(text, dict) or isinstance(vision, dict):
        if isinstance(text, dict):
            text_type = text.get("model_type") or _TEXT_OF.get(str(model_type))
            if text_type not in BUILDERS:
                raise unsupported(text_type, f"{where} text_config")
            out.append(build({**text, "model_type": text_type, "torch_dtype": text.get("torch_dtype") or
                               config.get("torch_dtype")}, text_type, f"{where} text_config"))
    else:
        raise unsupported(model_type, where)
    if isinstance(vision, dict) and model_type not in BUILDERS:
        vision_type = vision.get("model_type") or _VISION_OF.get(str(model_type))
        if vision_type not in BUILDERS:
            raise unsupported(vision_type, f"{where} vision_config")
        out.append(build({**vision, "torch_dtype": vision.get("torch_dtype") or config.get("torch_dtype")},
                          vision_type, f"{where} vision_config"))
    return out


def unsupported(model_type: Any, where: str) -> AnalysisError:
    return AnalysisError(f"{where}: model_type '{brief(model_type)}' is not one we count from a config; supported: "
                         f"{', '.join(sorted(BUILDERS))} (with transformers installed, other types are built on the "
                         "meta device instead)")


def supported(model_type: str) -> bool:
    return model_type in BUILDERS


_TEXT_OF = {"gemma3": "gemma3_text"}
_VISION_OF = {"gemma3": "siglip_vision_model", "siglip": "siglip_vision_model", "clip": "clip_vision_model"}
