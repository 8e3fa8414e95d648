"""Silver data (teacher-tagged unlabelled text) and ``train --silver``."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from spacy_aner.cli import app
from spacy_aner.corpus import read_conll, sha256_file
from spacy_aner.model import ModelConfig, Tagger
from spacy_aner.silver import sample_sentences, split_sentences
from spacy_aner.tags import TAGS, bio_to_spans, repair_bio

NEWS = [
    "زار الرئيس مدينة جدة أمس. ثم عاد إلى الرياض؟ نعم",
    "أعلنت وزارة الصحة  عن خطة جديدة لمكافحة المرض في المملكة.",
    "قصير.",
    "وقال محمد بن سلمان إن المشروع سيبدأ العام المقبل في نيوم!",
]


def test_split_sentences_cuts_after_final_punctuation_and_keeps_the_tokenizer_words():
    assert list(split_sentences(NEWS[0])) == [
        ["زار", "الرئيس", "مدينة", "جدة", "أمس", "."], ["ثم", "عاد", "إلى", "الرياض", "؟"], ["نعم"]]
    # Runs of whitespace are not words.
    assert list(split_sentences(NEWS[1]))[0][:4] == ["أعلنت", "وزارة", "الصحة", "عن"]
    assert list(split_sentences("")) == []


def test_sample_sentences_is_seeded_bounded_and_distinct():
    texts = NEWS * 50
    all_ = sample_sentences(texts, 1000, rate=1.0, min_words=5)
    # Only sentences of 5..60 words, each once, in corpus order.
    assert all_ == [["زار", "الرئيس", "مدينة", "جدة", "أمس", "."], ["ثم", "عاد", "إلى", "الرياض", "؟"],
                    list(split_sentences(NEWS[1]))[0], list(split_sentences(NEWS[3]))[0]]
    assert sample_sentences(texts, 2, rate=1.0) == all_[:2]
    assert sample_sentences(texts, 0, rate=1.0) == []
    a = sample_sentences(texts, 1000, rate=0.1, seed=1, min_words=1)
    assert a == sample_sentences(texts, 1000, rate=0.1, seed=1, min_words=1)
    assert len({" ".join(s) for s in a}) == len(a)
    assert sample_sentences(texts, 1000, rate=1.0, max_words=5) == [["ثم", "عاد", "إلى", "الرياض", "؟"]]


@pytest.fixture(scope="module")
def news_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("news") / "news.txt"
    path.write_text("\n".join(NEWS) + "\n", encoding="utf-8")
    return path


def test_silver_command_tags_sampled_sentences_with_the_teacher(scrambled_model_dir, news_file, tmp_path):
    out = tmp_path / "silver.conll"
    result = CliRunner().invoke(app, ["silver", "--teacher", str(scrambled_model_dir), "--text", str(news_file),
                                      "-o", str(out), "--rate", "1", "-n", "3"])
    assert result.exit_code == 0, result.output
    sents = read_conll(out, strict=True).sentences
    assert [s.words for s in sents] == sample_sentences(NEWS, 3, rate=1.0)
    teacher = Tagger.load(scrambled_model_dir)
    assert [s.tags for s in sents] == [repair_bio(t) for t in teacher.predict([s.words for s in sents])]
    assert all(set(s.tags) <= set(TAGS) and repair_bio(s.tags) == s.tags for s in sents)
    entities = sum(len(bio_to_spans(s.tags)) for s in sents)
    assert entities > 0  # the scrambled teacher tags most words
    record = json.loads((tmp_path / "silver.conll.json").read_text(encoding="utf-8"))
    assert record["sha256"] == sha256_file(out) and record["teacher"] == str(scrambled_model_dir)
    assert (record["sentences"], record["entities"]) == (3, entities)
    assert record["teacher_train_sha256"] == teacher.meta.get("train_sha256")
    assert f"3 sentences, {record['words']} words, {entities} entities" in result.output


@pytest.mark.parametrize("args, message", [
    ([], "give at least one of"),
    (["--text", "nope.txt"], "file not found"),
    (["--rate", "0"], "--rate must be in"),
    (["-n", "0"], "--sentences must be at least 1"),
    (["--teacher-dir-missing"], "model"),
])
def test_silver_command_errors(args, message, tiny_model_dir, news_file, tmp_path):
    teacher = str(tiny_model_dir)
    if args == ["--teacher-dir-missing"]:
        teacher, args = str(tmp_path / "no_model"), ["--text", str(news_file)]
    elif args and args[0] in ("--rate", "-n"):
        args = args + ["--text", str(news_file)]
    result = CliRunner().invoke(app, ["silver", "--teacher", teacher, "-o", str(tmp_path / "s.conll"), *args])
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output


def test_train_with_silver_adds_training_sentences_but_not_vocabulary_or_dev(
        scrambled_model_dir, tiny_conll_file, tiny_vectors_kv, news_file, tmp_path):
    from spacy_aner.model import merge_members
    from spacy_aner.training import ensemble, train

    silver = tmp_path / "silver.conll"
    made = CliRunner().invoke(app, ["silver", "--teacher", str(scrambled_model_dir), "--text", str(news_file),
                                    "-o", str(silver), "--rate", "1"])
    assert made.exit_code == 0, made.output
    config = dict(lstm_units=8, lstm_layers=1, char_filters=8, window=32, context=4)
    meta = train(tiny_conll_file, tmp_path / "student", silver_path=silver, vectors=tiny_vectors_kv, dev_fraction=0.2, epochs=1,
                 verbose=0, config=ModelConfig(**config))
    assert meta["sentences"] == {"train": 26, "dev": 6, "silver": 4}
    assert meta["silver"]["sha256"] == sha256_file(silver) and meta["silver"]["file"] == str(silver)
    assert meta["silver"]["teacher"]["teacher"] == str(scrambled_model_dir)
    student = Tagger.load(tmp_path / "student")
    assert "نيوم" not in student.vocab.words  # a silver-only word: the vocabulary comes from gold
    # Students on other silver data are not seed variants of each other.
    plain = train(tiny_conll_file, tmp_path / "plain", vectors=tiny_vectors_kv, dev_fraction=0.2, epochs=1, verbose=0, seed=2,
                  config=ModelConfig(**config))
    assert "silver" not in plain and "silver" not in plain["sentences"]
    other = Tagger.load(tmp_path / "plain")
    with pytest.raises(ValueError, match="other silver data"):
        merge_members([student, other])
    other.meta["silver"] = {"sha256": "0" * 64}
    with pytest.raises(ValueError, match="other silver data"):
        merge_members([student, other])
    other.meta["silver"] = dict(student.meta["silver"])
    assert merge_members([student, other]).config.members == 2
    # An ensemble of students keeps the silver data's provenance.
    train(tiny_conll_file, tmp_path / "student2", silver_path=silver, vectors=tiny_vectors_kv, dev_fraction=0.2,
          epochs=1, verbose=0, seed=2, config=ModelConfig(**config))
    merged = ensemble([tmp_path / "student", tmp_path / "student2"], tmp_path / "ens")
    assert merged["silver"] == meta["silver"] and merged["sentences"]["silver"] == 4


def test_silver_record_is_optional_and_a_broken_one_is_ignored(tmp_path):
    from spacy_aner.training import _silver_teacher

    silver = tmp_path / "silver.conll"
    silver.write_text("محمد\tB-PERS\n", encoding="utf-8")
    assert _silver_teacher(silver) is None
    (tmp_path / "silver.conll.json").write_text("{not json", encoding="utf-8")
    assert _silver_teacher(silver) is None
    (tmp_path / "silver.conll.json").write_text('{"teacher": "models/ens3"}', encoding="utf-8")
    assert _silver_teacher(silver) == {"teacher": "models/ens3"}
