"""spacy_aner.core.scores: the fast unary scores (per distinct word, own LSTM loop) equal the Keras network's."""
from __future__ import annotations

import random

import numpy as np
import pytest
from aner_support import WORDS, random_words

from spacy_aner.core.config import ModelConfig
from spacy_aner.core.network import build_network
from spacy_aner.core.normalize import normalize_word
from spacy_aner.core.tagger import Tagger
from spacy_aner.core.vocab import SHORT_WORD_CHARS, Vocabulary

#: Words of 1 to 25 letters, up to and past max_word_chars (20), and a long Latin one.
LENGTHS = ["ب" * n for n in range(1, 26)] + ["abcdefghijklmnopqrstuvwxyz0123"]


def assert_scores_match_network(tagger: Tagger, seqs, length: int) -> None:
    """``Tagger.unary_scores`` (spacy_aner.core.scores) gives the network's own scores, dropout off."""
    words, chars = tagger.vocab.encode(seqs, length)
    table, seq_rows = tagger.vocab.distinct_rows(seqs)
    index = np.zeros((len(seqs), length), dtype="int64")
    for i, r in enumerate(seq_rows):
        index[i, : len(r)] = r
    np.testing.assert_array_equal(table["row_words"][index], words)
    np.testing.assert_array_equal(table["char_rows"][index], chars)  # padding maps to the all-zero row 0
    assert len(table["row_words"]) == 1 + len({normalize_word(w) or w for s in seqs for w in s})
    lengths = (table["char_rows"] > 0).sum(1)
    short = int(table["short_rows"])
    assert (lengths[:short] <= SHORT_WORD_CHARS).all() and (lengths[short:] > SHORT_WORD_CHARS).all()
    expected = tagger.network({"words": words, "chars": chars}, training=False).numpy()
    got = tagger.unary_scores(seqs, length)
    assert got.shape == expected.shape == (len(seqs), length, len(tagger.config.tags))
    for k, s in enumerate(seqs):  # padding positions are never read
        np.testing.assert_allclose(got[k, : len(s)], expected[k, : len(s)], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("max_word_chars, members, layers", [(20, 2, 2), (8, 1, 1)])
def test_scores_equal_the_network_with_the_shipped_shape(max_word_chars, members, layers):
    """Two BiLSTM layers, two members, four CNN widths, words of 1 to 30 characters; and words
    cut at a width of 8 characters, where short words reach the full-width cap."""
    words = LENGTHS + WORDS
    vocab = Vocabulary.build(words, max_word_chars, min_char_count=1, clitic_backoff=True)
    config = ModelConfig(members=members, lstm_layers=layers, lstm_units=8, char_filters=4, char_dim=6, word_dim=10,
                         char_kernels=[2, 3, 4, 5], max_word_chars=max_word_chars)
    tagger = Tagger(config, vocab, build_network(config, len(vocab.words), len(vocab.chars)))
    rng = random.Random(11)
    seqs = [[rng.choice(words) for _ in range(n)] for n in (1, 4, 17, 40)] + [words[:7], words[-12:]]
    assert_scores_match_network(tagger, seqs, 48)
    assert_scores_match_network(tagger, [words[:3]], 4)  # no long word
    assert_scores_match_network(tagger, [words[20:24]], 4)  # no short word but padding


def test_scores_of_the_trained_tiny_model_equal_its_network(scrambled_tagger):
    rng = random.Random(5)
    seqs = [random_words(rng, n) for n in (1, 7, 30, 64)] + [["مُحَمَّد", "محمد", "abc", "😀", "محمد"], LENGTHS]
    assert_scores_match_network(scrambled_tagger, seqs, 64)
    for only in (["قصير", "في"], ["والمستشفيات", "بالاستثمارات"], LENGTHS[-6:]):  # one group empty
        assert_scores_match_network(scrambled_tagger, [only], 8)


def test_char_features_in_chunks_equal_one_pass(scrambled_tagger, monkeypatch):
    """Chunks of the distinct-key table, one of them across the short/long boundary."""
    import spacy_aner.core.tagger as tagger_module

    seqs = [WORDS, LENGTHS[:25], WORDS[:4]]
    table, _ = scrambled_tagger.vocab.distinct_rows(seqs)
    whole = scrambled_tagger.row_features(table).numpy()
    monkeypatch.setattr(tagger_module, "FEATURE_CHUNK_ROWS", 7)
    assert 7 < int(table["short_rows"]) < len(table["row_words"]) - 7
    np.testing.assert_allclose(scrambled_tagger.row_features(table).numpy(), whole, rtol=1e-6, atol=1e-6)
    assert_scores_match_network(scrambled_tagger, seqs, 32)


def test_scores_do_not_depend_on_padding(scrambled_tagger):
    seq = WORDS[:10]
    results = [scrambled_tagger.unary_scores([seq], length)[0, : len(seq)] for length in (16, 32, 64)]
    np.testing.assert_allclose(results[1], results[0], atol=1e-4)
    np.testing.assert_allclose(results[2], results[0], atol=1e-4)


def test_decoding_the_scores_is_predict(scrambled_tagger):
    """predict() = Viterbi over unary_scores with crf_params(), for sequences within one window."""
    rng = random.Random(8)
    seqs = [random_words(rng, n) for n in (1, 5, 12, 31)]
    scores = scrambled_tagger.unary_scores(seqs, 32)
    crf = scrambled_tagger.crf_params()
    assert [p.shape for p in crf] == [(9, 9), (9,), (9,)]
    decoded = scrambled_tagger.decode(scores, [len(s) for s in seqs], crf)
    assert decoded == scrambled_tagger.decode(scores, [len(s) for s in seqs])  # reads crf_params() itself
    assert decoded == scrambled_tagger.predict(seqs)
    assert any(t != "O" for tags in decoded for t in tags)
