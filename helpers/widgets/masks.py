"""Chapter 3's explorer: switch the causal and the padding mask on and off, and apply the
mask the right way (on the scores, before the softmax) or the wrong way (on the weights,
after the softmax, as the *Mathematical Formulation* note's "f(q, k_i) = 0" reads).

The explorer runs masked self-attention Attention(X, X, X) on a short, fixed sentence and
shows the attention weights as a heatmap (masked cells are exactly 0 either way) next to a
bar chart of the row sums: 1 for every row when the mask acts before the softmax, less
than 1 for every row that had a masked key when it acts after. Each word's vector depends
on the word only (a repeated word has one vector, as in chapter 2's explorer and chapter
5's argument), so without a mask the two "the" rows are equal.

The numbers come from :func:`masked_self_attention_weights`, a pure function of the
controls' values, so a test can check them without a browser.
"""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from ..attention import causal_mask, padding_mask, scaled_dot_product_attention
from .attention import word_embedding
from .explorer import Explorer

SENTENCE = ("the", "cat", "sat", "on", "the", "mat")
D_MODEL = 4
WHERE = ("before", "after")   # the mask acts on the scores before the softmax / on the weights after it


def sentence_embeddings(words=SENTENCE, d_model: int = D_MODEL):
    """Token vectors X, shape (n, d_model), standing in for learned embeddings.

    Row i is the first ``d_model`` entries of chapter 2's ``word_embedding(words[i])``: a
    fixed random vector seeded by the word itself, so the same word always gets the same
    vector, wherever it stands.
    """
    if isinstance(words, str) or not all(isinstance(w, str) for w in words):
        raise TypeError(f"sentence_embeddings: words must be a sequence of strings, got {words!r}")
    if isinstance(d_model, bool) or not isinstance(d_model, (int, np.integer)) or not 1 <= d_model <= 16:
        raise ValueError(f"sentence_embeddings: d_model must be an integer in 1..16, got {d_model!r}")
    return np.stack([word_embedding(w)[:d_model] for w in words])     # (n, d_model)


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


def masked_self_attention_weights(causal: bool, padding: bool, length: int, where: str = "before"):
    """Weights (n, n) of self-attention Attention(X, X, X) on the fixed sentence, masked.

    Returns ``(mask, weights)``. ``where="before"`` (right): weights = softmax of
    X X^T / sqrt(d) with -inf where the mask is False, computed by
    :func:`helpers.scaled_dot_product_attention`; every row sums to 1. ``where="after"``
    (wrong, the note read literally): the unmasked softmax, then the masked weights set to
    0; a row with a masked key then sums to less than 1.
    """
    if where not in WHERE:
        raise ValueError(f"masked_self_attention_weights: where must be one of {WHERE}, got {where!r}")
    mask = combined_mask(causal, padding, length)
    x = sentence_embeddings()                                            # (n, d)
    if where == "before":
        _, weights = scaled_dot_product_attention(x, x, x, mask=mask)   # (n, n)
    else:
        _, unmasked = scaled_dot_product_attention(x, x, x)             # (n, n)
        weights = unmasked * mask                                        # (n, n)
    return mask, weights


class MaskExplorer(Explorer):
    """Checkboxes for the causal and the padding mask, a slider for the real length, and a
    toggle for where the mask acts (before the softmax, or after it).

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
            "where": widgets.ToggleButtons(
                options=[("mask the scores, then softmax (right)", "before"),
                         ("softmax, then zero the weights (wrong)", "after")],
                value="before", description="mask"),
        })

    @staticmethod
    def token_labels(padding: bool, length: int):
        return [w if not padding or i < length else "<pad>" for i, w in enumerate(SENTENCE)]

    def draw(self, fig, causal, padding, length, where):
        mask, weights = masked_self_attention_weights(causal, padding, length, where)
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
        ax_w.set_title("weights, mask: " + (" + ".join(which) if which else "none"), fontsize=10)
        fig.colorbar(im, ax=ax_w, shrink=0.8, label="weight")
        sums = weights.sum(axis=-1)
        ax_s.bar(range(n), sums, color="tab:blue" if where == "before" else "tab:red")
        ax_s.axhline(1.0, color="black", linestyle="--", linewidth=1)
        ax_s.set_ylim(0, 1.2)
        ax_s.set_xticks(range(n), labels, rotation=45)
        ax_s.set_xlabel("query row")
        ax_s.set_ylabel("sum of the row's weights")
        if where == "before":
            ax_s.set_title("row sums, masked before the softmax:\nall 1", fontsize=10)
        else:
            ax_s.set_title(f"row sums, zeroed after the softmax:\n{np.sum(sums < 1 - 1e-12)} of {n} rows below 1",
                           fontsize=10)
