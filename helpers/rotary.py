"""Rotary position embedding (RoPE): rotate queries and keys by their position (chapter 12).

Split the d features of a query or key into d/2 pairs. Pair i turns at the angular
frequency omega_i = theta^(-2i/d) radians per position, so the vector at position p has
pair i rotated by the angle p * omega_i:

    (a, b) -> (a cos(p omega_i) - b sin(p omega_i),  a sin(p omega_i) + b cos(p omega_i))

a counter-clockwise turn in the (a, b) plane. Rotations compose by adding angles and are
orthogonal, so after rotating q at position m and k at position n,

    rot(q, m) . rot(k, n) = q . rot(k, n - m)

depends on the two positions only through the offset n - m. With theta = 10000 the
frequencies are those of chapter 5's sinusoidal encoding (:func:`helpers.frequencies`).

Which features form pair i is a convention: ``interleaved=True`` pairs (2i, 2i+1), as the
RoFormer paper writes it; ``interleaved=False`` pairs (i, i + d/2), the "rotate half"
layout of GPT-NeoX and Llama code. The two differ by a fixed permutation of the features.
"""
from __future__ import annotations

import functools
import math
import numbers

import array_api_compat
from array_api_compat import is_torch_array

from ._backend import (as_int, as_real, creation_options, formula_namespace, is_half,
                       require_flag, require_float, require_ndim, shape)


def _check_theta(func, theta):
    return as_real(func, "theta", theta, 0.0, low_open=True,
                   allowed="a finite number > 0 (the base of the frequencies theta^(-2i/d))")


def _check_d(func, name, d):
    allowed = "an even integer >= 2 (features come in rotated pairs)"
    d = as_int(func, name, d, 2, allowed)
    if d % 2:
        raise ValueError(f"{func}: {name} must be {allowed}, got {d}")
    return d


def rotary_frequencies(d: int, theta: float = 10000.0, backend: str = "numpy", dtype=None,
                       device=None):
    """omega_i = theta^(-2i/d) for i = 0 .. d/2 - 1, radians per position; shape (d/2,).

    Pair i has wavelength 2 pi / omega_i: from 2 pi (i = 0) up to 2 pi theta^(1 - 2/d),
    just under 2 pi theta. dtype: NumPy default float64; torch default
    torch.get_default_dtype(). Derived in chapter 12.
    """
    func = "rotary_frequencies"
    d = _check_d(func, "d", d)
    theta = _check_theta(func, theta)
    xp, dtype, kw = creation_options(func, backend, dtype, device)
    work = xp.float64 if is_half(dtype) else dtype                   # half: computed in float64
    two_i = xp.arange(0, d, 2, dtype=work, **kw)                     # (d/2,): 0, 2, 4, ...
    omega = xp.exp(two_i * (-math.log(theta) / d))                   # same steps as helpers.frequencies
    return omega if work == dtype else xp.astype(omega, dtype)


def _positions_array(func, positions, x, xp):
    """positions as a 1-D integer array of x's library and device (or a named error)."""
    if isinstance(positions, (range, list, tuple)):
        values = list(positions)
        for value in values:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{func}: positions must be integers, got the element {value!r} "
                                f"({type(value).__name__}) in a {type(positions).__name__}")
        kw = {"device": x.device} if is_torch_array(x) else {}
        return xp.asarray([int(v) for v in values], dtype=xp.int64, **kw)
    formula_namespace(func, x=x, positions=positions)        # same library and device as x, or a named error
    if not xp.isdtype(positions.dtype, "integral"):
        raise TypeError(f"{func}: positions must be an integer array (token indices), "
                        f"got dtype {positions.dtype}")
    return positions


def _rotary_table(pos, d, theta, x, xp):
    """cos(p omega_i) and sin(p omega_i) for the positions pos (n,), in x's dtype: (n, d/2) each.

    The angles are formed in float64 (float32 on Apple's MPS, which has no float64)."""
    if is_torch_array(x):
        import torch

        angle_dtype = torch.float32 if x.device.type == "mps" else torch.float64
        omega = rotary_frequencies(d, theta, "torch", dtype=angle_dtype, device=x.device)
    else:
        angle_dtype = xp.float64
        omega = rotary_frequencies(d, theta, "numpy")
    angles = xp.astype(pos, angle_dtype)[:, None] * omega[None, :]   # (n, d/2)
    return xp.astype(xp.cos(angles), x.dtype), xp.astype(xp.sin(angles), x.dtype)


@functools.lru_cache(maxsize=64)
def _torch_rotary_table(start, n, d, theta, dtype, device):
    """:func:`_rotary_table` for positions start .. start + n - 1, remembered: a model asks
    for the same table in every layer at every step. Made outside inference mode, so a
    table first made while generating can later take part in training."""
    import torch

    with torch.inference_mode(False), torch.no_grad():
        x = torch.empty(0, dtype=dtype, device=device)
        pos = torch.arange(start, start + n, device=device)         # (n,)
        return _rotary_table(pos, d, theta, x, array_api_compat.array_namespace(x))


def apply_rotary(x, positions, theta: float = 10000.0, interleaved: bool = True):
    """Rotate pair i of x's features at position p by the angle p * theta^(-2i/d).

    Shapes: x (..., n, d) with d even (queries or keys, e.g. (B, h, n, d_k));
    positions (n,) integers, the position of each of the n rows: an integer array or
    tensor of x's library, or a Python range or list of ints. Returns (..., n, d).
    Pair i is features (2i, 2i+1) when interleaved (RoFormer) or (i, i + d/2) when not
    (GPT-NeoX / Llama); each pair (a, b) becomes (a cos - b sin, a sin + b cos).

    The angles p * omega_i are formed in float64 (float32 on Apple's MPS, which has no
    float64) and their cos and sin rounded to x's dtype, so large positions keep their
    precision in a float32 model. Derived in chapter 12.
    """
    func = "apply_rotary"
    xp = formula_namespace(func, x=x)
    require_ndim(func, "x", x, 2, "(..., n, d)")
    require_float(func, "x", x, xp)
    theta = _check_theta(func, theta)
    interleaved = require_flag(func, "interleaved", interleaved,
                               " (True: pairs (2i, 2i+1); False: pairs (i, i + d/2))")
    n, d = int(x.shape[-2]), int(x.shape[-1])
    if d % 2 or d == 0:
        raise ValueError(f"{func}: x has shape {shape(x)}: its last axis d = {d} must be even "
                         "and at least 2 (features are rotated in pairs)")
    # a model's call passes range(past, past + n): the same table at every layer and step, so
    # it is made once, and the positions need no array of their own
    remembered = is_torch_array(x) and isinstance(positions, range) and positions.step == 1
    pos = None if remembered else _positions_array(func, positions, x, xp)
    got = (len(positions),) if remembered else shape(pos)
    if got != (n,):
        raise ValueError(f"{func}: x has shape {shape(x)}, so positions must have shape ({n},) "
                         f"(one position per row), got {got}")
    if remembered:
        cos, sin = _torch_rotary_table(positions.start, n, d, theta, x.dtype, x.device)  # (n, d/2) each
    else:
        cos, sin = _rotary_table(pos, d, theta, x, xp)               # (n, d/2) each

    if interleaved:
        a, b = x[..., 0::2], x[..., 1::2]                            # (..., n, d/2) each
    else:
        a, b = x[..., : d // 2], x[..., d // 2:]                     # (..., n, d/2) each
    a_rot = a * cos - b * sin                                        # (..., n, d/2)
    b_rot = a * sin + b * cos                                        # (..., n, d/2)
    if interleaved:
        pairs = xp.stack([a_rot, b_rot], axis=-1)                    # (..., n, d/2, 2)
        return xp.reshape(pairs, shape(x))                           # (..., n, d): a0 b0 a1 b1 ...
    return xp.concat([a_rot, b_rot], axis=-1)                        # (..., n, d): a0 a1 ... b0 b1 ...
