"""Real latency measurements of tiny models with onnxruntime and torch (structure only, never a time threshold)."""
from __future__ import annotations

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
