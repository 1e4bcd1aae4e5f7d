"""Chapter 10's explorer: sparse attention patterns and what they cost.

Pick a pattern (sliding window, strided, global tokens, or a combination used by a
published model), its size and the number of tokens n, and optionally make it causal.
The left panel shows the boolean mask (True = query i may attend to key j, drawn dark);
its title gives the number of allowed pairs against the n^2 of dense attention. The
right panel shows how that number grows with n for the chosen size, against n^2. The
mask comes from :func:`sparse_pattern_mask`, a pure function of the controls' values,
built from the masks of :mod:`helpers.efficient_attention`.
"""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from ..efficient_attention import global_tokens_mask, sliding_window_mask, strided_mask
from .explorer import Explorer

PATTERNS = (
    "sliding window",            # |i - j| <= size
    "strided",                   # (i - j) mod size == 0
    "global tokens",             # i < size or j < size
    "window + 1 global token",   # Longformer-like: |i - j| <= size, or i or j is token 0
    "window + strided",          # Sparse Transformer: |i - j| < size, or (i - j) mod size == 0
)
N_MAX = 64


def sparse_pattern_mask(pattern: str, n: int, size: int, causal: bool = False):
    """The boolean (n, n) mask of one of :data:`PATTERNS`; ``size`` is its one parameter.

    "sliding window": sliding_window_mask(n, size); "strided": strided_mask(n, size);
    "global tokens": global_tokens_mask(n, size); "window + 1 global token":
    sliding_window_mask(n, size) | global_tokens_mask(n, 1); "window + strided":
    sliding_window_mask(n, size - 1) | strided_mask(n, size) (the two heads of the
    Sparse Transformer, Child et al. 2019, merged). ``causal`` intersects each part
    with the causal mask.
    """
    if pattern not in PATTERNS:
        raise ValueError(f"sparse_pattern_mask: pattern must be one of {PATTERNS}, got {pattern!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"sparse_pattern_mask: size must be a positive integer, got {size!r}")
    size = int(size)
    if pattern == "sliding window":
        return sliding_window_mask(n, size, causal)
    if pattern == "strided":
        return strided_mask(n, size, causal)
    if pattern == "global tokens":
        return global_tokens_mask(n, size, causal)
    if pattern == "window + 1 global token":
        return sliding_window_mask(n, size, causal) | global_tokens_mask(n, 1, causal)
    return sliding_window_mask(n, size - 1, causal) | strided_mask(n, size, causal)


def allowed_pairs_by_n(pattern: str, size: int, causal: bool, n_max: int = N_MAX):
    """(n values 1..n_max, allowed pairs of the pattern at each n), NumPy integer arrays."""
    ns = np.arange(1, n_max + 1)
    counts = np.array([int(sparse_pattern_mask(pattern, int(m), size, causal).sum()) for m in ns])
    return ns, counts


class SparseAttentionExplorer(Explorer):
    """Dropdown for the pattern, sliders for its size and for n, a checkbox for causal.

    ``figure.axes[0]``: the mask as an image (``images[0]``, 1 = allowed), titled
    "allowed pairs: <count> of n² = <n*n> (<percent>%)". ``figure.axes[1]``: allowed
    pairs against n for this pattern (``lines[0]``) and n² (``lines[1]``); the current n is
    marked (``lines[2]``).
    """

    figsize = (9.0, 4.0)

    def __init__(self, pattern: str = "sliding window", n: int = 32, size: int = 3,
                 causal: bool = False):
        super().__init__({
            "pattern": widgets.Dropdown(options=list(PATTERNS), value=pattern, description="pattern"),
            "size": widgets.IntSlider(value=size, min=1, max=16, description="w / stride / g"),
            "n": widgets.IntSlider(value=n, min=4, max=N_MAX, description="n tokens"),
            "causal": widgets.Checkbox(value=causal, description="causal"),
        })

    def draw(self, fig, pattern, size, n, causal):
        mask = sparse_pattern_mask(pattern, n, size, causal)
        count = int(mask.sum())
        ax_mask, ax_cost = fig.subplots(1, 2, width_ratios=[1.0, 1.3])
        ax_mask.imshow(mask.astype(np.int64), cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
        ax_mask.set_title(f"allowed pairs: {count} of n² = {n * n} ({100 * count / (n * n):.1f}%)",
                          fontsize=10)
        ax_mask.set_xlabel("key position j")
        ax_mask.set_ylabel("query position i")
        ns, counts = allowed_pairs_by_n(pattern, size, causal)
        ax_cost.plot(ns, counts, label=f"{pattern}{' (causal)' if causal else ''}, size {size}")
        ax_cost.plot(ns, ns * ns, "--", color="grey", label="dense: n²")
        ax_cost.plot([n], [count], "o", color="C3", label=f"n = {n}")
        ax_cost.set_xlabel("sequence length n (tokens)")
        ax_cost.set_ylabel("allowed (query, key) pairs")
        ax_cost.set_title("cost ∝ allowed pairs × d", fontsize=10)
        ax_cost.legend(fontsize=8)
