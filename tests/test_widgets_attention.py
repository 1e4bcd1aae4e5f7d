"""Drive chapter 2's attention explorer as a learner would and check the figure's data.

Expected weights are computed here independently: by a hand softmax in NumPy, by
torch.softmax, or by helpers.scaled_dot_product_attention called with the scale the
setting stands for (scale = 1 / (T sqrt(d_k))).
"""
import math

import numpy as np
import pytest
import torch

import helpers
from helpers.widgets.attention import AttentionExplorer, attention_setting

WORKED_Q = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
WORKED_V = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])


def heatmap(explorer):
    return np.asarray(explorer.figure.axes[0].images[0].get_array())


def outputs_drawn(explorer):
    """The (n_q, 2) output points of the right panel (its second scatter)."""
    return np.asarray(explorer.figure.axes[1].collections[1].get_offsets())


def hand_softmax_rows(s):
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_worked_example_heatmap_is_the_closed_form_weights():
    explorer = AttentionExplorer()
    a = math.exp(1 / math.sqrt(2))                       # closed form of chapter 2, section 4
    expected = np.array([[a, 1, a], [1, a, a], [1, 1, a]]) / np.array([[2 * a + 1], [2 * a + 1], [a + 2]])
    np.testing.assert_allclose(heatmap(explorer), expected, rtol=1e-12, atol=1e-12)
    by_torch = torch.softmax(torch.tensor(WORKED_Q) @ torch.tensor(WORKED_Q).T / math.sqrt(2), dim=-1)
    np.testing.assert_allclose(heatmap(explorer), by_torch.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(outputs_drawn(explorer), expected @ WORKED_V, rtol=1e-12, atol=1e-12)
    assert explorer.controls["d_k"].disabled and explorer.controls["sentence"].disabled


@pytest.mark.parametrize("temperature", [0.05, 0.3, 1.0, 4.0, 20.0])
def test_heatmap_equals_helpers_weights_at_each_temperature(temperature):
    explorer = AttentionExplorer()
    explorer.controls["temperature"].value = temperature
    _, weights = helpers.scaled_dot_product_attention(WORKED_Q, WORKED_Q, WORKED_V,
                                                      scale=1 / (temperature * math.sqrt(2)))
    np.testing.assert_allclose(heatmap(explorer), weights, rtol=1e-12, atol=1e-12)
    assert f"T = {temperature:.3g}" in explorer.figure.axes[0].get_title()


def test_lower_temperature_sharpens_every_row():
    explorer = AttentionExplorer()
    top = []
    for temperature in (10.0, 3.0, 1.0, 0.3, 0.1):
        explorer.controls["temperature"].value = temperature
        top.append(heatmap(explorer).max(axis=1))
    top = np.array(top)                                   # (5 temperatures, 3 rows)
    assert np.all(np.diff(top, axis=0) > 0), top
    # row 3's scores [1, 1, 2]/sqrt 2 have a unique maximum: at T = 0.1 it is nearly one-hot,
    # 1 - p_max <= 2 exp(-gap / (T sqrt 2)) with gap 1
    assert 1 - top[-1, 2] <= 2 * math.exp(-1 / (0.1 * math.sqrt(2)))
    # at T = 10 every row is close to uniform: |p - 1/3| <= (e^(r/T) - 1)/3 with r = 1/sqrt 2
    explorer.controls["temperature"].value = 10.0
    assert np.abs(heatmap(explorer) - 1 / 3).max() <= (math.exp(1 / (10 * math.sqrt(2))) - 1) / 3


def test_sentence_heatmap_is_the_softmax_of_the_drawn_queries_and_keys():
    explorer = AttentionExplorer()
    explorer.controls["example"].value = "sentence"
    assert not explorer.controls["d_k"].disabled
    for d_k, temperature in ((1, 1.0), (8, 0.5), (64, 2.0)):
        explorer.controls["d_k"].value = d_k
        explorer.controls["temperature"].value = temperature
        s = explorer.setting()
        assert s["q"].shape == (6, d_k) and s["k"].shape == (6, d_k) and s["v"].shape == (6, 2)
        expected = hand_softmax_rows(s["q"] @ s["k"].T / (temperature * math.sqrt(d_k)))
        np.testing.assert_allclose(heatmap(explorer), expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(outputs_drawn(explorer), expected @ s["v"], rtol=1e-12, atol=1e-12)
    labels = [t.get_text() for t in explorer.figure.axes[0].get_xticklabels()]
    assert labels == ["the", "cat", "sat", "on", "the", "mat"]


def test_sentence_words_keep_their_vectors():
    """A repeated word has one embedding (equal rows and columns); d_k only adds columns."""
    s8 = attention_setting("sentence", "the cat sat on the mat", 1.0, 8)
    np.testing.assert_array_equal(s8["weights"][0], s8["weights"][4])
    np.testing.assert_array_equal(s8["weights"][:, 0], s8["weights"][:, 4])
    s16 = attention_setting("sentence", "the cat sat on the mat", 1.0, 16)
    np.testing.assert_array_equal(s16["q"][:, :8], s8["q"])
    np.testing.assert_array_equal(s16["v"], s8["v"])


def test_typing_a_sentence_redraws():
    explorer = AttentionExplorer(example="sentence")
    explorer.controls["sentence"].value = "attention is all"
    assert heatmap(explorer).shape == (3, 3)
    np.testing.assert_allclose(heatmap(explorer).sum(axis=1), 1.0, atol=1e-12)


def test_unscaled_scores_saturate_rows_at_large_d_k():
    """T = 1/sqrt(d_k) cancels the scaling: at d_k = 64 the rows are far sharper."""
    setting = dict(example="sentence", sentence="the cat sat on the mat", d_k=64)
    scaled = attention_setting(temperature=1.0, **setting)["weights"]
    unscaled = attention_setting(temperature=1 / 8, **setting)["weights"]
    _, expected = helpers.scaled_dot_product_attention(*(torch.tensor(a) for a in (
        attention_setting(temperature=1.0, **setting)[k] for k in ("q", "k", "v"))), scale=1.0)
    np.testing.assert_allclose(unscaled, expected.numpy(), rtol=1e-12, atol=1e-12)
    assert unscaled.max(axis=1).mean() > scaled.max(axis=1).mean()


def test_outputs_stay_in_the_convex_hull_of_the_values():
    explorer = AttentionExplorer(example="sentence")
    v = explorer.setting()["v"]
    angles = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    u = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    for temperature in (0.05, 1.0, 20.0):
        explorer.controls["temperature"].value = temperature
        reach = u @ outputs_drawn(explorer).T
        assert np.all(reach <= (u @ v.T).max(axis=1)[:, None] + 1e-12)


def test_custom_arrays():
    rng = np.random.default_rng(0)
    custom = {"q": rng.normal(size=(2, 3)), "k": rng.normal(size=(4, 3)), "v": rng.normal(size=(4, 2)),
              "tokens": ["a", "b", "c", "d"]}
    explorer = AttentionExplorer(example="custom", custom=custom, temperature=0.5)
    expected = hand_softmax_rows(custom["q"] @ custom["k"].T / (0.5 * math.sqrt(3)))
    np.testing.assert_allclose(heatmap(explorer), expected, rtol=1e-12, atol=1e-12)
    assert heatmap(explorer).shape == (2, 4)


@pytest.mark.parametrize("kwargs, error", [
    (dict(example="nope"), ValueError),
    (dict(example="sentence", sentence="   "), ValueError),
    (dict(example="sentence", d_k=0), ValueError),
    (dict(temperature=0.0), ValueError),
    (dict(temperature=-1.0), ValueError),
    (dict(example="custom"), ValueError),
    (dict(example="custom", custom={"q": np.ones((1, 2)), "k": np.ones((1, 2))}), ValueError),
    (dict(example="sentence", sentence=["the", "cat"]), TypeError),
])
def test_bad_settings_are_refused(kwargs, error):
    with pytest.raises(error):
        attention_setting(**kwargs)


def test_the_worked_example_is_labelled_by_its_authors():
    """The dropdown names the source as the course cites it, by its authors."""
    labels = [label for label, _ in AttentionExplorer().controls["example"].options]
    assert labels[0] == "worked example (Métwalli and Elhefny §5)"
    assert not any("seed" in label for label in labels)
