"""helpers.efficient_attention: counts, sparse masks, attention on allowed pairs only,
the online softmax and tiled attention, against dense attention and PyTorch."""
import math
import tracemalloc
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

import helpers as h
from helpers.efficient_attention import (attention_layer_costs, global_tokens_mask,
                                         mask_key_index, online_softmax, online_softmax_step,
                                         sliding_window_attention, sliding_window_mask,
                                         sparse_attention, strided_mask, tiled_attention)

TOL = dict(rtol=1e-12, atol=1e-12)
FAST = settings(max_examples=40, deadline=None)


def qkv(seed, batch, n_q, n_k, d_k, d_v):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(batch + (n_q, d_k)), rng.standard_normal(batch + (n_k, d_k)),
            rng.standard_normal(batch + (n_k, d_v)))


def brute_mask(n, allowed):
    """The mask written out pair by pair from its definition."""
    return np.array([[allowed(i, j) for j in range(n)] for i in range(n)], dtype=bool)


# ----------------------------------------------------------------------------- counting

def test_costs_equal_multiply_adds_counted_on_the_operands():
    n, d_model, heads = 12, 8, 2
    d_k = d_model // heads
    counted = {"proj": 0, "scores": 0, "av": 0, "out": 0}

    def matmul(a, b, stage):
        counted[stage] += int(np.prod(a.shape[:-1])) * a.shape[-1] * b.shape[-1]
        return a @ b

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d_model))
    w_q, w_k, w_v, w_o = (rng.standard_normal((d_model, d_model)) for _ in range(4))
    q, k, v = (matmul(x, w, "proj") for w in (w_q, w_k, w_v))
    heads_out = []
    for i in range(heads):
        cols = slice(i * d_k, (i + 1) * d_k)
        s = matmul(q[:, cols], k[:, cols].T, "scores") / math.sqrt(d_k)
        heads_out.append(matmul(h.softmax(s), v[:, cols], "av"))
    out = matmul(np.concatenate(heads_out, axis=1), w_o, "out")
    ref, _ = h.multi_head_attention(x, x, w_q, w_k, w_v, w_o, num_heads=heads)
    np.testing.assert_allclose(out, ref, **TOL)
    costs = attention_layer_costs(n, d_model, heads)
    assert costs["projections Q, K, V"] == counted["proj"]
    assert costs["scores Q K^T"] == counted["scores"]
    assert costs["weights V"] == counted["av"]
    assert costs["output projection"] == counted["out"]
    assert costs["total multiply-adds"] == sum(counted.values())


@given(n=st.integers(1, 300), heads=st.sampled_from([1, 2, 4, 8]), itemsize=st.sampled_from([2, 4, 8]))
@FAST
def test_weights_bytes_equal_the_nbytes_of_the_weights(n, heads, itemsize):
    dtype = {2: np.float16, 4: np.float32, 8: np.float64}[itemsize]
    weights = np.zeros((heads, n, n), dtype=dtype)
    costs = attention_layer_costs(n, 8 * heads, heads, itemsize)
    assert costs["weights bytes"] == weights.nbytes
    assert costs["weights elements"] == weights.size


def test_score_costs_quadruple_when_n_doubles():
    for n in (3, 50, 1000):
        a, b = attention_layer_costs(n, 64, 4), attention_layer_costs(2 * n, 64, 4)
        assert b["scores Q K^T"] == 4 * a["scores Q K^T"]
        assert b["projections Q, K, V"] == 2 * a["projections Q, K, V"]


@pytest.mark.parametrize("bad", [dict(n=0, d_model=4), dict(n=3, d_model=6, num_heads=4),
                                 dict(n=2.5, d_model=4)])
def test_costs_reject_bad_sizes(bad):
    with pytest.raises(ValueError, match="attention_layer_costs"):
        attention_layer_costs(**bad)


# ----------------------------------------------------------------------------- masks

@given(n=st.integers(1, 30), w=st.integers(0, 35), causal=st.booleans())
@FAST
def test_sliding_window_mask_and_its_count(n, w, causal):
    mask = sliding_window_mask(n, w, causal)
    np.testing.assert_array_equal(
        mask, brute_mask(n, lambda i, j: abs(i - j) <= w and (j <= i or not causal)))
    # row i allows keys max(0, i-w)..min(n-1, i+w); summing, with v = min(w, n-1):
    v = min(w, n - 1)
    expected = n * (v + 1) - v * (v + 1) // 2 if causal else n * (2 * v + 1) - v * (v + 1)
    assert int(mask.sum()) == expected


@given(n=st.integers(1, 30), s=st.integers(1, 35), causal=st.booleans())
@FAST
def test_strided_mask_and_its_count(n, s, causal):
    mask = strided_mask(n, s, causal)
    np.testing.assert_array_equal(
        mask, brute_mask(n, lambda i, j: (i - j) % s == 0 and (j <= i or not causal)))
    q, r = divmod(n, s)  # r residue classes have q + 1 members, s - r have q
    sizes = [q + 1] * r + [q] * (s - r)
    expected = sum(c * (c + 1) // 2 for c in sizes) if causal else sum(c * c for c in sizes)
    assert int(mask.sum()) == expected


@given(n=st.integers(1, 30), g=st.integers(0, 35), causal=st.booleans())
@FAST
def test_global_tokens_mask_and_its_count(n, g, causal):
    mask = global_tokens_mask(n, g, causal)
    np.testing.assert_array_equal(
        mask, brute_mask(n, lambda i, j: (i < g or j < g) and (j <= i or not causal)))
    v = min(g, n)
    expected = v * (v + 1) // 2 + (n - v) * v if causal else 2 * n * v - v * v
    assert int(mask.sum()) == expected


@pytest.mark.parametrize("make", [lambda b: sliding_window_mask(9, 2, True, backend=b),
                                  lambda b: strided_mask(9, 3, backend=b),
                                  lambda b: global_tokens_mask(9, 2, True, backend=b)])
def test_masks_are_the_same_on_both_backends(make):
    m_np, m_t = make("numpy"), make("torch")
    assert isinstance(m_t, torch.Tensor) and m_t.dtype == torch.bool
    np.testing.assert_array_equal(m_t.numpy(), m_np)


@pytest.mark.parametrize("call, message", [
    (lambda: sliding_window_mask(0, 1), "n must be"),
    (lambda: sliding_window_mask(4, -1), "window must be"),
    (lambda: strided_mask(4, 0), "stride must be"),
    (lambda: global_tokens_mask(4, 1.5), "num_global must be"),
    (lambda: strided_mask(4, 2, backend="jax"), "backend must be"),
])
def test_masks_reject_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ----------------------------------------------------------------------------- allowed pairs only

@given(n=st.integers(1, 24), w=st.integers(0, 26), causal=st.booleans(),
       batch=st.sampled_from([(), (2,), (2, 3)]), seed=st.integers(0, 2**16))
@FAST
def test_banded_attention_equals_dense_attention_with_the_mask(n, w, causal, batch, seed):
    q, k, v = qkv(seed, batch, n, n, 5, 3)
    dense, dense_w = h.scaled_dot_product_attention(q, k, v, mask=sliding_window_mask(n, w, causal))
    banded, band_w = sliding_window_attention(q, k, v, w, causal)
    np.testing.assert_allclose(banded, dense, **TOL)
    # the banded weights are the dense weights' entries on the band, and nothing is lost
    r = band_w.shape[-1]
    assert r == (w + 1 if causal else 2 * w + 1)
    np.testing.assert_allclose(band_w.sum(-1), 1.0, **TOL)
    for i in range(n):
        for o in range(r):
            j = i - w + o
            if 0 <= j < n and (j <= i or not causal):
                np.testing.assert_allclose(band_w[..., i, o], dense_w[..., i, j], **TOL)
            else:
                assert np.all(band_w[..., i, o] == 0)


@pytest.mark.parametrize("causal", [False, True])
def test_banded_attention_on_torch_equals_F_sdpa_and_has_the_same_gradient(causal):
    q, k, v = (torch.tensor(a, requires_grad=True) for a in qkv(3, (2,), 11, 11, 4, 6))
    mask = sliding_window_mask(11, 2, causal, backend="torch")
    out, _ = sliding_window_attention(q, k, v, 2, causal)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, ref, **TOL)
    g = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(0))
    grads = torch.autograd.grad((out * g).sum(), (q, k, v))
    grads_ref = torch.autograd.grad((ref * g).sum(), (q, k, v))
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, **TOL)


@given(n_q=st.integers(1, 12), n_k=st.integers(1, 12), density=st.floats(0.05, 1.0),
       seed=st.integers(0, 2**16))
@FAST
def test_sparse_attention_equals_dense_for_any_mask(n_q, n_k, density, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_q, n_k)) < density
    mask[np.arange(n_q), rng.integers(0, n_k, n_q)] = True  # every row allows some key
    q, k, v = qkv(seed, (2,), n_q, n_k, 3, 2)
    out, weights = sparse_attention(q, k, v, mask)
    ref, _ = h.scaled_dot_product_attention(q, k, v, mask=mask)
    np.testing.assert_allclose(out, ref, **TOL)
    assert weights.shape[-1] == mask.sum(axis=1).max()  # r = most keys of any row
    out_t, _ = sparse_attention(*(torch.tensor(a) for a in (q, k, v)), torch.tensor(mask))
    torch.testing.assert_close(out_t, F.scaled_dot_product_attention(
        *(torch.tensor(a) for a in (q, k, v)), attn_mask=torch.tensor(mask)), **TOL)


def test_mask_key_index_lists_the_allowed_keys_in_order():
    mask = np.array([[False, True, False, True], [True, True, True, True], [False, False, True, False]])
    index, valid = mask_key_index(mask)
    np.testing.assert_array_equal(valid, [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
    assert [list(index[i][valid[i]]) for i in range(3)] == [[1, 3], [0, 1, 2, 3], [2]]


def test_attention_on_allowed_pairs_rejects_bad_input():
    q, k, v = qkv(0, (), 5, 5, 4, 4)
    with pytest.raises(ValueError, match="allows no key for query rows \\[1\\]"):
        sparse_attention(q, k, v, np.eye(5, dtype=bool) & (np.arange(5) != 1)[:, None])
    with pytest.raises(ValueError, match="mask has shape \\(4, 5\\)"):
        sparse_attention(q, k, v, np.ones((4, 5), dtype=bool))
    with pytest.raises(ValueError, match="as many queries as keys"):
        sliding_window_attention(q[:3], k, v, 1)
    with pytest.raises(TypeError, match="mix NumPy and torch"):
        sliding_window_attention(q, torch.tensor(k), v, 1)


# ----------------------------------------------------------------------------- online softmax

@given(batch=st.sampled_from([(), (3,), (2, 2)]), n=st.integers(1, 40), block=st.integers(1, 45),
       scale=st.sampled_from([1.0, 50.0, 800.0]), seed=st.integers(0, 2**16))
@FAST
def test_online_softmax_equals_softmax(batch, n, block, scale, seed):
    x = np.random.default_rng(seed).standard_normal(batch + (n,)) * scale
    out = online_softmax(x, block)
    assert np.all(np.isfinite(out))  # no overflow even for scores in the thousands
    np.testing.assert_allclose(out, h.softmax(x), **TOL)


@given(n=st.integers(2, 30), seed=st.integers(0, 2**16), data=st.data())
@FAST
def test_online_softmax_state_does_not_depend_on_the_blocking(n, seed, data):
    x = np.random.default_rng(seed).standard_normal(n) * 10
    cuts = sorted(set(data.draw(st.lists(st.integers(1, n - 1), max_size=5))))
    m, l = np.array(-np.inf), np.array(0.0)
    for block in np.split(x, cuts):
        m, l, _, _ = online_softmax_step(m, l, block)
    assert m == x.max()  # the running maximum is exact
    np.testing.assert_allclose(l, np.exp(x - x.max()).sum(), **TOL)


def test_online_softmax_of_an_all_masked_row_is_zero():
    x = np.array([[-np.inf, -np.inf, -np.inf], [0.0, -np.inf, 1.0]])
    out = online_softmax(x, 2)
    np.testing.assert_array_equal(out[0], 0.0)
    np.testing.assert_allclose(out[1], h.softmax(x[1]), **TOL)


@pytest.mark.parametrize("block", [1, 3, 7, 50])
def test_online_softmax_on_torch_equals_torch_softmax_with_its_gradient(block):
    x = torch.tensor(np.random.default_rng(block).standard_normal((3, 2, 17)) * 20, requires_grad=True)
    out = online_softmax(x, block)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    ref = torch.softmax(x, dim=-1)
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close(out, h.softmax(x), **TOL)
    np.testing.assert_allclose(out.detach().numpy(), online_softmax(x.detach().numpy(), block), **TOL)
    g = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(block))
    grad, = torch.autograd.grad((out * g).sum(), x)
    grad_ref, = torch.autograd.grad((ref * g).sum(), x)
    torch.testing.assert_close(grad, grad_ref, **TOL)


def test_online_softmax_keeps_torch_dtype():
    x = torch.randn(4, 33, dtype=torch.float32, generator=torch.Generator().manual_seed(0)) * 30
    out = online_softmax(x, 8)
    assert out.dtype == torch.float32 and out.device == x.device
    torch.testing.assert_close(out, torch.softmax(x, dim=-1), rtol=1e-5, atol=1e-6)


def test_online_softmax_step_refuses_mismatched_state():
    with pytest.raises(ValueError, match="m \\(3,\\) and l \\(3,\\) must both have the shape of block \\(2, 4\\)"):
        online_softmax_step(np.zeros(3), np.zeros(3), np.zeros((2, 4)))
    with pytest.raises(TypeError, match="mix NumPy and torch"):
        online_softmax_step(np.zeros(2), np.zeros(2), torch.zeros(2, 4))


# ----------------------------------------------------------------------------- tiled attention

@given(n_q=st.integers(1, 40), n_k=st.integers(1, 40), block_q=st.integers(1, 48),
       block_k=st.integers(1, 48), batch=st.sampled_from([(), (2,), (2, 2)]),
       seed=st.integers(0, 2**16))
@FAST
def test_tiled_attention_equals_naive_attention(n_q, n_k, block_q, block_k, batch, seed):
    q, k, v = qkv(seed, batch, n_q, n_k, 6, 5)
    trace = []
    out = tiled_attention(q, k, v, block_q, block_k, trace=trace)
    ref, _ = h.scaled_dot_product_attention(q, k, v)
    np.testing.assert_allclose(out, ref, **TOL)
    assert len(trace) == math.ceil(n_q / block_q) * math.ceil(n_k / block_k)
    assert all(s[-2] <= block_q and s[-1] <= block_k for s in trace)


@given(n=st.integers(1, 40), block_q=st.integers(1, 48), block_k=st.integers(1, 48),
       seed=st.integers(0, 2**16))
@FAST
def test_causal_tiled_attention_equals_masked_attention(n, block_q, block_k, seed):
    q, k, v = qkv(seed, (2,), n, n, 4, 3)
    trace = []
    out = tiled_attention(q, k, v, block_q, block_k, causal=True, trace=trace)
    ref, _ = h.scaled_dot_product_attention(q, k, v, mask=h.causal_mask(n))
    np.testing.assert_allclose(out, ref, **TOL)
    # a tile (query block a, key block b) is needed iff its first key is <= its last query
    needed = sum(1 for a in range(0, n, block_q) for b in range(0, n, block_k)
                 if b <= min(a + block_q, n) - 1)
    assert len(trace) == needed


@given(n_q=st.integers(1, 20), n_k=st.integers(1, 20), block_q=st.integers(1, 24),
       block_k=st.integers(1, 24), density=st.floats(0.1, 1.0), seed=st.integers(0, 2**16))
@FAST
def test_tiled_attention_with_any_mask_equals_masked_attention(n_q, n_k, block_q, block_k,
                                                               density, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((2, n_q, n_k)) < density
    mask[:, np.arange(n_q), rng.integers(0, n_k, n_q)] = True     # every row allows some key
    q, k, v = qkv(seed, (2,), n_q, n_k, 3, 2)
    ref, _ = h.scaled_dot_product_attention(q, k, v, mask=mask)
    np.testing.assert_allclose(tiled_attention(q, k, v, block_q, block_k, mask=mask), ref, **TOL)
    out_t = tiled_attention(*(torch.tensor(a) for a in (q, k, v)), block_q, block_k,
                            mask=torch.tensor(mask))
    torch.testing.assert_close(out_t, torch.tensor(ref), **TOL)


def padded(lengths, n):
    """Key-padding mask (batch, 1, 1, n) from lengths, written out from its definition."""
    return (np.arange(n)[None, :] < np.asarray(lengths)[:, None])[:, None, None, :]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("lengths", [None, [33, 20]])
def test_tiled_attention_equals_F_sdpa_on_both_backends(causal, lengths):
    q, k, v = qkv(7, (2, 3), 33, 33, 8, 5)
    mask = None if lengths is None else padded(lengths, 33)             # (2, 1, 1, 33)
    full = mask if not causal else (h.causal_mask(33) if mask is None else mask & h.causal_mask(33))
    qt, kt, vt = (torch.tensor(a) for a in (q, k, v))
    ref = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=None if full is None else torch.tensor(full))
    out_np = tiled_attention(q, k, v, 8, 16, causal=causal, mask=mask)
    assert isinstance(out_np, np.ndarray)
    torch.testing.assert_close(torch.tensor(out_np), ref, **TOL)
    np.testing.assert_allclose(out_np, h.scaled_dot_product_attention(q, k, v, mask=full)[0], **TOL)
    out_t = tiled_attention(qt, kt, vt, 8, 16, causal=causal,
                            mask=None if mask is None else torch.tensor(mask))
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float64
    torch.testing.assert_close(out_t, ref, **TOL)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("with_padding", [False, True])
def test_tiled_attention_on_torch_has_the_gradient_of_exact_attention(causal, with_padding):
    q, k, v = (torch.tensor(a, requires_grad=True) for a in qkv(8, (2,), 19, 19, 4, 3))
    mask = torch.tensor(padded([19, 11], 19)[:, 0]) if with_padding else None   # (2, 1, 19)
    full = mask
    if causal:
        full = h.causal_mask(19, backend="torch") if mask is None else mask & h.causal_mask(19, backend="torch")
    out = tiled_attention(q, k, v, 5, 4, causal=causal, mask=mask)
    exact, _ = h.scaled_dot_product_attention(q, k, v, mask=full)
    fused = F.scaled_dot_product_attention(q, k, v, attn_mask=full)
    g = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(1))
    grads = torch.autograd.grad((out * g).sum(), (q, k, v))
    for ref in (exact, fused):
        torch.testing.assert_close(out, ref, **TOL)
        for a, b in zip(grads, torch.autograd.grad((ref * g).sum(), (q, k, v))):
            torch.testing.assert_close(a, b, **TOL)


def test_tiled_attention_passes_gradcheck():
    q, k, v = (torch.tensor(a, requires_grad=True) for a in qkv(9, (), 6, 7, 3, 2))
    assert torch.autograd.gradcheck(lambda q, k, v: tiled_attention(q, k, v, 4, 3), (q, k, v))
    assert torch.autograd.gradcheck(lambda q, k, v: tiled_attention(q, k[:6], v[:6], 2, 4, causal=True),
                                    (q, k, v))


def test_tiled_attention_keeps_torch_dtype_and_device():
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 40, 8, dtype=torch.float32, generator=gen) for _ in range(3))
    out = tiled_attention(q, k, v, 16, 16, causal=True)
    assert out.dtype == torch.float32 and out.device == q.device and out.shape == (2, 40, 8)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True),
                               rtol=1e-5, atol=1e-6)


def test_tiled_attention_does_the_work_of_dense_attention_counted_by_torch():
    """Non-causal: the tiles cover every pair, 2 n_q n_k (d_k + d_v) FLOPs in matrix products,
    as many as dense attention's; causal: only the tiles on and below the diagonal."""
    n, d_k, d_v, b = 96, 8, 4, 32
    q, k, v = (torch.randn(n, d, dtype=torch.float64, generator=torch.Generator().manual_seed(d))
               for d in (d_k, d_k, d_v))

    def flops(f):
        counter = FlopCounterMode(display=False)
        with counter:
            f()
        return counter.get_total_flops()
    dense = flops(lambda: h.scaled_dot_product_attention(q, k, v))
    assert dense == 2 * n * n * (d_k + d_v)
    assert flops(lambda: tiled_attention(q, k, v, b, b)) == dense
    tiles = (n // b) * (n // b + 1) // 2                             # 1 + 2 + 3 of 9 tiles
    assert flops(lambda: tiled_attention(q, k, v, b, b, causal=True)) == tiles * 2 * b * b * (d_k + d_v)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_tiled_attention_zeroes_and_reports_fully_masked_rows(backend):
    q, k, v = qkv(4, (2,), 6, 6, 3, 2)
    mask = np.ones((2, 6, 6), dtype=bool)
    mask[1, 2] = False                               # query 2 of sequence 1 may see nothing
    if backend == "torch":
        q, k, v, mask = (torch.tensor(a) for a in (q, k, v, mask))
    with pytest.warns(h.FullyMaskedRowWarning, match="1 query row"):
        out = tiled_attention(q, k, v, 4, 4, mask=mask)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", h.FullyMaskedRowWarning)
        ref, _ = h.scaled_dot_product_attention(q, k, v, mask=mask)
    out, ref = (np.asarray(a) for a in (out, ref))
    assert np.all(out[1, 2] == 0)
    np.testing.assert_allclose(out, ref, **TOL)


def test_tiled_attention_with_a_padding_mask_never_allocates_an_n_by_n_array():
    n, d = 512, 8
    q, k, v = qkv(1, (2,), n, n, d, d)
    mask = padded([n, 300], n)[:, 0]                                   # (2, 1, n)
    tiled_attention(q, k, v, 32, 32, causal=True, mask=mask)           # warm up
    tracemalloc.start()
    out = tiled_attention(q, k, v, 32, 32, causal=True, mask=mask)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2 * n * n * 8 / 8                                    # (2, n, n) float64 / 8
    np.testing.assert_allclose(out, h.scaled_dot_product_attention(
        q, k, v, mask=mask & h.causal_mask(n))[0], **TOL)


def test_tiled_attention_never_allocates_an_n_by_n_array():
    n, d = 512, 8
    q, k, v = qkv(1, (), n, n, d, d)
    tiled_attention(q, k, v, 32, 32)                   # warm up (first-call allocations)
    h.scaled_dot_product_attention(q, k, v)

    def peak(f):
        tracemalloc.start()
        f()
        result = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return result

    n_by_n = n * n * 8
    assert peak(lambda: h.scaled_dot_product_attention(q, k, v)) >= n_by_n
    assert peak(lambda: tiled_attention(q, k, v, 32, 32)) < n_by_n / 4


def test_tiled_attention_rejects_bad_input():
    q, k, v = qkv(0, (), 5, 6, 4, 4)
    with pytest.raises(TypeError, match="mix NumPy and torch"):
        tiled_attention(torch.tensor(q), k, v)
    with pytest.raises(TypeError, match="q must hold real floating-point numbers"):
        tiled_attention(np.ones((5, 4), dtype=np.int64), k, v)
    with pytest.raises(ValueError, match="mask has shape \\(5, 5\\)"):
        tiled_attention(q, k, v, mask=np.ones((5, 5), dtype=bool))
    with pytest.raises(TypeError, match="mask must be boolean"):
        tiled_attention(q, k, v, mask=np.ones((5, 6)))
    with pytest.raises(ValueError, match="causal=True needs as many queries as keys"):
        tiled_attention(q, k, v, causal=True)
    with pytest.raises(ValueError, match="block_k must be an integer >= 1"):
        tiled_attention(q, k, v, 4, 0)
    with pytest.raises(ValueError, match="k has shape \\(6, 4\\) and v has shape \\(5, 4\\)"):
        tiled_attention(q, k, v[:5])
