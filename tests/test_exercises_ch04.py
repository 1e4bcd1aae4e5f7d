"""The exercise checks of chapter 4 accept right answers and reject the common slips.

Right answers are computed here from the definitions (or by helpers / PyTorch), not taken
from the check module's own reference functions.
"""
import numpy as np
import pytest
import torch

import helpers
from helpers.exercises import ch04


def test_none_means_not_attempted(capsys):
    for n in range(1, 6):
        getattr(ch04, f"check_exercise_{n}")(None)
        assert f"Exercise {n}: not attempted yet" in capsys.readouterr().out


def test_success_prints_no_number(capsys):
    """A right answer gets "Exercise N: correct." and nothing that would give it away."""
    layer = torch.nn.MultiheadAttention(512, 8)
    ch04.check_exercise_1(sum(p.numel() for p in layer.parameters()))
    ch04.check_exercise_2((np.arange(8)[None, :] + 10 * np.arange(8)[:, None])[:, 4:6])
    ch04.check_exercise_3(2 * 10 * 64**2 + 2 * 20 * 64**2 + 2 * 10 * 20 * 64)
    module = ch04.exercise_4_module()
    ch04.check_exercise_4(tuple(b.T for b in module.in_proj_weight.detach().chunk(3))
                          + (module.out_proj.weight.detach().T,))
    ch04.check_exercise_5(grads_by_autograd)
    assert capsys.readouterr().out.splitlines() == [f"Exercise {n}: correct." for n in range(1, 6)]


def test_ch04_exercise_1():
    layer = torch.nn.MultiheadAttention(512, 8)
    ch04.check_exercise_1(sum(p.numel() for p in layer.parameters()))
    with pytest.raises(AssertionError, match="weights only"):
        ch04.check_exercise_1(4 * 512**2)
    with pytest.raises(AssertionError, match="do not add parameters"):
        ch04.check_exercise_1(8 * (4 * 512**2 + 4 * 512))


def test_ch04_exercise_2():
    w = np.arange(8)[None, :] + 10 * np.arange(8)[:, None]
    ch04.check_exercise_2(w[:, 4:6].astype(float))
    with pytest.raises(AssertionError, match="ROWS"):
        ch04.check_exercise_2(w[4:6, :])
    with pytest.raises(AssertionError, match="head 1's block"):
        ch04.check_exercise_2(w[:, 2:4])


def test_ch04_exercise_3():
    n_q, n_k, d = 10, 20, 64
    # count with torch's own FLOP counter on the helpers layer, halved to multiply-adds
    from torch.utils.flop_counter import FlopCounterMode
    g = torch.Generator().manual_seed(0)
    ws = [torch.randn(d, d, generator=g, dtype=torch.float64) for _ in range(4)]
    with FlopCounterMode(display=False) as counter:
        helpers.multi_head_attention(torch.randn(n_q, d, generator=g, dtype=torch.float64),
                                     torch.randn(n_k, d, generator=g, dtype=torch.float64), *ws, num_heads=8)
    ch04.check_exercise_3(counter.get_total_flops() // 2)
    with pytest.raises(AssertionError, match="FLOPs"):
        ch04.check_exercise_3(counter.get_total_flops())
    with pytest.raises(AssertionError, match="self-attention"):
        ch04.check_exercise_3(4 * n_q * d * d + 2 * n_q * n_q * d)


def test_ch04_exercise_4():
    module = ch04.exercise_4_module()
    w_q, w_k, w_v = (b.T for b in module.in_proj_weight.detach().chunk(3))
    w_o = module.out_proj.weight.detach().T
    ch04.check_exercise_4((w_q, w_k, w_v, w_o))
    with pytest.raises(AssertionError, match="Transpose"):
        ch04.check_exercise_4(tuple(module.in_proj_weight.detach().chunk(3)) + (w_o,))
    with pytest.raises(AssertionError, match="does not reproduce"):
        ch04.check_exercise_4((w_q, w_k, w_v, w_o.T))


def _mha_torch(x, w_q, w_k, w_v, w_o, num_heads):
    """Multi-head self-attention in plain torch, heads by F.scaled_dot_product_attention."""
    n, d = x.shape
    split = lambda m: m.reshape(n, num_heads, -1).transpose(0, 1)            # (h, n, d_head)
    heads = torch.nn.functional.scaled_dot_product_attention(split(x @ w_q), split(x @ w_k),
                                                             split(x @ w_v))  # (h, n, d_v)
    return heads.transpose(0, 1).reshape(n, -1) @ w_o                         # (n, d_model)


def grads_by_autograd(x, w_q, w_k, w_v, w_o, num_heads, grad_out):
    """A right answer to exercise 5 that derives nothing: autograd on an independent layer."""
    t = lambda a: torch.tensor(a, dtype=torch.float64)
    w_v_t, w_o_t = t(w_v).requires_grad_(True), t(w_o).requires_grad_(True)
    (_mha_torch(t(x), t(w_q), t(w_k), w_v_t, w_o_t, num_heads) * t(grad_out)).sum().backward()
    return w_o_t.grad.numpy(), w_v_t.grad


def grads_with_slip(transpose_o=False, transpose_a=False):
    """The derived formulas, optionally with one of two common slips."""
    def grads(x, w_q, w_k, w_v, w_o, num_heads, grad_out):
        _, a = helpers.multi_head_attention(x, x, w_q, w_k, w_v, w_o, num_heads)   # (h, n, n)
        d_v = w_v.shape[1] // num_heads
        blocks = [slice(i * d_v, (i + 1) * d_v) for i in range(num_heads)]
        concat = np.concatenate([a[i] @ x @ w_v[:, b] for i, b in enumerate(blocks)], axis=1)
        grad_o = grad_out.T @ concat if transpose_o else concat.T @ grad_out
        grad_v = np.concatenate([x.T @ (a[i] if transpose_a else a[i].T) @ grad_out @ w_o[b].T
                                 for i, b in enumerate(blocks)], axis=1)
        return grad_o, grad_v
    return grads


def test_ch04_exercise_5_accepts_right_answers_on_either_library():
    ch04.check_exercise_5(grads_by_autograd)          # returns a NumPy array and a tensor
    ch04.check_exercise_5(grads_with_slip())


def test_ch04_exercise_5_names_the_slips():
    with pytest.raises(AssertionError, match="transposed"):
        ch04.check_exercise_5(grads_with_slip(transpose_o=True))
    with pytest.raises(AssertionError, match="A_i\\^T"):
        ch04.check_exercise_5(grads_with_slip(transpose_a=True))
    with pytest.raises(AssertionError, match="grad_w_v differs"):
        ch04.check_exercise_5(lambda x, w_q, w_k, w_v, w_o, h, g: (grads_with_slip()(x, w_q, w_k, w_v, w_o, h, g)[0],
                                                                  np.zeros_like(w_v)))
    with pytest.raises(AssertionError, match="shape"):
        ch04.check_exercise_5(lambda *args: (np.zeros((2, 2)), np.zeros((2, 2))))
    with pytest.raises(TypeError, match="a function"):
        ch04.check_exercise_5(np.zeros(3))
    with pytest.raises(TypeError, match="a pair"):
        ch04.check_exercise_5(lambda *args: 0.0)
