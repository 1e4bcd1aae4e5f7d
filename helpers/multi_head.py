"""Multi-head attention, derived in chapter 4 (the paper's §3.2.2).

    head_i = Attention(X_q W_i^Q, X_kv W_i^K, X_kv W_i^V)
    MultiHead = Concat(head_1, ..., head_h) W^O

The h projection matrices W_i^Q (d_model, d_k) sit side by side as column blocks of
one matrix W^Q (d_model, h d_k), so all heads are projected by one matrix product and
then split by a reshape (:func:`split_heads`): column block i of X_q W^Q is exactly
X_q W_i^Q. :func:`merge_heads` is the Concat.

The same function serves every model of the course, through keyword options whose
defaults are the paper's layer:

* grouped-query attention (chapter 12): ``num_kv_heads`` key/value heads shared by the
  ``num_heads`` query heads, query head i using key/value head i // (h / h_kv);
* rotary position embeddings (chapter 12): ``rotary_theta`` rotates queries and keys;
* QK-norm (chapter 12): ``q_gamma``/``k_gamma`` RMS-normalise each head's queries and keys;
* ``causal``: the causal mask of chapter 3, for queries that may sit after cached keys;
* ``cache``: the keys and values of earlier tokens kept between calls (generation,
  chapter 11);
* ``fused``: torch's ``F.scaled_dot_product_attention`` instead of the explicit formula
  (chapter 10), with ``dropout`` on the attention weights during training.
"""
from __future__ import annotations

import array_api_compat

from ._backend import (as_int, as_real, broadcast_shapes, formula_namespace, require_flag,
                       require_float, require_ndim, require_torch, shape)
from .attention import check_mask, scaled_dot_product_attention


def split_heads(x, num_heads: int):
    """(..., n, h*d) -> (..., h, n, d): column block i of ``x`` becomes head i (chapter 4)."""
    xp = formula_namespace("split_heads", x=x)
    num_heads = as_int("split_heads", "num_heads", num_heads, 1)
    require_ndim("split_heads", "x", x, 2, "(..., n, h*d)")
    *batch, n, width = shape(x)
    if width % num_heads:
        raise ValueError(f"split_heads: x has {width} columns, which num_heads={num_heads} "
                         "does not divide into equal heads")
    x = xp.reshape(x, (*batch, n, num_heads, width // num_heads))   # (..., n, h, d)
    nb = len(batch)
    return xp.permute_dims(x, (*range(nb), nb + 1, nb, nb + 2))     # (..., h, n, d)


def merge_heads(x):
    """(..., h, n, d) -> (..., n, h*d): Concat(head_1, ..., head_h) (chapter 4)."""
    xp = formula_namespace("merge_heads", x=x)
    require_ndim("merge_heads", "x", x, 3, "(..., h, n, d)")
    *batch, h, n, d = shape(x)
    nb = len(batch)
    x = xp.permute_dims(x, (*range(nb), nb + 1, nb, nb + 2))        # (..., n, h, d)
    return xp.reshape(x, (*batch, n, h * d))                        # (..., n, h*d)


def causal_mask_after(n_q: int, n_k: int, xp, device=None):
    """Causal mask for n_q queries that come after n_k - n_q cached keys: boolean (n_q, n_k),
    True where key j is not later than query i, i.e. j <= (n_k - n_q) + i (chapter 3's
    mask, shifted by the cache length; with no cache it is ``causal_mask(n)``)."""
    kwargs = {} if device is None else {"device": device}
    query_pos = xp.arange(n_q, **kwargs)[:, None] + (n_k - n_q)     # (n_q, 1) absolute positions
    return xp.arange(n_k, **kwargs)[None, :] <= query_pos           # (n_q, n_k)


def multi_head_attention(x_q, x_kv, w_q, w_k, w_v, w_o, num_heads, mask=None, *,
                         b_q=None, b_k=None, b_v=None, b_o=None,
                         num_kv_heads=None, rotary_theta=None, q_gamma=None, k_gamma=None,
                         causal: bool = False, cache: dict | None = None, fused: bool = False,
                         dropout: float = 0.0):
    """Multi-head attention; returns ``(output, weights)``.

    Formula: Q = x_q W^Q + b_q, K = x_kv W^K + b_k, V = x_kv W^V + b_v; head i is
    scaled dot-product attention on column block i of Q and on column block
    i // (h / h_kv) of K and V; output = Concat(head_1..head_h) W^O + b_o.
    Self-attention: x_kv is x_q. Cross-attention: x_q from the decoder, x_kv the
    encoder's output. Derived in chapter 4 (grouped-query, rotary, QK-norm in chapter 12).

    Shapes: x_q (..., n_q, d_model), x_kv (..., n_k, d_model); w_q (d_model, h*d_k);
    w_k (d_model, h_kv*d_k); w_v (d_model, h_kv*d_v); w_o (h*d_v, d_out); biases
    (optional) are 1-D of the matching width. Returns output (..., n_q, d_out) and
    weights (..., h, n_q, n_k), or None for the weights when ``fused``.

    mask: boolean, broadcastable to (..., n_q, n_k), True where attending is allowed;
    the same mask is used by every head.

    Bad input is refused by name: counts that are not positive integers (NumPy integers
    are fine; 2.0 and True are not), torch tensors of different float dtypes or devices,
    no keys (x_kv with no rows), d_k = 0 (w_q with no columns), flags that are not bools.

    Options (defaults: the paper's layer):
    num_kv_heads: h_kv key/value heads, dividing num_heads (1: multi-query; None: h).
    rotary_theta: rotate each head's queries and keys by their positions with
        :func:`helpers.apply_rotary` (base theta) before the scores.
    q_gamma, k_gamma (d_k,): QK-norm, RMS-normalise each head's queries and keys.
    causal: query i (at position past + i, after ``past`` cached keys) may attend to
        keys 0..past + i only; combined with ``mask`` if both are given.
    cache: a dict keeping this layer's keys and values between calls. Without the
        entry "static" the new keys and values are appended to those in the cache
        (self-attention while generating; positions continue after the cached ones);
        with ``cache["static"] = True`` x_kv is projected on the first call only and
        reused afterwards (cross-attention to a fixed encoder output).
    fused: torch tensors only; use ``F.scaled_dot_product_attention`` (one kernel, no
        weights returned) instead of :func:`helpers.scaled_dot_product_attention`.
    dropout: probability of zeroing each attention weight (torch only; training).
    """
    func = "multi_head_attention"
    if cache is not None and not isinstance(cache, dict):
        raise TypeError(f"{func}: cache must be a dict (or None), got {type(cache).__name__}")
    static = cache is not None and bool(cache.get("static"))
    reuse = static and "k" in cache                  # x_kv was projected on an earlier call
    optional = ("mask", "b_q", "b_k", "b_v", "b_o", "q_gamma", "k_gamma") + (("x_kv",) if reuse else ())
    xp = formula_namespace(func, optional, x_q=x_q, x_kv=x_kv, w_q=w_q, w_k=w_k, w_v=w_v, w_o=w_o,
                           mask=mask, b_q=b_q, b_k=b_k, b_v=b_v, b_o=b_o, q_gamma=q_gamma,
                           k_gamma=k_gamma)
    num_heads = as_int(func, "num_heads", num_heads, 1)
    num_kv_heads = num_heads if num_kv_heads is None else as_int(func, "num_kv_heads", num_kv_heads, 1)
    if num_heads % num_kv_heads:
        raise ValueError(f"{func}: num_kv_heads={num_kv_heads} must divide num_heads={num_heads} "
                         "(each key/value head serves an equal group of query heads)")
    causal = require_flag(func, "causal", causal)
    fused = require_flag(func, "fused", fused)
    if rotary_theta is not None:
        rotary_theta = as_real(func, "rotary_theta", rotary_theta, 0.0, low_open=True,
                               allowed="None or a finite number > 0 (the base of the rotary frequencies)")
    dropout = as_real(func, "dropout", dropout, 0.0, 1.0, high_open=True)
    if fused or dropout:
        require_torch(func, "fused=True" if fused else "dropout > 0", x_q=x_q)
    require_ndim(func, "x_q", x_q, 2, "(..., n_q, d_model)")
    if not reuse:
        require_ndim(func, "x_kv", x_kv, 2, "(..., n_k, d_model)")
    for name, w in (("w_q", w_q), ("w_k", w_k), ("w_v", w_v), ("w_o", w_o)):
        if len(w.shape) != 2:
            raise ValueError(f"{func}: {name} must be a matrix, got shape {shape(w)}")
        require_float(func, name, w, xp)
    for name, a in (("x_q", x_q), ("x_kv", None if reuse else x_kv), ("b_q", b_q), ("b_k", b_k),
                    ("b_v", b_v), ("b_o", b_o), ("q_gamma", q_gamma), ("k_gamma", k_gamma)):
        if a is not None:
            require_float(func, name, a, xp)
    if w_q.shape[0] != x_q.shape[-1]:
        raise ValueError(f"{func}: x_q has shape {shape(x_q)} and w_q has shape {shape(w_q)}: "
                         "w_q needs one row per feature of x_q (d_model)")
    for name, w in (("w_k", w_k), ("w_v", w_v)):
        if not reuse and w.shape[0] != x_kv.shape[-1]:
            raise ValueError(f"{func}: x_kv has shape {shape(x_kv)} and {name} has shape "
                             f"{shape(w)}: {name} needs one row per feature of x_kv")
    if w_q.shape[1] % num_heads:
        raise ValueError(f"{func}: w_q has {w_q.shape[1]} columns, which num_heads="
                         f"{num_heads} does not divide into equal heads")
    d_k = w_q.shape[1] // num_heads
    if d_k == 0:
        raise ValueError(f"{func}: w_q has shape {shape(w_q)}: no columns, so each head has d_k = 0 "
                         "features and the scale 1/sqrt(d_k) is undefined")
    if w_k.shape[1] != num_kv_heads * d_k:
        raise ValueError(f"{func}: w_q has shape {shape(w_q)} and w_k has shape {shape(w_k)}: "
                         f"w_k needs num_kv_heads*d_k = {num_kv_heads}*{d_k} columns")
    if w_v.shape[1] % num_kv_heads:
        raise ValueError(f"{func}: w_v has {w_v.shape[1]} columns, which num_kv_heads="
                         f"{num_kv_heads} does not divide into equal heads")
    d_v = w_v.shape[1] // num_kv_heads
    if w_o.shape[0] != num_heads * d_v:
        raise ValueError(f"{func}: w_v has shape {shape(w_v)} and w_o has shape {shape(w_o)}: "
                         f"w_o needs num_heads*d_v = {num_heads}*{d_v} rows")
    for name, b, width in (("b_q", b_q, w_q.shape[1]), ("b_k", b_k, w_k.shape[1]),
                           ("b_v", b_v, w_v.shape[1]), ("b_o", b_o, w_o.shape[1]),
                           ("q_gamma", q_gamma, d_k), ("k_gamma", k_gamma, d_k)):
        if b is not None and shape(b) != (width,):
            raise ValueError(f"{func}: {name} must have shape ({width},), got {shape(b)}")
    if (q_gamma is None) != (k_gamma is None):
        raise ValueError(f"{func}: QK-norm needs both q_gamma and k_gamma, or neither")
    if not reuse:
        broadcast_shapes(func, "the leading (batch) axes of x_q and x_kv",
                         shape(x_q)[:-2], shape(x_kv)[:-2])

    def project(x, w, b):
        y = x @ w              # (..., n, width); dtypes checked above, so torch never refuses
        return y if b is None else y + b

    q = split_heads(project(x_q, w_q, b_q), num_heads)             # (..., h, n_q, d_k)
    past = 0
    if reuse:
        k, v = cache["k"], cache["v"]                              # (..., h_kv, n_k, d_k), (..., h_kv, n_k, d_v)
    else:
        k = split_heads(project(x_kv, w_k, b_k), num_kv_heads)     # (..., h_kv, n_new, d_k)
        v = split_heads(project(x_kv, w_v, b_v), num_kv_heads)     # (..., h_kv, n_new, d_v)
    if q_gamma is not None:
        from .rms_norm import rms_norm
        q = rms_norm(q, q_gamma)                                   # (..., h, n_q, d_k)
        if not reuse:
            k = rms_norm(k, k_gamma)                               # (..., h_kv, n_new, d_k)
    if cache is not None and not static and "k" in cache:
        past = cache["k"].shape[-2]
    if rotary_theta is not None:
        from .rotary import apply_rotary
        q = apply_rotary(q, range(past, past + q.shape[-2]), theta=rotary_theta)
        if not reuse:
            k = apply_rotary(k, range(past, past + k.shape[-2]), theta=rotary_theta)
    if cache is not None and not reuse:
        if past:
            k = xp.concat([cache["k"], k], axis=-2)                # (..., h_kv, past + n_new, d_k)
            v = xp.concat([cache["v"], v], axis=-2)                # (..., h_kv, past + n_new, d_v)
        cache["k"], cache["v"] = k, v

    n_q, n_k = q.shape[-2], k.shape[-2]
    if n_k == 0:
        raise ValueError(f"{func}: x_kv has shape {shape(x_kv)}: no rows, so there are no keys "
                         "to attend to")
    if mask is not None:
        batch = broadcast_shapes(func, "the leading (batch) axes of x_q and x_kv",
                                 shape(x_q)[:-2], shape(k)[:-3])
        mask = check_mask(func, mask, xp, batch + (n_q, n_k))    # (..., n_q | 1, n_k | 1)
    is_causal = False
    if causal:
        if fused and mask is None and n_q == n_k:
            is_causal = True                                       # the kernel masks by itself
        elif n_q > 1:   # one new query after the cache sees every key: nothing to mask
            allowed = causal_mask_after(n_q, n_k, xp, device=array_api_compat.device(q))   # (n_q, n_k)
            mask = allowed if mask is None else (mask & allowed)
    group = num_heads // num_kv_heads
    if mask is not None:
        mask = xp.expand_dims(mask, axis=-3)                       # (..., 1, n_q, n_k): every head

    if fused:
        import torch.nn.functional as F
        heads = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout,
                                               is_causal=is_causal, enable_gqa=group > 1)  # (..., h, n_q, d_v)
        weights = None
    else:
        *lead, _, _, _ = shape(q)
        if group > 1:   # query heads of one group share a key/value head: broadcast, no copy
            q = xp.reshape(q, (*lead, num_kv_heads, group, n_q, d_k))      # (..., h_kv, g, n_q, d_k)
            k, v = xp.expand_dims(k, axis=-3), xp.expand_dims(v, axis=-3)  # (..., h_kv, 1, n_k, d)
            if mask is not None:
                mask = xp.expand_dims(mask, axis=-3)               # (..., 1, 1, n_q, n_k)
        heads, weights = scaled_dot_product_attention(q, k, v, mask=mask)  # (..., [h_kv, g,] n_q, d_v)
        if dropout:
            import torch.nn.functional as F
            heads = F.dropout(weights, dropout, training=True) @ v
        heads = xp.reshape(heads, (*lead, num_heads, n_q, d_v))    # (..., h, n_q, d_v)
        weights = xp.reshape(weights, (*lead, num_heads, n_q, n_k))  # (..., h, n_q, n_k)
    return project(merge_heads(heads), w_o, b_o), weights          # (..., n_q, d_out)


__all__ = ["multi_head_attention", "split_heads", "merge_heads", "causal_mask_after"]
