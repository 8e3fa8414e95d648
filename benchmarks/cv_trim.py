#!/usr/bin/env python
"""Cross-validation of trimming never-entity words from the edges of predicted entities.

A word whose normalised key occurs at least ``--min-count`` times in a fold's training part
and never inside a gold entity is dropped from the start or end of a predicted entity of
two or more words (repeatedly; an entity is never removed whole). Each fold's model tags its
held-out block sentence by sentence; both variants are scored pooled and per block (never
test). Rule in the commit that added this script.

    python benchmarks/cv_trim.py --workdir cv --recipe chars+vectors --output benchmarks/results/cv_trim.json
"""
from __future__ import annotations

import argparse
import datetime as _dt
import shlex
import sys
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cross_validation import RESULTS, write_result  # noqa: E402  (the shared JSON writer)


def never_entity_keys(sentences, min_count: int) -> set:
    from spacy_aner.normalize import normalize_word

    seen, inside = Counter(), Counter()
    for s in sentences:
        for word, tag in zip(s.words, s.tags):
            key = normalize_word(word) or word
            seen[key] += 1
            if tag != "O":
                inside[key] += 1
    return {k for k, n in seen.items() if n >= min_count and not inside[k]}


def trim(words, tags, never: set):
    from spacy_aner.normalize import normalize_word
    from spacy_aner.tags import bio_to_spans, spans_to_bio

    keys = [normalize_word(w) or w for w in words]
    spans = []
    for start, end, label in bio_to_spans(tags):
        while end - start > 1 and keys[end - 1] in never:
            end -= 1
        while end - start > 1 and keys[start] in never:
            start += 1
        spans.append((start, end, label))
    return spans_to_bio(spans, len(words))


def score(gold, pred):
    from seqeval.metrics import f1_score

    return float(100 * f1_score(gold, pred))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("cv"))
    ap.add_argument("--recipe", default="chars+vectors")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--min-count", type=int, default=5)
    ap.add_argument("--output", type=Path, default=RESULTS / "cv_trim.json")
    args = ap.parse_args(argv)

    from spacy_aner.corpus import read_conll
    from spacy_aner.model import Tagger

    gold_all, plain_all, trimmed_all, blocks = [], [], [], []
    for k in range(args.folds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train = read_conll(args.workdir / f"fold_{k}" / "train.conll").sentences
            held = read_conll(args.workdir / f"fold_{k}" / "heldout.conll").sentences
        never = never_entity_keys(train, args.min_count)
        tagger = Tagger.load(args.workdir / args.recipe / f"fold_{k}")
        plain = tagger.predict([s.words for s in held])
        trimmed = [trim(s.words, t, never) for s, t in zip(held, plain)]
        gold = [list(s.tags) for s in held]
        changed = sum(a != b for a, b in zip(plain, trimmed))
        blocks.append({"fold": k, "never_entity_keys": len(never), "sentences_changed": changed,
                       "plain_f1": round(score(gold, plain), 2), "trimmed_f1": round(score(gold, trimmed), 2)})
        blocks[-1]["difference"] = round(blocks[-1]["trimmed_f1"] - blocks[-1]["plain_f1"], 2)
        print(blocks[-1], flush=True)
        gold_all += gold
        plain_all += plain
        trimmed_all += trimmed
    pooled = {"plain_f1": round(score(gold_all, plain_all), 2), "trimmed_f1": round(score(gold_all, trimmed_all), 2)}
    pooled["difference"] = round(pooled["trimmed_f1"] - pooled["plain_f1"], 2)
    adopted = bool(pooled["difference"] >= 0.2 and all(b["difference"] >= -0.2 for b in blocks))
    print(f"pooled {pooled}; rule (+0.2 pooled, no block below -0.2): {'met' if adopted else 'not met'}")
    write_result(args.output, {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "command": shlex.join(["python", "benchmarks/cv_trim.py", *(argv if argv is not None else sys.argv[1:])]),
        "recipe": args.recipe, "min_count": args.min_count, "blocks": blocks, "pooled": pooled,
        "rule": "adopt at +0.2 pooled F1 and no block below -0.2", "rule_met": adopted})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
