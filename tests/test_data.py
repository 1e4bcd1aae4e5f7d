"""helpers.data: the three tasks, the download, the samplers."""
import datetime as dt
import functools
import hashlib
import http.server
import math
import threading
from collections import Counter

import numpy as np
import pytest
import torch

from helpers.data import (TextCorpus, DateTask, DownloadError, LMBatches, MarkovSource, PairBatches,
                          cardinal_words, date_in_words, download, entropy_rate, load_tiny_shakespeare,
                          ordinal_words, source_tokens, stationary_distribution, uniform_loss, year_words)


# ---------------------------------------------------------------- dates

def test_numbers_and_dates_in_words():
    assert [cardinal_words(n) for n in (0, 13, 20, 42, 99)] == ["zero", "thirteen", "twenty", "forty-two", "ninety-nine"]
    assert [ordinal_words(n) for n in (1, 2, 3, 12, 20, 23, 30, 31)] == [
        "first", "second", "third", "twelfth", "twentieth", "twenty-third", "thirtieth", "thirty-first"]
    assert [year_words(y) for y in (1950, 1984, 1900, 1905, 2000, 2007, 2026)] == [
        "nineteen fifty", "nineteen eighty-four", "nineteen hundred", "nineteen oh five", "two thousand",
        "two thousand seven", "two thousand twenty-six"]
    day = dt.date(2026, 11, 23)
    assert date_in_words(day) == "twenty-third of november two thousand twenty-six"
    assert date_in_words(day, 1) == "november twenty-third two thousand twenty-six"
    assert source_tokens("twenty-third of november") == ["twenty", "third", "of", "november"]
    with pytest.raises(ValueError, match="1..31"):
        ordinal_words(32)


@functools.lru_cache(maxsize=1)
def small_date_task():
    return DateTask(first_year=1990, last_year=1999, seed=7)


def test_date_splits_are_deterministic_disjoint_and_complete():
    a, b = small_date_task(), DateTask(first_year=1990, last_year=1999, seed=7)
    assert a.splits["test"].sources == b.splits["test"].sources
    dates = {name: set(p.targets) for name, p in a.splits.items()}
    assert not dates["train"] & dates["test"] and not dates["train"] & dates["val"] and not dates["val"] & dates["test"]
    n_days = (dt.date(1999, 12, 31) - dt.date(1990, 1, 1)).days + 1
    assert sum(len(s) for s in dates.values()) == n_days
    assert sum(len(p) for p in a.splits.values()) == 3 * n_days  # three wordings per date
    assert abs(len(dates["train"]) - 0.8 * n_days) <= 1
    other = DateTask(first_year=1990, last_year=1999, seed=8)
    assert other.splits["test"].targets != a.splits["test"].targets


def test_date_targets_are_iso_dates_of_their_sources():
    task = small_date_task()
    months = {m: i + 1 for i, m in enumerate(["january", "february", "march", "april", "may", "june", "july",
                                              "august", "september", "october", "november", "december"])}
    for src, tgt in zip(task.splits["val"].sources[:60], task.splits["val"].targets[:60]):
        d = dt.date.fromisoformat(tgt)
        assert [w for w in source_tokens(src) if w in months] == [next(m for m, i in months.items() if i == d.month)]
        assert src.endswith(year_words(d.year))
    src_ids, tgt_ids = task.tensors("val")
    assert tgt_ids.shape[1] == 12 and src_ids.shape[1] == task.max_src_len
    assert task.tgt_vocab.decode(tgt_ids[0].tolist()) == task.splits["val"].targets[0]
    words = task.src_vocab.decode(src_ids[0].tolist(), join=" ")
    assert words == " ".join(source_tokens(task.splits["val"].sources[0]))


# ---------------------------------------------------------------- Markov source

def test_two_state_chain_entropy_rate_by_hand():
    a, b = 0.2, 0.6
    P = np.array([[1 - a, a], [b, 1 - b]])
    pi = np.array([b, a]) / (a + b)          # solves pi P = pi
    np.testing.assert_allclose(stationary_distribution(P), pi, rtol=1e-12)

    def h(p):
        return -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert entropy_rate(P) == pytest.approx(pi[0] * h(a) + pi[1] * h(b), rel=1e-12)


def test_periodic_chain_is_refused():
    with pytest.raises(ValueError, match="irreducible and aperiodic"):
        stationary_distribution(np.array([[0.0, 1.0], [1.0, 0.0]]))


def test_markov_source_text_has_the_stated_statistics():
    source = MarkovSource()
    np.testing.assert_allclose(source.pi @ source.P, source.pi, atol=1e-12)
    assert 0 < source.entropy_rate < uniform_loss(len(source.alphabet)) == math.log(16)
    text = source.sample(100_000, seed=3)
    assert text == source.sample(100_000, seed=3)
    ids = np.array(source.vocab.encode(text))
    # empirical transition frequencies estimate P; their plug-in entropy estimates H
    counts = np.zeros_like(source.P)
    np.add.at(counts, (ids[:-1], ids[1:]), 1)
    assert np.all(counts[source.P == 0] == 0)  # only allowed transitions occur
    freq = counts / counts.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(freq, source.P, atol=0.05)
    empirical_pi = np.bincount(ids, minlength=16) / len(ids)
    np.testing.assert_allclose(empirical_pi, source.pi, atol=0.01)
    plug_in = -np.sum(counts / counts.sum() * np.log(np.where(freq > 0, freq, 1)))
    assert plug_in == pytest.approx(source.entropy_rate, abs=0.02)


# ---------------------------------------------------------------- download

class _Server:
    def __init__(self, payload: bytes):
        self.payload, self.hits = payload, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                if self.path != "/input.txt":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.payload)))
                self.end_headers()
                self.wfile.write(outer.payload)

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_download_checks_sha256_and_caches(tmp_path):
    text = "".join(MarkovSource().sample(5000, seed=1)) + "\nTo be, or not to be\n"
    payload = text.encode()
    digest = hashlib.sha256(payload).hexdigest()
    with _Server(payload) as server:
        loaded = load_tiny_shakespeare(data_dir=tmp_path, url=server.url + "/input.txt", sha256=digest)
        assert loaded == text and server.hits == 1
        again = load_tiny_shakespeare(data_dir=tmp_path, url=server.url + "/input.txt", sha256=digest)
        assert again == text and server.hits == 1  # read from the cache, not downloaded again

        wrong = "0" * 64
        target = tmp_path / "other" / "file.txt"
        with pytest.raises(DownloadError, match=f"has sha256 {digest}, expected {wrong}"):
            download(server.url + "/input.txt", target, wrong)
        assert not target.exists() and list(target.parent.iterdir()) == []  # nothing half-written left

        with pytest.raises(DownloadError, match="could not download"):
            download(server.url + "/missing.txt", target, digest)

    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "tinyshakespeare.txt").write_text("tampered")
    with pytest.raises(DownloadError, match="exists but its sha256"):
        load_tiny_shakespeare(data_dir=tmp_path / "bad", url="http://127.0.0.1:9/none", sha256=digest)


def test_local_path_is_read_without_download(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("hello world")
    assert load_tiny_shakespeare(path=path) == "hello world"
    with pytest.raises(FileNotFoundError, match="is not a file"):
        load_tiny_shakespeare(path=tmp_path / "nope.txt")


# ---------------------------------------------------------------- corpus and samplers

def test_char_corpus_round_trip_and_split():
    corpus = TextCorpus("abcabcabca", train_fraction=0.8)
    assert corpus.vocab.tokens == ["a", "b", "c"]
    assert corpus.vocab.decode(corpus.splits["train"].tolist()) == "abcabcab"
    assert corpus.vocab.decode(corpus.splits["val"].tolist()) == "ca"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        corpus.vocab.encode("abd")


def test_lm_batches_are_shifted_windows_and_resumable():
    ids = torch.arange(100)
    sampler = LMBatches(ids, batch_size=4, context=8, seed=0)
    x, y = next(sampler)
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(y, x + 1)  # ids are positions, so the target is the next one
    state = sampler.state_dict()
    expected = [next(sampler) for _ in range(3)]
    fresh = LMBatches(ids, batch_size=4, context=8, seed=99)
    fresh.load_state_dict(state)
    for (a, b), (c, d) in zip(expected, [next(fresh) for _ in range(3)]):
        assert torch.equal(a, c) and torch.equal(b, d)


def test_lm_batches_draw_every_valid_window_the_last_one_included():
    ids = torch.arange(30)                     # 30 tokens, context 8: starts 0..21 are valid
    sampler = LMBatches(ids, batch_size=64, context=8, seed=3)
    starts = torch.cat([next(sampler)[0][:, 0] for _ in range(40)])
    assert set(starts.tolist()) == set(range(22))
    targets = torch.cat([next(sampler)[1].flatten() for _ in range(40)])
    assert int(targets.max()) == 29            # the text's last token is a target too
    exact = LMBatches(torch.arange(9), batch_size=3, context=8)   # exactly context + 1 tokens: one window
    x, y = next(exact)
    assert torch.equal(x, torch.arange(8).expand(3, 8)) and torch.equal(y, torch.arange(1, 9).expand(3, 8))
    with pytest.raises(ValueError, match="fewer than context \\+ 1 = 9"):
        LMBatches(torch.arange(8), batch_size=3, context=8)


def test_pair_batches_cover_each_epoch_once_and_are_resumable():
    src, tgt = torch.arange(10)[:, None], torch.arange(10)[:, None] * 10
    sampler = PairBatches(src, tgt, batch_size=5, seed=0)
    seen = torch.cat([next(sampler)[0] for _ in range(2)]).flatten()
    assert sorted(seen.tolist()) == list(range(10))
    s, t = next(sampler)
    assert torch.equal(t, s * 10) and sampler.epoch == 1
    state = sampler.state_dict()
    expected = [next(sampler)[0] for _ in range(4)]
    fresh = PairBatches(src, tgt, batch_size=5, seed=5)
    fresh.load_state_dict(state)
    assert all(torch.equal(a, next(fresh)[0]) for a in expected)
