"""The tagger (spacy_aner.model) and its training (spacy_aner.training).

Pure functions (windows, Viterbi, CRF loss) are checked against brute force; the
:class:`Tagger` against the session's tiny trained model (``tiny_model_dir``) and, where
an untuned model that tags nothing would prove nothing, its scrambled copy
(``scrambled_model_dir``) that tags most words.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_aner.model import (
    CONFIG_FILE,
    FORMAT_VERSION,
    META_FILE,
    PAD,
    UNK,
    VOCAB_FILE,
    WEIGHTS_FILE,
    ModelConfig,
    ModelLoadError,
    Tagger,
    Vocabulary,
    _bucket,
    make_windows,
    viterbi_decode,
    viterbi_decode_batch,
)
from spacy_aner.normalize import NORMALIZATION_VERSION, normalize_word
from spacy_aner.tags import TAGS

WORDS = "محمد يعيش في الرباط باريس هي عاصمة فرنسا زار أحمد علي القاهرة أمس الأمم المتحدة لندن".split()


def random_words(rng: random.Random, n: int):
    return [rng.choice(WORDS) for _ in range(n)]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tiny_tagger(tiny_model_dir):
    return Tagger.load(tiny_model_dir)


@pytest.fixture(scope="module")
def scrambled_tagger(scrambled_model_dir):
    tagger = Tagger.load(scrambled_model_dir)
    tags = tagger.predict([WORDS])[0]
    assert sum(t != "O" for t in tags) >= len(WORDS) // 2, "scrambled model must tag most words"
    return tagger


# --------------------------------------------------------------------------- make_windows

WINDOW_PARAMS = [(1, 0), (2, 0), (3, 1), (5, 2), (8, 0), (9, 4), (16, 3), (32, 4), (33, 16), (128, 16)]


def check_windows(n: int, size: int, context: int) -> None:
    windows = make_windows(n, size, context)
    assert windows, "at least one window"
    if n == 0:
        assert all(cs == ce for _, _, cs, ce in windows)
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
def test_make_windows_tile_all_lengths(size, context):
    for n in range(0, 400):
        check_windows(n, size, context)


def test_make_windows_example():
    assert make_windows(10, 6, 1) == [(0, 6, 0, 5), (4, 10, 5, 10)]
    assert make_windows(6, 6, 1) == [(0, 6, 0, 6)]


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 3000), context=st.integers(0, 40), extra=st.integers(1, 200))
def test_make_windows_property(n, context, extra):
    size = 2 * context + extra
    check_windows(n, size, context)
    if n > size:  # linear: the cores advance by size - 2 * context except at the ends
        assert len(make_windows(n, size, context)) <= n // (size - 2 * context) + 2


# --------------------------------------------------------------------------- Viterbi / CRF


def path_score(path, scores, transitions, start, end):
    s = start[path[0]] + end[path[-1]] + sum(scores[t, k] for t, k in enumerate(path))
    return s + sum(transitions[a, b] for a, b in zip(path[:-1], path[1:]))


def test_viterbi_equals_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(150):
        T, K = int(rng.integers(1, 6)), 3
        scores, transitions = rng.normal(size=(T, K)), rng.normal(size=(K, K))
        start, end = rng.normal(size=K), rng.normal(size=K)
        paths = list(itertools.product(range(K), repeat=T))
        best = max(paths, key=lambda p: path_score(p, scores, transitions, start, end))
        got = viterbi_decode(scores, transitions, start, end)
        assert got.shape == (T,)
        assert tuple(int(k) for k in got) == best


def test_viterbi_empty_sequence():
    K = 3
    out = viterbi_decode(np.zeros((0, K)), np.zeros((K, K)), np.zeros(K), np.zeros(K))
    assert out.shape == (0,)


def test_batched_viterbi_equals_one_sequence_at_a_time():
    rng = np.random.default_rng(1)
    K = len(TAGS)
    transitions, start, end = rng.normal(size=(K, K)), rng.normal(size=K), rng.normal(size=K)
    start, end = np.round(start), np.round(end)
    for _ in range(60):
        lengths = rng.integers(0, 20, size=int(rng.integers(1, 9)))
        # Small whole numbers make equal candidates common: ties must be broken alike.
        # T beyond the longest row, as predict() pads.
        scores = rng.integers(-2, 3, size=(len(lengths), int(lengths.max()) + 3, K)).astype(float)
        transitions = rng.integers(-1, 2, size=(K, K)).astype(float)
        paths = viterbi_decode_batch(scores, lengths, transitions, start, end)
        for b, n in enumerate(lengths):
            np.testing.assert_array_equal(paths[b, :n], viterbi_decode(scores[b, :n], transitions, start, end))
    assert viterbi_decode_batch(np.zeros((2, 1, K)), [0, 0], transitions, start, end).shape == (2, 1)


def brute_nll(scores, transitions, start, end, gold):
    n = len(gold)
    all_scores = np.array([path_score(p, scores[:n], transitions, start, end)
                           for p in itertools.product(range(scores.shape[1]), repeat=n)])
    log_z = np.logaddexp.reduce(all_scores)
    return log_z - path_score(gold, scores[:n], transitions, start, end)


def test_crf_nll_equals_brute_force_with_padding():
    import tensorflow as tf

    from spacy_aner.model import crf_nll

    rng = np.random.default_rng(1)
    B, T, K = 6, 5, 3
    for _ in range(5):
        lengths = [5, 1, 3, 2, 4, int(rng.integers(1, 6))]
        scores = rng.normal(0, 2, size=(B, T, K)).astype("float32")
        transitions = rng.normal(0, 1, size=(K, K)).astype("float32")
        start = rng.normal(0, 1, size=K).astype("float32")
        end = rng.normal(0, 1, size=K).astype("float32")
        y = np.full((B, T), -1, dtype="int32")
        for i, n in enumerate(lengths):
            y[i, :n] = rng.integers(0, K, size=n)
        got = crf_nll(tf.constant(y), tf.constant(scores), tf.constant(transitions), tf.constant(start),
                      tf.constant(end)).numpy()
        assert got.shape == (B,)
        want = [brute_nll(scores[i].astype("float64"), transitions.astype("float64"), start.astype("float64"),
                          end.astype("float64"), y[i, :n]) for i, n in enumerate(lengths)]
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-5)
        assert (got > 0).all()
        # Scores at padded positions are ignored.
        noisy = scores.copy()
        for i, n in enumerate(lengths):
            noisy[i, n:] = rng.normal(0, 50, size=(T - n, K))
        got2 = crf_nll(tf.constant(y), tf.constant(noisy), tf.constant(transitions), tf.constant(start),
                       tf.constant(end)).numpy()
        np.testing.assert_allclose(got2, got, atol=1e-4)


def test_crf_probabilities_of_all_paths_sum_to_one():
    import tensorflow as tf

    from spacy_aner.model import crf_nll

    rng = np.random.default_rng(2)
    T, K = 4, 3
    paths = np.array(list(itertools.product(range(K), repeat=T)), dtype="int32")  # all 81 gold paths
    scores = np.repeat(rng.normal(size=(1, T, K)).astype("float32"), len(paths), 0)
    transitions, start, end = (rng.normal(size=s).astype("float32") for s in [(K, K), (K,), (K,)])
    nll = crf_nll(tf.constant(paths), tf.constant(scores), tf.constant(transitions), tf.constant(start),
                  tf.constant(end)).numpy()
    assert np.exp(-nll.astype("float64")).sum() == pytest.approx(1.0, abs=1e-4)


def test_crf_token_loss_adds_the_weighted_word_loss():
    import tensorflow as tf

    from spacy_aner.model import crf_nll, crf_token_loss, masked_softmax_loss

    rng = np.random.default_rng(4)
    B, T, K = 3, 5, 4
    y = np.full((B, T), -1, dtype="int32")
    for i, n in enumerate([5, 2, 3]):
        y[i, :n] = rng.integers(0, K, size=n)
    scores = tf.constant(rng.normal(size=(B, T, K)).astype("float32"))
    layer = types.SimpleNamespace(**{name: tf.constant(rng.normal(size=shape).astype("float32"))
                                     for name, shape in (("transitions", (K, K)), ("start", (K,)), ("end", (K,)))})
    crf = crf_nll(tf.constant(y), scores, layer.transitions, layer.start, layer.end).numpy()
    words = masked_softmax_loss(tf.constant(y), scores).numpy()
    np.testing.assert_allclose(crf_token_loss(tf.constant(y), scores, layer).numpy(), crf, rtol=1e-6)
    np.testing.assert_allclose(crf_token_loss(tf.constant(y), scores, layer, 0.5).numpy(), crf + 0.5 * words,
                               rtol=1e-5, atol=1e-5)


def test_train_passes_the_token_loss_weight_to_the_loss(tiny_conll_file, tmp_path, monkeypatch):
    import spacy_aner.training as training

    from spacy_aner.model import ModelConfig, crf_token_loss

    weights = []

    def recording(y_true, scores, layer, token_weight=0.0):
        weights.append(token_weight)
        return crf_token_loss(y_true, scores, layer, token_weight)

    monkeypatch.setattr(training, "crf_token_loss", recording)
    small = ModelConfig(lstm_units=4, lstm_layers=1, char_filters=4, window=32, context=4)
    training.train(tiny_conll_file, tmp_path / "m", dev_fraction=0.2, epochs=1, verbose=0, token_loss=0.7, config=small)
    assert weights and set(weights) == {0.7}


def test_masked_softmax_loss_ignores_padding():
    import tensorflow as tf

    from spacy_aner.model import masked_softmax_loss

    rng = np.random.default_rng(3)
    B, T, K = 4, 6, len(TAGS)
    lengths = [6, 1, 3, 4]
    y = np.full((B, T), -1, dtype="int32")
    for i, n in enumerate(lengths):
        y[i, :n] = rng.integers(0, K, size=n)
    scores = rng.normal(size=(B, T, K)).astype("float32")
    loss = masked_softmax_loss(tf.constant(y), tf.constant(scores)).numpy()
    log_p = scores - np.log(np.exp(scores).sum(-1, keepdims=True))
    want = [-sum(log_p[i, t, y[i, t]] for t in range(n)) for i, n in enumerate(lengths)]
    np.testing.assert_allclose(loss, want, rtol=1e-5, atol=1e-5)
    noisy = scores.copy()
    for i, n in enumerate(lengths):
        noisy[i, n:] = rng.normal(0, 100, size=(T - n, K))
    np.testing.assert_allclose(masked_softmax_loss(tf.constant(y), tf.constant(noisy)).numpy(), loss, atol=1e-5)


# --------------------------------------------------------------------------- Vocabulary


def test_vocabulary_encode_ids_padding_and_shapes():
    vocab = Vocabulary.build(["محمد", "الرباط", "في", "محمد"], max_word_chars=8)
    assert vocab.words[:2] == ["<pad>", "<unk>"] and vocab.words[2:] == ["محمد", "الرباط", "في"]
    words, chars = vocab.encode([["محمد", "مجهول", "في"], ["الرباط"], []], length=5)
    assert words.shape == (3, 5) and chars.shape == (3, 5, 8)
    assert words.dtype == np.int32 and chars.dtype == np.int32
    assert words.tolist() == [[2, UNK, 4, PAD, PAD], [3, PAD, PAD, PAD, PAD], [PAD] * 5]
    assert UNK == 1 and PAD == 0
    assert (chars[0, 3:] == PAD).all() and (chars[2] == PAD).all()
    # Characters of each word fill the row from the left, the rest is padding.
    assert (chars[0, 0, :4] > UNK).all() and (chars[0, 0, 4:] == PAD).all()
    # Unknown words still get their known characters; unseen letters are UNK.
    assert vocab.char_index.get("ج") is None
    assert chars[0, 1, 0] == vocab.char_index["م"] and chars[0, 1, 1] == UNK
    # Letters seen fewer than min_char_count=2 times are unknown too.
    assert "ف" not in vocab.char_index and chars[0, 2, 0] == UNK


def test_vocabulary_normalises_words():
    vocab = Vocabulary.build(["محمد", "القاهره", "احمد"], max_word_chars=10)
    plain = vocab.encode([["محمد", "القاهره", "احمد"]], 3)
    variants = vocab.encode([["مُحَمَّد", "القـــاهرة", "أحمد"]], 3)  # diacritics, tatweel + teh marbuta, hamza
    assert plain[0].tolist() == [[2, 3, 4]]
    assert variants[0].tolist() == plain[0].tolist()
    np.testing.assert_array_equal(variants[1], plain[1])


def test_vocabulary_keeps_both_ends_of_long_words():
    vocab = Vocabulary.build(["abcdefghijklmnop"] * 2, max_word_chars=6)
    _, chars = vocab.encode([["abcdefghijklmnop", "abcdef"]], 2)
    ids = [vocab.chars[i] for i in chars[0, 0]]
    assert ids == list("abc") + list("nop")
    assert [vocab.chars[i] for i in chars[0, 1]] == list("abcdef")
    odd = Vocabulary.build(["abcdefghijklmnop"] * 2, max_word_chars=5)
    _, chars = odd.encode([["abcdefghijklmnop"]], 1)
    assert [odd.chars[i] for i in chars[0, 0]] == list("ab") + list("nop")


def test_vocabulary_clitic_backoff():
    words = ["القاهره"]
    plain = Vocabulary.build(words, max_word_chars=10)
    backoff = Vocabulary.build(words, max_word_chars=10, clitic_backoff=True)
    assert plain.encode([["والقاهرة"]], 1)[0][0, 0] == UNK
    assert backoff.encode([["والقاهرة", "بالقاهرة", "للقاهرة", "كتاب"]], 4)[0].tolist() == [[2, 2, 2, UNK]]


def test_vocabulary_reserved_names_are_not_words():
    vocab = Vocabulary.build(["x"], max_word_chars=5)
    words, _ = vocab.encode([["<pad>", "<PAD>", "x"]], 3)
    assert words[0, 0] != PAD and words[0, 1] != PAD


# --------------------------------------------------------------------------- Tagger


def test_predict_lengths_and_tag_set(tiny_tagger):
    w = tiny_tagger.config.window
    assert w == 32
    rng = random.Random(0)
    lengths = [0, 1, w - 1, w, w + 1, 2 * w, 10 * w, 10 * w + 3, 5000, 0, 2]
    seqs = [random_words(rng, n) for n in lengths]
    out = tiny_tagger.predict(seqs)
    assert [len(t) for t in out] == lengths
    assert all(tag in tiny_tagger.config.tags for tags in out for tag in tags)
    assert tiny_tagger.predict([]) == []
    assert tiny_tagger.predict([[]]) == [[]]


def test_predict_each_sequence_alone_has_right_length(scrambled_tagger):
    w = scrambled_tagger.config.window
    for n in (1, w, w + 1, 10 * w, 5000):
        tags = scrambled_tagger.predict([random_words(random.Random(n), n)])[0]
        assert len(tags) == n
        assert set(tags) <= set(TAGS)
        if n >= w:
            assert set(tags) - {"O"}, "the scrambled model tags something in every long sequence"


def test_long_sequence_tags_near_window_cuts_use_context(scrambled_tagger):
    """Tags of a long sequence equal those of each window's core predicted with its context."""
    cfg = scrambled_tagger.config
    seq = random_words(random.Random(5), 6 * cfg.window)
    full = scrambled_tagger.predict([seq])[0]
    windows = make_windows(len(seq), cfg.window, cfg.context)
    for start, end, cs, ce in windows:
        alone = scrambled_tagger.predict([seq[start:end]])[0]
        assert full[cs:ce] == alone[cs - start: ce - start]


def test_long_sequence_all_full_windows_batch_size_independent(scrambled_tagger):
    """A sequence cut into windows that all share one padding bucket: batch size 1 and 256 agree."""
    cfg = scrambled_tagger.config
    step = cfg.window - 2 * cfg.context
    n = cfg.window + 200 * step  # every window, the last included, is exactly ``window`` long
    assert all(e - s == cfg.window for s, e, _, _ in make_windows(n, cfg.window, cfg.context))
    seq = random_words(random.Random(1), n)
    one = scrambled_tagger.predict([seq], batch_size=1)
    many = scrambled_tagger.predict([seq], batch_size=256)
    assert one == many
    assert len(one[0]) == n and set(one[0]) - {"O"}


def test_long_sequences_do_not_depend_on_batch_size(scrambled_tagger):
    rng = random.Random(2)
    seqs = [random_words(rng, n) for n in (5003, 1007, 1010, 530, 517, 45)]
    assert scrambled_tagger.predict(seqs, batch_size=1) == scrambled_tagger.predict(seqs, batch_size=256)


def distinct_scores(tagger: Tagger, seqs, length: int) -> np.ndarray:
    return tagger._scores(seqs, length)


def assert_distinct_scores_match_network(tagger: Tagger, seqs, length: int) -> None:
    """spacy_aner.inference (per distinct word, own recurrence) gives the network's scores."""
    from spacy_aner.model import SHORT_WORD_CHARS

    words, chars = tagger.vocab.encode(seqs, length)
    table, seq_rows = tagger.vocab.distinct_rows(seqs)
    assert [len(r) for r in seq_rows] == [len(s) for s in seqs]
    index = np.zeros((len(seqs), length), dtype="int64")
    for i, r in enumerate(seq_rows):
        index[i, : len(r)] = r
    rows = table["char_rows"]
    np.testing.assert_array_equal(table["row_words"][index], words)
    np.testing.assert_array_equal(rows[index], chars)  # padding maps to the all-zero row 0
    assert not rows[0].any() and len(rows) == 1 + len({normalize_word(w) or w for s in seqs for w in s})
    lengths = (rows > 0).sum(1)
    short = int(table["short_rows"])
    assert (lengths[:short] <= SHORT_WORD_CHARS).all() and (lengths[short:] > SHORT_WORD_CHARS).all()
    expected = tagger.network({"words": words, "chars": chars}, training=False).numpy()
    got = distinct_scores(tagger, seqs, length)
    for k, s in enumerate(seqs):
        np.testing.assert_allclose(got[k, : len(s)], expected[k, : len(s)], rtol=1e-5, atol=1e-5)


def test_scores_do_not_depend_on_padding(scrambled_tagger):
    seq = WORDS[:10]
    results = [distinct_scores(scrambled_tagger, [seq], length)[0, : len(seq)] for length in (16, 32, 64)]
    np.testing.assert_allclose(results[1], results[0], atol=1e-4)
    np.testing.assert_allclose(results[2], results[0], atol=1e-4)


@pytest.mark.parametrize("max_word_chars", [20, 8])  # 8: short words reach the full-width cap
def test_inference_equals_the_network_with_the_shipped_shape(max_word_chars):
    """Two BiLSTM layers, several members, four CNN widths, words of 1 to 30 chars."""
    from spacy_aner import inference
    from spacy_aner.model import build_network

    words = ["ب" * n for n in range(1, 31)] + ["abcdefghijklmnopqrstuvwxyz0123"] + WORDS
    vocab = Vocabulary.build(words, max_word_chars, min_char_count=1, clitic_backoff=True)
    config = ModelConfig(members=2, lstm_layers=2, lstm_units=8, char_filters=4, char_dim=6, word_dim=10,
                         char_kernels=[2, 3, 4, 5], max_word_chars=max_word_chars)
    tagger = Tagger(config, vocab, build_network(config, len(vocab.words), len(vocab.chars)))
    assert inference.supported(tagger.network, config)
    rng = random.Random(11)
    seqs = [[rng.choice(words) for _ in range(n)] for n in (1, 4, 17, 40)] + [words[:7], words[-12:]]
    assert_distinct_scores_match_network(tagger, seqs, 48)
    assert_distinct_scores_match_network(tagger, [words[:3]], 4)  # no long word
    assert_distinct_scores_match_network(tagger, [words[20:24]], 4)  # no short word but padding


def test_char_features_in_chunks_equal_one_pass(scrambled_tagger, monkeypatch):
    """Chunks of the distinct-key table, one of them across the short/long boundary."""
    import spacy_aner.model as model_module

    seqs = [WORDS, ["ب" * n for n in range(1, 26)], WORDS[:4]]
    table, _ = scrambled_tagger.vocab.distinct_rows(seqs)
    whole = scrambled_tagger._row_features(table).numpy()
    monkeypatch.setattr(model_module, "FEATURE_CHUNK_ROWS", 7)
    assert 7 < int(table["short_rows"]) < len(table["row_words"]) - 7
    np.testing.assert_allclose(scrambled_tagger._row_features(table).numpy(), whole, rtol=1e-6, atol=1e-6)
    assert_distinct_scores_match_network(scrambled_tagger, seqs, 32)


def test_scores_fall_back_to_keras_for_a_shape_inference_does_not_know(scrambled_tagger, monkeypatch):
    from spacy_aner import inference

    seqs = [WORDS, WORDS[:3]]
    expected = distinct_scores(scrambled_tagger, seqs, 16)
    monkeypatch.setattr(inference, "supported", lambda network, config: False)
    monkeypatch.setattr(scrambled_tagger, "_predict_fn", None)
    monkeypatch.setattr(scrambled_tagger, "_keras_fallback", False)  # restored with _predict_fn after the test

    def unused(table):
        raise AssertionError("the Keras fallback computes its own char features")

    monkeypatch.setattr(scrambled_tagger, "_row_features", unused)
    fallback = distinct_scores(scrambled_tagger, seqs, 16)
    for k, seq in enumerate(seqs):  # padding positions are never read, and differ
        np.testing.assert_allclose(fallback[k, : len(seq)], expected[k, : len(seq)], rtol=1e-5, atol=1e-5)


def test_char_features_once_per_distinct_word_equal_the_network(scrambled_tagger):
    rng = random.Random(5)
    lengths = ["ب" * n for n in range(1, 26)] + ["abcdefghijklmnopqrstuvwxyz0123"]  # up to and past 20 chars
    seqs = [random_words(rng, n) for n in (1, 7, 30, 64)] + [["مُحَمَّد", "محمد", "abc", "😀", "محمد"], lengths]
    assert_distinct_scores_match_network(scrambled_tagger, seqs, 64)
    for only in (["قصير", "في"], ["والمستشفيات", "بالاستثمارات"], lengths[-6:]):  # one group empty
        assert_distinct_scores_match_network(scrambled_tagger, [only], 8)


def test_short_sentence_alone_or_batched_with_others(scrambled_tagger):
    rng = random.Random(3)
    short = [random_words(rng, n) for n in (3, 5, 9, 12)]
    others = [random_words(rng, rng.randint(1, 200)) for _ in range(300)]
    alone = [scrambled_tagger.predict([s])[0] for s in short]
    batched = scrambled_tagger.predict(others[:150] + short + others[150:])[150: 150 + len(short)]
    assert batched == alone


def test_identical_sentences_in_one_batch_get_identical_tags(scrambled_tagger):
    rng = random.Random(4)
    sent = random_words(rng, 17)
    out = scrambled_tagger.predict([sent] * 40 + [random_words(rng, 17) for _ in range(40)] + [sent] * 40)
    assert all(tags == out[0] for tags in out[:40] + out[80:])


# --------------------------------------------------------------------------- save / load


def test_model_dir_contents(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE, META_FILE} <= names
    assert not [n for n in names if n.endswith((".pkl", ".pickle", ".npy", ".npz", ".keras", ".joblib"))]
    for p in tiny_model_dir.iterdir():
        head = p.read_bytes()[:8]
        assert not head.startswith(b"\x80"), f"{p.name} looks like a pickle"
        if p.suffix == ".json":
            json.loads(p.read_text(encoding="utf-8"))
    assert (tiny_model_dir / WEIGHTS_FILE).read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    config = json.loads((tiny_model_dir / CONFIG_FILE).read_text())
    assert config["format_version"] == FORMAT_VERSION and config["normalization_version"] == NORMALIZATION_VERSION
    assert config["tags"] == list(TAGS)
    vocab = json.loads((tiny_model_dir / VOCAB_FILE).read_text(encoding="utf-8"))
    assert vocab["words"][:2] == ["<pad>", "<unk>"] and "محمد" in vocab["words"]


def test_save_load_round_trip(scrambled_tagger, tmp_path):
    scrambled_tagger.save(tmp_path / "copy")
    loaded = Tagger.load(tmp_path / "copy")
    assert loaded.config == scrambled_tagger.config
    assert loaded.vocab.words == scrambled_tagger.vocab.words and loaded.vocab.chars == scrambled_tagger.vocab.chars
    rng = random.Random(6)
    seqs = [random_words(rng, n) for n in (1, 4, 31, 32, 33, 100, 700)]
    assert loaded.predict(seqs) == scrambled_tagger.predict(seqs)
    for a, b in zip(loaded.network.get_weights(), scrambled_tagger.network.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert loaded.meta == scrambled_tagger.meta
    assert {p.name for p in (tmp_path / "copy").iterdir()} == {CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE, META_FILE}


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(path.stat().st_size))


CORRUPTIONS = {
    "missing_config": (CONFIG_FILE, lambda d: (d / CONFIG_FILE).unlink()),
    "config_not_json": (CONFIG_FILE, lambda d: (d / CONFIG_FILE).write_text("{not json", encoding="utf-8")),
    "config_not_utf8": (CONFIG_FILE, lambda d: (d / CONFIG_FILE).write_bytes(b"\xff\xfe\x00{")),
    "config_a_list": (CONFIG_FILE, lambda d: (d / CONFIG_FILE).write_text("[1, 2]")),
    "format_version_999": (CONFIG_FILE, lambda d: _edit_json(d / CONFIG_FILE, lambda c: c.update(format_version=999))),
    "normalization_version": (CONFIG_FILE, lambda d: _edit_json(
        d / CONFIG_FILE, lambda c: c.update(normalization_version=NORMALIZATION_VERSION + 1))),
    "config_unknown_key": (CONFIG_FILE, lambda d: _edit_json(d / CONFIG_FILE, lambda c: c.update(colour="red"))),
    "config_bad_output": (CONFIG_FILE, lambda d: _edit_json(d / CONFIG_FILE, lambda c: c.update(output="svm"))),
    "config_fewer_tags": (WEIGHTS_FILE, lambda d: _edit_json(d / CONFIG_FILE, lambda c: c.update(tags=["O", "B-PERS"]))),
    "missing_vocab": (VOCAB_FILE, lambda d: (d / VOCAB_FILE).unlink()),
    "vocab_without_words": (VOCAB_FILE, lambda d: _edit_json(d / VOCAB_FILE, lambda v: v.pop("words"))),
    "vocab_not_json": (VOCAB_FILE, lambda d: (d / VOCAB_FILE).write_text("", encoding="utf-8")),
    "vocab_max_word_chars": (VOCAB_FILE, lambda d: _edit_json(d / VOCAB_FILE, lambda v: v.update(max_word_chars=7))),
    "vocab_max_word_chars_not_int": (VOCAB_FILE, lambda d: _edit_json(
        d / VOCAB_FILE, lambda v: v.update(max_word_chars="many"))),
    "meta_not_json": (META_FILE, lambda d: (d / META_FILE).write_text("{", encoding="utf-8")),
    "missing_weights": (WEIGHTS_FILE, lambda d: (d / WEIGHTS_FILE).unlink()),
    "weights_truncated": (WEIGHTS_FILE, lambda d: _truncate(d / WEIGHTS_FILE)),
    "weights_random_bytes": (WEIGHTS_FILE, lambda d: _random_bytes(d / WEIGHTS_FILE)),
    "weights_empty": (WEIGHTS_FILE, lambda d: (d / WEIGHTS_FILE).write_bytes(b"")),
    "weights_a_directory": (WEIGHTS_FILE, lambda d: ((d / WEIGHTS_FILE).unlink(), (d / WEIGHTS_FILE).mkdir())),
    # Extra words: the embedding matrix no longer fits the weights file.
    "vocab_extra_words": ((WEIGHTS_FILE, VOCAB_FILE), lambda d: _edit_json(
        d / VOCAB_FILE, lambda v: v["words"].extend(f"word{i}" for i in range(7)))),
    "vocab_extra_chars": ((WEIGHTS_FILE, VOCAB_FILE), lambda d: _edit_json(
        d / VOCAB_FILE, lambda v: v["chars"].extend(["X", "Y"]))),
    "lstm_units_changed": ((WEIGHTS_FILE, CONFIG_FILE), lambda d: _edit_json(
        d / CONFIG_FILE, lambda c: c.update(lstm_units=c["lstm_units"] + 8))),
    "output_softmax_instead_of_crf": ((WEIGHTS_FILE, CONFIG_FILE), lambda d: _edit_json(
        d / CONFIG_FILE, lambda c: c.update(output="softmax"))),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_model_dir_raises_model_load_error(case, tiny_model_dir, tmp_path):
    names, corrupt = CORRUPTIONS[case]
    names = (names,) if isinstance(names, str) else names
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    corrupt(model)
    with pytest.raises(ModelLoadError) as info:
        Tagger.load(model)
    assert type(info.value) is ModelLoadError
    message = str(info.value)
    assert any(name in message for name in names), message
    assert str(model) in message, message


def test_missing_model_dir(tmp_path):
    for path in (tmp_path / "nothing", str(tmp_path / "nothing"), tmp_path / CONFIG_FILE):
        with pytest.raises(ModelLoadError, match="nothing|config.json"):
            Tagger.load(path)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ModelLoadError, match="a_file"):
        Tagger.load(tmp_path / "a_file")


INVALID_HYPERPARAMETERS = [("lstm_units", 0), ("dropout", 2.0), ("word_dim", "abc"), ("char_kernel", 0),
                           ("lstm_layers", "two"), ("tags", [])]


@pytest.mark.parametrize("key,value", INVALID_HYPERPARAMETERS)
def test_invalid_hyperparameter_in_config_raises_model_load_error(key, value, tiny_model_dir, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    _edit_json(model / CONFIG_FILE, lambda c: c.update({key: value}))
    with pytest.raises(ModelLoadError, match=CONFIG_FILE.replace(".", r"\.")):
        Tagger.load(model)


# --------------------------------------------------------------------------- training


def test_model_config_validation():
    with pytest.raises(ValueError, match="output"):
        ModelConfig(output="bad")
    with pytest.raises(ValueError, match="window"):
        ModelConfig(window=8, context=4)
    assert ModelConfig(window=9, context=4).window == 9
    assert ModelConfig(output="softmax").output == "softmax"


def test_bucket_rounds_up_to_multiples_of_16():
    assert [_bucket(n) for n in (0, 1, 16, 17, 32, 33)] == [16, 16, 16, 32, 32, 48]


def test_tiny_model_meta(tiny_model_dir):
    meta = json.loads((tiny_model_dir / META_FILE).read_text(encoding="utf-8"))
    assert meta["name"] == "aner_lstm"
    assert meta["sentences"] == {"train": 24, "dev": 8}
    assert meta["vectors"]["rows_with_vectors"] == 0 and meta["vectors"]["file"] is None
    log = json.loads((tiny_model_dir / "training.json").read_text())["epochs"]
    assert [e["epoch"] for e in log] == [1, 2] and meta["epochs_run"] == 2
    assert meta["hyperparameters"]["trainable_embeddings"] is True  # no vectors: embeddings are learnt


@pytest.mark.slow
def test_train_with_vectors(tiny_conll_file, tiny_vectors_kv, tmp_path):
    from gensim.models import KeyedVectors

    from spacy_aner.training import train

    out = tmp_path / "model"
    meta = train(tiny_conll_file, out, vectors=tiny_vectors_kv, dev_fraction=0.2, epochs=2, verbose=0,
                 config=ModelConfig(lstm_units=8, lstm_layers=1, char_filters=8, window=32, context=4))
    on_disk = json.loads((out / META_FILE).read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps(meta))
    kv = KeyedVectors.load(str(tiny_vectors_kv))
    vocab = json.loads((out / VOCAB_FILE).read_text(encoding="utf-8"))["words"]
    keys = {normalize_word(w): w for w in kv.index_to_key}
    assert meta["vectors"]["source_keys"] == len(kv) == 10
    assert meta["vectors"]["rows_with_vectors"] == sum(w in keys for w in vocab[2:]) == 10
    assert "دمشق" in vocab  # a vectors word absent from the training data is kept
    assert meta["vectors"]["sha256"] and meta["vectors"]["file"] == str(tiny_vectors_kv)
    assert meta["sentences"] == {"train": 26, "dev": 6}
    assert {"micro", "macro", "per_type"} <= set(meta["dev_scores"])
    assert 0 <= meta["dev_scores"]["micro"]["f1"] <= 100
    log = json.loads((out / "training.json").read_text())["epochs"]
    assert len(log) == meta["epochs_run"] == 2 and [e["epoch"] for e in log] == [1, 2]
    assert meta["best_epoch"] in (1, 2)
    assert all(np.isfinite(e["loss"]) for e in log)
    # The vectors are the (frozen) embedding rows of their words.
    tagger = Tagger.load(out)
    assert tagger.config.word_dim == 8 and not tagger.config.trainable_embeddings
    matrix = tagger.network.get_layer("word_embedding").get_weights()[0]
    assert matrix.shape == (len(vocab), 8)
    for key, word in keys.items():
        np.testing.assert_allclose(matrix[tagger.vocab.word_index[key]], kv[word], rtol=1e-3, atol=1e-3)  # stored in float16
    assert len(tagger.predict([["محمد", "في", "القاهرة"]])[0]) == 3


@pytest.mark.slow
def test_train_softmax(tiny_conll_file, tmp_path):
    from spacy_aner.training import train

    out = tmp_path / "model"
    meta = train(tiny_conll_file, out, dev_fraction=0.2, epochs=1, verbose=0, lr_decay=1.0,
                 config=ModelConfig(lstm_units=8, lstm_layers=1, char_filters=8, window=32, context=4, output="softmax"))
    assert meta["hyperparameters"]["output"] == "softmax" and meta["epochs_run"] == 1 and meta["best_epoch"] == 1
    tagger = Tagger.load(out)
    assert tagger.config.output == "softmax"
    assert tagger.network.get_layer("tag_scores").weights == []  # no CRF transitions
    tags = tagger.predict([["محمد", "يعيش", "في", "الرباط"], []])
    assert [len(t) for t in tags] == [4, 0] and set(tags[0]) <= set(TAGS)


def test_train_rejects_empty_dev(tmp_path):
    from spacy_aner.training import train

    data = tmp_path / "one.conll"
    data.write_text("محمد\tB-PERS\n", encoding="utf-8")
    with pytest.raises(ValueError, match="dev"):
        train(data, tmp_path / "model", dev_fraction=0.2, epochs=1, verbose=0)


def test_network_calls_share_a_length_and_stay_under_the_token_cap(scrambled_tagger, monkeypatch):
    """One padded length per call, at most batch_size windows, at most MAX_BATCH_TOKENS tokens."""
    import spacy_aner.model as model_module

    monkeypatch.setattr(model_module, "MAX_BATCH_TOKENS", 256)
    real = scrambled_tagger._scores_fn()
    shapes = []

    def recording(inputs):
        shapes.append(inputs["words"].shape)
        return real(inputs)

    monkeypatch.setattr(scrambled_tagger, "_scores_fn", lambda: recording)
    rng = random.Random(4)
    seqs = [random_words(rng, rng.randint(1, 70)) for _ in range(60)]
    expected = [scrambled_tagger.predict([s])[0] for s in seqs]
    shapes.clear()
    assert scrambled_tagger.predict(seqs, batch_size=8) == expected
    cfg = scrambled_tagger.config
    assert sum(n for n, _ in shapes) == sum(len(make_windows(len(s), cfg.window, cfg.context)) for s in seqs)
    assert all(n <= 8 and n * length <= 256 for n, length in shapes)
    assert len({length for _, length in shapes}) > 1


def test_saved_weights_hold_no_optimizer_state(tiny_model_dir):
    """Training compiles the network; the saved file must still hold only the model's weights."""
    import h5py

    with h5py.File(tiny_model_dir / WEIGHTS_FILE, "r") as f:
        assert not [k for k in f.keys() if k.startswith("optimizer")]


# --------------------------------------------------------------------------- ensembles


@pytest.fixture(scope="module")
def seed_members(tiny_conll_file, tiny_vectors_kv, tmp_path_factory):
    """Two tiny models from the same data and vectors, differing only in their seed."""
    from spacy_aner.training import train

    folder = tmp_path_factory.mktemp("members")
    dirs = []
    for seed in (1, 2):
        train(tiny_conll_file, folder / f"seed{seed}", vectors=tiny_vectors_kv, dev_fraction=0.2, epochs=1,
              verbose=0, seed=seed, config=ModelConfig(lstm_units=8, lstm_layers=1, char_filters=8, window=32, context=4))
        dirs.append(folder / f"seed{seed}")
    return dirs


def _scrambled(tagger: Tagger, seed: int) -> Tagger:
    """Random output layers, so members disagree and tag most words (untuned ones tag nothing)."""
    rng = np.random.default_rng(seed)
    for name in ("scores", "tag_scores"):
        layer = tagger.network.get_layer(name)
        layer.set_weights([rng.normal(0, 3.0, w.shape).astype(w.dtype) for w in layer.get_weights()])
    return tagger


def test_ensemble_decodes_the_averaged_scores_of_its_members(seed_members, tmp_path):
    from spacy_aner.model import merge_members

    members = [_scrambled(Tagger.load(d), seed) for seed, d in enumerate(seed_members)]
    merged = merge_members(members)
    assert merged.config.members == 2
    seqs = [random_words(random.Random(i), n) for i, n in enumerate([1, 5, 12, 40])]
    words, chars = merged.vocab.encode(seqs, 48)
    x = {"words": words, "chars": chars}
    member_scores = [m.network(x, training=False).numpy() for m in members]
    np.testing.assert_allclose(merged.network(x, training=False).numpy(), np.mean(member_scores, 0), rtol=1e-5, atol=1e-5)
    params = [m._crf_params() for m in members]
    expected = [[TAGS[i] for i in viterbi_decode(np.mean(member_scores, 0)[k, : len(s)],
                                                 *[np.mean([p[j] for p in params], 0) for j in range(3)])]
                for k, s in enumerate(seqs)]
    predicted = merged.predict(seqs)
    assert predicted == expected
    assert predicted != members[0].predict(seqs) or predicted != members[1].predict(seqs)
    # Saved and loaded like any model; the shared word vectors are stored once.
    merged.save(tmp_path / "ens", meta={"name": "aner_lstm"})
    loaded = Tagger.load(tmp_path / "ens")
    assert loaded.config.members == 2 and loaded.predict(seqs) == predicted
    assert sum("word_embedding" in w.path for w in loaded.network.weights) == 1


def test_ensemble_refuses_models_that_do_not_share_vectors_and_vocabulary(seed_members, tiny_model_dir, tmp_path):
    from spacy_aner.model import merge_members

    a, b = (Tagger.load(d) for d in seed_members)
    with pytest.raises(ValueError, match="at least two"):
        merge_members([a])
    with pytest.raises(ValueError, match="other hyperparameters"):  # no vectors, other sizes
        merge_members([a, Tagger.load(tiny_model_dir)])
    other_data = Tagger.load(seed_members[1])
    other_data.meta["train_sha256"] = "0" * 64
    with pytest.raises(ValueError, match="other training data"):
        merge_members([a, other_data])
    layer = b.network.get_layer("word_embedding")
    layer.set_weights([layer.get_weights()[0] + 1.0])
    with pytest.raises(ValueError, match="different word vectors"):
        merge_members([a, b])
    c = Tagger.load(seed_members[1])
    c.vocab.words[-1] = "كلمة"
    with pytest.raises(ValueError, match="different vocabulary"):
        merge_members([a, c])


def test_ensemble_command_records_members_and_dev_scores(seed_members, tiny_conll_file, tmp_path):
    from typer.testing import CliRunner

    from spacy_aner.cli import app

    out = tmp_path / "ens"
    result = CliRunner().invoke(app, ["ensemble", *map(str, seed_members), "--dev", str(tiny_conll_file), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "ensemble of 2: dev F1" in result.output
    meta = json.loads((out / META_FILE).read_text(encoding="utf-8"))
    assert [m["seed"] for m in meta["members"]] == [1, 2]
    assert meta["hyperparameters"]["members"] == 2 and meta["vectors"]["sha256"]
    assert 0 <= meta["dev_scores"]["micro"]["f1"] <= 100
    assert all(0 <= m["dev_f1"] <= 100 for m in meta["members"])
    curves = json.loads((out / "training.json").read_text())["members"]
    assert [len(c) for c in curves] == [1, 1]
    assert Tagger.load(out).config.members == 2
    scored = CliRunner().invoke(app, ["evaluate", str(tiny_conll_file), "--model", str(out), "-o", str(tmp_path / "eval")])
    assert scored.exit_code == 0, scored.output
    assert (tmp_path / "eval" / "training_curves.png").stat().st_size > 1000  # one curve per member
    missing = CliRunner().invoke(app, ["ensemble", str(seed_members[0]), str(tmp_path / "nope"),
                                       "--dev", str(tiny_conll_file), "-o", str(tmp_path / "x")])
    assert missing.exit_code == 1 and "model directory not found" in missing.output


def test_first_two_training_batches_differ_in_length_for_every_seed():
    """Keras fixes the input signature from the first two batches; equal lengths broke training."""
    from spacy_aner.corpus import Sentence
    from spacy_aner.training import batches_class

    vocab = Vocabulary.build(WORDS, 20)
    # 30 short sentences (one padded length) and 2 long ones: most shuffles start short, short.
    sents = [Sentence(["محمد"] * n, ["O"] * n, 0) for n in [3] * 30 + [40, 41]]
    for seed in range(40):
        data = batches_class()(sents, vocab, TAGS, batch_size=2, seed=seed)
        first, second = (data[i][0]["words"].shape[1] for i in (0, 1))
        assert first != second, seed
        assert sorted(i for b in data.batches for i in b) == list(range(len(sents)))


_LABELS = ("PERS", "LOC", "ORG", "MISC")


@st.composite
def _tagged_sentences(draw):
    """A sentence as spans over O words (adjacent entities included) and a pool of mentions."""
    from spacy_aner.corpus import Sentence
    from spacy_aner.tags import spans_to_bio

    pieces = draw(st.lists(st.one_of(st.just(None), st.tuples(st.sampled_from(_LABELS), st.integers(1, 4))),
                           min_size=1, max_size=12))
    words, spans = [], []
    for k, piece in enumerate(pieces):
        if piece is None:
            words.append(f"o{k}")
        else:
            label, n = piece
            spans.append((len(words), len(words) + n, label))
            words.extend(f"{label}{k}_{j}" for j in range(n))
    pool = {label: [tuple(f"{label}_pool{i}_{j}" for j in range(n)) for i, n in enumerate(draw(
        st.lists(st.integers(1, 5), min_size=1, max_size=4)))] for label in _LABELS}
    return Sentence(words, spans_to_bio(spans, len(words)), 7), pool


@settings(max_examples=150, deadline=None)
@given(case=_tagged_sentences(), rate=st.sampled_from([0.0, 0.3, 1.0]), seed=st.integers(0, 10),
       slack=st.integers(0, 6))
def test_replace_mentions_keeps_the_context_labels_and_window(case, rate, seed, slack):
    from spacy_aner.tags import bio_to_spans
    from spacy_aner.training import replace_mentions

    sentence, pool = case
    max_len = len(sentence.words) + slack
    out = replace_mentions(sentence, pool, rate, random.Random(seed), max_len)
    before, after = bio_to_spans(sentence.tags), bio_to_spans(out.tags)
    assert out.line == sentence.line and len(out.words) == len(out.tags) <= max_len
    assert [label for *_, label in after] == [label for *_, label in before]  # the same entities, in order
    assert out.tags == [t for t in out.tags if t == "O" or t[2:] in _LABELS]
    in_entity = lambda spans, n: {i for s, e, _ in spans for i in range(s, e)}  # noqa: E731
    context = lambda sent, spans: [w for i, w in enumerate(sent.words) if i not in in_entity(spans, 0)]  # noqa: E731
    assert context(out, after) == context(sentence, before)  # the words around entities never change
    for (s0, e0, _), (s1, e1, label) in zip(before, after):
        words = tuple(out.words[s1:e1])
        assert words == tuple(sentence.words[s0:e0]) or words in pool[label]
    if rate == 0.0:
        assert out == sentence
    if rate == 1.0 and slack >= 5 * len(before):  # room for any draw: every entity is replaced
        assert all(tuple(out.words[s:e]) in pool[label] for s, e, label in after)


@settings(max_examples=150, deadline=None)
@given(case=_tagged_sentences(), rate=st.sampled_from([0.0, 0.3, 1.0]), seed=st.integers(0, 10))
def test_shorten_names_cuts_only_long_person_names_to_one_of_their_ends(case, rate, seed):
    from spacy_aner.tags import bio_to_spans
    from spacy_aner.training import shorten_names

    sentence, _ = case
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
    from spacy_aner.corpus import Sentence
    from spacy_aner.training import shorten_names

    sent = Sentence(["قال", "محمد", "علي", "حسن", "إن", "القاهرة"], ["O", "B-PERS", "I-PERS", "I-PERS", "O", "B-LOC"])
    rng = random.Random(0)
    outs = {tuple(shorten_names(sent, 1.0, rng).words) for _ in range(50)}
    assert outs == {("قال", "محمد", "إن", "القاهرة"), ("قال", "حسن", "إن", "القاهرة")}
    assert shorten_names(sent, 1.0, rng).tags == ["O", "B-PERS", "O", "B-LOC"]


def test_training_batches_shorten_names_anew_and_keep_the_padded_length():
    from spacy_aner.corpus import Sentence
    from spacy_aner.training import batches_class

    vocab = Vocabulary.build(WORDS, 20)
    # 17 words pad to 32; cut to 16 they would pad to 16 if the length were taken after the cut
    words = ["زار", "محمد", "علي", "القاهرة"] + ["أمس"] * 13
    tags = ["O", "B-PERS", "I-PERS", "B-LOC"] + ["O"] * 13
    sents = [Sentence(words, tags) for _ in range(8)]
    data = batches_class()(sents, vocab, TAGS, batch_size=4, seed=0, name_shortening=0.5)
    draws = [data[0] for _ in range(6)]
    assert all(x["words"].shape == (4, 32) for x, _ in draws)
    assert len({y.tobytes() for _, y in draws}) > 1  # a new cut every time the batch is served
    ys = np.concatenate([y for _, y in draws])
    tag = {t: i for i, t in enumerate(TAGS)}
    one_word = (ys[:, 1] == tag["B-PERS"]) & (ys[:, 2] != tag["I-PERS"])
    assert one_word.any() and (~one_word).any()


def test_name_shortening_leaves_the_other_random_streams_alone():
    """Batch order and the word-dropout mask are the same with and without shortening."""
    from spacy_aner.corpus import Sentence
    from spacy_aner.training import batches_class

    vocab = Vocabulary.build(WORDS, 20)
    sents = [Sentence(["زار", "محمد", "القاهرة", "أمس"][: 2 + i % 3], ["O", "B-PERS", "B-LOC", "O"][: 2 + i % 3])
             for i in range(24)]  # one-word names only: shortening has nothing to cut
    short = batches_class()(sents, vocab, TAGS, batch_size=4, seed=3, word_dropout=0.5, name_shortening=1.0)
    plain = batches_class()(sents, vocab, TAGS, batch_size=4, seed=3, word_dropout=0.5)
    assert short.batches == plain.batches
    for _ in range(2):  # two epochs
        for i in range(len(plain)):
            (a, ya), (b, yb) = short[i], plain[i]
            assert (a["words"] == b["words"]).all() and (ya == yb).all()


def test_crop_context_never_cuts_an_entity_and_reaches_every_boundary():
    from spacy_aner.corpus import Sentence
    from spacy_aner.tags import bio_to_spans
    from spacy_aner.training import crop_context

    words = ["قال", "محمد", "علي", "إن", "الأمم", "المتحدة", "في", "القاهرة"]
    tags = ["O", "B-PERS", "I-PERS", "O", "B-ORG", "I-ORG", "O", "B-LOC"]
    sent = Sentence(words, tags, 7)
    whole = set(bio_to_spans(tags))
    rng = random.Random(0)
    seen = set()
    for _ in range(2000):
        crop = crop_context(sent, 1.0, rng)
        start = next(i for i in range(len(words)) if words[i:i + len(crop.words)] == crop.words)
        seen.add((start, start + len(crop.words)))
        assert crop.tags == tags[start:start + len(crop.words)] and crop.line == 7 and crop.words
        # every entity of the crop is a whole entity of the sentence
        assert {(a + start, b + start, lab) for a, b, lab in bio_to_spans(crop.tags)} <= whole
        assert not crop.tags[0].startswith("I-")
    cuts = [0, 1, 3, 4, 6, 7, 8]
    assert seen == {(a, b) for a in cuts[:-1] for b in cuts if b > a}  # every stretch that cuts nothing
    assert crop_context(sent, 0.0, rng) is sent
    assert sum(crop_context(sent, 0.3, rng) is sent for _ in range(2000)) == pytest.approx(1400, abs=100)
    one = Sentence(["محمد"], ["B-PERS"])
    assert crop_context(one, 1.0, rng) is one
    stray = Sentence(["محمد", "علي"], ["I-PERS", "I-PERS"])  # unrepaired: no boundary to start at
    assert crop_context(stray, 1.0, rng) is stray


def test_context_crops_keep_the_padded_length_and_draw_anew():
    from spacy_aner.corpus import Sentence
    from spacy_aner.training import batches_class

    vocab = Vocabulary.build(WORDS, 20)
    sents = [Sentence(["زار", "محمد", "علي", "القاهرة"] + ["أمس"] * (13 + i % 3),
                      ["O", "B-PERS", "I-PERS", "B-LOC"] + ["O"] * (13 + i % 3)) for i in range(12)]
    crops = batches_class()(sents, vocab, TAGS, batch_size=4, seed=3, context_crops=1.0)
    plain = batches_class()(sents, vocab, TAGS, batch_size=4, seed=3)
    assert crops.batches == plain.batches
    served = [crops[0] for _ in range(4)]
    assert all(x["words"].shape == plain[0][0]["words"].shape == (4, 32) for x, _ in served)
    assert len({x["words"].tobytes() for x, _ in served}) > 1  # a new stretch every time the batch is served
    assert any((x["words"][:, 20:] == 0).all() for x, _ in served)  # crops are shorter than the sentences


def test_context_crops_leave_the_other_random_streams_alone():
    """Batch order and the word-dropout mask are the same with and without crops."""
    from spacy_aner.corpus import Sentence
    from spacy_aner.training import batches_class, crop_context

    vocab = Vocabulary.build(WORDS, 20)
    # One entity filling each sentence: every crop is the whole sentence, yet the crop stream is drawn from.
    sents = [Sentence(["محمد", "علي", "حسن"][: 1 + i % 3], ["B-PERS", "I-PERS", "I-PERS"][: 1 + i % 3])
             for i in range(24)]
    rng = random.Random(0)
    assert all(crop_context(s, 1.0, rng).words == s.words for s in sents)
    crops = batches_class()(sents, vocab, TAGS, batch_size=4, seed=3, word_dropout=0.5, context_crops=1.0)
    plain = batches_class()(sents, vocab, TAGS, batch_size=4, seed=3, word_dropout=0.5)
    before = crops.crop_rng.getstate()
    for _ in range(2):  # two epochs
        for i in range(len(plain)):
            (a, ya), (b, yb) = crops[i], plain[i]
            assert (a["words"] == b["words"]).all() and (ya == yb).all()
        crops.on_epoch_end()
        plain.on_epoch_end()
        assert crops.batches == plain.batches
    assert crops.crop_rng.getstate() != before  # the crops did draw


def test_mention_pool_counts_every_occurrence():
    from spacy_aner.corpus import Sentence
    from spacy_aner.training import mention_pool

    sents = [Sentence(["زار", "محمد", "علي", "باريس"], ["O", "B-PERS", "I-PERS", "B-LOC"]),
             Sentence(["باريس", "جميلة"], ["I-LOC", "O"])]  # a stray I- opens an entity, as seqeval reads it
    assert mention_pool(sents) == {"PERS": [("محمد", "علي")], "LOC": [("باريس",), ("باريس",)]}


def test_training_batches_draw_new_mentions_every_epoch():
    from spacy_aner.corpus import Sentence
    from spacy_aner.training import batches_class

    vocab = Vocabulary.build(WORDS, 20)
    names = ["محمد", "أحمد", "علي"]
    sents = [Sentence(["زار", names[i % 3], "القاهرة", "أمس"], ["O", "B-PERS", "B-LOC", "O"]) for i in range(12)]
    data = batches_class()(sents, vocab, TAGS, batch_size=4, seed=0, mention_rate=1.0, max_len=8)
    draws = [np.concatenate([data[i][0]["words"] for i in range(len(data))]) for _ in range(4)]
    labels = [np.concatenate([data[i][1] for i in range(len(data))]) for _ in range(2)]
    assert all((d[:, [0, 2, 3]] == draws[0][:, [0, 2, 3]]).all() for d in draws)  # context and the LOC pool of one
    assert len({d[:, 1].tobytes() for d in draws}) > 1  # the names are drawn anew each time
    assert set(np.concatenate([d[:, 1] for d in draws])) == set(vocab.encode([names], 3)[0][0])
    assert (labels[0] == labels[1]).all()
    plain = batches_class()(sents, vocab, TAGS, batch_size=4, seed=0)
    assert (plain[0][0]["words"] == plain[0][0]["words"]).all() and plain.mentions == {}


def test_mention_replacement_keeps_each_batch_padded_length():
    """Keras fixes the input signature from the first two batches: replacement must not change their lengths."""
    from spacy_aner.corpus import Sentence
    from spacy_aner.training import batches_class

    vocab = Vocabulary.build(WORDS, 20)
    long_name = ["الأمم"] * 30  # one 30-word "name" in the pool: any swap would cross a 16-word bucket
    sents = [Sentence(["زار", "محمد", "أمس"] * 5, ["O", "B-PERS", "O"] * 5) for _ in range(8)]
    sents += [Sentence(long_name, ["B-PERS"] + ["I-PERS"] * 29)]
    for seed in range(5):
        data = batches_class()(sents, vocab, TAGS, batch_size=4, seed=seed, mention_rate=1.0, max_len=64)
        plain = batches_class()(sents, vocab, TAGS, batch_size=4, seed=seed)
        for _ in range(3):
            assert [data[i][0]["words"].shape for i in range(len(data))] == \
                [plain[i][0]["words"].shape for i in range(len(plain))]


def test_train_records_mention_replacement_and_rejects_a_rate_outside_0_1(tiny_conll_file, tmp_path):
    from spacy_aner.training import train

    small = ModelConfig(lstm_units=4, lstm_layers=1, char_filters=4, window=32, context=4)
    meta = train(tiny_conll_file, tmp_path / "m", dev_fraction=0.2, epochs=1, verbose=0, mention_replacement=0.5,
                 config=small)
    assert meta["hyperparameters"]["mention_replacement"] == 0.5 and meta["epochs_run"] == 1
    assert "token_loss" not in meta["hyperparameters"]  # recorded only when used
    with pytest.raises(ValueError, match="probability"):
        train(tiny_conll_file, tmp_path / "bad", dev_fraction=0.2, epochs=1, verbose=0, mention_replacement=1.5,
              config=small)
    meta = train(tiny_conll_file, tmp_path / "ns", dev_fraction=0.2, epochs=1, verbose=0, name_shortening=0.3,
                 config=small)
    assert meta["hyperparameters"]["name_shortening"] == 0.3
    meta = train(tiny_conll_file, tmp_path / "cc", dev_fraction=0.2, epochs=1, verbose=0, context_crops=0.3,
                 config=small)
    assert meta["hyperparameters"]["context_crops"] == 0.3
    with pytest.raises(ValueError, match="probability"):
        train(tiny_conll_file, tmp_path / "bad3", dev_fraction=0.2, epochs=1, verbose=0, context_crops=1.1,
              config=small)
    with pytest.raises(ValueError, match="probability"):
        train(tiny_conll_file, tmp_path / "bad2", dev_fraction=0.2, epochs=1, verbose=0, name_shortening=-0.1,
              config=small)
    meta = train(tiny_conll_file, tmp_path / "tl", dev_fraction=0.2, epochs=1, verbose=0, token_loss=1.0,
                 config=small)
    assert meta["hyperparameters"]["token_loss"] == 1.0
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="a weight"):
            train(tiny_conll_file, tmp_path / "bad4", dev_fraction=0.2, epochs=1, verbose=0, token_loss=bad,
                  config=small)
    with pytest.raises(ValueError, match="softmax output has only that loss"):
        train(tiny_conll_file, tmp_path / "bad5", dev_fraction=0.2, epochs=1, verbose=0, token_loss=1.0,
              config=ModelConfig(output="softmax", lstm_units=4, lstm_layers=1, char_filters=4, window=32, context=4))


def test_training_with_mixed_lengths_trains_for_any_seed(tmp_path):
    from spacy_aner.training import train

    lines = []
    for n in [40, 41] + [3] * 12:  # long ones first: dev is the last 20 %
        lines.append("\n".join(f"محمد\tB-PERS" if k == 0 else "في\tO" for k in range(n)))
    data = tmp_path / "mixed.conll"
    data.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    for seed in (1, 8):  # without the fix, both start with two batches of one padded length
        meta = train(data, tmp_path / f"m{seed}", dev_fraction=0.2, epochs=1, verbose=0, batch_size=2, seed=seed,
                     config=ModelConfig(lstm_units=4, lstm_layers=1, char_filters=4, window=64, context=4))
        assert meta["epochs_run"] == 1


def test_frozen_word_vectors_are_stored_in_half_precision(tiny_conll_file, tiny_vectors_kv, tmp_path):
    import h5py

    from spacy_aner.training import train

    train(tiny_conll_file, tmp_path / "m", vectors=tiny_vectors_kv, dev_fraction=0.2, epochs=1, verbose=0,
          config=ModelConfig(lstm_units=8, lstm_layers=1, char_filters=8, window=32, context=4))
    tagger = Tagger.load(tmp_path / "m")
    table = tagger.network.get_layer("word_embedding").get_weights()[0]
    with h5py.File(tmp_path / "m" / WEIGHTS_FILE, "r") as f:
        dtypes = {}
        f.visititems(lambda name, obj: dtypes.update({name: (obj.shape, obj.dtype)}) if isinstance(obj, h5py.Dataset) else None)
    halves = [name for name, (shape, dtype) in dtypes.items() if dtype == np.float16]
    assert len(halves) == 1 and dtypes[halves[0]][0] == table.shape  # the word table, nothing else
    assert sum(dtype == np.float32 for _, dtype in dtypes.values()) == len(dtypes) - 1
    # Saving the loaded model again is lossless, and predictions survive the round trip.
    seqs = [random_words(random.Random(3), 9)]
    words, chars = tagger.vocab.encode(seqs, 16)
    before = tagger.network({"words": words, "chars": chars}, training=False).numpy()
    tagger.save(tmp_path / "again")
    again = Tagger.load(tmp_path / "again")
    np.testing.assert_array_equal(again.network.get_layer("word_embedding").get_weights()[0], table)
    np.testing.assert_allclose(again.network({"words": words, "chars": chars}, training=False).numpy(), before, rtol=1e-5, atol=1e-5)


def test_large_weight_arrays_are_stored_compressed_without_loss(tmp_path):
    import h5py

    from spacy_aner.model import SCALE_DATASET, _store_word_vectors_compactly

    rng = np.random.default_rng(0)
    table = rng.normal(size=(3000, 100)).astype("float32")
    kernel = rng.normal(size=(356, 512)).astype("float32")
    bias = rng.normal(size=(512,)).astype("float32")
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        f["layers/embedding/vars/0"] = table
        f["layers/lstm/vars/0"] = kernel
        f["layers/lstm/vars/1"] = bias
        f["layers/lstm"].attrs["note"] = "kept"
    _store_word_vectors_compactly(path, table, bits=8)
    with h5py.File(path, "r") as f:
        assert f["layers/lstm"].attrs["note"] == "kept"
        np.testing.assert_array_equal(f["layers/lstm/vars/0"][()], kernel)
        np.testing.assert_array_equal(f["layers/lstm/vars/1"][()], bias)
        assert f["layers/lstm/vars/0"].compression == "gzip" and f["layers/lstm/vars/0"].shuffle
        assert f["layers/lstm/vars/1"].compression is None  # small: not worth a chunked layout
        stored, scale = f["layers/embedding/vars/0"], f[SCALE_DATASET][()]
        assert stored.dtype == np.int8 and stored.compression == "gzip"
        np.testing.assert_allclose(stored[()] * scale[:, None], table, atol=float(scale.max()) / 2 + 1e-7)


def test_word_vectors_in_8_bits_round_trip_and_merge(tiny_conll_file, tiny_vectors_kv, tmp_path):
    import h5py

    from spacy_aner.model import SCALE_DATASET, merge_members
    from spacy_aner.training import train

    def config(bits):
        return ModelConfig(lstm_units=8, lstm_layers=1, char_filters=8, window=32, context=4, word_vector_bits=bits)

    for seed, bits in ((1, 16), (1, 8), (2, 8)):
        train(tiny_conll_file, tmp_path / f"m{seed}_{bits}", vectors=tiny_vectors_kv, dev_fraction=0.2, epochs=1,
              verbose=0, seed=seed, config=config(bits))
    half, quarter = Tagger.load(tmp_path / "m1_16"), Tagger.load(tmp_path / "m1_8")
    assert json.loads((tmp_path / "m1_8" / CONFIG_FILE).read_text(encoding="utf-8"))["word_vector_bits"] == 8
    assert "word_vector_bits" not in json.loads((tmp_path / "m1_16" / CONFIG_FILE).read_text(encoding="utf-8"))
    with h5py.File(tmp_path / "m1_8" / WEIGHTS_FILE, "r") as f:
        dtypes = []
        f.visititems(lambda name, obj: dtypes.append(obj.dtype) if isinstance(obj, h5py.Dataset) else None)
        assert f[SCALE_DATASET].shape == (len(quarter.vocab.words),)
    assert dtypes.count(np.int8) == 1
    # The same training in 8 bits: the table is within one step of each row's scale.
    a = half.network.get_layer("word_embedding").get_weights()[0]
    b = quarter.network.get_layer("word_embedding").get_weights()[0]
    step = np.abs(a).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(a - b) <= step * 0.5 + 1e-3) and not np.array_equal(a, b)
    # Saving again re-quantises to the same integers; an ensemble of 8-bit members keeps the table.
    quarter.save(tmp_path / "again")
    np.testing.assert_array_equal(Tagger.load(tmp_path / "again").network.get_layer("word_embedding").get_weights()[0], b)
    merged = merge_members([quarter, Tagger.load(tmp_path / "m2_8")])
    merged.save(tmp_path / "ens")
    ens = Tagger.load(tmp_path / "ens")
    assert ens.config.word_vector_bits == 8 and ens.config.members == 2
    np.testing.assert_array_equal(ens.network.get_layer("word_embedding").get_weights()[0], b)
    seqs = [random_words(random.Random(5), 11)]
    assert ens.predict(seqs) == merged.predict(seqs)


def test_8_bit_vectors_without_their_scales_are_refused(tiny_conll_file, tiny_vectors_kv, tmp_path):
    import h5py

    from spacy_aner.model import SCALE_DATASET
    from spacy_aner.training import train

    train(tiny_conll_file, tmp_path / "m", vectors=tiny_vectors_kv, dev_fraction=0.2, epochs=1, verbose=0,
          config=ModelConfig(lstm_units=8, lstm_layers=1, char_filters=8, window=32, context=4, word_vector_bits=8))
    with h5py.File(tmp_path / "m" / WEIGHTS_FILE, "a") as f:
        del f[SCALE_DATASET]
    with pytest.raises(ModelLoadError, match="without their scales"):
        Tagger.load(tmp_path / "m")
    with pytest.raises(ValueError, match="word_vector_bits"):
        ModelConfig(word_vector_bits=4)


def test_train_refuses_an_ensemble_configuration(tiny_conll_file, tmp_path):
    from spacy_aner.training import train

    with pytest.raises(ValueError, match="spacy-aner ensemble"):
        train(tiny_conll_file, tmp_path / "m", dev_fraction=0.2, epochs=1, verbose=0, config=ModelConfig(members=2))


def test_single_model_config_omits_members(tiny_model_dir):
    """Builds from before ensembles refuse unknown config keys; a single model stays readable by them."""
    assert "members" not in json.loads((tiny_model_dir / CONFIG_FILE).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- refit (no dev set)


def test_stepped_learning_rate_replays_drops_with_a_floor():
    from spacy_aner.training import stepped_learning_rate

    rates = [stepped_learning_rate(e, 3e-3, 0.5, [2, 3, 10, 11, 12, 13, 14, 15]) for e in range(16)]
    assert rates[:2] == [3e-3, 3e-3] and rates[2] == 1.5e-3 and rates[3] == 7.5e-4
    assert min(rates) == pytest.approx(3e-3 / 50)  # the ReduceLROnPlateau floor of a dev run


@pytest.fixture(scope="module")
def refit_members(tiny_conll_file, tiny_vectors_kv, tmp_path_factory):
    from spacy_aner.training import train

    folder = tmp_path_factory.mktemp("refit")
    metas = []
    for seed, epochs, drops in ((1, 3, [1]), (2, 2, [])):
        metas.append(train(tiny_conll_file, folder / f"seed{seed}", vectors=tiny_vectors_kv, dev_fraction=0,
                           epochs=epochs, lr_drops=drops, verbose=0, seed=seed,
                           config=ModelConfig(lstm_units=8, lstm_layers=1, char_filters=8, window=32, context=4)))
    return [folder / "seed1", folder / "seed2"], metas


def test_refit_trains_fixed_epochs_on_all_sentences_with_the_replayed_schedule(refit_members):
    dirs, metas = refit_members
    meta = metas[0]
    assert meta["refit"] is True and meta["dev"] is None and meta["dev_scores"] is None and meta["best_epoch"] is None
    assert meta["sentences"] == {"train": 32, "dev": 0} and meta["epochs_run"] == 3
    assert meta["hyperparameters"]["lr_drops"] == [1]
    log = json.loads((dirs[0] / "training.json").read_text())["epochs"]
    assert [e["epoch"] for e in log] == [1, 2, 3]
    assert [e["learning_rate"] for e in log] == pytest.approx([3e-3, 1.5e-3, 1.5e-3])
    assert Tagger.load(dirs[0]).predict([["محمد", "في", "القاهرة"]])[0].__len__() == 3


def test_lr_drops_need_a_run_without_dev(tiny_conll_file, tmp_path):
    from spacy_aner.training import train

    with pytest.raises(ValueError, match="without a dev set"):
        train(tiny_conll_file, tmp_path / "m", dev_fraction=0.2, lr_drops=[1], epochs=1, verbose=0)


def test_ensemble_of_refit_members_has_no_dev_score(refit_members, tiny_conll_file, tmp_path):
    from typer.testing import CliRunner

    from spacy_aner.cli import app

    dirs, _ = refit_members
    out = tmp_path / "ens"
    with_dev = CliRunner().invoke(app, ["ensemble", *map(str, dirs), "--dev", str(tiny_conll_file), "-o", str(out)])
    assert with_dev.exit_code == 1 and "not be held out" in with_dev.output
    result = CliRunner().invoke(app, ["ensemble", *map(str, dirs), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "no held-out dev" in result.output
    meta = json.loads((out / META_FILE).read_text(encoding="utf-8"))
    assert meta["refit"] is True and meta["dev"] is None and meta["dev_scores"] is None
    assert [(m["seed"], m["lr_drops"], m["epochs_run"]) for m in meta["members"]] == [(1, [1], 3), (2, [], 2)]
    scored = CliRunner().invoke(app, ["evaluate", str(tiny_conll_file), "--model", str(out), "-o", str(tmp_path / "eval")])
    assert scored.exit_code == 0, scored.output
    assert (tmp_path / "eval" / "training_curves.png").stat().st_size > 1000


def test_train_cli_rejects_malformed_lr_drops(tiny_conll_file, tmp_path):
    from typer.testing import CliRunner

    from spacy_aner.cli import app

    result = CliRunner().invoke(app, ["train", str(tiny_conll_file), "--dev-fraction", "0", "--lr-drops", "3,x",
                                      "-o", str(tmp_path / "m")])
    assert result.exit_code == 1 and "--lr-drops" in result.output


def _dev_run_record(folder: Path, rates, best_epoch: int, **meta) -> Path:
    """The meta.json and training.json of a run with a dev set (the files refit_schedule reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / META_FILE).write_text(json.dumps({"refit": False, "best_epoch": best_epoch,
                                                "hyperparameters": {"learning_rate": 3e-3, "lr_decay": 0.5}, **meta}))
    (folder / "training.json").write_text(json.dumps({"epochs": [
        {"epoch": i + 1, "dev_f1": 50.0, **({"learning_rate": r} if r is not None else {})} for i, r in enumerate(rates)]}))
    return folder


def test_refit_schedule_reads_the_drops_before_the_best_epoch(tmp_path):
    from spacy_aner.training import refit_schedule

    run = _dev_run_record(tmp_path / "run", [3e-3, 3e-3, 3e-3, 1.5e-3, 1.5e-3, 7.5e-4, 7.5e-4, 3.75e-4], best_epoch=7)
    assert refit_schedule(run) == {"epochs": 7, "lr_drops": [3, 5], "learning_rate": 3e-3, "lr_decay": 0.5,
                                   "mention_replacement": 0.0, "name_shortening": 0.0, "context_crops": 0.0,
                                   "token_loss": 0.0, "unknown_without_vector": False,
                                   "char_kernels": []}  # runs from before the options had none
    # A drop after the best epoch is not part of the refit's epochs.
    assert refit_schedule(_dev_run_record(tmp_path / "early", [3e-3, 3e-3, 1.5e-3], best_epoch=2))["lr_drops"] == []
    with pytest.raises(ValueError, match="predates the per-epoch learning rate"):
        refit_schedule(_dev_run_record(tmp_path / "old", [None, None], best_epoch=1))
    with pytest.raises(ValueError, match="a refit has no dev-chosen schedule"):
        refit_schedule(_dev_run_record(tmp_path / "refit", [3e-3], best_epoch=None, refit=True))
    with pytest.raises(ValueError, match="fewer than the best epoch"):
        refit_schedule(_dev_run_record(tmp_path / "short", [3e-3, 3e-3], best_epoch=5))
    with pytest.raises(ValueError, match="not a model trained"):
        refit_schedule(tmp_path / "nothing")


def test_train_cli_refit_from_replays_the_dev_run_schedule(tiny_conll_file, tmp_path):
    from typer.testing import CliRunner

    from spacy_aner.cli import app

    run = _dev_run_record(tmp_path / "run", [3e-3, 3e-3, 1.5e-3, 1.5e-3], best_epoch=3)
    out = tmp_path / "refit"
    args = ["train", str(tiny_conll_file), "--dev-fraction", "0", "--refit-from", str(run), "-o", str(out),
            "--lstm-units", "8", "--lstm-layers", "1", "--char-filters", "8"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "3 epochs, learning rate x0.5 after epoch(s) 2" in result.output
    meta = json.loads((out / META_FILE).read_text(encoding="utf-8"))
    assert meta["refit"] and meta["epochs_run"] == 3 and meta["hyperparameters"]["lr_drops"] == [2]
    log = json.loads((out / "training.json").read_text())["epochs"]
    assert [e["learning_rate"] for e in log] == pytest.approx([3e-3, 3e-3, 1.5e-3])
    for extra, message in ((["--learning-rate", "0.001"], "learning_rate 0.003, not 0.001"),
                           (["--lr-drops", "1"], "--refit-from refits without a dev set"),
                           (["--mention-replacement", "0.3"], "mention_replacement 0.0, not 0.3"),
                           (["--name-shortening", "0.25"], "name_shortening 0.0, not 0.25"),
                           (["--context-crops", "0.3"], "context_crops 0.0, not 0.3"),
                           (["--token-loss", "1"], "token_loss 0.0, not 1.0")):
        bad = CliRunner().invoke(app, args + extra)
        assert bad.exit_code == 1 and message in bad.output
    bad = CliRunner().invoke(app, [a if a != "0" else "0.2" for a in args])
    assert bad.exit_code == 1 and "--refit-from refits without a dev set" in bad.output


def test_ensemble_subsets_benchmark_pairs_the_same_seed_subsets(seed_members, tiny_conll_file, tmp_path):
    """benchmarks/ensemble_subsets.py: a recipe compared with itself differs by exactly 0."""
    from conftest import load_script  # tests/ is on sys.path under pytest

    module = load_script(Path(__file__).parents[1] / "benchmarks" / "ensemble_subsets.py", "ensemble_subsets")
    out = tmp_path / "subsets.json"
    dirs = [str(d) for d in seed_members]
    assert module.main(["--a", *dirs, "--b", *dirs, "--dev", str(tiny_conll_file), "--size", "2",
                        "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["a"]["seeds"] == [1, 2] and [e["seeds"] for e in result["a"]["ensembles"]] == [[1, 2]]
    assert result["a"]["ensembles"] == result["b"]["ensembles"]
    assert result["paired_difference_b_minus_a"] == {"mean": 0.0, "sd": 0.0, "min": 0.0, "max": 0.0, "n": 1, "b_better": 0}
    with pytest.raises(SystemExit):
        module.main(["--a", *dirs, "--b", dirs[0], "--dev", str(tiny_conll_file)])


def test_added_vector_rows_equal_training_with_them(tiny_conll_file, tiny_vectors_kv, tmp_path):
    """Rows of non-training words never reach the gradient: adding them later = training with them.

    (Here the vector file brings no new characters; a file that does would give the model
    trained with every row more character ids.)
    """
    from gensim.models import KeyedVectors

    from spacy_aner.model import add_word_vectors
    from spacy_aner.training import add_vectors, train

    config = dict(lstm_units=8, lstm_layers=1, char_filters=8, window=32, context=4)
    for name, max_vocab in (("few", 1), ("all", 10_000)):  # 1: the training keys only
        train(tiny_conll_file, tmp_path / name, vectors=tiny_vectors_kv, dev_fraction=0, epochs=2, lr_drops=[],
              verbose=0, seed=3, max_vocab=max_vocab, config=ModelConfig(**config))
    few, full = Tagger.load(tmp_path / "few"), Tagger.load(tmp_path / "all")
    extra = [w for w in full.vocab.words if w not in set(few.vocab.words)]
    assert extra  # the vector file has words the training file lacks
    for a, b in zip(few.network.layers, full.network.layers):
        if a.weights and a.name != "word_embedding":
            for x, y in zip(a.get_weights(), b.get_weights()):
                np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    meta = add_vectors(tmp_path / "few", tiny_vectors_kv, tmp_path / "added", command="test")
    added = Tagger.load(tmp_path / "added")
    assert meta["added_vectors"]["rows_added"] == len(extra) and sorted(added.vocab.words) == sorted(full.vocab.words)
    # A proclitic form of an added word backs off to its new row; before, it was unknown.
    joined = [["و" + extra[0]]]
    assert added.vocab.encode(joined, 1)[0][0, 0] == added.vocab.word_index[extra[0]]
    assert few.vocab.encode(joined, 1)[0][0, 0] == UNK
    sentence = [["محمد", "في", *extra, "باريس"]]
    words, chars = added.vocab.encode(sentence, 8)
    w2, c2 = full.vocab.encode(sentence, 8)
    np.testing.assert_allclose(added.network({"words": words, "chars": chars}, training=False).numpy(),
                               full.network({"words": w2, "chars": c2}, training=False).numpy(), rtol=1e-4, atol=1e-4)
    # Other vectors than the model's are refused.
    other = KeyedVectors(vector_size=8)
    other.add_vectors(["محمد", "في"], np.ones((2, 8), dtype="float32"))
    with pytest.raises(ValueError, match="not the vectors"):
        add_word_vectors(few, other)


def test_unknown_without_vector_reads_vectorless_training_words_as_unseen(tiny_conll_file, tiny_vectors_kv, tmp_path):
    from spacy_aner.embeddings import load_vectors, vectors_by_key
    from spacy_aner.training import train

    config = dict(lstm_units=8, lstm_layers=1, char_filters=8, window=32, context=4)
    train(tiny_conll_file, tmp_path / "rows", vectors=tiny_vectors_kv, dev_fraction=0.2, epochs=1, verbose=0,
          config=ModelConfig(**config))
    meta = train(tiny_conll_file, tmp_path / "unk", vectors=tiny_vectors_kv, dev_fraction=0.2, epochs=1, verbose=0,
                 unknown_without_vector=True, config=ModelConfig(**config))
    rows, unk = Tagger.load(tmp_path / "rows"), Tagger.load(tmp_path / "unk")
    with_vector = set(vectors_by_key(load_vectors(tiny_vectors_kv)))
    assert set(unk.vocab.words[2:]) == set(rows.vocab.words[2:]) & with_vector
    assert set(rows.vocab.words[2:]) - with_vector  # the option did drop words
    assert unk.vocab.chars == rows.vocab.chars  # characters of every training word are kept
    assert meta["hyperparameters"]["unknown_without_vector"] is True
    assert meta["vectors"]["rows_with_vectors"] == len(unk.vocab.words) - 2
    with pytest.raises(ValueError, match="needs --vectors"):
        train(tiny_conll_file, tmp_path / "x", dev_fraction=0.2, epochs=1, verbose=0, unknown_without_vector=True,
              config=ModelConfig(**config))


def test_add_vectors_to_a_model_read_through_back_off_is_marked_inexact(tiny_conll_file, tiny_vectors_kv, tmp_path):
    from spacy_aner.training import add_vectors, train

    train(tiny_conll_file, tmp_path / "unk", vectors=tiny_vectors_kv, dev_fraction=0.2, epochs=1, verbose=0,
          max_vocab=1, unknown_without_vector=True,
          config=ModelConfig(lstm_units=8, lstm_layers=1, char_filters=8, window=32, context=4))
    meta = add_vectors(tmp_path / "unk", tiny_vectors_kv, tmp_path / "out", command="test")
    assert meta["added_vectors"]["exact"] is False
    again = add_vectors(tmp_path / "out", tiny_vectors_kv, tmp_path / "again", command="test")
    assert again["added_vectors"]["rows_added"] == 0 and again["added_vectors"]["earlier"]["command"] == "test"


def test_models_from_before_word_vector_bits_still_merge_with_new_ones():
    from spacy_aner.model import _provenance_differences

    old = {"train_sha256": "a", "hyperparameters": {"lstm_units": 128, "seed": 13}}
    new = {"train_sha256": "a", "hyperparameters": {"lstm_units": 128, "seed": 14, "word_vector_bits": 16}}
    assert _provenance_differences(old, new) == []
    eight = {"train_sha256": "a", "hyperparameters": {"lstm_units": 128, "seed": 14, "word_vector_bits": 8}}
    assert _provenance_differences(old, eight)
    kernels = {"train_sha256": "a", "hyperparameters": {"lstm_units": 128, "seed": 14, "char_kernels": []}}
    assert _provenance_differences(old, kernels) == []
    wide = {"train_sha256": "a", "hyperparameters": {"lstm_units": 128, "seed": 14, "char_kernels": [2, 3]}}
    assert _provenance_differences(old, wide)


def test_several_char_cnn_widths_train_save_load_and_merge(tiny_conll_file, tiny_vectors_kv, tiny_model_dir, tmp_path):
    from spacy_aner.model import merge_members
    from spacy_aner.training import train

    config = dict(lstm_units=8, lstm_layers=1, char_filters=4, window=32, context=4, char_kernels=[2, 3, 5])
    for seed in (1, 2):
        train(tiny_conll_file, tmp_path / f"m{seed}", vectors=tiny_vectors_kv, dev_fraction=0.2, epochs=1,
              verbose=0, seed=seed, config=ModelConfig(**config))
    a = Tagger.load(tmp_path / "m1")
    names = {layer.name for layer in a.network.layers}
    assert {"char_cnn_2", "char_cnn_3", "char_cnn_5"} <= names and "char_cnn" not in names
    assert all(a.network.get_layer(f"char_cnn_{k}").kernel.shape[:2] == (1, k) for k in (2, 3, 5))
    assert a.network.get_layer("features").output.shape[-1] == a.config.word_dim + 3 * 4
    seqs = [random_words(random.Random(9), 7)]
    merged = merge_members([a, Tagger.load(tmp_path / "m2")])
    merged.save(tmp_path / "ens")
    assert Tagger.load(tmp_path / "ens").predict(seqs) == merged.predict(seqs)
    # Each member's several CNNs, computed once per distinct word, give the network's scores.
    _scrambled(merged, 3)
    merged._predict_fn = None
    rng = random.Random(8)
    assert_distinct_scores_match_network(merged, [random_words(rng, n) for n in (3, 20, 31)], 32)
    # The single-CNN default keeps its config.json and layer names.
    assert "char_kernels" not in json.loads((tiny_model_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    assert "char_cnn" in {layer.name for layer in Tagger.load(tiny_model_dir).network.layers}
    with pytest.raises(ValueError, match="char_kernels"):
        ModelConfig(char_kernels=[3, 3])


def test_load_memory_benchmark_reports_each_model(tiny_model_dir, tmp_path):
    """A functional check of the script (its figures mean nothing for a tiny model)."""
    from conftest import load_script  # tests/ is on sys.path under pytest

    bench = load_script(Path(__file__).parents[1] / "benchmarks" / "load_memory.py", "load_memory")
    out = tmp_path / "load.json"
    assert bench.main([str(tiny_model_dir), "--repeats", "1", "--output", str(out)]) == 0
    result = json.loads(out.read_text())["models"][str(tiny_model_dir)]
    assert result["rows"] == len(Tagger.load(tiny_model_dir).vocab.words)
    assert result["median"]["peak_mib"] >= result["median"]["rss_after_mib"] > 0 and result["median"]["seconds"] > 0


def test_throughput_benchmark_times_a_baseline_in_turns_and_profiles_stages(tiny_model_dir, tiny_conll_file, tmp_path):
    """A functional check of the script (its figures mean nothing for a tiny model)."""
    from conftest import load_script  # tests/ is on sys.path under pytest

    bench = load_script(Path(__file__).parents[1] / "benchmarks" / "throughput.py", "throughput")
    out = tmp_path / "throughput.json"
    assert bench.main(["--model", str(tiny_model_dir), "--baseline-model", str(tiny_model_dir), "--test-conll",
                       str(tiny_conll_file), "--batch-sizes", "8", "--repeats", "3", "--profile",
                       "--output", str(out)]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    run = result["runs"]["8"]
    assert len(run["pipeline"]["times_s"]) == len(run["baseline_pipeline"]["times_s"]) == 3
    assert run["pipeline_over_baseline"] > 0 and result["baseline_model_sha256"] == result["model_sha256"]
    stages = result["profile"]["stages"]
    network_calls = stages["network call (TF)"]["calls"]
    assert network_calls > 0 and stages[bench.FEATURISE]["calls"] >= network_calls
    assert 0 < stages["char features (TF, once per predict)"]["calls"] <= network_calls


def test_architecture_speed_benchmark_times_each_variant(tiny_model_dir, tiny_conll_file, tmp_path):
    """A functional check of the script (its timings mean nothing on this tiny input)."""
    from conftest import load_script  # tests/ is on sys.path under pytest

    bench = load_script(Path(__file__).parents[1] / "benchmarks" / "architecture_speed.py", "architecture_speed")
    out = tmp_path / "speed.json"
    assert bench.main(["--data", str(tiny_conll_file), "--model", str(tiny_model_dir), "--repeats", "2",
                       "--variant", 'a={"lstm_units": 8, "lstm_layers": 1}',
                       "--variant", 'b={"lstm_units": 8, "lstm_layers": 1, "char_kernels": [2, 3]}',
                       "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["variants"]) == {"a", "b"} and result["variants"]["a"]["time_relative_to_first"] == 1.0
    assert all(len(v["times_s"]) == 2 and v["words_per_sec"] > 0 for v in result["variants"].values())
