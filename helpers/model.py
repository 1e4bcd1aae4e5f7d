"""The whole Transformer as torch modules: a thin shell over the chapters' functions.

Two models (chapter 11):

* :class:`EncoderDecoderTransformer`, the model of the paper (Vaswani et al. 2017; Métwalli
  and Elhefny, §2): an encoder stack reads the source, a decoder stack writes the target
  one token at a time, attending to its own past (masked self-attention) and to the
  encoder's output (cross-attention).
* :class:`DecoderOnlyLM`, a language model: the stack of self-attention layers with a
  causal mask, predicting each next token from the ones before it.

The modules only *hold* parameters, under the names chapter 7 uses (``layers.0.self_attn.w_q``,
``layers.0.norm1.gamma``, ...), and their ``forward`` calls the layer functions of
:mod:`helpers.layers` (chapter 7): :func:`~helpers.layers.encoder` and
:func:`~helpers.layers.decoder`, which compose :func:`helpers.multi_head_attention`,
:func:`helpers.feed_forward` and :func:`helpers.layer_norm`. No attention, residual,
normalisation or head-splitting arithmetic is written here. :meth:`DecoderOnlyLM.params`
and :meth:`EncoderDecoderTransformer.params` hand the same tensors to those functions as a
chapter-7 params structure (tests/test_model_is_chapter7_layers.py checks the identity).

What is new here is only what a trainable model needs around the layers: the embedding
lookup (chapter 1: one-hot times W_e is a row lookup), the position vectors (chapter 5,
learned, or rotary in chapter 12), the initial values of the parameters, dropout, and the
output projection (tied to the embedding table, the paper's §3.4).

``kernels="fused"`` runs torch's own kernels (F.scaled_dot_product_attention, F.layer_norm,
F.rms_norm, F.relu/F.gelu/F.silu, and F.cross_entropy in the tasks' losses): the fast path
for training. ``kernels="math"`` runs the chapters' formulas; it can also hand back the
attention weights for heatmaps. tests/test_fused.py checks that both give the same values
and gradients for every option.

Row-vector convention as in the chapters: a token is a row, x W. Masks are boolean,
True where attending is allowed.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import torch
from torch import nn

import helpers

from . import layers as L

NORMS = L.NORMS
NORMALIZATIONS = L.NORMALIZATIONS
FFNS = L.FFNS
POSITIONS = ("learned", "sinusoidal", "rotary")
KERNELS = ("fused", "math")
KINDS = ("decoder", "encoder-decoder")
# Two configurations of the same model (chapter 12): the paper's block, and the modern one
# that open models share since 2023 (pre-norm RMSNorm, SwiGLU, rotary positions, no biases).
PRESETS = {
    "paper": dict(norm="post", normalization="layer_norm", ffn="relu", positions="sinusoidal",
                  bias=True, scale_embeddings=True, qk_norm=False, num_kv_heads=None),
    "modern": dict(norm="pre", normalization="rms_norm", ffn="swiglu", d_ff=None, positions="rotary",
                   bias=False, scale_embeddings=False),
}
POSITION_STD = 0.02    # learned position vectors start at this size


class StoredConfig:
    """What a model configuration stored in a checkpoint needs: ``to_dict`` and a
    ``from_dict`` that names unknown fields (every configuration dataclass of the course)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown fields {unknown}")
        return cls(**values)


@dataclass
class ModelConfig(StoredConfig):
    """Everything that fixes a model's shape and behaviour (stored in every checkpoint).

    kind: "decoder" (a language model) or "encoder-decoder" (the paper's model).
    vocab_size: tokens the decoder reads and predicts; src_vocab_size: tokens the
    encoder reads (encoder-decoder only; default vocab_size).
    d_model, num_heads (d_k = d_v = d_model / num_heads), num_kv_heads (grouped-query
    attention, chapter 12; default num_heads), d_ff (default 4 d_model, or round(8 d_model / 3)
    for SwiGLU, which keeps the parameter count, chapter 12).
    num_layers: decoder layers; num_encoder_layers: encoder layers (default num_layers).
    max_len: longest sequence the model reads (the learned/sinusoidal position tables).
    dropout: on the sum of embeddings and positions and on every sub-layer's output
    (the paper's P_drop); attention_dropout: on the attention weights.
    norm: "post" = Norm(x + Sublayer(x)) as in the paper, "pre" = x + Sublayer(Norm(x)),
    "none" (chapter 6). normalization: "layer_norm" or "rms_norm" (chapter 12).
    ffn: "relu" (the paper), "gelu" or "swiglu". bias: biases in the projections, the FFN
    and LayerNorm (the modern decoder has none). qk_norm: RMS-normalise queries and keys.
    positions: "learned", "sinusoidal" (fixed, chapter 5) or "rotary" (chapter 12, base
    ``rotary_theta``). tie_embeddings: the output projection is the (target) embedding table.
    scale_embeddings: multiply the embedding rows by sqrt(d_model), as the paper does (§3.4).
    kernels: "fused" (torch's kernels) or "math" (the chapters' formulas).
    eps: of every normalisation.
    """

    vocab_size: int
    kind: str = "decoder"
    src_vocab_size: int | None = None
    d_model: int = 128
    num_heads: int = 4
    num_kv_heads: int | None = None
    num_layers: int = 4
    num_encoder_layers: int | None = None
    d_ff: int | None = None
    max_len: int = 256
    dropout: float = 0.0
    attention_dropout: float = 0.0
    norm: str = "pre"
    normalization: str = "layer_norm"
    ffn: str = "relu"
    bias: bool = True
    qk_norm: bool = False
    positions: str = "learned"
    rotary_theta: float = 10000.0
    tie_embeddings: bool = True
    scale_embeddings: bool = False
    kernels: str = "fused"
    eps: float = 1e-5

    def __post_init__(self):
        if self.d_ff is None and isinstance(self.d_model, int):
            self.d_ff = round(8 * self.d_model / 3) if self.ffn == "swiglu" else 4 * self.d_model
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
        choice("normalization", NORMALIZATIONS)
        choice("ffn", FFNS)
        choice("positions", POSITIONS)
        choice("kernels", KERNELS)
        positive = ["vocab_size", "d_model", "num_heads", "num_layers", "d_ff", "max_len"]
        if self.kind == "encoder-decoder":
            positive += ["src_vocab_size", "num_encoder_layers"]
        if self.num_kv_heads is not None:
            positive.append("num_kv_heads")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ModelConfig: {name} must be a positive integer, got {value!r}")
        if self.d_model % self.num_heads:
            raise ValueError(f"ModelConfig: num_heads={self.num_heads} must divide d_model={self.d_model}")
        if self.num_kv_heads is not None and self.num_heads % self.num_kv_heads:
            raise ValueError(f"ModelConfig: num_kv_heads={self.num_kv_heads} must divide "
                             f"num_heads={self.num_heads}")
        if self.positions == "sinusoidal" and self.d_model % 2:
            raise ValueError(f"ModelConfig: sinusoidal positions need an even d_model, got {self.d_model}")
        if self.positions == "rotary" and (self.d_model // self.num_heads) % 2:
            raise ValueError(f"ModelConfig: rotary positions need an even head width d_model/num_heads, "
                             f"got {self.d_model // self.num_heads}")
        if not (isinstance(self.rotary_theta, (int, float)) and self.rotary_theta > 1):
            raise ValueError(f"ModelConfig: rotary_theta must be a number > 1, got {self.rotary_theta!r}")
        for name in ("dropout", "attention_dropout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"ModelConfig: {name} must lie in [0, 1), got {value!r}")
        if not (isinstance(self.eps, (int, float)) and self.eps > 0):
            raise ValueError(f"ModelConfig: eps must be a number > 0, got {self.eps!r}")

    def layer_options(self, training: bool = False) -> L.LayerOptions:
        """The options of every layer, as :mod:`helpers.layers` takes them (dropout only
        while training)."""
        return L.LayerOptions(
            normalization=self.normalization, ffn=self.ffn, bias=self.bias,
            num_kv_heads=self.num_kv_heads,
            rotary_theta=self.rotary_theta if self.positions == "rotary" else None,
            qk_norm=self.qk_norm, fused=self.kernels == "fused",
            dropout=self.dropout if training else 0.0,
            attention_dropout=self.attention_dropout if training else 0.0)



# --------------------------------------------------------------------------- parameters

def _normal(shape, std):
    return nn.Parameter(torch.randn(*shape) * std)


def initial_value(name: str, shape: tuple, residual_scale: float = 1.0) -> nn.Parameter:
    """The starting value of a layer parameter called ``name`` (chapter 11).

    Matrices: normal with standard deviation fan_in^-1/2 (x W keeps the variance of x); the
    two that write into the residual stream, w_o and w2, are further scaled by
    ``residual_scale`` = 1/sqrt(2 L), since L layers each add two of them (chapter 12).
    Gains (gamma, q_gamma, k_gamma) start at 1, biases and beta at 0.
    """
    if len(shape) == 2:
        std = shape[0] ** -0.5 * (residual_scale if name in ("w_o", "w2") else 1.0)
        return _normal(shape, std)
    if name.endswith("gamma"):
        return nn.Parameter(torch.ones(shape))
    return nn.Parameter(torch.zeros(shape))


class LayerParameters(nn.ModuleDict):
    """The parameters of one layer under chapter 7's names: {part: {name: tensor}}.

    A ModuleDict of ParameterDicts, so the state_dict says ``self_attn.w_q``, ``norm1.gamma``,
    and :meth:`params` gives the dict that :func:`helpers.layers.encoder_layer` and
    :func:`helpers.layers.decoder_layer` take (the same tensors, not copies).
    """

    def __init__(self, config: ModelConfig, kind: str, num_stacked: int):
        shapes = L.layer_parameter_shapes(config.d_model, config.d_ff, kind, num_heads=config.num_heads,
                                          options=config.layer_options(), norm=config.norm)
        residual_scale = 1.0 / math.sqrt(2 * num_stacked)  # residual branches add up over the stack
        super().__init__({part: nn.ParameterDict({name: initial_value(name, size, residual_scale)
                                                  for name, size in names.items()})
                          for part, names in shapes.items()})

    def params(self) -> dict:
        return {part: dict(values.items()) for part, values in self.items()}


class NormParameters(nn.ParameterDict):
    """gamma (and beta for LayerNorm with biases) of a final normalisation."""

    def __init__(self, config: ModelConfig):
        keys = L.part_keys("norm", config.layer_options())
        super().__init__({name: initial_value(name, (config.d_model,)) for name in keys})

    def params(self) -> dict:
        return dict(self.items())


def layer_params(module) -> dict | list:
    """The chapter-7 params structure of a :class:`LayerParameters` (a dict), of a list of
    them (a list) or of a :class:`NormParameters` (a dict): public mapping from modules to
    the functions' parameters."""
    if isinstance(module, (LayerParameters, NormParameters)):
        return module.params()
    if isinstance(module, (nn.ModuleList, list, tuple)):
        return [layer_params(m) for m in module]
    raise TypeError(f"layer_params: expected LayerParameters, NormParameters or a list of them, "
                    f"got {type(module).__name__}")


def output_std(d_model: int) -> float:
    """Standard deviation of the entries of every matrix that makes logits (the embedding
    table, tied, or the untied output head): 0.1 / sqrt(d_model).

    Chapter 11 derives why. The last normalisation hands the output projection vectors h
    with |h|^2 ~ d_model, nearly independent of W at initialisation, so each logit h . w_j
    has variance d_model * std^2 = 0.01: the logits start close to 0, the untrained model
    predicts every token with probability close to 1/V, and its loss starts at ln V
    (tests/test_initial_loss.py checks every model the command line builds). With the
    paper's std = d_model^-1/2 the logits would start with variance 1, and the input token's
    own logit far above the others (h still contains that token's vector).
    """
    return 0.1 / math.sqrt(d_model)


class Embedding(nn.Module):
    """Token embedding: the row lookup W_e[token] (= one-hot times W_e, chapter 1), multiplied
    by sqrt(d_model) when ``scale`` (the paper's §3.4). The table starts with entries of
    standard deviation :func:`output_std` (it is also the tied output projection)."""

    def __init__(self, vocab_size: int, d_model: int, scale: bool):
        super().__init__()
        self.scale = math.sqrt(d_model) if scale else 1.0
        self.weight = _normal((vocab_size, d_model), output_std(d_model))

    def forward(self, tokens):
        return self.weight[tokens] * self.scale                           # (B, n, d_model)


class Positions(nn.Module):
    """Position vectors added to the token vectors (chapter 5): the sinusoidal table (fixed)
    or a learned one. Rotary positions (chapter 12) live inside the attention instead, so
    this module adds nothing for them and only checks the length."""

    def __init__(self, kind: str, max_len: int, d_model: int):
        super().__init__()
        self.kind = kind
        self.max_len = max_len
        if kind == "sinusoidal":
            table = helpers.sinusoidal_positional_encoding(max_len, d_model, backend="torch",
                                                           dtype=torch.float32)
            self.register_buffer("table", table, persistent=False)
        elif kind == "learned":
            self.table = _normal((max_len, d_model), POSITION_STD)

    def forward(self, x, start: int = 0):
        n = x.shape[-2]
        if start + n > self.max_len:
            raise ValueError(f"positions {start}..{start + n - 1} exceed the model's max_len="
                             f"{self.max_len}: use a shorter input or a model with a larger max_len")
        if self.kind == "rotary":
            return x
        return x + self.table[start:start + n].to(x.dtype)                 # (B, n, d_model)


class OutputHead(nn.Module):
    """Untied output projection: logits = h W_out + b_out, W_out (d_model, V)."""

    def __init__(self, d_model: int, vocab_size: int):
        super().__init__()
        self.weight = _normal((d_model, vocab_size), output_std(d_model))
        self.bias = nn.Parameter(torch.zeros(vocab_size))


def _output_logits(h, embedding: Embedding, head):
    if head is None:
        return h @ embedding.weight.T                                      # (B, n, V), tied
    return h @ head.weight + head.bias                                     # (B, n, V)


def _check_tokens(name, tokens, vocab_size):
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.dtype not in (torch.int64, torch.int32):
        got = f"{tokens.dtype} of shape {tuple(tokens.shape)}" if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise TypeError(f"{name} must be an integer tensor of shape (batch, tokens), got {got}")


class _Model(nn.Module):
    """What both models share: config, the layers' options, the cache."""

    def _stack_kw(self, need_weights: bool = False) -> dict:
        """Keyword arguments of the stack functions. The fused kernel does not produce the
        attention weights, so asking for them runs the formulas (the same numbers)."""
        c = self.config
        options = c.layer_options(training=self.training)
        if need_weights and options.fused:
            options = replace(options, fused=False)
        return dict(norm=c.norm, num_heads=c.num_heads, eps=c.eps, options=options)

    @staticmethod
    def new_cache() -> dict:
        """An empty KV cache for generation: {"length": tokens fed so far, "layers": [...]}."""
        return {"length": 0, "layers": []}


# --------------------------------------------------------------------------- models

class DecoderOnlyLM(_Model):
    """A decoder-only language model: tokens (B, n) -> next-token logits (B, n, V).

    x = Dropout(Embedding(tokens) + Positions); x = the causal stack of chapter 7's layers
    (:func:`helpers.layers.encoder` with ``causal=True``); (pre-LN: a final norm);
    logits = x W_e^T (tied) or x W_out + b_out.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.kind != "decoder":
            raise ValueError(f"DecoderOnlyLM needs a config of kind 'decoder', got {config.kind!r}")
        self.config = config
        self.embed = Embedding(config.vocab_size, config.d_model, config.scale_embeddings)
        self.positions = Positions(config.positions, config.max_len, config.d_model)
        self.layers = nn.ModuleList(LayerParameters(config, "encoder", config.num_layers)
                                    for _ in range(config.num_layers))
        self.final_norm = NormParameters(config) if config.norm == "pre" else None
        self.head = None if config.tie_embeddings else OutputHead(config.d_model, config.vocab_size)

    def params(self) -> dict:
        """The tensors of the stack as chapter 7's functions take them:
        {"layers": [layer params], "final_norm": {gamma[, beta]} or None}."""
        return {"layers": layer_params(self.layers),
                "final_norm": None if self.final_norm is None else self.final_norm.params()}

    def forward(self, tokens, cache=None, need_weights=False):
        """tokens (B, n) integers -> logits (B, n, V); with need_weights, (logits, weights)
        where weights is a list (one per layer) of (B, h, n, n_k) self-attention weights
        (this needs kernels="math": the fused kernel does not produce them).

        cache: a dict from :meth:`new_cache`; the tokens are then the ones after those
        already in the cache (generation with a KV cache).
        """
        _check_tokens("tokens", tokens, self.config.vocab_size)
        start = 0 if cache is None else cache["length"]
        x = self.positions(self.embed(tokens), start=start)                # (B, n, d_model)
        x = L.dropout(x, self.config.dropout if self.training else 0.0)
        p = self.params()
        x, weights = L.encoder(x, p["layers"], final_norm=p["final_norm"], causal=True,
                               caches=None if cache is None else cache["layers"],
                               return_weights=True, **self._stack_kw(need_weights))  # (B, n, d_model)
        if cache is not None:
            cache["length"] = start + tokens.shape[1]
        logits = _output_logits(x, self.embed, self.head)                  # (B, n, V)
        if need_weights:
            return logits, [w["self_attn"] for w in weights]
        return logits


class EncoderDecoderTransformer(_Model):
    """The paper's encoder-decoder Transformer (chapter 7's layers; Métwalli and Elhefny, §2).

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
        self.src_embed = Embedding(config.src_vocab_size, d, config.scale_embeddings)
        self.tgt_embed = Embedding(config.vocab_size, d, config.scale_embeddings)
        self.positions = Positions(config.positions, config.max_len, d)
        self.encoder = nn.ModuleList(LayerParameters(config, "encoder", config.num_encoder_layers)
                                     for _ in range(config.num_encoder_layers))
        self.decoder = nn.ModuleList(LayerParameters(config, "decoder", config.num_layers)
                                     for _ in range(config.num_layers))
        pre = config.norm == "pre"
        self.encoder_norm = NormParameters(config) if pre else None
        self.decoder_norm = NormParameters(config) if pre else None
        self.head = None if config.tie_embeddings else OutputHead(d, config.vocab_size)

    def params(self) -> dict:
        """The tensors of both stacks as :func:`helpers.layers.encoder_decoder` takes them."""
        return {"encoder": layer_params(self.encoder),
                "encoder_norm": None if self.encoder_norm is None else self.encoder_norm.params(),
                "decoder": layer_params(self.decoder),
                "decoder_norm": None if self.decoder_norm is None else self.decoder_norm.params()}

    def source_mask(self, src):
        """Key-padding mask (B, 1, n_src): True on real source tokens."""
        return (src != self.pad_id)[:, None, :]

    def _embedded(self, tokens, embedding, start=0):
        x = self.positions(embedding(tokens), start=start)                 # (B, n, d_model)
        return L.dropout(x, self.config.dropout if self.training else 0.0)

    def encode(self, src, need_weights=False):
        """src (B, n_src) -> memory (B, n_src, d_model) (and per-layer self-attention weights)."""
        _check_tokens("src", src, self.config.src_vocab_size)
        p = self.params()
        memory, weights = L.encoder(self._embedded(src, self.src_embed), p["encoder"],
                                    self.source_mask(src), final_norm=p["encoder_norm"],
                                    return_weights=True, **self._stack_kw(need_weights))  # (B, n_src, d_model)
        return (memory, [w["self_attn"] for w in weights]) if need_weights else memory

    def decode(self, tgt, memory, src_mask, cache=None, need_weights=False):
        """tgt (B, n_tgt) -> logits (B, n_tgt, V); with need_weights also a list (per layer)
        of {"self_attn": (B, h, n_tgt, n_tgt), "cross_attn": (B, h, n_tgt, n_src)} weights."""
        _check_tokens("tgt", tgt, self.config.vocab_size)
        start = 0 if cache is None else cache["length"]
        p = self.params()
        y, weights = L.decoder(self._embedded(tgt, self.tgt_embed, start), memory, p["decoder"],
                               memory_mask=src_mask, final_norm=p["decoder_norm"],
                               caches=None if cache is None else cache["layers"],
                               return_weights=True, **self._stack_kw(need_weights))  # (B, n_tgt, d_model)
        if cache is not None:
            cache["length"] = start + tgt.shape[1]
        logits = _output_logits(y, self.tgt_embed, self.head)              # (B, n_tgt, V)
        return (logits, weights) if need_weights else logits

    def forward(self, src, tgt, need_weights=False):
        """Teacher forcing: logits (B, n_tgt, V) for every target position at once."""
        if need_weights:
            memory, enc_weights = self.encode(src, need_weights=True)
            logits, dec_weights = self.decode(tgt, memory, self.source_mask(src), need_weights=True)
            return logits, {"encoder": enc_weights, "decoder": dec_weights}
        return self.decode(tgt, self.encode(src), self.source_mask(src))


def build_model(config: ModelConfig, pad_id: int = 0) -> nn.Module:
    """The model that ``config.kind`` names."""
    if config.kind == "decoder":
        return DecoderOnlyLM(config)
    return EncoderDecoderTransformer(config, pad_id=pad_id)


count_parameters = L.count_parameters


def parameter_formula(config: ModelConfig) -> int:
    """The parameter count from the formulas of chapters 7 and 12 (compare with
    :func:`count_parameters`): the layers' counts (:mod:`helpers.layers`), plus embeddings
    V d per table, learned positions max_len d, an untied output projection d V + V, and
    the pre-LN final norms, one per stack."""
    d, f, h = config.d_model, config.d_ff, config.num_heads
    options = config.layer_options()
    norm = L.layer_norm_parameter_count(d, config.normalization, config.bias)
    total = config.vocab_size * d
    if config.positions == "learned":
        total += config.max_len * d
    if not config.tie_embeddings:
        total += d * config.vocab_size + config.vocab_size
    if config.kind == "decoder":
        total += config.num_layers * L.encoder_layer_parameter_count(d, f, h, options, config.norm)
        stacks = 1
    else:
        total += config.src_vocab_size * d
        total += config.num_encoder_layers * L.encoder_layer_parameter_count(d, f, h, options, config.norm)
        total += config.num_layers * L.decoder_layer_parameter_count(d, f, h, options, config.norm)
        stacks = 2
    if config.norm == "pre":
        total += stacks * norm
    return total
