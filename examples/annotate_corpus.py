"""Batch-annotate a corpus file (one document per line) with ``nlp.pipe`` and count entities.

``spacy_aner.annotate.annotate_texts`` is a plain generator over an iterable of texts, so
the same call runs on a file, on stdin, or on each partition of a Dask bag / Spark RDD.
It streams: the file is never read whole, and the output keeps one record per input line.

    python examples/annotate_corpus.py CORPUS.txt [OUT.jsonl] [--model MODEL_DIR] [--batch-size 256]

With no corpus, it writes the ANERCorp test sentences (gold words joined by spaces) from
``../shared/data/anercorp`` to a temporary file and annotates that.
"""
import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import spacy_aner
from spacy_aner.annotate import annotate_texts

DEFAULT_TEST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "anercorp" / "ANERCorp_CamelLab_test.txt"


def lines(path):
    """The documents of a text file, one per line, read lazily (newline removed, nothing else)."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield line[:-1] if line.endswith("\n") else line


def test_split_as_text(out_dir: Path) -> Path:
    from spacy_aner.corpus import read_conll

    path = out_dir / "test_sentences.txt"
    with open(path, "w", encoding="utf-8") as f:
        for sentence in read_conll(DEFAULT_TEST).sentences:
            f.write(" ".join(sentence.words) + "\n")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="?", help="text file, one document per line")
    parser.add_argument("output", nargs="?", help="JSONL output (default: a temporary file)")
    parser.add_argument("--model", help="model directory (default: the shipped model)")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="aner_example_"))
    corpus = Path(args.corpus) if args.corpus else test_split_as_text(tmp)
    output = Path(args.output) if args.output else tmp / "annotated.jsonl"
    nlp = spacy_aner.load(args.model)

    labels: Counter = Counter()
    docs = words = 0
    start = time.perf_counter()
    with open(output, "w", encoding="utf-8") as out:
        for text, record in zip(lines(corpus), annotate_texts(nlp, lines(corpus), batch_size=args.batch_size)):
            docs += 1
            words += len(text.split())
            labels.update(e["label"] for e in record["entities"])
            out.write(json.dumps({"text": text, **record}, ensure_ascii=False) + "\n")
    seconds = time.perf_counter() - start
    print(f"documents: {docs}")
    print(f"words: {words}")
    print("entities: " + ", ".join(f"{label} {labels[label]}" for label in sorted(labels)))
    print(f"{words / seconds:,.0f} words/sec (batch size {args.batch_size})", file=sys.stderr)
    print(f"output: {output}")


if __name__ == "__main__":
    main()
