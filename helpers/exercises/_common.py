"""What every chapter's exercise checks share: the "not attempted" reply and number parsing."""
from __future__ import annotations


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
