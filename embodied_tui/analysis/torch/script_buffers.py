"""The values of a TorchScript archive's small buffers, read without running anything from the file.

A model loaded on the meta device has no values; one that reads a buffer's value (YOLO's ``stride`` buffer as the fill
value of its anchor strides, ``torch.full(..., stride)``) stops at that ``.item()``. Rather than loading the whole
archive again on the CPU, ``small_buffers`` reads ``data.pkl`` with an unpickler that builds nothing but plain
records: ``__torch__`` classes become attribute holders, tensors become (storage, offset, size, stride) references,
and any other global refuses the file (None: the caller falls back to the CPU load). Only buffers of at most
``LIMIT`` elements are read, from their ``data/<key>`` records.
"""
from __future__ import annotations

import io
import math
import pickle
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

LIMIT = 256  # elements: strides, anchors, scales; never weights


class _Holder:
    """A ``__torch__`` object of the pickle: only its attributes."""

    def __init__(self, *args) -> None:
        self.state: dict = {}

    def __setstate__(self, state) -> None:
        self.state = state if isinstance(state, dict) else {}


@dataclass
class _TensorRef:
    key: str
    dtype: torch.dtype
    numel: int
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor(storage, offset, size, stride, *_):
    key, dtype, numel = storage
    return _TensorRef(str(key), dtype, int(numel), int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, *_):
    return data


_STORAGES = {"FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
             "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
             "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
             "BoolStorage": torch.bool}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module.startswith("__torch__"):
            return _Holder
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return _rebuild_parameter
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch" and name in _STORAGES:
            return _STORAGES[name]
        raise pickle.UnpicklingError(f"{module}.{name} is not read")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], torch.dtype)):
            raise pickle.UnpicklingError("unknown persistent id")
        return pid[2], pid[1], pid[4]


def small_buffers(path: Path, buffer_names: set[str]) -> dict[str, torch.Tensor] | None:
    """``buffer_names`` (dotted paths of the module's buffers) -> their values, for those of at most ``LIMIT``
    elements; None when the archive's ``data.pkl`` is not the plain layout this reader knows."""
    try:
        reader = torch._C.PyTorchFileReader(str(path))
        root = _Unpickler(io.BytesIO(reader.get_record("data.pkl"))).load()
        refs: dict[str, _TensorRef] = {}
        stack = [("", root)]
        while stack:
            prefix, obj = stack.pop()
            for attr, value in obj.state.items() if isinstance(obj, _Holder) else ():
                name = f"{prefix}{attr}"
                if isinstance(value, _Holder):
                    stack.append((name + ".", value))
                elif isinstance(value, _TensorRef) and name in buffer_names and math.prod(value.size) <= LIMIT:
                    refs[name] = value
        out = {}
        for name, ref in refs.items():
            storage = reader.get_storage_from_record(f"data/{ref.key}", ref.numel, ref.dtype).untyped_storage()
            out[name] = torch.empty((), dtype=ref.dtype).set_(storage, ref.offset, ref.size, ref.stride).clone()
        return out
    except Exception:  # noqa: BLE001 - any layout this reader does not know: the caller loads on CPU
        return None
