"""helpers.widgets.training: the temperature explorer and the live loss plot, driven as a user would."""
import math

import numpy as np
import pytest
import torch

from helpers.trainer import History
from helpers.widgets.training import LiveLossPlot, TemperatureExplorer, entropy_nats, readable

LOGITS = torch.tensor([2.0, 0.5, -1.0, 1.0, 0.0])
LABELS = ["a", " ", "\n", "b", "c"]


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def bar_heights(explorer):
    return np.array([p.get_height() for p in explorer.figure.axes[0].patches[:5]])


def test_bars_follow_softmax_of_logits_over_temperature():
    explorer = TemperatureExplorer(LOGITS, LABELS, prompt="xyz")
    order = np.argsort(-LOGITS.numpy())
    for t in (1.0, 0.5, 2.0):
        explorer.controls["temperature"].value = t
        expected = softmax(LOGITS.numpy() / t)
        np.testing.assert_allclose(bar_heights(explorer), expected[order], rtol=1e-5)
        title = explorer.figure.axes[0].get_title()
        assert f"T = {t:.2f}" in title and f"entropy {entropy_nats(expected):.3f}" in title
    labels = [t.get_text() for t in explorer.figure.axes[0].get_xticklabels()]
    assert labels == ["a", "b", "␣", "c", "\\n"]  # likeliest first, whitespace made visible


def test_top_k_keeps_k_bars_and_renormalises():
    explorer = TemperatureExplorer(LOGITS, LABELS)
    explorer.controls["top_k"].value = 2
    heights = bar_heights(explorer)
    kept = softmax(np.array([2.0, 1.0]))
    np.testing.assert_allclose(heights, [kept[0], kept[1], 0, 0, 0], rtol=1e-5)
    explorer.controls["top_k"].value = 1
    np.testing.assert_allclose(bar_heights(explorer), [1, 0, 0, 0, 0])
    assert "top-k = 1" in explorer.figure.axes[0].get_title()


def test_extreme_temperatures_and_reference_outline():
    ref = np.array([0.5, 0.1, 0.0, 0.3, 0.1])
    explorer = TemperatureExplorer(LOGITS, LABELS, reference=ref)
    explorer.controls["temperature"].value = explorer.controls["temperature"].max  # T = 10^0.7
    hot = entropy_nats(explorer.probabilities)
    explorer.controls["temperature"].value = 10 ** explorer.controls["temperature"].min
    cold = entropy_nats(explorer.probabilities)
    assert cold < 0.01 < hot < math.log(5)
    outlines = explorer.figure.axes[0].patches[5:]
    np.testing.assert_allclose([p.get_height() for p in outlines], ref[np.argsort(-LOGITS.numpy())])
    with pytest.raises(ValueError, match="logits must have shape"):
        TemperatureExplorer(torch.zeros(3), LABELS)
    assert readable("x") == "x"


def test_reference_is_named_in_the_legend_and_checked():
    ref = np.array([0.2, 0.2, 0.2, 0.2, 0.2])
    explorer = TemperatureExplorer(LOGITS, LABELS, reference=ref, reference_label="bigram row (counts)")
    labels = [t.get_text() for t in explorer.figure.axes[0].get_legend().get_texts()]
    assert labels == ["model, T = 1.00", "bigram row (counts)"]
    default = TemperatureExplorer(LOGITS, LABELS, reference=ref)
    assert default.figure.axes[0].get_legend().get_texts()[1].get_text() == "reference distribution"
    no_reference = TemperatureExplorer(LOGITS, LABELS)
    assert len(no_reference.figure.axes[0].patches) == 5
    with pytest.raises(ValueError, match="reference must have shape"):
        TemperatureExplorer(LOGITS, LABELS, reference=np.ones(4) / 4)


def test_live_loss_plot_draws_the_history_and_baselines():
    plot = LiveLossPlot("t", {"uniform": 2.0, "bound": 0.5}, every=2)
    h = History(step=[10, 20], train_loss=[1.5, 1.0], eval_step=[20], val_loss=[1.1])
    plot.on_log(h)
    assert plot.redraws == 0  # every=2: the first call does not redraw
    plot.on_log(h)
    ax = plot.figure.axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.5, 1.0])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [1.1])
    assert sorted(line.get_ydata()[0] for line in ax.lines[2:]) == [0.5, 2.0]
    assert ax.get_ylabel() == "loss (nats per token)"
    plot.on_end(h)
    assert plot.redraws == 2
