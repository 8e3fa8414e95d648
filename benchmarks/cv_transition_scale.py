#!/usr/bin/env python
"""Cross-validation of scaling the CRF's transition, start and end scores at decoding.

Each fold model tags its held-out block sentence by sentence with Viterbi over its own
unary scores and its CRF scores multiplied by each ``--scales`` value (1 is the model as
trained). Scored pooled and per block, each scale against 1 (never test). Several recipes'
fold models (e.g. two seeds of one recipe) are pooled together as well as apart. Rule in
the commit that added this script.

    python benchmarks/cv_transition_scale.py --workdir cv --recipe chars+vectors --recipe chars_s14+vectors \\
        --scales 1 0.75 0.5 0.25 --output benchmarks/results/cv_transition_scale.json
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
from cross_validation import RESULTS, heldout_files, paired_differences, read_heldout, write_result  # noqa: E402


def scaled_predictions(tagger, words: Sequence[Sequence[str]], scales: Sequence[float]) -> Dict[float, List[List[str]]]:
    """The tagger's tags for ``words`` with its CRF scores multiplied by each scale."""
    params = tagger._crf_params()
    out = {}
    try:
        for s in scales:  # an instance attribute shadows the method that decode() calls
            tagger._crf_params = lambda s=s: tuple(s * p for p in params)
            out[s] = tagger.predict(words)
    finally:
        vars(tagger).pop("_crf_params", None)
    return out


def main(argv=None) -> int:
    from spacy_aner.evaluation import entity_scores
    from spacy_aner.model import Tagger

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--recipe", action="append", required=True, help="WORKDIR/RECIPE/fold_k are the fold models")
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.75, 0.5, 0.25])
    ap.add_argument("--output", type=Path, default=RESULTS / "cv_transition_scale.json")
    args = ap.parse_args(argv)
    scales = [1.0] + [s for s in args.scales if s != 1.0]

    runs = []  # (recipe, block, gold, {scale: pred})
    for recipe in args.recipe:
        for k, held in enumerate(heldout_files(args.workdir)):
            model_dir = args.workdir / recipe / f"fold_{k}"
            if not (model_dir / "meta.json").is_file():
                continue  # a --blocks run trained only the first blocks
            sents = read_heldout(held)
            preds = scaled_predictions(Tagger.load(model_dir), [s.words for s in sents], scales)
            runs.append((recipe, k, [s.tags for s in sents], preds))
            print(f"{recipe} block {k}: " + ", ".join(
                f"x{s:g} {entity_scores([s_.tags for s_ in sents], p)['micro']['f1']:.2f}" for s, p in preds.items()))
        if not any(r[0] == recipe for r in runs):
            raise SystemExit(f"no fold models under {args.workdir / recipe}")

    def table(selected) -> Dict:
        res = {}
        for s in scales:
            blocks = [round(entity_scores(g, p[s])["micro"]["f1"], 2) for _, _, g, p in selected]
            pooled = entity_scores([t for _, _, g, _ in selected for t in g],
                                   [t for _, _, _, p in selected for t in p[s]])
            res[f"{s:g}"] = {"block_f1": blocks, "pooled": pooled}
        base = res["1"]
        for s in scales[1:]:
            res[f"{s:g}"]["vs_1"] = paired_differences(base["block_f1"], res[f"{s:g}"]["block_f1"],
                                                       base["pooled"], res[f"{s:g}"]["pooled"])
        return res

    result = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "command": shlex.join(["python", "benchmarks/cv_transition_scale.py", *(argv if argv is not None else sys.argv[1:])]),
        "blocks": {r: [k for rr, k, _, _ in runs if rr == r] for r in args.recipe},
        "recipes": {r: table([x for x in runs if x[0] == r]) for r in args.recipe},
        "all": table(runs),
    }
    for name, res in [*result["recipes"].items(), ("all", result["all"])]:
        print(name + ": " + "; ".join(
            f"x{s} {v['pooled']['micro']['f1']:.2f}" + (f" ({v['vs_1']['pooled_difference']:+.2f}, ahead in "
                                                         f"{v['vs_1']['blocks_ahead']} of {len(v['block_f1'])})"
                                                         if "vs_1" in v else "") for s, v in res.items()))
    write_result(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
