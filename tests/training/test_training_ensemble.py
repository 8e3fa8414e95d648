"""spacy_aner.training.ensemble: seed ensembles (merge, provenance) and vector rows added to a trained model.

The members are the session's vector model (a dev run, seed 5) and its refit (seed 6): the
same recipe, data and vectors, so they may be merged.
"""
from __future__ import annotations

import copy
import json
import random
import shutil
from dataclasses import asdict

import numpy as np
import onnx
import pytest
from aner_support import random_words, read_json, scramble_model

from spacy_aner.core.config import LICENSE_FILE, META_FILE, TRAINING_LOG_FILE, VECTOR_SCALE_FILE, ModelConfig, ModelLoadError
from spacy_aner.core.crf import viterbi_decode
from spacy_aner.core.graph import read_weights
from spacy_aner.core.storage import WordVectors
from spacy_aner.core.tagger import Tagger
from spacy_aner.training.embeddings import load_vectors
from spacy_aner.training.ensemble import (
    add_vectors,
    add_word_vectors,
    ensemble,
    member_files,
    merge_members,
    provenance_differences,
)
from spacy_aner.training.export import save_model

OUTPUT_LAYERS = ("scores", "tag_scores")  # scrambled so members disagree and tag; the word table stays shared


def assert_same_weights(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for name in a:
        for x, y in zip(a[name], b[name], strict=True):
            np.testing.assert_array_equal(x, y)


def all_rows(tagger: Tagger) -> np.ndarray:
    return tagger.vectors.as_float32()


@pytest.fixture(scope="module")
def member_dirs(vector_model_dir, refit_run):
    return [vector_model_dir, refit_run.dir]


@pytest.fixture(scope="module")
def scrambled_dirs(member_dirs, tmp_path_factory):
    out = tmp_path_factory.mktemp("members")
    return [scramble_model(d, out / f"m{seed}", seed, OUTPUT_LAYERS) for seed, d in enumerate(member_dirs)]


@pytest.fixture
def members(scrambled_dirs):
    """Each scrambled member's tagger and stored weights (fresh: tests may edit them)."""
    return member_files(scrambled_dirs)


def test_members_of_one_recipe_have_the_same_provenance(member_dirs):
    a, b = (read_json(d / META_FILE) for d in member_dirs)
    assert a["config"]["training"]["seed"] != b["config"]["training"]["seed"]
    assert provenance_differences(a, b) == []


def test_ensemble_decodes_the_averaged_scores_of_its_members(members, scrambled_dirs, tmp_path):
    config, vocab, weights, table = merge_members(members)
    taggers = [t for t, _ in members]
    assert config.members == 2 and vocab is taggers[0].vocab
    np.testing.assert_array_equal(table, all_rows(taggers[0]))
    save_model(tmp_path / "ens", config, vocab, weights, table, {"name": "aner_lstm"})
    merged = Tagger.load(tmp_path / "ens")
    assert merged.config.members == 2 and merged.vocab.words == vocab.words
    seqs = [random_words(random.Random(i), n) for i, n in enumerate([1, 5, 12, 31])]
    member_scores = [t.unary_scores(seqs, 32) for t in taggers]
    mean = np.mean(member_scores, 0)
    scores = merged.unary_scores(seqs, 32)
    for k, s in enumerate(seqs):  # padding positions are never read
        np.testing.assert_allclose(scores[k, : len(s)], mean[k, : len(s)], rtol=1e-4, atol=1e-4)
    params = [t.scorer.crf() for t in taggers]
    crf = [np.mean([p[j] for p in params], 0) for j in range(3)]
    for mine, want in zip(merged.scorer.crf(), crf):
        np.testing.assert_allclose(mine, want, rtol=1e-6, atol=1e-6)
    tags = merged.config.tags
    expected = [[tags[i] for i in viterbi_decode(scores[k, : len(s)], *crf)] for k, s in enumerate(seqs)]
    predicted = merged.predict(seqs)
    assert predicted == expected
    assert predicted != taggers[0].predict(seqs) or predicted != taggers[1].predict(seqs)
    assert any(t != "O" for p in predicted for t in p)
    # Each member's layers are stored under its prefix; the shared word vectors once, as the table file.
    stored = read_weights(tmp_path / "ens")
    assert_same_weights(stored, {**read_weights(scrambled_dirs[0]),
                                 **{"m1_" + k: v for k, v in read_weights(scrambled_dirs[1]).items()}})
    assert not [name for name in stored if "word_embedding" in name]
    np.testing.assert_array_equal(merged.vectors.table, taggers[0].vectors.table)


def test_the_first_members_of_an_ensemble_compute_as_those_members_alone(members, tmp_path):
    """``members=1`` runs a graph of the first member, made at load from the ensemble's own
    graph: its scores, CRF and tags are those of the member saved as a model of its own."""
    save_model(tmp_path / "ens", *merge_members(members), {"name": "aner_lstm"})
    first = members[0][0]
    alone = Tagger.load(tmp_path / "ens", members=1)
    seqs = [random_words(random.Random(i), n) for i, n in enumerate([1, 5, 12, 31, 40])]
    np.testing.assert_array_equal(alone.unary_scores(seqs, 40), first.unary_scores(seqs, 40))
    for mine, want in zip(alone.scorer.crf(), first.scorer.crf()):
        np.testing.assert_array_equal(mine, want)
    assert alone.tag(seqs) == first.tag(seqs)
    assert alone.scorer.cache.width * 2 == Tagger.load(tmp_path / "ens").scorer.cache.width
    assert alone.scorer.members == 1 and alone.config.members == 2  # the model's own configuration is kept
    # All members is the file's own graph; a reduced tagger saves the networks it computes with.
    whole = Tagger.load(tmp_path / "ens", members=2)
    assert whole.scorer.graph == (tmp_path / "ens" / "tagger.onnx").read_bytes() and whole.scorer.members == 2
    alone.write(tmp_path / "again")
    again = Tagger.load(tmp_path / "again")
    assert again.config.members == 1 and again.scorer.graph == alone.scorer.graph
    np.testing.assert_array_equal(again.unary_scores(seqs, 40), first.unary_scores(seqs, 40))
    with pytest.raises(ValueError, match=r"members=3, but the model in .* has 2 networks"):
        Tagger.load(tmp_path / "ens", members=3)
    # A graph whose weights are not named as the export names them cannot be cut: an error, not a KeyError.
    graph = onnx.load(str(tmp_path / "ens" / "tagger.onnx"))
    next(i for i in graph.graph.initializer if i.name == "char_embedding/0").name = "renamed/0"
    renamed = tmp_path / "renamed"
    shutil.copytree(tmp_path / "ens", renamed)
    onnx.save(graph, str(renamed / "tagger.onnx"))
    with pytest.raises(ModelLoadError, match="cannot take its first 1 members"):
        Tagger.load(renamed, members=1)
    config = read_json(tmp_path / "ens" / "config.json")
    (tmp_path / "ens" / "config.json").write_text(json.dumps({**config, "lstm_units": 7}), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="made for another model than config.json"):
        Tagger.load(tmp_path / "ens", members=1)  # the ensemble's graph is checked before it is cut


def test_an_ensemble_of_8_bit_members_keeps_their_table(member_dirs, tmp_path):
    for k, d in enumerate(member_dirs):
        tagger = Tagger.load(d)
        vocab, table, added = add_word_vectors(tagger, load_vectors(read_json(d / META_FILE)["config"]["paths"]["vectors"]),
                                               max_vocab=len(tagger.vocab.words))
        assert added == 0 and vocab.words == tagger.vocab.words
        config = ModelConfig(**{**asdict(tagger.config), "word_vector_bits": 8})
        save_model(tmp_path / f"m{k}", config, vocab, read_weights(d), table, tagger.meta)
    eight = member_files([tmp_path / "m0", tmp_path / "m1"])
    first, second = (t for t, _ in eight)
    assert first.config.word_vector_bits == 8 and first.vectors.table.dtype == np.int8
    np.testing.assert_array_equal(second.vectors.table, first.vectors.table)
    np.testing.assert_array_equal(second.vectors.scale, first.vectors.scale)
    config, vocab, weights, table = merge_members(eight)
    assert config.word_vector_bits == 8
    save_model(tmp_path / "ens", config, vocab, weights, table, {})
    ens = Tagger.load(tmp_path / "ens")
    assert ens.config.word_vector_bits == 8 and ens.config.members == 2
    np.testing.assert_array_equal(ens.vectors.table, first.vectors.table)  # re-quantised to the same integers
    np.testing.assert_array_equal(np.load(tmp_path / "ens" / VECTOR_SCALE_FILE), first.vectors.scale)
    assert_same_weights(read_weights(tmp_path / "ens"), weights)


def _with_meta(member, edit):
    tagger, weights = member
    tagger.meta = copy.deepcopy(tagger.meta)
    edit(tagger.meta)
    return tagger, weights


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(train_sha256="0" * 64), "model 2 was trained with other training data than model 1"),
    (lambda m: m["vectors"].update(sha256="0" * 64), "other vectors"),
    (lambda m: m["config"]["training"].update(max_vocab=7), "other recipe"),
    (lambda m: m["config"]["training"].update(name_shortening=0.5), "other recipe"),
    (lambda m: m["config"]["model"].update(dropout=0.2), "other recipe"),
])
def test_ensemble_refuses_members_of_other_provenance(member_dirs, edit, message):
    a, b = member_files(member_dirs)
    with pytest.raises(ValueError, match=message):
        merge_members([a, _with_meta(b, edit)])


def test_provenance_ignores_paths_member_settings_and_unknowns():
    meta = {"train_sha256": "a", "vectors": {"sha256": "v"},
            "config": {"paths": {"train": "x"}, "model": {"lstm_units": 8},
                       "training": {"seed": 1, "epochs": 9, "lr_drops": None, "max_vocab": 5}}}
    other = copy.deepcopy(meta)
    other["config"]["paths"]["train"] = "elsewhere/x"
    other["config"]["training"].update(seed=2, epochs=4, lr_drops=[2])
    assert provenance_differences(meta, other) == []
    assert provenance_differences(meta, {}) == []  # nothing recorded: nothing to compare
    other["config"]["training"]["max_vocab"] = 6
    assert [what for what, _, _ in provenance_differences(meta, other)] == ["recipe"]


def test_ensemble_refuses_members_that_cannot_share_a_table(member_dirs, tiny_model_dir, tmp_path):
    a, b = member_files(member_dirs)
    with pytest.raises(ValueError, match="at least two"):
        merge_members([a])
    no_meta = lambda m: _with_meta(m, lambda meta: meta.clear())  # noqa: E731  (skip provenance, reach the checks)
    tiny = lambda: member_files([tiny_model_dir])[0]  # noqa: E731
    with pytest.raises(ValueError, match="model 2 has a different configuration from model 1"):
        merge_members([no_meta(member_files(member_dirs[:1])[0]), no_meta(tiny())])
    with pytest.raises(ValueError, match="frozen word vectors"):
        merge_members([no_meta(tiny()), no_meta(tiny())])
    save_model(tmp_path / "ens", *merge_members([a, b]), {})
    with pytest.raises(ValueError, match="already an ensemble"):
        merge_members([member_files([tmp_path / "ens"])[0], a])
    c = member_files(member_dirs[1:])[0]
    c[0].vocab.words = list(c[0].vocab.words[:-1]) + ["كلمة"]
    with pytest.raises(ValueError, match="model 2 has a different vocabulary"):
        merge_members([a, c])
    d = member_files(member_dirs[1:])[0]
    d[0].vectors = WordVectors(all_rows(d[0]) + 1.0)
    with pytest.raises(ValueError, match="model 2 has different word vectors"):
        merge_members([a, d])


def test_ensemble_writes_members_and_their_curves(member_dirs, tmp_path):
    meta = ensemble(member_dirs, tmp_path / "ens", command="pytest ensemble")
    first = read_json(member_dirs[0] / META_FILE)
    assert meta == read_json(tmp_path / "ens" / META_FILE)
    assert meta["command"] == "pytest ensemble" and meta["train_sha256"] == first["train_sha256"]
    assert meta["dev_scores"] is None and meta["dev_sha256"] is None and meta["refit"] is False  # one dev-run member
    assert [m["refit"] for m in meta["members"]] == [False, True]
    assert [m["config"]["training"]["seed"] for m in meta["members"]] == [5, 6]
    assert [m["dir"] for m in meta["members"]] == [str(d) for d in member_dirs]
    assert all(m["dev_f1"] is None for m in meta["members"])
    curves = read_json(tmp_path / "ens" / TRAINING_LOG_FILE)["members"]
    assert [len(c) for c in curves] == [m["epochs_run"] for m in meta["members"]]
    assert Tagger.load(tmp_path / "ens").config.members == 2


def test_an_ensemble_written_into_an_old_model_folder_drops_its_license(member_dirs, tmp_path):
    """The license file of the model that was there is not the new model's (``package`` reads it)."""
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / LICENSE_FILE).write_text("CC BY-NC-SA 4.0, for another model")
    ensemble(member_dirs, tmp_path / "old")
    assert not (tmp_path / "old" / LICENSE_FILE).exists()


def test_ensemble_scores_dev_only_when_no_member_saw_it(member_dirs, tiny_dev_file, tmp_path):
    """(Dev scoring itself: tests/cli/test_cli_train.py, an ensemble of a model with itself.)"""
    with pytest.raises(ValueError, match="refit members have no held-out dev set"):
        ensemble(member_dirs, tmp_path / "ens", dev_path=tiny_dev_file)
    assert not (tmp_path / "ens").exists()


# --------------------------------------------------------------------------- added vector rows


@pytest.fixture(scope="module")
def vectors(tiny_vectors_kv):
    return load_vectors(tiny_vectors_kv)


def ids_of(tagger, words) -> np.ndarray:
    """Row ids of ``words`` in ``tagger``'s vocabulary, the reserved rows included."""
    index = {w: i for i, w in enumerate(tagger.vocab.words)}
    return np.array([index[w] for w in words])


def test_added_rows_leave_every_trained_weight_alone(vector_model_dir, vectors, tmp_path):
    tagger = Tagger.load(vector_model_dir)
    assert "دمشق" not in tagger.vocab.words  # trained with max_vocab 1: training words only
    vocab, table, added = add_word_vectors(tagger, vectors)
    assert added == 1 and vocab.words == list(tagger.vocab.words) + ["دمشق"] and vocab.chars == tagger.vocab.chars
    old = all_rows(tagger)
    np.testing.assert_array_equal(table[: len(old)], old)
    np.testing.assert_array_equal(table[-1], vectors["دمشق"])
    save_model(tmp_path / "bigger", tagger.config, vocab, read_weights(vector_model_dir), table, tagger.meta)
    bigger = Tagger.load(tmp_path / "bigger")  # stored words are sorted, rows moved with them
    assert bigger.meta == tagger.meta and sorted(bigger.vocab.words) == sorted(vocab.words)
    assert_same_weights(read_weights(tmp_path / "bigger"), read_weights(vector_model_dir))
    np.testing.assert_array_equal(bigger.vectors.table[ids_of(bigger, tagger.vocab.words)], tagger.vectors.table)
    np.testing.assert_allclose(bigger.vectors.rows(ids_of(bigger, ["دمشق"]))[0], vectors["دمشق"], atol=2e-3)
    # Sentences without the new word are scored as before; a proclitic form of it now backs off to its row.
    seqs = [random_words(random.Random(1), 9)]
    np.testing.assert_allclose(bigger.unary_scores(seqs, 16), tagger.unary_scores(seqs, 16), rtol=1e-6, atol=1e-6)
    joined = [["ودمشق"]]
    assert bigger.vocab.encode(joined, 1)[0][0, 0] == bigger.vocab.word_index.get("دمشق")
    assert tagger.vocab.encode(joined, 1)[0][0, 0] == 1  # unknown before
    assert add_word_vectors(tagger, vectors, max_vocab=len(tagger.vocab.words))[2] == 0


def test_add_word_vectors_refuses_vectors_the_model_was_not_trained_with(vector_model_dir, tiny_model_dir, vectors):
    from gensim.models import KeyedVectors

    tagger = Tagger.load(vector_model_dir)
    other = KeyedVectors(vector_size=8)
    other.add_vectors(["محمد", "في"], np.ones((2, 8), dtype="float32"))
    with pytest.raises(ValueError, match="2 of the model's 2 rows with a vector in this file differ"):
        add_word_vectors(tagger, other)
    unrelated = KeyedVectors(vector_size=8)
    unrelated.add_vectors(["كلمة"], np.ones((1, 8), dtype="float32"))
    with pytest.raises(ValueError, match="no word of the model has a vector in this file"):
        add_word_vectors(tagger, unrelated)
    narrow = KeyedVectors(vector_size=4)
    narrow.add_vectors(["محمد"], np.ones((1, 4), dtype="float32"))
    with pytest.raises(ValueError, match="the vectors have 4 dimensions, the model 8"):
        add_word_vectors(tagger, narrow)
    with pytest.raises(ValueError, match="fine-tuned its word vectors"):
        add_word_vectors(Tagger.load(tiny_model_dir), vectors)


def test_add_vectors_writes_a_model_whose_old_scores_move_aside(vector_model_dir, tiny_vectors_kv, tmp_path):
    meta = add_vectors(vector_model_dir, tiny_vectors_kv, tmp_path / "out", word_vector_bits=8, command="pytest")
    before = read_json(vector_model_dir / META_FILE)
    assert meta == read_json(tmp_path / "out" / META_FILE)
    assert meta["dev_scores"] is None and meta["added_vectors"]["scores_before"] == {"dev_scores": before["dev_scores"]}
    assert meta["added_vectors"]["rows_added"] == 1 and meta["added_vectors"]["word_vector_bits"] == 8
    assert meta["added_vectors"]["from_model"] == str(vector_model_dir) and meta["added_vectors"]["command"] == "pytest"
    assert meta["vectors"]["kept_rows"] == before["vectors"]["kept_rows"] + 1
    assert meta["vectors"]["rows_with_vectors"] == before["vectors"]["rows_with_vectors"] + 1
    assert (tmp_path / "out" / TRAINING_LOG_FILE).read_text() == (vector_model_dir / TRAINING_LOG_FILE).read_text()
    loaded, source = Tagger.load(tmp_path / "out"), Tagger.load(vector_model_dir)
    assert loaded.config.word_vector_bits == 8 and loaded.vocab.words[2:] == sorted(source.vocab.words[2:] + ["دمشق"])
    assert_same_weights(read_weights(tmp_path / "out"), read_weights(vector_model_dir))
    assert loaded.vectors.table.dtype == np.int8 and len(loaded.vectors) == len(source.vectors) + 1
    old = all_rows(source)
    step = np.abs(old).max(axis=1, keepdims=True) / 254 + 1e-3  # half an 8-bit step
    assert (np.abs(loaded.vectors.rows(ids_of(loaded, source.vocab.words)) - old) <= step).all()


@pytest.mark.slow
def test_added_rows_equal_training_with_them(tiny_conll_file, tiny_vectors_kv, tmp_path):
    """Rows of non-training words never reach the gradient: adding them later = training with them.

    (Here the vector file brings no new characters; a file that does would give the model
    trained with every row more character ids.) Two trainings of their own, hence slow.
    """
    from aner_models import tiny_recipe

    from spacy_aner.training.recipe import load_recipe
    from spacy_aner.training.trainer import train

    for name, max_vocab in (("few", 1), ("all", 10_000)):  # 1: the training keys only
        recipe = load_recipe(tiny_recipe(tiny_conll_file), {
            "paths.vectors": str(tiny_vectors_kv), "training.dev_fraction": 0.0, "training.epochs": 2,
            "training.lr_drops": [], "training.seed": 3, "training.max_vocab": max_vocab})
        train(recipe, tmp_path / name, verbose=0)
    few, full = Tagger.load(tmp_path / "few"), Tagger.load(tmp_path / "all")
    extra = [w for w in full.vocab.words if w not in set(few.vocab.words)]
    assert extra == ["دمشق"]  # the vector file's word that the training file lacks
    few_weights, full_weights = read_weights(tmp_path / "few"), read_weights(tmp_path / "all")
    assert set(few_weights) == set(full_weights)
    for name in few_weights:
        for x, y in zip(few_weights[name], full_weights[name], strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-6)  # float16 storage of nearly equal arrays
    meta = add_vectors(tmp_path / "few", tiny_vectors_kv, tmp_path / "added", command="test")
    added = Tagger.load(tmp_path / "added")
    assert meta["added_vectors"]["rows_added"] == 1 and added.vocab.words == full.vocab.words
    sentence = [["محمد", "في", "دمشق", "ودمشق", "باريس"]]
    np.testing.assert_allclose(added.unary_scores(sentence, 8), full.unary_scores(sentence, 8), rtol=1e-4, atol=1e-4)
