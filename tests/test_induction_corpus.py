"""helpers.data.InductionCorpus: the copy corpus of chapter 11, its exact entropies and its task interface.

The exact conditional entropies are checked against a brute-force enumeration of every
sequence of small corpora (each equally likely), which knows nothing of the closed form.
"""
import itertools
import math
from collections import defaultdict

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import helpers
from helpers.data import InductionCorpus
from helpers.model import build_model
from helpers.trainer import TrainConfig, Trainer


def enumerated_entropies(v, m, k):
    """H(x_t | x_<t) for t = 1..n-1 by listing every (prefix, offset), all equally likely."""
    sequences = [prefix + prefix[r:r + k] for prefix in itertools.permutations(range(v), m)
                 for r in range(m - k + 1)]
    n = m + k
    out = []
    for t in range(1, n):
        by_history = defaultdict(lambda: defaultdict(int))
        for s in sequences:
            by_history[s[:t]][s[t]] += 1
        total = len(sequences)
        h = 0.0
        for nexts in by_history.values():
            count = sum(nexts.values())
            h -= sum(c / total * math.log(c / count) for c in nexts.values())
        out.append(h)
    return np.array(out)


@pytest.mark.parametrize("v, m, k", [(4, 3, 2), (5, 3, 1), (4, 4, 4), (5, 4, 2), (3, 2, 2)])
def test_entropies_equal_a_brute_force_enumeration(v, m, k):
    corpus = InductionCorpus(symbols="abcde"[:v], prefix_length=m, copy_length=k)
    np.testing.assert_allclose(corpus.position_entropies(), enumerated_entropies(v, m, k), rtol=1e-12, atol=1e-12)
    assert math.isclose(corpus.entropy_rate, enumerated_entropies(v, m, k).mean(), rel_tol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 60), st.data())
def test_sequences_are_a_distinct_prefix_and_a_contiguous_copy(v, data):
    m = data.draw(st.integers(2, v))
    k = data.draw(st.integers(1, m))
    symbols = "".join(chr(0x100 + i) for i in range(v))
    corpus = InductionCorpus(symbols=symbols, prefix_length=m, copy_length=k, seed=3)
    seqs = corpus.sequences(50, torch.Generator().manual_seed(data.draw(st.integers(0, 10 ** 6)))).numpy()
    assert seqs.shape == (50, m + k) and seqs.min() >= 0 and seqs.max() < v
    for row in seqs:
        prefix, copy = list(row[:m]), row[m:]
        assert len(set(prefix)) == m
        r = prefix.index(copy[0])
        assert 0 <= r <= m - k and list(copy) == prefix[r:r + k]
    h = corpus.position_entropies()
    assert h.shape == (m + k - 1,) and np.all(h[m:] == 0) and np.all(h >= 0)


def test_offsets_and_prefix_symbols_are_uniform():
    corpus = InductionCorpus(symbols="abcdefgh", prefix_length=6, copy_length=3)
    seqs = corpus.sequences(40_000, torch.Generator().manual_seed(0)).numpy()
    offsets = np.array([list(row[:6]).index(row[6]) for row in seqs])
    np.testing.assert_allclose(np.bincount(offsets) / len(offsets), 1 / 4, atol=0.01)
    np.testing.assert_allclose(np.bincount(seqs[:, 0], minlength=8) / len(seqs), 1 / 8, atol=0.01)
    # given the first symbol, the second is uniform over the other 7: ln 7 nats
    first_b = seqs[seqs[:, 0] == 1, 1]
    freq = np.bincount(first_b, minlength=8) / len(first_b)
    assert freq[1] == 0 and np.allclose(np.delete(freq, 1), 1 / 7, atol=0.03)


def test_samples_are_seeded_strings_of_the_alphabet():
    corpus = InductionCorpus(prefix_length=5, copy_length=4)
    a, b = corpus.sample(3, seed=1), corpus.sample(3, seed=1)
    assert a == b and a != corpus.sample(3, seed=2)
    assert all(len(s) == 9 and set(s) <= set("abcdefghijklmnopqrstuvwxyz") for s in a)
    assert all(s[5:] in s[:5] for s in a)


def test_sampler_state_round_trip_and_eval_batches_are_fixed():
    corpus = InductionCorpus(prefix_length=8, copy_length=6, seed=4)
    sampler = corpus.sampler(16, seed=0)
    next(sampler)
    state = sampler.state_dict()
    x1, y1 = next(sampler)
    sampler.load_state_dict(state)
    x2, y2 = next(sampler)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert x1.shape == y1.shape == (16, 13) and torch.equal(x1[:, 1:], y1[:, :-1])
    val = corpus.eval_batches("val", 8, 3, seed=1)
    again = corpus.eval_batches("val", 8, 3, seed=1)
    assert len(val) == 3 and all(torch.equal(a[0], b[0]) for a, b in zip(val, again))
    assert not torch.equal(val[0][0], corpus.eval_batches("test", 8, 1, seed=1)[0][0])
    assert not torch.equal(val[0][0], InductionCorpus(prefix_length=8, copy_length=6, seed=5)
                           .eval_batches("val", 8, 1, seed=1)[0][0])


def test_task_interface_trains_with_the_trainer():
    corpus = InductionCorpus(prefix_length=6, copy_length=4)
    config = corpus.model_config(d_model=16, num_heads=2, num_layers=1)
    assert config.vocab_size == 26 and config.max_len == corpus.context == 9
    torch.manual_seed(0)
    model = build_model(config)
    batch = next(corpus.sampler(4, seed=0))
    expected = helpers.cross_entropy(model(batch[0]), batch[1])
    torch.testing.assert_close(corpus.loss(model, batch), expected)
    assert corpus.tokens_in(batch) == 4 * 9
    result = Trainer(model, corpus, TrainConfig(steps=3, batch_size=4, eval_every=3, eval_batches=1,
                                                device="cpu", progress=False)).fit()
    assert result.step == 3 and len(result.history.val_loss) == 1
    assert corpus.describe()["prefix_length"] == 6 and corpus.describe()["kind"] == "decoder"


@pytest.mark.parametrize("kwargs, match", [
    (dict(symbols="aab"), "symbols"), (dict(symbols="a"), "symbols"), (dict(symbols=["a", "b"]), "symbols"),
    (dict(prefix_length=27), "prefix_length"), (dict(prefix_length=1), "prefix_length"),
    (dict(prefix_length=5, copy_length=6), "copy_length"), (dict(copy_length=0), "copy_length"),
    (dict(seed=-1), "seed"), (dict(prefix_length=2.5), "prefix_length")])
def test_bad_arguments_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InductionCorpus(**kwargs)


def test_bad_count_and_split_are_refused_by_name():
    corpus = InductionCorpus()
    with pytest.raises(ValueError, match="count"):
        corpus.sequences(0, torch.Generator())
    with pytest.raises(ValueError, match="split"):
        corpus.eval_batches("dev", 2, 1)
