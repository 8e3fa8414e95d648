"""spacy_aner.pipeline.sentences: the sentences and words of a Doc that the tagger sees."""
from __future__ import annotations

import pytest
from spacy.tokens import Doc

from spacy_aner.pipeline.sentences import (
    SENTENCE_END,
    doc_sentence_bounds,
    ends_sentence,
    sentence_bounds,
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
