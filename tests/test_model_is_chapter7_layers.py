"""Chapter 11's torch modules compute exactly chapter 7's layers (helpers.layers).

helpers.model wraps the formulas in nn.Modules for training (parameters, dropout, a KV
cache, a fused attention path); helpers.layers is the functional encoder and decoder that
chapter 7 checks against nn.Transformer. With the same weights copied across, a Block must
give the same numbers as encoder_layer / decoder_layer, and the whole encoder-decoder the
same logits as layers.encoder_decoder followed by the tied output projection, in both
LayerNorm arrangements and with both attention paths.
"""
import pytest
import torch

import helpers
from helpers import layers
from helpers.model import ModelConfig, build_model

TOL = dict(rtol=1e-12, atol=1e-12)
ATTENTION = ("w_q", "w_k", "w_v", "w_o", "b_q", "b_k", "b_v", "b_o")


def attention_params(module):
    return {name: getattr(module, name) for name in ATTENTION}


def norm_params(module):
    return {"gamma": module.gamma, "beta": module.beta}


def block_params(block):
    """The helpers.layers parameter dict of one model Block (encoder or decoder layer)."""
    ffn = {name: getattr(block.ffn, name) for name in ("w1", "b1", "w2", "b2")}
    if block.cross_attn is None:
        return {"self_attn": attention_params(block.self_attn), "norm1": norm_params(block.norm_self),
                "ffn": ffn, "norm2": norm_params(block.norm_ffn)}
    return {"self_attn": attention_params(block.self_attn), "norm1": norm_params(block.norm_self),
            "cross_attn": attention_params(block.cross_attn), "norm2": norm_params(block.norm_cross),
            "ffn": ffn, "norm3": norm_params(block.norm_ffn)}


def paper_model(norm, attention, seed=0):
    config = ModelConfig(kind="encoder-decoder", vocab_size=9, src_vocab_size=13, d_model=16, num_heads=4,
                         num_layers=2, num_encoder_layers=3, d_ff=24, max_len=10, norm=norm,
                         attention=attention, positions="sinusoidal")
    torch.manual_seed(seed)
    model = build_model(config, pad_id=0).double().eval()
    with torch.no_grad():                      # non-trivial LayerNorm gains and biases
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    return model


def batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(1, 13, (3, 7), generator=g)
    tgt = torch.randint(1, 9, (3, 5), generator=g)
    src[0, 5:] = 0                             # padding at the end of two source sentences
    src[2, 3:] = 0
    return src, tgt


@pytest.mark.parametrize("attention", ["math", "fused"])
@pytest.mark.parametrize("norm", ["post", "pre"])
def test_encoder_block_is_encoder_layer(norm, attention):
    model = paper_model(norm, attention)
    src, _ = batch()
    x = torch.randn(3, 7, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    block = model.encoder[0]
    with torch.no_grad():
        ours, _ = block(x, self_mask=model.source_mask(src))
        chapter7 = layers.encoder_layer(x, block_params(block), mask=(src != 0)[:, None, :], norm=norm,
                                        num_heads=4)
    torch.testing.assert_close(ours, chapter7, **TOL)


@pytest.mark.parametrize("attention", ["math", "fused"])
@pytest.mark.parametrize("norm", ["post", "pre"])
def test_decoder_block_is_decoder_layer(norm, attention):
    model = paper_model(norm, attention)
    src, _ = batch()
    g = torch.Generator().manual_seed(3)
    y = torch.randn(3, 5, 16, dtype=torch.float64, generator=g)
    memory = torch.randn(3, 7, 16, dtype=torch.float64, generator=g)
    block = model.decoder[1]
    with torch.no_grad():
        ours, _ = block(y, causal=True, memory=memory, memory_mask=model.source_mask(src))
        chapter7 = layers.decoder_layer(y, memory, block_params(block),
                                        self_mask=helpers.causal_mask(5, backend="torch"),
                                        memory_mask=(src != 0)[:, None, :], norm=norm, num_heads=4)
    torch.testing.assert_close(ours, chapter7, **TOL)


@pytest.mark.parametrize("attention", ["math", "fused"])
@pytest.mark.parametrize("norm", ["post", "pre"])
def test_whole_model_is_encoder_decoder_of_chapter7(norm, attention):
    model = paper_model(norm, attention)
    src, tgt = batch()
    d = model.config.d_model
    # The model keeps helpers' sinusoidal table as a float32 buffer (test_model checks it is that
    # table); take it from the model so that only the layers are compared here, to 1e-12.
    pe = model.positions.table.to(torch.float64)
    torch.testing.assert_close(pe, helpers.sinusoidal_positional_encoding(10, d, backend="torch",
                                                                          dtype=torch.float64),
                               rtol=0, atol=1e-6)
    # embeddings: row lookup times sqrt(d_model) (chapter 1), plus the sinusoidal table (chapter 5)
    src_in = model.src_embed.weight[src] * d ** 0.5 + pe[:src.shape[1]]
    tgt_in = model.tgt_embed.weight[tgt] * d ** 0.5 + pe[:tgt.shape[1]]
    params = {"encoder": [block_params(b) for b in model.encoder],
              "decoder": [block_params(b) for b in model.decoder],
              "encoder_norm": norm_params(model.encoder_norm) if norm == "pre" else None,
              "decoder_norm": norm_params(model.decoder_norm) if norm == "pre" else None}
    keep = (src != 0)[:, None, :]
    with torch.no_grad():
        ours = model(src, tgt)
        hidden = layers.encoder_decoder(src_in, tgt_in, params, src_mask=keep,
                                        tgt_mask=helpers.causal_mask(tgt.shape[1], backend="torch"),
                                        memory_mask=keep, norm=norm, num_heads=4)
        chapter7 = hidden @ model.tgt_embed.weight.T          # tied output projection
    torch.testing.assert_close(ours, chapter7, **TOL)
