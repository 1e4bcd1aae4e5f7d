"""helpers.schedule: noam_lr and cosine_lr on Python ints, NumPy arrays and torch tensors.

Expected values are worked out by hand from the formulas (the paper's §5.3 for noam_lr;
linear warm-up then half a cosine period for cosine_lr), and cosine_lr is compared with
PyTorch's own LinearLR + CosineAnnealingLR, which compute it by a different recursion.
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.schedule import cosine_lr, noam_lr

# ---------------------------------------------------------------- noam_lr


def test_noam_hand_values():
    # step 1: the rising branch, 1 * 4000^-1.5 / sqrt(512)
    assert noam_lr(1, 512, 4000) == pytest.approx(1 / (math.sqrt(512) * 4000 ** 1.5), rel=1e-15)
    # the peak: both branches equal 4000^-0.5, so lr = 1 / sqrt(512 * 4000) = 1 / sqrt(2048000)
    assert noam_lr(4000, 512, 4000) == pytest.approx(1 / math.sqrt(2_048_000), rel=1e-15)
    # past the peak: 1 / sqrt(512 * 16000) = 1 / sqrt(8192000) = 1 / (2 sqrt(2048000))
    assert noam_lr(16_000, 512, 4000) == pytest.approx(0.5 / math.sqrt(2_048_000), rel=1e-15)
    # d_model = 1, warmup = 1: 1 / sqrt(step) from step 1 on
    assert noam_lr(9, 1, 1) == pytest.approx(1 / 3, rel=1e-15)


def test_noam_returns_the_callers_kind():
    assert type(noam_lr(10, 64, 4)) is float
    assert type(noam_lr(np.int64(10), 64, 4)) is float
    steps = np.array([[1, 2], [3, 400]])
    out = noam_lr(steps, 64, 4)
    assert isinstance(out, np.ndarray) and out.shape == (2, 2) and out.dtype == np.float64
    for dtype in (torch.int64, torch.int32, torch.int16):
        t = noam_lr(torch.tensor(steps, dtype=dtype), 64, 4)
        assert isinstance(t, torch.Tensor) and t.dtype == torch.float64 and t.shape == (2, 2)
        assert t.device == torch.device("cpu")
        np.testing.assert_allclose(t.numpy(), out, rtol=1e-15)
    scalar = noam_lr(torch.tensor(10), 64, 4)
    assert isinstance(scalar, torch.Tensor) and scalar.shape == ()
    assert scalar.item() == pytest.approx(noam_lr(10, 64, 4), rel=1e-15)
    assert noam_lr(np.array([], dtype=np.int64), 64, 4).shape == (0,)


@settings(max_examples=30, deadline=None)
@given(d_model=st.integers(1, 4096), warmup=st.integers(1, 5000), step=st.integers(1, 100_000))
def test_noam_is_the_smaller_branch_on_both_backends(d_model, warmup, step):
    rising = step * warmup ** -1.5 / math.sqrt(d_model)
    falling = step ** -0.5 / math.sqrt(d_model)
    expected = min(rising, falling)
    assert noam_lr(step, d_model, warmup) == pytest.approx(expected, rel=1e-14)
    assert noam_lr(torch.tensor([step]), d_model, warmup).item() == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("step, error, words", [
    (0, ValueError, "step must be >= 1"),
    (-3, ValueError, "got -3"),
    (np.array([2, 0, 5]), ValueError, "got 0"),
    (torch.tensor([3, 0]), ValueError, "got 0"),
    (1.0, TypeError, "step must be an integer"),
    (np.array([1.0, 2.0]), TypeError, "dtype float64"),
    (torch.tensor([1.0]), TypeError, "dtype torch.float32"),
    (True, TypeError, "bool"),
    (np.bool_(True), TypeError, "bool"),
    (np.array([True]), TypeError, "step must be an integer"),
    (torch.tensor([True]), TypeError, "torch.bool"),
    ("7", TypeError, "step must be an integer"),
])
def test_noam_refuses_bad_steps_by_name(step, error, words):
    with pytest.raises(error, match="noam_lr: step") as info:
        noam_lr(step, 512, 4000)
    assert words in str(info.value)


@pytest.mark.parametrize("d_model, warmup, name", [(0, 10, "d_model"), (512, 0, "warmup_steps"),
                                                    (512.0, 10, "d_model"), (True, 10, "d_model")])
def test_noam_refuses_bad_sizes_by_name(d_model, warmup, name):
    with pytest.raises(ValueError, match=f"noam_lr: {name} must be a positive integer"):
        noam_lr(1, d_model, warmup)


# ---------------------------------------------------------------- cosine_lr


def test_cosine_hand_values():
    peak, low = 0.8, 0.2
    kw = dict(peak_lr=peak, warmup_steps=10, total_steps=110, min_lr=low)
    assert cosine_lr(1, **kw) == pytest.approx(0.08, rel=1e-15)            # 0.8 * 1/10
    assert cosine_lr(5, **kw) == pytest.approx(0.4, rel=1e-15)             # half-way up
    assert cosine_lr(10, **kw) == pytest.approx(0.8, rel=1e-15)            # the peak
    assert cosine_lr(60, **kw) == pytest.approx(0.5, rel=1e-15)            # t = 1/2: (peak + min) / 2
    # t = 1/4: cos(pi/4) = sqrt(2)/2, so min + (peak - min)(2 + sqrt 2)/4
    assert cosine_lr(35, **kw) == pytest.approx(0.2 + 0.6 * (2 + math.sqrt(2)) / 4, rel=1e-15)
    assert cosine_lr(110, **kw) == pytest.approx(0.2, rel=1e-15)           # the end
    assert cosine_lr(10_000, **kw) == pytest.approx(0.2, rel=1e-15)        # clamped after the end
    # no warm-up: step 1 is already one step into the decay (t = 1/4 of 4 steps)
    assert cosine_lr(1, 1.0, 0, 4) == pytest.approx((1 + math.sqrt(2) / 2) / 2, rel=1e-15)


def test_cosine_returns_the_callers_kind():
    steps = np.arange(1, 31).reshape(5, 6)
    out = cosine_lr(steps, 1e-3, 5, 20, 1e-5)
    assert isinstance(out, np.ndarray) and out.shape == (5, 6) and out.dtype == np.float64
    t = cosine_lr(torch.tensor(steps, dtype=torch.int32), 1e-3, 5, 20, 1e-5)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64 and t.shape == (5, 6)
    np.testing.assert_allclose(t.numpy(), out, rtol=1e-15)
    assert type(cosine_lr(7, 1e-3, 5, 20)) is float
    assert type(cosine_lr(np.int32(7), 1e-3, 5, 20)) is float
    for s in range(1, 31):
        assert cosine_lr(s, 1e-3, 5, 20, 1e-5) == out.ravel()[s - 1]


@settings(max_examples=40, deadline=None)
@given(warmup=st.integers(0, 300), extra=st.integers(1, 3000), peak=st.floats(1e-5, 1.0),
       floor=st.floats(0.0, 1.0))
def test_cosine_rises_then_falls_between_its_bounds(warmup, extra, peak, floor):
    total, low = warmup + extra, floor * peak
    lr = cosine_lr(np.arange(1, total + 50), peak, warmup, total, low)
    rising, falling = lr[:warmup], lr[warmup:]
    assert np.all(rising > 0) and np.all(lr <= peak * (1 + 1e-15))
    assert np.all(falling >= low * (1 - 1e-12))
    assert np.all(np.diff(rising) > 0)
    assert np.all(np.diff(falling) <= 1e-15 * peak)
    assert lr[total - 1] == pytest.approx(low, rel=1e-12, abs=1e-18)
    if warmup:
        assert lr[warmup - 1] == pytest.approx(peak, rel=1e-15)


@pytest.mark.parametrize("peak, warmup, total, low", [(3e-3, 10, 100, 3e-4), (1.0, 2, 7, 0.0),
                                                        (6e-4, 400, 5000, 6e-5)])
def test_cosine_equals_torch_linear_then_cosine_annealing(peak, warmup, total, low):
    # training step s (from 1) uses the rate the scheduler holds after s - 1 calls of step()
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=peak)
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / warmup, end_factor=1.0,
                                             total_iters=warmup - 1)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=low)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, decay], milestones=[warmup - 1])
    used = []
    for _ in range(total):
        used.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(cosine_lr(np.arange(1, total + 1), peak, warmup, total, low), used,
                               rtol=1e-11, atol=1e-18)


@pytest.mark.parametrize("call, error, words", [
    (lambda: cosine_lr(0, 1e-3, 10, 100), ValueError, "step must be >= 1"),
    (lambda: cosine_lr(np.array([3, -1]), 1e-3, 10, 100), ValueError, "got -1"),
    (lambda: cosine_lr(torch.tensor([0]), 1e-3, 10, 100), ValueError, "got 0"),
    (lambda: cosine_lr(2.5, 1e-3, 10, 100), TypeError, "step must be an integer"),
    (lambda: cosine_lr(torch.arange(1.0, 4.0), 1e-3, 10, 100), TypeError, "torch.float32"),
    (lambda: cosine_lr(False, 1e-3, 10, 100), TypeError, "bool"),
    (lambda: cosine_lr(torch.tensor(True), 1e-3, 10, 100), TypeError, "torch.bool"),
    (lambda: cosine_lr(1, 1e-3, 100, 100), ValueError, "total_steps must be > warmup_steps"),
    (lambda: cosine_lr(1, 1e-3, -1, 100), ValueError, "warmup_steps must be an integer >= 0, got -1"),
    (lambda: cosine_lr(1, 1e-3, 10.0, 100), ValueError, "warmup_steps must be"),
    (lambda: cosine_lr(1, 1e-3, 10, 0), ValueError, "total_steps must be a positive integer"),
    (lambda: cosine_lr(1, -1e-3, 10, 100), ValueError, "peak_lr must be a finite number >= 0"),
    (lambda: cosine_lr(1, float("nan"), 10, 100), ValueError, "peak_lr"),
    (lambda: cosine_lr(1, 1e-3, 10, 100, min_lr=2e-3), ValueError, "min_lr must be a finite number >= 0.0 and <= 0.001"),
    (lambda: cosine_lr(1, "1e-3", 10, 100), ValueError, "peak_lr"),
])
def test_cosine_refuses_bad_input_by_name(call, error, words):
    with pytest.raises(error, match="cosine_lr: ") as info:
        call()
    assert words in str(info.value)
