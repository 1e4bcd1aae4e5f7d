"""Checks for the exercises of chapter 2, "Attention from first principles".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong (and, where a common slip explains the
answer, which slip), or prints "Exercise N: correct." and nothing else: a stored output
never shows the answer. Exercises 1-4 compute their reference values here from the
formulas in plain NumPy, independently of :mod:`helpers`. Exercise 5 (a derivation: the
gradient of attention with respect to the queries) tests the learner's function on
random inputs against torch.autograd through ``F.scaled_dot_product_attention``, against
autograd through :func:`helpers.scaled_dot_product_attention` on the torch backend, and
against central finite differences of the NumPy backend.
"""
from __future__ import annotations

import math

import numpy as np

from ._common import as_array, as_float, not_attempted

# Exercise 1: a new query for the worked example's keys.
EXERCISE_1_QUERY = np.array([1.0, -1.0])
# Exercise 3: a score vector that overflows exp() once shifted by 1000.
EXERCISE_3_SCORES = np.array([2.0, -1.0, 0.5, 3.0])
EXERCISE_3_SHIFT = 1000.0
# Exercise 4: three scores; find the temperature that gives the top one weight 0.9.
EXERCISE_4_SCORES = np.array([2.0, 1.0, 0.0])
EXERCISE_4_TARGET = 0.9
# Exercise 2: the key width and the least number of samples accepted.
EXERCISE_2_D_K = 16
EXERCISE_2_MIN_SAMPLES = 2000
# Exercise 5: the shapes (n_q, n_k, d_k, d_v) of the random inputs the check tries, and its seed.
EXERCISE_5_SHAPES = ((3, 4, 5, 2), (1, 6, 3, 3), (5, 2, 8, 4))
EXERCISE_5_SEED = 2024


def check_exercise_1(answer) -> None:
    """The weight that the query EXERCISE_1_QUERY puts on key 1 of the worked example."""
    if not_attempted(1, answer):
        return
    value = as_float(1, answer)
    keys = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])         # K of the worked example
    scores = keys @ EXERCISE_1_QUERY                                # [1, -1, 0]
    r = 1 / math.sqrt(2)
    expected = math.exp(scores[0] * r) / sum(math.exp(s * r) for s in scores)
    unscaled = math.exp(scores[0]) / sum(math.exp(s) for s in scores)
    if math.isclose(value, unscaled, rel_tol=1e-9):
        raise AssertionError("Exercise 1: you used the unscaled scores. Divide the scores "
                             "q . k_j by sqrt(d_k) = sqrt(2) before exponentiating.")
    a = math.exp(r)
    if math.isclose(value, 1 / (2 + a), rel_tol=1e-9):
        raise AssertionError("Exercise 1: that is the weight of the worked example's own token 3, "
                             "whose query is [1, 1]. This exercise changes the query to [1, -1].")
    assert math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-12), (
        f"Exercise 1: got {value!r}. The scores are q . k_j for the keys [1, 0], [0, 1], [1, 1]; "
        "divide them by sqrt(2), then the weight on key 1 is exp(score 1) / (sum of the three exps).")
    print("Exercise 1: correct.")


def check_exercise_2(dot_products) -> None:
    """Samples of q . k for d_k = 16 (unscaled): their mean square must be 16 within 5 SE."""
    if not_attempted(2, dot_products):
        return
    s = np.asarray(dot_products, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"Exercise 2: expected a 1-D array of dot products, got shape {s.shape}")
    n = s.shape[0]
    assert n >= EXERCISE_2_MIN_SAMPLES, (
        f"Exercise 2: {n} samples are too few to see the variance clearly; "
        f"use at least {EXERCISE_2_MIN_SAMPLES}.")
    assert np.all(np.isfinite(s)), "Exercise 2: some dot products are not finite."
    # E[q.k] = 0, so the mean of the squares estimates Var(q.k); its standard error is
    # std(s^2)/sqrt(n), estimated from the same samples.
    mean_square = float(np.mean(s**2))
    standard_error = float(np.std(s**2) / math.sqrt(n))
    if abs(mean_square - 1.0) <= 5 * standard_error:
        raise AssertionError("Exercise 2: the variance is about 1: you divided by sqrt(d_k). "
                             "This exercise asks for the unscaled q . k.")
    d = EXERCISE_2_D_K
    assert abs(mean_square - d) <= 5 * standard_error, (
        f"Exercise 2: the mean square of your samples is {mean_square:.3f}, more than 5 standard "
        f"errors ({standard_error:.3f} each) from d_k = {d}. Are the components independent, "
        "zero-mean and of unit variance, with q and k of width 16?")
    print("Exercise 2: correct.")


def check_exercise_3(answer) -> None:
    """softmax(EXERCISE_3_SCORES + 1000): finite, sums to 1, equals softmax of the unshifted scores."""
    if not_attempted(3, answer):
        return
    p = np.asarray(answer, dtype=np.float64)
    x = EXERCISE_3_SCORES
    if p.shape != x.shape:
        raise ValueError(f"Exercise 3: expected shape {x.shape}, got {p.shape}")
    assert np.all(np.isfinite(p)), (
        "Exercise 3: your answer has nan or inf: exp(1003) overflows float64 (its largest "
        "value is about e^709.8). Subtract the maximum score before exponentiating.")
    e = np.exp(x - x.max())
    expected = e / e.sum()
    np.testing.assert_allclose(p, expected, rtol=1e-12, atol=1e-15,
                               err_msg="Exercise 3: the weights differ from softmax of the scores")
    print("Exercise 3: correct.")


def check_exercise_4(temperature) -> None:
    """A temperature T with softmax(EXERCISE_4_SCORES / T)[0] = 0.9 to within 1e-6."""
    if not_attempted(4, temperature):
        return
    t = as_float(4, temperature)
    assert t > 0 and math.isfinite(t), f"Exercise 4: a temperature must be positive and finite, got {t}"
    z = EXERCISE_4_SCORES / t
    e = np.exp(z - z.max())
    top = float(e[0] / e.sum())
    assert abs(top - EXERCISE_4_TARGET) <= 1e-6, (
        f"Exercise 4: at T = {t:.6g} the top weight is {top:.6f}, not {EXERCISE_4_TARGET}. "
        + ("Too sharp: raise T." if top > EXERCISE_4_TARGET else "Too flat: lower T."))
    print("Exercise 4: correct.")


def exercise_5_inputs():
    """The random (q, k, v, grad_out) the check of exercise 5 tries, one tuple per shape."""
    rng = np.random.default_rng(EXERCISE_5_SEED)
    for n_q, n_k, d_k, d_v in EXERCISE_5_SHAPES:
        yield tuple(rng.normal(size=s) for s in ((n_q, d_k), (n_k, d_k), (n_k, d_v), (n_q, d_v)))


def _exercise_5_references(q, k, v, grad_out):
    """dL/dq for L = sum(grad_out * Attention(q, k, v)) three ways: autograd through PyTorch's
    own attention, autograd through helpers (torch), central differences of helpers (NumPy)."""
    import torch
    import torch.nn.functional as F

    from ..attention import scaled_dot_product_attention

    k_t, v_t, g_t = (torch.tensor(a) for a in (k, v, grad_out))
    q_pytorch = torch.tensor(q, requires_grad=True)
    (F.scaled_dot_product_attention(q_pytorch, k_t, v_t) * g_t).sum().backward()
    q_helpers = torch.tensor(q, requires_grad=True)
    (scaled_dot_product_attention(q_helpers, k_t, v_t)[0] * g_t).sum().backward()

    def loss(q_np):
        return float(np.sum(scaled_dot_product_attention(q_np, k, v)[0] * grad_out))

    step = 1e-6
    by_differences = np.zeros_like(q)
    for index in np.ndindex(q.shape):
        bump = np.zeros_like(q)
        bump[index] = step
        by_differences[index] = (loss(q + bump) - loss(q - bump)) / (2 * step)
    return {"autograd through F.scaled_dot_product_attention": (q_pytorch.grad.numpy(), 1e-9),
            "autograd through helpers (torch)": (q_helpers.grad.numpy(), 1e-9),
            "finite differences of helpers (NumPy)": (by_differences, 1e-6)}


def _exercise_5_diagnose(got, reference, q, k, v, grad_out) -> None:
    """Raise a message naming the slip when a wrong dL/dq is one of the common ones."""
    d_k = q.shape[1]
    s = q @ k.T / np.sqrt(d_k)                              # (n_q, n_k)
    a = np.exp(s - s.max(axis=1, keepdims=True))
    a /= a.sum(axis=1, keepdims=True)                       # (n_q, n_k) weights
    d_a = grad_out @ v.T                                    # (n_q, n_k) dL/dA
    if np.allclose(got, reference * np.sqrt(d_k), rtol=1e-6, atol=1e-9):
        raise AssertionError("Exercise 5: off by a factor sqrt(d_k): the scores are "
                             "q k^T / sqrt(d_k), so dS/dq carries the 1/sqrt(d_k) too.")
    if np.allclose(got, (a * d_a) @ k / np.sqrt(d_k), rtol=1e-6, atol=1e-9):
        raise AssertionError("Exercise 5: you used only the diag(p) part of the softmax's "
                             "Jacobian; the -p p^T part subtracts, in each row, the "
                             "weighted mean sum_j A_ij (dL/dA)_ij.")
    if np.allclose(got, -reference, rtol=1e-6, atol=1e-9):
        raise AssertionError("Exercise 5: the sign is flipped.")


def check_exercise_5(attention_grad_q) -> None:
    """A function (q, k, v, grad_out) -> dL/dq for L = sum(grad_out * Attention(q, k, v)),
    Attention(q, k, v) = softmax(q k^T / sqrt(d_k)) v, all NumPy arrays: q (n_q, d_k),
    k (n_k, d_k), v (n_k, d_v), grad_out (n_q, d_v); the result has q's shape."""
    if not_attempted(5, attention_grad_q):
        return
    if not callable(attention_grad_q):
        raise TypeError("Exercise 5: expected a function (q, k, v, grad_out) -> dL/dq, "
                        f"got {type(attention_grad_q).__name__}")
    for q, k, v, grad_out in exercise_5_inputs():
        shapes = f"q {q.shape}, k {k.shape}, v {v.shape}"
        got = as_array(5, attention_grad_q(q.copy(), k.copy(), v.copy(), grad_out.copy()), q.shape,
                       f"dL/dq for {shapes}")
        references = _exercise_5_references(q, k, v, grad_out)
        reference, _ = references["autograd through F.scaled_dot_product_attention"]
        if not np.allclose(got, reference, rtol=1e-9, atol=1e-9):
            _exercise_5_diagnose(got, reference, q, k, v, grad_out)
        for name, (ref, tol) in references.items():
            error = float(np.max(np.abs(got - ref)))
            assert np.allclose(got, ref, rtol=tol, atol=tol), (
                f"Exercise 5: for {shapes} your dL/dq differs from {name} by up to {error:.3g}. "
                "Chain rule, one step at a time: dL/dA = grad_out v^T; each row of dL/dS is the "
                "softmax's Jacobian (section 3) applied to that row of dL/dA; dL/dq = dL/dS "
                "times dS/dq.")
    print("Exercise 5: correct.")
