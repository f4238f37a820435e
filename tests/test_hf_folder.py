"""Hugging Face folders, bare configs, shard indexes and config-less safetensors through the real analyser and the
real CLI with a real TinyDB registry. Expected numbers come from transformers' models (parameter numel, torch's
FlopCounterMode) or from the config count checked by hand in tests/test_hf_config.py."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from embodied_tui.analysis.api import analyze_file
from embodied_tui.analysis.hf import count
from embodied_tui.analysis.hf.config import towers
from embodied_tui.errors import AnalysisError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

# head_dim 64 (what tensor-name inference assumes when it cannot see the split), 2 KV heads of 4 query heads
LLAMA = dict(model_type="llama", hidden_size=256, intermediate_size=320, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, vocab_size=96, max_position_embeddings=64)


def build(config: dict):
    torch.manual_seed(0)
    conf = transformers.AutoConfig.for_model(**config)
    decoder = config["model_type"] not in ("bert", "roberta", "vit")
    cls = transformers.AutoModelForCausalLM if decoder else transformers.AutoModel
    return cls.from_config(conf, attn_implementation="eager").eval()


def state(model, dtype=torch.float16) -> dict:
    """The tensors ``save_pretrained`` would write: tied weights once (safetensors refuses shared storage)."""
    out, seen = {}, set()
    for name, tensor in model.state_dict().items():
        key = tensor.untyped_storage().data_ptr()
        if key in seen:
            continue
        seen.add(key)
        out[name] = tensor.detach().to(dtype).contiguous()
    return out


def write_folder(root: Path, config: dict, *, shards: int = 1, with_config: bool = True) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    model = build(config)
    tensors = state(model)
    if with_config:
        (root / "config.json").write_text(json.dumps({**config, "torch_dtype": "float16"}))
    if shards == 1:
        safetensors_torch.save_file(tensors, str(root / "model.safetensors"))
    else:
        names = sorted(tensors)
        weight_map = {}
        for i in range(shards):
            file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
            part = {n: tensors[n] for n in names[i::shards]}
            safetensors_torch.save_file(part, str(root / file))
            weight_map.update({n: file for n in part})
        (root / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return {"params": sum(p.numel() for p in model.parameters()), "model": model,
            "bytes": sum(t.numel() * t.element_size() for t in tensors.values())}


def flop_counter_macs(model, tokens: int) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(input_ids=torch.zeros(1, tokens, dtype=torch.int64))
    return counter.get_total_flops() // 2


# ------------------------------------------------------------------------------------------------ folders
def test_folder_params_from_headers_and_macs_from_config(tmp_path):
    made = write_folder(tmp_path / "tiny-llama", LLAMA)
    a = analyze_file(tmp_path / "tiny-llama", input_shape=[[1, 16]])
    assert a.format == "hf_folder" and a.path == str((tmp_path / "tiny-llama").resolve())
    assert a.params == made["params"] and a.weight_bytes == made["bytes"]
    assert a.macs == flop_counter_macs(made["model"], 16) and a.flops == 2 * a.macs
    assert a.input_shapes == [[1, 16]] and a.input_shape_source == "user" and a.dtype == "float16"
    s = a.scaling[0]
    assert (s.dim, s.used, s.method) == ("tokens", 16, "from config.json")
    assert s.macs_const + s.macs_per_token * 32 + s.macs_per_token_sq * 32 ** 2 == flop_counter_macs(made["model"], 32)
    t = a.transformer
    assert (t.layers, t.hidden, t.heads, t.kv_heads, t.head_dim, t.tied) == (2, 256, 4, 2, 64, False)
    assert t.kv_cache_bytes_per_token == 2 * 2 * 2 * 64 * 2  # K and V, layers, KV heads, head_dim, fp16
    assert a.architecture.type == "transformer" and a.architecture.family == "llama"
    assert any("equal the count from the config" in n for n in a.notes)
    # the hash covers the config and every weight file, in sorted order
    files = ["config.json", "model.safetensors"]
    manifest = "".join(f"{f} {hashlib.sha256((tmp_path / 'tiny-llama' / f).read_bytes()).hexdigest()}\n" for f in files)
    assert a.sha256 == hashlib.sha256(manifest.encode()).hexdigest()
    assert a.size_bytes == sum((tmp_path / "tiny-llama" / f).stat().st_size for f in files)


def test_sharded_folder_and_index_path(tmp_path):
    single = write_folder(tmp_path / "one", LLAMA)
    write_folder(tmp_path / "three", LLAMA, shards=3)
    a = analyze_file(tmp_path / "three")
    b = analyze_file(tmp_path / "three" / "model.safetensors.index.json")
    assert a.params == b.params == single["params"] and a.macs == b.macs
    assert "3 safetensors shards" in a.format_detail and a.sha256 == b.sha256
    before = a.sha256
    shard = tmp_path / "three" / "model-00002-of-00003.safetensors"
    shard.write_bytes(shard.read_bytes())  # same bytes: same hash
    assert analyze_file(tmp_path / "three").sha256 == before
    data = bytearray(shard.read_bytes())
    data[-1] ^= 1  # one weight bit flipped: another hash
    shard.write_bytes(bytes(data))
    assert analyze_file(tmp_path / "three").sha256 != before


def test_hostile_index_and_missing_shard(tmp_path):
    write_folder(tmp_path / "m", LLAMA, shards=2)
    index = tmp_path / "m" / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    first = next(iter(data["weight_map"]))
    with pytest.raises(AnalysisError, match="outside the model's folder"):
        index.write_text(json.dumps({"weight_map": {**data["weight_map"], first: "../../etc/passwd"}}))
        analyze_file(tmp_path / "m")
    (tmp_path / "m" / "model-00002-of-00002.safetensors").unlink()
    index.write_text(json.dumps(data))
    with pytest.raises(AnalysisError, match="missing"):
        analyze_file(tmp_path / "m")


def test_tied_head_stored_twice_counts_once(tmp_path):
    config = {**LLAMA, "tie_word_embeddings": True}
    made = write_folder(tmp_path / "tied", config)
    path = tmp_path / "tied" / "model.safetensors"
    tensors = safetensors_torch.load_file(str(path))
    tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"].clone()
    safetensors_torch.save_file(tensors, str(path))
    a = analyze_file(tmp_path / "tied")
    assert a.params == made["params"]  # torch's numel over parameters() counts the shared matrix once
    assert a.macs == count.forward_macs(towers(config)[0]).at(128)  # default: 1 x 128 tokens
    assert any("tied to the embedding" in n and "counted once" in n for n in a.notes)


# ------------------------------------------------------------------------------------------------ without config.json
@pytest.mark.parametrize("config", [
    {**LLAMA, "num_attention_heads": 2, "num_key_value_heads": 1},  # head_dim 128: the split inference assumes
    {"model_type": "gpt2", "n_embd": 128, "n_layer": 2, "n_head": 2, "vocab_size": 96, "n_positions": 64},
    {"model_type": "bert", "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
     "intermediate_size": 160, "vocab_size": 96, "max_position_embeddings": 64},
], ids=lambda c: c["model_type"])
def test_config_inferred_from_tensor_names(tmp_path, config):
    made = write_folder(tmp_path / "bare", config, with_config=False)
    a = analyze_file(tmp_path / "bare" / "model.safetensors", input_shape=[[1, 12]])
    assert a.format == "safetensors" and a.params == made["params"]
    assert a.macs == flop_counter_macs(made["model"], 12)
    assert a.transformer.source == "tensor names"
    assert any(n.startswith("config inferred from tensor names") for n in a.notes)
    assert a.architecture.type == "transformer"


def test_vit_inferred_from_tensor_names(tmp_path):
    config = {"model_type": "vit", "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 160, "image_size": 32, "patch_size": 8}
    made = write_folder(tmp_path / "vit", config, with_config=False)
    a = analyze_file(tmp_path / "vit" / "model.safetensors")
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        made["model"](pixel_values=torch.zeros(1, 3, 32, 32))
    assert a.params == made["params"] and a.macs == counter.get_total_flops() // 2
    assert a.input_shapes == [[1, 3, 32, 32]] and a.architecture.task == "vision"


# ------------------------------------------------------------------------------------------------ the CLI
def test_bare_config_through_the_cli(cli, db, tmp_path, one_line_error):
    (tmp_path / "Qwen3-tiny").mkdir()
    config = {"model_type": "qwen3", "hidden_size": 128, "intermediate_size": 192, "num_hidden_layers": 3,
              "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 32, "vocab_size": 300,
              "tie_word_embeddings": True, "torch_dtype": "bfloat16"}
    path = tmp_path / "Qwen3-tiny" / "config.json"
    path.write_text(json.dumps(config))
    result = cli("model", "register", path, "--input-shape", "1,64")
    assert result.exit_code == 0, result.output
    assert "added: Qwen3-tiny v1" in result.output and "hf_config" in result.output
    data = json.loads(cli("model", "show", "Qwen3-tiny", "--json").output)
    t = towers(config)[0]
    params = sum(p.numel() for p in build(config).parameters())
    assert data["params"] == params == count.params(t)
    assert data["weight_bytes"] == 2 * params  # bfloat16 from torch_dtype
    assert data["macs"] == count.prefill_macs(t, 64) and data["input_shapes"] == [[1, 64]]
    assert data["format"] == "hf_config" and data["size_bytes"] == path.stat().st_size
    assert data["transformer"]["kv_heads"] == 1 and data["transformer"]["kv_cache_bytes_per_token"] == 2 * 3 * 32 * 2
    assert data["scaling"][0]["macs_per_token_sq"] == 3 * 2 * 4 * 32
    again = cli("model", "register", path, "--input-shape", "1,64")
    assert "unchanged" in again.output
    # a config has no weights: bench says so and points at fit, which predicts from the architecture
    bench = cli("bench", "Qwen3-tiny")
    one_line_error(bench, "config.json only: an architecture with no weights")
    assert "embodied-ai fit Qwen3-tiny" in bench.output
    assert cli("fit", "Qwen3-tiny").exit_code == 0


def test_folder_through_the_cli_and_input_dtype_alone(cli, db, tmp_path, one_line_error):
    write_folder(tmp_path / "tiny", LLAMA)
    result = cli("model", "register", tmp_path / "tiny")
    assert result.exit_code == 0 and "added: tiny v1" in result.output and "hf_folder" in result.output
    one_line_error(cli("model", "analyze", tmp_path / "tiny", "--input-dtype", "int64"), "--input-shape")
    one_line_error(cli("model", "analyze", tmp_path / "tiny", "--input-shape", "1,3,8,8"), "batch,tokens")


def test_hostile_configs_leave_the_registry_untouched(cli, db, tmp_path, one_line_error):
    cli("model", "register", _config(tmp_path / "ok", {"model_type": "gpt2", "n_layer": 1}), "--name", "ok")
    before = db.read_bytes()
    remote = _config(tmp_path / "remote", {"model_type": "custom", "auto_map": {"AutoModel": "modeling.Custom"}})
    one_line_error(cli("model", "register", remote, "--name", "r"), "remote code", "--trust-code")
    # --trust-code: a known model_type is counted from the numbers alone, still without running the named code
    known = _config(tmp_path / "known", {**LLAMA, "auto_map": {"AutoModelForCausalLM": "modeling.Custom"}})
    trusted = cli("model", "analyze", known, "--trust-code", "--json")
    assert trusted.exit_code == 0, trusted.output
    assert json.loads(trusted.output)["params"] == count.params(towers(LLAMA)[0])
    bad = tmp_path / "bad" / "config.json"
    bad.parent.mkdir()
    bad.write_text('{"model_type": "llama", "hidden_size": ')
    one_line_error(cli("model", "register", bad, "--name", "b"), "not valid JSON")
    huge = tmp_path / "huge" / "config.json"
    huge.parent.mkdir()
    huge.write_text('{"model_type": "llama", "x": "' + "a" * (5 << 20) + '"}')
    one_line_error(cli("model", "register", huge, "--name", "h"), "larger than any config.json")
    one_line_error(cli("model", "register", tmp_path / "bad", "--name", "b"), "not valid JSON")
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(cli("model", "register", empty, "--name", "e"), "without config.json or safetensors")
    assert db.read_bytes() == before


def _config(folder: Path, config: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return folder / "config.json"


def test_unknown_model_type_is_built_on_meta(tmp_path):
    """A model_type the analytical counter does not know (OLMo): transformers builds it on the meta device and our
    torch counter counts it; params and MACs as transformers' real model has them (numel, FlopCounterMode)."""
    config = {**LLAMA, "model_type": "olmo"}
    made = write_folder(tmp_path / "olmo", config)
    a = analyze_file(tmp_path / "olmo", input_shape=[[1, 16]])
    assert a.format == "hf_folder" and a.params == made["params"] and a.weight_bytes == made["bytes"]
    assert a.macs == flop_counter_macs(made["model"], 16)
    assert any("built from the config with transformers on the meta device" in n for n in a.notes)


def test_state_dict_checkpoint_inferred(tmp_path):
    """A torch.save'd state_dict of GPT-2 (with the causal-mask buffers older checkpoints store): counted as GPT-2,
    the buffers kept out of params."""
    config = {"model_type": "gpt2", "n_embd": 128, "n_layer": 2, "n_head": 2, "vocab_size": 96, "n_positions": 64}
    model = build(config)
    tensors = state(model, torch.float32)
    tensors["transformer.h.0.attn.bias"] = torch.ones(1, 1, 64, 64)  # the mask GPT-2 checkpoints once carried
    torch.save(tensors, tmp_path / "gpt2.pt")
    a = analyze_file(tmp_path / "gpt2.pt", input_shape=[[1, 10]])
    assert a.format == "state_dict" and a.params == sum(p.numel() for p in model.parameters())
    assert a.macs == flop_counter_macs(model, 10)
    assert any("buffer" in n for n in a.notes)
