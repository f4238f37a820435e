"""Is the graph a valid ONNX model? Counting a graph no runtime would load prints numbers for a model that does not
exist, so an invalid one is refused with one line: "not a valid ONNX model: <reason>".

Checked on the graph as the file gives it (its own input shapes, before a user's ``--input-shape`` and before any
folding), without its weights and without creating an onnxruntime session (about 100x slower and heavy on memory):

- a value produced twice in one graph (by two nodes, or by a node and a graph input or initializer), which breaks
  ONNX's single-assignment rule;
- attributes a runtime rejects whatever the input shapes: a Transpose ``perm`` that is not a permutation of
  0..rank-1 (the TorchScript exporter writes negative axes for ``moveaxis``/``movedim`` with negative dims, a file
  onnxruntime refuses), a Cast to a type that does not exist;
- every standard-domain node against its operator schema (``onnx.checker.check_node``: unknown or mistyped
  attributes, missing required ones, input counts); nodes holding subgraphs are checked through their inner nodes;
- types and shapes by ONNX's strict inference with type checking (``check_type``, ``strict_mode``): an op whose
  inputs disagree in type (an fp16 conversion that left a Cast to float32 in front of an fp16 Add), shapes that cannot
  be combined. Ops of other domains (com.microsoft ...) are not known to ONNX and pass.

``onnx.checker.check_model`` as a whole is not used: it also rejects files onnxruntime runs (a graph output declared
without a shape) and wants the weights. The graph-level checks it adds (a cycle, external data outside the folder, an
opset too new) are ``onnx.load``'s. onnx is imported inside the functions.
"""
from __future__ import annotations

from pathlib import Path

from embodied_tui.analysis.onnx.graph import subgraphs, walk_graphs
from embodied_tui.errors import AnalysisError

_STANDARD = ("", "ai.onnx", "ai.onnx.ml")


def validate(model, path: Path, notes: list[str]) -> None:
    """Raise AnalysisError naming the first problem when ``model`` is not a valid ONNX model."""
    problem = (duplicate_problem(model) or attribute_problem(model) or schema_problem(model)
               or inference_problem(model, notes))
    if problem:
        raise AnalysisError(f"{path}: not a valid ONNX model: {problem}; a runtime refuses it too: fix or export it "
                            "again")


def _label(node, k: int) -> str:
    return f"{node.op_type} '{(node.name or f'{node.op_type}_{k}')[:80]}'"


def duplicate_problem(model) -> str | None:
    """A value assigned twice in one graph."""
    for g in walk_graphs(model.graph):
        defined = {vi.name for vi in g.input} | {t.name for t in g.initializer}
        for k, node in enumerate(g.node):
            for name in (o for o in node.output if o):
                if name in defined:
                    return f"{_label(node, k)} produces '{name[:80]}', which the graph already defines"
                defined.add(name)
    return None


def attribute_problem(model) -> str | None:
    """Attribute values no input shape can make valid."""
    import onnx

    for g in walk_graphs(model.graph):
        for k, node in enumerate(g.node):
            if node.domain not in _STANDARD:
                continue
            a = {x.name: x for x in node.attribute}
            if node.op_type == "Transpose" and "perm" in a:
                perm = list(a["perm"].ints)
                if sorted(perm) != list(range(len(perm))):
                    hint = (" (negative axes: the TorchScript exporter writes them for moveaxis/movedim with negative "
                            "dims; use non-negative dims, or export with dynamo=True)" if any(p < 0 for p in perm)
                            else "")
                    return f"{_label(node, k)} has perm {perm[:16]}, not a permutation of 0..{len(perm) - 1}{hint}"
            if node.op_type == "Cast" and "to" in a:
                to = a["to"].i
                if to == onnx.TensorProto.UNDEFINED or to not in onnx.TensorProto.DataType.values():
                    return f"{_label(node, k)} casts to data type {to}, which does not exist"
    return None


def schema_problem(model) -> str | None:
    """The first standard-domain node that does not fit its operator schema."""
    import onnx
    from onnx import checker

    ctx = checker.C.CheckerContext()
    ctx.ir_version = model.ir_version or onnx.IR_VERSION
    ctx.opset_imports = {o.domain: o.version for o in model.opset_import}
    lexical = checker.C.LexicalScopeContext()
    for g in walk_graphs(model.graph):
        for k, node in enumerate(g.node):
            if node.domain not in _STANDARD or subgraphs(node):
                continue
            try:
                checker.check_node(node, ctx, lexical)
            except checker.ValidationError as exc:
                first = (str(exc).strip().splitlines() or [""])[0]
                return f"{_label(node, k)}: {first[:200]}"
    return None


def inference_problem(model, notes: list[str]) -> str | None:
    """The first error of ONNX's strict shape and type inference, None when there is none."""
    import onnx

    try:
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as exc:  # noqa: BLE001 - InferenceError, ValidationError and protobuf limits alike
        text = str(exc).strip()
        if "2GB" in text or "2 GB" in text:
            notes.append("the graph is over 2 GB even without its weights: its types were not checked")
            return None
        return _first_error(text)
    return None


def _first_error(text: str) -> str:
    """The first error of an inference message: "(op_type:Transpose, node name: /T): [TypeInferenceError] ..." ->
    "Transpose '/T': [TypeInferenceError] ..."."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    first = lines[0] if lines else "shape inference failed"
    first = first.replace("[ShapeInferenceError] Inference error(s): ", "")
    if first.startswith("(op_type:") and "): " in first:
        head, _, rest = first.partition("): ")
        op, _, name = head[len("(op_type:"):].partition(", node name: ")
        first = f"{op} '{name[:80]}': {rest}"
    more = len([ln for ln in lines[1:] if ln.startswith("(op_type:")])
    return first[:240] + (f" (and {more} more)" if more else "")
