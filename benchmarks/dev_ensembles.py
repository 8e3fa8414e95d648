#!/usr/bin/env python
"""Dev-set evidence for the shipped ensemble: how many seeds, and whether to favour recall.

Given single models trained alike with different seeds (``spacy-aner train ... --seed N``),
this scores on the dev set, never on test:

* each member alone;
* the ensembles of the first 2, 3, ... members (``merge_members``, as ``spacy-aner
  ensemble`` builds them), with the tagger's own throughput on the dev words (median of
  ``--repeats`` passes after a warm-up, same run, so the sizes compare);
* for the ensemble of ``--bias-members`` members, a bias against ``O`` at decoding (the
  unary ``O`` score lowered by b before Viterbi), which trades precision for recall; the
  package does not do this, the sweep is here to show why.

    python benchmarks/dev_ensembles.py models/seed13 models/seed14 models/seed15 models/seed16 \\
        --dev corpus/dev.conll

Writes ``benchmarks/results/dev_ensembles.json`` (``--output``) and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS = Path(__file__).parent / "results"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path, help="member model directories, in merge order")
    ap.add_argument("--dev", type=Path, required=True, help="the dev file the members were early-stopped on")
    ap.add_argument("--bias-members", type=int, default=3, help="ensemble size for the O-bias sweep")
    ap.add_argument("--biases", default="0,0.25,0.5,1,2", help="comma-separated O-score biases")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes per ensemble (median)")
    ap.add_argument("--output", type=Path, default=RESULTS / "dev_ensembles.json")
    args = ap.parse_args(argv)

    import warnings

    import numpy as np

    from spacy_aner.corpus import read_conll
    from spacy_aner.evaluation import entity_scores
    from spacy_aner.model import Tagger, merge_members

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the release's stray I- tags, reported by prepare already
        dev = read_conll(args.dev).sentences
    words, gold = [s.words for s in dev], [s.tags for s in dev]
    n_words = sum(map(len, words))

    def score(tagger):
        m = entity_scores(gold, tagger.predict(words))
        return {"f1": m["micro"]["f1"], "precision": m["micro"]["precision"], "recall": m["micro"]["recall"],
                "per_type_f1": {k: v["f1"] for k, v in m["per_type"].items()}}

    def words_per_sec(tagger):
        tagger.predict(words)  # warm-up: tracing
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            tagger.predict(words)
            times.append(time.perf_counter() - start)
        return n_words / statistics.median(times)

    members = [Tagger.load(d) for d in args.models]
    out = {"command": "python benchmarks/dev_ensembles.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "load_average_start": os.getloadavg()},
           "dev": {"file": str(args.dev), "sentences": len(dev), "words": n_words},
           "members": [], "ensembles": [], "o_bias": []}
    for d, t in zip(args.models, members):
        out["members"].append({"dir": str(d), "seed": t.meta.get("hyperparameters", {}).get("seed"), **score(t)})
        print(f"member {d}: dev F1 {out['members'][-1]['f1']:.2f}", flush=True)
    for k in range(2, len(members) + 1):
        merged = merge_members(members[:k])
        out["ensembles"].append({"members": k, **score(merged), "tagger_words_per_sec": words_per_sec(merged)})
        e = out["ensembles"][-1]
        print(f"ensemble of {k}: dev F1 {e['f1']:.2f}, {e['tagger_words_per_sec']:,.0f} words/s", flush=True)
    single_speed = words_per_sec(members[0])
    out["single_tagger_words_per_sec"] = single_speed

    merged = merge_members(members[: args.bias_members])
    decode = merged.decode
    for bias in (float(b) for b in args.biases.split(",")):
        def biased(scores, lengths, b=bias):
            scores = np.array(scores, copy=True)
            scores[..., merged.config.tags.index("O")] -= b
            return decode(scores, lengths)

        merged.decode = biased
        out["o_bias"].append({"members": args.bias_members, "bias": bias, **score(merged)})
        print(f"O bias {bias}: dev F1 {out['o_bias'][-1]['f1']:.2f}", flush=True)
    out["machine"]["load_average_end"] = os.getloadavg()

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2))
    print("\n| model | dev F1 | P | R | tagger words/s (dev, same run) |\n| --- | ---: | ---: | ---: | ---: |")
    for m in out["members"]:
        print(f"| seed {m['seed']} alone | {m['f1']:.2f} | {m['precision']:.2f} | {m['recall']:.2f} | |")
    print(f"| (single tagger speed) | | | | {single_speed:,.0f} |")
    for e in out["ensembles"]:
        print(f"| ensemble of the first {e['members']} | {e['f1']:.2f} | {e['precision']:.2f} | {e['recall']:.2f} "
              f"| {e['tagger_words_per_sec']:,.0f} |")
    for b in out["o_bias"]:
        print(f"| ensemble of {b['members']}, O score - {b['bias']:g} | {b['f1']:.2f} | {b['precision']:.2f} | {b['recall']:.2f} | |")
    print(f"-> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
