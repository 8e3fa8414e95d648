"""spacy_aner.training.silver: teacher-tagged news sentences for training a smaller student."""
from __future__ import annotations

import pytest

from spacy_aner.core.tags import bio_to_spans, repair_bio
from spacy_aner.training.corpus import read_conll
from spacy_aner.training.silver import make_silver, sample_sentences, split_sentences

PARAGRAPHS = [
    "زار محمد الرباط أمس . ثم سافر إلى باريس مع أحمد علي !",
    "قال الوزير في القاهرة إن الأمم المتحدة ستجتمع في لندن ؟ لا .",
    "\u200fعاد سمير إلى بيروت بعد أسبوع من العمل في دمشق .",
    "",
    "   ",
]


def test_split_sentences_cuts_after_final_punctuation():
    assert list(split_sentences("أ ب . ج ! د ؟ هـ".split())) == [["أ", "ب", "."], ["ج", "!"], ["د", "؟"], ["هـ"]]
    assert list(split_sentences([])) == []


def test_sample_is_distinct_bounded_and_repeatable():
    texts = PARAGRAPHS * 3  # repeated paragraphs give each sentence once
    got = sample_sentences(texts, 100, rate=1.0, min_words=3, max_words=12)
    keys = [" ".join(s) for s in got]
    assert len(keys) == len(set(keys)) == 4  # "لا ." is too short
    assert all(3 <= len(s) <= 12 for s in got)
    assert all(not w.isspace() and "\u200f" not in w for s in got for w in s)  # no whitespace or direction marks
    assert sample_sentences(texts, 2, rate=1.0, min_words=3) == got[:2]
    assert sample_sentences(texts, 100, rate=0.5, seed=3) == sample_sentences(texts, 100, rate=0.5, seed=3)
    assert sample_sentences(texts, 100, rate=1e-9) == []


def test_make_silver_writes_the_teachers_tags(tiny_model_dir, tiny_tagger, tmp_path):
    out = tmp_path / "silver.conll"
    made = make_silver(PARAGRAPHS, tiny_model_dir, out, 3, rate=1.0)
    sentences = read_conll(out, strict=True).sentences
    assert made["sentences"] == len(sentences) == 3
    assert made["words"] == sum(len(s.words) for s in sentences)
    assert made["entities"] == sum(len(bio_to_spans(s.tags)) for s in sentences)
    assert made["teacher"]["train_sha256"] == tiny_tagger.meta["train_sha256"]
    assert [s.tags for s in sentences] == [repair_bio(t) for t in tiny_tagger.predict([s.words for s in sentences])]


def test_make_silver_refuses_nothing_to_tag(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="at least one sentence"):
        make_silver(PARAGRAPHS, tiny_model_dir, tmp_path / "s.conll", 0)
    with pytest.raises(ValueError, match="no sentence was sampled"):
        make_silver(["", " "], tiny_model_dir, tmp_path / "s.conll", 5, rate=1.0)
    assert not (tmp_path / "s.conll").exists()
