"""The exercise checks of chapter 3 accept right answers and reject the common slips.

Right answers are computed here from the definitions (or by helpers / PyTorch), not taken
from the check module's own reference functions.
"""
import numpy as np
import pytest
import torch

import helpers
from helpers.exercises import ch03


def test_none_means_not_attempted(capsys):
    for n in range(1, 5):
        getattr(ch03, f"check_exercise_{n}")(None)
        assert f"Exercise {n}: not attempted yet" in capsys.readouterr().out


def test_ch03_exercise_1():
    mask = helpers.causal_mask(5) & helpers.padding_mask(np.array([3, 5]), 5)
    ch03.check_exercise_1(mask)
    ch03.check_exercise_1(torch.tensor(mask))
    with pytest.raises(AssertionError, match="opposite"):
        ch03.check_exercise_1(~mask)
    with pytest.raises(AssertionError, match="padding mask alone"):
        ch03.check_exercise_1(helpers.padding_mask(np.array([3, 5]), 5))
    with pytest.raises(AssertionError, match="causal mask alone"):
        ch03.check_exercise_1(np.broadcast_to(helpers.causal_mask(5), (2, 5, 5)))
    with pytest.raises(TypeError, match="boolean"):
        ch03.check_exercise_1(mask.astype(int))


def test_ch03_exercise_2():
    scores = np.array([2.0, 1.0, 0.0, 3.0])
    right = torch.softmax(torch.tensor(scores[:3]), 0).numpy()
    ch03.check_exercise_2(np.append(right, 0.0))
    zeroed_after = torch.softmax(torch.tensor(scores), 0).numpy() * [1, 1, 1, 0]
    with pytest.raises(AssertionError, match="after the softmax"):
        ch03.check_exercise_2(zeroed_after)
    with pytest.raises(AssertionError, match="without the mask"):
        ch03.check_exercise_2(torch.softmax(torch.tensor(scores), 0).numpy())


def test_ch03_exercise_3():
    ch03.check_exercise_3(((3, 4, 8), (3, 2, 4, 7)))
    with pytest.raises(AssertionError, match="ROW per query"):
        ch03.check_exercise_3(((3, 4, 8), (3, 2, 7, 4)))
    with pytest.raises(AssertionError, match="output shape"):
        ch03.check_exercise_3(((3, 7, 8), (3, 2, 4, 7)))


def test_ch03_exercise_4():
    right = np.array([[True, True, False, False], [False, False, False, False]])
    ch03.check_exercise_4(right)
    with pytest.raises(AssertionError, match="DO have"):
        ch03.check_exercise_4(~right)
    with pytest.raises(AssertionError, match="expected"):
        ch03.check_exercise_4(np.zeros((2, 4), dtype=bool))
