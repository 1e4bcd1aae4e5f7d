"""Chapter 3's explorer: switch the causal and the padding mask on and off.

The explorer runs masked self-attention on a short, fixed sentence and shows the
attention weights as a heatmap (masked cells are exactly 0) next to a bar chart of the
row sums (every row still sums to 1, because the mask is applied to the scores *before*
the softmax). The numbers come from :func:`masked_self_attention_weights`, a pure function
of the controls' values, so a test can check them without a browser.
"""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from ..attention import causal_mask, padding_mask, scaled_dot_product_attention
from .explorer import Explorer

SENTENCE = ("the", "cat", "sat", "on", "the", "mat")
D_MODEL = 4
SEED = 3


def sentence_embeddings(n: int = len(SENTENCE), d_model: int = D_MODEL, seed: int = SEED):
    """Fixed-seed token vectors X, shape (n, d_model), standing in for learned embeddings."""
    return np.random.default_rng(seed).normal(size=(n, d_model))


def combined_mask(causal: bool, padding: bool, length: int, n: int = len(SENTENCE)):
    """The boolean mask (n, n) the explorer uses; True where attending is allowed.

    causal: mask[i, j] requires j <= i (``causal_mask``). padding: only the first
    ``length`` keys are real (``padding_mask`` of shape (1, 1, n), broadcast over the
    queries). Both: their logical and. Neither: all True.
    """
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or not 1 <= length <= n:
        raise ValueError(f"combined_mask: length must be an integer in 1..n={n}, got {length!r}")
    mask = np.ones((n, n), dtype=bool)
    if causal:
        mask = mask & causal_mask(n)
    if padding:
        mask = mask & padding_mask(np.array([length]), n)[0]  # (1, n) broadcasts over rows
    return mask


def masked_self_attention_weights(causal: bool, padding: bool, length: int):
    """Weights (n, n) of self-attention Attention(X, X, X) on the fixed sentence, masked.

    Returns ``(mask, weights)``; weights = softmax(X X^T / sqrt(d) with -inf where the
    mask is False), computed by :func:`helpers.scaled_dot_product_attention`.
    """
    mask = combined_mask(causal, padding, length)
    x = sentence_embeddings()
    _, weights = scaled_dot_product_attention(x, x, x, mask=mask)
    return mask, weights


class MaskExplorer(Explorer):
    """Checkboxes for the causal and the padding mask, a slider for the real length.

    ``figure.axes[0]`` is the heatmap of the weights (``images[0]``), ``figure.axes[1]``
    the bar chart of the row sums (one bar per query row, in ``patches``).
    """

    figsize = (8.5, 3.6)

    def __init__(self):
        n = len(SENTENCE)
        super().__init__({
            "causal": widgets.Checkbox(value=True, description="causal mask"),
            "padding": widgets.Checkbox(value=False, description="padding mask"),
            "length": widgets.IntSlider(value=4, min=1, max=n, description="real tokens"),
        })

    @staticmethod
    def token_labels(padding: bool, length: int):
        return [w if not padding or i < length else "<pad>" for i, w in enumerate(SENTENCE)]

    def draw(self, fig, causal, padding, length):
        mask, weights = masked_self_attention_weights(causal, padding, length)
        n = len(SENTENCE)
        labels = self.token_labels(padding, length)
        ax_w, ax_s = fig.subplots(1, 2, width_ratios=[1.3, 1])
        im = ax_w.imshow(weights, vmin=0.0, vmax=1.0, cmap="viridis")
        for i, j in zip(*np.nonzero(~mask)):
            ax_w.text(j, i, "×", ha="center", va="center", color="white", fontsize=9)
        ax_w.set_xticks(range(n), labels, rotation=45)
        ax_w.set_yticks(range(n), labels)
        ax_w.set_xlabel("key (attended to)")
        ax_w.set_ylabel("query (attending)")
        which = [name for name, on in (("causal", causal), (f"padding, {length} real", padding)) if on]
        ax_w.set_title("weights, mask: " + (" + ".join(which) if which else "none"))
        fig.colorbar(im, ax=ax_w, shrink=0.8, label="weight")
        ax_s.bar(range(n), weights.sum(axis=-1), color="tab:blue")
        ax_s.axhline(1.0, color="black", linestyle="--", linewidth=1)
        ax_s.set_ylim(0, 1.2)
        ax_s.set_xticks(range(n), labels, rotation=45)
        ax_s.set_xlabel("query row")
        ax_s.set_ylabel("sum of the row's weights")
        ax_s.set_title("row sums (masked before softmax)")
