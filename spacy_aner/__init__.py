"""spacy-aner: Arabic named-entity recognition (PERS, LOC, ORG, MISC) for spaCy.

``spacy_aner.load()`` is the one-line entry point. Installing the package also registers
the ``aner_lstm`` pipeline factory and the ``spacy_aner.CamelTokenizer.v1`` tokenizer
with spaCy through entry points, so neither needs this module to be imported first.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from .about import __version__
from .component import AnerLSTM, make_aner_lstm
from .tokenizer import TOKENIZER_NAME, CamelTokenizer

__all__ = ["__version__", "load", "AnerLSTM", "make_aner_lstm", "CamelTokenizer", "TOKENIZER_NAME"]


def load(model: Optional[str] = None, *, ner: bool = True, **component_config: Any):
    """Return ``spacy.blank("ar")`` with the CAMeL Tools tokenizer and the ``aner_lstm`` component.

    ``model`` is a model directory (default: the model shipped in the package); other
    keyword arguments go to the component's config (``batch_size``, ``overwrite_ents``,
    ``consistency_window``, ``split_sentences``).
    """
    import spacy

    nlp = spacy.blank("ar", config={"nlp": {"tokenizer": {"@tokenizers": TOKENIZER_NAME}}})
    if ner:
        config: Dict[str, Any] = dict(component_config)
        if model is not None:
            config["model"] = str(model)
        nlp.add_pipe("aner_lstm", config=config)
    return nlp
