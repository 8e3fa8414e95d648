"""Document-level label consistency: a name tagged once is tagged where it recurs nearby.

News articles repeat their names: in the ANERCorp train file, 42 % of entities recur as
an entity with the same label within five sentences, and 0.7 % with another label. A
sentence-level tagger finds a name in one context and misses it in a weaker one, so after
tagging, untagged word sequences identical to an entity the tagger found within
``window`` words are given that entity's label ("one sense per discourse"). It only
fills ``O`` gaps: predicted entities are never changed, so the step can only add
entities. A recurrence with a proclitic joined to it ("وباريس" after "باريس") counts too.
There are no document boundaries in running text, hence the word window.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

from ..core.tags import LABELS, bio_to_spans


def _has_letter(words: Sequence[str]) -> bool:
    return any(ch.isalpha() for w in words for ch in w)


#: Proclitics written joined to the next word (and, so, in/with, for, like, and their
#: pairs), longest first: "وباريس" is a recurrence of "باريس".
PROCLITICS = ("وب", "ول", "وك", "فب", "فل", "و", "ف", "ب", "ل", "ك")


def mention_index(words: Sequence[str], tags: Sequence[str]):
    """The predicted mentions of a text, indexed for :func:`propagate_labels`: ``(index, counts, lengths)``.

    ``index``: (first word, length) -> starts, the cheap "anything in reach?" test before a
    key is built; ``counts``: words -> (starts, prefix counts per label), so the votes in a
    window cost a bisect, not a pass over every mention in reach; ``lengths``: first word ->
    mention lengths, longest first. Starts are ascending (spans come in order).
    """
    index: Dict[Tuple[str, int], List[int]] = {}
    by_key: Dict[Tuple[str, ...], Tuple[List[int], List[str]]] = {}
    for start, end, label in bio_to_spans(tags):
        key = tuple(words[start:end])
        if _has_letter(key):  # a number or a punctuation mark is not a name to spread
            index.setdefault((key[0], len(key)), []).append(start)
            starts, labels = by_key.setdefault(key, ([], []))
            starts.append(start)
            labels.append(label)
    counts: Dict[Tuple[str, ...], Tuple[List[int], Dict[str, List[int]]]] = {}
    for key, (starts, labels) in by_key.items():
        prefix = {lab: [0] for lab in set(labels)}
        for lab in labels:
            for other, acc in prefix.items():
                acc.append(acc[-1] + (other == lab))
        counts[key] = (starts, prefix)
    lengths: Dict[str, List[int]] = defaultdict(list)
    for first, n in sorted(index, key=lambda fn: -fn[1]):
        lengths[first].append(n)
    return index, counts, lengths


def free_runs(tags: Sequence[str]) -> List[int]:
    """``free[i]``: untagged words from ``i`` on. Filling ``[i, i+n)`` and moving on to
    ``i+n`` leaves the runs from there on as they were, so one pass serves a whole scan."""
    free = [0] * (len(tags) + 1)
    for i in range(len(tags) - 1, -1, -1):
        free[i] = free[i + 1] + 1 if tags[i] == "O" else 0
    return free


def propagate_labels(words: Sequence[str], tags: Sequence[str], window: int,
                     segments: Optional[Sequence[int]] = None, clitics: bool = True) -> List[str]:
    """Tags with every untagged recurrence of a nearby predicted entity tagged too.

    ``words``/``tags`` are one running text (a document, or consecutive sentences joined).
    An all-``O`` word sequence identical to a predicted entity that starts within
    ``window`` words of it gets that entity's label; when several labels were predicted
    for the same words within reach, the most frequent wins (ties: ``LABELS`` order).
    Longest matches are taken first, left to right, and never overlap. ``segments``
    (one id per word, e.g. the sentence number) keeps a match inside one segment.
    With ``clitics``, a recurrence whose first word carries a joined proclitic
    (:data:`PROCLITICS`) matches too, where no exact one does. ``window`` 0 returns the
    tags unchanged.
    """
    if len(words) != len(tags):
        raise ValueError(f"{len(words)} words but {len(tags)} tags")
    out = list(tags)
    if window <= 0 or not words:
        return out
    index, counts, lengths = mention_index(words, tags)
    free = free_runs(tags)

    def match(i: int, first: str) -> int:
        """Fill the longest free recurrence at ``i``, its first word read as ``first``; its length or 0."""
        for n in lengths.get(first, ()):
            if n > free[i] or (segments is not None and segments[i] != segments[i + n - 1]):
                continue
            starts = index[(first, n)]
            if bisect_left(starts, i - window) == bisect_right(starts, i + window):
                continue  # nothing of this shape in reach: no key built, long docs stay linear
            key = (first, *words[i + 1:i + n])
            if key not in counts:
                continue
            starts, prefix = counts[key]
            lo, hi = bisect_left(starts, i - window), bisect_right(starts, i + window)
            votes = Counter({lab: acc[hi] - acc[lo] for lab, acc in prefix.items() if acc[hi] > acc[lo]})
            if votes:
                label = max(votes, key=lambda lab: (votes[lab], -LABELS.index(lab)))
                out[i:i + n] = [f"B-{label}"] + [f"I-{label}"] * (n - 1)
                if i + n < len(out) and out[i + n] == f"I-{label}":
                    out[i + n] = f"B-{label}"  # a stray I- after it stays its own entity
                return n
        return 0

    i = 0
    while i < len(words):
        n = 0
        if free[i]:
            w = words[i]
            n = match(i, w)
            if not n and clitics:
                for p in PROCLITICS:
                    if w.startswith(p) and len(w) - len(p) >= 2 and w[len(p):] in lengths:
                        n = match(i, w[len(p):])
                        if n:
                            break
        i += max(n, 1)
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
