"""The training stack: schedules, the loop (helpers.trainer), checkpoints, resume, the command line."""
import dataclasses
import math
import os
import signal
import subprocess
import sys
import zipfile

import pytest
import torch

import helpers
from helpers.checkpoint import CheckpointError, load_checkpoint
from helpers.data import TextCorpus, MarkovSource
from helpers.model import ModelConfig, build_model
from helpers.tasks import LanguageModelTask
from helpers.train import CLI_DEFAULTS, build_parser, main
from helpers.trainer import TrainConfig, Trainer, learning_rate, make_optimizer, pick_device, train


def tiny_task(context=16):
    source = MarkovSource()
    return LanguageModelTask(TextCorpus(source.sample(6000, seed=0), vocab=source.vocab), context, "markov")


def tiny_model(task, seed=0, **kw):
    torch.manual_seed(seed)
    values = dict(d_model=16, num_heads=2, num_layers=2, d_ff=32)
    values.update(kw)
    return build_model(task.model_config(**values))


def quiet(**kw):
    values = dict(steps=12, batch_size=4, lr=3e-3, warmup_steps=3, eval_every=4, eval_batches=2,
                  progress=False, device="cpu", log_every=2, checkpoint_every=0)
    values.update(kw)
    return TrainConfig(**values)


# ---------------------------------------------------------------- schedules and optimizer

def test_noam_schedule_is_chapter_9s_rescaled_to_peak_lr():
    config = quiet(schedule="noam", lr=1e-3, warmup_steps=4)
    for step in (1, 2, 4, 9, 100):
        expected = 1e-3 * min(step ** -0.5, step * 4 ** -1.5) / 4 ** -0.5
        assert abs(learning_rate(step, config, 64) - expected) < 1e-15
    assert learning_rate(4, config, 64) == pytest.approx(1e-3)


def test_cosine_schedule_is_chapter_9s_cosine_lr():
    config = quiet(steps=20, warmup_steps=4, lr=1e-3, min_lr=1e-4)
    assert learning_rate(2, config, 64) == pytest.approx(5e-4)           # linear warm-up
    assert learning_rate(4, config, 64) == pytest.approx(1e-3)           # the peak
    assert learning_rate(12, config, 64) == pytest.approx(5.5e-4)        # half-way: (lr + min_lr) / 2
    assert learning_rate(20, config, 64) == pytest.approx(1e-4)          # the end: min_lr
    for step in range(1, 21):
        assert learning_rate(step, config, 64) == helpers.schedule.cosine_lr(step, 1e-3, 4, 20, 1e-4)
    with pytest.raises(ValueError, match="steps count from 1"):
        learning_rate(0, config, 64)


def test_adamw_decays_matrices_only_and_device_choice():
    model = tiny_model(tiny_task())
    optimizer = make_optimizer(model, quiet(weight_decay=0.1))
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decayed["params"]) and all(p.dim() < 2 for p in plain["params"])
    assert pick_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="must be one of"):
        pick_device("tpu")


def test_training_lowers_the_loss_towards_the_entropy_rate():
    task = tiny_task()
    result = train(tiny_model(task), task, quiet(steps=60, eval_every=20))
    h = result.history
    assert h.val_loss[-1] < h.val_loss[0] and h.val_loss[-1] < math.log(16) - 0.5   # below uniform guessing
    assert h.val_loss[-1] > MarkovSource().entropy_rate - 0.05  # nothing beats the entropy rate
    assert h.wall[-1] >= h.seconds[-1] > 0 and h.eval_wall[-1] >= h.eval_seconds[-1]


def test_early_stopping_and_time_limit():
    task = tiny_task()
    result = train(tiny_model(task), task, quiet(steps=100, lr=1e-9, min_lr=0, early_stopping=2, eval_every=3))
    assert "early stopping" in result.history.stopped and result.step == 9  # evaluations at 3, 6, 9
    result = train(tiny_model(task), task, quiet(steps=10_000, max_seconds=0.2))
    assert "time limit" in result.history.stopped and result.step < 10_000


def test_schedule_by_time_plans_the_decay_to_end_at_the_time_limit():
    task = tiny_task()
    config = quiet(steps=100_000, max_seconds=10.0, schedule_by_time=True, warmup_steps=3, min_lr=1e-5)
    trainer = Trainer(tiny_model(task), task, config)
    assert trainer._planned_steps() is None                  # before any step: plan by steps
    trainer.step_count, trainer.wall = 50, 5.0               # half the time gone after 50 steps
    assert trainer._planned_steps() == 100                   # so about 100 steps fit in 10 s
    assert learning_rate(100, config, 16, trainer._planned_steps()) == pytest.approx(1e-5)
    assert learning_rate(100, config, 16) > 0.99 * config.lr   # planned over 100,000 steps: still at the peak


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_interrupted_and_resumed_run_ends_with_the_same_weights(tmp_path):
    task = tiny_task()
    model_kw = dict(dropout=0.2, attention_dropout=0.1, kernels="math")  # dropout uses the RNG
    config = quiet(checkpoint_path=str(tmp_path / "run.pt"))
    full = train(tiny_model(task, **model_kw), task, quiet())

    class CtrlC:  # a real SIGINT, as Ctrl-C in a terminal or "interrupt kernel" in Jupyter
        def on_step(self, step, trainer):
            if step == 5:
                os.kill(os.getpid(), signal.SIGINT)

    first = train(tiny_model(task, **model_kw), task, config, callbacks=[CtrlC()])
    assert first.interrupted and first.step == 5 and first.checkpoint.exists()
    torch.manual_seed(1234)  # a different global RNG state: the checkpoint must restore it
    second = train(tiny_model(task, seed=99, **model_kw), task, config, resume=config.checkpoint_path)
    assert second.step == 12 and not second.interrupted and second.history.stopped == ""
    for (name, a), b in zip(full.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert full.history.train_loss == second.history.train_loss
    assert full.history.val_loss == second.history.val_loss


def test_resume_from_a_periodic_checkpoint(tmp_path):
    task = tiny_task()
    full = train(tiny_model(task), task, quiet())
    path = tmp_path / "every4.pt"
    train(tiny_model(task), task, quiet(steps=6, checkpoint_every=4, checkpoint_path=str(path)))
    assert load_checkpoint(path)["step"] == 6  # the end of a run is saved too
    partial = tmp_path / "partial.pt"
    trainer = Trainer(tiny_model(task), task, quiet(checkpoint_path=str(partial)))
    for _ in range(5):
        trainer.step()
    trainer.save()
    resumed = train(tiny_model(task), task, quiet(checkpoint_path=str(partial)), resume=partial)
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


# ---------------------------------------------------------------- bad checkpoints

@pytest.fixture(scope="module")
def saved_checkpoint(tmp_path_factory):
    task = tiny_task()
    path = tmp_path_factory.mktemp("ckpt") / "good.pt"
    train(tiny_model(task), task, quiet(steps=2, checkpoint_path=str(path)))
    return path


def test_checkpoint_is_plain_tensors_and_containers(saved_checkpoint):
    state = torch.load(saved_checkpoint, weights_only=True)  # no pickled code needed
    assert state["step"] == 2 and "model" in state and "optimizer" in state and "rng" in state["ranks"][0]


def test_truncated_or_garbage_checkpoint_gives_a_clear_error(saved_checkpoint, tmp_path):
    data = saved_checkpoint.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint" * 10)
    for path in (truncated, garbage):
        with pytest.raises(CheckpointError, match="cannot be read: it is corrupt, truncated or not a checkpoint"):
            load_checkpoint(path)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.ones(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a checkpoint written by helpers.train"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    assert zipfile.is_zipfile(saved_checkpoint)


@pytest.mark.parametrize("damage, message", [
    (lambda s: s.pop("model"), "damaged: no 'model'"),
    (lambda s: s.update(step="six"), "'step' is a str, not a int"),
    (lambda s: s.update(model={"embed.weight": torch.ones(2)}), "weights do not fit the model"),
    (lambda s: s["ranks"][0].pop("sampler"), "damaged: its optimizer, sampler or random state"),
    (lambda s: s["model_config"].update(d_model=-3), "invalid model configuration"),
])
def test_checkpoint_with_missing_or_garbage_entries_is_named(saved_checkpoint, tmp_path, damage, message):
    state = torch.load(saved_checkpoint, weights_only=True)
    damage(state)
    path = tmp_path / "damaged.pt"
    torch.save(state, path)
    task = tiny_task()
    with pytest.raises(CheckpointError, match=message):
        train(tiny_model(task), task, quiet(), resume=path)


def test_mismatched_checkpoint_names_what_differs(saved_checkpoint):
    task = tiny_task()
    with pytest.raises(CheckpointError, match="d_model: checkpoint 16, now 32"):
        train(tiny_model(task, d_model=32), task, quiet(), resume=saved_checkpoint)
    other = tiny_task(context=8)
    with pytest.raises(CheckpointError, match="task context: checkpoint 16, now 8"):
        train(tiny_model(other), other, quiet(), resume=saved_checkpoint)


# ---------------------------------------------------------------- the command line

def test_the_parser_is_built_from_the_configs_defaults():
    args = build_parser().parse_args([])
    for f in dataclasses.fields(TrainConfig):
        if hasattr(args, f.name):
            assert getattr(args, f.name) == f.default, f.name
    for f in dataclasses.fields(ModelConfig):
        if hasattr(args, f.name):
            assert getattr(args, f.name) == f.default, f.name
    assert args.context == CLI_DEFAULTS["context"] and args.task == CLI_DEFAULTS["task"]
    norm_choices = next(a.choices for a in build_parser()._actions if a.dest == "norm")
    assert tuple(norm_choices) == helpers.layers.NORMS


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    parser = build_parser()
    for action in parser._actions:
        for option in action.option_strings:
            assert option in text
        assert action.help, f"{action.option_strings} has no help"
    assert "CUDA, then MPS, then CPU" in text


@pytest.fixture
def markov_cli(tmp_path):
    text = tmp_path / "markov.txt"
    text.write_text(MarkovSource().sample(5000, seed=2))
    ckpt = tmp_path / "cli.pt"
    common = ["--task", "markov", "--data-path", str(text), "--context", "16", "--batch-size", "4",
              "--layers", "1", "--d-model", "16", "--d-ff", "32", "--heads", "2", "--eval-every", "3",
              "--eval-batches", "1", "--checkpoint", str(ckpt), "--no-progress", "--device", "cpu",
              "--sample", "20", "--warmup", "2"]
    return common, ckpt, tmp_path


def test_cli_trains_saves_resumes_and_reports_errors(markov_cli, capsys):
    common, ckpt, _ = markov_cli
    assert main(common + ["--steps", "4", "--schedule", "constant"]) == 0
    assert load_checkpoint(ckpt)["step"] == 4
    assert main(common + ["--steps", "6", "--schedule", "constant", "--resume"]) == 0   # constant: may extend
    assert load_checkpoint(ckpt)["step"] == 6
    out = capsys.readouterr().out
    assert "step 6: validation loss" in out and "resumed at step 4" in out
    assert main(common + ["--steps", "8", "--resume", "--d-model", "32"]) == 2
    assert "--d-model 32 (the checkpoint's run has 16)" in capsys.readouterr().err


def test_cli_resume_refuses_options_that_change_the_result(markov_cli, capsys):
    common, ckpt, _ = markov_cli
    assert main(common + ["--steps", "4"]) == 0                       # cosine schedule
    capsys.readouterr()
    assert main(common + ["--steps", "8", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "--steps 8 (the checkpoint's run has 4)" in err and "cosine schedule decays over the total" in err
    assert main(common + ["--lr", "0.01", "--resume"]) == 2
    assert "--lr 0.01 (the checkpoint's run has 0.002)" in capsys.readouterr().err
    assert main(common + ["--resume", "--eval-every", "2"]) == 0      # evaluation only: allowed
    assert main(common + ["--steps", "4"]) == 2                       # a new run would overwrite it
    assert "exists: pass --resume" in capsys.readouterr().err
    assert main(common + ["--steps", "4", "--overwrite"]) == 0


BAD_OPTIONS = [
    (["--beta1", "1.5"], "beta1 must be a number in [0, 1)"),
    (["--device", "tpu"], "device must be one of"),
    (["--min-lr", "0.1"], "min_lr must be a number in [0, lr"),
    (["--early-stopping", "-1"], "early_stopping must be an integer >= 0"),
    (["--max-seconds", "-5"], "max_seconds must be a number >= 0"),
    (["--grad-clip", "-1"], "grad_clip must be a number >= 0"),
    (["--checkpoint-every", "-2"], "checkpoint_every must be an integer >= 0"),
    (["--weight-decay", "-0.1"], "weight_decay must be a number >= 0"),
    (["--lr", "nan"], "lr must be a number > 0"),
    (["--temperature", "-1"], "--temperature must be >= 0"),
    (["--top-k", "1000"], "--top-k must lie in 0..16"),
    (["--prompt", "abcXYZ"], "--prompt holds characters the markov vocabulary lacks: ['X', 'Y', 'Z']"),
    (["--context", "2000000"], "fewer than context + 1 = 2000001"),
    (["--heads", "3"], "num_heads=3 must divide d_model=16"),
    (["--kv-heads", "3"], "num_kv_heads=3 must divide num_heads=2"),
    (["--dropout", "1.5"], "dropout must lie in [0, 1)"),
    (["--warmup", "-5"], "warmup_steps must be an integer >= 0"),
    (["--beam", "0"], "--beam must be >= 1"),
]
if not torch.cuda.is_available():
    BAD_OPTIONS.append((["--device", "cuda"], "this machine has no CUDA GPU"))


@pytest.mark.parametrize("extra, message", BAD_OPTIONS, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_cli_bad_options_give_one_line_and_status_2_before_training(markov_cli, capsys, extra, message):
    common, ckpt, _ = markov_cli
    assert main(common + ["--steps", "4"] + extra) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert not ckpt.exists()                                         # nothing trained, nothing saved


def test_cli_bad_files_give_one_line_and_status_2(markov_cli, capsys):
    common, ckpt, tmp = markov_cli
    latin1 = tmp / "latin1.txt"
    latin1.write_bytes("caf\xe9 ".encode("latin-1") * 100)
    assert main(common + ["--data-path", str(latin1)]) == 2
    assert f"--data-path {latin1} is not UTF-8 text" in capsys.readouterr().err
    assert main(common + ["--data-path", str(tmp / "missing.txt")]) == 2
    assert "is not a file" in capsys.readouterr().err
    tampered = tmp / "shakespeare"
    tampered.mkdir()
    (tampered / "tinyshakespeare.txt").write_text("not the play")
    assert main(["--task", "shakespeare", "--data-dir", str(tampered), "--steps", "2", "--no-progress"]) == 2
    assert "exists but its sha256 is" in capsys.readouterr().err
    ckpt.write_bytes(b"garbage")
    assert main(common + ["--resume"]) == 2
    assert "cannot be read" in capsys.readouterr().err


def test_ctrl_c_exits_with_status_130_and_the_run_resumes(markov_cli):
    common, ckpt, tmp = markov_cli
    script = ("import os, signal, sys\n"
              "from helpers import trainer, train\n"
              "step = trainer.Trainer.step\n"
              "def stepping(self):\n"
              "    loss = step(self)\n"
              "    if self.step_count == 3: os.kill(os.getpid(), signal.SIGINT)\n"
              "    return loss\n"
              "trainer.Trainer.step = stepping\n"
              f"sys.exit(train.main({common + ['--steps', '6']!r}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 130, done.stderr
    assert "interrupted at step 3: checkpoint saved" in done.stderr
    assert load_checkpoint(ckpt)["step"] == 3
    assert main(common + ["--steps", "6", "--resume"]) == 0


def test_cli_byte_level_bpe_language_model(markov_cli, capsys):
    common, ckpt, _ = markov_cli
    assert main(common + ["--steps", "3", "--tokenizer", "bpe", "--bpe-vocab-size", "300",
                          "--prompt", "Ünïcode"]) == 0          # bytes: any prompt can be encoded
    state = load_checkpoint(ckpt)
    assert state["model_config"]["vocab_size"] == 300
    assert len(state["task"]["vocab"]) == 300 and state["task"]["vocab"][97] == "61"   # byte 'a'
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("Ünïcode")
    assert main(common + ["--steps", "3", "--tokenizer", "bpe", "--task", "dates"]) == 2
    assert "--tokenizer bpe is for the language-model tasks" in capsys.readouterr().err
