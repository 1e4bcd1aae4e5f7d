"""Checks for the exercises of chapter 8, "Loss and backpropagation by hand".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong (naming a common slip where one explains
the answer), or prints a confirmation. Reference values are computed here in plain NumPy
or with torch.autograd, independently of :mod:`helpers`.
"""
from __future__ import annotations

import math

import numpy as np

from ._common import as_array, as_float, not_attempted

# Exercise 1: three positions, a vocabulary of 5; the perplexity of these predictions.
EXERCISE_1_LOGITS = np.array([[2.0, 0.5, -1.0, 0.0, 1.0],
                              [0.0, 0.0, 3.0, -2.0, 0.5],
                              [1.0, 1.0, 1.0, 1.0, 4.0]])
EXERCISE_1_TARGETS = np.array([0, 2, 1])
# Exercise 2: one position, label smoothing eps = 0.1; the gradient of the loss.
EXERCISE_2_LOGITS = np.array([1.0, 2.0, 0.5])
EXERCISE_2_TARGET = 0
EXERCISE_2_SMOOTHING = 0.1
# Exercise 3: the readout Y = X W + b; its backward pass.
_rng = np.random.default_rng(8)
EXERCISE_3_X = np.round(_rng.normal(size=(4, 3)), 2)
EXERCISE_3_W = np.round(_rng.normal(size=(3, 2)), 2)
EXERCISE_3_B = np.round(_rng.normal(size=2), 2)
EXERCISE_3_D_Y = np.round(_rng.normal(size=(4, 2)), 2)
# Exercise 4: the lowest reachable loss with the paper's smoothing and vocabulary size.
EXERCISE_4_SMOOTHING = 0.1
EXERCISE_4_VOCAB = 37000
# Exercise 5 (derivation): the backward pass of log-softmax, as a function of (x, d_y).


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def check_exercise_1(answer) -> None:
    """Perplexity exp(mean of -log p(target)) of EXERCISE_1_LOGITS and EXERCISE_1_TARGETS."""
    if not_attempted(1, answer):
        return
    value = as_float(1, answer)
    nll = -_log_softmax(EXERCISE_1_LOGITS)[np.arange(3), EXERCISE_1_TARGETS]
    expected = math.exp(nll.mean())
    if math.isclose(value, math.exp(nll.sum()), rel_tol=1e-9):
        raise AssertionError("Exercise 1: you exponentiated the *sum* of the three losses. "
                             "The loss is their mean; perplexity = exp(mean).")
    if math.isclose(value, nll.mean(), rel_tol=1e-9):
        raise AssertionError("Exercise 1: that is the loss itself; perplexity is exp(loss).")
    assert math.isclose(value, expected, rel_tol=1e-9), (
        f"Exercise 1: got {value!r}. Take log-softmax of each row, pick the target's entry, "
        "average the negatives over the 3 positions, then exponentiate.")
    print("Exercise 1: correct.")


def check_exercise_2(answer) -> None:
    """dL/dz for one position with label smoothing: softmax(z) - ((1 - eps) onehot + eps/V)."""
    if not_attempted(2, answer):
        return
    g = as_array(2, answer, (3,), "the gradient")
    z = EXERCISE_2_LOGITS
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    onehot = np.eye(3)[EXERCISE_2_TARGET]
    q = (1 - EXERCISE_2_SMOOTHING) * onehot + EXERCISE_2_SMOOTHING / 3
    if np.allclose(g, p - onehot, rtol=1e-9, atol=1e-12):
        raise AssertionError("Exercise 2: that is the gradient without label smoothing. The target "
                             "is q = (1 - eps) onehot + eps / V, and the gradient is p - q.")
    if np.allclose(g, q - p, rtol=1e-9, atol=1e-12):
        raise AssertionError("Exercise 2: the sign is flipped: dL/dz = p - q (the loss falls when "
                             "the target's logit rises, so its gradient entry is negative).")
    assert np.allclose(g, p - q, rtol=1e-9, atol=1e-12), (
        f"Exercise 2: got {g}. Compute p = softmax(z) and q = 0.9 onehot + 0.1/3, then p - q.")
    assert abs(g.sum()) < 1e-12
    print("Exercise 2: correct.")


def check_exercise_3(answer) -> None:
    """(dX, dW, db) of Y = X W + b for EXERCISE_3_D_Y, against torch.autograd."""
    if not_attempted(3, answer):
        return
    import torch

    try:
        d_x, d_w, d_b = answer
    except (TypeError, ValueError):
        raise TypeError("Exercise 3: answer should be a tuple (dX, dW, db)") from None
    d_x = as_array(3, d_x, EXERCISE_3_X.shape, "dX")
    d_w = as_array(3, d_w, EXERCISE_3_W.shape, "dW")
    d_b = as_array(3, d_b, EXERCISE_3_B.shape, "db")
    x, w, b = (torch.tensor(a, requires_grad=True) for a in (EXERCISE_3_X, EXERCISE_3_W, EXERCISE_3_B))
    ((x @ w + b) * torch.tensor(EXERCISE_3_D_Y)).sum().backward()
    for name, got, ref, hint in (
            ("dX", d_x, x.grad, "dX = dY W^T: shape (4, 2) @ (2, 3)"),
            ("dW", d_w, w.grad, "dW = X^T dY: shape (3, 4) @ (4, 2), a sum over the rows"),
            ("db", d_b, b.grad, "db = the sum of dY over its rows (b is added to every row)")):
        assert np.allclose(got, ref.numpy(), rtol=1e-9, atol=1e-12), f"Exercise 3: {name} is wrong; {hint}."
    print("Exercise 3: correct.")


def check_exercise_4(answer) -> None:
    """min over p of -sum q log p with q smoothed: the entropy H(q)."""
    if not_attempted(4, answer):
        return
    value = as_float(4, answer)
    eps, vocab = EXERCISE_4_SMOOTHING, EXERCISE_4_VOCAB
    high, low = 1 - eps + eps / vocab, eps / vocab
    expected = -high * math.log(high) - (vocab - 1) * low * math.log(low)
    if value == 0:
        raise AssertionError("Exercise 4: 0 is the lowest loss *without* smoothing (and even that "
                             "is only approached, never reached). With smoothing the target q is "
                             "not one-hot, and -sum q log p >= H(q) > 0.")
    wrong_high = -(1 - eps) * math.log(1 - eps) - vocab * low * math.log(low)
    if math.isclose(value, wrong_high, rel_tol=1e-6):
        raise AssertionError("Exercise 4: the target's class gets 1 - eps + eps/V (the uniform part "
                             "includes it too), and the other V - 1 classes get eps/V each.")
    assert math.isclose(value, expected, rel_tol=1e-9), (
        f"Exercise 4: got {value!r}. The minimum is reached at p = q and equals the entropy "
        "H(q) = -sum_i q_i log q_i of q = (1 - eps) onehot + eps/V.")
    print("Exercise 4: correct.")


def check_exercise_5(answer) -> None:
    """A function log_softmax_backward(x, d_y) -> dL/dx for y = log_softmax(x) over the last axis.

    Tested on random inputs of several shapes against torch.autograd through
    helpers.log_softmax (torch), central differences of helpers.log_softmax (NumPy), and, with
    d_y = -q / N, against helpers.backward.cross_entropy_backward on both backends.
    """
    if not_attempted(5, answer):
        return
    import torch

    from .. import log_softmax
    from ..backward import cross_entropy_backward

    if not callable(answer):
        raise TypeError(f"Exercise 5: expected a function log_softmax_backward(x, d_y), got {type(answer).__name__}")
    rng = np.random.default_rng(55)
    for shape in ((4,), (3, 5), (2, 3, 6)):
        x, d_y = rng.normal(size=shape), rng.normal(size=shape)
        got = as_array(5, answer(x.copy(), d_y.copy()), shape, f"log_softmax_backward(x, d_y) for x of shape {shape}")
        p = np.exp(_log_softmax(x))
        if np.allclose(got, d_y - p, atol=1e-9):
            raise AssertionError("Exercise 5: a term is missing: x_j reaches every y_i through the log of "
                                 "the normaliser, so every dy_i contributes to dx_j, not only dy_j.")
        if np.allclose(got, p * (d_y - np.sum(d_y * p, axis=-1, keepdims=True)), atol=1e-9):
            raise AssertionError("Exercise 5: that is the backward pass of softmax (section 5.2), not of "
                                 "log-softmax: the Jacobian of log p_i is delta_ij - p_j, not p_i (delta_ij - p_j).")
        if len(shape) > 1 and np.allclose(got, d_y - p * np.sum(d_y, axis=0, keepdims=True), atol=1e-9):
            raise AssertionError("Exercise 5: sum dy over the last axis (the V entries of one row), not axis 0.")
        xt = torch.tensor(x, requires_grad=True)
        (log_softmax(xt) * torch.tensor(d_y)).sum().backward()
        assert np.allclose(got, xt.grad.numpy(), rtol=1e-9, atol=1e-12), (
            f"Exercise 5: for x of shape {shape} your gradient differs from torch.autograd. Write "
            "log p_i = x_i - log sum_k exp(x_k), differentiate with respect to x_j, then sum over i "
            "with the weights dy_i.")
        h = 1e-6
        numeric = np.zeros(shape)
        for j in np.ndindex(shape):
            up, down = x.copy(), x.copy()
            up[j] += h
            down[j] -= h
            numeric[j] = np.sum((log_softmax(up) - log_softmax(down)) * d_y) / (2 * h)
        assert np.allclose(got, numeric, atol=1e-6), "Exercise 5: central differences disagree with your gradient."
    # the cross-entropy is -(1/N) sum_n q_n . log_softmax(z_n): with d_y = -q/N you get chapter 8's p - q
    logits = rng.normal(size=(6, 5))
    targets = rng.integers(0, 5, size=6)
    q = 0.9 * np.eye(5)[targets] + 0.1 / 5
    got = as_array(5, answer(logits.copy(), -q / 6), (6, 5), "log_softmax_backward(z, -q / N)")
    for reference in (cross_entropy_backward(logits, targets, label_smoothing=0.1),
                      cross_entropy_backward(torch.tensor(logits), torch.tensor(targets), label_smoothing=0.1).numpy()):
        assert np.allclose(got, reference, rtol=1e-9, atol=1e-12), (
            "Exercise 5: with d_y = -q/N your function should give the cross-entropy gradient (p - q)/N.")
    print("Exercise 5: correct.")
