"""spacy_aner.training.trainer: vocabulary, vectors, data, the refit schedule, and what a trained model records.

The trained models are the session's (``tiny_model_dir``, ``vector_run``, ``refit_run``):
nothing here trains a model of its own.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from aner_support import TINY_MODEL, VECTOR_WORDS, read_json, write_conll

from spacy_aner.core.config import META_FILE, TRAINING_LOG_FILE
from spacy_aner.core.normalize import normalize_word
from spacy_aner.core.tagger import Tagger
from spacy_aner.training.corpus import Sentence, read_conll, sha256_file
from spacy_aner.training.recipe import load_recipe
from spacy_aner.training.corpus import CorpusWarning
from spacy_aner.training.trainer import read_data, refit_schedule, select_vocabulary, vocabulary_and_vectors


def test_tiny_model_meta_and_training_log(tiny_model_dir, tiny_conll_file):
    meta = read_json(tiny_model_dir / META_FILE)
    assert meta["name"] == "aner_lstm" and meta["command"] == "pytest: tiny model"
    assert meta["config"]["model"] == TINY_MODEL and meta["config"]["training"]["seed"] == 1
    assert meta["train_sha256"] == sha256_file(tiny_conll_file) and meta["dev_sha256"] is None
    assert meta["sentences"] == {"train": 24, "dev": 8}  # the last quarter of 32 is dev
    assert meta["vectors"] == {"sha256": None, "source_keys": 0, "kept_rows": meta["vectors"]["kept_rows"],
                               "rows_with_vectors": 0}
    assert meta["refit"] is False and meta["epochs_run"] == 3 and meta["best_epoch"] in (1, 2, 3)
    assert {"micro", "macro", "per_type"} <= set(meta["dev_scores"]) and 0 <= meta["dev_scores"]["micro"]["f1"] <= 100
    assert "ANERCorp" in meta["license"]
    log = read_json(tiny_model_dir / TRAINING_LOG_FILE)["epochs"]
    assert [e["epoch"] for e in log] == [1, 2, 3]
    assert all(math.isfinite(e["loss"]) and 0 <= e["dev_f1"] <= 100 and e["learning_rate"] > 0 for e in log)
    assert meta["best_epoch"] == max(log, key=lambda e: e["dev_f1"])["epoch"]
    tagger = Tagger.load(tiny_model_dir)
    assert tagger.config.trainable_embeddings and tagger.config.word_dim == 100  # no vectors: learnt
    assert tagger.meta == meta


def test_vector_run_meta(vector_run, tiny_conll_file, tiny_dev_file, tiny_vectors_kv):
    meta = read_json(vector_run.dir / META_FILE)
    assert meta["command"].startswith("spacy-aner train ")
    assert meta["config"]["paths"] == {"train": str(tiny_conll_file), "dev": str(tiny_dev_file),
                                       "vectors": str(tiny_vectors_kv), "gazetteer": None}
    assert meta["dev_sha256"] == sha256_file(tiny_dev_file) and meta["sentences"] == {"train": 32, "dev": 8}
    assert meta["vectors"]["sha256"] == sha256_file(tiny_vectors_kv) and meta["vectors"]["source_keys"] == 10
    assert "CC BY-NC-SA 4.0" in meta["license"]
    tagger = Tagger.load(vector_run.dir)
    assert tagger.config.word_dim == 8 and not tagger.config.trainable_embeddings
    # max_vocab 1: the training words only (دمشق, a vector word not in the training data, is left out)
    train_keys = {normalize_word(w) for s in read_conll(tiny_conll_file).sentences for w in s.words}
    assert set(tagger.vocab.words[2:]) == train_keys and "دمشق" not in tagger.vocab.words
    assert meta["vectors"]["kept_rows"] == len(tagger.vocab.words)
    with_vectors = {normalize_word(w) for w in VECTOR_WORDS} & train_keys
    assert meta["vectors"]["rows_with_vectors"] == len(with_vectors) == 9
    # The vectors are the (frozen) rows of their words, stored in float16.
    from gensim.models import KeyedVectors

    kv = KeyedVectors.load(str(tiny_vectors_kv))
    assert tagger.vectors.table.dtype == np.float16
    table = tagger.vectors.as_float32()
    for word in VECTOR_WORDS[:-1]:
        np.testing.assert_allclose(table[tagger.vocab.word_index.get(normalize_word(word))], kv[word], atol=2e-3)


def test_refit_run_replays_the_dev_runs_schedule(vector_run, refit_run):
    dev_meta, meta = read_json(vector_run.dir / META_FILE), read_json(refit_run.dir / META_FILE)
    assert meta["refit"] is True and meta["dev_scores"] is None and meta["best_epoch"] is None
    assert meta["dev_sha256"] is None and meta["sentences"] == {"train": 32, "dev": 0}
    assert meta["epochs_run"] == dev_meta["best_epoch"] == meta["config"]["training"]["epochs"]
    assert meta["config"]["paths"]["dev"] is None and meta["config"]["training"]["dev_fraction"] == 0.0
    assert meta["config"]["training"]["seed"] == 6 and isinstance(meta["config"]["training"]["lr_drops"], list)
    assert meta["config"]["model"] == dev_meta["config"]["model"]
    log = read_json(refit_run.dir / TRAINING_LOG_FILE)["epochs"]
    assert len(log) == meta["epochs_run"] and "dev_f1" not in log[0]
    assert log[0]["learning_rate"] == pytest.approx(meta["config"]["training"]["learning_rate"])


def _dev_run_record(folder: Path, rates, best_epoch, **meta) -> Path:
    """The meta.json and training.json of a run with a dev set (the files refit_schedule reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / META_FILE).write_text(json.dumps({"refit": False, "best_epoch": best_epoch, **meta}))
    (folder / TRAINING_LOG_FILE).write_text(json.dumps({"epochs": [
        {"epoch": i + 1, "dev_f1": 50.0, **({"learning_rate": r} if r is not None else {})}
        for i, r in enumerate(rates)]}))
    return folder


def test_refit_schedule_reads_the_drops_before_the_best_epoch(tmp_path):
    run = _dev_run_record(tmp_path / "run", [3e-3, 3e-3, 3e-3, 1.5e-3, 1.5e-3, 7.5e-4, 7.5e-4, 3.75e-4], best_epoch=7)
    assert refit_schedule(run) == {"paths.dev": None, "training.dev_fraction": 0.0, "training.epochs": 7,
                                   "training.lr_drops": [3, 5]}
    # A drop after the best epoch is not part of the refit's epochs.
    assert refit_schedule(_dev_run_record(tmp_path / "early", [3e-3, 3e-3, 1.5e-3], best_epoch=2))[
        "training.lr_drops"] == []
    with pytest.raises(ValueError, match="a refit has no dev-chosen schedule"):
        refit_schedule(_dev_run_record(tmp_path / "refit", [3e-3], best_epoch=None, refit=True))
    with pytest.raises(ValueError, match="fewer than the best epoch"):
        refit_schedule(_dev_run_record(tmp_path / "short", [3e-3, 3e-3], best_epoch=5))
    with pytest.raises(ValueError, match="not a model trained by `spacy-aner train`"):
        refit_schedule(_dev_run_record(tmp_path / "old", [None, None], best_epoch=1))  # no learning rates logged
    with pytest.raises(ValueError, match="not a model trained"):
        refit_schedule(tmp_path / "nothing")
    listed = _dev_run_record(tmp_path / "listed", [3e-3], best_epoch=1)
    (listed / META_FILE).write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a model trained .*not a JSON object"):
        refit_schedule(listed)


def test_refit_schedule_of_a_real_run(vector_run):
    meta = read_json(vector_run.dir / META_FILE)
    schedule = refit_schedule(vector_run.dir)
    assert schedule["training.epochs"] == meta["best_epoch"] and schedule["paths.dev"] is None
    assert all(1 <= e < meta["best_epoch"] for e in schedule["training.lr_drops"])


class FakeVectors:
    """What select_vocabulary reads of gensim KeyedVectors: keys, most frequent first."""

    def __init__(self, keys):
        self.index_to_key = keys


def test_select_vocabulary_training_keys_first_then_vector_keys():
    train = [Sentence(["في", "القاهرة", "في", "مُحَمَّد"], ["O"] * 4)]
    kv = FakeVectors(["في", "دمشق", "أحمد", "", "\u064b", "القاهرة", "بيروت"])
    assert select_vocabulary(train, None, 1) == ["في", "القاهره", "محمد"]  # every training key, by frequency
    assert select_vocabulary(train, kv, 5) == ["في", "القاهره", "محمد", "دمشق", "احمد"]
    assert select_vocabulary(train, kv, 100) == ["في", "القاهره", "محمد", "دمشق", "احمد", "بيروت"]


def test_vocabulary_and_vectors_without_vectors_learns_the_table(tiny_conll_file):
    recipe = load_recipe({"paths": {"train": str(tiny_conll_file)}, "model": TINY_MODEL})
    sents = read_conll(tiny_conll_file).sentences
    config, kv, vocab, matrix, hits = vocabulary_and_vectors(sents, None, recipe)
    assert config.trainable_embeddings and kv is None and matrix is None and hits == 0
    assert vocab.clitic_backoff == config.clitic_backoff is True and config.char_kernels == [2, 3]
    with pytest.raises(ValueError, match="word_vector_bits applies to frozen"):
        vocabulary_and_vectors(sents, None, load_recipe({}, {"model.word_vector_bits": 8}))


def test_vocabulary_and_vectors_with_vectors(tiny_conll_file, tiny_vectors_kv):
    recipe = load_recipe({"model": TINY_MODEL})
    sents = read_conll(tiny_conll_file).sentences
    config, kv, vocab, matrix, hits = vocabulary_and_vectors(sents, str(tiny_vectors_kv), recipe)
    assert config.word_dim == kv.vector_size == 8 and not config.trainable_embeddings
    assert "دمشق" in vocab.words  # a vector word absent from the training data is kept (max_vocab 40,000)
    assert matrix.shape == (len(vocab.words), 8) and hits == 10 and not matrix[0].any()
    np.testing.assert_array_equal(matrix[vocab.word_index["القاهره"]], kv["القاهرة"])


def test_read_data_splits_or_reads_dev_as_the_recipe_says(tiny_conll_file, tiny_dev_file, tmp_path):
    def recipe(**overrides):
        return load_recipe({"paths": {"train": str(tiny_conll_file)}}, overrides)

    train, dev = read_data(recipe(**{"training.dev_fraction": 0.25}))
    assert (len(train), len(dev)) == (24, 8)
    train, dev = read_data(recipe(**{"paths.dev": str(tiny_dev_file)}))
    assert (len(train), len(dev)) == (32, 8)
    train, dev = read_data(recipe(**{"training.dev_fraction": 0.0}))
    assert (len(train), dev) == (32, [])  # a refit
    with pytest.raises(ValueError, match="lr_drops replays a schedule without a dev set"):
        read_data(recipe(**{"training.lr_drops": [1]}))
    one = write_conll(tmp_path / "one.conll", [("محمد", "B-PERS")])
    with pytest.raises(ValueError, match="a dev fraction of 0.2 leaves no dev sentences of 1"):
        read_data(load_recipe({"paths": {"train": str(one)}}, {"training.dev_fraction": 0.2}))
    with pytest.raises(FileNotFoundError):
        read_data(load_recipe({"paths": {"train": str(tmp_path / "none.conll")}}))


def test_read_data_refuses_sentences_without_entities(tiny_conll_file, tmp_path):
    plain = write_conll(tmp_path / "plain.conll", [("محمد في الرباط", "O O O")] * 4)
    with pytest.raises(ValueError, match="the dev sentences have no entity"):
        read_data(load_recipe({"paths": {"train": str(tiny_conll_file), "dev": str(plain)}}))
    unknown = write_conll(tmp_path / "unknown.conll", [("محمد في الرباط", "B-FOO O B-BAR")] * 4)
    with pytest.raises(ValueError, match=r"unknown\.conll: no entity with a known tag \(PERS, LOC, ORG, MISC\)"):
        with pytest.warns(CorpusWarning, match="unknown tag 'B-FOO'"):  # read as O
            read_data(load_recipe({"paths": {"train": str(unknown)}}, {"training.dev_fraction": 0.0}))


def test_train_refuses_empty_dev_before_building_anything(tmp_path):
    from spacy_aner.training.trainer import train

    one = write_conll(tmp_path / "one.conll", [("محمد", "B-PERS")])
    with pytest.raises(ValueError, match="dev"):
        train(load_recipe({"paths": {"train": str(one)}}), tmp_path / "model", verbose=0)
    assert not (tmp_path / "model").exists()  # not even an empty folder


def test_an_interrupted_run_leaves_an_old_models_training_log_as_it_was(tiny_model_dir, model_copy, monkeypatch):
    """A refit replays the schedule training.json logs: another run's log would mislead it."""
    import spacy_aner.training.trainer as trainer

    old = model_copy(tiny_model_dir)
    before = (old / TRAINING_LOG_FILE).read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "save_network", interrupted)
    recipe = load_recipe(read_json(tiny_model_dir / META_FILE)["config"], {"training.epochs": 1})
    with pytest.raises(KeyboardInterrupt):
        trainer.train(recipe, old, verbose=0)
    assert (old / TRAINING_LOG_FILE).read_bytes() == before
    assert read_json(old / f".{TRAINING_LOG_FILE}.running")["epochs"][0]["epoch"] == 1
