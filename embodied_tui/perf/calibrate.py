"""Host calibration: microbenchmarks of this machine's CPU, and fitting roofline efficiencies to measured latencies.

Microbenchmarks (torch on CPU, a few seconds in all):
- peak FLOP/s: fp32 matmuls of a few sizes, each timed for a short while; the best sustained rate counts
  (``2 n^3`` FLOP per ``n x n`` matmul).
- memory bandwidth: STREAM-style copy (``a = b``, 2 x 4 bytes per element) and triad (``a = b + s c``, 3 x 4 bytes per
  element) over arrays of 128 MB each, far beyond the last-level cache; the best of a few repetitions counts, and the
  roofline uses the larger of the two.
- cache bandwidth: the same triad over three arrays of 1/8 of the last-level cache each (sysfs gives its size), so
  layers whose activations stay in cache are not charged DRAM speed.
Machines shared with other work give low peaks: every figure is the best of two rounds of short trials, and the
compute and cache figures are the better of the n-thread rate and n x the one-thread rate (on a busy machine a
multi-threaded kernel runs at the pace of its slowest thread; one thread usually finds a free core). DRAM bandwidth is
measured with all threads only (one core cannot saturate it).

Fitting (``fit_efficiency``): for measured latencies ``y_k`` of models with per-layer times at eta = 1
(``roofline.LayerTimes``), find ``eta_compute, eta_memory in (0, 1]`` and ``t0 >= 0`` minimising
``sum_k (log pred_k - log y_k)^2`` (relative error, so small and large models weigh alike) by a grid search in log
space refined twice. With one point only a single scale factor on the base efficiencies is fitted; with two or three, a
common scale of both etas (their ratio kept from the base) and ``t0``; with four or five, all three (below six, the
base's ``t_op`` and ``K`` are kept as they are: 0 unless the base was fitted with them). With six or more
(``FULL_FIT_POINTS``) two small-kernel terms join (see ``roofline``): ``t_op`` per launched operator and ``K`` MACs
per output element. The grid then runs over eta_compute, eta_memory and K, and for each grid point ``t0`` and ``t_op``
come from a non-negative least-squares solve of the relative error (linear in them), so five numbers are fitted with a
three-dimensional search. ``fit_error`` is the median of ``|pred - meas| / meas`` over the points.
"""
from __future__ import annotations

import datetime as _dt
import math
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from embodied_tui.perf.roofline import Efficiency, LayerTimes, predicted_seconds, scale_efficiency

ETA_MIN = 0.005
FULL_FIT_POINTS = 6  # measurements needed before t_op and K are fitted too
K_MAX = 1000.0  # largest per-output charge searched (MACs per output element)
CANDIDATES, ZOOMS = 8, 10  # coarse-grid cells refined, and zooms of each (the step halves, in log, per zoom)


# ---------------------------------------------------------------------------------------------------- the CPU

def cpu_name() -> str:
    """The CPU's "model name" from /proc/cpuinfo (platform.processor() elsewhere), or "unknown CPU"."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                name = line.split(":", 1)[1].strip()
                if name:
                    return name
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_vendor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith("vendor_id"):
                return {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}.get(line.split(":", 1)[1].strip(),
                                                                           line.split(":", 1)[1].strip())
    except OSError:
        pass
    return "unknown"


def memory_total_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_threads() -> int:
    """Threads the benchmarks use: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def host_slug(name: str | None = None) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", (name or cpu_name()).lower()).strip("-")
    slug = re.sub(r"-(processor|cpu)$", "", slug)
    return f"host-{slug or 'cpu'}"[:60].rstrip("-")


# ---------------------------------------------------------------------------------------------------- microbenchmarks

@dataclass(frozen=True)
class HostPeaks:
    cpu: str
    threads: int
    peak_flops: float  # fp32 FLOP/s, best sustained matmul
    matmul_flops: dict[int, float]  # size -> FLOP/s
    copy_bytes_per_s: float
    triad_bytes_per_s: float
    torch_version: str
    seconds: float
    cache_bytes: int | None = None  # last-level cache size
    cache_bytes_per_s: float | None = None  # triad within it

    @property
    def bandwidth(self) -> float:
        return max(self.copy_bytes_per_s, self.triad_bytes_per_s)


def measure_matmul(sizes: Sequence[int] = (256, 512, 1024), seconds_each: float = 0.4) -> dict[int, float]:
    """fp32 ``n x n`` matmul rate (FLOP/s, ``2 n^3`` per product) per size: best over repeated timed batches."""
    import torch

    rates = {}
    for n in sizes:
        a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
        torch.mm(a, b, out=c)  # warm-up: pick the kernel, fault in the pages
        reps = max(1, int(2e8 / (2 * n ** 3)))
        best = 0.0
        end = time.perf_counter() + seconds_each
        while True:
            t = time.perf_counter()
            for _ in range(reps):
                torch.mm(a, b, out=c)
            dt = time.perf_counter() - t
            best = max(best, 2 * n ** 3 * reps / dt)
            if time.perf_counter() >= end:
                break
        rates[n] = best
    return rates


def measure_bandwidth(mbytes: int = 128, repeats: int = 5) -> tuple[float, float]:
    """(copy, triad) bandwidth in bytes/s over fp32 arrays of ``mbytes`` MB each; best of ``repeats``."""
    import torch

    n = mbytes * 1024 * 1024 // 4
    a, b, c = torch.empty(n), torch.rand(n), torch.rand(n)
    a.copy_(b)  # fault in the pages
    best_copy = best_triad = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        a.copy_(b)
        best_copy = max(best_copy, 2 * 4 * n / (time.perf_counter() - t))
        t = time.perf_counter()
        torch.add(b, c, alpha=3.0, out=a)
        best_triad = max(best_triad, 3 * 4 * n / (time.perf_counter() - t))
    return best_copy, best_triad


def last_level_cache_bytes() -> int | None:
    """Size of the CPU's last-level cache from sysfs (None where unknown)."""
    best: tuple[int, int] | None = None
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            level = int((index / "level").read_text())
            if (index / "type").read_text().strip() == "Instruction":
                continue
            text = (index / "size").read_text().strip().upper()
        except (OSError, ValueError):
            continue
        mult = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}.get(text[-1:], 1)
        try:
            size = int(text.rstrip("KMG")) * mult
        except ValueError:
            continue
        if best is None or level > best[0]:
            best = (level, size)
    return None if best is None else best[1]


def measure_cache_bandwidth(cache_bytes: int, seconds: float = 0.3) -> float:
    """Triad bandwidth (bytes/s) over three fp32 arrays of ``cache_bytes / 8`` each: best of short batches."""
    import torch

    n = max(1024, cache_bytes // 8 // 4)
    a, b, c = torch.empty(n), torch.rand(n), torch.rand(n)
    torch.add(b, c, alpha=3.0, out=a)
    reps = max(1, int(2e8 / (12 * n)))
    best, end = 0.0, time.perf_counter() + seconds
    while True:
        t = time.perf_counter()
        for _ in range(reps):
            torch.add(b, c, alpha=3.0, out=a)
        best = max(best, 12 * n * reps / (time.perf_counter() - t))
        if time.perf_counter() >= end:
            return best


def measure_host(threads: int | None = None, *, sizes: Sequence[int] = (256, 512, 1024),
                 seconds_each: float = 0.4, mbytes: int = 128) -> HostPeaks:
    """Peak fp32 FLOP/s and memory bandwidth of this machine with ``threads`` threads (default: all allowed)."""
    import torch

    threads = threads or default_threads()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    start = time.perf_counter()
    cache = last_level_cache_bytes()
    rates: dict[int, float] = {}
    copy = triad = cache_bw = 0.0
    try:
        for _ in range(2):  # two rounds, best of each: a busy moment in one round does not stick
            for n_threads, scale in ({threads: 1, 1: threads}).items():
                torch.set_num_threads(n_threads)
                for n, r in measure_matmul(sizes, seconds_each / 4).items():
                    rates[n] = max(rates.get(n, 0.0), r * scale)
                if cache:
                    cache_bw = max(cache_bw, measure_cache_bandwidth(cache, 0.08) * scale)
            torch.set_num_threads(threads)
            c, t = measure_bandwidth(mbytes, repeats=3)
            copy, triad = max(copy, c), max(triad, t)
    finally:
        torch.set_num_threads(previous)
    return HostPeaks(cpu=cpu_name(), threads=threads, peak_flops=max(rates.values()), matmul_flops=rates,
                     copy_bytes_per_s=copy, triad_bytes_per_s=triad, torch_version=torch.__version__,
                     seconds=time.perf_counter() - start, cache_bytes=cache,
                     cache_bytes_per_s=max(cache_bw, copy, triad) if cache else None)


HOST_ALIASES = ("host", "this-machine")  # the names the machine `calibrate` last ran on answers to


def host_device(peaks: HostPeaks, calibration: list[dict] | None = None) -> dict:
    """A HardwareEntry-shaped dict for this machine (id ``host-<slug>``), one power mode ``default``, validated by
    the caller (``data.hardware.parse_entry``).

    ``power_w`` is None: a process cannot read the machine's power draw, so no energy is predicted for the host.
    ``cache_bytes`` / the mode's ``cache_bandwidth_gbps``: the last-level cache (sysfs) and the triad within it, left
    out where sysfs does not state the cache."""
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    source = (f"measured by `embodied-ai calibrate` on {when}: fp32 matmul best of sizes "
              f"{', '.join(str(n) for n in peaks.matmul_flops)} with {peaks.threads} threads; STREAM copy "
              f"{peaks.copy_bytes_per_s / 1e9:.1f} GB/s, triad {peaks.triad_bytes_per_s / 1e9:.1f} GB/s "
              f"(torch {peaks.torch_version})")
    cached = bool(peaks.cache_bytes and peaks.cache_bytes_per_s)
    sources = {"peaks": source}
    if cached:
        sources["cache"] = "last-level cache size from sysfs; triad over 3 arrays of 1/8 of it"
    return {
        "id": host_slug(peaks.cpu),
        "name": f"this machine ({peaks.cpu}, {peaks.threads} threads)",
        "vendor": cpu_vendor(),
        "type": "cpu",
        "aliases": list(HOST_ALIASES),
        "memory_bytes": memory_total_bytes(),
        "cache_bytes": peaks.cache_bytes if cached else None,
        "power_modes": [{
            "name": "default",
            "power_w": None,
            "cpu_cores": peaks.threads,
            "memory_bandwidth_gbps": round(peaks.bandwidth / 1e9, 3),
            "cache_bandwidth_gbps": round(peaks.cache_bytes_per_s / 1e9, 3) if cached else None,
            "peak_tflops": {"fp32": round(peaks.peak_flops / 1e12, 5)},
            "source": source,
            "notes": ["power draw is not measured: no energy figures for the host"],
        }],
        "default_mode": "default",
        "sources": sources,
        "notes": ["measured on this machine; re-run `embodied-ai calibrate` after hardware or load changes"],
        "calibration": calibration or [],
    }


# ---------------------------------------------------------------------------------------------------- fitting

@dataclass(frozen=True)
class Point:
    """One measured latency of one model on one target, with the model's per-layer times there at eta = 1."""

    label: str
    times: LayerTimes
    measured_ms: float


def _relative_errors(points: Sequence[Point], eff: Efficiency) -> list[float]:
    errs = []
    for p in points:
        pred = predicted_seconds(p.times, eff)
        errs.append(abs(pred * 1e3 - p.measured_ms) / p.measured_ms if pred is not None else float("inf"))
    return errs


def median(values: Sequence[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


MIN_RESIDUALS = 8  # residuals needed before their own quantiles make an interval
QUANTILES = (0.1, 0.9)  # the interval: 10th to 90th percentile of log(measured / predicted)
WIDEN = 1.25  # borrowed (pooled) residuals: each side's factor multiplied by this
FALLBACK = 2.0  # fewer than MIN_RESIDUALS residuals anywhere: x/÷ 2


def interval(residuals: Sequence[float], pooled: Sequence[float] = ()) -> tuple[float, float, str]:
    """``(log(low / predicted), log(high / predicted), how)`` from residuals ``log(measured / predicted)``: their
    10th-90th percentile when there are at least ``MIN_RESIDUALS``; else the same of ``pooled`` (residuals of related
    devices) widened by ``WIDEN`` each side; else x/÷ ``FALLBACK``. The interval always contains the prediction."""
    import numpy as np

    lo_q, hi_q = QUANTILES
    pct = f"{lo_q * 100:.0f}th-{hi_q * 100:.0f}th percentile"
    if len(residuals) >= MIN_RESIDUALS:
        lo, hi = np.quantile(np.asarray(residuals, float), [lo_q, hi_q])
        return min(0.0, float(lo)), max(0.0, float(hi)), f"{pct} of {len(residuals)} log ratios measured/predicted"
    if len(pooled) >= MIN_RESIDUALS:
        lo, hi = np.quantile(np.asarray(pooled, float), [lo_q, hi_q])
        w = math.log(WIDEN)
        return (min(0.0, float(lo)) - w, max(0.0, float(hi)) + w,
                f"{pct} of {len(pooled)} pooled log ratios measured/predicted, widened x{WIDEN:g}")
    w = math.log(FALLBACK)
    return -w, w, f"fewer than {MIN_RESIDUALS} residuals: x/÷ {FALLBACK:g}"


def with_interval(eff: Efficiency, points: Sequence[Point], basis: str = "exact") -> Efficiency:
    """``eff`` with the interval of its own (in-sample) residuals on ``points`` (``interval``)."""
    resid = []
    for p in points:
        pred = predicted_seconds(p.times, eff)
        if pred is not None and pred > 0:
            resid.append(math.log(p.measured_ms / (pred * 1e3)))
    lo, hi, how = interval(resid)
    return replace(eff, basis=basis, interval_log=(lo, hi),
                   basis_detail=f"fitted to {len(points)} measurement{'s' if len(points) != 1 else ''} on this "
                                f"device; interval: {how} of the fit")


def fit_efficiency(points: Sequence[Point], base: Efficiency, *, source: str, runtime: str | None = None) -> Efficiency:
    """Efficiencies that best explain ``points`` (see the module doc for the rule by number of points), with the
    interval of their residuals (``with_interval``; basis ``exact``)."""
    points = [p for p in points if p.measured_ms > 0 and p.times.stream_s is not None]
    return with_interval(_fit_efficiency(points, base, source=source, runtime=runtime), points)


def _fit_efficiency(points: Sequence[Point], base: Efficiency, *, source: str, runtime: str | None = None
                    ) -> Efficiency:
    import numpy as np

    points = [p for p in points if p.measured_ms > 0 and p.times.stream_s is not None]
    if not points:
        raise ValueError("no usable measurements to fit")
    n = len(points)
    if n == 1:
        pred = predicted_seconds(points[0].times, base)
        eff = scale_efficiency(base, points[0].measured_ms / (pred * 1e3), runtime=runtime,
                               source=f"{source}; one measurement: only a scale factor on {base.calibration} "
                                      f"efficiencies was fitted")
        over_ms = predicted_seconds(points[0].times, eff) * 1e3 - points[0].measured_ms
        t0 = eff.overhead_ms
        if over_ms > 1e-9:  # etas hit 1 (faster than the roofline of our byte counts): give up overhead instead
            t0 = max(0.0, t0 - over_ms)
            eff = replace(eff, overhead_ms=t0,
                          source=eff.source + "; the measurement is below the scaled roofline, so etas are capped at 1")
        return replace(eff, fit_error=_relative_errors(points, eff)[0])

    if n >= FULL_FIT_POINTS:
        return _fit_small_kernels(points, source=source, runtime=runtime)
    # fewer points than small-kernel terms need: the base's t_op and K are kept as they are (0 unless the base was
    # fitted with them, e.g. the host's calibration under measurements of a few models)
    k_half, t_op = base.macs_per_output_half, base.op_overhead_ms / 1e3
    tc = [np.asarray(p.times.tc, dtype=float) + k_half * np.asarray(p.times.tk, dtype=float) for p in points]
    tm = [np.asarray(p.times.tm, dtype=float) for p in points]
    st = np.asarray([p.times.stream_s for p in points], dtype=float)
    launches = np.asarray([p.times.n_ops * t_op for p in points])
    y = np.log(np.asarray([p.measured_ms / 1e3 for p in points]))
    full = n >= 4
    ratio = base.eta_memory / base.eta_compute

    def sums(ec: np.ndarray, em: np.ndarray) -> np.ndarray:
        """[K, len(ec), len(em)] of sum_i max(tc/ec, tm/em) + stream/em (full) or [K, len(ec)] (shared)."""
        if full:
            return np.stack([np.maximum(c[:, None, None] / ec[None, :, None], m[:, None, None] / em[None, None, :])
                             .sum(0) + s / em[None, :] for c, m, s in zip(tc, tm, st)])
        return np.stack([np.maximum(c[:, None] / ec[None, :], m[:, None] / em[None, :]).sum(0) + s / em
                         for c, m, s in zip(tc, tm, st)])

    def search(lo_ec, hi_ec, lo_em, hi_em, lo_t0, hi_t0, g=33):
        ec = np.exp(np.linspace(np.log(lo_ec), np.log(hi_ec), g))
        em = np.exp(np.linspace(np.log(lo_em), np.log(hi_em), g)) if full else np.minimum(1.0, ec * ratio)
        t0 = np.concatenate([[0.0], np.exp(np.linspace(np.log(lo_t0), np.log(hi_t0), 2 * g))])
        s = sums(ec, em) + launches.reshape((-1,) + (1,) * (1 + full))  # [K, G(, G)]
        pred = t0.reshape((-1,) + (1,) * s.ndim) + s[None]
        loss = ((np.log(pred) - y.reshape((1, -1) + (1,) * (s.ndim - 1))) ** 2).sum(1)
        idx = np.unravel_index(int(np.argmin(loss)), loss.shape)
        return t0[idx[0]], ec[idx[1]], (em[idx[2]] if full else em[idx[1]]), ec, em, t0

    hi_t0 = float(np.exp(y).max())
    t0, ec_best, em_best, ec, em, t0s = search(ETA_MIN, 1.0, ETA_MIN, 1.0, 1e-7, hi_t0)
    for _ in range(2):  # zoom in around the best point
        step = float(ec[1] / ec[0])
        t0_lo = max(1e-9, t0 / 4) if t0 > 0 else 1e-9
        t0_hi = max(t0 * 4, 1e-7)
        em_step = float(em[1] / em[0]) if full else step
        t0, ec_best, em_best, ec, em, t0s = search(
            max(ETA_MIN, ec_best / step), min(1.0, ec_best * step),
            max(ETA_MIN, em_best / em_step), min(1.0, em_best * em_step), t0_lo, min(t0_hi, hi_t0))
    how = ("eta_compute, eta_memory and t0 fitted" if full else
           f"{n} measurements: one scale of both etas (their ratio kept from {base.calibration}) and t0 fitted")
    if t_op or k_half:
        how += f", t_op and K kept from {base.calibration}"
    eff = Efficiency(float(min(1.0, ec_best)), float(min(1.0, em_best)), float(t0 * 1e3), "measured",
                     f"{source}; {how} on log error over {n} points", runtime=runtime, n_points=n,
                     op_overhead_ms=base.op_overhead_ms, macs_per_output_half=k_half)
    return replace(eff, fit_error=median(_relative_errors(points, eff)))


def _nnls2(a, b, y, w):
    """Per grid cell, ``x0, x1 >= 0`` minimising ``sum_k w_k (x0 a_k + x1 b_k - y_k)^2``; arrays are [K, ...cells].

    The two-variable non-negative least squares in closed form: the unconstrained solution where both are >= 0,
    else the better of the one-variable solutions on each axis (clipped at 0)."""
    import numpy as np

    saa, sbb, sab = (w * a * a).sum(0), (w * b * b).sum(0), (w * a * b).sum(0)
    say, sby = (w * a * y).sum(0), (w * b * y).sum(0)
    det = saa * sbb - sab * sab
    with np.errstate(divide="ignore", invalid="ignore"):
        x0 = np.where(det > 0, (say * sbb - sby * sab) / det, -1.0)
        x1 = np.where(det > 0, (sby * saa - say * sab) / det, -1.0)
        only0 = np.where(saa > 0, np.maximum(0.0, say / saa), 0.0)
        only1 = np.where(sbb > 0, np.maximum(0.0, sby / sbb), 0.0)

    def cost(u, v):
        return (w * (u * a + v * b - y) ** 2).sum(0)

    both = (x0 >= 0) & (x1 >= 0)
    zero = np.zeros_like(only0)
    use0 = cost(only0, zero) <= cost(zero, only1)
    x0 = np.where(both, x0, np.where(use0, only0, 0.0))
    x1 = np.where(both, x1, np.where(use0, 0.0, only1))
    return x0, x1


def _fit_small_kernels(points: Sequence[Point], *, source: str, runtime: str | None) -> Efficiency:
    """All five numbers: eta_compute, eta_memory, K on a log grid (the best cells refined), t0 and t_op by
    ``_nnls2`` in every cell."""
    import numpy as np

    n = len(points)
    y = np.asarray([p.measured_ms / 1e3 for p in points])
    ops = np.asarray([float(p.times.n_ops) for p in points])
    layers = [(np.asarray(p.times.tc, float), np.asarray(p.times.tm, float),
               np.asarray(p.times.tk, float), float(p.times.stream_s)) for p in points]

    def search(ec, em, ks):
        """Loss, t0 and t_op on the grid [K, eta_c, eta_m]."""
        s = np.stack([np.maximum((c[:, None, None, None] + ks[None, :, None, None] * k[:, None, None, None])
                                 / ec[None, None, :, None], m[:, None, None, None] / em[None, None, None, :]).sum(0)
                      + st / em[None, None, :] for c, m, k, st in layers])  # [point, K, eta_c, eta_m]
        shape = (-1,) + (1,) * (s.ndim - 1)
        t0, top = _nnls2(np.ones(s.shape), np.broadcast_to(ops.reshape(shape), s.shape), y.reshape(shape) - s,
                         np.broadcast_to((1.0 / y ** 2).reshape(shape), s.shape))
        pred = t0[None] + ops.reshape(shape) * top[None] + s
        return ((np.log(pred) - np.log(y).reshape(shape)) ** 2).sum(0), t0, top

    def axis(lo, hi, g):
        return np.exp(np.linspace(np.log(lo), np.log(hi), g))

    def around(x, step, lo, hi, g=9):
        return axis(max(lo, x / step), min(hi, x * step), g)

    g = 17
    ec0, em0 = axis(ETA_MIN, 1.0, g), axis(ETA_MIN, 1.0, g)
    ks0 = np.concatenate([[0.0], axis(0.5, K_MAX, g - 1)])
    loss, t0s, tops = search(ec0, em0, ks0)
    best = None
    # the loss has several basins (K and eta_memory can trade against each other), so the best few cells of the
    # coarse grid are each refined, and the best refinement wins
    for flat in np.argsort(loss, axis=None)[:CANDIDATES]:
        i = np.unravel_index(int(flat), loss.shape)
        k, e_c, e_m = float(ks0[i[0]]), float(ec0[i[1]]), float(em0[i[2]])
        step_e, step_k = float(ec0[1] / ec0[0]), float(ks0[2] / ks0[1])
        cell = (float(loss[i]), k, e_c, e_m, float(t0s[i]), float(tops[i]))
        for _ in range(ZOOMS):
            ec, em = around(e_c, step_e, ETA_MIN, 1.0), around(e_m, step_e, ETA_MIN, 1.0)
            ks = np.concatenate([[0.0], around(k if k > 0 else 0.5, step_k, 0.01, K_MAX)])
            zl, zt0, ztop = search(ec, em, ks)
            j = np.unravel_index(int(np.argmin(zl)), zl.shape)
            if zl[j] <= cell[0]:
                k, e_c, e_m = float(ks[j[0]]), float(ec[j[1]]), float(em[j[2]])
                cell = (float(zl[j]), k, e_c, e_m, float(zt0[j]), float(ztop[j]))
            step_e, step_k = step_e ** 0.5, step_k ** 0.5
        if best is None or cell[0] < best[0]:
            best = cell
    _, k, e_c, e_m, t0, top = best
    eff = Efficiency(min(1.0, e_c), min(1.0, e_m), t0 * 1e3, "measured",
                     f"{source}; eta_compute, eta_memory, K (MACs per output), t0 and t_op (per operator) fitted "
                     f"on log error over {n} points", runtime=runtime, n_points=n, op_overhead_ms=top * 1e3,
                     macs_per_output_half=k)
    return replace(eff, fit_error=median(_relative_errors(points, eff)))
