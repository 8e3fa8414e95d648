"""spacy-aner: Arabic named-entity recognition (PERS, LOC, ORG, MISC) for spaCy.

``spacy_aner.load()`` is the one-line entry point. Installing the package also registers
the ``aner_lstm`` pipeline factory and the ``spacy_aner.CamelTokenizer.v1`` tokenizer
with spaCy through entry points, so neither needs this module to be imported first.

The names below are imported on first use, so that importing ``spacy_aner.core`` (which
never imports spaCy) does not load spaCy through this package.
"""
from __future__ import annotations

from .about import __version__
from .core.lazy import lazy_names

_NAMES = {
    "load": ".pipeline.loading",
    "AnerLSTM": ".pipeline.component",
    "make_aner_lstm": ".pipeline.component",
    "CamelTokenizer": ".pipeline.tokenizer",
    "TOKENIZER_NAME": ".pipeline.tokenizer",
}
__all__ = ["__version__", *_NAMES]
__getattr__, __dir__ = lazy_names(__name__, _NAMES)
