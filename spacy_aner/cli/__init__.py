"""The ``spacy-aner`` command line (also ``python -m spacy_aner``), one module per command group."""
from __future__ import annotations

import sys

import typer

from . import data, run, train  # noqa: F401  (each registers its commands on the app)
from . import deploy  # noqa: F401,I001  (last: package and serve end the command list)
from .common import app


@app.callback()
def root() -> None:
    """Arabic named-entity recognition for spaCy: prepare ANERCorp, train, evaluate, annotate, package, serve."""


#: Commands that only run the ONNX network: their process never needs PyTorch.
INFERENCE_COMMANDS = frozenset({"annotate", "serve"})  # not evaluate: seqeval imports scikit-learn, which probes torch


def main() -> None:
    """The console script. For an inference command it keeps PyTorch out of its process:
    camel-tools installs it and thinc imports it whenever it is installed, which costs a
    large share of the process's memory and start-up, yet nothing here uses it. Only a
    process this function starts is affected; ``app`` itself (as tests call it) is not."""
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    if command in INFERENCE_COMMANDS:
        sys.modules.setdefault("torch", None)  # ``import torch`` now raises ImportError, which thinc handles
    try:
        app()
    except OSError as err:  # the file system refused: an output path that is a file, no permission, a full disk
        where = f": {err.filename}" if err.filename else ""
        typer.secho(f"error: {err.strerror or err}{where}", fg=typer.colors.RED, err=True)
        sys.exit(1)
