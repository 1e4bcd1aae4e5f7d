import numpy as np
import pytest
import torch


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def both(a):
    """A float64 NumPy array and the equal torch tensor."""
    a = np.asarray(a, dtype=np.float64)
    return a, torch.tensor(a)
