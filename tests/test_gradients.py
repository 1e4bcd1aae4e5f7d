"""torch.autograd.gradcheck in float64 through every differentiable helpers function."""
import torch
from torch.autograd import gradcheck

import helpers as h


def leaf(*shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()


def test_attention():
    mask = h.causal_mask(4, backend="torch")
    assert gradcheck(lambda q, k, v: h.scaled_dot_product_attention(q, k, v, mask=mask)[0],
                     (leaf(2, 4, 3, seed=0), leaf(2, 4, 3, seed=1), leaf(2, 4, 2, seed=2)))


def test_multi_head_attention():
    args = (leaf(2, 3, 4, seed=3), leaf(2, 5, 4, seed=4), leaf(4, 4, seed=5), leaf(4, 4, seed=6),
            leaf(4, 4, seed=7), leaf(4, 4, seed=8))
    assert gradcheck(lambda *a: h.multi_head_attention(*a, num_heads=2)[0], args)


def test_layer_norm():
    assert gradcheck(h.layer_norm, (leaf(3, 5, seed=9), leaf(5, seed=10), leaf(5, seed=11)))


def test_feed_forward():
    assert gradcheck(h.feed_forward, (leaf(3, 4, seed=12), leaf(4, 8, seed=13), leaf(8, seed=14),
                                      leaf(8, 4, seed=15), leaf(4, seed=16)))


def test_cross_entropy():
    targets = torch.tensor([[1, 0, 4], [2, 2, 3]])
    assert gradcheck(lambda z: h.cross_entropy(z, targets), (leaf(2, 3, 5, seed=17),))
    assert gradcheck(lambda z: h.cross_entropy(z, targets, label_smoothing=0.1), (leaf(2, 3, 5, seed=18),))


def test_cross_entropy_gradient_is_softmax_minus_onehot():
    z = leaf(6, 5, seed=19)
    targets = torch.tensor([0, 1, 2, 3, 4, 0])
    h.cross_entropy(z, targets).backward()
    expected = (torch.softmax(z.detach(), -1) - torch.nn.functional.one_hot(targets, 5)) / 6
    torch.testing.assert_close(z.grad, expected, rtol=1e-12, atol=1e-12)
