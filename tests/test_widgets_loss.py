"""Drive chapter 8's cross-entropy explorer: the bars and the title follow the formulas."""
import math

import numpy as np
import torch

from helpers.widgets.loss import CrossEntropyExplorer, cross_entropy_state


def bars(explorer, axis, container=0):
    return np.asarray(explorer.figure.axes[axis].containers[container].datavalues)


def test_bars_are_softmax_target_and_their_difference():
    e = CrossEntropyExplorer(logits=(1.0, 0.0, -1.0, 2.0), target=1)
    z = torch.tensor([1.0, 0.0, -1.0, 2.0], dtype=torch.float64)
    p = torch.softmax(z, 0).numpy()
    np.testing.assert_allclose(bars(e, 0), p, rtol=1e-12)
    np.testing.assert_allclose(bars(e, 0, 1), [0, 1, 0, 0])
    np.testing.assert_allclose(bars(e, 1), p - np.array([0, 1, 0, 0]), rtol=1e-12, atol=1e-15)
    loss = torch.nn.functional.cross_entropy(z[None], torch.tensor([1])).item()
    assert f"{loss:.4f}" in e.figure.axes[0].get_title()


def test_controls_redraw_the_figure():
    e = CrossEntropyExplorer()
    draws = e.draws
    e.controls["z3"].value = 5.0
    e.controls["target"].value = 3
    e.controls["label_smoothing"].value = 0.2
    assert e.draws == draws + 3
    z = torch.tensor([2.0, 1.0, 0.0, 5.0], dtype=torch.float64)
    q = np.full(4, 0.05)
    q[3] += 0.8
    np.testing.assert_allclose(bars(e, 0, 1), q, rtol=1e-12)
    np.testing.assert_allclose(bars(e, 1), torch.softmax(z, 0).numpy() - q, rtol=1e-10, atol=1e-14)
    loss = torch.nn.functional.cross_entropy(z[None], torch.tensor([3]), label_smoothing=0.2).item()
    assert f"{loss:.4f}" in e.figure.axes[0].get_title()


def test_equal_logits_give_loss_ln_v_and_gradient_sums_to_zero():
    state = cross_entropy_state([0.3, 0.3, 0.3, 0.3], 2)
    assert math.isclose(state["loss"], math.log(4), rel_tol=1e-14)
    assert abs(state["grad"].sum()) < 1e-15
    assert state["grad"][2] == -0.75
