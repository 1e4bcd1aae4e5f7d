"""The exercise checks of chapter 8 accept right answers and explain common wrong ones.

The right answers here are worked out independently of the checks: by torch.autograd and
F.cross_entropy, by closed forms of the geometric sums, or by counting parameters by hand.
"""
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.exercises import ch08


def assert_says_correct_and_nothing_more(capsys, n):
    # a solution's output must not give the answer away: no digits but the exercise number
    out = capsys.readouterr().out
    assert out == f"Exercise {n}: correct.\n"
    assert not re.search(r"\d", out.replace(f"Exercise {n}", ""))


def test_none_means_not_attempted(capsys):
    for n in range(1, 6):
        getattr(ch08, f"check_exercise_{n}")(None)
        assert f"Exercise {n}: not attempted yet" in capsys.readouterr().out


def test_ch08_exercise_1_perplexity(capsys):
    logits = torch.tensor(ch08.EXERCISE_1_LOGITS)
    targets = torch.tensor(ch08.EXERCISE_1_TARGETS)
    loss = F.cross_entropy(logits, targets).item()
    ch08.check_exercise_1(math.exp(loss))
    assert_says_correct_and_nothing_more(capsys, 1)
    with pytest.raises(AssertionError, match="sum"):
        ch08.check_exercise_1(math.exp(3 * loss))
    with pytest.raises(AssertionError, match="exp\\(loss\\)"):
        ch08.check_exercise_1(loss)
    with pytest.raises(TypeError, match="expected a number"):
        ch08.check_exercise_1("perplexity")


def test_ch08_exercise_2_smoothed_gradient(capsys):
    z = torch.tensor(ch08.EXERCISE_2_LOGITS, requires_grad=True)
    target = torch.tensor([ch08.EXERCISE_2_TARGET])
    F.cross_entropy(z[None], target, label_smoothing=ch08.EXERCISE_2_SMOOTHING).backward()
    ch08.check_exercise_2(z.grad)
    assert_says_correct_and_nothing_more(capsys, 2)
    z_plain = torch.tensor(ch08.EXERCISE_2_LOGITS, requires_grad=True)
    F.cross_entropy(z_plain[None], target).backward()
    with pytest.raises(AssertionError, match="without label smoothing"):
        ch08.check_exercise_2(z_plain.grad)
    with pytest.raises(AssertionError, match="sign"):
        ch08.check_exercise_2(-z.grad)
    with pytest.raises(AssertionError, match="shape"):
        ch08.check_exercise_2(np.zeros(4))


def test_ch08_exercise_3_linear_backward(capsys):
    x, w, d_y = ch08.EXERCISE_3_X, ch08.EXERCISE_3_W, ch08.EXERCISE_3_D_Y
    ch08.check_exercise_3((d_y @ w.T, x.T @ d_y, d_y.sum(axis=0)))
    assert_says_correct_and_nothing_more(capsys, 3)
    with pytest.raises(AssertionError, match="db"):
        ch08.check_exercise_3((d_y @ w.T, x.T @ d_y, d_y.mean(axis=0)))
    with pytest.raises(AssertionError, match="dW should have shape"):
        ch08.check_exercise_3((d_y @ w.T, d_y.T @ x, d_y.sum(axis=0)))
    with pytest.raises(TypeError, match="tuple"):
        ch08.check_exercise_3(d_y @ w.T)


def test_ch08_exercise_4_smoothing_floor(capsys):
    eps, vocab = ch08.EXERCISE_4_SMOOTHING, ch08.EXERCISE_4_VOCAB
    q = np.full(vocab, eps / vocab)
    q[0] += 1 - eps
    assert math.isclose(q.sum(), 1.0, rel_tol=1e-12)
    ch08.check_exercise_4(float(-(q * np.log(q)).sum()))
    assert_says_correct_and_nothing_more(capsys, 4)
    with pytest.raises(AssertionError, match="without"):
        ch08.check_exercise_4(0)
    with pytest.raises(AssertionError, match="entropy"):
        ch08.check_exercise_4(1.0)


def test_ch08_exercise_5_log_softmax_backward(capsys):
    # the right answer, from the Jacobian d log p_i / d x_j = delta_ij - p_j (derived here, not in the check)
    def log_softmax_backward(x, d_y):
        p = torch.softmax(torch.tensor(x), dim=-1).numpy()
        return d_y - p * d_y.sum(axis=-1, keepdims=True)

    x = np.random.default_rng(0).normal(size=(3, 4))
    d_y = np.random.default_rng(1).normal(size=(3, 4))
    xt = torch.tensor(x, requires_grad=True)
    (F.log_softmax(xt, dim=-1) * torch.tensor(d_y)).sum().backward()
    np.testing.assert_allclose(log_softmax_backward(x, d_y), xt.grad.numpy(), rtol=1e-12)   # the answer is right
    ch08.check_exercise_5(log_softmax_backward)
    assert_says_correct_and_nothing_more(capsys, 5)
    ch08.check_exercise_5(lambda x, d_y: torch.tensor(log_softmax_backward(x, d_y)))   # a tensor is fine too
    assert_says_correct_and_nothing_more(capsys, 5)

    def softmax_of(x):
        return torch.softmax(torch.tensor(x), dim=-1).numpy()

    with pytest.raises(AssertionError, match="term is missing"):
        ch08.check_exercise_5(lambda x, d_y: d_y - softmax_of(x))
    with pytest.raises(AssertionError, match="backward pass of softmax"):
        ch08.check_exercise_5(lambda x, d_y: softmax_of(x) * (d_y - (d_y * softmax_of(x)).sum(-1, keepdims=True)))
    with pytest.raises(AssertionError, match="last axis"):
        ch08.check_exercise_5(lambda x, d_y: d_y - softmax_of(x) * d_y.sum(axis=0, keepdims=True))
    with pytest.raises(AssertionError, match="torch.autograd"):
        ch08.check_exercise_5(lambda x, d_y: d_y + softmax_of(x) * d_y.sum(axis=-1, keepdims=True))
    with pytest.raises(AssertionError, match="shape"):
        ch08.check_exercise_5(lambda x, d_y: d_y.sum(axis=-1))
    with pytest.raises(TypeError, match="function"):
        ch08.check_exercise_5(np.zeros(3))
