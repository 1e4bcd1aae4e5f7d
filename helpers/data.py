"""Data for chapter 11: three tasks, each deterministic given its seed.

(a) Dates in words -> ISO dates ("twenty-third of november two thousand twenty-six" ->
    "2026-11-23"): a translation task made in code. The year comes last in the source and
    first in the target, the day first in the source and last in the target, so the
    decoder's cross-attention has to learn where to look (an alignment).
(b) Tiny Shakespeare as characters: shipped in data/ (data/README.md), checked by sha256;
    downloaded from its public address if missing; or read from any local path.
(c) Text from a small Markov chain with a known transition matrix P: its entropy rate
    H = -sum_i pi_i sum_j P_ij ln P_ij is the lowest average loss any model can reach, so
    a trained model's loss can be compared with the best possible one.

Batches come from samplers whose whole state (generator, epoch, position) goes into a
checkpoint, so a resumed run sees the same batches as an uninterrupted one.
"""
from __future__ import annotations

import bisect
import datetime as _dt
import hashlib
import math
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .tokenizers import CharTokenizer, Vocabulary

TINY_SHAKESPEARE_URL = ("https://raw.githubusercontent.com/karpathy/char-rnn/master/"
                        "data/tinyshakespeare/input.txt")
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TINY_SHAKESPEARE_CHARS = 1_115_394
# The course's data folder (data/ beside helpers/): Tiny Shakespeare is shipped there
# (data/README.md gives its source and sha256), and downloads are cached there.
DATA_DIR = Path(__file__).resolve().parents[1] / "data"


class DownloadError(RuntimeError):
    """A download failed or its content did not have the expected sha256."""


# --------------------------------------------------------------------------- (a) dates

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORDINALS = ["", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
             "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth",
             "sixteenth", "seventeenth", "eighteenth", "nineteenth"]
_TENS_ORDINAL = {2: "twentieth", 3: "thirtieth"}
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]
DATE_FORMATS = ("{day} of {month} {year}", "{month} {day} {year}", "the {day} of {month} {year}")
PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"


def cardinal_words(n: int) -> str:
    """0..99 in words: 7 -> 'seven', 42 -> 'forty-two'."""
    if not 0 <= n < 100:
        raise ValueError(f"cardinal_words: n must lie in 0..99, got {n}")
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + ("-" + _ONES[ones] if ones else "")


def ordinal_words(n: int) -> str:
    """1..31 as an ordinal: 1 -> 'first', 23 -> 'twenty-third', 30 -> 'thirtieth'."""
    if not 1 <= n <= 31:
        raise ValueError(f"ordinal_words: n must lie in 1..31, got {n}")
    if n < 20:
        return _ORDINALS[n]
    tens, ones = divmod(n, 10)
    return _TENS_ORDINAL[tens] if ones == 0 else _TENS[tens] + "-" + _ORDINALS[ones]


def year_words(year: int) -> str:
    """1950..2049 as spoken: 1984 -> 'nineteen eighty-four', 2026 -> 'two thousand twenty-six'."""
    if 1900 <= year <= 1999:
        rest = year - 1900
        if rest == 0:
            return "nineteen hundred"
        return "nineteen " + ("oh " + _ONES[rest] if rest < 10 else cardinal_words(rest))
    if 2000 <= year <= 2099:
        rest = year - 2000
        return "two thousand" + (" " + cardinal_words(rest) if rest else "")
    raise ValueError(f"year_words: year must lie in 1900..2099, got {year}")


def date_in_words(date: _dt.date, fmt: int = 0) -> str:
    """A date in one of the DATE_FORMATS, e.g. 'twenty-third of november two thousand twenty-six'."""
    return DATE_FORMATS[fmt].format(day=ordinal_words(date.day), month=MONTHS[date.month - 1],
                                    year=year_words(date.year))


def source_tokens(text: str) -> list[str]:
    """Words, with hyphenated compounds split: 'twenty-third of' -> ['twenty', 'third', 'of']."""
    return text.replace("-", " ").split()


def date_field_spans(source: str, target: str) -> dict:
    """Which source tokens spell the year, the month and the day of ``target`` ('YYYY-MM-DD').

    Returns {"year": [token indices], "month": [...], "day": [...]} into
    source_tokens(source); the target characters 0-3 are the year, 5-6 the month, 8-9 the day.
    """
    tokens = source_tokens(source)
    date = _dt.date.fromisoformat(target)
    year = source_tokens(year_words(date.year))
    day = source_tokens(ordinal_words(date.day))
    if tokens[-len(year):] != year:
        raise ValueError(f"date_field_spans: {source!r} does not end with the year of {target}")
    start = next(i for i in range(len(tokens)) if tokens[i:i + len(day)] == day)
    return {"year": list(range(len(tokens) - len(year), len(tokens))),
            "month": [tokens.index(MONTHS[date.month - 1])],
            "day": list(range(start, start + len(day)))}


TARGET_FIELDS = {0: "year", 1: "year", 2: "year", 3: "year", 5: "month", 6: "month", 8: "day", 9: "day"}


@dataclass
class DatePairs:
    """One split of the date task: parallel lists of source and target strings."""
    sources: list
    targets: list

    def __len__(self):
        return len(self.sources)


class DateTask:
    """Dates in words -> 'YYYY-MM-DD', every date of ``first_year``..``last_year`` in every format.

    The *dates* are split 80/10/10 into train/validation/test by a permutation seeded with
    ``seed``; a date's three wordings all go to the same split, so the test set holds dates
    the model never saw in any form. Source vocabulary: words (<pad> = 0); target
    vocabulary: <pad>, <bos>, <eos>, the digits and '-'.
    """

    def __init__(self, first_year: int = 1950, last_year: int = 2049, seed: int = 2026,
                 fractions=(0.8, 0.1, 0.1)):
        start, stop = _dt.date(first_year, 1, 1), _dt.date(last_year, 12, 31)
        dates = [start + _dt.timedelta(days=i) for i in range((stop - start).days + 1)]
        order = np.random.default_rng(seed).permutation(len(dates))
        n_train = int(fractions[0] * len(dates))
        n_val = int(fractions[1] * len(dates))
        parts = {"train": order[:n_train], "val": order[n_train:n_train + n_val],
                 "test": order[n_train + n_val:]}
        self.splits = {}
        for name, idx in parts.items():
            chosen = [dates[i] for i in sorted(idx)]
            self.splits[name] = DatePairs(
                [date_in_words(d, f) for d in chosen for f in range(len(DATE_FORMATS))],
                [d.isoformat() for d in chosen for f in range(len(DATE_FORMATS))])
        words = sorted({w for s in self.splits["train"].sources for w in source_tokens(s)}
                       | {w for s in self.splits["test"].sources for w in source_tokens(s)}
                       | {w for s in self.splits["val"].sources for w in source_tokens(s)})
        self.src_vocab = Vocabulary(words, specials=(PAD,))
        self.tgt_vocab = CharTokenizer("0123456789-", specials=(PAD, BOS, EOS))
        self.max_src_len = max(len(source_tokens(s)) for p in self.splits.values() for s in p.sources)
        self.max_tgt_len = 12  # <bos> + 10 characters + <eos>

    def encode_sources(self, sources) -> torch.Tensor:
        """Source strings -> (B, max_src_len) ids, padded with <pad> = 0 at the end."""
        out = torch.zeros(len(sources), self.max_src_len, dtype=torch.long)
        for i, s in enumerate(sources):
            ids = self.src_vocab.encode(source_tokens(s))
            out[i, :len(ids)] = torch.tensor(ids)
        return out

    def encode_targets(self, targets) -> torch.Tensor:
        """'2026-11-23' -> [<bos>, '2', '0', ..., '3', <eos>]: (B, 12) ids."""
        v = self.tgt_vocab
        return torch.tensor([[v[BOS]] + v.encode(t) + [v[EOS]] for t in targets], dtype=torch.long)

    def tensors(self, split: str):
        """(sources (N, n_src), targets (N, 12)) of a split as id tensors."""
        pairs = self.splits[split]
        return self.encode_sources(pairs.sources), self.encode_targets(pairs.targets)


# --------------------------------------------------------------------------- (b) Tiny Shakespeare

def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, destination, sha256: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``destination`` unless a file with the right sha256 is already there.

    The file is written to a temporary name and renamed only after its sha256 matched, so an
    interrupted or tampered download never leaves a file that looks valid. Raises
    :class:`DownloadError` on a network error or a sha256 mismatch.
    """
    destination = Path(destination)
    if destination.exists():
        found = sha256_of(destination)
        if found == sha256:
            return destination
        raise DownloadError(f"{destination} exists but its sha256 is {found}, expected {sha256}: "
                            "delete it to download it again")
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=destination.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    shutil.copyfileobj(response, out)
            except OSError as err:  # URLError, HTTPError, timeouts are all OSErrors
                raise DownloadError(f"could not download {url}: {err}") from err
        found = sha256_of(tmp)
        if found != sha256:
            raise DownloadError(f"the file downloaded from {url} has sha256 {found}, expected {sha256}: "
                                "it is not the expected file (changed upstream or corrupted); "
                                "nothing was saved")
        os.replace(tmp, destination)
        return destination
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_tiny_shakespeare(path=None, data_dir=DATA_DIR, url: str = TINY_SHAKESPEARE_URL,
                          sha256: str = TINY_SHAKESPEARE_SHA256) -> str:
    """The text of Tiny Shakespeare (1,115,394 characters).

    path: read this local file (no check). Otherwise ``data_dir``/tinyshakespeare.txt, which
    the course ships (data/README.md), is read after its sha256 is checked; if it is not
    there, it is downloaded once from ``url``, checked against ``sha256``, and kept there.
    """
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"--data-path {path} is not a file")
        return path.read_text(encoding="utf-8")
    return download(url, Path(data_dir) / "tinyshakespeare.txt", sha256).read_text(encoding="utf-8")


class TextCorpus:
    """A text as token ids: the first ``train_fraction`` of its characters is the training
    part, the rest the validation part, each encoded by ``vocab`` (any tokenizer with
    ``encode(str)``, ``decode(ids)`` and ``vocab_size``; default: a
    :class:`~helpers.tokenizers.CharTokenizer` of the whole text, one id per character)."""

    def __init__(self, text: str, train_fraction: float = 0.9, vocab=None):
        if not text:
            raise ValueError("TextCorpus: the text is empty")
        if not 0 < train_fraction < 1:
            raise ValueError(f"TextCorpus: train_fraction must lie in (0, 1), got {train_fraction!r}")
        self.vocab = vocab or CharTokenizer(text)
        cut = int(train_fraction * len(text))
        self.splits = {"train": torch.tensor(self.vocab.encode(text[:cut]), dtype=torch.long),
                       "val": torch.tensor(self.vocab.encode(text[cut:]), dtype=torch.long)}

    def __len__(self):
        return sum(len(v) for v in self.splits.values())



# --------------------------------------------------------------------------- (c) a Markov source

class MarkovSource:
    """A first-order Markov chain over characters with a known transition matrix.

    P[i, j] = Pr(next = j | current = i). Each symbol has ``branching`` possible successors
    (one of them the next symbol in a fixed cycle through all of them, so every symbol
    can reach every other) with probabilities drawn from a Dirichlet distribution.
    pi is the stationary distribution (pi P = pi), and the entropy rate

        H = -sum_i pi_i sum_j P_ij ln P_ij    (nats per character)

    is the expected loss of the best possible next-character predictor, which knows P.
    """

    def __init__(self, alphabet: str = " abcdefghijklmno", branching: int = 4,
                 concentration: float = 0.7, seed: int = 11):
        v = len(alphabet)
        if len(set(alphabet)) != v or v < 2:
            raise ValueError(f"MarkovSource: alphabet must hold >= 2 distinct characters, got {alphabet!r}")
        if not 1 <= branching <= v:
            raise ValueError(f"MarkovSource: branching must lie in 1..{v}, got {branching}")
        alphabet = "".join(sorted(alphabet))   # state i is the i-th character, its token id
        rng = np.random.default_rng(seed)
        P = np.zeros((v, v))
        for i in range(v):
            successors = {(i + 1) % v}
            others = [j for j in rng.permutation(v) if j not in successors]
            successors.update(others[:branching - 1])
            succ = sorted(successors)
            P[i, succ] = rng.dirichlet(np.full(len(succ), concentration))
        self.alphabet = alphabet
        self.P = P
        self.pi = stationary_distribution(P)
        self.vocab = CharTokenizer(alphabet)

    @property
    def entropy_rate(self) -> float:
        return entropy_rate(self.P, self.pi)

    def sample(self, n: int, seed: int = 0) -> str:
        """n characters of the chain, started from pi."""
        rng = np.random.default_rng(seed)
        cum = np.cumsum(self.P, axis=1)
        cum[:, -1] = 1.0
        cum_rows = [list(row) for row in cum]
        u = rng.random(n)
        state = int(np.searchsorted(np.cumsum(self.pi), u[0]))
        out = [state]
        for x in u[1:]:
            state = bisect.bisect_right(cum_rows[state], x)
            out.append(state)
        return "".join(self.alphabet[s] for s in out)


def stationary_distribution(P) -> np.ndarray:
    """pi with pi P = pi, sum pi = 1: the left eigenvector of P for eigenvalue 1.

    Raises ValueError unless that eigenvalue is simple and the only one of modulus 1
    (an irreducible, aperiodic chain, whose pi is unique and reached from any start).
    """
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] != P.shape[1]:
        raise ValueError(f"stationary_distribution: P must be square, got shape {P.shape}")
    if np.any(P < 0) or not np.allclose(P.sum(axis=1), 1.0):
        raise ValueError("stationary_distribution: every row of P must be a probability distribution")
    values, vectors = np.linalg.eig(P.T)
    on_circle = np.isclose(np.abs(values), 1.0, atol=1e-9)
    if on_circle.sum() != 1:
        raise ValueError("stationary_distribution: P is not irreducible and aperiodic "
                         f"({int(on_circle.sum())} eigenvalues of modulus 1)")
    pi = np.real(vectors[:, np.argmax(on_circle)])
    return pi / pi.sum()


def entropy_rate(P, pi=None) -> float:
    """H = -sum_i pi_i sum_j P_ij ln P_ij in nats (0 ln 0 = 0)."""
    P = np.asarray(P, dtype=np.float64)
    pi = stationary_distribution(P) if pi is None else np.asarray(pi)
    logs = np.where(P > 0, np.log(np.where(P > 0, P, 1.0)), 0.0)
    return float(-np.sum(pi[:, None] * P * logs))


# --------------------------------------------------------------------------- samplers

class GeneratorBatches:
    """A sampler whose whole state is its own torch.Generator: an endless iterator of
    batches with ``state_dict``/``load_state_dict``, so that a resumed run continues the
    same sequence of batches. Subclasses set ``self.generator`` and define ``__next__``."""

    generator: torch.Generator

    def __iter__(self):
        return self

    def state_dict(self):
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state):
        self.generator.set_state(state["generator"])


class LMBatches(GeneratorBatches):
    """Random windows of a token stream: x = ids[s : s+T], y = ids[s+1 : s+T+1].

    A window needs T + 1 tokens, so the starts s = 0 .. len(ids) - T - 1 are all valid and
    each is drawn with the same probability (the last one included, so the last token of
    the text is a target too). Each batch draws ``batch_size`` starts from its own
    torch.Generator, whose state is the sampler's state (``state_dict``), so a resumed run
    continues the same sequence.
    """

    def __init__(self, ids: torch.Tensor, batch_size: int, context: int, seed: int = 0):
        if len(ids) < context + 1:
            raise ValueError(f"LMBatches: the text has {len(ids)} tokens, fewer than context + 1 = "
                             f"{context + 1} (a window of {context} inputs and its next token)")
        self.ids, self.batch_size, self.context = ids, batch_size, context
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def num_starts(self) -> int:
        """How many windows there are: len(ids) - context."""
        return len(self.ids) - self.context

    def __next__(self):
        starts = torch.randint(self.num_starts, (self.batch_size,), generator=self.generator)
        idx = starts[:, None] + torch.arange(self.context + 1)
        window = self.ids[idx]
        return window[:, :-1], window[:, 1:]


class PairBatches(GeneratorBatches):
    """Shuffled mini-batches of (source, target) pairs, epoch after epoch.

    State: the generator, the current epoch's permutation and the position in it.
    """

    def __init__(self, sources: torch.Tensor, targets: torch.Tensor, batch_size: int, seed: int = 0):
        if len(sources) != len(targets):
            raise ValueError(f"PairBatches: {len(sources)} sources but {len(targets)} targets")
        self.sources, self.targets, self.batch_size = sources, targets, min(batch_size, len(sources))
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(len(sources), generator=self.generator)
        self.position = 0
        self.epoch = 0

    def __next__(self):
        if self.position + self.batch_size > len(self.order):
            self.order = torch.randperm(len(self.sources), generator=self.generator)
            self.position = 0
            self.epoch += 1
        idx = self.order[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        return self.sources[idx], self.targets[idx]

    def state_dict(self):
        return {**super().state_dict(), "order": self.order.clone(), "position": self.position,
                "epoch": self.epoch}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.order = state["order"].clone()
        self.position, self.epoch = int(state["position"]), int(state["epoch"])


def uniform_loss(vocab_size: int) -> float:
    """The loss of predicting every token with probability 1/V: ln V."""
    return math.log(vocab_size)


# --------------------------------------------------------------------------- (d) a copy task

class InductionCorpus:
    """Sequences in which the next symbol is decided by one far back: a task for induction heads.

    Each sequence has n = prefix_length + copy_length symbols of the alphabet ``symbols``
    (V of them):

    * a **prefix** A = a_0 .. a_{m-1} of m = ``prefix_length`` *distinct* symbols, in random
      order (every ordered choice of m symbols out of V equally likely);
    * a **copy**: the run a_r, a_{r+1}, .., a_{r+k-1} of k = ``copy_length`` symbols of the
      prefix, starting at an offset r drawn uniformly from 0 .. m - k.

    For example with m = 6, k = 4: ``qfxbmt`` + ``fxbm`` (r = 1). After the first symbol of
    the copy every next symbol is the one that followed the current symbol in the prefix
    (the symbols are distinct, so that is unambiguous): a model has to find the earlier
    occurrence of the current symbol and read the symbol after it, however far back; the
    current symbol alone (a bigram table) says nothing about it.

    Exact conditional entropies (chapter 11 derives them). Target t (the symbol at position
    t, predicted from the t before it; t = 1 .. n - 1):

        t = 1 .. m - 1:  ln(V - t)        t distinct symbols are used, the rest equally likely
        t = m:           ln(m - k + 1)     the offset r, uniform over m - k + 1 values
        t > m:           0                 determined by the prefix and the copy so far

    The lowest mean loss per predicted symbol that any model can reach is their mean,
    :attr:`entropy_rate`.

    As a task for :mod:`helpers.trainer` (the interface of :mod:`helpers.tasks`): each batch
    is (x, y) = (sequences[:, :-1], sequences[:, 1:]) of freshly drawn sequences, so the
    context is n - 1 and no sequence is seen twice. The sampler's state (a torch.Generator)
    goes into checkpoints; evaluation batches are drawn from a generator seeded with
    (``seed``, split, batch seed) and are the same on every call.
    """

    kind = "decoder"
    _SPLIT_OFFSETS = {"train": 0, "val": 1, "test": 2}

    def __init__(self, symbols: str = "abcdefghijklmnopqrstuvwxyz", prefix_length: int = 20,
                 copy_length: int = 12, seed: int = 0, name: str = "induction"):
        if not isinstance(symbols, str) or len(set(symbols)) != len(symbols) or len(symbols) < 2:
            raise ValueError(f"InductionCorpus: symbols must be a string of >= 2 distinct characters, "
                             f"got {symbols!r}")
        v = len(symbols)
        for label, value in (("prefix_length", prefix_length), ("copy_length", copy_length), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if label == "seed" else 1):
                raise ValueError(f"InductionCorpus: {label} must be a "
                                 f"{'non-negative' if label == 'seed' else 'positive'} integer, got {value!r}")
        if not 2 <= prefix_length <= v:
            raise ValueError(f"InductionCorpus: prefix_length must lie in 2..{v} (the prefix holds distinct "
                             f"symbols out of V = {v}), got {prefix_length}")
        if not 1 <= copy_length <= prefix_length:
            raise ValueError(f"InductionCorpus: copy_length must lie in 1..prefix_length = {prefix_length}, "
                             f"got {copy_length}")
        self.symbols = "".join(sorted(symbols))
        self.vocab = CharTokenizer(self.symbols)
        self.vocab_size = v
        self.prefix_length, self.copy_length = prefix_length, copy_length
        self.sequence_length = prefix_length + copy_length
        self.context = self.sequence_length - 1
        self.seed = seed
        self.name = name

    # ---------------------------------------------------------------- the source
    def sequences(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """``count`` fresh sequences as ids, (count, n), drawn with ``generator``."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"InductionCorpus.sequences: count must be a positive integer, got {count!r}")
        m, k = self.prefix_length, self.copy_length
        keys = torch.rand(count, self.vocab_size, generator=generator)                # (count, V)
        prefix = keys.argsort(dim=1)[:, :m]                                           # (count, m) distinct
        offsets = torch.randint(m - k + 1, (count, 1), generator=generator)           # (count, 1)
        copy = prefix.gather(1, offsets + torch.arange(k))                            # (count, k)
        return torch.cat([prefix, copy], dim=1)                                       # (count, n)

    def sample(self, count: int, seed: int = 0) -> list[str]:
        """``count`` sequences as strings (seeded)."""
        ids = self.sequences(count, torch.Generator().manual_seed(seed))
        return ["".join(self.symbols[i] for i in row) for row in ids.tolist()]

    def position_entropies(self) -> np.ndarray:
        """H(x_t | x_<t) in nats for the targets t = 1 .. n - 1: shape (n - 1,)."""
        v, m, k = self.vocab_size, self.prefix_length, self.copy_length
        out = np.zeros(self.sequence_length - 1)
        out[:m - 1] = np.log(v - np.arange(1, m))                                     # t = 1 .. m - 1
        out[m - 1] = math.log(m - k + 1)                                              # t = m
        return out

    @property
    def entropy_rate(self) -> float:
        """The mean of :meth:`position_entropies`: the lowest expected loss per predicted symbol."""
        return float(self.position_entropies().mean())

    # ---------------------------------------------------------------- the task interface
    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "vocab": list(self.vocab.tokens),
                "prefix_length": self.prefix_length, "copy_length": self.copy_length, "seed": self.seed}

    def model_config(self, **overrides):
        from .model import ModelConfig
        values = dict(vocab_size=self.vocab_size, kind="decoder", max_len=self.context)
        values.update(overrides)
        return ModelConfig(**values)

    class Batches(GeneratorBatches):
        """Endless batches (x, y) of fresh sequences; state: the generator."""

        def __init__(self, corpus: "InductionCorpus", batch_size: int, generator: torch.Generator):
            self.corpus, self.batch_size, self.generator = corpus, batch_size, generator

        def __next__(self):
            seqs = self.corpus.sequences(self.batch_size, self.generator)             # (B, n)
            return seqs[:, :-1], seqs[:, 1:]

    def _generator(self, split: str, seed: int) -> torch.Generator:
        if split not in self._SPLIT_OFFSETS:
            raise ValueError(f"InductionCorpus: split must be one of {tuple(self._SPLIT_OFFSETS)}, got {split!r}")
        return torch.Generator().manual_seed(self.seed * 1_000_003 + seed * 3 + self._SPLIT_OFFSETS[split])

    def sampler(self, batch_size: int, seed: int) -> "InductionCorpus.Batches":
        return InductionCorpus.Batches(self, batch_size, self._generator("train", seed))

    def eval_batches(self, split: str, batch_size: int, n_batches: int, seed: int = 0):
        batches = InductionCorpus.Batches(self, batch_size, self._generator(split, seed))
        return [next(batches) for _ in range(n_batches)]

    @staticmethod
    def tokens_in(batch) -> int:
        return batch[0].numel()

    @staticmethod
    def loss(model, batch, fused: bool = False, label_smoothing: float = 0.0):
        """Mean cross-entropy of the next symbol (chapter 8): a language model's loss."""
        from .tasks import LanguageModelTask                  # tasks imports this module: import here
        return LanguageModelTask.loss(model, batch, fused=fused, label_smoothing=label_smoothing)
