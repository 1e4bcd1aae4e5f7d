"""The exercise checks of chapter 11 accept right answers and explain common wrong ones.

The right answers here are worked out independently of the checks: by torch.autograd and
F.cross_entropy, by closed forms of the geometric sums, or by counting parameters by hand.
"""
import math

import pytest
import torch

from helpers.exercises import ch11


def test_none_means_not_attempted(capsys):
    for n in range(1, 5):
        getattr(ch11, f"check_exercise_{n}")(None)
        assert f"Exercise {n}: not attempted yet" in capsys.readouterr().out


def test_ch11_exercise_1_parameter_count(capsys):
    c = ch11.EXERCISE_1_CONFIG
    d, d_ff, vocab, layers, max_len = c["d_model"], c["d_ff"], c["vocab_size"], c["num_layers"], c["max_len"]
    per_layer = (4 * d * d + 4 * d) + (2 * d * d_ff + d_ff + d) + 2 * (2 * d)
    total = layers * per_layer + vocab * d + max_len * d + 2 * d
    ch11.check_exercise_1(total)
    assert "correct" in capsys.readouterr().out
    for wrong, hint in ((total + vocab * d, "tied"), (total - max_len * d, "learned positions"),
                        (total - 2 * d, "one more LayerNorm"), (total + 1, "got"), (total + 0.5, "whole")):
        with pytest.raises(AssertionError, match=hint):
            ch11.check_exercise_1(wrong)
    with pytest.raises(TypeError, match="expected a number"):
        ch11.check_exercise_1("many")


def test_ch11_exercise_2_entropy_rate(capsys):
    # Stationary distribution of [[0.9, 0.1], [0.5, 0.5]]: pi = (5/6, 1/6).
    h = lambda p: -p * math.log(p) - (1 - p) * math.log(1 - p)  # noqa: E731
    rate = 5 / 6 * h(0.1) + 1 / 6 * h(0.5)
    ch11.check_exercise_2(rate)
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="bits"):
        ch11.check_exercise_2(rate / math.log(2))
    with pytest.raises(AssertionError, match="stationary"):
        ch11.check_exercise_2(0.5 * h(0.1) + 0.5 * h(0.5))
    with pytest.raises(TypeError, match="expected a number"):
        ch11.check_exercise_2([rate])


def test_ch11_exercise_3_top_k(capsys):
    def top_k_probabilities(logits, k, temperature):
        values, indices = torch.topk(logits / temperature, k, dim=-1)
        out = torch.zeros_like(logits)
        return out.scatter(-1, indices, torch.softmax(values, dim=-1))
    ch11.check_exercise_3(top_k_probabilities)
    assert "correct" in capsys.readouterr().out

    def not_renormalised(logits, k, temperature):
        kept = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, logits.topk(k, -1).indices, True)
        return torch.softmax(logits / temperature, -1) * kept
    with pytest.raises(AssertionError, match="renormalise"):
        ch11.check_exercise_3(not_renormalised)
    with pytest.raises(TypeError, match="function"):
        ch11.check_exercise_3(3)


def test_ch11_exercise_4_kv_cache_rows(capsys):
    prompt, new = ch11.EXERCISE_4_PROMPT, ch11.EXERCISE_4_NEW
    without = sum(prompt + t for t in range(new))    # pass t+1 reads prompt + t tokens
    with_cache = prompt + (new - 1)                  # the prompt once, then one token per pass
    ch11.check_exercise_4((without, with_cache))
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="wrong way round"):
        ch11.check_exercise_4((with_cache, without))
    with pytest.raises(AssertionError, match="with the cache"):
        ch11.check_exercise_4((without, prompt + new))
    with pytest.raises(TypeError, match="pair"):
        ch11.check_exercise_4(7)
