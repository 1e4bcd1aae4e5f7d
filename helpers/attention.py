"""Scaled dot-product attention and the masks that go with it, derived in chapters 2 and 3.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

Row-vector convention: each *row* of Q, K, V is one token's vector.

Masks follow ``torch.nn.functional.scaled_dot_product_attention``: a boolean array,
broadcastable to (..., n_q, n_k), **True where attending is allowed**. Masked scores are
set to -inf *before* the softmax, so every row of weights still sums to 1 (the *Mathematical Formulation* note's
"f(q, k_i) = 0 after the fact" would not).

A fully masked row. If the mask allows a query no key at all, there is nothing to
average. Here such a row gets weights of all zeros and an output of all zeros (the same
as PyTorch's own math path since 2.5), and a :class:`FullyMaskedRowWarning` says which
rows it happened to, so the learner is never handed a silent NaN or a silent zero.
"""
from __future__ import annotations

import math
import warnings

import array_api_compat

from ._backend import (backend_namespace, broadcast_shapes, namespace, require_float,
                       require_ndim, shape)
from .softmax import softmax


class FullyMaskedRowWarning(UserWarning):
    """A query row whose mask allowed no key: its weights and output were set to 0."""


def check_qkv_shapes(func: str, q, k, v) -> tuple:
    """Check that q (..., n_q, d_k), k (..., n_k, d_k), v (..., n_k, d_v) fit together;
    return their broadcast batch shape. Errors name ``func``, the argument and its shape."""
    for name, a in (("q", q), ("k", k), ("v", v)):
        require_ndim(func, name, a, 2, "(..., tokens, features)")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"{func}: q has shape {shape(q)} and k has shape {shape(k)}: "
                         "their last axes (d_k) must be equal")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{func}: k has shape {shape(k)} and v has shape {shape(v)}: "
                         "they must have the same number of rows (n_k, one value per key)")
    return broadcast_shapes(func, "the leading (batch) axes of q, k and v",
                            shape(q)[:-2], shape(k)[:-2], shape(v)[:-2])


def scaled_dot_product_attention(q, k, v, mask=None, scale=None):
    """Scaled dot-product attention; returns ``(output, weights)``.

    Formula: weights = softmax(q k^T * scale) with scale = 1/sqrt(d_k) by default,
    output = weights v. Each output row is a convex combination of the rows of v.

    Shapes: q (..., n_q, d_k), k (..., n_k, d_k), v (..., n_k, d_v); leading (batch)
    axes broadcast. Returns output (..., n_q, d_v) and weights (..., n_q, n_k).

    mask: optional boolean array broadcastable to (..., n_q, n_k), True where query i
    may attend to key j. A row with no allowed key gives zero weights, a zero output and
    a :class:`FullyMaskedRowWarning`.

    Derived in chapter 2 (Maganga (2024), §1; Métwalli and Elhefny, §3.2 and §5).
    """
    func = "scaled_dot_product_attention"
    xp = namespace(func, q=q, k=k, v=v, mask=mask)
    batch = check_qkv_shapes(func, q, k, v)
    for name, a in (("q", q), ("k", k), ("v", v)):
        require_float(func, name, a, xp)
    n_q, d_k, n_k = q.shape[-2], q.shape[-1], k.shape[-2]
    if scale is None:
        scale = 1.0 / math.sqrt(d_k)
    scores = xp.matmul(q, xp.matrix_transpose(k)) * scale
    if mask is not None:
        check_mask(func, mask, xp, batch + (n_q, n_k))
        scores = xp.where(mask, scores, xp.full_like(scores, -math.inf))
    weights = softmax(scores, axis=-1)
    if mask is not None:
        warn_fully_masked(mask, xp)
    return xp.matmul(weights, v), weights


def check_mask(func: str, mask, xp, target: tuple):
    """Raise unless ``mask`` is boolean and broadcastable to ``target`` = (..., n_q, n_k)."""
    if mask.dtype != xp.bool:
        raise TypeError(f"{func}: mask must be boolean (True = may attend), got dtype {mask.dtype}")
    ms = shape(mask)
    ok = len(ms) >= 2 and len(ms) <= len(target) and all(
        m in (1, t) for m, t in zip(ms[::-1], target[::-1]))
    if not ok:
        raise ValueError(f"{func}: mask has shape {ms}, which does not broadcast to "
                         f"(..., n_q, n_k) = {target}")


def warn_fully_masked(mask, xp):
    allowed_any = xp.any(mask, axis=-1)
    if not bool(xp.all(allowed_any)):
        rows = [int(i) for i in xp.nonzero(xp.reshape(~allowed_any, (-1,)))[0][:5]]
        warnings.warn(
            "attention mask allows no key for some query rows (flattened row indices "
            f"{rows}{'...' if len(rows) == 5 else ''}); their weights and outputs are set to 0",
            FullyMaskedRowWarning, stacklevel=3)


def causal_mask(n: int, backend: str = "numpy", device=None):
    """The causal (look-ahead) mask: boolean (n, n), True on and below the diagonal.

    mask[i, j] = (j <= i): token i may attend to itself and to earlier tokens only.
    Derived in chapter 3 (Métwalli and Elhefny, §2.2: the decoder).
    """
    xp = backend_namespace("causal_mask", backend)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"causal_mask: n must be a positive integer, got {n!r}")
    kwargs = {} if device is None else {"device": device}
    idx = xp.arange(n, **kwargs)
    return idx[None, :] <= idx[:, None]


def padding_mask(lengths, n: int):
    """Key-padding mask from sequence lengths: boolean (batch, 1, n), True on real tokens.

    ``lengths`` is an integer array (batch,); key j of sequence b is real when
    j < lengths[b]. The middle axis of size 1 broadcasts over the queries.
    """
    xp = namespace("padding_mask", lengths=lengths)
    if len(lengths.shape) != 1:
        raise ValueError(f"padding_mask: lengths must have shape (batch,), got {shape(lengths)}")
    if bool(xp.any(lengths < 0)) or bool(xp.any(lengths > n)):
        raise ValueError(f"padding_mask: every length must lie in 0..n={n}")
    idx = xp.arange(n, device=array_api_compat.device(lengths))
    return (idx[None, :] < lengths[:, None])[:, None, :]
