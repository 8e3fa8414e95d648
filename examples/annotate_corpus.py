"""Batch-annotate a corpus file (one document per line) with ``nlp.pipe`` and count entities.

The annotation path is a chain of generators from ``spacy_aner.annotate``: ``read_records``
streams the lines (never the whole file), ``annotate_records`` runs them through
``nlp.pipe`` in batches (its core, ``annotate_texts(nlp, texts)``, takes any iterable of
strings, e.g. one partition of a Dask bag or Spark RDD) and ``write_jsonl`` writes one
record per input line, in order. ``spacy-aner annotate`` is the same chain with a CLI.

    python examples/annotate_corpus.py CORPUS.txt [OUT.jsonl] [--model MODEL_DIR] [--batch-size 256]

With no corpus, it annotates ``examples/sample.txt``.
"""
import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import spacy_aner
from spacy_aner.annotate import annotate_records, read_records, write_jsonl

SAMPLE = Path(__file__).resolve().parent / "sample.txt"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="?", help="text file, one document per line ('-' for stdin)")
    parser.add_argument("output", nargs="?", help="JSONL output (default: a temporary file)")
    parser.add_argument("--model", help="model directory (default: the shipped model)")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)

    corpus = args.corpus or SAMPLE
    output = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="aner_example_")) / "annotated.jsonl"
    nlp = spacy_aner.load(args.model)

    labels: Counter = Counter()
    words = 0

    def counted(records):
        nonlocal words
        for record in records:
            words += len(record.get("text", "").split())
            labels.update(e["label"] for e in record["entities"])
            yield record

    start = time.perf_counter()
    docs = write_jsonl(counted(annotate_records(nlp, read_records(corpus), batch_size=args.batch_size)), output)
    seconds = time.perf_counter() - start
    print(f"documents: {docs}")
    print(f"words: {words}")
    print("entities: " + ", ".join(f"{label} {labels[label]}" for label in sorted(labels)))
    print(f"{words / seconds:,.0f} words/sec (batch size {args.batch_size})", file=sys.stderr)
    print(f"output: {output}")


if __name__ == "__main__":
    main()
