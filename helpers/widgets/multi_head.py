"""Chapter 4's explorer: the attention pattern of each head of one multi-head layer.

A short sentence is embedded with a fixed-seed table that gives each *word* one vector
(so both "the"s get the same row of X, as in chapter 1), optionally plus the sinusoidal
positional encoding of chapter 5, added explicitly and labelled. The projections W^Q, W^K,
W^V, W^O (each (d_model, d_model)) are fixed-seed random: the patterns show how one set of
matrices cut into h column blocks gives h different heads, not anything learned. Choosing
the number of heads h splits the same matrices into h blocks of width d_k = d_model / h; the
explorer shows the selected head's weights large and every head's weights small. The numbers
come from :func:`head_weights`, which calls :func:`helpers.multi_head_attention`.
"""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from ..multi_head import multi_head_attention
from ..positional import sinusoidal_positional_encoding
from .explorer import Explorer

SENTENCE = ("the", "cat", "sat", "on", "the", "mat")
VOCABULARY = ("the", "cat", "sat", "on", "mat")  # each word once, in order of first use
TOKEN_IDS = tuple(VOCABULARY.index(word) for word in SENTENCE)
D_MODEL = 8
HEAD_CHOICES = (1, 2, 4, 8)
SEED = 4


def layer_inputs(seed: int = SEED, positions: bool = False):
    """X (n, d_model) for SENTENCE and fixed-seed W^Q, W^K, W^V, W^O (d_model, d_model) each.

    X[t] is the embedding of the word at position t: a row of a fixed-seed table
    (len(VOCABULARY), d_model), so it depends on the word only. With ``positions=True`` the
    sinusoidal encoding PE (n, d_model) of chapter 5 is added: X[t] = E[word_t] + PE[t].
    The projections are scaled by 1/sqrt(d_model) so that the entries of Q and K have
    roughly unit variance; the table is scaled by 2 so that the heads' patterns are clearly
    different from uniform.
    """
    if not isinstance(positions, (bool, np.bool_)):
        raise TypeError(f"layer_inputs: positions must be True or False, got {positions!r}")
    rng = np.random.default_rng(seed)
    table = 2.0 * rng.normal(size=(len(VOCABULARY), D_MODEL))              # (V, d_model)
    w_q, w_k, w_v, w_o = (rng.normal(size=(D_MODEL, D_MODEL)) / np.sqrt(D_MODEL) for _ in range(4))
    x = table[list(TOKEN_IDS)]                                               # (n, d_model)
    if positions:
        x = x + sinusoidal_positional_encoding(len(SENTENCE), D_MODEL)      # (n, d_model)
    return x, w_q, w_k, w_v, w_o


def head_weights(num_heads: int, positions: bool = False):
    """Attention weights (h, n, n) of self-attention on the fixed sentence with h heads."""
    if num_heads not in HEAD_CHOICES:
        raise ValueError(f"head_weights: num_heads must be one of {HEAD_CHOICES} "
                         f"(divisors of d_model={D_MODEL}), got {num_heads!r}")
    x, w_q, w_k, w_v, w_o = layer_inputs(positions=positions)
    _, weights = multi_head_attention(x, x, w_q, w_k, w_v, w_o, num_heads)
    return weights


class MultiHeadExplorer(Explorer):
    """A dropdown for the number of heads, a slider for the head to show large, and a
    checkbox that adds the sinusoidal positions to the token embeddings.

    ``figure.axes[0]`` shows the selected head (``images[0]`` is ``weights[head]``);
    the next ``num_heads`` axes show every head small, in order; the last is the colorbar.
    """

    figsize = (9.0, 4.2)

    def __init__(self, num_heads: int = 2, positions: bool = False):
        self._quiet = False
        super().__init__({
            "num_heads": widgets.Dropdown(options=list(HEAD_CHOICES), value=num_heads,
                                          description="heads h"),
            "head": widgets.IntSlider(value=0, min=0, max=num_heads - 1, description="head i"),
            "positions": widgets.Checkbox(value=positions, description="add positions (PE)"),
        })

    def _changed(self, change) -> None:
        if self._quiet:
            return
        if change["owner"] is self.controls["num_heads"]:
            self._quiet = True  # clamping the slider must not redraw with a stale head
            try:
                self.controls["head"].max = change["new"] - 1
            finally:
                self._quiet = False
        self.redraw()

    def draw(self, fig, num_heads, head, positions):
        weights = head_weights(num_heads, positions)
        n = len(SENTENCE)
        grid = fig.add_gridspec(2, 2 + min(num_heads, 4),
                                width_ratios=[2.5, 2.5] + [1] * min(num_heads, 4))
        big = fig.add_subplot(grid[:, :2])
        image = big.imshow(weights[head], vmin=0.0, vmax=1.0, cmap="viridis")
        big.set_xticks(range(n), SENTENCE, rotation=45)
        big.set_yticks(range(n), SENTENCE)
        big.set_xlabel("key (attended to)")
        big.set_ylabel("query (attending)")
        big.set_title(f"head {head} of {num_heads} (d_k = {D_MODEL // num_heads})")
        fig.suptitle("input: word embeddings + sinusoidal positions" if positions else
                     "input: word embeddings only (both 'the' rows are equal)", fontsize=9)
        cols = min(num_heads, 4)
        rows_per_head = 2 if num_heads <= 4 else 1
        for i in range(num_heads):
            r, c = divmod(i, cols)
            ax = fig.add_subplot(grid[r * rows_per_head:(r + 1) * rows_per_head, 2 + c])
            ax.imshow(weights[i], vmin=0.0, vmax=1.0, cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"head {i}", fontsize=8, fontweight="bold" if i == head else "normal",
                         color="tab:red" if i == head else "black")
            if i == head:
                for side in ax.spines.values():
                    side.set_edgecolor("tab:red")
                    side.set_linewidth(2)
        fig.colorbar(image, ax=big, shrink=0.8, label="attention weight (each row sums to 1)")
