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
    print(f"Exercise 1: correct, perplexity = {expected:.4f} (between 1 and V = 5).")


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
    print(f"Exercise 2: correct, dL/dz = {np.round(p - q, 4)} (it sums to 0: p and q both sum to 1).")


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
    print("Exercise 3: correct, dX = dY W^T, dW = X^T dY, db = column sums of dY (torch.autograd agrees).")


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
    print(f"Exercise 4: correct, the loss can never go below H(q) = {expected:.4f} nats "
          f"(perplexity {math.exp(expected):.2f}).")
