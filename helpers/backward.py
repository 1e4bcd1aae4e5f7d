"""Backward passes of every piece of the Transformer, derived by hand (chapter 8; Maganga (2024), §7).

Each function here takes the inputs of a forward function of :mod:`helpers` and the
gradient of a scalar loss L with respect to that function's output (written ``d_output``,
"dL/d output", same shape as the output), and returns the gradients of L with respect to
the inputs. The forward pass is recomputed with the core functions themselves
(:func:`helpers.softmax`, :func:`helpers.scaled_dot_product_attention`,
:func:`helpers.layer_norm`, :func:`helpers.feed_forward`, :func:`helpers.layers.encoder_layer`...),
so there is one implementation of every formula; only the backward steps are new.

The chain rule for a matrix product, used everywhere below: if Y = X W then
dL/dX = dL/dY W^T and dL/dW = X^T dL/dY (summed over any leading batch axes).

Like the rest of :mod:`helpers` the code is written against the array API namespace, so it
runs on NumPy arrays (what chapter 8 uses) and on torch tensors alike.
"""
from __future__ import annotations

import math

import array_api_compat

from ._backend import (as_real, check_axis, formula_namespace, has_values, namespace,
                       require_float, shape)
from .attention import scaled_dot_product_attention
from .feed_forward import feed_forward, relu
from .layer_norm import layer_norm, standardise
from .loss import cross_entropy
from .layers import LAYER_STRUCTURES, decoder_layer, encoder_layer, residual
from .multi_head import merge_heads, multi_head_attention, split_heads
from .softmax import softmax


def _require_same_shape(func, name, a, ref_name, ref):
    if shape(a) != shape(ref):
        raise ValueError(f"{func}: {name} must have the shape of {ref_name}, {shape(ref)}; "
                         f"got {shape(a)}")


def _sum_to_shape(xp, grad, target: tuple):
    """Sum ``grad`` over the axes that broadcasting added or stretched to reach ``target``."""
    extra = len(grad.shape) - len(target)
    if extra > 0:
        grad = xp.sum(grad, axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(target) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = xp.sum(grad, axis=stretched, keepdims=True)
    return grad


def _weight_grad(xp, inputs, d_outputs):
    """dL/dW for Y = X W with leading batch axes: sum over every row of X^T dL/dY."""
    x2 = xp.reshape(inputs, (-1, inputs.shape[-1]))
    d2 = xp.reshape(d_outputs, (-1, d_outputs.shape[-1]))
    return xp.matmul(xp.matrix_transpose(x2), d2)


def _bias_grad(xp, d_outputs):
    """dL/db for Y = X W + b: the sum of dL/dY over every row."""
    return xp.sum(xp.reshape(d_outputs, (-1, d_outputs.shape[-1])), axis=0)


def softmax_backward(probs, d_probs, axis: int = -1):
    """Gradient through the softmax, given its output ``probs`` = softmax(x).

    Formula: the Jacobian is dp_i/dx_j = p_i (delta_ij - p_j), so
    dL/dx = p * (dL/dp - sum_j (dL/dp)_j p_j), the sum taken along ``axis``.
    Shapes: probs and d_probs have the same shape; returns dL/dx of that shape.
    Entries with p = 0 (masked scores) get gradient 0. Derived in chapter 8.
    """
    func = "softmax_backward"
    xp = formula_namespace(func, probs=probs, d_probs=d_probs)
    require_float(func, "probs", probs, xp)
    require_float(func, "d_probs", d_probs, xp)
    _require_same_shape(func, "d_probs", d_probs, "probs", probs)
    axis = check_axis(func, "axis", axis, len(probs.shape))
    return probs * (d_probs - xp.sum(d_probs * probs, axis=axis, keepdims=True))


def scaled_dot_product_attention_backward(q, k, v, d_output, mask=None, scale=None):
    """Gradients (dq, dk, dv) of scaled dot-product attention.

    Forward (recomputed with :func:`helpers.scaled_dot_product_attention`):
    S = q k^T * scale, A = softmax(S) (masked scores -inf), O = A v.
    Backward: dv = A^T dO, dA = dO v^T, dS = softmax_backward(A, dA),
    dq = dS k * scale, dk = dS^T q * scale. Masked entries have A = 0, hence dS = 0.

    Shapes: q (..., n_q, d_k), k (..., n_k, d_k), v (..., n_k, d_v),
    d_output (..., n_q, d_v); returns dq, dk, dv with the shapes of q, k, v (gradients of
    broadcast batch axes are summed). Derived in chapter 8.
    """
    func = "scaled_dot_product_attention_backward"
    xp = formula_namespace(func, ("mask",), q=q, k=k, v=v, d_output=d_output, mask=mask)
    output, weights = scaled_dot_product_attention(q, k, v, mask=mask, scale=scale)
    _require_same_shape(func, "d_output", d_output, "the attention output", output)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else as_real(func, "scale", scale)
    d_v = xp.matmul(xp.matrix_transpose(weights), d_output)
    d_weights = xp.matmul(d_output, xp.matrix_transpose(v))
    d_scores = softmax_backward(weights, d_weights, axis=-1)
    d_q = xp.matmul(d_scores, k) * scale
    d_k = xp.matmul(xp.matrix_transpose(d_scores), q) * scale
    return (_sum_to_shape(xp, d_q, shape(q)), _sum_to_shape(xp, d_k, shape(k)),
            _sum_to_shape(xp, d_v, shape(v)))


def multi_head_attention_backward(x_q, x_kv, w_q, w_k, w_v, w_o, num_heads, d_output,
                                  mask=None, *, b_q=None, b_k=None, b_v=None, b_o=None):
    """Gradients of :func:`helpers.multi_head_attention` for every input.

    Forward: Q = x_q W^Q + b_q, K = x_kv W^K + b_k, V = x_kv W^V + b_v (biases optional),
    split into h column blocks, heads = attention per block, C = Concat(heads),
    out = C W^O + b_o.
    Backward: dW^O = C^T d_out, dC = d_out (W^O)^T, split dC into heads, attention backward
    per head gives dQ, dK, dV (merged back into column blocks), then
    dW^Q = x_q^T dQ, dW^K = x_kv^T dK, dW^V = x_kv^T dV,
    d x_q = dQ (W^Q)^T, d x_kv = dK (W^K)^T + dV (W^V)^T.
    For self-attention (x_q and x_kv the same array) the gradient of x is the sum
    d x_q + d x_kv: x reaches the loss along both paths.

    A bias gets the sum of its projection's gradient over all rows: db_q = sum dQ, ...
    Shapes: as :func:`helpers.multi_head_attention`; d_output (..., n_q, d_out).
    Returns a dict with keys "x_q", "x_kv", "w_q", "w_k", "w_v", "w_o" (and "b_q", ... for
    each bias given), each of the shape of that argument. Derived in chapter 8.
    """
    func = "multi_head_attention_backward"
    xp = formula_namespace(func, ("mask", "b_q", "b_k", "b_v", "b_o"), x_q=x_q, x_kv=x_kv, w_q=w_q, w_k=w_k, w_v=w_v, w_o=w_o,
                   d_output=d_output, mask=mask, b_q=b_q, b_k=b_k, b_v=b_v, b_o=b_o)
    biases = {"b_q": b_q, "b_k": b_k, "b_v": b_v, "b_o": b_o}
    # the forward pass of the core function checks every shape and gives us the output shape
    output, _ = multi_head_attention(x_q, x_kv, w_q, w_k, w_v, w_o, num_heads, mask=mask, **biases)
    _require_same_shape(func, "d_output", d_output, "the attention output", output)

    def project(x, w, b):
        y = xp.matmul(x, w)
        return y if b is None else y + b

    q = split_heads(project(x_q, w_q, b_q), num_heads)      # (..., h, n_q, d_k)
    k = split_heads(project(x_kv, w_k, b_k), num_heads)     # (..., h, n_k, d_k)
    v = split_heads(project(x_kv, w_v, b_v), num_heads)     # (..., h, n_k, d_v)
    if mask is not None and len(mask.shape) < 2:   # (n_k,) -> (1, n_k): one axis for the heads to go before
        mask = xp.reshape(mask, (1,) * (2 - len(mask.shape)) + shape(mask))
    head_mask = None if mask is None else xp.expand_dims(mask, axis=-3)
    heads, _ = scaled_dot_product_attention(q, k, v, mask=head_mask)
    concat = merge_heads(heads)                             # (..., n_q, h*d_v)

    d_heads = split_heads(xp.matmul(d_output, xp.matrix_transpose(w_o)), num_heads)
    d_q, d_k, d_v = scaled_dot_product_attention_backward(q, k, v, d_heads, mask=head_mask)
    d_q, d_k, d_v = (merge_heads(g) for g in (d_q, d_k, d_v))
    d_x_q = xp.matmul(d_q, xp.matrix_transpose(w_q))
    d_x_kv = (xp.matmul(d_k, xp.matrix_transpose(w_k))
              + xp.matmul(d_v, xp.matrix_transpose(w_v)))
    grads = {
        "x_q": _sum_to_shape(xp, d_x_q, shape(x_q)),
        "x_kv": _sum_to_shape(xp, d_x_kv, shape(x_kv)),
        "w_q": _weight_grad(xp, x_q, d_q),
        "w_k": _weight_grad(xp, x_kv, d_k),
        "w_v": _weight_grad(xp, x_kv, d_v),
        "w_o": _weight_grad(xp, concat, d_output),
    }
    for name, d in (("b_q", d_q), ("b_k", d_k), ("b_v", d_v), ("b_o", d_output)):
        if biases[name] is not None:
            grads[name] = _bias_grad(xp, d)
    return grads


def layer_norm_backward(x, gamma, beta, d_output, eps: float = 1e-5):
    """Gradients (dx, dgamma, dbeta) of :func:`helpers.layer_norm`.

    Forward: x_hat = (x - mu) / sigma with sigma = sqrt(var + eps) (biased var, last axis),
    y = x_hat * gamma + beta. Backward, with g = dL/dx_hat = d_output * gamma and means
    over the last axis (d features):
        dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sigma,
        dgamma = sum over rows of d_output * x_hat,  dbeta = sum over rows of d_output.
    The two subtracted means are the paths through mu and through sigma.
    Shapes: x (..., d), gamma (d,), beta (d,), d_output (..., d); returns (..., d), (d,), (d,).
    sigma is computed as in :func:`helpers.layer_norm` (each row scaled by a power of two
    first), so rows near the top of the float range do not overflow. Derived in chapter 8.
    """
    func = "layer_norm_backward"
    xp = formula_namespace(func, x=x, gamma=gamma, beta=beta, d_output=d_output)
    for name, a in (("gamma", gamma), ("beta", beta)):
        if a is None:
            raise TypeError(f"{func}: {name} must be an array of shape (d,) (its gradient is "
                            "returned), got None")
    y = layer_norm(x, gamma, beta, eps=eps)                          # checks the shapes and eps
    _require_same_shape(func, "d_output", d_output, "x", y)
    require_float(func, "d_output", d_output, xp)
    x_hat, s, root = standardise(xp, x, float(eps))                  # (..., d), sigma = s * root
    g = d_output * gamma                                             # (..., d)
    d_x = (g - xp.mean(g, axis=-1, keepdims=True)
           - x_hat * xp.mean(g * x_hat, axis=-1, keepdims=True)) / root / s   # (..., d)
    return d_x, _bias_grad(xp, d_output * x_hat), _bias_grad(xp, d_output)


def feed_forward_backward(x, w1, b1, w2, b2, d_output):
    """Gradients of :func:`helpers.feed_forward` = ReLU(x w1 + b1) w2 + b2.

    Forward: a = x w1 + b1, r = ReLU(a), y = r w2 + b2. Backward:
    dw2 = r^T dy, db2 = sum of dy over rows, dr = dy w2^T, da = dr * [a > 0],
    dw1 = x^T da, db1 = sum of da over rows, dx = da w1^T.
    (ReLU's derivative at exactly 0 is taken as 0, as PyTorch does.)
    Shapes: as :func:`helpers.feed_forward`, d_output (..., d_out). Returns a dict with keys
    "x", "w1", "w2" and "b1", "b2" for each bias given (b1, b2 may be None, as in the
    forward function). Derived in chapter 8.
    """
    func = "feed_forward_backward"
    xp = formula_namespace(func, ("b1", "b2"), x=x, w1=w1, b1=b1, w2=w2, b2=b2, d_output=d_output)
    y = feed_forward(x, w1, b1, w2, b2)                              # checks the shapes
    _require_same_shape(func, "d_output", d_output, "the FFN output", y)
    require_float(func, "d_output", d_output, xp)
    pre = xp.matmul(x, w1) if b1 is None else xp.matmul(x, w1) + b1  # (..., d_ff)
    hidden = relu(pre)                                               # (..., d_ff)
    d_hidden = xp.matmul(d_output, xp.matrix_transpose(w2))          # (..., d_ff)
    d_pre = xp.where(pre > 0, d_hidden, xp.zeros_like(d_hidden))     # (..., d_ff)
    grads = {
        "x": xp.matmul(d_pre, xp.matrix_transpose(w1)),
        "w1": _weight_grad(xp, x, d_pre), "w2": _weight_grad(xp, hidden, d_output),
    }
    if b1 is not None:
        grads["b1"] = _bias_grad(xp, d_pre)
    if b2 is not None:
        grads["b2"] = _bias_grad(xp, d_output)
    return grads


def cross_entropy_backward(logits, targets, *, ignore_index=None, label_smoothing: float = 0.0):
    """dL/dlogits of :func:`helpers.cross_entropy` (mean over the N counted positions).

    Formula: with target distribution t = (1 - eps) onehot(target) + eps / V,
    dL/dz = (softmax(z) - t) / N at each counted position, 0 at ignored positions.
    Shapes: logits (..., V), targets (...) integers; returns (..., V).
    Derived in chapter 8 (Maganga (2024), §7: L = -sum_i y_i log yhat_i).
    """
    func = "cross_entropy_backward"
    xp = formula_namespace(func, logits=logits, targets=targets)
    cross_entropy(logits, targets, ignore_index=ignore_index,
                  label_smoothing=label_smoothing)                   # checks every argument
    label_smoothing = float(label_smoothing)
    vocab = logits.shape[-1]
    keep = xp.ones_like(targets, dtype=xp.bool) if ignore_index is None else targets != ignore_index
    count = (int(xp.sum(xp.astype(keep, xp.int64))) if has_values(keep)
             else xp.sum(xp.astype(keep, logits.dtype)))           # meta tensors hold no values
    safe_targets = xp.where(keep, targets, xp.zeros_like(targets))
    classes = xp.arange(vocab, device=array_api_compat.device(logits))
    onehot = xp.astype(safe_targets[..., None] == classes, logits.dtype)
    target_dist = (1 - label_smoothing) * onehot + label_smoothing / vocab
    grad = (softmax(logits, axis=-1) - target_dist) / count
    return xp.where(keep[..., None], grad, xp.zeros_like(grad))


def _sublayer_backward(part, params, h, memory, d_out, *, num_heads, mask):
    """Gradients of one sub-layer f at input h given dL/df = d_out: (dL/dh, param grads,
    dL/dmemory or None)."""
    if part == "ffn":
        grads = feed_forward_backward(h, **params, d_output=d_out)
        return grads.pop("x"), grads, None
    x_kv = h if part == "self_attn" else memory
    grads = multi_head_attention_backward(h, x_kv, num_heads=num_heads, d_output=d_out, mask=mask, **params)
    d_q, d_kv = grads.pop("x_q"), grads.pop("x_kv")
    if part == "self_attn":
        return d_q + d_kv, grads, None          # h is the query and the keys/values: both paths
    return d_q, grads, d_kv


def _sublayer_forward(part, params, h, memory, *, num_heads, mask):
    if part == "ffn":
        return feed_forward(h, **params)
    x_kv = h if part == "self_attn" else memory
    return multi_head_attention(h, x_kv, num_heads=num_heads, mask=mask, **params)[0]


def residual_backward(x, part, params, norm_params, d_output, norm: str = "post", *, num_heads: int = 1,
                      mask=None, memory=None, eps: float = 1e-5):
    """Gradients through one residual connection around the sub-layer ``part`` (chapter 8).

    Forward (:func:`helpers.layers.residual`, chapter 6), with f the sub-layer:
        post:  s = x + f(x),  out = LN(s)      backward: ds = LN'(s)^T d_out,  dx = ds + f'(x)^T ds
        pre:   h = LN(x),  out = x + f(h)      backward: dh = f'(h)^T d_out,   dx = d_out + LN'(x)^T dh
        none:  out = x + f(x)                  backward: dx = d_out + f'(x)^T d_out
    The residual path hands the gradient on unchanged: that "+ d_out" (or "+ ds") is why
    deep residual stacks train. ``part``: "self_attn", "cross_attn" (keys and values from
    ``memory``) or "ffn". Returns (dx, {part: grads, norm: {gamma, beta}}, d_memory or None).
    """
    func = "residual_backward"
    if not isinstance(norm, str) or norm not in ("post", "pre", "none"):
        raise ValueError(f"{func}: norm must be 'post', 'pre' or 'none', got {norm!r}")
    if not isinstance(part, str) or part not in ("self_attn", "cross_attn", "ffn"):
        raise ValueError(f"{func}: part must be 'self_attn', 'cross_attn' or 'ffn', got {part!r}")
    if part == "cross_attn" and memory is None:
        raise ValueError(f"{func}: part='cross_attn' attends to the encoder's output: pass memory=")
    if not isinstance(params, dict) or (norm != "none" and not isinstance(norm_params, dict)):
        raise TypeError(f"{func}: params (and norm_params unless norm='none') must be dicts of "
                        f"arrays, got {type(params).__name__} and {type(norm_params).__name__}")
    fwd = dict(num_heads=num_heads, mask=mask)
    norm_grads = {}
    if norm == "post":
        s = x + _sublayer_forward(part, params, x, memory, **fwd)
        d_s, norm_grads["gamma"], norm_grads["beta"] = layer_norm_backward(
            s, norm_params["gamma"], norm_params["beta"], d_output, eps=eps)
        d_x, grads, d_memory = _sublayer_backward(part, params, x, memory, d_s, **fwd)
        return d_s + d_x, grads, norm_grads, d_memory
    if norm == "pre":
        h = layer_norm(x, eps=eps, **norm_params)
        d_h, grads, d_memory = _sublayer_backward(part, params, h, memory, d_output, **fwd)
        d_x, norm_grads["gamma"], norm_grads["beta"] = layer_norm_backward(
            x, norm_params["gamma"], norm_params["beta"], d_h, eps=eps)
        return d_output + d_x, grads, norm_grads, d_memory
    d_x, grads, d_memory = _sublayer_backward(part, params, x, memory, d_output, **fwd)
    return d_output + d_x, grads, None, d_memory


def _layer_backward(func, kind, x, params, d_output, norm, num_heads, eps, masks, memory=None):
    # The forward functions check params (the paper's layer: the backward passes above cover
    # LayerNorm, ReLU FFN and attention with biases) and give the output's shape.
    structure = LAYER_STRUCTURES[kind]
    if kind == "encoder":
        output = encoder_layer(x, params, masks["self_attn"], norm, num_heads=num_heads, eps=eps)
    else:
        output = decoder_layer(x, memory, params, masks["self_attn"], masks["cross_attn"], norm,
                               num_heads=num_heads, eps=eps)
    namespace(func, x=x, d_output=d_output, memory=memory, **params[structure[0][0]])  # one library only
    _require_same_shape(func, "d_output", d_output, "the layer output", output)
    # forward once more, keeping the input of every residual block
    inputs, h = [], x
    for part, norm_part in structure:
        inputs.append(h)
        h = residual(h, lambda z, part=part: (_sublayer_forward(part, params[part], z, memory, num_heads=num_heads,
                                                                mask=masks.get(part)), None),
                     params.get(norm_part), norm, eps=eps)[0]
    grads, d_memory, d_h = {}, None, d_output
    for (part, norm_part), h in zip(reversed(structure), reversed(inputs)):
        d_h, grads[part], norm_grads, d_mem = residual_backward(
            h, part, params[part], params.get(norm_part), d_h, norm, num_heads=num_heads,
            mask=masks.get(part), memory=memory, eps=eps)
        if norm_grads is not None:
            grads[norm_part] = norm_grads
        if d_mem is not None:
            d_memory = d_mem if d_memory is None else d_memory + d_mem
    return d_h, grads, d_memory


def encoder_layer_backward(x, params, d_output, mask=None, *, num_heads: int, eps: float = 1e-5,
                           norm: str = "post"):
    """Gradients of :func:`helpers.layers.encoder_layer` for x and every parameter (chapter 8).

    The layer's structure is :data:`helpers.layers.ENCODER_LAYER`: self-attention, then the
    FFN, each inside a residual connection. Backward runs the same list in reverse with
    :func:`residual_backward`: from the top, through LayerNorm 2 and the FFN branch, then
    through LayerNorm 1 and the attention branch, where x is used three times (query, key,
    value) and its gradient is the sum over the three paths plus the residual path.
    norm: "post" (the paper), "pre" or "none", as in the forward function.

    params: the nested dict of :func:`helpers.layers.encoder_layer`. Shapes: x (..., n,
    d_model), d_output (..., n, d_model). Returns {"x": dx} plus a nested dict of gradients
    with the structure (and shapes) of ``params``.
    """
    d_x, grads, _ = _layer_backward("encoder_layer_backward", "encoder", x, params, d_output, norm,
                                    num_heads, eps, {"self_attn": mask})
    return {"x": d_x, **grads}


def decoder_layer_backward(y, memory, params, d_output, self_mask=None, memory_mask=None, *,
                           num_heads: int, eps: float = 1e-5, norm: str = "post"):
    """Gradients of :func:`helpers.layers.decoder_layer` for y, the memory and every parameter.

    The structure is :data:`helpers.layers.DECODER_LAYER`: causal self-attention,
    cross-attention to the memory, FFN, each in a residual connection; backward walks it in
    reverse (chapter 8). The memory reaches the loss only through the cross-attention's keys
    and values. Shapes as :func:`helpers.layers.decoder_layer`; returns {"y": dy, "memory":
    dmemory} plus the gradients of ``params`` in its structure.
    """
    from .attention import causal_mask
    n = y.shape[-2]
    xp = namespace("decoder_layer_backward", y=y)
    causal = causal_mask(n, backend="torch" if "torch" in xp.__name__ else "numpy",
                         device=array_api_compat.device(y))
    masks = {"self_attn": causal if self_mask is None else (self_mask & causal), "cross_attn": memory_mask}
    d_y, grads, d_memory = _layer_backward("decoder_layer_backward", "decoder", y, params, d_output, norm,
                                           num_heads, eps, masks, memory=memory)
    return {"y": d_y, "memory": d_memory, **grads}
