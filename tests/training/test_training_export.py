"""spacy_aner.training.export: the ONNX graph that the tagger runs gives the Keras network's scores."""
from __future__ import annotations

import random

import numpy as np
import pytest
from aner_support import WORDS, random_words

from spacy_aner.core.config import GRAPH_FILE, ModelConfig
from spacy_aner.core.graph import read_weights
from spacy_aner.core.normalize import normalize_word
from spacy_aner.core.tagger import Tagger
from spacy_aner.core.vocab import Vocabulary
from spacy_aner.training.export import keras_network, save_network, store_table
from spacy_aner.training.network import KerasScorer, build_network, layer_weights

#: Words of 1 to 25 letters, up to and past max_word_chars (20), and a long Latin one.
LENGTHS = ["ب" * n for n in range(1, 26)] + ["abcdefghijklmnopqrstuvwxyz0123"]


def keras_twin(model_dir) -> Tagger:
    """The model directory's tagger with the Keras network built from its files as the scorer."""
    tagger = Tagger.load(model_dir)
    return Tagger(tagger.config, tagger.vocab, KerasScorer(keras_network(model_dir)))


def assert_graph_matches_keras(model_dir, seqs, length: int) -> None:
    """The graph's unary scores equal the Keras network's on the same stored weights, dropout off."""
    graph, keras = Tagger.load(model_dir), keras_twin(model_dir)
    words, chars = graph.vocab.encode(seqs, length)
    table, seq_rows = graph.vocab.distinct_rows(seqs)
    feeds = graph.feeds(table, seq_rows, length)
    np.testing.assert_array_equal(feeds["row_words"][feeds["index"]], words)
    np.testing.assert_array_equal(feeds["char_rows"][feeds["index"]], chars)  # padding maps to the all-zero row 0
    assert len(table["row_words"]) == 1 + len({normalize_word(w) or w for s in seqs for w in s})
    expected = keras.unary_scores(seqs, length)
    got = graph.unary_scores(seqs, length)
    assert got.shape == expected.shape == (len(seqs), length, len(graph.config.tags))
    for k, s in enumerate(seqs):  # padding positions are never read
        np.testing.assert_allclose(got[k, : len(s)], expected[k, : len(s)], rtol=1e-4, atol=1e-4)
    for a, b in zip(graph.scorer.crf(), keras.scorer.crf()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert graph.predict(seqs) == keras.predict(seqs)


@pytest.mark.parametrize("max_word_chars, members, layers, bits", [(20, 2, 2, 8), (8, 1, 1, 16)])
def test_graph_equals_the_network_with_the_shipped_shape(tmp_path, max_word_chars, members, layers, bits):
    """Two BiLSTM layers, two members, four CNN widths, words of 1 to 30 characters, an 8-bit
    table; and words cut at a width of 8 characters."""
    words = LENGTHS + WORDS
    vocab = Vocabulary.build(words, max_word_chars, min_char_count=1, clitic_backoff=True)
    config = ModelConfig(members=members, lstm_layers=layers, lstm_units=8, char_filters=4, char_dim=6, word_dim=10,
                         char_kernels=[2, 3, 4, 5], max_word_chars=max_word_chars, word_vector_bits=bits)
    network = build_network(config, len(vocab.words), len(vocab.chars))
    rng = np.random.default_rng(3)
    for layer in network.layers:  # the CRF starts at zero: give it something to decode
        layer.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in layer.get_weights()])
    save_network(tmp_path / "m", config, vocab, network, {})
    pyrng = random.Random(11)
    seqs = [[pyrng.choice(words) for _ in range(n)] for n in (1, 4, 17, 40)] + [words[:7], words[-12:]]
    assert_graph_matches_keras(tmp_path / "m", seqs, 48)
    assert_graph_matches_keras(tmp_path / "m", [words[:3]], 4)


def test_graph_of_the_trained_tiny_model_equals_its_network(scrambled_model_dir):
    rng = random.Random(5)
    seqs = [random_words(rng, n) for n in (1, 7, 30, 64)] + [["مُحَمَّد", "محمد", "abc", "😀", "محمد"], LENGTHS]
    assert_graph_matches_keras(scrambled_model_dir, seqs, 64)


def test_stored_weights_read_back_as_saved(tmp_path):
    """The graph's initializers are the Keras arrays in float16, under LAYER/INDEX names."""
    config = ModelConfig(lstm_units=4, char_filters=3, char_dim=5, word_dim=6, char_kernels=[2, 3], max_word_chars=10)
    vocab = Vocabulary.build(WORDS, 10, min_char_count=1)
    network = build_network(config, len(vocab.words), len(vocab.chars))
    save_network(tmp_path / "m", config, vocab, network, {})
    stored = read_weights(tmp_path / "m")
    saved = layer_weights(network)
    saved.pop("word_embedding")
    assert set(stored) == set(saved)
    for name, arrays in saved.items():
        for a, b in zip(stored[name], arrays):
            np.testing.assert_array_equal(a, b.astype(np.float16).astype(np.float32))
    assert (tmp_path / "m" / GRAPH_FILE).stat().st_size < 2 * sum(a.size for v in saved.values() for a in v) + 65536


@pytest.mark.parametrize("bits", [8, 16])
def test_stored_table_is_within_its_precision(bits):
    table = np.random.default_rng(0).normal(0, 1, (50, 12)).astype("float32")
    table[0] = 0  # the padding row
    stored, scale = store_table(table, bits)
    back = stored.astype("float32") * (scale[:, None] if scale is not None else 1)
    step = np.abs(table).max(axis=1, keepdims=True) / (254 if bits == 8 else 2048)
    assert (np.abs(back - table) <= step + 1e-6).all()
    assert stored.dtype == (np.int8 if bits == 8 else np.float16)


def test_scores_do_not_depend_on_padding(scrambled_tagger):
    seq = WORDS[:10]
    results = [scrambled_tagger.unary_scores([seq], length)[0, : len(seq)] for length in (16, 32, 64)]
    np.testing.assert_allclose(results[1], results[0], atol=1e-4)
    np.testing.assert_allclose(results[2], results[0], atol=1e-4)


def test_decoding_the_scores_is_predict(scrambled_tagger):
    """predict() = Viterbi over unary_scores with the scorer's CRF parameters, within one window."""
    rng = random.Random(8)
    seqs = [random_words(rng, n) for n in (1, 5, 12, 31)]
    scores = scrambled_tagger.unary_scores(seqs, 32)
    crf = scrambled_tagger.scorer.crf()
    assert [p.shape for p in crf] == [(9, 9), (9,), (9,)]
    decoded = scrambled_tagger.decode(scores, [len(s) for s in seqs], crf)
    assert decoded == scrambled_tagger.decode(scores, [len(s) for s in seqs])
    assert decoded == scrambled_tagger.predict(seqs)
    assert any(t != "O" for tags in decoded for t in tags)
