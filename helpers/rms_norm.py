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

import numbers

from array_api_compat import is_torch_array

from ._backend import namespace, require_float, require_ndim, shape


def _check(func, x, gamma, eps, xp):
    require_ndim(func, "x", x, 1, "(..., d)")
    for name, a in (("x", x), ("gamma", gamma)):
        require_float(func, name, a, xp)
    d = x.shape[-1]
    if shape(gamma) != (d,):
        raise ValueError(f"{func}: x has shape {shape(x)}, so gamma must have shape ({d},); "
                         f"got {shape(gamma)}")
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps >= 0:
        raise ValueError(f"{func}: eps must be a number >= 0, got {eps!r}")


def _inverse_rms(xp, x, eps):
    # (..., 1): 1 / sqrt(mean(x^2) + eps), one number per row
    return 1.0 / xp.sqrt(xp.mean(x * x, axis=-1, keepdims=True) + eps)


def rms_norm(x, gamma, eps: float = 1e-6, *, fused: bool = False):
    """RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * gamma.

    Shapes: x (..., d), gamma (d,); returns (..., d). Models set their own eps (Llama 3's
    configuration: 1e-5); torch.nn.RMSNorm's default, eps=None, means torch.finfo(dtype).eps.

    fused=True (torch tensors only) calls torch.nn.functional.rms_norm with the same eps,
    PyTorch's own kernel; the formula path and the fused path compute the same function
    (tests/test_modern_formulas.py checks values and gradients).

    Derived in chapter 12.
    """
    func = "rms_norm"
    xp = namespace(func, x=x, gamma=gamma)
    _check(func, x, gamma, eps, xp)
    if fused:
        if not is_torch_array(x):
            raise TypeError(f"{func}: fused=True calls torch.nn.functional.rms_norm and needs torch "
                            f"tensors; x is a {type(x).__name__}. Use fused=False for NumPy")
        import torch.nn.functional as F

        return F.rms_norm(x, (int(x.shape[-1]),), gamma, float(eps))     # (..., d)
    return x * _inverse_rms(xp, x, eps) * gamma                             # (..., d)


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
    xp = namespace(func, x=x, gamma=gamma, d_output=d_output)
    _check(func, x, gamma, eps, xp)
    require_float(func, "d_output", d_output, xp)
    if shape(d_output) != shape(x):
        raise ValueError(f"{func}: d_output must have the shape of x, {shape(x)}; "
                         f"got {shape(d_output)}")
    inv_r = _inverse_rms(xp, x, eps)                                        # (..., 1)
    x_hat = x * inv_r                                                       # (..., d)
    g = d_output * gamma                                                    # (..., d)
    d_x = inv_r * (g - x_hat * xp.mean(g * x_hat, axis=-1, keepdims=True))  # (..., d)
    rows = d_output * x_hat                                                 # (..., d)
    d_gamma = xp.sum(xp.reshape(rows, (-1, rows.shape[-1])), axis=0)         # (d,)
    return d_x, d_gamma
