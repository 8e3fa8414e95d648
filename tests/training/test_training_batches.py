"""spacy_aner.training.batches: what the network trains on (chunks, batches, name shortening, schedule)."""
from __future__ import annotations

import random

import numpy as np
import pytest
from aner_support import LABELS, WORDS
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_aner.core.tags import TAGS, bio_to_spans, spans_to_bio
from spacy_aner.core.vocab import Vocabulary
from spacy_aner.training.batches import batches_class, chunk_sentences, shorten_names, stepped_learning_rate
from spacy_aner.training.corpus import Sentence


def test_chunk_sentences_cuts_long_ones_and_repairs_the_cut():
    long = Sentence(["a"] * 5, ["O", "B-PERS", "I-PERS", "I-PERS", "O"], line=7)
    short = Sentence(["b"], ["B-LOC"], line=20)
    chunks = chunk_sentences([long, short], size=3)
    assert [c.words for c in chunks] == [["a"] * 3, ["a"] * 2, ["b"]]
    assert [c.tags for c in chunks] == [["O", "B-PERS", "I-PERS"], ["B-PERS", "O"], ["B-LOC"]]  # I- opens the piece
    assert [c.line for c in chunks] == [7, 7, 20]
    assert chunk_sentences([long], size=5) == [long]


@st.composite
def tagged_sentences(draw):
    """A sentence as spans over O words, adjacent entities included."""
    pieces = draw(st.lists(st.one_of(st.just(None), st.tuples(st.sampled_from(LABELS), st.integers(1, 4))),
                           min_size=1, max_size=12))
    words, spans = [], []
    for k, piece in enumerate(pieces):
        if piece is None:
            words.append(f"o{k}")
        else:
            label, n = piece
            spans.append((len(words), len(words) + n, label))
            words.extend(f"{label}{k}_{j}" for j in range(n))
    return Sentence(words, spans_to_bio(spans, len(words)), 7)


@settings(max_examples=150, deadline=None)
@given(sentence=tagged_sentences(), rate=st.sampled_from([0.0, 0.3, 1.0]), seed=st.integers(0, 10))
def test_shorten_names_cuts_only_long_person_names_to_one_of_their_ends(sentence, rate, seed):
    out = shorten_names(sentence, rate, random.Random(seed))
    before, after = bio_to_spans(sentence.tags), bio_to_spans(out.tags)
    assert out.line == sentence.line and len(out.words) == len(out.tags) <= len(sentence.words)
    assert [label for *_, label in after] == [label for *_, label in before]
    outside = lambda sent, spans: [w for i, w in enumerate(sent.words)  # noqa: E731
                                   if not any(s <= i < e for s, e, _ in spans)]
    assert outside(out, after) == outside(sentence, before)  # no word outside an entity is lost or added
    for (s0, e0, label), (s1, e1, _) in zip(before, after):
        old, new = sentence.words[s0:e0], out.words[s1:e1]
        if label != "PERS" or len(old) == 1 or rate == 0.0:
            assert new == old
        elif rate == 1.0:
            assert new in ([old[0]], [old[-1]])
        else:
            assert new in (old, [old[0]], [old[-1]])
    if rate == 0.0:
        assert out == sentence


def test_shorten_names_keeps_both_ends_in_play():
    sent = Sentence(["قال", "محمد", "علي", "حسن", "إن", "القاهرة"], ["O", "B-PERS", "I-PERS", "I-PERS", "O", "B-LOC"])
    rng = random.Random(0)
    outs = {tuple(shorten_names(sent, 1.0, rng).words) for _ in range(50)}
    assert outs == {("قال", "محمد", "إن", "القاهرة"), ("قال", "حسن", "إن", "القاهرة")}
    assert shorten_names(sent, 1.0, rng).tags == ["O", "B-PERS", "O", "B-LOC"]
    assert shorten_names(sent, 1.0, rng, label="LOC") is sent  # a one-word LOC: nothing to cut


def test_batches_encode_words_and_tags_with_padding():
    vocab = Vocabulary.build(WORDS, 20)
    sents = [Sentence(["محمد", "في", "الرباط"], ["B-PERS", "O", "B-LOC"]), Sentence(["باريس"], ["B-LOC"])]
    data = batches_class()(sents, vocab, TAGS, batch_size=4, seed=0)
    assert len(data) == 1
    x, y = data[0]
    assert x["words"].shape == (2, 16) and x["chars"].shape == (2, 16, 20)
    index = {t: i for i, t in enumerate(TAGS)}
    rows = {tuple(r[r >= 0]) for r in y}
    assert rows == {(index["B-PERS"], 0, index["B-LOC"]), (index["B-LOC"],)}
    assert (y == -1).sum() == 2 * 16 - 4  # padding is masked out of the loss


def test_first_two_training_batches_differ_in_length_for_every_seed():
    """Keras fixes the input signature from the first two batches; equal lengths broke training."""
    vocab = Vocabulary.build(WORDS, 20)
    # 30 short sentences (one padded length) and 2 long ones: most shuffles start short, short.
    sents = [Sentence(["محمد"] * n, ["O"] * n, 0) for n in [3] * 30 + [40, 41]]
    for seed in range(40):
        data = batches_class()(sents, vocab, TAGS, batch_size=2, seed=seed)
        first, second = (data[i][0]["words"].shape[1] for i in (0, 1))
        assert first != second, seed
        assert sorted(i for b in data.batches for i in b) == list(range(len(sents)))


def test_batch_order_changes_every_epoch_and_keeps_every_sentence():
    vocab = Vocabulary.build(WORDS, 20)
    sents = [Sentence(["محمد"] * (1 + i % 5), ["O"] * (1 + i % 5)) for i in range(40)]
    data = batches_class()(sents, vocab, TAGS, batch_size=4, seed=3)
    orders = []
    for _ in range(3):
        orders.append([list(b) for b in data.batches])
        data.on_epoch_end()
    assert orders[0] != orders[1] != orders[2]
    assert all(sorted(i for b in order for i in b) == list(range(40)) for order in orders)


def test_name_shortening_draws_anew_and_keeps_the_padded_length():
    vocab = Vocabulary.build(WORDS, 20)
    # 17 words pad to 32; cut to 16 they would pad to 16 if the length were taken after the cut
    words = ["زار", "محمد", "علي", "القاهرة"] + ["أمس"] * 13
    tags = ["O", "B-PERS", "I-PERS", "B-LOC"] + ["O"] * 13
    data = batches_class()([Sentence(words, tags) for _ in range(8)], vocab, TAGS, batch_size=4, seed=0,
                           name_shortening=0.5)
    draws = [data[0] for _ in range(6)]
    assert all(x["words"].shape == (4, 32) for x, _ in draws)
    assert len({y.tobytes() for _, y in draws}) > 1  # a new cut every time the batch is served
    ys = np.concatenate([y for _, y in draws])
    tag = {t: i for i, t in enumerate(TAGS)}
    one_word = (ys[:, 1] == tag["B-PERS"]) & (ys[:, 2] != tag["I-PERS"])
    assert one_word.any() and (~one_word).any()


def test_name_shortening_leaves_the_batch_order_alone():
    vocab = Vocabulary.build(WORDS, 20)
    sents = [Sentence(["زار", "محمد", "القاهرة", "أمس"][: 2 + i % 3], ["O", "B-PERS", "B-LOC", "O"][: 2 + i % 3])
             for i in range(24)]  # one-word names only: shortening has nothing to cut
    short = batches_class()(sents, vocab, TAGS, batch_size=4, seed=3, name_shortening=1.0)
    plain = batches_class()(sents, vocab, TAGS, batch_size=4, seed=3)
    for _ in range(2):  # two epochs
        assert short.batches == plain.batches
        for i in range(len(plain)):
            (a, ya), (b, yb) = short[i], plain[i]
            assert (a["words"] == b["words"]).all() and (ya == yb).all()
        short.on_epoch_end()
        plain.on_epoch_end()


def test_stepped_learning_rate_replays_drops_with_a_floor():
    rates = [stepped_learning_rate(e, 3e-3, 0.5, [2, 3, 10, 11, 12, 13, 14, 15]) for e in range(16)]
    assert rates[:2] == [3e-3, 3e-3] and rates[2] == 1.5e-3 and rates[3] == 7.5e-4
    assert min(rates) == pytest.approx(3e-3 / 50)  # the ReduceLROnPlateau floor of a dev run
    assert [stepped_learning_rate(e, 1.0, 0.5, []) for e in range(3)] == [1.0, 1.0, 1.0]
