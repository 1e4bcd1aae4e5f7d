"""Chapter 6's explorer: LayerNorm of a short vector, step by step.

Four sliders set the entries of one token's vector x (d = 4), three more set gamma, beta
(the same value for every feature, to keep the controls few) and eps. The figure shows x
with its mean mu and its spread mu +- sigma on the left, and LayerNorm(x) on the right.
Things to try: shift every x_i by the same amount (the output does not move), scale them
all (nor does it, until sigma^2 gets close to eps), raise eps (the output shrinks towards
beta). The numbers come from :func:`layer_norm_steps`, a pure function of the controls.
"""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from ..layer_norm import layer_norm
from .explorer import Explorer

INPUT_NAMES = ("x1", "x2", "x3", "x4")
DEFAULT_INPUT = (1.0, -0.5, 2.0, 0.5)


def layer_norm_steps(x, gamma: float, beta: float, eps: float) -> dict:
    """The intermediate values of LayerNorm for one vector x (d,), scalar gamma and beta.

    Returns mu (mean), var (biased variance: divide by d), x_hat = (x - mu)/sqrt(var + eps)
    and output = gamma * x_hat + beta (from :func:`helpers.layer_norm`).
    Derived in chapter 6.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size < 1:
        raise ValueError(f"layer_norm_steps: x must be a non-empty vector, got shape {x.shape}")
    if not eps >= 0:
        raise ValueError(f"layer_norm_steps: eps must be >= 0, got {eps!r}")
    d = x.size
    mu = float(np.mean(x))
    var = float(np.mean((x - mu) ** 2))
    output = layer_norm(x, np.full(d, float(gamma)), np.full(d, float(beta)), eps=float(eps))
    x_hat = layer_norm(x, np.ones(d), np.zeros(d), eps=float(eps))
    return {"mu": mu, "var": var, "x_hat": x_hat, "output": output}


class LayerNormExplorer(Explorer):
    """Sliders x1..x4, gamma, beta, eps (log scale).

    ``figure.axes[0]``: bars of x (``patches``), a line at mu; ``figure.axes[1]``: bars of
    LayerNorm(x), a line at beta. Titles give mu, sigma^2 and the output's mean and
    standard deviation.
    """

    figsize = (8.0, 3.4)

    def __init__(self):
        controls = {name: widgets.FloatSlider(value=v, min=-3.0, max=3.0, step=0.1, description=name)
                    for name, v in zip(INPUT_NAMES, DEFAULT_INPUT)}
        controls["gamma"] = widgets.FloatSlider(value=1.0, min=0.0, max=3.0, step=0.1, description="gamma")
        controls["beta"] = widgets.FloatSlider(value=0.0, min=-2.0, max=2.0, step=0.1, description="beta")
        controls["eps"] = widgets.FloatLogSlider(value=1e-5, base=10, min=-6, max=1, step=0.5,
                                                 description="eps")
        super().__init__(controls)
        first, second = list(self.controls.values())[:4], list(self.controls.values())[4:]
        self.widget.children = (widgets.HBox([widgets.VBox(first), widgets.VBox(second)]), self.image)

    def draw(self, fig, x1, x2, x3, x4, gamma, beta, eps):
        x = np.array([x1, x2, x3, x4])
        steps = layer_norm_steps(x, gamma, beta, eps)
        positions = np.arange(1, x.size + 1)
        ax_in, ax_out = fig.subplots(1, 2, sharey=True)
        ax_in.bar(positions, x, color="tab:blue")
        ax_in.axhline(steps["mu"], color="black", linestyle="--", label="mean $\\mu$")
        sigma = np.sqrt(steps["var"])
        ax_in.axhspan(steps["mu"] - sigma, steps["mu"] + sigma, color="tab:blue", alpha=0.12,
                      label="$\\mu \\pm \\sigma$")
        ax_in.set_title(f"input x: mu = {round(steps['mu'], 3) + 0.0:.3f}, sigma^2 = {steps['var']:.3f}")
        ax_out.bar(positions, steps["output"], color="tab:orange")
        ax_out.axhline(beta, color="black", linestyle=":", label="beta")
        out = steps["output"]
        mean, std = (round(float(v), 3) + 0.0 for v in (np.mean(out), np.std(out)))  # no "-0.000"
        ax_out.set_title(f"LayerNorm(x): mean = {mean:.3f}, std = {std:.3f}")
        for ax in (ax_in, ax_out):
            ax.set_xticks(positions)
            ax.set_xlabel("feature i")
            ax.axhline(0.0, color="gray", linewidth=0.5)
            ax.legend(loc="lower right", fontsize="small")
        ax_in.set_ylabel("value")
        ax_in.set_ylim(-7.5, 7.5)  # |output| <= 3 * sqrt(3) + 2 for d = 4
        fig.suptitle(f"gamma = {gamma:.2f}, beta = {beta:.2f}, eps = {eps:.0e}")
