"""spacy_aner.training.ensemble: seed ensembles (merge, provenance) and vector rows added to a trained model.

The members are the session's vector model (a dev run, seed 5) and its refit (seed 6): the
same recipe, data and vectors, so they may be merged.
"""
from __future__ import annotations

import copy
import random

import numpy as np
import pytest
from aner_support import random_words, read_json, scramble_output

from spacy_aner.core.config import META_FILE, TRAINING_LOG_FILE
from spacy_aner.core.crf import viterbi_decode
from spacy_aner.core.tagger import Tagger
from spacy_aner.training.embeddings import load_vectors
from spacy_aner.training.ensemble import (
    add_vectors,
    add_word_vectors,
    ensemble,
    merge_members,
    provenance_differences,
)

OUTPUT_LAYERS = ("scores", "tag_scores")  # scrambled so members disagree and tag; the word table stays shared


@pytest.fixture(scope="module")
def member_dirs(vector_model_dir, refit_run):
    return [vector_model_dir, refit_run.dir]


@pytest.fixture(scope="module")
def members(member_dirs):
    return [scramble_output(Tagger.load(d), seed, OUTPUT_LAYERS) for seed, d in enumerate(member_dirs)]


def test_members_of_one_recipe_have_the_same_provenance(member_dirs):
    a, b = (read_json(d / META_FILE) for d in member_dirs)
    assert a["config"]["training"]["seed"] != b["config"]["training"]["seed"]
    assert provenance_differences(a, b) == []


def test_ensemble_decodes_the_averaged_scores_of_its_members(members, tmp_path):
    merged = merge_members(members)
    assert merged.config.members == 2 and merged.vocab is members[0].vocab
    seqs = [random_words(random.Random(i), n) for i, n in enumerate([1, 5, 12, 31])]
    words, chars = merged.vocab.encode(seqs, 32)
    x = {"words": words, "chars": chars}
    member_scores = [m.network(x, training=False).numpy() for m in members]
    mean = np.mean(member_scores, 0)
    np.testing.assert_allclose(merged.network(x, training=False).numpy(), mean, rtol=1e-5, atol=1e-5)
    fast = merged.unary_scores(seqs, 32)  # spacy_aner.core.scores over both members
    for k, s in enumerate(seqs):
        np.testing.assert_allclose(fast[k, : len(s)], mean[k, : len(s)], rtol=1e-4, atol=1e-4)
    params = [m.crf_params() for m in members]
    crf = [np.mean([p[j] for p in params], 0) for j in range(3)]
    for mine, want in zip(merged.crf_params(), crf):
        np.testing.assert_allclose(mine, want, rtol=1e-6)
    tags = merged.config.tags
    expected = [[tags[i] for i in viterbi_decode(mean[k, : len(s)], *crf)] for k, s in enumerate(seqs)]
    predicted = merged.predict(seqs)
    assert predicted == expected
    assert predicted != members[0].predict(seqs) or predicted != members[1].predict(seqs)
    assert any(t != "O" for p in predicted for t in p)
    # Saved and loaded like any model; the shared word vectors are stored once.
    merged.save(tmp_path / "ens", meta={"name": "aner_lstm"})
    loaded = Tagger.load(tmp_path / "ens")
    assert loaded.config.members == 2
    for a, b in zip(loaded.network.get_weights(), merged.network.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert sum("word_embedding" in w.path for w in loaded.network.weights) == 1


def test_an_ensemble_of_8_bit_members_keeps_their_table(member_dirs, tmp_path):
    eight = []
    for k, d in enumerate(member_dirs):
        tagger = Tagger.load(d)
        bigger, added = add_word_vectors(tagger, load_vectors(read_json(d / META_FILE)["config"]["paths"]["vectors"]),
                                         max_vocab=len(tagger.vocab.words), word_vector_bits=8)
        assert added == 0 and bigger.config.word_vector_bits == 8
        bigger.save(tmp_path / f"m{k}")
        eight.append(Tagger.load(tmp_path / f"m{k}"))
    table = eight[0].network.get_layer("word_embedding").get_weights()[0]
    np.testing.assert_array_equal(eight[1].network.get_layer("word_embedding").get_weights()[0], table)
    merged = merge_members(eight)
    merged.save(tmp_path / "ens")
    ens = Tagger.load(tmp_path / "ens")
    assert ens.config.word_vector_bits == 8 and ens.config.members == 2
    np.testing.assert_array_equal(ens.network.get_layer("word_embedding").get_weights()[0], table)
    for a, b in zip(ens.network.get_weights(), merged.network.get_weights()):
        np.testing.assert_array_equal(a, b)


def _with_meta(tagger: Tagger, edit) -> Tagger:
    tagger.meta = copy.deepcopy(tagger.meta)
    edit(tagger.meta)
    return tagger


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(train_sha256="0" * 64), "model 2 was trained with other training data than model 1"),
    (lambda m: m["vectors"].update(sha256="0" * 64), "other vectors"),
    (lambda m: m["config"]["training"].update(max_vocab=7), "other recipe"),
    (lambda m: m["config"]["training"].update(name_shortening=0.5), "other recipe"),
    (lambda m: m["config"]["model"].update(dropout=0.2), "other recipe"),
])
def test_ensemble_refuses_members_of_other_provenance(member_dirs, edit, message):
    a = Tagger.load(member_dirs[0])
    with pytest.raises(ValueError, match=message):
        merge_members([a, _with_meta(Tagger.load(member_dirs[1]), edit)])


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


def test_ensemble_refuses_members_that_cannot_share_a_table(member_dirs, tiny_model_dir):
    a = Tagger.load(member_dirs[0])
    with pytest.raises(ValueError, match="at least two"):
        merge_members([a])
    no_meta = lambda t: _with_meta(t, lambda m: m.clear())  # noqa: E731  (skip provenance, reach the checks)
    with pytest.raises(ValueError, match="model 2 has a different configuration from model 1"):
        merge_members([no_meta(Tagger.load(member_dirs[0])), no_meta(Tagger.load(tiny_model_dir))])
    with pytest.raises(ValueError, match="frozen word vectors"):
        merge_members([no_meta(Tagger.load(tiny_model_dir)), no_meta(Tagger.load(tiny_model_dir))])
    with pytest.raises(ValueError, match="already an ensemble"):
        merge_members([merge_members([a, Tagger.load(member_dirs[1])]), a])
    c = Tagger.load(member_dirs[1])
    c.vocab.words[-1] = "كلمة"
    with pytest.raises(ValueError, match="model 2 has a different vocabulary"):
        merge_members([a, c])
    b = Tagger.load(member_dirs[1])
    layer = b.network.get_layer("word_embedding")
    layer.set_weights([layer.get_weights()[0] + 1.0])
    with pytest.raises(ValueError, match="model 2 has different word vectors"):
        merge_members([a, b])


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


def test_ensemble_scores_dev_only_when_no_member_saw_it(member_dirs, tiny_dev_file, tmp_path):
    """(Dev scoring itself: tests/cli/test_cli_train.py, an ensemble of a model with itself.)"""
    with pytest.raises(ValueError, match="refit members were trained on their dev set"):
        ensemble(member_dirs, tmp_path / "ens", dev_path=tiny_dev_file)
    assert not (tmp_path / "ens").exists()


# --------------------------------------------------------------------------- added vector rows


@pytest.fixture(scope="module")
def vectors(tiny_vectors_kv):
    return load_vectors(tiny_vectors_kv)


def test_added_rows_leave_every_trained_weight_alone(vector_model_dir, vectors):
    tagger = Tagger.load(vector_model_dir)
    assert "دمشق" not in tagger.vocab.words  # trained with max_vocab 1: training words only
    bigger, added = add_word_vectors(tagger, vectors)
    assert added == 1 and bigger.vocab.words == tagger.vocab.words + ["دمشق"]
    assert bigger.vocab.chars == tagger.vocab.chars and bigger.meta == tagger.meta
    for layer in tagger.network.layers:
        if layer.weights and layer.name != "word_embedding":
            for a, b in zip(layer.get_weights(), bigger.network.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(a, b)
    old = tagger.network.get_layer("word_embedding").get_weights()[0]
    new = bigger.network.get_layer("word_embedding").get_weights()[0]
    np.testing.assert_array_equal(new[: len(old)], old)
    np.testing.assert_array_equal(new[-1], vectors["دمشق"])
    # Sentences without the new word are scored as before; a proclitic form of it now backs off to its row.
    seqs = [random_words(random.Random(1), 9)]
    np.testing.assert_allclose(bigger.unary_scores(seqs, 16), tagger.unary_scores(seqs, 16), rtol=1e-6, atol=1e-6)
    joined = [["ودمشق"]]
    assert bigger.vocab.encode(joined, 1)[0][0, 0] == bigger.vocab.word_index["دمشق"]
    assert tagger.vocab.encode(joined, 1)[0][0, 0] == 1  # unknown before
    assert add_word_vectors(tagger, vectors, max_vocab=len(tagger.vocab.words))[1] == 0


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
    loaded = Tagger.load(tmp_path / "out")
    assert loaded.config.word_vector_bits == 8 and "دمشق" in loaded.vocab.words


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
    for a, b in zip(few.network.layers, full.network.layers):
        if a.weights and a.name != "word_embedding":
            for x, y in zip(a.get_weights(), b.get_weights()):
                np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    meta = add_vectors(tmp_path / "few", tiny_vectors_kv, tmp_path / "added", command="test")
    added = Tagger.load(tmp_path / "added")
    assert meta["added_vectors"]["rows_added"] == 1 and added.vocab.words == full.vocab.words
    sentence = [["محمد", "في", "دمشق", "ودمشق", "باريس"]]
    np.testing.assert_allclose(added.unary_scores(sentence, 8), full.unary_scores(sentence, 8), rtol=1e-4, atol=1e-4)
