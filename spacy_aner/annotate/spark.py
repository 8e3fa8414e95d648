"""Corpus annotation on Apache Spark: the ``entities`` column, computed in Arrow batches.

Each Python worker process loads the pipeline once (:func:`worker_pipeline`, cached per
model and length limit) and keeps it for every batch and partition it is given; Spark
reuses its Python workers between tasks. Documents go through ``nlp.pipe`` in batches by
way of :func:`~.runner.annotate_texts` and :func:`~.runner.annotate_records`, so a row gets
the entities, or the error record, that single-process annotation gives its document.

Batches are exchanged with ``mapInArrow`` rather than ``mapInPandas``: through Arrow a
null stays ``None`` and an integer id an ``int`` (pandas makes floats of both), and no
batch is converted twice.

pyspark and pyarrow are imported only inside the functions that need them, so the
module imports without the ``spark`` extra.
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from ..core.gazetteer import name_list_paths
from .records import InputRecord, dumps_record, parse_line
from .runner import DEFAULT_BATCH_SIZE, MAX_DOC_CHARS, annotate_records, annotate_texts, load_pipeline

#: The fields of one entity in the ``entities`` column, in order, with their Spark SQL types:
#: the keys of :func:`~.runner.entity_records`. A new entity field is one more entry here.
ENTITY_FIELDS: Tuple[Tuple[str, str], ...] = (("start", "int"), ("end", "int"), ("label", "string"),
                                              ("text", "string"), ("score", "double"))
ENTITIES_COLUMN = "entities"
ERROR_COLUMN = "error"
#: Spark SQL type of the ``entities`` column.
ENTITIES_TYPE = "array<struct<" + ",".join(f"{name}:{kind}" for name, kind in ENTITY_FIELDS) + ">>"
#: Documents per Arrow batch handed back to Spark by :func:`record_batches`.
OUTPUT_ROWS = 1024

#: Start of the line a worker writes to stderr when it loads a pipeline.
LOAD_MESSAGE = "spacy-aner: loaded the pipeline of"

_PIPELINES: Dict["WorkerSettings", Any] = {}


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker needs to build its pipeline and batches (sent with every task, so small)."""

    model: Optional[str] = None
    batch_size: int = DEFAULT_BATCH_SIZE
    max_length: int = MAX_DOC_CHARS
    labels: Tuple[Tuple[str, str], ...] = ()  # the component's label map, as sorted pairs (hashable)
    gazetteers: Tuple[str, ...] = ()  # the component's name lists (paths readable on every executor)
    members: int = 0  # the component's: the ensemble's first members only (0: all)

    @classmethod
    def of(cls, model, batch_size: int, max_length: int, labels: Optional[Dict[str, str]],
           gazetteers: Sequence[str] = (), members: int = 0) -> "WorkerSettings":
        return cls(None if model is None else str(model), batch_size, max_length, tuple(sorted((labels or {}).items())),
                   tuple(name_list_paths(gazetteers)), members)


def worker_pipeline(settings: WorkerSettings):
    """This process's pipeline for ``settings``, loaded on first use and then kept.

    Each load is reported on stderr (the executor's log), with the process id and whether
    the process has PyTorch (:mod:`.spark_daemon`).
    """
    key = replace(settings, batch_size=0)  # the batch size is not the pipeline's
    if key not in _PIPELINES:
        start = time.perf_counter()
        _PIPELINES[key] = load_pipeline(settings.model, max_length=settings.max_length,
                                         labels=dict(settings.labels), gazetteers=settings.gazetteers,
                                         members=settings.members, threads=1)  # a worker per core
        torch = "without" if sys.modules.get("torch") is None else "with"  # see spark_daemon
        print(f"{LOAD_MESSAGE} {settings.model or 'shipped model'} in process {os.getpid()} "
              f"({time.perf_counter() - start:.1f} s, {torch} PyTorch)", file=sys.stderr, flush=True)
    return _PIPELINES[key]


def entity_structs(entities: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Entity records cut to the fields of :data:`ENTITY_FIELDS`."""
    return [{name: ent[name] for name, _ in ENTITY_FIELDS} for ent in entities]


def entities_spark_type():
    """The Spark type of the ``entities`` column, built from :data:`ENTITY_FIELDS`."""
    from pyspark.sql import types

    kinds = {"int": types.IntegerType, "long": types.LongType, "float": types.FloatType,
             "double": types.DoubleType, "string": types.StringType}
    return types.ArrayType(types.StructType([types.StructField(name, kinds[kind]()) for name, kind in ENTITY_FIELDS]))


def decoded_texts(array) -> Iterator[Tuple[Optional[str], Optional[str]]]:
    """(text, problem) per value of an Arrow string or binary array, decoded as input lines are.

    Spark strings are bytes it does not check: a string column can hold invalid UTF-8,
    which Arrow would raise on. Its bytes are decoded here instead, row by row.
    """
    import pyarrow as pa

    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        array = array.cast(pa.binary() if pa.types.is_string(array.type) else pa.large_binary())
    for raw in array.to_pylist():
        if raw is None:
            yield None, None  # annotate_texts gives its error
        else:
            rec = parse_line(raw, 0, None, None)
            yield rec.text, rec.error


def _output_columns(schema, entities: List[List[Dict[str, Any]]], errors: List[Optional[str]]):
    """The two result columns as Arrow arrays of the types ``schema`` (an Arrow schema) gives them."""
    import pyarrow as pa

    return (pa.array(entities, type=schema.field(ENTITIES_COLUMN).type),
            pa.array(errors, type=schema.field(ERROR_COLUMN).type))


# --------------------------------------------------------------------------- a DataFrame with a text column


def annotate_dataframe(df, text_col: str = "text", *, id_col: Optional[str] = None, model: Optional[str] = None,
                       batch_size: int = DEFAULT_BATCH_SIZE, max_length: int = MAX_DOC_CHARS,
                       labels: Optional[Dict[str, str]] = None, gazetteers: Sequence[str] = (), members: int = 0):
    """``df`` with an ``entities`` column (``array<struct<start,end,label,text,score>>``) and an ``error`` column.

    ``text_col`` is a string or binary column (binary is decoded as UTF-8; undecodable bytes
    give an error). A row whose document cannot be annotated (null, invalid UTF-8, a lone
    surrogate, over ``max_length`` characters) gets its ``error`` and no entities; any
    other row gets ``error`` null. No row is dropped or added, and the rows keep their
    partitions and order. With ``id_col`` (a column naming each row) the text column is left
    out of the result, as ``annotate --id-key`` writes the id instead of the text.
    ``model`` is a model directory readable on every executor (default: the shipped model);
    ``labels`` is the component's label map (``{"PERS": "PERSON", "MISC": ""}``), ``gazetteers``
    its name lists (like ``model``, readable on every executor); ``members`` the ensemble's
    first members to compute with (0: all).
    """
    from pyspark.sql.types import BinaryType, StringType, StructField, StructType

    fields = {f.name: f for f in df.schema.fields}
    for col in (text_col, id_col):
        if col is not None and col not in fields:
            raise ValueError(f"no column {col!r} (columns: {', '.join(fields)})")
    if not isinstance(fields[text_col].dataType, (StringType, BinaryType)):
        raise ValueError(f"the text column {text_col!r} must be a string or binary column, "
                         f"not {fields[text_col].dataType.simpleString()}")
    for name in (ENTITIES_COLUMN, ERROR_COLUMN):
        if name in fields:
            raise ValueError(f"the DataFrame already has a column {name!r}")
    kept = [f for f in df.schema.fields if id_col is None or f.name != text_col or f.name == id_col]
    schema = StructType(kept + [StructField(ENTITIES_COLUMN, entities_spark_type()),
                                StructField(ERROR_COLUMN, StringType())])
    settings = WorkerSettings.of(model, batch_size, max_length, labels, gazetteers, members)
    return df.mapInArrow(partial(annotate_batches, text_col=text_col, kept=[f.name for f in kept], schema=schema,
                                 settings=settings, timezone=session_timezone(df.sparkSession)), schema)


def session_timezone(spark) -> str:
    """The time zone Spark gives the timestamps of Arrow batches (what their schema must say)."""
    return spark.conf.get("spark.sql.session.timeZone")


def annotate_batches(batches: Iterable, *, text_col: str, kept: List[str], schema, settings: WorkerSettings,
                     timezone: Optional[str] = None):
    """The ``mapInArrow`` function of :func:`annotate_dataframe`: each batch with its two columns added
    (``timezone``: :func:`session_timezone`, for timestamp columns)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    arrow_schema = to_arrow_schema(schema, timezone=timezone)
    nlp = worker_pipeline(settings)
    for batch in batches:
        texts, problems = zip(*decoded_texts(batch.column(text_col))) if batch.num_rows else ((), ())
        results = annotate_texts(nlp, texts, batch_size=settings.batch_size)
        entities, errors = [], []
        for problem, result in zip(problems, results):
            errors.append(problem or result.get("error"))
            entities.append(entity_structs(result["entities"]))
        columns = [batch.column(name) for name in kept] + list(_output_columns(arrow_schema, entities, errors))
        yield pa.RecordBatch.from_arrays(columns, schema=arrow_schema)


# --------------------------------------------------------------------------- numbered input lines or rows -> records


@dataclass(frozen=True)
class RecordSpec:
    """How :func:`record_batches` reads its input rows and shapes its output (see spark_files)."""

    source: str  # "lines" (column ``raw``: a line's bytes) or "rows" (a text column)
    text_key: Optional[str]  # JSONL or the text column; None for plain text lines
    id_key: Optional[str] = None
    jsonl: bool = False  # output one ``value`` column of JSONL lines, else the record columns


def input_records(batches: Iterable, spec: RecordSpec) -> Iterator[InputRecord]:
    """:class:`InputRecord` s of numbered rows (column ``line``), parsed as ``spacy-aner annotate`` parses lines."""
    for batch in batches:
        lines = batch.column("line").to_pylist()
        if spec.source == "lines":
            for line, raw in zip(lines, batch.column("raw").to_pylist()):
                if raw.endswith(b"\r"):  # Spark splits at "\n" only: drop the CR of a CRLF
                    raw = raw[:-1]
                yield parse_line(raw, line, spec.text_key, spec.id_key)
            continue
        ids = batch.column(spec.id_key).to_pylist() if spec.id_key else [None] * len(lines)
        for line, (text, problem), doc_id in zip(lines, decoded_texts(batch.column(spec.text_key)), ids):
            yield InputRecord(line, text, doc_id, problem)


def id_text(value: Any) -> Optional[str]:
    """A JSONL id for a string column: a string as it is, any other JSON value as JSON text;
    as ASCII JSON if it holds a lone surrogate, which no UTF-8 string column can."""
    text = value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    try:
        text is None or text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value)
    return text


def record_batches(batches: Iterable, *, spec: RecordSpec, schema, settings: WorkerSettings, counters=None,
                   timezone: Optional[str] = None):
    """The ``mapInArrow`` function of spark_files: one output record per numbered input row, in order.

    The records are those of :func:`~.runner.annotate_records`, as single-process annotation
    writes them: as JSONL lines (one ``value`` column) or as the columns ``line``, the text
    or id key, ``entities`` and ``error``. ``counters`` (two Spark accumulators) count the
    records and the error records.
    """
    from pyspark.sql.pandas.types import to_arrow_schema

    arrow_schema = to_arrow_schema(schema, timezone=timezone)
    nlp = worker_pipeline(settings)
    pending: deque = deque()  # the input record of each output record to come
    problems: deque = deque()  # the problem of the output record to come, if it is an error record

    def tracked(records: Iterator[InputRecord]) -> Iterator[InputRecord]:
        for rec in records:
            pending.append(rec)
            yield rec

    text_key = spec.text_key or "text"
    results = annotate_records(nlp, tracked(input_records(batches, spec)), text_key=text_key, id_key=spec.id_key,
                               batch_size=settings.batch_size, on_error=lambda rec, problem: problems.append(problem))
    rows: List[Any] = []
    for out in results:
        rec = pending.popleft()
        problem = problems.popleft() if problems else None
        if counters is not None:
            counters[0].add(1)
            counters[1].add(problem is not None)
        if spec.jsonl:
            rows.append(dumps_record(out)[:-1].decode("utf-8"))
        else:
            value = rec.id if spec.id_key else rec.text if problem is None else None
            rows.append((rec.line, id_text(value) if spec.source == "lines" else value,
                         entity_structs(out["entities"]), problem))
        if len(rows) == OUTPUT_ROWS:
            yield _record_batch(rows, spec, arrow_schema)
            rows = []
    if rows:
        yield _record_batch(rows, spec, arrow_schema)


def _record_batch(rows: List[Any], spec: RecordSpec, arrow_schema):
    import pyarrow as pa

    if spec.jsonl:
        return pa.RecordBatch.from_arrays([pa.array(rows, type=pa.string())], schema=arrow_schema)
    lines, keys, entities, errors = zip(*rows)
    columns = [pa.array(lines, type=arrow_schema.field(0).type), pa.array(keys, type=arrow_schema.field(1).type),
               *_output_columns(arrow_schema, list(entities), list(errors))]
    return pa.RecordBatch.from_arrays(columns, schema=arrow_schema)
