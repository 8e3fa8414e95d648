#!/usr/bin/env python
"""Per-fold word vectors for cross-validating the size of the kept vocabulary.

The vector file was trained on SaudiNewsNet *and* the train file, so a rare word of a
held-out block has a vector only because the block's own text was in the vector corpus.
A tagger keeping every key of the file would then see vectors for held-out words that
test words never get (the test split is in no vector corpus), and cross-validation would
flatter a large vocabulary. For fold ``k`` this writes ``WORKDIR/fold_k/vectors.kv``
holding only

- the keys of the fold's own training file (``fold_k/train.conll``), and
- the keys that are frequent enough without the train file: vector-corpus count minus
  the key's count in ``--vector-conll`` (the train text the vectors were made with)
  of at least ``--min-count``,

with their vectors unchanged. For the shipped model the same rule holds by itself: every
key of the vectors that is not a training key has its count from the news corpus alone.

    python benchmarks/fold_vectors.py vectors/news_train_w2.kv --vector-conll corpus_full/train.conll --workdir cv

``--vector-conll`` should be a superset of the train text the vectors saw (the whole
train file is): subtracting too much only drops more held-out words.
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from spacy_aner.corpus import read_conll
from spacy_aner.embeddings import iter_conll_sentences, load_vectors, tokenize_for_embeddings
from spacy_aner.normalize import normalize_word


def conll_key_counts(path: Path) -> Counter:
    """Key counts of a CoNLL file's text, tokenised as the vector corpus was."""
    counts: Counter = Counter()
    for text in iter_conll_sentences(path):
        counts.update(tokenize_for_embeddings(text))
    return counts


def fold_keys(kv, train_keys: set, outside_counts: Counter, min_count: int) -> list:
    """Keys of ``kv`` kept for one fold, in the file's (frequency) order."""
    keep = []
    for key in kv.index_to_key:
        if key in train_keys or kv.get_vecattr(key, "count") - outside_counts.get(key, 0) >= min_count:
            keep.append(key)
    return keep


def main(argv=None) -> int:
    from gensim.models import KeyedVectors

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("vectors", type=Path, help="gensim KeyedVectors trained on news + the train file")
    ap.add_argument("--vector-conll", type=Path, required=True,
                    help="the train text the vectors were made with (or a superset)")
    ap.add_argument("--workdir", type=Path, required=True, help="holds fold_k/train.conll (cross_validation.py)")
    ap.add_argument("--min-count", type=int, default=3, help="the vectors' own min_count")
    args = ap.parse_args(argv)

    kv = load_vectors(args.vectors)
    outside = conll_key_counts(args.vector_conll)
    folds = sorted(args.workdir.glob("fold_*/train.conll"))
    if not folds:
        ap.error(f"no fold_*/train.conll under {args.workdir}")
    summary = {}
    for train in folds:
        train_keys = {normalize_word(w) or w for s in read_conll(train).sentences for w in s.words}
        keys = fold_keys(kv, train_keys, outside, args.min_count)
        out = KeyedVectors(kv.vector_size)
        out.add_vectors(keys, kv[keys])
        for key in keys:
            out.set_vecattr(key, "count", kv.get_vecattr(key, "count"))
        path = train.parent / "vectors.kv"
        out.save(str(path))
        summary[train.parent.name] = {"keys": len(keys), "dropped": len(kv.index_to_key) - len(keys)}
        print(train.parent.name, summary[train.parent.name], flush=True)
    (args.workdir / "fold_vectors.json").write_text(json.dumps(
        {"vectors": str(args.vectors), "vector_conll": str(args.vector_conll), "min_count": args.min_count,
         "folds": summary}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
