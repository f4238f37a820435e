"""The demo models: small zoo architectures saved in every format we read, for `embodied-ai demo` and the tests.

Weights are seeded, so the same file has the same bytes on every run: registering the demo twice adds nothing.
A file that already exists is kept as it is. Importing this module does not import torch.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from embodied_tui.errors import UserError


@dataclass(frozen=True)
class Sample:
    name: str  # registry name
    builder: str  # embodied_tui.analysis.zoo.BUILDERS key
    how: str  # torchscript_traced | torchscript_scripted | exported_program | onnx | state_dict | safetensors
    filename: str
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    description: str = ""
    pass_shape: bool = False  # register with the builder's input shape (TorchScript files carry none)


SAMPLES: tuple[Sample, ...] = (
    Sample("resnet-tiny", "resnet_tiny", "torchscript_traced", "resnet_tiny.traced.pt",
           {"demo": ""}, "ResNet-style classifier, TorchScript (traced)", pass_shape=True),
    Sample("mobilenet-tiny", "mobilenet_tiny", "state_dict", "mobilenet_tiny.state_dict.pth",
           {"demo": ""}, "MobileNetV2-style backbone, a bare state_dict"),
    Sample("yolo-style", "yolo_style_detector", "onnx", "yolo_style_detector.onnx",
           {"demo": "", "robot": ""}, "YOLO-style detector exported to ONNX"),
    Sample("small-vit", "small_vit", "exported_program", "small_vit.pt2",
           {"demo": ""}, "Small ViT, torch.export ExportedProgram"),
    Sample("lstm-policy", "lstm_policy", "safetensors", "lstm_policy.safetensors",
           {"demo": "", "robot": ""}, "Recurrent (LSTM) policy weights, safetensors"),
    Sample("mlp-policy", "mlp_policy", "torchscript_scripted", "mlp_policy.scripted.pt",
           {"demo": "", "robot": ""}, "Feed-forward policy, TorchScript (scripted)", pass_shape=True),
    Sample("unet-small", "unet_small", "onnx", "unet_small.onnx",
           {"demo": ""}, "U-Net segmentation encoder-decoder, ONNX"),
)


def input_shapes(sample: Sample) -> list[list[int]]:
    from embodied_tui.analysis.zoo import BUILDERS

    return [list(s) for s in BUILDERS[sample.builder].input_shapes]


def _save(sample: Sample, tmp: Path) -> None:
    import warnings

    import torch

    from embodied_tui.analysis.zoo import BUILDERS

    builder = BUILDERS[sample.builder]
    torch.manual_seed(0)
    model = builder.build()
    inputs = builder.example_inputs()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if sample.how == "torchscript_traced":
            torch.jit.save(torch.jit.trace(model, inputs, check_trace=False), str(tmp))
        elif sample.how == "torchscript_scripted":
            try:
                scripted = torch.jit.script(model)
            except Exception:  # noqa: BLE001 - not every model scripts; a trace is the same format
                scripted = torch.jit.trace(model, inputs, check_trace=False)
            torch.jit.save(scripted, str(tmp))
        elif sample.how == "exported_program":
            torch.export.save(torch.export.export(model, inputs), str(tmp))
        elif sample.how == "onnx":
            torch.onnx.export(model, inputs, str(tmp), dynamo=False, opset_version=17,
                              input_names=[f"input{i}" if i else "input" for i in range(len(inputs))])
        elif sample.how == "state_dict":
            torch.save(model.state_dict(), str(tmp))
        elif sample.how == "safetensors":
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
        else:  # pragma: no cover - SAMPLES is fixed
            raise ValueError(f"unknown sample format {sample.how}")


def write_sample(sample: Sample, directory: str | Path) -> Path:
    """The sample's model file in ``directory`` (made now unless it is already there)."""
    directory = Path(directory).expanduser()
    path = directory / sample.filename
    if path.is_file() and path.stat().st_size > 0:
        return path
    try:
        directory.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=directory, prefix=".demo-"))
    except OSError as exc:
        raise UserError(f"cannot write demo models to {directory}: {exc.strerror or exc}; pass another --dir") from None
    # saved under its final name (torch archives embed it, so the bytes repeat), then moved into place at once
    tmp = work / sample.filename
    try:
        _save(sample, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path


def write_samples(directory: str | Path, on_sample: Callable[[Sample], None] | None = None
                  ) -> list[tuple[Sample, Path]]:
    out = []
    for sample in SAMPLES:
        if on_sample:
            on_sample(sample)
        out.append((sample, write_sample(sample, directory)))
    return out
