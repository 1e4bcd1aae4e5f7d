"""The command line of chapter 11's training loop: ``python -m helpers.train --help``.

    python -m helpers.train --task shakespeare        # Tiny Shakespeare as characters
    python -m helpers.train --task dates              # dates in words -> ISO dates
    torchrun --nproc_per_node=2 -m helpers.train ...  # several processes (README)

Every option's default is the field default of :class:`~helpers.model.ModelConfig` or
:class:`~helpers.trainer.TrainConfig` (or, for the few options of the command line itself,
:data:`CLI_DEFAULTS`), and every choice list is the library's own: the parser is built from
them, so they cannot disagree. Everything is checked before training starts; a bad option,
file or checkpoint ends the program with one line on stderr and exit status 2. Ctrl-C saves
a checkpoint and exits with status 130; ``--resume`` continues from it.

The library behind it: :mod:`helpers.tasks` (what to train on), :mod:`helpers.trainer`
(the loop), :mod:`helpers.checkpoint`, :mod:`helpers.model`. For convenience this module
also exposes the names the chapters import from it.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import torch

from . import model as model_module
from .checkpoint import CheckpointError, load_checkpoint
from .data import DATA_DIR, DownloadError
from .model import ModelConfig, build_model, count_parameters
from .tasks import TASKS, TOKENIZERS, LanguageModelTask, TranslationTask, make_task  # noqa: F401 (re-exported)
from .trainer import (DEVICES, OPTIMIZERS, SCHEDULES, TrainConfig, Trainer, pick_device,  # noqa: F401
                      train)

EXIT_BAD_INPUT = 2        # argparse's convention for a bad command line
EXIT_INTERRUPTED = 130    # 128 + SIGINT, the shell's convention for a run stopped by Ctrl-C

# The options of the command line itself (not of the model or of the training).
CLI_DEFAULTS = dict(task="shakespeare", data_path=None, data_dir=str(DATA_DIR), context=64,
                    tokenizer="char", bpe_vocab_size=512,
                    preset=None, checkpoint=None, resume=False, overwrite=False, sample=300, prompt=None,
                    temperature=0.8, top_k=0, beam=1)

_MODEL = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
_TRAIN = {f.name: f.default for f in dataclasses.fields(TrainConfig)}

# (flag, config, field, help, extra argparse keywords). A flag that turns a True default off
# is written "--no-x"; one that turns a False default on, "--x".
MODEL_OPTIONS = [
    ("--layers", "model", "num_layers", "layers (per stack for dates)", {}),
    ("--heads", "model", "num_heads", "attention heads", {}),
    ("--kv-heads", "model", "num_kv_heads", "key/value heads, grouped-query attention (default: --heads)", {}),
    ("--d-model", "model", "d_model", "width of the residual stream", {}),
    ("--d-ff", "model", "d_ff", "hidden width of the FFN (default 4 d_model; round(8/3 d_model) for swiglu)", {}),
    ("--dropout", "model", "dropout", "dropout on embeddings and sub-layer outputs", {}),
    ("--attention-dropout", "model", "attention_dropout", "dropout on the attention weights", {}),
    ("--norm", "model", "norm", "where the normalisation sits: pre, post (the paper's) or none",
     {"choices": model_module.NORMS}),
    ("--normalization", "model", "normalization", "LayerNorm or RMSNorm", {"choices": model_module.NORMALIZATIONS}),
    ("--ffn", "model", "ffn", "the position-wise network", {"choices": model_module.FFNS}),
    ("--positions", "model", "positions", "position vectors", {"choices": model_module.POSITIONS}),
    ("--rotary-theta", "model", "rotary_theta", "base of the rotary frequencies (--positions rotary)", {}),
    ("--no-bias", "model", "bias", "no biases in the projections, the FFN and LayerNorm", {}),
    ("--qk-norm", "model", "qk_norm", "RMS-normalise queries and keys before the scores", {}),
    ("--untied", "model", "tie_embeddings", "a separate output projection instead of the embedding table", {}),
    ("--scale-embeddings", "model", "scale_embeddings", "multiply the embeddings by sqrt(d_model) as the paper does", {}),
    ("--kernels", "model", "kernels",
     "fused: torch's kernels (F.scaled_dot_product_attention, F.layer_norm, F.cross_entropy...); "
     "math: the chapters' formulas", {"choices": model_module.KERNELS}),
]
TRAIN_OPTIONS = [
    ("--batch-size", "train", "batch_size", "sequences per step (per process)", {}),
    ("--optimizer", "train", "optimizer", "optimizer", {"choices": OPTIMIZERS}),
    ("--lr", "train", "lr", "peak learning rate", {}),
    ("--min-lr", "train", "min_lr", "final learning rate of the cosine schedule", {}),
    ("--schedule", "train", "schedule", "cosine: warm-up then cosine decay; noam: the paper's warm-up / "
     "inverse square root; constant", {"choices": SCHEDULES}),
    ("--warmup", "train", "warmup_steps", "warm-up steps", {}),
    ("--weight-decay", "train", "weight_decay", "AdamW weight decay (matrices only)", {}),
    ("--beta1", "train", "beta1", "Adam beta1", {}),
    ("--beta2", "train", "beta2", "Adam beta2", {}),
    ("--grad-clip", "train", "grad_clip", "clip the global gradient norm (0: off)", {}),
    ("--label-smoothing", "train", "label_smoothing", "label smoothing of the loss (the paper: 0.1)", {}),
    ("--steps", "train", "steps", "optimizer steps", {}),
    ("--max-seconds", "train", "max_seconds", "stop after this much wall-clock time (0: no limit)", {}),
    ("--eval-every", "train", "eval_every", "validate every N steps", {}),
    ("--eval-batches", "train", "eval_batches", "batches per validation", {}),
    ("--early-stopping", "train", "early_stopping", "stop after N validations without improvement (0: off)", {}),
    ("--checkpoint-every", "train", "checkpoint_every", "save every N steps (0: only at the end / Ctrl-C)", {}),
    ("--device", "train", "device", "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps", {}),
    ("--no-amp", "train", "amp", "no bf16 autocast on CUDA", {}),
    ("--compile", "train", "compile", "torch.compile the model", {}),
    ("--seed", "train", "seed", "seed of every random generator", {}),
    ("--no-progress", "train", "progress", "no progress bar", {}),
]
# Training options that may change when resuming: they do not change the weights a step
# computes (only when the run evaluates, saves or stops, or where it runs).
SAFE_TO_CHANGE_ON_RESUME = {"eval_every", "eval_batches", "early_stopping", "checkpoint_every", "progress",
                            "log_every", "max_seconds", "device", "compile", "amp"}


class CommandLineError(ValueError):
    """A bad option, file or checkpoint: reported in one line, exit status 2."""


def _type_of(default, field_type):
    if isinstance(default, bool):
        return None
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    return {"int | None": int}.get(str(field_type), str)


def build_parser(suppress_defaults: bool = False) -> argparse.ArgumentParser:
    """The parser, built from the option tables; with ``suppress_defaults`` an option that is
    not on the command line is absent from the result (to see what was given explicitly)."""
    p = argparse.ArgumentParser(
        prog="python -m helpers.train",
        description="Train the chapter-11 Transformer: a character-level language model on Tiny "
                    "Shakespeare or on the generated Markov corpus, or the encoder-decoder on the "
                    "dates translation task. Ctrl-C saves a checkpoint (exit status 130); --resume "
                    "continues from it. Bad input: one line on stderr, exit status 2.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        argument_default=argparse.SUPPRESS if suppress_defaults else None)

    def default(value):
        return argparse.SUPPRESS if suppress_defaults else value

    field_types = {f.name: f.type for cls in (ModelConfig, TrainConfig) for f in dataclasses.fields(cls)}
    g = p.add_argument_group("data")
    g.add_argument("--task", choices=TASKS, default=default(CLI_DEFAULTS["task"]),
                   help="shakespeare: Tiny Shakespeare as characters (shipped in data/, sha256-checked); "
                        "markov: text from the course's Markov chain (known entropy rate); "
                        "dates: dates in words -> ISO dates with the encoder-decoder")
    g.add_argument("--data-path", default=default(None),
                   help="read the text from this local UTF-8 file (shakespeare, markov)%(default).0s")
    g.add_argument("--data-dir", default=default(CLI_DEFAULTS["data_dir"]),
                   help="where Tiny Shakespeare is looked for, and downloaded to if missing")
    g.add_argument("--context", type=int, default=default(CLI_DEFAULTS["context"]),
                   help="tokens per training window (language models)")
    g.add_argument("--tokenizer", choices=TOKENIZERS, default=default(CLI_DEFAULTS["tokenizer"]),
                   help="language models: char (one token per character) or bpe (GPT-2's byte-level BPE, "
                        "chapter 1, trained on the training text)")
    g.add_argument("--bpe-vocab-size", type=int, default=default(CLI_DEFAULTS["bpe_vocab_size"]),
                   help="vocabulary size of --tokenizer bpe (256 bytes + merges)")
    groups = {"model": p.add_argument_group("model"), "train": p.add_argument_group("optimization, evaluation, device")}
    groups["model"].add_argument(
        "--preset", choices=tuple(model_module.PRESETS), default=default(CLI_DEFAULTS["preset"]),
        help="start from a whole configuration (model options given explicitly still apply): "
             + "; ".join(f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items())
                         for name, values in model_module.PRESETS.items()))
    for flag, where, name, text, extra in MODEL_OPTIONS + TRAIN_OPTIONS:
        value = (_MODEL if where == "model" else _TRAIN)[name]
        if isinstance(value, bool):
            action = "store_false" if flag.startswith("--no-") or flag == "--untied" else "store_true"
            groups[where].add_argument(flag, dest=name, action=action, default=default(value), help=text)
        else:
            groups[where].add_argument(flag, dest=name, type=_type_of(value, field_types[name]),
                                       default=default(value), help=text, **extra)
    g = p.add_argument_group("checkpoints")
    g.add_argument("--checkpoint", default=default(None),
                   help="checkpoint file (default: checkpoints/<task>.pt)%(default).0s")
    g.add_argument("--resume", action="store_true", default=default(False),
                   help="continue the run saved in --checkpoint, with its stored options")
    g.add_argument("--overwrite", action="store_true", default=default(False),
                   help="start a new run even if --checkpoint exists (it is replaced)")
    g = p.add_argument_group("after training")
    g.add_argument("--sample", type=int, default=default(CLI_DEFAULTS["sample"]),
                   help="tokens to sample at the end (language models; 0: none)")
    g.add_argument("--prompt", default=default(None),
                   help="text the sample starts from (default: the first character of the validation "
                        "text)%(default).0s")
    g.add_argument("--temperature", type=float, default=default(CLI_DEFAULTS["temperature"]),
                   help="sampling temperature (0: greedy)")
    g.add_argument("--top-k", type=int, default=default(CLI_DEFAULTS["top_k"]),
                   help="sample among the k likeliest tokens (0: all)")
    g.add_argument("--beam", type=int, default=default(CLI_DEFAULTS["beam"]),
                   help="beam width of the decoding (dates; 1: greedy)")
    return p


def _given(argv) -> dict:
    """The options written on the command line, with their values."""
    return vars(build_parser(suppress_defaults=True).parse_args(argv))


def _split(values: dict):
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    return ({k: v for k, v in values.items() if k in model_fields},
            {k: v for k, v in values.items() if k in train_fields})


def _flag(name: str) -> str:
    for flag, _, field_name, _, _ in MODEL_OPTIONS + TRAIN_OPTIONS:
        if field_name == name:
            return flag
    return "--" + name.replace("_", "-")


def configs_from_args(args, task, given=None, checkpoint_state=None):
    """(ModelConfig, TrainConfig) of a new run, or of the run stored in ``checkpoint_state``
    (resuming) with the explicitly ``given`` options that may change applied; any other
    option that differs from the stored run is refused, naming it."""
    values = vars(args)
    model_values, train_values = _split(values)
    train_values["checkpoint_path"] = args.checkpoint or f"checkpoints/{args.task}.pt"
    if checkpoint_state is None:
        preset = model_module.PRESETS.get(values.get("preset")) or {}
        model_values.update({k: v for k, v in preset.items() if k not in (given or {})})
        if model_values.get("d_ff") is None:
            model_values.pop("d_ff")
        if model_values.get("num_kv_heads") is None:
            model_values.pop("num_kv_heads")
        return task.model_config(**model_values), TrainConfig(**train_values)
    given_model, given_train = _split(given or {})
    stored_model = checkpoint_state["model_config"]
    stored_train = dict(checkpoint_state["train_config"])
    conflicts = [f"{_flag(k)} {v!r} (the checkpoint's run has {stored_model.get(k)!r})"
                 for k, v in given_model.items() if stored_model.get(k) != v]
    steps_given = given_train.get("steps")
    for k, v in given_train.items():
        if k in SAFE_TO_CHANGE_ON_RESUME or stored_train.get(k) == v:
            continue
        if k == "steps" and stored_train.get("schedule") != "cosine":
            continue   # noam and constant do not depend on the total: more steps extend the run
        why = (" (the cosine schedule decays over the total number of steps, so a longer run would not "
               "end where an uninterrupted one does)" if k == "steps" else "")
        conflicts.append(f"{_flag(k)} {v!r} (the checkpoint's run has {stored_train.get(k)!r}){why}")
    if conflicts:
        raise CommandLineError("--resume continues the stored run with its own options; these differ: "
                               + "; ".join(conflicts) + ". Drop them, or start a new run with --overwrite")
    stored_train.update({k: v for k, v in given_train.items() if k in SAFE_TO_CHANGE_ON_RESUME or k == "steps"})
    stored_train["checkpoint_path"] = train_values["checkpoint_path"]
    if steps_given is not None and stored_train.get("schedule") != "cosine":
        stored_train["steps"] = steps_given
    return ModelConfig.from_dict(stored_model), TrainConfig(**stored_train)


def _check_sampling(args, task):
    if args.sample < 0:
        raise CommandLineError(f"--sample must be >= 0, got {args.sample}")
    if not args.temperature >= 0:
        raise CommandLineError(f"--temperature must be >= 0 (0: greedy), got {args.temperature}")
    if not 0 <= args.top_k <= task.vocab_size:
        raise CommandLineError(f"--top-k must lie in 0..{task.vocab_size} (the vocabulary's size; 0: all), "
                               f"got {args.top_k}")
    if args.beam < 1:
        raise CommandLineError(f"--beam must be >= 1 (1: greedy), got {args.beam}")
    if args.prompt is not None and isinstance(task, LanguageModelTask):
        if not args.prompt:
            raise CommandLineError("--prompt must hold at least one character")
        known = getattr(task.vocab, "ids", None)    # a byte-level BPE encodes any text
        unknown = sorted({c for c in args.prompt if c not in known}) if known is not None else []
        if unknown:
            raise CommandLineError(f"--prompt holds characters the {task.name} vocabulary lacks: {unknown}")


def prepare(argv=None):
    """Everything up to the first training step, every check included: (args, task, model,
    trainer, resume_path). Raises CommandLineError, CheckpointError, ValueError or OSError."""
    args = build_parser().parse_args(argv)
    given = _given(argv)
    try:
        task = make_task(args.task, args.data_path, args.data_dir, args.context, args.tokenizer,
                         args.bpe_vocab_size)
    except DownloadError as err:
        raise CommandLineError(str(err)) from None
    _check_sampling(args, task)
    checkpoint_path = Path(args.checkpoint or f"checkpoints/{args.task}.pt")
    state = None
    if args.resume:
        state = load_checkpoint(checkpoint_path)
    elif checkpoint_path.exists() and not args.overwrite:
        raise CommandLineError(f"checkpoint {checkpoint_path} exists: pass --resume to continue that run, "
                               "--overwrite to start a new one in its place, or --checkpoint another path")
    model_config, train_config = configs_from_args(args, task, given, state)
    pick_device(train_config.device)   # a missing device is reported now, not after start-up
    torch.manual_seed(train_config.seed)
    model = build_model(model_config, pad_id=getattr(task, "pad_id", 0))
    trainer = Trainer(model, task, train_config)
    if state is not None:
        trainer.resume(checkpoint_path)
    return args, task, model, trainer


def _report(args, task, trainer, result):
    from .generate import beam_search_translate, greedy_translate, sample_text
    h, model, device = result.history, result.model, trainer.device
    if h.val_loss:
        print(f"step {result.step}: validation loss {h.val_loss[-1]:.4f} "
              f"({result.tokens_per_second:,.0f} tokens/s){'; ' + h.stopped if h.stopped else ''}")
    model.eval()
    if isinstance(task, TranslationTask):
        src, tgt = task.tensors("test")
        src = src[:1000].to(device)
        if args.beam > 1:
            pred = beam_search_translate(model, src, task.vocab, beam_size=args.beam)
        else:
            pred = greedy_translate(model, src, task.vocab)
        truth = [task.vocab.decode(t) for t in tgt[:1000]]
        acc = sum(p == t for p, t in zip(pred, truth)) / len(truth)
        how = f"beam search, beam {args.beam}" if args.beam > 1 else "greedy decoding"
        print(f"exact-match accuracy on 1000 test dates ({how}): {acc:.4f}")
        for s, p in zip(task.dates.splits["test"].sources[:3], pred[:3]):
            print(f"  {s!r} -> {p}")
    elif args.sample > 0:
        g = torch.Generator(device=device).manual_seed(args.seed)
        prompt = args.prompt if args.prompt else task.vocab.decode(task.corpus.splits["val"][:1].tolist())
        print(sample_text(model, task.vocab, prompt, args.sample, temperature=args.temperature,
                          top_k=args.top_k or None, generator=g))


def _init_distributed():
    """Join the process group when started by torchrun (WORLD_SIZE > 1): gloo on CPU, nccl on CUDA."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch.distributed as dist
    backend = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    return True


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0, 2 for bad input, 130 for Ctrl-C)."""
    distributed = False
    try:
        try:
            distributed = _init_distributed()
            args, task, model, trainer = prepare(argv)
        except (CommandLineError, CheckpointError, ValueError, OSError) as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if trainer.rank == 0:
            print(f"task {task.name}: {count_parameters(model):,} parameters on {trainer.device}"
                  f"{f' x {trainer.world_size} processes' if trainer.world_size > 1 else ''}; "
                  f"checkpoint {trainer.checkpoint_path}"
                  f"{f' (resumed at step {trainer.step_count})' if args.resume else ''}")
        result = trainer.fit()
        if result.interrupted:
            return EXIT_INTERRUPTED
        if trainer.rank == 0:
            _report(args, task, trainer, result)
        return 0
    except KeyboardInterrupt:
        print("interrupted before a checkpoint could be saved (nothing was saved)", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if distributed:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
