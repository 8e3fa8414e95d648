#!/usr/bin/env python
"""Whole held-out blocks through the real component, as a user's articles are: one Doc each.

The network was trained on single sentences, but a Doc of running text used to reach it
as one word sequence cut into 128-word windows. This scores the cross-validation fold
models (``WORKDIR/RECIPE/fold_k``) on their held-out blocks (``WORKDIR/fold_k/heldout.conll``)
through ``spacy_aner``'s ``aner_lstm`` component, with ``split_sentences`` off and on, in two
settings: one Doc per gold sentence (the published protocol) and one Doc per block (its
sentences joined: running text). ``consistency_window`` is the component's (250) in every
setting. The test split is never read.

    python benchmarks/running_text.py --workdir cv --recipe w2 --output benchmarks/results/cv_running_text.json
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import shlex
import sys
from pathlib import Path
from typing import Dict, List, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cross_validation import heldout_files, paired_differences, read_heldout, write_result  # noqa: E402

RESULTS = Path(__file__).parent / "results"
SETTINGS = {  # name: (one Doc per block, split_sentences)
    "sentences": (False, False),
    "sentences, split": (False, True),
    "running text": (True, False),
    "running text, split": (True, True),
}


def tag_docs(nlp, sentences: Sequence[Sequence[str]], running: bool) -> List[List[str]]:
    """IOB2 tags per gold sentence, the sentences given as one Doc each or as one Doc together."""
    from spacy.tokens import Doc

    from spacy_aner.tags import spans_to_bio

    groups = [[w for s in sentences for w in s]] if running else [list(s) for s in sentences]
    tags = [t for doc in nlp.pipe(Doc(nlp.vocab, words=g) for g in groups)
            for t in spans_to_bio(((e.start, e.end, e.label_) for e in doc.ents), len(doc))]
    out, k = [], 0
    for s in sentences:
        out.append(tags[k:k + len(s)])
        k += len(s)
    return out


def score_recipe(workdir: Path, recipe: str) -> Dict:
    import spacy

    from spacy_aner.evaluation import entity_scores

    gold_all: List[List[str]] = []
    pred_all: Dict[str, List[List[str]]] = {name: [] for name in SETTINGS}
    blocks: Dict[str, List[float]] = {name: [] for name in SETTINGS}
    for k, held in enumerate(heldout_files(workdir)):
        sents = read_heldout(held)
        words, gold = [s.words for s in sents], [s.tags for s in sents]
        nlp = spacy.blank("ar")
        component = nlp.add_pipe("aner_lstm", config={"model": str(workdir / recipe / f"fold_{k}")})
        for name, (running, split) in SETTINGS.items():
            component.split_sentences = split
            pred = tag_docs(nlp, words, running)
            blocks[name].append(round(entity_scores(gold, pred)["micro"]["f1"], 2))
            pred_all[name] += pred
        gold_all += gold
        print(f"{recipe} fold {k}: " + ", ".join(f"{n} {blocks[n][-1]}" for n in SETTINGS), flush=True)
    out = {name: {"block_f1": blocks[name], "pooled": entity_scores(gold_all, pred_all[name])} for name in SETTINGS}
    for a, b in (("running text", "running text, split"), ("sentences", "sentences, split")):
        out[b]["vs_unsplit"] = paired_differences(blocks[a], blocks[b], out[a]["pooled"], out[b]["pooled"])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, required=True, help="a cross_validation.py work directory")
    ap.add_argument("--recipe", action="append", required=True, help="recipe name (a folder of fold models)")
    ap.add_argument("--output", type=Path, default=RESULTS / "cv_running_text.json")
    args = ap.parse_args(argv)
    result = {"date": _dt.datetime.now().isoformat(timespec="seconds"),
              "command": shlex.join(["python", "benchmarks/running_text.py", *(argv if argv is not None else sys.argv[1:])]),
              "recipes": {}}
    for recipe in args.recipe:
        scores = score_recipe(args.workdir, recipe)
        result["recipes"][recipe] = scores
        for name, r in scores.items():
            m = r["pooled"]["micro"]
            vs = r.get("vs_unsplit")
            note = (f"; split - unsplit {vs['pooled_difference']:+.2f} pooled, blocks {vs['block_differences']}, "
                    f"ahead in {vs['blocks_ahead']}") if vs else ""
            print(f"{recipe} {name}: F1 {m['f1']:.2f} (P {m['precision']:.2f} R {m['recall']:.2f}){note}")
    write_result(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
