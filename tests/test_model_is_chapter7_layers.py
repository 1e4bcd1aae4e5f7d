"""Chapter 11's model computes exactly chapter 7's functions, for every configuration the
command line can build.

helpers.model only holds parameters and calls helpers.layers. Here the same computation is
assembled by hand from the model's own tensors (embedding lookup, positions, the layer
functions one layer at a time, the final norm, the tied or untied output), and must give
the model's logits, with torch's fused kernels and with the formulas, and token by token
with the KV cache. helpers.layers is in turn checked against nn.Transformer in
tests/test_layers.py, so the chain reaches PyTorch's own layers.
"""
import math

import pytest
import torch

from helpers import layers as L
from helpers.model import ModelConfig, build_model

TOL = dict(rtol=1e-10, atol=1e-10)

# Every option of the command line (python -m helpers.train --help) appears in at least one
# row, and the paper's and the modern presets as wholes.
CONFIGS = {
    "default (pre-LN, learned positions)": dict(),
    "paper (post-LN, sinusoidal, x sqrt(d))": dict(norm="post", positions="sinusoidal", scale_embeddings=True),
    "no normalisation": dict(norm="none"),
    "untied output": dict(tie_embeddings=False),
    "modern (RMSNorm, SwiGLU, rotary, GQA, no bias, QK-norm)": dict(
        normalization="rms_norm", ffn="swiglu", d_ff=None, positions="rotary", num_kv_heads=2, bias=False,
        qk_norm=True),
    "GELU, multi-query": dict(ffn="gelu", num_kv_heads=1),
    "rotary, theta 500, post-norm RMSNorm": dict(positions="rotary", rotary_theta=500.0, norm="post",
                                                  normalization="rms_norm"),
    "no bias LayerNorm": dict(bias=False),
}


def make(kind, kernels, **kw):
    values = dict(vocab_size=11, d_model=16, num_heads=4, num_layers=2, d_ff=24, max_len=12, kernels=kernels)
    if kind == "encoder-decoder":
        values.update(kind=kind, vocab_size=9, src_vocab_size=13, num_encoder_layers=3)
    values.update(kw)
    torch.manual_seed(0)
    model = build_model(ModelConfig(**values)).double().eval()
    with torch.no_grad():                      # non-trivial gains, offsets and biases
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    return model


def embedded(model, tokens, table, start=0):
    c = model.config
    x = table[tokens] * (math.sqrt(c.d_model) if c.scale_embeddings else 1.0)   # (B, n, d): row lookup
    if c.positions != "rotary":
        x = x + model.positions.table[start:start + tokens.shape[1]]           # (B, n, d)
    return x


def logits_of(model, h, table):
    return h @ table.T if model.config.tie_embeddings else h @ model.head.weight + model.head.bias


def by_hand_lm(model, tokens):
    c, p = model.config, model.params()
    options = c.layer_options()
    x = embedded(model, tokens, model.embed.weight)
    for params in p["layers"]:
        x = L.encoder_layer(x, params, norm=c.norm, num_heads=c.num_heads, eps=c.eps, causal=True, options=options)
    if p["final_norm"] is not None:
        x = L.normalize(x, p["final_norm"], options, c.eps)
    return logits_of(model, x, model.embed.weight)


def by_hand_translation(model, src, tgt):
    c = model.config
    pad = (src != model.pad_id)[:, None, :]                                     # (B, 1, n_src)
    out = L.encoder_decoder(embedded(model, src, model.src_embed.weight), embedded(model, tgt, model.tgt_embed.weight),
                            model.params(), src_mask=pad, memory_mask=pad, norm=c.norm, num_heads=c.num_heads,
                            eps=c.eps, options=c.layer_options())
    return logits_of(model, out, model.tgt_embed.weight)


@pytest.mark.parametrize("kernels", ["math", "fused"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_language_model_is_the_layer_functions(name, kernels):
    model = make("decoder", kernels, **CONFIGS[name])
    tokens = torch.randint(0, 11, (3, 10))
    full = model(tokens)
    torch.testing.assert_close(full, by_hand_lm(model, tokens), **TOL)
    cache = model.new_cache()                  # a prompt of 4, then one token at a time
    parts = [model(tokens[:, :4], cache=cache)] + [model(tokens[:, i:i + 1], cache=cache) for i in range(4, 10)]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, **TOL)
    h_kv = model.config.num_kv_heads or model.config.num_heads
    assert cache["layers"][0]["self_attn"]["k"].shape == (3, h_kv, 10, 4)


@pytest.mark.parametrize("kernels", ["math", "fused"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_translation_model_is_the_layer_functions(name, kernels):
    model = make("encoder-decoder", kernels, **CONFIGS[name])
    g = torch.Generator().manual_seed(1)
    src = torch.randint(1, 13, (3, 7), generator=g)
    src[0, 5:] = 0                             # padding at the end of two source sentences
    src[2, 3:] = 0
    tgt = torch.randint(1, 9, (3, 5), generator=g)
    full = model(src, tgt)
    torch.testing.assert_close(full, by_hand_translation(model, src, tgt), **TOL)
    memory, cache = model.encode(src), model.new_cache()
    parts = [model.decode(tgt[:, i:i + 1], memory, model.source_mask(src), cache=cache) for i in range(5)]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, **TOL)
