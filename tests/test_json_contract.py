"""The JSON contract: `model analyze`, `model show`, `fit`, `ask`, `query` and `card` print the same bytes as the
golden files in tests/golden/, through the real CLI on a registry of demo sample models.

Only volatile values are normalised (the temporary directory, registration and measurement times, analysis timings,
the sha256 and size of torch archives, which embed the source paths of the checkout); everything else
must match byte for byte, so a refactor that changes a key, its order, a number or its formatting fails here.

Regenerate after an intended change of output: ``EMBODIED_AI_REGEN_GOLDEN=1 pytest tests/test_json_contract.py``,
then review the diff of tests/golden/ (``EMBODIED_AI_GOLDEN_DIR=/some/dir`` writes or reads the files there instead,
to compare two checkouts).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

GOLDEN = Path(os.environ.get("EMBODIED_AI_GOLDEN_DIR") or Path(__file__).parent / "golden")
REGEN = os.environ.get("EMBODIED_AI_REGEN_GOLDEN") == "1"

# demo samples covering ONNX, TorchScript and torch.export, convolutions and attention (small-vit: softmax, matmul)
SAMPLES = ("yolo-style", "small-vit", "mlp-policy")
DEVICES = ("jetson-orin-nano-8gb", "raspberry-pi-5")  # catalog devices only: no host calibration in the numbers
QUESTIONS = {
    "ask_fastest_detector_orin_int8": "fastest detector on the orin nano in int8",
    "ask_3_fastest_orin_fp16": "3 fastest models on the orin nano in fp16",
    "ask_under_20ms_orin_15w": "which models run under 20 ms on a jetson orin nano at 15 W?",
    "ask_count_params": "how many models have fewer than 5M params?",
}
# every property of the RUNS_ON edges (the fit rows as the graph holds them) on one device, and the measurement
CYPHER = ("MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE h.device = 'jetson-orin-nano-8gb' "
          "RETURN m.name, h.power_mode, r ORDER BY m.name, h.power_mode, r.precision")
CYPHER_MEASURED = "MATCH (x:Measurement)-[:ON]->(h:Hardware) RETURN x, h.device, h.power_mode"
# one stored measurement: it calibrates that device for every model and shows as measured_latency_ms
MEASUREMENT = ("--model", "yolo-style", "--hw", "jetson-orin-nano-8gb", "--mode", "15W", "--precision", "fp16",
               "--latency-ms", "4.2", "--source", "golden test", "--runtime", "tensorrt")
VOLATILE = {"registered_at", "measured_at", "analysis_seconds", "seconds", "lineage"}  # keys whose values differ from run to run
# torch archives that embed the source paths of the zoo modules (and of torch): their bytes, hence sha256 and size,
# depend on where the checkout and the venv live; ONNX, state_dict and safetensors files do not
PATH_DEPENDENT = {"torchscript_traced", "torchscript_scripted", "exported_program"}


@dataclass(frozen=True)
class Workspace:
    tmp: Path
    replace: tuple[tuple[str, str], ...]  # (text, placeholder) in strings
    sizes: dict[int, str]  # size_bytes value -> placeholder


@functools.lru_cache(maxsize=1)
def _workspace() -> Workspace:
    """A temporary directory with the sample files and a registry of them, built once per process."""
    import atexit

    from embodied_tui.analysis.zoo import samples

    tmp = Path(tempfile.mkdtemp(prefix="embodied-ai-golden-"))
    atexit.register(shutil.rmtree, tmp, True)
    by_name = {s.name: s for s in samples.SAMPLES}
    replace, sizes = [], {}
    for name in SAMPLES:
        sample = by_name[name]
        path = samples.write_sample(sample, tmp / "models")
        if sample.how in PATH_DEPENDENT:
            sha, size = hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size
            replace += [(sha, f"<sha256 of {name}>"), (sha[:12], f"<sha256 of {name}>"),
                        (f"{size:,}", f"<size of {name}>")]
            sizes[size] = f"<size of {name}>"
        args = ["model", "register", str(path), "--name", name, "--description", sample.description]
        for key, value in sample.tags.items():
            args += ["--tag", f"{key}={value}" if value else key]
        if sample.pass_shape:
            for shape in samples.input_shapes(sample):
                args += ["--input-shape", ",".join(map(str, shape))]
        _cli(tmp, *args)
    _cli(tmp, "measurement", "add", *MEASUREMENT)
    return Workspace(tmp, tuple(replace), sizes)


def _cli(where: Path | Workspace, *args: str) -> str:
    from click.testing import CliRunner

    from embodied_tui.cli import main

    tmp = where.tmp if isinstance(where, Workspace) else where
    result = CliRunner().invoke(main, ["--db", str(tmp / "registry.json"), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _normalise(value, ws: Workspace):
    if isinstance(value, dict):
        return {k: ("<volatile>" if k in VOLATILE and v is not None else
                    ws.sizes.get(v, v) if k == "size_bytes" and isinstance(v, int) else _normalise(v, ws))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v, ws) for v in value]
    if isinstance(value, str):
        value = value.replace(str(ws.tmp), "<tmp>")
        for text, placeholder in ws.replace:
            value = value.replace(text, placeholder)
    return value


def _check(name: str, output: str, ws: Workspace) -> None:
    # re-printed with the CLI's own settings (indent=2, key order kept), so only normalised values can differ
    text = json.dumps(_normalise(json.loads(output), ws), indent=2) + "\n"
    assert str(ws.tmp) not in text
    path = GOLDEN / f"{name}.json"
    if REGEN:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
        return
    assert path.is_file(), f"{path} is missing: run with EMBODIED_AI_REGEN_GOLDEN=1 to write it"
    expected = path.read_text()
    if text != expected:  # the first differing line makes the failure readable; the whole text must match
        for i, (a, b) in enumerate(zip(text.splitlines(), expected.splitlines()), 1):
            assert a == b, f"{path.name} line {i} differs"
    assert text == expected, f"{path.name} differs in length"


def _safe(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower())


@pytest.fixture(scope="module")
def ws() -> Workspace:
    return _workspace()


@pytest.mark.parametrize("name", SAMPLES)
def test_model_analyze_json(ws, name):
    from embodied_tui.analysis.zoo import samples

    sample = next(s for s in samples.SAMPLES if s.name == name)
    args = ["model", "analyze", str(ws.tmp / "models" / sample.filename), "--json"]
    if sample.pass_shape:
        for shape in samples.input_shapes(sample):
            args[-1:-1] = ["--input-shape", ",".join(map(str, shape))]
    _check(f"analyze_{_safe(name)}", _cli(ws, *args), ws)


@pytest.mark.parametrize("name", SAMPLES)
def test_model_show_json(ws, name):
    _check(f"show_{_safe(name)}", _cli(ws, "model", "show", name, "--json"), ws)


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("hw", DEVICES)
def test_fit_json(ws, name, hw):
    _check(f"fit_{_safe(name)}_{_safe(hw)}", _cli(ws, "fit", name, "--hw", hw, "--json"), ws)


def test_fit_json_with_layers(ws):
    _check("fit_small_vit_pi5_fp32_layers",
           _cli(ws, "fit", "small-vit", "--hw", "raspberry-pi-5", "--precision", "fp32", "--layers", "--json"), ws)


@pytest.mark.parametrize("key", sorted(QUESTIONS))
def test_ask_json(ws, key):
    _check(key, _cli(ws, "ask", QUESTIONS[key], "--json"), ws)


def test_query_json(ws):
    _check("query_orin_edges", _cli(ws, "query", CYPHER, "--json"), ws)
    _check("query_measurement", _cli(ws, "query", CYPHER_MEASURED, "--json"), ws)


def test_card_json(ws):
    _check("card_small_vit", _cli(ws, "card", "small-vit", "--json"), ws)


def test_cached_answers_are_the_same(ws):
    """A second ask reads its fit rows from the cache file: the answer is the same bytes."""
    key = "ask_under_20ms_orin_15w"
    _check(key, _cli(ws, "ask", QUESTIONS[key], "--json"), ws)
