"""`embodied-ai fit NAME --prompt-tokens P --new-tokens K`: a decoder transformer's generation rows (prefill, decode per
token, total and KV cache), through the real CLI on a real registry of bare config.json records.

Independent paths: the times are recomputed here with ``perf.phases.fit_phase`` on a tower read from the same config
by ``analysis.hf.config`` and the catalog's own peak and bandwidth; the KV cache by hand (2 x layers x kv_heads x
head_dim x 2 bytes x tokens); the total by arithmetic."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from embodied_tui.analysis.hf.config import read_config, towers
from embodied_tui.data.hardware import find_device, load_catalog
from embodied_tui.perf import phases
from embodied_tui.services.card import sig

HW = "jetson-orin-nano-8gb-super"
P, K = 16, 4
LLAMA = {"model_type": "llama", "hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4,
         "num_attention_heads": 8, "num_key_value_heads": 8, "vocab_size": 1000, "max_position_embeddings": 512,
         "tie_word_embeddings": False, "torch_dtype": "float16"}


def _config(tmp_path: Path, name: str, **changes) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    path = folder / "config.json"
    path.write_text(json.dumps({**LLAMA, **changes}))
    return path


def _register(cli, path: Path, name: str) -> None:
    result = cli("model", "register", path, "--name", name)
    assert result.exit_code == 0, result.output


def _rows(cli, name: str, *extra) -> list[dict]:
    result = cli("fit", name, "--hw", HW, "--json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _generation(cli, name: str, *extra) -> list[dict]:
    return _rows(cli, name, "--prompt-tokens", P, "--new-tokens", K, *extra)


def test_generation_rows_match_phases_and_hand_arithmetic(cli, tmp_path):
    path = _config(tmp_path, "llama")
    _register(cli, path, "tiny-llama")
    rows = _generation(cli, "tiny-llama")
    tower = towers(read_config(path))[0]
    entry = find_device(HW, load_catalog())
    assert {r["precision"] for r in rows} >= {"fp16", "int8", "int4"}
    assert len(rows) == len(entry.power_modes) * len({r["precision"] for r in rows})
    for row in rows:
        mode = entry.mode(row["power_mode"])
        compute = phases.COMPUTE_PRECISION[row["precision"]]
        device = dict(peak_flops=mode.peak_flops(compute), bandwidth=mode.bandwidth_bytes_per_s())
        prefill = phases.fit_phase(tower, "prefill", P, row["precision"], **device,
                                   eff=phases.phase_efficiency("prefill", "soc", HW))
        decode = phases.fit_phase(tower, "decode", K, row["precision"], context=P, **device,
                                  eff=phases.phase_efficiency("decode", "soc", HW))
        assert row["prompt_tokens"] == P and row["new_tokens"] == K
        assert row["prefill_ms"] == pytest.approx(prefill.predicted_ms, rel=1e-12)
        assert row["decode_ms_per_token"] == pytest.approx(decode.predicted_ms / K, rel=1e-12)
        assert row["predicted_latency_ms"] == pytest.approx(row["prefill_ms"] + K * row["decode_ms_per_token"],
                                                            rel=1e-12)
        assert row["roofline_latency_ms"] <= row["predicted_latency_ms"]
        # fp16 K and V: 2 (K, V) x 4 layers x 8 kv heads x 32 head dims (256 / 8) x 2 bytes x (16 + 4) tokens
        assert row["kv_cache_bytes"] == 2 * 4 * 8 * 32 * 2 * 20 == 81_920
        assert row["fits_memory"] is True and "KV cache" in row["memory_note"]
        assert row["interval_low_ms"] < row["predicted_latency_ms"] < row["interval_high_ms"]
    # decode of a few tokens is bandwidth-bound: int4 weights (4.5 bits) decode faster than fp16 (16 bits)
    by_prec = {r["precision"]: r for r in rows if r["power_mode"] == rows[0]["power_mode"]}
    assert by_prec["int4"]["decode_ms_per_token"] < by_prec["fp16"]["decode_ms_per_token"]


def test_table_shows_the_phases_within_80_columns(cli, tmp_path):
    _register(cli, _config(tmp_path, "llama"), "tiny-llama")
    result = cli("fit", "tiny-llama", "--hw", HW, "--prompt-tokens", P, "--new-tokens", K)
    assert result.exit_code == 0, result.output
    assert all(len(line) <= 80 for line in result.output.splitlines())
    header = next(line for line in result.output.splitlines() if line.startswith("hardware"))
    assert header.split() == ["hardware", "mode", "prec", "prefill", "dec/tok", "total", "range", "b", "kv", "fit"]
    assert "total = prefill + K x dec/tok" in " ".join(result.output.split())


def test_grouped_query_attention_shrinks_the_kv_cache(cli, tmp_path):
    _register(cli, _config(tmp_path, "mha"), "mha")
    _register(cli, _config(tmp_path, "gqa", num_key_value_heads=2), "gqa")
    mha = _generation(cli, "mha", "--precision", "fp16")
    gqa = _generation(cli, "gqa", "--precision", "fp16")
    assert gqa[0]["kv_cache_bytes"] == 2 * 4 * 2 * 32 * 2 * (P + K)
    assert gqa[0]["kv_cache_bytes"] * 4 == mha[0]["kv_cache_bytes"]  # 2 of 8 kv heads


def test_without_the_flags_the_row_is_one_forward_pass(cli, tmp_path):
    _register(cli, _config(tmp_path, "llama"), "tiny-llama")
    rows = _rows(cli, "tiny-llama", "--precision", "fp16")
    assert rows and all("prefill_ms" not in r and "kv_cache_bytes" not in r for r in rows)
    assert rows[0]["calibration"] != "phases"


def test_a_cnn_is_refused_in_one_line(cli, tmp_path):
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3)).eval()
    path = tmp_path / "cnn.pt"
    torch.jit.save(torch.jit.trace(net, torch.randn(1, 3, 32, 32)), str(path))
    assert cli("model", "register", path, "--name", "cnn", "--input-shape", "1,3,32,32").exit_code == 0
    result = cli("fit", "cnn", "--hw", HW, "--prompt-tokens", P, "--new-tokens", K)
    assert result.exit_code != 0
    assert "not a transformer language model" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_an_encoder_has_no_decode_phase(cli, tmp_path):
    path = tmp_path / "bert" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"model_type": "bert", "hidden_size": 64, "num_hidden_layers": 2,
                                "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 500}))
    _register(cli, path, "tiny-bert")
    result = cli("fit", "tiny-bert", "--hw", HW, "--prompt-tokens", P, "--new-tokens", K)
    assert result.exit_code != 0 and "no decode phase" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("args, words", [
    (("--prompt-tokens", 0, "--new-tokens", 4), "--prompt-tokens must be a positive"),
    (("--prompt-tokens", 16, "--new-tokens", -1), "--new-tokens must be a positive"),
    (("--prompt-tokens", 16), "--new-tokens is missing"),
    (("--new-tokens", 4), "--prompt-tokens is missing"),
    (("--prompt-tokens", "many", "--new-tokens", 4), "'many' is not a valid integer"),
])
def test_bad_token_counts_are_refused(cli, tmp_path, args, words):
    _register(cli, _config(tmp_path, "llama"), "tiny-llama")
    result = cli("fit", "tiny-llama", "--hw", HW, *args)
    assert result.exit_code == 2 and words in result.output, result.output
    assert "Traceback" not in result.output


def test_card_states_the_generation_of_a_decoder_only(cli, tmp_path):
    _register(cli, _config(tmp_path, "llama"), "tiny-llama")
    card = json.loads(cli("card", "tiny-llama", "--json").output)
    section = next(s for s in card["sections"] if s["title"] == "Generation")
    first = section["lines"][1]
    hw_name = first.split("On ", 1)[1].split(" (", 1)[0]
    mode, prec = first.split(" (", 1)[1].split(")", 1)[0].split(", ")
    hw = next(d for d in load_catalog() if d.name == hw_name).id
    row = next(r for r in json.loads(cli("fit", "tiny-llama", "--hw", hw, "--mode", mode, "--precision", prec,
                                         "--prompt-tokens", 128, "--new-tokens", 128, "--json").output))
    assert f"prefill {sig(row['prefill_ms'])} ms + 128 x {sig(row['decode_ms_per_token'])} ms per token = " \
           f"{sig(row['predicted_latency_ms'])} ms" in first
    path = tmp_path / "bert" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"model_type": "bert", "hidden_size": 64, "num_hidden_layers": 2,
                                "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 500}))
    _register(cli, path, "tiny-bert")
    assert all(s["title"] != "Generation" for s in json.loads(cli("card", "tiny-bert", "--json").output)["sections"])


def test_a_folder_and_its_bare_weights_fit_as_their_config(cli, tmp_path):
    """A Hugging Face folder (config + safetensors) and its safetensors file alone (architecture from tensor names)
    give the generation of the same architecture as the config.json alone."""
    transformers = pytest.importorskip("transformers")
    cfg = {k: v for k, v in LLAMA.items() if k not in ("model_type", "torch_dtype")}
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**cfg))
    model.save_pretrained(tmp_path / "folder", safe_serialization=True)
    _register(cli, tmp_path / "folder", "folder")
    _register(cli, tmp_path / "folder" / "model.safetensors", "weights")
    _register(cli, tmp_path / "folder" / "config.json", "config")
    keys = ("prefill_ms", "decode_ms_per_token", "predicted_latency_ms", "kv_cache_bytes")
    rows = {name: [[r[k] for k in keys] for r in _generation(cli, name, "--precision", "int4")]
            for name in ("folder", "weights", "config")}
    assert rows["folder"] == rows["config"] == rows["weights"]


def test_learned_positions_bound_the_tokens(cli, tmp_path):
    path = tmp_path / "gpt2" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 500,
                                "n_positions": 16}))
    _register(cli, path, "tiny-gpt2")
    assert _rows(cli, "tiny-gpt2", "--prompt-tokens", 12, "--new-tokens", 4)  # 16 positions: fits exactly
    result = cli("fit", "tiny-gpt2", "--hw", HW, "--prompt-tokens", 12, "--new-tokens", 5)
    assert result.exit_code == 2 and "17 tokens exceed the 16 positions" in result.output


@pytest.mark.parametrize("flag", [("--runtime", "tensorrt"), ("--layers",)])
def test_options_of_a_one_pass_fit_are_refused_with_a_generation(cli, tmp_path, flag):
    _register(cli, _config(tmp_path, "llama"), "tiny-llama")
    result = cli("fit", "tiny-llama", "--hw", HW, "--prompt-tokens", P, "--new-tokens", K, *flag)
    assert result.exit_code == 2 and f"{flag[0]} does not apply to a generation fit" in result.output


def test_a_config_changed_since_registration_is_refused(cli, tmp_path):
    path = _config(tmp_path, "llama")
    _register(cli, path, "tiny-llama")
    path.write_text(json.dumps({**LLAMA, "num_hidden_layers": 8}))
    result = cli("fit", "tiny-llama", "--hw", HW, "--prompt-tokens", P, "--new-tokens", K)
    assert result.exit_code == 2 and "changed since it was registered" in result.output
