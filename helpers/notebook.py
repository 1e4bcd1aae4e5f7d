"""One call at the top of every chapter so that its printed outputs are reproducible."""
from __future__ import annotations

import random

import numpy as np

SEED = 0


def setup_chapter(seed: int = SEED) -> None:
    """Seed every random generator and fix print precision for NumPy and torch.

    nbval compares each cell's printed output with the stored one, so every chapter
    starts from the same seeds and prints 4 decimals. ``seed`` must be an integer from 0 to
    2**32 - 1 (what NumPy's legacy generator accepts); anything else is a ValueError.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 32:
        raise ValueError(f"setup_chapter: seed must be an integer from 0 to 2**32 - 1, "
                         f"got {type(seed).__name__} {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    np.set_printoptions(precision=4, suppress=True)
    try:
        import torch
    except ImportError:  # the NumPy half of the course still works without torch
        return
    torch.manual_seed(seed)
    torch.set_printoptions(precision=4, sci_mode=False)
