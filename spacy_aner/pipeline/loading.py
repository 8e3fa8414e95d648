"""``spacy_aner.load()``: a blank Arabic pipeline with the CAMeL tokenizer and ``aner_lstm``."""
from __future__ import annotations

from typing import Any, Dict, Optional

import spacy
from spacy.language import Language

from .tokenizer import TOKENIZER_NAME


def load(model: Optional[str] = None, *, ner: bool = True, **component_config: Any) -> Language:
    """Return ``spacy.blank("ar")`` with the CAMeL Tools tokenizer and the ``aner_lstm`` component.

    ``model`` is a model directory (default: the model shipped in the package); other
    keyword arguments go to the component's config (``batch_size``, ``overwrite_ents``,
    ``consistency_window``, ``split_sentences``).
    """
    nlp = spacy.blank("ar", config={"nlp": {"tokenizer": {"@tokenizers": TOKENIZER_NAME}}})
    if ner:
        config: Dict[str, Any] = dict(component_config)
        if model is not None:
            config["model"] = str(model)
        nlp.add_pipe("aner_lstm", config=config)
    return nlp
