"""helpers.model: the Transformer modules agree with the core formulas and with PyTorch."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import helpers
from helpers.model import (DecoderOnlyLM, EncoderDecoderTransformer, FeedForward, LayerNorm,
                           ModelConfig, MultiHeadAttention, build_model, count_parameters,
                           parameter_formula)


def lm_config(**kw):
    values = dict(vocab_size=11, d_model=16, num_heads=4, num_layers=2, d_ff=24, max_len=12)
    values.update(kw)
    return ModelConfig(**values)


def ed_config(**kw):
    values = dict(kind="encoder-decoder", vocab_size=9, src_vocab_size=13, d_model=16, num_heads=2,
                  num_layers=2, num_encoder_layers=1, d_ff=32, max_len=10)
    values.update(kw)
    return ModelConfig(**values)


def twin(config):
    """Two float64 models with the same weights, one per attention implementation."""
    torch.manual_seed(0)
    a = build_model(ModelConfig.from_dict({**config.to_dict(), "attention": "math"})).double()
    b = build_model(ModelConfig.from_dict({**config.to_dict(), "attention": "fused"})).double()
    b.load_state_dict(a.state_dict())
    return a.eval(), b.eval()


# ---------------------------------------------------------------- parameter counts

def test_parameter_count_of_a_small_language_model_by_hand():
    # d=8, d_ff=16, V=10, one layer, learned positions (max_len 6), tied, pre-LN:
    # attention 4*64+4*8 = 288; FFN 2*8*16+16+8 = 280; two LayerNorms 32 -> layer 600;
    # embeddings 80, positions 48, final LayerNorm 16.
    model = DecoderOnlyLM(ModelConfig(vocab_size=10, d_model=8, num_heads=2, num_layers=1, d_ff=16, max_len=6))
    assert sum(p.numel() for p in model.parameters()) == 600 + 80 + 48 + 16


def test_parameter_count_of_the_paper_model_by_hand():
    # post-LN, sinusoidal (no position parameters), tied target embedding, d=512, d_ff=2048
    d, f, v = 512, 2048, 1000
    enc_layer = (4 * d * d + 4 * d) + (2 * d * f + f + d) + 4 * d
    dec_layer = enc_layer + (4 * d * d + 4 * d) + 2 * d
    config = ModelConfig(kind="encoder-decoder", vocab_size=v, src_vocab_size=v, d_model=d, num_heads=8,
                         num_layers=6, d_ff=f, norm="post", positions="sinusoidal", max_len=8)
    expected = 6 * enc_layer + 6 * dec_layer + 2 * v * d
    assert parameter_formula(config) == expected
    assert count_parameters(EncoderDecoderTransformer(config)) == expected


@pytest.mark.parametrize("kw", [dict(), dict(norm="post"), dict(tie_embeddings=False), dict(positions="sinusoidal")])
def test_parameter_formula_matches_numel(kw):
    for config in (lm_config(**kw), ed_config(**kw)):
        assert parameter_formula(config) == sum(p.numel() for p in build_model(config).parameters())


# ---------------------------------------------------------------- the layers against the core functions

def test_attention_module_equals_helpers_multi_head_attention():
    torch.manual_seed(1)
    mha = MultiHeadAttention(16, 4, attention="math").double()
    x_q, x_kv = torch.randn(3, 5, 16, dtype=torch.float64), torch.randn(3, 7, 16, dtype=torch.float64)
    mask = torch.rand(3, 5, 7) > 0.3
    mask[..., 0] = True
    out, w = mha(x_q, x_kv, mask=mask[:, None], need_weights=True)
    ref, ref_w = helpers.multi_head_attention(x_q, x_kv, mha.w_q, mha.w_k, mha.w_v, mha.w_o, 4, mask=mask,
                                              b_q=mha.b_q, b_k=mha.b_k, b_v=mha.b_v, b_o=mha.b_o)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(w, ref_w, rtol=1e-12, atol=1e-12)


def test_attention_module_fused_equals_math_with_and_without_masks():
    torch.manual_seed(2)
    math_mha = MultiHeadAttention(16, 4, attention="math").double()
    fused = MultiHeadAttention(16, 4, attention="fused").double()
    fused.load_state_dict(math_mha.state_dict())
    x = torch.randn(2, 6, 16, dtype=torch.float64, requires_grad=True)
    pad = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])[:, None, None, :]
    for kwargs in (dict(), dict(causal=True), dict(mask=pad), dict(mask=pad, causal=True)):
        a, _ = math_mha(x, **kwargs)
        b, _ = fused(x, **kwargs)
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        ga, = torch.autograd.grad(a.sum(), x)
        gb, = torch.autograd.grad(b.sum(), x)
        torch.testing.assert_close(ga, gb, rtol=1e-10, atol=1e-12)


def test_attention_module_against_torch_multihead_attention():
    # nn.MultiheadAttention uses column vectors (y = x W^T) and masks with True = *blocked*
    torch.manual_seed(3)
    mha = MultiHeadAttention(8, 2).double()
    ref = torch.nn.MultiheadAttention(8, 2, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([mha.w_q.T, mha.w_k.T, mha.w_v.T]))
        ref.in_proj_bias.copy_(torch.randn(24, dtype=torch.float64))
        mha.b_q.copy_(ref.in_proj_bias[:8]); mha.b_k.copy_(ref.in_proj_bias[8:16]); mha.b_v.copy_(ref.in_proj_bias[16:])
        ref.out_proj.weight.copy_(mha.w_o.T); ref.out_proj.bias.copy_(mha.b_o)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    causal = helpers.causal_mask(5, backend="torch")
    expected, _ = ref(x, x, x, attn_mask=~causal)
    torch.testing.assert_close(mha(x, causal=True)[0], expected, rtol=1e-10, atol=1e-12)


def test_layer_norm_and_feed_forward_modules_against_pytorch():
    torch.manual_seed(4)
    ln = LayerNorm(8).double()
    with torch.no_grad():
        ln.gamma.normal_(); ln.beta.normal_()
    x = torch.randn(3, 4, 8, dtype=torch.float64)
    torch.testing.assert_close(ln(x), F.layer_norm(x, (8,), ln.gamma, ln.beta, eps=1e-5), rtol=1e-12, atol=1e-12)
    ffn = FeedForward(8, 32).double()
    expected = F.linear(F.relu(F.linear(x, ffn.w1.T, ffn.b1)), ffn.w2.T, ffn.b2)
    torch.testing.assert_close(ffn(x), expected, rtol=1e-12, atol=1e-12)


def test_sinusoidal_positions_are_the_helpers_table():
    model = DecoderOnlyLM(lm_config(positions="sinusoidal"))
    table = helpers.sinusoidal_positional_encoding(12, 16, backend="numpy")
    np.testing.assert_allclose(model.positions.table.numpy(), table, rtol=1e-6, atol=1e-6)
    assert "positions.table" not in model.state_dict()  # fixed, not trained


# ---------------------------------------------------------------- whole models

@pytest.mark.parametrize("kw", [dict(), dict(norm="post", positions="sinusoidal"), dict(tie_embeddings=False)])
def test_fused_and_math_models_agree(kw):
    a, b = twin(lm_config(**kw))
    tokens = torch.randint(0, 11, (3, 12))
    torch.testing.assert_close(a(tokens), b(tokens), rtol=1e-10, atol=1e-10)
    a, b = twin(ed_config(**kw))
    src = torch.randint(1, 13, (3, 7))
    src[1, 4:] = 0  # padding
    tgt = torch.randint(0, 9, (3, 5))
    torch.testing.assert_close(a(src, tgt), b(src, tgt), rtol=1e-10, atol=1e-10)


def test_language_model_is_causal():
    model, _ = twin(lm_config())
    tokens = torch.randint(0, 11, (2, 10))
    changed = tokens.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 11
    a, b = model(tokens), model(changed)
    torch.testing.assert_close(a[:, :6], b[:, :6], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(a[:, 6:], b[:, 6:])


def test_attention_weights_are_causal_distributions():
    model, _ = twin(lm_config())
    logits, weights = model(torch.randint(0, 11, (2, 7)), need_weights=True)
    assert len(weights) == 2 and weights[0].shape == (2, 4, 7, 7)
    for w in weights:
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 7, dtype=torch.float64))
        assert torch.all(w.triu(diagonal=1) == 0)


def test_encoder_decoder_ignores_padding_and_is_causal_in_the_target():
    model, _ = twin(ed_config())
    src = torch.randint(1, 13, (2, 5))
    padded = torch.cat([src, torch.zeros(2, 3, dtype=torch.long)], dim=1)
    tgt = torch.randint(0, 9, (2, 6))
    torch.testing.assert_close(model(src, tgt), model(padded, tgt), rtol=1e-10, atol=1e-12)
    changed = tgt.clone()
    changed[:, 4:] = (changed[:, 4:] + 1) % 9
    torch.testing.assert_close(model(src, tgt)[:, :4], model(src, changed)[:, :4], rtol=1e-12, atol=1e-12)
    _, weights = model(padded, tgt, need_weights=True)
    cross = weights["decoder"][0]["cross"]
    assert cross.shape == (2, 2, 6, 8)
    assert torch.all(cross[..., 5:] == 0)  # no attention to padding
    torch.testing.assert_close(cross.sum(-1), torch.ones(2, 2, 6, dtype=torch.float64))


def test_post_ln_blocks_end_normalised_and_pre_ln_has_a_final_norm():
    post = DecoderOnlyLM(lm_config(norm="post"))
    pre = DecoderOnlyLM(lm_config(norm="pre"))
    assert post.final_norm is None and pre.final_norm is not None
    x = torch.randn(2, 5, 16)
    out, _ = post.layers[0](x, causal=True)
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(-1, unbiased=False), torch.ones(2, 5), atol=1e-3, rtol=0)


def test_tied_output_projection_is_the_embedding_table():
    model = DecoderOnlyLM(lm_config(norm="post"))
    tokens = torch.randint(0, 11, (1, 4))
    h = model.positions(model.embed(tokens))
    for layer in model.layers:
        h, _ = layer(h, causal=True)
    torch.testing.assert_close(model(tokens), h @ model.embed.weight.T)


def test_dropout_acts_in_training_only():
    model = DecoderOnlyLM(lm_config(dropout=0.3, attention_dropout=0.3, attention="math"))
    tokens = torch.randint(0, 11, (2, 6))
    model.eval()
    torch.testing.assert_close(model(tokens), model(tokens))
    model.train()
    assert not torch.allclose(model(tokens), model(tokens))


def test_bad_configs_and_inputs_are_refused():
    with pytest.raises(ValueError, match="num_heads=3 must divide d_model=16"):
        lm_config(num_heads=3)
    with pytest.raises(ValueError, match="norm must be one of"):
        lm_config(norm="middle")
    with pytest.raises(ValueError, match="attention must be one of"):
        lm_config(attention="flash")
    with pytest.raises(ValueError, match="dropout must lie in"):
        lm_config(dropout=1.5)
    model = DecoderOnlyLM(lm_config())
    with pytest.raises(ValueError, match="exceed the model's max_len=12"):
        model(torch.zeros(1, 13, dtype=torch.long))
    with pytest.raises(TypeError, match="tokens must be an integer tensor"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="unknown fields"):
        ModelConfig.from_dict({"vocab_size": 3, "colour": "red"})
