"""spacy_aner.training.network: the Keras network's shape and names, the CRF loss, the Keras scorer."""
from __future__ import annotations

import numpy as np
import pytest

from spacy_aner.core.config import ModelConfig
from spacy_aner.core.graph import member_prefix
from spacy_aner.core.tagger import padded_length
from spacy_aner.training.network import build_network, char_cnn_widths, crf_loss, layer_weights, set_layer_weights

SMALL = dict(lstm_units=4, char_filters=3, char_dim=5, word_dim=6, char_kernels=[2, 3, 5], max_word_chars=10)


def test_padded_length_rounds_up_to_a_multiple():
    assert [padded_length(n) for n in (0, 1, 16, 17, 32, 33)] == [16, 16, 16, 32, 32, 48]
    assert [padded_length(n, 4) for n in (0, 1, 4, 5, 9)] == [4, 4, 4, 8, 12]


def test_member_prefixes_and_cnn_names():
    assert [member_prefix(m) for m in range(3)] == ["", "m1_", "m2_"]
    assert char_cnn_widths(ModelConfig(char_kernels=[2, 4])) == [(2, "_2"), (4, "_4")]


def test_network_layers_shapes_and_output():
    config = ModelConfig(lstm_layers=2, members=2, **SMALL)
    network = build_network(config, n_words=12, n_chars=7)
    names = {layer.name for layer in network.layers}
    for prefix in ("", "m1_"):
        assert {f"{prefix}char_cnn_{k}" for k in (2, 3, 5)} <= names
        assert {f"{prefix}bilstm", f"{prefix}bilstm_2", f"{prefix}scores", f"{prefix}tag_scores"} <= names
        for k in (2, 3, 5):
            assert network.get_layer(f"{prefix}char_cnn_{k}").kernel.shape[:2] == (1, k)
    assert "member_average" in names and "char_cnn" not in names
    assert sum(layer.name == "word_embedding" for layer in network.layers) == 1  # shared by the members
    assert network.get_layer("features").output.shape[-1] == config.word_dim + 3 * config.char_filters
    crf = network.get_layer("tag_scores")
    assert crf.transitions.shape == (9, 9) and crf.start.shape == crf.end.shape == (9,)
    words = np.array([[3, 4, 5, 0]], dtype="int32")
    chars = np.ones((1, 4, config.max_word_chars), dtype="int32")
    assert network({"words": words, "chars": chars}, training=False).shape == (1, 4, len(config.tags))


def test_frozen_or_trainable_word_table():
    table = np.arange(12 * 6, dtype="float32").reshape(12, 6)
    frozen = build_network(ModelConfig(**SMALL), 12, 7, embedding_matrix=table)
    layer = frozen.get_layer("word_embedding")
    assert not layer.trainable
    np.testing.assert_array_equal(layer.get_weights()[0], table)
    assert build_network(ModelConfig(trainable_embeddings=True, **SMALL), 12, 7).get_layer("word_embedding").trainable


def test_layer_weights_round_trip_by_layer_name():
    source = build_network(ModelConfig(members=2, **SMALL), 12, 7)
    target = build_network(ModelConfig(members=2, **SMALL), 12, 7)
    weights = layer_weights(source)
    assert {"word_embedding", "m1_bilstm", "tag_scores", "m1_tag_scores"} <= set(weights)
    set_layer_weights(target, weights)
    for name, arrays in layer_weights(target).items():
        for a, b in zip(arrays, weights[name]):
            np.testing.assert_array_equal(a, b)


def test_crf_loss_reads_the_networks_transitions():
    import tensorflow as tf

    from spacy_aner.training.network import crf_nll

    network = build_network(ModelConfig(**SMALL), 12, 7)
    layer = network.get_layer("tag_scores")
    rng = np.random.default_rng(0)
    for weights in (layer.transitions, layer.start, layer.end):
        weights.assign(rng.normal(size=weights.shape).astype("float32"))
    y = tf.constant([[1, 2, 0, -1]], dtype=tf.int32)
    scores = tf.constant(rng.normal(size=(1, 4, 9)).astype("float32"))
    np.testing.assert_allclose(crf_loss(network)(y, scores).numpy(),
                               crf_nll(y, scores, layer.transitions, layer.start, layer.end).numpy())


@pytest.mark.parametrize("n_tags", [1, 9])
def test_tag_scores_layer_passes_scores_through(n_tags):
    import tensorflow as tf

    from spacy_aner.training.network import crf_layer_class

    layer = crf_layer_class()(n_tags, name="tag_scores")
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 3, n_tags)).astype("float32"))
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())
    assert layer.get_config()["n_tags"] == n_tags and layer.compute_mask(x, None) is None
