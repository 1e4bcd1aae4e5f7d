"""Checks for the exercises of chapter 6, "Feed-forward network, residual connections, LayerNorm".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong (naming the usual slip where one explains
the answer) or prints "Exercise N: correct." and nothing else, so that a stored solution
cell gives nothing away. Reference values for exercises 1-4 are computed here in plain
NumPy from the formulas, independently of :mod:`helpers`; exercise 5 (a derivation) is
compared with finite differences, with torch's autograd and with
:func:`helpers.backward.layer_norm_backward` on both backends.
"""
from __future__ import annotations

import math

import numpy as np

from ._common import as_array, as_float, correct, not_attempted

# Exercise 1: LayerNorm of this vector with gamma = 1, beta = 0, eps = 0.
EXERCISE_1_X = np.array([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
# Exercise 2: the FFN of the paper's big model (the chapter counts the base model's).
EXERCISE_2_D_MODEL, EXERCISE_2_D_FF = 1024, 4096
# Exercise 3: the width d of the vector normalised with torch.var's default.
EXERCISE_3_D = 8
# Exercise 5: (shape of x, eps) of each random trial; the large eps makes forgetting it visible.
EXERCISE_5_TRIALS = (((6,), 1e-5), ((3, 7), 1e-5), ((2, 3, 5), 0.5))


def check_exercise_1(answer) -> None:
    """LayerNorm([2, 4, 4, 4, 5, 5, 7, 9]) with gamma 1, beta 0, eps 0."""
    if not_attempted(1, answer):
        return
    x = EXERCISE_1_X
    got = as_array(1, answer, x.shape)
    mu = x.sum() / x.size
    biased = ((x - mu) ** 2).sum() / x.size
    unbiased = ((x - mu) ** 2).sum() / (x.size - 1)
    if np.allclose(got, (x - mu) / math.sqrt(unbiased), atol=1e-9):
        raise AssertionError("Exercise 1: you divided by the square root of the *unbiased* variance "
                             "(sum / (d - 1)). LayerNorm uses the biased one: sum / d.")
    if np.allclose(got, x - mu, atol=1e-9):
        raise AssertionError("Exercise 1: you centred x but did not divide by sigma = sqrt(sigma^2 + eps).")
    if np.allclose(got, (x - mu) / biased, atol=1e-9):
        raise AssertionError("Exercise 1: you divided by the variance sigma^2; divide by its square root.")
    expected = (x - mu) / math.sqrt(biased)
    assert np.allclose(got, expected, atol=1e-9), (
        "Exercise 1: not LayerNorm(x) yet. Compute mu = mean(x), sigma^2 = mean((x - mu)^2), "
        "then (x - mu) / sqrt(sigma^2 + 0).")
    correct(1)


def check_exercise_2(answer) -> None:
    """The number of parameters of one FFN of the paper's big model (weights and biases)."""
    if not_attempted(2, answer):
        return
    d, f = EXERCISE_2_D_MODEL, EXERCISE_2_D_FF
    value = as_float(2, answer)
    weights = d * f + f * d
    expected = weights + f + d
    if value == weights:
        raise AssertionError("Exercise 2: that counts W1 and W2 only; add the biases b1 and b2.")
    if value in (weights + f, weights + d):
        raise AssertionError("Exercise 2: one bias vector is missing (b1 has d_ff entries, b2 has d_model).")
    if value == 2 * 512 * 2048 + 2048 + 512:
        raise AssertionError("Exercise 2: that is the base model's FFN; the big model has d_model = 1024, "
                             "d_ff = 4096.")
    assert value == expected, ("Exercise 2: not yet. W1 is (d_model, d_ff), b1 (d_ff,), "
                               "W2 (d_ff, d_model), b2 (d_model,): add their sizes.")
    correct(2)


def check_exercise_3(answer) -> None:
    """Normalising with torch.var (divides by d - 1) instead of the biased variance, eps = 0,
    d = 8: the factor by which every output is multiplied."""
    if not_attempted(3, answer):
        return
    value = as_float(3, answer)
    d = EXERCISE_3_D
    expected = math.sqrt((d - 1) / d)
    if math.isclose(value, 1 / expected, rel_tol=1e-9):
        raise AssertionError("Exercise 3: that is the inverse ratio. The unbiased variance is *larger* "
                             "(divides by d - 1), so dividing by its square root makes the output smaller.")
    if math.isclose(value, (d - 1) / d, rel_tol=1e-9):
        raise AssertionError("Exercise 3: that is the ratio of the variances; the output is divided by a "
                             "standard deviation, so take the square root.")
    assert math.isclose(value, expected, rel_tol=1e-9), (
        "Exercise 3: not yet. Write sigma_unbiased^2 = d/(d-1) sigma^2 and compare "
        "(x - mu)/sigma_unbiased with (x - mu)/sigma.")
    correct(3)


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
    if np.allclose(got, x + ffn(x), atol=1e-9):
        raise AssertionError("Exercise 4: there is no LayerNorm in it: normalise the FFN's input.")
    assert np.allclose(got, x + ffn(ln(x)), atol=1e-9), (
        "Exercise 4: the output differs from x + FFN(LayerNorm(x)) (eps = 1e-5).")
    correct(4)


# ---------------------------------------------------------------- exercise 5: LayerNorm backward

def _layer_norm_np(x, gamma, eps):
    """LayerNorm with beta = 0 in plain NumPy (beta does not change dL/dx)."""
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * gamma


def _finite_difference_dx(x, gamma, d_output, eps, h=1e-6):
    """dL/dx for L = sum(d_output * LayerNorm(x)) by central differences, entry by entry."""
    dx = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[idx] = h
        up = (d_output * _layer_norm_np(x + step, gamma, eps)).sum()
        down = (d_output * _layer_norm_np(x - step, gamma, eps)).sum()
        dx[idx] = (up - down) / (2 * h)
    return dx


def _references_dx(x, gamma, d_output, eps):
    """dL/dx from helpers.backward.layer_norm_backward (NumPy and torch) and torch's autograd
    through F.layer_norm; asserts that the three and finite differences agree, and returns one."""
    import torch
    import torch.nn.functional as F

    from ..backward import layer_norm_backward

    beta = np.zeros_like(gamma)
    dx_np = layer_norm_backward(x, gamma, beta, d_output, eps=eps)[0]
    xt, gt, bt, dt = (torch.tensor(a) for a in (x, gamma, beta, d_output))
    dx_t = layer_norm_backward(xt, gt, bt, dt, eps=eps)[0]
    xt.requires_grad_(True)
    (F.layer_norm(xt, gamma.shape, gt, bt, eps=eps) * dt).sum().backward()
    np.testing.assert_allclose(dx_t.numpy(), dx_np, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xt.grad.numpy(), dx_np, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_finite_difference_dx(x, gamma, d_output, eps), dx_np, rtol=1e-5, atol=1e-7)
    return dx_np


def _usual_slips(x, gamma, d_output, eps):
    """The wrong formulas a derivation typically ends with, and what each one forgot."""
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    sigma = np.sqrt(var + eps)
    x_hat = (x - mu) / sigma
    g = d_output * gamma

    def mean(a):
        return a.mean(-1, keepdims=True)

    def full(g_, x_hat_, sigma_):
        return (g_ - mean(g_) - x_hat_ * mean(g_ * x_hat_)) / sigma_

    d = x.shape[-1]
    sigma_unbiased = np.sqrt(var * d / (d - 1) + eps)
    return [
        (g / sigma, "you treated mu and sigma as constants. Both depend on x: add the paths "
                    "through mu (a mean over the features) and through sigma."),
        ((g - mean(g)) / sigma, "the path through sigma is missing: sigma depends on every x_j "
                                "(d sigma / d x_j = x_hat_j / d), which gives the term - x_hat * mean(g * x_hat)."),
        ((g - x_hat * mean(g * x_hat)) / sigma, "the path through mu is missing: d mu / d x_j = 1/d "
                                                 "gives the term - mean(g)."),
        (full(d_output, x_hat, sigma), "g is the gradient with respect to x_hat: multiply d_output by "
                                       "gamma first (y = gamma * x_hat + beta)."),
        (full(g, (x - mu) / np.sqrt(var), np.sqrt(var)),
         "eps is missing: sigma = sqrt(sigma^2 + eps) in the backward pass as in the forward one."),
        (full(g, (x - mu) / sigma_unbiased, sigma_unbiased), "LayerNorm uses the biased variance (divide by d)."),
        (full(g, x_hat, sigma) * sigma ** 2, "you multiplied by sigma where you should divide by it."),
        ((g - g.sum(-1, keepdims=True) - x_hat * (g * x_hat).sum(-1, keepdims=True)) / sigma,
         "the two subtracted terms are means over the d features, not sums (the 1/d of mu and sigma^2)."),
    ]


def check_exercise_5(layer_norm_dx) -> None:
    """A function (x, gamma, d_output, eps) -> dL/dx of LayerNorm over the last axis, for
    NumPy arrays x (..., d), gamma (d,), d_output (..., d), tested on random inputs."""
    if not_attempted(5, layer_norm_dx):
        return
    if not callable(layer_norm_dx):
        raise TypeError("Exercise 5: expected a function (x, gamma, d_output, eps) -> dx")
    rng = np.random.default_rng(5)
    for shape, eps in EXERCISE_5_TRIALS:
        d = shape[-1]
        x = rng.normal(size=shape) * rng.uniform(0.5, 3.0) + rng.normal()
        gamma = rng.normal(size=d)
        d_output = rng.normal(size=shape)
        expected = _references_dx(x, gamma, d_output, eps)
        got = as_array(5, layer_norm_dx(x.copy(), gamma.copy(), d_output.copy(), eps), shape,
                       name=f"dx for x of shape {shape}")
        if np.allclose(got, expected, rtol=1e-7, atol=1e-9):
            continue
        for wrong, why in _usual_slips(x, gamma, d_output, eps):
            if np.allclose(got, wrong, rtol=1e-7, atol=1e-9):
                raise AssertionError(f"Exercise 5: for x of shape {shape}, eps = {eps:g}: {why}")
        raise AssertionError(f"Exercise 5: for x of shape {shape}, eps = {eps:g} your dx differs from "
                             "autograd's. Write x_hat_i = (x_i - mu)/sigma, differentiate it with respect "
                             "to x_j (mu and sigma both depend on x_j), then sum g_i d x_hat_i / d x_j over i.")
    correct(5)
