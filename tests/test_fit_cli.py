"""`embodied-ai fit`, `measurement`, `bench` and `calibrate` through the real CLI on a real registry."""
from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

from embodied_tui.analysis.api import analyze_file
from embodied_tui.cli import main
from embodied_tui.data.hardware import find_device, parse_entry
from embodied_tui.data.store import Registry
from embodied_tui.errors import UserError
from embodied_tui.perf.calibrate import HostPeaks, host_device
from embodied_tui.perf.roofline import BYTES_PER_ELEMENT
from embodied_tui.services.fit import devices, fit_rows
from embodied_tui.services.hardware import add_user_device, all_devices, origins, user_devices
from embodied_tui.services.host import calibrate_host, host_entry, save_host

REQUIRED = ("model", "hardware", "power_mode", "precision", "power_w", "macs", "bytes", "arithmetic_intensity",
            "ridge_point", "bound", "roofline_latency_ms", "predicted_latency_ms", "measured_latency_ms", "fps",
            "fits_memory")


class Net(torch.nn.Module):
    def __init__(self, width: int = 16):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, width, 3, padding=1)
        self.dw = torch.nn.Conv2d(width, width, 3, padding=1, groups=width)
        self.fc = torch.nn.Linear(width, 10)

    def forward(self, x):
        x = torch.relu(self.dw(torch.relu(self.conv(x))))
        return self.fc(x.mean((2, 3)))


def register(db, tmp_path, name: str, width: int = 16, size: int = 32):
    path = tmp_path / f"{name}.pt"
    torch.jit.save(torch.jit.trace(Net(width).eval(), torch.randn(1, 3, size, size)), str(path))
    analysis = analyze_file(path, input_shape=[[1, 3, size, size]])
    record, _ = Registry(db).add(analysis, name)
    return record, analysis


def run(db, *args):
    return CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False)


def test_fit_json_rows_for_every_device(db, tmp_path):
    record, analysis = register(db, tmp_path, "net")
    result = run(db, "fit", "net", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows and all(key in row for row in rows for key in REQUIRED)
    preds = [r["predicted_latency_ms"] for r in rows if r["predicted_latency_ms"] is not None]
    assert preds == sorted(preds)  # fastest first
    assert {r["model"] for r in rows} == {"net"} and all(r["macs"] == record.macs for r in rows)
    for r in rows:
        if r["predicted_latency_ms"] is not None:
            assert r["roofline_latency_ms"] <= r["predicted_latency_ms"]
            # GPUs and SoCs: the TensorRT engine model fitted to published latencies; other types: their defaults
            expected = "published" if r["device_type"] in ("gpu", "soc") else "default"
            assert r["calibration"] == expected and r["calibration_source"]
            assert r["measured_latency_ms"] is None
            # every prediction has an interval around it and says what it rests on
            assert r["interval_low_ms"] <= r["predicted_latency_ms"] <= r["interval_high_ms"]
            assert r["basis"] in ("exact", "sibling", "defaults") and "interval" in r["basis_detail"]
    # every layer's MACs are charged: the model's FLOPs are 2 x its MACs
    assert all(r["flops"] == 2 * record.macs for r in rows if r["flops"] is not None)
    # bytes at the row's precision are the unfused element count times the bytes per element
    elems = sum(c.weight_elems + c.read_elems + c.write_elems for c in analysis.layer_costs)
    assert all(r["bytes"] == pytest.approx(elems * BYTES_PER_ELEMENT[r["precision"]]) for r in rows if r["bytes"])


def _slow_rows(db, name: str, *, with_layers: bool = False, runtime: str | None = None) -> list[dict]:
    """The rows of `fit NAME` computed the slow, obvious way: ``fit_model`` from scratch on every device x mode x
    precision (its per-layer work again each time), ``FitRow.to_dict`` for the row, a fresh context each time."""
    from embodied_tui.perf.roofline import PRECISIONS, empty_fit, fit_model, fusion_for
    from embodied_tui.services.fit import FitContext, target_for

    reg = Registry(db)
    record = reg.get(name)
    costs = reg.details(record).layer_costs
    rows = []
    for entry in devices(db):
        for pm in entry.power_modes:
            for prec in [p for p in PRECISIONS if p in pm.peak_tflops]:
                ctx = FitContext.open(db)
                target, why = target_for(entry, pm, prec)
                if target is None:
                    fit = empty_fit(record.name, entry.id, pm.name, prec, pm.power_w, record.macs, why)
                else:
                    fit = fit_model(record, costs, target, ctx.efficiency(entry, pm.name, prec, runtime),
                                    with_layers=with_layers, fusion=fusion_for(runtime) if runtime else None)
                row = fit.to_dict()
                meas, n, meas_rt = ctx.measured(record, entry.id, pm.name, prec, row["runtime"] or runtime)
                row.update(model_version=record.version, hardware_name=entry.name, device_type=entry.type,
                           measured_latency_ms=meas, measured_n=n, measured_runtime=meas_rt,
                           measured_over_predicted=(None if meas is None or not row["predicted_latency_ms"]
                                                    else round(meas / row["predicted_latency_ms"], 4)))
                rows.append(row)
    rows.sort(key=lambda r: (r["predicted_latency_ms"] is None, r["predicted_latency_ms"] or 0.0, r["hardware"],
                             r["power_mode"], r["precision"]))
    return rows


@pytest.mark.parametrize("model, args", [("resnet_tiny", []), ("mobilenet_tiny", ["--layers"]),
                                         ("resnet_tiny", ["--runtime", "torch-cpu"])])
def test_fit_json_is_byte_identical_to_fit_model_on_each_target(tmp_path, model, args):
    """`fit NAME --json` shares the model's per-layer work between targets and builds rows without a deep copy; its
    output must be the bytes the obvious computation gives, on every catalog device. The models are zoo models of
    the shared registry (tests/ask_fixture.py: residual and depthwise convolutions with batch norms and activations,
    so epilogue fusion matters; resnet_tiny has a stored measurement); torch-cpu fits without fusion."""
    from ask_fixture import MEASURED, copy_registry

    from embodied_tui.commands.output import to_jsonable
    from embodied_tui.data.hardware import load_catalog
    from embodied_tui.perf.roofline import PRECISIONS

    db = str(copy_registry(tmp_path))
    result = run(db, "fit", model, "--json", *args)
    assert result.exit_code == 0, result.output
    with_layers, runtime = "--layers" in args, (args[1] if "--runtime" in args else None)
    expected = json.dumps(to_jsonable(_slow_rows(db, model, with_layers=with_layers, runtime=runtime)), indent=2)
    assert result.output == expected + "\n"
    rows = json.loads(result.output)
    catalog = load_catalog()
    assert {r["hardware"] for r in rows} == {e.id for e in catalog}  # every catalog device, every mode x precision
    assert len(rows) == sum(1 for e in catalog for m in e.power_modes for p in PRECISIONS if p in m.peak_tflops)
    # GPUs and SoCs run the TensorRT execution model (perf.engine), other devices epilogue fusion
    # (rows fitted to a stored measurement use that measurement's runtime)
    assert {(r["device_type"] in ("gpu", "soc"), r["fusion"]) for r in rows if r["calibration"] != "scaled"} == (
        {(True, "none"), (False, "none")} if runtime else {(True, "tensorrt"), (False, "epilogue")})
    for fusion in {r["fusion"] for r in rows}:  # one work per precision and fusion
        assert len({r["traffic_bytes"] for r in rows if r["precision"] == "fp32" and r["fusion"] == fusion}) == 1
    measured = [r["measured_latency_ms"] for r in rows if r["measured_latency_ms"] is not None]
    assert measured == [ms for m, *_, ms in MEASURED if m == model]
    assert all(r["layers"] for r in rows if r["flops"] is not None) == with_layers


def test_fit_one_device_mode_precision_by_hand(db, tmp_path):
    register(db, tmp_path, "net")
    rows = json.loads(run(db, "fit", "net", "--hw", "jetson-orin-nano-8gb", "--mode", "15w", "--precision",
                          "fp16", "--json").output)
    assert len(rows) == 1
    row = rows[0]
    mode = find_device("jetson-orin-nano-8gb").mode("15W")
    assert row["power_mode"] == "15W" and row["power_w"] == mode.power_w
    assert row["ridge_point"] == pytest.approx(mode.peak_tflops["fp16"] * 1e12 / (mode.memory_bandwidth_gbps * 1e9),
                                               rel=1e-5)
    assert row["energy_mj"] == pytest.approx(row["power_w"] * row["predicted_latency_ms"], rel=1e-5)
    assert row["fps"] == pytest.approx(1000 / row["predicted_latency_ms"], rel=1e-5)
    assert row["fits_memory"] is True and row["bound"] in ("compute", "memory", "overhead")
    # a tiny net on a TensorRT engine: each kernel's launch may outweigh its work
    assert row["top_layers"] and row["top_layers"][0]["bound"] in ("compute", "memory", "overhead")


def test_fit_on_an_accelerator_without_dram(db, tmp_path):
    register(db, tmp_path, "net")
    rows = json.loads(run(db, "fit", "net", "--hw", "hailo-8", "--json").output)
    assert [r["precision"] for r in rows] == ["int8"]
    row = rows[0]
    assert row["bandwidth_gbps"] is None and row["ridge_point"] is None
    assert row["predicted_latency_ms"] > 0 and row["time_memory_ms"] == 0
    no_fp32 = json.loads(run(db, "fit", "net", "--hw", "hailo-8", "--precision", "fp32", "--json").output)
    assert no_fp32[0]["predicted_latency_ms"] is None and "no fp32 peak" in no_fp32[0]["reason"]


def test_fit_human_table(db, tmp_path):
    register(db, tmp_path, "net")
    out = run(db, "fit", "net").output
    assert "net: latency per inference in ms, fastest first" in out and "jetson-orin-nano-8gb" in out
    assert "slower precision rows hidden" in out and "[default]" in out
    every = run(db, "fit", "net", "--all").output
    assert every.count("jetson-orin-nano-8gb ") > out.count("jetson-orin-nano-8gb ")
    why = run(db, "fit", "net", "--hw", "hailo-8", "--precision", "fp32").output
    assert "hailo-8 typical fp32: hailo-8 (typical) states no fp32 peak" in why


def test_fit_errors_are_one_line(db, tmp_path):
    register(db, tmp_path, "net")
    bad_hw = run(db, "fit", "net", "--hw", "no-such-board")
    assert bad_hw.exit_code == 2 and "valid ids" in bad_hw.output and "Traceback" not in bad_hw.output
    bad_mode = run(db, "fit", "net", "--hw", "jetson-orin-nano-8gb", "--mode", "99W")
    assert bad_mode.exit_code == 2 and "7W, 15W" in bad_mode.output
    bad_prec = run(db, "fit", "net", "--precision", "fp7")
    assert bad_prec.exit_code == 2 and "valid: fp32" in bad_prec.output
    missing = run(db, "fit", "nett")
    assert missing.exit_code == 2 and "no model named 'nett'" in missing.output


def test_fit_of_a_model_without_macs_says_why(db, tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"foo.weight": torch.randn(7, 5), "bar.bias": torch.randn(3)}, path)
    Registry(db).add(analyze_file(path), "weights")
    result = run(db, "fit", "weights")
    assert result.exit_code == 2
    assert "MACs are unknown" in result.output and "state_dict" in result.output


def test_measurements_calibrate_the_device(db, tmp_path):
    register(db, tmp_path, "net")
    add = ["measurement", "add", "--hw", "jetson-orin-nano-8gb", "--mode", "15W", "--precision", "fp16",
           "--runtime", "tensorrt", "--source", "test bench"]
    result = run(db, *add, "--model", "net", "--latency-ms", "3.0")
    assert result.exit_code == 0, result.output
    row = json.loads(run(db, "fit", "net", "--hw", "jetson-orin-nano-8gb", "--mode", "15W", "--precision",
                         "fp16", "--json").output)[0]
    assert row["measured_latency_ms"] == 3.0 and row["calibration"] == "scaled"
    assert row["predicted_latency_ms"] == pytest.approx(3.0, rel=1e-4)  # one point: a scale, matched exactly
    # the other power mode is predicted from the same scale, not measured
    other = json.loads(run(db, "fit", "net", "--hw", "jetson-orin-nano-8gb", "--mode", "7W", "--precision",
                           "fp16", "--json").output)[0]
    assert other["measured_latency_ms"] is None and other["calibration"] == "scaled"
    for i, (width, ms) in enumerate([(8, 2.5), (32, 3.6), (64, 5.0)]):
        register(db, tmp_path, f"net{i}", width=width)
        assert run(db, *add, "--model", f"net{i}", "--latency-ms", str(ms)).exit_code == 0
    row = json.loads(run(db, "fit", "net", "--hw", "jetson-orin-nano-8gb", "--precision", "fp16", "--mode", "15W",
                         "--json").output)[0]
    assert row["calibration"] == "measured" and row["fit_error"] is not None
    assert "4 measurements" in row["calibration_source"]
    listed = json.loads(run(db, "measurement", "list", "--json").output)
    assert len(listed) == 4 and {m["hardware"] for m in listed} == {"jetson-orin-nano-8gb"}
    assert listed[0]["source"] == "test bench" and listed[0]["model_sha256"]
    human = run(db, "measurement", "list", "--hw", "jetson-orin-nano-8gb").output
    assert "net v1 on jetson-orin-nano-8gb (15W, fp16, tensorrt): 3 ms" in human and "source: test bench" in human


def test_measurement_add_checks_its_input(db, tmp_path):
    register(db, tmp_path, "net")
    base = ["measurement", "add", "--model", "net", "--hw", "hailo-8", "--precision", "int8", "--source", "s"]
    assert "valid ids" in run(db, *base[:4], "--hw", "nope", *base[6:], "--latency-ms", "1").output
    negative = run(db, *base, "--latency-ms", "-1")
    assert negative.exit_code == 2 and "positive" in negative.output
    unknown_model = run(db, "measurement", "add", "--model", "ghost", "--hw", "hailo-8", "--precision", "int8",
                        "--source", "s", "--latency-ms", "1")
    assert unknown_model.exit_code == 2 and "ghost" in unknown_model.output
    assert json.loads(run(db, "measurement", "list", "--json").output) == []


def test_bench_stores_a_host_measurement_that_fit_shows(db, tmp_path):
    register(db, tmp_path, "net")
    result = run(db, "bench", "net", "--threads", "1", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    m = out["measurement"]
    assert m["hardware"].startswith("host-") and m["runtime"] == "torch-cpu" and m["threads"] == 1
    assert 0 < out["bench"]["min_ms"] <= m["latency_ms"] <= out["bench"]["p90_ms"]
    rows = fit_rows(db, "net", hw=m["hardware"])
    assert len(rows) == 1 and rows[0].measured_latency_ms == m["latency_ms"]
    assert rows[0].power_w is None and rows[0].energy_mj is None  # the host's power is not measured
    assert rows[0].calibration == "scaled"
    assert origins(db)[m["hardware"]] == "calibrate"  # the host bench measured is stored as a device


def test_six_published_measurements_fit_the_small_kernel_terms(db, tmp_path):
    """`measurement add` x 6 on one device x precision x runtime: the device's fit now carries t_op and K, every
    row states them, and the stored fit error is the median of the rows' own errors."""
    add = ["measurement", "add", "--hw", "jetson-orin-nano-8gb", "--mode", "15W", "--precision", "fp16",
           "--runtime", "tensorrt", "--source", "test bench"]
    # made-up latencies that grow with the nets' width and input size (widths and sizes vary the MACs per output)
    for i, (width, size, ms) in enumerate([(8, 32, 1.31), (16, 32, 1.35), (32, 48, 1.52), (64, 48, 2.05),
                                           (48, 64, 2.20), (96, 64, 4.6)]):
        register(db, tmp_path, f"n{i}", width=width, size=size)
        assert run(db, *add, "--model", f"n{i}", "--latency-ms", str(ms)).exit_code == 0
    rows = [json.loads(run(db, "fit", f"n{i}", "--hw", "jetson-orin-nano-8gb", "--mode", "15W", "--precision",
                           "fp16", "--json").stdout)[0] for i in range(6)]
    for row in rows:
        assert row["calibration"] == "measured" and "t_op" in row["calibration_source"]
        assert "6 measurements" in row["calibration_source"]
        assert row["op_overhead_ms"] >= 0 and row["macs_per_output_half"] >= 0 and row["n_ops"] > 0
        assert row["time_overhead_ms"] == pytest.approx(row["overhead_ms"] + row["n_ops"] * row["op_overhead_ms"],
                                                         rel=1e-4)
        assert row["predicted_latency_ms"] >= row["roofline_latency_ms"]
    errors = [abs(r["predicted_latency_ms"] / r["measured_latency_ms"] - 1) for r in rows]
    assert rows[0]["fit_error"] == pytest.approx(sorted(errors)[2] / 2 + sorted(errors)[3] / 2, rel=1e-3)


def test_calibrate_host_fits_efficiencies(db, tmp_path):
    result = calibrate_host(db, threads=1, models=["mlp_policy", "resnet_tiny", "no_such_model"], min_seconds=0.05)
    device = result["device"]
    assert device["id"].startswith("host-") and device["type"] == "cpu"
    mode = device["power_modes"][0]
    assert mode["peak_tflops"]["fp32"] > 0 and mode["memory_bandwidth_gbps"] > 0
    assert result["skipped"] == {"no_such_model": "not in the zoo"}
    cal = result["calibration"]
    assert cal["runtime"] == "onnxruntime-cpu" and cal["n_points"] == 2
    assert 0 < cal["eta_compute"] <= 1 and 0 < cal["eta_memory"] <= 1 and cal["overhead_ms"] >= 0
    assert [p["model"] for p in result["points"]] == ["mlp_policy", "resnet_tiny"]
    assert all(p["measured_ms"] > 0 and p["predicted_ms"] >= p["roofline_ms"] for p in result["points"])
    # the host is now a device `fit` knows, carrying that calibration
    host = next(e for e in devices(db) if e.id == device["id"])
    assert host.calibration[0].runtime == "onnxruntime-cpu"
    assert host == host_entry(db) and devices(db) == all_devices(db)  # one device, wherever it is read
    # its interval comes from its own residuals: two points are fewer than 8, so the stated x/÷ 2 fallback
    assert (cal["interval_log_low"], cal["interval_log_high"]) == pytest.approx((-math.log(2), math.log(2)), abs=1e-4)
    assert "x/÷ 2" in cal["interval_note"]
    register(db, tmp_path, "net")
    row = fit_rows(db, "net", hw=host.id, precision="fp32")[0]
    assert row.basis == "exact" and host.id in row.basis_detail
    assert row.interval_low_ms == pytest.approx(row.predicted_latency_ms / 2, rel=1e-3)
    assert row.interval_high_ms == pytest.approx(row.predicted_latency_ms * 2, rel=1e-3)


@pytest.mark.slow
def test_calibrate_cli(db):
    result = run(db, "calibrate", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["calibration"]["n_points"] >= 4 and out["seconds"] > 0


def test_the_calibrated_host_is_one_device_for_hw_and_fit(db, tmp_path):
    register(db, tmp_path, "net")
    result = run(db, "calibrate", "--threads", "1", "--models", "mlp_policy", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    host_id = out["device"]["id"]
    hosts = [d for d in json.loads(run(db, "hw", "list", "--json").stdout) if d["id"].startswith("host-")]
    assert [d["id"] for d in hosts] == [host_id]
    host = hosts[0]
    assert host["origin"] == "calibrate" and host["aliases"] == ["host", "this-machine"] and host["type"] == "cpu"
    # the measured figures as calibrate reported them (GFLOP/s -> TFLOPS), no power draw
    peak, bw = host["peak_tflops"]["fp32"], host["memory_bandwidth_gbps"]
    assert peak == pytest.approx(out["peak_gflops"] / 1e3, rel=1e-3) and bw == pytest.approx(out["bandwidth_gbps"],
                                                                                             rel=1e-3)
    assert host["power_w"] is None and host["power_modes"][0]["cpu_cores"] == 1
    assert host["calibration"] == [out["calibration"]] and out["calibration"]["n_points"] == 1
    if out["cache"]:  # sysfs stated the last-level cache
        assert host["cache_bytes"] == out["cache"]["bytes"]
        assert host["power_modes"][0]["cache_bandwidth_gbps"] == out["cache"]["bandwidth_gbps"]
    shown = json.loads(run(db, "hw", "show", "host", "--json").stdout)
    assert shown == {**host, "flags": []}
    assert "calibrate" in run(db, "hw", "list").stdout
    # `fit` predicts with that device and its calibration
    rows = json.loads(run(db, "fit", "net", "--hw", "host", "--json").stdout)
    assert [(r["hardware"], r["power_mode"], r["precision"]) for r in rows] == [(host_id, "default", "fp32")]
    row, cal = rows[0], out["calibration"]
    assert row["peak_tflops"] == pytest.approx(peak, rel=1e-5) and row["bandwidth_gbps"] == pytest.approx(bw)
    assert row["ridge_point"] == pytest.approx(peak * 1e12 / (bw * 1e9), rel=1e-4)
    assert row["power_w"] is None and row["energy_mj"] is None
    assert row["calibration"] == "host" and row["runtime"] == "onnxruntime-cpu"
    assert (row["eta_compute"], row["eta_memory"]) == (cal["eta_compute"], cal["eta_memory"])
    assert row["overhead_ms"] == pytest.approx(cal["overhead_ms"])
    assert row["predicted_latency_ms"] >= row["roofline_latency_ms"] > 0
    if out["cache"]:  # every layer of this small net fits the cache: at eta = 1 its bytes move at cache speed
        cache_bw = out["cache"]["bandwidth_gbps"] * 1e9
        for layer in row["top_layers"]:
            expected = max((layer["flops"] + layer["other_flops"]) / (peak * 1e12), layer["bytes"] / cache_bw)
            assert layer["roofline_ms"] == pytest.approx(expected * 1e3, rel=1e-3), layer["name"]
    by_hand = json.loads(run(db, "fit", "net", "--hw", host_id, "--json").stdout)
    assert by_hand == rows


def test_calibrating_again_replaces_the_host(db):
    first = run(db, "calibrate", "--threads", "1", "--models", "mlp_policy", "--json")
    second = run(db, "calibrate", "--threads", "1", "--models", "mlp_policy", "--json")
    assert first.exit_code == second.exit_code == 0, second.output
    first, second = json.loads(first.stdout), json.loads(second.stdout)
    assert first["device"]["id"] == second["device"]["id"]
    hosts = [d for d in json.loads(run(db, "hw", "list", "--json").stdout) if d["origin"] != "catalog"]
    assert [d["id"] for d in hosts] == [second["device"]["id"]]
    host = hosts[0]
    assert host["peak_tflops"]["fp32"] == pytest.approx(second["peak_gflops"] / 1e3, rel=1e-3)  # the new figures
    assert host["calibration"] == [second["calibration"]]  # replaced, not appended
    assert len(Registry(db).table_all("hardware")) == 1


def _peaks(cpu: str) -> HostPeaks:
    return HostPeaks(cpu=cpu, threads=2, peak_flops=2e11, matmul_flops={256: 2e11}, copy_bytes_per_s=2e10,
                     triad_bytes_per_s=2.4e10, torch_version="2", seconds=1.0, cache_bytes=2 ** 25,
                     cache_bytes_per_s=8e10)


def _host(cpu: str):
    return parse_entry(host_device(_peaks(cpu)), cpu)


def test_host_names_follow_the_machine_calibrated_last(db, tmp_path):
    old = save_host(db, _host("Old CPU"))
    assert old.id == "host-old" and old.aliases == ["host", "this-machine"]
    stored = json.loads(run(db, "hw", "show", "host", "--json").stdout)
    assert stored["id"] == "host-old" and stored["origin"] == "calibrate"
    assert stored["peak_tflops"] == {"fp32": 0.2} and stored["memory_bandwidth_gbps"] == 24.0  # best of copy, triad
    assert stored["cache_bytes"] == 2 ** 25 and stored["power_modes"][0]["cache_bandwidth_gbps"] == 80.0
    # a registry shared with another machine: the generic names move to it, the old host stays as itself
    save_host(db, _host("New CPU"))
    by_id = {e.id: e for e in user_devices(db)}
    assert set(by_id) == {"host-old", "host-new"}
    assert by_id["host-new"].aliases == ["host", "this-machine"] and by_id["host-old"].aliases == []
    assert find_device("host", all_devices(db)).id == "host-new"
    assert host_entry(db) is None  # neither is this machine
    # a name the user gave one of their own devices stays theirs
    other = tmp_path / "other.json"
    board = {"id": "my-board", "name": "My Board", "vendor": "Me", "type": "cpu", "aliases": ["this-machine"],
             "power_modes": [{"name": "on", "peak_tflops": {"fp32": 0.1}, "source": "me"}], "default_mode": "on"}
    add_user_device(other, parse_entry(board, "board"))
    assert save_host(other, _host("New CPU")).aliases == ["host"]
    assert find_device("this-machine", all_devices(other)).id == "my-board"
    # and calibrate never overwrites a device the user added under the host's id
    add_user_device(other, parse_entry({**board, "id": "host-mine", "aliases": []}, "mine"))
    with pytest.raises(UserError, match="already a user device.*hw remove host-mine"):
        save_host(other, _host("Mine"))
    assert origins(other)["host-mine"] == "user"


def test_calibrate_checks_its_options_before_measuring(db):
    empty = CliRunner().invoke(main, ["--db", db, "calibrate", "--models", " , "])
    assert empty.exit_code == 2 and "--models names no model" in empty.output and "Traceback" not in empty.output
    zero = CliRunner().invoke(main, ["--db", db, "calibrate", "--threads", "0"])
    assert zero.exit_code == 2 and "--threads" in zero.output
    assert Registry(db).table_all("hardware") == []


def test_stored_small_kernel_terms_reach_fit_rows_and_hw_show(db, tmp_path):
    """A host calibration with t_op and K (what `calibrate` stores from six or more models) drives `fit`."""
    register(db, tmp_path, "net")
    cal = {"precision": "fp32", "runtime": "onnxruntime-cpu", "eta_compute": 0.5, "eta_memory": 0.5,
           "overhead_ms": 0.004, "op_overhead_ms": 0.0015, "macs_per_output_half": 12.0, "source": "test",
           "fit_error": 0.1, "n_points": 8}
    save_host(db, parse_entry(host_device(_peaks("Test CPU"), calibration=[cal]), "test"))
    row = json.loads(run(db, "fit", "net", "--hw", "host", "--json").stdout)[0]
    assert row["calibration"] == "host" and row["runtime"] == "onnxruntime-cpu"
    assert (row["op_overhead_ms"], row["macs_per_output_half"]) == (0.0015, 12.0)
    # onnxruntime folds the ReLUs into the convs: conv, dw, mean and fc are launched (the exact set is the analyser's)
    assert 3 <= row["n_ops"] < 10
    assert row["time_overhead_ms"] == pytest.approx(0.004 + row["n_ops"] * 0.0015, rel=1e-5)
    without = dict(cal, op_overhead_ms=0.0, macs_per_output_half=0.0)
    save_host(db, parse_entry(host_device(_peaks("Test CPU"), calibration=[without]), "test"))
    plain = json.loads(run(db, "fit", "net", "--hw", "host", "--json").stdout)[0]
    assert plain["n_ops"] == row["n_ops"] and plain["time_overhead_ms"] == pytest.approx(0.004, rel=1e-5)
    assert row["predicted_latency_ms"] > plain["predicted_latency_ms"] + row["n_ops"] * 0.0015 * (1 - 1e-4)
    shown = run(db, "hw", "show", "host").stdout
    assert "t0 0.004 ms" in shown and "K 12" not in shown  # the plain calibration is stored now
    save_host(db, parse_entry(host_device(_peaks("Test CPU"), calibration=[cal]), "test"))
    shown = " ".join(run(db, "hw", "show", "host").stdout.split())
    assert "eta_c/eta_m 0.5/0.5, t0 0.004 ms, t_op 1.5 us, K 12, err 10% (test)" in shown


def test_each_model_is_predicted_with_its_own_runtime_on_the_host(db, tmp_path):
    """A host calibrated for onnxruntime, then `bench` of a TorchScript model (a torch-cpu measurement): an ONNX model
    keeps the onnxruntime calibration instead of the torch-scaled one, and the TorchScript model uses torch's."""
    cal = {"precision": "fp32", "runtime": "onnxruntime-cpu", "eta_compute": 0.9, "eta_memory": 0.8,
           "overhead_ms": 0.003, "op_overhead_ms": 0.0015, "macs_per_output_half": 12.0, "source": "test",
           "fit_error": 0.08, "n_points": 8}
    host = save_host(db, parse_entry(host_device(_peaks("Test CPU"), calibration=[cal]), "test"))
    register(db, tmp_path, "script")
    onnx_path = tmp_path / "net.onnx"
    torch.onnx.export(Net().eval(), (torch.randn(1, 3, 32, 32),), onnx_path, dynamo=False)
    Registry(db).add(analyze_file(onnx_path), "onnxnet")
    assert run(db, "measurement", "add", "--model", "script", "--hw", host.id, "--mode", "default", "--precision",
               "fp32", "--runtime", "torch-cpu", "--latency-ms", "0.5", "--source", "bench").exit_code == 0
    onnx_row = fit_rows(db, "onnxnet", hw=host.id)[0]
    assert onnx_row.runtime == "onnxruntime-cpu" and onnx_row.calibration == "host"
    assert (onnx_row.eta_compute, onnx_row.op_overhead_ms) == (0.9, 0.0015)
    script_row = fit_rows(db, "script", hw=host.id)[0]
    assert script_row.runtime == "torch-cpu" and script_row.calibration == "scaled"
    assert script_row.predicted_latency_ms == pytest.approx(0.5, rel=1e-4)  # one point: matched exactly
    # asked for explicitly, a runtime still wins over the model's own
    forced = json.loads(run(db, "fit", "onnxnet", "--hw", host.id, "--runtime", "torch-cpu", "--json").stdout)[0]
    assert forced["runtime"] == "torch-cpu" and forced["calibration"] == "scaled"
