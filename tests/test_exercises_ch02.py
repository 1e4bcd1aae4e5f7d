"""Chapter 2's exercise checks accept right answers, refuse wrong ones and say why."""
import math

import numpy as np
import pytest

from helpers.exercises import ch02


@pytest.mark.parametrize("check", [ch02.check_exercise_1, ch02.check_exercise_2,
                                   ch02.check_exercise_3, ch02.check_exercise_4])
def test_none_is_not_attempted(check, capsys):
    check(None)
    assert "not attempted yet" in capsys.readouterr().out


def test_exercise_1():
    r = 1 / math.sqrt(2)
    ch02.check_exercise_1(math.exp(r) / (2 * math.exp(r) + math.exp(2 * r)))
    with pytest.raises(AssertionError, match="unscaled"):
        ch02.check_exercise_1(math.e / (2 * math.e + math.e**2))
    with pytest.raises(AssertionError, match="row 1"):
        ch02.check_exercise_1(math.exp(r) / (2 * math.exp(r) + 1))
    with pytest.raises(AssertionError):
        ch02.check_exercise_1(1 / 3)
    with pytest.raises(TypeError):
        ch02.check_exercise_1("a quarter")


def test_exercise_2():
    rng = np.random.default_rng(7)
    q, k = rng.normal(size=(2, 4000, 16))
    ch02.check_exercise_2(np.sum(q * k, axis=1))
    with pytest.raises(AssertionError, match="sqrt"):
        ch02.check_exercise_2(np.sum(q * k, axis=1) / 4)
    with pytest.raises(AssertionError):                      # d_k = 8, not 16
        ch02.check_exercise_2(np.sum(q[:, :8] * k[:, :8], axis=1))
    with pytest.raises(AssertionError, match="too few"):
        ch02.check_exercise_2(np.sum(q * k, axis=1)[:100])
    with pytest.raises(ValueError):
        ch02.check_exercise_2(q * k)


def test_exercise_3():
    x = ch02.EXERCISE_3_SCORES
    ch02.check_exercise_3(np.exp(x) / np.exp(x).sum())       # softmax(x) = softmax(x + 1000)
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(x + 1000) / np.exp(x + 1000).sum()
    with pytest.raises(AssertionError, match="overflow"):
        ch02.check_exercise_3(naive)
    with pytest.raises(AssertionError):
        ch02.check_exercise_3(np.full(4, 0.25))
    with pytest.raises(ValueError):
        ch02.check_exercise_3(np.ones(3) / 3)


def test_exercise_4():
    # top weight 1/(1 + u + u^2) = 0.9 with u = e^(-1/T): u = (sqrt(13)/3 - 1)/2
    t = -1 / math.log((math.sqrt(13) / 3 - 1) / 2)
    ch02.check_exercise_4(t)
    with pytest.raises(AssertionError, match="raise T"):
        ch02.check_exercise_4(t / 2)
    with pytest.raises(AssertionError, match="lower T"):
        ch02.check_exercise_4(t * 2)
    with pytest.raises(AssertionError):
        ch02.check_exercise_4(-1.0)
