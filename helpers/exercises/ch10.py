"""Checks for the exercises of chapter 10, "The cost of attention, and how to cut it".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong (and, where a common slip explains the
answer, which slip), or prints "Exercise N: correct." and nothing else (no number that
would give the answer away). The reference values are computed here from the
definitions in plain Python and NumPy (and, for the torch half of exercise 3, with
PyTorch's own softmax), independently of :mod:`helpers`.
"""
from __future__ import annotations

import numpy as np

from ._common import as_whole, correct, not_attempted

# Exercise 1: one layer's attention weights, one sequence, float16.
EXERCISE_1 = dict(n=8192, d_model=2048, num_heads=32, itemsize=2)
# Exercise 2: the (n, stride) grid a learner's count function is tried on.
EXERCISE_2_NS = range(1, 41)
EXERCISE_2_STRIDES = range(1, 46)
# Exercise 3: random splits of random score rows.
EXERCISE_3_TRIALS = 12
# Exercise 4: causal tiled attention with tiles taller than they are wide.
EXERCISE_4 = dict(n=1024, block_q=256, block_k=128)


# ----------------------------------------------------------------------------- exercise 1


def check_exercise_1(answer) -> None:
    """Bytes of one layer's attention weights for one sequence: h * n^2 * itemsize."""
    if not_attempted(1, answer):
        return
    value = as_whole(1, answer)
    n, h, itemsize = EXERCISE_1["n"], EXERCISE_1["num_heads"], EXERCISE_1["itemsize"]
    expected = h * n * n * itemsize
    if value == n * n * itemsize:
        raise AssertionError("Exercise 1: that is one head's matrix. Every head has its own "
                             "(n, n) weights: multiply by the number of heads.")
    if value in (h * n * n * 4, h * n * n * 8):
        raise AssertionError("Exercise 1: float16 takes 2 bytes per number.")
    if value == h * n * n:
        raise AssertionError("Exercise 1: that is the number of weights; the question asks for bytes.")
    if value in (n * EXERCISE_1["d_model"] * itemsize, n * EXERCISE_1["d_model"] * itemsize * h):
        raise AssertionError("Exercise 1: the weights matrix is (n, n) per head; d_model does "
                             "not enter its size.")
    assert value == expected, (f"Exercise 1: got {value}. One head's weights are an (n, n) matrix "
                               "of float16 numbers; there are h heads.")
    correct(1)


# ----------------------------------------------------------------------------- exercise 2


def _sparse_transformer_count(n: int, s: int) -> int:
    """True entries of (0 <= i - j <= s - 1) or (i >= j and (i - j) mod s == 0), by brute force."""
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    diff = i - j
    return int(np.sum((diff >= 0) & ((diff <= s - 1) | (diff % s == 0))))


def check_exercise_2(count_function) -> None:
    """A function (n, s) -> allowed pairs of the causal Sparse Transformer pattern."""
    if not_attempted(2, count_function):
        return
    if not callable(count_function):
        raise TypeError(f"Exercise 2: expected a function count(n, s), "
                        f"got {type(count_function).__name__}")
    for n in EXERCISE_2_NS:
        for s in EXERCISE_2_STRIDES:
            expected = _sparse_transformer_count(n, s)
            got = count_function(n, s)
            if got == expected:
                continue
            if got == expected + n:
                raise AssertionError(
                    f"Exercise 2: count({n}, {s}) = {got}, but the mask has {expected} True "
                    "entries: you counted the pairs both patterns allow twice. Subtract "
                    "|window & strided| (which pairs are those?).")
            w = s - 1
            unclipped = (n * (w + 1) - w * (w + 1) // 2
                         + sum(c * (c + 1) // 2 for c in [n // s + 1] * (n % s) + [n // s] * (s - n % s))
                         - n)
            if w > n - 1 and got == unclipped:
                raise AssertionError(
                    f"Exercise 2: count({n}, {s}) = {got}, but the mask has {expected} True "
                    "entries: when the window is longer than the sequence a token has at most "
                    "n - 1 earlier neighbours. Replace the window by min(s - 1, n - 1).")
            raise AssertionError(
                f"Exercise 2: count({n}, {s}) = {got!r}, but the mask has {expected} True entries. "
                "Count each pattern (the causal window and the causal strided mask) and the "
                "pairs they share: |A or B| = |A| + |B| - |A and B|.")
    correct(2)


# ----------------------------------------------------------------------------- exercise 3


def _partial_state(scores, values):
    """(m, l, o) of one part of the keys, by hand in NumPy; an all -inf row gives (-inf, 0, 0)."""
    m = scores.max(axis=-1)                                          # (rows,)
    shift = np.where(np.isfinite(m), m, 0.0)                         # (rows,)
    e = np.exp(scores - shift[:, None])                              # (rows, part)
    l = e.sum(axis=-1)                                               # (rows,)
    o = (e @ values) / np.where(l > 0, l, 1.0)[:, None]              # (rows, d_v)
    return m, l, o


def _exercise_3_cases():
    """Yield (scores, values, cuts): rows of scores, their values, where the keys are cut."""
    rng = np.random.default_rng(10)
    for trial in range(EXERCISE_3_TRIALS):
        rows, n_keys, d_v = int(rng.integers(1, 5)), int(rng.integers(2, 13)), int(rng.integers(1, 4))
        scores = rng.normal(scale=4.0, size=(rows, n_keys))
        cuts = sorted(rng.choice(np.arange(1, n_keys), size=min(n_keys - 1, 1 + trial % 3),
                                 replace=False).tolist())
        # a later part whose scores are far larger (or smaller): the maximum must move
        scores[:, cuts[0]:] += 30.0 if trial % 2 else -30.0
        if trial % 4 == 3:
            scores[0, :cuts[0]] = -np.inf     # a part that row 0 may not see at all (masked)
        yield scores, rng.standard_normal((n_keys, d_v)), cuts


def _to_numpy(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def _call_merge(merge, state_a, state_b, backend):
    result = merge(state_a, state_b)
    try:
        m, l, o = result
    except (TypeError, ValueError):
        raise TypeError(f"Exercise 3: merge must return a triple (m, l, o), got {result!r}") from None
    if backend == "torch":
        import torch
        if not all(isinstance(x, torch.Tensor) for x in (m, l, o)):
            raise AssertionError("Exercise 3: given torch tensors, merge must return torch "
                                 "tensors (torch in, torch out). Use xp = array_namespace(m_a) "
                                 "and xp.maximum, xp.exp instead of NumPy's functions.")
    return m, l, o


def _explain_wrong_output(o, state_a, state_b):
    """The AssertionError for a merged output that matches a common slip, else None."""
    (m_a, l_a, o_a), (m_b, l_b, o_b) = state_a, state_b
    m = np.maximum(m_a, m_b)
    w_a, w_b = l_a * np.exp(m_a - m), l_b * np.exp(m_b - m)
    slips = {
        "you averaged o_a and o_b with equal weights; each part should count in proportion "
        "to its share of the softmax denominator": (o_a + o_b) / 2,
        "you weighted o_a and o_b by l_a and l_b as they are, but those sums are relative to "
        "different maxima: rescale each by exp(its own m - the merged m) first":
            (l_a[:, None] * o_a + l_b[:, None] * o_b) / (l_a + l_b)[:, None],
        "you returned the weighted sum without dividing by the merged l: o is a weighted "
        "average, its weights must add up to 1": w_a[:, None] * o_a + w_b[:, None] * o_b,
    }
    for why, slip in slips.items():
        if o.shape == slip.shape and np.allclose(o, slip, rtol=1e-9, atol=1e-12):
            return AssertionError(f"Exercise 3: {why}.")
    return None


def _check_merged(merge, scores, values, cuts, backend):
    parts = np.split(np.arange(scores.shape[1]), cuts)
    states_np = [_partial_state(scores[:, p], values[p]) for p in parts]
    if backend == "torch":
        import torch
        states = [tuple(torch.tensor(x) for x in s) for s in states_np]
        exact = (torch.softmax(torch.tensor(scores), dim=-1) @ torch.tensor(values)).numpy()
    else:
        states = states_np
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        exact = (e / e.sum(axis=-1, keepdims=True)) @ values
    m_ref = scores.max(axis=-1)
    l_ref = np.exp(scores - m_ref[:, None]).sum(axis=-1)
    # merge the parts left to right
    merged = states[0]
    for nxt in states[1:]:
        merged = _call_merge(merge, merged, nxt, backend)
    m, l, o = (_to_numpy(x) for x in merged)
    assert m.shape == m_ref.shape and np.array_equal(m, m_ref), (
        "Exercise 3: the merged m should be the maximum over both parts, max(m_a, m_b).")
    if len(parts) == 2 and np.allclose(l, states_np[0][1] + states_np[1][1], rtol=1e-9):
        raise AssertionError("Exercise 3: you added l_a and l_b as they are, but they were "
                             "summed relative to different maxima: rescale each by "
                             "exp(its own m - the merged m) first.")
    assert l.shape == l_ref.shape and np.allclose(l, l_ref, rtol=1e-12, atol=0), (
        "Exercise 3: the merged l is not the sum of exp(x - m) over both parts.")
    if len(parts) == 2 and not np.allclose(o, exact, rtol=1e-12, atol=1e-12):
        slip = _explain_wrong_output(o, *states_np)
        if slip is not None:
            raise slip
    assert o.shape == exact.shape and np.allclose(o, exact, rtol=1e-12, atol=1e-12), (
        f"Exercise 3 ({backend}): the merged o is not softmax(scores) @ values over all the keys.")
    # the state of a set of keys cannot depend on the order its parts are merged in
    forward, backward = (_call_merge(merge, *pair, backend)
                         for pair in ((states[0], states[1]), (states[1], states[0])))
    for a, b in zip(forward, backward):
        assert np.allclose(_to_numpy(a), _to_numpy(b), rtol=1e-12, atol=1e-14), (
            "Exercise 3: merge(a, b) and merge(b, a) differ; the state of a set of keys "
            "cannot depend on which part you call first.")


def check_exercise_3(merge) -> None:
    """A function merge(state_a, state_b) -> state, each state (m, l, o) of one part of the keys.

    For scores x and values v of the keys of one part: m = max x (rows,), l = sum e^(x - m)
    (rows,), o = sum e^(x - m) v / l (rows, d_v). The merge must give the state of the union,
    whose o is the exact attention output. Tried on random splits on NumPy and on torch.
    """
    if not_attempted(3, merge):
        return
    if not callable(merge):
        raise TypeError(f"Exercise 3: expected a function merge(state_a, state_b), "
                        f"got {type(merge).__name__}")
    for backend in ("numpy", "torch"):
        for scores, values, cuts in _exercise_3_cases():
            _check_merged(merge, scores, values, cuts, backend)
    correct(3)


# ----------------------------------------------------------------------------- exercise 4


def check_exercise_4(answer) -> None:
    """Score tiles a causal tiled attention computes with block_q = 2 block_k."""
    if not_attempted(4, answer):
        return
    value = as_whole(4, answer)
    n, b_q, b_k = EXERCISE_4["n"], EXERCISE_4["block_q"], EXERCISE_4["block_k"]
    # query block a needs key block b iff the tile's first key comes no later than its last query
    expected = sum(1 for a in range(0, n, b_q) for b in range(0, n, b_k) if b <= a + b_q - 1)
    strictly_below = sum(1 for a in range(0, n, b_q) for b in range(0, n, b_k) if b + b_k - 1 <= a)
    t_q, t_k = n // b_q, n // b_k
    if value == t_q * t_k:
        raise AssertionError("Exercise 4: that is every tile. With a causal mask a tile whose "
                             "keys all come after its queries is skipped.")
    if value in (t_k * (t_k + 1) // 2, t_q * (t_q + 1) // 2):
        raise AssertionError("Exercise 4: T(T+1)/2 counts square tiles. Here a query block is "
                             "as tall as two key blocks are wide: list, for query block a, "
                             "the key blocks it needs.")
    if value == strictly_below:
        raise AssertionError("Exercise 4: you left out the tiles that cross the diagonal; "
                             "they are computed (and masked inside).")
    assert value == expected, (f"Exercise 4: got {value}. Query block a holds queries "
                               f"{b_q}a .. {b_q}a + {b_q - 1}: which key blocks start at or "
                               "before its last query?")
    correct(4)
