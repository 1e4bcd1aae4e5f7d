"""Cross-entropy loss for next-token prediction, derived in chapter 8 (Maganga (2024), §7).

    L = -(1/N) sum_positions log p(target),   p = softmax(logits)

Maganga writes L = -sum_i y_i log(yhat_i) for one position with a one-hot y; averaged
over the N positions this is the mean negative log-likelihood. Its gradient with respect
to the logits of one position is (softmax(logits) - onehot(target)) / N.
"""
from __future__ import annotations

import math

from ._backend import (as_int, as_real, check_axis, compute_dtype, formula_namespace, has_values,
                       require_flag, require_float, require_ndim, require_torch, shape)


def log_softmax(x, axis: int = -1):
    """log softmax(x) computed stably: x - m - log(sum exp(x - m)), m the maximum along ``axis``.

    Shapes: any with at least one axis; returns the shape and dtype of ``x`` (float16 and
    bfloat16 are computed in float32). As torch.log_softmax: a slice holding a NaN or a
    +inf, or made only of -inf, gives NaN everywhere; an entry -inf among finite ones
    gives -inf (probability 0). Derived in chapter 8.
    """
    func = "log_softmax"
    xp = formula_namespace(func, x=x)
    require_float(func, "x", x, xp)
    axis = check_axis(func, "axis", axis, len(x.shape))
    if x.shape[axis] == 0:
        return x * 1                                               # nothing to normalise
    work, result = compute_dtype(xp, x)
    z = x if work == result else xp.astype(x, work)
    shifted = z - xp.max(z, axis=axis, keepdims=True)             # <= 0; NaN where nothing is finite
    out = shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))
    return out if work == result else xp.astype(out, result)


def cross_entropy(logits, targets, *, ignore_index=None, label_smoothing: float = 0.0,
                  fused: bool = False):
    """Mean cross-entropy of integer ``targets`` under ``softmax(logits)``.

    Formula: L = -(1/N) sum_n log softmax(logits_n)[targets_n], over the N positions
    whose target is not ``ignore_index``. With label smoothing eps the target
    distribution is (1 - eps) onehot + eps/V (uniform), as in torch's F.cross_entropy.

    Shapes: logits (..., V) float; targets (...) integers of any integer dtype in 0..V-1
    (or ignore_index). Returns a scalar: a NumPy float, or a 0-d tensor, of the dtype of
    ``logits`` (float16 and bfloat16 are computed in float32). Derived in chapter 8.

    Refused by name (ValueError): no positions at all (an empty batch; torch would return
    NaN), V = 0 classes, a target out of range, every target ignored. NaN logits give a
    NaN loss, a -inf logit at the target an infinite one, as in torch. Torch tensors on
    the meta device (shapes only) skip the checks that read the targets' values.

    fused: torch tensors only; ``F.cross_entropy``, torch's kernel for the same formula
    (tests/test_fused.py), for training. It skips the checks that read the targets' values
    (each would wait for the GPU); a target out of range still raises an error, from torch.
    """
    func = "cross_entropy"
    xp = formula_namespace(func, logits=logits, targets=targets)
    require_ndim(func, "logits", logits, 1, "(..., V)")
    require_float(func, "logits", logits, xp)
    if not xp.isdtype(targets.dtype, "integral"):
        raise TypeError(f"{func}: targets must be integers (class indices), got dtype {targets.dtype}")
    if shape(targets) != shape(logits)[:-1]:
        raise ValueError(f"{func}: logits has shape {shape(logits)}, so targets must have shape "
                         f"{shape(logits)[:-1]}; got {shape(targets)}")
    label_smoothing = as_real(func, "label_smoothing", label_smoothing, 0.0, 1.0)
    if ignore_index is not None:
        ignore_index = as_int(func, "ignore_index", ignore_index, -2**63,
                              "an integer (the target value to skip) or None")
    fused = require_flag(func, "fused", fused)
    vocab = logits.shape[-1]
    if vocab == 0:
        raise ValueError(f"{func}: logits has shape {shape(logits)}: its last axis holds the V "
                         "classes, and V = 0 leaves no class to predict")
    if math.prod(shape(targets)) == 0:
        raise ValueError(f"{func}: targets has shape {shape(targets)}: there are no positions to "
                         "average the loss over")
    if fused:
        require_torch(func, "fused=True", logits=logits)
        import torch.nn.functional as F
        return F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1).long(),
                               ignore_index=-100 if ignore_index is None else ignore_index,
                               label_smoothing=label_smoothing)
    keep = xp.ones_like(targets, dtype=xp.bool) if ignore_index is None else targets != ignore_index
    if has_values(targets):
        checked = targets[keep]
        if bool(xp.any(checked < 0)) or bool(xp.any(checked >= vocab)):
            raise ValueError(f"{func}: targets must lie in 0..{vocab - 1} (V = logits.shape[-1]); "
                             f"got values from {int(xp.min(checked))} to {int(xp.max(checked))}")
        count = int(xp.sum(xp.astype(keep, xp.int64)))
        if count == 0:
            raise ValueError(f"{func}: every target equals ignore_index={ignore_index}: nothing to average")
    else:                                                          # meta tensors: no values to count
        count = xp.sum(xp.astype(keep, xp.float32))
    work, result = compute_dtype(xp, logits)
    logp = log_softmax(logits if work == result else xp.astype(logits, work), axis=-1)  # (..., V)
    safe_targets = xp.astype(xp.where(keep, targets, xp.zeros_like(targets)), xp.int64)  # any integer dtype
    picked = xp.take_along_axis(logp, safe_targets[..., None], axis=-1)[..., 0]   # (...)
    per_position = -picked
    if label_smoothing:
        per_position = (1 - label_smoothing) * per_position - label_smoothing * xp.mean(logp, axis=-1)
    per_position = xp.where(keep, per_position, xp.zeros_like(per_position))
    loss = xp.sum(per_position) / count
    return loss if work == result else xp.astype(loss, result)
