"""spacy_aner.cli.train: ``train`` (recipe + dotted overrides, --refit-from), ``ensemble`` and ``add-vectors``.

The two successful trainings are the session's ``vector_run`` and ``refit_run``
(conftest.py), run through this CLI; every other call here fails before training or
works on those models.
"""
from __future__ import annotations

import json
import re

import pytest
from aner_support import read_json
from confection import Config
from typer.testing import CliRunner

from spacy_aner.cli import app
from spacy_aner.core.config import META_FILE, TRAINING_LOG_FILE
from spacy_aner.core.tagger import Tagger

runner = CliRunner()

REJECTED_OPTIONS = ("--silver", "--init-from", "--context-crops", "--token-loss", "--unknown-without-vector",
                    "--mention-replacement")


def test_train_help_lists_at_most_15_options_and_none_of_the_rejected():
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", result.output))
    assert {"--output", "--refit-from", "--quiet", "--help"} <= options
    assert len(options) <= 15, options
    assert not options & set(REJECTED_OPTIONS)
    assert "--training.seed" in result.output  # the overrides are documented


@pytest.mark.parametrize("option", REJECTED_OPTIONS)
def test_rejected_experiments_options_are_refused(option, tiny_recipe_file, tmp_path):
    result = runner.invoke(app, ["train", str(tiny_recipe_file), "-o", str(tmp_path / "m"), option, "1"])
    assert result.exit_code == 1 and f"unexpected argument '{option}'" in result.stderr
    assert not (tmp_path / "m").exists()


def test_train_with_overrides_reports_dev_scores(vector_run):
    meta = read_json(vector_run.dir / META_FILE)
    micro = meta["dev_scores"]["micro"]
    expected = (f"best epoch {meta['best_epoch']} of {meta['epochs_run']}: dev P {micro['precision']:.2f} "
                f"R {micro['recall']:.2f} F1 {micro['f1']:.2f} in {meta['training_minutes']} min -> {vector_run.dir}")
    assert vector_run.result.stdout.strip() == expected  # --quiet: no per-epoch lines
    # Every override reached the recipe that the model records.
    training = meta["config"]["training"]
    assert (training["seed"], training["max_vocab"], training["epochs"]) == (5, 1, 2)
    assert meta["config"]["paths"]["vectors"] == str(vector_run.args[3].split("=", 1)[1])
    assert meta["command"].startswith("spacy-aner train ")


def test_refit_from_replays_the_schedule_with_the_recorded_recipe(vector_run, refit_run):
    meta, dev_meta = read_json(refit_run.dir / META_FILE), read_json(vector_run.dir / META_FILE)
    assert refit_run.result.stdout.strip() == (f"refit: {meta['epochs_run']} epochs on 32 sentences, no dev set, "
                                               f"in {meta['training_minutes']} min -> {refit_run.dir}")
    assert meta["refit"] and meta["epochs_run"] == dev_meta["best_epoch"]
    assert meta["config"]["training"]["seed"] == 6  # the override, over the recorded recipe's 5
    assert meta["config"]["training"]["max_vocab"] == 1  # the recorded recipe's, not the default
    assert Tagger.load(refit_run.dir).vocab.words == Tagger.load(vector_run.dir).vocab.words


@pytest.mark.parametrize("extra, message", [
    (["--training.sed", "3"], "unknown key(s) in [training]: sed"),
    (["--optimizer.lr", "3"], "unknown section(s) ['optimizer']"),
    (["--model.members", "3"], "unknown key(s) in [model]: members"),
    (["--training.epochs", "0"], "training.epochs must be at least 1"),
    (["--training.dev_fraction", "1.5"], "training.dev_fraction must be in [0, 1)"),
    (["--model.window", "8", "--model.context", "4"], "window must be longer than twice the context"),
    (["seed", "3"], "unexpected argument 'seed'"),
    (["--training.seed"], "--training.seed needs a value"),
    (["--training.lr_drops", "[1]"], "training.lr_drops replays a schedule without a dev set"),
])
def test_bad_overrides_fail_before_training(extra, message, tiny_recipe_file, tmp_path):
    result = runner.invoke(app, ["train", str(tiny_recipe_file), "-o", str(tmp_path / "m"), *extra])
    assert result.exit_code == 1, result.output
    assert f"error: {message}" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "m" / META_FILE).exists()


def test_missing_files_fail_before_training(tiny_recipe_file, tmp_path):
    result = runner.invoke(app, ["train", str(tmp_path / "nope.cfg"), "-o", str(tmp_path / "m")])
    assert result.exit_code == 1 and "not a recipe file or model directory" in result.stderr
    for key in ("train", "dev", "vectors", "gazetteer"):
        result = runner.invoke(app, ["train", str(tiny_recipe_file), "-o", str(tmp_path / "m"),
                                     f"--paths.{key}", str(tmp_path / f"{key}.missing")])
        assert result.exit_code == 1 and f"paths.{key}: file not found: {tmp_path / key}.missing" in result.stderr
    empty = tmp_path / "empty.cfg"
    empty.write_text(Config({"paths": {"train": None}}).to_str(), encoding="utf-8")
    result = runner.invoke(app, ["train", str(empty), "-o", str(tmp_path / "m")])
    assert result.exit_code == 1 and "no training file: set paths.train" in result.stderr
    result = runner.invoke(app, ["train", str(tiny_recipe_file)])
    assert result.exit_code == 2 and "--output" in result.output  # a required option


def test_a_model_dir_without_a_recorded_recipe_is_refused(tiny_model_dir, model_copy, tmp_path):
    model = model_copy(tiny_model_dir)
    (model / META_FILE).write_text('{"name": "aner_lstm"}', encoding="utf-8")
    result = runner.invoke(app, ["train", str(model), "-o", str(tmp_path / "m")])
    assert result.exit_code == 1 and f"{model / META_FILE}: no recorded recipe" in result.stderr


def test_refit_from_needs_a_dev_run(tiny_recipe_file, refit_run, tmp_path):
    result = runner.invoke(app, ["train", str(tiny_recipe_file), "--refit-from", str(refit_run.dir),
                                 "-o", str(tmp_path / "m")])
    assert result.exit_code == 1 and "a refit has no dev-chosen schedule" in result.stderr
    result = runner.invoke(app, ["train", str(tiny_recipe_file), "--refit-from", str(tmp_path / "none"),
                                 "-o", str(tmp_path / "m")])
    assert result.exit_code == 1 and "not a model trained by `spacy-aner train`" in result.stderr


# --------------------------------------------------------------------------- ensemble


def test_ensemble_of_a_dev_run_and_its_refit(vector_model_dir, refit_run, tiny_dev_file, tmp_path):
    out = tmp_path / "ens"
    result = runner.invoke(app, ["ensemble", str(vector_model_dir), str(refit_run.dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"ensemble of 2 (seeds 5, 6), no held-out dev -> {out}"
    meta = read_json(out / META_FILE)
    assert [m["dir"] for m in meta["members"]] == [str(vector_model_dir), str(refit_run.dir)]
    assert meta["command"].startswith("spacy-aner ensemble ")
    assert Tagger.load(out).config.members == 2
    refused = runner.invoke(app, ["ensemble", str(vector_model_dir), str(refit_run.dir), "--dev", str(tiny_dev_file),
                                  "-o", str(tmp_path / "x")])
    assert refused.exit_code == 1 and "a dev score would not be held out" in refused.stderr


def test_ensemble_scored_on_dev(vector_model_dir, tiny_dev_file, model_copy, tmp_path):
    """A model merged with a copy of itself predicts what it predicts alone: the same dev F1, three times."""
    result = runner.invoke(app, ["ensemble", str(vector_model_dir), str(model_copy(vector_model_dir)), "--dev",
                                 str(tiny_dev_file), "-o", str(tmp_path / "ens")])
    assert result.exit_code == 0, result.output
    f1 = read_json(vector_model_dir / META_FILE)["dev_scores"]["micro"]["f1"]
    assert result.stdout.splitlines() == [f"member seed 5: dev F1 {f1:.2f}"] * 2 + [
        f"ensemble of 2: dev F1 {f1:.2f} -> {tmp_path / 'ens'}"]
    meta = read_json(tmp_path / "ens" / META_FILE)
    assert [m["dev_f1"] for m in meta["members"]] == [f1, f1]
    assert meta["dev_scores"]["micro"]["f1"] == pytest.approx(f1) and len(meta["dev_sha256"]) == 64


def test_ensemble_errors(vector_model_dir, tiny_model_dir, tmp_path):
    missing = runner.invoke(app, ["ensemble", str(vector_model_dir), str(tmp_path / "nope"), "-o", str(tmp_path / "x")])
    assert missing.exit_code == 1 and f"model directory not found: {tmp_path / 'nope'}" in missing.stderr
    no_dev = runner.invoke(app, ["ensemble", str(vector_model_dir), str(vector_model_dir), "--dev",
                                 str(tmp_path / "dev.conll"), "-o", str(tmp_path / "x")])
    assert no_dev.exit_code == 1 and "file not found" in no_dev.stderr
    other = runner.invoke(app, ["ensemble", str(vector_model_dir), str(tiny_model_dir), "-o", str(tmp_path / "x")])
    assert other.exit_code == 1 and "model 2 was trained with other" in other.stderr
    twice = runner.invoke(app, ["ensemble", str(vector_model_dir), str(vector_model_dir), "-o", str(tmp_path / "x")])
    assert twice.exit_code == 1 and "a model is named twice" in twice.stderr
    (tmp_path / "plain.conll").write_text("محمد\tO\nفي\tO\n", encoding="utf-8")
    plain = runner.invoke(app, ["ensemble", str(vector_model_dir), str(tiny_model_dir), "--dev",
                                str(tmp_path / "plain.conll"), "-o", str(tmp_path / "x")])
    assert plain.exit_code == 1 and "plain.conll: no gold entities" in plain.stderr
    (tmp_path / "lossy.conll").write_text("محمد\tB-PERS\nفي\nالرباط\tB-PER\n", encoding="utf-8")
    lossy = runner.invoke(app, ["ensemble", str(vector_model_dir), str(tiny_model_dir), "--dev",
                                str(tmp_path / "lossy.conll"), "-o", str(tmp_path / "x")])
    assert lossy.exit_code == 1 and "2 malformed line(s) in the gold file" in lossy.stderr  # as `evaluate` says
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("content", [b"{", b"[1]", b'{"epochs": [{"loss": 1}]}', b"\xff"])
def test_ensemble_names_a_members_damaged_training_log_before_writing(content, vector_model_dir, model_copy,
                                                                      tmp_path):
    a, b = model_copy(vector_model_dir, "a"), model_copy(vector_model_dir, "b")
    (b / TRAINING_LOG_FILE).write_bytes(content)
    result = runner.invoke(app, ["ensemble", str(a), str(b), "-o", str(tmp_path / "x")])
    assert result.exit_code == 1 and f"{b / TRAINING_LOG_FILE}: not a training log" in result.stderr
    assert not (tmp_path / "x").exists()
    (b / TRAINING_LOG_FILE).unlink()  # without it, the member has no curves
    assert runner.invoke(app, ["ensemble", str(a), str(b), "-o", str(tmp_path / "x")]).exit_code == 0
    assert read_json(tmp_path / "x" / TRAINING_LOG_FILE)["members"][1] == []


def test_ensemble_refuses_to_write_over_a_member(vector_model_dir, model_copy):
    a, b = model_copy(vector_model_dir, "a"), model_copy(vector_model_dir, "b")
    before = (a / META_FILE).read_bytes()
    result = runner.invoke(app, ["ensemble", str(a), str(b), "-o", str(a)])
    assert result.exit_code == 1 and "is one of the members" in result.stderr
    assert (a / META_FILE).read_bytes() == before


# --------------------------------------------------------------------------- add-vectors


def test_add_vectors(vector_model_dir, tiny_vectors_kv, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["add-vectors", str(vector_model_dir), "--vectors", str(tiny_vectors_kv),
                                 "--word-vector-bits", "8", "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = len(Tagger.load(vector_model_dir).vocab.words) + 1
    assert result.stdout.strip() == f"1 rows added, {rows:,} in all (8-bit) -> {out}"
    meta = read_json(out / META_FILE)
    assert meta["added_vectors"]["command"].startswith("spacy-aner add-vectors ")
    assert Tagger.load(out).config.word_vector_bits == 8


def test_a_hand_edited_meta_is_named_by_ensemble_and_add_vectors(vector_model_dir, tiny_vectors_kv, model_copy,
                                                                  tmp_path):
    a, b = model_copy(vector_model_dir, "a"), model_copy(vector_model_dir, "b")
    meta = read_json(b / META_FILE)
    (b / META_FILE).write_text(json.dumps({**meta, "config": "x"}), encoding="utf-8")
    result = runner.invoke(app, ["ensemble", str(a), str(b), "-o", str(tmp_path / "x")])
    assert result.exit_code == 1 and f"{b / META_FILE}: 'config' must be an object or null" in result.stderr
    (b / META_FILE).write_text(json.dumps({**meta, "vectors": "y"}), encoding="utf-8")
    result = runner.invoke(app, ["add-vectors", str(b), "--vectors", str(tiny_vectors_kv), "-o", str(tmp_path / "y")])
    assert result.exit_code == 1 and f"{b / META_FILE}: 'vectors' must be an object or null" in result.stderr
    (b / META_FILE).write_text(json.dumps({**meta, "vectors": None}), encoding="utf-8")
    result = runner.invoke(app, ["add-vectors", str(b), "--vectors", str(tiny_vectors_kv), "-o", str(tmp_path / "z")])
    assert result.exit_code == 0, result.output
    (b / META_FILE).write_text(json.dumps({**meta, "config": "x", "test_scores": "see the card"}), encoding="utf-8")
    assert len(Tagger.load(b).predict([["محمد", "في", "الرباط"]])[0]) == 3  # tagging reads none of them


def test_add_vectors_errors(vector_model_dir, tiny_model_dir, tiny_vectors_kv, tmp_path):
    learnt = runner.invoke(app, ["add-vectors", str(tiny_model_dir), "--vectors", str(tiny_vectors_kv),
                                 "-o", str(tmp_path / "x")])
    assert learnt.exit_code == 1 and "fine-tuned its word vectors" in learnt.stderr
    missing = runner.invoke(app, ["add-vectors", str(tmp_path / "nope"), "--vectors", str(tiny_vectors_kv),
                                  "-o", str(tmp_path / "y")])
    assert missing.exit_code == 1 and "model directory not found" in missing.stderr
    no_vectors = runner.invoke(app, ["add-vectors", str(vector_model_dir), "--vectors", str(tmp_path / "v.kv"),
                                     "-o", str(tmp_path / "z")])
    assert no_vectors.exit_code == 1 and f"file not found: {tmp_path / 'v.kv'}" in no_vectors.stderr
    bad_bits = runner.invoke(app, ["add-vectors", str(vector_model_dir), "--vectors", str(tiny_vectors_kv),
                                   "--word-vector-bits", "4", "-o", str(tmp_path / "b")])
    assert bad_bits.exit_code == 1 and "word_vector_bits must be 8 or 16" in bad_bits.stderr
    assert not [p for p in ("x", "y", "z", "b") if (tmp_path / p).exists()]
