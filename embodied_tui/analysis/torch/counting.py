"""One pass over a torch model on the meta device, counting every aten op.

The model runs on meta tensors under a ``TorchDispatchMode``: shapes propagate, nothing is computed and no activation is
allocated. Per op we record MACs and other FLOPs (``formulas``), the elements read and written (views are free, each
input is read once), the weights it touched, its output shape and the module that owns it. Tensor lifetimes give the
peak live activation memory.

Ownership: for eager modules a global forward hook keeps the module stack (exact); for ExportedPrograms each graph
node's ``nn_module_stack`` says it (exact); for TorchScript, whose calls run inside the interpreter, an op is charged to
the module whose weights it reads, and a weightless op to the owner of its first input's producer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from embodied_tui.analysis.torch.formulas import cost_of
from embodied_tui.analysis.trace import TraceOp

aten = torch.ops.aten
# ops that only change metadata or autograd state: no work, no traffic, not in the trace
_NOOPS = {aten.detach.default, aten.alias.default, aten.lift_fresh.default, aten._to_copy.default,
          aten.empty.memory_format, aten.empty_like.default, aten.empty_strided.default, aten.new_empty.default}


def _like(args, kwargs):
    return torch.empty_like(args[0], memory_format=kwargs.get("memory_format") or torch.preserve_format)


def _same(args, kwargs):
    return args[0]


def _broadcast(args, kwargs):
    a, b = args[0], args[1]
    if not isinstance(b, torch.Tensor) or b.dim() == 0 and a.dim() > 0:
        return torch.empty_like(a)
    if not isinstance(a, torch.Tensor):
        return torch.empty_like(b)
    return torch.empty(torch.broadcast_shapes(a.shape, b.shape), dtype=torch.result_type(a, b), device="meta")


def _batch_norm(args, kwargs):
    x = args[0]
    c = x.shape[1] if x.dim() > 1 else 0
    return torch.empty_like(x), x.new_empty((c,)), x.new_empty((c,))


def _fast_paths() -> dict:
    """Shape-only results for frequent shape-preserving ops. Their meta kernels are Python decompositions that cost
    ~1 ms each; on meta tensors only the output's shape and dtype matter, so these give exactly the same result."""
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
    return table


_FAST = _fast_paths()


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

    @property
    def macs(self) -> int:
        return sum(e.macs for e in self.events)

    @property
    def other_flops(self) -> int:
        return sum(e.other_flops for e in self.events)


def _storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata


def _tensors(tree) -> list[torch.Tensor]:
    return [t for t in tree_flatten(tree)[0] if isinstance(t, torch.Tensor)]


class OpCounter(TorchDispatchMode):
    """Counts ops as they are dispatched. ``scope`` returns the current owner path (or None when unknown)."""

    def __init__(self, weight_owner: dict[int, str], scope: Callable[[], str | None]):
        super().__init__()
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
            self._keep.append(t)
            self._producer[key] = -1
            self._alloc.setdefault(key, (-1, t.untyped_storage().nbytes()))
            self.result.input_bytes += t.numel() * t.element_size()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.current_op = str(func.overloadpacket.__name__)
        try:
            fast = _FAST.get(func)
            if fast is not None and not kwargs.get("out") and all(
                    a.device.type == "meta" for a in args if isinstance(a, torch.Tensor)):
                out = fast(args, kwargs)
            else:  # real CPU scalars (kept for data-dependent code) and everything else run for real
                out = func(*args, **kwargs)
        except Exception:
            if not self.result.failed_owner:  # where it failed, before hooks unwind the module stack
                scope = self.scope()
                self.result.failed_owner = scope if scope is not None else (
                    self.result.trace[-1].owner if self.result.trace else "")
            raise
        if func in _NOOPS:
            return out
        self._record(func, args, kwargs, out)
        return out

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
                                         out_shape=out_shape, macs=cost.macs, attrs=_attrs(func, args, kind)))

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
