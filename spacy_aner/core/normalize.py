"""Normalisation of Arabic words for vocabulary look-up.

Used only to compute look-up keys (for the word vectors, the model's vocabulary and
``token.norm_``); it never changes ``doc.text``. The same function is applied when
training the embeddings, training the model and predicting, so their keys agree.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from camel_tools.utils.dediac import dediac_ar
from camel_tools.utils.normalize import (
    normalize_alef_ar,
    normalize_alef_maksura_ar,
    normalize_teh_marbuta_ar,
)

#: Bumped whenever the output of :func:`normalize_word` changes: a model records the
#: version it was trained with and refuses to load with a different one.
NORMALIZATION_VERSION = 1

_TATWEEL = "\u0640"
_DIGITS = re.compile(r"\d")
#: Letters of the Arabic script (its blocks and presentation forms; not its digits, marks or punctuation).
_ARABIC_LETTER = re.compile("[\u0620-\u063F\u0641-\u064A\u066E-\u06D3\u06D5\u06EE\u06EF\u06FA-\u06FC\u06FF"
                            "\u0750-\u077F\u08A0-\u08C9\uFB50-\uFDFB\uFE70-\uFEFC]")


def has_arabic_letters(words) -> bool:
    """Whether any of ``words`` has a letter of the Arabic script: text without one is not
    what the model reads (it learned Latin words only as names inside Arabic news)."""
    return any(_ARABIC_LETTER.search(word) for word in words)


def _strip_format_chars(word: str) -> str:
    # Bidi marks (U+200F), zero-width spaces (U+200B) and BOMs (U+FEFF) are category Cf:
    # invisible, and they split otherwise identical words into different keys.
    return "".join(ch for ch in word if unicodedata.category(ch) not in ("Cf", "Cc"))


@lru_cache(maxsize=200_000)
def normalize_word(word: str) -> str:
    """Return the look-up key of ``word``.

    Removes diacritics, tatweel and invisible format characters, unifies alef forms
    (أ إ آ → ا), alef maksura (ى → ي) and teh marbuta (ة → ه), maps every digit to ``0``
    and lower-cases Latin letters. Returns ``""`` for a word made only of removed
    characters.
    """
    word = _strip_format_chars(word).replace(_TATWEEL, "")
    word = dediac_ar(word)
    word = normalize_alef_ar(word)
    word = normalize_alef_maksura_ar(word)
    word = normalize_teh_marbuta_ar(word)
    word = _DIGITS.sub("0", word)
    return word.lower()
