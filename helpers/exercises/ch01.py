"""Checks for the exercises of chapter 1, "Tokens and embeddings".

Each ``check_exercise_N(answer)`` prints "not attempted yet" for ``None``; otherwise it
raises an AssertionError that says what is wrong (and, where a common slip explains the
answer, which slip), or prints a confirmation. Reference values are worked out by hand
in the comments, or computed here in plain Python/NumPy.
"""
from __future__ import annotations

import numpy as np

from ._common import not_attempted

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
    print("Exercise 1: correct. The first merge is ('a', 'n'): 14 characters became 10 tokens.")


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
    print("Exercise 2: correct. X @ W_e picks rows 4, 0, 4, 2 of W_e: the embedding is a row lookup.")


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
    print(f"Exercise 3: correct, 2 * 37000 * 512 = {2 * one:,} parameters saved.")


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
    print(f"Exercise 4: correct, {answer} merges bring the sentence to {tokens} tokens.")
