"""The exercise checks of chapters 8, 9 and 11 accept right answers and explain common wrong ones.

The right answers here are worked out independently of the checks: by torch.autograd and
F.cross_entropy, by closed forms of the geometric sums, or by counting parameters by hand.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.exercises import ch08, ch09, ch11

ALL_CHECKS = [getattr(module, f"check_exercise_{n}") for module in (ch08, ch09, ch11) for n in (1, 2, 3, 4)]


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: f"{c.__module__.rsplit('.', 1)[-1]}.{c.__name__}")
def test_none_is_not_attempted(check, capsys):
    check(None)
    assert "not attempted yet" in capsys.readouterr().out


# ---------------------------------------------------------------- chapter 8

def test_ch08_exercise_1_perplexity(capsys):
    logits = torch.tensor(ch08.EXERCISE_1_LOGITS)
    targets = torch.tensor(ch08.EXERCISE_1_TARGETS)
    loss = F.cross_entropy(logits, targets).item()
    ch08.check_exercise_1(math.exp(loss))
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="sum"):
        ch08.check_exercise_1(math.exp(3 * loss))
    with pytest.raises(AssertionError, match="exp\\(loss\\)"):
        ch08.check_exercise_1(loss)
    with pytest.raises(TypeError, match="expected a number"):
        ch08.check_exercise_1("perplexity")


def test_ch08_exercise_2_smoothed_gradient(capsys):
    z = torch.tensor(ch08.EXERCISE_2_LOGITS, requires_grad=True)
    target = torch.tensor([ch08.EXERCISE_2_TARGET])
    F.cross_entropy(z[None], target, label_smoothing=ch08.EXERCISE_2_SMOOTHING).backward()
    ch08.check_exercise_2(z.grad)
    assert "correct" in capsys.readouterr().out
    z_plain = torch.tensor(ch08.EXERCISE_2_LOGITS, requires_grad=True)
    F.cross_entropy(z_plain[None], target).backward()
    with pytest.raises(AssertionError, match="without label smoothing"):
        ch08.check_exercise_2(z_plain.grad)
    with pytest.raises(AssertionError, match="sign"):
        ch08.check_exercise_2(-z.grad)
    with pytest.raises(AssertionError, match="shape"):
        ch08.check_exercise_2(np.zeros(4))


def test_ch08_exercise_3_linear_backward(capsys):
    x, w, d_y = ch08.EXERCISE_3_X, ch08.EXERCISE_3_W, ch08.EXERCISE_3_D_Y
    ch08.check_exercise_3((d_y @ w.T, x.T @ d_y, d_y.sum(axis=0)))
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="db"):
        ch08.check_exercise_3((d_y @ w.T, x.T @ d_y, d_y.mean(axis=0)))
    with pytest.raises(AssertionError, match="dW should have shape"):
        ch08.check_exercise_3((d_y @ w.T, d_y.T @ x, d_y.sum(axis=0)))
    with pytest.raises(TypeError, match="tuple"):
        ch08.check_exercise_3(d_y @ w.T)


def test_ch08_exercise_4_smoothing_floor(capsys):
    eps, vocab = ch08.EXERCISE_4_SMOOTHING, ch08.EXERCISE_4_VOCAB
    q = np.full(vocab, eps / vocab)
    q[0] += 1 - eps
    assert math.isclose(q.sum(), 1.0, rel_tol=1e-12)
    ch08.check_exercise_4(float(-(q * np.log(q)).sum()))
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="without"):
        ch08.check_exercise_4(0)
    with pytest.raises(AssertionError, match="entropy"):
        ch08.check_exercise_4(1.0)


# ---------------------------------------------------------------- chapter 9

def test_ch09_exercise_1_uncorrected_first_step(capsys):
    ch09.check_exercise_1(0.1 / math.sqrt(0.02))     # m_1 = 0.1 g, v_1 = 0.02 g^2
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="with\\* bias correction"):
        ch09.check_exercise_1(1.0)
    with pytest.raises(AssertionError, match="sqrt"):
        ch09.check_exercise_1(0.1 / 0.02)


def test_ch09_exercise_2_peak(capsys):
    ch09.check_exercise_2((2000, (256 * 2000) ** -0.5))
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="not at step"):
        ch09.check_exercise_2((1999, (256 * 2000) ** -0.5))
    with pytest.raises(AssertionError, match="rate"):
        ch09.check_exercise_2((2000, 2000 ** -0.5))
    with pytest.raises(TypeError, match="pair"):
        ch09.check_exercise_2(2000)


def _schedule(step):
    return 512 ** -0.5 * min(step ** -0.5, step * 4000 ** -1.5)


def test_ch09_exercise_3_lambda_lr(capsys):
    ch09.check_exercise_3(lambda epoch: _schedule(epoch + 1))
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="epoch 0"):
        ch09.check_exercise_3(_schedule)
    with pytest.raises(AssertionError, match="one step ahead"):
        ch09.check_exercise_3(lambda epoch: _schedule(epoch + 2))
    with pytest.raises(TypeError, match="function"):
        ch09.check_exercise_3(0.001)


def test_ch09_exercise_4_variance_of_v_hat(capsys):
    b, t = ch09.EXERCISE_4_BETA2, ch09.EXERCISE_4_STEP
    # sum_s w_s^2 with w_s = (1-b) b^(t-s) / (1-b^t) is a geometric series in b^2.
    sum_squares = ((1 - b) / (1 - b ** t)) ** 2 * (1 - b ** (2 * t)) / (1 - b ** 2)
    ch09.check_exercise_4(2 * sum_squares)
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="plain average"):
        ch09.check_exercise_4(2 / t)
    with pytest.raises(AssertionError, match="got"):
        ch09.check_exercise_4(2 * sum_squares * 1.01)


# ---------------------------------------------------------------- chapter 11

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
