"""helpers.model: the modules hold chapter 7's parameters, count as the formulas say, and behave
as a language model and a translation model must (causal, padding ignored, dropout in training)."""
import numpy as np
import pytest
import torch

import helpers
from helpers import layers as L
from helpers.model import (DecoderOnlyLM, EncoderDecoderTransformer, LayerParameters, ModelConfig,
                           build_model, count_parameters, layer_params, parameter_formula)


def lm_config(**kw):
    values = dict(vocab_size=11, d_model=16, num_heads=4, num_layers=2, d_ff=24, max_len=12)
    values.update(kw)
    return ModelConfig(**values)


def ed_config(**kw):
    values = dict(kind="encoder-decoder", vocab_size=9, src_vocab_size=13, d_model=16, num_heads=2,
                  num_layers=2, num_encoder_layers=1, d_ff=32, max_len=10)
    values.update(kw)
    return ModelConfig(**values)


def model_of(config, seed=0):
    torch.manual_seed(seed)
    return build_model(config).double().eval()


# ---------------------------------------------------------------- parameters

def test_parameter_count_of_a_small_language_model_by_hand():
    # d=8, d_ff=16, V=10, one layer, learned positions (max_len 6), tied, pre-LN:
    # attention 4*64+4*8 = 288; FFN 2*8*16+16+8 = 280; two LayerNorms 32 -> layer 600;
    # embeddings 80, positions 48, final LayerNorm 16.
    model = DecoderOnlyLM(ModelConfig(vocab_size=10, d_model=8, num_heads=2, num_layers=1, d_ff=16, max_len=6))
    assert sum(p.numel() for p in model.parameters()) == 600 + 80 + 48 + 16


def test_parameter_count_of_a_modern_language_model_by_hand():
    # d=8, h=4 query heads of d_k=2, 2 key/value heads, no biases, RMSNorm, SwiGLU d_ff=12,
    # QK-norm, rotary positions, tied, pre-norm, one layer, V=10:
    # W_q, W_o 64 each; W_k, W_v 8*4 = 32 each; q/k gains 2+2 -> attention 196;
    # SwiGLU 3*8*12 = 288; two RMSNorms 16; final RMSNorm 8; embeddings 80; no position table.
    config = ModelConfig(vocab_size=10, d_model=8, num_heads=4, num_kv_heads=2, num_layers=1, d_ff=12,
                         max_len=6, bias=False, normalization="rms_norm", ffn="swiglu", qk_norm=True,
                         positions="rotary")
    expected = 196 + 288 + 16 + 8 + 80
    assert count_parameters(DecoderOnlyLM(config)) == expected == parameter_formula(config)


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


CONFIG_VARIANTS = [dict(), dict(norm="post"), dict(norm="none"), dict(tie_embeddings=False),
                   dict(positions="sinusoidal"), dict(positions="rotary"), dict(normalization="rms_norm"),
                   dict(ffn="gelu"), dict(ffn="swiglu", d_ff=None), dict(bias=False), dict(qk_norm=True),
                   dict(num_kv_heads=1), dict(scale_embeddings=True)]


@pytest.mark.parametrize("kw", CONFIG_VARIANTS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
def test_parameter_formula_matches_numel(kw):
    for config in (lm_config(**kw), ed_config(**kw)):
        assert parameter_formula(config) == sum(p.numel() for p in build_model(config).parameters())


def test_swiglu_default_width_keeps_the_relu_parameter_count():
    # d_ff = round(8 d / 3): 3 d d_ff ~ 2 d (4 d) without biases (chapter 12)
    d = 96
    config = lm_config(d_model=d, num_heads=4, ffn="swiglu", d_ff=None)
    assert config.d_ff == 256
    assert L.ffn_parameter_count(d, config.d_ff, "swiglu") == L.ffn_parameter_count(d, 4 * d, bias=False)


def test_state_dict_uses_chapter_7_names_and_params_are_the_same_tensors():
    model = build_model(ed_config())
    names = set(model.state_dict())
    for name in ("encoder.0.self_attn.w_q", "encoder.0.norm1.gamma", "encoder.0.ffn.w1",
                 "decoder.1.cross_attn.w_k", "decoder.1.norm3.beta", "src_embed.weight", "tgt_embed.weight"):
        assert name in names
    p = model.params()
    assert p["decoder"][1]["cross_attn"]["w_k"] is model.decoder[1]["cross_attn"]["w_k"]
    assert set(p["encoder"][0]) == set(L.ENCODER_LAYER_PARTS) and set(p["decoder"][0]) == set(L.DECODER_LAYER_PARTS)
    assert layer_params(model.decoder)[0]["ffn"]["w2"] is model.decoder[0]["ffn"]["w2"]
    assert count_parameters(p) + count_parameters({"e": model.src_embed.weight, "t": model.tgt_embed.weight,
                                                   "pos": model.positions.table}) == count_parameters(model)
    with pytest.raises(TypeError, match="layer_params: expected LayerParameters"):
        layer_params(model.src_embed)


def test_residual_projections_start_smaller_with_depth():
    torch.manual_seed(0)
    layer = LayerParameters(lm_config(d_model=64, num_heads=4, d_ff=256), "encoder", num_stacked=8)
    std = {name: float(p.detach().std()) for part in layer.values() for name, p in part.items()}
    assert abs(std["w_q"] - 64 ** -0.5) < 0.01
    assert abs(std["w_o"] - 64 ** -0.5 / 4) < 0.005          # 1/sqrt(2 L) = 1/4 for L = 8
    assert abs(std["w2"] - 256 ** -0.5 / 4) < 0.003


# ---------------------------------------------------------------- behaviour

def test_language_model_is_causal():
    model = model_of(lm_config())
    tokens = torch.randint(0, 11, (2, 10))
    changed = tokens.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 11
    a, b = model(tokens), model(changed)
    torch.testing.assert_close(a[:, :6], b[:, :6], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(a[:, 6:], b[:, 6:])


@pytest.mark.parametrize("kernels", ["math", "fused"])
def test_attention_weights_are_causal_distributions(kernels):
    model = model_of(lm_config(kernels=kernels))
    tokens = torch.randint(0, 11, (2, 7))
    logits, weights = model(tokens, need_weights=True)    # the weights come from the formulas
    torch.testing.assert_close(logits, model(tokens), rtol=1e-10, atol=1e-12)
    assert len(weights) == 2 and weights[0].shape == (2, 4, 7, 7)
    for w in weights:
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 7, dtype=torch.float64))
        assert torch.all(w.triu(diagonal=1) == 0)


def test_encoder_decoder_ignores_padding_and_is_causal_in_the_target():
    model = model_of(ed_config())
    src = torch.randint(1, 13, (2, 5))
    padded = torch.cat([src, torch.zeros(2, 3, dtype=torch.long)], dim=1)
    tgt = torch.randint(0, 9, (2, 6))
    torch.testing.assert_close(model(src, tgt), model(padded, tgt), rtol=1e-10, atol=1e-12)
    changed = tgt.clone()
    changed[:, 4:] = (changed[:, 4:] + 1) % 9
    torch.testing.assert_close(model(src, tgt)[:, :4], model(src, changed)[:, :4], rtol=1e-12, atol=1e-12)
    _, weights = model(padded, tgt, need_weights=True)
    cross = weights["decoder"][0]["cross_attn"]
    assert cross.shape == (2, 2, 6, 8)
    assert torch.all(cross[..., 5:] == 0)  # no attention to padding
    torch.testing.assert_close(cross.sum(-1), torch.ones(2, 2, 6, dtype=torch.float64))


def test_post_ln_layers_end_normalised_and_pre_ln_has_a_final_norm():
    post = model_of(lm_config(norm="post"))
    pre = model_of(lm_config(norm="pre"))
    assert post.final_norm is None and pre.final_norm is not None
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    out = L.encoder_layer(x, post.layers[0].params(), norm="post", num_heads=4, causal=True)
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 5, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(out.var(-1, unbiased=False), torch.ones(2, 5, dtype=torch.float64), atol=1e-4, rtol=0)


def test_tied_output_projection_is_the_embedding_table():
    model = model_of(lm_config(norm="post"))
    tokens = torch.randint(0, 11, (1, 4))
    h = model.positions(model.embed(tokens))
    h = L.encoder(h, model.params()["layers"], norm="post", num_heads=4, causal=True,
                  options=model.config.layer_options())
    torch.testing.assert_close(model(tokens), h @ model.embed.weight.T)


@pytest.mark.parametrize("kernels", ["math", "fused"])
def test_dropout_acts_in_training_only(kernels):
    model = build_model(lm_config(dropout=0.3, attention_dropout=0.3, kernels=kernels))
    tokens = torch.randint(0, 11, (2, 6))
    model.eval()
    torch.testing.assert_close(model(tokens), model(tokens))
    model.train()
    assert not torch.allclose(model(tokens), model(tokens))


def test_sinusoidal_positions_are_the_helpers_table():
    model = DecoderOnlyLM(lm_config(positions="sinusoidal"))
    table = helpers.sinusoidal_positional_encoding(12, 16, backend="numpy")
    np.testing.assert_allclose(model.positions.table.numpy(), table, rtol=1e-6, atol=1e-6)
    assert "positions.table" not in model.state_dict()  # fixed, not trained


def test_bad_configs_and_inputs_are_refused():
    with pytest.raises(ValueError, match="num_heads=3 must divide d_model=16"):
        lm_config(num_heads=3)
    with pytest.raises(ValueError, match="norm must be one of"):
        lm_config(norm="middle")
    with pytest.raises(ValueError, match="kernels must be one of"):
        lm_config(kernels="flash")
    with pytest.raises(ValueError, match="num_kv_heads=3 must divide num_heads=4"):
        lm_config(num_kv_heads=3)
    with pytest.raises(ValueError, match="dropout must lie in"):
        lm_config(dropout=1.5)
    with pytest.raises(ValueError, match="rotary positions need an even head width"):
        lm_config(d_model=12, num_heads=4, positions="rotary")
    model = DecoderOnlyLM(lm_config())
    with pytest.raises(ValueError, match="exceed the model's max_len=12"):
        model(torch.zeros(1, 13, dtype=torch.long))
    with pytest.raises(TypeError, match="tokens must be an integer tensor"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="unknown fields"):
        ModelConfig.from_dict({"vocab_size": 3, "colour": "red"})
