"""Chapter 13's explorers: where a Vision Transformer's [CLS] token looks, and which images
a caption finds.

* :class:`PatchAttentionExplorer`: pick a test image, a layer and a head; the image is shown
  with the [CLS] token's attention over its patches laid on top (each patch tinted by its
  weight), and next to it the same for every head of that layer. The weights come from a
  trained :class:`helpers.vision.VisionTransformer` (``need_weights=True``), passed in as an
  array, so the drawing is a pure function of arrays: :func:`cls_attention_maps`.
* :class:`CaptionSearchExplorer`: type a caption; the test images whose embeddings have the
  largest cosine with the caption's embedding are shown, best first (:func:`rank_images`).
  The caption is embedded by a function handed in (the notebook passes its trained text
  encoder), so a test can pass any function.
"""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np
from matplotlib.colors import ListedColormap

from .explorer import Explorer


def cls_attention_maps(weights, grid: int) -> np.ndarray:
    """The [CLS] token's attention over the patches, as images of the patch grid.

    weights: (..., 1 + N, 1 + N) attention weights of a ViT whose token 0 is [CLS] and tokens
    1..N are the patches in reading order, N = grid^2. Returns (..., grid, grid): entry (r, c)
    is the weight that [CLS] (query 0) gives to patch r grid + c. The [CLS] token's weight on
    itself (key 0) is left out, so a map sums to 1 minus that weight.
    """
    w = np.asarray(weights)
    if w.ndim < 2 or w.shape[-1] != w.shape[-2] or w.shape[-1] != 1 + grid * grid:
        raise ValueError(f"cls_attention_maps: weights must have shape (..., 1 + N, 1 + N) with "
                         f"N = grid^2 = {grid * grid}, got {w.shape}")
    return w[..., 0, 1:].reshape(*w.shape[:-2], grid, grid)


def upsample(patch_map: np.ndarray, p: int) -> np.ndarray:
    """A (grid, grid) map blown up to (grid p, grid p) pixels: each patch's value on its p x p pixels."""
    return np.kron(np.asarray(patch_map), np.ones((p, p)))


# Red whose opacity grows with the value: weight 0 is fully transparent, so the digit shows through.
ATTENTION_COLORMAP = ListedColormap(np.column_stack([np.tile([0.85, 0.1, 0.05], (256, 1)),
                                                     np.linspace(0.0, 0.85, 256)]), name="attention")


def draw_attention_on_image(ax, image, patch_map, p: int, vmax: float):
    """Draw ``image`` (H, W) in grey (ink at most mid-grey) and the (grid, grid) ``patch_map`` on
    top in red, opaque in proportion to the weight; white lines mark the patches. Returns the
    overlay's AxesImage (``ax.images[1]``, whose array is :func:`upsample` (patch_map, p))."""
    ax.imshow(image, cmap="gray_r", vmin=0.0, vmax=1.6)
    shown = ax.imshow(upsample(patch_map, p), cmap=ATTENTION_COLORMAP, vmin=0.0, vmax=vmax)
    for k in range(1, np.asarray(patch_map).shape[0]):                    # patch borders
        ax.axhline(k * p - 0.5, color="white", linewidth=0.6)
        ax.axvline(k * p - 0.5, color="white", linewidth=0.6)
    ax.set_xticks([])
    ax.set_yticks([])
    return shown


class PatchAttentionExplorer(Explorer):
    """Sliders for the image, the layer and the head.

    ``images`` (n, H, W), ``weights`` (n, layers, heads, 1 + N, 1 + N), ``labels`` and
    ``predictions`` (n,) integers, ``patch_size`` p. ``figure.axes[0]`` shows the chosen
    image (``images[0]``) with the chosen head's map laid over it (``images[1]``, the map
    upsampled to pixels, :func:`draw_attention_on_image`); the next ``heads`` axes show every
    head of the chosen layer the same way, in order; the last axis is the colorbar.
    """

    figsize = (9.0, 3.6)

    def __init__(self, images, weights, labels, predictions, patch_size: int, image: int = 0,
                 layer: int = 0, head: int = 0):
        images, weights = np.asarray(images), np.asarray(weights)
        if images.ndim != 3 or weights.ndim != 5 or len(weights) != len(images):
            raise ValueError(f"PatchAttentionExplorer: images must be (n, H, W) and weights "
                             f"(n, layers, heads, 1 + N, 1 + N) for the same n, got {images.shape} "
                             f"and {weights.shape}")
        grid = images.shape[1] // patch_size
        self.maps = cls_attention_maps(weights, grid)                     # (n, layers, heads, grid, grid)
        self.images, self.labels, self.predictions = images, np.asarray(labels), np.asarray(predictions)
        self.patch_size = patch_size
        n, layers, heads = weights.shape[:3]
        super().__init__({
            "image": widgets.IntSlider(value=image, min=0, max=n - 1, description="image"),
            "layer": widgets.IntSlider(value=layer, min=0, max=layers - 1, description="layer"),
            "head": widgets.IntSlider(value=head, min=0, max=heads - 1, description="head"),
        })

    def draw(self, fig, image, layer, head):
        maps = self.maps[image, layer]                                    # (heads, grid, grid)
        vmax = float(maps.max())
        heads = maps.shape[0]
        cols = (heads + 1) // 2
        grid = fig.add_gridspec(2, 2 + cols, width_ratios=[2, 2] + [1] * cols)
        big = fig.add_subplot(grid[:, :2])
        shown = draw_attention_on_image(big, self.images[image], maps[head], self.patch_size, vmax)
        big.set_title(f"image {image}: digit {self.labels[image]}, predicted {self.predictions[image]}\n"
                      f"layer {layer}, head {head}: [CLS] attention over the patches", fontsize=9)
        for h in range(heads):
            r, c = divmod(h, cols)
            ax = fig.add_subplot(grid[r, 2 + c])
            draw_attention_on_image(ax, self.images[image], maps[h], self.patch_size, vmax)
            ax.set_title(f"head {h}", fontsize=8, color="tab:red" if h == head else "black")
        fig.colorbar(shown, ax=big, shrink=0.8, label="weight from [CLS] to the patch")


def rank_images(text_embedding, image_embeddings, k: int):
    """The k images whose embeddings have the largest cosine with the caption's, best first.

    text_embedding (e,), image_embeddings (n, e). Returns (indices (k,), cosines (k,)); ties
    go to the smaller index."""
    t = np.asarray(text_embedding, dtype=np.float64)
    ims = np.asarray(image_embeddings, dtype=np.float64)
    if t.ndim != 1 or ims.ndim != 2 or ims.shape[1] != t.shape[0]:
        raise ValueError(f"rank_images: text_embedding must be (e,) and image_embeddings (n, e), got "
                         f"{t.shape} and {ims.shape}")
    if not 1 <= k <= len(ims):
        raise ValueError(f"rank_images: k must lie in 1..{len(ims)}, got {k!r}")
    cosines = ims @ t / (np.linalg.norm(ims, axis=1) * np.linalg.norm(t))   # (n,)
    order = np.argsort(-cosines, kind="stable")[:k]
    return order, cosines[order]


class CaptionSearchExplorer(Explorer):
    """A text box for a caption; the ``k`` test images that match it best.

    ``encode_text(caption) -> (e,)`` embeds a caption (it may return None for a caption it
    cannot read, e.g. an empty one); ``image_embeddings`` (n, e), ``images`` (n, H, W),
    ``labels`` (n,). ``figure.axes[i]`` shows the i-th best image (``images[0]``), titled
    with its label and cosine; :attr:`shown` holds the indices and cosines on display.
    """

    figsize = (9.0, 2.6)

    def __init__(self, encode_text, image_embeddings, images, labels, k: int = 8,
                 caption: str = "a handwritten seven"):
        self.encode_text, self.k = encode_text, k
        self.image_embeddings, self.images, self.labels = (np.asarray(image_embeddings), np.asarray(images),
                                                           np.asarray(labels))
        self.shown = (np.zeros(0, dtype=np.int64), np.zeros(0))
        super().__init__({"caption": widgets.Text(value=caption, description="caption",
                                                  layout=widgets.Layout(width="28em"))})

    def draw(self, fig, caption):
        embedding = self.encode_text(caption) if caption.strip() else None
        if embedding is None:
            self.shown = (np.zeros(0, dtype=np.int64), np.zeros(0))
            fig.suptitle("type a caption (letters, digits, spaces)", fontsize=10)
            return
        order, cosines = rank_images(embedding, self.image_embeddings, self.k)
        self.shown = (order, cosines)
        axes = fig.subplots(1, self.k)
        for ax, i, cos in zip(np.atleast_1d(axes), order, cosines):
            ax.imshow(self.images[i], cmap="gray_r", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"digit {self.labels[i]}\ncos {cos:.2f}", fontsize=9)
        fig.suptitle(f"best matches for {caption!r}, best first", fontsize=10)
