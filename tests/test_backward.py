"""helpers.backward: every hand-derived backward pass equals torch.autograd (float64).

The autograd side differentiates the core helpers functions on torch tensors, with the
scalar loss L = sum(output * d_output), whose gradient with respect to the output is
d_output; so each backward function receives exactly that d_output.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import helpers as h
from helpers import backward as B
from helpers.layers import encoder_layer, init_layer_params, map_params

TOL = dict(rtol=1e-10, atol=1e-12)
SETTINGS = settings(max_examples=25, deadline=None)


def autograd(fn, arrays: dict, d_output):
    """Gradients of sum(fn(**arrays) * d_output) by torch.autograd, as NumPy arrays."""
    leaves = {k: torch.tensor(a, requires_grad=True) for k, a in arrays.items()}
    (fn(**leaves) * torch.tensor(d_output)).sum().backward()
    return {k: t.grad.numpy() for k, t in leaves.items()}


def normal(rng, *shape):
    return rng.normal(size=shape)


@SETTINGS
@given(seed=st.integers(0, 2**31), batch=st.integers(1, 3), n=st.integers(1, 5),
       v=st.integers(2, 7), axis=st.sampled_from([-1, 0]))
def test_softmax_backward(seed, batch, n, v, axis):
    rng = np.random.default_rng(seed)
    x, dp = normal(rng, batch, n, v), normal(rng, batch, n, v)
    expected = autograd(lambda x: h.softmax(x, axis=axis), {"x": x}, dp)["x"]
    np.testing.assert_allclose(B.softmax_backward(h.softmax(x, axis=axis), dp, axis=axis), expected, **TOL)


def test_softmax_backward_is_the_jacobian_product():
    rng = np.random.default_rng(0)
    p, dp = h.softmax(normal(rng, 5)), normal(rng, 5)
    jacobian = np.diag(p) - np.outer(p, p)               # dp_i/dx_j = p_i (delta_ij - p_j)
    np.testing.assert_allclose(B.softmax_backward(p, dp), jacobian.T @ dp, **TOL)


@SETTINGS
@given(seed=st.integers(0, 2**31), batch=st.integers(1, 3), n_q=st.integers(1, 5),
       n_k=st.integers(1, 5), d_k=st.integers(1, 4), d_v=st.integers(1, 4), masked=st.booleans())
def test_attention_backward(seed, batch, n_q, n_k, d_k, d_v, masked):
    rng = np.random.default_rng(seed)
    q, k, v = normal(rng, batch, n_q, d_k), normal(rng, batch, n_k, d_k), normal(rng, batch, n_k, d_v)
    d_out = normal(rng, batch, n_q, d_v)
    mask = None
    if masked:
        mask = rng.random((n_q, n_k)) < 0.6
        mask[:, 0] = True                                # every query may attend to something
    tmask = None if mask is None else torch.tensor(mask)
    expected = autograd(lambda q, k, v: h.scaled_dot_product_attention(q, k, v, mask=tmask)[0],
                        {"q": q, "k": k, "v": v}, d_out)
    got = B.scaled_dot_product_attention_backward(q, k, v, d_out, mask=mask)
    for name, g in zip("qkv", got):
        np.testing.assert_allclose(g, expected[name], **TOL, err_msg=name)


def test_attention_backward_sums_broadcast_batch_axes():
    rng = np.random.default_rng(1)
    q, k, v = normal(rng, 3, 4, 2), normal(rng, 1, 5, 2), normal(rng, 5, 3)
    d_out = normal(rng, 3, 4, 3)
    expected = autograd(lambda q, k, v: h.scaled_dot_product_attention(q, k, v)[0],
                        {"q": q, "k": k, "v": v}, d_out)
    d_q, d_k, d_v = B.scaled_dot_product_attention_backward(q, k, v, d_out)
    assert d_k.shape == (1, 5, 2) and d_v.shape == (5, 3)
    for name, g in zip("qkv", (d_q, d_k, d_v)):
        np.testing.assert_allclose(g, expected[name], **TOL, err_msg=name)


@SETTINGS
@given(seed=st.integers(0, 2**31), batch=st.integers(1, 2), n_q=st.integers(1, 4),
       n_k=st.integers(1, 4), heads=st.integers(1, 3), d_head=st.integers(1, 3),
       d_model=st.integers(1, 5), causal=st.booleans())
def test_multi_head_attention_backward(seed, batch, n_q, n_k, heads, d_head, d_model, causal):
    rng = np.random.default_rng(seed)
    if causal:
        n_k = n_q
    x_q, x_kv = normal(rng, batch, n_q, d_model), normal(rng, batch, n_k, d_model)
    w = {"w_q": normal(rng, d_model, heads * d_head), "w_k": normal(rng, d_model, heads * d_head),
         "w_v": normal(rng, d_model, heads * (d_head + 1)), "w_o": normal(rng, heads * (d_head + 1), d_model)}
    d_out = normal(rng, batch, n_q, d_model)
    mask = h.causal_mask(n_q) if causal else None
    tmask = h.causal_mask(n_q, backend="torch") if causal else None
    expected = autograd(lambda x_q, x_kv, **w: h.multi_head_attention(x_q, x_kv, **w, num_heads=heads,
                                                                       mask=tmask)[0],
                        {"x_q": x_q, "x_kv": x_kv, **w}, d_out)
    got = B.multi_head_attention_backward(x_q, x_kv, **w, num_heads=heads, d_output=d_out, mask=mask)
    assert set(got) == set(expected)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], **TOL, err_msg=name)


def test_self_attention_gradient_is_the_sum_of_both_paths():
    rng = np.random.default_rng(2)
    x = normal(rng, 2, 4, 6)
    w = [normal(rng, 6, 6) for _ in range(4)]
    d_out = normal(rng, 2, 4, 6)
    expected = autograd(lambda x: h.multi_head_attention(x, x, *map(torch.tensor, w), 3)[0],
                        {"x": x}, d_out)["x"]
    got = B.multi_head_attention_backward(x, x, *w, 3, d_out)
    np.testing.assert_allclose(got["x_q"] + got["x_kv"], expected, **TOL)


@SETTINGS
@given(seed=st.integers(0, 2**31), rows=st.integers(1, 4), d=st.integers(2, 8),
       eps=st.sampled_from([1e-5, 1e-3, 0.0]))
def test_layer_norm_backward(seed, rows, d, eps):
    rng = np.random.default_rng(seed)
    x, gamma, beta, d_out = normal(rng, 2, rows, d), normal(rng, d), normal(rng, d), normal(rng, 2, rows, d)
    expected = autograd(lambda x, gamma, beta: h.layer_norm(x, gamma, beta, eps=eps),
                        {"x": x, "gamma": gamma, "beta": beta}, d_out)
    got = B.layer_norm_backward(x, gamma, beta, d_out, eps=eps)
    for name, g in zip(("x", "gamma", "beta"), got):
        np.testing.assert_allclose(g, expected[name], rtol=1e-9, atol=1e-11, err_msg=name)


def test_layer_norm_backward_equals_torch_layer_norm():
    rng = np.random.default_rng(3)
    x, gamma, beta, d_out = normal(rng, 3, 7), normal(rng, 7), normal(rng, 7), normal(rng, 3, 7)
    expected = autograd(lambda x, gamma, beta: torch.nn.functional.layer_norm(x, (7,), gamma, beta),
                        {"x": x, "gamma": gamma, "beta": beta}, d_out)
    for name, g in zip(("x", "gamma", "beta"), B.layer_norm_backward(x, gamma, beta, d_out)):
        np.testing.assert_allclose(g, expected[name], **TOL, err_msg=name)


@SETTINGS
@given(seed=st.integers(0, 2**31), lead=st.lists(st.integers(1, 3), min_size=1, max_size=3),
       d_model=st.integers(1, 5), d_ff=st.integers(1, 9))
def test_feed_forward_backward(seed, lead, d_model, d_ff):
    rng = np.random.default_rng(seed)
    args = {"x": normal(rng, *lead, d_model), "w1": normal(rng, d_model, d_ff), "b1": normal(rng, d_ff),
            "w2": normal(rng, d_ff, d_model), "b2": normal(rng, d_model)}
    d_out = normal(rng, *lead, d_model)
    expected = autograd(h.feed_forward, args, d_out)
    got = B.feed_forward_backward(**args, d_output=d_out)
    for name in args:
        np.testing.assert_allclose(got[name], expected[name], **TOL, err_msg=name)


@SETTINGS
@given(seed=st.integers(0, 2**31), lead=st.lists(st.integers(1, 4), min_size=1, max_size=2),
       vocab=st.integers(2, 9), smoothing=st.sampled_from([0.0, 0.1, 0.5]), ignore=st.booleans())
def test_cross_entropy_backward(seed, lead, vocab, smoothing, ignore):
    rng = np.random.default_rng(seed)
    logits = normal(rng, *lead, vocab)
    targets = rng.integers(0, vocab, size=lead)
    ignore_index = None
    if ignore and targets.size > 1:
        ignore_index = -100
        targets.flat[0] = -100
    leaf = torch.tensor(logits, requires_grad=True)
    torch.nn.functional.cross_entropy(leaf.reshape(-1, vocab), torch.tensor(targets).reshape(-1),
                                      ignore_index=-100, label_smoothing=smoothing).backward()
    got = B.cross_entropy_backward(logits, targets, ignore_index=ignore_index, label_smoothing=smoothing)
    np.testing.assert_allclose(got, leaf.grad.numpy(), **TOL)


def flatten(nested):
    return {f"{part}.{k}": v for part, d in nested.items() for k, v in d.items()}


def unflatten(flat):
    nested = {}
    for key, v in flat.items():
        part, name = key.split(".")
        nested.setdefault(part, {})[name] = v
    return nested


def encoder_params(rng, d_model, d_ff):
    """Random (not initial-looking) parameters in helpers.layers' nested format."""
    params = init_layer_params(d_model, d_ff, "encoder", rng=rng)
    return map_params(lambda a: a + 0.3 * rng.normal(size=a.shape), params)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31), batch=st.integers(1, 2), n=st.integers(1, 5),
       heads=st.sampled_from([1, 2]), causal=st.booleans())
def test_encoder_layer_backward(seed, batch, n, heads, causal):
    rng = np.random.default_rng(seed)
    d_model = 4
    params = encoder_params(rng, d_model, 8)
    x, d_out = normal(rng, batch, n, d_model), normal(rng, batch, n, d_model)
    mask = h.causal_mask(n) if causal else None
    tmask = h.causal_mask(n, backend="torch") if causal else None
    expected = autograd(lambda x, **flat: encoder_layer(x, unflatten(flat), tmask, num_heads=heads),
                        {"x": x, **flatten(params)}, d_out)
    got = B.encoder_layer_backward(x, params, d_out, mask=mask, num_heads=heads)
    got = {"x": got.pop("x"), **flatten(got)}
    assert set(got) == set(expected)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-9, atol=1e-10, err_msg=name)


def test_attention_bias_gradients():
    rng = np.random.default_rng(4)
    x_q, x_kv = normal(rng, 2, 3, 4), normal(rng, 2, 5, 4)
    args = {"w_q": normal(rng, 4, 4), "w_k": normal(rng, 4, 4), "w_v": normal(rng, 4, 6),
            "w_o": normal(rng, 6, 4), "b_q": normal(rng, 4), "b_k": normal(rng, 4),
            "b_v": normal(rng, 6), "b_o": normal(rng, 4)}
    d_out = normal(rng, 2, 3, 4)
    expected = autograd(lambda x_q, x_kv, **a: h.multi_head_attention(x_q, x_kv, num_heads=2, **a)[0],
                        {"x_q": x_q, "x_kv": x_kv, **args}, d_out)
    got = B.multi_head_attention_backward(x_q, x_kv, num_heads=2, d_output=d_out, **args)
    assert set(got) == set(expected)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], **TOL, err_msg=name)


def test_backward_agrees_with_central_finite_differences():
    rng = np.random.default_rng(5)
    x, gamma, beta, d_out = normal(rng, 2, 5), normal(rng, 5), normal(rng, 5), normal(rng, 2, 5)
    d_x = B.layer_norm_backward(x, gamma, beta, d_out)[0]
    numeric = np.zeros_like(x)
    step = 1e-6
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = step
        numeric[i] = (np.sum(h.layer_norm(x + e, gamma, beta) * d_out)
                      - np.sum(h.layer_norm(x - e, gamma, beta) * d_out)) / (2 * step)
    np.testing.assert_allclose(d_x, numeric, rtol=1e-6, atol=1e-8)


def test_backward_runs_on_torch_tensors_too():
    rng = np.random.default_rng(6)
    q, k, v, d_out = normal(rng, 3, 2), normal(rng, 4, 2), normal(rng, 4, 3), normal(rng, 3, 3)
    got_np = B.scaled_dot_product_attention_backward(q, k, v, d_out)
    got_t = B.scaled_dot_product_attention_backward(*map(torch.tensor, (q, k, v, d_out)))
    for a, b in zip(got_np, got_t):
        assert isinstance(b, torch.Tensor)
        np.testing.assert_allclose(b.numpy(), a, **TOL)
    z, t = normal(rng, 3, 5), np.array([0, 4, 2])
    g = B.cross_entropy_backward(torch.tensor(z), torch.tensor(t), label_smoothing=0.1)
    np.testing.assert_allclose(g.numpy(), B.cross_entropy_backward(z, t, label_smoothing=0.1), **TOL)


def test_bad_input_is_named():
    rng = np.random.default_rng(7)
    q = normal(rng, 3, 2)
    with pytest.raises(ValueError, match=r"d_output must have the shape of the attention output, \(3, 2\)"):
        B.scaled_dot_product_attention_backward(q, q, q, normal(rng, 3, 5))
    with pytest.raises(ValueError, match=r"d_probs must have the shape of probs"):
        B.softmax_backward(h.softmax(q), normal(rng, 2, 3))
    with pytest.raises(TypeError, match="mix NumPy and torch"):
        B.layer_norm_backward(q, np.ones(2), np.zeros(2), torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"params\[.self_attn.\] lacks"):
        B.encoder_layer_backward(normal(rng, 3, 4), {"self_attn": {}}, normal(rng, 3, 4), num_heads=1)


def decoder_params(rng, d_model, d_ff):
    params = init_layer_params(d_model, d_ff, "decoder", rng=rng)
    return map_params(lambda a: a + 0.3 * rng.normal(size=a.shape), params)


@pytest.mark.parametrize("norm", ["post", "pre", "none"])
def test_encoder_layer_backward_every_norm_placement(norm):
    rng = np.random.default_rng(11)
    params = encoder_params(rng, 4, 8)
    if norm == "none":   # no normalisation: its parameters are not used, not even present
        params = {part: p for part, p in params.items() if not part.startswith("norm")}
    x, d_out = normal(rng, 2, 5, 4), normal(rng, 2, 5, 4)
    expected = autograd(lambda x, **flat: encoder_layer(x, unflatten(flat), norm=norm, num_heads=2),
                        {"x": x, **flatten(params)}, d_out)
    got = B.encoder_layer_backward(x, params, d_out, num_heads=2, norm=norm)
    got = {"x": got.pop("x"), **flatten(got)}
    assert set(got) == set(expected)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-9, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("norm", ["post", "pre", "none"])
def test_decoder_layer_backward_against_autograd(norm):
    from helpers.layers import decoder_layer
    rng = np.random.default_rng(12)
    params = decoder_params(rng, 4, 8)
    if norm == "none":
        params = {part: p for part, p in params.items() if not part.startswith("norm")}
    y, memory, d_out = normal(rng, 2, 5, 4), normal(rng, 2, 3, 4), normal(rng, 2, 5, 4)
    memory_mask = np.array([[True, True, False], [True, True, True]])[:, None, :]   # source padding
    t_mask = torch.tensor(memory_mask)
    expected = autograd(lambda y, memory, **flat: decoder_layer(y, memory, unflatten(flat), memory_mask=t_mask,
                                                                norm=norm, num_heads=2),
                        {"y": y, "memory": memory, **flatten(params)}, d_out)
    got = B.decoder_layer_backward(y, memory, params, d_out, memory_mask=memory_mask, num_heads=2, norm=norm)
    got = {"y": got.pop("y"), "memory": got.pop("memory"), **flatten(got)}
    assert set(got) == set(expected)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-9, atol=1e-10, err_msg=name)
