"""Softmax: turning scores into a probability distribution, derived in chapter 2.

    softmax(x)_i = exp(x_i) / sum_j exp(x_j)

The maximum is subtracted first (softmax is unchanged by adding a constant to every
score), so ``exp`` never overflows. Entries equal to ``-inf`` get probability 0; a row
whose entries are *all* ``-inf`` (everything masked) has no distribution at all and is
returned as all zeros instead of the NaN that ``0/0`` would give; see
:func:`helpers.scaled_dot_product_attention` for how that case is reported.
"""
from __future__ import annotations

from ._backend import namespace, require_float


def softmax(x, axis: int = -1):
    """Softmax of ``x`` along ``axis``: non-negative, sums to 1 along that axis.

    Formula: softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m), m = max_j x_j.
    Shapes: any; the result has the shape of ``x``.
    Derived in chapter 2 (the *Mathematical Formulation* note's f(q, k_i) =
    exp(a(q, k_i)) / sum_j exp(a(q, k_j)); Métwalli and Elhefny, §5.4).
    A slice that is all ``-inf`` gives all zeros (not NaN).
    """
    xp = namespace("softmax", x=x)
    require_float("softmax", "x", x, xp)
    if not -len(x.shape) <= axis < max(len(x.shape), 1):
        raise ValueError(f"softmax: axis {axis} is out of range for x of shape {tuple(x.shape)}")
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))  # an all -inf slice: shift by 0
    e = xp.exp(x - m)
    total = xp.sum(e, axis=axis, keepdims=True)
    return e / xp.where(total > 0, total, xp.ones_like(total))
