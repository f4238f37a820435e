"""The engine model fitted to published latencies (perf/published_fit.py): the shipped calibration is what the fit
gives today, the fit beats the documented defaults on rows it has not seen, it recovers known parameters, and
every device gets the basis and interval the rules say."""
from __future__ import annotations

import dataclasses
import math
import statistics

import pytest

from embodied_tui.data.hardware import load_catalog
from embodied_tui.perf import published_fit as pf
from embodied_tui.perf.calibrate import FALLBACK, MIN_RESIDUALS, WIDEN, interval


@pytest.fixture(scope="module")
def cases():
    return pf.build_cases()[0]


@pytest.fixture(scope="module")
def regenerated(cases):
    return pf.calibration_data()


def test_the_shipped_calibration_is_what_the_fit_gives(regenerated):
    """Regenerating from data/published/latency.csv gives the shipped file byte for byte: a CSV changed without
    `python -m embodied_tui.perf.published_fit --write` fails here."""
    shipped = pf._path().read_text(encoding="utf-8")
    assert pf.dump(regenerated) == shipped


def test_leave_one_out_beats_the_defaults(regenerated):
    """Every engine row predicted by a fit that never saw it (``loo_ms``, computed afresh above) is closer, at the
    median and at the 90th percentile of |log ratio|, than the documented defaults (eta 0.3/0.6, t0 2 ms on Jetson,
    epilogue fusion) were."""
    import numpy as np

    engine = [r for r in regenerated["rows"] if r["family"] not in ("cpu", "npu", "tpu")]
    assert len(engine) >= 3
    loo = [abs(math.log(r["loo_ms"] / r["measured_ms"])) for r in engine]
    before = [abs(math.log(r["default_ms"] / r["measured_ms"])) for r in engine]
    assert statistics.median(loo) < statistics.median(before)
    assert np.quantile(loo, 0.9) < np.quantile(before, 0.9)


def test_the_fit_recovers_known_parameters(cases):
    """Latencies made by the model itself from known parameters are fitted back to within a few percent."""
    engine = [c for c in cases if c.engine][:12]
    # the numbers the rows of a few models cannot tell apart sit at their priors; eta_tensor and kernel_us do not
    truth = pf.Params(pf.PRIORS["eta_memory"], pf.PRIORS["depth_half"],
                      {"gpu_compute": 0.0, "engine": pf.PRIORS["engine"], "end_to_end": pf.PRIORS["end_to_end"]},
                      {fam: (0.45, 12.0) for fam in {c.family for c in engine}}, (0.45, 12.0))
    synthetic = [dataclasses.replace(c, measured_ms=pf.predict_ms(c, truth)) for c in engine]
    fitted = pf.fit(synthetic)
    errors = [abs(pf.predict_ms(c, fitted) / c.measured_ms - 1) for c in synthetic]
    # (a coordinate descent on grids: close, not exact; the defaults it replaces are 30 % off at the median)
    assert statistics.median(errors) < 0.03 and max(errors) < 0.10


def test_interval_rules_by_hand():
    # eight residuals or more: their 10th-90th percentile (linear interpolation: 0.1 x 9 = 0.9 of the way from the
    # first to the second sorted value)
    resid = [-0.5, -0.3, -0.1, 0.0, 0.05, 0.1, 0.2, 0.4, 0.6, 1.0]
    lo, hi, how = interval(resid)
    assert lo == pytest.approx(-0.5 + 0.9 * 0.2) and hi == pytest.approx(0.6 + 0.1 * 0.4)
    assert "10 log ratios" in how
    # fewer: the pooled residuals, each side widened by log(1.25)
    lo, hi, how = interval(resid[:3], resid)
    assert lo == pytest.approx(-0.5 + 0.9 * 0.2 - math.log(WIDEN)) and hi == pytest.approx(0.64 + math.log(WIDEN))
    # fewer everywhere: x/÷ 2
    assert interval([0.1] * (MIN_RESIDUALS - 1))[:2] == (-math.log(FALLBACK), math.log(FALLBACK))
    # one-sided residuals still give an interval that contains the prediction
    lo, hi, _ = interval([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    assert lo == 0.0 and hi > 0


def test_each_device_gets_its_basis():
    data = pf.load_calibration()
    catalog = {e.id: e for e in load_catalog()}
    fam, famdata = next(iter(data["families"].items()))
    device, modes = next(iter(famdata["devices"].items()))
    exact = pf.published_efficiency(catalog[device], modes[0])
    assert exact.basis == "exact" and exact.calibration == "published" and exact.runtime == "tensorrt"
    # kernel_us is quoted at a 1 GHz GPU clock; a mode at f MHz pays kernel_us x 1000 / f (in ms: / 1e3)
    clock = catalog[device].mode(modes[0]).gpu_clock_mhz
    assert data["shared"]["kernel_ref_clock_mhz"] == 1000.0
    assert exact.eta_compute == famdata["eta_tensor"]
    assert exact.op_overhead_ms == pytest.approx(famdata["kernel_us"] * 1000.0 / clock / 1e3)
    # the engine term of the device's type (engine@gpu, engine@soc): fitted where that type has engine rows,
    # else its prior
    key = f"{pf.PREDICTED_SCOPE}@{catalog[device].type}"
    assert exact.overhead_ms == data["shared"]["scope_ms"][key]
    if data["shared"]["scope_rows"][key] == 0:
        assert exact.overhead_ms == pf.PRIORS[pf.PREDICTED_SCOPE]
    lo, hi, _ = interval(data["loo_log_ratios"].get(fam, []),
                         [x for k, v in data["loo_log_ratios"].items() if k not in ("cpu", "npu", "tpu") for x in v])
    assert exact.interval_log == (lo, hi)
    # a mode (or device) of the family the rows did not cover: sibling, naming the devices it was fitted on
    other = next(((e, m.name) for e in catalog.values() if e.type in pf.ENGINE_TYPES and pf.family_of(e) == fam
                  for m in e.power_modes if m.name not in famdata["devices"].get(e.id, [])), None)
    if other is not None:
        sibling = pf.published_efficiency(*other)
        assert sibling.basis == "sibling" and device in sibling.basis_detail
        assert sibling.eta_compute == exact.eta_compute
    # a GPU family without rows: the pooled fit, an interval of at least x/÷ 3
    unseen = next((e for e in catalog.values() if e.type in pf.ENGINE_TYPES
                   and pf.family_of(e) not in data["families"]), None)
    if unseen is not None:
        eff = pf.published_efficiency(unseen, unseen.default_mode)
        assert eff.basis == "defaults" and eff.eta_compute == data["pooled"]["eta_tensor"]
        assert eff.interval_log[0] <= -math.log(pf.UNSEEN) and eff.interval_log[1] >= math.log(pf.UNSEEN)
    # other device types keep their documented defaults
    pi = pf.published_efficiency(catalog["raspberry-pi-5"], "default")
    assert pi.calibration == "default" and pi.basis == "defaults" and pi.interval_log[0] < 0 < pi.interval_log[1]


def test_error_summary_by_hand():
    s = pf.error_summary([10.0, 10.0, 10.0, 10.0], [10.5, 12.0, 5.0, None])
    assert s["n"] == 4 and s["within_10pct"] == 0.25 and s["within_25pct"] == 0.5
    assert s["worst_ratio"] is None  # a missing prediction is the worst
    s = pf.error_summary([10.0, 10.0], [10.5, 5.0])
    assert s["worst_ratio"] == 0.5 and s["median_abs_error"] == pytest.approx((0.05 + 0.5) / 2)


def test_kernel_cost_scales_with_the_gpu_clock_by_hand(cases):
    """The same engine case at two GPU clocks differs by n_kernels x kernel_us x (1000/f1 - 1000/f2) us and nothing
    else: the kernel cost is GPU cycles (kernel_us is quoted at 1 GHz)."""
    case = next(c for c in cases if c.engine and c.clock_mhz)
    params = pf.Params(0.5, 32.0, {"gpu_compute": 0.0}, {case.family: (0.5, 12.0)}, (0.5, 12.0))
    slow = pf.predict_ms(dataclasses.replace(case, clock_mhz=500.0), params)
    fast = pf.predict_ms(dataclasses.replace(case, clock_mhz=2000.0), params)
    n = case.times.n_ops
    assert n > 0
    # 12 us at 1 GHz: 24 us per kernel at 500 MHz, 6 us at 2 GHz -> 18 us (0.018 ms) per kernel apart
    assert slow - fast == pytest.approx(n * 0.018, rel=1e-9)
    # a mode without a stated clock keeps kernel_us as quoted
    assert pf.kernel_scale(None) == 1.0 and pf.kernel_scale(1000.0) == 1.0


def test_host_side_scope_terms_are_per_device_type(cases):
    """A type without rows of a scope keeps that scope's prior; the other type's fit does not leak into it."""
    params = pf.Params(0.5, 32.0, {"gpu_compute": 0.0, "end_to_end@soc": 5.0, "engine@soc": 0.07},
                       {}, (0.5, 12.0))
    assert params.scope("end_to_end", "soc") == 5.0 and params.scope("engine", "soc") == 0.07
    assert params.scope("end_to_end", "gpu") == pf.PRIORS["end_to_end"] == 2.0
    assert params.scope("engine", "gpu") == pf.PRIORS["engine"] == 0.1
    assert params.scope("gpu_compute", "gpu") == 0.0
    assert params.efficiency("turing-gpu", "end_to_end", source="").overhead_ms == 2.0
    assert params.efficiency("ampere-soc", "end_to_end", source="").overhead_ms == 5.0
    # fitted on Jetson rows only: the gpu terms stay at their priors
    soc = [c for c in cases if c.engine and c.device_type == "soc"]
    fitted = pf.fit(soc)
    assert "end_to_end@gpu" not in fitted.scope_ms and "engine@gpu" not in fitted.scope_ms
    assert fitted.scope("end_to_end", "gpu") == pf.PRIORS["end_to_end"]
    assert fitted.scope("end_to_end", "soc") != pf.PRIORS["end_to_end"]
