#!/usr/bin/env bash
# GPU check for `bench` and `calibrate --device gpu` (issue 13), for a machine with an NVIDIA GPU. Under 5 minutes.
#
#     bash benchmarks/gpu_check.sh [OUT_DIR]          (from the repository root; PY=... to pick the interpreter)
#
# 1. says what the machine offers (nvidia-smi, torch.cuda, onnxruntime's providers);
# 2. runs the GPU-only tests of tests/test_bench.py (they skip on machines without a GPU);
# 3. writes 3 zoo models as ONNX and TorchScript, registers them in a fresh registry and benches each on the GPU
#    (`--device gpu`: onnxruntime's CUDA provider with IO binding, torch with CUDA events);
# 4. runs `calibrate --device gpu` on the calibration set;
# 5. prints one JSON object with every result (and leaves the files in OUT_DIR).
# Where onnxruntime has no CUDA provider (the CPU wheel), its benches say so in one line and run on the CPU; the
# TorchScript benches still time the GPU.
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${1:-$(mktemp -d -t embodied-ai-gpu-check-XXXX)}
mkdir -p "$OUT"
DB="$OUT/registry.json"
MODELS=(resnet_tiny mobilenet_v3_small small_vit)
cli() { "$PY" -m embodied_tui --db "$DB" "$@"; }

echo "== machine" >&2
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 || echo "nvidia-smi: not found" >&2
"$PY" - >&2 <<'EOF'
from embodied_tui.perf.gpu import choose_device, gpu_name, probe
a = probe()
print(f"gpu: {gpu_name(a)}; onnxruntime providers: {', '.join(a.ort_providers)}; torch.cuda: {a.torch_cuda}")
for runtime in ("onnxruntime", "torch"):
    print(f"  {runtime}: {choose_device('gpu', runtime, a).reason}")
EOF

echo "== GPU tests" >&2
"$PY" -m pytest -q -p no:cacheprovider tests/test_bench.py -k "gpu or cuda or device" >&2

echo "== models" >&2
"$PY" - "$OUT" "${MODELS[@]}" >&2 <<'EOF'
import sys
from pathlib import Path
from embodied_tui.services.host import calibration_models, save_model_file
out = Path(sys.argv[1])
for name, module, example in calibration_models(sys.argv[2:]):
    for runtime in ("onnxruntime", "torch"):
        print(save_model_file(module, example, out, name, runtime)[0])
EOF
for m in "${MODELS[@]}"; do
  cli model register "$OUT/$m.onnx" --name "${m}_onnx" >&2
  cli model register "$OUT/$m.pt" --name "${m}_ts" >&2
  cli bench "${m}_onnx" --device gpu --json > "$OUT/bench_${m}_onnx.json"
  cli bench "${m}_ts" --device gpu --json > "$OUT/bench_${m}_ts.json"
done

echo "== calibrate --device gpu" >&2
cli calibrate --device gpu --json > "$OUT/calibrate_gpu.json"

"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
benches = {}
for f in sorted(out.glob("bench_*.json")):
    r = json.loads(f.read_text())
    b, m = r["bench"], r["measurement"]
    benches[f.stem.removeprefix("bench_")] = {
        "device": b["device"], "provider": b["provider"], "gpu": b["gpu_name"], "runtime": m["runtime"],
        "hardware": m["hardware"], "median_ms": b["median_ms"], "p90_ms": b["p90_ms"], "min_ms": b["min_ms"],
        "runs": b["runs"], "timed": b["timed"], "notice": r["device_choice"]["notice"]}
cal = json.loads((out / "calibrate_gpu.json").read_text())
summary = {"out": str(out), "bench": benches,
           "calibrate": {k: cal.get(k) for k in ("gpu", "provider", "runtime", "peak_tflops", "matmul_tflops",
                                                  "bandwidth_gbps", "sm_count", "calibration", "points",
                                                  "skipped", "seconds")}}
print(json.dumps(summary, indent=2))
EOF
