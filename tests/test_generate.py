"""helpers.generate: token-by-token decoding, sampling, beam search, and the KV cache."""
import itertools
import math

import pytest
import torch

from helpers.generate import (beam_search, beam_search_translate, greedy_decode, greedy_translate,
                              length_penalty, next_token_probabilities, sample, sample_text,
                              sequence_log_probability, top_k_filter)
from helpers.model import ModelConfig, build_model
from helpers.tokenizers import Vocabulary


def trained_looking(model, seed):
    """An untrained model predicts almost uniformly (chapter 11); perturb every parameter so
    that its distributions have clear preferences, as a trained model's do."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def lm(**kw):
    torch.manual_seed(0)
    values = dict(vocab_size=7, d_model=16, num_heads=2, num_layers=2, d_ff=32, max_len=16)
    values.update(kw)
    return trained_looking(build_model(ModelConfig(**values)).double().eval(), 0)


def seq2seq(**kw):
    torch.manual_seed(1)
    values = dict(kind="encoder-decoder", vocab_size=8, src_vocab_size=10, d_model=16, num_heads=2,
                  num_layers=2, d_ff=32, max_len=12)
    values.update(kw)
    return trained_looking(build_model(ModelConfig(**values)).double().eval(), 1)


@pytest.mark.parametrize("kernels", ["math", "fused"])
@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rotary"])
def test_cached_forward_equals_full_forward(kernels, positions):
    model = lm(kernels=kernels, positions=positions)
    tokens = torch.randint(0, 7, (3, 11))
    full = model(tokens)
    cache = model.new_cache()
    parts = [model(tokens[:, :4], cache=cache)]  # a prompt of 4, then one token at a time
    parts += [model(tokens[:, i:i + 1], cache=cache) for i in range(4, 11)]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=1e-10, atol=1e-10)
    assert cache["layers"][0]["self_attn"]["k"].shape == (3, 2, 11, 8) and cache["length"] == 11


def test_sampling_with_and_without_cache_gives_the_same_text():
    model = lm()
    prompt = torch.randint(0, 7, (2, 3))
    for kwargs in (dict(temperature=0), dict(temperature=0.8), dict(temperature=1.3, top_k=3)):
        a = sample(model, prompt, 20, generator=torch.Generator().manual_seed(5), use_cache=True, **kwargs)
        b = sample(model, prompt, 20, generator=torch.Generator().manual_seed(5), use_cache=False, **kwargs)
        assert torch.equal(a, b) and a.shape == (2, 23) and torch.equal(a[:, :3], prompt)


def test_sampling_past_max_len_slides_the_window():
    model = lm(max_len=8)
    prompt = torch.randint(0, 7, (1, 2))
    a = sample(model, prompt, 15, temperature=0, use_cache=True)
    b = sample(model, prompt, 15, temperature=0, use_cache=False)
    assert torch.equal(a, b) and a.shape == (1, 17)
    # the last token is the argmax given the 8 tokens before it
    assert int(model(a[:, -9:-1])[0, -1].argmax()) == int(a[0, -1])


def test_greedy_sampling_follows_the_argmax():
    model = lm()
    out = sample(model, torch.tensor([[1, 2]]), 6, temperature=0)
    logits = model(out[:, :-1])
    assert torch.equal(logits[0, 1:].argmax(-1), out[0, 2:])


def test_sampled_token_frequencies_match_the_probabilities():
    model = lm()
    prompt = torch.tensor([[3, 1, 4]]).repeat(4000, 1)
    out = sample(model, prompt, 1, temperature=1.5, generator=torch.Generator().manual_seed(0))
    probs = torch.softmax(model(prompt[:1])[0, -1] / 1.5, dim=-1)
    freq = torch.bincount(out[:, -1], minlength=7).double() / 4000
    torch.testing.assert_close(freq, probs, atol=0.03, rtol=0)


def test_next_token_probabilities_temperature_and_top_k():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0, 3.0]])
    torch.testing.assert_close(next_token_probabilities(logits, 0.5), torch.softmax(logits / 0.5, -1))
    top2 = next_token_probabilities(logits, 1.0, top_k=2)
    expected = torch.zeros(1, 5)
    expected[0, [0, 4]] = torch.softmax(torch.tensor([2.0, 3.0]), -1)
    torch.testing.assert_close(top2, expected)
    cold = next_token_probabilities(logits, 1e-3)
    torch.testing.assert_close(cold, torch.tensor([[0.0, 0, 0, 0, 1]]))
    flat = next_token_probabilities(logits, 1e4)
    torch.testing.assert_close(flat, torch.full((1, 5), 0.2), atol=1e-3, rtol=0)
    assert torch.equal(torch.isinf(top_k_filter(logits, 3)), torch.tensor([[False, False, True, True, False]]))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        next_token_probabilities(logits, 0.0)
    with pytest.raises(ValueError, match="k must be an integer in 1..5"):
        top_k_filter(logits, 6)


@pytest.mark.parametrize("kernels", ["math", "fused"])
def test_greedy_decode_cached_equals_uncached_and_is_token_by_token_argmax(kernels):
    model = seq2seq(kernels=kernels)
    src = torch.randint(1, 10, (4, 6))
    src[2, 3:] = 0
    a = greedy_decode(model, src, bos_id=1, eos_id=2, max_len=9, use_cache=True)
    b = greedy_decode(model, src, bos_id=1, eos_id=2, max_len=9, use_cache=False)
    assert torch.equal(a, b) and torch.all(a[:, 0] == 1)
    logits = model(src, a[:, :-1])  # teacher forcing on the decoded sequence
    for row in range(4):
        ids = a[row].tolist()
        end = ids.index(2) if 2 in ids else len(ids) - 1
        assert logits[row, :end].argmax(-1).tolist() == ids[1:end + 1]


def test_greedy_translate_cuts_at_eos_and_decodes():
    model = seq2seq()
    vocab = Vocabulary(list("abcde"), specials=("<pad>", "<bos>", "<eos>"))
    src = torch.randint(1, 10, (6, 5))
    ids = greedy_decode(model, src, bos_id=1, eos_id=2, max_len=7).tolist()
    out = greedy_translate(model, src, vocab, max_len=7)
    for row, text in zip(ids, out):
        body = row[1:row.index(2)] if 2 in row else row[1:]
        assert text == "".join("abcde"[i - 3] for i in body if i > 2)  # ids 3.. are a..e


def test_sample_text_round_trip():
    model = lm()
    vocab = Vocabulary(list("abcdefg"))
    text = sample_text(model, vocab, "abc", 10, temperature=0.7, generator=torch.Generator().manual_seed(0))
    assert text.startswith("abc") and len(text) == 13
    with pytest.raises(ValueError, match="at least one character"):
        sample_text(model, vocab, "", 3)


# ---------------------------------------------------------------- beam search

def tiny_translator():
    """V = 4 (<pad>, <bos>, <eos>, one more), max_len 5: few enough hypotheses to list them all."""
    torch.manual_seed(3)
    model = build_model(ModelConfig(kind="encoder-decoder", vocab_size=4, src_vocab_size=10, d_model=16,
                                    num_heads=2, num_layers=2, d_ff=32, max_len=6)).double().eval()
    return trained_looking(model, 4)


def all_hypotheses(vocab, max_len, eos):
    """Every Y = y_1..y_m after <bos>: ending at the first <eos>, or cut at max_len - 1 tokens."""
    for m in range(1, max_len):
        for seq in itertools.product(range(vocab), repeat=m):
            if eos in seq[:-1] or (seq[-1] != eos and m != max_len - 1):
                continue
            yield [1, *seq] + [0] * (max_len - 1 - m)


@pytest.mark.parametrize("kernels", ["math", "fused"])
def test_a_beam_of_one_is_greedy_decoding(kernels):
    model = seq2seq(kernels=kernels)
    src = torch.randint(1, 10, (6, 5))
    src[1, 3:] = 0
    tokens, scores = beam_search(model, src, bos_id=1, eos_id=2, beam_size=1, max_len=9)
    assert torch.equal(tokens[:, 0], greedy_decode(model, src, bos_id=1, eos_id=2, max_len=9))


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_a_beam_as_wide_as_all_hypotheses_is_exhaustive_search(alpha):
    model, max_len = tiny_translator(), 5
    src = torch.randint(1, 10, (4, 6), generator=torch.Generator().manual_seed(2))
    hypotheses = torch.tensor(list(all_hypotheses(4, max_len, eos=2)))          # (H, max_len)
    tokens, scores = beam_search(model, src, 1, 2, beam_size=len(hypotheses), max_len=max_len, alpha=alpha)
    for b in range(len(src)):
        logp, length = sequence_log_probability(model, src[b:b + 1].expand(len(hypotheses), -1), hypotheses, eos_id=2)
        normalised = logp / length_penalty(length.double(), alpha)
        best = int(normalised.argmax())
        assert tokens[b, 0].tolist() == hypotheses[best].tolist()
        assert math.isclose(float(scores[b, 0]), float(normalised[best]), rel_tol=1e-6)
        # prunes nothing: every hypothesis ends in the beam, in the order of its score
        torch.testing.assert_close(scores[b], normalised.sort(descending=True).values.float(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("beam_size", [2, 4])
def test_scores_are_the_normalised_log_probabilities_of_the_sequences(beam_size):
    model = seq2seq()
    src = torch.randint(1, 10, (5, 6))
    tokens, scores = beam_search(model, src, 1, 2, beam_size=beam_size, max_len=9, alpha=0.6)
    for j in range(beam_size):
        logp, length = sequence_log_probability(model, src, tokens[:, j], eos_id=2)
        torch.testing.assert_close(scores[:, j], (logp / length_penalty(length.double(), 0.6)).float(),
                                   rtol=1e-5, atol=1e-6)
    assert torch.all(scores[:, :-1] >= scores[:, 1:])          # best first


@pytest.mark.parametrize("kernels", ["math", "fused"])
def test_cached_and_uncached_beam_search_return_the_same_beams(kernels):
    model = seq2seq(kernels=kernels)
    src = torch.randint(1, 10, (5, 6))
    src[0, 4:] = 0
    a, sa = beam_search(model, src, 1, 2, beam_size=3, max_len=9, use_cache=True)
    b, sb = beam_search(model, src, 1, 2, beam_size=3, max_len=9, use_cache=False)
    assert torch.equal(a, b)
    torch.testing.assert_close(sa, sb, rtol=1e-6, atol=1e-7)


def test_beam_search_translate_and_bad_beam():
    model = seq2seq()
    vocab = Vocabulary(list("abcde"), specials=("<pad>", "<bos>", "<eos>"))
    src = torch.randint(1, 10, (6, 5))
    assert beam_search_translate(model, src, vocab, beam_size=1, max_len=7) == greedy_translate(model, src, vocab, max_len=7)
    with pytest.raises(ValueError, match="beam_size must be a positive integer"):
        beam_search(model, src, 1, 2, beam_size=0)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        length_penalty(3, -1.0)
