"""spacy_aner.core.normalize: the look-up key of a word (vectors, vocabulary, token.norm_)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_aner.core.normalize import NORMALIZATION_VERSION, has_arabic_letters, normalize_word


@pytest.mark.parametrize("word, key", [
    ("مُحَمَّد", "محمد"),  # diacritics
    ("محـــمد", "محمد"),  # tatweel
    ("أحمد", "احمد"), ("إسلام", "اسلام"), ("آمال", "امال"),  # alef forms
    ("مستشفى", "مستشفي"),  # alef maksura
    ("مدرسة", "مدرسه"),  # teh marbuta
    ("2024", "0000"), ("١٢٣", "000"),  # every digit, Arabic-Indic included
    ("Hello", "hello"),
    ("\u200fمحمد\u200b", "محمد"), ("\ufeffباريس", "باريس"), ("a\x00b", "ab"),  # invisible and control characters
    ("محمد\u200dعلي", "محمدعلي"),  # a zero-width joiner is a format character too
    ("\u064b", ""), ("\u200b", ""), ("", ""),  # only removed characters: an empty key
    ("«", "«"), (".", "."),
])
def test_keys(word, key):
    assert normalize_word(word) == key


def test_version_is_recorded_in_models():
    assert isinstance(NORMALIZATION_VERSION, int) and NORMALIZATION_VERSION >= 1


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=20))
def test_idempotent(word):
    """A key is its own key: text normalised once (vectors) and again (look-up) agree."""
    key = normalize_word(word)
    assert normalize_word(key) == key
    assert not any(ch in key for ch in "\u0640\u200b\u200f\ufeff\x00")


@pytest.mark.parametrize("words, arabic", [
    (["محمد"], True), (["Apple", "أعلنت"], True), (["ﻣﺤﻤﺪ"], True), (["ڤيينا"], True),  # forms, extra letters
    (["Barack", "Obama"], False), (["١٢٣", "،", "؟"], False), (["\u064b", "\u0640", "\ufeff"], False),
    (["😀", "."], False), ([], False),
])
def test_arabic_letters(words, arabic):
    """Digits, punctuation, diacritics and tatweel of the Arabic blocks are not letters."""
    assert has_arabic_letters(words) is arabic
