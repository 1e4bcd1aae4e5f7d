"""Softmax: turning scores into a probability distribution, derived in chapter 2.

    softmax(x)_i = exp(x_i) / sum_j exp(x_j)

The maximum is subtracted first (softmax is unchanged by adding a constant to every
score), so ``exp`` never overflows. Entries equal to ``-inf`` get probability 0; a row
whose entries are *all* ``-inf`` (everything masked) has no distribution at all and is
returned as all zeros instead of the NaN that ``0/0`` would give; see
:func:`helpers.scaled_dot_product_attention` for how that case is reported.

Every other slice that is not a list of finite scores or ``-inf`` has no distribution
either, and gives NaN in *every* entry, as ``torch.softmax`` does: a NaN anywhere in the
slice, or a ``+inf`` (exp(+inf) / sum is inf / inf). Never a finite number that is not a
probability.
"""
from __future__ import annotations

import math

from ._backend import check_axis, compute_dtype, formula_namespace, require_float


def softmax(x, axis: int = -1):
    """Softmax of ``x`` along ``axis``: non-negative, sums to 1 along that axis.

    Formula: softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m), m = max_j x_j.
    Shapes: any with at least one axis; the result has the shape and dtype of ``x``
    (float16 and bfloat16 are computed in float32 and rounded once, as torch does).
    Derived in chapter 2 (the *Mathematical Formulation* note's f(q, k_i) =
    exp(a(q, k_i)) / sum_j exp(a(q, k_j)); Métwalli and Elhefny, §5.4).

    Edge cases: a slice that is all ``-inf`` gives all zeros (not NaN; torch gives NaN);
    a slice holding a NaN or a ``+inf`` gives NaN everywhere (as torch); an empty axis
    gives an empty result. A 0-dimensional x or an axis out of range is a ValueError.
    """
    func = "softmax"
    xp = formula_namespace(func, x=x)
    require_float(func, "x", x, xp)
    axis = check_axis(func, "axis", axis, len(x.shape))
    if x.shape[axis] == 0:
        return x * 1                                               # nothing to normalise
    work, result = compute_dtype(xp, x)
    z = x if work == result else xp.astype(x, work)
    m = xp.max(z, axis=axis, keepdims=True)                        # NaN if the slice has one
    m = xp.where(m == -math.inf, xp.zeros_like(m), m)              # an all -inf slice: shift by 0
    e = xp.exp(z - m)                                              # +inf - +inf = NaN: no distribution
    total = xp.sum(e, axis=axis, keepdims=True)                    # 0 only for an all -inf slice
    p = e / xp.where(total == 0, xp.ones_like(total), total)
    return p if work == result else xp.astype(p, result)
