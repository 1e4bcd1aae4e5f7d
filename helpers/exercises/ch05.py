"""Checks for the exercises of chapter 5, "Positional encoding".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong (and, where a common slip explains the
answer, which slip), or prints "Exercise N: correct." and nothing else (no number that
would give the answer away). The reference values of exercises 1-4 are computed here from
the formulas in plain NumPy, independently of :mod:`helpers`; exercise 5 (a derivation) is
tested against the PE table of helpers on both backends.
"""
from __future__ import annotations

import math

import numpy as np

from ._common import not_attempted

# Exercise 1: two entries of the PE table.
# (position 9, not 0-5: section 2 of the chapter prints the table for positions 0-5)
EXERCISE_1_POS, EXERCISE_1_D_MODEL, EXERCISE_1_COLUMNS = 9, 8, (4, 5)
# Exercise 2: the shift matrix M_k.
EXERCISE_2_K, EXERCISE_2_D_MODEL = 3, 4
# Exercise 3: the pair whose wavelength is closest to a target.
EXERCISE_3_D_MODEL, EXERCISE_3_WAVELENGTH = 512, 1000.0
# Exercise 4: a permutation and its matrix.
EXERCISE_4_PERM = [2, 0, 3, 1]


def _omega(i: int, d_model: int) -> float:
    return 10000.0 ** (-2 * i / d_model)


def check_exercise_1(answer) -> None:
    """(PE[9, 4], PE[9, 5]) for d_model = 8: column 4 = 2i with i = 2, so omega = 10000^(-4/8)."""
    if not_attempted(1, answer):
        return
    try:
        a, b = (float(v) for v in answer)
    except (TypeError, ValueError):
        raise TypeError("Exercise 1: expected two numbers (PE[9, 4], PE[9, 5])") from None
    pos = EXERCISE_1_POS
    expected = (math.sin(pos * _omega(2, 8)), math.cos(pos * _omega(2, 8)))  # sin(0.09), cos(0.09)
    slip = (math.sin(pos * _omega(4, 8)), math.cos(pos * _omega(4, 8)))
    if np.allclose((a, b), slip, rtol=0, atol=1e-9):
        raise AssertionError("Exercise 1: you used i = 4 in the exponent. Column 4 is 2i, so i = 2 "
                             "and the exponent is 2i/d_model = 4/8.")
    if np.allclose((a, b), expected[::-1], rtol=0, atol=1e-9):
        raise AssertionError("Exercise 1: sine and cosine are swapped: even columns hold the sine.")
    assert np.allclose((a, b), expected, rtol=0, atol=1e-9), (
        f"Exercise 1: got ({a}, {b}). PE[pos, 2i] = sin(pos / 10000^(2i/d_model)) and "
        "PE[pos, 2i+1] = cos(the same angle); here the angle is 9 / 10000^(4/8).")
    print("Exercise 1: correct.")


def check_exercise_2(answer) -> None:
    """M_k (4, 4) for k = 3: block i is [[cos 3w_i, -sin 3w_i], [sin 3w_i, cos 3w_i]]."""
    if not_attempted(2, answer):
        return
    m = np.asarray(answer, dtype=np.float64)
    d, k = EXERCISE_2_D_MODEL, EXERCISE_2_K
    assert m.shape == (d, d), f"Exercise 2: expected shape ({d}, {d}), got {m.shape}"
    expected = np.zeros((d, d))
    for i in range(d // 2):
        c, s = math.cos(k * _omega(i, d)), math.sin(k * _omega(i, d))
        expected[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[c, -s], [s, c]]
    if np.allclose(m, expected.T, atol=1e-9) and not np.allclose(m, expected, atol=1e-9):
        raise AssertionError("Exercise 2: that is the transpose: the column-vector form. With row "
                             "vectors, PE(pos + k) = PE(pos) @ M_k, so block i is "
                             "[[cos, -sin], [sin, cos]].")
    np.testing.assert_allclose(m, expected, rtol=0, atol=1e-9, err_msg=(
        "Exercise 2: M_k is block-diagonal; block i is [[cos(k w_i), -sin(k w_i)], "
        "[sin(k w_i), cos(k w_i)]] with w_i = 10000^(-2i/d_model)."))
    print("Exercise 2: correct.")


def check_exercise_3(answer) -> None:
    """The pair index i (d_model = 512) whose wavelength 2 pi 10000^(2i/512) is closest to 1000."""
    if not_attempted(3, answer):
        return
    if isinstance(answer, bool) or not isinstance(answer, (int, np.integer)):
        raise TypeError(f"Exercise 3: expected an integer pair index, got {type(answer).__name__}")
    i = np.arange(EXERCISE_3_D_MODEL // 2)
    wavelengths = 2 * np.pi * 10000.0 ** (2 * i / EXERCISE_3_D_MODEL)
    best = int(np.argmin(np.abs(wavelengths - EXERCISE_3_WAVELENGTH)))
    if answer == 2 * best or answer == 2 * best + 1:
        raise AssertionError(f"Exercise 3: {answer} is a column (dimension) index; the question asks "
                             "for the pair index i, with columns 2i and 2i+1.")
    assert 0 <= answer < EXERCISE_3_D_MODEL // 2, (
        f"Exercise 3: pair indices run from 0 to {EXERCISE_3_D_MODEL // 2 - 1}, got {answer}")
    assert answer == best, (
        f"Exercise 3: pair {answer} has wavelength {wavelengths[answer]:.1f} positions; another pair "
        "is closer to 1000. Solve 2 pi 10000^(2i/512) = 1000 for i and round.")
    print("Exercise 3: correct.")


def check_exercise_4(answer) -> None:
    """The permutation matrix P (4, 4) with P @ X == X[perm] for every X."""
    if not_attempted(4, answer):
        return
    p = np.asarray(answer, dtype=np.float64)
    n = len(EXERCISE_4_PERM)
    assert p.shape == (n, n), f"Exercise 4: expected shape ({n}, {n}), got {p.shape}"
    assert np.all((p == 0) | (p == 1)) and np.all(p.sum(0) == 1) and np.all(p.sum(1) == 1), (
        "Exercise 4: a permutation matrix has exactly one 1 in each row and each column.")
    x = np.arange(n * 3, dtype=np.float64).reshape(n, 3)
    if np.array_equal(p.T @ x, x[EXERCISE_4_PERM]):
        raise AssertionError("Exercise 4: that is P transposed (it undoes the permutation): row r "
                             "of P must pick row perm[r] of X, so P[r, perm[r]] = 1.")
    assert np.array_equal(p @ x, x[EXERCISE_4_PERM]), (
        "Exercise 4: row r of P @ X must be row perm[r] of X, so P[r, perm[r]] = 1.")
    print("Exercise 4: correct.")


# Exercise 5 (derivation): the position-position term p_i W p_j^T when W = W^Q (W^K)^T is
# block-diagonal with one scaled rotation [[a_m, -b_m], [b_m, a_m]] per sine/cosine pair m.
EXERCISE_5_D_MODELS = (8, 16)
EXERCISE_5_OFFSETS = range(-12, 13)
EXERCISE_5_POSITIONS = (0, 5, 17)


def exercise_5_matrix(a, b):
    """W (d_model, d_model), d_model = 2 len(a): block m (rows and columns 2m, 2m+1) is
    [[a[m], -b[m]], [b[m], a[m]]], a scaled rotation that commutes with every M_k."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"exercise_5_matrix: a and b must be 1-D of the same length, got shapes "
                         f"{a.shape} and {b.shape}")
    w = np.zeros((2 * len(a), 2 * len(a)))
    for m, (am, bm) in enumerate(zip(a, b)):
        w[2 * m:2 * m + 2, 2 * m:2 * m + 2] = [[am, -bm], [bm, am]]
    return w


def check_exercise_5(position_term) -> None:
    """position_term(k, a, b) -> p_i W p_(i+k)^T for the W of exercise_5_matrix(a, b), a number.

    Tried for d_model in EXERCISE_5_D_MODELS with random a, b, every offset k in
    EXERCISE_5_OFFSETS (negative ones too) and several i: it must equal the product
    computed from helpers.sinusoidal_positional_encoding, on NumPy and on torch.
    """
    if not_attempted(5, position_term):
        return
    if not callable(position_term):
        raise TypeError("Exercise 5: expected a function position_term(k, a, b), got "
                        f"{type(position_term).__name__}")
    import torch

    from ..positional import sinusoidal_positional_encoding
    rng = np.random.default_rng(5)
    for d_model in EXERCISE_5_D_MODELS:
        a, b = rng.normal(size=d_model // 2), rng.normal(size=d_model // 2)
        w = exercise_5_matrix(a, b)
        n = max(EXERCISE_5_POSITIONS) + max(EXERCISE_5_OFFSETS) + 1
        pe = sinusoidal_positional_encoding(n, d_model)                                   # (n, d)
        pe_t = sinusoidal_positional_encoding(n, d_model, backend="torch", dtype=torch.float64)
        table = pe @ w @ pe.T                                                             # (n, n)
        np.testing.assert_allclose((pe_t @ torch.tensor(w) @ pe_t.T).numpy(), table, rtol=0, atol=1e-12)
        omega = 10000.0 ** (-np.arange(0, d_model, 2) / d_model)
        for k in EXERCISE_5_OFFSETS:
            try:
                got = float(position_term(k, a.copy(), b.copy()))
            except (TypeError, ValueError):
                raise TypeError("Exercise 5: position_term(k, a, b) should return one number") from None
            for i in EXERCISE_5_POSITIONS:
                if i + k < 0:
                    continue
                expected = table[i, i + k]
                if math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9):
                    continue
                if math.isclose(got, float(a @ np.cos(k * omega) - b @ np.sin(k * omega)),
                                rel_tol=1e-9, abs_tol=1e-9):
                    raise AssertionError("Exercise 5: the sine term has the wrong sign. Work out "
                                         "[sin, cos] [[a, -b], [b, a]] [sin, cos]^T for positions i "
                                         "and i + k: which of sin(k w) and sin(-k w) appears?")
                if math.isclose(got, float(a @ np.cos(k * omega)), rel_tol=1e-9, abs_tol=1e-9):
                    raise AssertionError("Exercise 5: right for the a part; the b part of each block "
                                         "adds a term too (zero only at k = 0).")
                raise AssertionError(f"Exercise 5: for d_model = {d_model} and k = {k}, your value "
                                     f"differs from p_i W p_(i+k)^T computed from the PE table (i = {i}). "
                                     "Work one pair m at a time.")
    print("Exercise 5: correct.")
