"""The exercise checks of chapter 9 accept right answers and explain common wrong ones.

The right answers here are worked out independently of the checks: by torch.autograd and
F.cross_entropy, by closed forms of the geometric sums, or by counting parameters by hand.
"""
import math
import re

import numpy as np
import pytest

from helpers.exercises import ch09


def assert_says_correct_and_nothing_more(capsys, n):
    # a solution's output must not give the answer away: no digits but the exercise number
    out = capsys.readouterr().out
    assert out == f"Exercise {n}: correct.\n"
    assert not re.search(r"\d", out.replace(f"Exercise {n}", ""))


def test_none_means_not_attempted(capsys):
    for n in range(1, 6):
        getattr(ch09, f"check_exercise_{n}")(None)
        assert f"Exercise {n}: not attempted yet" in capsys.readouterr().out


def _schedule(step):
    return 512 ** -0.5 * min(step ** -0.5, step * 4000 ** -1.5)


def test_ch09_exercise_1_uncorrected_first_step(capsys):
    ch09.check_exercise_1(0.1 / math.sqrt(0.02))     # m_1 = 0.1 g, v_1 = 0.02 g^2
    assert_says_correct_and_nothing_more(capsys, 1)
    with pytest.raises(AssertionError, match="with\\* bias correction"):
        ch09.check_exercise_1(1.0)
    with pytest.raises(AssertionError, match="sqrt"):
        ch09.check_exercise_1(0.1 / 0.02)


def test_ch09_exercise_2_peak(capsys):
    ch09.check_exercise_2((2000, (256 * 2000) ** -0.5))
    assert_says_correct_and_nothing_more(capsys, 2)
    with pytest.raises(AssertionError, match="not at step"):
        ch09.check_exercise_2((1999, (256 * 2000) ** -0.5))
    with pytest.raises(AssertionError, match="rate"):
        ch09.check_exercise_2((2000, 2000 ** -0.5))
    with pytest.raises(TypeError, match="pair"):
        ch09.check_exercise_2(2000)


def test_ch09_exercise_3_lambda_lr(capsys):
    ch09.check_exercise_3(lambda epoch: _schedule(epoch + 1))
    assert_says_correct_and_nothing_more(capsys, 3)
    with pytest.raises(AssertionError, match="epoch 0"):
        ch09.check_exercise_3(_schedule)
    with pytest.raises(AssertionError, match="one step ahead"):
        ch09.check_exercise_3(lambda epoch: _schedule(epoch + 2))
    with pytest.raises(TypeError, match="function"):
        ch09.check_exercise_3(0.001)


def test_ch09_exercise_4_variance_of_v_hat(capsys):
    b, t = ch09.EXERCISE_4_BETA2, ch09.EXERCISE_4_STEP
    # sum_s w_s^2 with w_s = (1-b) b^(t-s) / (1-b^t) is a geometric series in b^2.
    sum_squares = ((1 - b) / (1 - b ** t)) ** 2 * (1 - b ** (2 * t)) / (1 - b ** 2)
    ch09.check_exercise_4(2 * sum_squares)
    assert_says_correct_and_nothing_more(capsys, 4)
    with pytest.raises(AssertionError, match="plain average"):
        ch09.check_exercise_4(2 / t)
    with pytest.raises(AssertionError, match="got"):
        ch09.check_exercise_4(2 * sum_squares * 1.01)


def _simulated_variance(beta2, t, runs=200_000, seed=0):
    # Var(v_hat_t) by simulation, with no formula: the EMA of squares of N(0, 1) draws
    rng = np.random.default_rng(seed)
    v = np.zeros(runs)
    for _ in range(t):
        v = beta2 * v + (1 - beta2) * rng.normal(size=runs) ** 2
    return float(np.var(v / (1 - beta2 ** t)))


def test_ch09_exercise_5_closed_form_variance(capsys):
    # sum_s w_s^2 = ((1-b)/(1-b^t))^2 (1 - b^(2t)) / (1 - b^2) = (1-b)(1+b^t) / ((1+b)(1-b^t))
    def variance(beta2, t):
        return 2 * (1 - beta2) * (1 + beta2 ** t) / ((1 + beta2) * (1 - beta2 ** t))

    # the closed form used here agrees with a simulation that knows no formula
    assert variance(0.8, 6) == pytest.approx(_simulated_variance(0.8, 6), rel=0.03)
    assert variance(0.8, 1) == 2.0                      # v_hat_1 = g_1^2, Var(g^2) = 2
    ch09.check_exercise_5(variance)
    assert_says_correct_and_nothing_more(capsys, 5)
    with pytest.raises(AssertionError, match="plain average"):
        ch09.check_exercise_5(lambda beta2, t: 2 / t)
    with pytest.raises(AssertionError, match="limit for large t"):
        ch09.check_exercise_5(lambda beta2, t: 2 * (1 - beta2) / (1 + beta2))
    with pytest.raises(AssertionError, match="variance of v_t"):
        ch09.check_exercise_5(lambda beta2, t: variance(beta2, t) * (1 - beta2 ** t) ** 2)
    with pytest.raises(AssertionError, match="standard deviation"):
        ch09.check_exercise_5(lambda beta2, t: math.sqrt(variance(beta2, t)))
    with pytest.raises(AssertionError, match="geometric series"):
        ch09.check_exercise_5(lambda beta2, t: 1.01 * variance(beta2, t))
    with pytest.raises(TypeError, match="function"):
        ch09.check_exercise_5(0.0203)
