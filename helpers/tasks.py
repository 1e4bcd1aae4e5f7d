"""What chapter 11 trains on: a task hands the training loop batches, a loss and a description.

* :class:`LanguageModelTask`: next-token prediction on a text (Tiny Shakespeare, the
  Markov corpus, any text), windows of ``context`` tokens;
* :class:`TranslationTask`: dates in words -> ISO dates with the encoder-decoder and teacher
  forcing.

:func:`make_task` builds the tasks of the command line (``python -m helpers.train --task``).
A task's ``describe()`` goes into every checkpoint, so a checkpoint is only ever resumed on
the task it was trained on.
"""
from __future__ import annotations

from pathlib import Path

import helpers

from .byte_bpe import ByteLevelBPE
from .data import (DATA_DIR, DateTask, LMBatches, MarkovSource, PairBatches, TextCorpus,
                   load_tiny_shakespeare)
from .model import ModelConfig

TASKS = ("shakespeare", "markov", "dates")
TOKENIZERS = ("char", "bpe")


def tokenizer_description(tokenizer) -> list:
    """What identifies a tokenizer (it goes into every checkpoint): the tokens in id order
    (byte-level BPE: each token's bytes in hex, then its special tokens)."""
    if isinstance(tokenizer, ByteLevelBPE):
        return ([tokenizer.token_bytes(i).hex() for i in range(tokenizer.vocab_size - len(tokenizer.special_tokens))]
                + list(tokenizer.special_tokens))
    return list(tokenizer.tokens)


class LanguageModelTask:
    """Next-token prediction on a :class:`~helpers.data.TextCorpus`: windows of ``context``
    tokens (characters, or byte-level BPE tokens)."""

    kind = "decoder"

    def __init__(self, corpus: TextCorpus, context: int, name: str = "text"):
        if isinstance(context, bool) or not isinstance(context, int) or context < 1:
            raise ValueError(f"LanguageModelTask: context must be a positive integer, got {context!r}")
        for split, ids in corpus.splits.items():
            if len(ids) < context + 1:
                raise ValueError(f"the {split} part of the text has {len(ids)} tokens, fewer than "
                                 f"context + 1 = {context + 1}: use a smaller --context or a longer text")
        self.corpus, self.context, self.name = corpus, context, name
        self.vocab = corpus.vocab
        self.vocab_size = corpus.vocab.vocab_size

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "vocab": tokenizer_description(self.vocab),
                "context": self.context}

    def model_config(self, **overrides) -> ModelConfig:
        values = dict(vocab_size=self.vocab_size, kind="decoder", max_len=self.context)
        values.update(overrides)
        return ModelConfig(**values)

    def sampler(self, batch_size: int, seed: int):
        return LMBatches(self.corpus.splits["train"], batch_size, self.context, seed=seed)

    def eval_batches(self, split: str, batch_size: int, n_batches: int, seed: int = 0):
        sampler = LMBatches(self.corpus.splits[split], batch_size, self.context, seed=seed)
        return [next(sampler) for _ in range(n_batches)]

    @staticmethod
    def tokens_in(batch) -> int:
        return batch[0].numel()

    @staticmethod
    def loss(model, batch, fused: bool = False, label_smoothing: float = 0.0):
        """Mean cross-entropy of the next token (chapter 8), over every position of the batch."""
        x, y = batch
        logits = model(x)                                                  # (B, n, V)
        return helpers.cross_entropy(logits.float(), y, fused=fused, label_smoothing=label_smoothing)


class TranslationTask:
    """Dates in words -> ISO dates (:class:`~helpers.data.DateTask`) with teacher forcing.

    The decoder reads <bos> y_1 .. y_10 and is trained to predict y_1 .. y_10 <eos>: the
    targets are the inputs shifted left by one.
    """

    kind = "encoder-decoder"

    def __init__(self, dates: DateTask | None = None, name: str = "dates"):
        self.dates = dates or DateTask()
        self.name = name
        self.vocab = self.dates.tgt_vocab
        self.vocab_size = len(self.dates.tgt_vocab)
        self.pad_id = self.dates.tgt_vocab["<pad>"]
        self._tensors = {}

    def tensors(self, split):
        if split not in self._tensors:
            self._tensors[split] = self.dates.tensors(split)
        return self._tensors[split]

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "vocab": list(self.vocab.tokens),
                "src_vocab": list(self.dates.src_vocab.tokens)}

    def model_config(self, **overrides) -> ModelConfig:
        values = dict(vocab_size=self.vocab_size, src_vocab_size=len(self.dates.src_vocab),
                      kind="encoder-decoder", max_len=max(self.dates.max_src_len, self.dates.max_tgt_len))
        values.update(overrides)
        return ModelConfig(**values)

    def sampler(self, batch_size: int, seed: int):
        return PairBatches(*self.tensors("train"), batch_size, seed=seed)

    def eval_batches(self, split: str, batch_size: int, n_batches: int, seed: int = 0):
        src, tgt = self.tensors(split)
        n = min(len(src), batch_size * n_batches)
        return [(src[i:i + batch_size], tgt[i:i + batch_size]) for i in range(0, n, batch_size)]

    @staticmethod
    def tokens_in(batch) -> int:
        src, tgt = batch
        return src.numel() + tgt.numel() - tgt.shape[0]

    def loss(self, model, batch, fused: bool = False, label_smoothing: float = 0.0):
        """Mean cross-entropy of the next target token, padding excluded (chapter 8)."""
        src, tgt = batch
        logits = model(src, tgt[:, :-1])                                   # (B, n_tgt - 1, V)
        return helpers.cross_entropy(logits.float(), tgt[:, 1:], ignore_index=self.pad_id, fused=fused,
                                     label_smoothing=label_smoothing)


def read_text(path) -> str:
    """A local text file as UTF-8; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--data-path {path} is not a file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"--data-path {path} is not UTF-8 text (byte {err.start}: {err.reason})") from None


def make_task(name: str, data_path=None, data_dir=DATA_DIR, context: int = 64, tokenizer: str = "char",
              bpe_vocab_size: int = 512):
    """'shakespeare' (shipped, downloaded if missing, or --data-path), 'markov' (generated,
    or a text from --data-path in the chain's alphabet) or 'dates' (generated).

    tokenizer (language models): "char", one token per character, or "bpe", GPT-2's
    byte-level BPE (chapter 1) trained on the training part of the text to ``bpe_vocab_size``
    tokens (the validation part is never seen by it).
    """
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")
    if name == "dates":
        if tokenizer != "char":
            raise ValueError("the dates task has its own vocabularies: --tokenizer bpe is for the "
                             "language-model tasks (shakespeare, markov)")
        return TranslationTask()
    if name == "shakespeare":
        text = read_text(data_path) if data_path else load_tiny_shakespeare(None, data_dir)
        vocab = None
    elif name == "markov":
        source = MarkovSource()
        text = read_text(data_path) if data_path else source.sample(300_000, seed=0)
        vocab = source.vocab
    else:
        raise ValueError(f"task must be one of {TASKS}, got {name!r}")
    if tokenizer == "bpe":
        vocab = ByteLevelBPE().train(text[:int(0.9 * len(text))], bpe_vocab_size)
    return LanguageModelTask(TextCorpus(text, vocab=vocab), context, name)
