"""The exercise checks of chapter 5 accept the right answer, refuse wrong ones."""
import math

import numpy as np
import pytest

import helpers
from helpers.exercises import ch05


def test_none_means_not_attempted(capsys):
    for n in range(1, 6):
        getattr(ch05, f"check_exercise_{n}")(None)
        assert f"Exercise {n}: not attempted yet" in capsys.readouterr().out


def test_ch05_answers():
    ch05.check_exercise_1((math.sin(0.09), math.cos(0.09)))
    with pytest.raises(AssertionError, match="i = 4"):
        ch05.check_exercise_1((math.sin(9e-4), math.cos(9e-4)))
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


def position_term_by_table(k, a, b):
    """A right answer to exercise 5 that derives nothing: build W and read the PE table."""
    d = 2 * len(a)
    w = np.zeros((d, d))
    for m in range(len(a)):
        w[2 * m:2 * m + 2, 2 * m:2 * m + 2] = [[a[m], -b[m]], [b[m], a[m]]]
    i = 30                                    # any position works; that is the point
    pe = helpers.sinusoidal_positional_encoding(i + abs(k) + 1, d)
    return pe[i] @ w @ pe[i + k]


def position_term_formula(sign_of_sine=1.0, with_b=True):
    def term(k, a, b):
        omega = np.array([10000 ** (-2 * m / (2 * len(a))) for m in range(len(a))])
        return a @ np.cos(k * omega) + (sign_of_sine * (b @ np.sin(k * omega)) if with_b else 0.0)
    return term


def test_ch05_exercise_5():
    ch05.check_exercise_5(position_term_by_table)
    ch05.check_exercise_5(position_term_formula())
    with pytest.raises(AssertionError, match="wrong sign"):
        ch05.check_exercise_5(position_term_formula(sign_of_sine=-1.0))
    with pytest.raises(AssertionError, match="b part"):
        ch05.check_exercise_5(position_term_formula(with_b=False))
    with pytest.raises(AssertionError, match="differs"):
        ch05.check_exercise_5(lambda k, a, b: float(k))
    with pytest.raises(TypeError, match="a function"):
        ch05.check_exercise_5(3.0)
    with pytest.raises(TypeError, match="one number"):
        ch05.check_exercise_5(lambda k, a, b: "big")


def test_exercise_5_matrix_commutes_with_every_shift():
    a, b = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.25, -0.7])
    w = ch05.exercise_5_matrix(a, b)
    for k in (1, 4, -9):
        m_k = helpers.positional_rotation(k, 6)
        np.testing.assert_allclose(w @ m_k, m_k @ w, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="same length"):
        ch05.exercise_5_matrix(a, b[:2])


def test_success_prints_no_number(capsys):
    ch05.check_exercise_1((math.sin(0.09), math.cos(0.09)))
    m = np.eye(4)
    for i, w in enumerate((1.0, 0.01)):
        c, s = math.cos(3 * w), math.sin(3 * w)
        m[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[c, -s], [s, c]]
    ch05.check_exercise_2(m)
    ch05.check_exercise_3(141)
    p = np.zeros((4, 4))
    p[[0, 1, 2, 3], [2, 0, 3, 1]] = 1
    ch05.check_exercise_4(p)
    ch05.check_exercise_5(position_term_by_table)
    assert capsys.readouterr().out.splitlines() == [f"Exercise {n}: correct." for n in range(1, 6)]
