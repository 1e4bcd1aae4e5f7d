"""Checks for the exercises of chapter 7, "Encoder and decoder".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong (naming the usual slip where one explains
the answer) or prints "Exercise N: correct." and nothing else, so that a stored solution
cell gives nothing away. Reference values for exercises 1-4 are computed here from the
shapes of the weight matrices, in plain Python and NumPy, independently of :mod:`helpers`;
exercise 5 (a derivation) is checked against sines and cosines computed here, against
:func:`helpers.sinusoidal_positional_encoding` on both backends, and in a cross-attention
run by :func:`helpers.multi_head_attention` on both backends.
"""
from __future__ import annotations

import numpy as np

import math

from ._common import as_array, as_float, correct, not_attempted

# Exercise 1: one encoder layer of this size.
EXERCISE_1_D_MODEL, EXERCISE_1_D_FF = 256, 1024
# Exercise 2 and 3: sequence lengths in a padded batch.
EXERCISE_2_LENGTHS, EXERCISE_2_N = (3, 5), 5
EXERCISE_3_LENGTHS, EXERCISE_3_N = (2, 4), 4
# Exercise 4: the paper's big model with three separate vocabulary tables (the chapter
# counts the base model that way).
EXERCISE_4 = dict(d_model=1024, d_ff=4096, layers=6, vocab=37000)
# Exercise 5: (a, d_model) pairs on which PE[a - i] = PE[i] F_a is tested, and the cross-attention
# trial: target positions 0..a attend over source positions 0..n_src-1.
EXERCISE_5_CASES = ((3, 8), (7, 16), (12, 6), (1, 2), (25, 32))
EXERCISE_5_ATTENTION = dict(a=5, n_src=6, d_model=8, scale=5.0)


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
    assert answer == expected, ("Exercise 1: not yet. Add 4 d^2 + 4 d (attention), "
                                "2 d d_ff + d_ff + d (FFN) and 2 x 2 d (two LayerNorms).")
    correct(1)


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
    correct(2)


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
    correct(3)


def check_exercise_4(answer) -> None:
    """The paper's big configuration with separate source embedding, target embedding and
    pre-softmax tables (no output bias), plus nn.Transformer's two final LayerNorms."""
    if not_attempted(4, answer):
        return
    value = as_float(4, answer)
    c = EXERCISE_4
    d, f, n, v = c["d_model"], c["d_ff"], c["layers"], c["vocab"]
    stacks = n * (_layer_sizes(d, f, 1, 2) + _layer_sizes(d, f, 2, 3))
    expected = stacks + 2 * 2 * d + 3 * v * d
    if value == stacks + 2 * 2 * d + v * d:
        raise AssertionError("Exercise 4: that is the *tied* count (one table); here there are three tables.")
    if value == stacks + 3 * v * d:
        raise AssertionError("Exercise 4: add nn.Transformer's two final LayerNorms (2 x 2 d_model).")
    base = 6 * (_layer_sizes(512, 2048, 1, 2) + _layer_sizes(512, 2048, 2, 3)) + 2 * 2 * 512 + 3 * v * 512
    if value == base:
        raise AssertionError("Exercise 4: that is the base model; the big one has d_model = 1024, d_ff = 4096.")
    assert value == expected, ("Exercise 4: not yet. N x (encoder layer + decoder layer) "
                               "+ 2 final LayerNorms + 3 vocab x d_model tables.")
    correct(4)


# ---------------------------------------------------------------- exercise 5: reversal as a matrix

def _pe(positions, d_model):
    """Sinusoidal positional encodings of (possibly negative) integer positions, by hand:
    PE[pos, 2i] = sin(pos w_i), PE[pos, 2i + 1] = cos(pos w_i), w_i = 10000^(-2i/d_model)."""
    pos = np.asarray(positions, dtype=np.float64)[:, None]
    w = 10000.0 ** (-np.arange(0, d_model, 2) / d_model)
    pe = np.empty((len(pos), d_model))
    pe[:, 0::2], pe[:, 1::2] = np.sin(pos * w), np.cos(pos * w)
    return pe


def _shift_matrix(k, d_model):
    """Chapter 5's rotation M_k: PE[pos] @ M_k = PE[pos + k]."""
    w = 10000.0 ** (-np.arange(0, d_model, 2) / d_model)
    m = np.zeros((d_model, d_model))
    for i, angle in enumerate(k * w):
        c, s = math.cos(angle), math.sin(angle)
        m[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[c, -s], [s, c]]
    return m


def check_exercise_5(reversal_matrix) -> None:
    """A function (a, d_model) -> F, a (d_model, d_model) array with PE[a - i] = PE[i] @ F for
    every position i; used as W^Q, it makes target position i attend to source position a - i."""
    if not_attempted(5, reversal_matrix):
        return
    if not callable(reversal_matrix):
        raise TypeError("Exercise 5: expected a function (a, d_model) -> (d_model, d_model) array")
    import torch

    from ..multi_head import multi_head_attention
    from ..positional import sinusoidal_positional_encoding

    for a, d in EXERCISE_5_CASES:
        f = as_array(5, reversal_matrix(a, d), (d, d), name=f"reversal_matrix({a}, {d})")
        positions = np.arange(a + 1)
        pe = _pe(positions, d)                                           # (a + 1, d)
        # the by-hand encodings are helpers' encodings, on both backends
        np.testing.assert_allclose(sinusoidal_positional_encoding(a + 1, d), pe, rtol=0, atol=1e-12)
        pe_t = sinusoidal_positional_encoding(a + 1, d, backend="torch", dtype=torch.float64)
        np.testing.assert_allclose(pe_t.numpy(), pe, rtol=0, atol=1e-12)
        got = pe @ f
        if np.allclose(got, pe[::-1], atol=1e-9):
            # the identity must hold for every integer position, not only 0..a
            others = np.arange(-3 * a - 5, 3 * a + 6)
            assert np.allclose(_pe(others, d) @ f, _pe(a - others, d), atol=1e-9), (
                f"Exercise 5: reversal_matrix({a}, {d}) maps PE[i] to PE[{a} - i] for i = 0..{a} only; "
                "F must depend on a and d_model alone and work for every position.")
            np.testing.assert_allclose((pe_t @ torch.tensor(f)).numpy(), pe[::-1], rtol=0, atol=1e-9)
            continue
        if np.allclose(got, _pe(positions + a, d), atol=1e-9):
            raise AssertionError(f"Exercise 5: reversal_matrix({a}, {d}) gives PE[i + {a}]: that is chapter 5's "
                                 "shift (a rotation). The reversal flips the sign of i: expand sin((a - i) w) and "
                                 "cos((a - i) w) with the angle-difference formulas.")
        if np.allclose(got, _pe(positions - a, d), atol=1e-9):
            raise AssertionError(f"Exercise 5: reversal_matrix({a}, {d}) gives PE[i - {a}], a shift back, "
                                 f"not PE[{a} - i].")
        if np.allclose(got, pe, atol=1e-9):
            raise AssertionError(f"Exercise 5: reversal_matrix({a}, {d}) leaves PE[i] unchanged.")
        raise AssertionError(f"Exercise 5: PE[i] @ reversal_matrix({a}, {d}) is not PE[{a} - i]. Work on one "
                             "pair of columns (sin(i w), cos(i w)) and find the 2 x 2 block that turns it into "
                             "(sin((a - i) w), cos((a - i) w)).")
    # used as W^Q (keys W^K = I), each target position i = 0..a attends most to source position a - i
    c = EXERCISE_5_ATTENTION
    a, n_src, d, scale = c["a"], c["n_src"], c["d_model"], c["scale"]
    f = as_array(5, reversal_matrix(a, d), (d, d), name=f"reversal_matrix({a}, {d})")
    target, source = _pe(np.arange(a + 1), d), _pe(np.arange(n_src), d)
    eye = np.eye(d)
    for backend in ("numpy", "torch"):
        args = [target, source, scale * f, scale * eye, eye, eye]
        if backend == "torch":
            args = [torch.tensor(x) for x in args]
        _, weights = multi_head_attention(*args, num_heads=1)
        weights = weights.numpy() if backend == "torch" else weights   # (1, a + 1, n_src)
        assert np.array_equal(weights[0].argmax(-1), a - np.arange(a + 1)), (
            f"Exercise 5: with W^Q = {scale:g} F ({backend}), the target positions should look at "
            f"source positions {list(a - np.arange(a + 1))}, got {list(weights[0].argmax(-1))}.")
    correct(5)
