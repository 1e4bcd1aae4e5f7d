"""The torch backend equals PyTorch's own implementations of the same formulas."""
import pytest
import torch
import torch.nn.functional as F

import helpers as h

TOL = dict(rtol=1e-10, atol=1e-10)


def randn(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def test_softmax_equals_F_softmax():
    x = randn(3, 4, 9)
    for dim in (-1, 1):
        torch.testing.assert_close(h.softmax(x, axis=dim), F.softmax(x, dim=dim), **TOL)


@pytest.mark.parametrize("masking", ["none", "random", "causal"])
def test_attention_equals_F_sdpa(masking):
    q, k, v = randn(2, 3, 5, 8, seed=1), randn(2, 3, 5, 8, seed=2), randn(2, 3, 5, 4, seed=3)
    mask = None
    if masking == "random":
        mask = torch.rand(2, 1, 5, 5, generator=torch.Generator().manual_seed(4)) < 0.6
        mask[..., 0] = True
    elif masking == "causal":
        mask = h.causal_mask(5, backend="torch")
    out, weights = h.scaled_dot_product_attention(q, k, v, mask=mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), **TOL)
    if masking == "causal":
        torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), **TOL)
    assert weights.shape == (2, 3, 5, 5)


def test_attention_scale_equals_F_sdpa_scale():
    q, k, v = randn(4, 6, seed=5), randn(7, 6, seed=6), randn(7, 3, seed=7)
    out, _ = h.scaled_dot_product_attention(q, k, v, scale=0.3)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, scale=0.3), **TOL)


@pytest.mark.parametrize("cross, causal, bias", [(False, False, False), (False, True, True), (True, False, True)])
def test_multi_head_equals_nn_MultiheadAttention(cross, causal, bias):
    E, H, n_q, n_k, B = 12, 3, 5, 7 if cross else 5, 2
    mha = torch.nn.MultiheadAttention(E, H, bias=bias, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        for p in mha.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    x_q = randn(B, n_q, E, seed=8)
    x_kv = randn(B, n_k, E, seed=9) if cross else x_q
    # in_proj_weight stacks W^Q, W^K, W^V as (3E, E) in nn.Linear's (out, in) layout:
    # transpose each block to get our row-vector (d_model, h*d_k) matrices.
    w_q, w_k, w_v = (w.T for w in mha.in_proj_weight.chunk(3))
    w_o = mha.out_proj.weight.T
    biases = {}
    if bias:
        b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
        biases = dict(b_q=b_q, b_k=b_k, b_v=b_v, b_o=mha.out_proj.bias)
    mask = h.causal_mask(n_q, backend="torch") if causal else None
    ours, weights = h.multi_head_attention(x_q, x_kv, w_q, w_k, w_v, w_o, H, mask=mask, **biases)
    # nn.MultiheadAttention's boolean mask means the opposite: True = NOT allowed.
    # Always pass the mask itself; is_causal alone is only a hint it may ignore.
    theirs, their_weights = mha(x_q, x_kv, x_kv, attn_mask=None if mask is None else ~mask,
                                need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(ours, theirs, **TOL)
    torch.testing.assert_close(weights, their_weights, **TOL)


def test_layer_norm_equals_F_layer_norm():
    x, g, b = randn(3, 4, 10, seed=10), randn(10, seed=11), randn(10, seed=12)
    for eps in (1e-5, 1e-2):
        torch.testing.assert_close(h.layer_norm(x, g, b, eps=eps), F.layer_norm(x, (10,), g, b, eps=eps), **TOL)


def test_cross_entropy_equals_F_cross_entropy():
    logits = randn(3, 5, 11, seed=13)
    targets = torch.randint(0, 11, (3, 5), generator=torch.Generator().manual_seed(14))
    flat = logits.reshape(-1, 11), targets.reshape(-1)
    torch.testing.assert_close(h.cross_entropy(logits, targets), F.cross_entropy(*flat), **TOL)
    torch.testing.assert_close(h.cross_entropy(logits, targets, label_smoothing=0.1),
                               F.cross_entropy(*flat, label_smoothing=0.1), **TOL)
    targets[0, :3] = -100
    torch.testing.assert_close(h.cross_entropy(logits, targets, ignore_index=-100),
                               F.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1), ignore_index=-100), **TOL)


def test_feed_forward_equals_two_linear_layers():
    x = randn(2, 3, 6, seed=15)
    lin1, lin2 = torch.nn.Linear(6, 24, dtype=torch.float64), torch.nn.Linear(24, 6, dtype=torch.float64)
    expected = lin2(F.relu(lin1(x)))
    ours = h.feed_forward(x, lin1.weight.T, lin1.bias, lin2.weight.T, lin2.bias)
    torch.testing.assert_close(ours, expected, **TOL)


def test_noam_lr_equals_LambdaLR():
    d_model, warmup = 64, 10
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: h.noam_lr(i + 1, d_model, warmup))
    for step in range(1, 40):
        assert opt.param_groups[0]["lr"] == pytest.approx(d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5), rel=1e-12)
        opt.step()
        sched.step()
