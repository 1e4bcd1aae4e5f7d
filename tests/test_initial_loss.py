"""Every model the command line and the chapters build starts at a loss of ln V (within 0.1 nats).

An untrained model knows nothing, so it should give every token probability about 1/V: its
loss is then ln V. Chapter 11 derives the initialisation that makes it so (the logits
start with variance 0.01, helpers.model.output_std); before it, a tied embedding scaled by
sqrt(d_model) made the input token's own logit about 7 and the Shakespeare model started
at 9.2 nats instead of ln 65 = 4.17.
"""
import math

import pytest
import torch

from helpers.tasks import make_task
from helpers.train import build_parser, configs_from_args
from helpers.model import build_model
from helpers.trainer import Trainer

TASKS = {}

# Every value of every model option of `python -m helpers.train --help` appears at least once.
CLI_CONFIGS = [
    [], ["--norm", "post"], ["--norm", "none"], ["--positions", "sinusoidal"],
    ["--positions", "sinusoidal", "--scale-embeddings", "--norm", "post"], ["--positions", "rotary"],
    ["--untied"], ["--normalization", "rms_norm"], ["--ffn", "gelu"], ["--ffn", "swiglu"], ["--no-bias"],
    ["--qk-norm"], ["--kv-heads", "1"], ["--kernels", "math"], ["--layers", "8", "--d-model", "256", "--heads", "8"],
    ["--dropout", "0.1", "--attention-dropout", "0.1"],
]
# The models the chapters train (chapter 9's warm-up study, chapter 11's translator and language models).
CHAPTER_CONFIGS = [
    ("dates", ["--d-model", "64", "--heads", "4", "--layers", "6", "--norm", "post"]),
    ("dates", ["--d-model", "64", "--heads", "4", "--layers", "6", "--norm", "pre"]),
    ("dates", ["--d-model", "64", "--heads", "4", "--layers", "2", "--d-ff", "256", "--norm", "post",
               "--positions", "sinusoidal", "--scale-embeddings"]),
    ("markov", ["--d-model", "64", "--heads", "4", "--layers", "2", "--d-ff", "256", "--context", "32"]),
]


def initial_loss(task_name, options, seed):
    args = build_parser().parse_args(["--task", task_name, "--seed", str(seed), "--device", "cpu",
                                      "--eval-batches", "4", "--no-progress"] + options)
    key = (task_name, args.context)
    if key not in TASKS:
        TASKS[key] = make_task(task_name, context=args.context)
    task = TASKS[key]
    model_config, train_config = configs_from_args(args, task)
    torch.manual_seed(seed)
    model = build_model(model_config, pad_id=getattr(task, "pad_id", 0))
    return Trainer(model, task, train_config).evaluate(), math.log(task.vocab_size)


@pytest.mark.parametrize("task_name", ["shakespeare", "markov", "dates"])
@pytest.mark.parametrize("options", CLI_CONFIGS, ids=lambda o: " ".join(o) or "defaults")
def test_every_cli_model_starts_at_ln_v(task_name, options):
    for seed in (1337,):
        loss, ln_v = initial_loss(task_name, options, seed)
        assert abs(loss - ln_v) < 0.1, f"seed {seed}: initial loss {loss:.4f}, ln V = {ln_v:.4f}"


@pytest.mark.parametrize("task_name, options", CHAPTER_CONFIGS, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_every_chapter_model_starts_at_ln_v(task_name, options):
    for seed in (0, 1, 2):
        loss, ln_v = initial_loss(task_name, options, seed)
        assert abs(loss - ln_v) < 0.1, f"seed {seed}: initial loss {loss:.4f}, ln V = {ln_v:.4f}"
