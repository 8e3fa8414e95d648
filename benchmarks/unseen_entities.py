"""F1 on entities seen and unseen in training, on dev: does dev measure what test asks?

Test names are mostly new to the model; dev names (the tail of the train file) less so.
An entity is *seen* when its exact word sequence is an entity (of any type) somewhere in
``--train``. For each model this scores ``--data`` (dev) and splits the result: recall
over gold entities seen / unseen, precision over predicted entities seen / unseen, and
the F1 of each pair (seqeval default mode entities, as ``spacy-aner evaluate``).

``--count`` files are only counted (the share of their gold entities unseen in
``--train``), never tagged, so the test split can be described without being scored.

    python benchmarks/unseen_entities.py models/seed13 models/w2_13 --train corpus/train.conll \\
        --data corpus/dev.conll --count ../shared/data/anercorp/ANERCorp_CamelLab_test.txt

Writes ``benchmarks/results/unseen_entities.json`` (``--output``).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import warnings
from pathlib import Path
from typing import Iterable, List, Sequence, Set, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS = Path(__file__).parent / "results"

Entity = Tuple[int, int, int, str]  # sentence, first word, last word, type


def entities(tag_seqs: Sequence[Sequence[str]]) -> List[Entity]:
    from seqeval.metrics.sequence_labeling import get_entities

    return [(i, start, end, label) for i, tags in enumerate(tag_seqs)
            for label, start, end in get_entities(list(tags))]


def surfaces(words: Sequence[Sequence[str]], ents: Iterable[Entity]) -> Set[Tuple[str, ...]]:
    return {tuple(words[i][s:e + 1]) for i, s, e, _ in ents}


def split_scores(words, gold, pred, seen: Set[Tuple[str, ...]]) -> dict:
    """P/R/F1 (0-100) over all entities, and over those seen / unseen in training."""
    g, p = set(entities(gold)), set(entities(pred))

    def is_seen(ent: Entity) -> bool:
        i, s, e, _ = ent
        return tuple(words[i][s:e + 1]) in seen

    def prf(gold_part, pred_part):
        r = 100.0 * len(gold_part & p) / len(gold_part) if gold_part else 0.0
        pr = 100.0 * len(pred_part & g) / len(pred_part) if pred_part else 0.0
        return {"precision": pr, "recall": r, "f1": 2 * pr * r / (pr + r) if pr + r else 0.0,
                "gold": len(gold_part), "predicted": len(pred_part)}

    return {"all": prf(g, p),
            "seen": prf({x for x in g if is_seen(x)}, {x for x in p if is_seen(x)}),
            "unseen": prf({x for x in g if not is_seen(x)}, {x for x in p if not is_seen(x)})}


def unseen_share(words, gold, seen) -> dict:
    """How many gold entities are unseen in training, in all and per type."""
    def share(ents):
        unseen = sum(tuple(words[i][s:e + 1]) not in seen for i, s, e, _ in ents)
        return {"entities": len(ents), "unseen": unseen, "unseen_percent": 100.0 * unseen / len(ents) if ents else 0.0}

    ents = entities(gold)
    return {**share(ents), "per_type": {label: share([x for x in ents if x[3] == label])
                                        for label in sorted({x[3] for x in ents})}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path, help="model directories to score on --data")
    ap.add_argument("--train", type=Path, required=True, help="the file the models were trained on (defines seen)")
    ap.add_argument("--data", type=Path, required=True, help="the dev file to score")
    ap.add_argument("--count", type=Path, nargs="*", default=[], help="files whose unseen share is only counted")
    ap.add_argument("--output", type=Path, default=RESULTS / "unseen_entities.json")
    args = ap.parse_args(argv)

    from spacy_aner.corpus import read_conll
    from spacy_aner.model import Tagger

    def load(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the release's stray I- tags
            sents = read_conll(path).sentences
        return [s.words for s in sents], [s.tags for s in sents]

    train_words, train_tags = load(args.train)
    seen = surfaces(train_words, entities(train_tags))
    words, gold = load(args.data)
    out = {"command": "python benchmarks/unseen_entities.py " + " ".join(
        [*map(str, args.models), "--train", str(args.train), "--data", str(args.data)]
        + (["--count", *map(str, args.count)] if args.count else [])),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "train": {"file": str(args.train), "distinct_entity_strings": len(seen)},
        "data": {"file": str(args.data), **unseen_share(words, gold, seen)},
        "counted": {str(f): unseen_share(*load(f), seen) for f in args.count}, "models": {}}
    for model_dir in args.models:
        tagger = Tagger.load(model_dir)
        scores = split_scores(words, gold, tagger.predict(words), seen)
        out["models"][str(model_dir)] = scores
        print(f"{model_dir}: all {scores['all']['f1']:.2f}  seen {scores['seen']['f1']:.2f}  "
              f"unseen {scores['unseen']['f1']:.2f}", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2, ensure_ascii=False))

    print(f"\nentities unseen in {args.train}:")
    for name, c in [(str(args.data), out["data"]), *out["counted"].items()]:
        print(f"  {name}: {c['unseen_percent']:.1f} % of {c['entities']}; " + ", ".join(
            f"{label} {t['unseen_percent']:.1f} % of {t['entities']}" for label, t in c["per_type"].items()))
    print("\n| model | F1 | seen: P / R / F1 | unseen: P / R / F1 |\n| --- | ---: | ---: | ---: |")
    for name, s in out["models"].items():
        print(f"| {name} | {s['all']['f1']:.2f} | " + " | ".join(
            f"{s[k]['precision']:.1f} / {s[k]['recall']:.1f} / {s[k]['f1']:.2f}" for k in ("seen", "unseen")) + " |")
    print(f"-> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
