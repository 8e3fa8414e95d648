#!/usr/bin/env python
"""Why a CRF tagger tags a word as it does: two tags for it, their score margin split in two.

The Viterbi path of a sentence is taken with tag A at word ``i`` and again with tag B there
(every other word keeps its Viterbi tag). Prints how much the first path scores above the
second from the unary scores at ``i`` (what the BiLSTM read) and from the CRF's transition,
start and end scores (the tag-sequence prior). Their sum is the path-score margin.

    python benchmarks/crf_decision.py spacy_aner/models/aner-lstm models/refit_chars_13 \\
        --sentence "محمد يعيش في الرباط" --word يعيش --tags I-PERS O
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import shlex
import sys
from pathlib import Path
from typing import Dict, Sequence

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cross_validation import write_result  # noqa: E402  (the shared JSON writer)


def path_score(unary: np.ndarray, path: Sequence[int], trans, start, end) -> float:
    """The CRF score of one tag path: unary scores plus start, transition and end scores."""
    total = start[path[0]] + end[path[-1]] + sum(unary[t, k] for t, k in enumerate(path))
    return float(total + sum(trans[a, b] for a, b in zip(path, path[1:])))


def decision(tagger, words: Sequence[str], i: int, tag_a: str, tag_b: str) -> Dict:
    """The Viterbi tag at ``words[i]`` and the margin of ``tag_a`` over ``tag_b`` there: unary and CRF parts."""
    tags = list(tagger.config.tags)
    unary = tagger._scores([list(words)], len(words))[0][: len(words)]
    trans, start, end = tagger._crf_params()
    # The Viterbi path of these very unary scores (one network call, not a second one in predict).
    best = [tags.index(t) for t in tagger.decode(unary[None], [len(words)], (trans, start, end))[0]]
    a, b = list(best), list(best)
    a[i], b[i] = tags.index(tag_a), tags.index(tag_b)
    u = float(unary[i, a[i]] - unary[i, b[i]])
    total = path_score(unary, a, trans, start, end) - path_score(unary, b, trans, start, end)
    return {"viterbi": tags[best[i]], "unary": round(u, 3), "crf": round(total - u, 3), "margin": round(total, 3)}


def main(argv=None) -> int:
    from spacy_aner.model import Tagger

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--sentence", default="محمد يعيش في الرباط", help="words separated by spaces")
    ap.add_argument("--word", default="يعيش")
    ap.add_argument("--tags", nargs=2, default=["I-PERS", "O"], metavar=("A", "B"), help="the two tags compared at that word")
    ap.add_argument("--output", type=Path, help="also write the margins to this JSON file")
    args = ap.parse_args(argv)
    words = args.sentence.split()
    if args.word not in words:
        raise SystemExit(f"{args.word!r} is not a word of {args.sentence!r}")
    margins = {}
    for model in args.models:
        tagger = Tagger.load(model)
        if tagger.config.output != "crf" or not set(args.tags) <= set(tagger.config.tags):
            raise SystemExit(f"{model}: needs a CRF model with the tags {args.tags}")
        a, b = args.tags
        d = decision(tagger, words, words.index(args.word), a, b)
        margins[str(model)] = d
        print(f"{model}: {args.word} {a} over {b} by {d['margin']:+.2f} = unary {d['unary']:+.2f} "
              f"+ CRF {d['crf']:+.2f} (Viterbi: {d['viterbi']})")
    if args.output:
        write_result(args.output, {
            "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "command": shlex.join(["python", "benchmarks/crf_decision.py", *(argv if argv is not None else sys.argv[1:])]),
            "sentence": args.sentence, "word": args.word, "tags": list(args.tags), "models": margins})
    return 0


if __name__ == "__main__":
    sys.exit(main())
