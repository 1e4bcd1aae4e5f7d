"""helpers.qa: span QA's loss and decoding on both backends against brute force and
F.cross_entropy, the generated facts, and the encoder with its span head."""
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import layers as L
from helpers.qa import (FactQA, SpanQAModel, SpanQATask, best_span, context_mask, exact_match,
                        masked_logits, span_loss)
from helpers.trainer import TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py



def best_by_brute_force(s, e, allowed, max_length):
    best, arg = -math.inf, None
    for i, j in itertools.product(range(len(s)), repeat=2):
        ok = i <= j and allowed[i] and allowed[j] and (max_length is None or j - i + 1 <= max_length)
        if ok and s[i] + e[j] > best:                                  # strict: the first maximum wins
            best, arg = s[i] + e[j], (i, j)
    return arg


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.one_of(st.none(), st.integers(1, 4)), st.integers(0, 10 ** 6))
def test_best_span_is_the_brute_force_maximum_on_both_backends(n, max_length, seed):
    rng = np.random.default_rng(seed)
    s, e = rng.normal(size=(3, n)), rng.normal(size=(3, n))
    allowed = rng.uniform(size=(3, n)) < 0.7
    allowed[:, 0] = True
    start, end = best_span(s, e, allowed, max_length)
    start_t, end_t = best_span(torch.tensor(s), torch.tensor(e), torch.tensor(allowed), max_length)
    for b in range(3):
        expected = best_by_brute_force(s[b], e[b], allowed[b], max_length)
        assert (int(start[b]), int(end[b])) == expected == (int(start_t[b]), int(end_t[b]))


def test_the_best_span_is_not_the_two_separate_maxima():
    s = np.array([[0.0, 5.0, 0.0, 0.0]])
    e = np.array([[3.0, 0.0, 0.0, 1.0]])            # argmax e = 0 lies before argmax s = 1
    start, end = best_span(s, e)
    assert (int(start[0]), int(end[0])) == (1, 3)


def test_best_span_refuses_rows_with_no_span_and_bad_shapes():
    with pytest.raises(ValueError, match="allows no span"):
        best_span(np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 3), dtype=bool))
    with pytest.raises(ValueError, match="both have shape"):
        best_span(np.zeros((1, 3)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="max_length"):
        best_span(np.zeros((1, 3)), np.zeros((1, 3)), max_length=0)


def test_span_loss_is_two_cross_entropies_on_both_backends(rng):
    s, e = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    start, end = np.array([0, 2, 5, 3]), np.array([1, 2, 5, 4])
    by_hand = (np.mean([-(s[b, start[b]] - np.log(np.exp(s[b]).sum())) for b in range(4)])
               + np.mean([-(e[b, end[b]] - np.log(np.exp(e[b]).sum())) for b in range(4)]))
    assert math.isclose(span_loss(s, e, start, end), by_hand, rel_tol=1e-12)
    ts, te, tstart, tend = (torch.tensor(a) for a in (s, e, start, end))
    assert math.isclose(float(span_loss(ts, te, tstart, tend)), by_hand, rel_tol=1e-12)
    assert math.isclose(float(F.cross_entropy(ts, tstart) + F.cross_entropy(te, tend)), by_hand, rel_tol=1e-12)
    with pytest.raises(ValueError, match="start must have shape"):
        span_loss(s, e, start[:2], end)


def test_masked_positions_get_no_probability_and_no_gradient(rng):
    logits = torch.tensor(rng.normal(size=(2, 5)), requires_grad=True)
    allowed = torch.tensor([[False, True, True, False, True], [True, True, False, False, False]])
    loss = span_loss(masked_logits(logits, allowed), masked_logits(logits, allowed),
                     torch.tensor([1, 0]), torch.tensor([4, 1]))
    loss.backward()
    assert torch.isfinite(loss) and (logits.grad[~allowed] == 0).all() and (logits.grad[allowed] != 0).all()


def test_exact_match_counts_both_ends():
    assert exact_match(np.array([1, 2, 3]), np.array([2, 2, 5]), np.array([1, 2, 3]), np.array([2, 3, 5])) == 2 / 3


def test_generated_facts_state_the_answer_and_encode_it_where_it_is():
    facts = FactQA()
    examples = facts.examples(300, seed=5)
    tokens, spans = facts.encode(examples)
    sep = facts.ids["[SEP]"]
    for ex, row, (first, last) in zip(examples, tokens, spans.tolist()):
        words = facts.decode(row)
        assert words[0] == "[CLS]" and words[len(ex.question) + 1] == "[SEP]"
        assert " ".join(words[first:last + 1]) == ex.answer
        assert context_mask(row[None], sep)[0, first:last + 1].all()
        sentences = [s.rstrip(" .") for s in " ".join(ex.context).split(" . ")]
        if ex.question[0] == "where":                                 # "where is the red box ?"
            thing = " ".join(ex.question[2:5])
            assert [s for s in sentences if s.startswith(thing)] == [f"{thing} is {ex.answer}"]
        else:                                                         # "what is under the bed ?"
            place = " ".join(ex.question[2:-1])
            matching = [s for s in sentences if s.endswith(f"is {place}")]
            assert len(matching) == 1 and matching[0].startswith(ex.answer)
    kinds = {ex.question[0] for ex in examples}
    assert kinds == {"where", "what"}
    assert {len(" ".join(ex.context).split(" . ")) for ex in examples} == {2, 3, 4}
    assert tokens.shape[1] == facts.max_len and (tokens != 0).sum(1).max() <= facts.max_len


def test_the_model_is_chapter_7_encoder_with_a_span_head(rng):
    torch.manual_seed(0)
    task = SpanQATask(sizes={"train": 64, "val": 16, "test": 16})
    model = SpanQAModel(task.model_config(d_model=16, num_heads=2, num_layers=1, kernels="math")).double().eval()
    tokens = task.tensors["val"][0][:4]
    with torch.no_grad():
        x = model.positions(model.embed(tokens))
        h = L.encoder(x, [layer.params() for layer in model.layers], (tokens != 0)[:, None, :], norm="pre",
                      final_norm=model.final_norm.params(), num_heads=2, eps=1e-6,
                      options=L.LayerOptions(ffn="gelu"))
        s, e = model(tokens)
        torch.testing.assert_close(s, h @ model.span["w"][:, 0] + model.span["b"][0], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(e, h @ model.span["w"][:, 1] + model.span["b"][1], rtol=1e-12, atol=1e-12)
    rotary = SpanQAModel(task.model_config(d_model=16, num_heads=2, num_layers=1, positions="rotary"))
    assert not any("positions" in name for name, _ in rotary.named_parameters())


def test_training_lowers_the_loss_and_predictions_stay_in_the_context():
    task = SpanQATask(FactQA(2, 2), sizes={"train": 512, "val": 64, "test": 64})
    torch.manual_seed(0)
    model = SpanQAModel(task.model_config(d_model=32, num_heads=2, num_layers=1, positions="rotary"))
    result = Trainer(model, task, TrainConfig(steps=60, batch_size=32, lr=3e-3, warmup_steps=5, eval_every=30,
                                              eval_batches=2, device="cpu", progress=False)).fit()
    assert result.history.val_loss[-1] < result.history.val_loss[0]
    tokens, spans = task.tensors["test"]
    start, end = task.predict(model, tokens, max_length=5)
    allowed = context_mask(tokens, task.sep_id)
    assert (start <= end).all() and (end - start < 5).all()
    assert allowed[torch.arange(64), start].all() and allowed[torch.arange(64), end].all()


def test_the_span_model_and_its_config_refuse_bad_input():
    task = SpanQATask(sizes={"train": 8, "val": 8, "test": 8})
    model = SpanQAModel(task.model_config(d_model=16, num_heads=2, num_layers=1))
    with pytest.raises(TypeError, match="integer tensor"):
        model(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="positions must be 'learned' or 'rotary'"):
        task.model_config(positions="sinusoidal")
    with pytest.raises(ValueError, match="min_facts"):
        FactQA(3, 2)
