"""Structure detectors: each finds one kind of structure in the ``Graph`` and returns how often it occurs (and, where
the rules need it, what it looked like). They read op kinds, shapes, conv attributes, which op feeds which and whether
a value is constant; never module or class names.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

from embodied_tui.analysis.patterns.graph import CARRY, SOFT, Graph

ACTS = frozenset({"relu", "relu6", "gelu", "silu", "sigmoid", "hardsigmoid", "hardswish", "tanh"})


def is_dw(g: Graph, i: int) -> bool:
    a = g.ops[i].attrs
    groups = a.get("groups", 1)
    return g.kind[i] == "conv" and groups > 1 and groups == a.get("in_channels") == a.get("out_channels")


def is_pw(g: Graph, i: int) -> bool:
    a = g.ops[i].attrs
    return g.kind[i] == "conv" and all(k == 1 for k in a.get("kernel", [0])) and a.get("groups", 1) == 1


def convs(g: Graph) -> list[int]:
    return [i for i in g.live() if g.kind[i] == "conv"]


# ------------------------------------------------------------------------------------------------ CNN structures
def residual_adds(g: Graph) -> int:
    """Adds of two equal-shape activations that fork from one op, with at least two weighted ops (or attention) on
    the way from the fork to the add: a skip connection around a block."""
    n = 0
    for i in g.live():
        op = g.ops[i]
        if g.kind[i] != "add" or g.names[i] == "sub":
            continue
        srcs = g.data_inputs(i)
        if len(srcs) != 2 or srcs[0] == srcs[1] or len(op.in_shapes) < 2 or op.in_shapes[0] != op.in_shapes[1]:
            continue
        a, b = (g.ancestors(s) for s in srcs)
        common = a & b
        fork = max(common) if common else min(srcs)
        between = [j for j in (a | b) - common if j > fork]
        if sum(1 for j in between if g.kind[j] in ("conv", "linear", "matmul")) >= 2 or any(
                g.kind[j] == "attention" for j in between):
            n += 1
    return n


def inverted_residuals(g: Graph) -> int:
    """Pointwise expand -> depthwise -> pointwise project (MobileNetV2 / EfficientNet MBConv)."""
    n = 0
    for i in g.live():
        a = g.ops[i].attrs
        if not is_pw(g, i) or a.get("out_channels", 0) >= a.get("in_channels", 0):
            continue
        prev = g.src(g.first(i), CARRY | {"mul", "global_pool"})
        while prev >= 0 and g.kind[prev] == "mul":  # squeeze-excite sits between depthwise and project
            prev = g.src(g.first(prev), CARRY)
        if prev < 0 or not is_dw(g, prev):
            continue
        expand = g.src(g.first(prev), CARRY)
        if expand >= 0 and is_pw(g, expand) and g.attr(expand, "out_channels", 0) > g.attr(expand, "in_channels", 0):
            n += 1
    return n


def squeeze_excite(g: Graph) -> int:
    """A channel gate: mul by a sigmoid/hardsigmoid of a 1x1-spatial tensor computed from a global pool."""
    n = 0
    for i in g.live():
        if g.kind[i] != "mul":
            continue
        for j in g.ins[i]:
            if j >= 0 and g.kind[j] in ("sigmoid", "hardsigmoid"):
                s = g.shape(j)
                if len(s) == 4 and s[2:] == [1, 1]:
                    n += 1
                    break
    return n


def up_concat(g: Graph) -> int:
    """Upsampled maps joined with other features by a concat (FPN/PAN necks, U-Net decoders)."""
    n = 0
    for i in g.live():
        if g.kind[i] != "concat" or len(g.shape(i)) < 3:
            continue
        for j in g.data_inputs(i):
            path = g.chain(j, CARRY | {"conv"}, limit=3)
            if any(k >= 0 and g.kind[k] in ("upsample", "conv_transpose") for k in path):
                n += 1
                break
    return n


def head_scales(g: Graph) -> int:
    """Most feature-map sizes whose conv outputs are flattened and joined by one concat (a multi-scale head)."""
    best = 0
    for i in g.live():
        if g.kind[i] != "concat" or len(g.shape(i)) == 4:
            continue
        sizes = set()
        for j in g.data_inputs(i):
            k = g.src(j, SOFT)
            while k >= 0 and g.kind[k] == "concat" and len(g.shape(k)) == 4:  # per-scale cat(box, cls)
                k = g.src(g.first(k), SOFT)
            if k >= 0 and (g.kind[k] == "conv" or g.kind[k] in ACTS) and len(g.shape(k)) == 4:
                sizes.add(tuple(g.shape(k)[2:]))
        best = max(best, len(sizes))
    return best


@dataclass
class Branches:
    """A concat of parallel branches that fork from one value: per branch the convs on it (kernels) and whether it
    pools; ``plain_end``: every branch ends in a conv without norm or activation after it."""
    concat: int
    fork: int
    kernels: list[list[int]] = field(default_factory=list)  # per branch, the kernel size of each conv
    pooled: list[bool] = field(default_factory=list)
    plain_end: bool = False


def parallel_branches(g: Graph) -> list[Branches]:
    out = []
    walk = CARRY | {"conv", "maxpool", "avgpool"}
    for i in g.live():
        if g.kind[i] != "concat":
            continue
        inputs = g.data_inputs(i)
        if len(inputs) < 2 or len(set(inputs)) < len(inputs):
            continue
        chains = [g.chain(j, walk, limit=16) for j in inputs]
        sets = [set(c) for c in chains]
        fork = next((k for k in chains[0] if k >= 0 and all(k in s for s in sets[1:])), None)
        if fork is None:
            continue
        b = Branches(i, fork)
        for c in chains:
            body = c[:c.index(fork)]
            b.kernels.append([max(g.attr(k, "kernel", [1]) or [1]) for k in body if g.kind[k] == "conv"])
            b.pooled.append(any(g.kind[k] in ("maxpool", "avgpool") for k in body))
        b.plain_end = all(g.kind[j] == "conv" for j in inputs)
        out.append(b)
    return out


def dense_concats(g: Graph) -> int:
    """Concats joining features with a conv output computed from an earlier concat of those same features: either
    the earlier concat's inputs are inputs here too (torchvision's DenseNet), or the earlier concat's whole output is
    (x = cat(x, f(x))). Every layer reads the features of all earlier layers (DenseNet)."""
    n = 0
    concat_inputs = {i: set(g.data_inputs(i)) for i in g.live() if g.kind[i] == "concat"}
    for i, ins in concat_inputs.items():
        if len(ins) < 2:
            continue
        whole = {j for j, s in zip(g.ins[i], g.ops[i].in_shapes) if j >= 0 and s == g.shape(j)}
        for j in ins:
            path = g.chain(j, CARRY | {"conv"}, limit=8)
            if not any(k >= 0 and g.kind[k] == "conv" for k in path):
                continue
            root = path[-1]
            if root >= 0 and root in concat_inputs and root != i and (
                    (concat_inputs[root] & ins) or root in whole):
                n += 1
                break
    return n


def channel_shuffles(g: Graph) -> int:
    """(B, C, H, W) -> (B, g, C/g, H, W) -> swap the two channel axes -> (B, C, H, W): a 5-D transpose between
    reshapes of one feature map (ShuffleNet)."""
    n = 0
    for i in range(len(g)):
        op = g.ops[i]
        if not (g.kind[i] == "transpose" or g.names[i] in ("clone", "contiguous")) or not op.in_shapes:
            continue
        s = op.in_shapes[0]
        if len(s) != 5:
            continue
        src = g.src(g.ins[i][0] if g.ins[i] else -2, SOFT)
        m = g.shape(src)
        if len(m) == 4 and m[2:] == s[3:] and m[1] == s[1] * s[2] and min(s[1], s[2]) > 1:
            n += 1
    return n


def window_partitions(g: Graph) -> int:
    """6-D transposes of a feature map (B, H/w, w, W/w, w, C): window or grid partitions and their reverses."""
    n = 0
    for i in range(len(g)):
        op = g.ops[i]
        if (g.kind[i] == "transpose" or g.names[i] in ("clone", "contiguous")) and op.in_shapes and \
                len(op.in_shapes[0]) == 6:
            n += 1
    return n


def cyclic_shifts(g: Graph) -> int:
    """torch.roll, or its ONNX form: a concat of slices of one tensor back to that tensor's shape (a roll over two
    axes is two such concats in a row, counted once)."""
    n = sum(1 for i in g.live() if g.kind[i] == "roll")
    rolled: set[int] = set()
    for i in g.live():
        if g.kind[i] != "concat":
            continue
        ins = g.data_inputs(i)
        if len(ins) != 2 or not all(j >= 0 and g.kind[j] == "slice" for j in ins):
            continue
        srcs = {g.first(j) for j in ins}
        src = srcs.pop()
        if not srcs and g.shape(src) == g.shape(i):
            rolled.add(i)
            if src not in rolled:
                n += 1
    return n


def patch_merges(g: Graph) -> int:
    """Concats of four strided slices of one map (each 2x2 neighbourhood stacked on channels): Swin's patch merging
    (and YOLOv5's Focus)."""
    n = 0
    for i in g.live():
        if g.kind[i] != "concat":
            continue
        ins = g.data_inputs(i)
        if len(ins) != 4:
            continue
        srcs = {g.src(j, {"slice"}) for j in ins}
        if len(srcs) == 1:
            s, o = g.shape(srcs.pop()), g.shape(i)
            if len(s) == len(o) >= 3 and prod(s) == prod(o) and s != o:
                n += 1
    return n


def pool_mixers(g: Graph) -> int:
    """avgpool(x) - x with a stride-1 pool: token mixing by pooling (PoolFormer / EfficientFormer)."""
    n = 0
    for i in g.live():
        if g.names[i] != "sub":
            continue
        ins = g.data_inputs(i)
        if len(ins) == 2 and ins[0] >= 0 and g.kind[ins[0]] == "avgpool" and g.first(ins[0]) == ins[1] and \
                g.shape(ins[0]) == g.shape(ins[1]):
            n += 1
    return n


def _reduced_axes(shape_in: list[int], shape_out: list[int]) -> list[int]:
    if len(shape_out) == len(shape_in):
        return [a for a, (x, y) in enumerate(zip(shape_in, shape_out)) if x != y and y == 1]
    if len(shape_out) == len(shape_in) - 1:
        for a in range(len(shape_in)):
            if shape_in[:a] + shape_in[a + 1:] == shape_out:
                return [a]
    return []


def point_max_pools(g: Graph) -> list[int]:
    """Max over the points axis of per-point features: (B, C, N) from kernel-1 Conv1d reduced over N, or (B, N, C)
    from per-point linears reduced over N. Returns N for each."""
    found = []
    for i in g.live():
        op = g.ops[i]
        if g.names[i] not in ("max", "amax", "reducemax", "globalmaxpool", "adaptive_max_pool1d", "max_pool1d",
                              "max_pool1d_with_indices") or not op.in_shapes or len(op.in_shapes[0]) != 3:
            continue
        s = op.in_shapes[0]
        axes = _reduced_axes(s, g.shape(i))
        if len(axes) != 1 or s[axes[0]] < 16:
            continue
        src = g.src(g.first(i), CARRY)
        if src < 0:
            continue
        if g.kind[src] == "conv" and g.attr(src, "kernel") == [1] and axes[0] == 2:
            found.append(s[2])
        elif g.kind[src] == "linear" and axes[0] == 1:
            found.append(s[1])
    return found


# ---------------------------------------------------------------------------------------------------- detection
def dfl_heads(g: Graph) -> tuple[int, int, bool]:
    """Distribution focal loss decoding: a softmax over reg_max bins whose expectation is a 1x1 conv to one channel
    (fixed weights 0..reg_max-1), or a multiply-and-sum with a constant bin vector. Returns (count, bins, whether
    the distances are then added to / subtracted from constant anchor points)."""
    count, bins, anchored = 0, 0, False
    for i in g.live():
        if g.kind[i] != "softmax":
            continue
        for u in g.consumers(i, SOFT):
            hit = False
            if g.kind[u] == "conv" and g.attr(u, "out_channels") == 1 and is_pw(g, u) and 4 <= g.attr(
                    u, "in_channels", 0) <= 64:
                hit, b = True, g.attr(u, "in_channels")
            elif g.kind[u] == "mul":
                bin_shapes = [sh for j, sh in zip(g.ins[u], g.ops[u].in_shapes) if j == -2 or (j >= 0 and g.const[j])]
                if bin_shapes and any(g.names[k] in ("sum", "reducesum") for k in g.consumers(u, SOFT)):
                    hit, b = True, max(bin_shapes[0] or [0])
            if hit:
                count += 1
                bins = b
                for k in g.consumers(u, SOFT | {"mul"}):
                    if g.kind[k] == "add" and any(j == -2 or (j >= 0 and g.const[j]) for j in g.ins[k]):
                        anchored = True
                break
    return count, bins, anchored


def decoupled_heads(g: Graph, branches: list[Branches]) -> int:
    """Per feature-map size, a concat of two conv branches from one feature, each ending in a plain conv (box
    regression and class logits), whose result is flattened into predictions per cell rather than used as a feature
    map: returns how many map sizes have one."""
    sizes = set()
    for b in branches:
        if len(b.kernels) != 2 or not b.plain_end or not all(len(k) >= 2 for k in b.kernels):
            continue
        s = g.shape(b.concat)
        users = g.users[b.concat]
        flattened = bool(users) and all(
            g.kind[u] in ("reshape", "flatten") and len(g.shape(u)) == 3
            or g.kind[u] == "concat" and any(j == b.concat and len(sh) == 3 for j, sh in zip(g.ins[u],
                                                                                           g.ops[u].in_shapes))
            for u in users)
        if len(s) == 4 and flattened:
            sizes.add(tuple(s[2:]))
    return len(sizes)


def box_heads(g: Graph) -> int:
    """Linear layers to 4 values per query, squashed by a sigmoid (normalised cx, cy, w, h): set-prediction box
    heads (DETR family)."""
    n = 0
    for i in g.live():
        s = g.shape(i)  # (B, Q, 4), or (B*Q, 4) where torch flattens the batch for addmm
        if g.kind[i] != "linear" or s[-1:] != [4] or not (len(s) == 3 or len(s) == 2 and s[0] > 1):
            continue
        if any(g.kind[u] == "sigmoid" for u in g.consumers(i, SOFT | {"add"}, limit=3)):
            n += 1
    return n


def grid_samplers(g: Graph) -> int:
    return sum(1 for i in g.live() if g.names[i] in ("grid_sampler_2d", "grid_sampler", "gridsample",
                                                     "grid_sampler_3d"))


def topk_selections(g: Graph) -> int:
    """A top-k whose indices gather tokens (query selection from the encoder output)."""
    n = 0
    for i in range(len(g)):
        if g.names[i] != "topk":
            continue
        if any(g.names[u] in ("gather", "gatherelements", "index", "take_along_dim") for u in _all_users(g, i)):
            n += 1
    return n


def _all_users(g: Graph, i: int, depth: int = 4) -> list[int]:
    out, todo = [], [(i, 0)]
    while todo:
        j, d = todo.pop()
        for u in g.users[j]:
            out.append(u)
            if d < depth and g.names[u] in ("unsqueeze", "repeat", "expand", "view", "reshape", "tile",
                                            "_unsafe_view", "squeeze") or g.kind[u] in SOFT and d < depth:
                todo.append((u, d + 1))
    return out


# --------------------------------------------------------------------------------------------------- attention
@dataclass
class Site:
    """One attention: the score product (or fused op), its softmax, where Q and K come from."""
    score: int
    fused: bool
    lq: int
    lk: int
    q: int  # the value Q was projected from (an op index; -1 model input; -2 constant)
    k: int
    q_const: bool
    q_kind: str = ""  # what projected the queries: linear, conv (an attention module inside a CNN) ...
    k_reduced: bool = False  # K/V come from the Q tokens through a strided conv or pool (spatial reduction)
    bias_heads: int = 0  # a constant additive bias with this many heads (> 1: learned position bias)
    fixed_mask: bool = False  # a constant (1, 1, L, L) mask: the same for every input and head
    window_mask: bool = False  # a constant mask per window (shifted windows)
    input_mask: bool = False  # a mask computed from a model input (padding)


_SCORE_PATH = frozenset({"mul", "add", "reshape", "transpose", "other", "slice", "flatten"})
_PROJ_THROUGH = SOFT | {"mul", "add", "batchnorm"}  # BN after a projection: torch keeps it, ONNX folds it


def _projection(g: Graph, i: int) -> tuple[int, bool]:
    """(the projection that made an attention operand, whether the operand is constant)."""
    j = i
    for _ in range(10):
        if j < 0:
            return j, j == -2
        if g.const[j]:
            return j, True
        if g.kind[j] in ("linear", "conv", "embedding", "attention", "matmul") or g.kind[j] not in _PROJ_THROUGH:
            return j, False
        if g.kind[j] in ("mul", "add") and len(g.data_inputs(j)) != 1:
            return j, False  # q + positional embedding: the add itself is where the stream is joined
        j = g.first(j)
    return j, False


def _origin(g: Graph, proj: int) -> int:
    """The stream a projection reads: its activation input, looked through views."""
    if proj < 0 or g.kind[proj] not in ("linear", "conv", "matmul"):
        return proj
    return g.src(g.first(proj), SOFT)


def _reduced(g: Graph, k_origin: int, q_origin: int) -> bool:
    """True when the K stream is the Q stream after a strided conv or pool (and norms/views)."""
    j = k_origin
    strided = False
    for _ in range(14):
        if j < 0:
            return False
        if j == q_origin:
            return strided
        if g.kind[j] in ("conv", "maxpool", "avgpool") and max(g.attr(j, "stride", [1]) or [1]) > 1:
            strided = True
        elif g.kind[j] not in CARRY | {"conv"}:
            return False
        j = g.first(j)
    return False


def attention_sites(g: Graph) -> list[Site]:
    sites = []
    for i in g.live():
        op = g.ops[i]
        if g.kind[i] == "attention":
            shapes = op.in_shapes
            ins = g.ins[i]
            if len(ins) >= 2 and len(shapes) >= 2 and len(shapes[0]) >= 2 and len(shapes[1]) >= 2:
                qp, qc = _projection(g, ins[0])
                kp, _ = _projection(g, ins[1])
                site = Site(i, True, shapes[0][-2], shapes[1][-2], _origin(g, qp), _origin(g, kp), qc,
                            g.kind[qp] if qp >= 0 else "")
                if len(ins) >= 4 and len(shapes) >= 4 and shapes[3]:
                    _classify_bias(g, site, ins[3], shapes[3], "add")
            else:
                s = g.shape(i)
                site = Site(i, True, s[-2] if len(s) >= 2 else 0, s[-2] if len(s) >= 2 else 0, -3, -3, False)
            sites.append(site)
            continue
        if g.kind[i] != "softmax":
            continue
        # the score product: back from the softmax through scaling, masking and views
        score, mods, todo, seen = None, [], [g.first(i)], set()
        while todo and score is None:
            j = todo.pop(0)
            if j < 0 or j in seen or len(seen) > 12:
                continue
            seen.add(j)
            if g.kind[j] == "matmul":
                score = j
            elif g.kind[j] in _SCORE_PATH:
                mods.append(j)
                todo.extend(x for x in g.data_inputs(j) if x >= 0)
        if score is None:
            continue
        if not any(g.kind[u] == "matmul" for u in g.consumers(i, SOFT, limit=3)):
            continue
        a, b = (g.ins[score] + [-2, -2])[:2]
        qp, qc = _projection(g, a)
        kp, _ = _projection(g, b)
        s = g.shape(score)
        site = Site(score, False, s[-2] if len(s) >= 2 else 0, s[-1] if s else 0, _origin(g, qp), _origin(g, kp), qc,
                    g.kind[qp] if qp >= 0 else "")
        for m in mods:
            for x, shape in zip(g.ins[m], g.ops[m].in_shapes):
                if x in seen or x == score:
                    continue
                _classify_bias(g, site, x, shape, g.names[m])
        sites.append(site)
    for site in sites:
        if site.q != site.k and site.q >= 0 and site.k >= 0 and site.lk < site.lq:
            site.k_reduced = _reduced(g, site.k, site.q)
    return sites


def _classify_bias(g: Graph, site: Site, x: int, shape: list[int], how: str) -> None:
    """What a tensor added to (or masking) the attention scores is: a padding mask from an input, a learned
    per-head position bias, one fixed (L, L) mask for all heads and inputs, or a per-window mask."""
    if len(shape) < 2 or shape[-1] != site.lk or shape[-2] not in (site.lq, 1):
        return
    if not (x == -2 or (x >= 0 and g.const[x])):
        if x == -1 or (x >= 0 and g.from_input[x]):
            site.input_mask = True
        return
    if shape[-2] == 1:  # (.., 1, Lk): a key mask broadcast over the queries
        return
    lead = shape[:-2]
    if how in ("add", "sub") and lead and lead[-1] > 1 and prod(lead[:-1] or [1]) == 1:
        site.bias_heads = lead[-1]
    elif all(d == 1 for d in lead) and site.lq == site.lk:
        site.fixed_mask = True
    elif len(lead) >= 2 and lead[-1] == 1 and prod(lead) > 1:
        site.window_mask = True


def causal_ops(g: Graph) -> int:
    """triu/tril (Trilu) ops and comparisons of two position ranges (i <= j): causal masks built at run time."""
    n = sum(1 for i in g.live() if g.names[i] in ("triu", "tril", "trilu", "triu_", "tril_"))
    for i in g.live():
        if g.names[i] in ("le", "lt", "ge", "gt", "lessorequal", "less", "greater", "greaterorequal") and g.const[i]:
            ins = [j for j in g.ins[i] if j >= 0]
            if len(ins) == 2 and all(any(g.names[k] in ("arange", "range") for k in g.ancestors(j, 6)) for j in ins):
                s = g.shape(i)
                if len(s) >= 2 and s[-1] == s[-2] > 1:
                    n += 1
    return n


# ---------------------------------------------------------------------------------------------- language, audio
def token_embeddings(g: Graph) -> list[int]:
    """Embedding lookups whose indices come from a model input (token ids), not from position ranges."""
    return [i for i in g.live() if g.kind[i] == "embedding" and not g.const[i]]


def table_shape(g: Graph, i: int) -> tuple[int, int]:
    op = g.ops[i]
    if op.attrs.get("num"):
        return int(op.attrs["num"]), int(op.attrs.get("dim", 0))
    for s in op.in_shapes:
        if len(s) == 2:
            return s[0], s[1]
    return 0, 0


def vocab_heads(g: Graph, tokens: list[int]) -> tuple[int, int]:
    """Linear layers (or matmuls with a weight) mapping hidden states back onto the token vocabulary: the output
    width equals the embedding table's rows. Returns (count, vocabulary size)."""
    tables = {table_shape(g, i) for i in tokens}
    n, vocab = 0, 0
    for i in g.live():
        s = g.shape(i)
        if g.kind[i] != "linear" or not s:
            continue
        for rows, dim in tables:
            if rows > 16 and s[-1] == rows:
                n += 1
                vocab = rows
    return n, vocab


def poolers(g: Graph) -> int:
    """tanh of a linear layer on one token (B, D): BERT's pooler."""
    n = 0
    for i in g.live():
        if g.kind[i] != "tanh":
            continue
        j = g.src(g.first(i), SOFT)
        if j >= 0 and g.kind[j] == "linear" and len(g.shape(j)) == 2:
            n += 1
    return n


def audio_stem(g: Graph) -> tuple[int, int] | None:
    """A 1-D convolution reading a (B, C, T) model input: a spectrogram (or waveform feature) stem. Returns (C, T)."""
    for i in convs(g):
        if len(g.attr(i, "kernel", [])) == 1 and -1 in g.ins[i]:
            s = g.ops[i].in_shapes[0] if g.ops[i].in_shapes else []
            # mel/filter-bank channels (Whisper: 80 or 128), or a raw waveform under a long strided kernel
            if len(s) == 3 and (s[1] >= 32 and max(g.attr(i, "kernel")) > 1 or s[1] == 1 and max(
                    g.attr(i, "kernel")) >= 8 and max(g.attr(i, "stride", [1])) >= 4):
                return s[1], s[2]
    return None


# ----------------------------------------------------------------------------------------------------- policies
def time_embeddings(g: Graph) -> int:
    """sin and cos of a model input of one value per sample (a diffusion timestep) scaled by frequencies."""
    found = set()
    for i in g.live():
        if g.names[i] not in ("sin", "cos") or g.const[i]:
            continue
        for j in g.ancestors(i, 12):
            op = g.ops[j]
            for x, shape in zip(g.ins[j], op.in_shapes):
                if x == -1 and len(shape) <= 2 and prod(shape or [1]) <= max(shape[:1] or [1]):
                    found.add(g.names[i])
    return 1 if {"sin", "cos"} <= found else 0


def film_layers(g: Graph) -> int:
    """Feature-wise affine modulation: a (B, C, T) or (B, C, H, W) map multiplied by a (B, C, 1[, 1]) tensor that a
    linear layer computed (not a sigmoid gate): FiLM conditioning."""
    n = 0
    for i in g.live():
        if g.kind[i] != "mul":
            continue
        shapes = g.ops[i].in_shapes
        ins = g.ins[i]
        if len(ins) != 2 or len(shapes) != 2:
            continue
        for x, y, sx, sy in ((ins[0], ins[1], shapes[0], shapes[1]), (ins[1], ins[0], shapes[1], shapes[0])):
            if len(sx) in (3, 4) and len(sy) == len(sx) and sx[2:] == [1] * (len(sx) - 2) and sy[1] == sx[1] and \
                    prod(sy[2:]) > 1:
                src = g.src(x, SOFT)
                if src >= 0 and g.kind[src] == "linear":
                    n += 1
                    break
    return n
