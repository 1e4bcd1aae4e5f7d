"""Chapter 3's MaskExplorer: masked cells are 0 and every row still sums to 1."""
import itertools

import numpy as np
import pytest
import torch

from helpers.widgets.masks import (SENTENCE, MaskExplorer, combined_mask,
                                   sentence_embeddings)

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
    explorer.controls["causal"].value = causal
    explorer.controls["padding"].value = padding
    explorer.controls["length"].value = length
    assert explorer.values == dict(causal=causal, padding=padding, length=length)
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
