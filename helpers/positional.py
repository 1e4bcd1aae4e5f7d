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

from ._backend import as_int, as_real, creation_options, is_half


def _check_sizes(func, n_positions, d_model):
    n_positions = as_int(func, "n_positions", n_positions, 1)
    d_model = as_int(func, "d_model", d_model, 1)
    if d_model % 2:
        raise ValueError(f"{func}: d_model must be even (sine/cosine pairs), got {d_model}")
    return n_positions, d_model


def _angle_dtype(xp, dtype, kwargs):
    """The dtype the angles are computed in: the table's own, except for float16 and
    bfloat16, whose positions above 2048 (256 for bfloat16) are not even representable:
    those use float64 (float32 on Apple's MPS, which has no float64) and are rounded once."""
    if not is_half(dtype):
        return dtype
    device = kwargs.get("device")
    return xp.float32 if getattr(device, "type", None) == "mps" else xp.float64


def _frequencies(xp, d_model, dtype, kwargs):
    two_i = xp.arange(0, d_model, 2, dtype=dtype, **kwargs)                 # (d_model/2,)
    return xp.exp(two_i * (-math.log(10000.0) / d_model))                   # (d_model/2,)


def frequencies(d_model: int, backend: str = "numpy", dtype=None, device=None):
    """omega_i = 10000^(-2i/d_model) for i = 0 .. d_model/2 - 1 (radians per position).

    dtype: NumPy default float64; torch default torch.get_default_dtype() (float16 and
    bfloat16: computed in float64 and rounded once)."""
    _, d_model = _check_sizes("frequencies", 1, d_model)
    xp, dtype, kwargs = creation_options("frequencies", backend, dtype, device)
    omega = _frequencies(xp, d_model, _angle_dtype(xp, dtype, kwargs), kwargs)     # (d_model/2,)
    return xp.astype(omega, dtype)


def sinusoidal_positional_encoding(n_positions: int, d_model: int, backend: str = "numpy",
                                   dtype=None, device=None):
    """The sinusoidal positional-encoding table PE, shape (n_positions, d_model).

    Formula: PE[pos, 2i] = sin(pos * omega_i), PE[pos, 2i+1] = cos(pos * omega_i),
    omega_i = 10000^(-2i/d_model). Even columns hold sines, odd columns cosines.
    n_positions, d_model: positive Python or NumPy integers, d_model even.
    dtype: NumPy default float64; torch default torch.get_default_dtype(). A float16 or
    bfloat16 table is computed in float64 and rounded once, so it is as accurate as its
    dtype allows even at positions that dtype cannot count to.
    Derived in chapter 5 (Maganga (2024), §2; Métwalli and Elhefny, §4; Laurent describes it
    in words).
    """
    func = "sinusoidal_positional_encoding"
    n_positions, d_model = _check_sizes(func, n_positions, d_model)
    xp, dtype, kwargs = creation_options(func, backend, dtype, device)
    angle_dtype = _angle_dtype(xp, dtype, kwargs)
    pos = xp.arange(n_positions, dtype=angle_dtype, **kwargs)               # (n,)
    angles = pos[:, None] * _frequencies(xp, d_model, angle_dtype, kwargs)[None, :]  # (n, d/2)
    # interleave: column 2i = sin, column 2i+1 = cos
    table = xp.reshape(xp.stack([xp.sin(angles), xp.cos(angles)], axis=-1), (n_positions, d_model))
    return xp.astype(table, dtype)                                          # (n, d_model)


def positional_rotation(k, d_model: int, backend: str = "numpy", dtype=None, device=None):
    """M_k (d_model, d_model) with PE[pos + k] = PE[pos] @ M_k for every pos.

    Block i (rows and columns 2i, 2i+1) is the 2x2 rotation by the angle k omega_i,
    written for row vectors: [[cos, -sin], [sin, cos]]. It depends on k only; k is any
    finite real number (an integer offset in the chapter).
    """
    func = "positional_rotation"
    k = as_real(func, "k", k, allowed="a finite number (the offset in positions)")
    _, d_model = _check_sizes(func, 1, d_model)
    xp, dtype, kwargs = creation_options(func, backend, dtype, device)
    angle_dtype = _angle_dtype(xp, dtype, kwargs)
    theta = _frequencies(xp, d_model, angle_dtype, kwargs) * k              # (d_model/2,)
    c, s = xp.astype(xp.cos(theta), dtype), xp.astype(xp.sin(theta), dtype)
    m = xp.zeros((d_model, d_model), dtype=dtype, **kwargs)                 # (d_model, d_model)
    even = xp.arange(0, d_model, 2, **kwargs)                               # (d_model/2,)
    m[even, even], m[even, even + 1] = c, -s
    m[even + 1, even], m[even + 1, even + 1] = s, c
    return m
