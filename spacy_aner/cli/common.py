"""What every command shares: the Typer app and how a command fails."""
from __future__ import annotations

import shlex
import sys
from typing import NoReturn

import typer

app = typer.Typer(
    name="spacy-aner",
    help="Arabic named-entity recognition for spaCy: prepare ANERCorp, train, evaluate, annotate, package, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def invocation(ctx: typer.Context) -> str:
    """The command line that is running, to record next to the figures it produces."""
    if ctx.info_name in sys.argv[1:]:  # a real command line
        return "spacy-aner " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    params = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in ctx.params.items())  # called in-process
    return f"spacy-aner {ctx.info_name} {params}"


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)
