"""Sinusoidal positional encoding, derived in chapter 5 (the paper's §3.5; Maganga (2024), §2;
Métwalli and Elhefny, §4).

    PE[pos, 2i]   = sin(pos / 10000^(2i / d_model))
    PE[pos, 2i+1] = cos(pos / 10000^(2i / d_model))

Pair i of the coordinates is a point on a circle turning at angular frequency
omega_i = 10000^(-2i/d_model) radians per position, so its wavelength 2 pi / omega_i runs
from 2 pi (i = 0) towards 10000 * 2 pi. Moving k positions on turns every pair by the
angle k omega_i: PE[pos + k] = PE[pos] M_k with M_k block-diagonal (see
:func:`positional_rotation`), whatever pos is.
"""
from __future__ import annotations

import math

from ._backend import backend_namespace


def _check_sizes(func, n_positions, d_model):
    for name, value in (("n_positions", n_positions), ("d_model", d_model)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{func}: {name} must be a positive integer, got {value!r}")
    if d_model % 2:
        raise ValueError(f"{func}: d_model must be even (sine/cosine pairs), got {d_model}")


def _creation_kwargs(xp, dtype, device):
    kwargs = {"dtype": xp.float64 if dtype is None and xp.__name__.endswith("numpy") else dtype}
    if device is not None:
        kwargs["device"] = device
    return {k: v for k, v in kwargs.items() if v is not None}


def frequencies(d_model: int, backend: str = "numpy", dtype=None, device=None):
    """omega_i = 10000^(-2i/d_model) for i = 0 .. d_model/2 - 1 (radians per position)."""
    _check_sizes("frequencies", 1, d_model)
    xp = backend_namespace("frequencies", backend)
    kw = _creation_kwargs(xp, dtype, device)
    two_i = xp.arange(0, d_model, 2, **kw)
    return xp.exp(two_i * (-math.log(10000.0) / d_model))


def sinusoidal_positional_encoding(n_positions: int, d_model: int, backend: str = "numpy",
                                   dtype=None, device=None):
    """The sinusoidal positional-encoding table PE, shape (n_positions, d_model).

    Formula: PE[pos, 2i] = sin(pos * omega_i), PE[pos, 2i+1] = cos(pos * omega_i),
    omega_i = 10000^(-2i/d_model). Even columns hold sines, odd columns cosines.
    dtype: NumPy default float64; torch default torch.get_default_dtype().
    Derived in chapter 5 (Maganga (2024), §2; Métwalli and Elhefny, §4; Laurent describes it
    in words).
    """
    _check_sizes("sinusoidal_positional_encoding", n_positions, d_model)
    xp = backend_namespace("sinusoidal_positional_encoding", backend)
    kw = _creation_kwargs(xp, dtype, device)
    pos = xp.arange(n_positions, **kw)
    angles = pos[:, None] * frequencies(d_model, backend, dtype, device)[None, :]
    # interleave: column 2i = sin, column 2i+1 = cos
    return xp.reshape(xp.stack([xp.sin(angles), xp.cos(angles)], axis=-1), (n_positions, d_model))


def positional_rotation(k, d_model: int, backend: str = "numpy", dtype=None, device=None):
    """M_k (d_model, d_model) with PE[pos + k] = PE[pos] @ M_k for every pos.

    Block i (rows and columns 2i, 2i+1) is the 2x2 rotation by the angle k omega_i,
    written for row vectors: [[cos, -sin], [sin, cos]]. It depends on k only.
    """
    _check_sizes("positional_rotation", 1, d_model)
    xp = backend_namespace("positional_rotation", backend)
    kw = _creation_kwargs(xp, dtype, device)
    theta = frequencies(d_model, backend, dtype, device) * k
    c, s = xp.cos(theta), xp.sin(theta)
    m = xp.zeros((d_model, d_model), **kw)
    even = xp.arange(0, d_model, 2, **({} if device is None else {"device": device}))
    m[even, even], m[even, even + 1] = c, -s
    m[even + 1, even], m[even + 1, even + 1] = s, c
    return m
