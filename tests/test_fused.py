"""The fast path (torch's fused kernels) equals the reference path (the chapters' formulas),
values and gradients, for every function that has both and for whole models with every option.

kernels="fused" is the training default (python -m helpers.train); kernels="math" is what the
chapters derive. A difference here means one of them is wrong.
"""
import pytest
import torch

import helpers
from helpers.model import ModelConfig, build_model
from test_model_is_chapter7_layers import CONFIGS

TOL = dict(rtol=1e-10, atol=1e-10)


def leaves(*shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64, requires_grad=True) for s in shapes]


def both_paths(fn, inputs):
    """fn(fused) for fused False and True: outputs and the gradients of a random projection of
    the output with respect to every input."""
    results = []
    for fused in (False, True):
        out = fn(fused)
        weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(9), dtype=out.dtype)
        grads = torch.autograd.grad((out * weight).sum(), inputs, allow_unused=True)
        results.append((out.detach(), grads))
    return results


def assert_same(results):
    (a, ga), (b, gb) = results
    torch.testing.assert_close(a, b, **TOL)
    for x, y in zip(ga, gb):
        assert (x is None) == (y is None)
        if x is not None:
            torch.testing.assert_close(x, y, **TOL)


@pytest.mark.parametrize("with_beta", [True, False])
def test_layer_norm(with_beta):
    x, gamma, beta = leaves((3, 5, 8), (8,), (8,))
    inputs = [x, gamma] + ([beta] if with_beta else [])
    assert_same(both_paths(lambda fused: helpers.layer_norm(x, gamma, beta if with_beta else None, fused=fused), inputs))


@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("bias", [True, False])
def test_feed_forward(activation, bias):
    x, w1, b1, w2, b2 = leaves((2, 4, 6), (6, 10), (10,), (10, 6), (6,))
    b1, b2 = (b1, b2) if bias else (None, None)
    inputs = [t for t in (x, w1, b1, w2, b2) if t is not None]
    assert_same(both_paths(lambda fused: helpers.feed_forward(x, w1, b1, w2, b2, activation=activation,
                                                              fused=fused), inputs))


@pytest.mark.parametrize("ignore_index, smoothing, dtype", [(None, 0.0, torch.int64), (0, 0.0, torch.int64),
                                                           (2, 0.1, torch.int32), (None, 0.1, torch.int32)])
def test_cross_entropy(ignore_index, smoothing, dtype):
    logits, = leaves((3, 7, 5))
    targets = torch.randint(0, 5, (3, 7), generator=torch.Generator().manual_seed(1)).to(dtype)
    assert_same(both_paths(lambda fused: helpers.cross_entropy(logits, targets, ignore_index=ignore_index,
                                                               label_smoothing=smoothing, fused=fused)[None], [logits]))


ATTENTION_OPTIONS = {
    "plain": dict(), "causal": dict(causal=True), "padding": dict(mask="padding"),
    "padding + causal": dict(mask="padding", causal=True), "grouped-query": dict(num_kv_heads=2, causal=True),
    "multi-query": dict(num_kv_heads=1), "rotary": dict(rotary_theta=100.0, causal=True),
    "QK-norm": dict(qk_norm=True, causal=True), "no biases": dict(bias=False),
}


@pytest.mark.parametrize("name", list(ATTENTION_OPTIONS))
def test_multi_head_attention(name):
    options = dict(ATTENTION_OPTIONS[name])
    h, d = 4, 16
    h_kv = options.get("num_kv_heads", h)
    x, w_q, w_k, w_v, w_o, b_q, b_k, b_v, b_o, q_gamma, k_gamma = leaves(
        (2, 6, d), (d, d), (d, h_kv * 4), (d, h_kv * 4), (d, d), (d,), (h_kv * 4,), (h_kv * 4,), (d,), (4,), (4,))
    kwargs = dict(num_kv_heads=options.get("num_kv_heads"), rotary_theta=options.get("rotary_theta"),
                  causal=options.get("causal", False))
    inputs = [x, w_q, w_k, w_v, w_o]
    if options.get("bias", True):
        kwargs.update(b_q=b_q, b_k=b_k, b_v=b_v, b_o=b_o)
        inputs += [b_q, b_k, b_v, b_o]
    if options.get("qk_norm"):
        kwargs.update(q_gamma=q_gamma, k_gamma=k_gamma)
        inputs += [q_gamma, k_gamma]
    if options.get("mask") == "padding":
        kwargs["mask"] = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])[:, None, :]
    assert_same(both_paths(lambda fused: helpers.multi_head_attention(x, x, w_q, w_k, w_v, w_o, h, fused=fused,
                                                                      **kwargs)[0], inputs))


@pytest.mark.parametrize("kind", ["decoder", "encoder-decoder"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_whole_models(kind, name):
    values = dict(vocab_size=11, d_model=16, num_heads=4, num_layers=2, d_ff=24, max_len=12)
    if kind == "encoder-decoder":
        values.update(kind=kind, src_vocab_size=13)
    values.update(CONFIGS[name])
    torch.manual_seed(0)
    math_model = build_model(ModelConfig(**values, kernels="math")).double()
    fused_model = build_model(ModelConfig(**values, kernels="fused")).double()
    fused_model.load_state_dict(math_model.state_dict())
    g = torch.Generator().manual_seed(2)
    tokens = torch.randint(1, 11, (3, 9), generator=g)
    src = torch.randint(1, 13, (3, 7), generator=g)
    src[1, 4:] = 0
    results = []
    for model in (math_model, fused_model):
        logits = model(tokens) if kind == "decoder" else model(src, tokens)
        loss = helpers.cross_entropy(logits, tokens.roll(-1, dims=1), fused=model is fused_model)
        grads = torch.autograd.grad(loss, list(model.parameters()))
        results.append((logits.detach(), grads))
    assert_same(results)
