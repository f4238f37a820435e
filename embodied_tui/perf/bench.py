"""Measured latency: what a measurement is, and how to take one on this machine.

``bench_file`` times one inference of a model file on the host CPU, batch as in its input shape:
- ``.onnx`` (format ``onnx``): onnxruntime, CPU execution provider, ``intra_op_num_threads`` = ``threads``, one
  inter-op thread, full graph optimisations; the timed call is ``session.run`` on inputs already in memory.
- TorchScript, ExportedProgram, full pickle (with ``trust_code``): torch on CPU, ``torch.set_num_threads(threads)``,
  under ``torch.inference_mode()``; the timed call is ``module(*inputs)``.
Warm-up runs first (not timed), then repeated runs until both ``min_runs`` and ``min_seconds`` are reached (capped at
``max_runs``). Reported: median, p90 (nearest-rank), min and mean in ms, the number of runs, threads and the runtime's
version, and the CPU pressure over the timed runs (Linux PSI: the share of wall time some task waited for a CPU;
well above 0 means other work shared the machine and the times are inflated). Inputs are random (floats from
N(0, 1), integers 0 or 1, booleans False) in the record's shapes and dtypes.
On a GPU (``bench_file(..., choice=)`` with a ``perf.gpu.DeviceChoice`` on the GPU): onnxruntime with the CUDA (or
TensorRT) execution provider and IO binding, torch with the module and inputs on ``cuda`` and CUDA events; how each
is timed is in ``perf.gpu``. ``device``, ``provider`` and ``gpu_name`` say where a result was taken.
"""
from __future__ import annotations

import datetime as _dt
import math
import time
from pathlib import Path
from typing import Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from embodied_tui.data.records import Lineage, _added
from embodied_tui.errors import AnalysisError, UserError

RUNTIMES = ("onnxruntime", "torch")


class Measurement(BaseModel):
    """One latency of one model on one device x power mode x precision x runtime, with where it came from."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # JSON has no NaN or infinity

    model: str
    model_version: int | None = None
    model_sha256: str | None = None
    hardware: str
    power_mode: str
    precision: str
    runtime: str  # "onnxruntime-cpu", "torch-cpu", "tensorrt", "hailort", "tflite-edgetpu", ...
    runtime_version: str | None = None
    batch: int = Field(default=1, ge=1)
    latency_ms: float = Field(gt=0)  # median
    p90_ms: float | None = None
    min_ms: float | None = None
    runs: int | None = None
    threads: int | None = None
    source: str  # "embodied-ai bench on host-...", "NVIDIA benchmark page, 2024", ...
    timed: str = ""  # what the time covers: "session.run only", "end to end incl. pre/post-processing", ...
    measured_at: str = Field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    # who stored it, from which host, with which embodied-ai, and (for `bench`) the runtime library, its version and
    # execution provider; None on measurements stored before lineage was recorded
    lineage: Lineage | None = _added()


class BenchResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    runtime: str  # onnxruntime | torch
    runtime_version: str
    provider: str  # "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider", "cpu", "cuda"
    threads: int
    warmup: int
    runs: int
    median_ms: float
    p90_ms: float
    min_ms: float
    mean_ms: float
    input_shapes: list[list[int]]
    input_dtypes: list[str]
    timed: str
    cpu_pressure: float | None = None  # share of the timed wall time some task waited for a CPU (Linux PSI)
    device: str = "cpu"  # "cpu" | "gpu": where the model ran
    gpu_name: str | None = None  # torch.cuda.get_device_name / nvidia-smi, when it ran on a GPU


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in [0, 100]) of already sorted values."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def cpu_pressure_us() -> int | None:
    """Linux pressure-stall "some" total for CPU, microseconds (None where /proc/pressure is absent)."""
    try:
        with open("/proc/pressure/cpu") as fh:
            for line in fh:
                if line.startswith("some"):
                    return int(line.rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def timed_with_pressure(call: Callable[[], object], **timing) -> tuple[list[float], float | None]:
    """``time_calls`` plus the CPU pressure over the timed part: how busy the machine was (0 = quiet)."""
    before, start = cpu_pressure_us(), time.perf_counter()
    samples = time_calls(call, **timing)
    after, wall = cpu_pressure_us(), time.perf_counter() - start
    pressure = None if before is None or after is None or wall <= 0 else round((after - before) / 1e6 / wall, 3)
    return samples, pressure


def time_calls(call: Callable[[], object], *, warmup: int = 3, min_runs: int = 10, max_runs: int = 500,
               min_seconds: float = 1.0) -> list[float]:
    """Seconds per call of ``call``: ``warmup`` untimed calls, then at least ``min_runs`` timed ones and at least
    ``min_seconds`` in all (at most ``max_runs``)."""
    for _ in range(warmup):
        call()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < max_runs and (len(samples) < min_runs or time.perf_counter() - start < min_seconds):
        t = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t)
    return samples


def summarise(samples: Sequence[float], **fields) -> BenchResult:
    ms = sorted(s * 1e3 for s in samples)
    n = len(ms)
    med = ms[n // 2] if n % 2 else 0.5 * (ms[n // 2 - 1] + ms[n // 2])
    return BenchResult(median_ms=med, p90_ms=percentile(ms, 90), min_ms=ms[0], mean_ms=sum(ms) / n, runs=n,
                       **fields)


_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int8)": "int8", "tensor(uint8)": "uint8",
              "tensor(bool)": "bool"}


def _numpy_input(shape: Sequence[int], dtype: str, rng):
    import numpy as np

    dtype = dtype or "float32"
    if dtype.startswith("float") or dtype in ("bfloat16", "half", "double"):
        np_dtype = {"bfloat16": "float32", "half": "float16", "double": "float64"}.get(dtype, dtype)
        return rng.standard_normal(size=tuple(shape)).astype(np_dtype)
    if dtype == "bool":
        return np.zeros(tuple(shape), dtype=bool)
    return rng.integers(0, 2, size=tuple(shape)).astype(dtype)


def _check_shapes(input_shapes: Sequence[Sequence[int]], path: Path) -> None:
    if not input_shapes:
        raise UserError(f"{path}: no input shape is known, so it cannot be run; re-register it with "
                        f"--input-shape (e.g. 1,3,224,224)")


def bench_onnx(path: str | Path, input_shapes: Sequence[Sequence[int]], input_dtypes: Sequence[str] = (), *,
               threads: int, warmup: int = 3, min_runs: int = 10, min_seconds: float = 1.0,
               max_runs: int = 500, provider: str = "CPUExecutionProvider", gpu_name: str | None = None
               ) -> BenchResult:
    """Latency of an ONNX model with onnxruntime's ``provider`` (the CPU by default; see the module doc)."""
    import numpy as np
    import onnxruntime as ort

    path = Path(path)
    _check_shapes(input_shapes, path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    providers = [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise AnalysisError(f"{path}: onnxruntime cannot load it ({str(exc).splitlines()[0][:200]})") from None
    if session.get_providers()[0] != provider:  # onnxruntime falls back to the CPU when a GPU library is missing
        raise AnalysisError(f"{path}: onnxruntime could not start {provider} (it ran with "
                            f"{', '.join(session.get_providers())}); check the CUDA libraries or use --device cpu")
    inputs = session.get_inputs()
    if len(inputs) != len(input_shapes):
        raise UserError(f"{path}: the model has {len(inputs)} inputs but {len(input_shapes)} shapes are known; "
                        f"re-register it with one --input-shape per input")
    rng = np.random.default_rng(0)
    feed, dtypes = {}, []
    for i, (meta, shape) in enumerate(zip(inputs, input_shapes)):
        dtype = _ORT_TYPES.get(meta.type) or (input_dtypes[i] if i < len(input_dtypes) else "float32")
        feed[meta.name] = _numpy_input(shape, dtype, rng)
        dtypes.append(dtype)

    def call():
        session.run(None, feed)

    timed = f"InferenceSession.run on inputs in memory ({provider}, ORT_ENABLE_ALL)"
    if provider != "CPUExecutionProvider":
        call, timed = _io_bound(session, feed, provider)
    try:
        samples, pressure = timed_with_pressure(call, warmup=warmup, min_runs=min_runs, min_seconds=min_seconds,
                                                max_runs=max_runs)
    except Exception as exc:
        raise AnalysisError(f"{path}: onnxruntime failed to run it with inputs {list(map(list, input_shapes))} "
                            f"({str(exc).splitlines()[0][:200]})") from None
    return summarise(samples, runtime="onnxruntime", runtime_version=ort.__version__,
                     provider=provider, threads=threads, warmup=warmup, cpu_pressure=pressure,
                     input_shapes=[list(s) for s in input_shapes], input_dtypes=dtypes, timed=timed,
                     device="cpu" if provider == "CPUExecutionProvider" else "gpu", gpu_name=gpu_name)


def _io_bound(session, feed: dict, provider: str):
    """A call running ``session`` with IO binding: inputs copied to GPU 0 once, outputs left there (``perf.gpu``)."""
    import onnxruntime as ort

    binding = session.io_binding()
    for name, array in feed.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, "cuda", 0))
    for out in session.get_outputs():
        binding.bind_output(out.name, "cuda", 0)

    def call():
        session.run_with_iobinding(binding)

    return call, (f"InferenceSession.run_with_iobinding, inputs and outputs on the GPU ({provider}, "
                  f"ORT_ENABLE_ALL; wall clock, the provider synchronised at the end of each run)")


def load_torch_callable(path: Path, fmt: str, *, trust_code: bool = False):
    """A callable module for a TorchScript / ExportedProgram / (trusted) full-pickle file."""
    import torch

    if fmt == "torchscript":
        module = torch.jit.load(str(path), map_location="cpu")
    elif fmt == "exported_program":  # never torch.export.load: it runs code from the file (see analysis.loaders)
        from embodied_tui.analysis.loaders import load_exported_program

        module = load_exported_program(path, trust_code=trust_code, weights=True).module()
    elif fmt == "pickle":
        if not trust_code:
            raise UserError(f"{path}: a full pickle runs code when loaded; pass --trust-code if you trust it")
        from embodied_tui.analysis.loaders import warn_trusted

        warn_trusted(path)
        with open(path, "rb") as fh:  # a file object: torch.load dispatches paths ending in .safetensors by name
            module = torch.load(fh, map_location="cpu", weights_only=False)
    else:
        raise UserError(f"{path}: a {fmt} file holds weights without the code to run them, so it cannot be "
                        f"benchmarked; export it to TorchScript, ExportedProgram or ONNX first")
    if hasattr(module, "eval"):
        try:
            module.eval()
        except (NotImplementedError, RuntimeError):  # ExportedProgram modules refuse .eval() in some versions
            pass
    return module


def bench_torch(path: str | Path, fmt: str, input_shapes: Sequence[Sequence[int]], input_dtypes: Sequence[str] = (),
                *, threads: int, trust_code: bool = False, warmup: int = 3, min_runs: int = 10,
                min_seconds: float = 1.0, max_runs: int = 500, cuda: bool = False,
                gpu_name: str | None = None) -> BenchResult:
    """Latency of a torch model file on the CPU, or on GPU 0 with ``cuda`` (see the module doc)."""
    import torch

    path = Path(path)
    _check_shapes(input_shapes, path)
    try:
        module = load_torch_callable(path, fmt, trust_code=trust_code)
    except UserError:
        raise
    except Exception as exc:
        raise AnalysisError(f"{path}: torch cannot load it as {fmt} ({str(exc).splitlines()[0][:200]})") from None
    gen = torch.Generator().manual_seed(0)
    args, dtypes = [], []
    for i, shape in enumerate(input_shapes):
        dtype = input_dtypes[i] if i < len(input_dtypes) and input_dtypes[i] else "float32"
        tdtype = getattr(torch, dtype, torch.float32)
        if tdtype.is_floating_point:
            args.append(torch.randn(*shape, generator=gen).to(tdtype))
        elif tdtype == torch.bool:
            args.append(torch.zeros(*shape, dtype=torch.bool))
        else:
            args.append(torch.randint(0, 2, tuple(shape), generator=gen, dtype=tdtype))
        dtypes.append(dtype)
    if cuda:
        module = module.to("cuda")
        args = [a.to("cuda") for a in args]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)

    def call():
        with torch.inference_mode():
            module(*args)

    try:
        if cuda:
            from embodied_tui.perf.gpu import time_cuda_events

            samples = time_cuda_events(call, warmup=warmup, min_runs=min_runs, min_seconds=min_seconds,
                                       max_runs=max_runs)
            pressure = None
        else:
            samples, pressure = timed_with_pressure(call, warmup=warmup, min_runs=min_runs,
                                                    min_seconds=min_seconds, max_runs=max_runs)
    except Exception as exc:
        raise AnalysisError(f"{path}: the model failed to run on inputs {list(map(list, input_shapes))} "
                            f"({str(exc).splitlines()[0][:200]})") from None
    finally:
        torch.set_num_threads(previous)
    where = "on cuda, CUDA events around each call" if cuda else "on the CPU"
    return summarise(samples, runtime="torch", runtime_version=torch.__version__, provider="cuda" if cuda else "cpu",
                     threads=threads, warmup=warmup, cpu_pressure=pressure,
                     input_shapes=[list(s) for s in input_shapes], input_dtypes=dtypes,
                     timed=f"module(*inputs) under torch.inference_mode() ({fmt}, {where})",
                     device="gpu" if cuda else "cpu", gpu_name=gpu_name)


def default_runtime(fmt: str) -> str:
    return "onnxruntime" if fmt == "onnx" else "torch"


def bench_file(path: str | Path, fmt: str, input_shapes: Sequence[Sequence[int]], input_dtypes: Sequence[str] = (),
               *, runtime: str | None = None, threads: int | None = None, trust_code: bool = False,
               choice=None, gpu_name: str | None = None, **timing) -> BenchResult:
    """Latency of a model file on this machine with ``runtime`` (default: onnxruntime for ONNX, torch otherwise),
    on the CPU, or where ``choice`` (a ``perf.gpu.DeviceChoice`` for this runtime) says."""
    from embodied_tui.analysis.loaders import regular_file_problem
    from embodied_tui.perf.calibrate import default_threads

    problem = regular_file_problem(Path(path))
    if problem and Path(path).exists():  # a FIFO or device would block the runtime's open
        raise UserError(f"{path}: {problem}")
    runtime = runtime or default_runtime(fmt)
    threads = threads or default_threads()
    if runtime not in RUNTIMES:
        raise UserError(f"unknown runtime {runtime!r}; valid: {', '.join(RUNTIMES)}")
    if runtime == "onnxruntime":
        if fmt != "onnx":
            raise UserError(f"{path}: onnxruntime runs ONNX files only and this is {fmt}; use --runtime torch")
        provider = choice.provider if choice is not None and choice.on_gpu else "CPUExecutionProvider"
        return bench_onnx(path, input_shapes, input_dtypes, threads=threads, provider=provider, gpu_name=gpu_name,
                          **timing)
    if fmt == "onnx":
        raise UserError(f"{path}: torch cannot run an ONNX file; use --runtime onnxruntime")
    cuda = choice is not None and choice.on_gpu
    return bench_torch(path, fmt, input_shapes, input_dtypes, threads=threads, trust_code=trust_code, cuda=cuda,
                       gpu_name=gpu_name, **timing)


def runtime_label(result: BenchResult) -> str:
    """The runtime name a measurement is filed under: "onnxruntime-cpu", "torch-cpu", "onnxruntime-cuda",
    "onnxruntime-tensorrt" or "torch-cuda"."""
    if result.device != "gpu":
        return f"{result.runtime}-cpu"
    return f"{result.runtime}-{'tensorrt' if result.provider == 'TensorrtExecutionProvider' else 'cuda'}"
