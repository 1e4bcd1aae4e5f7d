"""Byte-level byte-pair encoding, as GPT-2 does it (Radford et al. 2019). Derived in chapter 1.

Chapter 1's :class:`helpers.tokenizers.BytePairTokenizer` merges *characters* seen in
training, so a character it never saw cannot be encoded. This module merges *bytes*: a text
is first written in UTF-8 (every Unicode character is 1 to 4 bytes), and the vocabulary
starts from the 256 possible byte values. Every string can then be encoded, whatever its
alphabet, and ``decode(encode(text)) == text`` holds for every ``str`` that UTF-8 can
write (all of them except lone surrogates, which are refused with a ValueError).

The pieces, in the order :meth:`ByteLevelBPE.encode` applies them:

1. **Special tokens** (e.g. ``"<|endoftext|>"``) are cut out of the text first. Each has
   its own id, is never split or merged, and pre-tokenization restarts after it. Where two
   special tokens could match at one place, the longer one wins. A special token's text
   that was *not* registered (in :meth:`ByteLevelBPE.train` or :meth:`ByteLevelBPE.load`)
   is ordinary text: it is encoded byte by byte and merged like any other text, and never
   becomes a special id.
2. **Pre-tokenization** with GPT-2's regular expression :data:`GPT2_PATTERN` cuts each
   stretch of ordinary text into *words*; merges never cross a word boundary. Its
   alternatives, tried left to right at each position:

   * ``'s|'t|'re|'ve|'m|'ll|'d``: the English contractions, a word of their own
     ("don't" -> "don", "'t"), so "'t" is one token wherever it occurs. Only lower case:
     "DON'T" gives "DON", "'", "T".
   * `` ?\\p{L}+``: a run of letters (of any script), with at most one space in front.
     The space belongs to the word that follows it, so " the" in mid-sentence is one
     word, and one token once it is merged, instead of a space token plus "the".
   * `` ?\\p{N}+``: a run of digits (any numeral system), again with one optional leading
     space. Letters and digits never share a word: "abc123" gives "abc", "123".
   * `` ?[^\\s\\p{L}\\p{N}]+``: a run of anything else (punctuation, symbols, emoji,
     combining accents), with one optional leading space.
   * ``\\s+(?!\\S)``: a run of whitespace that is not followed by a non-space; where a run
     precedes a word, it gives back its last space, which the word then takes
     ("a   b" gives "a", "  ", " b").
   * ``\\s+``: any whitespace left over (a run at the very end, or a single newline or tab
     before a word: "a\\nb" gives "a", "\\n", "b").

   Every character belongs to exactly one word, so joining the words gives the text back.
3. **Bytes and merges**: each word is written in UTF-8 and its bytes are merged by the
   learned merges, lowest rank first (the rank is the order in which training learned
   them): find the adjacent pair of lowest rank, merge all its occurrences left to right,
   repeat until no adjacent pair has a rank. The ids of the resulting tokens are the
   encoding. Words are cached, so a frequent word is merged once.

Training (:meth:`ByteLevelBPE.train`) counts, over the words of the training text (each
counted as often as it occurs), every adjacent pair of tokens, merges the most frequent
pair into a new token, and repeats until the vocabulary has the requested size or no pair
of at least ``min_frequency`` occurrences is left. **Ties**: among pairs of equal count,
the pair whose two byte strings compare smallest, first token first
(``(bytes_a, bytes_b)`` in Python's order of bytes objects), is merged; so training is
deterministic and does not depend on the order of the text's words. The pair counts are
kept up to date **incrementally**: an index from each pair to the words that contain it
means that after a merge only those words are re-counted. ``algorithm="recount"`` recounts
every pair of every word after each merge instead: slower, the same merges, kept to check
the incremental bookkeeping against.

**Ids.** In a trained tokenizer, ids 0..255 are the bytes 0..255 in byte order, then one
id per merge in rank order, then the special tokens in the order given. (GPT-2's own
vocabulary orders its 256 byte tokens differently: printable bytes first, so its id 0 is
the byte of "!". :meth:`ByteLevelBPE.load` accepts any numbering.) If two merges ever
produce the same byte string they share one id, as GPT-2's files (a mapping from token
string to id) require.

**Files.** :meth:`ByteLevelBPE.save` and :meth:`ByteLevelBPE.load` use GPT-2's published
format: ``encoder.json``, a JSON object from token string to id, and ``vocab.bpe``, a first
line ``#version: 0.2`` and then one merge ``"a b"`` per line in rank order. A token's bytes
are shown there through GPT-2's printable byte-to-character table (:func:`bytes_to_unicode`):
the 188 bytes that are printable, non-space characters in Latin-1 stand for themselves and
the other 68 (control bytes, the space, the non-breaking space, the soft hyphen) become the
characters U+0100 onwards, in byte order. So the space byte is shown as "Ġ" (U+0120) and
the newline as "Ċ" (U+010A), and no token string contains a real space, which lets a merge
line be split at its one space.
"""
from __future__ import annotations

import heapq
import json
import operator
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

import regex

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_WORD = regex.compile(GPT2_PATTERN)
MERGES_HEADER = "#version: 0.2"
_CACHE_LIMIT = 200_000          # words kept in the encoding cache before it is emptied


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table from each byte value 0..255 to a printable character (one-to-one).

    The bytes whose Latin-1 character is printable and not a space ('!'..'~', '¡'..'¬',
    '®'..'ÿ': 188 of them) map to that character; the remaining 68 map to chr(256),
    chr(257), ... in increasing byte order. So 32 (space) -> 'Ġ', 10 (newline) -> 'Ċ'.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    others = [b for b in range(256) if b not in table]
    for n, b in enumerate(others):
        table[b] = chr(256 + n)
    return dict(sorted(table.items()))


_BYTE_TO_CHAR = bytes_to_unicode()
_CHAR_TO_BYTE = {c: b for b, c in _BYTE_TO_CHAR.items()}


def pretokenize(text: str) -> list[str]:
    """Cut ``text`` into GPT-2's words (module docstring, step 2); ``"".join(words) == text``."""
    _require_str("pretokenize", "text", text)
    return _WORD.findall(text)


def token_to_printable(token: bytes) -> str:
    """A token's bytes as GPT-2's files show them: each byte through :func:`bytes_to_unicode`."""
    if not isinstance(token, (bytes, bytearray)):
        raise TypeError(f"token_to_printable: token must be bytes, got {type(token).__name__}")
    return "".join(_BYTE_TO_CHAR[b] for b in token)


def printable_to_token(shown: str) -> bytes:
    """The inverse of :func:`token_to_printable`; ValueError for a character outside the table."""
    _require_str("printable_to_token", "shown", shown)
    out = bytearray()
    for position, char in enumerate(shown):
        if char not in _CHAR_TO_BYTE:
            raise ValueError(f"printable_to_token: shown[{position}] = {char!r} (U+{ord(char):04X}) "
                             "is not one of the 256 characters of GPT-2's byte table")
        out.append(_CHAR_TO_BYTE[char])
    return bytes(out)


# --------------------------------------------------------------------------- argument checks

def _require_str(func: str, name: str, value) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{func}: {name} must be a str, got {type(value).__name__}")


def _as_int(func: str, name: str, value, low: int) -> int:
    """``value`` as a Python int >= low (NumPy integers welcome, bools not)."""
    if isinstance(value, bool):
        raise TypeError(f"{func}: {name} must be an integer, got a bool ({value!r})")
    try:
        value_int = operator.index(value)
    except TypeError:
        raise TypeError(f"{func}: {name} must be an integer, got {type(value).__name__} {value!r}") from None
    if value_int < low:
        raise ValueError(f"{func}: {name} must be >= {low}, got {value_int}")
    return value_int


def _path(func: str, name: str, value) -> Path:
    """``value`` (a str or os.PathLike naming a file) as a Path, or a named error."""
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{func}: {name} must be a file path (a str or pathlib.Path), got "
                        f"{type(value).__name__} {value!r}"[:300])
    text = os.fspath(value)
    if not isinstance(text, str) or not text:
        raise ValueError(f"{func}: {name} must name a file, got {value!r}")
    try:
        os.fsencode(text)
    except UnicodeEncodeError as err:
        raise ValueError(f"{func}: {name} cannot be a file name on this system ({err.reason} "
                         f"at position {err.start})") from None
    return Path(text)


def _read_text(func: str, name: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{func}: {name} {str(path)!r} is not UTF-8 text (byte {err.start} "
                         f"cannot be decoded); GPT-2's files are UTF-8") from None


def _utf8(func: str, text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"{func}: text[{err.start}] is the lone surrogate U+{ord(text[err.start]):04X}, "
                         "which UTF-8 cannot write; only valid Unicode text can be encoded") from None


def _check_special_tokens(func: str, special_tokens) -> tuple[str, ...]:
    if isinstance(special_tokens, (str, bytes)):
        raise TypeError(f"{func}: special_tokens must be a sequence of str (e.g. ('<|endoftext|>',)), "
                        f"got a single {type(special_tokens).__name__} {special_tokens!r}")
    try:
        specials = tuple(special_tokens)
    except TypeError:
        raise TypeError(f"{func}: special_tokens must be a sequence of str, "
                        f"got {type(special_tokens).__name__}") from None
    for position, token in enumerate(specials):
        if not isinstance(token, str):
            raise TypeError(f"{func}: special_tokens[{position}] must be a str, got {type(token).__name__}")
        if not token:
            raise ValueError(f"{func}: special_tokens[{position}] is the empty string; a special "
                             "token needs at least one character")
        _utf8(func, token)
    seen = set()
    for token in specials:
        if token in seen:
            raise ValueError(f"{func}: special_tokens lists {token!r} twice; each special token needs "
                             "exactly one id")
        seen.add(token)
    return specials


# --------------------------------------------------------------------------- merging

def _merge_word(tokens: list[int], a: int, b: int, new: int) -> list[int]:
    """Replace each occurrence of a followed by b, left to right, by ``new``."""
    merged, i, n = [], 0, len(tokens)
    while i < n:
        if i + 1 < n and tokens[i] == a and tokens[i + 1] == b:
            merged.append(new)
            i += 2
        else:
            merged.append(tokens[i])
            i += 1
    return merged


def _pairs(tokens: list[int]) -> Counter:
    return Counter(zip(tokens, tokens[1:]))


class _Trainer:
    """The training loop's state: words as lists of ids, their counts, the vocabulary."""

    def __init__(self, word_counts: Counter, min_frequency: int):
        self.words = [list(word) for word in word_counts]          # each word: list of ids
        self.counts = list(word_counts.values())
        self.min_frequency = min_frequency
        self.id_to_bytes: list[bytes] = [bytes([b]) for b in range(256)]
        self.bytes_to_id: dict[bytes, int] = {t: i for i, t in enumerate(self.id_to_bytes)}
        self.merges: list[tuple[int, int]] = []
        self.merged: set[tuple[int, int]] = set()

    def key(self, pair, count):
        """Sort key: the most frequent pair first, ties to the smallest (bytes_a, bytes_b)."""
        return (-count, self.id_to_bytes[pair[0]], self.id_to_bytes[pair[1]])

    def new_id(self, pair) -> int:
        """The id of the merged token (an existing id when the byte string is already known);
        records the merge unless this pair was merged before."""
        a, b = pair
        joined = self.id_to_bytes[a] + self.id_to_bytes[b]
        if joined not in self.bytes_to_id:
            self.bytes_to_id[joined] = len(self.id_to_bytes)
            self.id_to_bytes.append(joined)
        if pair not in self.merged:     # a pair can only come back if a merge re-created a token
            self.merged.add(pair)
            self.merges.append(pair)
        return self.bytes_to_id[joined]

    def run_recount(self, target: int) -> None:
        """After every merge, count every pair of every word again (the naive way)."""
        while len(self.id_to_bytes) < target:
            pair_counts: Counter = Counter()
            for word, count in zip(self.words, self.counts):
                for pair in zip(word, word[1:]):
                    pair_counts[pair] += count
            if not pair_counts:
                return
            best = min(pair_counts, key=lambda p: self.key(p, pair_counts[p]))
            if pair_counts[best] < self.min_frequency:
                return
            new = self.new_id(best)
            self.words = [_merge_word(w, *best, new) if len(w) > 1 else w for w in self.words]

    def run_incremental(self, target: int) -> None:
        """Keep pair counts and a pair -> words index up to date; re-count only changed words."""
        pair_counts: dict[tuple[int, int], int] = defaultdict(int)
        where: dict[tuple[int, int], set[int]] = defaultdict(set)
        for index, (word, count) in enumerate(zip(self.words, self.counts)):
            for pair in zip(word, word[1:]):
                pair_counts[pair] += count
                where[pair].add(index)
        heap = [(*self.key(p, c), p) for p, c in pair_counts.items()]
        heapq.heapify(heap)
        while len(self.id_to_bytes) < target:
            best = None
            while heap:
                neg_count, _, _, pair = heapq.heappop(heap)
                if pair_counts.get(pair, 0) == -neg_count and -neg_count > 0:
                    best = pair          # an entry is current only if its count still holds
                    break
            if best is None or pair_counts[best] < self.min_frequency:
                return
            new = self.new_id(best)
            changed: dict[tuple[int, int], int] = defaultdict(int)
            for index in where.pop(best):
                word, count = self.words[index], self.counts[index]
                if len(word) < 2:
                    continue
                before = _pairs(word)
                if best not in before:   # a stale index entry: the pair left this word earlier
                    continue
                word = _merge_word(word, *best, new)
                self.words[index] = word
                after = _pairs(word)
                for pair, n in before.items():
                    changed[pair] -= n * count
                for pair, n in after.items():
                    changed[pair] += n * count
                    where[pair].add(index)
            for pair, delta in changed.items():
                if delta:
                    pair_counts[pair] += delta
                    if pair_counts[pair] > 0:
                        heapq.heappush(heap, (*self.key(pair, pair_counts[pair]), pair))
            pair_counts.pop(best, None)


# --------------------------------------------------------------------------- the tokenizer

class ByteLevelBPE:
    """Byte-level BPE with GPT-2's pre-tokenization and special tokens (module docstring).

    ``ByteLevelBPE().train(text, vocab_size, special_tokens=("<|endoftext|>",))`` learns
    merges; :meth:`encode`, :meth:`decode`, :meth:`encode_iterable` use them;
    :meth:`save` / :meth:`load` read and write GPT-2's ``encoder.json`` / ``vocab.bpe``.
    An untrained ``ByteLevelBPE()`` has the 256 byte tokens and no merges: it already
    encodes every text, one token per byte.
    """

    def __init__(self):
        self._set(id_to_bytes=[bytes([b]) for b in range(256)], merges=[], special_tokens={})

    # ------------------------------------------------------------------ state
    def _set(self, id_to_bytes: list, merges: list[tuple[int, int]], special_tokens: dict[str, int]) -> None:
        """id_to_bytes: entry i is token i's bytes (None at special tokens' ids);
        merges: (id_a, id_b) in rank order; special_tokens: text -> id."""
        self._id_to_bytes = list(id_to_bytes)
        self._bytes_to_id = {t: i for i, t in enumerate(self._id_to_bytes) if t is not None}
        self._byte_ids = [self._bytes_to_id[bytes([b])] for b in range(256)]
        self._merges = list(merges)
        self._ranks = {pair: (rank, self._bytes_to_id[self._id_to_bytes[pair[0]] + self._id_to_bytes[pair[1]]])
                       for rank, pair in reversed(list(enumerate(self._merges)))}
        self._special_to_id = dict(special_tokens)
        self._id_to_special = {i: s for s, i in self._special_to_id.items()}
        self._max_special = max((len(s) for s in self._special_to_id), default=0)
        self._special_re = (regex.compile("|".join(regex.escape(s) for s in sorted(
            self._special_to_id, key=lambda s: (-len(s), s)))) if self._special_to_id else None)
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        """|V|: bytes, merged tokens and special tokens; ids run from 0 to vocab_size - 1."""
        return len(self._id_to_bytes)

    @property
    def merges(self) -> list[tuple[bytes, bytes]]:
        """The learned merges as pairs of byte strings, in rank order."""
        return [(self._id_to_bytes[a], self._id_to_bytes[b]) for a, b in self._merges]

    @property
    def special_tokens(self) -> dict[str, int]:
        """Special token text -> id."""
        return dict(self._special_to_id)

    def token_bytes(self, token_id) -> bytes:
        """The bytes of one token (a special token's UTF-8 text for a special id)."""
        token_id = self._check_ids("ByteLevelBPE.token_bytes", [token_id], name="token_id")[0]
        if token_id in self._id_to_special:
            return self._id_to_special[token_id].encode("utf-8")
        return self._id_to_bytes[token_id]

    def __repr__(self) -> str:
        return (f"ByteLevelBPE(vocab_size={self.vocab_size}, merges={len(self._merges)}, "
                f"special_tokens={list(self._special_to_id)})")

    # ------------------------------------------------------------------ training
    def train(self, text: str, vocab_size: int, special_tokens=(), *, min_frequency: int = 1,
              algorithm: str = "incremental") -> "ByteLevelBPE":
        """Learn merges from ``text`` until |V| = ``vocab_size`` (or no pair occurs
        ``min_frequency`` times); returns ``self``.

        ``vocab_size`` counts the 256 bytes, the merged tokens and the special tokens, so it
        must be at least 256 + len(special_tokens). The special tokens' text is cut out of
        ``text`` before counting, so no merge ever spans or enters one. ``algorithm`` is
        ``"incremental"`` (an index from pairs to words; only changed words are re-counted)
        or ``"recount"`` (every pair re-counted after each merge; the same result, slowly).
        Training replaces whatever this tokenizer held before.
        """
        func = "ByteLevelBPE.train"
        _require_str(func, "text", text)
        specials = _check_special_tokens(func, special_tokens)
        vocab_size = _as_int(func, "vocab_size", vocab_size, 0)
        if vocab_size < 256 + len(specials):
            raise ValueError(f"{func}: vocab_size must be at least 256 + {len(specials)} (the bytes and "
                             f"the special tokens), got {vocab_size}")
        min_frequency = _as_int(func, "min_frequency", min_frequency, 1)
        if not isinstance(algorithm, str) or algorithm not in ("incremental", "recount"):
            raise ValueError(f"{func}: algorithm must be 'incremental' or 'recount', got {algorithm!r}")
        _utf8(func, text)
        if specials:
            pieces = regex.split("|".join(regex.escape(s) for s in sorted(specials, key=lambda s: (-len(s), s))),
                                 text)
        else:
            pieces = [text]
        word_counts: Counter = Counter()
        for piece in pieces:
            word_counts.update(_WORD.findall(piece))
        trainer = _Trainer(Counter({tuple(w.encode("utf-8")): c for w, c in word_counts.items()}),
                           min_frequency)
        target = vocab_size - len(specials)
        if algorithm == "incremental":
            trainer.run_incremental(target)
        else:
            trainer.run_recount(target)
        id_to_bytes = trainer.id_to_bytes + [None] * len(specials)
        first = len(trainer.id_to_bytes)
        self._set(id_to_bytes, trainer.merges, {s: first + k for k, s in enumerate(specials)})
        return self

    # ------------------------------------------------------------------ encoding
    def _encode_word(self, word: str) -> list[int]:
        ids = self._cache.get(word)
        if ids is not None:
            return ids
        ids = [self._byte_ids[b] for b in word.encode("utf-8")]
        ranks = self._ranks
        while len(ids) > 1:
            best = None
            for pair in zip(ids, ids[1:]):
                found = ranks.get(pair)
                if found is not None and (best is None or found[0] < best[1][0]):
                    best = (pair, found)
            if best is None:
                break
            (a, b), (_, new) = best
            ids = _merge_word(ids, a, b, new)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[word] = ids
        return ids

    def _encode_ordinary(self, text: str, out: list[int]) -> None:
        for word in _WORD.findall(text):
            out.extend(self._encode_word(word))

    def encode(self, text: str) -> list[int]:
        """The token ids of ``text``: special tokens, then GPT-2's words, then merges."""
        func = "ByteLevelBPE.encode"
        _require_str(func, "text", text)
        _utf8(func, text)
        out: list[int] = []
        if self._special_re is None:
            self._encode_ordinary(text, out)
            return out
        start = 0
        for match in self._special_re.finditer(text):
            self._encode_ordinary(text[start:match.start()], out)
            out.append(self._special_to_id[match.group()])
            start = match.end()
        self._encode_ordinary(text[start:], out)
        return out

    def encode_iterable(self, lines: Iterable[str]) -> Iterator[int]:
        """Encode an iterable of strings (e.g. an open text file) lazily, in bounded memory.

        Guarantee: the ids yielded, concatenated, equal ``encode("".join(lines))`` exactly,
        wherever the strings are cut (mid-word and mid-special-token included). They are
        *not* the concatenation of ``encode(line)`` for each line: a word of GPT-2's
        pattern can cross a line boundary (the lines ``"a\\n"``, ``"  b"`` give the words
        ``"a"``, ``"\\n "``, ``" b"``: the newline and the first space of the indentation
        are one word; ``"x'"``, ``"s"`` give ``"x"``, ``"'s"``). So after reading a
        string, the ids of all but the last two words (and of any text that could still
        begin a special token) are yielded; the rest waits for the next string, and the
        end of the iterable flushes it. Memory: the strings are read one at a time; what
        is kept is the undecided tail (at most the last two words plus one string).
        """
        func = "ByteLevelBPE.encode_iterable"
        if isinstance(lines, (str, bytes)):
            raise TypeError(f"{func}: lines must be an iterable of str (e.g. a list of lines or an "
                            f"open text file), got a single {type(lines).__name__}; use encode() for one string")
        try:
            iterator = iter(lines)
        except TypeError:
            raise TypeError(f"{func}: lines must be an iterable of str, got {type(lines).__name__}") from None
        return self._encode_iterable(func, iterator)

    def _encode_iterable(self, func: str, iterator) -> Iterator[int]:
        pending = ""
        for position, chunk in enumerate(iterator):
            if not isinstance(chunk, str):
                raise TypeError(f"{func}: lines[{position}] must be a str, got {type(chunk).__name__}")
            _utf8(func, chunk)
            pending += chunk
            out: list[int] = []
            pending = self._encode_settled(pending, out)
            yield from out
        yield from self.encode(pending)

    def _encode_settled(self, pending: str, out: list[int]) -> str:
        """Encode the part of ``pending`` that no continuation can change; return the rest."""
        start = 0
        end = len(pending)
        if self._special_re is not None:
            # a special token starting at s is final once any special token starting at or
            # before s would end inside the text: s + (longest special) <= len(pending)
            for match in self._special_re.finditer(pending):
                if match.start() + self._max_special > end:
                    end = match.start()
                    break
                self._encode_ordinary(pending[start:match.start()], out)
                out.append(self._special_to_id[match.group()])
                start = match.end()
            end = min(end, max(start, len(pending) - self._max_special + 1))
        # Ordinary text from start to end; no special token begins in it. All of its words
        # but the last two are final. A word ends where a character stops it (a non-letter
        # after letters; a non-space after a whitespace run, which then gives back its last
        # space), and for every word but the last that character is inside the text. Only
        # the contractions ('re, 've, 'll) need more: two characters after the apostrophe,
        # so "'r" at the end may yet become "'re"; that changes the last two words, no other.
        # (tests/test_byte_bpe.py checks this against encode() on random cuts.)
        words = [m.start() for m in _WORD.finditer(pending, start, end)]
        if len(words) <= 2:
            return pending[start:]
        cut = words[-2]
        self._encode_ordinary(pending[start:cut], out)
        return pending[cut:]

    # ------------------------------------------------------------------ decoding
    def _check_ids(self, func: str, ids, name: str = "ids") -> list[int]:
        if isinstance(ids, (str, bytes)):
            raise TypeError(f"{func}: {name} must be a sequence of integers, got {type(ids).__name__}")
        try:
            ids = list(ids)
        except TypeError:
            raise TypeError(f"{func}: {name} must be a sequence of integers, got {type(ids).__name__}") from None
        checked = []
        for position, token_id in enumerate(ids):
            label = name if name == "token_id" else f"{name}[{position}]"
            if isinstance(token_id, bool):
                raise TypeError(f"{func}: {label} must be an integer, got a bool")
            try:
                token_id = operator.index(token_id)
            except TypeError:
                raise TypeError(f"{func}: {label} must be an integer, got "
                                f"{type(token_id).__name__} {token_id!r}") from None
            if not 0 <= token_id < self.vocab_size:
                raise ValueError(f"{func}: {label} = {token_id} is outside the vocabulary "
                                 f"(ids run from 0 to {self.vocab_size - 1})")
            checked.append(token_id)
        return checked

    def decode_bytes(self, ids) -> bytes:
        """The bytes of the tokens ``ids``, joined (special tokens as their UTF-8 text)."""
        return self._join(self._check_ids("ByteLevelBPE.decode_bytes", ids))

    def _join(self, ids: list[int]) -> bytes:
        specials, table = self._id_to_special, self._id_to_bytes
        return b"".join(specials[i].encode("utf-8") if i in specials else table[i] for i in ids)

    def decode(self, ids, errors: str = "replace") -> str:
        """The text of ``ids``: their bytes joined, read as UTF-8.

        ``decode(encode(text)) == text`` for every text. An arbitrary id sequence can cut a
        character's bytes apart (a token may hold half of a 2-4-byte character); such bytes
        become U+FFFD with ``errors="replace"`` (GPT-2's choice) or raise with ``"strict"``.
        """
        ids = self._check_ids("ByteLevelBPE.decode", ids)
        if not isinstance(errors, str) or errors not in ("replace", "strict"):
            raise ValueError(f"ByteLevelBPE.decode: errors must be 'replace' or 'strict', got {errors!r}")
        data = self._join(ids)
        try:
            return data.decode("utf-8", errors=errors)
        except UnicodeDecodeError as err:       # keep the type (a ValueError), name the argument
            raise UnicodeDecodeError(
                err.encoding, err.object, err.start, err.end,
                f"{err.reason}: ByteLevelBPE.decode(ids, errors='strict'): the tokens of ids "
                "cut a character's UTF-8 bytes apart (errors='replace' shows them as U+FFFD)") from None

    # ------------------------------------------------------------------ files
    def save(self, vocab_path, merges_path) -> None:
        """Write ``encoder.json`` (token string -> id) and ``vocab.bpe`` (merges) in GPT-2's format."""
        func = "ByteLevelBPE.save"
        vocab_path, merges_path = _path(func, "vocab_path", vocab_path), _path(func, "merges_path", merges_path)
        vocab: dict[str, int] = {}
        for token_id, token in enumerate(self._id_to_bytes):
            shown = self._id_to_special[token_id] if token is None else token_to_printable(token)
            if shown in vocab:
                raise ValueError(f"{func}: the special token {shown!r} is spelled like token "
                                 f"{vocab[shown]} in GPT-2's byte table; encoder.json cannot hold both")
            vocab[shown] = token_id
        lines = [MERGES_HEADER] + [f"{token_to_printable(a)} {token_to_printable(b)}" for a, b in self.merges]
        Path(vocab_path).write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        Path(merges_path).write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, vocab_path, merges_path, special_tokens=()) -> "ByteLevelBPE":
        """Read GPT-2's ``encoder.json`` and ``vocab.bpe`` (see the module docstring).

        ``special_tokens`` names the keys of ``encoder.json`` that are special tokens (GPT-2:
        ``("<|endoftext|>",)``, id 50256); every other key is read through GPT-2's byte
        table. The ids must run from 0 to len - 1, every single byte must have a token, and
        each merge's two parts and their join must be tokens of the vocabulary.
        """
        func = "ByteLevelBPE.load"
        vocab_path, merges_path = _path(func, "vocab_path", vocab_path), _path(func, "merges_path", merges_path)
        specials = _check_special_tokens(func, special_tokens)
        try:
            vocab = json.loads(_read_text(func, "vocab_path", vocab_path))
        except json.JSONDecodeError as err:
            raise ValueError(f"{func}: vocab_path {str(vocab_path)!r} is not valid JSON ({err})") from None
        if not isinstance(vocab, dict):
            raise ValueError(f"{func}: vocab_path must hold a JSON object (token string -> id), "
                             f"got a JSON {type(vocab).__name__}")
        id_to_bytes: list = [None] * len(vocab)
        special_ids: dict[str, int] = {}
        for shown, token_id in vocab.items():
            if isinstance(token_id, bool) or not isinstance(token_id, int) or not 0 <= token_id < len(vocab):
                raise ValueError(f"{func}: vocab_path maps {shown!r} to {token_id!r}; ids must be the "
                                 f"integers 0 to {len(vocab) - 1}, each used once")
            if token_id in special_ids.values() or id_to_bytes[token_id] is not None:
                raise ValueError(f"{func}: vocab_path gives the id {token_id} to more than one token "
                                 f"(one of them {shown!r}); each id must be used once")
            if shown in specials:
                special_ids[shown] = token_id
                continue
            try:
                token = printable_to_token(shown)
            except ValueError as err:
                raise ValueError(f"{func}: vocab_path has the key {shown!r}, which is neither a special "
                                 f"token nor spelled in GPT-2's byte table ({err})") from None
            if not token:
                raise ValueError(f"{func}: vocab_path has the empty key '' (id {token_id}); a token "
                                 "holds at least one byte")
            id_to_bytes[token_id] = token
        missing = [s for s in specials if s not in special_ids]
        if missing:
            raise ValueError(f"{func}: special_tokens {missing} are not keys of vocab_path; a special "
                             "token needs its id in encoder.json")
        known = {t: i for i, t in enumerate(id_to_bytes) if t is not None}
        if len(known) != len(id_to_bytes) - len(special_ids):
            raise ValueError(f"{func}: vocab_path spells the same bytes twice; each token must be distinct")
        absent = [b for b in range(256) if bytes([b]) not in known]
        if absent:
            raise ValueError(f"{func}: vocab_path lacks the single-byte tokens of {len(absent)} byte "
                             f"values (the first: {absent[0]}); a byte-level vocabulary has all 256")
        merges = cls._read_merges(func, merges_path, known)
        tokenizer = cls()
        tokenizer._set(id_to_bytes, merges, special_ids)
        return tokenizer

    @staticmethod
    def _read_merges(func: str, path: Path, known: dict[bytes, int]) -> list[tuple[int, int]]:
        lines = _read_text(func, "merges_path", path).split("\n")
        if not lines[0].startswith("#version"):
            raise ValueError(f"{func}: merges_path must start with a line '{MERGES_HEADER}', "
                             f"got {lines[0][:40]!r}")
        while lines and lines[-1] == "":
            lines.pop()
        merges, seen = [], set()
        for number, line in enumerate(lines[1:], start=2):
            parts = line.split(" ")
            if len(parts) != 2 or not parts[0] or not parts[1]:
                raise ValueError(f"{func}: merges_path line {number} must be two tokens separated by "
                                 f"one space, got {line!r}")
            try:
                a, b = printable_to_token(parts[0]), printable_to_token(parts[1])
            except ValueError as err:
                raise ValueError(f"{func}: merges_path line {number} ({line!r}): {err}") from None
            for part, token in ((parts[0], a), (parts[1], b), (parts[0] + parts[1], a + b)):
                if token not in known:
                    raise ValueError(f"{func}: merges_path line {number} ({line!r}): {part!r} is not a "
                                     "token of vocab_path")
            pair = (known[a], known[b])
            if pair in seen:
                raise ValueError(f"{func}: merges_path line {number} repeats the merge {line!r}")
            seen.add(pair)
            merges.append(pair)
        return merges
