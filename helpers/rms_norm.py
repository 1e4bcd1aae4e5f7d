"""Root-mean-square normalisation, LayerNorm without the mean (chapter 12).

    rms(x) = sqrt(mean(x^2) + eps)          over the last axis (the features of one token)
    RMSNorm(x) = x / rms(x) * gamma

Compared with :func:`helpers.layer_norm` it subtracts no mean and adds no beta: each row
is only rescaled to unit root-mean-square, then multiplied feature by feature by gamma.
On a row whose mean is zero the two agree (the variance *is* the mean square there).
eps sits inside the square root, as in LayerNorm.

The backward pass, derived by hand like chapter 8's :func:`helpers.backward.layer_norm_backward`,
is :func:`rms_norm_backward` below.
"""
from __future__ import annotations

import math

from array_api_compat import is_torch_array

from ._backend import (as_real, compute_dtype, formula_namespace, require_flag, require_float,
                       require_ndim, shape)
from .layer_norm import row_scale


def _check(func, x, gamma, eps, xp):
    require_ndim(func, "x", x, 1, "(..., d)")
    for name, a in (("x", x), ("gamma", gamma)):
        if a is not None:
            require_float(func, name, a, xp)
    d = x.shape[-1]
    if gamma is not None and shape(gamma) != (d,):
        raise ValueError(f"{func}: x has shape {shape(x)}, so gamma must have shape ({d},); "
                         f"got {shape(gamma)}")
    return as_real(func, "eps", eps, 0.0)


def _normalised(xp, x, eps):
    """(x_hat, s, root) with x_hat = x / sqrt(mean(x^2) + eps) (..., d) and the row's rms
    sqrt(mean(x^2) + eps) = s * root, both (..., 1). Each row is divided by the power of
    two s near its largest |x| first (exact; see :func:`helpers.layer_norm.row_scale`), so
    that x^2 cannot overflow: mean(x^2) + eps = s^2 (mean((x/s)^2) + eps/s/s)."""
    s = row_scale(xp, x)                                                    # (..., 1)
    z = x / s                                                               # (..., d) in [-2, 2]
    root = xp.sqrt(xp.mean(z * z, axis=-1, keepdims=True) + eps / s / s)    # (..., 1)
    x_hat = z * (1.0 / root)            # x * (1/r), bit for bit: the scaling by s is exact
    # a row holding +-inf (and no NaN) has r = inf: its finite entries become x / inf = +-0
    # and its infinite ones inf / inf = NaN, as in F.rms_norm (x / s would make all NaN)
    return xp.where(xp.isinf(s), x * 0.0, x_hat), s, root


def rms_norm(x, gamma, eps: float = 1e-6, *, fused: bool = False):
    """RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * gamma.

    Shapes: x (..., d), gamma (d,) or None (no scale); returns (..., d) of x's dtype.
    Models set their own eps (Llama 3's configuration: 1e-5); torch.nn.RMSNorm's default,
    eps=None, means torch.finfo(dtype).eps.

    fused=True (torch tensors only) calls torch.nn.functional.rms_norm with the same eps,
    PyTorch's own kernel; the formula path and the fused path compute the same function
    (tests/test_modern_formulas.py checks values and gradients).

    Edge cases (the formula path), as :func:`helpers.layer_norm`: no overflow of x^2 for
    any finite row (each row is scaled by a power of two first, which changes no bit of
    an ordinary result); float16/bfloat16 computed in float32 and rounded once; NaN or
    inf in a row gives NaN, a zero row with eps = 0 gives NaN (0/0), as F.rms_norm; empty
    sizes give an empty result. eps must be a finite number >= 0.

    Derived in chapter 12.
    """
    func = "rms_norm"
    xp = formula_namespace(func, ("gamma",), x=x, gamma=gamma)
    eps = _check(func, x, gamma, eps, xp)
    if require_flag(func, "fused", fused):
        if not is_torch_array(x):
            raise TypeError(f"{func}: fused=True calls torch.nn.functional.rms_norm and needs torch "
                            f"tensors; x is a {type(x).__name__}. Use fused=False for NumPy")
        import torch.nn.functional as F

        return F.rms_norm(x, (int(x.shape[-1]),), gamma, eps)          # (..., d)
    if math.prod(shape(x)) == 0:
        return x * 1                                                    # (..., d): nothing to normalise
    work, result = compute_dtype(xp, *[a for a in (x, gamma) if a is not None])
    x_hat, _, _ = _normalised(xp, x if x.dtype == work else xp.astype(x, work), eps)  # (..., d)
    if gamma is not None:
        x_hat = x_hat * (gamma if gamma.dtype == work else xp.astype(gamma, work))     # (..., d)
    return x_hat if x_hat.dtype == result else xp.astype(x_hat, result)


def rms_norm_backward(x, gamma, d_output, eps: float = 1e-6):
    """Gradients (dx, dgamma) of :func:`rms_norm`, derived by hand.

    Forward: r = sqrt(mean(x^2) + eps) per row, x_hat = x / r, y = x_hat * gamma.
    With g = dL/dx_hat = d_output * gamma and dr/dx_j = x_j / (d r):
        dx = (g - x_hat * mean(g * x_hat)) / r,
        dgamma = sum over rows of d_output * x_hat.
    LayerNorm's dx has one more term, - mean(g), the path through the mean that RMSNorm
    does not subtract.
    Shapes: x (..., d), gamma (d,), d_output (..., d); returns (..., d) and (d,).

    Derived in chapter 12.
    """
    func = "rms_norm_backward"
    xp = formula_namespace(func, x=x, gamma=gamma, d_output=d_output)
    if gamma is None:
        raise TypeError(f"{func}: gamma must be an array of shape (d,) (its gradient is returned), got None")
    eps = _check(func, x, gamma, eps, xp)
    require_float(func, "d_output", d_output, xp)
    if shape(d_output) != shape(x):
        raise ValueError(f"{func}: d_output must have the shape of x, {shape(x)}; "
                         f"got {shape(d_output)}")
    x_hat, s, root = _normalised(xp, x, eps)                                # (..., d), (..., 1), (..., 1)
    g = d_output * gamma                                                    # (..., d)
    d_x = (g - x_hat * xp.mean(g * x_hat, axis=-1, keepdims=True)) / root / s  # (..., d)
    rows = d_output * x_hat                                                 # (..., d)
    d_gamma = xp.sum(xp.reshape(rows, (-1, rows.shape[-1])), axis=0)         # (d,)
    return d_x, d_gamma
