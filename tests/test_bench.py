"""Real latency measurements of tiny models with onnxruntime and torch (structure only, never a time threshold)."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from embodied_tui.errors import UserError
from embodied_tui.perf.bench import Measurement, bench_file, bench_onnx, percentile, summarise, time_calls


def tiny_onnx(path, features=64, hidden=32):
    """Y = relu(X @ W) with X [batch, features]: a real ONNX file built with onnx.helper."""
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((features, hidden)).astype(np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["H"]), helper.make_node("Relu", ["H"], ["Y"])], "tiny",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", hidden])], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def check_result(result, *, runtime, version, threads, shapes):
    assert result.runtime == runtime and result.runtime_version == version
    assert result.threads == threads
    assert result.runs >= 5
    assert 0 < result.min_ms <= result.median_ms <= result.p90_ms
    assert result.min_ms <= result.mean_ms
    assert result.input_shapes == shapes
    assert result.timed
    assert result.cpu_pressure is None or result.cpu_pressure >= 0


def test_onnxruntime_bench_of_a_tiny_model(tmp_path):
    path = tiny_onnx(tmp_path / "tiny.onnx")
    result = bench_onnx(path, [[4, 64]], ["float32"], threads=1, warmup=1, min_runs=5, min_seconds=0.0)
    check_result(result, runtime="onnxruntime", version=onnxruntime.__version__, threads=1, shapes=[[4, 64]])
    assert result.provider == "CPUExecutionProvider" and result.input_dtypes == ["float32"]


def test_bench_file_chooses_the_runtime_by_format(tmp_path):
    path = tiny_onnx(tmp_path / "tiny.onnx")
    result = bench_file(path, "onnx", [[1, 64]], threads=2, warmup=1, min_runs=5, min_seconds=0.0)
    assert result.runtime == "onnxruntime" and result.threads == 2
    with pytest.raises(UserError, match="torch cannot run an ONNX"):
        bench_file(path, "onnx", [[1, 64]], runtime="torch", threads=1)


def test_torch_bench_of_a_torchscript_model(tmp_path):
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                 torch.nn.Linear(8 * 14 * 14, 4)).eval()
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.trace(module, torch.randn(1, 3, 16, 16)), str(path))
    threads_before = torch.get_num_threads()
    result = bench_file(path, "torchscript", [[1, 3, 16, 16]], ["float32"], threads=1, warmup=1, min_runs=5,
                        min_seconds=0.0)
    check_result(result, runtime="torch", version=torch.__version__, threads=1, shapes=[[1, 3, 16, 16]])
    assert torch.get_num_threads() == threads_before  # restored


def test_bench_refuses_what_it_cannot_run(tmp_path):
    path = tiny_onnx(tmp_path / "tiny.onnx")
    with pytest.raises(UserError, match="input shape"):
        bench_onnx(path, [], threads=1)
    with pytest.raises(UserError, match="2 shapes"):
        bench_onnx(path, [[1, 64], [1, 64]], threads=1)
    with pytest.raises(UserError, match="cannot be benchmarked"):
        bench_file(tmp_path / "weights.pt", "state_dict", [[1, 3]], threads=1)
    with pytest.raises(UserError, match="unknown runtime"):
        bench_file(path, "onnx", [[1, 64]], runtime="tensorrt", threads=1)


def test_time_calls_counts_runs_and_warmup():
    calls = []
    samples = time_calls(lambda: calls.append(1), warmup=2, min_runs=7, min_seconds=0.0, max_runs=100)
    assert len(samples) == 7 and len(calls) == 9
    assert all(s >= 0 for s in samples)


def test_percentile_and_summary_by_hand():
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert percentile(values, 90) == 9.0 and percentile(values, 50) == 5.0 and percentile(values, 100) == 10.0
    result = summarise([v / 1e3 for v in values], runtime="x", runtime_version="0", provider="cpu", threads=1,
                       warmup=0, input_shapes=[], input_dtypes=[], timed="t")
    assert result.median_ms == pytest.approx(5.5) and result.p90_ms == pytest.approx(9.0)
    assert result.mean_ms == pytest.approx(5.5) and result.min_ms == pytest.approx(1.0)


def test_measurement_rejects_a_non_positive_latency():
    with pytest.raises(ValueError):
        Measurement(model="m", hardware="h", power_mode="p", precision="fp32", runtime="r", latency_ms=0,
                    source="s")


def test_torch_bench_of_an_exported_program(tmp_path):
    module = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU()).eval()
    path = tmp_path / "tiny.pt2"
    torch.export.save(torch.export.export(module, (torch.randn(2, 16),)), str(path))
    result = bench_file(path, "exported_program", [[2, 16]], ["float32"], threads=1, warmup=1, min_runs=5,
                        min_seconds=0.0)
    check_result(result, runtime="torch", version=torch.__version__, threads=1, shapes=[[2, 16]])
    assert "exported_program" in result.timed


# ---------------------------------------------------------------------------------------------------- GPU timing

GPU_HERE = torch.cuda.is_available()
ORT_PROVIDER_SETS = [(), ("CPUExecutionProvider",), ("AzureExecutionProvider", "CPUExecutionProvider"),
                     ("CUDAExecutionProvider", "CPUExecutionProvider"),
                     ("TensorrtExecutionProvider", "CPUExecutionProvider"),
                     ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")]


@pytest.mark.parametrize("request_", ["auto", "gpu", "cpu"])
@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
@pytest.mark.parametrize("providers", ORT_PROVIDER_SETS, ids=lambda p: "+".join(p) or "no-ort")
@pytest.mark.parametrize("torch_cuda", [False, True], ids=["no-torch-cuda", "torch-cuda"])
def test_device_choice_for_every_request_runtime_and_machine(request_, runtime, providers, torch_cuda):
    """The rule, case by case: --device cpu is always the CPU; otherwise the runtime's own way to the GPU
    (onnxruntime: CUDA provider first, TensorRT second; torch: torch.cuda), else the CPU, with a notice only when
    the GPU was asked for by name."""
    from embodied_tui.perf.gpu import Available, choose_device

    choice = choose_device(request_, runtime, Available(providers, torch_cuda))
    cpu_provider = "CPUExecutionProvider" if runtime == "onnxruntime" else "cpu"
    if runtime == "onnxruntime":
        gpu = ("CUDAExecutionProvider" if "CUDAExecutionProvider" in providers
               else "TensorrtExecutionProvider" if "TensorrtExecutionProvider" in providers else None)
        other_gpu = torch_cuda
    else:
        gpu = "cuda" if torch_cuda else None
        other_gpu = any(p in providers for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider"))
    if request_ == "cpu":
        assert (choice.device, choice.provider, choice.notice) == ("cpu", cpu_provider, None)
    elif gpu is not None:
        assert (choice.device, choice.provider, choice.notice) == ("gpu", gpu, None) and choice.on_gpu
    else:
        assert (choice.device, choice.provider) == ("cpu", cpu_provider) and not choice.on_gpu
        assert choice.reason.endswith(": timing on the CPU") and "\n" not in choice.reason
        assert (choice.notice == choice.reason) if request_ == "gpu" else choice.notice is None
        assert ("torch.cuda available" if torch_cuda else "torch.cuda unavailable") in choice.reason
        assert (", ".join(providers) or "onnxruntime not installed") in choice.reason
        other = "torch" if runtime == "onnxruntime" else "onnxruntime"
        assert (f"--runtime {other} times on the GPU" in choice.reason) == other_gpu


def test_the_notice_on_a_machine_without_a_gpu_is_the_documented_line():
    from embodied_tui.perf.gpu import Available, choose_device

    choice = choose_device("gpu", "onnxruntime", Available(("CPUExecutionProvider",), False))
    assert choice.notice == ("no CUDA GPU found (onnxruntime providers: CPUExecutionProvider; torch.cuda "
                             "unavailable): timing on the CPU")


def test_device_choice_refuses_unknown_requests_and_runtimes():
    from embodied_tui.perf.gpu import Available, choose_device

    with pytest.raises(UserError, match="unknown device 'tpu'; valid: auto, gpu, cpu"):
        choose_device("tpu", "torch", Available())
    with pytest.raises(UserError, match="unknown runtime"):
        choose_device("gpu", "tensorrt", Available())


def test_runtime_label_names_the_device_and_provider():
    from embodied_tui.perf.bench import runtime_label

    def result(runtime, provider, device):
        return summarise([1e-3], runtime=runtime, runtime_version="0", provider=provider, threads=1, warmup=0,
                         input_shapes=[], input_dtypes=[], timed="t", device=device)

    assert runtime_label(result("onnxruntime", "CPUExecutionProvider", "cpu")) == "onnxruntime-cpu"
    assert runtime_label(result("torch", "cpu", "cpu")) == "torch-cpu"
    assert runtime_label(result("onnxruntime", "CUDAExecutionProvider", "gpu")) == "onnxruntime-cuda"
    assert runtime_label(result("onnxruntime", "TensorrtExecutionProvider", "gpu")) == "onnxruntime-tensorrt"
    assert runtime_label(result("torch", "cuda", "gpu")) == "torch-cuda"


def test_a_cpu_choice_times_on_the_cpu_as_before(tmp_path):
    from embodied_tui.perf.gpu import Available, choose_device

    path = tiny_onnx(tmp_path / "tiny.onnx")
    choice = choose_device("gpu", "onnxruntime", Available(("CPUExecutionProvider",), False))
    result = bench_file(path, "onnx", [[2, 64]], threads=1, warmup=1, min_runs=5, min_seconds=0.0, choice=choice)
    assert result.device == "cpu" and result.provider == "CPUExecutionProvider" and result.gpu_name is None


def test_gpu_device_entries_validate_with_and_without_measured_peaks():
    from embodied_tui.data.hardware import parse_entry
    from embodied_tui.perf.gpu import GpuPeaks, gpu_device, gpu_slug

    assert gpu_slug("NVIDIA H100 80GB HBM3") == "gpu-nvidia-h100-80gb-hbm3"
    bare = parse_entry(gpu_device("NVIDIA T4", None), "t")
    assert bare.id == "gpu-nvidia-t4" and bare.type == "gpu" and bare.default.peak_tflops == {}
    assert bare.default.memory_bandwidth_gbps is None  # not measured: unknown, never 0
    peaks = GpuPeaks(name="NVIDIA T4", matmul_flops={"fp32": {1024: 3.0e12, 2048: 4.5e12},
                                                     "fp16": {1024: 20e12, 2048: 40e12}},
                     copy_bytes_per_s=240e9, memory_bytes=16 * 2 ** 30, sm_count=40, torch_version="x", seconds=1)
    entry = parse_entry(gpu_device("NVIDIA T4", peaks), "t")
    assert entry.default.peak_tflops == {"fp32": 4.5, "fp16": 40.0}  # the best size, 1e12 FLOP/s per TFLOPS
    assert entry.default.memory_bandwidth_gbps == 240.0 and entry.default.active_sms == 40
    assert entry.memory_bytes == 16 * 2 ** 30 and "this-gpu" in entry.aliases


def _register_tiny(db, tmp_path):
    from embodied_tui.analysis.api import analyze_file
    from embodied_tui.data.store import Registry

    path = tiny_onnx(tmp_path / "tiny.onnx")
    Registry(db).add(analyze_file(path, input_shape=[[1, 64]]), "tiny")


def _cli(db, *args):
    from click.testing import CliRunner

    from embodied_tui.cli import main

    return CliRunner().invoke(main, ["--db", str(db), *args])


@pytest.mark.skipif(GPU_HERE or any(p in onnxruntime.get_available_providers() for p in
                                    ("CUDAExecutionProvider", "TensorrtExecutionProvider")),
                    reason="this machine has a GPU: the no-GPU notice does not apply")
def test_bench_device_gpu_without_a_gpu_says_so_once_and_times_on_the_cpu(db, tmp_path):
    _register_tiny(db, tmp_path)
    line = (f"no CUDA GPU found (onnxruntime providers: {', '.join(onnxruntime.get_available_providers())}; "
            f"torch.cuda unavailable): timing on the CPU")
    result = _cli(db, "bench", "tiny", "--device", "gpu", "--threads", "1", "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [line]
    out = json.loads(result.stdout)
    assert out["bench"]["device"] == "cpu" and out["bench"]["provider"] == "CPUExecutionProvider"
    assert out["measurement"]["runtime"] == "onnxruntime-cpu" and out["measurement"]["hardware"].startswith("host-")
    assert out["device_choice"] == {"device": "cpu", "provider": "CPUExecutionProvider", "reason": line,
                                    "notice": line}
    human = _cli(db, "bench", "tiny", "--device", "gpu", "--threads", "1", "--no-save")
    assert human.exit_code == 0 and human.stderr.splitlines() == [line]
    assert "tiny v1 on host-" in human.stdout and "1 threads" in human.stdout
    for quiet in ("auto", "cpu"):  # auto falls back quietly, as bench did before GPU timing
        again = _cli(db, "bench", "tiny", "--device", quiet, "--threads", "1", "--no-save")
        assert again.exit_code == 0 and again.stderr == "", again.stderr


def test_bench_refuses_an_unknown_device(db, tmp_path):
    _register_tiny(db, tmp_path)
    result = _cli(db, "bench", "tiny", "--device", "npu")
    assert result.exit_code == 2 and "'npu' is not one of 'auto', 'gpu', 'cpu'" in result.output


@pytest.mark.skipif(GPU_HERE, reason="this machine has a CUDA GPU")
def test_calibrate_device_gpu_without_a_gpu_says_so_and_calibrates_the_cpu(db):
    result = _cli(db, "calibrate", "--device", "gpu", "--models", "mlp_policy", "--threads", "1", "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0].startswith("no CUDA GPU")
    assert result.stderr.splitlines()[0].endswith(": timing on the CPU")
    out = json.loads(result.stdout)
    assert out["device"]["id"].startswith("host-") and out["runtime"] == "onnxruntime-cpu"


# GPU paths: they run only where a CUDA GPU is present (benchmarks/gpu_check.sh runs the CLI end to end there)

@pytest.mark.skipif(not GPU_HERE, reason="needs a CUDA GPU (torch.cuda)")
def test_torch_bench_on_the_gpu_uses_cuda_events(tmp_path):
    from embodied_tui.perf.gpu import Available, choose_device

    module = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 8)).eval()
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.trace(module, torch.randn(4, 64)), str(path))
    choice = choose_device("gpu", "torch", Available((), True))
    result = bench_file(path, "torchscript", [[4, 64]], ["float32"], threads=1, warmup=2, min_runs=5,
                        min_seconds=0.0, choice=choice, gpu_name=torch.cuda.get_device_name(0))
    check_result(result, runtime="torch", version=torch.__version__, threads=1, shapes=[[4, 64]])
    assert result.device == "gpu" and result.provider == "cuda" and "CUDA events" in result.timed
    assert result.gpu_name == torch.cuda.get_device_name(0)


@pytest.mark.skipif("CUDAExecutionProvider" not in onnxruntime.get_available_providers(),
                    reason="needs onnxruntime's CUDA execution provider")
def test_onnxruntime_bench_on_the_gpu_uses_io_binding(tmp_path):
    path = tiny_onnx(tmp_path / "tiny.onnx")
    result = bench_onnx(path, [[4, 64]], ["float32"], threads=1, warmup=2, min_runs=5, min_seconds=0.0,
                        provider="CUDAExecutionProvider")
    check_result(result, runtime="onnxruntime", version=onnxruntime.__version__, threads=1, shapes=[[4, 64]])
    assert result.device == "gpu" and "run_with_iobinding" in result.timed


@pytest.mark.skipif(not GPU_HERE, reason="needs a CUDA GPU (torch.cuda)")
def test_gpu_microbenchmarks_measure_fp16_above_fp32_and_a_positive_copy_rate():
    from embodied_tui.perf.gpu import measure_gpu

    peaks = measure_gpu(sizes=(1024, 2048), repeats=3, copy_mbytes=64)
    assert peaks.peak("fp16") > peaks.peak("fp32") > 0 and peaks.copy_bytes_per_s > 0
    assert peaks.sm_count == torch.cuda.get_device_properties(0).multi_processor_count
    assert peaks.name == torch.cuda.get_device_name(0)


def test_a_model_stored_in_fp8_or_fp4_is_benched_at_that_precision():
    from embodied_tui.services.host import precision_of

    for dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
        assert precision_of(str(dtype)) == "fp8"
    assert precision_of("float4_e2m1fn_x2") == "fp4"
    assert precision_of(str(torch.float32)) == "fp32" and precision_of(str(torch.bfloat16)) == "bf16"
