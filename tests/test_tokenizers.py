"""The character and byte-pair tokenizers of chapter 1 (helpers/tokenizers.py)."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from helpers.tokenizers import (SAMPLE_TEXT, BytePairTokenizer, CharTokenizer,
                                split_into_pieces)

SETTINGS = settings(max_examples=60, deadline=None)

# Texts over a small alphabet repeat pairs often, so BPE has something to merge; the
# alphabet includes spaces, punctuation, digits, an underscore, a newline and non-ASCII.
small_alphabet_text = st.text(alphabet="ab cd.,_1\né", min_size=1, max_size=120)


def reference_segmentation(text, merges):
    """BPE encoding written out the slow way: for each piece, apply every merge in order."""
    out = []
    for piece in split_into_pieces(text):
        tokens = list(piece)
        for a, b in merges:
            merged, i = [], 0
            while i < len(tokens):
                if tokens[i:i + 2] == [a, b]:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(tokens[i])
                    i += 1
            tokens = merged
        out.extend(tokens)
    return out


# ---------------------------------------------------------------- round trips
@SETTINGS
@given(st.text(min_size=1, max_size=200), st.data())
def test_char_tokenizer_round_trip(text, data):
    tok = CharTokenizer(text)
    ids = tok.encode(text)
    assert len(ids) == len(text) and all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text
    # any other text made of the same characters round-trips too
    other = data.draw(st.text(alphabet=sorted(set(text)), max_size=50))
    assert tok.decode(tok.encode(other)) == other


@SETTINGS
@given(st.text(max_size=300))
def test_pieces_cover_the_text_exactly(text):
    pieces = split_into_pieces(text)
    assert "".join(pieces) == text
    assert all(pieces)


@SETTINGS
@given(small_alphabet_text, st.integers(0, 40), st.data())
def test_bpe_round_trip(text, num_merges, data):
    tok = BytePairTokenizer().train(text, num_merges)
    assert tok.decode(tok.encode(text)) == text
    assert "".join(tok.segment(text)) == text
    other = data.draw(st.text(alphabet=sorted(set(text)), max_size=60))
    assert tok.decode(tok.encode(other)) == other


@SETTINGS
@given(small_alphabet_text, st.integers(0, 40), st.data())
def test_bpe_encoding_replays_the_merges_in_order(text, num_merges, data):
    tok = BytePairTokenizer().train(text, num_merges)
    other = data.draw(st.text(alphabet=sorted(set(text)), max_size=60))
    for t in (text, other):
        assert tok.segment(t) == reference_segmentation(t, tok.merges)
        assert tok.encode(t) == [tok.token_to_id[s] for s in reference_segmentation(t, tok.merges)]


@SETTINGS
@given(small_alphabet_text, st.integers(0, 30))
def test_fewer_merges_is_a_prefix_of_training_and_never_shorter(text, k):
    full = BytePairTokenizer().train(text, 30)
    k = min(k, len(full.merges))
    fresh = BytePairTokenizer().train(text, k)
    assert fresh.merges == full.merges[:k]
    assert full.with_merges(k).encode(text) == fresh.encode(text)
    lengths = [len(full.with_merges(m).encode(text)) for m in range(len(full.merges) + 1)]
    assert lengths[0] == len(text)
    assert all(a >= b for a, b in zip(lengths, lengths[1:]))   # a merge never adds a token


# ------------------------------------------------------- examples worked by hand
def test_first_merge_of_banana_bandana():
    # pieces "banana", " bandana"; (a, n) occurs 2 + 2 = 4 times, (n, a) 2 + 1 = 3 times
    tok = BytePairTokenizer().train("banana bandana", 1)
    assert tok.merges == [("a", "n")]
    assert tok.segment("banana bandana") == ["b", "an", "an", "a", " ", "b", "an", "d", "an", "a"]
    assert tok.vocab == [" ", "a", "b", "d", "n", "an"]          # sorted characters, then "an"
    assert tok.encode("banana") == [2, 5, 5, 1]


def test_overlapping_pairs_merge_left_to_right_and_training_stops_on_singletons():
    # "aaaa": (a, a) occurs 3 times (overlapping); merging left to right gives [aa, aa].
    # Then (aa, aa) occurs once, below min_frequency=2, so training stops.
    tok = BytePairTokenizer().train("aaaa", 10)
    assert tok.merges == [("a", "a")]
    assert tok.segment("aaaa") == ["aa", "aa"] and tok.segment("aaa") == ["aa", "a"]
    tok1 = BytePairTokenizer().train("aaaa", 10, min_frequency=1)
    assert tok1.merges == [("a", "a"), ("aa", "aa")] and tok1.segment("aaaa") == ["aaaa"]


def test_merges_never_cross_a_word_boundary():
    tok = BytePairTokenizer().train("ab ab ab ab", 20)
    assert all(" " not in t[1:] for t in tok.vocab)               # a space only leads a token
    assert tok.segment("ab ab") == ["ab", " ab"]


def test_sample_text_vocabulary():
    tok = BytePairTokenizer().train(SAMPLE_TEXT, 50)
    chars = sorted({c for c in SAMPLE_TEXT})
    assert tok.vocab[:len(chars)] == chars
    assert len(tok.merges) == 50 and tok.vocab_size <= len(chars) + 50
    # each merge joins at least one pair in the training text: at least one token fewer
    assert len(tok.encode(SAMPLE_TEXT)) <= len(SAMPLE_TEXT) - 50


def test_char_tokenizer_ids_follow_sorted_characters():
    tok = CharTokenizer("cab")
    assert tok.vocab == ["a", "b", "c"] and tok.encode("abcba") == [0, 1, 2, 1, 0]


def test_decode_accepts_numpy_and_torch_ids():
    tok = BytePairTokenizer().train(SAMPLE_TEXT, 20)
    ids = tok.encode("the weather")
    assert tok.decode(np.array(ids)) == "the weather"
    assert tok.decode(torch.tensor(ids)) == "the weather"
    assert CharTokenizer("ab").decode(np.array([1, 0], dtype=np.int32)) == "ba"


# ------------------------------------------------------------------ bad input
def test_unknown_character_is_named_with_its_position():
    tok = BytePairTokenizer().train("hello world", 5)
    with pytest.raises(ValueError, match=r"'z' at position 6"):
        tok.encode("hello zorld")
    with pytest.raises(ValueError, match=r"'!' at position 2"):
        CharTokenizer("abc").encode("ab!")


def test_bad_ids_and_bad_arguments():
    tok = BytePairTokenizer().train("abcabc", 2)
    with pytest.raises(ValueError, match=r"ids\[1\] = 99"):
        tok.decode([0, 99])
    with pytest.raises(ValueError, match=r"ids\[0\] = -1"):
        CharTokenizer("ab").decode([-1])
    with pytest.raises(TypeError, match=r"ids\[0\] must be an integer"):
        tok.decode([1.5])
    with pytest.raises(TypeError, match="text must be a str"):
        tok.encode(b"abc")
    with pytest.raises(ValueError, match="num_merges"):
        BytePairTokenizer().train("abc", -1)
    with pytest.raises(ValueError, match="at least one character"):
        BytePairTokenizer().train("", 3)
    with pytest.raises(ValueError, match="not been trained"):
        BytePairTokenizer().encode("abc")
    with pytest.raises(ValueError, match="num_merges must be an integer from 0 to 2"):
        tok.with_merges(3)
