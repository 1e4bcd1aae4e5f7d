"""Drive chapter 10's sparse-pattern explorer as a learner would and check what it shows."""
import re

import numpy as np
import pytest

from helpers.efficient_attention import global_tokens_mask, sliding_window_mask, strided_mask
from helpers.widgets.sparse_attention import PATTERNS, SparseAttentionExplorer, sparse_pattern_mask


def shown(explorer):
    ax_mask, ax_cost = explorer.figure.axes[:2]
    mask = np.asarray(ax_mask.images[0].get_array()).astype(bool)
    title = ax_mask.get_title()
    count, total = (int(x) for x in re.search(r"allowed pairs: (\d+) of n² = (\d+)", title).groups())
    return mask, count, total, ax_cost


def expected_mask(pattern, n, size, causal):
    """Each pattern from its definition, built from the helpers' masks (or by hand)."""
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    keep = (j <= i) if causal else np.ones((n, n), dtype=bool)
    by_definition = {
        "sliding window": np.abs(i - j) <= size,
        "strided": (i - j) % size == 0,
        "global tokens": (i < size) | (j < size),
        "window + 1 global token": (np.abs(i - j) <= size) | (i < 1) | (j < 1),
        "window + strided": (np.abs(i - j) < size) | ((i - j) % size == 0),
    }[pattern]
    return by_definition & keep


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("causal", [False, True])
def test_shown_mask_and_count_follow_the_controls(pattern, causal):
    explorer = SparseAttentionExplorer()
    explorer.controls["pattern"].value = pattern
    explorer.controls["causal"].value = causal
    for n, size in ((21, 3), (8, 1)):
        explorer.controls["n"].value = n
        explorer.controls["size"].value = size
        mask, count, total, ax_cost = shown(explorer)
        np.testing.assert_array_equal(mask, expected_mask(pattern, n, size, causal))
        np.testing.assert_array_equal(mask, sparse_pattern_mask(pattern, n, size, causal))
        assert count == int(mask.sum()) and total == n * n
        # the marker on the cost curve sits at (n, count); the curve passes through it
        marker = ax_cost.lines[2]
        assert list(marker.get_xdata()) == [n] and list(marker.get_ydata()) == [count]
        curve_x, curve_y = ax_cost.lines[0].get_data()
        assert curve_y[list(curve_x).index(n)] == count
        dense_x, dense_y = ax_cost.lines[1].get_data()
        np.testing.assert_array_equal(dense_y, np.asarray(dense_x) ** 2)


def test_helpers_masks_are_what_the_simple_patterns_show():
    explorer = SparseAttentionExplorer(pattern="sliding window", n=40, size=4)
    mask, count, _, _ = shown(explorer)
    np.testing.assert_array_equal(mask, sliding_window_mask(40, 4))
    assert count == 40 * 9 - 4 * 5            # n(2w+1) - w(w+1)
    explorer.controls["pattern"].value = "strided"
    mask, count, _, _ = shown(explorer)
    np.testing.assert_array_equal(mask, strided_mask(40, 4))
    assert count == 4 * 10 ** 2               # four residue classes of 10 tokens
    explorer.controls["pattern"].value = "global tokens"
    mask, count, _, _ = shown(explorer)
    np.testing.assert_array_equal(mask, global_tokens_mask(40, 4))
    assert count == 40 ** 2 - 36 ** 2


def test_a_sparse_pattern_grows_slower_than_n_squared():
    explorer = SparseAttentionExplorer(pattern="sliding window", n=64, size=2)
    _, _, _, ax_cost = shown(explorer)
    ns, counts = ax_cost.lines[0].get_data()
    counts = np.asarray(counts)
    # the window's count grows by 2w + 1 = 5 per extra token once n > w
    np.testing.assert_array_equal(np.diff(counts)[3:], 5)
    assert counts[-1] < 64 ** 2 / 10


def test_bad_pattern_and_size_are_refused():
    with pytest.raises(ValueError, match="pattern must be one of"):
        sparse_pattern_mask("dilated", 8, 2)
    with pytest.raises(ValueError, match="size must be a positive integer"):
        sparse_pattern_mask("strided", 8, 0)
