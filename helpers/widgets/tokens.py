"""Chapter 1's explorer: watch byte-pair encoding cut a sentence into fewer, longer tokens.

The learner moves a slider (how many of the learned merges to use) and picks a
sentence; the figure shows

* top: the sentence as a row of coloured boxes, one per token, each as wide as the
  token has characters (a space is drawn as ``␣``);
* bottom: the number of tokens of that sentence against the number of merges, with the
  current setting marked; it never goes up, because a merge only joins tokens.

The title gives the vocabulary size |V| and the compression ratio (characters per
token). Everything drawn comes from :func:`bpe_setting`, a pure function of the controls'
values, which uses :class:`helpers.tokenizers.BytePairTokenizer`.
"""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np
from matplotlib.patches import Rectangle

from ..tokenizers import SAMPLE_TEXT, BytePairTokenizer
from .explorer import Explorer

# Sentences written for the course; every character occurs in SAMPLE_TEXT.
SAMPLE_SENTENCES = (
    "The keeper wrote the weather down every morning.",
    "Sailors and teachers read the old notebooks.",
    "Every evening the children counted the waves.",
    "Some winds were calm, some were stormy.",
    "Visitors asked about the lighthouse.",
)
ROW_WIDTH = 30          # characters per row of boxes before the row wraps
SPACE_MARK = "\u2423"   # ␣, how a space is shown inside a box


def bpe_setting(tokenizer: BytePairTokenizer, sentence: str, merges: int) -> dict:
    """What the explorer shows for ``merges`` merges of ``tokenizer`` applied to ``sentence``.

    Returns a dict with ``tokens`` (the strings), ``ids``, ``vocab_size``,
    ``characters`` (len(sentence)), ``ratio`` (characters per token) and ``curve``, the
    number of tokens of the sentence for 0, 1, ..., len(tokenizer.merges) merges.
    """
    smaller = tokenizer.with_merges(merges)
    tokens = smaller.segment(sentence)
    curve = np.array([len(tokenizer.with_merges(m).segment(sentence))
                      for m in range(len(tokenizer.merges) + 1)])
    return {"tokens": tokens, "ids": smaller.encode(sentence), "vocab_size": smaller.vocab_size,
            "characters": len(sentence), "ratio": len(sentence) / len(tokens), "curve": curve}


def token_boxes(tokens: list[str], row_width: int = ROW_WIDTH) -> list[tuple[float, float, int]]:
    """(x, row, width) of each token's box: tokens laid left to right, wrapping at row_width."""
    boxes, x, row = [], 0, 0
    for token in tokens:
        if x > 0 and x + len(token) > row_width:
            x, row = 0, row + 1
        boxes.append((x, row, len(token)))
        x += len(token)
    return boxes


class BPEExplorer(Explorer):
    """Controls: ``merges`` (IntSlider, 0 .. merges learned) and ``sentence`` (Dropdown).

    ``BPEExplorer(text=SAMPLE_TEXT, sentences=SAMPLE_SENTENCES, num_merges=200)`` trains
    the merges on ``text`` once (training stops early when no pair occurs twice); the
    slider then picks how many of them to use.
    """

    title = "Byte-pair encoding"
    figsize = (9.0, 5.0)

    def __init__(self, text: str = SAMPLE_TEXT, sentences=SAMPLE_SENTENCES, num_merges: int = 200,
                 merges: int = 20):
        sentences = tuple(sentences)
        if not sentences:
            raise ValueError("BPEExplorer: sentences must contain at least one sentence, got none")
        self.tokenizer = BytePairTokenizer().train(text, num_merges)
        for s in sentences:   # fail now, with the tokenizer's message, not inside a redraw
            self.tokenizer.encode(s)
        self.setting: dict = {}
        learned = len(self.tokenizer.merges)
        super().__init__({
            "merges": widgets.IntSlider(value=min(merges, learned), min=0, max=learned,
                                        description="merges", continuous_update=False),
            "sentence": widgets.Dropdown(options=sentences, value=sentences[0],
                                         description="sentence",
                                         layout=widgets.Layout(width="28em")),
        })

    def draw(self, fig, merges: int, sentence: str) -> None:
        setting = bpe_setting(self.tokenizer, sentence, merges)
        self.setting = setting
        ax_boxes, ax_curve = fig.subplots(2, 1, height_ratios=[1.3, 1])
        colors = ["#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69",
                  "#fccde5"]
        boxes = token_boxes(setting["tokens"])
        rows = max(row for _, row, _ in boxes) + 1
        for n, ((x, row, width), token) in enumerate(zip(boxes, setting["tokens"])):
            y = rows - 1 - row
            ax_boxes.add_patch(Rectangle((x, y + 0.1), width, 0.8, facecolor=colors[n % len(colors)],
                                         edgecolor="black", linewidth=0.8))
            ax_boxes.text(x + width / 2, y + 0.5, token.replace(" ", SPACE_MARK),
                          ha="center", va="center", fontsize=9, family="monospace")
        ax_boxes.set_xlim(0, ROW_WIDTH)
        ax_boxes.set_ylim(0, max(rows, 2))
        ax_boxes.set_axis_off()
        ax_boxes.set_title(f"{merges} merges: |V| = {setting['vocab_size']}, "
                           f"{len(setting['tokens'])} tokens for {setting['characters']} characters "
                           f"({setting['ratio']:.2f} characters per token)", fontsize=10)
        curve = setting["curve"]
        ax_curve.plot(np.arange(len(curve)), curve, color="C0", label="tokens in the sentence")
        ax_curve.plot([merges], [curve[merges]], "o", color="C3", label="this setting")
        ax_curve.set_xlabel("number of merges")
        ax_curve.set_ylabel("tokens in the sentence")
        ax_curve.set_title("More merges, fewer tokens: one merge never adds a token", fontsize=10)
        ax_curve.legend(loc="upper right", fontsize=8)

