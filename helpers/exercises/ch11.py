"""Checks for the exercises of chapter 11, "Training a full Transformer".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong, or prints a confirmation. Reference
values are obtained independently of the formulas the chapter gives: by building the
model and counting, by closed forms, or by counting what a real model computes.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ._common import as_float, not_attempted

# Exercise 1: the parameter count of this language model (chapter 11's formula).
EXERCISE_1_CONFIG = dict(vocab_size=65, d_model=128, num_heads=4, num_layers=4, d_ff=512, max_len=256,
                         positions="learned", tie_embeddings=True, norm="pre")
# Exercise 2: the entropy rate of this two-state chain, in nats per symbol.
EXERCISE_2_P = ((0.9, 0.1), (0.5, 0.5))
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
    print(f"Exercise 1: correct, {expected:,} parameters.")


def check_exercise_2(answer) -> None:
    """H = -sum_i pi_i sum_j P_ij ln P_ij for P = EXERCISE_2_P."""
    if not_attempted(2, answer):
        return
    value = as_float(2, answer)
    (p00, p01), (p10, p11) = EXERCISE_2_P
    pi0 = p10 / (p01 + p10)  # balance: pi0 p01 = pi1 p10
    pi = (pi0, 1 - pi0)
    rows = [(p00, p01), (p10, p11)]
    expected = -sum(pi[i] * sum(p * math.log(p) for p in rows[i] if p > 0) for i in range(2))
    if math.isclose(value, expected / math.log(2), rel_tol=1e-6):
        raise AssertionError("Exercise 2: that is in bits; the loss uses natural logarithms (nats).")
    uniform_weights = -0.5 * sum(sum(p * math.log(p) for p in row) for row in rows)
    if math.isclose(value, uniform_weights, rel_tol=1e-6):
        raise AssertionError("Exercise 2: weight each row by the stationary probability pi_i, not by 1/2; "
                             "pi solves pi P = pi.")
    assert math.isclose(value, expected, rel_tol=1e-6), (
        f"Exercise 2: got {value!r}. Find pi from pi P = pi, then H = -sum_i pi_i sum_j P_ij ln P_ij.")
    print(f"Exercise 2: correct, H = {expected:.4f} nats per symbol (pi = ({pi[0]:.4f}, {pi[1]:.4f})).")


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
    print("Exercise 3: correct: the top-k tokens share all the probability, renormalised.")


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
    print(f"Exercise 4: correct, {expected[0]} rows without the cache and {expected[1]} with it "
          f"({expected[0] / expected[1]:.0f} times fewer): quadratic versus linear in the length.")


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
