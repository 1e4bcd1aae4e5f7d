"""CLIP in miniature: two encoders and one symmetric contrastive loss, derived in chapter 13.

Radford et al. (*Learning Transferable Visual Models From Natural Language Supervision*,
ICML 2021) train an image encoder and a text encoder together on N (image, caption) pairs at
a time. Each encoder's output is projected into one shared space and normalised to length 1;
the N x N matrix of cosine similarities, multiplied by a learned scale s = 1/temperature,

    S[i, j] = s * (I_i / |I_i|) . (T_j / |T_j|),

is read twice as logits: row i says which caption belongs to image i, column j which image
belongs to caption j; the right answer is always the diagonal. The loss is the mean of the
two cross-entropies (:func:`contrastive_loss`, :func:`symmetric_cross_entropy`):

    L = ( CE(S, diag) + CE(S^T, diag) ) / 2.

The formulas are written once against the array API (NumPy and torch); the modules
(:class:`TextEncoder`, :class:`ContrastiveModel`) are thin torch shells over chapter 7's
:func:`helpers.layers.encoder`, and :class:`ContrastiveTask` lets chapter 11's
:class:`helpers.trainer.Trainer` train them on the digits of :mod:`helpers.vision`, each
image paired with a caption such as "a handwritten seven" or "the digit 7".
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import array_api_compat
import numpy as np
import torch
from torch import nn

from . import layers as L
from ._backend import namespace, require_float, shape
from .loss import cross_entropy
from .model import Embedding, LayerParameters, NormParameters, Positions, StoredConfig
from .tokenizers import CharTokenizer
from .vision import DIGIT_NAMES, VisionConfig, VisionTransformer

# --------------------------------------------------------------------------- the formulas


def normalize_rows(x, eps: float = 1e-12):
    """x / |x| row by row (the last axis), so that dot products are cosines: (..., d) -> (..., d).
    ``eps`` keeps an all-zero row at zero instead of dividing by zero."""
    xp = namespace("normalize_rows", x=x)
    require_float("normalize_rows", "x", x, xp)
    norm = xp.sqrt(xp.sum(x * x, axis=-1, keepdims=True))                 # (..., 1)
    floor = xp.asarray(eps, dtype=x.dtype, device=array_api_compat.device(x))
    return x / xp.maximum(norm, floor)


def _check_scale(func, logit_scale):
    """A number > 0, or a 0-d array (a trained torch scalar is not read back from its device)."""
    if isinstance(logit_scale, (int, float)) and not isinstance(logit_scale, bool):
        if not logit_scale > 0:
            raise ValueError(f"{func}: logit_scale must be > 0 (it is 1/temperature), got {logit_scale!r}")
    elif not hasattr(logit_scale, "shape") or len(logit_scale.shape) != 0:
        raise ValueError(f"{func}: logit_scale must be a number or a 0-d array (the multiplier "
                         f"1/temperature), got {type(logit_scale).__name__} of shape "
                         f"{getattr(logit_scale, 'shape', None)}")


def similarity_logits(image_emb, text_emb, logit_scale):
    """S = logit_scale * normalize(image_emb) normalize(text_emb)^T: (N, d), (M, d) -> (N, M).

    ``logit_scale`` is the multiplier s = 1/temperature (CLIP's exp(t), a number or a 0-d
    array, which may be a trained tensor). Derived in chapter 13.
    """
    func = "similarity_logits"
    scale_array = logit_scale if hasattr(logit_scale, "shape") else None
    xp = namespace(func, image_emb=image_emb, text_emb=text_emb, logit_scale=scale_array)
    for name, a in (("image_emb", image_emb), ("text_emb", text_emb)):
        if len(a.shape) != 2:
            raise ValueError(f"{func}: {name} must have shape (N, d), got {shape(a)}")
        require_float(func, name, a, xp)
    if image_emb.shape[1] != text_emb.shape[1]:
        raise ValueError(f"{func}: image_emb has shape {shape(image_emb)} and text_emb has shape "
                         f"{shape(text_emb)}: both must live in the same space (same d)")
    _check_scale(func, logit_scale)
    cosines = normalize_rows(image_emb) @ xp.permute_dims(normalize_rows(text_emb), (1, 0))  # (N, M)
    return logit_scale * cosines


def symmetric_cross_entropy(logits, *, fused: bool = False):
    """(CE(logits, diag) + CE(logits^T, diag)) / 2 for a square (N, N) matrix of logits.

    Row i: the N captions as classes for image i, the right one being i (image -> text);
    column j: the N images as classes for caption j (text -> image). Uses
    :func:`helpers.cross_entropy` (chapter 8). Derived in chapter 13.
    """
    func = "symmetric_cross_entropy"
    xp = namespace(func, logits=logits)
    if len(logits.shape) != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(f"{func}: logits must be a square (N, N) matrix (pair i matches pair i), "
                         f"got shape {shape(logits)}")
    targets = xp.arange(logits.shape[0], device=array_api_compat.device(logits))   # (N,): the diagonal
    image_to_text = cross_entropy(logits, targets, fused=fused)                    # rows
    text_to_image = cross_entropy(xp.permute_dims(logits, (1, 0)), targets, fused=fused)  # columns
    return (image_to_text + text_to_image) / 2


def contrastive_loss(image_emb, text_emb, logit_scale, *, fused: bool = False):
    """CLIP's symmetric contrastive loss of N matching pairs (row i of each is pair i).

    L = (CE(S, diag) + CE(S^T, diag)) / 2 with S = :func:`similarity_logits` (image_emb,
    text_emb, logit_scale), (N, N). Shapes: image_emb (N, d), text_emb (N, d); logit_scale the
    multiplier 1/temperature. Returns a scalar. Derived in chapter 13.
    """
    if shape(image_emb)[:1] != shape(text_emb)[:1]:
        raise ValueError(f"contrastive_loss: image_emb has shape {shape(image_emb)} and text_emb has "
                         f"shape {shape(text_emb)}: they must hold the same number N of pairs")
    return symmetric_cross_entropy(similarity_logits(image_emb, text_emb, logit_scale), fused=fused)


def recall_at_k(scores, relevant, k: int) -> float:
    """The fraction of queries (rows) with at least one relevant item among their k best-scored.

    scores (Q, M) float, relevant (Q, M) boolean. Ties are broken by the item's index (a
    stable sort), so the number does not depend on the backend."""
    func = "recall_at_k"
    xp = namespace(func, scores=scores, relevant=relevant)
    if len(scores.shape) != 2 or shape(scores) != shape(relevant):
        raise ValueError(f"{func}: scores and relevant must both have shape (queries, items), got "
                         f"{shape(scores)} and {shape(relevant)}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= scores.shape[1]:
        raise ValueError(f"{func}: k must be an integer in 1..{scores.shape[1]}, got {k!r}")
    order = xp.argsort(-scores, axis=1, stable=True)[:, :k]                        # (Q, k) best first
    hits = xp.take_along_axis(xp.astype(relevant, xp.int64), order, axis=1)       # (Q, k)
    return float(xp.mean(xp.astype(xp.max(hits, axis=1), xp.float64)))


# --------------------------------------------------------------------------- captions

ARTICLES = {"eight": "an"}                 # "an eight"; every other digit's name takes "a"
TRAIN_TEMPLATES = ("a handwritten {word}", "the digit {numeral}", "the number {word}", "{numeral}",
                   "{word}", "a picture of the digit {word}")
HELD_OUT_TEMPLATES = ("a photo of {article} {word}", "this is the number {numeral}")
ALPHABET = " abcdefghijklmnopqrstuvwxyz0123456789"


def caption(digit: int, template: str) -> str:
    """The caption of ``digit`` (0..9) in ``template`` ({word}, {numeral}, {article})."""
    if isinstance(digit, bool) or not isinstance(digit, (int, np.integer)) or not 0 <= digit <= 9:
        raise ValueError(f"caption: digit must be an integer 0..9, got {digit!r}")
    word = DIGIT_NAMES[digit]
    return template.format(word=word, numeral=str(int(digit)), article=ARTICLES.get(word, "a"))


def caption_tokenizer() -> CharTokenizer:
    """Characters of :data:`ALPHABET`, with "<pad>" as id 0."""
    return CharTokenizer(ALPHABET, specials=("<pad>",))


def encode_captions(tokenizer: CharTokenizer, captions, length: int) -> torch.Tensor:
    """Token ids (len(captions), length), padded with id 0 at the end."""
    out = torch.zeros(len(captions), length, dtype=torch.int64)
    for i, text in enumerate(captions):
        ids = tokenizer.encode(text)
        if len(ids) > length:
            raise ValueError(f"encode_captions: {text!r} has {len(ids)} characters, more than length={length}")
        out[i, :len(ids)] = torch.tensor(ids, dtype=torch.int64)
    return out


# --------------------------------------------------------------------------- the model


@dataclass
class TextConfig(StoredConfig):
    """A small character Transformer over captions (chapter 7's encoder, pre-norm).

    vocab_size (pad id 0), max_len (characters), d_model, num_heads, num_layers, d_ff (default
    4 d_model), and the layer options of :class:`helpers.vision.VisionConfig`. Its output is
    the mean of the final vectors of the caption's real characters (padding left out)."""

    vocab_size: int
    max_len: int = 32
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int | None = None
    norm: str = "pre"
    normalization: str = "layer_norm"
    ffn: str = "gelu"
    bias: bool = True
    dropout: float = 0.0
    kernels: str = "fused"
    eps: float = 1e-6

    def __post_init__(self):
        if self.d_ff is None and isinstance(self.d_model, int):
            self.d_ff = 4 * self.d_model
        for name in ("vocab_size", "max_len", "d_model", "num_heads", "num_layers", "d_ff"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TextConfig: {name} must be a positive integer, got {value!r}")
        if self.d_model % self.num_heads:
            raise ValueError(f"TextConfig: num_heads={self.num_heads} must divide d_model={self.d_model}")
        if self.kernels not in ("fused", "math"):
            raise ValueError(f"TextConfig: kernels must be 'fused' or 'math', got {self.kernels!r}")
        self.layer_options()

    def layer_options(self, training: bool = False) -> L.LayerOptions:
        return L.LayerOptions(normalization=self.normalization, ffn=self.ffn, bias=self.bias,
                              fused=self.kernels == "fused", dropout=self.dropout if training else 0.0)


class TextEncoder(nn.Module):
    """Caption tokens (B, n) (pad id 0) -> one vector per caption (B, d_model).

    x = Embedding(tokens) + learned positions (helpers.model's modules); chapter 7's encoder
    stack with a key-padding mask; final norm; the mean over the real characters."""

    def __init__(self, config: TextConfig):
        super().__init__()
        self.config = config
        self.embed = Embedding(config.vocab_size, config.d_model, scale=False)
        self.positions = Positions("learned", config.max_len, config.d_model)
        self.layers = nn.ModuleList(LayerParameters(config, "encoder", config.num_layers)
                                    for _ in range(config.num_layers))
        self.final_norm = NormParameters(config) if config.norm == "pre" else None

    def forward(self, tokens):
        c = self.config
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or torch.is_floating_point(tokens):
            got = getattr(tokens, "dtype", type(tokens).__name__)
            raise TypeError(f"TextEncoder: tokens must be an integer tensor (B, n), got {got} "
                            f"of shape {getattr(tokens, 'shape', None)}")
        real = tokens != 0                                                 # (B, n)
        x = self.positions(self.embed(tokens))                             # (B, n, d)
        x = L.dropout(x, c.dropout if self.training else 0.0)
        x = L.encoder(x, [layer.params() for layer in self.layers], real[:, None, :], norm=c.norm,
                      final_norm=None if self.final_norm is None else self.final_norm.params(),
                      num_heads=c.num_heads, eps=c.eps, options=c.layer_options(self.training))  # (B, n, d)
        weights = real.to(x.dtype)[..., None]                              # (B, n, 1)
        return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)        # (B, d)


INITIAL_TEMPERATURE = 0.07      # CLIP's starting temperature: logit scale 1/0.07 = 14.3
MAX_LOGIT_SCALE = 100.0         # CLIP clips the learned scale here


@dataclass
class ContrastiveConfig:
    """The two encoders and the shared space of :class:`ContrastiveModel`. ``d_model`` and
    ``kernels`` are what the Trainer reads (d_model: the shared width embed_dim)."""

    image: VisionConfig
    text: TextConfig
    embed_dim: int = 64

    def __post_init__(self):
        if self.image.num_classes is not None:
            raise ValueError("ContrastiveConfig: the image encoder has no classification head; "
                             "give it VisionConfig(num_classes=None)")
        if isinstance(self.embed_dim, bool) or not isinstance(self.embed_dim, int) or self.embed_dim < 1:
            raise ValueError(f"ContrastiveConfig: embed_dim must be a positive integer, got {self.embed_dim!r}")

    @property
    def d_model(self) -> int:
        return self.embed_dim

    @property
    def kernels(self) -> str:
        return self.image.kernels

    def to_dict(self) -> dict:
        return {"image": self.image.to_dict(), "text": self.text.to_dict(), "embed_dim": self.embed_dim}

    @classmethod
    def from_dict(cls, values: dict) -> "ContrastiveConfig":
        unknown = sorted(set(values) - {"image", "text", "embed_dim"})
        if unknown:
            raise ValueError(f"ContrastiveConfig: unknown fields {unknown}")
        return cls(VisionConfig.from_dict(values["image"]), TextConfig.from_dict(values["text"]),
                   values.get("embed_dim", 64))


class ContrastiveModel(nn.Module):
    """CLIP in miniature: (images, caption tokens) -> (image_emb, text_emb), each (B, embed_dim).

    image_emb = ViT(images)[CLS] W_image, text_emb = TextEncoder(tokens) W_text (linear
    projections without bias, as in CLIP); ``log_logit_scale`` is the learned log of the
    scale s = 1/temperature, starting at ln(1/0.07); :attr:`logit_scale` = min(exp(.), 100).
    """

    def __init__(self, config: ContrastiveConfig):
        super().__init__()
        self.config = config
        self.image_encoder = VisionTransformer(config.image)
        self.text_encoder = TextEncoder(config.text)
        e = config.embed_dim
        self.w_image = nn.Parameter(torch.randn(config.image.d_model, e) * config.image.d_model ** -0.5)
        self.w_text = nn.Parameter(torch.randn(config.text.d_model, e) * config.text.d_model ** -0.5)
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(1 / INITIAL_TEMPERATURE)))

    @property
    def logit_scale(self):
        return self.log_logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def encode_images(self, images):
        return self.image_encoder(images) @ self.w_image                  # (B, embed_dim)

    def encode_texts(self, tokens):
        return self.text_encoder(tokens) @ self.w_text                    # (B, embed_dim)

    def forward(self, images, tokens):
        return self.encode_images(images), self.encode_texts(tokens)


class DigitCaptionBatches:
    """Batches of ten (image, caption) pairs, one per digit: a random training image of each
    digit with its caption in a random template. One per digit, so that every image has
    exactly one matching caption in its batch. State: the generator."""

    def __init__(self, images, labels, tokens_by_template, seed: int = 0):
        self.images, self.labels = images, labels
        self.tokens = tokens_by_template                                   # (templates, 10, n)
        self.by_digit = [torch.nonzero(labels == d).flatten() for d in range(10)]
        self.generator = torch.Generator().manual_seed(seed)

    def __next__(self):
        g = self.generator
        idx = torch.stack([ids[torch.randint(len(ids), (1,), generator=g)][0] for ids in self.by_digit])
        templates = torch.randint(self.tokens.shape[0], (10,), generator=g)
        return self.images[idx], self.tokens[templates, torch.arange(10)]  # (10, H, W), (10, n)

    def __iter__(self):
        return self

    def state_dict(self):
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state):
        self.generator.set_state(state["generator"])


class ContrastiveTask:
    """Digit images paired with captions, for :class:`helpers.trainer.Trainer`.

    ``splits``: {split: (images, labels)} as :func:`helpers.vision.load_digits_split` gives.
    Training captions use :data:`TRAIN_TEMPLATES`; the loss is :func:`contrastive_loss` of
    the model's two embeddings with its learned scale. Batches hold ten pairs (one per digit);
    ``batch_size`` must be 10.
    """

    kind = "contrastive"

    def __init__(self, splits: dict, templates=TRAIN_TEMPLATES, max_len: int = 32, name: str = "digit captions"):
        self.splits, self.templates, self.max_len, self.name = splits, tuple(templates), max_len, name
        self.tokenizer = caption_tokenizer()
        captions = [[caption(d, t) for d in range(10)] for t in self.templates]
        self.template_tokens = torch.stack([encode_captions(self.tokenizer, row, max_len) for row in captions])

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "templates": list(self.templates),
                "max_len": self.max_len, "alphabet": ALPHABET}

    def _batches(self, split, seed):
        return DigitCaptionBatches(*self.splits[split], self.template_tokens, seed=seed)

    def sampler(self, batch_size: int, seed: int):
        if batch_size != 10:
            raise ValueError(f"ContrastiveTask: batches hold one pair per digit, so batch_size must be 10, "
                             f"got {batch_size}")
        return self._batches("train", seed)

    def eval_batches(self, split: str, batch_size: int, n_batches: int, seed: int = 0):
        batches = self._batches(split, seed)
        return [next(batches) for _ in range(n_batches)]

    @staticmethod
    def tokens_in(batch) -> int:
        return int(batch[0].shape[0])

    @staticmethod
    def loss(model, batch, fused: bool = False, label_smoothing: float = 0.0):
        images, tokens = batch
        image_emb, text_emb = model(images, tokens)                        # (B, e), (B, e)
        return contrastive_loss(image_emb.float(), text_emb.float(), model.logit_scale, fused=fused)
