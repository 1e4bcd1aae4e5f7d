"""Bad input gets an error that names the argument and the shapes it got."""
import warnings

import numpy as np
import pytest
import torch

import helpers as h

X = np.ones((3, 4))


@pytest.mark.parametrize("call, error, words", [
    (lambda: h.scaled_dot_product_attention(X, np.ones((3, 5)), X), ValueError, ["q has shape (3, 4)", "k has shape (3, 5)"]),
    (lambda: h.scaled_dot_product_attention(X, X, np.ones((2, 4))), ValueError, ["k has shape (3, 4)", "v has shape (2, 4)"]),
    (lambda: h.scaled_dot_product_attention(X, X, X, mask=np.ones((2, 3), bool)), ValueError, ["mask has shape (2, 3)", "(3, 3)"]),
    (lambda: h.scaled_dot_product_attention(X, X, X, mask=np.ones((3, 3))), TypeError, ["mask must be boolean"]),
    (lambda: h.scaled_dot_product_attention(X, torch.ones(3, 4), X), TypeError, ["q is a NumPy array", "k is a torch tensor"]),
    (lambda: h.scaled_dot_product_attention(X.tolist(), X, X), TypeError, ["q must be a NumPy array or a torch tensor", "list"]),
    (lambda: h.scaled_dot_product_attention(np.ones(4), X, X), ValueError, ["q must have at least 2 axes", "(4,)"]),
    (lambda: h.multi_head_attention(X, X, np.ones((4, 6)), np.ones((4, 6)), np.ones((4, 6)), np.ones((6, 4)), 4),
     ValueError, ["w_q has 6 columns", "num_heads=4"]),
    (lambda: h.multi_head_attention(X, X, np.ones((5, 4)), np.ones((4, 4)), np.ones((4, 4)), np.ones((4, 4)), 2),
     ValueError, ["x_q has shape (3, 4)", "w_q has shape (5, 4)"]),
    (lambda: h.multi_head_attention(X, X, np.ones((4, 4)), np.ones((4, 4)), np.ones((4, 4)), np.ones((3, 4)), 2),
     ValueError, ["w_v has shape (4, 4)", "w_o has shape (3, 4)"]),
    (lambda: h.multi_head_attention(X, X, *[np.ones((4, 4))] * 4, 2, mask=np.ones((3, 4), bool)),
     ValueError, ["mask has shape (3, 4)"]),
    (lambda: h.multi_head_attention(X, X, *[np.ones((4, 4))] * 4, 0), ValueError, ["num_heads must be a positive integer"]),
    (lambda: h.layer_norm(X, np.ones(3), np.zeros(4)), ValueError, ["x has shape (3, 4)", "gamma must have shape (4,)", "(3,)"]),
    (lambda: h.layer_norm(X, torch.ones(4), torch.zeros(4)), TypeError, ["x is a NumPy array", "gamma is a torch tensor"]),
    (lambda: h.feed_forward(X, np.ones((5, 8)), np.ones(8), np.ones((8, 4)), np.ones(4)), ValueError, ["x has shape (3, 4)", "w1 has shape (5, 8)"]),
    (lambda: h.feed_forward(X, np.ones((4, 8)), np.ones(7), np.ones((8, 4)), np.ones(4)), ValueError, ["b1 must have shape (8,)", "(7,)"]),
    (lambda: h.feed_forward(X, np.ones((4, 8)), np.ones(8), np.ones((6, 4)), np.ones(4)), ValueError, ["w1 has shape (4, 8)", "w2 has shape (6, 4)"]),
    (lambda: h.cross_entropy(X, np.zeros(4, int)), ValueError, ["logits has shape (3, 4)", "targets must have shape (3,)", "(4,)"]),
    (lambda: h.cross_entropy(X, np.array([0, 1, 4])), ValueError, ["targets must lie in 0..3"]),
    (lambda: h.cross_entropy(X, np.zeros(3)), TypeError, ["targets must be integers"]),
    (lambda: h.noam_lr(0, 512, 4000), ValueError, ["step must be >= 1", "got 0"]),
    (lambda: h.noam_lr(np.arange(3), 512, 4000), ValueError, ["step must be >= 1"]),
    (lambda: h.noam_lr(1, 512, 0), ValueError, ["warmup_steps must be a positive integer"]),
    (lambda: h.sinusoidal_positional_encoding(4, 5), ValueError, ["d_model must be even", "5"]),
    (lambda: h.sinusoidal_positional_encoding(4, 8, backend="jax"), ValueError, ["backend must be 'numpy' or 'torch'"]),
    (lambda: h.causal_mask(0), ValueError, ["n must be a positive integer"]),
    (lambda: h.softmax(np.arange(3)), TypeError, ["x must hold real floating-point numbers"]),
])
def test_bad_input_is_named(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_fully_masked_row_gives_zeros_and_a_warning(lib):
    x = np.arange(12.0).reshape(3, 4)
    mask = np.array([[True, False, False], [False, False, False], [True, True, True]])
    if lib == "torch":
        x, mask = torch.tensor(x), torch.tensor(mask)
    with pytest.warns(h.FullyMaskedRowWarning, match=r"row indices \[1\]"):
        out, w = h.scaled_dot_product_attention(x, x, x, mask=mask)
    out, w = np.asarray(out), np.asarray(w)
    assert np.all(out[1] == 0) and np.all(w[1] == 0)
    assert not np.isnan(out).any()
    np.testing.assert_allclose(w[[0, 2]].sum(-1), 1.0)
    np.testing.assert_allclose(out[0], x[0] if lib == "numpy" else x[0].numpy())


def test_partly_masked_rows_do_not_warn():
    x = np.ones((3, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h.scaled_dot_product_attention(x, x, x, mask=h.causal_mask(3))
