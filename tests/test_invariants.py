"""Invariants of the formulas, checked on many random inputs (hypothesis)."""
import numpy as np
import torch
from hypothesis import given, settings, strategies as st

import helpers as h

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def qkv(draw):
    n_q, n_k = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    d_k, d_v, batch = draw(st.integers(1, 8)), draw(st.integers(1, 5)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.floats(0.1, 5.0))
    return (rng.normal(size=(batch, n_q, d_k)) * scale, rng.normal(size=(batch, n_k, d_k)) * scale,
            rng.normal(size=(batch, n_k, d_v)), rng)


@SETTINGS
@given(qkv())
def test_weights_are_a_probability_distribution(args):
    q, k, v, _ = args
    out, w = h.scaled_dot_product_attention(q, k, v)
    assert out.shape == q.shape[:-1] + v.shape[-1:] and w.shape == q.shape[:-1] + k.shape[-2:-1]
    assert (w >= 0).all()
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=0, atol=1e-12)
    # a convex combination of the values lies inside their range, column by column
    assert (out <= v.max(-2, keepdims=True) + 1e-9).all() and (out >= v.min(-2, keepdims=True) - 1e-9).all()


@SETTINGS
@given(st.integers(1, 10), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_causal_mask_puts_no_weight_on_the_future(n, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, n, d)) * 3
    _, w = h.scaled_dot_product_attention(x, x, x, mask=h.causal_mask(n))
    assert np.all(w[..., np.triu_indices(n, 1)[0], np.triu_indices(n, 1)[1]] == 0)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-12)


@SETTINGS
@given(st.integers(2, 8), st.sampled_from([2, 4, 6]), st.integers(0, 2**32 - 1))
def test_self_attention_without_positions_is_permutation_equivariant(n, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    w = [rng.normal(size=(d, d)) for _ in range(4)]
    perm = rng.permutation(n)
    out, _ = h.multi_head_attention(x, x, *w, num_heads=2)
    out_perm, _ = h.multi_head_attention(x[perm], x[perm], *w, num_heads=2)
    np.testing.assert_allclose(out_perm, out[perm], rtol=1e-10, atol=1e-10)


@SETTINGS
@given(st.integers(0, 200), st.integers(-50, 50), st.sampled_from([2, 8, 16, 64]))
def test_pe_shift_is_a_fixed_rotation(pos, k, d_model):
    if pos + k < 0:
        k = -pos
    pe = h.sinusoidal_positional_encoding(pos + max(k, 0) + 1, d_model)
    m_k = h.positional_rotation(k, d_model)
    np.testing.assert_allclose(pe[pos] @ m_k, pe[pos + k], atol=1e-9)
    # M_k is block-diagonal: nothing outside the 2x2 blocks on the diagonal
    blocks = np.kron(np.eye(d_model // 2), np.ones((2, 2)))
    assert np.all(m_k[blocks == 0] == 0)
    np.testing.assert_allclose(m_k @ m_k.T, np.eye(d_model), atol=1e-12)  # a rotation


@SETTINGS
@given(st.integers(1, 4096), st.integers(1, 20000))
def test_noam_lr_peaks_at_warmup(d_model, warmup):
    peak = h.noam_lr(warmup, d_model, warmup)
    np.testing.assert_allclose(peak, (d_model * warmup) ** -0.5, rtol=1e-12)
    steps = np.unique(np.linspace(1, 4 * warmup, 200).astype(int))
    lrs = h.noam_lr(steps, d_model, warmup)
    assert lrs.max() <= peak * (1 + 1e-12)
    assert np.all(np.diff(lrs[steps <= warmup]) > 0) and np.all(np.diff(lrs[steps >= warmup]) < 0)


@SETTINGS
@given(st.integers(1, 5), st.integers(2, 16), st.integers(0, 2**32 - 1))
def test_layer_norm_output_has_zero_mean_unit_variance(n, d, seed):
    x = np.random.default_rng(seed).normal(size=(n, d)) * 10 + 3
    y = h.layer_norm(x, np.ones(d), np.zeros(d), eps=0.0)
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-10)
    np.testing.assert_allclose(y.var(-1), 1, atol=1e-10)


@SETTINGS
@given(st.floats(-50, 50), st.integers(0, 2**32 - 1))
def test_softmax_is_shift_invariant(c, seed):
    x = torch.tensor(np.random.default_rng(seed).normal(size=(3, 7)))
    torch.testing.assert_close(h.softmax(x + c), h.softmax(x), rtol=1e-12, atol=1e-12)
