"""Tokenizers written from scratch: characters, and byte-pair encoding (chapter 1).

Maganga (2024), §6, says only that "input sequences are tokenized and converted to dense vectors
using an embedding matrix". A tokenizer is the first half of that sentence: a reversible
map from text to a list of integers (token ids), each id < |V|, the vocabulary size.

- :class:`CharTokenizer`: one token per character. |V| is small, sequences are long.
- :class:`BytePairTokenizer`: byte-pair encoding (BPE; Sennrich et al. 2016, the scheme
  behind the Transformer paper's shared 37000-token vocabulary). Start from characters,
  then repeatedly *merge* the most frequent adjacent pair of tokens into a new token.
  Each merge adds one token to the vocabulary and shortens the encoded text.

Both satisfy ``decode(encode(text)) == text`` for every text made of known characters,
and both refuse unknown characters with a ValueError that names the character and its
position (a byte-level BPE, which starts from the 256 byte values instead of the
characters of the training text, has no unknown characters; here we keep characters so
the tokens stay readable).

``SAMPLE_TEXT`` is a short text written for this course (no copied text); chapter 1
trains its merges on it.
"""
from __future__ import annotations

import operator
import re
from collections import Counter
from collections.abc import Hashable, Iterable

SAMPLE_TEXT = (
    "The lighthouse keeper kept a notebook of the weather. Every morning she wrote down "
    "the wind, the waves and the colour of the sky, and every evening she wrote them down "
    "again. Over the years the notebooks grew into a small library: shelves of winds, "
    "shelves of waves, shelves of skies. Visitors asked her why she kept writing the same "
    "words. She answered that the words were the same but the weather was not, and that "
    "reading the old pages taught her to see the new morning more clearly.\n"
    "When the keeper retired, the town kept her notebooks in the school. There the "
    "children learned to read from them, counting the stormy mornings and the calm "
    "evenings, comparing the winter winds with the summer winds, and writing their own "
    "weather beside hers. Some of them became sailors, some became teachers, and one of "
    "them became the next keeper of the lighthouse, who still writes the weather down "
    "every morning and every evening."
)

# Pre-tokenization: cut the text into pieces (a word with at most one leading space, a
# number, a run of punctuation, or a run of whitespace). Merges never cross a piece
# boundary, so a token is never half of one word and half of the next. Every character
# belongs to exactly one piece, so joining the pieces gives the text back.
_PIECE = re.compile(r" ?[^\W\d_]+| ?\d+| ?[^\w\s]+|_+|\s+")


def split_into_pieces(text: str) -> list[str]:
    """Cut ``text`` into the pieces that BPE merges within; ``"".join(pieces) == text``."""
    _require_text("split_into_pieces", text)
    pieces = _PIECE.findall(text)
    return pieces


def _require_text(func: str, text) -> None:
    if not isinstance(text, str):
        raise TypeError(f"{func}: text must be a str, got {type(text).__name__}")


def _check_known(func: str, text: str, known) -> None:
    for position, char in enumerate(text):
        if char not in known:
            raise ValueError(
                f"{func}: character {char!r} at position {position} is not in the vocabulary "
                f"(it has {len(known)} characters, learned from the training text); "
                "train on a text that contains it")


def _as_count(func: str, name: str, value, low: int) -> int:
    """``value`` as a Python int >= low (NumPy integers welcome); ValueError otherwise."""
    if not isinstance(value, bool):
        try:
            value_int = operator.index(value)
        except TypeError:
            value_int = None
        if value_int is not None and value_int >= low:
            return value_int
    raise ValueError(f"{func}: {name} must be an integer >= {low}, got {value!r}")


def _as_token_list(func: str, name: str, values, allow_str: bool = True) -> list:
    """``values`` (an iterable of hashable tokens; a str is its characters when ``allow_str``)
    as a list, or a named error."""
    if isinstance(values, (bytes, bytearray)) or not isinstance(values, Iterable) or (
            hasattr(values, "shape")) or (isinstance(values, str) and not allow_str):
        raise TypeError(f"{func}: {name} must be a list or tuple of tokens (e.g. strings), got "
                        f"{type(values).__name__} {values!r}"[:300])
    values = list(values)
    for position, value in enumerate(values):
        if not isinstance(value, Hashable):
            raise TypeError(f"{func}: {name}[{position}] must be a hashable token (e.g. a str), "
                            f"got {type(value).__name__} {value!r}"[:300])
    return values


def _check_ids(func: str, ids, vocab_size: int) -> list[int]:
    try:
        ids = list(ids)
    except TypeError:
        raise TypeError(f"{func}: ids must be a sequence of integers, got {type(ids).__name__}") from None
    checked = []
    for position, token_id in enumerate(ids):
        if isinstance(token_id, bool):
            raise TypeError(f"{func}: ids[{position}] must be an integer, got a bool")
        try:
            token_id = operator.index(token_id)
        except TypeError:
            raise TypeError(f"{func}: ids[{position}] must be an integer, got "
                            f"{type(token_id).__name__} {token_id!r}") from None
        if not 0 <= token_id < vocab_size:
            raise ValueError(f"{func}: ids[{position}] = {token_id} is outside the vocabulary "
                             f"(ids run from 0 to {vocab_size - 1})")
        checked.append(token_id)
    return checked


class Vocabulary:
    """Token <-> id, for any kind of token (characters, words). Special tokens (if any) come
    first: e.g. <pad> = 0, <bos> = 1, <eos> = 2, then ``tokens`` in the order given.

    ``encode(tokens)`` maps a sequence of tokens to ids; ``decode(ids)`` maps ids back and
    joins them with ``join`` (skipping special tokens unless ``skip_specials=False``).
    """

    def __init__(self, tokens, specials=()):
        name = type(self).__name__
        specials = _as_token_list(name, "specials", specials, allow_str=False)
        tokens = specials + [t for t in _as_token_list(name, "tokens", tokens) if t not in specials]
        if len(set(tokens)) != len(tokens):
            raise ValueError(f"{name}: tokens must be distinct")
        self.tokens: list = tokens
        self.ids: dict = {t: i for i, t in enumerate(tokens)}
        self.specials = tuple(specials)

    def __len__(self):
        return len(self.tokens)

    def __getitem__(self, token):
        return self.ids[token]

    @property
    def vocab_size(self) -> int:
        """|V|: the number of distinct tokens, special ones included."""
        return len(self.tokens)

    def encode(self, tokens) -> list[int]:
        """The id of each token of ``tokens``; a ValueError names an unknown one."""
        try:
            return [self.ids[t] for t in tokens]
        except KeyError as err:
            raise ValueError(f"Vocabulary.encode: token {err.args[0]!r} is not in the vocabulary") from None
        except TypeError:
            raise TypeError(f"Vocabulary.encode: tokens must be a sequence of tokens, "
                            f"got {type(tokens).__name__}") from None

    def decode(self, ids, join: str = "", skip_specials: bool = True) -> str:
        """The tokens of ``ids`` (integers in 0..|V|-1) joined by ``join`` (a str)."""
        func = f"{type(self).__name__}.decode"
        ids = _check_ids(func, ids, len(self.tokens))
        if not isinstance(join, str):
            raise TypeError(f"{func}: join must be a str (put between the tokens), got "
                            f"{type(join).__name__} {join!r}")
        if not isinstance(skip_specials, bool):
            raise TypeError(f"{func}: skip_specials must be True or False, got {skip_specials!r}")
        skip = set(self.specials) if skip_specials else set()
        try:
            return join.join(t for t in (self.tokens[i] for i in ids) if t not in skip)
        except TypeError:
            raise TypeError(f"{func}: joining needs tokens that are str; this vocabulary holds "
                            f"{sorted({type(t).__name__ for t in self.tokens})}") from None


class CharTokenizer(Vocabulary):
    """One token per character; the vocabulary is the sorted set of characters of ``text``
    (after the ``specials``, if any: tokens such as "<pad>" that no text contains).

    ``encode(s)`` gives a list of ids, one per character of s (len(ids) == len(s));
    ``decode(ids)`` joins the characters back. Id j is the j-th character in sorted
    (code point) order, so the ids do not depend on where a character first appears.
    This is the tokenizer of chapter 1 and of chapter 11's character-level models.
    """

    def __init__(self, text: str, specials=()):
        _require_text("CharTokenizer", text)
        if not text:
            raise ValueError("CharTokenizer: text must contain at least one character, got ''")
        super().__init__(sorted(set(text)), specials=specials)

    @property
    def vocab(self) -> list[str]:
        """The tokens in id order (what :class:`BytePairTokenizer` also calls ``vocab``)."""
        return self.tokens

    @property
    def token_to_id(self) -> dict:
        return self.ids

    def encode(self, text: str) -> list[int]:
        """The id of each character of ``text``, in order."""
        _require_text("CharTokenizer.encode", text)
        _check_known("CharTokenizer.encode", text, self.ids)
        return [self.ids[c] for c in text]

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


class BytePairTokenizer:
    """Byte-pair encoding (BPE) over characters, trained from scratch.

    Training (:meth:`train`): cut the text into pieces (:func:`split_into_pieces`), write
    each piece as a list of characters, then ``num_merges`` times: count every adjacent
    pair of tokens (over all pieces, each piece counted as often as it occurs), take the
    most frequent pair (a, b) (ties: the smaller pair in string order, so training is
    deterministic), and replace every occurrence of a followed by b, left to right, by
    the new token ab. Training stops early when no pair occurs ``min_frequency`` times.

    Encoding (:meth:`encode`) replays the merges on new text in the order they were
    learned, which reproduces the training segmentation exactly; decoding concatenates
    the tokens' strings.

    Vocabulary: ids 0 .. c-1 are the c distinct characters of the training text in sorted
    order; each merge adds the id of its new token (if two merges ever produce the same
    string, they share one id, so ``vocab_size <= c + len(merges)``).
    """

    def __init__(self):
        self.alphabet: list[str] = []
        self.merges: list[tuple[str, str]] = []
        self.vocab: list[str] = []
        self.token_to_id: dict[str, int] = {}
        self._rank: dict[tuple[str, str], int] = {}
        self._cache: dict[str, list[str]] = {}

    # ----------------------------------------------------------------- training
    def train(self, text: str, num_merges: int, min_frequency: int = 2) -> "BytePairTokenizer":
        """Learn up to ``num_merges`` merges from ``text``; returns ``self``."""
        func = "BytePairTokenizer.train"
        _require_text(func, text)
        if not text:
            raise ValueError(f"{func}: text must contain at least one character, got ''")
        num_merges = _as_count(func, "num_merges", num_merges, 0)
        min_frequency = _as_count(func, "min_frequency", min_frequency, 1)
        piece_counts = Counter(split_into_pieces(text))
        words = {piece: list(piece) for piece in piece_counts}
        merges = []
        for _ in range(num_merges):
            pair_counts: Counter = Counter()
            for piece, tokens in words.items():
                for pair in zip(tokens, tokens[1:]):
                    pair_counts[pair] += piece_counts[piece]
            if not pair_counts:
                break
            best = min(pair_counts, key=lambda p: (-pair_counts[p], p))
            if pair_counts[best] < min_frequency:
                break
            merges.append(best)
            for piece, tokens in words.items():
                words[piece] = _merge_pair(tokens, best)
        self._set_vocabulary(sorted(set(text)), merges)
        return self

    def _set_vocabulary(self, alphabet: list[str], merges: list[tuple[str, str]]) -> None:
        self.alphabet = list(alphabet)
        self.merges = list(merges)
        self.vocab = list(alphabet)
        self.token_to_id = {c: i for i, c in enumerate(alphabet)}
        for a, b in merges:
            if a + b not in self.token_to_id:
                self.token_to_id[a + b] = len(self.vocab)
                self.vocab.append(a + b)
        self._rank = {pair: rank for rank, pair in enumerate(merges)}
        self._cache = {}

    def with_merges(self, num_merges: int) -> "BytePairTokenizer":
        """A tokenizer that keeps only the first ``num_merges`` merges.

        Training is greedy, so this equals training afresh with ``num_merges`` merges on
        the same text, without repeating the work.
        """
        try:
            count = None if isinstance(num_merges, bool) else operator.index(num_merges)
        except TypeError:
            count = None
        if count is None or not 0 <= count <= len(self.merges):
            raise ValueError(f"BytePairTokenizer.with_merges: num_merges must be an integer from 0 "
                             f"to {len(self.merges)} (the merges learned), got {num_merges!r}")
        smaller = BytePairTokenizer()
        smaller._set_vocabulary(self.alphabet, self.merges[:count])
        return smaller

    @property
    def vocab_size(self) -> int:
        """|V|: the number of distinct tokens (characters plus merged tokens)."""
        return len(self.vocab)

    # ----------------------------------------------------------------- using it
    def _require_trained(self, func: str) -> None:
        if not self.alphabet:
            raise ValueError(f"{func}: the tokenizer has not been trained yet; call train(text, num_merges) first")

    def _segment_piece(self, piece: str) -> list[str]:
        if piece not in self._cache:
            tokens = list(piece)
            # Apply the learned merges in the order they were learned. Only pairs present
            # in this piece matter: take the earliest-learned one, merge it everywhere,
            # repeat. (A merge creates pairs whose own merges were learned later, so this
            # visits the merges in training order.)
            while len(tokens) > 1:
                present = [self._rank[p] for p in zip(tokens, tokens[1:]) if p in self._rank]
                if not present:
                    break
                tokens = _merge_pair(tokens, self.merges[min(present)])
            self._cache[piece] = tokens
        return self._cache[piece]

    def segment(self, text: str) -> list[str]:
        """The tokens of ``text`` as strings; ``"".join(segment(text)) == text``."""
        func = "BytePairTokenizer.segment"
        self._require_trained(func)
        _require_text(func, text)
        _check_known(func, text, set(self.alphabet))
        return [token for piece in split_into_pieces(text) for token in self._segment_piece(piece)]

    def encode(self, text: str) -> list[int]:
        """The token ids of ``text``."""
        func = "BytePairTokenizer.encode"
        self._require_trained(func)
        _require_text(func, text)
        _check_known(func, text, set(self.alphabet))
        return [self.token_to_id[token] for piece in split_into_pieces(text)
                for token in self._segment_piece(piece)]

    def decode(self, ids) -> str:
        """The text whose encoding is ``ids`` (a sequence of ints, 0 <= id < vocab_size)."""
        func = "BytePairTokenizer.decode"
        self._require_trained(func)
        ids = _check_ids(func, ids, self.vocab_size)
        return "".join(self.vocab[i] for i in ids)

    def __repr__(self) -> str:
        return (f"BytePairTokenizer(characters={len(self.alphabet)}, merges={len(self.merges)}, "
                f"vocab_size={self.vocab_size})")


def _merge_pair(tokens: list[str], pair: tuple[str, str]) -> list[str]:
    """Replace each occurrence of pair[0] followed by pair[1], left to right, by their join."""
    a, b = pair
    merged, i = [], 0
    while i < len(tokens):
        if i + 1 < len(tokens) and tokens[i] == a and tokens[i + 1] == b:
            merged.append(a + b)
            i += 2
        else:
            merged.append(tokens[i])
            i += 1
    return merged
