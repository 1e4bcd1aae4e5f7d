"""The exercise checks of chapter 11 accept right answers, explain common wrong ones, and give
nothing away: a right answer prints "Exercise N: correct." and no number.

The right answers here are worked out independently of the checks: by counting parameters by
hand, by a product over the prefix written out term by term, by the closed form of the
geometric sums, and by solving the length-penalty equation with logarithms.
"""
import math
import re

import pytest
import torch

from helpers.exercises import ch11


def correct_only(capsys, n):
    out = capsys.readouterr().out
    assert out == f"Exercise {n}: correct.\n"
    assert not re.search(r"\d", out.replace(f"Exercise {n}", ""))


def test_none_means_not_attempted(capsys):
    for n in range(1, 6):
        getattr(ch11, f"check_exercise_{n}")(None)
        assert f"Exercise {n}: not attempted yet" in capsys.readouterr().out


def test_exercise_1_parameter_count(capsys):
    c = ch11.EXERCISE_1_CONFIG
    d, d_ff, vocab, layers, max_len = c["d_model"], c["d_ff"], c["vocab_size"], c["num_layers"], c["max_len"]
    per_layer = (4 * d * d + 4 * d) + (2 * d * d_ff + d_ff + d) + 2 * (2 * d)
    total = layers * per_layer + vocab * d + max_len * d + 2 * d
    ch11.check_exercise_1(total)
    correct_only(capsys, 1)
    for wrong, hint in ((total + vocab * d, "tied"), (total - max_len * d, "learned positions"),
                        (total - 2 * d, "one more LayerNorm"), (total + 1, "got"), (total + 0.5, "whole")):
        with pytest.raises(AssertionError, match=hint):
            ch11.check_exercise_1(wrong)
    with pytest.raises(TypeError, match="expected a number"):
        ch11.check_exercise_1("many")


def bound_term_by_term(v, m, k):
    total = 0.0
    for t in range(1, m):            # the prefix: V - t symbols left
        total += math.log(v - t)
    total += math.log(m - k + 1)     # the offset of the copy
    return total / (m + k - 1)


def test_exercise_2_copy_corpus_bound(capsys):
    ch11.check_exercise_2(bound_term_by_term)
    correct_only(capsys, 2)
    with pytest.raises(AssertionError, match="n - 1 targets"):
        ch11.check_exercise_2(lambda v, m, k: bound_term_by_term(v, m, k) * (m + k - 1) / (m + k))
    with pytest.raises(AssertionError, match="offset"):
        ch11.check_exercise_2(lambda v, m, k: sum(math.log(v - t) for t in range(1, m)) / (m + k - 1))
    with pytest.raises(AssertionError, match="V - t"):
        ch11.check_exercise_2(lambda v, m, k: ((m - 1) * math.log(v) + math.log(m - k + 1)) / (m + k - 1))
    with pytest.raises(AssertionError, match="V = "):
        ch11.check_exercise_2(lambda v, m, k: 1.0)
    with pytest.raises(TypeError, match="function"):
        ch11.check_exercise_2(1.5)


def test_exercise_2_enumeration_matches_the_term_by_term_sum():
    for v, m, k in ((4, 3, 2), (5, 2, 1), (3, 3, 3)):
        assert math.isclose(ch11.enumerated_copy_bound(v, m, k), bound_term_by_term(v, m, k), rel_tol=1e-12)


def test_exercise_3_top_k(capsys):
    def top_k_probabilities(logits, k, temperature):
        values, indices = torch.topk(logits / temperature, k, dim=-1)
        out = torch.zeros_like(logits)
        return out.scatter(-1, indices, torch.softmax(values, dim=-1))
    ch11.check_exercise_3(top_k_probabilities)
    correct_only(capsys, 3)

    def not_renormalised(logits, k, temperature):
        kept = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, logits.topk(k, -1).indices, True)
        return torch.softmax(logits / temperature, -1) * kept
    with pytest.raises(AssertionError, match="renormalise"):
        ch11.check_exercise_3(not_renormalised)
    with pytest.raises(TypeError, match="function"):
        ch11.check_exercise_3(3)


def test_exercise_4_kv_cache_rows(capsys):
    prompt, new = ch11.EXERCISE_4_PROMPT, ch11.EXERCISE_4_NEW
    without = prompt * new + new * (new - 1) // 2    # sum of prompt + t over t = 0 .. new - 1
    with_cache = prompt + (new - 1)                  # the prompt once, then one token per pass
    ch11.check_exercise_4((without, with_cache))
    correct_only(capsys, 4)
    with pytest.raises(AssertionError, match="wrong way round"):
        ch11.check_exercise_4((with_cache, without))
    with pytest.raises(AssertionError, match="with the cache"):
        ch11.check_exercise_4((without, prompt + new))
    with pytest.raises(AssertionError, match="without the cache"):
        ch11.check_exercise_4((without + 1, with_cache))
    with pytest.raises(TypeError, match="pair"):
        ch11.check_exercise_4(7)


def tie_by_logarithms(log_p_short, len_short, log_p_long, len_long):
    # log_p_short / ((5 + a) / 6)^alpha = log_p_long / ((5 + b) / 6)^alpha
    return math.log(log_p_long / log_p_short) / math.log((5 + len_long) / (5 + len_short))


def test_exercise_5_length_penalty_tie(capsys):
    ch11.check_exercise_5(tie_by_logarithms)
    correct_only(capsys, 5)
    with pytest.raises(AssertionError, match=r"\(5 \+ \|Y\|\)"):
        ch11.check_exercise_5(lambda a, la, b, lb: math.log(b / a) / math.log(lb / la))
    with pytest.raises(AssertionError, match="sign"):
        ch11.check_exercise_5(lambda *args: -tie_by_logarithms(*args))
    with pytest.raises(AssertionError, match="alpha"):
        ch11.check_exercise_5(lambda *args: 0.6)
    with pytest.raises(TypeError, match="function"):
        ch11.check_exercise_5(0.6)
