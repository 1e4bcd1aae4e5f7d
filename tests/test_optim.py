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
