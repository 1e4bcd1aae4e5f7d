"""The exercise checks of chapter 1 accept the right answer, refuse wrong ones."""

import numpy as np
import pytest

from helpers.exercises import ch01


def test_none_means_not_attempted(capsys):
    for n in range(1, 5):
        getattr(ch01, f"check_exercise_{n}")(None)
        assert f"Exercise {n}: not attempted yet" in capsys.readouterr().out


def test_ch01_answers():
    ch01.check_exercise_1(["b", "an", "an", "a", " ", "b", "an", "d", "an", "a"])
    with pytest.raises(AssertionError, match=r"merged \(n, a\)"):
        ch01.check_exercise_1(["b", "a", "na", "na", " ", "b", "a", "n", "d", "a", "na"])
    x = np.zeros((4, 6))
    x[[0, 1, 2, 3], [4, 0, 4, 2]] = 1
    ch01.check_exercise_2(x)
    with pytest.raises(AssertionError, match="column convention"):
        ch01.check_exercise_2(x.T)
    ch01.check_exercise_3(37_888_000)
    with pytest.raises(AssertionError, match="one matrix's worth"):
        ch01.check_exercise_3(37000 * 512)
    with pytest.raises(AssertionError, match="still has"):
        ch01.check_exercise_4(0)


def test_ch01_exercise_4_accepts_exactly_the_fewest_merges():
    accepted = []
    for m in range(50, 70):
        try:
            ch01.check_exercise_4(m)
            accepted.append(m)
        except AssertionError:
            pass
    assert len(accepted) == 1
