"""The exercise checks of chapter 12 accept right answers and explain common wrong ones.

The right answers here are worked out independently of the checks: with PyTorch's own
functions (F.rms_norm and autograd, torch.nn layers), complex numbers, published model sizes,
and by brute force over inputs.
"""
import cmath
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.exercises import ch12


def correct_only(capsys, n):
    out = capsys.readouterr().out
    assert out == f"Exercise {n}: correct.\n"
    assert not re.search(r"\d", out.replace(f"Exercise {n}", ""))


def test_none_means_not_attempted(capsys):
    for n in range(1, 8):
        getattr(ch12, f"check_exercise_{n}")(None)
        assert f"Exercise {n}: not attempted yet" in capsys.readouterr().out


def test_exercise_1_rms_norm_by_hand(capsys):
    x, gamma = torch.tensor(ch12.EXERCISE_1_X), torch.tensor(ch12.EXERCISE_1_GAMMA)
    right = F.rms_norm(x, (8,), gamma, eps=0.0)
    ch12.check_exercise_1(right)
    correct_only(capsys, 1)
    ch12.check_exercise_1(right.tolist())
    correct_only(capsys, 1)
    with pytest.raises(AssertionError, match="LayerNorm"):
        ch12.check_exercise_1(F.layer_norm(x, (8,), gamma, eps=0.0))
    with pytest.raises(AssertionError, match="gamma"):
        ch12.check_exercise_1(F.rms_norm(x, (8,), eps=0.0))
    with pytest.raises(AssertionError, match="mean"):
        ch12.check_exercise_1(x / x.norm() * gamma)
    with pytest.raises(AssertionError, match="shape"):
        ch12.check_exercise_1(np.zeros(7))


def rms_norm_grad_autograd(x, gamma, d_output, eps):
    x_t, g_t = torch.tensor(x, requires_grad=True), torch.tensor(gamma, requires_grad=True)
    (F.rms_norm(x_t, (x.shape[-1],), g_t, eps=eps) * torch.tensor(d_output)).sum().backward()
    return x_t.grad.numpy(), g_t.grad.numpy()


def test_exercise_2_rms_norm_backward(capsys):
    ch12.check_exercise_2(rms_norm_grad_autograd)
    correct_only(capsys, 2)

    def layer_norm_formula(x, gamma, d_output, eps):
        r = np.sqrt((x * x).mean(-1, keepdims=True) + eps)
        x_hat, g = x / r, d_output * gamma
        d_x = (g - g.mean(-1, keepdims=True) - x_hat * (g * x_hat).mean(-1, keepdims=True)) / r
        return d_x, (d_output * x_hat).reshape(-1, x.shape[-1]).sum(0)

    with pytest.raises(AssertionError, match="path through the mean"):
        ch12.check_exercise_2(layer_norm_formula)

    def r_constant(x, gamma, d_output, eps):
        r = np.sqrt((x * x).mean(-1, keepdims=True) + eps)
        return d_output * gamma / r, (d_output * x / r).reshape(-1, x.shape[-1]).sum(0)

    with pytest.raises(AssertionError, match="r as a constant"):
        ch12.check_exercise_2(r_constant)

    def dgamma_not_summed(x, gamma, d_output, eps):
        d_x, _ = rms_norm_grad_autograd(x, gamma, d_output, eps)
        return d_x, d_output * x / np.sqrt((x * x).mean(-1, keepdims=True) + eps)

    with pytest.raises(AssertionError, match="dgamma should have shape"):
        ch12.check_exercise_2(dgamma_not_summed)
    with pytest.raises(TypeError, match="function"):
        ch12.check_exercise_2(np.zeros(3))


def test_exercise_3_swiglu_width(capsys):
    # Llama 2 13B's published size: d_model 5120, intermediate_size 13824
    ch12.check_exercise_3(13824)
    correct_only(capsys, 3)
    assert 13824 % 256 == 0 and 13824 - 256 < 8 * 5120 / 3 <= 13824
    with pytest.raises(AssertionError, match="ReLU"):
        ch12.check_exercise_3(4 * 5120)
    with pytest.raises(AssertionError, match="rounds it \\*up\\*"):
        ch12.check_exercise_3(13653)
    with pytest.raises(AssertionError, match="rounded down"):
        ch12.check_exercise_3(13568)
    with pytest.raises(AssertionError, match="whole number"):
        ch12.check_exercise_3(13824.5)


def test_exercise_4_score_from_the_offset(capsys):
    def complex_form(q, k, offset, theta):
        d = len(q)
        total = 0.0
        for m in range(d // 2):
            omega = theta ** (-2 * m / d)
            zq, zk = complex(q[2 * m], q[2 * m + 1]), complex(k[2 * m], k[2 * m + 1])
            total += (zq * zk.conjugate() * cmath.exp(-1j * offset * omega)).real
        return total

    ch12.check_exercise_4(complex_form)
    correct_only(capsys, 4)
    with pytest.raises(AssertionError, match="offset -offset"):
        ch12.check_exercise_4(lambda q, k, offset, theta: complex_form(q, k, -offset, theta))
    with pytest.raises(AssertionError, match="wrong for d = 2"):
        ch12.check_exercise_4(lambda q, k, offset, theta: float(q @ k))
    with pytest.raises(TypeError, match="function"):
        ch12.check_exercise_4(1.0)


def test_exercise_5_kv_cache(capsys):
    # 2 (K and V) * 80 layers * 4 sequences * 8192 positions * 8 heads * 128 * 2 bytes = 10 GiB
    ch12.check_exercise_5(10 * 2 ** 30)
    correct_only(capsys, 5)
    with pytest.raises(AssertionError, match="keys \\*and\\* values"):
        ch12.check_exercise_5(5 * 2 ** 30)
    with pytest.raises(AssertionError, match="64 K/V heads"):
        ch12.check_exercise_5(80 * 2 ** 30)
    with pytest.raises(AssertionError, match="one sequence"):
        ch12.check_exercise_5(10 * 2 ** 28)
    with pytest.raises(AssertionError, match="not the cache's size"):
        ch12.check_exercise_5(5 * 2 ** 30 + 1)


def test_exercise_6_qk_norm_bound(capsys):
    gq, gk = ch12.EXERCISE_6_GAMMA_Q, ch12.EXERCISE_6_GAMMA_K
    # brute force: q = k = e_i (eps = 0) for every feature i; the largest score is the answer,
    # and random directions never beat it
    d_k = gq.size
    best = 0.0
    for i in range(d_k):
        u = np.zeros(d_k)
        u[i] = 1.0
        qn = torch.tensor(gq) * F.rms_norm(torch.tensor(u), (d_k,), eps=0.0)
        kn = torch.tensor(gk) * F.rms_norm(torch.tensor(u), (d_k,), eps=0.0)
        best = max(best, abs(float(qn @ kn)) / math.sqrt(d_k))
    rng = np.random.default_rng(0)
    for _ in range(2000):
        q, k = torch.tensor(rng.normal(size=d_k)), torch.tensor(rng.normal(size=d_k))
        score = float((torch.tensor(gq) * F.rms_norm(q, (d_k,), eps=0.0))
                      @ (torch.tensor(gk) * F.rms_norm(k, (d_k,), eps=0.0))) / math.sqrt(d_k)
        assert abs(score) <= best + 1e-12
    ch12.check_exercise_6(best)
    correct_only(capsys, 6)
    with pytest.raises(AssertionError, match="different features"):
        ch12.check_exercise_6(math.sqrt(d_k) * 1.3 * 1.4)
    with pytest.raises(AssertionError, match="1/sqrt"):
        ch12.check_exercise_6(best * math.sqrt(d_k))
    with pytest.raises(AssertionError, match="gamma = 1"):
        ch12.check_exercise_6(math.sqrt(d_k))
    with pytest.raises(TypeError, match="expected a number"):
        ch12.check_exercise_6("four")


def torch_llama_style_count(vocab_size, d_model, num_layers, num_heads, num_kv_heads, d_ff, qk_norm):
    """The parameters of the same decoder built from torch.nn modules (a Llama-style block)."""
    d_k = d_model // num_heads
    modules = [torch.nn.Embedding(vocab_size, d_model), torch.nn.RMSNorm(d_model)]   # tied table, final norm
    for _ in range(num_layers):
        modules += [torch.nn.Linear(d_model, d_model, bias=False),                 # W^Q
                    torch.nn.Linear(d_model, num_kv_heads * d_k, bias=False),      # W^K
                    torch.nn.Linear(d_model, num_kv_heads * d_k, bias=False),      # W^V
                    torch.nn.Linear(d_model, d_model, bias=False),                 # W^O
                    torch.nn.Linear(d_model, d_ff, bias=False),                    # W1
                    torch.nn.Linear(d_model, d_ff, bias=False),                    # W3
                    torch.nn.Linear(d_ff, d_model, bias=False),                    # W2
                    torch.nn.RMSNorm(d_model), torch.nn.RMSNorm(d_model)]
        if qk_norm:
            modules += [torch.nn.RMSNorm(d_k), torch.nn.RMSNorm(d_k)]
    return sum(p.numel() for m in modules for p in m.parameters())


def test_exercise_7_modern_parameter_count(capsys):
    ch12.check_exercise_7(torch_llama_style_count)
    correct_only(capsys, 7)
    counted = {case: torch_llama_style_count(*case) for case in ch12.EXERCISE_7_CASES}
    state = torch.random.get_rng_state()
    ch12.check_exercise_7(lambda *case: counted[case])
    assert torch.equal(state, torch.random.get_rng_state())        # the check leaves torch's generator alone
    correct_only(capsys, 7)

    def shifted(delta):
        return lambda *case: torch_llama_style_count(*case) + delta(*case)

    slips = [
        ("final norm", lambda V, d, L, h, g, f, qk: -d),
        ("num_kv_heads \\* d_k columns", lambda V, d, L, h, g, f, qk: 2 * L * d * (h - g) * (d // h)),
        ("three", lambda V, d, L, h, g, f, qk: -L * d * f),
        ("separate output projection", lambda V, d, L, h, g, f, qk: V * d),
        ("beta", lambda V, d, L, h, g, f, qk: 2 * L * d + d),
    ]
    for message, delta in slips:
        with pytest.raises(AssertionError, match=message):
            ch12.check_exercise_7(shifted(delta))
    # QK-norm slips show up on the first case that uses QK-norm
    with pytest.raises(AssertionError, match="left out QK-norm"):
        ch12.check_exercise_7(shifted(lambda V, d, L, h, g, f, qk: -2 * L * (d // h) if qk else 0))
    with pytest.raises(AssertionError, match="shared by the heads"):
        ch12.check_exercise_7(shifted(lambda V, d, L, h, g, f, qk: 2 * L * (h - 1) * (d // h) if qk else 0))
    with pytest.raises(AssertionError, match="wrong for"):
        ch12.check_exercise_7(shifted(lambda *case: 1))
    with pytest.raises(AssertionError, match="whole number"):
        ch12.check_exercise_7(lambda *case: 0.5)
    with pytest.raises(TypeError, match="function"):
        ch12.check_exercise_7(123)
