"""Chapter 12's formulas: RMSNorm, SiLU, GELU, the SwiGLU FFN and rotary position embedding.

Each is checked against an independent computation (explicit loops in NumPy, PyTorch's
own function, complex numbers, chapter 5's rotation matrices), on both backends, with
its gradients (torch.autograd.gradcheck, and the hand-derived RMSNorm backward), and
with bad input refused by name.
"""
import cmath
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import helpers
from helpers.activations import gelu, sigmoid, silu, swiglu_feed_forward
from helpers.rms_norm import rms_norm, rms_norm_backward
from helpers.rotary import apply_rotary, rotary_frequencies

TOL = dict(rtol=1e-12, atol=1e-12)


def t(a):
    return torch.tensor(a)


def both_agree(func, *arrays, **kwargs):
    """func on NumPy float64 and on the equal torch tensors: same numbers to 1e-12."""
    out_np = func(*arrays, **kwargs)
    out_t = func(*(t(a) for a in arrays), **kwargs)
    outs_np = out_np if isinstance(out_np, tuple) else (out_np,)
    outs_t = out_t if isinstance(out_t, tuple) else (out_t,)
    for a, b in zip(outs_np, outs_t):
        assert isinstance(a, np.ndarray) and a.dtype == np.float64
        assert isinstance(b, torch.Tensor) and b.dtype == torch.float64
        np.testing.assert_allclose(b.numpy(), a, **TOL)
    return out_np


# ---------------------------------------------------------------- RMSNorm

def rms_norm_by_hand(x, gamma, eps):
    out = np.empty_like(x)
    for index in np.ndindex(*x.shape[:-1]):
        row = x[index]
        rms = math.sqrt(sum(v * v for v in row) / len(row) + eps)
        out[index] = [v / rms * g for v, g in zip(row, gamma)]
    return out


@pytest.mark.parametrize("shape", [(5,), (3, 7), (2, 3, 16)])
@pytest.mark.parametrize("eps", [0.0, 1e-6, 0.5])
def test_rms_norm_is_the_formula_on_both_backends(rng, shape, eps):
    x, gamma = rng.normal(size=shape), rng.normal(size=shape[-1])
    out = both_agree(rms_norm, x, gamma, eps=eps)
    np.testing.assert_allclose(out, rms_norm_by_hand(x, gamma, eps), **TOL)


def test_rms_norm_equals_pytorch(rng):
    x, gamma = rng.normal(size=(4, 5, 12)), rng.normal(size=12)
    layer = torch.nn.RMSNorm(12, eps=1e-6, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(t(gamma))
        expected = layer(t(x))
    torch.testing.assert_close(rms_norm(t(x), t(gamma)), expected, **TOL)
    torch.testing.assert_close(rms_norm(t(x), t(gamma), eps=0.25),
                               F.rms_norm(t(x), (12,), t(gamma), eps=0.25), **TOL)
    # and through the fused path
    torch.testing.assert_close(rms_norm(t(x), t(gamma), fused=True), expected, **TOL)


def test_rms_norm_is_layer_norm_on_zero_mean_rows(rng):
    x = rng.normal(size=(6, 10)) * 3 + 1
    x -= x.mean(axis=-1, keepdims=True)
    gamma = rng.normal(size=10)
    np.testing.assert_allclose(rms_norm(x, gamma, eps=1e-5),
                               helpers.layer_norm(x, gamma, np.zeros(10), eps=1e-5), **TOL)
    # ...but not on rows with a mean
    x_shifted = x + 2.0
    assert np.abs(rms_norm(x_shifted, gamma, eps=1e-5)
                  - helpers.layer_norm(x_shifted, gamma, np.zeros(10), eps=1e-5)).max() > 0.1


def test_rms_norm_output_has_unit_root_mean_square(rng):
    x = rng.normal(size=(8, 32)) * rng.uniform(0.1, 100, size=(8, 1))
    y = rms_norm(x, np.ones(32), eps=0.0)
    np.testing.assert_allclose(np.sqrt((y ** 2).mean(axis=-1)), 1.0, rtol=1e-12)
    # scale invariance: RMSNorm(c x) = RMSNorm(x) for c > 0 (eps = 0)
    np.testing.assert_allclose(rms_norm(37.0 * x, np.ones(32), eps=0.0), y, **TOL)


@pytest.mark.parametrize("shape", [(7,), (3, 9), (2, 4, 6)])
def test_rms_norm_backward_equals_autograd(rng, shape):
    x, gamma, d_out = rng.normal(size=shape), rng.normal(size=shape[-1]), rng.normal(size=shape)
    d_x, d_gamma = both_agree(rms_norm_backward, x, gamma, d_out, eps=1e-3)
    x_t, g_t = t(x).requires_grad_(), t(gamma).requires_grad_()
    (F.rms_norm(x_t, (shape[-1],), g_t, eps=1e-3) * t(d_out)).sum().backward()
    np.testing.assert_allclose(d_x, x_t.grad.numpy(), **TOL)
    np.testing.assert_allclose(d_gamma, g_t.grad.numpy(), **TOL)


def test_rms_norm_backward_by_finite_differences(rng):
    x, gamma, d_out = rng.normal(size=(2, 5)), rng.normal(size=5), rng.normal(size=(2, 5))
    d_x, d_gamma = rms_norm_backward(x, gamma, d_out, eps=1e-6)
    loss = lambda x_, g_: float((rms_norm(x_, g_) * d_out).sum())
    h = 1e-6
    for index in np.ndindex(*x.shape):
        bump = np.zeros_like(x)
        bump[index] = h
        numeric = (loss(x + bump, gamma) - loss(x - bump, gamma)) / (2 * h)
        assert numeric == pytest.approx(d_x[index], abs=1e-7)
    for i in range(5):
        bump = np.zeros(5)
        bump[i] = h
        numeric = (loss(x, gamma + bump) - loss(x, gamma - bump)) / (2 * h)
        assert numeric == pytest.approx(d_gamma[i], abs=1e-7)


def test_rms_norm_gradcheck_and_fused_gradients(rng):
    x = t(rng.normal(size=(3, 6))).requires_grad_()
    gamma = t(rng.normal(size=6)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, g: rms_norm(a, g, eps=1e-4), (x, gamma))
    d_out = t(rng.normal(size=(3, 6)))
    grads = []
    for fused in (False, True):
        (rms_norm(x, gamma, eps=1e-4, fused=fused) * d_out).sum().backward()
        grads.append((x.grad.clone(), gamma.grad.clone()))
        x.grad, gamma.grad = None, None
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, **TOL)


def test_rms_norm_nan_row_stays_nan(rng):
    x = rng.normal(size=(3, 4))
    x[1, 2] = np.nan
    for lib_x, lib_g in ((x, np.ones(4)), (t(x), torch.ones(4, dtype=torch.float64))):
        y = np.asarray(rms_norm(lib_x, lib_g))
        assert np.isnan(y[1]).all() and np.isfinite(y[[0, 2]]).all()


# ---------------------------------------------------------------- activations

def test_sigmoid_and_silu_are_the_formula_on_both_backends(rng):
    x = rng.normal(size=(4, 50)) * 6
    s = both_agree(sigmoid, x)
    np.testing.assert_allclose(s, [[1 / (1 + math.exp(-v)) for v in row] for row in x], **TOL)
    out = both_agree(silu, x)
    np.testing.assert_allclose(out, [[v / (1 + math.exp(-v)) for v in row] for row in x], **TOL)
    torch.testing.assert_close(silu(t(x)), F.silu(t(x)), **TOL)
    torch.testing.assert_close(silu(t(x), fused=True), F.silu(t(x)), **TOL)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_is_the_formula_and_equals_pytorch(rng, approximate):
    x = rng.normal(size=(3, 60)) * 4
    out = both_agree(gelu, x, approximate=approximate)
    if approximate == "none":
        by_hand = [[v / 2 * (1 + math.erf(v / math.sqrt(2))) for v in row] for row in x]
    else:
        by_hand = [[v / 2 * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))
                    for v in row] for row in x]
    np.testing.assert_allclose(out, by_hand, **TOL)
    torch.testing.assert_close(gelu(t(x), approximate), F.gelu(t(x), approximate=approximate), **TOL)
    torch.testing.assert_close(gelu(t(x), approximate, fused=True),
                               F.gelu(t(x), approximate=approximate), **TOL)


def test_gelu_is_x_times_the_normal_cdf(rng):
    # Phi(x) = P(Z <= x), Z ~ N(0, 1), by the trapezoid rule on the density from -12 (no erf)
    for v in (-3.0, -1.0, -0.2, 0.0, 0.7, 2.5):
        z = np.linspace(-12, v, 200001)
        phi = np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
        cdf = float(((phi[1:] + phi[:-1]) / 2 * np.diff(z)).sum())
        assert gelu(np.array([v]))[0] == pytest.approx(v * cdf, abs=1e-9)


def test_the_two_gelu_forms_differ_by_less_than_5e_4():
    x = np.linspace(-50, 50, 1_000_001)
    gap = np.abs(gelu(x) - gelu(x, "tanh"))
    assert gap.max() < 5e-4 and gap.max() > 4.7e-4
    assert abs(abs(x[gap.argmax()]) - 2.7) < 0.01


def test_silu_minimum():
    x = np.linspace(-5, 5, 1_000_001)
    y = silu(x)
    # the minimum solves 1 + x (1 - sigmoid(x)) = 0; bisect it independently
    lo, hi = -2.0, -1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 1 + mid * (1 - 1 / (1 + math.exp(-mid))) > 0:
            hi = mid
        else:
            lo = mid
    assert abs(x[y.argmin()] - lo) < 1e-5
    assert y.min() == pytest.approx(lo / (1 + math.exp(-lo)), abs=1e-10)
    assert round(lo, 3) == -1.278 and round(y.min(), 3) == -0.278


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_activations_are_stable_for_large_inputs_and_keep_nan(lib):
    x = np.array([-1e300, -1000.0, -50.0, 0.0, 50.0, 1000.0, 1e300, np.nan])
    if lib == "torch":
        x = t(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                         # no overflow warning from NumPy
        s, y = np.asarray(sigmoid(x)), np.asarray(silu(x))
        g_exact, g_tanh = np.asarray(gelu(x)), np.asarray(gelu(x, "tanh"))
    np.testing.assert_array_equal(s[:7], [0, 0, math.exp(-50) / (1 + math.exp(-50)), 0.5,
                                          1 / (1 + math.exp(-50)), 1, 1])
    for out in (y, g_exact, g_tanh):
        np.testing.assert_array_equal(out[[0, 1, 3]], 0.0)
        np.testing.assert_array_equal(out[[5, 6]], [1000.0, 1e300])
        assert np.isnan(out[7])                                  # NaN in, NaN out
        assert np.isnan(s[7])


def test_float16_tanh_gelu_does_not_overflow():
    x = torch.tensor([-60000.0, -100.0, 100.0, 60000.0], dtype=torch.float16)
    y = gelu(x, "tanh")
    assert y.dtype == torch.float16
    torch.testing.assert_close(y, F.gelu(x, approximate="tanh"), rtol=0, atol=0)


def swiglu_by_hand(x, w1, w3, w2):
    rows = x.reshape(-1, x.shape[-1])
    out = np.zeros((rows.shape[0], w2.shape[1]))
    for r, row in enumerate(rows):
        for j in range(w1.shape[1]):
            gate = sum(row[i] * w1[i, j] for i in range(len(row)))
            value = sum(row[i] * w3[i, j] for i in range(len(row)))
            out[r] += gate / (1 + math.exp(-gate)) * value * w2[j]
    return out.reshape(*x.shape[:-1], w2.shape[1])


def test_swiglu_feed_forward_is_the_formula(rng):
    x = rng.normal(size=(2, 3, 6))
    w1, w3, w2 = rng.normal(size=(6, 16)), rng.normal(size=(6, 16)), rng.normal(size=(16, 6))
    out = both_agree(swiglu_feed_forward, x, w1, w3, w2)
    np.testing.assert_allclose(out, swiglu_by_hand(x, w1, w3, w2), **TOL)
    # PyTorch's layers, no biases, as a Llama-style MLP writes them
    gate, up, down = (torch.nn.Linear(a, b, bias=False, dtype=torch.float64)
                      for a, b in ((6, 16), (6, 16), (16, 6)))
    with torch.no_grad():
        gate.weight.copy_(t(w1).T)
        up.weight.copy_(t(w3).T)
        down.weight.copy_(t(w2).T)
        expected = down(F.silu(gate(t(x))) * up(t(x)))
    torch.testing.assert_close(swiglu_feed_forward(t(x), t(w1), t(w3), t(w2)), expected, **TOL)
    torch.testing.assert_close(swiglu_feed_forward(t(x), t(w1), t(w3), t(w2), fused=True),
                               expected, **TOL)


def test_activation_gradcheck_and_fused_gradients(rng):
    x = t(rng.normal(size=(3, 5)) * 3).requires_grad_()
    w1, w3 = (t(rng.normal(size=(5, 8))).requires_grad_() for _ in range(2))
    w2 = t(rng.normal(size=(8, 4))).requires_grad_()
    assert torch.autograd.gradcheck(silu, (x,))
    assert torch.autograd.gradcheck(sigmoid, (x,))
    assert torch.autograd.gradcheck(lambda a: gelu(a), (x,))
    assert torch.autograd.gradcheck(lambda a: gelu(a, "tanh"), (x,))
    assert torch.autograd.gradcheck(swiglu_feed_forward, (x, w1, w3, w2))
    calls = [lambda f: silu(x, fused=f), lambda f: gelu(x, fused=f),
             lambda f: gelu(x, "tanh", fused=f), lambda f: swiglu_feed_forward(x, w1, w3, w2, fused=f)]
    for call in calls:
        grads = []
        for fused in (False, True):
            out = call(fused)
            leaves = (x, w1, w3, w2)
            grads.append(torch.autograd.grad((out * torch.cos(out)).sum(), leaves, allow_unused=True))
        for a, b in zip(*grads):
            if a is None:
                assert b is None
            else:
                torch.testing.assert_close(a, b, **TOL)


# ---------------------------------------------------------------- rotary position embedding

def rotary_by_hand(x, positions, theta=10000.0, interleaved=True):
    """Loops over rows and pairs; x (n, d)."""
    n, d = x.shape
    out = np.empty_like(x)
    for r in range(n):
        for i in range(d // 2):
            angle = positions[r] * theta ** (-2 * i / d)
            ia, ib = (2 * i, 2 * i + 1) if interleaved else (i, i + d // 2)
            a, b = x[r, ia], x[r, ib]
            out[r, ia] = a * math.cos(angle) - b * math.sin(angle)
            out[r, ib] = a * math.sin(angle) + b * math.cos(angle)
    return out


@pytest.mark.parametrize("interleaved", [True, False])
@pytest.mark.parametrize("theta", [10000.0, 500000.0, 10.0])
def test_apply_rotary_is_the_formula_on_both_backends(rng, interleaved, theta):
    x = rng.normal(size=(7, 12))
    positions = np.array([0, 1, 2, 5, 9, 100, 4095])
    out = apply_rotary(x, positions, theta=theta, interleaved=interleaved)
    out_t = apply_rotary(t(x), t(positions), theta=theta, interleaved=interleaved)
    assert out_t.dtype == torch.float64
    np.testing.assert_allclose(out_t.numpy(), out, **TOL)
    np.testing.assert_allclose(out, rotary_by_hand(x, positions, theta, interleaved), rtol=0, atol=1e-12)
    # a range and a list are accepted too
    np.testing.assert_array_equal(apply_rotary(x, list(positions), theta, interleaved), out)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rotary_table_remembered_for_ranges_is_the_formula(rng, dtype):
    # A model passes range(past, past + n); its cos/sin table is made once and remembered.
    # It must equal the hand loop at every offset, and a table first made while
    # generating (inference mode) must still work in training (autograd).
    x = rng.normal(size=(2, 3, 5, 8))
    for start in (0, 7, 4093):
        with torch.inference_mode():
            first = apply_rotary(t(x).to(dtype), range(start, start + 5))
        x_t = t(x).to(dtype).requires_grad_()
        out = apply_rotary(x_t, range(start, start + 5))                  # (2, 3, 5, 8)
        out.square().sum().backward()                                     # no inference-tensor error
        assert out.dtype == dtype and torch.equal(out.detach(), first)
        by_hand = rotary_by_hand(x[1, 2], np.arange(start, start + 5))
        tol = dict(rtol=0, atol=1e-12) if dtype == torch.float64 else dict(rtol=0, atol=1e-5)
        np.testing.assert_allclose(out[1, 2].detach().double().numpy(), by_hand, **tol)
        # the gradient of |rot x|^2 is 2x: a rotation keeps lengths
        np.testing.assert_allclose(x_t.grad.double().numpy(), 2 * x, rtol=0, atol=tol["atol"] * 10)


def test_apply_rotary_batches_and_heads(rng):
    x = rng.normal(size=(2, 3, 5, 8))                                  # (B, h, n, d_k)
    out = apply_rotary(x, range(5))
    for b in range(2):
        for head in range(3):
            np.testing.assert_allclose(out[b, head], rotary_by_hand(x[b, head], range(5)), **TOL)


@pytest.mark.parametrize("interleaved", [True, False])
def test_rotated_scores_depend_only_on_the_offset(rng, interleaved):
    d, n = 16, 40
    q, k = rng.normal(size=d), rng.normal(size=d)
    # the same q at every position, the same k at every position
    q_rot = apply_rotary(np.tile(q, (n, 1)), range(n), interleaved=interleaved)     # (n, d)
    k_rot = apply_rotary(np.tile(k, (n, 1)), range(n), interleaved=interleaved)     # (n, d)
    scores = q_rot @ k_rot.T                                                        # (n, n): [i, j]
    by_offset = {}
    for i in range(n):
        for j in range(n):
            by_offset.setdefault(j - i, []).append(scores[i, j])
    for offset, values in by_offset.items():
        np.testing.assert_allclose(values, values[0], rtol=0, atol=1e-12)
        # and it is q . (k rotated by the offset)
        expected = q @ apply_rotary(k[None], [offset], interleaved=interleaved)[0]
        assert values[0] == pytest.approx(expected, abs=1e-12)
    # not a constant: the offset matters
    assert np.ptp([v[0] for v in by_offset.values()]) > 0.5
    # torch agrees
    s_t = (apply_rotary(t(np.tile(q, (n, 1))), torch.arange(n), interleaved=interleaved)
           @ apply_rotary(t(np.tile(k, (n, 1))), torch.arange(n), interleaved=interleaved).T)
    np.testing.assert_allclose(s_t.numpy(), scores, **TOL)


def test_the_two_pairings_are_a_permutation_of_each_other(rng):
    d = 10
    x = rng.normal(size=(2, 6, d))
    positions = [3, 1, 4, 1, 5, 9]
    # split-halves order -> interleaved order: feature i goes to 2i, feature i + d/2 to 2i + 1
    to_interleaved = np.empty(d, dtype=int)
    to_interleaved[0::2] = np.arange(d // 2)
    to_interleaved[1::2] = np.arange(d // 2) + d // 2
    back = np.argsort(to_interleaved)
    via_interleaved = apply_rotary(x[..., to_interleaved], positions, interleaved=True)[..., back]
    np.testing.assert_allclose(apply_rotary(x, positions, interleaved=False), via_interleaved, **TOL)
    via_t = apply_rotary(t(x)[..., to_interleaved], positions, interleaved=True)[..., back]
    torch.testing.assert_close(apply_rotary(t(x), positions, interleaved=False), via_t, **TOL)
    # the permutation is not the identity: the two pairings really differ
    assert np.abs(apply_rotary(x, positions, interleaved=False)
                  - apply_rotary(x, positions, interleaved=True)).max() > 0.1


def test_complex_form_equals_the_real_form(rng):
    d, n = 8, 6
    x = rng.normal(size=(n, d))
    positions = [0, 2, 3, 7, 11, 50]
    omega = [10000.0 ** (-2 * i / d) for i in range(d // 2)]
    z = x[:, 0::2] + 1j * x[:, 1::2]                                 # pair i as a + i b
    turned = np.array([[z[r, i] * cmath.exp(1j * positions[r] * omega[i]) for i in range(d // 2)]
                       for r in range(n)])
    out = apply_rotary(x, positions)
    np.testing.assert_allclose(out[:, 0::2], turned.real, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out[:, 1::2], turned.imag, rtol=0, atol=1e-12)
    # the same with torch's complex tensors (view_as_complex pairs neighbouring floats)
    zt = torch.view_as_complex(t(x).reshape(n, d // 2, 2).contiguous())
    angles = torch.tensor(positions, dtype=torch.float64)[:, None] * torch.tensor(omega, dtype=torch.float64)[None, :]
    rotated = torch.view_as_real(zt * torch.polar(torch.ones_like(angles), angles)).reshape(n, d)
    torch.testing.assert_close(apply_rotary(t(x), positions), rotated, rtol=0, atol=1e-12)


def test_rotation_preserves_norms_and_position_zero_is_the_identity(rng):
    x = rng.normal(size=(3, 20, 14))
    for interleaved in (True, False):
        out = apply_rotary(x, np.arange(20) * 37, interleaved=interleaved)
        np.testing.assert_allclose(np.linalg.norm(out, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-12)
        # pair by pair, not only the whole vector
        if interleaved:
            pair_norms = lambda a: np.hypot(a[..., 0::2], a[..., 1::2])
        else:
            pair_norms = lambda a: np.hypot(a[..., :7], a[..., 7:])
        np.testing.assert_allclose(pair_norms(out), pair_norms(x), rtol=1e-12)
        np.testing.assert_array_equal(apply_rotary(x, np.zeros(20, dtype=int), interleaved=interleaved), x)


def test_theta_sets_the_frequencies(rng):
    for d, theta in ((8, 10000.0), (64, 10000.0), (128, 500000.0), (6, 2.0)):
        omega = rotary_frequencies(d, theta)
        np.testing.assert_allclose(omega, [theta ** (-2 * i / d) for i in range(d // 2)], rtol=1e-13)
        omega_t = rotary_frequencies(d, theta, backend="torch", dtype=torch.float64)
        np.testing.assert_allclose(omega_t.numpy(), omega, **TOL)
        wavelengths = 2 * np.pi / omega
        assert wavelengths[0] == pytest.approx(2 * np.pi)
        assert wavelengths[-1] == pytest.approx(2 * np.pi * theta ** (1 - 2 / d))
        # position 1 rotates pair i by exactly omega_i
        x = np.zeros((1, d))
        x[0, 0::2] = 1.0                                             # every pair at angle 0
        out = apply_rotary(x, [1], theta=theta)
        np.testing.assert_allclose(np.arctan2(out[0, 1::2], out[0, 0::2]), omega, rtol=1e-12)
    # theta = 10000 gives chapter 5's frequencies, bit for bit
    np.testing.assert_array_equal(rotary_frequencies(64), helpers.frequencies(64))
    # a larger theta slows every pair but the first
    slow, fast = rotary_frequencies(64, 500000.0), rotary_frequencies(64, 10000.0)
    assert slow[0] == fast[0] and np.all(slow[1:] < fast[1:])


def test_rotary_is_chapter_5s_rotation_turned_the_other_way(rng):
    # chapter 5's M_k turns the pairs (sin, cos) of PE forward; RoPE's turn is M_k transposed
    d = 12
    x = rng.normal(size=(1, d))
    for p in (0, 1, 7, 300):
        np.testing.assert_allclose(apply_rotary(x, [p]), x @ helpers.positional_rotation(p, d).T,
                                   rtol=0, atol=1e-12)
        np.testing.assert_allclose(apply_rotary(x, [p]), x @ helpers.positional_rotation(-p, d),
                                   rtol=0, atol=1e-12)


def test_rotary_float32_keeps_precision_at_large_positions(rng):
    x = rng.normal(size=(3, 64))
    positions = [100_000, 250_000, 1_000_000]
    exact = apply_rotary(x, positions)                                   # float64
    for lib_x in (x.astype(np.float32), torch.tensor(x, dtype=torch.float32)):
        out = np.asarray(apply_rotary(lib_x, positions), dtype=np.float64)
        assert np.abs(out - exact).max() < 1e-5                          # float32 rounding only


def test_rotary_gradcheck_and_gradient_is_the_inverse_rotation(rng):
    x = t(rng.normal(size=(2, 4, 6))).requires_grad_()
    for interleaved in (True, False):
        assert torch.autograd.gradcheck(lambda a: apply_rotary(a, range(4), interleaved=interleaved), (x,))
    # a rotation's backward is the rotation back: d x = apply_rotary(d out, -positions)
    d_out = t(rng.normal(size=(2, 4, 6)))
    (grad,) = torch.autograd.grad((apply_rotary(x, [2, 5, 0, 9]) * d_out).sum(), (x,))
    torch.testing.assert_close(grad, apply_rotary(d_out, [-2, -5, 0, -9]), **TOL)


# ---------------------------------------------------------------- shapes and dtypes, at random

shapes = st.tuples(st.lists(st.integers(1, 3), min_size=0, max_size=2),
                   st.integers(1, 6), st.integers(1, 8))


@settings(max_examples=40, deadline=None)
@given(shape=shapes, lib=st.sampled_from(["numpy", "torch"]), dtype=st.sampled_from(["float32", "float64"]),
       seed=st.integers(0, 2 ** 16), interleaved=st.booleans())
def test_shapes_and_dtypes_are_kept(shape, lib, dtype, seed, interleaved):
    batch, n, half = shape
    d = 2 * half
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(*batch, n, d)).astype(dtype)
    gamma = rng.normal(size=d).astype(dtype)
    w1, w3, w2 = (rng.normal(size=s).astype(dtype) for s in ((d, 3), (d, 3), (3, d)))
    positions = rng.integers(0, 1000, size=n)
    if lib == "torch":
        x, gamma, w1, w3, w2, positions = map(torch.tensor, (x, gamma, w1, w3, w2, positions))
    outs = [rms_norm(x, gamma), silu(x), gelu(x), gelu(x, "tanh"),
            swiglu_feed_forward(x, w1, w3, w2), apply_rotary(x, positions, interleaved=interleaved),
            rms_norm_backward(x, gamma, x)[0]]
    for out in outs:
        assert type(out) is type(x) and out.dtype == x.dtype and tuple(out.shape) == tuple(x.shape)
    # the float32 results are the float64 results, rounded
    x64 = np.asarray(x, dtype=np.float64)
    ref = apply_rotary(x64, np.asarray(positions), interleaved=interleaved)
    np.testing.assert_allclose(np.asarray(outs[5], dtype=np.float64), ref,
                               rtol=0, atol=1e-5 * (1 + np.abs(x64).max()) if dtype == "float32" else 1e-12)
    np.testing.assert_allclose(np.asarray(outs[0], dtype=np.float64),
                               rms_norm(x64, np.asarray(gamma, dtype=np.float64)),
                               rtol=1e-4 if dtype == "float32" else 1e-12, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2 ** 16), n=st.integers(2, 12), half=st.integers(1, 8),
       theta=st.floats(2.0, 1e6), shift=st.integers(-50, 50))
def test_shifting_every_position_leaves_the_scores_unchanged(seed, n, half, theta, shift):
    rng = np.random.default_rng(seed)
    q, k = rng.normal(size=(n, 2 * half)), rng.normal(size=(n, 2 * half))
    positions = rng.integers(0, 100, size=n)
    scores = apply_rotary(q, positions, theta) @ apply_rotary(k, positions, theta).T
    shifted = apply_rotary(q, positions + shift, theta) @ apply_rotary(k, positions + shift, theta).T
    np.testing.assert_allclose(shifted, scores, rtol=0, atol=1e-10 * (1 + np.abs(scores).max()))


# ---------------------------------------------------------------- bad input, by name

X = np.ones((3, 4))


@pytest.mark.parametrize("call, error, words", [
    (lambda: rms_norm(X, np.ones(3)), ValueError, ["x has shape (3, 4)", "gamma must have shape (4,)", "(3,)"]),
    (lambda: rms_norm(X, np.ones(4), eps=-1.0), ValueError, ["eps must be a number >= 0", "-1.0"]),
    (lambda: rms_norm(X, np.ones(4), eps="small"), ValueError, ["eps must be a number >= 0", "'small'"]),
    (lambda: rms_norm(X, np.ones(4), fused=True), TypeError, ["fused=True", "torch", "x is a ndarray"]),
    (lambda: rms_norm(X, torch.ones(4)), TypeError, ["x is a NumPy array", "gamma is a torch tensor"]),
    (lambda: rms_norm(np.ones((3, 4), dtype=int), np.ones(4)), TypeError, ["x must hold real floating-point"]),
    (lambda: rms_norm_backward(X, np.ones(4), np.ones((3, 5))), ValueError, ["d_output must have the shape of x", "(3, 5)"]),
    (lambda: silu(np.arange(3)), TypeError, ["silu: x must hold real floating-point"]),
    (lambda: silu([1.0, 2.0]), TypeError, ["silu: x must be a NumPy array or a torch tensor", "list"]),
    (lambda: silu(X, fused=True), TypeError, ["silu: fused=True", "torch tensor"]),
    (lambda: gelu(X, approximate="erf"), ValueError, ["approximate must be 'none'", "'tanh'", "'erf'"]),
    (lambda: gelu(X, fused=True), TypeError, ["gelu: fused=True"]),
    (lambda: swiglu_feed_forward(X, np.ones((5, 8)), np.ones((5, 8)), np.ones((8, 4))), ValueError,
     ["x has shape (3, 4)", "w1 has shape (5, 8)"]),
    (lambda: swiglu_feed_forward(X, np.ones((4, 8)), np.ones((4, 6)), np.ones((8, 4))), ValueError,
     ["w1 has shape (4, 8)", "w3 has shape (4, 6)"]),
    (lambda: swiglu_feed_forward(X, np.ones((4, 8)), np.ones((4, 8)), np.ones((6, 4))), ValueError,
     ["w1 has shape (4, 8)", "w2 has shape (6, 4)"]),
    (lambda: swiglu_feed_forward(X, np.ones((4, 8)), np.ones(8), np.ones((8, 4))), ValueError,
     ["w3 must be a matrix", "(8,)"]),
    (lambda: apply_rotary(np.ones((3, 5)), range(3)), ValueError, ["x has shape (3, 5)", "d = 5 must be even"]),
    (lambda: apply_rotary(X, range(4)), ValueError, ["positions must have shape (3,)", "(4,)"]),
    (lambda: apply_rotary(X, np.array([0.0, 1.0, 2.0])), TypeError, ["positions must be an integer array", "float64"]),
    (lambda: apply_rotary(X, [0, 1.5, 2]), TypeError, ["positions must be integers", "1.5"]),
    (lambda: apply_rotary(X, [0, True, 2]), TypeError, ["positions must be integers", "True"]),
    (lambda: apply_rotary(X, np.array([True, False, True])), TypeError, ["positions must be an integer array", "bool"]),
    (lambda: apply_rotary(torch.ones(3, 4), np.arange(3)), TypeError, ["x is a torch tensor", "positions is a NumPy array"]),
    (lambda: apply_rotary(X, 3), TypeError, ["positions must be a NumPy array or a torch tensor", "int"]),
    (lambda: apply_rotary(X, range(3), theta=0.0), ValueError, ["theta must be a finite number > 0", "0.0"]),
    (lambda: apply_rotary(X, range(3), theta=-5), ValueError, ["theta must be a finite number > 0", "-5"]),
    (lambda: apply_rotary(X, range(3), theta=float("inf")), ValueError, ["theta must be a finite number > 0"]),
    (lambda: apply_rotary(X, range(3), interleaved="yes"), TypeError, ["interleaved must be True", "'yes'"]),
    (lambda: apply_rotary(np.ones(4), range(1)), ValueError, ["x must have at least 2 axes", "(4,)"]),
    (lambda: apply_rotary(np.ones((3, 4), dtype=int), range(3)), TypeError, ["x must hold real floating-point"]),
    (lambda: rotary_frequencies(7), ValueError, ["d must be an even integer >= 2", "7"]),
    (lambda: rotary_frequencies(8, theta=0), ValueError, ["theta must be a finite number > 0"]),
])
def test_bad_input_is_named(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"
