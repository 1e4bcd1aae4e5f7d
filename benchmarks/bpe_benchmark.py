"""Benchmark of chapter 1's byte-level BPE (helpers/byte_bpe.py) on Tiny Shakespeare.

Prints

1. the seconds to train, with the incremental pair counts (the default) at several
   vocabulary sizes on the whole text, and incremental against the naive recount
   (``algorithm="recount"``, every pair of every word counted again after each merge) on a
   smaller slice, with the speed-up and a check that both learned the same merges;
2. encoding throughput (MB of UTF-8 per second) of ``encode`` with a cold and a warm word
   cache, and of ``encode_iterable`` over the file's lines;
3. compression, bytes per token, on the training part (the first 90%) and the held-out
   part (the last 10%) as the vocabulary grows.

A script to run by hand, never a test; times depend on the machine and its load.

Usage (from the repository root):

    python benchmarks/bpe_benchmark.py --data-path path/to/tinyshakespeare.txt
    python benchmarks/bpe_benchmark.py --vocab-sizes 512,1000 --naive-chars 50000   # quicker

Without --data-path the text is read from data/tinyshakespeare.txt, downloaded there once
(sha256-checked) if it is missing.
"""
from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from helpers.byte_bpe import ByteLevelBPE, pretokenize  # noqa: E402

EOT = "<|endoftext|>"


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-path", help="a local copy of Tiny Shakespeare (input.txt)")
    parser.add_argument("--vocab-sizes", default="512,1000,2000,4000",
                        help="vocabulary sizes to train on the whole text (comma-separated)")
    parser.add_argument("--naive-chars", type=int, default=100_000,
                        help="characters of the slice on which the naive recount is timed")
    parser.add_argument("--naive-vocab-size", type=int, default=512,
                        help="vocabulary size for the incremental-vs-recount comparison")
    args = parser.parse_args(argv)

    if args.data_path:
        text = Path(args.data_path).read_text(encoding="utf-8")
    else:
        from helpers.data import load_tiny_shakespeare
        text = load_tiny_shakespeare(data_dir=ROOT / "data")
    sizes = [int(s) for s in args.vocab_sizes.split(",")]
    data = text.encode("utf-8")
    words = pretokenize(text)
    print(f"# byte-level BPE benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs "
          f"(shared machine; times vary with its load)")
    print(f"text: {len(text):,} characters, {len(data):,} bytes, {len(words):,} words "
          f"({len(set(words)):,} distinct)")

    print("\n## 1. Training time")
    _, _ = timed(lambda: ByteLevelBPE().train(text[:10_000], 300))          # warm up imports
    trained = {}
    for size in sizes:
        tok, seconds = timed(lambda: ByteLevelBPE().train(text, size, special_tokens=(EOT,)))
        trained[size] = tok
        print(f"incremental, whole text, vocab_size {size:>5}: {seconds:6.2f} s "
              f"({len(tok.merges)} merges)")
    piece = text[:args.naive_chars]
    fast, t_fast = timed(lambda: ByteLevelBPE().train(piece, args.naive_vocab_size))
    slow, t_slow = timed(lambda: ByteLevelBPE().train(piece, args.naive_vocab_size, algorithm="recount"))
    same = fast.merges == slow.merges
    print(f"first {len(piece):,} characters, vocab_size {args.naive_vocab_size}: "
          f"incremental {t_fast:.2f} s, naive recount {t_slow:.2f} s, "
          f"speed-up {t_slow / t_fast:.1f}x, same merges: {same}")
    if not same:
        raise SystemExit("the incremental and the naive training disagree")

    print("\n## 2. Encoding throughput")
    tok = trained[max(sizes)]
    mb = len(data) / 1e6
    tok._cache.clear()                       # the word cache starts empty (training does not fill it)
    ids, t_cold = timed(lambda: tok.encode(text))
    _, t_warm = timed(lambda: tok.encode(text))
    streamed, t_stream = timed(lambda: list(tok.encode_iterable(io.StringIO(text))))
    assert streamed == ids and tok.decode(ids) == text
    print(f"vocab_size {tok.vocab_size}: encode {mb / t_cold:.2f} MB/s with an empty word cache "
          f"({t_cold:.2f} s for {mb:.2f} MB), {mb / t_warm:.2f} MB/s with a full one; "
          f"encode_iterable over the lines {mb / t_stream:.2f} MB/s")
    _, t_decode = timed(lambda: tok.decode(ids))
    print(f"decode: {mb / t_decode:.1f} MB/s")

    print("\n## 3. Compression (bytes per token), trained on the first 90%")
    split = int(len(text) * 0.9)
    train_text, held_out = text[:split], text[split:]
    train_bytes, held_bytes = len(train_text.encode("utf-8")), len(held_out.encode("utf-8"))
    print(f"{'vocab_size':>10} {'training part':>14} {'held-out part':>14}")
    for size in [256, *sizes]:
        tok = ByteLevelBPE().train(train_text, size)
        print(f"{tok.vocab_size:>10} {train_bytes / len(tok.encode(train_text)):>14.3f} "
              f"{held_bytes / len(tok.encode(held_out)):>14.3f}")


if __name__ == "__main__":
    main()
