"""The exercise checks of chapter 3 accept right answers and reject the common slips.

Right answers are computed here from the definitions (or by helpers / PyTorch), not taken
from the check module's own reference functions.
"""
import re

import numpy as np
import pytest
import torch

import helpers
from helpers.exercises import ch03


def masked_score_grad(scores, mask, v, grad_out):
    """dL/dscores derived by hand in the test: over the allowed keys an ordinary softmax,
    dL/dS = A * (dL/dA - rowsum(A * dL/dA)) with dL/dA = grad_out v^T; A = 0 on masked keys."""
    s = np.where(mask, scores, -np.inf)
    e = np.exp(s - s.max(axis=1, keepdims=True))
    a = e / e.sum(axis=1, keepdims=True)
    d_a = grad_out @ v.T
    return a * (d_a - np.sum(a * d_a, axis=1, keepdims=True))


def right_answers():
    scores = np.array([2.0, 1.0, 0.0, 3.0])
    right_2 = torch.softmax(torch.tensor(scores[:3]), 0).numpy()
    return {1: helpers.causal_mask(5) & helpers.padding_mask(np.array([3, 5]), 5),
            2: np.append(right_2, 0.0),
            3: ((3, 4, 8), (3, 2, 4, 7)),
            4: np.array([[True, True, False, False], [False, False, False, False]]),
            5: masked_score_grad}


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_success_prints_only_correct(n, capsys):
    """A stored output must not give the answer away: no digit but the exercise number."""
    getattr(ch03, f"check_exercise_{n}")(right_answers()[n])
    out = capsys.readouterr().out
    assert out == f"Exercise {n}: correct.\n"
    assert not re.search(r"\d", out.replace(f"Exercise {n}", ""))


def test_none_means_not_attempted(capsys):
    for n in range(1, 6):
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


def test_ch03_exercise_5_the_test_formula_is_autograds():
    """The test's hand formula agrees with autograd through masked_fill + softmax."""
    rng = np.random.default_rng(4)
    scores, v, g = rng.normal(size=(5, 5)), rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    mask = np.tril(np.ones((5, 5), dtype=bool))
    s_t = torch.tensor(scores, requires_grad=True)
    weights = torch.softmax(s_t.masked_fill(~torch.tensor(mask), float("-inf")), dim=-1)
    (weights @ torch.tensor(v) * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(masked_score_grad(scores, mask, v, g), s_t.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert np.all(s_t.grad.numpy()[~mask] == 0)


def test_ch03_exercise_5():
    ch03.check_exercise_5(masked_score_grad)
    ch03.check_exercise_5(lambda s, m, v, g: torch.tensor(masked_score_grad(s, m, v, g)))

    def zeroed_after(scores, mask, v, grad_out):         # the note read literally, differentiated
        s_t = torch.tensor(scores, requires_grad=True)
        weights = torch.softmax(s_t, dim=-1) * torch.tensor(mask)
        (weights @ torch.tensor(v) * torch.tensor(grad_out)).sum().backward()
        return s_t.grad.numpy()
    with pytest.raises(AssertionError, match="AFTER"):
        ch03.check_exercise_5(zeroed_after)

    def leaks(scores, mask, v, grad_out):                # right on allowed keys, noise on masked ones
        return masked_score_grad(scores, mask, v, grad_out) + 1e-3 * ~mask
    with pytest.raises(AssertionError, match="exactly 0"):
        ch03.check_exercise_5(leaks)

    def unmasked(scores, mask, v, grad_out):             # forgot the mask, then zeroed the masked entries
        return masked_score_grad(scores, np.ones_like(mask), v, grad_out) * mask
    with pytest.raises(AssertionError, match="differs"):
        ch03.check_exercise_5(unmasked)
    with pytest.raises(AssertionError, match="shape"):
        ch03.check_exercise_5(lambda s, m, v, g: masked_score_grad(s, m, v, g)[:, :1])
    with pytest.raises(TypeError, match="function"):
        ch03.check_exercise_5("not a function")
