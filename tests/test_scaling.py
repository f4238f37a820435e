"""MACs as a function of a symbolic sequence length (``records.Scaling``, filled by ``analysis/onnx/scaling.py``).

Real ONNX exports of the corpus's BERT encoder and GPT-2 causal decoder (tests/corpus) with a dynamic ``sequence``
axis are analysed through ``analyze_file``; the polynomial's three terms are checked against torch's FlopCounterMode
on the in-memory module at two lengths the analyser never counted (independent of our counter), and against the
structure written out by hand. A CNN whose only symbolic dim is the batch gets no entry.
"""
from __future__ import annotations

import warnings

import pytest
import torch
from corpus import CORPUS
from corpus.common import tokens
from corpus.language import VOCAB
from torch.utils.flop_counter import FlopCounterMode

from embodied_tui.analysis.api import analyze_file
from embodied_tui.analysis.scaling import CHECK, LENGTHS, quadratic, sequence_dims


def export(name: str, path, dynamic: dict) -> tuple[torch.nn.Module, object]:
    built = CORPUS[name]()
    names = list(dynamic)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(built.module, built.inputs, str(path), dynamo=False, opset_version=17, input_names=names,
                          dynamic_axes=dynamic)
    return built.module, path


def flop_counter_macs(module, n: int) -> int:
    mode = FlopCounterMode(display=False)
    with mode, torch.no_grad():
        module(tokens(n, VOCAB))
    return mode.get_total_flops() // 2


def macs(entry, n: int) -> int:
    return entry.macs_const + entry.macs_per_token * n + entry.macs_per_token_sq * n * n


# d_model 64, 2 layers, 4 heads in both corpus models (tests/corpus/language.py)
D, LAYERS = 64, 2


@pytest.mark.parametrize("name,per_token,const", [
    # BERT: per layer q, k, v, attention output (4 d^2) + FFN d->4d->d (8 d^2); the pooler (d^2) runs on one token
    ("bert", LAYERS * (4 * D * D + 8 * D * D), D * D),
    # GPT-2: per layer fused qkv (3 d^2) + c_proj (d^2) + MLP (8 d^2); the tied LM head d x VOCAB per token
    ("gpt2", LAYERS * (4 * D * D + 8 * D * D) + D * VOCAB, 0),
])
def test_sequence_scaling_matches_flop_counter_at_other_lengths(tmp_path, name, per_token, const):
    module, path = export(name, tmp_path / f"{name}.onnx", {"input_ids": {0: "batch", 1: "sequence"}})
    a = analyze_file(path)
    assert a.scaling is not None and len(a.scaling) == 1, a.scaling
    s = a.scaling[0]
    assert (s.dim, s.input, s.used) == ("sequence", "input_ids", 1)  # the symbol was counted at 1
    assert str(LENGTHS[0]) in s.method and "checked at 1" in s.method
    # Q K^T and attention x V: n^2 d each per layer, over the full score matrix (causal too, FlopCounterMode's way)
    assert s.macs_per_token_sq == LAYERS * 2 * D
    assert s.macs_per_token == per_token and s.macs_const == const
    assert macs(s, s.used) == a.macs  # the polynomial gives the count the analysis reports
    for n in (24, 100):  # lengths the analyser did not count
        assert macs(s, n) == flop_counter_macs(module, n), n


@pytest.mark.parametrize("name,high", [("bert", 128), ("gpt2", 127)])  # GPT-2's mask buffer guards n != 128
def test_pt2_program_symbols_get_the_same_polynomial(tmp_path, name, high):
    """A ``.pt2`` exported with a dynamic sequence Dim: torch.export names it ``s<k>``; counted by the meta run at
    other lengths, within the program's range (GPT-2's upper bound 127 moves the check there)."""
    built = CORPUS[name]()
    seq = torch.export.Dim("sequence", min=2, max=high)
    path = tmp_path / f"{name}.pt2"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.export.save(torch.export.export(built.module, built.inputs, dynamic_shapes=({1: seq},), strict=False),
                          str(path))
    a = analyze_file(path)
    assert a.scaling is not None and len(a.scaling) == 1, (a.scaling, a.input_symbols)
    s = a.scaling[0]
    assert s.dim == a.input_symbols[0][1] and s.used == built.inputs[0].shape[1]  # the export's example length
    assert f"checked at {min(high, CHECK)}" in s.method
    assert s.macs_per_token_sq == LAYERS * 2 * D
    for n in (24, 100):
        assert macs(s, n) == flop_counter_macs(built.module, n), n


def test_pt2_range_too_short_for_the_lengths_gets_no_entry(tmp_path):
    built = CORPUS["bert"]()
    path = tmp_path / "short.pt2"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = torch.export.export(built.module, built.inputs, dynamic_shapes=({1: torch.export.Dim("s", max=40)},),
                                 strict=False)
        torch.export.save(ep, str(path))
    a = analyze_file(path)
    assert a.input_symbols[0][1] and a.macs  # symbolic, and counted at the example length
    assert a.scaling is None  # 64 is outside the program's range: no polynomial from lengths it refuses


def test_user_length_is_the_used_one_and_the_terms_do_not_move(tmp_path):
    _, path = export("bert", tmp_path / "bert.onnx", {"input_ids": {0: "batch", 1: "sequence"}})
    at_one = analyze_file(path).scaling[0]
    at_40 = analyze_file(path, input_shape=[[1, 40]])
    s = at_40.scaling[0]
    assert s.used == 40 and "checked at 40" in s.method
    assert (s.macs_const, s.macs_per_token, s.macs_per_token_sq) == \
        (at_one.macs_const, at_one.macs_per_token, at_one.macs_per_token_sq)
    assert macs(s, 40) == at_40.macs
    at_16 = analyze_file(path, input_shape=[[1, LENGTHS[0]]]).scaling[0]  # one of the solving lengths: 128 checks
    assert f"checked at {CHECK}" in at_16.method


def test_cnn_with_a_dynamic_batch_gets_no_sequence_entry(tmp_path):
    _, path = export("resnet", tmp_path / "resnet.onnx", {"images": {0: "batch"}})
    a = analyze_file(path)
    assert a.input_shapes == [[1, 3, *a.input_shapes[0][2:]]] and a.macs
    assert a.scaling is None
    assert "scaling" not in a.model_dump(exclude_none=True)


def test_static_export_gets_no_entry(tmp_path):
    built = CORPUS["bert"]()
    path = tmp_path / "static.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(built.module, built.inputs, str(path), dynamo=False, opset_version=17)
    assert analyze_file(path).scaling is None


def test_the_sequence_rule():
    names = ["input_ids", "attention_mask", "mel", "embeds", "image", "ids2"]
    symbols = [["batch", "sequence"], ["batch", "sequence"], ["batch", None, "frames"], ["b", "seq", None],
               ["batch", None, "height", "width"], ["batch_size", "batch"]]
    dtypes = ["int64", "int64", "float32", "float32", "float32", "int64"]
    # token ids and masks share one symbol (first carrier named); a [batch, seq, hidden] float input counts; a
    # spectrogram's frames, image sizes and a second batch-like symbol do not
    assert sequence_dims(names, symbols, dtypes) == {"sequence": "input_ids", "seq": "embeds"}


def test_quadratic_refuses_what_is_not_a_quadratic():
    assert quadratic(lambda n: 7 + 3 * n + 5 * n * n) == (7, 3, 5)
    assert quadratic(lambda n: 7 + 3 * n + 5 * n * n, check=(10, 7 + 30 + 500)) == (7, 3, 5)
    assert quadratic(lambda n: n ** 3) is None  # fits three points, misses the fourth
    assert quadratic(lambda n: n * n // 3 + 1) is None  # not integer terms
    assert quadratic(lambda n: None if n == 64 else n) is None  # a count missing
    assert quadratic(lambda n: 2 * n, check=(1, 3)) is None  # the analysis's own count disagrees
