"""Ablation of chapter 12's changes on Tiny Shakespeare: the paper's decoder, each change alone, all together.

Chapter 12 derives five (and more) changes that separate today's decoder from the paper's
(Vaswani et al., 2017). This script measures what each one does in training, on the same
text and with the same budget. Every configuration is the same model,
:class:`helpers.model.DecoderOnlyLM`, with other :class:`~helpers.model.ModelConfig` options:

    paper          PRESETS["paper"]: post-LN LayerNorm, ReLU FFN (d_ff = 4 d), sinusoids, biases
    pre-norm       + norm="pre" (and the final norm that goes with it)
    RMSNorm        + normalization="rms_norm"
    SwiGLU         + ffn="swiglu", d_ff = round(8/3 d) (about the same parameter count)
    RoPE           + positions="rotary" (no sinusoids added)
    no biases      + bias=False
    GQA h_kv=h/2   + num_kv_heads = num_heads / 2
    QK-norm        + qk_norm=True
    modern         PRESETS["modern"]: pre-norm, RMSNorm, SwiGLU, RoPE, no biases (and no sqrt(d)
                   scaling of the embeddings)
    all seven      PRESETS["modern"] + GQA h_kv = h/2 + QK-norm

Each is trained with :func:`helpers.trainer.train` for the same number of steps, batch,
context and learning-rate schedule (AdamW, linear warm-up then cosine decay), from the same
seed (same initial random stream, same batches, same validation batches). The script prints
the machine (CPU model, cores, torch version, threads, load), the budget, and a table:
parameters, validation loss at a few checkpoints and at the end, the difference from the
paper's row at the end, and tokens/s.

Losses are compared at equal *steps*, so how loaded the machine is does not enter them
(with 2 threads they are still not bit-for-bit repeatable: on the machine this was written on,
two runs of the same row differed by about 1e-5 after 100 steps and by up to 0.01 after 400 to
1000 steps, about as much as two seeds). Tokens/s does depend on the load (and that machine
is shared), so read it as a rough ratio between rows, not as a speed.
With several seeds (--seeds 0,1) each loss is the mean over the seeds and the spread
(max - min) is printed too: differences smaller than the spread are noise.

Usage (from the repository root):

    python benchmarks/ablation_benchmark.py                      # the defaults below
    python benchmarks/ablation_benchmark.py --steps 800 --seeds 0,1 --out benchmarks/results/ablation_cpu.txt
    python benchmarks/ablation_benchmark.py --steps 20 --configs paper,modern   # a smoke test

On a machine shared with other processes, set OMP_WAIT_POLICY=PASSIVE in the environment:
torch's OpenMP threads otherwise spin while they wait for a busy core, which made a
training step with 2 threads about ten times slower here (the results are the same either way).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from helpers.model import PRESETS, build_model, count_parameters, parameter_formula  # noqa: E402
from helpers.tasks import make_task  # noqa: E402
from helpers.trainer import TrainConfig, train  # noqa: E402


def configurations(d_model: int, num_heads: int) -> list[tuple[str, dict]]:
    """(name, ModelConfig options) of every row, the paper's first."""
    paper = dict(PRESETS["paper"])
    modern = {**PRESETS["modern"], "d_ff": round(8 * d_model / 3)}   # the width the preset's d_ff=None gives
    alone = [
        ("pre-norm", dict(norm="pre")),
        ("RMSNorm", dict(normalization="rms_norm")),
        ("SwiGLU", dict(ffn="swiglu", d_ff=round(8 * d_model / 3))),
        ("RoPE", dict(positions="rotary")),
        ("no biases", dict(bias=False)),
        (f"GQA h_kv={num_heads // 2}", dict(num_kv_heads=num_heads // 2)),
        ("QK-norm", dict(qk_norm=True)),
    ]
    rows = [("paper", paper)]
    rows += [(name, {**paper, **change}) for name, change in alone]
    rows += [("modern", modern),
             ("all seven", {**modern, "num_kv_heads": num_heads // 2, "qk_norm": True})]
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python benchmarks/ablation_benchmark.py",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--steps", type=int, default=600, help="optimizer steps per configuration")
    p.add_argument("--context", type=int, default=64, help="characters per training sequence")
    p.add_argument("--batch-size", type=int, default=16, help="sequences per step")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (model initialisation and batches)")
    p.add_argument("--noise-seeds", default="1",
                   help="extra seeds for the paper's row only: the spread of its final loss over all its seeds "
                        "is the yardstick for noise ('' for none)")
    p.add_argument("--data-path", default=str(ROOT / "data" / "tinyshakespeare.txt"),
                   help="Tiny Shakespeare (or any UTF-8 text)")
    p.add_argument("--out", default=None, help="also write the report to this file")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW)")
    p.add_argument("--min-lr", type=float, default=1e-4, help="end of the cosine decay")
    p.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    p.add_argument("--checkpoints", type=int, default=4,
                   help="validation losses reported per run (evenly spaced; the last at --steps)")
    p.add_argument("--eval-batches", type=int, default=20, help="fixed validation batches per evaluation")
    p.add_argument("--configs", default=None,
                   help="comma-separated subset of the rows (default: all; 'paper' is always run)")
    return p


def cpu_model() -> str:
    """The CPU's name, and its widest vector instructions (the float results depend on them)."""
    name, flags = "", set()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name") and not name:
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    vector = next((f for f in ("avx512f", "avx2", "avx", "neon", "asimd") if f in flags), None)
    name = name or platform.processor() or platform.machine()
    return f"{name} ({vector})" if vector else name


def load_average() -> str:
    try:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def run_one(task, options: dict, args, seed: int, eval_every: int) -> dict:
    config = task.model_config(d_model=args.d_model, num_heads=args.heads, num_layers=args.layers, **options)
    torch.manual_seed(seed)
    model = build_model(config)
    params = count_parameters(model)
    if params != parameter_formula(config):
        raise AssertionError(f"parameter count {params} differs from the formula {parameter_formula(config)}")
    train_config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, min_lr=args.min_lr,
                               warmup_steps=args.warmup, schedule="cosine", eval_every=eval_every,
                               eval_batches=args.eval_batches, seed=seed, device="cpu", progress=False,
                               checkpoint_every=0)
    result = train(model, task, train_config)
    h = result.history
    return {"params": params, "val": dict(zip(h.eval_step, h.val_loss)), "tokens_per_s": result.tokens_per_second,
            "seconds": h.seconds[-1] if h.seconds else 0.0}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("steps", "context", "batch_size", "threads", "d_model", "heads", "layers", "checkpoints",
                 "eval_batches"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if args.heads % 2 or args.d_model % args.heads:
        raise SystemExit(f"--heads must be even (GQA uses heads/2) and divide --d-model; got "
                         f"--heads {args.heads}, --d-model {args.d_model}")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
        noise_seeds = [int(s) for s in args.noise_seeds.split(",") if s.strip() and int(s) not in seeds]
    except ValueError:
        raise SystemExit(f"--seeds and --noise-seeds must be comma-separated integers, got "
                         f"{args.seeds!r}, {args.noise_seeds!r}") from None
    rows = configurations(args.d_model, args.heads)
    if args.configs:
        wanted = {"paper", *(c.strip() for c in args.configs.split(","))}
        unknown = wanted - {name for name, _ in rows}
        if unknown:
            raise SystemExit(f"--configs: unknown {sorted(unknown)}; choose from {[n for n, _ in rows]}")
        rows = [(name, options) for name, options in rows if name in wanted]
    eval_every = max(1, args.steps // args.checkpoints)
    torch.set_num_threads(args.threads)
    task = make_task("shakespeare", data_path=args.data_path, context=args.context)

    lines = []

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    started = time.perf_counter()
    load_before = load_average()
    say(f"# python benchmarks/ablation_benchmark.py {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip())
    say(f"# {_dt.date.today().isoformat()}; machine: {cpu_model()}, {os.cpu_count()} logical cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, python {platform.python_version()}")
    say(f"# budget per configuration: {args.steps} steps x batch {args.batch_size} x context {args.context} = "
        f"{args.steps * args.batch_size * args.context:,} tokens; AdamW lr {args.lr:g} (warm-up {args.warmup}, "
        f"cosine to {args.min_lr:g}), weight decay 0.1, clip 1.0, no dropout; seeds {seeds}"
        + (f" (the paper's row also with {noise_seeds}, for the noise)" if noise_seeds else ""))
    say(f"# model: {args.layers} layers, d_model {args.d_model}, {args.heads} heads, vocabulary {task.vocab_size} "
        f"characters; validation loss (nats per character) on {args.eval_batches} fixed batches of the last 10% "
        f"of the text, every {eval_every} steps")
    say(f"# load average (1/5/15 min) at the start: {load_before}")
    say()

    results = {}
    for name, options in rows:
        runs = [run_one(task, options, args, seed, eval_every) for seed in seeds]
        results[name] = runs
        finals = [r["val"][max(r["val"])] for r in runs]
        print(f"  ... {name}: final validation loss {', '.join(f'{v:.4f}' for v in finals)} "
              f"({sum(r['seconds'] for r in runs):.0f} s of training)", file=sys.stderr, flush=True)

    noise_runs = [run_one(task, rows[0][1], args, seed, eval_every) for seed in noise_seeds]
    steps_reported = sorted(results["paper"][0]["val"])
    mean = lambda xs: sum(xs) / len(xs)
    head = f"{'configuration':15} {'params':>8} " + " ".join(f"{'@' + str(s):>7}" for s in steps_reported)
    head += f" {'vs paper':>9}"
    if len(seeds) > 1:
        head += f" {'spread':>7}"
    head += f" {'tokens/s':>9}"
    say(head)
    say("-" * len(head))
    paper_final = mean([r["val"][steps_reported[-1]] for r in results["paper"]])
    for name, runs in results.items():
        losses = [mean([r["val"][s] for r in runs]) for s in steps_reported]
        finals = [r["val"][steps_reported[-1]] for r in runs]
        line = f"{name:15} {runs[0]['params']:8,d} " + " ".join(f"{v:7.4f}" for v in losses)
        line += f" {losses[-1] - paper_final:+9.4f}"
        if len(seeds) > 1:
            line += f" {max(finals) - min(finals):7.4f}"
        line += f" {mean([r['tokens_per_s'] for r in runs]):9,.0f}"
        say(line)
    say()
    say(f"@N: validation loss after N steps (mean over the seeds {seeds}); vs paper: this row's loss at step "
        f"{steps_reported[-1]} minus the paper's (negative = lower = better).")
    if len(seeds) > 1:
        say("spread: max - min of the final loss over the seeds.")
    say("Rows (ModelConfig options that differ from the paper's row):")
    paper_options = rows[0][1]
    for name, options in rows[1:]:
        changed = {k: v for k, v in options.items() if paper_options.get(k, "(default)") != v}
        say(f"  {name:15} " + ", ".join(f"{k}={v}" for k, v in changed.items()))
    if noise_runs:
        all_paper = results["paper"] + noise_runs
        finals = [r["val"][steps_reported[-1]] for r in all_paper]
        say(f"Noise: the paper's configuration with seeds {seeds + noise_seeds} ends at "
            f"{', '.join(f'{v:.4f}' for v in finals)}: a spread of {max(finals) - min(finals):.4f} from the seed "
            "alone (one small sample of the noise; other rows may vary more). Differences between rows of "
            "about this size are not evidence of anything.")
    say("Losses are measured at equal steps, so the machine's load does not enter them (with several threads "
        "they are not bit-for-bit repeatable: treat differences of the size of the noise above as noise); "
        "tokens/s depends on the "
        f"load (load average at the end: {load_average()}).")
    say(f"Total time: {time.perf_counter() - started:.0f} s.")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
