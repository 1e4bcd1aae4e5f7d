"""The exercise checks of chapter 7 accept the right answer, refuse the usual slips
with a message that names them, and say "not attempted yet" for None."""

import numpy as np
import pytest
import torch

from helpers.exercises import ch07


def test_none_means_not_attempted(capsys):
    for n in range(1, 5):
        getattr(ch07, f"check_exercise_{n}")(None)
        assert f"Exercise {n}: not attempted yet" in capsys.readouterr().out


def refuses(check, answer, words):
    with pytest.raises(AssertionError) as info:
        check(answer)
    assert words in str(info.value), str(info.value)


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
