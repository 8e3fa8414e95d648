"""Tests of the ``spacy-aner`` command line."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spacy_aner.cli import app
from spacy_aner.corpus import TEST_FILE, TRAIN_FILE

runner = CliRunner()


def _all_output(result) -> str:
    # Click >= 8.2 keeps stderr separate from stdout; result.output interleaves both.
    return result.output


def test_help_lists_prepare():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "prepare" in result.output


def test_no_args_shows_help():
    result = runner.invoke(app, [])
    assert "prepare" in result.output
    assert "Usage" in result.output


def test_prepare_help():
    result = runner.invoke(app, ["prepare", "--help"])
    assert result.exit_code == 0
    assert "--dev-fraction" in result.output
    assert "--strict" in result.output


@pytest.mark.slow
def test_prepare_real_corpus(anercorp_dir, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["prepare", str(anercorp_dir), str(out), "--dev-fraction", "0.1"])
    assert result.exit_code == 0, _all_output(result)
    stdout = result.stdout
    assert "125,102" in stdout
    assert "25,008" in stdout
    assert "train file: 125,102 words, matches the CAMeL Lab release (125,102)" in stdout
    assert "test file: 25,008 words, matches the CAMeL Lab release (25,008)" in stdout
    assert "DIFFERS" not in stdout
    assert "925 sentences, 25,008 words, 2,285 entities" in stdout
    # the repaired stray I- tags are reported as warnings on stderr, with file:line
    assert f"{TRAIN_FILE}:2779:" in result.stderr
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert set(stats) == {"train", "dev", "test", "source"}
    assert stats["train"]["words"] + stats["dev"]["words"] == 125_102
    assert stats["test"]["entities"] == 2_285
    for part in ("train", "dev", "test"):
        assert (out / f"{part}.conll").is_file() and (out / f"{part}.spacy").is_file()


def _malformed_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / TRAIN_FILE).write_text("محمد B-PERS\nفي O\nالرباط B-PER\n\nقال O\n", encoding="utf-8")
    (data / TEST_FILE).write_text("محمد B-PERS\n", encoding="utf-8")
    return data


def test_prepare_strict_malformed_exits_1(tmp_path):
    data = _malformed_dir(tmp_path)
    result = runner.invoke(app, ["prepare", str(data), str(tmp_path / "out"), "--strict"])
    assert result.exit_code == 1
    assert f"{data / TRAIN_FILE}:3:" in _all_output(result)
    assert "error:" in result.stderr
    assert not (tmp_path / "out" / "stats.json").exists()


def test_prepare_malformed_non_strict_warns(tmp_path):
    data = _malformed_dir(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["prepare", str(data), str(out)])
    assert result.exit_code == 0, _all_output(result)
    assert f"warning: 1 repaired line(s) in {data / TRAIN_FILE}" in result.stderr
    assert f"{data / TRAIN_FILE}:3:" in result.stderr
    assert "train file: 4 words, DIFFERS FROM the CAMeL Lab release (125,102)" in result.stdout
    assert json.loads((out / "stats.json").read_text(encoding="utf-8"))["train"]["words"] == 4


def test_prepare_missing_dir_exits_1(tmp_path):
    result = runner.invoke(app, ["prepare", str(tmp_path / "nowhere"), str(tmp_path / "out")])
    assert result.exit_code == 1
    assert TRAIN_FILE in _all_output(result)


def test_prepare_bad_dev_fraction_exits_1(tmp_path):
    data = _malformed_dir(tmp_path)
    result = runner.invoke(app, ["prepare", str(data), str(tmp_path / "out"), "--dev-fraction", "1.0"])
    assert result.exit_code == 1
    assert "dev fraction" in _all_output(result)


def test_python_m_help():
    proc = subprocess.run([sys.executable, "-m", "spacy_aner", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "prepare" in proc.stdout


def _console_script() -> str | None:
    bin_dir = str(Path(sys.executable).parent)
    return shutil.which("spacy-aner", path=bin_dir + os.pathsep + os.environ.get("PATH", ""))


def test_console_script_installed():
    script = _console_script()
    assert script is not None
    proc = subprocess.run([script, "prepare", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--dev-fraction" in proc.stdout


@pytest.mark.parametrize("args, message", [
    ([], "give at least one of --saudinewsnet, --conll, --text"),
    (["--conll", "nope.conll"], "file not found: nope.conll"),
    (["--text", "nope.txt"], "file not found: nope.txt"),
])
def test_embeddings_command_needs_existing_corpora(args, message, tmp_path):
    result = CliRunner().invoke(app, ["embeddings", "-o", str(tmp_path / "v.kv"), *args])
    assert result.exit_code == 1 and message in result.output
    assert not (tmp_path / "v.kv").exists()


def test_add_vectors_command(tiny_conll_file, tiny_vectors_kv, tiny_model_dir, tmp_path):
    import json

    from spacy_aner.model import ModelConfig
    from spacy_aner.training import train

    train(tiny_conll_file, tmp_path / "m", vectors=tiny_vectors_kv, dev_fraction=0.2, epochs=1, verbose=0,
          max_vocab=1, config=ModelConfig(lstm_units=8, lstm_layers=1, char_filters=8, window=32, context=4))
    result = runner.invoke(app, ["add-vectors", str(tmp_path / "m"), "--vectors", str(tiny_vectors_kv),
                                 "--word-vector-bits", "8", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "rows added" in result.output and "8-bit" in result.output
    meta = json.loads((tmp_path / "out" / "meta.json").read_text(encoding="utf-8"))
    assert meta["added_vectors"]["rows_added"] >= 1 and meta["added_vectors"]["exact"] is True
    assert meta["dev_scores"] is None and meta["added_vectors"]["scores_before"]["dev_scores"]
    # A model that fine-tuned its embeddings, or a missing directory: a clear error, no traceback.
    result = runner.invoke(app, ["add-vectors", str(tiny_model_dir), "--vectors", str(tiny_vectors_kv), "-o", str(tmp_path / "x")])
    assert result.exit_code == 1 and "fine-tuned" in result.output
    result = runner.invoke(app, ["add-vectors", str(tmp_path / "nope"), "--vectors", str(tiny_vectors_kv), "-o", str(tmp_path / "y")])
    assert result.exit_code == 1 and "not found" in result.output


def test_refit_from_refuses_a_run_without_unknown_without_vector(tiny_conll_file, tiny_vectors_kv, tmp_path):
    from spacy_aner.model import ModelConfig
    from spacy_aner.training import train

    train(tiny_conll_file, tmp_path / "run", vectors=tiny_vectors_kv, dev_fraction=0.2, epochs=1, verbose=0,
          config=ModelConfig(lstm_units=8, lstm_layers=1, char_filters=8, window=32, context=4))
    result = runner.invoke(app, ["train", str(tiny_conll_file), "--dev-fraction", "0", "--refit-from", str(tmp_path / "run"),
                                 "--vectors", str(tiny_vectors_kv), "--unknown-without-vector", "-o", str(tmp_path / "refit")])
    assert result.exit_code == 1 and "unknown_without_vector" in result.output


def test_char_kernels_reach_the_model_and_refit_from_checks_them(tiny_conll_file, tiny_vectors_kv, tmp_path):
    import json

    result = runner.invoke(app, ["train", str(tiny_conll_file), "--dev-fraction", "0.2", "--epochs", "1",
                                 "--vectors", str(tiny_vectors_kv), "--lstm-units", "8", "--lstm-layers", "1",
                                 "--char-filters", "4", "--char-kernels", "2,4", "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))["char_kernels"] == [2, 4]
    assert json.loads((tmp_path / "run" / "meta.json").read_text(encoding="utf-8"))["hyperparameters"]["char_kernels"] == [2, 4]
    result = runner.invoke(app, ["train", str(tiny_conll_file), "--dev-fraction", "0", "--refit-from", str(tmp_path / "run"),
                                 "--vectors", str(tiny_vectors_kv), "-o", str(tmp_path / "refit")])
    assert result.exit_code == 1 and "char_kernels" in result.output
    result = runner.invoke(app, ["train", str(tiny_conll_file), "--char-kernels", "a", "-o", str(tmp_path / "x")])
    assert result.exit_code == 1 and "--char-kernels" in result.output
