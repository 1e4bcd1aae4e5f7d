"""Chapter 5's explorer: the sinusoids of one coordinate pair, and what a shift by k does.

The learner picks a pair index i (coordinates 2i and 2i+1 of the encoding) and an offset
k; the figure shows

* left: PE[pos, 2i] = sin(pos omega_i) and PE[pos, 2i+1] = cos(pos omega_i) against the
  position, omega_i = 10000^(-2i/d_model); the title gives the wavelength 2 pi / omega_i;
* right: the dot product PE(pos) . PE(pos + k) = sum_i cos(k omega_i) against k (the same
  for every pos), the chosen pair's own term cos(k omega_i), and a dot at the chosen k.

Everything drawn comes from :func:`positional_setting`, a pure function of the controls'
values, which uses :func:`helpers.sinusoidal_positional_encoding` and
:func:`helpers.frequencies`.
"""
from __future__ import annotations

import math

import ipywidgets as widgets
import numpy as np

from ..positional import frequencies, sinusoidal_positional_encoding
from .explorer import Explorer


def positional_setting(pair: int, offset: int, d_model: int = 64, n_positions: int = 100,
                       max_offset: int = 100) -> dict:
    """What the explorer shows for pair index ``pair`` and offset ``offset``.

    Returns positions (n_positions,), sin and cos (the columns 2*pair and 2*pair+1 of the
    PE table), omega and wavelength of the pair, offsets 0..max_offset, dot (the dot
    product PE(0) . PE(k) for each offset k, equal to PE(pos) . PE(pos+k) for every pos),
    pair_term (cos(k omega_pair)) and dot_at_offset.
    """
    if isinstance(d_model, bool) or not isinstance(d_model, (int, np.integer)) or d_model < 2 or d_model % 2:
        raise ValueError(f"positional_setting: d_model must be an even integer >= 2, got {d_model!r}")
    if isinstance(pair, bool) or not isinstance(pair, (int, np.integer)) or not 0 <= pair < d_model // 2:
        raise ValueError(f"positional_setting: pair must be an integer in 0..{d_model // 2 - 1} "
                         f"(d_model={d_model} has {d_model // 2} sine/cosine pairs), got {pair!r}")
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or not 0 <= offset <= max_offset:
        raise ValueError(f"positional_setting: offset must be an integer in 0..{max_offset}, got {offset!r}")
    d_model, pair, offset = int(d_model), int(pair), int(offset)
    pe = sinusoidal_positional_encoding(max(n_positions, max_offset + 1), d_model)
    omega = float(frequencies(d_model)[pair])
    offsets = np.arange(max_offset + 1)
    dot = pe[: max_offset + 1] @ pe[0]          # PE(k) . PE(0) for k = 0..max_offset
    return {"positions": np.arange(n_positions), "sin": pe[:n_positions, 2 * pair],
            "cos": pe[:n_positions, 2 * pair + 1], "omega": omega,
            "wavelength": 2 * math.pi / omega, "offsets": offsets, "dot": dot,
            "pair_term": np.cos(offsets * omega), "dot_at_offset": float(dot[offset])}


class PositionalExplorer(Explorer):
    """Controls: ``pair`` (IntSlider, 0 .. d_model/2 - 1) and ``offset`` (IntSlider, 0 .. max_offset)."""

    title = "Sinusoidal positional encoding"
    figsize = (10.0, 4.0)

    def __init__(self, d_model: int = 64, n_positions: int = 100, max_offset: int = 100,
                 pair: int = 2, offset: int = 10):
        self.d_model, self.n_positions, self.max_offset = d_model, n_positions, max_offset
        self.setting: dict = {}
        positional_setting(pair, offset, d_model, n_positions, max_offset)  # validate first
        super().__init__({
            "pair": widgets.IntSlider(value=pair, min=0, max=d_model // 2 - 1,
                                      description="pair i", continuous_update=False),
            "offset": widgets.IntSlider(value=offset, min=0, max=max_offset,
                                        description="offset k", continuous_update=False),
        })

    def draw(self, fig, pair: int, offset: int) -> None:
        s = positional_setting(pair, offset, self.d_model, self.n_positions, self.max_offset)
        self.setting = s
        ax_wave, ax_dot = fig.subplots(1, 2)
        ax_wave.plot(s["positions"], s["sin"], color="C0", label=f"PE[pos, {2 * pair}] = sin")
        ax_wave.plot(s["positions"], s["cos"], color="C1", label=f"PE[pos, {2 * pair + 1}] = cos")
        ax_wave.set_xlabel("position pos")
        ax_wave.set_ylabel("value")
        ax_wave.set_ylim(-1.15, 1.45)
        ax_wave.set_title(f"pair i = {pair}: \u03c9 = {s['omega']:.4g} rad/position, "
                          f"wavelength {s['wavelength']:.4g} positions", fontsize=9)
        ax_wave.legend(loc="upper right", fontsize=8, ncol=2)

        ax_dot.plot(s["offsets"], s["dot"], color="C2", label="PE(pos)\u00b7PE(pos+k)")
        ax_dot.plot(s["offsets"], s["pair_term"], color="C0", linestyle="--",
                    label=f"pair {pair}'s term cos(k\u03c9)")
        ax_dot.plot([offset], [s["dot_at_offset"]], "o", color="C3", label="chosen k")
        ax_dot.set_xlabel("offset k (positions)")
        ax_dot.set_ylabel("dot product")
        ax_dot.set_title(f"PE(pos)\u00b7PE(pos+{offset}) = {s['dot_at_offset']:.4f} for every pos "
                         f"(d_model = {self.d_model})", fontsize=9)
        ax_dot.legend(loc="upper right", fontsize=8)
