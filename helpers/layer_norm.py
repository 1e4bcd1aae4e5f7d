"""Layer normalisation, derived in chapter 6 (Ba, Kiros & Hinton 2016; Maganga (2024), §4).

    mu = mean(x),  sigma^2 = mean((x - mu)^2)          (biased: divide by d, not d - 1)
    LayerNorm(x) = (x - mu) / sqrt(sigma^2 + eps) * gamma + beta

over the last axis (the features of one token). eps sits *inside* the square root.
"""
from __future__ import annotations

from ._backend import namespace, require_float, require_ndim, require_torch, shape


def layer_norm(x, gamma, beta, eps: float = 1e-5, *, fused: bool = False):
    """LayerNorm over the last axis with the biased variance.

    Formula: (x - mu) / sqrt(sigma^2 + eps) * gamma + beta, mu and sigma^2 the mean and
    biased variance of each row. Shapes: x (..., d), gamma (d,), beta (d,) or None (no
    offset); returns (..., d). eps=1e-5 is PyTorch's default.
    fused: torch tensors only; ``F.layer_norm``, torch's one-kernel version of the same
    formula (tests/test_fused.py checks values and gradients). Derived in chapter 6.
    """
    func = "layer_norm"
    xp = namespace(func, x=x, gamma=gamma, beta=beta)
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
    if not eps >= 0:
        raise ValueError(f"{func}: eps must be >= 0, got {eps!r}")
    if fused:
        import torch.nn.functional as F
        return F.layer_norm(x, (d,), gamma, beta, eps)
    mu = xp.mean(x, axis=-1, keepdims=True)                        # (..., 1)
    centred = x - mu                                               # (..., d)
    var = xp.mean(centred * centred, axis=-1, keepdims=True)       # (..., 1)
    out = centred / xp.sqrt(var + eps) * gamma                     # (..., d)
    return out if beta is None else out + beta
