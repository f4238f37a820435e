"""Run a loaded torch model once on meta tensors under the ``OpCounter``, with the right way to know which module runs.

- eager ``nn.Module`` (full pickles with --trust-code, state_dicts rebuilt from the zoo): global forward hooks keep the
  module stack, so every op is charged to the innermost running module.
- ExportedProgram: an fx Interpreter sets the owner from each node's ``nn_module_stack`` before running it.
- TorchScript: the counter charges ops by weight ownership (see counting.py).
"""
from __future__ import annotations

from math import prod

import torch
import torch.fx

from embodied_tui.analysis.torch.counting import CountResult, OpCounter, weight_owners

REAL_INPUT_ELEMS = 1 << 20  # integer/bool inputs up to this size hold real values


def _meta_inputs(shapes: list[list[int]], dtypes: list[torch.dtype]) -> list[torch.Tensor]:
    """Float inputs are meta tensors. Integer and boolean inputs (token ids, attention masks, lengths), when small, are
    real CPU tensors: integers are ones (token id 1, every position attended as in an integer attention mask),
    booleans False (no position padded, as in a ``key_padding_mask``), so code that reads their values
    (``mask.sum().item()``, ``lengths.max()``) gets the full-length answer; ops that mix them with meta weights run
    on meta."""
    out = []
    for s, d in zip(shapes, dtypes):
        if d.is_floating_point or d.is_complex or prod(s) > REAL_INPUT_ELEMS:
            out.append(torch.zeros(s, dtype=d, device="meta"))
        else:
            out.append(torch.zeros(s, dtype=d) if d == torch.bool else torch.ones(s, dtype=d))
    return out


def _run(counter: OpCounter, call, inputs: list[torch.Tensor]) -> CountResult:
    counter.mark_inputs(inputs)
    outputs = None
    try:
        with torch.no_grad(), counter:  # no_grad (not inference_mode) so composite ops decompose to aten
            outputs = call(inputs)
    except Exception as exc:  # noqa: BLE001 - reported with the module that failed, partial counts kept
        counter.result.failure = exc
        counter.result.failed_op = counter.current_op
    counter.finish(outputs if outputs is not None else [])
    return counter.result


def run_eager(module: torch.nn.Module, shapes: list[list[int]], dtypes: list[torch.dtype]) -> CountResult:
    """Run an eager module with its weights swapped for meta tensors (``functional_call``): the caller's module is
    neither copied nor changed, so an in-memory model costs no weight copy."""
    paths = {id(m): name for name, m in module.named_modules(remove_duplicate=False)}
    stack: list[str] = []

    def pre(mod, _args):
        stack.append(paths.get(id(mod), stack[-1] if stack else ""))

    def post(mod, _args, _out):
        if stack:
            stack.pop()

    named = list(module.named_parameters(remove_duplicate=False)) + list(module.named_buffers(remove_duplicate=False))
    meta: dict[int, torch.Tensor] = {}
    state = {}
    for name, t in named:  # tied weights stay tied: one meta tensor per original tensor
        if id(t) not in meta:
            meta[id(t)] = t if t.device.type == "meta" else torch.empty_like(t, device="meta")
        state[name] = meta[id(t)]
    counter = OpCounter(weight_owners(list(state.items())), lambda: stack[-1] if stack else "")
    h1 = torch.nn.modules.module.register_module_forward_pre_hook(pre)
    h2 = torch.nn.modules.module.register_module_forward_hook(post, always_call=True)
    try:
        result = _run(counter, lambda xs: torch.func.functional_call(module, state, tuple(xs)),
                      _meta_inputs(shapes, dtypes))
    finally:
        h1.remove()
        h2.remove()
    return result


def run_torchscript(module: torch.jit.ScriptModule, shapes: list[list[int]], dtypes: list[torch.dtype], *,
                    substitute_scalars: bool = True) -> CountResult:
    """``substitute_scalars=False`` stops at the first ``.item()`` of a meta tensor (the caller may reload the archive
    on CPU, whose tensor constants then hold their values, and run again)."""
    owners = weight_owners(list(module.named_parameters()) + list(module.named_buffers()))
    counter = OpCounter(owners, lambda: None, substitute_scalars=substitute_scalars)
    with torch.jit.optimized_execution(False):  # one run: graph optimisation passes would cost more than the run
        result = _run(counter, lambda xs: module(*xs), _meta_inputs(shapes, dtypes))
    return result


class _ScopedInterpreter(torch.fx.Interpreter):
    def __init__(self, gm: torch.fx.GraphModule):
        super().__init__(gm)
        self.scope = ""

    def run_node(self, n: torch.fx.Node):
        stack = n.meta.get("nn_module_stack")
        if stack:
            self.scope = list(stack.values())[-1][0]
        elif n.op == "call_function":
            self.scope = ""
        return super().run_node(n)

    def call_module(self, target, args, kwargs):
        if target == "_guards_fn":  # export's input-shape guards: we run other shapes on purpose
            return None
        return super().call_module(target, args, kwargs)


def run_exported(gm: torch.fx.GraphModule, shapes: list[list[int]], dtypes: list[torch.dtype]) -> CountResult:
    owners = weight_owners(list(gm.named_parameters(remove_duplicate=False))
                           + list(gm.named_buffers(remove_duplicate=False)))
    interp = _ScopedInterpreter(gm)
    counter = OpCounter(owners, lambda: interp.scope)
    result = _run(counter, lambda xs: interp.run(*xs), _meta_inputs(shapes, dtypes))
    return result
