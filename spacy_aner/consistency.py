"""Document-level label consistency: a name tagged once is tagged where it recurs nearby.

News articles repeat their names: in the ANERCorp train file, 42 % of entities recur as
an entity with the same label within five sentences, and 0.7 % with another label. A
sentence-level tagger finds a name in one context and misses it in a weaker one, so after
tagging, untagged word sequences identical to an entity the tagger found within
``window`` words are given that entity's label ("one sense per discourse"). It only
fills ``O`` gaps: predicted entities are never changed, so the step can only add
entities. There are no document boundaries in running text, hence the word window.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

from .tags import LABELS, bio_to_spans


def _has_letter(words: Sequence[str]) -> bool:
    return any(ch.isalpha() for w in words for ch in w)


#: Proclitics written joined to the next word (and, so, in/with, for, like, and their pairs):
#: "وباريس" is a recurrence of "باريس".
PROCLITICS = ("وب", "ول", "وك", "فب", "فل", "و", "ف", "ب", "ل", "ك")
#: Parts of compound person names that are never a name alone ("عبد الله", "أبو بكر", "فان باستن").
NAME_PARTICLES = frozenset({"بن", "ابن", "إبن", "بنت", "عبد", "أبو", "أبي", "أبا", "آل", "دو", "دي", "دا", "فان", "فون", "لا", "لو"})


def _votes(starts: List[int], labels: List[str], i: int, window: int) -> Counter:
    return Counter(labels[bisect_left(starts, i - window):bisect_right(starts, i + window)])


def _majority(votes: Counter) -> str:
    return max(votes, key=lambda lab: (votes[lab], -LABELS.index(lab)))


def _write(out: List[str], start: int, end: int, label: str) -> None:
    out[start:end] = [f"B-{label}"] + [f"I-{label}"] * (end - start - 1)
    if end < len(out) and out[end] == f"I-{label}":
        out[end] = f"B-{label}"  # a stray I- after it stays its own entity


def propagate_labels(words: Sequence[str], tags: Sequence[str], window: int,
                     segments: Optional[Sequence[int]] = None, *, relabel: bool = False,
                     clitics: bool = False, name_parts: bool = False) -> List[str]:
    """Tags with every untagged recurrence of a nearby predicted entity tagged too.

    ``words``/``tags`` are one running text (a document, or consecutive sentences joined).
    An all-``O`` word sequence identical to a predicted entity that starts within
    ``window`` words of it gets that entity's label; when several labels were predicted
    for the same words within reach, the most frequent wins (ties: ``LABELS`` order).
    Longest matches are taken first, left to right, and never overlap. ``segments``
    (one id per word, e.g. the sentence number) keeps a match inside one segment.
    ``window`` 0 returns the tags unchanged.

    Variants: ``relabel`` gives a predicted entity the label its words got most often
    within reach (its own wins ties); ``clitics`` also matches a recurrence with a
    proclitic joined to its first word ("وباريس"); ``name_parts`` tags a single untagged
    word as PERS where it is a word of a multi-word PERS entity within reach.
    """
    if len(words) != len(tags):
        raise ValueError(f"{len(words)} words but {len(tags)} tags")
    out = list(tags)
    if window <= 0 or not words:
        return out
    spans = bio_to_spans(tags)
    # words -> start positions (ascending, as spans come in order) and their labels
    mentions: Dict[Tuple[str, ...], Tuple[List[int], List[str]]] = defaultdict(lambda: ([], []))
    parts: Dict[str, Tuple[List[int], List[str]]] = defaultdict(lambda: ([], []))
    for start, end, label in spans:
        key = tuple(words[start:end])
        if _has_letter(key):  # a number or a punctuation mark is not a name to spread
            mentions[key][0].append(start)
            mentions[key][1].append(label)
        if name_parts and label == "PERS" and end - start > 1:
            for k in range(start, end):
                if (len(words[k]) >= 3 and _has_letter(words[k]) and words[k] not in NAME_PARTICLES
                        and (k == start or words[k - 1] not in NAME_PARTICLES)):
                    parts[words[k]][0].append(start)
                    parts[words[k]][1].append("PERS")
    if not mentions:
        return out
    if relabel:
        for start, end, label in spans:
            key = tuple(words[start:end])
            if key in mentions:
                votes = _votes(*mentions[key], start, window)
                best = max(votes, key=lambda lab: (votes[lab], lab == label, -LABELS.index(lab)))
                if best != label:
                    _write(out, start, end, best)
    longest = max(len(k) for k in mentions)
    firsts = {k[0] for k in mentions}

    def match(i: int, first: str) -> int:
        """Length of the longest free recurrence at ``i`` (its first word read as ``first``), or 0."""
        for n in range(min(longest, len(words) - i), 0, -1):
            key = (first, *words[i + 1:i + n])
            if key not in mentions or any(t != "O" for t in out[i:i + n]):
                continue
            if segments is not None and segments[i] != segments[i + n - 1]:
                continue
            votes = _votes(*mentions[key], i, window)
            if votes:
                _write(out, i, i + n, _majority(votes))
                return n
        return 0

    i = 0
    while i < len(words):
        if out[i] != "O":
            i += 1
            continue
        w = words[i]
        n = match(i, w) if w in firsts else 0  # the cheap test first: long docs stay linear
        if not n and clitics:
            for p in PROCLITICS:
                if w.startswith(p) and len(w) - len(p) >= 2 and w[len(p):] in firsts:
                    n = match(i, w[len(p):])
                    if n:
                        break
        if not n and name_parts and w in parts:
            votes = _votes(*parts[w], i, window)
            if votes:
                _write(out, i, i + 1, "PERS")
                n = 1
        i += max(n, 1)
    return out


def propagate_over_sentences(sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]],
                             window: int, **variants: bool) -> List[List[str]]:
    """:func:`propagate_labels` over consecutive sentences read as one running text."""
    flat_words = [w for s in sentences for w in s]
    flat_tags = [t for s in tags for t in s]
    segments = [k for k, s in enumerate(sentences) for _ in s]
    flat = propagate_labels(flat_words, flat_tags, window, segments, **variants)
    out, k = [], 0
    for s in sentences:
        out.append(flat[k:k + len(s)])
        k += len(s)
    return out
