"""spacy_aner.annotate.spark and spark_files: ``annotate --spark``, against single-process ``annotate``.

The first tests run the Arrow batch functions of the executors directly, in this process,
without Spark's JVM. The ``slow`` ones start a standalone cluster (a master and two
one-core workers on 127.0.0.1, each worker's executor with its own Python worker) and run
jobs on it: the command line first, on 10,000 lines, then a session of this process.
"""
from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("pyspark", reason="the spark extra: pip install -e '.[test,spark]'")
pa = pytest.importorskip("pyarrow")

from spacy_aner.annotate.records import dumps_record  # noqa: E402
from spacy_aner.annotate.runner import MAX_DOC_CHARS, annotate_file, annotate_records, annotate_texts  # noqa: E402
from spacy_aner.annotate.spark import (ENTITIES_TYPE, ENTITY_FIELDS, LOAD_MESSAGE, RecordSpec,  # noqa: E402
                                       WorkerSettings, annotate_batches, entities_spark_type, entity_structs, id_text,
                                       record_batches, worker_pipeline)
from spacy_aner.annotate.spark_files import input_format, record_schema  # noqa: E402
from spacy_aner.cli import app  # noqa: E402

runner = CliRunner()
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample.txt"
#: A document of 5.2 MB, over MAX_DOC_CHARS: an error record, not a failed task.
HUGE = "a " * 2_600_000
#: Lines that are no document: not UTF-8, empty, blank, CRLF, a CR inside, the huge one.
BAD_LINES = {3: b"\xff\xfe not UTF-8", 5: b"", 11: b"   \t", 7: "محمد في الرباط\r".encode(),
             9: "محمد\rفي الرباط".encode(), 13: "\u2028 سافر أحمد إلى باريس \x85".encode()}


def corpus_lines(n: int, seed: int = 1, huge_at: int = None) -> list:
    """``n`` lines of words from examples/sample.txt, each starting with its index, and BAD_LINES."""
    rng = random.Random(seed)
    words = SAMPLE.read_text(encoding="utf-8").split()
    lines = [f"{i} {' '.join(rng.choice(words) for _ in range(rng.randint(0, 12)))}".encode() for i in range(n)]
    for k, raw in BAD_LINES.items():
        if k < n:
            lines[k] = raw
    if huge_at is not None:
        lines[huge_at] = HUGE.encode()
    return lines


def write_lines(path: Path, lines: list, bom: bool = True) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + b"\n".join(lines) + b"\n")
    return path


def single_process(source: Path, out: Path, **kwargs) -> bytes:
    """``spacy-aner annotate --skip-invalid`` of ``source``, as bytes."""
    annotate_file(worker_pipeline(WorkerSettings()), source, out, skip_invalid=True, progress=False,
                  warn=lambda msg: None, **kwargs)
    return out.read_bytes()


def part_files(folder: Path, suffix: str) -> list:
    return sorted(folder.glob(f"part-*{suffix}"))


# --------------------------------------------------------------------------- the executors' functions, without Spark


def test_the_entities_type_is_built_from_the_entity_fields():
    assert entities_spark_type().simpleString() == ENTITIES_TYPE == \
        "array<struct<start:int,end:int,label:string,text:string,score:double>>"
    ent = {"start": 0, "end": 4, "label": "PERS", "text": "محمد", "score": 0.9}
    assert entity_structs([ent]) == [{name: ent[name] for name, _ in ENTITY_FIELDS}]


def test_workers_forked_from_spark_daemon_annotate_without_pytorch(shipped_model_dir):
    # What a worker forked from the daemon does: import the daemon module (without spaCy, or
    # PyTorch would already be in), then load the pipeline and annotate.
    script = ("import sys; import spacy_aner.annotate.spark_daemon; assert 'spacy' not in sys.modules; "
              "from spacy_aner.annotate.spark import WorkerSettings, worker_pipeline; "
              "from spacy_aner.annotate.runner import annotate_texts; "
              "nlp = worker_pipeline(WorkerSettings(members=1)); "
              "print([e['label'] for e in next(annotate_texts(nlp, ['محمد يعيش في الرباط']))['entities']])")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "['PERS', 'LOC']"
    assert re.search(LOAD_MESSAGE + r".*, without PyTorch\)", proc.stderr), proc.stderr[-3000:]


def test_the_executors_pipeline_has_the_label_map(shipped_model_dir):
    settings = WorkerSettings.of(None, 64, MAX_DOC_CHARS, {"PERS": "PERSON", "MISC": ""})
    nlp = worker_pipeline(settings)
    assert worker_pipeline(WorkerSettings.of(None, 8, MAX_DOC_CHARS, {"MISC": "", "PERS": "PERSON"})) is nlp
    assert worker_pipeline(WorkerSettings()) is not nlp
    records = list(annotate_texts(nlp, ["محمد يعيش في الرباط", "زار أحمد علي القاهرة أمس"]))
    labels = {e["label"] for r in records for e in r["entities"]}
    assert "PERSON" in labels and not labels & {"PERS", "MISC"}


def test_the_executors_pipeline_computes_with_the_members_asked_for(shipped_model_dir):
    settings = WorkerSettings.of(None, 64, MAX_DOC_CHARS, None, members=1)
    assert settings.members == 1 and worker_pipeline(settings) is not worker_pipeline(WorkerSettings())
    tagger = worker_pipeline(settings).get_pipe("aner_lstm").tagger
    assert tagger.scorer.cache.width * 3 == worker_pipeline(WorkerSettings()).get_pipe("aner_lstm").tagger.scorer.cache.width


def test_the_executors_pipeline_reads_the_user_lists(gazetteer_model_dir, tmp_path):
    names = tmp_path / "names.tsv"
    names.write_text("سعيد الزهراني\tPERS\n", encoding="utf-8")
    settings = WorkerSettings.of(gazetteer_model_dir, 64, MAX_DOC_CHARS, None, [names])
    assert settings.gazetteers == (str(names),)
    tagger = worker_pipeline(settings).get_pipe("aner_lstm").tagger
    assert tagger.gazetteer.matches(["سعيد", "الزهراني"]) == [(0, 2, "PERS")]
    plain = worker_pipeline(WorkerSettings.of(gazetteer_model_dir, 64, MAX_DOC_CHARS, None))
    assert plain.get_pipe("aner_lstm").tagger.gazetteer.matches(["سعيد", "الزهراني"]) == []


def line_batches(lines: list, size: int) -> list:
    """(line, raw) Arrow batches of ``size`` rows, lines numbered from 1."""
    numbers = list(range(1, len(lines) + 1))
    return [pa.RecordBatch.from_arrays([pa.array(numbers[i:i + size], pa.int64()), pa.array(lines[i:i + size], pa.binary())],
                                       names=["line", "raw"]) for i in range(0, len(lines), size)]


@pytest.mark.parametrize("jsonl_input", [False, True])
def test_record_batches_give_the_records_of_single_process_annotate(jsonl_input, shipped_model_dir, tmp_path):
    lines = corpus_lines(60)
    if jsonl_input:  # the same documents as JSONL with ids, and broken JSONL lines
        lines = [json.dumps({"id": i, "text": raw.decode("utf-8", "replace")}, ensure_ascii=False).encode()
                 for i, raw in enumerate(lines)]
        lines += [b"[1]", b'{"id": 1}', b'{"text": "x"}', b'{"id": "s", "text": null}', b'{"id": 2.5, "text": 5}',
                  b'{"id": "\\ud800", "text": "\\udc00"}', b"{oops", b"\xff{}", b""]
    source = write_lines(tmp_path / ("in.jsonl" if jsonl_input else "in.txt"), lines, bom=False)
    kwargs = {"id_key": "id"} if jsonl_input else {}
    expected = single_process(source, tmp_path / "out.jsonl", **kwargs).decode("utf-8").splitlines()
    raw_lines = [raw[:-1] if raw.endswith(b"\r") else raw for raw in source.read_bytes().split(b"\n")[:-1]]
    raw_lines = [raw + b"\r" if k % 3 == 0 else raw for k, raw in enumerate(raw_lines)]  # CRLF lines, as Spark keeps them

    spec = RecordSpec("lines", "text" if jsonl_input else None, kwargs.get("id_key"), jsonl=True)
    out = [batch for batch in record_batches(iter(line_batches(raw_lines, 7)), spec=spec,
                                             schema=record_schema(spec), settings=WorkerSettings())]
    assert [value for batch in out for value in batch.column("value").to_pylist()] == expected

    spec = RecordSpec("lines", "text" if jsonl_input else None, kwargs.get("id_key"), jsonl=False)
    rows = [row for batch in record_batches(iter(line_batches(raw_lines, 7)), spec=spec, schema=record_schema(spec),
                                            settings=WorkerSettings()) for row in batch.to_pylist()]
    assert [row["line"] for row in rows] == list(range(1, len(lines) + 1))
    for row, line in zip(rows, expected):
        record = json.loads(line)
        assert row["entities"] == record["entities"]
        assert row["error"] == record.get("error") if "line" in record else row["error"] is None
        key = "id" if jsonl_input else "text"
        if "line" not in record or key in record:
            assert row[key] == id_text(record[key])


def test_annotate_batches_decode_strings_and_bytes_and_keep_every_row(shipped_model_dir):
    from pyspark.sql.types import BinaryType, LongType, StringType, StructField, StructType

    texts = ["محمد يعيش في الرباط", None, "", "  ", HUGE, "زار أحمد القاهرة"]
    raw = pa.array([t.encode() if t is not None else None for t in texts] + [b"\xc3\x28 x"], pa.binary())
    as_string = pa.Array.from_buffers(pa.string(), len(raw), raw.buffers())  # Spark's strings are unchecked bytes
    ids = pa.array(range(len(raw)), pa.int64())
    expected = list(annotate_texts(worker_pipeline(WorkerSettings()), texts))
    for column, spark_type in ((as_string, StringType()), (raw, BinaryType())):
        batch = pa.RecordBatch.from_arrays([ids, column], names=["id", "text"])
        for kept in (["id", "text"], ["id"]):
            fields = [StructField("id", LongType()), StructField("text", spark_type)]
            schema = StructType([f for f in fields if f.name in kept] + [
                StructField("entities", entities_spark_type()), StructField("error", StringType())])
            halves = [batch.slice(0, 4), batch.slice(4)]
            batches = list(annotate_batches(iter(halves), text_col="text", kept=kept, schema=schema,
                                            settings=WorkerSettings()))
            assert [b.schema.names for b in batches] == [kept + ["entities", "error"]] * 2
            if "text" in kept:  # passed through as it came, bytes that are not UTF-8 included
                assert pa.concat_arrays([b.column("text") for b in batches]).equals(column)
            out = [row for b in batches for row in b.select(["id", "entities", "error"]).to_pylist()]
            assert [row["id"] for row in out] == list(range(len(raw)))
            assert [row["entities"] for row in out[:-1]] == [r["entities"] for r in expected]
            assert [row["error"] for row in out[:-1]] == [r.get("error") for r in expected]
            assert out[-1]["entities"] == [] and out[-1]["error"].startswith("invalid UTF-8 at byte 0")
            assert out[0]["entities"] and out[1]["error"] == "expected a str, got NoneType"
            assert f"nlp.max_length ({MAX_DOC_CHARS:,})" in out[4]["error"]


def test_id_text():
    assert id_text("a1") == "a1" and id_text(None) is None
    assert id_text(17) == "17" and id_text(2.5) == "2.5" and id_text([1, "ب"]) == '[1, "ب"]'
    assert id_text("\ud800") == '"\\ud800"'  # not valid Unicode: as JSON, ASCII


def test_input_format(tmp_path):
    assert input_format("corpus.txt", None) == "text" and input_format("corpus.txt", "body") == "jsonl"
    assert input_format("a/*.jsonl", None) == "jsonl" and input_format("s3a://b/x.parquet", None) == "parquet"
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "part-0.parquet").write_bytes(b"")
    (tmp_path / "d" / "_SUCCESS").write_bytes(b"")
    assert input_format(str(tmp_path / "d"), None) == "parquet"
    (tmp_path / "d" / "more.jsonl").write_text('{"text": "محمد"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="mixes Parquet files with others"):  # its bytes are no text lines
        input_format(str(tmp_path / "d"), None)
    (tmp_path / "upper").mkdir()  # read as text before: garbage records from Parquet bytes
    (tmp_path / "upper" / "a.PARQUET").write_bytes(b"")
    (tmp_path / "upper" / "part-1").write_bytes(b"")
    assert input_format(str(tmp_path / "upper" / "*.PARQUET"), None) == "parquet"
    (tmp_path / "upper" / "part-1").unlink()
    assert input_format(str(tmp_path / "upper"), None) == "parquet"


def test_a_java_error_is_one_line():
    class JavaException:
        def toString(self):
            return "org.apache.spark.SparkException: [FAILED_READ_FILE] cannot read x.parquet\n\tat org.apache..."

    class Failed(Exception):
        java_exception = JavaException()

    from spacy_aner.cli.run import java_error

    assert java_error(Failed()) == "org.apache.spark.SparkException: [FAILED_READ_FILE] cannot read x.parquet"


def test_a_parquet_column_named_line_is_refused_before_spark_reads_anything():
    from spacy_aner.annotate.spark_files import annotate_files

    for keys in ({"text_key": "line", "id_key": "id"}, {"text_key": "text", "id_key": "line"}):
        with pytest.raises(ValueError, match="'line'"):
            annotate_files(None, "in.parquet", "out", **keys)  # no session needed to refuse it


@pytest.mark.parametrize("args, message", [
    (["-", "-o", "OUT"], "--spark reads files, not stdin"),
    (["MISSING.txt", "-o", "OUT"], "file not found: MISSING.txt"),
    (["IN", "-o", "-"], "give -o DIR"),
    (["IN", "-o", "IN"], "it exists"),
    (["IN", "-o", "OUT", "--id-key", "id"], "--id-key needs JSONL or Parquet input"),
    (["IN", "-o", "OUT", "--n-process", "2"], "--n-process does not apply with --spark"),
    (["IN", "-o", "OUT", "--members", "4"], "members=4, but the model in"),
    (["DIR", "-o", "DIR/OUT"], "cannot write DIR/OUT: it is inside the input folder DIR"),
])
def test_the_command_checks_its_arguments_before_starting_spark(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "IN").write_text("محمد\n", encoding="utf-8")
    (tmp_path / "DIR").mkdir()
    (tmp_path / "DIR" / "a.txt").write_text("محمد\n", encoding="utf-8")
    result = runner.invoke(app, ["annotate", *args, "--spark", "local[1]"])
    assert result.exit_code == 1 and message in result.output, result.output
    assert not (tmp_path / "OUT").exists()


# --------------------------------------------------------------------------- on a standalone cluster


def test_the_clusters_ports_are_distinct_and_taken_before_any_process_starts(tmp_path):
    """Ports taken one at a time could repeat before the JVMs bind them (a worker's web UI on the
    master's): all are chosen together when the cluster is made."""
    from spacy_aner.annotate.spark_cluster import LocalCluster, free_ports

    assert len(set(free_ports(50))) == 50
    cluster = LocalCluster(workers=3, log_dir=tmp_path)
    ports = [cluster.port, cluster.ui_port, *cluster.worker_ports]
    assert len(ports) == 8 and len(set(ports)) == 8 and not cluster.procs


@pytest.fixture(scope="module")
def cluster():
    from spacy_aner.annotate.spark_cluster import LocalCluster

    with LocalCluster(workers=2, cores=1, memory="1g") as running:
        yield running


def loads_logged(cluster) -> list:
    """The pipeline loads the executors reported in their stderr: one (app, executor, pid,
    "with" or "without" PyTorch) each."""
    found = []
    for log in sorted((cluster.dir / "work").glob("app-*/*/stderr")):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith(LOAD_MESSAGE):
                load = re.search(r"in process (\d+) \(.*, (with|without) PyTorch\)", line)
                found.append((log.parent.parent.name, log.parent.name, *load.groups()))
    return found


@pytest.mark.slow
def test_the_command_on_two_workers_writes_the_records_of_single_process_annotate(cluster, shipped_model_dir,
                                                                                   tmp_path):
    source = write_lines(tmp_path / "corpus.txt", corpus_lines(10_000, huge_at=5_000))
    expected = single_process(source, tmp_path / "single.jsonl")
    out = tmp_path / "spark_out"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    proc = subprocess.run([sys.executable, "-m", "spacy_aner", "annotate", str(source), "-o", str(out),
                           "--spark", cluster.url], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-5000:] + cluster.logs()
    summary = re.search(r"([\d,]+) records \(([\d,]+) errors\) from ([\d,]+) input rows in (\d+) partitions",
                        proc.stderr)
    assert summary.groups()[:3] == ("10,000", "2", "10,000"), proc.stderr[-3000:]
    parts = part_files(out, ".txt")
    assert len(parts) == int(summary[4]) >= 2
    assert b"".join(p.read_bytes() for p in parts) == expected  # byte for byte, in input order
    assert expected.count(b"\n") == 10_000 and b'"line":5001,"error":"document of 5,200,000 characters' in expected
    # Both workers ran an executor; each executor's one Python worker loaded the pipeline once
    # and kept it for every partition it was given.
    # Both were forked from spark_daemon, so neither imported PyTorch.
    loads = loads_logged(cluster)
    assert len({executor for _, executor, _, _ in loads}) == 2
    assert len(loads) == len(set(loads)) == 2 < len(parts), loads
    assert {torch for *_, torch in loads} == {"without"}, loads


@pytest.fixture(scope="module")
def spark(cluster):
    """A session of this process on the cluster (after the command-line test: it takes every core)."""
    from spacy_aner.annotate.spark_files import spark_session

    session = spark_session(cluster.url, "spacy-aner tests", {
        "spark.ui.enabled": "false", "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
        "spark.pyspark.python": sys.executable, "spark.ui.showConsoleProgress": "false"})
    yield session
    session.stop()


@pytest.mark.slow
def test_annotate_dataframe_gives_every_row_its_entities_or_its_error(spark, cluster, shipped_model_dir):
    from spacy_aner.annotate.spark import annotate_dataframe

    texts = [line.decode("utf-8") for line in corpus_lines(400)[20:]] + [None, "", HUGE, "محمد في الرباط"]
    df = spark.createDataFrame([(i, t) for i, t in enumerate(texts)], "id long, text string").repartition(8, "id")
    rows = annotate_dataframe(df, "text").collect()
    assert len(rows) == len(texts) and sorted(r["id"] for r in rows) == list(range(len(texts)))
    expected = list(annotate_texts(worker_pipeline(WorkerSettings()), texts))
    for row in rows:
        assert row["text"] == texts[row["id"]]
        assert [e.asDict() for e in row["entities"]] == expected[row["id"]]["entities"]
        assert row["error"] == expected[row["id"]].get("error")
    assert sum(r["error"] is not None for r in rows) == 2 and sum(bool(r["entities"]) for r in rows) > 100
    assert annotate_dataframe(df, "text", id_col="id").columns == ["id", "entities", "error"]
    assert annotate_dataframe(df, "text", id_col="text").columns == ["id", "text", "entities", "error"]
    with pytest.raises(ValueError, match="must be a string or binary column, not bigint"):
        annotate_dataframe(df, "id")
    # A session of the user's own keeps pyspark's daemon: PyTorch stays importable for their UDFs.
    if importlib.util.find_spec("torch") is not None:
        app_id = spark.sparkContext.applicationId
        assert {torch for app, *_, torch in loads_logged(cluster) if app == app_id} == {"with"}


@pytest.mark.slow
def test_timestamp_columns_and_ids_are_kept(spark, shipped_model_dir, tmp_path):
    """A DataFrame with a timestamp column, and Parquet with a timestamp id: Arrow's schema needs
    the session's time zone, and JSON writes the id as ISO 8601."""
    import datetime

    import pyarrow.parquet as pq

    from spacy_aner.annotate.spark import annotate_dataframe
    from spacy_aner.annotate.spark_files import annotate_files

    when = [datetime.datetime(2024, 5, d, 8, 30) for d in (1, 2)]
    df = spark.createDataFrame([(1, when[0], "محمد في الرباط"), (2, when[1], None)], "id int, ts timestamp, text string")
    rows = sorted(annotate_dataframe(df, "text").collect(), key=lambda r: r["id"])
    assert [(r["ts"], r["text"], r["error"]) for r in rows] == [(when[0], "محمد في الرباط", None),
                                                               (when[1], None, "expected a str, got NoneType")]
    assert [e["label"] for e in rows[0]["entities"]] == ["PERS", "LOC"]
    pq.write_table(pa.table({"ts": pa.array(when, pa.timestamp("us")), "text": ["محمد في الرباط", "باريس"]}),
                   tmp_path / "in.parquet")
    annotate_files(spark, str(tmp_path / "in.parquet"), str(tmp_path / "out"), id_key="ts", output_format="jsonl")
    records = [json.loads(line) for p in part_files(tmp_path / "out", ".txt") for line in p.read_text().splitlines()]
    assert [r["ts"] for r in records] == ["2024-05-01T08:30:00", "2024-05-02T08:30:00"]
    assert [[e["label"] for e in r["entities"]] for r in records] == [["PERS", "LOC"], ["LOC"]]
    annotate_files(spark, str(tmp_path / "in.parquet"), str(tmp_path / "same"), id_key="text", output_format="jsonl")
    same = [json.loads(line) for p in part_files(tmp_path / "same", ".txt") for line in p.read_text().splitlines()]
    assert same == [{"text": t, "entities": r["entities"]} for t, r in zip(["محمد في الرباط", "باريس"], records)]


@pytest.mark.slow
def test_jsonl_with_broken_lines_to_parquet_gives_the_records_of_annotate(spark, shipped_model_dir, tmp_path):
    from spacy_aner.annotate.spark_files import annotate_files

    lines = [json.dumps({"doc": f"d{i}", "body": raw.decode("utf-8", "replace")}, ensure_ascii=False).encode()
             for i, raw in enumerate(corpus_lines(150))]
    lines[20:20] = [b'{"doc": 7, "body": null}', b'{"doc": [1], "body": 5}', b'{"body": "x"}', b"[]", b"{oops",
                    b'{"doc": "\\ud800", "body": "\\udc00"}', b"\xff", b"", b'{"doc": 1.5, "body": "\\u0645\\u062d"}']
    source = write_lines(tmp_path / "in.ndjson", lines)
    expected = [json.loads(line) for line in single_process(source, tmp_path / "single.jsonl", text_key="body",
                                                            id_key="doc").splitlines()]
    run = annotate_files(spark, str(source), str(tmp_path / "out.parquet"), text_key="body", id_key="doc",
                         output_format="parquet")
    assert (run.rows_in, run.rows_out, run.errors) == (len(lines), len(lines), 7)
    rows = sorted(spark.read.parquet(str(tmp_path / "out.parquet")).collect(), key=lambda r: r["line"])
    assert [r["line"] for r in rows] == list(range(1, len(lines) + 1))
    for row, record in zip(rows, expected):
        entities = [e.asDict() for e in row["entities"]]
        if "error" in record:
            assert (row["error"], entities) == (record["error"], []) and row["line"] == record["line"]
            assert row["doc"] == (id_text(record["doc"]) if "doc" in record else None)
        else:
            assert (row["doc"], entities, row["error"]) == (id_text(record["doc"]), record["entities"], None)


@pytest.mark.slow
def test_many_files_read_in_many_splits_keep_the_input_order(spark, shipped_model_dir, tmp_path):
    """Small splits: each file is read by several tasks, packed into partitions by size, not by order."""
    from spacy_aner.annotate.spark_files import annotate_files

    folder = tmp_path / "corpus"
    folder.mkdir()
    files = [write_lines(folder / f"part{k}.txt", corpus_lines(n, seed=k), bom=k == 0)
             for k, n in ((0, 1_500), (1, 300), (2, 2_000))]
    (folder / "part1_empty.txt").write_bytes(b"")
    whole = tmp_path / "whole.txt"
    whole.write_bytes(b"".join(f.read_bytes() for f in files))  # what `cat corpus/*` gives
    spark.conf.set("spark.sql.files.maxPartitionBytes", "16k")
    spark.conf.set("spark.sql.files.openCostInBytes", "1k")
    try:
        run = annotate_files(spark, str(folder), str(tmp_path / "out"), partitions=5)
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
        spark.conf.unset("spark.sql.files.openCostInBytes")
    assert sum(f.stat().st_size for f in files) > 8 * 16_000  # so several splits per file
    assert (run.rows_in, run.rows_out, run.partitions) == (3_800, 3_800, 5)
    expected = single_process(whole, tmp_path / "single.jsonl")
    got = b"".join(p.read_bytes() for p in part_files(tmp_path / "out", ".txt"))
    assert got == expected


@pytest.mark.slow
def test_parquet_input_with_null_empty_and_huge_texts(spark, shipped_model_dir, tmp_path):
    import pyarrow.parquet as pq

    from spacy_aner.annotate.spark_files import annotate_files

    texts = [line.decode("utf-8") for line in corpus_lines(200)[20:]] + [None, "", HUGE, "محمد في الرباط"]
    (tmp_path / "in").mkdir()
    for k, (lo, hi) in enumerate(((0, 100), (100, len(texts)))):
        table = pa.table({"key": pa.array(range(lo, hi), pa.int64()), "text": pa.array(texts[lo:hi], pa.string())})
        pq.write_table(table, tmp_path / "in" / f"{k}.parquet", row_group_size=30)
    expected = list(annotate_texts(worker_pipeline(WorkerSettings()), texts))
    run = annotate_files(spark, str(tmp_path / "in"), str(tmp_path / "out.parquet"), id_key="key",
                         output_format="parquet")
    assert (run.rows_in, run.rows_out, run.errors) == (len(texts), len(texts), 2)
    rows = sorted(spark.read.parquet(str(tmp_path / "out.parquet")).collect(), key=lambda r: r["line"])
    assert [(r["line"], r["key"]) for r in rows] == [(i + 1, i) for i in range(len(texts))]
    assert [[e.asDict() for e in r["entities"]] for r in rows] == [r["entities"] for r in expected]
    assert [r["error"] for r in rows] == [r.get("error") for r in expected]

    pq.write_table(pa.table({"text": pa.array([1, 2], pa.int64())}), tmp_path / "numbers.parquet")
    with pytest.raises(ValueError, match="the text column 'text' must be a string or binary column, not bigint"):
        annotate_files(spark, str(tmp_path / "numbers.parquet"), str(tmp_path / "never"), output_format="parquet")
    assert not (tmp_path / "never").exists()

    annotate_files(spark, str(tmp_path / "in"), str(tmp_path / "out_jsonl"), id_key="key", output_format="jsonl")
    records = [json.loads(line) for p in part_files(tmp_path / "out_jsonl", ".txt") for line in p.read_text().splitlines()]
    assert records[0] == {"key": 0, "entities": expected[0]["entities"]}  # an integer id stays an integer
    assert records[len(texts) - 4] == {"line": len(texts) - 3, "key": len(texts) - 4,
                                       "error": "expected a str, got NoneType", "entities": []}
    assert [dumps_record(r) for r in records[:5]] == [dumps_record({"key": i, "entities": e["entities"]})
                                                       for i, e in enumerate(expected[:5])]



@pytest.mark.slow
def test_an_existing_output_is_refused_before_any_job_and_a_failed_job_leaves_no_folder(spark, tmp_path,
                                                                                          monkeypatch):
    """A folder left by a failed job would block the next run until removed by hand (on
    HDFS or S3, with Hadoop's tools)."""
    import spacy_aner.annotate.spark_files as spark_files

    source = write_lines(tmp_path / "corpus.txt", corpus_lines(50))
    (tmp_path / "exists").mkdir()
    jobs = spark.sparkContext.statusTracker().getJobIdsForGroup()
    with pytest.raises(FileExistsError, match="it exists"):
        spark_files.annotate_files(spark, str(source), str(tmp_path / "exists"))
    assert spark.sparkContext.statusTracker().getJobIdsForGroup() == jobs  # not even the counting pass

    def failing_batches(batches, **settings):  # defined here, so that Spark ships it by value
        raise RuntimeError("a task failed")
        yield

    monkeypatch.setattr(spark_files, "record_batches", failing_batches)
    for fmt, name in (("jsonl", "out"), ("parquet", "out.parquet")):
        with pytest.raises(Exception, match="a task failed"):
            spark_files.annotate_files(spark, str(source), str(tmp_path / name), output_format=fmt)
        assert not (tmp_path / name).exists()

def test_read_records_and_annotate_records_are_what_the_executors_reuse():
    """The executors build records with the single-process functions themselves, not copies of them."""
    import spacy_aner.annotate.spark as spark_module

    from spacy_aner.annotate import records

    assert spark_module.annotate_records is annotate_records and spark_module.parse_line is records.parse_line
