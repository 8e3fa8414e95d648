"""From the tagger's scored entities to spaCy: the label map, the threshold, ``doc.ents`` and ``doc.spans``.

Each entity the component sets is in ``doc.ents`` and in the span group
``doc.spans[<component name>]``, whose ``attrs["scores"]`` holds one probability per span
(:meth:`~spacy_aner.core.tagger.Tagger.tag`), as spaCy's ``spancat`` stores its scores.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example

from ..core.tags import LABELS, ScoredSpan

#: The span attribute that holds the scores, as in spaCy's ``spancat``.
SCORES_ATTR = "scores"


def check_label_map(labels: Optional[Mapping[str, str]]) -> Dict[str, str]:
    """``labels`` (model label -> the user's name, ``""`` to drop it) checked; a ``ValueError`` names the problem."""
    label_map = dict(labels or {})
    for source, target in label_map.items():
        if source not in LABELS:
            raise ValueError(f"labels: {source!r} is not a label of this component; it predicts "
                             f"{', '.join(LABELS)}")
        if not isinstance(target, str) or target != target.strip():
            raise ValueError(f"labels: {source!r} maps to {target!r}; give a label name, or \"\" to drop {source}")
    return label_map


def output_labels(label_map: Mapping[str, str]) -> Tuple[str, ...]:
    """The labels the component sets, in model order, each once; dropped labels left out."""
    names = (label_map.get(label, label) for label in LABELS)
    return tuple(dict.fromkeys(name for name in names if name))


def check_threshold(threshold: float) -> float:
    if not (isinstance(threshold, (int, float)) and not math.isnan(threshold) and 0.0 <= threshold <= 1.0):
        raise ValueError(f"threshold must be a probability between 0 and 1, got {threshold!r}")
    return float(threshold)


def doc_spans(doc: Doc, positions: Sequence[int], entities: Iterable[ScoredSpan], label_map: Mapping[str, str],
              threshold: float) -> List[Tuple[Span, float]]:
    """Spans of ``doc`` for entities over its tagger words (``positions``: each word's token),
    renamed by the map, without dropped labels and scores under ``threshold``. A span covers
    its first to its last word, so it never begins or ends on whitespace."""
    out = []
    for start, end, label, score in entities:
        name = label_map.get(label, label)
        if name and score >= threshold:
            out.append((Span(doc, positions[start], positions[end - 1] + 1, label=name), score))
    return out


def set_entities(doc: Doc, scored: Sequence[Tuple[Span, float]], key: str, overwrite: bool) -> None:
    """Write the spans to ``doc.ents`` and, with their scores, to ``doc.spans[key]``.

    With ``overwrite`` False the doc's existing entities win: only spans that touch none of
    them are added, and the span group holds the spans added, with those it held before that
    are still entities (a doc tagged a second time keeps its scores).
    """
    if overwrite:
        kept = list(scored)
        doc.ents = [span for span, _ in kept]
    else:
        taken = {i for ent in doc.ents for i in range(ent.start, ent.end)}
        added = [(span, score) for span, score in scored if taken.isdisjoint(range(span.start, span.end))]
        ents = {(ent.start, ent.end, ent.label_) for ent in doc.ents}
        earlier = [(Span(doc, *where), score) for where, score in span_scores(doc, key).items() if where in ents]
        kept = sorted(earlier + added, key=lambda item: item[0].start)
        doc.ents = list(doc.ents) + [span for span, _ in added]
    doc.spans[key] = SpanGroup(doc, name=key, spans=[span for span, _ in kept],
                               attrs={SCORES_ATTR: [score for _, score in kept]})


def span_scores(doc: Doc, key: Optional[str]) -> Dict[Tuple[int, int, str], float]:
    """``(token start, token end, label) -> score`` of the spans ``doc.spans[key]`` holds (none if
    absent, or if ``key`` is None: a pipeline without the component)."""
    if key is None or key not in doc.spans:
        return {}
    group = doc.spans[key]
    return {(s.start, s.end, s.label_): score for s, score in zip(group, group.attrs.get(SCORES_ATTR, ()))}


def relabel_references(examples: Iterable[Example], label_map: Mapping[str, str]) -> List[Example]:
    """``examples`` with their reference entities named by the label map, as predictions are:
    a model label is renamed, a dropped one is not an entity (its tokens are outside any
    entity); other labels and missing annotation are left as they are."""
    out = []
    for eg in examples:
        ref = eg.reference.copy()
        keep, drop = [], []
        for ent in ref.ents:
            name = label_map.get(ent.label_, ent.label_)
            if name:
                keep.append(ent if name == ent.label_ else Span(ref, ent.start, ent.end, label=name))
            else:
                drop.append(ent)
        ref.set_ents(keep, outside=drop, default="unmodified")
        out.append(Example(eg.predicted, ref))
    return out
