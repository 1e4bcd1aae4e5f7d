"""helpers: the formulas of the Transformer, one implementation each, on NumPy and torch.

Every function takes NumPy arrays or torch tensors and returns the same kind: NumPy in,
NumPy out; torch in, torch out on the same device and dtype, differentiable by autograd.
Functions that make an array from nothing (``causal_mask``,
``sinusoidal_positional_encoding``) take ``backend="numpy"`` or ``backend="torch"``.

How one implementation serves both libraries. Each formula is written once against an
*array namespace* ``xp`` from the ``array-api-compat`` package, an implementation of the
Python array API standard: ``xp.matmul``, ``xp.exp``, ``xp.sum(x, axis=-1)`` mean the
same thing for NumPy and torch. We chose it over a dispatch layer of our own because the
standard already names every operation the course needs, its names read like NumPy,
and a learner who opens a module sees the formula once, not twice. The thin layer in
``_backend.py`` adds what the standard leaves out: it refuses mixed NumPy/torch
arguments with an error that names them.

Conventions (as in the seeds): row vectors, Q = X W^Q; masks are boolean with True
where attending is allowed (as in torch.nn.functional.scaled_dot_product_attention).

One module per idea:
    softmax.py       softmax
    attention.py     scaled_dot_product_attention, causal_mask, padding_mask
    multi_head.py    multi_head_attention
    positional.py    sinusoidal_positional_encoding, positional_rotation
    feed_forward.py  feed_forward
    layer_norm.py    layer_norm
    loss.py          cross_entropy, log_softmax
    schedule.py      noam_lr
    notebook.py      setup_chapter (seeds and print precision for the notebooks)

Built on those, for later chapters (import them by module):
    tokenizers.py           character and byte-pair tokenizers (chapter 1)
    layers.py               encoder and decoder layers and stacks as functions (chapter 7)
    backward.py             every backward pass written by hand (chapter 8)
    optim.py                SGD, momentum, Adam/AdamW steps (chapter 9)
    efficient_attention.py  sparse masks, online softmax, tiled attention (chapter 10)
    model.py, train.py, data.py, generate.py
                            the trainable Transformer and its CLI (chapter 11;
                            `python -m helpers.train --help`)
    widgets/                one explorer per chapter; exercises/ the exercise checks
"""
from .attention import (FullyMaskedRowWarning, causal_mask, padding_mask,
                        scaled_dot_product_attention)
from .feed_forward import feed_forward, relu
from .layer_norm import layer_norm
from .loss import cross_entropy, log_softmax
from .multi_head import multi_head_attention
from .notebook import setup_chapter
from .positional import frequencies, positional_rotation, sinusoidal_positional_encoding
from .schedule import noam_lr
from .softmax import softmax

__all__ = [
    "FullyMaskedRowWarning", "causal_mask", "cross_entropy", "feed_forward", "frequencies",
    "layer_norm", "log_softmax", "multi_head_attention", "noam_lr", "padding_mask",
    "positional_rotation", "relu", "scaled_dot_product_attention", "setup_chapter",
    "sinusoidal_positional_encoding", "softmax",
]
__version__ = "0.1.0"
