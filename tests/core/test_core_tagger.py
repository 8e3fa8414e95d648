"""spacy_aner.core.tagger: windows over long sequences, batching, predict() and tag() (entity probabilities)
on the tiny models."""
from __future__ import annotations

import random

import numpy as np
import pytest
from aner_support import WORDS, random_words
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_aner.core.crf import forward_backward_batch, span_probabilities
from spacy_aner.core.tagger import make_windows
from spacy_aner.core.tags import TAGS, bio_to_spans

# --------------------------------------------------------------------------- make_windows

WINDOW_PARAMS = [(1, 0), (2, 0), (3, 1), (5, 2), (8, 0), (9, 4), (16, 3), (32, 4), (33, 16), (128, 16)]


def check_windows(n: int, size: int, context: int) -> None:
    windows = make_windows(n, size, context)
    assert windows, "at least one window"
    if n == 0:
        assert windows == [(0, 0, 0, 0)]
        return
    covered = []
    for k, (start, end, cs, ce) in enumerate(windows):
        assert 0 <= start <= cs < ce <= end <= n, windows[k]
        assert end - start <= size
        # As much context as exists, up to ``context`` tokens, on either side of the core.
        assert cs - start == min(context, cs), (k, windows[k])
        assert end - ce == min(context, n - ce), (k, windows[k])
        covered.extend(range(cs, ce))
    assert covered == list(range(n)), "cores tile [0, n) exactly, in order"
    if n <= size:
        assert windows == [(0, n, 0, n)]
    else:
        assert all(end - start == size for start, end, _, _ in windows[:-1]), "full windows except the last"


@pytest.mark.parametrize("size,context", WINDOW_PARAMS)
def test_windows_tile_all_lengths(size, context):
    for n in range(0, 300):
        check_windows(n, size, context)


def test_windows_example():
    assert make_windows(10, 6, 1) == [(0, 6, 0, 5), (4, 10, 5, 10)]
    assert make_windows(6, 6, 1) == [(0, 6, 0, 6)]
    with pytest.raises(ValueError, match="twice the context"):
        make_windows(10, 8, 4)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 3000), context=st.integers(0, 40), extra=st.integers(1, 200))
def test_windows_property_and_linear_count(n, context, extra):
    size = 2 * context + extra
    check_windows(n, size, context)
    if n > size:  # linear: the cores advance by size - 2 * context except at the ends
        assert len(make_windows(n, size, context)) <= n // (size - 2 * context) + 2


# --------------------------------------------------------------------------- predict


def test_predict_lengths_and_tag_set(tiny_tagger):
    w = tiny_tagger.config.window
    assert w == 32
    rng = random.Random(0)
    lengths = [0, 1, w - 1, w, w + 1, 2 * w, 10 * w, 10 * w + 3, 5000, 0, 2]
    out = tiny_tagger.predict([random_words(rng, n) for n in lengths])
    assert [len(t) for t in out] == lengths
    assert all(tag in tiny_tagger.config.tags for tags in out for tag in tags)
    assert tiny_tagger.predict([]) == []
    assert tiny_tagger.predict([[]]) == [[]]


def test_each_long_sequence_alone_is_tagged_to_its_end(scrambled_tagger):
    w = scrambled_tagger.config.window
    for n in (1, w, w + 1, 10 * w, 5000):
        tags = scrambled_tagger.predict([random_words(random.Random(n), n)])[0]
        assert len(tags) == n and set(tags) <= set(TAGS)
        if n >= w:
            assert set(tags) - {"O"}, "the scrambled model tags something in every long sequence"
            assert set(tags[-w:]) - {"O"}, "and in its last window"


def test_tags_near_window_cuts_are_those_of_each_window_with_its_context(scrambled_tagger):
    cfg = scrambled_tagger.config
    seq = random_words(random.Random(5), 6 * cfg.window)
    full = scrambled_tagger.predict([seq])[0]
    for start, end, cs, ce in make_windows(len(seq), cfg.window, cfg.context):
        alone = scrambled_tagger.predict([seq[start:end]])[0]
        assert full[cs:ce] == alone[cs - start: ce - start]


def test_batch_size_never_changes_tags(scrambled_tagger):
    cfg = scrambled_tagger.config
    step = cfg.window - 2 * cfg.context
    n = cfg.window + 100 * step  # every window, the last included, is exactly ``window`` long
    assert all(e - s == cfg.window for s, e, _, _ in make_windows(n, cfg.window, cfg.context))
    rng = random.Random(2)
    seqs = [random_words(rng, n)] + [random_words(rng, k) for k in (5003, 1007, 1010, 530, 517, 45)]
    one = scrambled_tagger.predict(seqs, batch_size=1)
    assert one == scrambled_tagger.predict(seqs, batch_size=256)
    assert [len(t) for t in one] == [len(s) for s in seqs] and set(one[0]) - {"O"}


def test_short_sentence_alone_or_batched_with_others(scrambled_tagger):
    rng = random.Random(3)
    short = [random_words(rng, n) for n in (3, 5, 9, 12)]
    others = [random_words(rng, rng.randint(1, 200)) for _ in range(300)]
    alone = [scrambled_tagger.predict([s])[0] for s in short]
    assert scrambled_tagger.predict(others[:150] + short + others[150:])[150: 150 + len(short)] == alone


def test_a_sequence_without_arabic_letters_is_not_tagged(scrambled_tagger):
    """The scrambled model tags most words; English, digits and punctuation alone get O and
    no entity, while the Arabic sequences beside them are tagged as alone."""
    rng = random.Random(5)
    arabic = [random_words(rng, 12) for _ in range(3)]
    latin = [["Barack", "Obama", "visited", "Paris", "."], ["١٢٣", "2024", "،", "😀"]]
    tagged = scrambled_tagger.tag([arabic[0], latin[0], arabic[1], latin[1], arabic[2]], 8)
    assert [t.tags for t in tagged[1::2]] == [["O"] * 5, ["O"] * 4] and not tagged[1].entities
    assert [t.tags for t in tagged[0::2]] == scrambled_tagger.predict(arabic)
    assert any(t != "O" for t in tagged[0].tags)


def test_identical_sentences_in_one_batch_get_identical_tags(scrambled_tagger):
    rng = random.Random(4)
    sent = random_words(rng, 17)
    out = scrambled_tagger.predict([sent] * 40 + [random_words(rng, 17) for _ in range(40)] + [sent] * 40)
    assert all(tags == out[0] for tags in out[:40] + out[80:])


def test_batches_share_a_padded_length_and_stay_under_the_token_cap(scrambled_tagger, monkeypatch):
    """One padded length per network call, at most batch_size windows, at most MAX_BATCH_TOKENS tokens."""
    import spacy_aner.core.tagger as tagger_module

    monkeypatch.setattr(tagger_module, "MAX_BATCH_TOKENS", 256)
    real = scrambled_tagger.scorer.scores
    shapes = []

    def recording(feeds):
        shapes.append(feeds["index"].shape)
        return real(feeds)

    rng = random.Random(4)
    seqs = [random_words(rng, rng.randint(1, 70)) for _ in range(60)]
    expected = [scrambled_tagger.predict([s])[0] for s in seqs]
    monkeypatch.setattr(scrambled_tagger.scorer, "scores", recording)
    assert scrambled_tagger.predict(seqs, batch_size=8) == expected
    cfg = scrambled_tagger.config
    assert sum(n for n, _ in shapes) == sum(len(make_windows(len(s), cfg.window, cfg.context)) for s in seqs)
    assert all(n <= 8 and n * length <= 256 for n, length in shapes), shapes
    assert len({length for _, length in shapes}) > 1


def test_batches_group_windows_by_padded_length(tiny_tagger):
    pieces = [(i, 0, n, 0, n) for i, n in enumerate([3, 30, 4, 33, 2, 100])]
    batches = tiny_tagger.batches(pieces, batch_size=256)
    assert [b[0] for b in batches] == [4, 32, 48, 112]  # lengths up to 32 pad to 4s, longer ones to 16s
    assert sorted(k for b in batches for k in b[1:]) == list(range(len(pieces)))
    for length, *ks in batches:
        assert all(pieces[k][2] - pieces[k][1] <= length for k in ks)


def test_predict_reads_the_crf_once_per_call(scrambled_tagger, monkeypatch):
    calls = []
    real = scrambled_tagger.scorer.crf

    def counting():
        calls.append(1)
        return real()

    monkeypatch.setattr(scrambled_tagger.scorer, "crf", counting)
    scrambled_tagger.predict([WORDS] * 3 + [WORDS * 20], batch_size=2)
    assert len(calls) == 1


# --------------------------------------------------------------------------- tag: entity probabilities


def direct_probability(tagger, words, first, stop, label):
    """The probability of one entity over ``words`` as a sequence of its own, from the network's scores."""
    scores = tagger.unary_scores([words], len(words))
    trans, start, end = tagger.scorer.crf()
    forward = forward_backward_batch(scores, [len(words)], trans, start, end)
    query = (0, first, stop, TAGS.index(f"B-{label}"), TAGS.index(f"I-{label}"))
    return float(span_probabilities(scores, [len(words)], forward, trans, start, end, [query])[0])


def test_tag_gives_predicts_tags_and_each_entity_its_probability(scrambled_tagger):
    rng = random.Random(6)
    seqs = [random_words(rng, n) for n in (0, 1, 3, 7, 12, 20, 31)] + [[]]
    tagged = scrambled_tagger.tag(seqs, batch_size=3)
    assert [t.tags for t in tagged] == scrambled_tagger.predict(seqs)
    n_entities = 0
    for words, t in zip(seqs, tagged):
        assert [e[:3] for e in t.entities] == bio_to_spans(t.tags)
        for a, b, label, p in t.entities:
            assert isinstance(p, float) and 0.0 <= p <= 1.0
            assert p == pytest.approx(direct_probability(scrambled_tagger, words, a, b, label), abs=1e-6)
            n_entities += 1
    assert n_entities > 20
    assert scrambled_tagger.tag([]) == [] and scrambled_tagger.tag([[]]) == [([], [])]


def test_entities_of_a_long_sequence_are_scored_in_the_window_holding_their_start(scrambled_tagger):
    cfg = scrambled_tagger.config
    seq = random_words(random.Random(7), 5 * cfg.window + 9)
    (tagged,) = scrambled_tagger.tag([seq])
    assert tagged.tags == scrambled_tagger.predict([seq])[0]
    windows = make_windows(len(seq), cfg.window, cfg.context)
    assert len(windows) > 5 and len(tagged.entities) > 30
    for a, b, label, p in tagged.entities:
        s, e, _, _ = next(w for w in windows if w[2] <= a < w[3])
        want = direct_probability(scrambled_tagger, seq[s:e], a - s, min(b, e) - s, label)
        assert p == pytest.approx(want, abs=1e-6)


def test_tag_is_independent_of_batching_and_reads_the_network_once(scrambled_tagger, monkeypatch):
    rng = random.Random(8)
    seqs = [random_words(rng, rng.randint(1, 90)) for _ in range(40)]
    alone = [scrambled_tagger.tag([s])[0] for s in seqs]
    calls = []
    real = scrambled_tagger.scorer.scores

    def counting(feeds):
        calls.append(feeds["index"].shape[0])
        return real(feeds)

    monkeypatch.setattr(scrambled_tagger.scorer, "scores", counting)
    together = scrambled_tagger.tag(seqs, batch_size=5)
    assert [t.tags for t in together] == [t.tags for t in alone]
    for x, y in zip(together, alone):
        np.testing.assert_allclose([e[3] for e in x.entities], [e[3] for e in y.entities], atol=1e-6)
    cfg = scrambled_tagger.config
    assert sum(calls) == sum(len(make_windows(len(s), cfg.window, cfg.context)) for s in seqs)


def test_a_tagger_pickles_and_tags_alike(scrambled_tagger):
    """For multiprocessing under spawn: the copy makes its own session and look-up caches."""
    import pickle

    seqs = [random_words(random.Random(i), n) for i, n in enumerate([3, 17, 40])]
    want = scrambled_tagger.tag(seqs)
    copy = pickle.loads(pickle.dumps(scrambled_tagger))
    assert copy.tag(seqs) == want and scrambled_tagger.tag(seqs) == want
    assert copy.vocab.encode(seqs, 40)[0].tolist() == scrambled_tagger.vocab.encode(seqs, 40)[0].tolist()
