"""Encoder and decoder layers, their stacks and the whole encoder-decoder, as functions.

Derived in chapter 7 (the paper's §3.1; Métwalli and Elhefny, §2) from the pieces of
chapters 4 and 6; chapter 11's trained model (helpers.model) calls exactly these
functions, and chapter 12's modern decoder is the same functions with other options.

Every layer here is a composition of the core helpers functions and nothing else:
:func:`helpers.multi_head_attention`, :func:`helpers.feed_forward` (or
:func:`helpers.swiglu_feed_forward`) and :func:`helpers.layer_norm` (or
:func:`helpers.rms_norm`). A layer's parameters are a dict of dicts of arrays (NumPy arrays
or torch tensors), so a layer is a plain function and works on both backends::

    encoder layer: {"self_attn": {w_q, w_k, w_v, w_o, b_q, b_k, b_v, b_o},
                    "norm1": {gamma, beta}, "ffn": {w1, b1, w2, b2}, "norm2": {gamma, beta}}
    decoder layer: {"self_attn": ..., "norm1": ..., "cross_attn": ..., "norm2": ...,
                    "ffn": ..., "norm3": ...}

(Without biases the b_* entries and beta are absent; a SwiGLU FFN has {w1, w3, w2}; QK-norm
adds q_gamma, k_gamma to the attention.) The order of the sub-layers is written once, in
:data:`ENCODER_LAYER` and :data:`DECODER_LAYER`; each sub-layer f is wrapped by one
residual connection, :func:`residual`, in one of three ways (chapter 6):

    norm="post"  x -> Norm(x + f(x))          the paper, Métwalli and Elhefny §3.4 (nn.Transformer's default)
    norm="pre"   x -> x + f(Norm(x))          pre-LN (norm_first=True in PyTorch)
    norm="none"  x -> x + f(x)                the *Mathematical Formulation* note's X + Y + FFN(X + Y)

A decoder-only language model's layer is an encoder layer with ``causal=True``.
:class:`LayerOptions` holds what the paper's layer leaves fixed and later chapters vary.

Masks follow the rest of :mod:`helpers`: boolean, True where attending is allowed,
broadcastable to (..., n_q, n_k). (PyTorch's nn.Transformer uses the opposite convention.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from array_api_compat import is_torch_array

from ._backend import shape
from .feed_forward import feed_forward
from .layer_norm import layer_norm
from .multi_head import multi_head_attention

NORMS = ("post", "pre", "none")                   # where the normalisation sits (chapter 6)
NORMALIZATIONS = ("layer_norm", "rms_norm")       # which normalisation (chapters 6 and 12)
FFNS = ("relu", "gelu", "swiglu")                 # the position-wise network (chapters 6 and 12)

# The sub-layers of each layer kind, in order, each with the name of its normalisation.
ENCODER_LAYER = (("self_attn", "norm1"), ("ffn", "norm2"))
DECODER_LAYER = (("self_attn", "norm1"), ("cross_attn", "norm2"), ("ffn", "norm3"))
LAYER_STRUCTURES = {"encoder": ENCODER_LAYER, "decoder": DECODER_LAYER}

# The parts of the paper's layers and their parameter names (chapter 7).
ATTENTION_KEYS = ("w_q", "w_k", "w_v", "w_o", "b_q", "b_k", "b_v", "b_o")
FFN_KEYS = ("w1", "b1", "w2", "b2")
NORM_KEYS = ("gamma", "beta")
ENCODER_LAYER_PARTS = {"self_attn": ATTENTION_KEYS, "norm1": NORM_KEYS, "ffn": FFN_KEYS,
                       "norm2": NORM_KEYS}
DECODER_LAYER_PARTS = {"self_attn": ATTENTION_KEYS, "norm1": NORM_KEYS,
                       "cross_attn": ATTENTION_KEYS, "norm2": NORM_KEYS, "ffn": FFN_KEYS,
                       "norm3": NORM_KEYS}


@dataclass(frozen=True)
class LayerOptions:
    """What a layer can vary beyond the paper's (the defaults are the paper's layer).

    normalization: "layer_norm" (chapter 6) or "rms_norm" (chapter 12).
    ffn: "relu" (the paper), "gelu" or "swiglu" (chapter 12).
    bias: the projections, the FFN and LayerNorm have biases (b_*, beta).
    num_kv_heads: key/value heads of grouped-query attention (None: one per query head).
    rotary_theta: rotary position embeddings in self-attention with this base (None: off).
    qk_norm: RMS-normalise each head's queries and keys (q_gamma, k_gamma).
    fused: torch's own kernels (F.scaled_dot_product_attention, F.layer_norm, ...) instead
        of the chapters' formulas; torch tensors only. The two agree (tests/test_fused.py).
    dropout: on each sub-layer's output before the residual sum (torch, training only).
    attention_dropout: on the attention weights (torch, training only).
    """

    normalization: str = "layer_norm"
    ffn: str = "relu"
    bias: bool = True
    num_kv_heads: int | None = None
    rotary_theta: float | None = None
    qk_norm: bool = False
    fused: bool = False
    dropout: float = 0.0
    attention_dropout: float = 0.0

    def __post_init__(self):
        for name, options in (("normalization", NORMALIZATIONS), ("ffn", FFNS)):
            if getattr(self, name) not in options:
                raise ValueError(f"LayerOptions: {name} must be one of {options}, "
                                 f"got {getattr(self, name)!r}")
        if self.num_kv_heads is not None and (isinstance(self.num_kv_heads, bool) or not isinstance(
                self.num_kv_heads, int) or self.num_kv_heads < 1):
            raise ValueError(f"LayerOptions: num_kv_heads must be a positive integer or None, "
                             f"got {self.num_kv_heads!r}")
        if self.rotary_theta is not None and not (isinstance(self.rotary_theta, (int, float))
                                                  and self.rotary_theta > 1):
            raise ValueError(f"LayerOptions: rotary_theta must be a number > 1 or None, "
                             f"got {self.rotary_theta!r}")
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"LayerOptions: {name} must lie in [0, 1), got {getattr(self, name)!r}")


PAPER = LayerOptions()


def part_keys(part: str, options: LayerOptions = PAPER) -> tuple:
    """The parameter names of one part ("self_attn", "cross_attn", "ffn", "norm1", ...)."""
    if part.endswith("attn"):
        keys = ("w_q", "w_k", "w_v", "w_o") + (("b_q", "b_k", "b_v", "b_o") if options.bias else ())
        return keys + (("q_gamma", "k_gamma") if options.qk_norm else ())
    if part == "ffn":
        if options.ffn == "swiglu":
            return ("w1", "w3", "w2")
        return ("w1", "b1", "w2", "b2") if options.bias else ("w1", "w2")
    if part.startswith("norm"):
        return ("gamma", "beta") if options.normalization == "layer_norm" and options.bias else ("gamma",)
    raise ValueError(f"part_keys: unknown part {part!r}")


def _check_params(func: str, params, structure, norm: str, options: LayerOptions):
    if norm not in NORMS:
        raise ValueError(f"{func}: norm must be one of {NORMS}, got {norm!r}")
    if not isinstance(options, LayerOptions):
        raise TypeError(f"{func}: options must be a helpers.layers.LayerOptions, got {type(options).__name__}")
    if not isinstance(params, dict):
        raise TypeError(f"{func}: params must be a dict of dicts of arrays, got {type(params).__name__}")
    for sublayer, norm_part in structure:
        for part in (sublayer, norm_part):
            if norm == "none" and part == norm_part:
                continue  # no normalisation: its parameters are not used
            keys = part_keys(part, options)
            if not isinstance(params.get(part), dict):
                raise ValueError(f"{func}: params needs a dict params[{part!r}] with keys {keys}; "
                                 f"params has keys {sorted(params)}")
            missing = [k for k in keys if k not in params[part]]
            if missing:
                raise ValueError(f"{func}: params[{part!r}] lacks {missing}; it has {sorted(params[part])}")
            unknown = sorted(set(params[part]) - set(keys))
            if unknown:
                raise ValueError(f"{func}: params[{part!r}] has {unknown}, which these options do not use "
                                 f"(expected exactly {list(keys)}; see helpers.layers.LayerOptions)")


# ---------------------------------------------------------------- the pieces of a layer

def normalize(x, params, options: LayerOptions = PAPER, eps: float = 1e-5):
    """LayerNorm (chapter 6) or RMSNorm (chapter 12) of x (..., d) with ``params`` {gamma[, beta]}."""
    if options.normalization == "rms_norm":
        from .rms_norm import rms_norm
        return rms_norm(x, params["gamma"], eps=eps, fused=options.fused)
    return layer_norm(x, params["gamma"], params.get("beta"), eps=eps, fused=options.fused)


def dropout(x, p: float):
    """Inverted dropout (torch only): zero each entry with probability p, scale the rest by
    1/(1 - p). p = 0 returns x itself."""
    if not p:
        return x
    import torch.nn.functional as F
    return F.dropout(x, p, training=True)


def residual(x, sublayer, norm_params, norm: str = "post", options: LayerOptions = PAPER,
             eps: float = 1e-5):
    """One residual connection around ``sublayer`` (chapter 6); returns (output, extra).

        norm="post":  Norm(x + Dropout(f(x)))       the paper
        norm="pre":   x + Dropout(f(Norm(x)))
        norm="none":  x + Dropout(f(x))

    ``sublayer`` maps (..., n, d) to ((..., n, d), extra) (extra: attention weights or None).
    Shapes: x (..., n, d) -> (..., n, d). Every layer of the course uses this wrapper.
    """
    if norm == "pre":
        out, extra = sublayer(normalize(x, norm_params, options, eps))     # (..., n, d)
        return x + dropout(out, options.dropout), extra
    out, extra = sublayer(x)                                               # (..., n, d)
    total = x + dropout(out, options.dropout)                             # (..., n, d)
    return (normalize(total, norm_params, options, eps) if norm == "post" else total), extra


def attention_sublayer(params, x, x_kv, num_heads: int, mask=None, options: LayerOptions = PAPER, *,
                       causal: bool = False, cache=None, rotary: bool = True):
    """Multi-head attention from x (..., n_q, d) to x_kv (..., n_k, d) with the layer's options;
    returns (output (..., n_q, d), weights (..., h, n_q, n_k) or None when fused)."""
    return multi_head_attention(
        x, x_kv, num_heads=num_heads, mask=mask, num_kv_heads=options.num_kv_heads,
        rotary_theta=options.rotary_theta if rotary else None, causal=causal, cache=cache,
        fused=options.fused, dropout=options.attention_dropout, **params)


def ffn_sublayer(params, x, options: LayerOptions = PAPER):
    """The position-wise network of the layer (chapter 6; GELU and SwiGLU in chapter 12):
    x (..., n, d) -> (..., n, d)."""
    if options.ffn == "swiglu":
        from .activations import swiglu_feed_forward
        return swiglu_feed_forward(x, params["w1"], params["w3"], params["w2"], fused=options.fused)
    return feed_forward(x, params["w1"], params.get("b1"), params["w2"], params.get("b2"),
                        activation=options.ffn, fused=options.fused)


def _layer_cache(cache, part: str, static: bool):
    if cache is None:
        return None
    return cache.setdefault(part, {"static": True} if static else {})


def _run_layer(x, params, structure, sublayers, norm, options, eps):
    """The layer: each sub-layer of ``structure`` in order, inside its residual connection;
    returns the output and the attention weights of each attention sub-layer."""
    weights = {}
    for part, norm_part in structure:
        x, extra = residual(x, sublayers[part], params.get(norm_part), norm, options, eps)
        if part.endswith("attn"):
            weights[part] = extra
    return x, weights


def encoder_layer(x, params, mask=None, norm: str = "post", *, num_heads: int, eps: float = 1e-5,
                  causal: bool = False, cache: dict | None = None, options: LayerOptions | None = None,
                  return_weights: bool = False):
    """One encoder layer: self-attention sublayer, then FFN sublayer, each with a residual.

    Formula (norm="post", the paper and Métwalli and Elhefny §3.4):
        Z = LayerNorm_1(X + MultiHead(X, X, X)),   out = LayerNorm_2(Z + FFN(Z))
    norm="pre": Z = X + MultiHead(LN_1(X), ...), out = Z + FFN(LN_2(Z)).
    norm="none" (the *Mathematical Formulation* note): Y = MultiHead(X), out = X + Y + FFN(X + Y).
    With ``causal=True`` it is the layer of a decoder-only language model (chapter 11);
    ``cache`` (a dict) then keeps its keys and values between calls while generating.

    Shapes: x (..., n, d_model); mask boolean, broadcastable to (..., n, n), True where
    attending is allowed (for padding: helpers.padding_mask(lengths, n)); returns
    (..., n, d_model), and with ``return_weights`` also {"self_attn": (..., h, n, n_k)}.
    params: see the module docstring. Derived in chapter 7.
    """
    func = "encoder_layer"
    options = PAPER if options is None else options
    _check_params(func, params, ENCODER_LAYER, norm, options)
    sublayers = {
        "self_attn": lambda h: attention_sublayer(params["self_attn"], h, h, num_heads, mask, options,
                                                  causal=causal, cache=_layer_cache(cache, "self_attn", False)),
        "ffn": lambda h: (ffn_sublayer(params["ffn"], h, options), None),
    }
    x, weights = _run_layer(x, params, ENCODER_LAYER, sublayers, norm, options, eps)
    return (x, weights) if return_weights else x


def decoder_layer(y, memory, params, self_mask=None, memory_mask=None, norm: str = "post", *,
                  num_heads: int, eps: float = 1e-5, cache: dict | None = None,
                  options: LayerOptions | None = None, return_weights: bool = False):
    """One decoder layer: masked self-attention, cross-attention to ``memory``, FFN.

    Formula (norm="post"):
        U = LN_1(Y + MultiHead(Y, Y, Y; causal, self_mask))
        V = LN_2(U + MultiHead(U, M, M; memory_mask))     queries from the decoder,
                                                           keys and values from the encoder output M
        out = LN_3(V + FFN(V))
    The self-attention is causal (chapter 3) and ``self_mask`` (e.g. target padding) is
    combined with it. The cross-attention projects M with its own W^K, W^V (the
    *Mathematical Formulation* note uses M directly; the real layer does not). The memory
    M is not normalised here (the encoder did that). Rotary positions, if the options ask
    for them, apply to the self-attention only.

    Shapes: y (..., n_tgt, d_model), memory (..., n_src, d_model); self_mask broadcastable
    to (..., n_tgt, n_tgt); memory_mask broadcastable to (..., n_tgt, n_src) (source
    padding). Returns (..., n_tgt, d_model) (and the weights of both attentions with
    ``return_weights``). ``cache``: keys and values of the earlier target tokens, and the
    memory's projections computed once. Derived in chapter 7.
    """
    func = "decoder_layer"
    options = PAPER if options is None else options
    _check_params(func, params, DECODER_LAYER, norm, options)
    if y.shape[-1] != memory.shape[-1]:
        raise ValueError(f"{func}: y has shape {shape(y)} and memory has shape {shape(memory)}: "
                         "their last axes (d_model) must be equal")
    sublayers = {
        "self_attn": lambda h: attention_sublayer(params["self_attn"], h, h, num_heads, self_mask, options,
                                                  causal=True, cache=_layer_cache(cache, "self_attn", False)),
        "cross_attn": lambda h: attention_sublayer(params["cross_attn"], h, memory, num_heads, memory_mask,
                                                   options, cache=_layer_cache(cache, "cross_attn", True),
                                                   rotary=False),
        "ffn": lambda h: (ffn_sublayer(params["ffn"], h, options), None),
    }
    y, weights = _run_layer(y, params, DECODER_LAYER, sublayers, norm, options, eps)
    return (y, weights) if return_weights else y


def _layer_caches(caches, n_layers):
    if caches is None:
        return [None] * n_layers
    while len(caches) < n_layers:
        caches.append({})
    return caches


def encoder(x, layers, mask=None, norm: str = "post", final_norm=None, *, num_heads: int,
            eps: float = 1e-5, causal: bool = False, caches: list | None = None,
            options: LayerOptions | None = None, return_weights: bool = False):
    """The encoder stack: N encoder layers in a row, then an optional final normalisation.

    ``layers`` is a list of encoder-layer params; ``final_norm`` a dict {gamma[, beta]} or None
    (nn.TransformerEncoder's ``norm``; nn.Transformer always has one). With ``causal=True``
    this is the stack of a decoder-only language model; ``caches`` (a list, filled with one
    dict per layer) keeps each layer's keys and values while generating. Shapes as
    :func:`encoder_layer`; with ``return_weights`` also a list of each layer's weights.
    Derived in chapter 7 (the *Mathematical Formulation* note: X^(l) -> X^(l+1), l = 1..L).
    """
    options = PAPER if options is None else options
    weights = []
    for params, cache in zip(layers, _layer_caches(caches, len(layers))):
        x, w = encoder_layer(x, params, mask, norm, num_heads=num_heads, eps=eps, causal=causal,
                             cache=cache, options=options, return_weights=True)
        weights.append(w)
    if final_norm is not None:
        x = normalize(x, final_norm, options, eps)
    return (x, weights) if return_weights else x


def decoder(y, memory, layers, self_mask=None, memory_mask=None, norm: str = "post",
            final_norm=None, *, num_heads: int, eps: float = 1e-5, caches: list | None = None,
            options: LayerOptions | None = None, return_weights: bool = False):
    """The decoder stack: N decoder layers, each attending to the same ``memory``, then an
    optional final normalisation. Shapes and ``caches`` as :func:`decoder_layer` and
    :func:`encoder`. Derived in chapter 7.
    """
    options = PAPER if options is None else options
    weights = []
    for params, cache in zip(layers, _layer_caches(caches, len(layers))):
        y, w = decoder_layer(y, memory, params, self_mask, memory_mask, norm, num_heads=num_heads,
                             eps=eps, cache=cache, options=options, return_weights=True)
        weights.append(w)
    if final_norm is not None:
        y = normalize(y, final_norm, options, eps)
    return (y, weights) if return_weights else y


def encoder_decoder(src, tgt, params, src_mask=None, tgt_mask=None, memory_mask=None,
                    norm: str = "post", *, num_heads: int, eps: float = 1e-5,
                    options: LayerOptions | None = None):
    """The whole encoder-decoder on embedded inputs (what nn.Transformer.forward computes).

        M = Encoder(src; src_mask),   out = Decoder(tgt, M; causal + tgt_mask, memory_mask)

    Shapes: src (..., n_src, d_model), tgt (..., n_tgt, d_model) (embeddings plus positional
    encoding); src_mask broadcastable to (..., n_src, n_src), tgt_mask to (..., n_tgt, n_tgt),
    memory_mask to (..., n_tgt, n_src), all True where attending is allowed. Returns
    (..., n_tgt, d_model), the input of the final linear layer and softmax.
    params: {"encoder": [layer params], "encoder_norm": {gamma, beta} or None,
             "decoder": [layer params], "decoder_norm": {gamma, beta} or None}.
    Derived in chapter 7 (Métwalli and Elhefny, §2.3: encode the input, then decode).
    """
    for key in ("encoder", "decoder"):
        if not isinstance(params, dict) or not isinstance(params.get(key), (list, tuple)):
            raise ValueError(f"encoder_decoder: params[{key!r}] must be a list of layer params")
    memory = encoder(src, params["encoder"], src_mask, norm, params.get("encoder_norm"),
                     num_heads=num_heads, eps=eps, options=options)
    return decoder(tgt, memory, params["decoder"], tgt_mask, memory_mask, norm,
                   params.get("decoder_norm"), num_heads=num_heads, eps=eps, options=options)


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


def _ffn_from_torch(layer):
    return dict(w1=layer.linear1.weight.T, b1=layer.linear1.bias,
                w2=layer.linear2.weight.T, b2=layer.linear2.bias)


def params_from_torch_encoder_layer(layer):
    """Parameters of a torch.nn.TransformerEncoderLayer as an :func:`encoder_layer` dict.

    nn.Linear stores weights as (out, in) and computes x W^T + b; we store W^T so that
    x @ w is the same product. Tensors are views of the layer's own parameters (gradients
    flow back to them). Use ``norm="pre" if layer.norm_first else "post"``.
    """
    _check_torch_layer("params_from_torch_encoder_layer", layer)
    return {"self_attn": _attention_from_torch(layer.self_attn),
            "norm1": _norm_from_torch(layer.norm1),
            "ffn": _ffn_from_torch(layer),
            "norm2": _norm_from_torch(layer.norm2)}


def params_from_torch_decoder_layer(layer):
    """Parameters of a torch.nn.TransformerDecoderLayer as a :func:`decoder_layer` dict
    (``multihead_attn`` is the cross-attention)."""
    _check_torch_layer("params_from_torch_decoder_layer", layer)
    return {"self_attn": _attention_from_torch(layer.self_attn),
            "norm1": _norm_from_torch(layer.norm1),
            "cross_attn": _attention_from_torch(layer.multihead_attn),
            "norm2": _norm_from_torch(layer.norm2),
            "ffn": _ffn_from_torch(layer),
            "norm3": _norm_from_torch(layer.norm3)}


def params_from_torch_transformer(model):
    """Parameters of a torch.nn.Transformer as an :func:`encoder_decoder` dict, including the
    final encoder and decoder LayerNorms that nn.Transformer always adds."""
    enc, dec = model.encoder, model.decoder
    return {"encoder": [params_from_torch_encoder_layer(l) for l in enc.layers],
            "encoder_norm": None if enc.norm is None else _norm_from_torch(enc.norm),
            "decoder": [params_from_torch_decoder_layer(l) for l in dec.layers],
            "decoder_norm": None if dec.norm is None else _norm_from_torch(dec.norm)}


# ---------------------------------------------------------------- params structures

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
    """The number of trained numbers: the sum of the arrays' sizes in a params structure
    (nested dicts and lists), or of the parameters of a torch.nn.Module."""
    if callable(getattr(params, "parameters", None)):          # an nn.Module
        return sum(p.numel() for p in params.parameters())
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


# ---------------------------------------------------------------- shapes and initial parameters

def layer_parameter_shapes(d_model: int, d_ff: int, kind: str = "encoder", *, num_heads: int = 1,
                           options: LayerOptions | None = None, norm: str = "post") -> dict:
    """The shape of every parameter of one layer: {part: {name: shape}}, parts in the layer's
    order (:data:`ENCODER_LAYER`, :data:`DECODER_LAYER`). ``num_heads`` matters only with
    grouped-query attention and QK-norm (d_k = d_model / num_heads); with norm="none" the
    layer has no normalisation parameters."""
    func = "layer_parameter_shapes"
    options = PAPER if options is None else options
    if kind not in LAYER_STRUCTURES:
        raise ValueError(f"{func}: kind must be 'encoder' or 'decoder', got {kind!r}")
    for name, v in (("d_model", d_model), ("d_ff", d_ff), ("num_heads", num_heads)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{func}: {name} must be a positive integer, got {v!r}")
    if d_model % num_heads:
        raise ValueError(f"{func}: num_heads={num_heads} must divide d_model={d_model}")
    d_k = d_model // num_heads
    kv = (options.num_kv_heads or num_heads) * d_k
    sizes = {"w_q": (d_model, d_model), "w_k": (d_model, kv), "w_v": (d_model, kv),
             "w_o": (d_model, d_model), "b_q": (d_model,), "b_k": (kv,), "b_v": (kv,),
             "b_o": (d_model,), "q_gamma": (d_k,), "k_gamma": (d_k,),
             "w1": (d_model, d_ff), "w3": (d_model, d_ff), "b1": (d_ff,), "w2": (d_ff, d_model),
             "b2": (d_model,), "gamma": (d_model,), "beta": (d_model,)}
    if norm not in NORMS:
        raise ValueError(f"{func}: norm must be one of {NORMS}, got {norm!r}")
    shapes = {}
    for sublayer, norm_part in LAYER_STRUCTURES[kind]:
        for part in (sublayer, norm_part) if norm != "none" else (sublayer,):
            shapes[part] = {k: sizes[k] for k in part_keys(part, options)}
    return shapes


def _xavier(rng, fan_in, fan_out):
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=(fan_in, fan_out))


def init_layer_params(d_model: int, d_ff: int, kind: str = "encoder", *, rng, backend: str = "numpy",
                      dtype=None, num_heads: int = 1, options: LayerOptions | None = None, norm: str = "post"):
    """Fresh parameters for one layer: Xavier-uniform matrices (Glorot & Bengio 2010, what
    nn.Transformer uses), zero biases, gains (gamma) 1 and beta 0.

    kind: "encoder" or "decoder". rng: a numpy.random.Generator (so both backends get the
    same numbers). backend "torch" returns float64 tensors unless ``dtype`` says otherwise.
    Shapes: :func:`layer_parameter_shapes`.
    """
    if kind not in LAYER_STRUCTURES:
        raise ValueError(f"init_layer_params: kind must be 'encoder' or 'decoder', got {kind!r}")
    for name, v in (("d_model", d_model), ("d_ff", d_ff)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"init_layer_params: {name} must be a positive integer, got {v!r}")
    shapes = layer_parameter_shapes(d_model, d_ff, kind, num_heads=num_heads, options=options, norm=norm)
    params = {}
    for part, names in shapes.items():
        params[part] = {}
        for name, size in names.items():
            if len(size) == 2:
                params[part][name] = _xavier(rng, *size)
            elif name.endswith("gamma"):
                params[part][name] = np.ones(size)
            else:
                params[part][name] = np.zeros(size)
    if backend == "numpy":
        return params if dtype is None else map_params(lambda a: a.astype(dtype), params)
    if backend == "torch":
        import torch
        return map_params(lambda a: torch.tensor(a, dtype=dtype or torch.float64), params)
    raise ValueError(f"init_layer_params: backend must be 'numpy' or 'torch', got {backend!r}")


# ---------------------------------------------------------------- counting by formula

def attention_parameter_count(d_model: int, num_heads: int = 1, num_kv_heads: int | None = None,
                              bias: bool = True, qk_norm: bool = False) -> int:
    """Parameters of one attention layer with d_k = d_v = d_model / num_heads (chapters 4, 12).

    W^Q and W^O: d_model^2 each; W^K and W^V: d_model h_kv d_k each (d_model^2 when
    h_kv = h); biases b_q, b_o (d_model each) and b_k, b_v (h_kv d_k each); QK-norm gains
    2 d_k. The paper's layer (h_kv = h, biases): 4 d_model^2 + 4 d_model.
    """
    func = "attention_parameter_count"
    for name, v in (("d_model", d_model), ("num_heads", num_heads)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{func}: {name} must be a positive integer, got {v!r}")
    h_kv = num_heads if num_kv_heads is None else num_kv_heads
    if d_model % num_heads or isinstance(h_kv, bool) or not isinstance(h_kv, int) or h_kv < 1 \
            or num_heads % h_kv:
        raise ValueError(f"{func}: num_heads={num_heads} must divide d_model={d_model} and be "
                         f"a multiple of num_kv_heads={h_kv!r}")
    kv = h_kv * (d_model // num_heads)
    return (2 * d_model * d_model + 2 * d_model * kv + (2 * d_model + 2 * kv if bias else 0)
            + (2 * (d_model // num_heads) if qk_norm else 0))


def ffn_parameter_count(d_model: int, d_ff: int, ffn: str = "relu", bias: bool = True) -> int:
    """The position-wise network: W1 (d_model, d_ff), W2 (d_ff, d_model) and biases b1 (d_ff),
    b2 (d_model): 2 d_model d_ff + d_ff + d_model (chapter 6). SwiGLU (chapter 12): three
    matrices W1, W3 (d_model, d_ff), W2 (d_ff, d_model), no biases: 3 d_model d_ff."""
    if ffn == "swiglu":
        return 3 * d_model * d_ff
    return 2 * d_model * d_ff + (d_ff + d_model if bias else 0)


def layer_norm_parameter_count(d_model: int, normalization: str = "layer_norm", bias: bool = True) -> int:
    """LayerNorm: gamma and beta, 2 d_model; RMSNorm (or LayerNorm without beta): d_model."""
    return 2 * d_model if normalization == "layer_norm" and bias else d_model


def _layer_count(kind, d_model, d_ff, num_heads, options, norm):
    options = PAPER if options is None else options
    attention = attention_parameter_count(d_model, num_heads, options.num_kv_heads, options.bias,
                                          options.qk_norm)
    norm = 0 if norm == "none" else layer_norm_parameter_count(d_model, options.normalization, options.bias)
    ffn = ffn_parameter_count(d_model, d_ff, options.ffn, options.bias)
    if kind == "encoder":
        return attention + ffn + 2 * norm
    return 2 * attention + ffn + 3 * norm


def encoder_layer_parameter_count(d_model: int, d_ff: int, num_heads: int = 1,
                                  options: LayerOptions | None = None, norm: str = "post") -> int:
    """One attention, one FFN, two LayerNorms: 4 d^2 + 2 d d_ff + 9 d + d_ff (d = d_model)
    for the paper's layer; ``options`` (chapter 12) change the parts as their counts say,
    and norm="none" drops the LayerNorms."""
    return _layer_count("encoder", d_model, d_ff, num_heads, options, norm)


def decoder_layer_parameter_count(d_model: int, d_ff: int, num_heads: int = 1,
                                  options: LayerOptions | None = None, norm: str = "post") -> int:
    """Two attentions, one FFN, three LayerNorms: 8 d^2 + 2 d d_ff + 15 d + d_ff for the
    paper's layer."""
    return _layer_count("decoder", d_model, d_ff, num_heads, options, norm)


def kv_cache_bytes(num_layers: int, n: int, num_kv_heads: int, d_k: int, bytes_per_number: int,
                   batch: int = 1) -> int:
    """Memory of a KV cache: 2 (keys and values) x layers x n x h_kv x d_k x bytes (x batch).

    Derived in chapter 12: each layer keeps, for each of the n tokens, one key and one value
    of d_k numbers per key/value head.
    """
    for name, v in (("num_layers", num_layers), ("n", n), ("num_kv_heads", num_kv_heads),
                    ("d_k", d_k), ("bytes_per_number", bytes_per_number), ("batch", batch)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"kv_cache_bytes: {name} must be a positive integer, got {v!r}")
    return 2 * num_layers * n * num_kv_heads * d_k * bytes_per_number * batch


def transformer_parameter_counts(d_model: int, d_ff: int, num_layers: int, vocab_size: int,
                                 tied_embeddings: bool = True, final_norms: bool = True,
                                 output_bias: bool = False) -> dict:
    """Where the parameters of an encoder-decoder Transformer go, by part (chapter 7).

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
