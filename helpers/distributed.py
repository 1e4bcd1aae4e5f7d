"""Data parallelism, in the small: what averaging gradients across processes computes and costs.

Derived in chapter 11. With N processes (ranks), rank r computes the gradient g_r of the mean
loss over its own B/N examples. Because the batch's mean loss is the mean of the ranks' mean
losses (equal shard sizes), the gradient of the whole batch is (g_0 + ... + g_{N-1}) / N:
one all-reduce (a sum that leaves the result on every rank) and a division by N.

:func:`ring_all_reduce` plays the ring algorithm on arrays in one process and counts what each
rank sends: a reduce-scatter (N - 1 steps) and an all-gather (N - 1 steps), each step one
chunk of G / N numbers, so every rank sends 2 (N - 1) / N * G numbers, whatever N is.

:func:`data_parallel_gradients` does it for real: it starts ``world_size`` processes joined
by torch.distributed (the gloo backend, CPU), wraps a copy of the model in
DistributedDataParallel on each, lets each take one shard of a batch, and returns the
gradients DDP left on rank 0. Chapter 11 compares them with one process's gradient of the
whole batch; tests/test_distributed.py does the same for the Trainer under torchrun.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile

import numpy as np

from ._backend import as_int


def ring_all_reduce(arrays):
    """Sum ``arrays`` (one 1-D NumPy array of G numbers per rank) with the ring algorithm.

    Returns (results, sent): results[r] is rank r's copy of the sum (every rank ends with
    all of it) and sent[r] the number of array elements rank r sent to its neighbour r + 1.
    The array is cut into N chunks; in step s of the reduce-scatter rank r sends chunk
    (r - s) mod N, which its neighbour adds to its own; after N - 1 steps rank r holds the
    full sum of chunk (r + 1) mod N. The all-gather then passes the finished chunks round
    the ring for N - 1 more steps. Derived in chapter 11.
    """
    func = "ring_all_reduce"
    if not isinstance(arrays, (list, tuple)) or len(arrays) < 1:
        raise ValueError(f"{func}: arrays must be a non-empty list with one 1-D array per rank, "
                         f"got {type(arrays).__name__}")
    values = [np.asarray(a, dtype=np.float64) for a in arrays]
    size = values[0].shape
    if any(v.ndim != 1 or v.shape != size for v in values):
        raise ValueError(f"{func}: arrays must all be 1-D of one length, got shapes "
                         f"{[v.shape for v in values]}")
    n = len(values)
    chunks = [np.array_split(v.copy(), n) for v in values]           # chunks[r][c]: (about G/N,)
    sent = [0] * n
    for step in range(n - 1):                                        # reduce-scatter
        outgoing = [(r, (r - step) % n, chunks[r][(r - step) % n].copy()) for r in range(n)]
        for r, c, data in outgoing:
            chunks[(r + 1) % n][c] += data
            sent[r] += data.size
    for step in range(n - 1):                                        # all-gather
        outgoing = [(r, (r + 1 - step) % n, chunks[r][(r + 1 - step) % n].copy()) for r in range(n)]
        for r, c, data in outgoing:
            chunks[(r + 1) % n][c] = data
            sent[r] += data.size
    return [np.concatenate(c) for c in chunks], sent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_gradients(rank, world_size, port, path):
    """One process of :func:`data_parallel_gradients`."""
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel

    from .model import ModelConfig, build_model

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world_size)
    try:
        job = torch.load(os.path.join(path, "job.pt"), weights_only=False)
        model = build_model(ModelConfig.from_dict(job["config"]))
        model.load_state_dict(job["state"])
        ddp = DistributedDataParallel(model)
        shard = job["tokens"].shape[0] // world_size
        tokens = job["tokens"][rank * shard:(rank + 1) * shard]                 # (B/N, n)
        targets = job["targets"][rank * shard:(rank + 1) * shard]               # (B/N, n)
        logits = ddp(tokens)                                                    # (B/N, n, V)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())         # this rank's mean loss
        loss.backward()                                  # DDP all-reduces and divides by N here
        if rank == 0:
            torch.save({name: p.grad for name, p in model.named_parameters()},
                       os.path.join(path, "gradients.pt"))
    finally:
        dist.destroy_process_group()


def data_parallel_gradients(model, tokens, targets, world_size: int = 2) -> dict:
    """The gradients of the mean next-token loss after DistributedDataParallel's all-reduce.

    model: a :class:`helpers.model.DecoderOnlyLM`; tokens, targets: (B, n) integer
    tensors with B divisible by ``world_size``. Starts ``world_size`` CPU processes (gloo);
    rank r takes rows r B/N .. (r + 1) B/N - 1. Returns {parameter name: gradient} as
    rank 0 holds it after backward (every rank holds the same). The model itself is not
    changed. Takes a few seconds: each process is a new Python that imports torch. Derived in chapter 11.
    """
    import torch

    func = "data_parallel_gradients"
    world_size = as_int(func, "world_size", world_size, 1)
    if not isinstance(tokens, torch.Tensor) or not isinstance(targets, torch.Tensor) \
            or tokens.ndim != 2 or tokens.shape != targets.shape:
        raise ValueError(f"{func}: tokens and targets must be integer tensors of one shape (B, n), "
                         f"got {getattr(tokens, 'shape', type(tokens).__name__)} and "
                         f"{getattr(targets, 'shape', type(targets).__name__)}")
    if tokens.shape[0] % world_size:
        raise ValueError(f"{func}: the batch of {tokens.shape[0]} rows must split evenly over "
                         f"world_size={world_size} processes")
    with tempfile.TemporaryDirectory() as path:
        torch.save({"config": model.config.to_dict(), "state": model.state_dict(),
                    "tokens": tokens.cpu(), "targets": targets.cpu()}, os.path.join(path, "job.pt"))
        port = _free_port()
        # separate interpreters (python -m helpers.distributed), as torchrun starts them:
        # unlike multiprocessing's spawn, this works from a script, a notebook or a test alike
        ranks = [subprocess.Popen([sys.executable, "-m", "helpers.distributed", str(rank), str(world_size),
                                   str(port), path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"}, text=True)
                 for rank in range(world_size)]
        outputs = [rank.communicate(timeout=300)[0] for rank in ranks]
        for rank, (process, output) in enumerate(zip(ranks, outputs)):
            if process.returncode:
                raise RuntimeError(f"{func}: rank {rank} of {world_size} failed (exit status "
                                   f"{process.returncode}):\n{output[-2000:]}")
        return torch.load(os.path.join(path, "gradients.pt"))


if __name__ == "__main__":          # one rank: python -m helpers.distributed RANK WORLD PORT PATH
    _rank, _world, _port, _path = sys.argv[1:5]
    _rank_gradients(int(_rank), int(_world), int(_port), _path)
