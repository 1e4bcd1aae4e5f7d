import numpy as np
import pytest
import torch


@pytest.fixture
def one_thread():
    """One torch thread for the test: chapter 13's models are tiny, so one thread is faster than
    two (which spin against each other on a busy machine), and the sums come out the same on
    every run."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def both(a):
    """A float64 NumPy array and the equal torch tensor."""
    a = np.asarray(a, dtype=np.float64)
    return a, torch.tensor(a)
