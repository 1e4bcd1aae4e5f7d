"""helpers.contrastive: CLIP's symmetric loss on both backends against F.cross_entropy and a
loop over pairs, its gradient, recall@k, captions, and the two-encoder model."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import layers as L
from helpers.contrastive import (HELD_OUT_TEMPLATES, TRAIN_TEMPLATES, ContrastiveConfig,
                                 ContrastiveModel, ContrastiveTask, TextConfig, TextEncoder, caption,
                                 caption_tokenizer, contrastive_loss, encode_captions, normalize_rows,
                                 recall_at_k, similarity_logits, symmetric_cross_entropy)
from helpers.trainer import TrainConfig, Trainer
from helpers.vision import VisionConfig, load_digits_split

pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py



def loss_by_loops(image_emb, text_emb, scale):
    """The mean over pairs of -log p(text i | image i) and -log p(image i | text i), by hand."""
    n = len(image_emb)
    unit = lambda v: v / math.sqrt(sum(x * x for x in v))
    ims, txt = [unit(v) for v in image_emb], [unit(v) for v in text_emb]
    s = [[scale * float(np.dot(ims[i], txt[j])) for j in range(n)] for i in range(n)]
    rows = sum(-s[i][i] + math.log(sum(math.exp(s[i][j]) for j in range(n))) for i in range(n)) / n
    cols = sum(-s[j][j] + math.log(sum(math.exp(s[i][j]) for i in range(n))) for j in range(n)) / n
    return (rows + cols) / 2


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 7), st.integers(1, 6), st.floats(0.1, 50.0), st.integers(0, 10 ** 6))
def test_contrastive_loss_by_hand_on_both_backends_and_as_two_torch_cross_entropies(n, d, scale, seed):
    rng = np.random.default_rng(seed)
    image_emb, text_emb = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    expected = loss_by_loops(image_emb, text_emb, scale)
    assert math.isclose(contrastive_loss(image_emb, text_emb, scale), expected, rel_tol=1e-9, abs_tol=1e-12)
    ti, tt = torch.tensor(image_emb), torch.tensor(text_emb)
    assert math.isclose(float(contrastive_loss(ti, tt, scale)), expected, rel_tol=1e-9, abs_tol=1e-12)
    logits = scale * F.normalize(ti, dim=1) @ F.normalize(tt, dim=1).T
    target = torch.arange(n)
    by_torch = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    assert math.isclose(float(by_torch), expected, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(float(contrastive_loss(ti, tt, torch.tensor(scale, dtype=torch.float64), fused=True)),
                        expected, rel_tol=1e-9, abs_tol=1e-12)


def test_the_loss_ignores_the_lengths_of_the_embeddings(rng):
    a, b = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    lengths = rng.uniform(0.1, 10, size=(5, 1))
    assert math.isclose(contrastive_loss(a * lengths, b, 7.0), contrastive_loss(a, b, 7.0), rel_tol=1e-12)


def test_perfectly_matched_pairs_have_loss_falling_to_zero_and_random_ones_ln_n(rng):
    eye = np.eye(6)
    losses = [contrastive_loss(eye, eye, s) for s in (1.0, 10.0, 100.0)]
    assert losses[0] > losses[1] > losses[2] and losses[2] < 1e-40
    assert math.isclose(contrastive_loss(np.ones((6, 3)), np.ones((6, 3)), 10.0), math.log(6), rel_tol=1e-12)


def test_gradient_with_respect_to_the_similarities_is_softmax_minus_identity(rng):
    """dL/dS = ((softmax over each row - I) + (softmax over each column - I)) / (2N)."""
    s = torch.tensor(rng.normal(size=(5, 5)) * 3, requires_grad=True)
    symmetric_cross_entropy(s).backward()
    eye = torch.eye(5, dtype=torch.float64)
    expected = ((torch.softmax(s, 1) - eye) + (torch.softmax(s, 0) - eye)) / 10
    torch.testing.assert_close(s.grad, expected.detach(), rtol=1e-12, atol=1e-12)


def test_gradcheck_through_the_embeddings_and_the_scale(rng):
    a = torch.tensor(rng.normal(size=(4, 3)), requires_grad=True)
    b = torch.tensor(rng.normal(size=(4, 3)), requires_grad=True)
    s = torch.tensor(5.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(contrastive_loss, (a, b, s))


def test_similarity_logits_are_scaled_cosines(rng):
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(5, 4))
    cosines = np.array([[x @ y / np.linalg.norm(x) / np.linalg.norm(y) for y in b] for x in a])
    np.testing.assert_allclose(similarity_logits(a, b, 2.5), 2.5 * cosines, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(normalize_rows(a), axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(normalize_rows(np.zeros((1, 3))), np.zeros((1, 3)))


def test_bad_input_is_refused_by_name(rng):
    a = rng.normal(size=(3, 4))
    with pytest.raises(ValueError, match="same number N of pairs"):
        contrastive_loss(a, rng.normal(size=(2, 4)), 1.0)
    with pytest.raises(ValueError, match="same space"):
        similarity_logits(a, rng.normal(size=(3, 5)), 1.0)
    with pytest.raises(ValueError, match="logit_scale must be > 0"):
        similarity_logits(a, a, 0.0)
    with pytest.raises(ValueError, match="0-d array"):
        similarity_logits(a, a, np.ones(2))
    with pytest.raises(TypeError, match="mix NumPy and torch"):
        similarity_logits(a, torch.tensor(a), 1.0)
    with pytest.raises(ValueError, match="square"):
        symmetric_cross_entropy(rng.normal(size=(2, 3)))


def test_recall_at_k_by_hand():
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.1], [0.5, 0.5, 0.0]])
    relevant = np.array([[False, False, True], [True, False, False], [False, True, False]])
    # query 0 ranks items 0, 2, 1; query 1 ranks 1, 0, 2; query 2 ranks 0, 1 (tie: smaller index first), 2
    assert recall_at_k(scores, relevant, 1) == 0.0
    assert recall_at_k(scores, relevant, 2) == 1.0
    assert recall_at_k(torch.tensor(scores), torch.tensor(relevant), 2) == 1.0
    with pytest.raises(ValueError, match="k must be an integer in 1..3"):
        recall_at_k(scores, relevant, 4)


def test_captions_and_their_tokens():
    assert caption(7, "a handwritten {word}") == "a handwritten seven"
    assert caption(7, "the digit {numeral}") == "the digit 7"
    assert caption(8, "a photo of {article} {word}") == "a photo of an eight"
    assert not set(TRAIN_TEMPLATES) & set(HELD_OUT_TEMPLATES)
    tok = caption_tokenizer()
    assert tok.ids["<pad>"] == 0
    ids = encode_captions(tok, ["a 7", "seven"], 8)
    assert ids.shape == (2, 8) and (ids[0, 3:] == 0).all() and (ids[1, :5] != 0).all()
    assert tok.decode(ids[1, :5].tolist()) == "seven"
    with pytest.raises(ValueError, match="more than length"):
        encode_captions(tok, ["a handwritten seven"], 5)
    with pytest.raises(ValueError, match="digit"):
        caption(10, "{word}")


def test_the_text_encoder_ignores_padding_and_averages_real_characters(rng):
    torch.manual_seed(0)
    config = TextConfig(vocab_size=40, max_len=12, d_model=16, num_heads=2, num_layers=1, kernels="math")
    encoder = TextEncoder(config).double().eval()
    short = torch.tensor([[5, 9, 3, 0, 0, 0]])
    longer = torch.tensor([[5, 9, 3, 0, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        torch.testing.assert_close(encoder(short), encoder(longer), rtol=1e-12, atol=1e-12)
        x = encoder.positions(encoder.embed(short[:, :3]))
        params = [layer.params() for layer in encoder.layers]
        h = L.encoder(x, params, norm="pre", final_norm=encoder.final_norm.params(), num_heads=2, eps=1e-6,
                      options=L.LayerOptions(ffn="gelu"))
        torch.testing.assert_close(encoder(short), h.mean(1), rtol=1e-12, atol=1e-12)


def test_a_few_training_steps_lower_the_loss_and_the_model_is_two_encoders():
    splits = {k: v for k, v in load_digits_split().items()}
    task = ContrastiveTask(splits)
    batch = next(task.sampler(10, seed=0))
    images, tokens = batch
    assert images.shape == (10, 8, 8) and tokens.shape == (10, 32)
    digits = [int(splits["train"][1][torch.nonzero((splits["train"][0] == im).all(-1).all(-1))[0, 0]])
              for im in images]
    assert digits == list(range(10))                                    # one image of each digit, in order
    for d in range(10):
        text = task.tokenizer.decode([t for t in tokens[d].tolist() if t != 0])
        assert text in [caption(d, t) for t in TRAIN_TEMPLATES]
    with pytest.raises(ValueError, match="batch_size must be 10"):
        task.sampler(16, seed=0)
    torch.manual_seed(0)
    config = ContrastiveConfig(VisionConfig(d_model=16, num_heads=2, num_layers=1, num_classes=None),
                               TextConfig(task.tokenizer.vocab_size, d_model=16, num_heads=2, num_layers=1),
                               embed_dim=8)
    model = ContrastiveModel(config)
    assert math.isclose(float(model.logit_scale.detach()), 1 / 0.07, rel_tol=1e-6)
    image_emb, text_emb = model(images, tokens)
    assert image_emb.shape == text_emb.shape == (10, 8)
    result = Trainer(model, task, TrainConfig(steps=60, batch_size=10, lr=3e-3, warmup_steps=5, eval_every=30,
                                              eval_batches=4, device="cpu", progress=False)).fit()
    assert result.history.val_loss[-1] < result.history.val_loss[0] < math.log(10) + 1.0
    with pytest.raises(ValueError, match="num_classes=None"):
        ContrastiveConfig(VisionConfig(), config.text)


def test_the_text_encoder_refuses_float_tokens():
    encoder = TextEncoder(TextConfig(vocab_size=10, d_model=8, num_heads=2, num_layers=1))
    with pytest.raises(TypeError, match="integer tensor"):
        encoder(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="num_heads=3 must divide d_model=8"):
        TextConfig(vocab_size=10, d_model=8, num_heads=3)
