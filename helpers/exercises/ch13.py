"""Checks for the exercises of chapter 13, "Beyond text".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong (naming a common slip where one explains
the answer), or prints "Exercise N: correct." and nothing else, so that a stored solution
gives no number away. The references are computed here from the formulas, with PyTorch's
own functions (F.conv2d, autograd), and for the two derivations also with :mod:`helpers` on
both backends.
"""
from __future__ import annotations

import numpy as np

from ._common import as_array, not_attempted

# Exercise 1 and 2: ViT-B/16 on ImageNet-sized images (the ViT paper's base model).
EXERCISE_1 = dict(image_size=224, channels=3, patch_size=16)
EXERCISE_2 = dict(image_size=224, channels=3, patch_size=16, d_model=768)
# Exercise 5: a context of a few sentences and a cap on the answer length.
EXERCISE_5 = dict(n=120, max_length=15)


def _correct(n: int) -> None:
    print(f"Exercise {n}: correct.")


def _as_whole(n: int, answer) -> int:
    if isinstance(answer, bool):
        raise TypeError(f"Exercise {n}: expected a whole number, got a bool")
    try:
        value = int(answer)
    except (TypeError, ValueError):
        raise TypeError(f"Exercise {n}: expected a whole number, got {type(answer).__name__}") from None
    if value != answer:
        raise AssertionError(f"Exercise {n}: expected a whole number, got {answer!r}")
    return value


# ---------------------------------------------------------------- 1. patches of ViT-B/16

def check_exercise_1(answer) -> None:
    """(number of patches N, numbers per flattened patch) for EXERCISE_1."""
    if not_attempted(1, answer):
        return
    try:
        patches, width = answer
    except (TypeError, ValueError):
        raise TypeError("Exercise 1: answer with a pair (number of patches, numbers per patch)") from None
    patches, width = _as_whole(1, patches), _as_whole(1, width)
    c = EXERCISE_1
    side = c["image_size"] // c["patch_size"]
    expected = (side * side, c["patch_size"] ** 2 * c["channels"])
    if patches == side:
        raise AssertionError("Exercise 1: that is the number of patches along one side; the image is "
                             "a square grid of them.")
    if patches == side * side + 1:
        raise AssertionError("Exercise 1: that counts the [CLS] token too; the question asks for the "
                             "patches only.")
    if width == c["patch_size"] ** 2:
        raise AssertionError("Exercise 1: each pixel of an RGB image holds three numbers; a flattened "
                             "patch holds all of them.")
    assert (patches, width) == expected, ("Exercise 1: not right. N = (H/p)(W/p) patches, each "
                                          "flattened into p*p*C numbers.")
    _correct(1)


# ---------------------------------------------------------------- 2. the input stage's parameters

def check_exercise_2(answer) -> None:
    """Parameters of ViT-B/16's input stage: W_E and b_E, the [CLS] vector, learned positions."""
    if not_attempted(2, answer):
        return
    value = _as_whole(2, answer)
    c = EXERCISE_2
    n_patches = (c["image_size"] // c["patch_size"]) ** 2
    patch_dim = c["patch_size"] ** 2 * c["channels"]
    d = c["d_model"]
    embedding = patch_dim * d + d
    expected = embedding + d + (n_patches + 1) * d
    if value == expected - d:
        raise AssertionError("Exercise 2: one vector of d_model short: the bias b_E, the [CLS] vector "
                             "or the [CLS] token's own position (there are N + 1 positions).")
    if value == embedding:
        raise AssertionError("Exercise 2: that is the patch embedding alone; add the [CLS] vector and "
                             "the learned positions.")
    if value == expected - patch_dim * d + c["patch_size"] ** 2 * d:
        raise AssertionError("Exercise 2: W_E has one row per number of a flattened patch, p*p*C, "
                             "channels included.")
    assert value == expected, ("Exercise 2: not right. Count W_E (p*p*C, d_model), b_E (d_model), "
                               "the [CLS] vector (d_model) and one position per token, N + 1 of them.")
    _correct(2)


# ---------------------------------------------------------------- 3. the convolution as a matrix (derivation)

def _patches_by_loops(x, p):
    """patchify by index arithmetic, for the check: (B, C, H, W) -> (B, N, p*p*C)."""
    B, C, H, W = x.shape
    cols = W // p
    out = np.empty((B, (H // p) * cols, p * p * C))
    for k in range(out.shape[1]):
        r, c = divmod(k, cols)
        for i in range(p):
            for j in range(p):
                for ch in range(C):
                    out[:, k, (i * p + j) * C + ch] = x[:, ch, r * p + i, c * p + j]
    return out


def check_exercise_3(conv_to_matrix) -> None:
    """conv_to_matrix(weight (d_out, C, p, p)) -> W_E (p*p*C, d_out) with
    patchify(x) @ W_E = Conv2d(kernel = stride = p)(x), flattened to (B, N, d_out)."""
    if not_attempted(3, conv_to_matrix):
        return
    if not callable(conv_to_matrix):
        raise TypeError("Exercise 3: pass your function conv_to_matrix itself (without calling it)")
    import torch
    import torch.nn.functional as F

    from ..vision import patch_embedding, patchify

    rng = np.random.default_rng(13)
    for C, p, d_out, side in ((1, 2, 5, 8), (3, 2, 4, 6), (3, 4, 7, 8), (2, 3, 6, 9)):
        weight = rng.normal(size=(d_out, C, p, p))
        x = rng.normal(size=(2, C, side, side))
        try:
            w = conv_to_matrix(weight.copy())
        except Exception as error:  # the learner's code: report whatever it raised
            raise TypeError(f"Exercise 3: calling conv_to_matrix on a weight of shape {weight.shape} failed "
                            f"with {type(error).__name__}: {error}") from None
        w = as_array(3, w, (p * p * C, d_out), f"W_E for a weight of shape {weight.shape}")
        conv = F.conv2d(torch.tensor(x), torch.tensor(weight), stride=p)           # (B, d_out, H/p, W/p)
        reference = conv.flatten(2).transpose(1, 2).numpy()                        # (B, N, d_out)
        patches = _patches_by_loops(x, p)
        np.testing.assert_allclose(patchify(x, p), patches, rtol=0, atol=0)
        np.testing.assert_allclose(patches @ w, patch_embedding(x, w, None, p), rtol=1e-12, atol=1e-12)
        by_torch = patch_embedding(torch.tensor(x), torch.tensor(w), None, p).numpy()
        np.testing.assert_allclose(by_torch, patches @ w, rtol=1e-12, atol=1e-12)
        got = patches @ w
        if C > 1 and np.allclose(got, patches @ weight.reshape(d_out, -1).T, atol=0) \
                and not np.allclose(got, reference, rtol=1e-9, atol=1e-9):
            raise AssertionError("Exercise 3: weight.reshape(d_out, -1).T orders a patch's numbers "
                                 "channel first (ch, i, j); patchify orders them pixel first, then "
                                 "channel: row (i p + j) C + ch. Move the channel axis last before "
                                 "flattening.")
        if np.allclose(got, patches @ weight.transpose(3, 2, 1, 0).reshape(-1, d_out), rtol=1e-9) \
                and not np.allclose(got, reference, rtol=1e-9, atol=1e-9):
            raise AssertionError("Exercise 3: you swapped i and j (the patch's row and column): "
                                 "row (i p + j) C + ch of W_E holds weight[:, ch, i, j].")
        assert np.allclose(got, reference, rtol=1e-9, atol=1e-9), (
            f"Exercise 3: patchify(x) @ W_E differs from the convolution for C = {C}, p = {p}, "
            f"d_out = {d_out}. Output o of the convolution at patch k is sum over ch, i, j of "
            "weight[o, ch, i, j] x[ch, r p + i, c p + j]; match each term with an entry of the "
            "flattened patch.")
    _correct(3)


# ---------------------------------------------------------------- 4. the gradient of the contrastive loss (derivation)

def _reference_gradient(logits):
    """dL/dS by autograd through helpers (torch) and by central differences through helpers (NumPy)."""
    import torch

    from ..contrastive import symmetric_cross_entropy

    s = torch.tensor(logits, requires_grad=True)
    symmetric_cross_entropy(s).backward()
    by_autograd = s.grad.numpy()
    h = 1e-6
    by_differences = np.empty_like(logits)
    for idx in np.ndindex(*logits.shape):
        up, down = logits.copy(), logits.copy()
        up[idx] += h
        down[idx] -= h
        by_differences[idx] = (symmetric_cross_entropy(up) - symmetric_cross_entropy(down)) / (2 * h)
    np.testing.assert_allclose(by_differences, by_autograd, rtol=1e-5, atol=1e-8)
    return by_autograd


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def check_exercise_4(contrastive_grad) -> None:
    """contrastive_grad(S (N, N)) = dL/dS for L = (CE(S, diag) + CE(S^T, diag)) / 2."""
    if not_attempted(4, contrastive_grad):
        return
    if not callable(contrastive_grad):
        raise TypeError("Exercise 4: pass your function contrastive_grad itself (without calling it)")
    rng = np.random.default_rng(4)
    for n, scale in ((2, 1.0), (4, 3.0), (7, 10.0), (10, 0.5)):
        logits = rng.normal(size=(n, n)) * scale
        try:
            got = contrastive_grad(logits.copy())
        except Exception as error:  # the learner's code: report whatever it raised
            raise TypeError(f"Exercise 4: calling contrastive_grad on a ({n}, {n}) matrix failed with "
                            f"{type(error).__name__}: {error}") from None
        got = as_array(4, got, (n, n), f"dL/dS for N = {n}")
        expected = _reference_gradient(logits)
        eye = np.eye(n)
        rows = (_softmax(logits, 1) - eye) / n
        cols = (_softmax(logits, 0) - eye) / n
        close = lambda a: np.allclose(got, a, rtol=1e-7, atol=1e-10)
        if close(rows + cols) and not close(expected):
            raise AssertionError("Exercise 4: twice the gradient: the loss is the *mean* of the two "
                                 "cross-entropies, (CE_rows + CE_columns) / 2.")
        if (close(rows / 2) or close(rows)) and not close(expected):
            raise AssertionError("Exercise 4: that is the image-to-text half only; S[i, j] also appears "
                                 "in column j's cross-entropy (text to image).")
        if close((_softmax(logits, 1) - eye) / (2 * n) + (_softmax(logits, 1).T - eye) / (2 * n)) \
                and not close(expected):
            raise AssertionError("Exercise 4: the column term is softmax over each column of S (over i "
                                 "for fixed j), not the transpose of the row softmax.")
        assert close(expected), (f"Exercise 4: not dL/dS for N = {n}. Differentiate each cross-entropy "
                                 "as in chapter 8 (softmax minus one-hot, divided by the number of "
                                 "terms averaged), once along rows and once along columns.")
    _correct(4)


# ---------------------------------------------------------------- 5. candidate spans

def check_exercise_5(answer) -> None:
    """The number of spans (i, j), 0 <= i <= j < n, j - i + 1 <= max_length."""
    if not_attempted(5, answer):
        return
    value = _as_whole(5, answer)
    n, L = EXERCISE_5["n"], EXERCISE_5["max_length"]
    expected = sum(min(L, n - i) for i in range(n))                    # spans starting at i
    if value == n * (n + 1) // 2:
        raise AssertionError("Exercise 5: that is every span i <= j; the answer length is limited to "
                             "max_length tokens.")
    if value == n * L:
        raise AssertionError("Exercise 5: not every start has max_length ends: near the end of the "
                             "context a span runs out of tokens.")
    assert value == expected, ("Exercise 5: not right. Count, for each start i, the ends j with "
                               "i <= j <= min(i + max_length - 1, n - 1).")
    _correct(5)
