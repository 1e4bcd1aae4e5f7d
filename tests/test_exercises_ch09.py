"""The exercise checks of chapter 9 accept right answers and explain common wrong ones.

The right answers here are worked out independently of the checks: by torch.autograd and
F.cross_entropy, by closed forms of the geometric sums, or by counting parameters by hand.
"""
import math

import pytest

from helpers.exercises import ch09


def test_none_means_not_attempted(capsys):
    for n in range(1, 5):
        getattr(ch09, f"check_exercise_{n}")(None)
        assert f"Exercise {n}: not attempted yet" in capsys.readouterr().out


def _schedule(step):
    return 512 ** -0.5 * min(step ** -0.5, step * 4000 ** -1.5)


def test_ch09_exercise_1_uncorrected_first_step(capsys):
    ch09.check_exercise_1(0.1 / math.sqrt(0.02))     # m_1 = 0.1 g, v_1 = 0.02 g^2
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="with\\* bias correction"):
        ch09.check_exercise_1(1.0)
    with pytest.raises(AssertionError, match="sqrt"):
        ch09.check_exercise_1(0.1 / 0.02)


def test_ch09_exercise_2_peak(capsys):
    ch09.check_exercise_2((2000, (256 * 2000) ** -0.5))
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="not at step"):
        ch09.check_exercise_2((1999, (256 * 2000) ** -0.5))
    with pytest.raises(AssertionError, match="rate"):
        ch09.check_exercise_2((2000, 2000 ** -0.5))
    with pytest.raises(TypeError, match="pair"):
        ch09.check_exercise_2(2000)


def test_ch09_exercise_3_lambda_lr(capsys):
    ch09.check_exercise_3(lambda epoch: _schedule(epoch + 1))
    assert "correct" in capsys.readouterr().out
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
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="plain average"):
        ch09.check_exercise_4(2 / t)
    with pytest.raises(AssertionError, match="got"):
        ch09.check_exercise_4(2 * sum_squares * 1.01)
