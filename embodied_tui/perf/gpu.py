"""GPU timing: which device and provider times a model, and the GPU's own microbenchmarks.

The choice (``choose_device``) is a pure function of what is installed and what was asked:
- ``request``: ``cpu`` (always the CPU), ``gpu`` (the GPU, else the CPU with a one-line notice), ``auto`` (the GPU
  when one is usable, else the CPU quietly, as before GPU timing existed).
- onnxruntime uses ``CUDAExecutionProvider`` when it is available, else ``TensorrtExecutionProvider`` (the TensorRT
  provider builds an engine per model first, which can take minutes; CUDA is preferred so a bench stays short).
  torch uses ``torch.cuda``. A GPU that only the other runtime can reach does not count: the notice says which
  runtime can reach it.
How a GPU run is timed (``perf.bench``): warm-up runs first (not timed, they also pick kernels), then
- torch: CUDA events recorded around each call on the current stream; the time is ``start.elapsed_time(end)``
  after ``end.synchronize()``: GPU time of the call, inputs already on the GPU.
- onnxruntime: ``run_with_iobinding`` with inputs copied to the GPU once beforehand and outputs left on the GPU;
  onnxruntime synchronises the provider's stream at the end of each run, so the wall-clock time around the call
  covers the GPU work (plus the launch cost on the host, which is part of inference at batch 1).
GPU microbenchmarks (``measure_gpu``, torch CUDA only): ``n x n`` matmuls at fp32 (TF32 off, so fp32 means fp32)
and fp16 (``2 n^3`` FLOP each; the best sustained rate over sizes), and a device-to-device copy of a large buffer
(``2 x bytes`` moved per copy: read and write). Medians and p90 are nearest-rank, as for the CPU.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Callable, Sequence

DEVICE_REQUESTS = ("auto", "gpu", "cpu")
ORT_GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")  # in order of preference
ORT_CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class DeviceChoice:
    """Where a model is timed: ``device`` "gpu" or "cpu", ``provider`` the onnxruntime execution provider or, for
    torch, "cuda" / "cpu"; ``reason`` says why; ``notice`` is the one line to show (a GPU was asked for and none is
    usable), else None."""

    device: str
    provider: str
    reason: str
    notice: str | None = None

    @property
    def on_gpu(self) -> bool:
        return self.device == "gpu"


@dataclass(frozen=True)
class Available:
    """What this machine offers: onnxruntime's execution providers and whether torch sees a CUDA GPU."""

    ort_providers: tuple[str, ...] = ()
    torch_cuda: bool = False
    details: dict = field(default_factory=dict)


def _describe(available: Available) -> str:
    providers = ", ".join(available.ort_providers) or "onnxruntime not installed"
    return (f"onnxruntime providers: {providers}; "
            f"torch.cuda {'available' if available.torch_cuda else 'unavailable'}")


def choose_device(request: str, runtime: str, available: Available) -> DeviceChoice:
    """The device and provider that time a model run with ``runtime`` ("onnxruntime" or "torch"); see the module
    doc for the rule. Pure: the same inputs always give the same choice."""
    from embodied_tui.errors import UserError

    if request not in DEVICE_REQUESTS:
        raise UserError(f"unknown device {request!r}; valid: {', '.join(DEVICE_REQUESTS)}")
    if runtime not in ("onnxruntime", "torch"):
        raise UserError(f"unknown runtime {runtime!r}; valid: onnxruntime, torch")
    cpu = ORT_CPU if runtime == "onnxruntime" else "cpu"
    if request == "cpu":
        return DeviceChoice("cpu", cpu, "--device cpu")
    if runtime == "onnxruntime":
        gpu = next((p for p in ORT_GPU_PROVIDERS if p in available.ort_providers), None)
    else:
        gpu = "cuda" if available.torch_cuda else None
    if gpu is not None:
        return DeviceChoice("gpu", gpu, f"{runtime} reaches the GPU through {gpu} (--device {request})")
    other = "torch" if runtime == "onnxruntime" else "onnxruntime"
    other_has = (available.torch_cuda if runtime == "onnxruntime"
                 else any(p in available.ort_providers for p in ORT_GPU_PROVIDERS))
    if other_has:
        what = f"no CUDA GPU for {runtime} ({_describe(available)}; --runtime {other} times on the GPU)"
    else:
        what = f"no CUDA GPU found ({_describe(available)})"
    reason = f"{what}: timing on the CPU"
    return DeviceChoice("cpu", cpu, reason, notice=reason if request == "gpu" else None)


def probe() -> Available:
    """onnxruntime's available providers and torch.cuda.is_available() on this machine (imports both)."""
    try:
        import onnxruntime as ort

        providers = tuple(ort.get_available_providers())
    except ImportError:
        providers = ()
    try:
        import torch

        cuda = bool(torch.cuda.is_available())
    except ImportError:
        cuda = False
    return Available(providers, cuda)


def gpu_name(available: Available | None = None) -> str | None:
    """The GPU's name: torch.cuda.get_device_name(0) when torch sees it, else the first line of
    ``nvidia-smi --query-gpu=name``; None when neither answers."""
    available = available or probe()
    if available.torch_cuda:
        import torch

        return torch.cuda.get_device_name(0)
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    first = out.stdout.strip().splitlines()[0].strip() if out.returncode == 0 and out.stdout.strip() else ""
    return first or None


def gpu_slug(name: str) -> str:
    """Device id of a measured GPU: "NVIDIA H100 80GB HBM3" -> "gpu-nvidia-h100-80gb-hbm3"."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return f"gpu-{slug or 'cuda'}"[:60].rstrip("-")


# ---------------------------------------------------------------------------------------------------- timing

def time_cuda_events(call: Callable[[], object], *, warmup: int = 3, min_runs: int = 10, max_runs: int = 500,
                     min_seconds: float = 1.0) -> list[float]:
    """Seconds per call of ``call`` on the GPU, from CUDA events around each call (same run rule as
    ``perf.bench.time_calls``: ``warmup`` untimed calls, then at least ``min_runs`` and ``min_seconds`` of GPU time,
    at most ``max_runs``)."""
    import torch

    for _ in range(warmup):
        call()
    torch.cuda.synchronize()
    samples: list[float] = []
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    while len(samples) < max_runs and (len(samples) < min_runs or sum(samples) < min_seconds):
        start.record()
        call()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / 1e3)
    return samples


# ---------------------------------------------------------------------------------------------------- peaks

@dataclass(frozen=True)
class GpuPeaks:
    name: str
    matmul_flops: dict[str, dict[int, float]]  # precision -> size -> FLOP/s
    copy_bytes_per_s: float
    memory_bytes: int | None
    sm_count: int | None
    torch_version: str
    seconds: float

    def peak(self, precision: str) -> float | None:
        rates = self.matmul_flops.get(precision)
        return max(rates.values()) if rates else None


def measure_gpu(sizes: Sequence[int] = (1024, 2048, 4096, 8192), *, repeats: int = 10,
                copy_mbytes: int = 1024) -> GpuPeaks:
    """fp32 and fp16 matmul rates and copy bandwidth of GPU 0, timed with CUDA events (see the module doc)."""
    import time

    import torch

    t0 = time.perf_counter()
    props = torch.cuda.get_device_properties(0)
    previous_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    rates: dict[str, dict[int, float]] = {}
    try:
        for precision, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
            rates[precision] = {}
            for n in sizes:
                a = torch.randn(n, n, device="cuda", dtype=dtype)
                b = torch.randn(n, n, device="cuda", dtype=dtype)
                c = torch.empty(n, n, device="cuda", dtype=dtype)
                samples = time_cuda_events(lambda a=a, b=b, c=c: torch.mm(a, b, out=c), warmup=2, min_runs=repeats,
                                           max_runs=repeats, min_seconds=0.0)
                rates[precision][n] = 2 * n ** 3 / min(samples)
        n = copy_mbytes * 1024 * 1024 // 4
        src, dst = torch.empty(n, device="cuda"), torch.empty(n, device="cuda")
        samples = time_cuda_events(lambda src=src, dst=dst: dst.copy_(src), warmup=2, min_runs=repeats, max_runs=repeats,
                                   min_seconds=0.0)
        copy = 2 * 4 * n / min(samples)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous_tf32
        torch.cuda.empty_cache()
    return GpuPeaks(name=torch.cuda.get_device_name(0), matmul_flops=rates, copy_bytes_per_s=copy,
                    memory_bytes=int(props.total_memory), sm_count=int(props.multi_processor_count),
                    torch_version=torch.__version__, seconds=time.perf_counter() - t0)


GPU_ALIASES = ("this-gpu",)  # the name the GPU `calibrate --device gpu` measured last answers to


def gpu_device(name: str, peaks: GpuPeaks | None, calibration: list[dict] | None = None) -> dict:
    """A HardwareEntry-shaped dict for this machine's GPU (id ``gpu-<name>``, one power mode ``default``), validated
    by the caller. ``peaks`` None (torch cannot reach the GPU): no peaks, said in a note; never a guess."""
    import datetime as _dt

    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mode: dict = {"name": "default", "power_w": None, "source": "", "notes": []}
    notes = ["measured on this machine; re-run `embodied-ai calibrate --device gpu` after driver or clock changes"]
    entry: dict = {"id": gpu_slug(name), "name": f"{name} (this machine's GPU)", "vendor": "NVIDIA",
                   "type": "gpu", "aliases": list(GPU_ALIASES), "default_mode": "default", "notes": notes,
                   "calibration": calibration or []}
    if peaks is None:
        mode["source"] = f"named by nvidia-smi on {when}; peaks not measured (torch.cuda unavailable)"
        mode["notes"] = ["no peaks: `calibrate --device gpu` needs torch with CUDA to measure them"]
        entry["sources"] = {"name": "nvidia-smi --query-gpu=name"}
    else:
        mode["source"] = (f"measured by `embodied-ai calibrate --device gpu` on {when}: fp32 (TF32 off) and fp16 "
                          f"matmul, best of sizes {', '.join(str(n) for n in peaks.matmul_flops['fp32'])}; "
                          f"device copy {peaks.copy_bytes_per_s / 1e9:.1f} GB/s (torch {peaks.torch_version}, "
                          f"CUDA events)")
        mode["memory_bandwidth_gbps"] = round(peaks.copy_bytes_per_s / 1e9, 3)
        mode["peak_tflops"] = {p: round(peaks.peak(p) / 1e12, 4) for p in ("fp32", "fp16") if peaks.peak(p)}
        mode["active_sms"] = peaks.sm_count
        mode["notes"] = ["measured peaks: what cuBLAS sustains, below the datasheet's dense peak"]
        entry["memory_bytes"] = peaks.memory_bytes
        entry["sources"] = {"peaks": mode["source"]}
    entry["power_modes"] = [mode]
    return entry
