"""Images as sequences of patches, and a small Vision Transformer, derived in chapter 13.

Dosovitskiy et al. (*An Image is Worth 16x16 Words*, ICLR 2021) feed an image to the
encoder of chapter 7 unchanged. Only the input is new:

1. cut the image (C, H, W) into N = (H/p)(W/p) square patches of p x p pixels, in reading
   order, and flatten each into a row of p*p*C numbers (:func:`patchify`);
2. map every row to d_model numbers with ONE matrix product, x_patch W_E + b_E
   (:func:`patch_embedding`), which is a convolution with kernel size = stride = p
   (:func:`conv_weight_as_matrix` turns torch.nn.Conv2d's weight into W_E);
3. put a learned [CLS] vector in front, add a position vector to every token (learned, or
   the 2-D sinusoids of :func:`sinusoidal_positional_encoding_2d`);
4. run chapter 7's encoder stack (pre-norm, the ViT convention) and classify from the
   [CLS] token's final vector.

The formulas (:func:`patchify`, :func:`unpatchify`, :func:`patch_embedding`,
:func:`conv_weight_as_matrix`, :func:`sinusoidal_positional_encoding_2d`) are written once
against the array API and run on NumPy and torch. :class:`VisionTransformer` is a thin torch
shell in the style of :mod:`helpers.model`: it holds parameters (chapter 7's names, through
:class:`helpers.model.LayerParameters`) and its forward pass calls
:func:`helpers.layers.encoder`. :class:`ImageClassificationTask` lets chapter 11's
:class:`helpers.trainer.Trainer` train it. :func:`load_digits_split` gives the data:
scikit-learn's copy of the UCI optical digits (E. Alpaydin and C. Kaynak, 1998), 1,797
images of 8 x 8 pixels, split into train, validation and test sets by a fixed seed.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

import helpers

from . import layers as L
from ._backend import backend_namespace, namespace, require_float, shape
from .data import PairBatches
from .model import LayerParameters, NormParameters, Positions, StoredConfig, initial_value, output_std
from .positional import sinusoidal_positional_encoding

# --------------------------------------------------------------------------- the formulas


def _check_patch_size(func, p):
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1:
        raise ValueError(f"{func}: p (the patch size) must be a positive integer, got {p!r}")
    return int(p)


def patchify(images, p: int):
    """Cut images into p x p patches, each flattened into one row (the ViT paper's x_p).

    Shapes: images (B, H, W) (one channel) or (B, C, H, W) -> (B, N, p*p*C) with
    N = (H/p)(W/p). Patches are numbered in reading order (row of patches by row of
    patches, left to right); patch k = (r, c) with r = k // (W/p), c = k % (W/p) covers
    pixels [r p, (r+1) p) x [c p, (c+1) p). Inside a row the numbers run over the patch's
    pixels in reading order and, for each pixel, over its C channels: index
    (i p + j) C + ch holds pixel (i, j) of the patch, channel ch. Derived in chapter 13.
    """
    func = "patchify"
    xp = namespace(func, images=images)
    p = _check_patch_size(func, p)
    if len(images.shape) == 3:
        images = images[:, None]                                          # (B, 1, H, W)
    if len(images.shape) != 4:
        raise ValueError(f"{func}: images must have shape (B, H, W) or (B, C, H, W), got {shape(images)}")
    B, C, H, W = shape(images)
    if H % p or W % p:
        raise ValueError(f"{func}: images of {H} x {W} pixels cannot be cut into patches of "
                         f"p = {p}: p must divide both the height and the width")
    x = xp.reshape(images, (B, C, H // p, p, W // p, p))                 # (B, C, rows, i, cols, j)
    x = xp.permute_dims(x, (0, 2, 4, 3, 5, 1))                            # (B, rows, cols, i, j, C)
    return xp.reshape(x, (B, (H // p) * (W // p), p * p * C))             # (B, N, p*p*C)


def unpatchify(patches, p: int, height: int, width: int):
    """The inverse of :func:`patchify`: (B, N, p*p*C) -> (B, C, height, width)."""
    func = "unpatchify"
    xp = namespace(func, patches=patches)
    p = _check_patch_size(func, p)
    if len(patches.shape) != 3:
        raise ValueError(f"{func}: patches must have shape (B, N, p*p*C), got {shape(patches)}")
    B, N, D = shape(patches)
    if height % p or width % p or N != (height // p) * (width // p) or D % (p * p):
        raise ValueError(f"{func}: patches of shape {shape(patches)} do not tile a {height} x {width} "
                         f"image with p = {p} (need N = {(height // p) * (width // p)} patches "
                         f"of p*p*C numbers, and p dividing both sides)")
    C = D // (p * p)
    x = xp.reshape(patches, (B, height // p, width // p, p, p, C))        # (B, rows, cols, i, j, C)
    x = xp.permute_dims(x, (0, 5, 1, 3, 2, 4))                            # (B, C, rows, i, cols, j)
    return xp.reshape(x, (B, C, height, width))                           # (B, C, H, W)


def patch_embedding(images, w, b, p: int):
    """The patch embedding: patchify, then one matrix product, patches W_E + b_E.

    Shapes: images (B, H, W) or (B, C, H, W); w (p*p*C, d_model); b (d_model,) or None.
    Returns (B, N, d_model). Equal to torch.nn.Conv2d(C, d_model, kernel_size=p, stride=p)
    with w = :func:`conv_weight_as_matrix` (conv.weight), flattened to (B, N, d_model).
    Derived in chapter 13.
    """
    func = "patch_embedding"
    xp = namespace(func, images=images, w=w, b=b)
    for name, a in (("images", images), ("w", w), ("b", b)):
        if a is not None:
            require_float(func, name, a, xp)
    patches = patchify(images, p)                                          # (B, N, p*p*C)
    if len(w.shape) != 2 or w.shape[0] != patches.shape[-1]:
        raise ValueError(f"{func}: w must have shape (p*p*C, d_model) = ({patches.shape[-1]}, d_model) "
                         f"for these images and p = {p}, got {shape(w)}")
    if b is not None and shape(b) != (w.shape[1],):
        raise ValueError(f"{func}: b must have shape ({w.shape[1]},), got {shape(b)}")
    out = patches @ w                                                      # (B, N, d_model)
    return out if b is None else out + b


def conv_weight_as_matrix(weight):
    """torch.nn.Conv2d's weight (d_out, C, p, p) as the matrix W_E (p*p*C, d_out) of
    :func:`patch_embedding`: W_E[(i p + j) C + ch, o] = weight[o, ch, i, j]."""
    func = "conv_weight_as_matrix"
    xp = namespace(func, weight=weight)
    if len(weight.shape) != 4 or weight.shape[2] != weight.shape[3]:
        raise ValueError(f"{func}: weight must have shape (d_out, C, p, p), got {shape(weight)}")
    d_out, C, p, _ = shape(weight)
    w = xp.permute_dims(weight, (2, 3, 1, 0))                             # (i, j, C, d_out)
    return xp.reshape(w, (p * p * C, d_out))                              # (p*p*C, d_out)


def sinusoidal_positional_encoding_2d(rows: int, cols: int, d_model: int, backend: str = "numpy",
                                      dtype=None, device=None):
    """2-D sinusoidal positions for a grid of rows x cols patches, shape (rows*cols, d_model).

    Chapter 5's table with d_model/2 features for the row and d_model/2 for the column:
    PE2[(r, c)] = [PE_{d/2}(r), PE_{d/2}(c)], patches in reading order (k = r cols + c, as
    :func:`patchify` numbers them). d_model must be a multiple of 4 (each half is made of
    sine/cosine pairs). Then PE2(r, c) . PE2(r', c') = sum_i cos((r - r') w_i) +
    sum_i cos((c - c') w_i): a function of the two offsets only. Derived in chapter 13.
    """
    func = "sinusoidal_positional_encoding_2d"
    for name, v in (("rows", rows), ("cols", cols), ("d_model", d_model)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{func}: {name} must be a positive integer, got {v!r}")
    if d_model % 4:
        raise ValueError(f"{func}: d_model must be a multiple of 4 (half for the row, half for the "
                         f"column, each in sine/cosine pairs), got {d_model}")
    xp = backend_namespace(func, backend)
    half = d_model // 2
    pe_rows = sinusoidal_positional_encoding(rows, half, backend, dtype, device)     # (rows, d/2)
    pe_cols = sinusoidal_positional_encoding(cols, half, backend, dtype, device)     # (cols, d/2)
    r = xp.reshape(xp.broadcast_to(pe_rows[:, None, :], (rows, cols, half)), (rows * cols, half))
    c = xp.reshape(xp.broadcast_to(pe_cols[None, :, :], (rows, cols, half)), (rows * cols, half))
    return xp.concat([r, c], axis=-1)                                      # (rows*cols, d_model)


# --------------------------------------------------------------------------- the data

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPLIT_SIZES = {"val": 0.1, "test": 0.2}    # fractions of each digit's images; the rest trains


def load_digits_split(seed: int = 0) -> dict:
    """scikit-learn's 1,797 handwritten digits (8 x 8 pixels, values 0..16), split per digit
    into train (70%), val (10%) and test (20%) by a seeded permutation.

    Returns {split: (images float32 tensor (n, 8, 8) scaled to [0, 1], labels int64 (n,))}.
    The data ship with scikit-learn (no download). Source: the UCI optical digits
    (E. Alpaydin and C. Kaynak, 1998).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0                      # (1797, 8, 8)
    labels = digits.target.astype(np.int64)                                # (1797,)
    rng = np.random.default_rng(seed)
    parts = {"train": [], "val": [], "test": []}
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        n_val = round(len(idx) * SPLIT_SIZES["val"])
        n_test = round(len(idx) * SPLIT_SIZES["test"])
        parts["val"].append(idx[:n_val])
        parts["test"].append(idx[n_val:n_val + n_test])
        parts["train"].append(idx[n_val + n_test:])
    out = {}
    for split, chunks in parts.items():
        idx = np.sort(np.concatenate(chunks))
        out[split] = (torch.from_numpy(images[idx]), torch.from_numpy(labels[idx]))
    return out


class ImageClassificationTask:
    """Classify images: what :class:`helpers.trainer.Trainer` needs (chapter 11's task interface).

    ``splits``: {"train": (images, labels), "val": (images, labels), ...}, images (n, H, W)
    or (n, C, H, W) float, labels (n,) int64. A batch is (images, labels); the loss is the
    mean cross-entropy of the labels (chapter 8) over the batch's images. ``tokens_in`` counts
    images (the Trainer's "tokens per second" are then images per second).
    """

    kind = "classification"

    def __init__(self, splits: dict, num_classes: int, name: str = "digits"):
        for split in ("train", "val"):
            if split not in splits:
                raise ValueError(f"ImageClassificationTask: splits needs a {split!r} entry, got {sorted(splits)}")
        for split, (images, labels) in splits.items():
            if len(images) != len(labels):
                raise ValueError(f"ImageClassificationTask: the {split} split has {len(images)} images "
                                 f"but {len(labels)} labels")
        self.splits, self.num_classes, self.name = splits, num_classes, name

    def describe(self) -> dict:
        images = self.splits["train"][0]
        return {"name": self.name, "kind": self.kind, "image_shape": list(images.shape[1:]),
                "num_classes": self.num_classes,
                "sizes": {split: len(labels) for split, (_, labels) in self.splits.items()}}

    def sampler(self, batch_size: int, seed: int):
        return PairBatches(*self.splits["train"], batch_size, seed=seed)

    def eval_batches(self, split: str, batch_size: int, n_batches: int, seed: int = 0):
        images, labels = self.splits[split]
        n = min(len(labels), batch_size * n_batches)
        return [(images[i:i + batch_size], labels[i:i + batch_size]) for i in range(0, n, batch_size)]

    @staticmethod
    def tokens_in(batch) -> int:
        return int(batch[0].shape[0])

    @staticmethod
    def loss(model, batch, fused: bool = False, label_smoothing: float = 0.0):
        """Mean cross-entropy of the labels under softmax(model(images)) (chapter 8)."""
        images, labels = batch
        logits = model(images)                                             # (B, classes)
        return helpers.cross_entropy(logits.float(), labels, fused=fused, label_smoothing=label_smoothing)


# --------------------------------------------------------------------------- the model

VISION_POSITIONS = ("learned", "sinusoidal")


@dataclass
class VisionConfig(StoredConfig):
    """Everything that fixes a Vision Transformer's shape (helpers.model.ModelConfig's names).

    image_size: the side of the square images (pixels); patch_size p (divides it);
    channels C. num_classes: the width of the output head, or None for no head (the model
    then returns the [CLS] token's final vector, as CLIP's image encoder does, chapter 13).
    d_model, num_heads, num_layers, d_ff (default 4 d_model); positions: "learned" or
    "sinusoidal" (the 2-D table of :func:`sinusoidal_positional_encoding_2d`; the [CLS]
    token then gets none). norm "pre" (the ViT convention), normalization, ffn ("gelu" as in
    ViT), bias, dropout, kernels ("fused" or "math") and eps as in ModelConfig.
    """

    image_size: int = 8
    patch_size: int = 2
    channels: int = 1
    num_classes: int | None = 10
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int | None = None
    positions: str = "learned"
    norm: str = "pre"
    normalization: str = "layer_norm"
    ffn: str = "gelu"
    bias: bool = True
    dropout: float = 0.0
    kernels: str = "fused"
    eps: float = 1e-6

    def __post_init__(self):
        if self.d_ff is None and isinstance(self.d_model, int):
            self.d_ff = 4 * self.d_model
        self.validate()

    def validate(self):
        positive = ["image_size", "patch_size", "channels", "d_model", "num_heads", "num_layers", "d_ff"]
        if self.num_classes is not None:
            positive.append("num_classes")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"VisionConfig: {name} must be a positive integer, got {value!r}")
        if self.image_size % self.patch_size:
            raise ValueError(f"VisionConfig: patch_size={self.patch_size} must divide image_size={self.image_size}")
        if self.d_model % self.num_heads:
            raise ValueError(f"VisionConfig: num_heads={self.num_heads} must divide d_model={self.d_model}")
        if self.positions not in VISION_POSITIONS:
            raise ValueError(f"VisionConfig: positions must be one of {VISION_POSITIONS}, got {self.positions!r}")
        if self.positions == "sinusoidal" and self.d_model % 4:
            raise ValueError(f"VisionConfig: 2-D sinusoidal positions need d_model divisible by 4, got {self.d_model}")
        if self.kernels not in ("fused", "math"):
            raise ValueError(f"VisionConfig: kernels must be 'fused' or 'math', got {self.kernels!r}")
        if self.norm not in L.NORMS:
            raise ValueError(f"VisionConfig: norm must be one of {L.NORMS}, got {self.norm!r}")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"VisionConfig: dropout must lie in [0, 1), got {self.dropout!r}")
        self.layer_options()                                               # checks normalization, ffn

    @property
    def grid(self) -> int:
        """Patches per side, image_size / patch_size."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid ** 2

    @property
    def patch_dim(self) -> int:
        return self.patch_size ** 2 * self.channels

    def layer_options(self, training: bool = False) -> L.LayerOptions:
        return L.LayerOptions(normalization=self.normalization, ffn=self.ffn, bias=self.bias,
                              fused=self.kernels == "fused", dropout=self.dropout if training else 0.0)



class VisionTransformer(nn.Module):
    """A Vision Transformer: images (B, H, W) or (B, C, H, W) -> logits (B, num_classes).

    x = [cls; patchify(images) W_E + b_E] + positions        (B, 1 + N, d_model)
    x = chapter 7's encoder stack (:func:`helpers.layers.encoder`), then the final norm
    logits = x[:, 0] W_head + b_head                          (from the [CLS] token)

    With ``num_classes=None`` :meth:`forward` returns x[:, 0] (B, d_model) itself.
    Parameters: ``patch_embed.w`` (p*p*C, d_model) and ``patch_embed.b``, ``cls_token``
    (d_model,), ``positions.table`` (learned), ``layers.i.<chapter 7 names>``,
    ``final_norm``, ``head.w``, ``head.b``. Derived in chapter 13.
    """

    def __init__(self, config: VisionConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.patch_embed = nn.ParameterDict({"w": initial_value("w", (config.patch_dim, d)),
                                             "b": initial_value("b", (d,))})
        self.cls_token = initial_value("cls_token", (d,))                 # zeros, as in ViT
        if config.positions == "learned":
            self.positions = Positions("learned", 1 + config.num_patches, d)
        else:
            self.positions = None
            table = sinusoidal_positional_encoding_2d(config.grid, config.grid, d, backend="torch",
                                                      dtype=torch.float32)          # (N, d)
            self.register_buffer("position_table", torch.cat([torch.zeros(1, d), table]), persistent=False)
        self.layers = nn.ModuleList(LayerParameters(config, "encoder", config.num_layers)
                                    for _ in range(config.num_layers))
        self.final_norm = NormParameters(config) if config.norm == "pre" else None
        self.head = None
        if config.num_classes is not None:
            self.head = nn.ParameterDict({
                "w": nn.Parameter(torch.randn(d, config.num_classes) * output_std(d)),  # logits start near 0
                "b": initial_value("b", (config.num_classes,))})

    def params(self) -> dict:
        """The stack's tensors as chapter 7's functions take them."""
        return {"layers": [layer.params() for layer in self.layers],
                "final_norm": None if self.final_norm is None else self.final_norm.params()}

    def embed(self, images):
        """images -> the encoder's input (B, 1 + N, d_model): [CLS] and the patch tokens, with positions."""
        c = self.config
        if not isinstance(images, torch.Tensor) or not torch.is_floating_point(images):
            raise TypeError(f"VisionTransformer: images must be a float tensor, got "
                            f"{getattr(images, 'dtype', type(images).__name__)}")
        expected = (c.image_size, c.image_size) if c.channels == 1 and images.dim() == 3 else \
            (c.channels, c.image_size, c.image_size)
        if tuple(images.shape[1:]) != expected:
            raise ValueError(f"VisionTransformer: images must have shape (B, {', '.join(map(str, expected))}) "
                             f"for this config, got {tuple(images.shape)}")
        p = self.patch_embed
        x = patch_embedding(images, p["w"], p["b"], c.patch_size)          # (B, N, d_model)
        cls = self.cls_token.expand(x.shape[0], 1, c.d_model)             # (B, 1, d_model)
        x = torch.cat([cls, x], dim=1)                                     # (B, 1 + N, d_model)
        if self.positions is not None:
            x = self.positions(x)                                          # (B, 1 + N, d_model)
        else:
            x = x + self.position_table.to(x.dtype)                        # (B, 1 + N, d_model)
        return L.dropout(x, c.dropout if self.training else 0.0)

    def encode(self, images, need_weights: bool = False):
        """The final vectors of all tokens (B, 1 + N, d_model), after the final norm; with
        ``need_weights`` also a list (one per layer) of self-attention weights (B, h, 1 + N, 1 + N),
        computed by the formulas (the fused kernel does not produce them)."""
        c = self.config
        options = c.layer_options(training=self.training)
        if need_weights and options.fused:
            options = replace(options, fused=False)
        p = self.params()
        x, weights = L.encoder(self.embed(images), p["layers"], norm=c.norm, final_norm=p["final_norm"],
                               num_heads=c.num_heads, eps=c.eps, options=options,
                               return_weights=True)                        # (B, 1 + N, d_model)
        return (x, [w["self_attn"] for w in weights]) if need_weights else x

    def forward(self, images, need_weights: bool = False):
        """logits (B, num_classes) from the [CLS] token (or its vector (B, d_model) without a head);
        with ``need_weights`` also the per-layer attention weights (see :meth:`encode`)."""
        x, weights = self.encode(images, need_weights=True) if need_weights else (self.encode(images), None)
        cls = x[:, 0]                                                      # (B, d_model)
        out = cls if self.head is None else cls @ self.head["w"] + self.head["b"]   # (B, classes)
        return (out, weights) if need_weights else out


@torch.no_grad()
def predict(model: nn.Module, images, batch_size: int = 512):
    """The arg-max class of every image, in eval mode, batch by batch: int64 tensor (n,)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = [model(images[i:i + batch_size].to(device)).argmax(-1).cpu()
           for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(out)
