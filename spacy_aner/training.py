"""Training the tagger: vocabulary, embedding matrix, Keras fit with early stopping on dev F1."""
from __future__ import annotations

import json
import logging
import math
import random
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .about import __version__
from .corpus import Sentence, read_conll, sha256_file, split_dev
from .evaluation import entity_scores
from .model import _PAD_LABEL, META_FILE, UNK, ModelConfig, Tagger, Vocabulary, _bucket, _keras, build_network, crf_token_loss, masked_softmax_loss
from .normalize import normalize_word
from .tags import bio_to_spans, repair_bio, spans_to_bio

logger = logging.getLogger(__name__)

MODEL_LICENSE = (
    "CC BY-NC-SA 4.0 when trained with vectors from SaudiNewsNet (CC BY-NC-SA 4.0, Alhagri 2015); "
    "training data ANERCorp CAMeL Lab split (Benajiba et al. 2007; Obeid et al. 2020). "
    "The spacy-aner code is MIT."
)


def chunk_sentences(sentences: Sequence[Sentence], size: int) -> List[Sentence]:
    """Cut training sentences longer than the network's window into consecutive pieces."""
    out = []
    for s in sentences:
        for i in range(0, len(s.words), size):
            out.append(Sentence(s.words[i: i + size], repair_bio(s.tags[i: i + size]), s.line))
    return out


def select_vocabulary(train: Sequence[Sentence], kv, max_vocab: int) -> List[str]:
    """Every training key, then the vectors' most frequent keys, up to ``max_vocab``.

    Only these rows of the vectors ship with the model, which keeps it small while
    covering words the training split never saw.
    """
    counts = Counter(normalize_word(w) or w for s in train for w in s.words)
    keys = [k for k, _ in counts.most_common()]
    if kv is not None:
        seen = set(keys)
        for word in kv.index_to_key:
            if len(keys) >= max_vocab:
                break
            key = normalize_word(str(word))
            if key and key not in seen:
                seen.add(key)
                keys.append(key)
    return keys


def mention_pool(sentences: Sequence[Sentence]) -> Dict[str, List[Tuple[str, ...]]]:
    """The words of every entity in ``sentences``, by label, once per occurrence."""
    pool: Dict[str, List[Tuple[str, ...]]] = {}
    for s in sentences:
        for start, end, label in bio_to_spans(s.tags):
            pool.setdefault(label, []).append(tuple(s.words[start:end]))
    return pool


def replace_mentions(sentence: Sentence, pool: Dict[str, List[Tuple[str, ...]]], rate: float,
                     rng: random.Random, max_len: int) -> Sentence:
    """Mention replacement (Dai & Adel, COLING 2020): each entity, with probability ``rate``,
    becomes another training entity of the same label, drawn by frequency.

    Test names are mostly unseen in training; putting other names into the same contexts
    makes the network tag from the context and the name's shape rather than remember
    which names go where. The sentence never grows past ``max_len`` (the network's window).
    """
    spans = bio_to_spans(sentence.tags)
    if rate <= 0 or not spans:
        return sentence
    growth = 0

    def swap(start: int, end: int, label: str) -> Sequence[str]:
        nonlocal growth
        mention = tuple(sentence.words[start:end])
        if rng.random() < rate and pool.get(label):
            candidate = rng.choice(pool[label])
            if len(sentence.words) + growth - len(mention) + len(candidate) <= max_len:
                growth += len(candidate) - len(mention)
                return candidate
        return mention

    return _rewrite_mentions(sentence, spans, swap)


def _rewrite_mentions(sentence: Sentence, spans, new_words) -> Sentence:
    """``sentence`` with each entity's words replaced by ``new_words(start, end, label)``
    (called in order), every other word kept, and the tags rebuilt to match."""
    words: List[str] = []
    new_spans = []
    prev = 0
    for start, end, label in spans:
        words.extend(sentence.words[prev:start])
        mention = new_words(start, end, label)
        new_spans.append((len(words), len(words) + len(mention), label))
        words.extend(mention)
        prev = end
    words.extend(sentence.words[prev:])
    return Sentence(words, spans_to_bio(new_spans, len(words)), sentence.line)


def shorten_names(sentence: Sentence, rate: float, rng: random.Random, label: str = "PERS") -> Sentence:
    """Each ``label`` entity of two or more words, with probability ``rate``, keeps only its
    first or its last word (even odds); the rest of its words leave the sentence.

    Newswire names a person in full (محمد is followed by more of a name 104 times in 125 in
    the train file), so the network learns that a first name always runs on and tags the
    verb after a lone name as part of it. Running text also names people by one word; this
    shows the network such names before any kind of word.
    """
    spans = bio_to_spans(sentence.tags)
    if rate <= 0 or not any(lab == label and end - start > 1 for start, end, lab in spans):
        return sentence

    def cut(start: int, end: int, lab: str) -> Sequence[str]:
        mention = sentence.words[start:end]
        if lab == label and len(mention) > 1 and rng.random() < rate:
            return [mention[0] if rng.random() < 0.5 else mention[-1]]
        return mention

    return _rewrite_mentions(sentence, spans, cut)


def crop_context(sentence: Sentence, rate: float, rng: random.Random) -> Sentence:
    """With probability ``rate``, a random stretch of ``sentence`` that cuts no entity in two;
    else the sentence itself.

    The start is drawn from the words that do not continue an entity, the end from the
    boundaries after the start that do not split one. ANERCorp's sentences are long (31
    words on average) and verb-first, so a name rarely opens one; text people tag is often a
    short clause that starts with its subject. Crops show the network names at the edges of
    short inputs, with the same tags they had in context.
    """
    n = len(sentence.words)
    if rate <= 0 or n < 2 or rng.random() >= rate:
        return sentence
    cuts = [i for i, t in enumerate(sentence.tags) if not t.startswith("I-")] + [n]  # boundaries
    if len(cuts) == 1:  # all I- (never after repair_bio, which training applies): nothing to cut
        return sentence
    start = rng.choice(cuts[:-1])
    end = rng.choice([c for c in cuts if c > start])
    return Sentence(sentence.words[start:end], sentence.tags[start:end], sentence.line)


def batches_class():
    keras, _ = _keras()

    class LengthBatches(keras.utils.PyDataset):
        """Batches of similar length (little padding), in a new random order every epoch."""

        def __init__(self, sentences: Sequence[Sentence], vocab: Vocabulary, tags: Sequence[str],
                     batch_size: int, seed: int, word_dropout: float = 0.0, mention_rate: float = 0.0,
                     max_len: int = 128, name_shortening: float = 0.0, context_crops: float = 0.0):
            super().__init__()
            self.context_crops = context_crops
            # Its own stream (a string seed), so the other draws stay as they were without crops.
            self.crop_rng = random.Random(f"context-crops/{seed}")
            self.word_dropout = word_dropout
            self.name_shortening = name_shortening
            self.shorten_rng = random.Random(seed + 2)
            self.mention_rate = mention_rate
            self.max_len = max_len
            self.mentions = mention_pool(sentences) if mention_rate > 0 else {}
            self.mention_rng = random.Random(seed + 1)
            self.np_rng = np.random.default_rng(seed)
            self.sentences = sentences
            self.vocab = vocab
            self.tag_index = {t: i for i, t in enumerate(tags)}
            order = sorted(range(len(sentences)), key=lambda i: len(sentences[i].words))
            self.batches = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
            self.rng = random.Random(seed)
            self.rng.shuffle(self.batches)
            # Keras fixes the input signature from the first two batches: if both had the same
            # padded length, every longer batch would be refused. Make them differ.
            lengths = [_bucket(max(len(sentences[i].words) for i in b)) for b in self.batches]
            other = next((j for j in range(1, len(lengths)) if lengths[j] != lengths[0]), None)
            if other is not None and lengths[1] == lengths[0]:
                self.batches[1], self.batches[other] = self.batches[other], self.batches[1]

        def __len__(self):
            return len(self.batches)

        def __getitem__(self, idx):
            sents = [self.sentences[i] for i in self.batches[idx]]
            length = _bucket(max(len(s.words) for s in sents))
            if self.mention_rate > 0:  # a fresh draw every time the batch is served, i.e. every epoch
                # Never past the batch's padded length: the first two batches' lengths (above) hold.
                room = min(length, self.max_len)
                sents = [replace_mentions(s, self.mentions, self.mention_rate, self.mention_rng, room) for s in sents]
            if self.name_shortening > 0:  # only ever shortens, so the padded length holds
                sents = [shorten_names(s, self.name_shortening, self.shorten_rng) for s in sents]
            if self.context_crops > 0:  # only ever shortens, so the padded length holds
                sents = [crop_context(s, self.context_crops, self.crop_rng) for s in sents]
            words, chars = self.vocab.encode([s.words for s in sents], length)
            if self.word_dropout > 0:
                # Unknown-word practice: test names are mostly unseen, so the network must
                # also learn to tag from characters and context alone.
                drop = (self.np_rng.random(words.shape) < self.word_dropout) & (words > UNK)
                words[drop] = UNK
            y = np.full((len(sents), length), _PAD_LABEL, dtype="int32")
            for i, s in enumerate(sents):
                y[i, : len(s.tags)] = [self.tag_index[t] for t in s.tags]
            return {"words": words, "chars": chars}, y

        def on_epoch_end(self):
            self.rng.shuffle(self.batches)

    return LengthBatches


def epoch_log_callback_class():
    keras, _ = _keras()

    class EpochLog(keras.callbacks.Callback):
        """Loss and learning rate per epoch into ``training.json`` (the learning curves)."""

        def __init__(self, log_path: Optional[Path]):
            super().__init__()
            self.log_path = log_path
            self.history: List[Dict] = []
            self.start = time.perf_counter()

        def epoch_scores(self, logs: Dict) -> Dict:
            """Extra fields of an epoch's record (none without a dev set)."""
            return {}

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            self.history.append({
                "epoch": epoch + 1, "loss": float(logs.get("loss", float("nan"))),
                **self.epoch_scores(logs),
                "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
                "seconds": round(time.perf_counter() - self.start, 1),
            })
            if self.log_path:
                self.log_path.write_text(json.dumps({"epochs": self.history}, indent=2))

    return EpochLog


def dev_f1_callback_class():
    class DevF1(epoch_log_callback_class()):
        """Scores the dev set (seqeval, entity level) after every epoch as ``val_f1``."""

        def __init__(self, tagger: Tagger, dev: Sequence[Sentence], log_path: Optional[Path]):
            super().__init__(log_path)
            self.tagger = tagger
            self.dev = dev

        def epoch_scores(self, logs: Dict) -> Dict:
            pred = self.tagger.predict([s.words for s in self.dev])
            scores = entity_scores([s.tags for s in self.dev], pred)
            logs["val_f1"] = scores["micro"]["f1"]  # read by EarlyStopping and ReduceLROnPlateau
            print(f" - dev F1 {logs['val_f1']:.2f}", flush=True)
            return {"dev_f1": scores["micro"]["f1"], "dev_precision": scores["micro"]["precision"],
                    "dev_recall": scores["micro"]["recall"],
                    "dev_f1_per_type": {k: v["f1"] for k, v in scores["per_type"].items()}}

    return DevF1


def stepped_learning_rate(epoch: int, base: float, decay: float, drops: Sequence[int]) -> float:
    """Learning rate of 0-based ``epoch``: ``base`` times ``decay`` once per drop epoch passed.

    ``drops`` are 1-based epochs after which the rate fell in a run with a dev set
    (``ReduceLROnPlateau``), replayed when refitting without one; the floor is the same
    ``base / 50``.
    """
    return max(base * decay ** sum(1 for d in drops if d <= epoch), base / 50)


def refit_schedule(model_dir: Path | str) -> Dict:
    """Epoch count and learning-rate steps to replay, read off a run that had a dev set.

    ``training.json`` records the rate each epoch trained with (logged before
    ``ReduceLROnPlateau`` acts), so a drop after epoch ``e`` shows as a lower rate at ``e + 1``.
    Returns ``{"epochs", "lr_drops", "learning_rate", "lr_decay", "mention_replacement", ...}`` for :func:`train`.
    """
    model_dir = Path(model_dir)
    try:
        meta = json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))
        history = json.loads((model_dir / "training.json").read_text(encoding="utf-8"))["epochs"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{model_dir}: not a model trained by `spacy-aner train` ({err})") from None
    if meta.get("refit") or not meta.get("best_epoch"):
        raise ValueError(f"{model_dir}: a refit has no dev-chosen schedule; give the run that had a dev set")
    rates = [e.get("learning_rate") for e in history]
    if None in rates:
        raise ValueError(f"{model_dir}: its training.json predates the per-epoch learning rate; "
                         "give --epochs and --lr-drops by hand")
    best = int(meta["best_epoch"])
    if len(rates) < best:
        raise ValueError(f"{model_dir}: training.json has {len(rates)} epochs, fewer than the best epoch {best}")
    hyper = meta.get("hyperparameters", {})
    drops = [e for e in range(1, best) if rates[e] < rates[e - 1] * (1 - 1e-6)]
    return {"epochs": best, "lr_drops": drops, "learning_rate": hyper.get("learning_rate"),
            "lr_decay": hyper.get("lr_decay"), "mention_replacement": hyper.get("mention_replacement", 0.0),
            "name_shortening": hyper.get("name_shortening", 0.0),
            "context_crops": hyper.get("context_crops", 0.0),
            "token_loss": hyper.get("token_loss", 0.0),
            "unknown_without_vector": hyper.get("unknown_without_vector", False),
            "char_kernels": hyper.get("char_kernels", [])}


def vocabulary_and_vectors(train_sents: Sequence[Sentence], vectors: Optional[Path | str], config: ModelConfig,
                           max_vocab: int, unknown_without_vector: bool = False):
    """The kept vocabulary of ``train_sents`` and its embedding table: ``(kv, vocab, matrix, rows with vectors)``.

    Sets ``config.word_dim`` to the vectors' size; without vectors the table is random and
    ``config.trainable_embeddings`` is switched on.
    """
    kv = None
    if vectors:
        from .embeddings import load_vectors

        kv = load_vectors(vectors)
        config.word_dim = kv.vector_size
    else:
        config.trainable_embeddings = True  # random vectors are useless unless learnt
    vocab = Vocabulary.build(select_vocabulary(train_sents, kv, max_vocab), config.max_word_chars,
                             clitic_backoff=config.clitic_backoff)
    if kv is None:
        return kv, vocab, None, 0
    from .embeddings import build_embedding_matrix, vectors_by_key

    key_index = vectors_by_key(kv)
    if unknown_without_vector:
        # Training words without a vector are then read as unseen words are at test time
        # (clitic back-off, else <unk>) instead of each getting a random row of its own that
        # no test word can have. The characters stay those of every training word.
        kept = [w for i, w in enumerate(vocab.words) if i <= UNK or w in key_index]
        vocab = Vocabulary(kept, vocab.chars, vocab.max_word_chars, vocab.clitic_backoff)
    # The default seed, not the training seed: models that differ only in their seed then
    # share one frozen table, which an ensemble (merge_members) stores once.
    matrix, hits = build_embedding_matrix(vocab.words, kv, key_index)
    return kv, vocab, matrix, hits


def _prepare_source(train_path: Path | str) -> Optional[Dict]:
    """The release files (and their hashes) that ``spacy-aner prepare`` derived the data from."""
    stats = Path(train_path).parent / "stats.json"
    if stats.is_file():
        return json.loads(stats.read_text(encoding="utf-8")).get("source")
    return None


def _silver_teacher(silver_path: Path | str) -> Optional[Dict]:
    """The record ``spacy-aner silver`` wrote next to a silver file (teacher, corpus, sampling)."""
    record = Path(str(silver_path) + ".json")
    try:
        return json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # no record (silver made by other means) or an unreadable one
        return None


def train(train_path: Path | str, output: Path | str, *, dev_path: Optional[Path | str] = None,
          dev_fraction: float = 0.1, vectors: Optional[Path | str] = None, config: Optional[ModelConfig] = None,
          max_vocab: int = 40_000, epochs: int = 60, patience: int = 8, batch_size: int = 32,
          learning_rate: float = 3e-3, lr_decay: float = 0.5, word_dropout: float = 0.0, seed: int = 13, verbose: int = 1,
          lr_drops: Optional[Sequence[int]] = None, silver_path: Optional[Path | str] = None,
          init_from: Optional[Path | str] = None, mention_replacement: float = 0.0,
          unknown_without_vector: bool = False, name_shortening: float = 0.0, context_crops: float = 0.0,
          token_loss: float = 0.0, command: str = "") -> Dict:
    """Train a tagger on ``train_path`` and save it to ``output``; returns the meta record.

    The dev set is ``dev_path`` or else the last ``dev_fraction`` of ``train_path``;
    training stops when dev F1 has not improved for ``patience`` epochs, keeping the best
    weights. With ``lr_decay`` < 1 the learning rate is multiplied by it whenever dev F1
    has not improved for two epochs.

    With no dev set (no ``dev_path`` and ``dev_fraction`` 0) this is a *refit*: exactly
    ``epochs`` epochs on all of ``train_path``, the learning rate multiplied by ``lr_decay``
    after each epoch in ``lr_drops``, both taken from an earlier run with a dev set. Such a
    model has no held-out dev score.

    ``silver_path`` adds teacher-tagged sentences (``spacy-aner silver``) to the training
    sentences, never to dev; the kept vocabulary is still chosen from the gold sentences.

    ``mention_replacement`` is the chance that each training entity is swapped for another
    of the same label, drawn anew every epoch (:func:`replace_mentions`); ``name_shortening``
    the chance that each PERS entity of several words is cut to one (:func:`shorten_names`);
    ``context_crops`` the chance that each sentence is cut to a stretch of it (:func:`crop_context`).

    ``token_loss`` weighs a per-word softmax loss on the CRF's unary scores, added to the
    CRF loss (:func:`crf_token_loss`).

    ``unknown_without_vector`` drops training words without a vector from the vocabulary,
    so the network learns the ``<unk>`` row (and clitic back-off) that unseen words get.

    ``init_from`` starts the char features and the first BiLSTM layer from a language model
    made by :func:`spacy_aner.pretrain.pretrain` over the same vectors.
    """
    keras, tf = _keras()
    keras.utils.set_random_seed(seed)
    config = config or ModelConfig()
    if config.members != 1:
        raise ValueError("train fits one tagger; train members with different --seed and merge them with `spacy-aner ensemble`")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)

    train_sents = read_conll(train_path).sentences
    refit = not dev_path and dev_fraction == 0
    if dev_path:
        dev_sents = read_conll(dev_path).sentences
    elif refit:
        dev_sents = []
    else:
        train_sents, dev_sents = split_dev(train_sents, dev_fraction)
    if not 0.0 <= mention_replacement <= 1.0:
        raise ValueError(f"mention_replacement is a probability, got {mention_replacement}")
    if not 0.0 <= name_shortening <= 1.0:
        raise ValueError(f"name_shortening is a probability, got {name_shortening}")
    if not 0.0 <= context_crops <= 1.0:
        raise ValueError(f"context_crops is a probability, got {context_crops}")
    if not (math.isfinite(token_loss) and token_loss >= 0):
        raise ValueError(f"token_loss is a weight, finite and at least 0, got {token_loss}")
    if token_loss and config.output != "crf":
        raise ValueError("token_loss adds a per-word loss to the CRF's; a softmax output has only that loss")
    if lr_drops is not None and not refit:
        raise ValueError("lr_drops replays a schedule without a dev set; with one, the dev F1 sets the schedule")
    if not train_sents or (not dev_sents and not refit):
        raise ValueError("training needs at least one training and one dev sentence")
    silver_sents = read_conll(silver_path).sentences if silver_path else []

    vectors_sha256 = sha256_file(vectors) if vectors and Path(vectors).is_file() else None
    if unknown_without_vector and not vectors:
        raise ValueError("unknown_without_vector needs --vectors")
    if config.word_vector_bits != 16 and not vectors:
        raise ValueError("word_vector_bits applies to frozen --vectors; without them the embeddings are trained")
    kv, vocab, matrix, hits = vocabulary_and_vectors(train_sents, vectors, config, max_vocab, unknown_without_vector)
    network = build_network(config, len(vocab.words), len(vocab.chars), matrix)
    pretrained = None
    if init_from:
        from .pretrain import initialise_from_lm

        if kv is None:
            raise ValueError("a pretrained language model needs the word vectors it was trained over (--vectors)")
        pretrained = initialise_from_lm(network, vocab, config, init_from, vectors_sha256)
    if config.output == "crf":
        out_layer = network.get_layer("tag_scores")

        def loss(y_true, scores):
            return crf_token_loss(y_true, scores, out_layer, token_loss)
    else:
        loss = masked_softmax_loss
    network.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=5.0), loss=loss)

    tagger = Tagger(config, vocab, network)
    data = batches_class()(chunk_sentences(train_sents + silver_sents, config.window), vocab, config.tags, batch_size, seed,
                           word_dropout, mention_replacement, config.window, name_shortening, context_crops)
    drops = sorted(lr_drops or [])
    if refit:
        dev_cb = epoch_log_callback_class()(output / "training.json")
        callbacks = [dev_cb, keras.callbacks.LearningRateScheduler(
            lambda epoch, lr: stepped_learning_rate(epoch, learning_rate, lr_decay, drops))]
    else:
        dev_cb = dev_f1_callback_class()(tagger, dev_sents, output / "training.json")
        stopper = keras.callbacks.EarlyStopping(monitor="val_f1", mode="max", patience=patience,
                                                restore_best_weights=True, verbose=verbose)
        callbacks = [dev_cb, stopper]
        if lr_decay < 1.0:
            callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_f1", mode="max", factor=lr_decay,
                                                               patience=2, min_lr=learning_rate / 50, verbose=verbose))
    start = time.perf_counter()
    network.fit(data, epochs=epochs, callbacks=callbacks, verbose=verbose)
    minutes = (time.perf_counter() - start) / 60

    if refit:
        dev_scores, best_epoch = None, None
    else:
        dev_pred = tagger.predict([s.words for s in dev_sents])
        dev_scores = entity_scores([s.tags for s in dev_sents], dev_pred)
        best_epoch = max(dev_cb.history, key=lambda h: h["dev_f1"])["epoch"]
    meta = {
        "name": "aner_lstm",
        "spacy_aner_version": __version__,
        "command": command or " ".join(sys.argv),
        "train_file": str(train_path),
        "train_sha256": sha256_file(train_path),
        "corpus_source": _prepare_source(train_path),
        "dev": ({"file": str(dev_path), "sha256": sha256_file(dev_path)} if dev_path
                else None if refit else {"fraction_of_train": dev_fraction}),
        "sentences": {"train": len(train_sents), "dev": len(dev_sents),
                      **({"silver": len(silver_sents)} if silver_path else {})},
        **({"silver": {"file": str(silver_path), "sha256": sha256_file(silver_path),
                       "teacher": _silver_teacher(silver_path)}} if silver_path else {}),
        **({"init_from": pretrained} if pretrained else {}),
        "vectors": {
            "file": str(vectors) if vectors else None,
            "sha256": vectors_sha256,
            "source_keys": len(kv) if kv is not None else 0,
            "kept_rows": len(vocab.words),
            "rows_with_vectors": hits,
        },
        "hyperparameters": {"epochs_max": epochs, "patience": patience, "batch_size": batch_size,
                            "learning_rate": learning_rate, "lr_decay": lr_decay, "word_dropout": word_dropout,
                            "mention_replacement": mention_replacement, "seed": seed, "max_vocab": max_vocab,
                            **({"unknown_without_vector": True} if unknown_without_vector else {}),
                            **({"name_shortening": name_shortening} if name_shortening else {}),
                            **({"context_crops": context_crops} if context_crops else {}),
                            **({"token_loss": token_loss} if token_loss else {}),
                            **({"lr_drops": drops} if refit else {}), **asdict(config)},
        "refit": refit,
        "best_epoch": best_epoch,
        "epochs_run": len(dev_cb.history),
        "training_minutes": round(minutes, 1),
        "dev_scores": dev_scores,
        "license": MODEL_LICENSE if vectors else "Trained on ANERCorp only; see README for data terms.",
    }
    tagger.save(output, meta)
    return meta


def ensemble(model_dirs: Sequence[Path | str], output: Path | str, *, dev_path: Optional[Path | str] = None,
             command: str = "") -> Dict:
    """Merge models trained with different seeds into one ensemble model; score it on dev.

    The members must come from the same data and vectors (``train`` with only ``--seed``
    changed). Each member's dev F1 is recorded next to the ensemble's, so the gain is on
    record and measured on dev only. Refit members (trained on their dev set too) have no
    held-out dev: leave ``dev_path`` out, and no dev score is recorded.
    """
    from .model import merge_members

    taggers = [Tagger.load(d) for d in model_dirs]
    merged = merge_members(taggers)
    refit = [bool(t.meta.get("refit")) for t in taggers]
    dev_scores, member_f1 = None, [None] * len(taggers)
    if dev_path is not None:
        if any(refit):
            raise ValueError("refit members were trained on their dev set: a dev score would not be held out; leave out --dev")
        dev_sents = read_conll(dev_path).sentences
        words, gold = [s.words for s in dev_sents], [s.tags for s in dev_sents]
        dev_scores = entity_scores(gold, merged.predict(words))
        member_f1 = [entity_scores(gold, t.predict(words))["micro"]["f1"] for t in taggers]
    members = []
    for d, t, is_refit, f1 in zip(model_dirs, taggers, refit, member_f1):
        hyper = t.meta.get("hyperparameters", {})
        members.append({"dir": str(d), "command": t.meta.get("command"), "seed": hyper.get("seed"),
                        "refit": is_refit, "lr_drops": hyper.get("lr_drops"),
                        "best_epoch": t.meta.get("best_epoch"), "epochs_run": t.meta.get("epochs_run"),
                        "training_minutes": t.meta.get("training_minutes"), "dev_f1": f1})
    first = taggers[0].meta
    meta = {
        **{k: first[k] for k in ("name", "train_file", "train_sha256", "corpus_source", "sentences", "silver", "vectors")
           if k in first},
        "spacy_aner_version": __version__,
        "command": command or " ".join(sys.argv),
        "hyperparameters": {**first.get("hyperparameters", {}), "seed": None, "epochs_max": None, "lr_drops": None,
                            "members": len(taggers)},
        "members": members,
        "training_minutes": round(sum(m["training_minutes"] or 0 for m in members), 1),
        "dev": {"file": str(dev_path), "sha256": sha256_file(dev_path)} if dev_path is not None else None,
        "refit": all(refit),
        "dev_scores": dev_scores,
        "license": first.get("license"),
    }
    output = Path(output)
    merged.save(output, meta)
    histories = []
    for d in model_dirs:
        log = Path(d) / "training.json"
        histories.append(json.loads(log.read_text())["epochs"] if log.is_file() else [])
    (output / "training.json").write_text(json.dumps({"members": histories}, indent=2))
    return meta


def add_vectors(model_dir: Path | str, vectors: Path | str, output: Path | str, *, max_vocab: Optional[int] = None,
                word_vector_bits: Optional[int] = None, command: str = "") -> Dict:
    """Write ``model_dir`` with a row for every key of ``vectors`` it lacks (:func:`~spacy_aner.model.add_word_vectors`).

    Scores recorded in the model's meta (dev, test) were measured without the new rows, so
    they move into ``added_vectors`` and are not reported as the new model's.
    """
    from .embeddings import load_vectors
    from .model import add_word_vectors

    tagger = Tagger.load(model_dir)
    kv = load_vectors(vectors)
    bigger, added = add_word_vectors(tagger, kv, max_vocab=max_vocab, word_vector_bits=word_vector_bits)
    meta = dict(tagger.meta)
    before = {k: meta.pop(k) for k in ("dev_scores", "test_scores") if meta.get(k) is not None}
    meta["dev_scores"] = None
    meta["vectors"] = {**meta.get("vectors", {}), "kept_rows": len(bigger.vocab.words),
                       "rows_with_vectors": (meta.get("vectors") or {}).get("rows_with_vectors", 0) + added}
    meta["hyperparameters"] = {**meta.get("hyperparameters", {}), "word_vector_bits": bigger.config.word_vector_bits}
    hyper = tagger.meta.get("hyperparameters", {})
    # Training words read through back-off may land on a new row: not exactly as trained.
    exact = not (hyper.get("unknown_without_vector") or tagger.meta.get("silver"))
    if not exact:
        logger.warning("%s read some training words through clitic back-off; the added rows change where "
                       "some of them land, so the model is not read exactly as it was trained", model_dir)
    meta["added_vectors"] = {"from_model": str(model_dir), "file": str(vectors), "sha256": sha256_file(vectors),
                             "rows_added": added, "exact": exact, "command": command or " ".join(sys.argv),
                             "spacy_aner_version": __version__,
                             "scores_before": before or None,
                             **({"earlier": tagger.meta["added_vectors"]} if "added_vectors" in tagger.meta else {})}
    output = Path(output)
    bigger.save(output, meta)
    log = Path(model_dir) / "training.json"
    if log.is_file():
        (output / "training.json").write_text(log.read_text(encoding="utf-8"), encoding="utf-8")
    return meta
