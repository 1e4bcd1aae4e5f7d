"""Bad input gets an error that names the argument and the shapes it got."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

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


# ----------------------------------------------------------------------------- found by a reviewer
# Each case below once gave a silent wrong answer, a raw library error naming no argument,
# or a traceback. Now each raises an error that names the argument, or computes what
# torch's own function computes.

T = torch.ones(3, 4)


@pytest.mark.parametrize("call, error, words", [
    (lambda: h.padding_mask(np.array([2.5, 1.0]), 4), TypeError, ["lengths must hold integers", "float64"]),
    (lambda: h.padding_mask(np.array([2, 1]), 4.0), ValueError, ["n must be a positive integer", "4.0"]),
    (lambda: h.padding_mask(np.array([2, 5]), 4), ValueError, ["every length must lie in 0..n=4", "5"]),
    (lambda: h.scaled_dot_product_attention(np.ones((2, 0)), np.ones((3, 0)), np.ones((3, 2))), ValueError,
     ["q has shape (2, 0)", "d_k = 0"]),
    (lambda: h.scaled_dot_product_attention(np.ones((2, 3)), np.ones((0, 3)), np.ones((0, 2))), ValueError,
     ["k has shape (0, 3)", "no keys"]),
    (lambda: h.causal_mask(True), ValueError, ["n must be a positive integer", "bool"]),
    (lambda: h.causal_mask(3.0), ValueError, ["n must be a positive integer", "float"]),
    (lambda: h.multi_head_attention(X, X, *[np.ones((4, 4))] * 4, 2.0), ValueError, ["num_heads must be a positive integer", "2.0"]),
    (lambda: h.split_heads(X, 0), ValueError, ["num_heads must be a positive integer", "got 0"]),
    (lambda: h.split_heads(np.ones(4), 2), ValueError, ["x must have at least 2 axes", "(4,)"]),
    (lambda: h.merge_heads(X), ValueError, ["x must have at least 3 axes", "(3, 4)"]),
    (lambda: h.softmax(X, axis=2), ValueError, ["axis must be an integer from -2 to 1", "got 2"]),
    (lambda: h.log_softmax(np.ones(3), axis=3), ValueError, ["log_softmax: axis must be", "got 3"]),
    (lambda: h.softmax(np.array(1.0)), ValueError, ["x is 0-dimensional"]),
    (lambda: h.log_softmax(np.arange(3)), TypeError, ["x must hold real floating-point numbers"]),
    (lambda: h.layer_norm(X, np.ones(4), np.zeros(4), eps="1e-5"), ValueError, ["eps must be a number >= 0", "'1e-5'"]),
    (lambda: h.layer_norm(X, np.ones(4), np.zeros(4), eps=math.nan), ValueError, ["eps must be a number >= 0", "nan"]),
    (lambda: h.cross_entropy(X, np.zeros(3, int), label_smoothing="a"), ValueError, ["label_smoothing must be", "'a'"]),
    (lambda: h.cross_entropy(X, np.zeros(3, int), ignore_index=1.5), ValueError, ["ignore_index must be", "1.5"]),
    (lambda: h.cross_entropy(np.ones((0, 4)), np.zeros(0, int)), ValueError, ["targets has shape (0,)", "no positions"]),
    (lambda: h.cross_entropy(np.ones((2, 0)), np.zeros(2, int)), ValueError, ["logits has shape (2, 0)", "V = 0"]),
    (lambda: h.sinusoidal_positional_encoding(4, 8, dtype=torch.float32), TypeError,
     ["dtype must be a NumPy floating-point dtype", "backend='numpy'", "torch.float32"]),
    (lambda: h.sinusoidal_positional_encoding(4, 8, backend="torch", dtype=np.float32), TypeError,
     ["dtype must be a torch floating-point dtype", "backend='torch'"]),
    (lambda: h.rotary_frequencies(8, dtype=torch.float64), TypeError, ["dtype must be a NumPy floating-point dtype"]),
    (lambda: h.frequencies(8, dtype=np.int64), TypeError, ["dtype must be a NumPy floating-point dtype", "int64"]),
    (lambda: h.causal_mask(3, backend="torch", device="nowhere"), ValueError, ["device 'nowhere'"]),
    (lambda: h.causal_mask(3, device="cuda"), ValueError, ["device must be None or 'cpu' for backend='numpy'"]),
    (lambda: h.positional_rotation("a", 4), ValueError, ["k must be a finite number", "'a'"]),
    (lambda: h.scaled_dot_product_attention(T, T.double(), T), TypeError,
     ["must share one dtype", "q is float32", "k is float64"]),
    (lambda: h.layer_norm(T, torch.ones(4, dtype=torch.float64), None), TypeError, ["x is float32", "gamma is float64"]),
    (lambda: h.feed_forward(T, torch.ones(4, 2, dtype=torch.float64), None, torch.ones(2, 4), None), TypeError,
     ["x is float32", "w1 is float64"]),
    (lambda: h.scaled_dot_product_attention(T, T, T, mask=torch.ones(3, 3, dtype=torch.bool, device="meta")),
     ValueError, ["different devices", "q on cpu", "mask on meta"]),
    (lambda: h.scaled_dot_product_attention(None, X, X), TypeError, ["q must be a NumPy array or a torch tensor, got None"]),
    (lambda: h.softmax(None), TypeError, ["x must be a NumPy array or a torch tensor, got None"]),
    (lambda: h.relu(np.array([True, False])), TypeError, ["x must hold real numbers", "bool"]),
    (lambda: h.multi_head_attention(X, X, *[np.ones((4, 4))] * 4, 2, rotary_theta="big"), ValueError,
     ["rotary_theta must be None or a finite number > 0", "'big'"]),
    (lambda: h.multi_head_attention(X, X, *[np.ones((4, 4))] * 4, 2, causal="yes"), TypeError,
     ["causal must be True or False", "'yes'"]),
    (lambda: h.multi_head_attention(X, np.ones((0, 4)), *[np.ones((4, 4))] * 4, 2), ValueError,
     ["x_kv has shape (0, 4)", "no keys"]),
    (lambda: h.multi_head_attention(X, X, np.ones((4, 0)), np.ones((4, 0)), np.ones((4, 4)), np.ones((4, 4)), 2),
     ValueError, ["w_q has shape (4, 0)", "d_k = 0"]),
    (lambda: h.gelu(np.ones(3), approximate=None), ValueError, ["approximate must be 'none'", "None"]),
    (lambda: h.apply_rotary(np.ones((3, 0)), range(3)), ValueError, ["x has shape (3, 0)", "at least 2"]),
])
def test_reviewer_cases_are_named(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"


def test_relu_keeps_nan_as_torch_does():
    x = np.array([np.nan, -1.0, 2.0])
    np.testing.assert_array_equal(h.relu(x), torch.relu(torch.tensor(x)).numpy())   # NaN stays NaN
    assert np.isnan(h.relu(x)[0])


@pytest.mark.parametrize("lib, dtype", [("numpy", torch.float16), ("torch", torch.float16),
                                        ("torch", torch.bfloat16)])
def test_norms_of_large_half_precision_rows_agree_with_torch(lib, dtype):
    x = torch.tensor([[1000.0, -1000.0, 500.0, -500.0], [3e4, 1.0, -2.0, 3.0]], dtype=dtype)
    gamma, beta = torch.full((4,), 1.5, dtype=dtype), torch.full((4,), 0.25, dtype=dtype)
    expected_ln = F.layer_norm(x, (4,), gamma, beta)          # torch computes the statistics in float32
    expected_rms = F.rms_norm(x, (4,), gamma, 1e-6)
    args = (x, gamma, beta) if lib == "torch" else (x.numpy(), gamma.numpy(), beta.numpy())
    ln, rms = h.layer_norm(*args), h.rms_norm(args[0], args[1])
    assert str(ln.dtype).endswith(str(dtype).split(".")[1]) and str(rms.dtype).endswith(str(dtype).split(".")[1])
    # the squared deviations (10^6) overflow float16: a formula computed in float16 returns zeros
    assert float(torch.as_tensor(np.asarray(ln.float() if lib == "torch" else ln)).abs().max()) > 1
    tol = dict(rtol=1e-3, atol=2e-3) if dtype == torch.float16 else dict(rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(torch.as_tensor(np.asarray(ln, dtype=np.float32)) if lib == "numpy" else ln.float(),
                               expected_ln.float(), **tol)
    torch.testing.assert_close(torch.as_tensor(np.asarray(rms, dtype=np.float32)) if lib == "numpy" else rms.float(),
                               expected_rms.float(), **tol)


def test_norms_are_right_where_the_plain_formula_overflows_float32():
    x = torch.tensor([[1e20, -1e20, 5e19, -5e19]])                # x^2 = 1e40 > float32's 3.4e38
    expected = torch.tensor([[1e20, -1e20, 5e19, -5e19]], dtype=torch.float64) / 1e20
    assert F.layer_norm(x, (4,)).abs().max() == 0                  # torch's own kernel gives zeros here
    # with eps = 0 both norms are scale-invariant: the row divided by 1e20 has the same answer
    torch.testing.assert_close(h.layer_norm(x, None, None, eps=0.0).double(), F.layer_norm(expected, (4,), eps=0.0),
                               rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(h.rms_norm(x, None, eps=0.0).double(), F.rms_norm(expected, (4,), eps=0.0),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_softmax_of_a_slice_with_nan_or_plus_inf_is_all_nan_as_in_torch(lib):
    x = np.array([[np.nan, 0.0, 1.0], [np.inf, 0.0, 1.0], [-np.inf, 0.0, 1.0], [-np.inf, -np.inf, -np.inf]])
    arg = torch.tensor(x) if lib == "torch" else x
    with np.errstate(invalid="ignore"):
        out = np.asarray(h.softmax(arg))
    assert np.isnan(out[0]).all() and np.isnan(out[1]).all()        # no distribution: never finite numbers
    np.testing.assert_allclose(out[2], torch.softmax(torch.tensor(x[2]), -1).numpy())
    np.testing.assert_array_equal(out[3], 0.0)                      # all masked: zeros (documented)


def test_numpy_integers_are_counts_and_int32_targets_work():
    n = np.int64(4)
    np.testing.assert_array_equal(h.causal_mask(n), h.causal_mask(4))
    np.testing.assert_array_equal(h.sinusoidal_positional_encoding(n, np.int32(8)), h.sinusoidal_positional_encoding(4, 8))
    w = [np.random.default_rng(i).normal(size=(4, 4)) for i in range(4)]
    np.testing.assert_array_equal(h.multi_head_attention(X, X, *w, np.int64(2))[0], h.multi_head_attention(X, X, *w, 2)[0])
    logits = torch.randn(3, 5)
    for targets in (torch.tensor([0, 4, 2], dtype=torch.int32), np.array([0, 4, 2], dtype=np.uint8)):
        got = h.cross_entropy(logits if isinstance(targets, torch.Tensor) else logits.numpy(), targets)
        torch.testing.assert_close(torch.as_tensor(got), F.cross_entropy(logits, torch.tensor([0, 4, 2])))


def test_a_one_dimensional_mask_broadcasts_like_its_two_dimensional_form():
    rng = np.random.default_rng(0)
    q, k, v = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 5, 2))
    keys = np.array([True, False, True, True, False])
    out_1d, w_1d = h.scaled_dot_product_attention(q, k, v, mask=keys)
    out_2d, w_2d = h.scaled_dot_product_attention(q, k, v, mask=keys[None, :])
    np.testing.assert_array_equal(out_1d, out_2d)
    np.testing.assert_array_equal(w_1d, w_2d)
    torch.testing.assert_close(torch.tensor(out_1d), F.scaled_dot_product_attention(
        *map(torch.tensor, (q, k, v)), attn_mask=torch.tensor(keys)))
    x = rng.normal(size=(5, 4))
    ws = [rng.normal(size=(4, 4)) for _ in range(4)]
    np.testing.assert_allclose(h.multi_head_attention(x, x, *ws, 2, mask=keys)[0],
                               h.multi_head_attention(x, x, *ws, 2, mask=np.broadcast_to(keys, (5, 5)))[0])


def test_mixed_float_dtypes_are_accepted_inside_autocast():
    q = torch.randn(3, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = h.scaled_dot_product_attention(q, q.double(), q)   # torch itself casts here, and so do we
    assert out.dtype == torch.float64


def test_meta_tensors_give_shapes_without_reading_values():
    meta = torch.ones(2, 3, 4, device="meta")
    mask = h.padding_mask(torch.tensor([1, 3], device="meta"), 3)
    assert mask.device.type == "meta" and tuple(mask.shape) == (2, 1, 3)
    out, weights = h.scaled_dot_product_attention(meta, meta, meta, mask=mask)
    assert out.device.type == "meta" and tuple(out.shape) == (2, 3, 4) and tuple(weights.shape) == (2, 3, 3)
    loss = h.cross_entropy(meta, torch.zeros(2, 3, dtype=torch.long, device="meta"))
    assert loss.device.type == "meta" and tuple(loss.shape) == ()
    assert h.layer_norm(meta, None, None).device.type == "meta"
    assert h.rms_norm(meta, None).device.type == "meta"


def test_empty_sizes_give_empty_results_as_in_torch():
    for x in (np.ones((0, 3)), np.ones((2, 0)), torch.ones(0, 3), torch.ones(2, 0)):
        for fn in (h.softmax, h.log_softmax):
            assert tuple(fn(x).shape) == tuple(x.shape)
        assert tuple(h.layer_norm(x, None, None).shape) == tuple(x.shape)
        assert tuple(h.rms_norm(x, None).shape) == tuple(x.shape)
    out, w = h.scaled_dot_product_attention(np.ones((0, 2)), np.ones((3, 2)), np.ones((3, 5)))
    assert out.shape == (0, 5) and w.shape == (0, 3)


def test_attention_with_d_k_zero_and_a_scale_averages_the_values():
    out, w = h.scaled_dot_product_attention(np.ones((2, 0)), np.ones((3, 0)), np.arange(6.0).reshape(3, 2), scale=1.0)
    np.testing.assert_allclose(w, 1 / 3)
    np.testing.assert_allclose(out, [[2.0, 3.0], [2.0, 3.0]])


@pytest.mark.parametrize("call, error, words", [
    (lambda: __import__("helpers.tokenizers").tokenizers.Vocabulary("abc", specials=None), TypeError,
     ["specials must be a list or tuple of tokens", "None"]),
    (lambda: __import__("helpers.tokenizers").tokenizers.Vocabulary("abc", specials="<pad>"), TypeError,
     ["specials must be a list or tuple"]),
    (lambda: __import__("helpers.tokenizers").tokenizers.Vocabulary("abc").decode([0], join=0), TypeError,
     ["join must be a str"]),
    (lambda: h.ByteLevelBPE().save(None, "m.bpe"), TypeError, ["vocab_path must be a file path", "NoneType"]),
    (lambda: h.ByteLevelBPE.load("", "m.bpe"), ValueError, ["vocab_path must name a file"]),
    (lambda: h.ByteLevelBPE().decode([1], errors=np.array([1, 2])), ValueError, ["errors must be 'replace' or 'strict'"]),
    (lambda: h.ByteLevelBPE().train("abc", 300, algorithm=["x"]), ValueError, ["algorithm must be"]),
])
def test_tokenizer_bad_input_is_named(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"


def test_strict_decoding_names_the_call_and_keeps_its_type():
    with pytest.raises(UnicodeDecodeError, match=r"ByteLevelBPE.decode\(ids, errors='strict'\)"):
        h.ByteLevelBPE().decode([0xC3], errors="strict")
