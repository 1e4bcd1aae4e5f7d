"""The warm-up / inverse-square-root learning-rate schedule (seed 000 §5; the paper's §5.3).

    lr(step) = d_model^-0.5 * min(step^-0.5, step * warmup_steps^-1.5),   step = 1, 2, ...

It rises linearly for warmup_steps steps, peaks at step = warmup_steps with value
(d_model * warmup_steps)^-0.5, then decays as step^-0.5. Steps count from 1: seed 000's
formula divides by zero at step 0.
"""
from __future__ import annotations

import numpy as np


def noam_lr(step, d_model, warmup_steps):
    """Learning rate at ``step`` (an int, or a NumPy array of ints, each >= 1).

    Formula: d_model^-0.5 * min(step^-0.5, step * warmup_steps^-1.5).
    Returns a float for an int step, a float64 array for an array of steps.
    Source: seed 000 §5 (with d = d_model).
    """
    func = "noam_lr"
    for name, value in (("d_model", d_model), ("warmup_steps", warmup_steps)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{func}: {name} must be a positive integer, got {value!r}")
    steps = np.asarray(step)
    if not np.issubdtype(steps.dtype, np.integer):
        raise TypeError(f"{func}: step must be an integer or an array of integers, got {step!r}")
    if steps.size and steps.min() < 1:
        raise ValueError(f"{func}: step must be >= 1 (steps count from 1; step 0 would divide "
                         f"by zero), got {int(steps.min())}")
    s = steps.astype(np.float64)
    lr = d_model ** -0.5 * np.minimum(s ** -0.5, s * warmup_steps ** -1.5)
    return float(lr) if steps.ndim == 0 else lr
