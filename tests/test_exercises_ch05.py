"""The exercise checks of chapter 5 accept the right answer, refuse wrong ones."""
import math

import numpy as np
import pytest

from helpers.exercises import ch05


def test_none_means_not_attempted(capsys):
    for n in range(1, 5):
        getattr(ch05, f"check_exercise_{n}")(None)
        assert f"Exercise {n}: not attempted yet" in capsys.readouterr().out


def test_ch05_answers():
    ch05.check_exercise_1((math.sin(0.03), math.cos(0.03)))
    with pytest.raises(AssertionError, match="i = 4"):
        ch05.check_exercise_1((math.sin(3e-4), math.cos(3e-4)))
    m = np.eye(4)
    for i, w in enumerate((1.0, 0.01)):
        c, s = math.cos(3 * w), math.sin(3 * w)
        m[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[c, -s], [s, c]]
    ch05.check_exercise_2(m)
    with pytest.raises(AssertionError, match="transpose"):
        ch05.check_exercise_2(m.T)
    # 2 pi 10000^(2i/512) = 1000  =>  i = 128 log(1000 / 2 pi) / log(10000) = 140.9
    ch05.check_exercise_3(141)
    with pytest.raises(AssertionError):
        ch05.check_exercise_3(140)
    with pytest.raises(AssertionError, match="column"):
        ch05.check_exercise_3(282)
    p = np.zeros((4, 4))
    p[[0, 1, 2, 3], [2, 0, 3, 1]] = 1
    ch05.check_exercise_4(p)
    with pytest.raises(AssertionError, match="transposed"):
        ch05.check_exercise_4(p.T)
