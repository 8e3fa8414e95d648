"""Are the entity scores calibrated? A reliability diagram of the shipped model on the test split.

Each predicted entity's score (``doc.spans["aner_lstm"].attrs["scores"]``) is the
probability, under the model's CRF (the ensemble's averaged scores, which its Viterbi
decodes), of exactly that entity: its words tagged B-L I-L ... I-L and the next word not
I-L. The pipeline runs as ``spacy-aner evaluate`` runs it (``spacy_aner.load``, one Doc of
gold words per sentence), and an entity is right if a gold entity has the same words and
type (gold decoded as seqeval's default mode does). Entities are put in ten equal-width
score bins; the figure plots each bin's share right against its mean score, and the
result gives the expected calibration error (ECE), the Brier score and precision/recall
when entities under a threshold are dropped.

    python -m benchmarks.calibration                          # shipped model, CAMeL test split
    python -m benchmarks.calibration --model DIR --file TEST --figure out.png
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

from benchmarks.common import ROOT, TEST_FILE, command_line, log, machine_info, parser, write_result

MODULE = "benchmarks.calibration"
FIGURE = ROOT / "docs" / "evaluation" / "reliability.png"


def calibration(model: Optional[Path], path: Path, bins: int, batch_size: int) -> Dict:
    import spacy_aner
    from spacy_aner.core.tags import bio_to_spans, spans_to_bio
    from spacy_aner.training.calibration import entity_outcomes, predict_scored, reliability, threshold_table
    from spacy_aner.training.evaluation import entity_scores, model_hash, read_gold

    corpus = read_gold(path)
    words, gold = [s.words for s in corpus.sentences], [s.tags for s in corpus.sentences]
    nlp = spacy_aner.load(model)
    model_dir = nlp.get_pipe("aner_lstm").model_path
    predicted = predict_scored(nlp, words, batch_size=batch_size)
    pred_tags = [spans_to_bio([e[:3] for e in ents], len(w)) for w, ents in zip(words, predicted)]
    f1 = entity_scores(gold, pred_tags)["micro"]["f1"]  # the same run as `spacy-aner evaluate`'s figure
    scores, correct, labels = entity_outcomes(gold, predicted)
    n_gold = sum(len(bio_to_spans(t)) for t in gold)
    per_label = {}
    for label in sorted(set(labels), key=labels.index):
        mask = [lab == label for lab in labels]
        r = reliability(scores[mask], correct[mask], bins)
        per_label[label] = {k: r[k] for k in ("entities", "share_correct", "mean_score", "ece", "brier")}
    return {"model": str(model_dir), "model_hash": model_hash(model_dir), "file": str(path),
            "sentences": len(words), "gold_entities": n_gold, "f1": round(f1, 2),
            "score": "probability under the CRF of exactly this entity (forward-backward)",
            **reliability(scores, correct, bins), "per_label": per_label,
            "thresholds": threshold_table(scores, correct, n_gold)}


def print_table(result: Dict) -> None:
    print(f"{result['entities']:,} predicted entities, {100 * result['share_correct']:.2f} % exactly right, "
          f"mean score {result['mean_score']:.4f}; ECE {result['ece']:.4f}, largest bin gap "
          f"{result['max_calibration_error']:.4f}, Brier {result['brier']:.4f} (F1 {result['f1']:.2f})\n")
    print("| score bin | entities | mean score | share right |")
    print("| --- | ---: | ---: | ---: |")
    for b in result["bins"]:
        if b["count"]:
            print(f"| {b['low']:.1f}–{b['high']:.1f} | {b['count']:,} | {b['mean_score']:.3f} | {b['share_correct']:.3f} |")
    print("\n| threshold | entities kept | precision | recall | F1 |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for t in result["thresholds"]:
        print(f"| {t['threshold']:.2f} | {t['entities']:,} | {t['precision']:.2f} | {t['recall']:.2f} | {t['f1']:.2f} |")
    print("\nper label: " + "; ".join(f"{lab} {r['entities']:,} entities, {100 * r['share_correct']:.1f} % right, "
                                     f"mean score {r['mean_score']:.3f}, ECE {r['ece']:.3f}"
                                     for lab, r in result["per_label"].items()))


def main(argv: Optional[Sequence[str]] = None) -> int:
    from spacy_aner.training.plots import reliability_diagram

    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser(MODULE, __doc__)
    ap.add_argument("--model", type=Path, help="model directory (default: the shipped model)")
    ap.add_argument("--file", type=Path, default=TEST_FILE, help="gold WORD TAG file (default: the test split)")
    ap.add_argument("--bins", type=int, default=10, help="equal-width score bins")
    ap.add_argument("--figure", type=Path, default=FIGURE,
                    help=f"reliability diagram to write (default: {FIGURE.relative_to(ROOT)})")
    ap.add_argument("--batch-size", type=int, default=256, help="nlp.pipe batch size")
    args = ap.parse_args(argv)
    machine = machine_info()
    log(f"scoring {args.file} with {args.model or 'the shipped model'}")
    result = calibration(args.model, args.file, args.bins, args.batch_size)
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    reliability_diagram(result, args.figure, f"{args.file.name}: {result['entities']:,} predicted entities")
    result["figure"] = str(args.figure.resolve().relative_to(ROOT) if args.figure.resolve().is_relative_to(ROOT)
                           else args.figure)
    write_result(args.output, result, command_line(MODULE, argv), machine)
    print_table(result)
    log(f"-> {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
