"""The exercise checks of chapter 6 accept the right answer, refuse the usual slips
with a message that names them, say "not attempted yet" for None, and print no number
and no formula when the answer is right (a stored solution must not give it away)."""
import math
import re

import numpy as np
import pytest
import torch

from helpers.exercises import ch06


def test_none_means_not_attempted(capsys):
    for n in range(1, 6):
        getattr(ch06, f"check_exercise_{n}")(None)
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


def test_ch06_exercise_1(capsys):
    x = np.array([2.0, 4, 4, 4, 5, 5, 7, 9])
    accepts(ch06.check_exercise_1, torch.tensor((x - 5) / 2), 1, capsys)   # mu 5, sigma^2 = 32/8 = 4
    refuses(ch06.check_exercise_1, (x - 5) / math.sqrt(32 / 7), "unbiased")
    refuses(ch06.check_exercise_1, x - 5, "did not divide")
    refuses(ch06.check_exercise_1, (x - 5) / 4, "square root")
    refuses(ch06.check_exercise_1, np.zeros(3), "shape (8,)")


def test_ch06_exercise_2(capsys):
    d, f = 1024, 4096
    model_ffn = torch.nn.Sequential(torch.nn.Linear(d, f), torch.nn.ReLU(), torch.nn.Linear(f, d))
    accepts(ch06.check_exercise_2, sum(p.numel() for p in model_ffn.parameters()), 2, capsys)
    refuses(ch06.check_exercise_2, 2 * d * f, "biases")
    refuses(ch06.check_exercise_2, 2 * d * f + f, "bias vector")
    refuses(ch06.check_exercise_2, 2 * 512 * 2048 + 2048 + 512, "base model")
    with pytest.raises(TypeError, match="expected a number"):
        ch06.check_exercise_2("many")


def test_ch06_exercise_3(capsys):
    v = torch.randn(8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    unbiased = (v - v.mean()) / v.std()                                   # torch.std divides by d - 1
    ratio = float(unbiased.norm() / torch.nn.functional.layer_norm(v, (8,), eps=0.0).norm())
    accepts(ch06.check_exercise_3, ratio, 3, capsys)                    # measured, not copied
    refuses(ch06.check_exercise_3, 1 / ratio, "inverse")
    refuses(ch06.check_exercise_3, ratio ** 2, "square root")


def test_ch06_exercise_4(capsys):
    def ln(z, g, b):
        mu = z.mean(-1, keepdims=True)
        return (z - mu) / np.sqrt(((z - mu) ** 2).mean(-1, keepdims=True) + 1e-5) * g + b

    def ffn(z, w1, b1, w2, b2):
        return np.maximum(z @ w1 + b1, 0) @ w2 + b2

    accepts(ch06.check_exercise_4, lambda x, w1, b1, w2, b2, g, b: x + ffn(ln(x, g, b), w1, b1, w2, b2), 4, capsys)
    refuses(ch06.check_exercise_4, lambda x, w1, b1, w2, b2, g, b: ln(x + ffn(x, w1, b1, w2, b2), g, b), "post-LN")
    refuses(ch06.check_exercise_4, lambda x, w1, b1, w2, b2, g, b: ffn(ln(x, g, b), w1, b1, w2, b2), "residual")
    refuses(ch06.check_exercise_4, lambda x, w1, b1, w2, b2, g, b: x + ffn(x, w1, b1, w2, b2), "no LayerNorm")


def autograd_dx(x, gamma, d_output, eps):
    """dL/dx for L = sum(d_output * layer_norm(x)) by torch's autograd (the reference a learner
    could use); the check must accept it."""
    xt = torch.tensor(x, requires_grad=True)
    y = torch.nn.functional.layer_norm(xt, gamma.shape, torch.tensor(gamma), None, eps=eps)
    (y * torch.tensor(d_output)).sum().backward()
    return xt.grad.numpy()


def dx_formula(x, gamma, d_output, eps, *, through_mu=True, through_sigma=True, use_gamma=True, use_eps=True):
    mu = x.mean(-1, keepdims=True)
    sigma = np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + (eps if use_eps else 0.0))
    x_hat = (x - mu) / sigma
    g = d_output * gamma if use_gamma else d_output
    dx = g.copy()
    if through_mu:
        dx = dx - g.mean(-1, keepdims=True)
    if through_sigma:
        dx = dx - x_hat * (g * x_hat).mean(-1, keepdims=True)
    return dx / sigma


def test_ch06_exercise_5_accepts_autograd_and_the_formula(capsys):
    accepts(ch06.check_exercise_5, autograd_dx, 5, capsys)
    accepts(ch06.check_exercise_5, dx_formula, 5, capsys)


@pytest.mark.parametrize("slip, words", [
    (dict(through_mu=False, through_sigma=False), "constants"),
    (dict(through_sigma=False), "path through sigma"),
    (dict(through_mu=False), "path through mu"),
    (dict(use_gamma=False), "gamma first"),
    (dict(use_eps=False), "eps is missing"),
])
def test_ch06_exercise_5_names_the_slip(slip, words):
    refuses(ch06.check_exercise_5, lambda x, g, d, e: dx_formula(x, g, d, e, **slip), words)


def test_ch06_exercise_5_refuses_other_wrong_answers():
    refuses(ch06.check_exercise_5, lambda x, g, d, e: 2 * dx_formula(x, g, d, e), "differs from autograd")
    refuses(ch06.check_exercise_5, lambda x, g, d, e: dx_formula(x, g, d, e)[..., :-1], "shape")
    with pytest.raises(TypeError, match="expected a function"):
        ch06.check_exercise_5(np.zeros(3))
