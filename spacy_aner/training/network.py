"""The Keras network that training fits: char CNNs and stacked BiLSTMs per member, a CRF on top.

Only training uses TensorFlow (imported on first use); a saved model is an ONNX graph
(:mod:`.export`) that the tagger runs without it.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..core.config import ModelConfig
from ..core.graph import bilstm_layer_name, member_prefix


def keras_and_tf():
    """Keras 3 on the TensorFlow backend, imported on first use."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    return keras, tf


def crf_layer_class():
    keras, _ = keras_and_tf()

    class TagScores(keras.layers.Layer):
        """Final layer: passes unary tag scores through and holds the CRF's transition,
        start and end scores.

        It drops the padding mask: the loss masks padding itself (target ``-1``) and returns
        one value per sequence, which Keras must not re-weight per token.
        """

        def __init__(self, n_tags: int, **kwargs):
            super().__init__(**kwargs)
            self.n_tags = n_tags
            self.supports_masking = True

        def build(self, input_shape):
            init = keras.initializers.Zeros()
            self.transitions = self.add_weight(name="transitions", shape=(self.n_tags, self.n_tags), initializer=init)
            self.start = self.add_weight(name="start", shape=(self.n_tags,), initializer=init)
            self.end = self.add_weight(name="end", shape=(self.n_tags,), initializer=init)

        def call(self, inputs, mask=None):
            return inputs + 0.0  # a new tensor: the input one carries Keras's mask attribute

        def compute_mask(self, inputs, mask=None):
            return None

        def get_config(self):
            return {**super().get_config(), "n_tags": self.n_tags}

    return TagScores


def crf_nll(y_true, scores, transitions, start, end):
    """Negative log-likelihood of gold paths under a linear-chain CRF, per sequence.

    ``y_true`` ``(B, T)`` holds tag ids with ``-1`` at padding; sequences are left-aligned.
    """
    _, tf = keras_and_tf()
    y_true = tf.cast(y_true, tf.int32)
    mask = tf.cast(y_true >= 0, scores.dtype)
    y = tf.maximum(y_true, 0)
    lengths = tf.cast(tf.reduce_sum(mask, 1), tf.int32)
    unary = tf.reduce_sum(tf.gather(scores, y, batch_dims=2) * mask, 1)
    pairs = tf.stack([y[:, :-1], y[:, 1:]], -1)
    binary = tf.reduce_sum(tf.gather_nd(transitions, pairs) * mask[:, 1:], 1)
    last = tf.gather(y, tf.maximum(lengths - 1, 0), batch_dims=1)
    gold = unary + binary + tf.gather(start, y[:, 0]) + tf.gather(end, last)

    alpha0 = start[None, :] + scores[:, 0]

    def step(alpha, inputs):
        score_t, mask_t = inputs
        new = tf.reduce_logsumexp(alpha[:, :, None] + transitions[None], axis=1) + score_t
        return tf.where(mask_t[:, None] > 0, new, alpha)

    alphas = tf.scan(step, (tf.transpose(scores[:, 1:], [1, 0, 2]), tf.transpose(mask[:, 1:])), initializer=alpha0)
    alpha = tf.concat([alpha0[None], alphas], 0)[-1]
    log_z = tf.reduce_logsumexp(alpha + end[None, :], 1)
    return log_z - gold


def crf_loss(network):
    """The CRF loss of ``network``'s (single) tagger, for ``network.compile``."""
    layer = network.get_layer("tag_scores")

    def loss(y_true, scores):
        return crf_nll(y_true, scores, layer.transitions, layer.start, layer.end)

    return loss


def build_network(config: ModelConfig, n_words: int, n_chars: int,
                  embedding_matrix: Optional[np.ndarray] = None):
    """The Keras model: ``{"words", "chars"[, "gazetteer"]}`` -> unary tag scores ``(B, T, n_tags)``."""
    keras, _ = keras_and_tf()
    L = keras.layers
    words_in = keras.Input(shape=(None,), dtype="int32", name="words")
    chars_in = keras.Input(shape=(None, config.max_word_chars), dtype="int32", name="chars")
    inputs = {"words": words_in, "chars": chars_in}
    if config.gazetteer_labels:
        inputs["gazetteer"] = keras.Input(shape=(None, 2 * len(config.gazetteer_labels)), dtype="float32",
                                          name="gazetteer")
    init = keras.initializers.Constant(embedding_matrix) if embedding_matrix is not None else "uniform"
    w = L.Embedding(n_words, config.word_dim, embeddings_initializer=init, mask_zero=True,
                    trainable=config.trainable_embeddings, name="word_embedding")(words_in)
    # Concatenating with the unmasked char features would turn the padding mask all-True and
    # the backward LSTM would start on padding, so the mask is passed explicitly.
    mask = keras.ops.not_equal(words_in, 0)
    outputs = [tagger_tower(config, n_chars, w, chars_in, mask, member_prefix(m), inputs.get("gazetteer"))
               for m in range(config.members)]
    scores = outputs[0] if len(outputs) == 1 else L.Average(name="member_average")(outputs)
    return keras.Model(inputs, scores, name="aner_bilstm")


def char_cnn_widths(config: ModelConfig) -> List[Tuple[int, str]]:
    """(width, layer-name suffix) of each char CNN."""
    return [(k, f"_{k}") for k in config.char_kernels]


def word_features(config: ModelConfig, n_chars: int, w, chars_in, prefix: str = "", names=None):
    """Each word's vector ``w`` joined with CNNs over its characters, then dropout; then the
    gazetteer features ``names`` (their training dropout hides whole matches instead)."""
    keras, _ = keras_and_tf()
    L = keras.layers
    e = L.Embedding(n_chars, config.char_dim, name=prefix + "char_embedding")(chars_in)
    # A (1, k) Conv2D over (batch, words, chars, dim) is a per-word char CNN; unlike
    # TimeDistributed it copes with a sentence length unknown until run time.
    features = []
    for k, suffix in char_cnn_widths(config):
        c = L.Conv2D(config.char_filters, (1, k), padding="same", activation="relu", name=prefix + "char_cnn" + suffix)(e)
        c = L.MaxPooling2D(pool_size=(1, config.max_word_chars), name=prefix + "char_pool" + suffix)(c)
        features.append(L.Reshape((-1, config.char_filters), name=prefix + "char_features" + suffix)(c))
    x = L.Concatenate(name=prefix + "features")([w, *features])
    x = L.Dropout(config.dropout)(x)
    return x if names is None else L.Concatenate(name=prefix + "with_names")([x, names])


def tagger_tower(config: ModelConfig, n_chars: int, w, chars_in, mask, prefix: str, names=None):
    """One tagger over the shared word embeddings ``w``: char CNNs, BiLSTMs, tag scores."""
    keras, _ = keras_and_tf()
    L = keras.layers
    x = word_features(config, n_chars, w, chars_in, prefix, names)
    for layer in range(config.lstm_layers):
        x = L.Bidirectional(L.LSTM(config.lstm_units, return_sequences=True),
                            name=bilstm_layer_name(layer, prefix))(x, mask=mask)
        x = L.Dropout(config.dropout)(x)
    scores = L.Dense(len(config.tags), name=prefix + "scores")(x)
    return crf_layer_class()(len(config.tags), name=prefix + "tag_scores")(scores)


def layer_weights(network) -> Dict[str, List[np.ndarray]]:
    """Every layer's weights by layer name, as the model files store them."""
    return {layer.name: [np.asarray(w) for w in layer.get_weights()] for layer in network.layers if layer.weights}


def set_layer_weights(network, weights: Dict[str, List[np.ndarray]]) -> None:
    for layer in network.layers:
        if layer.weights:
            layer.set_weights(weights[layer.name])


class KerasScorer:
    """The tagger's scorer on a Keras network being trained (dropout off)."""

    def __init__(self, network) -> None:
        self.network = network

    def scores(self, feeds: Dict[str, np.ndarray]) -> np.ndarray:
        index = feeds["index"]
        inputs = {"words": feeds["row_words"][index].astype("int32"), "chars": feeds["char_rows"][index].astype("int32")}
        if "gazetteer" in feeds:
            inputs["gazetteer"] = feeds["gazetteer"]
        return np.asarray(self.network(inputs, training=False))

    def crf(self) -> Tuple[np.ndarray, ...]:
        """Averaged over members; read afresh each call, since training changes them."""
        members = [layer for layer in self.network.layers if layer.name.endswith("tag_scores")]
        return tuple(np.mean([np.asarray(getattr(layer, name).numpy()) for layer in members], axis=0)
                     for name in ("transitions", "start", "end"))
