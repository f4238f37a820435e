"""From evidence to a verdict: ``gather`` runs the detectors and writes one sentence per structure found;
``decide_type`` and ``decide_family`` read the counts. The family rules go from the most specific structure to the
most generic one, so a detector that fires names the family even when generic evidence (residual adds, depthwise
convs) is also present."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from embodied_tui.analysis.patterns import detectors as d
from embodied_tui.analysis.patterns.graph import Graph
from embodied_tui.analysis.trace import TraceOp


@dataclass
class Evidence:
    counts: Counter = field(default_factory=Counter)
    facts: list[str] = field(default_factory=list)

    def add(self, key: str, n: int, text: str) -> None:
        """Count ``n`` of ``key`` and say so: ``text`` has ``{n}``, and ``{s}`` where a plural takes an s (texts
        starting with ``{n}`` and without ``{s}`` lose the s of the noun before their first bracket when n is 1)."""
        if n:
            self.counts[key] += n
            if "{s}" in text:
                self.facts.append(text.format(n=n, s="" if n == 1 else "s"))
            elif n == 1 and text.startswith("{n}"):
                self.facts.append(_singular(text).format(n=n))
            else:
                self.facts.append(text.format(n=n))


def _singular(text: str) -> str:
    """'{n} residual additions (skip ...)' -> '{n} residual addition (skip ...)': the noun before any bracket."""
    head, sep, tail = text.partition(" (")
    head = head.removesuffix("s")
    return head + sep + tail


def _patch_embedding(g: Graph, conv_ids: list[int]) -> tuple[str, list[int], list[int]] | None:
    """'patch' (kernel = stride >= 4), 'overlap' (stride >= 4 and kernel > stride) or 'big' for the first conv."""
    if not conv_ids:
        return None
    first = conv_ids[0]
    k, s = g.attr(first, "kernel", []), g.attr(first, "stride", [])
    if not k or not s or len(k) != 2:
        return None
    if k == s and min(k) >= 4:
        return "patch", k, s
    if min(s) >= 4 and min(k) > max(s):
        tokens = any(g.kind[u] == "layernorm" or len(g.shape(u)) == 3 for u in g.consumers(first, {"reshape",
                                                                                                   "transpose",
                                                                                                   "flatten"}))
        return ("overlap" if tokens else "big"), k, s
    return None


def _stem_convs(g: Graph, conv_ids: list[int], first_attention: int | None) -> int:
    """The leading run of stride-2 convolutions (a conv stem), when it ends before the first attention."""
    n = 0
    for i in conv_ids:
        if first_attention is None or i > first_attention or max(g.attr(i, "stride", [1]) or [1]) != 2:
            break
        n += 1
    return n


def gather(trace: list[TraceOp], layers: dict[str, int], input_shapes, output_shapes) -> Evidence:
    g = Graph(trace)
    ev = Evidence()
    live = list(g.live())
    kinds = Counter(g.kind[i] for i in live)
    macs = Counter()
    for op in trace:
        macs[op.kind] += op.macs
    total = sum(macs.values()) or 1
    conv_share = (macs["conv"] + macs["conv_transpose"]) / total
    attn_share = (macs["attention"] + macs["matmul"]) / total
    ev.counts["conv_share"] = round(100 * conv_share)
    ev.counts["attn_share"] = round(100 * attn_share)
    conv_ids = d.convs(g)
    sites = d.attention_sites(g)
    c = ev.counts

    # ---- generic building blocks (the sentences older records carry)
    ev.add("conv", kinds["conv"], "{n} convolutions (" + f"{100 * conv_share:.0f}% of MACs)")
    ev.add("dwconv", sum(1 for i in conv_ids if d.is_dw(g, i)), "{n} depthwise convolutions")
    ev.add("grouped", sum(1 for i in conv_ids if 1 < g.attr(i, "groups", 1) and not d.is_dw(g, i)),
           "{n} grouped (non-depthwise) convolutions")
    ev.add("residual", d.residual_adds(g), "{n} residual additions (skip connections around weighted layers)")
    ev.add("inverted", d.inverted_residuals(g),
           "{n} inverted residual blocks (expand 1x1 -> depthwise -> project 1x1)")
    ev.add("se", d.squeeze_excite(g), "{n} squeeze-excite gates (global pool -> sigmoid -> channel multiply)")
    ev.add("attention", len(sites), "{n} attention blocks (" + f"{100 * attn_share:.0f}% of MACs)")
    ev.add("roll", d.cyclic_shifts(g), "{n} cyclic shift{s} (torch.roll, or slices re-concatenated: shifted windows)")
    tokens = d.token_embeddings(g)
    ev.add("embedding", len(tokens), "{n} token embedding lookups")
    ev.add("layernorm", kinds["layernorm"], "{n} layer norms")
    ev.add("batchnorm", kinds["batchnorm"], "{n} batch norms")
    ev.add("concat", kinds["concat"], "{n} concatenations")
    ev.add("upsample", kinds["upsample"] + kinds["conv_transpose"], "{n} upsampling layers")
    ev.add("silu", kinds["silu"], "{n} SiLU activations")
    ev.add("hardswish", kinds["hardswish"], "{n} hard-swish activations")
    ev.add("relu6", kinds["relu6"], "{n} ReLU6 activations")
    ev.add("gelu", kinds["gelu"], "{n} GELU activations")
    ev.add("linear", kinds["linear"], "{n} linear layers")
    recurrent = kinds["lstm"] + kinds["gru"] + kinds["rnn"]
    rec_layers = {k: v for k, v in layers.items() if k.upper() in ("LSTM", "GRU", "RNN", "LSTMCELL", "GRUCELL")}
    ev.add("recurrent", sum(rec_layers.values()) or recurrent,
           "{n} recurrent layers (" + (", ".join(rec_layers) or "LSTM/GRU ops") + ")")
    stem = _patch_embedding(g, conv_ids)
    if stem and stem[0] == "patch":
        ev.add("patch_embed", 1, "patch embedding (first conv has kernel = stride >= 4)")
    ev.add("causal", d.causal_ops(g), "{n} causal mask{s} (triu/tril, or position ranges compared)")
    ev.add("up_concat", d.up_concat(g), "{n} upsample + concat merges (FPN/PAN neck or U-Net decoder)")
    heads = d.head_scales(g)
    if heads >= 2:
        ev.add("head_scales", heads, "a head that joins conv outputs from {n} feature-map sizes (multi-scale detection)")
    scales = len({tuple(s[2:]) for s in output_shapes if len(s) == 4})
    if scales >= 2:
        ev.add("multiscale_out", scales, "{n} output scales (multi-scale detection head)")
    if input_shapes and output_shapes and len(input_shapes[0]) == 4 and any(
            len(o) == 4 and o[2:] == input_shapes[0][2:] for o in output_shapes):
        ev.add("dense_out", 1, "output has the input's spatial size (dense prediction)")
    if "lstm" in {k.lower() for k in layers} or kinds["lstm"]:
        c["lstm"] = 1
    if "gru" in {k.lower() for k in layers} or kinds["gru"]:
        c["gru"] = 1

    # ---- structures that name families
    if stem and stem[0] == "overlap":
        ev.add("overlap_embed", 1, f"overlapping patch embedding (first conv {stem[1][0]}x{stem[1][1]}, stride "
                                   f"{stem[2][0]}, flattened into tokens)")
    if stem and stem[0] == "big":
        ev.add("big_stem", 1, f"large-kernel strided stem (first conv {stem[1][0]}x{stem[1][1]}, stride {stem[2][0]})")
    _attention_facts(g, ev, sites, conv_ids, tokens)
    ev.add("window", d.window_partitions(g),
           "{n} window partition{s} (6-D reshape + transpose of the feature map into windows around attention)")
    ev.add("patch_merge", d.patch_merges(g), "{n} patch merging{s} (2x2 neighbourhoods stacked on channels)")
    ev.add("pool_mixer", d.pool_mixers(g), "{n} pooling token mixer{s} (avgpool(x) - x)")
    n_dfl, bins, anchored = d.dfl_heads(g)
    ev.add("dfl", n_dfl, "{n} distribution focal loss (DFL) box decoder{s} (softmax over " + f"{bins}"
           " bins, expectation by a fixed 1x1 conv)")
    if anchored:
        ev.add("anchor_free", 1, "box distances decoded around constant anchor points (anchor-free head)")
    branches = d.parallel_branches(g)
    decoupled = d.decoupled_heads(g, branches)
    if decoupled >= 2:
        ev.add("decoupled", decoupled, "decoupled heads at {n} feature-map sizes (separate box and class conv "
                                       "branches from each scale)")
    fire = sum(1 for b in branches if len(b.kernels) == 2 and all(len(k) == 1 for k in b.kernels)
               and sorted(k[0] for k in b.kernels) == [1, 3] and not any(b.pooled) and g.kind[b.fork] != "concat"
               and d.is_pw(g, g.src(b.fork, d.ACTS)))
    ev.add("fire", fire, "{n} fire module{s} (squeeze 1x1, then 1x1 and 3x3 expands concatenated)")
    inception = sum(1 for b in branches if len(b.kernels) >= 3 and all(b.kernels)
                    and len({tuple(k) for k in b.kernels}) >= 2)
    ev.add("inception", inception, "{n} inception block{s} (parallel conv branches with different kernels, "
                                   "concatenated)")
    ev.add("dense", d.dense_concats(g), "{n} dense concatenation{s} (each layer reads the features of all earlier "
                                        "ones)")
    ev.add("shuffle", d.channel_shuffles(g), "{n} channel shuffle{s} (channels reshaped into groups, transposed, "
                                             "reshaped back)")
    points = d.point_max_pools(g)
    if points:
        ev.add("point_max", len(points), "{n} global max pool{s} over " + f"{points[0]}"
               " points of per-point features (order-invariant: a point-cloud network)")
    ev.add("time_embed", d.time_embeddings(g), "sinusoidal time embedding (sin and cos of a per-sample scalar input)")
    ev.add("film", d.film_layers(g), "{n} FiLM modulation{s} (per-channel scale computed by a linear layer from the "
                                     "conditioning)")
    audio = d.audio_stem(g)
    if audio:
        ev.add("audio_stem", 1, f"1-D convolution stem over a {audio[0]}-channel x {audio[1]}-step input "
                                "(spectrogram frames)")
    ev.add("box_head", d.box_heads(g), "{n} box head{s} (linear to 4 values per query, then sigmoid)")
    ev.add("grid_sample", d.grid_samplers(g), "{n} deformable attention sampler{s} (grid_sample of value maps at "
                                              "predicted points)")
    ev.add("topk_select", d.topk_selections(g), "{n} top-k query selection{s} (encoder tokens picked by score)")
    c["all_pointwise_1d"] = int(bool(conv_ids) and all(g.attr(i, "kernel") == [1] for i in conv_ids))
    c["convs_1d"] = sum(1 for i in conv_ids if len(g.attr(i, "kernel", [])) == 1 and max(g.attr(i, "kernel")) > 1)
    c["fc_hidden"] = sum(1 for i in live if g.kind[i] == "linear" and len(g.shape(i)) == 2 and g.shape(i)[-1] >= 64)
    return ev


def _attention_facts(g: Graph, ev: Evidence, sites: list[d.Site], conv_ids: list[int], tokens: list[int]) -> None:
    if not sites:
        return
    known = [s for s in sites if s.q != -3]
    # queries and keys/values from different streams (or constant queries against computed keys)
    cross = [s for s in known if (s.q != s.k or s.q_const) and not s.k_reduced and s.k >= -1]
    shrink = [s for s in known if s.q == s.k and 0 < s.lq < s.lk]
    ev.add("cross", len(cross), "{n} cross-attention{s} (queries from one stream attend to keys and values of "
                                "another: an encoder-decoder)")
    ev.add("object_queries", sum(1 for s in cross if s.q_const),
           "{n} cross-attention{s} whose queries start as learned constants (object queries)")
    ev.add("sr_attention", sum(1 for s in known if s.k_reduced),
           "{n} efficient self-attention{s} (keys and values from the tokens reduced by a strided conv)")
    ev.add("shrink", len(shrink), "{n} shrinking attention{s} (queries subsampled from the keys' tokens)")
    ev.add("pos_bias", sum(1 for s in sites if s.bias_heads > 1),
           "{n} attention{s} with a learned per-head bias on the scores (relative position bias)")
    ev.add("fixed_mask", sum(1 for s in sites if s.fixed_mask),
           "{n} attention{s} masked by one fixed square mask, the same for every input and head (causal)")
    ev.add("input_mask", sum(1 for s in sites if s.input_mask), "{n} attention{s} masked from an input (padding)")
    c = ev.counts
    c["conv_attention"] = sum(1 for s in sites if s.q_kind == "conv")
    first = min(s.score for s in sites)
    stem = _stem_convs(g, conv_ids, first)
    if stem >= 3:
        ev.add("conv_stem", stem, "a stem of {n} stride-2 convolutions before the first attention")
    n_vocab, vocab = d.vocab_heads(g, tokens)
    if n_vocab:
        ev.add("lm_head", 1, f"language-model head onto the {vocab}-token vocabulary (shaped like the token "
                             "embedding table)")
    ev.add("pooler", d.poolers(g) if tokens else 0, "{n} pooler{s} (tanh of a linear layer on one token)")


# ---------------------------------------------------------------------------------------------------- verdicts
def decide_type(c: Counter) -> str:
    if c["recurrent"]:
        return "rnn" if not c["conv"] and not c["attention"] else "hybrid"
    if c["attention"]:
        stem_only = c["conv"] <= 2 or c["audio_stem"] and c["conv"] <= 3
        conv_heavy = c["conv_share"] >= 20 and not stem_only and not (c["patch_embed"] and c["conv"] <= 2)
        # attention computed by 1x1 convs inside a conv network (YOLO11's PSA): a CNN with an attention module
        minor = c["conv_attention"] == c["attention"] and c["attn_share"] < 5 and c["conv_share"] >= 80
        if minor:
            return "cnn"
        return "hybrid" if conv_heavy else "transformer"
    if c["conv"]:
        return "mlp" if c["all_pointwise_1d"] and c["point_max"] else "cnn"
    if c["linear"]:
        return "mlp"
    return "unknown"


def decide_family(arch_type: str, c: Counter, inputs, outputs) -> tuple[str, str | None, str]:
    if arch_type == "rnn" or c["recurrent"]:
        fam = "lstm" if c["lstm"] else "gru" if c["gru"] else "rnn"
        return fam, "policy" if _small_vector_out(outputs) else "sequence", f"recurrence decides: {fam}"
    found = _language(c) or _detection(c) or _policy(c) or _points(c) or _vision_attention(c)
    if found:
        return found
    if arch_type == "mlp":
        return "mlp", "policy" if _small_vector_out(outputs) else None, "only linear layers and activations"
    if c["attention"]:
        return "transformer", None, "attention without patch or token embedding"
    if arch_type in ("cnn", "hybrid", "transformer"):
        return _cnn(c)
    return "unknown", None, ""


def _language(c: Counter):
    if not c["embedding"] or not c["attention"]:
        return None
    if c["audio_stem"] and c["cross"]:
        return "whisper", "speech", ("1-D conv stem over spectrogram frames, an encoder and a token decoder "
                                     "cross-attending to it: Whisper-style speech model")
    if c["cross"]:
        if c["pos_bias"]:
            return "t5", "language", ("token embedding, encoder-decoder cross-attention and a learned relative "
                                      "position bias on the scores: T5-style")
        return "encoder-decoder", "language", "token embedding + encoder-decoder cross-attention: seq2seq transformer"
    if c["causal"] or c["fixed_mask"]:
        return "gpt", "language", "token embedding + causally masked attention: GPT-style decoder"
    if c["lm_head"] and not c["pooler"] and not c["input_mask"]:
        return "gpt", "language", ("token embedding + attention + a head predicting the vocabulary, no pooler: "
                                   "GPT-style decoder")
    return "bert", "language", "token embedding + bidirectional attention (no causal mask): BERT-style encoder"


def _detection(c: Counter):
    if c["box_head"] and (c["cross"] or c["grid_sample"]):
        if c["grid_sample"] or c["topk_select"]:
            return "rt-detr", "detection", ("top-k query selection and deformable cross-attention over multi-scale "
                                            "features, box heads: RT-DETR-style set prediction")
        return "detr", "detection", ("learned object queries cross-attending to image features, class and box "
                                     "heads: DETR-style set prediction")
    if c["dfl"]:
        return "yolo", "detection", "anchor-free decoupled head with DFL box decoding: YOLOv8-style detector"
    if (c["multiscale_out"] >= 2 or c["head_scales"] >= 2 or c["decoupled"] >= 2) and c["up_concat"] and \
            not c["dense_out"]:
        if c["silu"]:
            return "yolo", "detection", "upsample + concat neck feeding multi-scale heads with SiLU: YOLO-style"
        return "detector", "detection", "upsample + concat neck feeding multi-scale heads"
    return None


def _policy(c: Counter):
    if c["time_embed"] and c["conv"]:
        if c["convs_1d"]:
            return "diffusion-policy", "policy", ("sinusoidal timestep embedding conditioning a 1-D conv U-Net over "
                                                  "an action sequence" + (" through FiLM" if c["film"] else "")
                                                  + ": Diffusion Policy")
        return "diffusion-unet", "generation", "sinusoidal timestep embedding conditioning a conv U-Net: diffusion"
    return None


def _points(c: Counter):
    if c["point_max"] and not c["attention"] and (c["all_pointwise_1d"] or not c["conv"]):
        return "pointnet", "classification", ("shared per-point layers and a global max over the points: "
                                              "PointNet-style")
    return None


def _vision_attention(c: Counter):
    if not c["attention"]:
        return None
    if c["window"] >= 2:
        if c["roll"] or c["patch_merge"]:
            return "swin", "classification", "windowed attention with shifted windows / patch merging: Swin"
        if c["dwconv"]:
            return "maxvit", "classification", ("MBConv (depthwise) blocks with window and grid attention: "
                                                "MaxViT-style")
        return "swin", "classification", "windowed attention: Swin-style"
    if c["sr_attention"]:
        if c["up_concat"] or c["upsample"] >= 2:
            return "segformer", "segmentation", ("efficient self-attention with spatial reduction and an "
                                                 "upsample + concat all-MLP decoder: SegFormer")
        return "pvt", "classification", "efficient self-attention with spatial reduction: PVT-style"
    if c["pool_mixer"]:
        return "efficientformer", "classification", ("pooling token mixers in conv stages, attention in the last: "
                                                     "EfficientFormer")
    if c["shrink"] or (c["pos_bias"] and c["conv_stem"]):
        return "levit", "classification", ("conv stem, attention with learned biases and shrinking (subsampled "
                                           "query) attention: LeViT")
    if c["inverted"] and c["conv"] > 4:
        return "mobilevit", "classification", ("inverted residuals with attention over unfolded patches: "
                                               "MobileViT-style")
    if c["patch_embed"]:
        return "vit", "classification", "patch embedding + attention: ViT"
    return None


def _cnn(c: Counter) -> tuple[str, str | None, str]:
    if c["dense_out"] and c["upsample"]:
        return "unet" if c["concat"] else "encoder-decoder", "segmentation", \
            "encoder-decoder back to input resolution" + (" with skip concatenations: U-Net" if c["concat"] else "")
    if c["fire"] >= 2:
        return "squeezenet", "classification", "fire modules (squeeze, then parallel 1x1 / 3x3 expands): SqueezeNet"
    if c["shuffle"] >= 2:
        return "shufflenet", "classification", "channel split and channel shuffle between units: ShuffleNet"
    if c["inception"] >= 2:
        return "inception", "classification", "inception blocks of parallel conv branches: GoogLeNet / Inception"
    if c["inverted"]:
        if c["se"] and c["silu"]:
            return "efficientnet", "classification", "inverted residuals + squeeze-excite + SiLU: EfficientNet"
        if c["hardswish"]:
            return "mobilenet", "classification", "inverted residuals + hard-swish: MobileNetV3"
        return "mobilenet", "classification", "inverted residual blocks: MobileNetV2-style"
    if c["dwconv"] and c["layernorm"] and c["residual"]:
        return "convnext", "classification", "depthwise conv + layer norm + residual: ConvNeXt"
    if c["grouped"] and c["residual"]:
        return ("regnet" if c["se"] else "resnext"), "classification", "grouped convs in residual blocks"
    if c["dense"] >= 2 and not c["residual"]:
        return "densenet", "classification", "dense concatenation of every layer's features: DenseNet"
    if c["residual"]:
        return "resnet", "classification", "residual blocks of convolutions: ResNet-style"
    if c["dwconv"]:
        return "mobilenet", "classification", "depthwise separable convolutions: MobileNetV1-style"
    if c["big_stem"] and c["conv"] <= 8 and c["fc_hidden"] >= 2:
        return "alexnet", "classification", ("large-kernel stride-4 stem, a few plain convs and fully connected "
                                             "layers: AlexNet-style")
    if c["conv"] >= 8:
        return "vgg", "classification", "plain stack of convolutions without skips: VGG-style"
    return "cnn", None, "convolutions"


def _small_vector_out(outputs) -> bool:
    return bool(outputs) and all(len(o) <= 3 and (o[-1] if o else 0) <= 64 for o in outputs)
