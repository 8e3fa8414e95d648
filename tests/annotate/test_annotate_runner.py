"""spacy_aner.annotate.runner: texts and records through the pipeline, in order, errors as records.

The model is the session's scrambled tiny model, so that most words come out as entities
and every offset check has something to check.
"""
from __future__ import annotations

import json
import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor

import pytest
from aner_support import WORDS

from spacy_aner.annotate.records import PAUSE, InputRecord, InvalidInputError, read_records
from spacy_aner.annotate.runner import (
    MAX_DOC_CHARS,
    AnnotateStats,
    annotate_file,
    annotate_records,
    annotate_texts,
    entity_records,
    load_pipeline,
    text_problem,
)
from spacy_aner.annotate.paths import output_descriptor
from spacy_aner.core.config import GRAPH_FILE, VECTORS_FILE, ModelLoadError
from spacy_aner.core.tagger import usable_cores

MIXED = WORDS + ["Barack", "Obama", "2009", "،", ".", "؟", "😀", "\u200f", "\ufeff"]


def random_text(rng: random.Random, max_words: int = 30) -> str:
    seps = [" ", " ", " ", "  ", "\t", "\u00a0", "\u200b", "\r", "\x00", ""]
    return "".join(rng.choice(MIXED) + rng.choice(seps) for _ in range(rng.randint(0, max_words)))


def assert_offsets(record: dict, text: str) -> None:
    for ent in record["entities"]:
        assert text[ent["start"]:ent["end"]] == ent["text"]
        assert ent["text"] and not ent["text"][0].isspace() and not ent["text"][-1].isspace()
        assert ent["label"] in ("PERS", "LOC", "ORG", "MISC")


@pytest.fixture(scope="module")
def nlp(scrambled_nlp):
    return scrambled_nlp


def test_entity_records_are_character_offsets(nlp):
    text = "قال محمد علي في الرباط"
    doc = nlp(text)
    records = entity_records(doc)
    scores = doc.spans["aner_lstm"].attrs["scores"]
    assert records == [{"start": e.start_char, "end": e.end_char, "label": e.label_, "text": e.text,
                        "score": round(p, 4)} for e, p in zip(doc.ents, scores)]
    assert records and all(0 <= r["score"] <= 1 for r in records)
    assert_offsets({"entities": records}, text)


def test_entity_records_of_entities_another_component_set(nlp):
    """With overwrite_ents False an entity_ruler's entity has no score: null in the record."""
    import spacy

    pipeline = spacy.blank("ar", config={"nlp": {"tokenizer": {"@tokenizers": "spacy_aner.CamelTokenizer.v1"}}})
    pipeline.add_pipe("entity_ruler").add_patterns([{"label": "CITY", "pattern": "الرباط"}])
    model = str(nlp.get_pipe("aner_lstm").model_path)
    pipeline.add_pipe("aner_lstm", config={"model": model, "overwrite_ents": False})
    doc = pipeline("قال محمد علي في الرباط")
    records = entity_records(doc)
    assert {"start": 16, "end": 22, "label": "CITY", "text": "الرباط", "score": None} in records
    assert len(records) == len(doc.ents) > 1
    assert all(r["score"] is not None for r in records if r["label"] != "CITY")
    assert entity_records(doc, key="elsewhere") == [{**r, "score": None} for r in records]


def test_text_problem():
    assert text_problem("محمد") is None and text_problem("") is None
    assert text_problem(None) == "expected a str, got NoneType"
    assert text_problem(b"x") == "expected a str, got bytes"
    assert "longer than nlp.max_length (3)" in text_problem("abcd", max_length=3)
    assert text_problem("abc", max_length=3) is None
    assert text_problem("a\udc80") == ("not valid Unicode: lone surrogate U+DC80 at offset 1 (cannot be tokenised)")


def test_annotate_texts_refuses_bad_settings(nlp):
    with pytest.raises(ValueError, match="batch_size"):
        list(annotate_texts(nlp, ["x"], batch_size=0))
    with pytest.raises(ValueError, match="n_process"):
        list(annotate_texts(nlp, ["x"], n_process=0))


def test_annotate_texts_reads_its_input_lazily(nlp):
    seen = []

    def texts():
        for i in range(100):
            seen.append(i)
            yield "محمد في الرباط"

    results = annotate_texts(nlp, texts(), batch_size=4, chunk_chars=30)
    first = next(results)
    assert first == {"entities": entity_records(nlp("محمد في الرباط"))}
    assert len(seen) < 20  # a few batches ahead, not the whole input
    results.close()


@pytest.mark.parametrize("n_process", [1, 2])
def test_a_run_of_invalid_texts_is_read_lazily_too(nlp, n_process):
    """Error records leave in step with the input: a long run of texts that cannot be
    annotated is never held in memory waiting for the next valid one."""
    seen = []

    def texts():
        yield "محمد في الرباط"
        for i in range(10_000):
            seen.append(i)
            yield None if i % 2 else "x" * 50
        yield "علي"

    max_length, nlp.max_length = nlp.max_length, 40
    try:
        results = annotate_texts(nlp, texts(), batch_size=4, n_process=n_process)
        assert next(results) == {"entities": entity_records(nlp("محمد في الرباط"))}
        assert next(results)["error"].startswith("document of 50 characters is longer than nlp.max_length")
        assert next(results) == {"error": "expected a str, got NoneType", "entities": []}
        assert len(seen) < 100
        rest = list(results)
    finally:
        nlp.max_length = max_length
    assert len(rest) == 10_000 - 2 + 1 and all("error" in r for r in rest[:-1])
    assert rest[-1] == {"entities": entity_records(nlp("علي"))}


@pytest.mark.parametrize("n_process", [1, 2])
def test_a_pause_ends_the_batch_so_its_records_come_out_before_more_is_read(nlp, n_process):
    texts = ["محمد في الرباط", "علي", "قال أحمد في باريس"]
    read = []

    def source():
        for i, text in enumerate(texts):
            read.append(i)
            yield text
            if i == 1:
                yield PAUSE  # with_pauses: nothing more came for a while

    results = annotate_texts(nlp, source(), batch_size=256, n_process=n_process)
    first, second = next(results), next(results)
    assert read == [0, 1]
    assert [first, second, *results] == list(annotate_texts(nlp, texts, batch_size=256))
    records = [InputRecord(1, "علي"), PAUSE, InputRecord(2, "قال أحمد")]
    assert list(annotate_records(nlp, records, n_process=n_process)) == \
        [{"text": t, "entities": entity_records(nlp(t))} for t in ("علي", "قال أحمد")]


@pytest.mark.parametrize("n_process", [1, 2])
def test_pauses_anywhere_leave_the_records_as_they_are(nlp, n_process):
    texts = ["محمد في الرباط", None, "علي", "", "قال أحمد", "x" * 50, "في باريس"]
    paused = [PAUSE, PAUSE, texts[0], texts[1], PAUSE, texts[2], texts[3], PAUSE, PAUSE, *texts[4:], PAUSE]
    max_length, nlp.max_length = nlp.max_length, 40
    try:
        expected = list(annotate_texts(nlp, texts, batch_size=2))
        assert list(annotate_texts(nlp, paused, batch_size=2, n_process=n_process)) == expected
        assert list(annotate_texts(nlp, paused, batch_size=2, chunk_chars=1)) == expected
    finally:
        nlp.max_length = max_length
    assert [bool(r.get("error")) for r in expected] == [False, True, False, False, False, True, False]


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
    assert list(annotate_records(nlp, recs[:1], text_key="body")) == [{"body": "محمد في الرباط",
                                                                      "entities": out[0]["entities"]}]


def test_memory_zones_forget_the_words_of_each_chunk(nlp):
    """spaCy interns every new word; the chunks' memory zones give that memory back."""
    rng = random.Random(3)
    texts = [" ".join("".join(rng.choice("ابتثجحخدذرزسشصضطظعغفقكلمنهوي") for _ in range(8)) for _ in range(20))
             for _ in range(40)]
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
    assert len(list(annotate_texts(nlp, texts, batch_size=4, chunk_chars=50))) == 40
    assert len(zones) == 10
    zones.clear()
    list(annotate_texts(nlp, texts, batch_size=4, chunk_chars=10**9))
    assert len(zones) == 1


# --------------------------------------------------------------------------- files


def test_annotate_file_plain_text(nlp, tmp_path):
    rng = random.Random(1)
    texts = [random_text(rng).rstrip("\r") for _ in range(40)]  # a final \r would be read as CRLF
    texts[0] = texts[10] = texts[39] = ""
    texts[20] = "\r \u2028 مع\x0b\x0c\x85"
    (tmp_path / "in.txt").write_bytes(("\n".join(texts) + "\n").encode("utf-8"))
    stats = annotate_file(nlp, tmp_path / "in.txt", tmp_path / "out" / "annotated.jsonl", batch_size=8,
                          progress=False)
    records = [json.loads(line) for line in (tmp_path / "out" / "annotated.jsonl").read_text("utf-8").splitlines()]
    assert [r["text"] for r in records] == texts
    for rec in records:
        assert list(rec) == ["text", "entities"]
        assert_offsets(rec, rec["text"])
    assert records[0] == records[10] == records[39] == {"text": "", "entities": []}
    assert (stats.records, stats.errors) == (40, 0) and stats.entities == sum(len(r["entities"]) for r in records) > 30
    assert stats.seconds > 0 and stats.docs_per_second == stats.records / stats.seconds
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


def test_annotate_file_jsonl_with_ids_and_error_records(nlp, tmp_path):
    lines = [json.dumps({"id": f"d{i}", "text": t}, ensure_ascii=i % 2 == 1)  # \ud800 only as an escape
             for i, t in enumerate(["محمد في الرباط", "محمد \ud800", "", "باريس"])]
    lines.append("not json")
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    warnings = []
    stats = annotate_file(nlp, tmp_path / "in.jsonl", tmp_path / "out.jsonl", id_key="id", skip_invalid=True,
                          progress=False, warn=warnings.append)
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text("utf-8").splitlines()]
    assert [list(r) for r in records] == [["id", "entities"], ["line", "id", "error", "entities"],
                                          ["id", "entities"], ["id", "entities"], ["line", "error", "entities"]]
    assert records[1]["id"] == "d1" and "lone surrogate U+D800 at offset 5" in records[1]["error"]
    assert records[4]["line"] == 5 and "invalid JSON" in records[4]["error"]
    assert (stats.records, stats.errors) == (5, 2)
    assert warnings == [f"{tmp_path / 'in.jsonl'}:2: {records[1]['error']}; written as an error record",
                        f"{tmp_path / 'in.jsonl'}:5: {records[4]['error']}; written as an error record"]


def test_annotate_file_warns_at_most_max_warnings_times(nlp, tmp_path):
    (tmp_path / "in.jsonl").write_text("[]\n" * 5, encoding="utf-8")
    warnings = []
    stats = annotate_file(nlp, tmp_path / "in.jsonl", tmp_path / "out.jsonl", skip_invalid=True, progress=False,
                          warn=warnings.append, max_warnings=2)
    assert stats.errors == 5 and len(warnings) == 3 and "further problems are not shown" in warnings[-1]
    warnings.clear()
    (tmp_path / "in.jsonl").write_text("[]\n" * 2, encoding="utf-8")
    annotate_file(nlp, tmp_path / "in.jsonl", tmp_path / "out.jsonl", skip_invalid=True, progress=False,
                  warn=warnings.append, max_warnings=2)
    assert len(warnings) == 2 and not any("further problems" in w for w in warnings)  # none left unshown


def test_a_broken_line_stops_the_run_and_leaves_no_output(nlp, tmp_path):
    (tmp_path / "in.txt").write_bytes("محمد\nعلي\n".encode() + b"caf\xe9 latin-1\n" + "القاهرة\n".encode())
    with pytest.raises(InvalidInputError, match=r"in\.txt:3: invalid UTF-8 at byte 3"):
        annotate_file(nlp, tmp_path / "in.txt", tmp_path / "out.jsonl", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]  # no partial output, no temporary file


def test_the_output_cannot_be_the_input(nlp, tmp_path):
    (tmp_path / "in.txt").write_text("محمد\n", encoding="utf-8")
    with pytest.raises(ValueError, match="is the input file"):
        annotate_file(nlp, tmp_path / "in.txt", tmp_path / "in.txt", progress=False)
    assert (tmp_path / "in.txt").read_text(encoding="utf-8") == "محمد\n"


def test_an_output_through_a_link_or_to_a_pipe_is_not_replaced(nlp, tmp_path):
    """A symbolic link keeps pointing at the file it names, which gets the records; a FIFO
    (like /dev/stdout) is written to, not replaced by a file."""
    import os
    import threading

    (tmp_path / "in.txt").write_text("محمد في الرباط\nباريس\n", encoding="utf-8")
    target = tmp_path / "results" / "out.jsonl"
    target.parent.mkdir()
    target.write_text("old\n", encoding="utf-8")
    (tmp_path / "link.jsonl").symlink_to(target)
    annotate_file(nlp, tmp_path / "in.txt", tmp_path / "link.jsonl", progress=False)
    assert (tmp_path / "link.jsonl").is_symlink() and (tmp_path / "link.jsonl").resolve() == target
    expected = target.read_text(encoding="utf-8")
    assert len(expected.splitlines()) == 2 and "old" not in expected
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text(encoding="utf-8")))
    reader.start()
    annotate_file(nlp, tmp_path / "in.txt", fifo, progress=False)
    reader.join(timeout=60)
    assert got == [expected] and fifo.is_fifo()


def test_an_output_naming_an_open_descriptor_is_written_through_it(nlp, tmp_path):
    """``-o /dev/stdout`` with stdout appended to a file (``>> log``): opening the path anew
    truncated the file, or replaced it; the records now go through the descriptor, after what
    it has, and what the shell writes next comes after them."""
    import os

    (tmp_path / "in.txt").write_text("محمد في الرباط\nباريس\n", encoding="utf-8")
    annotate_file(nlp, tmp_path / "in.txt", tmp_path / "plain.jsonl", progress=False)
    records = (tmp_path / "plain.jsonl").read_text(encoding="utf-8")
    log = tmp_path / "log.jsonl"
    log.write_text("HEADER\n", encoding="utf-8")
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        for path in (f"/dev/fd/{fd}", f"/proc/self/fd/{fd}"):
            annotate_file(nlp, tmp_path / "in.txt", path, progress=False)
        os.write(fd, b"FOOTER\n")
    finally:
        os.close(fd)
    assert log.read_text(encoding="utf-8") == "HEADER\n" + records * 2 + "FOOTER\n"
    fd = os.open(tmp_path / "in.txt", os.O_WRONLY | os.O_APPEND)
    try:
        with pytest.raises(ValueError, match="is the input file"):
            annotate_file(nlp, tmp_path / "in.txt", f"/dev/fd/{fd}", progress=False)
    finally:
        os.close(fd)
    assert (tmp_path / "in.txt").read_text(encoding="utf-8") == "محمد في الرباط\nباريس\n"
    assert [output_descriptor(p) for p in ("-", "/dev/stdout", "/dev/stderr", "/dev/fd/7", "/proc/self/fd/7",
                                           f"/proc/{os.getpid()}/fd/3", "/proc/1/fd/3", "out.jsonl",
                                           "/dev/null")] == [1, 1, 2, 7, 7, 3, None, None, None]


def test_an_input_pipe_is_read_and_folders_are_refused_before_any_work(nlp, tmp_path):
    """A FIFO (what ``<(zcat corpus.gz)`` and /dev/stdin are) is an input; a folder is neither
    an input nor an output, and is refused before any line is read."""
    import os
    import threading

    (tmp_path / "in.txt").write_text("محمد في الرباط\n", encoding="utf-8")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text("محمد في الرباط\n", encoding="utf-8"))
    writer.start()
    annotate_file(nlp, fifo, tmp_path / "from_fifo.jsonl", progress=False)
    writer.join(timeout=60)
    annotate_file(nlp, tmp_path / "in.txt", tmp_path / "from_file.jsonl", progress=False)
    assert (tmp_path / "from_fifo.jsonl").read_bytes() == (tmp_path / "from_file.jsonl").read_bytes() != b""

    (tmp_path / "folder").mkdir()
    read = []
    with pytest.raises(ValueError, match="it is a directory"):
        annotate_file(nlp, tmp_path / "in.txt", tmp_path / "folder", progress=False, warn=read.append)
    with pytest.raises(ValueError, match="cannot read .*folder: it is a directory"):
        annotate_file(nlp, tmp_path / "folder", tmp_path / "out.jsonl", progress=False)
    with pytest.raises(ValueError, match="file not found"):
        annotate_file(nlp, tmp_path / "missing.txt", tmp_path / "out.jsonl", progress=False)
    assert not (tmp_path / "out.jsonl").exists() and list((tmp_path / "folder").iterdir()) == []


def test_a_replaced_output_keeps_its_permissions(nlp, tmp_path):
    (tmp_path / "in.txt").write_text("محمد في الرباط\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    out.write_text("old\n", encoding="utf-8")
    out.chmod(0o600)
    annotate_file(nlp, tmp_path / "in.txt", out, progress=False)
    assert out.stat().st_mode & 0o777 == 0o600 and "old" not in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("keys", [{"id_key": "entities"}, {"id_key": "line"}, {"id_key": "error"},
                                  {"text_key": "error"}, {"text_key": "entities"}])
def test_keys_the_records_use_for_themselves_are_refused_before_any_work(nlp, tmp_path, keys):
    """Written beside ``line``, ``error`` and ``entities``, such a key would replace one of them."""
    (tmp_path / "in.jsonl").write_text('{"text": "x", "error": "x", "entities": "x", "id": 1, "line": 1}\n')
    with pytest.raises(ValueError, match="one the output records use for themselves"):
        annotate_file(nlp, tmp_path / "in.jsonl", tmp_path / "out.jsonl", progress=False,
                      **{"text_key": "text", **keys})
    with pytest.raises(ValueError, match="one the output records use for themselves"):
        annotate_records(nlp, [], **{"text_key": "text", **keys})  # at the call, not at the first record
    assert not (tmp_path / "out.jsonl").exists()
    annotate_file(nlp, tmp_path / "in.jsonl", tmp_path / "out.jsonl", text_key="entities", id_key="id",
                  progress=False)  # the text is not written when there is an id
    assert list(json.loads((tmp_path / "out.jsonl").read_text())) == ["id", "entities"]


def test_annotate_stats():
    assert AnnotateStats().docs_per_second == 0.0
    assert AnnotateStats(records=10, seconds=2.0).docs_per_second == 5.0


# --------------------------------------------------------------------------- loading


def test_load_pipeline_loads_the_model_now(scrambled_model_dir):
    nlp = load_pipeline(scrambled_model_dir)
    assert nlp.get_pipe("aner_lstm")._tagger is not None
    assert nlp.max_length >= MAX_DOC_CHARS


def test_load_pipeline_reports_a_broken_model_before_any_input(scrambled_model_dir, model_copy, tmp_path):
    broken = model_copy(scrambled_model_dir)
    (broken / "config.json").unlink()
    with pytest.raises(ModelLoadError, match=f"missing model file: {broken / 'config.json'}"):
        load_pipeline(broken)
    with pytest.raises(ModelLoadError, match="model directory not found"):
        load_pipeline(tmp_path / "nowhere")


# --------------------------------------------------------------------------- several processes


@pytest.mark.slow
def test_two_processes_give_the_records_of_one(nlp):
    """Two worker processes through annotate_texts: same records, same order, with the network
    already run in this process (forked workers make their own ONNX Runtime session)."""
    rng = random.Random(11)
    texts = [random_text(rng) for _ in range(150)]
    texts[7], texts[40], texts[149] = "\ud800", "", "x\udfff"
    tagger = nlp.get_pipe("aner_lstm").tagger
    one = list(annotate_texts(nlp, texts, batch_size=8, n_process=1))
    two = list(annotate_texts(nlp, texts, batch_size=8, n_process=2))  # 19 batches, 4 in flight
    assert two == one
    assert list(annotate_texts(nlp, texts[:5], batch_size=8, n_process=3)) == one[:5]  # fewer batches than workers
    assert nlp.get_pipe("aner_lstm")._tagger is tagger
    assert "error" in one[7] and "error" in one[149] and one[40] == {"entities": []}
    assert sum(len(r["entities"]) for r in one) > 100
    for text, rec in zip(texts, one):
        if "error" not in rec:
            assert_offsets(rec, text)


@pytest.mark.slow
def test_spawned_workers_load_the_model_themselves_and_give_the_same_records(scrambled_model_dir, monkeypatch):
    """Under spawn (forkserver is Python 3.14's default) the pipeline is pickled without its network."""
    import multiprocessing
    import types

    from spacy_aner.annotate import runner

    nlp = load_pipeline(scrambled_model_dir)
    texts = [random_text(random.Random(k)) for k in range(30)]
    one = list(annotate_texts(nlp, texts, batch_size=4))
    spawn = types.SimpleNamespace(get_context=lambda: multiprocessing.get_context("spawn"))
    monkeypatch.setattr(runner, "multiprocessing", spawn)
    assert list(annotate_texts(nlp, texts, batch_size=4, n_process=2)) == one


@pytest.mark.slow
def test_an_error_in_a_worker_reaches_the_caller(scrambled_model_dir, monkeypatch):
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods() or multiprocessing.get_start_method() != "fork":
        pytest.skip("the patched component reaches the workers only through fork")
    nlp = load_pipeline(scrambled_model_dir)
    component = nlp.get_pipe("aner_lstm")
    predict = component.predict

    def failing(docs):
        if any("boom" in doc.text for doc in docs):
            raise RuntimeError("a worker failed")
        return predict(docs)

    monkeypatch.setattr(component, "predict", failing)
    texts = [random_text(random.Random(k)) for k in range(40)] + ["boom"] + ["محمد"] * 20
    got = []
    with pytest.raises(RuntimeError, match="a worker failed"):
        for rec in annotate_texts(nlp, texts, batch_size=4, n_process=2):
            got.append(rec)
    assert len(got) == 40  # every batch before the failing one was written


def test_load_pipeline_runs_a_thread_per_core_and_one_in_worker_processes(scrambled_model_dir):
    nlp = load_pipeline(scrambled_model_dir)
    comp = nlp.get_pipe("aner_lstm")
    assert comp._tagger is not None  # loaded at once
    assert comp.threads == 0 and comp.tagger.workers() == usable_cores()
    assert comp.tagger.scorer.session().get_session_options().intra_op_num_threads == 1
    assert load_pipeline(scrambled_model_dir, threads=1).get_pipe("aner_lstm").tagger.workers() == 1
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context()) as pool:
        assert pool.submit(workers_in_a_worker_process, str(scrambled_model_dir)).result(timeout=120) == 1


def workers_in_a_worker_process(model: str) -> int:
    return load_pipeline(model).get_pipe("aner_lstm").tagger.workers()


@pytest.mark.parametrize("name", [GRAPH_FILE, VECTORS_FILE])
def test_load_pipeline_names_a_truncated_model_file(scrambled_model_dir, model_copy, name):
    """The model loads at once: the error is the loader's own."""
    from spacy_aner.core.tagger import Tagger

    broken = model_copy(scrambled_model_dir)
    damaged = broken / name
    damaged.write_bytes(damaged.read_bytes()[:1000])
    with pytest.raises(ModelLoadError) as here:
        Tagger.load(broken)
    with pytest.raises(ModelLoadError) as there:
        load_pipeline(broken)
    assert str(there.value) == str(here.value)
    assert str(there.value).startswith(f"{damaged}: ")
    assert ("not a usable ONNX graph" if name == GRAPH_FILE else "unreadable or truncated array file") \
        in str(there.value)


def test_read_records_then_annotate_keeps_line_numbers(nlp, tmp_path):
    (tmp_path / "in.txt").write_bytes("محمد\n".encode() + b"\xff\n" + "علي\n".encode())
    out = list(annotate_records(nlp, read_records(tmp_path / "in.txt", skip_invalid=True)))
    assert [r.get("line") for r in out] == [None, 2, None] and out[1]["entities"] == []
