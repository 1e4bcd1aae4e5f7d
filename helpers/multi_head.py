"""Multi-head attention (seeds 000, 001, 003; the paper's §3.2.2).

    head_i = Attention(X_q W_i^Q, X_kv W_i^K, X_kv W_i^V)
    MultiHead = Concat(head_1, ..., head_h) W^O

The h projection matrices W_i^Q (d_model, d_k) sit side by side as column blocks of
one matrix W^Q (d_model, h d_k), so all heads are projected by one matrix product and
then split by a reshape: column block i of X_q W^Q is exactly X_q W_i^Q.
"""
from __future__ import annotations

from ._backend import broadcast_shapes, namespace, require_float, require_ndim, shape
from .attention import check_mask, scaled_dot_product_attention


def _split_heads(xp, x, num_heads):
    # (..., n, h*d) -> (..., h, n, d)
    *batch, n, hd = shape(x)
    x = xp.reshape(x, (*batch, n, num_heads, hd // num_heads))
    nb = len(batch)
    return xp.permute_dims(x, (*range(nb), nb + 1, nb, nb + 2))


def _merge_heads(xp, x):
    # (..., h, n, d) -> (..., n, h*d): the Concat of the heads
    *batch, h, n, d = shape(x)
    nb = len(batch)
    x = xp.permute_dims(x, (*range(nb), nb + 1, nb, nb + 2))
    return xp.reshape(x, (*batch, n, h * d))


def multi_head_attention(x_q, x_kv, w_q, w_k, w_v, w_o, num_heads, mask=None, *,
                         b_q=None, b_k=None, b_v=None, b_o=None):
    """Multi-head attention; returns ``(output, weights)``.

    Formula: Q = x_q W^Q + b_q, K = x_kv W^K + b_k, V = x_kv W^V + b_v; head i is
    scaled dot-product attention on column block i of Q, K, V; output =
    Concat(head_1..head_h) W^O + b_o. Self-attention: x_kv is x_q. Cross-attention:
    x_q from the decoder, x_kv the encoder's output.

    Shapes: x_q (..., n_q, d_model), x_kv (..., n_k, d_model); w_q, w_k (d_model, h*d_k);
    w_v (d_model, h*d_v); w_o (h*d_v, d_out); biases (optional) are 1-D of the matching
    width. Returns output (..., n_q, d_out) and weights (..., h, n_q, n_k).

    mask: boolean, broadcastable to (..., n_q, n_k), True where attending is allowed;
    the same mask is used by every head.

    Source: seed 000 §1, seed 001 "Multi-Head Attention", seed 003 §3.1 and §3.3.
    """
    func = "multi_head_attention"
    xp = namespace(func, x_q=x_q, x_kv=x_kv, w_q=w_q, w_k=w_k, w_v=w_v, w_o=w_o, mask=mask,
                   b_q=b_q, b_k=b_k, b_v=b_v, b_o=b_o)
    if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1:
        raise ValueError(f"{func}: num_heads must be a positive integer, got {num_heads!r}")
    require_ndim(func, "x_q", x_q, 2, "(..., n_q, d_model)")
    require_ndim(func, "x_kv", x_kv, 2, "(..., n_k, d_model)")
    for name, w in (("w_q", w_q), ("w_k", w_k), ("w_v", w_v), ("w_o", w_o)):
        if len(w.shape) != 2:
            raise ValueError(f"{func}: {name} must be a matrix, got shape {shape(w)}")
        require_float(func, name, w, xp)
    if w_q.shape[0] != x_q.shape[-1]:
        raise ValueError(f"{func}: x_q has shape {shape(x_q)} and w_q has shape {shape(w_q)}: "
                         "w_q needs one row per feature of x_q (d_model)")
    for name, w in (("w_k", w_k), ("w_v", w_v)):
        if w.shape[0] != x_kv.shape[-1]:
            raise ValueError(f"{func}: x_kv has shape {shape(x_kv)} and {name} has shape "
                             f"{shape(w)}: {name} needs one row per feature of x_kv")
    if w_k.shape[1] != w_q.shape[1]:
        raise ValueError(f"{func}: w_q has shape {shape(w_q)} and w_k has shape {shape(w_k)}: "
                         "they must have the same number of columns (h*d_k)")
    for name, w in (("w_q", w_q), ("w_v", w_v)):
        if w.shape[1] % num_heads:
            raise ValueError(f"{func}: {name} has {w.shape[1]} columns, which num_heads="
                             f"{num_heads} does not divide into equal heads")
    if w_o.shape[0] != w_v.shape[1]:
        raise ValueError(f"{func}: w_v has shape {shape(w_v)} and w_o has shape {shape(w_o)}: "
                         "w_o needs one row per column of w_v (h*d_v)")
    for name, b, width in (("b_q", b_q, w_q.shape[1]), ("b_k", b_k, w_k.shape[1]),
                           ("b_v", b_v, w_v.shape[1]), ("b_o", b_o, w_o.shape[1])):
        if b is not None and shape(b) != (width,):
            raise ValueError(f"{func}: {name} must have shape ({width},), got {shape(b)}")

    n_q, n_k = x_q.shape[-2], x_kv.shape[-2]
    if mask is not None:
        batch = broadcast_shapes(func, "the leading (batch) axes of x_q and x_kv",
                                 shape(x_q)[:-2], shape(x_kv)[:-2])
        check_mask(func, mask, xp, batch + (n_q, n_k))
        mask = xp.expand_dims(mask, axis=-3)  # the same mask for every head

    def project(x, w, b):
        y = xp.matmul(x, w)
        return y if b is None else y + b

    q = _split_heads(xp, project(x_q, w_q, b_q), num_heads)
    k = _split_heads(xp, project(x_kv, w_k, b_k), num_heads)
    v = _split_heads(xp, project(x_kv, w_v, b_v), num_heads)
    heads, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    return project(_merge_heads(xp, heads), w_o, b_o), weights
