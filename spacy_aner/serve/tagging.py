"""The server's use of the pipeline: a batch of texts in, entity records with scores out."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from ..annotate import entity_records

#: The factory whose spans group (``doc.spans[NAME]``) carries the entity scores.
FACTORY = "aner_lstm"


def component_name(nlp) -> Optional[str]:
    """The name of the pipeline's ``aner_lstm`` component (its spans key), or None if it has none."""
    for name in nlp.pipe_names:
        if nlp.get_pipe_meta(name).factory == FACTORY:
            return name
    return None


def drop_queued_calls(nlp) -> None:
    """Drop the network calls not yet begun of a batch under way, which nobody waits for once
    the server stops: otherwise the process would finish them before it exits."""
    name = component_name(nlp)
    if name is not None:
        nlp.get_pipe(name).tagger.close()


def doc_entities(doc, spans_key: Optional[str]) -> List[Dict[str, Any]]:
    """:func:`~spacy_aner.annotate.entity_records` of ``doc``, scores read from the span group
    ``spans_key`` (None: a pipeline without the component, so every score is None)."""
    return entity_records(doc, spans_key)


def annotate_batch(nlp, spans_key: Optional[str], texts: List[str]) -> List[List[Dict[str, Any]]]:
    """Entity records of every text, from one ``nlp.pipe`` call with all texts in one batch.

    The memory zone frees the strings spaCy interns for new words after each batch, so a
    long-running server does not grow with every new word it sees.
    """
    with nlp.memory_zone():
        return [doc_entities(doc, spans_key) for doc in nlp.pipe(texts, batch_size=max(1, len(texts)))]
