"""Chapter 8's widget: a cross-entropy explorer for one position with four classes.

Sliders set the four logits z, a dropdown the target class, a slider the label smoothing
eps. The figure shows p = softmax(z) next to the target distribution
q = (1 - eps) onehot(target) + eps / V, the loss L = -sum_i q_i log p_i in the title, and
the gradient dL/dz = p - q as bars: positive bars are pushed down by gradient descent,
negative ones up. Derived in chapter 8 (the loss as Maganga (2024), §7, writes it).
"""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from ..backward import cross_entropy_backward
from ..loss import cross_entropy
from ..softmax import softmax
from .explorer import Explorer

NUM_CLASSES = 4


def cross_entropy_state(logits, target: int, label_smoothing: float = 0.0) -> dict:
    """Everything the explorer draws, as a pure function of the controls.

    logits: V numbers (one position); target: class index in 0..V-1;
    label_smoothing: eps in [0, 1]. Returns a dict with "probs" p = softmax(z) (V,),
    "target_dist" q (V,), "loss" L = -sum q log p (a float) and "grad" dL/dz = p - q (V,).
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 1 or z.size < 2:
        raise ValueError(f"cross_entropy_state: logits must be a 1-D list of at least 2 numbers, "
                         f"got shape {z.shape}")
    vocab = z.size
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < vocab:
        raise ValueError(f"cross_entropy_state: target must be a class index in 0..{vocab - 1}, "
                         f"got {target!r}")
    t = np.array([target])
    probs = softmax(z)
    target_dist = (1 - label_smoothing) * np.eye(vocab)[target] + label_smoothing / vocab
    loss = float(cross_entropy(z[None, :], t, label_smoothing=label_smoothing))
    grad = cross_entropy_backward(z[None, :], t, label_smoothing=label_smoothing)[0]
    return {"probs": probs, "target_dist": target_dist, "loss": loss, "grad": grad}


class CrossEntropyExplorer(Explorer):
    """Logit sliders z_0..z_3, a target dropdown and a label-smoothing slider.

    ``figure.axes[0]``: bars of p (container 0) and outlined bars of q (container 1);
    its title holds the loss. ``figure.axes[1]``: bars of the gradient p - q (container 0).
    """

    figsize = (8.0, 3.4)

    def __init__(self, logits=(2.0, 1.0, 0.0, -1.0), target: int = 0, label_smoothing: float = 0.0):
        controls = {f"z{i}": widgets.FloatSlider(value=float(v), min=-6.0, max=6.0, step=0.1,
                                                 description=f"z_{i}", continuous_update=False,
                                                 layout=widgets.Layout(width="240px"))
                    for i, v in enumerate(logits)}
        if len(controls) != NUM_CLASSES:
            raise ValueError(f"CrossEntropyExplorer: logits must hold {NUM_CLASSES} numbers, "
                             f"got {len(controls)}")
        controls["target"] = widgets.Dropdown(options=list(range(NUM_CLASSES)), value=target,
                                              description="target")
        controls["label_smoothing"] = widgets.FloatSlider(
            value=label_smoothing, min=0.0, max=0.5, step=0.05, description="smoothing eps",
            continuous_update=False, style={"description_width": "initial"})
        super().__init__(controls)
        sliders = [controls[f"z{i}"] for i in range(NUM_CLASSES)]
        self.widget = widgets.VBox([widgets.HBox(sliders[:2]), widgets.HBox(sliders[2:]),
                                    widgets.HBox([controls["target"], controls["label_smoothing"]]),
                                    self.image])

    def draw(self, fig, **values) -> None:
        logits = [values[f"z{i}"] for i in range(NUM_CLASSES)]
        state = cross_entropy_state(logits, values["target"], values["label_smoothing"])
        classes = np.arange(NUM_CLASSES)
        ax_p, ax_g = fig.subplots(1, 2)
        ax_p.bar(classes, state["probs"], color="tab:blue", label="p = softmax(z)")
        ax_p.bar(classes, state["target_dist"], fill=False, edgecolor="black", linewidth=1.5,
                 label="target q")
        ax_p.set_ylim(0, 1.05)
        ax_p.set_xticks(classes)
        ax_p.set_xlabel("class i")
        ax_p.set_ylabel("probability")
        ax_p.set_title(f"L = -sum q log p = {state['loss']:.4f}")
        ax_p.legend(loc="upper right", fontsize="small")
        colors = ["tab:red" if g > 0 else "tab:green" for g in state["grad"]]
        ax_g.bar(classes, state["grad"], color=colors)
        ax_g.axhline(0.0, color="black", linewidth=0.8)
        ax_g.set_ylim(-1.05, 1.05)
        ax_g.set_xticks(classes)
        ax_g.set_xlabel("class i")
        ax_g.set_ylabel("dL/dz_i")
        ax_g.set_title("gradient p - q")
