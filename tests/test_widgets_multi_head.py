"""Chapter 4's MultiHeadExplorer: the big heatmap is weights[head] of multi_head_attention,
and a token's input vector depends on the word only (positions are added explicitly)."""
import math

import numpy as np
import pytest
import torch

import helpers
from helpers.widgets.multi_head import (D_MODEL, HEAD_CHOICES, SENTENCE, MultiHeadExplorer,
                                        head_weights, layer_inputs)

N = len(SENTENCE)
THE_FIRST, THE_SECOND = 0, 4   # the two positions of "the"


def pe_by_hand(n, d):
    pe = np.zeros((n, d))
    for pos in range(n):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            pe[pos, 2 * i], pe[pos, 2 * i + 1] = math.sin(angle), math.cos(angle)
    return pe


def torch_weights(num_heads, positions=False):
    """The same layer through torch.nn.MultiheadAttention (an independent implementation)."""
    x, w_q, w_k, w_v, w_o = (torch.tensor(a) for a in layer_inputs(positions=positions))
    mha = torch.nn.MultiheadAttention(D_MODEL, num_heads, bias=False, batch_first=True,
                                      dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([w_q.T, w_k.T, w_v.T]))  # (out, in) layout
        mha.out_proj.weight.copy_(w_o.T)
    _, weights = mha(x[None], x[None], x[None], need_weights=True, average_attn_weights=False)
    return weights[0].detach().numpy()


def test_sentence_has_a_repeated_word():
    assert SENTENCE[THE_FIRST] == SENTENCE[THE_SECOND] == "the"


@pytest.mark.parametrize("positions", [False, True])
@pytest.mark.parametrize("num_heads", HEAD_CHOICES)
def test_every_head_shown_equals_multi_head_attention(num_heads, positions):
    explorer = MultiHeadExplorer(num_heads=num_heads, positions=positions)
    x, *ws = layer_inputs(positions=positions)
    _, weights = helpers.multi_head_attention(x, x, *ws, num_heads)
    np.testing.assert_allclose(weights, torch_weights(num_heads, positions), rtol=1e-12, atol=1e-12)
    for head in range(num_heads):
        explorer.controls["head"].value = head
        big = explorer.figure.axes[0]
        np.testing.assert_array_equal(big.images[0].get_array(), weights[head])
        assert big.get_title() == f"head {head} of {num_heads} (d_k = {D_MODEL // num_heads})"
        small = explorer.figure.axes[1:1 + num_heads]
        assert len(explorer.figure.axes) == 1 + num_heads + 1           # and the colorbar
        assert "attention weight" in explorer.figure.axes[-1].get_ylabel()
        for i, ax in enumerate(small):
            np.testing.assert_array_equal(ax.images[0].get_array(), weights[i])
        assert small[head].title.get_color() == "tab:red"


def test_a_word_gets_the_same_vector_wherever_it_stands():
    x, *_ = layer_inputs(positions=False)
    np.testing.assert_array_equal(x[THE_FIRST], x[THE_SECOND])
    assert len({row.tobytes() for row in x}) == len(set(SENTENCE))   # one vector per word
    # so every head gives both "the"s the same row of weights, and the same column
    for h in HEAD_CHOICES:
        w = head_weights(h, positions=False)
        np.testing.assert_allclose(w[:, THE_FIRST], w[:, THE_SECOND], rtol=0, atol=1e-15)
        np.testing.assert_allclose(w[:, :, THE_FIRST], w[:, :, THE_SECOND], rtol=0, atol=1e-15)


def test_positions_are_added_explicitly_and_separate_the_two_thes():
    x_words, *ws = layer_inputs(positions=False)
    x_pos, *ws_pos = layer_inputs(positions=True)
    np.testing.assert_allclose(x_pos - x_words, pe_by_hand(N, D_MODEL), rtol=0, atol=1e-12)
    for w, w_pos in zip(ws, ws_pos):
        np.testing.assert_array_equal(w, w_pos)                        # same projections
    assert np.abs(x_pos[THE_FIRST] - x_pos[THE_SECOND]).max() > 0.5
    w = head_weights(2, positions=True)
    assert np.abs(w[:, THE_FIRST] - w[:, THE_SECOND]).max() > 1e-3


def test_the_checkbox_redraws_with_positions():
    explorer = MultiHeadExplorer(num_heads=4)
    explorer.controls["head"].value = 3
    assert "embeddings only" in explorer.figure.get_suptitle()
    explorer.controls["positions"].value = True
    np.testing.assert_array_equal(explorer.figure.axes[0].images[0].get_array(),
                                  head_weights(4, positions=True)[3])
    assert "sinusoidal positions" in explorer.figure.get_suptitle()


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


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="num_heads"):
        head_weights(3)
    with pytest.raises(TypeError, match="positions"):
        layer_inputs(positions="yes")
