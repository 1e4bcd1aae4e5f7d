"""The exercise checks of chapter 1 accept the right answer, refuse wrong ones, and say only
"Exercise N: correct." when right (no digit but the exercise number: no answer given away)."""
import re

import numpy as np
import pytest
import torch

from helpers.byte_bpe import pretokenize
from helpers.exercises import ch01
from helpers.tokenizers import SAMPLE_TEXT, BytePairTokenizer


def correct_only(capsys, n):
    out = capsys.readouterr().out
    assert out == f"Exercise {n}: correct.\n"
    assert not re.search(r"\d", out.replace(f"Exercise {n}", ""))


def test_none_means_not_attempted(capsys):
    for n in range(1, 7):
        getattr(ch01, f"check_exercise_{n}")(None)
        assert f"Exercise {n}: not attempted yet" in capsys.readouterr().out


def test_exercise_1(capsys):
    ch01.check_exercise_1(["b", "an", "an", "a", " ", "b", "an", "d", "an", "a"])
    correct_only(capsys, 1)
    with pytest.raises(AssertionError, match=r"merged \(n, a\)"):
        ch01.check_exercise_1(["b", "a", "na", "na", " ", "b", "a", "n", "d", "a", "na"])
    with pytest.raises(AssertionError, match="EVERY occurrence"):
        ch01.check_exercise_1(["b", "an", "an", "a", " ", "b", "a", "n", "d", "a", "n", "a"])
    with pytest.raises(AssertionError, match="join to"):
        ch01.check_exercise_1(["banana"])


def test_exercise_2(capsys):
    x = np.zeros((4, 6))
    x[[0, 1, 2, 3], [4, 0, 4, 2]] = 1
    ch01.check_exercise_2(x)
    correct_only(capsys, 2)
    with pytest.raises(AssertionError, match="column convention"):
        ch01.check_exercise_2(x.T)
    with pytest.raises(AssertionError, match="ids are"):
        ch01.check_exercise_2(np.eye(6)[[4, 0, 2, 4]])


def test_exercise_3(capsys):
    ch01.check_exercise_3(37000 * 512 * 2)          # three matrices of 37000 x 512 become one
    correct_only(capsys, 3)
    with pytest.raises(AssertionError, match="one matrix's worth"):
        ch01.check_exercise_3(37000 * 512)
    with pytest.raises(AssertionError, match="three matrices cost together"):
        ch01.check_exercise_3(3 * 37000 * 512)
    with pytest.raises(TypeError):
        ch01.check_exercise_3(3.5)


def test_exercise_4_accepts_exactly_the_fewest_merges(capsys):
    # the answer computed here, independently of the check: train, then count tokens per k
    tok = BytePairTokenizer().train(SAMPLE_TEXT, 200)
    sentence = "The keeper wrote the weather down every morning."
    fewest = next(k for k in range(len(tok.merges) + 1) if len(tok.with_merges(k).encode(sentence)) <= 12)
    ch01.check_exercise_4(fewest)
    correct_only(capsys, 4)
    with pytest.raises(AssertionError, match="find the fewest"):
        ch01.check_exercise_4(fewest + 1)
    with pytest.raises(AssertionError, match="still has"):
        ch01.check_exercise_4(fewest - 1)
    with pytest.raises(AssertionError, match="still has"):
        ch01.check_exercise_4(0)


def _right_5(ids, grad_x, hidden, grad_logits, vocab_size):
    # the one-hot way, another route than the check's scatter-add
    d_model = grad_x.shape[1]
    one_hot = np.eye(vocab_size)[ids]                      # (n, |V|)
    return np.sqrt(d_model) * one_hot.T @ grad_x + grad_logits.T @ hidden


def _torch_5(ids, grad_x, hidden, grad_logits, vocab_size):
    # a torch answer is welcome too
    d_model = grad_x.shape[1]
    g = torch.zeros(vocab_size, d_model, dtype=torch.float64)
    g.index_add_(0, torch.as_tensor(ids), torch.as_tensor(grad_x) * d_model ** 0.5)
    return g + torch.as_tensor(grad_logits).T @ torch.as_tensor(hidden)


def test_exercise_5_accepts_the_derived_gradient(capsys):
    ch01.check_exercise_5(_right_5)
    correct_only(capsys, 5)
    ch01.check_exercise_5(_torch_5)
    correct_only(capsys, 5)


def test_exercise_5_agrees_with_autograd_of_nn_embedding():
    # the check's reference against nn.Embedding and nn.Linear with a shared weight
    ids, grad_x, hidden, grad_logits, vocab_size = ch01._exercise_5_case(3)
    d_model = grad_x.shape[1]
    embed = torch.nn.Embedding(vocab_size, d_model, dtype=torch.float64)
    out = torch.nn.Linear(d_model, vocab_size, bias=False, dtype=torch.float64)
    out.weight = embed.weight
    x = embed(torch.as_tensor(ids)) * d_model ** 0.5
    loss = (x * torch.as_tensor(grad_x)).sum() + (out(torch.as_tensor(hidden)) * torch.as_tensor(grad_logits)).sum()
    loss.backward()
    np.testing.assert_allclose(embed.weight.grad.numpy(),
                               _right_5(ids, grad_x, hidden, grad_logits, vocab_size), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("wrong, message", [
    (lambda i, gx, h, gl, v: _right_5(i, gx, h, gl, v) - gl.T @ h, "input side only"),
    (lambda i, gx, h, gl, v: gl.T @ h, "output side only"),
    (lambda i, gx, h, gl, v: np.eye(v)[i].T @ gx + gl.T @ h, "factor sqrt"),
    (lambda i, gx, h, gl, v: _overwrite(i, gx, v) + gl.T @ h, "SUM"),
    (lambda i, gx, h, gl, v: _right_5(i, gx, h, gl, v) + 1e-3, "differs from autograd"),
    (lambda i, gx, h, gl, v: _right_5(i, gx, h, gl, v).T, "should have shape"),
])
def test_exercise_5_refuses_the_usual_slips(wrong, message):
    with pytest.raises(AssertionError, match=message):
        ch01.check_exercise_5(wrong)


def _overwrite(ids, grad_x, vocab_size):
    g = np.zeros((vocab_size, grad_x.shape[1]))
    g[ids] = np.sqrt(grad_x.shape[1]) * grad_x
    return g


def test_exercise_5_needs_a_function():
    with pytest.raises(TypeError, match="expected a function"):
        ch01.check_exercise_5(np.zeros((7, 4)))


def test_exercise_6(capsys):
    # by hand: contractions 'll and 't; a space joins the word after it; digits apart from ':';
    # of the two spaces before "won", the first is a word of its own
    right = ["We", "'ll", " sail", " at", " 6", ":", "30", ",", " ", " won", "'t", " we", "?"]
    assert right == pretokenize(ch01.EXERCISE_6_TEXT)      # the module's pattern agrees
    ch01.check_exercise_6(right)
    correct_only(capsys, 6)
    with pytest.raises(AssertionError, match="contractions"):
        ch01.check_exercise_6(["We", "'", "ll", " sail", " at", " 6", ":", "30", ",", " ", " won", "'t", " we", "?"])
    with pytest.raises(AssertionError, match="ends the digit run"):
        ch01.check_exercise_6(["We", "'ll", " sail", " at", " 6:30", ",", " ", " won", "'t", " we", "?"])
    with pytest.raises(AssertionError, match="last space"):
        ch01.check_exercise_6(["We", "'ll", " sail", " at", " 6", ":", "30", ",", "  ", "won", "'t", " we", "?"])
    with pytest.raises(AssertionError, match="AFTER"):
        ch01.check_exercise_6(["We", "'ll ", "sail ", "at", " 6", ":", "30", ",", " ", " won", "'t", " we", "?"])
    with pytest.raises(AssertionError, match="join to"):
        ch01.check_exercise_6(["We'll"])
