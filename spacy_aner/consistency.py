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


def propagate_labels(words: Sequence[str], tags: Sequence[str], window: int,
                     segments: Optional[Sequence[int]] = None) -> List[str]:
    """Tags with every untagged recurrence of a nearby predicted entity tagged too.

    ``words``/``tags`` are one running text (a document, or consecutive sentences joined).
    An all-``O`` word sequence identical to a predicted entity that starts within
    ``window`` words of it gets that entity's label; when several labels were predicted
    for the same words within reach, the most frequent wins (ties: ``LABELS`` order).
    Longest matches are taken first, left to right, and never overlap. ``segments``
    (one id per word, e.g. the sentence number) keeps a match inside one segment.
    ``window`` 0 returns the tags unchanged.
    """
    if len(words) != len(tags):
        raise ValueError(f"{len(words)} words but {len(tags)} tags")
    out = list(tags)
    if window <= 0 or not words:
        return out
    # words -> start positions (ascending, as spans come in order) and their labels
    mentions: Dict[Tuple[str, ...], Tuple[List[int], List[str]]] = defaultdict(lambda: ([], []))
    for start, end, label in bio_to_spans(tags):
        key = tuple(words[start:end])
        if _has_letter(key):  # a number or a punctuation mark is not a name to spread
            mentions[key][0].append(start)
            mentions[key][1].append(label)
    if not mentions:
        return out
    longest = max(len(k) for k in mentions)
    firsts = {k[0] for k in mentions}
    i = 0
    while i < len(words):
        if out[i] != "O" or words[i] not in firsts:  # the cheap test first: long docs stay linear
            i += 1
            continue
        for n in range(min(longest, len(words) - i), 0, -1):
            key = tuple(words[i:i + n])
            if key not in mentions or any(t != "O" for t in out[i:i + n]):
                continue
            if segments is not None and segments[i] != segments[i + n - 1]:
                continue
            starts, labels = mentions[key]
            votes = Counter(labels[bisect_left(starts, i - window):bisect_right(starts, i + window)])
            if not votes:
                continue
            label = max(votes, key=lambda lab: (votes[lab], -LABELS.index(lab)))
            out[i:i + n] = [f"B-{label}"] + [f"I-{label}"] * (n - 1)
            if i + n < len(out) and out[i + n] == f"I-{label}":
                out[i + n] = f"B-{label}"  # a stray I- after it stays its own entity
            i += n
            break
        else:
            i += 1
    return out


def propagate_over_sentences(sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]],
                             window: int) -> List[List[str]]:
    """:func:`propagate_labels` over consecutive sentences read as one running text."""
    flat_words = [w for s in sentences for w in s]
    flat_tags = [t for s in tags for t in s]
    segments = [k for k, s in enumerate(sentences) for _ in s]
    flat = propagate_labels(flat_words, flat_tags, window, segments)
    out, k = [], 0
    for s in sentences:
        out.append(flat[k:k + len(s)])
        k += len(s)
    return out
