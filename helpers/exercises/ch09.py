"""Checks for the exercises of chapter 9, "Optimization".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong (naming a common slip where one explains
the answer), or prints a confirmation. Reference values are computed here from the
formulas, independently of :mod:`helpers`.
"""
from __future__ import annotations

import math

from ._common import as_float, not_attempted

# Exercise 1: the paper's Adam betas; the first step without bias correction, in units of lr.
EXERCISE_1_BETAS = (0.9, 0.98)
# Exercise 2: the peak of the schedule for this model.
EXERCISE_2_D_MODEL = 256
EXERCISE_2_WARMUP = 2000
# Exercise 3: a lambda for torch's LambdaLR that reproduces the schedule.
EXERCISE_3_D_MODEL = 512
EXERCISE_3_WARMUP = 4000
# Exercise 4: the variance of Adam's v_hat_t for i.i.d. N(0, 1) gradients.
EXERCISE_4_BETA2 = 0.98
EXERCISE_4_STEP = 300
# Exercise 5 (derivation): the same variance in closed form, as a function of beta2 and t.


def _noam(step: int, d_model: int, warmup: int) -> float:
    return d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)


def check_exercise_1(answer) -> None:
    """|first update| / lr without bias correction: (1 - beta1) / sqrt(1 - beta2)."""
    if not_attempted(1, answer):
        return
    value = as_float(1, answer)
    beta1, beta2 = EXERCISE_1_BETAS
    expected = (1 - beta1) / math.sqrt(1 - beta2)
    if math.isclose(value, 1.0, rel_tol=1e-9):
        raise AssertionError("Exercise 1: 1 is the size *with* bias correction (m_hat = g, "
                             "v_hat = g^2). Without it, m_1 = (1 - beta1) g and v_1 = (1 - beta2) g^2.")
    if math.isclose(value, (1 - beta1) / (1 - beta2), rel_tol=1e-9):
        raise AssertionError("Exercise 1: the update divides by sqrt(v_1), not by v_1.")
    assert math.isclose(value, expected, rel_tol=1e-9), (
        f"Exercise 1: got {value!r}. The update is lr m_1 / sqrt(v_1) (eps aside); "
        "write m_1 and v_1 in terms of g and divide.")
    print("Exercise 1: correct.")


def check_exercise_2(answer) -> None:
    """(peak step, peak learning rate) of the schedule for EXERCISE_2_D_MODEL, EXERCISE_2_WARMUP."""
    if not_attempted(2, answer):
        return
    try:
        step, rate = answer
    except (TypeError, ValueError):
        raise TypeError("Exercise 2: answer should be a pair (step, learning_rate)") from None
    d, w = EXERCISE_2_D_MODEL, EXERCISE_2_WARMUP
    best = max(range(1, 5 * w), key=lambda s: _noam(s, d, w))
    assert int(step) == best, (f"Exercise 2: the peak is not at step {step}. The rising branch "
                               "step w^-1.5 meets the falling branch step^-0.5 where step = w.")
    assert math.isclose(float(rate), _noam(best, d, w), rel_tol=1e-9), (
        f"Exercise 2: the step is right, but the rate {rate!r} is not; put step = warmup into either "
        "branch: d_model^-0.5 warmup^-0.5.")
    print("Exercise 2: correct.")


def check_exercise_3(answer) -> None:
    """A function epoch -> factor that makes LambdaLR (base lr 1) follow the schedule."""
    if not_attempted(3, answer):
        return
    import torch

    if not callable(answer):
        raise TypeError(f"Exercise 3: expected a function of the epoch index, got {type(answer).__name__}")
    try:
        answer(0)
    except (ZeroDivisionError, ValueError) as err:
        raise AssertionError("Exercise 3: your function fails at epoch 0 "
                             f"({type(err).__name__}: {err}). LambdaLR calls it with 0 first, for "
                             "the first training step; steps count from 1, so use epoch + 1.") from None
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, answer)
    d, w = EXERCISE_3_D_MODEL, EXERCISE_3_WARMUP
    for step in range(1, 6_001):
        used = opt.param_groups[0]["lr"]            # the rate of training step `step`
        expected = _noam(step, d, w)
        if step < 3 and math.isclose(used, _noam(step + 1, d, w), rel_tol=1e-9):
            raise AssertionError("Exercise 3: your rates are one step ahead: the first training step "
                                 "should use noam_lr(1), i.e. your function must map 0 to step 1.")
        assert math.isclose(used, expected, rel_tol=1e-9), (
            f"Exercise 3: training step {step} used lr {used!r}, the schedule says {expected!r}.")
        opt.step()
        scheduler.step()
    print("Exercise 3: correct.")


def check_exercise_4(answer) -> None:
    """Var(v_hat_t) for g_s i.i.d. N(0, 1): 2 sum_s w_s^2, w_s = (1-b2) b2^(t-s) / (1-b2^t)."""
    if not_attempted(4, answer):
        return
    value = as_float(4, answer)
    b2, t = EXERCISE_4_BETA2, EXERCISE_4_STEP
    weights = [(1 - b2) * b2 ** (t - s) / (1 - b2 ** t) for s in range(1, t + 1)]
    expected = 2 * sum(w * w for w in weights)
    assert not math.isclose(value, 2 / t, rel_tol=1e-9), (
        "Exercise 4: 2/t is the variance of a plain average of t squares; the exponential "
        "weights are far from equal here (the recent steps dominate), which makes it larger.")
    assert math.isclose(value, expected, rel_tol=1e-9), (
        f"Exercise 4: got {value!r}. v_hat_t = sum_s w_s g_s^2 with the weights in the hint, and "
        "Var(g^2) = 2 for a standard normal g; the terms are independent.")
    print("Exercise 4: correct.")


def _variance_from_weights(beta2: float, t: int) -> float:
    """Var(v_hat_t) for i.i.d. N(0, 1) gradients: 2 sum_s w_s^2, summed term by term."""
    norm = 1 - beta2 ** t
    return 2 * math.fsum(((1 - beta2) * beta2 ** (t - s) / norm) ** 2 for s in range(1, t + 1))


def check_exercise_5(answer) -> None:
    """A function variance(beta2, t) -> Var(v_hat_t) for i.i.d. N(0, 1) gradients, in closed form.

    Tested on random beta2 in [0.5, 0.9999) and t in 1..5000 against the sum over the weights,
    and, by Monte Carlo, against v_hat from helpers.optim.adam_step on NumPy and on torch.
    """
    if not_attempted(5, answer):
        return
    import numpy as np
    import torch

    from ..optim import adam_step

    if not callable(answer):
        raise TypeError(f"Exercise 5: expected a function variance(beta2, t), got {type(answer).__name__}")
    rng = np.random.default_rng(5)
    cases = [(0.98, 1), (0.98, 300), (0.999, 10), (0.9, 5000)]
    cases += [(float(b), int(t)) for b, t in zip(rng.uniform(0.5, 0.9999, size=12), rng.integers(1, 5001, size=12))]
    for beta2, t in cases:
        expected = _variance_from_weights(beta2, t)
        got = as_float(5, answer(beta2, t))
        if math.isclose(got, 2 / t, rel_tol=1e-9) and not math.isclose(expected, 2 / t, rel_tol=1e-9):
            raise AssertionError("Exercise 5: 2/t is the variance of a plain average of t squares; "
                                 "v_hat's weights w_s are not equal.")
        if math.isclose(got, 2 * (1 - beta2) / (1 + beta2), rel_tol=1e-9) and not math.isclose(
                expected, got, rel_tol=1e-9):
            raise AssertionError("Exercise 5: that is the limit for large t; the sum has t terms, "
                                 "and the bias correction 1/(1 - beta2^t) is still there at finite t.")
        uncorrected = expected * (1 - beta2 ** t) ** 2
        if math.isclose(got, uncorrected, rel_tol=1e-9) and not math.isclose(expected, got, rel_tol=1e-9):
            raise AssertionError("Exercise 5: that is the variance of v_t; v_hat_t = v_t / (1 - beta2^t), "
                                 "so its variance has a factor 1 / (1 - beta2^t)^2.")
        if math.isclose(got, math.sqrt(expected), rel_tol=1e-9):
            raise AssertionError("Exercise 5: that is the standard deviation; the variance is its square.")
        assert math.isclose(got, expected, rel_tol=1e-9), (
            f"Exercise 5: for beta2 = {beta2!r}, t = {t} your function gives {got!r}, but the sum "
            "2 sum_s w_s^2 gives something else. Write w_s^2 as a constant times (beta2^2)^(t - s) "
            "and sum the geometric series.")
    # Monte Carlo with the optimiser itself: v / (1 - beta2^t) after t steps of adam_step,
    # 40000 independent coordinates, the same random numbers on both backends
    beta2, t, runs = 0.9, 20, 40_000
    grads = rng.normal(size=(t, runs))
    for wrap in (np.asarray, torch.tensor):
        param, m, v = (wrap(np.zeros(runs)) for _ in range(3))
        for step in range(1, t + 1):
            param, m, v = adam_step(param, wrap(grads[step - 1]), m, v, step, lr=0.0, beta2=beta2)
        v_hat = np.asarray(v) / (1 - beta2 ** t)
        sampled = float(np.var(v_hat))
        assert abs(sampled / as_float(5, answer(beta2, t)) - 1) < 0.1, (
            f"Exercise 5: a simulation with adam_step gives Var(v_hat_{t}) near {sampled:.3f} for "
            f"beta2 = {beta2}, far from your function's value.")
    print("Exercise 5: correct.")
