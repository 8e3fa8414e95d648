"""The tagger: a BiLSTM over word vectors and character CNNs, with a softmax or CRF output.

Everything a model needs lives in one directory of plain files, no pickles:

* ``config.json``  architecture, tag set, format and normalisation versions
* ``vocab.json``   the word and character vocabularies (index = id)
* ``model.weights.h5``  the Keras weights
* ``meta.json``    how it was trained: command, data hashes, dev/test F1, license

TensorFlow is imported lazily, so importing :mod:`spacy_aner` stays cheap.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .normalize import NORMALIZATION_VERSION, normalize_word
from .tags import TAGS

#: 2: padding is masked in the BiLSTMs. A version-1 model was trained with padding reaching
#: its backward LSTM and would predict differently under the mask, so it is refused.
FORMAT_VERSION = 2
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.json"
WEIGHTS_FILE = "model.weights.h5"
META_FILE = "meta.json"
PAD, UNK = 0, 1
#: Most padded tokens per network call in ``Tagger.predict`` (bounds peak memory).
MAX_BATCH_TOKENS = 8192
#: Words of at most this many characters (86 % of the test split's distinct words) are
#: grouped so that the char CNNs skip their padding positions (see spacy_aner.inference).
SHORT_WORD_CHARS = 7
#: Distinct keys whose char features are computed in one call (bounds the CNN activations).
FEATURE_CHUNK_ROWS = 8192
_PAD_LABEL = -1  # target id of padding positions; masked out of every loss


class ModelLoadError(ValueError):
    """A model directory that cannot be used; the message names the file and the problem."""


class ForkedTensorFlowError(RuntimeError):
    """TensorFlow asked to run in a process forked after it had started in the parent."""


#: Set once this process has built a network (TensorFlow's runtime and thread pools exist).
_TF_STARTED = False
#: Set in a child forked after that: TensorFlow would hang there, not fail.
_FORKED_AFTER_TF = False


def _after_fork_in_child() -> None:
    global _FORKED_AFTER_TF
    _FORKED_AFTER_TF = _FORKED_AFTER_TF or _TF_STARTED


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _check_not_forked() -> None:
    """Fail clearly where TensorFlow would deadlock: spaCy's ``nlp.pipe(n_process=N)`` forks on Linux."""
    if _FORKED_AFTER_TF:
        raise ForkedTensorFlowError(
            "aner_lstm cannot run in a process forked after TensorFlow started in its parent "
            "(TensorFlow would hang). For several processes use spacy_aner.annotate.annotate_texts(nlp, texts, "
            "n_process=N) or `spacy-aner annotate --n-process N`, or call "
            "multiprocessing.set_start_method('forkserver') before nlp.pipe(..., n_process=N).")


@dataclass
class ModelConfig:
    word_dim: int = 100
    char_dim: int = 32
    char_filters: int = 64
    char_kernel: int = 3
    #: Several char CNNs of these widths (``char_filters`` each, max-pooled, joined) instead
    #: of one of ``char_kernel``; empty keeps the single CNN and its layer names.
    char_kernels: List[int] = field(default_factory=list)
    max_word_chars: int = 20
    lstm_units: int = 128
    lstm_layers: int = 2  # +1.4 dev F1 over one layer (README)
    dropout: float = 0.5
    output: str = "crf"  # "crf" or "softmax"
    trainable_embeddings: bool = False
    #: How the frozen word-vector table is stored: 16 (float16) or 8 (int8 with one scale
    #: per row, half the size, so a model can keep every row of a large vector file within
    #: the package's 25 MB). Trained weights stay float32 either way.
    word_vector_bits: int = 16
    clitic_backoff: bool = True  # unknown words fall back to their proclitic-stripped form
    #: Independently trained taggers over one shared, frozen word-embedding table; their tag
    #: scores (and CRF transitions) are averaged, i.e. a product of experts decoded exactly
    #: by Viterbi. Built by :func:`merge_members` from models trained with different seeds.
    members: int = 1
    window: int = 128  # longest token sequence given to the network at once
    context: int = 16  # tokens of overlap on each side when a longer sequence is cut
    tags: List[str] = field(default_factory=lambda: list(TAGS))
    format_version: int = FORMAT_VERSION
    normalization_version: int = NORMALIZATION_VERSION

    def __post_init__(self) -> None:
        if self.output not in ("crf", "softmax"):
            raise ValueError(f"output must be 'crf' or 'softmax', got {self.output!r}")
        if self.window <= 2 * self.context:
            raise ValueError("window must be longer than twice the context")
        if self.members < 1:
            raise ValueError(f"members must be at least 1, got {self.members}")
        if any(int(k) < 1 for k in self.char_kernels) or len(set(self.char_kernels)) != len(self.char_kernels):
            raise ValueError(f"char_kernels must be distinct positive widths, got {self.char_kernels}")
        if self.word_vector_bits not in (8, 16):
            raise ValueError(f"word_vector_bits must be 8 or 16, got {self.word_vector_bits}")
        if self.word_vector_bits != 16 and self.trainable_embeddings:
            raise ValueError("word_vector_bits applies to frozen word vectors, not trainable ones")


# --------------------------------------------------------------------------- windows


def make_windows(n: int, size: int, context: int) -> List[Tuple[int, int, int, int]]:
    """Cut ``n`` tokens into windows of at most ``size``: ``(start, end, core_start, core_end)``.

    Cores tile ``[0, n)`` exactly; each window adds up to ``context`` tokens either side so
    that tags near a cut are predicted with context. Linear in ``n``.
    """
    if size <= 2 * context:
        raise ValueError(f"window size {size} must be longer than twice the context {context}")
    if n <= size:
        return [(0, n, 0, n)]
    out = []
    core_start = 0
    while core_start < n:
        start = max(0, core_start - context)
        end = min(n, start + size)
        core_end = n if end == n else end - context
        out.append((start, end, core_start, core_end))
        core_start = core_end
    return out


# --------------------------------------------------------------------------- vocabulary


def clitic_candidates(key: str) -> List[str]:
    """Forms of a normalised word without its proclitics, most specific first.

    و/ف (conjunctions), ب/ل/ك (prepositions) and ال (article) glue onto the next word, so
    a name seen once in a corpus mostly appears in a form never seen: والقاهره, بالقاهره,
    للقاهره all back off to القاهره, then to قاهره.
    """
    out: List[str] = []
    forms = [key] + ([key[1:]] if key[:1] in ("و", "ف") else [])
    for k in forms:
        if k is not key:
            out.append(k)
        if k.startswith(("بال", "كال")):
            out.append("ال" + k[3:])
        elif k.startswith("لل"):
            out.append("ال" + k[2:])
        elif k[:1] in ("ب", "ل", "ك"):
            out.append(k[1:])
    out += [k[2:] for k in out + [key] if k.startswith("ال")]
    return list(dict.fromkeys(k for k in out if len(k) >= 2 and k != key))


class Vocabulary:
    """Word ids keyed by :func:`normalize_word`, character ids over those keys."""

    def __init__(self, words: Sequence[str], chars: Sequence[str], max_word_chars: int,
                 clitic_backoff: bool = False) -> None:
        self.words = list(words)
        self.chars = list(chars)
        self.max_word_chars = max_word_chars
        self.clitic_backoff = clitic_backoff
        self.word_index = {w: i for i, w in enumerate(self.words)}
        self.char_index = {c: i for i, c in enumerate(self.chars)}
        self._char_ids = lru_cache(maxsize=200_000)(self._char_ids_uncached)
        self._word_id = lru_cache(maxsize=200_000)(self._word_id_uncached)

    def _lookup(self, key: str) -> Optional[int]:
        idx = self.word_index.get(key)
        return idx if idx is not None and idx > UNK else None  # a text word "<pad>" is not padding

    def _word_id_uncached(self, key: str) -> int:
        idx = self._lookup(key)
        if idx is None and self.clitic_backoff:
            idx = next((i for i in map(self._lookup, clitic_candidates(key)) if i is not None), None)
        return UNK if idx is None else idx

    @classmethod
    def build(cls, words: Iterable[str], max_word_chars: int, min_char_count: int = 2,
              clitic_backoff: bool = False) -> "Vocabulary":
        from collections import Counter

        keys = ["<pad>", "<unk>"]
        seen = set(keys)
        char_counts: Counter = Counter()
        for w in words:
            if w not in seen:
                seen.add(w)
                keys.append(w)
            char_counts.update(w)
        chars = ["<pad>", "<unk>"] + sorted(c for c, n in char_counts.items() if n >= min_char_count)
        return cls(keys, chars, max_word_chars, clitic_backoff)

    def _char_ids_uncached(self, key: str) -> Tuple[int, ...]:
        half = self.max_word_chars // 2
        if len(key) > self.max_word_chars:  # keep both ends: Arabic marks words at both
            key = key[:half] + key[-(self.max_word_chars - half):]
        return tuple(self.char_index.get(c, UNK) for c in key)

    def encode(self, sequences: Sequence[Sequence[str]], length: int) -> Tuple[np.ndarray, np.ndarray]:
        """Word ids ``(n, length)`` and char ids ``(n, length, max_word_chars)`` for raw words."""
        word_ids = np.zeros((len(sequences), length), dtype="int32")
        char_ids = np.zeros((len(sequences), length, self.max_word_chars), dtype="int32")
        for i, words in enumerate(sequences):
            for j, word in enumerate(words):
                key = normalize_word(word) or word
                word_ids[i, j] = self._word_id(key)
                ids = self._char_ids(key)
                char_ids[i, j, : len(ids)] = ids
        return word_ids, char_ids

    def distinct_rows(self, sequences: Sequence[Sequence[str]]) -> Tuple[Dict[str, np.ndarray], List[np.ndarray]]:
        """One row per distinct look-up key of ``sequences`` (row 0: padding): its word id
        ``row_words`` (u,) and char ids ``char_rows`` (u, max_word_chars), short keys first
        (``short_rows`` of them, padding included), ``long_width`` the longest key; and each
        sequence's rows, word by word.

        Everything the network reads about a word depends on its key alone, and most tokens
        repeat a key (see :mod:`spacy_aner.inference`). Short keys first lets the char CNNs
        run over the first SHORT_WORD_CHARS + k - 1 positions of those rows only.
        """
        keys: Dict[str, int] = {}  # key -> row before ordering (from 1)
        firsts = [[keys.setdefault(normalize_word(w) or w, len(keys) + 1) for w in words] for words in sequences]
        ids = [()] + [self._char_ids(key) for key in keys]
        lengths = np.fromiter(map(len, ids), dtype="int32", count=len(ids))
        order = np.argsort(lengths > SHORT_WORD_CHARS, kind="stable")
        position = np.empty_like(order)
        position[order] = np.arange(len(order), dtype=order.dtype)
        row_words = np.zeros(len(ids), dtype="int32")
        char_rows = np.zeros((len(ids), self.max_word_chars), dtype="int32")
        for key, first in keys.items():
            r = position[first]
            row_words[r] = self._word_id(key)
            char_rows[r, : lengths[first]] = ids[first]
        table = {"row_words": row_words, "char_rows": char_rows,
                 "short_rows": np.int32(np.count_nonzero(lengths <= SHORT_WORD_CHARS)),
                 "long_width": np.int32(lengths.max(initial=0))}
        return table, [position[np.asarray(f, dtype="int64")].astype("int32") for f in firsts]

    def to_json(self) -> dict:
        return {"words": self.words, "chars": self.chars, "max_word_chars": self.max_word_chars}


# --------------------------------------------------------------------------- CRF


def viterbi_decode(scores: np.ndarray, transitions: np.ndarray, start: np.ndarray,
                   end: np.ndarray) -> np.ndarray:
    """Best tag path for one sequence of unary ``scores`` ``(T, K)``."""
    n, _ = scores.shape
    if n == 0:
        return np.zeros(0, dtype="int64")
    score = start + scores[0]
    back = np.zeros((n, scores.shape[1]), dtype="int64")
    for t in range(1, n):
        cand = score[:, None] + transitions
        back[t] = cand.argmax(0)
        score = cand.max(0) + scores[t]
    best = [int((score + end).argmax())]
    for t in range(n - 1, 0, -1):
        best.append(int(back[t, best[-1]]))
    return np.array(best[::-1])


def viterbi_decode_batch(scores: np.ndarray, lengths: Sequence[int], transitions: np.ndarray,
                         start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """:func:`viterbi_decode` for a padded batch ``(B, T, K)`` at once: paths
    ``(B, max(longest, 1))``, valid up to each length. The same float operations per sequence, so the same paths
    (tested); a finished sequence just carries its scores along."""
    b, _, _ = scores.shape
    lengths = np.asarray(lengths, dtype="int64")
    longest = int(lengths.max(initial=0))
    path = np.zeros((b, max(longest, 1)), dtype="int64")
    if longest == 0:
        return path
    score = start + scores[:, 0]
    back = np.zeros((b, longest, scores.shape[2]), dtype="int64")
    for t in range(1, longest):
        cand = score[:, :, None] + transitions
        back[:, t] = cand.argmax(1)
        score = np.where((t < lengths)[:, None], cand.max(1) + scores[:, t], score)
    rows = np.arange(b)
    best = (score + end).argmax(1)
    for t in range(longest - 1, -1, -1):
        active = t < lengths
        path[active, t] = best[active]
        if t:
            best = np.where(active, back[rows, t, best], best)
    return path


def _keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: F401  (Keras 3 on the TensorFlow backend)
    import tensorflow as tf

    return keras, tf


def output_layer_class():
    keras, tf = _keras()

    class TagScores(keras.layers.Layer):
        """Final layer: passes unary tag scores through and, for a CRF, holds its transitions.

        It drops the padding mask: the losses below mask padding themselves (target ``-1``)
        and return one value per sequence, which Keras must not re-weight per token.
        """

        def __init__(self, n_tags: int, crf: bool, **kwargs):
            super().__init__(**kwargs)
            self.n_tags = n_tags
            self.crf = crf
            self.supports_masking = True

        def build(self, input_shape):
            if self.crf:
                init = keras.initializers.Zeros()
                self.transitions = self.add_weight(name="transitions", shape=(self.n_tags, self.n_tags), initializer=init)
                self.start = self.add_weight(name="start", shape=(self.n_tags,), initializer=init)
                self.end = self.add_weight(name="end", shape=(self.n_tags,), initializer=init)

        def call(self, inputs, mask=None):
            return inputs + 0.0  # a new tensor: the input one carries Keras's mask attribute

        def compute_mask(self, inputs, mask=None):
            return None

        def get_config(self):
            return {**super().get_config(), "n_tags": self.n_tags, "crf": self.crf}

    return TagScores


def crf_nll(y_true, scores, transitions, start, end):
    """Negative log-likelihood of gold paths under a linear-chain CRF, per sequence.

    ``y_true`` ``(B, T)`` holds tag ids with ``-1`` at padding; sequences are left-aligned.
    """
    _, tf = _keras()
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


def masked_softmax_loss(y_true, scores):
    """Token cross-entropy summed per sequence, padding (``-1``) excluded."""
    _, tf = _keras()
    y_true = tf.cast(y_true, tf.int32)
    mask = tf.cast(y_true >= 0, scores.dtype)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.maximum(y_true, 0), logits=scores)
    return tf.reduce_sum(ce * mask, 1)


def crf_token_loss(y_true, scores, crf_layer, token_weight: float = 0.0):
    """The CRF loss plus ``token_weight`` times the per-word softmax loss of the unary scores.

    Trained on the CRF loss alone, the network can leave a decision to the transitions: the
    word after a person's first name needs only a weak unary score when B-PERS -> I-PERS is
    strong, and then a verb after a lone first name is read as more of the name. The word
    loss asks the unary scores to tag each word on their own as well.
    """
    loss = crf_nll(y_true, scores, crf_layer.transitions, crf_layer.start, crf_layer.end)
    if token_weight:
        loss = loss + token_weight * masked_softmax_loss(y_true, scores)
    return loss


# --------------------------------------------------------------------------- network


def member_prefix(member: int) -> str:
    """Layer-name prefix of ensemble member ``member``; member 0 keeps the single-model names."""
    return "" if member == 0 else f"m{member}_"


def network_inputs(config: ModelConfig, n_words: int, embedding_matrix: Optional[np.ndarray] = None):
    """The ``words`` and ``chars`` inputs, the word-embedding output and the padding mask."""
    keras, _ = _keras()
    words_in = keras.Input(shape=(None,), dtype="int32", name="words")
    chars_in = keras.Input(shape=(None, config.max_word_chars), dtype="int32", name="chars")
    init = keras.initializers.Constant(embedding_matrix) if embedding_matrix is not None else "uniform"
    w = keras.layers.Embedding(n_words, config.word_dim, embeddings_initializer=init, mask_zero=True,
                               trainable=config.trainable_embeddings, name="word_embedding")(words_in)
    # Concatenate with the unmasked char features turns the padding mask all-True, and the
    # backward LSTM would then start on padding: tags would depend on how a batch is padded.
    # The mask is therefore passed explicitly.
    return words_in, chars_in, w, keras.ops.not_equal(words_in, 0)


def build_network(config: ModelConfig, n_words: int, n_chars: int,
                  embedding_matrix: Optional[np.ndarray] = None):
    """The Keras model: ``{"words", "chars"}`` -> unary tag scores ``(B, T, n_tags)``."""
    global _TF_STARTED
    _check_not_forked()
    keras, _ = _keras()
    _TF_STARTED = True
    L = keras.layers
    words_in, chars_in, w, mask = network_inputs(config, n_words, embedding_matrix)
    outputs = [_tagger_tower(config, n_chars, w, chars_in, mask, member_prefix(m)) for m in range(config.members)]
    scores = outputs[0] if len(outputs) == 1 else L.Average(name="member_average")(outputs)
    return keras.Model({"words": words_in, "chars": chars_in}, scores, name="aner_bilstm")


def char_cnn_widths(config: ModelConfig) -> List[Tuple[int, str]]:
    """(width, layer-name suffix) of each char CNN: one of ``char_kernel`` keeps the
    unsuffixed names of models from before ``char_kernels``."""
    return [(config.char_kernel, "")] if not config.char_kernels else [(k, f"_{k}") for k in config.char_kernels]


def word_features(config: ModelConfig, n_chars: int, w, chars_in, prefix: str = ""):
    """Each word's vector ``w`` joined with a CNN over its characters, then dropout."""
    keras, _ = _keras()
    L = keras.layers
    e = L.Embedding(n_chars, config.char_dim, name=prefix + "char_embedding")(chars_in)
    # A (1, k) Conv2D over (batch, words, chars, dim) is a per-word char CNN; unlike
    # TimeDistributed it copes with a sentence length unknown until run time.
    widths = char_cnn_widths(config)
    features = []
    for k, suffix in widths:
        c = L.Conv2D(config.char_filters, (1, k), padding="same", activation="relu", name=prefix + "char_cnn" + suffix)(e)
        c = L.MaxPooling2D(pool_size=(1, config.max_word_chars), name=prefix + "char_pool" + suffix)(c)
        features.append(L.Reshape((-1, config.char_filters), name=prefix + "char_features" + suffix)(c))
    x = L.Concatenate(name=prefix + "features")([w, *features])
    return L.Dropout(config.dropout)(x)


def bilstm_layer_name(layer: int, prefix: str = "") -> str:
    return prefix + ("bilstm" if layer == 0 else f"bilstm_{layer + 1}")


def bilstm_layer(config: ModelConfig, layer: int, prefix: str = ""):
    keras, _ = _keras()
    return keras.layers.Bidirectional(keras.layers.LSTM(config.lstm_units, return_sequences=True),
                                      name=bilstm_layer_name(layer, prefix))


def _tagger_tower(config: ModelConfig, n_chars: int, w, chars_in, mask, prefix: str):
    """One tagger over the shared word embeddings ``w``: char CNN, BiLSTMs, tag scores."""
    keras, _ = _keras()
    L = keras.layers
    x = word_features(config, n_chars, w, chars_in, prefix)
    for layer in range(config.lstm_layers):
        x = bilstm_layer(config, layer, prefix)(x, mask=mask)
        x = L.Dropout(config.dropout)(x)
    scores = L.Dense(len(config.tags), name=prefix + "scores")(x)
    return output_layer_class()(len(config.tags), crf=config.output == "crf", name=prefix + "tag_scores")(scores)


def _bucket(n: int, multiple: int = 16) -> int:
    return max(multiple, -(-n // multiple) * multiple)


class Tagger:
    """A trained tagger: vocabulary + network + decoding; framework details stay inside."""

    def __init__(self, config: ModelConfig, vocab: Vocabulary, network, meta: Optional[dict] = None) -> None:
        self.config = config
        self.vocab = vocab
        self.network = network
        self.meta = meta or {}
        self._predict_fn = None
        self._keras_fallback = False  # set with _predict_fn
        self._features_fn_cache = None

    # ---- prediction
    def _features_fn(self):
        """:func:`spacy_aner.inference.row_features` for :meth:`Vocabulary.distinct_rows`."""
        if self._features_fn_cache is None:
            _, tf = _keras()
            from . import inference

            spec = {"row_words": tf.TensorSpec([None], tf.int32),
                    "char_rows": tf.TensorSpec([None, self.config.max_word_chars], tf.int32),
                    "short_rows": tf.TensorSpec([], tf.int32), "long_width": tf.TensorSpec([], tf.int32)}
            net, config = self.network, self.config
            self._features_fn_cache = tf.function(lambda rows: inference.row_features(net, config, rows),
                                                  input_signature=[spec], autograph=False)
        return self._features_fn_cache

    def _row_features(self, table: Dict[str, np.ndarray]):
        """The features of every row of ``table``, in chunks that bound the CNN activations."""
        _, tf = _keras()
        fn, n, short = self._features_fn(), len(table["row_words"]), int(table["short_rows"])
        chunks = []
        for a in range(0, n, FEATURE_CHUNK_ROWS):
            b = min(n, a + FEATURE_CHUNK_ROWS)
            chunks.append(fn({"row_words": table["row_words"][a:b], "char_rows": table["char_rows"][a:b],
                              "short_rows": np.int32(min(max(short - a, 0), b - a)),
                              "long_width": table["long_width"]}))
        return chunks[0] if len(chunks) == 1 else tf.concat(chunks, 1)

    def _scores_fn(self):
        """Unary scores for ``{"words", "features", "rows", "char_index"}`` (see :meth:`predict`).

        The trained network's own weights, computed by :mod:`spacy_aner.inference`: char
        CNNs once per distinct key of a :meth:`predict` call, first-layer input products once
        per distinct key of a network call, the other input products outside the recurrence;
        dropout is off, so the scores equal ``self.network``'s up to float rounding (tested).
        """
        if self._predict_fn is None:
            _, tf = _keras()
            from . import inference

            spec = {
                "words": tf.TensorSpec([None, None], tf.int32),
                "features": tf.TensorSpec([self.config.members, None, None], tf.float32),
                "rows": tf.TensorSpec([None], tf.int32),
                "char_index": tf.TensorSpec([None, None], tf.int32),
                "char_rows": tf.TensorSpec([None, self.config.max_word_chars], tf.int32),
            }
            net, config = self.network, self.config
            self._keras_fallback = not inference.supported(net, config)
            if not self._keras_fallback:
                def scores(x):
                    return inference.unary_scores(net, config, x)
            else:  # a layer shape inference.py does not reproduce: Keras on every token
                def scores(x):
                    chars = tf.gather(tf.gather(x["char_rows"], x["rows"]), x["char_index"])
                    return net({"words": x["words"], "chars": chars}, training=False)
            # One trace for every batch shape: per-batch padding never triggers retracing.
            self._predict_fn = tf.function(scores, input_signature=[spec], autograph=False)
        return self._predict_fn

    def _call_inputs(self, table: Dict[str, np.ndarray]) -> Dict[str, object]:
        """What every network call of one :meth:`predict` shares, made once: the char features
        for :mod:`spacy_aner.inference`, or the char ids for the Keras fallback (the other empty)."""
        _, tf = _keras()
        self._scores_fn()  # decides which of the two the calls read
        if self._keras_fallback:
            return {"features": tf.zeros([self.config.members, 0, 0]), "char_rows": tf.convert_to_tensor(table["char_rows"])}
        return {"features": self._row_features(table),
                "char_rows": tf.zeros([0, self.config.max_word_chars], tf.int32)}

    def _batch_inputs(self, rows: Sequence[np.ndarray], length: int, table, shared) -> Dict[str, object]:
        """One network call's inputs for windows given by their rows of :meth:`Vocabulary.distinct_rows`."""
        index = np.zeros((len(rows), length), dtype="int32")  # padding: row 0
        for i, r in enumerate(rows):
            index[i, : len(r)] = r
        used, local = np.unique(index, return_inverse=True)
        return {"words": table["row_words"][index], "rows": used.astype("int32"),
                "char_index": local.reshape(index.shape).astype("int32"), **shared}

    def _scores(self, seqs, length: int) -> np.ndarray:
        """Unary scores ``(n, length, n_tags)`` of one padded batch (for tests and tools)."""
        table, rows = self.vocab.distinct_rows(seqs)
        return self._scores_fn()(self._batch_inputs(rows, length, table, self._call_inputs(table))).numpy()

    def _crf_params(self):
        """Transition, start and end scores, averaged over members like the unary scores."""
        layers = [self.network.get_layer(member_prefix(m) + "tag_scores") for m in range(self.config.members)]
        return tuple(np.mean([np.asarray(getattr(layer, name).numpy()) for layer in layers], axis=0)
                     for name in ("transitions", "start", "end"))

    def decode(self, scores: np.ndarray, lengths: Sequence[int], crf=None) -> List[List[str]]:
        """Tags from unary scores; ``crf`` is :meth:`_crf_params`' result when the caller has it."""
        tags = self.config.tags
        if self.config.output == "crf":
            trans, start, end = crf if crf is not None else self._crf_params()
            paths = viterbi_decode_batch(scores, lengths, trans, start, end)
        else:
            paths = scores.argmax(-1)
        names = np.array(tags, dtype=object)
        return [names[p[:n]].tolist() for p, n in zip(paths, lengths)]

    def predict(self, sequences: Sequence[Sequence[str]], batch_size: int = 256) -> List[List[str]]:
        """BIO tags for each word sequence, of any length (long ones are windowed)."""
        _check_not_forked()
        pieces: List[Tuple[int, int, int, int, int]] = []  # seq, start, end, core_start, core_end
        for i, words in enumerate(sequences):
            if words:
                pieces.extend((i, *w) for w in make_windows(len(words), self.config.window, self.config.context))
        out: List[List[str]] = [["O"] * len(words) for words in sequences]
        order = sorted(range(len(pieces)), key=lambda k: pieces[k][2] - pieces[k][1])
        # Cut the sorted windows into batches of at most batch_size that share one padded
        # length: a few long windows then never pad a whole batch of short ones. The token
        # cap bounds the char-CNN activations (256 windows of 128 tokens would take ~380 MB).
        batches: List[List[int]] = []
        for k in order:
            # Finer steps for short windows: a text of 3-word sentences must not pay for 16.
            n = pieces[k][2] - pieces[k][1]
            length = _bucket(n, 4 if n <= 32 else 16)
            if (not batches or length != batches[-1][0] or len(batches[-1]) > batch_size
                    or len(batches[-1]) * length > MAX_BATCH_TOKENS):
                batches.append([length])
            batches[-1].append(k)
        fn = self._scores_fn()
        # Char features once per distinct key of the whole call, not of each network call.
        table, rows = self.vocab.distinct_rows(sequences)
        shared = self._call_inputs(table) if batches else None
        # Read off the Keras variables once per call, not per batch (fresh each call: training changes them).
        crf = self._crf_params() if batches and self.config.output == "crf" else None
        for length, *ks in batches:
            batch = [pieces[k] for k in ks]
            lengths = [e - s for _, s, e, _, _ in batch]
            scores = fn(self._batch_inputs([rows[i][s:e] for i, s, e, _, _ in batch], length, table, shared)).numpy()
            for (i, s, _, cs, ce), tags in zip(batch, self.decode(scores, lengths, crf)):
                out[i][cs:ce] = tags[cs - s: ce - s]
        return out

    # ---- persistence
    def save(self, path: Path | str, meta: Optional[dict] = None) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        config = {k: v for k, v in asdict(self.config).items()
                  if k not in LATER_FIELD_DEFAULTS or v != LATER_FIELD_DEFAULTS[k]}
        (path / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
        (path / VOCAB_FILE).write_text(json.dumps(self.vocab.to_json(), ensure_ascii=False, separators=(",", ":")),
                                       encoding="utf-8")
        network = self.network
        if getattr(network, "optimizer", None) is not None:
            # A compiled network would also save Adam's moments (a quarter of the file), never read.
            network = build_network(self.config, len(self.vocab.words), len(self.vocab.chars))
            network.set_weights(self.network.get_weights())
        network.save_weights(str(path / WEIGHTS_FILE))
        if not self.config.trainable_embeddings:
            _store_word_vectors_compactly(path / WEIGHTS_FILE, network.get_layer("word_embedding").get_weights()[0],
                                          self.config.word_vector_bits)
        if meta is not None:
            self.meta = meta
        (path / META_FILE).write_text(json.dumps(self.meta, indent=2, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path | str) -> "Tagger":
        """Load a model directory; every problem raises :class:`ModelLoadError` naming the file."""
        path = Path(path)
        if not path.is_dir():
            raise ModelLoadError(f"model directory not found: {path}")
        config_data = _read_json(path / CONFIG_FILE)
        if not isinstance(config_data, dict):
            raise ModelLoadError(f"{path / CONFIG_FILE}: expected a JSON object")
        version = config_data.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelLoadError(f"{path / CONFIG_FILE}: model format version {version!r}, this spacy-aner "
                                 f"reads version {FORMAT_VERSION}; retrain or install a matching spacy-aner")
        if config_data.get("normalization_version") != NORMALIZATION_VERSION:
            raise ModelLoadError(f"{path / CONFIG_FILE}: trained with normalisation version "
                                 f"{config_data.get('normalization_version')!r}, this spacy-aner has {NORMALIZATION_VERSION}")
        config_data.setdefault("lstm_layers", 1)  # written before the field existed: one layer
        try:
            config = ModelConfig(**config_data)
        except (TypeError, ValueError) as err:
            raise ModelLoadError(f"{path / CONFIG_FILE}: invalid configuration: {err}") from None
        vocab_data = _read_json(path / VOCAB_FILE)
        try:
            vocab = Vocabulary(vocab_data["words"], vocab_data["chars"], int(vocab_data["max_word_chars"]),
                               config.clitic_backoff)
        except (KeyError, TypeError, ValueError) as err:
            raise ModelLoadError(f"{path / VOCAB_FILE}: invalid vocabulary ({err!r})") from None
        if vocab.max_word_chars != config.max_word_chars:
            raise ModelLoadError(f"{path / VOCAB_FILE}: max_word_chars disagrees with {CONFIG_FILE}")
        meta_path = path / META_FILE
        meta = _read_json(meta_path) if meta_path.exists() else {}
        weights = path / WEIGHTS_FILE
        _check_weights_file(weights)
        try:
            network = build_network(config, len(vocab.words), len(vocab.chars))
        except Exception as err:  # e.g. a zero or negative size that passed the dataclass
            raise ModelLoadError(f"{path / CONFIG_FILE}: cannot build the network from this configuration "
                                 f"({type(err).__name__}: {err})") from None
        try:
            network.load_weights(str(weights))
        except Exception as err:  # Keras raises many types for a file that does not fit
            raise ModelLoadError(f"{weights}: weights do not fit the architecture in {CONFIG_FILE} "
                                 f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
        if config.word_vector_bits == 8 and not config.trainable_embeddings:
            _scale_word_vectors(network, weights)
        return cls(config, vocab, network, meta)


#: Config fields added after the first release, at the value every model before them had.
#: ``config.json`` leaves a field out at that value, so builds from before the field still
#: read the model (and refuse one that needs it, e.g. 8-bit vectors); the provenance check
#: reads a missing field as that value, so older members merge with newer ones.
LATER_FIELD_DEFAULTS = {"members": 1, "char_kernels": [], "word_vector_bits": 16}

#: Where an 8-bit table's per-row scales live in the weights file; Keras ignores the group.
SCALE_DATASET = "spacy_aner/word_vector_scale"


def _packed(data: np.ndarray) -> dict:
    return {"compression": "gzip", "compression_opts": 9, "shuffle": True} if data.nbytes > 65536 else {}


def _store_word_vectors_compactly(path: Path, table: np.ndarray, bits: int = 16) -> None:
    """Rewrite a weights file with the frozen word-vector table in 16 or 8 bits.

    The table is most of the file (40,000 x 100 floats): half precision takes a single
    tagger's file from 18.9 to 10.9 MB, and the previous shipped model's tags on dev were
    identical with either table. 8 bits (each row scaled to +-127, the scales kept beside
    it) halve it again, for tables of every row of a vector file. Keras casts the stored
    table back to float32 on load; :func:`_scale_word_vectors` then applies the scales.
    Trained weights stay float32. Datasets over 64 KiB are stored gzip-compressed after
    HDF5's byte shuffle (lossless, read transparently by h5py): 7 % off a three-member
    file with several char CNNs, which the package's 25 MB limit needed.
    """
    import h5py

    tmp = path.with_name(path.name + ".tmp")
    stored = 0
    if bits == 8:
        scale = (np.abs(table).max(axis=1) / 127.0).astype("float32")
        scale[scale == 0] = 1.0  # padding row
        compact = np.rint(table / scale[:, None]).astype("int8")
    else:
        compact = table.astype("float16")
    with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
        dst.attrs.update(src.attrs)

        def copy(name, obj):
            nonlocal stored
            if isinstance(obj, h5py.Group):
                dst.require_group(name).attrs.update(obj.attrs)
                return
            data = obj[()]
            if data.shape == table.shape and np.array_equal(data, table):
                data = compact
                stored += 1
            dst.create_dataset(name, data=data, **_packed(data)).attrs.update(obj.attrs)

        src.visititems(copy)
        if bits == 8:
            dst.create_dataset(SCALE_DATASET, data=scale, **_packed(scale))
    if stored == 1:
        os.replace(tmp, path)
    elif bits == 8:  # the 8-bit promise cannot be kept silently
        tmp.unlink()
        raise ValueError(f"{path}: the word-vector table was not found once in the weights file")
    else:  # not found unambiguously: keep Keras's file as it is
        tmp.unlink()


def _scale_word_vectors(network, weights: Path) -> None:
    """Turn an 8-bit table, loaded by Keras as whole numbers, back into vectors."""
    import h5py

    layer = network.get_layer("word_embedding")
    table = layer.get_weights()[0]
    try:
        with h5py.File(weights, "r") as f:
            scale = np.asarray(f[SCALE_DATASET][()], dtype="float32")
    except KeyError:
        raise ModelLoadError(f"{weights}: 8-bit word vectors without their scales ({SCALE_DATASET})") from None
    if scale.shape != (table.shape[0],):
        raise ModelLoadError(f"{weights}: {scale.shape[0]} word-vector scales for {table.shape[0]} rows")
    table *= scale[:, None]  # in place: the table is the largest array of the model
    layer.set_weights([table])


def _read_json(path: Path):
    if not path.is_file():
        raise ModelLoadError(f"missing model file: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{path}: not valid JSON ({err})") from None


def _check_weights_file(path: Path) -> None:
    """Open the HDF5 file up front: a truncated file then fails here with its name."""
    if not path.is_file():
        raise ModelLoadError(f"missing model file: {path}")
    import h5py

    try:
        with h5py.File(path, "r") as f:
            def touch(name, obj):
                if isinstance(obj, h5py.Dataset):
                    obj[()]  # reads every array: truncation shows up here, not inside Keras

            f.visititems(touch)
    except Exception as err:
        raise ModelLoadError(f"{path}: unreadable or truncated weights file ({type(err).__name__}: {err})") from None


def _provenance_differences(a: dict, b: dict):
    """(what, value in a, value in b) for training data and settings that differ (seed and schedule excepted)."""
    def facts(meta):
        # The seed varies by design; a refit replays its own dev run's epochs and schedule.
        hyper = {k: v for k, v in meta.get("hyperparameters", {}).items()
                 if k not in ("seed", "epochs_max", "lr_drops")
                 and (k not in LATER_FIELD_DEFAULTS or v != LATER_FIELD_DEFAULTS[k])}
        return {"training data": meta.get("train_sha256"), "vectors": (meta.get("vectors") or {}).get("sha256"),
                "dev data": (meta.get("dev") or {}).get("sha256"),
                "silver data": (meta.get("silver") or {}).get("sha256"), "hyperparameters": hyper or None}
    fa, fb = facts(a), facts(b)
    # An unrecorded fact is unknown (older models), except silver data: only its use is recorded.
    return [(k, fa[k], fb[k]) for k in fa
            if fa[k] != fb[k] and (k == "silver data" or (fa[k] is not None and fb[k] is not None))]


def _copy_trained_layers(source, target, prefix: str = "") -> None:
    """Every layer of ``source`` with weights, but the shared word table, into ``target`` (names prefixed)."""
    for layer in source.layers:
        if layer.weights and layer.name != "word_embedding":
            target.get_layer(prefix + layer.name).set_weights(layer.get_weights())


def merge_members(taggers: Sequence["Tagger"]) -> "Tagger":
    """One ensemble tagger from single taggers trained with different seeds.

    They must share the vocabulary, the frozen word vectors and the architecture (the
    vectors are stored once); each keeps its own char CNN, BiLSTMs and CRF.
    """
    if len(taggers) < 2:
        raise ValueError("an ensemble needs at least two models")
    first = taggers[0]
    for k, t in enumerate(taggers[1:], 2):
        for what, a, b in _provenance_differences(first.meta, t.meta):
            raise ValueError(f"model {k} was trained with other {what} than model 1 ({b!r} vs {a!r})")
    base = {**asdict(first.config), "members": 1}
    for k, t in enumerate(taggers):
        if t.config.members != 1:
            raise ValueError(f"model {k + 1} is already an ensemble; merge single models")
        if {**asdict(t.config), "members": 1} != base:
            raise ValueError(f"model {k + 1} has a different configuration from model 1")
        if t.config.trainable_embeddings:
            raise ValueError("members must have frozen word vectors, which they share")
        if t.vocab.words != first.vocab.words or t.vocab.chars != first.vocab.chars:
            raise ValueError(f"model {k + 1} has a different vocabulary from model 1 (train them on the same data and vectors)")
    # Compared as stored (float16, see Tagger.save): a member saved before the table was
    # halved still shares it.
    table = first.network.get_layer("word_embedding").get_weights()[0].astype("float16")
    for k, t in enumerate(taggers[1:], 2):
        if not np.array_equal(t.network.get_layer("word_embedding").get_weights()[0].astype("float16"), table):
            raise ValueError(f"model {k} has different word vectors from model 1")
    config = ModelConfig(**{**base, "members": len(taggers)})
    network = build_network(config, len(first.vocab.words), len(first.vocab.chars))
    # The first member's table as loaded: an 8-bit table re-quantises to the same integers.
    network.get_layer("word_embedding").set_weights([first.network.get_layer("word_embedding").get_weights()[0]])
    for m, t in enumerate(taggers):
        _copy_trained_layers(t.network, network, member_prefix(m))
    return Tagger(config, first.vocab, network)


def add_word_vectors(tagger: "Tagger", kv, max_vocab: Optional[int] = None,
                     word_vector_bits: Optional[int] = None) -> Tuple["Tagger", int]:
    """The same tagger with a row for every key of ``kv`` it lacks; returns ``(tagger, rows added)``.

    With frozen vectors, training only ever looks up the rows of training words: every
    training key has a row, so the other rows (the most frequent news words, up to
    ``--max-vocab``) are never seen by the gradient. Adding more rows of the *same* vector
    file leaves every trained weight as it is; it only gives words the model had to treat
    as unknown their vectors. (A model trained with those rows from the start could still
    differ: characters found only in them would get ids, and early stopping reads dev
    through them.) Where training words themselves were read through clitic back-off
    (``unknown_without_vector``, silver sentences), new rows can change where some of them
    land, so the model is then no longer read as it was trained; the caller records that.
    ``kv`` must be the file the model was trained with: every row whose key is in ``kv``
    must match it (within the stored precision).
    """
    from .embeddings import vectors_by_key

    config = tagger.config
    if config.trainable_embeddings:
        raise ValueError("the model fine-tuned its word vectors: rows from the vector file would not fit them")
    if kv.vector_size != config.word_dim:
        raise ValueError(f"the vectors have {kv.vector_size} dimensions, the model {config.word_dim}")
    table = tagger.network.get_layer("word_embedding").get_weights()[0]
    key_index = vectors_by_key(kv)
    shared = [(i, key_index[w]) for i, w in enumerate(tagger.vocab.words) if i >= 2 and w in key_index]
    if not shared:
        raise ValueError("no word of the model has a vector in this file: not the vectors it was trained with")
    rows, kv_rows = table[[i for i, _ in shared]], kv.vectors[[j for _, j in shared]]
    # An 8-bit table is within half a step (max |row| / 254) of the file; float16 much closer.
    tolerance = np.abs(kv_rows).max(axis=1, keepdims=True) / 254 + 1e-3
    differ = int(np.any(np.abs(rows - kv_rows) > tolerance, axis=1).sum())
    if differ:
        raise ValueError(f"{differ} of the model's {len(shared)} rows with a vector in this file differ from it: "
                         "not the vectors the model was trained with")
    have = set(tagger.vocab.words)
    limit = max_vocab if max_vocab is not None else len(have) + len(key_index)
    new = [k for k in key_index if k not in have][: max(0, limit - len(tagger.vocab.words))]
    vocab = Vocabulary(tagger.vocab.words + new, tagger.vocab.chars, tagger.vocab.max_word_chars,
                       tagger.vocab.clitic_backoff)
    bits = word_vector_bits if word_vector_bits is not None else config.word_vector_bits
    new_config = ModelConfig(**{**asdict(config), "word_vector_bits": bits})
    network = build_network(new_config, len(vocab.words), len(vocab.chars))
    bigger = np.concatenate([table, kv.vectors[[key_index[k] for k in new]].astype("float32")]) if new else table
    network.get_layer("word_embedding").set_weights([bigger])
    _copy_trained_layers(tagger.network, network)
    return Tagger(new_config, vocab, network, dict(tagger.meta)), len(new)
