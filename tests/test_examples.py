"""Every script in examples/ runs and prints what it promises (on the tiny models; the shipped one once)."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from aner_support import EXAMPLES, load_script

import spacy_aner


def load_example(name):
    return load_script(EXAMPLES / f"{name}.py", f"example_{name}")


def test_every_example_is_tested():
    tested = {"seed_examples", "existing_pipeline", "displacy_rtl", "annotate_corpus", "user_gazetteer"}
    assert {p.stem for p in EXAMPLES.glob("*.py")} == tested


def test_seed_examples(tiny_model_dir, capsys):
    module = load_example("seed_examples")
    module.main(["--model", str(tiny_model_dir)])
    out = capsys.readouterr().out
    for text in module.SEEDS:
        assert text in out
        for word in text.split():
            assert re.search(re.escape(word) + r"/(O|[BI]-(PERS|LOC|ORG|MISC))\b", out), word
    assert out.count("entities:") == 3


def test_seed_examples_with_the_shipped_model(shipped_nlp, monkeypatch, capsys):
    module = load_example("seed_examples")

    def shipped(model=None):  # the session's shipped pipeline: the default, without a second load
        assert model is None
        return shipped_nlp

    monkeypatch.setattr(module.spacy_aner, "load", shipped)
    module.main([])
    out = capsys.readouterr().out
    assert "محمد/B-PERS" in out and "الرباط/B-LOC" in out
    assert "باريس/B-LOC" in out and "فرنسا/B-LOC" in out


def test_existing_pipeline_keeps_the_ruler_entity(scrambled_model_dir, capsys):
    module = load_example("existing_pipeline")
    module.main(["--model", str(scrambled_model_dir)])
    out = capsys.readouterr().out
    assert "['sentencizer', 'entity_ruler', 'aner_lstm']" in out
    assert "sentences: 2" in out
    start = module.TEXT.index("منظمة الصحة العالمية")
    assert f"منظمة الصحة العالمية\tORG\t{start}-{start + len('منظمة الصحة العالمية')}" in out
    printed = [line.split("\t") for line in out.splitlines() if line.count("\t") == 2]
    assert len(printed) > 1  # the scrambled model adds entities around the ruler's
    for text, _, offsets in printed:  # every printed entity slices back out of the text
        s, e = map(int, offsets.split("-"))
        assert module.TEXT[s:e] == text


def test_displacy_rtl_page(scrambled_model_dir, tmp_path, capsys):
    module = load_example("displacy_rtl")
    out_file = tmp_path / "ents.html"
    module.main([str(out_file), "--model", str(scrambled_model_dir)])
    html = out_file.read_text(encoding="utf-8")
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert '<html dir="rtl"' in html and "direction: rtl" in html
    docs = list(spacy_aner.load(scrambled_model_dir).pipe(module.TEXTS))
    assert html.count("<mark") == sum(len(d.ents) for d in docs) > 0
    for text in module.TEXTS:
        for word in text.split():
            assert word in html
    assert str(out_file) in capsys.readouterr().out


def test_annotate_corpus_writes_one_record_per_line(scrambled_model_dir, tmp_path, capsys):
    module = load_example("annotate_corpus")
    texts = ["محمد يعيش في الرباط", "", "باريس هي عاصمة فرنسا", "  text with\tspaces 😀 ", "الشركة تطور منتجات مبتكرة"]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    module.main([str(corpus), str(tmp_path / "out.jsonl"), "--model", str(scrambled_model_dir), "--batch-size", "2"])
    out = capsys.readouterr().out
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in records] == texts
    assert sum(len(r["entities"]) for r in records) > 0
    nlp = spacy_aner.load(scrambled_model_dir)
    for text, record in zip(texts, records):
        expected = [(e.start_char, e.end_char, e.label_) for e in nlp(text).ents]
        assert [(e["start"], e["end"], e["label"]) for e in record["entities"]] == expected
        assert all(text[e["start"]:e["end"]] == e["text"] for e in record["entities"])
    assert f"documents: {len(texts)}" in out
    assert f"words: {sum(len(t.split()) for t in texts)}" in out


def test_annotate_corpus_default_is_the_sample_text(scrambled_model_dir, capsys):
    module = load_example("annotate_corpus")
    module.main(["--model", str(scrambled_model_dir)])
    out = capsys.readouterr().out
    lines = (EXAMPLES / "sample.txt").read_text(encoding="utf-8").splitlines()
    assert f"documents: {len(lines)}" in out and f"words: {sum(len(t.split()) for t in lines)}" in out
    output = Path(out.split("output: ", 1)[1].strip())
    try:
        records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
        assert [r["text"] for r in records] == lines
    finally:
        shutil.rmtree(output.parent)  # the example's temporary folder


def test_user_gazetteer(gazetteer_model_dir, capsys):
    module = load_example("user_gazetteer")
    module.main(["--model", str(gazetteer_model_dir)])
    out = capsys.readouterr().out
    for text in module.TEXTS:
        assert text in out
    assert out.count("without the list:") == out.count("with the list:") == len(module.TEXTS)
    assert "user_names.jsonl" in out and "gazetteer.json.gz" in out
