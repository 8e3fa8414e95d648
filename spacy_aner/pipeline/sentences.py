"""Sentence boundaries over the words the tagger sees.

The network was trained on ANERCorp sentences, so a doc is tagged sentence by sentence:
boundaries another component set win, and where none is set a sentence ends after an
end mark.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from spacy.tokens import Doc

from .tokenizer import is_invisible


#: Words after which a sentence ends when no component has set sentence boundaries.
#: Every ANERCorp sentence ends with ".", so the network was trained on such units.
SENTENCE_END = frozenset({".", "!", "?", "؟"})


def ends_sentence(words: Sequence[str], k: int) -> bool:
    """Whether a sentence ends after ``words[k]``: an end mark, the last of a run of them
    ("..." and "!!" end one sentence, not three), and not a decimal point ("3 . 5")."""
    if words[k] not in SENTENCE_END:
        return False
    if k + 1 < len(words) and words[k + 1] in SENTENCE_END:
        return False
    return not (words[k] == "." and 0 < k < len(words) - 1
                and words[k - 1][-1:].isdigit() and words[k + 1][:1].isdigit())


def sentence_bounds(words: Sequence[str], starts: Optional[Sequence[Optional[bool]]] = None) -> List[Tuple[int, int]]:
    """``[start, end)`` word ranges of the sentences of running text.

    ``starts`` (one per word: True, False, or None for unknown) are boundaries another
    component set; where they are None, a sentence ends after an end mark (:func:`ends_sentence`).
    """
    cuts = [0]
    for k in range(1, len(words)):
        known = starts[k] if starts is not None else None
        if known or (known is None and ends_sentence(words, k - 1)):
            cuts.append(k)
    return list(zip(cuts, cuts[1:] + [len(words)]))


def doc_sentence_bounds(doc: Doc, positions: List[int], words: List[str]) -> List[Tuple[int, int]]:
    """The doc's sentences over its tagger words: boundaries a parser or sentencizer set win;
    where none is set (e.g. a Doc made by ``Doc.from_docs``), the end-mark rule decides."""
    if not doc.has_annotation("SENT_START"):
        return sentence_bounds(words)
    starts: List[Optional[bool]] = []
    for k, i in enumerate(positions):
        # a boundary on a skipped token (whitespace, invisible mark) before the word counts too
        flags = [doc[j].is_sent_start for j in range(positions[k - 1] + 1 if k else 0, i + 1)]
        starts.append(True if any(flags) else (None if all(f is None for f in flags) else False))
    return sentence_bounds(words, starts)


def tagger_words(doc: Doc) -> Tuple[List[int], List[str]]:
    """The tokens the tagger sees (not whitespace, not a run of invisible characters): their
    positions in the doc and their texts."""
    positions: List[int] = []
    words: List[str] = []
    for i, text in enumerate([t.text for t in doc]):
        if not text.isspace() and not is_invisible(text):  # isspace is spaCy's is_space
            positions.append(i)
            words.append(text)
    return positions, words


def word_positions(doc: Doc) -> List[int]:
    """The positions of :func:`tagger_words`."""
    return tagger_words(doc)[0]
