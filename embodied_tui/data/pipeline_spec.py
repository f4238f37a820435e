"""The pipeline spec: a robot policy's stages and the control rate it must hold (YAML, validated here).

```yaml
name: openvla-7b            # a name for the result
version: 1
rate_hz: 5                  # required control rate (or period_ms: 200); one of the two
precision: int4             # default weight format of every stage (optional; fp16 when absent)
power_mode: MAXN            # default power mode (optional; the device's default mode when absent)
stages:
  - name: vision            # unique within the spec
    config: ../configs/dinov2-large/config.json   # a Hugging Face style config.json (relative to this file) ...
    # model: yolo-style     # ... or a model registered in the registry (encode only)
    phase: encode           # encode (default) | prefill | decode
    image_size: 224         # encoders from a config: tokens = (image_size / patch)^2 + class/register tokens
    register_tokens: 4      # extra tokens on top of the config's class token
    precision: fp16         # this stage's weight format (overrides the spec's default)
    # weights: awq          # config stages: name the stored weight format itself (awq, gptq, q4_k_m, nvfp4 ...:
                            # perf.weight_formats); its bits replace the precision's, the matmuls still run at it
  - name: llm
    config: ../configs/llama-2-7b/config.json
    phase: prefill
    tokens: 290             # prompt tokens (prefill) or generated tokens (decode)
    context: 0              # tokens already in the KV cache before this stage
    repeat: 1               # runs per inference (an action head's flow/diffusion steps)
    chunk: 1                # actions each inference yields: the stage runs once every `chunk` control steps
```
Every number is a count (tokens, pixels, runs); units are in field names (``_hz``, ``_ms``). No I/O beyond reading the
file; no arithmetic (``services.pipeline`` fits a spec).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from embodied_tui.data.hardware import Precision
from embodied_tui.data.store import error_text
from embodied_tui.data.yaml_file import read_yaml
from embodied_tui.errors import UserError

Phase = Literal["encode", "prefill", "decode"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class StageSpec(_Strict):
    """One stage: what runs (a registered model or a config), which phase, how many tokens and how often."""

    name: str = Field(min_length=1, max_length=80)
    model: str | None = Field(default=None, min_length=1)  # a registered model name
    config: str | None = Field(default=None, min_length=1)  # a config.json path, relative to the spec file
    part: Literal["text", "vision"] | None = None  # which half of a composite config (PaliGemma, SigLIP)
    phase: Phase = "encode"
    tokens: int | None = Field(default=None, gt=0)
    image_size: int | None = Field(default=None, gt=0)
    register_tokens: int = Field(default=0, ge=0)
    context: int = Field(default=0, ge=0)
    repeat: int = Field(default=1, ge=1)
    chunk: int = Field(default=1, ge=1)
    precision: Precision | None = None
    weights: str | None = Field(default=None, min_length=1, max_length=20)  # a perf.weight_formats name
    note: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "StageSpec":
        if (self.model is None) == (self.config is None):
            raise ValueError("give exactly one of model (a registered name) or config (a config.json path)")
        if self.phase in ("prefill", "decode") and self.tokens is None:
            raise ValueError(f"a {self.phase} stage needs tokens: (prompt tokens for prefill, generated for decode)")
        if self.model is not None and self.phase != "encode":
            raise ValueError(f"a registered model runs as phase encode; a {self.phase} stage needs config: "
                             f"(its config.json)")
        if self.model is not None and self.weights is not None:
            raise ValueError("weights applies to config stages; a registered model runs at its record's precision")
        if self.model is not None and (self.tokens or self.image_size or self.register_tokens or self.context):
            raise ValueError("tokens, image_size, register_tokens and context apply to config stages; a registered "
                             "model runs at its registered input shape")
        return self


class PipelineSpec(_Strict):
    """A pipeline: its stages in order and the control rate they must hold together."""

    name: str = Field(min_length=1, max_length=80)
    version: int = Field(default=1, ge=1)
    description: str | None = None
    rate_hz: float | None = Field(default=None, gt=0)
    period_ms: float | None = Field(default=None, gt=0)
    precision: Precision | None = None
    power_mode: str | None = None
    stages: list[StageSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _rate_and_names(self) -> "PipelineSpec":
        if (self.rate_hz is None) == (self.period_ms is None):
            raise ValueError("give exactly one of rate_hz (the control rate to hold) or period_ms")
        seen: set[str] = set()
        for stage in self.stages:
            if stage.name in seen:
                raise ValueError(f"stage name {stage.name!r} is used twice; names must be unique")
            seen.add(stage.name)
        return self

    @property
    def required_rate_hz(self) -> float:
        return self.rate_hz if self.rate_hz is not None else 1000.0 / self.period_ms  # type: ignore[operator]


def parse_spec(data: object, label: str) -> PipelineSpec:
    """Validate already-loaded YAML; a UserError of one line naming ``label`` and the field on failure."""
    if not isinstance(data, dict):
        raise UserError(f"{label}: expected a mapping with name, rate_hz and stages, got {type(data).__name__}")
    try:
        return PipelineSpec.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = error_text(errors[0]).replace("Value error, ", "")
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise UserError(f"{label}: {first}{more}") from None


def load_spec(path: str | Path) -> PipelineSpec:
    """Read and validate a pipeline spec file; one-line UserError naming the file on any problem."""
    label = f"pipeline spec {path}"
    return parse_spec(read_yaml(path, label), label)
