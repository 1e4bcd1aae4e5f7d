"""Chapter 2's exercise checks accept right answers, refuse wrong ones and say why."""
import math
import re

import numpy as np
import pytest
import torch

from helpers.exercises import ch02


def attention_grad_q(q, k, v, grad_out):
    """dL/dq for L = sum(grad_out * softmax(q k^T / sqrt(d_k)) v), derived by hand in the test:
    dL/dA = grad_out v^T, dL/dS = A * (dL/dA - rowsum(A * dL/dA)), dL/dq = dL/dS k / sqrt(d_k)."""
    scale = 1 / math.sqrt(q.shape[1])
    s = q @ k.T * scale
    a = np.exp(s - s.max(axis=1, keepdims=True))
    a = a / a.sum(axis=1, keepdims=True)
    d_a = grad_out @ v.T
    d_s = a * (d_a - np.sum(a * d_a, axis=1, keepdims=True))
    return d_s @ k * scale


def right_answers():
    r = 1 / math.sqrt(2)
    rng = np.random.default_rng(7)
    q, k = rng.normal(size=(2, 4000, 16))
    x = ch02.EXERCISE_3_SCORES
    return {1: math.exp(r) / (math.exp(r) + math.exp(-r) + 1),
            2: np.sum(q * k, axis=1),
            3: np.exp(x) / np.exp(x).sum(),
            4: -1 / math.log((math.sqrt(13) / 3 - 1) / 2),
            5: attention_grad_q}


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_success_prints_only_correct(n, capsys):
    """A stored output must not give the answer away: no digit but the exercise number."""
    getattr(ch02, f"check_exercise_{n}")(right_answers()[n])
    out = capsys.readouterr().out
    assert out == f"Exercise {n}: correct.\n"
    assert not re.search(r"\d", out.replace(f"Exercise {n}", ""))


@pytest.mark.parametrize("check", [ch02.check_exercise_1, ch02.check_exercise_2,
                                   ch02.check_exercise_3, ch02.check_exercise_4,
                                   ch02.check_exercise_5])
def test_none_is_not_attempted(check, capsys):
    check(None)
    assert "not attempted yet" in capsys.readouterr().out


def test_exercise_1():
    # query [1, -1] against the keys [1, 0], [0, 1], [1, 1]: scores [1, -1, 0] / sqrt 2
    r = 1 / math.sqrt(2)
    ch02.check_exercise_1(math.exp(r) / (math.exp(r) + math.exp(-r) + 1))
    with pytest.raises(AssertionError, match="unscaled"):
        ch02.check_exercise_1(math.e / (math.e + 1 / math.e + 1))
    with pytest.raises(AssertionError, match=r"\[1, 1\]"):
        ch02.check_exercise_1(1 / (2 + math.exp(r)))               # the worked example's token 3
    with pytest.raises(AssertionError):
        ch02.check_exercise_1(1 / 3)
    with pytest.raises(TypeError):
        ch02.check_exercise_1("a quarter")


def test_exercise_2():
    rng = np.random.default_rng(7)
    q, k = rng.normal(size=(2, 4000, 16))
    ch02.check_exercise_2(np.sum(q * k, axis=1))
    with pytest.raises(AssertionError, match="sqrt"):
        ch02.check_exercise_2(np.sum(q * k, axis=1) / 4)
    with pytest.raises(AssertionError):                      # d_k = 8, not 16
        ch02.check_exercise_2(np.sum(q[:, :8] * k[:, :8], axis=1))
    with pytest.raises(AssertionError, match="too few"):
        ch02.check_exercise_2(np.sum(q * k, axis=1)[:100])
    with pytest.raises(ValueError):
        ch02.check_exercise_2(q * k)


def test_exercise_3():
    x = ch02.EXERCISE_3_SCORES
    ch02.check_exercise_3(np.exp(x) / np.exp(x).sum())       # softmax(x) = softmax(x + 1000)
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(x + 1000) / np.exp(x + 1000).sum()
    with pytest.raises(AssertionError, match="overflow"):
        ch02.check_exercise_3(naive)
    with pytest.raises(AssertionError):
        ch02.check_exercise_3(np.full(4, 0.25))
    with pytest.raises(ValueError):
        ch02.check_exercise_3(np.ones(3) / 3)


def test_exercise_4():
    # top weight 1/(1 + u + u^2) = 0.9 with u = e^(-1/T): u = (sqrt(13)/3 - 1)/2
    t = -1 / math.log((math.sqrt(13) / 3 - 1) / 2)
    ch02.check_exercise_4(t)
    with pytest.raises(AssertionError, match="raise T"):
        ch02.check_exercise_4(t / 2)
    with pytest.raises(AssertionError, match="lower T"):
        ch02.check_exercise_4(t * 2)
    with pytest.raises(AssertionError):
        ch02.check_exercise_4(-1.0)


def test_exercise_5_accepts_a_torch_result():
    def via_torch(q, k, v, grad_out):
        return torch.tensor(attention_grad_q(q, k, v, grad_out))
    ch02.check_exercise_5(via_torch)


def test_exercise_5_the_test_formula_is_autograds():
    """The test's own hand formula agrees with autograd, so the acceptance above means something."""
    rng = np.random.default_rng(3)
    q, k, v, g = rng.normal(size=(4, 3)), rng.normal(size=(6, 3)), rng.normal(size=(6, 2)), rng.normal(size=(4, 2))
    q_t = torch.tensor(q, requires_grad=True)
    (torch.softmax(q_t @ torch.tensor(k).T / math.sqrt(3), dim=-1) @ torch.tensor(v) * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(attention_grad_q(q, k, v, g), q_t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_exercise_5_names_the_common_slips():
    with pytest.raises(AssertionError, match="sqrt"):
        ch02.check_exercise_5(lambda q, k, v, g: attention_grad_q(q, k, v, g) * math.sqrt(q.shape[1]))

    def diagonal_only(q, k, v, g):
        s = q @ k.T / math.sqrt(q.shape[1])
        a = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
        return (a * (g @ v.T)) @ k / math.sqrt(q.shape[1])
    with pytest.raises(AssertionError, match="diag"):
        ch02.check_exercise_5(diagonal_only)
    with pytest.raises(AssertionError, match="sign"):
        ch02.check_exercise_5(lambda q, k, v, g: -attention_grad_q(q, k, v, g))
    with pytest.raises(AssertionError, match="differs"):
        ch02.check_exercise_5(lambda q, k, v, g: np.zeros_like(q))
    with pytest.raises(AssertionError, match="shape"):
        ch02.check_exercise_5(lambda q, k, v, g: attention_grad_q(q, k, v, g).T)
    with pytest.raises(TypeError, match="function"):
        ch02.check_exercise_5(np.zeros((3, 5)))
