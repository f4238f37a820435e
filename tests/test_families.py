"""Family, type and task from structure alone, for every model of the corpus (tests/corpus) in every format it can be
written in: TorchScript, .pt2, ONNX, ONNX fp16 (Casts around the float32 islands) and ONNX QDQ int8
(Quantize/DequantizeLinear around every op). A Cast or a Q/DQ pair must not change the verdict, and the evidence must
name the structure that decided it.

Exported files are kept in pytest's cache directory (``.pytest_cache/d/embodied-corpus/<key>``), keyed by the corpus
sources and the torch/onnx/onnxruntime versions: the first run writes them (about two minutes on one core), later
runs only analyse them. ``pytest --cache-clear`` (or ``-p no:cacheprovider``) writes them afresh.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from pathlib import Path

import pytest
from corpus import CORPUS
from corpus.export import FORMATS, SUFFIX, write

# Cases where the analysis itself fails (a limitation of a counter or loader, not of classification), none today.
# Strict: each turns into a failure the moment the fix lands, so its mark can be removed.
XFAIL: dict[tuple[str, str], str] = {}
# Formats a model cannot be written in with torch 2.13 (none today): (model, format) -> why; shown in the test id.
CANNOT_EXPORT: dict[tuple[str, str], str] = {}

# The structure the evidence must name for each family.
DECIDING = {
    "yolo": "distribution focal loss (DFL)", "detr": "object queries", "rt-detr": "deformable attention",
    "bert": "token embedding", "gpt": "causal", "t5": "relative position bias", "whisper": "1-D convolution stem",
    "vit": "patch embedding", "swin": "cyclic shift", "maxvit": "window partition", "mobilevit": "inverted residual",
    "efficientformer": "pooling token mixer", "levit": "shrinking attention", "segformer": "efficient self-attention",
    "unet": "upsample + concat", "diffusion-policy": "sinusoidal time embedding", "pointnet": "global max pool",
    "squeezenet": "fire module", "shufflenet": "channel shuffle", "inception": "inception block",
    "alexnet": "large-kernel strided stem", "densenet": "dense concatenation", "resnet": "residual addition",
    "mobilenet": "inverted residual", "efficientnet": "squeeze-excite", "convnext": "depthwise",
    "regnet": "grouped", "vgg": "convolutions", "lstm": "recurrent layer", "gru": "recurrent layer",
    "mlp": "linear layer",
}


def _cases():
    for name in CORPUS:
        for fmt in FORMATS:
            marks, case_id = [], f"{name}-{fmt}"
            if (name, fmt) in CANNOT_EXPORT:
                why = CANNOT_EXPORT[name, fmt]
                marks.append(pytest.mark.skip(reason=why))
                case_id += f"-skip:{why[:40]}"
            elif (name, fmt) in XFAIL:
                marks.append(pytest.mark.xfail(strict=True, reason=XFAIL[name, fmt]))
            yield pytest.param(name, fmt, marks=marks, id=case_id)


def _key() -> str:
    import onnx
    import onnxruntime
    import torch

    h = hashlib.sha256(f"{torch.__version__} {onnx.__version__} {onnxruntime.__version__}".encode())
    for path in sorted((Path(__file__).parent / "corpus").glob("*.py")):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


class Files:
    """The corpus written to disk on demand: one model built once, each format written once (atomically)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.built: dict = {}

    def model(self, name: str):
        if name not in self.built:
            self.built = {name: CORPUS[name]()}  # one model in memory at a time
        return self.built[name]

    def path(self, name: str, fmt: str) -> Path:
        path = self.root / f"{name}{SUFFIX[fmt]}"
        if path.exists():
            return path
        base = self.root / f"{name}.onnx"
        if fmt.startswith("onnx_") and not base.exists():
            self.path(name, "onnx")
        tmp = path.with_name(f"tmp-{os.getpid()}-{path.name}")
        write(self.model(name), fmt, tmp, base if fmt.startswith("onnx_") else None)
        tmp.replace(path)
        return path


@pytest.fixture(scope="module")
def files(request, tmp_path_factory) -> Files:
    cache = getattr(request.config, "cache", None)
    if cache is None:
        return Files(tmp_path_factory.mktemp("corpus"))
    base = cache.mkdir("embodied-corpus")
    for old in base.iterdir():  # files of an older corpus or torch: written again when needed
        if old.name != _key():
            shutil.rmtree(old, ignore_errors=True)
    root = base / _key()
    root.mkdir(exist_ok=True)
    return Files(root)


@pytest.mark.parametrize("name,fmt", list(_cases()))
def test_family_type_and_task_from_structure(name, fmt, files):
    from embodied_tui.analysis.api import InputShape, analyze_file

    model = files.model(name)
    path = files.path(name, fmt)
    shapes = None
    if fmt == "torchscript" and all(t.is_floating_point() for t in model.inputs):
        shapes = [list(t.shape) for t in model.inputs]  # TorchScript files carry no input shapes
    elif fmt == "torchscript" and len(model.inputs) > 1:  # token ids beside other inputs: state each dtype, as
        shapes = [InputShape(list(t.shape), str(t.dtype).removeprefix("torch.")) for t in model.inputs]  # '1,8:int64'
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = analyze_file(path, input_shape=shapes).architecture
    got = (arch.family, arch.type, arch.task)
    assert got == (model.family, model.type, model.task), arch.evidence
    assert arch.evidence and arch.evidence[-1].startswith("=> "), arch.evidence
    key = DECIDING[model.family]
    assert any(key in line for line in arch.evidence), (key, arch.evidence)
