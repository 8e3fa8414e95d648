"""spacy_aner.training.recipe: the .cfg training recipe, dotted overrides, and every key checked."""
from __future__ import annotations

import json

import pytest
from aner_support import ROOT, TINY_MODEL, read_json
from confection import Config

from spacy_aner.core.config import ModelConfig
from spacy_aner.training.recipe import (
    NOT_IN_RECIPE,
    Paths,
    Recipe,
    TrainingSettings,
    load_recipe,
    parse_overrides,
    recorded_recipe,
)

SHIPPED_RECIPE = ROOT / "configs" / "aner_lstm.cfg"


def test_the_shipped_recipe_parses_and_matches_the_shipped_model():
    recipe = load_recipe(SHIPPED_RECIPE)
    assert recipe.paths == Paths(train="corpus/train.conll", dev=None, vectors="vectors/news_train_w2.kv",
                                 gazetteer="gazetteer/builtin.json.gz")
    assert recipe.training.seed == 13 and recipe.training.name_shortening == 0.25
    assert recipe.training.gazetteer_dropout == 0.25
    assert recipe.training.dev_fraction == 0.1 and not recipe.refit
    shipped = read_json(ROOT / "spacy_aner" / "models" / "aner-lstm" / "config.json")
    config = recipe.model_config(word_dim=100)
    for key in ("char_dim", "char_filters", "char_kernels", "max_word_chars", "lstm_units", "lstm_layers", "dropout",
                "clitic_backoff", "window", "context", "word_dim", "tags"):
        assert getattr(config, key) == shipped[key], key


def test_defaults_of_an_empty_recipe():
    recipe = load_recipe({})
    assert recipe.paths == Paths() and recipe.model == {} and recipe.training == TrainingSettings()
    assert recipe.model_config() == ModelConfig()


def test_overrides_replace_and_add_keys():
    base = {"paths": {"train": "a.conll"}, "model": dict(TINY_MODEL), "training": {"seed": 1}}
    recipe = load_recipe(base, {"training.seed": 14, "paths.dev": "dev.conll", "model.lstm_units": 8,
                                "training.lr_drops": [3, 5]})
    assert recipe.training.seed == 14 and recipe.paths.dev == "dev.conll" and recipe.paths.train == "a.conll"
    assert recipe.model["lstm_units"] == 8 and recipe.model["char_kernels"] == [2, 3]
    assert recipe.training.lr_drops == [3, 5]
    assert base["training"] == {"seed": 1}  # the source is not changed


def test_a_cfg_file_with_overrides(tmp_path):
    path = tmp_path / "r.cfg"
    path.write_text("[paths]\ntrain = \"t.conll\"\n\n[model]\nlstm_units = 32\n\n[training]\nepochs = 5\n",
                    encoding="utf-8")
    recipe = load_recipe(path, parse_overrides(["--training.epochs", "7", "--model.char-kernels=[3,4]"]))
    assert (recipe.training.epochs, recipe.model["lstm_units"], recipe.model["char_kernels"]) == (7, 32, [3, 4])
    assert load_recipe(str(path)).training.epochs == 5


@pytest.mark.parametrize("args, expected", [
    (["--training.seed", "14"], {"training.seed": 14}),
    (["--training.seed=14"], {"training.seed": 14}),
    (["--paths.dev", "dev.conll"], {"paths.dev": "dev.conll"}),
    (["--paths.dev", "null"], {"paths.dev": None}),
    (["--training.learning-rate", "0.001"], {"training.learning_rate": 0.001}),
    (["--model.clitic_backoff", "false"], {"model.clitic_backoff": False}),
    (["--training.lr_drops", "[14]", "--model.char_kernels=[2,3]"], {"training.lr_drops": [14],
                                                                     "model.char_kernels": [2, 3]}),
    (["--paths.train", "my file.conll"], {"paths.train": "my file.conll"}),
    (["--paths.dev", "2024"], {"paths.dev": "2024"}),  # a path is a string, whatever it looks like
    ([], {}),
])
def test_parse_overrides(args, expected):
    assert parse_overrides(args) == expected


@pytest.mark.parametrize("args, message", [
    (["seed", "14"], "unexpected argument 'seed'"),
    (["--seed", "14"], "unexpected argument '--seed'"),
    (["--training.seed"], "--training.seed needs a value"),
    (["--training.seed", "--model.lstm_units", "8"], "--training.seed needs a value"),
])
def test_malformed_overrides(args, message):
    with pytest.raises(ValueError, match=message):
        parse_overrides(args)


@pytest.mark.parametrize("data, overrides, message", [
    ({"optimizer": {}}, {}, r"unknown section\(s\) \['optimizer'\]"),
    ({}, {"trainer.seed": 1}, r"unknown section\(s\) \['trainer'\]"),
    ({}, {"training.sed": 1}, r"unknown key\(s\) in \[training\]: sed \(allowed: batch_size, dev_fraction"),
    ({}, {"paths.test": "x"}, r"unknown key\(s\) in \[paths\]: test \(allowed: dev, gazetteer, train, vectors\)"),
    ({}, {"model.lstm_unit": 8}, r"unknown key\(s\) in \[model\]: lstm_unit"),
    ({}, {"model.members": 3}, r"unknown key\(s\) in \[model\]: members"),  # from `spacy-aner ensemble`
    ({}, {"model.word_dim": 50}, r"unknown key\(s\) in \[model\]: word_dim"),  # from the vectors
    ({}, {"model.char_kernel": 3}, r"unknown key\(s\) in \[model\]: char_kernel"),  # removed
    ({}, {"training.token_loss": 1.0}, r"unknown key\(s\) in \[training\]: token_loss"),  # removed
    ({}, {"seed": 1}, "give it as section.key"),
    ({}, {"training.seed.x": 1}, "give it as section.key"),
])
def test_unknown_sections_and_keys_are_named(data, overrides, message):
    with pytest.raises(ValueError, match=message):
        load_recipe(data, overrides)


@pytest.mark.parametrize("overrides, message", [
    ({"training.dev_fraction": 1.0}, "dev_fraction must be in"),
    ({"training.dev_fraction": -0.1}, "dev_fraction must be in"),
    ({"training.name_shortening": 1.5}, "name_shortening is a probability"),
    ({"training.epochs": 0}, "training.epochs must be at least 1"),
    ({"training.batch_size": 0}, "training.batch_size must be at least 1"),
    ({"training.max_vocab": 0}, "training.max_vocab must be at least 1"),
    ({"training.lr_decay": 0.0}, "lr_decay"),
    ({"training.learning_rate": -1.0}, "learning_rate must be positive"),
    ({"model.window": 8, "model.context": 4}, "window must be longer"),
    ({"model.context": -1}, "the context 0 or more: got window 128, context -1"),
    ({"training.learning_rate": float("nan")}, "learning_rate must be positive"),
    ({"training.learning_rate": float("inf")}, "learning_rate must be positive"),
    ({"model.char_kernels": [3, 3]}, "char_kernels"),
    ({"model.word_vector_bits": 12}, "word_vector_bits"),
    # Values of the wrong type, named, instead of a traceback inside training.
    ({"training.epochs": "abc"}, r"\[training\] epochs: Input should be a valid integer.*'abc'"),
    ({"training.dev_fraction": "abc"}, r"\[training\] dev_fraction: Input should be a valid number"),
    ({"training.batch_size": 2.5}, r"\[training\] batch_size: .*fractional part \(2.5\)"),
    ({"training.lr_drops": 3, "training.dev_fraction": 0}, r"\[training\] lr_drops: Input should be a valid list"),
    ({"model.lstm_units": "abc"}, r"\[model\] lstm_units: Input should be a valid integer"),
    ({"model.window": "abc"}, r"\[model\] window: Input should be a valid integer"),
    ({"model.clitic_backoff": "perhaps"}, r"\[model\] clitic_backoff: Input should be a valid boolean"),
    ({"paths.train": 5}, r"\[paths\] train: Input should be a valid string"),
    # What loading the model would refuse, refused before training it.
    ({"model.lstm_layers": 0}, r"\[model\] lstm_layers must be a positive whole number, got 0"),
    ({"model.dropout": 1.0}, r"\[model\] dropout must be in \[0, 1\)"),
])
def test_bad_values_fail_before_any_training(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_recipe({}, overrides)


def test_values_are_converted_to_their_types_where_that_loses_nothing():
    recipe = load_recipe({}, parse_overrides(["--model.clitic_backoff", "False", "--training.epochs", "7.0",
                                              "--training.learning_rate", "1"]))
    assert recipe.model_config().clitic_backoff is False  # the string "False" was true before
    assert recipe.to_dict()["model"]["clitic_backoff"] is False  # and so the model's record says
    assert recipe.training.epochs == 7 and type(recipe.training.epochs) is int
    assert recipe.training.learning_rate == 1.0


def test_every_model_config_field_is_in_a_recipe_or_set_elsewhere():
    from dataclasses import fields

    names = {f.name for f in fields(ModelConfig)}
    assert NOT_IN_RECIPE <= names
    recipe = load_recipe({}, {f"model.{k}": getattr(ModelConfig(), k) for k in names - NOT_IN_RECIPE})
    assert recipe.model_config() == ModelConfig()


def test_refit_means_no_dev_at_all():
    assert load_recipe({}, {"training.dev_fraction": 0.0}).refit
    assert not load_recipe({}, {"training.dev_fraction": 0.0, "paths.dev": "d.conll"}).refit
    assert not load_recipe({}).refit


def test_to_dict_and_to_str_round_trip():
    recipe = load_recipe({"model": dict(TINY_MODEL)}, {"training.lr_drops": [2], "paths.train": "t.conll"})
    again = load_recipe(Config().from_str(recipe.to_str()))
    assert again == recipe and isinstance(again, Recipe)
    assert load_recipe(json.loads(json.dumps(recipe.to_dict()))) == recipe


def test_recorded_recipe_of_a_trained_model(vector_run, tiny_vectors_kv):
    recorded = recorded_recipe(vector_run.dir)
    assert recorded["paths"]["vectors"] == str(tiny_vectors_kv)
    assert recorded["training"]["seed"] == 5 and recorded["training"]["max_vocab"] == 1
    assert load_recipe(recorded).to_dict() == recorded


def test_recorded_recipe_needs_a_meta_with_one(tmp_path):
    with pytest.raises(ValueError, match="no recorded recipe"):
        recorded_recipe(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"name": "aner_lstm"}))
    with pytest.raises(ValueError, match="meta.json: no recorded recipe"):
        recorded_recipe(tmp_path)


@pytest.mark.parametrize("content, message", [
    (b"[training]\nepochs = 1\nepochs = 2\n", "option 'epochs' in section 'training' already exists"),
    (b"[training]\nepochs = \xff\n", "codec can't decode"),
])
def test_a_recipe_file_that_cannot_be_read_is_named(content, message, tmp_path):
    path = tmp_path / "recipe.cfg"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"{path}: not a readable recipe .*{message}"):
        load_recipe(path)
