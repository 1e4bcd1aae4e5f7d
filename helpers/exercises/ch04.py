"""Checks for the exercises of chapter 4, "Multi-head attention".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong (naming the common slip where one
explains the answer), or prints a confirmation. Reference values come from the formulas
in plain Python/NumPy, or (exercise 4) from ``torch.nn.MultiheadAttention`` itself.
"""
from __future__ import annotations

import numpy as np

from ._common import not_attempted

# Exercise 1: the paper's base model.
EXERCISE_1_D_MODEL = 512
EXERCISE_1_HEADS = 8
# Exercise 2: W^Q (d_model, h*d_k) = (8, 8) with h = 4 heads; which block is head 2's?
EXERCISE_2_HEADS = 4
EXERCISE_2_HEAD = 2
# Exercise 3: a cross-attention layer.
EXERCISE_3_SIZES = dict(n_q=10, n_k=20, d_model=64, num_heads=8)
# Exercise 4: an nn.MultiheadAttention to copy.
EXERCISE_4_E = 6
EXERCISE_4_HEADS = 3


def _as_int(n: int, answer) -> int:
    if isinstance(answer, bool) or not float(answer).is_integer():
        raise TypeError(f"Exercise {n}: expected a whole number, got {answer!r}")
    return int(answer)


def check_exercise_1(answer) -> None:
    """Parameters of one multi-head attention layer with biases: 4 d_model^2 + 4 d_model."""
    if not_attempted(1, answer):
        return
    value = _as_int(1, answer)
    d, h = EXERCISE_1_D_MODEL, EXERCISE_1_HEADS
    expected = 4 * d * d + 4 * d
    if value == 4 * d * d:
        raise AssertionError("Exercise 1: that is the weights only; add the four bias vectors "
                             "b^Q, b^K, b^V (h*d_k = d_model each) and b^O (d_model).")
    if value in (h * expected, h * 4 * d * d):
        raise AssertionError("Exercise 1: the heads do not add parameters: the h matrices W_i^Q "
                             "(d_model, d_k) are the column blocks of one (d_model, d_model) W^Q.")
    assert value == expected, (f"Exercise 1: got {value}. Count W^Q, W^K, W^V, W^O (each "
                               "d_model x d_model) and four bias vectors of length d_model.")
    print(f"Exercise 1: correct, 4*512^2 + 4*512 = {expected:,} parameters.")


def exercise_2_matrix() -> np.ndarray:
    """The W^Q of exercise 2: (8, 8), entry [r, c] = 10 r + c, so every entry says where it sits."""
    r, c = np.indices((8, 8))
    return (10 * r + c).astype(np.float64)


def check_exercise_2(answer) -> None:
    """Head 2's W_2^Q: the column block W^Q[:, 2 d_k : 3 d_k] with d_k = 8/4 = 2."""
    if not_attempted(2, answer):
        return
    a = np.asarray(answer.detach().cpu() if hasattr(answer, "detach") else answer, dtype=np.float64)
    w = exercise_2_matrix()
    d_k = w.shape[1] // EXERCISE_2_HEADS
    i = EXERCISE_2_HEAD
    if a.shape == (d_k, w.shape[0]) and np.array_equal(a, w[i * d_k:(i + 1) * d_k, :]):
        raise AssertionError("Exercise 2: you took a block of ROWS. Rows of W^Q are input "
                             "features (d_model); heads are blocks of COLUMNS: W^Q[:, 4:6].")
    assert a.shape == (w.shape[0], d_k), (
        f"Exercise 2: W_i^Q has shape (d_model, d_k) = ({w.shape[0]}, {d_k}), got {a.shape}")
    for j in range(EXERCISE_2_HEADS):
        if j != i and np.array_equal(a, w[:, j * d_k:(j + 1) * d_k]):
            raise AssertionError(f"Exercise 2: that is head {j}'s block. Heads count from 0: "
                                 f"head {i} is columns {i * d_k}..{(i + 1) * d_k - 1}.")
    assert np.array_equal(a, w[:, i * d_k:(i + 1) * d_k]), (
        "Exercise 2: not a column block of W^Q; head i is W^Q[:, i*d_k:(i+1)*d_k].")
    print(f"Exercise 2: correct, W_2^Q = W^Q[:, 4:6] (columns {i * d_k} and {i * d_k + 1}).")


def exercise_3_expected() -> int:
    s = EXERCISE_3_SIZES
    n_q, n_k, d = s["n_q"], s["n_k"], s["d_model"]
    return 2 * n_q * d * d + 2 * n_k * d * d + 2 * n_q * n_k * d


def check_exercise_3(answer) -> None:
    """Multiply-adds of the matrix products of a cross-attention layer (n_q, n_k, d_model, h)."""
    if not_attempted(3, answer):
        return
    value = _as_int(3, answer)
    s = EXERCISE_3_SIZES
    n_q, n_k, d = s["n_q"], s["n_k"], s["d_model"]
    expected = exercise_3_expected()
    if value == 2 * expected:
        raise AssertionError("Exercise 3: that counts FLOPs (a multiply and an add each); the "
                             "exercise asks for multiply-adds, half of that.")
    if value in (4 * n_q * d * d + 2 * n_q * n_q * d, 4 * n_k * d * d + 2 * n_k * n_k * d):
        raise AssertionError("Exercise 3: that is the self-attention count for one length. Here "
                             "Q and the output projection see n_q rows, K and V see n_k rows.")
    assert value == expected, (
        f"Exercise 3: got {value:,}. Add up (rows x inner x columns) over the six products: "
        "x_dec W^Q, x_enc W^K, x_enc W^V, Q K^T (all heads), A V (all heads), Concat W^O.")
    print(f"Exercise 3: correct, 2 n_q d^2 + 2 n_k d^2 + 2 n_q n_k d = {expected:,} multiply-adds "
          "(h does not appear).")


def exercise_4_module():
    """A seeded torch.nn.MultiheadAttention(6, 3, bias=False) in float64 with random weights."""
    import torch
    g = torch.Generator().manual_seed(7)
    mha = torch.nn.MultiheadAttention(EXERCISE_4_E, EXERCISE_4_HEADS, bias=False,
                                      batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        for p in mha.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
    return mha


def check_exercise_4(answer) -> None:
    """(w_q, w_k, w_v, w_o) in the course's row-vector layout, taken from exercise_4_module()."""
    if not_attempted(4, answer):
        return
    import torch

    from ..multi_head import multi_head_attention
    try:
        w_q, w_k, w_v, w_o = answer
    except (TypeError, ValueError):
        raise TypeError("Exercise 4: expected a tuple (w_q, w_k, w_v, w_o) of four tensors") from None
    mha = exercise_4_module()
    blocks = mha.in_proj_weight.detach().chunk(3)
    if all(torch.is_tensor(w) and w.shape == b.shape and torch.equal(w, b)
           for w, b in zip((w_q, w_k, w_v), blocks)):
        raise AssertionError("Exercise 4: in_proj_weight is in nn.Linear's (out, in) layout: "
                             "y = x W^T. Transpose each of the three blocks.")
    x = torch.randn(2, 5, EXERCISE_4_E, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    mask = torch.ones(5, 5, dtype=torch.bool).tril()
    ours, _ = multi_head_attention(x, x, w_q, w_k, w_v, w_o, EXERCISE_4_HEADS, mask=mask)
    with torch.no_grad():
        theirs, _ = mha(x, x, x, attn_mask=~mask, need_weights=False)
    torch.testing.assert_close(ours.detach(), theirs, rtol=1e-10, atol=1e-10, msg=lambda m: (
        "Exercise 4: multi_head_attention with your matrices does not reproduce the module. "
        "Use in_proj_weight.chunk(3) for W^Q, W^K, W^V and out_proj.weight for W^O, each "
        "transposed.\n" + m))
    print("Exercise 4: correct, your matrices reproduce nn.MultiheadAttention exactly.")
