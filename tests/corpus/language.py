"""Language and speech transformers: BERT and DistilBERT (encoders), GPT-2 (causal decoder, tied LM head), T5
(encoder-decoder, relative position bias, RMS norm) and Whisper (conv1d stem on a mel spectrogram, encoder-decoder),
after the reference implementations' eager code paths."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common import Built, built, seeded, tokens

VOCAB = 1000


# ----------------------------------------------------------------------------------------------------------- BERT
class BertSelfAttention(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads, self.hd = heads, d // heads
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)

    def split(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.hd).permute(0, 2, 1, 3)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
        ctx = torch.matmul(scores.softmax(-1), v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(x.shape)


class BertLayer(nn.Module):
    """Post-LN: LN(x + attn(x)), LN(x + ffn(x))."""

    def __init__(self, d: int, heads: int, ff: int) -> None:
        super().__init__()
        self.attention, self.attn_out, self.ln1 = BertSelfAttention(d, heads), nn.Linear(d, d), nn.LayerNorm(d)
        self.intermediate, self.output, self.ln2 = nn.Linear(d, ff), nn.Linear(ff, d), nn.LayerNorm(d)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = self.ln1(x + self.attn_out(self.attention(x, mask)))
        return self.ln2(x + self.output(F.gelu(self.intermediate(x))))


class Bert(nn.Module):
    """Token + position + segment embeddings, post-LN encoder, pooler (tanh of a dense layer on the first token).
    ``distil``: DistilBERT's layout (no segment embeddings, no pooler)."""

    def __init__(self, d: int = 64, heads: int = 4, layers: int = 2, max_pos: int = 128, distil: bool = False):
        super().__init__()
        self.distil = distil
        self.word_embeddings = nn.Embedding(VOCAB, d)
        self.position_embeddings = nn.Embedding(max_pos, d)
        self.token_type_embeddings = None if distil else nn.Embedding(2, d)
        self.ln = nn.LayerNorm(d)
        self.register_buffer("position_ids", torch.arange(max_pos).unsqueeze(0), persistent=False)
        self.layers = nn.ModuleList(BertLayer(d, heads, 4 * d) for _ in range(layers))
        self.pooler = None if distil else nn.Linear(d, d)

    def forward(self, input_ids: Tensor):
        n = input_ids.shape[1]
        x = self.word_embeddings(input_ids) + self.position_embeddings(self.position_ids[:, :n])
        if self.token_type_embeddings is not None:
            x = x + self.token_type_embeddings(torch.zeros_like(input_ids))
        x = self.ln(x)
        attention_mask = torch.ones_like(input_ids)  # what HF does without an attention_mask argument
        mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, mask)
        if self.pooler is None:
            return x
        return x, torch.tanh(self.pooler(x[:, 0]))


def bert() -> Built:
    seeded()
    return built(Bert(), (tokens(16, VOCAB),), "bert", "transformer", "language")


def distilbert() -> Built:
    seeded()
    return built(Bert(distil=True), (tokens(16, VOCAB),), "bert", "transformer", "language")


# ---------------------------------------------------------------------------------------------------------- GPT-2
class GPT2Attention(nn.Module):
    """HF GPT-2 eager attention: fused c_attn, causal mask from a lower-triangular buffer applied with where."""

    def __init__(self, d: int, heads: int, max_pos: int) -> None:
        super().__init__()
        self.heads, self.hd = heads, d // heads
        self.c_attn, self.c_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.register_buffer("bias", torch.tril(torch.ones(max_pos, max_pos, dtype=torch.bool)).view(
            1, 1, max_pos, max_pos), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = (t.view(b, n, self.heads, self.hd).transpose(1, 2) for t in self.c_attn(x).split(d, dim=2))
        w = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.hd)
        causal = self.bias[:, :, :n, :n]
        w = torch.where(causal, w, torch.full([], torch.finfo(w.dtype).min, dtype=w.dtype, device=w.device))
        out = torch.matmul(w.softmax(-1), v).transpose(1, 2).reshape(b, n, d)
        return self.c_proj(out)


class GPT2Block(nn.Module):
    def __init__(self, d: int, heads: int, max_pos: int) -> None:
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(d), GPT2Attention(d, heads, max_pos)
        self.ln_2, self.c_fc, self.c_proj = nn.LayerNorm(d), nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, d: int = 64, heads: int = 4, layers: int = 2, max_pos: int = 128) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(VOCAB, d), nn.Embedding(max_pos, d)
        self.h = nn.ModuleList(GPT2Block(d, heads, max_pos) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, VOCAB, bias=False)
        self.lm_head.weight = self.wte.weight  # tied

    def forward(self, input_ids: Tensor) -> Tensor:
        pos = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.wte(input_ids) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def gpt2() -> Built:
    seeded()
    return built(GPT2(), (tokens(16, VOCAB),), "gpt", "transformer", "language")


# ------------------------------------------------------------------------------------------------------------- T5
class T5LayerNorm(nn.Module):
    """RMS norm without mean subtraction or bias."""

    def __init__(self, d: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(d)), eps

    def forward(self, x: Tensor) -> Tensor:
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


def relative_position_bucket(rel: Tensor, bidirectional: bool, buckets: int = 32, max_distance: int = 128) -> Tensor:
    out = torch.zeros_like(rel)
    if bidirectional:
        buckets //= 2
        out = out + (rel > 0).to(torch.long) * buckets
        rel = torch.abs(rel)
    else:
        rel = -torch.min(rel, torch.zeros_like(rel))
    max_exact = buckets // 2
    is_small = rel < max_exact
    large = max_exact + (torch.log(rel.float() / max_exact) / math.log(max_distance / max_exact)
                         * (buckets - max_exact)).to(torch.long)
    large = torch.min(large, torch.full_like(large, buckets - 1))
    return out + torch.where(is_small, rel, large)


class T5Attention(nn.Module):
    def __init__(self, d: int, heads: int, relative_bias: bool, bidirectional: bool) -> None:
        super().__init__()
        self.heads, self.hd, self.bidirectional = heads, d // heads, bidirectional
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.relative_attention_bias = nn.Embedding(32, heads) if relative_bias else None

    def compute_bias(self, lq: int, lk: int, device) -> Tensor:
        ctx = torch.arange(lq, dtype=torch.long, device=device)[:, None]
        mem = torch.arange(lk, dtype=torch.long, device=device)[None, :]
        buckets = relative_position_bucket(mem - ctx, self.bidirectional)
        return self.relative_attention_bias(buckets).permute([2, 0, 1]).unsqueeze(0)  # (1, heads, lq, lk)

    def forward(self, x: Tensor, kv: Tensor | None = None, bias: Tensor | None = None) -> tuple[Tensor, Tensor]:
        b, n, d = x.shape
        kv = x if kv is None else kv
        shape = lambda t: t.view(b, -1, self.heads, self.hd).transpose(1, 2)
        q, k, v = shape(self.q(x)), shape(self.k(kv)), shape(self.v(kv))
        scores = torch.matmul(q, k.transpose(3, 2))  # T5 does not scale
        if bias is None and self.relative_attention_bias is not None:
            bias = self.compute_bias(n, k.shape[2], x.device)
            if not self.bidirectional:  # the decoder's causal mask joins the bias, as HF builds it
                seq = torch.arange(n, device=x.device)
                causal = seq[None, :] <= seq[:, None]
                bias = bias + (1.0 - causal.to(scores.dtype)) * torch.finfo(scores.dtype).min
        if bias is not None:
            scores = scores + bias
        out = torch.matmul(scores.softmax(-1), v).transpose(1, 2).reshape(b, n, d)
        return self.o(out), bias


class T5Block(nn.Module):
    def __init__(self, d: int, heads: int, first: bool, decoder: bool) -> None:
        super().__init__()
        self.ln1, self.self_attn = T5LayerNorm(d), T5Attention(d, heads, first, not decoder)
        self.cross = (T5LayerNorm(d), T5Attention(d, heads, False, True)) if decoder else None
        if self.cross is not None:
            self.ln_cross, self.cross_attn = self.cross
        self.ln2, self.wi, self.wo = T5LayerNorm(d), nn.Linear(d, 2 * d, bias=False), nn.Linear(2 * d, d, bias=False)

    def forward(self, x: Tensor, bias: Tensor | None, memory: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h, bias = self.self_attn(self.ln1(x), bias=bias)
        x = x + h
        if memory is not None:
            x = x + self.cross_attn(self.ln_cross(x), kv=memory)[0]
        return x + self.wo(F.relu(self.wi(self.ln2(x)))), bias


class T5(nn.Module):
    def __init__(self, d: int = 64, heads: int = 4, layers: int = 2) -> None:
        super().__init__()
        self.shared = nn.Embedding(VOCAB, d)
        self.encoder = nn.ModuleList(T5Block(d, heads, i == 0, False) for i in range(layers))
        self.decoder = nn.ModuleList(T5Block(d, heads, i == 0, True) for i in range(layers))
        self.enc_norm, self.dec_norm = T5LayerNorm(d), T5LayerNorm(d)
        self.lm_head = nn.Linear(d, VOCAB, bias=False)
        self.lm_head.weight = self.shared.weight
        self.d = d

    def forward(self, input_ids: Tensor, decoder_input_ids: Tensor) -> Tensor:
        x, bias = self.shared(input_ids), None
        for block in self.encoder:
            x, bias = block(x, bias)
        memory = self.enc_norm(x)
        y, bias = self.shared(decoder_input_ids), None
        for block in self.decoder:
            y, bias = block(y, bias, memory)
        return self.lm_head(self.dec_norm(y) * self.d ** -0.5)


def t5() -> Built:
    seeded()
    return built(T5(), (tokens(12, VOCAB), tokens(8, VOCAB, seed=3)), "t5", "transformer", "language")


# -------------------------------------------------------------------------------------------------------- Whisper
def sinusoids(length: int, channels: int, max_timescale: float = 10000) -> Tensor:
    inc = math.log(max_timescale) / (channels // 2 - 1)
    inv = torch.exp(-inc * torch.arange(channels // 2))
    t = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


class WhisperAttention(nn.Module):
    """openai-whisper's MultiHeadAttention: key without bias, scaled_dot_product_attention."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value, self.out = nn.Linear(d, d), nn.Linear(d, d, bias=False), nn.Linear(d, d), \
            nn.Linear(d, d)

    def forward(self, x: Tensor, xa: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        b, n, _ = x.shape
        src = x if xa is None else xa
        q, k, v = self.query(x), self.key(src), self.value(src)
        q, k, v = (t.view(b, t.shape[1], self.heads, -1).permute(0, 2, 1, 3) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else mask[:n, :n])
        return self.out(out.permute(0, 2, 1, 3).flatten(start_dim=2))


class WhisperBlock(nn.Module):
    def __init__(self, d: int, heads: int, cross: bool) -> None:
        super().__init__()
        self.attn_ln, self.attn = nn.LayerNorm(d), WhisperAttention(d, heads)
        self.cross_ln, self.cross_attn = (nn.LayerNorm(d), WhisperAttention(d, heads)) if cross else (None, None)
        self.mlp_ln, self.mlp = nn.LayerNorm(d), nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: Tensor, xa: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        x = x + self.attn(self.attn_ln(x), mask=mask)
        if self.cross_attn is not None:
            x = x + self.cross_attn(self.cross_ln(x), xa)
        return x + self.mlp(self.mlp_ln(x))


class Whisper(nn.Module):
    def __init__(self, n_mels: int = 80, frames: int = 64, d: int = 64, heads: int = 4, layers: int = 2,
                 text_ctx: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, d, 3, padding=1)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)
        self.register_buffer("positional_embedding", sinusoids(frames // 2, d))
        self.enc_blocks = nn.ModuleList(WhisperBlock(d, heads, False) for _ in range(layers))
        self.ln_post = nn.LayerNorm(d)
        self.token_embedding = nn.Embedding(VOCAB, d)
        self.dec_positional = nn.Parameter(torch.randn(text_ctx, d) * 0.01)
        self.dec_blocks = nn.ModuleList(WhisperBlock(d, heads, True) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.register_buffer("mask", torch.empty(text_ctx, text_ctx).fill_(-float("inf")).triu_(1),
                             persistent=False)

    def forward(self, mel: Tensor, tokens_in: Tensor) -> Tensor:
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).permute(0, 2, 1)
        x = x + self.positional_embedding
        for block in self.enc_blocks:
            x = block(x)
        xa = self.ln_post(x)
        n = tokens_in.shape[-1]
        y = self.token_embedding(tokens_in) + self.dec_positional[:n]
        for block in self.dec_blocks:
            y = block(y, xa, mask=self.mask)
        return self.ln(y) @ self.token_embedding.weight.T  # tied output projection


def whisper() -> Built:
    seeded()
    mel = torch.randn(1, 80, 64, generator=torch.Generator().manual_seed(1))
    return built(Whisper(), (mel, tokens(8, VOCAB)), "whisper", "transformer", "speech")
