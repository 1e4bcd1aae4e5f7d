"""Layer normalisation, derived in chapter 6 (Ba, Kiros & Hinton 2016; Maganga (2024), §4).

    mu = mean(x),  sigma^2 = mean((x - mu)^2)          (biased: divide by d, not d - 1)
    LayerNorm(x) = (x - mu) / sqrt(sigma^2 + eps) * gamma + beta

over the last axis (the features of one token). eps sits *inside* the square root.

Computing the statistics safely. The squares (x - mu)^2 overflow long before x does: in
float16 (largest number 65504) a row [1000, -1000, 500, -500] has squared deviations of
10^6, which become inf and turn the whole row into zeros. Two precautions:

* float16 and bfloat16 rows are computed in float32 and rounded once at the end (what
  torch's own kernel does);
* each row is first divided by s, the power of two at or just below its largest |x|,
  and LayerNorm(x) = (x/s - mu/s) / sqrt(sigma^2/s^2 + eps/s^2): the same number, with
  every intermediate of order 1. Dividing by a power of two is exact, so for float32 and
  float64 rows that do not overflow the result is bit for bit the formula above (checked
  on random rows); for rows near the top of the float range (1e20 in float32) it is right
  where the plain formula, and F.layer_norm, give zeros.
"""
from __future__ import annotations

import math

from ._backend import (as_real, compute_dtype, formula_namespace, require_flag, require_float,
                       require_ndim, require_torch, shape)


def row_scale(xp, x):
    """s (..., 1): per row, the power of two at or just below max |x|.

    Dividing by s is exact and brings every entry into [-2, 2]. The smallest normal number
    is added before the logarithm, so that a row of zeros gets a tiny power of two rather
    than 2^-inf = 0 (it moves no other row's s by more than one power of two, which is as
    good). NaN or inf in a row gives s = NaN or inf, so the row's result is NaN, as in torch."""
    largest = xp.max(xp.abs(x), axis=-1, keepdims=True)                  # (..., 1)
    s = 2.0 ** xp.floor(xp.log2(largest + xp.finfo(x.dtype).smallest_normal))  # (..., 1)
    # floor's derivative is 0, so s is a constant for autograd: detach it (torch) and the
    # backward pass skips the zeros it would compute through abs and max
    return s.detach() if hasattr(s, "detach") else s


def standardise(xp, x, eps):
    """(x_hat, s, root): x_hat = (x - mu) / sqrt(sigma^2 + eps) (..., d), and the row's
    sqrt(sigma^2 + eps) = s * root, both (..., 1), computed on x / s (see the module)."""
    s = row_scale(xp, x)                                                 # (..., 1)
    z = x / s                                                            # (..., d) in [-2, 2]
    mu = xp.mean(z, axis=-1, keepdims=True)                              # (..., 1)
    centred = z - mu                                                     # (..., d)
    var = xp.mean(centred * centred, axis=-1, keepdims=True)             # (..., 1)
    root = xp.sqrt(var + eps / s / s)                                    # (..., 1)
    return centred / root, s, root


def layer_norm(x, gamma, beta, eps: float = 1e-5, *, fused: bool = False):
    """LayerNorm over the last axis with the biased variance.

    Formula: (x - mu) / sqrt(sigma^2 + eps) * gamma + beta, mu and sigma^2 the mean and
    biased variance of each row. Shapes: x (..., d), gamma (d,) or None (no scale), beta
    (d,) or None (no offset); returns (..., d) of x's dtype. eps=1e-5 is PyTorch's default.
    fused: torch tensors only; ``F.layer_norm``, torch's one-kernel version of the same
    formula (tests/test_fused.py checks values and gradients). Derived in chapter 6.

    Edge cases (the formula path): computed without overflow for any finite row (see the
    module); float16/bfloat16 in float32; a row with NaN or inf gives NaN, a constant row
    with eps = 0 gives NaN (0/0), as F.layer_norm; d = 0 or an empty batch give an empty
    result. Refused by name: eps that is not a finite number >= 0, torch tensors of
    different float dtypes (outside torch.autocast) or devices.
    """
    func = "layer_norm"
    xp = formula_namespace(func, ("gamma", "beta"), x=x, gamma=gamma, beta=beta)
    fused = require_flag(func, "fused", fused)
    if fused:
        require_torch(func, "fused=True", x=x)
    require_ndim(func, "x", x, 1, "(..., d)")
    for name, a in (("x", x), ("gamma", gamma), ("beta", beta)):
        if a is not None:
            require_float(func, name, a, xp)
    d = x.shape[-1]
    for name, p in (("gamma", gamma), ("beta", beta)):
        if p is not None and shape(p) != (d,):
            raise ValueError(f"{func}: x has shape {shape(x)}, so {name} must have shape ({d},); "
                             f"got {shape(p)}")
    eps = as_real(func, "eps", eps, 0.0)
    if fused:
        import torch.nn.functional as F
        return F.layer_norm(x, (d,), gamma, beta, eps)
    if math.prod(shape(x)) == 0:
        return x * 1                                                     # (..., d): nothing to normalise
    given = [a for a in (x, gamma, beta) if a is not None]
    work, result = compute_dtype(xp, *given)
    out, _, _ = standardise(xp, x if x.dtype == work else xp.astype(x, work), eps)  # (..., d)
    if gamma is not None:
        out = out * (gamma if gamma.dtype == work else xp.astype(gamma, work))
    if beta is not None:
        out = out + (beta if beta.dtype == work else xp.astype(beta, work))
    return out if out.dtype == result else xp.astype(out, result)
