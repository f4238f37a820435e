"""Counts and speed: embodied-ai against thop, fvcore, torchinfo, torch's FlopCounterMode and onnx-tool, in one run.

    .venv/bin/python benchmarks/analysis.py [--models bert,gpt2,swin] [--zoo resnet18] [--repeat 3] [--big]

Models: the corpus (tests/corpus: one small, structurally faithful model per family: YOLO, DETR, RT-DETR, BERT,
GPT-2, T5, Whisper, Swin, SegFormer, U-Net, Diffusion Policy, PointNet, LSTM policy ...) and zoo models with a
published count (torchvision's GFLOPS, which are MACs; real weights, 1x3x224x224). ``--big`` adds a BERT-base-sized
encoder (d 768, 12 layers, 128 tokens: 110 M parameters) so the file-versus-load table also has a file whose size
is not negligible.

Table 1, counts: each tool's MACs and its error against the truth: the published number for zoo models, else
FlopCounterMode's FLOPs / 2 on the in-memory module run so that it sees all the work (``truth_count``: autograd on,
math SDPA, recurrent layers by hand). The FlopCounterMode row itself runs as users run it (``torch.no_grad``, default
kernels): it reads low where the fused inference kernels hide attention (nn.MultiheadAttention's fast path, the CPU
flash SDPA) and has no LSTM/GRU formula. thop, fvcore, torchinfo and FlopCounterMode run the in-memory module (real
compute); onnx-tool (``onnx_tool.Model`` -> ``shape_infer`` -> ``profile``) reads the
ONNX export; its "MACs" add elementwise work, so it is shown twice: its total, and its Conv/Gemm/MatMul/Einsum nodes
only (our convention). We count the in-memory module (meta device) and each file. Time ratio = tool time / our time
on the same input (the in-memory module, or the ONNX file for onnx-tool); best of ``--repeat``.

Table 2, from a file: our whole analysis (``analyze_file``: detect, open safely, count, classify, hash) against only
loading the file: ``torch.jit.load``, ``torch.export.load``, ``onnx.load`` and, for ONNX, creating an onnxruntime
session (what a runtime does before the first inference).

Table 3, symbolic sequence dims: the extra time ``analysis/onnx/scaling.py`` spends (three or four more counts)
on ONNX exports of BERT and GPT-2 with a dynamic ``sequence`` axis.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from corpus import CORPUS  # noqa: E402
from corpus.export import write  # noqa: E402

from embodied_tui.analysis import zoo  # noqa: E402
from embodied_tui.analysis.api import InputShape, analyze_file  # noqa: E402
from embodied_tui.analysis.torch.analyze import analyze_module  # noqa: E402

PUBLISHED = {"resnet18": 1.814e9, "resnet50": 4.089e9, "mobilenet_v2": 0.301e9, "efficientnet_b0": 0.386e9,
             "vit_b_16": 17.564e9}
DEFAULT_MODELS = ("yolov8,detr,rtdetr,bert,gpt2,t5,whisper,swin,segformer,unet,diffusion_policy,pointnet,lstm_policy,"
                  "resnet,vit")
MAC_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "Einsum", "MatMulInteger", "ConvInteger", "QLinearConv",
           "QLinearMatMul"}


def best(fn, repeat: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
    return min(times), value


def shapes_of(inputs) -> list[InputShape]:
    return [InputShape(list(t.shape), str(t.dtype).removeprefix("torch.")) for t in inputs]


# ------------------------------------------------------------------------------------------------------------ tools
def ours(model, inputs):
    return analyze_module(model, shapes_of(inputs), fmt="pickle", detail="")["macs"]


def thop_count(model, inputs):
    import thop

    with contextlib.redirect_stdout(io.StringIO()):
        return thop.profile(model, inputs=tuple(inputs), verbose=False)[0]


def fvcore_count(model, inputs):
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, tuple(inputs))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return analysis.total()


def torchinfo_count(model, inputs):
    import torchinfo

    return torchinfo.summary(model, input_data=list(inputs), verbose=0).total_mult_adds


def flop_counter_count(model, inputs):
    from torch.utils.flop_counter import FlopCounterMode

    mode = FlopCounterMode(display=False)
    with mode, torch.no_grad():
        model(*inputs)
    return mode.get_total_flops() / 2


def onnx_tool_counts(path: Path) -> tuple[float, float]:
    """(total "MACs" as onnx-tool counts them, MACs of its Conv/Gemm/MatMul/Einsum nodes only)."""
    import onnx_tool

    with contextlib.redirect_stdout(io.StringIO()):
        model = onnx_tool.Model(str(path), {"verbose": False})
        g = model.graph
        g.graph_reorder_nodes()
        g.shape_infer(None)
        g.profile()
    mac_only = sum(node.macs[0] for node in g.nodemap.values() if node.op_type in MAC_OPS)
    return g.macs[0], mac_only


def truth_count(model, inputs) -> float:
    """The independent truth for corpus models: FlopCounterMode with autograd on (so nn.MultiheadAttention and
    nn.TransformerEncoderLayer take their composite path, not the fused inference kernels it cannot see) and the
    math SDPA backend (decomposed into the bmm it counts; the CPU flash kernel it does not), plus recurrent layers by
    hand: per step and layer, gates x hidden x (input + hidden) MACs (4 gates for an LSTM, 3 for a GRU, 1 for an
    RNN; FlopCounterMode has no formula for aten.lstm/gru)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    hand = [0]

    def recurrent(module, args, _out):
        x = args[0]
        steps, batch = (x.shape[1], x.shape[0]) if module.batch_first else (x.shape[0], x.shape[1])
        gates = {"LSTM": 4, "GRU": 3}.get(type(module).__name__, 1)
        dirs = 2 if module.bidirectional else 1
        for layer in range(module.num_layers):
            width = module.input_size if layer == 0 else module.hidden_size * dirs
            hand[0] += batch * steps * dirs * gates * module.hidden_size * (width + module.hidden_size)

    hooks = [m.register_forward_hook(recurrent) for m in model.modules() if isinstance(m, torch.nn.RNNBase)]
    mode = FlopCounterMode(display=False)
    try:
        with mode, sdpa_kernel(SDPBackend.MATH):
            model(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return mode.get_total_flops() / 2 + hand[0]


PEERS = {"thop": thop_count, "fvcore": fvcore_count, "torchinfo": torchinfo_count,
         "FlopCounterMode": flop_counter_count}


# ------------------------------------------------------------------------------------------------------------ models
def bert_base():
    from corpus.common import built, seeded, tokens
    from corpus.language import VOCAB, Bert

    seeded()
    return built(Bert(d=768, heads=12, layers=12, max_pos=512), (tokens(128, VOCAB),), "bert", "transformer",
                 "language")


def build(name: str):
    """(module, inputs, truth MACs or None for ``truth_count``'s, truth label). ``tv:<name>``: a zoo model."""
    if name.startswith("tv:"):  # the zoo's torchvision architectures (the corpus has small models of the same names)
        builder = zoo.BUILDERS[name[3:]]
        return builder.build(), (torch.randn(1, 3, 224, 224),), PUBLISHED[name[3:]], "published"
    b = bert_base() if name == "bert_base" else CORPUS[name]()
    return b.module, b.inputs, None, "FlopCounterMode (grad mode, math SDPA) + recurrent layers by hand"


# ------------------------------------------------------------------------------------------------------------ tables
def counts_table(names: list[str], files: dict, repeat: int) -> None:
    print("Table 1: MACs (M) and error against the truth; time ratio = tool time / our time on the same input\n")
    header = f"{'model':16s} {'tool':24s} {'MMACs':>11s} {'error':>8s} {'time s':>8s} {'ratio':>7s}"
    print(header)
    print("-" * len(header))
    lowest = float("inf")
    for name in names:
        model, inputs, truth, label = build(name)
        with torch.no_grad():
            t_ours, m_ours = best(lambda: ours(model, inputs), repeat)
            rows = [("embodied-ai (module)", t_ours, m_ours, t_ours)]
            for peer, fn in PEERS.items():
                try:
                    t, m = best(lambda fn=fn: fn(model, inputs), repeat)
                except Exception as exc:  # noqa: BLE001 - a peer failing is a result to print
                    rows.append((peer, None, f"failed: {type(exc).__name__}: {str(exc)[:60]}", None))
                    continue
                rows.append((peer, t, m, t_ours))
        if truth is None:
            truth = truth_count(model, inputs)
        t_onnx = None
        for fmt, path in files.get(name, {}).items():
            try:
                t, a = best(lambda p=path, f=fmt: analyze_file(p, input_shape=shapes_of(inputs)
                                                                if f == "torchscript" else None), repeat)
                rows.append((f"embodied-ai ({fmt})", t, a.macs, None))
                if fmt == "onnx":
                    t_onnx = t
            except Exception as exc:  # noqa: BLE001
                rows.append((f"embodied-ai ({fmt})", None, f"failed: {type(exc).__name__}: {str(exc)[:60]}", None))
        onnx_path = files.get(name, {}).get("onnx")
        if onnx_path is not None and t_onnx is not None:
            try:
                t, (total, mac_only) = best(lambda: onnx_tool_counts(onnx_path), repeat)
                rows.append(("onnx-tool (total)", t, total, t_onnx))
                rows.append(("onnx-tool (MAC ops)", t, mac_only, t_onnx))
            except Exception as exc:  # noqa: BLE001
                rows.append(("onnx-tool", None, f"failed: {type(exc).__name__}: {str(exc)[:60]}", None))
        for tool, t, m, base in rows:
            if isinstance(m, str) or m is None:
                print(f"{name:16s} {tool:24s} {m}")
                continue
            err = f"{100 * (m - truth) / truth:+7.1f}%" if truth else "    n/a"
            ratio = f"{t / base:6.1f}x" if base else "      "
            if base and not tool.startswith("embodied-ai"):
                lowest = min(lowest, t / base)
            print(f"{name:16s} {tool:24s} {m / 1e6:11.3f} {err:>8s} {t:8.4f} {ratio}")
        print(f"{'':16s} truth: {label}\n")
    print(f"fastest peer relative to us (lowest time ratio over all rows): {lowest:.2f}x "
          f"({'we are faster' if lowest >= 1 else 'a peer is faster somewhere'})\n")


def load_table(names: list[str], files: dict, repeat: int) -> None:
    import onnx
    import onnxruntime as ort

    print("Table 2: from a file, our whole analysis vs only loading it (ratio = analyse / load)\n")
    header = f"{'model':16s} {'format':12s} {'MB':>7s} {'load s':>8s} {'ort s':>8s} {'analyse s':>10s} {'ratio':>7s} " \
             f"{'vs ort':>7s}"
    print(header)
    print("-" * len(header))
    worst: dict[str, float] = {}
    loaders = {"torchscript": lambda p: torch.jit.load(str(p), map_location="cpu"),
               "pt2": lambda p: torch.export.load(str(p)), "onnx": lambda p: onnx.load(str(p))}
    for name in names:
        inputs = files[name]["_inputs"]
        for fmt, path in files.get(name, {}).items():
            if fmt.startswith("_"):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t_load, _ = best(lambda p=path, f=fmt: loaders[f](p), repeat)
                t_ort = None
                if fmt == "onnx":
                    t_ort, _ = best(lambda p=path: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]),
                                    repeat)
                shape = shapes_of(inputs) if fmt == "torchscript" else None
                try:
                    t_an, _ = best(lambda p=path, s=shape: analyze_file(p, input_shape=s), repeat)
                except Exception as exc:  # noqa: BLE001
                    print(f"{name:16s} {fmt:12s} analysis failed: {type(exc).__name__}: {str(exc)[:60]}")
                    continue
            ratio = t_an / t_load
            worst[fmt] = max(worst.get(fmt, 0.0), ratio)
            mb = path.stat().st_size / 1e6
            ort_s = f"{t_ort:8.4f}" if t_ort is not None else f"{'':8s}"
            vs_ort = f"{t_an / t_ort:6.2f}x" if t_ort else ""
            print(f"{name:16s} {fmt:12s} {mb:7.1f} {t_load:8.4f} {ort_s} {t_an:10.4f} {ratio:6.2f}x {vs_ort:>7s}")
    print("\nworst analyse/load ratio per format: " + ", ".join(f"{k} {v:.2f}x" for k, v in worst.items()) + "\n")


def scaling_table(tmp: Path, repeat: int, big: bool) -> None:
    from embodied_tui.analysis.onnx.counting import count_onnx
    from embodied_tui.analysis.onnx.scaling import onnx_scaling

    print("Table 3: symbolic sequence dims (ONNX, dynamic 'sequence' axis): extra time of the MACs(n) polynomial\n")
    header = f"{'model':16s} {'count s':>8s} {'+scaling s':>11s} {'extra':>7s}  polynomial"
    print(header)
    print("-" * len(header))
    for name in ("bert", "gpt2") + (("bert_base",) if big else ()):
        b = bert_base() if name == "bert_base" else CORPUS[name]()
        path = tmp / f"{name}.dyn.onnx"
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(b.module, b.inputs, str(path), dynamo=False, opset_version=17,
                              input_names=["input_ids"], dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}})
        t_count, _ = best(lambda: count_onnx(path), repeat)
        t_both, entries = best(lambda: onnx_scaling(count_onnx(path, keep_graph=True), path), repeat)
        s = entries[0] if entries else None
        poly = f"{s.macs_const} + {s.macs_per_token} n + {s.macs_per_token_sq} n^2 ({s.method})" if s else "none"
        print(f"{name:16s} {t_count:8.4f} {t_both:11.4f} {t_both / t_count:6.2f}x  {poly}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=DEFAULT_MODELS, help="corpus models (tests/corpus), comma-separated")
    parser.add_argument("--zoo", default="resnet18,mobilenet_v2",
                        help=f"zoo models with a published count ({', '.join(PUBLISHED)}); '' for none")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big", action="store_true", help="add a BERT-base-sized encoder (110 M parameters)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    corpus = [n for n in args.models.split(",") if n] + (["bert_base"] if args.big else [])
    zoo_names = [f"tv:{n}" for n in args.zoo.split(",") if n]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        files: dict[str, dict] = {}
        for name in corpus + zoo_names:
            model, inputs, _, _ = build(name)
            files[name] = {"_inputs": inputs}
            b = CORPUS[name]() if name in CORPUS else None
            for fmt, suffix in (("torchscript", ".pt"), ("pt2", ".pt2"), ("onnx", ".onnx")):
                path = tmp / f"{name}{suffix}"
                try:
                    with contextlib.redirect_stdout(io.StringIO()):
                        if b is not None:
                            write(b, fmt, path)
                        else:
                            from corpus.common import Built

                            write(Built(model.eval(), inputs, "", "", None), fmt, path)
                    files[name][fmt] = path
                except Exception as exc:  # noqa: BLE001 - say which file could not be written
                    print(f"{name}: could not write {fmt}: {type(exc).__name__}: {str(exc)[:80]}")
        file_map = {n: {k: v for k, v in d.items() if not k.startswith("_")} for n, d in files.items()}
        counts_table(corpus + zoo_names, file_map, args.repeat)
        load_table(corpus + zoo_names, files, args.repeat)
        scaling_table(tmp, args.repeat, args.big)


if __name__ == "__main__":
    main()
