"""The tagger: BIO tags for word sequences of any length, from a model directory."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .config import ModelConfig
from .crf import viterbi_decode_batch
from .network import check_not_forked, keras_and_tf, member_prefix, padded_length
from .storage import load_network, read_config, read_meta, read_vocab, write_model
from .vocab import Vocabulary

#: Most padded tokens per network call in ``Tagger.predict`` (bounds peak memory).
MAX_BATCH_TOKENS = 8192
#: Distinct keys whose char features are computed in one call (bounds the CNN activations).
FEATURE_CHUNK_ROWS = 8192


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


class Tagger:
    """A trained tagger: vocabulary + network + decoding; framework details stay inside."""

    def __init__(self, config: ModelConfig, vocab: Vocabulary, network, meta: Optional[dict] = None) -> None:
        self.config = config
        self.vocab = vocab
        self.network = network
        self.meta = meta or {}
        self._scores_fn = None
        self._features_fn = None

    # ---- persistence
    @classmethod
    def load(cls, path: Path | str) -> "Tagger":
        """Load a model directory; every problem raises :class:`ModelLoadError` naming the file."""
        from .config import ModelLoadError

        path = Path(path)
        if not path.is_dir():
            raise ModelLoadError(f"model directory not found: {path}")
        config = read_config(path)
        vocab = read_vocab(path, config)
        meta = read_meta(path)
        return cls(config, vocab, load_network(path, config, vocab), meta)

    def save(self, path: Path | str, meta: Optional[dict] = None) -> None:
        if meta is not None:
            self.meta = meta
        write_model(Path(path), self.config, self.vocab, self.network, self.meta)

    # ---- scores
    def features_fn(self):
        """:func:`.scores.row_features` for :meth:`Vocabulary.distinct_rows`, traced once."""
        if self._features_fn is None:
            _, tf = keras_and_tf()
            from . import scores

            spec = {"row_words": tf.TensorSpec([None], tf.int32),
                    "char_rows": tf.TensorSpec([None, self.config.max_word_chars], tf.int32),
                    "short_rows": tf.TensorSpec([], tf.int32), "long_width": tf.TensorSpec([], tf.int32)}
            net, config = self.network, self.config
            self._features_fn = tf.function(lambda rows: scores.row_features(net, config, rows),
                                            input_signature=[spec], autograph=False)
        return self._features_fn

    def row_features(self, table: Dict[str, np.ndarray]):
        """The features of every row of ``table``, in chunks that bound the CNN activations."""
        _, tf = keras_and_tf()
        fn, n, short = self.features_fn(), len(table["row_words"]), int(table["short_rows"])
        chunks = []
        for a in range(0, n, FEATURE_CHUNK_ROWS):
            b = min(n, a + FEATURE_CHUNK_ROWS)
            chunks.append(fn({"row_words": table["row_words"][a:b], "char_rows": table["char_rows"][a:b],
                              "short_rows": np.int32(min(max(short - a, 0), b - a)),
                              "long_width": table["long_width"]}))
        return chunks[0] if len(chunks) == 1 else tf.concat(chunks, 1)

    def scores_fn(self):
        """Unary scores for ``{"words", "features", "rows", "char_index"}`` (see :meth:`predict`).

        Computed by :mod:`.scores` from the network's own weights (dropout off), equal to
        ``self.network``'s scores up to float rounding (tested), traced once for every
        batch shape.
        """
        if self._scores_fn is None:
            _, tf = keras_and_tf()
            from . import scores

            spec = {
                "words": tf.TensorSpec([None, None], tf.int32),
                "features": tf.TensorSpec([self.config.members, None, None], tf.float32),
                "rows": tf.TensorSpec([None], tf.int32),
                "char_index": tf.TensorSpec([None, None], tf.int32),
            }
            net, config = self.network, self.config
            self._scores_fn = tf.function(lambda x: scores.unary_scores(net, config, x),
                                          input_signature=[spec], autograph=False)
        return self._scores_fn

    @staticmethod
    def batch_inputs(rows: Sequence[np.ndarray], length: int, table, features) -> Dict[str, object]:
        """One network call's inputs for windows given by their rows of :meth:`Vocabulary.distinct_rows`."""
        index = np.zeros((len(rows), length), dtype="int32")  # padding: row 0
        for i, r in enumerate(rows):
            index[i, : len(r)] = r
        used, local = np.unique(index, return_inverse=True)
        return {"words": table["row_words"][index], "rows": used.astype("int32"),
                "char_index": local.reshape(index.shape).astype("int32"), "features": features}

    def unary_scores(self, sequences: Sequence[Sequence[str]], length: int) -> np.ndarray:
        """Unary scores ``(n, length, n_tags)`` of one padded batch of word sequences."""
        table, rows = self.vocab.distinct_rows(sequences)
        inputs = self.batch_inputs(rows, length, table, self.row_features(table))
        return self.scores_fn()(inputs).numpy()

    def crf_params(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Transition, start and end scores, averaged over members like the unary scores."""
        layers = [self.network.get_layer(member_prefix(m) + "tag_scores") for m in range(self.config.members)]
        return tuple(np.mean([np.asarray(getattr(layer, name).numpy()) for layer in layers], axis=0)
                     for name in ("transitions", "start", "end"))

    def decode(self, scores: np.ndarray, lengths: Sequence[int], crf=None) -> List[List[str]]:
        """Tags from unary scores; ``crf`` is :meth:`crf_params`' result when the caller has it."""
        trans, start, end = crf if crf is not None else self.crf_params()
        paths = viterbi_decode_batch(scores, lengths, trans, start, end)
        names = np.array(self.config.tags, dtype=object)
        return [names[p[:n]].tolist() for p, n in zip(paths, lengths)]

    # ---- prediction
    def batches(self, pieces: Sequence[Tuple[int, int, int, int, int]], batch_size: int) -> List[List[int]]:
        """Windows sorted by length and cut into batches that share one padded length:
        ``[length, piece index, ...]`` each. A few long windows then never pad a batch of
        short ones; the token cap bounds the char-CNN activations."""
        order = sorted(range(len(pieces)), key=lambda k: pieces[k][2] - pieces[k][1])
        batches: List[List[int]] = []
        for k in order:
            n = pieces[k][2] - pieces[k][1]
            length = padded_length(n, 4 if n <= 32 else 16)  # a text of short sentences must not pay for 16
            if (not batches or length != batches[-1][0] or len(batches[-1]) > batch_size
                    or len(batches[-1]) * length > MAX_BATCH_TOKENS):
                batches.append([length])
            batches[-1].append(k)
        return batches

    def predict(self, sequences: Sequence[Sequence[str]], batch_size: int = 256) -> List[List[str]]:
        """BIO tags for each word sequence, of any length (long ones are windowed)."""
        check_not_forked()
        pieces: List[Tuple[int, int, int, int, int]] = []  # seq, start, end, core_start, core_end
        for i, words in enumerate(sequences):
            if words:
                pieces.extend((i, *w) for w in make_windows(len(words), self.config.window, self.config.context))
        out: List[List[str]] = [["O"] * len(words) for words in sequences]
        if not pieces:
            return out
        fn = self.scores_fn()
        # Char features once per distinct key of the whole call, not of each network call.
        table, rows = self.vocab.distinct_rows(sequences)
        features = self.row_features(table)
        crf = self.crf_params()  # once per call, fresh each call: training changes them
        for length, *ks in self.batches(pieces, batch_size):
            batch = [pieces[k] for k in ks]
            lengths = [e - s for _, s, e, _, _ in batch]
            inputs = self.batch_inputs([rows[i][s:e] for i, s, e, _, _ in batch], length, table, features)
            for (i, s, _, cs, ce), tags in zip(batch, self.decode(fn(inputs).numpy(), lengths, crf)):
                out[i][cs:ce] = tags[cs - s: ce - s]
        return out
