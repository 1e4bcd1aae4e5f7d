"""Extractive question answering as two softmaxes over the context, derived in chapter 13.

BERT (Devlin et al., NAACL 2019) answers a SQuAD question (Rajpurkar et al., EMNLP 2016) by
pointing at the answer inside the given text. The encoder of chapter 7 reads
``[CLS] question [SEP] context``; one vector per token comes out, h_1 .. h_n. Two learned
vectors w_start, w_end score every position,

    s_i = h_i . w_start + b_start,    e_j = h_j . w_end + b_end,

and softmaxes over the context's positions turn them into P(start = i) and P(end = j).
Training minimises CE(start) + CE(end) (:func:`span_loss`); answering picks the span
i <= j with the largest s_i + e_j (:func:`best_span`), i.e. the largest
log P(start = i) + log P(end = j).

The formulas are written once against the array API (NumPy and torch). :class:`FactQA`
generates a task small enough to train in the chapter (facts about coloured objects and
questions about them), :class:`SpanQAModel` is a thin torch shell over
:func:`helpers.layers.encoder`, and :class:`SpanQATask` lets chapter 11's
:class:`helpers.trainer.Trainer` train it.
"""
from __future__ import annotations

from dataclasses import dataclass

import array_api_compat
import numpy as np
import torch
from torch import nn

from . import layers as L
from ._backend import namespace, require_float, shape
from .data import PairBatches
from .loss import cross_entropy
from .model import Embedding, LayerParameters, NormParameters, Positions, StoredConfig, initial_value

# --------------------------------------------------------------------------- the formulas


def span_loss(start_logits, end_logits, start, end, *, fused: bool = False):
    """CE(start) + CE(end): the mean cross-entropy of the true start position under
    softmax(start_logits) plus that of the true end position under softmax(end_logits).

    Shapes: start_logits, end_logits (B, n) (positions outside the context set to -inf by the
    caller, so that the softmaxes run over the context only); start, end (B,) integers.
    Returns a scalar. Uses :func:`helpers.cross_entropy` (chapter 8). Derived in chapter 13.
    """
    func = "span_loss"
    namespace(func, start_logits=start_logits, end_logits=end_logits, start=start, end=end)
    if len(start_logits.shape) != 2 or shape(start_logits) != shape(end_logits):
        raise ValueError(f"{func}: start_logits and end_logits must both have shape (B, n), got "
                         f"{shape(start_logits)} and {shape(end_logits)}")
    for name, t in (("start", start), ("end", end)):
        if shape(t) != shape(start_logits)[:1]:
            raise ValueError(f"{func}: {name} must have shape ({start_logits.shape[0]},), got {shape(t)}")
    return cross_entropy(start_logits, start, fused=fused) + cross_entropy(end_logits, end, fused=fused)


def best_span(start_logits, end_logits, allowed=None, max_length: int | None = None):
    """The span (i, j) with i <= j that maximises start_logits[i] + end_logits[j].

    Shapes: start_logits, end_logits (B, n); allowed: boolean (B, n) or None, True on the
    positions an answer may use (the context); max_length: longest span in tokens (j - i + 1),
    or None. Returns (start, end), two integer arrays (B,). Ties go to the smallest i, then
    the smallest j. Derived in chapter 13.
    """
    func = "best_span"
    xp = namespace(func, start_logits=start_logits, end_logits=end_logits, allowed=allowed)
    if len(start_logits.shape) != 2 or shape(start_logits) != shape(end_logits):
        raise ValueError(f"{func}: start_logits and end_logits must both have shape (B, n), got "
                         f"{shape(start_logits)} and {shape(end_logits)}")
    for name, a in (("start_logits", start_logits), ("end_logits", end_logits)):
        require_float(func, name, a, xp)
    B, n = shape(start_logits)
    if allowed is not None and shape(allowed) != (B, n):
        raise ValueError(f"{func}: allowed must have shape {(B, n)}, got {shape(allowed)}")
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)
                                   or max_length < 1):
        raise ValueError(f"{func}: max_length must be a positive integer or None, got {max_length!r}")
    device = array_api_compat.device(start_logits)
    i = xp.arange(n, device=device)[:, None]                               # (n, 1) start
    j = xp.arange(n, device=device)[None, :]                               # (1, n) end
    valid = j >= i                                                         # (n, n)
    if max_length is not None:
        valid = valid & (j - i < max_length)
    valid = xp.broadcast_to(valid[None], (B, n, n))                        # (B, n, n)
    if allowed is not None:
        valid = valid & allowed[:, :, None] & allowed[:, None, :]
    if not bool(xp.all(xp.any(xp.reshape(valid, (B, n * n)), axis=1))):
        raise ValueError(f"{func}: some row allows no span at all (check allowed and max_length)")
    scores = start_logits[:, :, None] + end_logits[:, None, :]             # (B, n, n): s_i + e_j
    scores = xp.where(valid, scores, xp.full_like(scores, -float("inf")))
    flat = xp.argmax(xp.reshape(scores, (B, n * n)), axis=1)               # (B,) first maximum
    return flat // n, flat % n


def exact_match(pred_start, pred_end, start, end) -> float:
    """The fraction of answers whose predicted span is exactly the true one (SQuAD's EM, on
    token positions)."""
    xp = namespace("exact_match", pred_start=pred_start, pred_end=pred_end, start=start, end=end)
    hits = (pred_start == start) & (pred_end == end)
    return float(xp.mean(xp.astype(hits, xp.float64)))


# --------------------------------------------------------------------------- a generated task

COLOURS = ("red", "blue", "green", "yellow", "black", "white")
OBJECTS = ("box", "ball", "cup", "book", "key", "hat")
PREPOSITIONS = ("on", "under", "in", "near", "behind")
PLACES = ("the table", "the bed", "the garden", "the kitchen", "the old chair", "the top shelf",
          "the blue sofa", "the big tree", "the red car", "the door")
SPECIALS = ("<pad>", "[CLS]", "[SEP]")
QUESTION_KINDS = ("where", "what")


def _words() -> list[str]:
    words = ["the", "is", "where", "what", "?", ".", *COLOURS, *OBJECTS, *PREPOSITIONS]
    for place in PLACES:
        words += place.split()
    return list(SPECIALS) + sorted(set(words) - set(SPECIALS))


@dataclass
class QAExample:
    """One example: words of the question and of the context, and the answer's word span
    inside the context (first and last word, inclusive)."""

    question: list
    context: list
    answer_start: int
    answer_end: int

    @property
    def answer(self) -> str:
        return " ".join(self.context[self.answer_start:self.answer_end + 1])


class FactQA:
    """Questions about facts stated in generated sentences.

    A context states 2 to 4 facts, "the red box is under the old chair .", each about a
    different object of a colour, each at a different place; objects share colours and kinds
    with each other, so that a question names both. Questions are of two kinds:
    "where is the red box ?" (answer: "under the old chair") and "what is under the old
    chair ?" (answer: "the red box"). Words are tokens; :attr:`vocab` lists them (pad id 0).
    """

    def __init__(self, min_facts: int = 2, max_facts: int = 4):
        if not 1 <= min_facts <= max_facts <= len(PLACES):
            raise ValueError(f"FactQA: need 1 <= min_facts <= max_facts <= {len(PLACES)}, "
                             f"got {min_facts}, {max_facts}")
        self.min_facts, self.max_facts = min_facts, max_facts
        self.vocab = _words()
        self.ids = {w: i for i, w in enumerate(self.vocab)}
        self.max_question = 7                                              # "what is under the old chair ?"
        self.max_context = max_facts * 9                                   # "the red box is under the old chair ."
        self.max_len = 2 + self.max_question + self.max_context            # [CLS] question [SEP] context

    def example(self, rng: np.random.Generator) -> QAExample:
        k = int(rng.integers(self.min_facts, self.max_facts + 1))
        pairs = [(c, o) for c in COLOURS for o in OBJECTS]
        chosen = [pairs[i] for i in rng.choice(len(pairs), size=k, replace=False)]
        places = [PLACES[i] for i in rng.choice(len(PLACES), size=k, replace=False)]
        preps = [PREPOSITIONS[i] for i in rng.integers(0, len(PREPOSITIONS), size=k)]
        context, spans = [], []
        for (colour, obj), prep, place in zip(chosen, preps, places):
            start = len(context)
            context += ["the", colour, obj, "is", prep, *place.split(), "."]
            spans.append({"thing": (start, start + 2), "where": (start + 4, len(context) - 2)})
        asked = int(rng.integers(k))
        colour, obj = chosen[asked]
        if QUESTION_KINDS[int(rng.integers(2))] == "where":
            question = ["where", "is", "the", colour, obj, "?"]
            first, last = spans[asked]["where"]
        else:
            question = ["what", "is", preps[asked], *places[asked].split(), "?"]
            first, last = spans[asked]["thing"]
        return QAExample(question, context, first, last)

    def examples(self, n: int, seed: int) -> list:
        rng = np.random.default_rng(seed)
        return [self.example(rng) for _ in range(n)]

    def encode(self, examples) -> tuple:
        """Token ids (B, max_len) of "[CLS] question [SEP] context" padded with 0, and the
        answer's (start, end) positions in that sequence, (B, 2)."""
        tokens = torch.zeros(len(examples), self.max_len, dtype=torch.int64)
        spans = torch.zeros(len(examples), 2, dtype=torch.int64)
        for b, ex in enumerate(examples):
            words = ["[CLS]", *ex.question, "[SEP]", *ex.context]
            tokens[b, :len(words)] = torch.tensor([self.ids[w] for w in words])
            offset = len(ex.question) + 2                                  # where the context starts
            spans[b] = torch.tensor([offset + ex.answer_start, offset + ex.answer_end])
        return tokens, spans

    def decode(self, ids) -> list:
        return [self.vocab[int(i)] for i in ids if int(i) != 0]


def context_mask(tokens, sep_id: int, pad_id: int = 0):
    """True on the context's tokens: after [SEP], not padding. tokens (B, n) -> (B, n) bool."""
    after_sep = torch.cumsum((tokens == sep_id).to(torch.int64), dim=1) > 0   # (B, n), [SEP] included
    return after_sep & (tokens != sep_id) & (tokens != pad_id)


# --------------------------------------------------------------------------- the model


@dataclass
class QAConfig(StoredConfig):
    """The encoder that reads "[CLS] question [SEP] context" (pre-norm, as the other models
    of chapter 13), and the span head. Names as in :class:`helpers.model.ModelConfig`."""

    vocab_size: int
    max_len: int
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int | None = None
    positions: str = "learned"
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
                raise ValueError(f"QAConfig: {name} must be a positive integer, got {value!r}")
        if self.positions not in ("learned", "rotary"):
            raise ValueError(f"QAConfig: positions must be 'learned' or 'rotary', got {self.positions!r}")
        if self.d_model % self.num_heads:
            raise ValueError(f"QAConfig: num_heads={self.num_heads} must divide d_model={self.d_model}")
        if self.kernels not in ("fused", "math"):
            raise ValueError(f"QAConfig: kernels must be 'fused' or 'math', got {self.kernels!r}")
        self.layer_options()

    def layer_options(self, training: bool = False) -> L.LayerOptions:
        return L.LayerOptions(normalization=self.normalization, ffn=self.ffn, bias=self.bias,
                              rotary_theta=10000.0 if self.positions == "rotary" else None,
                              fused=self.kernels == "fused", dropout=self.dropout if training else 0.0)


class SpanQAModel(nn.Module):
    """tokens (B, n) (pad id 0) -> (start_logits, end_logits), each (B, n).

    h = chapter 7's encoder stack over Embedding(tokens) + learned positions (key-padding
    mask), then the final norm; [s, e] = h W_span + b_span with W_span (d_model, 2): column 0
    is w_start, column 1 is w_end.
    """

    def __init__(self, config: QAConfig):
        super().__init__()
        self.config = config
        self.embed = Embedding(config.vocab_size, config.d_model, scale=False)
        self.positions = Positions(config.positions, config.max_len, config.d_model)
        self.layers = nn.ModuleList(LayerParameters(config, "encoder", config.num_layers)
                                    for _ in range(config.num_layers))
        self.final_norm = NormParameters(config) if config.norm == "pre" else None
        self.span = nn.ParameterDict({"w": initial_value("w", (config.d_model, 2)),
                                      "b": initial_value("b", (2,))})

    def forward(self, tokens):
        c = self.config
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or torch.is_floating_point(tokens):
            raise TypeError(f"SpanQAModel: tokens must be an integer tensor (B, n), got "
                            f"{getattr(tokens, 'dtype', type(tokens).__name__)}")
        x = self.positions(self.embed(tokens))                             # (B, n, d)
        x = L.dropout(x, c.dropout if self.training else 0.0)
        real = (tokens != 0)[:, None, :]                                   # (B, 1, n) key padding
        h = L.encoder(x, [layer.params() for layer in self.layers], real, norm=c.norm,
                      final_norm=None if self.final_norm is None else self.final_norm.params(),
                      num_heads=c.num_heads, eps=c.eps, options=c.layer_options(self.training))  # (B, n, d)
        scores = h @ self.span["w"] + self.span["b"]                       # (B, n, 2)
        return scores[..., 0], scores[..., 1]                              # (B, n), (B, n)


def masked_logits(logits, allowed):
    """logits with -inf wherever ``allowed`` is False (so a softmax gives them weight 0)."""
    return logits.masked_fill(~allowed, float("-inf"))


class SpanQATask:
    """:class:`FactQA` for :class:`helpers.trainer.Trainer`: a batch is (tokens (B, n),
    spans (B, 2)); the loss is :func:`span_loss` over the context's positions only.

    ``sizes``: examples per split, generated with different seeds (train, val, test)."""

    kind = "span-qa"

    def __init__(self, facts: FactQA | None = None, sizes=None, name: str = "facts"):
        self.facts = facts or FactQA()
        self.sizes = dict(sizes or {"train": 20000, "val": 500, "test": 1000})
        self.name = name
        self.sep_id = self.facts.ids["[SEP]"]
        seeds = {"train": 1, "val": 2, "test": 3}
        self.examples = {split: self.facts.examples(n, seed=seeds[split]) for split, n in self.sizes.items()}
        self.tensors = {split: self.facts.encode(ex) for split, ex in self.examples.items()}

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "vocab": list(self.facts.vocab), "sizes": self.sizes}

    def model_config(self, **overrides) -> QAConfig:
        return QAConfig(**{"vocab_size": len(self.facts.vocab), "max_len": self.facts.max_len, **overrides})

    def sampler(self, batch_size: int, seed: int):
        return PairBatches(*self.tensors["train"], batch_size, seed=seed)

    def eval_batches(self, split: str, batch_size: int, n_batches: int, seed: int = 0):
        tokens, spans = self.tensors[split]
        n = min(len(tokens), batch_size * n_batches)
        return [(tokens[i:i + batch_size], spans[i:i + batch_size]) for i in range(0, n, batch_size)]

    @staticmethod
    def tokens_in(batch) -> int:
        return int((batch[0] != 0).sum())

    def loss(self, model, batch, fused: bool = False, label_smoothing: float = 0.0):
        tokens, spans = batch
        allowed = context_mask(tokens, self.sep_id)                        # (B, n)
        start_logits, end_logits = model(tokens)                           # (B, n), (B, n)
        return span_loss(masked_logits(start_logits.float(), allowed), masked_logits(end_logits.float(), allowed),
                         spans[:, 0], spans[:, 1], fused=fused)

    @torch.no_grad()
    def predict(self, model, tokens, max_length: int | None = None, batch_size: int = 500):
        """The best span of every example (start (B,), end (B,)), in eval mode."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        starts, ends = [], []
        for i in range(0, len(tokens), batch_size):
            t = tokens[i:i + batch_size].to(device)
            s, e = model(t)
            first, last = best_span(s.float(), e.float(), context_mask(t, self.sep_id), max_length)
            starts.append(first.cpu())
            ends.append(last.cpu())
        model.train(was_training)
        return torch.cat(starts), torch.cat(ends)
