"""Chapter 7's explorer: where the parameters of an encoder-decoder Transformer go.

Sliders for d_model, d_ff, the number of layers N per stack and the vocabulary size, and a
checkbox for tied embeddings (one table shared by the source embedding, the target
embedding and the pre-softmax layer, as in the paper). The figure is one stacked bar of
the parameter count, part by part, in millions. The counts come from
:func:`helpers.layers.transformer_parameter_counts` (the formulas the chapter derives and
checks against nn.Transformer), so the explorer is a pure function of its controls.
Start at the paper's base model (d_model 512, d_ff 2048, N 6, vocabulary 37000) and
move one slider at a time.
"""
from __future__ import annotations

import ipywidgets as widgets

from ..layers import transformer_parameter_counts
from .explorer import Explorer

PART_COLORS = {
    "embeddings": "tab:gray",
    "encoder attention": "tab:blue",
    "encoder FFN": "tab:cyan",
    "encoder LayerNorms": "navy",
    "decoder self-attention": "tab:orange",
    "decoder cross-attention": "tab:red",
    "decoder FFN": "gold",
    "decoder LayerNorms": "saddlebrown",
    "final LayerNorms": "black",
    "output projection": "tab:purple",
}


class ParameterCountExplorer(Explorer):
    """Sliders d_model, d_ff, N, vocab and a checkbox tied.

    ``figure.axes[0]`` holds one stacked bar: one BarContainer in ``containers`` per part
    of the model, in the order of :data:`PART_COLORS`, labelled "part: x.xxM" and holding
    one Rectangle whose height is the part's count in millions. The title gives the total.
    """

    figsize = (7.5, 4.2)

    def __init__(self):
        super().__init__({
            "d_model": widgets.IntSlider(value=512, min=64, max=1024, step=64, description="d_model"),
            "d_ff": widgets.IntSlider(value=2048, min=256, max=8192, step=256, description="d_ff"),
            "N": widgets.IntSlider(value=6, min=1, max=12, description="N"),
            "vocab": widgets.IntSlider(value=37000, min=1000, max=64000, step=1000, description="vocab"),
            "tied": widgets.Checkbox(value=True, description="tied embeddings"),
        })
        controls = list(self.controls.values())
        self.widget.children = (widgets.HBox([widgets.VBox(controls[:3]), widgets.VBox(controls[3:])]),
                                self.image)

    def draw(self, fig, d_model, d_ff, N, vocab, tied):
        counts = transformer_parameter_counts(d_model, d_ff, N, vocab, tied_embeddings=tied)
        total = sum(counts.values())
        ax = fig.add_subplot(1, 1, 1)
        bottom = 0.0
        for part, color in PART_COLORS.items():
            height = counts[part] / 1e6
            ax.bar([0], [height], bottom=bottom, color=color, width=0.5,
                   label=f"{part}: {height:.2f}M")
            bottom += height
        ax.set_xlim(-0.5, 2.2)
        ax.set_xticks([])
        ax.set_ylabel("parameters (millions)")
        ax.set_title(f"d_model={d_model}, d_ff={d_ff}, N={N}, vocab={vocab}, "
                     f"{'tied' if tied else 'untied'}: total {total / 1e6:.2f}M")
        ax.legend(loc="center right", fontsize="small")
