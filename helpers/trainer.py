"""The training loop of chapter 11, as a small object: :class:`Trainer` (step, evaluate, save, fit).

One optimizer step (:meth:`Trainer.step`):

1. draw a batch from the task's sampler and move it to the device;
2. forward pass (bf16 autocast on CUDA), loss = helpers.cross_entropy (chapter 8);
3. backward pass, gradient clipping to a global norm, optimizer step (Adam or AdamW,
   chapter 9) at the learning rate of the schedule for this step (chapter 9: the paper's
   warm-up / inverse-square-root schedule, linear warm-up then cosine decay, or constant).

:meth:`Trainer.fit` repeats it, evaluates on fixed validation batches every ``eval_every``
steps (early stopping if the loss stops improving), writes a checkpoint every
``checkpoint_every`` steps and on Ctrl-C (:mod:`helpers.checkpoint`), and can resume from one
so that an interrupted run ends with the same weights as an uninterrupted one.

Several processes (``torchrun --nproc_per_node=N -m helpers.train``): the model is wrapped in
DistributedDataParallel, each process (rank) draws its own batches from its own sampler,
the gradients are averaged across ranks (so a step sees the batches of all ranks: chapter 11
derives why that equals the large-batch gradient), validation batches are shared out and
their losses summed across ranks, and rank 0 alone prints and writes checkpoints, which hold
every rank's sampler and random state.

Two clocks: ``seconds`` counts training steps only, ``wall`` counts everything since the
start (evaluations, checkpoints and logging included). ``max_seconds`` limits the wall clock.
"""
from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from .checkpoint import (CHECKPOINT_FORMAT, CHECKPOINT_VERSION, CheckpointError, check_compatible,
                         load_checkpoint, load_weights, rng_state, save_checkpoint, set_rng_state)
from .schedule import cosine_lr, noam_lr

OPTIMIZERS = ("adamw", "adam")
SCHEDULES = ("cosine", "noam", "constant")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass
class TrainConfig:
    """Everything that fixes how a model is trained (stored in every checkpoint). These are
    also the command line's defaults (``python -m helpers.train --help``).

    steps: optimizer steps in all; batch_size: sequences per step (per process);
    lr: peak learning rate (reached after ``warmup_steps``); schedule: "cosine" (linear
    warm-up, then cosine decay to ``min_lr`` at ``steps``), "noam" (the paper's
    d^-0.5 min(s^-0.5, s w^-1.5), rescaled so that its peak is ``lr``), or "constant"
    (after warm-up). grad_clip: largest global gradient norm (0: off).
    label_smoothing: epsilon of the label-smoothed cross-entropy (chapter 8; the paper: 0.1).
    eval_every / eval_batches: validation loss on ``eval_batches`` fixed batches.
    early_stopping: stop after this many evaluations without a new best (0: off).
    max_seconds: stop after this much wall-clock time (0: off); with schedule_by_time the
    cosine decay is planned over the steps that fit in max_seconds at the speed so far, so
    the run ends decayed whatever the machine's speed (benchmarks).
    checkpoint_every: save every N steps (0: only at the end and on Ctrl-C).
    device: "auto" (CUDA, then Apple MPS, then CPU), "cuda", "cuda:N", "mps" or "cpu";
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
    label_smoothing: float = 0.0
    eval_every: int = 250
    eval_batches: int = 20
    early_stopping: int = 0
    max_seconds: float = 0.0
    schedule_by_time: bool = False
    checkpoint_every: int = 500
    checkpoint_path: str | None = None
    device: str = "auto"
    amp: bool = True
    compile: bool = False
    seed: int = 1337
    progress: bool = True
    log_every: int = 10

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Raise ValueError naming every field that is out of range (before any training)."""
        def fail(name, allowed):
            raise ValueError(f"TrainConfig: {name} must be {allowed}, got {getattr(self, name)!r}")

        def number(name):
            value = getattr(self, name)
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        if self.optimizer not in OPTIMIZERS:
            fail("optimizer", f"one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            fail("schedule", f"one of {SCHEDULES}")
        for name in ("steps", "batch_size", "eval_every", "eval_batches", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                fail(name, "a positive integer")
        for name in ("warmup_steps", "early_stopping", "checkpoint_every", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                fail(name, "an integer >= 0")
        if not number("lr") or self.lr <= 0:
            fail("lr", "a number > 0")
        if not number("min_lr") or not 0 <= self.min_lr <= self.lr:
            fail("min_lr", f"a number in [0, lr = {self.lr!r}]")
        for name in ("beta1", "beta2"):
            if not number(name) or not 0 <= getattr(self, name) < 1:
                fail(name, "a number in [0, 1)")
        for name in ("weight_decay", "grad_clip", "max_seconds"):
            if not number(name) or getattr(self, name) < 0:
                fail(name, "a number >= 0")
        if not number("label_smoothing") or not 0 <= self.label_smoothing < 1:
            fail("label_smoothing", "a number in [0, 1)")
        if self.schedule == "noam" and self.warmup_steps < 1:
            fail("warmup_steps", "at least 1 for the noam schedule (it peaks at step = warmup_steps)")
        if not isinstance(self.device, str) or not (self.device in DEVICES or self.device.startswith("cuda:")):
            fail("device", f"one of {DEVICES} or 'cuda:N'")

    def to_dict(self):
        return asdict(self)


def pick_device(requested: str = "auto") -> torch.device:
    """"auto": CUDA if available, then Apple's MPS, then the CPU; otherwise the named device.
    A ValueError says so when the named device is not available here."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested not in DEVICES and not requested.startswith("cuda:"):
        raise ValueError(f"device must be one of {DEVICES} or 'cuda:N', got {requested!r}")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {requested!r} was requested but this machine has no CUDA GPU "
                             "(torch.cuda.is_available() is False): use --device cpu or auto")
        try:
            index = torch.device(requested).index
        except RuntimeError:
            raise ValueError(f"device {requested!r} is not a valid CUDA device name") from None
        if index is not None and index >= torch.cuda.device_count():
            raise ValueError(f"device {requested!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if requested == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("device 'mps' was requested but Apple's MPS is not available here")
    return torch.device(requested)


def learning_rate(step: int, config: TrainConfig, d_model: int, total_steps: int | None = None) -> float:
    """The learning rate of optimizer step ``step`` (counting from 1), chapter 9's schedules.

    cosine:   helpers.cosine_lr(step, lr, warmup, total, min_lr), total = ``total_steps``
              (default config.steps); a run no longer than its warm-up only warms up
    noam:     lr * noam_lr(step, d_model, warmup) / noam_lr(warmup, d_model, warmup)
              (the paper's schedule, scaled so that its peak at step = warmup is lr)
    constant: lr after a linear warm-up.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"learning_rate: step must be an integer >= 1 (steps count from 1), got {step!r}")
    w = config.warmup_steps
    if config.schedule == "noam":
        return config.lr * noam_lr(step, d_model, w) / noam_lr(w, d_model, w)
    if config.schedule == "constant":
        return config.lr * min(1.0, step / w) if w else config.lr
    total = config.steps if total_steps is None else max(total_steps, w + 1)
    if total <= w:
        return config.lr * step / w
    return cosine_lr(step, config.lr, w, total, config.min_lr)


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam, or AdamW with weight decay on the matrices only (not on biases, gains, offsets)."""
    betas = (config.beta1, config.beta2)
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=betas)
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=betas)


@dataclass
class History:
    """What happened: losses (nats per token) against step, time (s) and tokens seen.

    seconds: training time (steps only); wall: wall-clock time since the start, evaluations
    and checkpoints included.
    """
    step: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    wall: list = field(default_factory=list)
    tokens: list = field(default_factory=list)
    eval_step: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    eval_seconds: list = field(default_factory=list)
    eval_wall: list = field(default_factory=list)
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


def _distributed():
    """(rank, world_size) of this process; (0, 1) unless torch.distributed is initialised."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Trainer:
    """Trains ``model`` on ``task`` as ``config`` says (see the module docstring).

    callbacks: objects with optional methods ``on_log(history)`` (every ``log_every`` steps),
    ``on_eval(history)``, ``on_step(step, trainer)`` (after every step; may call
    ``trainer.stop()``) and ``on_end(history)``.
    """

    def __init__(self, model, task, config: TrainConfig, callbacks=()):
        self.config, self.task, self.callbacks = config, task, tuple(callbacks)
        self.rank, self.world_size = _distributed()
        self.device = pick_device(config.device)
        if self.world_size > 1 and self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", self.rank)))
        self.model = model.to(self.device)
        self.model_config = model.config
        self.fused = model.config.kernels == "fused"
        self.optimizer = make_optimizer(self.model, config)
        torch.manual_seed(config.seed + self.rank)
        self.sampler = task.sampler(config.batch_size, seed=config.seed + self.rank)
        eval_data = task.eval_batches("val", config.batch_size, config.eval_batches, seed=config.seed + 1)
        if len(eval_data) < self.world_size:
            raise ValueError(f"eval_batches gives {len(eval_data)} validation batches, fewer than the "
                             f"{self.world_size} processes that share them out: use at least {self.world_size}")
        self.eval_data = eval_data[self.rank::self.world_size]
        self.history = History()
        self.step_count, self.elapsed, self.wall = 0, 0.0, 0.0
        self.best_val, self.evals_since_best = math.inf, 0
        self.window = [0.0, 0, 0, 0.0]           # loss sum, steps, tokens, seconds since the last log
        self.use_amp = config.amp and self.device.type == "cuda"
        self.forward_model = self.model
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel
            self.forward_model = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if config.compile:
            # array_api_compat (under helpers) caches with functools.lru_cache; dynamo traces
            # through it and says so once per function: harmless here, so not shown.
            warnings.filterwarnings("ignore", message=r"Dynamo detected a call to a `functools.lru_cache`")
            self.forward_model = torch.compile(self.forward_model)
        self.interrupt = _Interrupt()
        self.checkpoint_path = Path(config.checkpoint_path) if config.checkpoint_path else None

    # ---------------------------------------------------------------- pieces
    def stop(self):
        """Ask the loop to stop after the current step (as Ctrl-C does)."""
        self.interrupt.request()

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.use_amp else contextlib.nullcontext()

    def _to_device(self, batch):
        return tuple(t.to(self.device, non_blocking=True) for t in batch)

    def _loss(self, model, batch):
        return self.task.loss(model, batch, fused=self.fused, label_smoothing=self.config.label_smoothing)

    def _planned_steps(self) -> int | None:
        c = self.config
        if not (c.schedule_by_time and c.max_seconds > 0 and self.step_count > c.warmup_steps and self.wall > 0):
            return None
        return min(c.steps, int(self.step_count * c.max_seconds / self.wall))

    def step(self) -> float:
        """One optimizer step; returns its training loss (nats per token)."""
        c = self.config
        batch = self._to_device(next(self.sampler))
        self.step_count += 1
        lr = learning_rate(self.step_count, c, self.model_config.d_model, self._planned_steps())
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self._autocast():
            loss = self._loss(self.forward_model, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if c.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        self.optimizer.step()
        self._last_lr, self._last_tokens = lr, self.task.tokens_in(batch) * self.world_size
        return float(loss.detach())  # waits for the device: honest timings

    def evaluate(self) -> float:
        """Mean loss over the fixed validation batches (shared out across ranks)."""
        self.model.eval()
        with torch.no_grad(), self._autocast():
            losses = [float(self._loss(self.model, self._to_device(b))) for b in self.eval_data]
        self.model.train()
        if self.world_size == 1:
            return sum(losses) / len(losses)
        import torch.distributed as dist
        total = torch.tensor([sum(losses), len(losses)], dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return float(total[0] / total[1])

    def state_dict(self) -> dict:
        """Everything the next step depends on (this rank's sampler and random state, and
        with several processes every rank's: gathered on every rank)."""
        rank_state = {"sampler": self.sampler.state_dict(), "rng": rng_state()}
        ranks = [rank_state]
        if self.world_size > 1:
            import torch.distributed as dist
            ranks = [None] * self.world_size
            dist.all_gather_object(ranks, rank_state)
        return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "model_config": self.model_config.to_dict(), "train_config": self.config.to_dict(),
                "task": self.task.describe(), "step": self.step_count, "elapsed": self.elapsed,
                "wall": self.wall, "best_val": self.best_val, "evals_since_best": self.evals_since_best,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "ranks": ranks, "history": self.history.to_dict(), "window": list(self.window)}

    def save(self, path=None) -> Path | None:
        """Write a checkpoint (rank 0 writes; every rank must call this together)."""
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            return None
        state = self.state_dict()
        return save_checkpoint(path, state) if self.rank == 0 else path

    def resume(self, path):
        """Continue from a checkpoint: the model's config and the task must match, and the
        number of processes too (each rank takes back its own sampler and random state)."""
        state = load_checkpoint(path, config_class=type(self.model_config))
        check_compatible(state, self.model_config, self.task.describe(), path)
        if len(state["ranks"]) != self.world_size:
            raise CheckpointError(f"{path} was written by {len(state['ranks'])} process(es); resume it "
                                  f"with the same number (now {self.world_size})")
        load_weights(self.model, state, path)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            mine = state["ranks"][self.rank]
            self.sampler.load_state_dict(mine["sampler"])
            set_rng_state(mine["rng"])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as err:
            raise CheckpointError(f"{path} is damaged: its optimizer, sampler or random state does not "
                                  f"fit ({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
        self.history = History.from_dict(state["history"])
        self.history.stopped = ""  # why the earlier run stopped; this one has not stopped yet
        self.step_count, self.elapsed, self.wall = int(state["step"]), float(state["elapsed"]), float(state["wall"])
        self.best_val, self.evals_since_best = float(state["best_val"]), int(state["evals_since_best"])
        self.window = list(state["window"])
        return state

    def _call(self, name, *args):
        for cb in self.callbacks:
            fn = getattr(cb, name, None)
            if fn is not None:
                fn(*args)

    def _agree(self, flag: bool) -> bool:
        """True on every rank if it is True on any (stop decisions must be shared)."""
        if self.world_size == 1:
            return flag
        import torch.distributed as dist
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    # ---------------------------------------------------------------- the loop
    def fit(self) -> TrainResult:
        c, h = self.config, self.history
        from tqdm.auto import tqdm
        bar = tqdm(total=c.steps, initial=self.step_count, disable=not c.progress or self.rank != 0,
                   desc=f"training {self.task.name}", dynamic_ncols=True)
        tokens_seen = (h.tokens[-1] if h.tokens else 0) + self.window[2]
        interrupted = False
        self.model.train()
        wall_start = time.perf_counter() - self.wall
        try:
            with self.interrupt.installed():
                while self.step_count < c.steps:
                    t0 = time.perf_counter()
                    loss_value = self.step()
                    dt = time.perf_counter() - t0
                    self.elapsed += dt
                    tokens_seen += self._last_tokens
                    w = self.window
                    w[0] += loss_value
                    w[1] += 1
                    w[2] += self._last_tokens
                    w[3] += dt
                    self.wall = time.perf_counter() - wall_start
                    step = self.step_count
                    if step % c.log_every == 0 or step == c.steps:
                        h.step.append(step)
                        h.train_loss.append(w[0] / w[1])
                        h.lr.append(self._last_lr)
                        h.seconds.append(self.elapsed)
                        h.wall.append(self.wall)
                        h.tokens.append(tokens_seen)
                        rate = w[2] / w[3] if w[3] > 0 else 0.0
                        bar.set_postfix(loss=f"{w[0] / w[1]:.4f}", tok_per_s=f"{rate:,.0f}", refresh=False)
                        self.window = [0.0, 0, 0, 0.0]
                        self._call("on_log", h)
                    bar.update(1)
                    stop_reason = ""
                    out_of_time = bool(c.max_seconds) and self.wall >= c.max_seconds and step < c.steps
                    if self._agree(out_of_time):
                        stop_reason = f"time limit of {c.max_seconds:g} s reached"
                    if step % c.eval_every == 0 or step == c.steps or stop_reason:
                        val = self.evaluate()
                        self.wall = time.perf_counter() - wall_start
                        h.eval_step.append(step)
                        h.val_loss.append(val)
                        h.eval_seconds.append(self.elapsed)
                        h.eval_wall.append(self.wall)
                        h.eval_tokens.append(tokens_seen)
                        if val < self.best_val - 1e-4:
                            self.best_val, self.evals_since_best = val, 0
                        else:
                            self.evals_since_best += 1
                        self._call("on_eval", h)
                        if c.early_stopping and self.evals_since_best >= c.early_stopping and not stop_reason:
                            stop_reason = (f"early stopping: no better validation loss in "
                                           f"{self.evals_since_best} evaluations")
                    self._call("on_step", step, self)
                    if self._agree(self.interrupt.requested):
                        interrupted = True
                        stop_reason = "interrupted (Ctrl-C)"
                    if self.checkpoint_path and c.checkpoint_every and step % c.checkpoint_every == 0:
                        self.save()
                    self.wall = time.perf_counter() - wall_start
                    if stop_reason:
                        h.stopped = stop_reason
                        break
        finally:
            bar.close()
        saved = self.save()
        if interrupted and self.rank == 0:
            where = (f"checkpoint saved to {saved}; continue with resume/--resume" if saved is not None
                     else "no checkpoint_path was given, so nothing was saved")
            print(f"interrupted at step {self.step_count}: {where}", file=sys.stderr)
        self._call("on_end", h)
        return TrainResult(model=self.model, history=h, step=self.step_count, interrupted=interrupted,
                           checkpoint=saved, tokens_per_second=tokens_seen / self.elapsed if self.elapsed > 0 else 0.0,
                           device=str(self.device))


def train(model, task, config: TrainConfig, resume=None, callbacks=()) -> TrainResult:
    """Train ``model`` on ``task`` as ``config`` says; resume: a checkpoint path to continue
    from (the model's config and the task must match). Returns a :class:`TrainResult` (the
    model stays on the training device). ``Trainer(model, task, config).fit()`` in one call."""
    trainer = Trainer(model, task, config, callbacks)
    if resume is not None:
        trainer.resume(resume)
    return trainer.fit()
