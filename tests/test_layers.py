"""helpers.layers: encoder and decoder layers built from helpers functions equal PyTorch's.

Every comparison is in float64 with dropout 0. PyTorch's modules are run in training mode
(dropout 0 makes that deterministic) so that they take their plain "math" path: in eval
mode under no_grad nn.TransformerEncoder may take a fast path that returns zeros at padded
positions.
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import helpers
from helpers import layers as L

TOL = dict(rtol=1e-12, atol=1e-12)
D, H, FF = 12, 4, 20


def randn(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def randomize(module, seed):
    """Replace every parameter (LayerNorm's included) by random numbers, so no
    parameter is a trivial 0 or 1 that could hide a mistake."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.4)
    return module


def masks(src_lengths, tgt_lengths, n_src, n_tgt):
    """Our masks (True = may attend) and PyTorch's key-padding masks (True = ignore)."""
    src_pad = helpers.padding_mask(torch.tensor(src_lengths), n_src)  # (B, 1, n_src)
    tgt_pad = helpers.padding_mask(torch.tensor(tgt_lengths), n_tgt)
    causal = helpers.causal_mask(n_tgt, backend="torch")
    return src_pad, tgt_pad, causal


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_equals_nn_TransformerEncoderLayer(norm_first):
    layer = randomize(torch.nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, batch_first=True,
                                                       norm_first=norm_first, dtype=torch.float64), 1)
    x = randn(3, 5, D, seed=2)
    src_pad, _, _ = masks([5, 3, 1], [1, 1, 1], 5, 1)
    params = L.params_from_torch_encoder_layer(layer)
    norm = "pre" if norm_first else "post"
    ours = L.encoder_layer(x, params, mask=src_pad, norm=norm, num_heads=H)
    theirs = layer(x, src_key_padding_mask=~src_pad[:, 0, :])
    torch.testing.assert_close(ours, theirs, **TOL)
    # without a mask as well
    torch.testing.assert_close(L.encoder_layer(x, params, norm=norm, num_heads=H), layer(x), **TOL)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_equals_nn_TransformerDecoderLayer(norm_first):
    layer = randomize(torch.nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, batch_first=True,
                                                       norm_first=norm_first, dtype=torch.float64), 3)
    y, memory = randn(2, 4, D, seed=4), randn(2, 6, D, seed=5)
    src_pad, tgt_pad, causal = masks([6, 2], [4, 3], 6, 4)
    params = L.params_from_torch_decoder_layer(layer)
    ours = L.decoder_layer(y, memory, params, self_mask=causal & tgt_pad, memory_mask=src_pad,
                           norm="pre" if norm_first else "post", num_heads=H)
    theirs = layer(y, memory, tgt_mask=~causal, tgt_key_padding_mask=~tgt_pad[:, 0, :],
                   memory_key_padding_mask=~src_pad[:, 0, :])
    torch.testing.assert_close(ours, theirs, **TOL)


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")  # norm_first=True: no fast path
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_decoder_equals_nn_Transformer(norm_first):
    model = randomize(torch.nn.Transformer(D, H, 2, 3, FF, dropout=0.0, batch_first=True,
                                           norm_first=norm_first, dtype=torch.float64), 6)
    src, tgt = randn(3, 6, D, seed=7), randn(3, 5, D, seed=8)
    src_pad, tgt_pad, causal = masks([6, 4, 2], [5, 5, 3], 6, 5)
    params = L.params_from_torch_transformer(model)
    assert len(params["encoder"]) == 2 and len(params["decoder"]) == 3
    ours = L.encoder_decoder(src, tgt, params, src_mask=src_pad, tgt_mask=causal & tgt_pad,
                             memory_mask=src_pad, norm="pre" if norm_first else "post", num_heads=H)
    theirs = model(src, tgt, tgt_mask=~causal, src_key_padding_mask=~src_pad[:, 0, :],
                   tgt_key_padding_mask=~tgt_pad[:, 0, :], memory_key_padding_mask=~src_pad[:, 0, :])
    torch.testing.assert_close(ours, theirs, **TOL)


def test_gradients_reach_the_torch_module_and_equal_its_own():
    layer = randomize(torch.nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, batch_first=True,
                                                       dtype=torch.float64), 9)
    x = randn(2, 4, D, seed=10)
    L.encoder_layer(x, L.params_from_torch_encoder_layer(layer), num_heads=H).square().sum().backward()
    ours = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    layer(x).square().sum().backward()
    for a, b in zip(ours, layer.parameters()):
        torch.testing.assert_close(a, b.grad, **TOL)


@pytest.mark.parametrize("norm", ["post", "pre", "none"])
def test_numpy_and_torch_backends_agree(norm, rng):
    params = [L.init_layer_params(D, FF, "encoder", rng=rng) for _ in range(2)]
    dec = [L.init_layer_params(D, FF, "decoder", rng=rng) for _ in range(2)]
    full = {"encoder": params, "encoder_norm": None, "decoder": dec, "decoder_norm": None}
    src, tgt = rng.normal(size=(2, 5, D)), rng.normal(size=(2, 4, D))
    src_pad = helpers.padding_mask(np.array([5, 3]), 5)
    tgt_mask = helpers.causal_mask(4) & helpers.padding_mask(np.array([4, 2]), 4)
    out_np = L.encoder_decoder(src, tgt, full, src_pad, tgt_mask, src_pad, norm=norm, num_heads=H)
    as_torch = L.map_params(torch.tensor, full)
    src_t, tgt_t, src_pad_t, tgt_mask_t = (torch.tensor(a) for a in (src, tgt, src_pad, tgt_mask))
    out_t = L.encoder_decoder(src_t, tgt_t, as_torch, src_pad_t, tgt_mask_t, src_pad_t, norm=norm, num_heads=H)
    assert isinstance(out_np, np.ndarray) and out_t.dtype == torch.float64
    np.testing.assert_allclose(out_t.numpy(), out_np, **TOL)


def test_norm_none_is_seed_001_update(rng):
    """The *Mathematical Formulation* note: Y = MultiHead(X), X^(l+1) = X + Y + FFN(X + Y), written out by hand here."""
    p = L.init_layer_params(D, FF, rng=rng)
    x = rng.normal(size=(5, D))
    a = p["self_attn"]
    q, k, v = (x @ a["w_" + c] + a["b_" + c] for c in "qkv")
    heads = []
    for i in range(H):
        cols = slice(i * D // H, (i + 1) * D // H)
        s = q[:, cols] @ k[:, cols].T / math.sqrt(D // H)
        w = np.exp(s - s.max(1, keepdims=True))
        heads.append(w / w.sum(1, keepdims=True) @ v[:, cols])
    y = np.concatenate(heads, axis=1) @ a["w_o"] + a["b_o"]
    f = p["ffn"]
    z = x + y
    expected = z + np.maximum(z @ f["w1"] + f["b1"], 0) @ f["w2"] + f["b2"]
    np.testing.assert_allclose(L.encoder_layer(x, p, norm="none", num_heads=H), expected, **TOL)


def test_post_ln_output_rows_are_normalised(rng):
    p = L.init_layer_params(D, FF, rng=rng)  # gamma = 1, beta = 0
    out = L.encoder_layer(rng.normal(size=(4, 7, D)) * 5, p, num_heads=H)
    np.testing.assert_allclose(out.mean(-1), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(-1), 1, rtol=1e-3)


@settings(max_examples=15, deadline=None)
@given(d_heads=st.integers(1, 6), h=st.integers(1, 4), d_ff=st.integers(1, 40))
def test_parameter_formulas_equal_counting_torch_layers(d_heads, h, d_ff):
    d = d_heads * h
    enc = torch.nn.TransformerEncoderLayer(d, h, d_ff, batch_first=True)
    dec = torch.nn.TransformerDecoderLayer(d, h, d_ff, batch_first=True)
    assert L.encoder_layer_parameter_count(d, d_ff) == sum(p.numel() for p in enc.parameters())
    assert L.decoder_layer_parameter_count(d, d_ff) == sum(p.numel() for p in dec.parameters())
    assert L.count_parameters(L.params_from_torch_encoder_layer(enc)) == L.encoder_layer_parameter_count(d, d_ff)
    # the closed forms written out
    assert L.encoder_layer_parameter_count(d, d_ff) == 4 * d * d + 2 * d * d_ff + 9 * d + d_ff
    assert L.decoder_layer_parameter_count(d, d_ff) == 8 * d * d + 2 * d * d_ff + 15 * d + d_ff


def test_transformer_counts_equal_counting_nn_Transformer():
    model = torch.nn.Transformer(16, 4, 3, 3, 48, batch_first=True)
    counts = L.transformer_parameter_counts(16, 48, 3, vocab_size=0)
    assert sum(counts.values()) == sum(p.numel() for p in model.parameters())
    assert L.count_parameters(L.params_from_torch_transformer(model)) == sum(counts.values())
    untied = L.transformer_parameter_counts(16, 48, 3, vocab_size=100, tied_embeddings=False, output_bias=True)
    assert untied["embeddings"] == 2 * 100 * 16 and untied["output projection"] == 100 * 16 + 100


def test_init_layer_params_same_numbers_on_both_backends():
    a = L.init_layer_params(8, 16, "decoder", rng=np.random.default_rng(0))
    b = L.init_layer_params(8, 16, "decoder", rng=np.random.default_rng(0), backend="torch")
    assert set(a) == set(L.DECODER_LAYER_PARTS)
    np.testing.assert_array_equal(b["cross_attn"]["w_k"].numpy(), a["cross_attn"]["w_k"])
    bound = math.sqrt(6 / (8 + 16))
    assert np.abs(a["ffn"]["w1"]).max() <= bound and np.abs(a["ffn"]["w1"]).max() > 0.8 * bound
    np.testing.assert_array_equal(a["norm3"]["gamma"], np.ones(8))


@pytest.mark.parametrize("call, error, words", [
    (lambda p, x: L.encoder_layer(x, p, norm="middle", num_heads=H), ValueError, ["norm must be one of", "'middle'"]),
    (lambda p, x: L.encoder_layer(x, {k: v for k, v in p.items() if k != "ffn"}, num_heads=H), ValueError,
     ["params['ffn']"]),
    (lambda p, x: L.encoder_layer(x, {**p, "ffn": {"w1": p["ffn"]["w1"]}}, num_heads=H), ValueError,
     ["params['ffn'] lacks", "'b1'"]),
    (lambda p, x: L.decoder_layer(x, x, p, num_heads=H), ValueError, ["params needs a dict params['cross_attn']"]),
    (lambda p, x: L.decoder_layer(x, np.ones((2, 3, D + 1)), L.init_layer_params(D, FF, "decoder", rng=np.random.default_rng(1)),
                                  num_heads=H), ValueError, ["y has shape (2, 5, 12)", "memory has shape (2, 3, 13)"]),
    (lambda p, x: L.encoder_layer(np.ones((2, 5, D + 1)), p, num_heads=H), ValueError, ["x_q has shape (2, 5, 13)"]),
    (lambda p, x: L.encoder_layer(x, p, mask=np.ones((5, 4), bool), num_heads=H), ValueError, ["mask has shape (5, 4)"]),
    (lambda p, x: L.init_layer_params(0, 4, rng=np.random.default_rng(0)), ValueError, ["d_model must be a positive integer"]),
    (lambda p, x: L.transformer_parameter_counts(512, 2048, 6, -1), ValueError, ["vocab_size"]),
])
def test_bad_input_is_named(call, error, words, rng):
    params = L.init_layer_params(D, FF, rng=rng)
    with pytest.raises(error) as info:
        call(params, rng.normal(size=(2, 5, D)))
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"


def test_torch_layers_helpers_cannot_express_are_refused():
    gelu = torch.nn.TransformerEncoderLayer(D, H, FF, activation="gelu", batch_first=True)
    with pytest.raises(ValueError, match="activation must be ReLU"):
        L.params_from_torch_encoder_layer(gelu)
    no_bias = torch.nn.TransformerDecoderLayer(D, H, FF, bias=False, batch_first=True)
    with pytest.raises(ValueError, match="bias=False"):
        L.params_from_torch_decoder_layer(no_bias)
