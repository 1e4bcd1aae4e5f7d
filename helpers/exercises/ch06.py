"""Checks for the exercises of chapter 6, "Feed-forward network, residual connections, LayerNorm".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong (naming the usual slip where one explains
the answer) or prints a confirmation. Reference values are computed here in plain NumPy
from the formulas, independently of :mod:`helpers`.
"""
from __future__ import annotations

import math

import numpy as np

from ._common import as_array, not_attempted

# Exercise 1: LayerNorm of this vector with gamma = 1, beta = 0, eps = 0.
EXERCISE_1_X = np.array([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
# Exercise 2: the paper's base FFN.
EXERCISE_2_D_MODEL, EXERCISE_2_D_FF = 512, 2048
# Exercise 3: the width d of the vector normalised with torch.var's default.
EXERCISE_3_D = 8


def check_exercise_1(answer) -> None:
    """LayerNorm([2, 4, 4, 4, 5, 5, 7, 9]) with gamma 1, beta 0, eps 0: mu 5, sigma^2 4."""
    if not_attempted(1, answer):
        return
    x = EXERCISE_1_X
    got = as_array(1, answer, x.shape)
    mu = x.sum() / x.size
    biased = ((x - mu) ** 2).sum() / x.size
    unbiased = ((x - mu) ** 2).sum() / (x.size - 1)
    if np.allclose(got, (x - mu) / math.sqrt(unbiased), atol=1e-9):
        raise AssertionError("Exercise 1: you divided by sqrt of the *unbiased* variance (sum / (d - 1) = "
                             f"{unbiased:.4f}). LayerNorm uses the biased one: sum / d = {biased:.4f}.")
    if np.allclose(got, x - mu, atol=1e-9):
        raise AssertionError("Exercise 1: you centred x but did not divide by sigma = sqrt(sigma^2 + eps).")
    expected = (x - mu) / math.sqrt(biased)
    assert np.allclose(got, expected, atol=1e-9), (
        f"Exercise 1: got {np.round(got, 4)}. Compute mu = mean(x), sigma^2 = mean((x - mu)^2), "
        "then (x - mu) / sqrt(sigma^2 + 0).")
    print(f"Exercise 1: correct: mu = {mu:g}, sigma^2 = {biased:g}, LayerNorm(x) = {expected}.")


def check_exercise_2(answer) -> None:
    """The number of parameters of one FFN with d_model 512, d_ff 2048 (weights and biases)."""
    if not_attempted(2, answer):
        return
    d, f = EXERCISE_2_D_MODEL, EXERCISE_2_D_FF
    weights = d * f + f * d
    expected = weights + f + d
    if answer == weights:
        raise AssertionError(f"Exercise 2: {answer} counts W1 and W2 only; add the biases b1 ({f}) and b2 ({d}).")
    if answer == weights + f or answer == weights + d:
        raise AssertionError(f"Exercise 2: {answer}: one bias vector is missing (b1 has {f} entries, b2 has {d}).")
    assert answer == expected, (f"Exercise 2: got {answer}. W1 is (d_model, d_ff), b1 (d_ff,), "
                                "W2 (d_ff, d_model), b2 (d_model,): add their sizes.")
    print(f"Exercise 2: correct: 2 d_model d_ff + d_ff + d_model = {expected:,} parameters per layer.")


def check_exercise_3(answer) -> None:
    """Normalising with torch.var (divides by d - 1) instead of the biased variance, eps = 0:
    every output is multiplied by sqrt((d - 1) / d); for d = 8 that is sqrt(7/8)."""
    if not_attempted(3, answer):
        return
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise TypeError(f"Exercise 3: expected a number, got {type(answer).__name__}") from None
    d = EXERCISE_3_D
    expected = math.sqrt((d - 1) / d)
    if math.isclose(value, 1 / expected, rel_tol=1e-9):
        raise AssertionError("Exercise 3: that is the inverse ratio. The unbiased variance is *larger* "
                             "(divides by d - 1), so dividing by its square root makes the output smaller.")
    if math.isclose(value, (d - 1) / d, rel_tol=1e-9):
        raise AssertionError("Exercise 3: that is the ratio of the variances; the output is divided by a "
                             "standard deviation, so take the square root.")
    assert math.isclose(value, expected, rel_tol=1e-9), (
        f"Exercise 3: got {value!r}. Write sigma_unbiased^2 = d/(d-1) sigma^2 and compare "
        "(x - mu)/sigma_unbiased with (x - mu)/sigma.")
    print(f"Exercise 3: correct: the outputs shrink by sqrt((d-1)/d) = sqrt(7/8) = {expected:.6f}.")


def check_exercise_4(pre_ln_ffn_sublayer) -> None:
    """A function (x, w1, b1, w2, b2, gamma, beta) -> x + FFN(LayerNorm(x)), the pre-LN FFN sublayer."""
    if not_attempted(4, pre_ln_ffn_sublayer):
        return
    if not callable(pre_ln_ffn_sublayer):
        raise TypeError("Exercise 4: expected a function (x, w1, b1, w2, b2, gamma, beta) -> array")
    rng = np.random.default_rng(6)
    d, f = 6, 10
    x = rng.normal(size=(3, 4, d)) * 3 + 1
    w1, b1, w2, b2 = rng.normal(size=(d, f)), rng.normal(size=f), rng.normal(size=(f, d)), rng.normal(size=d)
    gamma, beta = rng.normal(size=d), rng.normal(size=d)

    def ln(z):
        mu = z.mean(-1, keepdims=True)
        return (z - mu) / np.sqrt(((z - mu) ** 2).mean(-1, keepdims=True) + 1e-5) * gamma + beta

    def ffn(z):
        return np.maximum(z @ w1 + b1, 0) @ w2 + b2

    got = np.asarray(pre_ln_ffn_sublayer(x, w1, b1, w2, b2, gamma, beta))
    if got.shape != x.shape:
        raise AssertionError(f"Exercise 4: the output must have the input's shape {x.shape}, got {got.shape}")
    if np.allclose(got, ln(x + ffn(x)), atol=1e-9):
        raise AssertionError("Exercise 4: that is the post-LN sublayer LayerNorm(x + FFN(x)). "
                             "Pre-LN normalises the sublayer's *input*: x + FFN(LayerNorm(x)).")
    if np.allclose(got, ffn(ln(x)), atol=1e-9):
        raise AssertionError("Exercise 4: the residual connection is missing: add x back.")
    assert np.allclose(got, x + ffn(ln(x)), atol=1e-9), (
        "Exercise 4: the output differs from x + FFN(LayerNorm(x)) (eps = 1e-5).")
    print("Exercise 4: correct: x + FFN(LayerNorm(x)); the residual stream x itself is never normalised.")
