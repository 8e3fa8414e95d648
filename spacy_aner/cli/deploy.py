"""Commands that put a model in users' hands: ``package`` (a spaCy pipeline wheel) and ``serve`` (a web service)."""
from __future__ import annotations

import math
from pathlib import Path

import typer

from ..core.config import ModelLoadError
from .common import app, fail


@app.command()
def package(
    output_dir: Path = typer.Argument(..., help="Folder to write the package into (created if missing)."),
    model: Path = typer.Option(None, "--model", help="Model directory (default: the shipped model)."),
    name: str = typer.Option("aner_lstm", "--name", help="Package name after the language: ar_NAME, loaded with spacy.load('ar_NAME')."),
    version: str = typer.Option(None, "--version", help="Package version (default: spacy-aner's)."),
    license: str = typer.Option(None, "--license", help="Licence to declare (default: the one the model's LICENSE-MODEL.txt or meta.json names; the shipped model's is CC BY-NC-SA 4.0)."),
    build: str = typer.Option("wheel", "--build", help="wheel, sdist, or none (only the package folder)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing package folder of the same name and version."),
    members: int = typer.Option(0, "--members", min=0, help="Package the first N networks of the model's ensemble alone (0: all): faster, less accurate."),
) -> None:
    """Build a spaCy pipeline package (CAMeL tokenizer + aner_lstm) for spacy.load("ar_aner_lstm").

    Runs spaCy's own `package` on the saved pipeline, with the model's licence (as
    LICENSE), its test scores and a spacy-aner requirement in the package's meta.
    Install the wheel next to spacy-aner: `pip install OUTPUT_DIR/.../dist/*.whl`.
    """
    from ..pipeline.packaging import build_package

    if model is not None and not model.is_dir():
        fail(f"model directory not found: {model}")
    try:
        built = build_package(output_dir, model, name=name, version=version, license=license, build=build,
                              force=force, silent=False, members=members)
    except (ValueError, FileExistsError, RuntimeError, ModelLoadError) as err:
        fail(str(err))
    typer.echo(f"-> {built}")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; 127.0.0.1 keeps it to this machine."),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="Port to listen on."),
    model: Path = typer.Option(None, "--model", help="Model directory (default: the shipped model)."),
    members: int = typer.Option(0, "--members", min=0, help="Compute with the first N networks of the model's ensemble only (0: all): faster, less accurate."),
    max_bytes: int = typer.Option(1_000_000, "--max-bytes", min=1, help="Largest request body; larger ones get 413."),
    max_texts: int = typer.Option(1_000, "--max-texts", min=1, help="Most texts in one {\"texts\": [...]} request; more get 413."),
    max_batch: int = typer.Option(64, "--max-batch", min=1, help="Most texts of concurrent requests run together in one nlp.pipe call."),
    batch_wait_ms: float = typer.Option(5.0, "--batch-wait-ms", min=0, help="Milliseconds a request waits for others to share its batch."),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request."),
) -> None:
    """Serve the pipeline over HTTP: a page to try it (GET /), a JSON API (POST /ner), GET /health.

    POST /ner takes {"text": "..."} or {"texts": ["...", ...]} and returns each text's
    entities with character offsets, label, text and score. See docs/serving.md.
    """
    if not math.isfinite(batch_wait_ms):
        fail("--batch-wait-ms must be a finite number of milliseconds")
    try:
        from ..serve import run
    except ImportError as err:
        fail(f"serve needs the 'serve' extra ({err.name} is missing): pip install \"spacy-aner[serve]\"")
    from ..annotate.runner import load_pipeline

    try:
        nlp = load_pipeline(model, members=members)
    except ValueError as err:  # a broken model (ModelLoadError), or more members than it has
        fail(str(err))
    typer.echo(f"serving {model or 'the shipped model'} on http://{host}:{port}/ (Ctrl+C stops)", err=True)
    run(nlp, host=host, port=port, access_log=access_log, max_bytes=max_bytes, max_texts=max_texts,
        max_batch=max_batch, batch_wait=batch_wait_ms / 1000, model=str(model) if model else None)
