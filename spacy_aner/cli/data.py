"""Data commands: ``prepare`` (ANERCorp to CoNLL and DocBin) and ``embeddings`` (Word2Vec)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import typer

from .common import app, fail, warn


@app.command()
def prepare(
    data_dir: Path = typer.Argument(..., help="Folder with ANERCorp_CamelLab_train.txt and ANERCorp_CamelLab_test.txt."),
    out_dir: Path = typer.Argument(..., help="Where to write train/test(/dev) .conll and .spacy files."),
    dev_fraction: float = typer.Option(0.0, "--dev-fraction", help="Hold out this last fraction of train sentences as dev (test is never used for tuning)."),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first malformed line instead of repairing it with a warning."),
) -> None:
    """Convert the CAMeL Lab ANERCorp split into CoNLL (WORD<TAB>TAG) and spaCy DocBin files.

    Prints sentences, words and entities per type of every part, and checks the word
    counts against the release (125,102 train / 25,008 test).
    """
    from ..training.corpus import RELEASE_WORDS, CorpusFormatError, CorpusWarning, prepare as run

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CorpusWarning)
        try:
            stats = run(data_dir, out_dir, dev_fraction=dev_fraction, strict=strict)
        except (CorpusFormatError, FileNotFoundError, ValueError) as err:
            fail(str(err))
    for w in caught:
        warn(str(w.message))
    source = stats.pop("source")
    for name, st in stats.items():
        ents = ", ".join(f"{k} {v:,}" for k, v in st["entities_per_type"].items())
        typer.echo(f"{name:5}: {st['sentences']:,} sentences, {st['words']:,} words, "
                   f"{st['entities']:,} entities ({ents}) -> {out_dir / name}.conll, .spacy")
    for part in ("train", "test"):
        got, want = source[f"release_{part}_words"], RELEASE_WORDS[part]
        mark = "matches" if got == want else "DIFFERS FROM"
        typer.echo(f"{part} file: {got:,} words, {mark} the CAMeL Lab release ({want:,})")
    (out_dir / "stats.json").write_text(json.dumps({**stats, "source": source}, indent=2, ensure_ascii=False))


def text_sources(saudinewsnet: Path | None, text: list[Path], conll: list[Path] | None = None) -> list:
    """Lazy paragraph iterators over the corpora given (``conll=None``: the command has no --conll)."""
    from ..training.embeddings import iter_conll_sentences, iter_saudinewsnet, iter_text_file

    sources = [iter_saudinewsnet(saudinewsnet)] if saudinewsnet else []
    sources += [iter_conll_sentences(p) for p in conll or []]
    sources += [iter_text_file(p) for p in text]
    if not sources:
        fail("give at least one of --saudinewsnet, " + ("--conll, " if conll is not None else "") + "--text")
    for p in [*(conll or []), *text]:
        if not p.is_file():
            fail(f"file not found: {p}")
    return sources


@app.command()
def embeddings(
    output: Path = typer.Option(..., "--output", "-o", help="Where to save the vectors (gensim KeyedVectors, .kv)."),
    saudinewsnet: Path = typer.Option(None, "--saudinewsnet", help="SaudiNewsNet folder of *.zip files (read in place)."),
    conll: list[Path] = typer.Option([], "--conll", help="WORD TAG file(s) whose words are added (e.g. train.conll; never the test split)."),
    text: list[Path] = typer.Option([], "--text", help="Plain-text corpus file(s), one paragraph per line."),
    dim: int = typer.Option(100, min=1, help="Vector size."),
    window: int = typer.Option(5, min=1, help="Context window."),
    min_count: int = typer.Option(3, min=1, help="Ignore keys rarer than this."),
    epochs: int = typer.Option(5, min=1, help="Passes over the text."),
    cbow: bool = typer.Option(False, "--cbow", help="CBOW instead of skip-gram (faster, weaker on rare words)."),
    workers: int = typer.Option(2, min=1, help="Training threads."),
    seed: int = typer.Option(13, help="Random seed."),
) -> None:
    """Train Word2Vec (gensim) on Arabic text tokenised and normalised as the model's input."""
    import itertools
    import tempfile
    import time

    from ..training.embeddings import train_word2vec

    # Checked before training, which can take many minutes.
    if output.is_dir():
        fail(f"cannot write {output}: it is a directory (give a file name such as vectors.kv)")
    if output.suffix.lower() != ".kv":
        fail(f"cannot write {output}: give a name ending in .kv (train and add-vectors read the format by it)")
    sources = text_sources(saudinewsnet, text, conll)
    folder = output.resolve().parent  # where the file (or the file a link names) will be
    try:  # the one sure test that a folder takes a new file: make one (permissions do not bind root)
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as err:
        fail(f"cannot write {output}: {err.strerror} ({err.filename or folder})")
    start = time.perf_counter()
    try:
        kv = train_word2vec(itertools.chain(*sources), dim=dim, window=window, min_count=min_count,
                            epochs=epochs, sg=not cbow, workers=workers, seed=seed)
    except (FileNotFoundError, ValueError) as err:
        fail(str(err))
    kv.save(str(output))
    minutes = (time.perf_counter() - start) / 60
    typer.echo(f"{len(kv):,} vectors of size {kv.vector_size} from {kv.n_training_words:,} words "
               f"in {minutes:.1f} min -> {output}")



gazetteer_app = typer.Typer(help="Name lists the network reads (gazetteers).", no_args_is_help=True)
app.add_typer(gazetteer_app, name="gazetteer")


@gazetteer_app.command("build")
def gazetteer_build(
    output: Path = typer.Option(..., "--output", "-o", help="The gazetteer file to write (.json.gz)."),
    shared: Path = typer.Option(None, "--shared", help="The built-in lists' folder (../shared/data/gazetteers; see its SOURCE.md)."),
    names: list[Path] = typer.Option([], "--names", help="A list of your own: name<TAB>LABEL lines, or JSONL with text and label; repeatable."),
) -> None:
    """Build one gazetteer (normalised, with proclitic forms matched) for `--paths.gazetteer` in training."""
    from ..core.gazetteer import GazetteerError
    from ..training.gazetteers import build_gazetteer

    if shared is None and not names:
        fail("give --shared DIR, --names FILE, or both")
    if shared is not None and not shared.is_dir():
        fail(f"folder not found: {shared}")
    if output.is_dir():
        fail(f"{output} is a folder: give the gazetteer file to write (.json.gz)")
    try:
        gazetteer, kept = build_gazetteer(shared, names)
    except (OSError, ValueError) as err:  # GazetteerError is a ValueError, as is a broken JSON list under --shared
        fail(str(err) if isinstance(err, GazetteerError) else f"{type(err).__name__}: {err}")
    output.parent.mkdir(parents=True, exist_ok=True)
    gazetteer.write(output)
    for source, n in kept.items():
        typer.echo(f"{source}: {n:,} entries (a name in several entries counts once below)")
    counts = ", ".join(f"{label} {n:,}" for label, n in gazetteer.counts().items())
    typer.echo(f"{len(gazetteer):,} names ({counts}) -> {output}")
