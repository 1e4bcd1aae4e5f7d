"""Learning-rate schedules: the paper's warm-up / inverse-square-root schedule and linear
warm-up followed by cosine decay. Both derived in chapter 9.

    noam_lr(step)   = d_model^-0.5 * min(step^-0.5, step * warmup_steps^-1.5)
    cosine_lr(step) = peak * step / warmup                          for step <= warmup
                      min_lr + (peak - min_lr) (1 + cos(pi t)) / 2  after, t = (step - warmup) / (total - warmup)
                                                                     clamped to [0, 1]

Steps count from 1 (the first optimizer step is step 1; the paper's formula divides by
zero at step 0). Each function takes a Python int (and returns a float), a NumPy array of
integers (and returns a float64 array of that shape) or a torch tensor of integers (and
returns a float64 tensor of that shape on the same device).
"""
from __future__ import annotations

import math

import numpy as np
from array_api_compat import is_torch_array


def _steps(func: str, step):
    """``step`` as a float64 array of the caller's kind, and how to hand the result back.

    Returns ``(xp, s, finish)``: the array namespace, the steps as float64 in that library,
    and a function that turns a float64 result into what the caller passed (a float for a
    Python or NumPy scalar, else the array or tensor itself).
    """
    if is_torch_array(step):
        import array_api_compat.torch as xp
        import torch

        if step.dtype == torch.bool or step.is_floating_point() or step.is_complex():
            raise TypeError(f"{func}: step must be an integer or an array or tensor of integers, "
                            f"got a tensor of dtype {step.dtype}")
        low = int(step.min()) if step.numel() else 1
        values = xp.astype(step, xp.float64)
        finish = lambda lr: lr  # noqa: E731  (a tensor, on step's device)
    else:
        import array_api_compat.numpy as xp

        if isinstance(step, (bool, np.bool_)):
            raise TypeError(f"{func}: step must be an integer or an array or tensor of integers, "
                            f"got the bool {step!r}")
        steps = np.asarray(step)
        if not np.issubdtype(steps.dtype, np.integer):
            raise TypeError(f"{func}: step must be an integer or an array or tensor of integers, "
                            f"got {step!r} (dtype {steps.dtype})")
        low = int(steps.min()) if steps.size else 1
        values = steps.astype(np.float64)
        finish = (lambda lr: float(lr)) if steps.ndim == 0 else (lambda lr: lr)  # noqa: E731
    if low < 1:
        raise ValueError(f"{func}: step must be >= 1 (steps count from 1; the first optimizer step "
                         f"is step 1), got {low}")
    return xp, values, finish


def _require_int(func: str, name: str, value, low: int) -> None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
        kind = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ValueError(f"{func}: {name} must be {kind}, got {value!r}")


def _require_number(func: str, name: str, value, low: float, high: float | None = None) -> None:
    ok = (isinstance(value, (int, float, np.integer, np.floating))
          and not isinstance(value, (bool, np.bool_)) and math.isfinite(value) and value >= low
          and (high is None or value <= high))
    if not ok:
        bound = f">= {low}" + ("" if high is None else f" and <= {high}")
        raise ValueError(f"{func}: {name} must be a finite number {bound}, got {value!r}")


def noam_lr(step, d_model, warmup_steps):
    """The warm-up / inverse-square-root schedule of the paper (its §5.3). Derived in chapter 9.

    Formula: d_model^-0.5 * min(step^-0.5, step * warmup_steps^-1.5), step = 1, 2, ...
    It rises linearly for warmup_steps steps, peaks at step = warmup_steps with value
    (d_model * warmup_steps)^-0.5, then decays as step^-0.5.

    step: a Python int, a NumPy array of integers or a torch integer tensor, each >= 1.
    Returns a float for a scalar step, else a float64 array (NumPy) or float64 tensor on
    step's device (torch) of step's shape.
    """
    func = "noam_lr"
    for name, value in (("d_model", d_model), ("warmup_steps", warmup_steps)):
        _require_int(func, name, value, 1)
    xp, s, finish = _steps(func, step)
    return finish(d_model ** -0.5 * xp.minimum(s ** -0.5, s * warmup_steps ** -1.5))


def cosine_lr(step, peak_lr, warmup_steps, total_steps, min_lr=0.0):
    """Linear warm-up, then cosine decay from ``peak_lr`` to ``min_lr``. Derived in chapter 9.

    Formula, at step = 1, 2, ...:
        peak_lr * step / warmup_steps                                 if step <= warmup_steps
        min_lr + (peak_lr - min_lr) * (1 + cos(pi t)) / 2             otherwise,
        t = (step - warmup_steps) / (total_steps - warmup_steps), clamped to [0, 1]
    so the rate is peak_lr at step = warmup_steps, (peak_lr + min_lr) / 2 half-way through the
    decay, min_lr at step = total_steps and after. warmup_steps = 0: no warm-up.

    step: a Python int, a NumPy array of integers or a torch integer tensor, each >= 1.
    Returns a float for a scalar step, else a float64 array (NumPy) or float64 tensor on
    step's device (torch) of step's shape.
    """
    func = "cosine_lr"
    _require_int(func, "warmup_steps", warmup_steps, 0)
    _require_int(func, "total_steps", total_steps, 1)
    if total_steps <= warmup_steps:
        raise ValueError(f"{func}: total_steps must be > warmup_steps (the decay needs at least one "
                         f"step), got total_steps={total_steps!r}, warmup_steps={warmup_steps!r}")
    _require_number(func, "peak_lr", peak_lr, 0.0)
    _require_number(func, "min_lr", min_lr, 0.0, float(peak_lr))
    xp, s, finish = _steps(func, step)
    t = xp.clip((s - warmup_steps) / (total_steps - warmup_steps), min=0.0, max=1.0)
    decay = min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + xp.cos(math.pi * t))
    warm = peak_lr * s / max(warmup_steps, 1)
    return finish(xp.where(s <= warmup_steps, warm, decay))
