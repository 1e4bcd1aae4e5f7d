"""Chapter 12's explorer: rotate a query and a key by their positions and watch the score.

One fixed random query q and key k (d features, seeded) are rotated with
:func:`helpers.rotary.apply_rotary`, q at position i and k at every position j = i + offset.
The learner picks

* theta, the base of the frequencies omega_m = theta^(-2m/d);
* the pairing: interleaved (2m, 2m+1) as in the RoFormer paper, or split halves (m, m + d/2)
  as in GPT-NeoX / Llama code;
* which frequency pairs are active (the others are zeroed in q and k);
* the query position i.

Left: the score rot(q, i) . rot(k, i + offset) against the offset, computed at the chosen
i, and dashed the same score written as a function of the offset alone,
sum_m Re(zq_m conj(zk_m) e^{-i offset omega_m}) with zq_m = a_m + i b_m the m-th pair of
q as a complex number (likewise zk_m). Moving i moves nothing: the two curves coincide
for every i. Right: the wavelength 2 pi / omega_m of every pair (log scale), the active
ones coloured, with the plotted offset range marked.

Everything drawn comes from :func:`rotary_setting`, a pure function of the controls.
"""
from __future__ import annotations

import math

import ipywidgets as widgets
import numpy as np

from ..rotary import apply_rotary, rotary_frequencies
from .explorer import Explorer

THETAS = (100.0, 1000.0, 10000.0, 500000.0, 1000000.0)


def pair_indices(d: int, interleaved: bool) -> tuple[np.ndarray, np.ndarray]:
    """The two feature indices of each pair m = 0 .. d/2 - 1: (2m, 2m+1) or (m, m + d/2)."""
    m = np.arange(d // 2)
    return (2 * m, 2 * m + 1) if interleaved else (m, m + d // 2)


def rotary_setting(theta: float, interleaved: bool, pairs: tuple, position: int, d: int = 32,
                   max_offset: int = 64, seed: int = 0) -> dict:
    """What the explorer shows.

    pairs: (first, last), the inclusive range of active pair indices. position: the query's
    position i (>= max_offset, so that every key position i + offset is >= 0).
    Returns q, k (d,) with the inactive pairs zeroed, offsets (-max_offset .. max_offset),
    score (rotated at positions i and i + offset), score_from_offset (the offset-only
    formula), omega and wavelength (d/2,), active (bool, d/2) and unrotated (q . k).
    """
    func = "rotary_setting"
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 2 or d % 2:
        raise ValueError(f"{func}: d must be an even integer >= 2, got {d!r}")
    if isinstance(max_offset, bool) or not isinstance(max_offset, (int, np.integer)) or max_offset < 1:
        raise ValueError(f"{func}: max_offset must be a positive integer, got {max_offset!r}")
    try:
        first, last = (int(p) for p in pairs)
    except (TypeError, ValueError):
        raise ValueError(f"{func}: pairs must be (first, last) pair indices, got {pairs!r}") from None
    if not 0 <= first <= last < d // 2:
        raise ValueError(f"{func}: pairs must satisfy 0 <= first <= last <= {d // 2 - 1} "
                         f"(d={d} has {d // 2} pairs), got {pairs!r}")
    if isinstance(position, bool) or not isinstance(position, (int, np.integer)) or position < max_offset:
        raise ValueError(f"{func}: position must be an integer >= max_offset = {max_offset} "
                         f"(so that every key position is >= 0), got {position!r}")
    d, max_offset, position = int(d), int(max_offset), int(position)
    rng = np.random.default_rng(seed)
    q, k = rng.normal(size=d), rng.normal(size=d)                      # (d,) each
    ia, ib = pair_indices(d, interleaved)
    active = np.zeros(d // 2, dtype=bool)
    active[first:last + 1] = True
    for vec in (q, k):
        vec[ia[~active]] = 0.0
        vec[ib[~active]] = 0.0
    offsets = np.arange(-max_offset, max_offset + 1)                   # (2 max_offset + 1,)
    q_rot = apply_rotary(q[None], [position], theta, interleaved)[0]   # (d,)
    keys = apply_rotary(np.tile(k, (len(offsets), 1)), position + offsets, theta, interleaved)
    score = keys @ q_rot                                               # (2 max_offset + 1,)
    omega = rotary_frequencies(d, theta)                               # (d/2,)
    zq, zk = q[ia] + 1j * q[ib], k[ia] + 1j * k[ib]                    # (d/2,) complex pairs
    score_from_offset = np.real((zq * np.conj(zk))[None, :]
                                * np.exp(-1j * offsets[:, None] * omega[None, :])).sum(axis=1)
    return {"q": q, "k": k, "offsets": offsets, "score": score,
            "score_from_offset": score_from_offset, "omega": omega,
            "wavelength": 2 * math.pi / omega, "active": active, "unrotated": float(q @ k)}


class RotaryExplorer(Explorer):
    """Controls: ``theta`` (Dropdown), ``pairing`` (Dropdown, True = interleaved),
    ``pairs`` (IntRangeSlider of active pair indices), ``position`` (IntSlider, the query's i).

    ``figure.axes[0]``: lines labelled "rotated at i and j", "function of the offset" and
    "no rotation"; ``figure.axes[1]``: one bar per pair (wavelengths), active ones in C1.
    """

    figsize = (11.0, 4.0)

    def __init__(self, d: int = 32, max_offset: int = 64, seed: int = 0, theta: float = 10000.0,
                 interleaved: bool = True, pairs: tuple = (0, 15), position: int = 64):
        self.d, self.max_offset, self.seed = d, max_offset, seed
        self.setting: dict = {}
        if theta not in THETAS:
            raise ValueError(f"RotaryExplorer: theta must be one of {THETAS}, got {theta!r}")
        rotary_setting(theta, interleaved, pairs, position, d, max_offset, seed)  # validate first
        super().__init__({
            "theta": widgets.Dropdown(options=[(f"{t:g}", t) for t in THETAS], value=theta,
                                      description="theta"),
            "pairing": widgets.Dropdown(options=[("interleaved (2m, 2m+1)", True),
                                                 ("split halves (m, m+d/2)", False)],
                                        value=interleaved, description="pairing"),
            "pairs": widgets.IntRangeSlider(value=tuple(pairs), min=0, max=d // 2 - 1,
                                            description="pairs m", continuous_update=False),
            "position": widgets.IntSlider(value=position, min=max_offset, max=max_offset + 1000,
                                          description="query i", continuous_update=False),
        })

    def draw(self, fig, theta, pairing, pairs, position) -> None:
        s = rotary_setting(theta, pairing, pairs, position, self.d, self.max_offset, self.seed)
        self.setting = s
        ax_score, ax_wave = fig.subplots(1, 2)
        ax_score.plot(s["offsets"], s["score"], color="C0", linewidth=2.5, alpha=0.6,
                      label=f"rotated at i = {position} and j = i + offset")
        ax_score.plot(s["offsets"], s["score_from_offset"], color="C3", linestyle="--",
                      label="function of the offset")
        ax_score.axhline(s["unrotated"], color="gray", linestyle=":", label="no rotation: q·k")
        ax_score.set_xlabel("offset j − i (positions)")
        ax_score.set_ylabel("score q_i · k_j")
        ax_score.set_title(f"theta = {theta:g}, pairs {pairs[0]}..{pairs[1]}: the score depends "
                           "on j − i only", fontsize=9)
        ax_score.legend(loc="best", fontsize=7)

        m = np.arange(self.d // 2)
        colors = np.where(s["active"], "C1", "lightgray")
        ax_wave.bar(m, s["wavelength"], color=colors)
        ax_wave.axhline(2 * self.max_offset, color="black", linestyle=":",
                        label=f"offset range plotted ({2 * self.max_offset})")
        ax_wave.set_yscale("log")
        ax_wave.set_xlabel("pair m")
        ax_wave.set_ylabel("wavelength 2π/ω_m (positions)")
        longest = s["wavelength"][s["active"]].max()
        ax_wave.set_title(f"wavelengths 2π to 2π·theta^(1−2/d); longest active: {longest:.4g}",
                          fontsize=9)
        ax_wave.legend(loc="upper left", fontsize=7)
