"""A Hugging Face model (folder, config.json, shard index, or weights whose tensor names match a known architecture)
-> the fields of an ``Analysis``, counted analytically (analysis/hf/count.py) without running anything.

Params: from the safetensors headers where weights are present (exact: every stored tensor; a tied LM head stored
beside the embedding counts once), else from the config. Weight bytes: from the headers, else params x the config's
``torch_dtype`` (float32 when it names none). MACs: one forward over the input (batch x tokens; 1 x 128 by default,
``--input-shape B,N`` sets them), the LM head at every position (count.py states the conventions).
"""
from __future__ import annotations

import math
from pathlib import Path

from embodied_tui.analysis.hf import count
from embodied_tui.analysis.hf.config import Tower, read_config, supported, towers
from embodied_tui.analysis.hf.folder import HfSource
from embodied_tui.data.records import Architecture, CensusNode, LayerCost, Scaling, Transformer
from embodied_tui.errors import AnalysisError

DEFAULT_TOKENS = 128
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "float8_e4m3fn": 1, "float8_e5m2": 1,
               "int8": 1, "uint8": 1}
# safetensors dtype names -> torch's
ST_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn",
             "F8_E5M2": "float8_e5m2", "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
             "BOOL": "bool"}


def analyze_source(source: HfSource, user_shape, *, trust_code: bool = False) -> dict:
    """The analysis fields of a Hugging Face model folder or config (``format``, counts, census, ``transformer`` ...);
    the caller adds path, hash and sizes."""
    from embodied_tui.analysis.loaders import read_safetensors_header

    tensors: dict[str, tuple[list[int], str, int]] = {}
    for rel in source.weights:
        for name, entry in read_safetensors_header(source.root / rel)[0].items():
            if name in tensors:
                raise AnalysisError(f"{source.root}: tensor '{name[:80]}' is stored in two shards; the download is "
                                    "inconsistent")
            tensors[name] = entry
    notes: list[str] = []
    if source.config is not None:
        config = read_config(source.config, trust_code=trust_code)
        if config.get("auto_map"):
            notes.append("config.json names remote code (auto_map); none was run: counted from the config's numbers")
        found = _towers_or_meta(config, source.config, user_shape, notes)
        if isinstance(found, dict):
            return _with_files(found, source, tensors)
        method = "from config.json"
    else:
        from embodied_tui.analysis.hf.infer import infer_tower

        tower = infer_tower({k: v[0] for k, v in tensors.items()})
        if tower is None:
            raise AnalysisError(f"{source.main}: no config.json beside the weights and their tensor names match no "
                                "architecture we know (gpt2, bert, llama-style, vit); add the model's config.json")
        found, method = [tower], "config inferred from tensor names"
        notes.append("config inferred from tensor names (no config.json): " + "; ".join(tower.evidence[1:]))
    fields = tower_fields(found[0], user_shape, tensors=tensors or None, method=method, notes=notes)
    for extra in found[1:]:
        fields["notes"].append(f"{extra.kind} tower {extra.model_type}: {count.params(extra):,} params, "
                               f"{count.vision_macs(extra) if extra.kind == 'vision' else 0:,} MACs per image at "
                               f"{extra.image_size}x{extra.image_size} (not in the counts above)")
    fields.update(format=source.format, format_detail=source.detail())
    return fields


def _with_files(fields: dict, source: HfSource, tensors) -> dict:
    """A meta-built count's fields with the folder's format, and params and weight bytes from its weight files."""
    fields.update(format=source.format, format_detail=source.detail())
    if tensors:
        params = sum(math.prod(shape) for name, (shape, _, _) in tensors.items() if not _is_buffer(name, shape))
        if params != fields["params"]:
            fields["notes"].append(f"the weight files hold {params:,} params, the model built from the config "
                                   f"{fields['params']:,}: params are from the files")
        fields["params"] = params
        fields["weight_bytes"] = sum(math.prod(shape) * size for shape, _, size in tensors.values())
    return fields


def _towers_or_meta(config: dict, path: Path, user_shape, notes: list[str]) -> list[Tower] | dict:
    try:
        return towers(config, str(path))
    except AnalysisError as unsupported:
        from embodied_tui.analysis.hf import meta

        if not meta.available() or config.get("auto_map") or supported(str(config.get("model_type"))):
            raise
        try:
            fields = meta.analyze_config(config, user_shape, path=path)
        except meta.UnknownType:
            raise unsupported from None
        fields["notes"] = notes + fields["notes"]
        return fields


def _batch_tokens(tower: Tower, user_shape) -> tuple[int, int, str, list[str]]:
    if tower.kind == "vision":
        if not user_shape:
            return 1, tower.vision_tokens, "inferred", [f"input: 1 image of {tower.channels}x{tower.image_size}x"
                                                        f"{tower.image_size} (config.json image_size)"]
        shape = list(user_shape[0])
        if len(user_shape) != 1 or len(shape) != 4 or shape[1:] != [tower.channels, tower.image_size,
                                                                    tower.image_size]:
            raise AnalysisError(f"--input-shape {'x'.join(map(str, shape))}: this vision tower is counted at its "
                                f"config's image size; give B,{tower.channels},{tower.image_size},{tower.image_size}")
        return shape[0], tower.vision_tokens, "user", []
    if not user_shape:
        return 1, DEFAULT_TOKENS, "inferred", [f"input: 1 x {DEFAULT_TOKENS} tokens (default; --input-shape 1,N "
                                               "sets the tokens)"]
    shape = list(user_shape[0])
    if len(user_shape) != 1 or len(shape) != 2:
        raise AnalysisError(f"--input-shape {';'.join('x'.join(map(str, s)) for s in user_shape)}: a transformer "
                            "counted from its config takes one input of batch,tokens (e.g. --input-shape 1,512)")
    if tower.max_positions and shape[1] > tower.max_positions and tower.learned_positions:
        raise AnalysisError(f"--input-shape {shape[0]},{shape[1]}: {shape[1]} tokens exceed the "
                            f"{tower.max_positions} positions of its learned position table")
    return shape[0], shape[1], "user", []


def tower_fields(tower: Tower, user_shape, *, tensors: dict[str, tuple[list[int], str, int]] | None, method: str,
                 notes: list[str]) -> dict:
    """The analysis fields of one tower at the user's (or the default) input."""
    batch, n, source, shape_notes = _batch_tokens(tower, user_shape)
    counted = count.params(tower)
    notes = list(notes) + shape_notes
    if tensors:
        params, weight_bytes, dtype, dtype_bytes, more = _from_headers(tower, tensors, counted)
        notes += more
    else:
        dtype = tower.torch_dtype if tower.torch_dtype in DTYPE_BYTES else "float32"
        dtype_bytes = DTYPE_BYTES[dtype]
        params, weight_bytes = counted, counted * dtype_bytes
        notes.append(f"no weights: params from config.json; weight bytes = params x {dtype_bytes} ({dtype}, "
                     f"{'config torch_dtype' if tower.torch_dtype == dtype else 'no torch_dtype in the config: float32 assumed'})")
    poly = count.forward_macs(tower)
    if tower.kind == "vision":
        macs = batch * count.vision_macs(tower)
        scaling = None
    else:
        macs = batch * poly.at(n)
        scaling = [Scaling(dim="tokens", input="input_ids", used=n, macs_const=batch * poly.const,
                           macs_per_token=batch * poly.per_token, macs_per_token_sq=batch * poly.per_token_sq,
                           method=method)]
    h = tower.hidden
    if tower.kind == "vision":
        inputs = ("pixel_values", [batch, tower.channels, tower.image_size, tower.image_size], "float32")
        output = ("last_hidden_state", [batch, n, h])
        input_bytes = batch * tower.channels * tower.image_size ** 2 * dtype_bytes
    else:
        inputs = ("input_ids", [batch, n], "int64")
        output = ("logits", [batch, n, tower.vocab]) if tower.lm_head else ("last_hidden_state", [batch, n, h])
        input_bytes = batch * n * 8
    notes.append("counted from the architecture (analysis/hf/count.py): MACs of linear layers and attention over the "
                 "full n x n score matrix; the LM head at every position; norms, activations and softmax "
                 "(other_flops) and activation memory are not computed from a config")
    return {
        "params": params, "macs": macs, "flops": 2 * macs, "other_flops": None,
        "macs_by_kind": _by_kind(tower, batch, n), "dtype": dtype, "dtype_bytes": dtype_bytes,
        "weight_bytes": weight_bytes, "activation_bytes": None,
        "fused_bytes": weight_bytes + input_bytes + math.prod(output[1]) * dtype_bytes,
        "input_names": [inputs[0]], "input_shapes": [inputs[1]], "input_symbols": [[None] * len(inputs[1])],
        "input_dtypes": [inputs[2]], "input_shape_source": source, "output_names": [output[0]],
        "output_shapes": [output[1]], "layers": _layer_types(tower),
        "architecture": Architecture(type="transformer", family=tower.family,
                                     task="vision" if tower.kind == "vision" else "language",
                                     evidence=list(tower.evidence)),
        "census": _census(tower, batch, n), "layer_costs": _layer_costs(tower, batch, n, dtype_bytes),
        "notes": notes, "counter": f"analytical ({method})", "scaling": scaling,
        "transformer": transformer_record(tower, dtype_bytes, "tensor names" if "tensor" in method else "config.json"),
    }


def transformer_record(tower: Tower, dtype_bytes: int, source: str) -> Transformer:
    return Transformer(model_type=tower.model_type, source=source, layers=tower.layers, hidden=tower.hidden,
                       heads=tower.heads, kv_heads=tower.kv_heads, head_dim=tower.head_dim,
                       intermediate=tower.intermediate, gated_mlp=tower.gated, vocab=tower.vocab, tied=tower.tied,
                       experts=tower.experts, experts_per_token=tower.experts_per_token,
                       max_positions=tower.max_positions,
                       kv_cache_bytes_per_token=count.kv_cache_bytes_per_token(tower, dtype_bytes),
                       params_active_per_token=count.active_params_per_token(tower))


def _from_headers(tower: Tower, tensors, counted: int) -> tuple[int, int, str, int, list[str]]:
    notes = []
    embed = next((k for k in tensors if k.endswith(("embed_tokens.weight", "wte.weight", "word_embeddings.weight"))),
                 None)
    skip = {name for name, (shape, _, _) in tensors.items() if _is_buffer(name, shape)}
    if skip:
        notes.append(f"{len(skip)} stored buffer(s) ({sorted(skip)[0][:60]} ...: attention masks, position ids) are "
                     "counted in weight bytes, not params")
    if tower.tied and "lm_head.weight" in tensors and embed and tensors[embed][0] == tensors["lm_head.weight"][0]:
        skip.add("lm_head.weight")
        notes.append("lm_head.weight is stored but tied to the embedding (tie_word_embeddings): counted once")
    params = weight_bytes = 0
    by_dtype: dict[str, int] = {}
    for name, (shape, dtype, size) in tensors.items():
        elems = math.prod(shape)
        weight_bytes += elems * size
        if name in skip:
            continue
        params += elems
        by_dtype[dtype] = by_dtype.get(dtype, 0) + elems
    dtype = max(by_dtype, key=by_dtype.get) if by_dtype else "float32"
    dtype = ST_DTYPES.get(dtype, dtype)
    if params != counted:
        notes.append(f"the weight files hold {params:,} params, the config counts {counted:,} "
                     f"({params - counted:+,}): params are from the files (heads or layers the base model lacks, or "
                     "quantised tensors)")
    else:
        notes.append(f"params from the safetensors headers ({params:,}) equal the count from the config")
    return params, weight_bytes, dtype, DTYPE_BYTES.get(dtype, 4), notes


def _is_buffer(name: str, shape: list[int]) -> bool:
    """Tensors older checkpoints store that are not parameters: GPT-2's causal mask (``attn.bias``, rank 4) and
    ``attn.masked_bias``, BERT's ``position_ids``, rotary ``inv_freq``."""
    return name.endswith((".attn.masked_bias", "position_ids", "rotary_emb.inv_freq")) or \
        (name.endswith(".attn.bias") and len(shape) == 4)


def _by_kind(t: Tower, batch: int, n: int) -> dict[str, int]:
    linear = sum(count.projection_macs_per_token(t) + count.mlp_macs_per_token(t, i) for i in range(t.layers))
    linear = linear * n + count.lm_head_macs_per_token(t) * n + (t.hidden * t.hidden if t.pooler else 0)
    kinds = {"linear": linear, "attention": t.layers * count.attention_macs_per_pair(t) * n * n,
             "matmul": count.rope_macs_per_token(t) * n}
    if t.kind == "vision":
        kinds["conv"] = t.patches * t.channels * t.patch_size ** 2 * t.hidden
        if t.attn_pool_head:
            h = t.hidden
            kinds["linear"] += h * h + 2 * n * h * h + h * h + 2 * h * t.intermediate
            kinds["attention"] += 2 * n * h
    out = {k: v * batch for k, v in kinds.items() if v}
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _layer_types(t: Tower) -> dict[str, int]:
    norm = "RMSNorm" if t.norm == "rms" else "LayerNorm"
    norms = t.layers * t.norms_per_layer + t.final_norm + t.embed_norm + t.pre_norm
    moe = sum(1 for i in range(t.layers) if t.moe_layer(i))
    out = {"Embedding": 1 + bool(t.learned_positions) + bool(t.token_types), "Attention": t.layers,
           "MLP": t.layers - moe + moe * (t.experts + bool(t.shared_intermediate)), norm: norms}
    if moe:
        out["MoE"] = moe
    return {k: v for k, v in out.items() if v}


def _block_prefix(t: Tower) -> str:
    return {"gpt": "transformer.h", "bert": "encoder.layer"}.get(t.family, "model.layers" if t.kind == "decoder"
                                                                  else "encoder.layers")


def _census(t: Tower, batch: int, n: int) -> list[CensusNode]:
    h, prefix = t.hidden, _block_prefix(t)
    attn_p, pair = count.attention_params(t), count.attention_macs_per_pair(t)
    nodes = [CensusNode(path="", type=t.model_type, params=count.params(t), macs=0, children=2 + t.lm_head)]
    nodes.append(CensusNode(path="embeddings", type="Embedding", params=count.params_by_part(t).get("embeddings", 0),
                            macs=0, output_shape=[batch, n, h], children=0))
    nodes.append(CensusNode(path=prefix, type="ModuleList", params=0, macs=0, children=t.layers))
    total = 0
    for i in range(t.layers):
        attn_macs = batch * (count.projection_macs_per_token(t) * n + pair * n * n)
        mlp_macs = batch * count.mlp_macs_per_token(t, i) * n
        mlp_p = _mlp_params(t, i)
        norm_p = t.norms_per_layer * (h if t.norm == "rms" else 2 * h)
        nodes.append(CensusNode(path=f"{prefix}.{i}", type="Block", params=attn_p + mlp_p + norm_p,
                                macs=attn_macs + mlp_macs, output_shape=[batch, n, h], children=2))
        nodes.append(CensusNode(path=f"{prefix}.{i}.attention", type="Attention", params=attn_p, macs=attn_macs,
                                output_shape=[batch, n, h]))
        nodes.append(CensusNode(path=f"{prefix}.{i}.mlp", type="MoE" if t.moe_layer(i) else "MLP", params=mlp_p,
                                macs=mlp_macs, output_shape=[batch, n, h]))
        total += attn_macs + mlp_macs
    nodes[2] = nodes[2].model_copy(update={"params": sum(x.params for x in nodes[3::3]), "macs": total})
    if t.lm_head:
        nodes.append(CensusNode(path="lm_head", type="Linear", params=count.params_by_part(t).get("lm_head", 0),
                                macs=batch * count.lm_head_macs_per_token(t) * n, output_shape=[batch, n, t.vocab]))
    nodes[0] = nodes[0].model_copy(update={"macs": sum(_by_kind(t, batch, n).values())})
    return nodes


def _mlp_params(t: Tower, i: int) -> int:
    if not t.moe_layer(i):
        return count.mlp_params(t)
    shared = count.mlp_params(t, t.shared_intermediate, bias=False) if t.shared_intermediate else 0
    return t.experts * count.expert_params(t) + t.hidden * t.experts + shared + (t.hidden if t.shared_gate else 0)


def _layer_costs(t: Tower, batch: int, n: int, dtype_bytes: int) -> list[LayerCost]:
    """Per block: the attention (projections + scores + context) and the MLP, read and written as fused blocks
    (the block's input and output activations once; the n x n scores stay on chip, as fused attention kernels keep
    them), and the LM head. Weight elements: what the block stores (MoE: every expert)."""
    prefix, h = _block_prefix(t), t.hidden
    act = batch * n * h
    costs = []
    for i in range(t.layers):
        costs.append(LayerCost(name=f"{prefix}.{i}.attention", type="Attention",
                               macs=batch * (count.projection_macs_per_token(t) * n +
                                             count.attention_macs_per_pair(t) * n * n),
                               weight_elems=count.attention_params(t), read_elems=act, write_elems=act,
                               output_shape=[batch, n, h]))
        costs.append(LayerCost(name=f"{prefix}.{i}.mlp", type="MoE" if t.moe_layer(i) else "MLP",
                               macs=batch * count.mlp_macs_per_token(t, i) * n, weight_elems=_mlp_params(t, i),
                               read_elems=act, write_elems=act, output_shape=[batch, n, h]))
    if t.lm_head:
        costs.append(LayerCost(name="lm_head", type="Linear", macs=batch * count.lm_head_macs_per_token(t) * n,
                               weight_elems=t.vocab * h, read_elems=act, write_elems=batch * n * t.vocab,
                               output_shape=[batch, n, t.vocab]))
    return costs
