"""Property-based tests over every public function of helpers' formula modules (hypothesis).

For random shapes (empty sizes included), dtypes (float16, bfloat16, float32, float64 and
integers where a function takes them), values with NaN and +-inf, on both backends, each
call must either

* agree with PyTorch's own function (or, where torch has none, the formula computed by
  torch in float64) within a tolerance fitting the dtype: the same shape, NaN exactly
  where torch gives NaN, the same infinities, finite and close everywhere else; or
* raise a ValueError or TypeError whose message names an argument of the function called.

Nothing else: no other exception type, no silent non-finite output where torch is finite,
no finite output where torch gives NaN. The documented departures from torch are spelled
out where they are tested (softmax of an all -inf slice is 0, not NaN; exact GELU(+inf) is
+inf, not NaN; no keys or d_k = 0 in attention are refused).

The reference is torch's function in float64 on the inputs *after* rounding to the dtype
under test, so the tolerance measures only the error of the computation in that dtype.
Every test is derandomized (a fixed sequence of examples, no example database), so a CI
run is reproducible; together they take well under a minute.
"""
from __future__ import annotations

import inspect
import math
import re
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings, strategies as st

import helpers as h
from helpers import backward as B
from helpers import efficient_attention as ea
from helpers.activations import sigmoid
from helpers.byte_bpe import ByteLevelBPE, pretokenize, printable_to_token, token_to_printable
from helpers.multi_head import causal_mask_after
from helpers.rms_norm import rms_norm_backward
from helpers.tokenizers import SAMPLE_TEXT, BytePairTokenizer, CharTokenizer, split_into_pieces

# NumPy warns "invalid value encountered" when an inf - inf or 0 * inf makes the NaN that
# these tests feed in on purpose (torch does not warn); the results themselves are checked.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning",
                                        "ignore:overflow encountered:RuntimeWarning")

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
FEW = settings(SETTINGS, max_examples=12)

TORCH_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16,
                "float32": torch.float32, "float64": torch.float64}
# (rtol, atol) for one rounding-limited result in each dtype, relative to the size of the result
TOL = {"float64": (1e-9, 1e-11), "float32": (2e-5, 2e-6), "float16": (4e-3, 4e-3),
       "bfloat16": (3e-2, 3e-2)}
CASES = st.sampled_from([("numpy", "float16"), ("numpy", "float32"), ("numpy", "float64"),
                         ("torch", "float16"), ("torch", "bfloat16"), ("torch", "float32"),
                         ("torch", "float64")])
WIDE = ("float32", "float64")
INT_DTYPES = ["int8", "uint8", "int16", "int32", "int64"]
INF = math.inf


# ----------------------------------------------------------------------------- tools


def make(a, lib, dtype):
    """``a`` (NumPy float64) in ``lib`` and ``dtype``, and the same rounded values as a
    float64 torch tensor: the reference input."""
    t = torch.tensor(np.asarray(a, dtype=np.float64)).to(TORCH_DTYPES[dtype])
    ref = t.to(torch.float64)
    return (t if lib == "torch" else t.numpy()), ref


def make_int(a, lib, dtype):
    t = torch.tensor(np.asarray(a, dtype=np.int64)).to(getattr(torch, dtype))
    return (t if lib == "torch" else t.numpy()), t.to(torch.int64)


def f64(x) -> torch.Tensor:
    """Any result (NumPy array or scalar, torch tensor of any dtype) as a float64 tensor."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float64)
    return torch.from_numpy(np.asarray(x, dtype=np.float64).copy())


def dtype_name(x) -> str:
    return str(x.dtype).replace("torch.", "")


def lib_of(x) -> str:
    return "torch" if isinstance(x, torch.Tensor) else "numpy"


def assert_agree(ours, ref, dtype, *, loose=1.0, what=""):
    """Same shape; NaN exactly where ref is NaN; the same infinities; elsewhere finite and
    within the dtype's tolerance (times ``loose``), relative to the largest |ref|."""
    got, ref = f64(ours), f64(ref)
    assert tuple(got.shape) == tuple(ref.shape), (what, tuple(got.shape), tuple(ref.shape))
    nan_ref = torch.isnan(ref)
    assert torch.equal(torch.isnan(got), nan_ref), (what, "NaN where torch has none, or a number where torch has NaN", got, ref)
    inf_ref = torch.isinf(ref)
    assert torch.equal(got[inf_ref], ref[inf_ref]), (what, "infinities differ", got, ref)
    finite = torch.isfinite(ref)
    assert torch.isfinite(got[finite]).all(), (what, "non-finite where torch is finite", got, ref)
    if finite.any():
        size = max(1.0, float(ref[finite].abs().max()))
        rtol, atol = TOL[dtype]
        torch.testing.assert_close(got[finite], ref[finite], rtol=rtol * loose, atol=atol * loose * size,
                                   msg=lambda m: f"{what}: {m}")


def assert_kind(out, lib, dtype):
    assert lib_of(out) == lib, (lib_of(out), lib)
    assert dtype_name(out) == dtype, (dtype_name(out), dtype)


def named_error(err, func) -> bool:
    """True when ``err`` is a ValueError/TypeError whose message names a parameter of ``func``."""
    if not isinstance(err, (ValueError, TypeError)):
        return False
    message = str(err)
    names = inspect.signature(func).parameters
    return any(re.search(rf"(?<![\w.]){re.escape(p)}(?![\w(])", message) for p in names)


def call(func, *args, **kwargs):
    """Run ``func``; return ("ok", result, warnings) or ("error", the exception, []) after
    checking that the error is a ValueError/TypeError naming one of func's arguments."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = func(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - the point is to see what escapes
            assert named_error(err, func), f"{func.__name__} raised {type(err).__name__}: {err}"
            return "error", err, []
    return "ok", result, [w for w in caught if issubclass(w.category, h.FullyMaskedRowWarning)]


@st.composite
def shapes(draw, min_dims=1, max_dims=3, max_side=4):
    return tuple(draw(st.lists(st.integers(0, max_side), min_size=min_dims, max_size=max_dims)))


@st.composite
def values(draw, shape, scales=(1.0,), specials=True, dtype="float64"):
    """Normal values times a drawn scale, clipped into the dtype's range, with some NaN and
    +-inf dropped in when ``specials``."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = rng.normal(size=shape) * draw(st.sampled_from(scales))
    big = float(torch.finfo(TORCH_DTYPES[dtype]).max) / 4
    a = np.clip(a, -big, big)
    if specials and a.size and draw(st.integers(0, 2)) == 0:
        kinds = draw(st.lists(st.sampled_from([math.nan, INF, -INF]), min_size=1, max_size=3))
        count = draw(st.integers(1, max(1, a.size - 1)))          # usually some finite values remain
        where = rng.choice(a.size, count, replace=False)
        a.flat[where] = rng.choice(kinds, size=count)
    return a


# ----------------------------------------------------------------------------- softmax


@settings(SETTINGS, max_examples=60)
@given(CASES, st.data())
def test_softmax_log_softmax_online_softmax_agree_with_torch(case, data):
    lib, dtype = case
    shape = data.draw(shapes(max_side=5))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x, ref_in = make(data.draw(values(shape, scales=(1.0, 30.0), dtype=dtype)), lib, dtype)

    ref = torch.softmax(ref_in, dim=axis)
    # documented departure: a slice that is all -inf (everything masked) gives 0, not NaN
    masked = (ref_in == -INF).all(dim=axis, keepdim=True).expand_as(ref)
    ref = torch.where(masked, torch.zeros_like(ref), ref)
    out = h.softmax(x, axis=axis)
    assert_kind(out, lib, dtype)
    assert_agree(out, ref, dtype, what="softmax")
    log_out = h.log_softmax(x, axis=axis)
    assert_kind(log_out, lib, dtype)
    assert_agree(log_out, torch.log_softmax(ref_in, dim=axis), dtype, what="log_softmax")
    if axis in (-1, len(shape) - 1):
        block = data.draw(st.integers(1, 5))
        online = ea.online_softmax(x, block)
        assert_kind(online, lib, dtype)
        assert_agree(online, ref, dtype, what="online_softmax")


@FEW
@given(CASES, st.data())
def test_online_softmax_step_accumulates_the_normaliser(case, data):
    lib, dtype = case
    rows, b = data.draw(st.integers(0, 3)), data.draw(st.integers(0, 4))
    x, ref_in = make(data.draw(values((rows, 2 * b), specials=False, dtype=dtype)), lib, dtype)
    m, _ = make(np.full(rows, -INF), lib, dtype)
    l, _ = make(np.zeros(rows), lib, dtype)
    for block in (x[:, :b], x[:, b:]):
        status, result, _ = call(ea.online_softmax_step, m, l, block)
        assert status == "ok"
        m, l, _, _ = result
    if rows and b:
        assert_agree(m, ref_in.max(dim=-1).values, dtype, what="running max")
        assert_agree(l, torch.exp(ref_in - ref_in.max(dim=-1, keepdim=True).values).sum(-1), dtype,
                     loose=3, what="running sum")


# ----------------------------------------------------------------------------- activations


@SETTINGS
@given(CASES, st.data())
def test_activations_agree_with_torch(case, data):
    lib, dtype = case
    shape = data.draw(shapes(0, 3))
    x, ref_in = make(data.draw(values(shape, scales=(1.0, 8.0, 1e3), dtype=dtype)), lib, dtype)
    exact = F.gelu(ref_in)
    exact = torch.where(ref_in == INF, ref_in, exact)   # documented: GELU(+inf) = +inf (F.gelu: NaN)
    for name, ours, ref in (
            ("relu", h.relu(x), torch.relu(ref_in)),
            ("silu", h.silu(x), F.silu(ref_in)),
            ("sigmoid", sigmoid(x), torch.sigmoid(ref_in)),
            ("gelu", h.gelu(x), exact),
            ("gelu tanh", h.gelu(x, approximate="tanh"), F.gelu(ref_in, approximate="tanh"))):
        assert_kind(ours, lib, dtype)
        assert_agree(ours, ref, dtype, what=name)


@FEW
@given(st.sampled_from(["numpy", "torch"]), st.sampled_from(INT_DTYPES), st.data())
def test_relu_of_integers_is_torch_relu(lib, dtype, data):
    shape = data.draw(shapes(0, 2))
    a = np.random.default_rng(data.draw(st.integers(0, 99))).integers(-100, 100, size=shape)
    if dtype == "uint8":
        a = np.abs(a)
    x, ref = make_int(a, lib, dtype)
    out = h.relu(x)
    assert lib_of(out) == lib and dtype_name(out) == dtype
    assert torch.equal(f64(out), torch.relu(ref).to(torch.float64))
    for fn in (h.silu, h.gelu, sigmoid, h.softmax, h.log_softmax, h.layer_norm):
        args = (x, None, None) if fn is h.layer_norm else (x,)
        status, err, _ = call(fn, *args)
        assert status == "error"                                   # they need floats (or an axis)


# ----------------------------------------------------------------------------- normalisation


@SETTINGS
@given(CASES, st.data())
def test_layer_norm_and_rms_norm_agree_with_torch(case, data):
    lib, dtype = case
    batch = data.draw(shapes(0, 2, 3))
    d = data.draw(st.integers(0, 6))
    biggest = {"float16": 2e4, "bfloat16": 1e6}.get(dtype, 1e6)
    a = data.draw(values(batch + (d,), scales=(1.0, 100.0, biggest), dtype=dtype))
    x, ref_in = make(a, lib, dtype)
    gamma, gamma_ref = make(data.draw(values((d,), specials=False)), lib, dtype) if data.draw(st.booleans()) else (None, None)
    beta, beta_ref = make(data.draw(values((d,), specials=False)), lib, dtype) if data.draw(st.booleans()) else (None, None)
    eps = data.draw(st.sampled_from([1e-5, 1e-3, 0.1, 1]))
    empty = ref_in.numel() == 0
    ln = h.layer_norm(x, gamma, beta, eps=eps)
    assert_kind(ln, lib, dtype)
    assert_agree(ln, torch.empty(ref_in.shape) if empty else F.layer_norm(ref_in, (d,), gamma_ref, beta_ref, eps),
                 dtype, loose=2, what="layer_norm")
    rms = h.rms_norm(x, gamma, eps=eps)
    assert_kind(rms, lib, dtype)
    assert_agree(rms, torch.empty(ref_in.shape) if empty else F.rms_norm(ref_in, (d,), gamma_ref, eps),
                 dtype, loose=2, what="rms_norm")


@SETTINGS
@given(CASES, st.data())
def test_norms_are_scale_invariant_up_to_the_ends_of_the_float_range(case, data):
    """With eps = 0, LayerNorm(c x) = LayerNorm(x) and RMSNorm(c x) = RMSNorm(x) for c > 0.
    Scaling by powers of two from near the smallest normal numbers to near the largest must
    not change the result: the squares would overflow or underflow long before x does
    (float16: x = 1000 squares to 10^6 > 65504), and the norms must not."""
    lib, dtype = case
    d = data.draw(st.integers(2, 6))
    a = data.draw(values((3, d), specials=False))
    a = np.clip(a, -4, 4)
    a[np.abs(a) < 0.25] = 0.25                                  # rows far from constant, none tiny
    info = torch.finfo(TORCH_DTYPES[dtype])
    low, high = math.log2(float(info.tiny)) + 12, math.log2(float(info.max)) - 4
    k = data.draw(st.integers(int(low), int(high)))
    x, ref_in = make(a, lib, dtype)
    x_scaled, _ = make(a * 2.0 ** k, lib, dtype)
    reference_ln = F.layer_norm(ref_in, (d,), eps=0.0)
    reference_rms = F.rms_norm(ref_in, (d,), eps=0.0)
    assert_agree(h.layer_norm(x_scaled, None, None, eps=0.0), reference_ln, dtype, loose=2, what=f"layer_norm 2^{k}")
    assert_agree(h.rms_norm(x_scaled, None, eps=0.0), reference_rms, dtype, loose=2, what=f"rms_norm 2^{k}")


# ----------------------------------------------------------------------------- cross-entropy


@SETTINGS
@given(st.sampled_from(["numpy", "torch"]), st.sampled_from(list(TORCH_DTYPES)), st.sampled_from(INT_DTYPES),
       st.data())
def test_cross_entropy_agrees_with_torch_or_refuses_by_name(lib, dtype, target_dtype, data):
    if lib == "numpy" and dtype == "bfloat16":
        dtype = "float32"
    lead = data.draw(shapes(0, 2, 3))
    vocab = data.draw(st.integers(0, 5))
    logits, logits_ref = make(data.draw(values(lead + (vocab,), scales=(1.0, 10.0), dtype=dtype)), lib, dtype)
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    targets, targets_ref = make_int(rng.integers(0, max(vocab, 1), size=lead), lib, target_dtype)
    ignore_index = data.draw(st.sampled_from([None, 0, 1, -100])) if target_dtype != "uint8" else None
    smoothing = data.draw(st.sampled_from([0.0, 0.1, 1.0]))
    status, loss, _ = call(h.cross_entropy, logits, targets, ignore_index=ignore_index, label_smoothing=smoothing)
    kept = targets_ref.numel() if ignore_index is None else int((targets_ref != ignore_index).sum())
    if vocab == 0 or kept == 0:        # no class, no position, or every position ignored: refused
        assert status == "error" and isinstance(loss, ValueError)
        return
    assert status == "ok"
    assert_kind(loss, lib, dtype) if lib == "torch" else None
    ref = F.cross_entropy(logits_ref.reshape(-1, vocab), targets_ref.reshape(-1),
                          ignore_index=-100 if ignore_index is None else ignore_index,
                          label_smoothing=smoothing)
    assert_agree(loss, ref, dtype, loose=2, what="cross_entropy")
    grad = B.cross_entropy_backward(logits if dtype in WIDE else make(logits_ref.numpy(), lib, "float64")[0],
                                    targets, ignore_index=ignore_index, label_smoothing=smoothing)
    if torch.isfinite(logits_ref).all():
        z = logits_ref.clone().requires_grad_()
        F.cross_entropy(z.reshape(-1, vocab), targets_ref.reshape(-1), label_smoothing=smoothing,
                        ignore_index=-100 if ignore_index is None else ignore_index).backward()
        assert_agree(grad, z.grad, dtype if dtype in WIDE else "float64", what="cross_entropy_backward")


# ----------------------------------------------------------------------------- attention


@st.composite
def attention_inputs(draw, lib, dtype, allow_empty=True):
    """q, k, v (with their float64 references), a mask or None, and a scale or None."""
    batch = draw(st.sampled_from([(), (2,), (1, 2), (0,)] if allow_empty else [(), (2,), (1, 2)]))
    low = 0 if allow_empty else 1
    n_q, n_k = draw(st.integers(low, 4)), draw(st.integers(low, 4))
    d_k, d_v = draw(st.integers(low, 4)), draw(st.integers(low, 3))
    specials = draw(st.integers(0, 4)) == 0
    q, q_ref = make(draw(values(batch + (n_q, d_k), specials=specials, dtype=dtype)), lib, dtype)
    k, k_ref = make(draw(values(batch + (n_k, d_k), specials=False, dtype=dtype)), lib, dtype)
    v, v_ref = make(draw(values(batch + (n_k, d_v), specials=False, dtype=dtype)), lib, dtype)
    mask = mask_ref = None
    if draw(st.booleans()):
        form = draw(st.sampled_from(["full", "rows", "keys", "1-D", "batch"]))
        mask_shape = {"full": (n_q, n_k), "rows": (n_q, 1), "keys": (1, n_k), "1-D": (n_k,),
                      "batch": batch[-1:] + (n_q, n_k)}[form]
        rng = np.random.default_rng(draw(st.integers(0, 99)))
        mask_ref = torch.tensor(rng.random(mask_shape) < draw(st.sampled_from([0.3, 0.7, 1.0])))
        mask = mask_ref if lib == "torch" else mask_ref.numpy()
    scale = draw(st.sampled_from([None, None, 0.5]))
    return (q, k, v, mask, scale), (q_ref, k_ref, v_ref, mask_ref)


def attention_reference(q, k, v, mask, scale):
    """Weights and output in float64 from torch's own ops, with the documented convention
    that a query whose mask allows no key gets weights 0 and output 0 (F.scaled_dot_product_attention's
    math path does the same)."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ k.transpose(-1, -2) * scale
    if mask is not None:
        scores = scores.masked_fill(~mask, -INF)
    none_allowed = (scores == -INF).all(dim=-1, keepdim=True) & ~torch.isnan(scores).any(dim=-1, keepdim=True)
    weights = torch.softmax(scores, dim=-1)
    weights = torch.where(none_allowed.expand_as(weights), torch.zeros_like(weights), weights)
    output = weights @ v
    if weights.shape[-1]:
        fused = F.scaled_dot_product_attention(q, k, v, scale=scale, attn_mask=None if mask is None
                                               else mask.expand(scores.shape))
        assert_agree(output, fused, "float64", what="the reference against F.scaled_dot_product_attention")
    return weights, output, bool(none_allowed.any()) if mask is not None else False


@SETTINGS
@given(CASES, st.data())
def test_attention_agrees_with_torch_or_refuses_by_name(case, data):
    lib, dtype = case
    (q, k, v, mask, scale), (q_ref, k_ref, v_ref, mask_ref) = data.draw(attention_inputs(lib, dtype))
    status, result, caught = call(h.scaled_dot_product_attention, q, k, v, mask=mask, scale=scale)
    n_k, d_k = k_ref.shape[-2], q_ref.shape[-1]
    if n_k == 0 or (d_k == 0 and scale is None):     # documented: refused, nothing to attend to
        assert status == "error" and isinstance(result, ValueError), result
        status, err, _ = call(ea.tiled_attention, q, k, v, mask=mask, scale=scale)
        assert status == "error"
        return
    assert status == "ok", result
    weights_ref, out_ref, fully_masked = attention_reference(q_ref, k_ref, v_ref, mask_ref, scale)
    out, weights = result
    assert_kind(out, lib, dtype)
    assert_agree(weights, weights_ref, dtype, loose=3, what="weights")
    assert_agree(out, out_ref, dtype, loose=3, what="output")
    assert bool(caught) == fully_masked       # a row with no allowed key is reported, never silent

    block_q, block_k = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    status, tiled, caught = call(ea.tiled_attention, q, k, v, block_q, block_k, mask=mask, scale=scale)
    assert status == "ok", tiled
    assert_kind(tiled, lib, dtype)
    assert_agree(tiled, out_ref, dtype, loose=3, what="tiled_attention")
    assert bool(caught) == (fully_masked and q_ref.shape[-2] > 0 and math.prod(out_ref.shape[:-2]) > 0)

    if mask is not None and len(mask_ref.shape) == 2 and mask_ref.shape == (q_ref.shape[-2], n_k):
        status, result, _ = call(ea.sparse_attention, q, k, v, mask, scale=scale)
        if fully_masked:                              # documented: sparse_attention refuses such a mask
            assert status == "error" and isinstance(result, ValueError)
        else:
            assert status == "ok", result
            assert_kind(result[0], lib, dtype)
            assert_agree(result[0], out_ref, dtype, loose=3, what="sparse_attention")


@FEW
@given(CASES, st.data())
def test_sliding_window_attention_is_attention_under_the_window_mask(case, data):
    lib, dtype = case
    n, d = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 3))
    window, causal = data.draw(st.integers(0, 3)), data.draw(st.booleans())
    q, q_ref = make(data.draw(values((2, n, d), specials=False)), lib, dtype)
    k, k_ref = make(data.draw(values((2, n, d), specials=False)), lib, dtype)
    v, v_ref = make(data.draw(values((2, n, d), specials=False)), lib, dtype)
    out, weights = ea.sliding_window_attention(q, k, v, window, causal=causal)
    mask = torch.tensor(ea.sliding_window_mask(n, window, causal=causal))
    _, out_ref, _ = attention_reference(q_ref, k_ref, v_ref, mask, None)
    assert_kind(out, lib, dtype)
    assert_agree(out, out_ref, dtype, loose=3, what="sliding_window_attention")


@SETTINGS
@given(CASES, st.data())
def test_multi_head_attention_agrees_with_torch_kernel(case, data):
    """The formula path, in every dtype and on both backends, against the same layer with
    torch's F.scaled_dot_product_attention (fused=True) in float64."""
    lib, dtype = case
    num_kv_heads = data.draw(st.integers(1, 2))
    num_heads = num_kv_heads * data.draw(st.integers(1, 2))
    d_model, d_v = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3))
    rotary = data.draw(st.sampled_from([None, 100.0]))
    d_k = 2 * data.draw(st.integers(1, 2)) if rotary else data.draw(st.integers(1, 3))
    batch = data.draw(st.sampled_from([(), (2,), (0,)]))
    n_q, n_k = data.draw(st.integers(0, 4)), data.draw(st.integers(1, 4))
    causal = data.draw(st.booleans()) and n_q <= n_k
    qk_norm, use_bias = data.draw(st.booleans()), data.draw(st.booleans())
    shapes_ = {"x_q": batch + (n_q, d_model), "x_kv": batch + (n_k, d_model),
               "w_q": (d_model, num_heads * d_k), "w_k": (d_model, num_kv_heads * d_k),
               "w_v": (d_model, num_kv_heads * d_v), "w_o": (num_heads * d_v, d_model)}
    if use_bias:
        shapes_.update(b_q=(num_heads * d_k,), b_k=(num_kv_heads * d_k,), b_v=(num_kv_heads * d_v,), b_o=(d_model,))
    if qk_norm:
        shapes_.update(q_gamma=(d_k,), k_gamma=(d_k,))
    ours, refs = {}, {}
    for name, s in shapes_.items():
        ours[name], refs[name] = make(data.draw(values(s, specials=False)) * 0.7, lib, dtype)
    mask = mask_ref = None
    if data.draw(st.booleans()):
        rng = np.random.default_rng(data.draw(st.integers(0, 99)))
        allowed = rng.random((n_q, n_k)) < 0.6
        allowed[:, 0] = True                                  # every query may see some key
        mask_ref = torch.tensor(allowed)
        mask = mask_ref if lib == "torch" else allowed
    options = dict(num_kv_heads=num_kv_heads, rotary_theta=rotary, causal=causal)
    out, weights = h.multi_head_attention(num_heads=num_heads, mask=mask, **ours, **options)
    ref, _ = h.multi_head_attention(num_heads=num_heads, mask=mask_ref, fused=True, **refs, **options)
    assert_kind(out, lib, dtype)
    assert tuple(weights.shape) == batch + (num_heads, n_q, n_k)
    assert_agree(out, ref, dtype, loose=4, what="multi_head_attention")


# ----------------------------------------------------------------------------- feed-forward


@SETTINGS
@given(CASES, st.data())
def test_feed_forward_networks_agree_with_torch(case, data):
    lib, dtype = case
    batch = data.draw(shapes(0, 2, 3))
    d_model, d_ff, d_out = data.draw(st.integers(0, 4)), data.draw(st.integers(0, 6)), data.draw(st.integers(0, 3))
    arrays = {}
    for name, s in (("x", batch + (d_model,)), ("w1", (d_model, d_ff)), ("b1", (d_ff,)), ("w2", (d_ff, d_out)),
                    ("b2", (d_out,)), ("w3", (d_model, d_ff)), ("w2s", (d_ff, d_model))):
        arrays[name] = make(data.draw(values(s, specials=(name == "x"), dtype=dtype)) * 0.8, lib, dtype)
    (x, xr), (w1, w1r), (b1, b1r), (w2, w2r), (b2, b2r) = (arrays[n] for n in ("x", "w1", "b1", "w2", "b2"))
    if data.draw(st.booleans()):
        b1 = b1r = None
    if data.draw(st.booleans()):
        b2 = b2r = None
    activation = data.draw(st.sampled_from(["relu", "gelu"]))
    act = torch.relu if activation == "relu" else F.gelu
    ref = F.linear(act(F.linear(xr, w1r.T, b1r)), w2r.T, b2r)
    out = h.feed_forward(x, w1, b1, w2, b2, activation=activation)
    assert_kind(out, lib, dtype)
    assert_agree(out, ref, dtype, loose=4, what="feed_forward")
    (w3, w3r), (w2s, w2sr) = arrays["w3"], arrays["w2s"]
    ref = (F.silu(xr @ w1r) * (xr @ w3r)) @ w2sr
    out = h.swiglu_feed_forward(x, w1, w3, w2s)
    assert_kind(out, lib, dtype)
    assert_agree(out, ref, dtype, loose=4, what="swiglu_feed_forward")


# ----------------------------------------------------------------------------- positions


def rotary_reference(x, positions, theta, interleaved):
    """The rotation of chapter 12 in complex float64: pair i times exp(i p omega_i)."""
    d = x.shape[-1]
    omega = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    turn = torch.polar(torch.ones((), dtype=torch.float64), positions.to(torch.float64)[:, None] * omega[None, :])  # (n, d/2)
    a, b = (x[..., 0::2], x[..., 1::2]) if interleaved else (x[..., : d // 2], x[..., d // 2:])
    z = torch.complex(a, b) * turn
    if interleaved:
        return torch.stack([z.real, z.imag], dim=-1).reshape(x.shape)
    return torch.cat([z.real, z.imag], dim=-1)


@SETTINGS
@given(CASES, st.data())
def test_apply_rotary_agrees_with_complex_rotation(case, data):
    lib, dtype = case
    batch = data.draw(shapes(0, 2, 2))
    n, d = data.draw(st.integers(0, 4)), 2 * data.draw(st.integers(1, 3))
    x, x_ref = make(data.draw(values(batch + (n, d), dtype=dtype)), lib, dtype)
    pos = np.random.default_rng(data.draw(st.integers(0, 99))).integers(-3000, 3000, size=n)
    form = data.draw(st.sampled_from(["range", "list", "array"]))
    positions = {"range": range(-1, n - 1), "list": [np.int64(p) for p in pos],
                 "array": make_int(pos, lib, data.draw(st.sampled_from(["int16", "int32", "int64"])))[0]}[form]
    pos_ref = torch.tensor(list(positions) if form != "array" else pos, dtype=torch.int64)
    theta, interleaved = data.draw(st.sampled_from([10000.0, 500, np.float64(1e6)])), data.draw(st.booleans())
    out = h.apply_rotary(x, positions, theta=theta, interleaved=interleaved)
    assert_kind(out, lib, dtype)
    assert_agree(out, rotary_reference(x_ref, pos_ref, float(theta), interleaved), dtype, loose=3,
                 what="apply_rotary")


@SETTINGS
@given(CASES, st.data())
def test_tables_of_positions_agree_with_the_formula_in_float64(case, data):
    lib, dtype = case
    integer = data.draw(st.sampled_from([int, np.int64, np.int32]))
    n, d_model = data.draw(st.integers(1, 40)), 2 * data.draw(st.integers(1, 5))
    k = data.draw(st.sampled_from([0, 3, -7, 2.5]))
    options = dict(backend=lib, dtype=make(np.zeros(1), lib, dtype)[0].dtype)
    omega = 10000.0 ** (-np.arange(0, d_model, 2) / d_model)
    angles = np.arange(n)[:, None] * omega[None, :]
    pe = np.stack([np.sin(angles), np.cos(angles)], axis=-1).reshape(n, d_model)
    # a table in dtype t is as good as its angles: those of float32 tables are rounded to float32
    angle_error = 2 * n * (float(torch.finfo(TORCH_DTYPES[dtype]).eps) if dtype in WIDE else 0.0)
    loose = 1 + angle_error / TOL[dtype][1]
    for name, ours, ref, tol in (
            ("frequencies", h.frequencies(integer(d_model), **options), omega, 1),
            ("rotary_frequencies", h.rotary_frequencies(integer(d_model), 500.0, **options),
             500.0 ** (-np.arange(0, d_model, 2) / d_model), 1),
            ("sinusoidal_positional_encoding", h.sinusoidal_positional_encoding(integer(n), integer(d_model), **options),
             pe, loose)):
        assert_kind(ours, lib, dtype)
        assert_agree(ours, torch.tensor(ref), dtype, loose=tol, what=name)
    rotation = h.positional_rotation(k, integer(d_model), **options)
    assert_kind(rotation, lib, dtype)
    shifted = pe[:-1] @ f64(rotation).numpy()                           # PE[pos] M_k
    if float(k).is_integer() and 0 <= k < n:
        assert_agree(shifted[: n - 1 - int(k)], torch.tensor(pe[int(k):-1]), dtype, loose=2 * loose,
                     what="positional_rotation")


# ----------------------------------------------------------------------------- masks and heads


@SETTINGS
@given(st.sampled_from(["numpy", "torch"]), st.data())
def test_masks_are_their_formulas(lib, data):
    integer = data.draw(st.sampled_from([int, np.int64]))
    n = data.draw(st.integers(1, 7))
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    window, stride, num_global = data.draw(st.integers(0, 8)), data.draw(st.integers(1, 8)), data.draw(st.integers(0, 8))
    causal = data.draw(st.booleans())
    below = j <= i
    for name, ours, ref in (
            ("causal_mask", h.causal_mask(integer(n), backend=lib), below),
            ("sliding_window_mask", ea.sliding_window_mask(integer(n), integer(window), causal, backend=lib),
             (abs(i - j) <= window) & (below | (not causal))),
            ("strided_mask", ea.strided_mask(integer(n), integer(stride), causal, backend=lib),
             ((i - j) % stride == 0) & (below | (not causal))),
            ("global_tokens_mask", ea.global_tokens_mask(integer(n), integer(num_global), causal, backend=lib),
             ((i < num_global) | (j < num_global)) & (below | (not causal)))):
        assert lib_of(ours) == lib and dtype_name(ours) == "bool", name
        np.testing.assert_array_equal(np.asarray(ours), ref, err_msg=name)
    n_q = data.draw(st.integers(1, n))
    xp = np if lib == "numpy" else __import__("array_api_compat.torch", fromlist=["x"])
    np.testing.assert_array_equal(np.asarray(causal_mask_after(n_q, n, xp)),
                                  np.arange(n)[None, :] <= np.arange(n_q)[:, None] + n - n_q)
    key_index, key_valid = ea.sliding_window_key_index(integer(n), integer(window), causal)
    allowed = (abs(i - j) <= window) & (below | (not causal))
    for row in range(n):
        assert sorted(key_index[row][key_valid[row]]) == list(np.flatnonzero(allowed[row]))
    index, valid = ea.mask_key_index(allowed)
    for row in range(n):
        assert list(index[row][valid[row]]) == list(np.flatnonzero(allowed[row]))
    lengths_np = np.random.default_rng(data.draw(st.integers(0, 99))).integers(0, n + 1, size=data.draw(st.integers(0, 3)))
    lengths, _ = make_int(lengths_np, lib, data.draw(st.sampled_from(["int8", "int32", "int64"])))
    pad = h.padding_mask(lengths, integer(n))
    assert lib_of(pad) == lib
    np.testing.assert_array_equal(np.asarray(pad), (np.arange(n)[None, :] < lengths_np[:, None])[:, None, :])


@SETTINGS
@given(CASES, st.data())
def test_split_and_merge_heads_are_torch_reshapes(case, data):
    lib, dtype = case
    batch = data.draw(shapes(0, 2, 3))
    heads, n, d = data.draw(st.integers(1, 3)), data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3))
    x, x_ref = make(data.draw(values(batch + (n, heads * d), dtype=dtype)), lib, dtype)
    split = h.split_heads(x, np.int64(heads))
    ref = x_ref.reshape(*batch, n, heads, d).transpose(-2, -3)
    assert_kind(split, lib, dtype)
    assert_agree(split, ref, dtype, what="split_heads")
    merged = h.merge_heads(split)
    assert_agree(merged, x_ref, dtype, what="merge_heads")


@FEW
@given(st.integers(1, 5000), st.integers(1, 4096), st.integers(1, 16), st.sampled_from([1, 2, 4, 8]))
def test_attention_layer_costs_are_their_formulas(n, d_model, heads, itemsize):
    d_model = d_model * heads
    costs = ea.attention_layer_costs(np.int64(n), d_model, heads, itemsize)
    assert costs["total multiply-adds"] == 4 * n * d_model**2 + 2 * n**2 * d_model
    assert costs["weights bytes"] == heads * n * n * itemsize


# ----------------------------------------------------------------------------- schedules, clipping


@FEW
@given(st.integers(1, 10**6), st.integers(1, 4096), st.integers(1, 10**4), st.sampled_from(["int", "numpy", "torch"]))
def test_schedules_are_their_formulas(step, d_model, warmup, kind):
    wrap = {"int": lambda s: s, "numpy": np.asarray, "torch": torch.tensor}[kind]
    expected = d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)
    np.testing.assert_allclose(float(h.noam_lr(wrap(step), d_model, warmup)), expected, rtol=1e-12)
    total = warmup + 1000
    t = min(max((step - warmup) / (total - warmup), 0.0), 1.0)
    expected = 0.1 * step / warmup if step <= warmup else 0.01 + 0.09 * (1 + math.cos(math.pi * t)) / 2
    np.testing.assert_allclose(float(h.cosine_lr(wrap(step), 0.1, warmup, total, min_lr=0.01)), expected, rtol=1e-12)


@FEW
@given(st.sampled_from(["numpy", "torch"]), st.sampled_from(WIDE), st.data())
def test_clip_grad_norm_is_torchs(lib, dtype, data):
    sizes = data.draw(st.lists(shapes(0, 2, 3), min_size=1, max_size=3))
    max_norm = data.draw(st.sampled_from([0.1, 1.0, 100.0]))
    pairs = [make(data.draw(values(s, specials=False, scales=(1.0, 10.0))), lib, dtype) for s in sizes]
    clipped, norm = h.clip_grad_norm([p for p, _ in pairs], max_norm)
    params = [torch.nn.Parameter(torch.zeros_like(r)) for _, r in pairs]
    for p, (_, r) in zip(params, pairs):
        p.grad = r.clone()
    ref_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    assert_agree(norm, ref_norm, dtype, what="total norm")
    for ours, p in zip(clipped, params):
        assert_kind(ours, lib, dtype)
        assert_agree(ours, p.grad, dtype, what="clipped gradient")


# ----------------------------------------------------------------------------- backward passes


def autograd(fn, inputs: dict, d_output):
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}
    fn(**leaves).backward(d_output)
    return {k: v.grad for k, v in leaves.items()}


@FEW
@given(st.sampled_from(["numpy", "torch"]), st.data())
def test_backward_passes_are_autograd(lib, data):
    dtype = "float64"
    n, d, d_ff = data.draw(st.integers(1, 4)), 2 * data.draw(st.integers(1, 2)), data.draw(st.integers(1, 4))
    batch = data.draw(st.sampled_from([(), (2,)]))

    def draw(*s):
        return make(data.draw(values(s, specials=False)), lib, dtype)

    (x, xr), (g, gr), (b, br), (dy, dyr) = draw(*batch, n, d), draw(d), draw(d), draw(*batch, n, d)
    axis = data.draw(st.sampled_from([-1, 0]))
    probs = h.softmax(x, axis=axis)
    ref = autograd(lambda x: torch.softmax(x, dim=axis), {"x": xr}, dyr)
    assert_agree(B.softmax_backward(probs, dy, axis=axis), ref["x"], dtype, what="softmax_backward")
    d_x, d_g, d_b = B.layer_norm_backward(x, g, b, dy)
    ref = autograd(lambda x, g, b: F.layer_norm(x, (d,), g, b, 1e-5), {"x": xr, "g": gr, "b": br}, dyr)
    for ours, name in ((d_x, "x"), (d_g, "g"), (d_b, "b")):
        assert_agree(ours, ref[name], dtype, what=f"layer_norm_backward {name}")
    d_x, d_g = rms_norm_backward(x, g, dy)
    ref = autograd(lambda x, g: F.rms_norm(x, (d,), g, 1e-6), {"x": xr, "g": gr}, dyr)
    assert_agree(d_x, ref["x"], dtype, what="rms_norm_backward x")
    assert_agree(d_g, ref["g"], dtype, what="rms_norm_backward gamma")

    (q, qr), (k, kr), (v, vr) = draw(*batch, n, d), draw(*batch, n + 1, d), draw(*batch, n + 1, d)
    grads = B.scaled_dot_product_attention_backward(q, k, v, dy)
    ref = autograd(lambda q, k, v: F.scaled_dot_product_attention(q, k, v), {"q": qr, "k": kr, "v": vr}, dyr)
    for ours, name in zip(grads, "qkv"):
        assert_agree(ours, ref[name], dtype, what=f"attention backward d{name}")

    (w1, w1r), (b1, b1r), (w2, w2r) = draw(d, d_ff), draw(d_ff), draw(d_ff, d)
    biases = data.draw(st.booleans())
    grads = B.feed_forward_backward(x, w1, b1 if biases else None, w2, b if biases else None, dy)

    def ffn(x, w1, w2, b1=None, b2=None):
        return F.linear(torch.relu(F.linear(x, w1.T, b1)), w2.T, b2)
    inputs = {"x": xr, "w1": w1r, "w2": w2r, **({"b1": b1r, "b2": br} if biases else {})}
    ref = autograd(ffn, inputs, dyr)
    assert set(grads) == set(inputs)
    for name in inputs:
        assert_agree(grads[name], ref[name], dtype, what=f"feed_forward_backward {name}")

    heads = data.draw(st.sampled_from([1, 2]))
    ws = {name: draw(d, d) for name in ("w_q", "w_k", "w_v", "w_o")}
    mha_grads = B.multi_head_attention_backward(x, x, *(ws[n_][0] for n_ in ("w_q", "w_k", "w_v", "w_o")), heads, dy)
    ref = autograd(lambda x_q, x_kv, w_q, w_k, w_v, w_o: h.multi_head_attention(
        x_q, x_kv, w_q, w_k, w_v, w_o, heads, fused=True)[0],
        {"x_q": xr, "x_kv": xr, **{n_: r for n_, (_, r) in ws.items()}}, dyr)
    for name in ref:
        assert_agree(mha_grads[name], ref[name], dtype, what=f"multi_head_attention_backward {name}")


@FEW
@given(st.sampled_from(["numpy", "torch"]), st.sampled_from(["post", "pre", "none"]), st.data())
def test_layer_backward_passes_are_autograd(lib, norm, data):
    from helpers.layers import decoder_layer, encoder_layer, init_layer_params
    n, d_model, heads = data.draw(st.integers(1, 3)), 4, 2
    seed = data.draw(st.integers(0, 99))
    params = {kind: init_layer_params(d_model, 8, kind, rng=np.random.default_rng(seed), backend="torch",
                                      num_heads=heads, norm=norm)
              for kind in ("encoder", "decoder")}
    rng = np.random.default_rng(seed)
    x_ref, mem_ref, dy_ref = (torch.tensor(rng.normal(size=(n + i, d_model))) for i in (0, 1, 0))

    def to_lib(tree):
        if isinstance(tree, dict):
            return {key: to_lib(value) for key, value in tree.items()}
        return tree if lib == "torch" else tree.numpy()

    grads = B.encoder_layer_backward(to_lib(x_ref), to_lib(params["encoder"]), to_lib(dy_ref), num_heads=heads, norm=norm)
    x_leaf = x_ref.clone().requires_grad_()
    encoder_layer(x_leaf, params["encoder"], None, norm, num_heads=heads).backward(dy_ref)
    assert_agree(grads["x"], x_leaf.grad, "float64", what="encoder_layer_backward x")
    grads = B.decoder_layer_backward(to_lib(x_ref), to_lib(mem_ref), to_lib(params["decoder"]), to_lib(dy_ref),
                                     num_heads=heads, norm=norm)
    y_leaf, mem_leaf = x_ref.clone().requires_grad_(), mem_ref.clone().requires_grad_()
    decoder_layer(y_leaf, mem_leaf, params["decoder"], None, None, norm, num_heads=heads).backward(dy_ref)
    assert_agree(grads["y"], y_leaf.grad, "float64", what="decoder_layer_backward y")
    assert_agree(grads["memory"], mem_leaf.grad, "float64", what="decoder_layer_backward memory")


# ----------------------------------------------------------------------------- tokenizers

TEXT = st.text(st.characters(codec="utf-8"), max_size=40)


@FEW
@given(TEXT, st.lists(st.integers(0, 40), max_size=4))
def test_tokenizers_round_trip_any_text(text, cuts):
    if text:
        chars = CharTokenizer(text)
        assert chars.decode(chars.encode(text)) == text and len(chars.encode(text)) == len(text)
        bpe = BytePairTokenizer().train(text + SAMPLE_TEXT[:200], 10)
        assert bpe.decode(bpe.encode(text)) == text and "".join(bpe.segment(text)) == text
    assert "".join(split_into_pieces(text)) == text and "".join(pretokenize(text)) == text
    for tokenizer in (ByteLevelBPE(), TRAINED_BYTE_BPE):
        ids = tokenizer.encode(text + "<|endoftext|>" + text)
        assert tokenizer.decode(ids) == text + "<|endoftext|>" + text
        pieces, start = [], 0
        for cut in sorted(cuts):
            pieces.append(text[start:cut])
            start = max(start, cut)
        pieces.append(text[start:])
        assert list(tokenizer.encode_iterable(pieces)) == tokenizer.encode("".join(pieces))
    for token_id in range(0, TRAINED_BYTE_BPE.vocab_size, 37):
        token = TRAINED_BYTE_BPE.token_bytes(np.int64(token_id))
        if token_id < TRAINED_BYTE_BPE.vocab_size - 1:
            assert printable_to_token(token_to_printable(token)) == token


TRAINED_BYTE_BPE = ByteLevelBPE().train(SAMPLE_TEXT, 300, special_tokens=("<|endoftext|>",))


def test_setup_chapter_makes_the_generators_repeat():
    h.setup_chapter(3)
    first = (np.random.rand(3), torch.rand(3))
    h.setup_chapter(3)
    second = (np.random.rand(3), torch.rand(3))
    np.testing.assert_array_equal(first[0], second[0])
    assert torch.equal(first[1], second[1])
    h.setup_chapter()


# ----------------------------------------------------------------------------- bad input, fuzzed

def _arrays(lib):
    """Valid arguments for every function of the table below, in ``lib``."""
    rng = np.random.default_rng(0)

    def a(*s):
        x = rng.normal(size=s)
        return torch.tensor(x) if lib == "torch" else x

    def i(*values):
        return torch.tensor(values) if lib == "torch" else np.array(values)

    def mask(*s):
        m = np.ones(s, dtype=bool)
        return torch.tensor(m) if lib == "torch" else m
    return a, i, mask


def valid_calls(lib):
    """(function, keyword arguments) pairs that succeed, one per public function."""
    a, i, mask = _arrays(lib)
    x, w = a(2, 3, 4), a(4, 4)
    return [
        (h.softmax, dict(x=a(2, 3), axis=-1)), (h.log_softmax, dict(x=a(2, 3), axis=0)),
        (h.relu, dict(x=a(3))), (h.silu, dict(x=a(3))), (sigmoid, dict(x=a(3))),
        (h.gelu, dict(x=a(3), approximate="tanh")),
        (h.layer_norm, dict(x=x, gamma=a(4), beta=a(4), eps=1e-5)), (h.rms_norm, dict(x=x, gamma=a(4), eps=1e-6)),
        (h.cross_entropy, dict(logits=a(3, 5), targets=i(0, 4, 2), ignore_index=None, label_smoothing=0.1)),
        (h.scaled_dot_product_attention, dict(q=x, k=x, v=x, mask=mask(3, 3), scale=None)),
        (h.multi_head_attention, dict(x_q=x, x_kv=x, w_q=w, w_k=a(4, 2), w_v=a(4, 2), w_o=w, num_heads=2, mask=mask(3, 3),
                                      num_kv_heads=1, rotary_theta=100.0, causal=True)),
        (h.split_heads, dict(x=x, num_heads=2)), (h.merge_heads, dict(x=a(2, 2, 3, 2))),
        (h.feed_forward, dict(x=x, w1=a(4, 6), b1=a(6), w2=a(6, 4), b2=a(4), activation="gelu")),
        (h.swiglu_feed_forward, dict(x=x, w1=a(4, 6), w3=a(4, 6), w2=a(6, 4))),
        (h.apply_rotary, dict(x=x, positions=range(3), theta=10000.0, interleaved=False)),
        (h.causal_mask, dict(n=3, backend=lib)), (h.padding_mask, dict(lengths=i(1, 3), n=3)),
        (h.sinusoidal_positional_encoding, dict(n_positions=5, d_model=4, backend=lib)),
        (h.frequencies, dict(d_model=4, backend=lib)), (h.positional_rotation, dict(k=2, d_model=4, backend=lib)),
        (h.rotary_frequencies, dict(d=4, theta=100.0, backend=lib)),
        (ea.sliding_window_mask, dict(n=4, window=1, causal=False, backend=lib)),
        (ea.strided_mask, dict(n=4, stride=2, causal=True, backend=lib)),
        (ea.global_tokens_mask, dict(n=4, num_global=1, backend=lib)),
        (ea.sliding_window_attention, dict(q=x, k=x, v=x, window=1, causal=True)),
        (ea.sparse_attention, dict(q=x, k=x, v=x, mask=mask(3, 3))),
        (ea.tiled_attention, dict(q=x, k=x, v=x, block_q=2, block_k=2, causal=True, mask=mask(3, 3))),
        (ea.online_softmax, dict(x=a(2, 5), block_size=2)),
        (ea.online_softmax_step, dict(m=a(2), l=a(2) ** 2, block=a(2, 3))),
        (ea.attention_layer_costs, dict(n=4, d_model=8, num_heads=2, itemsize=4)),
        (ea.sliding_window_key_index, dict(n=4, window=1, causal=False)),
        (B.softmax_backward, dict(probs=a(2, 3), d_probs=a(2, 3), axis=-1)),
        (B.layer_norm_backward, dict(x=x, gamma=a(4), beta=a(4), d_output=x, eps=1e-5)),
        (B.cross_entropy_backward, dict(logits=a(3, 5), targets=i(0, 4, 2), label_smoothing=0.0)),
        (B.scaled_dot_product_attention_backward, dict(q=x, k=x, v=x, d_output=x)),
        (B.feed_forward_backward, dict(x=x, w1=a(4, 6), b1=a(6), w2=a(6, 4), b2=a(4), d_output=x)),
        (rms_norm_backward, dict(x=x, gamma=a(4), d_output=x)),
    ]


def bad_values(lib, original):
    """Wrong values for an argument whose valid value is ``original``."""
    other = "numpy" if lib == "torch" else "torch"
    a, i, mask = _arrays(other)
    same_a, same_i, same_mask = _arrays(lib)
    values = [None, "x", True, 2.5, -1, 0, math.nan, math.inf, [1.0, 2.0], object(), np.int64(2), np.float32(0.5)]
    if hasattr(original, "shape"):
        shape = tuple(original.shape)
        values += [a(*shape) if original.dtype != bool else mask(*shape)]           # the other library
        values += [same_a(*shape[:-1], shape[-1] + 1) if shape else same_a(2), same_a(), same_a(*shape, 2)]
        values += [same_i(*([1] * max(len(shape), 1))), same_mask(*shape) if shape else same_mask(1)]
        if lib == "torch":
            values += [original.to(torch.float32 if original.dtype == torch.float64 else torch.float64),
                       original.to("meta"), original * math.nan]
        else:
            values += [np.asarray(original, dtype=np.float16), np.asarray(original).tolist()]
    return values


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_every_function_refuses_bad_arguments_by_name(lib):
    """Each argument of each function, replaced in turn by each of a list of wrong values
    (wrong types, wrong shapes, the other library, meta tensors, NaN, other dtypes): the
    call succeeds or raises a ValueError/TypeError naming an argument, nothing else."""
    tried = 0
    for func, kwargs in valid_calls(lib):
        status, result, _ = call(func, **kwargs)
        assert status == "ok", (func.__name__, result)
        for name, original in kwargs.items():
            for bad in bad_values(lib, original):
                status, result, _ = call(func, **{**kwargs, name: bad})   # asserts any error is named
                tried += 1
    assert tried > 1000
