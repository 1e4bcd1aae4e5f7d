"""helpers.generate: token-by-token decoding, sampling, and the KV cache."""
import math

import pytest
import torch

from helpers.generate import (greedy_decode, greedy_translate, next_token_probabilities, sample,
                              sample_text, top_k_filter)
from helpers.data import Vocabulary
from helpers.model import ModelConfig, build_model


def lm(**kw):
    torch.manual_seed(0)
    values = dict(vocab_size=7, d_model=16, num_heads=2, num_layers=2, d_ff=32, max_len=16)
    values.update(kw)
    return build_model(ModelConfig(**values)).double().eval()


def seq2seq(**kw):
    torch.manual_seed(1)
    values = dict(kind="encoder-decoder", vocab_size=8, src_vocab_size=10, d_model=16, num_heads=2,
                  num_layers=2, d_ff=32, max_len=12)
    values.update(kw)
    return build_model(ModelConfig(**values)).double().eval()


@pytest.mark.parametrize("attention", ["math", "fused"])
@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_cached_forward_equals_full_forward(attention, positions):
    model = lm(attention=attention, positions=positions)
    tokens = torch.randint(0, 7, (3, 11))
    full = model(tokens)
    cache = model.new_cache()
    parts = [model(tokens[:, :4], cache=cache)]  # a prompt of 4, then one token at a time
    parts += [model(tokens[:, i:i + 1], cache=cache) for i in range(4, 11)]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=1e-10, atol=1e-10)
    assert cache[0]["self"]["k"].shape == (3, 2, 11, 8)


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


@pytest.mark.parametrize("attention", ["math", "fused"])
def test_greedy_decode_cached_equals_uncached_and_is_token_by_token_argmax(attention):
    model = seq2seq(attention=attention)
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
