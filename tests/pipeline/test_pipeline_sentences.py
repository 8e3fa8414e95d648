"""spacy_aner.pipeline.sentences: the sentences and words of a Doc that the tagger sees."""
from __future__ import annotations

import pytest
from spacy.tokens import Doc

from spacy_aner.pipeline.sentences import (
    SENTENCE_END,
    doc_sentence_bounds,
    ends_sentence,
    sentence_bounds,
    tagger_text,
    tagger_words,
    word_positions,
)


@pytest.mark.parametrize("words,bounds", [
    ([], [(0, 0)]),
    (["."], [(0, 1)]),
    ("قال . ذهب".split(), [(0, 2), (2, 3)]),
    ("هل ذهب ؟ نعم !".split(), [(0, 3), (3, 5)]),
    ("بلا نقطة".split(), [(0, 2)]),
    ("قال . . . محمد ! ! ! ثم".split(), [(0, 4), (4, 8), (8, 9)]),  # a run of end marks ends one sentence
    ("بلغ 3 . 5 مليون . ثم".split(), [(0, 6), (6, 7)]),  # a decimal point does not
])
def test_sentence_bounds(words, bounds):
    assert sentence_bounds(words) == bounds


def test_ends_sentence():
    assert SENTENCE_END == {".", "!", "?", "؟"}
    words = "قال 3 . 5 . ! ثم".split()
    assert [ends_sentence(words, k) for k in range(len(words))] == [False, False, False, False, False, True, False]
    assert ends_sentence(["."], 0) and ends_sentence(["3", "."], 1)
    assert ends_sentence([".", "5"], 0)  # no digit before it: not a decimal point


def test_boundaries_set_by_another_component_win():
    words = "a . b c".split()
    assert sentence_bounds(words, [True, None, None, True]) == [(0, 2), (2, 3), (3, 4)]
    assert sentence_bounds(words, [True, None, False, True]) == [(0, 3), (3, 4)]
    assert sentence_bounds("a . b".split(), [True, None, False]) == [(0, 3)]  # a set "not a start" wins
    assert sentence_bounds(words, [None] * 4) == sentence_bounds(words)


def test_word_positions_skip_whitespace_and_invisible_tokens(nlp_camel):
    doc = nlp_camel("\u200fمحمد  يعيش\n\nفي\x00الرباط ")
    assert [doc[i].text for i in word_positions(doc)] == ["محمد", "يعيش", "في", "الرباط"]
    assert word_positions(nlp_camel("")) == [] and word_positions(nlp_camel(" \n\u200f ")) == []
    assert tagger_words(doc) == (word_positions(doc), ["محمد", "يعيش", "في", "الرباط"])


def test_doc_sentence_bounds_read_the_docs_own_boundaries(nlp_camel):
    doc = nlp_camel("زار محمد . باريس جميلة")
    positions = word_positions(doc)
    words = [doc[i].text for i in positions]
    assert doc_sentence_bounds(doc, positions, words) == [(0, 3), (3, 5)]  # no boundaries set: end marks
    for token in doc:
        token.is_sent_start = token.i in (0, 1)
    assert doc_sentence_bounds(doc, positions, words) == [(0, 1), (1, 5)]


def test_a_boundary_on_a_skipped_token_counts_for_the_next_word(nlp_camel):
    doc = nlp_camel("محمد \n الرباط")
    assert [t.text for t in doc] == ["محمد", "\n ", "الرباط"]
    for token in doc:
        token.is_sent_start = token.i in (0, 1)  # the sentencizer put the boundary on the newline
    positions = word_positions(doc)
    assert doc_sentence_bounds(doc, positions, ["محمد", "الرباط"]) == [(0, 1), (1, 2)]


def test_partly_set_boundaries_from_doc_from_docs(nlp_camel):
    """Doc.from_docs marks only each part's first token: the end-mark rule fills in the rest."""
    doc = Doc.from_docs([nlp_camel("زار أحمد . باريس جميلة ."), nlp_camel("قال محمد")])
    assert doc.has_annotation("SENT_START") and doc[1].is_sent_start is None
    positions = word_positions(doc)
    assert doc_sentence_bounds(doc, positions, [doc[i].text for i in positions]) == [(0, 3), (3, 6), (6, 8)]


@pytest.mark.parametrize("text", ["محمد علي\nأحمد حسن", "محمد علي\n\nأحمد حسن", "محمد علي \r\n أحمد حسن",
                                  "محمد علي\u2029أحمد حسن", "محمد علي\x85أحمد حسن"])
@pytest.mark.parametrize("blank_tokenizer", [False, True])
def test_a_line_break_ends_a_sentence(text, blank_tokenizer, nlp_camel):
    import spacy

    doc = (spacy.blank("ar") if blank_tokenizer else nlp_camel)(text)
    positions, words = tagger_words(doc)
    assert words == ["محمد", "علي", "أحمد", "حسن"]
    assert doc_sentence_bounds(doc, positions, words) == [(0, 2), (2, 4)]
    doc = nlp_camel("محمد علي  أحمد\tحسن")  # other white space does not
    assert doc_sentence_bounds(doc, *tagger_words(doc)) == [(0, 4)]


def test_a_line_break_gives_way_to_boundaries_another_component_set(nlp_camel):
    doc = nlp_camel("محمد\nعلي")
    for token in doc:
        token.is_sent_start = token.i == 0  # a sentencizer without "\n" among its marks
    assert doc_sentence_bounds(doc, *tagger_words(doc)) == [(0, 2)]


def test_a_run_of_end_marks_in_one_token_is_read_as_its_last_mark():
    import spacy

    doc = spacy.blank("ar")("وصل محمد... إلى الرباط.. ثم عاد… ثم")
    assert [t.text for t in doc] == ["وصل", "محمد", "...", "إلى", "الرباط", "..", "ثم", "عاد", "…", "ثم"]
    positions, words = tagger_words(doc)
    assert words == ["وصل", "محمد", ".", "إلى", "الرباط", ".", "ثم", "عاد", ".", "ثم"]
    assert doc_sentence_bounds(doc, positions, words) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert [tagger_text(w) for w in ["3.5", ".a", "a.", "?!", "؟", ".…", "x…"]] == ["3.5", ".a", "a.", "!", "؟",
                                                                                   ".", "x…"]


@pytest.mark.parametrize("blank_tokenizer", [False, True])
def test_no_entity_runs_across_a_line_break_or_takes_in_end_marks(blank_tokenizer, shipped_model_dir):
    import spacy

    import spacy_aner

    nlp = spacy.blank("ar") if blank_tokenizer else spacy_aner.load(ner=False)
    nlp.add_pipe("aner_lstm")
    doc = nlp("قائمة الفائزين\n\nمحمد علي\n\nأحمد حسن\n\nسارة خالد")
    assert [(e.text, e.label_) for e in doc.ents] == [("محمد علي", "PERS"), ("أحمد حسن", "PERS"),
                                                      ("سارة خالد", "PERS")]
    assert [(e.text, e.label_) for e in nlp("وصل محمد... إلى الرباط").ents] == [("محمد", "PERS"),
                                                                                ("الرباط", "LOC")]
    # a recurrence of a name (document consistency) stays inside a sentence too
    doc = nlp("وصل الرئيس إلى الدار البيضاء اليوم.\n\nالدار\n\nالبيضاء\n")
    assert [(e.text, e.label_) for e in doc.ents] == [("الدار البيضاء", "LOC")]
