"""thop as a second opinion (the number papers quote), beside ours, with the difference explained.

thop counts by hooking nn.Module layers while the model runs on real CPU tensors. So it needs an eager module: a
trusted full pickle, or a state_dict we rebuilt from the zoo. TorchScript and ExportedProgram files contain no
nn.Module layers to hook, and ONNX is not torch: for those we say so instead of printing a wrong 0.

Known differences: thop adds BatchNorm, activations and pooling into its "MACs" (we keep them in ``other_flops``), counts
bias adds in Linear, and misses attention that runs as functional ops (``F.scaled_dot_product_attention``, the QK^T and
AV products inside nn.MultiheadAttention), which we count.
"""
from __future__ import annotations

from pathlib import Path

from embodied_tui.data.records import Analysis


def thop_opinion(path: str | Path, analysis: Analysis, *, trust_code: bool = False) -> dict:
    """Returns {"thop_macs", "thop_params", "ours_macs", "ratio", "explanation"} or {"unavailable": reason}."""
    if analysis.format in ("torchscript", "exported_program", "onnx"):
        return {"unavailable": f"thop hooks nn.Module layers while the model runs; a {analysis.format.replace('_', ' ')}"
                               " file has none to hook, so thop would report 0"}
    module = _eager_module(Path(path), analysis, trust_code)
    if module is None:
        return {"unavailable": "no architecture to run: this state_dict matches no model we can rebuild"}
    import contextlib
    import io

    import thop
    import torch

    inputs = tuple(torch.zeros(s, dtype=getattr(torch, d, torch.float32))
                   for s, d in zip(analysis.input_shapes, analysis.input_dtypes or ["float32"] * 9))
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        macs, params = thop.profile(module, inputs=inputs, verbose=False)
    return _explain(int(macs), int(params), analysis)


def _eager_module(path: Path, analysis: Analysis, trust_code: bool):
    import torch

    from embodied_tui.analysis import zoo
    from embodied_tui.analysis.loaders import load_torch_pickle, read_safetensors_header

    if analysis.format == "safetensors":
        shapes = {k: v[0] for k, v in read_safetensors_header(path)[0].items()}
    else:
        kind, obj, _ = load_torch_pickle(path, trust_code)
        if kind == "module":
            return obj.float().eval()
        shapes = {k: tuple(v.shape) for k, v in obj.items()}
    match = zoo.identify_state_dict(shapes)
    if match is None:
        return None
    kwargs = {"num_classes": match.num_classes} if match.num_classes not in (None, -1) else {}
    with torch.device("cpu"):
        return zoo.BUILDERS[match.name].build(**kwargs)


def _explain(thop_macs: int, thop_params: int, a: Analysis) -> dict:
    ours = a.macs or 0
    attention = a.macs_by_kind.get("attention", 0) + a.macs_by_kind.get("matmul", 0)
    parts = []
    if attention:
        parts.append(f"thop misses attention matmuls ({attention:,} MACs here: QK^T and AV run as functional ops)")
    if a.other_flops:
        parts.append(f"thop adds normalisation/activation/pooling work that we report apart as other_flops "
                     f"({a.other_flops:,} here)")
    parts.append("thop counts Linear bias adds as MACs; we count multiply-accumulates only")
    return {"thop_macs": thop_macs, "thop_params": thop_params, "ours_macs": ours,
            "ratio": round(thop_macs / ours, 4) if ours else None,
            "difference_pct": round(100 * (thop_macs - ours) / ours, 2) if ours else None,
            "explanation": "; ".join(parts)}
