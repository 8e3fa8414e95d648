"""Recall on entities seen and unseen in training: how well does a model find names it never met?

A gold entity of ``--file`` is *seen* when its exact word sequence is an entity (of any
type) somewhere in ``--train``, the split the model was trained on, and *unseen*
otherwise. Each ``--model`` runs as ``spacy-aner evaluate`` runs it (``spacy_aner.load``,
the pipeline on Docs of the gold words), so its overall F1 is the one ``evaluate`` gives;
recall is then counted over the seen and the unseen gold entities (exact span and type,
entities decoded as seqeval's default mode does), overall and per type.

    python -m benchmarks.unseen_entities                                   # shipped model, CAMeL test split
    python -m benchmarks.unseen_entities --model DIR --file TEST [--train TRAIN]
    python -m benchmarks.unseen_entities --model A --model B --file corpus/dev.conll --train corpus/train.conll

The defaults are the shipped model, the released test file and the released train file
(``../shared/data/anercorp``). For a model trained with a dev set held out, give its own
training part as ``--train``.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

from benchmarks.common import TEST_FILE, TRAIN_FILE, command_line, log, machine_info, parser, read_tagged, write_result

MODULE = "benchmarks.unseen_entities"


def score_model(model: Optional[Path], words, gold, seen, batch_size: int) -> Dict:
    """Entity F1 of the pipeline on the gold words, and recall over seen / unseen gold entities."""
    import spacy_aner
    from spacy_aner.training.crossval import recall_by_seen
    from spacy_aner.training.evaluation import entity_scores, model_hash, predict_gold_words

    nlp = spacy_aner.load(model)
    path = nlp.get_pipe("aner_lstm").model_path
    pred = predict_gold_words(nlp, words, batch_size=batch_size, progress=False)
    micro = entity_scores(gold, pred)["micro"]
    return {"model": str(path), "sha256": model_hash(path),
            "f1": round(micro["f1"], 2), "precision": round(micro["precision"], 2), "recall": round(micro["recall"], 2),
            **recall_by_seen(words, gold, pred, seen)}


def print_table(result: Dict) -> None:
    print("| model | F1 | recall, seen | recall, unseen | seen: found / gold | unseen: found / gold |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in result["models"]:
        s, u = r["seen"], r["unseen"]
        print(f"| {r['model']} | {r['f1']:.2f} | {s['recall']:.2f} % | {u['recall']:.2f} % "
              f"| {s['found']:,} / {s['gold']:,} | {u['found']:,} / {u['gold']:,} |")
    print("\nper type (recall seen / unseen, gold counts):")
    for r in result["models"]:
        print(f"  {r['model']}: " + "; ".join(
            f"{label} {t['seen']['recall']:.1f} % of {t['seen']['gold']} / {t['unseen']['recall']:.1f} % of "
            f"{t['unseen']['gold']}" for label, t in r["per_type"].items()))


def main(argv: Optional[Sequence[str]] = None) -> int:
    from spacy_aner.training.crossval import entity_strings

    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser(MODULE, __doc__)
    ap.add_argument("--model", type=Path, action="append", help="model directory, repeatable (default: shipped)")
    ap.add_argument("--file", type=Path, default=TEST_FILE, help="WORD TAG file to score (default: the test split)")
    ap.add_argument("--train", type=Path, default=TRAIN_FILE,
                    help="the file the models were trained on, which defines seen (default: the train split)")
    ap.add_argument("--batch-size", type=int, default=256, help="nlp.pipe batch size")
    args = ap.parse_args(argv)
    machine = machine_info()
    seen = entity_strings(*read_tagged(args.train))
    words, gold = read_tagged(args.file)
    log(f"{len(seen):,} distinct entity strings in {args.train}; scoring {len(words):,} sentences of {args.file}")
    result = {"what": "recall on gold entities whose words are / are not an entity in the training file",
              "file": str(args.file), "train": str(args.train), "distinct_train_entity_strings": len(seen),
              "models": [score_model(m, words, gold, seen, args.batch_size) for m in (args.model or [None])]}
    write_result(args.output, result, command_line(MODULE, argv), machine)
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
