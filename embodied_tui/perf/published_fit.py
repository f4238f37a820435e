"""The TensorRT engine model (``perf.engine``) fitted to published batch-1 latencies (``data/published/latency.csv``),
shipped as ``data/published/calibration.yaml``; regenerate with ``python -m embodied_tui.perf.published_fit --write``.

Usable rows: a zoo builder (``model_ref``), runtime ``tensorrt*``, scope ``gpu_compute``, ``engine`` or
``end_to_end`` (``throughput_derived`` is a lower bound of a pipelined run and is left out), a device of type gpu or
soc. Each row's model is built on the meta device and analysed at its ``input_shape`` (``analyze_module``); a row
without a power mode uses the device's default mode. Peaks and bandwidth are the catalog's for that mode, so a
device is scaled to its clocks and bandwidth by the roofline itself.

Free parameters (prediction in ms: ``t_scope + n_kernels t_kernel + sum_i max((C_i + K 2 N_i / P)/eta_tensor,
B_i/eta_memory)``):
- per device family (architecture x type, e.g. ``ampere-soc`` = Jetson Orin, ``ada-gpu`` = L4/RTX 4090):
  ``eta_tensor`` (share of the dense peak a large tensor-core layer reaches) and ``kernel_us`` (cost of one kernel
  at ``REF_CLOCK_MHZ`` = 1 GHz GPU clock: a mode at f MHz pays ``kernel_us x 1000 / f``, since inside an engine a
  kernel's launch-to-retire latency is GPU cycles, not host time; ``kernel_scale``); a family with fewer than
  ``FULL_FAMILY_ROWS`` rows fits ``eta_tensor`` only and takes ``kernel_us`` from the pooled fit; a family with no
  rows uses the pooled fit (basis ``defaults``);
- shared by all families: ``eta_memory``, ``K`` (MACs per output element of the tensor-core n-half);
- per device type (``soc`` = a Jetson with its ARM host, ``gpu`` = a card in an x86 server) one additive term per
  host-side scope (``scope_key``): ``engine@soc``/``engine@gpu`` (the engine's fixed enqueue/sync/copy cost) and
  ``end_to_end@soc``/``end_to_end@gpu`` (pre/post-processing, a serving request); ``gpu_compute`` is 0 by
  definition. Each is fitted only where rows of that scope and type exist, else it stays at its prior (the
  calibration lists ``scope_rows``): a Jetson's Python pre/post-processing says nothing about a server's Triton
  request.
The fit minimises the squared log ratio predicted/measured plus weak log-normal priors (``PRIOR_WEIGHT`` each)
toward ``PRIORS`` (hardware-facts: 30-60 % of peak on large layers, tens to hundreds of microseconds of engine cost),
so a parameter the rows cannot pin stays at its documented value. A coordinate descent over log grids, deterministic.

Intervals: every usable row is predicted leave-one-out (the whole fit redone without it); its residual is
``log(measured / predicted)``; ``perf.calibrate.interval`` turns them into an interval: a family with at least
``MIN_RESIDUALS`` (8) residuals gives a prediction the 10th-90th percentile of its own; otherwise the pooled
residuals of all families, widened by ``WIDEN`` (x1.25) on each side; with fewer than 8 in all, x/÷ 2. A device of a
family without rows (basis ``defaults``) gets the pooled interval widened once more, and at least x/÷ ``UNSEEN`` (3):
no row tests how the fit transfers across architectures. Other device types (CPU, NPU, TPU)
keep their documented defaults; their intervals come from the residuals of those defaults on published rows of
that type, with the same rule.
"""
from __future__ import annotations

import argparse
import functools
import math
import sys
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import yaml

from embodied_tui.perf.calibrate import WIDEN, interval
from embodied_tui.perf.roofline import (
    Efficiency,
    LayerTimes,
    default_efficiency,
    fusion_for,
    io_bytes_of,
    layer_times,
    model_work,
    predicted_seconds,
    target_of,
)

CALIBRATION_NAME = "calibration.yaml"
FIT_SCOPES = ("gpu_compute", "engine", "end_to_end")
PREDICTED_SCOPE = "engine"  # what `fit` predicts on a GPU: one engine inference at batch 1, input on the host
ENGINE_TYPES = ("gpu", "soc")
FULL_FAMILY_ROWS = 3
PRIOR_WEIGHT = 0.1
UNSEEN = 3.0  # a family without rows: its interval spans at least x/÷ 3 (transfer across architectures is untested)
PRIORS = {"eta_tensor": 0.4, "kernel_us": 5.0, "eta_memory": 0.7, "depth_half": 32.0, "engine": 0.1,
          "end_to_end": 2.0}
BOUNDS = {"eta_tensor": (0.02, 1.0), "kernel_us": (0.5, 100.0), "eta_memory": (0.1, 1.0), "depth_half": (1.0, 512.0),
          "engine": (0.005, 5.0), "end_to_end": (0.01, 50.0)}
SWEEPS, GRID = 6, 21
REF_CLOCK_MHZ = 1000.0  # kernel_us is the cost of one kernel at this GPU clock (see kernel_scale)
SIG = 4  # significant digits written to the YAML


def family_of(entry) -> str:
    """A device family: the first word of its architecture and its type ("ampere (ga10b)", soc -> ampere-soc)."""
    arch = (entry.architecture or "unknown").split()[0].lower()
    return f"{arch}-{entry.type}"


def kernel_scale(clock_mhz: float | None) -> float:
    """Factor on ``kernel_us`` for a mode at ``clock_mhz``: a kernel's launch-to-retire latency inside an engine
    (CUDA graph / async enqueue, so not the host CPU) is a number of GPU clock cycles, so its time scales as
    ``REF_CLOCK_MHZ / clock``. A mode without a stated GPU clock keeps ``kernel_us`` as is (factor 1: 1 GHz
    assumed)."""
    return REF_CLOCK_MHZ / clock_mhz if clock_mhz else 1.0


def scope_key(scope: str, device_type: str) -> str:
    """The name of a scope's additive term for a device type: ``gpu_compute`` has none (0 by definition); the host-side
    scopes (``engine``, ``end_to_end``) get one per device type (``engine@soc``, ``end_to_end@gpu``), since the work
    they add runs on the host CPU, and a Jetson's ARM cores and a data-centre GPU's x86 server are different hosts."""
    return scope if scope == "gpu_compute" else f"{scope}@{device_type}"


def _base(name: str) -> str:
    """The prior/bounds name of a parameter: ``kernel_us/ampere-soc`` -> ``kernel_us``, ``engine@gpu`` -> ``engine``."""
    return name.split("/")[0].split("@")[0]


def _round(x: float) -> float:
    return float(f"{x:.{SIG}g}")


# ---------------------------------------------------------------------------------------------------- rows -> cases

@dataclass(frozen=True)
class Case:
    """One published row with the model's per-layer times on the row's device x mode x precision at eta = 1."""

    id: str
    source: str
    device: str
    mode: str
    family: str
    device_type: str
    scope: str
    engine: bool  # fitted with the engine model (TensorRT on a GPU/SoC); else predicted with type defaults
    times: LayerTimes
    measured_ms: float
    default_ms: float | None  # what the documented type default predicted before the engine model (epilogue fusion)
    clock_mhz: float | None = None  # the mode's GPU clock: scales the kernel cost (kernel_scale)


@functools.lru_cache(maxsize=64)
def _layer_costs(model_ref: str, shape: tuple[int, ...]) -> tuple:
    import torch

    from embodied_tui.analysis.torch.analyze import analyze_module
    from embodied_tui.analysis.zoo import BUILDERS

    with torch.device("meta"):
        module = BUILDERS[model_ref].build()
    analysis = analyze_module(module, [list(shape)], fmt="torch", detail=f"zoo {model_ref}")
    return tuple(analysis["layer_costs"]), analysis


def build_cases(rows=None, catalog=None) -> tuple[list[Case], dict[str, str]]:
    """Usable rows as cases, and the skipped rows' ids with the reason."""
    from embodied_tui.analysis.zoo import BUILDERS
    from embodied_tui.data.hardware import load_catalog
    from embodied_tui.data.published import load_published

    rows = load_published() if rows is None else rows
    entries = {e.id: e for e in (load_catalog() if catalog is None else catalog)}
    cases, skipped = [], {}
    for row in rows:
        entry = entries.get(row.device)
        why = None
        if not row.usable or row.input_shape is None:
            why = "not usable (no zoo builder, an LLM scope or no precision)"
        elif row.model_ref not in BUILDERS:
            why = f"model_ref {row.model_ref} is not a zoo builder"
        elif row.scope not in FIT_SCOPES:
            why = f"scope {row.scope} is not fitted"
        elif row.batch != 1 or row.input_shape[0] != 1:
            why = "not batch 1"
        elif entry is None:
            why = f"device {row.device} not in the catalog"
        if why:
            skipped[row.id] = why
            continue
        mode = entry.mode(row.power_mode)
        target, reason = target_of(entry, mode, row.precision)
        if target is None:
            skipped[row.id] = reason
            continue
        engine = entry.type in ENGINE_TYPES and "tensorrt" in row.runtime
        if entry.type in ENGINE_TYPES and not engine:
            skipped[row.id] = f"runtime {row.runtime} on a GPU is not modelled"
            continue
        costs, analysis = _layer_costs(row.model_ref, tuple(row.input_shape))
        fusion = "tensorrt" if engine else fusion_for(row.runtime)
        work, _ = model_work(analysis, costs, row.precision, fusion)
        times = layer_times(work, target, sum(w.weight_bytes for w in work), io_bytes_of(analysis, row.precision))
        if times.stream_s is None:
            skipped[row.id] = "weights stream over an unknown host link"
            continue
        before, _ = model_work(analysis, costs, row.precision, "epilogue")
        old = predicted_seconds(layer_times(before, target, sum(w.weight_bytes for w in before)),
                                default_efficiency(entry.type))
        cases.append(Case(row.id, row.source_url, entry.id, mode.name, family_of(entry), entry.type, row.scope,
                          engine, times, row.latency_ms, None if old is None else old * 1e3,
                          getattr(mode, "gpu_clock_mhz", None)))
    return cases, skipped


# ---------------------------------------------------------------------------------------------------- parameters

@dataclass(frozen=True)
class Params:
    """Fitted numbers: shared ones and, per family, (eta_tensor, kernel_us)."""

    eta_memory: float
    depth_half: float
    scope_ms: dict[str, float]
    families: dict[str, tuple[float, float]]
    pooled: tuple[float, float]

    def family(self, name: str) -> tuple[float, float]:
        return self.families.get(name, self.pooled)

    def scope(self, scope: str, device_type: str) -> float:
        """The additive term of ``scope`` on a device type: fitted where rows of that scope and type exist, else the
        documented prior (a Jetson's fit says nothing about a server's host)."""
        key = scope_key(scope, device_type)
        if key in self.scope_ms:
            return self.scope_ms[key]
        return self.scope_ms.get(scope, PRIORS.get(scope, 0.0))

    def efficiency(self, family: str, scope: str, *, source: str, calibration: str = "published",
                   clock_mhz: float | None = None) -> Efficiency:
        eta, kernel = self.family(family)
        device_type = family.rsplit("-", 1)[-1]
        return Efficiency(eta, self.eta_memory, self.scope(scope, device_type), calibration, source,
                          runtime="tensorrt", op_overhead_ms=kernel * kernel_scale(clock_mhz) / 1e3,
                          macs_per_output_half=self.depth_half)


def predict_ms(case: Case, params: Params) -> float:
    eff = params.efficiency(case.family, case.scope, source="", clock_mhz=case.clock_mhz)
    return predicted_seconds(case.times, eff) * 1e3


class _Flat:
    """Every case's layers in flat arrays, for evaluating one parameter over a grid at once. Layers with only a
    compute or only a memory term are summed per case once (their time is linear in 1/eta); only layers with both
    need the max on every evaluation, and only when an eta or K changes."""

    def __init__(self, cases: list[Case]):
        import numpy as np

        self.n = len(cases)
        tc, tk, tm, seg = [], [], [], []
        self.only_c, self.only_k, self.only_m = (np.zeros(self.n) for _ in range(3))
        for i, c in enumerate(cases):
            a, k, m = (np.asarray(x, float) for x in (c.times.tc, c.times.tk, c.times.tm))
            both = ((a + k) > 0) & (m > 0)
            self.only_c[i], self.only_k[i] = a[~both].sum(), k[~both].sum()
            self.only_m[i] = m[~both & ((a + k) == 0)].sum()
            tc.append(a[both])
            tk.append(k[both])
            tm.append(m[both])
            seg.append(np.full(int(both.sum()), i))
        self.tc, self.tk, self.tm = (np.concatenate(x) for x in (tc, tk, tm))
        self.seg = np.concatenate(seg).astype(int)
        sizes = np.asarray([len(x) for x in tc])
        self.ends = np.cumsum(sizes)
        self.starts = self.ends - sizes
        self.kernels = np.asarray([c.times.n_ops * kernel_scale(c.clock_mhz) for c in cases], float)
        self.stream = np.asarray([c.times.stream_s for c in cases], float)
        self.y = np.log(np.asarray([c.measured_ms for c in cases]))
        self.scopes = [scope_key(c.scope, c.device_type) for c in cases]
        self.families = sorted({c.family for c in cases})
        self.fam = np.asarray([self.families.index(c.family) for c in cases], int)
        self._cache: tuple | None = None

    def _sums(self, eta, em, dh):
        """Seconds of every case's layers at eta = 1 / eta_c etc.: [cases, G]."""
        import numpy as np

        eta_case = eta[self.fam]  # [cases, G]
        layers = np.maximum((self.tc[:, None] + dh * self.tk[:, None]) / eta_case[self.seg], self.tm[:, None] / em)
        cum = np.vstack([np.zeros((1, layers.shape[1])), np.cumsum(layers, axis=0)])
        both = cum[self.ends] - cum[self.starts]
        return (both + (self.only_c[:, None] + dh * self.only_k[:, None]) / eta_case
                + (self.only_m[:, None] + self.stream[:, None]) / em)

    def loss(self, v: dict, name: str, grid):
        """Loss of every grid value of parameter ``name`` (others from ``v``): [G]."""
        import numpy as np

        g = len(grid)

        def val(key):
            return np.asarray(grid, float)[None, :] if key == name else np.full((1, g), v[key])

        eta = np.vstack([val(f"eta_tensor/{f}") for f in self.families])  # [F, G]
        kern = np.vstack([val(f"kernel_us/{f}") for f in self.families])
        em, dh = val("eta_memory"), val("depth_half")
        layer_params = name.startswith("eta_") or name == "depth_half"
        key = (g, tuple(v[f"eta_tensor/{f}"] for f in self.families), v["eta_memory"], v["depth_half"])
        if layer_params or self._cache is None or self._cache[0] != key:
            sums = self._sums(eta, em, dh)
            if not layer_params:
                self._cache = (key, sums)
        else:
            sums = self._cache[1]
        scope = np.stack([val(s)[0] if s != "gpu_compute" else np.zeros(g) for s in self.scopes])
        pred = scope + self.kernels[:, None] * kern[self.fam] / 1e3 + sums * 1e3
        data = ((np.log(pred) - self.y[:, None]) ** 2).sum(0)
        prior = np.zeros(g)
        for k, value in v.items():
            base = PRIORS[_base(k)]
            x = np.asarray(grid, float) if k == name else np.full(g, value)
            prior += PRIOR_WEIGHT * np.log(x / base) ** 2
        return data + prior


def _grid(lo: float, hi: float, around: float | None = None, width: float | None = None):
    import numpy as np

    if around is not None:
        lo, hi = max(lo, around / width), min(hi, around * width)
    return np.exp(np.linspace(math.log(lo), math.log(hi), GRID))


def _descend(flat: _Flat, v: dict, free: list[str]) -> dict:
    v = dict(v)
    for sweep in range(SWEEPS):
        width = None if sweep < 2 else 4.0 / (sweep - 1)
        for name in free:
            lo, hi = BOUNDS[_base(name)]
            grid = _grid(lo, hi, v[name] if width else None, max(width or 1, 1.05))
            grid = list(grid) + [v[name]]
            loss = flat.loss(v, name, grid)
            v[name] = float(grid[int(loss.argmin())])
    return v


def fit(cases: list[Case]) -> Params:
    """The parameters that best explain the engine cases (see the module doc)."""
    engine = [c for c in cases if c.engine]
    scopes = sorted({scope_key(c.scope, c.device_type) for c in engine} - {"gpu_compute"})
    shared = {"eta_memory": PRIORS["eta_memory"], "depth_half": PRIORS["depth_half"],
              **{s: PRIORS[_base(s)] for s in scopes}}
    if not engine:
        return Params(shared["eta_memory"], shared["depth_half"], {"gpu_compute": 0.0},
                      {}, (PRIORS["eta_tensor"], PRIORS["kernel_us"]))
    # 1. pooled: every family as one
    pooled = [Case(**{**c.__dict__, "family": "*"}) for c in engine]
    flat = _Flat(pooled)
    v = {**shared, "eta_tensor/*": PRIORS["eta_tensor"], "kernel_us/*": PRIORS["kernel_us"]}
    v = _descend(flat, v, ["eta_tensor/*", "kernel_us/*", "eta_memory", "depth_half", *scopes])
    fixed = {k: v[k] for k in shared}
    pool = (v["eta_tensor/*"], v["kernel_us/*"])
    # 2. each family's own, shared numbers fixed
    families = {}
    for fam in sorted({c.family for c in engine}):
        mine = [c for c in engine if c.family == fam]
        ff = _Flat(mine)
        w = {**fixed, f"eta_tensor/{fam}": pool[0], f"kernel_us/{fam}": pool[1]}
        free = [f"eta_tensor/{fam}"] + ([f"kernel_us/{fam}"] if len(mine) >= FULL_FAMILY_ROWS else [])
        w = _descend(ff, w, free)
        families[fam] = (w[f"eta_tensor/{fam}"], w[f"kernel_us/{fam}"])
    scope_ms = {"gpu_compute": 0.0, **{s: fixed[s] for s in scopes}}
    return Params(fixed["eta_memory"], fixed["depth_half"], scope_ms, families, pool)


def leave_out(cases: list[Case], key) -> dict[str, float]:
    """Row id -> prediction (ms) of the fit without every case sharing ``key(case)`` (a row, a source)."""
    out = {}
    for group in sorted({key(c) for c in cases}):
        rest = [c for c in cases if key(c) != group]
        params = fit(rest)
        for c in cases:
            if key(c) == group:
                out[c.id] = predict_ms(c, params) if c.engine else c.default_ms
    return out


def error_summary(measured: list[float], predicted: list[float | None]) -> dict:
    """Errors of predictions against measurements, on the ratio ``r = predicted / measured``: median and 90th
    percentile of ``|r - 1|``, the worst ratio (farthest from 1 either way), the share within +-10 % and +-25 %, and
    ``n``. A missing prediction counts as outside every band and as the worst (ratio None)."""
    import numpy as np

    ratios = [None if p is None else p / m for m, p in zip(measured, predicted)]
    errs = np.asarray([math.inf if r is None else abs(r - 1) for r in ratios], float)
    known = [r for r in ratios if r is not None]
    worst = None if len(known) < len(ratios) or not known else max(known, key=lambda r: max(r, 1 / r))
    if not len(errs):
        return {"n": 0}
    return {"n": len(errs), "median_abs_error": float(np.median(errs)),
            "p90_abs_error": float(np.quantile(errs, 0.9)), "worst_ratio": worst,
            "within_10pct": float(np.mean(errs <= 0.10)), "within_25pct": float(np.mean(errs <= 0.25))}


# ---------------------------------------------------------------------------------------------------- the shipped file

def calibration_data(rows=None, catalog=None) -> dict:
    """The content of ``calibration.yaml``: fitted parameters, leave-one-out residuals per family, and per row the
    measured, fitted and leave-one-out predictions and what the documented defaults predicted (``default_ms``)."""
    from embodied_tui.data.published import DATA_VERSION

    cases, skipped = build_cases(rows, catalog)
    params = fit(cases)
    loo = leave_out(cases, lambda c: c.id)
    residuals: dict[str, list[float]] = {}
    for c in cases:
        key = c.family if c.engine else c.device_type
        residuals.setdefault(key, []).append(_round(math.log(c.measured_ms / loo[c.id])))
    devices: dict[str, dict[str, list[str]]] = {}
    for c in cases:
        if c.engine:
            modes = devices.setdefault(c.family, {}).setdefault(c.device, [])
            if c.mode not in modes:
                modes.append(c.mode)
    return {
        "data_version": DATA_VERSION,
        "generated_by": "python -m embodied_tui.perf.published_fit --write",
        "predicted_scope": PREDICTED_SCOPE,
        "shared": {"eta_memory": _round(params.eta_memory), "macs_per_output_half": _round(params.depth_half),
                   "kernel_ref_clock_mhz": REF_CLOCK_MHZ,
                   "scope_ms": {"gpu_compute": 0.0, **{scope_key(s, t): _round(params.scope(s, t))
                                                       for s in FIT_SCOPES[1:] for t in ENGINE_TYPES}},
                   "scope_rows": {scope_key(s, t): sum(1 for c in cases if c.engine and c.scope == s
                                                       and c.device_type == t)
                                  for s in FIT_SCOPES[1:] for t in ENGINE_TYPES}},
        "pooled": {"eta_tensor": _round(params.pooled[0]), "kernel_us": _round(params.pooled[1])},
        "families": {fam: {"eta_tensor": _round(eta), "kernel_us": _round(kern),
                           "n_rows": sum(1 for c in cases if c.engine and c.family == fam),
                           "devices": {d: sorted(m) for d, m in sorted(devices.get(fam, {}).items())}}
                     for fam, (eta, kern) in sorted(params.families.items())},
        "loo_log_ratios": {k: sorted(v) for k, v in sorted(residuals.items())},
        "rows": [{"id": c.id, "family": c.family if c.engine else c.device_type, "scope": c.scope,
                  "measured_ms": c.measured_ms, "fitted_ms": _round(predict_ms(c, params)) if c.engine
                  else _round(c.default_ms), "loo_ms": _round(loo[c.id]),
                  "default_ms": None if c.default_ms is None else _round(c.default_ms)} for c in cases],
        "skipped": dict(sorted(skipped.items())),
    }


def dump(data: dict) -> str:
    head = ("# Generated by `python -m embodied_tui.perf.published_fit --write` from data/published/latency.csv;\n"
            "# do not edit by hand (tests/test_published_fit.py fails when it is stale). See perf/published_fit.py.\n")
    return head + yaml.safe_dump(data, sort_keys=False, width=120)


def _path() -> Path:
    return Path(str(resources.files("embodied_tui.data") / "published" / CALIBRATION_NAME))


@functools.lru_cache(maxsize=1)
def load_calibration() -> dict | None:
    """The shipped calibration, or None when the file is absent."""
    path = _path()
    if not path.is_file():
        return None
    from embodied_tui.data.yaml_file import parse_yaml  # libyaml's safe loader: 0.15 -> 0.01 s of a first fit

    return parse_yaml(path.read_text(encoding="utf-8"), str(path))


# ---------------------------------------------------------------------------------------------------- using it

def published_efficiency(entry, mode: str, data: dict | None = None) -> Efficiency:
    """The efficiency `fit` uses for a catalog device without its own calibration: on a GPU/SoC the TensorRT engine
    model of its family (``calibration`` ``published``, runtime ``tensorrt``, scope ``engine``); on other types the
    documented default of the type. Either way with its basis and interval (module doc)."""
    data = load_calibration() if data is None else data
    resid = (data or {}).get("loo_log_ratios", {})
    others = ("cpu", "npu", "tpu")
    if data is None or entry.type not in ENGINE_TYPES:
        pooled = [x for k, v in resid.items() if k in others for x in v]
        lo, hi, how = interval(resid.get(entry.type, []), pooled)
        return replace(default_efficiency(entry.type), basis="defaults", interval_log=(lo, hi),
                       basis_detail=f"documented {entry.type} defaults; interval: {how} (the defaults on "
                                    f"published rows)")
    fam = family_of(entry)
    famdata = data["families"].get(fam)
    engine_pooled = [x for k, v in resid.items() if k not in others for x in v]
    shared = data["shared"]
    params = Params(shared["eta_memory"], shared["macs_per_output_half"], shared["scope_ms"],
                    {f: (d["eta_tensor"], d["kernel_us"]) for f, d in data["families"].items()},
                    (data["pooled"]["eta_tensor"], data["pooled"]["kernel_us"]))
    rows = f"published TensorRT latencies (data {data['data_version']})"
    loo = "leave-one-out"
    if famdata is None:
        lo, hi, how = interval([], engine_pooled)
        lo, hi = min(lo - math.log(WIDEN), -math.log(UNSEEN)), max(hi + math.log(WIDEN), math.log(UNSEEN))
        basis, detail = "defaults", (f"no {fam} rows: the engine model pooled over all families; interval: {how} "
                                     f"({loo}), widened x{WIDEN:g} again and at least x/÷ {UNSEEN:g}")
        src = f"TensorRT engine model pooled over every family's {rows}"
    else:
        lo, hi, how = interval(resid.get(fam, []), engine_pooled)
        modes = famdata["devices"].get(entry.id, [])
        if any(m.casefold() == mode.casefold() for m in modes):
            basis, detail = "exact", f"{fam} fit includes {entry.id} {mode}; interval: {how} ({loo})"
        else:
            names = ", ".join(f"{d} ({'/'.join(m)})" for d, m in famdata["devices"].items())
            basis, detail = "sibling", (f"{fam} fit on {names}, scaled by this mode's clocks and bandwidth; "
                                        f"interval: {how} ({loo})")
        src = f"TensorRT engine model, {fam} family fitted to {famdata['n_rows']} {rows}"
    key = scope_key(PREDICTED_SCOPE, entry.type)
    n_scope = shared.get("scope_rows", {}).get(key)
    term = (f"; its fixed term {key} at the prior {params.scope(PREDICTED_SCOPE, entry.type):g} ms (no such rows)"
            if n_scope == 0 else "")
    eff = params.efficiency(fam, PREDICTED_SCOPE, source=f"{src}; scope {PREDICTED_SCOPE}{term}",
                            clock_mhz=getattr(entry.mode(mode), "gpu_clock_mhz", None))
    return replace(eff, basis=basis, basis_detail=detail, interval_log=(lo, hi))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fit the TensorRT engine model to the published latencies")
    parser.add_argument("--write", action="store_true", help=f"write data/published/{CALIBRATION_NAME}")
    args = parser.parse_args(argv)
    text = dump(calibration_data())
    if args.write:
        _path().write_text(text, encoding="utf-8")
        print(f"wrote {_path()}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

