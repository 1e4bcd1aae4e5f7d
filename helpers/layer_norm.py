"""Layer normalisation (seeds 000 §4, 002, 003 §3.4; Ba, Kiros & Hinton 2016).

    mu = mean(x),  sigma^2 = mean((x - mu)^2)          (biased: divide by d, not d - 1)
    LayerNorm(x) = (x - mu) / sqrt(sigma^2 + eps) * gamma + beta

over the last axis (the features of one token). eps sits *inside* the square root.
"""
from __future__ import annotations

from ._backend import namespace, require_float, require_ndim, shape


def layer_norm(x, gamma, beta, eps: float = 1e-5):
    """LayerNorm over the last axis with the biased variance.

    Formula: (x - mu) / sqrt(sigma^2 + eps) * gamma + beta, mu and sigma^2 the mean and
    biased variance of each row. Shapes: x (..., d), gamma (d,), beta (d,); returns (..., d).
    eps=1e-5 is PyTorch's default. Source: seed 000 §4; residual use in seed 003 §3.4.
    """
    func = "layer_norm"
    xp = namespace(func, x=x, gamma=gamma, beta=beta)
    require_ndim(func, "x", x, 1, "(..., d)")
    for name, a in (("x", x), ("gamma", gamma), ("beta", beta)):
        require_float(func, name, a, xp)
    d = x.shape[-1]
    for name, p in (("gamma", gamma), ("beta", beta)):
        if shape(p) != (d,):
            raise ValueError(f"{func}: x has shape {shape(x)}, so {name} must have shape ({d},); "
                             f"got {shape(p)}")
    if not eps >= 0:
        raise ValueError(f"{func}: eps must be >= 0, got {eps!r}")
    mu = xp.mean(x, axis=-1, keepdims=True)
    centred = x - mu
    var = xp.mean(centred * centred, axis=-1, keepdims=True)
    return centred / xp.sqrt(var + eps) * gamma + beta
