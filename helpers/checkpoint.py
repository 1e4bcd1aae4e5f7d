"""Checkpoints of chapter 11's training loop: everything the next step depends on.

A checkpoint holds the weights, the optimizer's moments, the step and the clocks, the
sampler's generator and position (of every process, when training on several), every
random generator's state (dropout), the history, and the model's, the task's and the
training's configuration. Resuming from it continues the run so that an interrupted run
and an uninterrupted one end with the same weights (tests/test_train.py).

Files are written atomically (a temporary file, then a rename) and read with
``torch.load(weights_only=True)``: plain tensors and containers, no pickled code. Anything
that is not such a file, or lacks what resuming needs, raises :class:`CheckpointError`
with a one-line message.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from .model import ModelConfig, build_model

CHECKPOINT_FORMAT = "helpers.train checkpoint"
CHECKPOINT_VERSION = 2
# What every checkpoint holds, and the type of each entry.
REQUIRED = {"model_config": dict, "train_config": dict, "task": dict, "step": int, "elapsed": float,
            "wall": float, "best_val": float, "evals_since_best": int, "model": dict, "optimizer": dict,
            "ranks": list, "history": dict, "window": list}


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model/task it is loaded into."""


def rng_state() -> dict:
    """The state of every random generator a training step uses (torch, Python, NumPy, CUDA)."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                       int(np_state[3]), float(np_state[4])]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path, state: dict) -> Path:
    """Write ``state`` to ``path`` atomically (a temporary file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path, config_class=ModelConfig) -> dict:
    """Read a checkpoint written by the training loop (``torch.load(weights_only=True)``).

    Raises CheckpointError (a ValueError) with a clear message for a missing, corrupt,
    truncated or foreign file, and for one whose entries are missing or of the wrong type.
    ``config_class``: the class of the model's configuration (with ``from_dict``), which the
    stored one must be a valid instance of (chapter 13's models have their own).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # zip errors, unpickling errors, EOF: all mean "not readable"
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise CheckpointError(f"checkpoint {path} cannot be read: it is corrupt, truncated or not a "
                              f"checkpoint written by helpers.train ({type(err).__name__}: {first[:200]})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} is a readable torch file but not a checkpoint written by "
                              "helpers.train (no 'format' entry)")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} has version {state.get('version')}, this code reads "
                              f"version {CHECKPOINT_VERSION}")
    problems = []
    for key, kind in REQUIRED.items():
        if key not in state:
            problems.append(f"no {key!r}")
        elif not isinstance(state[key], (int, float) if kind is float else kind) or isinstance(state[key], bool):
            problems.append(f"{key!r} is a {type(state[key]).__name__}, not a {kind.__name__}")
    if problems:
        raise CheckpointError(f"checkpoint {path} is damaged: " + "; ".join(problems))
    try:
        config_class.from_dict(state["model_config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} holds an invalid model configuration: {err}") from None
    return state


def check_compatible(state: dict, model_config: ModelConfig, task_description: dict, path="checkpoint"):
    """Raise CheckpointError naming every model setting and task property that differs."""
    saved = state["model_config"]
    current = model_config.to_dict()
    diffs = [f"{k}: checkpoint {saved.get(k)!r}, now {current.get(k)!r}"
             for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]
    saved_task = state.get("task", {})
    for k in sorted(set(saved_task) | set(task_description)):
        if saved_task.get(k) != task_description.get(k):
            what = "(differs)" if k in ("vocab", "src_vocab") else f"checkpoint {saved_task.get(k)!r}, now {task_description.get(k)!r}"
            diffs.append(f"task {k}: {what}")
    if diffs:
        raise CheckpointError(f"{path} does not match this model/task: " + "; ".join(diffs))


def load_weights(model, state: dict, path="checkpoint"):
    """Copy the checkpoint's weights into ``model``; CheckpointError if they do not fit."""
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"{path}: its weights do not fit the model ({first[:300]})") from None


def model_from_checkpoint(path, task=None):
    """Rebuild the model stored in a checkpoint (for sampling or evaluation)."""
    state = load_checkpoint(path)
    config = ModelConfig.from_dict(state["model_config"])
    if task is not None:
        check_compatible(state, config, task.describe(), path)
    model = build_model(config, pad_id=getattr(task, "pad_id", 0))
    load_weights(model, state, path)
    return model, state
