"""Training one tagger from a recipe: vocabulary, embedding table, Keras fit with early stopping on dev F1."""
from __future__ import annotations

import time
from dataclasses import replace
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..about import __version__
from ..core.config import META_FILE, TRAINING_LOG_FILE
from ..core.gazetteer import Gazetteer
from ..core.jsonio import loads_json
from ..core.normalize import normalize_word
from ..core.tagger import Tagger
from ..core.tags import LABELS
from ..core.vocab import Vocabulary
from .batches import batches_class, chunk_sentences, dev_f1_callback_class, epoch_log_callback_class, stepped_learning_rate
from .corpus import Sentence, has_entities, read_conll, sha256_file, split_dev
from .evaluation import entity_scores
from .export import save_network
from .network import KerasScorer, build_network, crf_loss, keras_and_tf
from .recipe import Recipe

MODEL_LICENSE = (
    "CC BY-NC-SA 4.0 when trained with vectors from SaudiNewsNet (CC BY-NC-SA 4.0, Alhagri 2015); "
    "training data ANERCorp CAMeL Lab split (Benajiba et al. 2007; Obeid et al. 2020). "
    "The spacy-aner code is MIT."
)


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


def vocabulary_and_vectors(train_sents: Sequence[Sentence], vectors: Optional[str], recipe: Recipe):
    """``(config, kv, vocab, matrix, rows with vectors)`` for ``train_sents``.

    The word size comes from the vectors; without vectors the table is random and learnt.
    """
    if not vectors:
        config = recipe.model_config(trainable_embeddings=True)  # refuses 8-bit vectors: they would be trained
        vocab = Vocabulary.build(select_vocabulary(train_sents, None, recipe.training.max_vocab),
                                 config.max_word_chars, clitic_backoff=config.clitic_backoff)
        return config, None, vocab, None, 0
    from .embeddings import build_embedding_matrix, load_vectors, vectors_by_key

    kv = load_vectors(vectors)
    config = recipe.model_config(word_dim=kv.vector_size)
    vocab = Vocabulary.build(select_vocabulary(train_sents, kv, recipe.training.max_vocab), config.max_word_chars,
                             clitic_backoff=config.clitic_backoff)
    # Seeded alike for every training seed: members then share one frozen table, stored once.
    matrix, hits = build_embedding_matrix(vocab.words, kv, vectors_by_key(kv))
    return config, kv, vocab, matrix, hits


def refit_schedule(model_dir: Path | str) -> Dict:
    """Overrides that turn a recipe into a refit replaying an earlier run that had a dev set.

    The epoch count is that run's best epoch; the learning-rate drops are read off its
    ``training.json``, which logs the rate each epoch trained with, so a drop after epoch
    ``e`` shows as a lower rate at ``e + 1``.
    """
    model_dir = Path(model_dir)
    try:
        meta = loads_json((model_dir / META_FILE).read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise TypeError(f"{META_FILE} is not a JSON object")
        history = loads_json((model_dir / TRAINING_LOG_FILE).read_text(encoding="utf-8"))["epochs"]
        rates = [e["learning_rate"] for e in history]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{model_dir}: not a model trained by `spacy-aner train` ({err!r})") from None
    if meta.get("refit") or not meta.get("best_epoch"):
        raise ValueError(f"{model_dir}: a refit has no dev-chosen schedule; give the run that had a dev set")
    best = int(meta["best_epoch"])
    if len(rates) < best:
        raise ValueError(f"{model_dir}: {TRAINING_LOG_FILE} has {len(rates)} epochs, fewer than the best epoch {best}")
    drops = [e for e in range(1, best) if rates[e] < rates[e - 1] * (1 - 1e-6)]
    return {"paths.dev": None, "training.dev_fraction": 0.0, "training.epochs": best, "training.lr_drops": drops}


def read_data(recipe: Recipe):
    """Training and dev sentences as the recipe says (dev empty for a refit)."""
    train_sents = read_conll(recipe.paths.train).sentences
    if recipe.paths.dev:
        dev_sents = read_conll(recipe.paths.dev).sentences
    elif recipe.refit:
        dev_sents = []
    else:
        train_sents, dev_sents = split_dev(train_sents, recipe.training.dev_fraction)
    if not train_sents or (not dev_sents and not recipe.refit):
        raise ValueError("training needs at least one training and one dev sentence")
    if not has_entities(train_sents):
        raise ValueError(f"{recipe.paths.train}: no entity with a known tag ({', '.join(LABELS)}) to learn from")
    if dev_sents and not has_entities(dev_sents):
        raise ValueError("the dev sentences have no entity: early stopping on dev F1 needs some "
                         "(a larger training.dev_fraction, or --paths.dev FILE)")
    if recipe.training.lr_drops and not recipe.refit:
        raise ValueError("training.lr_drops replays a schedule without a dev set; with one, dev F1 sets the schedule")
    return train_sents, dev_sents


def callbacks_for(recipe: Recipe, tagger: Tagger, dev_sents, log_path: Path, verbose: int):
    """The epoch log plus early stopping and learning-rate decay on dev F1, or the replayed schedule."""
    keras, _ = keras_and_tf()
    t = recipe.training
    if recipe.refit:
        drops = sorted(t.lr_drops or [])
        return [epoch_log_callback_class()(log_path), keras.callbacks.LearningRateScheduler(
            lambda epoch, lr: stepped_learning_rate(epoch, t.learning_rate, t.lr_decay, drops))]
    callbacks = [dev_f1_callback_class()(tagger, dev_sents, log_path, verbose),
                 keras.callbacks.EarlyStopping(monitor="val_f1", mode="max", patience=t.patience,
                                               restore_best_weights=True, verbose=verbose)]
    if t.lr_decay < 1.0:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_f1", mode="max", factor=t.lr_decay, patience=2,
                                                           min_lr=t.learning_rate / 50, verbose=verbose))
    return callbacks


def train(recipe: Recipe, output: Path | str, *, verbose: int = 1, command: str = "") -> Dict:
    """Train a tagger as ``recipe`` says and save it to ``output``; returns the meta record.

    With a dev set (``paths.dev``, or the last ``training.dev_fraction`` of the training
    file) training stops when dev F1 has not improved for ``patience`` epochs, keeping the
    best weights, and the learning rate is multiplied by ``lr_decay`` after two epochs
    without a better dev F1. Without one it is a *refit*: exactly ``epochs`` epochs, the
    rate dropping after each epoch in ``lr_drops`` (see :func:`refit_recipe`).
    """
    keras, _ = keras_and_tf()
    t = recipe.training
    keras.utils.set_random_seed(t.seed)
    output = Path(output)
    train_sents, dev_sents = read_data(recipe)
    config, kv, vocab, matrix, hits = vocabulary_and_vectors(train_sents, recipe.paths.vectors, recipe)
    gazetteer = Gazetteer.read(recipe.paths.gazetteer) if recipe.paths.gazetteer else None
    if gazetteer is not None:
        config = replace(config, gazetteer_labels=gazetteer.labels)
    network = build_network(config, len(vocab.words), len(vocab.chars), matrix)
    network.compile(optimizer=keras.optimizers.Adam(t.learning_rate, clipnorm=5.0), loss=crf_loss(network))
    tagger = Tagger(config, vocab, KerasScorer(network), gazetteer=gazetteer)
    data = batches_class()(chunk_sentences(train_sents, config.window), vocab, config.tags, t.batch_size, t.seed,
                           t.name_shortening, gazetteer, t.gazetteer_dropout)
    # The folder appears with the first epoch's log, so a run that fails before makes none.
    # The log goes into place with the model: an interrupted run over an old model's folder
    # must not leave that model with another run's log (which a refit would replay).
    running_log = output / f".{TRAINING_LOG_FILE}.running"
    callbacks = callbacks_for(recipe, tagger, dev_sents, running_log, verbose)
    start = time.perf_counter()
    network.fit(data, epochs=t.epochs, callbacks=callbacks, verbose=verbose)
    minutes = (time.perf_counter() - start) / 60
    history = callbacks[0].history
    dev_scores = None if recipe.refit else entity_scores([s.tags for s in dev_sents],
                                                         tagger.predict([s.words for s in dev_sents]))
    meta = {
        "name": "aner_lstm",
        "spacy_aner_version": __version__,
        "command": command,
        "config": recipe.to_dict(),
        "train_sha256": sha256_file(recipe.paths.train),
        "dev_sha256": sha256_file(recipe.paths.dev) if recipe.paths.dev else None,
        "vectors": {"sha256": sha256_file(recipe.paths.vectors) if kv is not None else None,
                    "source_keys": len(kv) if kv is not None else 0,
                    "kept_rows": len(vocab.words), "rows_with_vectors": hits},
        "gazetteer": None if gazetteer is None else {"sha256": sha256_file(recipe.paths.gazetteer),
                                                     "names": gazetteer.counts()},
        "sentences": {"train": len(train_sents), "dev": len(dev_sents)},
        "refit": recipe.refit,
        "best_epoch": None if recipe.refit else max(history, key=lambda h: h["dev_f1"])["epoch"],
        "epochs_run": len(history),
        "training_minutes": round(minutes, 1),
        "dev_scores": dev_scores,
        "license": MODEL_LICENSE if kv is not None else "Trained on ANERCorp only; see README for data terms.",
    }
    save_network(output, config, vocab, network, meta, gazetteer)
    running_log.replace(output / TRAINING_LOG_FILE)
    return meta

