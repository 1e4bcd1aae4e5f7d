"""Checks for the exercises of chapter 1, "Tokens and embeddings".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong (and, where a common slip explains the
answer, which slip), or prints "Exercise N: correct." and nothing else, so that a stored
solution never shows the answer. Reference values are worked out by hand in the comments,
or computed here in plain Python/NumPy.
"""
from __future__ import annotations

import numpy as np

from ._common import as_array, correct, not_attempted

# Exercise 1: the first BPE merge on a tiny text.
EXERCISE_1_TEXT = "banana bandana"
# Pieces "banana" and " bandana". Pair counts: (a,n) 2+2 = 4, (n,a) 2+1 = 3, (b,a) 1+1 = 2,
# (' ',b) 1, (n,d) 1, (d,a) 1. The most frequent pair is (a, n).
_EXERCISE_1_EXPECTED = ["b", "an", "an", "a", " ", "b", "an", "d", "an", "a"]

# Exercise 2: the one-hot matrix of a few token ids.
EXERCISE_2_VOCAB_SIZE = 6
EXERCISE_2_IDS = [4, 0, 4, 2]
EXERCISE_2_W_E = np.arange(EXERCISE_2_VOCAB_SIZE * 3, dtype=np.float64).reshape(EXERCISE_2_VOCAB_SIZE, 3) / 10

# Exercise 3: the parameters saved by tying all three matrices of the paper's base model.
EXERCISE_3_VOCAB_SIZE = 37000   # the paper's shared English-German BPE vocabulary
EXERCISE_3_D_MODEL = 512

# Exercise 4: the fewest merges that bring a sentence down to a number of tokens.
EXERCISE_4_SENTENCE = "The keeper wrote the weather down every morning."
EXERCISE_4_MAX_TOKENS = 12
EXERCISE_4_TRAINED_MERGES = 200

# Exercise 5 (derivation): the gradient of a tied embedding matrix.
EXERCISE_5_TRIALS = 5

# Exercise 6: GPT-2's pre-tokenization of a sentence, by hand.
EXERCISE_6_TEXT = "We'll sail at 6:30,  won't we?"
# 'll and 't are contractions; " sail", " at", " won", " we" take their leading space;
# "6" and "30" are digit runs apart from ":"; before "won" the run of two spaces keeps one
# space for itself and leaves the other to the word.
_EXERCISE_6_EXPECTED = ["We", "'ll", " sail", " at", " 6", ":", "30", ",", " ", " won", "'t", " we", "?"]


def check_exercise_1(answer) -> None:
    """The segmentation of EXERCISE_1_TEXT after one BPE merge, as a list of strings."""
    if not_attempted(1, answer):
        return
    if not isinstance(answer, (list, tuple)) or not all(isinstance(t, str) for t in answer):
        raise TypeError(f"Exercise 1: expected a list of strings (the tokens), got {type(answer).__name__}")
    answer = list(answer)
    assert "".join(answer) == EXERCISE_1_TEXT, (
        f"Exercise 1: your tokens join to {''.join(answer)!r}, not the text {EXERCISE_1_TEXT!r}; "
        "a merge joins neighbours, it never drops or adds characters.")
    if "na" in answer and "an" not in answer:
        raise AssertionError("Exercise 1: you merged (n, a). Count again: (a, n) occurs 4 times "
                             "(twice in each word), (n, a) only 3 times.")
    if "an" in answer and answer.count("an") < 4:
        raise AssertionError("Exercise 1: a merge replaces EVERY occurrence of the pair, left to "
                             f"right, in every piece; you merged {answer.count('an')} of the 4.")
    assert answer == _EXERCISE_1_EXPECTED, (
        f"Exercise 1: got {answer}. Count the adjacent pairs in 'banana' and ' bandana', take the "
        "most frequent one and join each of its occurrences into one token.")
    correct(1)


def check_exercise_2(answer) -> None:
    """The one-hot matrix X (len(ids), vocab_size) with X @ W_e == W_e[ids]."""
    if not_attempted(2, answer):
        return
    x = np.asarray(answer, dtype=np.float64)
    n, v = len(EXERCISE_2_IDS), EXERCISE_2_VOCAB_SIZE
    if x.shape == (v, n):
        raise AssertionError(f"Exercise 2: your matrix has shape {x.shape}, the column convention "
                             f"(one column per token). With row vectors it is ({n}, {v}): one row per token.")
    assert x.shape == (n, v), f"Exercise 2: expected shape ({n}, {v}), one row per token id, got {x.shape}"
    assert np.all((x == 0) | (x == 1)) and np.all(x.sum(axis=1) == 1), (
        "Exercise 2: each row of a one-hot matrix holds a single 1 and zeros elsewhere.")
    assert list(x.argmax(axis=1)) == EXERCISE_2_IDS, (
        f"Exercise 2: row r must have its 1 in column ids[r]; your 1s are in columns "
        f"{list(x.argmax(axis=1))}, the ids are {EXERCISE_2_IDS}.")
    np.testing.assert_array_equal(x @ EXERCISE_2_W_E, EXERCISE_2_W_E[EXERCISE_2_IDS])
    correct(2)


def check_exercise_3(answer) -> None:
    """Parameters saved by one shared matrix instead of three (|V| = 37000, d_model = 512)."""
    if not_attempted(3, answer):
        return
    if isinstance(answer, bool) or not isinstance(answer, (int, np.integer)):
        raise TypeError(f"Exercise 3: expected an integer number of parameters, got {type(answer).__name__}")
    one = EXERCISE_3_VOCAB_SIZE * EXERCISE_3_D_MODEL
    if answer == one:
        raise AssertionError("Exercise 3: that is one matrix's worth. Three matrices (encoder input, "
                             "decoder input, pre-softmax) become one: two of them are saved.")
    if answer == 3 * one:
        raise AssertionError("Exercise 3: that is what the three matrices cost together; the "
                             "saving is what is left out when they become one.")
    assert answer == 2 * one, f"Exercise 3: got {answer}; each matrix has |V| * d_model entries."
    correct(3)


def _tokens_with(merges: int) -> tuple[int, int]:
    """(tokens of the sentence with `merges` merges, merges learned in all)."""
    from ..tokenizers import SAMPLE_TEXT, BytePairTokenizer
    tokenizer = BytePairTokenizer().train(SAMPLE_TEXT, EXERCISE_4_TRAINED_MERGES)
    return len(tokenizer.with_merges(merges).encode(EXERCISE_4_SENTENCE)), len(tokenizer.merges)


def check_exercise_4(answer) -> None:
    """The fewest merges (of the chapter's tokenizer) giving EXERCISE_4_SENTENCE <= 12 tokens."""
    if not_attempted(4, answer):
        return
    if isinstance(answer, bool) or not isinstance(answer, (int, np.integer)):
        raise TypeError(f"Exercise 4: expected an integer number of merges, got {type(answer).__name__}")
    answer = int(answer)
    learned = _tokens_with(0)[1]
    assert 0 <= answer <= learned, f"Exercise 4: the tokenizer learned {learned} merges; got {answer}"
    tokens, _ = _tokens_with(answer)
    assert tokens <= EXERCISE_4_MAX_TOKENS, (
        f"Exercise 4: with {answer} merges the sentence still has {tokens} tokens "
        f"(more than {EXERCISE_4_MAX_TOKENS}); use more merges.")
    if answer > 0:
        before, _ = _tokens_with(answer - 1)
        assert before > EXERCISE_4_MAX_TOKENS, (
            f"Exercise 4: {answer} merges work, but so do {answer - 1} ({before} tokens): "
            "find the fewest.")
    correct(4)


# --------------------------------------------------------------------------- exercise 5

def _exercise_5_case(seed: int):
    """Random ids (with repeats and absent tokens), upstream gradients and hidden states."""
    rng = np.random.default_rng(seed)
    vocab_size, d_model, n = 7, 4, 9
    ids = rng.integers(0, vocab_size - 2, size=n)          # tokens 5 and 6 never occur
    ids[1] = ids[0]                                        # at least one repeat
    grad_x = rng.normal(size=(n, d_model))
    hidden = rng.normal(size=(n, d_model))
    grad_logits = rng.normal(size=(n, vocab_size))
    return ids, grad_x, hidden, grad_logits, vocab_size


def _exercise_5_autograd(ids, grad_x, hidden, grad_logits, vocab_size):
    """dL/dW_e by torch autograd, for L = sum(X * grad_x) + sum(logits * grad_logits) with
    X = sqrt(d_model) * Embedding(ids) + PE and logits = hidden @ W_e^T (tied)."""
    import torch
    import torch.nn.functional as F

    from ..positional import sinusoidal_positional_encoding

    n, d_model = grad_x.shape
    w_e = torch.zeros(vocab_size, d_model, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        w_e.normal_(generator=torch.Generator().manual_seed(0))
    pe = sinusoidal_positional_encoding(n, d_model, backend="torch", dtype=torch.float64)   # (n, d_model)
    x = d_model ** 0.5 * F.embedding(torch.as_tensor(ids), w_e) + pe                         # (n, d_model)
    logits = torch.as_tensor(hidden) @ w_e.T                                                 # (n, |V|)
    loss = (x * torch.as_tensor(grad_x)).sum() + (logits * torch.as_tensor(grad_logits)).sum()
    loss.backward()
    return w_e.grad.numpy()


def _exercise_5_by_hand(ids, grad_x, hidden, grad_logits, vocab_size):
    """sqrt(d) O^T G_X (a scatter-add of rows) + G_logits^T H."""
    d_model = grad_x.shape[1]
    grad = np.zeros((vocab_size, d_model))
    np.add.at(grad, ids, d_model ** 0.5 * grad_x)          # (|V|, d_model)
    return grad + grad_logits.T @ hidden                   # (|V|, n)(n, d_model)


def check_exercise_5(tied_embedding_grad) -> None:
    """A function (ids, grad_x, hidden, grad_logits, vocab_size) -> dL/dW_e, shape (|V|, d_model)."""
    if not_attempted(5, tied_embedding_grad):
        return
    if not callable(tied_embedding_grad):
        raise TypeError(f"Exercise 5: expected a function, got {type(tied_embedding_grad).__name__}")
    for trial in range(EXERCISE_5_TRIALS):
        ids, grad_x, hidden, grad_logits, vocab_size = _exercise_5_case(trial)
        d_model = grad_x.shape[1]
        expected = _exercise_5_autograd(ids, grad_x, hidden, grad_logits, vocab_size)
        np.testing.assert_allclose(_exercise_5_by_hand(ids, grad_x, hidden, grad_logits, vocab_size),
                                   expected, rtol=1e-12, atol=1e-12)
        got = tied_embedding_grad(ids.copy(), grad_x.copy(), hidden.copy(), grad_logits.copy(), vocab_size)
        got = as_array(5, got, (vocab_size, d_model), "the gradient")
        if np.allclose(got, expected, rtol=1e-9, atol=1e-9):
            continue
        output_side = grad_logits.T @ hidden
        input_side = expected - output_side
        overwritten = np.zeros((vocab_size, d_model))
        overwritten[ids] = d_model ** 0.5 * grad_x
        if np.allclose(got, input_side, atol=1e-9):
            raise AssertionError("Exercise 5: you have the input side only. W_e is also the output "
                                 "layer (logits = H W_e^T): add the gradient it gets there.")
        if np.allclose(got, output_side, atol=1e-9):
            raise AssertionError("Exercise 5: you have the output side only. W_e is also the input "
                                 "table (X = sqrt(d_model) W_e[ids] + PE): add the gradient it gets there.")
        if np.allclose(got, input_side / d_model ** 0.5 + output_side, atol=1e-9):
            raise AssertionError("Exercise 5: the input side lacks the factor sqrt(d_model) that "
                                 "multiplies the looked-up rows.")
        if np.allclose(got, overwritten + output_side, atol=1e-9):
            raise AssertionError("Exercise 5: a token that occurs twice must get the SUM of the "
                                 "gradients of its positions; W[ids] = G keeps only the last one "
                                 "(use np.add.at, or the one-hot matrix: O^T G).")
        raise AssertionError(
            f"Exercise 5: on random input {trial} your gradient differs from autograd's by up to "
            f"{np.abs(got - expected).max():.3g}. Write X and the logits entry by entry and "
            "differentiate with respect to one entry (W_e)[v, j].")
    correct(5)


def check_exercise_6(answer) -> None:
    """GPT-2's words (pre-tokens) of EXERCISE_6_TEXT, as a list of strings."""
    if not_attempted(6, answer):
        return
    if not isinstance(answer, (list, tuple)) or not all(isinstance(w, str) for w in answer):
        raise TypeError(f"Exercise 6: expected a list of strings (the words), got {type(answer).__name__}")
    answer = list(answer)
    assert "".join(answer) == EXERCISE_6_TEXT, (
        f"Exercise 6: your words join to {''.join(answer)!r}, not the text; pre-tokenization only "
        "cuts, it never drops a character (spaces included).")
    if "'" in answer or "ll" in answer or "t" in answer:
        raise AssertionError("Exercise 6: 'll and 't are contractions, alternatives of their own at "
                             "the start of the pattern: each is one word with its apostrophe.")
    if "6:30" in answer or " 6:30" in answer:
        raise AssertionError("Exercise 6: ':' is neither a letter nor a digit: it ends the digit run.")
    if "  " in answer or " " not in answer:
        raise AssertionError("Exercise 6: a run of whitespace before a word gives its last space to "
                             "the word (\\s+(?!\\S) backs off by one character).")
    if any(w.endswith(" ") and w.strip() for w in answer):
        raise AssertionError("Exercise 6: a space goes with the word AFTER it, never the one before.")
    assert answer == _EXERCISE_6_EXPECTED, (
        "Exercise 6: not yet. Walk along the text and at each position try the alternatives in "
        "order: contractions, ' ?letters', ' ?digits', ' ?other', whitespace not before a "
        "non-space, whitespace.")
    correct(6)
