"""The ``spacy-aner`` command line (also ``python -m spacy_aner``), one module per command group."""
from __future__ import annotations

from . import data, run, train  # noqa: F401  (each registers its commands on the app)
from .common import app


@app.callback()
def root() -> None:
    """Arabic named-entity recognition for spaCy: prepare ANERCorp, train, evaluate, annotate."""


def main() -> None:
    app()
