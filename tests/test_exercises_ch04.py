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
    for n in range(1, 5):
        getattr(ch04, f"check_exercise_{n}")(None)
        assert f"Exercise {n}: not attempted yet" in capsys.readouterr().out


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
