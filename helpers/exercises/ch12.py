"""Checks for the exercises of chapter 12, "From 2017 to today".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong (naming a common slip where one explains
the answer), or prints "Exercise N: correct." and nothing else, so that a stored solution
gives no number away. The references are computed here in plain NumPy and with
torch.autograd, and for the two derivations also with :mod:`helpers` on both backends.
"""
from __future__ import annotations

import math

import numpy as np

from ._common import as_array, as_float, not_attempted

# Exercise 1: one token's vector, the gains, eps = 0.
EXERCISE_1_X = np.array([3.0, -1.0, 2.0, 0.0, -4.0, 1.0, 1.0, 2.0])
EXERCISE_1_GAMMA = np.array([1.0, 0.5, 2.0, 1.0, 1.0, -1.0, 0.25, 1.0])
# Exercise 3: Llama's rule for the SwiGLU width, for a model of this width.
EXERCISE_3 = dict(d_model=5120, multiple_of=256)
# Exercise 5: the KV cache of a grouped-query model serving a batch.
EXERCISE_5 = dict(layers=80, num_heads=64, num_kv_heads=8, d_k=128, n=8192, batch=4, bytes_per_number=2)
# Exercise 6: QK-norm's gains, d_k = 16.
EXERCISE_6_GAMMA_Q = np.array([1.0, 0.9, 1.1, 0.8, 1.0, 1.3, 0.7, 1.0,
                               0.95, 1.05, 1.2, 0.85, 1.0, 0.9, 1.1, 1.0])
EXERCISE_6_GAMMA_K = np.array([1.0, 1.0, 0.9, 1.4, 1.1, 0.6, 1.0, 0.8,
                               1.0, 1.2, 0.9, 1.0, 1.1, 1.0, 0.7, 1.0])


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


# ---------------------------------------------------------------- 1. RMSNorm by hand

def _rms_norm(x, gamma, eps=0.0):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * gamma


def check_exercise_1(answer) -> None:
    """RMSNorm of EXERCISE_1_X with EXERCISE_1_GAMMA and eps = 0."""
    if not_attempted(1, answer):
        return
    y = as_array(1, answer, EXERCISE_1_X.shape, "RMSNorm(x)")
    x, gamma = EXERCISE_1_X, EXERCISE_1_GAMMA
    expected = _rms_norm(x, gamma)
    close = lambda a: np.allclose(y, a, rtol=1e-9, atol=1e-12)
    if close(_rms_norm(x, np.ones_like(gamma))):
        raise AssertionError("Exercise 1: you normalised but did not multiply by gamma, feature by feature.")
    centred = x - x.mean()
    if close(centred / np.sqrt(np.mean(centred ** 2)) * gamma):
        raise AssertionError("Exercise 1: that is LayerNorm (you subtracted the mean). RMSNorm divides "
                             "x itself by the root of the mean of x^2.")
    if close(x / np.sqrt(np.sum(x * x)) * gamma):
        raise AssertionError("Exercise 1: you divided by the length sqrt(sum x^2); RMSNorm divides by the "
                             "root of the *mean* of x^2, which is sqrt(d) times smaller.")
    if close(x / np.mean(np.abs(x)) * gamma) or close(x / np.sqrt(np.mean(x * x)) ** 2 * gamma):
        raise AssertionError("Exercise 1: the denominator is sqrt(mean(x^2)): square, average, then take "
                             "the square root.")
    assert close(expected), ("Exercise 1: not RMSNorm(x). Compute r = sqrt(mean(x^2)) over the 8 "
                             "features, then x / r * gamma.")
    _correct(1)


# ---------------------------------------------------------------- 2. RMSNorm backward (derivation)

def _reference_grads(x, gamma, d_out, eps):
    """dx, dgamma from torch.autograd through the formula, and from helpers on both backends."""
    import torch

    from ..rms_norm import rms_norm_backward

    x_t = torch.tensor(x, requires_grad=True)
    g_t = torch.tensor(gamma, requires_grad=True)
    y = x_t / torch.sqrt((x_t * x_t).mean(dim=-1, keepdim=True) + eps) * g_t
    (y * torch.tensor(d_out)).sum().backward()
    autograd = (x_t.grad.numpy(), g_t.grad.numpy())
    by_helpers = rms_norm_backward(x, gamma, d_out, eps=eps)
    by_helpers_t = rms_norm_backward(torch.tensor(x), torch.tensor(gamma), torch.tensor(d_out), eps=eps)
    for a, b, c in zip(autograd, by_helpers, by_helpers_t):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(c.numpy(), a, rtol=1e-10, atol=1e-12)
    return autograd


def check_exercise_2(rms_norm_grad) -> None:
    """rms_norm_grad(x, gamma, d_output, eps) -> (dx, dgamma), tried on random inputs."""
    if not_attempted(2, rms_norm_grad):
        return
    if not callable(rms_norm_grad):
        raise TypeError("Exercise 2: pass your function rms_norm_grad itself (without calling it)")
    rng = np.random.default_rng(12)
    cases = [((6,), 0.0), ((4, 8), 1e-6), ((2, 3, 5), 0.1), ((3, 16), 1e-3)]
    for shape, eps in cases:
        x = rng.normal(size=shape) * 2 + 0.5
        gamma, d_out = rng.normal(size=shape[-1]), rng.normal(size=shape)
        try:
            d_x, d_gamma = rms_norm_grad(x.copy(), gamma.copy(), d_out.copy(), eps)
        except (TypeError, ValueError) as error:
            raise TypeError(f"Exercise 2: rms_norm_grad should return a pair (dx, dgamma); "
                            f"calling it failed with {type(error).__name__}: {error}") from None
        ref_x, ref_gamma = _reference_grads(x, gamma, d_out, eps)
        d_x = as_array(2, d_x, shape, f"dx for x of shape {shape}")
        if np.asarray(d_gamma).shape != (shape[-1],):
            raise AssertionError(f"Exercise 2: dgamma should have shape ({shape[-1]},), one number per "
                                 f"feature, got {np.asarray(d_gamma).shape}: sum d_output * x_hat over "
                                 "every row (all leading axes), since gamma is shared by every row.")
        d_gamma = as_array(2, d_gamma, (shape[-1],), "dgamma")
        r = np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
        x_hat, g = x / r, d_out * gamma
        layer_norm_like = (g - g.mean(axis=-1, keepdims=True)
                           - x_hat * np.mean(g * x_hat, axis=-1, keepdims=True)) / r
        if np.allclose(d_x, layer_norm_like, rtol=1e-8, atol=1e-10) and not np.allclose(ref_x, layer_norm_like):
            raise AssertionError("Exercise 2: your dx has LayerNorm's term - mean(g), the path through "
                                 "the mean. RMSNorm subtracts no mean, so that path does not exist.")
        if np.allclose(d_x, g / r, rtol=1e-8, atol=1e-10):
            raise AssertionError("Exercise 2: dx = g / r treats r as a constant; r depends on x too "
                                 "(dr/dx_j = x_j / (d r)), which gives a second term.")
        assert np.allclose(d_gamma, ref_gamma, rtol=1e-8, atol=1e-10), (
            "Exercise 2: dgamma is wrong. y = x_hat * gamma, so dgamma = the sum over rows of "
            "d_output * x_hat.")
        assert np.allclose(d_x, ref_x, rtol=1e-8, atol=1e-10), (
            f"Exercise 2: dx is wrong for x of shape {shape}, eps = {eps}. With g = d_output * gamma, "
            "differentiate x_hat_i = x_i / r with r = sqrt(mean(x^2) + eps) and sum g_i dx_hat_i/dx_j.")
    _correct(2)


# ---------------------------------------------------------------- 3. the SwiGLU width

def check_exercise_3(answer) -> None:
    """Llama's d_ff: int(8 d_model / 3) rounded up to a multiple of multiple_of."""
    if not_attempted(3, answer):
        return
    value = _as_whole(3, answer)
    d, multiple = EXERCISE_3["d_model"], EXERCISE_3["multiple_of"]
    raw = int(2 * (4 * d) / 3)
    expected = multiple * ((raw + multiple - 1) // multiple)
    if value == 4 * d:
        raise AssertionError("Exercise 3: 4 d_model is the width of the paper's ReLU FFN. SwiGLU has "
                             "three matrices instead of two, so its width is 2/3 of that.")
    if value in (raw, raw + 1):
        raise AssertionError("Exercise 3: that is 8/3 d_model itself; Llama then rounds it *up* to a "
                             "multiple of multiple_of.")
    if value == multiple * (raw // multiple):
        raise AssertionError("Exercise 3: you rounded down; the rule rounds up to the next multiple.")
    assert value == expected, ("Exercise 3: not the rule's width. Take int(2 * 4 d_model / 3), then "
                               "the smallest multiple of multiple_of that is not below it.")
    _correct(3)


# ---------------------------------------------------------------- 4. the score as a function of the offset (derivation)

def _rotate_by_hand(v, position, theta):
    d = v.shape[-1]
    out = v.copy()
    for m in range(d // 2):
        angle = position * theta ** (-2 * m / d)
        a, b = v[2 * m], v[2 * m + 1]
        out[2 * m] = a * math.cos(angle) - b * math.sin(angle)
        out[2 * m + 1] = a * math.sin(angle) + b * math.cos(angle)
    return out


def check_exercise_4(score_from_offset) -> None:
    """score_from_offset(q, k, offset, theta) = rot(q, i) . rot(k, i + offset), for every i."""
    if not_attempted(4, score_from_offset):
        return
    if not callable(score_from_offset):
        raise TypeError("Exercise 4: pass your function score_from_offset itself (without calling it)")
    import torch

    from ..rotary import apply_rotary

    rng = np.random.default_rng(4)
    for d, theta in ((2, 10000.0), (8, 10000.0), (16, 500.0), (12, 1e6)):
        q, k = rng.normal(size=d), rng.normal(size=d)
        for offset in (0, 1, -1, 5, -13, 77):
            got = as_float(4, score_from_offset(q.copy(), k.copy(), offset, theta))
            # the reference: rotate at actual positions i and j = i + offset, for several i
            for i in (100, 250):
                by_hand = _rotate_by_hand(q, i, theta) @ _rotate_by_hand(k, i + offset, theta)
                by_helpers = apply_rotary(q[None], [i], theta)[0] @ apply_rotary(k[None], [i + offset], theta)[0]
                by_torch = (apply_rotary(torch.tensor(q)[None], [i], theta)[0]
                            @ apply_rotary(torch.tensor(k)[None], [i + offset], theta)[0]).item()
                assert math.isclose(by_helpers, by_hand, abs_tol=1e-10)
                assert math.isclose(by_torch, by_hand, abs_tol=1e-10)
            flipped = _rotate_by_hand(q, 100, theta) @ _rotate_by_hand(k, 100 - offset, theta)
            if offset and math.isclose(got, flipped, abs_tol=1e-9) and not math.isclose(got, by_hand, abs_tol=1e-9):
                raise AssertionError("Exercise 4: you computed the score at offset -offset: k sits at "
                                     "j = i + offset, so rot(q, i) . rot(k, j) = q . rot(k, j - i), "
                                     "a rotation of k by +offset.")
            assert math.isclose(got, by_hand, rel_tol=1e-9, abs_tol=1e-9), (
                f"Exercise 4: wrong for d = {d}, theta = {theta}, offset = {offset}. Rotations compose by "
                "adding angles: rot(q, i) . rot(k, i + offset) = q . rot(k, offset).")
    _correct(4)


# ---------------------------------------------------------------- 5. the KV cache

def check_exercise_5(answer) -> None:
    """Bytes of the KV cache: 2 * layers * batch * n * num_kv_heads * d_k * bytes_per_number."""
    if not_attempted(5, answer):
        return
    value = _as_whole(5, answer)
    c = EXERCISE_5
    per_position = c["layers"] * c["d_k"] * c["bytes_per_number"]
    expected = 2 * per_position * c["num_kv_heads"] * c["n"] * c["batch"]
    if value == expected // 2:
        raise AssertionError("Exercise 5: half the answer. Either you counted keys only (the cache holds "
                             "keys *and* values: a factor 2) or you counted numbers instead of bytes "
                             "(bfloat16: 2 bytes each).")
    if value == 2 * per_position * c["num_heads"] * c["n"] * c["batch"]:
        raise AssertionError("Exercise 5: that is the cache of multi-head attention with 64 K/V heads; "
                             "grouped-query attention keeps only num_kv_heads of them.")
    if value == expected // c["batch"]:
        raise AssertionError("Exercise 5: that is one sequence; the batch holds several, each with its "
                             "own cache.")
    assert value == expected, ("Exercise 5: not the cache's size. Count, for every layer, every "
                               "sequence and every position, one key and one value vector of d_k "
                               "numbers per K/V head.")
    _correct(5)


# ---------------------------------------------------------------- 6. QK-norm's bound

def check_exercise_6(answer) -> None:
    """The largest |q_hat . k_hat| / sqrt(d_k) QK-norm allows (eps -> 0, no rotation)."""
    if not_attempted(6, answer):
        return
    value = as_float(6, answer)
    gq, gk = EXERCISE_6_GAMMA_Q, EXERCISE_6_GAMMA_K
    d_k = gq.size
    expected = math.sqrt(d_k) * float(np.max(np.abs(gq * gk)))
    loose = math.sqrt(d_k) * float(np.max(np.abs(gq))) * float(np.max(np.abs(gk)))
    if math.isclose(value, loose, rel_tol=1e-9):
        raise AssertionError("Exercise 6: sqrt(d_k) max|gamma_q| max|gamma_k| is a true bound, but no q "
                             "and k reach it here: the largest gamma_q and the largest gamma_k sit at "
                             "different features. Write the score as sum_i gamma_q,i gamma_k,i u_i v_i "
                             "with |u|^2, |v|^2 <= d_k.")
    if math.isclose(value, expected * math.sqrt(d_k), rel_tol=1e-9):
        raise AssertionError("Exercise 6: you left out the scaling 1/sqrt(d_k) of the scores.")
    if math.isclose(value, math.sqrt(d_k), rel_tol=1e-9):
        raise AssertionError("Exercise 6: sqrt(d_k) is the bound for gamma = 1; these gains are not all 1.")
    assert math.isclose(value, expected, rel_tol=1e-9), (
        "Exercise 6: not the largest reachable value. After RMSNorm each of u = q/rms(q) and "
        "v = k/rms(k) has squared length at most d_k; put all of it on the one feature where "
        "|gamma_q,i gamma_k,i| is largest.")
    _correct(6)


# ---------------------------------------------------------------- 7. the modern decoder's parameters (derivation)

# (vocab_size, d_model, num_layers, num_heads, num_kv_heads, d_ff, qk_norm): small and odd sizes,
# multi-head, grouped-query and multi-query, with and without QK-norm.
EXERCISE_7_CASES = [
    (65, 64, 4, 4, 4, 171, False),
    (65, 64, 4, 4, 2, 171, True),
    (50, 48, 3, 6, 3, 128, True),
    (1000, 96, 2, 8, 1, 256, False),
    (7, 16, 1, 2, 1, 40, True),
]


def _modern_reference(vocab_size, d_model, num_layers, num_heads, num_kv_heads, d_ff, qk_norm) -> int:
    """The count three ways that must agree: the formula written out here, helpers' formula
    (helpers.model.parameter_formula), and the entries of the tensors of a built model; the
    layers' shapes from helpers.layers on both backends."""
    import torch

    from ..layers import count_parameters as count_layer, init_layer_params
    from ..model import PRESETS, ModelConfig, build_model, count_parameters, parameter_formula

    d_k = d_model // num_heads
    attention = 2 * d_model * d_model + 2 * d_model * num_kv_heads * d_k + (2 * d_k if qk_norm else 0)
    layer = attention + 3 * d_model * d_ff + 2 * d_model             # W^Q..W^O (+ gains), W1 W3 W2, 2 gammas
    written_out = vocab_size * d_model + num_layers * layer + d_model  # tied table, layers, final norm
    config = ModelConfig(vocab_size=vocab_size, d_model=d_model, num_layers=num_layers, num_heads=num_heads,
                         max_len=8, **{**PRESETS["modern"], "d_ff": d_ff, "num_kv_heads": num_kv_heads,
                                       "qk_norm": qk_norm})
    state = torch.random.get_rng_state()
    try:
        built = count_parameters(build_model(config))
    finally:
        torch.random.set_rng_state(state)
    options = config.layer_options()
    per_layer = {backend: count_layer(init_layer_params(d_model, d_ff, rng=np.random.default_rng(0), backend=backend,
                                                        num_heads=num_heads, options=options, norm="pre"))
                 for backend in ("numpy", "torch")}
    if not written_out == parameter_formula(config) == built or set(per_layer.values()) != {layer}:
        raise RuntimeError("Exercise 7: the references disagree; please report this as a bug in the course")
    return written_out


def check_exercise_7(modern_parameter_count) -> None:
    """modern_parameter_count(vocab_size, d_model, num_layers, num_heads, num_kv_heads, d_ff, qk_norm)
    = the parameters of PRESETS["modern"] with these sizes, tried on several configurations."""
    if not_attempted(7, modern_parameter_count):
        return
    if not callable(modern_parameter_count):
        raise TypeError("Exercise 7: pass your function modern_parameter_count itself (without calling it)")
    for case in EXERCISE_7_CASES:
        vocab_size, d, layers, heads, kv_heads, d_ff, qk_norm = case
        got = _as_whole(7, modern_parameter_count(*case))
        expected = _modern_reference(*case)
        d_k = d // heads
        where = (f"for vocab_size={vocab_size}, d_model={d}, num_layers={layers}, num_heads={heads}, "
                 f"num_kv_heads={kv_heads}, d_ff={d_ff}, qk_norm={qk_norm}")
        if got == expected - d:
            raise AssertionError(f"Exercise 7: {where} you left out the final norm: pre-norm stacks add "
                                 "one more RMSNorm (d_model gains) after the last layer.")
        if kv_heads < heads and got == expected + 2 * layers * d * (heads - kv_heads) * d_k:
            raise AssertionError(f"Exercise 7: {where} you counted W^K and W^V as d_model x d_model; with "
                                 "grouped-query attention they have num_kv_heads * d_k columns.")
        if got == expected - layers * d * d_ff:
            raise AssertionError(f"Exercise 7: {where} you counted two FFN matrices; SwiGLU has three "
                                 "(W1, W3, W2).")
        if qk_norm and got == expected - 2 * layers * d_k:
            raise AssertionError(f"Exercise 7: {where} you left out QK-norm's gains: gamma_q and gamma_k, "
                                 "d_k numbers each, in every layer.")
        if qk_norm and got == expected + 2 * layers * (heads - 1) * d_k:
            raise AssertionError(f"Exercise 7: {where} you gave every head its own QK-norm gains; one "
                                 "gamma_q and one gamma_k (d_k each) are shared by the heads of a layer.")
        if got == expected + vocab_size * d:
            raise AssertionError(f"Exercise 7: {where} you counted a separate output projection; the "
                                 "modern preset ties it to the embedding table (one V x d_model table).")
        if got == expected + 2 * layers * d + d:
            raise AssertionError(f"Exercise 7: {where} you counted a beta in every norm; RMSNorm has "
                                 "only the gain gamma.")
        assert got == expected, (f"Exercise 7: wrong {where}. Count, per layer, W^Q and W^O (d_model x "
                                 "d_model), W^K and W^V (d_model x num_kv_heads d_k), the QK-norm gains "
                                 "if any, SwiGLU's three matrices and two RMSNorm gains; then the "
                                 "embedding table and the final norm.")
    _correct(7)
