"""Chapter 4's MultiHeadExplorer: the big heatmap is weights[head] of multi_head_attention."""
import numpy as np
import pytest
import torch

import helpers
from helpers.widgets.multi_head import (D_MODEL, HEAD_CHOICES, SENTENCE, MultiHeadExplorer,
                                        head_weights, layer_inputs)

N = len(SENTENCE)


def torch_weights(num_heads):
    """The same layer through torch.nn.MultiheadAttention (an independent implementation)."""
    x, w_q, w_k, w_v, w_o = (torch.tensor(a) for a in layer_inputs())
    mha = torch.nn.MultiheadAttention(D_MODEL, num_heads, bias=False, batch_first=True,
                                      dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([w_q.T, w_k.T, w_v.T]))  # (out, in) layout
        mha.out_proj.weight.copy_(w_o.T)
    _, weights = mha(x[None], x[None], x[None], need_weights=True, average_attn_weights=False)
    return weights[0].detach().numpy()


@pytest.mark.parametrize("num_heads", HEAD_CHOICES)
def test_every_head_shown_equals_multi_head_attention(num_heads):
    explorer = MultiHeadExplorer(num_heads=num_heads)
    x, *ws = layer_inputs()
    _, weights = helpers.multi_head_attention(x, x, *ws, num_heads)
    np.testing.assert_allclose(weights, torch_weights(num_heads), rtol=1e-12, atol=1e-12)
    for head in range(num_heads):
        explorer.controls["head"].value = head
        big = explorer.figure.axes[0]
        np.testing.assert_array_equal(big.images[0].get_array(), weights[head])
        assert big.get_title() == f"head {head} of {num_heads} (d_k = {D_MODEL // num_heads})"
        small = explorer.figure.axes[1:]
        assert len(small) == num_heads
        for i, ax in enumerate(small):
            np.testing.assert_array_equal(ax.images[0].get_array(), weights[i])
        assert small[head].title.get_color() == "tab:red"


def test_fewer_heads_clamps_the_head_slider_and_redraws_once():
    explorer = MultiHeadExplorer(num_heads=8)
    explorer.controls["head"].value = 6
    draws = explorer.draws
    explorer.controls["num_heads"].value = 2
    assert explorer.controls["head"].max == 1 and explorer.controls["head"].value == 1
    assert explorer.draws == draws + 1
    np.testing.assert_array_equal(explorer.figure.axes[0].images[0].get_array(), head_weights(2)[1])
    explorer.controls["num_heads"].value = 4
    assert explorer.controls["head"].max == 3 and explorer.controls["head"].value == 1


def test_one_head_is_plain_attention_on_the_projections():
    x, w_q, w_k, w_v, _ = layer_inputs()
    _, expected = helpers.scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v)
    np.testing.assert_allclose(head_weights(1)[0], expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(head_weights(4).sum(-1), 1.0, atol=1e-12)


def test_head_weights_rejects_a_head_count_that_does_not_divide_d_model():
    with pytest.raises(ValueError, match="num_heads"):
        head_weights(3)
