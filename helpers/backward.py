"""Backward passes of every piece of the Transformer, derived by hand (chapter 8; seed 000 §7).

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

from ._backend import namespace, require_float, shape
from .attention import scaled_dot_product_attention
from .feed_forward import feed_forward, relu
from .layer_norm import layer_norm
from .loss import cross_entropy
from .layers import encoder_layer
from .multi_head import _merge_heads, _split_heads, multi_head_attention
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
    Entries with p = 0 (masked scores) get gradient 0. Source: seed 001 (softmax), seed 000 §7.
    """
    func = "softmax_backward"
    xp = namespace(func, probs=probs, d_probs=d_probs)
    require_float(func, "probs", probs, xp)
    _require_same_shape(func, "d_probs", d_probs, "probs", probs)
    return probs * (d_probs - xp.sum(d_probs * probs, axis=axis, keepdims=True))


def scaled_dot_product_attention_backward(q, k, v, d_output, mask=None, scale=None):
    """Gradients (dq, dk, dv) of scaled dot-product attention.

    Forward (recomputed with :func:`helpers.scaled_dot_product_attention`):
    S = q k^T * scale, A = softmax(S) (masked scores -inf), O = A v.
    Backward: dv = A^T dO, dA = dO v^T, dS = softmax_backward(A, dA),
    dq = dS k * scale, dk = dS^T q * scale. Masked entries have A = 0, hence dS = 0.

    Shapes: q (..., n_q, d_k), k (..., n_k, d_k), v (..., n_k, d_v),
    d_output (..., n_q, d_v); returns dq, dk, dv with the shapes of q, k, v (gradients of
    broadcast batch axes are summed). Source: seed 000 §1, seed 003 §3.2.
    """
    func = "scaled_dot_product_attention_backward"
    xp = namespace(func, q=q, k=k, v=v, d_output=d_output, mask=mask)
    output, weights = scaled_dot_product_attention(q, k, v, mask=mask, scale=scale)
    _require_same_shape(func, "d_output", d_output, "the attention output", output)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
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
    each bias given), each of the shape of that argument. Source: seed 000 §1, seed 001 "Multi-Head Attention", seed 003 §3.3.
    """
    func = "multi_head_attention_backward"
    xp = namespace(func, x_q=x_q, x_kv=x_kv, w_q=w_q, w_k=w_k, w_v=w_v, w_o=w_o,
                   d_output=d_output, mask=mask, b_q=b_q, b_k=b_k, b_v=b_v, b_o=b_o)
    biases = {"b_q": b_q, "b_k": b_k, "b_v": b_v, "b_o": b_o}
    # the forward pass of the core function checks every shape and gives us the output shape
    output, _ = multi_head_attention(x_q, x_kv, w_q, w_k, w_v, w_o, num_heads, mask=mask, **biases)
    _require_same_shape(func, "d_output", d_output, "the attention output", output)

    def project(x, w, b):
        y = xp.matmul(x, w)
        return y if b is None else y + b

    q = _split_heads(xp, project(x_q, w_q, b_q), num_heads)      # (..., h, n_q, d_k)
    k = _split_heads(xp, project(x_kv, w_k, b_k), num_heads)     # (..., h, n_k, d_k)
    v = _split_heads(xp, project(x_kv, w_v, b_v), num_heads)     # (..., h, n_k, d_v)
    head_mask = None if mask is None else xp.expand_dims(mask, axis=-3)
    heads, _ = scaled_dot_product_attention(q, k, v, mask=head_mask)
    concat = _merge_heads(xp, heads)                             # (..., n_q, h*d_v)

    d_heads = _split_heads(xp, xp.matmul(d_output, xp.matrix_transpose(w_o)), num_heads)
    d_q, d_k, d_v = scaled_dot_product_attention_backward(q, k, v, d_heads, mask=head_mask)
    d_q, d_k, d_v = (_merge_heads(xp, g) for g in (d_q, d_k, d_v))
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
    Source: seed 000 §4.
    """
    func = "layer_norm_backward"
    xp = namespace(func, x=x, gamma=gamma, beta=beta, d_output=d_output)
    y = layer_norm(x, gamma, beta, eps=eps)                          # checks the shapes
    _require_same_shape(func, "d_output", d_output, "x", y)
    x_hat = layer_norm(x, xp.ones_like(gamma), xp.zeros_like(beta), eps=eps)
    centred = x - xp.mean(x, axis=-1, keepdims=True)
    inv_sigma = 1.0 / xp.sqrt(xp.mean(centred * centred, axis=-1, keepdims=True) + eps)
    g = d_output * gamma
    d_x = inv_sigma * (g - xp.mean(g, axis=-1, keepdims=True)
                       - x_hat * xp.mean(g * x_hat, axis=-1, keepdims=True))
    return d_x, _bias_grad(xp, d_output * x_hat), _bias_grad(xp, d_output)


def feed_forward_backward(x, w1, b1, w2, b2, d_output):
    """Gradients of :func:`helpers.feed_forward` = ReLU(x w1 + b1) w2 + b2.

    Forward: a = x w1 + b1, r = ReLU(a), y = r w2 + b2. Backward:
    dw2 = r^T dy, db2 = sum of dy over rows, dr = dy w2^T, da = dr * [a > 0],
    dw1 = x^T da, db1 = sum of da over rows, dx = da w1^T.
    (ReLU's derivative at exactly 0 is taken as 0, as PyTorch does.)
    Shapes: as :func:`helpers.feed_forward`, d_output (..., d_out). Returns a dict with keys
    "x", "w1", "b1", "w2", "b2". Source: seed 000 §3.
    """
    func = "feed_forward_backward"
    xp = namespace(func, x=x, w1=w1, b1=b1, w2=w2, b2=b2, d_output=d_output)
    y = feed_forward(x, w1, b1, w2, b2)                              # checks the shapes
    _require_same_shape(func, "d_output", d_output, "the FFN output", y)
    pre = xp.matmul(x, w1) + b1
    hidden = relu(pre)
    d_hidden = xp.matmul(d_output, xp.matrix_transpose(w2))
    d_pre = xp.where(pre > 0, d_hidden, xp.zeros_like(d_hidden))
    return {
        "x": xp.matmul(d_pre, xp.matrix_transpose(w1)),
        "w1": _weight_grad(xp, x, d_pre), "b1": _bias_grad(xp, d_pre),
        "w2": _weight_grad(xp, hidden, d_output), "b2": _bias_grad(xp, d_output),
    }


def cross_entropy_backward(logits, targets, *, ignore_index=None, label_smoothing: float = 0.0):
    """dL/dlogits of :func:`helpers.cross_entropy` (mean over the N counted positions).

    Formula: with target distribution t = (1 - eps) onehot(target) + eps / V,
    dL/dz = (softmax(z) - t) / N at each counted position, 0 at ignored positions.
    Shapes: logits (..., V), targets (...) integers; returns (..., V).
    Source: seed 000 §7 (L = -sum_i y_i log yhat_i).
    """
    func = "cross_entropy_backward"
    xp = namespace(func, logits=logits, targets=targets)
    cross_entropy(logits, targets, ignore_index=ignore_index,
                  label_smoothing=label_smoothing)                   # checks every argument
    vocab = logits.shape[-1]
    keep = xp.ones_like(targets, dtype=xp.bool) if ignore_index is None else targets != ignore_index
    count = int(xp.sum(xp.astype(keep, xp.int64)))
    safe_targets = xp.where(keep, targets, xp.zeros_like(targets))
    classes = xp.arange(vocab, device=array_api_compat.device(logits))
    onehot = xp.astype(safe_targets[..., None] == classes, logits.dtype)
    target_dist = (1 - label_smoothing) * onehot + label_smoothing / vocab
    grad = (softmax(logits, axis=-1) - target_dist) / count
    return xp.where(keep[..., None], grad, xp.zeros_like(grad))


def encoder_layer_backward(x, params, d_output, mask=None, *, num_heads: int, eps: float = 1e-5):
    """Gradients of the post-LN :func:`helpers.layers.encoder_layer` for x and every parameter.

    Forward (the paper, seed 003 §3.4), recomputed from the core functions exactly as
    :func:`helpers.layers.encoder_layer` composes them:
        s1 = x + MultiHead(x, x, x),  h = LayerNorm_1(s1),  s2 = h + FFN(h),  out = LayerNorm_2(s2)
    Backward, from the top: through LayerNorm 2 to s2; the residual sends ds2 both straight to
    h and through the FFN, so dh = ds2 + (FFN backward of ds2); through LayerNorm 1 to s1;
    again the residual: dx = ds1 + d x_q + d x_kv of the self-attention (x is used three times).

    params: the nested dict of :func:`helpers.layers.encoder_layer`
    (``helpers.layers.ENCODER_LAYER_PARTS``: "self_attn", "norm1", "ffn", "norm2").
    Shapes: x (..., n, d_model), d_output (..., n, d_model). Returns {"x": dx} plus a nested
    dict of gradients with the structure (and shapes) of ``params``.
    """
    func = "encoder_layer_backward"
    output = encoder_layer(x, params, mask, "post", num_heads=num_heads, eps=eps)  # checks params
    attn_p, ffn_p = params["self_attn"], params["ffn"]
    namespace(func, x=x, d_output=d_output, mask=mask, **attn_p, **ffn_p)  # one library only
    _require_same_shape(func, "d_output", d_output, "the layer output", output)
    attn, _ = multi_head_attention(x, x, num_heads=num_heads, mask=mask, **attn_p)
    s1 = x + attn
    h = layer_norm(s1, eps=eps, **params["norm1"])
    s2 = h + feed_forward(h, **ffn_p)

    grads = {"norm1": {}, "norm2": {}}
    d_s2, grads["norm2"]["gamma"], grads["norm2"]["beta"] = layer_norm_backward(
        s2, params["norm2"]["gamma"], params["norm2"]["beta"], d_output, eps=eps)
    ffn = feed_forward_backward(h, **ffn_p, d_output=d_s2)
    d_h = d_s2 + ffn.pop("x")                                # residual + FFN path
    grads["ffn"] = ffn
    d_s1, grads["norm1"]["gamma"], grads["norm1"]["beta"] = layer_norm_backward(
        s1, params["norm1"]["gamma"], params["norm1"]["beta"], d_h, eps=eps)
    mha = multi_head_attention_backward(x, x, num_heads=num_heads, d_output=d_s1, mask=mask, **attn_p)
    d_x = d_s1 + mha.pop("x_q") + mha.pop("x_kv")            # residual + query path + key/value path
    grads["self_attn"] = mha
    return {"x": d_x, **grads}
