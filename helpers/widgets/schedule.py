"""Chapter 9's widget: the warm-up / inverse-square-root schedule with its peak marked.

    lr(step) = scale * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5),  step = 1, 2, ...

The two branches cross at step = warmup, where the rate peaks at
scale * (d_model * warmup)^-0.5. Derived in chapter 9 (the schedule of the paper, §5.3, and of
Maganga (2024), §5; scale = 1 there).
"""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from ..schedule import noam_lr
from .explorer import Explorer

MAX_STEP = 50_000


def schedule_curve(d_model: int, warmup: int, scale: float = 1.0, max_step: int = MAX_STEP):
    """Steps 1..max_step, the scaled learning rate at each, and the peak (step, rate).

    Returns ``(steps, rates, (peak_step, peak_rate))`` with rates = scale * noam_lr(steps)
    and the peak at (warmup, scale * (d_model * warmup)^-0.5).
    """
    if not scale > 0:
        raise ValueError(f"schedule_curve: scale must be > 0, got {scale!r}")
    steps = np.arange(1, max_step + 1)
    rates = scale * noam_lr(steps, d_model, warmup)
    return steps, rates, (warmup, scale * (d_model * warmup) ** -0.5)


class ScheduleExplorer(Explorer):
    """Controls d_model, warmup and scale; ``figure.axes[0].lines[0]`` is the curve,
    ``lines[1]`` the marked peak (one point)."""

    figsize = (7.0, 3.6)

    def __init__(self, d_model: int = 512, warmup: int = 4000, scale: float = 1.0):
        controls = {
            "d_model": widgets.Dropdown(options=[64, 128, 256, 512, 1024, 2048], value=d_model,
                                        description="d_model"),
            "warmup": widgets.IntSlider(value=warmup, min=500, max=10_000, step=500,
                                        description="warmup", continuous_update=False),
            "scale": widgets.FloatSlider(value=scale, min=0.25, max=4.0, step=0.25,
                                         description="scale", continuous_update=False),
        }
        super().__init__(controls)

    def draw(self, fig, d_model, warmup, scale) -> None:
        steps, rates, (peak_step, peak_rate) = schedule_curve(d_model, warmup, scale)
        ax = fig.subplots()
        ax.plot(steps, rates, color="tab:blue", label="scale x noam_lr(step)")
        ax.plot([peak_step], [peak_rate], "o", color="tab:red",
                label=f"peak {peak_rate:.3e} at step {peak_step}")
        ax.axvline(peak_step, color="tab:red", linestyle=":", linewidth=0.8)
        ax.set_xlabel("training step")
        ax.set_ylabel("learning rate")
        ax.set_title(f"d_model={d_model}, warmup={warmup}, scale={scale:g}")
        ax.set_ylim(0, 1.15 * peak_rate)
        ax.legend(loc="upper right")
