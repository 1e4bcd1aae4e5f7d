"""Checks for the exercises of chapter 10, "The cost of attention, and how to cut it".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong (and, where a common slip explains the
answer, which slip), or prints a confirmation. The reference values are computed here
from the formulas in plain Python and NumPy, independently of :mod:`helpers`.
"""
from __future__ import annotations

import math

import numpy as np

from ._common import not_attempted

# Exercise 1: one layer's attention weights, one sequence, float32.
EXERCISE_1 = dict(n=4096, d_model=1024, num_heads=16, itemsize=4)
# Exercise 2: the (n, window) grid a learner's count function is tried on.
EXERCISE_2_NS = range(1, 41)
EXERCISE_2_WINDOWS = range(0, 45)
# Exercise 4: causal tiled attention.
EXERCISE_4 = dict(n=1024, block=128)


def _as_int(n: int, answer) -> int:
    if isinstance(answer, bool):
        raise TypeError(f"Exercise {n}: expected a whole number, got a bool")
    try:
        value = int(answer)
    except (TypeError, ValueError):
        raise TypeError(f"Exercise {n}: expected a whole number, got {type(answer).__name__}") from None
    if value != answer:
        raise AssertionError(f"Exercise {n}: expected a whole number, got {answer!r}")
    return value


def check_exercise_1(answer) -> None:
    """Bytes of one layer's attention weights: h * n^2 * itemsize = 16 * 4096^2 * 4 = 2^30."""
    if not_attempted(1, answer):
        return
    value = _as_int(1, answer)
    n, h, itemsize = EXERCISE_1["n"], EXERCISE_1["num_heads"], EXERCISE_1["itemsize"]
    expected = h * n * n * itemsize
    if value == n * n * itemsize:
        raise AssertionError("Exercise 1: that is one head's matrix. Every head has its own "
                             "(n, n) weights: multiply by the number of heads.")
    if value == h * n * n * 8:
        raise AssertionError("Exercise 1: float32 takes 4 bytes per number, not 8.")
    if value == h * n * n:
        raise AssertionError("Exercise 1: that is the number of weights; the question asks for bytes.")
    if value == n * EXERCISE_1["d_model"] * itemsize * h:
        raise AssertionError("Exercise 1: the weights matrix is (n, n) per head; d_model does "
                             "not enter its size.")
    assert value == expected, (f"Exercise 1: got {value}. One head's weights are an (n, n) matrix "
                               "of float32 numbers; there are h heads.")
    print(f"Exercise 1: correct, {h} x {n}^2 x {itemsize} bytes = {expected} bytes "
          f"= {expected / 2**30:g} GiB, for a single layer and a single sequence.")


def check_exercise_2(count_function) -> None:
    """A function (n, window) -> allowed pairs of |i - j| <= window; tried on a grid."""
    if not_attempted(2, count_function):
        return
    if not callable(count_function):
        raise TypeError(f"Exercise 2: expected a function count(n, window), "
                        f"got {type(count_function).__name__}")
    for n in EXERCISE_2_NS:
        i = np.arange(n)
        for w in EXERCISE_2_WINDOWS:
            expected = int(np.sum(np.abs(i[:, None] - i[None, :]) <= w))
            got = count_function(n, w)
            if got != expected and w >= n and got == n * (2 * w + 1) - w * (w + 1):
                raise AssertionError(
                    f"Exercise 2: count({n}, {w}) = {got}, but the mask has {expected} True "
                    "entries: when the window is wider than the sequence there are at most "
                    "n - 1 neighbours on each side. Replace w by min(w, n - 1).")
            assert got == expected, (
                f"Exercise 2: count({n}, {w}) = {got!r}, but the mask has {expected} True entries. "
                "Count the pairs row by row: row i allows the keys max(0, i-w)..min(n-1, i+w).")
    print("Exercise 2: correct on every n in 1..40 and window in 0..44.")


def check_exercise_3(merge) -> None:
    """A function merging two online-softmax states (m_a, l_a), (m_b, l_b) -> (m, l)."""
    if not_attempted(3, merge):
        return
    if not callable(merge):
        raise TypeError(f"Exercise 3: expected a function merge(m_a, l_a, m_b, l_b), "
                        f"got {type(merge).__name__}")
    rng = np.random.default_rng(10)
    for trial in range(20):
        a = rng.normal(scale=5.0, size=rng.integers(1, 8))
        b = rng.normal(scale=5.0, size=rng.integers(1, 8)) + (30.0 if trial % 2 else -30.0)
        m_a, m_b = float(a.max()), float(b.max())
        l_a, l_b = float(np.exp(a - m_a).sum()), float(np.exp(b - m_b).sum())
        both = np.concatenate([a, b])
        m_ref = float(both.max())
        l_ref = float(np.exp(both - m_ref).sum())
        result = merge(m_a, l_a, m_b, l_b)
        try:
            m, l = (float(x) for x in result)
        except (TypeError, ValueError):
            raise TypeError(f"Exercise 3: merge must return a pair (m, l), got {result!r}") from None
        assert math.isclose(m, m_ref, rel_tol=1e-12, abs_tol=1e-12), (
            f"Exercise 3: the merged maximum should be max(m_a, m_b) = {m_ref}, got {m}.")
        if math.isclose(l, l_a + l_b, rel_tol=1e-9):
            raise AssertionError("Exercise 3: you added l_a and l_b as they are, but they were "
                                 "summed relative to different maxima: rescale each by "
                                 "exp(its own m - the merged m) first.")
        assert math.isclose(l, l_ref, rel_tol=1e-12), (
            f"Exercise 3: merged sum {l} != {l_ref}, the sum of exp(x - m) over both blocks.")
    print("Exercise 3: correct: m = max(m_a, m_b), l = l_a e^(m_a - m) + l_b e^(m_b - m). "
          "Merging in any order gives the same state, which is what lets a GPU split the keys "
          "across thread blocks.")


def check_exercise_4(answer) -> None:
    """Score tiles a causal tiled attention computes: T(T+1)/2 with T = n / block = 8."""
    if not_attempted(4, answer):
        return
    value = _as_int(4, answer)
    tiles_per_side = EXERCISE_4["n"] // EXERCISE_4["block"]
    expected = tiles_per_side * (tiles_per_side + 1) // 2
    if value == tiles_per_side * tiles_per_side:
        raise AssertionError("Exercise 4: that is every tile. With a causal mask a tile whose "
                             "keys all come after its queries is skipped.")
    if value == tiles_per_side * (tiles_per_side - 1) // 2:
        raise AssertionError("Exercise 4: you left out the diagonal tiles; they are computed "
                             "(and masked inside).")
    assert value == expected, (f"Exercise 4: got {value}. Query block i needs key blocks "
                               "0..i: add up 1 + 2 + ... + T.")
    print(f"Exercise 4: correct, {expected} of the {tiles_per_side ** 2} tiles: the work is "
          f"about halved, still O(n^2 d).")
