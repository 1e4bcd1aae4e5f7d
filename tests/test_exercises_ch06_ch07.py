"""The exercise checks of chapters 6 and 7 accept the right answer, refuse the usual slips
with a message that names them, and say "not attempted yet" for None."""
import math

import numpy as np
import pytest
import torch

from helpers.exercises import ch06, ch07


@pytest.mark.parametrize("check", [ch06.check_exercise_1, ch06.check_exercise_2, ch06.check_exercise_3,
                                   ch06.check_exercise_4, ch07.check_exercise_1, ch07.check_exercise_2,
                                   ch07.check_exercise_3, ch07.check_exercise_4])
def test_none_is_not_attempted(check, capsys):
    check(None)
    assert "not attempted yet" in capsys.readouterr().out


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


def test_ch07_exercises():
    enc = torch.nn.TransformerEncoderLayer(256, 4, 1024, batch_first=True)
    ch07.check_exercise_1(sum(p.numel() for p in enc.parameters()))
    dec = torch.nn.TransformerDecoderLayer(256, 4, 1024, batch_first=True)
    refuses(ch07.check_exercise_1, sum(p.numel() for p in dec.parameters()), "decoder")
    pad = torch.tensor([[False, False, False, True, True], [False] * 5])
    ch07.check_exercise_2(pad)
    refuses(ch07.check_exercise_2, ~pad, "helpers' convention")
    causal = np.tril(np.ones((4, 4), bool))
    mask = np.stack([causal & (np.arange(4) < 2), causal])
    ch07.check_exercise_3(mask)
    refuses(ch07.check_exercise_3, np.stack([causal, causal]), "padding")
    refuses(ch07.check_exercise_3, ~mask, "PyTorch's convention")
    model = torch.nn.Transformer(512, 8, 6, 6, 2048, batch_first=True)
    ch07.check_exercise_4(sum(p.numel() for p in model.parameters()) + 3 * 37000 * 512)
    refuses(ch07.check_exercise_4, sum(p.numel() for p in model.parameters()) + 37000 * 512, "tied")
