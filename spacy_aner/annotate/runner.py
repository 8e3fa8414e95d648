"""Batch annotation of corpora: generators over iterables that never hold more than a few batches.

* :func:`annotate_texts` — texts in, one ``{"entities": [...]}`` record per text out, in
  input order; a text that cannot be tokenised (a lone surrogate, not a ``str``, longer
  than ``nlp.max_length``) gives ``{"error": ..., "entities": []}`` instead of an exception.
* :func:`annotate_records` — :func:`annotate_texts` over :class:`~.records.InputRecord` s,
  giving the output records of :mod:`.records`.
* :func:`annotate_file` — reading, annotating and writing, as ``spacy-aner annotate`` runs it.

A broken input line (not UTF-8, a JSONL line that is not an object with the text key)
raises :class:`~.records.InvalidInputError`, or with ``skip_invalid`` becomes an error
record. A well-formed line whose document cannot be tokenised is always an error record.

Memory: documents go through ``nlp.pipe`` in lazily read chunks, each inside
``nlp.memory_zone()``, so the strings spaCy interns for new words are freed after each
chunk. With ``n_process > 1`` a pool of worker processes annotates one batch per task,
each in a memory zone of its own, and sends back only the entity records (not the
``Doc``), a few batches in flight at a time; workers forked from this process share the
loaded model's memory (the word table is memory-mapped) and make their own ONNX Runtime
session of one thread. Documents meet the network in the same batches whatever
``n_process`` is, and the output is byte-identical.

From a live input (a pipe, a terminal), :func:`annotate_file` reads through
:func:`~.records.with_pauses`: when the input falls silent, the batch being filled is
annotated and its records written, rather than held until the batch is full. Batches then
depend on when lines come; the records do not, since a document's entities do not depend
on the other documents of its batch (tested with pauses anywhere).
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from ..core.gazetteer import name_list_paths
from ..pipeline.entities import span_scores
from ..pipeline.loading import MAX_DOC_CHARS, load
from .paths import check_paths, write_output
from .records import (PAUSE, InputRecord, check_keys, is_live, read_records, resolve_text_key, source_name,
                      with_pauses)

#: Default number of documents per ``nlp.pipe`` batch.
DEFAULT_BATCH_SIZE = 256
#: Characters of text per memory zone with one process (spaCy's vocabulary is reset after each).
ZONE_CHARS = 2_000_000
#: Batches in flight per worker process: enough to keep the workers busy, few enough to bound memory.
BATCHES_PER_WORKER = 2
#: Decimal places of an entity's score in the output: enough to threshold, short lines.
SCORE_DIGITS = 4


def entity_records(doc, key: Optional[str] = "aner_lstm") -> List[Dict[str, Any]]:
    """``doc.ents`` as ``{"start", "end", "label", "text", "score"}`` (character offsets into
    ``doc.text``); the score is the entity's probability from ``doc.spans[key]``, the
    ``aner_lstm`` component's span group (``None`` for an entity another component set, and
    for every entity when ``key`` is None)."""
    scores = span_scores(doc, key)
    out = []
    for e in doc.ents:
        score = scores.get((e.start, e.end, e.label_))
        out.append({"start": e.start_char, "end": e.end_char, "label": e.label_, "text": e.text,
                    "score": None if score is None else round(score, SCORE_DIGITS)})
    return out


def text_problem(text: Any, max_length: Optional[int] = None) -> Optional[str]:
    """Why ``text`` cannot be annotated (``None`` if it can): the tokenizer's checks, done up front."""
    if not isinstance(text, str):
        return f"expected a str, got {type(text).__name__}"
    if max_length is not None and len(text) > max_length:
        return f"document of {len(text):,} characters is longer than nlp.max_length ({max_length:,})"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return (f"not valid Unicode: lone surrogate U+{ord(text[err.start]):04X} at offset {err.start} "
                "(cannot be tokenised)")
    return None


def annotate_texts(nlp, texts: Iterable[Any], *, batch_size: int = DEFAULT_BATCH_SIZE, n_process: int = 1,
                   chunk_chars: Optional[int] = None) -> Iterator[Dict[str, Any]]:
    """One record per text, in input order: ``{"entities": [{"start", "end", "label", "text"}, ...]}``.

    A text that cannot be annotated (see :func:`text_problem`) gives
    ``{"error": PROBLEM, "entities": []}`` and does not stop the others. ``texts`` is read
    lazily, a few batches ahead. ``n_process > 1`` annotates in that many worker processes,
    with identical output. ``chunk_chars`` is the text per memory zone in this process (see
    the module docstring). A :data:`~.records.PAUSE` among the texts (:func:`~.records.with_pauses`)
    ends the batch being filled, so the records of the texts before it come out at once.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if n_process < 1:
        raise ValueError(f"n_process must be positive, got {n_process}")
    pending: deque = deque()  # per input text in flight: None, or its error record
    max_length = getattr(nlp, "max_length", None)

    def placeholders() -> Iterator[str]:
        # A text that cannot be annotated goes through as "", so that its error record
        # leaves with the texts around it: a long run of them is never held in memory.
        for text in texts:
            if text is PAUSE:
                yield text
                continue
            problem = text_problem(text, max_length)
            pending.append(None if problem is None else {"error": problem, "entities": []})
            yield "" if problem else text

    for entities in _pipe_entities(nlp, placeholders(), batch_size, n_process, chunk_chars):
        error = pending.popleft()
        yield {"entities": entities} if error is None else error


def _pipe_entities(nlp, texts: Iterator[str], batch_size: int, n_process: int,
                   chunk_chars: Optional[int]) -> Iterator[List[Dict[str, Any]]]:
    """Entity records of every text: in this process one memory zone (chunk) at a time, or
    through a pool of ``n_process`` workers."""
    if n_process > 1:
        yield from _pool_entities(nlp, texts, batch_size, n_process)
        return
    it = iter(texts)
    while True:
        first = next(it, None)
        if first is None:
            return
        if first is PAUSE:
            continue
        chunk = _chunk(first, it, batch_size, ZONE_CHARS if chunk_chars is None else chunk_chars)
        with nlp.memory_zone():
            for doc in nlp.pipe(chunk, batch_size=batch_size):
                yield entity_records(doc)


#: The pipeline a worker process annotates with (set by :func:`_start_worker`).
_worker_nlp = None


def _start_worker(nlp) -> None:
    global _worker_nlp
    _worker_nlp = nlp
    # A worker whose parent was killed (SIGKILL, an OOM kill) would wait on its queue forever.
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _annotate_batch(texts: List[str], batch_size: int) -> List[List[Dict[str, Any]]]:
    """In a worker: the entity records of one batch, its new strings freed afterwards."""
    with _worker_nlp.memory_zone():
        return [entity_records(doc) for doc in _worker_nlp.pipe(texts, batch_size=batch_size)]


def _pool_entities(nlp, texts: Iterator[str], batch_size: int, n_process: int) -> Iterator[List[Dict[str, Any]]]:
    """Batches of ``batch_size`` texts annotated by ``n_process`` workers, in input order.
    A forked worker inherits ``nlp`` as loaded; under spawn it is pickled (the component
    then loads its model in the worker)."""
    it = iter(texts)
    in_flight: deque = deque()
    with ProcessPoolExecutor(n_process, mp_context=multiprocessing.get_context(), initializer=_start_worker,
                             initargs=(nlp,)) as pool:
        try:
            stop = "full"
            while stop != "end":
                batch, stop = _take(it, batch_size)
                if batch:
                    in_flight.append(pool.submit(_annotate_batch, batch, batch_size))
                # In order: every result at a pause or the end, else one once enough are in flight.
                while in_flight and (stop != "full" or len(in_flight) >= BATCHES_PER_WORKER * n_process):
                    yield from in_flight.popleft().result()
        finally:
            for future in in_flight:
                future.cancel()


def _take(texts: Iterator[Any], n: int) -> Tuple[List[Any], str]:
    """The next texts, up to ``n``, a pause or the end; and which came: ``"full"``, ``"pause"`` or ``"end"``."""
    batch: List[Any] = []
    for text in texts:
        if text is PAUSE:
            return batch, "pause"
        batch.append(text)
        if len(batch) == n:
            return batch, "full"
    return batch, "end"


def _chunk(first: str, rest: Iterator[str], batch_size: int, max_chars: int) -> Iterator[str]:
    """``first`` and the following texts, ending after a whole batch once ``max_chars`` is reached.

    Ending on a batch boundary keeps the batches, and so the network's inputs, the same
    for every chunk size and process count. A pause ends the chunk too, so that ``nlp.pipe``
    annotates the part batch it holds.
    """
    n = chars = 0
    text = first
    while True:
        yield text
        n += 1
        chars += len(text)
        if chars >= max_chars and n % batch_size == 0:
            return
        text = next(rest, None)
        if text is None or text is PAUSE:
            return


def annotate_records(nlp, records: Iterable[InputRecord], *, text_key: str = "text", id_key: Optional[str] = None,
                     batch_size: int = DEFAULT_BATCH_SIZE, n_process: int = 1, chunk_chars: Optional[int] = None,
                     on_error: Optional[Callable[[InputRecord, str], None]] = None) -> Iterator[Dict[str, Any]]:
    """Output records (see the module docstring) for ``records``, one each, in order.

    ``on_error(record, problem)`` is called for every record written as an error record.
    Raises ``ValueError`` at once for keys :func:`~.records.check_keys` refuses.
    """
    check_keys(text_key, id_key)
    return _output_records(nlp, records, text_key, id_key, batch_size, n_process, chunk_chars, on_error)


def _output_records(nlp, records: Iterable[InputRecord], text_key: str, id_key: Optional[str], batch_size: int,
                    n_process: int, chunk_chars: Optional[int],
                    on_error: Optional[Callable[[InputRecord, str], None]]) -> Iterator[Dict[str, Any]]:
    pending: deque = deque()

    def texts() -> Iterator[Optional[str]]:
        for rec in records:
            if rec is PAUSE:
                yield rec
                continue
            pending.append(rec)
            yield rec.text if rec.error is None else None

    for result in annotate_texts(nlp, texts(), batch_size=batch_size, n_process=n_process, chunk_chars=chunk_chars):
        rec = pending.popleft()
        problem = rec.error or result.get("error")
        if problem is not None:
            out: Dict[str, Any] = {"line": rec.line}
            if id_key is not None and rec.id is not None:
                out[id_key] = rec.id
            out["error"] = problem
            out["entities"] = []
            if on_error is not None:
                on_error(rec, problem)
        elif id_key is not None:
            out = {id_key: rec.id, "entities": result["entities"]}
        else:
            out = {text_key: rec.text, "entities": result["entities"]}
        yield out


def load_pipeline(model: Union[str, os.PathLike, None] = None, *, max_length: int = MAX_DOC_CHARS,
                  labels: Optional[Dict[str, str]] = None, gazetteers: Sequence[str] = (), members: int = 0,
                  threads: int = 0):
    """``spacy_aner.load(model)`` with its model loaded now, for batch annotation.

    A missing, truncated or incompatible model raises
    :class:`~spacy_aner.core.config.ModelLoadError` naming the file, before any input is
    read; a bad label map (the component's ``labels``) or name list (its ``gazetteers``)
    raises ``ValueError``, as does ``members`` (the component's) above the model's.
    ``threads`` is the component's (0: one per core, one in each worker process).
    ``nlp.max_length`` is ``max_length``: the pipeline is linear in the length of a document.
    """
    nlp = load(model, threads=threads, members=members, labels=dict(labels or {}), gazetteers=name_list_paths(gazetteers))
    nlp.max_length = max_length
    nlp.get_pipe("aner_lstm").tagger  # noqa: B018  (loads the model: errors surface here)
    return nlp


@dataclass
class AnnotateStats:
    records: int = 0
    entities: int = 0
    errors: int = 0
    seconds: float = 0.0

    @property
    def docs_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def print_warning(message: str) -> None:
    if sys.stderr is not None:  # started with stderr closed (2>&-): nowhere to warn
        print(f"warning: {message}", file=sys.stderr)


def annotate_file(nlp, source: Union[str, os.PathLike], output: Union[str, os.PathLike], *,
                  text_key: Optional[str] = None, id_key: Optional[str] = None,
                  batch_size: int = DEFAULT_BATCH_SIZE, n_process: int = 1, skip_invalid: bool = False,
                  progress: bool = True, warn: Optional[Callable[[str], None]] = None,
                  max_warnings: int = 50) -> AnnotateStats:
    """Annotate ``source`` (path or ``"-"``) into ``output`` (path or ``"-"``); see the module docstring.

    A file output is written to a temporary file beside it and renamed at the end, so an
    error leaves no partial output; through a symbolic link, the file it points at is
    replaced; a device or a pipe is written to directly. ``warn`` receives one message per
    error record (the first ``max_warnings``; then a count). Raises
    :class:`InvalidInputError` for a broken line without ``skip_invalid``, and ``ValueError``
    before any work for the paths :func:`check_paths` refuses.
    """
    from tqdm import tqdm

    check_paths(source, output)
    text_key = resolve_text_key(source, text_key)
    name = source_name(source)
    warn = warn or print_warning
    stats = AnnotateStats()

    def on_error(rec: InputRecord, problem: str) -> None:
        stats.errors += 1
        if stats.errors <= max_warnings:
            warn(f"{name}:{rec.line}: {problem}; written as an error record")
        elif stats.errors == max_warnings + 1:
            warn("further problems are not shown; every one is an error record (\"error\" key)")

    live = is_live(source)  # a pipe or a terminal: lines may come now and then
    records = read_records(source, text_key, id_key, skip_invalid, own_stdin=live)
    if live:
        records = with_pauses(records, ahead=batch_size)
    results = annotate_records(nlp, records, text_key=text_key or "text", id_key=id_key, batch_size=batch_size,
                               n_process=n_process, on_error=on_error)
    bar = tqdm(unit=" docs", desc="annotate", file=sys.stderr, mininterval=0.5, dynamic_ncols=True,
               disable=not progress or sys.stderr is None or not sys.stderr.isatty())

    def counted(results: Iterable[Dict[str, Any]]) -> Iterator[Dict[str, Any]]:
        for rec in results:
            stats.records += 1
            stats.entities += len(rec["entities"])
            bar.update(1)
            yield rec

    start = time.perf_counter()
    try:
        write_output(counted(results), output, flush_each=live)
    finally:
        bar.close()
        stats.seconds = time.perf_counter() - start
    return stats
