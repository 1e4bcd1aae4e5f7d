"""helpers.vision: patches, the patch embedding (= a strided convolution), 2-D sinusoidal
positions, the digits split, and a Vision Transformer that is chapter 7's encoder on patches.

References are independent of the code under test: index loops, torch.nn.Conv2d and
F.conv2d, chapter 5's formula written out, torch.nn.TransformerEncoderLayer."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import helpers
from helpers import layers as L
from helpers.trainer import TrainConfig, Trainer
from helpers.vision import (ImageClassificationTask, VisionConfig, VisionTransformer,
                            conv_weight_as_matrix, load_digits_split, patch_embedding, patchify,
                            predict, sinusoidal_positional_encoding_2d, unpatchify)

pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py



def patches_by_loops(x, p):
    """(B, C, H, W) -> (B, N, p*p*C), patch k = (r, c) in reading order, entry (i p + j) C + ch."""
    B, C, H, W = x.shape
    cols = W // p
    out = np.empty((B, (H // p) * cols, p * p * C))
    for k in range(out.shape[1]):
        r, c = divmod(k, cols)
        for i in range(p):
            for j in range(p):
                for ch in range(C):
                    out[:, k, (i * p + j) * C + ch] = x[:, ch, r * p + i, c * p + j]
    return out


# ---------------------------------------------------------------- patchify

@pytest.mark.parametrize("shape,p", [((2, 1, 8, 8), 2), ((3, 3, 6, 9), 3), ((1, 2, 4, 4), 4), ((2, 3, 5, 5), 1)])
def test_patchify_matches_index_loops_on_both_backends(rng, shape, p):
    x = rng.normal(size=shape)
    expected = patches_by_loops(x, p)
    np.testing.assert_array_equal(patchify(x, p), expected)
    np.testing.assert_array_equal(patchify(torch.tensor(x), p).numpy(), expected)


def test_one_channel_images_may_leave_out_the_channel_axis(rng):
    x = rng.normal(size=(4, 8, 8))
    np.testing.assert_array_equal(patchify(x, 2), patchify(x[:, None], 2))
    assert patchify(x, 4).shape == (4, 4, 16)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3))
def test_unpatchify_inverts_patchify(batch, channels, p, rows, cols):
    x = np.random.default_rng(batch * 100 + p).normal(size=(batch, channels, rows * p, cols * p))
    patches = patchify(x, p)
    assert patches.shape == (batch, rows * cols, p * p * channels)
    np.testing.assert_array_equal(unpatchify(patches, p, rows * p, cols * p), x)
    np.testing.assert_array_equal(unpatchify(torch.tensor(patches), p, rows * p, cols * p).numpy(), x)


def test_patchify_refuses_bad_input(rng):
    with pytest.raises(ValueError, match="p must divide"):
        patchify(rng.normal(size=(1, 8, 8)), 3)
    with pytest.raises(ValueError, match="patch size"):
        patchify(rng.normal(size=(1, 8, 8)), 0)
    with pytest.raises(ValueError, match=r"\(B, H, W\) or \(B, C, H, W\)"):
        patchify(rng.normal(size=(8, 8)), 2)
    with pytest.raises(TypeError, match="images"):
        patchify([[1.0]], 1)
    with pytest.raises(ValueError, match="do not tile"):
        unpatchify(rng.normal(size=(1, 4, 4)), 2, 8, 8)


# ---------------------------------------------------------------- the patch embedding is a convolution

@pytest.mark.parametrize("channels,p,d", [(1, 2, 8), (3, 4, 5), (2, 3, 6)])
def test_patch_embedding_equals_conv2d_with_kernel_equal_stride(rng, channels, p, d):
    torch.manual_seed(channels)
    conv = torch.nn.Conv2d(channels, d, kernel_size=p, stride=p, dtype=torch.float64)
    x = torch.tensor(rng.normal(size=(2, channels, 4 * p, 2 * p)))
    with torch.no_grad():
        reference = conv(x).flatten(2).transpose(1, 2)                       # (B, N, d)
        w = conv_weight_as_matrix(conv.weight)
        torch.testing.assert_close(patch_embedding(x, w, conv.bias, p), reference, rtol=1e-12, atol=1e-12)
    ours_np = patch_embedding(x.numpy(), conv_weight_as_matrix(conv.weight.detach().numpy()),
                              conv.bias.detach().numpy(), p)
    np.testing.assert_allclose(ours_np, reference.numpy(), rtol=1e-12, atol=1e-12)


def test_conv_weight_as_matrix_places_each_weight_by_hand(rng):
    weight = rng.normal(size=(4, 3, 2, 2))                                  # (d_out, C, p, p)
    w = conv_weight_as_matrix(weight)
    for o in range(4):
        for ch in range(3):
            for i in range(2):
                for j in range(2):
                    assert w[(i * 2 + j) * 3 + ch, o] == weight[o, ch, i, j]


def test_patch_embedding_is_differentiable_and_checks_shapes(rng):
    x = torch.tensor(rng.normal(size=(2, 1, 4, 4)), requires_grad=True)
    w = torch.tensor(rng.normal(size=(4, 3)), requires_grad=True)
    b = torch.tensor(rng.normal(size=3), requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: patch_embedding(x, w, b, 2), (x, w, b))
    with pytest.raises(ValueError, match=r"w must have shape \(p\*p\*C, d_model\) = \(4, d_model\)"):
        patch_embedding(x, torch.zeros(16, 3, dtype=torch.float64), None, 2)
    with pytest.raises(ValueError, match="b must have shape"):
        patch_embedding(x, w, torch.zeros(4, dtype=torch.float64), 2)
    with pytest.raises(TypeError, match="mix NumPy and torch"):
        patch_embedding(x.detach().numpy(), w, b, 2)


# ---------------------------------------------------------------- 2-D positions

def test_two_dimensional_sinusoids_by_hand():
    rows, cols, d = 3, 4, 8
    pe = sinusoidal_positional_encoding_2d(rows, cols, d)
    half = d // 2
    for r in range(rows):
        for c in range(cols):
            k = r * cols + c
            for i in range(half // 2):
                omega = 10000 ** (-2 * i / half)
                assert math.isclose(pe[k, 2 * i], math.sin(r * omega), abs_tol=1e-12)
                assert math.isclose(pe[k, 2 * i + 1], math.cos(r * omega), abs_tol=1e-12)
                assert math.isclose(pe[k, half + 2 * i], math.sin(c * omega), abs_tol=1e-12)
                assert math.isclose(pe[k, half + 2 * i + 1], math.cos(c * omega), abs_tol=1e-12)
    torch.testing.assert_close(sinusoidal_positional_encoding_2d(rows, cols, d, backend="torch",
                                                                 dtype=torch.float64),
                               torch.tensor(pe), rtol=0, atol=1e-12)


def test_two_dimensional_dot_products_depend_on_the_offsets_only():
    pe = sinusoidal_positional_encoding_2d(6, 6, 16).reshape(6, 6, 16)
    omega = helpers.frequencies(8)
    for (r, c), (r2, c2) in [((0, 0), (2, 3)), ((3, 1), (5, 4)), ((1, 5), (1, 2))]:
        expected = np.cos((r - r2) * omega).sum() + np.cos((c - c2) * omega).sum()
        assert math.isclose(pe[r, c] @ pe[r2, c2], expected, abs_tol=1e-12)


def test_two_dimensional_sinusoids_refuse_widths_not_divisible_by_four():
    with pytest.raises(ValueError, match="multiple of 4"):
        sinusoidal_positional_encoding_2d(2, 2, 6)
    with pytest.raises(ValueError, match="rows"):
        sinusoidal_positional_encoding_2d(0, 2, 8)


# ---------------------------------------------------------------- the data

def test_the_digits_split_is_fixed_disjoint_and_stratified():
    splits = load_digits_split()
    sizes = {k: len(v[1]) for k, v in splits.items()}
    assert sum(sizes.values()) == 1797
    assert sizes["test"] > 2 * sizes["val"] > 0
    from sklearn.datasets import load_digits
    raw = load_digits().images.reshape(1797, -1) / 16.0
    seen = []
    for images, labels in splits.values():
        assert images.dtype == torch.float32 and labels.dtype == torch.int64 and images.shape[1:] == (8, 8)
        assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
        counts = np.bincount(labels.numpy(), minlength=10)
        assert counts.min() > 0.5 * counts.max()                             # every digit, in proportion
        for row in images.reshape(len(images), -1).numpy():
            seen.append(int(np.argmin(np.abs(raw - row).sum(1))))
    assert sorted(seen) == list(range(1797))                                 # each image exactly once
    again = load_digits_split()
    for split in splits:
        assert torch.equal(again[split][0], splits[split][0])


# ---------------------------------------------------------------- the model

def small_config(**kw):
    values = dict(image_size=8, patch_size=2, d_model=16, num_heads=2, num_layers=2, d_ff=32)
    values.update(kw)
    return VisionConfig(**values)


def test_the_model_is_chapter_7_encoder_on_patches(rng):
    torch.manual_seed(0)
    model = VisionTransformer(small_config(kernels="math")).double().eval()
    x = torch.tensor(rng.uniform(size=(3, 8, 8)))
    p = model.patch_embed
    tokens = torch.cat([model.cls_token.expand(3, 1, 16),
                        patches_by_loops_t(x[:, None], 2) @ p["w"] + p["b"]], dim=1)   # (3, 17, 16)
    tokens = tokens + model.positions.table
    params = model.params()
    h = L.encoder(tokens, params["layers"], norm="pre", final_norm=params["final_norm"], num_heads=2,
                  eps=1e-6, options=L.LayerOptions(ffn="gelu"))
    expected = h[:, 0] @ model.head["w"] + model.head["b"]
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=1e-12, atol=1e-12)


def patches_by_loops_t(x, p):
    return torch.tensor(patches_by_loops(x.detach().numpy(), p))


def test_one_layer_equals_torch_transformer_encoder_layer(rng):
    """A ViT layer (pre-norm, GELU) is torch's nn.TransformerEncoderLayer(norm_first=True)."""
    torch.manual_seed(1)
    model = VisionTransformer(small_config(num_layers=1, kernels="math")).double().eval()
    layer = torch.nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, activation="gelu", batch_first=True,
                                             norm_first=True, layer_norm_eps=1e-6, dtype=torch.float64)
    ours = model.layers[0]
    with torch.no_grad():
        a = ours["self_attn"]
        layer.self_attn.in_proj_weight.copy_(torch.cat([a["w_q"].T, a["w_k"].T, a["w_v"].T]))
        layer.self_attn.in_proj_bias.copy_(torch.cat([a["b_q"], a["b_k"], a["b_v"]]))
        layer.self_attn.out_proj.weight.copy_(a["w_o"].T)
        layer.self_attn.out_proj.bias.copy_(a["b_o"])
        layer.linear1.weight.copy_(ours["ffn"]["w1"].T)
        layer.linear1.bias.copy_(ours["ffn"]["b1"])
        layer.linear2.weight.copy_(ours["ffn"]["w2"].T)
        layer.linear2.bias.copy_(ours["ffn"]["b2"])
        for n in ("norm1", "norm2"):
            getattr(layer, n).weight.copy_(ours[n]["gamma"])
            getattr(layer, n).bias.copy_(ours[n]["beta"])
        x = model.embed(torch.tensor(rng.uniform(size=(2, 8, 8))))
        params = model.params()
        ours_out = L.encoder(x, params["layers"], norm="pre", num_heads=2, eps=1e-6,
                             options=L.LayerOptions(ffn="gelu"))
        torch.testing.assert_close(ours_out, layer(x), rtol=1e-10, atol=1e-10)


def test_fused_and_math_kernels_agree_and_weights_come_from_the_math_path(rng):
    torch.manual_seed(2)
    fused = VisionTransformer(small_config(positions="sinusoidal")).double().eval()
    math_model = VisionTransformer(small_config(positions="sinusoidal", kernels="math")).double().eval()
    math_model.load_state_dict(fused.state_dict())
    x = torch.tensor(rng.uniform(size=(4, 1, 8, 8)))
    with torch.no_grad():
        torch.testing.assert_close(fused(x), math_model(x), rtol=1e-10, atol=1e-10)
        logits, weights = fused(x, need_weights=True)
    torch.testing.assert_close(logits, math_model(x), rtol=1e-10, atol=1e-10)
    assert len(weights) == 2 and weights[0].shape == (4, 2, 17, 17)
    torch.testing.assert_close(weights[1].sum(-1), torch.ones(4, 2, 17, dtype=torch.float64))


def test_sinusoidal_positions_are_the_2d_table_and_the_cls_token_gets_none():
    model = VisionTransformer(small_config(positions="sinusoidal"))
    table = model.position_table
    torch.testing.assert_close(table[0], torch.zeros(16))
    torch.testing.assert_close(table[1:], torch.tensor(sinusoidal_positional_encoding_2d(4, 4, 16),
                                                       dtype=torch.float32))
    assert not any("position" in name for name, _ in model.named_parameters())


def test_parameter_count_by_formula():
    c = small_config(num_classes=10)
    model = VisionTransformer(c)
    d, N = c.d_model, c.num_patches
    expected = (c.patch_dim * d + d) + d + (N + 1) * d + 2 * L.encoder_layer_parameter_count(d, c.d_ff) \
        + 2 * d + (d * 10 + 10)
    assert sum(p.numel() for p in model.parameters()) == expected
    no_head = VisionTransformer(small_config(num_classes=None))
    assert sum(p.numel() for p in no_head.parameters()) == expected - (d * 10 + 10)
    assert no_head(torch.zeros(2, 8, 8)).shape == (2, d)


def test_untrained_logits_start_near_zero_so_the_loss_starts_near_ln_10(rng):
    torch.manual_seed(3)
    model = VisionTransformer(small_config(d_model=64, num_heads=4)).eval()
    x = torch.tensor(rng.uniform(size=(256, 8, 8)), dtype=torch.float32)
    with torch.no_grad():
        loss = helpers.cross_entropy(model(x), torch.tensor(rng.integers(0, 10, 256)))
    assert abs(float(loss) - math.log(10)) < 0.05


def test_config_refuses_bad_values():
    with pytest.raises(ValueError, match="patch_size=3 must divide image_size=8"):
        VisionConfig(patch_size=3)
    with pytest.raises(ValueError, match="positions"):
        VisionConfig(positions="rotary")
    with pytest.raises(ValueError, match="divisible by 4"):
        VisionConfig(d_model=18, num_heads=2, positions="sinusoidal")
    with pytest.raises(ValueError, match="ffn"):
        VisionConfig(ffn="tanh")
    assert VisionConfig.from_dict(VisionConfig().to_dict()) == VisionConfig()
    model = VisionTransformer(small_config())
    with pytest.raises(ValueError, match=r"images must have shape \(B, 8, 8\)"):
        model(torch.zeros(2, 6, 6))
    with pytest.raises(TypeError, match="float tensor"):
        model(torch.zeros(2, 8, 8, dtype=torch.int64))


def test_the_trainer_trains_it_deterministically(tmp_path):
    """Chapter 11's Trainer drives the classification task: the validation loss falls from
    about ln 10, a rerun with the same seeds ends with the same weights, and a checkpoint is
    written. (Resuming is not tested: helpers.checkpoint reads back only ModelConfig.)"""
    splits = {k: (v[0][:200], v[1][:200]) for k, v in load_digits_split().items()}
    task = ImageClassificationTask(splits, 10)
    config = TrainConfig(steps=40, batch_size=32, lr=3e-3, warmup_steps=5, eval_every=20, eval_batches=2,
                         device="cpu", progress=False, checkpoint_path=str(tmp_path / "vit.pt"))
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        runs.append(Trainer(VisionTransformer(small_config()), task, config).fit())
    history = runs[0].history
    assert history.val_loss[-1] < history.val_loss[0] < math.log(10) + 0.1
    for a, b in zip(runs[0].model.state_dict().values(), runs[1].model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    saved = torch.load(runs[0].checkpoint, weights_only=True)
    assert saved["model_config"] == small_config().to_dict() and saved["task"]["kind"] == "classification"
    predictions = predict(runs[0].model, splits["test"][0])
    assert predictions.shape == (200,) and predictions.dtype == torch.int64


def test_an_interrupted_vision_run_resumes_to_the_same_weights(tmp_path):
    # chapter 13's models have their own configuration class; the checkpoint reads it back
    from helpers.trainer import TrainConfig, Trainer, train
    from helpers.vision import ImageClassificationTask, VisionConfig, VisionTransformer, load_digits_split
    task = ImageClassificationTask(load_digits_split(), num_classes=10)
    config = TrainConfig(steps=6, batch_size=8, warmup_steps=2, eval_every=3, eval_batches=1, progress=False,
                         device="cpu", checkpoint_every=0, checkpoint_path=str(tmp_path / "vit.pt"))

    def model():
        torch.manual_seed(0)
        return VisionTransformer(VisionConfig(d_model=16, num_heads=2, num_layers=1, d_ff=32))

    full = train(model(), task, config)
    trainer = Trainer(model(), task, config)
    for _ in range(3):
        trainer.step()
    trainer.save()
    resumed = train(model(), task, config, resume=tmp_path / "vit.pt")
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
