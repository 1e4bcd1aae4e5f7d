"""Checks for the exercises of chapter 7, "Encoder and decoder".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong (naming the usual slip where one explains
the answer) or prints a confirmation. Reference values are computed here from the shapes of
the weight matrices, in plain Python and NumPy, independently of :mod:`helpers`.
"""
from __future__ import annotations

import numpy as np

from ._common import not_attempted

# Exercise 1: one encoder layer of this size.
EXERCISE_1_D_MODEL, EXERCISE_1_D_FF = 256, 1024
# Exercise 2 and 3: sequence lengths in a padded batch.
EXERCISE_2_LENGTHS, EXERCISE_2_N = (3, 5), 5
EXERCISE_3_LENGTHS, EXERCISE_3_N = (2, 4), 4
# Exercise 4: the paper's base model with three separate vocabulary tables.
EXERCISE_4 = dict(d_model=512, d_ff=2048, layers=6, vocab=37000)


def _as_bool_array(n: int, answer) -> np.ndarray:
    a = answer.detach().cpu().numpy() if hasattr(answer, "detach") else np.asarray(answer)
    if a.dtype != bool:
        raise AssertionError(f"Exercise {n}: a mask must be boolean, got dtype {a.dtype}")
    return a


def _layer_sizes(d, f, attentions, norms):
    attention = 4 * (d * d + d)          # W^Q, W^K, W^V, W^O and their biases
    ffn = d * f + f + f * d + d          # W1, b1, W2, b2
    return attentions * attention + ffn + norms * 2 * d


def check_exercise_1(answer) -> None:
    """Parameters of one encoder layer, d_model 256, d_ff 1024, with biases and LayerNorms."""
    if not_attempted(1, answer):
        return
    d, f = EXERCISE_1_D_MODEL, EXERCISE_1_D_FF
    expected = _layer_sizes(d, f, attentions=1, norms=2)
    if answer == expected - 4 * d:
        raise AssertionError("Exercise 1: you left out the two LayerNorms (gamma and beta: 2 d_model each).")
    if answer == expected - 4 * d - f - d:
        raise AssertionError("Exercise 1: you left out the biases (4 in the attention, b1 and b2 in the FFN).")
    if answer == _layer_sizes(d, f, attentions=2, norms=3):
        raise AssertionError("Exercise 1: that is a *decoder* layer (two attentions, three LayerNorms).")
    assert answer == expected, (f"Exercise 1: got {answer}. Add 4 d^2 + 4 d (attention), "
                                "2 d d_ff + d_ff + d (FFN) and 2 x 2 d (two LayerNorms).")
    print(f"Exercise 1: correct: 4 d^2 + 2 d d_ff + 9 d + d_ff = {expected:,}.")


def check_exercise_2(answer) -> None:
    """src_key_padding_mask for nn.Transformer: shape (batch, n), True where the token is PADDING."""
    if not_attempted(2, answer):
        return
    got = _as_bool_array(2, answer)
    lengths, n = EXERCISE_2_LENGTHS, EXERCISE_2_N
    real = np.arange(n)[None, :] < np.array(lengths)[:, None]
    if got.shape != real.shape:
        raise AssertionError(f"Exercise 2: nn.Transformer wants shape (batch, n) = {real.shape}, got {got.shape} "
                             "(helpers' padding_mask has a middle axis of size 1; drop it)")
    if np.array_equal(got, real):
        raise AssertionError("Exercise 2: that is helpers' convention (True = may attend). PyTorch's "
                             "key_padding_mask means the opposite: True = ignore this key. Invert it.")
    assert np.array_equal(got, ~real), f"Exercise 2: expected\n{~real}\ngot\n{got}"
    print("Exercise 2: correct: True marks the padded positions, which nn.Transformer ignores.")


def check_exercise_3(answer) -> None:
    """helpers' decoder self-attention mask (True = may attend), causal AND target padding,
    shape (batch, n, n)."""
    if not_attempted(3, answer):
        return
    got = _as_bool_array(3, answer)
    lengths, n = EXERCISE_3_LENGTHS, EXERCISE_3_N
    causal = np.tril(np.ones((n, n), dtype=bool))
    real = np.arange(n)[None, None, :] < np.array(lengths)[:, None, None]
    expected = causal[None] & real
    if got.shape != expected.shape:
        raise AssertionError(f"Exercise 3: expected shape (batch, n, n) = {expected.shape}, got {got.shape}")
    if np.array_equal(got, ~expected):
        raise AssertionError("Exercise 3: that is PyTorch's convention (True = not allowed); here True = may attend.")
    if np.array_equal(got, np.broadcast_to(causal, expected.shape)):
        raise AssertionError("Exercise 3: only the causal part is there; combine it (logical and) with the "
                             "padding mask of the target lengths.")
    if np.array_equal(got, np.broadcast_to(real, expected.shape)):
        raise AssertionError("Exercise 3: only the padding part is there; the decoder also needs the causal mask.")
    assert np.array_equal(got, expected), f"Exercise 3: expected\n{expected}\ngot\n{got}"
    print("Exercise 3: correct: mask[b, i, j] = (j <= i) and (j < length[b]).")


def check_exercise_4(answer) -> None:
    """The paper's base configuration with separate source embedding, target embedding and
    pre-softmax tables (no output bias), plus nn.Transformer's two final LayerNorms."""
    if not_attempted(4, answer):
        return
    c = EXERCISE_4
    d, f, n, v = c["d_model"], c["d_ff"], c["layers"], c["vocab"]
    stacks = n * (_layer_sizes(d, f, 1, 2) + _layer_sizes(d, f, 2, 3))
    expected = stacks + 2 * 2 * d + 3 * v * d
    if answer == stacks + 2 * 2 * d + v * d:
        raise AssertionError("Exercise 4: that is the *tied* count (one table); here there are three tables.")
    if answer == stacks + 3 * v * d:
        raise AssertionError("Exercise 4: add nn.Transformer's two final LayerNorms (2 x 2 d_model).")
    assert answer == expected, (f"Exercise 4: got {answer}. N x (encoder layer + decoder layer) "
                                "+ 2 final LayerNorms + 3 vocab x d_model tables.")
    print(f"Exercise 4: correct: {expected:,} parameters, about {expected / 1e6:.1f}M "
          "(the paper's 65M assumes the tables are shared).")
