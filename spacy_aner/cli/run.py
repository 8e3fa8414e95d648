"""Commands that run the pipeline: ``evaluate`` (scores and plots) and ``annotate`` (a corpus to JSONL)."""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Dict

import typer

from ..core.config import META_FILE
from .common import app, fail, invocation, warn


@app.command()
def evaluate(
    ctx: typer.Context,
    test_files: list[Path] = typer.Argument(..., help="WORD TAG file(s) to score, e.g. the released CAMeL test split and the repaired one, side by side."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for metrics.json, report.txt and the PNG plots."),
    model: Path = typer.Option(None, "--model", help="Model directory (default: the shipped model)."),
    raw: bool = typer.Option(False, "--raw", help="Also score on raw text through the CAMeL tokenizer, matching entities by character offsets."),
    doc_context: bool = typer.Option(False, "--doc-context", help="Also score with each file read as running text: names found in one sentence are tagged where they recur in the next ones (the component's consistency_window)."),
    batch_size: int = typer.Option(256, min=1, help="Sentences per nlp.pipe batch."),
    members: int = typer.Option(0, "--members", min=0, help="Score the first N networks of the model's ensemble alone (0: all)."),
    record: bool = typer.Option(False, "--record", help="Write the micro scores and this command into the model's meta.json (test_scores)."),
) -> None:
    """Entity-level P/R/F1 (seqeval default and strict IOB2, and spaCy's Scorer) with plots.

    The pipeline runs on the gold words, so figures are comparable with published ones;
    --raw adds a score where tokenisation errors count too.
    """
    from ..pipeline.component import DEFAULT_MODEL
    from ..pipeline.loading import load
    from ..training.evaluation import evaluate_file, model_hash, read_gold, strip_private, summary_line

    gold = {}
    for p in test_files:
        if not p.is_file():
            fail(f"{p} is a directory (give CoNLL files)" if p.is_dir() else f"file not found: {p}")
        try:
            gold[p] = read_gold(p)  # every file checked before the model loads or anything is scored
        except ValueError as err:
            fail(str(err))
    model_dir = model or DEFAULT_MODEL
    try:
        nlp = load(model_dir, members=members)
        tagger = nlp.get_pipe("aner_lstm").tagger  # load now: a broken model fails before any work
    except ValueError as err:  # a broken model (ModelLoadError), or more members than it has
        fail(str(err))
    if record and tagger.cut:
        fail(f"--record keeps the scores of the whole model ({tagger.config.members} networks): "
             f"leave out --members")
    output.mkdir(parents=True, exist_ok=True)
    results, reports = {}, []
    for path in test_files:
        name = result_name(path, results)
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
        "model": str(model_dir), "model_hash": model_hash(model_dir), "members": tagger.scorer.members,
        "files": {name: {k: v for k, v in strip_private(r).items() if not k.startswith("report")}
                  for name, r in results.items()},
    }
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False))
    (output / "report.txt").write_text("\n".join(reports), encoding="utf-8")
    if record:  # before the plots, which are the less important output
        record_test_scores(results, model_dir, invocation(ctx))
    write_plots(results, output, model_dir, tagger.meta)
    typer.echo("\n".join(reports))
    for name, r in results.items():
        typer.echo(summary_line(name, r))
    typer.echo(f"-> {output}/metrics.json, report.txt, " + ", ".join(sorted(p.name for p in output.glob("*.png"))))


def result_name(path: Path, taken: Dict) -> str:
    """The file's name without its suffix, numbered if another file already has it (a/test.txt b/test.txt)."""
    base = name = path.name.rsplit(".", 1)[0]
    k = 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


def write_plots(results: Dict, output: Path, model_dir: Path, meta: dict) -> None:
    """Per-class bars, a confusion matrix per file, and the training curves if the model has them."""
    from ..training.plots import confusion_matrix, per_class_bars, read_training_log, training_curves

    per_class_bars(results, output / "per_class.png")
    for name, r in results.items():
        confusion_matrix(r["confusion"], output / f"confusion_{name}.png", f"{name}: entity types over exact spans")
    members = meta.get("members")
    names = [f"member {k + 1}" for k in range(len(members))] if isinstance(members, list) else None
    try:
        log = read_training_log(model_dir)
        if log is not None:
            training_curves(log, output / "training_curves.png", names)
    except (ValueError, KeyError, TypeError) as err:  # a log edited or damaged: the scores stand without it
        warn(f"no training curves: {err if isinstance(err, ValueError) else f'{model_dir}: {err!r}'}")


def seqeval_record(scores: dict) -> dict:
    """Micro scores of both seqeval modes and per-type F1 (default mode)."""
    return {**{k: scores[k]["micro"] for k in ("seqeval_default", "seqeval_strict")},
            "per_type_f1": {lab: v["f1"] for lab, v in scores["seqeval_default"]["per_type"].items()}}


def record_test_scores(results: Dict, model_dir: Path, command: str) -> None:
    """Write the micro scores and the command into the model's meta.json (``test_scores``)."""
    from ..training.corpus import sha256_file

    meta_path = model_dir / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    if not isinstance(meta.get("test_scores"), dict):  # none yet, null, or edited by hand: replaced
        meta["test_scores"] = {}
    for name, r in results.items():
        meta["test_scores"][name] = {
            "file": r["file"], "sha256": sha256_file(r["file"]), "command": command, **seqeval_record(r),
            **({"raw_text": r["raw_text"]["micro"]} if "raw_text" in r else {}),
            **({"doc_context": {"consistency_window": r["doc_context"]["consistency_window"],
                                **seqeval_record(r["doc_context"])}} if "doc_context" in r else {}),
        }
    meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")


@app.command()
def annotate(
    input_path: str = typer.Argument(..., metavar="INPUT", help="Documents: a text file (one document per line), a JSONL file (see --text-key), or - for stdin."),
    output: str = typer.Option("-", "--output", "-o", help="JSONL to write, one record per input line, in input order; - for stdout. A file appears only when the run succeeds."),
    model: Path = typer.Option(None, "--model", help="Model directory (default: the shipped model)."),
    text_key: str = typer.Option(None, "--text-key", help="Read INPUT as JSONL, each document from this key (an input named *.jsonl or *.ndjson is JSONL with key 'text')."),
    id_key: str = typer.Option(None, "--id-key", help="JSONL only: write this key's value instead of the text into each record."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Documents per nlp.pipe batch."),
    n_process: int = typer.Option(1, "--n-process", min=1, help="Worker processes, each annotating whole batches; output is byte-identical to 1 process."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Go on past lines that are not UTF-8 or not a usable JSON object: warn and write {line, error, entities: []} for each, instead of stopping."),
    label: list[str] = typer.Option(None, "--label", metavar="LABEL=NAME", help="Rename a label (PERS=PERSON), or drop it with an empty name (MISC=); repeatable."),
    gazetteer: list[Path] = typer.Option(None, "--gazetteer", metavar="FILE", help="Names of your own the network reads as evidence (name<TAB>LABEL lines, or JSONL with text and label); repeatable. The model must have been trained with a gazetteer."),
    members: int = typer.Option(0, "--members", min=0, help="Compute with the first N networks of the model's ensemble only (0: all): faster, less accurate."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no summary line (warnings are still shown)."),
    spark: str = typer.Option(None, "--spark", metavar="MASTER_URL", help="Run on Apache Spark (e.g. spark://host:7077, local[4]); INPUT may then be text, JSONL or Parquet, a file, folder or glob, and OUTPUT is a folder of part files, Parquet if it ends in .parquet. See docs/spark.md."),
    partitions: int = typer.Option(None, "--partitions", min=1, help="With --spark: partitions to annotate (default: one per 8 MB of input, at least two per core)."),
) -> None:
    """Tag a corpus, streaming: one JSONL record per input line, in input order.

    A record is {"text": ..., "entities": [{"start", "end", "label", "text", "score"}]}
    (the id instead of the text with --id-key). start and end are character
    (code point) offsets into the original text; score is the entity's
    probability under the model's CRF; an empty line gives a record with no
    entities. A line that is not UTF-8 (in JSONL: not an object with
    the text key) stops the run, naming the line, unless --skip-invalid. A
    document that cannot be tokenised (a lone surrogate from a JSON escape, or
    over 5,000,000 characters) becomes {line, error, entities} with a warning.
    From a pipe, a record is written within about a second of its line.
    """
    from ..annotate.records import InvalidInputError, resolve_text_key
    from ..annotate.paths import check_paths, writes_in_place
    from ..annotate.runner import annotate_file, load_pipeline

    if spark is not None:
        return annotate_on_spark(input_path, output, spark, model=model, text_key=text_key, id_key=id_key,
                                 batch_size=batch_size, n_process=n_process, partitions=partitions, quiet=quiet,
                                 labels=label_map(label or []), gazetteers=gazetteer or [], members=members)
    if id_key is not None and resolve_text_key(input_path, text_key) is None:
        fail("--id-key needs JSONL input: give --text-key (or a *.jsonl file)")
    try:
        check_paths(input_path, output)  # before the model loads
    except ValueError as err:
        fail(str(err))
    try:
        nlp = load_pipeline(model, labels=label_map(label or []), gazetteers=gazetteer or [],
                            members=members)
    except ValueError as err:  # a broken model (ModelLoadError), label map, name list or member count
        fail(str(err))
    nothing_written = "" if writes_in_place(output) else "; nothing was written"  # a file appears only on success
    try:
        with exit_on_signals():
            stats = annotate_file(nlp, input_path, output, text_key=text_key, id_key=id_key, batch_size=batch_size,
                                  n_process=n_process, skip_invalid=skip_invalid, progress=not quiet,
                                  warn=warn)
    except BrokenProcessPool:
        fail(f"a worker process died (killed, or out of memory?){nothing_written}")
    except InvalidInputError as err:
        fail(f"{err}\n(fix the line, or pass --skip-invalid to write an error record for it and go on"
             f"{nothing_written})")
    except BrokenPipeError:  # e.g. `| head`: the reader has gone, stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(1)
    except (OSError, ValueError) as err:
        fail(str(err))
    if not quiet:
        typer.echo(f"{stats.records:,} records ({stats.errors:,} errors), {stats.entities:,} entities in "
                   f"{stats.seconds:.1f} s ({stats.docs_per_second:,.0f} docs/s) -> {output}", err=True)


@contextmanager
def exit_on_signals():
    """SIGTERM (timeout, docker stop, a scheduler) and SIGHUP (the terminal or ssh session gone)
    unwind like Ctrl-C: cleanup code runs, so no temporary file or worker process is left behind."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread handles signals
        yield
        return
    names = [n for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]  # Windows has no SIGHUP
    previous = {n: signal.signal(getattr(signal, n), lambda signum, frame: sys.exit(128 + signum)) for n in names}
    try:
        yield
    finally:
        for n, handler in previous.items():
            signal.signal(getattr(signal, n), handler)


def label_map(options: list[str]) -> Dict[str, str]:
    """``--label`` options (``PERS=PERSON``, ``MISC=`` to drop) as the component's ``labels``."""
    out: Dict[str, str] = {}
    for option in options:
        source, sep, target = (part.strip() for part in option.partition("="))
        if not sep or not source:
            fail(f"--label {option!r}: give LABEL=NAME, e.g. PERS=PERSON, or MISC= to drop MISC")
        if out.get(source, target) != target:
            fail(f"--label {source} is given twice, as {out[source]!r} and {target!r}")
        out[source] = target
    return out


def java_error(err) -> str:
    """The first line of a Java exception raised through py4j (the Java stack trace left out)."""
    try:
        text = str(err.java_exception.toString())
    except Exception:  # noqa: BLE001  (the JVM may be gone)
        text = str(err)
    lines = [line.strip(" :") for line in text.splitlines() if line.strip(" :")]
    first = lines[0] if lines else type(err).__name__
    return first if len(first) <= 600 else first[:600] + "..."


def annotate_on_spark(input_path: str, output: str, master: str, *, model, text_key, id_key, batch_size: int,
                      n_process: int, partitions, quiet: bool, labels: Dict[str, str], gazetteers: list,
                      members: int) -> None:
    """``annotate --spark``: the same records, written as part files by a Spark job."""
    import time
    import warnings

    try:
        from py4j.protocol import Py4JJavaError
        from pyspark.errors import PySparkException
    except ImportError:
        fail("--spark needs pyspark and pyarrow: pip install 'spacy-aner[spark]' (and Java 17 or newer)")
    from ..annotate.records import STDIN
    from ..annotate.runner import load_pipeline
    from ..annotate.spark_files import (PARQUET_SUFFIX, WORKERS_WITHOUT_TORCH, annotate_files, input_format,
                                        local_inputs_exist, spark_session)

    if n_process != 1:
        fail("--n-process does not apply with --spark: Spark runs a Python worker per executor core")
    if input_path == STDIN or not local_inputs_exist(input_path):
        fail(f"file not found: {input_path}" + (" (--spark reads files, not stdin)" if input_path == STDIN else ""))
    if output == STDIN:
        fail("--spark writes a folder of part files: give -o DIR (DIR.parquet for Parquet)")
    if local_inputs_exist(output) and "://" not in output:
        fail(f"cannot write {output}: it exists")
    if os.path.isdir(input_path) and "://" not in output and Path(output).resolve().is_relative_to(
            Path(input_path).resolve()):  # a later run would read the records as input
        fail(f"cannot write {output}: it is inside the input folder {input_path}")
    if id_key is not None and input_format(input_path, text_key) == "text":
        fail("--id-key needs JSONL or Parquet input: give --text-key (or a *.jsonl file)")
    if model is not None or labels or gazetteers or members:
        try:  # a broken model, label map, list or member count fails here
            load_pipeline(model, labels=labels, gazetteers=gazetteers, members=members)
        except ValueError as err:  # ModelLoadError included
            fail(str(err))
    # pyspark warns that pandas 3 is not supported yet: batches go through Arrow only, never pandas.
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
    start = time.perf_counter()
    try:
        session = spark_session(master, conf=WORKERS_WITHOUT_TORCH)  # this process has none either
    except PySparkException as err:
        fail(f"could not start Spark on {master} (is Java 17 or newer installed?): {err}")
    try:
        run = annotate_files(session, input_path, output, text_key=text_key, id_key=id_key, model=model, labels=labels,
                             gazetteers=[str(p.resolve()) for p in gazetteers], members=members,
                             output_format="parquet" if output.rstrip("/").endswith(PARQUET_SUFFIX) else "jsonl",
                             batch_size=batch_size, partitions=partitions)
    except (ValueError, FileExistsError, PySparkException) as err:  # a missing column, an output that exists, a path not found
        fail(str(err))
    except Py4JJavaError as err:  # a Java error pyspark does not translate: a corrupt file, a bad output path
        fail(f"the Spark job failed: {java_error(err)}")
    finally:
        session.stop()
    if not quiet:
        typer.echo(f"{run.rows_out:,} records ({run.errors:,} errors) from {run.rows_in:,} input rows in "
                   f"{run.partitions} partitions, {time.perf_counter() - start:.1f} s -> {output}", err=True)
