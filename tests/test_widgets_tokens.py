"""Chapter 1's BPE explorer (helpers/widgets/tokens.py), driven through its controls."""
import numpy as np
import pytest
from matplotlib.patches import Rectangle

from helpers.widgets.tokens import SAMPLE_SENTENCES, SPACE_MARK, BPEExplorer


@pytest.fixture(scope="module")
def explorer():
    return BPEExplorer()


def boxes(explorer):
    ax = explorer.figure.axes[0]
    rects = [p for p in ax.patches if isinstance(p, Rectangle)]
    texts = [t.get_text().replace(SPACE_MARK, " ") for t in ax.texts]
    return rects, texts


def test_zero_merges_shows_one_box_per_character(explorer):
    sentence = SAMPLE_SENTENCES[1]
    explorer.controls["sentence"].value = sentence
    explorer.controls["merges"].value = 0
    rects, texts = boxes(explorer)
    assert len(rects) == len(sentence) and all(r.get_width() == 1 for r in rects)
    assert texts == list(sentence)
    assert f"{len(sentence)} tokens for {len(sentence)} characters (1.00 characters per token)" \
        in explorer.figure.axes[0].get_title()


def test_more_merges_fewer_wider_boxes_that_still_spell_the_sentence(explorer):
    sentence = SAMPLE_SENTENCES[0]
    explorer.controls["sentence"].value = sentence
    most = explorer.controls["merges"].max
    assert most > 20
    explorer.controls["merges"].value = most
    rects, texts = boxes(explorer)
    assert "".join(texts) == sentence                          # decoding gives the sentence back
    assert sum(r.get_width() for r in rects) == len(sentence)  # widths count characters
    assert [r.get_width() for r in rects] == [len(t) for t in texts]
    n = len(rects)
    assert n < len(sentence) / 2
    title = explorer.figure.axes[0].get_title()
    assert f"{n} tokens for {len(sentence)} characters ({len(sentence) / n:.2f} characters per token)" in title
    assert f"{most} merges" in title


def test_curve_starts_at_the_character_count_never_rises_and_marks_the_setting(explorer):
    sentence = SAMPLE_SENTENCES[3]
    explorer.controls["sentence"].value = sentence
    explorer.controls["merges"].value = 15
    ax = explorer.figure.axes[1]
    curve = ax.lines[0].get_ydata()
    assert list(ax.lines[0].get_xdata()) == list(range(explorer.controls["merges"].max + 1))
    assert curve[0] == len(sentence)
    assert np.all(np.diff(curve) <= 0)
    x, y = ax.lines[1].get_data()
    assert list(x) == [15] and y[0] == curve[15] == len(boxes(explorer)[0])


def test_each_change_redraws(explorer):
    before = explorer.draws
    explorer.controls["merges"].value = 3 if explorer.controls["merges"].value != 3 else 4
    assert explorer.draws == before + 1


def test_a_sentence_with_an_unknown_character_is_refused_at_once():
    with pytest.raises(ValueError, match=r"'z' at position 4"):
        BPEExplorer(sentences=["The zebra."])
