"""Find out what a model file is from its bytes (never its suffix) and open it safely.

Formats: TorchScript archive, torch.export ExportedProgram (.pt2), ONNX (+ external data), state_dict checkpoint
(plain or nested under state_dict / model_state_dict / model ...), safetensors, and full pickles of nn.Modules. Pickles
are opened with ``torch.load(weights_only=True)``, which never runs code from the file; a file that needs real
unpickling is refused unless the user passes ``--trust-code``.
"""
from __future__ import annotations

import json
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from embodied_tui.errors import AnalysisError

_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "ema", "model_ema",
                    "weights", "params")


@dataclass
class Detected:
    format: str  # torchscript | exported_program | onnx | safetensors | torch_pickle (state_dict or full pickle)
    detail: str = ""
    zip_names: list[str] = field(default_factory=list)


def check_path(path: Path) -> None:
    if not path.exists():
        raise AnalysisError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise AnalysisError(f"{path}: is a directory; give the model file inside it")
    if path.stat().st_size == 0:
        raise AnalysisError(f"{path}: the file is empty (0 bytes); was the save or download interrupted?")


def detect(path: Path) -> Detected:
    """Detect the format from content."""
    check_path(path)
    with path.open("rb") as fh:
        head = fh.read(16)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise AnalysisError(f"{path}: a zip archive (torch format) that cannot be read ({exc}); the file is "
                                "probably truncated: save or copy it again") from None
        if any(n.endswith("/archive_format") or "/models/" in n and n.endswith(".json") for n in names):
            return Detected("exported_program", "torch.export archive", names)
        if any("/code/" in n for n in names) or any(n.endswith("constants.pkl") for n in names):
            return Detected("torchscript", "", names)
        if any(n.endswith("data.pkl") for n in names):
            return Detected("torch_pickle", "torch.save zip", names)
        raise AnalysisError(f"{path}: a zip archive, but not a torch model (no data.pkl, code/ or export manifest)")
    if len(head) >= 9 and head[8:9] == b"{":
        (n,) = struct.unpack("<Q", head[:8])
        if 2 <= n <= path.stat().st_size - 8:
            return Detected("safetensors")
    if head[:1] == b"\x80":  # pickle protocol 2+ (legacy torch.save)
        return Detected("torch_pickle", "legacy torch.save")
    if _looks_like_onnx(path):
        return Detected("onnx")
    raise AnalysisError(f"{path}: not a model file we can read (not TorchScript, ExportedProgram, ONNX, a torch "
                        "checkpoint or safetensors)")


def _looks_like_onnx(path: Path) -> bool:
    try:
        import onnx
    except ImportError:  # pragma: no cover
        return False
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - any parse failure means "not ONNX"
        return False
    return model.ir_version > 0 and len(model.graph.node) > 0


# ---- torch pickles ------------------------------------------------------------------------------------------------
def load_torch_pickle(path: Path, trust_code: bool):
    """Returns ("state_dict", dict[str, Tensor], nested_key) or ("module", nn.Module, None)."""
    import pickle

    import torch

    try:
        obj = torch.load(str(path), map_location="meta", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not trust_code:
            culprit = _first_global(str(exc))
            raise AnalysisError(
                f"{path}: a full Python pickle{culprit}; loading it would run code stored in the file, so it was not "
                "opened. If you trust its source, re-run with --trust-code (or save a state_dict, TorchScript or "
                "ONNX instead)") from None
        obj = _load_trusted(path)
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise AnalysisError(f"{path}: cannot read this torch file ({_one_line(exc)}); it may be truncated or "
                            "corrupt: save or copy it again") from None
    if isinstance(obj, torch.nn.Module):
        return "module", obj, None
    found = _find_state_dict(obj)
    if found is None:
        raise AnalysisError(f"{path}: a torch checkpoint without model weights (no tensors under state_dict, "
                            "model_state_dict or model); point at the file that holds the weights")
    key, sd = found
    if isinstance(sd, torch.nn.Module):
        return "module", sd, key
    return "state_dict", sd, key


def _load_trusted(path: Path):
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - unpickling code may raise anything
        raise AnalysisError(f"{path}: --trust-code was given but the pickle cannot be loaded here "
                            f"({_one_line(exc)}); the code it needs must be importable") from None


def _first_global(message: str) -> str:
    for marker in ("GLOBAL ", "global "):
        if marker in message:
            name = message.split(marker, 1)[1].split()[0].strip("'\"`,.")
            return f" of {name}"
    return ""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _is_tensor_dict(obj) -> bool:
    import torch

    return isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) for k in obj) and \
        sum(isinstance(v, torch.Tensor) for v in obj.values()) >= max(1, len(obj) // 2)


def _find_state_dict(obj):
    import torch

    if isinstance(obj, torch.nn.Module):
        return None, obj
    if _is_tensor_dict(obj):
        return None, {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if isinstance(obj, dict):
        for key in _STATE_DICT_KEYS:
            if key in obj:
                found = _find_state_dict(obj[key])
                if found is not None:
                    return (key if found[0] is None else f"{key}.{found[0]}"), found[1]
    return None


# ---- safetensors --------------------------------------------------------------------------------------------------
_ST_DTYPES = {"F64": ("float64", 8), "F32": ("float32", 4), "F16": ("float16", 2), "BF16": ("bfloat16", 2),
              "I64": ("int64", 8), "I32": ("int32", 4), "I16": ("int16", 2), "I8": ("int8", 1), "U8": ("uint8", 1),
              "BOOL": ("bool", 1), "F8_E4M3": ("float8_e4m3fn", 1), "F8_E5M2": ("float8_e5m2", 1)}


def read_safetensors_header(path: Path) -> tuple[dict[str, tuple[list[int], str, int]], dict]:
    """name -> (shape, dtype name, element size), from the JSON header only (no tensor data is read)."""
    with path.open("rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        raw = fh.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise AnalysisError(f"{path}: safetensors header is not valid JSON; the file is corrupt or truncated") from None
    meta = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, info in header.items():
        dtype, size = _ST_DTYPES.get(info.get("dtype", ""), (info.get("dtype", "?").lower(), 4))
        tensors[name] = (list(info.get("shape", [])), dtype, size)
    return tensors, meta
