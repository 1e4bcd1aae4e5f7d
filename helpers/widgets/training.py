"""Chapter 11's interactive pieces: a sampling-temperature explorer and a live loss plot.

:class:`TemperatureExplorer` shows a trained language model's next-token distribution
p_i = softmax(z / T)_i over the top-k tokens (:func:`helpers.generate.next_token_probabilities`)
for a temperature T and a k chosen with sliders, next to a reference distribution (in chapter
11: the bigram table's row for the prompt's last character). Its figure is a pure function of
the controls.

:class:`LiveLossPlot` is a training callback (``helpers.trainer.train(..., callbacks=[...])``)
that redraws the loss curves in the notebook while the model trains.
"""
from __future__ import annotations

import io
import math

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

from ..generate import next_token_probabilities
from .explorer import Explorer


def readable(token: str) -> str:
    """A label that shows whitespace: ' ' -> '␣', '\\n' -> '\\\\n'."""
    return {" ": "␣", "\n": "\\n", "\t": "\\t"}.get(token, token)


def entropy_nats(p) -> float:
    """H(p) = -sum p_i ln p_i (0 ln 0 = 0)."""
    p = np.asarray(p, dtype=np.float64)
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


class TemperatureExplorer(Explorer):
    """Next-token probabilities softmax(logits / T), restricted to the top k, as bars.

    logits: (V,) the model's scores for the next token after ``prompt``; labels: V strings;
    reference: optional (V,) distribution drawn as outlines (e.g. a bigram row), named
    ``reference_label`` in the legend.
    Controls: "temperature" (T > 0) and "top_k" (0 = all V tokens).
    """

    title = "Sampling temperature"
    figsize = (7.5, 3.6)

    def __init__(self, logits, labels, prompt: str = "", reference=None,
                 reference_label: str = "reference distribution"):
        self.logits = torch.as_tensor(logits, dtype=torch.float64).detach().cpu()
        if self.logits.dim() != 1 or len(labels) != self.logits.shape[0]:
            raise ValueError(f"TemperatureExplorer: logits must have shape (V,) with V = len(labels) = {len(labels)}, "
                             f"got {tuple(self.logits.shape)}")
        self.labels = [readable(t) for t in labels]
        self.prompt = prompt
        self.reference = None if reference is None else np.asarray(reference, dtype=np.float64)
        if self.reference is not None and self.reference.shape != (len(labels),):
            raise ValueError(f"TemperatureExplorer: reference must have shape (V,) with V = len(labels) = "
                             f"{len(labels)}, got {self.reference.shape}")
        self.reference_label = reference_label
        self.order = np.argsort(-self.logits.numpy(), kind="stable")  # likeliest first, fixed
        self.probabilities = None
        v = self.logits.shape[0]
        super().__init__({
            "temperature": widgets.FloatLogSlider(value=1.0, base=10, min=-1.3, max=0.7, step=0.05,
                                                  description="T", readout_format=".2f"),
            "top_k": widgets.IntSlider(value=0, min=0, max=v, description="top-k (0 = all)"),
        })

    def distribution(self, temperature: float, top_k: int) -> np.ndarray:
        """softmax(logits / T) over the top_k likeliest tokens (all if top_k is 0)."""
        return next_token_probabilities(self.logits, temperature, top_k or None).numpy()

    def draw(self, fig: Figure, temperature: float, top_k: int) -> None:
        p = self.distribution(temperature, top_k)
        self.probabilities = p
        ax = fig.add_subplot(1, 1, 1)
        x = np.arange(len(self.order))
        ax.bar(x, p[self.order], color="tab:blue", label=f"model, T = {temperature:.2f}")
        if self.reference is not None:
            ax.bar(x, self.reference[self.order], fill=False, edgecolor="black", linewidth=1.2,
                   label=self.reference_label)
        ax.set_xticks(x, [self.labels[i] for i in self.order])
        ax.set_ylim(0, 1)
        ax.set_xlabel("next character (likeliest first)")
        ax.set_ylabel("probability")
        k = top_k or "all"
        ax.set_title(f"after {self.prompt[-12:]!r}: T = {temperature:.2f}, top-k = {k}, "
                     f"entropy {entropy_nats(p):.3f} nats")
        ax.legend(loc="upper right")


class LiveLossPlot:
    """Training callback: redraws train/validation loss against step while training runs.

    In a notebook the plot is one output that is updated in place (an IPython display
    handle); outside IPython it only records. ``baselines`` maps a label to a loss drawn
    as a horizontal line (e.g. {"uniform ln V": ..., "entropy rate": ...}).
    """

    def __init__(self, title: str = "training", baselines: dict | None = None, every: int = 1):
        self.title = title
        self.baselines = dict(baselines or {})
        self.every = every
        self.redraws = 0
        self.handle = None
        self.figure = Figure(figsize=(6.5, 3.2), dpi=90, layout="constrained")
        self._calls = 0

    def _draw(self, history):
        fig = self.figure
        fig.clear()
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(history.step, history.train_loss, label="train (mean of last steps)", color="tab:blue")
        if history.val_loss:
            ax.plot(history.eval_step, history.val_loss, "o-", label="validation", color="tab:orange")
        for (label, value), style in zip(self.baselines.items(), ("--", ":", "-.")):
            ax.axhline(value, linestyle=style, color="gray", label=f"{label} = {value:.3f}")
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats per token)")
        ax.set_title(self.title)
        ax.legend(loc="upper right", fontsize=8)
        self.redraws += 1
        return fig

    def _show(self):
        try:
            from IPython import get_ipython
            from IPython.display import Image, display
        except ImportError:
            return
        if get_ipython() is None:
            return
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        image = Image(data=buffer.getvalue(), format="png")
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)

    def on_log(self, history):
        self._calls += 1
        if self._calls % self.every == 0:
            self._draw(history)
            self._show()

    def on_end(self, history):
        self._draw(history)
        self._show()


def perplexity(loss_nats: float) -> float:
    """exp(loss): the effective number of equally likely choices per token."""
    return math.exp(loss_nats)
