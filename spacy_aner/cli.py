"""The ``spacy-aner`` command line (also ``python -m spacy_aner``)."""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import typer

app = typer.Typer(
    name="spacy-aner",
    help="Arabic named-entity recognition for spaCy: prepare ANERCorp, train, evaluate, annotate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Arabic named-entity recognition for spaCy: prepare ANERCorp, train, evaluate, annotate."""


def _invocation(ctx: typer.Context) -> str:
    """The command line that is running, to record next to the figures it produces."""
    import shlex

    if ctx.info_name in sys.argv[1:]:  # a real command line
        return "spacy-aner " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    params = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in ctx.params.items())  # called in-process
    return f"spacy-aner {ctx.info_name} {params}"


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


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
    from .corpus import RELEASE_WORDS, CorpusFormatError, CorpusWarning, prepare as run

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CorpusWarning)
        try:
            stats = run(data_dir, out_dir, dev_fraction=dev_fraction, strict=strict)
        except (CorpusFormatError, FileNotFoundError, ValueError) as err:
            _fail(str(err))
    for w in caught:
        typer.secho(f"warning: {w.message}", fg=typer.colors.YELLOW, err=True)
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


def _text_sources(saudinewsnet: Path | None, text: list[Path], conll: list[Path] | None = None) -> list:
    """Lazy paragraph iterators over the corpora given (``conll=None``: the command has no --conll)."""
    from .embeddings import iter_conll_sentences, iter_saudinewsnet, iter_text_file

    sources = [iter_saudinewsnet(saudinewsnet)] if saudinewsnet else []
    sources += [iter_conll_sentences(p) for p in conll or []]
    sources += [iter_text_file(p) for p in text]
    if not sources:
        _fail("give at least one of --saudinewsnet, " + ("--conll, " if conll is not None else "") + "--text")
    for p in [*(conll or []), *text]:
        if not p.is_file():
            _fail(f"file not found: {p}")
    return sources


@app.command()
def embeddings(
    output: Path = typer.Option(..., "--output", "-o", help="Where to save the vectors (gensim KeyedVectors, .kv)."),
    saudinewsnet: Path = typer.Option(None, "--saudinewsnet", help="SaudiNewsNet folder of *.zip files (read in place)."),
    conll: list[Path] = typer.Option([], "--conll", help="WORD TAG file(s) whose words are added (e.g. train.conll; never the test split)."),
    text: list[Path] = typer.Option([], "--text", help="Plain-text corpus file(s), one paragraph per line."),
    dim: int = typer.Option(100, help="Vector size."),
    window: int = typer.Option(5, help="Context window."),
    min_count: int = typer.Option(3, help="Ignore keys rarer than this."),
    epochs: int = typer.Option(5, help="Passes over the text."),
    cbow: bool = typer.Option(False, "--cbow", help="CBOW instead of skip-gram (faster, weaker on rare words)."),
    workers: int = typer.Option(2, help="Training threads."),
    seed: int = typer.Option(13, help="Random seed."),
) -> None:
    """Train Word2Vec (gensim) on Arabic text tokenised and normalised as the model's input."""
    import itertools
    import time

    from .embeddings import train_word2vec

    sources = _text_sources(saudinewsnet, text, conll)
    start = time.perf_counter()
    try:
        kv = train_word2vec(itertools.chain(*sources), dim=dim, window=window, min_count=min_count,
                            epochs=epochs, sg=not cbow, workers=workers, seed=seed)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    output.parent.mkdir(parents=True, exist_ok=True)
    kv.save(str(output))
    minutes = (time.perf_counter() - start) / 60
    typer.echo(f"{len(kv):,} vectors of size {kv.vector_size} from {kv.n_training_words:,} words "
               f"in {minutes:.1f} min -> {output}")


@app.command()
def train(
    ctx: typer.Context,
    train_file: Path = typer.Argument(..., help="Training data, WORD TAG per line (e.g. OUT/train.conll from `prepare`)."),
    output: Path = typer.Option(..., "--output", "-o", help="Model directory to write (weights, vocab, config.json, meta.json, training.json)."),
    dev: Path = typer.Option(None, "--dev", help="Dev data (e.g. OUT/dev.conll). Default: the last --dev-fraction of the training file."),
    dev_fraction: float = typer.Option(0.1, help="Fraction of training sentences held out as dev when --dev is not given."),
    vectors: Path = typer.Option(None, "--vectors", help="Word vectors: .kv from `spacy-aner embeddings`, AraVec .mdl, word2vec .bin/.txt, fastText .bin."),
    output_layer: str = typer.Option("crf", "--output-layer", help="crf or softmax."),
    lstm_units: int = typer.Option(128, help="LSTM units per direction."),
    lstm_layers: int = typer.Option(2, help="Stacked BiLSTM layers."),
    char_filters: int = typer.Option(64, help="Character CNN filters (0 to drop character features is not supported)."),
    char_kernels: str = typer.Option(None, "--char-kernels", help="Comma-separated widths of several character CNNs (--char-filters each), e.g. 2,3,4,5; default one CNN of width 3."),
    dropout: float = typer.Option(0.5, help="Dropout before and after the BiLSTM."),
    trainable_embeddings: bool = typer.Option(False, "--trainable-embeddings", help="Fine-tune the word vectors (default: frozen)."),
    clitic_backoff: bool = typer.Option(True, "--clitic-backoff/--no-clitic-backoff", help="Look up unknown words without their proclitics (و ف ب ل ك ال)."),
    max_vocab: int = typer.Option(40_000, help="Word vectors kept in the model: all training words, then the most frequent others."),
    unknown_without_vector: bool = typer.Option(False, "--unknown-without-vector", help="Read training words that have no vector as unknown (clitic back-off, else <unk>), as unseen words are read at test time; default: each gets a random frozen row of its own."),
    word_vector_bits: int = typer.Option(16, help="Store the frozen word vectors in 16 bits, or 8 (half the size, for a large --max-vocab)."),
    epochs: int = typer.Option(60, help="Most epochs."),
    patience: int = typer.Option(8, help="Stop after this many epochs without a better dev F1."),
    batch_size: int = typer.Option(32, help="Sentences per batch."),
    learning_rate: float = typer.Option(3e-3, help="Adam learning rate."),
    lr_decay: float = typer.Option(0.5, help="Multiply the learning rate by this after 2 epochs without a better dev F1 (1 = constant)."),
    word_dropout: float = typer.Option(0.0, help="Share of training words replaced by <unk> (teaches tagging unseen words)."),
    mention_replacement: float = typer.Option(0.0, help="Chance that each training entity is swapped for another training entity of its label, anew every epoch (mention replacement)."),
    name_shortening: float = typer.Option(0.0, help="Chance that each person name of several words is cut to its first or last word, anew every epoch."),
    context_crops: float = typer.Option(0.0, help="Chance that each training sentence is replaced by a random stretch of it that cuts no entity, anew every epoch."),
    token_loss: float = typer.Option(0.0, help="CRF only: weight of a per-word softmax loss on the unary scores, added to the CRF loss (0 = CRF loss alone)."),
    seed: int = typer.Option(13, help="Random seed."),
    silver: Path = typer.Option(None, "--silver", help="Extra teacher-tagged training sentences from `spacy-aner silver` (never used as dev)."),
    init_from: Path = typer.Option(None, "--init-from", help="Start the char features and the first BiLSTM layer from a language model made by `spacy-aner pretrain` over the same --vectors."),
    refit_from: Path = typer.Option(None, "--refit-from", help="Refit only: take --epochs and --lr-drops from this earlier run with a dev set (its meta.json and training.json)."),
    lr_drops: str = typer.Option(None, "--lr-drops", help="Refit only (--dev-fraction 0, no --dev): comma-separated epochs after which the learning rate is multiplied by --lr-decay, read off a run with a dev set (its training.json); train exactly --epochs epochs."),
) -> None:
    """Train the BiLSTM(-CRF) tagger with early stopping on dev entity F1 (the test split is never read).

    With --dev-fraction 0 and no --dev, refit on the whole file for exactly --epochs epochs
    (use the epoch count and --lr-drops of an earlier run with a dev set, or --refit-from it)."""
    from .model import ModelConfig
    from .training import train as run

    for p in [train_file] + ([dev] if dev else []) + ([silver] if silver else []):
        if not p.is_file():
            _fail(f"file not found: {p}")
    if init_from is not None and not init_from.is_dir():
        _fail(f"language model directory not found: {init_from}")
    try:
        widths = [int(x) for x in char_kernels.split(",") if x.strip()] if char_kernels else []
    except ValueError:
        _fail(f"--char-kernels takes comma-separated widths, got {char_kernels!r}")
    drops = None
    if refit_from is not None:
        from .training import refit_schedule

        if dev is not None or dev_fraction != 0 or lr_drops is not None:
            _fail("--refit-from refits without a dev set: give --dev-fraction 0 and neither --dev nor --lr-drops")
        try:
            schedule = refit_schedule(refit_from)
        except ValueError as err:
            _fail(str(err))
        for name, given in (("learning_rate", learning_rate), ("lr_decay", lr_decay),
                            ("mention_replacement", mention_replacement),
                            ("name_shortening", name_shortening),
                            ("context_crops", context_crops),
                            ("token_loss", token_loss),
                            ("unknown_without_vector", unknown_without_vector),
                            ("char_kernels", widths)):
            if schedule[name] is not None and schedule[name] != given:
                _fail(f"{refit_from} trained with {name} {schedule[name]}, not {given}: the replayed schedule would not match")
        epochs, drops = schedule["epochs"], schedule["lr_drops"]
        typer.echo(f"refit schedule from {refit_from}: {epochs} epochs, learning rate x{lr_decay} after "
                   f"epoch(s) {', '.join(map(str, drops)) or 'none'}")
    if lr_drops is not None:
        try:
            drops = [int(x) for x in lr_drops.split(",") if x.strip()]
        except ValueError:
            _fail(f"--lr-drops takes comma-separated epoch numbers, got {lr_drops!r}")
    try:
        config = ModelConfig(output=output_layer, lstm_units=lstm_units, lstm_layers=lstm_layers, char_filters=char_filters,
                             dropout=dropout, trainable_embeddings=trainable_embeddings,
                             clitic_backoff=clitic_backoff, word_vector_bits=word_vector_bits,
                             char_kernels=widths)
        meta = run(train_file, output, dev_path=dev, dev_fraction=dev_fraction, vectors=vectors, config=config,
                   max_vocab=max_vocab, epochs=epochs, patience=patience, batch_size=batch_size,
                   learning_rate=learning_rate, lr_decay=lr_decay, word_dropout=word_dropout, seed=seed,
                   lr_drops=drops, silver_path=silver, init_from=init_from,
                   mention_replacement=mention_replacement, unknown_without_vector=unknown_without_vector,
                   name_shortening=name_shortening, context_crops=context_crops, token_loss=token_loss,
                   command=_invocation(ctx))
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    if meta["dev_scores"] is None:
        typer.echo(f"refit: {meta['epochs_run']} epochs on {meta['sentences']['train']:,} sentences, no dev set, "
                   f"in {meta['training_minutes']} min -> {output}")
        return
    micro = meta["dev_scores"]["micro"]
    typer.echo(f"best epoch {meta['best_epoch']} of {meta['epochs_run']}: dev P {micro['precision']:.2f} "
               f"R {micro['recall']:.2f} F1 {micro['f1']:.2f} in {meta['training_minutes']} min -> {output}")


@app.command()
def pretrain(
    ctx: typer.Context,
    train_file: Path = typer.Argument(..., help="The training file the tagger will be trained on (its vocabulary is built the same way)."),
    output: Path = typer.Option(..., "--output", "-o", help="Directory to write (lm.weights.h5, lm.json, pretraining.json)."),
    vectors: Path = typer.Option(..., "--vectors", help="The word vectors the tagger will be trained with."),
    saudinewsnet: Path = typer.Option(None, "--saudinewsnet", help="SaudiNewsNet folder of *.zip files (read in place)."),
    text: list[Path] = typer.Option([], "--text", help="Plain-text corpus file(s), one paragraph per line."),
    sentences: int = typer.Option(50_000, "--sentences", "-n", help="Most sentences to train on."),
    rate: float = typer.Option(0.25, help="Share of paragraphs sampled (spread the sample over the whole corpus)."),
    output_words: int = typer.Option(8000, help="Most frequent words the language model predicts; the rest share one class."),
    epochs: int = typer.Option(1, help="Passes over the sentences."),
    batch_size: int = typer.Option(64, help="Sentences per batch."),
    learning_rate: float = typer.Option(1e-3, help="Adam learning rate."),
    seed: int = typer.Option(13, help="Sampling and training seed."),
) -> None:
    """Pretrain the char features and first BiLSTM layer as a bidirectional language model (for `train --init-from`)."""
    import itertools

    from .pretrain import pretrain as run
    from .silver import sample_sentences

    sources = _text_sources(saudinewsnet, text)
    if not train_file.is_file():
        _fail(f"file not found: {train_file}")
    if not 0 < rate <= 1:
        _fail(f"--rate must be in (0, 1], got {rate}")
    if sentences < 1 or output_words < 1 or epochs < 1:
        _fail("--sentences, --output-words and --epochs must be at least 1")
    try:
        sample = sample_sentences(itertools.chain(*sources), sentences, rate=rate, seed=seed)
        meta = run(train_file, sample, output, vectors=vectors, n_out=output_words, epochs=epochs,
                   batch_size=batch_size, learning_rate=learning_rate, seed=seed, command=_invocation(ctx))
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    typer.echo(f"language model on {meta['sentences']:,} sentences ({meta['words']:,} words), loss "
               f"{meta['loss'][-1]:.3f} after {epochs} epoch(s), {meta['minutes']} min -> {output}")


@app.command()
def silver(
    ctx: typer.Context,
    teacher: Path = typer.Option(..., "--teacher", help="Model directory that tags the sentences (trained on the same gold data as the student)."),
    output: Path = typer.Option(..., "--output", "-o", help="WORD TAG file to write; a OUTPUT.json record of how it was made goes next to it."),
    saudinewsnet: Path = typer.Option(None, "--saudinewsnet", help="SaudiNewsNet folder of *.zip files (read in place)."),
    text: list[Path] = typer.Option([], "--text", help="Plain-text corpus file(s), one paragraph per line."),
    sentences: int = typer.Option(6000, "--sentences", "-n", help="Most sentences to write."),
    rate: float = typer.Option(0.025, help="Share of paragraphs sampled (spread the sample over the whole corpus)."),
    seed: int = typer.Option(0, help="Sampling seed."),
) -> None:
    """Tag sentences sampled from unlabelled Arabic text with a teacher model (silver data for `train --silver`)."""
    import itertools

    from .corpus import sha256_file
    from .model import ModelLoadError
    from .silver import make_silver

    sources = _text_sources(saudinewsnet, text)
    if not 0 < rate <= 1:
        _fail(f"--rate must be in (0, 1], got {rate}")
    if sentences < 1:
        _fail(f"--sentences must be at least 1, got {sentences}")
    try:
        counts = make_silver(itertools.chain(*sources), teacher, output, sentences, rate=rate, seed=seed)
    except (FileNotFoundError, ModelLoadError, ValueError) as err:
        _fail(str(err))
    record = {"command": _invocation(ctx), "teacher": str(teacher), "sha256": sha256_file(output), **counts}
    Path(str(output) + ".json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    typer.echo(f"{counts['sentences']:,} sentences, {counts['words']:,} words, {counts['entities']:,} entities -> {output}")


@app.command()
def ensemble(
    ctx: typer.Context,
    models: list[Path] = typer.Argument(..., help="Model directories trained with `train` on the same data and vectors, differing only in --seed."),
    output: Path = typer.Option(..., "--output", "-o", help="Ensemble model directory to write."),
    dev: Path = typer.Option(None, "--dev", help="Dev data the members were early-stopped on; the ensemble and each member are scored on it. Leave out for refit members (no held-out dev)."),
) -> None:
    """Merge seed-varied models into one ensemble (averaged tag scores, decoded by Viterbi)."""
    from .model import ModelLoadError
    from .training import ensemble as run

    for p in models:
        if not p.is_dir():
            _fail(f"model directory not found: {p}")
    if dev is not None and not dev.is_file():
        _fail(f"file not found: {dev}")
    try:
        meta = run(models, output, dev_path=dev, command=_invocation(ctx))
    except (ModelLoadError, ValueError) as err:
        _fail(str(err))
    if meta["dev_scores"] is None:
        typer.echo(f"ensemble of {len(meta['members'])} (seeds {', '.join(str(m['seed']) for m in meta['members'])}), "
                   f"no held-out dev -> {output}")
        return
    for m in meta["members"]:
        typer.echo(f"member seed {m['seed']}: dev F1 {m['dev_f1']:.2f}")
    typer.echo(f"ensemble of {len(meta['members'])}: dev F1 {meta['dev_scores']['micro']['f1']:.2f} -> {output}")


@app.command("add-vectors")
def add_vectors(
    ctx: typer.Context,
    model: Path = typer.Argument(..., help="Model directory trained with frozen --vectors (a single model or an ensemble)."),
    vectors: Path = typer.Option(..., "--vectors", help="The vector file the model was trained with."),
    output: Path = typer.Option(..., "--output", "-o", help="Model directory to write."),
    max_vocab: int = typer.Option(None, help="Most rows in all (default: every key of the vectors)."),
    word_vector_bits: int = typer.Option(None, help="Store the table in 16 or 8 bits (default: as the model does)."),
) -> None:
    """Give a trained model a vector row for every word of its vector file it lacks.

    Training never looks up the rows of non-training words, so the network is unchanged:
    words it had to treat as unknown get their vectors."""
    from .model import ModelLoadError
    from .training import add_vectors as run

    if not model.is_dir():
        _fail(f"model directory not found: {model}")
    if not vectors.exists():
        _fail(f"file not found: {vectors}")
    try:
        meta = run(model, vectors, output, max_vocab=max_vocab, word_vector_bits=word_vector_bits,
                   command=_invocation(ctx))
    except (ModelLoadError, ValueError) as err:
        _fail(str(err))
    typer.echo(f"{meta['added_vectors']['rows_added']:,} rows added, {meta['vectors']['kept_rows']:,} in all "
               f"({meta['hyperparameters']['word_vector_bits']}-bit) -> {output}")


@app.command()
def evaluate(
    ctx: typer.Context,
    test_files: list[Path] = typer.Argument(..., help="WORD TAG file(s) to score, e.g. the released CAMeL test split and the repaired one, side by side."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for metrics.json, report.txt and the PNG plots."),
    model: Path = typer.Option(None, "--model", help="Model directory (default: the shipped model)."),
    raw: bool = typer.Option(False, "--raw", help="Also score on raw text through the CAMeL tokenizer, matching entities by character offsets."),
    doc_context: bool = typer.Option(False, "--doc-context", help="Also score with each file read as running text: names found in one sentence are tagged where they recur in the next ones (the component's consistency_window)."),
    batch_size: int = typer.Option(256, help="Sentences per nlp.pipe batch."),
    record: bool = typer.Option(False, "--record", help="Write the micro scores and this command into the model's meta.json (test_scores)."),
) -> None:
    """Entity-level P/R/F1 (seqeval default and strict IOB2, and spaCy's Scorer) with plots.

    The pipeline runs on the gold words, so figures are comparable with published ones;
    --raw adds a score where tokenisation errors count too.
    """
    from . import load
    from .component import DEFAULT_MODEL
    from .corpus import sha256_file
    from .evaluation import evaluate_file, model_hash, read_gold, strip_private, summary_line
    from .model import ModelLoadError
    from .plots import confusion_matrix, per_class_bars, training_curves

    gold = {}
    for p in test_files:
        if not p.is_file():
            _fail(f"file not found: {p}")
        try:
            gold[p] = read_gold(p)  # every file checked before the model loads or anything is scored
        except ValueError as err:
            _fail(str(err))
    model_dir = model or DEFAULT_MODEL
    try:
        nlp = load(model_dir)
        tagger = nlp.get_pipe("aner_lstm").tagger  # load now: a broken model fails before any work
    except ModelLoadError as err:
        _fail(str(err))
    output.mkdir(parents=True, exist_ok=True)
    results, reports = {}, []
    for path in test_files:
        name = path.name.rsplit(".", 1)[0]
        results[name] = evaluate_file(nlp, path, raw=raw, batch_size=batch_size, corpus=gold[path],
                                      doc_context=doc_context)
        reports.append(f"== {path} ==\n\nseqeval default mode (conlleval):\n{results[name]['report']}\n"
                       f"seqeval strict IOB2 mode:\n{results[name]['report_strict']}")
    first = results[next(iter(results))]
    micro = first["seqeval_default"]["micro"]
    metrics = {
        "precision": micro["precision"], "recall": micro["recall"], "f1": micro["f1"],
        "mode": first["seqeval_default"]["mode"],
        "micro": micro, "macro": first["seqeval_default"]["macro"], "per_type": first["seqeval_default"]["per_type"],
        "sentences": first["sentences"], "words": first["words"], "file": first["file"],
        "model": str(model_dir), "model_hash": model_hash(model_dir),
        "files": {name: {k: v for k, v in strip_private(r).items() if not k.startswith("report")}
                  for name, r in results.items()},
    }
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False))
    (output / "report.txt").write_text("\n".join(reports), encoding="utf-8")
    per_class_bars(results, output / "per_class.png")
    for name, r in results.items():
        confusion_matrix(r["confusion"], output / f"confusion_{name}.png", f"{name}: entity types over exact spans")
    curves = model_dir / "training.json"
    if curves.is_file():
        members = tagger.meta.get("members")
        names = [f"seed {m.get('seed')}" for m in members] if isinstance(members, list) else None
        training_curves(json.loads(curves.read_text()), output / "training_curves.png", names)
    if record:
        from .model import META_FILE

        meta_path = model_dir / META_FILE
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        meta.setdefault("test_scores", {})

        def seqeval_record(scores: dict) -> dict:
            """Micro scores of both seqeval modes and per-type F1 (default mode)."""
            return {**{k: scores[k]["micro"] for k in ("seqeval_default", "seqeval_strict")},
                    "per_type_f1": {lab: v["f1"] for lab, v in scores["seqeval_default"]["per_type"].items()}}

        for name, r in results.items():
            meta["test_scores"][name] = {
                "file": r["file"], "sha256": sha256_file(r["file"]),
                "command": _invocation(ctx),
                **seqeval_record(r),
                **({"raw_text": r["raw_text"]["micro"]} if "raw_text" in r else {}),
                **({"doc_context": {"consistency_window": r["doc_context"]["consistency_window"],
                                    **seqeval_record(r["doc_context"])}}
                   if "doc_context" in r else {}),
            }
        meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    typer.echo("\n".join(reports))
    for name, r in results.items():
        typer.echo(summary_line(name, r))
    typer.echo(f"-> {output}/metrics.json, report.txt, " + ", ".join(sorted(p.name for p in output.glob("*.png"))))


@app.command()
def annotate(
    input_path: str = typer.Argument(..., metavar="INPUT", help="Documents: a text file (one document per line), a JSONL file (see --text-key), or - for stdin."),
    output: str = typer.Option("-", "--output", "-o", help="JSONL to write, one record per input line, in input order; - for stdout. A file appears only when the run succeeds."),
    model: Path = typer.Option(None, "--model", help="Model directory (default: the shipped model)."),
    text_key: str = typer.Option(None, "--text-key", help="Read INPUT as JSONL, each document from this key (an input named *.jsonl or *.ndjson is JSONL with key 'text')."),
    id_key: str = typer.Option(None, "--id-key", help="JSONL only: write this key's value instead of the text into each record."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Documents per nlp.pipe batch."),
    n_process: int = typer.Option(1, "--n-process", min=1, help="Worker processes for nlp.pipe; output is byte-identical to 1 process."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Go on past lines that are not UTF-8 or not a usable JSON object: warn and write {line, error, entities: []} for each, instead of stopping."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no summary line (warnings are still shown)."),
) -> None:
    """Tag a corpus, streaming: one JSONL record per input line, in input order.

    A record is {"text": ..., "entities": [{"start", "end", "label", "text"}]}
    (the id instead of the text with --id-key). start and end are character
    (code point) offsets into the original text; an empty line gives a record
    with no entities. A line that is not UTF-8 (in JSONL: not an object with
    the text key) stops the run, naming the line, unless --skip-invalid. A
    document that cannot be tokenised (a lone surrogate from a JSON escape, or
    over 5,000,000 characters) becomes {line, error, entities} with a warning.
    """
    import os

    from .annotate import STDIN, InvalidInputError, annotate_file, load_pipeline, resolve_text_key
    from .model import ModelLoadError

    if id_key is not None and resolve_text_key(input_path, text_key) is None:
        _fail("--id-key needs JSONL input: give --text-key (or a *.jsonl file)")
    if input_path != STDIN and not Path(input_path).is_file():
        _fail(f"file not found: {input_path}")
    if output != STDIN and Path(output).is_dir():
        _fail(f"cannot write {output}: it is a directory (give a file name)")  # before hours of tagging
    try:
        nlp = load_pipeline(model, n_process=n_process)
    except ModelLoadError as err:
        _fail(str(err))
    try:
        stats = annotate_file(nlp, input_path, output, text_key=text_key, id_key=id_key, batch_size=batch_size,
                              n_process=n_process, skip_invalid=skip_invalid, progress=not quiet,
                              warn=lambda msg: typer.secho(f"warning: {msg}", fg=typer.colors.YELLOW, err=True))
    except InvalidInputError as err:
        where = "" if output == STDIN else "; nothing was written"
        _fail(f"{err}\n(fix the line, or pass --skip-invalid to write an error record for it and go on{where})")
    except BrokenPipeError:  # e.g. `| head`: the reader has gone, stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(1)
    except (OSError, ValueError) as err:
        _fail(str(err))
    if not quiet:
        typer.echo(f"{stats.records:,} records ({stats.errors:,} errors), {stats.entities:,} entities in "
                   f"{stats.seconds:.1f} s ({stats.docs_per_second:,.0f} docs/s) -> {output}", err=True)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
