"""What every chapter's exercise checks share: the "not attempted" and "correct" replies and
number parsing."""
from __future__ import annotations

import numpy as np


def not_attempted(n: int, answer) -> bool:
    """True (after saying so) when the learner has not replaced ``None`` with an answer yet."""
    if answer is None:
        print(f"Exercise {n}: not attempted yet (replace None with your answer and run the cell again).")
        return True
    return False


def as_float(n: int, answer) -> float:
    """The answer as a float, or a TypeError that says a number was expected."""
    try:
        return float(answer)
    except (TypeError, ValueError):
        raise TypeError(f"Exercise {n}: expected a number, got {type(answer).__name__}") from None


def as_array(n: int, answer, shape: tuple, name: str = "your answer") -> np.ndarray:
    """The answer (NumPy, torch or nested lists) as a float64 array of ``shape``: a TypeError
    if it is not numbers, an AssertionError naming ``name`` if its shape is wrong."""
    try:
        a = np.asarray(answer.detach().cpu().numpy() if hasattr(answer, "detach") else answer,
                       dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"Exercise {n}: {name} should be an array of numbers, "
                        f"got {type(answer).__name__}") from None
    assert a.shape == tuple(shape), f"Exercise {n}: {name} should have shape {tuple(shape)}, got {a.shape}"
    return a


def correct(n: int) -> None:
    """The only thing a check prints on success: no number but the exercise's, so that a
    stored solution gives nothing away."""
    print(f"Exercise {n}: correct.")


def as_whole(n: int, answer) -> int:
    """The answer as an int: a TypeError for something that is not a number (or is a bool),
    an AssertionError for a number that is not whole (2.5)."""
    if isinstance(answer, bool):
        raise TypeError(f"Exercise {n}: expected a whole number, got a bool")
    try:
        value = int(answer)
    except (TypeError, ValueError, OverflowError):
        raise TypeError(f"Exercise {n}: expected a whole number, got {type(answer).__name__}") from None
    if value != answer:
        raise AssertionError(f"Exercise {n}: expected a whole number, got {answer!r}")
    return value
