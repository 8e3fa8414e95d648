"""The trained network's tag scores at inference, computed faster than calling the Keras model.

The Keras model (:func:`.network.build_network`) is what trains and what is saved; this module
reads its layers' weights and computes the same unary scores (equal up to float rounding,
tested against ``network(x)``; dropout is off at inference) with three shortcuts:

* **per distinct word**: a word's input to the first BiLSTM layer (its vector and its
  char-CNN features) depends on its look-up key alone, so the char CNNs run once per
  distinct key of a ``Tagger.predict`` call (:func:`row_features`) and that layer's input
  projection once per distinct key of a network call, gathered back per token;
* **projections outside the loop**: Keras's CPU LSTM multiplies each step's input by the
  kernel inside the recurrence; here every step's projection is one matrix product first,
  and the loop (one ``tf.scan`` per direction and member) multiplies only the state;
* **short words, short CNNs**: the char CNNs skip the padding positions of words of at most
  ``SHORT_WORD_CHARS`` characters (:func:`_max_pooled`).

(Running all directions and members as one batched recurrence was tried and was slower.)

Padding is at the end of each row; a backward LSTM reads each row's real words reversed
(``tf.reverse_sequence``), which is what Keras's masked ``go_backwards`` amounts to.
"""
from __future__ import annotations

from typing import List


def row_features(network, config, rows):
    """Each distinct key's input to the first BiLSTM layer, per member: ``(members, U, D)``
    (its word vector, then each CNN width's char features), from
    :meth:`Vocabulary.distinct_rows`' ``row_words``, ``char_rows`` (short keys first, the
    first ``short_rows`` of them) and ``long_width``."""
    import tensorflow as tf

    from .network import char_cnn_widths, member_prefix
    from .vocab import SHORT_WORD_CHARS

    row_vectors = network.get_layer("word_embedding")(rows["row_words"])  # (U, word_dim)
    short = rows["short_rows"]
    out = []
    for prefix in (member_prefix(m) for m in range(config.members)):
        embed = network.get_layer(prefix + "char_embedding")
        e = embed(rows["char_rows"])[None]  # (1, U, C, dim)
        padding = embed(tf.zeros([1, config.max_word_chars], tf.int32))[None]  # one all-padding row
        features = [row_vectors]
        for k, suffix in char_cnn_widths(config):
            conv = network.get_layer(prefix + "char_cnn" + suffix)
            padded = conv(padding)
            features.append(tf.concat([
                _max_pooled(conv, k, e[:, :short], padded, SHORT_WORD_CHARS),
                _max_pooled(conv, k, e[:, short:], padded, rows["long_width"])], 0))
        out.append(tf.concat(features, -1))
    return tf.stack(out)


def unary_scores(network, config, inputs):
    """Scores ``(B, T, n_tags)`` averaged over members, from ``words`` (B, T), the
    :func:`row_features` table ``features``, the rows this batch uses ``rows`` (u,) and each
    position's index into ``rows``, ``char_index`` (B, T)."""
    import tensorflow as tf

    from .network import bilstm_layer_name, member_prefix

    words, index = inputs["words"], inputs["char_index"]
    lengths = tf.reduce_sum(tf.cast(tf.not_equal(words, 0), tf.int32), axis=1)
    prefixes = [member_prefix(m) for m in range(config.members)]
    rows = tf.unstack(tf.gather(inputs["features"], inputs["rows"], axis=1), num=len(prefixes))

    hidden: List = []
    for layer in range(config.lstm_layers):
        bis = [network.get_layer(bilstm_layer_name(layer, p)) for p in prefixes]
        cells = [lstm.cell for bi in bis for lstm in (bi.forward_layer, bi.backward_layer)]
        projected = []  # (B, T, 4 * units) per member and direction
        for k, cell in enumerate(cells):
            m = k // 2
            if layer == 0:  # per distinct row, then gathered per token
                z = tf.gather(tf.matmul(rows[m], cell.kernel.value) + cell.bias.value, index)
            else:
                z = tf.matmul(hidden[m], cell.kernel.value) + cell.bias.value
            if k % 2:
                z = tf.reverse_sequence(z, lengths, seq_axis=1, batch_axis=0)
            projected.append(z)
        outputs = [_recurrence(z, cell.recurrent_kernel.value) for z, cell in zip(projected, cells)]
        hidden = []
        for m in range(len(prefixes)):
            backward = tf.reverse_sequence(outputs[2 * m + 1], lengths, seq_axis=1, batch_axis=0)
            hidden.append(tf.concat([outputs[2 * m], backward], -1))
    scores = [network.get_layer(p + "scores")(h) for p, h in zip(prefixes, hidden)]
    return scores[0] if len(scores) == 1 else tf.add_n(scores) / len(scores)


def _max_pooled(conv, k: int, e, padded, longest):
    """The char CNN ``conv`` (width ``k``, "same" padding, ReLU), max-pooled over all
    positions, for rows ``e`` (1, n, C, dim) of at most ``longest`` characters.

    A position whose window starts after a word's last character sees only padding, so its
    value is the same for every word: the one computed on the all-padding row ``padded``.
    The CNN therefore runs over the first ``longest + k - 1`` positions only, and the rest
    come from ``padded``; ReLU outputs are >= 0, so an empty rest adds a 0 that changes no max.
    """
    import tensorflow as tf

    width = e.shape[2]
    right = (k - 1) - (k - 1) // 2  # "same" padding puts the extra zero on the right
    used = tf.minimum(longest + k - 1, width)
    # At full width the last positions' windows reach the zeros beyond the row and may
    # still hold characters; below it, positions from used - right on see padding only.
    exact = tf.where(used >= width, width, used - right)
    rest = tf.reduce_max(tf.concat([tf.zeros_like(padded[:, :, :1]), padded[:, :, exact:]], 2), axis=2)[0]
    return tf.cond(  # TensorFlow's convolution mishandles zero rows
        tf.shape(e)[1] > 0,
        lambda: tf.maximum(tf.reduce_max(conv(e[:, :, :used])[:, :, :exact], axis=2)[0], rest),
        lambda: tf.zeros([0, padded.shape[-1]], padded.dtype))


def _recurrence(z, recurrent):
    """An LSTM over projected inputs ``z`` (B, T, 4u) with recurrent kernel (u, 4u),
    Keras's gate order (i, f, c, o) and zero initial state: hidden states (B, T, u)."""
    import tensorflow as tf

    units = recurrent.shape[0]
    zero = tf.zeros(tf.stack([tf.shape(z)[0], units]), z.dtype)

    def step(state, z_t):
        h, c = state
        i, f, g, o = tf.split(z_t + tf.matmul(h, recurrent), 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return tf.sigmoid(o) * tf.tanh(c), c

    hs, _ = tf.scan(step, tf.transpose(z, [1, 0, 2]), initializer=(zero, zero))  # (T, B, u)
    return tf.transpose(hs, [1, 0, 2])
