"""spacy_aner.cli.deploy: ``package`` (a spaCy pipeline package) and ``serve`` (its options and failures).

The server itself is tested in tests/serve/ (in-process) and tests/serve/test_serve_live.py
(a real ``spacy-aner serve`` process, driven by headless Chromium; slow).
"""
from __future__ import annotations

import json

from typer.testing import CliRunner

from spacy_aner.cli import app

runner = CliRunner()


def test_package_writes_the_package_folder(tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    args = ["package", str(out), "--model", str(tiny_model_dir), "--name", "tiny", "--version", "0.0.1",
            "--license", "CC BY 4.0", "--build", "none"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    folder = out / "ar_tiny-0.0.1"
    assert f"-> {folder}" in result.stdout
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    assert (meta["name"], meta["version"], meta["license"]) == ("tiny", "0.0.1", "CC BY 4.0")
    assert any(r.startswith("spacy-aner>=") for r in meta["requirements"])
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "exists; remove it or pass force" in again.stderr
    assert runner.invoke(app, args + ["--force"]).exit_code == 0


def test_package_errors_are_one_line(tiny_model_dir, tmp_path):
    cases = [
        (["--model", str(tmp_path / "nope")], "model directory not found"),
        (["--model", str(tiny_model_dir), "--name", "ar-ner"], "must be a Python identifier"),
        (["--model", str(tiny_model_dir), "--build", "egg"], "build must be one of wheel, sdist, none"),
        (["--model", str(tiny_model_dir), "--members", "2"], "members=2, but the model in"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, ["package", str(tmp_path / "out")] + extra)
        assert result.exit_code == 1 and message in result.stderr, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_serve_help_lists_its_options():
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--model", "--members", "--max-bytes", "--max-texts", "--max-batch",
                   "--batch-wait-ms"):
        assert option in result.stdout


def test_serve_with_a_broken_model_fails_before_listening(tiny_model_dir, model_copy, tmp_path):
    broken = model_copy(tiny_model_dir)
    (broken / "vocab.json").write_text("{", encoding="utf-8")
    result = runner.invoke(app, ["serve", "--model", str(broken), "--port", "0"])
    assert result.exit_code == 1 and f"{broken / 'vocab.json'}: not valid JSON" in result.stderr
    result = runner.invoke(app, ["serve", "--model", str(tmp_path / "nope"), "--port", "0"])
    assert result.exit_code == 1 and "model directory not found" in result.stderr
    result = runner.invoke(app, ["serve", "--model", str(tiny_model_dir), "--members", "2", "--port", "0"])
    assert result.exit_code == 1 and "has 1 network" in result.stderr
    assert runner.invoke(app, ["serve", "--port", "70000"]).exit_code == 2
