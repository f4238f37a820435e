"""One pass over a torch model on the meta device, counting every aten op.

The model runs on meta tensors under a ``TorchDispatchMode``: shapes propagate, nothing is computed and no activation is
allocated. Per op we record MACs and other FLOPs (``formulas``), the elements read and written (views are free, each
input is read once), the weights it touched, its output shape and the module that owns it. Tensor lifetimes give the
peak live activation memory.

Ownership: for eager modules a global forward hook keeps the module stack (exact); for ExportedPrograms each graph
node's ``nn_module_stack`` says it (exact); for TorchScript, whose calls run inside the interpreter, an op is charged to
the module whose weights it reads, and a weightless op to the owner of its first input's producer.

Where a meta run alone cannot go on, documented fallbacks keep the count complete, each reported in the notes:
- real CPU values (small integer inputs, tensor constants of the file, anchors a model builds at run time) run for
  real; an op that mixes them with meta tensors runs with them moved to meta (``moved_to_meta``);
- ``.item()`` of a meta tensor answers a representative value (True, 1, 1.0) (``scalars_substituted``);
- nested tensors (the fused encoder's padding removal) are stood in for by the dense padded batch (``nested_dense``);
- an op with no formula whose name reads like multiply-accumulate work is listed (``missing_macs``), never a silent 0.
Data-dependent output sizes (``nonzero``, boolean masking) still stop the run: counted up to there.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_unflatten

from embodied_tui.analysis.torch.formulas import FORMULAS, cost_of, may_carry_macs
from embodied_tui.analysis.trace import TraceOp

aten = torch.ops.aten
# ops that only change metadata or autograd state, or read a scalar out: no work, no traffic, not in the trace
_NOOPS = {aten.detach.default, aten.alias.default, aten.lift_fresh.default, aten._to_copy.default,
          aten.empty.memory_format, aten.empty_like.default, aten.empty_strided.default, aten.new_empty.default,
          aten._local_scalar_dense.default}


def _empty_like(x: torch.Tensor, memory_format=None) -> torch.Tensor:
    """``torch.empty_like`` on meta without its Python decomposition (~45 us -> ~2 us): the same shape, dtype and
    layout (contiguous or channels-last; any other layout takes torch's own path)."""
    fmt = memory_format or torch.preserve_format
    if fmt is not torch.preserve_format:
        return torch.empty(x.shape, dtype=x.dtype, device="meta", memory_format=fmt)
    if x.is_contiguous():
        return torch.empty(x.shape, dtype=x.dtype, device="meta")
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return torch.empty(x.shape, dtype=x.dtype, device="meta", memory_format=torch.channels_last)
    return torch.empty_like(x)


def _like(args, kwargs):
    return _empty_like(args[0], kwargs.get("memory_format"))


def _same(args, kwargs):
    return args[0]


def _broadcast_shape(a, b) -> tuple[int, ...]:
    """NumPy broadcasting of two shapes, as ``torch.broadcast_shapes`` (which goes through torch._refs: most of a
    pointwise op's cost in the counter); RuntimeError when they do not broadcast."""
    if len(a) < len(b):
        a, b = b, a
    out = list(a)
    for i, y in enumerate(b, len(a) - len(b)):
        x = out[i]
        if x == 1:
            out[i] = y
        elif y != 1 and y != x:
            raise RuntimeError(f"shape mismatch: shapes {list(a)} and {list(b)} cannot be broadcast")
    return tuple(out)


def _broadcast(args, kwargs):
    a, b = args[0], args[1]
    if not isinstance(b, torch.Tensor) or b.dim() == 0 and a.dim() > 0:
        out = _empty_like(a)
    elif not isinstance(a, torch.Tensor):
        out = _empty_like(b)
    else:
        return torch.empty(_broadcast_shape(a.shape, b.shape), dtype=torch.result_type(a, b), device="meta")
    dtype = torch.result_type(a, b)
    return out if out.dtype == dtype else out.to(dtype)


def _batch_norm(args, kwargs):
    x = args[0]
    c = x.shape[1] if x.dim() > 1 else 0
    return _empty_like(x), x.new_empty((c,)), x.new_empty((c,))


def _addmm(args, kwargs):
    """addmm(bias, m1, m2): (m, n). Shapes that do not multiply take torch's path, which raises as it should."""
    bias, m1, m2 = args[0], args[1], args[2]
    if m1.dim() != 2 or m2.dim() != 2 or m1.shape[1] != m2.shape[0] or m1.dtype != m2.dtype \
            or bias.dtype != m1.dtype:
        return None
    return torch.empty((m1.shape[0], m2.shape[1]), dtype=m1.dtype, device="meta")


def _layer_norm(args, kwargs):
    """native_layer_norm(x, normalized_shape, ...): x's shape; mean and rstd with the normalised dims kept as 1."""
    x, normalized = args[0], list(args[1])
    if x.dtype != torch.float32 or not normalized or list(x.shape[-len(normalized):]) != normalized:
        return None
    stats = list(x.shape[:-len(normalized)]) + [1] * len(normalized)
    return (torch.empty(x.shape, dtype=x.dtype, device="meta"), torch.empty(stats, dtype=x.dtype, device="meta"),
            torch.empty(stats, dtype=x.dtype, device="meta"))


def _conv(args, kwargs):
    """convolution / _convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups,
    ...): the output shape by the usual formula, for contiguous batched inputs whose channels fit; anything else
    (channels-last, unbatched, a mismatch torch must report) takes torch's path."""
    x, w, bias = args[0], args[1], args[2]
    stride, padding, dilation, transposed, out_pad, groups = args[3:9]
    dims = x.dim() - 2
    if dims < 1 or w.dim() != x.dim() or not x.is_contiguous() or not w.is_contiguous() or w.dtype != x.dtype \
            or (bias is not None and (bias.dtype != x.dtype or bias.dim() != 1)):
        return None
    params = []
    for v in (stride, padding, dilation, out_pad):
        v = list(v)
        if len(v) == 1:
            v = v * dims
        if len(v) != dims or not all(isinstance(i, int) for i in v):
            return None
        params.append(v)
    stride, padding, dilation, out_pad = params
    k = w.shape[2:]
    if transposed:
        cout = w.shape[1] * groups
        if x.shape[1] != w.shape[0]:
            return None
        spatial = [(x.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (k[i] - 1) + out_pad[i] + 1
                   for i in range(dims)]
    else:
        cout = w.shape[0]
        if x.shape[1] != w.shape[1] * groups:
            return None
        spatial = [(x.shape[2 + i] + 2 * padding[i] - dilation[i] * (k[i] - 1) - 1) // stride[i] + 1
                   for i in range(dims)]
    if bias is not None and bias.shape[0] != cout or min(spatial, default=1) <= 0 or x.shape[0] == 0:
        return None
    return torch.empty((x.shape[0], cout, *spatial), dtype=x.dtype, device="meta")


def _cat(args, kwargs):
    """cat(tensors, dim): contiguous meta tensors of one dtype and matching sizes; torch skips 1-D empty ones."""
    tensors = [t for t in args[0] if not (t.dim() == 1 and t.shape[0] == 0)]
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    if not tensors or any(not isinstance(t, torch.Tensor) or t.device.type != "meta" or not t.is_contiguous()
                          or t.dtype != tensors[0].dtype or t.dim() != tensors[0].dim() for t in tensors):
        return None
    rank = tensors[0].dim()
    if rank == 0 or not -rank <= dim < rank:
        return None
    dim %= rank
    first = list(tensors[0].shape)
    if any(list(t.shape[:dim]) != first[:dim] or list(t.shape[dim + 1:]) != first[dim + 1:] for t in tensors):
        return None
    first[dim] = sum(t.shape[dim] for t in tensors)
    return torch.empty(first, dtype=tensors[0].dtype, device="meta")


def _upsample(args, kwargs):
    """upsample_*(input, output_size, ...): (N, C, *output_size) for a contiguous input given an output size."""
    x, size = args[0], args[1] if len(args) > 1 else kwargs.get("output_size")
    if size is None or not x.is_contiguous() or len(size) != x.dim() - 2 or min(size, default=0) <= 0:
        return None
    return torch.empty((*x.shape[:2], *size), dtype=x.dtype, device="meta")


def _fast_paths() -> dict:
    """Shape-only results for frequent ops whose meta kernels are Python decompositions that cost 0.1-5 ms each
    (add, relu, addmm, layer norm, convolution, cat, upsampling); on meta tensors only the output's shape, dtype and layout matter, so these give
    exactly the same result. A fast path may return None: torch's own kernel then runs (and raises on bad shapes)."""
    table = {}
    for name in ("relu", "gelu", "silu", "sigmoid", "hardsigmoid", "hardswish", "hardtanh", "tanh", "leaky_relu",
                 "elu", "mish", "_softmax", "_safe_softmax", "_log_softmax", "clone"):
        packet = getattr(aten, name, None)
        if packet is not None and hasattr(packet, "default"):
            table[packet.default] = _like
        inplace = getattr(aten, name + "_", None)
        if inplace is not None and hasattr(inplace, "default"):
            table[inplace.default] = _same
    for name in ("add", "mul", "sub", "div"):
        table[getattr(aten, name).Tensor] = _broadcast
        table[getattr(aten, name + "_").Tensor] = _same
    table[aten.native_batch_norm.default] = _batch_norm
    table[aten._native_batch_norm_legit_no_training.default] = _batch_norm
    table[aten.addmm.default] = _addmm
    table[aten.native_layer_norm.default] = _layer_norm
    table[aten.convolution.default] = _conv
    table[aten._convolution.default] = _conv
    table[aten.cat.default] = _cat
    for name in ("upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "upsample_linear1d",
                 "upsample_bilinear2d", "upsample_bicubic2d", "upsample_trilinear3d"):
        packet = getattr(aten, name, None)
        if packet is not None:
            table[packet.default] = _upsample
            if hasattr(packet, "vec"):
                table[packet.vec] = _upsample
    return table


_FAST = _fast_paths()
_SCALAR = aten._local_scalar_dense.default
_ASSERTS = {getattr(getattr(aten, name), overload) for name in ("_assert_tensor_metadata", "_assert_scalar",
                                                                 "sym_constrain_range", "sym_constrain_range_for_size")
            if hasattr(aten, name) for overload in getattr(aten, name).overloads()}


def _to_padded(args, kwargs):
    size = args[2] if len(args) > 2 else kwargs.get("output_size")
    return torch.empty(list(size) if size else list(args[0].shape), dtype=args[0].dtype, device="meta")


# nested tensors have no meta kernels: the fused encoder's padding removal (``_nested_tensor_from_mask``) keeps the
# padded dense batch instead - every position counted, as with no padding - and ``to_padded_tensor`` returns it
_DENSE_STANDINS = {aten._nested_tensor_from_mask.default: lambda args, kwargs: torch.empty_like(args[0]),
                   aten.to_padded_tensor.default: _to_padded}
_MAX_SUBSTITUTED = 1000


@dataclass(slots=True)
class OpEvent:
    op: str
    kind: str
    owner: str
    macs: int
    other_flops: int
    weight_elems: int
    read_elems: int
    write_elems: int
    out_shape: list[int] | None


@dataclass
class CountResult:
    events: list[OpEvent] = field(default_factory=list)
    trace: list[TraceOp] = field(default_factory=list)
    last_shape: dict[str, tuple[int, list[int]]] = field(default_factory=dict)  # owner -> (seq, shape)
    peak_activation_bytes: int = 0
    total_activation_bytes: int = 0
    input_bytes: int = 0
    output_bytes: int = 0
    output_shapes: list[list[int]] = field(default_factory=list)
    failure: BaseException | None = None  # set when the run stopped early (data-dependent op)
    failed_owner: str = ""
    failed_op: str = ""
    failed_inputs: list[int] = field(default_factory=list)  # the model inputs the failing op received
    moved_to_meta: dict[str, int] = field(default_factory=dict)  # op -> calls whose CPU operands were moved to meta
    scalars_substituted: int = 0  # .item() of meta tensors answered with a representative value
    nested_dense: int = 0  # nested-tensor ops run on the dense padded batch instead
    missing_macs: list[tuple[str, str]] = field(default_factory=list)  # (owner, op) of MAC-like ops with no formula

    @property
    def macs(self) -> int:
        return sum(e.macs for e in self.events)

    @property
    def other_flops(self) -> int:
        return sum(e.other_flops for e in self.events)


def _storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata


def _tensors(tree, out: list | None = None) -> list[torch.Tensor]:
    """The tensors in an op's arguments or results (tuples, lists, dicts), in order: ``tree_flatten`` without its
    per-call cost (it was a third of the counter's time)."""
    out = [] if out is None else out
    if isinstance(tree, torch.Tensor):
        out.append(tree)
    elif isinstance(tree, (tuple, list)):
        for item in tree:
            _tensors(item, out)
    elif isinstance(tree, dict):
        for item in tree.values():
            _tensors(item, out)
    return out


class OpCounter(TorchDispatchMode):
    """Counts ops as they are dispatched. ``scope`` returns the current owner path (or None when unknown)."""

    def __init__(self, weight_owner: dict[int, str], scope: Callable[[], str | None], *,
                 substitute_scalars: bool = True):
        super().__init__()
        self.substitute_scalars = substitute_scalars
        self._input_keys: set[int] = set()
        self._input_order: list[int] = []
        self.weight_owner = weight_owner  # storage key -> owning module path
        self.scope = scope
        self.result = CountResult()
        self._keep: list[torch.Tensor] = []  # keeps storages alive so their keys are never reused
        self._producer: dict[int, int] = {}  # storage key -> trace index of its last writer
        self._owner_of: dict[int, str] = {}  # storage key -> owner of its producer
        self._alloc: dict[int, tuple[int, int]] = {}  # storage key -> (first op index, nbytes)
        self._last_use: dict[int, int] = {}
        self._seq = 0
        self.current_op = ""

    def mark_inputs(self, inputs: list[torch.Tensor]) -> None:
        for t in inputs:
            key = _storage_key(t)
            self._input_keys.add(key)
            self._input_order.append(key)
            self._keep.append(t)
            self._producer[key] = -1
            self._alloc.setdefault(key, (-1, t.untyped_storage().nbytes()))
            self.result.input_bytes += t.numel() * t.element_size()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.current_op = str(func.overloadpacket.__name__)
        try:
            fast = _FAST.get(func)
            out = fast(args, kwargs) if fast is not None and not kwargs.get("out") and all(
                a.device.type == "meta" for a in args if isinstance(a, torch.Tensor)) else None
            if out is None:
                if func in _ASSERTS:  # export's checks of the traced shapes and devices: we run others on purpose
                    return None
                if func is _SCALAR and args[0].device.type == "meta":
                    return self._representative_scalar(args[0])
                out = self._call(func, args, kwargs)
        except Exception:
            if not self.result.failed_owner:  # where it failed, before hooks unwind the module stack
                scope = self.scope()
                self.result.failed_owner = scope if scope is not None else (
                    self.result.trace[-1].owner if self.result.trace else "")
                keys = {_storage_key(t) for t in _tensors((args, kwargs))}
                self.result.failed_inputs = [i for i, k in enumerate(self._input_order) if k in keys]
            raise
        if func in _NOOPS or _scalar_arithmetic(args, kwargs, out):
            return out
        self._record(func, args, kwargs, out)
        return out

    def _call(self, func, args, kwargs):
        """Run the op: nested-tensor ops on meta get their dense stand-in; real CPU values (small constants,
        integer inputs) run for real; an op that mixes them with meta tensors runs with them moved to meta."""
        if func in _DENSE_STANDINS and isinstance(args[0], torch.Tensor) and args[0].device.type == "meta" \
                and not args[0].is_nested:
            self.result.nested_dense += 1
            return _DENSE_STANDINS[func](args, kwargs)
        try:
            return func(*args, **kwargs)
        except RuntimeError:
            moved = _cpu_operands_to_meta(args, kwargs)
            if moved is None:
                raise
            out = func(*moved[0], **moved[1])
            if moved[2] - self._input_keys:  # a model input of integers mixing in is expected: no note
                self.result.moved_to_meta[self.current_op] = self.result.moved_to_meta.get(self.current_op, 0) + 1
            return out

    def _representative_scalar(self, t: torch.Tensor):
        """``.item()`` of a meta tensor has no value. Unless the run was asked to stop there (TorchScript loaded on
        meta retries with its constants' real values), it goes on with a representative value: True, 1 or 1.0, and
        the notes say so. A loop that keeps asking (``while x.item():``) stops as data-dependent."""
        if not self.substitute_scalars or self.result.scalars_substituted >= _MAX_SUBSTITUTED:
            raise RuntimeError("data-dependent: Tensor.item() cannot be called on meta tensors")
        self.result.scalars_substituted += 1
        if t.dtype == torch.bool:
            return True
        return 1.0 if t.is_floating_point() else (1 + 0j if t.is_complex() else 1)

    def _record(self, func, args, kwargs, out) -> None:
        seq = self._seq
        self._seq += 1
        ins = _tensors((args, kwargs))
        outs = _tensors(out)
        in_keys = [_storage_key(t) for t in ins]
        weight_owner = next((self.weight_owner[k] for k in in_keys if k in self.weight_owner), None)
        scope = self.scope()
        if scope is None:  # TorchScript: charge to the weights' module, else to the first input's producer
            scope = weight_owner if weight_owner is not None else next(
                (self._owner_of[k] for k in in_keys if k in self._owner_of), "")
        out_shape = list(outs[0].shape) if outs else None
        if out_shape is not None:
            self.result.last_shape[scope] = (seq, out_shape)
        for k in in_keys:
            self._last_use[k] = seq
        if func.is_view:
            return
        cost = cost_of(func, args, kwargs, out)
        # no formula, and the op reads like a conv / matrix product / attention: its MACs are missing, not 0
        missing = func not in FORMULAS and may_carry_macs(self.current_op)
        if missing:
            self.result.missing_macs.append((scope, f"aten.{self.current_op}"))
        kind = cost.kind
        if kind == "matmul" and weight_owner is not None:
            kind = "linear"
        # traffic: each distinct input read once (weights apart), each output written once
        seen: set[int] = set()
        weight_elems = read_elems = 0
        for t, k in zip(ins, in_keys):
            if id(t) in seen:
                continue
            seen.add(id(t))
            if k in self.weight_owner:
                weight_elems += t.numel()
            else:
                read_elems += t.numel()
        write_elems = 0
        index = len(self.result.trace)
        # producers before this op's outputs are registered (an in-place op reads what it overwrites)
        producers = [(-2 if k in self.weight_owner else self._producer.get(k, -2)) for k in in_keys]
        for t in outs:
            k = _storage_key(t)
            write_elems += t.numel()
            if k not in self._alloc:
                self._alloc[k] = (seq, t.untyped_storage().nbytes())
                self.result.total_activation_bytes += t.untyped_storage().nbytes()
            self._producer[k] = index
            self._owner_of[k] = scope
            self._last_use[k] = max(self._last_use.get(k, seq), seq)
            self._keep.append(t)
        self.result.events.append(OpEvent(self.current_op, kind, scope, cost.macs, cost.other_flops,
                                          weight_elems, read_elems, write_elems, out_shape))
        self.result.trace.append(TraceOp(index=index, kind=kind, op=f"aten.{self.current_op}", owner=scope,
                                         inputs=producers, in_shapes=[list(t.shape) for t in ins],
                                         out_shape=out_shape, macs=cost.macs, attrs=_attrs(func, args, kind),
                                         mac_op=missing))

    def finish(self, outputs) -> None:
        end = self._seq
        outs = _tensors(outputs)
        for t in outs:
            self._last_use[_storage_key(t)] = end
            self.result.output_bytes += t.numel() * t.element_size()
        self.result.output_shapes = [list(t.shape) for t in outs]
        self.result.peak_activation_bytes = self._peak()

    def _peak(self) -> int:
        """Peak of live activation storage: a storage lives from its first writer to its last reader."""
        delta: dict[int, int] = {}
        for key, (start, nbytes) in self._alloc.items():
            if key in self.weight_owner:
                continue
            stop = self._last_use.get(key, start)
            delta[start] = delta.get(start, 0) + nbytes
            delta[stop + 1] = delta.get(stop + 1, 0) - nbytes
        live = peak = 0
        for step in sorted(delta):
            live += delta[step]
            peak = max(peak, live)
        return peak


def _scalar_arithmetic(args, kwargs, out) -> bool:
    """Shape arithmetic a traced graph does on real 0-dim CPU tensors (``NumToTensor(size) // 2``, ``int(t)``): no
    work of the model, left out of the trace."""
    if not isinstance(out, torch.Tensor):
        return not _tensors(out) and all(t.device.type == "cpu" and t.dim() == 0 for t in _tensors((args, kwargs)))
    return out.dim() == 0 and out.device.type == "cpu" and all(
        t.device.type == "cpu" and t.dim() == 0 for t in _tensors((args, kwargs)))


def _cpu_operands_to_meta(args, kwargs):
    """An op that mixes meta tensors with real (CPU) ones fails on the device check. The real ones are constants the
    model built at run time or baked into the file (anchor grids, strides, a DFL ``arange``, an index made with
    ``torch.arange(bs)``): small, and their values do not change any shape, so the op runs with them moved to meta.
    Returns (args, kwargs, storage keys of the moved tensors), or None when the op mixes no devices (the failure is
    something else). The op is recorded with its original operands, so the trace keeps who produced them."""
    flat, spec = tree_flatten((args, kwargs))
    devices = {t.device.type for t in flat if isinstance(t, torch.Tensor)}
    if "meta" not in devices or len(devices) < 2:
        return None
    moved = {_storage_key(t) for t in flat if isinstance(t, torch.Tensor) and t.device.type != "meta"}
    flat = [t.to("meta") if isinstance(t, torch.Tensor) and t.device.type != "meta" else t for t in flat]
    args, kwargs = tree_unflatten(flat, spec)
    return args, kwargs, moved


def _attrs(func, args, kind: str) -> dict:
    if kind in ("conv", "conv_transpose") and len(args) > 1:
        w = args[1]
        groups = args[8] if len(args) > 8 and isinstance(args[8], int) else 1
        stride = list(args[3]) if len(args) > 3 and isinstance(args[3], (list, tuple)) else []
        cin = args[0].shape[1] if args[0].dim() > 1 else 0
        cout = w.shape[1] * groups if kind == "conv_transpose" else w.shape[0]
        return {"groups": groups, "kernel": list(w.shape[2:]), "stride": stride, "in_channels": cin,
                "out_channels": cout}
    return {}


def weight_owners(named_tensors: list[tuple[str, torch.Tensor]]) -> dict[int, str]:
    """Storage key -> owning module path, from (qualified name, tensor) pairs ("layer1.0.conv1.weight")."""
    owners: dict[int, str] = {}
    for name, t in named_tensors:
        owners.setdefault(_storage_key(t), name.rpartition(".")[0])
    return owners


def numel_shape(shape: list[int]) -> int:
    return prod(shape) if shape else 1
