"""One training loop for chapter 11, used by the notebook and by ``python -m helpers.train``.

What it does, step by step (``train``):

1. draw a batch from the task's sampler and move it to the device;
2. forward pass (bf16 autocast on CUDA), loss = helpers.cross_entropy (chapter 8);
3. backward pass, gradient clipping to a global norm, optimizer step (Adam or AdamW,
   chapter 9) with the learning rate of the schedule for this step: the warm-up /
   inverse-square-root schedule of the paper (helpers.noam_lr), or linear warm-up then
   cosine decay, or constant;
4. every ``eval_every`` steps: the loss on fixed validation batches (early stopping if it
   stops improving); every ``checkpoint_every`` steps and on Ctrl-C: a checkpoint.

A checkpoint holds everything the next step depends on: weights, optimizer moments,
schedule step, the sampler's generator and position, every RNG state (dropout), the
history. ``resume`` continues from it so that an interrupted run and an uninterrupted one
end with the same weights (tests/test_train.py checks this on CPU). Checkpoints are read
with ``torch.load(weights_only=True)``: plain tensors and containers, no pickled code.

Run ``python -m helpers.train --help`` for the command line.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import signal
import sys
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

import helpers

from .data import (CharCorpus, DateTask, LMBatches, MarkovSource, PairBatches,
                   load_tiny_shakespeare)
from .model import ModelConfig, build_model, count_parameters

CHECKPOINT_FORMAT = "helpers.train checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model/task it is loaded into."""


# --------------------------------------------------------------------------- configuration

@dataclass
class TrainConfig:
    """Everything that fixes how a model is trained (stored in every checkpoint).

    steps: optimizer steps in all; lr: peak learning rate (reached after ``warmup_steps``);
    schedule: "cosine" (linear warm-up, then cosine decay to ``min_lr`` at ``steps``),
    "noam" (the paper's d^-0.5 min(s^-0.5, s w^-1.5), rescaled so that its peak is ``lr``),
    or "constant" (after warm-up). grad_clip: largest global gradient norm (0: off).
    eval_every / eval_batches: validation loss on ``eval_batches`` fixed batches.
    early_stopping: stop after this many evaluations without a new best (0: off).
    max_seconds: stop after this much training time (0: off); with schedule_by_time the
    cosine decay follows elapsed time / max_seconds when that is further along than
    step / steps (benchmarks: the run ends decayed whatever the machine's speed).
    checkpoint_every: save every N steps (0: only at the end and on Ctrl-C).
    device: "auto" (CUDA, then Apple MPS, then CPU), "cuda", "mps" or "cpu";
    amp: bf16 autocast on CUDA; compile: torch.compile the model.
    """

    steps: int = 4000
    batch_size: int = 16
    lr: float = 2e-3
    min_lr: float = 1e-4
    optimizer: str = "adamw"
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    schedule: str = "cosine"
    warmup_steps: int = 100
    grad_clip: float = 1.0
    eval_every: int = 250
    eval_batches: int = 20
    early_stopping: int = 0
    max_seconds: float = 0.0
    schedule_by_time: bool = False
    checkpoint_every: int = 0
    checkpoint_path: str | None = None
    device: str = "auto"
    amp: bool = True
    compile: bool = False
    seed: int = 1337
    progress: bool = True
    log_every: int = 10

    def __post_init__(self):
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError(f"TrainConfig: optimizer must be 'adam' or 'adamw', got {self.optimizer!r}")
        if self.schedule not in ("cosine", "noam", "constant"):
            raise ValueError(f"TrainConfig: schedule must be 'cosine', 'noam' or 'constant', got {self.schedule!r}")
        for name in ("steps", "batch_size", "eval_every", "eval_batches", "warmup_steps", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig: {name} must be a positive integer, got {value!r}")
        if not self.lr > 0 or self.min_lr < 0:
            raise ValueError(f"TrainConfig: lr must be > 0 and min_lr >= 0, got {self.lr!r}, {self.min_lr!r}")

    def to_dict(self):
        return asdict(self)


def pick_device(requested: str = "auto") -> torch.device:
    """"auto": CUDA if available, then Apple's MPS, then the CPU; otherwise the named device."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested not in ("cpu", "cuda", "mps") and not requested.startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'mps', got {requested!r}")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but torch.cuda.is_available() is False")
    return torch.device(requested)


def learning_rate(step: int, config: TrainConfig, d_model: int, progress: float | None = None) -> float:
    """The learning rate of optimizer step ``step`` (counting from 1).

    cosine:   lr * step / warmup during warm-up, then
              min_lr + (lr - min_lr) (1 + cos(pi t)) / 2,  t = (step - warmup) / (steps - warmup)
    noam:     lr * noam_lr(step, d_model, warmup) / noam_lr(warmup, d_model, warmup)
              (chapter 9's schedule, scaled so that its peak at step = warmup is lr)
    constant: lr after a linear warm-up.
    ``progress`` (0..1) replaces t for cosine (time-based schedules).
    """
    if step < 1:
        raise ValueError(f"learning_rate: step must be >= 1 (steps count from 1), got {step}")
    w = config.warmup_steps
    if config.schedule == "noam":
        return config.lr * helpers.noam_lr(step, d_model, w) / helpers.noam_lr(w, d_model, w)
    if step <= w and progress is None:
        return config.lr * step / w
    if config.schedule == "constant":
        return config.lr
    if progress is None:
        progress = (step - w) / max(1, config.steps - w)
    warm = min(1.0, step / w)
    t = min(max(progress, 0.0), 1.0)
    return warm * (config.min_lr + (config.lr - config.min_lr) * 0.5 * (1.0 + math.cos(math.pi * t)))


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam, or AdamW with weight decay on the matrices only (not on biases, gains, offsets)."""
    betas = (config.beta1, config.beta2)
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=betas)
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=betas)


# --------------------------------------------------------------------------- tasks

class LanguageModelTask:
    """Next-character prediction on a :class:`~helpers.data.CharCorpus`: windows of ``context``."""

    kind = "decoder"

    def __init__(self, corpus: CharCorpus, context: int, name: str = "text"):
        self.corpus, self.context, self.name = corpus, context, name
        self.vocab = corpus.vocab
        self.vocab_size = len(corpus.vocab)

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "vocab": list(self.vocab.tokens), "context": self.context}

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
    def loss(model, batch):
        x, y = batch
        logits = model(x)
        return helpers.cross_entropy(logits.float(), y)


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

    def loss(self, model, batch):
        src, tgt = batch
        logits = model(src, tgt[:, :-1])
        return helpers.cross_entropy(logits.float(), tgt[:, 1:], ignore_index=self.pad_id)


def make_task(name: str, data_path=None, data_dir="data", context: int = 128):
    """'shakespeare' (downloaded or --data-path), 'markov' (generated) or 'dates' (generated)."""
    if name == "shakespeare":
        return LanguageModelTask(CharCorpus(load_tiny_shakespeare(data_path, data_dir)), context, "shakespeare")
    if name == "markov":
        text = Path(data_path).read_text(encoding="utf-8") if data_path else MarkovSource().sample(300_000, seed=0)
        return LanguageModelTask(CharCorpus(text, vocab=MarkovSource().vocab), context, "markov")
    if name == "dates":
        return TranslationTask()
    raise ValueError(f"task must be 'shakespeare', 'markov' or 'dates', got {name!r}")


# --------------------------------------------------------------------------- checkpoints

def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                       int(np_state[3]), float(np_state[4])]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path, state: dict) -> Path:
    """Write ``state`` to ``path`` atomically (a temporary file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`train` with ``torch.load(weights_only=True)``.

    Raises CheckpointError (a ValueError) with a clear message for a missing, corrupt,
    truncated or foreign file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # zip errors, unpickling errors, EOF: all mean "not readable"
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise CheckpointError(f"checkpoint {path} cannot be read: it is corrupt, truncated or not a "
                              f"checkpoint written by helpers.train ({type(err).__name__}: {first})") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} is a readable torch file but not a checkpoint written by "
                              "helpers.train (no 'format' entry)")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} has version {state.get('version')}, this code reads "
                              f"version {CHECKPOINT_VERSION}")
    return state


def check_compatible(state: dict, model_config: ModelConfig, task_description: dict, path="checkpoint"):
    """Raise CheckpointError naming every model setting and task property that differs."""
    saved = state["model_config"]
    current = model_config.to_dict()
    diffs = [f"{k}: checkpoint {saved.get(k)!r}, now {current.get(k)!r}"
             for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]
    saved_task = state.get("task", {})
    for k in sorted(set(saved_task) | set(task_description)):
        if saved_task.get(k) != task_description.get(k):
            what = "(differs)" if k in ("vocab", "src_vocab") else f"checkpoint {saved_task.get(k)!r}, now {task_description.get(k)!r}"
            diffs.append(f"task {k}: {what}")
    if diffs:
        raise CheckpointError(f"{path} does not match this model/task: " + "; ".join(diffs))


def model_from_checkpoint(path, task=None):
    """Rebuild the model stored in a checkpoint (for sampling or evaluation)."""
    state = load_checkpoint(path)
    config = ModelConfig.from_dict(state["model_config"])
    if task is not None:
        check_compatible(state, config, task.describe(), path)
    model = build_model(config)
    model.load_state_dict(state["model"])
    return model, state


# --------------------------------------------------------------------------- the loop

@dataclass
class History:
    """What happened: losses (nats per token) against step, time (s) and tokens seen."""
    step: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    tokens: list = field(default_factory=list)
    eval_step: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    eval_seconds: list = field(default_factory=list)
    eval_tokens: list = field(default_factory=list)
    stopped: str = ""

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})


class _Interrupt:
    """Turns the first Ctrl-C (SIGINT) into a flag checked after each step; a second one
    raises KeyboardInterrupt at once. Only in the main thread (where signals arrive)."""

    def __init__(self):
        self.requested = False

    def request(self):
        self.requested = True

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True

        signal.signal(signal.SIGINT, handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


@dataclass
class TrainResult:
    model: torch.nn.Module
    history: History
    step: int
    interrupted: bool
    checkpoint: Path | None
    tokens_per_second: float
    device: str


def train(model, task, config: TrainConfig, resume=None, callbacks=()) -> TrainResult:
    """Train ``model`` on ``task`` as ``config`` says; see the module docstring.

    resume: a checkpoint path to continue from (the model's config and the task must match).
    callbacks: objects with optional methods ``on_log(history)`` (after every ``log_every``
    steps), ``on_eval(history)``, ``on_step(step, trainer)`` (after every step; may call
    ``trainer.stop()``) and ``on_end(history)``.
    Returns a :class:`TrainResult` (the model stays on the training device).
    """
    device = pick_device(config.device)
    model.to(device)
    model_config = model.config
    optimizer = make_optimizer(model, config)
    sampler = task.sampler(config.batch_size, seed=config.seed)
    history = History()
    step, elapsed, best_val, evals_since_best = 0, 0.0, math.inf, 0
    torch.manual_seed(config.seed)
    if resume is not None:
        state = load_checkpoint(resume)
        check_compatible(state, model_config, task.describe(), resume)
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(f"{resume} does not fit this model/optimizer: {err}") from err
        sampler.load_state_dict(state["sampler"])
        _set_rng_state(state["rng"])
        history = History.from_dict(state["history"])
        history.stopped = ""  # why the earlier run stopped; this one has not stopped yet
        step, elapsed = int(state["step"]), float(state["elapsed"])
        best_val, evals_since_best = float(state["best_val"]), int(state["evals_since_best"])
    use_amp = config.amp and device.type == "cuda"
    forward_model = model
    if config.compile:
        # array_api_compat (under helpers) caches with functools.lru_cache; dynamo traces
        # through it and says so once per function: harmless here, so not shown.
        warnings.filterwarnings("ignore", message=r"Dynamo detected a call to a `functools.lru_cache`")
        forward_model = torch.compile(model)
    eval_data = task.eval_batches("val", config.batch_size, config.eval_batches, seed=config.seed + 1)
    checkpoint_path = Path(config.checkpoint_path) if config.checkpoint_path else None
    interrupt = _Interrupt()

    class Trainer:  # what on_step callbacks may use
        stop = staticmethod(interrupt.request)

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else contextlib.nullcontext()

    def to_device(batch):
        return tuple(t.to(device, non_blocking=True) for t in batch)

    def evaluate():
        model.eval()
        with torch.no_grad(), autocast():
            losses = [float(task.loss(forward_model, to_device(b))) for b in eval_data]
        model.train()
        return sum(losses) / len(losses)

    def snapshot():
        return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "model_config": model_config.to_dict(), "train_config": config.to_dict(),
                "task": task.describe(), "step": step, "elapsed": elapsed,
                "best_val": best_val, "evals_since_best": evals_since_best,
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "sampler": sampler.state_dict(), "rng": _rng_state(), "history": history.to_dict(),
                "window": [window_loss, window_steps, window_tokens, window_time]}

    def save():
        return save_checkpoint(checkpoint_path, snapshot()) if checkpoint_path else None

    def call(name, *args):
        for cb in callbacks:
            fn = getattr(cb, name, None)
            if fn is not None:
                fn(*args)

    from tqdm.auto import tqdm
    bar = tqdm(total=config.steps, initial=step, disable=not config.progress, desc=f"training {task.name}",
               dynamic_ncols=True)
    window_loss, window_steps, window_tokens, window_time = 0.0, 0, 0, 0.0  # since the last log
    if resume is not None:
        window_loss, window_steps, window_tokens, window_time = state["window"]
    tokens_seen = (history.tokens[-1] if history.tokens else 0) + window_tokens
    rate = 0.0
    interrupted = False
    model.train()
    try:
        with interrupt.installed():
            while step < config.steps:
                t0 = time.perf_counter()
                batch = to_device(next(sampler))
                step += 1
                progress = None
                if config.schedule_by_time and config.max_seconds > 0:
                    by_steps = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
                    progress = max(by_steps, elapsed / config.max_seconds)
                lr = learning_rate(step, config, model_config.d_model, progress)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with autocast():
                    loss = task.loss(forward_model, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                loss_value = float(loss.detach())  # waits for the device: honest timings
                dt = time.perf_counter() - t0
                elapsed += dt
                n_tokens = task.tokens_in(batch)
                tokens_seen += n_tokens
                window_loss += loss_value
                window_steps += 1
                window_tokens += n_tokens
                window_time += dt
                if step % config.log_every == 0 or step == config.steps:
                    rate = window_tokens / window_time if window_time > 0 else 0.0
                    history.step.append(step)
                    history.train_loss.append(window_loss / window_steps)
                    history.lr.append(lr)
                    history.seconds.append(elapsed)
                    history.tokens.append(tokens_seen)
                    bar.set_postfix(loss=f"{window_loss / window_steps:.4f}", tok_per_s=f"{rate:,.0f}", refresh=False)
                    window_loss, window_steps, window_tokens, window_time = 0.0, 0, 0, 0.0
                    call("on_log", history)
                bar.update(1)
                stop_reason = ""
                if config.max_seconds and elapsed >= config.max_seconds and step < config.steps:
                    stop_reason = f"time limit of {config.max_seconds:g} s reached"
                if step % config.eval_every == 0 or step == config.steps or stop_reason:
                    val = evaluate()
                    history.eval_step.append(step)
                    history.val_loss.append(val)
                    history.eval_seconds.append(elapsed)
                    history.eval_tokens.append(tokens_seen)
                    if val < best_val - 1e-4:
                        best_val, evals_since_best = val, 0
                    else:
                        evals_since_best += 1
                    call("on_eval", history)
                    if config.early_stopping and evals_since_best >= config.early_stopping and not stop_reason:
                        stop_reason = f"early stopping: no better validation loss in {evals_since_best} evaluations"
                call("on_step", step, Trainer)
                if interrupt.requested:
                    interrupted = True
                    stop_reason = "interrupted (Ctrl-C)"
                if checkpoint_path and config.checkpoint_every and step % config.checkpoint_every == 0:
                    save()
                if stop_reason:
                    history.stopped = stop_reason
                    break
    finally:
        bar.close()
    saved = save()
    if interrupted:
        where = (f"checkpoint saved to {saved}; continue with resume/--resume" if saved is not None
                 else "no checkpoint_path was given, so nothing was saved")
        print(f"interrupted at step {step}: {where}", file=sys.stderr)
    call("on_end", history)
    return TrainResult(model=model, history=history, step=step, interrupted=interrupted, checkpoint=saved,
                       tokens_per_second=tokens_seen / elapsed if elapsed > 0 else 0.0, device=str(device))


# --------------------------------------------------------------------------- the command line

# The default configuration: tuned on Tiny Shakespeare for a 2-core CPU (see benchmarks/).
# nanoGPT's CPU recipe has the same model shape (4 layers, 4 heads, width 128, context 64); here
# batch 16 (1024 tokens per step), AdamW at 2e-3 with 100 warm-up steps and cosine decay to 1e-4.
DEFAULTS = dict(task="shakespeare", context=64, batch_size=16, layers=4, heads=4, d_model=128, d_ff=512,
                dropout=0.0, steps=4000, lr=2e-3, min_lr=1e-4, warmup=100, eval_every=250, eval_batches=20)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m helpers.train",
        description="Train the chapter-11 Transformer: a character-level language model on Tiny "
                    "Shakespeare or on the generated Markov corpus, or the encoder-decoder on the "
                    "dates translation task. Ctrl-C saves a checkpoint; --resume continues from it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--task", choices=("shakespeare", "markov", "dates"), default=DEFAULTS["task"],
                   help="shakespeare: Tiny Shakespeare as characters (downloaded once, sha256-checked); "
                        "markov: text from the course's Markov chain (known entropy rate); "
                        "dates: dates in words -> ISO dates with the encoder-decoder")
    g.add_argument("--data-path", default=None,
                   help="read the text from this local file instead of downloading (shakespeare, markov)"
                        "%(default).0s")
    g.add_argument("--data-dir", default="data", help="where downloads are cached")
    g.add_argument("--context", type=int, default=DEFAULTS["context"],
                   help="tokens per training window (language models)")
    g.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"], help="sequences per step")
    g = p.add_argument_group("model")
    g.add_argument("--layers", type=int, default=DEFAULTS["layers"], help="layers (per stack for dates)")
    g.add_argument("--heads", type=int, default=DEFAULTS["heads"], help="attention heads")
    g.add_argument("--d-model", type=int, default=DEFAULTS["d_model"], help="width of the residual stream")
    g.add_argument("--d-ff", type=int, default=DEFAULTS["d_ff"], help="hidden width of the FFN")
    g.add_argument("--dropout", type=float, default=DEFAULTS["dropout"], help="dropout on embeddings and sub-layer outputs")
    g.add_argument("--attention-dropout", type=float, default=0.0, help="dropout on the attention weights")
    g.add_argument("--norm", choices=("pre", "post"), default="pre", help="pre-LN or post-LN (the paper's)")
    g.add_argument("--positions", choices=("learned", "sinusoidal"), default="learned", help="position vectors")
    g.add_argument("--untied", action="store_true", help="a separate output projection instead of the embedding table")
    g.add_argument("--attention", choices=("fused", "math"), default="fused",
                   help="fused: F.scaled_dot_product_attention; math: helpers.scaled_dot_product_attention")
    g = p.add_argument_group("optimization")
    g.add_argument("--optimizer", choices=("adamw", "adam"), default="adamw", help="optimizer")
    g.add_argument("--lr", type=float, default=DEFAULTS["lr"], help="peak learning rate")
    g.add_argument("--min-lr", type=float, default=DEFAULTS["min_lr"], help="final learning rate of the cosine schedule")
    g.add_argument("--schedule", choices=("cosine", "noam", "constant"), default="cosine",
                   help="cosine: warm-up then cosine decay; noam: the paper's warm-up / inverse square root")
    g.add_argument("--warmup", type=int, default=DEFAULTS["warmup"], help="warm-up steps")
    g.add_argument("--weight-decay", type=float, default=0.1, help="AdamW weight decay (matrices only)")
    g.add_argument("--beta1", type=float, default=0.9, help="Adam beta1")
    g.add_argument("--beta2", type=float, default=0.99, help="Adam beta2")
    g.add_argument("--grad-clip", type=float, default=1.0, help="clip the global gradient norm (0: off)")
    g.add_argument("--steps", type=int, default=DEFAULTS["steps"], help="optimizer steps")
    g.add_argument("--max-seconds", type=float, default=0.0, help="stop after this much training time (0: no limit)")
    g = p.add_argument_group("evaluation and checkpoints")
    g.add_argument("--eval-every", type=int, default=DEFAULTS["eval_every"], help="validate every N steps")
    g.add_argument("--eval-batches", type=int, default=DEFAULTS["eval_batches"], help="batches per validation")
    g.add_argument("--early-stopping", type=int, default=0,
                   help="stop after N validations without improvement (0: off)")
    g.add_argument("--checkpoint", default=None,
                   help="checkpoint file (default: checkpoints/<task>.pt)%(default).0s")
    g.add_argument("--checkpoint-every", type=int, default=500, help="save every N steps (0: only at the end / Ctrl-C)")
    g.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    g = p.add_argument_group("device")
    g.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cuda, mps or cpu")
    g.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    g.add_argument("--compile", action="store_true", help="torch.compile the model")
    g.add_argument("--seed", type=int, default=1337, help="seed of every random generator")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("after training")
    g.add_argument("--sample", type=int, default=300, help="characters to sample at the end (0: none)")
    g.add_argument("--prompt", default=None,
                   help="text the sample starts from (default: the first character of the validation "
                        "text)%(default).0s")
    g.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (0: greedy)")
    g.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest tokens (0: all)")
    return p


def configs_from_args(args, task):
    model_config = task.model_config(
        d_model=args.d_model, num_heads=args.heads, num_layers=args.layers, d_ff=args.d_ff,
        dropout=args.dropout, attention_dropout=args.attention_dropout, norm=args.norm,
        positions=args.positions, tie_embeddings=not args.untied, attention=args.attention)
    train_config = TrainConfig(
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, min_lr=args.min_lr, optimizer=args.optimizer,
        weight_decay=args.weight_decay, beta1=args.beta1, beta2=args.beta2, schedule=args.schedule,
        warmup_steps=args.warmup, grad_clip=args.grad_clip, eval_every=args.eval_every,
        eval_batches=args.eval_batches, early_stopping=args.early_stopping, max_seconds=args.max_seconds,
        checkpoint_every=args.checkpoint_every,
        checkpoint_path=args.checkpoint or f"checkpoints/{args.task}.pt", device=args.device,
        amp=not args.no_amp, compile=args.compile, seed=args.seed, progress=not args.no_progress)
    return model_config, train_config


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .generate import greedy_translate, sample_text
    try:
        task = make_task(args.task, args.data_path, args.data_dir, args.context)
        model_config, train_config = configs_from_args(args, task)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    torch.manual_seed(args.seed)
    model = build_model(model_config, pad_id=getattr(task, "pad_id", 0))
    device = pick_device(args.device)
    print(f"task {task.name}: {count_parameters(model):,} parameters on {device}; "
          f"checkpoint {train_config.checkpoint_path}")
    try:
        result = train(model, task, train_config,
                       resume=train_config.checkpoint_path if args.resume else None)
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    h = result.history
    if h.val_loss:
        print(f"step {result.step}: validation loss {h.val_loss[-1]:.4f} "
              f"({result.tokens_per_second:,.0f} tokens/s){'; ' + h.stopped if h.stopped else ''}")
    model.eval()
    if args.task == "dates":
        src, tgt = task.tensors("test")
        pred = greedy_translate(model, src[:1000].to(device), task.vocab)
        truth = [task.vocab.decode(t) for t in tgt[:1000]]
        acc = sum(p == t for p, t in zip(pred, truth)) / len(truth)
        print(f"exact-match accuracy on 1000 test dates: {acc:.4f}")
        for s, p in zip(task.dates.splits["test"].sources[:3], pred[:3]):
            print(f"  {s!r} -> {p}")
    elif args.sample > 0:
        g = torch.Generator(device=device).manual_seed(args.seed)
        prompt = args.prompt if args.prompt else task.vocab.decode(task.corpus.splits["val"][:1].tolist())
        print(sample_text(model, task.vocab, prompt, args.sample, temperature=args.temperature,
                          top_k=args.top_k or None, generator=g))
    return 0


if __name__ == "__main__":
    sys.exit(main())
