"""Benchmark of chapter 11's training code on Tiny Shakespeare (characters), CPU or GPU.

A script run by hand; it prints tables and never asserts. For each configuration named by
--runs and each wall-clock budget of --budgets it trains a fresh model with
``python -m helpers.train``'s code (its options apply: see EXTRA below), the cosine decay
planned so that the run ends decayed at the budget, and prints

1. the validation loss against **wall-clock** seconds, evaluations and checkpoints included
   (and the training-only seconds beside them), the loss at the end of the budget, when it
   first went below nanoGPT's CPU result (1.886) and the targets 1.75 and 1.55, tokens/s and
   peak memory;
2. the measured matmul peak of the device (float32 on CPU, bf16 on CUDA) and the share of it
   the training reached (model FLOPs per token: 6 N + 12 L T d);
3. the fast path against the reference path: tokens/s of the same model with
   kernels="fused" (torch's kernels) and kernels="math" (the chapters' formulas), and one
   causal attention layer forward + backward, fused against math, at several lengths.

Anchor (issue 16, measured side by side on one 2-core machine): nanoGPT's CPU recipe (4
layers, 4 heads, width 128, context 64, batch 12, 2000 steps) ends at a validation loss of
1.886 after 95 s of wall-clock, evaluations included, at about 16,000 tokens/s. nanoGPT's
"baby GPT" on an H100 reaches its best, 1.468, at step 1750, in about 60 s with compilation.

    python benchmarks/train_benchmark.py                              # CPU: default and paper, 100 s and 300 s
    python benchmarks/train_benchmark.py --runs default --budgets 30 --skip-attention   # a smoke test
    python benchmarks/train_benchmark.py --runs gpu --budgets 120 --device cuda --target 1.47
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import helpers  # noqa: E402
from helpers.model import build_model, count_parameters  # noqa: E402
from helpers.tasks import make_task  # noqa: E402
from helpers.train import _given, build_parser, configs_from_args  # noqa: E402
from helpers.trainer import Trainer, pick_device  # noqa: E402

NANOGPT_CPU = (1.886, 95.0)        # validation loss, wall-clock seconds (nanoGPT's CPU recipe, this kind of machine)
TARGETS = (1.886, 1.75, 1.55)
# The configurations, as command lines of python -m helpers.train.
RUNS = {
    "default": [],                                        # the command line's defaults
    "paper": ["--preset", "paper"],                       # the 2017 block: post-LN, sinusoidal, ReLU, x sqrt(d)
    "modern": ["--preset", "modern"],                     # pre-norm RMSNorm, SwiGLU, rotary, no biases
    # nanoGPT's baby GPT shape (6 x 384, 6 heads, context 256, batch 64, dropout 0.2), for a GPU
    "gpu": ["--layers", "6", "--heads", "6", "--d-model", "384", "--d-ff", "1536", "--context", "256",
            "--batch-size", "64", "--dropout", "0.2", "--lr", "1e-3", "--min-lr", "1e-4", "--warmup", "100",
            "--compile", "--eval-every", "250", "--eval-batches", "50"],
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python benchmarks/train_benchmark.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--runs", default="default,paper", help=f"configurations, among {list(RUNS)}")
    p.add_argument("--budgets", default="100,300", help="wall-clock budgets in seconds, one run each")
    p.add_argument("--extra", default="", help="more options of python -m helpers.train for every run, "
                                               "e.g. \"--lr 3e-3 --batch-size 32\"")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: the number of cores)")
    p.add_argument("--eval-every", type=int, default=100, help="validate every N steps")
    p.add_argument("--target", type=float, action="append", default=None,
                   help=f"loss thresholds to report (default {TARGETS})")
    p.add_argument("--kernel-steps", type=int, default=60, help="steps timed for fused vs math (0: skip)")
    p.add_argument("--skip-attention", action="store_true", help="no attention micro-benchmark")
    return p


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB (VmHWM on Linux, ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2 ** 20 if sys.platform == "darwin" else rss / 1024


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def machine(device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return (f"{cpu}, {os.cpu_count()} cores{gpu}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
            f"Python {platform.python_version()}")


def matmul_peak_tflops(device) -> tuple[float, str]:
    """Measured dense matmul throughput: bf16 on CUDA, float32 on CPU (TFLOP/s), best of several."""
    n, dtype, reps = (8192, torch.bfloat16, 20) if device.type == "cuda" else (2048, torch.float32, 5)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    synchronize(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / min(times) / 1e12, str(dtype).replace("torch.", "")


def model_flops_per_token(config) -> float:
    """6 N + 12 L T d (forward + backward), N = parameters in matmuls (layers and output)."""
    d, L = config.d_model, config.num_layers
    per_layer = helpers.layers.encoder_layer_parameter_count(d, config.d_ff, config.num_heads,
                                                             config.layer_options(), config.norm)
    return 6 * (L * per_layer + d * config.vocab_size) + 12 * L * config.max_len * d


def build(name, budget, args, device, tasks):
    argv = RUNS[name] + shlex.split(args.extra) + [
        "--device", str(device), "--max-seconds", str(budget), "--steps", "1000000", "--checkpoint-every", "0",
        "--eval-every", str(args.eval_every), "--no-progress"]
    cli = build_parser().parse_args(argv)
    key = (cli.context, cli.tokenizer)
    if key not in tasks:
        tasks[key] = make_task("shakespeare", cli.data_path, cli.data_dir, cli.context, cli.tokenizer,
                               cli.bpe_vocab_size)
    task = tasks[key]
    model_config, train_config = configs_from_args(cli, task, _given(argv))
    train_config.schedule_by_time = True
    train_config.checkpoint_path = None
    torch.manual_seed(train_config.seed)
    return task, build_model(model_config), train_config, argv


def first_below(h, threshold):
    for wall, loss, step in zip(h.eval_wall, h.val_loss, h.eval_step):
        if loss <= threshold:
            return wall, step
    return None


def run_training(name, budget, args, device, tasks, targets, peak):
    task, model, config, argv = build(name, budget, args, device, tasks)
    c = model.config
    print(f"\n## run '{name}', budget {budget:g} s of wall-clock: {count_parameters(model):,} parameters")
    print(f"python -m helpers.train {' '.join(argv)}")
    print(f"model: {c.num_layers} layers, {c.num_heads} heads (kv {c.num_kv_heads or c.num_heads}), d_model "
          f"{c.d_model}, d_ff {c.d_ff}, norm {c.norm}/{c.normalization}, ffn {c.ffn}, positions {c.positions}, "
          f"bias {c.bias}, kernels {c.kernels}; batch {config.batch_size} x context {task.context}, lr "
          f"{config.lr:g} -> {config.min_lr:g} ({config.schedule}, warm-up {config.warmup_steps})")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    result = Trainer(model, task, config).fit()
    h = result.history
    print(f"\n{'step':>7} {'wall s':>7} {'train s':>8} {'tokens':>11} {'val loss':>9}")
    for row in zip(h.eval_step, h.eval_wall, h.eval_seconds, h.eval_tokens, h.val_loss):
        print(f"{row[0]:>7} {row[1]:>7.1f} {row[2]:>8.1f} {row[3]:>11,} {row[4]:>9.4f}")
    print(f"\nend: step {result.step}, wall-clock {h.eval_wall[-1]:.1f} s (training alone {h.eval_seconds[-1]:.1f} s), "
          f"{result.tokens_per_second:,.0f} tokens/s; validation loss {h.val_loss[-1]:.4f}, best {min(h.val_loss):.4f}")
    hits = {}
    for threshold in targets:
        hits[threshold] = first_below(h, threshold)
        hit = hits[threshold]
        print(f"first at or below {threshold}: " + (f"{hit[0]:.1f} s wall-clock (step {hit[1]})" if hit else "not reached"))
    memory = (f"{torch.cuda.max_memory_allocated() / 2 ** 20:,.0f} MiB allocated on the GPU"
              if device.type == "cuda" else f"{peak_rss_mib():,.0f} MiB resident (process peak so far)")
    achieved = model_flops_per_token(c) * result.tokens_per_second / 1e12
    print(f"peak memory: {memory}; {achieved:.3f} TFLOP/s = {100 * achieved / peak:.1f}% of the measured peak")
    return {"run": name, "budget": budget, "final": h.val_loss[-1], "best": min(h.val_loss),
            "tokens_per_second": result.tokens_per_second, "hits": hits}


def kernel_speed(args, device, tasks):
    print(f"\n## fast path (kernels=fused) against the reference (kernels=math), default model, "
          f"{args.kernel_steps} steps each after 10 of warm-up")
    print(f"{'kernels':>8} {'tokens/s':>10} {'ms/step':>8}")
    rates = {}
    for kernels in ("math", "fused"):
        args_extra = args.extra
        args.extra = f"{args_extra} --kernels {kernels}"
        task, model, config, _ = build("default", 0, args, device, tasks)
        args.extra = args_extra
        trainer = Trainer(model, task, config)
        for _ in range(10):
            trainer.step()
        synchronize(device)
        t0 = time.perf_counter()
        for _ in range(args.kernel_steps):
            trainer.step()
        synchronize(device)
        dt = (time.perf_counter() - t0) / args.kernel_steps
        rates[kernels] = task.tokens_in(next(trainer.sampler)) / dt
        print(f"{kernels:>8} {rates[kernels]:>10,.0f} {dt * 1e3:>8.1f}")
    print(f"fused / math: {rates['fused'] / rates['math']:.2f}x the tokens per second")


def attention_step(fused: bool, n: int, batch: int, d: int, device, reps: int) -> float:
    """Median time (s) of forward + backward of one causal multi-head attention layer (4 heads)."""
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(batch, n, d, generator=g).to(device).requires_grad_()
    weights = [(torch.randn(d, d, generator=g) * d ** -0.5).to(device).requires_grad_() for _ in range(4)]

    def once():
        out, _ = helpers.multi_head_attention(x, x, *weights, 4, causal=True, fused=fused)
        out.sum().backward()

    once()
    synchronize(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        once()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def attention_table(device):
    sizes = (256, 512, 1024, 2048) if device.type == "cuda" else (64, 128, 256, 512)
    batch, d = (32, 128) if device.type == "cuda" else (8, 128)
    print(f"\n## one causal attention layer, forward + backward, batch {batch}, d_model {d}, 4 heads: "
          "F.scaled_dot_product_attention (fused) against helpers' formula (math)")
    print(f"{'n':>6} {'math ms':>9} {'fused ms':>9} {'speed-up':>9}")
    for n in sizes:
        reps = 5 if device.type == "cpu" else 20
        t_math, t_fused = attention_step(False, n, batch, d, device, reps), attention_step(True, n, batch, d, device, reps)
        print(f"{n:>6} {t_math * 1e3:>9.2f} {t_fused * 1e3:>9.2f} {t_math / t_fused:>8.2f}x")


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    targets = tuple(args.target) if args.target else TARGETS
    print(f"# {time.strftime('%Y-%m-%d')}: {machine(device)}")
    peak, dtype = matmul_peak_tflops(device)
    print(f"# measured {dtype} matmul peak: {peak:.3f} TFLOP/s")
    print(f"# anchor: nanoGPT's CPU recipe ends at {NANOGPT_CPU[0]} after {NANOGPT_CPU[1]:g} s of wall-clock "
          "(evaluations included) on a machine like this one")
    tasks, summary = {}, []
    for name in args.runs.split(","):
        if name not in RUNS:
            print(f"error: --runs: unknown configuration {name!r}; known: {list(RUNS)}", file=sys.stderr)
            return 2
        for budget in (float(b) for b in args.budgets.split(",")):
            summary.append(run_training(name, budget, args, device, tasks, targets, peak))
    if summary:
        print(f"\n## summary: validation loss at the end of each budget (wall-clock, evaluations included)")
        print(f"{'run':>8} {'budget s':>9} {'final':>7} {'best':>7} {'tokens/s':>9}  " + "  ".join(f"<= {t}" for t in targets))
        for s in summary:
            hits = "  ".join(f"{hit[0]:>6.1f}s" if hit else "     -" for hit in s["hits"].values())
            print(f"{s['run']:>8} {s['budget']:>9g} {s['final']:>7.4f} {s['best']:>7.4f} "
                  f"{s['tokens_per_second']:>9,.0f}  {hits}")
    if args.kernel_steps:
        kernel_speed(args, device, tasks)
    if not args.skip_attention:
        attention_table(device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
