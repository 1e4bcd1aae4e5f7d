"""Training on several processes (torchrun, DistributedDataParallel over gloo on CPU).

Two processes on this machine stand for two GPUs or two machines: the arithmetic is the same.
Chapter 11 derives why averaging the ranks' gradients of their mean losses gives the
gradient of the large batch; here it is checked to float tolerance, and a two-process run
that is interrupted and resumed must end with the same weights as one that is not.
"""
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import helpers
from helpers.checkpoint import load_checkpoint
from helpers.data import MarkovSource, TextCorpus
from helpers.model import build_model
from helpers.tasks import LanguageModelTask
from helpers.trainer import TrainConfig, Trainer

WORLD = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_task():
    source = MarkovSource()
    return LanguageModelTask(TextCorpus(source.sample(6000, seed=0), vocab=source.vocab), 16, "markov")


def tiny_model(task, dropout=0.1):
    torch.manual_seed(0)
    return build_model(task.model_config(d_model=16, num_heads=2, num_layers=2, d_ff=32, dropout=dropout,
                                         attention_dropout=dropout, kernels="math"))


def config(path=None, **kw):
    values = dict(steps=8, batch_size=4, lr=3e-3, warmup_steps=2, eval_every=4, eval_batches=2, progress=False,
                  device="cpu", log_every=2, checkpoint_every=0, checkpoint_path=path, grad_clip=0.0, seed=7)
    values.update(kw)
    return TrainConfig(**values)


def run(rank, port, jobs, out_dir):
    """One process: join the group, do each of ``jobs``, write what the parent checks to out_dir."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        for job in jobs:
            run_job(rank, job, out_dir)
    finally:
        dist.destroy_process_group()


def run_job(rank, job, out_dir):
    task = tiny_task()
    if job == "gradient":
        trainer = Trainer(tiny_model(task, dropout=0.0), task, config(steps=1))
        trainer.step()
        torch.save({name: p.grad for name, p in trainer.model.named_parameters()},
                   os.path.join(out_dir, f"grad{rank}.pt"))
    elif job == "full":
        result = Trainer(tiny_model(task), task, config()).fit()
        torch.save(result.model.state_dict(), os.path.join(out_dir, f"full{rank}.pt"))
    elif job == "interrupted":
        trainer = Trainer(tiny_model(task), task, config(os.path.join(out_dir, "run.pt")))
        for _ in range(3):
            trainer.step()
        trainer.save()
    elif job == "resumed":
        trainer = Trainer(tiny_model(task), task, config(os.path.join(out_dir, "resumed.pt")))
        trainer.resume(os.path.join(out_dir, "run.pt"))
        result = trainer.fit()
        torch.save(result.model.state_dict(), os.path.join(out_dir, f"resumed{rank}.pt"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two groups of two processes: the first computes a gradient, trains 8 steps, and trains 3
    steps and saves (an interrupted run); the second, fresh processes, resumes that run."""
    out_dir = tmp_path_factory.mktemp("ddp")
    for jobs in (["gradient", "full", "interrupted"], ["resumed"]):
        mp.start_processes(run, args=(free_port(), jobs, str(out_dir)), nprocs=WORLD, start_method="spawn")
    return out_dir


def test_the_averaged_gradient_is_the_gradient_of_the_concatenated_batch(runs):
    tmp_path = runs
    grads = [torch.load(tmp_path / f"grad{r}.pt") for r in range(WORLD)]
    for name in grads[0]:                              # after the all-reduce every rank holds the same gradient
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=0, atol=0)
    task = tiny_task()                                 # one process, the two ranks' batches as one
    batches = [next(task.sampler(4, seed=7 + r)) for r in range(WORLD)]
    big = tuple(torch.cat(parts) for parts in zip(*batches))
    single = tiny_model(task, dropout=0.0)             # the same initial weights as every rank
    loss = task.loss(single, big)                      # the mean over both ranks' tokens
    reference = dict(zip([n for n, _ in single.named_parameters()], torch.autograd.grad(loss, list(single.parameters()))))
    for name, g in grads[0].items():
        torch.testing.assert_close(g, reference[name], rtol=1e-5, atol=1e-7, msg=name)


def test_an_interrupted_two_process_run_resumes_to_the_same_weights(runs):
    tmp_path = runs
    state = load_checkpoint(tmp_path / "run.pt")
    assert state["step"] == 3 and len(state["ranks"]) == WORLD
    assert not torch.equal(state["ranks"][0]["rng"]["torch"], state["ranks"][1]["rng"]["torch"])
    full, resumed = torch.load(tmp_path / "full0.pt"), torch.load(tmp_path / "resumed0.pt")
    for name in full:
        assert torch.equal(full[name], resumed[name]), name
    other = torch.load(tmp_path / "resumed1.pt")
    for name in full:
        assert torch.equal(resumed[name], other[name]), name     # the ranks agree


def test_torchrun_trains_with_the_command_line(tmp_path):
    text = tmp_path / "markov.txt"
    text.write_text(MarkovSource().sample(5000, seed=2))
    ckpt = tmp_path / "ddp.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}",
           "-m", "helpers.train", "--task", "markov", "--data-path", str(text), "--context", "16",
           "--batch-size", "4", "--layers", "1", "--d-model", "16", "--d-ff", "32", "--heads", "2",
           "--eval-every", "3", "--eval-batches", "2", "--checkpoint", str(ckpt), "--no-progress",
           "--device", "cpu", "--sample", "10", "--warmup", "2", "--steps", "4"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "x 2 processes" in done.stdout and done.stdout.count("step 4: validation loss") == 1
    state = load_checkpoint(ckpt)
    assert state["step"] == 4 and len(state["ranks"]) == WORLD
