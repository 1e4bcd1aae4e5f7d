"""Byte-level BPE (helpers/byte_bpe.py): round trips, hand-checked merges, GPT-2's files."""
import io
import json
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.byte_bpe import (GPT2_PATTERN, ByteLevelBPE, bytes_to_unicode, pretokenize,
                              printable_to_token, token_to_printable)
from helpers.tokenizers import SAMPLE_TEXT

EOT = "<|endoftext|>"


@pytest.fixture(scope="module")
def trained():
    # the sample text twice with a document separator, so the special token occurs in training
    return ByteLevelBPE().train(SAMPLE_TEXT + EOT + SAMPLE_TEXT.upper(), 400, special_tokens=(EOT,))


# --------------------------------------------------------------------------- pre-tokenization

def test_pattern_is_gpt2s():
    assert GPT2_PATTERN == r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@pytest.mark.parametrize("text, words", [
    ("don't stop", ["don", "'t", " stop"]),                 # contractions are words of their own
    ("DON'T", ["DON", "'", "T"]),                            # ... in lower case only
    ("we'll see", ["we", "'ll", " see"]),
    ("abc123 45", ["abc", "123", " 45"]),                    # digits apart from letters
    ("a   b", ["a", "  ", " b"]),                            # the last space goes to the word
    ("a\nb", ["a", "\n", "b"]),
    ("end.  ", ["end", ".", "  "]),                          # a run at the end stays whole
    ("héllo wörld", ["héllo", " wörld"]),                    # letters of any script
    ("日本語 テキスト", ["日本語", " テキスト"]),
    ("hi!!! 🙂🙂", ["hi", "!!!", " 🙂🙂"]),
    ("e\u0301t\u00e9", ["e", "\u0301", "t\u00e9"]),           # a combining accent is not a letter
])
def test_pretokenize_by_hand(text, words):
    assert pretokenize(text) == words


@given(st.text())
def test_pretokenize_loses_nothing(text):
    assert "".join(pretokenize(text)) == text


# --------------------------------------------------------------------------- GPT-2's byte table

def test_byte_table_printable_bytes_stand_for_themselves_others_from_256():
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256                   # one-to-one
    assert table[ord("A")] == "A" and table[ord("!")] == "!" and table[0xE9] == "é"
    # the 68 others, in byte order, from U+0100: 0..32 (33 bytes), 127..160 (34), 173 (1)
    others = [*range(0, 33), *range(127, 161), 173]
    assert [table[b] for b in others] == [chr(256 + k) for k in range(68)]
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"
    assert all(not c.isspace() and c.isprintable() for c in table.values())


@given(st.binary())
def test_printable_round_trip(data):
    shown = token_to_printable(data)
    assert " " not in shown and printable_to_token(shown) == data


# --------------------------------------------------------------------------- round trips

@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_round_trips(trained, text):
    ids = trained.encode(text)
    assert all(0 <= i < trained.vocab_size for i in ids)
    assert trained.decode(ids) == text


@pytest.mark.parametrize("text", [
    "", "🙂", "Ünïcödé", "漢字かな交じり文", "e\u0301", "\x00\x01\x07\x1b\x7f", "\t\r\n\u2028\u00a0",
    "\U0010ffff", "zebra quiz", EOT, "a" * 1000,
])
def test_unseen_characters_round_trip(trained, text):
    assert trained.decode(trained.encode(text)) == text


def test_untrained_tokenizer_is_one_token_per_byte():
    tok = ByteLevelBPE()
    text = "naïve 🙂"
    assert tok.vocab_size == 256
    assert tok.encode(text) == list(text.encode("utf-8"))   # ids 0..255 are the bytes in order
    assert len(tok.encode("🙂")) == 4 and len(tok.encode("é")) == 2


def test_utf8_length_of_characters():
    tok = ByteLevelBPE()
    for char, n_bytes in [("a", 1), ("é", 2), ("€", 3), ("🙂", 4)]:
        assert len(tok.encode(char)) == n_bytes


def test_decode_of_a_cut_character_replaces_or_raises():
    tok = ByteLevelBPE()
    ids = tok.encode("é")[:1]                       # the first of its two bytes alone
    assert tok.decode(ids) == "\ufffd"
    with pytest.raises(UnicodeDecodeError):
        tok.decode(ids, errors="strict")
    assert tok.decode_bytes(ids) == "é".encode("utf-8")[:1]


# --------------------------------------------------------------------------- training by hand

def test_merges_by_hand_frequency():
    # words: "ab" x1, " ab" x2, " cd" x1. Byte pairs: (a,b) 1+2 = 3, (' ',a) 2, (' ',c) 1, (c,d) 1.
    # 1: (a,b) -> 'ab'. Pairs then: (' ','ab') 2, (' ',c) 1, (c,d) 1.
    # 2: (' ','ab') -> ' ab'. Left: (' ',c) 1, (c,d) 1, a tie: b' ' < b'c', so
    # 3: (' ','c') -> ' c', then 4: (' c','d') -> ' cd'. Then no pair is left.
    tok = ByteLevelBPE().train("ab ab ab cd", 1000)
    assert tok.merges == [(b"a", b"b"), (b" ", b"ab"), (b" ", b"c"), (b" c", b"d")]
    assert tok.vocab_size == 260
    assert [tok.token_bytes(i) for i in range(256, 260)] == [b"ab", b" ab", b" c", b" cd"]
    assert tok.encode("ab ab") == [256, 257]
    # "abc": (a,b) has rank 0 -> [ab, c]
    assert tok.encode("abc") == [256, ord("c")]
    # " cab": pairs (' ',c) rank 2, (a,b) rank 0: merge ab first -> [' ', c, ab], then
    # (' ',c) -> [' c', ab]; (' c', ab) is not a merge
    assert tok.encode(" cab") == [258, 256]


def test_merges_by_hand_ties_go_to_the_smallest_bytes():
    # words "aa", " aa", " ab", once each. Pairs: (a,a) 2, (' ',a) 2, (a,b) 1.
    # Tie at 2: b' ' < b'a', so (' ',a) -> ' a' (256). Words: [a,a], [' a',a], [' a',b].
    # All three pairs now occur once; smallest first: (b' a', b'a') < (b' a', b'b') < (b'a', b'a').
    tok = ByteLevelBPE().train("aa aa ab", 1000)
    assert tok.merges == [(b" ", b"a"), (b" a", b"a"), (b" a", b"b"), (b"a", b"a")]
    assert ByteLevelBPE().train("aa aa ab", 258).merges == tok.merges[:2]   # stops at |V| = 258


def test_min_frequency_stops_training():
    # with min_frequency 2 only the first two merges of the hand example qualify
    tok = ByteLevelBPE().train("ab ab ab cd", 1000, min_frequency=2)
    assert tok.merges == [(b"a", b"b"), (b" ", b"ab")]


def test_training_is_deterministic_and_independent_of_word_order():
    words = SAMPLE_TEXT.split(" ")
    shuffled = " ".join(words[::-1])                 # the same words (and counts), another order
    first = ByteLevelBPE().train(SAMPLE_TEXT, 380).merges
    assert ByteLevelBPE().train(SAMPLE_TEXT, 380).merges == first
    a = ByteLevelBPE().train(" " + " ".join(words), 380).merges
    b = ByteLevelBPE().train(" " + shuffled, 380).merges
    assert a == b


@pytest.mark.parametrize("vocab_size", [256, 270, 330, 420])
def test_incremental_equals_recount(vocab_size):
    text = SAMPLE_TEXT + " 12 123 1234 don't won't " + SAMPLE_TEXT.lower()
    fast = ByteLevelBPE().train(text, vocab_size)
    slow = ByteLevelBPE().train(text, vocab_size, algorithm="recount")
    assert fast.merges == slow.merges and fast.vocab_size == slow.vocab_size == vocab_size


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ab c\n'sé", max_size=60), st.integers(256, 300))
def test_incremental_equals_recount_on_random_text(text, vocab_size):
    fast = ByteLevelBPE().train(text, vocab_size)
    slow = ByteLevelBPE().train(text, vocab_size, algorithm="recount")
    assert fast.merges == slow.merges
    assert fast.decode(fast.encode(text)) == text


def test_a_merge_shortens_the_training_words():
    # encoding the training text with k + 1 merges never takes more tokens than with k
    text = SAMPLE_TEXT
    lengths = [len(ByteLevelBPE().train(text, 256 + k).encode(text)) for k in range(0, 40, 5)]
    assert lengths[0] == len(text.encode("utf-8"))
    assert all(b < a for a, b in zip(lengths, lengths[1:]))


# --------------------------------------------------------------------------- special tokens

def test_special_tokens_get_the_last_ids_and_are_never_split(trained):
    eot = trained.special_tokens[EOT]
    assert eot == trained.vocab_size - 1
    ids = trained.encode(f"the end{EOT}The start")
    assert ids.count(eot) == 1
    assert trained.decode(ids[:ids.index(eot)]) == "the end"
    assert trained.decode(ids[ids.index(eot) + 1:]) == "The start"
    assert trained.token_bytes(eot) == EOT.encode()
    # no learned token holds a piece of the special token's text: it was cut out before training
    pieces = [trained.token_bytes(i) for i in range(256, eot)]
    assert not any(b"<|" in p or b"|>" in p for p in pieces)


def test_special_tokens_are_not_merged_with_neighbours():
    tok = ByteLevelBPE().train((EOT + "ab") * 50, 300, special_tokens=(EOT,))
    assert all(b"<" not in a + b and b"|" not in a + b for a, b in tok.merges)
    ids = tok.encode(EOT + EOT + "ab")
    assert ids[:2] == [tok.special_tokens[EOT]] * 2


def test_longer_special_token_wins():
    tok = ByteLevelBPE().train("xyz", 258, special_tokens=("<|a|>", "<|a|><|b|>"))
    ids = tok.encode("<|a|><|b|><|a|>")
    assert ids == [tok.special_tokens["<|a|><|b|>"], tok.special_tokens["<|a|>"]]


def test_unregistered_special_text_is_ordinary_text(trained):
    plain = ByteLevelBPE().train(SAMPLE_TEXT, 300)
    ids = plain.encode(EOT)
    assert plain.decode(ids) == EOT and len(ids) > 1
    assert [plain.token_bytes(i) for i in ids] == [w for word in pretokenize(EOT)
                                                   for w in _segment(plain, word)]


def _segment(tok, word):
    return [tok.token_bytes(i) for i in tok.encode(word)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=8), st.sampled_from([EOT, "<|", "|>", "endoftext"]))))
def test_special_round_trip_and_count(trained, parts):
    text = "".join(parts)
    ids = trained.encode(text)
    assert trained.decode(ids) == text
    assert ids.count(trained.special_tokens[EOT]) == text.count(EOT)


# --------------------------------------------------------------------------- encode_iterable

ADVERSARIAL = st.text(alphabet="ab 1\n\t'srevlmdt.!é🙂\u0301<|>", max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(ADVERSARIAL, max_size=8), st.booleans())
def test_encode_iterable_equals_encode_of_the_join(trained, chunks, with_specials):
    tok = trained if with_specials else ByteLevelBPE().train(SAMPLE_TEXT, 300)
    chunks = [c.replace("<|>", EOT) for c in chunks]
    assert list(tok.encode_iterable(chunks)) == tok.encode("".join(chunks))


def test_encode_iterable_cuts_anywhere_even_inside_a_special_token(trained):
    text = f"Over the years{EOT} the notebooks'll grow.\n\n  Indented\n" * 3
    whole = trained.encode(text)
    for step in (1, 2, 3, 5, 13):
        chunks = [text[i:i + step] for i in range(0, len(text), step)]
        assert list(trained.encode_iterable(chunks)) == whole


def test_encode_iterable_is_not_line_by_line_encoding():
    # a word can cross a line boundary: in "a\n    b" the newline and three spaces are one word
    tok = ByteLevelBPE().train("line\n    indented\n" * 20 + "it's " * 20, 300)
    assert tok.encode("\n   ") == [tok.encode("\n   ")[0]]           # ... and one token
    lines = ["a\n", "    b"]
    assert pretokenize("".join(lines)) == ["a", "\n   ", " b"]
    per_line = [i for line in lines for i in tok.encode(line)]
    assert len(per_line) > len(tok.encode("".join(lines)))
    assert list(tok.encode_iterable(lines)) == tok.encode("".join(lines))
    # and a contraction across a boundary: "x'" + "s" holds the word "'s", not "'" and "s"
    assert pretokenize("x's") == ["x", "'s"] and len(tok.encode("'s")) == 1
    assert list(tok.encode_iterable(["x'", "s"])) == tok.encode("x's") != tok.encode("x'") + tok.encode("s")


def test_encode_iterable_reads_a_file_lazily(trained):
    text = (SAMPLE_TEXT + "\n") * 20
    file = io.StringIO(text)
    assert list(trained.encode_iterable(file)) == trained.encode(text)

    read = []

    def lines():
        for line in text.splitlines(keepends=True):
            read.append(line)
            yield line

    ids = trained.encode_iterable(lines())
    first = next(ids)
    assert first == trained.encode(text)[0]
    assert len(read) < 3                      # it did not read the whole input for the first id


# --------------------------------------------------------------------------- GPT-2's files

def test_save_load_round_trip(trained, tmp_path):
    vocab_path, merges_path = tmp_path / "encoder.json", tmp_path / "vocab.bpe"
    trained.save(vocab_path, merges_path)
    lines = merges_path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#version: 0.2" and len(lines) == 1 + len(trained.merges)
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    assert len(vocab) == trained.vocab_size and vocab[EOT] == trained.special_tokens[EOT]
    assert vocab["Ġ"] == 32 and vocab["a"] == ord("a")       # our ids: the bytes in byte order
    first_a, first_b = trained.merges[0]
    assert lines[1] == f"{token_to_printable(first_a)} {token_to_printable(first_b)}"

    loaded = ByteLevelBPE.load(vocab_path, merges_path, special_tokens=(EOT,))
    assert loaded.merges == trained.merges and loaded.vocab_size == trained.vocab_size
    text = f"Zebras ate 12 quinces{EOT}🙂 ünïcode\n\n  end"
    assert loaded.encode(text) == trained.encode(text)
    assert loaded.decode(trained.encode(text)) == text


def _gpt2_style_files(tmp_path, merges, extra=()):
    """A tiny vocabulary numbered as GPT-2 numbers its bytes: the 188 printable bytes first
    (byte order), then the 68 others; then the merged tokens and any extra keys."""
    table = bytes_to_unicode()
    printable = [b for b in range(256) if table[b] == chr(b)]
    others = [b for b in range(256) if table[b] != chr(b)]
    vocab = {table[b]: i for i, b in enumerate(printable + others)}
    for a, b in merges:
        vocab[a + b] = len(vocab)
    for key in extra:
        vocab[key] = len(vocab)
    vocab_path, merges_path = tmp_path / "encoder.json", tmp_path / "vocab.bpe"
    vocab_path.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges_path.write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    return vocab_path, merges_path


def test_hand_written_gpt2_files(tmp_path):
    # byte ids as GPT-2 numbers them: '!' (33) is 0, so a printable byte b is b - 33 for
    # b <= 126: 't' = 83, 'h' = 71, 'e' = 68, '<' = 27, '|' = 91, '>' = 29.
    # The others follow the 188 printable ones: space (the 33rd other, index 32) = 188 + 32 = 220,
    # newline (index 10) = 198. Then 256 = 'Ġt', 257 = 'he', 258 = 'Ġthe', 259 = <|endoftext|>.
    paths = _gpt2_style_files(tmp_path, [("Ġ", "t"), ("h", "e"), ("Ġt", "he")], extra=[EOT])
    tok = ByteLevelBPE.load(*paths, special_tokens=(EOT,))
    assert tok.vocab_size == 260
    assert tok.encode("!") == [0] and tok.encode(" ") == [220] and tok.encode("\n") == [198]
    # "the": pairs (t,h) none, (h,e) rank 1 -> [t, he]; (t, he) is no merge
    assert tok.encode("the") == [83, 257]
    # " the": (' ',t) rank 0 first -> [' t', h, e]; then (h,e) -> [' t', he]; then rank 2 -> [' the']
    assert tok.encode(" the") == [258]
    assert tok.encode(f"the{EOT} the!") == [83, 257, 259, 258, 0]
    assert tok.decode([83, 257, 259, 258, 0]) == f"the{EOT} the!"

    # the same files without registering the special token: its text is ordinary text,
    # cut by the pattern into "<|", "endoftext", "|>" and spelled byte by byte (no merge applies)
    plain = ByteLevelBPE.load(*paths)
    letters = [ord(c) - 33 for c in "endoftext"]
    assert plain.encode(EOT) == [27, 91, *letters, 91, 29]
    assert plain.decode([259]) == EOT                         # id 259 is then an ordinary token


# --------------------------------------------------------------------------- bad input

def test_bad_training_input():
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        ByteLevelBPE().train(b"abc", 300)
    with pytest.raises(ValueError, match=r"vocab_size must be at least 256 \+ 1.*got 256"):
        ByteLevelBPE().train("abc", 256, special_tokens=(EOT,))
    with pytest.raises(TypeError, match="vocab_size must be an integer, got float"):
        ByteLevelBPE().train("abc", 300.0)
    with pytest.raises(TypeError, match="vocab_size must be an integer, got a bool"):
        ByteLevelBPE().train("abc", True)
    with pytest.raises(ValueError, match="special_tokens lists '<\\|endoftext\\|>' twice"):
        ByteLevelBPE().train("abc", 300, special_tokens=(EOT, EOT))
    with pytest.raises(ValueError, match=r"special_tokens\[0\] is the empty string"):
        ByteLevelBPE().train("abc", 300, special_tokens=("",))
    with pytest.raises(TypeError, match="special_tokens must be a sequence of str.*single str"):
        ByteLevelBPE().train("abc", 300, special_tokens=EOT)
    with pytest.raises(TypeError, match=r"special_tokens\[1\] must be a str, got int"):
        ByteLevelBPE().train("abc", 300, special_tokens=(EOT, 5))
    with pytest.raises(ValueError, match="min_frequency must be >= 1, got 0"):
        ByteLevelBPE().train("abc", 300, min_frequency=0)
    with pytest.raises(ValueError, match="algorithm must be 'incremental' or 'recount'"):
        ByteLevelBPE().train("abc", 300, algorithm="fast")
    with pytest.raises(ValueError, match=r"text\[1\] is the lone surrogate U\+D800"):
        ByteLevelBPE().train("a\ud800", 300)


def test_bad_encode_decode_input(trained):
    with pytest.raises(TypeError, match="encode: text must be a str, got list"):
        trained.encode(["a"])
    with pytest.raises(ValueError, match=r"text\[2\] is the lone surrogate U\+DFFF"):
        trained.encode("ab\udfff")
    with pytest.raises(ValueError, match=rf"ids\[1\] = {trained.vocab_size} is outside the vocabulary"):
        trained.decode([0, trained.vocab_size])
    with pytest.raises(ValueError, match=r"ids\[0\] = -1 is outside"):
        trained.decode([-1])
    with pytest.raises(TypeError, match=r"ids\[0\] must be an integer, got float"):
        trained.decode([1.0])
    with pytest.raises(TypeError, match=r"ids\[0\] must be an integer, got a bool"):
        trained.decode([True])
    with pytest.raises(TypeError, match="ids must be a sequence of integers, got str"):
        trained.decode("12")
    with pytest.raises(ValueError, match="errors must be 'replace' or 'strict'"):
        trained.decode([1], errors="ignore")
    with pytest.raises(TypeError, match="lines must be an iterable of str.*single str"):
        trained.encode_iterable("abc")
    with pytest.raises(TypeError, match=r"lines\[1\] must be a str, got bytes"):
        list(trained.encode_iterable(["a", b"b"]))
    with pytest.raises(TypeError, match="pretokenize: text must be a str"):
        pretokenize(3)


def test_numpy_ids_are_welcome(trained):
    import numpy as np
    ids = trained.encode("the keeper")
    assert trained.decode(np.array(ids)) == "the keeper"


@pytest.mark.parametrize("merges_text, message", [
    ("a b\n", "must start with a line '#version: 0.2'"),
    ("#version: 0.2\nĠ t x\n", "line 2 must be two tokens separated by one space"),
    ("#version: 0.2\nĠt\n", "line 2 must be two tokens"),
    ("#version: 0.2\nĠ t\nĠ t\n", "line 3 repeats the merge"),
    ("#version: 0.2\nĠ t\nx y\n", "'xy' is not a token of vocab_path"),
    ("#version: 0.2\nĠ t\nĠt \u4e00\n", "not one of the 256 characters"),
])
def test_malformed_merges_file(tmp_path, merges_text, message):
    vocab_path, merges_path = _gpt2_style_files(tmp_path, [("Ġ", "t")])
    merges_path.write_text(merges_text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        ByteLevelBPE.load(vocab_path, merges_path)


def test_malformed_vocabulary_file(tmp_path):
    vocab_path, merges_path = _gpt2_style_files(tmp_path, [("Ġ", "t")])
    good = json.loads(vocab_path.read_text(encoding="utf-8"))

    def load_with(vocab, **kw):
        vocab_path.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        return ByteLevelBPE.load(vocab_path, merges_path, **kw)

    with pytest.raises(ValueError, match="must hold a JSON object"):
        load_with([1, 2])
    with pytest.raises(ValueError, match="special_tokens \\['<\\|endoftext\\|>'\\] are not keys"):
        load_with(good, special_tokens=(EOT,))
    with pytest.raises(ValueError, match="ids must be the integers 0 to 256"):
        load_with({**good, "Ġt": 999})
    with pytest.raises(ValueError, match="lacks the single-byte tokens"):
        load_with({k: i for i, k in enumerate(k for k in good if k != "!")})
    with pytest.raises(ValueError, match="neither a special token nor spelled in GPT-2's byte table"):
        load_with({**good, "a b": len(good)})
    vocab_path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="is not valid JSON"):
        ByteLevelBPE.load(vocab_path, merges_path)


def test_vocabulary_with_an_id_used_twice_is_refused(tmp_path):
    vocab_path, merges_path = _gpt2_style_files(tmp_path, [("Ġ", "t")])
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    vocab["Ġt"] = vocab["!"]
    vocab["zz"] = 256
    vocab_path.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValueError, match="gives the id 0 to more than one token"):
        ByteLevelBPE.load(vocab_path, merges_path)


def test_combining_accent_round_trip_keeps_the_normal_form(trained):
    decomposed = unicodedata.normalize("NFD", "café")
    assert trained.decode(trained.encode(decomposed)) == decomposed != "café"
