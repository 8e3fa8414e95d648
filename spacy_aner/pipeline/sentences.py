"""Sentence boundaries over the words the tagger sees.

The network was trained on ANERCorp sentences, so a doc is tagged sentence by sentence:
boundaries another component set win, and where none is set a sentence ends after an
end mark or at a line break (a name never runs from one line or paragraph to the next).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from spacy.tokens import Doc

from .tokenizer import is_invisible


#: Words after which a sentence ends when no component has set sentence boundaries.
#: Every ANERCorp sentence ends with ".", so the network was trained on such units.
SENTENCE_END = frozenset({".", "!", "?", "؟"})
#: Tokens made of these alone ("...", "..", "…") are read as one end mark (:func:`tagger_text`).
RUN_CHARS = "".join(sorted(SENTENCE_END)) + "…"
#: What ``str.splitlines`` breaks at.
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


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
    where none is set (e.g. a Doc made by ``Doc.from_docs``), a line break or the end-mark rule decides."""
    starts: List[Optional[bool]] = [None] * len(positions)
    annotated = doc.has_annotation("SENT_START")
    for k in range(1, len(positions)):
        first, word = positions[k - 1] + 1, positions[k]  # tokens first..word-1 are skipped ones
        if annotated:  # a boundary on a skipped token before the word counts too
            flags = [doc[j].is_sent_start for j in range(first, word + 1)]
            starts[k] = True if any(flags) else (None if all(f is None for f in flags) else False)
        if starts[k] is None and first < word and any(not LINE_BREAKS.isdisjoint(doc[j].text)
                                                      for j in range(first, word)):
            starts[k] = True
    return sentence_bounds(words, starts)


def tagger_text(text: str) -> str:
    """A token as the tagger reads it. The network knows end marks one by one, so a run of
    them in one token ("...", "..", as spaCy's own tokenizer leaves them; the CAMeL tokenizer
    splits them) is read as its last mark, and the ellipsis "…" as ".": a sentence ends there,
    and it is never read as part of a name."""
    if text and not text.strip(RUN_CHARS) and (len(text) > 1 or text == "…"):
        return "." if text[-1] == "…" else text[-1]
    return text


def tagger_words(doc: Doc) -> Tuple[List[int], List[str]]:
    """The tokens the tagger sees (not whitespace, not a run of invisible characters): their
    positions in the doc and their texts, as :func:`tagger_text` reads them."""
    positions: List[int] = []
    words: List[str] = []
    for i, text in enumerate([t.text for t in doc]):
        if not text.isspace() and not is_invisible(text):  # isspace is spaCy's is_space
            positions.append(i)
            words.append(tagger_text(text))
    return positions, words


def word_positions(doc: Doc) -> List[int]:
    """The positions of :func:`tagger_words`."""
    return tagger_words(doc)[0]
