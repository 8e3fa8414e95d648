"""Pretraining the tagger's lower layers as a bidirectional language model on unlabelled text.

ANERCorp has 4,000 training sentences; SaudiNewsNet has hundreds of thousands. The word
vectors already come from the news, but the char CNN and the first BiLSTM layer learn only
from the gold sentences. Here they learn first to predict each word's neighbours in news
sentences (the forward LSTM the next word, the backward LSTM the previous one), and
``train --init-from`` starts a tagger from those weights. The network the tagger runs is
unchanged: same size, same speed.

Character embeddings move by character, not by id, so a language model made with the
train part's vocabulary also initialises the refit on the whole train file.
"""
from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from .corpus import read_conll, sha256_file
from .model import UNK, ModelConfig, Vocabulary, _bucket, _keras, bilstm_layer, network_inputs, word_features

LM_WEIGHTS = "lm.weights.h5"
LM_META = "lm.json"
#: Sizes that must agree between a language model and the tagger it initialises.
SHARED_SIZES = ("word_dim", "char_dim", "char_filters", "char_kernel", "max_word_chars", "lstm_units")
#: Output classes besides the frequent words: 0 = no target (padding, sentence edge), 1 = any other word.
NO_TARGET, OTHER_WORD = 0, 1


def output_classes(sentence_ids: Sequence[np.ndarray], n_words: int, n_out: int) -> np.ndarray:
    """Word id -> language-model class: the ``n_out`` most frequent ids get their own class."""
    counts = Counter(int(i) for ids in sentence_ids for i in ids if i > UNK)
    classes = np.full(n_words, OTHER_WORD, dtype="int32")
    classes[0] = NO_TARGET
    for k, (word_id, _) in enumerate(counts.most_common(n_out)):
        classes[word_id] = k + 2
    return classes


def neighbour_targets(word_ids: np.ndarray, classes: np.ndarray):
    """Classes of the next and the previous word for each position of ``(B, T)`` word ids (0 = none)."""
    cls = classes[word_ids]
    nxt = np.zeros_like(cls)
    prev = np.zeros_like(cls)
    nxt[:, :-1] = cls[:, 1:]
    prev[:, 1:] = cls[:, :-1]
    pad = word_ids == 0
    nxt[pad] = NO_TARGET
    prev[pad] = NO_TARGET
    return nxt, prev


def lm_loss(y_true, logits):
    """Mean cross-entropy over the positions that have a target."""
    _, tf = _keras()
    y_true = tf.cast(y_true, tf.int32)
    mask = tf.cast(y_true != NO_TARGET, logits.dtype)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y_true, logits=logits)
    return tf.reduce_sum(ce * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


def build_lm_network(config: ModelConfig, n_words: int, n_chars: int, n_classes: int,
                     embedding_matrix: Optional[np.ndarray] = None):
    """Word features and the first BiLSTM layer (the tagger's layer names), with two word-class heads."""
    keras, _ = _keras()
    L = keras.layers
    words_in, chars_in, w, mask = network_inputs(config, n_words, embedding_matrix)
    h = bilstm_layer(config, 0)(word_features(config, n_chars, w, chars_in), mask=mask)
    h = L.Dropout(config.dropout)(h)
    units = config.lstm_units
    forward = L.Lambda(lambda t: t[..., :units], name="forward_states")(h)
    backward = L.Lambda(lambda t: t[..., units:], name="backward_states")(h)
    return keras.Model({"words": words_in, "chars": chars_in},
                       {"next": L.Dense(n_classes, name="next_word")(forward),
                        "prev": L.Dense(n_classes, name="previous_word")(backward)}, name="aner_bilm")


def lm_batches_class():
    keras, _ = _keras()

    class NeighbourBatches(keras.utils.PyDataset):
        """Batches of similar-length sentences with their next- and previous-word targets."""

        def __init__(self, sentences: Sequence[Sequence[str]], vocab: Vocabulary, classes: np.ndarray,
                     batch_size: int, seed: int):
            super().__init__()
            self.sentences, self.vocab, self.classes = sentences, vocab, classes
            order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
            self.batches = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
            self.rng = np.random.default_rng(seed)
            self.rng.shuffle(self.batches)

        def __len__(self):
            return len(self.batches)

        def __getitem__(self, idx):
            sents = [self.sentences[i] for i in self.batches[idx]]
            words, chars = self.vocab.encode(sents, _bucket(max(map(len, sents))))
            nxt, prev = neighbour_targets(words, self.classes)
            return {"words": words, "chars": chars}, {"next": nxt, "prev": prev}

        def on_epoch_end(self):
            self.rng.shuffle(self.batches)

    return NeighbourBatches


def pretrain(train_path: Path | str, sentences: Sequence[Sequence[str]], output: Path | str, *,
             vectors: Path | str, config: Optional[ModelConfig] = None, max_vocab: int = 40_000,
             n_out: int = 8_000, epochs: int = 1, batch_size: int = 64, learning_rate: float = 1e-3,
             seed: int = 13, verbose: int = 1, command: str = "") -> Dict:
    """Train the bidirectional language model on ``sentences`` and save it to ``output``.

    The vocabulary and embedding table are the ones ``train`` builds from ``train_path``
    and ``vectors``, so the word inputs are what the tagger will see.
    """
    from .training import epoch_log_callback_class, vocabulary_and_vectors

    keras, _ = _keras()
    keras.utils.set_random_seed(seed)
    sentences = [list(s) for s in sentences if s]
    if not sentences:
        raise ValueError("pretraining needs at least one sentence")
    config = config or ModelConfig()
    _, vocab, matrix, _ = vocabulary_and_vectors(read_conll(train_path).sentences, vectors, config, max_vocab)
    ids = [vocab.encode([s], len(s))[0][0] for s in sentences]
    classes = output_classes(ids, len(vocab.words), n_out)
    network = build_lm_network(config, len(vocab.words), len(vocab.chars), n_out + 2, matrix)
    network.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=5.0), loss={"next": lm_loss, "prev": lm_loss})
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    log = epoch_log_callback_class()(output / "pretraining.json")
    start = time.perf_counter()
    network.fit(lm_batches_class()(sentences, vocab, classes, batch_size, seed), epochs=epochs, callbacks=[log],
                verbose=verbose)
    minutes = (time.perf_counter() - start) / 60
    network.save_weights(output / LM_WEIGHTS)
    meta = {
        "command": command or " ".join(sys.argv),
        "train_file": str(train_path), "train_sha256": sha256_file(train_path),
        "vectors": {"file": str(vectors), "sha256": sha256_file(vectors) if Path(vectors).is_file() else None},
        "sizes": {k: getattr(config, k) for k in SHARED_SIZES},
        "n_words": len(vocab.words), "chars": vocab.chars, "output_classes": n_out + 2,
        "sentences": len(sentences), "words": int(sum(map(len, sentences))),
        "hyperparameters": {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                            "seed": seed, "dropout": config.dropout},
        "loss": [h["loss"] for h in log.history], "minutes": round(minutes, 1),
    }
    (output / LM_META).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    return meta


def initialise_from_lm(network, vocab: Vocabulary, config: ModelConfig, lm_dir: Path | str,
                       vectors_sha256: Optional[str]) -> Dict:
    """Copy the language model's char embeddings (by character), char CNN and first BiLSTM into ``network``."""
    lm_dir = Path(lm_dir)
    if config.char_kernels:
        raise ValueError("a pretrained language model has one char CNN; train without --char-kernels to start from it")
    try:
        meta = json.loads((lm_dir / LM_META).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{lm_dir} is not a pretrained language model ({LM_META}: {err})") from None
    differ = {k: (meta["sizes"].get(k), getattr(config, k)) for k in SHARED_SIZES if meta["sizes"].get(k) != getattr(config, k)}
    if differ:
        raise ValueError(f"the language model in {lm_dir} has other sizes (model, tagger): {differ}")
    if meta["vectors"]["sha256"] != vectors_sha256:
        raise ValueError(f"the language model in {lm_dir} was trained over other word vectors "
                         f"({meta['vectors']['file']}); its BiLSTM expects those")
    lm_config = ModelConfig(**{**{k: getattr(config, k) for k in SHARED_SIZES}, "dropout": config.dropout})
    lm = build_lm_network(lm_config, meta["n_words"], len(meta["chars"]), meta["output_classes"])
    lm.load_weights(lm_dir / LM_WEIGHTS)
    src = lm.get_layer("char_embedding").get_weights()[0]
    dst = network.get_layer("char_embedding").get_weights()[0].copy()
    lm_index = {c: i for i, c in enumerate(meta["chars"])}
    matched = [(i, lm_index[c]) for i, c in enumerate(vocab.chars) if c in lm_index]
    for i, j in matched:
        dst[i] = src[j]
    network.get_layer("char_embedding").set_weights([dst])
    for name in ("char_cnn", "bilstm"):
        network.get_layer(name).set_weights(lm.get_layer(name).get_weights())
    return {"dir": str(lm_dir), "sha256": sha256_file(lm_dir / LM_WEIGHTS), "command": meta["command"],
            "sentences": meta["sentences"], "chars_matched": len(matched), "chars": len(vocab.chars)}
