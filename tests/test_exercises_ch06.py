"""The exercise checks of chapter 6 accept the right answer, refuse the usual slips
with a message that names them, and say "not attempted yet" for None."""
import math

import numpy as np
import pytest
import torch

from helpers.exercises import ch06


def test_none_means_not_attempted(capsys):
    for n in range(1, 5):
        getattr(ch06, f"check_exercise_{n}")(None)
        assert f"Exercise {n}: not attempted yet" in capsys.readouterr().out


def refuses(check, answer, words):
    with pytest.raises(AssertionError) as info:
        check(answer)
    assert words in str(info.value), str(info.value)


def test_ch06_exercise_1():
    x = np.array([2.0, 4, 4, 4, 5, 5, 7, 9])
    ch06.check_exercise_1(torch.tensor((x - 5) / 2))                     # mu 5, sigma^2 = 32/8 = 4
    refuses(ch06.check_exercise_1, (x - 5) / math.sqrt(32 / 7), "unbiased")
    refuses(ch06.check_exercise_1, x - 5, "did not divide")
    refuses(ch06.check_exercise_1, np.zeros(3), "shape (8,)")


def test_ch06_exercise_2_and_3():
    ch06.check_exercise_2(2 * 512 * 2048 + 2048 + 512)
    refuses(ch06.check_exercise_2, 2 * 512 * 2048, "biases")
    ch06.check_exercise_3(math.sqrt(7 / 8))
    refuses(ch06.check_exercise_3, math.sqrt(8 / 7), "inverse")
    refuses(ch06.check_exercise_3, 7 / 8, "square root")


def test_ch06_exercise_4():
    def ln(z, g, b):
        mu = z.mean(-1, keepdims=True)
        return (z - mu) / np.sqrt(((z - mu) ** 2).mean(-1, keepdims=True) + 1e-5) * g + b

    def ffn(z, w1, b1, w2, b2):
        return np.maximum(z @ w1 + b1, 0) @ w2 + b2

    ch06.check_exercise_4(lambda x, w1, b1, w2, b2, g, b: x + ffn(ln(x, g, b), w1, b1, w2, b2))
    refuses(ch06.check_exercise_4, lambda x, w1, b1, w2, b2, g, b: ln(x + ffn(x, w1, b1, w2, b2), g, b), "post-LN")
    refuses(ch06.check_exercise_4, lambda x, w1, b1, w2, b2, g, b: ffn(ln(x, g, b), w1, b1, w2, b2), "residual")
