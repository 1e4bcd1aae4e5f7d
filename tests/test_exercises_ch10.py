"""Chapter 10's exercise checks accept right answers and explain the common wrong ones."""
import math

import pytest

from helpers.exercises.ch10 import (check_exercise_1, check_exercise_2, check_exercise_3,
                                    check_exercise_4)


@pytest.mark.parametrize("check", [check_exercise_1, check_exercise_2, check_exercise_3, check_exercise_4])
def test_none_is_not_attempted(check, capsys):
    check(None)
    assert "not attempted yet" in capsys.readouterr().out


def test_exercise_1(capsys):
    check_exercise_1(2**30)                      # 16 heads x 4096^2 x 4 bytes
    assert "correct" in capsys.readouterr().out
    for wrong, hint in ((4096**2 * 4, "one head"), (16 * 4096**2 * 8, "4 bytes"),
                        (16 * 4096**2, "bytes"), (2**30 + 1, "got")):
        with pytest.raises(AssertionError, match=hint):
            check_exercise_1(wrong)
    with pytest.raises(TypeError):
        check_exercise_1("a lot")


def test_exercise_2(capsys):
    def by_rows(n, w):                           # count row by row, no closed form
        return sum(min(n - 1, i + w) - max(0, i - w) + 1 for i in range(n))
    check_exercise_2(by_rows)
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="min\\(w, n - 1\\)"):
        check_exercise_2(lambda n, w: n * (2 * w + 1) - w * (w + 1))     # forgets to clip w
    with pytest.raises(AssertionError, match="count\\("):
        check_exercise_2(lambda n, w: n * (2 * w + 1))                    # forgets the ends
    with pytest.raises(TypeError):
        check_exercise_2(42)


def test_exercise_3(capsys):
    def merge(m_a, l_a, m_b, l_b):
        m = max(m_a, m_b)
        return m, l_a * math.exp(m_a - m) + l_b * math.exp(m_b - m)
    check_exercise_3(merge)
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="rescale"):
        check_exercise_3(lambda m_a, l_a, m_b, l_b: (max(m_a, m_b), l_a + l_b))
    with pytest.raises(AssertionError, match="maximum"):
        check_exercise_3(lambda m_a, l_a, m_b, l_b: (min(m_a, m_b), l_a + l_b))


def test_exercise_4(capsys):
    check_exercise_4(36)                         # 1 + 2 + ... + 8 tiles
    assert "correct" in capsys.readouterr().out
    for wrong, hint in ((64, "every tile"), (28, "diagonal"), (35, "got 35")):
        with pytest.raises(AssertionError, match=hint):
            check_exercise_4(wrong)
