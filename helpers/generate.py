"""Generation, token by token, derived in chapter 11 (Métwalli and Elhefny, §2.3: "encode the
input, then decode token by token").

* :func:`greedy_decode` / :func:`greedy_translate`: the encoder-decoder reads the source
  once, then the decoder starts from <bos> and appends its most likely next token until
  it writes <eos>.
* :func:`sample`: the language model continues a prompt, drawing each next token from
  softmax(logits / temperature), optionally among the ``top_k`` likeliest only.

With ``use_cache=True`` each step feeds only the newest token: the keys and values of the
earlier ones are kept per layer (the KV cache), so a step costs O(n d) instead of
recomputing all n positions. The results equal the uncached ones (tests/test_generate.py).
"""
from __future__ import annotations

import math

import torch

import helpers

from .data import BOS, EOS, PAD
from .tokenizers import Vocabulary


def next_token_probabilities(logits, temperature: float = 1.0, top_k: int | None = None):
    """softmax(logits / temperature) over the last axis, restricted to the top_k likeliest.

    Shapes: logits (..., V) -> probabilities (..., V). Tokens outside the top k get
    probability exactly 0 (their logits become -inf before the softmax, as masks do).
    temperature -> 0 approaches the one-hot of the argmax; temperature = 0 is not allowed
    here (use greedy decoding).
    """
    if not temperature > 0:
        raise ValueError(f"next_token_probabilities: temperature must be > 0, got {temperature!r}")
    scaled = logits.float() / temperature
    if top_k is not None:
        scaled = top_k_filter(scaled, top_k)
    return helpers.softmax(scaled, axis=-1)


def top_k_filter(logits, k: int):
    """Keep the k largest logits of each row, set the others to -inf. Shapes: (..., V)."""
    v = logits.shape[-1]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= v:
        raise ValueError(f"top_k_filter: k must be an integer in 1..{v} (V = logits.shape[-1]), got {k!r}")
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, -math.inf)


@torch.no_grad()
def greedy_decode(model, src, bos_id: int, eos_id: int, pad_id: int = 0, max_len: int | None = None,
                  use_cache: bool = True):
    """Greedy decoding with the encoder-decoder: returns target ids (B, n) starting with <bos>.

    memory = encode(src) once; then y_0 = <bos> and y_{t+1} = argmax p(. | y_0..y_t, src),
    until every sequence has written <eos> or max_len tokens exist (default
    model.config.max_len). After its <eos> a sequence is padded with ``pad_id``.
    """
    model.eval()
    max_len = max_len or model.config.max_len
    memory = model.encode(src)
    src_mask = model.source_mask(src)
    batch = src.shape[0]
    tokens = torch.full((batch, 1), bos_id, dtype=torch.long, device=src.device)
    done = torch.zeros(batch, dtype=torch.bool, device=src.device)
    cache = model.new_cache() if use_cache else None
    while tokens.shape[1] < max_len and not bool(done.all()):
        step_input = tokens[:, -1:] if use_cache else tokens
        logits = model.decode(step_input, memory, src_mask, cache=cache)
        next_id = logits[:, -1].argmax(dim=-1)
        next_id = torch.where(done, torch.full_like(next_id, pad_id), next_id)
        tokens = torch.cat([tokens, next_id[:, None]], dim=1)
        done |= next_id == eos_id
    return tokens


def greedy_translate(model, src, tgt_vocab: Vocabulary, max_len: int | None = None,
                     use_cache: bool = True, batch_size: int = 1000) -> list[str]:
    """Greedy-decode every row of src (B, n_src) and return the target strings."""
    out = []
    for i in range(0, src.shape[0], batch_size):
        ids = greedy_decode(model, src[i:i + batch_size], tgt_vocab[BOS], tgt_vocab[EOS], tgt_vocab[PAD],
                            max_len=max_len, use_cache=use_cache)
        for row in ids.tolist():
            row = row[1:]
            if tgt_vocab[EOS] in row:
                row = row[:row.index(tgt_vocab[EOS])]
            out.append(tgt_vocab.decode(row))
    return out


@torch.no_grad()
def sample(model, prompt, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
           generator: torch.Generator | None = None, use_cache: bool = True):
    """Continue ``prompt`` (B, n) ids with the language model; returns (B, n + max_new_tokens).

    Each new token is drawn from :func:`next_token_probabilities` of the last position's
    logits (temperature 0: the argmax, greedy). The model sees at most ``max_len`` tokens:
    while the sequence fits, the KV cache (if used) feeds one token per step; beyond that
    both ways recompute the last ``max_len`` tokens (a sliding window).
    """
    if max_new_tokens < 0:
        raise ValueError(f"sample: max_new_tokens must be >= 0, got {max_new_tokens}")
    model.eval()
    max_len = model.config.max_len
    tokens = prompt
    cache = model.new_cache() if use_cache else None
    fed = 0  # tokens already in the cache
    for _ in range(max_new_tokens):
        if cache is not None and tokens.shape[1] <= max_len:
            logits = model(tokens[:, fed:], cache=cache)
            fed = tokens.shape[1]
        else:
            logits = model(tokens[:, -max_len:])
        last = logits[:, -1]
        if temperature == 0:
            next_id = last.argmax(dim=-1, keepdim=True)
        else:
            probs = next_token_probabilities(last, temperature, top_k)
            next_id = torch.multinomial(probs, 1, generator=generator)
        tokens = torch.cat([tokens, next_id], dim=1)
    return tokens


def sample_text(model, vocab: Vocabulary, prompt: str, length: int, temperature: float = 1.0,
                top_k: int | None = None, generator=None, use_cache: bool = True) -> str:
    """The prompt followed by ``length`` sampled characters."""
    device = next(model.parameters()).device
    ids = torch.tensor([vocab.encode(prompt)], dtype=torch.long, device=device)
    if ids.shape[1] == 0:
        raise ValueError("sample_text: the prompt must hold at least one character")
    out = sample(model, ids, length, temperature=temperature, top_k=top_k, generator=generator,
                 use_cache=use_cache)
    return vocab.decode(out[0].tolist())


# --------------------------------------------------------------------------- beam search

def length_penalty(length, alpha: float = 0.6):
    """GNMT's length normalisation lp(|Y|) = ((5 + |Y|) / 6)^alpha (Wu et al. 2016, used by
    the paper with alpha = 0.6): a hypothesis of |Y| tokens is ranked by log P(Y|X) / lp(|Y|).
    alpha = 0 ranks by the plain sum of log-probabilities, which favours short outputs
    (every token adds a negative term). Derived in chapter 11."""
    if not alpha >= 0:
        raise ValueError(f"length_penalty: alpha must be >= 0, got {alpha!r}")
    return ((5.0 + length) / 6.0) ** alpha


def reorder_cache(cache: dict, index: torch.Tensor) -> dict:
    """Keep the rows ``index`` (along the batch axis) of every tensor in a KV cache: beams
    that survive a step take the keys and values of the beam they extend."""
    for layer in cache["layers"]:
        for part in layer.values():
            for key in ("k", "v"):
                if key in part:
                    part[key] = part[key].index_select(0, index)
    return cache


@torch.no_grad()
def beam_search(model, src, bos_id: int, eos_id: int, pad_id: int = 0, beam_size: int = 4,
                max_len: int | None = None, alpha: float = 0.6, use_cache: bool = True):
    """Beam search with the encoder-decoder; returns (tokens (B, beam, max_len), scores (B, beam)).

    A hypothesis Y = y_1..y_m (after <bos>) has log P(Y|X) = sum_t log p(y_t | y_<t, X) and is
    ranked by log P(Y|X) / lp(m) (:func:`length_penalty`). At each step every live hypothesis
    is extended by every token; of all the extensions the ``beam_size`` best (by their sums)
    are kept, minus one slot for each hypothesis that has already ended: an extension that
    writes <eos> ends, as does one that reaches ``max_len`` tokens (with <bos>). The search
    stops when no hypothesis is live. So a beam of 1 is greedy decoding, and a beam at least
    as wide as the number of hypotheses prunes nothing: exhaustive search (tests/test_generate.py).
    It remains a heuristic for narrower beams: a wider beam can end with a less likely
    sequence than a narrower one or than greedy decoding.

    Returns, for each source, the ended hypotheses best first ((B, beam, max_len) ids starting
    with <bos>, padded with ``pad_id``) and their scores log P / lp (-inf where fewer than
    ``beam`` hypotheses ended). With ``use_cache`` the decoder keeps its keys and values and
    reorders them with the beams (:func:`reorder_cache`); the results are the same.
    """
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_search: beam_size must be a positive integer, got {beam_size!r}")
    model.eval()
    max_len = max_len or model.config.max_len
    batch, k, device = src.shape[0], beam_size, src.device
    memory = model.encode(src)                                             # (B, n_src, d)
    memory = memory.repeat_interleave(k, dim=0)                            # (B k, n_src, d)
    src_mask = model.source_mask(src.repeat_interleave(k, dim=0))         # (B k, 1, n_src)
    tokens = torch.full((batch * k, 1), bos_id, dtype=torch.long, device=device)  # (B k, 1)
    scores = torch.full((batch, k), -math.inf, device=device)             # (B, k) sums of log p
    scores[:, 0] = 0.0                                                     # one live hypothesis: <bos>
    slots = torch.full((batch,), k, dtype=torch.long, device=device)      # (B,) beam slots not yet ended
    ended_tokens = torch.full((batch, k, max_len), pad_id, dtype=torch.long, device=device)
    ended_scores = torch.full((batch, k), -math.inf, device=device)       # (B, k) log P / lp
    cache = model.new_cache() if use_cache else None
    rank = torch.arange(k, device=device)[None, :]                         # (1, k)
    for length in range(1, max_len):
        step_input = tokens[:, -1:] if use_cache else tokens
        logits = model.decode(step_input, memory, src_mask, cache=cache)[:, -1]  # (B k, V)
        vocab = logits.shape[-1]
        logp = helpers.log_softmax(logits.float(), axis=-1).view(batch, k, vocab)  # (B, k, V)
        candidates = (scores[:, :, None] + logp).view(batch, k * vocab)   # (B, k V)
        width = min(k, k * vocab)
        values, flat = candidates.topk(width, dim=-1)                      # (B, width), best first
        kept = (rank[:, :width] < slots[:, None]) & torch.isfinite(values)  # (B, width) within the beam
        origin, token = flat // vocab, flat % vocab                        # (B, width) each
        index = (torch.arange(batch, device=device)[:, None] * k + origin).view(-1)
        tokens = tokens.index_select(0, index).view(batch, width, length)  # the prefixes they extend
        tokens = torch.cat([tokens, token[:, :, None]], dim=-1)           # (B, width, length + 1)
        ends = kept & ((token == eos_id) | (length == max_len - 1))       # (B, width) hypotheses that end
        normalised = torch.where(ends, values / length_penalty(length, alpha), -math.inf)
        padded = torch.full((batch, width, max_len), pad_id, dtype=torch.long, device=device)
        padded[:, :, :length + 1] = tokens
        pool_scores = torch.cat([ended_scores, normalised], dim=1)         # (B, k + width)
        pool_tokens = torch.cat([ended_tokens, padded], dim=1)             # (B, k + width, max_len)
        ended_scores, best = pool_scores.topk(k, dim=-1)                   # (B, k)
        ended_tokens = pool_tokens.gather(1, best[:, :, None].expand(-1, -1, max_len))
        still = kept & ~ends                                               # (B, width) live after this step
        scores = torch.full((batch, k), -math.inf, device=device)
        scores[:, :width] = torch.where(still, values, -math.inf)
        slots = slots - ends.sum(dim=1)
        if width < k:   # fewer candidates than slots (tiny vocabularies): pad the beam
            tokens = torch.cat([tokens, tokens[:, :1].expand(-1, k - width, -1)], dim=1)
            index = torch.cat([index.view(batch, width), index.view(batch, width)[:, :1].expand(-1, k - width)], 1).view(-1)
        tokens = tokens.reshape(batch * k, length + 1)
        if cache is not None:
            reorder_cache(cache, index)
        if not bool(still.any()):
            break
    return ended_tokens, ended_scores


@torch.no_grad()
def sequence_log_probability(model, src, tokens, eos_id: int):
    """log P(Y|X) = sum_t log p(y_t | y_<t, X) of target sequences (<bos> y_1 ... y_m [<eos>]
    then padding), by one teacher-forced forward pass; also returns the lengths m.
    Shapes: src (B, n_src), tokens (B, n) -> (B,), (B,)."""
    logits = model(src, tokens[:, :-1]).float()                           # (B, n - 1, V)
    logp = helpers.log_softmax(logits, axis=-1).gather(-1, tokens[:, 1:, None])[..., 0]  # (B, n - 1)
    generated = tokens[:, 1:]
    ended = torch.cumsum((generated == eos_id).long(), dim=1)            # (B, n - 1)
    counted = (ended == 0) | ((ended == 1) & (generated == eos_id))       # up to the first <eos>
    return (logp * counted).sum(dim=1), counted.sum(dim=1)


def beam_search_translate(model, src, tgt_vocab: Vocabulary, beam_size: int = 4, max_len: int | None = None,
                          alpha: float = 0.6, batch_size: int = 500) -> list[str]:
    """Beam-search every row of src (B, n_src) and return the best target strings."""
    out = []
    for i in range(0, src.shape[0], batch_size):
        ids, _ = beam_search(model, src[i:i + batch_size], tgt_vocab[BOS], tgt_vocab[EOS], tgt_vocab[PAD],
                             beam_size=beam_size, max_len=max_len, alpha=alpha)
        for row in ids[:, 0].tolist():
            row = row[1:]
            if tgt_vocab[EOS] in row:
                row = row[:row.index(tgt_vocab[EOS])]
            out.append(tgt_vocab.decode(row))
    return out
