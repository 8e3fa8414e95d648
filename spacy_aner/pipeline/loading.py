"""``spacy_aner.load()``: a blank Arabic pipeline with the CAMeL tokenizer and ``aner_lstm``."""
from __future__ import annotations

from typing import Any, Dict, Optional

import spacy
from spacy.language import Language

from .tokenizer import TOKENIZER_NAME

#: ``nlp.max_length`` of :func:`load`'s pipeline, in characters (spaCy's default is 1,000,000):
#: the pipeline is linear in the length of a document, as the tagger works in windows.
MAX_DOC_CHARS = 5_000_000


def load(model: Optional[str] = None, *, ner: bool = True, **component_config: Any) -> Language:
    """Return ``spacy.blank("ar")`` with the CAMeL Tools tokenizer and the ``aner_lstm`` component.

    ``model`` is a model directory (default: the model shipped in the package); other
    keyword arguments go to the component's config (``batch_size``, ``overwrite_ents``,
    ``consistency_window``, ``split_sentences``, ``threshold``, ``labels``, ...).
    ``nlp.max_length`` is :data:`MAX_DOC_CHARS` (5,000,000 characters), as for
    ``spacy-aner annotate``, so ``nlp(text)`` takes documents longer than spaCy's default
    limit.
    """
    nlp = spacy.blank("ar", config={"nlp": {"tokenizer": {"@tokenizers": TOKENIZER_NAME}}})
    nlp.max_length = MAX_DOC_CHARS
    if ner:
        config: Dict[str, Any] = dict(component_config)
        if model is not None:
            config["model"] = str(model)
        nlp.add_pipe("aner_lstm", config=config)
    return nlp
