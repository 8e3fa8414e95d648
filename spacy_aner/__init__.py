"""spacy-aner: Arabic named-entity recognition (PERS, LOC, ORG, MISC) for spaCy.

``spacy_aner.load()`` is the one-line entry point. Installing the package also registers
the ``aner_lstm`` pipeline factory and the ``spacy_aner.CamelTokenizer.v1`` tokenizer
with spaCy through entry points, so neither needs this module to be imported first.
"""
from __future__ import annotations

from .about import __version__
from .pipeline.component import AnerLSTM, make_aner_lstm
from .pipeline.loading import load
from .pipeline.tokenizer import TOKENIZER_NAME, CamelTokenizer

__all__ = ["__version__", "load", "AnerLSTM", "make_aner_lstm", "CamelTokenizer", "TOKENIZER_NAME"]
