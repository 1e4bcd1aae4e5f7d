"""Generation, token by token (seed 003 §2.3: "encode the input, then decode token by token").

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

from .data import BOS, EOS, PAD, Vocabulary


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
