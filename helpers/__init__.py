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

One module per idea (the chapter that derives it in brackets):
    softmax.py       softmax (2)
    attention.py     scaled_dot_product_attention, causal_mask, padding_mask (2, 3)
    multi_head.py    multi_head_attention, split_heads, merge_heads (4; grouped-query and
                     rotary options, 12)
    positional.py    sinusoidal_positional_encoding, positional_rotation (5)
    rotary.py        apply_rotary, rotary_frequencies (12)
    feed_forward.py  feed_forward, relu (6)
    activations.py   silu, gelu, swiglu_feed_forward (12)
    layer_norm.py    layer_norm (6);  rms_norm.py  rms_norm (12)
    loss.py          cross_entropy, log_softmax (8)
    schedule.py      noam_lr, cosine_lr (9);  optim.py  clip_grad_norm and the optimisers (9)
    tokenizers.py    CharTokenizer, BytePairTokenizer (1);  byte_bpe.py  ByteLevelBPE (1)
    notebook.py      setup_chapter (seeds and print precision for the notebooks)

Built on those (import them by module):
    layers.py               encoder and decoder layers, stacks, parameter counts (7, 12)
    backward.py             every backward pass written by hand (8)
    efficient_attention.py  sparse masks, online softmax, tiled attention (10)
    model.py                the trainable Transformer: modules that call layers.py (11)
    tasks.py, trainer.py, checkpoint.py, data.py, generate.py
                            what it trains on, the training loop, checkpoints, data,
                            decoding (greedy, sampling, beam search) (11)
    train.py                the command line, `python -m helpers.train --help` (11)
    vision.py, contrastive.py, qa.py
                            patches and a vision Transformer, CLIP's contrastive loss and
                            encoders, extractive question answering (13)
    widgets/                one explorer per chapter; exercises/ the exercise checks
"""
from .activations import gelu, silu, swiglu_feed_forward
from .attention import (FullyMaskedRowWarning, causal_mask, padding_mask,
                        scaled_dot_product_attention)
from .byte_bpe import ByteLevelBPE
from .feed_forward import feed_forward, relu
from .layer_norm import layer_norm
from .loss import cross_entropy, log_softmax
from .multi_head import merge_heads, multi_head_attention, split_heads
from .notebook import setup_chapter
from .optim import clip_grad_norm
from .positional import frequencies, positional_rotation, sinusoidal_positional_encoding
from .rms_norm import rms_norm
from .rotary import apply_rotary, rotary_frequencies
from .schedule import cosine_lr, noam_lr
from .softmax import softmax

__all__ = [
    "ByteLevelBPE", "FullyMaskedRowWarning", "apply_rotary", "causal_mask", "clip_grad_norm",
    "cosine_lr", "cross_entropy", "feed_forward", "frequencies", "gelu", "layer_norm",
    "log_softmax", "merge_heads", "multi_head_attention", "noam_lr", "padding_mask",
    "positional_rotation", "relu", "rms_norm", "rotary_frequencies",
    "scaled_dot_product_attention", "setup_chapter", "silu", "sinusoidal_positional_encoding",
    "softmax", "split_heads", "swiglu_feed_forward",
]
__version__ = "0.1.0"
