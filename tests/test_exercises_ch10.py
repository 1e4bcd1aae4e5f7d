"""Chapter 10's exercise checks accept right answers, explain the common wrong ones, and
print nothing on success but "Exercise N: correct." (no digit that gives an answer away)."""
import re

import numpy as np
import pytest
import torch
from array_api_compat import array_namespace

from helpers.exercises.ch10 import (check_exercise_1, check_exercise_2, check_exercise_3,
                                    check_exercise_4)


@pytest.mark.parametrize("check", [check_exercise_1, check_exercise_2, check_exercise_3, check_exercise_4])
def test_none_is_not_attempted(check, capsys):
    check(None)
    assert "not attempted yet" in capsys.readouterr().out


def assert_says_only_correct(n, capsys):
    out = capsys.readouterr().out
    assert out == f"Exercise {n}: correct.\n"
    assert not re.search(r"\d", out.replace(f"Exercise {n}", ""))


def test_exercise_1(capsys):
    check_exercise_1(32 * 8192**2 * 2)           # h heads x n^2 weights x 2 bytes (float16)
    assert_says_only_correct(1, capsys)
    for wrong, hint in ((8192**2 * 2, "one head"), (32 * 8192**2 * 4, "2 bytes"),
                        (32 * 8192**2, "bytes"), (8192 * 2048 * 2 * 32, "d_model"),
                        (2**32 + 1, "got")):
        with pytest.raises(AssertionError, match=hint):
            check_exercise_1(wrong)
    with pytest.raises(TypeError):
        check_exercise_1("a lot")


def brute_count(n, s):
    """The causal window s - 1 | causal strided s mask, counted entry by entry."""
    return sum(1 for i in range(n) for j in range(i + 1) if i - j <= s - 1 or (i - j) % s == 0)


def test_exercise_2(capsys):
    check_exercise_2(brute_count)
    assert_says_only_correct(2, capsys)
    with pytest.raises(AssertionError, match="twice"):
        check_exercise_2(lambda n, s: brute_count(n, s) + n)            # the diagonal twice

    def unclipped(n, s):                         # window s - 1 not clipped to n - 1
        w, (q, r) = s - 1, divmod(n, s)
        strided = r * (q + 1) * (q + 2) // 2 + (s - r) * q * (q + 1) // 2
        return n * (w + 1) - w * (w + 1) // 2 + strided - n
    with pytest.raises(AssertionError, match="min\\(s - 1, n - 1\\)"):
        check_exercise_2(unclipped)
    with pytest.raises(AssertionError, match="count\\("):
        check_exercise_2(lambda n, s: n * s)
    with pytest.raises(TypeError):
        check_exercise_2(42)


def merge(state_a, state_b):
    (m_a, l_a, o_a), (m_b, l_b, o_b) = state_a, state_b
    xp = array_namespace(m_a, m_b)
    m = xp.maximum(m_a, m_b)
    w_a, w_b = l_a * xp.exp(m_a - m), l_b * xp.exp(m_b - m)
    return m, w_a + w_b, (w_a[:, None] * o_a + w_b[:, None] * o_b) / (w_a + w_b)[:, None]


def test_exercise_3_accepts_the_merge_on_both_backends(capsys):
    calls = []

    def recording(a, b):
        calls.append(type(a[0]))
        return merge(a, b)
    check_exercise_3(recording)
    assert_says_only_correct(3, capsys)
    assert {np.ndarray, torch.Tensor} <= set(calls)


def with_output(wrong_o):
    """merge with the right m and l but the output replaced by wrong_o(states, m, w_a, w_b)."""
    def wrong(a, b):
        m, l, _ = merge(a, b)
        w_a, w_b = a[1] * np.exp(a[0] - m), b[1] * np.exp(b[0] - m)
        return m, l, wrong_o(a, b, w_a, w_b)
    return wrong


def test_exercise_3_explains_the_common_slips():
    np_max = np.maximum
    with pytest.raises(AssertionError, match="rescale"):
        check_exercise_3(lambda a, b: (np_max(a[0], b[0]), a[1] + b[1], a[2]))
    with pytest.raises(AssertionError, match="maximum"):
        check_exercise_3(lambda a, b: (np.minimum(a[0], b[0]), a[1], a[2]))
    with pytest.raises(AssertionError, match="equal weights"):
        check_exercise_3(with_output(lambda a, b, w_a, w_b: (a[2] + b[2]) / 2))
    with pytest.raises(AssertionError, match="different maxima"):
        check_exercise_3(with_output(
            lambda a, b, w_a, w_b: (a[1][:, None] * a[2] + b[1][:, None] * b[2]) / (a[1] + b[1])[:, None]))
    with pytest.raises(AssertionError, match="without dividing"):
        check_exercise_3(with_output(lambda a, b, w_a, w_b: w_a[:, None] * a[2] + w_b[:, None] * b[2]))
    with pytest.raises(TypeError, match="triple"):
        check_exercise_3(lambda a, b: a[0])


def test_exercise_3_wants_torch_out_for_torch_in():
    def numpy_only(a, b):
        m, l, o = merge(*(tuple(np.asarray(x) for x in s) for s in (a, b)))
        return m, l, o
    with pytest.raises(AssertionError, match="torch in, torch out"):
        check_exercise_3(numpy_only)


def test_exercise_4(capsys):
    # query block a (rows 256a..256a+255) needs key blocks 0..2a+1: 2 + 4 + 6 + 8
    check_exercise_4(20)
    assert_says_only_correct(4, capsys)
    for wrong, hint in ((32, "every tile"), (36, "square tiles"), (10, "square tiles"),
                        (12, "cross the diagonal"), (21, "got 21")):
        with pytest.raises(AssertionError, match=hint):
            check_exercise_4(wrong)
