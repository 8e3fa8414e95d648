"""Compare two recipes at the ensemble level, over every seed subset, on dev only.

One three-seed ensemble per recipe is a single draw: the seed-to-seed spread of single
models (about 0.4 F1 s.d. here) makes a difference of a few tenths between two ensembles
unreadable. With N seeds trained per recipe (the same seeds for both), this scores the
ensemble of every ``--size``-subset of seeds under each recipe and reports the mean,
spread and the paired difference per subset (same seeds, other recipe).

    python benchmarks/ensemble_subsets.py --a models/seed{13,14,15,16,17} \\
        --b models/w2_{13,14,15,16,17} --dev corpus/dev.conll --size 3

Writes ``benchmarks/results/ensemble_subsets.json`` (``--output``). The test split is not read.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import itertools
import json
import os
import statistics
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS = Path(__file__).parent / "results"


def summary(values):
    return {"mean": statistics.mean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", nargs="+", type=Path, required=True, help="recipe A: one model directory per seed")
    ap.add_argument("--b", nargs="+", type=Path, required=True, help="recipe B: the same seeds, in the same order")
    ap.add_argument("--dev", type=Path, required=True, help="the dev file both recipes were early-stopped on")
    ap.add_argument("--size", type=int, default=3, help="ensemble size")
    ap.add_argument("--output", type=Path, default=RESULTS / "ensemble_subsets.json")
    args = ap.parse_args(argv)
    if len(args.a) != len(args.b) or len(args.a) < args.size:
        ap.error("--a and --b need the same number of models, at least --size")

    from spacy_aner.corpus import read_conll
    from spacy_aner.evaluation import entity_scores
    from spacy_aner.model import Tagger, merge_members

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the release's stray I- tags
        dev = read_conll(args.dev).sentences
    words, gold = [s.words for s in dev], [s.tags for s in dev]

    def f1(tagger) -> float:
        return entity_scores(gold, tagger.predict(words))["micro"]["f1"]

    out = {"command": "python benchmarks/ensemble_subsets.py " + " ".join(
        ["--a", *map(str, args.a), "--b", *map(str, args.b), "--dev", str(args.dev), "--size", str(args.size)]),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "dev": {"file": str(args.dev), "sentences": len(dev)}, "size": args.size}
    recipes = {}
    for name, dirs in (("a", args.a), ("b", args.b)):
        taggers = [Tagger.load(d) for d in dirs]
        seeds = [t.meta.get("hyperparameters", {}).get("seed") for t in taggers]
        singles = [f1(t) for t in taggers]
        subsets = {}
        for combo in itertools.combinations(range(len(taggers)), args.size):
            subsets[combo] = f1(merge_members([taggers[i] for i in combo]))
            print(f"{name} seeds {[seeds[i] for i in combo]}: {subsets[combo]:.2f}", flush=True)
        recipes[name] = {"models": list(map(str, dirs)), "seeds": seeds, "singles": singles,
                         "singles_summary": summary(singles),
                         "ensembles": [{"seeds": [seeds[i] for i in c], "f1": v} for c, v in subsets.items()],
                         "ensembles_summary": summary(list(subsets.values())), "_by_combo": subsets}
    if recipes["a"]["seeds"] != recipes["b"]["seeds"]:
        print("warning: the two recipes' seeds differ; the paired differences pair by position")
    diffs = [recipes["b"]["_by_combo"][c] - recipes["a"]["_by_combo"][c] for c in recipes["a"]["_by_combo"]]
    for r in recipes.values():
        del r["_by_combo"]
    out.update(recipes)
    out["paired_difference_b_minus_a"] = {**summary(diffs), "b_better": sum(d > 0 for d in diffs)}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2))

    print("\n| recipe | singles mean (sd) | ensembles of %d: mean (sd), min-max |" % args.size)
    print("| --- | ---: | ---: |")
    for name in ("a", "b"):
        s, e = out[name]["singles_summary"], out[name]["ensembles_summary"]
        print(f"| {name} | {s['mean']:.2f} ({s['sd']:.2f}) | {e['mean']:.2f} ({e['sd']:.2f}), {e['min']:.2f}-{e['max']:.2f} |")
    d = out["paired_difference_b_minus_a"]
    print(f"\nB - A over the same {d['n']} seed subsets: mean {d['mean']:+.2f} (sd {d['sd']:.2f}), "
          f"B better in {d['b_better']} of {d['n']}")
    print(f"-> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
