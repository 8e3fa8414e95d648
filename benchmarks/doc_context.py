#!/usr/bin/env python
"""Does document-level label consistency help? Measured on cross-validation folds, not test.

Takes the fold models of a ``benchmarks/cross_validation.py`` run (``WORKDIR/RECIPE/fold_k``)
and their held-out blocks (``WORKDIR/fold_k/heldout.conll``). Each block is tagged
sentence by sentence, exactly as cross-validation scored it; then the block's sentences
are read in order as running text and :func:`spacy_aner.consistency.propagate_labels`
tags untagged recurrences of names found within ``--windows`` words. Window 0 is the
sentence-level score. The test split is never read.

    python benchmarks/doc_context.py --workdir cv --recipe w2 --recipe w5 --recipe mr \\
        --windows 0 100 250 500 1000 --output benchmarks/results/cv_doc_context.json

Reports, per recipe and window, pooled entity-level scores (seqeval default mode) and each
block's F1, and the per-block differences from window 0.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import shlex
import sys
from pathlib import Path
from typing import Dict, List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cross_validation import heldout_files, paired_differences, read_heldout, write_result  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def block_predictions(workdir: Path, recipe: str) -> List[Dict]:
    """Gold and sentence-level predicted tags of every held-out block, in fold order."""
    from spacy_aner.model import Tagger

    blocks = []
    for k, held in enumerate(heldout_files(workdir)):
        model_dir = workdir / recipe / f"fold_{k}"
        if not (model_dir / "meta.json").is_file():
            raise SystemExit(f"no trained model in {model_dir}: run benchmarks/cross_validation.py first")
        sents = read_heldout(held)
        words = [s.words for s in sents]
        blocks.append({"words": words, "gold": [s.tags for s in sents],
                       "pred": Tagger.load(model_dir).predict(words)})
    return blocks


def score_windows(blocks: List[Dict], windows: List[int], clitics: bool = True) -> Dict:
    from spacy_aner.consistency import propagate_labels, propagate_over_sentences
    from spacy_aner.evaluation import entity_scores

    out = {}
    for window in windows:
        gold_all, pred_all, per_block = [], [], []
        for b in blocks:
            pred = propagate_over_sentences(b["words"], b["pred"], window, clitics)
            s = entity_scores(b["gold"], pred)["micro"]
            per_block.append(round(s["f1"], 2))
            gold_all += b["gold"]
            pred_all += pred
        pooled = entity_scores(gold_all, pred_all)
        out[str(window)] = {"block_f1": per_block, "pooled": pooled}
    # What a one-sentence Doc gets from the component: propagation inside the sentence only.
    gold_all, pred_all = [], []
    for b in blocks:
        gold_all += b["gold"]
        pred_all += [propagate_labels(w, p, max(windows), clitics=clitics) for w, p in zip(b["words"], b["pred"])]
    out["within_sentence"] = {"window": max(windows), "pooled": entity_scores(gold_all, pred_all)}
    base = out[str(windows[0])]
    for window in windows[1:]:
        r = out[str(window)]
        r["vs_window_%d" % windows[0]] = paired_differences(base["block_f1"], r["block_f1"],
                                                            base["pooled"], r["pooled"])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, required=True, help="a cross_validation.py work directory")
    ap.add_argument("--recipe", action="append", required=True, help="recipe name (a folder of fold models)")
    ap.add_argument("--windows", type=int, nargs="+", default=[0, 100, 250, 500, 1000],
                    help="propagation windows in words; the first is the baseline (0: sentence level)")
    ap.add_argument("--clitics", action=argparse.BooleanOptionalAction, default=True,
                    help="match recurrences with a joined proclitic too (the component's behaviour; "
                         "the window table in the README predates it: --no-clitics)")
    ap.add_argument("--output", type=Path, default=RESULTS / "cv_doc_context.json")
    args = ap.parse_args(argv)

    result = {"date": _dt.datetime.now().isoformat(timespec="seconds"),
              "command": shlex.join(["python", "benchmarks/doc_context.py",
                                     *(argv if argv is not None else sys.argv[1:])]),
              "recipes": {}}
    for recipe in args.recipe:
        scores = score_windows(block_predictions(args.workdir, recipe), args.windows, args.clitics)
        result["recipes"][recipe] = scores
        for window, r in scores.items():
            m = r["pooled"]["micro"]
            extra = r.get(f"vs_window_{args.windows[0]}")
            if window == "within_sentence":
                print(f"{recipe} inside each sentence only (window {r['window']}): F1 {m['f1']:.2f}")
                continue
            note = (f"; vs {args.windows[0]}: {extra['pooled_difference']:+.2f} pooled, blocks "
                    f"{extra['block_differences']}, ahead in {extra['blocks_ahead']}") if extra else ""
            print(f"{recipe} window {window}: F1 {m['f1']:.2f} (P {m['precision']:.2f} R {m['recall']:.2f}){note}",
                  flush=True)
    write_result(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
