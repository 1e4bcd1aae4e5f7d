"""Benchmark of chapter 11's training code on Tiny Shakespeare (characters), CPU or GPU.

Anchor: nanoGPT's char-level Shakespeare CPU recipe (4 layers, 4 heads, 128 wide, context
64, batch 12, 2000 steps, dropout 0) ran 2 min 10 s on a 2-core machine at ~13k tokens/s
and reached a validation loss of 1.886. This script trains the default configuration of
``python -m helpers.train`` (or any other: it accepts every option of that command) for a
time budget and prints

1. the validation loss against training time (wall-clock seconds of training steps;
   evaluations are not counted), tokens/s, the loss at the reported times (default 130 s
   and 300 s) and when it first went below 1.886 and 1.70;
2. the device's matmul peak measured here (bf16 on CUDA, float32 on CPU) and the share of it
   the training reached (model FLOPs: 6 N + 12 L T d per token);
3. fused attention (F.scaled_dot_product_attention) against the math path
   (helpers.scaled_dot_product_attention) at several sequence lengths: time of a forward
   and backward pass of one attention layer and its peak memory.

Usage (from the repository root):

    python benchmarks/train_benchmark.py --data-path /path/to/tinyshakespeare.txt
    python benchmarks/train_benchmark.py --device cuda --compile --early-stopping 5 --max-seconds 600
    python benchmarks/train_benchmark.py --max-seconds 20 --attention-sizes 64,128   # a smoke test

Without --data-path the text is downloaded once into data/ (sha256-checked).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from helpers.model import MultiHeadAttention, build_model, count_parameters  # noqa: E402
from helpers.train import build_parser, configs_from_args, make_task, pick_device, train  # noqa: E402

NANOGPT_VAL_LOSS = 1.886
TARGET_VAL_LOSS = 1.70


def parser() -> argparse.ArgumentParser:
    p = build_parser()
    p.prog = "python benchmarks/train_benchmark.py"
    p.description = (__doc__.split("\n\n")[0] + " Every training option of helpers.train applies "
                     "(--task, --sample and --checkpoint are ignored: the benchmark always trains on "
                     "Tiny Shakespeare, with the cosine decay spread over --max-seconds).")
    g = p.add_argument_group("benchmark")
    g.add_argument("--report-at", default="130,300",
                   help="training times (s) at which to report the validation loss")
    g.add_argument("--attention-sizes", default=None,
                   help="sequence lengths for fused vs math (default 64,128,256,512 on CPU, "
                        "256,512,1024,2048,4096 on CUDA)%(default).0s")
    g.add_argument("--attention-batch", type=int, default=None, help="batch for fused vs math (default 8 CPU, 32 CUDA)%(default).0s")
    g.add_argument("--skip-train", action="store_true", help="only the attention comparison and the matmul peak")
    g.add_argument("--skip-attention", action="store_true", help="only the training run")
    g.add_argument("--probe", nargs=4, metavar=("IMPL", "N", "BATCH", "D_MODEL"), help=argparse.SUPPRESS)
    p.set_defaults(max_seconds=300.0, eval_every=100, checkpoint_every=0, sample=0, steps=100_000)
    return p


# --------------------------------------------------------------------------- measurements

def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB.

    Linux: VmHWM from /proc/self/status (the high-water mark of this program's memory;
    ru_maxrss would also count the parent that started it, since Linux keeps the larger of
    the two across exec). Elsewhere ru_maxrss (KiB on Linux, bytes on macOS).
    """
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


def matmul_peak_tflops(device) -> tuple[float, str]:
    """Measured dense matmul throughput: bf16 on CUDA, float32 on CPU (TFLOP/s)."""
    if device.type == "cuda":
        n, dtype, reps = 8192, torch.bfloat16, 20
    else:
        n, dtype, reps = 2048, torch.float32, 5  # the best of several: other processes only slow it down
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
    d, f, L = config.d_model, config.d_ff, config.num_layers
    n_matmul = L * (4 * d * d + 2 * d * f) + d * config.vocab_size
    return 6 * n_matmul + 12 * L * config.max_len * d


def attention_step(impl: str, n: int, batch: int, d_model: int, device, reps: int):
    """Median time (s) of forward + backward of one causal attention layer, and peak memory."""
    torch.manual_seed(0)
    layer = MultiHeadAttention(d_model, 4, attention=impl).to(device)
    x = torch.randn(batch, n, d_model, device=device, requires_grad=True)
    dtype = torch.bfloat16 if device.type == "cuda" else None

    def once():
        with torch.autocast("cuda", dtype=dtype) if dtype else torch.autocast("cpu", enabled=False):
            out, _ = layer(x, causal=True)
        out.float().sum().backward()

    once()
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        once()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    peak = (torch.cuda.max_memory_allocated() - base) / 2 ** 20 if device.type == "cuda" else None
    return statistics.median(times), peak


def cpu_attention_peak_mib(impl: str, n: int, batch: int, d_model: int) -> float:
    """Peak extra resident memory of one forward + backward, measured in a fresh process."""
    cmd = [sys.executable, __file__, "--probe", impl, str(n), str(batch), str(d_model)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return float(out.stdout.strip().splitlines()[-1])


def probe(impl, n, batch, d_model):
    torch.manual_seed(0)
    layer = MultiHeadAttention(d_model, 4, attention=impl)
    x = torch.randn(batch, n, d_model, requires_grad=True)
    small = torch.randn(1, 4, d_model, requires_grad=True)
    layer(small, causal=True)[0].sum().backward()  # load kernels before the baseline
    base = peak_rss_mib()
    out, _ = layer(x, causal=True)
    out.sum().backward()
    print(max(0.0, peak_rss_mib() - base))


# --------------------------------------------------------------------------- report

def interpolate_report(history, at: float):
    """Validation loss of the last evaluation at or before ``at`` seconds of training."""
    best = None
    for seconds, loss in zip(history.eval_seconds, history.val_loss):
        if seconds <= at:
            best = (seconds, loss)
    return best


def first_below(history, threshold):
    for seconds, loss, step in zip(history.eval_seconds, history.val_loss, history.eval_step):
        if loss < threshold:
            return seconds, step
    return None


def run_training(args, device):
    task = make_task("shakespeare", args.data_path, args.data_dir, args.context)
    model_config, train_config = configs_from_args(args, task)
    train_config.schedule_by_time = True
    train_config.checkpoint_path = None
    torch.manual_seed(args.seed)
    model = build_model(model_config)
    print(f"## training: Tiny Shakespeare, {count_parameters(model):,} parameters, device {device}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"config: layers={args.layers} heads={args.heads} d_model={args.d_model} d_ff={args.d_ff} "
          f"context={args.context} batch={args.batch_size} lr={args.lr} min_lr={args.min_lr} "
          f"warmup={args.warmup} schedule={args.schedule} (decay over {args.max_seconds:g} s) "
          f"attention={args.attention} dropout={args.dropout} compile={args.compile} "
          f"amp={not args.no_amp and device.type == 'cuda'}")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    wall = time.perf_counter()
    result = train(model, task, train_config)
    wall = time.perf_counter() - wall
    h = result.history
    print(f"\n{'step':>7} {'train s':>8} {'tokens':>11} {'val loss':>9}")
    for step, seconds, tokens, loss in zip(h.eval_step, h.eval_seconds, h.eval_tokens, h.val_loss):
        print(f"{step:>7} {seconds:>8.1f} {tokens:>11,} {loss:>9.4f}")
    print(f"\ntraining time {h.eval_seconds[-1]:.1f} s (wall-clock with evaluations {wall:.1f} s), "
          f"{result.step} steps, {result.tokens_per_second:,.0f} tokens/s{'; ' + h.stopped if h.stopped else ''}")
    for at in (float(x) for x in args.report_at.split(",") if x):
        found = interpolate_report(h, at)
        if found:
            verdict = ""
            if at == 130:
                verdict = f"  (nanoGPT's CPU recipe: {NANOGPT_VAL_LOSS} after 130 s)"
            print(f"validation loss after {at:g} s: {found[1]:.4f} (evaluated at {found[0]:.1f} s){verdict}")
    for threshold in (NANOGPT_VAL_LOSS, TARGET_VAL_LOSS):
        hit = first_below(h, threshold)
        print(f"first below {threshold}: " + (f"{hit[0]:.1f} s (step {hit[1]})" if hit else "not reached"))
    memory = (f"{torch.cuda.max_memory_allocated() / 2 ** 20:,.0f} MiB allocated on the GPU"
              if device.type == "cuda" else f"{peak_rss_mib():,.0f} MiB resident (process peak)")
    print(f"peak memory: {memory}")
    return model_config, result.tokens_per_second


def run_attention(args, device):
    sizes = args.attention_sizes or ("256,512,1024,2048,4096" if device.type == "cuda" else "64,128,256,512")
    batch = args.attention_batch or (32 if device.type == "cuda" else 8)
    d = args.d_model
    print(f"\n## attention: fused (F.scaled_dot_product_attention) vs math (helpers), one causal layer, "
          f"forward + backward, batch {batch}, d_model {d}, 4 heads")
    print(f"{'n':>6} {'math ms':>9} {'fused ms':>9} {'speed-up':>9} {'math MiB':>9} {'fused MiB':>10}  verdict")
    slower = []
    for n in (int(s) for s in sizes.split(",")):
        reps = 5 if device.type == "cpu" else 20
        t_math, m_math = attention_step("math", n, batch, d, device, reps)
        t_fused, m_fused = attention_step("fused", n, batch, d, device, reps)
        if device.type == "cpu":
            m_math = cpu_attention_peak_mib("math", n, batch, d)
            m_fused = cpu_attention_peak_mib("fused", n, batch, d)
        ok = t_fused <= t_math
        if not ok:
            slower.append(n)
        print(f"{n:>6} {t_math * 1e3:>9.2f} {t_fused * 1e3:>9.2f} {t_math / t_fused:>8.2f}x "
              f"{m_math:>9.1f} {m_fused:>10.1f}  {'fused not slower' if ok else 'FUSED SLOWER'}")
    print("fused attention was never slower than the math path" if not slower
          else f"fused attention was slower at n = {slower}")


def main(argv=None):
    args = parser().parse_args(argv)
    if args.probe:
        impl, n, batch, d = args.probe
        probe(impl, int(n), int(batch), int(d))
        return 0
    device = pick_device(args.device)
    if args.compile and sys.version_info >= (3, 14):
        print("note: torch.compile may not support this Python version")
    model_config, tokens_per_second = None, None
    if not args.skip_train:
        model_config, tokens_per_second = run_training(args, device)
    peak, dtype = matmul_peak_tflops(device)
    print(f"\n## device: measured {dtype} matmul peak {peak:.2f} TFLOP/s")
    if model_config is not None:
        achieved = model_flops_per_token(model_config) * tokens_per_second / 1e12
        print(f"training reached {achieved:.3f} TFLOP/s = {100 * achieved / peak:.1f}% of that peak "
              f"({model_flops_per_token(model_config) / 1e6:.2f} MFLOP per token)")
    if not args.skip_attention:
        run_attention(args, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
