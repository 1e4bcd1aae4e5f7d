"""Encoder and decoder layers, their stacks and the whole encoder-decoder (seeds 001, 003 §2).

Every layer here is a composition of the core helpers functions and nothing else:
:func:`helpers.multi_head_attention` (with biases), :func:`helpers.feed_forward` and
:func:`helpers.layer_norm`. A layer's parameters are a dict of dicts of arrays (NumPy
arrays or torch tensors), so a layer is a plain function and works on both backends::

    encoder layer: {"self_attn": {w_q, w_k, w_v, w_o, b_q, b_k, b_v, b_o},
                    "norm1": {gamma, beta}, "ffn": {w1, b1, w2, b2}, "norm2": {gamma, beta}}
    decoder layer: {"self_attn": ..., "norm1": ..., "cross_attn": ..., "norm2": ...,
                    "ffn": ..., "norm3": ...}

Each sublayer f (attention or FFN) is wrapped in a residual connection in one of three ways:

    norm="post"  x -> LayerNorm(x + f(x))          the paper, seed 003 §3.4 (nn.Transformer's default)
    norm="pre"   x -> x + f(LayerNorm(x))          pre-LN (norm_first=True in PyTorch)
    norm="none"  x -> x + f(x)                     seed 001's X + Y + FFN(X + Y), no normalisation

Masks follow the rest of :mod:`helpers`: boolean, True where attending is allowed,
broadcastable to (..., n_q, n_k). (PyTorch's nn.Transformer uses the opposite convention.)
"""
from __future__ import annotations

import math

import numpy as np
from array_api_compat import is_torch_array

from ._backend import shape
from .feed_forward import feed_forward
from .layer_norm import layer_norm
from .multi_head import multi_head_attention

NORMS = ("post", "pre", "none")
ATTENTION_KEYS = ("w_q", "w_k", "w_v", "w_o", "b_q", "b_k", "b_v", "b_o")
FFN_KEYS = ("w1", "b1", "w2", "b2")
NORM_KEYS = ("gamma", "beta")
ENCODER_LAYER_PARTS = {"self_attn": ATTENTION_KEYS, "norm1": NORM_KEYS, "ffn": FFN_KEYS,
                       "norm2": NORM_KEYS}
DECODER_LAYER_PARTS = {"self_attn": ATTENTION_KEYS, "norm1": NORM_KEYS,
                       "cross_attn": ATTENTION_KEYS, "norm2": NORM_KEYS, "ffn": FFN_KEYS,
                       "norm3": NORM_KEYS}


def _check_params(func: str, params, parts: dict, norm: str):
    if norm not in NORMS:
        raise ValueError(f"{func}: norm must be one of {NORMS}, got {norm!r}")
    if not isinstance(params, dict):
        raise TypeError(f"{func}: params must be a dict of dicts of arrays, got {type(params).__name__}")
    for part, keys in parts.items():
        if norm == "none" and part.startswith("norm"):
            continue  # no normalisation: LayerNorm parameters are not used
        if not isinstance(params.get(part), dict):
            raise ValueError(f"{func}: params needs a dict params[{part!r}] with keys {keys}; "
                             f"params has keys {sorted(params)}")
        missing = [k for k in keys if k not in params[part]]
        if missing:
            raise ValueError(f"{func}: params[{part!r}] lacks {missing}; it has {sorted(params[part])}")


def _residual(x, sublayer, norm_params, norm: str, eps: float):
    """One residual connection around ``sublayer`` in the style ``norm``."""
    if norm == "post":
        return layer_norm(x + sublayer(x), eps=eps, **norm_params)
    if norm == "pre":
        return x + sublayer(layer_norm(x, eps=eps, **norm_params))
    return x + sublayer(x)


def _attention(params, num_heads, mask):
    def sublayer(x_q, x_kv=None):
        x_kv = x_q if x_kv is None else x_kv
        return multi_head_attention(x_q, x_kv, num_heads=num_heads, mask=mask, **params)[0]
    return sublayer


def encoder_layer(x, params, mask=None, norm: str = "post", *, num_heads: int, eps: float = 1e-5):
    """One encoder layer: self-attention sublayer, then FFN sublayer, each with a residual.

    Formula (norm="post", the paper and seed 003 §3.4):
        Z = LayerNorm_1(X + MultiHead(X, X, X)),   out = LayerNorm_2(Z + FFN(Z))
    norm="pre": Z = X + MultiHead(LN_1(X), ...), out = Z + FFN(LN_2(Z)).
    norm="none" (seed 001): Y = MultiHead(X), out = X + Y + FFN(X + Y).

    Shapes: x (..., n, d_model); mask boolean, broadcastable to (..., n, n), True where
    attending is allowed (for padding: helpers.padding_mask(lengths, n)); returns (..., n, d_model).
    params: see the module docstring (``ENCODER_LAYER_PARTS``).
    Source: seed 001 "Transformer Encoder: Layer Structure", seed 003 §2.1 and §3.4.
    """
    func = "encoder_layer"
    _check_params(func, params, ENCODER_LAYER_PARTS, norm)
    self_attention = _attention(params["self_attn"], num_heads, mask)
    x = _residual(x, self_attention, params.get("norm1"), norm, eps)
    ffn = lambda z: feed_forward(z, **params["ffn"])  # noqa: E731
    return _residual(x, ffn, params.get("norm2"), norm, eps)


def decoder_layer(y, memory, params, self_mask=None, memory_mask=None, norm: str = "post", *,
                  num_heads: int, eps: float = 1e-5):
    """One decoder layer: masked self-attention, cross-attention to ``memory``, FFN.

    Formula (norm="post"):
        U = LN_1(Y + MultiHead(Y, Y, Y; self_mask))
        V = LN_2(U + MultiHead(U, M, M; memory_mask))     queries from the decoder,
                                                           keys and values from the encoder output M
        out = LN_3(V + FFN(V))
    The cross-attention projects M with its own W^K, W^V (seed 001 uses M directly; the
    real layer does not). The memory M is not normalised here (the encoder did that).

    Shapes: y (..., n_tgt, d_model), memory (..., n_src, d_model); self_mask broadcastable
    to (..., n_tgt, n_tgt) (causal, and target padding); memory_mask broadcastable to
    (..., n_tgt, n_src) (source padding). Returns (..., n_tgt, d_model).
    Source: seed 001 "Transformer Decoder", seed 003 §2.2.
    """
    func = "decoder_layer"
    _check_params(func, params, DECODER_LAYER_PARTS, norm)
    if y.shape[-1] != memory.shape[-1]:
        raise ValueError(f"{func}: y has shape {shape(y)} and memory has shape {shape(memory)}: "
                         "their last axes (d_model) must be equal")
    self_attention = _attention(params["self_attn"], num_heads, self_mask)
    y = _residual(y, self_attention, params.get("norm1"), norm, eps)
    cross = _attention(params["cross_attn"], num_heads, memory_mask)
    y = _residual(y, lambda z: cross(z, memory), params.get("norm2"), norm, eps)
    ffn = lambda z: feed_forward(z, **params["ffn"])  # noqa: E731
    return _residual(y, ffn, params.get("norm3"), norm, eps)


def encoder(x, layers, mask=None, norm: str = "post", final_norm=None, *, num_heads: int,
            eps: float = 1e-5):
    """The encoder stack: N encoder layers in a row, then an optional final LayerNorm.

    ``layers`` is a list of encoder-layer params; ``final_norm`` a dict {gamma, beta} or None
    (nn.TransformerEncoder's ``norm``; nn.Transformer always has one). Shapes as
    :func:`encoder_layer`. Source: seed 001 (X^(l) -> X^(l+1), l = 1..L), seed 003 §2.3.
    """
    for params in layers:
        x = encoder_layer(x, params, mask, norm, num_heads=num_heads, eps=eps)
    return x if final_norm is None else layer_norm(x, eps=eps, **final_norm)


def decoder(y, memory, layers, self_mask=None, memory_mask=None, norm: str = "post",
            final_norm=None, *, num_heads: int, eps: float = 1e-5):
    """The decoder stack: N decoder layers, each attending to the same ``memory``, then an
    optional final LayerNorm. Shapes as :func:`decoder_layer`. Source: seed 001, seed 003 §2.3.
    """
    for params in layers:
        y = decoder_layer(y, memory, params, self_mask, memory_mask, norm, num_heads=num_heads, eps=eps)
    return y if final_norm is None else layer_norm(y, eps=eps, **final_norm)


def encoder_decoder(src, tgt, params, src_mask=None, tgt_mask=None, memory_mask=None,
                    norm: str = "post", *, num_heads: int, eps: float = 1e-5):
    """The whole encoder-decoder on embedded inputs (what nn.Transformer.forward computes).

        M = Encoder(src; src_mask),   out = Decoder(tgt, M; tgt_mask, memory_mask)

    Shapes: src (..., n_src, d_model), tgt (..., n_tgt, d_model) (embeddings plus positional
    encoding); src_mask broadcastable to (..., n_src, n_src), tgt_mask to (..., n_tgt, n_tgt),
    memory_mask to (..., n_tgt, n_src), all True where attending is allowed. Returns
    (..., n_tgt, d_model), the input of the final linear layer and softmax.
    params: {"encoder": [layer params], "encoder_norm": {gamma, beta} or None,
             "decoder": [layer params], "decoder_norm": {gamma, beta} or None}.
    Source: seed 003 §2.3 (encode the input, then decode), seed 001.
    """
    for key in ("encoder", "decoder"):
        if not isinstance(params, dict) or not isinstance(params.get(key), (list, tuple)):
            raise ValueError(f"encoder_decoder: params[{key!r}] must be a list of layer params")
    memory = encoder(src, params["encoder"], src_mask, norm, params.get("encoder_norm"),
                     num_heads=num_heads, eps=eps)
    return decoder(tgt, memory, params["decoder"], tgt_mask, memory_mask, norm,
                   params.get("decoder_norm"), num_heads=num_heads, eps=eps)


# ---------------------------------------------------------------- parameters from PyTorch

def _attention_from_torch(mha):
    """nn.MultiheadAttention -> our row-vector attention params.

    in_proj_weight stacks W^Q, W^K, W^V as (3 d_model, d_model) in nn.Linear's (out, in)
    layout, so each block is transposed; out_proj.weight is transposed likewise.
    """
    if mha.in_proj_weight is None:
        raise ValueError("params_from_torch: attention with separate q/k/v projection weights "
                         "(kdim/vdim != embed_dim) is not supported")
    w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
    d = mha.embed_dim
    if mha.in_proj_bias is None:
        zeros = mha.in_proj_weight.new_zeros(d)
        b_q = b_k = b_v = b_o = zeros
    else:
        b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
        b_o = mha.out_proj.bias
    return dict(w_q=w_q.T, w_k=w_k.T, w_v=w_v.T, w_o=mha.out_proj.weight.T,
                b_q=b_q, b_k=b_k, b_v=b_v, b_o=b_o)


def _norm_from_torch(ln):
    return dict(gamma=ln.weight, beta=ln.bias)


def _check_torch_layer(func, layer):
    import torch.nn.functional as F
    activation = getattr(layer, "activation", None)
    if activation not in (F.relu,) and type(activation).__name__ != "ReLU":
        raise ValueError(f"{func}: the layer's activation must be ReLU (helpers.feed_forward), "
                         f"got {activation!r}")
    if layer.linear1.bias is None or layer.norm1.bias is None:
        raise ValueError(f"{func}: the layer was built with bias=False; helpers' layers "
                         "always have biases and LayerNorm beta")


def params_from_torch_encoder_layer(layer):
    """Parameters of a torch.nn.TransformerEncoderLayer as an :func:`encoder_layer` dict.

    nn.Linear stores weights as (out, in) and computes x W^T + b; we store W^T so that
    x @ w is the same product. Tensors are views of the layer's own parameters (gradients
    flow back to them). Use ``norm="pre" if layer.norm_first else "post"``.
    """
    _check_torch_layer("params_from_torch_encoder_layer", layer)
    return {"self_attn": _attention_from_torch(layer.self_attn),
            "norm1": _norm_from_torch(layer.norm1),
            "ffn": dict(w1=layer.linear1.weight.T, b1=layer.linear1.bias,
                        w2=layer.linear2.weight.T, b2=layer.linear2.bias),
            "norm2": _norm_from_torch(layer.norm2)}


def params_from_torch_decoder_layer(layer):
    """Parameters of a torch.nn.TransformerDecoderLayer as a :func:`decoder_layer` dict
    (``multihead_attn`` is the cross-attention)."""
    _check_torch_layer("params_from_torch_decoder_layer", layer)
    return {"self_attn": _attention_from_torch(layer.self_attn),
            "norm1": _norm_from_torch(layer.norm1),
            "cross_attn": _attention_from_torch(layer.multihead_attn),
            "norm2": _norm_from_torch(layer.norm2),
            "ffn": dict(w1=layer.linear1.weight.T, b1=layer.linear1.bias,
                        w2=layer.linear2.weight.T, b2=layer.linear2.bias),
            "norm3": _norm_from_torch(layer.norm3)}


def params_from_torch_transformer(model):
    """Parameters of a torch.nn.Transformer as an :func:`encoder_decoder` dict, including the
    final encoder and decoder LayerNorms that nn.Transformer always adds."""
    enc, dec = model.encoder, model.decoder
    return {"encoder": [params_from_torch_encoder_layer(l) for l in enc.layers],
            "encoder_norm": None if enc.norm is None else _norm_from_torch(enc.norm),
            "decoder": [params_from_torch_decoder_layer(l) for l in dec.layers],
            "decoder_norm": None if dec.norm is None else _norm_from_torch(dec.norm)}


def map_params(fn, params):
    """Apply ``fn`` to every array in a (nested dict / list) params structure."""
    if isinstance(params, dict):
        return {k: map_params(fn, v) for k, v in params.items()}
    if isinstance(params, (list, tuple)):
        return [map_params(fn, v) for v in params]
    if params is None:
        return None
    return fn(params)


def to_numpy(params):
    """A copy of a params structure with every torch tensor turned into a NumPy array."""
    return map_params(lambda a: a.detach().cpu().numpy() if is_torch_array(a) else np.asarray(a), params)


def count_parameters(params) -> int:
    """The number of numbers in a params structure (the sum of the arrays' sizes)."""
    total = 0
    for a in _leaves(params):
        total += math.prod(shape(a))
    return total


def _leaves(params):
    if isinstance(params, dict):
        for v in params.values():
            yield from _leaves(v)
    elif isinstance(params, (list, tuple)):
        for v in params:
            yield from _leaves(v)
    elif params is not None:
        yield params


# ---------------------------------------------------------------- initial parameters

def _xavier(rng, fan_in, fan_out):
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=(fan_in, fan_out))


def init_layer_params(d_model: int, d_ff: int, kind: str = "encoder", *, rng, backend: str = "numpy",
                      dtype=None):
    """Fresh parameters for one layer: Xavier-uniform matrices (Glorot & Bengio 2010, what
    nn.Transformer uses), zero biases, LayerNorm gamma = 1 and beta = 0.

    kind: "encoder" or "decoder". rng: a numpy.random.Generator (so both backends get the
    same numbers). backend "torch" returns float64 tensors unless ``dtype`` says otherwise.
    """
    if kind not in ("encoder", "decoder"):
        raise ValueError(f"init_layer_params: kind must be 'encoder' or 'decoder', got {kind!r}")
    for name, v in (("d_model", d_model), ("d_ff", d_ff)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"init_layer_params: {name} must be a positive integer, got {v!r}")

    def attention():
        p = {w: _xavier(rng, d_model, d_model) for w in ("w_q", "w_k", "w_v", "w_o")}
        p.update({b: np.zeros(d_model) for b in ("b_q", "b_k", "b_v", "b_o")})
        return p

    def norm():
        return dict(gamma=np.ones(d_model), beta=np.zeros(d_model))

    parts = ENCODER_LAYER_PARTS if kind == "encoder" else DECODER_LAYER_PARTS
    params = {}
    for part in parts:
        if part.endswith("attn"):
            params[part] = attention()
        elif part == "ffn":
            params[part] = dict(w1=_xavier(rng, d_model, d_ff), b1=np.zeros(d_ff),
                                w2=_xavier(rng, d_ff, d_model), b2=np.zeros(d_model))
        else:
            params[part] = norm()
    if backend == "numpy":
        return params if dtype is None else map_params(lambda a: a.astype(dtype), params)
    if backend == "torch":
        import torch
        return map_params(lambda a: torch.tensor(a, dtype=dtype or torch.float64), params)
    raise ValueError(f"init_layer_params: backend must be 'numpy' or 'torch', got {backend!r}")


# ---------------------------------------------------------------- counting by formula

def attention_parameter_count(d_model: int) -> int:
    """W^Q, W^K, W^V, W^O (d_model x d_model each, h d_k = d_model) plus 4 bias vectors:
    4 d_model^2 + 4 d_model."""
    return 4 * d_model * d_model + 4 * d_model


def ffn_parameter_count(d_model: int, d_ff: int) -> int:
    """W1 (d_model x d_ff), b1 (d_ff), W2 (d_ff x d_model), b2 (d_model):
    2 d_model d_ff + d_ff + d_model."""
    return 2 * d_model * d_ff + d_ff + d_model


def layer_norm_parameter_count(d_model: int) -> int:
    """gamma and beta: 2 d_model."""
    return 2 * d_model


def encoder_layer_parameter_count(d_model: int, d_ff: int) -> int:
    """One attention, one FFN, two LayerNorms: 4 d^2 + 2 d d_ff + 9 d + d_ff (d = d_model)."""
    return (attention_parameter_count(d_model) + ffn_parameter_count(d_model, d_ff)
            + 2 * layer_norm_parameter_count(d_model))


def decoder_layer_parameter_count(d_model: int, d_ff: int) -> int:
    """Two attentions, one FFN, three LayerNorms: 8 d^2 + 2 d d_ff + 15 d + d_ff."""
    return (2 * attention_parameter_count(d_model) + ffn_parameter_count(d_model, d_ff)
            + 3 * layer_norm_parameter_count(d_model))


def transformer_parameter_counts(d_model: int, d_ff: int, num_layers: int, vocab_size: int,
                                 tied_embeddings: bool = True, final_norms: bool = True,
                                 output_bias: bool = False) -> dict:
    """Where the parameters of an encoder-decoder Transformer go, by part.

    tied_embeddings=True: one (vocab, d_model) table shared by the source embedding, the
    target embedding and the pre-softmax linear layer (the paper's §3.4, with a shared
    source-target vocabulary). False: three separate tables. Sinusoidal positional
    encodings have no parameters. final_norms: nn.Transformer's LayerNorms after each stack.
    Returns a dict of counts whose values add up to the total.
    """
    for name, v in (("d_model", d_model), ("d_ff", d_ff), ("num_layers", num_layers),
                    ("vocab_size", vocab_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"transformer_parameter_counts: {name} must be a non-negative integer, got {v!r}")
    d, n = d_model, num_layers
    table = vocab_size * d
    return {
        "embeddings": table if tied_embeddings else 2 * table,
        "encoder attention": n * attention_parameter_count(d),
        "encoder FFN": n * ffn_parameter_count(d, d_ff),
        "encoder LayerNorms": n * 2 * layer_norm_parameter_count(d),
        "decoder self-attention": n * attention_parameter_count(d),
        "decoder cross-attention": n * attention_parameter_count(d),
        "decoder FFN": n * ffn_parameter_count(d, d_ff),
        "decoder LayerNorms": n * 3 * layer_norm_parameter_count(d),
        "final LayerNorms": 2 * layer_norm_parameter_count(d) if final_norms else 0,
        "output projection": (0 if tied_embeddings else table) + (vocab_size if output_bias else 0),
    }
