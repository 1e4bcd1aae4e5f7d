"""Chapter 3's MaskExplorer: masked cells are 0; every row sums to 1 when the mask acts on
the scores before the softmax, and rows with a masked key sum to less than 1 when it
zeroes the weights after it (the wrong way, shown for contrast)."""
import itertools
import zlib

import numpy as np
import pytest
import torch

from helpers.widgets.masks import (SENTENCE, MaskExplorer, combined_mask,
                                   masked_self_attention_weights, sentence_embeddings)

N = len(SENTENCE)


def expected_mask(causal, padding, length):
    """Built independently of helpers: j <= i for causal, j < length for padding."""
    i, j = np.indices((N, N))
    allowed = np.ones((N, N), dtype=bool)
    if causal:
        allowed &= j <= i
    if padding:
        allowed &= j < length
    return allowed


def expected_weights(allowed):
    """Masked softmax with torch's own softmax and masked_fill (not helpers)."""
    x = torch.tensor(sentence_embeddings())
    scores = x @ x.T / np.sqrt(x.shape[1])
    scores = scores.masked_fill(~torch.tensor(allowed), float("-inf"))
    return torch.softmax(scores, dim=-1).numpy()


@pytest.fixture(scope="module")
def explorer():
    return MaskExplorer()


@pytest.mark.parametrize("causal, padding, length",
                         list(itertools.product([False, True], [False, True], [1, 3, N])))
def test_heatmap_is_the_masked_softmax(explorer, causal, padding, length):
    explorer.controls["where"].value = "before"
    explorer.controls["causal"].value = causal
    explorer.controls["padding"].value = padding
    explorer.controls["length"].value = length
    assert explorer.values == dict(causal=causal, padding=padding, length=length, where="before")
    heat_ax, sums_ax = explorer.figure.axes[0], explorer.figure.axes[1]
    shown = np.asarray(heat_ax.images[0].get_array())
    allowed = expected_mask(causal, padding, length)
    assert shown.shape == (N, N)
    assert np.all(shown[~allowed] == 0.0), "a masked cell has non-zero weight"
    assert np.all(shown[allowed] > 0.0)
    np.testing.assert_allclose(shown.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(shown, expected_weights(allowed), rtol=1e-12, atol=1e-12)
    bars = [p.get_height() for p in sums_ax.patches]
    np.testing.assert_allclose(bars, 1.0, rtol=0, atol=1e-12)
    assert len(bars) == N


def test_title_and_labels_follow_the_controls(explorer):
    explorer.controls["causal"].value = False
    explorer.controls["padding"].value = True
    explorer.controls["length"].value = 2
    ax = explorer.figure.axes[0]
    assert "padding, 2 real" in ax.get_title() and "causal" not in ax.get_title()
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == list(SENTENCE[:2]) + ["<pad>"] * (N - 2)
    explorer.controls["padding"].value = False
    assert ax is not explorer.figure.axes[0]  # redrawn
    assert explorer.figure.axes[0].get_title().endswith("none")


def test_changing_the_length_changes_the_heatmap_only_with_padding_on(explorer):
    explorer.controls["causal"].value = True
    explorer.controls["padding"].value = False
    explorer.controls["length"].value = 2
    before = np.array(explorer.figure.axes[0].images[0].get_array())
    explorer.controls["length"].value = 5
    np.testing.assert_array_equal(explorer.figure.axes[0].images[0].get_array(), before)
    explorer.controls["padding"].value = True
    after = np.asarray(explorer.figure.axes[0].images[0].get_array())
    assert np.all(after[:, 5:] == 0) and not np.allclose(after, before)


def test_combined_mask_rejects_a_bad_length():
    with pytest.raises(ValueError, match="length"):
        combined_mask(True, True, 0)
    with pytest.raises(ValueError, match="length"):
        combined_mask(True, True, N + 1)


def test_the_same_word_has_the_same_vector():
    """A word's vector is a function of the word only (chapter 2's seeded embedding), not of
    its position: the two "the" rows of X are equal, the other words differ."""
    x = sentence_embeddings()
    assert SENTENCE[0] == SENTENCE[4] == "the"
    np.testing.assert_array_equal(x[0], x[4])
    assert len({tuple(row) for row in x}) == len(set(SENTENCE))
    # independently: the word's CRC-32 seeds a normal generator, first entries used
    expected = np.random.default_rng(zlib.crc32(b"cat")).normal(size=16)[:x.shape[1]]
    np.testing.assert_array_equal(x[1], expected)
    np.testing.assert_array_equal(sentence_embeddings(("mat", "the"))[1], x[0])   # any position


def test_without_a_mask_the_repeated_word_attends_and_is_attended_alike(explorer):
    explorer.controls["causal"].value = False
    explorer.controls["padding"].value = False
    explorer.controls["where"].value = "before"
    shown = np.asarray(explorer.figure.axes[0].images[0].get_array())
    np.testing.assert_array_equal(shown[0], shown[4])          # equal queries: equal rows
    np.testing.assert_array_equal(shown[:, 0], shown[:, 4])    # equal keys: equal columns


@pytest.mark.parametrize("padding, length", [(False, N), (True, 3)])
def test_zeroing_after_the_softmax_leaves_rows_that_do_not_sum_to_1(explorer, padding, length):
    explorer.controls["causal"].value = True
    explorer.controls["padding"].value = padding
    explorer.controls["length"].value = length
    allowed = expected_mask(True, padding, length)
    has_masked_key = ~allowed.all(axis=1)                      # every row but the last (causal)

    explorer.controls["where"].value = "after"
    shown = np.asarray(explorer.figure.axes[0].images[0].get_array())
    bars = np.array([p.get_height() for p in explorer.figure.axes[1].patches])
    unmasked = expected_weights(np.ones((N, N), dtype=bool))  # the plain softmax, by torch
    np.testing.assert_allclose(shown, unmasked * allowed, rtol=1e-12, atol=1e-12)
    assert np.all(shown[~allowed] == 0)
    assert np.all(bars[has_masked_key] < 1 - 1e-3), bars       # the wrong way: weight is lost
    np.testing.assert_allclose(bars[~has_masked_key], 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(bars, shown.sum(axis=1), rtol=1e-12, atol=1e-12)
    assert f"{has_masked_key.sum()} of {N} rows below 1" in explorer.figure.axes[1].get_title()

    explorer.controls["where"].value = "before"
    bars = np.array([p.get_height() for p in explorer.figure.axes[1].patches])
    np.testing.assert_allclose(bars, 1.0, rtol=0, atol=1e-12)  # the right way: every row sums to 1
    # renormalising the wrong weights gives the right ones (the derivation of chapter 3)
    np.testing.assert_allclose(np.asarray(explorer.figure.axes[0].images[0].get_array()),
                               (unmasked * allowed) / (unmasked * allowed).sum(axis=1, keepdims=True),
                               rtol=1e-12, atol=1e-12)


def test_bad_where_is_refused():
    with pytest.raises(ValueError, match="where"):
        masked_self_attention_weights(True, False, N, where="during")
