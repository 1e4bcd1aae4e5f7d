"""The exercise checks of chapter 13 accept right answers and explain common wrong ones.

The right answers are worked out independently of the checks: from torch.nn.Conv2d's own
parameter count and weight layout (F.conv2d, unfold), torch.autograd through
F.cross_entropy, and by counting spans one by one."""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.exercises import ch13


def correct_only(capsys, n):
    out = capsys.readouterr().out
    assert out == f"Exercise {n}: correct.\n"
    assert not re.search(r"\d", out.replace(f"Exercise {n}", ""))


def test_none_means_not_attempted(capsys):
    for n in range(1, 6):
        getattr(ch13, f"check_exercise_{n}")(None)
        assert f"Exercise {n}: not attempted yet" in capsys.readouterr().out


def test_exercise_1_patches(capsys):
    c = ch13.EXERCISE_1
    x = torch.zeros(1, c["channels"], c["image_size"], c["image_size"])
    cols = F.unfold(x, kernel_size=c["patch_size"], stride=c["patch_size"])   # (1, p*p*C, N)
    right = (cols.shape[2], cols.shape[1])
    ch13.check_exercise_1(right)
    correct_only(capsys, 1)
    with pytest.raises(AssertionError, match="one side"):
        ch13.check_exercise_1((c["image_size"] // c["patch_size"], right[1]))
    with pytest.raises(AssertionError, match=r"\[CLS\]"):
        ch13.check_exercise_1((right[0] + 1, right[1]))
    with pytest.raises(AssertionError, match="three numbers"):
        ch13.check_exercise_1((right[0], c["patch_size"] ** 2))
    with pytest.raises(TypeError, match="pair"):
        ch13.check_exercise_1(196)


def test_exercise_2_input_stage(capsys):
    c = ch13.EXERCISE_2
    conv = torch.nn.Conv2d(c["channels"], c["d_model"], c["patch_size"], c["patch_size"])
    tokens = F.unfold(torch.zeros(1, c["channels"], c["image_size"], c["image_size"]),
                      c["patch_size"], stride=c["patch_size"]).shape[2] + 1
    right = sum(p.numel() for p in conv.parameters()) + c["d_model"] + tokens * c["d_model"]
    ch13.check_exercise_2(right)
    correct_only(capsys, 2)
    with pytest.raises(AssertionError, match="one vector of d_model short"):
        ch13.check_exercise_2(right - c["d_model"])
    with pytest.raises(AssertionError, match="patch embedding alone"):
        ch13.check_exercise_2(sum(p.numel() for p in conv.parameters()))
    with pytest.raises(AssertionError, match="channels included"):
        ch13.check_exercise_2(right - conv.weight.numel() + c["patch_size"] ** 2 * c["d_model"])
    with pytest.raises(AssertionError, match="whole number"):
        ch13.check_exercise_2(right + 0.5)


def conv_to_matrix_by_unfold(weight):
    """Reads W_E off torch itself: F.unfold orders a patch (ch, i, j); patchify orders it (i, j, ch)."""
    d_out, C, p, _ = weight.shape
    w = torch.tensor(weight).reshape(d_out, C, p * p)                    # unfold's (ch, i*p + j) rows
    return w.permute(2, 1, 0).reshape(p * p * C, d_out).numpy()


def test_exercise_3_conv_as_matrix(capsys):
    ch13.check_exercise_3(conv_to_matrix_by_unfold)
    correct_only(capsys, 3)
    with pytest.raises(AssertionError, match="channel first"):
        ch13.check_exercise_3(lambda w: w.reshape(w.shape[0], -1).T)
    with pytest.raises(AssertionError, match="swapped i and j"):
        ch13.check_exercise_3(lambda w: w.transpose(3, 2, 1, 0).reshape(-1, w.shape[0]))
    with pytest.raises(AssertionError, match="should have shape"):
        ch13.check_exercise_3(lambda w: w.reshape(w.shape[0], -1))
    with pytest.raises(TypeError, match="function"):
        ch13.check_exercise_3(np.zeros((4, 4)))


def gradient_by_autograd(logits):
    s = torch.tensor(logits, requires_grad=True)
    target = torch.arange(len(logits))
    ((F.cross_entropy(s, target) + F.cross_entropy(s.T, target)) / 2).backward()
    return s.grad.numpy()


def test_exercise_4_gradient_of_the_contrastive_loss(capsys):
    ch13.check_exercise_4(gradient_by_autograd)
    correct_only(capsys, 4)

    def softmax(x, axis):
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    with pytest.raises(AssertionError, match="twice"):
        ch13.check_exercise_4(lambda s: 2 * gradient_by_autograd(s))
    with pytest.raises(AssertionError, match="image-to-text half"):
        ch13.check_exercise_4(lambda s: (softmax(s, 1) - np.eye(len(s))) / len(s))
    with pytest.raises(AssertionError, match="not the transpose"):
        ch13.check_exercise_4(lambda s: ((softmax(s, 1) - np.eye(len(s))) + (softmax(s, 1).T - np.eye(len(s))))
                              / (2 * len(s)))
    with pytest.raises(AssertionError, match="not dL/dS"):
        ch13.check_exercise_4(lambda s: gradient_by_autograd(s) + 0.01)


def test_exercise_5_candidate_spans(capsys):
    n, L = ch13.EXERCISE_5["n"], ch13.EXERCISE_5["max_length"]
    right = sum(1 for i in range(n) for j in range(n) if i <= j and j - i + 1 <= L)
    ch13.check_exercise_5(right)
    correct_only(capsys, 5)
    with pytest.raises(AssertionError, match="limited"):
        ch13.check_exercise_5(n * (n + 1) // 2)
    with pytest.raises(AssertionError, match="runs out"):
        ch13.check_exercise_5(n * L)
    with pytest.raises(AssertionError, match="not right"):
        ch13.check_exercise_5(right + 1)
