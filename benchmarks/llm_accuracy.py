"""How well do the LLM phase rooflines predict published prefill and decode latencies?

    .venv/bin/python benchmarks/llm_accuracy.py [--json]

Reads the published rows of scope ``decode_per_token`` and ``prefill`` (``embodied_tui/data/published/latency.csv``)
whose model has a config in ``examples/configs/`` (``CONFIGS`` below) and whose precision is stated. For each row:
the device and power mode from the catalog (the device's default mode where the source names none), the architecture
from the config, the work from ``perf.phases`` (``analysis.hf.count`` under its "runtime" convention; decode:
``GENERATED`` tokens after a ``PROMPT``-token prompt, the per-token mean, with the context the row's notes state,
else a 16-token prompt; prefill: the prompt length the notes state).

Prints, per phase: the fit over every row (the numbers ``perf.phases.DECODE_EFFICIENCY`` holds), each row's
measured, pure roofline and leave-one-out prediction (the efficiency fitted to every *other* row), and the median and
worst leave-one-out |error|. Rows that cannot be used are listed with the reason.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from embodied_tui.data.hardware import find_device  # noqa: E402
from embodied_tui.data.published import load_published  # noqa: E402
from embodied_tui.perf import phases  # noqa: E402
from embodied_tui.services.pipeline import fit_pipeline, load_shape  # noqa: E402

PIPELINES = {"OpenVLA-7B": "openvla-7b.yaml", "pi0.5 (openpi pi05_libero)": "pi05.yaml"}  # published end-to-end model -> examples/pipelines spec

CONFIGS = {  # published model name -> examples/configs/<folder>
    "Llama 3.2 3B": "llama-3.2-3b",
    "Llama 3.1 8B": "llama-3.1-8b",
    "Llama-3.1-8B-Instruct": "llama-3.1-8b",
    "SmolLM2-135M": "smollm2-135m",
    "Qwen2.5 7B": "qwen2.5-7b",
    "Gemma 2 2B": "gemma-2-2b",
    "Gemma 2 9B": "gemma-2-9b",
    "Phi 3.5 3B": "phi-3.5-mini",
    "Qwen3-0.6B": "qwen3-0.6b",
    "Qwen3-1.7B": "qwen3-1.7b",
    "Qwen3-4B-Instruct-2507": "qwen3-4b-instruct-2507",
    "Qwen3-8B": "qwen3-8b",
}
PROMPT, GENERATED = 16, 128
# the lengths the sources state, quoted in each row's notes (latency.csv has no column for them yet)
_PROMPT_RE = re.compile(r"for ([\d,]+) (?:prompt )?tokens")
_CONTEXT_RE = re.compile(r"past KV length ([\d,]+)")


def lengths(notes: str | None) -> tuple[int | None, int | None]:
    """(prompt tokens of a prefill, context of a decode) as the row's notes state them, else None."""
    notes = notes or ""
    prompt = _PROMPT_RE.search(notes)
    context = _CONTEXT_RE.search(notes) or prompt
    return (None if prompt is None else int(prompt.group(1).replace(",", "")),
            None if context is None else int(context.group(1).replace(",", "")))


def _shape(model: str) -> phases.TransformerShape:
    path = ROOT / "examples" / "configs" / CONFIGS[model] / "config.json"
    return load_shape(path, model, phase="decode")


def usable_points(scope: str) -> tuple[list[dict], list[str]]:
    """Rows of ``scope`` as fit points (x: pure roofline ms of the binding resource per pass, y: measured ms)."""
    points, skipped = [], []
    for row in load_published():
        if row.scope != scope:
            continue
        prompt, past = lengths(row.notes)
        if prompt is None and scope == "prefill":
            skipped.append(f"{row.id}: the notes state no prompt length")
            continue
        if row.model not in CONFIGS:
            skipped.append(f"{row.id}: no config for {row.model!r} in examples/configs")
            continue
        if row.precision not in phases.WEIGHT_BITS:
            skipped.append(f"{row.id}: precision {row.precision or 'not stated'} has no weight format here")
            continue
        entry = find_device(row.device)
        mode = entry.mode(row.power_mode)
        shape = _shape(row.model)
        peak = mode.peak_flops(phases.COMPUTE_PRECISION[row.precision])
        bandwidth = mode.bandwidth_bytes_per_s()
        if scope == "decode_per_token":  # the mean token of GENERATED after the stated context (else PROMPT)
            tokens, context, phase = GENERATED, past or PROMPT, "decode"
        else:
            tokens, context, phase = prompt, 0, "prefill"
        pure = phases.fit_phase(shape, phase, tokens, row.precision, peak_flops=peak, bandwidth=bandwidth,
                                context=context, eff=phases.PhaseEfficiency(1, 1, 0, "pure"))
        x = (pure.memory_ms if phase == "decode" else pure.compute_ms) / pure.passes
        points.append(dict(id=row.id, model=row.model, device=entry.id, mode=mode.name, precision=row.precision,
                           x_ms=x, measured_ms=row.latency_ms, shape=shape, peak=peak, bandwidth=bandwidth,
                           tokens=tokens, context=context, phase=phase))
    return points, skipped


def predict(point: dict, eff: phases.PhaseEfficiency) -> float:
    fit = phases.fit_phase(point["shape"], point["phase"], point["tokens"], point["precision"],
                           peak_flops=point["peak"], bandwidth=point["bandwidth"], context=point["context"], eff=eff)
    return fit.predicted_ms / fit.passes


def _fit(points: list[dict], scope: str) -> phases.PhaseEfficiency:
    pairs = [(p["x_ms"], p["measured_ms"]) for p in points]
    if scope == "prefill":
        return phases.fit_ratio(pairs, source=scope)
    return phases.fit_overhead_line(pairs, source=scope)


def evaluate(scope: str) -> dict:
    """Fit and leave-one-out. Decode: one line over every row. Prefill: eta per device (the median ratio of that
    device's rows); a held-out row is predicted from the other rows of its device, or from every other row when it is
    its device's only one."""
    points, skipped = usable_points(scope)
    out: dict = {"scope": scope, "skipped": skipped, "rows": []}
    if not points:
        return out
    full = _fit(points, scope)
    out["fit"] = {"eta_memory": full.eta_memory, "eta_compute": full.eta_compute, "per_call_ms": full.per_call_ms,
                  "fit_error": full.fit_error, "n_points": full.n_points}
    if scope == "prefill":
        out["by_device"] = {d: _fit([p for p in points if p["device"] == d], scope).eta_compute
                            for d in sorted({p["device"] for p in points})}
    errors = []
    for i, p in enumerate(points):
        others = [q for j, q in enumerate(points) if j != i]
        if scope == "prefill":
            others = [q for q in others if q["device"] == p["device"]] or others
        loo = _fit(others, scope) if others else None
        pred = predict(p, loo) if loo else None
        err = None if pred is None else abs(pred - p["measured_ms"]) / p["measured_ms"]
        if err is not None:
            errors.append(err)
        fitted = phases.replace(full, eta_compute=out["by_device"][p["device"]]) if scope == "prefill" else full
        out["rows"].append({"id": p["id"], "device": p["device"], "mode": p["mode"], "measured_ms": p["measured_ms"],
                            "roofline_ms": p["x_ms"], "fitted_ms": predict(p, fitted), "loo_ms": pred,
                            "loo_error": err})
    if errors:
        out["loo_median_error"] = statistics.median(errors)
        out["loo_worst_error"] = max(errors)
    return out


def pipelines() -> dict:
    """Published end-to-end rows of the example pipelines against `pipeline fit` of the shipped spec on the row's
    device at the row's precision (the spec's vision stages stay fp16, as in the measured setups)."""
    out: dict = {"scope": "end_to_end (pipelines)", "rows": [], "skipped": []}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "registry.json"
        for row in load_published():
            if row.scope != "end_to_end" or row.model not in PIPELINES:
                continue
            if row.precision not in phases.WEIGHT_BITS:
                out["skipped"].append(f"{row.id}: precision {row.precision} has no weight format here")
                continue
            fit = fit_pipeline(db, ROOT / "examples" / "pipelines" / PIPELINES[row.model], row.device,
                               mode=row.power_mode, precision=row.precision, with_changes=False)
            err = abs(fit.latency_ms - row.latency_ms) / row.latency_ms
            out["rows"].append({"id": row.id, "device": row.device, "mode": fit.power_mode,
                                "measured_ms": row.latency_ms, "predicted_ms": fit.latency_ms, "error": err,
                                "runtime": row.runtime})
    errors = [r["error"] for r in out["rows"]]
    if errors:
        out["median_error"], out["worst_error"] = statistics.median(errors), max(errors)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [evaluate("decode_per_token"), evaluate("prefill")]
    piped = pipelines()
    if args.json:
        clean = [{k: v for k, v in r.items()} for r in results]
        print(json.dumps([*clean, piped], indent=2))
        return
    for res in results:
        print(f"== {res['scope']}")
        if "fit" in res:
            f = res["fit"]
            print(f"fit over {f['n_points']} rows: eta_memory {f['eta_memory']:.3f}, eta_compute "
                  f"{f['eta_compute']:.3f}, per pass {f['per_call_ms']:.2f} ms, median |error| {f['fit_error']:.1%}")
            print(f"{'row':58} {'meas':>7} {'roof':>7} {'fitted':>7} {'LOO':>7} {'err':>6}")
            for r in res["rows"]:
                loo = "-" if r["loo_ms"] is None else f"{r['loo_ms']:7.2f}"
                err = "-" if r["loo_error"] is None else f"{r['loo_error']:6.1%}"
                print(f"{r['id'][:58]:58} {r['measured_ms']:7.2f} {r['roofline_ms']:7.2f} {r['fitted_ms']:7.2f} "
                      f"{loo:>7} {err:>6}")
            for device, eta in res.get("by_device", {}).items():
                print(f"  eta_compute on {device}: {eta:.3f}")
            if "loo_median_error" in res:
                print(f"leave-one-out: median |error| {res['loo_median_error']:.1%}, worst "
                      f"{res['loo_worst_error']:.1%}")
        else:
            print("no usable rows")
        for line in res["skipped"]:
            print(f"  skipped {line}")
    print(f"== {piped['scope']}: one run of every stage (latency_ms) vs the published per-action latency")
    for r in piped["rows"]:
        print(f"{r['id'][:44]:44} {r['runtime']:10} meas {r['measured_ms']:7.1f}  pred {r['predicted_ms']:7.1f}  "
              f"err {r['error']:6.1%}")
    if "median_error" in piped:
        print(f"median |error| {piped['median_error']:.1%}, worst {piped['worst_error']:.1%}")
    for line in piped["skipped"]:
        print(f"  skipped {line}")


if __name__ == "__main__":
    main()
