"""spacy-aner: Arabic named-entity recognition (PERS, LOC, ORG, MISC) for spaCy.

``spacy_aner.load()`` is the one-line entry point. Installing the package also registers
the ``aner_lstm`` pipeline factory and the ``spacy_aner.CamelTokenizer.v1`` tokenizer
with spaCy through entry points, so neither needs this module to be imported first.

The names below are imported on first use, so that importing ``spacy_aner.core`` (which
never imports spaCy) does not load spaCy through this package.
"""
from __future__ import annotations

import importlib
from typing import Any

from .about import __version__

#: Public name -> the module that defines it (imported when the name is first used).
_LAZY = {
    "load": ".pipeline.loading",
    "AnerLSTM": ".pipeline.component",
    "make_aner_lstm": ".pipeline.component",
    "CamelTokenizer": ".pipeline.tokenizer",
    "TOKENIZER_NAME": ".pipeline.tokenizer",
}

__all__ = ["__version__", "load", "AnerLSTM", "make_aner_lstm", "CamelTokenizer", "TOKENIZER_NAME"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
