"""Chapter 13's explorers: the patch-attention overlay shows row 0 (the [CLS] query) of the
chosen layer and head, patch by patch; the caption search shows the images of largest cosine."""
import numpy as np
import pytest
import torch

from helpers.vision import VisionConfig, VisionTransformer
from helpers.widgets.vision import (ATTENTION_COLORMAP, CaptionSearchExplorer, PatchAttentionExplorer,
                                    cls_attention_maps, rank_images, upsample)


@pytest.fixture
def attention_setting():
    """Weights of a real (untrained) ViT on five images: (n, layers, heads, 17, 17)."""
    torch.manual_seed(0)
    model = VisionTransformer(VisionConfig(d_model=16, num_heads=4, num_layers=2)).eval()
    images = torch.rand(5, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits, weights = model(images, need_weights=True)
    stacked = torch.stack(weights, dim=1).numpy()                        # (5, 2, 4, 17, 17)
    return images.numpy(), stacked, np.arange(5), logits.argmax(-1).numpy()


def test_cls_maps_are_row_zero_without_the_cls_key():
    rng = np.random.default_rng(0)
    w = rng.uniform(size=(3, 2, 10, 10))
    maps = cls_attention_maps(w, 3)
    assert maps.shape == (3, 2, 3, 3)
    for r in range(3):
        for c in range(3):
            np.testing.assert_array_equal(maps[..., r, c], w[..., 0, 1 + 3 * r + c])
    with pytest.raises(ValueError, match="N = grid"):
        cls_attention_maps(w, 2)


def test_upsample_paints_each_patch_on_its_pixels():
    big = upsample(np.array([[1.0, 2.0], [3.0, 4.0]]), 3)
    assert big.shape == (6, 6)
    assert (big[:3, :3] == 1).all() and (big[:3, 3:] == 2).all() and (big[3:, :3] == 3).all() and (big[3:, 3:] == 4).all()


def test_zero_weight_is_transparent_and_the_largest_is_not():
    assert ATTENTION_COLORMAP(0.0)[3] == 0.0 and ATTENTION_COLORMAP(1.0)[3] > 0.8


def test_the_sliders_pick_image_layer_and_head(attention_setting):
    images, weights, labels, predictions = attention_setting
    explorer = PatchAttentionExplorer(images, weights, labels, predictions, patch_size=2)
    for image, layer, head in [(0, 0, 0), (3, 1, 2), (4, 0, 3)]:
        explorer.controls["image"].value = image
        explorer.controls["layer"].value = layer
        explorer.controls["head"].value = head
        big = explorer.figure.axes[0]
        np.testing.assert_array_equal(big.images[0].get_array(), images[image])
        expected = np.kron(weights[image, layer, head, 0, 1:].reshape(4, 4), np.ones((2, 2)))
        np.testing.assert_allclose(big.images[1].get_array(), expected, rtol=0, atol=0)
        assert big.get_title().startswith(f"image {image}: digit {labels[image]}, predicted {predictions[image]}")
        assert f"layer {layer}, head {head}" in big.get_title()
        small = explorer.figure.axes[1:5]
        for h, ax in enumerate(small):
            np.testing.assert_allclose(ax.images[1].get_array(),
                                       np.kron(weights[image, layer, h, 0, 1:].reshape(4, 4), np.ones((2, 2))))
            assert ax.title.get_color() == ("tab:red" if h == head else "black")
        assert "[CLS]" in explorer.figure.axes[-1].get_ylabel()
    assert explorer.controls["head"].max == 3 and explorer.controls["layer"].max == 1


def test_the_attention_explorer_refuses_mismatched_arrays(attention_setting):
    images, weights, labels, predictions = attention_setting
    with pytest.raises(ValueError, match="same n"):
        PatchAttentionExplorer(images[:3], weights, labels, predictions, patch_size=2)


def fake_text_encoder(caption):
    """Embeds a caption as the one-hot of the first digit character in it (None if none)."""
    for ch in caption:
        if ch.isdigit():
            return np.eye(10)[int(ch)] + 0.01
    return None


def test_typing_a_caption_shows_the_best_matching_images_first():
    rng = np.random.default_rng(2)
    labels = np.arange(30) % 10
    image_embeddings = np.eye(10)[labels] + rng.uniform(0, 0.3, size=(30, 10))
    images = rng.uniform(size=(30, 8, 8))
    explorer = CaptionSearchExplorer(fake_text_encoder, image_embeddings, images, labels, k=4, caption="the digit 3")
    order, cosines = explorer.shown
    assert list(labels[order]) == [3, 3, 3] + [labels[order[3]]]
    brute = sorted(range(30), key=lambda i: -image_embeddings[i] @ fake_text_encoder("3")
                   / np.linalg.norm(image_embeddings[i]) / np.linalg.norm(fake_text_encoder("3")))[:4]
    assert list(order) == brute and np.all(np.diff(cosines) <= 0)
    for ax, i, cos in zip(explorer.figure.axes, order, cosines):
        np.testing.assert_array_equal(ax.images[0].get_array(), images[i])
        assert ax.get_title() == f"digit {labels[i]}\ncos {cos:.2f}"
    assert "'the digit 3'" in explorer.figure.get_suptitle()

    explorer.controls["caption"].value = "now a 7"
    order, _ = explorer.shown
    assert list(labels[order[:3]]) == [7, 7, 7]
    assert len(explorer.figure.axes) == 4 and "'now a 7'" in explorer.figure.get_suptitle()

    explorer.controls["caption"].value = "   "
    assert len(explorer.figure.axes) == 0 and "type a caption" in explorer.figure.get_suptitle()
    explorer.controls["caption"].value = "no digit here"                  # the encoder returns None
    assert len(explorer.shown[0]) == 0 and "type a caption" in explorer.figure.get_suptitle()


def test_rank_images_by_hand_and_bad_input():
    order, cosines = rank_images(np.array([1.0, 0.0]), np.array([[0.0, 1.0], [2.0, 0.0], [1.0, 1.0], [3.0, 0.0]]), 3)
    assert list(order) == [1, 3, 2]                                       # a tie goes to the smaller index
    np.testing.assert_allclose(cosines, [1.0, 1.0, np.sqrt(0.5)])
    with pytest.raises(ValueError, match="k must lie in"):
        rank_images(np.ones(2), np.ones((3, 2)), 4)
    with pytest.raises(ValueError, match=r"\(e,\)"):
        rank_images(np.ones(3), np.ones((3, 2)), 1)
