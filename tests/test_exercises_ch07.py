"""The exercise checks of chapter 7 accept the right answer, refuse the usual slips
with a message that names them, say "not attempted yet" for None, and print no number
and no formula when the answer is right (a stored solution must not give it away)."""
import math
import re

import numpy as np
import pytest
import torch

from helpers.exercises import ch07
from helpers.positional import positional_rotation


def test_none_means_not_attempted(capsys):
    for n in range(1, 6):
        getattr(ch07, f"check_exercise_{n}")(None)
        assert f"Exercise {n}: not attempted yet" in capsys.readouterr().out


def refuses(check, answer, words):
    with pytest.raises(AssertionError) as info:
        check(answer)
    assert words in str(info.value), str(info.value)


def accepts(check, answer, n, capsys):
    """The check passes and prints exactly "Exercise n: correct." (no digit, no formula)."""
    check(answer)
    out = capsys.readouterr().out
    assert out == f"Exercise {n}: correct.\n", out
    assert not re.search(r"\d", out.replace(f"Exercise {n}", ""))


def numel(module):
    return sum(p.numel() for p in module.parameters())


def test_ch07_exercise_1(capsys):
    accepts(ch07.check_exercise_1, numel(torch.nn.TransformerEncoderLayer(256, 4, 1024, batch_first=True)), 1, capsys)
    refuses(ch07.check_exercise_1, numel(torch.nn.TransformerDecoderLayer(256, 4, 1024, batch_first=True)), "decoder")


def test_ch07_exercises_2_and_3(capsys):
    pad = torch.tensor([[False, False, False, True, True], [False] * 5])
    accepts(ch07.check_exercise_2, pad, 2, capsys)
    refuses(ch07.check_exercise_2, ~pad, "helpers' convention")
    causal = np.tril(np.ones((4, 4), bool))
    mask = np.stack([causal & (np.arange(4) < 2), causal])
    accepts(ch07.check_exercise_3, mask, 3, capsys)
    refuses(ch07.check_exercise_3, np.stack([causal, causal]), "padding")
    refuses(ch07.check_exercise_3, ~mask, "PyTorch's convention")


def test_ch07_exercise_4(capsys):
    big = numel(torch.nn.Transformer(1024, 16, 6, 6, 4096, batch_first=True))
    accepts(ch07.check_exercise_4, big + 3 * 37000 * 1024, 4, capsys)
    refuses(ch07.check_exercise_4, big + 37000 * 1024, "tied")
    base = numel(torch.nn.Transformer(512, 8, 6, 6, 2048, batch_first=True))
    refuses(ch07.check_exercise_4, base + 3 * 37000 * 512, "base model")


def reflection(a, d):
    """PE[a - i] = PE[i] F_a: per pair of columns, the block [[-cos, sin], [sin, cos]] of the angle a w."""
    w = 10000.0 ** (-np.arange(0, d, 2) / d)
    f = np.zeros((d, d))
    for i, angle in enumerate(a * w):
        c, s = math.cos(angle), math.sin(angle)
        f[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[-c, s], [s, c]]
    return f


def test_ch07_exercise_5_accepts_the_reflection(capsys):
    accepts(ch07.check_exercise_5, reflection, 5, capsys)
    # also as a torch tensor
    accepts(ch07.check_exercise_5, lambda a, d: torch.tensor(reflection(a, d)), 5, capsys)


def test_ch07_exercise_5_names_the_slips():
    refuses(ch07.check_exercise_5, lambda a, d: positional_rotation(a, d), "shift (a rotation)")
    refuses(ch07.check_exercise_5, lambda a, d: positional_rotation(-a, d), "shift back")
    refuses(ch07.check_exercise_5, lambda a, d: np.eye(d), "unchanged")
    refuses(ch07.check_exercise_5, lambda a, d: -reflection(a, d), "is not PE")
    refuses(ch07.check_exercise_5, lambda a, d: np.eye(d + 1), "shape")


def test_ch07_exercise_5_refuses_a_fit_to_the_tested_positions_only():
    from helpers import sinusoidal_positional_encoding

    def least_squares(a, d):    # maps rows 0..a of PE onto rows a..0, but no other position
        pe = sinusoidal_positional_encoding(a + 1, d)
        return np.linalg.pinv(pe) @ pe[::-1]

    refuses(ch07.check_exercise_5, least_squares, "every position")
