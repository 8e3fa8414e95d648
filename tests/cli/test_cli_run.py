"""spacy_aner.cli.run: ``evaluate`` (scores, report, plots, --record) and ``annotate`` (a corpus to JSONL)."""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from aner_support import WORDS, read_json
from typer.testing import CliRunner

import spacy_aner
from spacy_aner.cli import app
from spacy_aner.core.config import GRAPH_FILE, META_FILE, TRAINING_LOG_FILE, VECTORS_FILE
from spacy_aner.training.evaluation import evaluate_file, model_hash

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def scored_model(scrambled_model_dir, tiny_model_dir, model_copy) -> Path:
    """A copy of the scrambled model (``--record`` writes into it) with the tiny model's training curves."""
    model = model_copy(scrambled_model_dir)
    shutil.copy(tiny_model_dir / TRAINING_LOG_FILE, model / TRAINING_LOG_FILE)
    return model


def test_evaluate_writes_metrics_report_plots_and_records_them(scored_model, tiny_dev_file, tmp_path):
    out = tmp_path / "eval"
    result = runner.invoke(app, ["evaluate", str(tiny_dev_file), "--model", str(scored_model), "-o", str(out),
                                 "--raw", "--doc-context", "--record"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    expected = evaluate_file(spacy_aner.load(scored_model), tiny_dev_file, raw=True, progress=False, doc_context=True)
    micro = expected["seqeval_default"]["micro"]
    assert [metrics[k] for k in ("f1", "precision", "recall")] == [micro[k] for k in ("f1", "precision", "recall")]
    assert metrics["per_type"] == expected["seqeval_default"]["per_type"] and metrics["sentences"] == 8
    assert metrics["model"] == str(scored_model) and metrics["model_hash"] == model_hash(scored_model)
    dev = metrics["files"]["dev"]
    assert dev["raw_text"] == expected["raw_text"] and dev["doc_context"] == expected["doc_context"]
    assert dev["seqeval_strict"] == expected["seqeval_strict"] and "_gold" not in dev and "report" not in dev
    assert "micro avg" in (out / "report.txt").read_text(encoding="utf-8")
    for name in ("per_class.png", "confusion_dev.png", "training_curves.png"):
        assert (out / name).read_bytes().startswith(PNG_MAGIC), name
    assert "dev: 8 sentences" in result.stdout and f"-> {out}/metrics.json" in result.stdout
    recorded = read_json(scored_model / META_FILE)["test_scores"]["dev"]
    assert recorded["seqeval_default"] == micro and recorded["file"] == str(tiny_dev_file)
    assert recorded["command"].startswith("spacy-aner evaluate ") and len(recorded["sha256"]) == 64
    assert recorded["doc_context"]["seqeval_default"] == expected["doc_context"]["seqeval_default"]["micro"]
    assert recorded["raw_text"] == expected["raw_text"]["micro"]


def test_evaluate_with_a_damaged_training_log_scores_and_records_without_curves(scored_model, tiny_dev_file,
                                                                                 tmp_path):
    log = read_json(scored_model / TRAINING_LOG_FILE)
    del log["epochs"][-1]["dev_f1"]  # drawn from, yet not checked by the reader: a plot error is a warning too
    for content, said in (("{", f"{scored_model / TRAINING_LOG_FILE}: not a training log"),
                          (json.dumps(log), "KeyError('dev_f1')")):
        (scored_model / TRAINING_LOG_FILE).write_text(content, encoding="utf-8")
        (scored_model / META_FILE).write_text(json.dumps({k: v for k, v in read_json(scored_model / META_FILE).items()
                                                          if k != "test_scores"}), encoding="utf-8")
        out = tmp_path / "eval"
        result = runner.invoke(app, ["evaluate", str(tiny_dev_file), "--model", str(scored_model), "-o", str(out),
                                     "--record"])
        assert result.exit_code == 0, result.output
        assert "warning: no training curves: " in result.stderr and said in result.stderr
        assert (out / "metrics.json").is_file() and not (out / "training_curves.png").exists()
        assert "dev" in read_json(scored_model / META_FILE)["test_scores"]


@pytest.mark.parametrize("recorded", ["x", [1, 2], None])
def test_evaluate_record_replaces_a_hand_edited_test_scores(recorded, scored_model, tiny_dev_file, tmp_path):
    meta = read_json(scored_model / META_FILE)
    (scored_model / META_FILE).write_text(json.dumps({**meta, "test_scores": recorded}), encoding="utf-8")
    result = runner.invoke(app, ["evaluate", str(tiny_dev_file), "--model", str(scored_model), "-o",
                                 str(tmp_path / "eval"), "--record"])
    assert result.exit_code == 0, result.output
    assert list(read_json(scored_model / META_FILE)["test_scores"]) == ["dev"]


def test_evaluate_an_ensemble_on_two_files_of_one_name(vector_model_dir, refit_run, tiny_dev_file, tmp_path):
    from spacy_aner.training.ensemble import ensemble

    ensemble([vector_model_dir, refit_run.dir], tmp_path / "ens")
    other = tmp_path / "other" / "dev.conll"
    other.parent.mkdir()
    shutil.copy(tiny_dev_file, other)
    result = runner.invoke(app, ["evaluate", str(tiny_dev_file), str(other), "--model", str(tmp_path / "ens"),
                                 "-o", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "eval" / "training_curves.png").read_bytes().startswith(PNG_MAGIC)  # a curve per member
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text(encoding="utf-8"))
    assert list(metrics["files"]) == ["dev", "dev_2"] and metrics["file"] == str(tiny_dev_file)
    assert [f["file"] for f in metrics["files"].values()] == [str(tiny_dev_file), str(other)]
    assert "dev: 8 sentences" in result.stdout and "dev_2: 8 sentences" in result.stdout
    assert {p.name for p in (tmp_path / "eval").glob("confusion_*.png")} == {"confusion_dev.png",
                                                                           "confusion_dev_2.png"}


def test_members_one_scores_and_annotates_as_the_first_member(vector_model_dir, refit_run, tiny_dev_file, tmp_path):
    from spacy_aner.training.ensemble import ensemble

    ensemble([vector_model_dir, refit_run.dir], tmp_path / "ens")
    texts = tmp_path / "texts.txt"
    texts.write_text("محمد يعيش في الرباط\n\nزار أحمد علي القاهرة أمس\n", encoding="utf-8")
    out = {}
    for name, args in {"first": ["--model", str(vector_model_dir)],
                       "members": ["--model", str(tmp_path / "ens"), "--members", "1"]}.items():
        result = runner.invoke(app, ["evaluate", str(tiny_dev_file), "-o", str(tmp_path / name), *args])
        assert result.exit_code == 0, result.output
        metrics = json.loads((tmp_path / name / "metrics.json").read_text(encoding="utf-8"))
        result = runner.invoke(app, ["annotate", str(texts), "-o", str(tmp_path / f"{name}.jsonl"), "--quiet", *args])
        assert result.exit_code == 0, result.output
        out[name] = (metrics["micro"], metrics["members"], (tmp_path / f"{name}.jsonl").read_bytes())
    assert out["members"] == out["first"]
    for command in (["annotate", str(texts)], ["evaluate", str(tiny_dev_file)]):
        result = runner.invoke(app, [*command, "-o", str(tmp_path / "x"), "--model", str(tmp_path / "ens"),
                                     "--members", "3"])
        assert result.exit_code == 1 and "members=3, but the model in" in result.stderr and "has 2 networks" in result.stderr
    result = runner.invoke(app, ["evaluate", str(tiny_dev_file), "-o", str(tmp_path / "x"), "--model",
                                 str(tmp_path / "ens"), "--members", "1", "--record"])
    assert result.exit_code == 1 and "(2 networks): leave out --members" in result.stderr
    assert "test_scores" not in json.loads((tmp_path / "ens" / "meta.json").read_text(encoding="utf-8"))
    result = runner.invoke(app, ["evaluate", str(tiny_dev_file), "-o", str(tmp_path / "x"), "--model",
                                 str(tmp_path / "ens"), "--members", "2", "--record"])
    assert result.exit_code == 0, result.output  # all of its networks: the whole model's scores
    recorded = json.loads((tmp_path / "ens" / "meta.json").read_text(encoding="utf-8"))["test_scores"]
    assert [r["file"] for r in recorded.values()] == [str(tiny_dev_file)]


GOLD_PROBLEMS = {
    "empty": (b"", "no sentences to score"),
    "untagged": ("باريس\nهي\nعاصمة\n".encode(), "malformed line(s) in the gold file"),
    "no_entities": ("باريس O\nهي O\n".encode(), "no gold entities"),
    "bad_utf8": ("باريس B-LOC\n".encode() + b"\xff O\n", "not valid UTF-8"),
    "unknown_tag": ("باريس B-CITY\n".encode(), "unknown tag 'B-CITY'"),
}


def test_evaluate_refuses_gold_files_it_cannot_score_before_loading_the_model(tmp_path):
    """No sentences, no tag column, lost lines: a clear error, never a figure on damaged gold data."""
    good = tmp_path / "good.conll"
    good.write_text("باريس B-LOC\n", encoding="utf-8")
    for name, (content, message) in GOLD_PROBLEMS.items():
        path = tmp_path / f"{name}.conll"
        path.write_bytes(content)
        result = runner.invoke(app, ["evaluate", str(good), str(path), "--model", "/nowhere", "-o",
                                     str(tmp_path / name)])
        assert result.exit_code == 1 and message in result.stderr, (name, result.output)
        assert not (tmp_path / name).exists()
    result = runner.invoke(app, ["evaluate", str(tmp_path / "missing.conll"), "-o", str(tmp_path / "m")])
    assert result.exit_code == 1 and "file not found" in result.stderr
    result = runner.invoke(app, ["evaluate", str(tmp_path), "-o", str(tmp_path / "m")])
    assert result.exit_code == 1 and f"{tmp_path} is a directory (give CoNLL files)" in result.stderr


def test_evaluate_reports_a_broken_model(tiny_dev_file, tiny_model_dir, model_copy, tmp_path):
    result = runner.invoke(app, ["evaluate", str(tiny_dev_file), "--model", str(tmp_path / "nope"),
                                 "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "model directory not found" in result.stderr
    broken = model_copy(tiny_model_dir)
    (broken / "vocab.json").write_text("{", encoding="utf-8")
    result = runner.invoke(app, ["evaluate", str(tiny_dev_file), "--model", str(broken), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and f"{broken / 'vocab.json'}: not valid JSON" in result.stderr
    assert not (tmp_path / "out").exists() and "Traceback" not in result.output


# --------------------------------------------------------------------------- annotate


def random_text(rng: random.Random, max_words: int = 30) -> str:
    seps = [" ", " ", " ", "  ", "\t", "\u00a0", "\u200b", "\x00", ""]
    pool = WORDS + ["😀", "Paris", "،"]
    return "".join(rng.choice(pool) + rng.choice(seps) for _ in range(rng.randint(0, max_words)))


def assert_offsets(record: dict, text: str) -> None:
    for ent in record["entities"]:
        assert text[ent["start"]:ent["end"]] == ent["text"] and ent["label"] in ("PERS", "LOC", "ORG", "MISC")


def test_annotate_help_lists_its_options():
    result = runner.invoke(app, ["annotate", "--help"])
    assert result.exit_code == 0
    for option in ("--output", "--model", "--text-key", "--id-key", "--batch-size", "--n-process",
                   "--skip-invalid", "--label", "--members", "--quiet"):
        assert option in result.output


MAIN_THEN_TORCH = """
import sys
from spacy_aner.cli import main
sys.argv = ["spacy-aner", *sys.argv[1:]]
try:
    main()
except SystemExit as done:
    assert not done.code, done.code
print("torch:", "blocked" if sys.modules.get("torch", 0) is None else "imported" if "torch" in sys.modules else "absent")
"""


def test_inference_commands_run_without_torch_and_others_leave_it_alone(scrambled_model_dir, tmp_path):
    """thinc imports PyTorch whenever it is installed; the console script keeps it out of an
    inference command's process, and only there."""
    (tmp_path / "in.txt").write_text("محمد يعيش في الرباط\n", encoding="utf-8")
    annotate = ["annotate", str(tmp_path / "in.txt"), "-o", str(tmp_path / "out.jsonl"), "-q",
                "--model", str(scrambled_model_dir)]
    for args, expected in ((annotate, "torch: blocked"), (["prepare", "--help"], "torch: absent")):
        done = subprocess.run([sys.executable, "-c", MAIN_THEN_TORCH, *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == expected
    assert json.loads((tmp_path / "out.jsonl").read_text(encoding="utf-8"))["text"] == "محمد يعيش في الرباط"


def test_annotate_stdin_to_stdout(scrambled_model_dir):
    texts = ["محمد يعيش في الرباط", "", "زار أحمد علي القاهرة 😀 أمس"]
    result = runner.invoke(app, ["annotate", "-", "--model", str(scrambled_model_dir), "--quiet"],
                           input="\n".join(texts).encode("utf-8"))
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout_bytes.decode("utf-8").splitlines()]
    assert [r["text"] for r in records] == texts
    for rec in records:
        assert_offsets(rec, rec["text"])
    assert sum(len(r["entities"]) for r in records) > 0
    assert result.stderr == ""  # --quiet: no summary


def test_annotate_writes_scores_and_applies_label_maps(scrambled_model_dir, scrambled_nlp):
    texts = [" ".join(random.Random(i).choice(WORDS) for _ in range(20)) for i in range(8)]
    args = ["annotate", "-", "--model", str(scrambled_model_dir), "--quiet"]
    plain = runner.invoke(app, args, input="\n".join(texts).encode("utf-8"))
    assert plain.exit_code == 0, plain.stderr
    records = [json.loads(line) for line in plain.stdout_bytes.decode("utf-8").splitlines()]
    for rec, doc in zip(records, scrambled_nlp.pipe(texts)):
        scores = doc.spans["aner_lstm"].attrs["scores"]
        assert [(e["label"], e["score"]) for e in rec["entities"]] == [(e.label_, round(p, 4)) for e, p in
                                                                        zip(doc.ents, scores)]
    labels = {e["label"] for r in records for e in r["entities"]}
    assert {"PERS", "MISC"} <= labels
    mapped = runner.invoke(app, args + ["--label", "PERS=PERSON", "--label", "MISC="],
                           input="\n".join(texts).encode("utf-8"))
    assert mapped.exit_code == 0, mapped.stderr
    renamed = [json.loads(line) for line in mapped.stdout_bytes.decode("utf-8").splitlines()]
    want = [[{**e, "label": "PERSON" if e["label"] == "PERS" else e["label"]} for e in r["entities"]
             if e["label"] != "MISC"] for r in records]
    assert [r["entities"] for r in renamed] == want


@pytest.mark.parametrize("options,message", [
    (["PERSON=PER"], "'PERSON' is not a label of this component; it predicts PERS, LOC, ORG, MISC"),
    (["PERS"], "--label 'PERS': give LABEL=NAME"),
    (["=PERSON"], "--label '=PERSON': give LABEL=NAME"),
    (["PERS=A", "PERS=B"], "--label PERS is given twice, as 'A' and 'B'"),
])
def test_annotate_refuses_a_bad_label_option(options, message, scrambled_model_dir, tmp_path):
    (tmp_path / "in.txt").write_text("محمد\n", encoding="utf-8")
    result = runner.invoke(app, ["annotate", str(tmp_path / "in.txt"), "-o", str(tmp_path / "out.jsonl"),
                                 "--model", str(scrambled_model_dir), *(x for o in options for x in ("--label", o))])
    assert result.exit_code == 1 and message in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_annotate_a_jsonl_file_to_a_file(scrambled_model_dir, tmp_path):
    rng = random.Random(2)
    texts = [random_text(rng) for _ in range(30)]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps({"id": i, "text": t}) for i, t in enumerate(texts)) + "\n",
                                       encoding="utf-8")
    out = tmp_path / "sub" / "out.jsonl"
    result = runner.invoke(app, ["annotate", str(tmp_path / "in.jsonl"), "-o", str(out), "--id-key", "id",
                                 "--model", str(scrambled_model_dir), "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == list(range(30)) and all(list(r) == ["id", "entities"] for r in records)
    for rec, text in zip(records, texts):
        assert_offsets(rec, text)
    n = sum(len(r["entities"]) for r in records)
    assert f"30 records (0 errors), {n:,} entities in " in result.stderr and f"-> {out}" in result.stderr


def test_annotate_invalid_utf8_stops_or_is_skipped_with_a_record(scrambled_model_dir, tmp_path):
    (tmp_path / "in.txt").write_bytes("محمد\nعلي\n".encode() + b"caf\xe9 latin-1\n" + "القاهرة\n".encode())
    result = runner.invoke(app, ["annotate", str(tmp_path / "in.txt"), "-o", str(tmp_path / "out.jsonl"),
                                 "--model", str(scrambled_model_dir)])
    assert result.exit_code == 1
    assert f"{tmp_path / 'in.txt'}:3: invalid UTF-8 at byte 3" in result.stderr and "--skip-invalid" in result.stderr
    assert "nothing was written" in result.stderr and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]  # no partial output
    result = runner.invoke(app, ["annotate", str(tmp_path / "in.txt"), "-o", os.devnull,
                                 "--model", str(scrambled_model_dir)])
    assert result.exit_code == 1 and "in.txt:3: invalid UTF-8" in result.stderr
    assert "nothing was written" not in result.stderr  # a device got the records before the line
    result = runner.invoke(app, ["annotate", str(tmp_path / "in.txt"), "-o", str(tmp_path / "out.jsonl"),
                                 "--model", str(scrambled_model_dir), "--skip-invalid"])
    assert result.exit_code == 0, result.output
    assert f"warning: {tmp_path / 'in.txt'}:3: invalid UTF-8 at byte 3" in result.stderr
    assert "4 records (1 errors)" in result.stderr
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r.get("text") for r in records] == ["محمد", "علي", None, "القاهرة"]
    assert records[2]["line"] == 3 and records[2]["entities"] == [] and "invalid UTF-8" in records[2]["error"]


def test_annotate_argument_errors(scrambled_model_dir, tmp_path):
    (tmp_path / "in.txt").write_text("محمد\n", encoding="utf-8")
    result = runner.invoke(app, ["annotate", str(tmp_path / "in.txt"), "--id-key", "id"])
    assert result.exit_code == 1 and "--id-key needs JSONL input" in result.stderr
    result = runner.invoke(app, ["annotate", str(tmp_path / "missing.txt")])
    assert result.exit_code == 1 and "file not found" in result.stderr
    result = runner.invoke(app, ["annotate", str(tmp_path / "in.txt"), "-o", str(tmp_path / "in.txt"),
                                 "--model", str(scrambled_model_dir)])
    assert result.exit_code == 1 and "is the input file" in result.stderr
    assert (tmp_path / "in.txt").read_text(encoding="utf-8") == "محمد\n"
    result = runner.invoke(app, ["annotate", str(tmp_path / "in.txt"), "-o", str(tmp_path), "--model", "/nowhere"])
    assert result.exit_code == 1 and "it is a directory" in result.stderr  # refused before the model loads
    result = runner.invoke(app, ["annotate", str(tmp_path), "--model", "/nowhere"])
    assert result.exit_code == 1 and f"cannot read {tmp_path}: it is a directory" in result.stderr
    for output, problem in (("", "the output path is empty"), (f"{tmp_path}/new/", "names a folder"),
                            (f"{tmp_path}/in.txt/out.jsonl", "in.txt is a file, not a folder")):
        result = runner.invoke(app, ["annotate", str(tmp_path / "in.txt"), "-o", output, "--model", "/nowhere"])
        assert result.exit_code == 1 and problem in result.stderr, result.stderr
    assert not (tmp_path / "new").exists()
    (tmp_path / "in.jsonl").write_text('{"text": "محمد", "line": 3}\n', encoding="utf-8")
    result = runner.invoke(app, ["annotate", str(tmp_path / "in.jsonl"), "--id-key", "line", "-o",
                                 str(tmp_path / "out.jsonl"), "--model", str(scrambled_model_dir)])
    assert result.exit_code == 1 and "the id key 'line' is one the output records use" in result.stderr
    assert not (tmp_path / "out.jsonl").exists()
    result = runner.invoke(app, ["annotate", str(tmp_path / "in.txt"), "--batch-size", "0"])
    assert result.exit_code == 2


def _broken_models(src: Path, root: Path) -> dict:
    models = {}

    def copy(name: str) -> Path:
        models[name] = root / name
        shutil.copytree(src, models[name])
        return models[name]

    for kind, name in (("graph", GRAPH_FILE), ("vectors", VECTORS_FILE)):
        path = copy(f"truncated-{kind}") / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
        path = copy(f"random-{kind}") / name
        path.write_bytes(random.Random(3).randbytes(path.stat().st_size))
        (copy(f"no-{kind}") / name).unlink()
    (copy("no-config") / "config.json").unlink()
    cfg = copy("wrong-version") / "config.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "format_version": 99}))
    (copy("bad-vocab") / "vocab.json").write_text('{"words": ["<pad>"', encoding="utf-8")
    models["missing-dir"] = root / "does-not-exist"
    return models


BROKEN = {
    "truncated-graph": "{dir}/tagger.onnx: not a usable ONNX graph",
    "random-graph": "{dir}/tagger.onnx: not a usable ONNX graph",
    "no-graph": "missing model file: {dir}/tagger.onnx",
    "truncated-vectors": "{dir}/word_vectors.npy: unreadable or truncated array file",
    "random-vectors": "{dir}/word_vectors.npy: unreadable or truncated array file",
    "no-vectors": "missing model file: {dir}/word_vectors.npy",
    "no-config": "missing model file: {dir}/config.json",
    "wrong-version": "config.json: model format version 99",
    "bad-vocab": "vocab.json: not valid JSON",
    "missing-dir": "model directory not found: {dir}",
}


@pytest.fixture(scope="module")
def broken_models(tiny_model_dir, tmp_path_factory) -> dict:
    return _broken_models(tiny_model_dir, tmp_path_factory.mktemp("broken_models"))


@pytest.mark.parametrize("kind", list(BROKEN))
def test_annotate_with_a_broken_model_is_a_clear_error(broken_models, kind, tmp_path):
    (tmp_path / "in.txt").write_text("محمد\n", encoding="utf-8")
    result = runner.invoke(app, ["annotate", str(tmp_path / "in.txt"), "-o", str(tmp_path / "out.jsonl"),
                                 "--model", str(broken_models[kind])])
    assert result.exit_code == 1
    assert BROKEN[kind].format(dir=broken_models[kind]) in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("kind", ["truncated-graph", "truncated-vectors"])
def test_annotate_with_two_processes_reports_a_broken_model_before_any_input(broken_models, kind, tmp_path):
    """The model loads in this process before workers start: the same message as a load here."""
    from spacy_aner.core.config import ModelLoadError
    from spacy_aner.core.tagger import Tagger

    (tmp_path / "in.txt").write_text("محمد\n", encoding="utf-8")
    result = runner.invoke(app, ["annotate", str(tmp_path / "in.txt"), "-o", str(tmp_path / "out.jsonl"),
                                 "--n-process", "2", "--model", str(broken_models[kind])])
    assert result.exit_code == 1
    with pytest.raises(ModelLoadError) as here:
        Tagger.load(broken_models[kind])
    assert f"error: {here.value}" in result.stderr
    assert BROKEN[kind].format(dir=broken_models[kind]) in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "out.jsonl").exists()


def _annotate_subprocess(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "spacy_aner", "annotate", *map(str, args)], capture_output=True,
                          cwd=cwd, env=env, timeout=600)


def test_annotate_with_stdout_appended_to_its_input_or_stderr_closed(scrambled_model_dir, tmp_path):
    """``annotate in.txt >> in.txt`` read its own records back for ever; with stderr closed
    (``2>&-``) and no -q it crashed on the progress bar."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    (tmp_path / "in.txt").write_text("محمد في الرباط\n" * 20, encoding="utf-8")
    with open(tmp_path / "in.txt", "ab") as out:
        proc = subprocess.run([sys.executable, "-m", "spacy_aner", "annotate", "in.txt", "--model", scrambled_model_dir],
                              stdout=out, stderr=subprocess.PIPE, cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 1 and b"the output (stdout) is the input file in.txt" in proc.stderr
    with open(tmp_path / "in.txt", "rb") as inp, open(tmp_path / "in.txt", "ab") as out:  # `- < in.txt >> in.txt`
        proc = subprocess.run([sys.executable, "-m", "spacy_aner", "annotate", "-", "--model", scrambled_model_dir],
                              stdin=inp, stdout=out, stderr=subprocess.PIPE, cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 1 and b"the output (stdout) is the input file (stdin)" in proc.stderr
    assert (tmp_path / "in.txt").read_text(encoding="utf-8") == "محمد في الرباط\n" * 20
    with open(os.devnull, "rb") as inp, open(os.devnull, "wb") as out:  # one device both ways: not a loop
        proc = subprocess.run([sys.executable, "-m", "spacy_aner", "annotate", "-", "--model", scrambled_model_dir],
                              stdin=inp, stdout=out, stderr=subprocess.PIPE, cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "spacy_aner", "annotate", "in.txt", "-o", "out.jsonl", "--model",
                           scrambled_model_dir], stdout=subprocess.PIPE, cwd=tmp_path, env=env, timeout=600,
                          preexec_fn=lambda: os.close(2))  # stderr closed in the child
    assert proc.returncode == 0 and len((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()) == 20


@pytest.mark.slow
def test_annotate_with_one_and_two_processes_writes_identical_bytes(scrambled_model_dir, tmp_path):
    rng = random.Random(2)
    lines = [json.dumps({"id": f"doc-{i}", "text": random_text(rng), "other": i}, ensure_ascii=i % 2 == 0)
             for i in range(200)]
    lines[5] = json.dumps({"id": "doc-5", "text": "محمد \ud800 علي"})  # lone surrogate: an error record
    lines[9] = ""  # blank line: an empty document
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    outputs = {}
    for n in (1, 2):
        proc = _annotate_subprocess("in.jsonl", "-o", f"out{n}.jsonl", "--model", scrambled_model_dir,
                                    "--id-key", "id", "--batch-size", "8", "--n-process", n, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr.decode()
        assert "in.jsonl:6: not valid Unicode: lone surrogate U+D800 at offset 5" in proc.stderr.decode()
        outputs[n] = (tmp_path / f"out{n}.jsonl").read_bytes()
    assert outputs[1] == outputs[2]
    records = [json.loads(line) for line in outputs[1].decode("utf-8").splitlines()]
    assert len(records) == len(lines)
    assert records[5] == {"line": 6, "id": "doc-5", "entities": [],
                          "error": "not valid Unicode: lone surrogate U+D800 at offset 5 (cannot be tokenised)"}
    assert records[9] == {"id": None, "entities": []}
    assert sum(len(r["entities"]) for r in records) > 200


def _children(pid: int) -> list:
    """Process ids whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _workers(pid: int) -> list:
    """The children of ``pid`` forked from it (same command line): its worker processes, not a
    helper some library runs for a moment."""
    def cmdline(p: int) -> bytes:
        try:
            return Path(f"/proc/{p}/cmdline").read_bytes()
        except OSError:
            return b""

    own = cmdline(pid)
    return [c for c in _children(pid) if own and cmdline(c) == own]


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("n_process", [1, 2])
def test_annotate_from_a_pipe_writes_each_record_soon_after_its_line(scrambled_model_dir, tmp_path, n_process):
    """A line from a pipe fed now and then is annotated and written within moments, not when a
    batch of 256 has come; with two processes the workers fork while a thread waits on stdin."""
    import select

    lines = ["محمد يعيش في الرباط", "زار أحمد باريس"]
    proc = subprocess.Popen([sys.executable, "-m", "spacy_aner", "annotate", "-", "-q", "--model",
                             str(scrambled_model_dir), "--n-process", str(n_process)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out = []
        for line in lines:
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 120)  # the input stays open meanwhile
            assert ready, "no record for a line the input has given"
            out.append(proc.stdout.readline())
        proc.stdin.close()
        assert proc.stdout.read() == b"" and proc.wait(timeout=60) == 0, proc.stderr.read().decode()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["annotate", str(tmp_path / "in.txt"), "-o", str(tmp_path / "out.jsonl"), "-q",
                                 "--model", str(scrambled_model_dir)])
    assert result.exit_code == 0 and b"".join(out) == (tmp_path / "out.jsonl").read_bytes()


@pytest.mark.parametrize("n_process", [1, 2])
def test_annotate_stopped_while_a_pipe_is_silent_exits_cleanly(scrambled_model_dir, n_process):
    """SIGTERM while the thread reading stdin waits on a silent pipe (its first record is out,
    so the workers have forked): exit 143, no "Fatal Python error" from an interpreter that
    cannot take stdin's lock at exit."""
    import select
    import signal

    proc = subprocess.Popen([sys.executable, "-m", "spacy_aner", "annotate", "-", "-q", "--model",
                             str(scrambled_model_dir), "--n-process", str(n_process)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write("محمد يعيش في الرباط\n".encode())
        proc.stdin.flush()
        assert select.select([proc.stdout], [], [], 120)[0] and proc.stdout.readline().startswith(b'{"text"')
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
        err = proc.stderr.read().decode()
        assert "Fatal Python error" not in err and "Traceback" not in err, err[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("how", ["SIGTERM", "SIGHUP", "SIGKILL"])
def test_annotate_killed_leaves_no_worker_and_no_file(scrambled_model_dir, tmp_path, how):
    """SIGTERM and SIGHUP unwind (exit 143 and 129, no output, no temporary file); after SIGKILL
    the workers notice and exit."""
    import signal
    import time

    rng = random.Random(4)
    (tmp_path / "in.txt").write_text("\n".join(random_text(rng) for _ in range(200_000)) + "\n", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "spacy_aner", "annotate", "in.txt", "-o", "out.jsonl", "-q",
                             "--model", str(scrambled_model_dir), "--n-process", "2", "--batch-size", "8"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(_children(proc.pid)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = _children(proc.pid)
        assert len(workers) >= 2 and proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(1.0)  # the workers are annotating
        proc.send_signal(getattr(signal, how))
        code = proc.wait(timeout=120)
        deadline = time.monotonic() + 30
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(map(_alive, workers))
        assert code == {"SIGTERM": 143, "SIGHUP": 129, "SIGKILL": -9}[how], proc.stderr.read().decode()[-2000:]
        if how != "SIGKILL":
            assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_annotate_says_so_when_a_worker_dies(scrambled_model_dir, tmp_path):
    import signal
    import time

    rng = random.Random(5)
    (tmp_path / "in.txt").write_text("\n".join(random_text(rng) for _ in range(200_000)) + "\n", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "spacy_aner", "annotate", "in.txt", "-o", "out.jsonl", "-q",
                             "--model", str(scrambled_model_dir), "--n-process", "2", "--batch-size", "8"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(_workers(proc.pid)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        victim = _workers(proc.pid)[0]
        os.kill(victim, signal.SIGKILL)  # as the kernel's OOM killer would
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail(f"annotate went on after worker {victim} was killed; its children now: {_children(proc.pid)}")
        assert proc.returncode == 1
        assert "error: a worker process died (killed, or out of memory?); nothing was written" in err
        assert "Traceback" not in err and sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]
    finally:
        if proc.poll() is None:
            proc.kill()
