"""Batch annotation (:mod:`spacy_aner.annotate`) and the ``spacy-aner annotate`` command.

The command runs end to end in a subprocess (``python -m spacy_aner annotate``), with 1
and 2 processes; quicker checks of the error paths use typer's CliRunner in-process.
The model is the session's tiny model with a scrambled output layer, so that most words
come out as entities and every offset check has something to check.
"""
from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import spacy_aner
from spacy_aner.annotate import (
    InputRecord, InvalidInputError, annotate_records, annotate_texts, dumps_record, entity_records, read_records,
    resolve_text_key, write_jsonl,
)
from spacy_aner.cli import app
from spacy_aner.model import ModelLoadError

runner = CliRunner()

WORDS = ("محمد يعيش في الرباط باريس هي عاصمة فرنسا زار أحمد علي القاهرة أمس أعلنت الأمم المتحدة عن خطة "
         "جديدة فاز فريق ريال مدريد بكأس العالم قال الرئيس حسني مبارك بيروت وصلت سارة إلى لندن مع شركة "
         "سوني Barack Obama Paris 2009 ، . ؟ 😀 \u200f \ufeff").split(" ")


def random_text(rng: random.Random, max_words: int = 30) -> str:
    seps = [" ", " ", " ", "  ", "\t", "\u00a0", "\u200b", "\r", "\x00", ""]
    n = rng.randint(0, max_words)
    return "".join(rng.choice(WORDS) + rng.choice(seps) for _ in range(n))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def nlp(scrambled_model_dir):
    nlp = spacy_aner.load(scrambled_model_dir)
    nlp.get_pipe("aner_lstm").tagger
    return nlp


def run_cli(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "spacy_aner", "annotate", *map(str, args)], input=stdin,
                          capture_output=True, cwd=cwd, env=env, timeout=600)


def read_jsonl(path: Path) -> list:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n")[:-1]]


def assert_offsets(record: dict, text: str) -> None:
    for ent in record["entities"]:
        assert text[ent["start"]:ent["end"]] == ent["text"]
        assert ent["text"] and not ent["text"][0].isspace() and not ent["text"][-1].isspace()
        assert ent["label"] in ("PERS", "LOC", "ORG", "MISC")


# --------------------------------------------------------------------------- reading


def test_read_records_plain_text_keeps_every_line_as_is():
    data = "\ufeffأول\n\nثانٍ\r\n\u2028 مع\r داخل\x0b\x0c\x85\n   \nأخير بلا سطر جديد".encode("utf-8")
    recs = list(read_records(io.BytesIO(data)))
    assert [r.text for r in recs] == ["أول", "", "ثانٍ", "\u2028 مع\r داخل\x0b\x0c\x85", "   ", "أخير بلا سطر جديد"]
    assert [r.line for r in recs] == [1, 2, 3, 4, 5, 6]
    assert all(r.error is None for r in recs)
    assert list(read_records(io.BytesIO(b""))) == []
    assert [r.text for r in read_records(io.BytesIO(b"\n"))] == [""]
    # a byte-order mark only counts at the very start of the input
    assert [r.text for r in read_records(io.BytesIO("a\n\ufeffb".encode()))] == ["a", "\ufeffb"]


def test_read_records_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes("سطر\nجيد\n".encode() + b"\xd8\xa3\xff\xfe\n" + "بعده\n".encode() + b"\xed\xa0\x80\n")
    with pytest.raises(InvalidInputError, match=r"corpus\.txt:3: invalid UTF-8 at byte 2"):
        list(read_records(path))
    recs = list(read_records(path, skip_invalid=True))
    assert [r.line for r in recs] == [1, 2, 3, 4, 5]
    assert [r.text for r in recs] == ["سطر", "جيد", None, "بعده", None]
    assert "invalid UTF-8" in recs[2].error and "invalid UTF-8" in recs[4].error  # encoded surrogate too


def test_read_records_jsonl():
    lines = [
        json.dumps({"id": "a", "text": "محمد"}, ensure_ascii=False),
        "",
        json.dumps({"id": 2, "text": "\ud800 x"}),  # a lone surrogate: valid JSON, not text
        "not json",
        "[1, 2]",
        json.dumps({"id": 5}),
        json.dumps({"id": 6, "text": None}),
        json.dumps({"text": "no id"}),
    ]
    data = "\n".join(lines).encode("utf-8")
    with pytest.raises(InvalidInputError, match=r":4: invalid JSON"):
        list(read_records(io.BytesIO(data), "text", "id"))
    recs = list(read_records(io.BytesIO(data), "text", "id", skip_invalid=True))
    assert len(recs) == len(lines)
    assert (recs[0].text, recs[0].id, recs[0].error) == ("محمد", "a", None)
    assert (recs[1].text, recs[1].error) == ("", None)
    assert (recs[2].text, recs[2].id, recs[2].error) == ("\ud800 x", 2, None)  # an annotation error, later
    assert "invalid JSON" in recs[3].error
    assert "expected a JSON object" in recs[4].error
    assert "no 'text' key" in recs[5].error and recs[5].id == 5
    assert "'text' is a NoneType" in recs[6].error and recs[6].id == 6
    assert "no 'id' key" in recs[7].error
    with pytest.raises(ValueError, match="id key needs JSONL"):
        list(read_records(io.BytesIO(b"x"), None, "id"))


def test_resolve_text_key():
    assert resolve_text_key("a.jsonl", None) == "text"
    assert resolve_text_key("a.NDJSON", None) == "text"
    assert resolve_text_key("a.txt", None) is None
    assert resolve_text_key("a.txt", "body") == "body"
    assert resolve_text_key("-", None) is None


def test_dumps_record_is_utf8_and_survives_lone_surrogates():
    assert dumps_record({"text": "محمد 😀", "entities": []}) == '{"text":"محمد 😀","entities":[]}\n'.encode()
    breaks = "a\nb\rc\x0bd\x0ce\x1cf\x1dg\x1eh\x85i\u2028j\u2029k"
    line = dumps_record({"text": breaks})
    assert len(line.decode("utf-8").splitlines()) == 1 and json.loads(line) == {"text": breaks}
    line = dumps_record({"id": "\ud800", "entities": []})
    assert json.loads(line) == {"id": "\ud800", "entities": []}
    out = io.BytesIO()
    assert write_jsonl([{"a": 1}, {"b": "ب"}], out) == 2
    assert out.getvalue().decode("utf-8").splitlines() == ['{"a":1}', '{"b":"ب"}']


# --------------------------------------------------------------------------- annotating


def test_annotate_records_one_output_per_input_in_order(nlp):
    recs = [InputRecord(1, "محمد في الرباط", "a"), InputRecord(2, None, "b", error="invalid UTF-8 at byte 0"),
            InputRecord(3, "\udc80", "c"), InputRecord(4, "", None), InputRecord(5, "علي", "e")]
    seen = []
    out = list(annotate_records(nlp, recs, id_key="id", batch_size=2, on_error=lambda r, p: seen.append(r.line)))
    assert [list(o) for o in out] == [["id", "entities"], ["line", "id", "error", "entities"],
                                      ["line", "id", "error", "entities"], ["id", "entities"], ["id", "entities"]]
    assert out[0] == {"id": "a", "entities": entity_records(nlp("محمد في الرباط"))}
    assert out[1] == {"line": 2, "id": "b", "error": "invalid UTF-8 at byte 0", "entities": []}
    assert "lone surrogate U+DC80 at offset 0" in out[2]["error"] and out[2]["line"] == 3
    assert out[3] == {"id": None, "entities": []}
    assert seen == [2, 3]
    plain = list(annotate_records(nlp, recs[:1]))
    assert plain == [{"text": "محمد في الرباط", "entities": out[0]["entities"]}]


def test_memory_zones_forget_the_words_of_each_chunk(nlp):
    """spaCy interns every new word; the chunks' memory zones give that memory back."""
    rng = random.Random(3)
    texts = [" ".join("".join(rng.choice("ابتثجحخدذرزسشصضطظعغفقكلمنهوي") for _ in range(8)) for _ in range(20))
             for _ in range(60)]
    before = len(nlp.vocab.strings)
    small = list(annotate_texts(nlp, texts, batch_size=4, chunk_chars=200))  # a zone every 4 documents
    one = list(annotate_texts(nlp, texts, batch_size=4, chunk_chars=10**9))  # a single zone
    assert len(nlp.vocab.strings) == before
    assert texts[0].split()[0] not in nlp.vocab.strings
    with nlp.memory_zone():
        assert small == one == [{"entities": entity_records(d)} for d in nlp.pipe(texts, batch_size=4)]


def test_each_chunk_gets_its_own_memory_zone(nlp, monkeypatch):
    """Chunks end on batch boundaries once they hold chunk_chars; each runs in a zone of its own."""
    zones = []
    real = nlp.memory_zone

    def counting(*args, **kwargs):
        zones.append(len(zones))
        return real(*args, **kwargs)

    monkeypatch.setattr(nlp, "memory_zone", counting)
    texts = ["محمد في الرباط"] * 40  # 14 characters each: 4 texts (one batch) pass 50 characters
    records = list(annotate_texts(nlp, texts, batch_size=4, chunk_chars=50))
    assert len(records) == 40 and len(zones) == 10
    zones.clear()
    list(annotate_texts(nlp, texts, batch_size=4, chunk_chars=10**9))
    assert len(zones) == 1


def test_annotate_texts_two_processes_equal_one(nlp):
    """nlp.pipe(n_process=2) through annotate_texts: same records, same order, even with the network
    already loaded in this process (it is detached while the workers start, then put back)."""
    rng = random.Random(11)
    texts = [random_text(rng) for _ in range(150)]
    texts[7], texts[40], texts[149] = "\ud800", "", "x\udfff"
    tagger = nlp.get_pipe("aner_lstm").tagger
    one = list(annotate_texts(nlp, texts, batch_size=8, n_process=1))
    chunk = sum(map(len, texts)) * 2 // 3
    two = list(annotate_texts(nlp, texts, batch_size=8, n_process=2, chunk_chars=chunk))  # 2 chunks, 2 pools
    assert two == one
    assert nlp.get_pipe("aner_lstm")._tagger is tagger
    assert "error" in one[7] and "error" in one[149] and one[40] == {"entities": []}
    assert sum(len(r["entities"]) for r in one) > 100
    for text, rec in zip(texts, one):
        assert_offsets(rec, text)


# --------------------------------------------------------------------------- the command, end to end


def test_cli_plain_text_with_empty_lines(scrambled_model_dir, tmp_path):
    rng = random.Random(1)
    texts = [random_text(rng).rstrip("\r") for _ in range(60)]  # a final \r would be read as CRLF
    texts[0] = texts[10] = texts[59] = ""
    texts[20] = "\r \u2028 مع\x0b\x0c\x85"
    (tmp_path / "in.txt").write_bytes(("\n".join(texts) + "\n").encode("utf-8"))
    proc = run_cli("in.txt", "--output", "out/annotated.jsonl", "--model", scrambled_model_dir, "--batch-size", "16",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "60 records (0 errors)" in proc.stderr.decode()
    records = read_jsonl(tmp_path / "out" / "annotated.jsonl")
    assert len(records) == len(texts)
    assert [r["text"] for r in records] == texts
    for rec in records:
        assert_offsets(rec, rec["text"])
    assert records[0] == records[10] == records[59] == {"text": "", "entities": []}
    assert sum(len(r["entities"]) for r in records) > 50


def test_cli_jsonl_one_and_two_processes_write_identical_bytes(scrambled_model_dir, tmp_path):
    rng = random.Random(2)
    lines = [json.dumps({"id": f"doc-{i}", "text": random_text(rng), "other": i}, ensure_ascii=i % 2 == 0)
             for i in range(200)]
    lines[5] = json.dumps({"id": "doc-5", "text": "محمد \ud800 علي"})  # lone surrogate: an error record
    lines[9] = ""  # blank line: an empty document
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    outputs = {}
    for n in (1, 2):
        proc = run_cli("in.jsonl", "-o", f"out{n}.jsonl", "--model", scrambled_model_dir, "--text-key", "text",
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
    texts = {json.loads(line)["id"]: json.loads(line)["text"] for line in lines if line and "\\ud800" not in line}
    for rec in records:
        if rec.get("id") in texts:
            assert list(rec) == ["id", "entities"]
            assert_offsets(rec, texts[rec["id"]])
    assert sum(len(r["entities"]) for r in records) > 200


def test_cli_stdin_to_stdout(scrambled_model_dir):
    texts = ["محمد يعيش في الرباط", "", "زار أحمد علي القاهرة 😀 أمس"]
    result = runner.invoke(app, ["annotate", "-", "--model", str(scrambled_model_dir), "--quiet"],
                           input="\n".join(texts).encode("utf-8"))
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout_bytes.decode("utf-8").splitlines()]
    assert [r["text"] for r in records] == texts
    for rec in records:
        assert_offsets(rec, rec["text"])
    assert "records" not in result.stderr  # --quiet: no summary


def test_cli_invalid_utf8_stops_or_is_skipped_with_a_record(scrambled_model_dir, tmp_path):
    (tmp_path / "in.txt").write_bytes("محمد\nعلي\n".encode() + b"caf\xe9 latin-1\n" + "القاهرة\n".encode())
    result = runner.invoke(app, ["annotate", str(tmp_path / "in.txt"), "-o", str(tmp_path / "out.jsonl"),
                                 "--model", str(scrambled_model_dir)])
    assert result.exit_code == 1
    assert f"{tmp_path / 'in.txt'}:3: invalid UTF-8 at byte 3" in result.stderr and "--skip-invalid" in result.stderr
    assert "Traceback" not in result.output
    assert not list(tmp_path.glob("*.jsonl")) and not list(tmp_path.glob(".*tmp"))  # no partial output

    proc = run_cli("in.txt", "-o", "out.jsonl", "--model", scrambled_model_dir, "--skip-invalid", cwd=tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "warning: in.txt:3: invalid UTF-8 at byte 3" in err
    assert "4 records (1 errors)" in err
    records = read_jsonl(tmp_path / "out.jsonl")
    assert len(records) == 4
    assert records[2]["line"] == 3 and records[2]["entities"] == [] and "invalid UTF-8" in records[2]["error"]
    assert [r.get("text") for r in records] == ["محمد", "علي", None, "القاهرة"]


# --------------------------------------------------------------------------- broken models


def _broken_models(src: Path, root: Path) -> dict:
    models = {}

    def copy(name: str) -> Path:
        dst = root / name
        shutil.copytree(src, dst)
        models[name] = dst
        return dst

    weights = copy("truncated") / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    (copy("no-config") / "config.json").unlink()
    (copy("no-weights") / "model.weights.h5").unlink()
    cfg = copy("wrong-version") / "config.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "format_version": 99}))
    (copy("bad-vocab") / "vocab.json").write_text('{"words": ["<pad>"', encoding="utf-8")
    models["missing-dir"] = root / "does-not-exist"
    return models


EXPECTED = {
    "truncated": "model.weights.h5: unreadable or truncated weights file",
    "no-config": "missing model file: {dir}/config.json",
    "no-weights": "missing model file: {dir}/model.weights.h5",
    "wrong-version": "config.json: model format version 99",
    "bad-vocab": "vocab.json: not valid JSON",
    "missing-dir": "model directory not found: {dir}",
}


@pytest.fixture(scope="module")
def broken_models(scrambled_model_dir, tmp_path_factory) -> dict:
    return _broken_models(scrambled_model_dir, tmp_path_factory.mktemp("broken_models"))


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_cli_broken_model_is_a_clear_error(broken_models, kind, tmp_path):
    (tmp_path / "in.txt").write_text("محمد\n", encoding="utf-8")
    result = runner.invoke(app, ["annotate", str(tmp_path / "in.txt"), "-o", str(tmp_path / "out.jsonl"),
                                 "--model", str(broken_models[kind])])
    assert result.exit_code == 1
    assert EXPECTED[kind].format(dir=broken_models[kind]) in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_cli_broken_model_with_two_processes(broken_models, tmp_path):
    """With --n-process 2 the model is checked in a subprocess: the same clear error."""
    (tmp_path / "in.txt").write_text("محمد\n", encoding="utf-8")
    result = runner.invoke(app, ["annotate", str(tmp_path / "in.txt"), "--n-process", "2",
                                 "--model", str(broken_models["truncated"])])
    assert result.exit_code == 1
    assert f"{broken_models['truncated']}/model.weights.h5: unreadable or truncated" in result.stderr


@pytest.mark.parametrize("kind", ["truncated", "wrong-version", "no-weights"])
def test_spacy_load_of_a_saved_pipeline_names_the_broken_file(nlp, kind, tmp_path):
    """A pipeline saved with nlp.to_disk whose model file is broken fails in spacy.load, naming it."""
    import spacy

    nlp.to_disk(tmp_path / "pipeline")
    model = tmp_path / "pipeline" / "aner_lstm"
    if kind == "truncated":
        weights = model / "model.weights.h5"
        weights.write_bytes(weights.read_bytes()[:2000])
        expected = f"{weights}: unreadable or truncated weights file"
    elif kind == "wrong-version":
        cfg = model / "config.json"
        cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "format_version": 1}))
        expected = f"{cfg}: model format version 1"
    else:
        (model / "model.weights.h5").unlink()
        expected = f"missing model file: {model / 'model.weights.h5'}"
    with pytest.raises(ModelLoadError) as info:
        spacy.load(tmp_path / "pipeline")
    assert expected in str(info.value)


def test_cli_argument_errors(scrambled_model_dir, tmp_path):
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
    result = runner.invoke(app, ["annotate", "--help"])
    assert result.exit_code == 0
    for option in ("--output", "--model", "--text-key", "--id-key", "--batch-size", "--n-process",
                   "--skip-invalid", "--quiet"):
        assert option in result.output
