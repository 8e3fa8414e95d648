"""Document-level label consistency: a name tagged once is tagged where it recurs nearby.

News articles repeat their names, nearly always with the same label. A sentence-level
tagger finds a name in one context and misses it in a weaker one, so after tagging,
untagged word sequences identical to an entity the tagger found within ``window`` words
are given that entity's label ("one sense per discourse"). It only fills ``O`` gaps:
predicted entities are never changed, so the step can only add entities. A recurrence
with a proclitic joined to it ("وباريس" after "باريس") counts too. There are no document
boundaries in running text, hence the word window.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from ..core.tags import LABELS, ScoredSpan, Tagging, bio_to_spans


def _has_letter(words: Sequence[str]) -> bool:
    return any(ch.isalpha() for w in words for ch in w)


#: Proclitics written joined to the next word (and, so, in/with, for, like, and their
#: pairs), longest first: "وباريس" is a recurrence of "باريس".
PROCLITICS = ("وب", "ول", "وك", "فب", "فل", "و", "ف", "ب", "ل", "ك")
#: Their first letters: most words start with none of them and skip the proclitic loop.
PROCLITIC_INITIALS = frozenset(p[0] for p in PROCLITICS)


class Recurrence(NamedTuple):
    """An untagged recurrence of a predicted mention: words ``start..end-1`` get ``label``,
    copied from the mention of the same words that starts at ``source`` (the nearest one in
    reach with that label)."""

    start: int
    end: int
    label: str
    source: int


def mention_index(words: Sequence[str], tags: Sequence[str]):
    """The predicted mentions of a text, indexed for :func:`find_recurrences`: ``(index, starts, lengths)``.

    ``index``: (first word, length) -> starts, the cheap "anything in reach?" test before a
    key is built; ``starts``: words -> label -> starts, so the votes in a window and the
    nearest mention cost a bisect, not a pass over every mention in reach; ``lengths``:
    first word -> mention lengths, longest first. Starts are ascending (spans come in order).
    """
    index: Dict[Tuple[str, int], List[int]] = {}
    starts: Dict[Tuple[str, ...], Dict[str, List[int]]] = {}
    for start, end, label in bio_to_spans(tags):
        key = tuple(words[start:end])
        if _has_letter(key):  # a number or a punctuation mark is not a name to spread
            index.setdefault((key[0], len(key)), []).append(start)
            starts.setdefault(key, {}).setdefault(label, []).append(start)
    lengths: Dict[str, List[int]] = defaultdict(list)
    for first, n in sorted(index, key=lambda fn: -fn[1]):
        lengths[first].append(n)
    return index, starts, lengths


def nearest(starts: Sequence[int], i: int, lo: int, hi: int) -> int:
    """The element of ``starts[lo:hi]`` (ascending, not empty) nearest to ``i``; the earlier on a tie."""
    k = bisect_left(starts, i, lo, hi)
    if k == hi or (k > lo and i - starts[k - 1] <= starts[k] - i):
        return starts[k - 1]
    return starts[k]


def free_runs(tags: Sequence[str]) -> List[int]:
    """``free[i]``: untagged words from ``i`` on. Filling ``[i, i+n)`` and moving on to
    ``i+n`` leaves the runs from there on as they were, so one pass serves a whole scan."""
    free = [0] * (len(tags) + 1)
    for i in range(len(tags) - 1, -1, -1):
        free[i] = free[i + 1] + 1 if tags[i] == "O" else 0
    return free


def find_recurrences(words: Sequence[str], tags: Sequence[str], window: int,
                     segments: Optional[Sequence[int]] = None, clitics: bool = True) -> List[Recurrence]:
    """Every untagged recurrence of a nearby predicted entity, in order; they never overlap.

    ``words``/``tags`` are one running text (a document, or consecutive sentences joined).
    An all-``O`` word sequence identical to a predicted entity that starts within
    ``window`` words of it gets that entity's label; when several labels were predicted
    for the same words within reach, the most frequent wins (ties: ``LABELS`` order).
    Longest matches are taken first, left to right. ``segments`` (one id per word, e.g.
    the sentence number) keeps a match inside one segment. With ``clitics``, a recurrence
    whose first word carries a joined proclitic (:data:`PROCLITICS`) matches too, where no
    exact one does. ``window`` 0 finds none.
    """
    if len(words) != len(tags):
        raise ValueError(f"{len(words)} words but {len(tags)} tags")
    found: List[Recurrence] = []
    if window <= 0 or not words:
        return found
    index, starts_of, lengths = mention_index(words, tags)
    if not lengths:
        return found
    free = free_runs(tags)

    def match(i: int, first: str) -> int:
        """Record the longest free recurrence at ``i``, its first word read as ``first``; its length or 0."""
        for n in lengths.get(first, ()):
            if n > free[i] or (segments is not None and segments[i] != segments[i + n - 1]):
                continue
            starts = index[(first, n)]
            if bisect_left(starts, i - window) == bisect_right(starts, i + window):
                continue  # nothing of this shape in reach: no key built, long docs stay linear
            by_label = starts_of.get((first, *words[i + 1:i + n]))
            if by_label is None:
                continue
            reach = {lab: (bisect_left(st, i - window), bisect_right(st, i + window)) for lab, st in by_label.items()}
            votes = Counter({lab: hi - lo for lab, (lo, hi) in reach.items() if hi > lo})
            if votes:
                label = max(votes, key=lambda lab: (votes[lab], -LABELS.index(lab)))
                found.append(Recurrence(i, i + n, label, nearest(by_label[label], i, *reach[label])))
                return n
        return 0

    i = 0
    while i < len(words):
        n = 0
        if free[i]:
            w = words[i]
            if w in lengths:
                n = match(i, w)
            if not n and clitics and w[:1] in PROCLITIC_INITIALS:
                for p in PROCLITICS:
                    if w.startswith(p) and len(w) - len(p) >= 2 and w[len(p):] in lengths:
                        n = match(i, w[len(p):])
                        if n:
                            break
        i += max(n, 1)
    return found


def propagate_labels(words: Sequence[str], tags: Sequence[str], window: int,
                     segments: Optional[Sequence[int]] = None, clitics: bool = True) -> List[str]:
    """Tags with every recurrence :func:`find_recurrences` finds tagged too (same arguments).

    Predicted entities keep their spans: a stray ``I-`` right after a filled recurrence of
    its label becomes ``B-``, so it stays its own entity.
    """
    out = list(tags)
    for start, end, label, _ in find_recurrences(words, tags, window, segments, clitics):
        out[start:end] = [f"B-{label}"] + [f"I-{label}"] * (end - start - 1)
        if end < len(out) and out[end] == f"I-{label}":
            out[end] = f"B-{label}"
    return out


def propagate_over_sentences(sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]],
                             window: int, clitics: bool = True) -> List[List[str]]:
    """:func:`propagate_labels` over consecutive sentences read as one running text."""
    flat_words = [w for s in sentences for w in s]
    flat_tags = [t for s in tags for t in s]
    segments = [k for k, s in enumerate(sentences) for _ in s]
    flat = propagate_labels(flat_words, flat_tags, window, segments, clitics)
    out, k = [], 0
    for s in sentences:
        out.append(flat[k:k + len(s)])
        k += len(s)
    return out


def with_recurrences(words: Sequence[str], tagging: Tagging, window: int,
                     segments: Optional[Sequence[int]] = None) -> List[ScoredSpan]:
    """``tagging``'s entities and their recurrences (:func:`find_recurrences`, inside ``segments``), in order.

    A recurrence takes the score of the mention it copies: the same words, tagged with
    the same label, nearest to it in the window.
    """
    score = {(a, b, label): p for a, b, label, p in tagging.entities}
    added = [(r.start, r.end, r.label, score[(r.source, r.source + r.end - r.start, r.label)])
             for r in find_recurrences(words, tagging.tags, window, segments)]
    return sorted(tagging.entities + added) if added else list(tagging.entities)
