"""helpers.optim: the hand-written steps equal torch.optim step for step (float64)."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import optim

TOL = dict(rtol=1e-12, atol=1e-14)


def run_torch(optimizer_cls, p0, grads, **kwargs):
    param = torch.tensor(p0, requires_grad=True)
    opt = optimizer_cls([param], **kwargs)
    out = []
    for g in grads:
        param.grad = torch.tensor(g)
        opt.step()
        out.append(param.detach().numpy().copy())
    return out


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), lr=st.sampled_from([1e-3, 0.05, 0.5]),
       betas=st.sampled_from([(0.9, 0.999), (0.9, 0.98), (0.5, 0.6)]),
       weight_decay=st.sampled_from([0.0, 0.01, 0.3]), decoupled=st.booleans(),
       backend=st.sampled_from(["numpy", "torch"]))
def test_adam_equals_torch(seed, lr, betas, weight_decay, decoupled, backend):
    rng = np.random.default_rng(seed)
    p0 = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) for _ in range(8)]
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    expected = run_torch(cls, p0, grads, lr=lr, betas=betas, eps=1e-9, weight_decay=weight_decay)
    wrap = np.asarray if backend == "numpy" else torch.tensor
    p, m, v = wrap(p0), wrap(np.zeros_like(p0)), wrap(np.zeros_like(p0))
    for t, (g, e) in enumerate(zip(grads, expected), start=1):
        p, m, v = optim.adam_step(p, wrap(g), m, v, t, lr, *betas, eps=1e-9,
                                  weight_decay=weight_decay, decoupled=decoupled)
        assert type(p) is type(wrap(p0))
        np.testing.assert_allclose(np.asarray(p), e, **TOL, err_msg=f"step {t}")


def test_adam_first_step_moves_every_coordinate_by_about_lr():
    # m_hat_1 = g and v_hat_1 = g^2, so the first update is lr * g / (|g| + eps)
    g = np.array([1e-4, -3.0, 250.0])
    p, _, _ = optim.adam_step(np.zeros(3), g, np.zeros(3), np.zeros(3), 1, 0.01, eps=0.0)
    np.testing.assert_allclose(p, -0.01 * np.sign(g), rtol=1e-12)


def test_adam_bias_correction_makes_constant_gradients_exact():
    g = np.array([0.5, -2.0])
    p, m, v = np.zeros(2), np.zeros(2), np.zeros(2)
    for t in range(1, 6):
        p, m, v = optim.adam_step(p, g, m, v, t, 0.1, eps=0.0)
        np.testing.assert_allclose(m, (1 - 0.9 ** t) * g, rtol=1e-12)
        np.testing.assert_allclose(v, (1 - 0.999 ** t) * g * g, rtol=1e-12)
    np.testing.assert_allclose(p, -0.5 * np.sign(g), rtol=1e-12)   # 5 steps of exactly lr


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), lr=st.sampled_from([0.01, 0.3]), momentum=st.sampled_from([0.0, 0.5, 0.9]))
def test_momentum_and_sgd_equal_torch(seed, lr, momentum):
    rng = np.random.default_rng(seed)
    p0 = rng.normal(size=5)
    grads = [rng.normal(size=5) for _ in range(6)]
    expected = run_torch(torch.optim.SGD, p0, grads, lr=lr, momentum=momentum)
    p, u = p0.copy(), np.zeros(5)
    for g, e in zip(grads, expected):
        p, u = optim.momentum_step(p, g, u, lr, momentum)
        np.testing.assert_allclose(p, e, **TOL)
    plain = run_torch(torch.optim.SGD, p0, grads, lr=lr)
    p = torch.tensor(p0)
    for g, e in zip(grads, plain):
        p = optim.sgd_step(p, torch.tensor(g), lr)
        np.testing.assert_allclose(p.numpy(), e, **TOL)


def test_bad_input_is_named():
    z = np.zeros(3)
    with pytest.raises(ValueError, match="step must be an integer >= 1"):
        optim.adam_step(z, z, z, z, 0, 0.1)
    with pytest.raises(ValueError, match=r"grad must have the shape of param, \(3,\); got \(4,\)"):
        optim.sgd_step(z, np.zeros(4), 0.1)
    with pytest.raises(ValueError, match="momentum must be a number >= 0.0 and < 1.0"):
        optim.momentum_step(z, z, z, 0.1, momentum=1.0)
    with pytest.raises(TypeError, match="mix NumPy and torch"):
        optim.adam_step(z, torch.zeros(3, dtype=torch.float64), z, z, 1, 0.1)
    with pytest.raises(ValueError, match="beta2 must be"):
        optim.adam_step(z, z, z, z, 1, 0.1, beta2=1.5)


# ---------------------------------------------------------------- clip_grad_norm


def torch_clip(grads, max_norm):
    """torch.nn.utils.clip_grad_norm_ on parameters holding ``grads``: (clipped, total norm)."""
    params = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g)
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return [p.grad.numpy() for p in params], float(total)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), count=st.integers(1, 4), scale=st.sampled_from([1e-3, 1.0, 50.0]),
       max_norm=st.sampled_from([1e-2, 0.5, 1.0, 10.0]), backend=st.sampled_from(["numpy", "torch"]))
def test_clip_grad_norm_equals_torch(seed, count, scale, max_norm, backend):
    rng = np.random.default_rng(seed)
    grads = [scale * rng.normal(size=tuple(rng.integers(1, 5, size=rng.integers(1, 4)))) for _ in range(count)]
    expected, expected_norm = torch_clip(grads, max_norm)
    wrap = np.asarray if backend == "numpy" else torch.tensor
    originals = [g.copy() for g in grads]
    inputs = [wrap(g) for g in grads]
    clipped, total = optim.clip_grad_norm(inputs, max_norm)
    assert isinstance(clipped, list) and len(clipped) == count
    assert float(total) == pytest.approx(expected_norm, rel=1e-14)
    for c, e, i, o in zip(clipped, expected, inputs, originals):
        assert type(c) is type(i) and tuple(c.shape) == o.shape
        np.testing.assert_allclose(np.asarray(c), e, rtol=1e-14, atol=0)
        np.testing.assert_array_equal(np.asarray(i), o)        # pure: the inputs are unchanged


def test_clip_grad_norm_by_hand():
    # two arrays, (3, 4) and (12,): the global norm is sqrt(9 + 16 + 144) = 13, not 5 or 12
    grads = [np.array([3.0, 4.0]), np.array([12.0])]
    clipped, total = optim.clip_grad_norm(grads, 6.5)
    assert float(total) == 13.0
    factor = 6.5 / (13.0 + 1e-6)                    # torch's formula, eps = 1e-6 in the divisor
    np.testing.assert_allclose(clipped[0], [3.0 * factor, 4.0 * factor], rtol=1e-15)
    np.testing.assert_allclose(clipped[1], [12.0 * factor], rtol=1e-15)
    # below the threshold nothing changes; exactly at it, eps scales by c / (c + eps) < 1, as torch does
    same, _ = optim.clip_grad_norm(grads, 20.0)
    np.testing.assert_array_equal(same[0], grads[0])
    at, _ = optim.clip_grad_norm(grads, 13.0)
    assert at[1][0] == pytest.approx(12.0 * 13.0 / (13.0 + 1e-6), rel=1e-15) and at[1][0] < 12.0
    torch_at, _ = torch_clip(grads, 13.0)
    np.testing.assert_allclose(at[1], torch_at[1], rtol=1e-15)
    # eps = 0: the clipped norm is exactly max_norm and the direction is kept
    exact, _ = optim.clip_grad_norm(grads, 6.5, eps=0.0)
    flat = np.concatenate(exact)
    assert np.linalg.norm(flat) == pytest.approx(6.5, rel=1e-15)
    np.testing.assert_allclose(flat / np.linalg.norm(flat), np.array([3.0, 4.0, 12.0]) / 13.0, rtol=1e-15)


def test_clip_grad_norm_keeps_float32():
    g = [torch.ones(3, dtype=torch.float32) * 4, torch.zeros(2, dtype=torch.float32)]
    clipped, total = optim.clip_grad_norm(g, 1.0)
    assert clipped[0].dtype == torch.float32 and total.dtype == torch.float32 and total.shape == ()
    assert float(total) == pytest.approx(4 * 3 ** 0.5, rel=1e-6)
    np.testing.assert_allclose(np.linalg.norm(np.concatenate([c.numpy() for c in clipped])), 1.0, rtol=1e-5)


@pytest.mark.parametrize("call, error, words", [
    (lambda: optim.clip_grad_norm(np.ones(3), 1.0), TypeError, "grads must be a list or tuple"),
    (lambda: optim.clip_grad_norm([], 1.0), ValueError, "at least one array"),
    (lambda: optim.clip_grad_norm([np.ones(2), torch.ones(2)], 1.0), TypeError, "mix NumPy and torch"),
    (lambda: optim.clip_grad_norm([np.ones(2), [1.0, 2.0]], 1.0), TypeError, "grads[1] must be a NumPy array"),
    (lambda: optim.clip_grad_norm([np.arange(3)], 1.0), TypeError, "grads[0] must hold real floating"),
    (lambda: optim.clip_grad_norm([np.ones(2), np.ones(2, dtype=np.float32)], 1.0), TypeError, "one dtype"),
    (lambda: optim.clip_grad_norm([np.ones(2)], 0.0), ValueError, "max_norm must be a number > 0.0"),
    (lambda: optim.clip_grad_norm([np.ones(2)], -1.0), ValueError, "got -1.0"),
    (lambda: optim.clip_grad_norm([np.ones(2)], True), ValueError, "max_norm"),
    (lambda: optim.clip_grad_norm([np.ones(2)], 1.0, eps=-1e-6), ValueError, "eps must be a number >= 0"),
])
def test_clip_grad_norm_refuses_bad_input_by_name(call, error, words):
    with pytest.raises(error, match="clip_grad_norm: ") as info:
        call()
    assert words in str(info.value)
