"""The cost of attention, and exact ways to cut it. Derived in chapter 10.

Maganga (2024), §8: "Self-attention has a computational complexity of O(n^2 d) ...
Optimizations such as sparse attention reduce this complexity." This module makes both
halves concrete.

Counting (:func:`attention_layer_costs`): multiply-adds and memory of one self-attention
layer, stage by stage, as exact formulas in n (tokens), d_model and h (heads).

Sparse patterns (boolean masks, True where attending is allowed, the convention of
:func:`helpers.scaled_dot_product_attention`; every one takes ``causal=True`` to be
intersected with :func:`helpers.causal_mask`, and any two combine with ``|`` or ``&``):

    sliding_window_mask(n, window)    |i - j| <= window                (local attention)
    strided_mask(n, stride)           (i - j) mod stride == 0          (Sparse Transformer)
    global_tokens_mask(n, num_global) i < num_global or j < num_global (Longformer, BigBird)

Attention that only computes the allowed pairs (:func:`sliding_window_attention`,
:func:`sparse_attention`): each query gets a short table of the keys it may see (r of
them at most), the scores of those r keys are computed and softmaxed, and nothing else.
Cost n_q * r * d_k multiply-adds instead of n_q * n_k * d_k. Both backends.

Exact attention in O(n) memory (:func:`online_softmax`, :func:`tiled_attention`): the
softmax normaliser is accumulated block by block with a running maximum m and a running
sum l that is rescaled whenever m grows (the "online softmax"); tiled attention applies it
to blocks of queries and keys, in the style of FlashAttention, so the largest score array
it ever holds is (block_q, block_k), never (n_q, n_k). Both backends, written once against
the array API like the rest of :mod:`helpers`: a model of what a GPU kernel does, written
to be read (it loops over the tiles in Python).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from array_api_compat import device, is_torch_array

from ._backend import (as_int, as_real, compute_dtype, creation_options, formula_namespace,
                       has_values, require_flag, require_float, require_ndim, shape)
from .attention import FullyMaskedRowWarning, causal_mask, check_mask, check_qkv_shapes
from .softmax import softmax

# ----------------------------------------------------------------------------- counting


def attention_layer_costs(n: int, d_model: int, num_heads: int = 1, itemsize: int = 8) -> dict:
    """Multiply-adds and memory of one self-attention layer on n tokens (no batch axis).

    Each head has d_k = d_v = d_model / num_heads. A matrix product (a, b) @ (b, c) costs
    a*b*c multiply-adds (one FLOP-pair each: 2*a*b*c FLOPs).

        "projections Q, K, V"   3 n d_model^2       X W^Q, X W^K, X W^V
        "scores Q K^T"          h n^2 d_k = n^2 d_model
        "softmax exp"           h n^2               one exp per score
        "weights V"             h n^2 d_v = n^2 d_model
        "output projection"     n d_model^2         Concat(heads) W^O
        "total multiply-adds"   4 n d_model^2 + 2 n^2 d_model   (exps not included)
        "weights elements"      h n^2               the (h, n, n) attention weights
        "weights bytes"         h n^2 itemsize

    Derived in chapter 10 (Maganga (2024), §8: O(n^2 d); Vaswani et al. 2017, Table 1).
    """
    n, d_model, num_heads, itemsize = (as_int("attention_layer_costs", name, value, 1)
                                       for name, value in (("n", n), ("d_model", d_model),
                                                           ("num_heads", num_heads),
                                                           ("itemsize", itemsize)))
    if d_model % num_heads:
        raise ValueError(f"attention_layer_costs: d_model={d_model} is not divisible by "
                         f"num_heads={num_heads}")
    d_k = d_model // num_heads
    costs = {
        "projections Q, K, V": 3 * n * d_model * d_model,
        "scores Q K^T": num_heads * n * n * d_k,
        "softmax exp": num_heads * n * n,
        "weights V": num_heads * n * n * d_k,
        "output projection": n * d_model * d_model,
    }
    costs["total multiply-adds"] = (costs["projections Q, K, V"] + costs["scores Q K^T"]
                                    + costs["weights V"] + costs["output projection"])
    costs["weights elements"] = num_heads * n * n
    costs["weights bytes"] = num_heads * n * n * itemsize
    return costs


# ----------------------------------------------------------------------------- masks


def _check_count(func: str, name: str, value, minimum: int) -> int:
    """``value`` as an int >= minimum (NumPy integers welcome; bools and floats refused)."""
    return as_int(func, name, value, minimum, f"an integer >= {minimum}")


def _positions(func: str, n: int, backend: str, device):
    xp, _, kwargs = creation_options(func, backend, device=device, floating=False)
    n = _check_count(func, "n", n, 1)
    idx = xp.arange(n, **kwargs)
    return idx[:, None], idx[None, :]  # query index i (n, 1), key index j (1, n)


def _maybe_causal(func, mask, n, causal, backend, device):
    causal = require_flag(func, "causal", causal)
    return mask & causal_mask(int(mask.shape[0]), backend=backend, device=device) if causal else mask


def sliding_window_mask(n: int, window: int, causal: bool = False, backend: str = "numpy",
                        device=None):
    """Local attention: boolean (n, n), mask[i, j] = |i - j| <= window.

    Query i sees the ``window`` tokens on each side of it and itself: at most 2*window + 1
    keys (window + 1 with ``causal=True``, which keeps j <= i only). Allowed pairs, with
    w = min(window, n - 1): n(2w + 1) - w(w + 1), causal n(w + 1) - w(w + 1)/2.
    Derived in chapter 10; the local pattern of Longformer.
    """
    func = "sliding_window_mask"
    i, j = _positions(func, n, backend, device)
    window = _check_count(func, "window", window, 0)
    return _maybe_causal(func, abs(i - j) <= window, n, causal, backend, device)


def strided_mask(n: int, stride: int, causal: bool = False, backend: str = "numpy", device=None):
    """Strided attention: boolean (n, n), mask[i, j] = ((i - j) mod stride == 0).

    Query i sees every stride-th token counted from itself. With n = q*stride + r
    (0 <= r < stride) the residue classes have q+1 (r of them) or q members, and the
    allowed pairs number r(q+1)^2 + (stride-r) q^2, about n^2 / stride. The Sparse
    Transformer (Child et al. 2019) pairs it with a local window of width stride; with
    stride ~ sqrt(n) each query then sees O(sqrt(n)) keys.
    Derived in chapter 10.
    """
    func = "strided_mask"
    i, j = _positions(func, n, backend, device)
    stride = _check_count(func, "stride", stride, 1)
    return _maybe_causal(func, (i - j) % stride == 0, n, causal, backend, device)


def global_tokens_mask(n: int, num_global: int, causal: bool = False, backend: str = "numpy",
                       device=None):
    """Global tokens: boolean (n, n), mask[i, j] = (i < num_global or j < num_global).

    The first ``num_global`` tokens see every token and every token sees them. Allowed
    pairs, g = min(num_global, n): n^2 - (n - g)^2 = 2ng - g^2 (causal: g(g+1)/2 + (n-g)g).
    Usually combined with a window: ``sliding_window_mask(n, w) | global_tokens_mask(n, g)``.
    Derived in chapter 10; the global pattern of Longformer and BigBird.
    """
    func = "global_tokens_mask"
    i, j = _positions(func, n, backend, device)
    num_global = _check_count(func, "num_global", num_global, 0)
    return _maybe_causal(func, (i < num_global) | (j < num_global), n, causal, backend, device)


# ----------------------------------------------------------------------------- allowed pairs only


def sliding_window_key_index(n: int, window: int, causal: bool = False):
    """The keys each query of a sliding window sees, as a table; NumPy (n, r) each.

    Returns (key_index, key_valid) with r = window + 1 if causal else 2*window + 1:
    key_index[i, o] = i - window + o (clipped into 0..n-1 where it falls outside),
    key_valid[i, o] says whether that key exists (and, if causal, is not in the future).
    """
    n = _check_count("sliding_window_key_index", "n", n, 1)
    window = _check_count("sliding_window_key_index", "window", window, 0)
    causal = require_flag("sliding_window_key_index", "causal", causal)
    width = window + 1 if causal else 2 * window + 1
    key = np.arange(n)[:, None] - window + np.arange(width)[None, :]
    valid = (key >= 0) & (key < n)
    return np.clip(key, 0, n - 1), valid


def mask_key_index(mask):
    """The allowed keys of each query of any boolean mask (n_q, n_k), as a padded table.

    Returns NumPy (key_index, key_valid), both (n_q, r) with r = the most keys any query
    may see: row i lists the allowed keys of query i in increasing order, padded with key
    0 marked invalid. Raises ValueError if some row allows no key.
    """
    if is_torch_array(mask):
        if not has_values(mask):
            raise ValueError("mask_key_index: mask is a tensor on the meta device, which holds no "
                             "values to list; pass a mask with values")
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.ndim != 2:
        raise ValueError(f"mask_key_index: mask must be a boolean (n_q, n_k) array, got "
                         f"dtype {mask.dtype} and shape {mask.shape}")
    counts = mask.sum(axis=1)
    if mask.shape[0] == 0:                                  # no queries: empty tables
        return np.zeros((0, 0), dtype=np.int64), np.zeros((0, 0), dtype=bool)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(f"mask_key_index: mask allows no key for query rows {empty[:5].tolist()}"
                         f"{'...' if empty.size > 5 else ''}: there is nothing to average")
    width = int(counts.max())
    # a stable sort puts the allowed keys (True -> 0) first, each row in increasing order
    order = np.argsort(~mask, axis=1, kind="stable")[:, :width]
    valid = np.arange(width)[None, :] < counts[:, None]
    return np.where(valid, order, 0), valid


def gathered_attention(q, k, v, key_index, key_valid, scale=None):
    """Attention over a table of allowed keys per query; returns (output, weights).

    Formula: for query i and slot o, s[i, o] = q_i . k_{key_index[i, o]} * scale where
    key_valid[i, o], else -inf; weights = softmax(s) over the slots;
    output_i = sum_o weights[i, o] v_{key_index[i, o]}.
    Equals softmax(Q K^T * scale + mask) V for the mask whose row i allows exactly the
    valid keys of row i, while computing n_q * r scores instead of n_q * n_k: the work is
    n_q r (d_k + d_v) multiply-adds and the memory O(n_q (r + d)), one slot at a time.

    Shapes: q (..., n_q, d_k), k (..., n_k, d_k), v (..., n_k, d_v), key_index and
    key_valid (n_q, r) (integer and boolean, same library as q). Returns output
    (..., n_q, d_v) and the compact weights (..., n_q, r). Every row needs a valid key.
    """
    func = "gathered_attention"
    xp = formula_namespace(func, q=q, k=k, v=v, key_index=key_index, key_valid=key_valid)
    batch = check_qkv_shapes(func, q, k, v, scale)
    for name, a in (("q", q), ("k", k), ("v", v)):
        require_float(func, name, a, xp)
    n_q, n_k = q.shape[-2], k.shape[-2]
    if (len(key_index.shape) != 2 or shape(key_index) != shape(key_valid)
            or key_index.shape[0] != n_q):
        raise ValueError(f"{func}: key_index {shape(key_index)} and key_valid {shape(key_valid)} "
                         f"must both have shape (n_q, r) with n_q = {n_q}")
    if not xp.isdtype(key_index.dtype, "integral"):
        raise TypeError(f"{func}: key_index must hold integers (key positions), got dtype {key_index.dtype}")
    if key_valid.dtype != xp.bool:
        raise TypeError(f"{func}: key_valid must be boolean, got dtype {key_valid.dtype}")
    if has_values(key_valid) and not bool(xp.all(xp.any(key_valid, axis=-1))):
        raise ValueError(f"{func}: key_valid allows no key for some query row")
    if has_values(key_index) and (bool(xp.any(key_index < 0)) or bool(xp.any(key_index >= n_k))):
        raise ValueError(f"{func}: key_index must lie in 0..{n_k - 1} (k has {n_k} rows), got "
                         f"values from {int(xp.min(key_index))} to {int(xp.max(key_index))}")
    r = key_index.shape[1]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else as_real(func, "scale", scale)
    dtype = xp.result_type(q, k, v)
    if r == 0:                  # no slots: only possible with no queries (n_q = 0)
        return (xp.zeros(batch + (n_q, v.shape[-1]), dtype=dtype, device=device(q)),
                xp.zeros(batch + (n_q, 0), dtype=dtype, device=device(q)))
    # One slot at a time, so that the largest temporaries are (..., n_q, d): memory
    # O(n_q (r + d)), never (n_q, n_k) or (n_q, r, d).
    columns = []
    for o in range(r):
        k_slot = xp.take(k, key_index[:, o], axis=-2)                 # (..., n_q, d_k)
        columns.append(xp.sum(q * k_slot, axis=-1) * scale)           # (..., n_q)
    scores = xp.stack(columns, axis=-1)                               # (..., n_q, r)
    scores = xp.where(key_valid, scores, xp.full_like(scores, -math.inf))
    weights = softmax(scores, axis=-1)
    output = xp.zeros(batch + (n_q, v.shape[-1]), dtype=weights.dtype, device=device(q))  # (..., n_q, d_v)
    for o in range(r):
        v_slot = xp.take(v, key_index[:, o], axis=-2)                 # (..., n_q, d_v)
        output = output + weights[..., o, None] * v_slot
    return output, weights


def sliding_window_attention(q, k, v, window: int, causal: bool = False, scale=None):
    """Self-attention restricted to |i - j| <= window, computing only those scores.

    Equals ``scaled_dot_product_attention(q, k, v, mask=sliding_window_mask(n, window,
    causal))`` at a cost of n (2 window + 1) d_k multiply-adds for the scores instead of
    n^2 d_k: O(n w d), linear in n. Shapes: q, k (..., n, d_k), v (..., n, d_v) with the
    same n. Returns (output (..., n, d_v), banded weights (..., n, r)); see
    :func:`sliding_window_key_index` for which key each of the r slots holds.
    Derived in chapter 10.
    """
    func = "sliding_window_attention"
    xp = formula_namespace(func, q=q, k=k, v=v)
    require_ndim(func, "q", q, 2, "(..., tokens, features)")
    require_ndim(func, "k", k, 2, "(..., tokens, features)")
    window = _check_count(func, "window", window, 0)
    causal = require_flag(func, "causal", causal)
    check_qkv_shapes(func, q, k, v, scale)
    if q.shape[-2] != k.shape[-2]:
        raise ValueError(f"{func}: q has shape {shape(q)} and k has shape {shape(k)}: a sliding "
                         "window needs as many queries as keys (self-attention)")
    key_index, key_valid = sliding_window_key_index(int(q.shape[-2]), window, causal)
    return gathered_attention(q, k, v, *_like(xp, q, key_index, key_valid), scale=scale)


def sparse_attention(q, k, v, mask, scale=None):
    """Attention that computes only the pairs a 2-D boolean mask allows.

    Equals ``scaled_dot_product_attention(q, k, v, mask=mask)``; the work is n_q * r * d_k
    multiply-adds for the scores, r = the most keys any row allows (mask.sum(axis=1).max()).
    Shapes: mask (n_q, n_k), shared by every batch element; q, k, v as in
    :func:`gathered_attention`. Every row of the mask must allow some key.
    """
    xp = formula_namespace("sparse_attention", q=q, k=k, v=v, mask=mask)
    for name, a in (("q", q), ("k", k)):
        require_ndim("sparse_attention", name, a, 2, "(..., tokens, features)")
    if mask.dtype != xp.bool:
        raise TypeError(f"sparse_attention: mask must be boolean (True = may attend), got dtype {mask.dtype}")
    if shape(mask) != (int(q.shape[-2]), int(k.shape[-2])):
        raise ValueError(f"sparse_attention: mask has shape {shape(mask)}, expected "
                         f"(n_q, n_k) = {(int(q.shape[-2]), int(k.shape[-2]))}")
    key_index, key_valid = mask_key_index(mask)
    return gathered_attention(q, k, v, *_like(xp, q, key_index, key_valid), scale=scale)


def _like(xp, q, key_index, key_valid):
    """The NumPy index tables in q's library (and on q's device)."""
    if not is_torch_array(q):
        return key_index, key_valid
    import torch
    return (torch.as_tensor(key_index, device=q.device),
            torch.as_tensor(key_valid, device=q.device))


# ----------------------------------------------------------------------------- online softmax


def online_softmax_step(m, l, block):
    """One step of the online softmax; returns (m_new, l_new, rescale, p).

    Given the running maximum m and running sum l = sum exp(x - m) of the scores seen so
    far (shape (...,)) and a new block of scores (..., b):

        m_new   = max(m, max_t block_t)
        rescale = exp(m - m_new)                  (<= 1; 0 at the start, when m = -inf)
        p       = exp(block - m_new)              (..., b)
        l_new   = rescale * l + sum_t p_t

    so that l_new = sum exp(x - m_new) over everything seen. A slice whose scores are
    all -inf so far keeps m = -inf and l = 0 (nothing is subtracted from it).
    NumPy or torch (all three arguments from one library). Derived in chapter 10.
    """
    func = "online_softmax_step"
    xp = formula_namespace(func, m=m, l=l, block=block)
    require_ndim(func, "block", block, 1, "(..., b)")
    for name, a in (("m", m), ("l", l), ("block", block)):
        require_float(func, name, a, xp)
    if shape(m) != shape(block)[:-1] or shape(l) != shape(m):
        raise ValueError(f"{func}: m {shape(m)} and l {shape(l)} must both have the shape of "
                         f"block {shape(block)} without its last axis, {shape(block)[:-1]}")
    if block.shape[-1] == 0:                                                # nothing new
        return m, l, xp.ones_like(m), block * 1
    m_new = xp.maximum(m, xp.max(block, axis=-1))                           # (...,) NaN stays NaN
    shift = xp.where(m_new == -math.inf, xp.zeros_like(m_new), m_new)      # (...,) no -inf - (-inf)
    rescale = xp.exp(m - shift)                                             # (...,)
    p = xp.exp(block - shift[..., None])                                    # (..., b)
    return m_new, rescale * l + xp.sum(p, axis=-1), rescale, p


def online_softmax(x, block_size: int):
    """Softmax over the last axis, its normaliser accumulated ``block_size`` scores at a time.

    Pass 1 streams the blocks through :func:`online_softmax_step` to get m = max x and
    l = sum exp(x - m) without ever storing exp of the whole row; pass 2 returns
    exp(x - m) / l. Equals :func:`helpers.softmax` (an all -inf row gives zeros).
    Shapes: x (..., n) -> (..., n). NumPy in, NumPy out; torch in, torch out on the same
    device and dtype, differentiable by autograd. Derived in chapter 10.
    """
    func = "online_softmax"
    xp = formula_namespace(func, x=x)
    require_ndim(func, "x", x, 1, "(..., n)")
    require_float(func, "x", x, xp)
    block_size = _check_count(func, "block_size", block_size, 1)
    work, result = compute_dtype(xp, x)                  # float16/bfloat16: in float32, as softmax
    x = x if work == result else xp.astype(x, work)
    rows, dev = shape(x)[:-1], device(x)
    m = xp.full(rows, -math.inf, dtype=x.dtype, device=dev)                # (...,)
    l = xp.zeros(rows, dtype=x.dtype, device=dev)                           # (...,)
    for start in range(0, x.shape[-1], block_size):
        m, l, _, _ = online_softmax_step(m, l, x[..., start:start + block_size])
    shift = xp.where(m == -math.inf, xp.zeros_like(m), m)                   # (...,)
    p = xp.exp(x - shift[..., None]) / xp.where(l == 0, xp.ones_like(l), l)[..., None]
    return p if work == result else xp.astype(p, result)


def _tile_mask(xp, mask, causal, i0, i1, j0, j1, dev):
    """Which (query, key) pairs of the tile rows i0:i1, keys j0:j1 are allowed; None = all."""
    allowed = None
    if mask is not None:
        rows = mask if mask.shape[-2] == 1 else mask[..., i0:i1, :]
        allowed = rows if rows.shape[-1] == 1 else rows[..., j0:j1]          # (..., b_q|1, b_k|1)
    if causal and j1 - 1 > i0:              # the tile crosses the diagonal
        below = (xp.arange(j0, j1, device=dev)[None, :]
                 <= xp.arange(i0, i1, device=dev)[:, None])                 # (b_q, b_k)
        allowed = below if allowed is None else allowed & below
    return allowed


def tiled_attention(q, k, v, block_q: int = 64, block_k: int = 64, causal: bool = False,
                    mask=None, scale=None, trace: list | None = None):
    """Exact attention by tiles, FlashAttention style: never forms the (n_q, n_k) matrix.

    For each block of queries Q_i (block_q rows) keep, per row, a running maximum m,
    a running sum l and an unnormalised output accumulator acc (block_q, d_v). For each
    block of keys/values K_j, V_j (block_k rows):

        S   = Q_i K_j^T * scale                              (block_q, block_k)
        m', l', c, P = online_softmax_step(m, l, S)          c = exp(m - m'), P = exp(S - m')
        acc = c * acc + P V_j                                (block_q, d_v)

    and at the end O_i = acc / l. The largest arrays ever held are one score tile
    (block_q, block_k) and the output (n_q, d_v): memory O(n d + block_q block_k) instead
    of O(n^2). With ``causal=True`` (needs n_q == n_k) tiles wholly above the diagonal are
    skipped and the diagonal tiles are masked with -inf before the step. ``mask``
    (boolean, broadcastable to (..., n_q, n_k), True = may attend, as in
    :func:`helpers.scaled_dot_product_attention`) is cut into tiles the same way; a
    padding mask of shape (batch, 1, n_k) keeps the memory O(n). A query row whose mask
    allows no key gets a zero output and a :class:`helpers.FullyMaskedRowWarning`, as in
    :func:`helpers.scaled_dot_product_attention`.

    Shapes: q (..., n_q, d_k), k (..., n_k, d_k), v (..., n_k, d_v), batch axes
    broadcast. Returns output (..., n_q, d_v) only: the weights are never formed.
    As :func:`helpers.scaled_dot_product_attention`: n_k = 0, or d_k = 0 without a scale,
    is refused by name; float16 and bfloat16 are accumulated in float32.
    NumPy in, NumPy out; torch in, torch out on the same device and dtype, differentiable
    by autograd. ``trace``: a list to which the shape of every score tile is appended (to
    check that no (n_q, n_k) array appears).
    Derived in chapter 10 (online softmax: Milakov and Gimelshein 2018; tiles: Dao et
    al. 2022, FlashAttention).
    """
    func = "tiled_attention"
    xp = formula_namespace(func, ("mask",), q=q, k=k, v=v, mask=mask)
    batch = check_qkv_shapes(func, q, k, v, scale)
    for name, a in (("q", q), ("k", k), ("v", v)):
        require_float(func, name, a, xp)
    block_q = _check_count(func, "block_q", block_q, 1)
    block_k = _check_count(func, "block_k", block_k, 1)
    causal = require_flag(func, "causal", causal)
    if trace is not None and not isinstance(trace, list):
        raise TypeError(f"{func}: trace must be a list (or None), got {type(trace).__name__}")
    n_q, n_k, d_v = int(q.shape[-2]), int(k.shape[-2]), int(v.shape[-1])
    if causal and n_q != n_k:
        raise ValueError(f"{func}: causal=True needs as many queries as keys, got n_q={n_q}, "
                         f"n_k={n_k}")
    if mask is not None:
        mask = check_mask(func, mask, xp, batch + (n_q, n_k))              # (..., n_q | 1, n_k | 1)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else as_real(func, "scale", scale)
    dtype, result = compute_dtype(xp, q, k, v)     # float16/bfloat16 accumulate in float32
    dev = device(q)
    if n_q == 0:
        return xp.zeros(batch + (0, d_v), dtype=result, device=dev)          # (..., 0, d_v)
    if dtype != result:
        q, k, v = (xp.astype(a, dtype) for a in (q, k, v))
    blocks, empty_rows = [], 0
    for i0 in range(0, n_q, block_q):
        i1 = min(i0 + block_q, n_q)
        q_block = q[..., i0:i1, :]                                            # (..., b_q, d_k)
        m = xp.full(batch + (i1 - i0,), -math.inf, dtype=dtype, device=dev)   # (..., b_q)
        l = xp.zeros(batch + (i1 - i0,), dtype=dtype, device=dev)             # (..., b_q)
        acc = xp.zeros(batch + (i1 - i0, d_v), dtype=dtype, device=dev)       # (..., b_q, d_v)
        for j0 in range(0, n_k, block_k):
            if causal and j0 > i1 - 1:
                break                       # every key of this tile and later is in the future
            j1 = min(j0 + block_k, n_k)
            scores = xp.matmul(q_block, xp.matrix_transpose(k[..., j0:j1, :])) * scale  # (..., b_q, b_k)
            allowed = _tile_mask(xp, mask, causal, i0, i1, j0, j1, dev)
            if allowed is not None:
                scores = xp.where(allowed, scores, xp.full_like(scores, -math.inf))
            if trace is not None:
                trace.append(shape(scores))
            m, l, rescale, p = online_softmax_step(m, l, scores)    # (..., b_q) x3, (..., b_q, b_k)
            acc = rescale[..., None] * acc + xp.matmul(p, v[..., j0:j1, :])   # (..., b_q, d_v)
        if has_values(l):
            empty_rows += int(xp.sum(xp.astype(l == 0, xp.int64)))
        blocks.append(acc / xp.where(l == 0, xp.ones_like(l), l)[..., None])  # (..., b_q, d_v)
    if empty_rows:
        warnings.warn(f"{func}: the mask allows no key for {empty_rows} query row(s); their "
                      "outputs are set to 0", FullyMaskedRowWarning, stacklevel=2)
    out = xp.concat(blocks, axis=-2)                                          # (..., n_q, d_v)
    return out if dtype == result else xp.astype(out, result)
