"""The fit rows of a decoder transformer's generation: P prompt tokens prefilled, then K tokens decoded one at a time
(`embodied-ai fit NAME --prompt-tokens P --new-tokens K`). The work and times are ``perf.phases``' (its prefill and
decode rooflines, efficiencies fitted to published LLM rows); this module only picks the tower, the device numbers and
fills a ``FitRow``.

Conventions of a generation row (also in ``CONVENTION``, printed under the table):
- ``prefill_ms``: one pass over the P prompt tokens from an empty KV cache (logits of the last position only);
- ``decode_ms_per_token``: the mean over the K decode passes, the j-th (j = 0 .. K-1) at context P + j (it reads the
  K/V of P + j tokens and writes its own);
- ``predicted_latency_ms`` = ``prefill_ms`` + K x ``decode_ms_per_token``: the whole generation, replacing the one
  forward pass at the registered input shape that a row without the flags predicts; ``roofline_latency_ms`` is the
  pure roofline of the same passes (eta = 1), a lower bound; ``macs``/``flops``/``bytes`` are those of all P + K
  tokens' passes;
- ``kv_cache_bytes``: fp16 K and V of every layer at context P + K (2 x layers x kv_heads x head_dim x 2 bytes per
  token); ``weight_bytes`` the weights at the row's weight format (``perf.phases.stored_weight_bytes``);
  ``fits_memory``: weights + KV cache <= device memory (activations and runtime left out, stated in the note);
- precision names a weight format (``perf.phases``: int8 and int4 are weight-only, W8A16 and W4A16, run at the fp16
  peak), so a row exists for every such precision whose compute peak the device states;
- interval: ``perf.phases`` keeps no residuals per row (only the median |error| of each phase's fit), so the
  interval is ``perf.calibrate.interval``'s fallback for too few residuals (x/÷ 2); basis ``exact`` where the
  device's own published prefill rows fitted its prefill efficiency, ``sibling`` on other Jetsons (fitted on other
  Jetsons), ``defaults`` elsewhere (documented defaults of the device type).
Stored measurements of the model (one forward pass at its registered shape) are not compared with a generation.
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from embodied_tui.analysis.hf import count
from embodied_tui.analysis.hf.tower import Tower
from embodied_tui.data.hardware import PRECISIONS, HardwareEntry, PowerMode
from embodied_tui.data.records import ModelRecord
from embodied_tui.errors import AnalysisError, UserError
from embodied_tui.perf import phases
from embodied_tui.perf.calibrate import interval
from embodied_tui.perf.fit_row import FitRow
from embodied_tui.perf.roofline import empty_fit

CONVENTION = ("generation: pred = prefill of P prompt tokens + K x decode per token (mean over contexts P..P+K-1); "
              "kv = fp16 K/V cache at P+K tokens; fit = weights + KV cache within device memory")


class NotADecoder(UserError):
    """The record is not a decoder transformer with a language-model head: it has no prefill/decode phases."""


def check_tokens(prompt_tokens: int | None, new_tokens: int | None) -> tuple[int, int] | None:
    """``(P, K)`` when both are given, None when neither is; UserError (one line) otherwise."""
    if prompt_tokens is None and new_tokens is None:
        return None
    if prompt_tokens is None or new_tokens is None:
        missing = "--prompt-tokens" if prompt_tokens is None else "--new-tokens"
        raise UserError(f"{missing} is missing: a generation fit needs both --prompt-tokens P and --new-tokens K "
                        "(e.g. --prompt-tokens 128 --new-tokens 64)")
    for flag, value in (("--prompt-tokens", prompt_tokens), ("--new-tokens", new_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{flag} must be a positive whole number of tokens, got {value!r}")
    return prompt_tokens, new_tokens


def generation_precisions(mode: PowerMode) -> list[str]:
    """The precisions a generation row exists for on ``mode``: weight formats ``perf.phases`` knows whose compute
    precision (``phases.COMPUTE_PRECISION``) has a stated peak."""
    return [p for p in PRECISIONS if p in phases.COMPUTE_PRECISION
            and mode.peak_flops(phases.COMPUTE_PRECISION[p]) is not None]


# ---------------------------------------------------------------------------------------------------- the tower

def decoder_tower(record: ModelRecord) -> Tower:
    """The language tower of a registered decoder transformer, read again from its files (JSON and safetensors
    headers only: no code runs): a bare config.json or a folder's config, else the tensor names of a safetensors
    file. ``NotADecoder`` (one line, saying why) for any other record; UserError when its files cannot be read."""
    label = f"{record.name} v{record.version}"
    if record.transformer is None:
        arch = record.architecture
        what = arch.family if arch.family != "unknown" else arch.type
        raise NotADecoder(f"{label} is not a transformer language model ({what}): --prompt-tokens/--new-tokens fit "
                        "the prefill and decode of a decoder transformer; drop them for a one-inference fit")
    path = Path(record.path)
    if not path.exists():
        raise UserError(f"{label}: {path} no longer exists; the generation fit reads the architecture from it "
                        "(register the model again from where it is now)")
    if record.format == "hf_config" and path.is_file():
        from embodied_tui.hashing import sha256_file

        if sha256_file(path) != record.sha256:  # a few KB: the bytes registered, or a clear refusal
            raise UserError(f"{label}: {path} changed since it was registered; register it again to fit the new "
                            "architecture")
    tower = _tower_at(path, label)
    if tower.kind != "decoder" or not tower.lm_head:
        raise NotADecoder(f"{label} is a {tower.model_type} {tower.kind} without a language-model head: it has no "
                        "decode phase; drop --prompt-tokens/--new-tokens")
    return tower


def _tower_at(path: Path, label: str) -> Tower:
    from embodied_tui.analysis.hf.config import read_config, towers
    from embodied_tui.analysis.hf.folder import find

    try:
        source = find(path)
        if source is not None and source.config is not None:
            # the record exists, so the user accepted the config (--trust-code if it names remote code); no code runs
            return towers(read_config(source.config, trust_code=True), str(source.config))[0]
        weights = [source.root / w for w in source.weights] if source is not None else [path]
        if all(w.suffix == ".safetensors" for w in weights):
            from embodied_tui.analysis.hf.infer import infer_tower
            from embodied_tui.analysis.loaders import read_safetensors_header

            shapes = {name: entry[0] for w in weights for name, entry in read_safetensors_header(w)[0].items()}
            tower = infer_tower(shapes)
            if tower is not None:
                return tower
    except AnalysisError as exc:
        raise UserError(f"{label}: {exc}") from None
    raise UserError(f"{label}: its architecture was inferred from {path.name}, which cannot be re-read without "
                    "loading it; register the model's config.json (`embodied-ai model register CONFIG.json`) and fit "
                    "that")


# ---------------------------------------------------------------------------------------------------- the rows

def phase_on(shape, phase: str, tokens: int, precision: str, entry: HardwareEntry, mode: PowerMode, *,
             context: int = 0, weights: str | None = None, patches: int | None = None) -> phases.PhaseFit:
    """``perf.phases.fit_phase`` on a catalog device x mode: the peak of the precision's compute precision, the mode's
    bandwidth and the phase's efficiency on that device (``phases.phase_efficiency``)."""
    return phases.fit_phase(shape, phase, tokens, precision,
                            peak_flops=mode.peak_flops(phases.COMPUTE_PRECISION[precision]),
                            bandwidth=mode.bandwidth_bytes_per_s(), context=context,
                            eff=phases.phase_efficiency(phase, entry.type, entry.id), weights=weights, patches=patches)


def _basis(entry: HardwareEntry) -> tuple[str, str]:
    if entry.id in phases.PREFILL_ETA_BY_DEVICE:
        return "exact", f"prefill efficiency fitted to {entry.id}'s own published rows; decode to 6 Jetsons'"
    if entry.type == "soc":
        return "sibling", "prefill and decode efficiencies fitted to published rows of other Jetsons"
    return "defaults", f"documented {entry.type} defaults (no published LLM row on such a device)"


def generation_row(record: ModelRecord, tower: Tower, entry: HardwareEntry, mode: PowerMode, precision: str,
                   prompt_tokens: int, new_tokens: int) -> FitRow:
    """The row of P prompt tokens + K new tokens of ``tower`` on ``entry`` x ``mode`` x ``precision`` (the module
    docstring states the conventions)."""
    P, K = prompt_tokens, new_tokens
    if tower.learned_positions and P + K > tower.learned_positions:
        raise UserError(f"{record.name} v{record.version}: P + K = {P + K} tokens exceed the {tower.learned_positions} "
                        "positions of its learned position table; ask for fewer tokens")
    base = dict(model=record.name, hardware=entry.id, power_mode=mode.name, precision=precision,
                power_w=mode.power_w, model_version=record.version, hardware_name=entry.name, device_type=entry.type,
                prompt_tokens=P, new_tokens=K)
    kv = count.kv_cache_bytes(tower, P + K, phases.KV_BYTES_PER_ELEMENT)
    if precision not in phases.COMPUTE_PRECISION:
        return _empty(base, kv, f"no generation fit at {precision}: perf.phases knows the weight formats "
                                f"{', '.join(phases.COMPUTE_PRECISION)}")
    compute = phases.COMPUTE_PRECISION[precision]
    peak, bw = mode.peak_flops(compute), mode.bandwidth_bytes_per_s()
    prefill = phase_on(tower, "prefill", P, precision, entry, mode)
    decode = phase_on(tower, "decode", K, precision, entry, mode, context=P)
    weights = phases.stored_weight_bytes(tower, precision)
    fits, note = _memory(entry, weights, kv)
    notes = [CONVENTION, f"{precision}: weights {phases.weight_format_of(precision).name}, matmuls at the {compute} "
             "peak (perf.phases)", "activation_bytes: not estimated for a generation (memory: weights + KV cache)"]
    if tower.max_positions and P + K > tower.max_positions:
        notes.append(f"P + K = {P + K} tokens exceed the {tower.max_positions} positions the config states")
    if prefill.predicted_ms is None or decode.predicted_ms is None:
        return _empty(base, kv, prefill.reason or decode.reason, weights=weights, fits=fits, note=note, notes=notes)
    decode_per_token = decode.predicted_ms / K
    pred = prefill.predicted_ms + K * decode_per_token  # the contract, computed from the stored fields
    macs, work_bytes = prefill.macs + decode.macs, prefill.bytes + decode.bytes
    by_bound = {"compute": 0.0, "memory": 0.0}
    for phase in (prefill, decode):
        by_bound[phase.bound if phase.bound in by_bound else "memory"] += phase.predicted_ms
    lo, hi, how = interval([])
    basis, detail = _basis(entry)
    eta_c = phases.phase_efficiency("prefill", entry.type, entry.id).eta_compute
    eta_m = phases.phase_efficiency("decode", entry.type, entry.id).eta_memory
    return FitRow(
        **base, macs=macs, flops=2 * macs, other_flops=None, bytes=work_bytes, fused_bytes=None,
        traffic_bytes=work_bytes, fusion=None, weight_bytes=weights, activation_bytes=None,
        arithmetic_intensity=2 * macs / work_bytes if work_bytes else None, arithmetic_intensity_fused=None,
        peak_tflops=peak / 1e12, bandwidth_gbps=bw / 1e9, ridge_point=peak / bw, attainable_tflops=None,
        bound=max(by_bound, key=lambda k: by_bound[k]), roofline_latency_ms=prefill.roofline_ms + decode.roofline_ms,
        predicted_latency_ms=pred, fps=None, energy_mj=None if mode.power_w is None else mode.power_w * pred,
        fits_memory=fits, memory_note=note, calibration="phases",
        calibration_source=f"{prefill.efficiency_source} | {decode.efficiency_source}", eta_compute=eta_c,
        eta_memory=eta_m, overhead_ms=0.0, time_compute_ms=by_bound["compute"], time_memory_ms=by_bound["memory"],
        notes=tuple(notes), interval_low_ms=pred * math.exp(lo), interval_high_ms=pred * math.exp(hi), basis=basis,
        basis_detail=f"{detail}; interval: perf.phases keeps no per-row residuals, {how}",
        prefill_ms=prefill.predicted_ms, decode_ms_per_token=decode_per_token, kv_cache_bytes=kv)


def _memory(entry: HardwareEntry, weights: float, kv: int) -> tuple[bool | None, str]:
    if entry.memory_bytes is None:
        return None, "device memory not stated"
    fits = weights + kv <= entry.memory_bytes
    return fits, (f"weights {weights / 1e6:.1f} MB + KV cache {kv / 1e6:.1f} MB {'<=' if fits else '>'} "
                  f"{entry.memory_bytes / 1e9:.1f} GB (activations and runtime not counted)")


def _empty(base: dict, kv: int, reason: str, *, weights: float | None = None, fits: bool | None = None,
           note: str = "", notes: list[str] | None = None) -> FitRow:
    row = empty_fit(base["model"], base["hardware"], base["power_mode"], base["precision"], base["power_w"], None,
                    reason)
    return replace(row, **{k: v for k, v in base.items() if k not in ("model", "hardware", "power_mode", "precision",
                                                                      "power_w")},
                   weight_bytes=weights, fits_memory=fits, memory_note=note, notes=tuple(notes or (CONVENTION,)),
                   kv_cache_bytes=kv)
