"""The NumPy and torch backends of every helpers function agree in float64 to 1e-12."""
import numpy as np
import pytest
import torch

import helpers as h

TOL = dict(rtol=1e-12, atol=1e-12)


def to_torch(*arrays):
    return [torch.tensor(a) if isinstance(a, np.ndarray) else a for a in arrays]


def check(func, *args, **kwargs):
    out_np = func(*args, **kwargs)
    out_t = func(*to_torch(*args), **{k: torch.tensor(v) if isinstance(v, np.ndarray) else v
                                      for k, v in kwargs.items()})
    outs_np = out_np if isinstance(out_np, tuple) else (out_np,)
    outs_t = out_t if isinstance(out_t, tuple) else (out_t,)
    for a, b in zip(outs_np, outs_t):
        assert isinstance(a, (np.ndarray, np.floating)) and isinstance(b, torch.Tensor)
        assert b.dtype == torch.float64
        np.testing.assert_allclose(b.numpy(), a, **TOL)


def test_softmax(rng):
    x = rng.normal(size=(2, 3, 5, 7))
    for axis in (-1, 0, 2):
        check(h.softmax, x, axis=axis)


def test_attention_with_batch_axes_and_mask(rng):
    q, k, v = rng.normal(size=(2, 3, 4, 8)), rng.normal(size=(2, 3, 6, 8)), rng.normal(size=(2, 3, 6, 5))
    mask = rng.random(size=(2, 1, 4, 6)) < 0.7
    mask[..., 0] = True
    check(h.scaled_dot_product_attention, q, k, v)
    check(h.scaled_dot_product_attention, q, k, v, mask=mask)


def test_multi_head_attention(rng):
    x_q, x_kv = rng.normal(size=(2, 5, 12)), rng.normal(size=(2, 7, 12))
    w_q, w_k, w_v, w_o = (rng.normal(size=s) for s in [(12, 12), (12, 12), (12, 8), (8, 12)])
    mask = rng.random(size=(2, 5, 7)) < 0.8
    mask[..., 0] = True
    check(h.multi_head_attention, x_q, x_kv, w_q, w_k, w_v, w_o, 4, mask=mask,
          b_q=rng.normal(size=12), b_o=rng.normal(size=12))


def test_layer_norm_feed_forward_and_loss(rng):
    x = rng.normal(size=(3, 4, 6))
    check(h.layer_norm, x, rng.normal(size=6), rng.normal(size=6))
    check(h.feed_forward, x, rng.normal(size=(6, 24)), rng.normal(size=24),
          rng.normal(size=(24, 6)), rng.normal(size=6))
    logits, targets = rng.normal(size=(3, 4, 10)), rng.integers(0, 10, size=(3, 4))
    check(h.cross_entropy, logits, targets)
    check(h.cross_entropy, logits, targets, label_smoothing=0.1)


@pytest.mark.parametrize("n, d", [(1, 2), (17, 8), (50, 64)])
def test_made_from_nothing(n, d):
    for func, args in [(h.sinusoidal_positional_encoding, (n, d)), (h.positional_rotation, (3, d)),
                       (h.causal_mask, (n,))]:
        a = func(*args, backend="numpy")
        t = func(*args, backend="torch", **({"dtype": torch.float64} if func is not h.causal_mask else {}))
        assert isinstance(a, np.ndarray) and isinstance(t, torch.Tensor)
        np.testing.assert_allclose(t.numpy(), a, **TOL)


def test_torch_keeps_dtype_and_gradients(rng):
    q = torch.tensor(rng.normal(size=(3, 4)), dtype=torch.float32, requires_grad=True)
    out, w = h.scaled_dot_product_attention(q, q, q)
    assert out.dtype == torch.float32 and w.dtype == torch.float32
    out.sum().backward()
    assert q.grad is not None and q.grad.shape == q.shape
