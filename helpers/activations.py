"""The smooth activations of today's Transformers and the gated FFN built on one (chapter 12).

    SiLU(x) = x * sigmoid(x)                                   (also called "swish")
    GELU(x) = x * Phi(x) = x/2 * (1 + erf(x / sqrt 2))         Phi: the standard normal CDF
    GELU_tanh(x) = x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
    SwiGLU FFN(x) = (SiLU(x W1) * (x W3)) W2                    no biases

Each is written once against the array API namespace. The array API has no erf, so the
exact GELU takes it from the library underneath: ``torch.special.erf`` for tensors (a
differentiable torch operation), and for NumPy the C library's erf through Python's
``math.erf``, applied element by element with ``np.frompyfunc``. That loop runs in Python
(about a microsecond per element, fine for the arrays of a course) but it is the
correctly rounded float64 erf of the platform, with erf(+-inf) = +-1 and erf(nan) = nan;
we chose it over a polynomial approximation so that both backends agree to 1e-12 and
NumPy needs no SciPy. float32 NumPy input is evaluated in float64 and rounded back.

Every function takes ``fused=False``; ``fused=True`` (torch tensors only) calls PyTorch's
own kernel (F.silu, F.gelu) instead of the formula, and the tests check both paths give
the same values and gradients. NaN in gives NaN out, never a finite number. At +-inf the
formulas give their limit where it is not inf * 0 (SiLU(+inf) = GELU(+inf) = +inf) and NaN
where it is (SiLU(-inf) = -inf * 0, GELU(-inf)), as torch does, except that F.gelu's exact
form returns NaN at +inf as well. float16 and bfloat16 are computed in float32 and rounded
once, as torch's kernels do.
"""
from __future__ import annotations

import math

from array_api_compat import is_torch_array

from ._backend import compute_dtype, formula_namespace, require_flag, require_float, require_ndim, shape

GELU_FORMS = ("none", "tanh")


def _require_torch(func, x):
    if not is_torch_array(x):
        raise TypeError(f"{func}: fused=True calls PyTorch's kernel and needs a torch tensor; "
                        f"x is a {type(x).__name__}. Use fused=False for NumPy")


def sigmoid(x):
    """sigmoid(x) = 1 / (1 + exp(-x)), computed without overflow for any x.

    With z = exp(-|x|), which lies in (0, 1]: sigmoid(x) = 1 / (1 + z) for x >= 0 and
    z / (1 + z) for x < 0 (multiply the top and bottom of 1 / (1 + e^{-x}) by e^{x}).
    Neither branch ever forms exp of a large positive number. Derived in chapter 12.
    """
    xp = formula_namespace("sigmoid", x=x)
    require_float("sigmoid", "x", x, xp)
    work, result = compute_dtype(xp, x)
    x = x if work == result else xp.astype(x, work)
    z = xp.exp(-xp.abs(x))                                   # (...,) in (0, 1], or nan
    out = xp.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))
    return out if work == result else xp.astype(out, result)


def silu(x, *, fused: bool = False):
    """SiLU(x) = x * sigmoid(x), element by element (any shape).

    Smooth, not monotone: its minimum is about -0.278 at x about -1.278; SiLU(x) -> x for
    large x and -> 0 for very negative x. Stable for large |x| (see :func:`sigmoid`).
    fused=True (torch only) calls torch.nn.functional.silu. Derived in chapter 12.
    """
    func = "silu"
    xp = formula_namespace(func, x=x)
    require_float(func, "x", x, xp)
    if require_flag(func, "fused", fused):
        _require_torch(func, x)
        import torch.nn.functional as F

        return F.silu(x)
    work, result = compute_dtype(xp, x)
    z = x if work == result else xp.astype(x, work)
    out = z * sigmoid(z)
    return out if work == result else xp.astype(out, result)


def _erf(xp, x):
    """erf element by element, through the library underneath the namespace (see the module)."""
    if is_torch_array(x):
        import torch

        return torch.special.erf(x)
    import numpy as np

    values = np.frompyfunc(math.erf, 1, 1)(np.asarray(x, dtype=np.float64))
    return np.asarray(values, dtype=np.float64).astype(x.dtype, copy=False)


def gelu(x, approximate: str = "none", *, fused: bool = False):
    """GELU(x) = x * Phi(x), element by element (any shape).

    approximate="none": the exact form x/2 * (1 + erf(x / sqrt 2)).
    approximate="tanh": x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))), the
    approximation of GPT-2 and BERT's code; the two forms differ by less than 5e-4
    anywhere (the largest gap, about 4.73e-4, is at |x| near 2.7).
    The names are those of torch.nn.functional.gelu's ``approximate`` argument;
    fused=True (torch only) calls it. Derived in chapter 12.
    """
    func = "gelu"
    xp = formula_namespace(func, x=x)
    require_float(func, "x", x, xp)
    if not isinstance(approximate, str) or approximate not in GELU_FORMS:
        raise ValueError(f"{func}: approximate must be 'none' (the exact erf form) or 'tanh', "
                         f"got {approximate!r}")
    if require_flag(func, "fused", fused):
        _require_torch(func, x)
        import torch.nn.functional as F

        return F.gelu(x, approximate=approximate)
    work, result = compute_dtype(xp, x)
    if work != result:
        return xp.astype(gelu(xp.astype(x, work), approximate), result)
    if approximate == "tanh":
        # tanh(u) rounds to +-1 for |u| > 20 in every float type, which |x| > 20 already
        # gives; cubing x clipped to [-20, 20] changes no value and cannot overflow
        # (x^3 would overflow float16 beyond |x| = 40, float32 beyond about 7e12).
        clipped = xp.clip(x, -20.0, 20.0)
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * (clipped * clipped * clipped))
        return 0.5 * x * (1.0 + xp.tanh(inner))
    return 0.5 * x * (1.0 + _erf(xp, x / math.sqrt(2.0)))


def swiglu_feed_forward(x, w1, w3, w2, *, fused: bool = False):
    """The gated FFN of Llama-style models: (SiLU(x w1) * (x w3)) w2, no biases.

    x w1 is the gate, passed through SiLU; x w3 is the value it multiplies element by
    element; w2 maps the product back. Shapes: x (..., d_model), w1 and w3
    (d_model, d_ff), w2 (d_ff, d_out) (d_out is d_model inside a block); returns
    (..., d_out). With d_ff = 8/3 d_model its 3 d_model d_ff weights equal the
    2 d_model (4 d_model) weights of the paper's ReLU FFN.
    fused=True (torch only) computes the SiLU with torch.nn.functional.silu.
    Derived in chapter 12.
    """
    func = "swiglu_feed_forward"
    xp = formula_namespace(func, x=x, w1=w1, w3=w3, w2=w2)
    fused = require_flag(func, "fused", fused)
    require_ndim(func, "x", x, 1, "(..., d_model)")
    for name, a in (("x", x), ("w1", w1), ("w3", w3), ("w2", w2)):
        require_float(func, name, a, xp)
    for name, w in (("w1", w1), ("w3", w3), ("w2", w2)):
        if len(w.shape) != 2:
            raise ValueError(f"{func}: {name} must be a matrix, got shape {shape(w)}")
    if w1.shape[0] != x.shape[-1]:
        raise ValueError(f"{func}: x has shape {shape(x)} and w1 has shape {shape(w1)}: "
                         "w1 needs one row per feature of x (d_model)")
    if shape(w3) != shape(w1):
        raise ValueError(f"{func}: w1 has shape {shape(w1)} and w3 has shape {shape(w3)}: "
                         "the gate and the value need the same shape (d_model, d_ff)")
    if w2.shape[0] != w1.shape[1]:
        raise ValueError(f"{func}: w1 has shape {shape(w1)} and w2 has shape {shape(w2)}: "
                         "w2 needs one row per column of w1 (d_ff)")
    gate = silu(xp.matmul(x, w1), fused=fused)               # (..., d_ff)
    value = xp.matmul(x, w3)                                 # (..., d_ff)
    return xp.matmul(gate * value, w2)                       # (..., d_out)
