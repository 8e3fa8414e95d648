"""spacy_aner.cli (common, data): the app, ``prepare`` and ``embeddings``, through typer's CliRunner."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from aner_support import TEST_FILE, TINY_SENTENCES, TRAIN_FILE
from typer.testing import CliRunner

from spacy_aner.cli import app

runner = CliRunner()

COMMANDS = ("prepare", "embeddings", "train", "ensemble", "add-vectors", "evaluate", "annotate")
REMOVED_COMMANDS = ("silver", "pretrain")


def test_help_lists_every_command_and_no_removed_one():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output
    for command in REMOVED_COMMANDS:
        assert command not in result.output
        gone = runner.invoke(app, [command, "--help"])
        assert gone.exit_code == 2 and "No such command" in gone.output


def test_no_args_shows_help():
    result = runner.invoke(app, [])
    assert "Usage" in result.output and "prepare" in result.output


def _malformed_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / TRAIN_FILE).write_text("محمد B-PERS\nفي O\nالرباط B-PER\n\nقال O\n", encoding="utf-8")
    (data / TEST_FILE).write_text("محمد B-PERS\n", encoding="utf-8")
    return data


def test_prepare_help():
    result = runner.invoke(app, ["prepare", "--help"])
    assert result.exit_code == 0 and "--dev-fraction" in result.output and "--strict" in result.output


def test_prepare_writes_parts_and_stats(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    train = "".join("".join(f"{w} O\n" for w in text.split()) + "\n" for text, _ in TINY_SENTENCES[:8])
    (data / TRAIN_FILE).write_text(train, encoding="utf-8")
    (data / TEST_FILE).write_text("محمد B-PERS\nفي O\nالرباط B-LOC\n", encoding="utf-8")
    out = tmp_path / "out"
    result = runner.invoke(app, ["prepare", str(data), str(out), "--dev-fraction", "0.25"])
    assert result.exit_code == 0, result.output
    assert "train: 6 sentences" in result.stdout and "dev  : 2 sentences" in result.stdout
    assert "(PERS 0, LOC 0, ORG 0, MISC 0)" in result.stdout
    assert "test : 1 sentences, 3 words, 2 entities (PERS 1, LOC 1, ORG 0, MISC 0)" in result.stdout
    assert "DIFFERS FROM the CAMeL Lab release (125,102)" in result.stdout
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert set(stats) == {"train", "dev", "test", "source"} and stats["source"]["repaired_lines"] == {"train": 0,
                                                                                                    "test": 0}
    for part in ("train", "dev", "test"):
        assert (out / f"{part}.conll").is_file() and (out / f"{part}.spacy").is_file()


def test_prepare_strict_malformed_exits_1(tmp_path):
    data = _malformed_dir(tmp_path)
    result = runner.invoke(app, ["prepare", str(data), str(tmp_path / "out"), "--strict"])
    assert result.exit_code == 1
    assert f"error: {data / TRAIN_FILE}:3:" in result.stderr
    assert not (tmp_path / "out" / "stats.json").exists()


def test_prepare_malformed_non_strict_warns(tmp_path):
    data = _malformed_dir(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["prepare", str(data), str(out)])
    assert result.exit_code == 0, result.output
    assert f"warning: 1 repaired line(s) in {data / TRAIN_FILE}" in result.stderr
    assert f"{data / TRAIN_FILE}:3:" in result.stderr
    assert "train file: 4 words, DIFFERS FROM the CAMeL Lab release (125,102)" in result.stdout
    assert json.loads((out / "stats.json").read_text(encoding="utf-8"))["train"]["words"] == 4


def test_prepare_missing_dir_and_bad_dev_fraction_exit_1(tmp_path):
    result = runner.invoke(app, ["prepare", str(tmp_path / "nowhere"), str(tmp_path / "out")])
    assert result.exit_code == 1 and TRAIN_FILE in result.stderr and "Traceback" not in result.output
    data = _malformed_dir(tmp_path)
    for fraction in ("1.0", "-0.1"):
        result = runner.invoke(app, ["prepare", str(data), str(tmp_path / "out"), "--dev-fraction", fraction])
        assert result.exit_code == 1 and "dev fraction must be in [0, 1)" in result.stderr


def test_prepare_without_dev_removes_an_earlier_runs_dev_part(tmp_path):
    """Its sentences are in train now: left behind, a dev file would overlap train unnoticed."""
    data = _malformed_dir(tmp_path)
    out = tmp_path / "out"
    assert runner.invoke(app, ["prepare", str(data), str(out), "--dev-fraction", "0.5"]).exit_code == 0
    assert (out / "dev.conll").is_file() and (out / "dev.spacy").is_file()
    assert runner.invoke(app, ["prepare", str(data), str(out)]).exit_code == 0
    assert not (out / "dev.conll").exists() and not (out / "dev.spacy").exists()


def test_embeddings_checks_its_numbers_and_output_before_training(tmp_path, tiny_conll_file):
    for option in ("--window", "--dim", "--workers", "--min-count", "--epochs"):
        result = runner.invoke(app, ["embeddings", "-o", str(tmp_path / "v.kv"), "--conll", str(tiny_conll_file),
                                     option, "0"])
        assert result.exit_code == 2 and "greater than or equal to 1" in result.output, (option, result.output)
    result = runner.invoke(app, ["embeddings", "-o", str(tmp_path), "--conll", str(tiny_conll_file)])
    assert result.exit_code == 1 and "it is a directory" in result.stderr
    result = runner.invoke(app, ["embeddings", "-o", str(tmp_path / "vectors"), "--conll", str(tiny_conll_file)])
    assert result.exit_code == 1 and "give a name ending in .kv" in result.stderr
    (tmp_path / "afile").write_text("x")
    result = runner.invoke(app, ["embeddings", "-o", str(tmp_path / "afile" / "v.kv"), "--conll", str(tiny_conll_file)])
    assert result.exit_code == 1 and f"cannot write {tmp_path / 'afile' / 'v.kv'}: " in result.stderr
    if Path("/proc/self").is_dir():  # a folder that exists but takes no new file, even for root
        result = runner.invoke(app, ["embeddings", "-o", "/proc/v.kv", "--conll", str(tiny_conll_file)])
        assert result.exit_code == 1 and "cannot write /proc/v.kv: " in result.stderr
        assert "vectors of size" not in result.stdout  # refused before training
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # the checks leave nothing behind


def test_embeddings_writes_through_a_link_to_a_file_not_made_yet(tmp_path, tiny_conll_file):
    (tmp_path / "store").mkdir()
    (tmp_path / "v.kv").symlink_to(tmp_path / "store" / "v.kv")
    result = runner.invoke(app, ["embeddings", "-o", str(tmp_path / "v.kv"), "--conll", str(tiny_conll_file),
                                 "--dim", "4", "--min-count", "1", "--epochs", "1", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "v.kv").is_symlink() and (tmp_path / "store" / "v.kv").stat().st_size > 0


@pytest.mark.parametrize("make, message", [
    (lambda d: (d / "a.zip").write_bytes(b"not a zip"), "a.zip: not a readable zip file"),
    (lambda d: zip_with(d / "a.zip", b'"text"'), "a.zip/a.json: not a SaudiNewsNet file (a JSON list of articles)"),
    (lambda d: zip_with(d / "a.zip", b"[{"), "a.zip/a.json: not a SaudiNewsNet file (Expecting"),
    (lambda d: zip_with(d / "a.zip", b'[{"content": 5}]'), "a.zip/a.json: an article's title or content is not text"),
    (lambda d: damaged_deflate(d / "a.zip"), "a.zip/a.json: not a SaudiNewsNet file"),
    (lambda d: damaged_deflate(d / "a.zip", 14), "a.zip/a.json: not a SaudiNewsNet file"),  # LZMA
    (lambda d: damaged_deflate(d / "a.zip", 12), "a.zip/a.json: not a SaudiNewsNet file"),  # bzip2
])
def test_embeddings_names_a_damaged_saudinewsnet_file(make, message, tmp_path):
    (tmp_path / "news").mkdir()
    make(tmp_path / "news")
    result = runner.invoke(app, ["embeddings", "-o", str(tmp_path / "v.kv"), "--saudinewsnet", str(tmp_path / "news")])
    assert result.exit_code == 1 and message in result.stderr and "Traceback" not in result.output, result.output


def zip_with(path, content: bytes, compression: int = 0) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        zf.writestr("a.json", content)


def damaged_deflate(path, method: int = 8) -> None:
    """A zip whose compressed data is broken: the decompressor's own error, not the zip module's."""
    zip_with(path, b'[{"content": "' + "محمد في الرباط ".encode() * 2000 + b'"}]', method)
    data = bytearray(path.read_bytes())
    data[60:90] = b"\xff" * 30
    path.write_bytes(bytes(data))


def test_the_console_script_reports_a_path_the_file_system_refuses(tmp_path):
    """An output folder that is a file: one line naming it, no traceback (every command)."""
    import subprocess
    import sys

    (tmp_path / "taken").write_text("x")
    data = _malformed_dir(tmp_path)
    result = subprocess.run([sys.executable, "-m", "spacy_aner", "prepare", str(data), str(tmp_path / "taken")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"error: File exists: {tmp_path / 'taken'}" in result.stderr


@pytest.mark.slow
def test_prepare_the_real_corpus(anercorp_dir, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["prepare", str(anercorp_dir), str(out), "--dev-fraction", "0.1"])
    assert result.exit_code == 0, result.output
    assert "train file: 125,102 words, matches the CAMeL Lab release (125,102)" in result.stdout
    assert "test file: 25,008 words, matches the CAMeL Lab release (25,008)" in result.stdout
    assert "DIFFERS" not in result.stdout
    assert "925 sentences, 25,008 words, 2,285 entities" in result.stdout
    assert f"{TRAIN_FILE}:2779:" in result.stderr  # the repaired stray I- tags, with file:line
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert set(stats) == {"train", "dev", "test", "source"}
    assert stats["train"]["words"] + stats["dev"]["words"] == 125_102 and stats["test"]["entities"] == 2_285


@pytest.mark.parametrize("args, message", [
    ([], "give at least one of --saudinewsnet, --conll, --text"),
    (["--conll", "nope.conll"], "file not found: nope.conll"),
    (["--text", "nope.txt"], "file not found: nope.txt"),
])
def test_embeddings_needs_existing_corpora(args, message, tmp_path):
    result = runner.invoke(app, ["embeddings", "-o", str(tmp_path / "v.kv"), *args])
    assert result.exit_code == 1 and message in result.stderr
    assert not (tmp_path / "v.kv").exists()


def test_embeddings_trains_vectors_on_text_and_conll(tmp_path, tiny_conll_file):
    from gensim.models import KeyedVectors

    (tmp_path / "news.txt").write_text("\n".join(text for text, _ in TINY_SENTENCES * 5), encoding="utf-8")
    out = tmp_path / "vectors" / "v.kv"
    result = runner.invoke(app, ["embeddings", "-o", str(out), "--text", str(tmp_path / "news.txt"),
                                 "--conll", str(tiny_conll_file), "--dim", "6", "--min-count", "1", "--epochs", "1",
                                 "--workers", "1", "--window", "2", "--cbow"])
    assert result.exit_code == 0, result.output
    kv = KeyedVectors.load(str(out))
    assert kv.vector_size == 6 and "القاهره" in kv.key_to_index
    words = 9 * sum(len(text.split()) for text, _ in TINY_SENTENCES)  # the text file's 5 copies, the training file's 4
    assert f"{len(kv):,} vectors of size 6 from {words:,} words" in result.stdout
