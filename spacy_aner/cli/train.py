"""Model commands: ``train`` (from a .cfg recipe), ``ensemble`` and ``add-vectors``."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..core.config import ModelLoadError
from .common import app, fail, invocation, warn


def member_seed(member: dict):
    return ((member.get("config") or {}).get("training") or {}).get("seed")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="Training recipe: a .cfg file such as configs/aner_lstm.cfg, or a model directory (the recipe its meta.json records)."),
    output: Path = typer.Option(..., "--output", "-o", help="Model directory to write (weights, vocab, config.json, meta.json, training.json)."),
    refit_from: Optional[Path] = typer.Option(None, "--refit-from", help="Refit on all the training data for the best epoch count of this earlier run with a dev set, replaying its learning-rate drops."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-epoch output."),
) -> None:
    """Train the BiLSTM-CRF tagger from a recipe; override any setting as --section.key VALUE.

    Example: spacy-aner train configs/aner_lstm.cfg -o models/m14 --training.seed 14

    With a dev set (--paths.dev, or the last --training.dev_fraction of the training file)
    training stops early on dev entity F1; the test split is never read. With
    --training.dev_fraction 0 and no dev file it is a refit: exactly --training.epochs
    epochs, the learning rate dropping after each epoch in --training.lr_drops.
    """
    import warnings

    from ..training.corpus import CorpusWarning
    from ..training.recipe import load_recipe, parse_overrides, recorded_recipe
    from ..training.trainer import refit_schedule
    from ..training.trainer import train as run

    with warnings.catch_warnings():  # a repaired corpus line is a one-line warning, as in `prepare`
        warnings.simplefilter("always", CorpusWarning)
        warnings.showwarning = lambda message, *_, **__: warn(str(message))
        try:
            overrides = parse_overrides(ctx.args)
            if config.is_dir():
                source = recorded_recipe(config)
            elif config.is_file():
                source = config
            else:
                fail(f"not a recipe file or model directory: {config}")
            if refit_from is not None:
                overrides = {**overrides, **refit_schedule(refit_from)}
            recipe = load_recipe(source, overrides)
            for name in ("train", "dev", "vectors", "gazetteer"):
                path = getattr(recipe.paths, name)
                if path and not Path(path).exists():
                    fail(f"paths.{name}: file not found: {path}")
            if not recipe.paths.train:
                fail("no training file: set paths.train in the recipe or give --paths.train FILE")
            meta = run(recipe, output, verbose=0 if quiet else 1, command=invocation(ctx))
        except (FileNotFoundError, ValueError) as err:
            fail(str(err))
    if meta["dev_scores"] is None:
        typer.echo(f"refit: {meta['epochs_run']} epochs on {meta['sentences']['train']:,} sentences, no dev set, "
                   f"in {meta['training_minutes']} min -> {output}")
        return
    micro = meta["dev_scores"]["micro"]
    typer.echo(f"best epoch {meta['best_epoch']} of {meta['epochs_run']}: dev P {micro['precision']:.2f} "
               f"R {micro['recall']:.2f} F1 {micro['f1']:.2f} in {meta['training_minutes']} min -> {output}")


@app.command()
def ensemble(
    ctx: typer.Context,
    models: list[Path] = typer.Argument(..., help="Model directories trained with `train` from one recipe, differing only in the seed."),
    output: Path = typer.Option(..., "--output", "-o", help="Ensemble model directory to write."),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Dev data the members were early-stopped on; the ensemble and each member are scored on it. Leave out for refit members."),
) -> None:
    """Merge seed-varied models into one ensemble (averaged tag scores, decoded by Viterbi)."""
    from ..training.ensemble import ensemble as run

    for p in models:
        if not p.is_dir():
            fail(f"model directory not found: {p}")
    if dev is not None and not dev.is_file():
        fail(f"file not found: {dev}")
    try:
        meta = run(models, output, dev_path=dev, command=invocation(ctx))
    except (ModelLoadError, ValueError) as err:
        fail(str(err))
    seeds = ", ".join(str(member_seed(m)) for m in meta["members"])
    if meta["dev_scores"] is None:
        typer.echo(f"ensemble of {len(meta['members'])} (seeds {seeds}), no held-out dev -> {output}")
        return
    for m in meta["members"]:
        typer.echo(f"member seed {member_seed(m)}: dev F1 {m['dev_f1']:.2f}")
    typer.echo(f"ensemble of {len(meta['members'])}: dev F1 {meta['dev_scores']['micro']['f1']:.2f} -> {output}")


@app.command("add-vectors")
def add_vectors(
    ctx: typer.Context,
    model: Path = typer.Argument(..., help="Model directory trained with frozen vectors (a single model or an ensemble)."),
    vectors: Path = typer.Option(..., "--vectors", help="The vector file the model was trained with."),
    output: Path = typer.Option(..., "--output", "-o", help="Model directory to write."),
    max_vocab: Optional[int] = typer.Option(None, help="Most rows in all (default: every key of the vectors)."),
    word_vector_bits: Optional[int] = typer.Option(None, help="Store the table in 16 or 8 bits (default: as the model does)."),
) -> None:
    """Give a trained model a vector row for every word of its vector file it lacks.

    Training never looks up the rows of non-training words, so the network is unchanged:
    words it had to treat as unknown get their vectors."""
    from ..training.ensemble import add_vectors as run

    if not model.is_dir():
        fail(f"model directory not found: {model}")
    if not vectors.exists():
        fail(f"file not found: {vectors}")
    try:
        meta = run(model, vectors, output, max_vocab=max_vocab, word_vector_bits=word_vector_bits,
                   command=invocation(ctx))
    except (ModelLoadError, ValueError) as err:
        fail(str(err))
    added = meta["added_vectors"]
    typer.echo(f"{added['rows_added']:,} rows added, {meta['vectors']['kept_rows']:,} in all "
               f"({added['word_vector_bits']}-bit) -> {output}")
