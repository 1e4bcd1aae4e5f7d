"""helpers.train: schedules, the loop, checkpoints, resume, the command line."""
import math
import os
import signal
import zipfile

import pytest
import torch

import helpers
from helpers.data import CharCorpus, MarkovSource
from helpers.model import build_model
from helpers.train import (CheckpointError, LanguageModelTask, TrainConfig, build_parser, learning_rate,
                           load_checkpoint, main, make_optimizer, pick_device, train)


def tiny_task(context=16):
    source = MarkovSource()
    return LanguageModelTask(CharCorpus(source.sample(6000, seed=0), vocab=source.vocab), context, "markov")


def tiny_model(task, seed=0, **kw):
    torch.manual_seed(seed)
    values = dict(d_model=16, num_heads=2, num_layers=2, d_ff=32)
    values.update(kw)
    return build_model(task.model_config(**values))


def quiet(**kw):
    values = dict(steps=12, batch_size=4, lr=3e-3, warmup_steps=3, eval_every=4, eval_batches=2,
                  progress=False, device="cpu", log_every=2)
    values.update(kw)
    return TrainConfig(**values)


# ---------------------------------------------------------------- schedules and optimizer

def test_noam_schedule_is_chapter_9s_rescaled_to_peak_lr():
    config = TrainConfig(schedule="noam", lr=1e-3, warmup_steps=50)
    values = [learning_rate(s, config, d_model=64) for s in range(1, 400)]
    assert max(values) == pytest.approx(1e-3) and values.index(max(values)) + 1 == 50
    # the paper's formula by hand: d^-0.5 min(s^-0.5, s w^-1.5), divided by its value at s = w
    for s in (1, 10, 50, 51, 399):
        expected = 64 ** -0.5 * min(s ** -0.5, s * 50 ** -1.5) / (64 ** -0.5 * 50 ** -0.5) * 1e-3
        assert learning_rate(s, config, 64) == pytest.approx(expected, rel=1e-12)
        assert learning_rate(s, config, 64) == pytest.approx(1e-3 * helpers.noam_lr(s, 64, 50) / helpers.noam_lr(50, 64, 50))


def test_cosine_schedule_warms_up_linearly_and_ends_at_min_lr():
    config = TrainConfig(schedule="cosine", lr=2e-3, min_lr=1e-4, warmup_steps=10, steps=110)
    assert learning_rate(1, config, 8) == pytest.approx(2e-4)
    assert learning_rate(10, config, 8) == pytest.approx(2e-3)
    assert learning_rate(60, config, 8) == pytest.approx((2e-3 + 1e-4) / 2)  # half way: cos(pi/2) = 0
    assert learning_rate(110, config, 8) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="steps count from 1"):
        learning_rate(0, config, 8)


def test_adamw_decays_matrices_only_and_device_choice():
    model = tiny_model(tiny_task())
    groups = make_optimizer(model, TrainConfig(weight_decay=0.1)).param_groups
    assert groups[0]["weight_decay"] == 0.1 and all(p.dim() == 2 for p in groups[0]["params"])
    assert groups[1]["weight_decay"] == 0.0 and all(p.dim() == 1 for p in groups[1]["params"])
    assert pick_device("cpu").type == "cpu"
    auto = pick_device("auto").type
    assert auto == ("cuda" if torch.cuda.is_available() else auto)
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert auto == "cpu"
    with pytest.raises(ValueError, match="device must be"):
        pick_device("tpu")


# ---------------------------------------------------------------- the loop

def test_training_lowers_the_loss_towards_the_entropy_rate():
    task = tiny_task()
    model = tiny_model(task)
    result = train(model, task, quiet(steps=150, eval_every=50, eval_batches=4, batch_size=16))
    h = result.history
    assert h.val_loss[0] < math.log(16)
    assert h.val_loss[-1] < h.val_loss[0] - 0.1 and h.val_loss[-1] < 1.35
    assert h.val_loss[-1] > MarkovSource().entropy_rate - 0.1  # nobody beats the source by much
    assert h.step[-1] == 150 and h.tokens[-1] == 150 * 16 * 16 and result.tokens_per_second > 0


def test_early_stopping_and_time_limit():
    task = tiny_task()
    result = train(tiny_model(task), task, quiet(steps=100, lr=1e-9, min_lr=0, early_stopping=2, eval_every=3))
    assert "early stopping" in result.history.stopped and result.step == 9  # evaluations at 3, 6, 9
    result = train(tiny_model(task), task, quiet(steps=10_000, max_seconds=0.2))
    assert "time limit" in result.history.stopped and result.step < 10_000


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_interrupted_and_resumed_run_ends_with_the_same_weights(tmp_path):
    task = tiny_task()
    model_kw = dict(dropout=0.2, attention_dropout=0.1, attention="math")  # dropout uses the RNG
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
    state = load_checkpoint(path)
    assert state["step"] == 6  # the end of a run is saved too
    partial = tmp_path / "partial.pt"
    train(tiny_model(task), task, quiet(steps=12, checkpoint_every=4, checkpoint_path=str(partial),
                                        max_seconds=1e-9))
    assert load_checkpoint(partial)["step"] == 1
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
    assert state["step"] == 2 and "model" in state and "optimizer" in state and "rng" in state


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


def test_mismatched_checkpoint_names_what_differs(saved_checkpoint):
    task = tiny_task()
    with pytest.raises(CheckpointError, match="d_model: checkpoint 16, now 32"):
        train(tiny_model(task, d_model=32), task, quiet(), resume=saved_checkpoint)
    other = tiny_task(context=8)
    with pytest.raises(CheckpointError, match="task context: checkpoint 16, now 8"):
        train(tiny_model(other), other, quiet(), resume=saved_checkpoint)


# ---------------------------------------------------------------- the command line

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


def test_cli_trains_saves_resumes_and_reports_errors(tmp_path, capsys):
    text = tmp_path / "markov.txt"
    text.write_text(MarkovSource().sample(5000, seed=2))
    ckpt = tmp_path / "cli.pt"
    common = ["--task", "markov", "--data-path", str(text), "--context", "16", "--batch-size", "4",
              "--layers", "1", "--d-model", "16", "--d-ff", "32", "--heads", "2", "--eval-every", "3",
              "--eval-batches", "1", "--checkpoint", str(ckpt), "--no-progress", "--device", "cpu",
              "--sample", "20", "--warmup", "2"]
    assert main(common + ["--steps", "4"]) == 0
    assert load_checkpoint(ckpt)["step"] == 4
    assert main(common + ["--steps", "6", "--resume"]) == 0
    assert load_checkpoint(ckpt)["step"] == 6
    out = capsys.readouterr().out
    assert "step 6: validation loss" in out
    assert main(common + ["--steps", "8", "--resume", "--d-model", "32"]) == 2
    assert "d_model: checkpoint 16, now 32" in capsys.readouterr().err
