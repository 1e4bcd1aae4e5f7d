"""The position-wise feed-forward network (seeds 000 §3, 001, 002; the paper's §3.3).

    FFN(x) = ReLU(x W1 + b1) W2 + b2

The same two-layer network is applied to every position (every row) separately. The
hidden width d_ff is *larger* than d_model (2048 vs 512 in the paper): an expansion, not
the "bottleneck" seed 002 calls it.
"""
from __future__ import annotations

from ._backend import namespace, require_float, require_ndim, shape


def relu(x):
    """ReLU(x) = max(x, 0), element by element."""
    xp = namespace("relu", x=x)
    return xp.where(x > 0, x, xp.zeros_like(x))


def feed_forward(x, w1, b1, w2, b2):
    """Position-wise FFN: ReLU(x w1 + b1) w2 + b2.

    Shapes: x (..., d_model), w1 (d_model, d_ff), b1 (d_ff,), w2 (d_ff, d_out), b2 (d_out,);
    returns (..., d_out). Row-vector convention (seed 000); seed 001 writes the same map
    for column vectors as W2 sigma(W1 z + b1) + b2.
    Source: seed 000 §3, seed 001 (encoder layer), seed 002 "Feed-Forward Network".
    """
    func = "feed_forward"
    xp = namespace(func, x=x, w1=w1, b1=b1, w2=w2, b2=b2)
    require_ndim(func, "x", x, 1, "(..., d_model)")
    for name, a in (("x", x), ("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)):
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
        if shape(b) != (width,):
            raise ValueError(f"{func}: {name} must have shape ({width},), got {shape(b)}")
    hidden = relu(xp.matmul(x, w1) + b1)
    return xp.matmul(hidden, w2) + b2
