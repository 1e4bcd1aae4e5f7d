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

from ._backend import (as_int, as_real, broadcast_shapes, creation_options, formula_namespace,
                       has_values, require_float, require_ndim, shape)
from .softmax import softmax


class FullyMaskedRowWarning(UserWarning):
    """A query row whose mask allowed no key: its weights and output were set to 0."""


def check_qkv_shapes(func: str, q, k, v, scale=None) -> tuple:
    """Check that q (..., n_q, d_k), k (..., n_k, d_k), v (..., n_k, d_v) fit together;
    return their broadcast batch shape. Errors name ``func``, the argument and its shape.

    Refused too: n_k = 0 (no key: each output would be an average of nothing) and, unless
    ``scale`` is given, d_k = 0 (the default scale 1/sqrt(d_k) is undefined)."""
    for name, a in (("q", q), ("k", k), ("v", v)):
        require_ndim(func, name, a, 2, "(..., tokens, features)")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"{func}: q has shape {shape(q)} and k has shape {shape(k)}: "
                         "their last axes (d_k) must be equal")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{func}: k has shape {shape(k)} and v has shape {shape(v)}: "
                         "they must have the same number of rows (n_k, one value per key)")
    if k.shape[-2] == 0:
        raise ValueError(f"{func}: k has shape {shape(k)}: no keys (n_k = 0), so there is nothing "
                         "to attend to; each output row would be an average of nothing")
    if q.shape[-1] == 0 and scale is None:
        raise ValueError(f"{func}: q has shape {shape(q)}: d_k = 0 features, so the scale "
                         "1/sqrt(d_k) is undefined; give q and k at least one feature (or pass scale=)")
    return broadcast_shapes(func, "the leading (batch) axes of q, k and v",
                            shape(q)[:-2], shape(k)[:-2], shape(v)[:-2])


def scaled_dot_product_attention(q, k, v, mask=None, scale=None):
    """Scaled dot-product attention; returns ``(output, weights)``.

    Formula: weights = softmax(q k^T * scale) with scale = 1/sqrt(d_k) by default,
    output = weights v. Each output row is a convex combination of the rows of v.

    Shapes: q (..., n_q, d_k), k (..., n_k, d_k), v (..., n_k, d_v); leading (batch)
    axes broadcast. Returns output (..., n_q, d_v) and weights (..., n_q, n_k).

    mask: optional boolean array broadcastable to (..., n_q, n_k), True where query i
    may attend to key j (a 1-D mask (n_k,) is the same for every query). A row with no
    allowed key gives zero weights, a zero output and a :class:`FullyMaskedRowWarning`.
    scale: optional finite number replacing 1/sqrt(d_k).

    Edge cases: n_q = 0 or an empty batch give empty results; n_k = 0, and d_k = 0 without
    a scale, are refused (ValueError); a NaN in a query's scores makes that query's weights
    and output NaN, as in F.scaled_dot_product_attention. float16 and bfloat16 inputs give
    outputs of their dtype (the softmax runs in float32).

    Derived in chapter 2 (Maganga (2024), §1; Métwalli and Elhefny, §3.2 and §5).
    """
    func = "scaled_dot_product_attention"
    xp = formula_namespace(func, ("mask",), q=q, k=k, v=v, mask=mask)
    batch = check_qkv_shapes(func, q, k, v, scale)
    for name, a in (("q", q), ("k", k), ("v", v)):
        require_float(func, name, a, xp)
    n_q, d_k, n_k = q.shape[-2], q.shape[-1], k.shape[-2]
    scale = 1.0 / math.sqrt(d_k) if scale is None else as_real(func, "scale", scale)
    scores = xp.matmul(q, xp.matrix_transpose(k)) * scale
    if mask is not None:
        mask = check_mask(func, mask, xp, batch + (n_q, n_k))
        scores = xp.where(mask, scores, xp.full_like(scores, -math.inf))
    weights = softmax(scores, axis=-1)
    if mask is not None and 0 not in shape(weights):     # no rows at all: nothing to report
        warn_fully_masked(mask, xp)
    return xp.matmul(weights, v), weights


def check_mask(func: str, mask, xp, target: tuple):
    """Raise unless ``mask`` is boolean and broadcastable to ``target`` = (..., n_q, n_k).
    Returns the mask with at least two axes (a 1-D mask (n_k,) becomes (1, n_k)), so that
    callers may index its query axis."""
    if mask.dtype != xp.bool:
        raise TypeError(f"{func}: mask must be boolean (True = may attend), got dtype {mask.dtype}")
    ms = shape(mask)
    ok = len(ms) <= len(target) and all(
        m in (1, t) for m, t in zip(ms[::-1], target[::-1]))
    if not ok:
        raise ValueError(f"{func}: mask has shape {ms}, which does not broadcast to "
                         f"(..., n_q, n_k) = {target}")
    return mask if len(ms) >= 2 else xp.reshape(mask, (1,) * (2 - len(ms)) + ms)


def warn_fully_masked(mask, xp):
    if not has_values(mask):
        return                                                     # meta tensors hold no values
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
    n: a positive Python or NumPy integer. Derived in chapter 3 (Métwalli and Elhefny,
    §2.2: the decoder).
    """
    xp, _, kwargs = creation_options("causal_mask", backend, device=device, floating=False)
    n = as_int("causal_mask", "n", n, 1)
    idx = xp.arange(n, **kwargs)
    return idx[None, :] <= idx[:, None]


def padding_mask(lengths, n: int):
    """Key-padding mask from sequence lengths: boolean (batch, 1, n), True on real tokens.

    ``lengths`` is an integer array (batch,) (a float length such as 2.5 is refused, not
    rounded); key j of sequence b is real when j < lengths[b]. n: a positive Python or
    NumPy integer. The middle axis of size 1 broadcasts over the queries.
    """
    func = "padding_mask"
    xp = formula_namespace(func, lengths=lengths)
    n = as_int(func, "n", n, 1)
    if len(lengths.shape) != 1:
        raise ValueError(f"{func}: lengths must have shape (batch,), got {shape(lengths)}")
    if not xp.isdtype(lengths.dtype, "integral"):
        raise TypeError(f"{func}: lengths must hold integers (numbers of real tokens), "
                        f"got dtype {lengths.dtype}")
    if has_values(lengths) and (bool(xp.any(lengths < 0)) or bool(xp.any(lengths > n))):
        raise ValueError(f"{func}: every length must lie in 0..n={n}, got lengths from "
                         f"{int(xp.min(lengths))} to {int(xp.max(lengths))}")
    idx = xp.arange(n, device=array_api_compat.device(lengths))
    return (idx[None, :] < lengths[:, None])[:, None, :]
