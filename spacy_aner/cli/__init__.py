"""The ``spacy-aner`` command line (also ``python -m spacy_aner``), one module per command group."""
from __future__ import annotations

from . import data, run, train  # noqa: F401  (each registers its commands on the app)
from . import deploy  # noqa: F401,I001  (last: package and serve end the command list)
from .common import app


@app.callback()
def root() -> None:
    """Arabic named-entity recognition for spaCy: prepare ANERCorp, train, evaluate, annotate, package, serve."""


def main() -> None:
    app()
