"""Checks for the exercises of chapter 4, "Multi-head attention".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong (naming the common slip where one
explains the answer), or prints "Exercise N: correct." and nothing else (no number that
would give the answer away). Reference values come from the formulas in plain Python/NumPy,
from ``torch.nn.MultiheadAttention`` itself (exercise 4), or from torch.autograd and the
derived formulas on helpers' two backends (exercise 5).
"""
from __future__ import annotations

import numpy as np

from ._common import as_array, as_whole, not_attempted

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


def check_exercise_1(answer) -> None:
    """Parameters of one multi-head attention layer with biases: 4 d_model^2 + 4 d_model."""
    if not_attempted(1, answer):
        return
    value = as_whole(1, answer)
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
    print("Exercise 1: correct.")


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
    print("Exercise 2: correct.")


def exercise_3_expected() -> int:
    s = EXERCISE_3_SIZES
    n_q, n_k, d = s["n_q"], s["n_k"], s["d_model"]
    return 2 * n_q * d * d + 2 * n_k * d * d + 2 * n_q * n_k * d


def check_exercise_3(answer) -> None:
    """Multiply-adds of the matrix products of a cross-attention layer (n_q, n_k, d_model, h)."""
    if not_attempted(3, answer):
        return
    value = as_whole(3, answer)
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
    print("Exercise 3: correct.")


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
    print("Exercise 4: correct.")


# Exercise 5 (derivation): the gradients of a multi-head layer's output with respect to
# W^O and W^V, for L = sum(G * MultiHead(X)), i.e. an upstream gradient dL/d(output) = G.
# (n, d_model, num_heads) of the random layers the check tries its answer on:
EXERCISE_5_SIZES = ((5, 6, 3), (4, 8, 2), (3, 4, 1), (6, 8, 4))


def exercise_5_inputs(n: int = 5, d_model: int = 6, seed: int = 0) -> dict:
    """A random self-attention layer and upstream gradient, as NumPy float64 arrays.

    Keys: x (n, d_model); w_q, w_k, w_v, w_o (d_model, d_model); grad_out (n, d_model).
    """
    rng = np.random.default_rng(seed)
    arrays = {"x": rng.normal(size=(n, d_model))}
    for name in ("w_q", "w_k", "w_v", "w_o"):
        arrays[name] = rng.normal(size=(d_model, d_model)) / np.sqrt(d_model)
    arrays["grad_out"] = rng.normal(size=(n, d_model))
    return arrays


def _exercise_5_autograd(inputs: dict, num_heads: int):
    """(dL/dW^O, dL/dW^V) by torch.autograd through helpers' torch backend."""
    import torch

    from ..multi_head import multi_head_attention
    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in inputs.items()}
    w_v = t["w_v"].clone().requires_grad_(True)
    w_o = t["w_o"].clone().requires_grad_(True)
    out, _ = multi_head_attention(t["x"], t["x"], t["w_q"], t["w_k"], w_v, w_o, num_heads)
    (out * t["grad_out"]).sum().backward()
    return w_o.grad.numpy(), w_v.grad.numpy()


def _exercise_5_closed_form(inputs: dict, num_heads: int, transpose_weights: bool = True):
    """(dL/dW^O, dL/dW^V) from the derived formulas, with the weights A_i from helpers' NumPy
    backend: dL/dW^O = Concat^T G and dL/dW_i^V = X^T A_i^T G (W_i^O)^T. With
    ``transpose_weights=False`` it makes the common slip A_i in place of A_i^T."""
    from ..multi_head import multi_head_attention
    x, w_v, w_o, g = inputs["x"], inputs["w_v"], inputs["w_o"], inputs["grad_out"]
    _, weights = multi_head_attention(x, x, inputs["w_q"], inputs["w_k"], w_v, w_o, num_heads)
    d_v = w_v.shape[1] // num_heads
    blocks = [slice(i * d_v, (i + 1) * d_v) for i in range(num_heads)]
    concat = np.concatenate([weights[i] @ x @ w_v[:, b] for i, b in enumerate(blocks)], axis=1)
    grad_w_v = np.concatenate([
        x.T @ (weights[i].T if transpose_weights else weights[i]) @ g @ w_o[b, :].T
        for i, b in enumerate(blocks)], axis=1)
    return concat.T @ g, grad_w_v


def check_exercise_5(multi_head_grads) -> None:
    """multi_head_grads(x, w_q, w_k, w_v, w_o, num_heads, grad_out) -> (grad_w_o, grad_w_v).

    Tried on random self-attention layers of several sizes; compared with torch.autograd
    through helpers' torch backend and with the derived formulas evaluated with helpers'
    NumPy backend.
    """
    if not_attempted(5, multi_head_grads):
        return
    if not callable(multi_head_grads):
        raise TypeError("Exercise 5: expected a function multi_head_grads(x, w_q, w_k, w_v, w_o, "
                        f"num_heads, grad_out), got {type(multi_head_grads).__name__}")
    for seed, (n, d_model, num_heads) in enumerate(EXERCISE_5_SIZES):
        inputs = exercise_5_inputs(n, d_model, seed=100 + seed)
        auto_o, auto_v = _exercise_5_autograd(inputs, num_heads)
        formula_o, formula_v = _exercise_5_closed_form(inputs, num_heads)
        # the two references must agree before the answer is judged against them
        np.testing.assert_allclose(formula_o, auto_o, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(formula_v, auto_v, rtol=1e-10, atol=1e-12)
        result = multi_head_grads(inputs["x"], inputs["w_q"], inputs["w_k"], inputs["w_v"],
                                  inputs["w_o"], num_heads, inputs["grad_out"])
        try:
            grad_o, grad_v = result
        except (TypeError, ValueError):
            raise TypeError("Exercise 5: your function should return a pair (grad_w_o, grad_w_v), "
                            f"got {type(result).__name__}") from None
        where = f"(a layer with n={n}, d_model={d_model}, num_heads={num_heads})"
        grad_o = as_array(5, grad_o, auto_o.shape, "grad_w_o")
        grad_v = as_array(5, grad_v, auto_v.shape, "grad_w_v")
        if not np.allclose(grad_o, auto_o, rtol=1e-8, atol=1e-10):
            if np.allclose(grad_o, auto_o.T, rtol=1e-8, atol=1e-10):
                raise AssertionError("Exercise 5: grad_w_o is transposed. W^O has shape "
                                     "(h*d_v, d_model) and so has its gradient: Concat^T G, not G^T Concat.")
            raise AssertionError(f"Exercise 5: grad_w_o differs from torch.autograd {where}. The "
                                 "output is Concat W^O, linear in W^O; which matrix multiplies it on the left?")
        if not np.allclose(grad_v, auto_v, rtol=1e-8, atol=1e-10):
            slip = _exercise_5_closed_form(inputs, num_heads, transpose_weights=False)[1]
            if np.allclose(grad_v, slip, rtol=1e-8, atol=1e-10):
                raise AssertionError("Exercise 5: grad_w_v uses A_i where A_i^T belongs. head_i = A_i (X W_i^V): "
                                     "moving A_i to the other side of the trace transposes it.")
            raise AssertionError(f"Exercise 5: grad_w_v differs from torch.autograd {where}. Head i "
                                 "contributes A_i X W_i^V W_i^O to the output, and A_i does not depend on W^V.")
    print("Exercise 5: correct.")
