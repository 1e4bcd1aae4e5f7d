"""Checks for the exercises of chapter 11, "Training a full Transformer".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong (naming a common slip where one explains
the answer), or prints "Exercise N: correct." and nothing else (no number that would give
an answer away). Reference values are obtained independently of the formulas the chapter
gives: by building the model and counting, by enumerating every sequence of a small copy
corpus, by bisection on the length penalty, or by counting what a real model computes.
"""
from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np
import torch

from ._common import as_float, correct, not_attempted

# Exercise 1: the parameter count of this language model (chapter 11's formula).
EXERCISE_1_CONFIG = dict(vocab_size=65, d_model=128, num_heads=4, num_layers=4, d_ff=512, max_len=256,
                         positions="learned", tie_embeddings=True, norm="pre")
# Exercise 2: the copy corpus whose lowest mean loss the learner derives (V, m, k).
EXERCISE_2_SIZES = dict(vocab_size=20, prefix_length=8, copy_length=5)
# Exercise 4: a prompt of 20 tokens, 100 new tokens, one layer: key/value rows computed.
EXERCISE_4_PROMPT = 20
EXERCISE_4_NEW = 100


def check_exercise_1(answer) -> None:
    """The number of parameters of DecoderOnlyLM(ModelConfig(**EXERCISE_1_CONFIG))."""
    if not_attempted(1, answer):
        return
    from ..model import DecoderOnlyLM, ModelConfig
    expected = sum(p.numel() for p in DecoderOnlyLM(ModelConfig(**EXERCISE_1_CONFIG)).parameters())
    number = as_float(1, answer)
    if not number.is_integer():
        raise AssertionError(f"Exercise 1: a parameter count is a whole number, got {answer!r}.")
    value = int(number)
    c = EXERCISE_1_CONFIG
    if value == expected + c["d_model"] * c["vocab_size"]:
        raise AssertionError("Exercise 1: the output projection is tied to the embedding table: "
                             "do not count it twice.")
    if value == expected - c["max_len"] * c["d_model"]:
        raise AssertionError("Exercise 1: learned positions are parameters too: max_len x d_model.")
    if value == expected - 2 * c["d_model"]:
        raise AssertionError("Exercise 1: a pre-LN model has one more LayerNorm after the last layer.")
    assert value == expected, (
        f"Exercise 1: got {value:,}. Per layer: attention 4d^2 + 4d, FFN 2 d d_ff + d_ff + d, two "
        "LayerNorms 4d; then embeddings V d, positions max_len d and the final LayerNorm 2d.")
    correct(1)


def enumerated_copy_bound(vocab_size: int, prefix_length: int, copy_length: int) -> float:
    """The mean over targets t = 1..n-1 of H(x_t | x_<t) for the copy corpus, by listing every
    sequence (every ordered prefix of distinct symbols, every offset; all equally likely)."""
    v, m, k = vocab_size, prefix_length, copy_length
    sequences = [p + p[r:r + k] for p in itertools.permutations(range(v), m) for r in range(m - k + 1)]
    total, entropies = len(sequences), []
    for t in range(1, m + k):
        nexts = defaultdict(lambda: defaultdict(int))
        for s in sequences:
            nexts[s[:t]][s[t]] += 1
        entropies.append(-sum(c / total * math.log(c / sum(row.values()))
                              for row in nexts.values() for c in row.values()))
    return sum(entropies) / len(entropies)


def _copy_bound(v, m, k):
    return (math.lgamma(v) - math.lgamma(v - m + 1) + math.log(m - k + 1)) / (m + k - 1)


def check_exercise_2(copy_corpus_bound) -> None:
    """A function copy_corpus_bound(vocab_size, prefix_length, copy_length) -> the least mean
    loss per predicted symbol, tried on small corpora (enumerated) and on larger ones."""
    if not_attempted(2, copy_corpus_bound):
        return
    if not callable(copy_corpus_bound):
        raise TypeError("Exercise 2: answer should be your function copy_corpus_bound(vocab_size, "
                        "prefix_length, copy_length)")
    small = [(4, 3, 2), (5, 3, 1), (4, 4, 4), (5, 4, 2), (6, 3, 3)]
    rng = np.random.default_rng(11)
    large = [(20, 8, 5)]
    for _ in range(6):
        v = int(rng.integers(5, 80))
        m = int(rng.integers(2, v + 1))
        large.append((v, m, int(rng.integers(1, m + 1))))
    for v, m, k in small + large:
        expected = enumerated_copy_bound(v, m, k) if (v, m, k) in small else _copy_bound(v, m, k)
        got = as_float(2, copy_corpus_bound(v, m, k))
        n = m + k
        if math.isclose(got, expected * (n - 1) / n, rel_tol=1e-9):
            raise AssertionError("Exercise 2: there are n - 1 targets, not n: the first symbol is never predicted.")
        if math.isclose(got, (expected * (n - 1) - math.log(m - k + 1)) / (n - 1), rel_tol=1e-9) and m > k:
            raise AssertionError("Exercise 2: the first symbol of the copy is not determined: its offset "
                                 "is one of m - k + 1 equally likely values.")
        if math.isclose(got, (m - 1) * math.log(v) / (n - 1) + math.log(m - k + 1) / (n - 1), rel_tol=1e-9) and m > 1:
            raise AssertionError("Exercise 2: the prefix symbols are distinct, so after t of them only "
                                 "V - t remain: ln(V - t), not ln V.")
        assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12), (
            f"Exercise 2: for V = {v}, m = {m}, k = {k} got {got!r}. Add up H(x_t | x_<t) over the "
            "targets t = 1 .. n - 1 (prefix, first copy symbol, rest of the copy) and divide by n - 1.")
    correct(2)


def check_exercise_3(answer) -> None:
    """A function top_k_probabilities(logits, k, temperature) -> probabilities, shapes (..., V)."""
    if not_attempted(3, answer):
        return
    if not callable(answer):
        raise TypeError("Exercise 3: answer should be your function top_k_probabilities")
    gen = torch.Generator().manual_seed(11)
    for shape, k, t in (((7,), 3, 1.0), ((2, 5), 1, 0.5), ((3, 9), 9, 2.0)):
        logits = torch.randn(*shape, generator=gen, dtype=torch.float64)
        got = torch.as_tensor(answer(logits, k, t), dtype=torch.float64)
        assert got.shape == logits.shape, f"Exercise 3: shape {tuple(got.shape)}, expected {tuple(logits.shape)}"
        kept = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, logits.topk(k, dim=-1).indices, True)
        assert torch.all(got[~kept] == 0), "Exercise 3: tokens outside the top k must get probability exactly 0"
        scaled = torch.where(kept, logits / t, torch.full_like(logits, -math.inf))
        expected = torch.exp(scaled - scaled.max(-1, keepdim=True).values)
        expected = expected / expected.sum(-1, keepdim=True)
        if not torch.allclose(got, expected, atol=1e-6) and k < shape[-1]:
            unscaled = torch.softmax(logits / t, -1) * kept
            if torch.allclose(got, unscaled, atol=1e-6):
                raise AssertionError("Exercise 3: renormalise over the kept tokens (mask the logits "
                                     "with -inf *before* the softmax, as attention masks are applied).")
        assert torch.allclose(got, expected, atol=1e-6), (
            f"Exercise 3: wrong probabilities for k={k}, T={t}: divide the logits by T, set all but "
            "the k largest to -inf, then take the softmax.")
    correct(3)


def check_exercise_4(answer) -> None:
    """(rows without cache, rows with cache): key/value rows projected by one attention layer."""
    if not_attempted(4, answer):
        return
    try:
        without, with_cache = (int(a) for a in answer)
    except (TypeError, ValueError):
        raise TypeError("Exercise 4: answer should be a pair (without_cache, with_cache)") from None
    expected = (_count_projected_rows(False), _count_projected_rows(True))
    if (without, with_cache) == expected[::-1]:
        raise AssertionError("Exercise 4: the pair is the wrong way round: (without cache, with cache).")
    assert with_cache == expected[1], (
        f"Exercise 4: with the cache, got {with_cache}: the first step reads the whole prompt, each "
        "later step only the one newest token.")
    assert without == expected[0], (
        f"Exercise 4: without the cache, got {without}: step t recomputes all prompt + t - 1 tokens; sum over t.")
    correct(4)


def _count_projected_rows(use_cache: bool) -> int:
    """Run a real one-layer model and count the rows its attention projects into K and V."""
    from .. import layers
    from ..generate import sample
    from ..model import DecoderOnlyLM, ModelConfig
    torch.manual_seed(0)
    model = DecoderOnlyLM(ModelConfig(vocab_size=5, d_model=8, num_heads=2, num_layers=1, d_ff=8,
                                      max_len=EXERCISE_4_PROMPT + EXERCISE_4_NEW))
    rows = []
    original = layers.multi_head_attention

    def counting(x_q, x_kv, *args, **kwargs):
        rows.append(int(np.prod(x_kv.shape[:-1])))   # every row of x_kv is projected by W^K and W^V
        return original(x_q, x_kv, *args, **kwargs)

    layers.multi_head_attention = counting
    try:
        sample(model, torch.zeros(1, EXERCISE_4_PROMPT, dtype=torch.long), EXERCISE_4_NEW, temperature=0,
               use_cache=use_cache)
    finally:
        layers.multi_head_attention = original
    return sum(rows)


def _tie_by_bisection(log_p_short, len_short, log_p_long, len_long):
    """The alpha at which the two normalised scores are equal, found numerically with
    helpers.generate.length_penalty (no closed form)."""
    from ..generate import length_penalty

    def gap(alpha):   # > 0 while the short hypothesis ranks first
        return log_p_short / length_penalty(len_short, alpha) - log_p_long / length_penalty(len_long, alpha)

    lo, hi = 0.0, 1.0
    while gap(hi) > 0:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if gap(mid) > 0 else (lo, mid)
    return (lo + hi) / 2


def check_exercise_5(tie_alpha) -> None:
    """A function tie_alpha(log_p_short, len_short, log_p_long, len_long) -> the alpha at which
    GNMT's length normalisation ranks the two hypotheses equally."""
    if not_attempted(5, tie_alpha):
        return
    if not callable(tie_alpha):
        raise TypeError("Exercise 5: answer should be your function tie_alpha(log_p_short, len_short, "
                        "log_p_long, len_long)")
    rng = np.random.default_rng(5)
    for _ in range(20):
        len_short = int(rng.integers(1, 15))
        len_long = len_short + int(rng.integers(1, 15))
        log_p_short = -float(rng.uniform(0.5, 10))
        log_p_long = log_p_short * float(rng.uniform(1.05, 2.5))   # the longer one is less likely in all
        expected = _tie_by_bisection(log_p_short, len_short, log_p_long, len_long)
        got = as_float(5, tie_alpha(log_p_short, len_short, log_p_long, len_long))
        wrong_ratio = math.log(log_p_long / log_p_short) / math.log(len_long / len_short)
        if math.isclose(got, wrong_ratio, rel_tol=1e-9):
            raise AssertionError("Exercise 5: lp(|Y|) = ((5 + |Y|) / 6)^alpha, so the ratio of the two "
                                 "penalties is ((5 + |B|) / (5 + |A|))^alpha, not (|B| / |A|)^alpha.")
        if math.isclose(got, -expected, rel_tol=1e-9):
            raise AssertionError("Exercise 5: the sign is flipped: both log-probabilities are negative, "
                                 "so their ratio is positive and larger than 1.")
        assert math.isclose(got, expected, rel_tol=1e-7), (
            f"Exercise 5: for log P = {log_p_short:.3f} ({len_short} tokens) against {log_p_long:.3f} "
            f"({len_long} tokens) got {got!r}. Set the two normalised scores equal and solve for alpha.")
    correct(5)
