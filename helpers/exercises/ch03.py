"""Checks for the exercises of chapter 3, "Masks, self-attention and cross-attention".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong (naming the common slip where one
explains the answer), or prints "Exercise N: correct." and nothing else: a stored output
never shows the answer. Exercises 1-4 compute their reference values here in plain NumPy
from the definitions, independently of :mod:`helpers`. Exercise 5 (a derivation: what the
mask does to the gradient) tests the learner's function on random inputs against
torch.autograd through ``torch.softmax``, against autograd through :func:`helpers.softmax`
on the torch backend, and against central finite differences of its NumPy backend.
"""
from __future__ import annotations

import numpy as np

from ._common import as_array, not_attempted

# Exercise 1: a batch of two sequences of n = 5 positions, 3 and 5 of them real.
EXERCISE_1_LENGTHS = np.array([3, 5])
EXERCISE_1_N = 5
# Exercise 2: one query's scores over four keys; the last key is masked.
EXERCISE_2_SCORES = np.array([2.0, 1.0, 0.0, 3.0])
EXERCISE_2_ALLOWED = np.array([True, True, True, False])
# Exercise 3: cross-attention sizes.
EXERCISE_3_SIZES = dict(batch=3, n_dec=4, n_enc=7, d_model=8, num_heads=2)
# Exercise 4: a left-padded batch (pads come first), n = 4 positions.
EXERCISE_4_LEFT_PADS = np.array([2, 0])
EXERCISE_4_N = 4
# Exercise 5: the shapes (n_q, n_k, d_v) of the random inputs the check tries, and its seed.
EXERCISE_5_SHAPES = ((4, 4, 2), (3, 5, 3), (1, 6, 2))
EXERCISE_5_SEED = 2025


def _as_bool_array(n: int, answer, expected_shape: tuple) -> np.ndarray:
    try:
        import torch
        if isinstance(answer, torch.Tensor):
            answer = answer.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - the course installs torch
        pass
    a = np.asarray(answer)
    if a.dtype != np.bool_:
        raise TypeError(f"Exercise {n}: expected a boolean array (True = may attend), got dtype {a.dtype}")
    if a.shape != expected_shape:
        raise AssertionError(f"Exercise {n}: expected shape {expected_shape}, got {a.shape}")
    return a


def exercise_1_expected() -> np.ndarray:
    n = EXERCISE_1_N
    i, j = np.indices((n, n))
    return (j <= i)[None, :, :] & (j[None] < EXERCISE_1_LENGTHS[:, None, None])


def check_exercise_1(answer) -> None:
    """The causal-and-padding mask of the batch, shape (batch, n, n), True = allowed."""
    if not_attempted(1, answer):
        return
    n, b = EXERCISE_1_N, len(EXERCISE_1_LENGTHS)
    a = np.asarray(answer.detach().cpu() if hasattr(answer, "detach") else answer)
    if a.shape == (b, 1, n):
        raise AssertionError("Exercise 1: shape (2, 1, 5) is the padding mask alone; "
                             "combine it with the causal mask (n, n) by a logical and.")
    a = _as_bool_array(1, answer, (b, n, n))
    expected = exercise_1_expected()
    if np.array_equal(a, ~expected):
        raise AssertionError("Exercise 1: your mask is the exact opposite: in this course True "
                             "means 'may attend' (as in F.scaled_dot_product_attention).")
    if np.array_equal(a, np.broadcast_to(np.tril(np.ones((n, n), dtype=bool)), (b, n, n))):
        raise AssertionError("Exercise 1: that is the causal mask alone; sequence 0 has only "
                             "3 real tokens, so keys 3 and 4 must be False in every row.")
    wrong = np.argwhere(a != expected)
    assert not len(wrong), (
        f"Exercise 1: {len(wrong)} entries differ, the first at (sequence, query, key) = "
        f"{tuple(int(x) for x in wrong[0])}. Allowed means key <= query AND key < length.")
    print("Exercise 1: correct.")


def exercise_2_expected() -> np.ndarray:
    e = np.exp(EXERCISE_2_SCORES - EXERCISE_2_SCORES.max()) * EXERCISE_2_ALLOWED
    return e / e.sum()


def check_exercise_2(answer) -> None:
    """The weights softmax(scores) with the masked key's score set to -inf first."""
    if not_attempted(2, answer):
        return
    a = np.asarray(answer.detach().cpu() if hasattr(answer, "detach") else answer, dtype=np.float64)
    assert a.shape == (4,), f"Exercise 2: expected 4 weights, one per key, got shape {a.shape}"
    e = np.exp(EXERCISE_2_SCORES)
    after = e / e.sum() * EXERCISE_2_ALLOWED
    if np.allclose(a, after, rtol=1e-9, atol=1e-12):
        raise AssertionError(f"Exercise 2: you zeroed the weight after the softmax; your weights "
                             f"sum to {a.sum():.4f}, not 1. Set the score to -inf before it.")
    if np.allclose(a, e / e.sum(), rtol=1e-9, atol=1e-12):
        raise AssertionError("Exercise 2: that is the softmax without the mask; key 3 is masked.")
    np.testing.assert_allclose(a, exercise_2_expected(), rtol=1e-9, atol=1e-12,
                               err_msg="Exercise 2: the weights are exp(s_j)/sum of exp over the "
                                       "ALLOWED keys, and 0 for the masked key.")
    print("Exercise 2: correct.")


def exercise_3_expected() -> tuple:
    s = EXERCISE_3_SIZES
    return ((s["batch"], s["n_dec"], s["d_model"]),
            (s["batch"], s["num_heads"], s["n_dec"], s["n_enc"]))


def check_exercise_3(answer) -> None:
    """(output shape, weights shape) of the cross-attention layer, as tuples of ints."""
    if not_attempted(3, answer):
        return
    try:
        out_shape, w_shape = (tuple(int(x) for x in s) for s in answer)
    except (TypeError, ValueError):
        raise TypeError("Exercise 3: expected a pair of shapes, e.g. ((1, 2, 3), (1, 2, 3, 4))") from None
    expected_out, expected_w = exercise_3_expected()
    s = EXERCISE_3_SIZES
    if w_shape == (s["batch"], s["num_heads"], s["n_enc"], s["n_dec"]):
        raise AssertionError("Exercise 3: the weights have one ROW per query (decoder token) and "
                             "one COLUMN per key (encoder token): (..., h, n_q, n_k).")
    assert out_shape == expected_out, (
        f"Exercise 3: output shape {out_shape} is wrong: one output row per decoder token "
        "(the queries), of width d_model.")
    assert w_shape == expected_w, f"Exercise 3: weights shape {w_shape} is wrong: (batch, h, n_q, n_k)."
    print("Exercise 3: correct.")


def exercise_4_mask() -> np.ndarray:
    """Causal and left-padding mask (batch, n, n): key j of sequence b is real when j >= pads[b]."""
    n = EXERCISE_4_N
    i, j = np.indices((n, n))
    return (j <= i)[None] & (j[None] >= EXERCISE_4_LEFT_PADS[:, None, None])


def check_exercise_4(answer) -> None:
    """Boolean (batch, n): True for each query row whose mask allows no key at all."""
    if not_attempted(4, answer):
        return
    a = _as_bool_array(4, answer, (len(EXERCISE_4_LEFT_PADS), EXERCISE_4_N))
    expected = ~exercise_4_mask().any(axis=-1)
    if np.array_equal(a, ~expected):
        raise AssertionError("Exercise 4: you marked the rows that DO have an allowed key; "
                             "a fully masked row is one where every entry is False.")
    assert np.array_equal(a, expected), (
        f"Exercise 4: expected {expected.tolist()}, got {a.tolist()}. A row is fully masked when "
        "mask[b, i, :].any() is False.")
    print("Exercise 4: correct.")


def exercise_5_inputs():
    """The random (scores, mask, v, grad_out) the check of exercise 5 tries. The square case
    uses the causal mask; the others a random mask with at least one allowed and one masked
    key in every row."""
    rng = np.random.default_rng(EXERCISE_5_SEED)
    for n_q, n_k, d_v in EXERCISE_5_SHAPES:
        if n_q == n_k:
            mask = np.tril(np.ones((n_q, n_k), dtype=bool))
        else:
            mask = rng.random((n_q, n_k)) < 0.6
            for row in range(n_q):
                j_allowed, j_masked = rng.permutation(n_k)[:2]
                mask[row, j_allowed], mask[row, j_masked] = True, False
        yield rng.normal(size=(n_q, n_k)), mask, rng.normal(size=(n_k, d_v)), rng.normal(size=(n_q, d_v))


def _exercise_5_references(scores, mask, v, grad_out):
    """dL/dscores for L = sum(grad_out * softmax(scores masked to -inf) v), three ways."""
    import torch

    from ..softmax import softmax

    mask_t, v_t, g_t = (torch.tensor(a) for a in (mask, v, grad_out))
    s_pytorch = torch.tensor(scores, requires_grad=True)
    (torch.softmax(s_pytorch.masked_fill(~mask_t, float("-inf")), dim=-1) @ v_t * g_t).sum().backward()
    s_helpers = torch.tensor(scores, requires_grad=True)
    masked = torch.where(mask_t, s_helpers, torch.full_like(s_helpers, float("-inf")))
    (softmax(masked, axis=-1) @ v_t * g_t).sum().backward()

    def loss(s_np):
        return float(np.sum(softmax(np.where(mask, s_np, -np.inf), axis=-1) @ v * grad_out))

    step = 1e-6
    by_differences = np.zeros_like(scores)
    for index in np.ndindex(scores.shape):
        bump = np.zeros_like(scores)
        bump[index] = step
        by_differences[index] = (loss(scores + bump) - loss(scores - bump)) / (2 * step)
    return {"autograd through torch.softmax": (s_pytorch.grad.numpy(), 1e-9),
            "autograd through helpers.softmax (torch)": (s_helpers.grad.numpy(), 1e-9),
            "finite differences of helpers.softmax (NumPy)": (by_differences, 1e-6)}


def _exercise_5_diagnose(got, scores, mask, v, grad_out) -> None:
    """Raise a message naming the slip when a wrong gradient is one of the common ones."""
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)                    # (n_q, n_k) softmax, no mask
    a_after = p * mask                                      # the note read literally
    d_a = grad_out @ v.T                                    # (n_q, n_k) dL/dA
    zeroed_after = a_after * d_a - p * np.sum(a_after * d_a, axis=1, keepdims=True)
    if np.allclose(got, zeroed_after, rtol=1e-6, atol=1e-9):
        raise AssertionError("Exercise 5: that is the gradient of the weights zeroed AFTER the "
                             "softmax: there a masked score still sits in the denominator, so "
                             "it gets a gradient. Mask the scores with -inf before the softmax.")
    if not np.all(got[~mask] == 0):
        raise AssertionError("Exercise 5: a masked score must get a gradient of exactly 0: it is "
                             "replaced by -inf, so it does not enter the softmax at all.")


def check_exercise_5(masked_score_grad) -> None:
    """A function (scores, mask, v, grad_out) -> dL/dscores, NumPy arrays scores (n_q, n_k),
    mask (n_q, n_k) boolean (True = may attend), v (n_k, d_v), grad_out (n_q, d_v), for
    L = sum(grad_out * A v) with A = softmax of the scores where masked ones are -inf."""
    if not_attempted(5, masked_score_grad):
        return
    if not callable(masked_score_grad):
        raise TypeError("Exercise 5: expected a function (scores, mask, v, grad_out) -> dL/dscores, "
                        f"got {type(masked_score_grad).__name__}")
    for scores, mask, v, grad_out in exercise_5_inputs():
        got = as_array(5, masked_score_grad(scores.copy(), mask.copy(), v.copy(), grad_out.copy()),
                       scores.shape, f"dL/dscores for scores {scores.shape}")
        references = _exercise_5_references(scores, mask, v, grad_out)
        reference, _ = references["autograd through torch.softmax"]
        if not np.allclose(got, reference, rtol=1e-9, atol=1e-9):
            _exercise_5_diagnose(got, scores, mask, v, grad_out)
        for name, (ref, tol) in references.items():
            error = float(np.max(np.abs(got - ref)))
            assert np.allclose(got, ref, rtol=tol, atol=tol), (
                f"Exercise 5: for scores {scores.shape} your gradient differs from {name} by up "
                f"to {error:.3g}. Over the allowed keys the weights are an ordinary softmax: "
                "dL/dA = grad_out v^T, then each row through diag(p) - p p^T.")
    print("Exercise 5: correct.")
