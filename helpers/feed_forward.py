"""The position-wise feed-forward network, derived in chapter 6 (the paper's §3.3).

    FFN(x) = ReLU(x W1 + b1) W2 + b2

applied to each token's row on its own ("position-wise"), with d_ff > d_model: the first
layer *expands* the width (d_ff = 4 d_model in the paper; Laurent calls it a bottleneck, but
it is the opposite). Maganga (2024) §3 writes the formula for row vectors, as here.
Chapter 12 swaps the ReLU for a GELU (``activation="gelu"``) or the whole network for a
gated one (:func:`helpers.swiglu_feed_forward`).
"""
from __future__ import annotations

from ._backend import formula_namespace, require_flag, require_float, require_ndim, require_torch, shape

ACTIVATIONS = ("relu", "gelu")


def relu(x):
    """ReLU(x) = max(x, 0), element by element. As in torch.relu, NaN stays NaN and the
    derivative at exactly 0 is 0 (the zero branch is taken there). Float and integer
    arrays (as torch.relu); booleans are refused (TypeError)."""
    xp = formula_namespace("relu", x=x)
    if x.dtype == xp.bool or not xp.isdtype(x.dtype, ("integral", "real floating")):
        raise TypeError(f"relu: x must hold real numbers (floats or integers), got dtype {x.dtype}")
    return xp.where((x > 0) | xp.isnan(x), x, xp.zeros_like(x))


def feed_forward(x, w1, b1, w2, b2, *, activation: str = "relu", fused: bool = False):
    """Position-wise FFN: act(x w1 + b1) w2 + b2, act = ReLU (the paper) or GELU.

    Shapes: x (..., d_model), w1 (d_model, d_ff), b1 (d_ff,), w2 (d_ff, d_out), b2 (d_out,);
    returns (..., d_out). b1 and b2 may be None (a network without biases).
    Row-vector convention; the *Mathematical Formulation* note writes the same map for
    column vectors as W2 sigma(W1 z + b1) + b2.
    fused: torch tensors only; torch's own activation kernel (F.relu, F.gelu) instead of
    the formula (the same numbers). Derived in chapter 6.
    Empty sizes (no tokens, d_ff = 0, ...) give empty or zero results, as the matrix
    products do; torch tensors of different float dtypes or devices are refused by name.
    """
    func = "feed_forward"
    xp = formula_namespace(func, ("b1", "b2"), x=x, w1=w1, b1=b1, w2=w2, b2=b2)
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"{func}: activation must be one of {ACTIVATIONS}, got {activation!r}")
    if require_flag(func, "fused", fused):
        require_torch(func, "fused=True", x=x)
    require_ndim(func, "x", x, 1, "(..., d_model)")
    for name, a in (("x", x), ("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)):
        if a is not None:
            require_float(func, name, a, xp)
    for name, w in (("w1", w1), ("w2", w2)):
        if len(w.shape) != 2:
            raise ValueError(f"{func}: {name} must be a matrix, got shape {shape(w)}")
    if w1.shape[0] != x.shape[-1]:
        raise ValueError(f"{func}: x has shape {shape(x)} and w1 has shape {shape(w1)}: "
                         "w1 needs one row per feature of x (d_model)")
    if w2.shape[0] != w1.shape[1]:
        raise ValueError(f"{func}: w1 has shape {shape(w1)} and w2 has shape {shape(w2)}: "
                         "w2 needs one row per column of w1 (d_ff)")
    for name, b, width in (("b1", b1, w1.shape[1]), ("b2", b2, w2.shape[1])):
        if b is not None and shape(b) != (width,):
            raise ValueError(f"{func}: {name} must have shape ({width},), got {shape(b)}")
    pre = x @ w1 if b1 is None else x @ w1 + b1                    # (..., d_ff)
    if fused:
        import torch.nn.functional as F
        hidden = F.relu(pre) if activation == "relu" else F.gelu(pre)
    elif activation == "relu":
        hidden = relu(pre)                                         # (..., d_ff)
    else:
        from .activations import gelu
        hidden = gelu(pre)                                         # (..., d_ff)
    out = hidden @ w2                                              # (..., d_out)
    return out if b2 is None else out + b2
