"""Find out what a model file is from its bytes (never its suffix) and open it safely.

Formats: TorchScript archive, torch.export ExportedProgram (.pt2), ONNX (+ external data), state_dict checkpoint
(plain or nested under state_dict / model_state_dict / model ...), safetensors, and full pickles of nn.Modules.

Hostile files: detection reads headers and bounded amounts only (a zip's end record, a safetensors header of at most
100 MB, the top-level protobuf fields of an ONNX file), and opens regular files only (never a FIFO or a device).
Nothing from a file runs unless the user passes ``--trust-code``, and a warning line is printed when it does: pickles
are opened with ``torch.load(weights_only=True)``; ``.pt2`` archives are read member by member
(``load_exported_program``) instead of with ``torch.export.load``, which unpickles ``sample_inputs`` and pickled
weights without ``weights_only``, ``eval``s the symbolic shape expressions through sympy and writes the program's
names into Python source that it executes.
"""
from __future__ import annotations

import json
import os
import re
import stat
import struct
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from embodied_tui.errors import AnalysisError

_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "ema", "model_ema",
                    "weights", "params")
SAFETENSORS_HEADER_LIMIT = 100_000_000  # bytes: the limit the safetensors format itself sets
_ZIP_ENTRY_LIMIT = 200_000  # records in a torch archive (one per tensor storage); more is a memory bomb
_ZIP_EXPANSION_LIMIT = 64 << 20  # a compressed member may expand beyond its stored size by at most this many bytes ...
_ZIP_RATIO_LIMIT = 20  # ... or this ratio (torch stores its members uncompressed)
_PT2_JSON_LIMIT = 1 << 30  # bytes of one .pt2 JSON member
_PT2_REAL_CONSTANTS = 16 << 20  # tensor constants up to this many bytes in all are read with their values


@dataclass
class Detected:
    format: str  # torchscript | exported_program | onnx | safetensors | torch_pickle (state_dict or full pickle)
    detail: str = ""
    zip_names: list[str] = field(default_factory=list)


_NOT_REGULAR = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def regular_file_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable regular file (None when it is). Only ``stat``s it: a FIFO or a device is never
    opened, so this cannot block."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "no such file; check the path"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc}); check the path and its permissions"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory; give the model file inside it"
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _NOT_REGULAR if test(st.st_mode)), "not a regular file")
        return f"is {kind}, not a regular file; give the model file itself"
    return None


def check_path(path: Path) -> None:
    problem = regular_file_problem(path)
    if problem:
        raise AnalysisError(f"{path}: {problem}")
    if path.stat().st_size == 0:
        raise AnalysisError(f"{path}: the file is empty (0 bytes); was the save or download interrupted?")


def detect(path: Path) -> Detected:
    """Detect the format from content, reading headers only (bounded memory whatever the file's size)."""
    check_path(path)
    size = path.stat().st_size
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise AnalysisError(f"{path}: cannot be read ({exc.strerror or exc}); check its permissions") from None
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        names = _zip_names(path, size)
        if any(n.endswith("/archive_format") or "/models/" in n and n.endswith(".json") for n in names):
            return Detected("exported_program", "torch.export archive", names)
        if any("/code/" in n for n in names) or any(n.endswith("constants.pkl") for n in names):
            return Detected("torchscript", "", names)
        if any(n.endswith("data.pkl") for n in names):
            return Detected("torch_pickle", "torch.save zip", names)
        raise AnalysisError(f"{path}: a zip archive, but not a torch model (no data.pkl, code/ or export manifest)")
    if len(head) >= 9 and head[8:9] == b"{":
        (n,) = struct.unpack("<Q", head[:8])
        if 2 <= n <= size - 8:
            if n > SAFETENSORS_HEADER_LIMIT:
                raise AnalysisError(f"{path}: a safetensors header of {n} bytes, over the format's limit of "
                                    f"{SAFETENSORS_HEADER_LIMIT} bytes; the file is corrupt or not safetensors")
            return Detected("safetensors")
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):  # PROTO 2-5 (legacy torch.save)
        return Detected("torch_pickle", "legacy torch.save")
    if _looks_like_onnx(path, size):
        return Detected("onnx")
    raise AnalysisError(f"{path}: not a model file we can read (not TorchScript, ExportedProgram, ONNX, a torch "
                        "checkpoint or safetensors)")


def _zip_names(path: Path, size: int) -> list[str]:
    return [i.filename for i in _zip_infos(path, size)]


def _zip_infos(path: Path, size: int) -> list[zipfile.ZipInfo]:
    """The members of a zip archive, refusing one whose directory or members would expand into a memory bomb."""
    count = _zip_entry_count(path, size)
    if count is not None and count > _ZIP_ENTRY_LIMIT:
        raise AnalysisError(f"{path}: a zip archive with {count} members, more than any model file holds "
                            f"(limit {_ZIP_ENTRY_LIMIT}); it is not a model file")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise AnalysisError(f"{path}: a zip archive (torch format) that cannot be read ({_one_line(exc)}); the file "
                            "is probably truncated: save or copy it again") from None
    for info in infos:
        if info.file_size > max(_ZIP_EXPANSION_LIMIT, _ZIP_RATIO_LIMIT * info.compress_size):
            raise AnalysisError(f"{path}: zip member '{info.filename}' expands from {info.compress_size} to "
                                f"{info.file_size} bytes (a zip bomb?); torch stores its members uncompressed, so "
                                "this is not a torch model file")
    return infos


def _zip_entry_count(path: Path, size: int) -> int | None:
    """The number of members the zip's end-of-central-directory record declares (zip64 too), from the file's last
    64 KiB; None when there is no such record (zipfile then says why)."""
    tail_len = min(size, 65536 + 22)
    with path.open("rb") as fh:
        fh.seek(size - tail_len)
        tail = fh.read(tail_len)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + 22 > len(tail):
            return None
        count = struct.unpack("<H", tail[at + 10: at + 12])[0]
        if count != 0xFFFF or at < 20 or tail[at - 20: at - 16] != b"PK\x06\x07":
            return count
        (offset,) = struct.unpack("<Q", tail[at - 12: at - 4])
        if offset + 40 > size:
            return None
        fh.seek(offset)
        record = fh.read(40)
    if record[:4] != b"PK\x06\x06":
        return None
    return struct.unpack("<Q", record[32:40])[0]


# ModelProto's top-level fields (number -> protobuf wire type): ir_version, producer_name, producer_version, domain,
# model_version, doc_string, graph, opset_import, metadata_props, training_info, functions, configuration
_ONNX_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
_ONNX_FIELD_LIMIT = 100_000  # top-level fields walked at most


def _varint(buf: bytes, pos: int) -> tuple[int | None, int]:
    value = shift = 0
    while pos < len(buf) and shift < 64:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None, pos


def _looks_like_onnx(path: Path, size: int) -> bool:
    """Whether the file is an ONNX ModelProto, from its top-level protobuf fields alone: each field's tag and length
    are read and its body skipped, so a large file that is not a model costs a few reads, never its size in memory.
    An ONNX model has an ir_version and a non-empty graph, and its fields tile the file exactly."""
    ir_version = graph_len = 0
    pos = 0
    with path.open("rb") as fh:
        for _ in range(_ONNX_FIELD_LIMIT):
            if pos == size:
                break
            fh.seek(pos)
            buf = fh.read(24)
            tag, at = _varint(buf, 0)
            if tag is None or tag >> 3 == 0 or _ONNX_FIELDS.get(tag >> 3, tag & 7) != tag & 7:
                return False  # a known field with the wrong wire type; unknown fields (a newer onnx) are skipped
            if tag & 7 in (1, 5):  # fixed64, fixed32
                pos += at + (8 if tag & 7 == 1 else 4)
                continue
            if tag & 7 not in (0, 2):
                return False
            value, at = _varint(buf, at)
            if value is None:
                return False
            if tag & 7 == 0:
                ir_version = value if tag >> 3 == 1 else ir_version
                pos += at
                continue
            if pos + at + value > size:
                return False
            graph_len = value if tag >> 3 == 7 else graph_len
            pos += at + value
    return ir_version > 0 and graph_len > 0


def warn_trusted(path: Path) -> None:
    """The line printed whenever code from a model file is about to run (``--trust-code``). It goes to stderr: the
    CLI shows it, the app's analysis child sends its stderr to /dev/null."""
    print(f"warning: --trust-code: running code from {path}", file=sys.stderr, flush=True)


# ---- torch pickles ------------------------------------------------------------------------------------------------
def load_torch_pickle(path: Path, trust_code: bool):
    """Returns ("state_dict", dict[str, Tensor], nested_key) or ("module", nn.Module, None)."""
    import pickle

    import torch

    try:
        with path.open("rb") as fh:  # a file object: torch.load dispatches paths ending in .safetensors by name
            obj = torch.load(fh, map_location="meta", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not trust_code:
            culprit = _first_global(str(exc))
            raise AnalysisError(
                f"{path}: a full Python pickle{culprit}; loading it would run code stored in the file, so it was not "
                "opened. If you trust its source, re-run with --trust-code (or save a state_dict, TorchScript or "
                "ONNX instead)") from None
        obj = _load_trusted(path)
    except Exception as exc:  # noqa: BLE001 - RuntimeError, EOFError, OSError, ValueError, MemoryError ...
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

    warn_trusted(path)
    try:
        with path.open("rb") as fh:
            return torch.load(fh, map_location="cpu", weights_only=False)
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
        if n > SAFETENSORS_HEADER_LIMIT:
            raise AnalysisError(f"{path}: a safetensors header of {n} bytes, over the format's limit of "
                                f"{SAFETENSORS_HEADER_LIMIT} bytes; the file is corrupt or not safetensors")
        raw = fh.read(n)
    bad = f"{path}: safetensors header is not valid JSON; the file is corrupt or truncated"
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise AnalysisError(bad) from None
    if not isinstance(header, dict):
        raise AnalysisError(bad)
    meta = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, info in header.items():
        shape = info.get("shape", []) if isinstance(info, dict) else None
        if not isinstance(shape, list) or not all(type(d) is int and 0 <= d < 1 << 63 for d in shape):
            raise AnalysisError(f"{path}: safetensors entry '{str(name)[:80]}' has no valid shape; the file is "
                                "corrupt")
        dtype, size = _ST_DTYPES.get(info.get("dtype", ""), (str(info.get("dtype", "?")).lower(), 4))
        tensors[name] = (list(shape), dtype, size)
    return tensors, meta


# ---- torch.export archives (.pt2) -----------------------------------------------------------------------------------
class _NeedsCode(Exception):
    """A .pt2 member that only code could open (a pickle beyond tensors, native code, text that reaches Python)."""

    def __init__(self, member: str, why: str):
        super().__init__(f"{member} {why}")
        self.member, self.why = member, why


def load_exported_program(path: Path, *, trust_code: bool = False, weights: bool = False):
    """The ExportedProgram in a ``.pt2`` archive, read without running anything from the file.

    ``torch.export.load`` is not safe on untrusted files, so the archive is read member by member: the program's JSON
    is checked first (``_check_program``: operators must be registered torch ops, names plain identifiers, symbolic
    shape expressions made of sympy arithmetic only) and its guard code and free-text metadata dropped; weights and
    constants are read raw, or with ``torch.load(weights_only=True)`` when pickled; ``sample_inputs`` (never needed)
    is only checked the same way; AOTInductor (native code), custom objects and opaque pickles are refused. With ``weights=False`` the weights are
    meta tensors of the stored shapes and dtypes (no weight bytes are read). An archive that needs code is refused
    with the member that needs it, unless ``trust_code``: then a warning line is printed and ``torch.export.load``
    opens it."""
    try:
        return _read_pt2(path, weights)
    except _NeedsCode as exc:
        if not trust_code:
            raise AnalysisError(f"{path}: member '{exc.member}' {exc.why}; loading it would run code stored in the "
                                "file, so it was not opened. If you trust its source, re-run with --trust-code") \
                from None
    import logging
    import warnings

    import torch

    warn_trusted(path)
    export_log = logging.getLogger("torch.export")
    level = export_log.level
    export_log.setLevel(logging.ERROR)  # its fallback warnings come with tracebacks; the line above says it all
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.export.load(str(path))
    except Exception as exc:  # noqa: BLE001 - code from the file may raise anything
        raise AnalysisError(f"{path}: --trust-code was given but the ExportedProgram cannot be loaded "
                            f"({_one_line(exc)}); it may be truncated or from a newer torch") from None
    finally:
        export_log.setLevel(level)


def _read_pt2(path: Path, weights: bool):
    from torch._export.serde import schema
    from torch._export.serde.serialize import (
        ExportedProgramDeserializer,
        _dict_to_dataclass,
    )
    from torch.export.pt2_archive import constants as names
    from torch.export.pt2_archive._package import PT2ArchiveReader

    problem = regular_file_problem(path)
    if problem:
        raise AnalysisError(f"{path}: {problem}")
    infos = _zip_infos(path, path.stat().st_size)
    first = infos[0].filename if infos else ""
    root = first.split("/", 1)[0] + "/" if "/" in first else ""
    inner = {i.filename[len(root):]: i.filename for i in infos if i.filename.startswith(root)}
    sizes = {i.filename: i.file_size for i in infos}
    for name, full in inner.items():
        if name.startswith((names.AOTINDUCTOR_DIR, names.EXECUTORCH_DIR, names.MTIA_DIR)):
            raise _NeedsCode(full, "holds compiled native code (AOTInductor, ExecuTorch or MTIA)")
    model_json = names.MODELS_FILENAME_FORMAT.format("model")
    if model_json not in inner:
        if "version" in inner or any(n.endswith(".pt") for n in inner):  # torch <= 2.7 layout: pickles throughout
            raise _NeedsCode(root or "(archive)", "is an older torch.export archive whose parts are pickles")
        raise AnalysisError(f"{path}: a torch.export archive without {model_json}; it may be truncated or from a "
                            "newer torch: export it again")
    try:
        reader = PT2ArchiveReader(str(path))
        version = reader.read_string(names.ARCHIVE_VERSION_PATH) if names.ARCHIVE_VERSION_PATH in inner else "0"
    except Exception as exc:  # noqa: BLE001 - torch's zip reader raises RuntimeError and AssertionError
        raise AnalysisError(f"{path}: a torch.export archive that cannot be read ({_one_line(exc)}); it may be "
                            "truncated: save or copy it again") from None
    if version != names.ARCHIVE_VERSION_VALUE:
        raise AnalysisError(f"{path}: torch.export archive version {version[:20]!r}, this torch reads "
                            f"{names.ARCHIVE_VERSION_VALUE!r}; export it with this torch version")

    def read_json(name: str):
        if sizes.get(inner[name], 0) > _PT2_JSON_LIMIT:
            raise AnalysisError(f"member '{inner[name]}' is {sizes[inner[name]]} bytes, too large for a program "
                                "description; the file is not a model torch wrote")
        try:
            return json.loads(reader.read_bytes(name))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise AnalysisError(f"member '{inner[name]}' is not valid JSON ({_one_line(exc)}); the file is "
                                "corrupt") from None

    sample = names.SAMPLE_INPUTS_FILENAME_FORMAT.format("model")
    try:
        program = read_json(model_json)
        _check_program(program, inner[model_json])
        if sample in inner:  # never needed (shapes come from the program); refused as torch.export.load would run it
            _weights_only(reader.read_bytes(sample), inner[sample], False, want=(tuple, list, dict))
        serialized = _dict_to_dataclass(schema.ExportedProgram, program)
        state_dict = _pt2_tensors(reader, inner, read_json, "model", names, weights, constants=False)
        # tensor constants (anchor strides, lookup tables) are values code may read (.item()): real when small
        small = sum(sizes[full] for name, full in inner.items() if name.startswith(names.CONSTANTS_DIR)) \
            <= _PT2_REAL_CONSTANTS
        consts = _pt2_tensors(reader, inner, read_json, "model", names, weights or small, constants=True)
        return ExportedProgramDeserializer().deserialize(serialized, state_dict, consts, None)
    except _NeedsCode:
        raise
    except AnalysisError as exc:  # from the member readers, which do not know the path
        raise AnalysisError(f"{path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the deserializer raises many types on a malformed program
        raise AnalysisError(f"{path}: ExportedProgram cannot be loaded ({_one_line(exc)}); it may be truncated or "
                            "from a newer torch") from None


def _pt2_tensors(reader, inner: dict[str, str], read_json, model: str, names, weights: bool, *, constants: bool):
    """The weights (or constants) of ``model``: raw records as tensors, pickled ones through ``weights_only``;
    meta tensors of the stored shapes when ``weights`` is False."""
    import torch
    from torch._export.serde import schema
    from torch._export.serde.serialize import (
        _dict_to_dataclass,
        deserialize_scalar_type,
        deserialize_size,
        deserialize_storage_offset,
        deserialize_stride,
    )

    folder = names.CONSTANTS_DIR if constants else names.WEIGHTS_DIR
    config_name = (names.CONSTANTS_CONFIG_FILENAME_FORMAT if constants else names.WEIGHTS_CONFIG_FILENAME_FORMAT
                   ).format(model)
    legacy = f"{folder}{model}.pt"
    if legacy in inner:  # an older layout: one pickle of all of them
        return _weights_only(reader.read_bytes(legacy), inner[legacy], weights, want=dict)
    if config_name not in inner:
        return {}
    raw_config = read_json(config_name)
    _check_payload_config(raw_config, inner[config_name])
    config = _dict_to_dataclass(schema.PayloadConfig, raw_config)
    storages: dict[str, torch.Tensor] = {}
    out: dict[str, torch.Tensor] = {}
    for fqn, meta in config.config.items():
        member = folder + meta.path_name
        if constants and meta.path_name.startswith((names.CUSTOM_OBJ_FILENAME_PREFIX,
                                                    names.OPAQUE_OBJ_FILENAME_PREFIX)):
            raise _NeedsCode(inner.get(member, member), "is a custom or opaque Python object (a pickle)")
        if constants and not meta.path_name.startswith(names.TENSOR_CONSTANT_FILENAME_PREFIX):
            raise AnalysisError(f"member '{inner.get(member, member)}': unknown kind of constant")
        if member not in inner:
            raise AnalysisError(f"member '{member}' named by {config_name} is missing; the archive is truncated")
        if meta.use_pickle:
            tensor = _weights_only(reader.read_bytes(member), inner[member], weights, want=torch.Tensor)
        else:
            tm = meta.tensor_meta
            if tm is None:
                raise AnalysisError(f"member '{inner[member]}' has no tensor description; the archive is corrupt")
            dtype = deserialize_scalar_type(tm.dtype)
            size, stride = deserialize_size(tm.sizes), deserialize_stride(tm.strides)
            offset = deserialize_storage_offset(tm.storage_offset)
            if not weights:  # FQNs stored as one record (tied weights) share one meta storage, as they would load
                need = offset + sum((n - 1) * st for n, st in zip(size, stride)) + 1 if all(size) else 0
                base = storages.get(meta.path_name)
                if base is None or base.numel() < need:
                    base = storages[meta.path_name] = torch.empty(
                        max(need, _record_elems(reader, member, dtype)), dtype=dtype, device="meta")
                tensor = torch.as_strided(base, size, stride, offset)
            else:
                if meta.path_name not in storages:
                    storages[meta.path_name] = _raw_storage(reader, member, inner[member], dtype)
                tensor = torch.as_strided(storages[meta.path_name], size, stride, offset)
            if meta.is_param:
                tensor = torch.nn.Parameter(tensor, requires_grad=tm.requires_grad)
        out[fqn] = tensor
    return out


def _record_elems(reader, record: str, dtype) -> int:
    import torch

    return reader.archive_file.get_record_size(record) // torch.empty((), dtype=dtype).element_size()


def _raw_storage(reader, record: str, member: str, dtype):
    """One raw tensor record as a flat CPU tensor (torch's own reader: no pickle)."""
    import torch

    nbytes = reader.archive_file.get_record_size(record)
    element = torch.empty((), dtype=dtype).element_size()
    if nbytes == 0 or nbytes % element:
        raise AnalysisError(f"member '{member}' holds {nbytes} bytes, not a whole number of {dtype} elements; the "
                            "archive is corrupt")
    raw = reader.archive_file.get_storage_from_record(record, nbytes // element, dtype)
    flat = torch.empty(0, dtype=dtype)
    flat.set_(raw.untyped_storage(), 0, (nbytes // element,), (1,))
    return flat


def _weights_only(data: bytes, member: str, weights: bool, *, want):
    """A pickled tensor (or dict or tuple) through ``torch.load(weights_only=True)``, which runs nothing from the
    file; a pickle that needs more is _NeedsCode, one that holds something else than ``want`` is corrupt."""
    import io
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the refusal below says what matters
            warnings.simplefilter("ignore")
            obj = torch.load(io.BytesIO(data), map_location="cpu" if weights else "meta", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - UnpicklingError for globals, others for garbage
        raise _NeedsCode(member, f"is a pickle that needs more than tensors{_first_global(str(exc))}") from None
    if not isinstance(obj, want):
        raise AnalysisError(f"member '{member}' holds {type(obj).__name__}, not tensors; the archive is corrupt")
    return obj


# What may stand in the program's JSON. Names become Python identifiers in code that torch.fx generates and executes;
# module paths become attribute paths in it; expr_str is given to sympy.sympify, which evals; an operator name is
# resolved by attribute lookup and then called. Anything else must be plain text, except the few keys that hold free
# text torch only parses as data or writes with repr().
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# module paths may hold any module name torch allows (torchvision's "block1-0"); torch.fx quotes a part that is not
# an identifier in the code it writes (getattr(self, "block1-0")) without escaping, so quotes and backslashes never pass
_FQN = re.compile(r"[A-Za-z0-9_+\-]+(\.[A-Za-z0-9_+\-]+)*\Z")
_PLAIN = re.compile(r"[A-Za-z0-9_.+\-]*\Z")
_NAME_KEYS = {"name", "as_name", "forward_arg_names", "field_names"}
_FQN_KEYS = {"parameter_name", "buffer_name", "tensor_constant_name", "custom_obj_name", "user_input_name",
             "path_name", "fqn", "class_fqn"}
_TEXT_KEYS = {"in_spec", "out_spec", "nn_module_stack", "torch_version"}  # parsed as data, never run
_ANY_TEXT_KEYS = {"as_string", "as_strings"}  # op arguments: torch.fx writes them with repr()
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")
_KEEP_NODE_METADATA = ("nn_module_stack",)
_SYMPY_NAMES = {"Symbol", "Integer", "Rational", "Float", "Add", "Mul", "Pow", "Mod", "Max", "Min", "Abs", "floor",
                "ceiling", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "StrictLessThan", "StrictGreaterThan", "LessThan",
                "GreaterThan", "Equality", "Unequality", "And", "Or", "Not", "Xor", "Piecewise", "ExprCondPair",
                "true", "false", "True", "False", "oo", "zoo", "nan", "Infinity", "NegativeInfinity", "NaN", "One",
                "Zero", "NegativeOne", "Half", "sqrt", "BooleanTrue", "BooleanFalse", "None"}
_EXPR_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[A-Za-z_][A-Za-z0-9_]*|[-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)')|(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.]))"
                         r"|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>\*\*|==|!=|<=|>=|[-+*/%(),=<>]))")


def _check_program(program, member: str) -> None:
    """Refuse (``_NeedsCode``) a program whose JSON could make torch run code: see the tables above. Drops, in place,
    what is never needed to count a model and only reaches code: guard code, stack traces and custom metadata."""
    if not isinstance(program, dict) or not isinstance(program.get("graph_module"), dict):
        raise AnalysisError(f"member '{member}' is not an ExportedProgram description; the archive is corrupt")
    program["guards_code"] = []
    program["graph_module"]["metadata"] = {}
    _check_value(program, "", None, member)


def _check_value(value, where: str, key: str | None, member: str) -> None:
    if isinstance(value, dict):
        if "metadata" in value and isinstance(value["metadata"], dict) and "target" in value:  # a node
            value["metadata"] = {k: v for k, v in value["metadata"].items() if k in _KEEP_NODE_METADATA}
        for k, v in value.items():
            plain = _PLAIN.match(k) if key != "range_constraints" else not _CONTROL.search(k)  # looked up, never run
            if not isinstance(k, str) or not plain:
                raise _NeedsCode(member, f"has an unexpected key {str(k)[:60]!r} at {where or '/'}")
            _check_value(v, f"{where}/{k}", k, member)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_value(v, f"{where}[{i}]", key, member)
    elif isinstance(value, str):
        _check_text(value, where, key, member)


def _check_text(text: str, where: str, key: str | None, member: str) -> None:
    if key in ("target", "as_operator"):
        _check_operator(text, where, member)
        return
    if key == "expr_str":
        _check_expr(text, where, member)
        return
    if key in _ANY_TEXT_KEYS:
        ok = True
    elif key in _TEXT_KEYS:
        ok = not _CONTROL.search(text)
    elif key in _NAME_KEYS:
        ok = text == "" or bool(_IDENT.match(text))
    elif key in _FQN_KEYS:
        ok = text == "" or bool(_FQN.match(text))
    else:
        ok = bool(_PLAIN.match(text))
    if not ok:
        raise _NeedsCode(member, f"has text {text[:60]!r} at {where} that is not a plain name (torch would write it "
                                 "into Python code it runs)")


def _check_operator(target: str, where: str, member: str) -> None:
    """An operator must resolve the way torch's deserializer resolves it to a registered op (``torch.ops.*``
    overloads and higher-order ops) or to one of the symbolic-shape operators torch serializes; never to an
    arbitrary callable such as ``torch.hub.os.system``."""
    import operator

    import torch
    from torch._export.serde.serialize import _SYM_OPS

    obj = None
    parts = target.split(".")
    roots = {"_operator": operator, "torch": torch, "math": __import__("math")}
    if parts[0] in roots and len(parts) > 1 and all(_IDENT.match(p) for p in parts):
        obj = roots[parts[0]]
        for i, name in enumerate(parts[1:], 1):
            # a dunder only as an aten op's own name (torch.ops.aten.__and__.Tensor), never to reach Python internals
            if name.startswith("__") and not (i == 3 and parts[1] == "ops" and len(parts) == 5):
                obj = None
                break
            try:
                obj = getattr(obj, name)
            except Exception:  # noqa: BLE001 - an unknown op namespace raises AttributeError or RuntimeError
                obj = None
                break
    if isinstance(obj, (torch._ops.OpOverload, torch._ops.HigherOrderOperator)):
        return
    try:
        if obj is not None and (obj in _SYM_OPS or obj is operator.getitem):
            return
    except TypeError:  # unhashable
        pass
    raise _NeedsCode(member, f"calls {target[:80]!r} at {where}, which is not a registered torch operator")


def _check_expr(text: str, where: str, member: str) -> None:
    """A symbolic shape expression (sympy's srepr, e.g. ``Mul(Integer(2), Symbol('s77', positive=True))``) before
    sympify evaluates it: sympy constructors and torch's shape functions called on numbers and symbol names only."""
    allowed = _SYMPY_NAMES | _torch_sympy_names()
    pos, tokens = 0, []
    while pos < len(text):
        m = _EXPR_TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise _NeedsCode(member, f"has a shape expression at {where} that is not plain arithmetic: "
                                     f"{text[:60]!r}")
        tokens.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
    import keyword

    for i, (kind, tok) in enumerate(tokens):
        if kind != "id":
            continue
        is_keyword_arg = i + 1 < len(tokens) and tokens[i + 1] == ("op", "=") and i > 0 and \
            tokens[i - 1] in (("op", "("), ("op", ","))
        if (tok not in allowed and not is_keyword_arg) or (keyword.iskeyword(tok) and tok not in ("True", "False",
                                                                                                   "None")):
            raise _NeedsCode(member, f"has a shape expression at {where} that names {tok!r}, which is not a sympy "
                                     "shape function")


_TORCH_SYMPY: set[str] = set()


def _torch_sympy_names() -> set[str]:
    if not _TORCH_SYMPY:
        import sympy
        from torch.utils._sympy import functions

        _TORCH_SYMPY.update(n for n, v in vars(functions).items() if isinstance(v, type) and
                            issubclass(v, sympy.Basic) and v.__module__ == functions.__name__ and n[:1] != "_")
    return _TORCH_SYMPY


def _check_payload_config(config, member: str) -> None:
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise AnalysisError(f"member '{member}' is not a weights description; the archive is corrupt")
    _check_value(config, "", None, member)
