"""``spacy-aner annotate --spark``: text, JSONL or Parquet files in, the records of ``annotate`` out.

Input is a file, a directory or a glob (any path Spark reads: local, ``hdfs://``,
``s3a://``). Several files are read as one corpus, in the order of their paths, numbered
on from one file to the next. Text and JSONL lines are read as bytes, split at ``\\n``
only, and decoded and parsed row by row as :mod:`.records` does, so a broken line gives
the same error record as single-process annotation instead of failing the job.

Order. Spark reads files in splits, packed into partitions by size, not in input order.
Each line gets its number from its split's place in the input (a first pass counts the
rows of every split, without running the pipeline) and its place in the split; the rows
are then range-partitioned by number, so partitions hold consecutive lines, and each
partition is annotated in order. Output part files, read in name order, are the records in
input order: the JSONL part files joined are the file ``spacy-aner annotate --skip-invalid``
writes. Spark's line reader keeps a ``\\r`` at the end of a line, which is dropped as the
CR of a CRLF; so a last line ending in a lone ``\\r`` loses it here.
"""
from __future__ import annotations

import contextlib
import glob
import os
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

from .records import JSONL_SUFFIXES, check_keys, resolve_text_key
from .runner import DEFAULT_BATCH_SIZE, MAX_DOC_CHARS
from .spark import (ENTITIES_COLUMN, ERROR_COLUMN, RecordSpec, WorkerSettings, entities_spark_type, record_batches,
                    session_timezone)

PARQUET_SUFFIX = ".parquet"
#: Input bytes per annotated partition, by default: small enough that slow partitions do not
#: keep a cluster waiting at the end of a job.
PARTITION_BYTES = 8_000_000


@dataclass
class SparkRun:
    """What one run wrote: rows read and written, error records among them."""

    rows_in: int
    rows_out: int
    errors: int  # counted as the records were made; a retried task counts again
    partitions: int


#: The setting that makes a session's executors fork their Python workers from
#: :mod:`.spark_daemon`, without PyTorch: for a session whose Python work is spacy-aner's
#: alone, as that of ``annotate --spark``.
WORKERS_WITHOUT_TORCH = {"spark.python.daemon.module": "spacy_aner.annotate.spark_daemon"}


def spark_session(master: str, app_name: str = "spacy-aner annotate", conf: Optional[Dict[str, str]] = None):
    """A SparkSession on ``master`` with ``conf``; a local master runs its Python workers on this interpreter."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    if master.startswith("local") and not os.environ.get("PYSPARK_PYTHON"):
        builder = builder.config("spark.pyspark.python", sys.executable)
    return builder.getOrCreate()


def input_format(source: str, text_key: Optional[str]) -> str:
    """``"parquet"``, ``"jsonl"`` or ``"text"``: by the suffix of the path (for a local folder or
    glob, of the files it holds or matches; any case), JSONL also when a text key is given."""
    name = source.rstrip("/")
    names = None  # the local files read: a folder's, or a glob's matches
    if os.path.isdir(name):
        names = [p.name for p in Path(name).iterdir() if not p.name.startswith((".", "_"))]
    elif glob.has_magic(name) and "://" not in name:
        names = [os.path.basename(p) for p in glob.glob(name)]
    if names is not None:
        if names and all(n.lower().endswith(PARQUET_SUFFIX) for n in names):
            return "parquet"
        if any(n.lower().endswith(PARQUET_SUFFIX) for n in names):
            raise ValueError(f"{source} mixes Parquet files with others; give one format per folder")
        if text_key is None and names and all(n.lower().endswith(JSONL_SUFFIXES) for n in names):
            return "jsonl"
    if name.lower().endswith(PARQUET_SUFFIX):
        return "parquet"
    return "text" if resolve_text_key(name, text_key) is None else "jsonl"


def local_inputs_exist(source: str) -> bool:
    """False only for a local path or glob that matches nothing (remote paths are Spark's to check)."""
    if "://" in source and not source.startswith("file:"):
        return True
    path = source[len("file:"):] if source.startswith("file:") else source
    return bool(glob.glob(path)) if glob.has_magic(path) else os.path.exists(path)


def numbered_rows(df, size_col: str):
    """``df`` (read straight from files) with ``line``, its row number in input order from 1;
    the number of rows; and the bytes of ``size_col`` in all of them.

    Runs one counting job over the files (no Python): rows per split, and the
    ``monotonically_increasing_id`` of the split's first row, which is a per-partition
    offset plus the row's position in its partition. The same files read the same way give
    the same splits and ids in the next job, where each row's number is computed from them.
    """
    from pyspark.sql import functions as F

    cols = [c for c in df.columns if c != "_metadata"]
    tagged = df.select(*cols, F.col("_metadata.file_path").alias("_file"),
                       F.col("_metadata.file_block_start").alias("_block"),
                       F.monotonically_increasing_id().alias("_mid"))
    splits = sorted(tagged.groupBy("_file", "_block").agg(F.min("_mid").alias("first"), F.count("*").alias("n"),
                                                          F.sum(F.octet_length(size_col)).alias("bytes"))
                    .collect(), key=lambda r: (r["_file"], r["_block"]))
    bases, rows, size = [], 0, 0
    for split in splits:
        bases.append((split["_file"], split["_block"], rows + 1 - split["first"]))
        rows += split["n"]
        size += split["bytes"] or 0
    base = df.sparkSession.createDataFrame(bases, "_file string, _block long, _base long")
    numbered = tagged.join(F.broadcast(base), ["_file", "_block"]).select(
        (F.col("_mid") + F.col("_base")).alias("line"), *cols)
    return numbered, rows, size


def read_input(spark, source: Union[str, Sequence[str]], fmt: str, text_key: Optional[str], id_key: Optional[str]):
    """The input as a DataFrame: ``raw`` (a line's bytes) for text and JSONL, the text (and id) columns for Parquet."""
    from pyspark.sql import functions as F

    paths = [source] if isinstance(source, str) else list(source)
    if fmt == "parquet":
        df = spark.read.parquet(*paths)
        missing = [k for k in (text_key, id_key) if k is not None and k not in df.columns]
        if missing:
            raise ValueError(f"no column {missing[0]!r} in the Parquet input (columns: {', '.join(df.columns)})")
        kind = df.schema[text_key].dataType.simpleString()
        if kind not in ("string", "binary"):
            raise ValueError(f"the text column {text_key!r} must be a string or binary column, not {kind}")
        return df.select(*dict.fromkeys(k for k in (text_key, id_key) if k is not None), "_metadata")
    # lineSep "\n": Spark's default also splits at a lone "\r", which records.py keeps in the line.
    df = spark.read.option("lineSep", "\n").text(paths)
    return df.select(F.col("value").cast("binary").alias("raw"), "_metadata")


def record_schema(spec: RecordSpec, id_type=None):
    """The Spark schema of the output: one ``value`` column of JSONL lines, or the record columns."""
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    if spec.jsonl:
        return StructType([StructField("value", StringType())])
    key = spec.id_key or spec.text_key or "text"
    return StructType([StructField("line", LongType(), False), StructField(key, id_type or StringType()),
                       StructField(ENTITIES_COLUMN, entities_spark_type()), StructField(ERROR_COLUMN, StringType())])


class OutputTarget:
    """The output folder through Hadoop's file system API, which reaches every path Spark
    writes (local, ``hdfs://``, ``s3a://``)."""

    def __init__(self, fs, path) -> None:
        self.fs, self.path = fs, path

    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def remove(self) -> None:
        self.fs.delete(self.path, True)


def output_target(spark, output: str) -> Optional[OutputTarget]:
    """``output`` on the session's file system; None for a session without a JVM of its own
    (Spark Connect), where Spark's writer alone finds an existing output."""
    try:
        jvm, conf = spark._jvm, spark.sparkContext._jsc.hadoopConfiguration()
    except Exception:  # Spark Connect has neither attribute; pyspark raises its own type
        return None
    if jvm is None:
        return None
    path = jvm.org.apache.hadoop.fs.Path(output)
    return OutputTarget(path.getFileSystem(conf), path)


def write(records, output: str, output_format: str, target: Optional[OutputTarget]) -> None:
    """Run the job writing ``records`` to ``output``. If it fails, the folder it began (empty,
    or with part files of some partitions) is removed: left behind, it would block the next
    run. An ``AnalysisException`` is raised before the job begins, by an output that another
    writer made meanwhile, which is not ours to remove."""
    from pyspark.errors import AnalysisException

    writer = records.write.mode("errorifexists")
    try:
        writer.parquet(output) if output_format == "parquet" else writer.text(output)
    except AnalysisException:
        raise
    except BaseException:  # a failed task, a lost executor, Ctrl+C
        if target is not None:
            with contextlib.suppress(Exception):  # the job's own error says more than a failed cleanup
                target.remove()
        raise


def annotate_files(spark, source: Union[str, Sequence[str]], output: str, *, text_key: Optional[str] = None,
                   id_key: Optional[str] = None, output_format: str = "jsonl", model: Optional[str] = None,
                   batch_size: int = DEFAULT_BATCH_SIZE, partitions: Optional[int] = None,
                   max_length: int = MAX_DOC_CHARS, labels: Optional[Dict[str, str]] = None,
                   gazetteers: Sequence[str] = (), members: int = 0) -> SparkRun:
    """Annotate ``source`` into the folder ``output`` (``"jsonl"`` part files or ``"parquet"``).

    Every input row gives one output row; a row that cannot be annotated gives an error
    record (as ``annotate --skip-invalid``), never a failed job. ``partitions`` is the
    number of annotated partitions (default: one per 8 MB of input, at least two per core).
    Raises ``ValueError`` for a missing text or id column, a folder of mixed formats and a
    Parquet column named ``line``; ``FileExistsError`` when ``output`` exists, before any job.
    A job that fails removes the folder it began, so that it can be run again.
    """
    first = source if isinstance(source, str) else source[0]
    fmt = input_format(first, text_key)
    if fmt == "parquet":
        text_key = text_key or "text"
    elif fmt == "jsonl":
        text_key = resolve_text_key(first, text_key) or "text"
    if id_key is not None and text_key is None:
        raise ValueError("an id key needs JSONL or Parquet input (give the text key too)")
    check_keys(text_key, id_key)
    if fmt == "parquet" and "line" in (text_key, id_key):
        raise ValueError("a Parquet column named 'line' clashes with the row numbers of the output; rename it")
    target = output_target(spark, output)
    if target is not None and target.exists():
        raise FileExistsError(f"cannot write {output}: it exists")
    df = read_input(spark, source, fmt, text_key, id_key)
    id_type = df.schema[id_key].dataType if fmt == "parquet" and id_key else None
    numbered, rows_in, size = numbered_rows(df, text_key if fmt == "parquet" else "raw")
    if partitions is None:
        partitions = max(2 * spark.sparkContext.defaultParallelism, -(-size // PARTITION_BYTES))
    partitions = max(1, min(partitions, rows_in))
    spec = RecordSpec("rows" if fmt == "parquet" else "lines", text_key, id_key, jsonl=output_format == "jsonl")
    schema = record_schema(spec, id_type)
    settings = WorkerSettings.of(model, batch_size, max_length, labels, gazetteers, members)
    counters = (spark.sparkContext.accumulator(0), spark.sparkContext.accumulator(0))
    fn = partial(record_batches, spec=spec, schema=schema, settings=settings, counters=counters,
                 timezone=session_timezone(spark))
    records = numbered.repartitionByRange(partitions, "line").sortWithinPartitions("line").mapInArrow(fn, schema)
    write(records, output, output_format, target)
    if output_format == "parquet":
        rows_out = spark.read.parquet(output).count()
    else:
        rows_out = spark.read.option("lineSep", "\n").text(output).count()
    if rows_out != rows_in:  # never expected: one record per row is built in
        raise RuntimeError(f"{output} has {rows_out:,} records for {rows_in:,} input rows")
    return SparkRun(rows_in, rows_out, counters[1].value, partitions)
