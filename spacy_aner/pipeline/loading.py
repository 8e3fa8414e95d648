"""``spacy_aner.load()``: a blank Arabic pipeline with the CAMeL tokenizer and ``aner_lstm``."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import spacy
from spacy.language import Language
from spacy.util import registry

from .tokenizer import TOKENIZER_NAME

#: ``nlp.max_length`` of :func:`load`'s pipeline, in characters (spaCy's default is 1,000,000):
#: the pipeline is linear in the length of a document, as the tagger works in windows.
MAX_DOC_CHARS = 5_000_000
MAX_LENGTH_CALLBACK = "spacy_aner.max_length.v1"


@registry.callbacks(MAX_LENGTH_CALLBACK)
def create_max_length(max_length: int = MAX_DOC_CHARS) -> Callable[[Language], Language]:
    """``[nlp.after_creation]``: set ``nlp.max_length``, which ``nlp.to_disk`` does not save,
    from the pipeline's config, which it does: a saved pipeline keeps the limit."""
    if max_length < 1:
        raise ValueError(f"max_length must be positive, got {max_length}")

    def set_max_length(nlp: Language) -> Language:
        nlp.max_length = max_length
        return nlp

    return set_max_length


def load(model: Optional[str] = None, *, ner: bool = True, **component_config: Any) -> Language:
    """Return ``spacy.blank("ar")`` with the CAMeL Tools tokenizer and the ``aner_lstm`` component.

    ``model`` is a model directory (default: the model shipped in the package); other
    keyword arguments go to the component's config (``batch_size``, ``overwrite_ents``,
    ``consistency_window``, ``split_sentences``, ``threshold``, ``labels``, ...).
    ``nlp.max_length`` is :data:`MAX_DOC_CHARS` (5,000,000 characters), as for
    ``spacy-aner annotate``, so ``nlp(text)`` takes documents longer than spaCy's default
    limit; the config keeps it, so ``spacy.load`` of the saved pipeline has it too.
    """
    nlp = spacy.blank("ar", config={"nlp": {
        "tokenizer": {"@tokenizers": TOKENIZER_NAME},
        "after_creation": {"@callbacks": MAX_LENGTH_CALLBACK, "max_length": MAX_DOC_CHARS}}})
    if ner:
        config: Dict[str, Any] = dict(component_config)
        if model is not None:
            config["model"] = str(model)
        nlp.add_pipe("aner_lstm", config=config)
    return nlp
