"""One call at the top of every chapter so that its printed outputs are reproducible."""
from __future__ import annotations

import random

import numpy as np

SEED = 0


def setup_chapter(seed: int = SEED) -> None:
    """Seed every random generator and fix print precision for NumPy and torch.

    nbval compares each cell's printed output with the stored one, so every chapter
    starts from the same seeds and prints 4 decimals.
    """
    random.seed(seed)
    np.random.seed(seed)
    np.set_printoptions(precision=4, suppress=True)
    try:
        import torch
    except ImportError:  # the NumPy half of the course still works without torch
        return
    torch.manual_seed(seed)
    torch.set_printoptions(precision=4, sci_mode=False)
