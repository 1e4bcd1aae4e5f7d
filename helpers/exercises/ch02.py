"""Checks for the exercises of chapter 2, "Attention from first principles".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong (and, where a common slip explains the
answer, which slip), or prints a confirmation. The reference values are computed here
from the formulas in plain NumPy, independently of :mod:`helpers`.
"""
from __future__ import annotations

import math

import numpy as np

from ._common import as_float, not_attempted

# Exercise 3: a score vector that overflows exp() once shifted by 1000.
EXERCISE_3_SCORES = np.array([2.0, -1.0, 0.5, 3.0])
EXERCISE_3_SHIFT = 1000.0
# Exercise 4: three scores; find the temperature that gives the top one weight 0.9.
EXERCISE_4_SCORES = np.array([2.0, 1.0, 0.0])
EXERCISE_4_TARGET = 0.9
# Exercise 2: the key width and the least number of samples accepted.
EXERCISE_2_D_K = 16
EXERCISE_2_MIN_SAMPLES = 2000


def check_exercise_1(answer) -> None:
    """The weight that token 3 puts on token 1 in seed 003 §5's example: 1/(2 + e^(1/sqrt 2))."""
    if not_attempted(1, answer):
        return
    value = as_float(1, answer)
    a = math.exp(1 / math.sqrt(2))
    expected = 1 / (2 + a)
    if math.isclose(value, 1 / (2 + math.e), rel_tol=1e-9):
        raise AssertionError("Exercise 1: you used e^1 and e^2, the unscaled scores. "
                             "Divide the scores [1, 1, 2] by sqrt(d_k) = sqrt(2) first.")
    if math.isclose(value, a / (2 * a + 1), rel_tol=1e-9):
        raise AssertionError("Exercise 1: that is a weight of row 1 (scores [1, 0, 1]/sqrt 2). "
                             "Token 3's scores are row 3 of QK^T: [1, 1, 2].")
    assert math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-12), (
        f"Exercise 1: got {value!r}. Row 3 of the scaled scores is [1, 1, 2]/sqrt(2); "
        "the weight on token 1 is exp(score 1) / (sum of the three exps).")
    print(f"Exercise 1: correct, A[3, 1] = 1/(2 + e^(1/sqrt 2)) = {expected:.6f}.")


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
    print(f"Exercise 2: correct, Var(q.k) ~ {mean_square:.2f} = d_k = {d} "
          f"within 5 standard errors ({5 * standard_error:.2f}).")


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
    print("Exercise 3: correct, softmax(x + 1000) = softmax(x) =", np.round(expected, 4))


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
    print(f"Exercise 4: correct, at T = {t:.4f} the top weight is {top:.6f}.")
