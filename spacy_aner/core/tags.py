"""BIO (IOB2) tag sets, the conversion between tags and entity spans, and tags with scored entities."""
from __future__ import annotations

from typing import Iterable, List, NamedTuple, Sequence, Tuple

LABELS: Tuple[str, ...] = ("PERS", "LOC", "ORG", "MISC")
TAGS: Tuple[str, ...] = ("O",) + tuple(f"{p}-{label}" for label in LABELS for p in ("B", "I"))

Span = Tuple[int, int, str]  # token start, token end (exclusive), label
#: An entity with its probability: word start, word end (exclusive), label, probability.
ScoredSpan = Tuple[int, int, str, float]


class Tagging(NamedTuple):
    """One word sequence's BIO tags, and its entities (:func:`bio_to_spans` of the tags,
    in order) each with its probability (:meth:`~.tagger.Tagger.tag`)."""

    tags: List[str]
    entities: List[ScoredSpan]


def split_tag(tag: str) -> Tuple[str, str]:
    """``"B-PERS"`` -> ``("B", "PERS")``; ``"O"`` -> ``("O", "")``."""
    if tag == "O":
        return "O", ""
    prefix, _, label = tag.partition("-")
    if prefix not in ("B", "I") or not label:
        raise ValueError(f"not a BIO tag: {tag!r}")
    return prefix, label


def bio_to_spans(tags: Sequence[str]) -> List[Span]:
    """Decode IOB2 tags into non-overlapping spans.

    An ``I-X`` that does not continue an ``X`` entity starts a new one, as seqeval's
    default mode and the CoNLL script do, so a model's stray ``I-`` never produces a
    broken span and corpus counts match the published ones.
    """
    spans: List[Span] = []
    start, label = -1, ""
    for i, tag in enumerate(tags):
        prefix, tag_label = split_tag(tag)
        if prefix == "I" and start >= 0 and tag_label == label:
            continue
        if start >= 0:
            spans.append((start, i, label))
            start, label = -1, ""
        if prefix != "O":
            start, label = i, tag_label
    if start >= 0:
        spans.append((start, len(tags), label))
    return spans


def spans_to_bio(spans: Iterable[Span], length: int) -> List[str]:
    """Encode non-overlapping spans as IOB2 tags over ``length`` tokens."""
    tags = ["O"] * length
    for start, end, label in spans:
        tags[start] = f"B-{label}"
        for i in range(start + 1, end):
            tags[i] = f"I-{label}"
    return tags


def repair_bio(tags: Sequence[str]) -> List[str]:
    """Rewrite tags into strict IOB2 (every entity opens with ``B-``), same spans."""
    return spans_to_bio(bio_to_spans(tags), len(tags))


def join_taggings(parts: Sequence[Tagging]) -> Tagging:
    """Taggings of consecutive sequences (a doc's sentences) as one, entities shifted.

    An entity never runs across a join: a part that opens with ``I-L`` after a part ending
    inside an ``L`` entity gets ``B-L`` there, so the joined tags decode to exactly the
    parts' entities."""
    tags: List[str] = []
    entities: List[ScoredSpan] = []
    for part in parts:
        offset = len(tags)
        head = list(part.tags[:1])
        if head and tags and split_tag(head[0])[0] == "I" and split_tag(tags[-1])[1] == split_tag(head[0])[1]:
            head = [f"B-{split_tag(head[0])[1]}"]
        tags.extend(head + list(part.tags[1:]))
        entities.extend((a + offset, b + offset, label, p) for a, b, label, p in part.entities)
    return Tagging(tags, entities)
