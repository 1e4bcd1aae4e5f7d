"""The whole Transformer as torch modules, built from the formulas of the chapters.

Two models (chapter 11):

* :class:`EncoderDecoderTransformer`, the model of the paper ("Attention Is All You Need",
  seed 003 §2): an encoder stack reads the source, a decoder stack writes the target one
  token at a time, attending to its own past (masked self-attention) and to the encoder's
  output (cross-attention).
* :class:`DecoderOnlyLM`, a language model: the decoder stack without cross-attention,
  predicting each next token from the ones before it.

Every formula comes from :mod:`helpers`, the functions the chapters derive and check:
:func:`helpers.layer_norm`, :func:`helpers.feed_forward`,
:func:`helpers.sinusoidal_positional_encoding`, :func:`helpers.causal_mask` and, for the
attention, :func:`helpers.scaled_dot_product_attention` (``attention="math"``, the explicit
softmax(QK^T/sqrt(d_k))V, which can hand back the weights for heatmaps) or PyTorch's fused
``F.scaled_dot_product_attention`` (``attention="fused"``, the same numbers computed by one
kernel; tests/test_model.py shows them equal). The projections Q = X W^Q + b_q ... and the
split into heads are the ones of :func:`helpers.multi_head_attention`, written out here
because a generating model must keep the projected keys and values of earlier tokens
(the KV cache) and because dropout on the attention weights has to sit between the
softmax and the product with V; tests/test_model.py checks the module against
:func:`helpers.multi_head_attention` with the same weights.

Row-vector convention as in the seeds: a token is a row, x W. Masks are boolean,
True where attending is allowed.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

import helpers

NORMS = ("pre", "post")
POSITIONS = ("sinusoidal", "learned")
ATTENTIONS = ("math", "fused")
KINDS = ("decoder", "encoder-decoder")


@dataclass
class ModelConfig:
    """Everything that fixes a model's shape and behaviour (stored in every checkpoint).

    kind: "decoder" (a language model) or "encoder-decoder" (the paper's model).
    vocab_size: tokens the decoder reads and predicts; src_vocab_size: tokens the
    encoder reads (encoder-decoder only; default vocab_size).
    d_model, num_heads (d_k = d_v = d_model / num_heads), d_ff (default 4 d_model).
    num_layers: decoder layers; num_encoder_layers: encoder layers (default num_layers).
    max_len: longest sequence the position table covers.
    dropout: on the sum of embeddings and positions and on every sub-layer's output
    (the paper's P_drop); attention_dropout: on the attention weights.
    norm: "post" = LayerNorm(x + Sublayer(x)) as in the paper, "pre" = x + Sublayer(LayerNorm(x)).
    positions: "sinusoidal" (fixed, chapter 5) or "learned" (a trained table).
    tie_embeddings: the output projection is the transposed (target) embedding table.
    attention: "math" (helpers.scaled_dot_product_attention) or "fused"
    (F.scaled_dot_product_attention).
    """

    vocab_size: int
    kind: str = "decoder"
    src_vocab_size: int | None = None
    d_model: int = 128
    num_heads: int = 4
    num_layers: int = 4
    num_encoder_layers: int | None = None
    d_ff: int | None = None
    max_len: int = 256
    dropout: float = 0.0
    attention_dropout: float = 0.0
    norm: str = "pre"
    positions: str = "learned"
    tie_embeddings: bool = True
    attention: str = "fused"
    layer_norm_eps: float = 1e-5

    def __post_init__(self):
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model
        if self.kind == "encoder-decoder":
            if self.src_vocab_size is None:
                self.src_vocab_size = self.vocab_size
            if self.num_encoder_layers is None:
                self.num_encoder_layers = self.num_layers
        self.validate()

    def validate(self):
        def choice(name, options):
            if getattr(self, name) not in options:
                raise ValueError(f"ModelConfig: {name} must be one of {options}, got {getattr(self, name)!r}")

        choice("kind", KINDS)
        choice("norm", NORMS)
        choice("positions", POSITIONS)
        choice("attention", ATTENTIONS)
        positive = ["vocab_size", "d_model", "num_heads", "num_layers", "d_ff", "max_len"]
        if self.kind == "encoder-decoder":
            positive += ["src_vocab_size", "num_encoder_layers"]
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ModelConfig: {name} must be a positive integer, got {value!r}")
        if self.d_model % self.num_heads:
            raise ValueError(f"ModelConfig: num_heads={self.num_heads} must divide d_model={self.d_model}")
        if self.positions == "sinusoidal" and self.d_model % 2:
            raise ValueError(f"ModelConfig: sinusoidal positions need an even d_model, got {self.d_model}")
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"ModelConfig: {name} must lie in [0, 1), got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"ModelConfig: unknown fields {unknown}")
        return cls(**values)


# --------------------------------------------------------------------------- layers

def _normal(shape, std):
    return nn.Parameter(torch.randn(*shape) * std)


class LayerNorm(nn.Module):
    """LayerNorm over the last axis: (x - mu) / sqrt(sigma^2 + eps) * gamma + beta (chapter 6).

    Computed by :func:`helpers.layer_norm`. Parameters gamma (d,) = 1, beta (d,) = 0 at start.
    """

    def __init__(self, d_model: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(d_model))
        self.beta = nn.Parameter(torch.zeros(d_model))

    def forward(self, x):
        return helpers.layer_norm(x, self.gamma, self.beta, eps=self.eps)


class FeedForward(nn.Module):
    """Position-wise FFN(x) = ReLU(x W1 + b1) W2 + b2 (chapter 6), by :func:`helpers.feed_forward`.

    Shapes: W1 (d_model, d_ff), b1 (d_ff,), W2 (d_ff, d_model), b2 (d_model,).
    """

    def __init__(self, d_model: int, d_ff: int, out_scale: float = 1.0):
        super().__init__()
        self.w1 = _normal((d_model, d_ff), d_model ** -0.5)
        self.b1 = nn.Parameter(torch.zeros(d_ff))
        self.w2 = _normal((d_ff, d_model), d_ff ** -0.5 * out_scale)
        self.b2 = nn.Parameter(torch.zeros(d_model))

    def forward(self, x):
        return helpers.feed_forward(x, self.w1, self.b1, self.w2, self.b2)


def _split_heads(x, num_heads):
    # (B, n, h*d) -> (B, h, n, d): column block i of X W^Q is head i
    b, n, hd = x.shape
    return x.view(b, n, num_heads, hd // num_heads).transpose(1, 2)


def _merge_heads(x):
    # (B, h, n, d) -> (B, n, h*d): Concat(head_1, ..., head_h)
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


class MultiHeadAttention(nn.Module):
    """Multi-head attention (chapter 4), with an optional cache of past keys and values.

    Q = x_q W^Q + b_q, K = x_kv W^K + b_k, V = x_kv W^V + b_v (all (d_model, d_model), heads
    as column blocks), head_i = Attention(Q_i, K_i, V_i), output = Concat(heads) W^O + b_o.
    Parameters: 4 d_model^2 weights + 4 d_model biases.

    ``attention="math"`` computes each head with :func:`helpers.scaled_dot_product_attention`
    and can return the weights (B, h, n_q, n_k); ``"fused"`` calls
    ``F.scaled_dot_product_attention`` (no weights). Masks: boolean, broadcastable to
    (B, 1, n_q, n_k), True where attending is allowed.
    """

    def __init__(self, d_model: int, num_heads: int, attention: str = "fused",
                 attention_dropout: float = 0.0, out_scale: float = 1.0):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"MultiHeadAttention: attention must be one of {ATTENTIONS}, got {attention!r}")
        self.num_heads = num_heads
        self.attention = attention
        self.attention_dropout = attention_dropout
        std = d_model ** -0.5  # fan-in initialisation: x W keeps the variance of x
        for name in ("w_q", "w_k", "w_v"):
            setattr(self, name, _normal((d_model, d_model), std))
        self.w_o = _normal((d_model, d_model), std * out_scale)
        for name in ("b_q", "b_k", "b_v", "b_o"):
            setattr(self, name, nn.Parameter(torch.zeros(d_model)))

    def project_kv(self, x_kv):
        """Keys and values of x_kv (B, n_k, d_model), split into heads: two (B, h, n_k, d_k)."""
        k = _split_heads(x_kv @ self.w_k + self.b_k, self.num_heads)
        v = _split_heads(x_kv @ self.w_v + self.b_v, self.num_heads)
        return k, v

    def forward(self, x_q, x_kv=None, mask=None, causal=False, cache=None, static_kv=False,
                need_weights=False):
        """Attend from x_q (B, n_q, d_model) to x_kv (default x_q, self-attention).

        causal: query i (at absolute position past + i) may see keys 0..past + i only.
        cache: a dict that keeps this layer's projected keys/values between calls
        (generation). Self-attention appends the new tokens' keys and values;
        cross-attention (static_kv=True) projects the encoder output once and reuses it.
        need_weights: also return the attention weights (B, h, n_q, n_k); this always
        takes the math path, since the fused kernel does not produce them.
        Returns (output (B, n_q, d_model), weights or None).
        """
        if x_kv is None:
            x_kv = x_q
        q = _split_heads(x_q @ self.w_q + self.b_q, self.num_heads)
        past = 0
        if cache is not None and static_kv and "k" in cache:
            k, v = cache["k"], cache["v"]
        else:
            k, v = self.project_kv(x_kv)
            if cache is not None:
                if not static_kv and "k" in cache:
                    past = cache["k"].shape[-2]
                    k = torch.cat([cache["k"], k], dim=-2)
                    v = torch.cat([cache["v"], v], dim=-2)
                cache["k"], cache["v"] = k, v
        n_q, n_k = q.shape[-2], k.shape[-2]
        is_causal = False
        if causal:
            if past == 0 and n_q == n_k and mask is None:
                is_causal = True
            elif n_q > 1:  # a single new query may see every cached key: no mask needed
                allowed = helpers.causal_mask(n_k, backend="torch", device=q.device)[past:past + n_q]
                mask = allowed if mask is None else mask & allowed
        dropout_p = self.attention_dropout if self.training else 0.0
        if self.attention == "fused" and not need_weights:
            heads = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                                   is_causal=is_causal)
            weights = None
        else:
            if is_causal:
                mask = helpers.causal_mask(n_k, backend="torch", device=q.device)
            heads, weights = helpers.scaled_dot_product_attention(q, k, v, mask=mask)
            if dropout_p:
                heads = F.dropout(weights, dropout_p, training=True) @ v
        out = _merge_heads(heads) @ self.w_o + self.b_o
        return out, (weights if need_weights else None)


class Positions(nn.Module):
    """Adds position vectors to token vectors: sinusoidal (a fixed table, chapter 5) or learned."""

    def __init__(self, kind: str, max_len: int, d_model: int):
        super().__init__()
        self.kind = kind
        self.max_len = max_len
        if kind == "sinusoidal":
            table = helpers.sinusoidal_positional_encoding(max_len, d_model, backend="torch",
                                                           dtype=torch.float32)
            self.register_buffer("table", table, persistent=False)
        else:
            self.table = _normal((max_len, d_model), 0.02)

    def forward(self, x, start: int = 0):
        n = x.shape[-2]
        if start + n > self.max_len:
            raise ValueError(f"positions {start}..{start + n - 1} exceed the model's max_len="
                             f"{self.max_len}: use a shorter input or a model with a larger max_len")
        return x + self.table[start:start + n].to(x.dtype)


class Embedding(nn.Module):
    """Token embedding: row lookup W_e[token] (= one-hot times W_e, chapter 1), times sqrt(d_model).

    W_e (V, d_model) starts with entries of standard deviation d_model^-0.5, so the scaled
    rows have unit variance, the size of the sinusoidal position vectors; used transposed as
    the output projection (tied embeddings), it gives logits of unit variance at the start.
    """

    def __init__(self, vocab_size: int, d_model: int):
        super().__init__()
        self.weight = _normal((vocab_size, d_model), d_model ** -0.5)
        self.scale = math.sqrt(d_model)

    def forward(self, tokens):
        return self.weight[tokens] * self.scale


class Block(nn.Module):
    """One layer: self-attention, optionally cross-attention, then the FFN; each sub-layer
    wrapped in a residual connection and a LayerNorm, post-LN or pre-LN (chapter 6):

        post-LN (the paper):  x = LayerNorm(x + Dropout(Sublayer(x)))
        pre-LN:               x = x + Dropout(Sublayer(LayerNorm(x)))

    An encoder layer is Block(cross=False) run without a causal mask; a decoder layer of the
    paper is Block(cross=True) with a causal mask; a language-model layer is Block(cross=False)
    with a causal mask.
    """

    def __init__(self, config: ModelConfig, cross: bool, num_stacked: int):
        super().__init__()
        d, eps = config.d_model, config.layer_norm_eps
        out_scale = 1.0 / math.sqrt(2 * num_stacked)  # residual branches add up over the stack
        kw = dict(attention=config.attention, attention_dropout=config.attention_dropout, out_scale=out_scale)
        self.pre_ln = config.norm == "pre"
        self.self_attn = MultiHeadAttention(d, config.num_heads, **kw)
        self.norm_self = LayerNorm(d, eps)
        self.cross_attn = MultiHeadAttention(d, config.num_heads, **kw) if cross else None
        self.norm_cross = LayerNorm(d, eps) if cross else None
        self.ffn = FeedForward(d, config.d_ff, out_scale=out_scale)
        self.norm_ffn = LayerNorm(d, eps)
        self.dropout = nn.Dropout(config.dropout)

    def _sublayer(self, x, norm, fn):
        if self.pre_ln:
            out, weights = fn(norm(x))
            return x + self.dropout(out), weights
        out, weights = fn(x)
        return norm(x + self.dropout(out)), weights

    def forward(self, x, causal=False, self_mask=None, memory=None, memory_mask=None,
                cache=None, need_weights=False):
        self_cache = cross_cache = None
        if cache is not None:
            self_cache = cache.setdefault("self", {})
            cross_cache = cache.setdefault("cross", {})
        x, w_self = self._sublayer(x, self.norm_self, lambda h: self.self_attn(
            h, mask=self_mask, causal=causal, cache=self_cache, need_weights=need_weights))
        w_cross = None
        if self.cross_attn is not None:
            x, w_cross = self._sublayer(x, self.norm_cross, lambda h: self.cross_attn(
                h, memory, mask=memory_mask, cache=cross_cache, static_kv=True, need_weights=need_weights))
        x, _ = self._sublayer(x, self.norm_ffn, lambda h: (self.ffn(h), None))
        return x, {"self": w_self, "cross": w_cross}


def _output_logits(h, embedding: Embedding, head):
    # logits = h W_e^T (tied) or h W_out + b_out
    if head is None:
        return h @ embedding.weight.T
    return h @ head.weight + head.bias


class OutputHead(nn.Module):
    """Untied output projection: logits = h W_out + b_out, W_out (d_model, V)."""

    def __init__(self, d_model: int, vocab_size: int):
        super().__init__()
        self.weight = _normal((d_model, vocab_size), d_model ** -0.5)
        self.bias = nn.Parameter(torch.zeros(vocab_size))


# --------------------------------------------------------------------------- models

class DecoderOnlyLM(nn.Module):
    """A decoder-only language model: tokens (B, n) -> next-token logits (B, n, V).

    x = Dropout(Embedding(tokens) + Positions); x = Block(x, causal) for each layer;
    (pre-LN: a final LayerNorm); logits = x W_e^T (tied) or x W_out + b_out.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.kind != "decoder":
            raise ValueError(f"DecoderOnlyLM needs a config of kind 'decoder', got {config.kind!r}")
        self.config = config
        self.embed = Embedding(config.vocab_size, config.d_model)
        self.positions = Positions(config.positions, config.max_len, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(Block(config, cross=False, num_stacked=config.num_layers)
                                    for _ in range(config.num_layers))
        self.final_norm = LayerNorm(config.d_model, config.layer_norm_eps) if config.norm == "pre" else None
        self.head = None if config.tie_embeddings else OutputHead(config.d_model, config.vocab_size)

    def forward(self, tokens, cache=None, need_weights=False):
        """tokens (B, n) integers -> logits (B, n, V); with need_weights, (logits, weights)
        where weights is a list (one per layer) of (B, h, n, n_k) self-attention weights.

        cache: a dict from :meth:`new_cache`; the tokens are then the ones after those
        already in the cache (generation with a KV cache).
        """
        _check_tokens("tokens", tokens, self.config.vocab_size)
        start = 0
        if cache is not None:
            start = cache.get("length", 0)
            cache["length"] = start + tokens.shape[1]
        x = self.dropout(self.positions(self.embed(tokens), start=start))
        weights = []
        for i, layer in enumerate(self.layers):
            layer_cache = None if cache is None else cache.setdefault(i, {})
            x, w = layer(x, causal=True, cache=layer_cache, need_weights=need_weights)
            weights.append(w["self"])
        if self.final_norm is not None:
            x = self.final_norm(x)
        logits = _output_logits(x, self.embed, self.head)
        return (logits, weights) if need_weights else logits

    @staticmethod
    def new_cache() -> dict:
        return {}


class EncoderDecoderTransformer(nn.Module):
    """The paper's encoder-decoder Transformer (seed 003 §2).

    encode: src (B, n_src) -> memory (B, n_src, d_model), the encoder stack over
    Dropout(Embedding_src(src) + PE) with padding tokens masked out as keys.
    decode: target tokens so far (B, n_tgt) and memory -> logits (B, n_tgt, V_tgt): each
    decoder layer runs causal self-attention, cross-attention to memory, and the FFN.
    """

    def __init__(self, config: ModelConfig, pad_id: int = 0):
        super().__init__()
        if config.kind != "encoder-decoder":
            raise ValueError(f"EncoderDecoderTransformer needs a config of kind 'encoder-decoder', "
                             f"got {config.kind!r}")
        self.config = config
        self.pad_id = pad_id
        d = config.d_model
        self.src_embed = Embedding(config.src_vocab_size, d)
        self.tgt_embed = Embedding(config.vocab_size, d)
        self.positions = Positions(config.positions, config.max_len, d)
        self.dropout = nn.Dropout(config.dropout)
        self.encoder = nn.ModuleList(Block(config, cross=False, num_stacked=config.num_encoder_layers)
                                     for _ in range(config.num_encoder_layers))
        self.decoder = nn.ModuleList(Block(config, cross=True, num_stacked=config.num_layers)
                                     for _ in range(config.num_layers))
        pre = config.norm == "pre"
        self.encoder_norm = LayerNorm(d, config.layer_norm_eps) if pre else None
        self.decoder_norm = LayerNorm(d, config.layer_norm_eps) if pre else None
        self.head = None if config.tie_embeddings else OutputHead(d, config.vocab_size)

    def source_mask(self, src):
        """Key-padding mask (B, 1, 1, n_src): True on real source tokens."""
        return (src != self.pad_id)[:, None, None, :]

    def encode(self, src, need_weights=False):
        """src (B, n_src) -> memory (B, n_src, d_model) (and per-layer self-attention weights)."""
        _check_tokens("src", src, self.config.src_vocab_size)
        mask = self.source_mask(src)
        x = self.dropout(self.positions(self.src_embed(src)))
        weights = []
        for layer in self.encoder:
            x, w = layer(x, self_mask=mask, need_weights=need_weights)
            weights.append(w["self"])
        if self.encoder_norm is not None:
            x = self.encoder_norm(x)
        return (x, weights) if need_weights else x

    def decode(self, tgt, memory, src_mask, cache=None, need_weights=False):
        """tgt (B, n_tgt) -> logits (B, n_tgt, V); with need_weights also a list (per layer)
        of {"self": (B, h, n_tgt, n_tgt), "cross": (B, h, n_tgt, n_src)} weights."""
        _check_tokens("tgt", tgt, self.config.vocab_size)
        start = 0
        if cache is not None:
            start = cache.get("length", 0)
            cache["length"] = start + tgt.shape[1]
        x = self.dropout(self.positions(self.tgt_embed(tgt), start=start))
        weights = []
        for i, layer in enumerate(self.decoder):
            layer_cache = None if cache is None else cache.setdefault(i, {})
            x, w = layer(x, causal=True, memory=memory, memory_mask=src_mask, cache=layer_cache,
                         need_weights=need_weights)
            weights.append(w)
        if self.decoder_norm is not None:
            x = self.decoder_norm(x)
        logits = _output_logits(x, self.tgt_embed, self.head)
        return (logits, weights) if need_weights else logits

    def forward(self, src, tgt, need_weights=False):
        """Teacher forcing: logits (B, n_tgt, V) for every target position at once."""
        if need_weights:
            memory, enc_weights = self.encode(src, need_weights=True)
            logits, dec_weights = self.decode(tgt, memory, self.source_mask(src), need_weights=True)
            return logits, {"encoder": enc_weights, "decoder": dec_weights}
        return self.decode(tgt, self.encode(src), self.source_mask(src))

    @staticmethod
    def new_cache() -> dict:
        return {}


def _check_tokens(name, tokens, vocab_size):
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.dtype not in (torch.int64, torch.int32):
        got = f"{tokens.dtype} of shape {tuple(tokens.shape)}" if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise TypeError(f"{name} must be an integer tensor of shape (batch, tokens), got {got}")


def build_model(config: ModelConfig, pad_id: int = 0) -> nn.Module:
    """The model that ``config.kind`` names."""
    if config.kind == "decoder":
        return DecoderOnlyLM(config)
    return EncoderDecoderTransformer(config, pad_id=pad_id)


def count_parameters(model: nn.Module) -> int:
    """Number of trained numbers: sum of numel over the parameters (buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def parameter_formula(config: ModelConfig) -> int:
    """The parameter count from the formula of chapter 11 (compare with count_parameters).

    attention: 4 d^2 + 4 d (W^Q, W^K, W^V, W^O and their biases); FFN: 2 d d_ff + d_ff + d;
    LayerNorm: 2 d. Encoder layer = attention + FFN + 2 LayerNorms; decoder layer of the
    encoder-decoder adds a cross-attention and a third LayerNorm. Embeddings V d per table,
    learned positions max_len d, untied output projection d V + V, pre-LN final LayerNorm 2 d
    per stack.
    """
    d, f = config.d_model, config.d_ff
    attention = 4 * d * d + 4 * d
    ffn = 2 * d * f + f + d
    norm = 2 * d
    layer = attention + ffn + 2 * norm
    total = config.vocab_size * d
    if config.positions == "learned":
        total += config.max_len * d
    if not config.tie_embeddings:
        total += d * config.vocab_size + config.vocab_size
    if config.kind == "decoder":
        total += config.num_layers * layer
        stacks = 1
    else:
        total += config.src_vocab_size * d
        total += config.num_encoder_layers * layer
        total += config.num_layers * (layer + attention + norm)
        stacks = 2
    if config.norm == "pre":
        total += stacks * norm
    return total
